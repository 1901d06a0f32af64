//! docket-trust: the site's trust on the LAN, shared by the box (`docketd`) and the technician's
//! CLI (`docket`), so that both make, check and judge certificates with the same code.
//!
//! - [`ca`]: the site CA and the certificates it issues (rcgen);
//! - [`material`]: a site bundle's TLS material checked as the box will use it ([`check_tls`]);
//! - [`verify`]: the one rustls `ServerCertVerifier`; a client says only how it judges the
//!   chain ([`verify::ChainCheck`]);
//! - [`clock`]: the wall clock, as certificates and bundles are stamped by it.
//!
//! Owns no files, sockets or listeners: the box loads and serves, the CLI reads and writes the
//! site directory. Must not depend on the daemon crate.

pub mod ca;
pub mod clock;
pub mod material;
pub mod verify;

pub use material::{check_tls, TlsError};
