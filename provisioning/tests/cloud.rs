//! `docket cloud init` against a real PostgreSQL: the schema is applied, the site's role is
//! made, and site.toml then holds a URL that logs in as that role; a second run applies nothing
//! new and re-keys the role (the old password stops working).

use std::process::Command;

use docket_tests::servers::Postgres;

fn docket(args: &[&str]) -> anyhow::Result<(bool, String)> {
    let o = Command::new(env!("CARGO_BIN_EXE_docket"))
        .args(args)
        .output()?;
    Ok((
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    ))
}

/// `docket uplink set --dir DIR` with `flags`.
fn uplink_set(dir: &str, flags: &[&str]) -> anyhow::Result<(bool, String)> {
    let mut args = vec!["uplink", "set", "--dir", dir];
    args.extend_from_slice(flags);
    docket(&args)
}

/// `docket cloud init --json` that must succeed: its output and the parsed JSON.
/// `docket site init` of a new site in `dir`; it must succeed.
fn site_init(dir: &str, site_id: &str, name: &str) -> anyhow::Result<()> {
    let (ok, text) = docket(&[
        "site",
        "init",
        "--dir",
        dir,
        "--site-id",
        site_id,
        "--name",
        name,
    ])?;
    assert!(ok, "{text}");
    Ok(())
}

/// `docket cloud init --json` with `extra` flags: whether it succeeded, and what it printed.
fn cloud_init_with(dir: &str, admin_url: &str, extra: &[&str]) -> anyhow::Result<(bool, String)> {
    let mut args = vec![
        "cloud",
        "init",
        "--dir",
        dir,
        "--admin-url",
        admin_url,
        "--json",
    ];
    args.extend_from_slice(extra);
    docket(&args)
}

fn cloud_init(dir: &str, admin_url: &str) -> anyhow::Result<(String, serde_json::Value)> {
    let (ok, text) = cloud_init_with(dir, admin_url, &[])?;
    assert!(ok, "{text}");
    let v = serde_json::from_str(text.trim())?;
    Ok((text, v))
}

fn site_url(dir: &std::path::Path) -> anyhow::Result<String> {
    let t: toml::Value = toml::from_str(&std::fs::read_to_string(dir.join("site.toml"))?)?;
    Ok(t.get("postgres_url")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned())
}

async fn current_user(url: &str) -> anyhow::Result<String> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(client
        .query_one("SELECT current_user::text", &[])
        .await?
        .get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_init_makes_the_schema_and_a_role_the_site_can_log_in_as() -> anyhow::Result<()> {
    let pg = Postgres::start()?;
    let root = tempfile::tempdir()?;
    let dir = root.path().join("cafe");
    let dir_s = dir.to_str().unwrap_or("?");
    site_init(dir_s, "cafe-7", "Cafe")?;

    // Head office down: a clear error, site.toml untouched.
    let (ok, text) = docket(&[
        "cloud",
        "init",
        "--dir",
        dir_s,
        "--admin-url",
        "postgres://postgres:x@127.0.0.1:1/postgres",
    ])?;
    assert!(!ok, "{text}");
    assert!(text.contains("cannot connect to head office"), "{text}");
    assert_eq!(site_url(&dir)?, "");

    let (text, v) = cloud_init(dir_s, &pg.admin_url())?;
    assert_eq!(v["role"], "docket_site_cafe-7", "{text}");
    assert!(
        !v["applied"]
            .as_array()
            .map(|a| a.is_empty())
            .unwrap_or(true),
        "{text}"
    );
    let first = site_url(&dir)?;
    assert!(
        first.starts_with("postgres://docket_site_cafe-7:"),
        "{first}"
    );
    assert_eq!(current_user(&first).await?, "docket_site_cafe-7");

    // Again: nothing new to apply, a new password; the old one no longer logs in.
    let (text, v) = cloud_init(dir_s, &pg.admin_url())?;
    assert_eq!(v["applied"], serde_json::json!([]), "{text}");
    let second = site_url(&dir)?;
    assert_ne!(first, second);
    assert_eq!(current_user(&second).await?, "docket_site_cafe-7");
    assert!(
        current_user(&first).await.is_err(),
        "the old password still works"
    );

    // A plain-text uplink is refused unless the site says so (this test's servers have no
    // TLS), and nothing is saved ...
    let (ok, text) = uplink_set(dir_s, &["--postgres", &second])?;
    assert!(!ok, "{text}");
    assert!(text.contains("plain text"), "{text}");
    // ... `uplink set` tries the URLs live: a refused password saves nothing, ...
    let (ok, text) = uplink_set(dir_s, &["--postgres", &first, "--allow-plaintext"])?;
    assert!(!ok, "{text}");
    assert!(
        text.contains("postgres refused the login, nothing saved"),
        "{text}"
    );
    assert_eq!(site_url(&dir)?, second);
    // ... working ones are said to work, ...
    let redis = docket_tests::servers::Redis::start()?;
    let (ok, text) = uplink_set(
        dir_s,
        &[
            "--postgres",
            &second,
            "--redis",
            &redis.url(),
            "--allow-plaintext",
            "--json",
        ],
    )?;
    assert!(ok, "{text}");
    let v: serde_json::Value = serde_json::from_str(text.trim())?;
    assert_eq!(
        v["tried"],
        serde_json::json!({"postgres": "ok", "redis": "ok"}),
        "{text}"
    );
    // ... and one this laptop cannot reach is saved with a warning (the box may reach it).
    let (ok, text) = uplink_set(dir_s, &["--redis", "redis://127.0.0.1:1"])?;
    assert!(ok, "{text}");
    assert!(
        text.contains("redis: not reachable from this laptop"),
        "{text}"
    );
    assert!(std::fs::read_to_string(dir.join("site.toml"))?.contains("redis://127.0.0.1:1"));
    // A Redis Cluster is named by its nodes and tried as one; a node list that is not
    // host:port pairs is refused before anything is tried or saved.
    let mut cluster = docket_tests::servers::Redis::init_cluster()?;
    cluster.up()?;
    let (ok, text) = uplink_set(dir_s, &["--redis", &cluster.url(), "--json"])?;
    assert!(ok, "{text}");
    let v: serde_json::Value = serde_json::from_str(text.trim())?;
    assert_eq!(v["tried"]["redis"], "ok", "{text}");
    let (ok, text) = uplink_set(dir_s, &["--redis", "redis+cluster://127.0.0.1:1,nohost"])?;
    assert!(!ok && text.contains("host:port"), "{text}");
    assert!(std::fs::read_to_string(dir.join("site.toml"))?.contains(&cluster.url()));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_init_creates_a_partitioned_head_office_and_keeps_to_it() -> anyhow::Result<()> {
    let pg = Postgres::start()?;
    let root = tempfile::tempdir()?;
    let dir = root.path().join("bistro");
    let dir_s = dir.to_str().unwrap_or("?");
    site_init(dir_s, "bistro-1", "Bistro")?;
    let admin = pg.admin_url();
    let init = |extra: &[&str]| cloud_init_with(dir_s, &admin, extra);

    let (ok, text) = init(&["--partitions", "4"])?;
    assert!(ok, "{text}");
    let v: serde_json::Value = serde_json::from_str(text.trim())?;
    assert_eq!(v["partitions"], 4, "{text}");
    let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'docket.events'::regclass",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(n, 4);
    let url = site_url(&dir)?;
    assert_eq!(current_user(&url).await?, "docket_site_bistro-1");

    // Another count is refused, and site.toml keeps the role's password.
    let (ok, text) = init(&["--partitions", "8"])?;
    assert!(!ok, "{text}");
    assert!(text.contains("partitioned 4 ways, not 8"), "{text}");
    assert_eq!(site_url(&dir)?, url);
    // Without the flag the schema is migrated as it is, and says so.
    let (ok, text) = init(&[])?;
    assert!(ok, "{text}");
    let v: serde_json::Value = serde_json::from_str(text.trim())?;
    assert_eq!(
        (v["partitions"].clone(), v["applied"].clone()),
        (4.into(), serde_json::json!([])),
        "{text}"
    );
    Ok(())
}
