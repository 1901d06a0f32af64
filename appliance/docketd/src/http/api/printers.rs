//! `/api/admin/printers`: the stations' kitchen printers for `/admin`. `GET` lists them with
//! each station's printing status and the menu's stations; `PUT /{station}` sets a station's
//! printer (address, mode, paper) and `DELETE /{station}` takes it away, both at once and kept
//! across restarts (`store::printers`; the config file is the seed).
//!
//! Must not talk to a printer: the printer tasks follow `Printing::set_printers`.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::Json;
use docket_core::print::Paper;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{parse, with_db, ApiState, AppError, Manager};
use crate::config::{check_address, Mode, StationPrinter};
use crate::store::pairing::now_ms;
use crate::store::{menu, print, printers};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrinterRequest {
    address: String,
    mode: String,
    #[serde(default)]
    paper_mm: Option<u32>,
}

/// The printers, each station's status and the menu's stations.
async fn listing(s: &ApiState) -> Result<Value, AppError> {
    let (stored, stations) = with_db(s, |c| {
        let stations = menu::latest(c)?
            .map(|m| m.stations().into_iter().collect::<Vec<_>>())
            .unwrap_or_default();
        Ok((printers::all(c)?, stations))
    })
    .await?;
    let setup = s.status.printing.setup();
    let list: Vec<Value> = stored
        .iter()
        .map(|p| {
            json!({
                "station": p.station,
                "address": p.address,
                "mode": p.mode.as_str(),
                "paper_mm": p.paper.mm(),
            })
        })
        .collect();
    Ok(json!({
        "fallback_after_secs": setup.fallback_after.as_secs(),
        "utc_offset_minutes": setup.utc_offset_minutes,
        "printers": list,
        "status": s.status.printing.report(),
        "stations": stations,
    }))
}

pub(super) async fn admin_printers(
    _m: Manager,
    State(s): State<ApiState>,
) -> Result<Json<Value>, AppError> {
    Ok(Json(listing(&s).await?))
}

/// The printers as stored, handed to the printer tasks.
async fn apply(s: &ApiState) -> Result<(), AppError> {
    let all = with_db(s, |c| printers::all(c)).await?;
    s.status.printing.set_printers(all);
    Ok(())
}

pub(super) async fn admin_put_printer(
    Manager(by): Manager,
    State(s): State<ApiState>,
    station: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, AppError> {
    let Path(station) = station.map_err(AppError::BadPath)?;
    let req: PrinterRequest = parse(&body?)?;
    let address = req.address.trim().to_owned();
    check_address(&address).map_err(|why| AppError::BadPrinter(format!("address {why}")))?;
    let mode = Mode::parse(&req.mode).ok_or_else(|| {
        AppError::BadPrinter(format!(
            "mode {:?} is not fallback, always or off",
            req.mode
        ))
    })?;
    let paper = Paper::from_mm(req.paper_mm.unwrap_or(80))
        .ok_or_else(|| AppError::BadPrinter("paper_mm must be 58 or 80".into()))?;
    let p = StationPrinter {
        station: station.clone(),
        address,
        mode,
        paper,
    };
    let (st, device) = (station.clone(), by.device.clone());
    with_db(&s, move |c| {
        let on_menu = menu::latest(c)?.is_some_and(|m| m.stations().contains(&st));
        if !on_menu {
            return Ok(false);
        }
        printers::put(c, &p, now_ms(), &device)?;
        Ok(true)
    })
    .await?
    .then_some(())
    .ok_or_else(|| AppError::UnknownStation(station.clone()))?;
    apply(&s).await?;
    tracing::info!(station = %station, address = %req.address, mode = mode.as_str(), by = %by.device, "kitchen printer set");
    Ok(Json(listing(&s).await?))
}

pub(super) async fn admin_delete_printer(
    Manager(by): Manager,
    State(s): State<ApiState>,
    station: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    let Path(station) = station.map_err(AppError::BadPath)?;
    let st = station.clone();
    let removed = with_db(&s, move |c| {
        let removed = printers::remove(c, &st)?;
        if removed {
            print::drop_station(c, &st)?;
        }
        Ok(removed)
    })
    .await?;
    if !removed {
        return Err(AppError::NoPrinter(station));
    }
    apply(&s).await?;
    tracing::info!(station = %station, by = %by.device, "kitchen printer removed; its waiting tickets dropped");
    Ok(Json(listing(&s).await?))
}
