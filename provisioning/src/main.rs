//! `docket`: the technician's CLI. See docs/technician.md.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use docket_core::bundle::{self, Bundle};
use serde::{Deserialize, Serialize};

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
        /// The box's HTTP address.
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
        /// The box's HTTP address, e.g. 192.168.1.20 or 192.168.1.20:80.
        host: String,
        /// The box's MQTT port.
        #[arg(long, default_value_t = 1884)]
        mqtt_port: u16,
        /// With a manager (--dir), doctor also logs in over MQTT and checks that every paired
        /// tablet and screen is online.
        #[command(flatten)]
        manager: ManagerArgs,
    },
}

/// Who acts as a manager on the box (`pair` approves with it, `doctor` logs in with it).
#[derive(clap::Args)]
struct ManagerArgs {
    /// The site directory: its manager device (made by `site init`, carried to the box by the
    /// site bundle) is used unless --manager-id/--manager-secret are given.
    #[arg(long)]
    dir: Option<PathBuf>,
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
    /// credentials, later the uplink's), site.key (0600), site.pub.
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
    /// Signs a new bundle and pushes it to a running box (applies when docketd restarts).
    Push {
        #[arg(long)]
        dir: PathBuf,
        host: String,
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

/// `site.toml`.
#[derive(Serialize, Deserialize)]
struct SiteFile {
    site_id: String,
    name: String,
    /// The serial of the last bundle signed.
    serial: u64,
    postgres_url: Option<String>,
    redis_url: Option<String>,
    /// Manager devices every bundle carries (the box adds the ones it does not have).
    #[serde(default)]
    managers: Vec<bundle::BundleManager>,
    /// The uplink may go in plain text (`docket uplink set --allow-plaintext`); else the
    /// bundle refuses URLs without TLS.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    plaintext_uplink: bool,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn read_site(dir: &Path) -> anyhow::Result<SiteFile> {
    let p = dir.join("site.toml");
    let t = std::fs::read_to_string(&p)
        .with_context(|| format!("cannot read {} (run `docket site init` first)", p.display()))?;
    toml::from_str(&t).with_context(|| format!("{} is not a valid site file", p.display()))
}

fn write_site(dir: &Path, s: &SiteFile) -> anyhow::Result<()> {
    let text = toml::to_string(s).context("cannot write the site file")?;
    write_secret(&dir.join("site.toml"), text.as_bytes())
}

/// Writes a file that holds secrets (a manager's secret, head office's passwords): readable by
/// its owner only (0600), also when an older version of it was readable by others.
fn write_secret(p: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let w = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(p)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    w().with_context(|| format!("cannot write {}", p.display()))
}

/// Makes a directory of secrets: owner only (0700).
fn make_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

fn write_private(p: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(p)
        .with_context(|| format!("cannot create {}", p.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// Bumps the serial, signs, writes DIR/site-bundle.json; returns (json, bundle).
fn new_bundle(dir: &Path) -> anyhow::Result<(String, Bundle)> {
    let mut s = read_site(dir)?;
    let kp = dir.join("site.key");
    let key = bundle::parse_signing_key(
        &std::fs::read_to_string(&kp).with_context(|| format!("cannot read {}", kp.display()))?,
    )
    .with_context(|| format!("{} is not a site key", kp.display()))?;
    s.serial += 1;
    let b = Bundle {
        site_id: s.site_id.clone(),
        name: s.name.clone(),
        postgres_url: s.postgres_url.clone(),
        redis_url: s.redis_url.clone(),
        issued_at_ms: now_ms(),
        serial: s.serial,
        managers: s.managers.clone(),
        plaintext_uplink: s.plaintext_uplink,
        tls: None,
    };
    bundle::check_content(&b)?;
    let json = serde_json::to_string_pretty(&bundle::sign(b.clone(), &key))?;
    // The bundle carries the manager secrets and head office's passwords.
    write_secret(&dir.join("site-bundle.json"), json.as_bytes())?;
    write_site(dir, &s)?;
    Ok((json, b))
}

fn base_url(host: &str) -> String {
    if host.starts_with("http://") || host.starts_with("https://") {
        host.trim_end_matches('/').to_owned()
    } else {
        format!("http://{host}")
    }
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(5))
        .build()
}

fn out(json: bool, v: serde_json::Value, human: &str) {
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
            } => {
                if !docket_core::menu::valid_name(&site_id) {
                    bail!("site id {site_id:?} is not valid: use 1-32 of lowercase letters, digits, '-' and '_'");
                }
                if !docket_core::wire::valid_device_id(&manager_id) {
                    bail!("manager id {manager_id:?} is not valid: use 1-64 of a-z, A-Z, 0-9, '-', '_' and '.', not starting with \"docketd\"");
                }
                if dir.join("site.toml").exists() {
                    bail!(
                        "{} already holds a site: refusing to overwrite its key",
                        dir.display()
                    );
                }
                make_private_dir(&dir)?;
                let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
                write_private(&dir.join("site.key"), &bundle::key_text(&key.to_bytes()))?;
                std::fs::write(
                    dir.join("site.pub"),
                    bundle::key_text(key.verifying_key().as_bytes()),
                )?;
                write_site(
                    &dir,
                    &SiteFile {
                        site_id: site_id.clone(),
                        name,
                        serial: 0,
                        postgres_url: None,
                        redis_url: None,
                        managers: vec![bundle::BundleManager {
                            id: manager_id.clone(),
                            secret: hex_of(&rand::random::<[u8; 32]>()),
                        }],
                        plaintext_uplink: false,
                    },
                )?;
                let pubhex = bundle::key_text(key.verifying_key().as_bytes());
                out(
                    json,
                    serde_json::json!({"site_id": site_id, "dir": dir, "public_key": pubhex.trim(), "manager_id": manager_id}),
                    &format!("site {site_id} created in {}\n  signing key: {}/site.key (keep it secret, back it up)\n  public key:  {}\n  manager device for `docket pair`: {manager_id} (its secret is in site.toml; every bundle gives it to the box)", dir.display(), dir.display(), pubhex.trim()),
                );
            }
            SiteCmd::Bundle { dir } => {
                let (_, b) = new_bundle(&dir)?;
                out(
                    json,
                    serde_json::json!({"serial": b.serial, "file": dir.join("site-bundle.json")}),
                    &format!(
                        "bundle serial {} written to {}",
                        b.serial,
                        dir.join("site-bundle.json").display()
                    ),
                );
            }
            SiteCmd::Install { dir, data_dir } => {
                let (bjson, b) = new_bundle(&dir)?;
                std::fs::create_dir_all(&data_dir)
                    .with_context(|| format!("cannot create {}", data_dir.display()))?;
                std::fs::copy(dir.join("site.pub"), data_dir.join("site-key.pub"))?;
                write_secret(&data_dir.join("site-bundle.json"), bjson.as_bytes())?;
                out(
                    json,
                    serde_json::json!({"serial": b.serial, "data_dir": data_dir}),
                    &format!(
                        "bundle serial {} and the pinned key installed in {}",
                        b.serial,
                        data_dir.display()
                    ),
                );
            }
            SiteCmd::Push { dir, host } => {
                let (bjson, b) = new_bundle(&dir)?;
                let url = format!("{}/site/bundle", base_url(&host));
                match agent()
                    .post(&url)
                    .set("Content-Type", "application/json")
                    .send_string(&bjson)
                {
                    Ok(r) => {
                        let v: serde_json::Value = r.into_json().unwrap_or_default();
                        let now = v["applies"].as_str().is_some_and(|a| a.starts_with("now"));
                        let says = if now {
                            format!("bundle serial {} accepted by {host}; docketd restarts to apply it (a few seconds: tablets and screens reconnect by themselves)", b.serial)
                        } else {
                            format!("bundle serial {} accepted by {host}; it applies when docketd restarts (sudo systemctl restart docketd, or power-cycle the box)", b.serial)
                        };
                        out(
                            json,
                            serde_json::json!({"pushed": true, "serial": b.serial, "applies": if now { "now" } else { "at restart" }}),
                            &says,
                        )
                    }
                    Err(ureq::Error::Status(code, r)) => {
                        let body = r.into_string().unwrap_or_default();
                        bail!("the box refused the bundle (HTTP {code}): {body}");
                    }
                    Err(e) => bail!("cannot reach the box at {url}: {e}"),
                }
            }
        },
        Cmd::Cloud {
            command: CloudCmd::Init { dir, admin_url },
        } => {
            let mut s = read_site(&dir)?;
            let password = hex_of(&rand::random::<[u8; 24]>());
            let (applied, role) = cloud_init(&admin_url, &s.site_id, &password)?;
            let site_url = with_credentials(&admin_url, &role, &password)?;
            s.postgres_url = Some(site_url);
            write_site(&dir, &s)?;
            out(
                json,
                serde_json::json!({"applied": applied, "role": role}),
                &format!(
                    "head office ready: schema steps applied now: {}; role {role} (new password \
                     stored in site.toml); send it to the box with `docket site push` or \
                     `docket image configure`",
                    if applied.is_empty() {
                        "none (already there)".to_owned()
                    } else {
                        applied.join(", ")
                    }
                ),
            );
        }
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
        } => {
            let mut s = read_site(&dir)?;
            if allow_plaintext || require_tls {
                s.plaintext_uplink = allow_plaintext;
            }
            let norm = |v: String| if v.trim().is_empty() { None } else { Some(v) };
            if let Some(p) = postgres {
                s.postgres_url = norm(p);
            }
            if let Some(r) = redis {
                s.redis_url = norm(r);
            }
            let probe = Bundle {
                site_id: s.site_id.clone(),
                name: s.name.clone(),
                postgres_url: s.postgres_url.clone(),
                redis_url: s.redis_url.clone(),
                issued_at_ms: 0,
                serial: 0,
                managers: vec![],
                plaintext_uplink: s.plaintext_uplink,
                tls: None,
            };
            bundle::check_content(&probe)?;
            // Tried live from this laptop: a server that answers "no" (bad password, no such
            // database) stops here with nothing saved; one this laptop cannot reach is saved
            // with a warning (the box may reach it where the laptop does not).
            let mut tried = serde_json::Map::new();
            let mut lines = Vec::new();
            if !no_check {
                for (target, outcome) in probe_uplink(&s)? {
                    let (state, line) = match &outcome {
                        Ok(()) => ("ok", format!("{target}: reachable, login accepted")),
                        Err((true, e)) => bail!("{target} refused the login, nothing saved: {e}"),
                        Err((false, e)) => ("unreachable", format!("{target}: not reachable from this laptop ({e}); saved anyway: the box may reach it, `docket doctor` shows the box's view")),
                    };
                    tried.insert(target.to_owned(), state.into());
                    lines.push(line);
                }
            }
            write_site(&dir, &s)?;
            lines.push("uplink saved in site.toml; send it to the box with `docket site push --dir DIR HOST`".into());
            out(
                json,
                serde_json::json!({"postgres": s.postgres_url.is_some(), "redis": s.redis_url.is_some(), "tried": tried}),
                &lines.join("\n"),
            );
        }
        Cmd::Image {
            command: ImageCmd::Configure { dir, image },
        } => {
            let (bjson, b) = new_bundle(&dir)?;
            let key = std::fs::read_to_string(dir.join("site.pub"))?;
            image_configure(&image, &bjson, &key)?;
            out(
                json,
                serde_json::json!({"serial": b.serial, "image": image}),
                &format!(
                    "bundle serial {} and the pinned key written into {} (partition 4, /docket/)",
                    b.serial,
                    image.display()
                ),
            );
        }
        Cmd::Flash { image, device, yes } => {
            let hash = flash(&image, &device, yes, json)?;
            out(
                json,
                serde_json::json!({"flashed": true, "sha256": hash, "device": device}),
                &format!(
                    "{} written to {} and verified (sha256 {hash})",
                    image.display(),
                    device.display()
                ),
            );
        }
        Cmd::Pair {
            host,
            page,
            manager,
            code,
            id,
            role,
            stations,
        } => {
            if !["tablet", "kds", "expo"].contains(&page.as_str()) {
                bail!("--page {page:?}: use tablet, kds or expo");
            }
            let base = base_url(&host);
            let url = format!("{base}/{page}");
            let qr = qrcode::QrCode::new(url.as_bytes())?
                .render::<qrcode::render::unicode::Dense1x2>()
                .quiet_zone(true)
                .build();
            let (manager_id, manager_password) = manager_creds(manager)?
                .context("say who approves: --dir SITE_DIR (its manager), or --manager-id with --manager-secret")?;
            let auth = format!("Basic {}", b64(&format!("{manager_id}:{manager_password}")));
            let call = |r: ureq::Request,
                        body: Option<serde_json::Value>|
             -> anyhow::Result<serde_json::Value> {
                let r = r.set("Authorization", &auth);
                let res = match body {
                    Some(b) => r.send_json(b),
                    None => r.call(),
                };
                match res {
                    Ok(r) => Ok(r.into_json()?),
                    Err(ureq::Error::Status(401, _)) | Err(ureq::Error::Status(403, _)) => bail!("the box refused the manager credentials: check --manager-id/--manager-secret (a device with role manager)"),
                    Err(ureq::Error::Status(c, r)) => bail!("the box answered HTTP {c}: {}", r.into_string().unwrap_or_default()),
                    Err(e) => bail!("cannot reach the box at {base}: {e}"),
                }
            };
            match code {
                None => {
                    let pending = call(agent().get(&format!("{base}/api/admin/pairings")), None)?;
                    if json {
                        println!("{}", serde_json::json!({"url": url, "pending": pending}));
                    } else {
                        println!("{qr}\nOn the tablet/screen, open {url} (scan the code above).\nIt shows a 6-digit code; then run: docket pair --box {host} --code CODE --id DEVICE-ID --role ROLE\nPending codes: {pending}");
                    }
                }
                Some(code) => {
                    let id = id.context(
                        "--id is needed with --code (the new device's id, e.g. tablet-3)",
                    )?;
                    let v = call(
                        agent().post(&format!("{base}/api/admin/pairings/{code}/approve")),
                        Some(serde_json::json!({"id": id, "role": role, "stations": stations})),
                    )?;
                    out(json, serde_json::json!({"approved": true, "device": v}), &format!("{id} paired as {role}: the device connects by itself within a few seconds"));
                }
            }
        }
        Cmd::Doctor {
            host,
            mqtt_port,
            manager,
        } => return doctor(&host, mqtt_port, manager_creds(manager)?, json),
    }
    Ok(ExitCode::SUCCESS)
}

/// Tries each configured uplink URL: (target, Ok or Err((refused, message))).
#[allow(clippy::type_complexity)]
fn probe_uplink(s: &SiteFile) -> anyhow::Result<Vec<(&'static str, Result<(), (bool, String)>)>> {
    use docket_appliance::config::{RawConfig, SecretUrl};
    use docket_appliance::uplink::{pg, redis};
    let cfg = RawConfig::default().validate()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut out = Vec::new();
    if let Some(u) = &s.postgres_url {
        let r = rt.block_on(pg::probe(&SecretUrl::new(u), &cfg.uplink));
        out.push(("postgres", r.map_err(|e| (e.is_refusal(), e.to_string()))));
    }
    if let Some(u) = &s.redis_url {
        let r = rt.block_on(redis::probe(&SecretUrl::new(u), &cfg.uplink));
        out.push(("redis", r.map_err(|e| (e.is_refusal(), e.to_string()))));
    }
    Ok(out)
}

/// A manager device's id and login password (its login key as hex, `docket_core::keys`; the
/// secret itself never goes on the wire): from the flags, else the site directory's first manager.
fn manager_creds(m: ManagerArgs) -> anyhow::Result<Option<(String, String)>> {
    let (id, secret) = match (m.manager_id, m.manager_secret, m.dir) {
        (Some(i), Some(s), _) => (i, s),
        (None, None, Some(dir)) => {
            let site = read_site(&dir)?;
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

fn flash(image: &Path, device: &Path, yes: bool, json: bool) -> anyhow::Result<String> {
    use sha2::Digest;
    use std::io::Read;
    let len = std::fs::metadata(image)
        .with_context(|| format!("cannot read {}", image.display()))?
        .len();
    if !yes {
        eprintln!(
            "\n  !!! THIS ERASES EVERYTHING ON {} !!!\n  Type the device name ({}) to go on:",
            device.display(),
            device.display()
        );
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        if line.trim() != device.to_string_lossy() {
            bail!("not confirmed: nothing written (type the device name exactly, or pass --yes)");
        }
    }
    let bar = if json {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(len)
    };
    let mut src = std::fs::File::open(image)?;
    let mut dst = std::fs::OpenOptions::new()
        .write(true)
        .open(device)
        .with_context(|| format!("cannot open {} for writing", device.display()))?;
    let mut buf = vec![0u8; 4 << 20];
    let mut want = sha2::Sha256::new();
    loop {
        let n = src.read(&mut buf)?;
        if n == 0 {
            break;
        }
        want.update(&buf[..n]);
        dst.write_all(&buf[..n])
            .with_context(|| format!("writing {}", device.display()))?;
        bar.inc(n as u64);
    }
    dst.sync_all()
        .with_context(|| format!("flushing {}", device.display()))?;
    drop(dst);
    bar.finish_and_clear();
    // Read back exactly the image's length.
    let mut back = std::fs::File::open(device)?.take(len);
    let mut got = sha2::Sha256::new();
    let mut total = 0u64;
    loop {
        let n = back.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got.update(&buf[..n]);
        total += n as u64;
    }
    let (want, got) = (hex_of(&want.finalize()), hex_of(&got.finalize()));
    if total != len || want != got {
        bail!(
            "verification FAILED: {} reads back differently from {} (bad card?): do not use it",
            device.display(),
            image.display()
        );
    }
    Ok(want)
}

fn b64(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut o = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                o.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                o.push('=');
            }
        }
    }
    o
}

/// Applies the cloud schema and creates (or re-keys) the site's role; returns (migrations
/// applied now, role name). The same code docketd's `uplink migrate` / `site-role` run.
fn cloud_init(
    admin_url: &str,
    site: &str,
    password: &str,
) -> anyhow::Result<(Vec<String>, String)> {
    use docket_appliance::config::{RawConfig, SecretUrl};
    use docket_appliance::uplink::pg;
    let cfg = RawConfig::default().validate()?;
    let url = SecretUrl::new(admin_url);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut client = pg::connect(&url, &cfg.uplink)
            .await
            .with_context(|| format!("cannot connect to head office at {}", url.redacted()))?;
        let applied = pg::migrate(&mut client)
            .await
            .context("applying the cloud schema")?;
        let role = pg::create_site_role(&client, site, password)
            .await
            .context("creating the site's role")?;
        let applied: Vec<String> = applied.iter().map(|a| a.to_string()).collect();
        Ok((applied, role))
    })
}

/// `scheme://user:password@rest` from `scheme://[anything@]rest`.
fn with_credentials(url: &str, user: &str, password: &str) -> anyhow::Result<String> {
    let (scheme, rest) = url
        .split_once("://")
        .context("the admin URL has no scheme (postgres://…)")?;
    // Userinfo is everything before the last '@' of the authority (before the first '/').
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let rest = match rest[..authority_end].rfind('@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    Ok(format!("{scheme}://{user}:{password}@{rest}"))
}

#[cfg(test)]
mod tests {
    use super::{version_parts, with_credentials};

    #[test]
    fn versions_compare_by_number() {
        assert!(version_parts("0.9.0") < version_parts("0.10.0"));
        assert!(version_parts("1.2.3-rc1") == version_parts("1.2.3"));
        assert!(version_parts("1.2") < version_parts("1.2.1"));
        assert!(version_parts("garbage") == (0, 0, 0));
    }

    #[test]
    fn credentials_replace_the_admin_ones_and_keep_host_path_and_query() {
        let u = with_credentials(
            "postgres://admin:p@ss@db.example:5432/docket?sslmode=require",
            "docket_site_x",
            "s3",
        )
        .unwrap();
        assert_eq!(
            u,
            "postgres://docket_site_x:s3@db.example:5432/docket?sslmode=require"
        );
        let u = with_credentials("postgres://127.0.0.1:5/postgres", "r", "p").unwrap();
        assert_eq!(u, "postgres://r:p@127.0.0.1:5/postgres");
        assert!(with_credentials("127.0.0.1:5/postgres", "r", "p").is_err());
    }
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Partition 4 of an MBR image: (byte offset, byte length).
fn partition4(image: &Path) -> anyhow::Result<(u64, u64)> {
    use std::io::Read;
    let mut mbr = [0u8; 512];
    std::fs::File::open(image)
        .with_context(|| format!("cannot open {}", image.display()))?
        .read_exact(&mut mbr)
        .with_context(|| format!("{} is too short to be a disk image", image.display()))?;
    if mbr[510..512] != [0x55, 0xAA] {
        bail!("{} has no MBR partition table", image.display());
    }
    let e = &mbr[446 + 3 * 16..446 + 4 * 16];
    let le = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64;
    let (start, sectors) = (le(&e[8..12]), le(&e[12..16]));
    if e[4] == 0 || sectors == 0 {
        bail!(
            "{} has no partition 4 (the data partition)",
            image.display()
        );
    }
    let len = std::fs::metadata(image)?.len();
    if (start + sectors) * 512 > len {
        bail!(
            "partition 4 of {} runs past the end of the file",
            image.display()
        );
    }
    Ok((start * 512, sectors * 512))
}

fn image_configure(image: &Path, bundle_json: &str, key: &str) -> anyhow::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let (off, len) = partition4(image)?;
    let tmp = tempfile::tempdir()?;
    let part = tmp.path().join("data.ext4");
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .with_context(|| format!("cannot open {} for writing", image.display()))?;
    f.seek(SeekFrom::Start(off))?;
    let mut buf = vec![0u8; len as usize];
    f.read_exact(&mut buf)?;
    std::fs::write(&part, &buf)?;
    std::fs::write(tmp.path().join("site-bundle.json"), bundle_json)?;
    std::fs::write(tmp.path().join("site-key.pub"), key)?;
    let t = tmp.path().display();
    // `rm` of a file not there yet only prints an error; `write` refuses to overwrite.
    let script = format!(
        "mkdir docket\nrm docket/site-bundle.json\nrm docket/site-key.pub\nwrite {t}/site-bundle.json docket/site-bundle.json\nwrite {t}/site-key.pub docket/site-key.pub\n"
    );
    std::fs::write(tmp.path().join("cmds"), script)?;
    let o = std::process::Command::new("debugfs")
        .arg("-w")
        .arg("-f")
        .arg(tmp.path().join("cmds"))
        .arg(&part)
        .output()
        .context("cannot run debugfs: install e2fsprogs")?;
    if !o.status.success() {
        bail!(
            "debugfs failed on partition 4: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // Read back what debugfs wrote before touching the image.
    let o = std::process::Command::new("debugfs")
        .args(["-R", "cat docket/site-bundle.json"])
        .arg(&part)
        .output()?;
    if o.stdout != bundle_json.as_bytes() {
        bail!(
            "partition 4 is not an ext4 file system debugfs can write (read-back differs): {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let new = std::fs::read(&part)?;
    f.seek(SeekFrom::Start(off))?;
    f.write_all(&new)?;
    f.sync_all()?;
    Ok(())
}

#[derive(Serialize)]
struct Check {
    name: &'static str,
    ok: bool,
    /// What was found, and when not ok, what to do.
    says: String,
}

fn doctor(
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

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("docket: {e:#}");
            ExitCode::FAILURE
        }
    }
}
