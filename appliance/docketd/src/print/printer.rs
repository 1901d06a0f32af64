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
/// After a batch that was not full, the next waits this long to gather.
const LINGER: Duration = Duration::from_millis(100);
/// A printer that answers but can't print is asked this often.
const CANNOT_LOOK: Duration = Duration::from_secs(1);
/// Jobs read from the store at a time, and sent in one write of at most about this many bytes.
const BATCH: usize = 16;
const BATCH_BYTES: usize = 16 * 1024;

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
                Ok(Some(full)) => {
                    backoff.reset();
                    if full {
                        continue;
                    }
                    // A batch went out: let the next one gather for a moment (paper takes
                    // seconds a ticket anyway), so a busy kitchen's tickets cost the store a
                    // few transactions a second, not two per ticket.
                    tokio::select! {
                        () = self.stop.cancelled() => return,
                        () = tokio::time::sleep(LINGER) => {}
                    }
                    continue;
                }
                Ok(None) => {
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

    /// One look: the printer's status, then its due jobs. Ok(Some(full)): a batch was printed
    /// (`full`: more may be waiting); Ok(None): nothing due.
    async fn round(&self, conn: &mut Option<TcpStream>) -> Result<Option<bool>, Trouble> {
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
            return Ok(None);
        }
        let setup = self.printing.setup();
        let mut batch = Vec::new();
        let mut size = 0;
        for job in &due {
            let Some(p) = setup.printers.get(&job.slip.station) else {
                continue;
            };
            if !batch.is_empty() && size >= BATCH_BYTES {
                break;
            }
            let rows = layout(
                SlipText {
                    order: &job.order,
                    slip: &job.slip,
                    at_ms: job.at,
                    utc_offset_minutes: setup.utc_offset_minutes,
                    // Sent before (a fault, or docketd stopped mid-batch): it may be on paper.
                    again: job.again || job.attempts > 0,
                },
                p.paper,
            );
            let bytes = escpos::ticket(&rows)?;
            size += bytes.len();
            batch.push((job, bytes));
        }
        if batch.is_empty() {
            return Ok(None);
        }
        self.send(stream, &batch).await?;
        Ok(Some(due.len() >= BATCH || batch.len() < due.len()))
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
        self.record(escpos::read_status(answers)?)
    }

    /// What the printer said about itself, for `/healthz`, expo and `/admin`.
    fn record(&self, cond: Condition) -> Result<Condition, Trouble> {
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

    /// Sends a batch of jobs in one write, each followed by a status query, then reads the
    /// answers in order: a job is printed only when the printer's answer after it says it can
    /// still print; from the first answer that does not (or none at all), the job before it and
    /// every later one may be lost: sent again, as REPRINT. The store hears of the batch twice
    /// (one fsync each, not one per ticket): before, every job in it is counted as sent (so a
    /// job that may have reached paper when docketd stops says REPRINT next time); after,
    /// which were printed and which may be lost.
    async fn send(&self, s: &mut TcpStream, batch: &[(&Job, Vec<u8>)]) -> Result<(), Trouble> {
        let store = |e: super::db::JobsError| Trouble::Connect(format!("the store: {e}"));
        let ids: Vec<i64> = batch.iter().map(|(j, _)| j.id).collect();
        let all = ids.clone();
        self.db
            .run(move |c| jobs::sending(c, &all))
            .await
            .map_err(store)?;
        let request = escpos::status_request()?;
        let mut out = Vec::with_capacity(batch.iter().map(|(_, b)| b.len() + request.len()).sum());
        for (_, bytes) in batch {
            out.extend_from_slice(bytes);
            out.extend_from_slice(&request);
        }
        let mut printed = 0;
        let trouble = match tokio::time::timeout(SEND, s.write_all(&out)).await {
            Err(_) => Some(Trouble::Silent(SEND)),
            Ok(Err(e)) => Some(Trouble::Io(e)),
            Ok(Ok(())) => loop {
                if printed == batch.len() {
                    break None;
                }
                let mut answers = [0u8; 3];
                let read = tokio::time::timeout(ANSWER, s.read_exact(&mut answers)).await;
                let cond = match read {
                    Err(_) => break Some(Trouble::Silent(ANSWER)),
                    Ok(Err(e)) => break Some(Trouble::Io(e)),
                    Ok(Ok(_)) => match escpos::read_status(answers) {
                        Ok(c) => c,
                        Err(e) => break Some(Trouble::Escpos(e)),
                    },
                };
                if !cond.can_print() {
                    self.record(cond)?;
                    break Some(Trouble::Cannot(cond.words()));
                }
                printed += 1;
                if printed == batch.len() {
                    self.record(cond)?;
                }
            },
        };
        let (done, lost, at) = (ids[..printed].to_vec(), ids[printed..].to_vec(), now_ms());
        self.db
            .run(move |c| jobs::sent(c, &done, &lost, at))
            .await
            .map_err(store)?;
        self.printing
            .set_printer(&self.address, |p| p.printed += printed as u64);
        for (j, _) in &batch[..printed] {
            tracing::debug!(printer = %self.address, station = %j.slip.station, ticket = j.order.ticket, kind = j.slip.kind.as_str(), again = j.again, "ticket printed");
        }
        match trouble {
            None => Ok(()),
            Some(t) => Err(t),
        }
    }
}
