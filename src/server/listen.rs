//! Accepting connections: a bound on how many are open, timeouts for every phase, and
//! shedding with a clear answer when the server is full. `axum::serve` has none of these
//! (its hyper runs without a timer, so not even the header timeout is in force).
//!
//! - Headers must arrive within `header_timeout`; hyper also applies it to the wait for
//!   the next request on a kept-alive connection, so an idle connection closes by itself.
//! - A response write that makes no progress for `write_timeout` ends the connection (a
//!   client that stops reading cannot hold a thread or a slot).
//! - At `max_connections`, the connection idle the longest (no request in progress) is
//!   closed to make room; when every connection is busy, the new one is answered 503.
//! - A panic in a request is answered 500 and touches nothing shared (locks do not poison).
//! - With TLS, the handshake runs in the connection's own task and must finish within
//!   `header_timeout`; until it has, the connection counts as open and idle (so it can be
//!   closed to make room), and the write timeout holds for its bytes too.
//! - Every request carries the `Client` it is from (`forwarded.rs`: the TCP peer, or what
//!   a trusted proxy said), used by its log line and the per-caller limits.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode};
use bytes::Bytes;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::forwarded::{Client, Connection, TrustedProxies};
use super::metrics::{ConnectionStats, Metrics};

/// How connections are bounded.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub write_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            max_connections: 1024,
            header_timeout: Duration::from_secs(20),
            write_timeout: Duration::from_secs(60),
        }
    }
}

/// Raises the soft limit on open files to the hard one and returns the soft limit now in
/// force, so the connection bound can leave room for repositories and segment files.
pub fn raise_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
    }
    Some(limit.rlim_cur)
}

/// Connections to keep for everything else a process opens: repositories, segments,
/// packs being written, the data directory's databases.
const FILES_KEPT_FOR_THE_STORE: u64 = 256;

impl ConnectionLimits {
    /// The bound, lowered to what the file limit allows (half of what is left after the
    /// store's share: a shed connection needs a descriptor of its own for a moment).
    pub fn fitted_to(mut self, file_limit: Option<u64>) -> ConnectionLimits {
        if let Some(files) = file_limit {
            let room = files.saturating_sub(FILES_KEPT_FOR_THE_STORE) / 2;
            self.max_connections = self.max_connections.min(room.max(16) as usize);
        }
        self
    }
}

struct Open {
    /// Requests in progress, response bodies included.
    active: Arc<AtomicUsize>,
    /// Milliseconds since `epoch` when the last request on it ended (or it opened).
    idle_since: Arc<AtomicU64>,
    abort: tokio::task::AbortHandle,
}

struct Registry {
    epoch: Instant,
    next: AtomicU64,
    open: Mutex<HashMap<u64, Open>>,
    stats: Arc<ConnectionStats>,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Closes the connection idle the longest; false when none is idle.
    fn evict_idle(&self) -> bool {
        let mut open = self.open.lock();
        let oldest = open
            .iter()
            .filter(|(_, c)| c.active.load(Ordering::Acquire) == 0)
            .min_by_key(|(_, c)| c.idle_since.load(Ordering::Relaxed))
            .map(|(id, _)| *id);
        let Some(id) = oldest else {
            return false;
        };
        if let Some(conn) = open.remove(&id) {
            conn.abort.abort();
            self.stats.open.fetch_sub(1, Ordering::Relaxed);
            self.stats.evicted.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    fn remove(&self, id: u64) {
        if self.open.lock().remove(&id).is_some() {
            self.stats.open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// How connections are spoken to: plain HTTP or TLS, and whose forwarding headers are
/// believed.
#[derive(Clone, Default)]
pub struct Transport {
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub proxies: Arc<TrustedProxies>,
}

/// Serves `app` on `listener` until `shutdown` completes, then lets the requests in
/// progress finish (for at most `grace`). Requests and connections are counted in
/// `metrics`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    transport: Transport,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let registry = Arc::new(Registry {
        epoch: Instant::now(),
        next: AtomicU64::new(0),
        open: Mutex::new(HashMap::new()),
        stats: metrics.connections.clone(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    let shedding = Arc::new(tokio::sync::Semaphore::new(64));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors (EMFILE/ENFILE) or a connection reset before accept:
                // make room if an idle connection can go, and do not spin.
                tracing::error!("accepting a connection failed: {e}");
                registry.evict_idle();
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        if registry.stats.open.load(Ordering::Relaxed) >= limits.max_connections
            && !registry.evict_idle()
        {
            registry.stats.shed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "{peer}: refused, all {} connections are busy",
                limits.max_connections
            );
            if let Ok(permit) = shedding.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    shed(tcp).await;
                    drop(permit);
                });
            }
            continue;
        }
        let id = registry.next.fetch_add(1, Ordering::Relaxed);
        let active = Arc::new(AtomicUsize::new(0));
        let idle_since = Arc::new(AtomicU64::new(registry.now_ms()));
        let local = tcp.local_addr().unwrap_or(peer);
        // Counted before it is served: the connection's first request may be answered on
        // another worker before this loop runs again (a scrape counts itself).
        registry.stats.open.fetch_add(1, Ordering::Relaxed);
        let task = tokio::spawn(connection(
            tcp,
            Connection {
                peer,
                local,
                tls: transport.tls.is_some(),
            },
            Served {
                app: app.clone(),
                transport: transport.clone(),
                metrics: metrics.clone(),
            },
            limits,
            Activity {
                active: active.clone(),
                idle_since: idle_since.clone(),
                registry: registry.clone(),
            },
            stop_rx.clone(),
        ));
        registry.open.lock().insert(
            id,
            Open {
                active,
                idle_since,
                abort: task.abort_handle(),
            },
        );
        let registry = registry.clone();
        tokio::spawn(async move {
            let _ = task.await;
            registry.remove(id);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let deadline = Instant::now() + grace;
    while registry.stats.open.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Answers a connection the server has no room for, then closes it.
async fn shed(mut tcp: TcpStream) {
    const BODY: &str = "forge: the server has too many connections open; try again shortly\n";
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Retry-After: 5\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let exchange = async {
        tcp.write_all(answer.as_bytes()).await?;
        tcp.shutdown().await?;
        // Read what the client sent before closing, so the answer is not lost to a reset.
        let mut sink = [0u8; 4096];
        while tokio::io::AsyncReadExt::read(&mut tcp, &mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), exchange).await;
}

/// The count of requests in progress on one connection, shared with the registry.
#[derive(Clone)]
struct Activity {
    active: Arc<AtomicUsize>,
    idle_since: Arc<AtomicU64>,
    registry: Arc<Registry>,
}

/// Held while a request (and its response body) is in progress.
struct Busy(Activity);

impl Busy {
    fn new(activity: &Activity) -> Busy {
        activity.active.fetch_add(1, Ordering::AcqRel);
        Busy(activity.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let activity = &self.0;
        activity
            .idle_since
            .store(activity.registry.now_ms(), Ordering::Relaxed);
        activity.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What every connection serves, and with what.
struct Served {
    app: Router,
    transport: Transport,
    metrics: Arc<Metrics>,
}

/// One connection: its TLS handshake (within the header timeout), then HTTP/1.1.
async fn connection(
    tcp: TcpStream,
    connection: Connection,
    served: Served,
    limits: ConnectionLimits,
    activity: Activity,
    stop: watch::Receiver<bool>,
) {
    let peer = connection.peer;
    let io = WriteTimeout::new(tcp, limits.write_timeout);
    let Some(acceptor) = served.transport.tls.clone() else {
        return http(io, connection, served, limits, activity, stop).await;
    };
    match tokio::time::timeout(limits.header_timeout, acceptor.accept(io)).await {
        Ok(Ok(tls)) => http(tls, connection, served, limits, activity, stop).await,
        Ok(Err(e)) => {
            served.metrics.tls_failed();
            tracing::debug!("{peer}: TLS handshake failed: {e}");
        }
        Err(_) => {
            served.metrics.tls_failed();
            tracing::debug!(
                "{peer}: no TLS handshake within {} seconds",
                limits.header_timeout.as_secs()
            );
        }
    }
}

/// Serves HTTP/1.1 on `io` until the client is done, a timeout ends it, or the server stops.
async fn http<IO>(
    io: IO,
    connection: Connection,
    served: Served,
    limits: ConnectionLimits,
    activity: Activity,
    mut stop: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Served {
        app,
        transport,
        metrics,
    } = served;
    let peer = connection.peer;
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let busy = Busy::new(&activity);
        let request_id = next_request_id();
        let api = super::is_api_path(request.uri().path());
        let client = transport.proxies.client(connection, request.headers());
        let mut logged = Logged {
            method: request.method().clone(),
            target: request
                .uri()
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
            path_len: request.uri().path().len(),
            peer,
            client: client.addr,
            request_id: request_id.clone(),
            started: Instant::now(),
            status: 0,
            bytes: 0,
            metrics: metrics.clone(),
        };
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert::<Client>(client);
        // Ours, whatever the client sent: handlers and logs can trust it.
        request.headers_mut().insert(REQUEST_ID, request_id.clone());
        let app = app.clone();
        async move {
            // Its own task, so that a panic ends this request alone, answered 500.
            let handled = tokio::spawn(tower::ServiceExt::oneshot(app, request)).await;
            let mut response = match handled {
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                Err(e) => {
                    tracing::error!("{peer}: a request failed: {e}");
                    internal_error(api)
                }
            };
            response.headers_mut().insert(REQUEST_ID, request_id);
            logged.status = response.status().as_u16();
            Ok::<_, Infallible>(response.map(|body| {
                Body::new(Tracked {
                    body,
                    logged,
                    _busy: busy,
                })
            }))
        }
    });
    let io = hyper_util::rt::TokioIo::new(io);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = async { let _ = stop.wait_for(|stop| *stop).await; } => {
            conn.as_mut().graceful_shutdown();
            conn.as_mut().await
        }
    };
    if let Err(e) = result {
        tracing::debug!("{peer}: connection ended: {e}");
    }
}

/// What a request that panicked is answered: the REST error body under `/api/`, git's
/// plain text elsewhere.
fn internal_error(api: bool) -> Response<Body> {
    if api {
        return axum::response::IntoResponse::into_response(super::error::ApiError::internal(
            "a handler panicked",
        ));
    }
    let mut response = Response::new(Body::from(format!("{}\n", super::INTERNAL_ERROR)));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}

/// The header that names a request in the log and in its answer.
pub const REQUEST_ID: axum::http::HeaderName = axum::http::HeaderName::from_static("x-request-id");

/// A fresh request id: 16 hex digits, a per-process random prefix and a counter, so ids
/// from two runs of the server do not collide in one log.
fn next_request_id() -> axum::http::HeaderValue {
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| {
        let mut bytes = [0u8; 4];
        // Without randomness the ids are still unique within this run.
        let _ = getrandom::getrandom(&mut bytes);
        u32::from_le_bytes(bytes)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    axum::http::HeaderValue::from_str(&format!("{prefix:08x}{:08x}", n as u32))
        .expect("hex digits are a valid header value")
}

/// A response body that keeps its connection counted as busy until it is sent or dropped,
/// and logs the request then: one line per request, with its status, bytes and duration.
struct Tracked {
    body: Body,
    logged: Logged,
    _busy: Busy,
}

struct Logged {
    method: axum::http::Method,
    /// The path and query; the path is its first `path_len` bytes.
    target: String,
    path_len: usize,
    /// The TCP peer, and the client as far as the server can tell (the same address
    /// unless a trusted proxy forwarded the request).
    peer: SocketAddr,
    client: std::net::IpAddr,
    request_id: axum::http::HeaderValue,
    started: Instant,
    status: u16,
    bytes: u64,
    metrics: Arc<Metrics>,
}

impl Drop for Logged {
    fn drop(&mut self) {
        let elapsed = self.started.elapsed();
        let path = self.target.get(..self.path_len).unwrap_or(&self.target);
        self.metrics.request(path, self.status, elapsed);
        tracing::info!(
            target: "forge::request",
            method = %self.method,
            path = %self.target,
            status = self.status,
            bytes = self.bytes,
            ms = elapsed.as_secs_f64() * 1000.0,
            client = %self.client,
            peer = %self.peer,
            id = self.request_id.to_str().unwrap_or(""),
            "request"
        );
    }
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.logged.bytes += data.len() as u64;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A stream whose writes fail once one has made no progress for `limit`.
struct WriteTimeout<S> {
    inner: S,
    limit: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> WriteTimeout<S> {
    fn new(inner: S, limit: Duration) -> WriteTimeout<S> {
        WriteTimeout {
            inner,
            limit,
            stalled: None,
        }
    }

    fn pending_write<T>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<T>> {
        let limit = self.limit;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the client read nothing for {} seconds", limit.as_secs()),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteTimeout<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Pending => self.pending_write(cx),
            done => {
                self.stalled = None;
                done
            }
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.pending_write(cx),
            done => {
                self.stalled = None;
                done
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.pending_write(cx),
            done => {
                self.stalled = None;
                done
            }
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tokio::io::AsyncReadExt;

    async fn exchange(addr: SocketAddr, path: &str) -> String {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).await.unwrap();
        answer
    }

    /// A handler that panics while holding shared state answers 500 alone: the next
    /// requests, on new connections, see the state intact and are served.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_request_is_answered_500_and_poisons_nothing() {
        let shared = Arc::new(Mutex::new(0u32));
        let app = Router::new()
            .route(
                "/panic",
                get({
                    let shared = shared.clone();
                    move || async move {
                        let mut guard = shared.lock();
                        *guard += 1;
                        if *guard > 0 {
                            panic!("a handler bug");
                        }
                        "unreachable"
                    }
                }),
            )
            .route(
                "/count",
                get({
                    let shared = shared.clone();
                    move || async move { format!("count {}", *shared.lock()) }
                }),
            );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::default());
        let stats = metrics.connections.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            app,
            ConnectionLimits::default(),
            Transport::default(),
            metrics,
            async {
                let _ = stopped.await;
            },
            Duration::from_secs(1),
        ));
        for _ in 0..3 {
            let answer = exchange(addr, "/panic").await;
            assert!(answer.starts_with("HTTP/1.1 500"), "{answer}");
            assert!(answer.contains(super::super::INTERNAL_ERROR), "{answer}");
        }
        let answer = exchange(addr, "/count").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("count 3"), "{answer}");
        stop.send(()).unwrap();
        server.await.unwrap();
        assert_eq!(stats.open.load(Ordering::Relaxed), 0);
    }
}
