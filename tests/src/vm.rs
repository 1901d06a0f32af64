//! The box's test image under QEMU (TCG): boot it, reach it through forwarded ports, read
//! what it reports on its second serial port, cut its power (SIGKILL of QEMU: the disk keeps
//! only what the guest wrote out), and read its SQLite store from the disk image afterwards.
//!
//! The image comes from `scripts/build-test-image.sh`; `scripts/boot-test.sh` sets the paths.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// What a boot needs: the disk image (changed in place, like a real disk), the kernel and
/// initrd for QEMU's direct kernel boot.
#[derive(Debug, Clone)]
pub struct Image {
    pub disk: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
}

/// A running virtual box.
pub struct Vm {
    child: Child,
    /// The box's HTTP port 80 and MQTT port 1884, forwarded to these loopback ports.
    pub http: u16,
    pub mqtt: u16,
    /// Serial console (ttyS0) and the test report (ttyS1) of this boot.
    pub console: PathBuf,
    pub report: PathBuf,
}

impl Vm {
    /// Boots `image` with the box's HTTP and MQTT ports forwarded to loopback ports `http`
    /// and `mqtt` (the same on every boot, as a box keeps its address); `logs` receives
    /// `console-N.log` and `report-N.log` for boot `n`.
    pub fn boot(image: &Image, logs: &Path, n: usize, http: u16, mqtt: u16) -> anyhow::Result<Vm> {
        let console = logs.join(format!("console-{n}.log"));
        let report = logs.join(format!("report-{n}.log"));
        let net = format!(
            "user,id=n0,hostfwd=tcp:127.0.0.1:{http}-:80,hostfwd=tcp:127.0.0.1:{mqtt}-:1884"
        );
        let child = Command::new("qemu-system-x86_64")
            .args(["-m", "512", "-smp", "2", "-nodefaults", "-display", "none"])
            .args(["-no-reboot", "-kernel"])
            .arg(&image.kernel)
            .arg("-initrd")
            .arg(&image.initrd)
            .args([
                "-append",
                "root=/dev/vda2 ro console=ttyS0 panic=-1 systemd.show_status=1",
            ])
            .arg("-drive")
            // cache=writeback: what the guest wrote reaches the file (the host's page cache)
            // when QEMU writes it, flushes or not; what the guest kept in its own page cache
            // is lost with the process, as on a power cut.
            .arg(format!(
                "file={},format=raw,if=virtio,cache=writeback",
                image.disk.display()
            ))
            .args(["-netdev", &net, "-device", "virtio-net-pci,netdev=n0"])
            .arg("-serial")
            .arg(format!("file:{}", console.display()))
            .arg("-serial")
            .arg(format!("file:{}", report.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start qemu-system-x86_64 (install qemu-system-x86)")?;
        Ok(Vm {
            child,
            http,
            mqtt,
            console,
            report,
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.http))
    }

    /// Waits until `/healthz` answers 200 (docketd READY under systemd); returns how long
    /// that took. Fails early if QEMU exits.
    pub fn wait_healthy(&mut self, within: Duration) -> anyhow::Result<Duration> {
        let start = Instant::now();
        loop {
            if let Ok(r) = crate::http_request(self.http_addr(), "GET", "/healthz", &[], "") {
                if r.status == 200 {
                    return Ok(start.elapsed());
                }
            }
            if let Some(st) = self.child.try_wait()? {
                bail!(
                    "QEMU exited ({st}) before /healthz answered; console: {}",
                    self.console_tail()
                );
            }
            if start.elapsed() > within {
                bail!(
                    "/healthz did not answer 200 within {within:?}; console: {}",
                    self.console_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The test report (`tests/image/docket-test-report`) as key → value, once it is complete.
    pub fn report(&mut self, within: Duration) -> anyhow::Result<BTreeMap<String, String>> {
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(&self.report).unwrap_or_default();
            if text.contains("DOCKET-REPORT END") {
                let mut m = BTreeMap::new();
                for l in text.lines() {
                    if l.starts_with("---") {
                        break;
                    }
                    if let Some((k, v)) = l.split_once('=') {
                        m.insert(k.trim().to_owned(), v.trim().to_owned());
                    }
                }
                m.insert("text".into(), text);
                return Ok(m);
            }
            if start.elapsed() > within {
                bail!("no complete report on ttyS1 within {within:?}: {text}");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The last lines of the serial console.
    pub fn console_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.console).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Power cut: SIGKILL of QEMU, waited for.
    pub fn power_cut(&mut self) -> anyhow::Result<()> {
        let _ = self.child.kill();
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
