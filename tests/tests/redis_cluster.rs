//! The Redis relay on a three-node Redis Cluster of real `redis-server` processes: one site's
//! keys share a slot (the `{<site>}` hash tag), so its MULTI/EXEC pipelines are legal there;
//! two sites can live on different nodes. And the way up from the names before the hash tag on
//! a single server: renamed once, the stream's history kept.

use docket_tests::servers::Redis;
use docket_tests::Daemon;
use redis::ConnectionLike;

#[allow(dead_code)]
#[path = "support/uplink.rs"]
mod support;
use support::*;

/// The slot `key` hashes to, as the cluster says.
fn slot(c: &mut dyn ConnectionLike, key: &str) -> anyhow::Result<u16> {
    Ok(redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query(c)?)
}

/// The port of the node serving `slot`, from each node's own line of CLUSTER NODES.
fn owner(redis: &Redis, slot: u16) -> anyhow::Result<u16> {
    let cluster = redis.cluster().expect("a cluster");
    for port in cluster.ports() {
        let nodes: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query(&mut cluster.node(port)?)?;
        let mine = nodes
            .lines()
            .find(|l| l.contains("myself"))
            .unwrap_or_default();
        let serves = mine.split_whitespace().skip(8).any(|range| {
            let (lo, hi) = range.split_once('-').unwrap_or((range, range));
            matches!((lo.parse::<u16>(), hi.parse::<u16>()), (Ok(lo), Ok(hi)) if (lo..=hi).contains(&slot))
        });
        if serves {
            return Ok(port);
        }
    }
    anyhow::bail!("no node serves slot {slot}")
}

/// Two site ids whose keys live on different nodes.
fn sites_on_two_nodes(redis: &Redis) -> anyhow::Result<[(String, u16); 2]> {
    let mut c = redis.connection()?;
    let mut first: Option<(String, u16)> = None;
    for i in 1..50 {
        let site = format!("cafe-{i}");
        let port = owner(redis, slot(&mut c, &format!("docket:{{{site}}}:events"))?)?;
        match &first {
            None => first = Some((site, port)),
            Some((_, p)) if *p != port => {
                return Ok([first.take().unwrap_or_default(), (site, port)]);
            }
            Some(_) => {}
        }
    }
    anyhow::bail!("every candidate site hashed to one node")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sites_relay_into_a_cluster_every_event_once_and_in_order() -> R {
    let mut redis = Redis::init_cluster()?;
    redis.up()?;
    let mut c = redis.connection()?;

    // Under the names before the hash tag, a site's stream and status hash are in different
    // slots, and the relay's MULTI/EXEC touching both is refused, on the async cluster
    // connection the relay uses.
    let nodes = redis.cluster().expect("a cluster").node_urls();
    let mut relay_like = redis::cluster::ClusterClient::new(nodes)?
        .get_async_connection()
        .await?;
    let old = redis::pipe()
        .atomic()
        .cmd("XADD")
        .arg("docket:cafe-0:events")
        .arg("*")
        .arg("seq")
        .arg(1)
        .cmd("HSET")
        .arg("docket:cafe-0:status")
        .arg("last_seq")
        .arg(1)
        .query_async::<()>(&mut relay_like)
        .await
        .expect_err("a cross-slot transaction");
    assert_eq!(
        old.kind(),
        redis::ErrorKind::Server(redis::ServerErrorKind::CrossSlot)
    );

    let sites = sites_on_two_nodes(&redis)?;
    let mut boxes = Vec::new();
    for (site, _) in &sites {
        let toml = uplink_toml(None, Some(&redis.url()), 25);
        assert!(toml.contains("redis+cluster://"), "{toml}");
        boxes.push(Daemon::start_with(&[], site, &toml)?);
    }
    let mut lasts = Vec::new();
    for (d, (site, _)) in boxes.iter().zip(&sites) {
        lasts.push(service(d, site, 40).await?);
    }
    for (((site, port), last), d) in sites.iter().zip(&lasts).zip(&boxes) {
        redis_has_exactly(&redis, site, *last)?;
        assert_eq!(redis_menu(&redis, site).await?, (1, false));
        // One slot for the site's three keys, served by the node found above.
        let keys = ["events", "status", "menu"].map(|k| format!("docket:{{{site}}}:{k}"));
        let slots = keys
            .iter()
            .map(|k| slot(&mut c, k))
            .collect::<anyhow::Result<Vec<_>>>()?;
        assert!(slots.iter().all(|s| *s == slots[0]), "{site}: {slots:?}");
        let mut node = redis.cluster().expect("a cluster").node(*port)?;
        let here: u64 = redis::cmd("XLEN").arg(&keys[0]).query(&mut node)?;
        assert_eq!(here, *last, "{site}'s stream on node {port}");
        let status: std::collections::HashMap<String, String> =
            redis::cmd("HGETALL").arg(&keys[1]).query(&mut node)?;
        assert_eq!(status.get("site_id"), Some(site));
        assert_eq!(status.get("last_seq"), Some(&last.to_string()));
        assert_eq!(status.get("menu_version").map(String::as_str), Some("1"));
        assert_eq!(d.metric("docket_uplink_up{target=\"redis\"}")?, 1.0);
    }
    assert_ne!(sites[0].1, sites[1].1);

    // Every node killed: the box keeps serving; the cluster back (each node from its
    // nodes.conf and append-only file), the rest arrives once, after what was there.
    drop(c);
    redis.kill9();
    let (d, site) = (&boxes[0], &sites[0].0);
    let more = service(d, "b", 20).await?;
    d.metric_at_least("docket_uplink_failures_total{target=\"redis\"}", 1.0)
        .await?;
    redis.up()?;
    redis_has_exactly(&redis, site, more)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_key_names_on_a_single_server_are_renamed_once_keeping_the_stream() -> R {
    let redis = {
        let mut r = Redis::init_single()?;
        r.up()?;
        r
    };
    let site = "bistro-old";
    let mut c = redis.connection()?;
    // What an earlier docketd left: three events relayed (marked so they can be told apart)
    // and its status; a menu under both names (the new one is not overwritten by a rename).
    for seq in 1..=3 {
        let _: String = redis::cmd("XADD")
            .arg(format!("docket:{site}:events"))
            .arg(format!("0-{seq}"))
            .arg("seq")
            .arg(seq)
            .arg("type")
            .arg("relayed-before")
            .query(&mut c)?;
    }
    let _: () = redis::cmd("HSET")
        .arg(format!("docket:{site}:status"))
        .arg("last_seq")
        .arg(3)
        .query(&mut c)?;
    for key in [
        format!("docket:{site}:menu"),
        format!("docket:{{{site}}}:menu"),
    ] {
        let _: () = redis::cmd("SET").arg(key).arg("{}").query(&mut c)?;
    }

    let d = Daemon::start_with(&[], site, &uplink_toml(None, Some(&redis.url()), 25))?;
    let last = service(&d, "a", 10).await?;
    redis_has_exactly(&redis, site, last)?;
    let new = format!("docket:{{{site}}}:events");
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(&new)
        .arg("-")
        .arg("+")
        .query(&mut c)?;
    let kinds: Vec<String> = reply
        .ids
        .iter()
        .map(|e| e.get("type").unwrap_or_default())
        .collect();
    // The first three are the old stream's, moved; the box appended after them, not again.
    assert!(
        kinds[..3].iter().all(|k| k == "relayed-before"),
        "{kinds:?}"
    );
    assert!(
        kinds[3..].iter().all(|k| k != "relayed-before"),
        "{kinds:?}"
    );
    for k in ["events", "status"] {
        let left: bool = redis::cmd("EXISTS")
            .arg(format!("docket:{site}:{k}"))
            .query(&mut c)?;
        assert!(!left, "docket:{site}:{k} still there");
    }
    let kept: bool = redis::cmd("EXISTS")
        .arg(format!("docket:{site}:menu"))
        .query(&mut c)?;
    assert!(kept, "the old menu key is left when the new one exists");
    assert_eq!(redis_menu(&redis, site).await?, (1, false));
    let log = d.log_text();
    assert_eq!(log.matches("renamed a key").count(), 2, "{log}");
    Ok(())
}
