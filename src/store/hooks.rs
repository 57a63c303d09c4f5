//! Webhooks as plain data: a hook (where to, with which secret, for which event types), the
//! deliveries the server makes of each event to it, and each delivery's attempts. Stored in
//! the registry (`HookStore`, implemented beside `RedbRegistry`); the server's worker
//! (`server/hooks/`) queues and sends them. The rules a hook's fields follow are checked
//! here, once, for every way a hook is made or changed.

use serde::{Deserialize, Serialize};

use super::StoreError;
use super::events::{Actor, Event, parse_types};

/// Whose events a hook gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookScope {
    /// One repository's, by its registry id (a repository deleted takes its hooks along;
    /// one created again under the same name is a new id, with none).
    Repo(u64),
    /// Every event of the data directory: every repository's and the registry's.
    Site,
}

/// A hook as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hook {
    /// Assigned by the store; never reused.
    pub id: u64,
    pub scope: HookScope,
    /// The repository's name (`owner/name`) of a repository's hook.
    pub repo: Option<String>,
    /// `http://` or `https://`, checked by [`check_url`].
    pub url: String,
    /// The HMAC-SHA256 key of `X-Forge-Signature-256`; none: deliveries are not signed.
    /// Write-only: never shown.
    pub secret: Option<String>,
    /// The event types it gets; empty: every type.
    pub events: Vec<String>,
    pub active: bool,
    /// The identity that made it: its hooks deliver only while it is present and enabled.
    /// None for the operator's (`forge hook add` on the data directory).
    pub created_by: Option<String>,
    /// The incarnation `created_by` had when it made the hook: an identity added later under
    /// the same name does not inherit it. None: not recorded (the identity's current one).
    #[serde(default)]
    pub creator_incarnation: Option<u64>,
    /// Milliseconds since the epoch.
    pub created_at: u64,
    pub updated_at: u64,
    /// The last event sequence number considered for it (queued or skipped): it follows
    /// the log from here.
    pub cursor: u64,
}

impl Hook {
    /// Whether it wants events of type `kind`.
    pub fn wants(&self, kind: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|t| t == kind)
    }
}

/// What a new hook is made of (the store assigns the id and the cursor).
#[derive(Debug, Clone)]
pub struct NewHook {
    pub scope: HookScope,
    pub repo: Option<String>,
    pub url: String,
    pub secret: Option<String>,
    pub events: Vec<String>,
    pub active: bool,
    pub created_by: Option<String>,
    pub creator_incarnation: Option<u64>,
}

/// A change to a hook: each field given replaces the stored one.
#[derive(Debug, Clone, Default)]
pub struct HookChange {
    pub url: Option<String>,
    /// `Some(None)` removes the secret.
    pub secret: Option<Option<String>>,
    pub events: Option<Vec<String>>,
    pub active: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not yet sent, or to be tried again (`next_attempt_at`).
    Pending,
    /// A 2xx answer.
    Delivered,
    /// Every attempt failed.
    Failed,
}

/// One try at sending a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attempt {
    /// When it started, milliseconds since the epoch.
    pub at: u64,
    pub duration_ms: u64,
    /// The receiver's HTTP status; none when no answer came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it failed without an answer (a refused target, a connection error, a timeout),
    /// or why the answer counts as a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The first bytes of the receiver's answer (at most 4 KiB, lossy UTF-8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    /// Which chain of attempts it belongs to: 0 for the first, one more per redelivery.
    pub chain: u32,
}

/// One event's delivery to one hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Unique in the data directory (`X-Forge-Delivery`); the same for every attempt and
    /// redelivery.
    pub id: u64,
    pub hook: u64,
    /// The event, as the log has it (the body is made from it, the same bytes each time).
    pub event: Event,
    pub state: DeliveryState,
    pub attempts: Vec<Attempt>,
    /// Milliseconds since the epoch: when it was queued, and when its next attempt is due.
    pub created_at: u64,
    pub next_attempt_at: u64,
    /// Redeliveries asked for (the current chain).
    pub chain: u32,
}

/// Attempts a delivery keeps in its log (the oldest go first).
pub const MAX_ATTEMPTS_KEPT: usize = 50;
/// Deliveries a hook keeps in its log: past it the oldest finished ones are dropped.
pub const MAX_DELIVERIES_KEPT: usize = 1000;
/// Hooks one repository (or the site) may have.
pub const MAX_HOOKS_PER_SCOPE: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{0}")]
    Invalid(String),
    #[error("hook {0} does not exist")]
    NotFound(u64),
    #[error("delivery {delivery} of hook {hook} does not exist")]
    DeliveryNotFound { hook: u64, delivery: u64 },
    #[error("{0}")]
    TooMany(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl HookError {
    pub fn code(&self) -> &'static str {
        match self {
            HookError::Invalid(_) => "invalid_hook",
            HookError::NotFound(_) => "hook_not_found",
            HookError::DeliveryNotFound { .. } => "delivery_not_found",
            HookError::TooMany(_) => "too_many_hooks",
            HookError::Store(e) => e.code(),
        }
    }
}

/// The longest URL a hook takes.
pub const MAX_URL_BYTES: usize = 2048;
/// The longest secret.
pub const MAX_SECRET_BYTES: usize = 256;

/// A hook's URL, taken apart: only what the client needs to connect and ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookUrl {
    pub https: bool,
    /// A DNS name (lowercased), an IPv4 address, or an IPv6 address without brackets.
    pub host: String,
    pub port: u16,
    /// What follows the authority (`/` when nothing does).
    pub path_and_query: String,
}

impl HookUrl {
    /// The literal IP address the host is, if it is one.
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        self.host.parse().ok()
    }

    /// `host[:port]` for the `Host` header (the port only when not the scheme's).
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.https { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Parses and checks a hook's URL: `http` or `https`, a host (name, IPv4, or `[IPv6]`), an
/// optional port, no credentials, no fragment, printable ASCII, at most 2048 bytes.
pub fn check_url(url: &str) -> Result<HookUrl, HookError> {
    let bad = |why: &str| HookError::Invalid(format!("url {url:?}: {why}"));
    if url.len() > MAX_URL_BYTES {
        return Err(HookError::Invalid(format!(
            "url is {} bytes; at most {MAX_URL_BYTES}",
            url.len()
        )));
    }
    if url.is_empty() {
        return Err(HookError::Invalid("url is empty".into()));
    }
    if !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(
            "only printable ASCII without spaces (percent-encode the rest)",
        ));
    }
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("not an absolute http:// or https:// URL"))?;
    let https = match scheme.to_ascii_lowercase().as_str() {
        "http" => false,
        "https" => true,
        _ => return Err(bad("the scheme must be http or https")),
    };
    if rest.contains('#') {
        return Err(bad("a fragment is never sent; leave it out"));
    }
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    if authority.contains('@') {
        return Err(bad(
            "credentials in the URL are refused; use the hook's secret to authenticate deliveries",
        ));
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (inner, after) = bracketed
            .split_once(']')
            .ok_or_else(|| bad("an unclosed [ in the host"))?;
        let ip: std::net::Ipv6Addr = inner.parse().map_err(|_| bad("not an IPv6 address"))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ]"))?),
        };
        (ip.to_string(), port)
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_ascii_lowercase(), Some(port)),
            None => (authority.to_ascii_lowercase(), None),
        };
        if host.contains(':') {
            return Err(bad("an IPv6 address goes in brackets: http://[::1]:8080/"));
        }
        (host, port)
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    if !host.contains(':') {
        let name_ok = host.len() <= 253
            && host.split('.').enumerate().all(|(i, label)| {
                // A trailing dot (an absolute name) leaves one empty label at the end.
                (label.is_empty() && i > 0 && host.ends_with('.') && host.len() > 1)
                    || (!label.is_empty()
                        && label.len() <= 63
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                        && !label.starts_with('-')
                        && !label.ends_with('-'))
            });
        // No top-level domain is all digits: such a host is an IPv4 address, and only
        // the four-part decimal form is taken (not `127.1`, `2130706433` or `0x7f.0.0.1`,
        // which resolvers read as addresses the rules would see only at delivery).
        let numeric = host
            .trim_end_matches('.')
            .rsplit('.')
            .next()
            .is_some_and(|last| !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()));
        let address_ok = !numeric || host.parse::<std::net::Ipv4Addr>().is_ok();
        if !name_ok || !address_ok {
            return Err(bad("the host is not a DNS name or an IP address"));
        }
    }
    let port = match port {
        None => {
            if https {
                443
            } else {
                80
            }
        }
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err(bad("the port is 1 to 65535")),
        },
    };
    // What HTTP's request line takes as it is (RFC 3986's characters); the rest must come
    // percent-encoded.
    if let Some(c) = tail
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/?%".contains(*c)))
    {
        return Err(bad(&format!(
            "{c:?} must be percent-encoded in the path or query"
        )));
    }
    let path_and_query = if tail.is_empty() {
        "/".to_owned()
    } else if tail.starts_with('?') {
        format!("/{tail}")
    } else {
        tail.to_owned()
    };
    Ok(HookUrl {
        https,
        host,
        port,
        path_and_query,
    })
}

/// Checks a secret: 1 to 256 bytes, no control characters.
pub fn check_secret(secret: &str) -> Result<(), HookError> {
    if secret.is_empty() || secret.len() > MAX_SECRET_BYTES {
        return Err(HookError::Invalid(format!(
            "a secret is 1 to {MAX_SECRET_BYTES} bytes, not {}",
            secret.len()
        )));
    }
    if secret.chars().any(char::is_control) {
        return Err(HookError::Invalid(
            "a secret has no control characters".into(),
        ));
    }
    Ok(())
}

/// Checks a list of event types (each one of `EVENT_TYPES`), without repeats, in order.
pub fn check_events(events: &[String]) -> Result<Vec<String>, HookError> {
    if events.len() > super::events::EVENT_TYPES.len() {
        return Err(HookError::Invalid(format!(
            "at most {} event types",
            super::events::EVENT_TYPES.len()
        )));
    }
    let mut out: Vec<String> = Vec::new();
    for event in events {
        if event.is_empty() || event.contains(',') {
            return Err(HookError::Invalid(format!(
                "{event:?} is not an event type (known: {})",
                super::events::EVENT_TYPES.join(", ")
            )));
        }
        let parsed = parse_types(event).map_err(HookError::Invalid)?;
        for kind in parsed {
            if !out.contains(&kind) {
                out.push(kind);
            }
        }
    }
    Ok(out)
}

/// Webhooks in the registry: hooks, their cursors, their delivery logs. Each change to a
/// hook is logged (`hook.added`, `hook.changed`, `hook.removed`) in its own transaction.
pub trait HookStore: Send + Sync {
    /// Stores a new hook under a fresh id, its cursor at the log's end (its own
    /// `hook.added` event included): it gets the events after its creation.
    fn add_hook(&self, hook: &NewHook, actor: &Actor) -> Result<Hook, HookError>;
    /// The hooks of a scope (`None`: every hook), by id.
    fn hooks(&self, scope: Option<HookScope>) -> Result<Vec<Hook>, StoreError>;
    fn find_hook(&self, id: u64) -> Result<Option<Hook>, StoreError>;
    /// Changes a hook. Made active again, its cursor moves to the log's end: it does not
    /// get what happened while it was inactive.
    fn update_hook(&self, id: u64, change: &HookChange, actor: &Actor) -> Result<Hook, HookError>;
    /// Removes a hook with its deliveries.
    fn remove_hook(&self, id: u64, actor: &Actor) -> Result<Hook, HookError>;
    /// Queues a delivery of each of `events` (ids assigned in order) and moves the hook's
    /// cursor from `cursor` to `to`, in one transaction; nothing when the cursor is no
    /// longer `cursor` (another worker moved it) or the hook is gone. Old finished
    /// deliveries past `MAX_DELIVERIES_KEPT` are dropped. Returns how many were queued.
    fn queue_deliveries(
        &self,
        hook: u64,
        cursor: u64,
        to: u64,
        events: &[Event],
        now: u64,
    ) -> Result<usize, StoreError>;
    /// The hook's deliveries, newest first, with ids below `before` (none: from the
    /// newest), at most `limit`.
    fn deliveries(
        &self,
        hook: u64,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// How many of the hook's deliveries are pending.
    fn pending_deliveries(&self, hook: u64) -> Result<usize, StoreError>;
    /// The hook's oldest pending delivery.
    fn next_delivery(&self, hook: u64) -> Result<Option<Delivery>, StoreError>;
    fn find_delivery(&self, hook: u64, id: u64) -> Result<Option<Delivery>, StoreError>;
    /// Takes a pending delivery that is due at `now` for one attempt: its next attempt is
    /// moved to `until` (past the attempt's timeout), so that another worker on the data
    /// directory leaves it alone, and a worker that dies mid-attempt leaves it to be tried
    /// again then. `None` when it is not due (another worker holds it) or not pending.
    fn claim_delivery(
        &self,
        hook: u64,
        id: u64,
        now: u64,
        until: u64,
    ) -> Result<Option<Delivery>, StoreError>;
    /// Appends an attempt to a delivery of chain `chain` and sets its state and when it is
    /// next due; nothing when the delivery is gone or was redelivered meanwhile.
    fn record_attempt(
        &self,
        hook: u64,
        id: u64,
        attempt: &Attempt,
        state: DeliveryState,
        next_attempt_at: u64,
    ) -> Result<(), StoreError>;
    /// Starts a new chain of attempts for a delivery (pending, due now).
    fn redeliver(&self, hook: u64, id: u64, now: u64) -> Result<Delivery, HookError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let url = check_url("HTTP://Example.COM:8080/a/b?c=d").unwrap();
        assert_eq!(
            url,
            HookUrl {
                https: false,
                host: "example.com".into(),
                port: 8080,
                path_and_query: "/a/b?c=d".into()
            }
        );
        assert_eq!(url.authority(), "example.com:8080");
        let url = check_url("https://[::1]/x").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("::1", 443));
        assert_eq!(url.authority(), "[::1]");
        assert_eq!(check_url("http://h?q").unwrap().path_and_query, "/?q");
        assert_eq!(
            check_url("http://h/a%20b;c=d?e=f&g=h~")
                .unwrap()
                .path_and_query,
            "/a%20b;c=d?e=f&g=h~"
        );
        for bad in [
            "",
            "ftp://x/",
            "http://",
            "http:///x",
            "http://user:pw@x/",
            "http://x:0/",
            "http://x:65536/",
            "http://x:+1/",
            "http://x/#f",
            "http://a b/",
            "http://[::1/",
            "http://-x/",
            "http://x..y/",
            "http://é/",
            "http://x/a|b",
            "http://x/{a}",
            "http://x/?q=\"a\"",
            "http://a:b:80/",
            "http://::ffff:127.0.0.1:80/",
            "http://127.1/",
            "http://2130706433/",
            "http://0/",
            "http://0x7f.0.0.1/",
            "http://10.0.0.010.1/",
            "x",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        assert!(check_url(&format!("http://x/{}", "a".repeat(2100))).is_err());
        for good in [
            "http://10.0.0.1:9/",
            "http://1password.com/",
            "http://a.1b/",
        ] {
            check_url(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
    }

    #[test]
    fn events_and_secrets() {
        assert_eq!(
            check_events(&["ref.updated".into(), "ref.updated".into()]).unwrap(),
            vec!["ref.updated"]
        );
        assert!(check_events(&["ref.nope".into()]).is_err());
        assert!(check_events(&["".into()]).is_err());
        assert!(check_events(&["ref.updated,ref.refused".into()]).is_err());
        assert!(check_secret("").is_err());
        assert!(check_secret("a\nb").is_err());
        assert!(check_secret(&"x".repeat(257)).is_err());
        check_secret("s3cret").unwrap();
    }
}
