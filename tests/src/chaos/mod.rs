//! The fault campaign's restaurant: its devices (`device.rs`), each behind its own fault proxy,
//! the faults it suffers (`campaign.rs`) and the oracle (`oracle.rs`).
//!
//! Devices here behave like well-written tablets and screens that follow docs/protocol.md:
//! - a tablet places orders. Every command keeps its id until a reply arrives and is resent with
//!   the same id after each reconnect, and every few seconds while unanswered;
//! - a station screen keeps a [`View`](crate::View) (the retained board, then events by seq,
//!   `replay` on a gap, a fresh snapshot after each reconnect) and bumps its tickets after a
//!   short prep time; the expo completes ready orders the same way;
//! - every device reconnects after any loss, with a capped backoff.
//!
//! Each device connects to its own port (a [`crate::faults::FaultProxy`] in the campaign), so a
//! fault hits one device. What devices were told goes into shared [`Observations`]; [`check`]
//! compares them with the box's SQLite: the oracle of the campaign. This module owns the
//! restaurant's devices and proxies; it must not touch the box's store (the oracle only reads).

mod campaign;
mod device;
mod oracle;

pub use campaign::{bad_wifi, hang, kill_cycles, WIFI_FAULTS};
pub use device::run;
pub use oracle::{box_seq, check, check_pg, integrity, settle, unsettled, Report};

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use docket_core::wire::Reply;
use tokio::sync::watch;

use crate::{Creds, View};

/// What devices do: place and act (`Load`), only finish what they started (`Drain`), or quit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Load,
    Drain,
    Stop,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Tablet,
    Station(String),
    Expo,
}

/// What the devices were told (replies, views, reconnects), for the oracle to compare with the
/// box's store.
#[derive(Debug, Default)]
pub struct Observations {
    /// Commands created (each counted once, however often it was resent).
    pub sent: u64,
    /// Sends of a command that had been sent before (after a reconnect or a silence).
    pub resent: u64,
    /// (device, command id) → the first `ok: true` reply.
    pub acked: BTreeMap<(String, String), Reply>,
    /// (device, command id) → the first rejection.
    pub rejected: BTreeMap<(String, String), Reply>,
    /// Repeated replies that differ from the first one for the same command (must stay empty).
    pub inconsistent: Vec<String>,
    /// Connections re-established after a loss.
    pub reconnects: u64,
    /// Each screen's view as last updated, by device id.
    pub views: BTreeMap<String, View>,
    /// Unanswered commands per device.
    pub pending: BTreeMap<String, usize>,
    /// Screens that saw an event go backwards in an order's version (must stay empty).
    pub stale: Vec<String>,
}

pub type Shared = Arc<Mutex<Observations>>;

fn lock(l: &Shared) -> std::sync::MutexGuard<'_, Observations> {
    l.lock().unwrap_or_else(|p| p.into_inner())
}

/// One simulated device.
#[derive(Debug, Clone)]
pub struct DeviceSpec {
    pub creds: Creds,
    pub role: Role,
    /// Where it connects: its own proxy in the campaign.
    pub port: u16,
    /// Tablets: mean time between orders (exponential, so arrivals are Poisson).
    pub interval: Duration,
    /// MQTT keep-alive: how soon a silent connection is given up.
    pub keep_alive: Duration,
    pub seed: u64,
}

/// Stations of the demo menu: one screen each, plus the expo.
pub const STATIONS: [&str; 4] = ["grill", "fry", "cold", "bar"];

/// A restaurant's devices, each behind its own fault proxy to one box.
pub struct Restaurant {
    /// What its devices observed (the field keeps the name the tests use).
    pub ledger: Shared,
    phase: watch::Sender<Phase>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Device id → the proxy it connects through.
    pub proxies: BTreeMap<String, Arc<crate::faults::FaultProxy>>,
    /// Tablet ids, then screen ids.
    pub tablets: Vec<String>,
    pub screens: Vec<String>,
}

impl Restaurant {
    /// Pairs `tablets` tablets (an order every `interval` each, on average), a screen per
    /// station and an expo, and starts them, each through its own proxy to the box.
    pub async fn open(
        d: &crate::Daemon,
        tablets: usize,
        interval: Duration,
        keep_alive: Duration,
        seed: u64,
    ) -> anyhow::Result<Restaurant> {
        let upstream = std::net::SocketAddr::from((d.host, d.mqtt));
        let (phase, rx) = watch::channel(Phase::Load);
        let observed = Shared::default();
        let mut r = Restaurant {
            ledger: observed.clone(),
            phase,
            tasks: Vec::new(),
            proxies: BTreeMap::new(),
            tablets: Vec::new(),
            screens: Vec::new(),
        };
        let mut devices = Vec::new();
        for i in 1..=tablets {
            let id = format!("tablet-{i}");
            devices.push((d.add_device(&id, "tablet", &[])?, Role::Tablet));
            r.tablets.push(id);
        }
        for s in STATIONS {
            let id = format!("kds-{s}");
            devices.push((
                d.add_device(&id, "station", &[s])?,
                Role::Station(s.to_owned()),
            ));
            r.screens.push(id);
        }
        devices.push((d.add_device("expo-1", "expo", &[])?, Role::Expo));
        r.screens.push("expo-1".to_owned());
        for (n, (creds, role)) in devices.into_iter().enumerate() {
            let proxy = Arc::new(crate::faults::FaultProxy::start(upstream).await?);
            let spec = DeviceSpec {
                port: proxy.port(),
                creds: creds.clone(),
                role,
                interval,
                keep_alive,
                seed: seed.wrapping_mul(1000).wrapping_add(n as u64),
            };
            r.proxies.insert(creds.id.clone(), proxy);
            r.tasks
                .push(tokio::spawn(run(spec, rx.clone(), observed.clone())));
        }
        Ok(r)
    }

    pub fn proxy(&self, device: &str) -> &crate::faults::FaultProxy {
        &self.proxies[device]
    }

    /// Clears every fault, stops new commands, and waits until every command is answered and
    /// every screen is exact; returns how long that took.
    pub async fn heal_and_settle(&self, db: &Path, within: Duration) -> anyhow::Result<Duration> {
        for p in self.proxies.values() {
            p.set(crate::faults::Fault::Clean);
        }
        let _ = self.phase.send(Phase::Drain);
        settle(&self.ledger, db, self.screens.len(), within).await
    }

    /// Stops every device.
    pub async fn close(self) {
        let _ = self.phase.send(Phase::Stop);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }

    /// Commands acknowledged so far.
    pub fn acked(&self) -> usize {
        lock(&self.ledger).acked.len()
    }
}
