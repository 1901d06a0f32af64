//! `GET /api/admin/speed?from=MS&to=MS&late_min=N`: speed of service for `/admin` (ticket times
//! per station, orders and tickets per quarter hour, late tickets), read from the event log by
//! `store::speed`. The page asks for "today" from its own midnight: the box may not know the
//! restaurant's time zone, the browser does.

use axum::extract::{RawQuery, State};
use axum::Json;
use serde_json::{json, Value};

use super::{with_db, ApiState, AppError, Manager};
use crate::store::pairing::now_ms;
use crate::store::speed;

/// The longest window one report covers.
pub const MAX_WINDOW_MS: u64 = 7 * 24 * 60 * 60 * 1000;
/// A ticket is late after this many minutes unless the page says otherwise (the KDS's default).
pub const DEFAULT_LATE_MIN: u64 = 8;

/// The report's window and late threshold, from the query string.
#[derive(Debug, PartialEq, Eq)]
pub struct Window {
    pub from: u64,
    pub to: u64,
    pub late_ms: u64,
}

pub fn window(query: Option<&str>, now: u64) -> Result<Window, AppError> {
    let (mut from, mut to, mut late_min) = (None, None, DEFAULT_LATE_MIN);
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let number = || {
            value.parse::<u64>().map_err(|_| {
                AppError::BadQuery(format!("{key} must be a whole number, not {value:?}"))
            })
        };
        match key {
            "from" => from = Some(number()?),
            "to" => to = Some(number()?),
            "late_min" => late_min = number()?,
            _ => {
                return Err(AppError::BadQuery(format!(
                    "unknown parameter {key:?} (from, to, late_min)"
                )))
            }
        }
    }
    let to = to.unwrap_or(now);
    let from = from.unwrap_or(to.saturating_sub(24 * 60 * 60 * 1000));
    if from >= to {
        return Err(AppError::BadQuery("from must be before to".into()));
    }
    if to - from > MAX_WINDOW_MS {
        return Err(AppError::BadQuery("the window is at most 7 days".into()));
    }
    if !(1..=240).contains(&late_min) {
        return Err(AppError::BadQuery("late_min must be 1 to 240".into()));
    }
    Ok(Window {
        from,
        to,
        late_ms: late_min * 60_000,
    })
}

pub async fn admin_speed(
    _m: Manager,
    State(s): State<ApiState>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, AppError> {
    let w = window(query.as_deref(), now_ms())?;
    let (report, truncated) =
        with_db(&s, move |c| speed::report(c, w.from, w.to, w.late_ms)).await?;
    let mut body = serde_json::to_value(report).map_err(AppError::BadJson)?;
    body["truncated"] = json!(truncated);
    Ok(Json(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 10 * 24 * 60 * 60 * 1000;

    #[test]
    fn the_window_defaults_to_the_last_day_and_refuses_what_it_cannot_use() {
        let day = 24 * 60 * 60 * 1000;
        let w = window(None, NOW).unwrap();
        assert_eq!((w.from, w.to, w.late_ms), (NOW - day, NOW, 8 * 60_000));
        let w = window(Some("from=1000&to=5000&late_min=12"), NOW).unwrap();
        assert_eq!((w.from, w.to, w.late_ms), (1000, 5000, 12 * 60_000));
        for bad in [
            "from=x",
            "from=5000&to=1000",
            "from=0&to=864000000",
            "late_min=0",
            "late_min=999",
            "station=grill",
            "to=-1",
        ] {
            let e = window(Some(bad), NOW).unwrap_err();
            assert!(matches!(e, AppError::BadQuery(_)), "{bad}: {e:?}");
        }
    }
}
