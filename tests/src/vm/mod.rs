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

mod disk;
pub use disk::{extract_store, partition};

/// What a boot needs: the disk image (changed in place, like a real disk), the kernel and
/// initrd for QEMU's direct kernel boot.
#[derive(Debug, Clone)]
pub struct Image {
    pub disk: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
}

impl Image {
    /// What `scripts/build-test-image.sh --out DIR` leaves in `dir`.
    pub fn in_dir(dir: &Path) -> Image {
        Image {
            disk: dir.join("docket-test.img"),
            kernel: dir.join("vmlinuz"),
            initrd: dir.join("initrd.img"),
        }
    }
}

/// How a box is booted beyond its disk: a USB stick, its memory, extra kernel command line.
#[derive(Debug, Clone)]
pub struct BootOptions {
    /// A second, read-only drive (`/dev/vdb` in the box).
    pub usb: Option<PathBuf>,
    /// RAM in MiB (512 by default: what the box's own tests need).
    pub memory_mb: u32,
    /// Appended to the kernel command line (e.g. `systemd.mask=…`).
    pub cmdline: String,
}

impl Default for BootOptions {
    fn default() -> Self {
        BootOptions {
            usb: None,
            memory_mb: 512,
            cmdline: String::new(),
        }
    }
}

/// A running virtual box.
pub struct Vm {
    child: Child,
    /// The RAUC slot this boot runs (`A` or `B`), as the "bootloader" chose it.
    pub slot: String,
    /// The box's HTTP port 80 and MQTT port 1884, forwarded to these loopback ports.
    pub http: u16,
    pub mqtt: u16,
    /// The box's HTTPS port 443 and MQTT-over-TLS port 8883, forwarded to these (new for each
    /// boot).
    pub https: u16,
    pub mqtts: u16,
    /// Serial console (ttyS0) and the test report (ttyS1) of this boot.
    pub console: PathBuf,
    pub report: PathBuf,
}

impl Vm {
    /// Boots `image` with the box's HTTP and MQTT ports forwarded to loopback ports `http`
    /// and `mqtt` (the same on every boot, as a box keeps its address); `logs` receives
    /// `console-N.log` and `report-N.log` for boot `n`.
    pub fn boot(image: &Image, logs: &Path, n: usize, http: u16, mqtt: u16) -> anyhow::Result<Vm> {
        Vm::boot_with(image, logs, n, http, mqtt, None)
    }

    /// [`Vm::boot`] with a second, read-only drive attached (`/dev/vdb` in the box: a USB stick).
    ///
    /// Before QEMU starts, the disk's boot partition is read and written the way U-Boot's
    /// boot script does on the Pi (see [`BootEnv::choose`]): the slot with the first place in
    /// `BOOT_ORDER` and tries left is booted, one try spent, `root=` and `rauc.slot=` set to it.
    pub fn boot_with(
        image: &Image,
        logs: &Path,
        n: usize,
        http: u16,
        mqtt: u16,
        usb: Option<&Path>,
    ) -> anyhow::Result<Vm> {
        let opts = BootOptions {
            usb: usb.map(Path::to_owned),
            ..BootOptions::default()
        };
        Vm::boot_opts(image, logs, n, http, mqtt, &opts)
    }

    /// [`Vm::boot_with`] with every option: the memory and extra kernel command line too.
    pub fn boot_opts(
        image: &Image,
        logs: &Path,
        n: usize,
        http: u16,
        mqtt: u16,
        opts: &BootOptions,
    ) -> anyhow::Result<Vm> {
        let mut env = read_boot_env(&image.disk)?;
        let slot = env.choose();
        write_boot_env(&image.disk, &env)?;
        let root = if slot == "B" {
            "/dev/vda3"
        } else {
            "/dev/vda2"
        };
        let console = logs.join(format!("console-{n}.log"));
        let report = logs.join(format!("report-{n}.log"));
        let (https, mqtts) = (crate::free_port(), crate::free_port());
        let net = format!(
            "user,id=n0,hostfwd=tcp:127.0.0.1:{http}-:80,hostfwd=tcp:127.0.0.1:{mqtt}-:1884,\
             hostfwd=tcp:127.0.0.1:{https}-:443,hostfwd=tcp:127.0.0.1:{mqtts}-:8883"
        );
        let mut qemu = Command::new("qemu-system-x86_64");
        let memory = opts.memory_mb.to_string();
        qemu.args([
            "-m",
            &memory,
            "-smp",
            "2",
            "-nodefaults",
            "-display",
            "none",
        ])
        // A reboot in the box ends QEMU; the next boot goes through the "bootloader" again.
        .args(["-no-reboot", "-kernel"])
        .arg(&image.kernel)
        .arg("-initrd")
        .arg(&image.initrd)
        .arg("-append")
        .arg(format!(
            "root={root} ro rauc.slot={slot} console=ttyS0 panic=-1 systemd.show_status=1{}{}",
            if opts.cmdline.is_empty() { "" } else { " " },
            opts.cmdline
        ))
        .arg("-drive")
        // cache=writeback: what the guest wrote reaches the file (the host's page cache)
        // when QEMU writes it, flushes or not; what the guest kept in its own page cache
        // is lost with the process, as on a power cut.
        .arg(format!(
            "file={},format=raw,if=virtio,cache=writeback",
            image.disk.display()
        ))
        .args(["-netdev", &net, "-device", "virtio-net-pci,netdev=n0"]);
        if let Some(usb) = &opts.usb {
            qemu.arg("-drive").arg(format!(
                "file={},format=raw,if=virtio,readonly=on",
                usb.display()
            ));
        }
        let child = qemu
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
            slot,
            http,
            mqtt,
            https,
            mqtts,
            console,
            report,
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.http))
    }

    pub fn https_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.https))
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
        self.section("DOCKET-REPORT", within)
    }

    /// The section `NAME BEGIN` … `NAME END` of what the box wrote on ttyS1, as key → value
    /// (the lines before the first `---`), with the whole section under "text".
    pub fn section(
        &mut self,
        name: &str,
        within: Duration,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let (begin, end) = (format!("{name} BEGIN"), format!("{name} END"));
        let start = Instant::now();
        loop {
            let all = std::fs::read_to_string(&self.report).unwrap_or_default();
            if let Some(b) = all.find(&begin) {
                if let Some(e) = all[b..].find(&end) {
                    let text = all[b..b + e + end.len()].to_owned();
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
            }
            if start.elapsed() > within {
                bail!("no complete {name} section on ttyS1 within {within:?}: {all}");
            }
            if let Some(st) = self.child.try_wait()? {
                let all = std::fs::read_to_string(&self.report).unwrap_or_default();
                if !all.contains(&end) {
                    bail!("QEMU exited ({st}) before the {name} section was complete: {all}");
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits for QEMU to end by itself: the box rebooted or powered off (`-no-reboot`).
    pub fn wait_exit(&mut self, within: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            if start.elapsed() > within {
                bail!(
                    "the box did not reboot within {within:?}; console: {}",
                    self.console_tail()
                );
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

/// RAUC's A/B state the way U-Boot keeps it on the Pi (`BOOT_ORDER`, `BOOT_A_LEFT`,
/// `BOOT_B_LEFT`); on the test image RAUC's custom backend
/// (firmware/rauc/docket-qemu-x86/bootloader-backend) keeps it in `docket-boot.env` on the boot
/// partition, and this harness is the bootloader that reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootEnv {
    pub order: Vec<String>,
    pub a_left: u32,
    pub b_left: u32,
}

/// Tries a slot gets when RAUC makes it primary or marks it good (U-Boot's boot script's 3).
pub const BOOT_TRIES: u32 = 3;

impl Default for BootEnv {
    fn default() -> Self {
        BootEnv {
            order: vec!["A".into(), "B".into()],
            a_left: BOOT_TRIES,
            b_left: BOOT_TRIES,
        }
    }
}

impl BootEnv {
    /// Reads the file's `KEY=value` lines; what is missing keeps U-Boot's default.
    pub fn parse(text: &str) -> BootEnv {
        let mut env = BootEnv::default();
        for line in text.lines() {
            match line.split_once('=') {
                Some(("BOOT_ORDER", v)) => {
                    env.order = v.split_whitespace().map(str::to_owned).collect()
                }
                Some(("BOOT_A_LEFT", v)) => env.a_left = v.trim().parse().unwrap_or(0),
                Some(("BOOT_B_LEFT", v)) => env.b_left = v.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
        env
    }

    pub fn render(&self) -> String {
        format!(
            "BOOT_ORDER={}\nBOOT_A_LEFT={}\nBOOT_B_LEFT={}\n",
            self.order.join(" "),
            self.a_left,
            self.b_left
        )
    }

    pub fn left(&self, slot: &str) -> u32 {
        if slot == "B" {
            self.b_left
        } else {
            self.a_left
        }
    }

    fn left_mut(&mut self, slot: &str) -> &mut u32 {
        if slot == "B" {
            &mut self.b_left
        } else {
            &mut self.a_left
        }
    }

    /// What U-Boot's boot script does at power-on: the first slot of `BOOT_ORDER` with tries
    /// left is booted and one of its tries spent. When no slot has any left, all get their
    /// tries back and the first of the order is booted (the script's reset).
    pub fn choose(&mut self) -> String {
        let pick = self.order.iter().find(|s| self.left(s) > 0).cloned();
        let slot = match pick {
            Some(s) => s,
            None => {
                self.a_left = BOOT_TRIES;
                self.b_left = BOOT_TRIES;
                if self.order.is_empty() {
                    self.order = BootEnv::default().order;
                }
                self.order[0].clone()
            }
        };
        *self.left_mut(&slot) -= 1;
        slot
    }
}

/// `docket-boot.env` from the boot partition (1) of a powered-off disk image (mtools, no mount).
pub fn read_boot_env(disk: &Path) -> anyhow::Result<BootEnv> {
    let (off, _) = partition(disk, 1)?;
    let o = Command::new("mtype")
        .arg("-i")
        .arg(format!("{}@@{off}", disk.display()))
        .arg("::docket-boot.env")
        .output()
        .context("cannot run mtype (install mtools)")?;
    if !o.status.success() {
        // A disk made before the boot order existed boots as U-Boot would: defaults.
        return Ok(BootEnv::default());
    }
    Ok(BootEnv::parse(&String::from_utf8_lossy(&o.stdout)))
}

/// Writes `docket-boot.env` back to the boot partition, as U-Boot's `saveenv`.
pub fn write_boot_env(disk: &Path, env: &BootEnv) -> anyhow::Result<()> {
    let (off, _) = partition(disk, 1)?;
    let tmp = tempfile::NamedTempFile::new()?;
    std::fs::write(tmp.path(), env.render())?;
    let o = Command::new("mcopy")
        .arg("-o")
        .arg("-i")
        .arg(format!("{}@@{off}", disk.display()))
        .arg(tmp.path())
        .arg("::docket-boot.env")
        .output()
        .context("cannot run mcopy (install mtools)")?;
    if !o.status.success() {
        bail!(
            "cannot write the boot order to {}: {}",
            disk.display(),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(())
}

/// An update for the test image, as a release build makes one: the image's root file system
/// (`rootfs`, build-test-image.sh's `stage/rootfs.ext4`) with `/etc/docket/release` set to
/// `release` and each `(path, contents)` of `files` written over, in a RAUC verity bundle
/// signed with the development key (firmware/rauc), on a USB stick image (ext4, label
/// `DOCKET-UPD`, the bundle as `update.raucb`). Returns the stick's path.
pub fn update_stick(
    rootfs: &Path,
    release: &str,
    files: &[(&str, &str)],
    work: &Path,
) -> anyhow::Result<PathBuf> {
    let firmware = Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware/rauc");
    let dir = work.join(format!("bundle-{release}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let run = |cmd: &mut Command| -> anyhow::Result<()> {
        let o = cmd
            .output()
            .with_context(|| format!("cannot run {cmd:?}"))?;
        if !o.status.success() {
            bail!(
                "{cmd:?}: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        Ok(())
    };
    let img = dir.join("rootfs.ext4");
    run(Command::new("cp")
        .arg("--sparse=always")
        .arg(rootfs)
        .arg(&img))?;
    let mut all = vec![("/etc/docket/release", format!("{release}\n"))];
    all.extend(files.iter().map(|(p, c)| (*p, (*c).to_owned())));
    for (i, (path, contents)) in all.iter().enumerate() {
        let src = dir.join(format!("file-{i}"));
        std::fs::write(&src, contents)?;
        // debugfs -w: no mount. The old file goes first (write never replaces).
        let _ = Command::new("debugfs")
            .arg("-w")
            .arg("-R")
            .arg(format!("rm {path}"))
            .arg(&img)
            .output();
        run(Command::new("debugfs")
            .arg("-w")
            .arg("-R")
            .arg(format!("write {} {path}", src.display()))
            .arg(&img))?;
        std::fs::remove_file(&src)?;
    }
    let manifest = std::fs::read_to_string(firmware.join("manifest.raucm.in"))?
        .replace("@COMPATIBLE@", "docket-qemu-x86")
        .replace("@VERSION@", release);
    std::fs::write(dir.join("manifest.raucm"), manifest)?;
    let stick = work.join(format!("usb-{release}"));
    let _ = std::fs::remove_dir_all(&stick);
    std::fs::create_dir_all(&stick)?;
    let keys = firmware.join("dev-keys");
    run(Command::new("rauc")
        .arg("bundle")
        // zstd at level 3: ten times faster to make than the default, about the same size.
        .arg("--mksquashfs-args=-comp zstd -Xcompression-level 3")
        .arg("--cert")
        .arg(keys.join("development-1.cert.pem"))
        .arg("--key")
        .arg(keys.join("development-1.key.pem"))
        .arg("--keyring")
        .arg(keys.join("ca.cert.pem"))
        .arg(&dir)
        .arg(stick.join("update.raucb")))?;
    std::fs::remove_dir_all(&dir)?;
    let size = std::fs::metadata(stick.join("update.raucb"))?.len();
    let mib = size / (1 << 20) * 11 / 10 + 16;
    let usb = work.join(format!("usb-{release}.img"));
    let _ = std::fs::remove_file(&usb);
    run(Command::new("mke2fs")
        .args(["-q", "-t", "ext4", "-L", "DOCKET-UPD", "-d"])
        .arg(&stick)
        .arg(&usb)
        .arg(format!("{mib}M")))?;
    std::fs::remove_dir_all(&stick)?;
    Ok(usb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bootloader_spends_tries_and_falls_back() {
        // A fresh image boots A, spending one try each boot until mark-good would reset it.
        let mut env = BootEnv::parse("BOOT_ORDER=A B\nBOOT_A_LEFT=3\nBOOT_B_LEFT=3\n");
        assert_eq!(env.choose(), "A");
        assert_eq!(env.a_left, 2);
        // After `rauc install`: B first with three tries. A B that never gets confirmed is
        // booted three times, then A again.
        let mut env = BootEnv::parse("BOOT_ORDER=B A\nBOOT_A_LEFT=3\nBOOT_B_LEFT=3\n");
        let boots: Vec<String> = (0..4).map(|_| env.choose()).collect();
        assert_eq!(boots, ["B", "B", "B", "A"]);
        assert_eq!((env.a_left, env.b_left), (2, 0));
        // A slot marked bad is out of the order; with no tries anywhere, all are reset.
        let mut env = BootEnv::parse("BOOT_ORDER=B\nBOOT_A_LEFT=0\nBOOT_B_LEFT=0\n");
        assert_eq!(env.choose(), "B");
        assert_eq!((env.a_left, env.b_left), (3, 2));
        // Round trip, and defaults for what is missing.
        assert_eq!(BootEnv::parse(&env.render()), env);
        assert_eq!(BootEnv::parse(""), BootEnv::default());
    }
}
