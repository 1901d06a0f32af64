//! Who is connected: one entry per logged-in device, so that a second login of the same device
//! takes over from the first, and a revoked device is cut off at once.
//!
//! Owns the table and each session's "end now" signal; the sessions own their sockets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

/// Why a session was told to end from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Ending {
    /// Not told: it ended by itself.
    None = 0,
    /// The same device logged in again: it is online, so no will is published.
    TakenOver = 1,
    /// The device was revoked: its will (offline) is published.
    Revoked = 2,
    /// docketd is stopping.
    Shutdown = 3,
}

/// One session's entry: its signal and why it was given.
pub struct Handle {
    id: u64,
    cancel: CancellationToken,
    why: AtomicU8,
}

impl Handle {
    pub fn cancelled(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.cancel.cancelled()
    }

    pub fn ending(&self) -> Ending {
        match self.why.load(Relaxed) {
            1 => Ending::TakenOver,
            2 => Ending::Revoked,
            3 => Ending::Shutdown,
            _ => Ending::None,
        }
    }

    fn end(&self, why: Ending) {
        // The first reason wins.
        let _ = self
            .why
            .compare_exchange(Ending::None as u8, why as u8, Relaxed, Relaxed);
        self.cancel.cancel();
    }
}

#[derive(Default)]
pub struct Table {
    next: AtomicU64,
    devices: Mutex<HashMap<String, Arc<Handle>>>,
}

impl Table {
    /// Enters a newly admitted session of `device`, taking over from any earlier one.
    pub fn enter(&self, device: &str) -> Arc<Handle> {
        let h = Arc::new(Handle {
            id: self.next.fetch_add(1, Relaxed),
            cancel: CancellationToken::new(),
            why: AtomicU8::new(Ending::None as u8),
        });
        let old = self
            .devices
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(device.to_owned(), h.clone());
        if let Some(old) = old {
            old.end(Ending::TakenOver);
        }
        h
    }

    /// Removes a session that ended, unless a newer one of the device took its place.
    pub fn leave(&self, device: &str, h: &Handle) {
        let mut m = self.devices.lock().unwrap_or_else(|p| p.into_inner());
        if m.get(device).is_some_and(|cur| cur.id == h.id) {
            m.remove(device);
        }
    }

    /// Ends the device's session (if it has one) for `why`; true if there was one.
    pub fn cut(&self, device: &str, why: Ending) -> bool {
        let h = self
            .devices
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(device)
            .cloned();
        match h {
            Some(h) => {
                h.end(why);
                true
            }
            None => false,
        }
    }

    /// Ends every session (docketd is stopping).
    pub fn cut_all(&self) {
        let all: Vec<Arc<Handle>> = self
            .devices
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for h in all {
            h.end(Ending::Shutdown);
        }
    }

    #[cfg(test)]
    pub fn is_connected(&self, device: &str) -> bool {
        self.devices
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_login_takes_over_and_the_first_cannot_remove_it() {
        let t = Table::default();
        let a = t.enter("tab-1");
        let b = t.enter("tab-1");
        assert_eq!(a.ending(), Ending::TakenOver);
        assert!(a.cancel.is_cancelled() && !b.cancel.is_cancelled());
        t.leave("tab-1", &a);
        assert!(
            t.is_connected("tab-1"),
            "the old session removed the new one"
        );
        assert!(t.cut("tab-1", Ending::Revoked));
        assert_eq!(b.ending(), Ending::Revoked);
        // The first reason wins.
        t.cut_all();
        assert_eq!(b.ending(), Ending::Revoked);
        t.leave("tab-1", &b);
        assert!(!t.is_connected("tab-1"));
        assert!(!t.cut("tab-1", Ending::Revoked));
    }
}
