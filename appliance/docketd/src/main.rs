//! `docketd`: parses the command line and config, starts tracing, wires the components and waits
//! for shutdown. Everything else lives in the modules.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use docket_appliance::config::{Config, RawConfig};
use docket_appliance::{cli, daemon};

#[derive(Parser)]
#[command(
    name = "docketd",
    version,
    about = "Docket appliance daemon: offline-first restaurant orders"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the appliance: broker, engine, HTTP.
    Run {
        /// TOML config file (optional: built-in defaults and DOCKET_* variables otherwise).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Add, pair, revoke and list devices (works while docketd runs).
    Device {
        #[command(subcommand)]
        command: DeviceCommand,
    },
    /// Head office: apply the cloud schema, create per-site roles, check the connection.
    Uplink {
        #[command(subcommand)]
        command: UplinkCommand,
    },
    /// Print the commented default configuration.
    PrintDefaultConfig,
    /// Print the built-in demo menu (TOML), a starting point for a site's own.
    PrintDemoMenu,
}

/// Who a new device is: the same flags for `add` and `approve`.
#[derive(clap::Args)]
struct DeviceSpec {
    #[arg(long)]
    id: String,
    /// tablet, station, expo, manager or integration (a POS through the local API; head office)
    #[arg(long)]
    role: String,
    /// For station screens: the stations it shows, comma-separated.
    #[arg(long, value_delimiter = ',')]
    stations: Vec<String>,
}

#[derive(Subcommand)]
enum DeviceCommand {
    /// Add a device; prints one JSON line with its id, role and secret.
    Add {
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        device: DeviceSpec,
    },
    /// Add many devices at once: JSON lines `{"id":…,"role":…,"stations":[…]}` on stdin, all or
    /// nothing; prints one JSON line per device with its secret, as `add` does.
    Import {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Revoke a device: it is cut off at once and can never reconnect.
    Revoke {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        id: String,
    },
    /// List devices as JSON lines (secrets are not shown).
    List {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// List pending pairing requests (6-digit codes shown on new devices) as JSON lines.
    Pairings {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Approve a pairing request: creates the device, whose secret goes to the waiting device
    /// (not printed here).
    Approve {
        #[arg(long)]
        config: Option<PathBuf>,
        /// The 6-digit code the device shows.
        code: String,
        #[command(flatten)]
        device: DeviceSpec,
    },
    /// Print the login key (the MQTT and admin API password) of a device secret read from
    /// stdin (64 hex characters): for scripts and `curl -u ID:KEY`; the secret stays off the
    /// command line.
    LoginKey,
    /// Reject a pairing request.
    Reject {
        #[arg(long)]
        config: Option<PathBuf>,
        /// The 6-digit code the device shows.
        code: String,
    },
}

#[derive(Subcommand)]
enum UplinkCommand {
    /// Apply the cloud schema (idempotent: only what is not applied yet), as a role that may
    /// create schemas and roles. Prints one JSON line with what it applied.
    Migrate {
        #[arg(long)]
        config: Option<PathBuf>,
        /// PostgreSQL URL to use instead of `[uplink] postgres_url` (e.g. head office's admin).
        #[arg(long, env = "DOCKET_UPLINK_ADMIN_URL")]
        url: Option<String>,
        /// Create the schema with its per-site tables partitioned by hash of site_id into this
        /// many partitions each (a new schema only; later migrations keep to it by themselves).
        #[arg(long)]
        partitions: Option<u32>,
    },
    /// Create (or re-key) the role a site's box relays as; the password is read from stdin.
    /// Prints the role name.
    SiteRole {
        #[arg(long)]
        config: Option<PathBuf>,
        /// PostgreSQL URL of a role that may create roles (default `[uplink] postgres_url`).
        #[arg(long, env = "DOCKET_UPLINK_ADMIN_URL")]
        url: Option<String>,
        /// The site id (default: the config's `site_id`).
        #[arg(long)]
        site: Option<String>,
    },
    /// Connect to the configured PostgreSQL and Redis and report what the relay would see.
    Check {
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn load(path: Option<&std::path::Path>) -> anyhow::Result<Config> {
    let raw = RawConfig::load(path, std::env::vars())?;
    Ok(raw.validate()?)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Command::PrintDefaultConfig => {
            print!("{}", docket_appliance::config::DEFAULT_CONFIG);
            Ok(())
        }
        Command::PrintDemoMenu => {
            print!("{}", docket_appliance::site::menu::DEMO_MENU);
            Ok(())
        }
        Command::Device { command } => match command {
            DeviceCommand::Add { config, device: d } => load(config.as_deref())
                .and_then(|c| cli::device_add(&c, &d.id, &d.role, &d.stations)),
            DeviceCommand::Import { config } => load(config.as_deref())
                .and_then(|c| cli::device_import(&c, std::io::stdin().lock())),
            DeviceCommand::Revoke { config, id } => {
                load(config.as_deref()).and_then(|c| cli::device_revoke(&c, &id))
            }
            DeviceCommand::List { config } => {
                load(config.as_deref()).and_then(|c| cli::device_list(&c))
            }
            DeviceCommand::Pairings { config } => {
                load(config.as_deref()).and_then(|c| cli::device_pairings(&c))
            }
            DeviceCommand::Approve {
                config,
                code,
                device: d,
            } => load(config.as_deref())
                .and_then(|c| cli::device_approve(&c, &code, &d.id, &d.role, &d.stations)),
            DeviceCommand::LoginKey => cli::device_login_key(std::io::stdin().lock()),
            DeviceCommand::Reject { config, code } => {
                load(config.as_deref()).and_then(|c| cli::device_reject(&c, &code))
            }
        },
        Command::Uplink { command } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime");
            match command {
                UplinkCommand::Migrate {
                    config,
                    url,
                    partitions,
                } => load(config.as_deref())
                    .and_then(|c| rt.block_on(cli::uplink_migrate(&c, url.as_deref(), partitions))),
                UplinkCommand::SiteRole { config, url, site } => {
                    load(config.as_deref()).and_then(|c| {
                        rt.block_on(cli::uplink_site_role(&c, url.as_deref(), site.as_deref()))
                    })
                }
                UplinkCommand::Check { config } => {
                    load(config.as_deref()).and_then(|c| rt.block_on(cli::uplink_check(&c)))
                }
            }
        }
        Command::Run { config } => load(config.as_deref()).and_then(|c| {
            docket_appliance::daemon::logging::init(c.log_format);
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            rt.block_on(daemon::run(c))
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("docketd: {e:#}");
            tracing::error!(error = %format!("{e:#}"), "docketd failed");
            ExitCode::FAILURE
        }
    }
}
