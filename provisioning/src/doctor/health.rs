//! Doctor's checks from what the box reports: `/healthz` (health, version, clock, site bundle,
//! disk, warnings), `/metrics` (the uplink), and with a manager `/api/admin/devices`.
//! `/healthz` is read as docket-core's typed [`Health`], the very struct the box writes.

use anyhow::bail;
use docket_core::health::{Health, Status};
use serde_json::Value;

use super::reach::Reached;
use super::Check;
use crate::lan::{b64, Link};

pub fn from_health(r: &Reached, checks: &mut Vec<Check>) {
    let h = &r.health;
    checks.push(Check::new(
        "health",
        h.status == Status::Ok,
        format!("docketd {} is up for site {}", h.version, h.site_id),
    ));
    let (box_v, mine) = (&h.version, env!("CARGO_PKG_VERSION"));
    let older = version_parts(box_v) < version_parts(mine);
    checks.push(Check::new(
        "version",
        !older,
        if older {
            format!("the box runs docketd {box_v}, older than this CLI ({mine}): install the current update bundle (docs/updates.md), then run doctor again")
        } else {
            format!("docketd {box_v} (this CLI {mine})")
        },
    ));
    let mid = (r.t0 + r.t1) / 2;
    let skew = h.now_ms as i64 - mid as i64;
    let ok = skew.unsigned_abs() < 5_000;
    checks.push(Check::new("clock", ok, if ok { format!("box clock within {} ms of this laptop", skew.abs()) } else { format!("box clock is {} s off this laptop: give the box network access to NTP (pool.ntp.org) or check the laptop's clock", skew / 1000) }));
    checks.push(site_bundle(h, &r.link.addr.given));
    checks.push(disk(h));
}

fn site_bundle(h: &Health, given: &str) -> Check {
    let Some(site) = &h.site else {
        return Check::fail(
            "site bundle",
            "this docketd does not report a site bundle: update the box's firmware",
        );
    };
    match site.state.as_str() {
        "applied" => Check::ok("site bundle", format!("site bundle serial {} applied", site.serial.unwrap_or(0))),
        "none" => Check::fail("site bundle", "no site bundle on the box: install one with `docket site install` or `docket image configure`"),
        _ => Check::fail("site bundle", format!("the box REFUSED its site bundle: {}. Push one signed with this site's key: `docket site push --dir SITE {given}`", site.reason.as_deref().unwrap_or("?"))),
    }
}

fn disk(h: &Health) -> Check {
    let Some(disk) = &h.disk else {
        return Check::fail(
            "disk",
            "this docketd does not report its disk: update the box's firmware",
        );
    };
    let (free, total, full) = (disk.free_bytes, disk.total_bytes, disk.storage_full);
    let mib = free / (1024 * 1024);
    let low = free < 16 * 1024 * 1024 || free < total / 20;
    let says = if full {
        format!("the data partition is FULL ({mib} MiB free): the box is refusing new orders. Free space on /data (old logs, a stray file) or replace the SD card, then run doctor again")
    } else if low {
        format!("the data partition is nearly full ({mib} MiB free of {} MiB): free space on /data before service", total / (1024 * 1024))
    } else {
        format!("{mib} MiB free on the data partition")
    };
    Check::new("disk", !full && !low, says)
}

/// The uplink, from `/metrics` (only targets the box has configured appear).
pub fn uplink(link: &Link, checks: &mut Vec<Check>) {
    let Some(text) = link
        .public()
        .get(&link.url("/metrics"))
        .call()
        .ok()
        .and_then(|r| r.into_string().ok())
    else {
        return;
    };
    for line in text.lines().filter(|l| l.starts_with("docket_uplink_up{")) {
        let target = line.split('"').nth(1).unwrap_or("?").to_owned();
        let up = line.trim_end().ends_with(" 1");
        let lag = text
            .lines()
            .find(|l| l.starts_with(&format!("docket_uplink_lag_seconds{{target=\"{target}\"}}")))
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
        checks.push(Check::new("uplink", ok, says));
    }
}

/// Device presence, seen by the box (needs a manager, and a box whose certificate verified).
pub fn devices(r: &Reached, manager: Option<&(String, String)>) -> anyhow::Result<Check> {
    let Some((id, password)) = manager else {
        return Ok(Check::ok("devices", "not checked: pass --dir SITE (or a manager's credentials) to see which tablets and screens are offline"));
    };
    if !r.verified {
        return Ok(Check::ok("devices", "not checked: the box's certificate did not verify (the tls line), so the manager's credentials were not sent"));
    }
    let auth = format!("Basic {}", b64(&format!("{id}:{password}")));
    let res = r
        .link
        .secret("the manager's credentials")?
        .get(&r.link.url("/api/admin/devices"))
        .set("Authorization", &auth)
        .call();
    let v: Value = match res {
        Ok(resp) => resp.into_json().unwrap_or_default(),
        Err(ureq::Error::Status(401, _)) | Err(ureq::Error::Status(403, _)) => return Ok(Check::fail("devices", format!("the box refused manager {id}: push a bundle from this site directory (`docket site push`), or pass another manager"))),
        Err(e) => return Ok(Check::fail("devices", format!("cannot list devices: {}", r.link.failure(&e)))),
    };
    let Some(list) = v["devices"].as_array() else {
        bail!("the box's device list is not what this CLI understands ({v}): update the CLI or the box");
    };
    let active: Vec<&Value> = list
        .iter()
        .filter(|d| d["revoked_at"].is_null() && d["role"] != "manager")
        .collect();
    let offline: Vec<&str> = active
        .iter()
        .filter(|d| d["online"] != true)
        .filter_map(|d| d["id"].as_str())
        .collect();
    Ok(if active.is_empty() {
        Check::ok(
            "devices",
            "no tablets or screens paired yet: pair them with `docket pair`",
        )
    } else if offline.is_empty() {
        Check::ok(
            "devices",
            format!("all {} tablets and screens online", active.len()),
        )
    } else {
        Check::fail("devices", format!("{} of {} tablets and screens offline: {}. Check they are powered and on the restaurant Wi-Fi; revoke one that is gone on /admin", offline.len(), active.len(), offline.join(", ")))
    })
}

/// What the site turned on that a technician should know (plain MQTT, plain HTTP): a WARN
/// line each.
pub fn warnings(h: &Health, checks: &mut Vec<Check>) {
    for w in &h.warnings {
        checks.push(Check::warning(w.clone()));
    }
}

/// Each station's kitchen printer: red when nothing would show its tickets (no live screen and
/// a printer that can't print) or when its printer can't print (the fallback would fail).
pub fn printers(h: &Health, checks: &mut Vec<Check>) {
    for p in h.printing.iter().flatten() {
        let head = format!("{} → {} ({})", p.station, p.address, p.mode);
        let fix = match p.printer.as_str() {
            "paper out" => "load paper",
            "cover open" => "close the printer's cover",
            "unreachable" => "check the printer is on and its address is right",
            "offline" | "printer error" => "check the printer (power, errors)",
            _ => "check the printer",
        };
        let check = if p.mode == "off" {
            Check::ok("printer", format!("{head}: off"))
        } else if p.alarm {
            Check::fail(
                "printer",
                format!(
                    "{head}: ALARM: no screen live and the printer says {}: {fix} now",
                    p.printer
                ),
            )
        } else if !p.can_print && p.printer != "unknown" {
            Check::fail(
                "printer",
                format!("{head}: {}; the printer says {}: {fix}", p.why, p.printer),
            )
        } else {
            Check::ok(
                "printer",
                format!(
                    "{head}: {}; printer {}, {} printed, {} waiting",
                    p.why, p.printer, p.printed, p.waiting
                ),
            )
        };
        checks.push(check);
    }
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
    use super::*;

    #[test]
    fn versions_compare_by_number() {
        assert!(version_parts("0.9.0") < version_parts("0.10.0"));
        assert!(version_parts("1.2.3-rc1") == version_parts("1.2.3"));
        assert!(version_parts("1.2") < version_parts("1.2.1"));
        assert!(version_parts("garbage") == (0, 0, 0));
    }

    /// A `/healthz` body with `v`'s fields over a minimal one (as a box would send it).
    fn health(v: Value) -> Health {
        let mut base = serde_json::json!({"status": "ok", "site_id": "s", "version": "1.0.0", "seq": 0, "open_orders": 0, "now_ms": 0});
        if let (Some(b), Some(v)) = (base.as_object_mut(), v.as_object()) {
            b.extend(v.clone());
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn each_warning_is_a_warn_line_and_doctor_stays_green() {
        let mut checks = Vec::new();
        let h = serde_json::json!({"warnings": ["plain MQTT is on (mqtt.plain)", "plain HTTP serves everything (http.plain)"]});
        warnings(&health(h), &mut checks);
        assert_eq!(checks.len(), 2);
        assert!(checks.iter().all(|c| c.ok && c.warning));
        assert!(checks[0].says.contains("mqtt.plain"));
        warnings(&health(serde_json::json!({"warnings": []})), &mut checks);
        warnings(&health(serde_json::json!({})), &mut checks);
        assert_eq!(checks.len(), 2);
    }
}
