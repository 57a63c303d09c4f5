//! `/api/v1/repos/{owner}/{name}/policies`: a repository's ref rules, as `forge policy`
//! manages them. Anyone who may read the repository may read them (a pusher should know
//! what a push needs); adding and removing needs `admin` on it.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use super::{ApiError, ApiJson, ApiPath, ApiResult, blocking, repo_for, required};
use crate::auth::token::Op;
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::store::policy::RefRule;

/// `GET …/policies`: `{"repo": …, "rules": [RefRule…]}`, in the order they were added.
pub(super) async fn list(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath((owner, name)): ApiPath<(String, String)>,
) -> ApiResult {
    blocking(move || {
        let (repo_name, record) = repo_for(&app, caller.token.as_deref(), &owner, &name, Op::Read)?;
        let rules = app.repo_state(record)?.repo.rules()?;
        Ok(Json(json!({ "repo": repo_name.to_string(), "rules": rules })).into_response())
    })
    .await
}

/// `POST …/policies` with a rule (`RefRule` without its id): `201 {"rule": …}` as stored.
pub(super) async fn add(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath((owner, name)): ApiPath<(String, String)>,
    ApiJson(rule): ApiJson<RefRule>,
) -> ApiResult {
    blocking(move || {
        let token = required(&caller)?;
        let (_, record) = repo_for(&app, Some(token), &owner, &name, Op::Admin)?;
        let added = app.repo_state(record)?.repo.add_rule(rule)?;
        tracing::info!(
            "{} added rule {} ({}) to {owner}/{name}",
            token.identity,
            added.id,
            added.pattern
        );
        Ok((StatusCode::CREATED, Json(json!({ "rule": added }))).into_response())
    })
    .await
}

/// `DELETE …/policies/{id}`: `{"removed": …}`.
pub(super) async fn remove(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath((owner, name, id)): ApiPath<(String, String, String)>,
) -> ApiResult {
    blocking(move || {
        let token = required(&caller)?;
        let (_, record) = repo_for(&app, Some(token), &owner, &name, Op::Admin)?;
        let id: u64 = id
            .parse()
            .map_err(|_| ApiError::bad_request(format!("a rule id is a number, not {id:?}")))?;
        let removed = app.repo_state(record)?.repo.remove_rule(id)?;
        tracing::info!(
            "{} removed rule {id} ({}) from {owner}/{name}",
            token.identity,
            removed.pattern
        );
        Ok(Json(json!({ "removed": removed })).into_response())
    })
    .await
}
