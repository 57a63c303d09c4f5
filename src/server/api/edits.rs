//! `POST /api/v1/repos/{owner}/{name}/commits`: a commit made from file changes, without a
//! clone, moved onto its branch through the gate (`crate::edit`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::commits::CommitView;
use super::{ApiError, ApiPath, ErrorBody, RepoPath, blocking, parse_sha1, repo_for, required};
use crate::auth::token::Op;
use crate::browse;
use crate::edit::{self, Change, FileMode, NewCommit, Person};
use crate::server::AppState;
use crate::server::auth::Caller;

/// Largest request body: the changes' contents, base64 in JSON.
const MAX_BODY: usize = 32 << 20;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateCommit {
    /// The branch: a name under `refs/heads/`, or a full ref name.
    branch: String,
    /// The commit to build on (SHA-1): the branch's tip when it exists (the update is a
    /// compare-and-swap: 409 when the branch moved), any commit to start a new branch from;
    /// null or missing for a root commit on a new branch.
    #[serde(default)]
    parent: Option<String>,
    message: String,
    /// Defaults to the token's identity; the committer is always the token's identity.
    #[serde(default)]
    author: Option<PersonBody>,
    /// Applied in order (at most 1000).
    changes: Vec<ChangeBody>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PersonBody {
    name: String,
    email: String,
}

/// One change to the tree.
#[derive(Deserialize, ToSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum ChangeBody {
    /// Write a file (directories above it are made), replacing one already there. Give its
    /// bytes as `content` (base64) or `text` (UTF-8).
    Put {
        path: String,
        #[serde(default)]
        content: Option<String>,
        #[serde(default)]
        text: Option<String>,
        /// `file` (default), `executable` or `symlink` (the content is the link's target).
        #[serde(default)]
        mode: Option<ModeBody>,
    },
    /// Remove a file or a whole directory.
    Delete { path: String },
    /// Rename a file or a directory; nothing may be at `to`.
    Move { from: String, to: String },
}

#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub(super) enum ModeBody {
    File,
    Executable,
    Symlink,
}

#[derive(Serialize, ToSchema)]
pub(super) struct CommitCreated {
    /// The full ref name moved.
    branch: String,
    commit: CommitView,
    /// What the gate noted without refusing (an evaluate-mode rule, a bypass).
    notes: Vec<String>,
}

/// Make a commit from file changes
///
/// The forge writes the objects, checks them as git's fsck checks a push, and moves the branch through the same gate as a push (token refs, default-branch protections, ref policies). Stock git then fetches the commit byte for byte.
#[utoipa::path(
    post,
    path = "/api/v1/repos/{owner}/{name}/commits",
    operation_id = "commits_create",
    tag = "commits",
    params(RepoPath),
    request_body = CreateCommit,
    responses(
        (status = 201, description = "The commit, on its branch", body = CommitCreated),
        (status = 400, description = "Bad JSON, base64, path or field", body = ErrorBody),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The token may not write this branch", body = ErrorBody),
        (status = 404, description = "No such repository (or the caller may not read it)", body = ErrorBody),
        (status = 409, description = "The branch is not at `parent` (compare-and-swap lost)", body = ErrorBody),
        (status = 413, description = "The body is larger than 32 MiB", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A change that cannot apply (nothing to delete, a file in the way), a result git's fsck refuses, an unknown parent, or a refusal of the gate (a ref policy: FORGE-P…)", body = ErrorBody),
        (status = 503, description = "The server's memory for request bodies is in use; retry", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn create(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(RepoPath { owner, name }): ApiPath<RepoPath>,
    request: Request,
) -> Result<Response, ApiError> {
    let token = required(&caller)?.clone();
    let lease = super::claim_lease(request.headers())?;
    let json_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim() == "application/json")
        });
    if !json_type {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Expected request with `Content-Type: application/json`",
        ));
    }
    let mut reserved = app
        .request_memory
        .reservation(format!("identity:{}", token.identity));
    let body = read_body(request.into_body(), &mut reserved).await?;
    // A JSON object (serde would also read the struct from an array), parsed once: the
    // body may be large.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::bad_request("the body is a JSON object"));
    }
    let parsed: CreateCommit = serde_json::from_slice(&body).map_err(|e| {
        let status = match e.classify() {
            serde_json::error::Category::Data => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, "invalid_request", format!("the body: {e}"))
    })?;
    drop(body);
    blocking(move || {
        let (repo_name, record) = repo_for(&app, Some(&token), &owner, &name, Op::Write)?;
        let branch = if parsed.branch.starts_with("refs/") {
            parsed.branch.clone()
        } else {
            format!("refs/heads/{}", parsed.branch)
        };
        let parsed_parent = parsed.parent.clone();
        let parent = parsed
            .parent
            .as_deref()
            .map(|p| parse_sha1("parent", p))
            .transpose()?;
        let mut changes = Vec::with_capacity(parsed.changes.len());
        for (i, change) in parsed.changes.into_iter().enumerate() {
            changes.push(change_of(i, change)?);
        }
        let identity = token.identity.clone();
        let committer = Person {
            name: identity.clone(),
            email: format!("{identity}@forge.invalid"),
        };
        let author = parsed.author.map_or_else(
            || committer.clone(),
            |p| Person {
                name: p.name,
                email: p.email,
            },
        );
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let request = NewCommit {
            branch: branch.clone(),
            parent,
            message: parsed.message,
            author,
            committer,
            time,
            changes,
        };
        let state = app.repo_state(record)?;
        let repo = &state.repo;
        // The objects are made and checked before any lock: only the gate and the
        // transaction that publishes them wait for other pushes.
        let prepared = edit::prepare(repo, request)?;
        if let Some(parent) = prepared.parent()
            && !state.commit_reachable(parent)?
        {
            // A commit no ref reaches (a force-push left it behind) is not built on: that
            // would bring its history back.
            return Err(edit::EditError::ParentNotFound(parsed_parent.unwrap_or_default()).into());
        }
        let may_update = |ref_name: &str| caller.may_update(&repo_name, ref_name);
        let made = {
            let _push = state.push_lock();
            state.with_graph(|graph| {
                prepared.publish(
                    repo,
                    graph,
                    &app.data,
                    caller.gate_caller(),
                    lease,
                    &may_update,
                )
            })??
        };
        state.schedule_repack();
        let info = browse::commit_info(repo, made.commit)?;
        Ok((
            StatusCode::CREATED,
            Json(CommitCreated {
                branch,
                commit: CommitView::of(&info),
                notes: made.notes,
            }),
        )
            .into_response())
    })
    .await
}

fn change_of(index: usize, change: ChangeBody) -> Result<Change, ApiError> {
    Ok(match change {
        ChangeBody::Put {
            path,
            content,
            text,
            mode,
        } => {
            let content = match (content, text) {
                (Some(encoded), None) => base64::engine::general_purpose::STANDARD
                    .decode(encoded.as_bytes())
                    .map_err(|e| {
                        ApiError::bad_request(format!(
                            "changes[{index}].content is not base64: {e}"
                        ))
                    })?,
                (None, Some(text)) => text.into_bytes(),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "changes[{index}] ({path}) needs `content` (base64) or `text`, not both"
                    )));
                }
            };
            let mode = match mode.unwrap_or(ModeBody::File) {
                ModeBody::File => FileMode::File,
                ModeBody::Executable => FileMode::Executable,
                ModeBody::Symlink => FileMode::Symlink,
            };
            Change::Put {
                path,
                content,
                mode,
            }
        }
        ChangeBody::Delete { path } => Change::Delete { path },
        ChangeBody::Move { from, to } => Change::Move { from, to },
    })
}

/// The request body, at most `MAX_BODY` bytes, held against the server's memory budget.
async fn read_body(
    body: axum::body::Body,
    reserved: &mut crate::server::limits::Reserved,
) -> Result<Vec<u8>, ApiError> {
    let mut frames = body.into_data_stream();
    let mut raw: Vec<u8> = Vec::new();
    while let Some(frame) = futures_util::StreamExt::next(&mut frames).await {
        let frame = frame
            .map_err(|e| ApiError::bad_request(format!("the request body was cut off: {e}")))?;
        if raw.len() + frame.len() > MAX_BODY {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the body is larger than {MAX_BODY} bytes"),
            ));
        }
        reserved.grow_to(raw.len() + frame.len()).map_err(|why| {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", why.to_string())
        })?;
        raw.extend_from_slice(&frame);
    }
    Ok(raw)
}
