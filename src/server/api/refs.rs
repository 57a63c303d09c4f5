//! `POST /api/v1/repos/{owner}/{name}/refs`: a ref moved through the gate, as a push
//! moves it.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiJson, ApiPath, ApiResult, blocking, parse_sha1, repo_for, required};
use crate::auth::token::Op;
use crate::gate::{self, Claim, NewValue, Proposal, RefChange, StoredContext, Via};
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::store::RefTarget;

#[derive(Deserialize)]
pub(super) struct RefUpdateBody {
    #[serde(rename = "ref")]
    name: String,
    /// The SHA-1 the ref is at now; missing or null when it must not exist yet.
    #[serde(default)]
    old: Option<String>,
    /// The SHA-1 to point it at; null deletes it.
    new: Option<String>,
}

/// `POST /api/v1/repos/{owner}/{name}/refs {"ref": "refs/heads/x", "old": SHA1|null,
/// "new": SHA1|null}`: a compare-and-swap of one ref to an object the repository has,
/// through the same gate as a push (and held to the same rules: the token's refs, the
/// default branch's protections).
pub(super) async fn update(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath((owner, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<RefUpdateBody>,
) -> ApiResult {
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
        };
        // Serialised with pushes, as they are with each other.
        let _push = state.push_lock();
        state.with_graph(|graph| -> Result<(), ApiError> {
            let mut ctx = StoredContext::new(repo, graph, &app.data, &may_update)?;
            let verdict = gate::decide(&mut ctx, &proposal)?.into_iter().next();
            let authorized = verdict.ok_or_else(|| ApiError::internal("no verdict"))??;
            repo.commit(None, &[authorized])?;
            Ok(())
        })?;
        state.schedule_repack();
        Ok(
            Json(json!({ "ref": { "name": body.name, "sha1": new.map(|s| s.to_string()) } }))
                .into_response(),
        )
    })
    .await
}
