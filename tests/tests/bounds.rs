//! A paired device (real credentials) trying to fill the disk, the screens or the box's time:
//! an order grown past its byte bound, refused commands by the thousand, replay pages of large
//! orders. Each is refused or bounded, and the store and the other devices' view stay as they were.

use std::collections::HashMap;

use docket_core::wire::{self, CommandBody, Envelope, LineInput, Reply};
use docket_tests::{line, reply_code as code, Client, Daemon};

type R = anyhow::Result<()>;

/// A line with the longest notes the box takes (200 characters).
fn long_line() -> LineInput {
    let mut l = line("fries", 1);
    l.notes = Some("n".repeat(200));
    l
}

/// `add_lines` can grow an order only to its byte bound (16 KiB encoded): past it the command
/// is refused as `too_large`, and no event, no board and no stored order carries more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_cannot_be_grown_past_its_byte_bound() -> R {
    let d = Daemon::start()?;
    let creds = d.add_device("tablet-1", "tablet", &[])?;
    let mut t = Client::connect(d.mqtt, &creds).await?;
    let r = t
        .command(&CommandBody::place("9", vec![long_line(); 40]))
        .await?;
    assert!(r.ok, "{r:?}");
    let order_id = r.order_id.clone().unwrap_or_default();
    let add = CommandBody::AddLines {
        order_id: order_id.clone(),
        lines: vec![long_line(); 10],
    };
    let mut refused = None;
    for _ in 0..20 {
        let r = t.command(&add).await?;
        if !r.ok {
            refused = Some(r);
            break;
        }
    }
    let r = refused.expect("the order grew without bound");
    assert_eq!(code(&r), "too_large", "{r:?}");
    let before = d.store_counts()?;
    // Again: still refused, nothing written.
    let r = t.command(&add).await?;
    assert_eq!(code(&r), "too_large");
    assert_eq!(d.store_counts()?.0, before.0);
    let db = rusqlite::Connection::open(d.db_path())?;
    let biggest: i64 = db.query_row("SELECT MAX(LENGTH(payload)) FROM events", [], |r| r.get(0))?;
    assert!(
        biggest < 17 * 1024,
        "an event of {biggest} bytes (an order is at most 16 KiB)"
    );
    Ok(())
}

/// A device that sends thousands of refused commands (a wrong MAC) is answered `bad_mac` only up
/// to its rate burst: the rest are `rate_limited` from their id alone, and a well-behaved device
/// is served as usual meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_commands_count_against_the_rate_limit() -> R {
    let d = Daemon::start()?;
    let rogue = d.add_device("tablet-6", "tablet", &[])?;
    let good = d.add_device("tablet-1", "tablet", &[])?;
    let mut r = Client::connect(d.mqtt, &rogue).await?;
    let mut g = Client::connect(d.mqtt, &good).await?;
    const SENT: usize = 1000;
    let body = CommandBody::place("6", vec![line("fries", 1)]);
    for i in 0..SENT {
        let mut env = Envelope::sign(&format!("forged-{i}"), &rogue.id, &rogue.mac_key(), &body)?;
        env.mac = vec![0; 32];
        r.publish(&wire::cmd_topic(&rogue.id), wire::encode(&env)?, false)
            .await?;
    }
    // The box's own counts are exact; the replies a device this fast reads may not all reach it
    // (its reply log is bounded: a device that misses a reply sends the command again).
    let count = |code: &str| {
        d.metric(&format!("docket_rejects_total{{code=\"{code}\"}}"))
            .unwrap_or(0.0)
    };
    docket_tests::eventually("every forged command answered", || {
        count("bad_mac") + count("rate_limited") >= SENT as f64
    })
    .await?;
    let (bad_mac, limited) = (count("bad_mac"), count("rate_limited"));
    assert_eq!(bad_mac + limited, SENT as f64, "{bad_mac} + {limited}");
    // The burst is 200, refilled at 50 a second while the flood is sent.
    assert!(
        bad_mac < 500.0 && limited > 400.0,
        "refused commands were not rate-limited: {bad_mac} bad_mac, {limited} rate_limited"
    );
    let topic = wire::reply_topic(&rogue.id);
    let heard = r.drain_for(std::time::Duration::from_millis(500)).await;
    let codes: HashMap<String, usize> = heard
        .iter()
        .filter(|m| m.topic == topic)
        .filter_map(|m| wire::decode::<Reply>(&m.payload).ok())
        .fold(HashMap::new(), |mut by, reply| {
            *by.entry(code(&reply).to_owned()).or_default() += 1;
            by
        });
    assert!(
        codes.get("rate_limited").copied().unwrap_or(0) > 0,
        "the device was told it is rate-limited: {codes:?}"
    );
    // The other device orders as usual; nothing of the flood was written.
    assert!(g.command(&body).await?.ok);
    assert_eq!(d.store_counts()?, (1, 1));
    Ok(())
}

/// Replay pages are bounded by bytes too: with orders near their byte bound, a page holds fewer
/// than `replay_page` events, says `more`, and the pages together give every event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_pages_are_bounded_by_bytes() -> R {
    let d = Daemon::start()?; // replay_page = 20 in the test config
    let creds = d.add_device("tablet-1", "tablet", &[])?;
    let mut t = Client::connect(d.mqtt, &creds).await?;
    for i in 0..30 {
        let r = t
            .command(&CommandBody::place(&format!("{i}"), vec![long_line(); 50]))
            .await?;
        assert!(r.ok, "{r:?}");
    }
    let first = t.command(&CommandBody::Replay { after_seq: 0 }).await?;
    let events = first.events.clone().unwrap_or_default();
    assert!(
        !events.is_empty() && events.len() < 20,
        "{} events in the first page",
        events.len()
    );
    assert_eq!(first.more, Some(true));
    let bytes: usize = events
        .iter()
        .map(|e| wire::encode(e).map_or(0, |b| b.len()))
        .sum();
    assert!(bytes <= 256 * 1024, "a page of {bytes} event bytes");
    let all = t.replay_all(0).await?;
    let seqs: Vec<u64> = all.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=30).collect::<Vec<u64>>());
    Ok(())
}

/// Padded orders (each near its 16 KiB bound) fill the open orders' byte budget before their
/// count limit: the next is `too_many_open_orders`, and the busiest board stays under the
/// broker's 2 MiB packet limit. (Before, 1,000 such orders made an 8+ MB board.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn padded_orders_cannot_make_a_board_too_big_to_send() -> R {
    let d = Daemon::start()?;
    let creds = d.add_device("tablet-1", "tablet", &[])?;
    let kds = d.add_device("kds-fry", "station", &["fry"])?;
    let mut t = Client::connect(d.mqtt, &creds).await?;
    let mut placed = 0;
    let refusal = loop {
        let r = t
            .command(&CommandBody::place(
                &format!("{placed}"),
                vec![long_line(); 50],
            ))
            .await?;
        if !r.ok {
            break r;
        }
        placed += 1;
        assert!(placed < 500, "no byte bound on the open orders");
    };
    assert_eq!(code(&refusal), "too_many_open_orders", "{refusal:?}");
    assert!(placed > 50, "refused after only {placed} orders");
    // The fry board carries every one of them.
    let mut k = Client::connect(d.mqtt, &kds).await?;
    k.subscribe("docket/v1/board/fry").await?;
    // (Boards are coalesced: the retained one may predate the last orders; the next has all.)
    let m = k
        .wait_for(|m| {
            m.topic == "docket/v1/board/fry"
                && wire::decode::<wire::Board>(&m.payload).is_ok_and(|b| b.orders.len() == placed)
        })
        .await?;
    assert!(
        m.payload.len() < 2 * 1024 * 1024 - 4096,
        "a board of {} bytes",
        m.payload.len()
    );
    Ok(())
}

/// The byte bounds are the site's to set: with `engine.max_order_bytes = 4096` an order that the
/// default takes is refused `too_large`, and nothing of it is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_byte_bound_is_a_config_key() -> R {
    // Lands in the harness's [engine] section.
    let d = Daemon::start_with(&[], "test-site", "max_order_bytes = 4096")?;
    let creds = d.add_device("tablet-1", "tablet", &[])?;
    let mut t = Client::connect(d.mqtt, &creds).await?;
    let big = CommandBody::place("9", vec![long_line(); 20]);
    let r = t.command(&big).await?;
    assert_eq!(code(&r), "too_large", "{r:?}");
    assert_eq!(d.store_counts()?, (0, 0));
    let small = CommandBody::place("9", vec![long_line(); 5]);
    assert!(t.command(&small).await?.ok);

    // The same 20 lines under the default bound.
    let d2 = Daemon::start()?;
    let creds = d2.add_device("tablet-1", "tablet", &[])?;
    let mut t2 = Client::connect(d2.mqtt, &creds).await?;
    assert!(t2.command(&big).await?.ok);
    Ok(())
}
