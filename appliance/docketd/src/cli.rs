//! The `docketd device …` commands. They edit the store directly (WAL lets them run beside the
//! daemon, which notices within a fraction of a second).
//!
//! Owns no state. Must not validate devices itself (that is `devices::new_device`, shared with
//! the admin API) nor print a secret except to whoever is adding the device right here.

use anyhow::Context;
use serde_json::json;

use crate::config::Config;
use crate::store::pairing::{self, now_ms};
use crate::store::registry::{new_device, DeviceInfo};
use crate::store::{self, DeviceRow};

fn open(cfg: &Config) -> anyhow::Result<rusqlite::Connection> {
    let mut conn = store::connect(&cfg.db_path())
        .with_context(|| format!("opening {}", cfg.db_path().display()))?;
    store::migrate(&mut conn, &cfg.site_id)?;
    Ok(conn)
}

/// Validates and stores a new device; returns the row (with its fresh secret).
pub fn add_device(
    cfg: &Config,
    id: &str,
    role: &str,
    stations: &[String],
) -> anyhow::Result<DeviceRow> {
    let row = new_device(id, role, stations, now_ms())?;
    store::devices::add(&open(cfg)?, &row)?;
    Ok(row)
}

pub fn device_add(cfg: &Config, id: &str, role: &str, stations: &[String]) -> anyhow::Result<()> {
    let row = add_device(cfg, id, role, stations)?;
    let mut line =
        json!({"id": row.id, "role": row.role.as_str(), "secret": hex::encode(row.secret)});
    if !row.stations.is_empty() {
        line["stations"] = json!(row.stations);
    }
    println!("{line}");
    Ok(())
}

/// One device to import: the same fields as `device add`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportLine {
    id: String,
    role: String,
    #[serde(default)]
    stations: Vec<String>,
}

/// At most this many devices per import (far above any restaurant; bounds a mistaken input).
pub const IMPORT_MAX: usize = 100_000;

/// Adds many devices at once from JSON lines (`{"id":…,"role":…,"stations":[…]}`; blank lines
/// ignored), all or nothing: a malformed, invalid or duplicate line (in the input or already in
/// the store) adds none and names the line. Prints one JSON line per device, as `add` does.
pub fn device_import(cfg: &Config, input: impl std::io::BufRead) -> anyhow::Result<()> {
    let now = now_ms();
    let mut rows = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for (i, text) in input.lines().enumerate() {
        let n = i + 1;
        let text = text.with_context(|| format!("reading line {n}"))?;
        if text.trim().is_empty() {
            continue;
        }
        if rows.len() == IMPORT_MAX {
            anyhow::bail!("line {n}: more than {IMPORT_MAX} devices in one import");
        }
        let l: ImportLine = serde_json::from_str(&text).with_context(|| {
            format!("line {n}: not a device (want {{\"id\",\"role\",\"stations\"}})")
        })?;
        let row =
            new_device(&l.id, &l.role, &l.stations, now).with_context(|| format!("line {n}"))?;
        if !ids.insert(row.id.clone()) {
            anyhow::bail!("line {n}: device {} appears twice", row.id);
        }
        rows.push(row);
    }
    let mut conn = open(cfg)?;
    let tx = conn.transaction()?;
    for (i, row) in rows.iter().enumerate() {
        store::devices::add(&tx, row).with_context(|| format!("device {} of the import", i + 1))?;
    }
    tx.commit()?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for row in &rows {
        let mut line =
            json!({"id": row.id, "role": row.role.as_str(), "secret": hex::encode(row.secret)});
        if !row.stations.is_empty() {
            line["stations"] = json!(row.stations);
        }
        std::io::Write::write_all(&mut out, format!("{line}\n").as_bytes())?;
    }
    std::io::Write::flush(&mut out)?;
    Ok(())
}

pub fn device_revoke(cfg: &Config, id: &str) -> anyhow::Result<()> {
    store::devices::revoke(&open(cfg)?, id, now_ms())?;
    println!("{}", json!({"id": id, "revoked": true}));
    Ok(())
}

pub fn device_list(cfg: &Config) -> anyhow::Result<()> {
    for d in store::devices::all(&open(cfg)?)? {
        println!("{}", serde_json::to_string(&DeviceInfo::from(&d))?);
    }
    Ok(())
}

/// Approves a pairing request. Prints the device without its secret: the secret goes only to
/// the device that asked, on its next poll.
pub fn device_approve(
    cfg: &Config,
    code: &str,
    id: &str,
    role: &str,
    stations: &[String],
) -> anyhow::Result<()> {
    let now = now_ms();
    let row = new_device(id, role, stations, now)?;
    pairing::approve(&mut open(cfg)?, code.trim(), &row, now)?;
    println!("{}", serde_json::to_string(&DeviceInfo::from(&row))?);
    Ok(())
}

pub fn device_reject(cfg: &Config, code: &str) -> anyhow::Result<()> {
    pairing::reject(&mut open(cfg)?, code.trim(), now_ms())?;
    println!("{}", json!({"code": code.trim(), "status": "rejected"}));
    Ok(())
}

/// Pending pairing requests as JSON lines, oldest first.
pub fn device_pairings(cfg: &Config) -> anyhow::Result<()> {
    let now = now_ms();
    for p in pairing::pending(&open(cfg)?, now)? {
        println!(
            "{}",
            json!({"code": p.code, "label": p.label, "created_at": p.created_at,
                   "age_s": now.saturating_sub(p.created_at) / 1000,
                   "expires_in_s": p.expires_at.saturating_sub(now) / 1000})
        );
    }
    Ok(())
}

// ---- uplink (head office) ----

fn admin_url(cfg: &Config, url: Option<&str>) -> anyhow::Result<crate::config::SecretUrl> {
    match url {
        Some(u) => Ok(crate::config::SecretUrl::new(u)),
        None => {
            cfg.uplink.postgres_url.clone().context(
                "no PostgreSQL URL: set [uplink] postgres_url in the config, or pass --url",
            )
        }
    }
}

/// `docketd uplink migrate`: applies the cloud schema's pending migrations (on a new schema
/// with `--partitions`, its per-site tables partitioned by site).
pub async fn uplink_migrate(
    cfg: &Config,
    url: Option<&str>,
    partitions: Option<u32>,
) -> anyhow::Result<()> {
    let url = admin_url(cfg, url)?;
    let mut client = docket_cloud::connect(&url, cfg.uplink.timeouts())
        .await
        .with_context(|| format!("connecting to {}", url.redacted()))?;
    let applied = match partitions {
        Some(n) => docket_cloud::migrate_partitioned(&mut client, n).await?,
        None => docket_cloud::migrate(&mut client).await?,
    };
    let all: Vec<&str> = docket_cloud::MIGRATIONS.iter().map(|(n, _)| *n).collect();
    let partitions = docket_cloud::partitions(&client).await?;
    println!(
        "{}",
        json!({"applied": applied, "schema": all, "partitions": partitions})
    );
    Ok(())
}

/// `docketd uplink site-role`: creates or re-keys `docket_site_<site>` (password on stdin).
pub async fn uplink_site_role(
    cfg: &Config,
    url: Option<&str>,
    site: Option<&str>,
) -> anyhow::Result<()> {
    let url = admin_url(cfg, url)?;
    let site = site.unwrap_or(&cfg.site_id);
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .context("reading the password from stdin")?;
    let password = password.trim_end_matches(['\n', '\r']);
    let client = docket_cloud::connect(&url, cfg.uplink.timeouts())
        .await
        .with_context(|| format!("connecting to {}", url.redacted()))?;
    let role = docket_cloud::create_site_role(&client, site, password)
        .await
        .context("creating the site role (run `docketd uplink migrate` first)")?;
    println!("{}", json!({"site": site, "role": role}));
    Ok(())
}

/// `docketd uplink check`: connects to what the config names and says what it sees.
pub async fn uplink_check(cfg: &Config) -> anyhow::Result<()> {
    if !cfg.uplink.configured() {
        anyhow::bail!("no uplink configured ([uplink] postgres_url / redis_url)");
    }
    let mut ok = true;
    if let Some(url) = &cfg.uplink.postgres_url {
        match docket_cloud::connect(url, cfg.uplink.timeouts()).await {
            Ok(c) => {
                let r = c
                    .query_opt(
                        "SELECT last_seq FROM docket.sites WHERE site_id = $1",
                        &[&cfg.site_id],
                    )
                    .await;
                match r {
                    Ok(row) => println!(
                        "{}",
                        json!({"postgres": url.redacted(), "ok": true,
                               "last_seq": row.map(|r| r.get::<_, i64>(0)).unwrap_or(0)})
                    ),
                    Err(e) => {
                        ok = false;
                        println!(
                            "{}",
                            json!({"postgres": url.redacted(), "ok": false, "error": e.to_string()})
                        );
                    }
                }
            }
            Err(e) => {
                ok = false;
                println!(
                    "{}",
                    json!({"postgres": url.redacted(), "ok": false, "error": e.to_string()})
                );
            }
        }
    }
    if let Some(url) = &cfg.uplink.redis_url {
        let r = docket_cloud::redis::probe(url, cfg.uplink.timeouts()).await;
        match r {
            Ok(_) => println!("{}", json!({"redis": url.redacted(), "ok": true})),
            Err(e) => {
                ok = false;
                println!(
                    "{}",
                    json!({"redis": url.redacted(), "ok": false, "error": e.to_string()})
                );
            }
        }
    }
    if !ok {
        anyhow::bail!("an uplink target is not reachable or not set up");
    }
    Ok(())
}

/// `docketd device login-key`: the login key of the secret on `input`, as 64 hex characters.
pub fn device_login_key(mut input: impl std::io::Read) -> anyhow::Result<()> {
    let mut text = String::new();
    input
        .read_to_string(&mut text)
        .context("reading the secret from stdin")?;
    let secret: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .context("stdin is not a device secret (64 hex characters)")?;
    println!("{}", docket_core::keys::password(&secret));
    Ok(())
}
