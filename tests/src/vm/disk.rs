//! The box's disk image from outside: its MBR partitions, and docketd's store read from the
//! data partition after a power cut (journal replayed, e2fsck clean). Reads the image; never
//! writes it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

/// Partition `n` (1–4) of an MBR disk image: (byte offset, byte length).
pub fn partition(disk: &Path, n: usize) -> anyhow::Result<(u64, u64)> {
    use std::io::Read;
    anyhow::ensure!((1..=4).contains(&n), "MBR partitions are 1-4");
    let mut mbr = [0u8; 512];
    std::fs::File::open(disk)?.read_exact(&mut mbr)?;
    anyhow::ensure!(
        mbr[510..512] == [0x55, 0xAA],
        "{} has no MBR",
        disk.display()
    );
    let e = &mbr[446 + (n - 1) * 16..446 + n * 16];
    let le = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64;
    Ok((le(&e[8..12]) * 512, le(&e[12..16]) * 512))
}

/// Copies the data partition (4) out of a powered-off disk image, lets e2fsck replay its
/// journal (as the box's next mount would), and dumps docketd's store (the database and its
/// WAL, when there is one) into `into`. Returns the database's path there.
pub fn extract_store(disk: &Path, into: &Path) -> anyhow::Result<PathBuf> {
    use std::io::{Read, Seek, SeekFrom};
    let (off, len) = partition(disk, 4)?;
    std::fs::create_dir_all(into)?;
    let part = into.join("data.ext4");
    let mut f = std::fs::File::open(disk)?;
    f.seek(SeekFrom::Start(off))?;
    let mut out = std::fs::File::create(&part)?;
    std::io::copy(&mut f.by_ref().take(len), &mut out)?;
    drop(out);
    // Replay the journal only (what the next mount does), then a full read-only check must
    // find nothing: a power cut may lose unwritten data, never damage the file system.
    let replay = Command::new("e2fsck")
        .args(["-y", "-E", "journal_only"])
        .arg(&part)
        .output()
        .context("cannot run e2fsck (install e2fsprogs)")?;
    if replay.status.code().unwrap_or(8) >= 4 {
        bail!(
            "e2fsck could not replay the journal: {}",
            String::from_utf8_lossy(&replay.stdout)
        );
    }
    let check = Command::new("e2fsck").arg("-fn").arg(&part).output()?;
    if !check.status.success() {
        bail!(
            "the data partition is damaged after the power cut (e2fsck -fn: {}): {}",
            check.status,
            String::from_utf8_lossy(&check.stdout)
        );
    }
    let db = into.join("docket.sqlite3");
    for name in ["docket.sqlite3", "docket.sqlite3-wal"] {
        let _ = std::fs::remove_file(into.join(name));
        let o = Command::new("debugfs")
            .arg("-R")
            .arg(format!("dump /docket/{name} {}", into.join(name).display()))
            .arg(&part)
            .output()?;
        if !into.join(name).exists() && name == "docket.sqlite3" {
            bail!(
                "no /docket/{name} on the data partition: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
    let _ = std::fs::remove_file(&part);
    Ok(db)
}
