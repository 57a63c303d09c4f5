//! The REST API under `/api/v1`: JSON in and out, `Authorization: Bearer TOKEN`, errors as
//! `{"error": {"code": …, "message": …}}` (`error.rs`). Every request is authorized by the
//! same policy as git's (`auth::policy`), from the `Caller` the one authentication
//! extractor gives every route family. One module per resource.

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::routing::{any, get};
use serde::Deserialize;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoParams, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::policy::{Denied, Request, authorize};
use crate::auth::token::{Op, Scope, VerifiedToken};
use crate::object::Sha1;
use crate::store::{IdentityKind, RepoName};

use super::AppState;
use super::auth::Caller;

mod archive;
mod attestations;
mod commits;
mod contents;
mod edits;
mod error;
mod events;
mod goals;
mod hooks;
mod identities;
mod keys;
mod policies;
mod refs;
mod repos;
mod respond;
mod tokens;
mod user;

pub use super::error::{ApiError, ErrorBody};
use error::{ApiJson, ApiPath, ApiQuery};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "forge",
        description = "The REST API of forge, a git forge in which agents and humans are equal users. Authorize with `Authorization: Bearer TOKEN` (a biscuit token from `forge token issue` or `POST /api/v1/tokens`); every failure is `{\"error\": {\"code\", \"message\"}}`.",
        license(name = "MIT OR Apache-2.0"),
    ),
    modifiers(&BearerToken),
    components(schemas(ErrorBody)),
)]
struct Document;

struct BearerToken;

impl utoipa::Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The API's routes and the OpenAPI document generated from their handlers.
fn documented() -> (Router<Arc<AppState>>, utoipa::openapi::OpenApi) {
    let mut document = Document::openapi();
    document.info.version = env!("CARGO_PKG_VERSION").to_owned();
    OpenApiRouter::with_openapi(document)
        .routes(routes!(user::get))
        .routes(routes!(repos::list, repos::create))
        .routes(routes!(repos::get, repos::update, repos::delete))
        .routes(routes!(refs::list, refs::update))
        .routes(routes!(refs::get))
        .routes(routes!(commits::list, edits::create))
        .routes(routes!(commits::get))
        .routes(routes!(commits::compare))
        .routes(routes!(contents::tree))
        .routes(routes!(contents::file))
        .routes(routes!(contents::raw))
        .routes(routes!(contents::blob))
        .routes(routes!(archive::archive))
        .routes(routes!(attestations::upload))
        .routes(routes!(attestations::list))
        .routes(routes!(policies::list, policies::add))
        .routes(routes!(policies::remove))
        .routes(routes!(identities::list, identities::create))
        .routes(routes!(
            identities::get,
            identities::update,
            identities::delete
        ))
        .routes(routes!(keys::list, keys::add))
        .routes(routes!(keys::revoke))
        .routes(routes!(tokens::mint))
        .routes(routes!(tokens::revoke))
        .routes(routes!(events::list))
        .routes(routes!(events::list_repo))
        .routes(routes!(events::stream))
        .routes(routes!(events::stream_repo))
        .routes(routes!(hooks::repo_list, hooks::repo_create))
        .routes(routes!(
            hooks::repo_get,
            hooks::repo_update,
            hooks::repo_delete
        ))
        .routes(routes!(hooks::repo_deliveries))
        .routes(routes!(hooks::repo_delivery))
        .routes(routes!(hooks::repo_redeliver))
        .routes(routes!(hooks::site_list, hooks::site_create))
        .routes(routes!(
            hooks::site_get,
            hooks::site_update,
            hooks::site_delete
        ))
        .routes(routes!(hooks::site_deliveries))
        .routes(routes!(hooks::site_delivery))
        .routes(routes!(hooks::site_redeliver))
        .routes(routes!(goals::list, goals::create))
        .routes(routes!(goals::get))
        .routes(routes!(goals::add_approach))
        .routes(routes!(goals::claim))
        .routes(routes!(goals::heartbeat))
        .routes(routes!(goals::release))
        .routes(routes!(goals::promote))
        .routes(routes!(goals::abandon))
        .routes(routes!(goals::provision))
        .split_for_parts()
}

pub fn routes() -> Router<Arc<AppState>> {
    let (api, document) = documented();
    let document: Arc<str> = document
        .to_pretty_json()
        .expect("the document is plain data")
        .into();
    api.route(
        "/api/v1/openapi.json",
        get(move || {
            let document = document.clone();
            async move {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    document.to_string(),
                )
            }
        }),
    )
    .route("/api/{*rest}", any(error::unknown_path))
    .route("/api", any(error::unknown_path))
    .method_not_allowed_fallback(error::unknown_method)
    .layer(axum::middleware::from_fn(error::time_limit))
    // JSON is compressed for clients that ask; git's routes (packs) never are, nor are
    // archives, which are compressed already.
    .layer(
        tower_http::compression::CompressionLayer::new().compress_when(
            DefaultPredicate::new()
                .and(NotForContentType::const_new("application/gzip"))
                .and(NotForContentType::const_new("application/zip")),
        ),
    )
}

/// `{owner}/{name}` of a repository path.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct RepoPath {
    /// The owning identity.
    #[param(pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")]
    owner: String,
    /// The repository's name under its owner.
    #[param(pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")]
    name: String,
}

/// A slot among the server's fetches for a read that streams a repository's content
/// (archives, raw files): counted with clones against the same bound, per caller (its
/// identity, or its address without a token).
async fn fetch_slot(
    app: &AppState,
    caller: &Caller,
    client: &super::forwarded::Client,
) -> Result<super::limits::Slot, ApiError> {
    let share = match &caller.token {
        Some(token) => format!("identity:{}", token.identity),
        None => format!("address:{}", client.addr),
    };
    app.fetch_slots
        .acquire(vec![share], app.limits.slot_wait)
        .await
        .map_err(|why| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", why.to_string()))
}

/// A revision as REST readers see it: named by an id, the commit must be in the history of
/// a ref (what a force-push or a deleted branch left behind is not served, as a fetch
/// would not send it).
fn visible_revision(
    state: &crate::served::RepoState,
    rev: Option<&str>,
) -> Result<crate::browse::Revision, ApiError> {
    let revision = crate::browse::resolve(&state.repo, rev)?;
    if revision.by_id && !state.commit_reachable(revision.commit)? {
        return Err(crate::browse::BrowseError::RevisionNotFound(
            rev.unwrap_or_default().to_owned(),
        )
        .into());
    }
    Ok(revision)
}

/// The header a write to an approach's ref carries its claim lease in (as a push carries
/// `-o claim=<lease>`).
const CLAIM_HEADER: &str = "forge-claim";

/// The claim lease of a request (`Forge-Claim: <lease>`), if it sent one.
fn claim_lease(headers: &axum::http::HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(CLAIM_HEADER) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|v| *v > 0)
        .map(Some)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_claim",
                "the Forge-Claim header is a claim lease (a number)",
            )
        })
}

/// Runs blocking store work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(ApiError::internal)?
}

/// The data directory, with changes made by the caller (their events name it).
fn acting(app: &AppState, caller: &Caller) -> crate::store::DataDir {
    app.data.acting_as(caller.gate_caller().actor())
}

/// The caller's token, which this request needs.
fn required(caller: &Caller) -> Result<&Arc<VerifiedToken>, ApiError> {
    caller
        .token
        .as_ref()
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
        Denied::Expired => ApiError::unauthorized("token expired"),
        other => ApiError::forbidden(other.to_string()),
    })
}

/// Whether `token` grants reading repository `name` (public repositories aside).
fn token_reads(token: Option<&VerifiedToken>, name: &RepoName) -> bool {
    token.is_some_and(|t| allows(t, &Scope::Repo(name.clone()), Op::Read).is_ok())
}

fn parse_sha1(field: &str, hex: &str) -> Result<Sha1, ApiError> {
    Sha1::from_hex(hex.as_bytes())
        .map_err(|_| ApiError::bad_request(format!("{field} is not a 40-digit SHA-1: {hex:?}")))
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
            ApiError::not_found(
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
        ApiError::not_found(
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
