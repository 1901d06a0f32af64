//! A network namespace of its own for a daemon, reached over a veth pair (`ip netns`). Owns the
//! namespace and the veth pair and deletes them on drop; knows nothing of docketd.

use std::process::{Command, Stdio};

/// A network namespace of its own for a daemon, reached over a veth pair: clients cross a real
/// interface instead of loopback. Deleted (with the veth pair) on drop.
#[derive(Debug)]
pub(crate) struct Netns {
    pub(crate) name: String,
    /// The veth end on this side: the LAN a listener on it sees.
    pub(crate) host_if: String,
}

impl Netns {
    /// Creates the namespace and the veth pair; `None` where this machine cannot (not root, no
    /// `ip`, no netns support).
    pub(crate) fn create() -> Option<(Netns, std::net::Ipv4Addr)> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pid = std::process::id();
        let name = format!("docket-{pid}-{n}");
        let (a, b) = (
            format!("dk{}a{n}", pid % 100_000),
            format!("dk{}b{n}", pid % 100_000),
        );
        let net = [10u8, 200 + (pid % 50) as u8, (n % 64 * 4) as u8];
        let host_ip = format!("{}.{}.{}.{}", net[0], net[1], net[2], 1);
        let box_ip = std::net::Ipv4Addr::new(net[0], net[1], net[2], 2);
        let ns = Netns {
            name,
            host_if: a.clone(),
        };
        let ip = |args: &[&str]| {
            Command::new("ip")
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let ok = ip(&["netns", "add", &ns.name])
            && ip(&["link", "add", &a, "type", "veth", "peer", "name", &b])
            && ip(&["link", "set", &b, "netns", &ns.name])
            && ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &a])
            && ip(&["link", "set", &a, "up"])
            && ip(&[
                "-n",
                &ns.name,
                "addr",
                "add",
                &format!("{box_ip}/30"),
                "dev",
                &b,
            ])
            && ip(&["-n", &ns.name, "link", "set", &b, "up"])
            && ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        if !ok {
            let _ = ip(&["link", "del", &a]);
            return None;
        }
        Some((ns, box_ip))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}
