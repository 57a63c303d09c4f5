//! Who a request is from and how it reached us, when a reverse proxy stands in front.
//!
//! Only a connection from a trusted proxy (`--trusted-proxy ADDR_OR_CIDR`) has its
//! forwarding headers believed: `Forwarded` (RFC 7239) when present, otherwise
//! `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host`. The client is the
//! rightmost hop of the chain that is not itself a trusted proxy (hops to its left were
//! written by whoever the client is, and prove nothing). Any other connection is taken as
//! it is: its TCP peer, the scheme it spoke, its `Host` header.
//!
//! The result, a [`Client`], is put on every request by the accept loop: the log line and
//! the per-caller limits use its address, and absolute URLs the server writes (`Link`
//! headers) are built by [`Client::url`].

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

/// A trusted proxy: one address, or a block of them (`10.0.0.0/8`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyNet {
    addr: IpAddr,
    prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{given:?} is not an address or CIDR block (like 127.0.0.1, ::1, 10.0.0.0/8 or fd00::/8): {why}"
)]
pub struct ProxyNetError {
    given: String,
    why: &'static str,
}

impl FromStr for ProxyNet {
    type Err = ProxyNetError;

    fn from_str(text: &str) -> Result<ProxyNet, ProxyNetError> {
        let bad = |why| ProxyNetError {
            given: text.to_owned(),
            why,
        };
        let trimmed = text.trim();
        let (addr, prefix) = match trimmed.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (trimmed, None),
        };
        let addr: IpAddr = addr
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| bad("not an IP address"))?;
        let addr = addr.to_canonical();
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(prefix) => match prefix.parse::<u8>() {
                Ok(n) if n <= bits => n,
                _ => return Err(bad("the prefix length is out of range")),
            },
        };
        Ok(ProxyNet {
            addr: mask(addr, prefix),
            prefix,
        })
    }
}

impl std::fmt::Display for ProxyNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// `addr` with every bit past `prefix` cleared.
fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let kept = if prefix == 0 {
                0
            } else {
                bits & (u32::MAX << (32 - u32::from(prefix)))
            };
            IpAddr::V4(kept.into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let kept = if prefix == 0 {
                0
            } else {
                bits & (u128::MAX << (128 - u32::from(prefix)))
            };
            IpAddr::V6(kept.into())
        }
    }
}

impl ProxyNet {
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        addr.is_ipv4() == self.addr.is_ipv4() && mask(addr, self.prefix) == self.addr
    }
}

/// The proxies whose forwarding headers are believed (none by default).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<ProxyNet>);

/// The scheme the client spoke to the server (or to the proxy in front of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// Who a request is from, as far as the server can tell, and the scheme and host it used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The client's address: the TCP peer, or what a trusted proxy said.
    pub addr: IpAddr,
    pub scheme: Scheme,
    /// `host[:port]` the client asked for (checked to be a plain authority).
    pub host: String,
    /// Whether a trusted proxy's headers were used.
    pub forwarded: bool,
}

impl Client {
    /// The absolute URL of `path` (which starts with `/`) as the client reaches it.
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme.as_str(), self.host)
    }
}

/// How the connection a request came on looks.
#[derive(Debug, Clone, Copy)]
pub struct Connection {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub tls: bool,
}

impl TrustedProxies {
    pub fn new(nets: Vec<ProxyNet>) -> TrustedProxies {
        TrustedProxies(nets)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The trusted blocks, for the log.
    pub fn describe(&self) -> String {
        let nets: Vec<String> = self.0.iter().map(ProxyNet::to_string).collect();
        nets.join(", ")
    }

    pub fn trusts(&self, addr: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(addr))
    }

    /// The client of a request that came on `connection` with `headers`.
    pub fn client(&self, connection: Connection, headers: &HeaderMap) -> Client {
        let own_scheme = if connection.tls {
            Scheme::Https
        } else {
            Scheme::Http
        };
        let own_host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .filter(|h| is_authority(h))
            .map_or_else(|| connection.local.to_string(), str::to_owned);
        let direct = Client {
            addr: connection.peer.ip().to_canonical(),
            scheme: own_scheme,
            host: own_host,
            forwarded: false,
        };
        if !self.trusts(connection.peer.ip()) {
            return direct;
        }
        let hops = if headers.contains_key(header::FORWARDED) {
            forwarded_hops(headers)
        } else {
            x_forwarded_hops(headers)
        };
        let Some(hops) = hops else {
            return direct;
        };
        // From the nearest hop outwards: the first one that is not a trusted proxy is the
        // client. A hop that is no address (`unknown`, obfuscated, garbage) ends the walk:
        // the last address known is the best there is.
        let mut client = direct.clone();
        client.forwarded = true;
        for hop in hops.iter().rev() {
            if let Some(scheme) = hop.proto {
                client.scheme = scheme;
            }
            if let Some(host) = &hop.host {
                client.host = host.clone();
            }
            let Some(addr) = hop.addr else {
                break;
            };
            client.addr = addr;
            if !self.trusts(addr) {
                break;
            }
        }
        client
    }
}

/// One hop of a forwarding chain: the address a proxy received the request from, and the
/// scheme and host it was asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Hop {
    addr: Option<IpAddr>,
    proto: Option<Scheme>,
    host: Option<String>,
}

/// Headers past this many hops are not believed at all (they are no real chain).
const MAX_HOPS: usize = 32;

/// The hops of `X-Forwarded-For`, left to right. `X-Forwarded-Proto` and
/// `X-Forwarded-Host` are believed in their rightmost values (what the nearest proxy
/// wrote), so they go with the nearest hop, which the walk always reaches.
fn x_forwarded_hops(headers: &HeaderMap) -> Option<Vec<Hop>> {
    let proto = last_value(headers, "x-forwarded-proto").and_then(|p| scheme(&p));
    let host = last_value(headers, "x-forwarded-host").filter(|h| is_authority(h));
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let value = value.to_str().ok()?;
        for item in value.split(',') {
            hops.push(Hop {
                addr: node_addr(item.trim()),
                ..Hop::default()
            });
            if hops.len() > MAX_HOPS {
                return None;
            }
        }
    }
    if hops.is_empty() {
        // Proto and host alone (a proxy that does not send X-Forwarded-For).
        if proto.is_none() && host.is_none() {
            return None;
        }
        hops.push(Hop::default());
    }
    if let Some(nearest) = hops.last_mut() {
        nearest.proto = proto;
        nearest.host = host;
    }
    Some(hops)
}

/// The rightmost comma-separated value of every `name` header.
fn last_value(headers: &HeaderMap, name: &str) -> Option<String> {
    let last = headers.get_all(name).into_iter().next_back()?;
    let last = last.to_str().ok()?;
    let value = last.rsplit(',').next()?.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// The hops of RFC 7239 `Forwarded` headers, left to right, each with its own `proto`
/// and `host`.
fn forwarded_hops(headers: &HeaderMap) -> Option<Vec<Hop>> {
    let mut hops = Vec::new();
    for value in headers.get_all(header::FORWARDED) {
        let value = value.to_str().ok()?;
        for element in split_outside_quotes(value, ',') {
            let mut hop = Hop::default();
            for pair in split_outside_quotes(element, ';') {
                let Some((key, value)) = pair.split_once('=') else {
                    continue;
                };
                let value = unquote(value.trim());
                match key.trim().to_ascii_lowercase().as_str() {
                    "for" => hop.addr = node_addr(&value),
                    "proto" => hop.proto = scheme(&value),
                    "host" => hop.host = Some(value).filter(|h| is_authority(h)),
                    _ => {}
                }
            }
            hops.push(hop);
            if hops.len() > MAX_HOPS {
                return None;
            }
        }
    }
    (!hops.is_empty()).then_some(hops)
}

/// `text` split at `separator`s that are not inside a quoted string.
fn split_outside_quotes(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// A `quoted-string`'s content (backslash escapes resolved), or a token as it is.
fn unquote(text: &str) -> String {
    let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else {
        return text.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The address of a node: `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]`,
/// `[2001:db8::1]:4711` or a bare IPv6 address; `None` for `unknown`, obfuscated names and
/// anything else.
fn node_addr(node: &str) -> Option<IpAddr> {
    if let Ok(addr) = node.parse::<IpAddr>() {
        return Some(addr.to_canonical());
    }
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Some(addr.ip().to_canonical());
    }
    let inner = node.strip_prefix('[')?.strip_suffix(']')?;
    inner.parse::<IpAddr>().ok().map(|a| a.to_canonical())
}

fn scheme(text: &str) -> Option<Scheme> {
    if text.eq_ignore_ascii_case("https") {
        Some(Scheme::Https)
    } else if text.eq_ignore_ascii_case("http") {
        Some(Scheme::Http)
    } else {
        None
    }
}

/// Whether `text` is a plain `host[:port]` (letters, digits, `.-_:[]`), safe to write into
/// a URL and a header.
fn is_authority(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 255
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:[]".contains(&b))
}

/// Handlers take the request's `Client` like any extractor; the accept loop always puts
/// one on the request, and without it (a router driven by hand) it is the `Host` header's.
impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Client, Self::Rejection> {
        if let Some(client) = parts.extensions.get::<Client>() {
            return Ok(client.clone());
        }
        let unknown = SocketAddr::from(([127, 0, 0, 1], 0));
        Ok(TrustedProxies::default().client(
            Connection {
                peer: unknown,
                local: unknown,
                tls: false,
            },
            &parts.headers,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|p| p.parse().unwrap()).collect())
    }

    fn connection(peer: &str) -> Connection {
        Connection {
            peer: SocketAddr::new(peer.parse().unwrap(), 40000),
            local: "127.0.0.1:8080".parse().unwrap(),
            tls: false,
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn nets_parse_and_match() {
        let net: ProxyNet = "10.1.2.3/8".parse().unwrap();
        assert_eq!(net.to_string(), "10.0.0.0/8");
        assert!(net.contains("10.200.0.1".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        // IPv4-mapped IPv6 peers are their IPv4 address.
        assert!(net.contains("::ffff:10.0.0.1".parse().unwrap()));
        let one: ProxyNet = "::1".parse().unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        assert!(!one.contains("127.0.0.1".parse().unwrap()));
        let all: ProxyNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("192.0.2.1".parse().unwrap()));
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "example.com",
            "10.0.0.0/x",
            "1.2.3",
        ] {
            let error = bad.parse::<ProxyNet>().unwrap_err().to_string();
            assert!(error.contains("is not an address or CIDR block"), "{error}");
        }
    }

    #[test]
    fn untrusted_peers_headers_are_ignored() {
        let h = headers(&[
            ("host", "forge.local:8080"),
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.example"),
        ]);
        let client = proxies(&["10.0.0.0/8"]).client(connection("192.0.2.7"), &h);
        assert_eq!(
            client,
            Client {
                addr: "192.0.2.7".parse().unwrap(),
                scheme: Scheme::Http,
                host: "forge.local:8080".into(),
                forwarded: false,
            }
        );
        assert_eq!(client.url("/x"), "http://forge.local:8080/x");
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = proxies(&["127.0.0.1", "10.0.0.0/8"]);
        // The client wrote a lie on the left; the proxies appended what they saw.
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1, 203.0.113.9"),
            ("x-forwarded-for", "10.0.0.5"),
            ("x-forwarded-proto", "http, https"),
            ("x-forwarded-host", "forge.example.com"),
        ]);
        let client = trusted.client(connection("127.0.0.1"), &h);
        assert_eq!(client.addr, "203.0.113.9".parse::<IpAddr>().unwrap());
        assert_eq!(client.scheme, Scheme::Https);
        assert_eq!(client.url("/a"), "https://forge.example.com/a");
        assert!(client.forwarded);
        // Every hop trusted: the leftmost one is the best there is.
        let h = headers(&[("x-forwarded-for", "10.0.0.1, 10.0.0.2")]);
        let client = trusted.client(connection("127.0.0.1"), &h);
        assert_eq!(client.addr, "10.0.0.1".parse::<IpAddr>().unwrap());
        // Garbage stops the walk at the last address known.
        let h = headers(&[("x-forwarded-for", "not-an-address, 10.0.0.3")]);
        let client = trusted.client(connection("127.0.0.1"), &h);
        assert_eq!(client.addr, "10.0.0.3".parse::<IpAddr>().unwrap());
        // A host that is no plain authority is not used.
        let h = headers(&[("host", "127.0.0.1:8080"), ("x-forwarded-host", "a b\">")]);
        let client = trusted.client(connection("127.0.0.1"), &h);
        assert_eq!(client.host, "127.0.0.1:8080");
    }

    #[test]
    fn rfc_7239_forwarded_is_read() {
        let trusted = proxies(&["127.0.0.1"]);
        let h = headers(&[
            (
                "forwarded",
                "for=192.0.2.60;proto=http, for=\"[2001:db8:cafe::17]:4711\";proto=https;host=\"git.example.org\"",
            ),
            // Ignored when Forwarded is there.
            ("x-forwarded-for", "198.51.100.1"),
        ]);
        let client = trusted.client(connection("127.0.0.1"), &h);
        assert_eq!(client.addr, "2001:db8:cafe::17".parse::<IpAddr>().unwrap());
        assert_eq!(client.url("/"), "https://git.example.org/");
        let h = headers(&[("forwarded", "for=unknown;proto=https")]);
        let client = trusted.client(connection("127.0.0.1"), &h);
        assert_eq!(client.addr, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(client.scheme, Scheme::Https);
    }

    #[test]
    fn endless_chains_are_not_believed() {
        let trusted = proxies(&["127.0.0.1"]);
        let long = vec!["192.0.2.1"; MAX_HOPS + 1].join(",");
        let h = headers(&[("x-forwarded-for", &long)]);
        let client = trusted.client(connection("127.0.0.1"), &h);
        assert_eq!(client.addr, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert!(!client.forwarded);
    }
}
