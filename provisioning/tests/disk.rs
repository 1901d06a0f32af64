//! `docket doctor` against a box whose data partition is full: red, saying what to do. The data
//! dir is a small tmpfs, filled like tests/tests/disk_full.rs does (mounting needs root;
//! elsewhere the test says it is skipped).

use std::process::Command;

use docket_tests::{Daemon, Tmpfs};

#[test]
fn doctor_is_red_on_a_full_disk() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let data = root.path().join("data");
    let Some(_mount) = Tmpfs::mount(&data, "64m") else {
        eprintln!(
            "SKIPPED: cannot mount a tmpfs here (needs root); doctor's disk-full test did not run"
        );
        return Ok(());
    };
    let d = Daemon::start_with(
        &[("DOCKET_DATA_DIR", data.to_str().unwrap_or("?"))],
        "test-site",
        "",
    )?;
    let doctor = || -> anyhow::Result<(bool, String)> {
        let o = Command::new(env!("CARGO_BIN_EXE_docket"))
            .args(["doctor", &format!("{}:{}", d.host, d.https)])
            .args(["--mqtt-port", &d.mqtts.to_string()])
            .output()?;
        Ok((
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        ))
    };
    // (Red before too: this box has no site bundle; only the disk line matters here.)
    let (_, text) = doctor()?;
    assert!(text.contains("ok   disk"), "{text}");
    Tmpfs::fill(&data)?;
    let (green, text) = doctor()?;
    assert!(!green, "{text}");
    assert!(text.contains("FAIL disk"), "{text}");
    assert!(text.contains("free space on /data"), "{text}");
    Ok(())
}
