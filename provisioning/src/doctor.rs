//! `docket doctor`: checks a running box over the LAN and says, in words, what is wrong and
//! what to do.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use serde::Serialize;

use crate::lan::{agent, b64, base_url};
use crate::sitedir::now_ms;

#[derive(Serialize)]
struct Check {
    name: &'static str,
    ok: bool,
    /// What was found, and when not ok, what to do.
    says: String,
}

pub fn doctor(
    host: &str,
    mqtt_port: u16,
    manager: Option<(String, String)>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let base = base_url(host);
    let mut checks = Vec::new();
    let t0 = now_ms();
    let health = agent().get(&format!("{base}/healthz")).call();
    let t1 = now_ms();
    let health: Option<serde_json::Value> = match health {
        Ok(r) => r.into_json().ok(),
        Err(ureq::Error::Status(503, r)) => {
            let v: serde_json::Value = r.into_json().unwrap_or_default();
            let says = if v["status"] == "listener_down" {
                let down: Vec<String> = v["listeners"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(_, l)| l["ok"] != true)
                    .map(|(name, l)| {
                        format!(
                            "{name} ({})",
                            l["error"].as_str().unwrap_or("no recent login")
                        )
                    })
                    .collect();
                format!("docketd runs but a listener no longer takes logins: {}; devices on it cannot connect. The service restarts itself within its watchdog period; if this stays, power-cycle the box", down.join(", "))
            } else {
                "docketd is running but not ready yet: wait a minute; if it stays so, power-cycle the box and run doctor again".into()
            };
            checks.push(Check {
                name: "health",
                ok: false,
                says,
            });
            None
        }
        Err(ureq::Error::Status(code, _)) => {
            checks.push(Check {
                name: "health",
                ok: false,
                says: format!(
                    "the box answered HTTP {code} on /healthz: is {host} really a Docket box?"
                ),
            });
            None
        }
        Err(e) => {
            checks.push(Check { name: "health", ok: false, says: format!("cannot reach the box at {base} ({e}): check it is powered, its network cable is in, and that this laptop is on the restaurant LAN") });
            None
        }
    };
    if let Some(h) = &health {
        let s = |k: &str| h.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_owned();
        checks.push(Check {
            name: "health",
            ok: s("status") == "ok",
            says: format!("docketd {} is up for site {}", s("version"), s("site_id")),
        });
        let (box_v, mine) = (s("version"), env!("CARGO_PKG_VERSION"));
        let older = version_parts(&box_v) < version_parts(mine);
        checks.push(Check {
            name: "version",
            ok: !older,
            says: if older {
                format!("the box runs docketd {box_v}, older than this CLI ({mine}): install the current update bundle (docs/updates.md), then run doctor again")
            } else {
                format!("docketd {box_v} (this CLI {mine})")
            },
        });
        if let Some(at) = h.get("now_ms").and_then(|v| v.as_u64()) {
            let mid = (t0 + t1) / 2;
            let skew = at as i64 - mid as i64;
            let ok = skew.unsigned_abs() < 5_000;
            checks.push(Check { name: "clock", ok, says: if ok { format!("box clock within {} ms of this laptop", skew.abs()) } else { format!("box clock is {} s off this laptop: give the box network access to NTP (pool.ntp.org) or check the laptop's clock", skew / 1000) } });
        }
        match h.get("site") {
            Some(site) => {
                let state = site.get("state").and_then(|v| v.as_str()).unwrap_or("?");
                let (ok, says) = match state {
                    "applied" => (true, format!("site bundle serial {} applied", site.get("serial").and_then(|v| v.as_u64()).unwrap_or(0))),
                    "none" => (false, "no site bundle on the box: install one with `docket site install` or `docket image configure`".to_owned()),
                    _ => (false, format!("the box REFUSED its site bundle: {}. Push one signed with this site's key: `docket site push --dir SITE {host}`", site.get("reason").and_then(|v| v.as_str()).unwrap_or("?"))),
                };
                checks.push(Check {
                    name: "site bundle",
                    ok,
                    says,
                });
            }
            None => checks.push(Check {
                name: "site bundle",
                ok: false,
                says: "this docketd does not report a site bundle: update the box's firmware"
                    .into(),
            }),
        }
        match h.get("disk") {
            Some(disk) => {
                let n = |k: &str| disk.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
                let (free, total) = (n("free_bytes"), n("total_bytes"));
                let full = disk
                    .get("storage_full")
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false);
                let mib = free / (1024 * 1024);
                let low = free < 16 * 1024 * 1024 || free < total / 20;
                let says = if full {
                    format!("the data partition is FULL ({mib} MiB free): the box is refusing new orders. Free space on /data (old logs, a stray file) or replace the SD card, then run doctor again")
                } else if low {
                    format!("the data partition is nearly full ({mib} MiB free of {} MiB): free space on /data before service", total / (1024 * 1024))
                } else {
                    format!("{mib} MiB free on the data partition")
                };
                checks.push(Check {
                    name: "disk",
                    ok: !full && !low,
                    says,
                });
            }
            None => checks.push(Check {
                name: "disk",
                ok: false,
                says: "this docketd does not report its disk: update the box's firmware".into(),
            }),
        }
        // The uplink, from /metrics (only targets the box has configured appear).
        if let Some(text) = agent()
            .get(&format!("{base}/metrics"))
            .call()
            .ok()
            .and_then(|r| r.into_string().ok())
        {
            for line in text.lines().filter(|l| l.starts_with("docket_uplink_up{")) {
                let target = line.split('"').nth(1).unwrap_or("?").to_owned();
                let up = line.trim_end().ends_with(" 1");
                let lag = text
                    .lines()
                    .find(|l| {
                        l.starts_with(&format!("docket_uplink_lag_seconds{{target=\"{target}\"}}"))
                    })
                    .and_then(|l| l.rsplit(' ').next())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                let ok = up && lag < 300;
                let says = if !up {
                    format!("uplink {target} is DOWN (oldest unsent event {lag} s old): orders still work here; check the head-office URL and password (`docket uplink set`, then `docket site push`) and that the box reaches the internet")
                } else if !ok {
                    format!("uplink {target} is up but {lag} s behind: check the box's internet bandwidth")
                } else {
                    format!("uplink {target} up, {lag} s behind")
                };
                checks.push(Check {
                    name: "uplink",
                    ok,
                    says,
                });
            }
        }
        // The broker: a TCP connection, and with a manager's credentials a real login.
        let mhost = host
            .trim_start_matches("http://")
            .rsplit_once(':')
            .map(|(h, _)| h.to_owned())
            .unwrap_or_else(|| host.trim_start_matches("http://").to_owned());
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&(mhost.as_str(), mqtt_port))
            .ok()
            .and_then(|mut a| a.next());
        let unreachable = format!("nothing accepts MQTT on {mhost}:{mqtt_port}: tablets cannot connect; check the box's firewall and docketd's [mqtt] listen address");
        let (ok, says) = match (addr, &manager) {
            (None, _) => (false, unreachable),
            (Some(a), None) => {
                if std::net::TcpStream::connect_timeout(&a, Duration::from_secs(3)).is_ok() {
                    (true, format!("MQTT broker accepts connections on port {mqtt_port} (pass --dir SITE to also try a login)"))
                } else {
                    (false, unreachable)
                }
            }
            (Some(a), Some((id, password))) => match mqtt_login(a, id, password) {
                Ok(Login::Unreachable) => (false, unreachable),
                Ok(Login::Answered(Some(0))) => (true, format!("MQTT login as {id} accepted on port {mqtt_port}")),
                Ok(Login::Answered(Some(4))) => (false, format!("the broker refused the login of manager {id}: the box does not know this manager or its secret (push a bundle from this site directory: `docket site push`)")),
                Ok(Login::Answered(Some(5))) => (false, format!("the broker refused the login of manager {id}: this manager was revoked on the box; use another manager's site directory, or approve a new manager on /admin")),
                Ok(Login::Answered(None)) => (false, format!("the broker closed the login of manager {id} without an answer: the box is out of connections or runs an old docketd; run doctor again in a minute")),
                Ok(Login::Answered(Some(rc))) => (false, format!("the broker answered the login with code {rc}: is port {mqtt_port} docketd's MQTT port?")),
                Err(e) => (false, format!("port {mqtt_port} accepts connections but does not speak MQTT ({e}): is it docketd's MQTT port?")),
            },
        };
        checks.push(Check {
            name: "broker",
            ok,
            says,
        });

        // Device presence, seen by the box (needs a manager).
        match &manager {
            Some((id, password)) => {
                let auth = format!("Basic {}", b64(&format!("{id}:{password}")));
                let devices = agent()
                    .get(&format!("{base}/api/admin/devices"))
                    .set("Authorization", &auth)
                    .call();
                let check = match devices {
                    Ok(r) => {
                        let v: serde_json::Value = r.into_json().unwrap_or_default();
                        let Some(list) = v["devices"].as_array() else {
                            bail!("the box's device list is not what this CLI understands ({v}): update the CLI or the box");
                        };
                        let active: Vec<&serde_json::Value> = list
                            .iter()
                            .filter(|d| d["revoked_at"].is_null() && d["role"] != "manager")
                            .collect();
                        let offline: Vec<&str> = active
                            .iter()
                            .filter(|d| d["online"] != true)
                            .filter_map(|d| d["id"].as_str())
                            .collect();
                        if active.is_empty() {
                            Check { name: "devices", ok: true, says: "no tablets or screens paired yet: pair them with `docket pair`".into() }
                        } else if offline.is_empty() {
                            Check { name: "devices", ok: true, says: format!("all {} tablets and screens online", active.len()) }
                        } else {
                            Check { name: "devices", ok: false, says: format!("{} of {} tablets and screens offline: {}. Check they are powered and on the restaurant Wi-Fi; revoke one that is gone on /admin", offline.len(), active.len(), offline.join(", ")) }
                        }
                    }
                    Err(ureq::Error::Status(401, _)) | Err(ureq::Error::Status(403, _)) => Check { name: "devices", ok: false, says: format!("the box refused manager {id}: push a bundle from this site directory (`docket site push`), or pass another manager") },
                    Err(e) => Check { name: "devices", ok: false, says: format!("cannot list devices: {e}") },
                };
                checks.push(check);
            }
            None => checks.push(Check {
                name: "devices",
                ok: true,
                says: "not checked: pass --dir SITE (or a manager's credentials) to see which tablets and screens are offline".into(),
            }),
        }
    }
    let green = checks.iter().all(|c| c.ok);
    if json {
        println!("{}", serde_json::json!({"green": green, "checks": checks}));
    } else {
        for c in &checks {
            println!(
                "{} {:<12} {}",
                if c.ok { "ok  " } else { "FAIL" },
                c.name,
                c.says
            );
        }
        println!(
            "{}",
            if green {
                "all green"
            } else {
                "NOT green: fix the FAIL lines above"
            }
        );
    }
    Ok(if green {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// What an MQTT login attempt found.
enum Login {
    /// No TCP connection.
    Unreachable,
    /// The CONNACK's return code (0: accepted), or `None` when the connection was closed
    /// without one (docketd's way of refusing a login, docs/protocol.md).
    Answered(Option<u8>),
}

/// An MQTT 3.1.1 login as a device (client id = user name = id, password = its login key) on one
/// connection, then a clean DISCONNECT. `Err`: the port answered, but not as MQTT.
fn mqtt_login(addr: std::net::SocketAddr, id: &str, password: &str) -> std::io::Result<Login> {
    use std::io::Read;
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0xC2, 0, 30];
    for field in [id, id, password] {
        body.extend((field.len() as u16).to_be_bytes());
        body.extend(field.as_bytes());
    }
    let mut packet = vec![0x10];
    let mut n = body.len();
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        packet.push(b);
        if n == 0 {
            break;
        }
    }
    packet.extend(body);
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)) else {
        return Ok(Login::Unreachable);
    };
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(&packet)?;
    let mut ack = [0u8; 4];
    match s.read_exact(&mut ack) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
            ) =>
        {
            return Ok(Login::Answered(None))
        }
        Err(e) => return Err(e),
    }
    if ack[0] != 0x20 || ack[1] != 2 {
        return Err(std::io::Error::other("the answer is not an MQTT CONNACK"));
    }
    let _ = s.write_all(&[0xE0, 0]);
    Ok(Login::Answered(Some(ack[3])))
}

/// `1.2.3` → (1, 2, 3); anything after `-` or `+` ignored, missing parts 0.
fn version_parts(v: &str) -> (u64, u64, u64) {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let mut p = core.split('.').map(|x| x.parse().unwrap_or(0));
    (
        p.next().unwrap_or(0),
        p.next().unwrap_or(0),
        p.next().unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::version_parts;

    #[test]
    fn versions_compare_by_number() {
        assert!(version_parts("0.9.0") < version_parts("0.10.0"));
        assert!(version_parts("1.2.3-rc1") == version_parts("1.2.3"));
        assert!(version_parts("1.2") < version_parts("1.2.1"));
        assert!(version_parts("garbage") == (0, 0, 0));
    }
}
