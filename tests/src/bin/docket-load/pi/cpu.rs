//! A Raspberry Pi 4's CPU for docketd, as cgroup v1 CPU quotas: the Pi's four cores together
//! (`total_cores` of this machine's) on a cgroup of docketd's own, and each of docketd's threads
//! at most one Pi core (`core_share` of one of this machine's) in a child cgroup of its own,
//! because a thread never runs faster than the core it is on. The load generator stays outside.
//!
//! Owns its cgroups under /sys/fs/cgroup/cpu (removed on drop, after docketd is gone) and the
//! thread that moves docketd's new threads into theirs; touches no other cgroup.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};

/// Where cgroup v1 mounts its cpu controller.
pub const CPU_ROOT: &str = "/sys/fs/cgroup/cpu";
/// The quotas' period. Short, so a thread that spent its share waits at most ~this long (the
/// kernel's minimum quota is 1 ms, so a share under 10 % gets a longer period).
const PERIOD_US: u64 = 10_000;
/// How often new threads are looked for (a thread shares its creator's cap until then).
const WATCH: Duration = Duration::from_millis(20);

pub struct CpuCaps {
    dir: PathBuf,
    period_us: u64,
    thread_quota_us: u64,
    stop: Arc<AtomicBool>,
    watcher: Option<std::thread::JoinHandle<Gone>>,
    placed: Arc<Mutex<HashSet<u32>>>,
}

/// Throttling of per-thread cgroups removed while docketd ran (their threads ended).
#[derive(Default)]
struct Gone {
    threads: u64,
    throttled_ms: f64,
}

fn write(dir: &Path, file: &str, v: impl ToString) -> anyhow::Result<()> {
    std::fs::write(dir.join(file), v.to_string())
        .with_context(|| format!("writing {}", dir.join(file).display()))
}

/// A cgroup's `cpu.stat` as numbers (nr_periods, nr_throttled, throttled_time in ns, ...).
fn stat(dir: &Path) -> HashMap<String, f64> {
    std::fs::read_to_string(dir.join("cpu.stat"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_owned(), v.trim().parse().ok()?))
        })
        .collect()
}

impl CpuCaps {
    /// Makes docketd's cgroup. `core_share`: one Pi core in cores of this machine;
    /// `total_cores`: the Pi's four together.
    pub fn create(core_share: f64, total_cores: f64) -> anyhow::Result<CpuCaps> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = Path::new(CPU_ROOT).join(format!(
            "docket-pi-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Relaxed)
        ));
        std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let period_us = PERIOD_US.max((1000.0 / core_share).ceil() as u64);
        let caps = CpuCaps {
            thread_quota_us: (core_share * period_us as f64).round() as u64,
            dir,
            period_us,
            stop: Arc::new(AtomicBool::new(false)),
            watcher: None,
            placed: Default::default(),
        };
        write(&caps.dir, "cpu.cfs_period_us", period_us)?;
        write(
            &caps.dir,
            "cpu.cfs_quota_us",
            (total_cores * period_us as f64).round() as u64,
        )?;
        Ok(caps)
    }

    /// A launcher for [`docket_tests::Daemon::start_in`]: joins this cgroup, then execs docketd.
    pub fn launcher(&self) -> Vec<OsString> {
        [
            OsString::from("sh"),
            "-c".into(),
            "echo $$ > \"$0\" && exec \"$@\"".into(),
            self.dir.join("cgroup.procs").into(),
        ]
        .into()
    }

    /// Starts moving each of `pid`'s threads, now and as they come, into a cgroup of its own.
    pub fn watch(&mut self, pid: u32) {
        let (dir, stop, placed) = (self.dir.clone(), self.stop.clone(), self.placed.clone());
        let (period, quota) = (self.period_us, self.thread_quota_us);
        self.watcher = Some(std::thread::spawn(move || {
            let mut gone = Gone::default();
            while !stop.load(Relaxed) {
                let now: HashSet<u32> = std::fs::read_dir(format!("/proc/{pid}/task"))
                    .map(|d| {
                        d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                            .collect()
                    })
                    .unwrap_or_default();
                let mut placed = placed.lock().unwrap_or_else(|p| p.into_inner());
                let new: Vec<u32> = now.difference(&placed).copied().collect();
                for tid in new {
                    let t = dir.join(format!("t{tid}"));
                    let ok = std::fs::create_dir(&t).is_ok()
                        && write(&t, "cpu.cfs_period_us", period).is_ok()
                        && write(&t, "cpu.cfs_quota_us", quota).is_ok()
                        && write(&t, "tasks", tid).is_ok();
                    if ok {
                        placed.insert(tid);
                    } else {
                        let _ = std::fs::remove_dir(&t);
                    }
                }
                placed.retain(|tid| {
                    let t = dir.join(format!("t{tid}"));
                    if now.contains(tid) {
                        return true;
                    }
                    let ns = stat(&t).get("throttled_time").copied().unwrap_or(0.0);
                    if std::fs::remove_dir(&t).is_err() {
                        return true;
                    }
                    gone.threads += 1;
                    gone.throttled_ms += ns / 1e6;
                    false
                });
                drop(placed);
                std::thread::sleep(WATCH);
            }
            gone
        }));
    }

    /// The caps and how often they bit: docketd's cgroup as a whole and its threads'.
    pub fn stats(&self) -> Value {
        let all = stat(&self.dir);
        let placed = self.placed.lock().unwrap_or_else(|p| p.into_inner());
        let threads: Vec<HashMap<String, f64>> = placed
            .iter()
            .map(|t| stat(&self.dir.join(format!("t{t}"))))
            .collect();
        let g = |m: &HashMap<String, f64>, k: &str| m.get(k).copied().unwrap_or(0.0);
        json!({
            "period_us": self.period_us,
            "thread_quota_us": self.thread_quota_us,
            "threads": placed.len(),
            "periods": g(&all, "nr_periods"),
            "throttled_periods": g(&all, "nr_throttled"),
            "throttled_ms": g(&all, "throttled_time") / 1e6,
            "threads_throttled_ms": threads.iter().map(|m| g(m, "throttled_time")).sum::<f64>() / 1e6,
            "threads_throttled_periods": threads.iter().map(|m| g(m, "nr_throttled")).sum::<f64>(),
        })
    }
}

impl Drop for CpuCaps {
    /// Runs after docketd is gone (a cgroup with threads in it cannot be removed).
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(w) = self.watcher.take() {
            let _ = w.join();
        }
        for _ in 0..50 {
            if let Ok(d) = std::fs::read_dir(&self.dir) {
                for e in d.flatten().filter(|e| e.path().is_dir()) {
                    let _ = std::fs::remove_dir(e.path());
                }
            }
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("pi: could not remove {}", self.dir.display());
    }
}

/// Can this process make a cgroup v1 CPU quota? (root, the cpu controller mounted, writable)
pub fn check() -> Result<(), String> {
    if !Path::new(CPU_ROOT).join("cpu.cfs_quota_us").exists() {
        return Err(format!(
            "no cgroup v1 cpu controller with CFS quotas at {CPU_ROOT}"
        ));
    }
    let caps = CpuCaps::create(0.5, 1.0).map_err(|e| format!("{e:#}"))?;
    drop(caps);
    Ok(())
}
