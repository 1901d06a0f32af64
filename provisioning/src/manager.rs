//! Who acts as a manager on the box (`pair` approves with it, `doctor` logs in with it) and
//! what the box's certificate is checked against: the flags, the site directory's manager, the
//! site CA. Sends nothing itself.

use std::path::PathBuf;

use anyhow::Context;

use crate::{lan, sitedir};

/// Who acts as a manager on the box (`pair` approves with it, `doctor` logs in with it).
#[derive(clap::Args)]
pub struct ManagerArgs {
    /// The site directory: its manager device (made by `site init`, carried to the box by the
    /// site bundle) is used unless --manager-id/--manager-secret are given.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The site CA's certificate (PEM) the box's certificate must come from, when there is no
    /// --dir (whose site-ca.pem is used).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Another manager device's id (instead of the site directory's).
    #[arg(long, env = "DOCKET_MANAGER_ID", requires = "manager_secret")]
    manager_id: Option<String>,
    /// That manager device's secret (hex).
    #[arg(long, env = "DOCKET_MANAGER_SECRET", hide_env_values = true)]
    manager_secret: Option<String>,
}

/// What the box's certificate is checked against: --ca, else --dir's site CA, else nothing.
pub fn trust_of(m: &ManagerArgs) -> anyhow::Result<lan::Trust> {
    match (&m.ca, &m.dir) {
        (Some(ca), _) => lan::Trust::of_file(ca),
        (None, Some(dir)) => lan::Trust::of_site(dir),
        (None, None) => Ok(lan::Trust::unchecked()),
    }
}

/// A manager device's id and login password (its login key as hex, `docket_core::keys`; the
/// secret itself never goes on the wire): from the flags, else the site directory's first manager.
pub fn manager_creds(m: ManagerArgs) -> anyhow::Result<Option<(String, String)>> {
    let (id, secret) = match (m.manager_id, m.manager_secret, m.dir) {
        (Some(i), Some(s), _) => (i, s),
        (None, None, Some(dir)) => {
            let site = sitedir::read_site(&dir)?;
            let m = site.managers.into_iter().next().with_context(|| {
                format!("{} has no manager device (made before `site init` created one): pass --manager-id/--manager-secret", dir.join("site.toml").display())
            })?;
            (m.id, m.secret)
        }
        _ => return Ok(None),
    };
    let bytes: [u8; 32] = hex::decode(secret.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .with_context(|| format!("the secret of manager {id} is not 64 hex characters"))?;
    Ok(Some((id, docket_core::keys::password(&bytes))))
}
