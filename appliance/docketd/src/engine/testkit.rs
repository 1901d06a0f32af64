//! Fakes at the engine's seams, for its rooms' tests: a link that records what it is handed
//! ([`FakeLink`], and can forward some topics back as the router would), an in-memory store
//! ([`MemStore`], which can be told to fail its commits), a device registry on a temp database,
//! and [`Harness`]: an engine on them. Both fakes write to one [`Journal`], so a test sees
//! commits and publishes in the order they happened.
//!
//! Test-only. Must not be used by anything but tests.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use docket_core::keys::{DeviceKeys, MacKey};
use docket_core::wire::{self, CommandBody, Envelope, Event, LineInput};
use docket_core::{Line, LineStatus, Menu, Order, OrderStatus, Role};
use rumqttd::local::LinkError;
use rumqttd::protocol::Publish;
use rumqttd::{Forward, Notification};

use super::inbox::{self, Input};
use super::link::Link;
use super::ratelimit::Limit;
use super::store::Store;
use super::{Engine, EngineSettings};
use crate::metrics::Metrics;
use crate::store::registry::DeviceRegistry;
use crate::store::{Batch, DeviceRow, Loaded, StoreError};

/// One publish as the fake router took it.
#[derive(Debug, Clone)]
pub struct Sent {
    pub topic: String,
    pub payload: Bytes,
    pub retain: bool,
}

/// What the fakes saw, in order.
#[derive(Debug, Clone)]
pub enum Seen {
    Commit { events: usize, replies: usize },
    Sent(Sent),
}

pub type Journal = Rc<RefCell<Vec<Seen>>>;

#[derive(Default)]
pub struct FakeLink {
    pub journal: Journal,
    /// Forwards publishes on these topics back into the engine's queue, as the router does for
    /// the engine's subscriptions.
    pub echo: Option<(flume::Sender<Input>, Vec<String>)>,
}

impl FakeLink {
    /// The publishes since the last take, in order (commits left out).
    pub fn take(&mut self) -> Vec<Sent> {
        take_sent(&self.journal)
    }

    fn record(&mut self, p: Publish) {
        let sent = Sent {
            topic: String::from_utf8(p.topic.to_vec()).expect("topics are UTF-8"),
            payload: p.payload.clone(),
            retain: p.retain,
        };
        if let Some((tx, topics)) = &self.echo {
            if topics.contains(&sent.topic) {
                let f = Forward {
                    cursor: None,
                    size: 0,
                    publish: p,
                    properties: None,
                };
                tx.send(Input::Router(Notification::Forward(f)))
                    .expect("the engine's queue is open");
            }
        }
        self.journal.borrow_mut().push(Seen::Sent(sent));
    }
}

/// Drains the journal, keeping the publishes.
pub fn take_sent(journal: &Journal) -> Vec<Sent> {
    let seen = std::mem::take(&mut *journal.borrow_mut());
    seen.into_iter()
        .filter_map(|s| match s {
            Seen::Sent(s) => Some(s),
            Seen::Commit { .. } => None,
        })
        .collect()
}

impl Link for FakeLink {
    fn publish(&mut self, p: Publish) -> Result<(), Box<LinkError>> {
        self.record(p);
        Ok(())
    }

    fn publish_all(&mut self, batch: Vec<Publish>) -> Result<(), Box<LinkError>> {
        for p in batch {
            self.record(p);
        }
        Ok(())
    }
}

/// The store in memory, with SQLite's rules for what a commit may hold.
#[derive(Default)]
pub struct MemStore {
    pub events: Vec<(Event, Vec<u8>)>,
    pub orders: BTreeMap<String, Order>,
    pub replies: HashMap<(String, String), Vec<u8>>,
    /// The last committed menu version.
    pub menu: Option<docket_core::Menu>,
    /// While set, every commit fails with this SQLite result code and writes nothing.
    pub fail: Option<i32>,
    pub journal: Journal,
}

impl Store for MemStore {
    fn load(&self) -> Result<Loaded, StoreError> {
        let last = self.events.last().map(|(e, _)| e);
        Ok(Loaded {
            open_orders: (self.orders.iter())
                .filter(|(_, o)| o.is_open())
                .map(|(k, o)| (k.clone(), o.clone()))
                .collect(),
            last_seq: last.map_or(0, |e| e.seq),
            next_ticket: self.orders.values().map(|o| o.ticket).max().unwrap_or(0) + 1,
            last_at: last.map_or(0, |e| e.at),
            menu: self.menu.clone(),
        })
    }

    fn recorded_reply(&self, device: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.replies.get(&(device.into(), id.into())).cloned())
    }

    fn order(&self, id: &str) -> Result<Option<Order>, StoreError> {
        Ok(self.orders.get(id).cloned())
    }

    fn events_after(&self, after_seq: u64, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok((self.events.iter())
            .filter(|(e, _)| e.seq > after_seq)
            .take(limit)
            .map(|(_, p)| p.clone())
            .collect())
    }

    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
        let sqlite = |code| {
            let e = rusqlite::ffi::Error::new(code);
            Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, None)))
        };
        if let Some(code) = self.fail {
            return sqlite(code);
        }
        let next = self.events.last().map_or(1, |(e, _)| e.seq + 1);
        let gapless = (batch.events.iter().enumerate()).all(|(i, (e, _))| e.seq == next + i as u64);
        let known = |r: &crate::store::Recorded| {
            self.replies.contains_key(&(r.device.clone(), r.id.clone()))
        };
        if !gapless || batch.replies.iter().any(known) {
            return sqlite(rusqlite::ffi::SQLITE_CONSTRAINT);
        }
        self.events.extend(batch.events.iter().cloned());
        self.orders.extend(batch.orders.clone());
        if let Some(m) = batch.menus.last() {
            self.menu = Some(m.menu.clone());
        }
        for r in &batch.replies {
            self.replies
                .insert((r.device.clone(), r.id.clone()), r.reply.clone());
        }
        self.journal.borrow_mut().push(Seen::Commit {
            events: batch.events.len(),
            replies: batch.replies.len(),
        });
        Ok(())
    }
}

/// An open order on `stations` (one fired line each), ticket `n`, version 1.
pub fn order(n: u64, stations: &[&str]) -> Order {
    Order {
        id: format!("o-{n:06}"),
        ticket: n,
        table: format!("T{n}"),
        status: OrderStatus::Placed,
        version: 1,
        lines: (stations.iter().enumerate())
            .map(|(i, s)| Line {
                n: i as u32 + 1,
                item: "burger".into(),
                name: "Burger".into(),
                qty: 1,
                mods: vec![],
                notes: None,
                allergy: None,
                course: 1,
                station: (*s).to_owned(),
                status: LineStatus::Fired,
                fired_at: None,
                seat: None,
            })
            .collect(),
        fired_course: 1,
        placed_at: 0,
        rush: false,
        server: None,
        service: None,
        origin: None,
    }
}

/// Each test device's secret, made from its id.
fn secret(id: &str) -> [u8; 32] {
    let mut s = [7u8; 32];
    for (i, b) in id.bytes().take(32).enumerate() {
        s[i] = b;
    }
    s
}

/// A registry of `ids` on a temp database: `tab-*` tablets, `kds-*` the grill's station,
/// `expo-*` expo, `gone-*` revoked tablets, anything else a manager.
pub fn registry(ids: &[&str]) -> (tempfile::TempDir, Arc<DeviceRegistry>, Arc<Metrics>) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("docket.db");
    drop(crate::store::Store::open(&path, "site-test").expect("the schema"));
    let conn = crate::store::connect(&path).expect("a connection");
    for id in ids {
        let (role, stations) = match id.split('-').next() {
            Some("tab") | Some("gone") => (Role::Tablet, vec![]),
            Some("kds") => (Role::Station, vec!["grill".to_owned()]),
            Some("expo") => (Role::Expo, vec![]),
            _ => (Role::Manager, vec![]),
        };
        let row = DeviceRow {
            id: (*id).to_owned(),
            role,
            stations,
            secret: secret(id),
            created_at: 1,
            revoked_at: None,
        };
        crate::store::devices::add(&conn, &row).expect("a device");
        if id.starts_with("gone-") {
            crate::store::devices::revoke(&conn, id, 2).expect("revoked");
        }
    }
    let metrics = Arc::new(Metrics::default());
    let devices = DeviceRegistry::open(&path, metrics.clone()).expect("the registry");
    (dir, Arc::new(devices), metrics)
}

pub fn menu() -> Menu {
    Menu::sample(&[("burger", "grill"), ("fries", "fry")])
}

pub fn settings() -> EngineSettings {
    EngineSettings {
        site_id: "site-test".into(),
        max_batch: 64,
        board_interval: Duration::ZERO,
        replay_page: 100,
        replay_page_bytes: 64 * 1024,
        limits: docket_core::SiteLimits::default(),
        rate_limit: Limit {
            per_second: 0,
            burst: 0,
        },
        version: "test".into(),
    }
}

/// An engine on the fakes, with `tab-1`, `kds-1`, `gone-1` (revoked) and `mgr-1` paired.
pub struct Harness<S: Store = MemStore> {
    pub engine: Engine<S, FakeLink>,
    pub journal: Journal,
    pub metrics: Arc<Metrics>,
    pub status: Arc<crate::status::Status>,
    /// What the fake router forwards to the engine goes in here.
    pub router: flume::Sender<Input>,
    _dir: tempfile::TempDir,
}

pub const DEVICES: [&str; 4] = ["tab-1", "kds-1", "gone-1", "mgr-1"];

pub fn harness() -> Harness {
    // As docketd seeds SQLite before the engine starts: the store has the menu.
    let store = MemStore {
        menu: Some(menu()),
        ..Default::default()
    };
    let journal = store.journal.clone();
    harness_on(store, journal, settings())
}

pub fn harness_on<S: Store>(store: S, journal: Journal, settings: EngineSettings) -> Harness<S> {
    let (dir, devices, metrics) = registry(&DEVICES);
    let status = Arc::new(crate::status::Status::default());
    let (_commands, inbox) = inbox::channel(inbox::CAPACITY);
    let router = inbox.sender();
    let link = FakeLink {
        journal: journal.clone(),
        echo: None,
    };
    let engine = Engine::new(
        settings,
        store,
        menu(),
        devices,
        (metrics.clone(), status.clone()),
        link,
        inbox,
    )
    .expect("the engine starts");
    Harness {
        engine,
        journal,
        metrics,
        status,
        router,
        _dir: dir,
    }
}

/// A signed command from `device`, as its session hands it to the engine.
pub fn command(device: &str, id: &str, body: &CommandBody) -> Input {
    let key: MacKey = DeviceKeys::derive(&secret(device)).mac;
    let env = Envelope::sign(id, device, &key, body).expect("encodes");
    Input::Command {
        device: device.to_owned(),
        payload: wire::encode(&env).expect("encodes").into(),
    }
}

/// `place_order` of one burger (the grill's).
pub fn place(device: &str, id: &str) -> Input {
    let body = CommandBody::place("T1", vec![LineInput::plain("burger", 1)]);
    command(device, id, &body)
}

impl<S: Store> Harness<S> {
    /// Hands the engine these inputs as one turn's batch.
    pub fn handle(&mut self, inputs: Vec<Input>) {
        self.engine
            .handle(inputs)
            .expect("the engine handles its inputs");
    }

    /// Everything the fakes saw since last time, in order.
    pub fn seen(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.journal.borrow_mut())
    }
}

/// The reply in a publish on a reply topic.
pub fn reply(s: &Sent) -> wire::Reply {
    assert!(s.topic.starts_with("docket/v1/reply/"), "{}", s.topic);
    wire::decode(&s.payload).expect("a reply")
}
