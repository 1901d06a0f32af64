//! Orders from outside, down to a site (`docket.inbound_orders`, `sql/006_inbound.sql`): the
//! rows after a cursor, and what the box made of each (`docket.inbound_results`). The site's
//! role reads only its own rows (row-level security) and cannot write them.

use tokio_postgres::Client;

use crate::CloudError;

/// The channel head office's trigger notifies on each insert (the payload is the site id).
pub const CHANNEL: &str = "docket_inbound";

/// One order head office sent down.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundOrder {
    /// Per site, gapless, in commit order.
    pub seq: i64,
    /// Where it came from (1-16 characters: "deliveroo", "web", "kiosk").
    pub source: String,
    /// Its id there (1-32 characters). (source, source_id) is the order's identity.
    pub source_id: String,
    pub payload: serde_json::Value,
}

/// What became of one inbound order on the box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundResult {
    pub seq: i64,
    pub ok: bool,
    pub order_id: Option<String>,
    pub ticket: Option<i64>,
    /// The reject code and message when the box refused it.
    pub code: Option<String>,
    pub message: Option<String>,
}

/// The site's inbound orders with `seq` above `after`, in order, at most `limit`.
pub async fn inbound_after(
    c: &Client,
    site: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<InboundOrder>, CloudError> {
    let rows = c
        .query(
            "SELECT seq, source, source_id, payload::text FROM docket.inbound_orders
              WHERE site_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            &[&site, &after, &limit],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let payload: String = r.get(3);
            Ok(InboundOrder {
                seq: r.get(0),
                source: r.get(1),
                source_id: r.get(2),
                payload: serde_json::from_str(&payload)?,
            })
        })
        .collect()
}

/// The highest seq head office has a result for: where a box without a cursor starts.
pub async fn last_result(c: &Client, site: &str) -> Result<i64, CloudError> {
    let row = c
        .query_one(
            "SELECT coalesce(max(seq), 0) FROM docket.inbound_results WHERE site_id = $1",
            &[&site],
        )
        .await?;
    Ok(row.get(0))
}

/// Records what became of inbound orders, in one transaction; a result already recorded is
/// left as it was (the box tells the same thing again after a crash).
pub async fn record_results(
    c: &mut Client,
    site: &str,
    results: &[InboundResult],
) -> Result<(), CloudError> {
    let tx = c.transaction().await?;
    let insert = tx
        .prepare(
            "INSERT INTO docket.inbound_results
                 (site_id, seq, ok, order_id, ticket, code, message, applied_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, now())
             ON CONFLICT (site_id, seq) DO NOTHING",
        )
        .await?;
    for r in results {
        tx.execute(
            &insert,
            &[
                &site,
                &r.seq,
                &r.ok,
                &r.order_id,
                &r.ticket,
                &r.code,
                &r.message,
            ],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
