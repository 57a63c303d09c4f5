//! The API's one error shape (`server::error::ApiError`), `{"error": {"code": …, "message": …}}` with its status, for
//! every failure: the library's typed errors, refused credentials, axum's own rejections
//! of a body or a path, and paths or methods the API does not have.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::{Json, extract};
use serde::de::DeserializeOwned;

use crate::browse::BrowseError;
use crate::edit::EditError;
use crate::evidence::EvidenceError;
use crate::gate::{self, RefusalCode};
pub use crate::server::error::ApiError;
use crate::store::policy::PolicyError;
use crate::store::{IdentityError, StoreError};

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        let status = match &error {
            StoreError::InvalidName(_) | StoreError::InvalidRefName { .. } => {
                StatusCode::BAD_REQUEST
            }
            StoreError::RepoExists(_)
            | StoreError::RefConflict { .. }
            | StoreError::RefNameConflict { .. }
            | StoreError::GoalRefused { .. } => StatusCode::CONFLICT,
            StoreError::RepoNotFound(_) => StatusCode::NOT_FOUND,
            _ => return ApiError::internal(error),
        };
        ApiError::new(status, error.code(), error.to_string())
    }
}

impl From<gate::Refusal> for ApiError {
    fn from(refusal: gate::Refusal) -> ApiError {
        let status = match refusal.code {
            RefusalCode::NotPermitted => StatusCode::FORBIDDEN,
            RefusalCode::Stale
            | RefusalCode::NameConflict
            | RefusalCode::Duplicate
            | RefusalCode::ClaimHeld
            | RefusalCode::ClaimLost => StatusCode::CONFLICT,
            RefusalCode::NoSuchRef => StatusCode::NOT_FOUND,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, refusal.code(), refusal.reason)
    }
}

impl From<EvidenceError> for ApiError {
    fn from(error: EvidenceError) -> ApiError {
        let status = match &error {
            EvidenceError::Store(_) => return ApiError::internal(error),
            EvidenceError::NotSigner { .. } => StatusCode::FORBIDDEN,
            EvidenceError::Envelope(crate::attest::AttestError::TooLarge { .. }) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, error.code(), error.to_string())
    }
}

impl From<IdentityError> for ApiError {
    fn from(error: IdentityError) -> ApiError {
        let status = match &error {
            IdentityError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            IdentityError::Exists(_) => StatusCode::CONFLICT,
            IdentityError::NotFound(_) | IdentityError::KeyNotFound { .. } => StatusCode::NOT_FOUND,
            IdentityError::Invalid(_) => StatusCode::BAD_REQUEST,
        };
        match error {
            IdentityError::Store(e) => e.into(),
            other => ApiError::new(status, other.code(), other.to_string()),
        }
    }
}

impl From<PolicyError> for ApiError {
    fn from(error: PolicyError) -> ApiError {
        let status = match &error {
            PolicyError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            PolicyError::Invalid(_) => StatusCode::BAD_REQUEST,
            PolicyError::NotFound { .. } => StatusCode::NOT_FOUND,
        };
        match error {
            PolicyError::Store(e) => e.into(),
            other => ApiError::new(status, other.code(), other.to_string()),
        }
    }
}

impl From<BrowseError> for ApiError {
    fn from(error: BrowseError) -> ApiError {
        let error = match error {
            BrowseError::Store(e) => return e.into(),
            other => other,
        };
        let status = match &error {
            BrowseError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            BrowseError::RevisionNotFound(_) | BrowseError::PathNotFound { .. } => {
                StatusCode::NOT_FOUND
            }
            BrowseError::InvalidPath { .. } => StatusCode::BAD_REQUEST,
            BrowseError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BrowseError::NotACommit { .. }
            | BrowseError::NotADirectory { .. }
            | BrowseError::NotAFile { .. }
            | BrowseError::UnsafeName { .. }
            | BrowseError::Unparsed(_) => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, error.code(), error.to_string())
    }
}

impl From<EditError> for ApiError {
    fn from(error: EditError) -> ApiError {
        let status = match error {
            EditError::Store(e) => return e.into(),
            EditError::Browse(e) => return e.into(),
            EditError::Invalid(_) => StatusCode::BAD_REQUEST,
            EditError::ParentNotFound(_)
            | EditError::PathNotFound { .. }
            | EditError::Conflict { .. }
            | EditError::Fsck(_) => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, error.code(), error.to_string())
    }
}

/// A JSON body whose rejection (wrong content type, bad JSON, wrong shape, too large) is
/// the API's error body with axum's status.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        // Every body is a JSON object: serde would also read a struct from an array.
        let value = match Json::<serde_json::Value>::from_request(request, state).await {
            Ok(Json(value)) => value,
            Err(rejection) => return Err(json_rejection(rejection)),
        };
        if !value.is_object() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                "the body is a JSON object",
            ));
        }
        serde_json::from_value(value).map(ApiJson).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                format!("Failed to deserialize the JSON body into the target type: {e}"),
            )
        })
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    // axum's statuses: 415 without a JSON content type, 400 for bad JSON, 422 for JSON of
    // the wrong shape, 413 past the body limit.
    let code = match rejection.status() {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        _ => "invalid_request",
    };
    ApiError::new(rejection.status(), code, rejection.body_text())
}

/// Query parameters whose rejection is the API's error body.
pub struct ApiQuery<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(ApiError::bad_request(rejection.body_text())),
        }
    }
}

/// Path parameters whose rejection is the API's error body.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(extract::Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(path_rejection(rejection)),
        }
    }
}

fn path_rejection(rejection: PathRejection) -> ApiError {
    ApiError::new(rejection.status(), "invalid_request", rejection.body_text())
}

/// What an unknown path under `/api/` is answered.
pub(super) async fn unknown_path(request: Request) -> ApiError {
    ApiError::not_found(
        "not_found",
        format!("no such API endpoint: {}", request.uri().path()),
    )
}

/// What a known path is answered for a method it does not have.
pub(super) async fn unknown_method(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} does not take {}",
            request.uri().path(),
            request.method()
        ),
    )
}

/// How long a REST request may take before it is answered 503.
pub(super) const TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Answers a request that runs past `TIME_LIMIT` with 503. The work it started on a
/// blocking thread cannot be stopped, so the answer says a change may still land.
pub(super) async fn time_limit(
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match tokio::time::timeout(TIME_LIMIT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!(
                "the request took longer than {} s; a change it asked for may still complete",
                TIME_LIMIT.as_secs()
            ),
        )
        .into_response(),
    }
}
