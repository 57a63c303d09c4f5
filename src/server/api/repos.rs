//! `/api/v1/repos`: the repositories a caller may read, and new ones.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiError, ApiJson, ErrorBody, acting, allows, blocking, required, token_reads};
use crate::auth::token::{Op, Scope};
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::store::RepoName;

#[derive(Serialize, ToSchema)]
pub(super) struct Repo {
    /// `owner/name`.
    name: String,
    /// Whether anyone may read it.
    public: bool,
    /// Seconds since the Unix epoch.
    created_at: u64,
}

#[derive(Serialize, ToSchema)]
pub(super) struct RepoList {
    /// By name.
    repos: Vec<Repo>,
}

/// List repositories
///
/// The repositories the caller may read: public ones for anyone, private ones the token grants read on; by name.
#[utoipa::path(
    get,
    path = "/api/v1/repos",
    operation_id = "repos_list",
    tag = "repos",
    responses(
        (status = 200, description = "The repositories the caller may read (public ones for anyone)", body = RepoList),
        (status = 401, description = "A token was sent and refused", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(super) async fn list(
    State(app): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<RepoList>, ApiError> {
    blocking(move || {
        let mut repos = Vec::new();
        for record in app.data.list_repos()? {
            let name = RepoName::parse(&record.name).map_err(ApiError::internal)?;
            let public = app.data.is_public(&record)?;
            let readable = public || token_reads(caller.token.as_deref(), &name);
            if readable {
                repos.push(Repo {
                    name: record.name,
                    public,
                    created_at: record.created_at,
                });
            }
        }
        repos.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Json(RepoList { repos }))
    })
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewRepo {
    /// `owner/name`.
    name: String,
    #[serde(default)]
    public: bool,
}

#[derive(Serialize, ToSchema)]
pub(super) struct CreatedRepo {
    repo: Repo,
}

/// Create a repository
///
/// An empty repository; needs `admin` on its name (`owner/name`, or a scope covering it).
#[utoipa::path(
    post,
    path = "/api/v1/repos",
    operation_id = "repos_create",
    tag = "repos",
    request_body = NewRepo,
    responses(
        (status = 201, description = "Created", body = CreatedRepo),
        (status = 400, description = "An invalid name", body = ErrorBody),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The token lacks admin on the name", body = ErrorBody),
        (status = 409, description = "The repository exists", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "The JSON is not a new repository", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn create(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiJson(body): ApiJson<NewRepo>,
) -> Result<(StatusCode, Json<CreatedRepo>), ApiError> {
    blocking(move || {
        let token = required(&caller)?;
        let name = RepoName::parse(&body.name).map_err(|e| ApiError::bad_request(e.to_string()))?;
        allows(token, &Scope::Repo(name.clone()), Op::Admin)?;
        let data = acting(&app, &caller);
        let record = data.create_repo(&name)?;
        if body.public {
            data.set_public(&name, true)?;
        }
        let repo = Repo {
            name: record.name,
            public: body.public,
            created_at: record.created_at,
        };
        Ok((StatusCode::CREATED, Json(CreatedRepo { repo })))
    })
    .await
}
