//! `docket`: the technician's CLI. See docs/technician.md. This file parses the command line
//! ([`cli`]) and hands each command to its module; it does nothing itself.

mod cli;
mod cloud;
mod doctor;
mod fleet;
mod image;
mod lan;
mod manager;
mod pair;
mod site;
mod sitedir;
mod sitetls;

use std::process::ExitCode;

use clap::Parser;

use cli::{Args, CloudCmd, Cmd, FleetCmd, ImageCmd, SiteCmd, UplinkCmd};

/// Prints `v` with `--json`, else `human`.
pub fn out(json: bool, v: serde_json::Value, human: &str) {
    if json {
        println!("{v}");
    } else {
        println!("{human}");
    }
}

fn run(args: Args) -> anyhow::Result<ExitCode> {
    let json = args.json;
    match args.command {
        Cmd::Site { command } => match command {
            SiteCmd::Init {
                dir,
                site_id,
                name,
                manager_id,
            } => site::init(dir, site_id, name, manager_id, json)?,
            SiteCmd::Ca { dir } => site::ca(&dir, json)?,
            SiteCmd::Tls {
                dir,
                cert,
                key,
                clear: _,
            } => site::tls(&dir, cert.zip(key), json)?,
            SiteCmd::Bundle { dir } => site::bundle(&dir, json)?,
            SiteCmd::Install { dir, data_dir } => site::install(&dir, &data_dir, json)?,
            SiteCmd::Push { dir, host, box_ca } => {
                site::push(&dir, &host, box_ca.as_deref(), json)?
            }
        },
        Cmd::Cloud {
            command:
                CloudCmd::Init {
                    dir,
                    admin_url,
                    partitions,
                },
        } => cloud::init(&dir, &admin_url, partitions, json)?,
        Cmd::Uplink {
            command:
                UplinkCmd::Set {
                    dir,
                    postgres,
                    redis,
                    no_check,
                    allow_plaintext,
                    require_tls,
                },
        } => site::uplink_set(
            &dir,
            site::UplinkChange {
                postgres,
                redis,
                no_check,
                allow_plaintext,
                require_tls,
            },
            json,
        )?,
        Cmd::Image {
            command: ImageCmd::Configure { dir, image },
        } => image::configure(&dir, &image, json)?,
        Cmd::Flash { image, device, yes } => image::flash_cmd(&image, &device, yes, json)?,
        Cmd::Pair(p) => pair::pair(p, json)?,
        Cmd::Fleet {
            command: FleetCmd::Serve(a),
        } => return fleet::serve(a),
        Cmd::Doctor {
            host,
            mqtt_port,
            manager,
        } => {
            let trust = manager::trust_of(&manager)?;
            return doctor::doctor(
                &host,
                mqtt_port,
                trust,
                manager::manager_creds(manager)?,
                json,
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("docket: {e:#}");
            ExitCode::FAILURE
        }
    }
}
