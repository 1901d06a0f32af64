//! One simulated tablet, station screen or expo of docket-sim: its connection's life (login,
//! reconnect, subscriptions), its timers, and its commands through the shared
//! [`docket_tests::device::Outbox`] (unanswered commands go again with their ids after a
//! reconnect). What it does with replies and boards is in `reply.rs` and `screen.rs`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use docket_core::order::Service;
use docket_core::wire::{self, Board, CommandBody, Reply};
use docket_core::Menu;
use docket_tests::device::{connect_retrying, Backoff, CredsLine, Outbox};
use docket_tests::{Client, Creds, Msg};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::ctx::{uniform, Ctx};
use crate::order::{make_order, Action, Timer};
use crate::screen::Due;

/// A command without a reply after this long is counted as unanswered.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `lead`: the first tablet also picks up held courses left over from an earlier run.
    Tablet {
        lead: bool,
    },
    Station(Vec<String>),
    Expo,
}

pub struct Device {
    pub id: String,
    pub creds: Creds,
    pub kind: Kind,
    pub ctx: Arc<Ctx>,
    pub rng: StdRng,
    /// Commands awaiting their reply, each with what it was for.
    pub outbox: Outbox<Action>,
    pub timers: Vec<(Instant, Timer)>,
    pub menu: Option<Menu>,
    /// Screens: tickets scheduled to be acted on, keyed by (order id, board).
    pub due: HashMap<(String, String), Due>,
    /// Screens: (order id, board) → seq of our accepted bump/complete. A board snapshot older
    /// than that still shows the ticket and must not schedule it again.
    pub done: HashMap<(String, String), u64>,
    /// Lead tablet: left-over held courses were looked for.
    pub adopted: bool,
    /// Boards this device has had a snapshot of: the orders on a first one are an earlier
    /// run's, and become ours.
    pub seen_boards: HashSet<String>,
    /// A station whose cook works from the printer's paper (`--paper`): it says it is no
    /// screen (presence offline) after each login, and bumps all the same.
    pub paper: bool,
}

impl Device {
    pub fn new(index: usize, line: &CredsLine, kind: Kind, ctx: Arc<Ctx>, seed: u64) -> Device {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in line.id.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let mut d = Device {
            id: line.id.clone(),
            creds: line.creds(),
            kind,
            rng: StdRng::seed_from_u64(seed ^ h),
            outbox: Outbox::new(format!("sim-{:016x}-{index}", ctx.run_tag)),
            ctx,
            timers: Vec::new(),
            menu: None,
            due: HashMap::new(),
            done: HashMap::new(),
            adopted: false,
            seen_boards: HashSet::new(),
            paper: false,
        };
        if matches!(d.kind, Kind::Tablet { .. }) && d.ctx.order_gap.is_some() {
            // Start soon, so a short demo shows something at once.
            let first = uniform(&mut d.rng, (0.5, 3.0));
            d.timers.push((Instant::now() + first, Timer::Order));
        }
        d
    }

    pub async fn connect(&self) -> anyhow::Result<Client> {
        let at = &self.ctx.endpoint;
        at.connect(&self.creds)
            .await
            .with_context(|| format!("{} cannot connect to {}:{}", self.id, at.host, at.port))
    }

    /// Runs the device until `stop`, reconnecting after a lost connection.
    pub async fn run(mut self, first: Client, mut stop: watch::Receiver<bool>) {
        let mut client = Some(first);
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(2));
        loop {
            if *stop.borrow() {
                return;
            }
            let mut c = match client.take() {
                Some(c) => c,
                None => match self.reconnect(&mut backoff, &mut stop).await {
                    Some(c) => c,
                    None => return,
                },
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

    /// Logs in again (until `stop`) and resends the unanswered commands with their ids; says
    /// why it cannot once per outage (and when the reason changes), not every retry.
    async fn reconnect(
        &mut self,
        backoff: &mut Backoff,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Client> {
        // The outage began when the first attempt came back; attempts so far; the last error shown.
        let (mut since, mut tries, mut shown) = (None, 0u32, String::new());
        let (ctx, id) = (&self.ctx, &self.id);
        let (host, port) = (&ctx.endpoint.host, ctx.endpoint.port);
        let stopped = async {
            let _ = stop.wait_for(|s| *s).await;
        };
        let mut c = connect_retrying(&ctx.endpoint, &self.creds, backoff, stopped, |e| {
            since.get_or_insert_with(Instant::now);
            tries += 1;
            let why = format!("{id} cannot connect to {host}:{port}: {e:#}");
            if why != shown {
                ctx.say(format_args!("{why}; retrying until it is back"));
                shown = why;
            }
        })
        .await?;
        let since = since.unwrap_or_else(Instant::now);
        let tries = tries + 1;
        let n = self.outbox.resend_all(&mut c).await;
        self.ctx.say(format_args!(
            "{} reconnected after {:.1} s ({tries} attempt{}){}",
            self.id,
            since.elapsed().as_secs_f64(),
            if tries == 1 { "" } else { "s" },
            if n > 0 {
                format!(", resent {n} unanswered command(s) with their ids")
            } else {
                String::new()
            }
        ));
        Some(c)
    }

    /// One connection's life: Ok on stop, Err when the connection is lost.
    async fn session(
        &mut self,
        c: &mut Client,
        stop: &mut watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        if self.paper {
            // No screen at this station: the box's fallback printer prints its tickets.
            c.publish(
                &wire::presence_topic(&self.id),
                wire::encode(&"offline")?,
                true,
            )
            .await?;
        }
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
                    if !self.ctx.ours().contains(&order_id) {
                        continue; // someone else's order: theirs to bump and complete
                    }
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
        // Pending first: if the connection is gone, the command is resent after the reconnect.
        let describe = action.describe();
        let (_, sent) = self.outbox.issue(c, body, action).await;
        sent.with_context(|| format!("sending {describe}"))
    }

    /// The server this tablet stands for: a name per tablet id, as a waiter would type theirs.
    fn server_name(&self) -> String {
        const NAMES: [&str; 6] = ["Ana", "Sam", "Priya", "Leo", "Mia", "Tom"];
        let n = self
            .id
            .bytes()
            .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
        NAMES[n % NAMES.len()].to_owned()
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
        let Some(mut menu) = self.menu.clone() else {
            self.ctx
                .say(format_args!("{} has no menu yet: order skipped", self.id));
            return Ok(());
        };
        // A waiter does not offer what is 86'd.
        menu.items.retain(|i| !i.out);
        if menu.items.is_empty() {
            self.ctx.say(format_args!(
                "{}: everything is 86'd, order skipped",
                self.id
            ));
            return Ok(());
        }
        let (table, lines, held_course) = make_order(&mut self.rng, &menu);
        let action = Action::Place {
            table: table.clone(),
            lines: lines.len(),
            held_course,
        };
        self.send(
            c,
            CommandBody::PlaceOrder {
                service: (table == "takeaway").then_some(Service::Takeaway),
                table,
                lines,
                // Each simulated tablet is one server's.
                server: Some(self.server_name()),
                channel: None,
                reference: None,
            },
            action,
        )
        .await
    }

    /// Gives up on replies that never came.
    /// Gives up on replies that never came.
    fn sweep(&mut self) {
        for (id, p) in self.outbox.expire(REPLY_TIMEOUT) {
            self.ctx.stats.unanswered.fetch_add(1, Relaxed);
            let what = p.tag.describe();
            let secs = REPLY_TIMEOUT.as_secs();
            self.failed(
                &p.tag,
                format_args!("got NO REPLY to {what} (command {id}) within {secs} s"),
            );
        }
    }

    /// A command that failed (rejected, unanswered): the course it fires is free again; one line.
    pub fn failed(&self, action: &Action, line: std::fmt::Arguments<'_>) {
        if let Action::Fire { order_id, .. } = action {
            self.ctx.held().remove(order_id);
        }
        self.ctx.say(format_args!("{} {line}", self.id));
    }
}
