//! `/api/v1/identities/{name}/keys`: an identity's Ed25519 attestation keys, as
//! `forge identity key` manages them.
//!
//! Who may: a site admin (`admin` on `*`), a human for itself, the owner of an agent. An
//! agent may list and revoke its own keys but not add one: a stolen agent token must not
//! be able to give an attacker's key the agent's name. Adding needs a token that is not
//! narrowed. A caller that may not manage an identity is not told whether it exists.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiResult, administered_identity, blocking, required_token};
use crate::server::AppState;
use crate::store::{Identity, IdentityError};

impl From<IdentityError> for ApiError {
    fn from(error: IdentityError) -> ApiError {
        let status = match &error {
            IdentityError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            IdentityError::Exists(_) => StatusCode::CONFLICT,
            IdentityError::NotFound(_) => StatusCode::NOT_FOUND,
            IdentityError::Invalid(_) => StatusCode::BAD_REQUEST,
        };
        match error {
            IdentityError::Store(e) => e.into(),
            other => ApiError::new(status, other.code(), other.to_string()),
        }
    }
}

fn keys_json(identity: &Identity) -> axum::response::Response {
    Json(json!({ "identity": identity.name, "keys": identity.keys })).into_response()
}

/// What the caller wants to do with the keys, which decides who may.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    List,
    Add,
    Revoke,
}

fn managed(
    app: &AppState,
    headers: &HeaderMap,
    name: &str,
    action: Action,
) -> Result<(Arc<crate::auth::token::VerifiedToken>, Identity), ApiError> {
    let caller = required_token(app, headers)?;
    if action == Action::Add && caller.compiled.is_narrowed() {
        return Err(ApiError::forbidden("a narrowed token cannot add keys"));
    }
    let identity = administered_identity(app, &caller, name, action != Action::Add)?;
    Ok((caller, identity))
}

/// `GET /api/v1/identities/{name}/keys`: `{"identity": …, "keys": [{"key", "added_at",
/// "revoked_at"?}]}`, revoked keys included.
pub(super) async fn list(
    State(app): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    blocking(move || {
        let (_, identity) = managed(&app, &headers, &name, Action::List)?;
        Ok(keys_json(&identity))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewKey {
    /// Ed25519 public key, 64 hex digits (`forge keygen` prints it).
    key: String,
}

/// `POST /api/v1/identities/{name}/keys {"key": HEX}`: `201` with the keys. A key that any
/// identity has had is refused (a key names one signer, for good).
pub(super) async fn add(
    State(app): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Json<NewKey>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let Json(body) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    blocking(move || {
        let (caller, identity) = managed(&app, &headers, &name, Action::Add)?;
        let identity = app.data.add_identity_key(&identity.name, &body.key)?;
        tracing::info!("{} added a key to {}", caller.identity, identity.name);
        Ok((StatusCode::CREATED, keys_json(&identity)).into_response())
    })
    .await
}

/// `DELETE /api/v1/identities/{name}/keys/{key}`: revokes the key (kept, marked); its
/// attestations stop counting for policies.
pub(super) async fn revoke(
    State(app): State<Arc<AppState>>,
    Path((name, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    blocking(move || {
        let (caller, identity) = managed(&app, &headers, &name, Action::Revoke)?;
        let identity = app.data.revoke_identity_key(&identity.name, &key)?;
        tracing::info!("{} revoked key {key} of {}", caller.identity, identity.name);
        Ok(keys_json(&identity))
    })
    .await
}
