//! `[engine]` of the configuration: how the engine batches commands and boards, the replay
//! page, what a site may hold and the per-device rate limit, validated into [`EngineKeys`].

use serde::Deserialize;

use super::{Bounded, ConfigError, BOARD_OVERHEAD};

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawEngine {
    pub max_batch: Option<usize>,
    pub board_interval_ms: Option<u64>,
    pub replay_page: Option<usize>,
    pub max_open_orders: Option<usize>,
    pub max_order_bytes: Option<usize>,
    pub max_open_bytes: Option<usize>,
    pub replay_page_bytes: Option<usize>,
    pub commands_per_second: Option<usize>,
    pub command_burst: Option<usize>,
}

/// The validated `[engine]` keys.
#[derive(Debug, Clone)]
pub struct EngineKeys {
    pub max_batch: usize,
    pub board_interval_ms: u64,
    pub replay_page: usize,
    /// `place_order` is refused while this many orders are open.
    pub max_open_orders: usize,
    /// An order's encoding at most (`too_large`).
    pub max_order_bytes: usize,
    /// The open orders' encodings together at most: a board carries at most all of them, so
    /// this stays under `max_payload_bytes` (checked).
    pub max_open_bytes: usize,
    /// Most event bytes in one replay page.
    pub replay_page_bytes: usize,
    /// Per-device command rate limit (0 = none) and burst.
    pub commands_per_second: u32,
    pub command_burst: u32,
}

/// Validates `[engine]`. The byte bounds follow the MQTT packet limit `max_payload`: a board
/// carries at most every open order, and a replay page stays well under one packet.
pub(super) fn engine(
    e: &RawEngine,
    max_payload: usize,
    bounded: Bounded,
) -> Result<EngineKeys, ConfigError> {
    let open_hi = max_payload.saturating_sub(BOARD_OVERHEAD).max(64 * 1024);
    let replay_hi = (max_payload / 2).max(16 * 1024);
    Ok(EngineKeys {
        max_batch: bounded("engine.max_batch", e.max_batch, 256, 1, 10_000)?,
        board_interval_ms: bounded(
            "engine.board_interval_ms",
            e.board_interval_ms.map(|v| v as usize),
            200,
            0,
            10_000,
        )? as u64,
        replay_page: bounded("engine.replay_page", e.replay_page, 100, 1, 1000)?,
        max_open_orders: bounded(
            "engine.max_open_orders",
            e.max_open_orders,
            docket_core::decide::limits::DEFAULT_MAX_OPEN_ORDERS,
            1,
            100_000,
        )?,
        max_order_bytes: bounded(
            "engine.max_order_bytes",
            e.max_order_bytes,
            docket_core::decide::limits::MAX_ORDER_BYTES,
            4 * 1024,
            256 * 1024,
        )?,
        max_open_bytes: bounded(
            "engine.max_open_bytes",
            e.max_open_bytes,
            docket_core::open_bytes::MAX_OPEN_BYTES.min(open_hi),
            64 * 1024,
            open_hi,
        )?,
        replay_page_bytes: bounded(
            "engine.replay_page_bytes",
            e.replay_page_bytes,
            (256 * 1024).min(replay_hi),
            16 * 1024,
            replay_hi,
        )?,
        commands_per_second: bounded(
            "engine.commands_per_second",
            e.commands_per_second,
            50,
            0,
            1_000_000,
        )? as u32,
        command_burst: bounded("engine.command_burst", e.command_burst, 200, 1, 1_000_000)? as u32,
    })
}
