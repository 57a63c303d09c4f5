//! `/api/v1/repos`: the repositories a caller may read, new ones, and one repository with
//! its settings (read, changed, deleted).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody, RepoPath, acting, allows, blocking, repo_for,
    required, token_reads,
};
use crate::auth::token::{Op, Scope};
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::store::{RepoName, Setting};

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
    items: Vec<Repo>,
    /// Give it as `?cursor=` for the next page; none on the last.
    next_cursor: Option<String>,
}

const DEFAULT_REPO_PAGE: usize = 100;
const MAX_REPO_PAGE: usize = 1000;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct RepoQuery {
    /// Where the previous page ended (its `next_cursor`).
    #[param(pattern = "^[A-Za-z0-9_-]*$")]
    cursor: Option<String>,
    /// At most this many (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// List repositories
///
/// The repositories the caller may read: public ones for anyone, private ones the token grants read on; by name, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/repos",
    operation_id = "repos_list",
    tag = "repos",
    params(RepoQuery),
    responses(
        (status = 200, description = "A page of the repositories the caller may read (public ones for anyone)", body = RepoList),
        (status = 400, description = "A bad cursor or limit", body = ErrorBody),
        (status = 401, description = "A token was sent and refused", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(super) async fn list(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    client: crate::server::forwarded::Client,
    ApiQuery(query): ApiQuery<RepoQuery>,
) -> Result<axum::response::Response, ApiError> {
    blocking(move || {
        let limit = query.limit.unwrap_or(DEFAULT_REPO_PAGE);
        if !(1..=MAX_REPO_PAGE).contains(&limit) {
            return Err(ApiError::bad_request(format!(
                "limit is 1 to {MAX_REPO_PAGE}, not {limit}"
            )));
        }
        // The cursor is the last name of the previous page, opaque to clients.
        let after = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
            Some(cursor) => Some(
                crate::attest::dsse::decode_base64(cursor)
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .ok_or_else(|| ApiError::bad_request("the cursor is not one this API gave"))?,
            ),
            None => None,
        };
        let mut records = app.data.list_repos()?;
        records.sort_by(|a, b| a.name.cmp(&b.name));
        let mut items = Vec::new();
        let mut more = false;
        for record in records {
            if after.as_deref().is_some_and(|a| record.name.as_str() <= a) {
                continue;
            }
            let name = RepoName::parse(&record.name).map_err(ApiError::internal)?;
            let public = app.data.is_public(&record)?;
            if !(public || token_reads(caller.token.as_deref(), &name)) {
                continue;
            }
            if items.len() == limit {
                more = true;
                break;
            }
            items.push(Repo {
                name: record.name,
                public,
                created_at: record.created_at,
            });
        }
        let next_cursor = match items.last() {
            Some(last) if more => Some(base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                &last.name,
            )),
            _ => None,
        };
        let mut response = axum::response::IntoResponse::into_response(Json(RepoList {
            items,
            next_cursor: next_cursor.clone(),
        }));
        if let Some(cursor) = next_cursor {
            super::respond::link_next(
                &mut response,
                &client.url(&format!("/api/v1/repos?limit={limit}&cursor={cursor}")),
            );
        }
        Ok(response)
    })
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewRepo {
    /// `owner/name`.
    #[schema(pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}/[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")]
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

/// A repository with its settings.
#[derive(Serialize, ToSchema)]
pub(super) struct RepoDetail {
    /// `owner/name`.
    name: String,
    public: bool,
    /// Seconds since the Unix epoch.
    created_at: u64,
    /// The branch `HEAD` names (none in an empty repository without `HEAD`).
    default_branch: Option<String>,
    /// Non-fast-forward pushes to the default branch are taken.
    allow_force: bool,
    /// Pushed objects must pass git's fsck checks.
    fsck_objects: bool,
    /// The path to clone, under this server's address: `/{owner}/{name}.git`.
    git_path: String,
}

fn detail(app: &AppState, record: crate::store::RepoRecord) -> Result<RepoDetail, ApiError> {
    let public = app.data.is_public(&record)?;
    let name = record.name.clone();
    let created_at = record.created_at;
    let state = app.repo_state(record)?;
    let settings = state.repo.settings()?;
    let default_branch = match state.repo.read_ref(b"HEAD")? {
        Some(crate::store::RefTarget::Symbolic(target)) => {
            Some(String::from_utf8_lossy(&target).into_owned())
        }
        _ => None,
    };
    Ok(RepoDetail {
        git_path: format!("/{name}.git"),
        name,
        public,
        created_at,
        default_branch,
        allow_force: settings.allow_force,
        fsck_objects: settings.fsck_objects,
    })
}

/// One repository
#[utoipa::path(
    get,
    path = "/api/v1/repos/{owner}/{name}",
    operation_id = "repos_get",
    tag = "repos",
    params(RepoPath),
    responses(
        (status = 200, description = "The repository", body = RepoDetail),
        (status = 401, description = "A private repository without a token, or a token refused", body = ErrorBody),
        (status = 404, description = "No such repository (or the caller may not read it)", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(super) async fn get(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(RepoPath { owner, name }): ApiPath<RepoPath>,
) -> Result<Json<RepoDetail>, ApiError> {
    blocking(move || {
        let (_, record) = repo_for(&app, caller.token.as_deref(), &owner, &name, Op::Read)?;
        Ok(Json(detail(&app, record)?))
    })
    .await
}

/// Settings to change; those left out stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RepoChanges {
    #[serde(default)]
    public: Option<bool>,
    #[serde(default)]
    allow_force: Option<bool>,
    #[serde(default)]
    fsck_objects: Option<bool>,
}

/// Change a repository's settings
///
/// Needs `admin` on the repository; each change is a `repo.changed` event.
#[utoipa::path(
    patch,
    path = "/api/v1/repos/{owner}/{name}",
    operation_id = "repos_update",
    tag = "repos",
    params(RepoPath),
    request_body = RepoChanges,
    responses(
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 200, description = "The repository as it is now", body = RepoDetail),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The token lacks admin on the repository", body = ErrorBody),
        (status = 404, description = "No such repository (or the caller may not read it)", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "The JSON is not a set of settings", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn update(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(RepoPath { owner, name }): ApiPath<RepoPath>,
    ApiJson(changes): ApiJson<RepoChanges>,
) -> Result<Json<RepoDetail>, ApiError> {
    blocking(move || {
        let token = required(&caller)?;
        let (repo_name, _) = repo_for(&app, Some(token), &owner, &name, Op::Admin)?;
        let data = acting(&app, &caller);
        for (setting, value) in [
            (Setting::Public, changes.public),
            (Setting::AllowForce, changes.allow_force),
            (Setting::FsckObjects, changes.fsck_objects),
        ] {
            if let Some(value) = value {
                data.set_setting(&repo_name, setting, value)?;
            }
        }
        let record = app.data.find_repo(&repo_name)?.ok_or_else(|| {
            ApiError::not_found(
                "repo_not_found",
                format!("repository {repo_name} does not exist"),
            )
        })?;
        Ok(Json(detail(&app, record)?))
    })
    .await
}

/// Delete a repository
///
/// Needs `admin` on the repository. Its refs, objects and metadata are removed; a `repo.deleted` event is logged. A repository created again under the name is a new one.
#[utoipa::path(
    delete,
    path = "/api/v1/repos/{owner}/{name}",
    operation_id = "repos_delete",
    tag = "repos",
    params(RepoPath),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The token lacks admin on the repository", body = ErrorBody),
        (status = 404, description = "No such repository (or the caller may not read it)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn delete(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(RepoPath { owner, name }): ApiPath<RepoPath>,
) -> Result<StatusCode, ApiError> {
    blocking(move || {
        let token = required(&caller)?;
        let (repo_name, record) = repo_for(&app, Some(token), &owner, &name, Op::Admin)?;
        acting(&app, &caller).delete_repo(&repo_name)?;
        app.forget_repo(record.id);
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}
