//! `docket doctor`: checks a running box over the LAN and says, in words, what is wrong and
//! what to do.
//!
//! It reaches the box over HTTPS and checks its certificate against the site CA
//! ([`reach`]); then reads `/healthz` and `/metrics` ([`health`]), logs in over MQTT over TLS
//! ([`mqtt`]) and lists devices. A manager's credentials go only to a box whose certificate
//! verified; when it did not, doctor says why and still reads what carries no secret.

mod health;
mod mqtt;
mod reach;

use std::process::ExitCode;

use anyhow::bail;
use serde::Serialize;

use crate::lan::{Addr, Trust};

#[derive(Serialize)]
pub struct Check {
    name: &'static str,
    ok: bool,
    /// What was found, and when not ok, what to do.
    says: String,
    /// Something the site turned on that a technician should know (`/healthz` `warnings`):
    /// shown, and doctor stays green.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    warning: bool,
}

impl Check {
    fn ok(name: &'static str, says: impl Into<String>) -> Check {
        Check {
            name,
            ok: true,
            says: says.into(),
            warning: false,
        }
    }

    fn fail(name: &'static str, says: impl Into<String>) -> Check {
        Check {
            name,
            ok: false,
            says: says.into(),
            warning: false,
        }
    }

    fn new(name: &'static str, ok: bool, says: impl Into<String>) -> Check {
        Check {
            name,
            ok,
            says: says.into(),
            warning: false,
        }
    }

    fn warning(says: impl Into<String>) -> Check {
        Check {
            name: "setting",
            ok: true,
            says: says.into(),
            warning: true,
        }
    }
}

pub fn doctor(
    host: &str,
    mqtt_port: u16,
    trust: Trust,
    manager: Option<(String, String)>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let addr = Addr::parse(host)?;
    if manager.is_some() && !trust.checks() {
        bail!("doctor logs in as a manager only to a box whose certificate it checks: pass --dir SITE, or --ca FILE (the site CA's certificate) with --manager-id/--manager-secret");
    }
    let mut checks = Vec::new();
    if let Some(r) = reach::reach(&addr, trust, &mut checks)? {
        health::from_health(&r, &mut checks);
        health::uplink(&r.link, &mut checks);
        checks.push(mqtt::broker(&r, mqtt_port, manager.as_ref()));
        checks.push(health::devices(&r, manager.as_ref())?);
        health::printers(&r.health, &mut checks);
        health::warnings(&r.health, &mut checks);
    }
    Ok(report(&checks, json))
}

fn report(checks: &[Check], json: bool) -> ExitCode {
    let green = checks.iter().all(|c| c.ok);
    if json {
        let warnings: Vec<&str> = checks
            .iter()
            .filter(|c| c.warning)
            .map(|c| c.says.as_str())
            .collect();
        println!(
            "{}",
            serde_json::json!({"green": green, "checks": checks, "warnings": warnings})
        );
    } else {
        for c in checks {
            let tag = match (c.ok, c.warning) {
                (_, true) => "WARN",
                (true, false) => "ok  ",
                (false, false) => "FAIL",
            };
            println!("{tag} {:<12} {}", c.name, c.says);
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
    if green {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
