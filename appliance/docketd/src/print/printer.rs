//! One kitchen printer's task: its own TCP connection (raw ESC/POS, port 9100 style), its due
//! jobs sent oldest first, one at a time. Before a job the printer's real-time status must say
//! it can print; after the job it is asked again, and only a printer that answers and can still
//! print has taken it: the job is marked printed. A printer that stops answering, reports paper
//! out or a cover open after a job, or drops the connection mid-job may have lost it: the job
//! is sent again later, marked as a reprint, never silently twice. Failures back off
//! (exponential, capped); an idle printer's status is still read every few seconds, so
//! `/admin` shows paper out before a ticket needs it.
//!
//! Owns the connection and its printer's [`PrinterState`](super::PrinterState). Must not
//! decide what a ticket says (`docket_core::print::layout`).

use std::sync::Arc;
use std::time::Duration;

use docket_core::print::{layout, SlipText};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::db::JobsDb;
use super::escpos::{self, Condition};
use super::Printing;
use crate::clock::now_ms;
use crate::store::print::{self as jobs, Job};
use crate::uplink::Backoff;

const CONNECT: Duration = Duration::from_secs(3);
/// A status answer, or a job's bytes taken, within this.
const ANSWER: Duration = Duration::from_secs(3);
const SEND: Duration = Duration::from_secs(10);
/// An idle printer's status is read this often.
const IDLE_LOOK: Duration = Duration::from_secs(5);
/// A printer that answers but can't print is asked this often.
const CANNOT_LOOK: Duration = Duration::from_secs(1);
/// Jobs read from the store at a time.
const BATCH: usize = 16;

#[derive(Debug, thiserror::Error)]
enum Trouble {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("no answer to the status query within {0:?}")]
    Silent(Duration),
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("ESC/POS: {0}")]
    Escpos(#[from] ::escpos::errors::PrinterError),
    #[error("{0}")]
    Cannot(&'static str),
}

/// The printer at `address`, printing for the stations the setup gives it (read each round, so
/// `/admin`'s changes of mode take effect at once).
pub struct PrinterTask {
    pub address: String,
    pub printing: Arc<Printing>,
    pub db: JobsDb,
    pub stop: CancellationToken,
}

impl PrinterTask {
    pub async fn run(self) {
        let wake = self.printing.waker(&self.address);
        let mut conn: Option<TcpStream> = None;
        let mut backoff = Backoff::new(500, 15_000);
        let mut last_trouble: Option<String> = None;
        loop {
            let result = self.round(&mut conn).await;
            let delay = match result {
                Ok(true) => {
                    backoff.reset();
                    continue;
                }
                Ok(false) => {
                    backoff.reset();
                    last_trouble = None;
                    IDLE_LOOK
                }
                Err(t) => {
                    let words = t.to_string();
                    // A printer that answers but can't print (paper, cover) is asked again
                    // every second: it prints the moment someone fixes it.
                    let cannot = matches!(t, Trouble::Cannot(_));
                    if last_trouble.as_deref() != Some(words.as_str()) {
                        tracing::warn!(printer = %self.address, trouble = %words, "kitchen printer cannot print; retrying with backoff");
                    }
                    if !matches!(t, Trouble::Cannot(_)) {
                        conn = None;
                        self.printing.set_printer(&self.address, |p| {
                            p.reachable = false;
                            p.can_print = false;
                            p.condition = "unreachable".into();
                        });
                    }
                    self.printing
                        .set_printer(&self.address, |p| p.error = Some(words.clone()));
                    last_trouble = Some(words);
                    if cannot {
                        CANNOT_LOOK
                    } else {
                        backoff.next_delay()
                    }
                }
            };
            if !self.pause(&wake, delay).await {
                return;
            }
        }
    }

    /// Waits `delay` or a wake-up; false when stopping.
    async fn pause(&self, wake: &Notify, delay: Duration) -> bool {
        tokio::select! {
            () = self.stop.cancelled() => false,
            () = wake.notified() => true,
            () = tokio::time::sleep(delay) => true,
        }
    }

    /// One look: the printer's status, then its due jobs. Ok(true): jobs were printed (look
    /// again at once); Ok(false): nothing due.
    async fn round(&self, conn: &mut Option<TcpStream>) -> Result<bool, Trouble> {
        // Its stations that print at all: an `off` station's jobs wait.
        let stations: Vec<String> = (self.printing.setup().printers.values())
            .filter(|p| p.address == self.address && p.mode != crate::config::Mode::Off)
            .map(|p| p.station.clone())
            .collect();
        let due = self
            .db
            .run(move |c| jobs::due(c, &stations, BATCH))
            .await
            .map_err(|e| Trouble::Connect(format!("the store: {e}")))?;
        let stream = self.connected(conn).await?;
        let cond = self.status(stream).await?;
        if !cond.can_print() {
            return Err(Trouble::Cannot(cond.words()));
        }
        if due.is_empty() {
            return Ok(false);
        }
        let setup = self.printing.setup();
        for job in due {
            let Some(p) = setup.printers.get(&job.slip.station) else {
                continue;
            };
            let rows = layout(
                SlipText {
                    order: &job.order,
                    slip: &job.slip,
                    at_ms: job.at,
                    utc_offset_minutes: setup.utc_offset_minutes,
                    again: job.again,
                },
                p.paper,
            );
            let bytes = escpos::ticket(&rows)?;
            self.send(stream, &job, &bytes).await?;
        }
        Ok(true)
    }

    async fn connected<'a>(
        &self,
        conn: &'a mut Option<TcpStream>,
    ) -> Result<&'a mut TcpStream, Trouble> {
        if conn.is_none() {
            let s = tokio::time::timeout(CONNECT, TcpStream::connect(&self.address))
                .await
                .map_err(|_| Trouble::Connect(format!("no answer within {CONNECT:?}")))?
                .map_err(|e| Trouble::Connect(e.to_string()))?;
            let _ = s.set_nodelay(true);
            tracing::info!(printer = %self.address, "kitchen printer connected");
            *conn = Some(s);
        }
        conn.as_mut().ok_or(Trouble::Cannot("no connection"))
    }

    /// Asks the printer's real-time status and records it.
    async fn status(&self, s: &mut TcpStream) -> Result<Condition, Trouble> {
        let request = escpos::status_request()?;
        let mut answers = [0u8; 3];
        tokio::time::timeout(ANSWER, async {
            s.write_all(&request).await?;
            s.read_exact(&mut answers).await
        })
        .await
        .map_err(|_| Trouble::Silent(ANSWER))??;
        let cond = escpos::read_status(answers)?;
        self.printing.set_printer(&self.address, |p| {
            if p.condition != cond.words() && p.reachable {
                tracing::info!(printer = %self.address, condition = cond.words(), "kitchen printer status");
            }
            p.reachable = true;
            p.condition = cond.words().to_owned();
            p.can_print = cond.can_print();
            if cond.can_print() {
                p.error = None;
            }
        });
        Ok(cond)
    }

    /// Sends one job; printed only when the printer answers afterwards and can still print.
    async fn send(&self, s: &mut TcpStream, job: &Job, bytes: &[u8]) -> Result<(), Trouble> {
        let id = job.id;
        let sent = tokio::time::timeout(SEND, s.write_all(bytes)).await;
        let after = match sent {
            Ok(Ok(())) => self.status(s).await,
            Ok(Err(e)) => Err(Trouble::Io(e)),
            Err(_) => Err(Trouble::Silent(SEND)),
        };
        match after {
            Ok(cond) if cond.can_print() => {
                let at = now_ms();
                self.db
                    .run(move |c| jobs::printed(c, id, at))
                    .await
                    .map_err(|e| Trouble::Connect(format!("the store: {e}")))?;
                self.printing.set_printer(&self.address, |p| p.printed += 1);
                tracing::info!(printer = %self.address, station = %job.slip.station, ticket = job.order.ticket, kind = job.slip.kind.as_str(), again = job.again, "ticket printed");
                Ok(())
            }
            other => {
                // It may be on paper, in part or whole: the next copy says REPRINT.
                self.db
                    .run(move |c| jobs::maybe_lost(c, id))
                    .await
                    .map_err(|e| Trouble::Connect(format!("the store: {e}")))?;
                match other {
                    Ok(cond) => Err(Trouble::Cannot(cond.words())),
                    Err(t) => Err(t),
                }
            }
        }
    }
}
