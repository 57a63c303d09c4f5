//! The REST API under `/api/v1`: JSON in and out, `Authorization: Bearer TOKEN`, errors as
//! `{"error": {"code": …, "message": …}}` (`error.rs`). Every request is authorized by the
//! same policy as git's (`auth::policy`), from the `Caller` the one authentication
//! extractor gives every route family. One module per resource.

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get, post};

use crate::auth::policy::{Denied, Request, authorize};
use crate::auth::token::{Op, Scope, VerifiedToken};
use crate::object::Sha1;
use crate::store::{IdentityKind, RepoName};

use super::AppState;
use super::auth::Caller;

mod attestations;
mod error;
mod keys;
mod policies;
mod refs;
mod repos;
mod tokens;
mod user;

pub use error::ApiError;
use error::{ApiJson, ApiPath};

pub fn routes() -> Router<Arc<AppState>> {
    let api = Router::new()
        .route("/api/v1/user", get(user::get))
        .route("/api/v1/repos", get(repos::list).post(repos::create))
        .route("/api/v1/repos/{owner}/{name}/refs", post(refs::update))
        .route(
            "/api/v1/repos/{owner}/{name}/attestations",
            post(attestations::upload),
        )
        .route(
            "/api/v1/repos/{owner}/{name}/commits/{sha}/attestations",
            get(attestations::list),
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
        .route("/api/v1/tokens", post(tokens::mint))
        .route("/api/v1/tokens/revoke", post(tokens::revoke))
        .route("/api/{*rest}", axum::routing::any(error::unknown_path))
        .route("/api", axum::routing::any(error::unknown_path));
    api.method_not_allowed_fallback(error::unknown_method)
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
