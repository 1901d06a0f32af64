//! The box's test image under QEMU: the technician's flow on a booted box, then power cuts
//! under load. Runs when `DOCKET_TEST_IMAGE_DIR` names a directory made by
//! `scripts/build-test-image.sh` (scripts/boot-test.sh sets it; scripts/test.sh runs that);
//! says SKIPPED otherwise.
//!
//! 1. `docket site init` + `docket image configure` on a copy of the image, then boot it:
//!    docketd reaches READY under systemd (read from outside on the second serial port: active,
//!    no restart, first boot made the identity, read-only root, the unit's security exposure
//!    under its threshold) and `/healthz` answers through a forwarded port.
//! 2. `docket doctor` is green; `docket site push` to the running box applies at once (docketd
//!    stops, systemd starts it again); two tablets are paired with `docket pair --dir` and place orders
//!    over MQTT through the forwarded port.
//! 3. Power cuts (`DOCKET_POWER_CUTS`, default 3) at random moments under that load: SIGKILL of
//!    QEMU, then the data partition is read from the disk image (journal replayed, e2fsck clean)
//!    and the oracle checks its SQLite store: integrity_check ok, every acknowledged command
//!    there once with the reply its tablet got, nothing doubled, seq gapless. The box boots
//!    again on the same disk; the tablets resend what was unanswered with the same ids.
//! 4. After the last boot every command is answered, and a last cut is checked the same way.
//!
//! A second test installs a RAUC update into the other slot under load, boots it, then installs
//! a bad release that rolls back after three boots (see its doc and docs/updates.md). Every
//! boot goes through the test's "bootloader" (`vm::BootEnv`, U-Boot's A/B logic).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use docket_tests::chaos::{self, DeviceSpec, Phase, Role, Shared};
use docket_tests::vm::{self, Image, Vm};
use docket_tests::{free_port, http_request, Creds};
use rand::{Rng, SeedableRng};

type R = anyhow::Result<()>;

/// Under TCG a boot to READY takes ~15 s here; this is the give-up point.
const BOOT: Duration = Duration::from_secs(240);

fn docket_cli() -> PathBuf {
    std::env::var_os("DOCKET_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| docket_tests::docketd_bin().with_file_name("docket"))
}

fn docket(args: &[&str]) -> anyhow::Result<String> {
    let o = Command::new(docket_cli())
        .args(args)
        .output()
        .with_context(|| format!("cannot run {}", docket_cli().display()))?;
    ensure!(
        o.status.success(),
        "docket {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// Checks what the box reported on ttyS1 after boot `n`; returns the report.
fn check_report(vm: &mut Vm, n: usize) -> anyhow::Result<BTreeMap<String, String>> {
    let r = vm.report(Duration::from_secs(60))?;
    let text = &r["text"];
    let get = |k: &str| r.get(k).map(String::as_str).unwrap_or("");
    ensure!(
        get("ActiveState") == "active" && get("SubState") == "running",
        "boot {n}: docketd is not running under systemd:\n{text}"
    );
    ensure!(
        get("NRestarts") == "0",
        "boot {n}: systemd restarted docketd:\n{text}"
    );
    ensure!(
        get("FirstBoot") == "success",
        "boot {n}: docket-firstboot did not succeed:\n{text}"
    );
    ensure!(
        get("BoxId").len() == 32 && get("BoxId").bytes().all(|b| b.is_ascii_hexdigit()),
        "boot {n}: no box identity:\n{text}"
    );
    ensure!(
        get("BoxKeyOwner") == "docket:600",
        "boot {n}: box.key is not docket's 0600:\n{text}"
    );
    ensure!(
        get("RootOptions").split(',').any(|o| o == "ro"),
        "boot {n}: the root file system is not read-only:\n{text}"
    );
    ensure!(
        get("DataSource") == "/dev/vda4",
        "boot {n}: /data is not partition 4:\n{text}"
    );
    ensure!(
        get("StateSource") == "/dev/vda4[/docket]",
        "boot {n}: docketd's StateDirectory /var/lib/docket is not docket/ on the data partition:\n{text}"
    );
    let root = if vm.slot == "B" {
        "/dev/vda3"
    } else {
        "/dev/vda2"
    };
    ensure!(
        get("Slot") == vm.slot && get("RootSource") == root,
        "boot {n}: booted slot {} from {}, the bootloader chose {} ({root}):\n{text}",
        get("Slot"),
        get("RootSource"),
        vm.slot
    );
    // RAUC's mark-good ran after READY: the slot is confirmed, its tries are back.
    ensure!(
        get("MarkGood") == "active/success",
        "boot {n}: docket-mark-good did not confirm the slot ({}):\n{text}",
        get("MarkGood")
    );
    let env = boot_env(&r);
    let next = env.order.iter().find(|s| env.left(s) > 0);
    ensure!(
        env.left(&vm.slot) == vm::BOOT_TRIES && next == Some(&vm.slot),
        "boot {n}: slot {} confirmed but the boot order is {env:?}:\n{text}",
        vm.slot
    );
    // firmware/rauc/docket-qemu-x86/system.conf: rootfs.0 is bootname A, rootfs.1 is B.
    let slot_name = if vm.slot == "B" {
        "rootfs.1"
    } else {
        "rootfs.0"
    };
    ensure!(
        get("RaucBooted") == vm.slot && get("RaucPrimary") == slot_name,
        "boot {n}: RAUC sees slot {:?} booted and {:?} primary, not {} ({slot_name}):\n{text}",
        get("RaucBooted"),
        get("RaucPrimary"),
        vm.slot
    );
    ensure!(
        get("DocketdUser") == "docket",
        "boot {n}: docketd does not run as docket:\n{text}"
    );
    ensure!(
        get("Failed").is_empty(),
        "boot {n}: failed units: {}\n{text}",
        get("Failed")
    );
    let threshold: f64 = std::env::var("DOCKET_SECURITY_THRESHOLD")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(2.0);
    let exposure: f64 = get("Exposure")
        .parse()
        .with_context(|| format!("boot {n}: no exposure score:\n{text}"))?;
    ensure!(
        exposure <= threshold,
        "boot {n}: docketd.service exposure {exposure} on the running box is above {threshold}"
    );
    println!(
        "boot {n}: slot {} ({}), docketd active under systemd, slot marked good, exposure {exposure}, box {}",
        vm.slot,
        get("Release"),
        get("BoxId")
    );
    Ok(r)
}

/// Pairs a tablet the way a technician does: the device asks for a code, `docket pair --dir`
/// approves it, the device collects its credentials.
/// One HTTPS request to the box, trusting only the site's CA (as a tablet that installed it).
fn https(
    vm: &Vm,
    site: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> anyhow::Result<docket_tests::HttpReply> {
    let ca = std::fs::read_to_string(site.join("site-ca.pem")).context("the site CA")?;
    docket_tests::secure::https_request(
        docket_tests::secure::trusting(&ca)?,
        "127.0.0.1",
        vm.https_addr(),
        method,
        path,
        headers,
        body,
    )
}

fn pair(vm: &Vm, site: &Path, id: &str) -> anyhow::Result<Creds> {
    let r = https(
        vm,
        site,
        "POST",
        "/api/pair",
        &[("Content-Type", "application/json")],
        "{}",
    )?;
    ensure!(r.status == 201, "POST /api/pair: {} {}", r.status, r.body);
    let v = r.json()?;
    let code = v["code"].as_str().context("code")?.to_owned();
    let token = v["token"].as_str().context("token")?.to_owned();
    let host = format!("127.0.0.1:{}", vm.https);
    docket(&[
        "pair",
        "--box",
        &host,
        "--dir",
        s(site),
        "--code",
        &code,
        "--id",
        id,
        "--role",
        "tablet",
    ])?;
    let r = https(vm, site, "GET", &format!("/api/pair/{token}"), &[], "")?;
    ensure!(
        r.status == 200,
        "collecting credentials: {} {}",
        r.status,
        r.body
    );
    Ok(serde_json::from_str(&r.body)?)
}

fn acked(l: &Shared) -> usize {
    l.lock().unwrap_or_else(|p| p.into_inner()).acked.len()
}

fn unanswered(l: &Shared) -> usize {
    l.lock()
        .unwrap_or_else(|p| p.into_inner())
        .pending
        .values()
        .sum()
}

/// After a cut: the store on the disk image against what the tablets were told.
fn check_cut(disk: &Path, into: &Path, ledger: &Shared, what: &str) -> anyhow::Result<u64> {
    let db = vm::extract_store(disk, into)?;
    // Opened read-write once: SQLite recovers the WAL, as docketd will at its next start.
    let conn = rusqlite::Connection::open(&db)?;
    let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    drop(conn);
    ensure!(
        integrity == "ok",
        "{what}: integrity_check says {integrity}"
    );
    let rep = chaos::check(&db, ledger)?;
    let seq = chaos::box_seq(&db)?;
    println!("{what}: {rep}; the disk holds seq {seq}, integrity_check ok, e2fsck clean");
    ensure!(
        rep.lost == 0 && rep.duplicated == 0 && rep.problems.is_empty(),
        "{what}: {rep}\n{}",
        rep.problems.join("\n")
    );
    Ok(seq)
}

/// Where the console and report logs of every boot go.
fn logs_dir(work: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let logs = std::env::var_os("DOCKET_ARTIFACTS")
        .map(|a| PathBuf::from(a).join(name))
        .unwrap_or_else(|| work.join(format!("logs-{name}")));
    std::fs::create_dir_all(&logs)?;
    Ok(logs)
}

/// The technician's laptop: a copy of the image ("the box's disk"), a site made with
/// `docket site init` and written into the image with `docket image configure` before flashing.
fn configured_image(
    dir: &Path,
    work: &Path,
    site_id: &str,
    name: &str,
) -> anyhow::Result<(Image, PathBuf)> {
    let disk = work.join("disk.img");
    let st = Command::new("cp")
        .arg("--sparse=always")
        .arg(dir.join("docket-test.img"))
        .arg(&disk)
        .status()?;
    ensure!(st.success(), "cannot copy the image");
    let site = work.join("site");
    docket(&[
        "site",
        "init",
        "--dir",
        s(&site),
        "--site-id",
        site_id,
        "--name",
        name,
    ])?;
    docket(&["image", "configure", "--dir", s(&site), s(&disk)])?;
    let image = Image {
        disk,
        ..Image::in_dir(dir)
    };
    Ok((image, site))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_boots_takes_orders_and_survives_power_cuts() -> R {
    let Some(dir) = std::env::var_os("DOCKET_TEST_IMAGE_DIR").map(PathBuf::from) else {
        eprintln!("SKIPPED: DOCKET_TEST_IMAGE_DIR is not set (scripts/boot-test.sh sets it)");
        return Ok(());
    };
    let cuts: usize = std::env::var("DOCKET_POWER_CUTS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(3);
    let seed: u64 = std::env::var("DOCKET_SEED")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(rand::random);
    println!("power cuts: {cuts}, seed {seed} (DOCKET_SEED to repeat)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let work = tempfile::Builder::new().prefix("docket-image-").tempdir()?;
    let logs = logs_dir(work.path(), "image")?;
    let (image, site) = configured_image(&dir, work.path(), "cafe-qemu", "QEMU Café")?;
    let disk = image.disk.clone();

    let (http, mqtt) = (free_port(), free_port());
    let mut vm = Vm::boot(&image, &logs, 0, http, mqtt)?;
    let ready = vm.wait_healthy(BOOT)?;
    println!("boot 0 (first boot): /healthz 200 after {ready:?}");
    check_report(&mut vm, 0)?;
    let h = http_request(vm.http_addr(), "GET", "/healthz", &[], "")?.json()?;
    ensure!(
        h["site_id"] == "cafe-qemu" && h["site"]["state"] == "applied",
        "{h}"
    );

    // 2. Doctor green (HTTPS and MQTT over TLS under the site CA), tablets paired, orders over
    // MQTT.
    let host = format!("127.0.0.1:{}", vm.https);
    let mqtts = vm.mqtts.to_string();
    let doc = docket(&[
        "doctor",
        &host,
        "--mqtt-port",
        &mqtts,
        "--dir",
        s(&site),
        "--json",
    ])?;
    let v: serde_json::Value = serde_json::from_str(&doc)?;
    ensure!(v["green"] == true, "doctor on the booted image: {v}");
    println!("docket doctor: all green");

    // A new bundle pushed to the running box: stored, docketd stops and systemd starts it again
    // with the bundle applied (the box's config has restart_on_site_push).
    let out = docket(&["site", "push", "--dir", s(&site), &host, "--json"])?;
    let v: serde_json::Value = serde_json::from_str(out.trim())?;
    ensure!(v["applies"] == "now", "site push: {out}");
    let serial = v["serial"].as_u64().context("serial")?;
    let start = Instant::now();
    loop {
        let h = http_request(vm.http_addr(), "GET", "/healthz", &[], "")
            .ok()
            .and_then(|r| r.json().ok());
        if h.as_ref()
            .is_some_and(|h| h["site"]["serial"].as_u64() == Some(serial))
        {
            break;
        }
        ensure!(
            start.elapsed() < Duration::from_secs(60),
            "the pushed bundle (serial {serial}) was not applied within 60 s: {h:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "site push: serial {serial} applied after {:?} (systemd restarted docketd)",
        start.elapsed()
    );

    let ledger = Shared::default();
    let (phase, rx) = tokio::sync::watch::channel(Phase::Load);
    let mut tasks = Vec::new();
    for i in 1..=2 {
        let creds = tokio::task::block_in_place(|| pair(&vm, &site, &format!("tablet-{i}")))?;
        let spec = DeviceSpec {
            creds,
            role: Role::Tablet,
            port: mqtt,
            interval: Duration::from_millis(100),
            keep_alive: Duration::from_secs(5),
            seed: seed.wrapping_add(i),
        };
        tasks.push(tokio::spawn(chaos::run(spec, rx.clone(), ledger.clone())));
    }

    // 3. Power cuts at random moments under load (the tablets back and placing orders: a few
    // new acknowledgements first).
    for cut in 1..=cuts {
        let before = acked(&ledger);
        let until = Instant::now() + Duration::from_millis(rng.gen_range(1500..5000));
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < until || acked(&ledger) < before + 5 {
            ensure!(
                Instant::now() < deadline,
                "cut {cut}: fewer than 5 orders acknowledged in 90 s; console: {}",
                vm.console_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        vm.power_cut()?;
        let at = acked(&ledger);
        let what = format!("power cut {cut} ({at} commands acknowledged so far)");
        tokio::task::block_in_place(|| {
            check_cut(
                &disk,
                &work.path().join(format!("cut-{cut}")),
                &ledger,
                &what,
            )
        })?;
        vm = Vm::boot(&image, &logs, cut, http, mqtt)?;
        let ready = tokio::task::block_in_place(|| vm.wait_healthy(BOOT))?;
        println!("boot {cut}: /healthz 200 after {ready:?}");
        tokio::task::block_in_place(|| check_report(&mut vm, cut))?;
    }

    // 4. Every command answered (resent ones with the same ids), then a last cut.
    let _ = phase.send(Phase::Drain);
    let deadline = Instant::now() + Duration::from_secs(90);
    while unanswered(&ledger) > 0 {
        ensure!(
            Instant::now() < deadline,
            "{} commands still unanswered 90 s after the last boot",
            unanswered(&ledger)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let h = http_request(vm.http_addr(), "GET", "/healthz", &[], "")?.json()?;
    let _ = phase.send(Phase::Stop);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    vm.power_cut()?;
    let total = acked(&ledger);
    let seq = tokio::task::block_in_place(|| {
        check_cut(
            &disk,
            &work.path().join("last"),
            &ledger,
            "last cut, all answered",
        )
    })?;
    ensure!(
        h["seq"].as_u64() == Some(seq),
        "the box said seq {} before the cut; its disk holds {seq}",
        h["seq"]
    );
    ensure!(
        total > cuts,
        "only {total} commands acknowledged over {cuts} cuts"
    );
    println!(
        "image: {total} commands acknowledged across {cuts} power cuts; none lost, none doubled"
    );
    Ok(())
}

/// Waits until the tablets have `n` more acknowledgements than `before`.
async fn more_acks(ledger: &Shared, before: usize, n: usize, what: &str) -> R {
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked(ledger) < before + n {
        ensure!(
            Instant::now() < deadline,
            "{what}: fewer than {n} orders acknowledged in 120 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// The boot order on the box, from a report or an update section.
fn boot_env(r: &BTreeMap<String, String>) -> vm::BootEnv {
    vm::BootEnv::parse(
        &r.get("BootEnv")
            .cloned()
            .unwrap_or_default()
            .replace(';', "\n"),
    )
}

/// A/B updates with RAUC on the booted image, the way docs/updates.md tells them:
/// 1. Slot A runs; a technician's USB stick holds a signed bundle (`update-1`). `rauc install`
///    writes it into slot B while a tablet keeps placing orders, makes B primary with three
///    tries, and the box reboots.
/// 2. The "bootloader" (tests/src/vm.rs, U-Boot's logic) boots B: same box id, same site, same
///    store; `docket-mark-good` confirms B after READY; RAUC sees B booted and primary.
/// 3. A second stick holds a bad release (its docketd cannot start). It installs into A, the
///    box reboots into A; docketd never gets READY, so mark-good never runs, systemd's start
///    limit reboots the box, and each boot spends one of A's tries. After three, the
///    bootloader boots B again: the box is back on `update-1`, green, with every order.
/// 4. All the tablet's commands are answered; a power cut, and the oracle on the store: every
///    acknowledged order there once, nothing doubled, seq gapless.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_boots_the_other_slot_and_a_bad_one_rolls_back() -> R {
    let Some(dir) = std::env::var_os("DOCKET_TEST_IMAGE_DIR").map(PathBuf::from) else {
        eprintln!("SKIPPED: DOCKET_TEST_IMAGE_DIR is not set (scripts/boot-test.sh sets it)");
        return Ok(());
    };
    let work = tempfile::Builder::new()
        .prefix("docket-update-")
        .tempdir()?;
    let logs = logs_dir(work.path(), "update")?;
    let (image, site) = configured_image(&dir, work.path(), "cafe-update", "Update Café")?;
    let disk = image.disk.clone();

    // The release build's two bundles, each on a USB stick: a good one, and one whose docketd
    // refuses its config at start (a bad release that never gets READY).
    let rootfs = dir.join("stage/rootfs.ext4");
    let start = Instant::now();
    let (good, bad) = tokio::task::block_in_place(|| -> anyhow::Result<_> {
        let good = vm::update_stick(&rootfs, "update-1", &[], work.path())?;
        let bad = vm::update_stick(
            &rootfs,
            "update-2-broken",
            &[("/etc/docket/docketd.toml", "data_dir = 7\n")],
            work.path(),
        )?;
        Ok((good, bad))
    })?;
    println!("two signed bundles on USB sticks in {:?}", start.elapsed());

    // 1. Slot A, with the good stick attached; a tablet places orders throughout.
    let (http, mqtt) = (free_port(), free_port());
    let mut vm = Vm::boot_with(&image, &logs, 0, http, mqtt, Some(&good))?;
    ensure!(vm.slot == "A", "a new box boots slot A, not {}", vm.slot);
    tokio::task::block_in_place(|| vm.wait_healthy(BOOT))?;
    let first = tokio::task::block_in_place(|| check_report(&mut vm, 0))?;
    let ledger = Shared::default();
    let (phase, rx) = tokio::sync::watch::channel(Phase::Load);
    let creds = tokio::task::block_in_place(|| pair(&vm, &site, "tablet-1"))?;
    let spec = DeviceSpec {
        creds,
        role: Role::Tablet,
        port: mqtt,
        interval: Duration::from_millis(200),
        keep_alive: Duration::from_secs(5),
        seed: 7,
    };
    let task = tokio::spawn(chaos::run(spec, rx, ledger.clone()));
    more_acks(&ledger, 0, 5, "slot A").await?;
    let before = acked(&ledger);
    let u = tokio::task::block_in_place(|| vm.section("DOCKET-UPDATE", Duration::from_secs(600)))?;
    ensure!(
        u.get("Install").map(String::as_str) == Some("ok"),
        "rauc install of update-1: {}",
        u["text"]
    );
    let env = boot_env(&u);
    ensure!(
        env.order.first().map(String::as_str) == Some("B") && env.b_left == vm::BOOT_TRIES,
        "after the install slot B must be primary with {} tries: {env:?}",
        vm::BOOT_TRIES
    );
    println!(
        "update-1 installed into slot B in {} s; the tablet got {} acknowledgements meanwhile",
        u.get("InstallSeconds").map(String::as_str).unwrap_or("?"),
        acked(&ledger) - before
    );
    tokio::task::block_in_place(|| vm.wait_exit(Duration::from_secs(120)))?;

    // 2. Slot B, the bad stick attached this time.
    vm = Vm::boot_with(&image, &logs, 1, http, mqtt, Some(&bad))?;
    ensure!(
        vm.slot == "B",
        "after the install the bootloader booted {}",
        vm.slot
    );
    tokio::task::block_in_place(|| vm.wait_healthy(BOOT))?;
    let r = tokio::task::block_in_place(|| check_report(&mut vm, 1))?;
    ensure!(
        r["Release"] == "update-1" && r["BoxId"] == first["BoxId"],
        "slot B runs {:?} as box {:?}; expected update-1 as box {:?}",
        r["Release"],
        r["BoxId"],
        first["BoxId"]
    );
    let h = http_request(vm.http_addr(), "GET", "/healthz", &[], "")?.json()?;
    ensure!(
        h["site_id"] == "cafe-update",
        "the site did not survive the update: {h}"
    );
    more_acks(&ledger, acked(&ledger), 5, "slot B").await?;

    // 3. The bad release goes into A; A never gets READY and the box falls back to B.
    let u = tokio::task::block_in_place(|| vm.section("DOCKET-UPDATE", Duration::from_secs(600)))?;
    ensure!(
        u.get("Install").map(String::as_str) == Some("ok"),
        "rauc install of update-2-broken: {}",
        u["text"]
    );
    ensure!(
        boot_env(&u).order.first().map(String::as_str) == Some("A"),
        "after the second install slot A must be primary: {}",
        u["text"]
    );
    tokio::task::block_in_place(|| vm.wait_exit(Duration::from_secs(120)))?;
    let mut n = 2;
    let mut a_boots = 0;
    loop {
        vm = Vm::boot(&image, &logs, n, http, mqtt)?;
        if vm.slot == "B" {
            break;
        }
        a_boots += 1;
        ensure!(
            a_boots <= vm::BOOT_TRIES,
            "slot A was booted more than {} times",
            vm::BOOT_TRIES
        );
        tokio::task::block_in_place(|| vm.wait_exit(Duration::from_secs(300)))?;
        let env = tokio::task::block_in_place(|| vm::read_boot_env(&disk))?;
        println!(
            "boot {n}: slot A (update-2-broken): docketd never READY, not marked good, \
             docketd-recover rebooted the box; A has {} tries left",
            env.a_left
        );
        n += 1;
    }
    ensure!(
        a_boots == vm::BOOT_TRIES,
        "slot A was booted {a_boots} times before the fallback, not {}",
        vm::BOOT_TRIES
    );
    tokio::task::block_in_place(|| vm.wait_healthy(BOOT))?;
    let r = tokio::task::block_in_place(|| check_report(&mut vm, n))?;
    ensure!(
        r["Release"] == "update-1" && r["BoxId"] == first["BoxId"],
        "after the rollback the box runs {:?} as {:?}",
        r["Release"],
        r["BoxId"]
    );
    ensure!(
        boot_env(&r).a_left == 0,
        "the bad slot A still has tries: {}",
        r["BootEnv"]
    );
    println!("boot {n}: back on slot B (update-1) after {a_boots} failed boots of A");

    // 4. Everything answered, then a power cut and the oracle.
    let _ = phase.send(Phase::Drain);
    let deadline = Instant::now() + Duration::from_secs(90);
    while unanswered(&ledger) > 0 {
        ensure!(
            Instant::now() < deadline,
            "{} commands still unanswered 90 s after the rollback",
            unanswered(&ledger)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = phase.send(Phase::Stop);
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    vm.power_cut()?;
    tokio::task::block_in_place(|| {
        check_cut(
            &disk,
            &work.path().join("last"),
            &ledger,
            "after two updates and a rollback",
        )
    })?;
    println!(
        "update: {} commands acknowledged across two installs, {} reboots and a rollback; none lost, none doubled",
        acked(&ledger),
        n
    );
    Ok(())
}
