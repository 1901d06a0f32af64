//! The order loop end to end: real docketd, real MQTT clients over TCP.

use std::time::Duration;

use anyhow::Context;

use docket_core::wire::{self, CommandBody, Event, EventKind};
use docket_core::LineStatus;
use docket_tests::{line, Client, Daemon, View};

type R = anyhow::Result<()>;

fn place(table: &str, lines: Vec<wire::LineInput>) -> CommandBody {
    CommandBody::place(table, lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_reaches_every_screen_and_board() -> R {
    let d = Daemon::start()?;
    let tablet = d.add_device("tablet-1", "tablet", &[])?;
    let grill = d.add_device("kds-grill", "station", &["grill"])?;
    let bar = d.add_device("kds-bar", "station", &["bar"])?;
    let expo = d.add_device("expo-1", "expo", &[])?;

    let mut screens = Vec::new();
    for c in [&grill, &bar, &expo] {
        let mut s = Client::connect(d.mqtt, c).await?;
        s.subscribe(wire::EVENTS_TOPIC).await?;
        screens.push(s);
    }
    // A subscription is in place once the retained boards it asked for arrive.
    for (s, st) in screens.iter_mut().zip(["grill", "bar", "expo"]) {
        s.subscribe(&wire::board_topic(st)).await?;
        let b = s.board(st, 0).await.context(st)?;
        assert!(b.orders.is_empty());
    }

    let mut t = Client::connect(d.mqtt, &tablet).await?;
    let reply = t
        .command(&place(
            "12",
            vec![
                line("burger-classic", 2),
                line("ipa-pint", 1),
                line("fries", 1),
            ],
        ))
        .await?;
    assert!(reply.ok, "{reply:?}");
    let order_id = reply.order_id.clone().expect("order id");
    assert_eq!(reply.ticket, Some(1));
    assert_eq!(reply.seq, Some(1));
    assert_eq!(order_id, "o-000001");

    for s in screens.iter_mut() {
        let m = s
            .wait_for(|m| m.topic == wire::EVENTS_TOPIC)
            .await
            .context("event")?;
        let e: Event = wire::decode(&m.payload)?;
        assert_eq!(e.kind, EventKind::OrderPlaced);
        assert_eq!(e.seq, 1);
        assert_eq!(e.order_id, order_id);
        assert_eq!(e.command, reply.command);
        assert_eq!(e.device, "tablet-1");
        assert_eq!(e.order.lines.len(), 3);
    }
    let stations: Vec<&str> = vec!["grill", "bar", "expo"];
    for (s, st) in screens.iter_mut().zip(&stations) {
        let b = s.board(st, 1).await.context("board after order")?;
        assert_eq!(b.orders.len(), 1, "{st} board");
        assert_eq!(b.orders[0].id, order_id);
    }
    // Lines were routed by menu item.
    // (A second screen: one client id = one connection; a second login with it takes over.)
    let other = d.add_device("expo-2", "expo", &[])?;
    let mut fresh = Client::connect(d.mqtt, &other).await?;
    fresh.subscribe(&wire::board_topic("fry")).await?;
    let fry = fresh.board("fry", 1).await.context("fry")?;
    let o = &fry.orders[0];
    let stations_of: Vec<(&str, &str)> = o
        .lines
        .iter()
        .map(|l| (l.item.as_str(), l.station.as_str()))
        .collect();
    assert_eq!(
        stations_of,
        vec![
            ("burger-classic", "grill"),
            ("ipa-pint", "bar"),
            ("fries", "fry")
        ]
    );
    assert!(o.lines.iter().all(|l| l.status == LineStatus::Fired));
    fresh.subscribe(&wire::board_topic("cold")).await?;
    assert!(
        fresh.board("cold", 0).await?.orders.is_empty(),
        "cold has nothing of this order"
    );

    // The grill bumps: the grill board empties, expo still shows it in progress.
    let mut g = screens.remove(0);
    let r = g
        .command(&CommandBody::Bump {
            order_id: order_id.clone(),
            station: "grill".into(),
        })
        .await?;
    assert!(r.ok, "{r:?}");
    assert!(g
        .board("grill", 2)
        .await
        .context("grill after bump")?
        .orders
        .is_empty());
    let ex = screens[1]
        .board("expo", 2)
        .await
        .context("expo after bump")?;
    assert_eq!(ex.orders[0].status.as_str(), "in_progress");

    // The menu is retained for tablets.
    t.subscribe(wire::MENU_TOPIC).await?;
    let m = t
        .wait_for(|m| m.topic == wire::MENU_TOPIC)
        .await
        .context("menu")?;
    let menu: docket_core::Menu = wire::decode(&m.payload)?;
    assert!(menu.items.len() >= 25);
    assert_eq!(d.metric("docket_seq")?, 2.0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_sent_five_times_makes_one_order() -> R {
    let d = Daemon::start()?;
    let creds = d.add_device("tablet-1", "tablet", &[])?;
    let mut t = Client::connect(d.mqtt, &creds).await?;
    let mut steak = line("steak-ribeye", 1);
    steak.mods = vec!["medium".into()];
    let body = place("4", vec![steak]);
    let id = "01JDQ7ZK4P8X3V2M6N9R5T0W1Y";
    let mut replies = Vec::new();
    for _ in 0..3 {
        t.send_as(id, &body).await?;
        replies.push(t.reply_to(id).await?);
    }
    // ...and across a reconnect.
    t.disconnect().await;
    let mut t = Client::connect(d.mqtt, &creds).await?;
    for _ in 0..2 {
        t.send_as(id, &body).await?;
        replies.push(t.reply_to(id).await?);
    }
    assert_eq!(replies.len(), 5);
    assert!(replies[0].ok);
    for r in &replies[1..] {
        assert_eq!(r, &replies[0], "every copy gets the first reply");
    }
    assert_eq!(d.metric("docket_seq")?, 1.0, "one event only");
    assert_eq!(d.metric("docket_open_orders")?, 1.0);
    assert_eq!(
        d.metric("docket_commands_total{result=\"duplicate\"}")?,
        4.0
    );
    // The next distinct command gets the next ticket.
    let r = t.command(&body).await?;
    assert_eq!(r.ticket, Some(2));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_after_a_reply_loses_nothing() -> R {
    let mut d = Daemon::start()?;
    let creds = d.add_device("tablet-1", "tablet", &[])?;
    let expo = d.add_device("expo-1", "expo", &[])?;
    let mut t = Client::connect(d.mqtt, &creds).await?;
    let mut acked = Vec::new();
    for i in 0..5 {
        let r = t
            .command(&place(
                &format!("{i}"),
                vec![line("salad-caesar", 1), line("margarita", 2)],
            ))
            .await?;
        assert!(r.ok);
        acked.push(r.order_id.expect("id"));
    }
    // Kill right after the last reply: no drain, no shutdown.
    d.kill9();
    drop(t);
    d.restart()?;

    let mut e = Client::connect(d.mqtt, &expo).await?;
    e.subscribe(&wire::board_topic("expo")).await?;
    let b = e.board("expo", 0).await?;
    assert_eq!(b.seq, 5, "retained board republished from SQLite");
    let ids: Vec<String> = b.orders.iter().map(|o| o.id.clone()).collect();
    assert_eq!(ids, acked);
    e.subscribe(&wire::board_topic("cold")).await?;
    assert_eq!(e.board("cold", 5).await?.orders.len(), 5);

    let mut t = Client::connect(d.mqtt, &creds).await?;
    let r = t.command(&place("9", vec![line("fries", 1)])).await?;
    assert_eq!(r.seq, Some(6), "seq continues gapless: {r:?}");
    assert_eq!(r.ticket, Some(6));
    let events = t.replay_all(0).await?;
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=6).collect::<Vec<_>>());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_screen_that_was_away_shows_exactly_the_open_orders() -> R {
    let d = Daemon::start()?;
    let tablet = d.add_device("tablet-1", "tablet", &[])?;
    let grill = d.add_device("kds-grill", "station", &["grill"])?;
    let expo = d.add_device("expo-1", "expo", &[])?;
    let mut t = Client::connect(d.mqtt, &tablet).await?;
    let mut ex = Client::connect(d.mqtt, &expo).await?;

    // Screen online: takes a snapshot.
    let mut s = Client::connect(d.mqtt, &grill).await?;
    s.subscribe(wire::EVENTS_TOPIC).await?;
    s.subscribe(&wire::board_topic("grill")).await?;
    let before = View::from_board(s.board("grill", 0).await?);
    let r = t
        .command(&place("1", vec![line("burger-bacon", 1)]))
        .await?;
    assert!(r.ok);
    s.disconnect().await;

    // While it is away: 30 orders, some bumped, some completed, a void, a recall.
    let mut ids = Vec::new();
    for i in 0..30 {
        let r = t
            .command(&place(
                &format!("{i}"),
                vec![line("burger-classic", 1), line("fries", 1)],
            ))
            .await?;
        ids.push(r.order_id.expect("id"));
    }
    for id in ids.iter().take(10) {
        assert!(
            ex.command(&CommandBody::Bump {
                order_id: id.clone(),
                station: "grill".into()
            })
            .await?
            .ok
        );
    }
    for id in ids.iter().skip(10).take(5) {
        assert!(
            ex.command(&CommandBody::Complete {
                order_id: id.clone()
            })
            .await?
            .ok
        );
    }
    assert!(
        ex.command(&CommandBody::Recall {
            order_id: ids[0].clone(),
            station: "grill".into()
        })
        .await?
        .ok
    );
    assert!(
        t.command(&CommandBody::VoidLine {
            order_id: ids[20].clone(),
            line: 1
        })
        .await?
        .ok
    );
    let last_seq = d.metric("docket_seq")? as u64;

    // Back: subscribe events, then the board; snapshot + replay from the snapshot's seq.
    let mut s = Client::connect(d.mqtt, &grill).await?;
    s.subscribe(wire::EVENTS_TOPIC).await?;
    s.subscribe(&wire::board_topic("grill")).await?;
    let board = s.board("grill", 0).await?;
    let mut view = View::from_board(board);
    for e in s.replay_all(view.seq).await? {
        view.apply(&e)
            .map_err(|_| anyhow::anyhow!("gap in replay"))?;
    }
    assert_eq!(view.seq, last_seq);
    // Truth: grill has order 1 + orders 1..30 minus 10 bumped (+1 recalled) minus 5 completed
    // minus the one whose grill line was voided.
    let mut want: Vec<u64> = vec![1];
    for (i, _) in ids.iter().enumerate() {
        let ticket = i as u64 + 2;
        let bumped = i < 10 && i != 0;
        let completed = (10..15).contains(&i);
        let voided = i == 20;
        if !bumped && !completed && !voided {
            want.push(ticket);
        }
    }
    assert_eq!(view.tickets(), want);
    assert_ne!(view, before);
    // And the view equals the box's own current board.
    let mut fresh = Client::connect(d.mqtt, &expo).await?;
    fresh.subscribe(&wire::board_topic("grill")).await?;
    let now = View::from_board(fresh.board("grill", last_seq).await?);
    assert_eq!(view.orders, now.orders);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_pages_through_history() -> R {
    let d = Daemon::start()?;
    let creds = d.add_device("tablet-1", "tablet", &[])?;
    let mut t = Client::connect(d.mqtt, &creds).await?;
    for i in 0..45 {
        assert!(
            t.command(&place(&format!("{i}"), vec![line("espresso", 1)]))
                .await?
                .ok
        );
    }
    // The test config pages by 20.
    let first = t.command(&CommandBody::Replay { after_seq: 0 }).await?;
    assert_eq!(first.events.as_ref().map(Vec::len), Some(20));
    assert_eq!(first.more, Some(true));
    let all = t.replay_all(10).await?;
    assert_eq!(all.first().map(|e| e.seq), Some(11));
    assert_eq!(all.last().map(|e| e.seq), Some(45));
    let none = t.command(&CommandBody::Replay { after_seq: 45 }).await?;
    assert_eq!(none.events, Some(vec![]));
    assert_eq!(none.more, Some(false));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn courses_hold_until_fired() -> R {
    let d = Daemon::start()?;
    let tablet = d.add_device("tablet-1", "tablet", &[])?;
    let expo = d.add_device("expo-1", "expo", &[])?;
    let mut t = Client::connect(d.mqtt, &tablet).await?;
    let mut e = Client::connect(d.mqtt, &expo).await?;
    let mut main = line("steak-ribeye", 1);
    main.mods = vec!["rare".into()];
    main.course = Some(2);
    let r = t
        .command(&place("8", vec![line("oysters-6", 1), main]))
        .await?;
    let id = r.order_id.expect("id");
    e.subscribe(&wire::board_topic("grill")).await?;
    assert!(
        e.board("grill", 1).await?.orders.is_empty(),
        "course 2 is held"
    );
    assert!(
        t.command(&CommandBody::FireCourse {
            order_id: id.clone(),
            course: 2
        })
        .await?
        .ok
    );
    let g = e.board("grill", 2).await?;
    assert_eq!(g.orders.len(), 1);
    assert_eq!(g.orders[0].lines[1].status, LineStatus::Fired);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_exits_cleanly() -> R {
    let mut d = Daemon::start()?;
    let creds = d.add_device("tablet-1", "tablet", &[])?;
    let mut t = Client::connect(d.mqtt, &creds).await?;
    assert!(t.command(&place("1", vec![line("fries", 1)])).await?.ok);
    let status = d.terminate()?;
    assert!(status.success(), "exit status {status}");
    assert!(d.log_text().contains("engine drained and stopped"));
    let db = rusqlite::Connection::open(d.db_path())?;
    let check: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    assert_eq!(check, "ok");
    let n: i64 = db.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?;
    assert_eq!(n, 1);
    tokio::time::sleep(Duration::from_millis(1)).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mqtt5_tablet_places_an_order() -> R {
    use rumqttc::v5::mqttbytes::v5::Packet;
    use rumqttc::v5::mqttbytes::QoS;
    use rumqttc::v5::{AsyncClient, Event, MqttOptions};
    let d = Daemon::start()?;
    let creds = d.add_device("tablet-5", "tablet", &[])?;
    let mut opts = MqttOptions::new("tablet-5", "127.0.0.1", d.mqtt_v5);
    opts.set_credentials("tablet-5", creds.login());
    let (client, mut ev) = AsyncClient::new(opts, 10);
    client
        .subscribe(wire::reply_topic("tablet-5"), QoS::AtLeastOnce)
        .await?;
    let body = place("3", vec![line("negroni", 2)]);
    let env = wire::Envelope::sign("v5-cmd-1", "tablet-5", &creds.mac_key(), &body)?;
    let reply = tokio::time::timeout(docket_tests::DEADLINE, async {
        loop {
            match ev.poll().await? {
                Event::Incoming(Packet::SubAck(_)) => {
                    client
                        .publish(
                            wire::cmd_topic("tablet-5"),
                            QoS::AtLeastOnce,
                            false,
                            wire::encode(&env)?,
                        )
                        .await?;
                }
                Event::Incoming(Packet::Publish(p)) => {
                    return Ok::<_, anyhow::Error>(wire::decode::<wire::Reply>(&p.payload)?)
                }
                _ => {}
            }
        }
    })
    .await
    .context("no reply over MQTT 5")??;
    assert!(reply.ok, "{reply:?}");
    assert_eq!(reply.command, "v5-cmd-1");
    assert_eq!(reply.ticket, Some(1));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_arriving_together_share_a_commit() -> R {
    let d = Daemon::start()?;
    let mut tablets = Vec::new();
    for i in 0..20 {
        let c = d.add_device(&format!("tablet-{i}"), "tablet", &[])?;
        tablets.push(Client::connect(d.mqtt, &c).await?);
    }
    // Every tablet fires 10 orders without waiting, then collects its replies.
    let mut sent = Vec::new();
    for t in tablets.iter_mut() {
        let mut ids = Vec::new();
        for k in 0..10 {
            let id = t.next_id();
            t.send_as(&id, &place(&format!("{k}"), vec![line("lemonade", 1)]))
                .await?;
            ids.push(id);
        }
        sent.push(ids);
    }
    let mut seqs = Vec::new();
    for (t, ids) in tablets.iter_mut().zip(&sent) {
        for id in ids {
            let r = t.reply_to(id).await?;
            assert!(r.ok, "{r:?}");
            seqs.push(r.seq.context("seq")?);
        }
    }
    seqs.sort();
    assert_eq!(
        seqs,
        (1..=200).collect::<Vec<_>>(),
        "200 orders, gapless, none twice"
    );
    let commits = d.metric("docket_commit_seconds_count")?;
    let committed = d.metric("docket_committed_commands_total")?;
    assert_eq!(committed, 200.0);
    assert!(
        commits < 200.0,
        "no group commit: {commits} commits for 200 commands"
    );
    Ok(())
}
