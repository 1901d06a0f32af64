//! The engine: the one writer. Takes commands from the broker, decodes and checks them (size,
//! MAC, device, role), looks up idempotency, decides through `docket-core`, commits a batch to
//! SQLite (group commit), and only then publishes replies, events and (coalesced) boards.
//!
//! Runs on its own OS thread and owns the store's writer connection, the in-memory site state and
//! the broker link. Also guards the box's state topics against foreign writes and proves liveness
//! with a heartbeat round trip through the broker. Must not serve HTTP or touch the network.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use docket_core::ledger::process;
use docket_core::once;
use docket_core::wire::{self, CommandBody, Envelope, Event, Reply};
use docket_core::{Code, Menu, Rejection, Site};
use rumqttd::local::{LinkError, LinkRx, LinkTx};

use crate::inbox::{Inbox, Input};
use bytes::Bytes;
use rumqttd::protocol::{Packet, Publish};
use rumqttd::Notification;

use crate::boards::Boards;
use crate::devices::{DeviceRegistry, Lookup};
use crate::metrics::Metrics;
use crate::ratelimit::{RateLimiter, Verdict};
use crate::store::{Batch, Recorded, Store, StoreError};

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
    pub rate_limit: crate::ratelimit::Limit,
    pub version: String,
}

/// A decided command as the store records it.
fn recorded(key: &once::CommandKey, ok: bool, seq: Option<u64>, reply: &[u8]) -> Recorded {
    Recorded {
        device: key.device.clone(),
        id: key.id.clone(),
        ok,
        seq,
        reply: reply.to_vec(),
    }
}

/// Filters the engine subscribes to: commands, the state topics it owns (to restore foreign
/// writes), presence and its heartbeat. Replies and events are not among them: the broker is
/// started with filters for those ([`crate::broker::ENGINE_OUTPUT_FILTERS`]), so the engine's
/// publishes always match one without coming back to it.
fn filters() -> [&'static str; 6] {
    [
        wire::CMD_FILTER,
        "docket/v1/board/+",
        wire::MENU_TOPIC,
        wire::STATUS_TOPIC,
        crate::broker::PRESENCE_FILTER,
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
    /// Commands from the sessions and what the router forwards on the link ([`crate::inbox`]).
    inbox: Inbox,
    stations: Vec<String>,
    dirty: BTreeSet<String>,
    /// Boards encoded from each order's cached CBOR ([`crate::boards`]).
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

    fn handle_commands(
        &mut self,
        commands: Vec<(String, bytes::Bytes)>,
    ) -> Result<(), EngineError> {
        let t = Instant::now();
        let r = self.handle_batch(commands);
        self.metrics
            .command_micros
            .fetch_add(t.elapsed().as_micros() as u64, Relaxed);
        r
    }

    fn handle_batch(&mut self, commands: Vec<(String, bytes::Bytes)>) -> Result<(), EngineError> {
        let now = now_ms();
        let mut batch = Batch::default();
        // The exactly-once rule (docket_core::once): who hears what, and what a failed commit
        // turns into "send it again".
        let mut once: once::Batch<Vec<u8>> = once::Batch::default();
        let mut touched: HashSet<String> = HashSet::new();

        for (topic_device, payload) in commands {
            // Every command the device's topic carries counts, refused ones too, and one over
            // the limit is answered from its id alone: a flood is not decoded, checked or logged.
            if let Some(o) = self.over_rate(&topic_device, &payload)? {
                if let Some(bytes) = o {
                    once.answer(&topic_device, bytes);
                }
                continue;
            }
            match self.check(&topic_device, &payload) {
                Checked::Drop => {}
                Checked::Refuse { command, rejection } => {
                    self.count_reject(rejection.code);
                    tracing::info!(device = %topic_device, command = %command, code = rejection.code.as_str(), "command refused: {}", rejection.message);
                    once.answer(
                        &topic_device,
                        wire::encode(&Reply::rejected(&command, &rejection))?,
                    );
                }
                Checked::Ok { env, actor, body } => {
                    let step = Step {
                        once: &mut once,
                        batch: &mut batch,
                        touched: &mut touched,
                        now,
                    };
                    self.take(step, env, actor, body)?;
                }
            }
        }
        let recorded = once.recorded();

        for id in &touched {
            if let Some(o) = self.site.orders.get(id) {
                batch.orders.insert(id.clone(), o.clone());
            }
        }

        if !batch.is_empty() {
            let t = Instant::now();
            if let Err(e) = self.store.commit(&batch) {
                // Nothing of this batch is on disk: forget it, tell everyone to retry.
                self.metrics.commit_failures.fetch_add(1, Relaxed);
                let full = e.is_disk_full();
                if full && !self.metrics.storage_full.swap(true, Relaxed) {
                    tracing::error!(commands = recorded, "the disk is full: refusing new commands (storage_full) until space is freed; everything committed is intact");
                } else if !full {
                    tracing::error!(error = ?e, commands = recorded, "group commit failed; rolling back the batch");
                }
                self.reload()?;
                let rejection = if full {
                    Rejection::new(
                        Code::StorageFull,
                        "the box's disk is full: nothing was stored; send it again (same id) once a manager frees space",
                    )
                } else {
                    Rejection::new(
                        Code::Internal,
                        "the box could not store this command; send it again",
                    )
                };
                let metrics = self.metrics.clone();
                once.commit_failed(|id| {
                    metrics.reject(rejection.code);
                    wire::encode(&Reply::rejected(id, &rejection))
                })?;
                for a in once.into_answers() {
                    self.tx.publish(wire::reply_topic(&a.device), a.reply)?;
                }
                return Ok(());
            }
            self.metrics.commit(t.elapsed(), recorded);
            if self.metrics.storage_full.swap(false, Relaxed) {
                tracing::info!("the disk has space again: commands are stored again");
            }
        }

        // What /metrics says is true before anyone hears of it: a reply implies its seq,
        // its event count and the open orders after it.
        let accepted = batch.replies.iter().filter(|r| r.ok).count() as u64;
        self.metrics.commands_ok.fetch_add(accepted, Relaxed);
        self.metrics
            .events
            .fetch_add(batch.events.len() as u64, Relaxed);
        self.metrics.seq.store(self.last_seq, Relaxed);
        let open = self.site.orders.values().filter(|o| o.is_open()).count();
        self.metrics.open_orders.store(open as u64, Relaxed);
        // Only now, after the commit: replies, events, and the boards they change. Handed to the
        // router as one batch (one wake-up of its thread for the whole group commit).
        let answers = once.into_answers();
        let mut out = Vec::with_capacity(answers.len() + batch.events.len());
        for a in answers {
            out.push(plain(wire::reply_topic(&a.device).into_bytes(), a.reply));
        }
        for (e, payload) in &batch.events {
            out.push(plain(
                wire::EVENTS_TOPIC.as_bytes().to_vec(),
                payload.clone(),
            ));
            self.mark_dirty(e);
        }
        self.publish_all(out)?;
        // Completed orders leave memory once their boards are recomputed.
        if !self.dirty.is_empty() && self.boards_due() <= Instant::now() {
            self.publish_boards()?;
        }
        Ok(())
    }

    /// One checked command: its first reply if it was seen before; else decided (or rejected),
    /// its events and reply put in the batch; a replay is answered at once.
    fn take(
        &mut self,
        step: Step<'_>,
        env: Envelope,
        actor: docket_core::Actor,
        body: Result<CommandBody, Rejection>,
    ) -> Result<(), EngineError> {
        let Step {
            once,
            batch,
            touched,
            now,
        } = step;
        let key = once::CommandKey::new(&actor.device, &env.id);
        // Exactly once: a command seen before gets its first reply, nothing else.
        let store = &self.store;
        if once.again(&key, |k| store.recorded_reply(&k.device, &k.id))? {
            self.metrics.commands_duplicate.fetch_add(1, Relaxed);
            return Ok(());
        }
        let body = match body {
            Ok(b) => b,
            Err(rejection) => {
                self.count_reject(rejection.code);
                let bytes = wire::encode(&Reply::rejected(&env.id, &rejection))?;
                batch.replies.push(recorded(&key, false, None, &bytes));
                once.decided(key, bytes);
                return Ok(());
            }
        };
        if let CommandBody::Replay { after_seq } = body {
            let bytes = self.replay(&env.id, after_seq)?;
            self.metrics.replays.fetch_add(1, Relaxed);
            once.answer(&actor.device, bytes);
            return Ok(());
        }
        // Closed orders are not kept in memory: fetch the one this command names.
        if let Some(oid) = body.order_id() {
            if !self.site.orders.contains_key(oid) {
                if let Some(o) = self.store.order(oid)? {
                    self.site.orders.insert(o.id.clone(), o);
                }
            }
        }
        let (reply, events) = process(
            &mut self.site,
            &mut self.last_seq,
            &env.id,
            &actor,
            &body,
            now,
        );
        if let Some(err) = &reply.error {
            self.count_reject(Code::parse(&err.code).unwrap_or(Code::Internal));
            tracing::info!(device = %actor.device, command = %env.id, code = %err.code, "command rejected: {}", err.message);
        }
        let bytes = wire::encode(&reply)?;
        for e in events {
            touched.insert(e.order_id.clone());
            let payload = wire::encode(&e)?;
            batch.events.push((e, payload));
        }
        batch
            .replies
            .push(recorded(&key, reply.ok, reply.seq, &bytes));
        once.decided(key, bytes);
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

    /// A refused or rejected command, counted by its code.
    fn count_reject(&self, code: Code) {
        self.metrics.reject(code);
        self.metrics.commands_rejected.fetch_add(1, Relaxed);
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

    /// The device's command rate, counted for every command on its topic: `None` within it,
    /// else the `rate_limited` answer (nothing, for a payload without an id).
    fn over_rate(
        &mut self,
        topic_device: &str,
        payload: &[u8],
    ) -> Result<Option<Option<Vec<u8>>>, EngineError> {
        let Verdict::Refuse { first } = self.rate.check(topic_device, Instant::now()) else {
            return Ok(None);
        };
        self.count_reject(Code::RateLimited);
        let limit = self.settings.rate_limit;
        if first {
            tracing::warn!(device = %topic_device, limit = limit.per_second, burst = limit.burst, "device over its command rate limit: refusing with rate_limited (logged once per episode)");
        }
        let Some(id) = wire::envelope_id(payload) else {
            return Ok(Some(None));
        };
        let rejection = Rejection::new(
            Code::RateLimited,
            format!("too many commands from this device (over {} per second, {} at once): send it again with the same id in a moment", limit.per_second, limit.burst),
        );
        Ok(Some(Some(wire::encode(&Reply::rejected(&id, &rejection))?)))
    }

    /// Size, envelope, device, MAC: everything checked before idempotency and decisions.
    fn check(&self, topic_device: &str, payload: &[u8]) -> Checked {
        if payload.len() > wire::MAX_ENVELOPE_BYTES {
            // Refused before it is decoded: only its id is read, to say which command it was.
            let Some(command) = wire::envelope_id(payload) else {
                self.metrics.reject(Code::Malformed);
                tracing::warn!(device = %topic_device, bytes = payload.len(), "oversized command without an id dropped");
                return Checked::Drop;
            };
            return Checked::Refuse {
                command,
                rejection: Rejection::new(
                    Code::TooLarge,
                    format!(
                        "command is {} bytes; the limit is {}",
                        payload.len(),
                        wire::MAX_ENVELOPE_BYTES
                    ),
                ),
            };
        }
        let env: Envelope = match wire::decode(payload) {
            Ok(e) => e,
            Err(e) => {
                self.metrics.reject(Code::Malformed);
                tracing::warn!(device = %topic_device, bytes = payload.len(), error = %e, "undecodable command envelope dropped");
                return Checked::Drop;
            }
        };
        let refuse = |code: Code, message: String| Checked::Refuse {
            command: env
                .id
                .chars()
                .take(docket_core::decide::limits::MAX_ID_CHARS)
                .collect(),
            rejection: Rejection::new(code, message),
        };
        if env.id.is_empty() || env.id.chars().count() > docket_core::decide::limits::MAX_ID_CHARS {
            return refuse(
                Code::MalformedBody,
                "command id must be 1-64 characters".into(),
            );
        }
        if env.device != topic_device {
            return refuse(
                Code::DeviceMismatch,
                "the envelope's device is not the topic's device".into(),
            );
        }
        let (actor, secret) = match self.devices.lookup(&env.device) {
            Lookup::Active(a, s) => (a, s),
            Lookup::Revoked => return refuse(Code::Revoked, "this device has been revoked".into()),
            Lookup::Unknown => {
                return refuse(Code::UnknownDevice, "this device is not paired".into())
            }
        };
        if !env.verify(&secret) {
            return refuse(
                Code::BadMac,
                "command signature does not match the device secret".into(),
            );
        }
        let body = wire::decode_body(&env.body);
        Checked::Ok { env, actor, body }
    }

    fn replay(&mut self, command: &str, after_seq: u64) -> Result<Vec<u8>, EngineError> {
        let page = self.settings.replay_page;
        let rows = self.store.events_after(after_seq, page + 1)?;
        let mut more = rows.len() > page;
        let mut events = Vec::with_capacity(page);
        let mut bytes = 0;
        for r in rows.iter().take(page) {
            // A page is also bounded by bytes (at least one event, each at most an order's
            // bound): the rest comes with the next page.
            if !events.is_empty() && bytes + r.len() > self.settings.replay_page_bytes {
                more = true;
                break;
            }
            bytes += r.len();
            events.push(wire::decode::<Event>(r)?);
        }
        let reply = Reply {
            command: command.to_owned(),
            ok: true,
            order_id: None,
            ticket: None,
            seq: Some(
                events
                    .last()
                    .map_or(after_seq.min(self.last_seq), |e| e.seq),
            ),
            error: None,
            events: Some(events),
            more: Some(more),
        };
        Ok(wire::encode(&reply)?)
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

/// What a batch gathers while its commands are taken one by one.
struct Step<'a> {
    once: &'a mut once::Batch<Vec<u8>>,
    batch: &'a mut Batch,
    touched: &'a mut HashSet<String>,
    now: u64,
}

enum Checked {
    /// Undecodable: nobody to tell.
    Drop,
    /// Refused before idempotency (not recorded): size, device, MAC.
    Refuse {
        command: String,
        rejection: Rejection,
    },
    Ok {
        env: Envelope,
        actor: docket_core::Actor,
        body: Result<CommandBody, Rejection>,
    },
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
        Ok(crate::broker::poll_once_ready(self.send(p))?)
    }
}
