//! The embedded MQTT broker (rumqttd): listeners, limits sized for a 1 GB box, device login.
//!
//! Owns the rumqttd configuration and its threads. rumqttd keeps everything in memory and has no
//! shutdown API; SQLite stays the truth. Must not decide anything about orders.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use rumqttd::local::{LinkRx, LinkTx};
use rumqttd::{Broker, ConnectionSettings, RouterConfig, ServerSettings};

use crate::config::Config;
use crate::devices::{DeviceRegistry, KICK_USER};

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot listen for MQTT on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the broker refused the engine's link")]
    Link(#[source] Box<rumqttd::local::LinkError>),
    #[error("cannot start the broker thread")]
    Thread(#[source] std::io::Error),
}

fn connection_settings(cfg: &Config, registry: &Arc<DeviceRegistry>) -> ConnectionSettings {
    let mut c = ConnectionSettings {
        // A client must send CONNECT within this time or is dropped.
        connection_timeout_ms: 5_000,
        max_payload_size: cfg.max_payload_bytes,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let reg = registry.clone();
    c.set_auth_handler(move |client_id: String, user: String, pass: String| {
        let reg = reg.clone();
        async move { reg.authenticate(&client_id, &user, &pass) }
    });
    c
}

fn server(
    name: &str,
    listen: SocketAddr,
    cfg: &Config,
    registry: &Arc<DeviceRegistry>,
) -> ServerSettings {
    ServerSettings {
        name: name.to_owned(),
        listen,
        tls: None,
        // A reconnect storm of every screen must not queue behind a per-connection delay.
        next_connection_delay_ms: 0,
        connections: connection_settings(cfg, registry),
    }
}

/// Filters that exist from the broker's start. rumqttd drops a local link that publishes to a
/// topic no filter matches, so without these the engine would have to subscribe to its own
/// replies and events and receive each of them back (4 of the ~12 deliveries of an order).
pub const ENGINE_OUTPUT_FILTERS: [&str; 2] = [REPLY_FILTERS, docket_core::wire::EVENTS_TOPIC];

/// Every device's reply topic: `docket/v1/reply/{device_id}`.
const REPLY_FILTERS: &str = "docket/v1/reply/+";
/// Every device's presence topic (the engine's subscription).
pub const PRESENCE_FILTER: &str = "docket/v1/devices/+/presence";

/// Presence's log, `× segment_count`: the engine takes each message at once, and each one (the
/// first publish of every connection) keeps its connection's read buffer alive while logged.
pub const PRESENCE_SEGMENT_BYTES: usize = 16 * 1024;

/// The rumqttd configuration for this box. rumqttd listens on loopback only (`v4`, `v5`); the
/// front door (`front`) owns the public ports.
pub fn rumqttd_config(
    cfg: &Config,
    registry: &Arc<DeviceRegistry>,
    v4: SocketAddr,
    v5: Option<SocketAddr>,
) -> rumqttd::Config {
    let v4 = HashMap::from([("v4".to_owned(), server("mqtt-v4", v4, cfg, registry))]);
    let v5 =
        v5.map(|addr| HashMap::from([("v5".to_owned(), server("mqtt-v5", addr, cfg, registry))]));
    rumqttd::Config {
        id: 0,
        router: RouterConfig {
            max_connections: cfg.max_connections,
            max_outgoing_packet_count: 200,
            // In-memory log per filter: segment_bytes x segment_count, far below rumqttd's
            // 1 GB-per-filter examples. Every filter's log fills to its cap over hours, so the
            // per-device reply filters (one per paired device, each read only by its device,
            // which resends with the same id rather than relying on the log) get a small one.
            // So do the filters devices publish on, for another reason: a message a device
            // published keeps its connection's whole 10 KB read buffer alive while it is in a log
            // (rumqttd slices payloads out of that buffer). Presence is the first thing a device
            // publishes on every connection (a long presence log grew by ~10 KB per reconnect);
            // commands the engine takes at once. docs/operations.md gives the bound.
            max_segment_size: cfg.segment_bytes,
            max_segment_count: cfg.segment_count,
            custom_segment: Some(
                [
                    (REPLY_FILTERS, cfg.device_segment_bytes),
                    (PRESENCE_FILTER, PRESENCE_SEGMENT_BYTES),
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
        },
        v4: Some(v4),
        v5,
        ws: None,
        cluster: None,
        console: None,
        bridge: None,
        prometheus: None,
        metrics: None,
    }
}

/// A router with an engine link; listeners are started later by [`Embedded::listen`], after the
/// retained state is in place.
pub struct Embedded {
    broker: Broker,
    listen: Vec<SocketAddr>,
}

impl Embedded {
    /// `v4`/`v5`: the loopback addresses rumqttd listens on.
    pub fn new(
        cfg: &Config,
        registry: &Arc<DeviceRegistry>,
        v4: SocketAddr,
        v5: Option<SocketAddr>,
    ) -> Self {
        Embedded {
            broker: Broker::new(rumqttd_config(cfg, registry, v4, v5)),
            listen: std::iter::once(v4).chain(v5).collect(),
        }
    }

    pub fn link(&self, client_id: &str) -> Result<(LinkTx, LinkRx), BrokerError> {
        self.broker
            .link(client_id)
            .map_err(|e| BrokerError::Link(Box::new(e)))
    }

    /// Checks the ports are free, then starts rumqttd's listeners on their own OS threads.
    pub fn listen(self) -> Result<(), BrokerError> {
        for addr in self.listen.iter().copied() {
            // rumqttd only logs a bind failure from its own thread; find out here instead.
            TcpListener::bind(addr).map_err(|source| BrokerError::Listen { addr, source })?;
        }
        let mut broker = self.broker;
        std::thread::Builder::new()
            .name("broker".into())
            .spawn(move || {
                if let Err(e) = broker.start() {
                    tracing::error!(error = ?e, "broker stopped");
                }
            })
            .map_err(BrokerError::Thread)?;
        Ok(())
    }
}

/// Cuts a revoked device off: logs in on rumqttd's loopback listener under its client id
/// (rumqttd then drops the device's connection), publishes its presence as offline, and
/// disconnects.
pub async fn kick(
    mqtt: SocketAddr,
    registry: &DeviceRegistry,
    device: &str,
) -> Result<(), rumqttc::ClientError> {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let host = if mqtt.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        mqtt.ip().to_string()
    };
    let mut opts = MqttOptions::new(device, host, mqtt.port());
    opts.set_credentials(KICK_USER, registry.kick_token());
    opts.set_keep_alive(Duration::from_secs(5));
    opts.set_clean_session(true);
    let (client, mut events) = AsyncClient::new(opts, 10);
    let offline = docket_core::wire::encode(&"offline").unwrap_or_default();
    client
        .publish(
            docket_core::wire::presence_topic(device),
            QoS::AtLeastOnce,
            true,
            offline,
        )
        .await?;
    let done = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => break true,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = ?e, device, "kick connection failed");
                    break false;
                }
            }
        }
    })
    .await
    .unwrap_or(false);
    client.disconnect().await.ok();
    let _ = tokio::time::timeout(Duration::from_millis(500), events.poll()).await;
    if done {
        tracing::info!(device, "revoked device cut off");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawConfig;
    use crate::metrics::Metrics;

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
        let dir = std::env::temp_dir().join(format!(
            "docket-broker-test-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let db = dir.join("db");
        let _store = crate::store::Store::open(&db, "s").unwrap();
        let registry = Arc::new(DeviceRegistry::open(&db, Arc::new(Metrics::default())).unwrap());
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let router = rumqttd_config(&cfg, &registry, addr, None).router;
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
        let _ = std::fs::remove_dir_all(dir);
    }
}
