//! Hostile clients: floods, password guessing, readers that never read, oversized and malformed
//! packets. Each gets a clear refusal or a cut connection; the box keeps serving everyone else
//! and writes nothing it should not.

use std::collections::BTreeMap;
use std::time::Duration;

use docket_core::wire::{self, CommandBody, Reply};
use docket_tests::raw::{field as mqtt_str, varint as remaining};
use docket_tests::{line, Client, Daemon};

type R = anyhow::Result<()>;

fn place(table: &str) -> CommandBody {
    CommandBody::place(table, vec![line("fries", 1)])
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

/// An MQTT 3.1.1 CONNECT with username and password, written by hand.
fn connect_packet(client_id: &str, user: &str, password: &str) -> Vec<u8> {
    let mut body = Vec::new();
    mqtt_str(b"MQTT", &mut body);
    body.push(4); // protocol level 3.1.1
    body.push(0xC2); // username, password, clean session
    body.extend_from_slice(&30u16.to_be_bytes()); // keep-alive
    mqtt_str(client_id.as_bytes(), &mut body);
    mqtt_str(user.as_bytes(), &mut body);
    mqtt_str(password.as_bytes(), &mut body);
    let mut p = vec![0x10];
    remaining(body.len(), &mut p);
    p.extend(body);
    p
}

fn publish_packet(topic: &str, payload: &[u8], retain: bool) -> Vec<u8> {
    let mut body = Vec::new();
    mqtt_str(topic.as_bytes(), &mut body);
    body.extend_from_slice(payload); // QoS 0: no packet id
    let mut p = vec![0x30 | u8::from(retain)];
    remaining(body.len(), &mut p);
    p.extend(body);
    p
}

/// Reads until the box closes the connection (or resets it); false if it stays open past the
/// deadline.
async fn closed_by_box(s: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 64 * 1024];
    let r = tokio::time::timeout(docket_tests::DEADLINE, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    r.is_ok()
}

/// The box's open file descriptors.
fn fds(d: &Daemon) -> usize {
    let pid = d.pid().expect("running");
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |r| r.count())
}

fn rss_mb(d: &Daemon) -> f64 {
    docket_tests::rss_mb(d.pid().expect("running"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_bad_passwords_are_refused_and_leak_nothing() -> R {
    use tokio::io::AsyncWriteExt;
    let d = Daemon::start()?;
    let tablet = d.add_device("tablet-1", "tablet", &[])?;
    let before = fds(&d);
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..10_000 {
        let permit = sem.clone().acquire_owned().await?;
        let port = d.mqtt;
        tasks.spawn(async move {
            let _permit = permit;
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
            let guess = format!("{i:064x}");
            s.write_all(&connect_packet("tablet-1", "tablet-1", &guess))
                .await?;
            anyhow::ensure!(closed_by_box(&mut s).await, "attempt {i} left open");
            Ok::<_, anyhow::Error>(())
        });
        while let Some(r) = tasks.try_join_next() {
            r??;
        }
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    assert!(
        d.metric("docket_auth_failures_total")? >= 10_000.0,
        "every refusal counted"
    );
    // The real tablet still logs in and orders, and the attempts left no descriptor behind.
    let mut t = Client::connect(d.mqtt, &tablet).await?;
    assert!(t.command(&place("1")).await?.ok);
    docket_tests::eventually("descriptors back to where they were", || {
        fds(&d) <= before + 8
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_never_reads_slows_nobody_down() -> R {
    use tokio::io::AsyncWriteExt;
    let d = Daemon::start()?;
    let spy = d.add_device("kds-spy", "station", &["grill"])?;
    // Logs in, subscribes to the heaviest topics (every event, every board), and never reads
    // a byte again.
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", d.mqtt)).await?;
    s.write_all(&connect_packet(&spy.id, &spy.id, &spy.login()))
        .await?;
    let mut body = vec![0, 1];
    for f in [wire::EVENTS_TOPIC, "docket/v1/board/+"] {
        mqtt_str(f.as_bytes(), &mut body);
        body.push(1);
    }
    let mut sub = vec![0x82];
    remaining(body.len(), &mut sub);
    sub.extend(body);
    s.write_all(&sub).await?;

    // Three tablets place 150 orders each; every one is answered.
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..3 {
        let creds = d.add_device(&format!("tablet-{n}"), "tablet", &[])?;
        let port = d.mqtt;
        tasks.spawn(async move {
            let mut t = Client::connect(port, &creds).await?;
            for i in 0..150 {
                let r = t.command(&place(&format!("{n}-{i}"))).await?;
                anyhow::ensure!(r.ok, "refused: {r:?}");
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    assert_eq!(orders(&d)?, 450);
    assert_eq!(
        d.metric("docket_acl_cuts_total")?,
        0.0,
        "the reader was admitted"
    );
    // The unread backlog is bounded by the broker's per-connection queue, not by what was sent.
    let rss = rss_mb(&d);
    println!("docketd RSS with a reader that never reads: {rss:.1} MB");
    assert!(rss < 150.0, "RSS {rss:.1} MB");
    assert_eq!(d.get("/healthz")?.0, 200);
    drop(s);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_packets_cut_only_their_sender() -> R {
    use tokio::io::AsyncWriteExt;
    let d = Daemon::start()?;
    let tablet = d.add_device("tablet-1", "tablet", &[])?;
    let rogue = d.add_device("tablet-rogue", "tablet", &[])?;
    let mut t = Client::connect(d.mqtt, &tablet).await?;
    assert!(t.command(&place("before")).await?.ok);

    let login = connect_packet(&rogue.id, &rogue.id, &rogue.login());
    let big = vec![0xA5u8; 3 * 1024 * 1024]; // over [mqtt] max_payload_bytes (2 MiB)
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("garbage before CONNECT".into(), vec![0xFF; 64]),
        ("CONNECT with protocol level 9".into(), {
            let mut p = connect_packet(&rogue.id, &rogue.id, &rogue.login());
            p[8] = 9;
            p
        }),
        (
            "remaining length over 4 bytes".into(),
            vec![0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F],
        ),
        ("a reserved packet type after login".into(), {
            let mut p = login.clone();
            p.extend_from_slice(&[0xF0, 0x00]);
            p
        }),
    ];
    for topic in [
        wire::cmd_topic(&rogue.id),
        wire::EVENTS_TOPIC.to_owned(),
        wire::board_topic("grill"),
        wire::MENU_TOPIC.to_owned(),
        wire::STATUS_TOPIC.to_owned(),
        wire::reply_topic(&tablet.id),
        wire::presence_topic(&rogue.id),
        "docket/v1/anything".to_owned(),
    ] {
        let mut p = login.clone();
        p.extend(publish_packet(&topic, &big, true));
        cases.push((format!("3 MiB retained on {topic}"), p));
    }
    for (n, (what, bytes)) in cases.into_iter().enumerate() {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", d.mqtt)).await?;
        // The box may cut the connection before it has read everything: that is the point.
        let _ = s.write_all(&bytes).await;
        assert!(closed_by_box(&mut s).await, "{what}: connection left open");
        // Everyone else is still served, and nothing of it stuck.
        let r = t.command(&place(&format!("{n}"))).await?;
        assert!(r.ok, "{what}: the other tablet was refused: {r:?}");
    }
    let (status, _) = d.get("/healthz")?;
    assert_eq!(status, 200);
    // The retained state is the box's own: a screen gets the real board and menu.
    let kds = d.add_device("kds-grill", "station", &["grill"])?;
    let mut k = Client::connect(d.mqtt, &kds).await?;
    k.subscribe(&wire::board_topic("grill")).await?;
    k.board("grill", 0).await?;
    k.subscribe(wire::MENU_TOPIC).await?;
    let m = k.wait_for(|m| m.topic == wire::MENU_TOPIC).await?;
    assert!(wire::decode::<docket_core::Menu>(&m.payload).is_ok());
    assert!(rss_mb(&d) < 150.0, "oversized payloads were kept");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_topic_acl_cuts_forgers_before_anything_reaches_others() -> R {
    let d = Daemon::start()?;
    let victim = d.add_device("tablet-1", "tablet", &[])?;
    let rogue = d.add_device("tablet-rogue", "tablet", &[])?;
    let kds = d.add_device("kds-grill", "station", &["grill"])?;
    let mut v = Client::connect(d.mqtt, &victim).await?;
    let mut k = Client::connect(d.mqtt, &kds).await?;
    k.subscribe(wire::EVENTS_TOPIC).await?;
    k.subscribe(&wire::board_topic("grill")).await?;
    let board = k.board("grill", 0).await?;
    let before_rss = rss_mb(&d);

    let fake_reply = wire::encode(&Reply {
        command: "tablet-1-1".into(),
        ok: true,
        order_id: Some("fake".into()),
        ticket: Some(1),
        seq: Some(1),
        error: None,
        events: None,
        more: None,
        menu_version: None,
    })?;
    let publishes: Vec<(String, Vec<u8>, bool)> = vec![
        (wire::reply_topic(&victim.id), fake_reply, false),
        (wire::EVENTS_TOPIC.to_owned(), b"fake event".to_vec(), false),
        (wire::board_topic("grill"), b"lies".to_vec(), true),
        (wire::MENU_TOPIC.to_owned(), Vec::new(), true),
        (wire::cmd_topic(&victim.id), b"x".to_vec(), false),
        (wire::presence_topic(&victim.id), b"offline".to_vec(), true),
    ];
    let mut cuts = 0.0;
    for (topic, payload, retain) in publishes {
        let r = Client::connect(d.mqtt, &rogue).await?;
        r.publish(&topic, payload, retain).await?;
        docket_tests::eventually(&format!("cut after publishing on {topic}"), || {
            !r.is_connected()
        })
        .await?;
        cuts += 1.0;
    }
    // Retained junk on made-up topics: cut at the first one, nothing kept.
    let r = Client::connect(d.mqtt, &rogue).await?;
    for i in 0..40 {
        let _ = r
            .publish(&format!("junk/{i}"), vec![7u8; 1024 * 1024], true)
            .await;
    }
    docket_tests::eventually("cut at the junk", || !r.is_connected()).await?;
    cuts += 1.0;
    // Reading what is not its own: another device's replies, or everything.
    for filter in [wire::reply_topic(&victim.id), "#".to_owned()] {
        let mut r = Client::connect(d.mqtt, &rogue).await?;
        assert!(
            r.subscribe(&filter).await.is_err(),
            "subscribed to {filter}"
        );
        cuts += 1.0;
    }
    assert_eq!(d.metric("docket_acl_cuts_total")?, cuts);
    assert!(d.log_text().contains("outside the device topic ACL"));

    // Nothing of it reached anyone: no reply for the victim, no event or other board on the
    // screen; the victim and the screen are still served.
    let seen = v.drain_for(Duration::from_millis(300)).await;
    assert!(seen.is_empty(), "the victim received {seen:?}");
    let seen = k.drain_for(Duration::from_millis(300)).await;
    assert!(
        seen.iter().all(|m| m.topic == wire::board_topic("grill")
            && wire::decode::<wire::Board>(&m.payload).is_ok()),
        "the screen received {seen:?}"
    );
    let r = v.command(&place("1")).await?;
    assert!(r.ok, "{r:?}");
    let b = k.board("grill", board.seq).await?;
    assert_eq!(b.station, "grill");
    assert!(rss_mb(&d) < before_rss + 20.0, "junk was kept");
    // And the device's own traffic passes: presence, commands, its replies, boards, menu.
    let mut fine = Client::connect(d.mqtt, &rogue).await?;
    fine.subscribe(wire::MENU_TOPIC).await?;
    fine.subscribe(wire::STATUS_TOPIC).await?;
    assert!(fine.command(&place("2")).await?.ok);
    assert!(fine.is_connected());
    Ok(())
}
