//! `docket-sim`: a restaurant's devices against a running docketd, so the demo's event stream
//! visibly moves.
//!
//! Every device in the credentials file (JSON lines as `docketd device add` prints them) connects
//! as itself and speaks the wire contract over MQTT:
//! - tablets read the retained menu and place orders at Poisson-ish random intervals (1–5 lines,
//!   sometimes a modifier or notes, sometimes a held second course that they fire later);
//! - station screens watch their retained boards and bump each ticket after a prep time;
//! - expo screens complete the orders whose status is `ready`;
//! - manager devices are not simulated.
//!
//! One human line per action on stdout, with the reply's round-trip time. Commands are
//! answered asynchronously: a device never blocks on a reply, so no board or reply is dropped
//! while another is awaited. After a lost connection a device reconnects and resends its
//! unanswered commands with the same ids (the box answers a repeat with the first reply).

use std::collections::{HashMap, HashSet};
use std::fmt::Display;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use docket_core::wire::{self, Board, CommandBody, LineInput, Reply};
use docket_core::{LineStatus, Menu, MenuItem, OrderStatus};
use docket_tests::{Client, Creds, Msg};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::Instant;

/// A command without a reply after this long is counted as unanswered.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Expo waits this long (seconds, uniform) before completing a ready order.
const EXPO_DELAY: (f64, f64) = (1.0, 4.0);
/// A held second course is fired this long (seconds, uniform) after the order was accepted.
const COURSE_DELAY: (f64, f64) = (8.0, 30.0);

#[derive(Parser, Debug)]
#[command(
    name = "docket-sim",
    version,
    about = "Simulates a restaurant's tablets, station screens and expo against a running docketd"
)]
struct Args {
    /// The appliance's MQTT 3.1.1 listener.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:1884")]
    mqtt: String,
    /// Device credentials: JSON lines as `docketd device add` prints them
    /// ({"id","role","secret"[,"stations"]}).
    #[arg(long, value_name = "FILE")]
    creds: PathBuf,
    /// Orders per minute per tablet (mean of random, Poisson-like arrivals; 0 = none).
    #[arg(long, value_name = "N", default_value_t = 6.0)]
    rate_per_min: f64,
    /// Stop after this many seconds (0 = until Ctrl-C or SIGTERM).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    duration: u64,
    /// Shortest prep time at a station, in seconds (bar and cold work in the lower part of the
    /// range, grill in the upper).
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    prep_min: f64,
    /// Longest prep time at a station, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 20.0)]
    prep_max: f64,
    /// Seed of the random choices (default: from the clock); printed at start.
    #[arg(long)]
    seed: Option<u64>,
    /// Exit 1 if any command was rejected or went unanswered, a connection dropped, or tablets
    /// placed no order at all (for smoke tests).
    #[arg(long)]
    check: bool,
}

/// One line of the credentials file.
#[derive(Debug, Clone, Deserialize)]
struct DeviceLine {
    id: String,
    role: String,
    secret: String,
    #[serde(default)]
    stations: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// `lead`: the first tablet also picks up held courses left over from an earlier run.
    Tablet {
        lead: bool,
    },
    Station(Vec<String>),
    Expo,
}

/// Counters for the summary (and `--check`).
#[derive(Default)]
struct Stats {
    placed: AtomicU64,
    fired: AtomicU64,
    bumped: AtomicU64,
    completed: AtomicU64,
    rejected: AtomicU64,
    unanswered: AtomicU64,
    drops: AtomicU64,
    rtt_us: Mutex<Vec<u64>>,
}

/// What every device shares.
struct Ctx {
    start: Instant,
    host: String,
    port: u16,
    /// Mean seconds between two orders of one tablet; `None` = tablets place no orders.
    order_gap: Option<f64>,
    prep: (f64, f64),
    /// Per-run random tag: command ids are unique forever, across runs.
    run_tag: u64,
    stats: Stats,
    /// Orders whose held course some tablet will fire (so the lead tablet doesn't fire it too).
    held: Mutex<HashSet<String>>,
}

impl Ctx {
    /// One human line on stdout. A closed stdout is not worth dying for.
    fn say(&self, line: impl Display) {
        let t = self.start.elapsed().as_secs_f64();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "[{t:7.1}s] {line}");
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

enum Timer {
    /// A tablet's next order.
    Order,
    /// A tablet fires a held course.
    Fire {
        order_id: String,
        ticket: u64,
        course: u32,
    },
    /// A screen bumps (station) or completes (expo) a ticket on `board`.
    Act { order_id: String, board: String },
}

#[derive(Debug, Clone)]
enum Action {
    Place {
        table: String,
        lines: usize,
        held_course: Option<u32>,
    },
    Fire {
        order_id: String,
        ticket: u64,
        course: u32,
    },
    Bump {
        order_id: String,
        ticket: u64,
        station: String,
    },
    Complete {
        order_id: String,
        ticket: u64,
        table: String,
    },
}

impl Action {
    /// (order, board) this action acts on, for screens.
    fn target(&self) -> Option<(&str, &str)> {
        match self {
            Action::Bump {
                order_id, station, ..
            } => Some((order_id, station)),
            Action::Complete { order_id, .. } => Some((order_id, wire::EXPO)),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Action::Place { table, .. } => format!("place_order for table {table}"),
            Action::Fire {
                order_id, course, ..
            } => format!("fire_course {course} of {order_id}"),
            Action::Bump {
                order_id, station, ..
            } => format!("bump of {order_id} at {station}"),
            Action::Complete { order_id, .. } => format!("complete of {order_id}"),
        }
    }
}

struct Pending {
    sent: Instant,
    body: CommandBody,
    action: Action,
    resent: bool,
}

/// A ticket a screen will act on: shown for the printed line.
#[derive(Debug, Clone)]
struct Due {
    ticket: u64,
    table: String,
}

struct Device {
    index: usize,
    id: String,
    creds: Creds,
    kind: Kind,
    ctx: Arc<Ctx>,
    rng: StdRng,
    next_cmd: u64,
    pending: HashMap<String, Pending>,
    timers: Vec<(Instant, Timer)>,
    menu: Option<Menu>,
    /// Screens: tickets scheduled to be acted on, keyed by (order id, board).
    due: HashMap<(String, String), Due>,
    /// Screens: (order id, board) → seq of our accepted bump/complete. A board snapshot older
    /// than that still shows the ticket and must not schedule it again.
    done: HashMap<(String, String), u64>,
    /// Lead tablet: left-over held courses were looked for.
    adopted: bool,
}

fn uniform(rng: &mut StdRng, (lo, hi): (f64, f64)) -> Duration {
    let s = if hi > lo { rng.gen_range(lo..hi) } else { lo };
    Duration::from_secs_f64(s.max(0.0))
}

/// The part of the prep range a station works in: a drink is poured faster than a steak is
/// grilled (stations the demo menu does not know use the whole range).
fn prep_window((lo, hi): (f64, f64), station: &str) -> (f64, f64) {
    let (a, b) = match station {
        "bar" => (0.0, 0.2),
        "cold" => (0.0, 0.5),
        "fry" => (0.1, 0.7),
        "grill" => (0.2, 1.0),
        _ => (0.0, 1.0),
    };
    let span = hi - lo;
    (lo + a * span, lo + b * span)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

const NOTES: [&str; 10] = [
    "nut allergy",
    "sauce on the side",
    "birthday: candle please",
    "no rush, long lunch",
    "rush please",
    "share plates",
    "gluten free please",
    "kids' portion",
    "shellfish allergy",
    "extra napkins",
];

impl Device {
    fn new(index: usize, line: &DeviceLine, kind: Kind, ctx: Arc<Ctx>, seed: u64) -> Device {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in line.id.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let mut d = Device {
            index,
            id: line.id.clone(),
            creds: Creds {
                id: line.id.clone(),
                role: line.role.clone(),
                secret: line.secret.clone(),
            },
            kind,
            ctx,
            rng: StdRng::seed_from_u64(seed ^ h),
            next_cmd: 0,
            pending: HashMap::new(),
            timers: Vec::new(),
            menu: None,
            due: HashMap::new(),
            done: HashMap::new(),
            adopted: false,
        };
        if matches!(d.kind, Kind::Tablet { .. }) && d.ctx.order_gap.is_some() {
            // Start soon, so a short demo shows something at once.
            let first = uniform(&mut d.rng, (0.5, 3.0));
            d.timers.push((Instant::now() + first, Timer::Order));
        }
        d
    }

    async fn connect(&self) -> anyhow::Result<Client> {
        Client::connect_to(&self.ctx.host, self.ctx.port, &self.creds)
            .await
            .with_context(|| {
                format!(
                    "{} cannot connect to {}:{}",
                    self.id, self.ctx.host, self.ctx.port
                )
            })
    }

    /// Runs the device until `stop`, reconnecting after a lost connection.
    async fn run(mut self, first: Client, mut stop: watch::Receiver<bool>) {
        let mut client = Some(first);
        let mut backoff = Duration::from_millis(500);
        // The current outage: when it began, attempts so far, the last error shown.
        let mut outage: Option<(Instant, u32, String)> = None;
        loop {
            if *stop.borrow() {
                return;
            }
            let mut c = match client.take() {
                Some(c) => c,
                None => {
                    let attempt = tokio::select! {
                        r = self.connect() => r,
                        _ = stop.changed() => return,
                    };
                    let (since, tries, shown) =
                        outage.get_or_insert_with(|| (Instant::now(), 0, String::new()));
                    *tries += 1;
                    match attempt {
                        Ok(mut c) => {
                            let n = self.resend(&mut c).await;
                            self.ctx.say(format_args!(
                                "{} reconnected after {:.1} s ({tries} attempt{}){}",
                                self.id,
                                since.elapsed().as_secs_f64(),
                                if *tries == 1 { "" } else { "s" },
                                if n > 0 {
                                    format!(", resent {n} unanswered command(s) with their ids")
                                } else {
                                    String::new()
                                }
                            ));
                            backoff = Duration::from_millis(500);
                            outage = None;
                            c
                        }
                        Err(e) => {
                            // Once per outage (and when the reason changes), not every retry.
                            let why = format!("{e:#}");
                            if why != *shown {
                                self.ctx
                                    .say(format_args!("{why}; retrying until it is back"));
                                *shown = why;
                            }
                            tokio::select! {
                                _ = tokio::time::sleep(backoff) => {}
                                _ = stop.changed() => return,
                            }
                            backoff = (backoff * 2).min(Duration::from_secs(2));
                            continue;
                        }
                    }
                }
            };
            match self.session(&mut c, &mut stop).await {
                Ok(()) => {
                    // A graceful goodbye: presence offline (the will only fires on a drop).
                    if let Ok(p) = wire::encode(&"offline") {
                        let _ = c.publish(&wire::presence_topic(&self.id), p, true).await;
                    }
                    c.disconnect().await;
                    return;
                }
                Err(_) if *stop.borrow() => return, // the box went away as we were stopping
                Err(e) => {
                    self.ctx.stats.drops.fetch_add(1, Relaxed);
                    self.ctx.say(format_args!(
                        "{} lost its connection ({e:#}); reconnecting",
                        self.id
                    ));
                }
            }
        }
    }

    /// Sends unanswered commands again with their ids; returns how many.
    async fn resend(&mut self, c: &mut Client) -> usize {
        let mut n = 0;
        for (id, p) in self.pending.iter_mut() {
            if c.send_as(id, &p.body).await.is_ok() {
                p.resent = true;
                p.sent = Instant::now();
                n += 1;
            }
        }
        n
    }

    /// One connection's life: Ok on stop, Err when the connection is lost.
    async fn session(
        &mut self,
        c: &mut Client,
        stop: &mut watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let expo_board = wire::board_topic(wire::EXPO);
        let mut watching_expo = false;
        match &self.kind {
            Kind::Tablet { lead } => {
                c.subscribe(wire::MENU_TOPIC).await?;
                if *lead && !self.adopted {
                    c.subscribe(&expo_board).await?;
                    watching_expo = true;
                }
            }
            Kind::Station(stations) => {
                for s in stations {
                    c.subscribe(&wire::board_topic(s)).await?;
                }
            }
            Kind::Expo => c.subscribe(&expo_board).await?,
        }
        let mut sweep = tokio::time::interval(Duration::from_secs(1));
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            let wake = self
                .timers
                .iter()
                .map(|(t, _)| *t)
                .min()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                biased;
                r = stop.changed() => {
                    if r.is_err() || *stop.borrow() {
                        return Ok(());
                    }
                }
                m = c.recv() => match m {
                    Some(m) => self.on_msg(m),
                    None => bail!("the broker closed it"),
                },
                _ = tokio::time::sleep_until(wake) => self.run_timers(c).await?,
                _ = sweep.tick() => self.sweep(),
            }
            if watching_expo && self.adopted {
                c.client
                    .unsubscribe(&expo_board)
                    .await
                    .context("unsubscribe")?;
                watching_expo = false;
            }
        }
    }

    fn on_msg(&mut self, m: Msg) {
        if m.topic == wire::reply_topic(&self.id) {
            match wire::decode::<Reply>(&m.payload) {
                Ok(r) => self.on_reply(r),
                Err(e) => self
                    .ctx
                    .say(format_args!("{} got an undecodable reply: {e}", self.id)),
            }
        } else if m.topic == wire::MENU_TOPIC {
            match wire::decode::<Menu>(&m.payload) {
                Ok(menu) if !menu.items.is_empty() => {
                    if self.menu.as_ref().map(|old| old.version) != Some(menu.version) {
                        self.ctx.say(format_args!(
                            "{} has menu v{} ({} items)",
                            self.id,
                            menu.version,
                            menu.items.len()
                        ));
                    }
                    self.menu = Some(menu);
                }
                Ok(_) => {}
                Err(e) => self
                    .ctx
                    .say(format_args!("{} got an undecodable menu: {e}", self.id)),
            }
        } else if m.topic.starts_with("docket/v1/board/") {
            match wire::decode::<Board>(&m.payload) {
                Ok(b) => self.on_board(b),
                Err(e) => self.ctx.say(format_args!(
                    "{} got an undecodable board on {}: {e}",
                    self.id, m.topic
                )),
            }
        }
    }

    fn on_reply(&mut self, r: Reply) {
        let Some(p) = self.pending.remove(&r.command) else {
            return; // a repeat, or a reply we already gave up on
        };
        let rtt = p.sent.elapsed();
        let stats = &self.ctx.stats;
        if let Ok(mut v) = stats.rtt_us.lock() {
            v.push(rtt.as_micros() as u64);
        }
        let resent = if p.resent { " (resent)" } else { "" };
        if !r.ok {
            stats.rejected.fetch_add(1, Relaxed);
            let (code, message) = r
                .error
                .map(|e| (e.code.to_string(), e.message))
                .unwrap_or_else(|| ("?".into(), "no error given".into()));
            if let Action::Fire { order_id, .. } = &p.action {
                self.ctx.held().remove(order_id);
            }
            self.ctx.say(format_args!(
                "{} REJECTED {}: {code}: {message} in {}{resent}",
                self.id,
                p.action.describe(),
                ms(rtt)
            ));
            return;
        }
        let order_id = r.order_id.clone().unwrap_or_else(|| "?".into());
        match p.action {
            Action::Place {
                table,
                lines,
                held_course,
            } => {
                stats.placed.fetch_add(1, Relaxed);
                let ticket = r.ticket.unwrap_or(0);
                let held = match held_course {
                    Some(course) => {
                        let after = uniform(&mut self.rng, COURSE_DELAY);
                        self.ctx.held().insert(order_id.clone());
                        self.timers.push((
                            Instant::now() + after,
                            Timer::Fire {
                                order_id: order_id.clone(),
                                ticket,
                                course,
                            },
                        ));
                        format!(", course {course} held")
                    }
                    None => String::new(),
                };
                self.ctx.say(format_args!(
                    "{} placed {order_id} ticket {ticket} table {table} ({lines} line{}{held}) in {}{resent}",
                    self.id,
                    if lines == 1 { "" } else { "s" },
                    ms(rtt)
                ));
            }
            Action::Fire {
                order_id,
                ticket,
                course,
            } => {
                stats.fired.fetch_add(1, Relaxed);
                self.ctx.held().remove(&order_id);
                self.ctx.say(format_args!(
                    "{} fired course {course} of {order_id} ticket {ticket} in {}{resent}",
                    self.id,
                    ms(rtt)
                ));
            }
            Action::Bump {
                order_id,
                ticket,
                station,
            } => {
                stats.bumped.fetch_add(1, Relaxed);
                self.done
                    .insert((order_id.clone(), station.clone()), r.seq.unwrap_or(0));
                self.ctx.say(format_args!(
                    "{} bumped {order_id} ticket {ticket} at {station} in {}{resent}",
                    self.id,
                    ms(rtt)
                ));
            }
            Action::Complete {
                order_id,
                ticket,
                table,
            } => {
                stats.completed.fetch_add(1, Relaxed);
                self.done
                    .insert((order_id.clone(), wire::EXPO.into()), r.seq.unwrap_or(0));
                self.ctx.say(format_args!(
                    "{} completed {order_id} ticket {ticket} table {table} in {}{resent}",
                    self.id,
                    ms(rtt)
                ));
            }
        }
    }

    fn in_flight(&self, order_id: &str, board: &str) -> bool {
        self.pending
            .values()
            .any(|p| p.action.target() == Some((order_id, board)))
    }

    fn on_board(&mut self, b: Board) {
        let name = b.station.clone();
        let expo = name == wire::EXPO;
        // Which tickets on this board are ours to act on.
        let ours: fn(&docket_core::Order, &str) -> bool = match &self.kind {
            Kind::Station(list) if list.contains(&name) => |o, station| o.on_station(station),
            Kind::Expo if expo => |o, _| o.status == OrderStatus::Ready,
            Kind::Tablet { lead: true } if expo && !self.adopted => {
                self.adopt(&b);
                return;
            }
            _ => return,
        };
        let wanted: Vec<(String, Due)> = b
            .orders
            .iter()
            .filter(|o| ours(o, &name))
            .map(|o| {
                let due = Due {
                    ticket: o.ticket,
                    table: o.table.clone(),
                };
                (o.id.clone(), due)
            })
            .collect();
        let present: HashSet<&str> = wanted.iter().map(|(id, _)| id.as_str()).collect();
        self.due
            .retain(|(o, board), _| board != &name || present.contains(o.as_str()));
        for (order_id, due) in &wanted {
            let key = (order_id.clone(), name.clone());
            if self.due.contains_key(&key) || self.in_flight(order_id, &name) {
                continue;
            }
            if self.done.get(&key).is_some_and(|seq| b.seq < *seq) {
                continue; // a snapshot from before our bump/complete
            }
            self.done.remove(&key);
            let delay = if expo {
                uniform(&mut self.rng, EXPO_DELAY)
            } else {
                uniform(&mut self.rng, prep_window(self.ctx.prep, &name))
            };
            self.due.insert(key, due.clone());
            self.timers.push((
                Instant::now() + delay,
                Timer::Act {
                    order_id: order_id.clone(),
                    board: name.clone(),
                },
            ));
        }
        // Marks the snapshot has caught up with are settled.
        self.done
            .retain(|(_, board), seq| board != &name || b.seq < *seq);
    }

    /// Lead tablet, once: fire courses left held by an earlier run (nobody else would).
    fn adopt(&mut self, b: &Board) {
        self.adopted = true;
        for o in b.orders.iter().filter(|o| o.is_open()) {
            let Some(course) = o
                .lines
                .iter()
                .filter(|l| l.status == LineStatus::Held)
                .map(|l| l.course)
                .min()
            else {
                continue;
            };
            if !self.ctx.held().insert(o.id.clone()) {
                continue;
            }
            let after = uniform(&mut self.rng, (3.0, 12.0));
            self.ctx.say(format_args!(
                "{} picked up {} ticket {}: course {course} still held, fires in {:.0} s",
                self.id,
                o.id,
                o.ticket,
                after.as_secs_f64()
            ));
            self.timers.push((
                Instant::now() + after,
                Timer::Fire {
                    order_id: o.id.clone(),
                    ticket: o.ticket,
                    course,
                },
            ));
        }
    }

    async fn run_timers(&mut self, c: &mut Client) -> anyhow::Result<()> {
        let now = Instant::now();
        let (ready, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.timers)
            .into_iter()
            .partition(|(t, _)| *t <= now);
        self.timers = later;
        for (_, timer) in ready {
            match timer {
                Timer::Order => self.place(c).await?,
                Timer::Fire {
                    order_id,
                    ticket,
                    course,
                } => {
                    let body = CommandBody::FireCourse {
                        order_id: order_id.clone(),
                        course,
                    };
                    let action = Action::Fire {
                        order_id,
                        ticket,
                        course,
                    };
                    self.send(c, body, action).await?;
                }
                Timer::Act { order_id, board } => {
                    let Some(due) = self.due.remove(&(order_id.clone(), board.clone())) else {
                        continue; // gone from the board meanwhile
                    };
                    let (body, action) = if board == wire::EXPO {
                        (
                            CommandBody::Complete {
                                order_id: order_id.clone(),
                            },
                            Action::Complete {
                                order_id,
                                ticket: due.ticket,
                                table: due.table,
                            },
                        )
                    } else {
                        (
                            CommandBody::Bump {
                                order_id: order_id.clone(),
                                station: board.clone(),
                            },
                            Action::Bump {
                                order_id,
                                ticket: due.ticket,
                                station: board,
                            },
                        )
                    };
                    self.send(c, body, action).await?;
                }
            }
        }
        Ok(())
    }

    async fn send(
        &mut self,
        c: &mut Client,
        body: CommandBody,
        action: Action,
    ) -> anyhow::Result<()> {
        self.next_cmd += 1;
        let id = format!(
            "sim-{:016x}-{}-{}",
            self.ctx.run_tag, self.index, self.next_cmd
        );
        // Pending first: if the connection is gone, the command is resent after the reconnect.
        let describe = action.describe();
        let p = Pending {
            sent: Instant::now(),
            body,
            action,
            resent: false,
        };
        let sent = c.send_as(&id, &p.body).await;
        self.pending.insert(id, p);
        sent.with_context(|| format!("sending {describe}"))
    }

    /// Places one order and schedules the next.
    async fn place(&mut self, c: &mut Client) -> anyhow::Result<()> {
        let Some(gap) = self.ctx.order_gap else {
            return Ok(());
        };
        // Poisson arrivals: exponential gaps with the configured mean.
        let u: f64 = self.rng.gen_range(0.0..1.0);
        let next = Duration::from_secs_f64((-(1.0 - u).ln() * gap).clamp(0.2, gap * 8.0));
        self.timers.push((Instant::now() + next, Timer::Order));
        let Some(menu) = self.menu.clone() else {
            self.ctx
                .say(format_args!("{} has no menu yet: order skipped", self.id));
            return Ok(());
        };
        let (table, lines, held_course) = make_order(&mut self.rng, &menu);
        let action = Action::Place {
            table: table.clone(),
            lines: lines.len(),
            held_course,
        };
        self.send(c, CommandBody::PlaceOrder { table, lines }, action)
            .await
    }

    /// Gives up on replies that never came.
    fn sweep(&mut self) {
        let late: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.sent.elapsed() > REPLY_TIMEOUT)
            .map(|(id, _)| id.clone())
            .collect();
        for id in late {
            if let Some(p) = self.pending.remove(&id) {
                self.ctx.stats.unanswered.fetch_add(1, Relaxed);
                if let Action::Fire { order_id, .. } = &p.action {
                    self.ctx.held().remove(order_id);
                }
                self.ctx.say(format_args!(
                    "{} got NO REPLY to {} (command {id}) within {} s",
                    self.id,
                    p.action.describe(),
                    REPLY_TIMEOUT.as_secs()
                ));
            }
        }
    }
}

fn in_category<'a>(menu: &'a Menu, cats: &[&str]) -> Vec<&'a MenuItem> {
    menu.items
        .iter()
        .filter(|i| i.category.as_deref().is_some_and(|c| cats.contains(&c)))
        .collect()
}

fn or_all<'a>(menu: &'a Menu, pool: Vec<&'a MenuItem>) -> Vec<&'a MenuItem> {
    if pool.is_empty() {
        menu.items.iter().collect()
    } else {
        pool
    }
}

/// A realistic order: (table, lines, the held course if any).
fn make_order(rng: &mut StdRng, menu: &Menu) -> (String, Vec<LineInput>, Option<u32>) {
    let table = match rng.gen_range(0..100) {
        0..=79 => rng.gen_range(1..=24).to_string(),
        80..=91 => format!("bar-{}", rng.gen_range(1..=8)),
        _ => "takeaway".to_owned(),
    };
    let n: usize = [1, 2, 2, 2, 3, 3, 3, 4, 4, 5][rng.gen_range(0..10)];
    let second = n >= 2 && rng.gen_bool(0.25);
    let (first_pool, second_pool) = if second {
        (
            or_all(menu, in_category(menu, &["Starters", "Drinks", "Sides"])),
            or_all(menu, in_category(menu, &["Mains", "Desserts"])),
        )
    } else {
        let not_dessert: Vec<&MenuItem> = menu
            .items
            .iter()
            .filter(|i| i.category.as_deref() != Some("Desserts"))
            .collect();
        (or_all(menu, not_dessert), Vec::new())
    };
    let n2 = if !second {
        0
    } else if n >= 4 {
        rng.gen_range(1..=2)
    } else {
        1
    };
    let mut lines: Vec<LineInput> = Vec::with_capacity(n);
    for k in 0..n {
        let (pool, course) = if k < n - n2 {
            (&first_pool, None)
        } else {
            (&second_pool, Some(2))
        };
        let item = pool[rng.gen_range(0..pool.len())];
        let mut mods = Vec::new();
        if !item.mods.is_empty() && rng.gen_bool(0.3) {
            let a = rng.gen_range(0..item.mods.len());
            mods.push(item.mods[a].clone());
            if item.mods.len() > 1 && rng.gen_bool(0.2) {
                let b = (a + rng.gen_range(1..item.mods.len())) % item.mods.len();
                mods.push(item.mods[b].clone());
            }
        }
        let notes = rng
            .gen_bool(0.1)
            .then(|| NOTES[rng.gen_range(0..NOTES.len())].to_owned());
        let qty = match rng.gen_range(0..100) {
            0..=74 => 1,
            75..=94 => 2,
            _ => rng.gen_range(3..=4),
        };
        // The same plain item twice is one line with a bigger qty, as a tablet would send it.
        if mods.is_empty() && notes.is_none() {
            if let Some(l) = lines.iter_mut().find(|l| {
                l.item == item.id && l.course == course && l.mods.is_empty() && l.notes.is_none()
            }) {
                l.qty += qty;
                continue;
            }
        }
        lines.push(LineInput {
            item: item.id.clone(),
            qty,
            mods,
            notes,
            course,
        });
    }
    let held = lines.iter().any(|l| l.course == Some(2)).then_some(2);
    (table, lines, held)
}

fn read_creds(path: &Path) -> anyhow::Result<Vec<DeviceLine>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the credentials file {}", path.display()))?;
    let mut out: Vec<DeviceLine> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let d: DeviceLine = serde_json::from_str(line).with_context(|| {
            format!(
                "{}:{}: not a device line as `docketd device add` prints it",
                path.display(),
                n + 1
            )
        })?;
        let secret_ok = hex::decode(&d.secret).is_ok_and(|s| s.len() == 32);
        if !secret_ok {
            bail!(
                "{}:{}: the secret of {} is not 64 hex characters",
                path.display(),
                n + 1,
                d.id
            );
        }
        if out.iter().any(|o| o.id == d.id) {
            bail!(
                "{}:{}: device {} appears twice (one client id = one connection)",
                path.display(),
                n + 1,
                d.id
            );
        }
        out.push(d);
    }
    Ok(out)
}

fn parse_host_port(s: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = s
        .rsplit_once(':')
        .with_context(|| format!("--mqtt {s:?}: expected HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .with_context(|| format!("--mqtt {s:?}: {port:?} is not a port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        bail!("--mqtt {s:?}: expected HOST:PORT");
    }
    Ok((host.to_owned(), port))
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

/// Resolves when the run should stop: Ctrl-C, SIGTERM or the duration. A second signal exits
/// at once.
async fn stop_signal(duration: u64, ctx: Arc<Ctx>, stop: watch::Sender<bool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => Some(s),
        Err(e) => {
            ctx.say(format_args!("docket-sim: cannot watch SIGTERM: {e}"));
            None
        }
    };
    let until = async {
        if duration == 0 {
            std::future::pending::<()>().await
        } else {
            tokio::time::sleep(Duration::from_secs(duration)).await
        }
    };
    let term_recv = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    let why = tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupted",
        _ = term_recv => "terminated",
        _ = until => "duration reached",
    };
    ctx.say(format_args!("docket-sim: {why}, disconnecting"));
    let _ = stop.send(true);
    let again = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = again => {}
    }
    std::process::exit(130);
}

async fn run(args: Args) -> anyhow::Result<bool> {
    if !args.rate_per_min.is_finite() || args.rate_per_min < 0.0 {
        bail!("--rate-per-min must be a number >= 0");
    }
    if !(args.prep_min >= 0.0 && args.prep_max >= args.prep_min && args.prep_max.is_finite()) {
        bail!("--prep-min and --prep-max must satisfy 0 <= min <= max");
    }
    let (host, port) = parse_host_port(&args.mqtt)?;
    let lines = read_creds(&args.creds)?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let ctx = Arc::new(Ctx {
        start: Instant::now(),
        host,
        port,
        order_gap: (args.rate_per_min > 0.0).then(|| 60.0 / args.rate_per_min),
        prep: (args.prep_min, args.prep_max),
        run_tag: rand::random(),
        stats: Stats::default(),
        held: Mutex::new(HashSet::new()),
    });

    let mut devices = Vec::new();
    let mut skipped = Vec::new();
    let mut lead = true;
    for (i, l) in lines.iter().enumerate() {
        let kind = match l.role.as_str() {
            "tablet" => {
                let k = Kind::Tablet { lead };
                lead = false;
                k
            }
            "station" => {
                if l.stations.is_empty() {
                    bail!(
                        "{} is a station device but its line has no \"stations\"",
                        l.id
                    );
                }
                Kind::Station(l.stations.clone())
            }
            "expo" => Kind::Expo,
            other => {
                skipped.push(format!("{} ({other})", l.id));
                continue;
            }
        };
        devices.push(Device::new(i, l, kind, ctx.clone(), seed));
    }
    if devices.is_empty() {
        bail!(
            "no tablet, station or expo device in {}",
            args.creds.display()
        );
    }
    let tablets = devices
        .iter()
        .filter(|d| matches!(d.kind, Kind::Tablet { .. }))
        .count();

    // Every device must log in once; after that, lost connections are retried.
    let mut connecting = Vec::new();
    for d in devices {
        connecting.push(tokio::spawn(async move {
            let r = d.connect().await;
            (d, r)
        }));
    }
    let mut connected = Vec::new();
    for h in connecting {
        let (d, r) = h.await.context("a connecting task failed")?;
        connected.push((d, r?));
    }
    let names: Vec<String> = connected
        .iter()
        .map(|(d, _)| match &d.kind {
            Kind::Tablet { .. } => format!("{} (tablet)", d.id),
            Kind::Station(s) => format!("{} ({})", d.id, s.join(",")),
            Kind::Expo => format!("{} (expo)", d.id),
        })
        .collect();
    ctx.say(format_args!(
        "docket-sim: {} devices connected to {}:{}: {}{}",
        names.len(),
        ctx.host,
        ctx.port,
        names.join(", "),
        if skipped.is_empty() {
            String::new()
        } else {
            format!("; not simulated: {}", skipped.join(", "))
        }
    ));
    ctx.say(format_args!(
        "docket-sim: {} orders/min per tablet, prep {}-{} s, seed {seed}{}",
        args.rate_per_min,
        args.prep_min,
        args.prep_max,
        if args.duration > 0 {
            format!(", for {} s", args.duration)
        } else {
            ", until Ctrl-C".to_owned()
        }
    ));

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(stop_signal(args.duration, ctx.clone(), stop_tx));
    let mut running = Vec::new();
    for (d, c) in connected {
        running.push(tokio::spawn(d.run(c, stop_rx.clone())));
    }
    for h in running {
        if let Err(e) = h.await {
            ctx.say(format_args!("docket-sim: a device task failed: {e}"));
        }
    }

    let s = &ctx.stats;
    let mut rtt = s
        .rtt_us
        .lock()
        .map(|v| v.clone())
        .unwrap_or_else(|e| e.into_inner().clone());
    rtt.sort_unstable();
    let (placed, rejected, unanswered, drops) = (
        s.placed.load(Relaxed),
        s.rejected.load(Relaxed),
        s.unanswered.load(Relaxed),
        s.drops.load(Relaxed),
    );
    ctx.say(format_args!(
        "docket-sim: {placed} orders placed, {} courses fired, {} tickets bumped, {} orders completed; \
         {rejected} rejected, {unanswered} unanswered, {drops} dropped connections",
        s.fired.load(Relaxed),
        s.bumped.load(Relaxed),
        s.completed.load(Relaxed),
    ));
    if !rtt.is_empty() {
        ctx.say(format_args!(
            "docket-sim: reply round trip over {} commands: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            rtt.len(),
            percentile(&rtt, 0.5),
            percentile(&rtt, 0.99),
            percentile(&rtt, 1.0)
        ));
    }
    if args.check {
        let mut problems = Vec::new();
        if rejected + unanswered + drops > 0 {
            problems.push(format!(
                "{rejected} rejected, {unanswered} unanswered, {drops} dropped connections"
            ));
        }
        if tablets > 0 && ctx.order_gap.is_some() && placed == 0 {
            problems.push("no order was placed".to_owned());
        }
        if !problems.is_empty() {
            ctx.say(format_args!(
                "docket-sim: CHECK FAILED: {}",
                problems.join("; ")
            ));
            return Ok(false);
        }
        ctx.say("docket-sim: check passed");
    }
    Ok(true)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("docket-sim: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("docket-sim: {e:#}");
            ExitCode::FAILURE
        }
    }
}
