//! What the box is doing now, shared by the parts that know it and the parts that report it:
//! ready or not, the disk full or not, the engine's last heartbeat round trip, which devices are
//! online, and the uplink's state. `/healthz`, the appliance status topic, `/metrics`'s gauges,
//! the admin API and the systemd watchdog read it.
//!
//! Each field has its writers named on it; nothing here counts (that is [`crate::metrics`]).
//! Atomics, and a presence map behind a lock never held across an `.await`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};

#[derive(Default)]
pub struct Status {
    /// Retained state republished and every listener up (`daemon`; `/healthz`, `/metrics`).
    pub ready: AtomicBool,
    /// The last commit failed because the disk is full, cleared by the next commit (the
    /// engine's command path).
    pub storage_full: AtomicBool,
    /// Wall-clock start, Unix ms (the engine, at start).
    pub started_unix_ms: AtomicU64,
    /// Milliseconds since start of the last heartbeat round trip through the router (the
    /// engine's heartbeat; the watchdog reads it).
    pub heartbeat_ms: AtomicU64,
    /// How often the engine sends a heartbeat (0 = the default, 1 s): set by the watchdog from
    /// its period.
    pub heartbeat_every_ms: AtomicU64,
    /// The version of the menu the box serves, committed (the engine, at start and after each
    /// menu command's commit): the relays read the menu's versions from SQLite only when it moved.
    pub menu_version: AtomicU64,
    /// Who is online (the connection layer).
    pub presence: Presence,
    /// Each uplink target's state (its relay task).
    pub uplink: UplinkStatus,
    /// The kitchen printers: their setup (`daemon`), each station's printing (the print desk),
    /// each printer's condition (its task).
    pub printing: Arc<crate::print::Printing>,
}

/// Which paired devices are online: from their presence messages and from their connections,
/// both seen by the connection layer, its one writer (the admin API reads it). A device whose last accepted connection
/// closed is offline even when no will said so (a clean DISCONNECT sends none), and an "online"
/// that arrives after its connection already closed is not believed. Devices never seen by the
/// connection layer go by their messages alone.
#[derive(Default)]
pub struct Presence(RwLock<PresenceMap>);

#[derive(Default)]
struct PresenceMap {
    online: HashMap<String, bool>,
    /// Accepted connections open now, per device the connection layer has seen log in.
    conns: HashMap<String, usize>,
}

impl PresenceMap {
    fn count(&self) -> usize {
        self.online.values().filter(|v| **v).count()
    }
}

impl Presence {
    /// Records a device's presence message; returns how many devices are online now.
    pub fn set(&self, device: &str, online: bool) -> usize {
        let mut m = self.0.write().unwrap_or_else(|p| p.into_inner());
        let gone = m.conns.get(device) == Some(&0);
        m.online.insert(device.to_owned(), online && !gone);
        m.count()
    }

    /// The connection layer admitted a login of `device`.
    pub fn connected(&self, device: &str) {
        let mut m = self.0.write().unwrap_or_else(|p| p.into_inner());
        *m.conns.entry(device.to_owned()).or_default() += 1;
    }

    /// A connection of `device` that [`Presence::connected`] counted closed. When it was the
    /// last one, a tracked device goes offline; returns the online count when that changed it.
    pub fn disconnected(&self, device: &str) -> Option<usize> {
        let mut m = self.0.write().unwrap_or_else(|p| p.into_inner());
        let n = m.conns.get_mut(device)?;
        *n = n.saturating_sub(1);
        if *n > 0 {
            return None;
        }
        // Only devices the engine tracks (paired ones that said "online"): never grows the map.
        let was = m.online.get_mut(device)?;
        if !std::mem::replace(was, false) {
            return None;
        }
        Some(m.count())
    }

    /// The devices online now.
    pub fn online_devices(&self) -> Vec<String> {
        let m = self.0.read().unwrap_or_else(|p| p.into_inner());
        m.online
            .iter()
            .filter(|(_, on)| **on)
            .map(|(d, _)| d.clone())
            .collect()
    }

    pub fn is_online(&self, device: &str) -> bool {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .online
            .get(device)
            .copied()
            .unwrap_or(false)
    }
}

/// One uplink target's relay (PostgreSQL or Redis), as the relay task reports it.
#[derive(Default)]
pub struct TargetStatus {
    pub configured: AtomicBool,
    /// The last attempt succeeded.
    pub up: AtomicBool,
    /// Every event up to this seq is relayed.
    pub cursor: AtomicU64,
    /// Age (wall clock) of the oldest event not yet relayed, in seconds; 0 when caught up.
    pub lag_seconds: AtomicU64,
}

#[derive(Default)]
pub struct UplinkStatus {
    pub postgres: TargetStatus,
    pub redis: TargetStatus,
    /// The last menu from head office the box refused, and why (`uplink::menus_down`, its one
    /// writer; cleared when a later one is taken): a `/healthz` warning.
    pub central_menu_refused: std::sync::Mutex<Option<String>>,
}

impl UplinkStatus {
    /// What `/healthz` warns of the uplink: a refused menu from head office.
    pub fn warnings(&self) -> Vec<String> {
        let g = (self.central_menu_refused.lock()).unwrap_or_else(|p| p.into_inner());
        g.iter().cloned().collect()
    }

    /// Sets or clears the refused menu from head office.
    pub fn set_central_menu_refused(&self, why: Option<String>) {
        let mut g = (self.central_menu_refused.lock()).unwrap_or_else(|p| p.into_inner());
        *g = why;
    }
}

impl UplinkStatus {
    fn targets(&self) -> [(&'static str, &TargetStatus); 2] {
        [("postgres", &self.postgres), ("redis", &self.redis)]
    }

    /// Events committed here and not yet relayed to every configured target.
    pub fn lag_events(&self, seq: u64) -> u64 {
        self.targets()
            .iter()
            .filter(|(_, t)| t.configured.load(Relaxed))
            .map(|(_, t)| seq.saturating_sub(t.cursor.load(Relaxed)))
            .max()
            .unwrap_or(0)
    }

    /// `none` (no uplink configured), `down` (a target unreachable), `catching_up` (more than
    /// `backlog` events behind) or `ok`: the `uplink` of the appliance status.
    pub fn state(&self, seq: u64, backlog: u64) -> &'static str {
        let configured: Vec<_> = self
            .targets()
            .into_iter()
            .filter(|(_, t)| t.configured.load(Relaxed))
            .collect();
        if configured.is_empty() {
            "none"
        } else if configured.iter().any(|(_, t)| !t.up.load(Relaxed)) {
            "down"
        } else if self.lag_events(seq) > backlog {
            "catching_up"
        } else {
            "ok"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_follows_connections_as_well_as_messages() {
        let p = Presence::default();
        // Messages alone (a device the connection layer never counted).
        assert_eq!(p.set("tab-1", true), 1);
        assert!(p.is_online("tab-1"));
        // Counted: two connections (a takeover), the older closes: still online.
        p.connected("tab-1");
        p.connected("tab-1");
        assert_eq!(p.disconnected("tab-1"), None);
        assert!(p.is_online("tab-1"));
        // The last closes without a will (clean DISCONNECT): offline, and the count says so.
        assert_eq!(p.disconnected("tab-1"), Some(0));
        assert!(!p.is_online("tab-1"));
        // An "online" processed after its connection closed is not believed.
        assert_eq!(p.set("tab-1", true), 0);
        assert!(!p.is_online("tab-1"));
        // Back: connected, then its "online".
        p.connected("tab-1");
        assert_eq!(p.set("tab-1", true), 1);
        // A device the engine does not track is never added by the connection layer.
        p.connected("stranger");
        assert_eq!(p.disconnected("stranger"), None);
        assert!(!p.is_online("stranger"));
    }

    #[test]
    fn presence() {
        let p = Presence::default();
        assert!(!p.is_online("a"));
        assert_eq!(p.set("a", true), 1);
        assert_eq!(p.set("b", true), 2);
        assert_eq!(p.set("a", false), 1);
        assert!(!p.is_online("a") && p.is_online("b"));
    }

    #[test]
    fn uplink_state_follows_its_targets() {
        let u = UplinkStatus::default();
        assert_eq!(u.state(10, 5), "none");
        u.postgres.configured.store(true, Relaxed);
        assert_eq!(u.state(10, 5), "down");
        u.postgres.up.store(true, Relaxed);
        assert_eq!((u.state(10, 5), u.lag_events(10)), ("catching_up", 10));
        u.postgres.cursor.store(8, Relaxed);
        assert_eq!((u.state(10, 5), u.lag_events(10)), ("ok", 2));
    }
}
