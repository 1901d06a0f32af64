//! Head office's schema against a real PostgreSQL, where a migration changes data already
//! there: `009_events_json` turns `docket.events.body` from jsonb into json (the text the relay
//! sent, kept as sent) on a head office small enough to rewrite at once, and leaves a big one's
//! jsonb for its operator, the relay writing either.

use std::collections::HashMap;

use docket_cloud::Writer;
use docket_core::order::LineStatus;
use docket_core::wire::{Event, EventKind};
use docket_tests::cloud::{self, order, site_writer};
use docket_tests::servers::Postgres;
use tokio_postgres::Client;

type R = anyhow::Result<()>;

const SITE: &str = "site-1";
const PASSWORD: &str = "a-site-password-long-enough";

/// Order `o{seq}` placed: a line with a modifier and a note, so the body has text to keep.
fn event(seq: u64) -> Event {
    let mut o = order(&format!("o{seq}"), 1, LineStatus::Fired);
    o.ticket = seq;
    o.lines[0].qty = 2;
    o.lines[0].mods = vec!["no-onion".into()];
    o.lines[0].notes = Some("medium rare".into());
    cloud::event(seq, EventKind::OrderPlaced, o)
}

async fn writer(pg: &Postgres) -> anyhow::Result<Writer> {
    Ok(site_writer(pg, SITE, PASSWORD).await?)
}

async fn body_type(admin: &Client) -> anyhow::Result<String> {
    let row = admin
        .query_one(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
              WHERE attrelid = 'docket.events'::regclass AND attname = 'body'",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

/// Head office as it was before `009_events_json`: body jsonb, the migration not yet applied.
async fn as_before_009(admin: &Client) -> R {
    admin
        .batch_execute(
            "ALTER TABLE docket.events ALTER COLUMN body TYPE jsonb USING body::jsonb;
             DELETE FROM docket.schema_migrations WHERE name = '009_events_json';",
        )
        .await?;
    assert_eq!(body_type(admin).await?, "jsonb");
    Ok(())
}

/// `SITE`'s events as head office holds them: (seq, body as text, body's order_id).
async fn bodies(admin: &Client) -> anyhow::Result<Vec<(i64, String, String)>> {
    let rows = admin
        .query(
            "SELECT seq, body::text, body->>'order_id' FROM docket.events
              WHERE site_id = $1 ORDER BY seq",
            &[&SITE],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

#[tokio::test]
async fn an_event_body_is_kept_as_sent_and_a_small_head_office_is_converted() -> R {
    let pg = Postgres::start()?;
    let mut admin = pg.client().await?;
    docket_cloud::migrate(&mut admin).await?;
    docket_cloud::create_site_role(&admin, SITE, PASSWORD).await?;
    assert_eq!(body_type(&admin).await?, "json");

    let batch = [event(1), event(2)];
    writer(&pg)
        .await?
        .write_batch(SITE, "test", &batch, &HashMap::new())
        .await?;
    let sent: Vec<(i64, String, String)> = (batch.iter())
        .map(|e| Ok((e.seq as i64, serde_json::to_string(e)?, e.order_id.clone())))
        .collect::<anyhow::Result<_>>()?;
    // jsonb would have re-spaced and re-ordered the keys: the text is the relay's, byte for byte.
    assert_eq!(bodies(&admin).await?, sent);

    // A head office from before, with a few events in jsonb: migrating converts them, and they
    // still read the same.
    as_before_009(&admin).await?;
    let applied = docket_cloud::migrate(&mut admin).await?;
    assert_eq!(applied, vec!["009_events_json"]);
    assert_eq!(body_type(&admin).await?, "json");
    let after: Vec<(i64, String)> = (bodies(&admin).await?.into_iter())
        .map(|(seq, body, id)| Ok((seq, serde_json::from_str::<Event>(&body)?.order_id + &id)))
        .collect::<anyhow::Result<_>>()?;
    assert_eq!(after, vec![(1, "o1o1".into()), (2, "o2o2".into())]);
    // Applied once: migrating again changes nothing.
    assert!(docket_cloud::migrate(&mut admin).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_head_office_of_a_million_events_keeps_jsonb_and_the_relay_still_writes() -> R {
    let pg = Postgres::start()?;
    let mut admin = pg.client().await?;
    docket_cloud::migrate(&mut admin).await?;
    docket_cloud::create_site_role(&admin, SITE, PASSWORD).await?;
    as_before_009(&admin).await?;
    admin
        .batch_execute(
            "INSERT INTO docket.events (site_id, seq, type, order_id, version, device, at, body)
             SELECT 'big', g, 'order_placed', 'o', 1, 'tablet-1', now(), '{}'
               FROM generate_series(1, 1000000) g",
        )
        .await?;
    let applied = docket_cloud::migrate(&mut admin).await?;
    assert_eq!(applied, vec!["009_events_json"]);
    assert_eq!(
        body_type(&admin).await?,
        "jsonb",
        "a million events rewritten"
    );

    // A relay of today writes json into the jsonb column.
    let batch = [event(1)];
    writer(&pg)
        .await?
        .write_batch(SITE, "test", &batch, &HashMap::new())
        .await?;
    let got = bodies(&admin).await?;
    assert_eq!(got.len(), 1);
    let back: Event = serde_json::from_str(&got[0].1)?;
    assert_eq!((back.seq, got[0].2.as_str()), (1, "o1"));
    Ok(())
}
