//! `browser`: the like-for-like comparison with the case study's "card rendered on the KDS".
//! Seed load (49 simulated tablets, 9 simulated screens) runs while headless Chromium (Debian's
//! `chromium`, driven by playwright-core in `tests/browser/bench-render.mjs`) opens the real
//! tablet page and the real grill KDS page; the tablet page places orders through its UI and the
//! latency of each is the tablet's publish → the card in the KDS page's DOM, both read from
//! Performance API marks on the browser's one clock.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use anyhow::{bail, Context};
use docket_tests::Daemon;
use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::{ms, open_loop, Args};

/// Orders per minute the browser tablet places (above a seed tablet's 2, to get enough
/// samples in a short run; the box's load is the seed load either way).
const PER_MIN: u64 = 60;

pub async fn browser(a: &Args) -> anyhow::Result<Value> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = root.join("tests/browser/bench-render.mjs");
    if !root
        .join("tests/browser/node_modules/playwright-core")
        .exists()
    {
        bail!(
            "not available: tests/browser/node_modules is missing (scripts/bench.sh installs \
             Node.js, Chromium and playwright-core)"
        );
    }
    let d = Daemon::start()?;
    let tablet = d.add_device("browser-tablet", "tablet", &[])?;
    let kds = d.add_device("browser-kds", "station", &["grill"])?;
    let creds = |c: &docket_tests::Creds| {
        json!({"id": c.id, "role": c.role, "secret": c.secret}).to_string()
    };
    let mut child = Command::new("node")
        .arg(&script)
        .current_dir(&root)
        .env("DOCKET_HTTP_PORT", d.http.to_string())
        .env("DOCKET_TABLET_CREDS", creds(&tablet))
        .env("DOCKET_KDS_CREDS", creds(&kds))
        .env("DOCKET_STATION", "grill")
        .env("DOCKET_SECONDS", a.duration.to_string())
        .env("DOCKET_PER_MIN", PER_MIN.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting node tests/browser/bench-render.mjs")?;
    let mut stdout = child.stdout.take().context("stdout")?;
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut s = String::new();
            let r = stdout.read_to_string(&mut s);
            done.store(true, Relaxed);
            r.map(|_| s)
        })
    };
    let d2 = done.clone();
    let until = move || d2.load(Relaxed);
    let load = open_loop(&d, "seed", 49, 2.0, 9, a.duration, Some(&until)).await?;
    let out = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader thread"))??;
    let status = child.wait()?;
    if !status.success() {
        bail!("bench-render.mjs failed ({status})");
    }
    let r: Value = serde_json::from_str(out.lines().last().context("no result line")?)
        .with_context(|| format!("bench-render.mjs printed {out:?}"))?;
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for s in r["samples_ms"].as_array().context("samples_ms")? {
        h.record(((s.as_f64().unwrap_or(0.0) * 1000.0) as u64).max(1))?;
    }
    if h.is_empty() {
        bail!("no order reached the KDS page: {r}");
    }
    if !r["errors"].as_array().is_none_or(|e| e.is_empty()) {
        bail!("the pages reported errors: {}", r["errors"]);
    }
    Ok(json!({
        "load": format!("seed (49 simulated tablets, 9 screens) + Chromium tablet at {PER_MIN}/min → Chromium KDS"),
        "samples": h.len(), "placed": r["placed"], "rendered": r["rendered"], "unmatched": r["unmatched"],
        "p50_ms": ms(&h, 0.5), "p99_ms": ms(&h, 0.99), "p999_ms": ms(&h, 0.999),
        "max_ms": h.max() as f64 / 1000.0,
        "mean_ms": h.mean() / 1000.0,
        "seed_p50_ms": load["p50_ms"], "seed_p99_ms": load["p99_ms"],
        "lost": load["lost"], "duplicated": load["duplicated"],
        "rss_mb": load["rss_mb"], "cpu_pct": load["cpu_pct"],
    }))
}
