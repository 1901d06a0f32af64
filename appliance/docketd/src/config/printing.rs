//! `[printing]` and its `[[printing.printer]]` entries: which station prints on which kitchen
//! printer, when (`fallback`, `always`, `off`), on what paper, and the site's clock offset for
//! the printed time; validated into [`Printing`].

use std::collections::BTreeSet;

use docket_core::print::Paper;
use serde::Deserialize;

use super::{Bounded, ConfigError};

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawPrinting {
    pub fallback_after_secs: Option<usize>,
    pub utc_offset_minutes: Option<i32>,
    #[serde(default)]
    pub printer: Vec<RawPrinter>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrinter {
    pub station: String,
    pub address: String,
    pub mode: Option<String>,
    pub paper_mm: Option<u32>,
}

/// When a station's tickets go to paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only while none of the station's screens has been live for `fallback_after`.
    Fallback,
    /// Every ticket, screens or not.
    Always,
    /// Never (the printer is configured but turned off).
    Off,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Fallback => "fallback",
            Mode::Always => "always",
            Mode::Off => "off",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "fallback" => Some(Mode::Fallback),
            "always" => Some(Mode::Always),
            "off" => Some(Mode::Off),
            _ => None,
        }
    }
}

/// One station's printer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationPrinter {
    pub station: String,
    /// `host:port` of an ESC/POS printer on the LAN (raw TCP, usually port 9100).
    pub address: String,
    pub mode: Mode,
    pub paper: Paper,
}

/// The validated `[printing]`.
#[derive(Debug, Clone)]
pub struct Printing {
    /// A fallback station prints once none of its screens has been live for this long.
    pub fallback_after: std::time::Duration,
    pub utc_offset_minutes: i32,
    pub printers: Vec<StationPrinter>,
}

impl Default for Printing {
    fn default() -> Self {
        Printing {
            fallback_after: std::time::Duration::from_secs(10),
            utc_offset_minutes: 0,
            printers: vec![],
        }
    }
}

pub(super) fn printing(p: RawPrinting, bounded: Bounded) -> Result<Printing, ConfigError> {
    let secs = bounded(
        "printing.fallback_after_secs",
        p.fallback_after_secs,
        10,
        1,
        3600,
    )?;
    let offset = p.utc_offset_minutes.unwrap_or(0);
    if !(-14 * 60..=14 * 60).contains(&offset) {
        return Err(ConfigError::Invalid(format!(
            "printing.utc_offset_minutes = {offset}: must be between -840 and 840"
        )));
    }
    let mut seen = BTreeSet::new();
    let mut printers = Vec::with_capacity(p.printer.len());
    for r in p.printer {
        let bad = |why: String| ConfigError::Invalid(format!("[[printing.printer]] {why}"));
        if !docket_core::menu::valid_name(&r.station) {
            return Err(bad(format!(
                "station {:?} is not a station name",
                r.station
            )));
        }
        if !seen.insert(r.station.clone()) {
            return Err(bad(format!(
                "station {:?} has two printers: give each station one",
                r.station
            )));
        }
        check_address(&r.address).map_err(|why| bad(format!("{}: address {why}", r.station)))?;
        let mode = match r.mode.as_deref() {
            None => Mode::Fallback,
            Some(m) => Mode::parse(m).ok_or_else(|| {
                bad(format!(
                    "{}: mode {m:?} is not fallback, always or off",
                    r.station
                ))
            })?,
        };
        let paper = Paper::from_mm(r.paper_mm.unwrap_or(80))
            .ok_or_else(|| bad(format!("{}: paper_mm must be 58 or 80", r.station)))?;
        printers.push(StationPrinter {
            station: r.station,
            address: r.address,
            mode,
            paper,
        });
    }
    Ok(Printing {
        fallback_after: std::time::Duration::from_secs(secs as u64),
        utc_offset_minutes: offset,
        printers,
    })
}

/// `host:port`, with a port: a name is resolved when the printer task connects.
pub fn check_address(a: &str) -> Result<(), String> {
    let (host, port) = a
        .rsplit_once(':')
        .ok_or_else(|| format!("{a:?} has no port (e.g. 192.168.1.50:9100)"))?;
    if host.is_empty() || host.len() > 253 || host.chars().any(|c| c.is_whitespace()) {
        return Err(format!("{a:?} has no valid host"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!("{a:?} has no valid port")),
    }
}
