//! Real PostgreSQL and Redis servers for the uplink tests, each on a free port with its own
//! temp directory, started and killed (kill -9 included) by the test itself. Binaries come
//! from Debian's `postgresql` and `redis-server` packages (scripts/test.sh installs them);
//! `DOCKET_PG_BIN` names PostgreSQL's bin directory when it is not under /usr/lib/postgresql.
//! PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::redis_cluster::{AnyConnection, Cluster};
use crate::{free_port, DEADLINE};

/// Starts `cmd` with its output discarded (a server that logs to its own file).
fn spawn_quiet(cmd: &mut Command, what: &str) -> anyhow::Result<std::process::Child> {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {what}"))
}

fn pg_bin_dir() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("DOCKET_PG_BIN") {
        return Ok(PathBuf::from(p));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .context(
            "PostgreSQL is not installed (apt-get install postgresql) and DOCKET_PG_BIN is not set",
        )?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, p)| p.join("postgres").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, p)| p)
        .context("no PostgreSQL server binaries under /usr/lib/postgresql")
}

/// (uid, gid) of `postgres` when we are root and must switch to it.
fn run_as() -> Option<(u32, u32)> {
    // SAFETY-free check of our own uid: /proc/self/status "Uid:" line.
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    if uid != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&"postgres")).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

fn command(bin: &Path, user: Option<(u32, u32)>) -> Command {
    match user {
        Some((uid, gid)) => {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={gid}"))
                .arg("--clear-groups")
                .arg("--")
                .arg(bin);
            c
        }
        None => Command::new(bin),
    }
}

fn chown_tree(dir: &Path, user: Option<(u32, u32)>) -> anyhow::Result<()> {
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(dir, Some(uid), Some(gid))?;
        for e in std::fs::read_dir(dir)? {
            let p = e?.path();
            if p.is_dir() {
                chown_tree(&p, user)?;
            } else {
                std::os::unix::fs::chown(&p, Some(uid), Some(gid))?;
            }
        }
    }
    Ok(())
}

/// Hash partitions per site table of a partitioned head office: with
/// `DOCKET_TEST_POSTGRES=partitioned` the tests migrate their PostgreSQL that way (through
/// [`Postgres::migrate_args`]), so the relay tests run unchanged on a schema partitioned by site.
/// Unset (or `plain`): None. Four, so a few sites already land in different partitions.
pub fn test_partitions() -> Option<u32> {
    match std::env::var("DOCKET_TEST_POSTGRES").as_deref() {
        Ok("partitioned") => Some(4),
        Ok("plain") | Ok("") | Err(_) => None,
        Ok(other) => panic!("DOCKET_TEST_POSTGRES={other}: use partitioned or plain"),
    }
}

/// A PostgreSQL server of its own (trust auth on 127.0.0.1; superuser `postgres`).
pub struct Postgres {
    pub dir: tempfile::TempDir,
    pub port: u16,
    bin: PathBuf,
    user: Option<(u32, u32)>,
    child: Option<Child>,
    /// Server settings (`name=value`) given after the defaults, so they win: the fleet bench
    /// runs a durable server (`fsync=on`) with more connections.
    pub settings: Vec<String>,
}

impl Postgres {
    /// initdb only: the server is not running (an uplink that is down).
    pub fn init() -> anyhow::Result<Postgres> {
        let bin = pg_bin_dir()?;
        let user = run_as();
        let dir = tempfile::Builder::new().prefix("docket-pg-").tempdir()?;
        chown_tree(dir.path(), user)?;
        let out = command(&bin.join("initdb"), user)
            .args(["-D"])
            .arg(dir.path().join("data"))
            .args([
                "-U",
                "postgres",
                "-A",
                "scram-sha-256",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .arg("--pwfile")
            .arg({
                let pw = dir.path().join("pw");
                std::fs::write(&pw, "postgres\n")?;
                chown_tree(dir.path(), user)?;
                pw
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .context("running initdb")?;
        if !out.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(Postgres {
            dir,
            port: free_port(),
            bin,
            user,
            child: None,
            settings: Vec::new(),
        })
    }

    /// initdb and start.
    pub fn start() -> anyhow::Result<Postgres> {
        let mut pg = Postgres::init()?;
        pg.up()?;
        Ok(pg)
    }

    /// Starts the server (again) on the same data and port; waits until it accepts logins.
    pub fn up(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("postgres.log"))?;
        let child = command(&self.bin.join("postgres"), self.user)
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args([
                "-p",
                &self.port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
            ])
            .arg("-k")
            .arg(self.dir.path())
            .args(["-c", "fsync=off", "-c", "max_connections=50"])
            .args(self.settings.iter().flat_map(|s| ["-c", s.as_str()]))
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting postgres")?;
        self.child = Some(child);
        let deadline = Instant::now() + DEADLINE;
        // A runtime of its own, on a thread of its own: callers may be inside one already.
        let url = self.admin_url();
        let can_login = move || {
            let url = url.clone();
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|rt| {
                        rt.block_on(async {
                            tokio_postgres::connect(&url, tokio_postgres::NoTls)
                                .await
                                .is_ok()
                        })
                    })
                    .unwrap_or(false)
            })
            .join()
            .unwrap_or(false)
        };
        loop {
            let ok = can_login();
            if ok {
                return Ok(());
            }
            if let Some(c) = self.child.as_mut() {
                if let Some(st) = c.try_wait()? {
                    bail!("postgres exited with {st}: {}", self.log());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "postgres did not accept logins within {DEADLINE:?}: {}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// One of this server's own client tools (`pg_dump`, `psql`), of its version.
    pub fn tool(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    /// The superuser's URL.
    pub fn admin_url(&self) -> String {
        format!(
            "postgres://postgres:postgres@127.0.0.1:{}/postgres",
            self.port
        )
    }

    /// `docketd uplink migrate` as this server's superuser, partitioned when the run asks
    /// ([`test_partitions`]).
    pub fn migrate_args(&self) -> Vec<String> {
        let mut args: Vec<String> = ["uplink", "migrate", "--url", &self.admin_url()]
            .map(String::from)
            .into();
        if let Some(n) = test_partitions() {
            args.extend(["--partitions".to_owned(), n.to_string()]);
        }
        args
    }

    /// A URL for `user` with `password`.
    pub fn url(&self, user: &str, password: &str) -> String {
        format!(
            "postgres://{user}:{password}@127.0.0.1:{}/postgres",
            self.port
        )
    }

    /// kill -9 of the postmaster (its backends notice and exit).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Backends of a killed postmaster exit on their own; wait until the port is free.
        let deadline = Instant::now() + DEADLINE;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::fs::remove_file(self.dir.path().join("data/postmaster.pid"));
    }

    /// A superuser client (its connection task runs on the caller's runtime).
    pub async fn client(&self) -> anyhow::Result<tokio_postgres::Client> {
        let (client, conn) =
            tokio_postgres::connect(&self.admin_url(), tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A Redis server of its own, with an append-only file synced on every write (as head office
/// would run it), so that a restart keeps the stream. With `DOCKET_TEST_REDIS=cluster` it is a
/// three-node Redis Cluster instead ([`Cluster`]): `url` names it (`redis+cluster://`),
/// `connection` routes by key slot, `kill9` and `up` take every node down and back.
pub struct Redis {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    cluster: Option<Cluster>,
}

impl Redis {
    /// Picks the port (ports, for a cluster); the server is not running.
    pub fn init() -> anyhow::Result<Redis> {
        if crate::redis_cluster::wanted() {
            Redis::init_cluster()
        } else {
            Redis::init_single()
        }
    }

    /// One server, whatever `DOCKET_TEST_REDIS` says.
    pub fn init_single() -> anyhow::Result<Redis> {
        Ok(Redis {
            dir: tempfile::Builder::new().prefix("docket-redis-").tempdir()?,
            port: free_port(),
            child: None,
            cluster: None,
        })
    }

    /// A three-node cluster, whatever `DOCKET_TEST_REDIS` says; `port` is its first node's.
    pub fn init_cluster() -> anyhow::Result<Redis> {
        let cluster = Cluster::init()?;
        Ok(Redis {
            dir: tempfile::Builder::new().prefix("docket-redis-").tempdir()?,
            port: cluster.ports()[0],
            child: None,
            cluster: Some(cluster),
        })
    }

    pub fn start() -> anyhow::Result<Redis> {
        let mut r = Redis::init()?;
        r.up()?;
        Ok(r)
    }

    /// The cluster, when this is one.
    pub fn cluster(&self) -> Option<&Cluster> {
        self.cluster.as_ref()
    }

    pub fn up(&mut self) -> anyhow::Result<()> {
        if let Some(c) = self.cluster.as_mut() {
            return c.up();
        }
        let log = self.dir.path().join("redis.log");
        let mut cmd = Command::new("redis-server");
        let cmd = cmd
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&log);
        let child = spawn_quiet(cmd, "redis-server (apt-get install redis-server)")?;
        self.child = Some(child);
        let deadline = Instant::now() + DEADLINE;
        loop {
            let ok = redis::Client::open(self.url())
                .and_then(|c| c.get_connection())
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
                .is_ok();
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("redis did not answer within {DEADLINE:?}");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn url(&self) -> String {
        match &self.cluster {
            Some(c) => c.url(),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    pub fn kill9(&mut self) {
        if let Some(c) = self.cluster.as_mut() {
            c.kill9();
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn connection(&self) -> anyhow::Result<AnyConnection> {
        Ok(match &self.cluster {
            Some(c) => AnyConnection::Cluster(Box::new(c.connection()?)),
            None => AnyConnection::Single(redis::Client::open(self.url())?.get_connection()?),
        })
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Mosquitto on a free loopback port: the benchmark's reference broker. Anonymous logins,
/// nothing persisted, TCP_NODELAY on (its best setting for latency, as docketd's connections).
pub struct Mosquitto {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

impl Mosquitto {
    pub fn start() -> anyhow::Result<Mosquitto> {
        let dir = tempfile::Builder::new()
            .prefix("docket-mosquitto-")
            .tempdir()?;
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nuser root\n\
                 set_tcp_nodelay true\nmax_connections -1\nmax_queued_messages 100000\n\
                 log_dest file {}\nlog_type error\nlog_type warning\n",
                dir.path().join("mosquitto.log").display()
            ),
        )?;
        let bin = ["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("mosquitto");
        let mut cmd = Command::new(bin);
        cmd.arg("-c").arg(&conf);
        let child = spawn_quiet(&mut cmd, "mosquitto (apt-get install mosquitto)")?;
        let m = Mosquitto { dir, port, child };
        let deadline = Instant::now() + DEADLINE;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("mosquitto did not listen on {port} within {DEADLINE:?}");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Ok(m)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
