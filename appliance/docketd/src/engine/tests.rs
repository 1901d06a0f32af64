//! The command path (`commands`) and the loop (`mod.rs`) against the fakes in `testkit`: an
//! in-memory store and a link that records what the router would have been handed, both in one
//! journal, so the order of commits and publishes is what is asserted.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use docket_core::print::Paper;
use docket_core::wire::{self, CommandBody, Envelope, Event};
use docket_core::Code;
use rumqttd::protocol::Publish;
use rumqttd::{Forward, Notification};

use super::heartbeat::HEARTBEAT_TOPIC;
use super::inbox::Input;
use super::ratelimit::Limit;
use super::testkit::*;
use crate::config::{Mode, Printing, StationPrinter};
use crate::store::print;

fn code(s: &Sent) -> Option<Code> {
    reply(s).error.map(|e| e.code)
}

fn topics(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .map(|s| match s {
            Seen::Commit { events, replies } => format!("commit {events}/{replies}"),
            Seen::Sent(s) => s.topic.clone(),
        })
        .collect()
}

fn sent(seen: Vec<Seen>) -> Vec<Sent> {
    seen.into_iter()
        .filter_map(|s| match s {
            Seen::Sent(s) => Some(s),
            Seen::Commit { .. } => None,
        })
        .collect()
}

fn forward(topic: &str, payload: &[u8]) -> Input {
    Input::Router(Notification::Forward(Forward {
        cursor: None,
        size: 0,
        publish: Publish::new(topic.as_bytes().to_vec(), payload.to_vec(), false),
        properties: None,
    }))
}

#[test]
fn a_command_is_decided_committed_and_only_then_answered_announced_and_shown() {
    let mut h = harness();
    h.handle(vec![place("tab-1", "c1")]);
    let seen = h.seen();
    assert_eq!(
        topics(&seen),
        [
            "commit 1/1",
            "docket/v1/reply/tab-1",
            "docket/v1/events",
            "docket/v1/board/expo",
            "docket/v1/board/grill",
        ]
    );
    let out = sent(seen);
    let r = reply(&out[0]);
    assert!(r.ok, "{r:?}");
    assert_eq!((r.seq, r.ticket), (Some(1), Some(1)));
    let e: Event = wire::decode(&out[1].payload).unwrap();
    assert_eq!((e.seq, e.command.as_str()), (1, "c1"));
    assert!(!out[0].retain && !out[1].retain);
    let board: wire::Board = wire::decode(&out[3].payload).unwrap();
    assert!(out[3].retain);
    assert_eq!((board.seq, board.orders.len()), (1, 1));
    assert_eq!(h.engine.store.events.len(), 1);
    assert_eq!(h.metrics.commands_ok.load(Relaxed), 1);
    assert_eq!(h.metrics.seq.load(Relaxed), 1);
}

#[test]
fn a_duplicate_gets_its_recorded_reply_and_changes_nothing() {
    let mut h = harness();
    h.handle(vec![place("tab-1", "c1")]);
    let first = sent(h.seen()).remove(0);
    // Sent again later (a lost reply), even with another body under the same id.
    let other = CommandBody::Replay { after_seq: 0 };
    h.handle(vec![place("tab-1", "c1"), command("tab-1", "c1", &other)]);
    let seen = h.seen();
    assert_eq!(
        topics(&seen),
        ["docket/v1/reply/tab-1", "docket/v1/reply/tab-1"],
        "no commit, no event, no board"
    );
    for again in sent(seen) {
        assert_eq!(
            again.payload, first.payload,
            "byte for byte the first reply"
        );
    }
    assert_eq!(h.engine.store.events.len(), 1);
    assert_eq!(h.engine.last_seq, 1);
    assert_eq!(h.metrics.commands_duplicate.load(Relaxed), 2);
    // Copies within one batch: decided once, both answered alike.
    h.handle(vec![place("tab-1", "c2"), place("tab-1", "c2")]);
    let seen = h.seen();
    assert_eq!(
        topics(&seen)[..4],
        [
            "commit 1/1",
            "docket/v1/reply/tab-1",
            "docket/v1/reply/tab-1",
            "docket/v1/events"
        ]
    );
    let out = sent(seen);
    assert_eq!(out[0].payload, out[1].payload);
    assert_eq!(h.engine.store.events.len(), 2);
}

#[test]
fn a_failed_commit_publishes_nothing_but_send_it_again() {
    let mut h = harness();
    h.engine.store.fail = Some(rusqlite::ffi::SQLITE_IOERR);
    h.handle(vec![
        place("tab-1", "c1"),
        place("tab-1", "c2"),
        place("tab-1", "c1"),
    ]);
    let out = sent(h.seen());
    assert_eq!(out.len(), 3, "{out:?}");
    for r in &out {
        assert_eq!(r.topic, "docket/v1/reply/tab-1", "no event, no board");
        assert_eq!(code(r), Some(Code::Internal));
    }
    // Nothing of the batch is kept, in the store or in memory.
    assert!(h.engine.store.events.is_empty());
    assert_eq!((h.engine.last_seq, h.engine.site.orders.len()), (0, 0));
    assert_eq!(h.metrics.commit_failures.load(Relaxed), 1);
    // The disk is full: the same, said as storage_full, until a commit succeeds.
    h.engine.store.fail = Some(rusqlite::ffi::SQLITE_FULL);
    h.handle(vec![place("tab-1", "c1")]);
    assert_eq!(code(&sent(h.seen())[0]), Some(Code::StorageFull));
    assert!(h.status.storage_full.load(Relaxed));
    // Sent again with the same id once the store works: decided as new.
    h.engine.store.fail = None;
    h.handle(vec![place("tab-1", "c1")]);
    let seen = h.seen();
    assert_eq!(
        topics(&seen)[..3],
        ["commit 1/1", "docket/v1/reply/tab-1", "docket/v1/events"]
    );
    let r = reply(&sent(seen)[0]);
    assert!(r.ok && r.seq == Some(1), "{r:?}");
    assert!(!h.status.storage_full.load(Relaxed));
}

#[test]
fn refused_commands_are_answered_and_not_recorded() {
    let mut h = harness();
    let body = CommandBody::Replay { after_seq: 0 };
    let forged = Envelope::sign("c3", "tab-1", &docket_core::keys::MacKey([0; 32]), &body);
    let forged = Input::Command {
        device: "tab-1".into(),
        payload: wire::encode(&forged.unwrap()).unwrap().into(),
    };
    let Input::Command { payload, .. } = place("kds-1", "c4") else {
        unreachable!()
    };
    let mismatch = Input::Command {
        device: "tab-1".into(),
        payload,
    };
    let garbage = Input::Command {
        device: "tab-1".into(),
        payload: bytes::Bytes::from_static(b"\xff not cbor"),
    };
    h.handle(vec![
        place("gone-1", "c1"),
        place("ghost-1", "c2"),
        forged,
        mismatch,
        garbage,
    ]);
    let out = sent(h.seen());
    let codes: Vec<Option<Code>> = out.iter().map(code).collect();
    assert_eq!(
        codes,
        [
            Code::Revoked,
            Code::UnknownDevice,
            Code::BadMac,
            Code::DeviceMismatch
        ]
        .map(Some),
        "the undecodable one is dropped"
    );
    assert!(h.engine.store.replies.is_empty());
    assert_eq!(h.metrics.commands_rejected.load(Relaxed), 4);
}

#[test]
fn a_device_over_its_rate_is_refused_with_rate_limited() {
    let mut settings = settings();
    settings.rate_limit = Limit {
        per_second: 1,
        burst: 2,
    };
    let store = MemStore::default();
    let mut h = harness_on(store, Default::default(), settings);
    h.handle((1..=4).map(|n| place("tab-1", &format!("c{n}"))).collect());
    let out = sent(h.seen());
    let replies: Vec<(String, Option<Code>)> = (out.iter())
        .filter(|s| s.topic.starts_with("docket/v1/reply/"))
        .map(|s| (reply(s).command, code(s)))
        .collect();
    let limited = Some(Code::RateLimited);
    assert_eq!(
        replies,
        [
            ("c1".into(), None),
            ("c2".into(), None),
            ("c3".into(), limited),
            ("c4".into(), limited),
        ]
    );
    assert_eq!(h.engine.store.events.len(), 2);
}

#[test]
fn a_replay_is_answered_from_the_store_in_pages() {
    let mut h = harness();
    h.handle((1..=3).map(|n| place("tab-1", &format!("c{n}"))).collect());
    h.seen();
    h.handle(vec![command(
        "kds-1",
        "r1",
        &CommandBody::Replay { after_seq: 1 },
    )]);
    let seen = h.seen();
    assert_eq!(
        topics(&seen),
        ["docket/v1/reply/kds-1"],
        "a replay commits nothing"
    );
    let r = reply(&sent(seen)[0]);
    let seqs: Vec<u64> = r.events.unwrap().iter().map(|e| e.seq).collect();
    assert_eq!((seqs, r.more, r.seq), (vec![2, 3], Some(false), Some(3)));
}

#[test]
fn the_loop_routes_forwarded_commands_and_restores_state_topics() {
    let mut h = harness();
    assert!(h.engine.republish_retained(Instant::now()).is_ok());
    h.seen();
    let Input::Command { payload, .. } = place("tab-1", "c1") else {
        unreachable!()
    };
    h.router
        .send(forward("docket/v1/cmd/tab-1", &payload))
        .unwrap();
    h.router
        .send(forward("docket/v1/menu", b"forged menu"))
        .unwrap();
    h.engine.step(Some(Instant::now())).unwrap();
    let out = sent(h.seen());
    let answer = out
        .iter()
        .find(|s| s.topic == "docket/v1/reply/tab-1")
        .unwrap();
    assert!(
        reply(answer).ok,
        "a command through the router is one like any other"
    );
    let restore = out.iter().find(|s| s.topic == wire::MENU_TOPIC).unwrap();
    let restored: docket_core::Menu = wire::decode(&restore.payload).unwrap();
    assert_eq!(restored, menu());
    assert!(restore.retain);
}

#[test]
fn the_retained_state_counts_as_taken_once_the_heartbeat_came_back() {
    // No router: the heartbeat never comes back, and the start says so at its deadline.
    let mut h = harness();
    let deadline = Instant::now() + Duration::from_millis(150);
    assert!(!h.engine.republish_retained(deadline).unwrap());
    assert_eq!(h.status.heartbeat_ms.load(Relaxed), 0);
    assert_eq!(
        topics(&h.seen()),
        [
            wire::MENU_TOPIC,
            "docket/v1/board/expo",
            "docket/v1/board/fry",
            "docket/v1/board/grill",
            wire::STATUS_TOPIC,
            HEARTBEAT_TOPIC,
        ]
    );
    // A router that forwards the heartbeat back: taken, and the engine is alive.
    let mut h = harness();
    h.engine.link.echo = Some((h.router.clone(), vec![HEARTBEAT_TOPIC.to_owned()]));
    // Uptime moves on, so that a recorded round trip is not 0.
    crate::metrics::uptime_ms();
    std::thread::sleep(Duration::from_millis(2));
    let deadline = Instant::now() + Duration::from_secs(10);
    assert!(h.engine.republish_retained(deadline).unwrap());
    assert!(Instant::now() < deadline);
    assert!(h.status.heartbeat_ms.load(Relaxed) > 0);
}

#[test]
fn the_real_store_answers_a_duplicate_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docket.db");
    let open = || crate::store::Store::open(&path, "site-test").unwrap();
    let mut h = harness_on(open(), Default::default(), settings());
    h.handle(vec![place("tab-1", "c1")]);
    let first = sent(h.seen()).remove(0);
    assert!(reply(&first).ok);
    drop(h);
    let mut h = harness_on(open(), Default::default(), settings());
    assert_eq!((h.engine.last_seq, h.engine.site.orders.len()), (1, 1));
    h.handle(vec![place("tab-1", "c1")]);
    let out = sent(h.seen());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].payload, first.payload);
}

#[test]
fn a_menu_command_commits_the_menu_then_answers_and_republishes_it_without_an_event() {
    let mut h = harness();
    let out = CommandBody::SetStock {
        item: "burger".into(),
        out: true,
    };
    h.handle(vec![command("kds-1", "m1", &out)]);
    let seen = h.seen();
    assert_eq!(
        topics(&seen),
        ["commit 0/1", "docket/v1/reply/kds-1", wire::MENU_TOPIC],
        "no event, no board"
    );
    let sent = sent(seen);
    assert_eq!(reply(&sent[0]).menu_version, Some(2));
    let menu: docket_core::Menu = wire::decode(&sent[1].payload).unwrap();
    assert!(sent[1].retain && menu.version == 2 && menu.items[0].out);
    assert_eq!(h.engine.store.menu.as_ref(), Some(&menu));
    // The tablet's burger is refused now.
    h.handle(vec![place("tab-1", "c1")]);
    assert_eq!(code(&self::sent(h.seen())[0]), Some(Code::SoldOut));
}

#[test]
fn a_failed_commit_takes_the_menu_change_back_with_it() {
    let mut h = harness();
    h.engine.store.fail = Some(rusqlite::ffi::SQLITE_IOERR);
    let out = CommandBody::SetStock {
        item: "burger".into(),
        out: true,
    };
    h.handle(vec![command("mgr-1", "m1", &out)]);
    let sent = sent(h.seen());
    assert_eq!(sent.len(), 1, "the retry answer only, no menu: {sent:?}");
    assert_eq!(code(&sent[0]), Some(Code::Internal));
    let menu = h.engine.site.menu.as_ref().unwrap();
    assert!(menu.version == 1 && !menu.items[0].out, "{menu:?}");
    h.engine.store.fail = None;
    h.handle(vec![place("tab-1", "c1")]);
    assert!(reply(&self::sent(h.seen())[0]).ok);
}

#[test]
fn a_menu_toggled_fast_goes_out_at_most_once_a_second_and_the_latest_wins() {
    let mut h = harness();
    let toggle = |id: &str, out: bool| {
        command(
            "kds-1",
            id,
            &CommandBody::SetStock {
                item: "burger".into(),
                out,
            },
        )
    };
    h.handle(vec![toggle("m1", true)]);
    assert_eq!(topics(&h.seen())[2], wire::MENU_TOPIC, "the first at once");
    h.handle(vec![toggle("m2", false)]);
    h.handle(vec![toggle("m3", true)]);
    let seen = topics(&h.seen());
    assert!(!seen.iter().any(|t| t == wire::MENU_TOPIC), "{seen:?}");
    let now = Instant::now();
    assert!(h.engine.menu_due(now).is_some_and(|d| d > now));
    // A second later the engine's timers send the latest menu, once.
    h.engine.menu_published = Some(Instant::now() - super::MENU_EVERY);
    h.engine.timers().unwrap();
    let out = sent(h.seen());
    let menus: Vec<_> = out.iter().filter(|s| s.topic == wire::MENU_TOPIC).collect();
    assert_eq!(menus.len(), 1, "{out:?}");
    let menu: docket_core::Menu = wire::decode(&menus[0].payload).unwrap();
    assert!(menu.version == 4 && menu.items[0].out);
    assert!(h.engine.menu_due(Instant::now()).is_none());
}

/// A harness on a store in a file, whose print jobs the test reads back through `conn`. Bind
/// `_dir` by name: the directory goes when it is dropped.
struct OnDisk {
    h: Harness<crate::store::Store>,
    conn: rusqlite::Connection,
    _dir: tempfile::TempDir,
}

fn on_disk() -> OnDisk {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docket.db");
    let h = harness_on(
        crate::store::Store::open(&path, "site-test").unwrap(),
        Default::default(),
        settings(),
    );
    let conn = crate::store::connect(&path).unwrap();
    OnDisk { h, conn, _dir: dir }
}

/// The stations' printers, each (station, mode, paper); nothing listens at their address: no
/// printer task runs, the tests read the jobs the engine stored.
fn set_printers(h: &Harness<crate::store::Store>, printers: &[(&str, Mode, Paper)]) {
    h.status.printing.configure(&Printing {
        printers: (printers.iter())
            .map(|&(station, mode, paper)| StationPrinter {
                station: station.into(),
                address: "127.0.0.1:9".into(),
                mode,
                paper,
            })
            .collect(),
        ..Printing::default()
    });
}

#[test]
fn an_event_for_a_station_with_a_printer_commits_its_print_job_with_it() {
    let OnDisk { mut h, conn, _dir } = on_disk();
    set_printers(
        &h,
        &[
            ("grill", Mode::Always, Paper::Mm80),
            ("fry", Mode::Fallback, Paper::Mm80),
        ],
    );
    h.handle(vec![place("tab-1", "c1")]);
    assert!(reply(&sent(h.seen())[0]).ok);
    let due = print::due(&conn, &["grill".into(), "fry".into()], 10).unwrap();
    assert_eq!(due.len(), 1, "the grill's ticket is due at once (always)");
    assert_eq!(due[0].slip.station, "grill");
    assert_eq!(due[0].order.lines[0].item, "burger");
    // A fallback station's ticket is held while its screens may show it.
    let body = CommandBody::place("T2", vec![wire::LineInput::plain("fries", 1)]);
    h.handle(vec![command("tab-1", "c2", &body)]);
    assert_eq!(print::due(&conn, &["fry".into()], 10).unwrap().len(), 0);
    assert_eq!(
        print::waiting(&conn).unwrap(),
        vec![("fry".to_owned(), 1, 0), ("grill".to_owned(), 0, 1)]
    );
    // The same command again makes no second job.
    h.handle(vec![place("tab-1", "c1")]);
    assert_eq!(print::due(&conn, &["grill".into()], 10).unwrap().len(), 1);
}

#[test]
fn a_reprint_stores_its_jobs_with_its_reply_once_and_needs_a_printer() {
    let OnDisk { mut h, conn, _dir } = on_disk();
    let reprint = |station: &str, last| CommandBody::Reprint {
        station: station.into(),
        order_id: None,
        last: Some(last),
    };
    h.handle(vec![place("tab-1", "c1"), place("tab-1", "c2")]);
    h.seen();
    // No printer yet: refused, and nothing stored.
    h.handle(vec![command("mgr-1", "r1", &reprint("grill", 2))]);
    assert_eq!(code(&sent(h.seen())[0]), Some(Code::NoPrinter));
    set_printers(&h, &[("grill", Mode::Fallback, Paper::Mm58)]);
    let due = || print::due(&conn, &["grill".into()], 10).unwrap();
    assert!(
        due().is_empty(),
        "fallback: the grill's screens may show its tickets"
    );
    h.handle(vec![command("mgr-1", "r2", &reprint("grill", 2))]);
    let out = sent(h.seen());
    assert!(
        reply(&out[0]).ok && reply(&out[0]).seq.is_none(),
        "no event"
    );
    assert_eq!(out.len(), 1, "a reprint publishes nothing else");
    let jobs = due();
    assert_eq!(
        jobs.iter().map(|j| j.order.ticket).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert!(jobs
        .iter()
        .all(|j| j.slip.kind == docket_core::print::SlipKind::Reprint));
    // The same command again: its first reply, no second reprint.
    h.handle(vec![command("mgr-1", "r2", &reprint("grill", 2))]);
    assert!(reply(&sent(h.seen())[0]).ok);
    assert_eq!(due().len(), 2);
    // A tablet may not; a station only its own.
    h.handle(vec![command("tab-1", "r3", &reprint("grill", 1))]);
    assert_eq!(code(&sent(h.seen())[0]), Some(Code::Forbidden));
}

#[test]
fn only_lines_added_fired_or_voided_make_print_jobs() {
    use docket_core::print::SlipKind::{Changed, New};
    let OnDisk { mut h, conn, _dir } = on_disk();
    set_printers(
        &h,
        &[
            ("grill", Mode::Always, Paper::Mm80),
            ("fry", Mode::Always, Paper::Mm80),
        ],
    );
    let mut step = |device: &str, id: &str, body: CommandBody| {
        h.handle(vec![command(device, id, &body)]);
        let r = reply(&sent(h.seen())[0]);
        assert!(r.ok, "{id}: {r:?}");
        let due = print::due(&conn, &["grill".into(), "fry".into()], 20).unwrap();
        (due.into_iter())
            .map(|j| (j.slip.station, j.slip.kind))
            .collect::<Vec<_>>()
    };
    let mut fries = wire::LineInput::plain("fries", 1);
    fries.course = Some(2);
    let place = CommandBody::place("T1", vec![wire::LineInput::plain("burger", 1), fries]);
    let new_grill = vec![("grill".to_owned(), New)];
    assert_eq!(step("tab-1", "c1", place), new_grill);
    let o = || "o-000001".to_owned();
    let bump = CommandBody::Bump {
        order_id: o(),
        station: "grill".into(),
    };
    let recall = CommandBody::Recall {
        order_id: o(),
        station: "grill".into(),
    };
    let rush = CommandBody::SetRush {
        order_id: o(),
        rush: true,
    };
    assert_eq!(
        step("mgr-1", "c2", bump),
        new_grill,
        "a bump prints nothing"
    );
    assert_eq!(step("mgr-1", "c3", recall), new_grill, "nor a recall");
    assert_eq!(step("mgr-1", "c4", rush), new_grill, "nor a rush");
    let fire = CommandBody::FireCourse {
        order_id: o(),
        course: 2,
    };
    let fired = vec![("grill".to_owned(), New), ("fry".to_owned(), New)];
    assert_eq!(step("tab-1", "c5", fire), fired, "the fries reach the fry");
    let void = CommandBody::VoidLine {
        order_id: o(),
        line: 1,
    };
    let mut voided = fired.clone();
    voided.push(("grill".to_owned(), Changed));
    assert_eq!(step("tab-1", "c6", void), voided, "the burger's VOID");
    let done = CommandBody::Complete { order_id: o() };
    assert_eq!(
        step("mgr-1", "c7", done),
        voided,
        "completion prints nothing"
    );
}
