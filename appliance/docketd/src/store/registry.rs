//! The device registry: who may connect to the broker and sign commands.
//!
//! Owns an in-memory copy of the `devices` table, refreshed whenever SQLite says another
//! connection changed the database (`PRAGMA data_version`), so a device added or revoked by the
//! CLI while docketd runs takes effect at once. Used by the broker's login check, the engine's
//! MAC check and the admin API's login. Also the one place that validates a new device
//! ([`new_device`]) and shapes what may be shown of one ([`DeviceInfo`]: never the secret).
//! Must not write.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use docket_core::keys::{DeviceKeys, MacKey};
use docket_core::{Actor, Role};
use rusqlite::Connection;
use serde::Serialize;

use crate::metrics::Metrics;
use crate::store::{self, DeviceRow, StoreError};

pub use docket_core::wire::valid_device_id;

/// Why a requested device is not acceptable (messages name no CLI flag: the API shows them too).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidDevice {
    #[error("device id {0:?} is not valid: use 1-64 of letters, digits, '.', '_' and '-' (not starting with \"docketd\")")]
    Id(String),
    #[error("role {0:?} is not one of tablet, station, expo, manager, integration")]
    Role(String),
    #[error("a station device needs stations (e.g. grill,fry)")]
    StationsMissing,
    #[error("station {0:?} is not valid: use 1-32 of a-z, 0-9, '-' and '_'")]
    Station(String),
    #[error("only station devices take stations")]
    StationsNotAllowed,
}

/// Validates a requested device and gives it a fresh random 256-bit secret. Shared by
/// `docketd device add`, pairing approval by CLI and by the admin API.
pub fn new_device(
    id: &str,
    role: &str,
    stations: &[String],
    now_ms: u64,
) -> Result<DeviceRow, InvalidDevice> {
    if !valid_device_id(id) {
        return Err(InvalidDevice::Id(id.to_owned()));
    }
    let Some(role) = Role::parse(role) else {
        return Err(InvalidDevice::Role(role.to_owned()));
    };
    let stations: Vec<String> = stations
        .iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    match role {
        Role::Station if stations.is_empty() => return Err(InvalidDevice::StationsMissing),
        Role::Station => {
            if let Some(bad) = stations.iter().find(|s| !docket_core::menu::valid_name(s)) {
                return Err(InvalidDevice::Station(bad.clone()));
            }
        }
        _ if !stations.is_empty() => return Err(InvalidDevice::StationsNotAllowed),
        _ => {}
    }
    Ok(DeviceRow {
        id: id.to_owned(),
        role,
        stations,
        secret: rand::random(),
        created_at: now_ms,
        revoked_at: None,
    })
}

/// What may be shown of a device (CLI lists, admin API): everything but the secret.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DeviceInfo {
    pub id: String,
    pub role: &'static str,
    pub stations: Vec<String>,
    pub created_at: u64,
    pub revoked_at: Option<u64>,
    /// Presence, where the caller knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online: Option<bool>,
}

impl From<&DeviceRow> for DeviceInfo {
    fn from(d: &DeviceRow) -> Self {
        DeviceInfo {
            id: d.id.clone(),
            role: d.role.as_str(),
            stations: d.stations.clone(),
            created_at: d.created_at,
            revoked_at: d.revoked_at,
            online: None,
        }
    }
}

struct Cache {
    data_version: i64,
    generation: i64,
    devices: HashMap<String, DeviceRow>,
    /// Each device's keys, derived once per reload (never the secret itself on a hot path).
    keys: HashMap<String, Keys>,
}

/// What a device's secret gives the box: the password it logs in with and the key its commands
/// are MAC'd with.
struct Keys {
    password: String,
    mac: MacKey,
}

impl Keys {
    fn of(secret: &[u8; 32]) -> Self {
        let k = DeviceKeys::derive(secret);
        Keys {
            password: k.login.password(),
            mac: k.mac,
        }
    }
}

pub struct DeviceRegistry {
    conn: Mutex<Connection>,
    cache: RwLock<Cache>,
    /// Devices revoked (or deleted) since the last [`DeviceRegistry::take_revoked`], whichever
    /// caller's refresh noticed it: the device watcher cuts their connections.
    revoked: Mutex<Vec<String>>,
    metrics: Arc<Metrics>,
}

/// The outcome of an MQTT login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    Ok,
    /// Unknown device, wrong secret, or a client id that is not the username.
    BadCredentials,
    /// The right secret of a revoked device.
    Revoked,
}

/// The outcome of looking a device up for a command.
pub enum Lookup {
    Active(Actor, MacKey),
    Revoked,
    Unknown,
}

impl DeviceRegistry {
    pub fn open(db: &Path, metrics: Arc<Metrics>) -> Result<Self, StoreError> {
        let conn = store::connect(db)?;
        let reg = DeviceRegistry {
            conn: Mutex::new(conn),
            cache: RwLock::new(Cache {
                data_version: -1,
                generation: -1,
                devices: HashMap::new(),
                keys: HashMap::new(),
            }),
            revoked: Mutex::new(Vec::new()),
            metrics,
        };
        reg.refresh()?;
        Ok(reg)
    }

    /// Reloads the table if another connection changed the database since last time. Returns the
    /// ids that are newly revoked (or deleted) by this refresh.
    pub fn refresh(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let version: i64 = conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
        let (seen_version, seen_generation) = {
            let c = self.cache.read().unwrap_or_else(|p| p.into_inner());
            (c.data_version, c.generation)
        };
        if seen_version == version {
            return Ok(Vec::new());
        }
        // The engine's commits change data_version too; reload only when devices changed.
        let generation = store::devices::generation(&conn)?;
        if generation == seen_generation {
            self.cache
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .data_version = version;
            return Ok(Vec::new());
        }
        let rows = store::devices::all(&conn)?;
        drop(conn);
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        cache.generation = generation;
        let was_active: HashSet<String> = cache
            .devices
            .values()
            .filter(|d| d.revoked_at.is_none())
            .map(|d| d.id.clone())
            .collect();
        cache.keys = rows
            .iter()
            .map(|d| (d.id.clone(), Keys::of(&d.secret)))
            .collect();
        cache.devices = rows.into_iter().map(|d| (d.id.clone(), d)).collect();
        cache.data_version = version;
        let cut: Vec<String> = was_active
            .into_iter()
            .filter(|id| cache.devices.get(id).is_none_or(|d| d.revoked_at.is_some()))
            .collect();
        self.metrics.set_devices(
            cache
                .devices
                .values()
                .filter(|d| d.revoked_at.is_none())
                .count(),
        );
        drop(cache);
        if !cut.is_empty() {
            self.revoked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(cut.iter().cloned());
        }
        Ok(cut)
    }

    /// Devices revoked since the last call, noticed by any refresh (a login, a command's MAC
    /// check, the admin API, the watcher): none is missed because someone else looked first.
    pub fn take_revoked(&self) -> Vec<String> {
        std::mem::take(&mut *self.revoked.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn get(&self, id: &str) -> Option<DeviceRow> {
        self.get_with(id, |d, _| d.clone())
    }

    /// Refreshes, then looks `id` up with its keys.
    fn get_with<T>(&self, id: &str, f: impl FnOnce(&DeviceRow, &Keys) -> T) -> Option<T> {
        if let Err(e) = self.refresh() {
            tracing::warn!(error = ?e, "device registry refresh failed; using the cached table");
        }
        let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
        Some(f(cache.devices.get(id)?, cache.keys.get(id)?))
    }

    /// A device by id for a command: its actor and MAC key when it is paired and not revoked.
    pub fn lookup(&self, id: &str) -> Lookup {
        let found = self.get_with(id, |d, k| {
            if d.revoked_at.is_some() {
                return Lookup::Revoked;
            }
            Lookup::Active(actor(d), k.mac)
        });
        found.unwrap_or(Lookup::Unknown)
    }

    /// Whether `password` is the device's login key as hex (constant time), and if so whether the
    /// device is revoked; `None` for an unknown device or a wrong password.
    fn password_ok(&self, id: &str, password: &str) -> Option<DeviceRow> {
        self.get_with(id, |d, k| {
            ct_eq(password.as_bytes(), k.password.as_bytes()).then(|| d.clone())
        })
        .flatten()
    }

    /// An MQTT login: client id = username = device id, password = the device's login key as hex
    /// (`docket_core::keys`). A wrong password, an unknown device and a client id that is not the
    /// username all read as bad credentials (nothing tells which ids exist); the right password
    /// of a revoked device reads as revoked, so that the device can say "removed" rather than
    /// "wrong password".
    pub fn login(&self, client_id: &str, username: &str, password: &str) -> Login {
        let verdict = if client_id != username {
            Login::BadCredentials
        } else {
            match self.password_ok(username, password) {
                Some(d) if d.revoked_at.is_some() => Login::Revoked,
                Some(_) => Login::Ok,
                None => Login::BadCredentials,
            }
        };
        if verdict != Login::Ok {
            self.metrics.auth_failure();
            tracing::info!(client_id = %clip(client_id), username = %clip(username), verdict = ?verdict, "MQTT login refused");
        }
        verdict
    }

    /// The admin API's login (HTTP Basic): a paired, unrevoked device id and its login key as
    /// hex. Compared in constant time; no failure says which part was wrong.
    pub fn verify(&self, id: &str, password: &str) -> Option<Actor> {
        let d = self.password_ok(id, password)?;
        d.revoked_at.is_none().then(|| actor(&d))
    }

    /// A device asking about itself (`GET /api/device`): the row when the password is right,
    /// `Err(true)` when it is right but the device is revoked, `Err(false)` otherwise.
    pub fn check(&self, id: &str, password: &str) -> Result<DeviceRow, bool> {
        match self.password_ok(id, password) {
            Some(d) if d.revoked_at.is_some() => Err(true),
            Some(d) => Ok(d),
            None => Err(false),
        }
    }

    pub fn role_of(&self, id: &str) -> Option<Role> {
        self.get(id).map(|d| d.role)
    }
}

/// What a device may do, from its row.
fn actor(d: &DeviceRow) -> Actor {
    Actor {
        device: d.id.clone(),
        role: d.role,
        stations: d.stations.clone(),
    }
}

fn clip(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Constant-time equality (length is not secret: secrets have a fixed length).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ids() {
        assert!(valid_device_id("tablet-1"));
        assert!(valid_device_id("KDS.grill_2"));
        for bad in [
            "",
            "a/b",
            "a+b",
            "#",
            "docketd-probe",
            "sp ace",
            &"x".repeat(65),
        ] {
            assert!(!valid_device_id(bad), "{bad:?} accepted");
        }
    }

    #[test]
    fn new_devices_are_validated() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let d = new_device("kds-1", "station", &s(&["grill", " fry "]), 7).unwrap();
        assert_eq!(
            (d.role, d.stations.clone(), d.created_at),
            (Role::Station, s(&["grill", "fry"]), 7)
        );
        assert_ne!(
            d.secret,
            new_device("kds-1", "station", &s(&["grill"]), 7)
                .unwrap()
                .secret
        );
        assert!(new_device("t", "tablet", &s(&["", " "]), 0).is_ok());
        assert_eq!(
            new_device("a/b", "tablet", &[], 0),
            Err(InvalidDevice::Id("a/b".into()))
        );
        assert_eq!(
            new_device("x", "chef", &[], 0),
            Err(InvalidDevice::Role("chef".into()))
        );
        assert_eq!(
            new_device("x", "station", &[], 0),
            Err(InvalidDevice::StationsMissing)
        );
        assert_eq!(
            new_device("x", "station", &s(&["Grill"]), 0),
            Err(InvalidDevice::Station("Grill".into()))
        );
        assert_eq!(
            new_device("x", "tablet", &s(&["grill"]), 0),
            Err(InvalidDevice::StationsNotAllowed)
        );
        let json = serde_json::to_value(DeviceInfo::from(&d)).unwrap();
        assert!(json.get("secret").is_none() && json.get("online").is_none());
    }

    #[test]
    fn constant_time_eq() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
    }
}
