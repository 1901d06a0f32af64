//! `docket`: the technician's CLI. See docs/technician.md. This file holds the command line and
//! hands each command to its module.

mod cloud;
mod doctor;
mod image;
mod lan;
mod pair;
mod site;
mod sitedir;
mod sitetls;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "docket", version, about = "Set up and check a Docket box")]
struct Args {
    /// Machine-readable output (one JSON object on stdout).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The site directory on this laptop: identity and signing key.
    Site {
        #[command(subcommand)]
        command: SiteCmd,
    },
    /// Head-office uplink settings (stored in the site directory; push them with `site push`).
    Uplink {
        #[command(subcommand)]
        command: UplinkCmd,
    },
    /// Head office: applies the cloud schema and creates (or re-keys) this site's PostgreSQL
    /// role, then stores the site's own URL (that role, a new random password) in site.toml.
    Cloud {
        #[command(subcommand)]
        command: CloudCmd,
    },
    /// Works on a firmware image before flashing.
    Image {
        #[command(subcommand)]
        command: ImageCmd,
    },
    /// Writes IMAGE to DEVICE (an SD card / eMMC), fsyncs, reads it back and compares SHA-256.
    /// Asks you to type the device's name unless --yes.
    Flash {
        image: PathBuf,
        device: PathBuf,
        /// Do not ask for confirmation (scripts).
        #[arg(long)]
        yes: bool,
    },
    /// Pairs a tablet or screen: prints a QR code of its page's URL, lists the codes devices
    /// show, and approves one (`--code`), authenticated as a manager device.
    Pair {
        /// The box: its address (HTTPS on 443), ADDRESS:PORT, or https://ADDRESS[:PORT].
        #[arg(long = "box")]
        host: String,
        /// The page the device opens: tablet, kds or expo.
        #[arg(long, default_value = "tablet")]
        page: String,
        #[command(flatten)]
        manager: ManagerArgs,
        /// The 6-digit code the device shows; without it, the pending codes are listed.
        #[arg(long)]
        code: Option<String>,
        /// The new device's id (e.g. tablet-3, kds-grill).
        #[arg(long)]
        id: Option<String>,
        /// tablet, station, expo or manager.
        #[arg(long, default_value = "tablet")]
        role: String,
        /// The kitchen stations a screen shows (repeat).
        #[arg(long = "station")]
        stations: Vec<String>,
    },
    /// Checks a running box over the LAN and says what is wrong and what to do.
    Doctor {
        /// The box: its address (HTTPS on 443), ADDRESS:PORT, or https://ADDRESS[:PORT].
        host: String,
        /// The box's MQTT-over-TLS port.
        #[arg(long, default_value_t = 8883)]
        mqtt_port: u16,
        /// With --dir (or --ca), doctor checks the box's certificate against the site CA; with a
        /// manager (--dir), it also logs in over MQTT and checks that every paired tablet and
        /// screen is online.
        #[command(flatten)]
        manager: ManagerArgs,
    },
}

/// Who acts as a manager on the box (`pair` approves with it, `doctor` logs in with it).
#[derive(clap::Args)]
pub struct ManagerArgs {
    /// The site directory: its manager device (made by `site init`, carried to the box by the
    /// site bundle) is used unless --manager-id/--manager-secret are given.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The site CA's certificate (PEM) the box's certificate must come from, when there is no
    /// --dir (whose site-ca.pem is used).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Another manager device's id (instead of the site directory's).
    #[arg(long, env = "DOCKET_MANAGER_ID", requires = "manager_secret")]
    manager_id: Option<String>,
    /// That manager device's secret (hex).
    #[arg(long, env = "DOCKET_MANAGER_SECRET", hide_env_values = true)]
    manager_secret: Option<String>,
}

#[derive(Subcommand)]
enum SiteCmd {
    /// Creates the site directory: site.toml (0600: it holds the technician's manager
    /// credentials, later the uplink's), site.key (0600), site.pub, and the site CA
    /// (site-ca.pem, site-ca.key 0600) that tablets and screens trust.
    Init {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        site_id: String,
        #[arg(long)]
        name: String,
        /// The id of the manager device the bundle gives the box (for `docket pair`).
        #[arg(long, default_value = "technician")]
        manager_id: String,
    },
    /// Shows the site CA: the SHA-256 fingerprint a tablet shows when it installs it, its file
    /// and expiry. A site made before there were site CAs gets one now (an existing one is
    /// never replaced: tablets trust it).
    Ca {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Records a certificate of the site's own (e.g. from a public CA by DNS-01) that the box
    /// serves instead of one from the site CA; every bundle carries it. --clear forgets it.
    Tls {
        #[arg(long)]
        dir: PathBuf,
        /// The certificate chain, PEM: the site's certificate first.
        #[arg(long, requires = "key", conflicts_with = "clear")]
        cert: Option<PathBuf>,
        /// Its private key, PEM, without a passphrase.
        #[arg(long, requires = "cert")]
        key: Option<PathBuf>,
        /// Forget the site's own certificate: the box goes back to one from the site CA.
        #[arg(long, required_unless_present = "cert")]
        clear: bool,
    },
    /// Signs a new bundle (serial + 1) into DIR/site-bundle.json.
    Bundle {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Writes a new bundle and the pinned key into a box's data directory (first install).
    Install {
        #[arg(long)]
        dir: PathBuf,
        /// The box's data directory (`/var/lib/docket` on the box: the data partition's `docket/`).
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Signs a new bundle and pushes it to a running box over HTTPS (applies when docketd
    /// restarts). The box's certificate must come from the site CA.
    Push {
        #[arg(long)]
        dir: PathBuf,
        /// The box: its address (HTTPS on 443), ADDRESS:PORT, or https://ADDRESS[:PORT].
        host: String,
        /// Also trust the box's current CA, by the SHA-256 fingerprint its landing page shows
        /// (http://BOX/): for a box that has not had this site's CA yet (its first bundle with
        /// it since HTTPS). Compare the fingerprint on the box's own screen or page first.
        #[arg(long, value_name = "FINGERPRINT")]
        box_ca: Option<String>,
    },
}

#[derive(Subcommand)]
enum ImageCmd {
    /// Writes a new signed bundle and the pinned key into partition 4 (ext4, /data on the box)
    /// of IMAGE under /docket/, without mounting (e2fsprogs' debugfs on the partition's bytes).
    Configure {
        #[arg(long)]
        dir: PathBuf,
        image: PathBuf,
    },
}

#[derive(Subcommand)]
enum CloudCmd {
    /// Idempotent: applies only the schema steps not yet applied; re-running re-keys the role.
    Init {
        #[arg(long)]
        dir: PathBuf,
        /// PostgreSQL URL of a role that may create schemas and roles (head office's admin).
        #[arg(long, env = "DOCKET_CLOUD_ADMIN_URL")]
        admin_url: String,
    },
}

#[derive(Subcommand)]
enum UplinkCmd {
    /// Sets the PostgreSQL and/or Redis URL in site.toml ("" clears one).
    Set {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        postgres: Option<String>,
        #[arg(long)]
        redis: Option<String>,
        /// Do not try the URLs from this laptop (no network here).
        #[arg(long)]
        no_check: bool,
        /// Allow an uplink without TLS (PostgreSQL without sslmode=require/verify-*, redis://):
        /// only for a head office reached over a private link. Kept in site.toml until
        /// --require-tls.
        #[arg(long, conflicts_with = "require_tls")]
        allow_plaintext: bool,
        /// Require TLS on the uplink again (the default).
        #[arg(long)]
        require_tls: bool,
    },
}

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
            command: CloudCmd::Init { dir, admin_url },
        } => cloud::init(&dir, &admin_url, json)?,
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
        Cmd::Pair {
            host,
            page,
            manager,
            code,
            id,
            role,
            stations,
        } => pair::pair(
            pair::Pairing {
                host,
                page,
                manager,
                code,
                id,
                role,
                stations,
            },
            json,
        )?,
        Cmd::Doctor {
            host,
            mqtt_port,
            manager,
        } => {
            let trust = trust_of(&manager)?;
            return doctor::doctor(&host, mqtt_port, trust, manager_creds(manager)?, json);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What the box's certificate is checked against: --ca, else --dir's site CA, else nothing.
pub fn trust_of(m: &ManagerArgs) -> anyhow::Result<lan::Trust> {
    match (&m.ca, &m.dir) {
        (Some(ca), _) => lan::Trust::of_file(ca),
        (None, Some(dir)) => lan::Trust::of_site(dir),
        (None, None) => Ok(lan::Trust::unchecked()),
    }
}

/// A manager device's id and login password (its login key as hex, `docket_core::keys`; the
/// secret itself never goes on the wire): from the flags, else the site directory's first manager.
pub fn manager_creds(m: ManagerArgs) -> anyhow::Result<Option<(String, String)>> {
    let (id, secret) = match (m.manager_id, m.manager_secret, m.dir) {
        (Some(i), Some(s), _) => (i, s),
        (None, None, Some(dir)) => {
            let site = sitedir::read_site(&dir)?;
            let m = site.managers.into_iter().next().with_context(|| {
                format!("{} has no manager device (made before `site init` created one): pass --manager-id/--manager-secret", dir.join("site.toml").display())
            })?;
            (m.id, m.secret)
        }
        _ => return Ok(None),
    };
    let bytes: [u8; 32] = hex::decode(secret.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .with_context(|| format!("the secret of manager {id} is not 64 hex characters"))?;
    Ok(Some((id, docket_core::keys::password(&bytes))))
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
