//! `/api/v1/repos/{owner}/{name}/tree`, `…/file`, `…/raw` and `…/blobs/{sha}`: a
//! directory at a revision, a file as JSON (base64) or as its bytes, a blob by its id.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::respond::Freshness;
use super::{ApiError, ApiPath, ApiQuery, ErrorBody, RepoPath, blocking, parse_sha1, repo_for};
use crate::auth::token::Op;
use crate::browse::{self, BrowseError, PathEntry, Revision};
use crate::object::{EntryKind, EntryTarget, ObjectId};
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::store::Repo;

/// Largest file `…/file` returns inside JSON; `…/raw` takes larger ones.
const MAX_JSON_FILE: u64 = 1 << 20;
/// Largest file `…/raw` and `…/blobs` return (an archive or a clone takes anything).
const MAX_RAW_FILE: u64 = 128 << 20;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct PathQuery {
    /// The revision (default `HEAD`): a branch, a tag, a full ref name, or an id (answers are
    /// then immutable).
    #[serde(rename = "ref")]
    #[param(rename = "ref")]
    rev: Option<String>,
    /// A path in the revision's tree, `/`-separated (default: the root).
    path: Option<String>,
}

fn kind_name(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::File => "file",
        EntryKind::Executable => "executable",
        EntryKind::Symlink => "symlink",
        EntryKind::Directory => "directory",
        EntryKind::Gitlink => "submodule",
    }
}

/// What a path names at a revision, or why nothing.
fn entry_at(repo: &Repo, revision: &Revision, path: &str) -> Result<PathEntry, ApiError> {
    let components = browse::split_path(path)?;
    let info = browse::commit_info(repo, revision.commit)?;
    browse::lookup(repo, info.tree, &components)?.ok_or_else(|| {
        BrowseError::PathNotFound {
            path: path.to_owned(),
            commit: revision.sha1.to_hex(),
        }
        .into()
    })
}

/// A directory's entry.
#[derive(Serialize, ToSchema)]
pub(super) struct TreeEntryView {
    name: String,
    /// The entry's path from the root.
    path: String,
    /// `file`, `executable`, `symlink`, `directory` or `submodule`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// The mode as the tree writes it (`100644`, `40000`, …).
    mode: String,
    /// The object's SHA-1 (for a submodule, the commit in the other repository).
    sha1: String,
    /// The native id (none for a submodule).
    id: Option<String>,
    /// Bytes, for files and symlinks.
    size: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct TreeView {
    /// The commit the revision resolved to.
    commit: String,
    path: String,
    /// The directory's tree SHA-1.
    sha1: String,
    /// In the order git stores them.
    items: Vec<TreeEntryView>,
}

/// A directory at a revision
#[utoipa::path(
    get,
    path = "/api/v1/repos/{owner}/{name}/tree",
    operation_id = "contents_tree",
    tag = "contents",
    params(RepoPath, PathQuery),
    responses(
        (status = 200, description = "The directory's entries", body = TreeView),
        (status = 304, description = "The client's copy (`If-None-Match`) is current"),
        (status = 400, description = "An invalid path", body = ErrorBody),
        (status = 401, description = "A private repository without a token, or a token refused", body = ErrorBody),
        (status = 404, description = "No such repository, revision or path", body = ErrorBody),
        (status = 422, description = "The path is not a directory, or the revision not a commit", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(super) async fn tree(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    ApiPath(RepoPath { owner, name }): ApiPath<RepoPath>,
    ApiQuery(query): ApiQuery<PathQuery>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let (_, record) = repo_for(&app, caller.token.as_deref(), &owner, &name, Op::Read)?;
        let public = app.data.is_public(&record)?;
        let state = app.repo_state(record)?;
        let repo = &state.repo;
        let revision = super::visible_revision(&state, query.rev.as_deref())?;
        let path = query.path.unwrap_or_default();
        let entry = entry_at(repo, &revision, &path)?;
        let (EntryKind::Directory, EntryTarget::Object(tree)) = (entry.kind, entry.target) else {
            return Err(BrowseError::NotADirectory {
                path,
                commit: revision.sha1.to_hex(),
            }
            .into());
        };
        let tree_sha1 = repo
            .sha1_of(&tree)
            .ok_or_else(|| ApiError::internal("a tree without a SHA-1"))?;
        let freshness = Freshness {
            // The body names the commit too: a branch that moved keeps no stale copy.
            etag: format!("tree-{}-{tree_sha1}", revision.sha1),
            immutable: revision.by_id,
            public,
        };
        if let Some(answer) = freshness.not_modified(&headers) {
            return Ok(answer);
        }
        let dir = path.trim_matches('/');
        let mut items = Vec::new();
        for item in browse::read_tree(repo, tree)? {
            let size = match (item.kind, item.id) {
                (EntryKind::File | EntryKind::Executable | EntryKind::Symlink, Some(id)) => {
                    Some(object_size(repo, &id)?)
                }
                _ => None,
            };
            let item_name = String::from_utf8_lossy(&item.name).into_owned();
            items.push(TreeEntryView {
                path: if dir.is_empty() {
                    item_name.clone()
                } else {
                    format!("{dir}/{item_name}")
                },
                name: item_name,
                kind: kind_name(item.kind),
                mode: item.mode.to_string(),
                sha1: item.sha1.to_hex(),
                id: item.id.map(|id| id.to_hex()),
                size,
            });
        }
        let view = TreeView {
            commit: revision.sha1.to_hex(),
            path: dir.to_owned(),
            sha1: tree_sha1.to_hex(),
            items,
        };
        Ok(freshness.answer(&headers, Json(view)))
    })
    .await
}

fn object_size(repo: &Repo, id: &ObjectId) -> Result<u64, ApiError> {
    let location = crate::history::locate(repo, id)?;
    Ok(repo.object_size(&location)?)
}

/// The blob a path names at a revision (a file or a symlink), with its mode's kind.
fn blob_at(
    repo: &Repo,
    revision: &Revision,
    path: &str,
) -> Result<(ObjectId, PathEntry), ApiError> {
    let entry = entry_at(repo, revision, path)?;
    match (entry.kind, entry.target) {
        (EntryKind::File | EntryKind::Executable | EntryKind::Symlink, EntryTarget::Object(id)) => {
            Ok((id, entry))
        }
        _ => Err(BrowseError::NotAFile {
            path: path.to_owned(),
            commit: revision.sha1.to_hex(),
        }
        .into()),
    }
}

fn too_large(size: u64, limit: u64, instead: &str) -> ApiError {
    BrowseError::TooLarge(format!(
        "the file has {size} bytes, more than the {limit} this endpoint returns; {instead}"
    ))
    .into()
}

#[derive(Serialize, ToSchema)]
pub(super) struct FileView {
    /// The commit the revision resolved to.
    commit: String,
    path: String,
    /// `file`, `executable` or `symlink`.
    #[serde(rename = "type")]
    kind: &'static str,
    mode: String,
    /// The blob's SHA-1.
    sha1: String,
    /// The blob's native id.
    id: String,
    size: u64,
    /// Always `base64`.
    encoding: &'static str,
    /// The bytes, base64 (standard alphabet, padded). A symlink's content is its target.
    content: String,
}

/// A file as JSON
///
/// Its bytes base64-encoded, up to 1 MiB; `…/raw` returns larger ones.
#[utoipa::path(
    get,
    path = "/api/v1/repos/{owner}/{name}/file",
    operation_id = "contents_file",
    tag = "contents",
    params(RepoPath, PathQuery),
    responses(
        (status = 200, description = "The file", body = FileView),
        (status = 304, description = "The client's copy (`If-None-Match`) is current"),
        (status = 400, description = "An invalid path", body = ErrorBody),
        (status = 401, description = "A private repository without a token, or a token refused", body = ErrorBody),
        (status = 404, description = "No such repository, revision or path", body = ErrorBody),
        (status = 413, description = "Larger than 1 MiB: use `…/raw`", body = ErrorBody),
        (status = 422, description = "The path is not a file, or the revision not a commit", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(super) async fn file(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    ApiPath(RepoPath { owner, name }): ApiPath<RepoPath>,
    ApiQuery(query): ApiQuery<PathQuery>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let (_, record) = repo_for(&app, caller.token.as_deref(), &owner, &name, Op::Read)?;
        let public = app.data.is_public(&record)?;
        let state = app.repo_state(record)?;
        let repo = &state.repo;
        let revision = super::visible_revision(&state, query.rev.as_deref())?;
        let path = query.path.unwrap_or_default();
        let (id, entry) = blob_at(repo, &revision, &path)?;
        let location = crate::history::locate(repo, &id)?;
        let freshness = Freshness {
            etag: format!("file-{}-{}-{}", revision.sha1, location.sha1(), entry.mode),
            immutable: revision.by_id,
            public,
        };
        if let Some(answer) = freshness.not_modified(&headers) {
            return Ok(answer);
        }
        let size = repo.object_size(&location)?;
        if size > MAX_JSON_FILE {
            return Err(too_large(
                size,
                MAX_JSON_FILE,
                &format!("GET /api/v1/repos/{owner}/{name}/raw returns it"),
            ));
        }
        let (_, content) = repo.read_content(&location)?;
        let view = FileView {
            commit: revision.sha1.to_hex(),
            path: path.trim_matches('/').to_owned(),
            kind: kind_name(entry.kind),
            mode: entry.mode.to_string(),
            sha1: location.sha1().to_hex(),
            id: id.to_hex(),
            size,
            encoding: "base64",
            content: base64::engine::general_purpose::STANDARD.encode(&content),
        };
        Ok(freshness.answer(&headers, Json(view)))
    })
    .await
}

/// A blob's bytes as the response body, never sniffed into something a browser runs.
fn raw_body(repo: &Repo, id: &ObjectId) -> Result<Response, ApiError> {
    let location = crate::history::locate(repo, id)?;
    let size = repo.object_size(&location)?;
    if size > MAX_RAW_FILE {
        return Err(too_large(
            size,
            MAX_RAW_FILE,
            "an archive or a clone has it",
        ));
    }
    let (_, content) = repo.read_content(&location)?;
    let mut response = axum::body::Bytes::from_owner(content).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    Ok(response)
}

/// A file's bytes
#[utoipa::path(
    get,
    path = "/api/v1/repos/{owner}/{name}/raw",
    operation_id = "contents_raw",
    tag = "contents",
    params(RepoPath, PathQuery),
    responses(
        (status = 200, description = "The file's bytes", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 304, description = "The client's copy (`If-None-Match`) is current"),
        (status = 400, description = "An invalid path", body = ErrorBody),
        (status = 401, description = "A private repository without a token, or a token refused", body = ErrorBody),
        (status = 404, description = "No such repository, revision or path", body = ErrorBody),
        (status = 413, description = "Larger than 128 MiB", body = ErrorBody),
        (status = 422, description = "The path is not a file, or the revision not a commit", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(super) async fn raw(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    client: crate::server::forwarded::Client,
    headers: HeaderMap,
    ApiPath(RepoPath { owner, name }): ApiPath<RepoPath>,
    ApiQuery(query): ApiQuery<PathQuery>,
) -> Result<Response, ApiError> {
    let slot = super::fetch_slot(&app, &caller, &client).await?;
    blocking(move || {
        let _slot = slot;
        let (_, record) = repo_for(&app, caller.token.as_deref(), &owner, &name, Op::Read)?;
        let public = app.data.is_public(&record)?;
        let state = app.repo_state(record)?;
        let repo = &state.repo;
        let revision = super::visible_revision(&state, query.rev.as_deref())?;
        let path = query.path.unwrap_or_default();
        let (id, _) = blob_at(repo, &revision, &path)?;
        let location = crate::history::locate(repo, &id)?;
        let freshness = Freshness {
            etag: format!("blob-{}", location.sha1()),
            immutable: revision.by_id,
            public,
        };
        if let Some(answer) = freshness.not_modified(&headers) {
            return Ok(answer);
        }
        Ok(freshness.answer(&headers, raw_body(repo, &id)?))
    })
    .await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct BlobPath {
    #[param(pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")]
    owner: String,
    #[param(pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")]
    name: String,
    /// The blob's SHA-1 (40 hex digits).
    #[param(pattern = "^[0-9a-fA-F]{40}$")]
    sha: String,
}

/// A blob's bytes, by its SHA-1
///
/// Immutable: the answer carries `ETag` and `Cache-Control: immutable`.
#[utoipa::path(
    get,
    path = "/api/v1/repos/{owner}/{name}/blobs/{sha}",
    operation_id = "contents_blob",
    tag = "contents",
    params(BlobPath),
    responses(
        (status = 200, description = "The blob's bytes", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 304, description = "The client's copy (`If-None-Match`) is current"),
        (status = 400, description = "Not a SHA-1", body = ErrorBody),
        (status = 401, description = "A private repository without a token, or a token refused", body = ErrorBody),
        (status = 404, description = "No such repository or blob", body = ErrorBody),
        (status = 413, description = "Larger than 128 MiB", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(super) async fn blob(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    client: crate::server::forwarded::Client,
    headers: HeaderMap,
    ApiPath(BlobPath { owner, name, sha }): ApiPath<BlobPath>,
) -> Result<Response, ApiError> {
    let slot = super::fetch_slot(&app, &caller, &client).await?;
    blocking(move || {
        let _slot = slot;
        let (_, record) = repo_for(&app, caller.token.as_deref(), &owner, &name, Op::Read)?;
        let public = app.data.is_public(&record)?;
        let sha1 = parse_sha1("sha", &sha)?;
        let state = app.repo_state(record)?;
        let repo = &state.repo;
        let not_found = || {
            ApiError::not_found(
                "object_not_found",
                format!("{owner}/{name} has no blob {sha1}"),
            )
        };
        let location = repo.locate_sha1(&sha1).ok_or_else(not_found)?;
        if location.kind() != Some(crate::object::Kind::Blob)
            || !state.object_reachable(location.id())?
        {
            return Err(not_found());
        }
        let freshness = Freshness {
            etag: format!("blob-{sha1}"),
            immutable: true,
            public,
        };
        if let Some(answer) = freshness.not_modified(&headers) {
            return Ok(answer);
        }
        Ok(freshness.answer(&headers, raw_body(repo, &location.id())?))
    })
    .await
}
