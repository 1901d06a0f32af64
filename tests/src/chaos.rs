//! The fault campaign's restaurant and its oracle.
//!
//! Devices here behave like well-written tablets and screens that follow docs/protocol.md:
//! - a tablet places orders. Every command keeps its id until a reply arrives and is resent with
//!   the same id after each reconnect, and every few seconds while unanswered;
//! - a station screen keeps a [`View`] (the retained board, then events by seq, `replay` on a
//!   gap, a fresh snapshot after each reconnect) and bumps its tickets after a short prep time;
//!   the expo completes ready orders the same way;
//! - every device reconnects after any loss, with a capped backoff.
//!
//! Each device connects to its own port (a [`crate::faults::FaultProxy`] in the campaign), so a
//! fault hits one device. What devices were told goes into a shared [`Ledger`]; [`check`]
//! compares it with the box's SQLite: the oracle of the campaign.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use docket_core::wire::{self, CommandBody, Event, Reply};
use docket_core::{Order, OrderStatus};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::faults::Fault;
use crate::{line, Client, Creds, View};

/// What devices do: place and act (`Load`), only finish what they started (`Drain`), or quit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Load,
    Drain,
    Stop,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Tablet,
    Station(String),
    Expo,
}

/// An unanswered command re-sent after this long without a reply.
const RESEND: Duration = Duration::from_secs(3);
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What the devices were told, for the oracle.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Commands created (each counted once, however often it was resent).
    pub sent: u64,
    /// Sends of a command that had been sent before (after a reconnect or a silence).
    pub resent: u64,
    /// (device, command id) → the first `ok: true` reply.
    pub acked: BTreeMap<(String, String), Reply>,
    /// (device, command id) → the first rejection.
    pub rejected: BTreeMap<(String, String), Reply>,
    /// Repeated replies that differ from the first one for the same command (must stay empty).
    pub inconsistent: Vec<String>,
    /// Connections re-established after a loss.
    pub reconnects: u64,
    /// Each screen's view as last updated, by device id.
    pub views: BTreeMap<String, View>,
    /// Unanswered commands per device.
    pub pending: BTreeMap<String, usize>,
    /// Screens that saw an event go backwards in an order's version (must stay empty).
    pub stale: Vec<String>,
}

pub type Shared = Arc<Mutex<Ledger>>;

fn lock(l: &Shared) -> std::sync::MutexGuard<'_, Ledger> {
    l.lock().unwrap_or_else(|p| p.into_inner())
}

/// One simulated device.
#[derive(Debug, Clone)]
pub struct DeviceSpec {
    pub creds: Creds,
    pub role: Role,
    /// Where it connects: its own proxy in the campaign.
    pub port: u16,
    /// Tablets: mean time between orders (exponential, so arrivals are Poisson).
    pub interval: Duration,
    /// MQTT keep-alive: how soon a silent connection is given up.
    pub keep_alive: Duration,
    pub seed: u64,
}

/// Items by station, from the demo menu.
const ITEMS: [&str; 8] = [
    "burger-classic",
    "steak-ribeye",
    "fries",
    "calamari",
    "salad-caesar",
    "cheesecake",
    "lager-pint",
    "espresso",
];

struct Pending {
    body: CommandBody,
    last_sent: Instant,
}

struct Device {
    spec: DeviceSpec,
    ledger: Shared,
    rng: StdRng,
    pending: BTreeMap<String, Pending>,
    next_order: Instant,
    /// Screens: what they show, events that arrived before their snapshot, replay in flight.
    view: Option<View>,
    early: BTreeMap<u64, Event>,
    replay: Option<String>,
    /// No replay before this (after a refused one).
    replay_not_before: Instant,
    /// Screens: when to act on each order that is theirs to bump or complete.
    due: BTreeMap<String, Instant>,
    counter: u64,
}

/// Runs one device until the phase is `Stop`.
pub async fn run(spec: DeviceSpec, mut phase: watch::Receiver<Phase>, ledger: Shared) {
    let mut d = Device {
        rng: StdRng::seed_from_u64(spec.seed),
        next_order: Instant::now(),
        spec,
        ledger,
        pending: BTreeMap::new(),
        view: None,
        early: BTreeMap::new(),
        replay: None,
        replay_not_before: Instant::now(),
        due: BTreeMap::new(),
        counter: 0,
    };
    d.next_order = Instant::now() + d.gap();
    let mut backoff = Duration::from_millis(100);
    let mut connected_before = false;
    loop {
        if *phase.borrow() == Phase::Stop {
            return;
        }
        let connect =
            Client::connect_with("127.0.0.1", d.spec.port, &d.spec.creds, d.spec.keep_alive);
        let c = tokio::select! {
            c = connect => c,
            _ = phase.wait_for(|p| *p == Phase::Stop) => return,
        };
        let mut c = match c {
            Ok(c) => c,
            Err(_) => {
                let wait = tokio::time::sleep(backoff);
                tokio::select! {
                    _ = wait => {}
                    _ = phase.wait_for(|p| *p == Phase::Stop) => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        if connected_before {
            lock(&d.ledger).reconnects += 1;
        }
        connected_before = true;
        backoff = Duration::from_millis(100);
        if d.session(&mut c, &mut phase).await {
            c.disconnect().await;
            return;
        }
    }
}

impl Device {
    fn gap(&mut self) -> Duration {
        let mean = self.spec.interval.as_secs_f64().max(0.001);
        let u: f64 = self.rng.gen_range(1e-9..1.0);
        Duration::from_secs_f64(-u.ln() * mean)
    }

    fn next_id(&mut self) -> String {
        self.counter += 1;
        format!("{}-{}-{}", self.spec.creds.id, self.spec.seed, self.counter)
    }

    /// One connection's life; true when the phase is `Stop`, false when the connection is lost.
    async fn session(&mut self, c: &mut Client, phase: &mut watch::Receiver<Phase>) -> bool {
        // After a reconnect a screen starts again from the retained snapshot.
        self.view = None;
        self.early.clear();
        self.replay = None;
        let station = match &self.spec.role {
            Role::Tablet => None,
            Role::Station(s) => Some(s.clone()),
            Role::Expo => Some(wire::EXPO.to_owned()),
        };
        if let Some(s) = &station {
            if c.subscribe(wire::EVENTS_TOPIC).await.is_err()
                || c.subscribe(&wire::board_topic(s)).await.is_err()
            {
                return false;
            }
        }
        // Everything unanswered goes again, with the same ids.
        let ids: Vec<String> = self.pending.keys().cloned().collect();
        for id in ids {
            if !self.send(c, &id).await {
                return false;
            }
        }
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tokio::select! {
                _ = phase.changed() => {
                    let stop = *phase.borrow() == Phase::Stop;
                    if stop {
                        return true;
                    }
                }
                _ = tick.tick() => {
                    let now = *phase.borrow();
                    if !self.on_tick(c, now).await {
                        return false;
                    }
                }
                m = c.recv() => match m {
                    None => return false,
                    Some(m) => {
                        if !self.on_message(c, &m.topic, &m.payload).await {
                            return false;
                        }
                    }
                },
            }
        }
    }

    /// Sends (or re-sends) a pending command; false if the connection is gone.
    async fn send(&mut self, c: &mut Client, id: &str) -> bool {
        let Some(p) = self.pending.get_mut(id) else {
            return true;
        };
        p.last_sent = Instant::now();
        let body = p.body.clone();
        lock(&self.ledger).resent += 1;
        c.send_as(id, &body).await.is_ok()
    }

    async fn issue(&mut self, c: &mut Client, body: CommandBody) -> bool {
        let id = self.next_id();
        self.pending.insert(
            id.clone(),
            Pending {
                body: body.clone(),
                last_sent: Instant::now(),
            },
        );
        {
            let mut l = lock(&self.ledger);
            l.sent += 1;
            l.pending
                .insert(self.spec.creds.id.clone(), self.pending.len());
        }
        c.send_as(&id, &body).await.is_ok()
    }

    async fn on_tick(&mut self, c: &mut Client, phase: Phase) -> bool {
        let now = Instant::now();
        if phase == Phase::Load {
            if self.spec.role == Role::Tablet && now >= self.next_order {
                self.next_order = now + self.gap();
                let n = self.rng.gen_range(1..=4);
                let lines = (0..n)
                    .map(|_| line(ITEMS[self.rng.gen_range(0..ITEMS.len())], 1))
                    .collect();
                let table = format!("{}", self.rng.gen_range(1..=40));
                if !self
                    .issue(c, CommandBody::PlaceOrder { table, lines })
                    .await
                {
                    return false;
                }
            }
            let ready: Vec<String> = self
                .due
                .iter()
                .filter(|(_, at)| **at <= now)
                .map(|(o, _)| o.clone())
                .collect();
            for order_id in ready {
                self.due.remove(&order_id);
                let body = match &self.spec.role {
                    Role::Station(s) => CommandBody::Bump {
                        order_id,
                        station: s.clone(),
                    },
                    Role::Expo => CommandBody::Complete { order_id },
                    Role::Tablet => continue,
                };
                if !self.issue(c, body).await {
                    return false;
                }
            }
        }
        // A gap still waiting for a replay that was refused earlier.
        if self.replay.is_none() && !self.early.is_empty() && !self.catch_up(c).await {
            return false;
        }
        let stale: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| now.duration_since(p.last_sent) >= RESEND)
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            if !self.send(c, &id).await {
                return false;
            }
        }
        true
    }

    async fn on_message(&mut self, c: &mut Client, topic: &str, payload: &[u8]) -> bool {
        if topic == wire::reply_topic(&self.spec.creds.id) {
            let Ok(r) = wire::decode::<Reply>(payload) else {
                return true;
            };
            return self.on_reply(c, r).await;
        }
        if topic == wire::EVENTS_TOPIC {
            if let Ok(e) = wire::decode::<Event>(payload) {
                self.early.insert(e.seq, e);
                return self.catch_up(c).await;
            }
            return true;
        }
        if topic.starts_with("docket/v1/board/") && !payload.is_empty() {
            if let Ok(b) = wire::decode::<wire::Board>(payload) {
                if self.view.as_ref().is_none_or(|v| b.seq > v.seq) {
                    self.view = Some(View::from_board(b));
                }
                return self.catch_up(c).await;
            }
        }
        true
    }

    async fn on_reply(&mut self, c: &mut Client, r: Reply) -> bool {
        let me = self.spec.creds.id.clone();
        if self.replay.as_deref() == Some(r.command.as_str()) {
            self.replay = None;
            if !r.ok {
                // Refused (rate_limited after an outage, say): ask again a little later, from
                // on_tick, instead of at once.
                self.replay_not_before = Instant::now() + Duration::from_secs(1);
                return true;
            }
            let more = r.more == Some(true);
            for e in r.events.unwrap_or_default() {
                self.early.insert(e.seq, e);
            }
            if more {
                // Ask for the next page from wherever the view now is.
                self.catch_up(c).await;
                return self.request_replay(c).await;
            }
            return self.catch_up(c).await;
        }
        let key = (me.clone(), r.command.clone());
        let mut l = lock(&self.ledger);
        // Refusals that record nothing (`internal`, `storage_full`, `rate_limited`): the same id
        // goes again later, from the pending list; they are no command's reply of record.
        let transient = r.error.as_ref().is_some_and(|e| {
            matches!(
                e.code.as_str(),
                "internal" | "storage_full" | "rate_limited"
            )
        });
        if transient {
            return true;
        }
        let first = l.acked.get(&key).or_else(|| l.rejected.get(&key)).cloned();
        match first {
            Some(f) if f != r => l
                .inconsistent
                .push(format!("{me} {}: first {f:?}, then {r:?}", r.command)),
            Some(_) => {}
            None if self.pending.contains_key(&r.command) => {
                if r.ok {
                    l.acked.insert(key, r.clone());
                } else {
                    l.rejected.insert(key, r.clone());
                }
            }
            None => {}
        }
        self.pending.remove(&r.command);
        l.pending.insert(me, self.pending.len());
        true
    }

    /// Applies every buffered event the view can take; asks for a replay on a gap.
    async fn catch_up(&mut self, c: &mut Client) -> bool {
        let Some(view) = self.view.as_mut() else {
            return true;
        };
        let mut gap = false;
        while let Some((&seq, _)) = self.early.first_key_value() {
            if seq <= view.seq {
                self.early.pop_first();
                continue;
            }
            if seq != view.seq + 1 {
                gap = true;
                break;
            }
            let Some((_, e)) = self.early.pop_first() else {
                break;
            };
            if let Some(old) = view.orders.get(&e.order_id) {
                if old.version >= e.version {
                    lock(&self.ledger).stale.push(format!(
                        "{}: event {} takes order {} from v{} to v{}",
                        self.spec.creds.id, e.seq, e.order_id, old.version, e.version
                    ));
                }
            }
            // In order by construction: apply cannot see a gap here.
            let _ = view.apply(&e);
        }
        let view = view.clone();
        self.schedule(&view);
        lock(&self.ledger)
            .views
            .insert(self.spec.creds.id.clone(), view);
        if gap && self.replay.is_none() && Instant::now() >= self.replay_not_before {
            return self.request_replay(c).await;
        }
        true
    }

    async fn request_replay(&mut self, c: &mut Client) -> bool {
        let Some(after_seq) = self.view.as_ref().map(|v| v.seq) else {
            return true;
        };
        let id = self.next_id();
        self.replay = Some(id.clone());
        c.send_as(&id, &CommandBody::Replay { after_seq })
            .await
            .is_ok()
    }

    /// Screens: note when to act on each order that is theirs.
    fn schedule(&mut self, view: &View) {
        let mine = |o: &Order| match &self.spec.role {
            Role::Station(s) => o.on_station(s),
            Role::Expo => o.status == OrderStatus::Ready,
            Role::Tablet => false,
        };
        let wanted: BTreeSet<String> = view
            .orders
            .values()
            .filter(|o| mine(o))
            .map(|o| o.id.clone())
            .collect();
        self.due.retain(|o, _| wanted.contains(o));
        let in_flight: BTreeSet<String> = self
            .pending
            .values()
            .filter_map(|p| match &p.body {
                CommandBody::Bump { order_id, .. } | CommandBody::Complete { order_id } => {
                    Some(order_id.clone())
                }
                _ => None,
            })
            .collect();
        for o in wanted {
            if !self.due.contains_key(&o) && !in_flight.contains(&o) {
                let prep = Duration::from_millis(self.rng.gen_range(300..1500));
                self.due.insert(o, Instant::now() + prep);
            }
        }
    }
}

/// The oracle's findings for one scenario.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    pub sent: u64,
    pub resent: u64,
    pub acked: u64,
    pub rejected: u64,
    /// Acknowledged (`ok: true`) but not in SQLite, or recorded differently.
    pub lost: u64,
    /// Commands that made more than one event, or orders placed twice.
    pub duplicated: u64,
    pub reconnects: u64,
    /// Problems found, in words (empty when everything holds).
    pub problems: Vec<String>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "commands sent {}, resent {}, acknowledged {}, rejected {}, lost {}, duplicated {}, reconnects {}",
            self.sent, self.resent, self.acked, self.rejected, self.lost, self.duplicated, self.reconnects
        )
    }
}

/// The box's last committed seq.
pub fn box_seq(db: &Path) -> anyhow::Result<u64> {
    let conn = open(db)?;
    let seq: i64 = conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?;
    Ok(seq as u64)
}

fn open(db: &Path) -> anyhow::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("open {}", db.display()))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// Devices still waiting for a reply, and screens behind the box's seq.
pub fn unsettled(ledger: &Shared, seq: u64) -> Vec<String> {
    let l = lock(ledger);
    let mut out: Vec<String> = l
        .pending
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(d, n)| format!("{d} has {n} unanswered"))
        .collect();
    out.extend(
        l.views
            .iter()
            .filter(|(_, v)| v.seq != seq)
            .map(|(d, v)| format!("{d} shows seq {} of {seq}", v.seq)),
    );
    out
}

/// Waits until every command is answered and every screen is at the box's seq.
pub async fn settle(
    ledger: &Shared,
    db: &Path,
    screens: usize,
    within: Duration,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        let seq = box_seq(db)?;
        let left = unsettled(ledger, seq);
        let views = lock(ledger).views.len();
        if left.is_empty() && views == screens {
            return Ok(start.elapsed());
        }
        if start.elapsed() > within {
            anyhow::bail!(
                "not settled after {within:?}: {} (screens with a view: {views} of {screens})",
                left.join("; ")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The oracle: compares what devices were told with the box's SQLite.
pub fn check(db: &Path, ledger: &Shared) -> anyhow::Result<Report> {
    let conn = open(db)?;
    let l = lock(ledger);
    let mut rep = Report {
        sent: l.sent,
        resent: l.resent,
        acked: l.acked.len() as u64,
        rejected: l.rejected.len() as u64,
        reconnects: l.reconnects,
        problems: l.inconsistent.clone(),
        ..Report::default()
    };
    rep.problems.extend(l.stale.iter().cloned());

    let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if integrity != "ok" {
        rep.problems.push(format!("integrity_check: {integrity}"));
    }

    // Every acknowledged command is recorded, with the reply the device got.
    let mut stmt = conn.prepare("SELECT ok, reply FROM commands WHERE device = ?1 AND id = ?2")?;
    for ((device, id), reply) in &l.acked {
        let row: Option<(i64, Vec<u8>)> = stmt
            .query_row([device, id], |r| Ok((r.get(0)?, r.get(1)?)))
            .ok();
        match row {
            None => {
                rep.lost += 1;
                rep.problems
                    .push(format!("{device} {id}: acknowledged, not in SQLite"));
            }
            Some((ok, stored)) => {
                let same = wire::decode::<Reply>(&stored).is_ok_and(|s| s == *reply);
                if ok != 1 || !same {
                    rep.lost += 1;
                    rep.problems
                        .push(format!("{device} {id}: SQLite recorded another outcome"));
                }
            }
        }
    }

    // One command, at most one event; one placement per order.
    let dup_commands: i64 = conn.query_row(
        "SELECT COUNT(*) FROM (SELECT device, command FROM events GROUP BY device, command HAVING COUNT(*) > 1)",
        [],
        |r| r.get(0),
    )?;
    let dup_orders: i64 = conn.query_row(
        "SELECT COUNT(*) FROM (SELECT order_id FROM events WHERE type = 'order_placed' GROUP BY order_id HAVING COUNT(*) > 1)",
        [],
        |r| r.get(0),
    )?;
    rep.duplicated = (dup_commands + dup_orders) as u64;
    if rep.duplicated > 0 {
        rep.problems.push(format!(
            "{dup_commands} commands made more than one event, {dup_orders} orders placed twice"
        ));
    }

    // seq is gapless from 1.
    let (n, lo, hi): (i64, i64, i64) = conn.query_row(
        "SELECT COUNT(*), COALESCE(MIN(seq), 1), COALESCE(MAX(seq), 0) FROM events",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    if n > 0 && (lo != 1 || hi != n) {
        rep.problems
            .push(format!("seq has gaps: {n} events, seq {lo}..={hi}"));
    }

    // Every screen shows exactly the box's open orders for its station, at the box's seq.
    let mut open_orders = Vec::new();
    let mut q = conn.prepare("SELECT body FROM orders WHERE open = 1")?;
    for body in q.query_map([], |r| r.get::<_, Vec<u8>>(0))? {
        open_orders.push(wire::decode::<Order>(&body?)?);
    }
    for (device, view) in &l.views {
        let want: BTreeMap<&str, u64> = open_orders
            .iter()
            .filter(|o| docket_core::shows(&view.station, o))
            .map(|o| (o.id.as_str(), o.version))
            .collect();
        let got: BTreeMap<&str, u64> = view
            .orders
            .values()
            .map(|o| (o.id.as_str(), o.version))
            .collect();
        if want != got || view.seq != hi as u64 {
            rep.problems.push(format!(
                "{device} ({}) at seq {} shows {} orders; the box at seq {hi} has {} for it",
                view.station,
                view.seq,
                got.len(),
                want.len()
            ));
        }
    }
    Ok(rep)
}

/// Stations of the demo menu: one screen each, plus the expo.
pub const STATIONS: [&str; 4] = ["grill", "fry", "cold", "bar"];

/// A restaurant's devices, each behind its own fault proxy to one box.
pub struct Restaurant {
    pub ledger: Shared,
    phase: watch::Sender<Phase>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Device id → the proxy it connects through.
    pub proxies: BTreeMap<String, Arc<crate::faults::FaultProxy>>,
    /// Tablet ids, then screen ids.
    pub tablets: Vec<String>,
    pub screens: Vec<String>,
}

impl Restaurant {
    /// Pairs `tablets` tablets (an order every `interval` each, on average), a screen per
    /// station and an expo, and starts them, each through its own proxy to the box.
    pub async fn open(
        d: &crate::Daemon,
        tablets: usize,
        interval: Duration,
        keep_alive: Duration,
        seed: u64,
    ) -> anyhow::Result<Restaurant> {
        let upstream = std::net::SocketAddr::from((d.host, d.mqtt));
        let (phase, rx) = watch::channel(Phase::Load);
        let ledger = Shared::default();
        let mut r = Restaurant {
            ledger: ledger.clone(),
            phase,
            tasks: Vec::new(),
            proxies: BTreeMap::new(),
            tablets: Vec::new(),
            screens: Vec::new(),
        };
        let mut devices = Vec::new();
        for i in 1..=tablets {
            let id = format!("tablet-{i}");
            devices.push((d.add_device(&id, "tablet", &[])?, Role::Tablet));
            r.tablets.push(id);
        }
        for s in STATIONS {
            let id = format!("kds-{s}");
            devices.push((
                d.add_device(&id, "station", &[s])?,
                Role::Station(s.to_owned()),
            ));
            r.screens.push(id);
        }
        devices.push((d.add_device("expo-1", "expo", &[])?, Role::Expo));
        r.screens.push("expo-1".to_owned());
        for (n, (creds, role)) in devices.into_iter().enumerate() {
            let proxy = Arc::new(crate::faults::FaultProxy::start(upstream).await?);
            let spec = DeviceSpec {
                port: proxy.port(),
                creds: creds.clone(),
                role,
                interval,
                keep_alive,
                seed: seed.wrapping_mul(1000).wrapping_add(n as u64),
            };
            r.proxies.insert(creds.id.clone(), proxy);
            r.tasks
                .push(tokio::spawn(run(spec, rx.clone(), ledger.clone())));
        }
        Ok(r)
    }

    pub fn proxy(&self, device: &str) -> &crate::faults::FaultProxy {
        &self.proxies[device]
    }

    /// Clears every fault, stops new commands, and waits until every command is answered and
    /// every screen is exact; returns how long that took.
    pub async fn heal_and_settle(&self, db: &Path, within: Duration) -> anyhow::Result<Duration> {
        for p in self.proxies.values() {
            p.set(crate::faults::Fault::Clean);
        }
        let _ = self.phase.send(Phase::Drain);
        settle(&self.ledger, db, self.screens.len(), within).await
    }

    /// Stops every device.
    pub async fn close(self) {
        let _ = self.phase.send(Phase::Stop);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }

    /// Commands acknowledged so far.
    pub fn acked(&self) -> usize {
        lock(&self.ledger).acked.len()
    }
}

/// The faults a device's Wi-Fi can have, by name (for the report).
fn wifi_fault(kind: usize, rng: &mut StdRng, blackhole: (Duration, Duration)) -> (Fault, Duration) {
    let secs = |rng: &mut StdRng, lo: f64, hi: f64| Duration::from_secs_f64(rng.gen_range(lo..hi));
    match kind % 7 {
        0 => (
            Fault::Delay {
                fraction: rng.gen_range(0.2..0.4),
                min: Duration::from_millis(200),
                max: Duration::from_millis(2000),
            },
            secs(rng, 3.0, 8.0),
        ),
        1 => (Fault::Stall, secs(rng, 1.0, 5.0)),
        2 => {
            let d = secs(rng, blackhole.0.as_secs_f64(), blackhole.1.as_secs_f64());
            (Fault::Blackhole, d)
        }
        3 => (
            Fault::OneWay {
                box_hears: rng.gen_bool(0.5),
            },
            secs(rng, 1.0, 5.0),
        ),
        4 => (Fault::Reset, secs(rng, 0.2, 1.0)),
        5 => (Fault::HalfClose, secs(rng, 0.2, 1.0)),
        _ => (
            Fault::Flap {
                up: secs(rng, 1.0, 3.0),
                down: secs(rng, 0.5, 2.0),
            },
            secs(rng, 4.0, 10.0),
        ),
    }
}

/// Names of the Wi-Fi faults in the order [`wifi_fault`] numbers them.
pub const WIFI_FAULTS: [&str; 7] = [
    "delayed writes",
    "stall",
    "blackhole",
    "one-way cut",
    "reset mid-packet",
    "half-close",
    "flapping",
];

/// Bad Wi-Fi for every device at once: each goes through faults one after another (device `i`
/// starts with fault `i`, so a short run still has every kind), with clean spells between, until
/// `load` has passed. Then everything heals and the oracle runs. Returns the report and the
/// time to converge after the heal.
pub async fn bad_wifi(
    r: &Restaurant,
    db: &Path,
    load: Duration,
    blackhole: (Duration, Duration),
    seed: u64,
) -> anyhow::Result<(Report, Duration, BTreeMap<&'static str, u64>)> {
    let end = Instant::now() + load;
    let applied: Arc<Mutex<BTreeMap<&'static str, u64>>> = Arc::default();
    let mut scripts = Vec::new();
    for (i, (_, proxy)) in r.proxies.iter().enumerate() {
        let proxy = proxy.clone();
        let applied = applied.clone();
        let mut rng = StdRng::seed_from_u64(seed.wrapping_add(i as u64));
        scripts.push(tokio::spawn(async move {
            let mut kind = i;
            while Instant::now() < end {
                let (fault, hold) = wifi_fault(kind, &mut rng, blackhole);
                *applied
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(WIFI_FAULTS[kind % 7])
                    .or_default() += 1;
                proxy.set(fault);
                tokio::time::sleep_until((Instant::now() + hold).min(end)).await;
                proxy.set(Fault::Clean);
                let calm = Duration::from_millis(rng.gen_range(300..2000));
                tokio::time::sleep_until((Instant::now() + calm).min(end)).await;
                kind = rng.gen_range(0..7);
            }
        }));
    }
    for s in scripts {
        s.await?;
    }
    let converge = r.heal_and_settle(db, Duration::from_secs(90)).await?;
    let report = check(db, &r.ledger)?;
    let applied = applied.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok((report, converge, applied))
}

/// `PRAGMA integrity_check` on the box's database.
pub fn integrity(db: &Path) -> anyhow::Result<String> {
    let conn = open(db)?;
    Ok(conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
}

/// kill -9 of the box at random moments under load, `cycles` times; after each kill the
/// database must pass its integrity check before the box starts again. Returns the time from
/// each restart to READY (the box's /healthz).
pub async fn kill_cycles(
    d: &mut crate::Daemon,
    r: &Restaurant,
    cycles: usize,
    seed: u64,
) -> anyhow::Result<Vec<Duration>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let db = d.db_path();
    let mut restarts = Vec::new();
    for cycle in 1..=cycles {
        let acked = r.acked();
        // Run under load for a while, and at least until something new was acknowledged.
        let until = Instant::now() + Duration::from_millis(rng.gen_range(200..1500));
        let deadline = Instant::now() + crate::DEADLINE;
        while Instant::now() < until || r.acked() == acked {
            anyhow::ensure!(
                Instant::now() < deadline,
                "cycle {cycle}: nothing acknowledged for {:?}",
                crate::DEADLINE
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        d.kill9();
        let ok = integrity(&db)?;
        anyhow::ensure!(ok == "ok", "cycle {cycle}: integrity_check says {ok}");
        let start = Instant::now();
        tokio::task::block_in_place(|| d.restart())?;
        restarts.push(start.elapsed());
    }
    Ok(restarts)
}

/// SIGSTOP (a hung box) for `hold`, then SIGCONT, under load.
pub async fn hang(d: &crate::Daemon, hold: Duration) -> anyhow::Result<()> {
    let pid = d.pid().context("docketd is not running")?.to_string();
    let status = std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()?;
    anyhow::ensure!(status.success(), "kill -STOP failed");
    tokio::time::sleep(hold).await;
    let status = std::process::Command::new("kill")
        .args(["-CONT", &pid])
        .status()?;
    anyhow::ensure!(status.success(), "kill -CONT failed");
    Ok(())
}

/// Head office's copy: waits (up to `within`) until PostgreSQL holds as many of `site`'s events
/// as the box, then checks they are the box's events exactly, once each: seq 1..=N, and the
/// same type, order and version for every seq. Returns the problems found.
pub async fn check_pg(
    pg: &tokio_postgres::Client,
    site: &str,
    db: &Path,
    within: Duration,
) -> anyhow::Result<Vec<String>> {
    let conn = open(db)?;
    let mut stmt = conn.prepare("SELECT seq, type, order_id, version FROM events ORDER BY seq")?;
    let local: Vec<(i64, String, String, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    let start = Instant::now();
    loop {
        let n: i64 = pg
            .query_one(
                "SELECT count(*) FROM docket.events WHERE site_id = $1",
                &[&site],
            )
            .await?
            .get(0);
        if n as usize >= local.len() {
            break;
        }
        if start.elapsed() > within {
            return Ok(vec![format!(
                "PostgreSQL has {n} of the box's {} events after {within:?}",
                local.len()
            )]);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let remote: Vec<(i64, String, String, i64)> = pg
        .query(
            "SELECT seq, type, order_id, version FROM docket.events WHERE site_id = $1 ORDER BY seq",
            &[&site],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let mut problems = Vec::new();
    if remote.len() != local.len() {
        problems.push(format!(
            "PostgreSQL has {} events, the box {}",
            remote.len(),
            local.len()
        ));
    }
    if let Some((l, r)) = local.iter().zip(&remote).find(|(l, r)| l != r) {
        problems.push(format!("first difference: box {l:?}, PostgreSQL {r:?}"));
    }
    Ok(problems)
}
