//! Test harness: the real `docketd` process on free ports with its own data directory, and real
//! MQTT clients speaking the wire contract. Every wait has a deadline; every process is killed on
//! drop.

pub mod chaos;
pub mod faults;
pub mod raw;
pub mod secure;
pub mod servers;
pub mod vm;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use docket_core::wire::{self, CommandBody, Envelope, Reply};
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Packet, QoS};
use serde::Deserialize;
use tokio::sync::mpsc;

/// Environment that turns docketd's device topic ACL off, for tests and benchmarks of what
/// stands behind it (or of the bare broker).
pub const ACL_OFF: (&str, &str) = ("DOCKET_MQTT_TOPIC_ACL", "false");

/// A process's resident memory in MB, from /proc (0 if it is gone).
pub fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// How long any single wait may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Path of the docketd binary under test: `$DOCKETD_BIN`, else the workspace's debug build.
pub fn docketd_bin() -> PathBuf {
    if let Ok(p) = std::env::var("DOCKETD_BIN") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned();
    root.join("target/debug/docketd")
}

/// A TCP port nobody listens on right now.
/// A port free right now and never handed out before by this process: the kernel may offer
/// the same free port twice in a row (a daemon then got equal MQTT and MQTT v5 ports).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Device credentials as `docketd device add` prints them.
#[derive(Debug, Clone, Deserialize)]
pub struct Creds {
    pub id: String,
    pub role: String,
    pub secret: String,
}

impl Creds {
    pub fn secret_bytes(&self) -> [u8; 32] {
        hex::decode(&self.secret)
            .expect("hex secret")
            .try_into()
            .expect("32 bytes")
    }

    /// The password this device logs in with (MQTT and the admin API): its login key as hex.
    pub fn login(&self) -> String {
        docket_core::keys::password(&self.secret_bytes())
    }

    /// The key this device's commands are MAC'd with.
    pub fn mac_key(&self) -> docket_core::keys::MacKey {
        docket_core::keys::DeviceKeys::derive(&self.secret_bytes()).mac
    }
}

/// A running docketd with its own temp data dir and ports.
pub struct Daemon {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub mqtt: u16,
    /// The MQTT 5 listener.
    pub mqtt_v5: u16,
    pub http: u16,
    /// HTTPS, MQTT 3.1.1 over TLS and MQTT 5 over TLS.
    pub https: u16,
    pub mqtts: u16,
    pub mqtts_v5: u16,
    pub log: PathBuf,
    /// Extra environment for the daemon process (e.g. NOTIFY_SOCKET).
    pub env: Vec<(String, String)>,
    /// The address its listeners are on: loopback, or its own network namespace's.
    pub host: std::net::Ipv4Addr,
    netns: Option<Netns>,
    /// A command docketd is exec'd through (empty: started directly); see [`Daemon::start_in`].
    launcher: Vec<OsString>,
}

/// A network namespace of its own for a daemon, reached over a veth pair: clients cross a real
/// interface instead of loopback. Deleted (with the veth pair) on drop.
#[derive(Debug)]
struct Netns {
    name: String,
    /// The veth end on this side: the LAN a listener on it sees.
    host_if: String,
}

impl Netns {
    /// Creates the namespace and the veth pair; `None` where this machine cannot (not root, no
    /// `ip`, no netns support).
    fn create() -> Option<(Netns, std::net::Ipv4Addr)> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pid = std::process::id();
        let name = format!("docket-{pid}-{n}");
        let (a, b) = (
            format!("dk{}a{n}", pid % 100_000),
            format!("dk{}b{n}", pid % 100_000),
        );
        let net = [10u8, 200 + (pid % 50) as u8, (n % 64 * 4) as u8];
        let host_ip = format!("{}.{}.{}.{}", net[0], net[1], net[2], 1);
        let box_ip = std::net::Ipv4Addr::new(net[0], net[1], net[2], 2);
        let ns = Netns {
            name,
            host_if: a.clone(),
        };
        let ip = |args: &[&str]| {
            Command::new("ip")
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let ok = ip(&["netns", "add", &ns.name])
            && ip(&["link", "add", &a, "type", "veth", "peer", "name", &b])
            && ip(&["link", "set", &b, "netns", &ns.name])
            && ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &a])
            && ip(&["link", "set", &a, "up"])
            && ip(&[
                "-n",
                &ns.name,
                "addr",
                "add",
                &format!("{box_ip}/30"),
                "dev",
                &b,
            ])
            && ip(&["-n", &ns.name, "link", "set", &b, "up"])
            && ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        if !ok {
            let _ = ip(&["link", "del", &a]);
            return None;
        }
        Some((ns, box_ip))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

impl Daemon {
    /// Starts docketd with the demo menu and waits for `/healthz` = 200.
    pub fn start() -> anyhow::Result<Daemon> {
        Daemon::start_with_env(&[])
    }

    /// Like [`Daemon::start`], with extra environment variables for the process.
    pub fn start_with_env(env: &[(&str, &str)]) -> anyhow::Result<Daemon> {
        Daemon::start_with(env, "test-site", "")
    }

    /// Like [`Daemon::start`], with extra environment, a site id and extra TOML appended to the
    /// config file (e.g. an `[uplink]` section).
    pub fn start_with(
        env: &[(&str, &str)],
        site_id: &str,
        extra_toml: &str,
    ) -> anyhow::Result<Daemon> {
        Daemon::start_inner(tempfile::tempdir()?, &[], env, site_id, extra_toml, None)
    }

    /// Like [`Daemon::start_with`], in a temp dir the caller made and through a launcher: docketd
    /// runs as `launcher... docketd run --config ...` (a command that execs its arguments, e.g.
    /// after joining a cgroup), restarts too. Its data dir is `<dir>/data`, so a caller can mount
    /// a filesystem there first. The benchmark's `pi` profile does both.
    pub fn start_in(
        dir: tempfile::TempDir,
        launcher: &[OsString],
        env: &[(&str, &str)],
        site_id: &str,
        extra_toml: &str,
    ) -> anyhow::Result<Daemon> {
        Daemon::start_inner(dir, launcher, env, site_id, extra_toml, None)
    }

    /// Like [`Daemon::start_with`], in a network namespace of its own reached over a veth pair
    /// where this machine can make one (root, `ip netns`); on loopback otherwise.
    /// [`Daemon::over_interface`] tells which.
    pub fn start_isolated(
        env: &[(&str, &str)],
        site_id: &str,
        extra_toml: &str,
    ) -> anyhow::Result<Daemon> {
        let dir = tempfile::tempdir()?;
        Daemon::start_inner(dir, &[], env, site_id, extra_toml, Netns::create())
    }

    /// Does this daemon run in its own network namespace (clients cross a veth interface)?
    pub fn over_interface(&self) -> bool {
        self.netns.is_some()
    }

    /// The interface on this side of the box's veth pair, where everything between the box and
    /// its clients passes (an eavesdropper's place); `None` on loopback.
    pub fn lan_interface(&self) -> Option<&str> {
        self.netns.as_ref().map(|n| n.host_if.as_str())
    }

    fn start_inner(
        dir: tempfile::TempDir,
        launcher: &[OsString],
        env: &[(&str, &str)],
        site_id: &str,
        extra_toml: &str,
        netns: Option<(Netns, std::net::Ipv4Addr)>,
    ) -> anyhow::Result<Daemon> {
        let (netns, host) = match netns {
            Some((ns, ip)) => (Some(ns), ip),
            None => (None, std::net::Ipv4Addr::LOCALHOST),
        };
        let mqtt = free_port();
        let mqtt_v5 = free_port();
        let http = free_port();
        let (https, mqtts, mqtts_v5) = (free_port(), free_port(), free_port());
        let config = dir.path().join("docketd.toml");
        // Plain MQTT and plain HTTP are on, as a site may turn them on, so that the tests that
        // are not about TLS speak plain text; DOCKET_MQTT_PLAIN=false / DOCKET_HTTP_PLAIN=false
        // in `env` turn them off (the box's defaults).
        std::fs::write(
            &config,
            format!(
                "data_dir = \"data\"\nsite_id = \"{site_id}\"\n[mqtt]\nplain = true\nlisten = \"{host}:{mqtt}\"\nlisten_v5 = \"{host}:{mqtt_v5}\"\n\
                 [http]\nplain = true\nlisten = \"{host}:{http}\"\n\
                 [tls]\nhttps_listen = \"{host}:{https}\"\nmqtt_listen = \"{host}:{mqtts}\"\nmqtt_listen_v5 = \"{host}:{mqtts_v5}\"\n\
                 [engine]\nboard_interval_ms = 50\nreplay_page = 20\n{extra_toml}\n"
            ),
        )?;
        let log = dir.path().join("docketd.log");
        let mut d = Daemon {
            child: None,
            dir,
            config,
            mqtt,
            mqtt_v5,
            http,
            https,
            mqtts,
            mqtts_v5,
            log,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            host,
            netns,
            launcher: launcher.to_vec(),
        };
        d.spawn()?;
        Ok(d)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        // Launchers exec what follows them (`ip netns exec` too): the child is docketd itself.
        let mut argv = self.launcher.clone();
        if let Some(ns) = &self.netns {
            argv.extend(["ip", "netns", "exec", ns.name.as_str()].map(OsString::from));
        }
        argv.push(docketd_bin().into());
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        let child = cmd
            .args(["run", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "info,rumqttd=warn,rumqttd::server=off")
            .env_remove("NOTIFY_SOCKET")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", docketd_bin().display()))?;
        self.child = Some(child);
        self.wait_ready()
    }

    pub fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Some(status) = c.try_wait()? {
                    bail!(
                        "docketd exited early with {status}; log:\n{}",
                        self.log_text()
                    );
                }
            }
            if let Ok((200, _)) = self.get("/healthz") {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("docketd not ready in time; log:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The daemon's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// kill -9: no drain, no goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for exit; returns the exit status.
    pub fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let pid = self.pid().context("not running")?.to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        self.wait_exit().context("docketd did not stop on SIGTERM")
    }

    /// Waits (up to [`DEADLINE`]) for docketd to exit; returns its exit status. Kills it when
    /// it does not.
    pub fn wait_exit(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let mut c = self.child.take().context("not running")?;
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(s) = c.try_wait()? {
                return Ok(s);
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                bail!("docketd did not exit within {DEADLINE:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts again on the same data dir and ports.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill9();
        self.spawn()
    }

    /// Runs a `docketd` subcommand against this daemon's config; returns stdout.
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(docketd_bin())
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!(
                "docketd {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// Like [`Daemon::cli`], feeding `stdin` to the command.
    pub fn cli_with_stdin(&self, args: &[&str], stdin: &str) -> anyhow::Result<String> {
        let mut child = Command::new(docketd_bin())
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        child
            .stdin
            .take()
            .context("stdin")?
            .write_all(stdin.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "docketd {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    pub fn add_device(&self, id: &str, role: &str, stations: &[&str]) -> anyhow::Result<Creds> {
        let mut args = vec!["device", "add", "--id", id, "--role", role];
        let joined = stations.join(",");
        if !stations.is_empty() {
            args.extend(["--stations", &joined]);
        }
        let out = self.cli(&args)?;
        Ok(serde_json::from_str(out.trim())?)
    }

    /// Adds many devices in one `docketd device import` (one transaction).
    pub fn import_devices(
        &self,
        devices: &[(String, &str, &[&str])],
    ) -> anyhow::Result<Vec<Creds>> {
        let input: String = devices
            .iter()
            .map(|(id, role, stations)| {
                format!(
                    "{}\n",
                    serde_json::json!({"id": id, "role": role, "stations": stations})
                )
            })
            .collect();
        let out = self.cli_with_stdin(&["device", "import"], &input)?;
        out.lines().map(|l| Ok(serde_json::from_str(l)?)).collect()
    }

    /// A plain HTTP/1.1 GET on the daemon's HTTP port: (status, body).
    pub fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let mut s = TcpStream::connect((self.host, self.http))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )?;
        let mut buf = String::new();
        s.read_to_string(&mut buf)?;
        let status = buf
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .context("no status")?;
        let body = buf
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok((status, body))
    }

    /// One HTTP/1.1 request on the daemon's HTTP port (`Connection: close`, `Content-Length`):
    /// (status, body).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> anyhow::Result<(u16, String)> {
        let r = self.http(method, path, headers, body)?;
        Ok((r.status, r.body))
    }

    /// Like [`Daemon::http`], from the local address `from` (another device on the LAN).
    pub fn http_from(
        &self,
        from: std::net::IpAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> anyhow::Result<HttpReply> {
        http_request_from(
            Some(from),
            (self.host, self.http).into(),
            method,
            path,
            headers,
            body,
        )
    }

    /// Like [`Daemon::request`], keeping the response head for header checks.
    pub fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> anyhow::Result<HttpReply> {
        http_request((self.host, self.http).into(), method, path, headers, body)
    }

    /// A metric's value from `/metrics` (the line `name value`, labels included in `name`).
    pub fn metric(&self, name: &str) -> anyhow::Result<f64> {
        let (_, body) = self.get("/metrics")?;
        for line in body.lines() {
            if let Some(v) = line.strip_prefix(name).and_then(|r| r.strip_prefix(' ')) {
                return Ok(v.trim().parse()?);
            }
        }
        bail!("metric {name} not found")
    }

    /// Events and orders in the store: what a refused command must leave as it was.
    pub fn store_counts(&self) -> anyhow::Result<(i64, i64)> {
        let db = rusqlite::Connection::open(self.db_path())?;
        let events = db.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?;
        let orders = db.query_row("SELECT COUNT(*) FROM orders", [], |r| r.get(0))?;
        Ok((events, orders))
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("data/docket.sqlite3")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// One HTTP/1.1 request to `addr` (`Connection: close`, `Content-Length`, 5 s read timeout).
pub fn http_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> anyhow::Result<HttpReply> {
    http_request_from(None, addr, method, path, headers, body)
}

/// A TCP connection to `to` from the local address `from`. Every 127.0.0.0/8 address is this
/// host, so a test can act as several devices of the LAN, each with its own address.
pub fn connect_from(
    from: std::net::IpAddr,
    to: std::net::SocketAddr,
) -> std::io::Result<TcpStream> {
    use rustix::net::{bind, connect, socket, AddressFamily, SocketType};
    let family = if from.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let fd = socket(family, SocketType::STREAM, None)?;
    bind(&fd, &std::net::SocketAddr::new(from, 0))?;
    connect(&fd, &to)?;
    Ok(TcpStream::from(fd))
}

/// [`http_request`] from a chosen local address (`None`: the system's choice).
pub fn http_request_from(
    from: Option<std::net::IpAddr>,
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> anyhow::Result<HttpReply> {
    let mut s = match from {
        Some(ip) => connect_from(ip, addr)?,
        None => TcpStream::connect_timeout(&addr, Duration::from_secs(5))?,
    };
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(request_text(method, path, &addr.to_string(), headers, body).as_bytes())?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    parse_reply(&buf)
}

/// An HTTP/1.1 request as text (`Connection: close`, `Content-Length`).
pub fn request_text(
    method: &str,
    path: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> String {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    req
}

/// A whole HTTP/1.1 response as [`HttpReply`].
pub fn parse_reply(buf: &str) -> anyhow::Result<HttpReply> {
    let (head, body) = buf.split_once("\r\n\r\n").context("no response head")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no status")?;
    Ok(HttpReply {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    })
}

/// An HTTP response as [`http_request`] read it.
#[derive(Debug, Clone)]
pub struct HttpReply {
    pub status: u16,
    /// Status line and headers.
    pub head: String,
    pub body: String,
}

impl HttpReply {
    /// A response header's value (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_str(&self.body)
            .with_context(|| format!("response is not JSON: {}", self.body))
    }
}

/// A reply's error code ("" for an accepted command).
pub fn reply_code(r: &wire::Reply) -> &str {
    r.error.as_ref().map_or("", |e| e.code.as_str())
}

/// An `Authorization` header value for HTTP Basic (RFC 7617; base64 of `user:password`).
pub fn basic_auth(user: &str, password: &str) -> String {
    use base64::Engine;
    let pair = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// One message as a client received it.
#[derive(Debug, Clone)]
pub struct Msg {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

/// A real MQTT client (rumqttc over TCP) with the helpers tablets and screens need.
pub struct Client {
    pub client: AsyncClient,
    pub id: String,
    mac_key: Option<docket_core::keys::MacKey>,
    rx: mpsc::UnboundedReceiver<Msg>,
    subacks: mpsc::UnboundedReceiver<()>,
    task: tokio::task::JoinHandle<()>,
    counter: u64,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// MQTT keep-alive of the harness's clients unless a test picks another.
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);

fn options(
    client_id: &str,
    user: &str,
    password: &str,
    host: &str,
    port: u16,
    keep_alive: Duration,
) -> MqttOptions {
    let mut o = MqttOptions::new(client_id, host, port);
    o.set_credentials(user, password);
    o.set_keep_alive(keep_alive);
    o.set_clean_session(true);
    o.set_max_packet_size(4 * 1024 * 1024, 4 * 1024 * 1024);
    o.set_last_will(LastWill::new(
        wire::presence_topic(client_id),
        wire::encode(&"offline").expect("cbor"),
        QoS::AtLeastOnce,
        true,
    ));
    o
}

/// Polls until CONNACK: Ok(eventloop) or the connection error.
async fn handshake(mut ev: EventLoop) -> anyhow::Result<EventLoop> {
    let r = tokio::time::timeout(DEADLINE, async {
        loop {
            match ev.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    if ack.code == rumqttc::ConnectReturnCode::Success {
                        return Ok(());
                    }
                    bail!("connection refused: {:?}", ack.code);
                }
                Ok(_) => {}
                Err(e) => bail!("connection refused: {e}"),
            }
        }
    })
    .await;
    match r {
        Ok(Ok(())) => Ok(ev),
        Ok(Err(e)) => Err(e),
        Err(_) => bail!("no CONNACK in time"),
    }
}

impl Client {
    /// Connects as a paired device (username = client id = device id, password = its login key).
    pub async fn connect(port: u16, creds: &Creds) -> anyhow::Result<Client> {
        Client::connect_to("127.0.0.1", port, creds).await
    }

    /// Like [`Client::connect`], to a broker on any host (the simulator's `--mqtt HOST:PORT`).
    pub async fn connect_to(host: &str, port: u16, creds: &Creds) -> anyhow::Result<Client> {
        Client::connect_with(host, port, creds, KEEP_ALIVE).await
    }

    /// Like [`Client::connect_to`] with another keep-alive (how soon a silent link is given up).
    pub async fn connect_with(
        host: &str,
        port: u16,
        creds: &Creds,
        keep_alive: Duration,
    ) -> anyhow::Result<Client> {
        let mut c =
            Client::connect_inner(host, port, &creds.id, &creds.id, &creds.login(), keep_alive)
                .await?;
        c.mac_key = Some(creds.mac_key());
        Ok(c)
    }

    pub async fn connect_raw(
        port: u16,
        client_id: &str,
        user: &str,
        password: &str,
    ) -> anyhow::Result<Client> {
        Client::connect_raw_to("127.0.0.1", port, client_id, user, password).await
    }

    pub async fn connect_raw_to(
        host: &str,
        port: u16,
        client_id: &str,
        user: &str,
        password: &str,
    ) -> anyhow::Result<Client> {
        Client::connect_inner(host, port, client_id, user, password, KEEP_ALIVE).await
    }

    async fn connect_inner(
        host: &str,
        port: u16,
        client_id: &str,
        user: &str,
        password: &str,
        keep_alive: Duration,
    ) -> anyhow::Result<Client> {
        let o = options(client_id, user, password, host, port, keep_alive);
        Client::connect_options(o, client_id).await
    }

    /// Connects as a paired device over MQTT over TLS, trusting only `tls`'s roots; `host` is
    /// the name the box's certificate must carry.
    pub async fn connect_tls(
        host: &str,
        port: u16,
        creds: &Creds,
        tls: std::sync::Arc<rustls::ClientConfig>,
    ) -> anyhow::Result<Client> {
        Client::connect_tls_with(host, port, creds, tls, KEEP_ALIVE).await
    }

    /// [`Client::connect_tls`] with another keep-alive.
    pub async fn connect_tls_with(
        host: &str,
        port: u16,
        creds: &Creds,
        tls: std::sync::Arc<rustls::ClientConfig>,
        keep_alive: Duration,
    ) -> anyhow::Result<Client> {
        let mut o = options(&creds.id, &creds.id, &creds.login(), host, port, keep_alive);
        o.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(tls),
        ));
        let mut c = Client::connect_options(o, &creds.id).await?;
        c.mac_key = Some(creds.mac_key());
        Ok(c)
    }

    async fn connect_options(o: MqttOptions, client_id: &str) -> anyhow::Result<Client> {
        let (client, mut ev) = AsyncClient::new(o, 1000);
        // Like a real tablet's WebSocket: no Nagle, or a command sent right after a PUBACK
        // waits ~40 ms for the box's delayed ACK.
        let mut net = ev.network_options();
        net.set_tcp_nodelay(true);
        // The CONNACK deadline is ours (`handshake`), not rumqttc's 5 s: thousands of devices
        // connecting at once queue behind each other.
        net.set_connection_timeout(DEADLINE.as_secs());
        ev.set_network_options(net);
        let mut ev = handshake(ev).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let (sub_tx, subacks) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match ev.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let m = Msg {
                            topic: p.topic.clone(),
                            payload: p.payload.to_vec(),
                            retain: p.retain,
                        };
                        if tx.send(m).is_err() {
                            return;
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = sub_tx.send(());
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
        let mut c = Client {
            client,
            id: client_id.to_owned(),
            mac_key: None,
            rx,
            subacks,
            task,
            counter: 0,
        };
        c.client
            .publish(
                wire::presence_topic(client_id),
                QoS::AtLeastOnce,
                true,
                wire::encode(&"online")?,
            )
            .await?;
        c.subscribe(&wire::reply_topic(client_id)).await?;
        Ok(c)
    }

    /// Is the connection still up (its event loop still running)?
    pub fn is_connected(&self) -> bool {
        !self.task.is_finished()
    }

    /// Subscribes (QoS 1) and waits for the SUBACK.
    pub async fn subscribe(&mut self, filter: &str) -> anyhow::Result<()> {
        self.client.subscribe(filter, QoS::AtLeastOnce).await?;
        match tokio::time::timeout(DEADLINE, self.subacks.recv()).await {
            Ok(Some(())) => Ok(()),
            Ok(None) => bail!("connection closed before SUBACK for {filter}"),
            Err(_) => bail!("no SUBACK for {filter} in time"),
        }
    }

    /// Publishes a raw payload on a topic (QoS 1).
    pub async fn publish(&self, topic: &str, payload: Vec<u8>, retain: bool) -> anyhow::Result<()> {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload)
            .await?;
        Ok(())
    }

    /// A command id unique within this test process (ids are forever: never reuse one).
    pub fn next_id(&mut self) -> String {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        self.counter = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{}-{}-{}", self.id, std::process::id(), self.counter)
    }

    /// Signs and sends a command with a given id.
    pub async fn send_as(&mut self, id: &str, body: &CommandBody) -> anyhow::Result<()> {
        let key = self.mac_key.context("client has no device keys")?;
        let env = Envelope::sign(id, &self.id, &key, body)?;
        self.publish(&wire::cmd_topic(&self.id), wire::encode(&env)?, false)
            .await
    }

    /// Sends a command and waits for its reply.
    pub async fn command(&mut self, body: &CommandBody) -> anyhow::Result<Reply> {
        let id = self.next_id();
        self.send_as(&id, body).await?;
        self.reply_to(&id).await
    }

    /// Waits for the reply to command `id` (other messages are dropped).
    pub async fn reply_to(&mut self, id: &str) -> anyhow::Result<Reply> {
        let topic = wire::reply_topic(&self.id);
        let id = id.to_owned();
        let m = self
            .wait_for(|m| {
                m.topic == topic && wire::decode::<Reply>(&m.payload).is_ok_and(|r| r.command == id)
            })
            .await?;
        Ok(wire::decode(&m.payload)?)
    }

    /// Waits for the first message matching `pred`, dropping others; fails at the deadline.
    pub async fn wait_for(&mut self, mut pred: impl FnMut(&Msg) -> bool) -> anyhow::Result<Msg> {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(m)) if pred(&m) => return Ok(m),
                Ok(Some(_)) => {}
                Ok(None) => bail!("connection closed while waiting"),
                Err(_) => bail!("nothing matching arrived before the deadline"),
            }
        }
    }

    /// The next message, whatever it is, with no deadline; `None` once the connection is gone.
    /// For long-running clients (the simulator) that dispatch every message themselves.
    pub async fn recv(&mut self) -> Option<Msg> {
        self.rx.recv().await
    }

    /// Everything that arrives within `window` (for asserting that something did NOT come).
    pub async fn drain_for(&mut self, window: Duration) -> Vec<Msg> {
        let mut out = Vec::new();
        let end = tokio::time::Instant::now() + window;
        while let Ok(Some(m)) = tokio::time::timeout_at(end, self.rx.recv()).await {
            out.push(m);
        }
        out
    }

    pub async fn disconnect(self) {
        let _ = self.client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while !self.task.is_finished() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
    }
}

/// Tries to log in and reports whether the broker refused.
pub async fn login_refused(port: u16, client_id: &str, user: &str, password: &str) -> bool {
    let (_c, ev) = AsyncClient::new(
        options(client_id, user, password, "127.0.0.1", port, KEEP_ALIVE),
        10,
    );
    handshake(ev).await.is_err()
}

/// Waits until `cond` holds, polling every 20 ms; fails with `what` at the deadline.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !cond() {
        if tokio::time::Instant::now() > deadline {
            bail!("timed out waiting: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

impl Daemon {
    /// Waits until a metric reaches at least `min`.
    pub async fn metric_at_least(&self, name: &str, min: f64) -> anyhow::Result<()> {
        eventually(&format!("{name} >= {min}"), || {
            self.metric(name).unwrap_or(0.0) >= min
        })
        .await
    }
}

/// A line for `place_order`.
pub fn line(item: &str, qty: u32) -> wire::LineInput {
    wire::LineInput {
        item: item.into(),
        qty,
        mods: vec![],
        notes: None,
        course: None,
    }
}

/// What a screen shows, built the way the protocol tells screens to: retained board snapshot,
/// then events with seq above it, `replay` on a gap.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub station: String,
    pub seq: u64,
    pub orders: std::collections::BTreeMap<String, docket_core::Order>,
}

impl View {
    pub fn from_board(b: wire::Board) -> View {
        View {
            station: b.station,
            seq: b.seq,
            orders: b.orders.into_iter().map(|o| (o.id.clone(), o)).collect(),
        }
    }

    /// Applies the next event; `Err(())` on a gap (the caller replays).
    #[allow(clippy::result_unit_err)]
    pub fn apply(&mut self, e: &wire::Event) -> Result<(), ()> {
        if e.seq <= self.seq {
            return Ok(());
        }
        if e.seq != self.seq + 1 {
            return Err(());
        }
        self.seq = e.seq;
        if docket_core::shows(&self.station, &e.order) {
            self.orders.insert(e.order_id.clone(), e.order.clone());
        } else {
            self.orders.remove(&e.order_id);
        }
        Ok(())
    }

    pub fn tickets(&self) -> Vec<u64> {
        let mut t: Vec<u64> = self.orders.values().map(|o| o.ticket).collect();
        t.sort();
        t
    }
}

impl Client {
    /// Waits for the retained board of `station` whose seq is at least `min_seq`.
    pub async fn board(&mut self, station: &str, min_seq: u64) -> anyhow::Result<wire::Board> {
        let topic = wire::board_topic(station);
        let m = self
            .wait_for(|m| {
                m.topic == topic
                    && wire::decode::<wire::Board>(&m.payload).is_ok_and(|b| b.seq >= min_seq)
            })
            .await?;
        Ok(wire::decode(&m.payload)?)
    }

    /// Replays every event after `after_seq`, following `more` pages.
    pub async fn replay_all(&mut self, mut after_seq: u64) -> anyhow::Result<Vec<wire::Event>> {
        let mut all = Vec::new();
        loop {
            let r = self.command(&CommandBody::Replay { after_seq }).await?;
            if !r.ok {
                bail!("replay refused: {:?}", r.error);
            }
            let events = r.events.unwrap_or_default();
            if let Some(last) = events.last() {
                after_seq = last.seq;
            }
            all.extend(events);
            if r.more != Some(true) {
                return Ok(all);
            }
        }
    }
}

/// A size-capped tmpfs mounted on a directory for as long as this lives (a full disk for the
/// disk tests). `None` where mounting is not allowed (it needs root): callers say the test is
/// skipped and why.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_owned()))
    }
}

impl Tmpfs {
    /// Fills the filesystem of `dir` until a write fails; returns the filler's path.
    pub fn fill(dir: &Path) -> anyhow::Result<PathBuf> {
        let path = dir.join("filler");
        let mut f = std::fs::File::create(&path)?;
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).and_then(|_| f.sync_all()).is_ok() {}
        // And the last few bytes.
        while f.write_all(&[0u8; 512]).and_then(|_| f.sync_all()).is_ok() {}
        Ok(path)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
