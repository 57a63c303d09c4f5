//! `POST /api/v1/repos/{owner}/{name}/refs`: a ref moved through the gate, as a push
//! moves it.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    ApiError, ApiJson, ApiPath, ErrorBody, RepoPath, blocking, parse_sha1, repo_for, required,
};
use crate::auth::token::Op;
use crate::gate::{Claim, NewValue, Proposal, RefChange, StoredContext, Via};
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::store::RefTarget;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RefUpdateBody {
    /// The full ref name, e.g. `refs/heads/main`.
    #[serde(rename = "ref")]
    name: String,
    /// The SHA-1 the ref is at now; missing or null when it must not exist yet.
    #[serde(default)]
    old: Option<String>,
    /// The SHA-1 to point it at; null deletes it.
    new: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct RefUpdated {
    #[serde(rename = "ref")]
    updated: RefState,
}

#[derive(Serialize, ToSchema)]
struct RefState {
    name: String,
    /// Where it points now; null once deleted.
    sha1: Option<String>,
}

/// Create, move or delete a ref
///
/// A compare-and-swap of one ref (`old` → `new`, null for absent) to an object the repository has, through the same gate as a push: the token's refs, the default branch's protections and the repository's ref policies hold exactly as for `git push`.
#[utoipa::path(
    post,
    path = "/api/v1/repos/{owner}/{name}/refs",
    operation_id = "refs_update",
    tag = "refs",
    params(RepoPath),
    request_body = RefUpdateBody,
    responses(
        (status = 200, description = "The ref moved", body = RefUpdated),
        (status = 400, description = "Not a SHA-1, or an invalid ref name", body = ErrorBody),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The token may not update this ref", body = ErrorBody),
        (status = 404, description = "No such repository (or the caller may not read it), or no such ref to delete", body = ErrorBody),
        (status = 409, description = "The ref is not at `old` any more (compare-and-swap lost), or its name conflicts", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "Refused by the gate: a ref policy (FORGE-P…), a missing object, a non-fast-forward", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn update(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(RepoPath { owner, name }): ApiPath<RepoPath>,
    ApiJson(body): ApiJson<RefUpdateBody>,
) -> Result<Json<RefUpdated>, ApiError> {
    blocking(move || {
        let token = required(&caller)?;
        let (repo_name, record) = repo_for(&app, Some(token), &owner, &name, Op::Write)?;
        let old = body
            .old
            .as_deref()
            .map(|h| parse_sha1("old", h))
            .transpose()?;
        let new = body
            .new
            .as_deref()
            .map(|h| parse_sha1("new", h))
            .transpose()?;
        let state = app.repo_state(record)?;
        let repo = &state.repo;
        let claim = match old {
            None => Claim::Absent,
            Some(sha1) => match repo.id_of_sha1(&sha1) {
                Some(id) => Claim::Target(RefTarget::Direct(id)),
                None => Claim::Unknown,
            },
        };
        let new_value = match new {
            None => NewValue::Delete,
            Some(sha1) => match repo.id_of_sha1(&sha1) {
                Some(id) => NewValue::Set(RefTarget::Direct(id)),
                None => NewValue::Missing(sha1.to_string()),
            },
        };
        let may_update = |ref_name: &str| caller.may_update(&repo_name, ref_name);
        let proposal = Proposal {
            via: Via::Rest,
            caller: caller.gate_caller(),
            changes: vec![RefChange {
                name: body.name.clone().into(),
                claim,
                new: new_value,
            }],
        };
        // Serialised with pushes, as they are with each other.
        let _push = state.push_lock();
        state.with_graph(|graph| -> Result<(), ApiError> {
            let mut ctx = StoredContext::new(repo, graph, &app.data, &may_update)?;
            ctx.apply_one(&proposal)??;
            Ok(())
        })?;
        state.schedule_repack();
        Ok(Json(RefUpdated {
            updated: RefState {
                name: body.name,
                sha1: new.map(|s| s.to_string()),
            },
        }))
    })
    .await
}
