//! Where deliveries may go. By default nowhere inside: loopback, private (RFC 1918, IPv6
//! unique local), shared (carrier-grade NAT), link-local, unspecified, multicast and
//! reserved addresses are refused, checked on each address a host resolves to, which is
//! the address then connected to (a name that resolves differently the next time —
//! DNS rebinding — is checked again, on what it resolves to then). `--hook-allow-host`
//! entries let chosen targets through: exact host names, `*.example.com`, addresses and
//! CIDR blocks.

use std::net::IpAddr;
use std::str::FromStr;

use crate::server::forwarded::ProxyNet;

/// One `--hook-allow-host` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedHost {
    /// A host name exactly (lowercased).
    Name(String),
    /// `*.example.com`: any name below `example.com` (kept as `.example.com`).
    Below(String),
    /// An address or CIDR block the resolved address is in.
    Net(ProxyNet),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a host to allow (a name like hooks.example.com, *.example.com, an address like 127.0.0.1 or a CIDR block like 10.0.0.0/8)"
)]
pub struct AllowedHostError(String);

impl FromStr for AllowedHost {
    type Err = AllowedHostError;

    fn from_str(text: &str) -> Result<AllowedHost, AllowedHostError> {
        let trimmed = text.trim();
        let bad = || AllowedHostError(text.to_owned());
        if let Ok(net) = trimmed.parse::<ProxyNet>() {
            return Ok(AllowedHost::Net(net));
        }
        let (below, name) = match trimmed.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let valid = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !valid {
            return Err(bad());
        }
        Ok(if below {
            AllowedHost::Below(format!(".{name}"))
        } else {
            AllowedHost::Name(name)
        })
    }
}

impl std::fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AllowedHost::Name(name) => f.write_str(name),
            AllowedHost::Below(suffix) => write!(f, "*{suffix}"),
            AllowedHost::Net(net) => write!(f, "{net}"),
        }
    }
}

/// The allowed targets.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    allowed: Vec<AllowedHost>,
}

impl Targets {
    pub fn new(allowed: Vec<AllowedHost>) -> Targets {
        Targets { allowed }
    }

    fn name_allowed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        self.allowed.iter().any(|entry| match entry {
            AllowedHost::Name(name) => name == host,
            AllowedHost::Below(suffix) => host.ends_with(suffix.as_str()),
            AllowedHost::Net(_) => false,
        })
    }

    fn address_allowed(&self, ip: IpAddr) -> bool {
        self.allowed.iter().any(|entry| match entry {
            AllowedHost::Net(net) => net.contains(ip),
            _ => false,
        })
    }

    /// Whether a delivery to `host` may connect to `ip` (one of its addresses); the error
    /// says which rule refused it.
    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), String> {
        if self.name_allowed(host) || self.address_allowed(ip) {
            return Ok(());
        }
        match restricted(ip) {
            None => Ok(()),
            Some(what) => {
                // A name's internal address goes to the server's log only: the delivery
                // log is read by repository admins, who must not map the internal network
                // through it.
                let target = if host.parse::<IpAddr>().is_ok() {
                    format!("{ip}, {what} address")
                } else {
                    tracing::info!("webhooks: {host} resolves to {ip}, refused");
                    format!("{host} resolves to {what} address")
                };
                Err(format!(
                    "target refused: {target}; deliveries to internal addresses are refused unless forge serve --hook-allow-host allows them"
                ))
            }
        }
    }
}

/// What kind of internal address `ip` is, if it is one.
pub fn restricted(ip: IpAddr) -> Option<&'static str> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if a == 0 {
                Some("an unspecified")
            } else if v4.is_loopback() {
                Some("a loopback")
            } else if v4.is_private() {
                Some("a private")
            } else if a == 100 && (64..128).contains(&b) {
                Some("a shared (carrier-grade NAT)")
            } else if v4.is_link_local() {
                Some("a link-local")
            } else if v4.is_multicast() {
                Some("a multicast")
            } else if a >= 240 {
                Some("a reserved")
            } else if a == 192 && b == 0 && v4.octets()[2] == 0 {
                Some("an IETF protocol")
            } else if a == 198 && (b == 18 || b == 19) {
                Some("a benchmarking")
            } else if matches!(
                (a, b, v4.octets()[2]),
                (192, 0, 2) | (198, 51, 100) | (203, 0, 113)
            ) {
                Some("a documentation")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            if v6.is_unspecified() {
                Some("an unspecified")
            } else if v6.is_loopback() {
                Some("a loopback")
            } else if segments[0] & 0xfe00 == 0xfc00 {
                Some("a private (unique local)")
            } else if segments[0] & 0xffc0 == 0xfe80 {
                Some("a link-local")
            } else if segments[0] & 0xff00 == 0xff00 {
                Some("a multicast")
            } else if segments[0] & 0xffc0 == 0xfec0 {
                Some("a site-local")
            } else if segments[..2] == [0x2001, 0] {
                Some("a Teredo tunnel")
            } else if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
                || segments[..3] == [0x64, 0xff9b, 1]
                || segments[..6] == [0, 0, 0, 0, 0, 0]
            {
                // NAT64 (well-known and local-use prefixes) and IPv4-compatible addresses:
                // the IPv4 address in the last 32 bits decides.
                restricted(IpAddr::V4(embedded_v4(segments[6], segments[7])))
            } else if segments[0] == 0x2002 {
                // 6to4: the IPv4 address after the prefix decides.
                restricted(IpAddr::V4(embedded_v4(segments[1], segments[2])))
            } else {
                None
            }
        }
    }
}

fn embedded_v4(high: u16, low: u16) -> std::net::Ipv4Addr {
    let [a, b] = high.to_be_bytes();
    let [c, d] = low.to_be_bytes();
    std::net::Ipv4Addr::new(a, b, c, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        let targets = Targets::default();
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b:1::7f00:1",
            "::7f00:1",
            "2002:a9fe:a9fe::1",
            "2001:0:4136:e378::1",
            "fec0::1",
            "198.18.0.1",
            "192.0.2.1",
            "203.0.113.9",
            "224.0.0.1",
        ] {
            let error = targets.check("h", ip.parse().unwrap()).unwrap_err();
            assert!(error.contains("--hook-allow-host"), "{error}");
        }
        for ip in [
            "93.184.216.34",
            "2606:4700::1111",
            "8.8.8.8",
            "2002:808:808::1",
            "64:ff9b::808:808",
        ] {
            targets.check("h", ip.parse().unwrap()).unwrap();
        }
        let targets = Targets::new(vec![
            "127.0.0.1".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
            "hooks.internal".parse().unwrap(),
            "*.corp.example".parse().unwrap(),
        ]);
        targets.check("x", "127.0.0.1".parse().unwrap()).unwrap();
        targets.check("x", "10.9.9.9".parse().unwrap()).unwrap();
        assert!(targets.check("x", "127.0.0.2".parse().unwrap()).is_err());
        targets
            .check("hooks.internal", "192.168.0.1".parse().unwrap())
            .unwrap();
        targets
            .check("a.corp.example", "192.168.0.1".parse().unwrap())
            .unwrap();
        assert!(
            targets
                .check("corp.example", "192.168.0.1".parse().unwrap())
                .is_err()
        );
        let error = targets
            .check("localhost", "::1".parse().unwrap())
            .unwrap_err();
        assert!(
            error.starts_with("target refused: localhost resolves to a loopback address;"),
            "{error}"
        );
        assert!("*.".parse::<AllowedHost>().is_err());
        assert!("a b".parse::<AllowedHost>().is_err());
    }
}
