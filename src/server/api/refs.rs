//! `/api/v1/repos/{owner}/{name}/refs`: the refs, a page at a time or one by name, and a
//! ref moved through the gate, as a push moves it.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody, RepoPath, blocking, parse_sha1, repo_for,
    required,
};
use crate::auth::token::Op;
use crate::gate::{Claim, GoalPart, NewValue, Proposal, RefChange, StoredContext, Via};
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
    #[schema(pattern = "^[0-9a-fA-F]{40}$")]
    old: Option<String>,
    /// The SHA-1 to point it at; null deletes it.
    #[schema(pattern = "^[0-9a-fA-F]{40}$")]
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
    headers: axum::http::HeaderMap,
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
            goal: GoalPart {
                lease: super::claim_lease(&headers)?,
                ..GoalPart::default()
            },
        };
        // Serialised with pushes, as they are with each other.
        let _push = state.push_lock();
        state.with_graph(|graph| -> Result<(), ApiError> {
            let mut ctx = StoredContext::new(repo, graph, &app.data, &may_update)?;
            ctx.apply_one(&proposal)?
                .inspect_err(|refusal| app.metrics.refused("rest", refusal.code()))?;
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

const DEFAULT_REF_PAGE: usize = 100;
const MAX_REF_PAGE: usize = 1000;

/// One ref as the API shows it.
#[derive(Serialize, ToSchema)]
pub(super) struct RefView {
    name: String,
    /// The git object it points at (SHA-1); none for a symbolic ref.
    sha1: Option<String>,
    /// The native (BLAKE3) id of that object.
    id: Option<String>,
    /// The ref a symbolic ref (`HEAD`) points at.
    target: Option<String>,
}

impl RefView {
    fn of(repo: &crate::store::Repo, name: &[u8], target: &RefTarget) -> RefView {
        let name = String::from_utf8_lossy(name).into_owned();
        match target {
            RefTarget::Direct(id) => RefView {
                name,
                sha1: repo.sha1_of(id).map(|s| s.to_string()),
                id: Some(id.to_hex()),
                target: None,
            },
            RefTarget::Symbolic(to) => RefView {
                name,
                sha1: None,
                id: None,
                target: Some(String::from_utf8_lossy(to).into_owned()),
            },
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct RefQuery {
    /// Only refs whose names start with this (`refs/heads/`).
    prefix: Option<String>,
    /// Where the previous page ended (its `next_cursor`).
    #[param(pattern = "^[A-Za-z0-9_-]*$")]
    cursor: Option<String>,
    /// At most this many (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct RefPage {
    /// By name.
    items: Vec<RefView>,
    /// Give it as `?cursor=` for the next page; none on the last.
    next_cursor: Option<String>,
}

/// The repository's refs, by name, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/repos/{owner}/{name}/refs",
    operation_id = "refs_list",
    tag = "refs",
    params(RepoPath, RefQuery),
    responses(
        (status = 200, description = "A page of refs", body = RefPage),
        (status = 400, description = "A bad cursor or limit", body = ErrorBody),
        (status = 401, description = "A private repository without a token, or a token refused", body = ErrorBody),
        (status = 404, description = "No such repository (or the caller may not read it)", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(super) async fn list(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    client: crate::server::forwarded::Client,
    ApiPath(RepoPath { owner, name }): ApiPath<RepoPath>,
    ApiQuery(query): ApiQuery<RefQuery>,
) -> Result<axum::response::Response, ApiError> {
    blocking(move || {
        let (_, record) = repo_for(&app, caller.token.as_deref(), &owner, &name, Op::Read)?;
        let limit = query.limit.unwrap_or(DEFAULT_REF_PAGE);
        if !(1..=MAX_REF_PAGE).contains(&limit) {
            return Err(ApiError::bad_request(format!(
                "limit is 1 to {MAX_REF_PAGE}, not {limit}"
            )));
        }
        // The cursor is the last name of the previous page, opaque to clients.
        let after = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
            Some(cursor) => Some(
                crate::attest::dsse::decode_base64(cursor)
                    .ok_or_else(|| ApiError::bad_request("the cursor is not one this API gave"))?,
            ),
            None => None,
        };
        let prefix = query.prefix.unwrap_or_default();
        let state = app.repo_state(record)?;
        let repo = &state.repo;
        let mut items = Vec::new();
        let mut more = false;
        for (ref_name, target) in repo.refs()? {
            if !ref_name.starts_with(prefix.as_bytes())
                || after.as_deref().is_some_and(|a| ref_name.as_slice() <= a)
            {
                continue;
            }
            if items.len() == limit {
                more = true;
                break;
            }
            items.push(RefView::of(repo, &ref_name, &target));
        }
        let next_cursor = match items.last() {
            Some(last) if more => Some(base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                &last.name,
            )),
            _ => None,
        };
        let mut response = axum::response::IntoResponse::into_response(Json(RefPage {
            items,
            next_cursor: next_cursor.clone(),
        }));
        if let Some(cursor) = next_cursor {
            let mut next =
                format!("/api/v1/repos/{owner}/{name}/refs?limit={limit}&cursor={cursor}");
            if !prefix.is_empty() {
                next.push_str(&format!(
                    "&prefix={}",
                    super::respond::percent_encode(&prefix)
                ));
            }
            super::respond::link_next(&mut response, &client.url(&next));
        }
        Ok(response)
    })
    .await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct RefPath {
    #[param(pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")]
    owner: String,
    #[param(pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")]
    name: String,
    /// The ref name after `refs/`, its slashes percent-encoded: `heads%2Fmain` for
    /// `refs/heads/main`.
    #[serde(rename = "ref")]
    #[param(rename = "ref")]
    name_in_refs: String,
}

/// One ref.
#[utoipa::path(
    get,
    path = "/api/v1/repos/{owner}/{name}/refs/{ref}",
    operation_id = "refs_get",
    tag = "refs",
    params(RefPath),
    responses(
        (status = 200, description = "The ref", body = RefView),
        (status = 401, description = "A private repository without a token, or a token refused", body = ErrorBody),
        (status = 404, description = "No such repository or ref", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(super) async fn get(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(RefPath {
        owner,
        name,
        name_in_refs,
    }): ApiPath<RefPath>,
) -> Result<Json<RefView>, ApiError> {
    blocking(move || {
        let (_, record) = repo_for(&app, caller.token.as_deref(), &owner, &name, Op::Read)?;
        let full = format!("refs/{name_in_refs}");
        let state = app.repo_state(record)?;
        let target = state.repo.read_ref(full.as_bytes())?.ok_or_else(|| {
            ApiError::not_found("ref_not_found", format!("{owner}/{name} has no ref {full}"))
        })?;
        Ok(Json(RefView::of(&state.repo, full.as_bytes(), &target)))
    })
    .await
}
