//! `docket fleet serve`: head office's fleet view, a small web page of every site live or
//! stalled, its sync lag, orders per hour and speed of service, with an alert list of stalled
//! sites. See docs/operations.md, "Fleet view".
//!
//! One task reads PostgreSQL (and, when given, each site's Redis status hash) every
//! [`POLL`] (the 24-hour charts every 30 s) and keeps the latest reading; requests are answered from it, so a hundred open
//! pages cost the database no more than one. When the database is down the reading says so and
//! the server keeps running (the page keeps its last data). Read-only: never writes anywhere.

mod http;
mod query;
mod redis;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use docket_cloud::{SecretUrl, Timeouts};
use tokio::sync::watch;

pub use query::Fleet;

/// How often the server reads the database.
const POLL: Duration = Duration::from_secs(2);
/// Give up on one reading after this (a database that stopped answering mid-query).
const READ_WITHIN: Duration = Duration::from_secs(15);
const TIMEOUTS: Timeouts = Timeouts {
    connect_ms: 3_000,
    statement_ms: 10_000,
};

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Head office's PostgreSQL (a role that may read schema `docket`, e.g. the admin's).
    #[arg(long, env = "DOCKET_FLEET_POSTGRES")]
    postgres: String,
    /// Head office's Redis, for each site's last relay time (optional).
    #[arg(long, env = "DOCKET_FLEET_REDIS")]
    redis: Option<String>,
    /// Address to serve the page on (port 0: any free port, printed).
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: String,
}

/// The latest reading, as the handlers see it.
#[derive(Clone)]
pub enum Reading {
    /// No reading finished yet.
    Starting,
    Ok(Arc<Fleet>),
    /// The last reading failed: why, and since when (ms since the epoch).
    Down {
        error: String,
        since_ms: i64,
    },
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Checks the arguments (a bad one is an error before anything starts), binds, and serves
/// until SIGINT/SIGTERM.
pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let listen: SocketAddr = args.listen.parse().with_context(|| {
        format!(
            "--listen {:?} is not an address and port (e.g. 127.0.0.1:8090)",
            args.listen
        )
    })?;
    args.postgres
        .parse::<tokio_postgres::Config>()
        .with_context(|| {
            format!(
                "--postgres is not a PostgreSQL URL ({})",
                SecretUrl::new(args.postgres.as_str()).redacted()
            )
        })?;
    let pg = SecretUrl::new(args.postgres);
    let redis = match args.redis.filter(|r| !r.is_empty()) {
        Some(r) => {
            // One server or a `redis+cluster://` cluster, read as the relay reads it.
            let url = SecretUrl::new(r);
            let bad = || format!("--redis is not a Redis URL ({})", url.redacted());
            match docket_cloud::redis::Target::parse(&url).with_context(bad)? {
                docket_cloud::redis::Target::Single(u) => {
                    ::redis::Client::open(u.as_str()).with_context(bad)?;
                }
                docket_cloud::redis::Target::Cluster(nodes) => {
                    for n in &nodes {
                        ::redis::Client::open(n.as_str()).with_context(bad)?;
                    }
                }
            }
            Some(url)
        }
        None => None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        println!("fleet view on http://{addr}/ (reading {})", pg.redacted());
        let (tx, rx) = watch::channel(Reading::Starting);
        tokio::spawn(poll(pg, redis, tx));
        axum::serve(listener, http::router(rx))
            .with_graceful_shutdown(shutdown())
            .await
            .context("serving the fleet view")?;
        Ok(ExitCode::SUCCESS)
    })
}

async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// Reads the fleet every [`POLL`], reconnecting after any failure; says on stderr when the
/// database goes away and comes back (once each, not every poll).
async fn poll(pg: SecretUrl, redis: Option<SecretUrl>, tx: watch::Sender<Reading>) {
    let mut client: Option<docket_cloud::Client> = None;
    let mut charts: Option<query::Charts> = None;
    let mut redis_conn = redis::Status::new(redis);
    loop {
        let reading =
            match tokio::time::timeout(READ_WITHIN, read_once(&pg, &mut client, &mut charts)).await
            {
                Ok(Ok(mut fleet)) => {
                    redis_conn.annotate(&mut fleet).await;
                    Reading::Ok(Arc::new(fleet))
                }
                Ok(Err(e)) => {
                    client = None;
                    down(&tx, chain(&e))
                }
                Err(_) => {
                    client = None;
                    down(
                        &tx,
                        format!("PostgreSQL did not answer within {READ_WITHIN:?}"),
                    )
                }
            };
        match (&*tx.borrow(), &reading) {
            (Reading::Down { .. }, Reading::Ok(_)) => eprintln!("head office database is back"),
            (Reading::Ok(_) | Reading::Starting, Reading::Down { error, .. }) => {
                eprintln!("head office database unreachable: {error}")
            }
            _ => {}
        }
        tx.send_replace(reading);
        tokio::time::sleep(POLL).await;
    }
}

/// The error and its causes, each said once (the PostgreSQL error already quotes its source).
fn chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !out.contains(&s) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&s);
        }
    }
    out
}

/// A `Down` reading, keeping the time it first went down.
fn down(tx: &watch::Sender<Reading>, error: String) -> Reading {
    let since_ms = match &*tx.borrow() {
        Reading::Down { since_ms, .. } => *since_ms,
        _ => now_ms(),
    };
    Reading::Down { error, since_ms }
}

async fn read_once(
    pg: &SecretUrl,
    client: &mut Option<docket_cloud::Client>,
    charts: &mut Option<query::Charts>,
) -> anyhow::Result<Fleet> {
    let c = match client {
        Some(c) if !c.is_closed() => c,
        _ => client.insert(
            docket_cloud::connect_as(pg, TIMEOUTS, "docket-fleet")
                .await
                .with_context(|| format!("cannot connect to {}", pg.redacted()))?,
        ),
    };
    query::read(c, charts)
        .await
        .map_err(docket_cloud::CloudError::from)
        .context("reading the fleet views (has `docket cloud init` applied schema 008_fleet?)")
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_error_chain_says_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let e = anyhow::Error::new(io)
            .context("PostgreSQL: error connecting to server: Connection refused")
            .context("cannot connect to postgres://u:***@db/x");
        assert_eq!(
            super::chain(&e),
            "cannot connect to postgres://u:***@db/x: PostgreSQL: error connecting to server: \
             Connection refused"
        );
    }
}
