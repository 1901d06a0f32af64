//! Kitchen printers: a station's tickets on paper, when its screens are dark (`fallback`) or
//! always. The engine asks [`Printing::jobs`] which print jobs an event makes and writes them
//! in the event's own commit; each printer's task (`printer.rs`) sends its due jobs, in order,
//! and marks one printed only once the printer took it and says it can still print; the desk
//! (`desk.rs`) watches each fallback station's screens and makes its held jobs due once none
//! has been live for `fallback_after`. The engine never waits on a printer.
//!
//! Owns the printing setup, what each station and printer is doing (for `/healthz`, `/admin`,
//! expo and the status topic), and the wake-ups of the printer tasks. Must not decide which
//! slips an event makes (`docket_core::print`) nor write SQL (`crate::store::print`).

pub mod db;
pub mod desk;
pub mod escpos;
pub mod printer;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use docket_core::health::StationPrinting;
use docket_core::print::{plan, Slip};
use docket_core::wire::Event;
use docket_core::Order;
use tokio::sync::Notify;

use crate::config::{Mode, Printing as PrintingConfig, StationPrinter};
use crate::store::print::{JobState, NewJob};

/// What a station's printing is doing now (the desk writes it).
#[derive(Debug, Clone, Default)]
pub struct StationState {
    /// One of the station's screens is live now.
    pub screens_live: bool,
    /// Box clock (ms) when a screen was last live (the start, for a station never seen).
    pub last_live: u64,
    /// Its screens are dark past `fallback_after`: its tickets print.
    pub fallback: bool,
    /// Jobs waiting: held (a screen may still show them) and due.
    pub held: u64,
    pub due: u64,
}

/// What a printer is doing now (its task writes it).
#[derive(Debug, Clone, Default)]
pub struct PrinterState {
    /// Its last connection and status query worked.
    pub reachable: bool,
    /// Its real-time status in words (`ok`, `paper out`, `cover open`, …; `unreachable`).
    pub condition: String,
    pub can_print: bool,
    /// Why the last attempt failed, for a technician.
    pub error: Option<String>,
    pub printed: u64,
}

/// The shared printing state: one per box (in [`crate::status::Status`]).
#[derive(Default)]
pub struct Printing {
    setup: RwLock<Arc<Setup>>,
    stations: Mutex<BTreeMap<String, StationState>>,
    printers: Mutex<BTreeMap<String, PrinterState>>,
    /// One per printer task, by address.
    wakers: Mutex<BTreeMap<String, Arc<Notify>>>,
    /// The printers changed: the supervisor starts and stops printer tasks.
    changed: Notify,
    /// What expo sees changed (a station printing or not, a printer's condition): the engine
    /// republishes the status at once.
    news: std::sync::atomic::AtomicBool,
}

/// Which station prints where and when.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    pub printers: BTreeMap<String, StationPrinter>,
    pub fallback_after: Duration,
    pub utc_offset_minutes: i32,
}

impl Setup {
    pub fn from_config(c: &PrintingConfig) -> Setup {
        Setup {
            printers: c
                .printers
                .iter()
                .map(|p| (p.station.clone(), p.clone()))
                .collect(),
            fallback_after: c.fallback_after,
            utc_offset_minutes: c.utc_offset_minutes,
        }
    }

    /// Each printer's address with the stations it prints for.
    pub fn by_address(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for p in self.printers.values() {
            out.entry(p.address.clone())
                .or_default()
                .push(p.station.clone());
        }
        out
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Printing {
    /// The setup from the configuration (at start, before the engine runs).
    pub fn configure(&self, config: &PrintingConfig) {
        *self.setup.write().unwrap_or_else(|p| p.into_inner()) =
            Arc::new(Setup::from_config(config));
    }

    pub fn setup(&self) -> Arc<Setup> {
        self.setup.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The stations' printers as stored (`/admin`'s, seeded from the file), replacing the
    /// config file's; printer tasks follow at once.
    pub fn set_printers(&self, printers: Vec<StationPrinter>) {
        let mut setup = self.setup.write().unwrap_or_else(|p| p.into_inner());
        let mut next = (**setup).clone();
        next.printers = printers
            .into_iter()
            .map(|p| (p.station.clone(), p))
            .collect();
        *setup = Arc::new(next);
        drop(setup);
        self.news.store(true, std::sync::atomic::Ordering::Relaxed);
        self.changed.notify_one();
    }

    /// Is any printer configured? (Nothing to plan otherwise.)
    pub fn any(&self) -> bool {
        !self.setup().printers.is_empty()
    }

    /// The print jobs one event makes: a slip per station with a printer that is not off,
    /// due at once in `always` mode or while the station is printing, else held for the desk.
    /// `prev` is the order before the event.
    pub fn jobs(&self, prev: Option<&Order>, event: &Event) -> Vec<NewJob> {
        let setup = self.setup();
        if setup.printers.is_empty() {
            return vec![];
        }
        let stations = lock(&self.stations);
        plan(prev, &event.order)
            .into_iter()
            .filter_map(|slip| {
                let p = setup.printers.get(&slip.station)?;
                let state = match p.mode {
                    Mode::Off => return None,
                    Mode::Always => JobState::Due,
                    Mode::Fallback if stations.get(&slip.station).is_some_and(|s| s.fallback) => {
                        JobState::Due
                    }
                    Mode::Fallback => JobState::Held,
                };
                Some(NewJob {
                    slip,
                    order: event.order.clone(),
                    seq: Some(event.seq),
                    at: event.at,
                    state,
                    device: None,
                })
            })
            .collect()
    }

    /// Does the station print at all (a printer that is not off)?
    pub fn prints_at(&self, station: &str) -> bool {
        self.setup()
            .printers
            .get(station)
            .is_some_and(|p| p.mode != Mode::Off)
    }

    /// A reprint's jobs: each order's whole ticket at the station, due at once.
    pub fn reprint_jobs(
        &self,
        station: &str,
        orders: &[&Order],
        at: u64,
        device: &str,
    ) -> Vec<NewJob> {
        orders
            .iter()
            .map(|o| NewJob {
                slip: Slip::reprint(station),
                order: (*o).clone(),
                seq: None,
                at,
                state: JobState::Due,
                device: Some(device.to_owned()),
            })
            .collect()
    }

    /// Jobs were committed or made due: every printer looks for them now.
    pub fn wake(&self) {
        for n in lock(&self.wakers).values() {
            n.notify_one();
        }
    }

    fn waker(&self, address: &str) -> Arc<Notify> {
        lock(&self.wakers)
            .entry(address.to_owned())
            .or_default()
            .clone()
    }

    pub fn station(&self, station: &str) -> StationState {
        lock(&self.stations)
            .get(station)
            .cloned()
            .unwrap_or_default()
    }

    /// Changes a station's state; what expo sees changing is news.
    pub fn set_station(&self, station: &str, f: impl FnOnce(&mut StationState)) {
        let mut all = lock(&self.stations);
        let s = all.entry(station.to_owned()).or_default();
        let before = (s.screens_live, s.fallback);
        f(s);
        if before != (s.screens_live, s.fallback) {
            self.news.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Changes a printer's state; a change of its condition is news.
    pub fn set_printer(&self, address: &str, f: impl FnOnce(&mut PrinterState)) {
        let mut all = lock(&self.printers);
        let p = all.entry(address.to_owned()).or_default();
        let before = (p.condition.clone(), p.can_print);
        f(p);
        if before != (p.condition.clone(), p.can_print) {
            self.news.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Whether something expo sees changed since last asked.
    pub fn take_changed(&self) -> bool {
        self.news.swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    pub fn printer(&self, address: &str) -> PrinterState {
        lock(&self.printers)
            .get(address)
            .cloned()
            .unwrap_or_default()
    }

    /// Each station with a printer, as `/healthz`, `/admin`, expo and `docket doctor` see it.
    pub fn report(&self) -> Vec<StationPrinting> {
        let setup = self.setup();
        setup
            .printers
            .values()
            .map(|p| {
                let s = self.station(&p.station);
                let pr = self.printer(&p.address);
                let printing = match p.mode {
                    Mode::Always => true,
                    Mode::Fallback => s.fallback,
                    Mode::Off => false,
                };
                let why = match (p.mode, printing) {
                    (Mode::Always, _) => "always prints".to_owned(),
                    (Mode::Off, _) => "printer off".to_owned(),
                    (Mode::Fallback, true) => "no screen live: printing".to_owned(),
                    (Mode::Fallback, false) if s.screens_live => "screen live".to_owned(),
                    (Mode::Fallback, false) => "screen dark: printing soon".to_owned(),
                };
                let condition = if pr.condition.is_empty() {
                    "unknown".to_owned()
                } else {
                    pr.condition.clone()
                };
                // Nothing shows this station's tickets: no live screen and a printer that
                // can't print (or a ticket waiting for one).
                let alarm = p.mode != Mode::Off
                    && !s.screens_live
                    && (printing || s.due > 0)
                    && !pr.can_print;
                StationPrinting {
                    station: p.station.clone(),
                    address: p.address.clone(),
                    mode: p.mode.as_str().to_owned(),
                    printing,
                    why,
                    screens_live: s.screens_live,
                    printer: condition,
                    can_print: pr.can_print,
                    waiting: s.due,
                    printed: pr.printed,
                    alarm,
                    error: pr.error.clone(),
                }
            })
            .collect()
    }
}

/// The printers as stored: the file's `[[printing.printer]]` seeded when new or changed, else
/// what `/admin` set (`store::printers`). Called at start, before the engine runs.
pub fn load(
    db_path: &std::path::Path,
    config: &PrintingConfig,
    printing: &Printing,
) -> Result<(), crate::store::StoreError> {
    printing.configure(config);
    let mut conn = crate::store::connect(db_path)?;
    let (printers, replaced) =
        // The wall clock: the box clock must not be read before the engine anchors it above
        // the last committed stamp (`clock::anchor`).
        crate::store::printers::seed(&mut conn, &config.printers, crate::clock::wall_ms())?;
    if replaced {
        tracing::warn!(
            "the config file's printers changed: seeded again, replacing /admin's printer edits"
        );
    }
    for p in &printers {
        tracing::info!(station = %p.station, printer = %p.address, mode = p.mode.as_str(), "kitchen printer");
    }
    printing.set_printers(printers);
    Ok(())
}

/// Starts the print desk and the supervisor of the printer tasks (one per printer address,
/// started and stopped as `/admin` changes the printers).
pub fn spawn(
    db_path: &std::path::Path,
    status: Arc<crate::status::Status>,
    devices: Arc<crate::store::registry::DeviceRegistry>,
    stop: tokio_util::sync::CancellationToken,
) -> Result<(), crate::store::StoreError> {
    let printing = status.printing.clone();
    let db = db::open(db_path)?;
    tokio::spawn(supervise(printing.clone(), db.clone(), stop.clone()));
    tokio::spawn(desk::run(printing, status, devices, db, stop));
    Ok(())
}

/// Keeps one printer task per configured address.
async fn supervise(
    printing: Arc<Printing>,
    db: db::JobsDb,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut running: BTreeMap<String, tokio_util::sync::CancellationToken> = BTreeMap::new();
    loop {
        let want = printing.setup().by_address();
        running.retain(|address, task| {
            let keep = want.contains_key(address);
            if !keep {
                tracing::info!(printer = %address, "kitchen printer removed");
                task.cancel();
            }
            keep
        });
        for address in want.keys() {
            if running.contains_key(address) {
                continue;
            }
            let task_stop = stop.child_token();
            running.insert(address.clone(), task_stop.clone());
            let task = printer::PrinterTask {
                address: address.clone(),
                printing: printing.clone(),
                db: db.clone(),
                stop: task_stop,
            };
            tokio::spawn(task.run());
        }
        printing.wake();
        tokio::select! {
            () = stop.cancelled() => return,
            () = printing.changed.notified() => {}
        }
    }
}
