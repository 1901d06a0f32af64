//! `docket site …` and `docket uplink set`: the site directory's commands, and putting its
//! bundle on a box (install into a data directory, or push over the LAN).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use docket_core::bundle::{self, Bundle};

use crate::lan::{Addr, Link, Trust};
use crate::out;
use crate::sitedir::{
    hex_of, make_private_dir, new_bundle, read_site, site_ca, write_private, write_secret,
    write_site, SiteFile,
};
use crate::sitetls;

pub fn init(
    dir: PathBuf,
    site_id: String,
    name: String,
    manager_id: String,
    json: bool,
) -> anyhow::Result<()> {
    if !docket_core::menu::valid_name(&site_id) {
        bail!(
            "site id {site_id:?} is not valid: use 1-32 of lowercase letters, digits, '-' and '_'"
        );
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
    let (ca, _) = sitetls::ensure_ca(&dir, &read_site(&dir)?)?;
    let fp = sitetls::cert_info(&ca.cert_pem)?.fingerprint;
    let pubhex = bundle::key_text(key.verifying_key().as_bytes());
    out(
        json,
        serde_json::json!({"site_id": site_id, "dir": dir, "public_key": pubhex.trim(), "manager_id": manager_id, "ca_fingerprint": fp}),
        &format!("site {site_id} created in {d}\n  signing key: {d}/site.key (keep it secret, back it up)\n  public key:  {}\n  manager device for `docket pair`: {manager_id} (its secret is in site.toml; every bundle gives it to the box)\n  site CA:     {d}/{} (tablets and screens trust it; its key {d}/{} is secret: back it up)\n               SHA-256 {fp}", pubhex.trim(), sitetls::CA_CERT, sitetls::CA_KEY, d = dir.display()),
    );
    Ok(())
}

/// `docket site ca`: the site CA as a technician compares it with a tablet's screen.
pub fn ca(dir: &Path, json: bool) -> anyhow::Result<()> {
    let (ca, made) = sitetls::ensure_ca(dir, &read_site(dir)?)?;
    let info = sitetls::cert_info(&ca.cert_pem)?;
    let own = sitetls::read_own(dir)?
        .map(|(chain, _)| sitetls::cert_info(&chain))
        .transpose()?;
    let file = dir.join(sitetls::CA_CERT);
    let mut human = format!(
        "{}site CA: {}\n  SHA-256 {}\n  {} (install it on tablets and screens; valid until {})",
        if made { "made a new " } else { "" },
        info.subject,
        info.fingerprint,
        file.display(),
        info.not_after
    );
    if made {
        human.push_str("\n  the box gets it with the next bundle (`docket site push`, `site install` or `image configure`)");
    }
    if let Some(o) = &own {
        human.push_str(&format!(
            "\nthe site's own certificate (the box serves it): {} for {}, valid until {} ({} days)",
            o.subject,
            o.names.join(", "),
            o.not_after,
            o.days_left()
        ));
    }
    out(
        json,
        serde_json::json!({
            "made": made, "file": file, "fingerprint": info.fingerprint, "subject": info.subject,
            "not_after": info.not_after,
            "own_cert": own.map(|o| serde_json::json!({"subject": o.subject, "names": o.names, "not_after": o.not_after, "fingerprint": o.fingerprint})),
        }),
        &human,
    );
    Ok(())
}

/// `docket site tls`: records (or with `None` forgets) the site's own certificate.
pub fn tls(dir: &Path, files: Option<(PathBuf, PathBuf)>, json: bool) -> anyhow::Result<()> {
    read_site(dir)?;
    let read = |p: &Path| {
        std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
    };
    let own = match &files {
        Some((c, k)) => Some((read(c)?, read(k)?)),
        None => None,
    };
    match sitetls::record_own(dir, own)? {
        Some(leaf) => out(
            json,
            serde_json::json!({"own_cert": true, "names": leaf.names, "not_after": leaf.not_after, "fingerprint": leaf.fingerprint}),
            &format!(
                "the site's own certificate recorded: {} for {}, valid until {} ({} days). Send it to the box with `docket site push`; tablets then open the box by one of those names, and this CLI trusts the public CAs for it. Renew it before it expires and run this again",
                leaf.subject,
                leaf.names.join(", "),
                leaf.not_after,
                leaf.days_left()
            ),
        ),
        None => out(
            json,
            serde_json::json!({"own_cert": false}),
            "the site's own certificate forgotten: with the next bundle (`docket site push`) the box serves one from the site CA again",
        ),
    }
    Ok(())
}

pub fn bundle(dir: &Path, json: bool) -> anyhow::Result<()> {
    let (_, b) = new_bundle(dir)?;
    out(
        json,
        serde_json::json!({"serial": b.serial, "file": dir.join("site-bundle.json")}),
        &format!(
            "bundle serial {} written to {}",
            b.serial,
            dir.join("site-bundle.json").display()
        ),
    );
    Ok(())
}

pub fn install(dir: &Path, data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let (bjson, b) = new_bundle(dir)?;
    std::fs::create_dir_all(data_dir)
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
    Ok(())
}

/// `docket site push`: a new bundle to a running box, over HTTPS checked against the site CA
/// (`box_ca`: also under the box's own CA of that fingerprint, for a box that has not had this
/// site's CA yet).
pub fn push(dir: &Path, host: &str, box_ca: Option<&str>, json: bool) -> anyhow::Result<()> {
    let addr = Addr::parse(host)?;
    // Before anything is signed: the bundle holds the site's secrets.
    addr.require_https("the site bundle")?;
    site_ca(dir, &read_site(dir)?)?;
    let mut trust = Trust::of_site(dir)?;
    if let Some(fp) = box_ca {
        trust = trust.and_box_ca(fp)?;
    }
    let link = Link::new(addr, trust)?;
    // The box's certificate is checked before anything is signed: a push that cannot go does
    // not use up a serial.
    if let Err(e @ ureq::Error::Transport(_)) = link.public().get(&link.url("/healthz")).call() {
        bail!("nothing sent: {}", link.failure(&e));
    }
    let (bjson, b) = new_bundle(dir)?;
    let url = link.url("/site/bundle");
    match link
        .secret("the site bundle")?
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
        Err(e) => bail!("bundle serial {} not sent: {}", b.serial, link.failure(&e)),
    }
    Ok(())
}

/// `docket uplink set`: what to change in site.toml.
pub struct UplinkChange {
    pub postgres: Option<String>,
    pub redis: Option<String>,
    pub no_check: bool,
    pub allow_plaintext: bool,
    pub require_tls: bool,
}

pub fn uplink_set(dir: &Path, c: UplinkChange, json: bool) -> anyhow::Result<()> {
    let UplinkChange {
        postgres,
        redis,
        no_check,
        allow_plaintext,
        require_tls,
    } = c;
    let mut s = read_site(dir)?;
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
    if let Some(u) = &s.redis_url {
        // A cluster's node list is read here, not first on the box.
        docket_cloud::redis::Target::parse(&docket_cloud::SecretUrl::new(u))?;
    }
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
    write_site(dir, &s)?;
    lines.push(
        "uplink saved in site.toml; send it to the box with `docket site push --dir DIR HOST`"
            .into(),
    );
    out(
        json,
        serde_json::json!({"postgres": s.postgres_url.is_some(), "redis": s.redis_url.is_some(), "tried": tried}),
        &lines.join("\n"),
    );
    Ok(())
}

/// Tries each configured uplink URL: (target, Ok or Err((refused, message))).
#[allow(clippy::type_complexity)]
fn probe_uplink(s: &SiteFile) -> anyhow::Result<Vec<(&'static str, Result<(), (bool, String)>)>> {
    use docket_cloud::{SecretUrl, Timeouts};
    // The laptop waits as long as a box with the default `[uplink]` would.
    let t = Timeouts::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut out = Vec::new();
    if let Some(u) = &s.postgres_url {
        let r = rt.block_on(docket_cloud::probe(&SecretUrl::new(u), t));
        out.push(("postgres", r.map_err(|e| (e.is_refusal(), e.to_string()))));
    }
    if let Some(u) = &s.redis_url {
        let r = rt.block_on(docket_cloud::redis::probe(&SecretUrl::new(u), t));
        out.push(("redis", r.map_err(|e| (e.is_refusal(), e.to_string()))));
    }
    Ok(out)
}
