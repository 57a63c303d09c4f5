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
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    ApiError, ApiJson, ApiPath, ErrorBody, acting, administered_identity, blocking, required,
};
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::store::{Identity, IdentityKey};

#[derive(Serialize, ToSchema)]
pub(super) struct Keys {
    identity: String,
    /// Revoked keys included, marked with `revoked_at`.
    keys: Vec<IdentityKey>,
}

impl Keys {
    fn of(identity: Identity) -> Json<Keys> {
        Json(Keys {
            identity: identity.name,
            keys: identity.keys,
        })
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct IdentityPath {
    /// The identity's name.
    #[param(pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")]
    name: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct KeyPath {
    /// The identity's name.
    #[param(pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")]
    name: String,
    /// The Ed25519 public key, 64 hex digits.
    #[param(pattern = "^[0-9a-fA-F]{64}$")]
    key: String,
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

/// List an identity's keys
///
/// Revoked keys included, marked.
#[utoipa::path(
    get,
    path = "/api/v1/identities/{name}/keys",
    operation_id = "keys_list",
    tag = "identities",
    params(IdentityPath),
    responses(
        (status = 200, description = "The identity's keys", body = Keys),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The caller does not manage this identity", body = ErrorBody),
        (status = 404, description = "No such identity (told to site admins only)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn list(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(IdentityPath { name }): ApiPath<IdentityPath>,
) -> Result<Json<Keys>, ApiError> {
    blocking(move || {
        let (_, identity) = managed(&app, &caller, &name, Action::List)?;
        Ok(Keys::of(identity))
    })
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewKey {
    /// Ed25519 public key, 64 hex digits (`forge keygen` prints it).
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    key: String,
}

/// Add a key to an identity
///
/// An Ed25519 public key (64 hex digits, as `forge keygen` prints it). A key any identity has had is refused: a key names one signer, for good. An agent may not add its own keys.
#[utoipa::path(
    post,
    path = "/api/v1/identities/{name}/keys",
    operation_id = "keys_add",
    tag = "identities",
    params(IdentityPath),
    request_body = NewKey,
    responses(
        (status = 201, description = "Added", body = Keys),
        (status = 400, description = "Not an Ed25519 public key", body = ErrorBody),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The caller does not manage this identity, is the agent itself, or its token is narrowed", body = ErrorBody),
        (status = 404, description = "No such identity (told to site admins only)", body = ErrorBody),
        (status = 409, description = "The key belongs, or belonged, to an identity", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "The JSON is not a key", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn add(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(IdentityPath { name }): ApiPath<IdentityPath>,
    ApiJson(body): ApiJson<NewKey>,
) -> Result<(StatusCode, Json<Keys>), ApiError> {
    blocking(move || {
        let data = acting(&app, &caller);
        let (caller, identity) = managed(&app, &caller, &name, Action::Add)?;
        let identity = data.add_identity_key(&identity.name, &body.key)?;
        tracing::info!("{} added a key to {}", caller.identity, identity.name);
        Ok((StatusCode::CREATED, Keys::of(identity)))
    })
    .await
}

/// Revoke a key
///
/// The key stays listed, marked; attestations signed with it stop counting for policies.
#[utoipa::path(
    delete,
    path = "/api/v1/identities/{name}/keys/{key}",
    operation_id = "keys_revoke",
    tag = "identities",
    params(KeyPath),
    responses(
        (status = 200, description = "Revoked", body = Keys),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The caller does not manage this identity", body = ErrorBody),
        (status = 404, description = "No such identity or key", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn revoke(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(KeyPath { name, key }): ApiPath<KeyPath>,
) -> Result<Json<Keys>, ApiError> {
    blocking(move || {
        let data = acting(&app, &caller);
        let (caller, identity) = managed(&app, &caller, &name, Action::Revoke)?;
        // Revoking is idempotent: a key revoked already stays as it was.
        let revoked_already = identity
            .keys
            .iter()
            .any(|k| k.key.eq_ignore_ascii_case(&key) && !k.is_active());
        if revoked_already {
            return Ok(Keys::of(identity));
        }
        let identity = data.revoke_identity_key(&identity.name, &key)?;
        tracing::info!("{} revoked key {key} of {}", caller.identity, identity.name);
        Ok(Keys::of(identity))
    })
    .await
}
