//! An SD card's fsync for docketd's data dir: `docket-slowfs` (tests/src/bin/docket-slowfs.rs, a
//! FUSE passthrough) mounted over it, every sync taking the configured milliseconds.
//!
//! Owns the mount and the docket-slowfs process (unmounted and ended on drop); touches nothing
//! outside the two directories it is given.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

pub struct SlowMount {
    mountpoint: PathBuf,
    child: Option<Child>,
    log: PathBuf,
}

/// docket-slowfs, built beside docket-load.
pub fn slowfs_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.join("docket-slowfs")))
        .unwrap_or_else(|| PathBuf::from("docket-slowfs"))
}

fn mounted(mountpoint: &Path) -> bool {
    let want = mountpoint.to_string_lossy();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split_whitespace().nth(4) == Some(&*want) && l.contains(" - fuse"))
}

impl SlowMount {
    /// Mounts `backing` at `mountpoint` (both existing directories) with syncs of `fsync_ms`.
    pub fn mount(
        backing: &Path,
        mountpoint: &Path,
        fsync_ms: f64,
        log: &Path,
    ) -> anyhow::Result<SlowMount> {
        let mountpoint = std::fs::canonicalize(mountpoint)?;
        let child = Command::new(slowfs_bin())
            .arg("--fsync-ms")
            .arg(fsync_ms.to_string())
            .arg(backing)
            .arg(&mountpoint)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?)
            .spawn()
            .with_context(|| format!("starting {}", slowfs_bin().display()))?;
        let mut m = SlowMount {
            mountpoint,
            child: Some(child),
            log: log.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !mounted(&m.mountpoint) {
            if let Some(s) = m.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                bail!("docket-slowfs exited with {s}: {}", m.log_text().trim());
            }
            if Instant::now() > deadline {
                bail!("docket-slowfs did not mount {}", m.mountpoint.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(m)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Unmounts and waits for docket-slowfs to end; returns its last words (the syncs it served).
    pub fn unmount(&mut self) -> String {
        let Some(mut child) = self.child.take() else {
            return String::new();
        };
        let umount = |lazy: bool| {
            let mut c = Command::new("umount");
            if lazy {
                c.arg("-l");
            }
            c.arg(&self.mountpoint)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !umount(false) {
            std::thread::sleep(Duration::from_millis(200));
            if !umount(false) {
                umount(true);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.log_text().lines().last().unwrap_or("").to_owned()
    }
}

impl Drop for SlowMount {
    fn drop(&mut self) {
        self.unmount();
    }
}

/// Can this process mount docket-slowfs? (/dev/fuse, the binary, root: tried on a temp dir)
pub fn check() -> Result<(), String> {
    if !Path::new("/dev/fuse").exists() {
        return Err("no /dev/fuse".into());
    }
    if !slowfs_bin().exists() {
        return Err(format!("no {}", slowfs_bin().display()));
    }
    let t = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (b, m) = (t.path().join("b"), t.path().join("m"));
    for d in [&b, &m] {
        std::fs::create_dir(d).map_err(|e| e.to_string())?;
    }
    let mut s = SlowMount::mount(&b, &m, 0.0, &t.path().join("log"))
        .map_err(|e| format!("mounting docket-slowfs: {e:#}"))?;
    s.unmount();
    Ok(())
}
