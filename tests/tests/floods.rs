//! Floods from one address of the LAN. Every 127.0.0.0/8 address is this host, so a test plays
//! the attacker at 127.0.0.1 and the restaurant's devices at other addresses: silent MQTT
//! connections, HTTP connections that send half a request head, a body trickled in, and pairing
//! requests, none of which may stop a tablet at another address from logging in and ordering,
//! nor close pairing to the rest of the LAN.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use docket_tests::raw::{self, Raw};
use docket_tests::{Client, Daemon};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type R = anyhow::Result<()>;

/// Connections of each kind the attacker opens (the number).
const FLOOD: usize = 5000;

/// Raises this process's open-file limit to its hard limit and returns how many connections of
/// each kind fit (two kinds, and a margin for the test's own files): [`FLOOD`] where it allows.
fn flood_size() -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let lim = getrlimit(Resource::Nofile);
    let hard = lim.maximum;
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: hard,
            maximum: hard,
        },
    );
    let soft = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    let fit = usize::try_from(soft.saturating_sub(500) / 2).unwrap_or(usize::MAX);
    if fit < FLOOD {
        eprintln!("floods: the open-file limit ({soft}) allows {fit} connections of each kind, not {FLOOD}");
    }
    fit.min(FLOOD)
}

fn ip(a: [u8; 4]) -> IpAddr {
    IpAddr::from(a)
}

/// Opens `n` connections to `port` from 127.0.0.1, each writing `first` (if any) and then
/// nothing more.
async fn flood(port: u16, n: usize, first: &[u8]) -> anyhow::Result<Vec<TcpStream>> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(("127.0.0.1", port))
            .await
            .with_context(|| format!("flood connection {} to {port}", held.len()))?;
        if !first.is_empty() {
            // A connection over the limit is closed at once: its write may fail, as it should.
            let _ = s.write_all(first).await;
        }
        held.push(s);
    }
    Ok(held)
}

/// The attacker holds 5,000 silent MQTT connections and 5,000 HTTP connections with half a
/// request head, all from one address. A tablet at another address still logs in and has its
/// order answered within 2 s, over the MQTT port and over `/mqtt` (WebSocket), the box still
/// answers `/healthz`, and a second address still gets a pairing code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_slow_header_floods_from_one_address_do_not_stop_a_tablet() -> R {
    let n = flood_size();
    let d = Daemon::start()?;
    let t = d.add_device("tablet-1", "tablet", &[])?;
    let silent = flood(d.mqtt, n, b"").await?;
    let slow = flood(d.http, n, b"GET /healthz HTTP/1.1\r\nHost: box\r\n").await?;

    // Over the MQTT port, from 127.0.0.2.
    let started = Instant::now();
    let mut s = Raw::connect_from(ip([127, 0, 0, 2]), "127.0.0.1", d.mqtt).await?;
    let (reply, _) = raw::order_in_one_write(&mut s, 4, &t, "flood-mqtt").await?;
    let took = started.elapsed();
    assert!(reply.ok, "{reply:?}");
    assert!(
        took < Duration::from_secs(2),
        "MQTT: the tablet waited {took:?}"
    );

    // Over the WebSocket path (the HTTP port the slow heads flood), from 127.0.0.3.
    let adapter = raw::ws_adapter_from(Some(ip([127, 0, 0, 3])), d.http).await?;
    let started = Instant::now();
    let mut s = Raw::connect("127.0.0.1", adapter.port()).await?;
    let (reply, _) = raw::order_in_one_write(&mut s, 4, &t, "flood-ws").await?;
    let took = started.elapsed();
    assert!(reply.ok, "{reply:?}");
    assert!(
        took < Duration::from_secs(2),
        "WebSocket: the tablet waited {took:?}"
    );

    // Health and pairing from other addresses.
    let r = d
        .http_from(ip([127, 0, 0, 4]), "GET", "/healthz", &[], "")
        .context("healthz")?;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = d.http_from(ip([127, 0, 0, 5]), "POST", "/api/pair", &[], "{}")?;
    assert_eq!(r.status, 201, "{}", r.body);

    // The attacker's address got its 64 places (http.max_connections_per_address) and no more.
    // (Read from another address: the attacker's has no place left, not even for this.)
    let metrics = d.http_from(ip([127, 0, 0, 6]), "GET", "/metrics", &[], "")?;
    let refused: f64 = metrics
        .body
        .lines()
        .find_map(|l| l.strip_prefix("docket_http_refused_total "))
        .context("docket_http_refused_total")?
        .trim()
        .parse()?;
    assert!(refused >= (n - 64) as f64, "{refused} of {n} refused");
    drop((silent, slow));
    Ok(())
}

/// A request head that never ends, and an idle keep-alive connection, are closed after
/// `http.header_timeout_ms`; a body trickled in slower than `http.request_timeout_ms` gets 408.
/// (Before, axum's server had no timer: both stayed open for as long as the client liked.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_idle_connections_and_slow_bodies_are_cut_off() -> R {
    let d = Daemon::start_with_env(&[
        ("DOCKET_HTTP_HEADER_TIMEOUT_MS", "500"),
        ("DOCKET_HTTP_REQUEST_TIMEOUT_MS", "1000"),
    ])?;
    let closed_within = |mut s: TcpStream, limit: Duration| async move {
        let started = Instant::now();
        let mut buf = Vec::new();
        let r = tokio::time::timeout(limit, s.read_to_end(&mut buf)).await;
        (
            r.is_ok(),
            started.elapsed(),
            String::from_utf8_lossy(&buf).into_owned(),
        )
    };

    // Half a head.
    let mut s = TcpStream::connect(("127.0.0.1", d.http)).await?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: box\r\n")
        .await?;
    let (closed, after, _) = closed_within(s, Duration::from_secs(5)).await;
    assert!(closed, "a half head kept its connection open for 5 s");
    assert!(
        after >= Duration::from_millis(300),
        "closed after {after:?}: too soon"
    );

    // A whole request, answered, then silence on the keep-alive connection.
    let mut s = TcpStream::connect(("127.0.0.1", d.http)).await?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: box\r\n\r\n")
        .await?;
    let (closed, _, text) = closed_within(s, Duration::from_secs(5)).await;
    assert!(closed, "an idle keep-alive connection stayed open for 5 s");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");

    // A body announced as 100 bytes and sent a byte every 200 ms.
    let mut s = TcpStream::connect(("127.0.0.1", d.http)).await?;
    s.write_all(
        b"POST /api/pair HTTP/1.1\r\nHost: box\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
    )
    .await?;
    let (mut rd, mut wr) = s.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..30 {
            if wr.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let mut answer = Vec::new();
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), rd.read_to_end(&mut answer)).await??;
    let after = started.elapsed();
    trickle.abort();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(after < Duration::from_secs(3), "answered after {after:?}");
    // Nothing was paired from it.
    assert!(d.cli(&["device", "pairings"])?.trim().is_empty());
    Ok(())
}

/// One machine on the Wi-Fi opens 2,000 MQTT connections and sends nothing; a tablet at another
/// address still logs in and has its order answered within 2 s. Before the per-address places
/// (`conn::gate`), the flood took every place among the unanswered connections, 100 per 250 ms,
/// and the tablet's connection waited behind it in the listen queue: about 5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_silent_connections_from_one_address_does_not_hold_up_a_tablet() -> R {
    let d = Daemon::start()?;
    let t = d.add_device("tablet-1", "tablet", &[])?;
    let mut flood = Vec::new();
    for _ in 0..2000 {
        flood.push(tokio::net::TcpStream::connect(("127.0.0.1", d.mqtt)).await?);
    }
    let started = Instant::now();
    let mut s = Raw::connect_from(ip([127, 0, 0, 2]), "127.0.0.1", d.mqtt).await?;
    let (reply, _) = raw::order_in_one_write(&mut s, 4, &t, "past-the-flood").await?;
    let took = started.elapsed();
    assert!(reply.ok, "{reply:?}");
    assert!(
        took < Duration::from_secs(2),
        "the tablet waited {took:?} behind another address's flood"
    );
    drop(flood);
    Ok(())
}

/// Silent connections to the MQTT-over-TLS port from eight addresses (more than the unanswered
/// places hold, 16 per address): a TLS handshake holds its place no longer than a plain
/// connection's wait for CONNECT does, so a tablet still logs in over TLS and has its order
/// answered within 2 s. (Holding it for the whole 10 s handshake deadline, as at first, kept the
/// tablet waiting for most of that.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_tls_connections_from_many_addresses_do_not_hold_up_a_tablet() -> R {
    let d = Daemon::start_with_env(&[("DOCKET_MQTT_PLAIN", "false")])?;
    let t = d.add_device("tablet-1", "tablet", &[])?;
    let to = std::net::SocketAddr::from(([127, 0, 0, 1], d.mqtts));
    let mut flood = Vec::new();
    for a in 10..18u8 {
        for _ in 0..100 {
            flood.push(docket_tests::connect_from(ip([127, 0, 0, a]), to)?);
        }
    }
    let started = Instant::now();
    let mut c = Client::connect_tls("127.0.0.1", d.mqtts, &t, d.trusting_site_ca()?).await?;
    let reply = c
        .command(&docket_core::wire::CommandBody::place(
            "4",
            vec![docket_tests::line("burger-classic", 1)],
        ))
        .await?;
    let took = started.elapsed();
    assert!(reply.ok, "{reply:?}");
    println!(
        "TLS login and order past {} silent connections: {took:?}",
        flood.len()
    );
    assert!(
        took < Duration::from_secs(2),
        "the tablet waited {took:?} behind silent TLS connections"
    );
    drop(flood);
    Ok(())
}
