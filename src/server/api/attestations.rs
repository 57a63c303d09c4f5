//! Attestations over REST: `POST /api/v1/repos/{owner}/{name}/attestations` keeps a
//! verified envelope (`evidence::accept`), `GET …/commits/{sha}/attestations` lists those
//! naming a commit.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::{ApiPath, ApiResult, allows, blocking, parse_sha1, repo_for, required};
use crate::auth::token::{Op, Scope};
use crate::server::AppState;
use crate::server::auth::Caller;

/// An attestation as the API shows it: `evidence::describe` and the envelope.
fn attestation_json(
    record: &crate::store::backend::AttestationRecord,
    identities: &[crate::store::Identity],
) -> Value {
    let mut shown = crate::evidence::describe(record, identities);
    shown["envelope"] = serde_json::from_str::<Value>(&record.envelope).unwrap_or(Value::Null);
    shown
}

/// `POST /api/v1/repos/{owner}/{name}/attestations` with a DSSE envelope as the body:
/// kept when it verifies against an active key of a known identity the token's identity
/// may act for, and names only commits this repository has (`evidence::accept`).
pub(super) async fn upload(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath((owner, name)): ApiPath<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult {
    blocking(move || {
        let token = required(&caller)?;
        let (repo_name, record) = repo_for(&app, Some(token), &owner, &name, Op::Write)?;
        let admin = allows(token, &Scope::Repo(repo_name), Op::Admin).is_ok();
        let state = app.repo_state(record)?;
        let uploader = crate::evidence::Uploader {
            identity: &token.identity,
            admin,
        };
        let identities = app.data.list_identities()?;
        let accepted =
            crate::evidence::accept(&identities, &state.repo, &body, &uploader, &|_| false)?;
        let known = state
            .repo
            .attestations(&parse_sha1("commit", &accepted.commits[0])?)?;
        let stored_before = known.iter().any(|r| r.id == accepted.id);
        if !stored_before {
            state
                .repo
                .record_attestations(std::slice::from_ref(&accepted))?;
        }
        let status = if stored_before {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        Ok((
            status,
            Json(json!({ "attestation": attestation_json(&accepted, &identities) })),
        )
            .into_response())
    })
    .await
}

/// `GET /api/v1/repos/{owner}/{name}/commits/{sha}/attestations`: every attestation
/// naming the commit, oldest first; a signer whose key was revoked since is marked
/// `"counts": false`.
pub(super) async fn list(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath((owner, name, sha)): ApiPath<(String, String, String)>,
) -> ApiResult {
    blocking(move || {
        let (_, record) = repo_for(&app, caller.token.as_deref(), &owner, &name, Op::Read)?;
        let commit = parse_sha1("the commit", &sha.to_ascii_lowercase())?;
        let state = app.repo_state(record)?;
        let identities = app.data.list_identities()?;
        let listed: Vec<Value> = state
            .repo
            .attestations(&commit)?
            .iter()
            .map(|record| attestation_json(record, &identities))
            .collect();
        Ok(Json(json!({ "commit": commit.to_hex(), "attestations": listed })).into_response())
    })
    .await
}
