//! Menus from head office: a task that looks at head office's PostgreSQL (at start, on each
//! reconnect, when head office notifies `docket_central` (a menu or an 86 inserted, a brand
//! set), and every `uplink.menus_poll_ms` as the backstop) for a newer central menu for this site
//! (`docket_cloud::newest_central_menu`: the site's own beats its brand's) and for 86s after the
//! last one taken, and hands each to the engine (`engine::central`), which decides it as every
//! menu is decided and records it exactly once. A menu the box refuses is logged, shown in
//! `/healthz`'s `warnings`, and not tried again until head office has a newer one.
//!
//! Owns the loop, its connection and what it has already handed over; reads the box's SQLite
//! through its own connection (which central version and 86 it has). Must not change the menu
//! itself (the engine's) nor hold head office's SQL (`docket_cloud`'s).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use docket_cloud::{Client, CloudError};
use tokio_util::sync::CancellationToken;

use super::backlog::{self, BacklogHandle};
use super::{pause, Backoff};
use crate::config::{SecretUrl, Uplink};
use crate::engine::central::{Change, Outcome};
use crate::engine::inbox::{Commands, Stopped};
use crate::status::Status;
use crate::store::blocking::BlockingError;

/// 86s read from head office at most per query.
const STOCK_BATCH: i64 = 100;

#[derive(Debug, thiserror::Error)]
enum DownError {
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error(transparent)]
    Backlog(#[from] BlockingError),
    #[error(transparent)]
    Stopped(#[from] Stopped),
}

pub struct MenusDown {
    pub db: PathBuf,
    pub site_id: String,
    pub url: SecretUrl,
    pub settings: Uplink,
    pub commands: Commands,
    pub status: Arc<Status>,
    pub stop: CancellationToken,
}

/// What the task has handed to the engine already.
#[derive(Default)]
struct Taken {
    /// The key of the last central menu handed over (taken, unchanged or refused).
    menu: Option<String>,
    /// The id of the last 86 handed over (read from SQLite at first).
    stock: Option<i64>,
}

/// The task: runs until `stop` (or the engine stops).
pub async fn run(t: MenusDown) {
    let local = match backlog::open(t.db.clone()).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "menus from head office: cannot open the local store; not taking them");
            return;
        }
    };
    let mut backoff = Backoff::new(t.settings.backoff_min_ms, t.settings.backoff_max_ms);
    let mut client: Option<Client> = None;
    let mut taken = Taken::default();
    let mut up: Option<bool> = None;
    let notify = Arc::new(tokio::sync::Notify::new());
    loop {
        if t.stop.is_cancelled() {
            return;
        }
        let step = async {
            if client.as_ref().is_none_or(|c| c.is_closed()) {
                client = None;
                let c = docket_cloud::connect_listening(
                    &t.url,
                    t.settings.timeouts(),
                    notify.clone(),
                    docket_cloud::central::CHANNEL,
                )
                .await?;
                client = Some(c);
            }
            let Some(c) = client.as_ref() else {
                unreachable!("connected above")
            };
            take_menu(&t, c, &local, &mut taken).await?;
            take_stock(&t, c, &local, &mut taken).await
        };
        let wait = match step.await {
            Ok(()) => {
                if up != Some(true) {
                    tracing::info!("menus from head office: reading them");
                }
                up = Some(true);
                backoff.reset();
                tokio::select! {
                    _ = t.stop.cancelled() => return,
                    _ = notify.notified() => continue,
                    _ = tokio::time::sleep(Duration::from_millis(t.settings.menus_poll_ms)) => continue,
                }
            }
            Err(DownError::Stopped(_)) => return,
            Err(e) => {
                // Head office answered no (not migrated to 007_central_menus, say): the
                // connection is fine. Anything else: connect again.
                if !matches!(&e, DownError::Cloud(c) if c.is_refusal()) {
                    client = None;
                }
                if up != Some(false) {
                    tracing::warn!(error = %e, "menus from head office: cannot read them (a head office not migrated to 007_central_menus: run `docketd uplink migrate` there); retrying with backoff (logged again when back)");
                }
                up = Some(false);
                backoff.next_delay()
            }
        };
        if !pause(&t.stop, wait).await {
            return;
        }
    }
}

/// Hands the newest central menu to the engine unless it was handed over already.
async fn take_menu(
    t: &MenusDown,
    c: &Client,
    local: &BacklogHandle,
    taken: &mut Taken,
) -> Result<(), DownError> {
    let Some(m) = docket_cloud::newest_central_menu(c, &t.site_id).await? else {
        return Ok(());
    };
    let key = m.key();
    if taken.menu.as_deref() == Some(key.as_str()) {
        return Ok(());
    }
    let edits = local.run(|l| l.menu_edits_since_central()).await?;
    let change = Change::Menu {
        key: key.clone(),
        items: m.items,
    };
    let uplink = &t.status.uplink;
    match t.commands.head_office(change).await? {
        Outcome::Applied { version } => {
            tracing::info!(central = %key, version, local_versions = edits, "took head office's menu {key} as the menu's version {version}; the {edits} versions made on the box since head office's last menu are replaced (items, names, prices, stations; the box's 86s stay)");
            uplink.set_central_menu_refused(None);
        }
        Outcome::Unchanged => {
            tracing::info!(central = %key, "head office's menu {key} is the menu the box serves already");
            uplink.set_central_menu_refused(None);
        }
        Outcome::Refused { reason } => {
            tracing::warn!(central = %key, reason = %reason, "refused head office's menu {key} (not tried again until head office has a newer one): {reason}");
            uplink.set_central_menu_refused(Some(refused(&key, &reason)));
        }
        Outcome::Seen { refused: why } => {
            uplink.set_central_menu_refused(why.map(|r| refused(&key, &r)));
        }
        Outcome::NotStored { error } => {
            tracing::warn!(central = %key, error = %error, "head office's menu {key} could not be stored; tried again");
            return Ok(());
        }
    }
    taken.menu = Some(key);
    Ok(())
}

fn refused(key: &str, reason: &str) -> String {
    format!("menu from head office {key} refused: {reason}")
}

/// Hands head office's 86s after the last one taken to the engine, in order.
async fn take_stock(
    t: &MenusDown,
    c: &Client,
    local: &BacklogHandle,
    taken: &mut Taken,
) -> Result<(), DownError> {
    let mut cursor = match taken.stock {
        Some(id) => id,
        None => local.run(|l| l.central_stock_cursor()).await?,
    };
    taken.stock = Some(cursor);
    loop {
        let rows = docket_cloud::central_stock_after(c, &t.site_id, cursor, STOCK_BATCH).await?;
        for r in &rows {
            let change = Change::Stock {
                key: r.key(),
                item: r.item.clone(),
                out: r.out,
            };
            let what = if r.out { "86'd" } else { "back on" };
            match t.commands.head_office(change).await? {
                Outcome::Applied { version } => {
                    tracing::info!(item = %r.item, id = r.id, version, "head office: {} {what}", r.item)
                }
                Outcome::Refused { reason } => {
                    tracing::warn!(item = %r.item, id = r.id, reason = %reason, "head office's {what} of {} refused: {reason}", r.item)
                }
                Outcome::Unchanged | Outcome::Seen { .. } => {}
                Outcome::NotStored { error } => {
                    tracing::warn!(id = r.id, error = %error, "head office's 86 could not be stored; tried again");
                    return Ok(());
                }
            }
            cursor = r.id;
            taken.stock = Some(cursor);
        }
        if (rows.len() as i64) < STOCK_BATCH {
            return Ok(());
        }
    }
}
