//! The REST API under `/api/v1`: JSON in and out, `Authorization: Bearer TOKEN`, errors as
//! `{"error": {"code": …, "message": …}}`. Every request is authorized by the same policy as
//! git's (`auth::policy`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::policy::{Request, authorize};
use crate::auth::token::{self, Grant, Op, Scope, VerifiedToken};
use crate::gate::{self, Claim, NewValue, Proposal, RefChange, RefusalCode, StoredContext, Via};
use crate::object::Sha1;
use crate::store::{IdentityKind, RefTarget, RepoName, StoreError};

use super::AppState;

mod keys;
mod policies;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/user", get(user))
        .route("/api/v1/repos", get(list_repos).post(create_repo))
        .route("/api/v1/repos/{owner}/{name}/refs", post(update_ref))
        .route(
            "/api/v1/repos/{owner}/{name}/attestations",
            post(upload_attestation),
        )
        .route(
            "/api/v1/repos/{owner}/{name}/commits/{sha}/attestations",
            get(list_attestations),
        )
        .route(
            "/api/v1/repos/{owner}/{name}/policies",
            get(policies::list).post(policies::add),
        )
        .route(
            "/api/v1/repos/{owner}/{name}/policies/{id}",
            delete(policies::remove),
        )
        .route(
            "/api/v1/identities/{name}/keys",
            get(keys::list).post(keys::add),
        )
        .route("/api/v1/identities/{name}/keys/{key}", delete(keys::revoke))
        .route("/api/v1/tokens", post(mint_token))
        .route("/api/v1/tokens/revoke", post(revoke_token))
}

/// An API failure: a status, a stable code, and a message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// A failure of the server itself. Its text can name server paths, so it goes to the
    /// log; the client is told only that it happened.
    fn internal(error: impl std::fmt::Display) -> ApiError {
        tracing::error!("REST request failed: {error}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            super::INTERNAL_ERROR,
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        let status = match &error {
            StoreError::InvalidName(_) | StoreError::InvalidRefName { .. } => {
                StatusCode::BAD_REQUEST
            }
            StoreError::RepoExists(_)
            | StoreError::RefConflict { .. }
            | StoreError::RefNameConflict { .. } => StatusCode::CONFLICT,
            StoreError::RepoNotFound(_) => StatusCode::NOT_FOUND,
            _ => return ApiError::internal(error),
        };
        ApiError::new(status, error.code(), error.to_string())
    }
}

impl From<gate::Refusal> for ApiError {
    fn from(refusal: gate::Refusal) -> ApiError {
        let status = match refusal.code {
            RefusalCode::NotPermitted => StatusCode::FORBIDDEN,
            RefusalCode::Stale | RefusalCode::NameConflict | RefusalCode::Duplicate => {
                StatusCode::CONFLICT
            }
            RefusalCode::NoSuchRef => StatusCode::NOT_FOUND,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, refusal.code(), refusal.reason)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"forge\""),
            );
        }
        response
    }
}

type ApiResult = Result<Response, ApiError>;

/// Runs blocking store work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(ApiError::internal)?
}

/// The request's verified, unrevoked token, if it carries one.
fn optional_token(
    app: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Arc<VerifiedToken>>, ApiError> {
    let token = super::auth::credential(headers)
        .map_err(|_| ApiError::unauthorized("the Authorization header is malformed"))?;
    let Some(token) = token else {
        return Ok(None);
    };
    let verified = app
        .auth
        .verify(&token)
        .map_err(|e| ApiError::unauthorized(e.to_string()))?;
    super::auth::standing(&app.data, &verified)?.map_err(ApiError::unauthorized)?;
    Ok(Some(verified))
}

fn required_token(app: &AppState, headers: &HeaderMap) -> Result<Arc<VerifiedToken>, ApiError> {
    optional_token(app, headers)?
        .ok_or_else(|| ApiError::unauthorized("a token is required (Authorization: Bearer TOKEN)"))
}

/// Whether `token` may `op` on `scope` now (expiry and narrowing included).
fn allows(token: &VerifiedToken, scope: &Scope, op: Op) -> Result<(), ApiError> {
    authorize(
        token,
        &Request {
            scope,
            op,
            ref_name: None,
        },
    )
    .map_err(|denied| match denied {
        crate::auth::policy::Denied::Expired => ApiError::unauthorized("token expired"),
        other => ApiError::forbidden(other.to_string()),
    })
}

/// `GET /api/v1/user`: who the token speaks for and what it grants.
async fn user(State(app): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult {
    blocking(move || {
        let token = required_token(&app, &headers)?;
        // A token that expired is refused here too.
        allows_anything(&token)?;
        let identity = app.data.find_identity(&token.identity)?;
        let compiled = &token.compiled;
        let shown = token::inspect(&token.biscuit.to_base64().map_err(ApiError::internal)?)
            .map_err(ApiError::internal)?;
        Ok(Json(json!({
            "identity": {
                "name": token.identity,
                "kind": identity.as_ref().map(|i| i.kind.as_str()),
                "owner": identity.as_ref().and_then(|i| i.owner.clone()),
            },
            "rights": compiled.rights().iter().map(|(scope, op)| json!({"scope": scope, "op": op.as_str()})).collect::<Vec<_>>(),
            "ref_globs": compiled.ref_globs(),
            "expires": compiled.expires().map(|at| at.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())),
            "blocks": shown.blocks.iter().map(|b| json!({"source": b.source, "revocation_id": b.revocation_id})).collect::<Vec<_>>(),
        }))
        .into_response())
    })
    .await
}

/// Refuses an expired token (one whose rights cover nothing is still a live token).
fn allows_anything(token: &VerifiedToken) -> Result<(), ApiError> {
    if token.compiled.expired(SystemTime::now()) {
        return Err(ApiError::unauthorized("token expired"));
    }
    Ok(())
}

/// `GET /api/v1/repos`: the repositories the caller may read (public ones for anyone).
async fn list_repos(State(app): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult {
    blocking(move || {
        let token = optional_token(&app, &headers)?;
        let mut listed = Vec::new();
        for record in app.data.list_repos()? {
            let name = RepoName::parse(&record.name).map_err(ApiError::internal)?;
            let public = app.data.is_public(&record)?;
            let readable = public
                || token
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
struct NewRepo {
    name: String,
    #[serde(default)]
    public: bool,
}

/// `POST /api/v1/repos {"name": "owner/name", "public": false}`: needs `admin` on the name.
async fn create_repo(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Json<NewRepo>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let Json(body) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    blocking(move || {
        let token = required_token(&app, &headers)?;
        let name = RepoName::parse(&body.name).map_err(|e| ApiError::bad_request(e.to_string()))?;
        allows(&token, &Scope::Repo(name.clone()), Op::Admin)?;
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

#[derive(Deserialize)]
struct NewToken {
    identity: String,
    /// `owner/name`, `owner/*` or `*`.
    repos: Vec<String>,
    ops: Vec<String>,
    #[serde(default)]
    refs: Vec<String>,
    /// Lifetime in seconds (default 30 days; at most 10 years).
    ttl_seconds: Option<u64>,
}

const DEFAULT_TTL: Duration = Duration::from_secs(30 * 86_400);
const MAX_TTL_SECONDS: u64 = 10 * 365 * 86_400;

/// `POST /api/v1/tokens`: mints a token for an identity the caller administers (itself,
/// an agent it owns, or anyone for a token with `admin` on `*`), with rights the caller
/// holds as `admin` on every scope asked for.
async fn mint_token(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Json<NewToken>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let Json(body) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    blocking(move || {
        let caller = required_token(&app, &headers)?;
        allows_anything(&caller)?;
        if caller.compiled.is_narrowed() {
            // A narrowed token's limits (refs, expiry) would not carry over to a fresh one.
            return Err(ApiError::forbidden("a narrowed token cannot mint tokens"));
        }
        let identity = administered_identity(&app, &caller, &body.identity, true)?;
        let bad = |e: token::TokenError| ApiError::bad_request(e.to_string());
        let scopes: Vec<Scope> = body
            .repos
            .iter()
            .map(|s| Scope::parse(s))
            .collect::<Result<_, _>>()
            .map_err(bad)?;
        let ops = Op::parse_list(&body.ops.join(",")).map_err(bad)?;
        for scope in &scopes {
            allows(&caller, scope, Op::Admin).map_err(|e| {
                ApiError::forbidden(format!(
                    "minting rights on {} needs admin there: {}",
                    scope.fact_name(),
                    e.message
                ))
            })?;
        }
        // A minted token never reaches past the minter's ref limits (tokens from before
        // admin with --refs was refused can still carry both).
        if caller.compiled.ref_globs().is_some() {
            return Err(ApiError::forbidden(
                "a token with ref limits cannot mint tokens",
            ));
        }
        let ttl = match body.ttl_seconds {
            Some(0) => return Err(ApiError::bad_request("ttl_seconds must be positive")),
            Some(seconds) => Duration::from_secs(seconds.min(MAX_TTL_SECONDS)),
            None => DEFAULT_TTL,
        };
        // Never longer than the token it was minted with, and revoked along with it.
        let mut expires = SystemTime::now() + ttl;
        if let Some(limit) = caller.compiled.expires() {
            expires = expires.min(limit);
        }
        let mut parents = caller.compiled.parents().to_vec();
        parents.extend(caller.biscuit.revocation_identifiers().into_iter().take(1));
        let grant = Grant {
            incarnation: identity.incarnation,
            identity: identity.name,
            scopes,
            ops,
            ref_globs: body.refs,
            expires: Some(expires),
            parents,
        };
        let minted = token::mint(&grant, app.auth.root_key()).map_err(bad)?;
        let ids = token::parse_unverified(&minted)
            .map_err(ApiError::internal)?
            .revocation_identifiers();
        Ok((
            StatusCode::CREATED,
            Json(json!({
                "token": minted,
                "revocation_ids": ids.iter().map(|id| token::hex(id)).collect::<Vec<_>>(),
            })),
        )
            .into_response())
    })
    .await
}

#[derive(Deserialize)]
struct Revocation {
    token: Option<String>,
    revocation_id: Option<String>,
}

/// `POST /api/v1/tokens/revoke {"token": …}` (its last block: it and every token narrowed
/// from it) or `{"revocation_id": …}` (a token with `admin` on `*` only).
async fn revoke_token(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Json<Revocation>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let Json(body) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    blocking(move || {
        let caller = required_token(&app, &headers)?;
        allows_anything(&caller)?;
        let site_admin =
            !caller.compiled.is_narrowed() && allows(&caller, &Scope::All, Op::Admin).is_ok();
        let id: Vec<u8> = match (&body.token, &body.revocation_id) {
            (Some(target), None) => {
                let target = app
                    .auth
                    .verify(target)
                    .map_err(|e| ApiError::bad_request(format!("the token to revoke: {e}")))?;
                // A narrowed token may revoke itself and tokens narrowed from it only.
                let derived = target.revocation_ids.starts_with(&caller.revocation_ids);
                let own = target.identity.eq_ignore_ascii_case(&caller.identity)
                    && (!caller.compiled.is_narrowed() || derived);
                let owned_agent = app
                    .data
                    .find_identity(&target.identity)?
                    .and_then(|i| i.owner)
                    .is_some_and(|o| o.eq_ignore_ascii_case(&caller.identity));
                let owned_agent = owned_agent && !caller.compiled.is_narrowed();
                if !(site_admin || own || owned_agent) {
                    return Err(ApiError::forbidden(format!(
                        "{} may not revoke tokens of {}",
                        caller.identity, target.identity
                    )));
                }
                target
                    .revocation_ids
                    .last()
                    .cloned()
                    .ok_or_else(|| ApiError::bad_request("the token has no blocks"))?
            }
            (None, Some(hex)) => {
                if !site_admin {
                    return Err(ApiError::forbidden(
                        "revoking by id needs admin on *; send the token instead",
                    ));
                }
                parse_revocation_id(hex)?
            }
            _ => {
                return Err(ApiError::bad_request(
                    "give exactly one of \"token\" and \"revocation_id\"",
                ));
            }
        };
        let added = app.data.revoke_token_blocks(std::slice::from_ref(&id))?;
        let body: Value = json!({ "revoked": token::hex(&id), "new": added > 0 });
        Ok(Json(body).into_response())
    })
    .await
}

fn parse_revocation_id(hex: &str) -> Result<Vec<u8>, ApiError> {
    crate::hex::decode(hex, 64)
        .ok_or_else(|| ApiError::bad_request("a revocation id is 128 hex digits"))
}

/// The identity `name` if `caller` administers it: a site admin (`admin` on `*`) any,
/// an identity itself (an agent only when `agent_itself`), a human the agents it owns.
/// Only a site admin learns that an identity does not exist.
fn administered_identity(
    app: &AppState,
    caller: &VerifiedToken,
    name: &str,
    agent_itself: bool,
) -> Result<crate::store::Identity, ApiError> {
    let site_admin = allows(caller, &Scope::All, Op::Admin).is_ok();
    let not_administered = || {
        ApiError::forbidden(format!(
            "{} does not administer identity {name}",
            caller.identity
        ))
    };
    let Some(identity) = app.data.find_identity(name)? else {
        return Err(if site_admin {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "identity_not_found",
                format!("identity {name} does not exist"),
            )
        } else {
            not_administered()
        });
    };
    let itself = identity.name.eq_ignore_ascii_case(&caller.identity)
        && (agent_itself || identity.kind == IdentityKind::Human);
    let owner = identity.kind == IdentityKind::Agent
        && identity
            .owner
            .as_deref()
            .is_some_and(|o| o.eq_ignore_ascii_case(&caller.identity));
    if site_admin || itself || owner {
        Ok(identity)
    } else {
        Err(not_administered())
    }
}

/// The registry record of `owner/name` if `token` may `op` on it. Reading a public
/// repository needs no token; a caller that may not read it is not told it exists.
fn repo_for(
    app: &AppState,
    token: Option<&VerifiedToken>,
    owner: &str,
    name: &str,
    op: Op,
) -> Result<(RepoName, crate::store::RepoRecord), ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "repo_not_found",
            format!("repository {owner}/{name} does not exist"),
        )
    };
    let repo_name = RepoName::parse(&format!("{owner}/{name}")).map_err(|_| not_found())?;
    let scope = Scope::Repo(repo_name.clone());
    let record = app.data.find_repo(&repo_name)?;
    let public = match &record {
        Some(record) => app.data.is_public(record)?,
        None => false,
    };
    let readable = match token {
        _ if public => true,
        Some(token) => match allows(token, &scope, Op::Read) {
            Ok(()) => true,
            Err(e) if e.status == StatusCode::FORBIDDEN => false,
            Err(e) => return Err(e),
        },
        None => false,
    };
    if !readable {
        return Err(match token {
            None => ApiError::unauthorized("a token is required (Authorization: Bearer TOKEN)"),
            Some(_) => not_found(),
        });
    }
    let record = record.ok_or_else(not_found)?;
    if op != Op::Read {
        let token = token.ok_or_else(|| {
            ApiError::unauthorized("a token is required (Authorization: Bearer TOKEN)")
        })?;
        allows(token, &scope, op)?;
    }
    Ok((repo_name, record))
}

#[derive(Deserialize)]
struct RefUpdateBody {
    #[serde(rename = "ref")]
    name: String,
    /// The SHA-1 the ref is at now; missing or null when it must not exist yet.
    #[serde(default)]
    old: Option<String>,
    /// The SHA-1 to point it at; null deletes it.
    new: Option<String>,
}

fn parse_sha1(field: &str, hex: &str) -> Result<Sha1, ApiError> {
    Sha1::from_hex(hex.as_bytes())
        .map_err(|_| ApiError::bad_request(format!("{field} is not a 40-digit SHA-1: {hex:?}")))
}

/// `POST /api/v1/repos/{owner}/{name}/refs {"ref": "refs/heads/x", "old": SHA1|null,
/// "new": SHA1|null}`: a compare-and-swap of one ref to an object the repository has,
/// through the same gate as a push (and held to the same rules: the token's refs, the
/// default branch's protections).
async fn update_ref(
    State(app): State<Arc<AppState>>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Json<RefUpdateBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let Json(body) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    blocking(move || {
        let token = required_token(&app, &headers)?;
        let (repo_name, record) = repo_for(&app, Some(&token), &owner, &name, Op::Write)?;
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
        let caller = super::auth::Caller {
            token: Some(token.clone()),
        };
        let may_update = |ref_name: &str| caller.may_update(&repo_name, ref_name);
        let proposal = Proposal {
            via: Via::Rest,
            caller: caller.gate_caller(&app.data),
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

impl From<crate::evidence::EvidenceError> for ApiError {
    fn from(error: crate::evidence::EvidenceError) -> ApiError {
        use crate::evidence::EvidenceError;
        let status = match &error {
            EvidenceError::Store(_) => return ApiError::internal(error),
            EvidenceError::NotSigner { .. } => StatusCode::FORBIDDEN,
            EvidenceError::Envelope(crate::attest::AttestError::TooLarge { .. }) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, error.code(), error.to_string())
    }
}

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
async fn upload_attestation(
    State(app): State<Arc<AppState>>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult {
    blocking(move || {
        let token = required_token(&app, &headers)?;
        let (repo_name, record) = repo_for(&app, Some(&token), &owner, &name, Op::Write)?;
        let admin = allows(&token, &Scope::Repo(repo_name), Op::Admin).is_ok();
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
async fn list_attestations(
    State(app): State<Arc<AppState>>,
    Path((owner, name, sha)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    blocking(move || {
        let token = optional_token(&app, &headers)?;
        let (_, record) = repo_for(&app, token.as_deref(), &owner, &name, Op::Read)?;
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
