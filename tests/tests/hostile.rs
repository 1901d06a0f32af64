//! Hostile clients: floods, password guessing, readers that never read, oversized and malformed
//! packets. Each gets a clear refusal or a cut connection; the box keeps serving everyone else
//! and writes nothing it should not.

use std::collections::BTreeMap;
use std::time::Duration;

use docket_core::wire::{self, CommandBody, Reply};
use docket_tests::{line, Client, Daemon};

type R = anyhow::Result<()>;

fn place(table: &str) -> CommandBody {
    CommandBody::PlaceOrder {
        table: table.into(),
        lines: vec![line("fries", 1)],
    }
}

fn orders(d: &Daemon) -> anyhow::Result<i64> {
    let db = rusqlite::Connection::open(d.db_path())?;
    Ok(db.query_row("SELECT COUNT(*) FROM orders", [], |r| r.get(0))?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_device_is_rate_limited_and_others_are_not() -> R {
    // The test config's [engine] section is open: these keys land in it.
    let d = Daemon::start_with(&[], "demo", "commands_per_second = 20\ncommand_burst = 40")?;
    let flood = d.add_device("tablet-flood", "tablet", &[])?;
    let calm = d.add_device("tablet-calm", "tablet", &[])?;
    let mut f = Client::connect(d.mqtt, &flood).await?;
    let mut c = Client::connect(d.mqtt, &calm).await?;

    // 400 distinct commands as fast as the socket takes them.
    let start = tokio::time::Instant::now();
    let mut ids = Vec::new();
    for i in 0..400 {
        let id = f.next_id();
        f.send_as(&id, &place(&format!("f{i}"))).await?;
        ids.push(id);
    }
    // Meanwhile the calm tablet is served as usual.
    for i in 0..5 {
        let r = c.command(&place(&format!("c{i}"))).await?;
        assert!(r.ok, "the calm tablet was refused: {r:?}");
    }
    let mut replies: BTreeMap<String, Reply> = BTreeMap::new();
    let topic = wire::reply_topic(&flood.id);
    while replies.len() < ids.len() {
        let m = f
            .wait_for(|m| m.topic == topic)
            .await
            .map_err(|e| anyhow::anyhow!("{} of 400 replies: {e}", replies.len()))?;
        let r: Reply = wire::decode(&m.payload)?;
        replies.insert(r.command.clone(), r);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let ok = replies.values().filter(|r| r.ok).count();
    let limited: Vec<&Reply> = replies
        .values()
        .filter(|r| r.error.as_ref().is_some_and(|e| e.code == "rate_limited"))
        .collect();
    println!(
        "flood: {ok} accepted, {} rate_limited in {elapsed:.2} s",
        limited.len()
    );
    assert_eq!(ok + limited.len(), 400, "only ok or rate_limited");
    assert!(ok >= 40, "the burst goes through: {ok}");
    assert!(
        ok as f64 <= 40.0 + 20.0 * elapsed + 1.0,
        "{ok} accepted in {elapsed:.2} s: over the limit"
    );
    assert!(limited[0]
        .error
        .as_ref()
        .is_some_and(|e| e.message.contains("same id")));
    assert_eq!(orders(&d)?, ok as i64 + 5, "refused commands wrote nothing");

    // Not recorded: after a pause the same id goes through, once.
    let again = limited[0].command.clone();
    tokio::time::sleep(Duration::from_millis(200)).await;
    f.send_as(&again, &place("retry")).await?;
    let r = f.reply_to(&again).await?;
    assert!(r.ok, "a rate_limited command sent again later: {r:?}");
    f.send_as(&again, &place("retry")).await?;
    assert_eq!(f.reply_to(&again).await?, r, "and it is recorded now");
    assert_eq!(orders(&d)?, ok as i64 + 6);
    assert!(
        d.metric("docket_rejects_total{code=\"rate_limited\"}")? >= limited.len() as f64,
        "counted in /metrics"
    );
    assert!(d.log_text().contains("over its command rate limit"));
    Ok(())
}
