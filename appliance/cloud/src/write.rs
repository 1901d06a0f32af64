//! Writing to head office: a batch of events with the projections of the orders it touched
//! and the site's row, in one transaction; the site's last relayed seq; the idle keep-alive.
//!
//! `(site_id, seq)` is the primary key and inserts are `ON CONFLICT DO NOTHING`, projections
//! only move to a higher version: a batch written twice (a crash between the commit and the
//! box's cursor) changes nothing the second time. Executes what `project` decided; decides no
//! row itself, and keeps no cursor (the caller's).
//!
//! A batch costs two round trips: its statements are prepared once per connection (the first
//! batch), and the statements that do not wait on another's answer go together (PostgreSQL
//! still runs them one after another, in the order sent). A thousand sites each sending a
//! batch every poll made head office parse, plan and answer twelve messages a batch before.

use std::collections::HashMap;

use docket_core::wire::Event;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Statement};

use crate::project::{self, EventRow, LineRow, OrderRow, ReadyAt};
use crate::CloudError;

/// Head office's batch writer over one connection, with its statements prepared on it.
pub struct Writer {
    client: Client,
    prepared: Option<Prepared>,
    /// The ready lines head office holds of the open orders this writer wrote, as of its last
    /// commit: what [`ready_lines`] would answer for them. Only this connection writes this
    /// site's rows, so a batch asks head office only about orders it has not written (a new
    /// connection's first batches); a completed order leaves, and the whole is dropped past
    /// [`MAX_OPEN_ORDERS`] (asking again is always right).
    ready: HashMap<String, ReadyAt>,
}

/// Open orders a writer remembers the ready lines of.
const MAX_OPEN_ORDERS: usize = 10_000;

/// The batch's statements, prepared on the writer's connection.
struct Prepared {
    events: Statement,
    site: Statement,
    orders: Statement,
    lines: Statement,
}

impl Writer {
    pub fn new(client: Client) -> Writer {
        Writer {
            client,
            prepared: None,
            ready: HashMap::new(),
        }
    }

    /// The connection, for the odd statement (menus, the keep-alive, the site's last seq).
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Writes one batch: events, projections and the site row, in one transaction. `version`
    /// is the relaying docketd's, recorded in `docket.sites`.
    pub async fn write_batch(
        &mut self,
        site: &str,
        version: &str,
        events: &[Event],
        prices: &HashMap<String, i64>,
    ) -> Result<(), CloudError> {
        if self.prepared.is_none() {
            self.prepared = Some(Prepared::on(&self.client).await?);
        }
        let Some(st) = &self.prepared else {
            unreachable!("prepared above")
        };
        let c = &self.client;
        let rows = project::event_rows(events)?;
        let touched = project::touched_orders(events);
        let unknown: Vec<&str> = (touched.iter().copied())
            .filter(|id| !self.ready.contains_key(*id))
            .collect();
        let last = events.last().map_or(0, |e| e.seq as i64);
        let known = &self.ready;
        let written = async {
            // First the statements that wait on nothing, sent together; then the projections,
            // which need head office's ready lines, with the commit. The writes, rows from
            // arrays by primary key, take one plan for every batch: planning each one again
            // was a tenth of head office's CPU at a thousand sites. Not the read before them.
            let (_, mut prior, _, _, _) = tokio::try_join!(
                simple(c, "BEGIN"),
                ready_lines(c, site, &unknown),
                simple(c, "SET LOCAL plan_cache_mode = force_generic_plan"),
                insert_events(c, &st.events, site, &rows),
                async { Ok(c.execute(&st.site, &[&site, &last, &version]).await?) },
            )?;
            for id in &touched {
                if let Some(r) = known.get(*id) {
                    prior.insert((*id).to_owned(), r.clone());
                }
            }
            let p = project::orders(events, prior, prices)?;
            tokio::try_join!(
                upsert_orders(c, &st.orders, site, &p.orders),
                upsert_lines(c, &st.lines, site, &p.lines),
                // After a failed statement PostgreSQL ends the transaction here with a
                // rollback, and the failure is what this batch returns.
                simple(c, "COMMIT"),
            )?;
            Ok::<_, CloudError>(p.ready)
        };
        match written.await {
            Ok(after) => {
                self.remember(after);
                Ok(())
            }
            Err(e) => {
                if !self.client.is_closed() {
                    // A failure before the commit was sent leaves the transaction open: end
                    // it, so the connection can take the next batch (a no-op warning when none
                    // is open).
                    let _ = self.client.batch_execute("ROLLBACK").await;
                }
                Err(e)
            }
        }
    }
}

impl Writer {
    /// What head office holds now of the orders a committed batch touched.
    fn remember(&mut self, after: Vec<(&str, Option<ReadyAt>)>) {
        for (id, ready) in after {
            match ready {
                Some(r) => {
                    self.ready.insert(id.to_owned(), r);
                }
                None => {
                    self.ready.remove(id);
                }
            }
        }
        if self.ready.len() > MAX_OPEN_ORDERS {
            self.ready.clear();
        }
    }
}

async fn simple(c: &Client, sql: &str) -> Result<(), CloudError> {
    Ok(c.batch_execute(sql).await?)
}

impl Prepared {
    /// All four prepared together, in one round trip.
    async fn on(c: &Client) -> Result<Prepared, CloudError> {
        let (events, site, orders, lines) = tokio::try_join!(
            c.prepare(INSERT_EVENTS),
            c.prepare(UPSERT_SITE),
            c.prepare(UPSERT_ORDERS),
            c.prepare(UPSERT_LINES),
        )?;
        Ok(Prepared {
            events,
            site,
            orders,
            lines,
        })
    }
}

const UPSERT_SITE: &str = "INSERT INTO docket.sites (site_id, last_seq, docketd_version)
     VALUES ($1, $2, $3)
     ON CONFLICT (site_id) DO UPDATE SET
         last_seq = GREATEST(docket.sites.last_seq, EXCLUDED.last_seq),
         last_contact = now(), docketd_version = EXCLUDED.docketd_version";

/// Writes menu versions (`docket.menus`), each once: a version written twice changes nothing.
pub async fn write_menus(
    client: &Client,
    site: &str,
    menus: &[docket_core::menu::MenuChange],
) -> Result<(), CloudError> {
    let versions: Vec<i64> = menus.iter().map(|m| m.menu.version as i64).collect();
    let items = (menus.iter())
        .map(|m| serde_json::to_string(&m.menu.items))
        .collect::<Result<Vec<_>, _>>()?;
    let ats: Vec<i64> = menus.iter().map(|m| m.at as i64).collect();
    let devices: Vec<&str> = menus.iter().map(|m| m.device.as_str()).collect();
    let commands: Vec<&str> = menus.iter().map(|m| m.command.as_str()).collect();
    client
        .execute(
            "INSERT INTO docket.menus (site_id, version, items, changed_at, device, command)
             SELECT $1, version, items::jsonb, to_timestamp(at / 1000.0), device, command
             FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::text[])
                  AS t(version, items, at, device, command)
             ON CONFLICT (site_id, version) DO NOTHING",
            &[&site, &versions, &items, &ats, &devices, &commands],
        )
        .await?;
    Ok(())
}

/// The highest seq head office has of this site (0 for a site it has never heard of).
pub async fn site_last_seq(c: &Client, site: &str) -> Result<u64, CloudError> {
    let row = c
        .query_opt(
            "SELECT last_seq FROM docket.sites WHERE site_id = $1",
            &[&site],
        )
        .await?;
    Ok(row.map(|r| r.get::<_, i64>(0)).unwrap_or(0).max(0) as u64)
}

/// Tells head office an idle site is alive (`docket.sites.last_contact`), running `version`.
pub async fn record_contact(c: &Client, site: &str, version: &str) -> Result<(), CloudError> {
    c.execute(
        "INSERT INTO docket.sites (site_id, docketd_version) VALUES ($1, $2)
         ON CONFLICT (site_id) DO UPDATE
         SET last_contact = now(), docketd_version = EXCLUDED.docketd_version",
        &[&site, &version],
    )
    .await?;
    Ok(())
}

const INSERT_EVENTS: &str =
    "INSERT INTO docket.events (site_id, seq, type, order_id, version, device, at, body)
     SELECT $1, seq, type, order_id, version, device, to_timestamp(at / 1000.0), body::json
     FROM unnest($2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::text[],
                 $7::bigint[], $8::text[])
          AS t(seq, type, order_id, version, device, at, body)
     ON CONFLICT (site_id, seq) DO NOTHING";

async fn insert_events(
    c: &Client,
    st: &Statement,
    site: &str,
    rows: &[EventRow<'_>],
) -> Result<(), CloudError> {
    let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    let types: Vec<&str> = rows.iter().map(|r| r.kind).collect();
    let order_ids: Vec<&str> = rows.iter().map(|r| r.order_id).collect();
    let versions: Vec<i64> = rows.iter().map(|r| r.version).collect();
    let devices: Vec<&str> = rows.iter().map(|r| r.device).collect();
    let ats: Vec<i64> = rows.iter().map(|r| r.at).collect();
    let bodies: Vec<&str> = rows.iter().map(|r| r.body.as_str()).collect();
    c.execute(
        st,
        &[
            &site, &seqs, &types, &order_ids, &versions, &devices, &ats, &bodies,
        ],
    )
    .await?;
    Ok(())
}

/// Ready lines (and since when) head office already has of these orders, by order. Planned for
/// each batch, never prepared: a plan made once, while a new head office's tables are empty,
/// scans all of a site's lines for the orders (an index on `site_id` alone, `order_id` as a
/// filter), and a batch got slower as the site's history grew.
const READY_LINES: &str = "SELECT order_id, n, (extract(epoch FROM ready_at) * 1000)::bigint
     FROM docket.order_lines
     WHERE site_id = $1 AND order_id = ANY($2) AND status = 'ready' AND ready_at IS NOT NULL";

async fn ready_lines(
    c: &Client,
    site: &str,
    orders: &[&str],
) -> Result<HashMap<String, ReadyAt>, CloudError> {
    let mut prior: HashMap<String, ReadyAt> = HashMap::new();
    if orders.is_empty() {
        return Ok(prior);
    }
    // An unnamed statement, typed here: parsed, planned and run in one round trip.
    let params: [(&(dyn ToSql + Sync), Type); 2] =
        [(&site, Type::TEXT), (&orders, Type::TEXT_ARRAY)];
    for row in c.query_typed(READY_LINES, &params).await? {
        let n: i32 = row.get(1);
        prior
            .entry(row.get(0))
            .or_default()
            .insert(n as u32, row.get(2));
    }
    Ok(prior)
}

const UPSERT_ORDERS: &str =
    "INSERT INTO docket.orders (site_id, order_id, ticket, table_name, status, version,
                                fired_course, placed_at, completed_at, updated_at,
                                rush, service, server)
     SELECT $1, id, ticket, tbl, status, version, fired,
            to_timestamp(placed / 1000.0), to_timestamp(completed / 1000.0), now(),
            rush, service, server
     FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::bigint[],
                 $7::int[], $8::bigint[], $9::bigint[], $10::bool[], $11::text[],
                 $12::text[])
          AS t(id, ticket, tbl, status, version, fired, placed, completed, rush, service,
               server)
     ON CONFLICT (site_id, order_id) DO UPDATE SET
         status = EXCLUDED.status, version = EXCLUDED.version,
         fired_course = EXCLUDED.fired_course, table_name = EXCLUDED.table_name,
         completed_at = COALESCE(EXCLUDED.completed_at, docket.orders.completed_at),
         rush = EXCLUDED.rush, service = EXCLUDED.service, server = EXCLUDED.server,
         updated_at = now()
     WHERE docket.orders.version < EXCLUDED.version";

async fn upsert_orders(
    c: &Client,
    st: &Statement,
    site: &str,
    rows: &[OrderRow<'_>],
) -> Result<(), CloudError> {
    let ids: Vec<&str> = rows.iter().map(|r| r.order_id).collect();
    let tickets: Vec<i64> = rows.iter().map(|r| r.ticket).collect();
    let tables: Vec<&str> = rows.iter().map(|r| r.table).collect();
    let status: Vec<&str> = rows.iter().map(|r| r.status).collect();
    let versions: Vec<i64> = rows.iter().map(|r| r.version).collect();
    let fired: Vec<i32> = rows.iter().map(|r| r.fired_course).collect();
    let placed: Vec<i64> = rows.iter().map(|r| r.placed_at).collect();
    let completed: Vec<Option<i64>> = rows.iter().map(|r| r.completed_at).collect();
    let rush: Vec<bool> = rows.iter().map(|r| r.rush).collect();
    let service: Vec<&str> = rows.iter().map(|r| r.service).collect();
    let server: Vec<Option<&str>> = rows.iter().map(|r| r.server).collect();
    c.execute(
        st,
        &[
            &site, &ids, &tickets, &tables, &status, &versions, &fired, &placed, &completed, &rush,
            &service, &server,
        ],
    )
    .await?;
    Ok(())
}

const UPSERT_LINES: &str =
    "INSERT INTO docket.order_lines (site_id, order_id, n, item, name, qty, mods, notes,
                                     course, station, status, unit_price_cents, ready_at,
                                     version, allergy, seat, fired_at)
     SELECT $1, oid, n, item, name, qty, mods::jsonb, notes, course, station, status, price,
            to_timestamp(ready / 1000.0), version, allergy, seat,
            to_timestamp(fired_at / 1000.0)
     FROM unnest($2::text[], $3::int[], $4::text[], $5::text[], $6::int[], $7::text[],
                 $8::text[], $9::int[], $10::text[], $11::text[], $12::bigint[],
                 $13::bigint[], $14::bigint[], $15::text[], $16::int[], $17::bigint[])
          AS t(oid, n, item, name, qty, mods, notes, course, station, status, price, ready,
               version, allergy, seat, fired_at)
     ON CONFLICT (site_id, order_id, n) DO UPDATE SET
         qty = EXCLUDED.qty, mods = EXCLUDED.mods, notes = EXCLUDED.notes,
         allergy = EXCLUDED.allergy, seat = EXCLUDED.seat, fired_at = EXCLUDED.fired_at,
         course = EXCLUDED.course, status = EXCLUDED.status,
         unit_price_cents = COALESCE(docket.order_lines.unit_price_cents,
                                     EXCLUDED.unit_price_cents),
         ready_at = EXCLUDED.ready_at, version = EXCLUDED.version
     WHERE docket.order_lines.version < EXCLUDED.version";

async fn upsert_lines(
    c: &Client,
    st: &Statement,
    site: &str,
    rows: &[LineRow<'_>],
) -> Result<(), CloudError> {
    let order: Vec<&str> = rows.iter().map(|r| r.order_id).collect();
    let n: Vec<i32> = rows.iter().map(|r| r.n).collect();
    let item: Vec<&str> = rows.iter().map(|r| r.item).collect();
    let name: Vec<&str> = rows.iter().map(|r| r.name).collect();
    let qty: Vec<i32> = rows.iter().map(|r| r.qty).collect();
    let mods: Vec<&str> = rows.iter().map(|r| r.mods.as_str()).collect();
    let notes: Vec<Option<&str>> = rows.iter().map(|r| r.notes).collect();
    let allergy: Vec<Option<&str>> = rows.iter().map(|r| r.allergy).collect();
    let course: Vec<i32> = rows.iter().map(|r| r.course).collect();
    let station: Vec<&str> = rows.iter().map(|r| r.station).collect();
    let status: Vec<&str> = rows.iter().map(|r| r.status).collect();
    let price: Vec<Option<i64>> = rows.iter().map(|r| r.unit_price_cents).collect();
    let ready: Vec<Option<i64>> = rows.iter().map(|r| r.ready_at).collect();
    let version: Vec<i64> = rows.iter().map(|r| r.version).collect();
    let seat: Vec<Option<i32>> = rows.iter().map(|r| r.seat).collect();
    let fired_at: Vec<Option<i64>> = rows.iter().map(|r| r.fired_at).collect();
    c.execute(
        st,
        &[
            &site, &order, &n, &item, &name, &qty, &mods, &notes, &course, &station, &status,
            &price, &ready, &version, &allergy, &seat, &fired_at,
        ],
    )
    .await?;
    Ok(())
}
