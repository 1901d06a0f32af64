//! The optional Redis side of the fleet view: each site's status hash, for the time its relay
//! last wrote to Redis. PostgreSQL is the fleet view's truth; Redis only adds a column, and
//! a Redis that is down is shown, never fatal.
//!
//! Reads the status hash under the name docket-cloud gives it ([`status_key`]); writes nothing.

use std::time::Duration;

use docket_cloud::redis::{connect, timed, Conn};
use docket_cloud::SecretUrl;

use super::Fleet;

const WITHIN: Duration = Duration::from_secs(2);

/// A site's status hash (fields last_seq, relayed_at_ms, docketd_version): docketd's relay
/// and this view take the name from docket-cloud.
pub use docket_cloud::redis::status_key;

pub struct Status {
    url: Option<SecretUrl>,
    conn: Option<Conn>,
}

impl Status {
    pub fn new(url: Option<SecretUrl>) -> Status {
        Status { url, conn: None }
    }

    /// Adds each site's `relayed_at_ms` to `fleet` and says how Redis went in `fleet.redis`.
    pub async fn annotate(&mut self, fleet: &mut Fleet) {
        let Some(url) = self.url.clone() else { return };
        match self.relayed_at(&url, fleet).await {
            Ok(times) => {
                for (site, t) in fleet.sites.iter_mut().zip(times) {
                    site.relayed_at_ms = t;
                }
                fleet.redis = Some("ok".into());
            }
            Err(e) => {
                self.conn = None;
                fleet.redis = Some(format!("{e} ({})", url.redacted()));
            }
        }
    }

    /// One pipelined HGET per site, in `fleet.sites` order.
    async fn relayed_at(
        &mut self,
        url: &SecretUrl,
        fleet: &Fleet,
    ) -> Result<Vec<Option<i64>>, docket_cloud::redis::RedisError> {
        let conn = match &mut self.conn {
            Some(c) => c,
            None => self.conn.insert(connect(url, WITHIN).await?),
        };
        // On a cluster, the sites' keys live on different nodes: one request per key (each
        // routed to its slot's node), all within the one deadline.
        if matches!(conn, Conn::Cluster(_)) {
            let mut times = Vec::with_capacity(fleet.sites.len());
            let all = async {
                for s in &fleet.sites {
                    let t: Option<i64> = ::redis::cmd("HGET")
                        .arg(status_key(&s.site_id))
                        .arg("relayed_at_ms")
                        .query_async(conn)
                        .await?;
                    times.push(t);
                }
                Ok(())
            };
            timed(WITHIN, all).await?;
            return Ok(times);
        }
        let mut pipe = ::redis::pipe();
        for s in &fleet.sites {
            pipe.hget(status_key(&s.site_id), "relayed_at_ms");
        }
        let times: Vec<Option<i64>> = timed(WITHIN, pipe.query_async(conn)).await?;
        Ok(times)
    }
}
