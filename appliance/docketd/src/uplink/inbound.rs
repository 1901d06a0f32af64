//! Head office's downlink: orders from outside (online, delivery, kiosk), inserted at head office
//! into `docket.inbound_orders`, applied on this box once each, in order.
//!
//! Woken by head office's NOTIFY on each insert, polling as the backstop, the task reads this
//! site's rows after the last one head office has a result for (`docket.inbound_results`: the
//! cursor lives there, so a box that loses its disk does not apply anything twice), turns each
//! into a `place_order` of the box's `integration` device (`[uplink] inbound_device`, registered at
//! start) and hands it to the engine through [`crate::integration::Submitter`]: the same checks,
//! the same order rules, exactly once by the command id `in-<source>:<source_id>`. What became of
//! each (the order and ticket, or the refusal's code and message) is written back.
//!
//! Owns the loop; must not decide order rules (core's) nor hold head office's SQL (`docket_cloud`).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use docket_cloud::inbound::{InboundOrder, InboundResult};
use docket_cloud::{Client, CloudError};
use docket_core::order::Service;
use docket_core::wire::{CommandBody, LineInput, Reply};
use docket_core::{Code, Role};
use serde::Deserialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{pause, Backoff};
use crate::config::{SecretUrl, Uplink};
use crate::integration::{SubmitError, Submitter};

/// Rows read per step.
const PAGE: i64 = 100;
/// How long a row refused `rate_limited` waits before it is sent again (same id).
const RATE_WAIT: Duration = Duration::from_millis(100);

pub struct Downlink {
    pub site_id: String,
    pub url: SecretUrl,
    pub settings: Uplink,
    /// The integration device inbound orders are placed as.
    pub device: String,
    pub submitter: Submitter,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub stop: CancellationToken,
}

/// What head office writes in `payload`: the order as a POS would describe it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    /// As staff see it on the ticket; the row's `source` when absent.
    #[serde(default)]
    channel: Option<String>,
    /// The order's number on its channel; the row's `source_id` when absent.
    #[serde(default)]
    reference: Option<String>,
    /// Absent: delivery (an order from outside rarely sits at a table).
    #[serde(default)]
    service: Option<Service>,
    /// What the ticket shows as its table: absent, the way it leaves ("delivery", "takeaway"),
    /// or the channel for a dine-in order (a kiosk's).
    #[serde(default)]
    table: Option<String>,
    #[serde(default)]
    server: Option<String>,
    lines: Vec<LineInput>,
}

/// The command an inbound row becomes, or why it cannot be one.
pub fn command_of(row: &InboundOrder) -> Result<CommandBody, (Code, String)> {
    let p: Payload = serde_json::from_value(row.payload.clone()).map_err(|e| {
        (
            Code::MalformedBody,
            format!(
                "payload of {}:{} is not an order: {e}",
                row.source, row.source_id
            ),
        )
    })?;
    let channel = p.channel.unwrap_or_else(|| row.source.clone());
    let reference = p.reference.unwrap_or_else(|| row.source_id.clone());
    let service = p.service.unwrap_or(Service::Delivery);
    let table = p
        .table
        .unwrap_or_else(|| crate::integration::table_for(Some(service), &channel));
    Ok(CommandBody::PlaceOrder {
        table,
        lines: p.lines,
        service: Some(service),
        server: p.server,
        channel: Some(channel),
        reference: Some(reference),
    })
}

/// The command id of an inbound row: its identity at head office, (source, source_id).
pub fn command_id(row: &InboundOrder) -> String {
    format!("in-{}:{}", row.source, row.source_id)
}

fn result_of(seq: i64, reply: &Reply) -> InboundResult {
    InboundResult {
        seq,
        ok: reply.ok,
        order_id: reply.order_id.clone(),
        ticket: reply.ticket.map(|t| t as i64),
        code: reply.error.as_ref().map(|e| e.code.as_str().to_owned()),
        message: reply.error.as_ref().map(|e| e.message.clone()),
    }
}

/// Why a step stopped: head office, or the box could not take the order now.
#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error(transparent)]
    Submit(#[from] SubmitError),
}

/// Registers the integration device inbound orders are placed as, unless it is there.
/// Refuses a device of that id with another role (a technician's mistake to fix, not to paper
/// over); a revoked one stays revoked: the downlink then waits, and says so.
pub fn ensure_device(cfg: &crate::config::Config, id: &str) -> anyhow::Result<()> {
    let conn = crate::store::connect(&cfg.db_path())?;
    match crate::store::devices::get(&conn, id)? {
        Some(d) if d.role == Role::Integration => Ok(()),
        Some(d) => anyhow::bail!(
            "uplink.inbound_device {id:?} is a {} device, not an integration: choose another id",
            d.role.as_str()
        ),
        None => {
            let row = crate::store::registry::new_device(
                id,
                "integration",
                &[],
                crate::clock::wall_ms(),
            )?;
            crate::store::devices::add(&conn, &row)?;
            tracing::info!(
                device = id,
                "registered integration device for head office's orders"
            );
            Ok(())
        }
    }
}

/// The downlink task: runs until `stop`.
pub async fn run(d: Downlink) {
    let notify = Arc::new(Notify::new());
    let mut backoff = Backoff::new(d.settings.backoff_min_ms, d.settings.backoff_max_ms);
    let poll = Duration::from_millis(d.settings.inbound_poll_ms);
    let mut client: Option<Client> = None;
    let mut down = false;
    let m = &d.metrics.uplink.inbound;
    m.configured.store(true, Relaxed);
    loop {
        if d.stop.is_cancelled() {
            return;
        }
        match step(&d, &mut client, &notify).await {
            Ok(more) => {
                m.up.store(true, Relaxed);
                if down {
                    tracing::info!("head office's inbound orders: reachable again");
                    down = false;
                }
                backoff.reset();
                if more {
                    continue;
                }
                tokio::select! {
                    _ = d.stop.cancelled() => return,
                    _ = notify.notified() => {}
                    _ = tokio::time::sleep(poll) => {}
                }
            }
            Err(e) => {
                m.up.store(false, Relaxed);
                m.failures.fetch_add(1, Relaxed);
                if !down {
                    tracing::warn!(error = %e, "head office's inbound orders: cannot take them now; retrying with backoff (logged again when it works)");
                    down = true;
                }
                if matches!(e, StepError::Cloud(_)) {
                    client = None;
                }
                if !pause(&d.stop, backoff.next_delay()).await {
                    return;
                }
            }
        }
    }
}

/// One page: the rows after the last result, applied in order and their results written.
/// True when a full page was applied (there may be more).
async fn step(
    d: &Downlink,
    client: &mut Option<Client>,
    notify: &Arc<Notify>,
) -> Result<bool, StepError> {
    if client.as_ref().is_none_or(|c| c.is_closed()) {
        *client = None;
        let c = docket_cloud::connect_listening(
            &d.url,
            d.settings.timeouts(),
            notify.clone(),
            docket_cloud::inbound::CHANNEL,
        )
        .await?;
        *client = Some(c);
    }
    let c = client.as_mut().expect("connected above");
    let after = docket_cloud::inbound::last_result(c, &d.site_id).await?;
    let rows = docket_cloud::inbound::inbound_after(c, &d.site_id, after, PAGE).await?;
    let mut results = Vec::with_capacity(rows.len());
    let mut failed = None;
    for row in &rows {
        match apply(d, row).await {
            Ok(r) => results.push(r),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    if !results.is_empty() {
        docket_cloud::inbound::record_results(c, &d.site_id, &results).await?;
        let placed = results.iter().filter(|r| r.ok).count() as u64;
        let m = &d.metrics.uplink.inbound;
        m.placed.fetch_add(placed, Relaxed);
        m.refused.fetch_add(results.len() as u64 - placed, Relaxed);
    }
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(rows.len() as i64 == PAGE),
    }
}

/// One row applied (or refused with its reason); a box that cannot take it now says so.
async fn apply(d: &Downlink, row: &InboundOrder) -> Result<InboundResult, SubmitError> {
    let cmd = match command_of(row) {
        Ok(c) => c,
        Err((code, message)) => {
            tracing::info!(seq = row.seq, source = %row.source, id = %row.source_id, code = code.as_str(), "inbound order refused: {message}");
            return Ok(InboundResult {
                seq: row.seq,
                ok: false,
                order_id: None,
                ticket: None,
                code: Some(code.as_str().to_owned()),
                message: Some(message),
            });
        }
    };
    let id = command_id(row);
    loop {
        let reply = d.submitter.submit(&d.device, &id, &cmd).await?;
        let code = reply.error.as_ref().map(|e| e.code);
        // Not a decision: the same id again in a moment.
        if matches!(
            code,
            Some(Code::RateLimited | Code::StorageFull | Code::Internal)
        ) {
            if !pause(&d.stop, RATE_WAIT).await {
                return Err(SubmitError::Stopped);
            }
            continue;
        }
        if let Some(e) = &reply.error {
            tracing::info!(seq = row.seq, source = %row.source, id = %row.source_id, code = e.code.as_str(), "inbound order refused: {}", e.message);
        }
        return Ok(result_of(row.seq, &reply));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(payload: serde_json::Value) -> InboundOrder {
        InboundOrder {
            seq: 7,
            source: "deliveroo".into(),
            source_id: "DR-4411".into(),
            payload,
        }
    }

    #[test]
    fn a_row_becomes_a_delivery_order_of_its_channel_with_its_reference() {
        let r = row(json!({"lines": [{"item": "burger-classic", "qty": 2, "mods": ["no-onion"]}]}));
        let CommandBody::PlaceOrder {
            table,
            lines,
            service,
            channel,
            reference,
            ..
        } = command_of(&r).unwrap()
        else {
            panic!("not a place_order")
        };
        assert_eq!(table, "delivery");
        assert_eq!(service, Some(Service::Delivery));
        assert_eq!(channel.as_deref(), Some("deliveroo"));
        assert_eq!(reference.as_deref(), Some("DR-4411"));
        assert_eq!(lines[0].mods, vec!["no-onion".to_owned()]);
        assert_eq!(command_id(&r), "in-deliveroo:DR-4411");
    }

    #[test]
    fn the_payload_may_name_channel_service_and_table() {
        let r = row(
            json!({"channel": "Kiosk 2", "service": "takeaway", "table": "K7",
                           "lines": [{"item": "fries", "qty": 1}]}),
        );
        let CommandBody::PlaceOrder {
            table,
            service,
            channel,
            ..
        } = command_of(&r).unwrap()
        else {
            panic!("not a place_order")
        };
        assert_eq!((table.as_str(), service), ("K7", Some(Service::Takeaway)));
        assert_eq!(channel.as_deref(), Some("Kiosk 2"));
    }

    #[test]
    fn a_dine_in_order_without_a_table_takes_its_channel() {
        let r = row(json!({"service": "dine_in", "lines": [{"item": "fries", "qty": 1}]}));
        let CommandBody::PlaceOrder { table, .. } = command_of(&r).unwrap() else {
            panic!("not a place_order")
        };
        assert_eq!(table, "deliveroo");
    }

    #[test]
    fn a_payload_that_is_not_an_order_is_refused_malformed_with_the_reason() {
        for bad in [
            json!({"lines": "burger"}),
            json!({"lines": [{"item": "fries"}]}),
            json!({"lines": [], "tip": 5}),
            json!([1, 2]),
        ] {
            let (code, message) = command_of(&row(bad.clone())).unwrap_err();
            assert_eq!(code, Code::MalformedBody, "{bad}");
            assert!(message.contains("deliveroo:DR-4411"), "{message}");
        }
    }
}
