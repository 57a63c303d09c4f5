//! Attestations over REST: `POST /api/v1/repos/{owner}/{name}/attestations` keeps a
//! verified envelope (`evidence::accept`), `GET …/commits/{sha}/attestations` lists those
//! naming a commit.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{
    ApiError, ApiPath, ErrorBody, RepoPath, allows, blocking, parse_sha1, repo_for, required,
};
use crate::auth::token::{Op, Scope};
use crate::evidence::AttestationView;
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::store::Identity;
use crate::store::backend::AttestationRecord;

/// An attestation as the API shows it: what `evidence::describe` says, and the envelope.
#[derive(Serialize, ToSchema)]
pub(super) struct Attestation {
    #[serde(flatten)]
    view: AttestationView,
    /// The DSSE envelope as stored (the exact verified bytes, parsed).
    #[schema(value_type = Object)]
    envelope: Value,
}

impl Attestation {
    fn of(record: &AttestationRecord, identities: &[Identity]) -> Attestation {
        Attestation {
            view: crate::evidence::describe(record, identities),
            envelope: serde_json::from_str(&record.envelope).unwrap_or(Value::Null),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(super) struct Stored {
    attestation: Attestation,
}

/// A DSSE envelope (payload type `application/vnd.in-toto+json`).
#[derive(ToSchema)]
#[allow(dead_code)] // Only its schema is used: the body is verified as the bytes sent.
pub(super) struct Envelope {
    /// The in-toto Statement v1, base64.
    payload: String,
    #[schema(rename = "payloadType")]
    payload_type: String,
    signatures: Vec<EnvelopeSignature>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct EnvelopeSignature {
    keyid: Option<String>,
    /// The Ed25519 signature over the PAE, base64.
    sig: String,
}

/// Upload an attestation
///
/// A DSSE envelope holding an in-toto Statement v1 about commits of this repository, kept when it verifies against an active key of a known identity the token's identity may act for (itself, an agent it owns, or any as an admin). The exact verified bytes are stored, indexed by commit.
#[utoipa::path(
    post,
    path = "/api/v1/repos/{owner}/{name}/attestations",
    operation_id = "attestations_upload",
    tag = "attestations",
    params(RepoPath),
    request_body(content = Envelope, content_type = "application/json"),
    responses(
        (status = 201, description = "Verified and stored", body = Stored),
        (status = 200, description = "Already stored", body = Stored),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The token may not write here, or its identity may not act for the signer", body = ErrorBody),
        (status = 404, description = "No such repository (or the caller may not read it)", body = ErrorBody),
        (status = 413, description = "The envelope, its subjects or its predicate are too large", body = ErrorBody),
        (status = 422, description = "Refused: bad signature, unknown or revoked key, a subject not in this repository, not a statement", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn upload(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(RepoPath { owner, name }): ApiPath<RepoPath>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Stored>), ApiError> {
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
            state.repo.record_attestations(
                std::slice::from_ref(&accepted),
                &caller.gate_caller().actor(),
            )?;
        }
        let status = if stored_before {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        let attestation = Attestation::of(&accepted, &identities);
        Ok((status, Json(Stored { attestation })))
    })
    .await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct CommitPath {
    #[param(pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")]
    owner: String,
    #[param(pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")]
    name: String,
    /// The commit's SHA-1, 40 hex digits.
    #[param(pattern = "^[0-9a-fA-F]{40}$")]
    sha: String,
}

#[derive(Serialize, ToSchema)]
pub(super) struct CommitAttestations {
    commit: String,
    /// Oldest first.
    attestations: Vec<Attestation>,
}

/// List a commit's attestations
///
/// Every attestation naming the commit, oldest first; a signer whose key was revoked since is marked `"counts": false`.
#[utoipa::path(
    get,
    path = "/api/v1/repos/{owner}/{name}/commits/{sha}/attestations",
    operation_id = "attestations_list",
    tag = "attestations",
    params(CommitPath),
    responses(
        (status = 200, description = "The commit's attestations", body = CommitAttestations),
        (status = 400, description = "Not a SHA-1", body = ErrorBody),
        (status = 401, description = "A private repository without a token, or a token refused", body = ErrorBody),
        (status = 404, description = "No such repository (or the caller may not read it)", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(super) async fn list(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(CommitPath { owner, name, sha }): ApiPath<CommitPath>,
) -> Result<Json<CommitAttestations>, ApiError> {
    blocking(move || {
        let (_, record) = repo_for(&app, caller.token.as_deref(), &owner, &name, Op::Read)?;
        let commit = parse_sha1("the commit", &sha.to_ascii_lowercase())?;
        let state = app.repo_state(record)?;
        let identities = app.data.list_identities()?;
        let attestations = state
            .repo
            .attestations(&commit)?
            .iter()
            .map(|record| Attestation::of(record, &identities))
            .collect();
        Ok(Json(CommitAttestations {
            commit: commit.to_hex(),
            attestations,
        }))
    })
    .await
}
