//! The names and addresses the box's certificate carries: `docket.local`, its hostname (and
//! `<hostname>.local`), `localhost`, the names a site adds, and every address of every
//! interface, loopback included. Looked at again every minute: an address DHCP hands out anew
//! gets a new certificate.

use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
}

/// A name a certificate can carry (RFC 1123 labels); hostnames with `_` are left out.
pub(crate) fn dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn hostname() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let h = h.trim().to_ascii_lowercase();
    dns_name(&h).then_some(h)
}

impl Names {
    /// What the box is called and reachable at now.
    pub fn now(extra: &[String]) -> Names {
        let mut dns = vec!["docket.local".to_owned()];
        if let Some(h) = hostname() {
            dns.push(format!("{h}.local"));
            dns.push(h);
        }
        dns.push("localhost".into());
        dns.extend(extra.iter().map(|n| n.to_ascii_lowercase()));
        dns.retain(|n| dns_name(n));
        let mut seen = std::collections::HashSet::new();
        dns.retain(|n| seen.insert(n.clone()));
        let mut ips: Vec<IpAddr> = if_addrs::get_if_addrs()
            .map(|a| a.into_iter().map(|i| i.ip()).collect())
            .unwrap_or_default();
        ips.push(IpAddr::from([127, 0, 0, 1]));
        // Link-local IPv6 addresses carry a zone a certificate cannot name.
        ips.retain(|ip| match ip {
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80,
            IpAddr::V4(_) => true,
        });
        ips.sort();
        ips.dedup();
        Names { dns, ips }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_a_certificate_can_carry() {
        assert!(dns_name("docket.local"));
        assert!(dns_name("box-1"));
        assert!(!dns_name("my_box"));
        assert!(!dns_name("-x"));
        assert!(!dns_name("a..b"));
        let n = Names::now(&["Kitchen.Example.com".into(), "bad name".into()]);
        assert_eq!(n.dns[0], "docket.local");
        assert!(n.dns.contains(&"kitchen.example.com".to_owned()));
        assert!(!n.dns.iter().any(|d| d.contains(' ')));
        assert!(n.ips.contains(&IpAddr::from([127, 0, 0, 1])));
    }
}
