//! `GET /api/v1/events` and `GET /api/v1/repos/{owner}/{name}/events`: the data
//! directory's event log, paged by sequence number, filtered to what the caller may read.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, ApiPath, ErrorBody, RepoPath, allows, blocking, repo_for};
use crate::auth::token::{Op, Scope};
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::store::RepoName;
use crate::store::events::{EVENT_TYPES, Event, EventFilter};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct EventQuery {
    /// Only events after this sequence number (0: from the start).
    #[param(minimum = 0)]
    after: Option<u64>,
    /// Only events of these types, comma-separated (`ref.updated,ref.refused`).
    #[serde(rename = "type")]
    #[param(rename = "type")]
    types: Option<String>,
    /// At most this many (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// Query parameters whose rejection is the API's error body.
pub(super) struct ApiQuery<T>(T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(ApiError::bad_request(rejection.body_text())),
        }
    }
}

impl EventQuery {
    fn filter(&self, repo: Option<u64>) -> Result<EventFilter, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::bad_request(format!(
                "limit is 1 to {MAX_LIMIT}, not {limit}"
            )));
        }
        let types: Vec<String> = match &self.types {
            Some(list) => list.split(',').map(|t| t.trim().to_owned()).collect(),
            None => Vec::new(),
        };
        if let Some(unknown) = types.iter().find(|t| !EVENT_TYPES.contains(&t.as_str())) {
            return Err(ApiError::bad_request(format!(
                "unknown event type {unknown:?} (known: {})",
                EVENT_TYPES.join(", ")
            )));
        }
        Ok(EventFilter {
            after: self.after.unwrap_or(0),
            repo,
            types,
            limit,
        })
    }
}

#[derive(Serialize, ToSchema)]
pub(super) struct EventPage {
    /// In sequence order.
    items: Vec<Event>,
    /// Where the next page starts (`?after=`): the last sequence number read. The same as
    /// the request's `after` when nothing new was there.
    next_after: u64,
}

/// Every event of the data directory's log the caller may read: those of repositories it
/// may read (public ones for anyone).
#[utoipa::path(
    get,
    path = "/api/v1/events",
    operation_id = "events_list",
    tag = "events",
    params(EventQuery),
    responses(
        (status = 200, description = "A page of events", body = EventPage),
        (status = 400, description = "A bad limit or an unknown event type", body = ErrorBody),
        (status = 401, description = "A token was sent and refused", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(super) async fn list(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiQuery(query): ApiQuery<EventQuery>,
) -> Result<Json<EventPage>, ApiError> {
    blocking(move || {
        let mut filter = query.filter(None)?;
        let wanted = filter.limit;
        let mut readable: HashMap<String, bool> = HashMap::new();
        let mut items = Vec::new();
        let mut next_after = filter.after;
        // Pages of the log until `limit` readable events or its end: an event the caller
        // may not read is skipped, never shown.
        loop {
            let page = app.data.events(&filter)?;
            let Some(last) = page.last() else { break };
            filter.after = last.seq;
            let at_end = page.len() < filter.limit;
            for event in page {
                next_after = event.seq;
                let may = match &event.repo {
                    None => false,
                    Some(name) => match readable.get(name) {
                        Some(may) => *may,
                        None => {
                            let may = may_read(&app, &caller, name)?;
                            readable.insert(name.clone(), may);
                            may
                        }
                    },
                };
                if may {
                    items.push(event);
                    if items.len() == wanted {
                        return Ok(Json(EventPage { items, next_after }));
                    }
                }
            }
            if at_end {
                break;
            }
        }
        Ok(Json(EventPage { items, next_after }))
    })
    .await
}

/// Whether the caller may read repository `name` (one that is gone: no).
fn may_read(app: &AppState, caller: &Caller, name: &str) -> Result<bool, ApiError> {
    let Ok(repo) = RepoName::parse(name) else {
        return Ok(false);
    };
    let Some(record) = app.data.find_repo(&repo)? else {
        return Ok(false);
    };
    if app.data.is_public(&record)? {
        return Ok(true);
    }
    Ok(caller
        .token
        .as_ref()
        .is_some_and(|token| allows(token, &Scope::Repo(repo), Op::Read).is_ok()))
}

/// The events of one repository.
#[utoipa::path(
    get,
    path = "/api/v1/repos/{owner}/{name}/events",
    operation_id = "repo_events_list",
    tag = "events",
    params(RepoPath, EventQuery),
    responses(
        (status = 200, description = "A page of the repository's events", body = EventPage),
        (status = 400, description = "A bad limit or an unknown event type", body = ErrorBody),
        (status = 401, description = "A private repository without a token, or a token refused", body = ErrorBody),
        (status = 404, description = "No such repository (or the caller may not read it)", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(super) async fn list_repo(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(RepoPath { owner, name }): ApiPath<RepoPath>,
    ApiQuery(query): ApiQuery<EventQuery>,
) -> Result<Json<EventPage>, ApiError> {
    blocking(move || {
        let (_, record) = repo_for(&app, caller.token.as_deref(), &owner, &name, Op::Read)?;
        let filter = query.filter(Some(record.id))?;
        // What another process committed and did not relay (it crashed in between) is
        // relayed now, so this read sees every committed change.
        app.repo_state(record)?.repo.relay_events();
        let items = app.data.events(&filter)?;
        let next_after = items.last().map_or(filter.after, |e| e.seq);
        Ok(Json(EventPage { items, next_after }))
    })
    .await
}
