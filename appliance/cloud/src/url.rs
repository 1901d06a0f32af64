//! [`SecretUrl`]: a head office URL that may hold a password, shown with the password replaced.
//!
//! Owns the redaction only; which schemes a config accepts is the config's business.

/// A URL that may hold a password: shown with the password replaced, never in full.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn new(url: impl Into<String>) -> Self {
        SecretUrl(url.into())
    }
    /// The real URL, for the client library only.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// `scheme://user:***@host/…`: safe for logs.
    pub fn redacted(&self) -> String {
        let s = &self.0;
        let Some(scheme_end) = s.find("://") else {
            return "***".into();
        };
        let rest = &s[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        match rest[..authority_end].rfind('@') {
            Some(at) => {
                let user = rest[..at].split(':').next().unwrap_or("");
                format!(
                    "{}://{user}:***@{}",
                    &s[..scheme_end],
                    &rest[at + 1..].split(['?']).next().unwrap_or("")
                )
            }
            None => format!(
                "{}://{}",
                &s[..scheme_end],
                rest.split('?').next().unwrap_or("")
            ),
        }
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::SecretUrl;

    #[test]
    fn passwords_never_show() {
        let u = SecretUrl::new("postgres://site:s3cret@hq:5432/db?sslmode=require");
        assert_eq!(u.redacted(), "postgres://site:***@hq:5432/db");
        assert_eq!(format!("{u:?}"), "postgres://site:***@hq:5432/db");
        assert_eq!(SecretUrl::new("no scheme").redacted(), "***");
    }
}
