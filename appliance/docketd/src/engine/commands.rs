//! The command path: each command on a device's topic rate-limited, checked (size, envelope,
//! device, MAC), answered once by (device, id) through `docket_core::once`, decided, and the
//! batch's events, orders and replies committed together before anyone hears of them; replays
//! answered from the store.
//!
//! Owns nothing of its own: it works on the engine's site state, store and link. Must not
//! publish anything before the batch is committed, nor decide order rules (`docket_core`).

use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use docket_core::ledger::execute;
use docket_core::once;
use docket_core::wire::{self, CommandBody, Envelope, Event, Reply};
use docket_core::{Code, Rejection};

use super::link::{plain, Link};
use super::store::Store;
use super::{Engine, EngineError};
use crate::clock::now_ms;
use crate::engine::ratelimit::Verdict;
use crate::store::menu::MenuChange;
use crate::store::registry::Lookup;
use crate::store::{Batch, Recorded, StoreError};

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
        body: Box<Result<CommandBody, Rejection>>,
    },
}

/// Whether a command's events can make a slip (`docket_core::print::plan`: lines added, a
/// course fired, lines voided). Bumps, recalls, completion and rush change nothing the cooks
/// must make (`plan` makes no slip for them); menu commands, replays and reprints make no
/// order event (a reprint's jobs are its own). No `_` arm: a new command is decided here.
fn may_print(body: &CommandBody) -> bool {
    match body {
        CommandBody::PlaceOrder { .. }
        | CommandBody::AddLines { .. }
        | CommandBody::VoidLine { .. }
        | CommandBody::FireCourse { .. } => true,
        CommandBody::Bump { .. }
        | CommandBody::Recall { .. }
        | CommandBody::Complete { .. }
        | CommandBody::BumpLine { .. }
        | CommandBody::SetRush { .. }
        | CommandBody::Replay { .. }
        | CommandBody::SetStock { .. }
        | CommandBody::SetItem { .. }
        | CommandBody::RemoveItem { .. }
        | CommandBody::Reprint { .. } => false,
    }
}

impl<S: Store, L: Link> Engine<S, L> {
    pub(super) fn handle_commands(
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
                    self.take(step, env, actor, *body)?;
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
                return self.commit_failed(once, &e, recorded);
            }
            self.metrics.commit(t.elapsed(), recorded);
            if !batch.prints.is_empty() {
                self.status.printing.wake();
            }
            if let Some(m) = batch.menus.last() {
                self.status.menu_version.store(m.menu.version, Relaxed);
            }
            if self.status.storage_full.swap(false, Relaxed) {
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
            self.inbox.waiters.deliver(&a.device, &a.reply);
            out.push(plain(wire::reply_topic(&a.device).into_bytes(), a.reply));
        }
        for (e, payload) in &batch.events {
            // The topic is static: no allocation per event.
            out.push(plain(
                bytes::Bytes::from_static(wire::EVENTS_TOPIC.as_bytes()),
                payload.clone(),
            ));
            self.boards.mark(e);
        }
        self.link.publish_all(out)?;
        // Menu commands' new menu, retained, after their replies; a new station's board.
        if !batch.menus.is_empty() {
            self.menu_changed()?;
        }
        // Completed orders leave memory once their boards are recomputed.
        if self.boards.is_dirty() && self.boards.due() <= Instant::now() {
            self.publish_boards()?;
        }
        Ok(())
    }

    /// Nothing of this batch is on disk: the site state is the store's again, and every
    /// command it decided (or a copy of one) is told to send it again; nothing else goes out.
    fn commit_failed(
        &mut self,
        mut once: once::Batch<Vec<u8>>,
        e: &StoreError,
        recorded: usize,
    ) -> Result<(), EngineError> {
        self.metrics.commit_failures.fetch_add(1, Relaxed);
        let full = e.is_disk_full();
        if full && !self.status.storage_full.swap(true, Relaxed) {
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
            self.inbox.waiters.deliver(&a.device, &a.reply);
            self.link
                .publish(plain(wire::reply_topic(&a.device), a.reply))?;
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
        // A reprint needs a printer at the station: the box's setup, not an order rule.
        let body = body.and_then(|b| match &b {
            CommandBody::Reprint { station, .. }
                if docket_core::authorise(&actor, &b).is_ok()
                    && !self.status.printing.prints_at(station) =>
            {
                Err(Rejection::new(
                    Code::NoPrinter,
                    format!("{station} has no kitchen printer (or it is off)"),
                ))
            }
            _ => Ok(b),
        });
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
        // Only a menu command can change the menu: only then is its version compared.
        let menu_before = body
            .is_menu()
            .then(|| self.site.menu.as_ref().map(|m| m.version));
        // The order as it was, for the print jobs the events make: only with printers, and
        // only for a command whose events can make a slip (no copy for a bump or a rush).
        let printing = self.status.printing.clone();
        let prints = printing.any() && may_print(&body);
        let mut prev = match body.order_id() {
            Some(oid) if prints => self.site.orders.get(oid).cloned(),
            _ => None,
        };
        let (reply, events) = execute(
            &mut self.site,
            &mut self.last_seq,
            &env.id,
            &actor,
            &body,
            now,
        );
        if let Some(err) = &reply.error {
            self.count_reject(err.code);
            tracing::info!(device = %actor.device, command = %env.id, code = %err.code, "command rejected: {}", err.message);
        }
        let bytes = wire::encode(&reply)?;
        if let (
            true,
            CommandBody::Reprint {
                station,
                order_id,
                last,
            },
        ) = (reply.ok, &body)
        {
            let orders =
                docket_core::print::reprints(&self.site, station, order_id.as_deref(), *last)
                    .unwrap_or_default();
            batch
                .prints
                .extend(printing.reprint_jobs(station, &orders, now, &actor.device));
        }
        let menu = self.site.menu.as_ref();
        if let Some(m) = menu.filter(|m| menu_before.is_some_and(|v| v != Some(m.version))) {
            batch.menus.push(MenuChange {
                menu: m.clone(),
                at: now,
                device: actor.device.clone(),
                command: env.id.clone(),
            });
        }
        for e in events {
            touched.insert(e.order_id.clone());
            if prints {
                batch.prints.extend(printing.jobs(prev.as_ref(), &e));
                prev = Some(e.order.clone());
            }
            let payload = wire::encode(&e)?;
            batch.events.push((e, payload));
        }
        batch
            .replies
            .push(recorded(&key, reply.ok, reply.seq, &bytes));
        once.decided(key, bytes);
        Ok(())
    }

    /// A refused or rejected command, counted by its code.
    fn count_reject(&self, code: Code) {
        self.metrics.reject(code);
        self.metrics.commands_rejected.fetch_add(1, Relaxed);
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
        let body = Box::new(wire::decode_body(&env.body));
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
            menu_version: None,
        };
        Ok(wire::encode(&reply)?)
    }
}
