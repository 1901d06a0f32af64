//! The credentials file of simulated devices: JSON lines as `docketd device add` prints them
//! (`{"id","role","secret"[,"stations"]}`), as scripts/demo.sh pairs them and docket-sim reads
//! them. Reads files; must not write them (the demo script owns them).

use std::path::Path;

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::Creds;

/// One line of the credentials file.
#[derive(Debug, Clone, Deserialize)]
pub struct CredsLine {
    pub id: String,
    pub role: String,
    pub secret: String,
    #[serde(default)]
    pub stations: Vec<String>,
}

impl CredsLine {
    /// The device's credentials (its stations are the box's business).
    pub fn creds(&self) -> Creds {
        Creds {
            id: self.id.clone(),
            role: self.role.clone(),
            secret: self.secret.clone(),
        }
    }
}

/// Every device line of `path` (blank lines and `#` comments skipped), each checked: a 64-hex
/// secret, an id that appears once (one client id = one connection).
pub fn read_creds(path: &Path) -> anyhow::Result<Vec<CredsLine>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the credentials file {}", path.display()))?;
    let mut out: Vec<CredsLine> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = format!("{}:{}", path.display(), n + 1);
        let d: CredsLine = serde_json::from_str(line).with_context(|| {
            format!("{at}: not a device line as `docketd device add` prints it")
        })?;
        let secret_ok = hex::decode(&d.secret).is_ok_and(|s| s.len() == 32);
        if !secret_ok {
            bail!("{at}: the secret of {} is not 64 hex characters", d.id);
        }
        if out.iter().any(|o| o.id == d.id) {
            bail!(
                "{at}: device {} appears twice (one client id = one connection)",
                d.id
            );
        }
        out.push(d);
    }
    Ok(out)
}
