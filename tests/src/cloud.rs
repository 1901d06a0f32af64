//! Head office's side for the cloud tests: a one-line order and its event, and a batch writer
//! logged in as a site's own role (as a box's relay is).

use docket_cloud::{CloudError, SecretUrl, Timeouts, Writer};
use docket_core::order::{Line, LineStatus, Order, OrderStatus};
use docket_core::wire::{Event, EventKind};

use crate::servers::Postgres;

/// A placed order `id` at `version`: one burger on the grill, its line `status`.
pub fn order(id: &str, version: u64, status: LineStatus) -> Order {
    Order {
        id: id.into(),
        ticket: 7,
        table: "T4".into(),
        status: OrderStatus::Placed,
        version,
        lines: vec![Line {
            n: 1,
            item: "burger".into(),
            name: "Burger".into(),
            qty: 1,
            mods: vec![],
            notes: None,
            allergy: None,
            course: 1,
            station: "grill".into(),
            status,
            fired_at: None,
            seat: None,
        }],
        fired_course: 1,
        placed_at: 1_000,
        rush: false,
        server: None,
        service: None,
        origin: None,
    }
}

/// The event `seq` of `kind` that left `order` as it is, from `tablet-1`.
pub fn event(seq: u64, kind: EventKind, order: Order) -> Event {
    Event {
        seq,
        kind,
        order_id: order.id.clone(),
        version: order.version,
        command: format!("c{seq}"),
        device: "tablet-1".into(),
        at: 1_000 + seq,
        order,
    }
}

/// A writer on a new connection as `site`'s role (`docket_cloud::create_site_role`).
pub async fn site_writer(pg: &Postgres, site: &str, password: &str) -> Result<Writer, CloudError> {
    site_writer_in(pg, "postgres", site, password).await
}

/// As [`site_writer`], to the server's database `db`.
pub async fn site_writer_in(
    pg: &Postgres,
    db: &str,
    site: &str,
    password: &str,
) -> Result<Writer, CloudError> {
    let url = SecretUrl::new(format!(
        "postgres://docket_site_{site}:{password}@127.0.0.1:{}/{db}",
        pg.port
    ));
    Ok(Writer::new(
        docket_cloud::connect(&url, Timeouts::default()).await?,
    ))
}
