//! A fault-injecting TCP proxy for the network fault campaign: bad restaurant Wi-Fi between the
//! simulated tablets/screens and the box's MQTT port.
//!
//! Why a userspace proxy: the test machines have no `tc netem` and no packet filter, so delay,
//! stalls, blackholes, one-way cuts, resets and half-closes are played by this proxy instead of
//! the kernel. It owns only the bytes in flight; it never parses MQTT and never touches the
//! daemon or the clients.
//!
//! How to use: one [`FaultProxy`] per simulated device, so a fault on a proxy is a fault on that
//! device's connection (and on its reconnects).
//!
//! ```ignore
//! let proxy = FaultProxy::start(([127, 0, 0, 1], daemon.mqtt).into()).await?;
//! let mut tablet = Client::connect(proxy.port(), &creds).await?;
//! proxy.set(Fault::Blackhole); // the tablet walks into the freezer
//! proxy.set(Fault::Clean);     // and out again
//! report.push(proxy.stats());
//! ```
//!
//! Held bytes stay in order: a direction that may not forward stops reading, so at most one chunk
//! waits in the proxy and the rest waits in kernel buffers, pushing back on the sender the way a
//! stalled link does. Each connection runs one task per direction; the fault lives in a
//! `watch` channel, so a change reaches connections that are waiting at once. The listener task
//! also times `Flap`. Dropping the proxy aborts the listener, which drops (and so aborts) every
//! connection and direction task.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{sleep, sleep_until, Instant};

mod pump;
use pump::Pump;

/// How long a `Reset` waits for a chunk to cut in half before it resets an idle connection.
const RESET_GRACE: Duration = Duration::from_millis(100);
/// Largest chunk read in one go (an MQTT packet from a tablet is much smaller).
const CHUNK: usize = 16 * 1024;
/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A network fault, applied to every current and future connection of a proxy.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Fault {
    /// Bytes flow both ways untouched (held bytes, if any, are delivered first, in order).
    #[default]
    Clean,
    /// Each chunk written in either direction is, with probability `fraction`, delayed by a
    /// uniformly random time in [min, max] (jitter). Order is preserved: later chunks queue
    /// behind a delayed one (TCP is a stream).
    Delay {
        fraction: f64,
        min: Duration,
        max: Duration,
    },
    /// Bytes are held (not forwarded, not dropped) in both directions, sockets stay open;
    /// delivered in order when the fault changes to one that forwards.
    Stall,
    /// A tablet walking into the walk-in freezer: like `Stall` for open connections, and new
    /// connection attempts are accepted by the proxy but never connected upstream / get no bytes
    /// until healed (a connect that hangs). When healed, connections held during the blackhole
    /// proceed normally (as TCP retransmission would). The peers' own keep-alive timeouts decide
    /// whether they give up meanwhile.
    Blackhole,
    /// Asymmetric cut: the box hears the device but the device does not hear the box
    /// (box->client bytes held), or the reverse with `box_hears: false`.
    OneWay { box_hears: bool },
    /// Each open connection is reset mid-packet: forward only part of the next chunk (in either
    /// direction; if no traffic comes within ~100 ms, reset anyway), then close both sockets with
    /// RST (SO_LINGER 0). New connections work normally afterwards (the fault is a one-shot per
    /// connection, i.e. applies to connections open when set).
    Reset,
    /// Half-close: the proxy shuts down its write side towards the client (client reads EOF)
    /// while still forwarding client->box. Applies to open connections; new connections are
    /// normal.
    HalfClose,
    /// Flapping Wi-Fi: alternates `up` of `Clean` and `down` of `Blackhole`, repeatedly, until
    /// set to something else.
    Flap { up: Duration, down: Duration },
}

/// Counters for campaign reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections the proxy accepted from devices.
    pub accepted: u64,
    /// Connections cut with RST by the `Reset` fault.
    pub resets: u64,
    /// Chunks held back by `Delay`.
    pub delayed: u64,
    /// Bytes forwarded device -> box.
    pub bytes_up: u64,
    /// Bytes forwarded box -> device.
    pub bytes_down: u64,
}

/// What every connection of one proxy sees through its `watch` receiver.
#[derive(Debug, Clone, Copy, Default)]
struct State {
    fault: Fault,
    /// `Flap` only: in its blackhole half.
    flap_down: bool,
    /// Bumped by every `set`; a connection remembers the epoch it was accepted in, so one-shot
    /// faults hit only connections older than them, even if a later `set` already replaced them.
    epoch: u64,
    /// Epoch of the last `Reset`.
    reset: u64,
    /// Epoch of the last `HalfClose`.
    half_close: u64,
}

impl State {
    fn dark(&self) -> bool {
        matches!(self.fault, Fault::Blackhole) || (self.flap_down && self.is_flap())
    }

    fn is_flap(&self) -> bool {
        matches!(self.fault, Fault::Flap { .. })
    }

    /// May a new connection go upstream?
    fn connects(&self) -> bool {
        !self.dark()
    }

    /// May bytes flow in `dir` now?
    fn forwards(&self, dir: Dir) -> bool {
        match self.fault {
            Fault::Stall => false,
            Fault::OneWay { box_hears } => (dir == Dir::Up) == box_hears,
            _ => !self.dark(),
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    resets: AtomicU64,
    delayed: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

/// A TCP proxy on 127.0.0.1 in front of one upstream address, with a switchable [`Fault`].
pub struct FaultProxy {
    addr: SocketAddr,
    state: watch::Sender<State>,
    counters: Arc<Counters>,
    listener: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on 127.0.0.1 (free port) and forwards every accepted connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (state, _) = watch::channel(State::default());
        let counters = Arc::new(Counters::default());
        let listener = tokio::spawn(accept_loop(
            listener,
            upstream,
            state.clone(),
            counters.clone(),
        ));
        Ok(FaultProxy {
            addr,
            state,
            counters,
            listener,
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes the fault for all current and future connections of this proxy, at once.
    pub fn set(&self, fault: Fault) {
        self.state.send_modify(|s| {
            s.epoch += 1;
            s.fault = fault;
            s.flap_down = false;
            match fault {
                Fault::Reset => s.reset = s.epoch,
                Fault::HalfClose => s.half_close = s.epoch,
                _ => {}
            }
        });
    }

    /// Counters for reports: connections accepted, resets done, writes delayed, bytes forwarded
    /// each way.
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            accepted: c.accepted.load(Relaxed),
            resets: c.resets.load(Relaxed),
            delayed: c.delayed.load(Relaxed),
            bytes_up: c.bytes_up.load(Relaxed),
            bytes_down: c.bytes_down.load(Relaxed),
        }
    }
}

impl Drop for FaultProxy {
    /// Stops the listener; its dropped `JoinSet` aborts every connection, which closes both
    /// sockets of each.
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Accepts connections and, being the one task that lives as long as the proxy, plays `Flap`.
async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    state: watch::Sender<State>,
    counters: Arc<Counters>,
) {
    // Owning the connections here is what lets `Drop for FaultProxy` close them all.
    let mut conns = JoinSet::new();
    let mut rx = state.subscribe();
    // Flap: when to turn, and the `set` (epoch) the turn belongs to.
    let mut turn: Option<(Instant, u64)> = None;
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((client, _)) => {
                    counters.accepted.fetch_add(1, Relaxed);
                    conns.spawn(connection(client, upstream, state.subscribe(), counters.clone()));
                }
                Err(_) => sleep(ACCEPT_BACKOFF).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            Ok(()) = rx.changed() => {
                let s = *rx.borrow_and_update();
                turn = match s.fault {
                    // A zero phase would spin.
                    Fault::Flap { up, down } => {
                        let phase = if s.flap_down { down } else { up };
                        Some((Instant::now() + phase.max(Duration::from_millis(1)), s.epoch))
                    }
                    _ => None,
                };
            }
            _ = sleep_until(turn.map_or_else(Instant::now, |t| t.0)), if turn.is_some() => {
                let epoch = turn.take().map(|t| t.1);
                state.send_if_modified(|s| {
                    let ours = Some(s.epoch) == epoch;
                    s.flap_down ^= ours;
                    ours
                });
            }
        }
    }
}

async fn connection(
    client: TcpStream,
    upstream: SocketAddr,
    mut state: watch::Receiver<State>,
    counters: Arc<Counters>,
) {
    let born = state.borrow().epoch;
    // A blackholed connect: accepted here, but nothing goes upstream until healed.
    if state.wait_for(State::connects).await.is_err() {
        return;
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        // The device would have been refused: tell it with a reset rather than a tidy close.
        let _ = client.set_zero_linger();
        return;
    };
    // Tablets run without Nagle; the proxy must not add its ~40 ms back.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (kill, _) = watch::channel(false);
    let (client_rx, client_tx) = client.into_split();
    let (server_rx, server_tx) = server.into_split();
    let mut pumps = JoinSet::new();
    for (dir, src, dst) in [
        (Dir::Up, client_rx, server_tx),
        (Dir::Down, server_rx, client_tx),
    ] {
        let pump = Pump {
            dir,
            born,
            state: state.clone(),
            killed: kill.subscribe(),
            kill: kill.clone(),
            counters: counters.clone(),
        };
        pumps.spawn(pump.run(src, dst));
    }
    while pumps.join_next().await.is_some() {}
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    /// Device -> box.
    Up,
    /// Box -> device.
    Down,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::mpsc;
    use tokio::time::timeout;

    const WAIT: Duration = Duration::from_secs(3);
    /// How long "nothing arrives" is watched for.
    const QUIET: Duration = Duration::from_millis(300);

    /// An echo server that also reports what it received and how many connections it accepted.
    struct Echo {
        addr: SocketAddr,
        got: mpsc::UnboundedReceiver<Vec<u8>>,
        accepted: Arc<AtomicUsize>,
        task: JoinHandle<()>,
    }

    impl Drop for Echo {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl Echo {
        async fn start() -> Echo {
            let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = l.local_addr().expect("addr");
            let (tx, got) = mpsc::unbounded_channel();
            let accepted = Arc::new(AtomicUsize::new(0));
            let count = accepted.clone();
            let task = tokio::spawn(async move {
                let mut conns = JoinSet::new();
                while let Ok((mut s, _)) = l.accept().await {
                    count.fetch_add(1, Relaxed);
                    let tx = tx.clone();
                    conns.spawn(async move {
                        let mut buf = [0; 4096];
                        while let Ok(n @ 1..) = s.read(&mut buf).await {
                            let _ = tx.send(buf[..n].to_vec());
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            });
            Echo {
                addr,
                got,
                accepted,
                task,
            }
        }

        /// The next `n` bytes the server received.
        async fn received(&mut self, n: usize) -> Vec<u8> {
            let mut out = Vec::new();
            while out.len() < n {
                let chunk = timeout(WAIT, self.got.recv())
                    .await
                    .expect("upstream in time");
                out.extend(chunk.expect("echo server alive"));
            }
            out
        }
    }

    async fn setup() -> (Echo, FaultProxy, TcpStream) {
        let echo = Echo::start().await;
        let proxy = FaultProxy::start(echo.addr).await.expect("proxy");
        let client = TcpStream::connect(proxy.addr()).await.expect("connect");
        (echo, proxy, client)
    }

    async fn read_n(c: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        timeout(WAIT, c.read_exact(&mut buf))
            .await
            .expect("bytes in time")
            .expect("read");
        buf
    }

    /// Asserts that nothing arrives on `c` for a while.
    async fn silent(c: &mut TcpStream) {
        let mut buf = [0; 64];
        let r = timeout(QUIET, c.read(&mut buf)).await;
        assert!(r.is_err(), "expected nothing, got {r:?}");
    }

    async fn round_trip(c: &mut TcpStream, msg: &[u8]) {
        c.write_all(msg).await.expect("write");
        assert_eq!(read_n(c, msg.len()).await, msg);
    }

    #[tokio::test]
    async fn clean_round_trip() {
        let (_echo, proxy, mut c) = setup().await;
        round_trip(&mut c, b"order 42").await;
        let s = proxy.stats();
        assert_eq!((s.accepted, s.bytes_up, s.bytes_down), (1, 8, 8));
    }

    #[tokio::test]
    async fn delay_holds_each_chunk_and_keeps_order() {
        let (_echo, proxy, mut c) = setup().await;
        let (min, max) = (Duration::from_millis(200), Duration::from_millis(220));
        proxy.set(Fault::Delay {
            fraction: 1.0,
            min,
            max,
        });
        let start = Instant::now();
        let chunks: [&[u8]; 4] = [b"one,", b"two,", b"three,", b"four"];
        for chunk in chunks {
            c.write_all(chunk).await.expect("write");
        }
        assert_eq!(read_n(&mut c, 18).await, b"one,two,three,four");
        assert!(start.elapsed() >= 2 * min, "both ways delayed");
        assert!(proxy.stats().delayed >= 2);
    }

    #[tokio::test]
    async fn stall_holds_then_clean_delivers_in_order() {
        let (_echo, proxy, mut c) = setup().await;
        proxy.set(Fault::Stall);
        c.write_all(b"one").await.expect("write");
        c.write_all(b"two").await.expect("write");
        silent(&mut c).await;
        proxy.set(Fault::Clean);
        assert_eq!(read_n(&mut c, 6).await, b"onetwo");
    }

    #[tokio::test]
    async fn one_way_box_hears_but_device_does_not() {
        let (mut echo, proxy, mut c) = setup().await;
        proxy.set(Fault::OneWay { box_hears: true });
        c.write_all(b"ping").await.expect("write");
        assert_eq!(echo.received(4).await, b"ping");
        silent(&mut c).await;
        proxy.set(Fault::Clean);
        assert_eq!(read_n(&mut c, 4).await, b"ping");
    }

    #[tokio::test]
    async fn reset_cuts_open_connections_only() {
        let (_echo, proxy, mut c) = setup().await;
        round_trip(&mut c, b"hello").await;
        proxy.set(Fault::Reset);
        c.write_all(&[7; 1000]).await.expect("write");
        let mut buf = vec![0; 2000];
        let mut echoed = 0;
        let ended = timeout(WAIT, async {
            loop {
                match c.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => echoed += n,
                }
            }
        })
        .await;
        assert!(ended.is_ok(), "connection survived the reset");
        assert!(echoed < 1000, "the whole chunk went through: {echoed}");
        assert_eq!(proxy.stats().resets, 1);
        let mut fresh = TcpStream::connect(proxy.addr()).await.expect("connect");
        round_trip(&mut fresh, b"again").await;
    }

    #[tokio::test]
    async fn half_close_gives_eof_but_keeps_forwarding_up() {
        let (mut echo, proxy, mut c) = setup().await;
        round_trip(&mut c, b"hi").await;
        assert_eq!(echo.received(2).await, b"hi");
        proxy.set(Fault::HalfClose);
        let mut buf = [0; 16];
        let n = timeout(WAIT, c.read(&mut buf)).await.expect("EOF in time");
        assert_eq!(n.expect("read"), 0);
        c.write_all(b"still here").await.expect("write");
        assert_eq!(echo.received(10).await, b"still here");
    }

    #[tokio::test]
    async fn blackhole_hangs_new_connections_until_healed() {
        let echo = Echo::start().await;
        let proxy = FaultProxy::start(echo.addr).await.expect("proxy");
        proxy.set(Fault::Blackhole);
        let mut c = TcpStream::connect(proxy.addr()).await.expect("connect");
        c.write_all(b"anyone?").await.expect("write");
        silent(&mut c).await;
        assert_eq!(echo.accepted.load(Relaxed), 0, "connected upstream");
        proxy.set(Fault::Clean);
        assert_eq!(read_n(&mut c, 7).await, b"anyone?");
        round_trip(&mut c, b"yes").await;
    }

    #[tokio::test]
    async fn flap_holds_sometimes_and_delivers_everything() {
        let (_echo, proxy, mut c) = setup().await;
        proxy.set(Fault::Flap {
            up: Duration::from_millis(50),
            down: Duration::from_millis(100),
        });
        let start = Instant::now();
        let mut slowest = Duration::ZERO;
        let mut i = 0u32;
        while start.elapsed() < Duration::from_millis(400) {
            let t = Instant::now();
            round_trip(&mut c, &i.to_be_bytes()).await;
            slowest = slowest.max(t.elapsed());
            i += 1;
        }
        assert!(
            slowest >= Duration::from_millis(30),
            "never held: {slowest:?}"
        );
        proxy.set(Fault::Clean);
        round_trip(&mut c, b"steady").await;
    }

    #[tokio::test]
    async fn drop_closes_connections() {
        let (_echo, proxy, mut c) = setup().await;
        round_trip(&mut c, b"x").await;
        drop(proxy);
        let mut buf = [0; 8];
        let r = timeout(WAIT, c.read(&mut buf))
            .await
            .expect("closed in time");
        assert!(matches!(r, Ok(0) | Err(_)), "still open: {r:?}");
    }
}
