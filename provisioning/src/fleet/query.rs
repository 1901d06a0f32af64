//! One reading of the fleet from head office's PostgreSQL: the views and functions of
//! `008_fleet.sql` (the ones the Grafana dashboard reads too), shaped for the page.
//!
//! Owns the SQL the page runs; never writes. Times travel as milliseconds since the epoch,
//! computed by PostgreSQL, so the page and the database agree on "now". Sites and alerts are
//! read every time; the 24-hour charts (the costly part: percentiles over every ticket of the
//! fleet) at most every [`CHARTS_EVERY`], or when the hour turns.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_postgres::Client;

/// Hours in the charts: this hour and the 23 before it (as the views' 24-hour window).
pub const HOURS: usize = 24;
/// How often the charts are read again.
pub const CHARTS_EVERY: Duration = Duration::from_secs(30);

/// The last reading of the charts, kept between readings of the sites.
pub struct Charts {
    first_hour_ms: i64,
    read_at: Instant,
    orders_per_hour: Vec<i64>,
    per_site: HashMap<String, Vec<i64>>,
    stations: Vec<Station>,
    speed: Vec<Speed>,
}

#[derive(Serialize, Clone, Debug)]
pub struct Site {
    pub site_id: String,
    /// "live" or "stalled".
    pub state: String,
    pub last_seq: i64,
    pub last_contact_ms: i64,
    /// The sync lag head office can see: a live box checks in at least every minute.
    pub seconds_since_contact: f64,
    /// The box's time of the newest event relayed (none relayed yet: null).
    pub newest_event_ms: Option<i64>,
    pub docketd_version: Option<String>,
    pub orders_last_hour: i64,
    /// Orders per hour, aligned with [`Fleet::hours_ms`].
    pub orders_per_hour: Vec<i64>,
    /// From the site's Redis status hash when a Redis URL was given and it answered.
    pub relayed_at_ms: Option<i64>,
}

#[derive(Serialize, Clone, Debug)]
pub struct Speed {
    pub site_id: String,
    pub station: String,
    pub tickets: i64,
    pub p50_seconds: f64,
    pub p90_seconds: f64,
}

/// One station across the fleet.
#[derive(Serialize, Clone, Debug)]
pub struct Station {
    pub station: String,
    pub tickets: i64,
    pub p50_seconds: f64,
    pub p90_seconds: f64,
    /// p90 seconds per hour, aligned with [`Fleet::hours_ms`]; null where no ticket.
    pub p90_by_hour: Vec<Option<f64>>,
}

#[derive(Serialize, Clone, Debug)]
pub struct Alert {
    pub site_id: String,
    pub last_contact_ms: i64,
    pub stalled_for_seconds: f64,
}

#[derive(Serialize, Clone, Debug)]
pub struct Fleet {
    /// PostgreSQL's now() when read.
    pub read_at_ms: i64,
    pub stall_after_seconds: f64,
    pub live: usize,
    pub stalled: usize,
    /// Stalled first (longest-stalled first), then by site id.
    pub sites: Vec<Site>,
    /// The start of each chart hour.
    pub hours_ms: Vec<i64>,
    /// All sites' orders per hour.
    pub orders_per_hour: Vec<i64>,
    /// Fleet-wide speed of service per station, last 24 h.
    pub stations: Vec<Station>,
    /// Per site and station, last 24 h.
    pub speed: Vec<Speed>,
    /// Stalled sites, longest-stalled first.
    pub alerts: Vec<Alert>,
    /// Redis: null when no Redis URL was given, else "ok" or why it could not be read.
    pub redis: Option<String>,
}

const WINDOW: &str = "date_trunc('hour', now(), 'UTC') - interval '23 hours'";

fn ms(col: &str) -> String {
    format!("(extract(epoch FROM {col}) * 1000)::int8")
}

/// Reads the fleet in one read-only snapshot; reads the charts again into `charts` when they
/// are missing, older than [`CHARTS_EVERY`] or of another hour.
pub async fn read(
    client: &mut Client,
    charts: &mut Option<Charts>,
) -> Result<Fleet, tokio_postgres::Error> {
    let tx = client
        .build_transaction()
        .read_only(true)
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .start()
        .await?;
    let head = tx
        .query_one(
            &format!(
                "SELECT {}, extract(epoch FROM docket.stall_after())::float8, {}",
                ms("now()"),
                ms(WINDOW)
            ),
            &[],
        )
        .await?;
    let (read_at_ms, stall_after_seconds, first_hour): (i64, f64, i64) =
        (head.get(0), head.get(1), head.get(2));
    let mut sites = read_sites(&tx).await?;
    let alerts = tx
        .query(
            &format!(
                "SELECT site_id, {}, stalled_for_seconds FROM docket.fleet_alerts",
                ms("last_contact")
            ),
            &[],
        )
        .await?
        .iter()
        .map(|r| Alert {
            site_id: r.get(0),
            last_contact_ms: r.get(1),
            stalled_for_seconds: r.get(2),
        })
        .collect();
    let c = match charts.take() {
        Some(c) if c.first_hour_ms == first_hour && c.read_at.elapsed() < CHARTS_EVERY => c,
        _ => read_charts(&tx, first_hour).await?,
    };
    tx.commit().await?;
    for s in &mut sites {
        if let Some(h) = c.per_site.get(&s.site_id) {
            s.orders_per_hour.clone_from(h);
        }
    }
    let stalled = sites.iter().filter(|s| s.state == "stalled").count();
    let fleet = Fleet {
        read_at_ms,
        stall_after_seconds,
        live: sites.len() - stalled,
        stalled,
        sites,
        hours_ms: (0..HOURS as i64)
            .map(|i| c.first_hour_ms + i * 3_600_000)
            .collect(),
        orders_per_hour: c.orders_per_hour.clone(),
        stations: c.stations.clone(),
        speed: c.speed.clone(),
        alerts,
        redis: None,
    };
    *charts = Some(c);
    Ok(fleet)
}

/// Stalled first (longest-stalled first), then the longest since contact.
async fn read_sites(
    tx: &tokio_postgres::Transaction<'_>,
) -> Result<Vec<Site>, tokio_postgres::Error> {
    Ok(tx
        .query(
            &format!(
                "SELECT site_id, state, last_seq, {}, seconds_since_contact, {},
                        docketd_version, orders_last_hour
                 FROM docket.fleet_sites
                 ORDER BY state = 'stalled' DESC, last_contact ASC, site_id",
                ms("last_contact"),
                ms("newest_event_at")
            ),
            &[],
        )
        .await?
        .iter()
        .map(|r| Site {
            site_id: r.get(0),
            state: r.get(1),
            last_seq: r.get(2),
            last_contact_ms: r.get(3),
            seconds_since_contact: r.get(4),
            newest_event_ms: r.get(5),
            docketd_version: r.get(6),
            orders_last_hour: r.get(7),
            orders_per_hour: vec![0; HOURS],
            relayed_at_ms: None,
        })
        .collect())
}

/// Orders per hour (all sites and each), speed of service per station and per site.
async fn read_charts(
    tx: &tokio_postgres::Transaction<'_>,
    first_hour: i64,
) -> Result<Charts, tokio_postgres::Error> {
    let slot = |hour_ms: i64| {
        let i = (hour_ms - first_hour).div_euclid(3_600_000);
        (0..HOURS as i64).contains(&i).then_some(i as usize)
    };
    let mut orders_per_hour = vec![0i64; HOURS];
    let mut per_site: HashMap<String, Vec<i64>> = HashMap::new();
    for r in tx
        .query(
            &format!(
                "SELECT site_id, {}, orders FROM docket.orders_per_hour",
                ms("hour")
            ),
            &[],
        )
        .await?
    {
        let (site, hour, n): (String, i64, i64) = (r.get(0), r.get(1), r.get(2));
        let Some(h) = slot(hour) else { continue };
        orders_per_hour[h] += n;
        per_site.entry(site).or_insert_with(|| vec![0; HOURS])[h] = n;
    }
    let stations = stations(tx, &slot).await?;
    let speed = tx
        .query(
            &format!(
                "SELECT site_id, station, count(*),
                        percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds),
                        percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds)
                 FROM docket.tickets_between({WINDOW}, 'infinity')
                 GROUP BY site_id, station ORDER BY site_id, station"
            ),
            &[],
        )
        .await?
        .iter()
        .map(|r| Speed {
            site_id: r.get(0),
            station: r.get(1),
            tickets: r.get(2),
            p50_seconds: r.get(3),
            p90_seconds: r.get(4),
        })
        .collect();
    Ok(Charts {
        first_hour_ms: first_hour,
        read_at: Instant::now(),
        orders_per_hour,
        per_site,
        stations,
        speed,
    })
}

/// Fleet-wide speed of service per station (whole window, and p90 per hour).
async fn stations(
    tx: &tokio_postgres::Transaction<'_>,
    slot: &impl Fn(i64) -> Option<usize>,
) -> Result<Vec<Station>, tokio_postgres::Error> {
    let rows = tx
        .query(
            &format!(
                "SELECT station, {}, count(*),
                        percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds),
                        percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds)
                 FROM docket.tickets_between({WINDOW}, 'infinity')
                 GROUP BY GROUPING SETS ((station), (station, date_trunc('hour', fired_at, 'UTC')))
                 ORDER BY station",
                ms("date_trunc('hour', fired_at, 'UTC')")
            ),
            &[],
        )
        .await?;
    let mut out: Vec<Station> = Vec::new();
    for r in rows {
        let station: String = r.get(0);
        let hour: Option<i64> = r.get(1);
        if out.last().map(|s| &s.station) != Some(&station) {
            out.push(Station {
                station: station.clone(),
                tickets: 0,
                p50_seconds: 0.0,
                p90_seconds: 0.0,
                p90_by_hour: vec![None; HOURS],
            });
        }
        let Some(s) = out.last_mut() else { continue };
        match hour {
            // The (station) grouping set: the whole window.
            None => {
                s.tickets = r.get(2);
                s.p50_seconds = r.get(3);
                s.p90_seconds = r.get(4);
            }
            Some(h) => {
                if let Some(i) = slot(h) {
                    s.p90_by_hour[i] = Some(r.get(4));
                }
            }
        }
    }
    Ok(out)
}
