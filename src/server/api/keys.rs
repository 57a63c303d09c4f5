//! `/api/v1/identities/{name}/keys`: an identity's Ed25519 attestation keys, as
//! `forge identity key` manages them.
//!
//! Who may: a site admin (`admin` on `*`), a human for itself, the owner of an agent. An
//! agent may list and revoke its own keys but not add one: a stolen agent token must not
//! be able to give an attacker's key the agent's name. Adding needs a token that is not
//! narrowed. A caller that may not manage an identity is not told whether it exists.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiJson, ApiPath, ApiResult, administered_identity, blocking, required};
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::store::Identity;

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

fn managed<'a>(
    app: &AppState,
    caller: &'a Caller,
    name: &str,
    action: Action,
) -> Result<(&'a crate::auth::token::VerifiedToken, Identity), ApiError> {
    let caller = required(caller)?;
    if action == Action::Add && caller.compiled.is_narrowed() {
        return Err(ApiError::forbidden("a narrowed token cannot add keys"));
    }
    let identity = administered_identity(app, caller, name, action != Action::Add)?;
    Ok((caller, identity))
}

/// `GET /api/v1/identities/{name}/keys`: `{"identity": …, "keys": [{"key", "added_at",
/// "revoked_at"?}]}`, revoked keys included.
pub(super) async fn list(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult {
    blocking(move || {
        let (_, identity) = managed(&app, &caller, &name, Action::List)?;
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
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<NewKey>,
) -> ApiResult {
    blocking(move || {
        let (caller, identity) = managed(&app, &caller, &name, Action::Add)?;
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
    caller: Caller,
    ApiPath((name, key)): ApiPath<(String, String)>,
) -> ApiResult {
    blocking(move || {
        let (caller, identity) = managed(&app, &caller, &name, Action::Revoke)?;
        let identity = app.data.revoke_identity_key(&identity.name, &key)?;
        tracing::info!("{} revoked key {key} of {}", caller.identity, identity.name);
        Ok(keys_json(&identity))
    })
    .await
}
