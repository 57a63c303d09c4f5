//! Webhooks: `/api/v1/repos/{owner}/{name}/hooks…` (a repository's, needing `admin` on it)
//! and `/api/v1/hooks…` (site-wide ones, getting every event, needing `admin` on `*`): add,
//! list, show, change, remove; each hook's delivery log, one delivery, a redelivery. A
//! hook's secret is write-only (`has_secret`). `docs/webhooks.md`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody, RepoPath, allows, blocking, repo_for, required,
};
use crate::auth::token::{Op, Scope};
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::server::forwarded::Client;
use crate::store::hooks::{
    Attempt, Delivery, DeliveryState, Hook, HookChange, HookError, HookScope, NewHook,
    check_events, check_secret, check_url,
};

impl From<HookError> for ApiError {
    fn from(error: HookError) -> ApiError {
        let status = match &error {
            HookError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            HookError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            HookError::NotFound(_) | HookError::DeliveryNotFound { .. } => StatusCode::NOT_FOUND,
            HookError::TooMany(_) => StatusCode::CONFLICT,
        };
        match error {
            HookError::Store(e) => e.into(),
            other => ApiError::new(status, other.code(), other.to_string()),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct HookBody {
    /// Where deliveries are POSTed: `http://` or `https://`, no credentials, at most 2048
    /// bytes.
    #[schema(max_length = 2048, example = "https://ci.example.com/forge-hook")]
    url: String,
    /// The key of each delivery's `X-Forge-Signature-256` (HMAC-SHA256 of the body), 1 to
    /// 256 bytes; never shown again. Without it, deliveries are not signed.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256)]
    secret: Option<String>,
    /// The event types to deliver (`ref.updated`, …); empty or missing: every type.
    #[serde(default)]
    events: Vec<String>,
    /// Whether it delivers (default true).
    #[serde(default = "yes")]
    active: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct HookPatch {
    #[schema(max_length = 2048)]
    url: Option<String>,
    /// A new secret; the empty string removes it.
    #[schema(max_length = 256)]
    secret: Option<String>,
    events: Option<Vec<String>>,
    /// Made active again, a hook gets the events from then on, not those it missed.
    active: Option<bool>,
}

/// A hook as the API shows it: never its secret.
#[derive(Serialize, ToSchema)]
pub(super) struct HookView {
    id: u64,
    url: String,
    /// Event types it gets; empty: all.
    events: Vec<String>,
    active: bool,
    /// Whether deliveries are signed.
    has_secret: bool,
    /// The repository of a repository's hook; none for a site-wide one.
    repo: Option<String>,
    /// The identity that added it: it delivers only while that identity is present and
    /// enabled (none: the operator, with `forge hook add`).
    created_by: Option<String>,
    /// Milliseconds since the epoch.
    created_at: u64,
    updated_at: u64,
    /// The last event sequence number it has considered.
    cursor: u64,
}

impl From<Hook> for HookView {
    fn from(hook: Hook) -> HookView {
        HookView {
            id: hook.id,
            url: hook.url,
            events: hook.events,
            active: hook.active,
            has_secret: hook.secret.is_some(),
            repo: hook.repo,
            created_by: hook.created_by,
            created_at: hook.created_at,
            updated_at: hook.updated_at,
            cursor: hook.cursor,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(super) struct HookList {
    /// By id.
    items: Vec<HookView>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct DeliveryView {
    /// The delivery's id (`X-Forge-Delivery`), the same on every attempt and redelivery.
    id: u64,
    hook: u64,
    /// The event's sequence number and type.
    seq: u64,
    #[serde(rename = "type")]
    kind: String,
    repo: Option<String>,
    state: DeliveryState,
    /// Milliseconds since the epoch.
    created_at: u64,
    /// When the next attempt is due (pending deliveries only).
    next_attempt_at: Option<u64>,
    /// How many redeliveries were asked for.
    redeliveries: u32,
    /// Oldest first (at most the last 50).
    attempts: Vec<Attempt>,
}

impl From<Delivery> for DeliveryView {
    fn from(delivery: Delivery) -> DeliveryView {
        DeliveryView {
            id: delivery.id,
            hook: delivery.hook,
            seq: delivery.event.seq,
            kind: delivery.event.kind.type_name().to_owned(),
            repo: delivery.event.repo.clone(),
            state: delivery.state,
            created_at: delivery.created_at,
            next_attempt_at: (delivery.state == DeliveryState::Pending)
                .then_some(delivery.next_attempt_at),
            redeliveries: delivery.chain,
            attempts: delivery.attempts,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(super) struct DeliveryPage {
    /// Newest first.
    items: Vec<DeliveryView>,
    /// Give it as `?cursor=` for the next (older) page; none on the last.
    next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct DeliveryQuery {
    /// Where the previous page ended (its `next_cursor`).
    #[param(pattern = "^[0-9]{0,19}$")]
    cursor: Option<String>,
    /// At most this many (1 to 100, default 30).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct RepoHookPath {
    #[param(pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")]
    owner: String,
    #[param(pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")]
    name: String,
    /// The hook's id.
    #[param(pattern = "^[0-9]{1,19}$")]
    id: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct RepoDeliveryPath {
    #[param(pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")]
    owner: String,
    #[param(pattern = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")]
    name: String,
    /// The hook's id.
    #[param(pattern = "^[0-9]{1,19}$")]
    id: String,
    /// The delivery's id.
    #[param(pattern = "^[0-9]{1,19}$")]
    delivery: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct SiteHookPath {
    /// The hook's id.
    #[param(pattern = "^[0-9]{1,19}$")]
    id: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct SiteDeliveryPath {
    /// The hook's id.
    #[param(pattern = "^[0-9]{1,19}$")]
    id: String,
    /// The delivery's id.
    #[param(pattern = "^[0-9]{1,19}$")]
    delivery: String,
}

/// Whose hooks a request is about, once the caller may administer them.
struct Owner {
    scope: HookScope,
    repo: Option<String>,
    identity: String,
    incarnation: u64,
    /// The API path of the scope's hooks (`/api/v1/…/hooks`).
    base: String,
}

fn repo_owner(app: &AppState, caller: &Caller, owner: &str, name: &str) -> Result<Owner, ApiError> {
    let token = required(caller)?;
    let (repo_name, record) = repo_for(app, Some(token), owner, name, Op::Admin)?;
    Ok(Owner {
        scope: HookScope::Repo(record.id),
        repo: Some(repo_name.to_string()),
        identity: token.identity.clone(),
        incarnation: token.incarnation,
        base: format!("/api/v1/repos/{owner}/{name}/hooks"),
    })
}

fn site_owner(caller: &Caller) -> Result<Owner, ApiError> {
    let token = required(caller)?;
    allows(token, &Scope::All, Op::Admin)?;
    Ok(Owner {
        scope: HookScope::Site,
        repo: None,
        identity: token.identity.clone(),
        incarnation: token.incarnation,
        base: "/api/v1/hooks".to_owned(),
    })
}

fn number(what: &str, text: &str) -> Result<u64, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad_request(format!("a {what} id is a number, not {text:?}")))
}

/// The hook `id` of the owner's scope (another scope's is not found).
fn hook_of(app: &AppState, owner: &Owner, id: &str) -> Result<Hook, ApiError> {
    let id = number("hook", id)?;
    match app.data.hooks().find_hook(id)? {
        Some(hook) if hook.scope == owner.scope => Ok(hook),
        _ => Err(HookError::NotFound(id).into()),
    }
}

/// The URL checked, and refused at once when its host is an address deliveries may not
/// reach.
fn checked_url(app: &AppState, url: &str) -> Result<(), ApiError> {
    check_url(url)?;
    if let Some(why) = app.hooks.refused_up_front(url) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "hook_target_refused",
            why,
        ));
    }
    Ok(())
}

fn create_in(
    app: &AppState,
    caller: &Caller,
    owner: Owner,
    body: HookBody,
) -> Result<(StatusCode, Json<HookView>), ApiError> {
    checked_url(app, &body.url)?;
    if let Some(secret) = &body.secret {
        check_secret(secret)?;
    }
    let events = check_events(&body.events)?;
    let hook = app.data.hooks().add_hook(
        &NewHook {
            scope: owner.scope,
            repo: owner.repo.clone(),
            url: body.url,
            secret: body.secret,
            events,
            active: body.active,
            created_by: Some(owner.identity.clone()),
            creator_incarnation: Some(owner.incarnation),
        },
        &caller.gate_caller().actor(),
    )?;
    tracing::info!(
        "{} added hook {} ({})",
        owner.identity,
        hook.id,
        owner.repo.as_deref().unwrap_or("site-wide")
    );
    app.hooks.wake();
    Ok((StatusCode::CREATED, Json(hook.into())))
}

fn list_in(app: &AppState, owner: &Owner) -> Result<Json<HookList>, ApiError> {
    let hooks = app.data.hooks().hooks(Some(owner.scope))?;
    Ok(Json(HookList {
        items: hooks.into_iter().map(HookView::from).collect(),
    }))
}

fn update_in(
    app: &AppState,
    caller: &Caller,
    owner: &Owner,
    id: &str,
    patch: HookPatch,
) -> Result<Json<HookView>, ApiError> {
    let hook = hook_of(app, owner, id)?;
    if let Some(url) = &patch.url {
        checked_url(app, url)?;
    }
    let secret = match patch.secret {
        None => None,
        Some(secret) if secret.is_empty() => Some(None),
        Some(secret) => {
            check_secret(&secret)?;
            Some(Some(secret))
        }
    };
    let events = patch.events.as_deref().map(check_events).transpose()?;
    let change = HookChange {
        url: patch.url,
        secret,
        events,
        active: patch.active,
    };
    let hook = app
        .data
        .hooks()
        .update_hook(hook.id, &change, &caller.gate_caller().actor())?;
    app.hooks.wake();
    Ok(Json(hook.into()))
}

fn remove_in(
    app: &AppState,
    caller: &Caller,
    owner: &Owner,
    id: &str,
) -> Result<Json<HookView>, ApiError> {
    let hook = hook_of(app, owner, id)?;
    let removed = app
        .data
        .hooks()
        .remove_hook(hook.id, &caller.gate_caller().actor())?;
    tracing::info!("{} removed hook {}", owner.identity, removed.id);
    Ok(Json(removed.into()))
}

fn deliveries_in(
    app: &AppState,
    client: &Client,
    owner: &Owner,
    id: &str,
    query: DeliveryQuery,
) -> Result<Response, ApiError> {
    let hook = hook_of(app, owner, id)?;
    let limit = query.limit.unwrap_or(30);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit is 1 to 100, not {limit}"
        )));
    }
    let before = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(cursor) => Some(
            cursor
                .parse::<u64>()
                .map_err(|_| ApiError::bad_request("the cursor is not one this API gave"))?,
        ),
        None => None,
    };
    let mut items = app.data.hooks().deliveries(hook.id, before, limit + 1)?;
    let more = items.len() > limit;
    items.truncate(limit);
    let next_cursor = match items.last() {
        Some(last) if more => Some(last.id.to_string()),
        _ => None,
    };
    let mut response = Json(DeliveryPage {
        items: items.into_iter().map(DeliveryView::from).collect(),
        next_cursor: next_cursor.clone(),
    })
    .into_response();
    if let Some(cursor) = next_cursor {
        let next = format!(
            "{}/{}/deliveries?limit={limit}&cursor={cursor}",
            owner.base, hook.id
        );
        super::respond::link_next(&mut response, &client.url(&next));
    }
    Ok(response)
}

fn delivery_in(
    app: &AppState,
    owner: &Owner,
    id: &str,
    delivery: &str,
) -> Result<Json<DeliveryView>, ApiError> {
    let hook = hook_of(app, owner, id)?;
    let delivery = number("delivery", delivery)?;
    let found =
        app.data
            .hooks()
            .find_delivery(hook.id, delivery)?
            .ok_or(HookError::DeliveryNotFound {
                hook: hook.id,
                delivery,
            })?;
    Ok(Json(found.into()))
}

fn redeliver_in(
    app: &AppState,
    owner: &Owner,
    id: &str,
    delivery: &str,
) -> Result<(StatusCode, Json<DeliveryView>), ApiError> {
    let hook = hook_of(app, owner, id)?;
    let delivery = number("delivery", delivery)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let redelivered = app.data.hooks().redeliver(hook.id, delivery, now)?;
    tracing::info!(
        "{} asked for delivery {delivery} of hook {} again",
        owner.identity,
        hook.id
    );
    app.hooks.wake();
    Ok((StatusCode::ACCEPTED, Json(redelivered.into())))
}

/// List a repository's hooks
///
/// Needs `admin` on the repository. Secrets are never shown (`has_secret`).
#[utoipa::path(
    get,
    path = "/api/v1/repos/{owner}/{name}/hooks",
    operation_id = "repo_hooks_list",
    tag = "hooks",
    params(RepoPath),
    responses(
        (status = 200, description = "The repository's hooks", body = HookList),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The token lacks admin on the repository", body = ErrorBody),
        (status = 404, description = "No such repository (or the caller may not read it)", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn repo_list(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(RepoPath { owner, name }): ApiPath<RepoPath>,
) -> Result<Json<HookList>, ApiError> {
    blocking(move || list_in(&app, &repo_owner(&app, &caller, &owner, &name)?)).await
}

/// Add a hook to a repository
///
/// Its events are POSTed to `url` from then on (`docs/webhooks.md`); needs `admin` on the repository. A URL whose host is an address deliveries may not reach (loopback, private, link-local) is refused at once unless `forge serve --hook-allow-host` allows it.
#[utoipa::path(
    post,
    path = "/api/v1/repos/{owner}/{name}/hooks",
    operation_id = "repo_hooks_create",
    tag = "hooks",
    params(RepoPath),
    request_body = HookBody,
    responses(
        (status = 201, description = "Added", body = HookView),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The token lacks admin on the repository", body = ErrorBody),
        (status = 404, description = "No such repository (or the caller may not read it)", body = ErrorBody),
        (status = 409, description = "The repository has as many hooks as it may (20)", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "An invalid URL, secret or event type, or a refused target", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn repo_create(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(RepoPath { owner, name }): ApiPath<RepoPath>,
    ApiJson(body): ApiJson<HookBody>,
) -> Result<(StatusCode, Json<HookView>), ApiError> {
    blocking(move || {
        let owner = repo_owner(&app, &caller, &owner, &name)?;
        create_in(&app, &caller, owner, body)
    })
    .await
}

/// One hook of a repository
#[utoipa::path(
    get,
    path = "/api/v1/repos/{owner}/{name}/hooks/{id}",
    operation_id = "repo_hooks_get",
    tag = "hooks",
    params(RepoHookPath),
    responses(
        (status = 200, description = "The hook", body = HookView),
        (status = 400, description = "Not a hook id", body = ErrorBody),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The token lacks admin on the repository", body = ErrorBody),
        (status = 404, description = "No such repository or hook", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn repo_get(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(RepoHookPath { owner, name, id }): ApiPath<RepoHookPath>,
) -> Result<Json<HookView>, ApiError> {
    blocking(move || {
        let owner = repo_owner(&app, &caller, &owner, &name)?;
        Ok(Json(hook_of(&app, &owner, &id)?.into()))
    })
    .await
}

/// Change a repository's hook
///
/// The fields given replace the hook's (`secret: ""` removes the secret).
#[utoipa::path(
    patch,
    path = "/api/v1/repos/{owner}/{name}/hooks/{id}",
    operation_id = "repo_hooks_update",
    tag = "hooks",
    params(RepoHookPath),
    request_body = HookPatch,
    responses(
        (status = 200, description = "Changed", body = HookView),
        (status = 400, description = "Not a hook id, or the body is not JSON", body = ErrorBody),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The token lacks admin on the repository", body = ErrorBody),
        (status = 404, description = "No such repository or hook", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "An invalid URL, secret or event type, or a refused target", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn repo_update(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(RepoHookPath { owner, name, id }): ApiPath<RepoHookPath>,
    ApiJson(patch): ApiJson<HookPatch>,
) -> Result<Json<HookView>, ApiError> {
    blocking(move || {
        let owner = repo_owner(&app, &caller, &owner, &name)?;
        update_in(&app, &caller, &owner, &id, patch)
    })
    .await
}

/// Remove a repository's hook
///
/// With its delivery log.
#[utoipa::path(
    delete,
    path = "/api/v1/repos/{owner}/{name}/hooks/{id}",
    operation_id = "repo_hooks_delete",
    tag = "hooks",
    params(RepoHookPath),
    responses(
        (status = 200, description = "Removed", body = HookView),
        (status = 400, description = "Not a hook id", body = ErrorBody),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The token lacks admin on the repository", body = ErrorBody),
        (status = 404, description = "No such repository or hook", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn repo_delete(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(RepoHookPath { owner, name, id }): ApiPath<RepoHookPath>,
) -> Result<Json<HookView>, ApiError> {
    blocking(move || {
        let owner = repo_owner(&app, &caller, &owner, &name)?;
        remove_in(&app, &caller, &owner, &id)
    })
    .await
}

/// A repository hook's deliveries
///
/// Newest first, each with its attempts; the log keeps a hook's last 1000.
#[utoipa::path(
    get,
    path = "/api/v1/repos/{owner}/{name}/hooks/{id}/deliveries",
    operation_id = "repo_hook_deliveries_list",
    tag = "hooks",
    params(RepoHookPath, DeliveryQuery),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryPage),
        (status = 400, description = "Not a hook id, a bad cursor or limit", body = ErrorBody),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The token lacks admin on the repository", body = ErrorBody),
        (status = 404, description = "No such repository or hook", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn repo_deliveries(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    client: Client,
    ApiPath(RepoHookPath { owner, name, id }): ApiPath<RepoHookPath>,
    ApiQuery(query): ApiQuery<DeliveryQuery>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let owner = repo_owner(&app, &caller, &owner, &name)?;
        deliveries_in(&app, &client, &owner, &id, query)
    })
    .await
}

/// One delivery of a repository's hook
#[utoipa::path(
    get,
    path = "/api/v1/repos/{owner}/{name}/hooks/{id}/deliveries/{delivery}",
    operation_id = "repo_hook_deliveries_get",
    tag = "hooks",
    params(RepoDeliveryPath),
    responses(
        (status = 200, description = "The delivery", body = DeliveryView),
        (status = 400, description = "Not a hook or delivery id", body = ErrorBody),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The token lacks admin on the repository", body = ErrorBody),
        (status = 404, description = "No such repository, hook or delivery", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn repo_delivery(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(RepoDeliveryPath {
        owner,
        name,
        id,
        delivery,
    }): ApiPath<RepoDeliveryPath>,
) -> Result<Json<DeliveryView>, ApiError> {
    blocking(move || {
        let owner = repo_owner(&app, &caller, &owner, &name)?;
        delivery_in(&app, &owner, &id, &delivery)
    })
    .await
}

/// Deliver again
///
/// A new chain of attempts for the same delivery: the same id (`X-Forge-Delivery`) and body, signed with the hook's secret as it is now.
#[utoipa::path(
    post,
    path = "/api/v1/repos/{owner}/{name}/hooks/{id}/deliveries/{delivery}/redeliver",
    operation_id = "repo_hook_deliveries_redeliver",
    tag = "hooks",
    params(RepoDeliveryPath),
    responses(
        (status = 202, description = "Queued again", body = DeliveryView),
        (status = 400, description = "Not a hook or delivery id", body = ErrorBody),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The token lacks admin on the repository", body = ErrorBody),
        (status = 404, description = "No such repository, hook or delivery", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn repo_redeliver(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(RepoDeliveryPath {
        owner,
        name,
        id,
        delivery,
    }): ApiPath<RepoDeliveryPath>,
) -> Result<(StatusCode, Json<DeliveryView>), ApiError> {
    blocking(move || {
        let owner = repo_owner(&app, &caller, &owner, &name)?;
        redeliver_in(&app, &owner, &id, &delivery)
    })
    .await
}

/// List site-wide hooks
///
/// Site-wide hooks get every event: every repository's, and the registry's (identities, keys, tokens). Needs `admin` on `*`.
#[utoipa::path(
    get,
    path = "/api/v1/hooks",
    operation_id = "hooks_list",
    tag = "hooks",
    responses(
        (status = 200, description = "The site-wide hooks", body = HookList),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The token is not a site admin's", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn site_list(
    State(app): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<HookList>, ApiError> {
    blocking(move || list_in(&app, &site_owner(&caller)?)).await
}

/// Add a site-wide hook
///
/// Needs `admin` on `*`.
#[utoipa::path(
    post,
    path = "/api/v1/hooks",
    operation_id = "hooks_create",
    tag = "hooks",
    request_body = HookBody,
    responses(
        (status = 201, description = "Added", body = HookView),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The token is not a site admin's", body = ErrorBody),
        (status = 409, description = "The site has as many hooks as it may (20)", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "An invalid URL, secret or event type, or a refused target", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn site_create(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiJson(body): ApiJson<HookBody>,
) -> Result<(StatusCode, Json<HookView>), ApiError> {
    blocking(move || {
        let owner = site_owner(&caller)?;
        create_in(&app, &caller, owner, body)
    })
    .await
}

/// One site-wide hook
#[utoipa::path(
    get,
    path = "/api/v1/hooks/{id}",
    operation_id = "hooks_get",
    tag = "hooks",
    params(SiteHookPath),
    responses(
        (status = 200, description = "The hook", body = HookView),
        (status = 400, description = "Not a hook id", body = ErrorBody),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The token is not a site admin's", body = ErrorBody),
        (status = 404, description = "No such hook", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn site_get(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(SiteHookPath { id }): ApiPath<SiteHookPath>,
) -> Result<Json<HookView>, ApiError> {
    blocking(move || {
        let owner = site_owner(&caller)?;
        Ok(Json(hook_of(&app, &owner, &id)?.into()))
    })
    .await
}

/// Change a site-wide hook
#[utoipa::path(
    patch,
    path = "/api/v1/hooks/{id}",
    operation_id = "hooks_update",
    tag = "hooks",
    params(SiteHookPath),
    request_body = HookPatch,
    responses(
        (status = 200, description = "Changed", body = HookView),
        (status = 400, description = "Not a hook id, or the body is not JSON", body = ErrorBody),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The token is not a site admin's", body = ErrorBody),
        (status = 404, description = "No such hook", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "An invalid URL, secret or event type, or a refused target", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn site_update(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(SiteHookPath { id }): ApiPath<SiteHookPath>,
    ApiJson(patch): ApiJson<HookPatch>,
) -> Result<Json<HookView>, ApiError> {
    blocking(move || {
        let owner = site_owner(&caller)?;
        update_in(&app, &caller, &owner, &id, patch)
    })
    .await
}

/// Remove a site-wide hook
#[utoipa::path(
    delete,
    path = "/api/v1/hooks/{id}",
    operation_id = "hooks_delete",
    tag = "hooks",
    params(SiteHookPath),
    responses(
        (status = 200, description = "Removed", body = HookView),
        (status = 400, description = "Not a hook id", body = ErrorBody),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The token is not a site admin's", body = ErrorBody),
        (status = 404, description = "No such hook", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn site_delete(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(SiteHookPath { id }): ApiPath<SiteHookPath>,
) -> Result<Json<HookView>, ApiError> {
    blocking(move || {
        let owner = site_owner(&caller)?;
        remove_in(&app, &caller, &owner, &id)
    })
    .await
}

/// A site-wide hook's deliveries
#[utoipa::path(
    get,
    path = "/api/v1/hooks/{id}/deliveries",
    operation_id = "hook_deliveries_list",
    tag = "hooks",
    params(SiteHookPath, DeliveryQuery),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryPage),
        (status = 400, description = "Not a hook id, a bad cursor or limit", body = ErrorBody),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The token is not a site admin's", body = ErrorBody),
        (status = 404, description = "No such hook", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn site_deliveries(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    client: Client,
    ApiPath(SiteHookPath { id }): ApiPath<SiteHookPath>,
    ApiQuery(query): ApiQuery<DeliveryQuery>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let owner = site_owner(&caller)?;
        deliveries_in(&app, &client, &owner, &id, query)
    })
    .await
}

/// One delivery of a site-wide hook
#[utoipa::path(
    get,
    path = "/api/v1/hooks/{id}/deliveries/{delivery}",
    operation_id = "hook_deliveries_get",
    tag = "hooks",
    params(SiteDeliveryPath),
    responses(
        (status = 200, description = "The delivery", body = DeliveryView),
        (status = 400, description = "Not a hook or delivery id", body = ErrorBody),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The token is not a site admin's", body = ErrorBody),
        (status = 404, description = "No such hook or delivery", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn site_delivery(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(SiteDeliveryPath { id, delivery }): ApiPath<SiteDeliveryPath>,
) -> Result<Json<DeliveryView>, ApiError> {
    blocking(move || {
        let owner = site_owner(&caller)?;
        delivery_in(&app, &owner, &id, &delivery)
    })
    .await
}

/// Deliver again (site-wide hook)
///
/// A new chain of attempts for the same delivery: the same id and body.
#[utoipa::path(
    post,
    path = "/api/v1/hooks/{id}/deliveries/{delivery}/redeliver",
    operation_id = "hook_deliveries_redeliver",
    tag = "hooks",
    params(SiteDeliveryPath),
    responses(
        (status = 202, description = "Queued again", body = DeliveryView),
        (status = 400, description = "Not a hook or delivery id", body = ErrorBody),
        (status = 401, description = "No token, or one refused", body = ErrorBody),
        (status = 403, description = "The token is not a site admin's", body = ErrorBody),
        (status = 404, description = "No such hook or delivery", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn site_redeliver(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(SiteDeliveryPath { id, delivery }): ApiPath<SiteDeliveryPath>,
) -> Result<(StatusCode, Json<DeliveryView>), ApiError> {
    blocking(move || {
        let owner = site_owner(&caller)?;
        redeliver_in(&app, &owner, &id, &delivery)
    })
    .await
}
