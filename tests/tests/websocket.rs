//! `/mqtt`: MQTT over WebSocket through docketd's HTTP port, as browsers (mqtt.js) use it.
//!
//! A tiny adapter turns a local TCP port into WebSocket connections to `/mqtt`, so the same real
//! MQTT client the other tests use speaks through the bridge.

use docket_core::wire::{self, CommandBody, Event};
use docket_tests::raw::ws_adapter;
use docket_tests::{line, login_refused, Client, Daemon};
use tokio::io::AsyncWriteExt;

type R = anyhow::Result<()>;

/// Opens a WebSocket to `/mqtt` on loopback (see [`docket_tests::raw::open_ws`]).
async fn open_ws(
    http: u16,
) -> anyhow::Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
> {
    docket_tests::raw::open_ws("127.0.0.1", http).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_style_client_orders_over_websocket() -> R {
    let d = Daemon::start()?;
    let tablet = d.add_device("tablet-ws", "tablet", &[])?;
    let screen = d.add_device("kds-grill", "station", &["grill"])?;
    let ws_port = ws_adapter(d.http).await?.port();

    // A screen on plain TCP, a tablet over WebSocket.
    let mut s = Client::connect(d.mqtt, &screen).await?;
    s.subscribe(wire::EVENTS_TOPIC).await?;
    let mut t = Client::connect(ws_port, &tablet).await?;
    let r = t
        .command(&CommandBody::place("2", vec![line("burger-classic", 1)]))
        .await?;
    assert!(r.ok, "{r:?}");
    let m = s.wait_for(|m| m.topic == wire::EVENTS_TOPIC).await?;
    let e: Event = wire::decode(&m.payload)?;
    assert_eq!(e.command, r.command);
    // Retained state reaches WebSocket clients too.
    t.subscribe(&wire::board_topic("grill")).await?;
    assert_eq!(t.board("grill", 1).await?.orders.len(), 1);
    assert!(d.metric("docket_mqtt_connections")? >= 2.0);

    // A wrong password over WebSocket is refused like over TCP.
    assert!(login_refused(ws_port, "tablet-ws", "tablet-ws", &"0".repeat(64)).await);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_blocks_nobody() -> R {
    let d = Daemon::start()?;
    let tablet = d.add_device("tablet-ws", "tablet", &[])?;
    // Ten clients that open the HTTP port and never finish a request or a handshake.
    let mut stalled = Vec::new();
    for _ in 0..10 {
        let mut c = tokio::net::TcpStream::connect(("127.0.0.1", d.http)).await?;
        c.write_all(b"GET /mqtt HTTP/1.1\r\nHost: x\r\n").await?;
        stalled.push(c);
    }
    // A WebSocket that upgrades and never speaks MQTT.
    let _silent = open_ws(d.http).await?;
    // A real client still gets through at once.
    let ws_port = ws_adapter(d.http).await?.port();
    let mut t = Client::connect(ws_port, &tablet).await?;
    let r = t
        .command(&CommandBody::place("2", vec![line("fries", 1)]))
        .await?;
    assert!(r.ok);
    // Plain HTTP requests without the upgrade are refused, not hung.
    let (status, _) = d.get("/mqtt")?;
    assert!((400..500).contains(&status), "status {status}");
    Ok(())
}
