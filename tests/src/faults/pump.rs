//! One direction of one proxied connection: reads from its source and writes to its
//! destination as the current fault allows (delays, stalls, resets, half-closes), counting the
//! bytes. Owns only the chunk in flight; knows nothing of MQTT.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant};

use super::{Counters, Dir, Fault, State, CHUNK, RESET_GRACE};

/// Why a direction stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The source closed its write side: pass the close on.
    Eof,
    /// This direction towards the device is half-closed by the fault.
    HalfClose,
    /// The `Reset` fault cuts the connection.
    Reset,
    /// The other direction died, or a peer failed: cut the connection too.
    Killed,
}

/// One direction of one connection: reads from `src`, writes to `dst` as the fault allows.
pub(super) struct Pump {
    pub(super) dir: Dir,
    pub(super) born: u64,
    pub(super) state: watch::Receiver<State>,
    /// Shared by both directions of a connection: once true, both cut with RST.
    pub(super) kill: watch::Sender<bool>,
    pub(super) killed: watch::Receiver<bool>,
    pub(super) counters: Arc<Counters>,
}

impl Pump {
    pub(super) async fn run(mut self, mut src: OwnedReadHalf, mut dst: OwnedWriteHalf) {
        let mut buf = vec![0; CHUNK];
        let mut reset_by = None;
        let stop = loop {
            let s = *self.state.borrow_and_update();
            if s.reset > self.born && reset_by.is_none() {
                reset_by = Some(Instant::now() + RESET_GRACE);
            }
            if self.half_closed(&s) {
                break Stop::HalfClose;
            }
            tokio::select! {
                _ = killed(&mut self.killed) => break Stop::Killed,
                r = self.state.changed() => if r.is_err() { break Stop::Killed },
                _ = sleep_until(reset_by.unwrap_or_else(Instant::now)), if reset_by.is_some() => {
                    break Stop::Reset
                }
                r = src.read(&mut buf) => {
                    // An end or a failure is held like bytes, so it cannot leak through a stall.
                    let (chunk, then) = match r {
                        Ok(0) => (&[][..], Some(Stop::Eof)),
                        Ok(n) => (&buf[..n], None),
                        Err(_) => (&[][..], Some(Stop::Killed)),
                    };
                    if let Err(stop) = self.deliver(&mut dst, chunk).await {
                        break stop;
                    }
                    if let Some(stop) = then {
                        break stop;
                    }
                }
            }
        };
        match stop {
            Stop::Eof | Stop::HalfClose => {
                let _ = dst.shutdown().await;
            }
            Stop::Reset | Stop::Killed => {
                let first = !self.kill.send_replace(true);
                if first && stop == Stop::Reset {
                    self.counters.resets.fetch_add(1, Relaxed);
                }
                // Linger 0 plus no FIN: the last half dropped closes each socket with RST.
                let _ = src.as_ref().set_zero_linger();
                let _ = dst.as_ref().set_zero_linger();
                dst.forget();
            }
        }
    }

    fn half_closed(&self, s: &State) -> bool {
        self.dir == Dir::Down && s.half_close > self.born
    }

    /// The `Delay` deadline for a new chunk, if the dice say so.
    fn jitter(&self) -> Option<Instant> {
        let Fault::Delay { fraction, min, max } = self.state.borrow().fault else {
            return None;
        };
        let p = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        let mut rng = rand::thread_rng();
        if !rng.gen_bool(p) {
            return None;
        }
        self.counters.delayed.fetch_add(1, Relaxed);
        Some(Instant::now() + rng.gen_range(min.min(max)..=max.max(min)))
    }

    /// Writes `chunk` once the fault lets this direction through; an empty chunk (an end) just
    /// waits for that.
    async fn deliver(&mut self, dst: &mut OwnedWriteHalf, chunk: &[u8]) -> Result<(), Stop> {
        let mut due = if chunk.is_empty() {
            None
        } else {
            self.jitter()
        };
        let mut off = 0;
        loop {
            let s = *self.state.borrow_and_update();
            if s.reset > self.born {
                // Mid-packet: part of the chunk goes out, then the connection dies.
                let rest = &chunk[off..];
                if off == 0 && rest.len() > 1 {
                    if let Ok(n) = dst.try_write(&rest[..rest.len() / 2]) {
                        self.count(n);
                    }
                }
                return Err(Stop::Reset);
            }
            if self.half_closed(&s) {
                return Err(Stop::HalfClose);
            }
            if !matches!(s.fault, Fault::Delay { .. }) {
                due = None;
            }
            let open = s.forwards(self.dir);
            if off == chunk.len() && (off > 0 || open) {
                return Ok(());
            }
            tokio::select! {
                _ = killed(&mut self.killed) => return Err(Stop::Killed),
                r = self.state.changed() => if r.is_err() { return Err(Stop::Killed) },
                _ = sleep_until(due.unwrap_or_else(Instant::now)), if open && due.is_some() => {
                    due = None
                }
                r = dst.write(&chunk[off..]), if open && due.is_none() => match r {
                    Ok(n) if n > 0 => {
                        off += n;
                        self.count(n);
                    }
                    _ => return Err(Stop::Killed),
                },
            }
        }
    }

    fn count(&self, n: usize) {
        let c = match self.dir {
            Dir::Up => &self.counters.bytes_up,
            Dir::Down => &self.counters.bytes_down,
        };
        c.fetch_add(n as u64, Relaxed);
    }
}

/// Resolves once the connection is to be cut (or nobody can cut it any more).
async fn killed(k: &mut watch::Receiver<bool>) {
    let _ = k.wait_for(|k| *k).await;
}
