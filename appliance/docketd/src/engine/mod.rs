//! The engine: the one writer. Takes commands from the broker, decodes and checks them (size,
//! MAC, device, role), looks up idempotency, decides through `docket-core`, commits a batch to
//! SQLite (group commit), and only then publishes replies, events and (coalesced) boards. The
//! command path itself is in `commands`; this file holds the loop, boards, status and heartbeat.
//!
//! Runs on its own OS thread and owns the store's writer connection, the in-memory site state and
//! the broker link. Also guards the box's state topics against foreign writes and proves liveness
//! with a heartbeat round trip through the broker. Must not serve HTTP or touch the network.

pub mod boards;
pub mod inbox;
pub mod ratelimit;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use docket_core::wire::{self, Event};
use docket_core::{Menu, Site};
use rumqttd::local::{LinkError, LinkRx, LinkTx};

use crate::engine::inbox::{Inbox, Input};
use bytes::Bytes;
use rumqttd::protocol::{Packet, Publish};
use rumqttd::Notification;

use crate::engine::boards::Boards;
use crate::engine::ratelimit::RateLimiter;
use crate::metrics::Metrics;
use crate::store::registry::{DeviceRegistry, Lookup};
use crate::store::{Store, StoreError};

/// Where the engine proves it is alive: published and received back through the router.
pub const HEARTBEAT_TOPIC: &str = "docket/internal/heartbeat";
const HEARTBEAT_EVERY: Duration = Duration::from_millis(1000);

fn heartbeat_every(m: &Metrics) -> Duration {
    match m.heartbeat_every_ms.load(Relaxed) {
        0 => HEARTBEAT_EVERY,
        ms => Duration::from_millis(ms),
    }
}
const STATUS_EVERY: Duration = Duration::from_secs(2);
/// More events than this not yet relayed: the uplink is "catching_up" rather than "ok".
const UPLINK_BACKLOG: u64 = 1000;
/// Boards untouched by recent events are republished this often with the current seq, so that a
/// reconnecting screen replays only what it missed, not the day's history.
const BOARD_REFRESH_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("store")]
    Store(#[from] StoreError),
    #[error("broker link")]
    Link(#[source] Box<LinkError>),
    #[error("encoding")]
    Wire(#[from] wire::WireError),
    #[error("cannot start the engine's link thread")]
    Thread(#[from] std::io::Error),
}

impl From<LinkError> for EngineError {
    fn from(e: LinkError) -> Self {
        EngineError::Link(Box::new(e))
    }
}

pub struct EngineSettings {
    pub site_id: String,
    pub max_batch: usize,
    pub board_interval: Duration,
    pub replay_page: usize,
    /// Most event bytes in one replay page besides `replay_page` events
    /// (`engine.replay_page_bytes`): a reply stays well under the broker's packet limit however
    /// large the orders.
    pub replay_page_bytes: usize,
    /// What the site may hold (`engine.max_open_orders`, `max_order_bytes`, `max_open_bytes`).
    pub limits: docket_core::SiteLimits,
    pub rate_limit: crate::engine::ratelimit::Limit,
    pub version: String,
}

/// Filters the engine subscribes to: commands, the state topics it owns (to restore foreign
/// writes), presence and its heartbeat. Replies and events are not among them: the broker is
/// started with filters for those ([`crate::mqtt::broker::ENGINE_OUTPUT_FILTERS`]), so the engine's
/// publishes always match one without coming back to it.
fn filters() -> [&'static str; 6] {
    [
        wire::CMD_FILTER,
        wire::BOARDS_FILTER,
        wire::MENU_TOPIC,
        wire::STATUS_TOPIC,
        wire::PRESENCE_FILTER,
        HEARTBEAT_TOPIC,
    ]
}

/// A reply to publish once the batch is committed.
pub struct Engine {
    settings: EngineSettings,
    /// Per-device command rate limit.
    rate: RateLimiter,
    store: Store,
    site: Site,
    last_seq: u64,
    devices: Arc<DeviceRegistry>,
    metrics: Arc<Metrics>,
    tx: LinkTx,
    /// Commands from the sessions and what the router forwards on the link ([`crate::engine::inbox`]).
    inbox: Inbox,
    stations: Vec<String>,
    dirty: BTreeSet<String>,
    /// Boards encoded from each order's cached CBOR ([`crate::engine::boards`]).
    boards: Boards,
    last_boards: Option<Instant>,
    last_refresh: Instant,
    /// Seq of every board as last published.
    board_seq: HashMap<String, u64>,
    /// Last payload the engine published per state topic (what it restores).
    current: HashMap<String, Bytes>,
    /// The engine's own recent publishes per state topic (the last [`OWN_KEPT`]), to tell its
    /// echo from others' writes. Shared with the router's log, not copies.
    own: HashMap<String, VecDeque<Bytes>>,
    heartbeat_sent: Option<(u64, Instant)>,
    heartbeat_n: u64,
    last_status: Option<Instant>,
    started_unix_ms: u64,
}

use crate::clock::now_ms;

mod commands;

/// Own publishes remembered per state topic: echoes of older ones still on their way back count
/// as the engine's own. A topic is published at most once per board interval and its echo
/// comes back within a turn, so a few suffice; they are the very buffers the router's log holds
/// (a board is not copied), so keeping them costs little.
const OWN_KEPT: usize = 4;

/// Is `echo` one of the engine's own publishes `ours`? The router forwards the very bytes it
/// was handed (the same allocation: a pointer compare); equal contents count as well.
fn is_echo(ours: &Bytes, echo: &[u8]) -> bool {
    (ours.as_ptr() == echo.as_ptr() && ours.len() == echo.len()) || ours[..] == echo[..]
}

impl Engine {
    pub fn new(
        settings: EngineSettings,
        store: Store,
        menu: Menu,
        devices: Arc<DeviceRegistry>,
        metrics: Arc<Metrics>,
        (mut tx, rx): (LinkTx, LinkRx),
        inbox: Inbox,
    ) -> Result<Self, EngineError> {
        let loaded = store.load()?;
        // Stamps continue from the latest one committed, whatever the wall clock says now.
        crate::clock::anchor(loaded.last_at);
        for f in filters() {
            tx.subscribe(f)?;
        }
        inbox.attach(rx)?;
        let stations = menu.stations();
        let started_unix_ms = now_ms();
        metrics.started_unix_ms.store(started_unix_ms, Relaxed);
        let limits = settings.limits;
        let mut e = Engine {
            rate: RateLimiter::new(settings.rate_limit),
            settings,
            store,
            site: Site {
                menu: Some(menu),
                open_bytes: docket_core::open_bytes::OpenBytes::of(&loaded.open_orders),
                orders: loaded.open_orders,
                next_ticket: loaded.next_ticket,
                limits,
            },
            last_seq: loaded.last_seq,
            devices,
            metrics,
            tx,
            inbox,
            stations,
            dirty: BTreeSet::new(),
            boards: Boards::default(),
            last_boards: None,
            last_refresh: Instant::now(),
            board_seq: HashMap::new(),
            current: HashMap::new(),
            own: HashMap::new(),
            heartbeat_sent: None,
            heartbeat_n: 0,
            last_status: None,
            started_unix_ms,
        };
        // Boards of stations no longer on the menu (and of open orders' stations) are published
        // too, so that no screen keeps a stale retained board.
        let mut all: BTreeSet<String> = e.stations.iter().cloned().collect();
        for o in e.site.orders.values() {
            all.extend(o.lines.iter().map(|l| l.station.clone()));
        }
        e.stations = all.into_iter().collect();
        e.metrics.seq.store(e.last_seq, Relaxed);
        e.metrics
            .open_orders
            .store(e.site.orders.len() as u64, Relaxed);
        Ok(e)
    }

    /// Republishes the retained menu, every board and the status from the store, then waits for
    /// a heartbeat round trip: the router has taken everything published before it.
    pub fn republish_retained(&mut self, deadline: Instant) -> Result<bool, EngineError> {
        let menu = wire::encode(self.site.menu.as_ref().expect("engine always has a menu"))?;
        self.publish_state(wire::MENU_TOPIC, menu)?;
        self.dirty.extend(self.stations.iter().cloned());
        self.dirty.insert(wire::EXPO.to_owned());
        self.publish_boards()?;
        self.publish_status()?;
        self.send_heartbeat()?;
        while Instant::now() < deadline {
            self.step(Some(deadline))?;
            if self.heartbeat_sent.is_none() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Runs until `stop` is set, then drains what the broker already delivered and returns.
    pub fn run(mut self, stop: Arc<AtomicBool>) -> Result<(), EngineError> {
        while !stop.load(Relaxed) {
            self.step(None)?;
        }
        // Drain: everything already handed to us gets decided, committed and answered.
        let drain_until = Instant::now() + Duration::from_millis(200);
        self.step(Some(drain_until))?;
        if !self.dirty.is_empty() {
            self.publish_boards()?;
        }
        tracing::info!(seq = self.last_seq, "engine drained and stopped");
        Ok(())
    }

    /// One turn: wait for input (or the next timer), take a batch, handle it, run timers.
    fn step(&mut self, until: Option<Instant>) -> Result<(), EngineError> {
        let now = Instant::now();
        let mut wake = now + Duration::from_millis(100);
        if let Some(u) = until {
            wake = wake.min(u);
        }
        if !self.dirty.is_empty() {
            wake = wake.min(self.boards_due());
        }
        let mut batch = Vec::new();
        if let Some(i) = self.inbox.recv_deadline(wake) {
            batch.push(i);
        }
        while batch.len() < self.settings.max_batch * 4 {
            match self.inbox.try_recv() {
                Some(i) => batch.push(i),
                None => break,
            }
        }
        self.handle(batch)?;
        self.timers()
    }

    fn boards_due(&self) -> Instant {
        match self.last_boards {
            Some(t) => t + self.settings.board_interval,
            None => Instant::now(),
        }
    }

    fn timers(&mut self) -> Result<(), EngineError> {
        let now = Instant::now();
        if now >= self.last_refresh + BOARD_REFRESH_EVERY {
            self.last_refresh = now;
            let behind: Vec<String> = self
                .board_seq
                .iter()
                .filter(|(_, s)| **s < self.last_seq)
                .map(|(b, _)| b.clone())
                .collect();
            self.dirty.extend(behind);
        }
        if !self.dirty.is_empty() && now >= self.boards_due() {
            self.publish_boards()?;
        }
        let every = heartbeat_every(&self.metrics);
        let hb_due = match self.heartbeat_sent {
            // A heartbeat lost in the router is re-sent after a while.
            Some((_, at)) => now >= at + every * 3,
            None => {
                self.metrics.heartbeat_ms.load(Relaxed) + every.as_millis() as u64
                    <= crate::metrics::uptime_ms()
            }
        };
        if hb_due {
            self.send_heartbeat()?;
        }
        // Every 2 s, changed or not: it is the screens' proof that their link is alive.
        if self.last_status.is_none_or(|t| now >= t + STATUS_EVERY) {
            self.publish_status()?;
        }
        Ok(())
    }

    fn handle(&mut self, inputs: Vec<Input>) -> Result<(), EngineError> {
        let mut commands: Vec<(String, bytes::Bytes)> = Vec::new();
        for i in inputs {
            match i {
                Input::Command { device, payload } => commands.push((device, payload)),
                Input::LinkLost(e) => return Err(EngineError::Link(e)),
                Input::Router(Notification::Forward(f)) => {
                    let topic = String::from_utf8_lossy(&f.publish.topic).into_owned();
                    if let Some(device) = wire::device_of_cmd_topic(&topic) {
                        commands.push((device.to_owned(), f.publish.payload));
                    } else {
                        self.observe(&topic, &f.publish.payload)?;
                    }
                }
                Input::Router(_) => {}
            }
            if commands.len() >= self.settings.max_batch {
                self.handle_commands(std::mem::take(&mut commands))?;
            }
        }
        if !commands.is_empty() {
            self.handle_commands(commands)?;
        }
        Ok(())
    }

    /// Non-command traffic: our own echoes, foreign writes to state topics, presence, heartbeat.
    fn observe(&mut self, topic: &str, payload: &[u8]) -> Result<(), EngineError> {
        if topic == HEARTBEAT_TOPIC {
            if let Some((n, _)) = self.heartbeat_sent {
                if payload == n.to_le_bytes() {
                    self.heartbeat_sent = None;
                    self.metrics
                        .heartbeat_ms
                        .store(crate::metrics::uptime_ms(), Relaxed);
                }
            }
            return Ok(());
        }
        if let Some(dev) = topic
            .strip_prefix("docket/v1/devices/")
            .and_then(|r| r.strip_suffix("/presence"))
        {
            // Our own clear (below) comes back empty: nothing to learn from it.
            if payload.is_empty() {
                return Ok(());
            }
            let online = match wire::decode::<String>(payload) {
                Ok(s) => s == "online",
                Err(_) => payload == b"online",
            };
            // Only paired devices are tracked: made-up ids must not grow this map.
            if matches!(self.devices.lookup(dev), Lookup::Unknown) {
                return Ok(());
            }
            let online_now = self.metrics.presence.set(dev, online);
            self.metrics
                .online_devices
                .store(online_now as u64, Relaxed);
            // The box is the only reader of presence and has taken it: drop the broker's
            // retained copy. rumqttd scans every retained message on every SUBSCRIBE, so one per
            // device made each screen's reconnect cost grow with the number of devices.
            let clear = Publish::new(topic.as_bytes().to_vec(), Vec::new(), true);
            self.tx.push_packet(Packet::Publish(clear, None))?;
            return Ok(());
        }
        if let Some(current) = self.current.get(topic) {
            let own = self.own.entry(topic.to_owned()).or_default();
            if let Some(i) = own.iter().position(|x| is_echo(x, payload)) {
                own.remove(i);
                return Ok(());
            }
            // Someone else wrote the box's state topic (or cleared it): restore at once.
            let restore = current.clone();
            self.metrics.foreign_write(topic);
            tracing::warn!(
                topic,
                bytes = payload.len(),
                "foreign write to a state topic; restoring"
            );
            self.publish_state(topic, restore)?;
        } else if topic.starts_with("docket/v1/board/") && !payload.is_empty() {
            // A board the box does not publish: clear it so no screen trusts it and the
            // broker does not keep it.
            self.metrics.foreign_write(topic);
            tracing::warn!(
                topic,
                bytes = payload.len(),
                "foreign board on an unknown station; clearing"
            );
            let clear = Publish::new(topic.as_bytes().to_vec(), Vec::new(), true);
            self.tx.push_packet(Packet::Publish(clear, None))?;
        }
        Ok(())
    }

    /// Hands publishes to the router in one notification: all but the last straight into the
    /// link's queue, the last with the wake-up.
    fn publish_all(&mut self, mut packets: Vec<Packet>) -> Result<(), EngineError> {
        let Some(last) = packets.pop() else {
            return Ok(());
        };
        if !packets.is_empty() {
            self.tx.buffer().extend(packets);
        }
        self.tx.push_packet(last)?;
        Ok(())
    }

    fn reload(&mut self) -> Result<(), EngineError> {
        let loaded = self.store.load()?;
        self.site.open_bytes = docket_core::open_bytes::OpenBytes::of(&loaded.open_orders);
        self.site.orders = loaded.open_orders;
        self.boards.clear();
        self.site.next_ticket = loaded.next_ticket;
        self.last_seq = loaded.last_seq;
        self.dirty.extend(self.stations.iter().cloned());
        self.dirty.insert(wire::EXPO.to_owned());
        Ok(())
    }

    fn mark_dirty(&mut self, e: &Event) {
        self.dirty.insert(wire::EXPO.to_owned());
        for l in &e.order.lines {
            if !self.stations.contains(&l.station) {
                self.stations.push(l.station.clone());
            }
            self.dirty.insert(l.station.clone());
        }
    }

    fn publish_boards(&mut self) -> Result<(), EngineError> {
        let t = Instant::now();
        let r = self.publish_dirty_boards();
        self.metrics
            .board_micros
            .fetch_add(t.elapsed().as_micros() as u64, Relaxed);
        r
    }

    fn publish_dirty_boards(&mut self) -> Result<(), EngineError> {
        let dirty = std::mem::take(&mut self.dirty);
        for station in &dirty {
            let bytes = self
                .boards
                .encode(station, self.last_seq, &self.site.orders)?;
            self.publish_state(&wire::board_topic(station), bytes)?;
            self.board_seq.insert(station.clone(), self.last_seq);
            self.metrics.board_publishes.fetch_add(1, Relaxed);
        }
        self.site.orders.retain(|_, o| o.is_open());
        self.boards.prune(&self.site.orders);
        self.metrics
            .open_orders
            .store(self.site.orders.len() as u64, Relaxed);
        self.last_boards = Some(Instant::now());
        Ok(())
    }

    /// The uplink's state and lag (events) as the relays report them.
    fn uplink_now(&self) -> (&'static str, u64) {
        let u = &self.metrics.uplink;
        (
            u.state(self.last_seq, UPLINK_BACKLOG),
            u.lag_events(self.last_seq),
        )
    }

    fn publish_status(&mut self) -> Result<(), EngineError> {
        let (uplink, sync_lag) = self.uplink_now();
        let status = wire::ApplianceStatus {
            version: self.settings.version.clone(),
            site_id: self.settings.site_id.clone(),
            seq: self.last_seq,
            uplink: uplink.into(),
            sync_lag,
            started_at: self.started_unix_ms,
            now_ms: now_ms(),
            storage_full: self.metrics.storage_full.load(Relaxed),
        };
        let bytes = wire::encode(&status)?;
        self.publish_state(wire::STATUS_TOPIC, bytes)?;
        self.last_status = Some(Instant::now());
        Ok(())
    }

    /// Publishes a retained state message and remembers it as ours.
    fn publish_state(&mut self, topic: &str, bytes: impl Into<Bytes>) -> Result<(), EngineError> {
        let bytes: Bytes = bytes.into();
        let own = self.own.entry(topic.to_owned()).or_default();
        own.push_back(bytes.clone());
        while own.len() > OWN_KEPT {
            own.pop_front();
        }
        self.current.insert(topic.to_owned(), bytes.clone());
        let topic = Bytes::copy_from_slice(topic.as_bytes());
        let publish = Publish::new(topic, bytes, true);
        self.tx.push_packet(Packet::Publish(publish, None))?;
        Ok(())
    }

    fn send_heartbeat(&mut self) -> Result<(), EngineError> {
        self.heartbeat_n += 1;
        self.heartbeat_sent = Some((self.heartbeat_n, Instant::now()));
        self.tx
            .publish(HEARTBEAT_TOPIC, self.heartbeat_n.to_le_bytes().to_vec())?;
        Ok(())
    }
}

/// A QoS 0, not retained publish, as `LinkTx::publish` makes it.
fn plain(topic: Vec<u8>, payload: Vec<u8>) -> Packet {
    Packet::Publish(
        Publish::new(
            bytes::Bytes::from(topic),
            bytes::Bytes::from(payload),
            false,
        ),
        None,
    )
}

/// `LinkTx::send` is async only in name; this is its synchronous use.
trait PushPacket {
    fn push_packet(&mut self, p: Packet) -> Result<usize, EngineError>;
}

impl PushPacket for LinkTx {
    fn push_packet(&mut self, p: Packet) -> Result<usize, EngineError> {
        Ok(crate::mqtt::broker::poll_once_ready(self.send(p))?)
    }
}
