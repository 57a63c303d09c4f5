//! git's smart HTTP protocol: `GET …/info/refs?service=…` and `POST …/git-upload-pack`,
//! with the headers, content types and body handling of `git http-backend`.

use std::io::{self, BufRead, Read, Write};
use std::sync::Arc;

use axum::body::{Body, Bytes};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::auth::token::Op;
use crate::protocol::pktline;
use crate::served::RepoState;
use crate::store::RepoName;
use crate::upload::{self, UploadError, advertise};

use super::AppState;
use super::auth::{self, Caller};
use super::error::{HttpError, no_cache, plain};
use super::forwarded::Client;
use super::limits::{self, Reserved};
use super::metrics::Metrics;
use super::stream::{self, BodyWriter};

/// Largest request body accepted after decompression. Negotiation requests are small; a
/// lazy fetch of a huge checkout sends one `want` line (50 bytes) per blob.
const MAX_REQUEST_BODY: usize = 64 << 20;
/// Request body frames queued between the connection and a push being indexed.
const REQUEST_QUEUE: usize = 16;
const REQUEST_BUFFER: usize = 256 << 10;

#[derive(Deserialize)]
pub struct ServiceQuery {
    service: Option<String>,
}

/// Which protocol the client asked for in `Git-Protocol` (`version=2`); v0 without it.
fn protocol_version(headers: &HeaderMap) -> u8 {
    headers
        .get("git-protocol")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(':')
                .filter_map(|kv| kv.strip_prefix("version="))
                .filter_map(|n| n.parse::<u8>().ok())
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

fn git_response(content_type: &'static str, body: Body) -> Response {
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response();
    no_cache(&mut response);
    response
}

/// The served state of a repository the caller may `op`, with who the caller is. A caller
/// without a token is not told whether a private repository exists. The decision is made
/// on the registry record, so a refused request opens no repository.
fn authorized_repo(
    app: &AppState,
    caller: Caller,
    owner: &str,
    name: &str,
    op: Op,
) -> Result<(Arc<RepoState>, Caller, RepoName), HttpError> {
    let record = match find_record(app, owner, name) {
        Ok(record) => record,
        Err(e) if e.is_not_found() && caller.token.is_none() => {
            return Err(HttpError::unauthorized("authentication required"));
        }
        Err(e) => return Err(e),
    };
    let public = app.data.is_public(&record).map_err(HttpError::internal)?;
    let repo_name = RepoName::parse(&record.name).map_err(HttpError::internal)?;
    auth::decide(&caller, &repo_name, public, op)?;
    let state = app.repo_state(record).map_err(|e| {
        tracing::error!("opening {repo_name}: {e}");
        HttpError::internal(e)
    })?;
    Ok((state, caller, repo_name))
}

/// The registry record of `owner/name[.git]`.
fn find_record(
    app: &AppState,
    owner: &str,
    name: &str,
) -> Result<crate::store::RepoRecord, HttpError> {
    let name = name.strip_suffix(".git").unwrap_or(name);
    let Ok(repo_name) = RepoName::parse(&format!("{owner}/{name}")) else {
        return Err(HttpError::not_found());
    };
    app.data
        .find_repo(&repo_name)
        .map_err(HttpError::internal)?
        .ok_or_else(HttpError::not_found)
}

pub async fn info_refs(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    Path((owner, name)): Path<(String, String)>,
    Query(query): Query<ServiceQuery>,
    headers: HeaderMap,
) -> Response {
    match query.service.as_deref() {
        Some("git-upload-pack") => {}
        Some("git-receive-pack") => return receive_pack_refs(app, caller, owner, name).await,
        Some(_) => return plain(StatusCode::FORBIDDEN, "Unsupported service"),
        None => {
            return plain(
                StatusCode::FORBIDDEN,
                "forge serves git's smart HTTP protocol only (this git is too old)",
            );
        }
    }
    let version = protocol_version(&headers);
    answered("application/x-git-upload-pack-advertisement", move || {
        let (state, _, _) = authorized_repo(&app, caller, &owner, &name, Op::Read)?;
        if version == 2 {
            // Refs come with `ls-refs`.
            return Ok(advertise::capabilities_v2());
        }
        let mut body = Vec::new();
        pktline::text(&mut body, "# service=git-upload-pack");
        pktline::flush(&mut body);
        if version == 1 {
            pktline::text(&mut body, "version 1");
        }
        let refs = advertise::advertisement_v0(&state).map_err(HttpError::internal)?;
        body.extend_from_slice(&refs);
        Ok(body)
    })
    .await
}

/// `authorized_repo` on a blocking thread (it reads the store), as a response on refusal.
async fn authorize(
    app: &Arc<AppState>,
    caller: Caller,
    owner: String,
    name: String,
    op: Op,
) -> Result<(Arc<RepoState>, Caller, RepoName), Response> {
    let app = app.clone();
    match tokio::task::spawn_blocking(move || authorized_repo(&app, caller, &owner, &name, op))
        .await
    {
        Ok(Ok(authorized)) => Ok(authorized),
        Ok(Err(e)) => Err(e.into_response()),
        Err(e) => Err(HttpError::internal(e).into_response()),
    }
}

/// Answers with what `work` computes on a blocking thread.
async fn answered(
    content_type: &'static str,
    work: impl FnOnce() -> Result<Vec<u8>, HttpError> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(body)) => git_response(content_type, Body::from(body)),
        Ok(Err(e)) => e.into_response(),
        Err(e) => HttpError::internal(e).into_response(),
    }
}

/// Bytes of a request body any request may hold without reserving them from the shared
/// budget: every normal fetch request fits, so normal clients are served while hostile
/// ones have used the budget up (bounded in all by the connection limit).
const BODY_ALLOWANCE: usize = 64 << 10;

/// Receives an upload-pack request body whole (at most `MAX_REQUEST_BODY` bytes), within
/// the body timeouts and the memory budget (and `share`'s part of it). The reservation holds its memory until dropped.
async fn receive_body(
    app: &AppState,
    body: Body,
    share: String,
) -> Result<(Vec<u8>, Reserved), Response> {
    let limits = &app.limits;
    let mut reserved = app.request_memory.reservation(share);
    let deadline = tokio::time::Instant::now() + limits.body_total;
    let mut frames = body.into_data_stream();
    let mut raw: Vec<u8> = Vec::new();
    loop {
        let silence = tokio::time::Instant::now() + limits.body_idle;
        let next = tokio::time::timeout_at(
            silence.min(deadline),
            futures_util::StreamExt::next(&mut frames),
        );
        let frame = match next.await {
            Ok(Some(Ok(frame))) => frame,
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(plain(
                    StatusCode::BAD_REQUEST,
                    format!("forge: the request body was cut off: {e}"),
                ));
            }
            Err(_) => {
                let why = if tokio::time::Instant::now() >= deadline {
                    format!(
                        "forge: the request body took longer than {} seconds",
                        limits.body_total.as_secs()
                    )
                } else {
                    format!(
                        "forge: no request data for {} seconds",
                        limits.body_idle.as_secs()
                    )
                };
                return Err(plain(StatusCode::REQUEST_TIMEOUT, why));
            }
        };
        if raw.len() + frame.len() > MAX_REQUEST_BODY {
            return Err(too_large(MAX_REQUEST_BODY));
        }
        raw.reserve(frame.len());
        reserved
            .grow_to(raw.capacity().saturating_sub(BODY_ALLOWANCE))
            .map_err(busy)?;
        raw.extend_from_slice(&frame);
    }
    Ok((raw, reserved))
}

fn too_large(limit: usize) -> Response {
    plain(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("forge: request body larger than this server's limit of {limit} bytes"),
    )
}

/// 503 with a hint to retry: the server is at one of its bounds.
fn busy(why: limits::Busy) -> Response {
    let mut response = plain(StatusCode::SERVICE_UNAVAILABLE, format!("forge: {why}"));
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

/// The body as git meant it: inflated when it was sent gzip-compressed, within the same
/// limits (the inflated bytes are reserved too).
fn decoded_body(
    raw: Vec<u8>,
    encoding: ContentEncoding,
    reserved: &mut Reserved,
) -> Result<Vec<u8>, Box<Response>> {
    match encoding {
        ContentEncoding::Identity => Ok(raw),
        ContentEncoding::Gzip => {
            let mut decoder = flate2::read::GzDecoder::new(&raw[..]);
            let mut out: Vec<u8> = Vec::new();
            let mut chunk = vec![0u8; 64 << 10];
            loop {
                let n = decoder.read(&mut chunk).map_err(|e| {
                    Box::new(plain(
                        StatusCode::BAD_REQUEST,
                        format!("bad gzip body: {e}"),
                    ))
                })?;
                if n == 0 {
                    break;
                }
                if out.len() + n > MAX_REQUEST_BODY {
                    return Err(Box::new(too_large(MAX_REQUEST_BODY)));
                }
                out.reserve(n);
                reserved
                    .grow_to((raw.capacity() + out.capacity()).saturating_sub(BODY_ALLOWANCE))
                    .map_err(|why| Box::new(busy(why)))?;
                out.extend_from_slice(&chunk[..n]);
            }
            Ok(out)
        }
    }
}

/// Whose share of the server's slots a request uses: its identity, or without a token
/// its address (the client's, behind a trusted proxy).
fn share_key(caller: &Caller, client: &Client) -> String {
    match &caller.token {
        Some(token) => format!("identity:{}", token.identity),
        None => format!("address:{}", client.addr),
    }
}

pub async fn upload_pack(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    Path((owner, name)): Path<(String, String)>,
    client: Client,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(response) = expect_content_type(&headers, "application/x-git-upload-pack-request") {
        return *response;
    }
    let encoding = match content_encoding(&headers) {
        Ok(encoding) => encoding,
        Err(response) => return *response,
    };
    let version = protocol_version(&headers);
    // Authorized before the body is read: a refused client costs no buffering.
    let (state, caller, _) = match authorize(&app, caller, owner, name, Op::Read).await {
        Ok(authorized) => authorized,
        Err(response) => return response,
    };
    let share = share_key(&caller, &client);
    let (raw, mut reserved) = match receive_body(&app, body, share.clone()).await {
        Ok(received) => received,
        Err(response) => return response,
    };
    // A slot once the request is here: a client that sends nothing holds none.
    let slot = match app
        .fetch_slots
        .acquire(vec![share], app.limits.slot_wait)
        .await
    {
        Ok(slot) => slot,
        Err(why) => return busy(why),
    };
    let request = match tokio::task::spawn_blocking(move || {
        decoded_body(raw, encoding, &mut reserved).map(|body| (body, reserved))
    })
    .await
    {
        Ok(Ok(request)) => request,
        Ok(Err(response)) => return *response,
        Err(e) => return HttpError::internal(e).into_response(),
    };
    let metrics = app.metrics.clone();
    streamed("application/x-git-upload-pack-result", move |out| {
        let _slot = slot;
        let mut out = out.counted(metrics.clone());
        let (body, _reserved) = request;
        let answer = if version == 2 {
            upload::serve_v2(&state, &body)
        } else {
            upload::serve_v0(&state, &body)
        };
        drop(body);
        let response = match answer {
            Ok(response) => response,
            Err(e) => {
                if !matches!(e, UploadError::Request(_) | UploadError::NotOurRef(_)) {
                    tracing::error!("upload-pack of {}: {e}", state.repo.name());
                } else {
                    tracing::info!("upload-pack of {} refused: {e}", state.repo.name());
                }
                upload::Response {
                    head: upload::error_response(&e),
                    pack: None,
                }
            }
        };
        if out.write_all(&response.head).is_err() {
            return Ok(());
        }
        if let Some(plan) = response.pack {
            metrics.fetch();
            let repack_wanted = plan.repack_wanted;
            if let Err(e) = plan.run(&state, out.clone()) {
                // Without a side band git cannot be told why: cut the body short.
                out.abort(e);
            }
            drop(out);
            if repack_wanted {
                state.schedule_repack();
            }
        }
        Ok(())
    })
    .await
}

async fn receive_pack_refs(
    app: Arc<AppState>,
    caller: Caller,
    owner: String,
    name: String,
) -> Response {
    answered("application/x-git-receive-pack-advertisement", move || {
        let (state, _, _) = authorized_repo(&app, caller, &owner, &name, Op::Write)?;
        let mut body = Vec::new();
        pktline::text(&mut body, "# service=git-receive-pack");
        pktline::flush(&mut body);
        let refs = crate::receive::advertisement(&state).map_err(HttpError::internal)?;
        body.extend_from_slice(&refs);
        Ok(body)
    })
    .await
}

pub async fn receive_pack(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    Path((owner, name)): Path<(String, String)>,
    client: Client,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(response) = expect_content_type(&headers, "application/x-git-receive-pack-request") {
        return *response;
    }
    let limits = app.settings.push;
    let encoding = match content_encoding(&headers) {
        Ok(encoding) => encoding,
        Err(response) => return *response,
    };
    // Authorized before a push slot is taken or the body read.
    let (state, caller, repo_name) = match authorize(&app, caller, owner, name, Op::Write).await {
        Ok(authorized) => authorized,
        Err(response) => return response,
    };
    // The slot is taken once data is there: a client that sends headers and then nothing
    // holds no slot and no thread. One caller, and one repository, hold a share only.
    let mut frames = body.into_data_stream();
    let first = match tokio::time::timeout(
        app.limits.body_idle,
        futures_util::StreamExt::next(&mut frames),
    )
    .await
    {
        Ok(Some(Ok(frame))) => Some(frame),
        Ok(None) => None,
        Ok(Some(Err(e))) => {
            return plain(
                StatusCode::BAD_REQUEST,
                format!("forge: the request body was cut off: {e}"),
            );
        }
        Err(_) => {
            return plain(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "forge: no request data for {} seconds",
                    app.limits.body_idle.as_secs()
                ),
            );
        }
    };
    let keys = vec![
        share_key(&caller, &client),
        format!("repository:{}", state.repo.id()),
    ];
    let slot = match app.push_slots.acquire(keys, app.limits.slot_wait).await {
        Ok(slot) => slot,
        Err(why) => return busy(why),
    };
    let metrics = app.metrics.clone();
    let input = request_stream(first, frames, app.limits.body_idle, metrics.clone());
    streamed("application/x-git-receive-pack-result", move |out| {
        let _slot = slot;
        let mut input = decoded_input(input, encoding, limits.max_push_bytes);
        let request = crate::receive::request::read_request(&mut input).map_err(|reason| {
            HttpError::new(StatusCode::BAD_REQUEST, format!("forge: {reason}"))
        })?;
        if request.commands.is_empty() {
            // The probe git sends before a large chunked body.
            return Ok(());
        }
        metrics.push();
        let may_update = |ref_name: &str| caller.may_update(&repo_name, ref_name);
        let base_url = client.url("");
        let pusher = crate::receive::Pusher {
            caller: caller.gate_caller(),
            identity: caller.token.as_ref().map(|t| t.identity.as_str()),
            admin: caller.administers(&repo_name),
            data: &app.data,
            may_update: &may_update,
            base_url: Some(&base_url),
        };
        match crate::receive::receive(&state, &request, &mut input, limits, &pusher, out) {
            Ok(outcome) => {
                for code in outcome.refused {
                    metrics.refused("push", code);
                }
                if outcome.moved {
                    state.schedule_repack();
                }
            }
            Err(e) => tracing::info!("push to {}: {e}", state.repo.name()),
        }
        Ok(())
    })
    .await
}

/// How the request body is encoded: as sent, or gzip-compressed.
#[derive(Debug, Clone, Copy)]
enum ContentEncoding {
    Identity,
    Gzip,
}

fn content_encoding(headers: &HeaderMap) -> Result<ContentEncoding, Box<Response>> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match encoding {
        "" | "identity" => Ok(ContentEncoding::Identity),
        "gzip" | "x-gzip" => Ok(ContentEncoding::Gzip),
        other => Err(Box::new(plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported Content-Encoding '{other}'"),
        ))),
    }
}

/// The request body, decoded, as a blocking reader that fails past `limit` bytes (as sent,
/// and once inflated).
fn decoded_input(input: RequestStream, encoding: ContentEncoding, limit: u64) -> impl BufRead {
    let raw = Limited::new(input, limit);
    let decoded: Box<dyn Read + Send> = match encoding {
        ContentEncoding::Identity => Box::new(raw),
        ContentEncoding::Gzip => Box::new(Limited::new(flate2::read::GzDecoder::new(raw), limit)),
    };
    io::BufReader::with_capacity(REQUEST_BUFFER, decoded)
}

/// Reads at most `limit` bytes, then fails saying so. After that one failure it lets the
/// caller drain up to `limit` more (discarding them), so the client finishes sending and
/// reads the answer instead of seeing its upload cut off.
struct Limited<R> {
    inner: R,
    left: u64,
    limit: u64,
    overflowed: bool,
}

impl<R> Limited<R> {
    fn new(inner: R, limit: u64) -> Limited<R> {
        Limited {
            inner,
            left: limit,
            limit,
            overflowed: false,
        }
    }
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // One byte more tells "exactly at the limit" from "over it".
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? == 0 {
                return Ok(0);
            }
            let first = !self.overflowed;
            self.overflowed = true;
            if first {
                self.left = self.limit;
            }
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!(
                    "the push is larger than this server's limit of {} bytes",
                    self.limit
                ),
            ));
        }
        let wanted = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buf[..wanted])?;
        self.left -= read as u64;
        Ok(read)
    }
}

/// The request body as a blocking `Read`: frames come from the connection through a small
/// queue, so a push of any size holds only a few of them in memory.
struct RequestStream {
    rx: mpsc::Receiver<Result<Bytes, io::Error>>,
    current: Bytes,
}

fn request_stream(
    first: Option<Bytes>,
    mut frames: axum::body::BodyDataStream,
    idle: std::time::Duration,
    metrics: Arc<Metrics>,
) -> RequestStream {
    let (tx, rx) = mpsc::channel(REQUEST_QUEUE);
    let Some(first) = first else {
        return RequestStream {
            rx,
            current: Bytes::new(),
        };
    };
    metrics.push_received(first.len());
    tokio::spawn(async move {
        loop {
            let next = tokio::time::timeout(idle, futures_util::StreamExt::next(&mut frames));
            let frame = match next.await {
                Ok(Some(frame)) => frame.map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the request body was cut off: {e}"),
                    )
                }),
                Ok(None) => break,
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no request data for {} seconds", idle.as_secs()),
                )),
            };
            if let Ok(frame) = &frame {
                metrics.push_received(frame.len());
            }
            let failed = frame.is_err();
            if tx.send(frame).await.is_err() || failed {
                break;
            }
        }
    });
    RequestStream { rx, current: first }
}

impl Read for RequestStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(frame) => self.current = frame?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        bytes::Buf::advance(&mut self.current, n);
        Ok(n)
    }
}

/// Runs `work` on a blocking thread, its writes streamed as the response body; a failure
/// before the first write is a real HTTP status.
async fn streamed(
    content_type: &'static str,
    work: impl FnOnce(BodyWriter) -> Result<(), HttpError> + Send + 'static,
) -> Response {
    match stream::streamed(work).await {
        Ok(body) => git_response(content_type, body),
        Err(Some(e)) => e.into_response(),
        Err(None) => HttpError::internal("the response writer panicked").into_response(),
    }
}

fn expect_content_type(headers: &HeaderMap, expected: &str) -> Result<(), Box<Response>> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type == expected {
        return Ok(());
    }
    Err(Box::new(plain(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!("expected Content-Type {expected}"),
    )))
}
