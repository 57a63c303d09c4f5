//! `/api/v1/repos/{owner}/{name}/commits` and `…/compare`: one commit, a history a page at
//! a time (of a revision, or of a path in it), and two revisions compared.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::respond::{Freshness, link_next, percent_encode};
use super::{ApiError, ApiPath, ApiQuery, ErrorBody, RepoPath, blocking, repo_for};
use crate::auth::token::Op;
use crate::browse::{self, CommitInfo};
use crate::object::{EntryTarget, ObjectId, Sha1, Signature};
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::store::Repo;

/// An object by both its ids.
#[derive(Serialize, ToSchema)]
pub(super) struct ObjectIds {
    /// git's id.
    sha1: String,
    /// The native (BLAKE3) id.
    id: String,
}

impl ObjectIds {
    fn of(id: ObjectId, sha1: Sha1) -> ObjectIds {
        ObjectIds {
            sha1: sha1.to_hex(),
            id: id.to_hex(),
        }
    }
}

/// An author or committer.
#[derive(Serialize, ToSchema)]
pub(super) struct Person {
    name: String,
    email: String,
    /// RFC 3339, in the person's own offset.
    date: String,
    /// Seconds since the Unix epoch.
    timestamp: i64,
    /// The offset from UTC the time was recorded in, in minutes.
    tz_offset_minutes: i32,
}

impl Person {
    fn of(signature: &Signature) -> Person {
        Person {
            name: String::from_utf8_lossy(&signature.name).into_owned(),
            email: String::from_utf8_lossy(&signature.email).into_owned(),
            date: browse::rfc3339(signature.time, signature.tz_offset_minutes),
            timestamp: signature.time,
            tz_offset_minutes: signature.tz_offset_minutes,
        }
    }
}

/// A commit.
#[derive(Serialize, ToSchema)]
pub(super) struct CommitView {
    sha1: String,
    id: String,
    tree: ObjectIds,
    parents: Vec<ObjectIds>,
    author: Option<Person>,
    committer: Option<Person>,
    /// The whole message (lossily UTF-8 when it is not).
    message: String,
    /// The message's first line.
    subject: String,
    /// Whether the commit carries a signature (`gpgsig`); it is not verified.
    signed: bool,
}

impl CommitView {
    pub(super) fn of(info: &CommitInfo) -> CommitView {
        CommitView {
            sha1: info.sha1.to_hex(),
            id: info.id.to_hex(),
            tree: ObjectIds::of(info.tree, info.tree_sha1),
            parents: info
                .parents
                .iter()
                .map(|(id, sha1)| ObjectIds::of(*id, *sha1))
                .collect(),
            author: info.author.as_ref().map(Person::of),
            committer: info.committer.as_ref().map(Person::of),
            message: String::from_utf8_lossy(&info.message).into_owned(),
            subject: info.subject(),
            signed: info.signed,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct CommitPath {
    #[param(pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")]
    owner: String,
    #[param(pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")]
    name: String,
    /// A revision: a 40-digit SHA-1 or 64-digit native id (answers are then immutable), a
    /// branch, a tag, or a full ref name with its slashes percent-encoded.
    rev: String,
}

/// One commit
///
/// Addressed by an id, the answer carries `ETag` and `Cache-Control: immutable`.
#[utoipa::path(
    get,
    path = "/api/v1/repos/{owner}/{name}/commits/{rev}",
    operation_id = "commits_get",
    tag = "commits",
    params(CommitPath),
    responses(
        (status = 200, description = "The commit", body = CommitView),
        (status = 304, description = "The client's copy (`If-None-Match`) is current"),
        (status = 401, description = "A private repository without a token, or a token refused", body = ErrorBody),
        (status = 404, description = "No such repository or revision", body = ErrorBody),
        (status = 422, description = "The revision names something other than a commit", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(super) async fn get(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    ApiPath(CommitPath { owner, name, rev }): ApiPath<CommitPath>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let (_, record) = repo_for(&app, caller.token.as_deref(), &owner, &name, Op::Read)?;
        let public = app.data.is_public(&record)?;
        let state = app.repo_state(record)?;
        let revision = browse::resolve(&state.repo, Some(&rev))?;
        let freshness = Freshness {
            etag: format!("commit-{}", revision.sha1),
            immutable: revision.by_id,
            public,
        };
        if let Some(answer) = freshness.not_modified(&headers) {
            return Ok(answer);
        }
        let info = browse::commit_info(&state.repo, revision.commit)?;
        Ok(freshness.answer(&headers, Json(CommitView::of(&info))))
    })
    .await
}

const DEFAULT_LOG_PAGE: usize = 30;
const MAX_LOG_PAGE: usize = 100;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct LogQuery {
    /// The revision whose history to list (default `HEAD`): a branch, a tag, a full ref
    /// name or an id.
    #[serde(rename = "ref")]
    #[param(rename = "ref")]
    rev: Option<String>,
    /// Only commits that changed this file or directory (git's history simplification).
    path: Option<String>,
    /// Where the previous page ended (its `next_cursor`); it pins the history it started
    /// from, so pages stay consistent while the branch moves.
    #[param(pattern = "^[A-Za-z0-9_-]*$")]
    cursor: Option<String>,
    /// At most this many (1 to 100, default 30).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct CommitPage {
    /// Newest first, in the order `git log` shows them.
    items: Vec<CommitView>,
    /// Give it as `?cursor=` for the next page; none on the last.
    next_cursor: Option<String>,
}

/// A cursor of the log: the tip's SHA-1 and how many commits came before the page.
fn log_cursor(tip: &Sha1, skip: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("{tip}:{skip}"))
}

fn parse_log_cursor(repo: &Repo, cursor: &str) -> Result<(ObjectId, usize), ApiError> {
    let bad = || ApiError::bad_request("the cursor is not one this API gave");
    let text = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = std::str::from_utf8(&text).map_err(|_| bad())?;
    let (tip, skip) = text.split_once(':').ok_or_else(bad)?;
    let tip = Sha1::from_hex(tip.as_bytes()).map_err(|_| bad())?;
    let skip = skip.parse().map_err(|_| bad())?;
    let tip = repo.id_of_sha1(&tip).ok_or_else(bad)?;
    Ok((tip, skip))
}

/// A history, a page at a time
///
/// The commits of a revision (or those of them that changed `path`), newest first as `git log` lists them.
#[utoipa::path(
    get,
    path = "/api/v1/repos/{owner}/{name}/commits",
    operation_id = "commits_list",
    tag = "commits",
    params(RepoPath, LogQuery),
    responses(
        (status = 200, description = "A page of commits", body = CommitPage),
        (status = 400, description = "A bad cursor, limit or path", body = ErrorBody),
        (status = 401, description = "A private repository without a token, or a token refused", body = ErrorBody),
        (status = 404, description = "No such repository or revision", body = ErrorBody),
        (status = 422, description = "The revision names something other than a commit", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(super) async fn list(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    client: crate::server::forwarded::Client,
    ApiPath(RepoPath { owner, name }): ApiPath<RepoPath>,
    ApiQuery(query): ApiQuery<LogQuery>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let (_, record) = repo_for(&app, caller.token.as_deref(), &owner, &name, Op::Read)?;
        let limit = query.limit.unwrap_or(DEFAULT_LOG_PAGE);
        if !(1..=MAX_LOG_PAGE).contains(&limit) {
            return Err(ApiError::bad_request(format!(
                "limit is 1 to {MAX_LOG_PAGE}, not {limit}"
            )));
        }
        let path = query.path.unwrap_or_default();
        let components = browse::split_path(&path)?;
        let state = app.repo_state(record)?;
        let repo = &state.repo;
        let (tip, skip) = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
            Some(cursor) => parse_log_cursor(repo, cursor)?,
            None => (browse::resolve(repo, query.rev.as_deref())?.commit, 0),
        };
        let start = state.with_graph(|graph| browse::load_commit(repo, graph, tip))?;
        let page = browse::log(repo, state.graph(), start, &components, skip, limit)?;
        let items = page
            .commits
            .iter()
            .map(|id| browse::commit_info(repo, *id).map(|info| CommitView::of(&info)))
            .collect::<Result<Vec<_>, _>>()?;
        let tip_sha1 = repo
            .sha1_of(&tip)
            .ok_or_else(|| ApiError::internal("the tip has no SHA-1"))?;
        let next_cursor = page.next_skip.map(|skip| log_cursor(&tip_sha1, skip));
        let mut response = axum::response::IntoResponse::into_response(Json(CommitPage {
            items,
            next_cursor: next_cursor.clone(),
        }));
        if let Some(cursor) = next_cursor {
            let mut next =
                format!("/api/v1/repos/{owner}/{name}/commits?limit={limit}&cursor={cursor}");
            if !path.is_empty() {
                next.push_str(&format!("&path={}", percent_encode(&path)));
            }
            link_next(&mut response, &client.url(&next));
        }
        Ok(response)
    })
    .await
}

const MAX_COMPARE_COMMITS: usize = 250;
const MAX_COMPARE_FILES: usize = 1000;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct CompareQuery {
    /// The revision compared against (a branch, a tag, a full ref name or an id).
    base: String,
    /// The revision compared.
    head: String,
}

/// A changed file.
#[derive(Serialize, ToSchema)]
pub(super) struct ChangedFile {
    path: String,
    /// `added`, `deleted`, `modified` or `type_changed`.
    status: String,
    old_mode: Option<String>,
    new_mode: Option<String>,
    /// The SHA-1 of the old blob (or submodule commit).
    old_sha1: Option<String>,
    new_sha1: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct ComparisonView {
    base: String,
    head: String,
    /// The best common ancestor (none for unrelated histories); the changed files are those
    /// between it and `head`.
    merge_base: Option<String>,
    /// Every best common ancestor (more than one after a criss-cross merge).
    merge_bases: Vec<String>,
    /// Commits in `head`'s history that `base`'s lacks.
    ahead_by: usize,
    /// Commits in `base`'s history that `head`'s lacks.
    behind_by: usize,
    /// The commits `head` is ahead by, oldest first (at most 250).
    commits: Vec<CommitView>,
    commits_truncated: bool,
    /// Files that differ between the merge base and `head`, by path (at most 1000).
    files: Vec<ChangedFile>,
    files_truncated: bool,
}

/// Two revisions compared
///
/// How far `head` is ahead of and behind `base`, their merge base, the commits `head` brings and the files it changes since the merge base (a three-dot compare).
#[utoipa::path(
    get,
    path = "/api/v1/repos/{owner}/{name}/compare",
    operation_id = "commits_compare",
    tag = "commits",
    params(RepoPath, CompareQuery),
    responses(
        (status = 200, description = "The comparison", body = ComparisonView),
        (status = 304, description = "The client's copy (`If-None-Match`) is current"),
        (status = 400, description = "`base` or `head` missing", body = ErrorBody),
        (status = 401, description = "A private repository without a token, or a token refused", body = ErrorBody),
        (status = 404, description = "No such repository or revision", body = ErrorBody),
        (status = 422, description = "A revision names something other than a commit", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(super) async fn compare(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    ApiPath(RepoPath { owner, name }): ApiPath<RepoPath>,
    ApiQuery(query): ApiQuery<CompareQuery>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let (_, record) = repo_for(&app, caller.token.as_deref(), &owner, &name, Op::Read)?;
        let public = app.data.is_public(&record)?;
        let state = app.repo_state(record)?;
        let repo = &state.repo;
        let base = browse::resolve(repo, Some(&query.base))?;
        let head = browse::resolve(repo, Some(&query.head))?;
        let freshness = Freshness {
            etag: format!("compare-{}-{}", base.sha1, head.sha1),
            immutable: base.by_id && head.by_id,
            public,
        };
        if let Some(answer) = freshness.not_modified(&headers) {
            return Ok(answer);
        }
        let (base_index, head_index) = state.with_graph(|graph| {
            Ok::<_, crate::browse::BrowseError>((
                browse::load_commit(repo, graph, base.commit)?,
                browse::load_commit(repo, graph, head.commit)?,
            ))
        })?;
        let comparison = browse::compare(&state.graph().read(), base_index, head_index);
        let merge_base = comparison.merge_bases.first().copied();
        let base_tree = match merge_base {
            Some(id) => Some(browse::commit_info(repo, id)?.tree),
            None => None,
        };
        let head_info = browse::commit_info(repo, head.commit)?;
        let (files, files_truncated) =
            browse::diff_trees(repo, base_tree, Some(head_info.tree), MAX_COMPARE_FILES)?;
        let sha1 = |id: &ObjectId| repo.sha1_of(id).map(|s| s.to_hex()).unwrap_or_default();
        let target_sha1 = |target: &EntryTarget<ObjectId>| match target {
            EntryTarget::Object(id) => sha1(id),
            EntryTarget::Gitlink(sha) => sha.to_hex(),
        };
        let commits = comparison
            .ahead
            .iter()
            .take(MAX_COMPARE_COMMITS)
            .map(|id| browse::commit_info(repo, *id).map(|info| CommitView::of(&info)))
            .collect::<Result<Vec<_>, _>>()?;
        let view = ComparisonView {
            base: base.sha1.to_hex(),
            head: head.sha1.to_hex(),
            merge_base: merge_base.map(|id| sha1(&id)),
            merge_bases: comparison.merge_bases.iter().map(sha1).collect(),
            ahead_by: comparison.ahead.len(),
            behind_by: comparison.behind_by,
            commits_truncated: comparison.ahead.len() > commits.len(),
            commits,
            files: files
                .iter()
                .map(|change| ChangedFile {
                    path: String::from_utf8_lossy(&change.path).into_owned(),
                    status: change.status.as_str().to_owned(),
                    old_mode: change.old.as_ref().map(|(m, _)| m.to_string()),
                    new_mode: change.new.as_ref().map(|(m, _)| m.to_string()),
                    old_sha1: change.old.as_ref().map(|(_, t)| target_sha1(t)),
                    new_sha1: change.new.as_ref().map(|(_, t)| target_sha1(t)),
                })
                .collect(),
            files_truncated,
        };
        Ok(freshness.answer(&headers, Json(view)))
    })
    .await
}
