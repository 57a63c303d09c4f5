//! `/api/v1/tokens`: minting tokens for identities the caller administers, and revoking
//! them (and every token narrowed from them).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    ApiError, ApiJson, ErrorBody, acting, administered_identity, allows, blocking, required,
};
use crate::auth::token::{self, Grant, Op, Scope};
use crate::server::AppState;
use crate::server::auth::Caller;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewToken {
    identity: String,
    /// `owner/name`, `owner/*` or `*`.
    #[schema(min_items = 1)]
    repos: Vec<String>,
    /// `read`, `write`, `admin`.
    #[schema(min_items = 1, inline, value_type = Vec<TokenOp>)]
    ops: Vec<String>,
    /// Ref globs the token may update (`refs/heads/agent/**`); none: every ref.
    #[serde(default)]
    refs: Vec<String>,
    /// Lifetime in seconds (default 30 days; at most 10 years).
    ttl_seconds: Option<u64>,
}

/// An operation a token grants (as the schema states it; `ops` is read as strings).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum TokenOp {
    Read,
    Write,
    Admin,
}

const DEFAULT_TTL: Duration = Duration::from_secs(30 * 86_400);
const MAX_TTL_SECONDS: u64 = 10 * 365 * 86_400;

#[derive(Serialize, ToSchema)]
pub(super) struct MintedToken {
    token: String,
    /// One per block, 128 hex digits each.
    revocation_ids: Vec<String>,
}

/// Mint a token
///
/// For an identity the caller administers (itself, an agent it owns, or anyone with `admin` on `*`), with rights the caller holds as `admin` on every scope asked for; never longer-lived than the caller's token, and revoked with it.
#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    operation_id = "tokens_mint",
    tag = "tokens",
    request_body = NewToken,
    responses(
        (status = 201, description = "Minted", body = MintedToken),
        (status = 400, description = "An unknown operation or scope, or a zero lifetime", body = ErrorBody),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The caller does not administer the identity or hold admin on a scope, or its token is narrowed", body = ErrorBody),
        (status = 404, description = "No such identity (told to site admins only)", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "The JSON is not a token request", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn mint(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiJson(body): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<MintedToken>), ApiError> {
    blocking(move || {
        let data = acting(&app, &caller);
        let caller = required(&caller)?;
        if caller.compiled.is_narrowed() {
            // A narrowed token's limits (refs, expiry) would not carry over to a fresh one.
            return Err(ApiError::forbidden("a narrowed token cannot mint tokens"));
        }
        let identity = administered_identity(&app, caller, &body.identity, true)?;
        let bad = |e: token::TokenError| ApiError::bad_request(e.to_string());
        let scopes: Vec<Scope> = body
            .repos
            .iter()
            .map(|s| Scope::parse(s))
            .collect::<Result<_, _>>()
            .map_err(bad)?;
        let ops = Op::parse_list(&body.ops.join(",")).map_err(bad)?;
        for scope in &scopes {
            allows(caller, scope, Op::Admin).map_err(|e| {
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
        let minted_for = identity.name.clone();
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
        data.token_minted(&minted_for, &ids)?;
        Ok((
            StatusCode::CREATED,
            Json(MintedToken {
                token: minted,
                revocation_ids: ids.iter().map(|id| token::hex(id)).collect(),
            }),
        ))
    })
    .await
}

/// Exactly one of the two.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Revocation {
    /// A token to revoke: its last block, so it and every token narrowed from it.
    token: Option<String>,
    /// A block's revocation id (a token with admin on `*` only).
    revocation_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct Revoked {
    /// The revocation id now revoked.
    revoked: String,
    /// Whether it was not revoked before.
    new: bool,
}

/// Revoke a token
///
/// By the token (its last block: it and every token narrowed from it) or by a revocation id (a token with `admin` on `*` only).
#[utoipa::path(
    post,
    path = "/api/v1/tokens/revoke",
    operation_id = "tokens_revoke",
    tag = "tokens",
    request_body = Revocation,
    responses(
        (status = 200, description = "Revoked", body = Revoked),
        (status = 400, description = "Not exactly one of the two, or not a token or revocation id", body = ErrorBody),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The caller may not revoke that token", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "The JSON is not a revocation", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn revoke(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiJson(body): ApiJson<Revocation>,
) -> Result<Json<Revoked>, ApiError> {
    blocking(move || {
        let data = acting(&app, &caller);
        let mut revoked_identity: Option<String> = None;
        let caller = required(&caller)?;
        let site_admin =
            !caller.compiled.is_narrowed() && allows(caller, &Scope::All, Op::Admin).is_ok();
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
                revoked_identity = Some(target.identity.clone());
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
        let added =
            data.revoke_token_blocks_of(std::slice::from_ref(&id), revoked_identity.as_deref())?;
        Ok(Json(Revoked {
            revoked: token::hex(&id),
            new: added > 0,
        }))
    })
    .await
}

fn parse_revocation_id(hex: &str) -> Result<Vec<u8>, ApiError> {
    crate::hex::decode(hex, 64)
        .ok_or_else(|| ApiError::bad_request("a revocation id is 128 hex digits"))
}
