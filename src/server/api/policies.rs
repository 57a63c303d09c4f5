//! `/api/v1/repos/{owner}/{name}/policies`: a repository's ref rules, as `forge policy`
//! manages them. Anyone who may read the repository may read them (a pusher should know
//! what a push needs); adding and removing needs `admin` on it.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::json;

use super::{ApiError, ApiResult, blocking, optional_token, repo_for, required_token};
use crate::auth::token::Op;
use crate::server::AppState;
use crate::store::policy::{PolicyError, RefRule};

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

/// `GET …/policies`: `{"repo": …, "rules": [RefRule…]}`, in the order they were added.
pub(super) async fn list(
    State(app): State<Arc<AppState>>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    blocking(move || {
        let token = optional_token(&app, &headers)?;
        let (repo_name, record) = repo_for(&app, token.as_deref(), &owner, &name, Op::Read)?;
        let rules = app.repo_state(record)?.repo.rules()?;
        Ok(Json(json!({ "repo": repo_name.to_string(), "rules": rules })).into_response())
    })
    .await
}

/// `POST …/policies` with a rule (`RefRule` without its id): `201 {"rule": …}` as stored.
pub(super) async fn add(
    State(app): State<Arc<AppState>>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Json<RefRule>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let Json(rule) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    blocking(move || {
        let token = required_token(&app, &headers)?;
        let (_, record) = repo_for(&app, Some(&token), &owner, &name, Op::Admin)?;
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
    Path((owner, name, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    blocking(move || {
        let token = required_token(&app, &headers)?;
        let (_, record) = repo_for(&app, Some(&token), &owner, &name, Op::Admin)?;
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
