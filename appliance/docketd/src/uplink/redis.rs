//! The Redis relay: the live feed. Appends each committed event to the stream
//! `docket:{<site_id>}:events` (entry id `0-{seq}`, fields `seq`, `type`, `order_id`, `body` as
//! JSON; trimmed to about `redis_maxlen` entries) and keeps the hash `docket:{<site_id>}:status`
//! and the key `docket:{<site_id>}:menu` (the menu the box serves, as JSON, set again whenever its
//! version changes; its history is PostgreSQL's `docket.menus`). The braces are a Redis Cluster
//! hash tag: one site's keys share a slot, so the MULTI/EXEC pipelines that touch the stream
//! and the status hash (or the menu and the hash) are legal on a cluster too.
//! Its cursor is its own: Redis down never holds up PostgreSQL, and the reverse. Entry ids
//! follow seq, so an event already in the stream (a crash between the append and the cursor,
//! which is written at most once a second: `backlog::Cursor`) is skipped by comparing with the
//! stream's last id, read once per connection, never appended twice. (The technician's
//! login check is `docket_cloud::redis::probe`.) Keys of the names before the hash tag are
//! renamed once, on a single server ([`rename_old_keys`]).
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use docket_cloud::redis::Conn;
use tokio_util::sync::CancellationToken;

use super::backlog::{self, BacklogHandle, Cursor};
use super::{pause, Backoff, Health};
use crate::clock::now_ms;
use crate::config::{SecretUrl, Uplink};
use crate::metrics::Metrics;
use crate::status::Status;
use crate::store::blocking::BlockingError;

const TARGET: &str = "redis";

#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// Redis refused, failed or did not answer in time.
    #[error(transparent)]
    Redis(#[from] docket_cloud::redis::RedisError),
    #[error(transparent)]
    Backlog(#[from] BlockingError),
    #[error("encoding an event as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

pub struct Relay {
    pub db: PathBuf,
    pub site_id: String,
    pub url: SecretUrl,
    pub settings: Uplink,
    pub metrics: Arc<Metrics>,
    pub status: Arc<Status>,
    pub stop: CancellationToken,
}

/// The key names are head office's contract, spelled once in docket-cloud (the fleet view
/// reads them too).
pub use docket_cloud::redis::{menu_key, status_key, stream_key};

/// Each key under the name it had before the hash tag, and its name now.
fn renamed_keys(site: &str) -> [(String, String); 3] {
    [
        (format!("docket:{site}:events"), stream_key(site)),
        (format!("docket:{site}:status"), status_key(site)),
        (format!("docket:{site}:menu"), menu_key(site)),
    ]
}

/// One request to Redis, given up after `d`.
async fn timed<T>(
    d: Duration,
    f: impl std::future::Future<Output = Result<T, redis::RedisError>>,
) -> Result<T, RedisError> {
    Ok(docket_cloud::redis::timed(d, f).await?)
}

pub async fn run(r: Relay) {
    let (m, c) = (&r.status.uplink.redis, &r.metrics.uplink.redis);
    let mut health = Health::new(TARGET);
    let mut backoff = Backoff::new(r.settings.backoff_min_ms, r.settings.backoff_max_ms);
    let Some((local, mut cursor)) = backlog::open_relay(r.db.clone(), TARGET).await else {
        return;
    };
    let mut conn: Option<Conn> = None;
    // The stream's last seq, read once per connection: this relay is its only writer.
    let mut top: Option<u64> = None;
    // Old key names are looked for on the first connection of this run only.
    let mut renamed = false;
    // The menu version Redis has from this connection (none yet: set it once connected).
    let mut menu_sent: Option<u64> = None;
    loop {
        if r.stop.is_cancelled() {
            break;
        }
        let step = async {
            if conn.is_none() {
                let t = Duration::from_millis(r.settings.connect_timeout_ms);
                conn = Some(docket_cloud::redis::connect(&r.url, t).await?);
                menu_sent = None;
                top = None;
            }
            if !renamed {
                if let Some(c) = conn.as_mut().filter(|c| !c.is_cluster()) {
                    rename_old_keys(&r, c).await?;
                }
                renamed = true;
            }
            let Some(c) = conn.as_mut() else {
                unreachable!("connected above")
            };
            relay_menu(&r, c, &local, &mut menu_sent).await?;
            relay_once(&r, c, &local, &mut cursor, &mut top).await
        };
        match step.await {
            Ok(moved) => {
                health.ok(m);
                backoff.reset();
                if moved == 0
                    && !pause(&r.stop, Duration::from_millis(r.settings.poll_interval_ms)).await
                {
                    break;
                }
            }
            Err(e) => {
                conn = None;
                health.failed((m, c), &e);
                if let Ok(lag) = local.lag_seconds(cursor.seq(), now_ms()).await {
                    m.lag_seconds.store(lag, Relaxed);
                }
                if !pause(&r.stop, backoff.next_delay()).await {
                    break;
                }
            }
        }
    }
    // Stopping: the cursor as it is, so a restart reads nothing again.
    if let Err(e) = cursor.save(&local, true).await {
        tracing::warn!(error = %e, "uplink redis: the relay's cursor was not saved");
    }
}

/// A box that relayed before the hash tag left `docket:<site>:…` keys on its (single) Redis:
/// each is renamed to its new name when it exists and the new name does not (RENAMENX), so the
/// stream's history and its last id (what keeps an event from being appended twice) carry
/// over. A cluster never held the old names: their pipelines crossed slots and were refused.
async fn rename_old_keys(r: &Relay, c: &mut Conn) -> Result<(), RedisError> {
    let t = Duration::from_millis(r.settings.statement_timeout_ms);
    for (old, new) in renamed_keys(&r.site_id) {
        let exists: bool = timed(t, redis::cmd("EXISTS").arg(&old).query_async(c)).await?;
        if !exists {
            continue;
        }
        let moved: bool =
            timed(t, redis::cmd("RENAMENX").arg(&old).arg(&new).query_async(c)).await?;
        if moved {
            tracing::info!(from = %old, to = %new, "uplink redis: renamed a key to its cluster-safe name");
        } else {
            tracing::warn!(old = %old, new = %new, "uplink redis: both the old and the new key exist; the old one is left as it is");
        }
    }
    Ok(())
}

/// The seq of the stream's last entry (0 when empty or absent).
async fn stream_top(r: &Relay, c: &mut Conn) -> Result<u64, RedisError> {
    let t = Duration::from_millis(r.settings.statement_timeout_ms);
    let reply: redis::streams::StreamRangeReply = timed(
        t,
        redis::cmd("XREVRANGE")
            .arg(stream_key(&r.site_id))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(c),
    )
    .await?;
    Ok(reply
        .ids
        .first()
        .and_then(|e| e.id.split_once('-'))
        .and_then(|(ms, seq)| (ms == "0").then(|| seq.parse().ok()).flatten())
        .unwrap_or(0))
}

/// Sets `docket:{site}:menu` (and the status hash's `menu_version`) when the box's menu version
/// is not the one Redis was last given.
async fn relay_menu(
    r: &Relay,
    c: &mut Conn,
    local: &BacklogHandle,
    sent: &mut Option<u64>,
) -> Result<(), RedisError> {
    // The engine's committed menu version: SQLite is read only when it moved.
    let version = r.status.menu_version.load(Relaxed);
    if version == 0 || *sent == Some(version) {
        return Ok(());
    }
    let Some(menu) = local.run(|l| l.menu()).await? else {
        return Ok(());
    };
    let mut pipe = redis::pipe();
    pipe.atomic()
        .cmd("SET")
        .arg(menu_key(&r.site_id))
        .arg(serde_json::to_string(&menu)?)
        .ignore()
        .cmd("HSET")
        .arg(status_key(&r.site_id))
        .arg("menu_version")
        .arg(menu.version)
        .ignore();
    let t = Duration::from_millis(r.settings.statement_timeout_ms);
    timed(t, pipe.query_async::<()>(c)).await?;
    *sent = Some(menu.version);
    Ok(())
}

async fn relay_once(
    r: &Relay,
    c: &mut Conn,
    local: &BacklogHandle,
    cursor: &mut Cursor,
    stream: &mut Option<u64>,
) -> Result<usize, RedisError> {
    let (m, counts) = (&r.status.uplink.redis, &r.metrics.uplink.redis);
    let events = local
        .events_after(cursor.seq(), r.settings.batch_size)
        .await?;
    m.cursor.store(cursor.seq(), Relaxed);
    m.lag_seconds
        .store(backlog::lag_of(&events, now_ms()), Relaxed);
    if events.is_empty() {
        cursor.save(local, true).await?;
        return Ok(0);
    }
    let top = match *stream {
        Some(top) => top,
        None => stream_top(r, c).await?,
    };
    let last = events.last().map_or(cursor.seq(), |e| e.seq);
    let mut pipe = redis::pipe();
    pipe.atomic();
    let key = stream_key(&r.site_id);
    let mut appended = 0usize;
    for e in events.iter().filter(|e| e.seq > top) {
        pipe.cmd("XADD")
            .arg(&key)
            .arg("MAXLEN")
            .arg("~")
            .arg(r.settings.redis_maxlen)
            .arg(format!("0-{}", e.seq))
            .arg("seq")
            .arg(e.seq)
            .arg("type")
            .arg(e.kind.as_str())
            .arg("order_id")
            .arg(&e.order_id)
            .arg("body")
            .arg(serde_json::to_string(e)?)
            .ignore();
        appended += 1;
    }
    pipe.cmd("HSET")
        .arg(status_key(&r.site_id))
        .arg("site_id")
        .arg(&r.site_id)
        .arg("last_seq")
        .arg(last)
        .arg("relayed_at_ms")
        .arg(now_ms())
        .arg("docketd_version")
        .arg(crate::VERSION)
        .ignore();
    let t = Duration::from_millis(r.settings.statement_timeout_ms);
    timed(t, pipe.query_async::<()>(c)).await?;
    *stream = Some(top.max(last));
    cursor.advance(last);
    cursor.save(local, false).await?;
    m.cursor.store(last, Relaxed);
    counts.relayed.fetch_add(appended as u64, Relaxed);
    Ok(events.len())
}
