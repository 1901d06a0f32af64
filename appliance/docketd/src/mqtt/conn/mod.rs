//! docketd's MQTT connection layer: it owns every device connection, MQTT 3.1.1 and 5 over TCP
//! and MQTT over WebSocket on `/mqtt`, and speaks to rumqttd's router (used as published)
//! through one local link per connection.
//!
//! Per connection, one task ([`session`]): packets are read with rumqttd's own codec, the one and
//! only MQTT parser in the process ([`codec`], made strict for MQTT 5 by [`strict`]); the CONNECT
//! is checked against the device registry and refused with a CONNACK that says why ([`login`],
//! [`admit`]); every PUBLISH topic, SUBSCRIBE filter and will is judged by the device ACL
//! ([`acl`]) on that parsed packet; what the router forwards is written in the device's own
//! protocol version, and retained state arrives in full ([`outbound`]). One socket per device,
//! nothing in between.
//!
//! Must not decide anything about orders: a device's commands go to the engine's queue
//! ([`crate::engine::inbox`]) as the ACL passed them, everything else through the router.

pub mod acl;
pub mod admit;
pub mod codec;
pub mod gate;
pub mod inbound;
pub mod listen;
pub mod login;
pub mod outbound;
pub mod probe;
mod session;
pub mod strict;
mod table;
mod transport;
mod wire;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::engine::inbox::Commands;
use crate::metrics::Metrics;
use crate::mqtt::broker::Broker;
use crate::status::Status;
use crate::store::registry::DeviceRegistry;

pub use codec::Proto;
pub use table::Ending;

/// What every session needs to know.
pub struct Settings {
    /// Largest packet accepted (its remaining length), as `[mqtt] max_payload_bytes`.
    pub max_packet: usize,
    /// Enforce the device topic ACL ([`acl`]); off only to benchmark the bare broker.
    pub topic_acl: bool,
}

/// The connection layer's state every session shares: the router, the engine's queue, the
/// admission desk, the table of logged-in devices, the places and the counters.
pub struct LayerState {
    pub broker: Broker,
    /// The engine's queue: commands skip the router.
    pub commands: Commands,
    pub desk: admit::Desk,
    table: Arc<table::Table>,
    pub metrics: Arc<Metrics>,
    /// Presence: the connection layer is its one writer.
    pub status: Arc<Status>,
    pub settings: Settings,
    /// Places for connections accepted and not yet answered ([`listen::PENDING`], per address
    /// [`gate::PER_ADDRESS`]).
    gate: Arc<gate::Gate>,
    /// Connections open, MQTT and WebSocket together (`[mqtt] max_connections`, or fewer when
    /// the open-file limit is lower).
    slots: Arc<Semaphore>,
    pub health: Arc<probe::Health>,
}

/// The connection layer's handle: cheap to clone.
#[derive(Clone)]
pub struct Connections(Arc<LayerState>);

impl Connections {
    pub fn new(
        broker: Broker,
        commands: Commands,
        registry: Arc<DeviceRegistry>,
        (metrics, status): (Arc<Metrics>, Arc<Status>),
        settings: Settings,
        max_connections: usize,
        health: Arc<probe::Health>,
    ) -> std::io::Result<Connections> {
        let table = Arc::new(table::Table::default());
        let desk = admit::Desk::start(broker.clone(), registry, metrics.clone(), table.clone())?;
        Ok(Connections(Arc::new(LayerState {
            broker,
            commands,
            desk,
            table,
            metrics,
            status,
            settings,
            gate: gate::Gate::new(listen::PENDING),
            slots: Arc::new(Semaphore::new(max_connections)),
            health,
        })))
    }

    /// Accepts MQTT connections on a listener (over TLS with `tls`) until `stop` (see
    /// [`listen::serve`]).
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        proto: Proto,
        name: &'static str,
        tls: Option<std::sync::Arc<rustls::ServerConfig>>,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let tls = tls.map(tokio_rustls::TlsAcceptor::from);
        listen::serve(self.0, listener, proto, name, tls, stop).await
    }

    /// A place for one more connection, or `None` at the limit (`/mqtt` asks before upgrading).
    pub fn slot(&self) -> Option<OwnedSemaphorePermit> {
        self.0.slots.clone().try_acquire_owned().ok()
    }

    /// Serves an upgraded `/mqtt` WebSocket (MQTT 3.1.1) holding `slot`.
    pub async fn serve_websocket(
        &self,
        socket: axum::extract::ws::WebSocket,
        peer: std::net::SocketAddr,
        slot: OwnedSemaphorePermit,
    ) {
        let pending = Some(self.0.gate.enter(peer.ip()).await);
        let peer = format!("ws:{peer}");
        self.0.metrics.mqtt_connections.fetch_add(1, Relaxed);
        session::run(
            self.0.clone(),
            transport::WebSocket(socket),
            Proto::V4,
            peer,
            pending,
        )
        .await;
        self.0.metrics.mqtt_connections.fetch_sub(1, Relaxed);
        drop(slot);
    }

    /// Ends a device's connection for `why` (revoked: at once, with its will); true if it had
    /// one.
    pub fn cut(&self, device: &str, why: Ending) -> bool {
        self.0.table.cut(device, why)
    }

    /// Ends every connection (docketd is stopping).
    pub fn cut_all(&self) {
        self.0.table.cut_all()
    }

    /// The password of docketd's own probe logins.
    pub fn probe_token(&self) -> &str {
        self.0.desk.probe_token()
    }

    pub fn health(&self) -> &Arc<probe::Health> {
        &self.0.health
    }
}

/// A client-chosen string as it may appear in a log line.
pub fn clip(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
