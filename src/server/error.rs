//! The errors of the git HTTP endpoints: a status and a plain-text reason, which git prints
//! to its user. Shared by the endpoints and the credential checks that refuse a request.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The headers git http-backend sends so that no proxy keeps a git answer.
pub(super) fn no_cache(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        header::EXPIRES,
        HeaderValue::from_static("Fri, 01 Jan 1980 00:00:00 GMT"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, max-age=0, must-revalidate"),
    );
}

/// A plain-text answer, ending in a newline as git expects.
pub(super) fn plain(status: StatusCode, message: impl Into<String>) -> Response {
    let mut message = message.into();
    if !message.ends_with('\n') {
        message.push('\n');
    }
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response();
    no_cache(&mut response);
    response
}

/// A failure answered with an HTTP status and a plain-text reason (git prints it).
pub struct HttpError {
    status: StatusCode,
    message: String,
}

impl HttpError {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> HttpError {
        HttpError {
            status,
            message: message.into(),
        }
    }

    /// A failure of the server itself. Its text can name server paths, so it goes to the
    /// log; the client is told only that it happened.
    pub(super) fn internal(error: impl std::fmt::Display) -> HttpError {
        tracing::error!("git request failed: {error}");
        HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, super::INTERNAL_ERROR)
    }

    /// 401 with git's Basic challenge: git sends the URL's credentials only after it.
    pub(super) fn unauthorized(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::UNAUTHORIZED, message)
    }

    pub(super) fn not_found() -> HttpError {
        HttpError::new(StatusCode::NOT_FOUND, "repository not found")
    }

    pub(super) fn is_not_found(&self) -> bool {
        self.status == StatusCode::NOT_FOUND
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let challenge = self.status == StatusCode::UNAUTHORIZED;
        // git asks without credentials first and is challenged on every clone: that 401 is
        // the protocol, not a refusal worth a line.
        if self.status.is_client_error() && self.message != "authentication required" {
            tracing::info!("refused with {}: {}", self.status.as_u16(), self.message);
        }
        let mut response = plain(self.status, self.message);
        if challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"forge\""),
            );
        }
        response
    }
}

/// A failure of the REST API: a status, a stable code, and a message, answered as
/// `{"error": {"code": …, "message": …}}` (`api/error.rs` maps the library's errors to it).
#[derive(Debug)]
pub struct ApiError {
    pub(crate) status: StatusCode,
    code: &'static str,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub(crate) fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    /// A failure of the server itself. Its text can name server paths, so it goes to the
    /// log; the client is told only that it happened.
    pub(crate) fn internal(error: impl std::fmt::Display) -> ApiError {
        tracing::error!("REST request failed: {error}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            super::INTERNAL_ERROR,
        )
    }
}

/// The REST error body: `{"error": {"code": …, "message": …}}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, for programs: `unauthorized`, `forbidden`, `repo_not_found`, `FORGE-P003`, …
    pub code: String,
    /// For people; may change.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        let busy = self.code == "busy";
        let mut response = (self.status, Json(body)).into_response();
        if busy {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"forge\""),
            );
        }
        response
    }
}
