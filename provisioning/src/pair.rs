//! `docket pair`: the QR code of a page's URL, the codes waiting, and a manager's approval.

use anyhow::{bail, Context};

use crate::lan::{b64, Addr, Link};
use crate::manager::{manager_creds, trust_of, ManagerArgs};
use crate::out;

/// `docket pair`'s flags (its help text is the `Pair` command's, in `crate::cli`).
#[derive(clap::Args)]
pub struct Pairing {
    /// The box: its address (HTTPS on 443), ADDRESS:PORT, or https://ADDRESS[:PORT].
    #[arg(long = "box")]
    pub host: String,
    /// The page the device opens: tablet, kds or expo.
    #[arg(long, default_value = "tablet")]
    pub page: String,
    #[command(flatten)]
    pub manager: ManagerArgs,
    /// The 6-digit code the device shows; without it, the pending codes are listed.
    #[arg(long)]
    pub code: Option<String>,
    /// The new device's id (e.g. tablet-3, kds-grill).
    #[arg(long)]
    pub id: Option<String>,
    /// tablet, station, expo, manager or integration.
    #[arg(long, default_value = "tablet")]
    pub role: String,
    /// The kitchen stations a screen shows (repeat).
    #[arg(long = "station")]
    pub stations: Vec<String>,
}

pub fn pair(p: Pairing, json: bool) -> anyhow::Result<()> {
    let Pairing {
        host,
        page,
        manager,
        code,
        id,
        role,
        stations,
    } = p;
    if !["tablet", "kds", "expo"].contains(&page.as_str()) {
        bail!("--page {page:?}: use tablet, kds or expo");
    }
    let addr = Addr::parse(&host)?;
    let trust = trust_of(&manager)?;
    let (manager_id, manager_password) = manager_creds(manager)?.context(
        "say who approves: --dir SITE_DIR (its manager), or --manager-id with --manager-secret",
    )?;
    let link = Link::new(addr, trust)?;
    let agent = link.secret("the manager's credentials")?;
    let url = link.url(&format!("/{page}"));
    let qr = qrcode::QrCode::new(url.as_bytes())?
        .render::<qrcode::render::unicode::Dense1x2>()
        .quiet_zone(true)
        .build();
    let auth = format!("Basic {}", b64(&format!("{manager_id}:{manager_password}")));
    let call = |r: ureq::Request,
                body: Option<serde_json::Value>|
     -> anyhow::Result<serde_json::Value> {
        let r = r.set("Authorization", &auth);
        let res = match body {
            Some(b) => r.send_json(b),
            None => r.call(),
        };
        match res {
                    Ok(r) => Ok(r.into_json()?),
                    Err(ureq::Error::Status(401, _)) | Err(ureq::Error::Status(403, _)) => bail!("the box refused the manager credentials: check --manager-id/--manager-secret (a device with role manager)"),
                    Err(ureq::Error::Status(c, r)) => bail!("the box answered HTTP {c}: {}", r.into_string().unwrap_or_default()),
                    Err(e) => bail!("{}", link.failure(&e)),
                }
    };
    match code {
        None => {
            let pending = call(agent.get(&link.url("/api/admin/pairings")), None)?;
            if json {
                println!("{}", serde_json::json!({"url": url, "pending": pending}));
            } else {
                println!("{qr}\nOn the tablet/screen, open {url} (scan the code above); it must trust this site's CA first (the box's landing page, http://{}/, installs it).\nIt shows a 6-digit code; then run: docket pair --box {host} --code CODE --id DEVICE-ID --role ROLE\nPending codes: {pending}", link.addr.host);
            }
        }
        Some(code) => {
            let id =
                id.context("--id is needed with --code (the new device's id, e.g. tablet-3)")?;
            let v = call(
                agent.post(&link.url(&format!("/api/admin/pairings/{code}/approve"))),
                Some(serde_json::json!({"id": id, "role": role, "stations": stations})),
            )?;
            out(
                json,
                serde_json::json!({"approved": true, "device": v}),
                &format!(
                    "{id} paired as {role}: the device connects by itself within a few seconds"
                ),
            );
        }
    }
    Ok(())
}
