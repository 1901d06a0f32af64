//! Bad input: each gets a clear refusal, nothing is written, and everyone else keeps being served.

use std::time::Duration;

use anyhow::Context;
use docket_core::wire::{self, CommandBody, Envelope, Reply};
use docket_tests::{line, login_refused, reply_code as code, Client, Daemon, ACL_OFF};

type R = anyhow::Result<()>;

fn place(lines: Vec<wire::LineInput>) -> CommandBody {
    CommandBody::place("5", lines)
}

/// The store's row counts: what "nothing written" is checked against.
/// Sends a command and asserts it is refused with `want`, and nothing was written.
async fn refused(d: &Daemon, c: &mut Client, body: &CommandBody, want: &str) -> R {
    let before = d.store_counts()?;
    let r = c.command(body).await?;
    assert!(!r.ok, "{body:?} accepted");
    assert_eq!(code(&r), want, "{body:?}: {r:?}");
    assert!(r.error.as_ref().is_some_and(|e| !e.message.is_empty()));
    assert_eq!(d.store_counts()?, before, "{body:?} wrote something");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_commands_are_refused_with_stable_codes() -> R {
    let d = Daemon::start()?;
    let tablet = d.add_device("tablet-1", "tablet", &[])?;
    let grill = d.add_device("kds-grill", "station", &["grill"])?;
    let expo = d.add_device("expo-1", "expo", &[])?;
    let mut t = Client::connect(d.mqtt, &tablet).await?;
    let mut g = Client::connect(d.mqtt, &grill).await?;
    let mut e = Client::connect(d.mqtt, &expo).await?;

    refused(
        &d,
        &mut t,
        &place(vec![line("unicorn-steak", 1)]),
        "unknown_item",
    )
    .await?;
    refused(&d, &mut t, &place(vec![line("fries", 0)]), "bad_qty").await?;
    refused(&d, &mut t, &place(vec![line("fries", 10_000)]), "bad_qty").await?;
    refused(&d, &mut t, &place(vec![]), "no_lines").await?;
    let mut long = line("fries", 1);
    long.notes = Some("x".repeat(5_000));
    refused(&d, &mut t, &place(vec![long]), "too_long").await?;
    refused(&d, &mut g, &place(vec![line("fries", 1)]), "forbidden").await?;
    refused(
        &d,
        &mut t,
        &CommandBody::Bump {
            order_id: "o-000001".into(),
            station: "grill".into(),
        },
        "forbidden",
    )
    .await?;
    refused(
        &d,
        &mut g,
        &CommandBody::Bump {
            order_id: "o-000001".into(),
            station: "bar".into(),
        },
        "forbidden",
    )
    .await?;
    refused(
        &d,
        &mut e,
        &CommandBody::Complete {
            order_id: "o-999999".into(),
        },
        "unknown_order",
    )
    .await?;

    // A command for a completed order.
    let ok = t.command(&place(vec![line("fries", 1)])).await?;
    let id = ok.order_id.clone().context("id")?;
    assert!(
        e.command(&CommandBody::Complete {
            order_id: id.clone()
        })
        .await?
        .ok
    );
    refused(
        &d,
        &mut t,
        &CommandBody::AddLines {
            order_id: id.clone(),
            lines: vec![line("fries", 1)],
        },
        "order_closed",
    )
    .await?;
    refused(
        &d,
        &mut e,
        &CommandBody::Complete {
            order_id: id.clone(),
        },
        "order_closed",
    )
    .await?;

    // An unknown command type, correctly signed.
    let body = wire::encode(&serde_json::json!({"type": "launch_rockets", "order_id": id}))?;
    let id = t.next_id();
    let env = Envelope {
        mac: wire::mac(&tablet.mac_key(), "tablet-1", &id, &body).to_vec(),
        id,
        device: "tablet-1".into(),
        body,
    };
    let before = d.store_counts()?;
    t.publish(&wire::cmd_topic("tablet-1"), wire::encode(&env)?, false)
        .await?;
    let r = t.reply_to(&env.id).await?;
    assert_eq!(code(&r), "unknown_command");
    assert_eq!(d.store_counts()?, before);

    // Each refusal was counted by code.
    assert_eq!(d.metric("docket_rejects_total{code=\"bad_qty\"}")?, 2.0);
    assert_eq!(d.metric("docket_rejects_total{code=\"forbidden\"}")?, 3.0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_garbage_payloads_change_nothing() -> R {
    // The engine's own checks, behind the device topic ACL: the ACL is off here so that
    // forgeries on other devices' topics reach the engine (tests/tests/hostile.rs has the ACL).
    let d = Daemon::start_with_env(&[ACL_OFF])?;
    let tablet = d.add_device("tablet-1", "tablet", &[])?;
    let other = d.add_device("tablet-2", "tablet", &[])?;
    let mut t = Client::connect(d.mqtt, &tablet).await?;
    let mut o = Client::connect(d.mqtt, &other).await?;
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("../../appliance/core/tests/wire-vectors.json"))?;

    // Garbage on a command topic: no reply possible, a metric and a log line, nothing written.
    let before = d.store_counts()?;
    let garbage: Vec<Vec<u8>> = vectors["garbage_payloads_hex"]
        .as_array()
        .context("garbage list")?
        .iter()
        .map(|g| hex::decode(g.as_str().unwrap_or_default()))
        .collect::<Result<_, _>>()?;
    for g in &garbage {
        t.publish(&wire::cmd_topic("tablet-1"), g.clone(), false)
            .await?;
    }
    // The garbage is counted (it has no sender to answer), and the daemon keeps serving.
    let malformed = "docket_rejects_total{code=\"malformed\"}";
    d.metric_at_least(malformed, garbage.len() as f64).await?;
    assert_eq!(d.metric(malformed)?, garbage.len() as f64);
    let r = o.command(&place(vec![line("fries", 1)])).await?;
    assert!(r.ok);
    assert!(d
        .log_text()
        .contains("undecodable command envelope dropped"));
    let after_good = d.store_counts()?;
    assert_eq!(after_good.0, before.0 + 1);

    // A valid envelope with a wrong MAC (the shared vector, signed for tablet-1's secret).
    let mut env = Envelope::sign(
        &t.next_id(),
        "tablet-1",
        &tablet.mac_key(),
        &place(vec![line("fries", 1)]),
    )?;
    env.mac = vec![0; 32];
    let forged_id = env.id.clone();
    t.publish(&wire::cmd_topic("tablet-1"), wire::encode(&env)?, false)
        .await?;
    assert_eq!(code(&t.reply_to(&env.id).await?), "bad_mac");
    // The same bytes as the shared vector's wrong-MAC envelope.
    let wrong = hex::decode(
        vectors["command_with_wrong_mac"]["envelope_cbor_hex"]
            .as_str()
            .context("hex")?,
    )?;
    t.publish(&wire::cmd_topic("tablet-1"), wrong, false)
        .await?;
    assert_eq!(
        code(&t.reply_to("01JDQ7ZK4P8X3V2M6N9R5T0W1Y").await?),
        "bad_mac"
    );

    // tablet-2 publishing an envelope that claims to be tablet-1, on its own topic...
    let env = Envelope::sign(
        &o.next_id(),
        "tablet-1",
        &tablet.mac_key(),
        &place(vec![line("fries", 1)]),
    )?;
    o.publish(&wire::cmd_topic("tablet-2"), wire::encode(&env)?, false)
        .await?;
    assert_eq!(code(&o.reply_to(&env.id).await?), "device_mismatch");
    // ...or on tablet-1's topic, signed with its own secret.
    let env = Envelope::sign(
        &o.next_id(),
        "tablet-1",
        &other.mac_key(),
        &place(vec![line("fries", 1)]),
    )?;
    o.publish(&wire::cmd_topic("tablet-1"), wire::encode(&env)?, false)
        .await?;
    assert_eq!(code(&t.reply_to(&env.id).await?), "bad_mac");
    assert_eq!(d.store_counts()?, after_good);

    // A captured envelope published again under a new id: the MAC covers the id, so it is not a
    // second order (it would be, were only the body signed).
    let captured = Envelope::sign(
        &t.next_id(),
        "tablet-1",
        &tablet.mac_key(),
        &place(vec![line("fries", 3)]),
    )?;
    t.publish(
        &wire::cmd_topic("tablet-1"),
        wire::encode(&captured)?,
        false,
    )
    .await?;
    assert!(t.reply_to(&captured.id).await?.ok);
    let after_captured = d.store_counts()?;
    assert_eq!(after_captured.0, after_good.0 + 1);
    let replayed = Envelope {
        id: t.next_id(),
        ..captured.clone()
    };
    t.publish(
        &wire::cmd_topic("tablet-1"),
        wire::encode(&replayed)?,
        false,
    )
    .await?;
    assert_eq!(code(&t.reply_to(&replayed.id).await?), "bad_mac");
    assert_eq!(d.store_counts()?, after_captured);
    let after_good = after_captured;

    // An oversized command (1 MB of notes): refused as too large, nothing written.
    let mut big = line("fries", 1);
    big.notes = Some("n".repeat(1024 * 1024));
    let id = t.next_id();
    t.send_as(&id, &place(vec![big])).await?;
    assert_eq!(code(&t.reply_to(&id).await?), "too_large");
    assert_eq!(d.store_counts()?, after_good);

    // A forgery cannot burn a command id: refusals before authentication are not recorded,
    // so the genuine command with the forged one's id still works.
    t.send_as(&forged_id, &place(vec![line("fries", 2)]))
        .await?;
    let r = t.reply_to(&forged_id).await?;
    assert!(r.ok, "{r:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_are_checked_and_revocation_cuts_off_at_once() -> R {
    // The ACL is off so that a command relayed in a revoked device's name reaches the engine.
    let d = Daemon::start_with_env(&[ACL_OFF])?;
    let tablet = d.add_device("tablet-1", "tablet", &[])?;
    let victim = d.add_device("tablet-9", "tablet", &[])?;

    assert!(
        login_refused(d.mqtt, "tablet-1", "tablet-1", &"0".repeat(64)).await,
        "wrong password"
    );
    assert!(
        login_refused(d.mqtt, "nobody", "nobody", &tablet.login()).await,
        "unknown device"
    );
    assert!(
        login_refused(d.mqtt, "tablet-1", "tablet-9", &victim.login()).await,
        "client id != username"
    );
    assert!(
        login_refused(d.mqtt, "x", "docketd-probe", "guess").await,
        "internal user"
    );
    assert!(!login_refused(d.mqtt, "tablet-1", "tablet-1", &tablet.login()).await);
    // The secret itself is not a password: only the login key derived from it is (the secret
    // never crosses the wire after pairing).
    assert!(login_refused(d.mqtt, "tablet-1", "tablet-1", &tablet.secret).await);
    assert!(d.metric("docket_auth_failures_total")? >= 4.0);

    // A connected device is cut off the moment it is revoked, and cannot come back.
    let mut v = Client::connect(d.mqtt, &victim).await?;
    assert!(v.command(&place(vec![line("fries", 1)])).await?.ok);
    let out = d.cli(&["device", "revoke", "--id", "tablet-9"])?;
    assert!(out.contains("\"revoked\":true"));
    docket_tests::eventually("the revoked device is disconnected", || !v.is_connected()).await?;
    assert!(login_refused(d.mqtt, "tablet-9", "tablet-9", &victim.login()).await);
    // Commands in its name (relayed by another device) are refused too.
    let mut t = Client::connect(d.mqtt, &tablet).await?;
    // (the refusal goes to tablet-9's reply topic, which tablet-1 listens to here)
    t.subscribe(&wire::reply_topic("tablet-9")).await?;
    let env = Envelope::sign(
        &t.next_id(),
        "tablet-9",
        &victim.mac_key(),
        &place(vec![line("fries", 1)]),
    )?;
    t.publish(&wire::cmd_topic("tablet-9"), wire::encode(&env)?, false)
        .await?;
    let m = t
        .wait_for(|m| m.topic == wire::reply_topic("tablet-9"))
        .await
        .context("refusal for the revoked device")?;
    let r: Reply = wire::decode(&m.payload)?;
    assert_eq!(code(&r), "revoked");
    assert_eq!(d.metric("docket_kicks_total")?, 1.0);

    // A device added while docketd runs can connect at once.
    let late = d.add_device("tablet-late", "tablet", &[])?;
    let mut l = Client::connect(d.mqtt, &late).await?;
    assert!(l.command(&place(vec![line("fries", 1)])).await?.ok);

    // The CLI refuses nonsense clearly.
    assert!(d
        .cli(&["device", "add", "--id", "a/b", "--role", "tablet"])
        .is_err());
    assert!(d
        .cli(&["device", "add", "--id", "x", "--role", "chef"])
        .is_err());
    assert!(d
        .cli(&["device", "add", "--id", "kds", "--role", "station"])
        .is_err());
    assert!(
        d.cli(&["device", "add", "--id", "tablet-1", "--role", "tablet"])
            .is_err(),
        "duplicate id"
    );
    assert!(d.cli(&["device", "revoke", "--id", "nope"]).is_err());
    let list = d.cli(&["device", "list"])?;
    assert_eq!(list.lines().count(), 3);
    assert!(!list.contains(&tablet.secret), "list must not show secrets");
    assert!(
        !list.contains(&tablet.login()),
        "list must not show login keys"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_writes_to_state_topics_are_restored() -> R {
    // Defence in depth behind the ACL (which cuts such writers first): with it off, the engine
    // still restores its state topics.
    let d = Daemon::start_with_env(&[ACL_OFF])?;
    let tablet = d.add_device("tablet-1", "tablet", &[])?;
    let rogue = d.add_device("tablet-rogue", "tablet", &[])?;
    let mut t = Client::connect(d.mqtt, &tablet).await?;
    assert!(t.command(&place(vec![line("burger-classic", 1)])).await?.ok);
    let r = Client::connect(d.mqtt, &rogue).await?;

    // Overwrite the grill board and clear the menu (empty retained payload).
    r.publish(&wire::board_topic("grill"), b"lies".to_vec(), true)
        .await?;
    r.publish(wire::MENU_TOPIC, Vec::new(), true).await?;
    d.metric_at_least(
        "docket_foreign_writes_total{topic=\"docket/v1/board/grill\"}",
        1.0,
    )
    .await?;
    d.metric_at_least("docket_foreign_writes_total{topic=\"docket/v1/menu\"}", 1.0)
        .await?;
    // A made-up board is cleared: nobody subscribing later receives it.
    r.publish(&wire::board_topic("fake-station"), b"lies".to_vec(), true)
        .await?;
    d.metric_at_least(
        "docket_foreign_writes_total{topic=\"docket/v1/board/fake-station\"}",
        1.0,
    )
    .await?;
    let mut late = Client::connect(d.mqtt, &tablet).await?;
    late.subscribe(&wire::board_topic("fake-station")).await?;
    let got = late.drain_for(Duration::from_millis(300)).await;
    assert!(
        got.iter()
            .all(|m| m.topic != wire::board_topic("fake-station")),
        "fake board still retained"
    );

    // A screen subscribing now gets the box's truth, not the forgery.
    let mut s = Client::connect(d.mqtt, &tablet).await?;
    s.subscribe(&wire::board_topic("grill")).await?;
    let b = s.board("grill", 1).await?;
    assert_eq!(b.orders.len(), 1);
    s.subscribe(wire::MENU_TOPIC).await?;
    let m = s.wait_for(|m| m.topic == wire::MENU_TOPIC).await?;
    assert!(wire::decode::<docket_core::Menu>(&m.payload).is_ok());
    assert!(d.log_text().contains("foreign write to a state topic"));
    Ok(())
}
