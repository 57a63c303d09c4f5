//! `/api/v1/identities`: humans and agents, as `forge identity` manages them.
//!
//! Who may: a site admin (`admin` on `*`) everything; a human adds agents it owns, reads,
//! disables and removes them, and reads itself; an agent reads itself. No token disables
//! or removes its own identity (it would lock itself out). Adding
//! needs a token that is not narrowed. A caller that may not manage an identity is not told
//! whether it exists.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    ApiError, ApiJson, ApiPath, ErrorBody, acting, administered_identity, allows, blocking,
    required,
};
use crate::auth::token::{Op, Scope};
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::store::{Identity, IdentityKey, IdentityKind};

#[derive(Serialize, ToSchema)]
pub(super) struct IdentityView {
    name: String,
    kind: IdentityKind,
    /// The human who owns an agent.
    owner: Option<String>,
    /// Seconds since the Unix epoch.
    created_at: u64,
    /// A disabled identity's tokens (and its agents') are refused.
    disabled: bool,
    /// Attestation keys, revoked ones marked.
    keys: Vec<IdentityKey>,
}

impl IdentityView {
    fn of(identity: Identity) -> IdentityView {
        IdentityView {
            name: identity.name,
            kind: identity.kind,
            owner: identity.owner,
            created_at: identity.created_at,
            disabled: identity.disabled,
            keys: identity.keys,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(super) struct IdentityList {
    /// By name.
    items: Vec<IdentityView>,
}

/// List identities
///
/// Every identity for a site admin; otherwise the caller and the agents it owns.
#[utoipa::path(
    get,
    path = "/api/v1/identities",
    operation_id = "identities_list",
    tag = "identities",
    responses(
        (status = 200, description = "The identities the caller manages", body = IdentityList),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn list(
    State(app): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<IdentityList>, ApiError> {
    blocking(move || {
        let token = required(&caller)?;
        let site_admin = allows(token, &Scope::All, Op::Admin).is_ok();
        let me = &token.identity;
        let mut items: Vec<IdentityView> = app
            .data
            .list_identities()?
            .into_iter()
            .filter(|identity| {
                site_admin
                    || identity.name.eq_ignore_ascii_case(me)
                    || identity
                        .owner
                        .as_deref()
                        .is_some_and(|o| o.eq_ignore_ascii_case(me))
            })
            .map(IdentityView::of)
            .collect();
        items.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Json(IdentityList { items }))
    })
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewIdentity {
    #[schema(pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")]
    name: String,
    kind: IdentityKind,
    /// An agent's owner (a human); for a human's own agents it may be left out.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")]
    owner: Option<String>,
}

/// Add an identity
///
/// A site admin adds humans and agents; a human adds agents it owns.
#[utoipa::path(
    post,
    path = "/api/v1/identities",
    operation_id = "identities_create",
    tag = "identities",
    request_body = NewIdentity,
    responses(
        (status = 201, description = "Added", body = IdentityView),
        (status = 400, description = "An invalid name, or an owner where none belongs", body = ErrorBody),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The caller may not add this identity, or its token is narrowed", body = ErrorBody),
        (status = 404, description = "The owner does not exist", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "The JSON is not a new identity", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn create(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiJson(body): ApiJson<NewIdentity>,
) -> Result<(StatusCode, Json<IdentityView>), ApiError> {
    blocking(move || {
        let token = required(&caller)?;
        if token.compiled.is_narrowed() {
            return Err(ApiError::forbidden(
                "a narrowed token cannot add identities",
            ));
        }
        let site_admin = allows(token, &Scope::All, Op::Admin).is_ok();
        let owner = match (body.kind, body.owner) {
            (IdentityKind::Agent, None) if !site_admin => Some(token.identity.clone()),
            (_, owner) => owner,
        };
        let own_agent = body.kind == IdentityKind::Agent
            && caller.kind == Some(IdentityKind::Human)
            && owner
                .as_deref()
                .is_some_and(|o| o.eq_ignore_ascii_case(&token.identity));
        if !site_admin && !own_agent {
            return Err(ApiError::forbidden(format!(
                "{} may add only agents it owns",
                token.identity
            )));
        }
        let identity = crate::store::new_identity(&body.name, body.kind, owner.as_deref())?;
        let added = acting(&app, &caller).add_identity(&identity)?;
        Ok((StatusCode::CREATED, Json(IdentityView::of(added))))
    })
    .await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct IdentityPath {
    /// The identity's name.
    #[param(pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")]
    name: String,
}

/// One identity
#[utoipa::path(
    get,
    path = "/api/v1/identities/{name}",
    operation_id = "identities_get",
    tag = "identities",
    params(IdentityPath),
    responses(
        (status = 200, description = "The identity", body = IdentityView),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The caller does not manage this identity", body = ErrorBody),
        (status = 404, description = "No such identity (told to a site admin only)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn get(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(IdentityPath { name }): ApiPath<IdentityPath>,
) -> Result<Json<IdentityView>, ApiError> {
    blocking(move || {
        let token = required(&caller)?;
        let identity = administered_identity(&app, token, &name, true)?;
        Ok(Json(IdentityView::of(identity)))
    })
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct IdentityChanges {
    /// Disable (its tokens, and its agents', are refused at once) or enable it again.
    disabled: bool,
}

/// Disable or enable an identity
#[utoipa::path(
    patch,
    path = "/api/v1/identities/{name}",
    operation_id = "identities_update",
    tag = "identities",
    params(IdentityPath),
    request_body = IdentityChanges,
    responses(
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 200, description = "The identity as it is now", body = IdentityView),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The caller does not manage this identity, or would disable its own", body = ErrorBody),
        (status = 404, description = "No such identity (told to a site admin only)", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "The JSON is not a change of an identity", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn update(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(IdentityPath { name }): ApiPath<IdentityPath>,
    ApiJson(changes): ApiJson<IdentityChanges>,
) -> Result<Json<IdentityView>, ApiError> {
    blocking(move || {
        let token = required(&caller)?;
        if token.compiled.is_narrowed() {
            return Err(ApiError::forbidden(
                "a narrowed token cannot change identities",
            ));
        }
        let identity = administered_identity(&app, token, &name, false)?;
        if changes.disabled && identity.name.eq_ignore_ascii_case(&token.identity) {
            return Err(ApiError::forbidden(
                "a token cannot disable its own identity (that would lock it out); another admin can",
            ));
        }
        let changed =
            acting(&app, &caller).set_identity_disabled(&identity.name, changes.disabled)?;
        Ok(Json(IdentityView::of(changed)))
    })
    .await
}

/// Remove an identity
///
/// Its tokens stop working at once. A human who still owns agents is kept (remove them first). A site admin removes anyone; a human its agents.
#[utoipa::path(
    delete,
    path = "/api/v1/identities/{name}",
    operation_id = "identities_delete",
    tag = "identities",
    params(IdentityPath),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "A human who still owns agents", body = ErrorBody),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The caller may not remove this identity (nor its own)", body = ErrorBody),
        (status = 404, description = "No such identity (told to a site admin only)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn delete(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(IdentityPath { name }): ApiPath<IdentityPath>,
) -> Result<StatusCode, ApiError> {
    blocking(move || {
        let token = required(&caller)?;
        if token.compiled.is_narrowed() {
            return Err(ApiError::forbidden(
                "a narrowed token cannot change identities",
            ));
        }
        let identity = administered_identity(&app, token, &name, false)?;
        let site_admin = allows(token, &Scope::All, Op::Admin).is_ok();
        if identity.name.eq_ignore_ascii_case(&token.identity) {
            return Err(ApiError::forbidden(
                "a token cannot remove its own identity; another admin can",
            ));
        }
        if !site_admin && identity.kind == IdentityKind::Human {
            return Err(ApiError::forbidden(format!(
                "only a site admin removes a human ({})",
                identity.name
            )));
        }
        acting(&app, &caller).remove_identity(&identity.name)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}
