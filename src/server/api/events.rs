//! `GET /api/v1/events` and `GET /api/v1/repos/{owner}/{name}/events`: the data
//! directory's event log, paged by sequence number, filtered to what the caller may read.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    ApiError, ApiPath, ApiQuery, ErrorBody, RepoPath, allows, blocking, repo_for, token_reads,
};
use crate::auth::token::{Op, Scope};
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::store::RepoName;
use crate::store::events::{Event, EventFilter, parse_types};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct EventQuery {
    /// Only events after this sequence number (none: from the oldest the log keeps; one
    /// whose successors the retention bound removed is answered 410).
    #[param(minimum = 0)]
    after: Option<i64>,
    /// Only events of these types, comma-separated (`ref.updated,ref.refused`).
    #[serde(rename = "type")]
    #[param(rename = "type", schema_with = event_types_schema)]
    types: Option<String>,
    /// At most this many (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// `type`: a comma-separated list of the known event types (the pattern is made from
/// `EVENT_TYPES`, so the document names each one).
fn event_types_schema() -> utoipa::openapi::Object {
    let one = crate::store::events::EVENT_TYPES
        .iter()
        .map(|t| t.replace('.', "\\."))
        .collect::<Vec<_>>()
        .join("|");
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(format!("^(({one})(,({one}))*)?$")))
        .build()
}

impl EventQuery {
    fn filter(&self, repo: Option<u64>) -> Result<EventFilter, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::bad_request(format!(
                "limit is 1 to {MAX_LIMIT}, not {limit}"
            )));
        }
        let types = match &self.types {
            Some(list) => parse_types(list).map_err(ApiError::bad_request)?,
            None => Vec::new(),
        };
        Ok(EventFilter {
            after: sequence(self.after)?.unwrap_or(0),
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
/// may read (public ones for anyone), and, for site admins (`admin` on `*`), those of
/// identities, keys, tokens and repositories that are gone.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    operation_id = "events_list",
    tag = "events",
    params(EventQuery),
    responses(
        (status = 200, description = "A page of events", body = EventPage),
        (status = 400, description = "A bad limit or an unknown event type", body = ErrorBody),
        (status = 410, description = "`after` is before what the log keeps: its retention bound removed events after it", body = ErrorBody),
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
        filter.after = kept_start(&app, query.after.is_some(), filter.after)?;
        // This server's own writes are in the log before it is read.
        app.relay_written();
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
                let key = event.repo.clone().unwrap_or_default();
                let may = match readable.get(&key) {
                    Some(may) => *may,
                    None => {
                        let may = may_read_events(&app, &caller, event.repo.as_deref())?;
                        readable.insert(key, may);
                        may
                    }
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

/// Where a page starts: `after` when the reader gave it (refused when the log no longer
/// keeps what follows it), else the oldest event the log keeps.
fn kept_start(app: &AppState, given: bool, after: u64) -> Result<u64, ApiError> {
    if given {
        still_kept(app, after)?;
        Ok(after)
    } else {
        Ok(after.max(app.data.events_pruned_through()?))
    }
}

/// Refuses a read from before what the log keeps: the events after `after` up to where it
/// was pruned are gone, and a reader must be told, not handed the rest as if complete.
fn still_kept(app: &AppState, after: u64) -> Result<(), ApiError> {
    let pruned = app.data.events_pruned_through()?;
    if after < pruned {
        return Err(ApiError::new(
            axum::http::StatusCode::GONE,
            "events_pruned",
            format!(
                "the events after {after} up to {pruned} were removed by the log's retention bound; read from after={pruned} (and re-read current state for what came before)"
            ),
        ));
    }
    Ok(())
}

/// Whether the caller holds `admin` on `*`: it reads the events of no repository
/// (identities, keys, tokens) and those of repositories that are gone.
fn site_admin(caller: &Caller) -> bool {
    caller
        .token
        .as_ref()
        .is_some_and(|token| allows(token, &Scope::All, Op::Admin).is_ok())
}

/// Whether the caller may read the events of repository `name`, or of none (`None`).
fn may_read_events(app: &AppState, caller: &Caller, name: Option<&str>) -> Result<bool, ApiError> {
    match name {
        Some(name) => may_read(app, caller, name),
        None => Ok(site_admin(caller)),
    }
}

/// Whether the caller may read repository `name` (one that is gone: site admins only).
fn may_read(app: &AppState, caller: &Caller, name: &str) -> Result<bool, ApiError> {
    let Ok(repo) = RepoName::parse(name) else {
        return Ok(site_admin(caller));
    };
    let Some(record) = app.data.find_repo(&repo)? else {
        return Ok(site_admin(caller));
    };
    Ok(app.data.is_public(&record)? || token_reads(caller.token.as_deref(), &repo))
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
        (status = 410, description = "`after` is before what the log keeps: its retention bound removed events after it", body = ErrorBody),
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
        let mut filter = query.filter(Some(record.id))?;
        filter.after = kept_start(&app, query.after.is_some(), filter.after)?;
        // What another process committed and did not relay (it crashed in between) is
        // relayed now, so this read sees every committed change.
        app.repo_state(record)?.repo.relay_events();
        let items = app.data.events(&filter)?;
        let next_after = items.last().map_or(filter.after, |e| e.seq);
        Ok(Json(EventPage { items, next_after }))
    })
    .await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct StreamQuery {
    /// Start after this sequence number (a `Last-Event-ID` header wins over it); none:
    /// from now on.
    #[param(minimum = 0)]
    after: Option<i64>,
    /// Only events of these types, comma-separated.
    #[serde(rename = "type")]
    #[param(rename = "type", schema_with = event_types_schema)]
    types: Option<String>,
}

/// Events read from the log per step of a stream.
const STREAM_BATCH: usize = 100;

/// What a stream holds between the events it sends.
struct Streaming {
    app: Arc<AppState>,
    caller: Caller,
    filter: EventFilter,
    readable: HashMap<String, bool>,
    pending: std::collections::VecDeque<Event>,
    latest: tokio::sync::watch::Receiver<u64>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    _slot: crate::server::event_hub::StreamSlot,
}

impl Streaming {
    /// The next event the caller may read, waiting for one; `None` once the server shuts
    /// down. `Err(pruned)` when the log was pruned past where the stream is (a stream far
    /// behind): it ends, and the reader resumes from what the log still has.
    async fn next(&mut self) -> Option<Result<Event, u64>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if *self.shutdown.borrow() {
                return None;
            }
            // Marked seen before the read: an event relayed meanwhile wakes the next wait.
            self.latest.borrow_and_update();
            let app = self.app.clone();
            let caller = self.caller.clone();
            let filter = self.filter.clone();
            let mut readable = std::mem::take(&mut self.readable);
            let read = tokio::task::spawn_blocking(move || {
                let pruned = app.data.events_pruned_through()?;
                if filter.after < pruned {
                    return Ok::<_, ApiError>(Err(pruned));
                }
                let page = app.data.events(&filter)?;
                let mut shown = Vec::new();
                for event in &page {
                    let key = event.repo.clone().unwrap_or_default();
                    let may = match (filter.repo, readable.get(&key)) {
                        // A repository's own stream was authorized when it opened.
                        (Some(_), _) => true,
                        (None, Some(may)) => *may,
                        (None, None) => {
                            let may = may_read_events(&app, &caller, event.repo.as_deref())?;
                            readable.insert(key, may);
                            may
                        }
                    };
                    if may {
                        shown.push(event.clone());
                    }
                }
                Ok(Ok((page.last().map(|e| e.seq), shown, readable)))
            })
            .await;
            match read {
                Ok(Ok(Err(pruned))) => return Some(Err(pruned)),
                Ok(Ok(Ok((last, shown, readable)))) => {
                    self.readable = readable;
                    if let Some(last) = last {
                        self.filter.after = last;
                        self.pending.extend(shown);
                        continue;
                    }
                }
                // A failed read is retried at the next wake, from the same point.
                _ => tracing::warn!("an event stream could not read the log"),
            }
            tokio::select! {
                changed = self.latest.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                _ = self.shutdown.changed() => return None,
                // Read again now and then all the same, in case a wake was missed.
                () = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
            }
        }
    }
}

/// Where a stream starts: after `Last-Event-ID` (what a reconnecting EventSource sends),
/// else after `?after=`, else after the log's end now.
fn stream_start(
    app: &AppState,
    headers: &axum::http::HeaderMap,
    after: Option<i64>,
) -> Result<u64, ApiError> {
    let start = if let Some(value) = headers.get("last-event-id") {
        let text = value.to_str().unwrap_or("").trim();
        text.parse().map_err(|_| {
            ApiError::bad_request(format!("Last-Event-ID is a sequence number, not {text:?}"))
        })?
    } else {
        match sequence(after)? {
            Some(after) => after,
            None => app.data.last_event()?,
        }
    };
    still_kept(app, start)?;
    Ok(start)
}

/// A sequence number from a query (declared as a signed 64-bit integer, so negative ones
/// are refused here).
fn sequence(after: Option<i64>) -> Result<Option<u64>, ApiError> {
    after
        .map(|a| {
            u64::try_from(a)
                .map_err(|_| ApiError::bad_request(format!("after is 0 or more, not {a}")))
        })
        .transpose()
}

type SseItems = std::pin::Pin<
    Box<
        dyn futures_util::Stream<
                Item = Result<axum::response::sse::Event, std::convert::Infallible>,
            > + Send,
    >,
>;
type EventStream = axum::response::sse::Sse<axum::response::sse::KeepAliveStream<SseItems>>;

async fn open_stream(
    app: Arc<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    query: StreamQuery,
    repo: Option<u64>,
) -> Result<EventStream, ApiError> {
    let key = caller.token.as_ref().map_or_else(
        || "anonymous".to_owned(),
        |t| t.identity.to_ascii_lowercase(),
    );
    let slot = app.events.open_stream(&key).ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "too_many_streams",
            format!("{key} holds as many open event streams as it may; close one first"),
        )
    })?;
    let filter = EventQuery {
        after: None,
        types: query.types.clone(),
        limit: Some(STREAM_BATCH),
    }
    .filter(repo)?;
    let app2 = app.clone();
    let after = blocking(move || stream_start(&app2, &headers, query.after)).await?;
    let state = Streaming {
        latest: app.events.latest(),
        shutdown: app.events.shutdown(),
        app,
        caller,
        filter: EventFilter { after, ..filter },
        readable: HashMap::new(),
        pending: Default::default(),
        _slot: slot,
    };
    let events = futures_util::stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        let sent = match state.next().await? {
            Ok(event) => {
                let data = serde_json::to_string(&event).expect("serialisable");
                (
                    axum::response::sse::Event::default()
                        .id(event.seq.to_string())
                        .event(event.kind.type_name())
                        .data(data),
                    Some(state),
                )
            }
            // The last message of a stream the log's retention overtook.
            Err(pruned) => (
                axum::response::sse::Event::default()
                    .event("reset")
                    .data(format!("{{\"pruned_through\":{pruned}}}")),
                None,
            ),
        };
        Some((Ok(sent.0), sent.1))
    });
    let items: SseItems = Box::pin(events);
    Ok(axum::response::sse::Sse::new(items).keep_alive(axum::response::sse::KeepAlive::new()))
}

/// The log as Server-Sent Events, live: `id` is the sequence number, `event` the type,
/// `data` the event as JSON. Resume with `Last-Event-ID` (or `?after=`); nothing is lost or
/// sent twice across a reconnect. Keep-alive comments every 15 s; the stream ends when the
/// server shuts down. At most 16 open streams per identity.
#[utoipa::path(
    get,
    path = "/api/v1/events/stream",
    operation_id = "events_stream",
    tag = "events",
    params(StreamQuery),
    responses(
        (status = 200, description = "Server-Sent Events", content_type = "text/event-stream", body = String),
        (status = 400, description = "An unknown event type, or a Last-Event-ID that is not a number", body = ErrorBody),
        (status = 401, description = "A token was sent and refused", body = ErrorBody),
        (status = 410, description = "The stream would start before what the log keeps (its retention bound removed those events)", body = ErrorBody),
        (status = 429, description = "Too many open streams", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(super) async fn stream(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    ApiQuery(query): ApiQuery<StreamQuery>,
) -> Result<EventStream, ApiError> {
    open_stream(app, caller, headers, query, None).await
}

/// One repository's events as Server-Sent Events (as `/api/v1/events/stream`).
#[utoipa::path(
    get,
    path = "/api/v1/repos/{owner}/{name}/events/stream",
    operation_id = "repo_events_stream",
    tag = "events",
    params(RepoPath, StreamQuery),
    responses(
        (status = 200, description = "Server-Sent Events", content_type = "text/event-stream", body = String),
        (status = 400, description = "An unknown event type, or a Last-Event-ID that is not a number", body = ErrorBody),
        (status = 401, description = "A private repository without a token, or a token refused", body = ErrorBody),
        (status = 404, description = "No such repository (or the caller may not read it)", body = ErrorBody),
        (status = 410, description = "The stream would start before what the log keeps (its retention bound removed those events)", body = ErrorBody),
        (status = 429, description = "Too many open streams", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(super) async fn stream_repo(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(RepoPath { owner, name }): ApiPath<RepoPath>,
    headers: axum::http::HeaderMap,
    ApiQuery(query): ApiQuery<StreamQuery>,
) -> Result<EventStream, ApiError> {
    let app2 = app.clone();
    let token = caller.token.clone();
    let record = blocking(move || {
        let (_, record) = repo_for(&app2, token.as_deref(), &owner, &name, Op::Read)?;
        Ok(record)
    })
    .await?;
    open_stream(app, caller, headers, query, Some(record.id)).await
}
