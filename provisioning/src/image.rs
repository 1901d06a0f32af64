//! `docket image configure` and `docket flash`: a site bundle into a firmware image's data
//! partition, and an image onto a card, read back and compared.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};

use crate::out;
use crate::sitedir::{hex_of, new_bundle};

pub fn configure(dir: &Path, image: &Path, json: bool) -> anyhow::Result<()> {
    let (bjson, b) = new_bundle(dir)?;
    let key = std::fs::read_to_string(dir.join("site.pub"))?;
    image_configure(image, &bjson, &key)?;
    out(
        json,
        serde_json::json!({"serial": b.serial, "image": image}),
        &format!(
            "bundle serial {} and the pinned key written into {} (partition 4, /docket/)",
            b.serial,
            image.display()
        ),
    );
    Ok(())
}

pub fn flash_cmd(image: &Path, device: &Path, yes: bool, json: bool) -> anyhow::Result<()> {
    let hash = flash(image, device, yes, json)?;
    out(
        json,
        serde_json::json!({"flashed": true, "sha256": hash, "device": device}),
        &format!(
            "{} written to {} and verified (sha256 {hash})",
            image.display(),
            device.display()
        ),
    );
    Ok(())
}

fn flash(image: &Path, device: &Path, yes: bool, json: bool) -> anyhow::Result<String> {
    use sha2::Digest;
    use std::io::Read;
    let len = std::fs::metadata(image)
        .with_context(|| format!("cannot read {}", image.display()))?
        .len();
    if !yes {
        eprintln!(
            "\n  !!! THIS ERASES EVERYTHING ON {} !!!\n  Type the device name ({}) to go on:",
            device.display(),
            device.display()
        );
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        if line.trim() != device.to_string_lossy() {
            bail!("not confirmed: nothing written (type the device name exactly, or pass --yes)");
        }
    }
    let bar = if json {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(len)
    };
    let mut src = std::fs::File::open(image)?;
    let mut dst = std::fs::OpenOptions::new()
        .write(true)
        .open(device)
        .with_context(|| format!("cannot open {} for writing", device.display()))?;
    let mut buf = vec![0u8; 4 << 20];
    let mut want = sha2::Sha256::new();
    loop {
        let n = src.read(&mut buf)?;
        if n == 0 {
            break;
        }
        want.update(&buf[..n]);
        dst.write_all(&buf[..n])
            .with_context(|| format!("writing {}", device.display()))?;
        bar.inc(n as u64);
    }
    dst.sync_all()
        .with_context(|| format!("flushing {}", device.display()))?;
    drop(dst);
    bar.finish_and_clear();
    // Read back exactly the image's length.
    let mut back = std::fs::File::open(device)?.take(len);
    let mut got = sha2::Sha256::new();
    let mut total = 0u64;
    loop {
        let n = back.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got.update(&buf[..n]);
        total += n as u64;
    }
    let (want, got) = (hex_of(&want.finalize()), hex_of(&got.finalize()));
    if total != len || want != got {
        bail!(
            "verification FAILED: {} reads back differently from {} (bad card?): do not use it",
            device.display(),
            image.display()
        );
    }
    Ok(want)
}

/// Partition 4 of an MBR image: (byte offset, byte length).
fn partition4(image: &Path) -> anyhow::Result<(u64, u64)> {
    use std::io::Read;
    let mut mbr = [0u8; 512];
    std::fs::File::open(image)
        .with_context(|| format!("cannot open {}", image.display()))?
        .read_exact(&mut mbr)
        .with_context(|| format!("{} is too short to be a disk image", image.display()))?;
    if mbr[510..512] != [0x55, 0xAA] {
        bail!("{} has no MBR partition table", image.display());
    }
    let e = &mbr[446 + 3 * 16..446 + 4 * 16];
    let le = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64;
    let (start, sectors) = (le(&e[8..12]), le(&e[12..16]));
    if e[4] == 0 || sectors == 0 {
        bail!(
            "{} has no partition 4 (the data partition)",
            image.display()
        );
    }
    let len = std::fs::metadata(image)?.len();
    if (start + sectors) * 512 > len {
        bail!(
            "partition 4 of {} runs past the end of the file",
            image.display()
        );
    }
    Ok((start * 512, sectors * 512))
}

fn image_configure(image: &Path, bundle_json: &str, key: &str) -> anyhow::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let (off, len) = partition4(image)?;
    let tmp = tempfile::tempdir()?;
    let part = tmp.path().join("data.ext4");
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .with_context(|| format!("cannot open {} for writing", image.display()))?;
    f.seek(SeekFrom::Start(off))?;
    let mut buf = vec![0u8; len as usize];
    f.read_exact(&mut buf)?;
    std::fs::write(&part, &buf)?;
    std::fs::write(tmp.path().join("site-bundle.json"), bundle_json)?;
    std::fs::write(tmp.path().join("site-key.pub"), key)?;
    let t = tmp.path().display();
    // `rm` of a file not there yet only prints an error; `write` refuses to overwrite.
    let script = format!(
        "mkdir docket\nrm docket/site-bundle.json\nrm docket/site-key.pub\nwrite {t}/site-bundle.json docket/site-bundle.json\nwrite {t}/site-key.pub docket/site-key.pub\n"
    );
    std::fs::write(tmp.path().join("cmds"), script)?;
    let o = std::process::Command::new("debugfs")
        .arg("-w")
        .arg("-f")
        .arg(tmp.path().join("cmds"))
        .arg(&part)
        .output()
        .context("cannot run debugfs: install e2fsprogs")?;
    if !o.status.success() {
        bail!(
            "debugfs failed on partition 4: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // Read back what debugfs wrote before touching the image.
    let o = std::process::Command::new("debugfs")
        .args(["-R", "cat docket/site-bundle.json"])
        .arg(&part)
        .output()?;
    if o.stdout != bundle_json.as_bytes() {
        bail!(
            "partition 4 is not an ext4 file system debugfs can write (read-back differs): {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let new = std::fs::read(&part)?;
    f.seek(SeekFrom::Start(off))?;
    f.write_all(&new)?;
    f.sync_all()?;
    Ok(())
}
