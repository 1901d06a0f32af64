//! `docket-sim demo ...`: the small jobs of scripts/demo.sh that a shell does badly (a TOML
//! config's ports, free ports, JSON lines): it keeps the demo's ports while they are free, reads
//! which devices the store has, and prints the demo devices' credentials and page links. Reads
//! files and stdin and prints to stdout; must not write the demo's files (the script owns them).

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use docket_tests::device::CredsLine;

#[derive(Subcommand, Debug)]
pub enum Demo {
    /// Prints the MQTT, MQTT 5, HTTP, HTTPS and MQTT/TLS ports for the demo's config: those of
    /// `--config` while they are free, else free ones (never 1883: another broker's port).
    Ports {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Reads `docketd device list` (JSON lines) on stdin; prints "id active|revoked" per device.
    DeviceStates,
    /// Reads `/healthz` (JSON) on stdin; prints the site CA's SHA-256 fingerprint.
    CaFingerprint,
    /// Prints each device of a credentials file: id, role (stations), secret.
    Devices {
        #[arg(long, value_name = "FILE")]
        creds: PathBuf,
    },
    /// Prints the MQTT password (login key) of device `--id` in a credentials file; nothing if
    /// it is not there.
    LoginKey {
        #[arg(long, value_name = "FILE")]
        creds: PathBuf,
        #[arg(long)]
        id: String,
    },
    /// Prints each device's page, with its credentials in the link's fragment, under `--base`.
    Links {
        #[arg(long, value_name = "URL")]
        base: String,
        #[arg(long, value_name = "FILE")]
        creds: PathBuf,
    },
}

/// The demo config's listeners, in the order `ports` prints them: (section, key).
const LISTENERS: [(&str, &str); 5] = [
    ("mqtt", "listen"),
    ("mqtt", "listen_v5"),
    ("http", "listen"),
    ("tls", "https_listen"),
    ("tls", "mqtt_listen"),
];

pub fn run(job: Demo) -> anyhow::Result<()> {
    match job {
        Demo::Ports { config } => {
            let ports = ports(&old_ports(&config))?;
            let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
            println!("{}", ports.join(" "));
        }
        Demo::DeviceStates => {
            for d in json_lines(&stdin()?)? {
                let id = d["id"].as_str().context("a device without an id")?;
                let revoked = truthy(&d["revoked_at"]);
                println!("{id} {}", if revoked { "revoked" } else { "active" });
            }
        }
        Demo::CaFingerprint => {
            let health: serde_json::Value = serde_json::from_str(&stdin()?)?;
            let fp = health["tls"]["ca_sha256"].as_str();
            println!("{}", fp.context("no tls.ca_sha256 in /healthz")?);
        }
        Demo::Devices { creds } => {
            for d in creds_lines(&creds)? {
                let mut role = d.role.clone();
                if !d.stations.is_empty() {
                    role = format!("{role}({})", d.stations.join(","));
                }
                println!("   {:<10} {:<16} {}", d.id, role, d.secret);
            }
        }
        Demo::LoginKey { creds, id } => {
            if let Some(d) = creds_lines(&creds)?.into_iter().find(|d| d.id == id) {
                println!("{}", d.creds().login());
            }
        }
        Demo::Links { base, creds } => {
            for d in creds_lines(&creds)? {
                let page = match d.role.as_str() {
                    "tablet" => "/tablet".to_owned(),
                    "expo" => "/expo".to_owned(),
                    "manager" => "/admin".to_owned(),
                    "station" => {
                        format!("/kds?station={}", d.stations.first().context("no station")?)
                    }
                    _ => continue,
                };
                let (id, secret) = (&d.id, &d.secret);
                println!("   {page:<20} {base}{page}#device={id}&secret={secret}");
            }
        }
    }
    Ok(())
}

/// The ports the config at `path` listens on, 0 where it has none (or there is no config).
fn old_ports(path: &Path) -> Vec<u16> {
    let config: Option<toml::Table> = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.parse().ok());
    LISTENERS
        .iter()
        .map(|(section, key)| {
            let addr = config
                .as_ref()
                .and_then(|c| c.get(*section)?.get(*key)?.as_str().map(str::to_owned));
            addr.and_then(|a| a.rsplit(':').next()?.parse().ok())
                .unwrap_or(0)
        })
        .collect()
}

/// Each wanted port if it is free (bound as docketd binds: SO_REUSEADDR, so the last run's
/// TIME_WAIT sockets don't count), else a free one; never 1883, never one port twice (all are
/// held until every one is chosen).
fn ports(wanted: &[u16]) -> anyhow::Result<Vec<u16>> {
    let mut held = Vec::new();
    let mut out = Vec::new();
    for &want in wanted {
        let kept = (want != 0 && want != 1883)
            .then(|| TcpListener::bind(("0.0.0.0", want)).ok())
            .flatten();
        let l = match kept {
            Some(l) => l,
            None => loop {
                let l = TcpListener::bind(("0.0.0.0", 0)).context("no free port")?;
                if l.local_addr()?.port() != 1883 {
                    break l;
                }
                held.push(l);
            },
        };
        out.push(l.local_addr()?.port());
        held.push(l);
    }
    Ok(out)
}

/// Truthy as JSON lines are read by people: not null, false, 0 or "".
fn truthy(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null | serde_json::Value::Bool(false) => false,
        serde_json::Value::String(s) => !s.is_empty(),
        serde_json::Value::Number(n) => n.as_f64() != Some(0.0),
        _ => true,
    }
}

fn stdin() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text)?;
    Ok(text)
}

/// Every non-blank line of `text` as JSON.
fn json_lines(text: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).with_context(|| format!("not JSON: {l}")))
        .collect()
}

/// Every device line of a credentials file as the demo wrote it (not checked further).
fn creds_lines(path: &Path) -> anyhow::Result<Vec<CredsLine>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    json_lines(&text)?
        .into_iter()
        .map(|v| Ok(serde_json::from_value(v)?))
        .collect()
}
