//! `GET /metrics`: counters and gauges in Prometheus' text exposition format (0.0.4),
//! kept in atomics and written by hand.
//!
//! Who may read them: a scraper sending `--metrics-token` as its bearer token, or a token
//! with the site-admin right (`admin` on `*`). Nothing else (not even loopback, which is
//! where a reverse proxy connects from).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;

use super::AppState;
use super::error::HttpError;

/// What the accept loop is doing right now (`listen.rs` keeps it), for logs, metrics and
/// tests.
#[derive(Default)]
pub struct ConnectionStats {
    pub open: AtomicUsize,
    pub shed: AtomicU64,
    pub evicted: AtomicU64,
}

/// Which routes a request was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Git,
    Api,
    Other,
}

const FAMILIES: [Family; 3] = [Family::Git, Family::Api, Family::Other];

impl Family {
    pub fn of(path: &str) -> Family {
        if super::is_api_path(path) {
            Family::Api
        } else if path.ends_with("/info/refs")
            || path.ends_with("/git-upload-pack")
            || path.ends_with("/git-receive-pack")
        {
            Family::Git
        } else {
            Family::Other
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Family::Git => "git",
            Family::Api => "api",
            Family::Other => "other",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Upper bounds of the latency buckets, in seconds: from a cached REST answer to a clone
/// of a large repository.
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

#[derive(Default)]
struct Histogram {
    /// Observations at most `BUCKETS[i]` (not cumulative; summed when written).
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|&le| seconds <= le) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

/// What the server counts. Shared by the accept loop, the git routes and the REST API.
#[derive(Default)]
pub struct Metrics {
    /// Requests answered, by family and status class (1xx … 5xx).
    requests: [[AtomicU64; 5]; 3],
    latency: [Histogram; 3],
    pushes: AtomicU64,
    push_bytes: AtomicU64,
    fetches: AtomicU64,
    fetch_bytes: AtomicU64,
    /// Refused ref updates by (path, code).
    refusals: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    tls_failures: AtomicU64,
    /// The accept loop's own counts (open, shed, evicted connections).
    pub connections: Arc<ConnectionStats>,
}

impl Metrics {
    /// A request's response ended (sent, or dropped half way) with `status`.
    pub fn request(&self, path: &str, status: u16, elapsed: Duration) {
        let family = Family::of(path).index();
        if let Some(class) = (status / 100).checked_sub(1).map(usize::from)
            && class < 5
        {
            self.requests[family][class].fetch_add(1, Ordering::Relaxed);
        }
        self.latency[family].observe(elapsed);
    }

    /// A push with commands arrived.
    pub fn push(&self) {
        self.pushes.fetch_add(1, Ordering::Relaxed);
    }

    /// Bytes of a push's body, as sent.
    pub fn push_received(&self, bytes: usize) {
        self.push_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// A fetch is answered with a pack.
    pub fn fetch(&self) {
        self.fetches.fetch_add(1, Ordering::Relaxed);
    }

    /// Bytes of an upload-pack answer.
    pub fn fetch_sent(&self, bytes: usize) {
        self.fetch_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// A ref update refused with `code`, by a push (`via` = "push") or REST ("rest").
    pub fn refused(&self, via: &'static str, code: &'static str) {
        *self.refusals.lock().entry((via, code)).or_insert(0) += 1;
    }

    /// A TLS handshake failed or timed out.
    pub fn tls_failed(&self) {
        self.tls_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition, with the sizes of the server's caches read now.
    pub fn render(&self, sizes: &Sizes) -> String {
        let mut out = String::with_capacity(8 << 10);
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        head(
            &mut out,
            "forge_http_requests_total",
            "counter",
            "HTTP requests answered, by route family (git, api, other) and status class.",
        );
        for family in FAMILIES {
            for (class, count) in self.requests[family.index()].iter().enumerate() {
                let _ = writeln!(
                    out,
                    "forge_http_requests_total{{family=\"{}\",status=\"{}xx\"}} {}",
                    family.as_str(),
                    class + 1,
                    load(count)
                );
            }
        }
        head(
            &mut out,
            "forge_http_request_duration_seconds",
            "histogram",
            "Time from a request's arrival to the end of its response body, by route family.",
        );
        for family in FAMILIES {
            let histogram = &self.latency[family.index()];
            let mut cumulative = 0;
            for (le, count) in BUCKETS.iter().zip(&histogram.buckets) {
                cumulative += load(count);
                let _ = writeln!(
                    out,
                    "forge_http_request_duration_seconds_bucket{{family=\"{}\",le=\"{le}\"}} {cumulative}",
                    family.as_str()
                );
            }
            let count = load(&histogram.count);
            let _ = writeln!(
                out,
                "forge_http_request_duration_seconds_bucket{{family=\"{}\",le=\"+Inf\"}} {count}",
                family.as_str()
            );
            let _ = writeln!(
                out,
                "forge_http_request_duration_seconds_sum{{family=\"{}\"}} {}",
                family.as_str(),
                load(&histogram.sum_micros) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "forge_http_request_duration_seconds_count{{family=\"{}\"}} {count}",
                family.as_str()
            );
        }
        let counters = [
            (
                "forge_pushes_total",
                "Pushes received (receive-pack requests with commands).",
                load(&self.pushes),
            ),
            (
                "forge_push_received_bytes_total",
                "Bytes of push request bodies, as sent.",
                load(&self.push_bytes),
            ),
            (
                "forge_fetches_total",
                "Fetches and clones answered with a pack.",
                load(&self.fetches),
            ),
            (
                "forge_fetch_sent_bytes_total",
                "Bytes of upload-pack answers (negotiation and packs).",
                load(&self.fetch_bytes),
            ),
        ];
        for (name, help, value) in counters {
            head(&mut out, name, "counter", help);
            let _ = writeln!(out, "{name} {value}");
        }
        head(
            &mut out,
            "forge_ref_refusals_total",
            "counter",
            "Ref updates refused, by path (push, rest) and refusal code.",
        );
        for ((via, code), count) in self.refusals.lock().iter() {
            let _ = writeln!(
                out,
                "forge_ref_refusals_total{{via=\"{via}\",code=\"{code}\"}} {count}"
            );
        }
        let connections = &self.connections;
        let rest = [
            (
                "forge_connections_open",
                "gauge",
                "Connections open now.",
                connections.open.load(Ordering::Relaxed) as u64,
            ),
            (
                "forge_connections_shed_total",
                "counter",
                "Connections answered 503 because every connection was busy.",
                load(&connections.shed),
            ),
            (
                "forge_connections_evicted_total",
                "counter",
                "Idle connections closed to make room for new ones.",
                load(&connections.evicted),
            ),
            (
                "forge_tls_handshake_failures_total",
                "counter",
                "TLS handshakes that failed or did not finish within the header timeout.",
                load(&self.tls_failures),
            ),
            (
                "forge_open_repositories",
                "gauge",
                "Repositories open in the server's cache.",
                sizes.open_repos as u64,
            ),
            (
                "forge_verified_tokens_cached",
                "gauge",
                "Verified tokens in the token cache.",
                sizes.verified_tokens as u64,
            ),
            (
                "forge_event_streams_open",
                "gauge",
                "Event streams (Server-Sent Events) open now.",
                sizes.event_streams as u64,
            ),
        ];
        for (name, kind, help, value) in rest {
            head(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}

/// The sizes of what the server holds, read at scrape time.
pub struct Sizes {
    pub open_repos: usize,
    pub verified_tokens: usize,
    pub event_streams: usize,
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Whether `given` equals `expected`, in time that depends on the length only.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    if given.len() != expected.len() {
        return false;
    }
    given
        .iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// `GET /metrics`.
pub async fn scrape(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let app2 = app.clone();
    let allowed = tokio::task::spawn_blocking(move || may_scrape(&app2, &headers)).await;
    match allowed {
        Ok(Ok(())) => {}
        Ok(Err(refusal)) => return refusal.into_response(),
        Err(e) => return HttpError::internal(e).into_response(),
    }
    let sizes = Sizes {
        open_repos: app.repos.lock().len(),
        verified_tokens: app.auth.cached(),
        event_streams: app.events.open_streams(),
    };
    let mut response = (StatusCode::OK, app.metrics.render(&sizes)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    super::error::no_cache(&mut response);
    response
}

/// The metrics token, or a site admin's token.
fn may_scrape(app: &AppState, headers: &HeaderMap) -> Result<(), HttpError> {
    let credential = super::auth::credential(headers).map_err(HttpError::from)?;
    if let (Some(expected), Some(given)) = (&app.metrics_token, &credential)
        && same_secret(given.as_bytes(), expected.as_bytes())
    {
        return Ok(());
    }
    if credential.is_none() {
        return Err(HttpError::unauthorized(
            "the metrics need the metrics token or a site admin's token",
        ));
    }
    let caller = super::auth::authenticate(&app.auth, &app.data, headers)?;
    if caller.site_admin() {
        Ok(())
    } else {
        Err(HttpError::new(
            StatusCode::FORBIDDEN,
            "the metrics need the metrics token or a site admin's token (admin on *)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_is_well_formed() {
        let metrics = Metrics::default();
        metrics.request(
            "/alice/app.git/git-upload-pack",
            200,
            Duration::from_millis(3),
        );
        metrics.request("/api/v1/user", 404, Duration::from_millis(70));
        metrics.request("/", 200, Duration::from_secs(1000));
        metrics.refused("push", "non_fast_forward");
        let text = metrics.render(&Sizes {
            open_repos: 1,
            verified_tokens: 2,
            event_streams: 3,
        });
        assert!(text.contains("forge_http_requests_total{family=\"git\",status=\"2xx\"} 1\n"));
        assert!(text.contains("forge_http_requests_total{family=\"api\",status=\"4xx\"} 1\n"));
        assert!(text.contains(
            "forge_http_request_duration_seconds_bucket{family=\"git\",le=\"0.005\"} 1\n"
        ));
        assert!(text.contains(
            "forge_http_request_duration_seconds_bucket{family=\"api\",le=\"0.05\"} 0\n"
        ));
        assert!(
            text.contains(
                "forge_http_request_duration_seconds_bucket{family=\"api\",le=\"0.1\"} 1\n"
            )
        );
        // Past the last bucket: counted in +Inf only.
        assert!(text.contains(
            "forge_http_request_duration_seconds_bucket{family=\"other\",le=\"300\"} 0\n"
        ));
        assert!(text.contains(
            "forge_http_request_duration_seconds_bucket{family=\"other\",le=\"+Inf\"} 1\n"
        ));
        assert!(
            text.contains("forge_ref_refusals_total{via=\"push\",code=\"non_fast_forward\"} 1\n")
        );
        assert!(text.contains("# TYPE forge_ref_refusals_total counter\n"));
        assert!(text.contains("forge_event_streams_open 3\n"));
        for line in text.lines() {
            assert!(
                line.starts_with("# HELP forge_")
                    || line.starts_with("# TYPE forge_")
                    || line.starts_with("forge_"),
                "{line}"
            );
        }
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"ab", b"abc"));
    }
}
