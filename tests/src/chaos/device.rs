//! The fault campaign's device: a well-written tablet or screen that follows docs/protocol.md,
//! built on the shared [`crate::device`] parts. A tablet places orders; a screen follows its
//! board ([`Follower`]) and bumps (station) or completes (expo) its tickets after a short prep
//! time. Every command keeps its id until answered ([`Outbox`]), goes again with it after each
//! reconnect and every few seconds while unanswered. Writes what it was told into the shared
//! [`Observations`]; must not judge them (that is the oracle's, `oracle.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use docket_core::wire::{self, CommandBody, Event, Reply};
use docket_core::{Order, OrderStatus};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{lock, DeviceSpec, Phase, Role, Shared};
use crate::device::{connect_retrying, Backoff, Endpoint, Follower, Outbox, Replayed};
use crate::{line, Client, View};

/// An unanswered command re-sent after this long without a reply.
const RESEND: Duration = Duration::from_secs(3);
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

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

struct Device {
    spec: DeviceSpec,
    observed: Shared,
    rng: StdRng,
    outbox: Outbox,
    next_order: Instant,
    /// Screens: what they show.
    follow: Follower,
    /// Screens: when to act on each order that is theirs to bump or complete.
    due: BTreeMap<String, Instant>,
}

/// Runs one device until the phase is `Stop`.
pub async fn run(spec: DeviceSpec, mut phase: watch::Receiver<Phase>, observed: Shared) {
    let endpoint = Endpoint::plain("127.0.0.1", spec.port).keep_alive(spec.keep_alive);
    let mut d = Device {
        rng: StdRng::seed_from_u64(spec.seed),
        next_order: Instant::now(),
        outbox: Outbox::new(format!("{}-{}", spec.creds.id, spec.seed)),
        spec,
        observed,
        follow: Follower::default(),
        due: BTreeMap::new(),
    };
    d.next_order = Instant::now() + d.gap();
    let mut backoff = Backoff::new(Duration::from_millis(100), MAX_BACKOFF);
    let mut connected_before = false;
    loop {
        let stopped = async {
            let _ = phase.wait_for(|p| *p == Phase::Stop).await;
        };
        let creds = &d.spec.creds;
        let Some(mut c) = connect_retrying(&endpoint, creds, &mut backoff, stopped, |_| {}).await
        else {
            return;
        };
        if connected_before {
            lock(&d.observed).reconnects += 1;
        }
        connected_before = true;
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

    /// One connection's life; true when the phase is `Stop`, false when the connection is lost.
    async fn session(&mut self, c: &mut Client, phase: &mut watch::Receiver<Phase>) -> bool {
        self.follow.restart();
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
        for id in self.outbox.ids() {
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

    /// Re-sends a pending command; false if the connection is gone.
    async fn send(&mut self, c: &mut Client, id: &str) -> bool {
        if !self.outbox.contains(id) {
            return true;
        }
        lock(&self.observed).resent += 1;
        self.outbox.resend(c, id).await.is_ok()
    }

    async fn issue(&mut self, c: &mut Client, body: CommandBody) -> bool {
        let (_, sent) = self.outbox.issue(c, body, ()).await;
        {
            let mut l = lock(&self.observed);
            l.sent += 1;
            l.pending
                .insert(self.spec.creds.id.clone(), self.outbox.len());
        }
        sent.is_ok()
    }

    async fn on_tick(&mut self, c: &mut Client, phase: Phase) -> bool {
        let now = Instant::now();
        if phase == Phase::Load && !self.work(c, now).await {
            return false;
        }
        // A gap still waiting for a replay that was refused earlier.
        if self.follow.stuck() && !self.catch_up(c).await {
            return false;
        }
        for id in self.outbox.stale(RESEND) {
            if !self.send(c, &id).await {
                return false;
            }
        }
        true
    }

    /// Under load: a tablet's next order, a screen's due tickets.
    async fn work(&mut self, c: &mut Client, now: Instant) -> bool {
        if self.spec.role == Role::Tablet && now >= self.next_order {
            self.next_order = now + self.gap();
            let n = self.rng.gen_range(1..=4);
            let lines = (0..n)
                .map(|_| {
                    let mut l = line(ITEMS[self.rng.gen_range(0..ITEMS.len())], 1);
                    if l.item == "steak-ribeye" {
                        // The demo menu's steak takes exactly one doneness.
                        l.mods = vec!["medium-rare".into()];
                    }
                    l
                })
                .collect();
            let table = format!("{}", self.rng.gen_range(1..=40));
            if !self.issue(c, CommandBody::place(&table, lines)).await {
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
                self.follow.on_event(e);
                return self.catch_up(c).await;
            }
            return true;
        }
        if topic.starts_with("docket/v1/board/") && !payload.is_empty() {
            if let Ok(b) = wire::decode::<wire::Board>(payload) {
                self.follow.on_board(b);
                return self.catch_up(c).await;
            }
        }
        true
    }

    async fn on_reply(&mut self, c: &mut Client, r: Reply) -> bool {
        match self.follow.on_reply(&r) {
            Replayed::NotOurs => {}
            // Asked again a little later, from on_tick, instead of at once.
            Replayed::Refused => return true,
            Replayed::Page { more: true } => {
                // Ask for the next page from wherever the view now is.
                self.catch_up(c).await;
                return self.request_replay(c).await;
            }
            Replayed::Page { more: false } => return self.catch_up(c).await,
        }
        let me = self.spec.creds.id.clone();
        let key = (me.clone(), r.command.clone());
        let mut l = lock(&self.observed);
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
            None if self.outbox.contains(&r.command) => {
                if r.ok {
                    l.acked.insert(key, r.clone());
                } else {
                    l.rejected.insert(key, r.clone());
                }
            }
            None => {}
        }
        self.outbox.answered(&r.command);
        l.pending.insert(me, self.outbox.len());
        true
    }

    /// Applies every buffered event the view can take; asks for a replay on a gap.
    async fn catch_up(&mut self, c: &mut Client) -> bool {
        let (me, observed) = (&self.spec.creds.id, &self.observed);
        let Some(gap) = self.follow.catch_up(|e, old| {
            lock(observed).stale.push(format!(
                "{me}: event {} takes order {} from v{old} to v{}",
                e.seq, e.order_id, e.version
            ));
        }) else {
            return true;
        };
        let Some(view) = self.follow.view().cloned() else {
            return true;
        };
        self.schedule(&view);
        lock(&self.observed)
            .views
            .insert(self.spec.creds.id.clone(), view);
        if self.follow.replay_due(gap) {
            return self.request_replay(c).await;
        }
        true
    }

    async fn request_replay(&mut self, c: &mut Client) -> bool {
        if self.follow.view().is_none() {
            return true;
        }
        let id = self.outbox.next_id();
        let Some(body) = self.follow.start_replay(id.clone()) else {
            return true;
        };
        c.send_as(&id, &body).await.is_ok()
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
            .outbox
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
