//! `/healthz`: what docketd says about itself, as one typed shape. The box serializes it, and
//! `docket doctor` and monitoring read it back, so the CLI cannot drift from the box. Fields a
//! box of an older firmware may lack are optional when read (and left out when absent, so the
//! JSON a box writes keeps its shape).
//!
//! Plain data: the daemon fills it in (metrics, the clock, the listeners' probes, the served
//! certificate); nothing here reads a clock, a file or a socket.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The body of `/healthz`, field for field in the order the box writes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: Status,
    pub site_id: String,
    pub version: String,
    pub seq: u64,
    pub open_orders: u64,
    /// The box's clock (Unix ms; what events' `at` is stamped with): screens age tickets by it.
    pub now_ms: u64,
    /// The site bundle: `none`, `applied` (with its serial) or `refused` (with the reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<SiteStatus>,
    /// The data partition: free and total bytes (absent when it cannot be read), and whether
    /// the last commit failed for lack of space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<Disk>,
    /// Each MQTT listener by name: did docketd's own probe log in through it lately?
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listeners: Option<BTreeMap<String, ListenerState>>,
    /// The served certificate: where its CA came from, the CA's fingerprint, and when the
    /// certificate expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsState>,
    /// What a technician should know: what the site turned on (plain MQTT, plain HTTP), a menu
    /// from head office the box refused.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Each station with a kitchen printer: is it printing, why, and can its printer print.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub printing: Option<Vec<StationPrinting>>,
}

/// One station's kitchen printer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StationPrinting {
    pub station: String,
    /// The printer's `host:port`.
    pub address: String,
    /// `fallback`, `always` or `off`.
    pub mode: String,
    /// Its tickets go to paper now.
    pub printing: bool,
    /// Why, in words (`screen live`, `no screen live: printing`, `always prints`, …).
    pub why: String,
    /// One of the station's screens is live.
    pub screens_live: bool,
    /// The printer's real-time status in words: `ok`, `paper out`, `paper near end`,
    /// `cover open`, `offline`, `printer error`, `unreachable`, `unknown` (not asked yet).
    pub printer: String,
    pub can_print: bool,
    /// Tickets due on paper, not printed yet.
    pub waiting: u64,
    /// Tickets printed since start.
    pub printed: u64,
    /// Nothing shows this station's tickets: no live screen and a printer that can't print.
    pub alarm: bool,
    /// Why the printer's last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Is the box serving? Only `ok` answers 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not ready yet: retained state not republished, or no login through every listener yet.
    Starting,
    Ok,
    /// Ready once, but a listener no longer takes logins (`listeners` says which).
    ListenerDown,
}

/// What became of the site bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteStatus {
    /// `none` (no bundle: the config file rules), `applied`, or `refused`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A pushed bundle is waiting for the next start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_serial: Option<u64>,
}

/// The data partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disk {
    pub free_bytes: u64,
    pub total_bytes: u64,
    /// The last commit failed for lack of space: new orders are refused.
    pub storage_full: bool,
}

/// One listener as its probe found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerState {
    pub ok: bool,
    /// Milliseconds since the last login through it got its CONNACK (absent: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_login_ms_ago: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The certificate the box serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsState {
    /// Where the site CA came from: `bundle`, `file`, `box` (made by the box) or `none` (the
    /// site serves a certificate of its own).
    pub ca: String,
    /// The site CA's SHA-256 fingerprint as devices show it (`AB:CD:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_sha256: Option<String>,
    /// When the served certificate expires (Unix seconds).
    pub not_after: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_parts_are_left_out_and_read_back() {
        let h = Health {
            status: Status::ListenerDown,
            site_id: "cafe-1".into(),
            version: "0.1.0".into(),
            seq: 7,
            open_orders: 2,
            now_ms: 1_700_000_000_000,
            site: Some(SiteStatus {
                state: "applied".into(),
                serial: Some(3),
                reason: None,
                pending_serial: None,
            }),
            disk: None,
            listeners: Some(BTreeMap::from([(
                "mqtts".to_owned(),
                ListenerState {
                    ok: false,
                    last_login_ms_ago: None,
                    error: Some("no CONNACK in time".into()),
                },
            )])),
            tls: None,
            warnings: vec![],
            printing: None,
        };
        let text = serde_json::to_string(&h).unwrap();
        assert_eq!(
            text,
            r#"{"status":"listener_down","site_id":"cafe-1","version":"0.1.0","seq":7,"open_orders":2,"now_ms":1700000000000,"site":{"state":"applied","serial":3},"listeners":{"mqtts":{"ok":false,"error":"no CONNACK in time"}},"warnings":[]}"#
        );
        assert_eq!(serde_json::from_str::<Health>(&text).unwrap(), h);
    }

    #[test]
    fn an_older_box_without_the_later_parts_still_reads() {
        let h: Health = serde_json::from_str(
            r#"{"status":"ok","site_id":"s","version":"0.0.9","seq":0,"open_orders":0,"now_ms":1}"#,
        )
        .unwrap();
        assert_eq!(h.status, Status::Ok);
        assert!(h.site.is_none() && h.disk.is_none() && h.warnings.is_empty());
    }
}
