//! A size-capped tmpfs for the disk tests (mount, fill, unmount on drop). Needs root; owns only
//! its mount point's mount.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A size-capped tmpfs mounted on a directory for as long as this lives (a full disk for the
/// disk tests). `None` where mounting is not allowed (it needs root): callers say the test is
/// skipped and why.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_owned()))
    }
}

impl Tmpfs {
    /// Fills the filesystem of `dir` until a write fails; returns the filler's path.
    pub fn fill(dir: &Path) -> anyhow::Result<PathBuf> {
        let path = dir.join("filler");
        let mut f = std::fs::File::create(&path)?;
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).and_then(|_| f.sync_all()).is_ok() {}
        // And the last few bytes.
        while f.write_all(&[0u8; 512]).and_then(|_| f.sync_all()).is_ok() {}
        Ok(path)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
