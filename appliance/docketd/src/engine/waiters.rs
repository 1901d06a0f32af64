//! Replies awaited in the process. The local integration API and head office's downlink hand a
//! device's signed command to the engine's queue exactly as a connection session does, and wait
//! for its reply here rather than on the device's reply topic: the same checks, the same
//! exactly-once rule, the same group commit, and the reply only once it is committed.
//!
//! Owns the waiting senders only; must not judge or decide anything.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

use tokio::sync::oneshot;

type Senders = Vec<oneshot::Sender<Vec<u8>>>;

/// Who waits for which reply: by device, then command id.
#[derive(Default)]
pub struct Waiters {
    /// How many (device, id) pairs wait: the engine skips the lock when none does.
    pending: AtomicUsize,
    map: Mutex<HashMap<String, HashMap<String, Senders>>>,
}

impl Waiters {
    /// Waits for the reply of `device`'s command `id` (call before the command is queued).
    pub fn wait(&self, device: &str, id: &str) -> oneshot::Receiver<Vec<u8>> {
        let (tx, rx) = oneshot::channel();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let ids = map.entry(device.to_owned()).or_default();
        let senders = ids.entry(id.to_owned()).or_default();
        if senders.is_empty() {
            self.pending.fetch_add(1, Relaxed);
        }
        senders.push(tx);
        rx
    }

    /// Stops waiting (a caller that gave up): its senders are dropped.
    pub fn forget(&self, device: &str, id: &str) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ids) = map.get_mut(device) {
            if ids.remove(id).is_some() {
                self.pending.fetch_sub(1, Relaxed);
            }
            if ids.is_empty() {
                map.remove(device);
            }
        }
    }

    /// Hands `reply` (an encoded [`docket_core::wire::Reply`] to `device`) to whoever waits for
    /// it. Cheap when nobody waits.
    pub fn deliver(&self, device: &str, reply: &[u8]) {
        if self.pending.load(Relaxed) == 0 {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let Some(ids) = map.get_mut(device) else {
            return;
        };
        let Some(id) = reply_command(reply) else {
            return;
        };
        if let Some(senders) = ids.remove(&id) {
            self.pending.fetch_sub(1, Relaxed);
            for s in senders {
                let _ = s.send(reply.to_vec());
            }
        }
        if ids.is_empty() {
            map.remove(device);
        }
    }
}

/// The command id a reply answers, read without decoding the rest.
fn reply_command(reply: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct CommandOnly {
        command: String,
    }
    docket_core::wire::decode::<CommandOnly>(reply)
        .ok()
        .map(|c| c.command)
}

#[cfg(test)]
mod tests {
    use super::*;
    use docket_core::wire::{encode, Reply};
    use docket_core::{Code, Rejection};

    #[test]
    fn a_reply_reaches_each_waiter_of_its_device_and_id_only() {
        let w = Waiters::default();
        let mut a = w.wait("till", "c1");
        let mut b = w.wait("till", "c1");
        let mut other_id = w.wait("till", "c2");
        let mut other_device = w.wait("hq", "c1");
        let reply = encode(&Reply::rejected(
            "c1",
            &Rejection::new(Code::Forbidden, "no"),
        ))
        .unwrap();
        w.deliver("till", &reply);
        assert_eq!(a.try_recv().unwrap(), reply);
        assert_eq!(b.try_recv().unwrap(), reply);
        assert!(other_id.try_recv().is_err());
        assert!(other_device.try_recv().is_err());
        assert_eq!(w.pending.load(Relaxed), 2);
        w.forget("till", "c2");
        w.forget("hq", "c1");
        assert_eq!(w.pending.load(Relaxed), 0);
        assert!(w.map.lock().unwrap().is_empty());
    }

    #[test]
    fn garbage_and_unknown_devices_are_ignored() {
        let w = Waiters::default();
        let mut a = w.wait("till", "c1");
        w.deliver("till", b"\xff\x00 not cbor");
        w.deliver("nobody", b"");
        assert!(a.try_recv().is_err());
        assert_eq!(w.pending.load(Relaxed), 1);
    }
}
