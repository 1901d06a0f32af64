//! `docket cloud init`: head office's schema and this site's PostgreSQL role.

use std::path::Path;

use anyhow::Context;

use crate::out;
use crate::sitedir::{hex_of, read_site, write_site};

/// `partitions`: a new schema's per-site tables partitioned by site into that many each.
pub fn init(
    dir: &Path,
    admin_url: &str,
    partitions: Option<u32>,
    json: bool,
) -> anyhow::Result<()> {
    let mut s = read_site(dir)?;
    let password = hex_of(&rand::random::<[u8; 24]>());
    let (applied, role, partitions) = cloud_init(admin_url, &s.site_id, &password, partitions)?;
    let site_url = with_credentials(admin_url, &role, &password)?;
    s.postgres_url = Some(site_url);
    write_site(dir, &s)?;
    out(
        json,
        serde_json::json!({"applied": applied, "role": role, "partitions": partitions}),
        &format!(
            "head office ready{}: schema steps applied now: {}; role {role} (new password \
                     stored in site.toml); send it to the box with `docket site push` or \
                     `docket image configure`",
            partitions.map_or(String::new(), |n| format!(
                " (per-site tables partitioned {n} ways)"
            )),
            if applied.is_empty() {
                "none (already there)".to_owned()
            } else {
                applied.join(", ")
            }
        ),
    );
    Ok(())
}

/// Applies the cloud schema and creates (or re-keys) the site's role; returns (migrations
/// applied now, role name, how many partitions per table the schema has: None unpartitioned). The same code (`docket_cloud`) docketd's `uplink migrate` /
/// `site-role` run, with the default timeouts of docketd's `[uplink]`.
fn cloud_init(
    admin_url: &str,
    site: &str,
    password: &str,
    partitions: Option<u32>,
) -> anyhow::Result<(Vec<String>, String, Option<u32>)> {
    use docket_cloud::{SecretUrl, Timeouts};
    let url = SecretUrl::new(admin_url);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut client = docket_cloud::connect_as(&url, Timeouts::default(), "docket")
            .await
            .with_context(|| format!("cannot connect to head office at {}", url.redacted()))?;
        let applied = match partitions {
            None => docket_cloud::migrate(&mut client).await,
            Some(n) => docket_cloud::migrate_partitioned(&mut client, n).await,
        }
        .context("applying the cloud schema")?;
        let partitions = docket_cloud::partitions(&client).await?;
        let role = docket_cloud::create_site_role(&client, site, password)
            .await
            .context("creating the site's role")?;
        let applied: Vec<String> = applied.iter().map(|a| a.to_string()).collect();
        Ok((applied, role, partitions))
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
    use super::with_credentials;

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
