//! The demo's simulated kitchen leaves a person's orders to the person: docket-sim (as
//! scripts/demo.sh runs it) bumps and completes the orders its own tablets place, never an
//! order placed from another device such as the /tablet page someone is trying.

use std::io::Write;
use std::process::{Child, Command, Stdio};

use anyhow::Context;

use docket_core::wire::{self, CommandBody, Event, EventKind};
use docket_tests::{line, Client, Daemon};

/// Stops the simulator when the test ends, however it ends.
struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulated_kitchen_leaves_a_persons_order_alone() -> anyhow::Result<()> {
    let d = Daemon::start()?;
    // The simulator's devices, in the credentials file it reads (as demo.sh writes it).
    let sim_devices: [(&str, &str, &[&str]); 6] = [
        ("sim-tablet", "tablet", &[]),
        ("sim-grill", "station", &["grill"]),
        ("sim-fry", "station", &["fry"]),
        ("sim-cold", "station", &["cold"]),
        ("sim-bar", "station", &["bar"]),
        ("sim-expo", "expo", &[]),
    ];
    let creds_path = d.dir.path().join("sim-devices.jsonl");
    let mut file = std::fs::File::create(&creds_path)?;
    for (id, role, stations) in sim_devices {
        let c = d.add_device(id, role, stations)?;
        let line = serde_json::json!({"id": c.id, "role": c.role, "secret": c.secret, "stations": stations});
        writeln!(file, "{line}")?;
    }
    drop(file);
    let person = d.add_device("web-tablet", "tablet", &[])?;
    let watcher = d.add_device("watcher", "expo", &[])?;
    let mut events = Client::connect(d.mqtt, &watcher).await?;
    events.subscribe(wire::EVENTS_TOPIC).await?;

    let _sim = Sim(Command::new(env!("CARGO_BIN_EXE_docket-sim"))
        .args(["--mqtt", &format!("127.0.0.1:{}", d.mqtt)])
        .arg("--creds")
        .arg(&creds_path)
        .args([
            "--rate-per-min",
            "120",
            "--prep-min",
            "0.2",
            "--prep-max",
            "0.6",
        ])
        .args(["--seed", "7"])
        .stdout(Stdio::null())
        .spawn()
        .context("starting docket-sim")?);
    // The kitchen is running once one of its own orders has been placed.
    loop {
        let e = next_event(&mut events)
            .await
            .context("the simulator placed nothing")?;
        if e.kind == EventKind::OrderPlaced && e.device == "sim-tablet" {
            break;
        }
    }

    // A person's order from another tablet: a grill line, a bar line and a cold line.
    let mut t = Client::connect(d.mqtt, &person).await?;
    let body = CommandBody::place(
        "5",
        vec![
            line("burger-classic", 1),
            line("ipa-pint", 1),
            line("salad-caesar", 1),
        ],
    );
    let reply = t.command(&body).await?;
    anyhow::ensure!(reply.ok, "{reply:?}");
    let mine = reply.order_id.context("order id")?;

    // Until three of the simulator's orders placed after it are completed (each bumped at every
    // station first), nothing may happen to the person's order.
    let mut later_sim_orders = std::collections::HashSet::new();
    let mut completed_after = 0;
    while completed_after < 3 {
        let e = next_event(&mut events)
            .await
            .context("the simulated kitchen stopped")?;
        if e.order_id == mine {
            anyhow::ensure!(
                e.kind == EventKind::OrderPlaced,
                "the simulator acted on the person's order: {} by {}",
                e.kind.as_str(),
                e.device
            );
            continue;
        }
        if e.kind == EventKind::OrderPlaced {
            later_sim_orders.insert(e.order_id.clone());
        } else if e.kind == EventKind::OrderCompleted && later_sim_orders.contains(&e.order_id) {
            completed_after += 1;
        }
    }
    // And it is still open, every line still to cook.
    let mut board = Client::connect(d.mqtt, &watcher).await?;
    board.subscribe(&wire::board_topic(wire::EXPO)).await?;
    let b = board.board(wire::EXPO, 0).await?;
    let o = b
        .orders
        .iter()
        .find(|o| o.id == mine)
        .context("the person's order left expo")?;
    anyhow::ensure!(
        o.lines
            .iter()
            .all(|l| l.status == docket_core::LineStatus::Fired),
        "{o:?}"
    );
    Ok(())
}

async fn next_event(events: &mut Client) -> anyhow::Result<Event> {
    let m = events.wait_for(|m| m.topic == wire::EVENTS_TOPIC).await?;
    Ok(wire::decode(&m.payload)?)
}
