//! Reaching head office's PostgreSQL: the connection (rustls with the webpki roots when the
//! URL's sslmode asks for TLS), its timeouts, and the login check a technician runs.
//!
//! Owns the client's setup only; what is read or written over it is `schema`'s and `write`'s.

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use crate::{CloudError, SecretUrl};

/// How long connecting and each statement may take. A box on a slow link must give up and retry
/// rather than hang its relay; docketd's `[uplink]` sets both, the technician's CLI uses the
/// defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect_ms: u64,
    pub statement_ms: u64,
}

impl Timeouts {
    /// `[uplink] connect_timeout_ms`'s default.
    pub const CONNECT_MS: u64 = 5_000;
    /// `[uplink] statement_timeout_ms`'s default.
    pub const STATEMENT_MS: u64 = 30_000;
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect_ms: Self::CONNECT_MS,
            statement_ms: Self::STATEMENT_MS,
        }
    }
}

fn wants_tls(url: &str) -> bool {
    docket_core::bundle::postgres_wants_tls(url)
}

/// Connects (TLS with rustls and the webpki roots when the URL's sslmode asks for it), within
/// `t.connect_ms`, with `t.statement_ms` as the session's statement timeout.
pub async fn connect(url: &SecretUrl, t: Timeouts) -> Result<Client, CloudError> {
    connect_with(url, t, "docketd", None).await
}

/// As [`connect`], named `application` in head office's `pg_stat_activity` and logs (the
/// technician's `docket`, the fleet view), so a DBA can tell them from the relays. An
/// `application_name` in the URL wins over either name.
pub async fn connect_as(
    url: &SecretUrl,
    t: Timeouts,
    application: &str,
) -> Result<Client, CloudError> {
    connect_with(url, t, application, None).await
}

/// As [`connect`], LISTENing on `channel` (a constant such as [`crate::inbound::CHANNEL`] or
/// [`crate::central::CHANNEL`], never input): `notify` is woken by each NOTIFY this connection
/// receives. What the box's downlinks (inbound orders, menus) wait on.
pub async fn connect_listening(
    url: &SecretUrl,
    t: Timeouts,
    notify: Arc<tokio::sync::Notify>,
    channel: &str,
) -> Result<Client, CloudError> {
    let c = connect_with(url, t, "docketd", Some(notify)).await?;
    c.batch_execute(&format!("LISTEN {channel}")).await?;
    Ok(c)
}

async fn connect_with(
    url: &SecretUrl,
    t: Timeouts,
    application: &str,
    notify: Option<Arc<tokio::sync::Notify>>,
) -> Result<Client, CloudError> {
    // tokio-postgres knows sslmode disable/prefer/require; verify-* are require plus the
    // certificate checks rustls always does.
    let raw = url
        .expose()
        .replace("sslmode=verify-full", "sslmode=require")
        .replace("sslmode=verify-ca", "sslmode=require");
    let mut config: tokio_postgres::Config = raw.parse()?;
    let timeout = Duration::from_millis(t.connect_ms);
    config.connect_timeout(timeout);
    if config.get_application_name().is_none() {
        config.application_name(application);
    }
    config.options(format!("-c statement_timeout={}", t.statement_ms));
    let connecting = async {
        if wants_tls(url.expose()) {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(CloudError::Tls)?
            .with_root_certificates(roots)
            .with_no_client_auth();
            let connector = tokio_postgres_rustls::MakeRustlsConnect::new(tls);
            let (client, conn) = config.connect(connector).await?;
            tokio::spawn(drive(conn, notify));
            Ok(client)
        } else {
            let (client, conn) = config.connect(NoTls).await?;
            tokio::spawn(drive(conn, notify));
            Ok(client)
        }
    };
    tokio::time::timeout(timeout, connecting)
        .await
        .map_err(|_| CloudError::ConnectTimeout(timeout))?
}

/// Logs in and runs `SELECT 1`: what `docket uplink set` tries from the technician's laptop.
pub async fn probe(url: &SecretUrl, t: Timeouts) -> Result<(), CloudError> {
    let client = connect(url, t).await?;
    client.simple_query("SELECT 1").await?;
    Ok(())
}

/// Runs a connection's I/O until it ends; each notification wakes `notify`.
async fn drive<S, T>(
    mut conn: tokio_postgres::Connection<S, T>,
    notify: Option<Arc<tokio::sync::Notify>>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match std::future::poll_fn(|cx| conn.poll_message(cx)).await {
            Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => {
                if let Some(n) = &notify {
                    n.notify_one();
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                tracing::debug!(error = %e, "PostgreSQL connection ended");
                return;
            }
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_only_when_the_url_asks() {
        assert!(wants_tls("postgres://u:p@h/db?sslmode=require"));
        assert!(wants_tls("postgres://u:p@h/db?x=1&sslmode=verify-full"));
        assert!(!wants_tls("postgres://u:p@h/db"));
        assert!(!wants_tls("postgres://u:p@h/db?sslmode=disable"));
    }
}
