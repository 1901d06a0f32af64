//! `docket image configure` against an MBR image this test builds (4 partitions; partition 4
//! made with mke2fs), read back with debugfs. Needs e2fsprogs (mke2fs, debugfs).

use std::io::{Seek, SeekFrom, Write};
use std::process::Command;

fn sh(cmd: &mut Command) -> anyhow::Result<String> {
    let o = cmd.output()?;
    anyhow::ensure!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

#[test]
fn image_configure_writes_bundle_and_key_into_partition_4() -> anyhow::Result<()> {
    let t = tempfile::tempdir()?;
    let img = t.path().join("box.img");
    // MBR: partitions 1-3 small, partition 4 (ext4, 8 MiB) from sector 8192.
    let mut mbr = [0u8; 512];
    let parts: [(u8, u32, u32); 4] = [
        (0x0c, 2048, 2048),
        (0x83, 4096, 2048),
        (0x83, 6144, 2048),
        (0x83, 8192, 16384),
    ];
    for (i, (ty, start, n)) in parts.iter().enumerate() {
        let e = &mut mbr[446 + i * 16..446 + (i + 1) * 16];
        e[4] = *ty;
        e[8..12].copy_from_slice(&start.to_le_bytes());
        e[12..16].copy_from_slice(&n.to_le_bytes());
    }
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    let mut f = std::fs::File::create(&img)?;
    f.write_all(&mbr)?;
    f.set_len((8192 + 16384) * 512)?;
    let fs = t.path().join("data.ext4");
    sh(Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4"])
        .arg(&fs)
        .arg("8M"))?;
    f.seek(SeekFrom::Start(8192 * 512))?;
    f.write_all(&std::fs::read(&fs)?)?;
    f.sync_all()?;
    let before = std::fs::read(&img)?;

    let site = t.path().join("site");
    let docket = env!("CARGO_BIN_EXE_docket");
    sh(Command::new(docket)
        .args(["site", "init", "--dir"])
        .arg(&site)
        .args(["--site-id", "cafe-9", "--name", "Nine"]))?;
    sh(Command::new(docket)
        .args(["image", "configure", "--dir"])
        .arg(&site)
        .arg(&img))?;
    // Twice: the second overwrites (serial 2).
    sh(Command::new(docket)
        .args(["image", "configure", "--dir"])
        .arg(&site)
        .arg(&img))?;

    let after = std::fs::read(&img)?;
    assert_eq!(
        before[..8192 * 512],
        after[..8192 * 512],
        "only partition 4 changes"
    );
    std::fs::write(&fs, &after[8192 * 512..])?;
    let bundle = sh(Command::new("debugfs")
        .args(["-R", "cat docket/site-bundle.json"])
        .arg(&fs))?;
    let v: serde_json::Value = serde_json::from_str(&bundle)?;
    assert_eq!(v["bundle"]["site_id"], "cafe-9");
    assert_eq!(v["bundle"]["serial"], 2);
    let key = sh(Command::new("debugfs")
        .args(["-R", "cat docket/site-key.pub"])
        .arg(&fs))?;
    assert_eq!(key, std::fs::read_to_string(site.join("site.pub"))?);
    // The bundle verifies against the key, as docketd will check it.
    let pk = docket_core::bundle::parse_public_key(&key)?;
    docket_core::bundle::verify(bundle.as_bytes(), &pk)?;

    // No partition 4: a clear error.
    let bare = t.path().join("bare.img");
    let mut m2 = mbr;
    m2[446 + 48..446 + 64].fill(0);
    std::fs::write(&bare, m2)?;
    let o = Command::new(docket)
        .args(["image", "configure", "--dir"])
        .arg(&site)
        .arg(&bare)
        .output()?;
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no partition 4"));
    Ok(())
}
