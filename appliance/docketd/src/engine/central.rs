//! Head office's menu changes, handed in by `uplink::menus_down`: a central menu version or an
//! 86 (or back on). Each is taken exactly once by its key (the `commands` record, device
//! [`HEAD_OFFICE_DEVICE`]), decided by docket-core as every menu is (a central menu through
//! `decide_central`, an 86 through `decide_menu`'s `set_stock`, as a manager would send it),
//! committed with its record, and the new menu published like a menu command's.
//! docs/operations.md, "Menus from head office", is the rule when a local edit and a central
//! one meet.
//!
//! Owns nothing of its own: it works on the engine's site state, store and link. Must not
//! reach head office (the uplink's) nor decide a menu itself (docket-core's).

use std::sync::atomic::Ordering::Relaxed;

use docket_core::decide::menu::{decide_central, decide_menu};
use docket_core::menu::MenuItem;
use docket_core::wire::{self, CommandBody, Reply};
use docket_core::{Actor, Code, Menu, Rejection, Role};

use super::link::Link;
use super::store::Store;
use super::{Engine, EngineError};
use crate::clock::now_ms;
use crate::store::menu::{MenuChange, HEAD_OFFICE_DEVICE};
use crate::store::{Batch, Recorded};

/// A change from head office.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A central menu version: its key (`hq-menu:…`) and its items as JSON text, or why they
    /// were not fetched.
    Menu {
        key: String,
        items: Result<String, String>,
    },
    /// An item 86'd or back on: its key (`hq-86:<id>`).
    Stock {
        key: String,
        item: String,
        out: bool,
    },
}

impl Change {
    pub fn key(&self) -> &str {
        match self {
            Change::Menu { key, .. } | Change::Stock { key, .. } => key,
        }
    }
}

/// A change and where its outcome goes.
#[derive(Debug)]
pub struct Request {
    pub change: Change,
    pub reply: tokio::sync::oneshot::Sender<Outcome>,
}

/// What became of a change from head office.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Taken: the box's menu is this version now.
    Applied { version: u64 },
    /// Taken: the box's menu already was exactly this.
    Unchanged,
    /// Refused, and recorded so: it is not tried again. Why.
    Refused { reason: String },
    /// Taken or refused before (`refused` says why, if it was): nothing done now.
    Seen { refused: Option<String> },
    /// Not stored (the disk): nothing changed; send it again.
    NotStored { error: String },
}

/// Head office, as the menu commands see it: a manager of every station.
fn head_office() -> Actor {
    Actor {
        device: HEAD_OFFICE_DEVICE.into(),
        role: Role::Manager,
        stations: vec![],
    }
}

/// A central menu's items, read as the menu topic's items are.
fn parse_items(items: &Result<String, String>) -> Result<Vec<MenuItem>, Rejection> {
    let text = items
        .as_ref()
        .map_err(|why| Rejection::new(Code::BadMenu, why.clone()))?;
    serde_json::from_str(text).map_err(|e| {
        Rejection::new(
            Code::BadMenu,
            format!("its items are not a list of menu items: {e}"),
        )
    })
}

impl<S: Store, L: Link> Engine<S, L> {
    /// Takes one change from head office and answers its outcome.
    pub(super) fn head_office(&mut self, req: Request) -> Result<(), EngineError> {
        let outcome = self.take_head_office(&req.change)?;
        // The uplink may have given up waiting (shutdown): the record is what counts.
        let _ = req.reply.send(outcome);
        Ok(())
    }

    fn take_head_office(&mut self, change: &Change) -> Result<Outcome, EngineError> {
        let key = change.key();
        if let Some(bytes) = self.store.recorded_reply(HEAD_OFFICE_DEVICE, key)? {
            let first: Reply = wire::decode(&bytes)?;
            return Ok(Outcome::Seen {
                refused: first.error.map(|e| e.message),
            });
        }
        let decided: Result<Option<Menu>, Rejection> = match change {
            Change::Menu { items, .. } => {
                parse_items(items).and_then(|items| decide_central(&self.site, items))
            }
            Change::Stock { item, out, .. } => {
                let cmd = CommandBody::SetStock {
                    item: item.clone(),
                    out: *out,
                };
                decide_menu(&self.site, &head_office(), &cmd)
            }
        };
        let current = self.site.menu.as_ref().map_or(0, |m| m.version);
        let (reply, next) = match decided {
            Ok(next) => (
                Reply::menu(key, next.as_ref().map_or(current, |m| m.version)),
                next,
            ),
            Err(rejection) => (Reply::rejected(key, &rejection), None),
        };
        let bytes = wire::encode(&reply)?;
        let now = now_ms();
        let mut batch = Batch::default();
        batch.replies.push(Recorded {
            device: HEAD_OFFICE_DEVICE.into(),
            id: key.to_owned(),
            ok: reply.ok,
            seq: None,
            reply: bytes,
        });
        if let Some(m) = &next {
            batch.menus.push(MenuChange {
                menu: m.clone(),
                at: now,
                device: HEAD_OFFICE_DEVICE.into(),
                command: key.to_owned(),
            });
        }
        if let Err(e) = self.store.commit(&batch) {
            tracing::error!(error = ?e, change = key, "storing a change from head office failed; it is taken again at the next poll");
            self.metrics.commit_failures.fetch_add(1, Relaxed);
            self.reload()?;
            return Ok(Outcome::NotStored {
                error: format!("{e}"),
            });
        }
        Ok(match (reply.error, next) {
            (Some(e), _) => Outcome::Refused { reason: e.message },
            (None, None) => Outcome::Unchanged,
            (None, Some(m)) => {
                let version = m.version;
                self.site.menu = Some(m);
                self.status.menu_version.store(version, Relaxed);
                self.menu_changed()?;
                Outcome::Applied { version }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::inbox::Input;
    use crate::engine::testkit::*;

    fn ask(h: &mut Harness, change: Change) -> Outcome {
        let (reply, mut rx) = tokio::sync::oneshot::channel();
        h.handle(vec![Input::HeadOffice(Box::new(Request { change, reply }))]);
        rx.try_recv().expect("answered in the same turn")
    }

    fn menu(key: &str, items: &str) -> Change {
        Change::Menu {
            key: key.into(),
            items: Ok(items.into()),
        }
    }

    fn items(burger_price: i64) -> String {
        let items = [
            MenuItem::plain("burger", "BURGER", burger_price, "grill"),
            MenuItem::plain("fries", "FRIES", 500, "fry"),
        ];
        serde_json::to_string(&items).expect("encodes")
    }

    fn stock(id: u32, item: &str, out: bool) -> Change {
        Change::Stock {
            key: format!("hq-86:{id}"),
            item: item.into(),
            out,
        }
    }

    #[test]
    fn a_central_menu_is_committed_with_its_record_then_published_and_taken_once() {
        let mut h = harness();
        let got = ask(&mut h, menu("hq-menu:b:1", &items(900)));
        assert_eq!(got, Outcome::Applied { version: 2 });
        let seen = h.seen();
        assert!(
            matches!(
                seen[0],
                Seen::Commit {
                    events: 0,
                    replies: 1
                }
            ),
            "{seen:?}"
        );
        let Seen::Sent(s) = &seen[1] else {
            panic!("{seen:?}")
        };
        assert_eq!(s.topic, wire::MENU_TOPIC);
        let m: Menu = wire::decode(&s.payload).expect("a menu");
        assert_eq!((m.version, m.items[0].price), (2, 900));
        assert_eq!(h.status.menu_version.load(Relaxed), 2);
        // Again (a restart, a reconnect): nothing happens.
        let again = ask(&mut h, menu("hq-menu:b:1", &items(900)));
        assert_eq!(again, Outcome::Seen { refused: None });
        assert!(h.seen().is_empty());
        // The same items under a newer key: recorded, the menu unchanged.
        let same = ask(&mut h, menu("hq-menu:b:2", &items(900)));
        assert_eq!(same, Outcome::Unchanged);
    }

    #[test]
    fn a_refused_menu_is_recorded_with_its_reason_and_changes_nothing() {
        let mut h = harness();
        for (key, text, why) in [
            ("hq-menu:b:1", "[]", "no items"),
            ("hq-menu:b:2", "{\"nope\": 1}", "not a list of menu items"),
        ] {
            let Outcome::Refused { reason } = ask(&mut h, menu(key, text)) else {
                panic!("{key} taken")
            };
            assert!(reason.contains(why), "{reason}");
            let seen = h.seen();
            assert_eq!(seen.len(), 1, "recorded, nothing published: {seen:?}");
            let Outcome::Seen { refused: Some(r) } = ask(&mut h, menu(key, text)) else {
                panic!("{key} tried again")
            };
            assert_eq!(r, reason);
        }
        let too_big = Change::Menu {
            key: "hq-menu:b:3".into(),
            items: Err("its items are 9 MB".into()),
        };
        let got = ask(&mut h, too_big);
        assert_eq!(
            got,
            Outcome::Refused {
                reason: "its items are 9 MB".into()
            }
        );
        assert_eq!(h.status.menu_version.load(Relaxed), 1, "never moved");
    }

    #[test]
    fn an_86_from_head_office_is_a_managers_set_stock() {
        let mut h = harness();
        assert_eq!(
            ask(&mut h, stock(1, "fries", true)),
            Outcome::Applied { version: 2 }
        );
        assert_eq!(ask(&mut h, stock(2, "fries", true)), Outcome::Unchanged);
        let Outcome::Refused { reason } = ask(&mut h, stock(3, "soup", true)) else {
            panic!("an unknown item taken")
        };
        assert!(reason.contains("soup"), "{reason}");
        // The disk refuses: nothing recorded, so it is taken when sent again.
        h.engine.store.fail = Some(rusqlite::ffi::SQLITE_FULL);
        let got = ask(&mut h, stock(4, "fries", false));
        assert!(matches!(got, Outcome::NotStored { .. }), "{got:?}");
        h.engine.store.fail = None;
        assert_eq!(
            ask(&mut h, stock(4, "fries", false)),
            Outcome::Applied { version: 3 }
        );
    }
}
