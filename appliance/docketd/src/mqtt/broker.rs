//! The embedded MQTT router: rumqttd's `Router`, used as published, sized for a 1 GB box.
//!
//! docketd spawns the router itself (no rumqttd `Server`, no rumqttd listeners): the connection
//! layer ([`crate::mqtt::conn`]) owns every socket and talks to the router through local links built
//! here. rumqttd keeps everything in memory and has no shutdown API; SQLite stays the truth.
//! Must not decide anything about orders or devices.

use std::sync::Arc;

use rumqttd::local::{LinkBuilder, LinkError, LinkRx, LinkTx};
use rumqttd::{Notification, Router, RouterConfig};

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("the router refused the link {client_id:?}")]
    Link {
        client_id: String,
        #[source]
        source: Box<LinkError>,
    },
}

/// Filters that exist from the broker's start. rumqttd drops a local link that publishes to a
/// topic no filter matches, so without these the engine would have to subscribe to its own
/// replies and events and receive each of them back (4 of the ~12 deliveries of an order).
pub const ENGINE_OUTPUT_FILTERS: [&str; 2] = [
    docket_core::wire::REPLIES_FILTER,
    docket_core::wire::EVENTS_TOPIC,
];

/// Presence's log, `× segment_count`: the engine takes each message at once.
pub const PRESENCE_SEGMENT_BYTES: usize = 16 * 1024;

/// Messages the router reads for a QoS 0 subscription in one go, retained ones on subscribe
/// included. The connection layer subscribes state filters (boards, menu, status) at QoS 0 in
/// the router, so that every retained board arrives (for QoS 1 the router truncates them to its
/// 100 in-flight slots); this is the bound for them: the floor, or twice the menu's stations.
const OUTGOING_PACKETS_FLOOR: usize = 1024;

/// The router configuration for this box. `stations`: the menu's station count.
pub fn router_config(cfg: &Config, stations: usize) -> RouterConfig {
    RouterConfig {
        max_connections: cfg.max_connections,
        max_outgoing_packet_count: OUTGOING_PACKETS_FLOOR.max(2 * stations) as u64,
        // In-memory log per filter: segment_bytes x segment_count, far below rumqttd's
        // 1 GB-per-filter examples. Every filter's log fills to its cap over hours, so the
        // per-device reply filters (one per paired device, each read only by its device,
        // which resends with the same id rather than relying on the log) get a small one.
        // So do the filters devices publish on: a message a device published keeps the read
        // buffer it arrived in alive while it is in a log (rumqttd slices payloads out of it;
        // the connection layer reads into small buffers). docs/operations.md gives the bound.
        max_segment_size: cfg.segment_bytes,
        max_segment_count: cfg.segment_count,
        custom_segment: Some(
            [
                (docket_core::wire::REPLIES_FILTER, cfg.device_segment_bytes),
                (docket_core::wire::PRESENCE_FILTER, PRESENCE_SEGMENT_BYTES),
                (docket_core::wire::CMD_FILTER, cfg.command_segment_bytes),
            ]
            .into_iter()
            .map(|(f, bytes)| {
                let seg = rumqttd::SegmentConfig {
                    max_segment_size: bytes,
                    max_segment_count: cfg.segment_count,
                };
                (f.to_owned(), seg)
            })
            .collect(),
        ),
        initialized_filters: Some(
            ENGINE_OUTPUT_FILTERS
                .iter()
                .map(|f| (*f).to_owned())
                .collect(),
        ),
        shared_subscriptions_strategy: Default::default(),
    }
}

type MakeLink = dyn for<'a> Fn(&'a str) -> LinkBuilder<'a> + Send + Sync;

/// The running router: a handle that makes links into it. Cheap to clone.
///
/// rumqttd's router channel type is private to the crate; the closures below hold the sender
/// `Router::spawn` returned and use only its public methods.
#[derive(Clone)]
pub struct Broker {
    make: Arc<MakeLink>,
    congested: Arc<dyn Fn() -> bool + Send + Sync>,
}

impl Broker {
    /// Spawns the router on its own OS thread (rumqttd's `router-0`).
    pub fn start(config: RouterConfig) -> Broker {
        let tx = Router::new(0, config).spawn();
        let probe = tx.clone();
        let make: Arc<MakeLink> =
            Arc::new(move |client_id: &str| LinkBuilder::new(client_id, tx.clone()));
        Broker {
            make,
            congested: Arc::new(move || probe.is_full()),
        }
    }

    /// A builder for a link with this client id.
    pub fn builder<'a>(&self, client_id: &'a str) -> LinkBuilder<'a> {
        (self.make)(client_id)
    }

    /// A plain link (the engine's, the will publisher's). Blocks until the router answers.
    pub fn link(&self, client_id: &str) -> Result<(LinkTx, LinkRx), BrokerError> {
        self.builder(client_id)
            .build()
            .map(|(tx, rx, _ack)| (tx, rx))
            .map_err(|source| BrokerError::Link {
                client_id: client_id.to_owned(),
                source: Box::new(source),
            })
    }

    /// Is the router's input channel full? Sending now would block the caller's thread
    /// (rumqttd's `LinkTx::send` is a blocking send on a bounded channel).
    pub fn congested(&self) -> bool {
        (self.congested)()
    }
}

/// Reads what the router has for a link right now, without waiting.
pub fn drain_now(rx: &mut LinkRx, into: &mut Vec<Notification>, at_most: usize) {
    while into.len() < at_most {
        match rx.recv_deadline(std::time::Instant::now()) {
            Ok(Some(n)) => into.push(n),
            _ => return,
        }
    }
}

/// Polls a future that never awaits anything (rumqttd's `LinkTx::send`, whose body is a
/// synchronous channel send) to completion, from synchronous code.
pub fn poll_once_ready<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawConfig;

    /// The segment size rumqttd gives a filter's log: the last `custom_segment` key the filter
    /// matches, else the router's default (as `rumqttd::router::logs::Data::new` picks it).
    fn segment_for(router: &RouterConfig, filter: &str) -> (usize, usize) {
        let mut picked = (router.max_segment_size, router.max_segment_count);
        for (key, seg) in router.custom_segment.iter().flatten() {
            if rumqttd::protocol::matches(filter, key) {
                picked = (seg.max_segment_size, seg.max_segment_count);
            }
        }
        picked
    }

    #[test]
    fn device_filters_get_the_small_log_and_shared_filters_the_large_one() {
        let cfg = RawConfig::default().validate().unwrap();
        let router = router_config(&cfg, 5);
        assert_eq!(router.max_outgoing_packet_count, 1024);
        assert_eq!(router_config(&cfg, 700).max_outgoing_packet_count, 1400);
        let small = (cfg.device_segment_bytes, cfg.segment_count);
        let large = (cfg.segment_bytes, cfg.segment_count);
        assert!(small.0 < large.0);
        assert!(PRESENCE_SEGMENT_BYTES <= small.0);
        for reply in [
            "docket/v1/reply/tab-1",
            "docket/v1/reply/kds-grill",
            "docket/v1/reply/+",
        ] {
            assert_eq!(segment_for(&router, reply), small, "{reply}");
        }
        let presence = (PRESENCE_SEGMENT_BYTES, cfg.segment_count);
        for p in [
            "docket/v1/devices/+/presence",
            "docket/v1/devices/tab-1/presence",
        ] {
            assert_eq!(segment_for(&router, p), presence, "{p}");
        }
        let commands = (cfg.command_segment_bytes, cfg.segment_count);
        assert!(commands.0 <= large.0);
        for c in ["docket/v1/cmd/+", "docket/v1/cmd/tab-1"] {
            assert_eq!(segment_for(&router, c), commands, "{c}");
        }
        for shared in [
            docket_core::wire::EVENTS_TOPIC,
            "docket/v1/board/grill",
            "docket/v1/board/+",
            "docket/v1/menu",
            "docket/v1/appliance/status",
        ] {
            assert_eq!(segment_for(&router, shared), large, "{shared}");
        }
    }
}
