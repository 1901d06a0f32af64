//! The places for connections not yet answered: [`super::listen::PENDING`] in all, and at most
//! [`PER_ADDRESS`] of them for one address. A connection waits for a place of its address first,
//! then for one of all; more from the same address wait their turn in their own tasks, holding
//! neither the accept loop nor the places other addresses need. So one machine on the Wi-Fi that
//! opens thousands of silent connections delays its own connections, not a tablet's login.
//!
//! Owns the per-address counts (an entry only while its address has connections waiting or
//! being answered).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections of one address answered at once. Logins are admitted one at a time anyway
/// ([`super::admit`]); this is enough for a screen's reconnect and a probe together, and for a
/// storm from one address (a NAT, the bench) to keep the admission desk busy.
pub const PER_ADDRESS: usize = 16;

pub struct Gate {
    all: Arc<Semaphore>,
    per_address: Mutex<HashMap<IpAddr, Arc<Semaphore>>>,
}

/// A connection's place among those not yet answered: given up when dropped.
pub struct Place {
    _all: OwnedSemaphorePermit,
    own: Option<OwnedSemaphorePermit>,
    address: IpAddr,
    sem: Arc<Semaphore>,
    gate: Arc<Gate>,
}

impl Gate {
    pub fn new(all: usize) -> Arc<Gate> {
        Arc::new(Gate {
            all: Arc::new(Semaphore::new(all)),
            per_address: Mutex::new(HashMap::new()),
        })
    }

    /// Waits for a place for a connection from `address`: one of its own, then one of all.
    pub async fn enter(self: &Arc<Gate>, address: IpAddr) -> Place {
        let sem = self
            .map()
            .entry(canonical(address))
            .or_insert_with(|| Arc::new(Semaphore::new(PER_ADDRESS)))
            .clone();
        // Neither semaphore is ever closed.
        let own = sem.clone().acquire_owned().await.expect("never closed");
        let all = self
            .all
            .clone()
            .acquire_owned()
            .await
            .expect("never closed");
        Place {
            _all: all,
            own: Some(own),
            address: canonical(address),
            sem,
            gate: self.clone(),
        }
    }

    /// Addresses with connections waiting or being answered.
    #[cfg(test)]
    fn addresses(&self) -> usize {
        self.map().len()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Arc<Semaphore>>> {
        self.per_address.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut map = self.gate.map();
        drop(self.own.take());
        // Nobody else holds or waits on this address's places (a waiter's future holds a
        // reference): forget the address.
        if Arc::strong_count(&self.sem) == 2 && self.sem.available_permits() == PER_ADDRESS {
            map.remove(&self.address);
        }
    }
}

/// An IPv4 client on a dual-stack socket is the same address as on an IPv4 one.
fn canonical(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_address_cannot_take_every_place() {
        let gate = Gate::new(20);
        let flood: IpAddr = "192.168.1.66".parse().unwrap();
        let mut held = Vec::new();
        for _ in 0..PER_ADDRESS {
            held.push(gate.enter(flood).await);
        }
        // The flood's next connection waits for one of its own places...
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter(flood).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        // ...while a tablet gets in at once.
        let tablet = tokio::time::timeout(
            Duration::from_secs(1),
            gate.enter("192.168.1.20".parse().unwrap()),
        )
        .await
        .expect("a place for another address");
        assert_eq!(gate.addresses(), 2);
        drop(tablet);
        assert_eq!(
            gate.addresses(),
            1,
            "an address is forgotten with its last place"
        );
        held.pop();
        let place = tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("the flood's waiting connection got a place")
            .unwrap();
        drop(place);
        drop(held);
        assert_eq!(gate.addresses(), 0);
    }

    #[tokio::test]
    async fn ipv4_mapped_addresses_are_the_ipv4_address() {
        let gate = Gate::new(100);
        let v4: IpAddr = "10.0.0.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        let mut held = Vec::new();
        for i in 0..PER_ADDRESS {
            held.push(gate.enter(if i % 2 == 0 { v4 } else { mapped }).await);
        }
        assert_eq!(gate.addresses(), 1);
        let more = tokio::time::timeout(Duration::from_millis(50), gate.enter(mapped)).await;
        assert!(
            more.is_err(),
            "the mapped address shares the IPv4 address's places"
        );
    }
}
