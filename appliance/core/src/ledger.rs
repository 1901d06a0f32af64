//! Turning one command into a reply and stamped events, and the in-memory model of the engine's
//! exactly-once rule (a command id is applied at most once, its first reply returned forever).
//!
//! The engine runs [`process`] with SQLite as the idempotency table; [`Ledger`] runs it with a map,
//! which is what the property tests check the promises against.

use std::collections::HashMap;

use crate::decide::{apply, decide, Actor, Site};
use crate::wire::{CommandBody, Event, Reply};

/// Decides `body`, applies it to `site`, stamps events from `*last_seq + 1` and returns the reply.
/// On rejection nothing changes.
pub fn process(
    site: &mut Site,
    last_seq: &mut u64,
    command_id: &str,
    actor: &Actor,
    body: &CommandBody,
    now_ms: u64,
) -> (Reply, Vec<Event>) {
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

/// In-memory exactly-once model: the engine's behaviour without the disk.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    pub site: Site,
    pub last_seq: u64,
    /// Every decided command's first reply, rejections included: a re-sent command gets the same
    /// answer even if the state has since changed.
    pub replies: HashMap<String, Reply>,
    pub log: Vec<Event>,
}

impl Ledger {
    pub fn new(site: Site) -> Self {
        Ledger {
            site,
            ..Default::default()
        }
    }

    pub fn handle(
        &mut self,
        command_id: &str,
        actor: &Actor,
        body: &CommandBody,
        now_ms: u64,
    ) -> Reply {
        if let Some(first) = self.replies.get(command_id) {
            return first.clone();
        }
        if let CommandBody::Replay { .. } = body {
            // A query: answered from the log by the engine, never recorded.
            return Reply {
                command: command_id.to_owned(),
                ok: true,
                order_id: None,
                ticket: None,
                seq: Some(self.last_seq),
                error: None,
                events: None,
                more: None,
            };
        }
        let (reply, events) = process(
            &mut self.site,
            &mut self.last_seq,
            command_id,
            actor,
            body,
            now_ms,
        );
        self.replies.insert(command_id.to_owned(), reply.clone());
        self.log.extend(events);
        reply
    }
}
