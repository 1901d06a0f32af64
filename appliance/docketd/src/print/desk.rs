//! The print desk: four times a second, for each station with a printer, is one of its
//! screens live (a paired station device online that serves the station)? A `fallback`
//! station whose screens have all been dark for `fallback_after` starts printing: its held
//! jobs made since just before its last screen went dark become due (the tickets that arrived
//! in the gap), and so does every job it gets while dark. A screen coming back stops it. Held
//! jobs a screen showed are skipped after a while; finished jobs are deleted after a day.
//!
//! Owns each station's [`StationState`](super::StationState). Must not talk to printers.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use docket_core::Role;
use tokio_util::sync::CancellationToken;

use super::db::JobsDb;
use super::Printing;
use crate::clock::now_ms;
use crate::config::Mode;
use crate::status::Status;
use crate::store::print;
use crate::store::registry::{DeviceRegistry, Lookup};

/// How often the desk looks.
const TICK: Duration = Duration::from_millis(250);
/// Tickets committed this long before the last screen went dark may not have reached it:
/// they print too.
const GRACE_MS: u64 = 2_000;
/// A held job older than this was shown by a screen: skipped.
const HELD_FOR_MS: u64 = 10 * 60_000;
/// Printed and skipped jobs are kept this long (the day's reprints read them).
const KEEP_MS: u64 = 24 * 3_600_000;

/// The stations a live screen serves now.
fn live_stations(status: &Status, devices: &DeviceRegistry) -> BTreeSet<String> {
    let mut live = BTreeSet::new();
    for id in status.presence.online_devices() {
        if let Lookup::Active(actor, _) = devices.lookup(&id) {
            if actor.role == Role::Station {
                live.extend(actor.stations);
            }
        }
    }
    live
}

/// Runs until `stop`.
pub async fn run(
    printing: Arc<Printing>,
    status: Arc<Status>,
    devices: Arc<DeviceRegistry>,
    db: JobsDb,
    stop: CancellationToken,
) {
    let start = now_ms();
    let mut last_tidy = 0u64;
    let mut ticks = 0u64;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(TICK) => {}
        }
        ticks += 1;
        let now = now_ms();
        let setup = printing.setup();
        let live = live_stations(&status, &devices);
        let mut promote = Vec::new();
        for p in setup.printers.values() {
            let is_live = live.contains(&p.station);
            let after = setup.fallback_after.as_millis() as u64;
            printing.set_station(&p.station, |s| {
                if s.last_live == 0 {
                    // Never seen: the screens get `fallback_after` from the start to connect.
                    s.last_live = start;
                }
                s.screens_live = is_live;
                if is_live {
                    s.last_live = now;
                    if s.fallback {
                        tracing::info!(station = %p.station, "a screen of the station is live again: its tickets stop printing");
                    }
                    s.fallback = false;
                } else if p.mode == Mode::Fallback
                    && !s.fallback
                    && now.saturating_sub(s.last_live) >= after
                {
                    tracing::warn!(station = %p.station, dark_for_ms = now - s.last_live, printer = %p.address, "no screen of the station is live: its tickets print");
                    s.fallback = true;
                }
                if p.mode != Mode::Fallback {
                    s.fallback = false;
                }
                if s.fallback {
                    promote.push((p.station.clone(), s.last_live.saturating_sub(GRACE_MS)));
                }
            });
        }
        let tidy = now.saturating_sub(last_tidy) >= 60_000;
        if tidy {
            last_tidy = now;
        }
        let counts = ticks.is_multiple_of(4);
        let done = db
            .run(move |c| {
                let mut n = 0;
                for (station, since) in &promote {
                    n += print::promote(c, station, *since)?;
                }
                if tidy {
                    print::tidy(
                        c,
                        now.saturating_sub(HELD_FOR_MS),
                        now.saturating_sub(KEEP_MS),
                    )?;
                }
                let waiting = if counts {
                    Some(print::waiting(c)?)
                } else {
                    None
                };
                Ok((n, waiting))
            })
            .await;
        match done {
            Ok((promoted, waiting)) => {
                if promoted > 0 {
                    tracing::info!(
                        jobs = promoted,
                        "held tickets of dark stations are due on paper"
                    );
                    printing.wake();
                }
                if let Some(waiting) = waiting {
                    for p in setup.printers.values() {
                        let (held, due) = waiting
                            .iter()
                            .find(|w| w.0 == p.station)
                            .map_or((0, 0), |w| (w.1, w.2));
                        printing.set_station(&p.station, |s| {
                            s.held = held;
                            s.due = due;
                        });
                    }
                }
            }
            Err(e) => tracing::warn!(error = ?e, "print desk: the store failed; trying again"),
        }
    }
}
