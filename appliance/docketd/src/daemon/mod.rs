//! Starting and stopping the appliance: the order of things that makes READY=1 mean ready.
//!
//! Site bundle applied → store → menu → device registry → the site CA and the box's certificate
//! (`tls`) → ports bound → router + engine link → retained state republished → the engine runs →
//! the MQTT listeners, HTTPS and HTTP accept → a probe login through every listener → READY=1. On SIGTERM/SIGINT: the engine drains what it was handed, STOPPING=1,
//! every connection is closed, exit. rumqttd's router has no shutdown API; its thread ends with
//! the process.

mod engine;
pub mod logging;
pub mod systemd;

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::sync::oneshot;

use crate::config::Config;
use crate::http::api::ApiState;
use crate::http::{self, AppState};
use crate::metrics::{self, Metrics};
use crate::mqtt::broker::{self, Broker};
use crate::mqtt::conn::{self, probe, Connections, Proto};
use crate::status::Status;
use crate::store::registry::DeviceRegistry;
use crate::store::Store;
use crate::tls::Tls;
use crate::VERSION;
use engine::{seed_menu, start_engine, EngineDone};

pub async fn run(mut cfg: Config) -> anyhow::Result<()> {
    metrics::uptime_ms();
    let (site_status, managers) = crate::site::apply(&mut cfg);
    let metrics = Arc::new(Metrics::default());
    let status = Arc::new(Status::default());
    tracing::info!(site_id = %cfg.site_id, data_dir = %cfg.data_dir.display(), version = VERSION, "docketd starting");
    systemd::status("opening the store");

    let store = open_store(&cfg, &managers)?;
    let menu = seed_menu(&cfg, &store)?;
    crate::print::load(&cfg.db_path(), &cfg.printing, &status.printing)
        .context("cannot load the kitchen printers")?;
    let registry = Arc::new(
        DeviceRegistry::open(&cfg.db_path(), metrics.clone()).context("cannot read devices")?,
    );

    let tls = load_tls(&cfg).await?;
    // Fail fast on a taken port, before anything is published. Bound now, accepted only once
    // the retained state is in place.
    let (http_listeners, mqtt) = bind_listeners(&cfg, &tls)?;
    let stations = menu.stations().len();
    let broker = Broker::start(broker::router_config(&cfg, stations));
    let (commands, inbox) = crate::engine::inbox::channel(crate::engine::inbox::CAPACITY);
    // Menus from head office reach the engine through its queue too (`uplink::menus_down`).
    let head_office = commands.clone();
    let (stop, mut engine_done) = start_engine(
        &cfg,
        (&broker, inbox),
        store,
        menu,
        registry.clone(),
        (metrics.clone(), status.clone()),
    )
    .await?;

    let shutdown = tokio_util::sync::CancellationToken::new();
    let restart = tokio_util::sync::CancellationToken::new();
    let targets = probe_targets(&cfg, &mqtt, &http_listeners, &tls)?;
    let health = Arc::new(probe::Health::new(targets));
    let submitter = crate::integration::Submitter::new(commands.clone(), registry.clone());
    let connections = Connections::new(
        broker,
        commands,
        registry.clone(),
        (metrics.clone(), status.clone()),
        conn::Settings {
            max_packet: cfg.max_payload_bytes,
            topic_acl: cfg.topic_acl,
        },
        connection_slots(cfg.max_connections),
        health.clone(),
    )
    .context("cannot start the MQTT admission thread")?;
    for (listener, proto, name, secure) in mqtt {
        tokio::spawn(
            connections
                .clone()
                .serve(listener, proto, name, secure, shutdown.clone()),
        );
    }
    // Webhooks to the integrations: their own tasks and connection, started once READY.
    let webhooks = crate::webhook::Webhooks::for_site(&cfg, tls.ca.as_ref().map(|c| &c.der[..]))?;
    let state = app_state(
        &cfg,
        (&registry, &connections, &tls, &submitter, &webhooks),
        (&metrics, &status),
        site_status,
        &restart,
    )?;
    let [https_task, http_task] =
        serve_http(&cfg, http_listeners, &tls, state, &metrics, &shutdown)?;
    tokio::spawn(tls.clone().renew(shutdown.clone()));
    prove_listeners(&health, &connections, &shutdown).await?;
    tokio::spawn(systemd::watchdog(status.clone(), health.clone()));
    tokio::spawn(watch_devices(
        registry.clone(),
        metrics.clone(),
        (connections.clone(), webhooks.clone()),
        shutdown.clone(),
    ));
    // The uplink relays read committed events through their own connections: the kitchen
    // never waits for them.
    let _relays = crate::uplink::spawn(
        &cfg,
        (metrics.clone(), status.clone()),
        &submitter,
        head_office,
        shutdown.clone(),
    );
    // The kitchen printers: their own tasks and connection; the engine never waits on them.
    crate::print::spawn(
        &cfg.db_path(),
        status.clone(),
        registry.clone(),
        shutdown.clone(),
    )
    .context("cannot start the kitchen printers")?;
    crate::webhook::spawn(webhooks, shutdown.clone());

    status.ready.store(true, Relaxed);
    announce_ready(&cfg, &tls, &metrics);

    let engine_result = until_stopped(&restart, &mut engine_done).await?;
    status.ready.store(false, Relaxed);
    let result = finish(engine_result, &stop, engine_done).await;
    systemd::stopping();
    shutdown.cancel();
    connections.cut_all();
    let _ = tokio::time::timeout(Duration::from_secs(2), http_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), https_task).await;
    tracing::info!("docketd stopped");
    result
}

/// The store, with the site bundle's manager devices added.
fn open_store(
    cfg: &Config,
    managers: &[docket_core::bundle::BundleManager],
) -> anyhow::Result<Store> {
    let store = Store::open(&cfg.db_path(), &cfg.site_id)
        .with_context(|| format!("cannot open the store at {}", cfg.db_path().display()))?;
    if !managers.is_empty() {
        let mut conn = crate::store::connect(&cfg.db_path())?;
        let added = crate::site::add_managers(&mut conn, managers, crate::store::pairing::now_ms())
            .context("cannot add the site bundle's manager devices")?;
        if !added.is_empty() {
            tracing::info!(devices = ?added, "manager devices from the site bundle added");
        }
    }
    Ok(store)
}

/// Waits for SIGTERM, SIGINT, a pushed site bundle's restart, or the engine's end (its result).
async fn until_stopped(
    restart: &tokio_util::sync::CancellationToken,
    engine_done: &mut EngineDone,
) -> anyhow::Result<Option<EngineEnd>> {
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    Ok(tokio::select! {
        _ = sigterm.recv() => None,
        _ = restart.cancelled() => {
            tracing::info!("a pushed site bundle is stored: stopping so that the service manager starts docketd with it");
            None
        }
        _ = tokio::signal::ctrl_c() => None,
        r = engine_done => Some(r),
    })
}

/// What the HTTP handlers share: the admin API over its own store connection, the site bundle's
/// state and push, the listeners' health, the warnings and the served certificate.
fn app_state(
    cfg: &Config,
    (registry, connections, tls, submitter, webhooks): (
        &Arc<DeviceRegistry>,
        &Connections,
        &Arc<Tls>,
        &crate::integration::Submitter,
        &Arc<crate::webhook::Webhooks>,
    ),
    (metrics, status): (&Arc<Metrics>, &Arc<Status>),
    site_status: crate::site::SiteStatus,
    restart: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<AppState> {
    let api = ApiState::open(
        &cfg.db_path(),
        registry.clone(),
        (metrics.clone(), status.clone()),
        &cfg.site_id,
        VERSION,
    )
    .context("cannot open the store for the admin API")?
    .with_warnings(warnings(cfg))
    .with_webhooks(webhooks.clone());
    Ok(AppState {
        metrics: metrics.clone(),
        status: status.clone(),
        site_id: cfg.site_id.clone(),
        version: VERSION,
        mqtt: Some(connections.clone()),
        max_message_bytes: cfg.max_payload_bytes + 64 * 1024,
        api: Some(api),
        site: Some(Arc::new(http::SiteShared {
            data_dir: cfg.data_dir.clone(),
            status: std::sync::Mutex::new(site_status),
            restart: cfg.restart_on_site_push.then(|| restart.clone()),
        })),
        warnings: warnings(cfg),
        tls: Some(tls.clone()),
        integration: Some(submitter.clone()),
    })
}

/// The site CA and the box's certificate (file reads, maybe key generation: off the runtime).
async fn load_tls(cfg: &Config) -> anyhow::Result<Arc<Tls>> {
    systemd::status("loading the site CA and the box's certificate");
    let (t, dir, id, name) = (
        cfg.tls.clone(),
        cfg.data_dir.clone(),
        cfg.site_id.clone(),
        cfg.site_name.clone(),
    );
    Ok(Arc::new(
        tokio::task::spawn_blocking(move || Tls::start(&t, &dir, &id, &name))
            .await?
            .context("cannot set up TLS")?,
    ))
}

/// Where docketd's own probes log in: every MQTT port (over TLS, trusting what the box serves,
/// where the port is TLS), `/mqtt` over HTTPS, and over plain HTTP when that serves the app.
fn probe_targets(
    cfg: &Config,
    mqtt: &Mqtt,
    http: &Http,
    tls: &Arc<Tls>,
) -> anyhow::Result<Vec<(&'static str, probe::Target)>> {
    let probe_tls = crate::tls::pinned::probe_client(tls.clone())?;
    let mut targets: Vec<(&'static str, probe::Target)> = Vec::new();
    for (l, proto, name, secure) in mqtt {
        let target = match secure {
            Some(_) => probe::Target::Tls(l.local_addr()?, *proto, probe_tls.clone()),
            None => probe::Target::Tcp(l.local_addr()?, *proto),
        };
        targets.push((name, target));
    }
    targets.push((
        "websocket_tls",
        probe::Target::SecureWebSocket(http.https.local_addr()?, probe_tls),
    ));
    if cfg.plain_http {
        targets.push((
            "websocket",
            probe::Target::WebSocket(http.plain.local_addr()?),
        ));
    }
    Ok(targets)
}

/// HTTPS serves the app and the trust pages; plain HTTP the landing page, `/healthz` and
/// redirects (or, with `http.plain`, the app as well). Returns the two accept loops.
fn serve_http(
    cfg: &Config,
    listeners: Http,
    tls: &Arc<Tls>,
    state: AppState,
    metrics: &Arc<Metrics>,
    shutdown: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<[tokio::task::JoinHandle<()>; 2]> {
    let health_app = http::health_router(state.clone());
    let landing = Arc::new(crate::tls::landing::Landing {
        ca: tls.ca.clone(),
        site_name: cfg.site_name.clone(),
        https_port: listeners.https.local_addr()?.port(),
    });
    let app = http::router(state).merge(crate::tls::landing::trust_routes(landing.clone()));
    let plain_app = match cfg.plain_http {
        true => app.clone(),
        false => crate::tls::landing::plain_router(landing, health_app),
    };
    let https = tokio::spawn(crate::http::conn::serve(
        listeners.https,
        app,
        cfg.http_limits,
        metrics.clone(),
        Some(tls.http.clone()),
        shutdown.clone(),
    ));
    let plain = tokio::spawn(crate::http::conn::serve(
        listeners.plain,
        plain_app,
        cfg.http_limits,
        metrics.clone(),
        None,
        shutdown.clone(),
    ));
    Ok([https, plain])
}

/// READY=1 with a status line, and the log line a technician reads: where the box listens, the
/// site CA's fingerprint (the journal's word beside the landing page's, which travels in plain
/// text), and the plain text a site turned on.
fn announce_ready(cfg: &Config, tls: &Tls, metrics: &Metrics) {
    let line = format!(
        "ready: site {} https {} mqtts {} seq {}",
        cfg.site_id,
        cfg.tls.https_listen,
        cfg.tls
            .mqtt_listen
            .map(|a| a.to_string())
            .unwrap_or_else(|| "off".into()),
        metrics.seq.load(Relaxed)
    );
    let ca_sha256 = tls
        .ca
        .as_ref()
        .map(|c| crate::tls::ca::fingerprint_text(&c.fingerprint))
        .unwrap_or_default();
    tracing::info!(https = %cfg.tls.https_listen, http = %cfg.http_listen, plain_mqtt = cfg.plain_mqtt, ca = tls.ca_source, ca_sha256, "docketd ready");
    for w in warnings(cfg) {
        tracing::warn!("{w}");
    }
    systemd::ready(&line);
}

/// How the engine ended: by itself (an error: it does not stop otherwise), or told to drain.
/// How the engine's thread ended (the sender dropped: it panicked).
type EngineEnd = Result<Result<(), crate::engine::EngineError>, oneshot::error::RecvError>;

async fn finish(
    ended: Option<EngineEnd>,
    stop: &AtomicBool,
    engine_done: EngineDone,
) -> anyhow::Result<()> {
    match ended {
        Some(Ok(Ok(()))) => Ok(()),
        Some(Ok(Err(e))) => Err(anyhow::Error::new(e).context("the engine stopped")),
        Some(Err(_)) => Err(anyhow::anyhow!("the engine thread died")),
        None => {
            tracing::info!("shutting down: draining in-flight commands");
            systemd::status("draining");
            stop.store(true, Relaxed);
            match tokio::time::timeout(Duration::from_secs(10), engine_done).await {
                Ok(Ok(Ok(()))) => Ok(()),
                Ok(Ok(Err(e))) => {
                    Err(anyhow::Error::new(e).context("the engine failed while draining"))
                }
                Ok(Err(_)) => Err(anyhow::anyhow!("the engine thread died while draining")),
                Err(_) => Err(anyhow::anyhow!("the engine did not drain within 10 s")),
            }
        }
    }
}

/// An MQTT listener: its socket, protocol version, name (in `/healthz`) and TLS.
type Mqtt = Vec<(
    tokio::net::TcpListener,
    Proto,
    &'static str,
    Option<Arc<rustls::ServerConfig>>,
)>;

/// The bound HTTP listeners: plain (landing page, or the whole app with `http.plain`) and HTTPS.
struct Http {
    plain: tokio::net::TcpListener,
    https: tokio::net::TcpListener,
}

/// Binds HTTP, HTTPS and the MQTT ports (each with the connection layer's deep listen queue):
/// MQTT over TLS, and plain MQTT only when the site turned it on.
fn bind_listeners(cfg: &Config, tls: &Tls) -> anyhow::Result<(Http, Mqtt)> {
    let bind = |addr, what: &str| {
        conn::listen::bind(addr).with_context(|| format!("cannot listen for {what} on {addr}"))
    };
    let http = Http {
        plain: bind(cfg.http_listen, "HTTP")?,
        https: bind(cfg.tls.https_listen, "HTTPS")?,
    };
    let mut mqtt = Vec::new();
    let secure = Some(tls.mqtt.clone());
    let tls_ports = [
        (cfg.tls.mqtt_listen, Proto::V4, "mqtts"),
        (cfg.tls.mqtt_v5_listen, Proto::V5, "mqtts_v5"),
    ];
    for (addr, proto, name) in tls_ports {
        if let Some(addr) = addr {
            mqtt.push((bind(addr, "MQTT over TLS")?, proto, name, secure.clone()));
        }
    }
    if cfg.plain_mqtt {
        let plain = std::iter::once((cfg.mqtt_listen, Proto::V4, "mqtt"))
            .chain(cfg.mqtt_v5_listen.map(|a| (a, Proto::V5, "mqtt_v5")));
        for (addr, proto, name) in plain {
            mqtt.push((bind(addr, "MQTT")?, proto, name, None));
        }
    }
    Ok((http, mqtt))
}

/// What `/healthz`, `/admin` and `docket doctor` warn about: plain text on the LAN.
fn warnings(cfg: &Config) -> Vec<String> {
    let mut w = Vec::new();
    if cfg.plain_mqtt {
        w.push(if cfg.mqtt_listen.ip().is_loopback() {
            format!(
                "plain MQTT is on (mqtt.plain), on {} only: programs on the box itself log in and order unencrypted",
                cfg.mqtt_listen
            )
        } else {
            format!(
                "plain MQTT is on (mqtt.plain): logins and orders on {} cross the LAN unencrypted",
                cfg.mqtt_listen
            )
        });
    }
    if cfg.plain_http {
        w.push(format!(
            "plain HTTP serves the pages and the API (http.plain): logins on {} cross the LAN unencrypted",
            cfg.http_listen
        ));
    }
    w.extend(crate::webhook::warning(&cfg.integration));
    w
}

/// Every listener proves itself with a real login before READY (within 10 s), and keeps proving
/// it until shutdown.
async fn prove_listeners(
    health: &Arc<probe::Health>,
    connections: &Connections,
    shutdown: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let every = systemd::probe_every();
    let t = Instant::now();
    loop {
        health.probe_all(connections.probe_token()).await;
        match health.alive_within(every.as_millis() as u64 * 3) {
            Ok(()) => break,
            Err(stale) if t.elapsed() > Duration::from_secs(10) => {
                bail!("a listener does not take logins: {stale}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let (health, connections, stop) = (health.clone(), connections.clone(), shutdown.clone());
    tokio::spawn(async move { health.run(connections.probe_token(), every, stop).await });
    Ok(())
}

/// Notices device changes made by the CLI or the admin API and cuts revoked devices off at once.
async fn watch_devices(
    registry: Arc<DeviceRegistry>,
    metrics: Arc<Metrics>,
    (connections, webhooks): (Connections, Arc<crate::webhook::Webhooks>),
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let reg = registry.clone();
        match tokio::task::spawn_blocking(move || reg.refresh()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = ?e, "device refresh failed"),
            Err(_) => continue,
        }
        let cut = registry.take_revoked();
        for device in cut {
            // An integration's webhook first: the moment its connection is seen cut, nothing
            // more is sent for it either (the supervisor's own look is every 5 s).
            webhooks.stop_now(&device);
            metrics.kicks.fetch_add(1, Relaxed);
            if connections.cut(&device, conn::Ending::Revoked) {
                tracing::info!(device, "revoked device cut off");
            }
        }
    }
}

/// File descriptors one MQTT or WebSocket connection costs: the device's socket.
const FDS_PER_CONNECTION: u64 = 1;
/// Descriptors kept for SQLite, listeners, the uplink and the HTTP API.
const FDS_RESERVED: u64 = 256;

/// Raises the soft open-file limit to the hard one and returns how many connections fit in it:
/// `max_connections`, or fewer (with a warning naming the fix) when the limit is too low, so a
/// full box refuses new connections cleanly instead of failing accepts with EMFILE.
fn connection_slots(max_connections: usize) -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    if let (Some(cur), Some(max)) = (lim.current, lim.maximum) {
        if cur < max {
            let raised = rustix::process::Rlimit {
                current: Some(max),
                maximum: Some(max),
            };
            if setrlimit(Resource::Nofile, raised).is_ok() {
                lim = raised;
            }
        }
    }
    // None is "unlimited".
    let limit = lim.current.unwrap_or(u64::MAX);
    let fit = usize::try_from(limit.saturating_sub(FDS_RESERVED) / FDS_PER_CONNECTION)
        .unwrap_or(usize::MAX)
        .max(1);
    if fit < max_connections {
        tracing::warn!(
            open_files = limit,
            max_connections,
            admitted = fit,
            "the open-file limit admits fewer connections than mqtt.max_connections; \
             raise it (systemd LimitNOFILE=, or ulimit -n) to {}",
            max_connections as u64 * FDS_PER_CONNECTION + FDS_RESERVED
        );
    }
    fit.min(max_connections)
}
