//! Head office's Redis: one server or a Redis Cluster, a connection within a deadline, every
//! request within one, and the login check the technician's laptop makes. docketd's relay (the
//! stream it writes) connects through [`connect`] and is docketd's.
//!
//! A cluster is named by its URL: `redis+cluster://[user:password@]host:port[,host:port…]`
//! (`rediss+cluster://` with TLS), the nodes being seeds (any one up is enough to learn the
//! rest). Parsing that spelling is here so docketd's config, the site bundle and the laptop's
//! probe agree on it.
//!
//! Writes nothing itself.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::{SecretUrl, Timeouts};

#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("Redis URL {url}: {why}")]
    Url { url: String, why: &'static str },
}

impl RedisError {
    /// The server answered and said no (bad password, no such user), as opposed to not being
    /// reachable at all.
    pub fn is_refusal(&self) -> bool {
        match self {
            RedisError::Redis(e) => {
                !e.is_io_error()
                    && !e.is_timeout()
                    && !e.is_connection_refusal()
                    && !e.is_connection_dropped()
            }
            RedisError::Url { .. } => true,
            RedisError::Timeout(_) => false,
        }
    }
}

/// The schemes of a cluster URL, plain and TLS, with the node scheme each becomes.
const CLUSTER_SCHEMES: [(&str, &str); 2] =
    [("redis+cluster", "redis"), ("rediss+cluster", "rediss")];

/// What a Redis URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One server (`redis://`, `rediss://`): the URL as written.
    Single(String),
    /// A Redis Cluster: one `redis://` (or `rediss://`) URL per seed node.
    Cluster(Vec<String>),
}

impl Target {
    /// Reads `url`: a `redis+cluster://` (or `rediss+cluster://`) URL becomes its seed nodes,
    /// each checked to be `host:port`; anything else is one server, left to the client library.
    pub fn parse(url: &SecretUrl) -> Result<Target, RedisError> {
        let s = url.expose();
        let bad = |why| RedisError::Url {
            url: url.redacted(),
            why,
        };
        let Some((node_scheme, rest)) = CLUSTER_SCHEMES.iter().find_map(|(c, n)| {
            s.strip_prefix(c)
                .and_then(|r| r.strip_prefix("://"))
                .map(|r| (n, r))
        }) else {
            return Ok(Target::Single(s.to_owned()));
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match rest.split_once('/') {
            Some((a, p)) => (a, p),
            None => (rest, ""),
        };
        if !matches!(path, "" | "0") {
            return Err(bad(
                "a Redis Cluster has only database 0 (end the URL with / or /0)",
            ));
        }
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let mut nodes = Vec::new();
        for node in hosts.split(',').map(str::trim) {
            let port = node.rsplit_once(':').map(|(h, p)| (h, p.parse::<u16>()));
            match port {
                Some((h, Ok(p))) if !h.is_empty() && p != 0 => {}
                _ => {
                    return Err(bad(
                        "each cluster node must be host:port, separated by commas",
                    ))
                }
            }
            let mut u = format!("{node_scheme}://");
            if let Some(ui) = userinfo {
                u += ui;
                u.push('@');
            }
            u += node;
            u.push('/');
            if let Some(q) = query {
                u.push('?');
                u += q;
            }
            nodes.push(u);
        }
        Ok(Target::Cluster(nodes))
    }
}

/// A connection to one server or to a cluster. Commands and pipelines go through
/// [`redis::aio::ConnectionLike`] either way; on a cluster, a pipeline (MULTI/EXEC included)
/// goes whole to the node owning its keys' slot, so every key of one must share a slot.
#[derive(Clone)]
pub enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Conn {
    pub fn is_cluster(&self) -> bool {
        matches!(self, Conn::Cluster(_))
    }
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// A site's event stream: entry id `0-{seq}`. The braces are a Redis Cluster hash tag: a
/// site's keys share one slot, so one MULTI/EXEC may touch them all.
pub fn stream_key(site: &str) -> String {
    format!("docket:{{{site}}}:events")
}

/// A site's status hash: `site_id`, `last_seq`, `relayed_at_ms`, `docketd_version`,
/// `menu_version`.
pub fn status_key(site: &str) -> String {
    format!("docket:{{{site}}}:status")
}

/// The menu a site serves now, as JSON.
pub fn menu_key(site: &str) -> String {
    format!("docket:{{{site}}}:menu")
}

/// Connects within `within`: to the server, or to the cluster (its slot map read from the
/// first seed that answers).
pub async fn connect(url: &SecretUrl, within: Duration) -> Result<Conn, RedisError> {
    match Target::parse(url)? {
        Target::Single(u) => {
            let client = redis::Client::open(u)?;
            Ok(Conn::Single(
                timed(within, client.get_multiplexed_async_connection()).await?,
            ))
        }
        Target::Cluster(nodes) => {
            // A few quick retries inside the client: a node down is the relay's to retry,
            // with its own backoff, not the client's for minutes. Each request's deadline is
            // the caller's (`timed`), as on one server: no response timeout of the client's.
            let client = redis::cluster::ClusterClientBuilder::new(nodes)
                .retries(2)
                .connection_timeout(within)
                .build()?;
            Ok(Conn::Cluster(
                timed(within, client.get_async_connection()).await?,
            ))
        }
    }
}

/// Connects and sends PING, each within `t.connect_ms`: what `docket uplink set` tries from the
/// technician's laptop (on a cluster, PING goes to one node, the slot map having been read).
pub async fn probe(url: &SecretUrl, t: Timeouts) -> Result<(), RedisError> {
    let t = Duration::from_millis(t.connect_ms);
    let mut conn = connect(url, t).await?;
    let _: String = timed(t, redis::cmd("PING").query_async(&mut conn)).await?;
    Ok(())
}

/// One request to Redis, given up after `d`.
pub async fn timed<T>(
    d: Duration,
    f: impl std::future::Future<Output = Result<T, redis::RedisError>>,
) -> Result<T, RedisError> {
    tokio::time::timeout(d, f)
        .await
        .map_err(|_| RedisError::Timeout(d))?
        .map_err(RedisError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Target, String> {
        Target::parse(&SecretUrl::new(s)).map_err(|e| e.to_string())
    }

    #[test]
    fn one_server_is_left_as_written() {
        assert_eq!(
            parse("rediss://:pw@hq:6380/0"),
            Ok(Target::Single("rediss://:pw@hq:6380/0".into()))
        );
    }

    #[test]
    fn a_cluster_url_becomes_its_seed_nodes() {
        assert_eq!(
            parse("redis+cluster://:pw@h1:7000, h2:7001/"),
            Ok(Target::Cluster(vec![
                "redis://:pw@h1:7000/".into(),
                "redis://:pw@h2:7001/".into()
            ]))
        );
        assert_eq!(
            parse("rediss+cluster://u:pw@h1:7000?protocol=3"),
            Ok(Target::Cluster(vec![
                "rediss://u:pw@h1:7000/?protocol=3".into()
            ]))
        );
    }

    #[test]
    fn a_bad_cluster_url_says_why_and_hides_the_password() {
        let e = parse("redis+cluster://:hunter2@h1:7000,h2/").unwrap_err();
        assert!(e.contains("host:port") && !e.contains("hunter2"), "{e}");
        let e = parse("redis+cluster://h1:7000/3").unwrap_err();
        assert!(e.contains("database 0"), "{e}");
        assert!(parse("redis+cluster://").is_err());
        assert!(parse("redis+cluster://h1:0").is_err());
    }
}
