//! The kitchen's finer moves against the real daemon over MQTT: one line bumped at a time (the
//! ticket stays on its board until its last line), a rush mark on every board, and the
//! refusals that change nothing.

use anyhow::Context;

use docket_core::wire::{self, CommandBody, Event, EventKind};
use docket_core::LineStatus;
use docket_tests::{line, reply_code, Client, Daemon};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_bumped_alone_and_a_rush_reach_every_board() -> anyhow::Result<()> {
    let d = Daemon::start()?;
    let tablet = d.add_device("tablet-1", "tablet", &[])?;
    let grill = d.add_device("kds-grill", "station", &["grill"])?;
    let fry = d.add_device("kds-fry", "station", &["fry"])?;
    let mut t = Client::connect(d.mqtt, &tablet).await?;
    let mut g = Client::connect(d.mqtt, &grill).await?;
    let mut f = Client::connect(d.mqtt, &fry).await?;
    g.subscribe(wire::EVENTS_TOPIC).await?;
    g.subscribe(&wire::board_topic("grill")).await?;
    g.board("grill", 0).await?;

    let placed = t
        .command(&CommandBody::place(
            "9",
            vec![
                line("burger-veggie", 1),
                line("chicken-grilled", 1),
                line("fries", 1),
            ],
        ))
        .await?;
    anyhow::ensure!(placed.ok, "{placed:?}");
    let order_id = placed.order_id.context("order id")?;
    let bump_line = |line| CommandBody::BumpLine {
        order_id: order_id.clone(),
        line,
    };

    // The fry screen may not bump the grill's line; the tablet may not bump at all.
    let r = f.command(&bump_line(1)).await?;
    assert_eq!(reply_code(&r), "forbidden");
    let r = t.command(&bump_line(1)).await?;
    assert_eq!(reply_code(&r), "forbidden");

    let r = g.command(&bump_line(2)).await?;
    assert!(r.ok, "{r:?}");
    let e = loop {
        let m = g.wait_for(|m| m.topic == wire::EVENTS_TOPIC).await?;
        let e: Event = wire::decode(&m.payload)?;
        if e.kind == EventKind::LineBumped {
            break e;
        }
    };
    assert_eq!(e.order.lines[1].status, LineStatus::Ready);
    // Still on the grill's board: the burger is cooking.
    let b = g.board("grill", e.seq).await?;
    assert_eq!(b.orders.len(), 1);
    // Bumped twice: refused, nothing changes.
    let r = g.command(&bump_line(2)).await?;
    assert_eq!(reply_code(&r), "nothing_to_bump");

    // A rush from the tablet shows on the board.
    let r = t
        .command(&CommandBody::SetRush {
            order_id: order_id.clone(),
            rush: true,
        })
        .await?;
    assert!(r.ok, "{r:?}");
    let seq = r.seq.context("seq")?;
    let b = g.board("grill", seq).await?;
    assert!(b.orders[0].rush, "{:?}", b.orders[0]);

    // The last grill line leaves the board.
    let r = g.command(&bump_line(1)).await?;
    assert!(r.ok, "{r:?}");
    let b = g.board("grill", r.seq.context("seq")?).await?;
    assert!(b.orders.is_empty(), "{:?}", b.orders);
    Ok(())
}
