//! Head office for the fleet scenario: its own PostgreSQL (durable: fsync on, as head office
//! runs it, with commit timestamps recorded so every event's sync lag is measured exactly) and
//! Redis, the schema, one role per site (each relay logs in as its site, under row-level
//! security, as a box does), and what is read back: lag, counts, CPU and bytes.

use std::collections::HashMap;

use anyhow::Context;
use docket_tests::servers::{Postgres, Redis};
use serde_json::{json, Value};

use crate::measure::{proc_stat, ProcStat};

pub const SITE_PASSWORD: &str = "fleet-site-password-0123";

pub struct Head {
    pub pg: Postgres,
    pub redis: Redis,
    pub client: tokio_postgres::Client,
}

impl Head {
    /// PostgreSQL and Redis started, the schema migrated and a role for each of `sites`.
    /// `partitions` > 0: the schema partitioned by site into that many (`--partitions`).
    pub async fn start(sites: &[String], partitions: u32) -> anyhow::Result<Head> {
        let mut pg = Postgres::init()?;
        // Durable like head office's own, room for every site's connection, and each
        // transaction's commit time kept (the lag of each event, read back at the end).
        pg.settings = vec![
            "fsync=on".into(),
            format!("max_connections={}", 2 * sites.len() + 60),
            "track_commit_timestamp=on".into(),
            "shared_buffers=256MB".into(),
        ];
        pg.up()?;
        let redis = Redis::start()?;
        let mut client = pg.client().await?;
        match partitions {
            0 => docket_cloud::migrate(&mut client).await?,
            n => docket_cloud::migrate_partitioned(&mut client, n).await?,
        };
        for chunk in sites.chunks(100) {
            let mut sql = String::new();
            for s in chunk {
                sql += &format!("SELECT docket.create_site_role('{s}', '{SITE_PASSWORD}');\n");
            }
            client
                .batch_execute(&sql)
                .await
                .context("creating site roles")?;
        }
        Ok(Head { pg, redis, client })
    }

    pub fn site_url(&self, site: &str) -> String {
        self.pg.url(&format!("docket_site_{site}"), SITE_PASSWORD)
    }

    /// The highest seq of each site in PostgreSQL.
    pub async fn last_seqs(&self) -> anyhow::Result<HashMap<String, u64>> {
        let rows = (self.client)
            .query("SELECT site_id, last_seq FROM docket.sites", &[])
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1).max(0) as u64))
            .collect())
    }

    /// Sync lag (the box's event time → head office's commit) of the events stamped from
    /// `from_ms` to `to_ms`, and how many head office committed in that window.
    pub async fn lag(&self, from_ms: u64, to_ms: u64) -> anyhow::Result<Value> {
        let (from, to) = (from_ms as f64 / 1000.0, to_ms as f64 / 1000.0);
        let r = (self.client)
            .query_one(
                "SELECT count(*),
                        coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY lag), 0),
                        coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY lag), 0),
                        coalesce(max(lag), 0)
                 FROM (SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin) - at)::float8 AS lag
                       FROM docket.events
                       WHERE at >= to_timestamp($1) AND at < to_timestamp($2)) t",
                &[&from, &to],
            )
            .await?;
        Ok(json!({
            "lag_events": r.get::<_, i64>(0),
            "lag_p50_s": r.get::<_, f64>(1), "lag_p99_s": r.get::<_, f64>(2),
            "lag_max_s": r.get::<_, f64>(3),
        }))
    }

    /// Events and orders of each site in PostgreSQL: (count, max seq, orders).
    pub async fn counts(&self) -> anyhow::Result<HashMap<String, (u64, u64, u64)>> {
        let rows = (self.client)
            .query(
                "SELECT e.site_id, e.n, e.top, coalesce(o.n, 0)
                 FROM (SELECT site_id, count(*) AS n, max(seq) AS top
                       FROM docket.events GROUP BY site_id) e
                 LEFT JOIN (SELECT site_id, count(*) AS n FROM docket.orders GROUP BY site_id) o
                   USING (site_id)",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let n = |i: usize| r.get::<_, i64>(i).max(0) as u64;
                (r.get::<_, String>(0), (n(1), n(2), n(3)))
            })
            .collect())
    }

    /// Bytes of the docket schema on disk: tables, their indexes and TOAST.
    pub async fn bytes(&self) -> anyhow::Result<u64> {
        let r = (self.client)
            .query_one(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = 'docket' AND c.relkind IN ('r', 'm')",
                &[],
            )
            .await?;
        Ok(r.get::<_, i64>(0).max(0) as u64)
    }

    /// The last entry's seq and the length of each site's Redis stream.
    pub fn streams(&self, sites: &[String]) -> anyhow::Result<HashMap<String, (u64, u64)>> {
        let mut c = self.redis.connection()?;
        let mut out = HashMap::new();
        for chunk in sites.chunks(200) {
            let mut pipe = redis::pipe();
            for s in chunk {
                let key = docket_appliance::uplink::redis::stream_key(s);
                pipe.cmd("XREVRANGE")
                    .arg(&key)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1);
                pipe.cmd("XLEN").arg(&key);
            }
            let replies: Vec<redis::Value> = pipe.query(&mut c)?;
            for (s, pair) in chunk.iter().zip(replies.chunks(2)) {
                let top = match redis::from_redis_value::<redis::streams::StreamRangeReply>(
                    pair[0].clone(),
                ) {
                    Ok(r) => r
                        .ids
                        .first()
                        .and_then(|e| e.id.split_once('-'))
                        .and_then(|(_, seq)| seq.parse().ok())
                        .unwrap_or(0),
                    Err(_) => 0,
                };
                let len: u64 = redis::from_redis_value(pair[1].clone()).unwrap_or(0);
                out.insert(s.clone(), (top, len));
            }
        }
        Ok(out)
    }
}

/// CPU seconds (user + system) PostgreSQL has used so far: the postmaster, every backend
/// alive, and the backends that already exited (the postmaster's children's time).
pub fn pg_cpu_seconds(pg: &Postgres) -> f64 {
    let Some(master) = std::fs::read_to_string(pg.dir.path().join("data/postmaster.pid"))
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u32>().ok()))
    else {
        return 0.0;
    };
    let mut ticks = proc_stat(&master.to_string()).map_or(0, |p| p.own + p.children);
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let name = e.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            if let Some(ProcStat { ppid, own, .. }) = proc_stat(pid) {
                if ppid == master {
                    ticks += own;
                }
            }
        }
    }
    ticks as f64 / 100.0
}
