//! The docketd process under test: its own temp data dir, config and free ports (optionally its
//! own network namespace or a launcher), started, restarted, killed and dropped; its CLI and
//! store. Owns the child process; must not speak HTTP or MQTT itself (see `http`, `mqtt`).

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::netns::Netns;
use crate::{free_port, Creds, DEADLINE};

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

/// Runs `docketd args [--config config]` to its end with `env`, `stdin` fed to it (`None`: no
/// input); its stdout and stderr collected.
pub fn docketd_output(
    args: &[&str],
    config: Option<&Path>,
    env: &[(String, String)],
    stdin: Option<&str>,
) -> anyhow::Result<Output> {
    let mut cmd = Command::new(docketd_bin());
    cmd.args(args);
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    let mut child = cmd
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", docketd_bin().display()))?;
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().context("stdin")?;
        pipe.write_all(input.as_bytes())?;
    }
    Ok(child.wait_with_output()?)
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
        self.cli_fed(args, None)
    }

    /// Like [`Daemon::cli`], feeding `stdin` to the command.
    pub fn cli_with_stdin(&self, args: &[&str], stdin: &str) -> anyhow::Result<String> {
        self.cli_fed(args, Some(stdin))
    }

    fn cli_fed(&self, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
        let out = docketd_output(args, Some(&self.config), &self.env, stdin)?;
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
