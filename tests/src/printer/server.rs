//! `VirtualPrinter`: the printer on the network. Owns the listener on 127.0.0.1, one task per
//! connection (decoder and ticket in progress), the sensors a test sets, the tickets printed
//! and, when asked, their files (`NNNN.txt`, `NNNN.png`). Everything stops on drop.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::decode::{Decoder, Event};
use super::status::Sensors;
use super::ticket::{Ticket, TicketBuilder};

/// How the printer is built.
#[derive(Debug, Clone)]
pub struct PrinterOptions {
    /// Paper width in font A columns: 48 (80 mm) or 32 (58 mm).
    pub columns: u16,
    /// Where each completed ticket is written as `NNNN.txt` and `NNNN.png`.
    pub out_dir: Option<PathBuf>,
}

impl Default for PrinterOptions {
    fn default() -> Self {
        PrinterOptions {
            columns: 48,
            out_dir: None,
        }
    }
}

#[derive(Default)]
struct State {
    tickets: Vec<Ticket>,
    sensors: Sensors,
    /// Cuts left before the paper runs out.
    cuts_left: Option<usize>,
    discarded: u64,
    status_queries: usize,
    connections: usize,
}

struct Shared {
    opts: PrinterOptions,
    state: Mutex<State>,
    mute: watch::Sender<bool>,
    printed: watch::Sender<usize>,
    /// Connections whose task has not ended yet.
    live: watch::Sender<usize>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps a ticket (and writes its files when a completed one and asked to).
    fn keep(&self, ticket: Ticket) {
        let number = {
            let mut st = self.state();
            if ticket.cut {
                if let Some(left) = st.cuts_left.as_mut() {
                    *left = left.saturating_sub(1);
                    if *left == 0 {
                        st.sensors.paper_out = true;
                        st.cuts_left = None;
                    }
                }
            }
            st.tickets.push(ticket.clone());
            st.tickets.len()
        };
        if ticket.cut {
            if let Some(dir) = &self.opts.out_dir {
                if let Err(e) = write_files(dir, number, &ticket) {
                    eprintln!("virtual printer: ticket {number:04}: {e:#}");
                }
            }
        }
        self.printed.send_replace(number);
    }
}

fn write_files(dir: &std::path::Path, number: usize, ticket: &Ticket) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let txt = dir.join(format!("{number:04}.txt"));
    std::fs::write(&txt, ticket.text()).with_context(|| format!("writing {}", txt.display()))?;
    let png = dir.join(format!("{number:04}.png"));
    std::fs::write(&png, ticket.png()?).with_context(|| format!("writing {}", png.display()))
}

/// An in-process ESC/POS printer on a TCP port of 127.0.0.1.
pub struct VirtualPrinter {
    shared: Arc<Shared>,
    port: u16,
    accept: Option<JoinHandle<()>>,
}

impl VirtualPrinter {
    /// A printer on a free port.
    pub async fn start(opts: PrinterOptions) -> anyhow::Result<VirtualPrinter> {
        Self::start_on(0, opts).await
    }

    /// A printer on `port` (0: any free one), e.g. the same printer back after `kill`.
    pub async fn start_on(port: u16, opts: PrinterOptions) -> anyhow::Result<VirtualPrinter> {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("virtual printer: binding 127.0.0.1:{port}"))?;
        let port = listener.local_addr().context("listener address")?.port();
        let shared = Arc::new(Shared {
            opts,
            state: Mutex::default(),
            mute: watch::Sender::new(false),
            printed: watch::Sender::new(0),
            live: watch::Sender::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(VirtualPrinter {
            shared,
            port,
            accept: Some(accept),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// "127.0.0.1:PORT".
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Tickets printed so far, in order: cut ones, and (`cut: false`) what a connection left
    /// unfinished when it closed.
    pub fn tickets(&self) -> Vec<Ticket> {
        self.shared.state().tickets.clone()
    }

    /// Waits until `n` tickets (as `tickets` counts them) have been printed; fails after
    /// `within`, saying what was printed.
    pub async fn wait_tickets(&self, n: usize, within: Duration) -> anyhow::Result<Vec<Ticket>> {
        let mut rx = self.shared.printed.subscribe();
        let waited = tokio::time::timeout(within, rx.wait_for(|&count| count >= n)).await;
        if !matches!(waited, Ok(Ok(_))) {
            let got = self.tickets();
            bail!(
                "virtual printer {}: {} ticket(s) after {within:?}, wanted {n}; printed:\n{}",
                self.addr(),
                got.len(),
                got.iter()
                    .map(Ticket::text)
                    .collect::<Vec<_>>()
                    .join("--- cut ---\n")
            );
        }
        Ok(self.tickets())
    }

    fn sensors(&self, f: impl FnOnce(&mut Sensors)) {
        f(&mut self.shared.state().sensors);
    }

    /// Paper end: status says so, the printer is offline, print data is discarded.
    pub fn set_paper_out(&self, on: bool) {
        self.sensors(|s| s.paper_out = on);
    }

    /// The paper runs out after `tickets` more cuts.
    pub fn run_out_after(&self, tickets: usize) {
        let mut st = self.shared.state();
        if tickets == 0 {
            st.sensors.paper_out = true;
            st.cuts_left = None;
        } else {
            st.cuts_left = Some(tickets);
        }
    }

    /// Roll near its end: status says so, printing goes on.
    pub fn set_near_end(&self, on: bool) {
        self.sensors(|s| s.near_end = on);
    }

    /// Cover open: offline, print data discarded as with paper out.
    pub fn set_cover_open(&self, on: bool) {
        self.sensors(|s| s.cover_open = on);
    }

    /// A hung printer: reads nothing from its sockets (no answers, nothing printed) until
    /// unmuted, then carries on with what was sent meanwhile.
    pub fn set_mute(&self, on: bool) {
        self.shared.mute.send_replace(on);
    }

    /// Print data received while offline and thrown away.
    pub fn discarded_bytes(&self) -> u64 {
        self.shared.state().discarded
    }

    /// DLE EOT requests answered.
    pub fn status_queries(&self) -> usize {
        self.shared.state().status_queries
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.state().connections
    }

    /// Power cut: the listener and every connection dropped at once (reset, not closed), an
    /// unfinished ticket lost. Returns when every socket is gone.
    pub async fn kill(mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
            let _ = accept.await;
        }
        let mut live = self.shared.live.subscribe();
        let gone = tokio::time::timeout(crate::DEADLINE, live.wait_for(|&n| n == 0)).await;
        if !matches!(gone, Ok(Ok(_))) {
            eprintln!(
                "virtual printer {}: connections outlived the power cut",
                self.addr()
            );
        }
    }
}

impl Drop for VirtualPrinter {
    fn drop(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
    }
}

/// Accepts connections; dropping this future (abort) drops the listener and, with the
/// `JoinSet`, aborts every connection.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                // A power cut resets the connection rather than closing it.
                let _ = stream.set_zero_linger();
                shared.state().connections += 1;
                shared.live.send_modify(|n| *n += 1);
                // Made here, not in the task: a task aborted before it ever ran drops it too.
                let live = Live(shared.clone());
                conns.spawn(serve(stream, shared.clone(), live));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Counts a connection as live until its task ends, aborted included.
struct Live(Arc<Shared>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.live.send_modify(|n| *n -= 1);
    }
}

async fn unmuted(mute: &mut watch::Receiver<bool>) {
    let _ = mute.wait_for(|m| !*m).await;
}

async fn serve(mut stream: TcpStream, shared: Arc<Shared>, _live: Live) {
    let mut mute = shared.mute.subscribe();
    let mut decoder = Decoder::new();
    let mut builder = TicketBuilder::new(shared.opts.columns);
    let mut buf = vec![0u8; 8192];
    loop {
        unmuted(&mut mute).await;
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Muted while the read was pending: hold the bytes until unmuted.
        unmuted(&mut mute).await;
        let mut replies = Vec::new();
        for &b in &buf[..n] {
            let before = decoder.print_bytes();
            let events = decoder.push(&[b]);
            let offline = shared.state().sensors.offline();
            if offline {
                shared.state().discarded += decoder.print_bytes() - before;
            }
            for ev in events {
                handle(&shared, &mut builder, ev, &mut replies);
            }
        }
        if !replies.is_empty() && stream.write_all(&replies).await.is_err() {
            break;
        }
    }
    let mut replies = Vec::new();
    for ev in decoder.finish() {
        handle(&shared, &mut builder, ev, &mut replies);
    }
    if let Some(t) = builder.take_unfinished() {
        shared.keep(t);
    }
}

/// One event: a status request is answered whatever the state; anything else prints, or is
/// thrown away while the printer is offline.
fn handle(shared: &Shared, builder: &mut TicketBuilder, ev: Event, replies: &mut Vec<u8>) {
    let sensors = {
        let mut st = shared.state();
        if let Event::Status(_) = ev {
            st.status_queries += 1;
        }
        st.sensors
    };
    match ev {
        Event::Status(n) => replies.push(sensors.answer(n)),
        // What made it onto the paper before it ran out (or the cover opened) is torn off as
        // it is; the rest of that ticket is lost with everything else sent while offline.
        _ if sensors.offline() => {
            if let Some(torn) = builder.take_unfinished() {
                shared.keep(torn);
            }
        }
        ev => {
            if let Some(ticket) = builder.apply(&ev) {
                shared.keep(ticket);
            }
        }
    }
}
