//! Turning one command into a reply and stamped events, and the in-memory model of the engine's
//! exactly-once rule (a command id is applied at most once, its first reply returned forever).
//!
//! The engine runs [`execute`] and [`crate::once::Batch`] with SQLite as the idempotency table;
//! [`Ledger`] runs the same with a map, which is what the property tests check the promises
//! against.

use std::collections::HashMap;

use crate::decide::menu::decide_menu;
use crate::decide::{apply, decide, Actor, OrderBook};
use crate::once::{Batch, CommandKey};
use crate::wire::{CommandBody, Event, Reply};
use crate::{Code, Rejection};

/// Decides `body`, applies it to `site`, stamps events from `*last_seq + 1` and returns the reply.
/// A menu command changes `site.menu` (a new version) and stamps no event. On rejection nothing
/// changes.
pub fn execute(
    site: &mut OrderBook,
    last_seq: &mut u64,
    command_id: &str,
    actor: &Actor,
    body: &CommandBody,
    now_ms: u64,
) -> (Reply, Vec<Event>) {
    if body.is_menu() {
        // A new menu version, no order event: the engine stores and republishes the menu.
        let reply = match decide_menu(site, actor, body) {
            Err(rejection) => Reply::rejected(command_id, &rejection),
            Ok(next) => {
                if let Some(menu) = next {
                    site.menu = Some(menu);
                }
                let version = site.menu.as_ref().map_or(0, |m| m.version);
                Reply::menu(command_id, version)
            }
        };
        return (reply, Vec::new());
    }
    if let CommandBody::Reprint {
        station,
        order_id,
        last,
    } = body
    {
        // Changes nothing on the record: the engine writes the print jobs of the tickets.
        let checked = crate::authorise(actor, body).and_then(|()| {
            crate::print::reprints(site, station, order_id.as_deref(), *last).map(|_| ())
        });
        let reply = match checked {
            Ok(()) => Reply::done(command_id),
            Err(rejection) => Reply::rejected(command_id, &rejection),
        };
        return (reply, Vec::new());
    }
    match decide(site, actor, body, now_ms) {
        Err(rejection) => (Reply::rejected(command_id, &rejection), Vec::new()),
        Ok(changes) => {
            let mut events = Vec::with_capacity(changes.len());
            for change in &changes {
                apply(site, change);
                *last_seq += 1;
                events.push(Event {
                    seq: *last_seq,
                    kind: change.kind,
                    order_id: change.order.id.clone(),
                    version: change.order.version,
                    command: command_id.to_owned(),
                    device: actor.device.clone(),
                    at: now_ms,
                    order: change.order.clone(),
                });
            }
            let last = changes.last().map(|c| &c.order);
            let reply = match last {
                Some(o) => Reply::accepted(command_id, &o.id, o.ticket, *last_seq),
                None => Reply::rejected(
                    command_id,
                    &crate::Rejection::new(crate::Code::Internal, "no change"),
                ),
            };
            (reply, events)
        }
    }
}

/// In-memory exactly-once model: the engine's behaviour without the disk, batches and failed
/// commits included, on the same rule ([`crate::once`]).
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    pub site: OrderBook,
    pub last_seq: u64,
    /// Every decided command's first reply, rejections included, by who sent it and its id: a
    /// re-sent command gets the same answer even if the state has since changed.
    pub replies: HashMap<CommandKey, Reply>,
    pub log: Vec<Event>,
}

/// What the model answers a command a failed commit took with it.
pub fn retry_reply(command_id: &str) -> Reply {
    Reply::rejected(
        command_id,
        &Rejection::new(
            Code::Internal,
            "the box could not store this command; send it again",
        ),
    )
}

impl Ledger {
    pub fn new(site: OrderBook) -> Self {
        Ledger {
            site,
            ..Default::default()
        }
    }

    /// One command in a batch of its own, committed.
    pub fn handle(
        &mut self,
        command_id: &str,
        actor: &Actor,
        body: &CommandBody,
        now_ms: u64,
    ) -> Reply {
        let mut r = self.handle_batch(&[(command_id, actor, body)], now_ms, true);
        r.pop().unwrap_or_else(|| retry_reply(command_id))
    }

    /// Commands decided together, as the engine's group commit does; `committed` false is a
    /// commit that failed (a full disk): nothing of the batch stands, and each command the batch
    /// decided (or a copy of one) is answered [`retry_reply`]. Replies in command order.
    pub fn handle_batch(
        &mut self,
        commands: &[(&str, &Actor, &CommandBody)],
        now_ms: u64,
        committed: bool,
    ) -> Vec<Reply> {
        let before = (self.site.clone(), self.last_seq, self.log.len());
        let mut batch: Batch<Reply> = Batch::default();
        for &(id, actor, body) in commands {
            let key = CommandKey::new(&actor.device, id);
            let recorded =
                |k: &CommandKey| Ok::<_, std::convert::Infallible>(self.replies.get(k).cloned());
            if matches!(batch.again(&key, recorded), Ok(true)) {
                continue;
            }
            if let CommandBody::Replay { .. } = body {
                // A query: answered from the log by the engine, never recorded.
                batch.answer(&actor.device, replay_reply(id, self.last_seq));
                continue;
            }
            let (reply, events) =
                execute(&mut self.site, &mut self.last_seq, id, actor, body, now_ms);
            self.log.extend(events);
            batch.decided(key, reply);
        }
        if committed {
            for (k, r) in batch.decisions() {
                self.replies.insert(k.clone(), r.clone());
            }
        } else {
            (self.site, self.last_seq) = (before.0, before.1);
            self.log.truncate(before.2);
            let _ = batch.commit_failed(|id| Ok::<_, std::convert::Infallible>(retry_reply(id)));
        }
        batch.into_answers().into_iter().map(|a| a.reply).collect()
    }
}

fn replay_reply(command_id: &str, last_seq: u64) -> Reply {
    Reply {
        command: command_id.to_owned(),
        ok: true,
        order_id: None,
        ticket: None,
        seq: Some(last_seq),
        error: None,
        events: None,
        more: None,
        menu_version: None,
    }
}
