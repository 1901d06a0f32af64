//! `docket flash` with a regular file as the device: confirmation, write, read-back verify.

use std::io::Write;
use std::process::{Command, Stdio};

#[test]
fn flash_needs_confirmation_and_verifies() -> anyhow::Result<()> {
    let t = tempfile::tempdir()?;
    let img = t.path().join("box.img");
    let dev = t.path().join("sdcard");
    let data: Vec<u8> = (0..(9u32 << 20) + 123)
        .map(|i| (i * 31 % 251) as u8)
        .collect();
    std::fs::write(&img, &data)?;
    std::fs::write(&dev, vec![0xffu8; 16 << 20])?;
    let docket = env!("CARGO_BIN_EXE_docket");
    let run = |args: &[&str], stdin: &str| -> anyhow::Result<std::process::Output> {
        let mut c = Command::new(docket)
            .args(args)
            .arg(&img)
            .arg(&dev)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        c.stdin.take().map(|mut i| i.write_all(stdin.as_bytes()));
        Ok(c.wait_with_output()?)
    };
    // Wrong confirmation: refused, nothing written.
    let o = run(&["flash"], "yes\n")?;
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not confirmed"));
    assert!(std::fs::read(&dev)?.iter().all(|b| *b == 0xff));
    // Typing the device name: written and verified.
    let o = run(&["flash"], &format!("{}\n", dev.display()))?;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("verified"));
    assert_eq!(std::fs::read(&dev)?[..data.len()], data[..]);
    // --yes --json for scripts.
    let o = run(&["flash", "--yes", "--json"], "")?;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)?;
    assert_eq!(v["flashed"], true);
    assert_eq!(v["sha256"].as_str().map(str::len), Some(64));
    Ok(())
}
