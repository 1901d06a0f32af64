//! Counters and gauges every part updates, rendered as Prometheus text on `GET /metrics` (with
//! the box's [`Status`] as gauges: ready, storage, the uplink's state).
//!
//! Only counts and renders: nothing reads a metric back to decide anything (what the box is
//! doing is [`crate::status`]). Lock-free on the hot path (atomics); the rare labelled counters
//! (foreign writes by topic) sit behind a lock that is never held across an `.await`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use docket_core::Code;

use crate::status::{Status, TargetStatus};

/// Milliseconds since the process started (monotonic): the clock heartbeats are stamped with.
pub fn uptime_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}

/// Commit latency histogram bucket bounds, seconds.
const BUCKETS: [f64; 11] = [
    0.0002, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.25, 1.0,
];

/// A counter per index (per reject code): `Default` for any length.
struct Counters<const N: usize>([AtomicU64; N]);

impl<const N: usize> Default for Counters<N> {
    fn default() -> Self {
        Counters(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl<const N: usize> std::ops::Index<usize> for Counters<N> {
    type Output = AtomicU64;
    fn index(&self, i: usize) -> &AtomicU64 {
        &self.0[i]
    }
}

#[derive(Default)]
pub struct Metrics {
    pub commands_ok: AtomicU64,
    pub commands_rejected: AtomicU64,
    pub commands_duplicate: AtomicU64,
    pub replays: AtomicU64,
    rejects: Counters<{ Code::ALL.len() }>,
    commit_buckets: [AtomicU64; BUCKETS.len()],
    commit_count: AtomicU64,
    commit_sum_us: AtomicU64,
    pub commit_commands: AtomicU64,
    pub commit_failures: AtomicU64,
    pub events: AtomicU64,
    pub seq: AtomicU64,
    pub open_orders: AtomicU64,
    pub online_devices: AtomicU64,
    /// Open MQTT connections (TCP and WebSocket).
    pub mqtt_connections: AtomicU64,
    pub paired_devices: AtomicU64,
    pub auth_failures: AtomicU64,
    /// MQTT connections cut for a packet outside the device topic ACL.
    pub acl_cuts: AtomicU64,
    pub kicks: AtomicU64,
    /// HTTP connections closed at once: the box or their address was at its limit.
    pub http_refused: AtomicU64,
    pub board_publishes: AtomicU64,
    /// Microseconds the engine spent computing, encoding and handing over board snapshots.
    pub board_micros: AtomicU64,
    /// Microseconds the engine spent on command batches (checks, decisions, commit, publishing).
    pub command_micros: AtomicU64,
    foreign_writes: Mutex<BTreeMap<String, u64>>,
    pub uplink: UplinkCounters,
}

/// One uplink target's relay counts (its state is [`crate::status::TargetStatus`]).
#[derive(Default)]
pub struct TargetCounters {
    pub relayed: AtomicU64,
    pub failures: AtomicU64,
}

#[derive(Default)]
pub struct UplinkCounters {
    pub postgres: TargetCounters,
    pub redis: TargetCounters,
    /// Head office's downlink of orders (`uplink::inbound`).
    pub inbound: InboundCounters,
}

/// Head office's inbound orders: written by `uplink::inbound` only.
#[derive(Default)]
pub struct InboundCounters {
    /// The downlink runs (rendered only then).
    pub configured: std::sync::atomic::AtomicBool,
    /// 1 while head office answers and the box takes its orders.
    pub up: std::sync::atomic::AtomicBool,
    pub placed: AtomicU64,
    pub refused: AtomicU64,
    pub failures: AtomicU64,
}

/// Distinct topics `docket_foreign_writes_total` has a label for; the rest are `other`.
pub const FOREIGN_TOPICS: usize = 32;
/// The label of foreign writes past [`FOREIGN_TOPICS`] topics (the box's state topics never
/// look like this).
const FOREIGN_OTHER: &str = "<other>";

/// A Prometheus label value as the text format wants it: backslash, double quote and line feed
/// escaped, so that a client-chosen string cannot end the label or the line.
fn label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

impl Metrics {
    pub fn reject(&self, code: Code) {
        self.rejects[code.index()].fetch_add(1, Relaxed);
    }

    pub fn rejects(&self, code: Code) -> u64 {
        self.rejects[code.index()].load(Relaxed)
    }

    pub fn commit(&self, took: Duration, commands: usize) {
        let s = took.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                self.commit_buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.commit_count.fetch_add(1, Relaxed);
        self.commit_sum_us
            .fetch_add(took.as_micros() as u64, Relaxed);
        self.commit_commands.fetch_add(commands as u64, Relaxed);
    }

    /// Counts a foreign write to `topic`. The topic is the writer's choice (a made-up board), so
    /// the labels are bounded: past [`FOREIGN_TOPICS`] distinct topics, the rest count as
    /// `other`.
    pub fn foreign_write(&self, topic: &str) {
        let mut map = self
            .foreign_writes
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let key = if map.contains_key(topic) || map.len() < FOREIGN_TOPICS {
            topic
        } else {
            FOREIGN_OTHER
        };
        *map.entry(key.to_owned()).or_default() += 1;
    }

    pub fn auth_failure(&self) {
        self.auth_failures.fetch_add(1, Relaxed);
    }

    pub fn set_devices(&self, n: usize) {
        self.paired_devices.store(n as u64, Relaxed);
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self, status: &Status) -> String {
        let mut o = String::with_capacity(4096);
        let _ = writeln!(o, "# HELP docket_commands_total Commands handled, by result.\n# TYPE docket_commands_total counter");
        for (result, v) in [
            ("ok", &self.commands_ok),
            ("rejected", &self.commands_rejected),
            ("duplicate", &self.commands_duplicate),
            ("replay", &self.replays),
        ] {
            let _ = writeln!(
                o,
                "docket_commands_total{{result=\"{result}\"}} {}",
                v.load(Relaxed)
            );
        }
        let _ = writeln!(o, "# HELP docket_rejects_total Refused commands and payloads, by error code.\n# TYPE docket_rejects_total counter");
        for (i, c) in Code::ALL.iter().enumerate() {
            let _ = writeln!(
                o,
                "docket_rejects_total{{code=\"{}\"}} {}",
                c.as_str(),
                self.rejects[i].load(Relaxed)
            );
        }
        let _ = writeln!(o, "# HELP docket_commit_seconds Time of one group commit (SQLite transaction incl. fsync).\n# TYPE docket_commit_seconds histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                o,
                "docket_commit_seconds_bucket{{le=\"{b}\"}} {}",
                self.commit_buckets[i].load(Relaxed)
            );
        }
        let count = self.commit_count.load(Relaxed);
        let _ = writeln!(o, "docket_commit_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            o,
            "docket_commit_seconds_sum {}",
            self.commit_sum_us.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(o, "docket_commit_seconds_count {count}");
        self.render_counters(&mut o);
        self.render_gauges(&mut o, status);
        self.render_uplink(&mut o, status);
        o
    }

    /// Plain counters, and the labelled foreign writes.
    fn render_counters(&self, o: &mut String) {
        let counter = |o: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        counter(
            o,
            "docket_committed_commands_total",
            "Commands written by group commits.",
            self.commit_commands.load(Relaxed),
        );
        counter(
            o,
            "docket_commit_failures_total",
            "Group commits that failed and were rolled back.",
            self.commit_failures.load(Relaxed),
        );
        counter(
            o,
            "docket_events_total",
            "Events committed since start.",
            self.events.load(Relaxed),
        );
        counter(
            o,
            "docket_auth_failures_total",
            "MQTT logins refused.",
            self.auth_failures.load(Relaxed),
        );
        counter(
            o,
            "docket_acl_cuts_total",
            "MQTT connections cut for a publish or subscribe outside the device's topics.",
            self.acl_cuts.load(Relaxed),
        );
        counter(
            o,
            "docket_kicks_total",
            "Connections of revoked devices cut off.",
            self.kicks.load(Relaxed),
        );
        counter(
            o,
            "docket_http_refused_total",
            "HTTP connections closed at once because the box or their address was at its limit.",
            self.http_refused.load(Relaxed),
        );
        counter(
            o,
            "docket_board_publishes_total",
            "Retained board snapshots published.",
            self.board_publishes.load(Relaxed),
        );
        for (name, help, micros) in [
            ("docket_board_seconds_total", "Time the engine spent computing, encoding and publishing board snapshots.", &self.board_micros),
            ("docket_command_seconds_total", "Time the engine spent on command batches: checks, decisions, the commit, publishing replies and events (and boards due right after).", &self.command_micros),
        ] {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", micros.load(Relaxed) as f64 / 1e6);
        }
        let _ = writeln!(o, "# HELP docket_foreign_writes_total Writes by others to the box's own state topics, restored.\n# TYPE docket_foreign_writes_total counter");
        for (topic, n) in self
            .foreign_writes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let topic = label_value(topic);
            let _ = writeln!(o, "docket_foreign_writes_total{{topic=\"{topic}\"}} {n}");
        }
    }

    fn render_gauges(&self, o: &mut String, status: &Status) {
        let gauge = |o: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        gauge(
            o,
            "docket_seq",
            "Last committed event seq.",
            self.seq.load(Relaxed),
        );
        gauge(
            o,
            "docket_open_orders",
            "Orders not completed.",
            self.open_orders.load(Relaxed),
        );
        gauge(
            o,
            "docket_mqtt_connections",
            "Open MQTT connections (tablets, screens).",
            self.mqtt_connections.load(Relaxed),
        );
        gauge(
            o,
            "docket_connected_clients",
            "Devices whose presence is online.",
            self.online_devices.load(Relaxed),
        );
        gauge(
            o,
            "docket_paired_devices",
            "Paired, unrevoked devices.",
            self.paired_devices.load(Relaxed),
        );
        gauge(
            o,
            "docket_ready",
            "1 once retained state is republished and listeners are up.",
            status.ready.load(Relaxed) as u64,
        );
        gauge(
            o,
            "docket_started_unix_ms",
            "Wall-clock start time (informational).",
            status.started_unix_ms.load(Relaxed),
        );
        gauge(
            o,
            "docket_storage_full",
            "1 while commits fail because the disk is full (commands get storage_full).",
            status.storage_full.load(Relaxed) as u64,
        );
    }

    /// One family per uplink measure, a sample per configured target.
    fn render_uplink(&self, o: &mut String, status: &Status) {
        let seq = self.seq.load(Relaxed);
        let family = |o: &mut String,
                      name: &str,
                      kind: &str,
                      help: &str,
                      f: &dyn Fn(&TargetStatus, &TargetCounters) -> u64| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
            let targets = [
                ("postgres", &status.uplink.postgres, &self.uplink.postgres),
                ("redis", &status.uplink.redis, &self.uplink.redis),
            ];
            for (target, t, c) in targets {
                if t.configured.load(Relaxed) {
                    let _ = writeln!(o, "{name}{{target=\"{target}\"}} {}", f(t, c));
                }
            }
        };
        family(
            o,
            "docket_uplink_up",
            "gauge",
            "1 while the relay to this uplink target works.",
            &|t, _| t.up.load(Relaxed) as u64,
        );
        family(
            o,
            "docket_uplink_cursor",
            "gauge",
            "Every event up to this seq is relayed to the target.",
            &|t, _| t.cursor.load(Relaxed),
        );
        family(
            o,
            "docket_uplink_lag_events",
            "gauge",
            "Events committed here and not yet relayed to the target.",
            &|t, _| seq.saturating_sub(t.cursor.load(Relaxed)),
        );
        family(
            o,
            "docket_uplink_lag_seconds",
            "gauge",
            "Age of the oldest event not yet relayed to the target.",
            &|t, _| t.lag_seconds.load(Relaxed),
        );
        family(
            o,
            "docket_uplink_events_total",
            "counter",
            "Events relayed to the target since start.",
            &|_, c| c.relayed.load(Relaxed),
        );
        family(
            o,
            "docket_uplink_failures_total",
            "counter",
            "Failed relay attempts (connection or write).",
            &|_, c| c.failures.load(Relaxed),
        );
        let i = &self.uplink.inbound;
        if i.configured.load(Relaxed) {
            let _ = writeln!(
                o,
                "# HELP docket_inbound_up 1 while head office's inbound orders are taken.\n\
                 # TYPE docket_inbound_up gauge\ndocket_inbound_up {}\n\
                 # HELP docket_inbound_orders_total Head office's inbound orders by what became of them.\n\
                 # TYPE docket_inbound_orders_total counter\n\
                 docket_inbound_orders_total{{result=\"placed\"}} {}\n\
                 docket_inbound_orders_total{{result=\"refused\"}} {}\n\
                 # HELP docket_inbound_failures_total Failed attempts to take head office's inbound orders.\n\
                 # TYPE docket_inbound_failures_total counter\ndocket_inbound_failures_total {}",
                i.up.load(Relaxed) as u64,
                i.placed.load(Relaxed),
                i.refused.load(Relaxed),
                i.failures.load(Relaxed),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::default();
        m.reject(Code::BadMac);
        m.reject(Code::BadMac);
        m.commit(Duration::from_micros(300), 3);
        m.foreign_write("docket/v1/menu");
        let text = m.render(&Status::default());
        assert!(text.contains("docket_rejects_total{code=\"bad_mac\"} 2"));
        assert!(text.contains("docket_commit_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(text.contains("docket_commit_seconds_bucket{le=\"0.0002\"} 0"));
        assert!(text.contains("docket_commit_seconds_count 1"));
        assert!(text.contains("docket_foreign_writes_total{topic=\"docket/v1/menu\"} 1"));
        assert_eq!(m.rejects(Code::BadMac), 2);
    }

    #[test]
    fn foreign_write_labels_are_escaped_and_bounded() {
        let m = Metrics::default();
        m.foreign_write("docket/v1/board/a\"} 1\ndocket_up{x=\"\\");
        for i in 0..100 {
            m.foreign_write(&format!("docket/v1/board/s{i}"));
        }
        let text = m.render(&Status::default());
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("docket_foreign_writes_total{"))
            .collect();
        assert_eq!(lines.len(), FOREIGN_TOPICS + 1, "{lines:#?}");
        assert!(lines.contains(
            &"docket_foreign_writes_total{topic=\"docket/v1/board/a\\\"} 1\\ndocket_up{x=\\\"\\\\\"} 1"
        ));
        assert!(lines.contains(&"docket_foreign_writes_total{topic=\"<other>\"} 69"));
        assert!(
            !text.lines().any(|l| l.starts_with("docket_up")),
            "a label ended a line"
        );
    }
}
