//! A device's commands in flight: each keeps its id until a reply arrives and goes again with
//! the same id after a reconnect or a silence (the box answers a repeat with the first reply:
//! exactly once). Owns the ids it hands out; must not judge replies (each tool does).

use std::collections::BTreeMap;
use std::time::Duration;

use docket_core::wire::CommandBody;
use tokio::time::Instant;

use crate::Client;

/// One unanswered command and `T`, what its sender wants back with the reply.
#[derive(Debug, Clone)]
pub struct InFlight<T> {
    pub body: CommandBody,
    pub tag: T,
    /// The last time it was sent.
    pub sent: Instant,
    /// Sent more than once.
    pub resent: bool,
}

/// Commands in flight by id, and the ids: `<prefix>-1`, `<prefix>-2`, ... (ids are forever: a
/// prefix must never repeat across runs).
#[derive(Debug)]
pub struct Outbox<T = ()> {
    prefix: String,
    counter: u64,
    pending: BTreeMap<String, InFlight<T>>,
}

impl<T> Outbox<T> {
    pub fn new(prefix: impl Into<String>) -> Outbox<T> {
        Outbox {
            prefix: prefix.into(),
            counter: 0,
            pending: BTreeMap::new(),
        }
    }

    /// A fresh command id (also for commands kept elsewhere, such as a screen's replay).
    pub fn next_id(&mut self) -> String {
        self.counter += 1;
        format!("{}-{}", self.prefix, self.counter)
    }

    /// Sends a new command under a fresh id, kept as pending first: when the connection is
    /// gone, it goes again after the reconnect. Returns its id and how the send went.
    pub async fn issue(
        &mut self,
        c: &mut Client,
        body: CommandBody,
        tag: T,
    ) -> (String, anyhow::Result<()>) {
        let id = self.next_id();
        let p = InFlight {
            body,
            tag,
            sent: Instant::now(),
            resent: false,
        };
        let sent = c.send_as(&id, &p.body).await;
        self.pending.insert(id.clone(), p);
        (id, sent)
    }

    /// Sends a pending command again with its id (nothing if it was answered meanwhile).
    pub async fn resend(&mut self, c: &mut Client, id: &str) -> anyhow::Result<()> {
        let Some(p) = self.pending.get_mut(id) else {
            return Ok(());
        };
        p.sent = Instant::now();
        p.resent = true;
        c.send_as(id, &p.body).await
    }

    /// Sends every pending command again with its id, up to the first failed send; how many
    /// went.
    pub async fn resend_all(&mut self, c: &mut Client) -> usize {
        let mut n = 0;
        for id in self.ids() {
            if self.resend(c, &id).await.is_err() {
                break;
            }
            n += 1;
        }
        n
    }

    /// Ids of every pending command.
    pub fn ids(&self) -> Vec<String> {
        self.pending.keys().cloned().collect()
    }

    /// Ids of the pending commands last sent at least `after` ago.
    pub fn stale(&self, after: Duration) -> Vec<String> {
        let now = Instant::now();
        self.pending
            .iter()
            .filter(|(_, p)| now.duration_since(p.sent) >= after)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Takes out the pending commands last sent more than `after` ago (given up on).
    pub fn expire(&mut self, after: Duration) -> Vec<(String, InFlight<T>)> {
        let late: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.sent.elapsed() > after)
            .map(|(id, _)| id.clone())
            .collect();
        late.into_iter()
            .filter_map(|id| self.pending.remove(&id).map(|p| (id, p)))
            .collect()
    }

    /// Takes out the command `id` answers; `None` for a repeat or one given up on.
    pub fn answered(&mut self, id: &str) -> Option<InFlight<T>> {
        self.pending.remove(id)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.pending.contains_key(id)
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn values(&self) -> impl Iterator<Item = &InFlight<T>> {
        self.pending.values()
    }
}
