//! docketd owns every device connection: one MQTT parser (rumqttd's codec), the device ACL on
//! the packet that parser produced, CONNACKs that say why a login was refused, messages converted
//! between protocol versions, and retained state delivered in full.
//!
//! The first tests are the attacks that worked against the byte-pipe front door, written as
//! hand-made packets (`docket_tests::raw`): they failed against that design.

use std::time::Duration;

use docket_core::wire::{self, CommandBody};
use docket_tests::raw::{self, Raw, Will};
use docket_tests::{line, Client, Creds, Daemon, ACL_OFF};

type R = anyhow::Result<()>;

fn place(table: &str) -> CommandBody {
    CommandBody::place(table, vec![line("fries", 1)])
}

/// An MQTT 5 connect property block that declares 1 byte but holds a 5-byte Session Expiry
/// Interval whose value bytes read, to a parser that trusts the declared length, as the client
/// id `#` followed by a will property length of `then`.
fn overrunning_props(then: u8) -> Vec<u8> {
    vec![0x01, 0x11, 0x00, 0x01, b'#', then]
}

/// The CONNECT that made the old front door judge a device called `#` while rumqttd logged the
/// real device in.
fn crafted_connect(c: &Creds) -> Vec<u8> {
    raw::connect(5, &overrunning_props(0), &c.id, None, &c.id, &c.login())
}

/// The same trick with a will: the old front door read the will topic out of a user property
/// (`docket/v1/devices/#/presence`, "allowed" for a device called `#`) while rumqttd took the
/// real will: `docket/v1/events`, with MQTT 5 properties.
fn crafted_will_connect(c: &Creds) -> Vec<u8> {
    let fake = b"docket/v1/devices/#/presence";
    let mut value = (fake.len() as u16).to_be_bytes().to_vec();
    value.extend_from_slice(fake);
    let will_props = raw::props(&raw::user_property("k", &value));
    // What the old reader skipped after "#": the real client id field, the will property
    // length, the user property's id, key and value length; then it read `value` as the topic.
    let skip = 2 + c.id.len() + 1 + 1 + 3 + 2;
    let will = Will {
        topic: wire::EVENTS_TOPIC,
        payload: b"will",
        retain: false,
        props: will_props,
    };
    raw::connect(
        5,
        &overrunning_props(skip as u8),
        &c.id,
        Some(&will),
        &c.id,
        &c.login(),
    )
}

/// A tablet's crafted CONNECT on the MQTT 5 port, then `SUBSCRIBE docket/v1/reply/#`: it must
/// never read another tablet's reply (it did through the old front door).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crafted_mqtt5_connect_cannot_read_other_devices_replies() -> R {
    let d = Daemon::start()?;
    let victim = d.add_device("tablet-1", "tablet", &[])?;
    let spy = d.add_device("tablet-2", "tablet", &[])?;
    let mut s = Raw::connect("127.0.0.1", d.mqtt_v5).await?;
    s.send(&crafted_connect(&spy)).await?;
    // Whatever the box answered, try the subscription.
    let _ = s
        .send(&raw::subscribe(1, &[0], &["docket/v1/reply/#"]))
        .await;
    let mut v = Client::connect(d.mqtt, &victim).await?;
    assert!(v.command(&place("1")).await?.ok);
    let (frames, closed) = s.collect(Duration::from_millis(800)).await;
    let leaked: Vec<String> = frames
        .iter()
        .filter_map(|f| f.topic())
        .filter(|t| t.starts_with("docket/v1/reply/") && t != &wire::reply_topic(&spy.id))
        .collect();
    assert!(leaked.is_empty(), "the spy read {leaked:?}");
    assert!(closed, "the crafted CONNECT was not refused");
    assert!(
        frames.iter().all(|f| f.kind() != 9),
        "the subscription was acknowledged: {frames:?}"
    );
    Ok(())
}

/// The crafted will (MQTT 5 properties, on the events topic) must not reach screens, and no
/// connection's fault may stop the MQTT 3.1.1 or WebSocket listeners taking logins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crafted_will_cannot_reach_screens_or_stop_a_listener() -> R {
    let d = Daemon::start()?;
    let kds = d.add_device("kds-grill", "station", &["grill"])?;
    let kds_ws = d.add_device("kds-fry", "station", &["fry"])?;
    let rogue = d.add_device("tablet-2", "tablet", &[])?;
    let tablet = d.add_device("tablet-1", "tablet", &[])?;
    let mut k = Client::connect(d.mqtt, &kds).await?;
    k.subscribe(wire::EVENTS_TOPIC).await?;
    let ws = raw::ws_adapter(d.http).await?.port();
    let mut kw = Client::connect(ws, &kds_ws).await;
    if let Ok(c) = kw.as_mut() {
        c.subscribe(wire::EVENTS_TOPIC).await?;
    }

    let mut s = Raw::connect("127.0.0.1", d.mqtt_v5).await?;
    s.send(&crafted_will_connect(&rogue)).await?;
    let _ = tokio::time::timeout(Duration::from_millis(500), s.connack()).await;
    // Drop the connection without DISCONNECT: a will, had one been taken, fires now.
    drop(s);

    let seen = k.drain_for(Duration::from_millis(500)).await;
    assert!(
        seen.iter().all(|m| m.payload != b"will"),
        "the will reached a screen"
    );
    // (The 3.1.1 encoder panicked on the will's properties and took the screens' connections.)
    assert!(k.is_connected(), "the 3.1.1 screen lost its connection");
    if let Ok(c) = kw.as_ref() {
        assert!(c.is_connected(), "the WebSocket screen lost its connection");
    }
    // Every listener still takes logins and serves orders.
    let mut t = Client::connect(d.mqtt, &tablet).await?;
    assert!(t.command(&place("v4")).await?.ok, "3.1.1 listener");
    let mut tw = Client::connect(ws, &tablet).await?;
    assert!(tw.command(&place("ws")).await?.ok, "WebSocket listener");
    let mut r5 = Raw::connect("127.0.0.1", d.mqtt_v5).await?;
    r5.send(&raw::connect(
        5,
        &[0],
        &rogue.id,
        None,
        &rogue.id,
        &rogue.login(),
    ))
    .await?;
    assert_eq!(r5.connack().await?, Some(0), "MQTT 5 listener");
    assert_eq!(d.get("/healthz")?.0, 200);
    Ok(())
}

/// With the ACL off (the bare broker, as the benchmark uses it), a publish carrying MQTT 5
/// properties reaches 3.1.1 and WebSocket subscribers without them, and every listener keeps
/// taking logins. (rumqttd's 3.1.1 encoder panics on a message with properties.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_properties_are_dropped_for_311_and_websocket_subscribers() -> R {
    let d = Daemon::start_with_env(&[ACL_OFF])?;
    let a = d.add_device("tablet-1", "tablet", &[])?;
    let b = d.add_device("tablet-2", "tablet", &[])?;
    let c = d.add_device("tablet-3", "tablet", &[])?;
    let topic = "bench/props";
    let mut v4 = Raw::connect("127.0.0.1", d.mqtt).await?;
    v4.send(&raw::connect(4, &[], &a.id, None, &a.id, &a.login()))
        .await?;
    assert_eq!(v4.connack().await?, Some(0));
    v4.send(&raw::subscribe(1, &[], &[topic])).await?;
    let ws = raw::ws_adapter(d.http).await?.port();
    let mut vw = Raw::connect("127.0.0.1", ws).await?;
    vw.send(&raw::connect(4, &[], &b.id, None, &b.id, &b.login()))
        .await?;
    assert_eq!(vw.connack().await?, Some(0));
    vw.send(&raw::subscribe(1, &[], &[topic])).await?;
    for s in [&mut v4, &mut vw] {
        let f = s.next(docket_tests::DEADLINE).await?.expect("SUBACK");
        assert_eq!(f.kind(), 9, "{f:?}");
    }

    let mut p5 = Raw::connect("127.0.0.1", d.mqtt_v5).await?;
    p5.send(&raw::connect(5, &[0], &c.id, None, &c.id, &c.login()))
        .await?;
    assert_eq!(p5.connack().await?, Some(0));
    let mut props = raw::user_property("origin", b"v5");
    props.extend_from_slice(&[0x01, 0x01]); // payload format: UTF-8
    props.extend_from_slice(&[0x02, 0, 0, 0, 60]); // message expiry
    p5.send(&raw::publish(
        topic,
        Some(7),
        &raw::props(&props),
        b"hello",
        false,
    ))
    .await?;

    for (name, s) in [("3.1.1", &mut v4), ("WebSocket", &mut vw)] {
        let f = loop {
            let f = s
                .next(docket_tests::DEADLINE)
                .await?
                .unwrap_or_else(|| panic!("{name}: connection closed"));
            if f.kind() == 3 {
                break f;
            }
        };
        assert_eq!(f.topic().as_deref(), Some(topic), "{name}");
        assert_eq!(
            f.payload_v4(),
            b"hello",
            "{name}: properties in the payload"
        );
    }
    // Every listener still takes logins.
    let mut t = Client::connect(d.mqtt, &a).await?;
    assert!(t.command(&place("after")).await?.ok);
    let mut tw = Client::connect(ws, &b).await?;
    assert!(tw.command(&place("after-ws")).await?.ok);
    Ok(())
}

/// The three listeners with the protocol level each speaks.
async fn listeners(d: &Daemon) -> anyhow::Result<Vec<(&'static str, u16, u8)>> {
    let ws = raw::ws_adapter(d.http).await?.port();
    Ok(vec![
        ("3.1.1", d.mqtt, 4),
        ("MQTT 5", d.mqtt_v5, 5),
        ("WebSocket", ws, 4),
    ])
}

/// Logs in by hand; returns the CONNACK code and whether the box then closed the connection.
async fn try_login(
    port: u16,
    level: u8,
    id: &str,
    user: &str,
    pass: &str,
) -> anyhow::Result<(Option<u8>, Raw)> {
    let props: &[u8] = if level == 5 { &[0] } else { &[] };
    let mut s = Raw::connect("127.0.0.1", port).await?;
    s.send(&raw::connect(level, props, id, None, user, pass))
        .await?;
    let code = s.connack().await?;
    Ok((code, s))
}

/// A refused login is answered with a CONNACK that says why, on every listener: a tablet can
/// tell "removed" or "wrong credentials" from "network down".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_says_why_on_every_listener() -> R {
    let d = Daemon::start()?;
    let t1 = d.add_device("tablet-1", "tablet", &[])?;
    let t2 = d.add_device("tablet-2", "tablet", &[])?;
    d.cli(&["device", "revoke", "--id", "tablet-2"])?;
    let wrong = "0".repeat(64);
    let (p1, p2) = (t1.login(), t2.login());
    for (name, port, level) in listeners(&d).await? {
        let (bad, removed) = if level == 5 { (0x86, 0x87) } else { (4, 5) };
        let cases = [
            (
                "wrong secret",
                "tablet-1",
                "tablet-1",
                wrong.as_str(),
                Some(bad),
            ),
            ("unknown device", "nobody", "nobody", p1.as_str(), Some(bad)),
            (
                "client id is not the username",
                "tablet-1",
                "tablet-2",
                p2.as_str(),
                Some(bad),
            ),
            (
                "revoked",
                "tablet-2",
                "tablet-2",
                p2.as_str(),
                Some(removed),
            ),
            (
                "the box's own probe user",
                "docketd-probe-x",
                "docketd-probe",
                wrong.as_str(),
                Some(bad),
            ),
            ("paired", "tablet-1", "tablet-1", p1.as_str(), Some(0)),
        ];
        for (what, id, user, pass, want) in cases {
            let (code, mut s) = try_login(port, level, id, user, pass).await?;
            assert_eq!(code, want, "{name}: {what}");
            if want != Some(0) {
                let (_, closed) = s.collect(Duration::from_millis(500)).await;
                assert!(closed, "{name}: {what}: connection left open");
            }
        }
    }
    // MQTT 5 refusals carry a reason a person can read.
    let mut s = Raw::connect("127.0.0.1", d.mqtt_v5).await?;
    s.send(&raw::connect(
        5,
        &[0],
        "tablet-2",
        None,
        "tablet-2",
        &t2.login(),
    ))
    .await?;
    let f = s.next(docket_tests::DEADLINE).await?.expect("CONNACK");
    assert!(
        String::from_utf8_lossy(&f.body).contains("removed"),
        "{f:?}"
    );
    // A client of the other MQTT version is told so in 3.1.1 ("unacceptable protocol version").
    let (code, _) = try_login(d.mqtt, 5, "tablet-1", "tablet-1", &t1.login()).await?;
    assert_eq!(code, Some(1), "MQTT 5 on the 3.1.1 port");
    let (code, _) = try_login(d.mqtt_v5, 4, "tablet-1", "tablet-1", &t1.login()).await?;
    assert_eq!(code, Some(1), "3.1.1 on the MQTT 5 port");
    assert!(d.metric("docket_auth_failures_total")? >= 15.0);
    Ok(())
}

/// Wills on other topics and subscriptions to other devices' replies or commands are refused
/// on every listener, and nothing of them reaches anyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_acl_judges_the_parsed_packet_on_every_listener() -> R {
    let d = Daemon::start()?;
    let victim = d.add_device("tablet-1", "tablet", &[])?;
    let rogue = d.add_device("tablet-2", "tablet", &[])?;
    let mut v = Client::connect(d.mqtt, &victim).await?;
    let mut cuts = 0.0;
    for (name, port, level) in listeners(&d).await? {
        let props: &[u8] = if level == 5 { &[0] } else { &[] };
        for topic in [
            wire::presence_topic(&victim.id),
            wire::EVENTS_TOPIC.to_owned(),
            wire::reply_topic(&victim.id),
        ] {
            let will = Will {
                topic: &topic,
                payload: b"offline",
                retain: true,
                props: props.to_vec(),
            };
            let mut s = Raw::connect("127.0.0.1", port).await?;
            s.send(&raw::connect(
                level,
                props,
                &rogue.id,
                Some(&will),
                &rogue.id,
                &rogue.login(),
            ))
            .await?;
            let want = if level == 5 { 0x87 } else { 5 };
            assert_eq!(s.connack().await?, Some(want), "{name}: a will on {topic}");
            cuts += 1.0;
        }
        for filter in [
            "docket/v1/reply/#",
            "docket/v1/reply/+",
            "docket/v1/cmd/+",
            "#",
        ] {
            let (code, mut s) =
                try_login(port, level, &rogue.id, &rogue.id, &rogue.login()).await?;
            assert_eq!(code, Some(0));
            s.send(&raw::subscribe(1, props, &[wire::EVENTS_TOPIC, filter]))
                .await?;
            let (frames, closed) = s.collect(Duration::from_millis(500)).await;
            assert!(closed, "{name}: subscribed to {filter}");
            assert!(
                frames.iter().all(|f| f.kind() != 9),
                "{name}: SUBACK for {filter}"
            );
            cuts += 1.0;
        }
    }
    assert!(v.command(&place("1")).await?.ok);
    let seen = v.drain_for(Duration::from_millis(300)).await;
    assert!(seen.is_empty(), "the victim received {seen:?}");
    assert_eq!(d.metric("docket_acl_cuts_total")?, cuts);
    Ok(())
}

/// A menu with one station per item.
fn menu_with_stations(dir: &std::path::Path, n: usize) -> anyhow::Result<std::path::PathBuf> {
    let mut toml = String::from("version = 1\n");
    for i in 0..n {
        toml.push_str(&format!(
            "[[items]]\nid = \"item-{i}\"\nname = \"Item {i}\"\nprice = 100\nstation = \"s{i:03}\"\n"
        ));
    }
    let path = dir.join("menu.toml");
    std::fs::write(&path, toml)?;
    Ok(path)
}

/// rumqttd's router forwards only 100 retained messages on a QoS 1 subscription: an expo on a
/// 300-station menu must still get every board, at the QoS it asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_retained_board_arrives_on_subscribe() -> R {
    let dir = tempfile::tempdir()?;
    let menu = menu_with_stations(dir.path(), 300)?;
    let d = Daemon::start_with(
        &[],
        "test-site",
        &format!("[menu]\nfile = \"{}\"", menu.display()),
    )?;
    let expo = d.add_device("expo-1", "expo", &[])?;
    let expo5 = d.add_device("expo-2", "expo", &[])?;
    // A 3.1.1 screen (rumqttc, QoS 1).
    let mut c = Client::connect(d.mqtt, &expo).await?;
    c.subscribe("docket/v1/board/+").await?;
    let mut boards = std::collections::BTreeSet::new();
    while boards.len() < 301 {
        let m = c
            .wait_for(|m| m.topic.starts_with("docket/v1/board/"))
            .await
            .map_err(|e| anyhow::anyhow!("{} of 301 boards: {e}", boards.len()))?;
        assert!(m.retain, "{} not retained", m.topic);
        boards.insert(m.topic);
    }
    // An MQTT 5 screen by hand: every board at QoS 1 with a packet id, each acknowledged.
    let (code, mut s) = try_login(d.mqtt_v5, 5, &expo5.id, &expo5.id, &expo5.login()).await?;
    assert_eq!(code, Some(0));
    s.send(&raw::subscribe(1, &[0], &["docket/v1/board/+"]))
        .await?;
    let mut topics = std::collections::BTreeSet::new();
    let mut granted = None;
    while topics.len() < 301 {
        let f = s.next(docket_tests::DEADLINE).await?.expect("open");
        match f.kind() {
            9 => granted = f.body.get(3).copied(),
            3 => {
                assert_eq!(f.qos(), 1, "{:?}", f.topic());
                let id = f.pkid().expect("packet id");
                s.send(&raw::packet(0x40, &id.to_be_bytes())).await?;
                topics.insert(f.topic().expect("topic"));
            }
            _ => {}
        }
    }
    assert_eq!(granted, Some(1), "SUBACK grants QoS 1");
    // The acknowledgements were taken: still connected and still served.
    s.send(&[0xC0, 0]).await?;
    let pong = loop {
        let f = s
            .next(docket_tests::DEADLINE)
            .await?
            .expect("still connected");
        if f.kind() == 13 {
            break f;
        }
    };
    assert_eq!(pong.kind(), 13);
    Ok(())
}

/// A client that sends CONNECT and SUBSCRIBE in one write (mqtt.js and rumqttc pipeline them)
/// gets its SUBACK without sending anything more; a packet only servers send ends only its
/// sender's connection (rumqttd's MQTT 5 reader panics on a CONNACK or UNSUBACK).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_and_server_only_packets() -> R {
    let d = Daemon::start()?;
    let t = d.add_device("tablet-1", "tablet", &[])?;
    for (port, level) in [(d.mqtt, 4u8), (d.mqtt_v5, 5)] {
        let props: &[u8] = if level == 5 { &[0] } else { &[] };
        let mut bytes = raw::connect(level, props, &t.id, None, &t.id, &t.login());
        bytes.extend(raw::subscribe(1, props, &[wire::EVENTS_TOPIC]));
        let mut s = Raw::connect("127.0.0.1", port).await?;
        s.send(&bytes).await?;
        assert_eq!(s.connack().await?, Some(0));
        let f = s.next(docket_tests::DEADLINE).await?.expect("SUBACK");
        assert_eq!(f.kind(), 9, "level {level}: {f:?}");
        // CONNACK (2) and UNSUBACK (11) from a client.
        for bad in [
            raw::packet(0x20, &[0, 0, 0]),
            raw::packet(0xB0, &[0, 1, 0, 0]),
        ] {
            let (code, mut s) = try_login(port, level, &t.id, &t.id, &t.login()).await?;
            assert_eq!(code, Some(0));
            s.send(&bad).await?;
            let (_, closed) = s.collect(Duration::from_millis(500)).await;
            assert!(closed, "level {level}: {bad:?} left the connection open");
        }
    }
    let mut c = Client::connect(d.mqtt, &t).await?;
    assert!(c.command(&place("after")).await?.ok);
    assert_eq!(d.get("/healthz")?.0, 200);
    Ok(())
}

/// A screen that stopped reading (its socket full, a write pending) is still cut off the moment
/// it is revoked, not when the write gives up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_that_stopped_reading_is_cut_at_once() -> R {
    let d = Daemon::start_with(&[], "test-site", "commands_per_second = 0")?;
    let kds = d.add_device("kds-stuck", "station", &["grill"])?;
    let tablet = d.add_device("tablet-1", "tablet", &[])?;
    // A tiny receive buffer, and never a read after the SUBACK.
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(2048)?;
    let mut s = Raw {
        stream: socket.connect(([127, 0, 0, 1], d.mqtt).into()).await?,
    };
    s.send(&raw::connect(4, &[], &kds.id, None, &kds.id, &kds.login()))
        .await?;
    assert_eq!(s.connack().await?, Some(0));
    // Events, and the boards: each one carries every open order, several times a second.
    s.send(&raw::subscribe(
        1,
        &[],
        &[wire::EVENTS_TOPIC, "docket/v1/board/+"],
    ))
    .await?;
    let f = s.next(docket_tests::DEADLINE).await?.expect("SUBACK");
    assert_eq!(f.kind(), 9);
    let mut t = Client::connect(d.mqtt, &tablet).await?;
    // Enough events to fill both socket buffers: the box's writes to the screen get stuck.
    for i in 0..600 {
        assert!(t.command(&place(&format!("{i}"))).await?.ok);
    }
    assert_eq!(d.metric("docket_mqtt_connections")?, 2.0);
    // Orders keep coming while the manager revokes it: the box is in the middle of a write.
    let busy = tokio::spawn(async move {
        for i in 0.. {
            if t.command(&place(&format!("more-{i}"))).await.is_err() {
                return;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    d.cli(&["device", "revoke", "--id", "kds-stuck"])?;
    let r = docket_tests::eventually("the revoked, non-reading screen is cut", || {
        d.metric("docket_mqtt_connections").is_ok_and(|n| n < 2.0)
    })
    .await;
    busy.abort();
    r?;
    Ok(())
}

/// A device's commands skip the router, its SUBSCRIBEs do not: a client that sends CONNECT
/// (clean session), SUBSCRIBE to its reply topic and a command in one write still gets the
/// reply (the session holds the command until the router answered the SUBSCRIBE), and the
/// command's PUBACK after the SUBACK; on every listener, ten times over to give a race its
/// chance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_pipelined_behind_its_subscribe_gets_its_reply() -> R {
    let d = Daemon::start()?;
    let t = d.add_device("tablet-1", "tablet", &[])?;
    let mut n = 0;
    for (port, level) in [(d.mqtt, 4u8), (d.mqtt_v5, 5)] {
        for round in 0..10 {
            n += 1;
            let id = format!("pipelined-{level}-{round}");
            let mut s = Raw::connect("127.0.0.1", port).await?;
            let (reply, acked_after_suback) =
                raw::order_in_one_write(&mut s, level, &t, &id).await?;
            assert!(acked_after_suback, "level {level}: PUBACK before SUBACK");
            assert_eq!(reply.command, id);
            assert!(reply.ok, "{reply:?}");
        }
    }
    assert_eq!(
        d.metric("docket_commands_total{result=\"ok\"}")?,
        f64::from(n)
    );
    Ok(())
}
