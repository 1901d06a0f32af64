//! The optional Redis side of the fleet view: each site's status hash, for the time its relay
//! last wrote to Redis. PostgreSQL is the fleet view's truth; Redis only adds a column, and
//! a Redis that is down is shown, never fatal.
//!
//! Owns the Redis key names the view reads ([`status_key`]); writes nothing.

use std::time::Duration;

use ::redis::aio::MultiplexedConnection;
use docket_cloud::redis::{connect, timed};
use docket_cloud::SecretUrl;

use super::Fleet;

const WITHIN: Duration = Duration::from_secs(2);

/// A site's status hash (fields last_seq, relayed_at_ms, docketd_version), as docketd's relay
/// names it. The one place this view spells a Redis key.
pub fn status_key(site: &str) -> String {
    format!("docket:{site}:status")
}

pub struct Status {
    url: Option<SecretUrl>,
    conn: Option<MultiplexedConnection>,
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
        let mut pipe = ::redis::pipe();
        for s in &fleet.sites {
            pipe.hget(status_key(&s.site_id), "relayed_at_ms");
        }
        let times: Vec<Option<i64>> = timed(WITHIN, pipe.query_async(conn)).await?;
        Ok(times)
    }
}
