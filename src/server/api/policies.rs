//! `/api/v1/repos/{owner}/{name}/policies`: a repository's ref rules, as `forge policy`
//! manages them. Anyone who may read the repository may read them (a pusher should know
//! what a push needs); adding and removing needs `admin` on it.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, ApiJson, ApiPath, ErrorBody, RepoPath, blocking, repo_for, required};
use crate::auth::token::Op;
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::store::policy::RefRule;

#[derive(Serialize, ToSchema)]
pub(super) struct Rules {
    repo: String,
    /// In the order they were added.
    rules: Vec<RefRule>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct AddedRule {
    rule: RefRule,
}

#[derive(Serialize, ToSchema)]
pub(super) struct RemovedRule {
    removed: RefRule,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct RulePath {
    #[param(pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")]
    owner: String,
    #[param(pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")]
    name: String,
    /// The rule's id.
    #[param(pattern = "^[0-9]{1,19}$")]
    id: String,
}

/// List ref rules
///
/// The repository's ref rules, in the order they were added. Anyone who may read the repository may read them: a pusher should know what a push needs.
#[utoipa::path(
    get,
    path = "/api/v1/repos/{owner}/{name}/policies",
    operation_id = "policies_list",
    tag = "policies",
    params(RepoPath),
    responses(
        (status = 200, description = "The repository's ref rules", body = Rules),
        (status = 401, description = "A private repository without a token, or a token refused", body = ErrorBody),
        (status = 404, description = "No such repository (or the caller may not read it)", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(super) async fn list(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(RepoPath { owner, name }): ApiPath<RepoPath>,
) -> Result<Json<Rules>, ApiError> {
    blocking(move || {
        let (repo_name, record) = repo_for(&app, caller.token.as_deref(), &owner, &name, Op::Read)?;
        let rules = app.repo_state(record)?.repo.rules()?;
        Ok(Json(Rules {
            repo: repo_name.to_string(),
            rules,
        }))
    })
    .await
}

/// Add a ref rule
///
/// A rule for the refs a glob matches (its id is assigned), checked and answered as stored; needs `admin` on the repository.
#[utoipa::path(
    post,
    path = "/api/v1/repos/{owner}/{name}/policies",
    operation_id = "policies_add",
    tag = "policies",
    params(RepoPath),
    request_body = RefRule,
    responses(
        (status = 201, description = "Added", body = AddedRule),
        (status = 400, description = "The rule is invalid (the message says why)", body = ErrorBody),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The token lacks admin on the repository", body = ErrorBody),
        (status = 404, description = "No such repository (or the caller may not read it)", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "The JSON is not a rule", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn add(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(RepoPath { owner, name }): ApiPath<RepoPath>,
    ApiJson(rule): ApiJson<RefRule>,
) -> Result<(StatusCode, Json<AddedRule>), ApiError> {
    blocking(move || {
        let token = required(&caller)?;
        let (_, record) = repo_for(&app, Some(token), &owner, &name, Op::Admin)?;
        let added = app
            .repo_state(record)?
            .repo
            .add_rule(rule, &caller.gate_caller().actor())?;
        tracing::info!(
            "{} added rule {} ({}) to {owner}/{name}",
            token.identity,
            added.id,
            added.pattern
        );
        Ok((StatusCode::CREATED, Json(AddedRule { rule: added })))
    })
    .await
}

/// Remove a ref rule
///
/// Needs `admin` on the repository.
#[utoipa::path(
    delete,
    path = "/api/v1/repos/{owner}/{name}/policies/{id}",
    operation_id = "policies_remove",
    tag = "policies",
    params(RulePath),
    responses(
        (status = 200, description = "Removed", body = RemovedRule),
        (status = 400, description = "Not a rule id", body = ErrorBody),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The token lacks admin on the repository", body = ErrorBody),
        (status = 404, description = "No such repository or rule", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn remove(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(RulePath { owner, name, id }): ApiPath<RulePath>,
) -> Result<Json<RemovedRule>, ApiError> {
    blocking(move || {
        let token = required(&caller)?;
        let (_, record) = repo_for(&app, Some(token), &owner, &name, Op::Admin)?;
        let id: u64 = id
            .parse()
            .map_err(|_| ApiError::bad_request(format!("a rule id is a number, not {id:?}")))?;
        let removed = app
            .repo_state(record)?
            .repo
            .remove_rule(id, &caller.gate_caller().actor())?;
        tracing::info!(
            "{} removed rule {id} ({}) from {owner}/{name}",
            token.identity,
            removed.pattern
        );
        Ok(Json(RemovedRule { removed }))
    })
    .await
}
