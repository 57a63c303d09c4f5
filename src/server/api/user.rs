//! `GET /api/v1/user`: who the token speaks for and what it grants.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiError, ErrorBody, blocking, required};
use crate::auth::token;
use crate::server::AppState;
use crate::server::auth::Caller;

#[derive(Serialize, ToSchema)]
pub(super) struct User {
    identity: UserIdentity,
    /// What the token grants: an operation on a scope (`owner/name`, `owner/*`, `*`).
    rights: Vec<Right>,
    /// The refs the token may update, when it is limited to some.
    ref_globs: Option<Vec<String>>,
    /// Seconds since the Unix epoch.
    expires: Option<u64>,
    /// The token's blocks, first the authority block, then each narrowing.
    blocks: Vec<Block>,
}

#[derive(Serialize, ToSchema)]
struct UserIdentity {
    name: String,
    /// `human` or `agent`.
    kind: Option<String>,
    /// An agent's owning human.
    owner: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct Right {
    scope: String,
    /// `read`, `write` or `admin`.
    op: String,
}

#[derive(Serialize, ToSchema)]
struct Block {
    /// The block's Datalog.
    source: String,
    /// 128 hex digits.
    revocation_id: String,
}

/// Who the token speaks for
///
/// The token's identity, its rights, ref limits, expiry and blocks (with their revocation ids).
#[utoipa::path(
    get,
    path = "/api/v1/user",
    operation_id = "user_get",
    tag = "tokens",
    responses(
        (status = 200, description = "The token's identity and rights", body = User),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn get(
    State(app): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<User>, ApiError> {
    blocking(move || {
        let token = required(&caller)?;
        let identity = app.data.find_identity(&token.identity)?;
        let compiled = &token.compiled;
        let shown = token::inspect(&token.biscuit.to_base64().map_err(ApiError::internal)?)
            .map_err(ApiError::internal)?;
        Ok(Json(User {
            identity: UserIdentity {
                name: token.identity.clone(),
                kind: identity.as_ref().map(|i| i.kind.as_str().to_owned()),
                owner: identity.as_ref().and_then(|i| i.owner.clone()),
            },
            rights: compiled
                .rights()
                .iter()
                .map(|(scope, op)| Right {
                    scope: scope.clone(),
                    op: op.as_str().to_owned(),
                })
                .collect(),
            ref_globs: compiled.ref_globs().map(<[String]>::to_vec),
            expires: compiled.expires().map(|at| {
                at.duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
            }),
            blocks: shown
                .blocks
                .into_iter()
                .map(|b| Block {
                    source: b.source,
                    revocation_id: b.revocation_id,
                })
                .collect(),
        }))
    })
    .await
}
