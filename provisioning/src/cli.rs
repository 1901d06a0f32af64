//! The `docket` command line (clap): every command and its flags, and nothing they do (each
//! command's module does it; `main` dispatches). Must not read files or talk to a box.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "docket", version, about = "Set up and check a Docket box")]
pub struct Args {
    /// Machine-readable output (one JSON object on stdout).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
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
    Pair(crate::pair::Pairing),
    /// Head office's fleet view: a web page of every site live or stalled, sync lag, orders per
    /// hour and speed of service, with an alert list of stalled sites.
    Fleet {
        #[command(subcommand)]
        command: FleetCmd,
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
        manager: crate::manager::ManagerArgs,
    },
}

#[derive(Subcommand)]
pub enum SiteCmd {
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
pub enum ImageCmd {
    /// Writes a new signed bundle and the pinned key into partition 4 (ext4, /data on the box)
    /// of IMAGE under /docket/, without mounting (e2fsprogs' debugfs on the partition's bytes).
    Configure {
        #[arg(long)]
        dir: PathBuf,
        image: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum CloudCmd {
    /// Idempotent: applies only the schema steps not yet applied; re-running re-keys the role.
    Init {
        #[arg(long)]
        dir: PathBuf,
        /// PostgreSQL URL of a role that may create schemas and roles (head office's admin).
        #[arg(long, env = "DOCKET_CLOUD_ADMIN_URL")]
        admin_url: String,
        /// Create the schema with its per-site tables partitioned by hash of site_id into this
        /// many partitions each (a new schema only; later migrations keep to it by themselves;
        /// a schema that exists otherwise is refused and left unchanged).
        #[arg(long)]
        partitions: Option<u32>,
    },
}

#[derive(Subcommand)]
pub enum FleetCmd {
    /// Serves the fleet view (reads PostgreSQL every 2 s; never writes). Runs until Ctrl-C.
    Serve(crate::fleet::ServeArgs),
}

#[derive(Subcommand)]
pub enum UplinkCmd {
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
