//! The fault campaign, short version (scripts/chaos.sh runs the long one): bad Wi-Fi, kill -9,
//! a hung box. After each, the oracle (`docket_tests::chaos::check`): every acknowledged
//! command is in SQLite exactly once with the reply the device got, nothing is doubled, seq has
//! no gap, the database passes its integrity check, and every screen shows exactly the box's
//! open orders for its station.

use std::time::Duration;

use docket_tests::chaos::{self, Restaurant};
use docket_tests::Daemon;

type R = anyhow::Result<()>;

/// Short keep-alive, so that devices notice a dead link within seconds, as tablets should.
const KEEP_ALIVE: Duration = Duration::from_secs(2);

fn assert_clean(name: &str, rep: &chaos::Report) {
    println!("{name}: {rep}");
    assert!(rep.problems.is_empty(), "{name}: {:#?}", rep.problems);
    assert_eq!(rep.lost, 0, "{name}: lost");
    assert_eq!(rep.duplicated, 0, "{name}: duplicated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_wifi_loses_and_doubles_nothing() -> R {
    let d = Daemon::start()?;
    let r = Restaurant::open(&d, 4, Duration::from_millis(400), KEEP_ALIVE, 1).await?;
    let (rep, converge, applied) = chaos::bad_wifi(
        &r,
        &d.db_path(),
        Duration::from_secs(15),
        (Duration::from_secs(3), Duration::from_secs(6)),
        7,
    )
    .await?;
    println!("faults applied: {applied:?}; converged {converge:?} after the heal");
    assert_clean("bad wifi", &rep);
    // The faults really bit: devices lost links and resent, and orders still went through.
    assert!(rep.reconnects > 0, "no device ever reconnected: {rep}");
    assert!(rep.resent > 0, "nothing was ever resent: {rep}");
    assert!(rep.acked >= 20, "too little went through: {rep}");
    assert_eq!(applied.len(), chaos::WIFI_FAULTS.len(), "{applied:?}");
    r.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_at_random_moments_loses_nothing() -> R {
    let mut d = Daemon::start()?;
    let r = Restaurant::open(&d, 3, Duration::from_millis(150), KEEP_ALIVE, 2).await?;
    let restarts = chaos::kill_cycles(&mut d, &r, 8, 11).await?;
    println!("restarts to READY: {restarts:?}");
    r.heal_and_settle(&d.db_path(), Duration::from_secs(60))
        .await?;
    let rep = chaos::check(&d.db_path(), &r.ledger)?;
    assert_clean("kill -9", &rep);
    assert!(
        rep.reconnects >= 8,
        "devices did not notice the kills: {rep}"
    );
    r.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_box_catches_up_when_it_resumes() -> R {
    let d = Daemon::start()?;
    let r = Restaurant::open(&d, 3, Duration::from_millis(300), KEEP_ALIVE, 3).await?;
    let ledger = r.ledger.clone();
    // Some service first, then the hang with devices still ordering.
    docket_tests::eventually("first orders acknowledged", || r.acked() >= 5).await?;
    chaos::hang(&d, Duration::from_secs(6)).await?;
    let converge = r
        .heal_and_settle(&d.db_path(), Duration::from_secs(60))
        .await?;
    println!("converged {converge:?} after SIGCONT");
    let rep = chaos::check(&d.db_path(), &r.ledger)?;
    assert_clean("SIGSTOP", &rep);
    assert!(rep.reconnects > 0, "devices did not notice the hang: {rep}");
    r.close().await;

    // The oracle can fail: a made-up acknowledgement is reported lost, and a screen one event
    // behind is reported.
    {
        let mut l = ledger.lock().unwrap_or_else(|p| p.into_inner());
        let reply = docket_core::wire::Reply {
            command: "made-up".into(),
            ok: true,
            order_id: Some("o-made-up".into()),
            ticket: Some(999),
            seq: Some(999),
            error: None,
            events: None,
            more: None,
        };
        l.acked.insert(("tablet-1".into(), "made-up".into()), reply);
        let view = l.views.get_mut("kds-grill").expect("grill view");
        view.seq -= 1;
    }
    let bad = chaos::check(&d.db_path(), &ledger)?;
    assert_eq!(bad.lost, 1, "{bad}");
    assert!(
        bad.problems.iter().any(|p| p.contains("kds-grill")),
        "{:#?}",
        bad.problems
    );
    Ok(())
}
