//! Head office's batch writer (`docket_cloud::Writer`) against a real PostgreSQL, as a site's
//! own role under row-level security: a batch is written whole or not at all, although its
//! statements go to the server together; a batch written twice changes nothing; a refused batch
//! leaves nothing behind and the same connection takes the next one.

use std::collections::HashMap;

use docket_cloud::Writer;
use docket_core::order::LineStatus;
use docket_core::wire::EventKind;
use docket_tests::cloud::{event, order, site_writer};
use docket_tests::servers::Postgres;
use tokio_postgres::Client;

type R = anyhow::Result<()>;

const SITE: &str = "site-1";
const PASSWORD: &str = "a-site-password-long-enough";

/// Head office migrated, a role for `SITE`, and a writer logged in as that role.
async fn head_office(pg: &Postgres) -> anyhow::Result<(Client, Writer)> {
    let mut admin = pg.client().await?;
    docket_cloud::migrate(&mut admin).await?;
    docket_cloud::create_site_role(&admin, SITE, PASSWORD).await?;
    Ok((admin, head_office_writer(pg).await?))
}

/// A writer on a new connection as `SITE`'s role.
async fn head_office_writer(pg: &Postgres) -> anyhow::Result<Writer> {
    Ok(site_writer(pg, SITE, PASSWORD).await?)
}

/// (events, orders, lines, the site's last_seq) head office holds.
async fn counts(admin: &Client) -> anyhow::Result<(i64, i64, i64, Option<i64>)> {
    let row = admin
        .query_one(
            "SELECT (SELECT count(*) FROM docket.events), (SELECT count(*) FROM docket.orders),
                    (SELECT count(*) FROM docket.order_lines),
                    (SELECT last_seq FROM docket.sites WHERE site_id = $1)",
            &[&SITE],
        )
        .await?;
    Ok((row.get(0), row.get(1), row.get(2), row.get(3)))
}

fn prices() -> HashMap<String, i64> {
    HashMap::from([("burger".to_owned(), 1250)])
}

#[tokio::test]
async fn a_batch_is_written_once_whole_and_twice_changes_nothing() -> R {
    let pg = Postgres::start()?;
    let (admin, mut w) = head_office(&pg).await?;
    let batch = [
        event(1, EventKind::OrderPlaced, order("o1", 1, LineStatus::Fired)),
        event(2, EventKind::OrderPlaced, order("o2", 1, LineStatus::Fired)),
        event(
            3,
            EventKind::TicketBumped,
            order("o1", 2, LineStatus::Ready),
        ),
    ];
    w.write_batch(SITE, "test", &batch, &prices()).await?;
    assert_eq!(counts(&admin).await?, (3, 2, 2, Some(3)));
    w.write_batch(SITE, "test", &batch, &prices()).await?;
    assert_eq!(counts(&admin).await?, (3, 2, 2, Some(3)));
    let row = admin
        .query_one(
            "SELECT status, unit_price_cents, ready_at IS NOT NULL FROM docket.order_lines
             WHERE site_id = $1 AND order_id = 'o1'",
            &[&SITE],
        )
        .await?;
    let line: (String, Option<i64>, bool) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(line, ("ready".into(), Some(1250), true));
    Ok(())
}

#[tokio::test]
async fn a_batch_refused_midway_leaves_nothing_and_the_connection_takes_the_next() -> R {
    let pg = Postgres::start()?;
    let (admin, mut w) = head_office(&pg).await?;
    // The projections, sent after the events, fail for one order: the events sent before
    // them in the same transaction must not stay.
    admin
        .batch_execute(
            "CREATE FUNCTION docket.poison() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.order_id = 'poison' THEN RAISE EXCEPTION 'poisoned line'; END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER poison BEFORE INSERT ON docket.order_lines
                 FOR EACH ROW EXECUTE FUNCTION docket.poison();",
        )
        .await?;
    let poisoned = [
        event(1, EventKind::OrderPlaced, order("o1", 1, LineStatus::Fired)),
        event(
            2,
            EventKind::OrderPlaced,
            order("poison", 1, LineStatus::Fired),
        ),
    ];
    let e = w
        .write_batch(SITE, "test", &poisoned, &prices())
        .await
        .expect_err("a line the server refuses fails the batch");
    assert!(e.to_string().contains("poisoned line"), "{e}");
    assert_eq!(counts(&admin).await?, (0, 0, 0, None));

    // Another site's events, refused by row-level security with the first statements.
    let foreign = [event(
        1,
        EventKind::OrderPlaced,
        order("o9", 1, LineStatus::Fired),
    )];
    let e = w
        .write_batch("site-2", "test", &foreign, &prices())
        .await
        .expect_err("another site's rows are refused");
    assert!(e.is_refusal(), "{e}");
    assert_eq!(counts(&admin).await?, (0, 0, 0, None));

    // The same writer, on the same connection, writes the good batch.
    assert!(!w.is_closed());
    w.write_batch(SITE, "test", &poisoned[..1], &prices())
        .await?;
    assert_eq!(counts(&admin).await?, (1, 1, 1, Some(1)));
    Ok(())
}

/// The line's ready time at head office, in ms.
async fn ready_at(admin: &Client) -> anyhow::Result<Option<i64>> {
    let row = admin
        .query_one(
            "SELECT (extract(epoch FROM ready_at) * 1000)::bigint FROM docket.order_lines
             WHERE site_id = $1 AND order_id = 'o1' AND n = 1",
            &[&SITE],
        )
        .await?;
    Ok(row.get(0))
}

#[tokio::test]
async fn a_line_is_ready_since_it_first_was_across_batches_and_connections() -> R {
    let pg = Postgres::start()?;
    let (admin, mut w) = head_office(&pg).await?;
    let one = |seq: u64, version: u64, status: LineStatus| {
        [event(
            seq,
            EventKind::TicketBumped,
            order("o1", version, status),
        )]
    };
    w.write_batch(SITE, "test", &one(1, 1, LineStatus::Fired), &prices())
        .await?;
    assert_eq!(ready_at(&admin).await?, None);
    w.write_batch(SITE, "test", &one(2, 2, LineStatus::Ready), &prices())
        .await?;
    assert_eq!(ready_at(&admin).await?, Some(1_002));
    // Still ready in a later batch on the same connection: since the first time.
    w.write_batch(SITE, "test", &one(3, 3, LineStatus::Ready), &prices())
        .await?;
    assert_eq!(ready_at(&admin).await?, Some(1_002));
    // A new connection knows only what head office says.
    let mut w = head_office_writer(&pg).await?;
    w.write_batch(SITE, "test", &one(4, 4, LineStatus::Ready), &prices())
        .await?;
    assert_eq!(ready_at(&admin).await?, Some(1_002));
    // Recalled, then ready again: since the second time.
    w.write_batch(SITE, "test", &one(5, 5, LineStatus::Fired), &prices())
        .await?;
    assert_eq!(ready_at(&admin).await?, None);
    w.write_batch(SITE, "test", &one(6, 6, LineStatus::Ready), &prices())
        .await?;
    assert_eq!(ready_at(&admin).await?, Some(1_006));
    Ok(())
}
