//! One kitchen printer's task: its own TCP connection (raw ESC/POS, port 9100 style), its due
//! jobs sent oldest first, one at a time. Before a job the printer's real-time status must say
//! it can print; after the job it is asked again, and only a printer that answers and can still
//! print has taken it: the job is marked printed. A printer that stops answering, reports paper
//! out or a cover open after a job, or drops the connection mid-job may have lost it: the job
//! is sent again later, marked as a reprint, never silently twice. Failures back off
//! (exponential, capped); an idle printer's status is still read every few seconds, so
//! `/admin` shows paper out before a ticket needs it. A failing store is not the printer's
//! fault: its connection stays and it is not shown unreachable.
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
use crate::store::blocking::BlockingError;
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
    /// The box's own store failed, not the printer: its connection and state stay as they are.
    #[error("the store: {0}")]
    Store(#[source] BlockingError),
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
                Err(t) => self.trouble(t, &mut conn, &mut backoff, &mut last_trouble),
            };
            if !self.pause(&wake, delay).await {
                return;
            }
        }
    }

    /// What a failed round leaves behind, and how long until the next. A printer that answers
    /// but can't print (paper, cover) is asked again every second: it prints the moment
    /// someone fixes it. One that does not answer is dropped, shown unreachable, and tried
    /// after a backoff. A store that fails is the box's trouble, not the printer's: the
    /// connection and what the printer said stay, and the jobs are read again after a backoff.
    fn trouble(
        &self,
        t: Trouble,
        conn: &mut Option<TcpStream>,
        backoff: &mut Backoff,
        last_trouble: &mut Option<String>,
    ) -> Duration {
        let words = t.to_string();
        if last_trouble.as_deref() != Some(words.as_str()) {
            match &t {
                Trouble::Store(e) => {
                    tracing::warn!(printer = %self.address, error = ?e, "kitchen printer's jobs cannot be read or marked in the store; retrying with backoff")
                }
                _ => {
                    tracing::warn!(printer = %self.address, trouble = %words, "kitchen printer cannot print; retrying with backoff")
                }
            }
        }
        let delay = match t {
            Trouble::Store(_) => backoff.next_delay(),
            Trouble::Cannot(_) => CANNOT_LOOK,
            _ => {
                *conn = None;
                self.printing.set_printer(&self.address, |p| {
                    p.reachable = false;
                    p.can_print = false;
                    p.condition = "unreachable".into();
                });
                backoff.next_delay()
            }
        };
        self.printing
            .set_printer(&self.address, |p| p.error = Some(words.clone()));
        *last_trouble = Some(words);
        delay
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
            .map_err(Trouble::Store)?;
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
        let ids: Vec<i64> = batch.iter().map(|(j, _)| j.id).collect();
        let all = ids.clone();
        self.db
            .run(move |c| jobs::sending(c, &all))
            .await
            .map_err(Trouble::Store)?;
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
        if let Err(e) = self.db.run(move |c| jobs::sent(c, &done, &lost, at)).await {
            // The marks are lost: these jobs stay due, counted as sent, and go out again as
            // REPRINT. The printer's own trouble, if it had one, says what to do with it.
            return Err(match trouble {
                None => Trouble::Store(e),
                Some(t) => {
                    tracing::warn!(printer = %self.address, error = ?e, "kitchen printer's jobs could not be marked in the store");
                    t
                }
            });
        }
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

    use tokio::net::TcpListener;

    use super::*;
    use crate::config::{Mode, Printing as PrintingConfig, StationPrinter};

    /// A printer that answers every status query "ok"; counts the connections it accepts.
    async fn ok_printer() -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let asked = escpos::status_request().unwrap().len();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                count.fetch_add(1, Relaxed);
                tokio::spawn(async move {
                    let mut request = vec![0u8; asked];
                    while s.read_exact(&mut request).await.is_ok() {
                        if s.write_all(&[0x12, 0x12, 0x12]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (address, accepted)
    }

    async fn until(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn a_failing_store_keeps_the_printer_connected_and_reachable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docket.db");
        crate::store::Store::open(&path, "site-test").unwrap();
        let (address, accepted) = ok_printer().await;
        let printing = Arc::new(Printing::default());
        printing.configure(&PrintingConfig {
            printers: vec![StationPrinter {
                station: "grill".into(),
                address: address.clone(),
                mode: Mode::Always,
                paper: docket_core::print::Paper::Mm80,
            }],
            ..PrintingConfig::default()
        });
        let stop = CancellationToken::new();
        let _stop = stop.clone().drop_guard();
        tokio::spawn(
            PrinterTask {
                address: address.clone(),
                printing: printing.clone(),
                db: super::super::db::open(&path).unwrap(),
                stop,
            }
            .run(),
        );
        until("the printer is ready", || {
            let p = printing.printer(&address);
            p.reachable && p.condition == "ok"
        })
        .await;

        // The store fails under the task (its jobs' table gone): the next look reads no jobs.
        let conn = crate::store::connect(&path).unwrap();
        conn.execute_batch("DROP TABLE print_jobs").unwrap();
        printing.wake();
        until("the store's trouble is recorded", || {
            printing.printer(&address).error.is_some()
        })
        .await;
        let p = printing.printer(&address);
        let error = p.error.clone().unwrap_or_default();
        assert!(error.starts_with("the store: "), "{error}");
        assert!(
            p.reachable && p.can_print && p.condition == "ok",
            "the printer is not blamed: {p:?}"
        );
        assert_eq!(accepted.load(Relaxed), 1, "its connection was kept");
    }
}
