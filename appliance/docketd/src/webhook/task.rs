//! One webhook's delivery loop: the events after its cursor, oldest first; those of orders its
//! integration placed are POSTed one at a time, each retried with backoff until a 2xx (a
//! receiver that is down holds the queue: nothing later goes before it); the cursor moves only
//! past what is delivered or not this device's. A stop (or a crash) between a 2xx and the
//! cursor write sends that event again after the restart: at-least-once, with the same
//! `Docket-Event-Id`.

use std::sync::Arc;

use docket_core::wire::{self, Event};
use rusqlite::params;
use tokio_util::sync::CancellationToken;

use super::{log, payload, Db, Webhooks, POLL};
use crate::store::webhooks::{self, Webhook};
use crate::store::StoreError;

/// Events read per look at the log.
const BATCH: usize = 100;

fn events_after(c: &rusqlite::Connection, after: u64) -> Result<Vec<Event>, StoreError> {
    let mut stmt =
        c.prepare_cached("SELECT payload FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
    let mut rows = stmt.query(params![after, BATCH as i64])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let payload: Vec<u8> = r.get(0)?;
        out.push(wire::decode::<Event>(&payload)?);
    }
    Ok(out)
}

/// Waits `d` unless stopped first; false when stopped.
async fn wait(stop: &CancellationToken, d: std::time::Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

pub(super) async fn run(hooks: Arc<Webhooks>, db: Db, hook: Webhook, stop: CancellationToken) {
    let device = hook.device.clone();
    let mut cursor = hook.cursor;
    let mut store_failures = 0;
    loop {
        let batch = match db.run(move |c| events_after(c, cursor)).await {
            Ok(b) => b,
            Err(e) => {
                store_failures += 1;
                tracing::warn!(device = %device, error = ?e, "webhook: cannot read the events");
                let d = payload::backoff(store_failures, hooks.backoff_max, rand::random());
                if !wait(&stop, d).await {
                    return;
                }
                continue;
            }
        };
        store_failures = 0;
        let Some(last) = batch.last().map(|e| e.seq) else {
            if !wait(&stop, POLL).await {
                return;
            }
            continue;
        };
        for event in batch.iter().filter(|e| payload::is_for(e, &device)) {
            // The events before this one are not this device's: past them first.
            if !deliver(&hooks, &db, &hook, event, &stop).await {
                return;
            }
            cursor = event.seq;
            advance(&db, &device, cursor).await;
        }
        if last > cursor {
            cursor = last;
            advance(&db, &device, cursor).await;
        }
    }
}

async fn advance(db: &Db, device: &str, seq: u64) {
    let d = device.to_owned();
    if let Err(e) = db.run(move |c| webhooks::advance(c, &d, seq)).await {
        // Not fatal: the cursor in memory moves on; after a restart these are sent again.
        tracing::warn!(device = %device, seq, error = ?e, "webhook: cannot store the cursor");
    }
}

/// Sends `event` until the receiver answers 2xx; false when stopped first.
async fn deliver(
    hooks: &Webhooks,
    db: &Db,
    hook: &Webhook,
    event: &Event,
    stop: &CancellationToken,
) -> bool {
    let id = payload::event_id(&hooks.site, event.seq);
    let body = payload::body(&hooks.site, event);
    let mut attempt = 1u32;
    loop {
        let what = (
            Some(event.seq),
            event.kind.as_str(),
            Some(event.order_id.as_str()),
            attempt,
        );
        let sending = hooks.post(hook, &id, body.clone(), what);
        let d = tokio::select! {
            _ = stop.cancelled() => return false,
            d = sending => d,
        };
        let ok = d.http_status.is_some_and(|s| (200..300).contains(&s));
        if attempt == 1 || ok || attempt.is_power_of_two() {
            tracing::debug!(device = %hook.device, seq = event.seq, attempt, status = ?d.http_status, error = ?d.error, "webhook delivery");
        }
        if !ok && attempt == 1 {
            tracing::warn!(device = %hook.device, seq = event.seq, status = ?d.http_status, error = ?d.error, "webhook: the receiver did not take an event; retrying with backoff");
        }
        log(db, d).await;
        if ok {
            return true;
        }
        let wait_for = payload::backoff(attempt, hooks.backoff_max, rand::random());
        if !wait(stop, wait_for).await {
            return false;
        }
        attempt = attempt.saturating_add(1);
    }
}
