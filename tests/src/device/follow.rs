//! A screen following its board the way docs/protocol.md tells screens to: the retained board,
//! then events by seq (those that come early are kept), `replay` on a gap, a fresh snapshot
//! after each reconnect. Pure state: the caller sends the replay it asks for and feeds what
//! arrives; must not touch the connection.

use std::collections::BTreeMap;
use std::time::Duration;

use docket_core::wire::{Board, CommandBody, Event, Reply};
use tokio::time::Instant;

use crate::View;

/// What a reply meant to a [`Follower`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replayed {
    /// Not the reply to its replay.
    NotOurs,
    /// Its replay was refused (rate limited after an outage, say): it asks again a little later.
    Refused,
    /// A page of events, buffered; `more` pages follow.
    Page { more: bool },
}

/// A screen's view and what it waits for.
#[derive(Debug)]
pub struct Follower {
    view: Option<View>,
    /// Events that came before the view could take them, by seq.
    early: BTreeMap<u64, Event>,
    /// The id of the replay in flight.
    replay: Option<String>,
    /// No replay before this (after a refused one).
    replay_not_before: Instant,
}

impl Default for Follower {
    fn default() -> Follower {
        Follower {
            view: None,
            early: BTreeMap::new(),
            replay: None,
            replay_not_before: Instant::now(),
        }
    }
}

impl Follower {
    /// After a reconnect a screen starts again from the retained snapshot.
    pub fn restart(&mut self) {
        self.view = None;
        self.early.clear();
        self.replay = None;
    }

    pub fn view(&self) -> Option<&View> {
        self.view.as_ref()
    }

    pub fn on_event(&mut self, e: Event) {
        self.early.insert(e.seq, e);
    }

    /// A board snapshot: the view starts (again) from it unless it is older than the view.
    pub fn on_board(&mut self, b: Board) {
        if self.view.as_ref().is_none_or(|v| b.seq > v.seq) {
            self.view = Some(View::from_board(b));
        }
    }

    /// Applies every buffered event the view can take, telling `stale` of an event that does
    /// not raise its order's version (with the version shown). `None` without a view; else
    /// whether a gap stopped it.
    pub fn catch_up(&mut self, mut stale: impl FnMut(&Event, u64)) -> Option<bool> {
        let view = self.view.as_mut()?;
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
                    stale(&e, old.version);
                }
            }
            // In order by construction: apply cannot see a gap here.
            let _ = view.apply(&e);
        }
        Some(gap)
    }

    /// Should a replay go now: a gap, none in flight, and not too soon after a refusal.
    pub fn replay_due(&self, gap: bool) -> bool {
        gap && self.replay.is_none() && Instant::now() >= self.replay_not_before
    }

    /// Events wait behind a gap with no replay in flight (one was refused earlier).
    pub fn stuck(&self) -> bool {
        self.replay.is_none() && !self.early.is_empty()
    }

    /// The replay to send with command id `id` (after the view's seq); `None` without a view.
    pub fn start_replay(&mut self, id: String) -> Option<CommandBody> {
        let after_seq = self.view.as_ref()?.seq;
        self.replay = Some(id);
        Some(CommandBody::Replay { after_seq })
    }

    /// Takes a reply: its replay's page is buffered.
    pub fn on_reply(&mut self, r: &Reply) -> Replayed {
        if self.replay.as_deref() != Some(r.command.as_str()) {
            return Replayed::NotOurs;
        }
        self.replay = None;
        if !r.ok {
            self.replay_not_before = Instant::now() + Duration::from_secs(1);
            return Replayed::Refused;
        }
        for e in r.events.clone().unwrap_or_default() {
            self.early.insert(e.seq, e);
        }
        Replayed::Page {
            more: r.more == Some(true),
        }
    }
}
