//! How responses are shaped beyond their JSON: the `Link` header of a paged list, and the
//! validators and cache lifetimes of what a revision names.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// `text` safe inside a query string.
pub(super) fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Adds `Link: <next>; rel="next"` (RFC 8288) to a page that has a next one.
pub(super) fn link_next(response: &mut Response, next: &str) {
    if let Ok(link) = HeaderValue::from_str(&format!("<{next}>; rel=\"next\"")) {
        response.headers_mut().insert(header::LINK, link);
    }
}

/// How long a client may keep what an object id names: it never changes.
const IMMUTABLE_SECONDS: u32 = 31_536_000;

/// The caching of a response about a revision.
pub(super) struct Freshness {
    /// The strong validator: the ids the answer was computed from, and what was asked.
    pub etag: String,
    /// Named by object ids only (not a ref, which moves): the answer never changes.
    pub immutable: bool,
    /// The repository is public: shared caches may keep it too.
    pub public: bool,
}

impl Freshness {
    /// `304 Not Modified` when the request's `If-None-Match` names this answer's validator.
    pub fn not_modified(&self, request: &HeaderMap) -> Option<Response> {
        let matches = request
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|tag| tag.trim().trim_start_matches("W/"))
            .any(|tag| tag == "*" || tag == self.quoted());
        matches.then(|| {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            self.apply(&mut response);
            response
        })
    }

    fn quoted(&self) -> String {
        format!("\"{}\"", self.etag)
    }

    /// Sets `ETag` and `Cache-Control`: a year and `immutable` for what ids name,
    /// revalidation on every use for what a ref names; `private` unless the repository is
    /// public, so no shared cache keeps what a token let through.
    pub fn apply(&self, response: &mut Response) {
        let scope = if self.public { "public" } else { "private" };
        let control = if self.immutable {
            format!("{scope}, max-age={IMMUTABLE_SECONDS}, immutable")
        } else {
            format!("{scope}, no-cache")
        };
        let headers = response.headers_mut();
        if let Ok(etag) = HeaderValue::from_str(&self.quoted()) {
            headers.insert(header::ETAG, etag);
        }
        if let Ok(control) = HeaderValue::from_str(&control) {
            headers.insert(header::CACHE_CONTROL, control);
        }
        headers.insert(header::VARY, HeaderValue::from_static("Authorization"));
    }

    /// `response` with these headers, or 304 when the client has it already.
    pub fn answer(&self, request: &HeaderMap, response: impl IntoResponse) -> Response {
        if let Some(not_modified) = self.not_modified(request) {
            return not_modified;
        }
        let mut response = response.into_response();
        if response.status().is_success() {
            self.apply(&mut response);
        }
        response
    }
}
