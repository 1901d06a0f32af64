//! docket-load's results: the budgets of the benchmark issue (PASS/FAIL), the printed table, the
//! Markdown block for docs/benchmarks.md and the machine it ran on. Formats results; must not
//! run anything but `date` and `mosquitto -h`.

use serde_json::{json, Value};

use crate::{flat, fleet, pi, Args};

/// The budgets of the benchmark issue: (scenario, what, value key, limit, higher is better).
const BUDGETS: &[(&str, &str, &str, f64, bool)] = &[
    (
        "x100",
        "order-to-screen p50 <= 1.5 ms",
        "p50_ms",
        1.5,
        false,
    ),
    ("x100", "order-to-screen p99 <= 8 ms", "p99_ms", 8.0, false),
    (
        "flat-out",
        ">= 5,000 durable orders/s, 0 lost, 0 duplicated",
        "orders_per_s",
        5000.0,
        true,
    ),
    ("flat-out", "0 lost", "lost", 0.0, false),
    ("flat-out", "0 duplicated", "duplicated", 0.0, false),
    ("seed", "idle RSS <= 32 MB", "idle_rss_mb", 32.0, false),
    (
        "connections",
        "600 connected devices: RSS <= 64 MB",
        "rss_600_mb",
        64.0,
        false,
    ),
    (
        "connections",
        "every connection held: 0 failures",
        "failures",
        0.0,
        false,
    ),
    (
        "connections-vm",
        "10,000 connections held in the box's image: devices",
        "devices",
        10000.0,
        true,
    ),
    (
        "connections-vm",
        "10,000 connections held in the box's image: 0 failures",
        "failures",
        0.0,
        false,
    ),
    (
        "reconnect-storm",
        "600 screens exact again <= 2 s (median of 3 storms)",
        "recover_ms",
        2000.0,
        false,
    ),
    (
        "browser",
        "card on the KDS, mean <= 4.5 ms (case study 45 ms / 10)",
        "mean_ms",
        4.5,
        false,
    ),
    (
        "browser",
        "card on the KDS, p99 <= 8.8 ms (case study 88 ms / 10)",
        "p99_ms",
        8.8,
        false,
    ),
    (
        "fleet",
        "largest fleet run: p99 sync lag <= 5 s (the target is at 1,000 sites)",
        "lag_p99_s",
        5.0,
        false,
    ),
    ("fleet", "largest fleet: 0 lost", "lost", 0.0, false),
    (
        "fleet",
        "largest fleet: 0 duplicated",
        "duplicated",
        0.0,
        false,
    ),
    (
        "fleet",
        "sites back at once: all caught up <= 60 s (the target: 100 back from an hour)",
        "catch_up_s",
        60.0,
        false,
    ),
    (
        "restart",
        "start to READY <= 1 s (1,000 open orders)",
        "restart_ms",
        1000.0,
        false,
    ),
];

/// PASS/FAIL lines for the budgets whose scenario ran.
pub fn budget_lines(results: &serde_json::Map<String, Value>) -> Vec<(String, String, f64, bool)> {
    let mut out = Vec::new();
    for (scenario, what, key, limit, higher) in BUDGETS {
        let Some(v) = results
            .get(*scenario)
            .and_then(|r| r.get(*key))
            .and_then(Value::as_f64)
        else {
            continue;
        };
        let pass = if *higher { v >= *limit } else { v <= *limit };
        out.push((scenario.to_string(), what.to_string(), v, pass));
    }
    out
}

pub fn markdown(
    results: &serde_json::Map<String, Value>,
    budgets: &[(String, String, f64, bool)],
    a: &Args,
) -> String {
    let m = machine();
    let f = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
    let num = |x: Option<f64>, p: usize| x.map_or("—".to_owned(), |x| format!("{x:.p$}"));
    let mut o = format!(
        "Run: `scripts/bench.sh --scenario {} --duration {}` on {} cores ({}), kernel {}, {} (UTC), \
         docketd {}.\n\n| scenario | load | order-to-screen p50 / p99 / p999 / max (ms) | reply p50 / p99 (ms) | orders/s | lost | dup | RSS MB | CPU % |\n|---|---|---|---|---|---|---|---|---|\n",
        a.scenario,
        a.duration,
        m["cores"],
        m["cpu"].as_str().unwrap_or(""),
        m["kernel"].as_str().unwrap_or(""),
        std::process::Command::new("date").args(["-u", "+%Y-%m-%d %H:%M"]).output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default(),
        env!("CARGO_PKG_VERSION"),
    );
    for (n, v) in results.iter().flat_map(|(n, v)| rows(n, v)) {
        let load = v
            .get("load")
            .and_then(Value::as_str)
            .unwrap_or(if n == "backlog" {
                "seed load while the uplink backlog drains"
            } else {
                ""
            });
        o += &format!(
            "| {n} | {load} | {} / {} / {} / {} | {} / {} | {} | {} | {} | {} | {} |\n",
            num(f(v, "p50_ms"), 2),
            num(f(v, "p99_ms"), 2),
            num(f(v, "p999_ms"), 2),
            num(f(v, "max_ms"), 2),
            num(f(v, "reply_p50_ms"), 2),
            num(f(v, "reply_p99_ms"), 2),
            num(f(v, "orders_per_s"), 1),
            num(f(v, "lost"), 0),
            num(f(v, "duplicated"), 0),
            num(f(v, "rss_mb"), 1),
            num(f(v, "cpu_pct"), 1),
        );
    }
    o += &notes(results);
    if !budgets.is_empty() {
        o += "\n| budget | value | |\n|---|---|---|\n";
        for (sc, what, v, pass) in budgets {
            o += &format!(
                "| {sc}: {what} | {v:.2} | {} |\n",
                if *pass { "PASS" } else { "FAIL" }
            );
        }
    }
    o
}

/// The paragraphs under the table, one per scenario that has one.
fn notes(results: &serde_json::Map<String, Value>) -> String {
    let f = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
    let num = |x: Option<f64>, p: usize| x.map_or("—".to_owned(), |x| format!("{x:.p$}"));
    let mut o = String::new();
    if let Some(v) = results.get("flat-out") {
        o += &format!(
            "\nflat-out: {} durable events/s ({} orders/s, each placed and completed: two durable commands).\n",
            num(f(v, "events_per_s"), 0),
            num(f(v, "orders_per_s"), 0)
        );
    }
    if let Some(v) = results.get("flat-out-10") {
        o += &flat::markdown(v);
    }
    if let Some(v) = results.get("pi") {
        o += &pi::markdown(v);
    }
    if let Some(v) = results.get("backlog") {
        o += &format!(
            "\nbacklog: {} events caught up in {} s = **{} events/s into PostgreSQL**; the seed load's order-to-screen p50 / p99 was {} / {} ms with the uplink idle and {} / {} ms while the backlog drained ({} and {} samples).\n",
            v["backlog_events"], num(f(v, "catch_up_seconds"), 1), num(f(v, "catch_up_events_per_s"), 0),
            num(f(&v["baseline"], "p50_ms"), 2), num(f(&v["baseline"], "p99_ms"), 2),
            num(f(&v["during_drain"], "p50_ms"), 2), num(f(&v["during_drain"], "p99_ms"), 2),
            v["baseline"]["samples"], v["during_drain"]["samples"],
        );
    }
    if let Some(v) = results.get("restart") {
        o += &format!(
            "\nrestart: {} events and {} open orders in the store: start → READY in {} ms (median of 3: {}).\n",
            v["events"], v["open_orders"], num(f(v, "restart_ms"), 0), v["ready_ms"]
        );
    }
    if let Some(v) = results.get("broker-hop") {
        let (dk, mq) = (&v["docketd"], &v["mosquitto"]);
        o += &format!(
            "\nbroker-hop ({}): p50 / p99 / p999 {} / {} / {} ms through docketd's broker (its connection layer included), {} / {} / {} ms through Mosquitto {}; flat out {} vs {} messages/s.\n",
            v["load"].as_str().unwrap_or(""),
            num(f(dk, "p50_ms"), 3), num(f(dk, "p99_ms"), 3), num(f(dk, "p999_ms"), 3),
            num(f(mq, "p50_ms"), 3), num(f(mq, "p99_ms"), 3), num(f(mq, "p999_ms"), 3),
            mosquitto_version(),
            num(f(dk, "msgs_per_s"), 0), num(f(mq, "msgs_per_s"), 0),
        );
        for full in ["seed", "x100"] {
            if let Some(p) = results.get(full).and_then(|r| f(r, "p50_ms")) {
                if let Some(h) = f(dk, "p50_ms").filter(|h| *h > 0.0) {
                    o += &format!(
                        "The full order path at `{full}` (MAC check, decision, durable commit, reply, event: two broker hops and the engine) is {:.1}× docketd's bare hop at p50.\n",
                        p / h
                    );
                    o += &where_the_time_goes(full, &results[full], h);
                }
            }
        }
    }
    if let Some(v) = results.get("connections") {
        o += &format!(
            "\nconnections: {} devices, {} failures; docketd RSS {} MB at 600 devices and {} MB at {} ({} KB and {} open files per connection: rumqttd's router queues plus the connection layer's); Mosquitto holding as many: {} KB per connection.\n",
            v["devices"], v["failures"], num(f(v, "rss_600_mb"), 1), num(f(v, "rss_mb"), 1), v["devices"],
            num(f(v, "kb_per_connection"), 1), num(f(v, "files_per_connection"), 2), num(f(&v["mosquitto"], "kb_per_connection"), 1),
        );
    }
    if let Some(v) = results.get("connections-vm") {
        if let Some(why) = v.get("not_available").and_then(Value::as_str) {
            o += &format!("\nconnections-vm: not available: {why}.\n");
        } else {
            o += &format!(
                "\nconnections-vm: {}: {} devices, {} failures (connecting took {} s at 600 and {} s for the rest, emulated); docketd RSS {} MB at 600 devices and {} MB at {} ({} KB per connection); lost {}, duplicated {} under the seed load on top.\n",
                v["load"].as_str().unwrap_or(""), v["devices"], v["failures"],
                num(f(&v["phases"][0], "connect_seconds"), 0), num(f(&v["phases"][1], "connect_seconds"), 0),
                num(f(v, "rss_600_mb"), 1), num(f(v, "rss_mb"), 1), v["devices"],
                num(f(v, "kb_per_connection"), 1), v["lost"], v["duplicated"],
            );
        }
    }
    if let Some(v) = results.get("reconnect-storm") {
        o += &format!(
            "\nreconnect-storm: {}; every board exact again after {} ms (median of 3 storms: {:?} ms; a screen's p50 {} ms); first connection of all of them at once: {} ms.\n",
            v["load"].as_str().unwrap_or(""), num(f(v, "recover_ms"), 0),
            v["recoveries_ms"].as_array().map(|a| a.iter().filter_map(Value::as_f64).map(|x| x.round() as u64).collect::<Vec<_>>()).unwrap_or_default(),
            num(f(v, "p50_ms"), 0), num(f(v, "cold_start_ms"), 0),
        );
    }
    if let Some(v) = results.get("browser") {
        o += &format!(
            "\nbrowser: {}: card in the KDS page's DOM {} ms mean, {} / {} ms p50 / p99 over {} orders (the case study: 45 ms mean, 88 ms p99).\n",
            v["load"].as_str().unwrap_or(""), num(f(v, "mean_ms"), 2), num(f(v, "p50_ms"), 2), num(f(v, "p99_ms"), 2), v["samples"],
        );
    }
    if let Some(v) = results.get("fleet") {
        o += &fleet::report::markdown(v);
    }
    if let Some(v) = results.get("seed").and_then(|v| f(v, "idle_rss_mb")) {
        o += &format!("\nidle RSS (seed, before the load): {v:.1} MB.\n");
    }
    o
}

/// The table on stdout, and the paragraphs of `flat-out-10` and `pi`.
pub fn print(results: &serde_json::Map<String, Value>) {
    println!(
        "\n{:<15} {:>9} {:>9} {:>9} {:>9} {:>10} {:>5} {:>5} {:>8} {:>6}",
        "scenario",
        "p50 ms",
        "p99 ms",
        "p999 ms",
        "max ms",
        "orders/s",
        "lost",
        "dup",
        "rss MB",
        "cpu %"
    );
    for (n, v) in results.iter().flat_map(|(n, v)| rows(n, v)) {
        let f = |k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
        println!(
            "{:<15} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>10.1} {:>5} {:>5} {:>8.1} {:>6.1}",
            n,
            f("p50_ms"),
            f("p99_ms"),
            f("p999_ms"),
            f("max_ms"),
            f("orders_per_s"),
            f("lost"),
            f("duplicated"),
            f("rss_mb"),
            f("cpu_pct")
        );
        if let Some(r) = v.get("catch_up_events_per_s") {
            println!("           uplink catch-up: {} events in {:.1} s = {:.0} events/s into PostgreSQL; seed load p50/p99 {:.3}/{:.3} ms before, {:.3}/{:.3} ms while draining",
                v["backlog_events"], v["catch_up_seconds"].as_f64().unwrap_or(0.0), r.as_f64().unwrap_or(0.0),
                v["baseline"]["p50_ms"].as_f64().unwrap_or(0.0), v["baseline"]["p99_ms"].as_f64().unwrap_or(0.0),
                v["during_drain"]["p50_ms"].as_f64().unwrap_or(0.0), v["during_drain"]["p99_ms"].as_f64().unwrap_or(0.0));
        }
        if let Some(r) = v.get("restart_ms") {
            println!(
                "                restart: {} events, {} open orders: start to READY {:.0} ms (median of 3)",
                v["events"], v["open_orders"], r.as_f64().unwrap_or(0.0)
            );
        }
        if let (Some(dk), Some(mq)) = (v.get("docketd"), v.get("mosquitto")) {
            let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
            println!(
                "                hop p50/p99/p999 ms: docketd {:.3}/{:.3}/{:.3}, mosquitto {:.3}/{:.3}/{:.3}; flat out msgs/s: docketd {:.0}, mosquitto {:.0}",
                f(dk, "p50_ms"), f(dk, "p99_ms"), f(dk, "p999_ms"),
                f(mq, "p50_ms"), f(mq, "p99_ms"), f(mq, "p999_ms"),
                f(dk, "msgs_per_s"), f(mq, "msgs_per_s")
            );
        }
        if let Some(m) = v.get("kb_per_connection") {
            println!(
                "                {} devices: {} failures; RSS {:.1} MB at 600, {:.1} MB at {}: {:.1} KB per connection (mosquitto {:.1} KB)",
                v["devices"], v["failures"], v["rss_600_mb"].as_f64().unwrap_or(0.0),
                v["rss_mb"].as_f64().unwrap_or(0.0), v["devices"], m.as_f64().unwrap_or(0.0),
                v["mosquitto"]["kb_per_connection"].as_f64().unwrap_or(0.0)
            );
        }
        if let Some(r) = v.get("recover_ms") {
            println!(
                "                {} screens exact again {:.0} ms after reconnecting at once (median of 3 storms; cold start {:.0} ms)",
                v["screens"], r.as_f64().unwrap_or(0.0), v["cold_start_ms"].as_f64().unwrap_or(0.0)
            );
        }
        if let Some(r) = v.get("mean_ms") {
            println!(
                "                Chromium tablet → Chromium KDS card: mean {:.2} ms over {} orders (case study: 45 ms mean, 88 ms p99)",
                r.as_f64().unwrap_or(0.0), v["samples"]
            );
        }
        if let Some(r) = v.get("events_per_s") {
            println!(
                "                flat out: {:.0} durable events/s",
                r.as_f64().unwrap_or(0.0)
            );
        }
    }
    if let Some(v) = results.get("flat-out-10") {
        print!("{}", flat::markdown(v));
    }
    if let Some(v) = results.get("pi") {
        print!("{}", pi::markdown(v));
    }
    if let Some(v) = results.get("fleet") {
        print!("{}", fleet::report::markdown(v));
    }
}

/// A result's table rows: `pi` has one per run, `fleet` none (its own table), the others one.
fn rows<'a>(name: &str, v: &'a Value) -> Vec<(String, &'a Value)> {
    if name == "pi" {
        pi::rows(v)
    } else if name == "fleet" {
        // Its own table (fleet::report): no order-to-screen numbers.
        Vec::new()
    } else {
        vec![(name.to_owned(), v)]
    }
}

fn mosquitto_version() -> String {
    std::process::Command::new("/usr/sbin/mosquitto")
        .arg("-h")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| format!("({})", l.trim()))
        })
        .unwrap_or_default()
}

pub fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    json!({"cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
           "cpu": cpu, "kernel": kernel.trim()})
}

/// Where an open-loop scenario's order-to-screen time goes at p50, from what this run measured
/// itself: docketd's commit histogram (the SQLite transaction and its fsync), the bare broker hop
/// (a device → the router → a device: the command's way in and the event's way out make one
/// such trip between them), and the rest (the engine: decode, MAC, decision, encoding; and the
/// fan-out of the event to every screen).
fn where_the_time_goes(name: &str, v: &Value, hop_p50: f64) -> String {
    let (Some(screen), Some(reply), Some(commit)) = (
        v["p50_ms"].as_f64(),
        v["reply_p50_ms"].as_f64(),
        v["commit"]["mean_ms"].as_f64(),
    ) else {
        return String::new();
    };
    let engine = (reply - hop_p50 - commit).max(0.0);
    let e = &v["engine"];
    format!(
        "Where `{name}`'s p50 goes ({screen:.3} ms to the screens, {reply:.3} ms to the reply): the commit {commit:.3} ms (mean of {} commits; p50 bucket ≤ {} ms), one broker hop {hop_p50:.3} ms, the engine and its publishing {engine:.3} ms (the reply less the two), and the fan-out to the screens {:.3} ms (screens less reply). The engine thread was busy {:.1} % of the run with command batches and {:.1} % with boards ({} board publishes, {:.3} ms each): a command that arrives while a board is encoded waits for it.\n",
        v["commit"]["commits"],
        v["commit"]["p50_le_ms"],
        screen - reply,
        e["commands_busy"].as_f64().unwrap_or(0.0) * 100.0,
        e["boards_busy"].as_f64().unwrap_or(0.0) * 100.0,
        e["board_publishes"],
        e["board_ms_each"].as_f64().unwrap_or(0.0),
    )
}
