//! The engine: the one writer. Takes commands from its queue, checks them, decides through
//! `docket-core`, commits a batch to SQLite (group commit), and only then publishes replies,
//! events and (coalesced) boards. This file holds the [`Engine`] and its loop; the rooms:
//!
//! - `commands`: the command path (rate limit, checks, exactly-once intake, decide, commit,
//!   replay);
//! - `coalesce`: which boards are dirty and when they go out; `boards`: their cached encodings;
//! - `guard`: the box's retained state topics, protected from foreign writes;
//! - `heartbeat`: the heartbeat round trip through the router;
//! - `central`: menu changes from head office (`uplink::menus_down`), each taken once;
//! - `status`: the appliance status;
//! - the seams: `link` (what the engine publishes to the router) and `store` (what it needs of
//!   SQLite), small traits with fakes for the rooms' tests; `inbox`: its input queue.
//!
//! Runs on its own OS thread and owns the store's writer, the in-memory site state and the
//! broker link. Must not serve HTTP or touch the network.

pub mod boards;
pub mod central;
mod coalesce;
mod commands;
mod guard;
mod heartbeat;
pub mod inbox;
pub mod link;
pub mod ratelimit;
mod status;
pub mod store;
#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;
pub mod waiters;

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use docket_core::wire;
use docket_core::{Menu, OrderBook};
use rumqttd::local::LinkError;
use rumqttd::Notification;

use crate::clock::now_ms;
use crate::engine::coalesce::Coalescer;
use crate::engine::guard::StateGuard;
use crate::engine::heartbeat::Heartbeat;
use crate::engine::inbox::{Inbox, Input};
use crate::engine::link::{Link, RouterLink};
use crate::engine::ratelimit::RateLimiter;
use crate::engine::status::StatusTopic;
use crate::engine::store::Store;
use crate::metrics::Metrics;
use crate::status::Status;
use crate::store::registry::DeviceRegistry;
use crate::store::StoreError;

pub use heartbeat::HEARTBEAT_TOPIC;

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

impl From<Box<LinkError>> for EngineError {
    fn from(e: Box<LinkError>) -> Self {
        EngineError::Link(e)
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

/// The engine on a store `S` (SQLite's writer in the box) and a link `L` (rumqttd's local
/// link): generic, so the hot path calls them directly.
pub struct Engine<S = crate::store::Store, L = RouterLink> {
    settings: EngineSettings,
    store: S,
    link: L,
    /// Commands from the sessions and what the router forwards on the link ([`crate::engine::inbox`]).
    inbox: Inbox,
    devices: Arc<DeviceRegistry>,
    metrics: Arc<Metrics>,
    /// What the box is doing now (storage, heartbeat, start time; read for the status topic).
    status: Arc<Status>,
    /// What decisions read and change; `last_seq` is its latest event's.
    site: OrderBook,
    last_seq: u64,
    /// Per-device command rate limit.
    rate: RateLimiter,
    boards: Coalescer,
    guard: StateGuard,
    heartbeat: Heartbeat,
    status_topic: StatusTopic,
    /// The menu changed since it was last published, and when that was.
    menu_dirty: bool,
    menu_published: Option<Instant>,
}

/// The retained menu goes out at most this often: a paired device toggling an item as fast as
/// its rate limit allows cannot make the box send every device the whole menu 50 times a second.
const MENU_EVERY: Duration = Duration::from_secs(1);

impl<S: Store, L: Link> Engine<S, L> {
    pub fn new(
        settings: EngineSettings,
        store: S,
        menu: Menu,
        devices: Arc<DeviceRegistry>,
        (metrics, status): (Arc<Metrics>, Arc<Status>),
        link: L,
        inbox: Inbox,
    ) -> Result<Self, EngineError> {
        let loaded = store.load()?;
        // Stamps continue from the latest one committed, whatever the wall clock says now.
        crate::clock::anchor(loaded.last_at);
        let started_unix_ms = now_ms();
        status.started_unix_ms.store(started_unix_ms, Relaxed);
        status.menu_version.store(menu.version, Relaxed);
        let boards = Coalescer::new(
            settings.board_interval,
            menu.stations(),
            &loaded.open_orders,
        );
        let status_topic = StatusTopic::new(
            settings.version.clone(),
            settings.site_id.clone(),
            started_unix_ms,
        );
        metrics.seq.store(loaded.last_seq, Relaxed);
        metrics
            .open_orders
            .store(loaded.open_orders.len() as u64, Relaxed);
        Ok(Engine {
            rate: RateLimiter::new(settings.rate_limit),
            site: OrderBook {
                menu: Some(menu),
                open_bytes: docket_core::open_bytes::OpenBytes::of(&loaded.open_orders),
                orders: loaded.open_orders,
                next_ticket: loaded.next_ticket,
                limits: settings.limits,
            },
            settings,
            store,
            link,
            inbox,
            devices,
            metrics,
            last_seq: loaded.last_seq,
            boards,
            guard: StateGuard::default(),
            heartbeat: Heartbeat::default(),
            status,
            status_topic,
            menu_dirty: false,
            menu_published: None,
        })
    }

    /// Republishes the retained menu, every board and the status from the store, then waits for
    /// a heartbeat round trip: the router has taken everything published before it.
    pub fn republish_retained(&mut self, deadline: Instant) -> Result<bool, EngineError> {
        self.publish_menu()?;
        self.boards.mark_all();
        self.publish_boards()?;
        self.publish_status()?;
        self.heartbeat.send(&mut self.link)?;
        while Instant::now() < deadline {
            self.step(Some(deadline))?;
            if !self.heartbeat.waiting() {
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
        if self.boards.is_dirty() {
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
        if self.boards.is_dirty() {
            wake = wake.min(self.boards.due());
        }
        if let Some(due) = self.menu_due(now) {
            wake = wake.min(due);
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

    fn timers(&mut self) -> Result<(), EngineError> {
        let now = Instant::now();
        self.menu_if_due(now)?;
        self.boards.refresh(now, self.last_seq);
        if self.boards.is_dirty() && now >= self.boards.due() {
            self.publish_boards()?;
        }
        if self.heartbeat.due(now, &self.status) {
            self.heartbeat.send(&mut self.link)?;
        }
        // Every 2 s, changed or not: it is the screens' proof that their link is alive; at once
        // when a station starts or stops printing, or a printer's condition changes (expo).
        if self.status_topic.due(now) || self.status.printing.take_changed() {
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
                Input::HeadOffice(req) => {
                    // After the commands that came before it.
                    if !commands.is_empty() {
                        self.handle_commands(std::mem::take(&mut commands))?;
                    }
                    self.head_office(*req)?;
                }
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

    /// Non-command traffic: the heartbeat, our own echoes and foreign writes to
    /// state topics.
    fn observe(&mut self, topic: &str, payload: &[u8]) -> Result<(), EngineError> {
        if topic == HEARTBEAT_TOPIC {
            self.heartbeat.echo(payload, &self.status);
            return Ok(());
        }
        self.guard
            .observe(&mut self.link, &self.metrics, topic, payload)?;
        Ok(())
    }

    /// The commit failed: the site state is SQLite's again, and every board is redrawn.
    fn reload(&mut self) -> Result<(), EngineError> {
        let loaded = self.store.load()?;
        self.site.open_bytes = docket_core::open_bytes::OpenBytes::of(&loaded.open_orders);
        self.site.orders = loaded.open_orders;
        self.site.next_ticket = loaded.next_ticket;
        if loaded.menu.is_some() {
            self.site.menu = loaded.menu;
        }
        self.last_seq = loaded.last_seq;
        self.boards.reloaded();
        Ok(())
    }

    /// The menu as it is now, retained (at start, and after menu commands are committed).
    fn publish_menu(&mut self) -> Result<(), EngineError> {
        let menu = wire::encode(self.site.menu.as_ref().expect("engine always has a menu"))?;
        self.guard.publish(&mut self.link, wire::MENU_TOPIC, menu)?;
        self.menu_published = Some(Instant::now());
        self.menu_dirty = false;
        Ok(())
    }

    /// When a changed menu may go out next (`None`: it has not changed): `now` if it never went.
    fn menu_due(&self, now: Instant) -> Option<Instant> {
        self.menu_dirty
            .then(|| self.menu_published.map_or(now, |t| t + MENU_EVERY))
    }

    /// Menu commands were committed: the new menu goes out now, or within [`MENU_EVERY`].
    pub(super) fn menu_changed(&mut self) -> Result<(), EngineError> {
        self.menu_dirty = true;
        let stations = self.site.menu.as_ref().map(|m| m.stations());
        self.boards.add_stations(stations.unwrap_or_default());
        self.menu_if_due(Instant::now())
    }

    fn menu_if_due(&mut self, now: Instant) -> Result<(), EngineError> {
        match self.menu_due(now) {
            Some(due) if due <= now => self.publish_menu(),
            _ => Ok(()),
        }
    }

    fn publish_boards(&mut self) -> Result<(), EngineError> {
        let (guard, link, orders) = (&mut self.guard, &mut self.link, &mut self.site.orders);
        self.boards
            .publish(guard, link, orders, self.last_seq, &self.metrics)
    }

    fn publish_status(&mut self) -> Result<(), EngineError> {
        self.status_topic
            .publish(&mut self.guard, &mut self.link, &self.status, self.last_seq)
    }
}
