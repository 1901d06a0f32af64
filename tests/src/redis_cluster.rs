//! A three-node Redis Cluster of real `redis-server` processes (cluster mode, no replicas),
//! each on free ports (client and cluster bus) with a directory of its own, made into a cluster
//! once by `redis-cli --cluster create`. Killed, all nodes go; started again, each reads its
//! `nodes.conf` and append-only file, so the same cluster comes back with its data.
//!
//! [`crate::servers::Redis`] hands one of these out instead of a single server when
//! `DOCKET_TEST_REDIS=cluster`, so the relay tests run unchanged against a cluster.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::{free_port, DEADLINE};

/// Nodes in the cluster: the fewest masters `redis-cli --cluster create` accepts.
const NODES: usize = 3;

/// True when the tests' Redis should be a cluster (`DOCKET_TEST_REDIS=cluster`).
pub fn wanted() -> bool {
    std::env::var("DOCKET_TEST_REDIS").is_ok_and(|v| v == "cluster")
}

struct Node {
    port: u16,
    bus_port: u16,
    child: Option<Child>,
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    nodes: Vec<Node>,
    created: bool,
}

/// `n` distinct free ports.
fn free_ports(n: usize) -> Vec<u16> {
    let mut ports: Vec<u16> = Vec::with_capacity(n);
    while ports.len() < n {
        let p = free_port();
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    ports
}

impl Cluster {
    /// Picks the ports and directories; no node is running.
    pub fn init() -> anyhow::Result<Cluster> {
        let dir = tempfile::Builder::new()
            .prefix("docket-redis-cluster-")
            .tempdir()?;
        let ports = free_ports(2 * NODES);
        let nodes = ports
            .chunks(2)
            .map(|p| Node {
                port: p[0],
                bus_port: p[1],
                child: None,
            })
            .collect();
        Ok(Cluster {
            dir,
            nodes,
            created: false,
        })
    }

    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// Every node as a seed: `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,…/`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .ports()
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}/", hosts.join(","))
    }

    /// One `redis://` URL per node.
    pub fn node_urls(&self) -> Vec<String> {
        self.ports()
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}/"))
            .collect()
    }

    /// Starts every node (again); the first time, makes them one cluster. Returns once every
    /// node says `cluster_state:ok`.
    pub fn up(&mut self) -> anyhow::Result<()> {
        for n in &mut self.nodes {
            let dir = self.dir.path().join(format!("node-{}", n.port));
            std::fs::create_dir_all(&dir)?;
            let child = Command::new("redis-server")
                .args(["--port", &n.port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes", "--cluster-config-file"])
                .arg(dir.join("nodes.conf"))
                .args(["--cluster-port", &n.bus_port.to_string()])
                .args(["--cluster-node-timeout", "2000"])
                .args(["--save", "", "--appendonly", "yes"])
                .args(["--appendfsync", "always"])
                .arg("--dir")
                .arg(&dir)
                .arg("--logfile")
                .arg(dir.join("redis.log"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting redis-server (apt-get install redis-server)")?;
            n.child = Some(child);
        }
        for p in self.ports() {
            wait_for(&format!("redis node {p} to answer PING"), || {
                let mut c =
                    redis::Client::open(format!("redis://127.0.0.1:{p}/"))?.get_connection()?;
                Ok(redis::cmd("PING").query::<String>(&mut c).is_ok())
            })?;
        }
        if !self.created {
            self.create()?;
            self.created = true;
        }
        for p in self.ports() {
            wait_for(&format!("redis node {p} to say cluster_state:ok"), || {
                let mut c =
                    redis::Client::open(format!("redis://127.0.0.1:{p}/"))?.get_connection()?;
                let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut c)?;
                Ok(info.contains("cluster_state:ok"))
            })?;
        }
        Ok(())
    }

    /// `redis-cli --cluster create`: the slots split over the nodes, no replicas.
    fn create(&self) -> anyhow::Result<()> {
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(self.ports().iter().map(|p| format!("127.0.0.1:{p}")))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .context("running redis-cli --cluster create")?;
        if !out.status.success() {
            bail!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// kill -9 of every node.
    pub fn kill9(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    /// A client of the whole cluster (commands routed by key slot).
    pub fn connection(&self) -> anyhow::Result<redis::cluster::ClusterConnection> {
        Ok(redis::cluster::ClusterClient::new(self.node_urls())?.get_connection()?)
    }

    /// A connection to the node listening on `port`, for what one node answers alone.
    pub fn node(&self, port: u16) -> anyhow::Result<redis::Connection> {
        Ok(redis::Client::open(format!("redis://127.0.0.1:{port}/"))?.get_connection()?)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Polls `ok` until it says true (an error counts as not yet); fails with `what` at the deadline.
fn wait_for(what: &str, mut ok: impl FnMut() -> anyhow::Result<bool>) -> anyhow::Result<()> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if ok().unwrap_or(false) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what} within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A connection to a single server or to a cluster, for tests that take either: each request
/// goes to the one it wraps (on a cluster, routed by its key's slot).
pub enum AnyConnection {
    Single(redis::Connection),
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl AnyConnection {
    fn inner(&mut self) -> &mut dyn redis::ConnectionLike {
        match self {
            AnyConnection::Single(c) => c,
            AnyConnection::Cluster(c) => c.as_mut(),
        }
    }

    fn inner_ref(&self) -> &dyn redis::ConnectionLike {
        match self {
            AnyConnection::Single(c) => c,
            AnyConnection::Cluster(c) => c.as_ref(),
        }
    }
}

impl redis::ConnectionLike for AnyConnection {
    fn req_packed_command(&mut self, cmd: &[u8]) -> redis::RedisResult<redis::Value> {
        self.inner().req_packed_command(cmd)
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> redis::RedisResult<Vec<redis::Value>> {
        self.inner().req_packed_commands(cmd, offset, count)
    }

    fn req_command(&mut self, cmd: &redis::Cmd) -> redis::RedisResult<redis::Value> {
        self.inner().req_command(cmd)
    }

    fn get_db(&self) -> i64 {
        self.inner_ref().get_db()
    }

    fn supports_pipelining(&self) -> bool {
        self.inner_ref().supports_pipelining()
    }

    fn check_connection(&mut self) -> bool {
        self.inner().check_connection()
    }

    fn is_open(&self) -> bool {
        self.inner_ref().is_open()
    }
}
