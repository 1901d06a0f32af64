//! The PostgreSQL relay: committed events after its cursor, in batches, each batch written by
//! `docket_cloud::Writer` in one transaction with the order projections; the cursor advances
//! only after the commit (in memory; SQLite's copy at most once a second, `backlog::Cursor`).
//! PostgreSQL is the de-duplication authority: a batch written
//! twice (a crash between the commit and the cursor) changes nothing the second time, and on
//! connect a cursor behind head office's `last_seq` jumps forward.
//!
//! Owns the loop, its cursor, lag and pruning; must not hold SQL or know head office's schema
//! (`docket_cloud`'s).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use docket_cloud::{CloudError, Writer};
use tokio_util::sync::CancellationToken;

use super::backlog::{self, BacklogHandle, Cursor};
use super::{pause, Backoff, Health};
use crate::clock::now_ms;
use crate::config::{SecretUrl, Uplink};
use crate::metrics::Metrics;
use crate::status::Status;
use crate::store::blocking::BlockingError;

const TARGET: &str = "postgres";
/// How often an idle relay tells head office it is alive (`docket.sites.last_contact`).
const CONTACT_EVERY: Duration = Duration::from_secs(60);
/// Menu versions relayed at most per step.
const MENU_BATCH: usize = 20;
/// How often relayed events are pruned from SQLite.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// What stops one step of the relay: head office, or the box's own store.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error(transparent)]
    Backlog(#[from] BlockingError),
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

/// The relay task: runs until `stop`.
pub async fn run(r: Relay) {
    let (m, c) = (&r.status.uplink.postgres, &r.metrics.uplink.postgres);
    let mut health = Health::new(TARGET);
    let mut backoff = Backoff::new(r.settings.backoff_min_ms, r.settings.backoff_max_ms);
    let Some((local, mut cursor)) = backlog::open_relay(r.db.clone(), TARGET).await else {
        return;
    };
    let mut client: Option<Writer> = None;
    let mut prices = Prices::default();
    let mut last_contact = Instant::now() - CONTACT_EVERY;
    let mut last_prune = Instant::now();
    loop {
        if r.stop.is_cancelled() {
            break;
        }
        let step = async {
            if client.as_ref().is_none_or(|c| c.is_closed()) {
                client = None;
                let c = docket_cloud::connect(&r.url, r.settings.timeouts()).await?;
                let from_pg = docket_cloud::site_last_seq(&c, &r.site_id).await?;
                // A batch committed there before the box could record it here: skip it.
                cursor.advance(from_pg);
                cursor.save(&local, true).await?;
                client = Some(Writer::new(c));
            }
            let Some(c) = client.as_mut() else {
                unreachable!("connected above")
            };
            relay_menus(&r, c, &local, &mut prices).await?;
            relay_once(
                &r,
                c,
                &local,
                &mut cursor,
                &prices.by_item,
                &mut last_contact,
            )
            .await
        };
        match step.await {
            Ok(moved) => {
                health.ok(m);
                backoff.reset();
                if last_prune.elapsed() >= PRUNE_EVERY {
                    last_prune = Instant::now();
                    prune(&r, &local).await;
                }
                if moved == 0
                    && !pause(&r.stop, Duration::from_millis(r.settings.poll_interval_ms)).await
                {
                    break;
                }
            }
            Err(e) => {
                client = None;
                health.failed((m, c), &e);
                update_lag(&r, &local, cursor.seq()).await;
                if !pause(&r.stop, backoff.next_delay()).await {
                    break;
                }
            }
        }
    }
    // Stopping: the cursor as it is, so a restart sends nothing again.
    if let Err(e) = cursor.save(&local, true).await {
        tracing::warn!(error = %e, "uplink postgres: the relay's cursor was not saved");
    }
}

async fn update_lag(r: &Relay, local: &BacklogHandle, cursor: u64) {
    let m = &r.status.uplink.postgres;
    if let Ok(lag) = local.lag_seconds(cursor, now_ms()).await {
        m.lag_seconds.store(lag, Relaxed);
    }
}

async fn prune(r: &Relay, local: &BacklogHandle) {
    if r.settings.retention_hours == 0 {
        return;
    }
    let relayed = r.status.uplink.postgres.cursor.load(Relaxed);
    let before = now_ms().saturating_sub(r.settings.retention_hours * 3_600_000);
    match local.run(move |l| l.prune(relayed, before)).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            events = n,
            up_to_seq = relayed,
            "pruned events already in PostgreSQL"
        ),
        Err(e) => tracing::warn!(error = %e, "pruning relayed events failed"),
    }
}

/// The menu's prices (cents) by item id, for `order_lines.unit_price_cents`: the box's menu as
/// it is when the order's lines are first relayed (head office keeps a line's first price).
/// And whether head office refused the menu versions (a head office not yet migrated to
/// `005_menus`): said once, and the events still go.
#[derive(Default)]
struct Prices {
    version: u64,
    by_item: HashMap<String, i64>,
    menus_refused: bool,
    /// The box's menu version when head office last had every version up to it: SQLite is
    /// read again only when the engine's menu version moves (or head office refused).
    relayed_up_to: Option<u64>,
}

/// Relays the menu versions head office lacks (`docket.menus`), and keeps the prices current.
async fn relay_menus(
    r: &Relay,
    client: &Writer,
    local: &BacklogHandle,
    prices: &mut Prices,
) -> Result<(), PgError> {
    let current = r.status.menu_version.load(Relaxed);
    if prices.relayed_up_to == Some(current) && !prices.menus_refused && prices.version != 0 {
        return Ok(());
    }
    let menus = local.run(|l| l.unrelayed_menus(MENU_BATCH)).await?;
    if let Some(top) = menus.last().map(|m| m.menu.version) {
        match docket_cloud::write_menus(client.client(), &r.site_id, &menus).await {
            Ok(()) => {
                local.run(move |l| l.menus_relayed(top, now_ms())).await?;
                if std::mem::take(&mut prices.menus_refused) {
                    tracing::info!("uplink postgres: head office takes the menu's versions again");
                }
            }
            // Head office answered no (its schema lacks docket.menus, or this site's role may
            // not write it): the kitchen's events must not wait for that. Tried again each step.
            Err(e) if e.is_refusal() => {
                if !std::mem::replace(&mut prices.menus_refused, true) {
                    tracing::warn!(error = %e, "uplink postgres: head office refuses the menu's versions (run `docketd uplink migrate` there); events are still relayed");
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    if menus.len() < MENU_BATCH && !prices.menus_refused {
        prices.relayed_up_to = Some(current);
    }
    let newer = menus
        .last()
        .is_some_and(|m| m.menu.version != prices.version);
    let stale = prices.version == 0 || newer;
    if stale {
        if let Some(menu) = local.run(|l| l.menu()).await? {
            prices.version = menu.version;
            prices.by_item = menu.items.iter().map(|i| (i.id.clone(), i.price)).collect();
        }
    }
    Ok(())
}

/// One batch (or a keep-alive when idle). Returns how many events it relayed.
async fn relay_once(
    r: &Relay,
    client: &mut Writer,
    local: &BacklogHandle,
    cursor: &mut Cursor,
    prices: &HashMap<String, i64>,
    last_contact: &mut Instant,
) -> Result<usize, PgError> {
    let (m, c) = (&r.status.uplink.postgres, &r.metrics.uplink.postgres);
    let events = local
        .events_after(cursor.seq(), r.settings.batch_size)
        .await?;
    m.cursor.store(cursor.seq(), Relaxed);
    m.lag_seconds
        .store(backlog::lag_of(&events, now_ms()), Relaxed);
    if events.is_empty() {
        cursor.save(local, true).await?;
        if last_contact.elapsed() >= CONTACT_EVERY {
            docket_cloud::record_contact(client.client(), &r.site_id, crate::VERSION).await?;
            *last_contact = Instant::now();
        }
        return Ok(0);
    }
    let last = events.last().map_or(cursor.seq(), |e| e.seq);
    (client.write_batch(&r.site_id, crate::VERSION, &events, prices)).await?;
    *last_contact = Instant::now();
    cursor.advance(last);
    cursor.save(local, false).await?;
    m.cursor.store(last, Relaxed);
    c.relayed.fetch_add(events.len() as u64, Relaxed);
    Ok(events.len())
}
