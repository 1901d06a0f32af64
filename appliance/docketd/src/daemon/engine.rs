//! docketd's start, the engine's part: the menu to serve (the stored one, the file seeded when
//! new or changed) and the engine started on its own thread with the retained state in place.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::sync::oneshot;

use crate::config::Config;
use crate::engine::link::RouterLink;
use crate::engine::{Engine, EngineSettings};
use crate::metrics::Metrics;
use crate::mqtt::broker::Broker;
use crate::site::menu;
use crate::status::Status;
use crate::store::registry::DeviceRegistry;
use crate::store::Store;
use crate::VERSION;

use super::systemd;

pub(super) type EngineDone = oneshot::Receiver<Result<(), crate::engine::EngineError>>;

/// The menu to serve: the stored one, seeded from the menu file (or the demo) when the file is new
/// or changed since it was last seeded (`store::menu`).
pub(super) fn seed_menu(cfg: &Config, store: &Store) -> anyhow::Result<docket_core::Menu> {
    use crate::store::menu::Seeded;
    let file = menu::load(cfg.menu_file.as_deref())?;
    let (menu, how) = store
        .seed_menu(&file, crate::store::pairing::now_ms())
        .context("cannot store the menu")?;
    match how {
        Seeded::First => tracing::info!(
            version = menu.version,
            items = menu.items.len(),
            "menu seeded from the menu file"
        ),
        Seeded::Kept => tracing::info!(
            version = menu.version,
            items = menu.items.len(),
            "menu: serving the stored menu with its edits (the menu file is unchanged)"
        ),
        Seeded::Again { edits } => tracing::warn!(
            version = menu.version,
            replaced_edits = edits,
            "the menu file changed: seeded again, replacing the menu's edits since the last seed"
        ),
    }
    Ok(menu)
}

/// The engine: built on its link, the retained state republished and taken by the router, then
/// running on its own thread. Returns its stop flag and the channel it reports its end on.
pub(super) async fn start_engine(
    cfg: &Config,
    (broker, inbox): (&Broker, crate::engine::inbox::Inbox),
    store: Store,
    menu: docket_core::Menu,
    registry: Arc<DeviceRegistry>,
    (metrics, status): (Arc<Metrics>, Arc<Status>),
) -> anyhow::Result<(Arc<AtomicBool>, EngineDone)> {
    let link = broker.link("docketd-engine")?;
    let settings = EngineSettings {
        site_id: cfg.site_id.clone(),
        max_batch: cfg.engine.max_batch,
        board_interval: Duration::from_millis(cfg.engine.board_interval_ms),
        replay_page: cfg.engine.replay_page,
        replay_page_bytes: cfg.engine.replay_page_bytes,
        limits: docket_core::SiteLimits {
            max_open_orders: cfg.engine.max_open_orders,
            max_order_bytes: cfg.engine.max_order_bytes,
            max_open_bytes: cfg.engine.max_open_bytes,
        },
        rate_limit: crate::engine::ratelimit::Limit {
            per_second: cfg.engine.commands_per_second,
            burst: cfg.engine.command_burst,
        },
        version: VERSION.to_owned(),
    };
    let link = RouterLink::open(link, &inbox)?;
    let mut engine = Engine::new(
        settings,
        store,
        menu,
        registry,
        (metrics, status),
        link,
        inbox,
    )?;

    systemd::status("republishing retained state");
    let t = Instant::now();
    let (engine, republished) = tokio::task::spawn_blocking(move || {
        let ok = engine.republish_retained(Instant::now() + Duration::from_secs(10));
        (engine, ok)
    })
    .await?;
    if !republished? {
        bail!("the broker did not take the retained state within 10 s");
    }
    tracing::info!(
        took_ms = t.elapsed().as_millis() as u64,
        "retained menu, boards and status republished"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let (engine_done_tx, engine_done) = oneshot::channel();
    {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("engine".into())
            .spawn(move || {
                let r = engine.run(stop);
                let _ = engine_done_tx.send(r);
            })
            .context("cannot start the engine thread")?;
    }

    Ok((stop, engine_done))
}
