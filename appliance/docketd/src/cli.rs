//! The `docketd device …` commands. They edit the store directly (WAL lets them run beside the
//! daemon, which notices within a fraction of a second).

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use docket_core::Role;
use serde_json::json;

use crate::config::Config;
use crate::devices::valid_device_id;
use crate::store::{self, DeviceRow};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

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
    if !valid_device_id(id) {
        bail!("device id {id:?} is not valid: use 1-64 of letters, digits, '.', '_' and '-' (not starting with \"docketd\")");
    }
    let Some(role) = Role::parse(role) else {
        bail!("role {role:?} is not one of tablet, station, expo, manager");
    };
    let stations: Vec<String> = stations
        .iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    match role {
        Role::Station if stations.is_empty() => {
            bail!("a station device needs --stations (e.g. --stations grill,fry)")
        }
        Role::Station => {
            if let Some(bad) = stations.iter().find(|s| !docket_core::menu::valid_name(s)) {
                bail!("station {bad:?} is not valid: use 1-32 of a-z, 0-9, '-' and '_'");
            }
        }
        _ if !stations.is_empty() => bail!("only station devices take --stations"),
        _ => {}
    }
    let row = DeviceRow {
        id: id.to_owned(),
        role,
        stations,
        secret: rand::random(),
        created_at: now_ms(),
        revoked_at: None,
    };
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
        println!(
            "{}",
            json!({"id": d.id, "role": d.role.as_str(), "stations": d.stations, "created_at": d.created_at,
                   "revoked_at": d.revoked_at})
        );
    }
    Ok(())
}
