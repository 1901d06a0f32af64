//! The `docketd device …` commands. They edit the store directly (WAL lets them run beside the
//! daemon, which notices within a fraction of a second).
//!
//! Owns no state. Must not validate devices itself (that is `devices::new_device`, shared with
//! the admin API) nor print a secret except to whoever is adding the device right here.

use anyhow::Context;
use serde_json::json;

use crate::config::Config;
use crate::devices::{new_device, DeviceInfo};
use crate::store::pairing::{self, now_ms};
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
