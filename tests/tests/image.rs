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

/// Checks what the box reported on ttyS1 after boot `n`.
fn check_report(vm: &mut Vm, n: usize) -> R {
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
        "boot {n}: docketd active under systemd, exposure {exposure}, box {}",
        get("BoxId")
    );
    Ok(())
}

/// Pairs a tablet the way a technician does: the device asks for a code, `docket pair --dir`
/// approves it, the device collects its credentials.
fn pair(vm: &Vm, site: &Path, id: &str) -> anyhow::Result<Creds> {
    let addr = vm.http_addr();
    let r = http_request(
        addr,
        "POST",
        "/api/pair",
        &[("Content-Type", "application/json")],
        "{}",
    )?;
    ensure!(r.status == 201, "POST /api/pair: {} {}", r.status, r.body);
    let v = r.json()?;
    let code = v["code"].as_str().context("code")?.to_owned();
    let token = v["token"].as_str().context("token")?.to_owned();
    let host = format!("127.0.0.1:{}", vm.http);
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
    let r = http_request(addr, "GET", &format!("/api/pair/{token}"), &[], "")?;
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
    let logs = std::env::var_os("DOCKET_ARTIFACTS")
        .map(|a| PathBuf::from(a).join("image"))
        .unwrap_or_else(|| work.path().join("logs"));
    std::fs::create_dir_all(&logs)?;
    let disk = work.path().join("disk.img");
    let st = Command::new("cp")
        .arg("--sparse=always")
        .arg(dir.join("docket-test.img"))
        .arg(&disk)
        .status()?;
    ensure!(st.success(), "cannot copy the image");
    let image = Image {
        disk: disk.clone(),
        kernel: dir.join("vmlinuz"),
        initrd: dir.join("initrd.img"),
    };

    // 1. The technician's laptop: a site, written into the image before "flashing".
    let site = work.path().join("site");
    docket(&[
        "site",
        "init",
        "--dir",
        s(&site),
        "--site-id",
        "cafe-qemu",
        "--name",
        "QEMU Café",
    ])?;
    docket(&["image", "configure", "--dir", s(&site), s(&disk)])?;

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

    // 2. Doctor green, tablets paired, orders over MQTT.
    let host = format!("127.0.0.1:{http}");
    let doc = docket(&["doctor", &host, "--mqtt-port", &mqtt.to_string(), "--json"])?;
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
