//! `/api/v1/repos`: the repositories a caller may read, and new ones.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiJson, ApiResult, allows, blocking, required};
use crate::auth::token::{Op, Scope};
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::store::RepoName;

/// `GET /api/v1/repos`: the repositories the caller may read (public ones for anyone).
pub(super) async fn list(State(app): State<Arc<AppState>>, caller: Caller) -> ApiResult {
    blocking(move || {
        let mut listed = Vec::new();
        for record in app.data.list_repos()? {
            let name = RepoName::parse(&record.name).map_err(ApiError::internal)?;
            let public = app.data.is_public(&record)?;
            let readable = public
                || caller
                    .token
                    .as_ref()
                    .is_some_and(|t| allows(t, &Scope::Repo(name), Op::Read).is_ok());
            if readable {
                listed.push(json!({
                    "name": record.name,
                    "public": public,
                    "created_at": record.created_at,
                }));
            }
        }
        listed.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        Ok(Json(json!({ "repos": listed })).into_response())
    })
    .await
}

#[derive(Deserialize)]
pub(super) struct NewRepo {
    name: String,
    #[serde(default)]
    public: bool,
}

/// `POST /api/v1/repos {"name": "owner/name", "public": false}`: needs `admin` on the name.
pub(super) async fn create(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiJson(body): ApiJson<NewRepo>,
) -> ApiResult {
    blocking(move || {
        let token = required(&caller)?;
        let name = RepoName::parse(&body.name).map_err(|e| ApiError::bad_request(e.to_string()))?;
        allows(token, &Scope::Repo(name.clone()), Op::Admin)?;
        let record = app.data.create_repo(&name)?;
        if body.public {
            app.data.set_public(&name, true)?;
        }
        Ok((
            StatusCode::CREATED,
            Json(json!({ "repo": { "name": record.name, "public": body.public, "created_at": record.created_at } })),
        )
            .into_response())
    })
    .await
}
