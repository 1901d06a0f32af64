//! The site directory on the laptop (`docket site init`): `site.toml`, the site's signing key,
//! and the bundles signed from them (with the site's TLS material, [`crate::sitetls`]). Every
//! file that holds a secret is written 0600 in a 0700 directory. Nothing here talks to a box.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use docket_core::bundle::{self, Bundle};
use serde::{Deserialize, Serialize};

use crate::sitetls;

/// `site.toml`.
#[derive(Serialize, Deserialize)]
pub struct SiteFile {
    pub site_id: String,
    pub name: String,
    /// The serial of the last bundle signed.
    pub serial: u64,
    pub postgres_url: Option<String>,
    pub redis_url: Option<String>,
    /// Manager devices every bundle carries (the box adds the ones it does not have).
    #[serde(default)]
    pub managers: Vec<bundle::BundleManager>,
    /// The uplink may go in plain text (`docket uplink set --allow-plaintext`); else the
    /// bundle refuses URLs without TLS.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub plaintext_uplink: bool,
}

/// The laptop's wall clock (Unix ms): bundle stamps, certificate ages, doctor's clock check.
pub use docket_trust::clock::wall_ms as now_ms;

pub fn read_site(dir: &Path) -> anyhow::Result<SiteFile> {
    let p = dir.join("site.toml");
    let t = std::fs::read_to_string(&p)
        .with_context(|| format!("cannot read {} (run `docket site init` first)", p.display()))?;
    toml::from_str(&t).with_context(|| format!("{} is not a valid site file", p.display()))
}

pub fn write_site(dir: &Path, s: &SiteFile) -> anyhow::Result<()> {
    let text = toml::to_string(s).context("cannot write the site file")?;
    write_secret(&dir.join("site.toml"), text.as_bytes())
}

/// Writes a file that holds secrets (a manager's secret, head office's passwords): readable by
/// its owner only (0600), also when an older version of it was readable by others.
pub fn write_secret(p: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_with_mode(p, bytes, 0o600)
}

/// Writes `bytes` to `p` with permissions `mode`, also when an older version of it had others
/// (a mode given to `open` applies only to a new file).
pub fn write_with_mode(p: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let w = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(p)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    w().with_context(|| format!("cannot write {}", p.display()))
}

/// Makes a directory of secrets: owner only (0700).
pub fn make_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

pub fn write_private(p: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(p)
        .with_context(|| format!("cannot create {}", p.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// The site CA; made now, and said so on stderr, for a site made before there were site CAs.
pub fn site_ca(dir: &Path, s: &SiteFile) -> anyhow::Result<docket_trust::ca::SiteCa> {
    let (ca, made) = sitetls::ensure_ca(dir, s)?;
    if made {
        eprintln!(
            "docket: made this site's CA (the site had none): {}, SHA-256 {}. Tablets and screens must trust it: docs/technician.md, \"Trust the site CA\"",
            dir.join(sitetls::CA_CERT).display(),
            sitetls::cert_info(&ca.cert_pem)?.fingerprint
        );
    }
    Ok(ca)
}

/// Bumps the serial, signs, writes DIR/site-bundle.json; returns (json, bundle). The bundle
/// carries the site CA, made now (and said so on stderr) for a site made before there was one.
pub fn new_bundle(dir: &Path) -> anyhow::Result<(String, Bundle)> {
    let mut s = read_site(dir)?;
    let ca = site_ca(dir, &s)?;
    let tls = sitetls::bundle_tls(&ca, sitetls::read_own(dir)?)?;
    let kp = dir.join("site.key");
    let key = bundle::parse_signing_key(
        &std::fs::read_to_string(&kp).with_context(|| format!("cannot read {}", kp.display()))?,
    )
    .with_context(|| format!("{} is not a site key", kp.display()))?;
    s.serial += 1;
    let b = Bundle {
        site_id: s.site_id.clone(),
        name: s.name.clone(),
        postgres_url: s.postgres_url.clone(),
        redis_url: s.redis_url.clone(),
        issued_at_ms: now_ms(),
        serial: s.serial,
        managers: s.managers.clone(),
        plaintext_uplink: s.plaintext_uplink,
        tls: Some(tls),
    };
    bundle::check_content(&b)?;
    let json = serde_json::to_string_pretty(&bundle::sign(b.clone(), &key))?;
    // The bundle carries the manager secrets, head office's passwords and the CA's key.
    write_secret(&dir.join("site-bundle.json"), json.as_bytes())?;
    write_site(dir, &s)?;
    Ok((json, b))
}

pub fn hex_of(b: &[u8]) -> String {
    hex::encode(b)
}
