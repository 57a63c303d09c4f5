//! `forge serve`: the HTTP server. git's smart HTTP protocol (`smart_http.rs`), the REST
//! API (`api.rs`), `/metrics` (`metrics.rs`) and, for now, a page listing the public
//! repositories; connections are accepted and bounded in `listen.rs` (HTTPS with
//! `tls.rs`, clients behind proxies told apart in `forwarded.rs`), shared work in
//! `limits.rs`.

mod api;
pub mod auth;
mod error;
mod event_hub;
pub mod forwarded;
pub mod hooks;
pub mod limits;
pub mod listen;
mod log;
pub mod metrics;
mod smart_http;
mod stream;
pub mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use parking_lot::Mutex;

use crate::store::DataDir;

/// What a client is told when the server itself failed; the details, which can name
/// server paths, go to the log.
pub(crate) const INTERNAL_ERROR: &str = "internal error (the server log has the details)";
use crate::served::{RepoState, ServeSettings};

pub use log::LogFormat;

/// Decoded delta bases a served repository keeps between requests. Walks go newest to
/// oldest, so a small cache already resolves most chains; more only holds memory.
const SERVED_REPO_CACHE: usize = 16 << 20;

/// What the server holds at most, whatever clients do.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    pub connections: listen::ConnectionLimits,
    /// Fetches (upload-pack requests) computing or sending a pack at once, and how many of
    /// them one caller may hold (an identity, or an address without a token).
    pub fetches: usize,
    pub fetches_per_caller: usize,
    /// Pushes indexing or storing at once, and how many one caller or repository may hold.
    pub pushes: usize,
    pub pushes_per_key: usize,
    /// How long a request waits for one of those slots before it is answered 503.
    pub slot_wait: Duration,
    /// Bytes of upload-pack request bodies held in memory by all requests together,
    /// beyond the small allowance each request has.
    pub request_memory: usize,
    /// Longest silence inside a request body, and longest time to receive a whole
    /// upload-pack request.
    pub body_idle: Duration,
    pub body_total: Duration,
    /// Repositories kept open between requests; one unused for `repo_idle` is closed.
    pub open_repos: usize,
    pub repo_idle: Duration,
}

impl Default for ServerLimits {
    fn default() -> ServerLimits {
        ServerLimits {
            connections: listen::ConnectionLimits::default(),
            fetches: 32,
            fetches_per_caller: 8,
            pushes: 16,
            pushes_per_key: 4,
            slot_wait: Duration::from_secs(60),
            request_memory: 256 << 20,
            body_idle: Duration::from_secs(60),
            body_total: Duration::from_secs(300),
            open_repos: 128,
            repo_idle: Duration::from_secs(600),
        }
    }
}

struct CachedRepo {
    state: Arc<RepoState>,
    last_used: Instant,
}

/// Whether a request is for the REST API, whose failures are answered as JSON.
fn is_api_path(path: &str) -> bool {
    path.starts_with("/api/")
}

/// Open event streams one identity (or all anonymous callers together) may hold.
const EVENT_STREAMS_PER_CALLER: usize = 16;

impl AppState {
    /// Relays the events of the repositories written since the last relay, then wakes the
    /// streams. Called by the relayer task, and by readers of the whole log first, so that
    /// a caller reads its own writes.
    fn relay_written(&self) {
        let (_relaying, written) = self.events.take_written();
        if written.is_empty() {
            return;
        }
        for id in written {
            let cached = self.repos.lock().get(&id).map(|c| c.state.clone());
            match cached {
                Some(state) => state.repo.relay_events(),
                // Closed meanwhile: relay from its outbox directly.
                None => {
                    let relayed = self.data.list_repos().and_then(|records| {
                        match records.iter().find(|r| r.id == id) {
                            Some(record) => self.data.relay_record_events(record),
                            // Deleted meanwhile: its events went with it.
                            None => Ok(()),
                        }
                    });
                    if let Err(e) = relayed {
                        tracing::warn!("relaying events: {e}");
                    }
                }
            }
        }
        self.events.wake();
    }

    /// Drops a deleted repository's served state (requests that hold it finish with it).
    fn forget_repo(&self, id: u64) {
        self.repos.lock().remove(&id);
    }

    /// The served state of a registered repository, kept open between requests (and
    /// refreshed to see other processes' writes) within the open-repository bound.
    fn repo_state(
        &self,
        record: crate::store::RepoRecord,
    ) -> Result<Arc<RepoState>, crate::store::StoreError> {
        if let Some(cached) = self.repos.lock().get_mut(&record.id) {
            cached.last_used = Instant::now();
            let state = cached.state.clone();
            state.repo.refresh()?;
            return Ok(state);
        }
        let id = record.id;
        // Opened without the cache's lock: other repositories are served meanwhile.
        let repo = self.data.open_record(record)?;
        repo.set_cache_budget(SERVED_REPO_CACHE);
        let hub = Arc::downgrade(&self.events);
        repo.relay_with(Arc::new(move |id| {
            if let Some(hub) = hub.upgrade() {
                hub.written(id);
            }
        }));
        crate::packing::repack::sweep_unfinished(repo.dir());
        let opened = Arc::new(RepoState::new(repo, self.settings));
        let mut repos = self.repos.lock();
        if let Some(cached) = repos.get_mut(&id) {
            // Another request opened it first: one served state per repository, so that
            // pushes to it share one push lock.
            cached.last_used = Instant::now();
            return Ok(cached.state.clone());
        }
        if repos.len() >= self.limits.open_repos {
            evict_least_recent(&mut repos);
        }
        repos.insert(
            id,
            CachedRepo {
                state: opened.clone(),
                last_used: Instant::now(),
            },
        );
        Ok(opened)
    }

    /// Closes repositories nobody used for `repo_idle`.
    fn close_idle_repos(&self) {
        let idle = self.limits.repo_idle;
        self.repos.lock().retain(|_, cached| {
            Arc::strong_count(&cached.state) > 1 || cached.last_used.elapsed() < idle
        });
    }
}

/// Makes room for one more open repository: the least recently used one no request holds.
/// When every one is in use the cache grows past its bound until they are given back.
fn evict_least_recent(repos: &mut HashMap<u64, CachedRepo>) {
    let victim = repos
        .iter()
        .filter(|(_, cached)| Arc::strong_count(&cached.state) == 1)
        .min_by_key(|(_, cached)| cached.last_used)
        .map(|(id, _)| *id);
    if let Some(id) = victim {
        repos.remove(&id);
    }
}

/// How often the server applies the event log's retention bound.
const EVENT_PRUNE_EVERY: Duration = Duration::from_secs(600);

/// How `forge serve` runs.
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub settings: ServeSettings,
    pub limits: ServerLimits,
    /// Print the address as a JSON line on stdout instead of a sentence on stderr.
    pub json: bool,
    pub log_format: LogFormat,
    /// Serve HTTPS with this certificate chain and key (PEM files).
    pub tls: Option<TlsFiles>,
    /// Peers whose forwarding headers are believed.
    pub trusted_proxies: Vec<forwarded::ProxyNet>,
    /// A bearer token that may read `/metrics` (site admins' tokens may too).
    pub metrics_token: Option<String>,
    /// How webhooks are delivered.
    pub hooks: hooks::HookSettings,
    /// How much of the event log is kept (pruned at start and every ten minutes).
    pub retention: crate::store::Retention,
}

/// The PEM files of `--tls-cert` and `--tls-key`.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub struct AppState {
    data: DataDir,
    auth: auth::Authenticator,
    settings: ServeSettings,
    limits: ServerLimits,
    fetch_slots: Arc<limits::Slots>,
    push_slots: Arc<limits::Slots>,
    request_memory: Arc<limits::MemoryBudget>,
    /// Served repositories by registry id (a name deleted and created again is a new id).
    repos: Mutex<HashMap<u64, CachedRepo>>,
    /// Live event streams, and the relay of written repositories' events into the log.
    events: Arc<event_hub::EventHub>,
    metrics: Arc<metrics::Metrics>,
    metrics_token: Option<String>,
    /// The webhook worker (woken by hook changes).
    hooks: Arc<hooks::HookWorker>,
}

/// Serves until interrupted. Announces the address, which matters when `listen` asks for
/// any free port (`127.0.0.1:0`).
pub fn serve(data: PathBuf, options: ServeOptions) -> anyhow::Result<()> {
    let ServeOptions {
        listen,
        settings,
        limits,
        json,
        log_format,
        tls,
        trusted_proxies,
        metrics_token,
        hooks: hook_settings,
        retention,
    } = options;
    log::init(log_format);
    // A bad certificate or key stops the start, before anything is opened.
    let acceptor = match &tls {
        Some(files) => Some(tls::acceptor(&files.cert, &files.key)?),
        None => None,
    };
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    let transport = listen::Transport {
        tls: acceptor,
        proxies: Arc::new(forwarded::TrustedProxies::new(trusted_proxies)),
    };
    return_freed_memory_promptly();
    let file_limit = listen::raise_file_limit();
    let limits = ServerLimits {
        connections: limits.connections.fitted_to(file_limit),
        ..limits
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let data_dir = DataDir::open_or_init(&data)?;
    let bootstrap = bootstrap_admin(&data_dir)?;
    runtime.block_on(async move {
        let root = crate::auth::root_key(&data_dir)?;
        let state = Arc::new(AppState {
            auth: auth::Authenticator::new(root),
            data: data_dir,
            settings,
            limits,
            fetch_slots: limits::Slots::new(limits.fetches, limits.fetches_per_caller),
            push_slots: limits::Slots::new(limits.pushes, limits.pushes_per_key),
            request_memory: limits::MemoryBudget::new(limits.request_memory),
            repos: Mutex::new(HashMap::new()),
            events: event_hub::EventHub::new(EVENT_STREAMS_PER_CALLER),
            metrics: Arc::new(metrics::Metrics::default()),
            metrics_token: metrics_token.filter(|t| !t.is_empty()),
            hooks: hooks::HookWorker::new(&hook_settings),
        });
        // Webhook deliveries follow the log in the background; nothing waits for them.
        tokio::spawn(
            state.hooks.clone().run(
                state
                    .data
                    .acting_as(crate::store::events::Actor::operator()),
                hook_settings,
                state.events.shutdown(),
            ),
        );
        {
            let data = state.clone();
            tokio::spawn(
                state
                    .events
                    .clone()
                    .run(move || data.data.last_event().ok()),
            );
            let relayer = Arc::downgrade(&state);
            let hub = state.events.clone();
            tokio::spawn(async move {
                while hub.wait_written().await {
                    let Some(state) = relayer.upgrade() else {
                        break;
                    };
                    let _ = tokio::task::spawn_blocking(move || state.relay_written()).await;
                }
            });
        }
        {
            // Events a process committed but did not relay before it stopped (a crash
            // between the two) join the log once, at start; every write relays its own.
            let state = state.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = state.data.relay_all_events() {
                    tracing::warn!("relaying pending events: {e}");
                }
            });
        }
        if retention != crate::store::Retention::default() {
            // The log's retention bound, kept at start and every ten minutes.
            let state = Arc::downgrade(&state);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(EVENT_PRUNE_EVERY);
                loop {
                    tick.tick().await;
                    let Some(state) = state.upgrade() else { break };
                    let _ = tokio::task::spawn_blocking(move || {
                        if let Err(e) = state.data.prune_events(retention) {
                            tracing::warn!("pruning the event log: {e}");
                        }
                    })
                    .await;
                }
            });
        }
        {
            let state = Arc::downgrade(&state);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(30));
                loop {
                    tick.tick().await;
                    let Some(state) = state.upgrade() else { break };
                    let _ = tokio::task::spawn_blocking(move || state.close_idle_repos()).await;
                }
            });
        }
        let app = Router::new()
            .route("/", get(index))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/metrics", get(metrics::scrape))
            .route("/{owner}/{repo}/info/refs", get(smart_http::info_refs))
            .route(
                "/{owner}/{repo}/git-upload-pack",
                post(smart_http::upload_pack),
            )
            .route(
                "/{owner}/{repo}/git-receive-pack",
                post(smart_http::receive_pack),
            )
            .merge(api::routes())
            .with_state(state.clone());
        let state_hub = state.events.clone();
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let example = bootstrap.as_ref().map(|b| {
            format!(
                "git clone {scheme}://admin:{}@{addr}/{}.git",
                b.token, b.example_repo
            )
        });
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "listening": format!("{scheme}://{addr}/"),
                    "data": data,
                    "admin_token": bootstrap.as_ref().map(|b| &b.token),
                    "clone": example,
                })
            );
        } else {
            eprintln!("forge: serving {} on {scheme}://{addr}/", data.display());
            if let (Some(bootstrap), Some(example)) = (&bootstrap, &example) {
                eprintln!(
                    "forge: created the admin identity; its token (shown once, keep it):\n{}",
                    bootstrap.token
                );
                if bootstrap.created_repo {
                    eprintln!(
                        "forge: created the empty repository {}",
                        bootstrap.example_repo
                    );
                }
                eprintln!("forge: try: {example}");
            }
        }
        tracing::info!(
            "serving on {scheme}://{addr}/ (at most {} connections, {} fetches, {} pushes)",
            limits.connections.max_connections,
            limits.fetches,
            limits.pushes
        );
        if !transport.proxies.is_empty() {
            tracing::info!(
                "believing forwarding headers from {}",
                transport.proxies.describe()
            );
        }
        let shutdown_hub = state_hub.clone();
        listen::serve(
            listener,
            app,
            limits.connections,
            transport,
            state.metrics.clone(),
            async {
                let _ = tokio::signal::ctrl_c().await;
                // Live streams end, so that the connections carrying them can close.
                shutdown_hub.shut_down();
            },
            Duration::from_secs(10),
        )
        .await;
        Ok(())
    })
}

/// What the first start created: the admin's token, and a repository to clone.
struct Bootstrap {
    token: String,
    example_repo: String,
    created_repo: bool,
}

/// The name of the identity the first start creates.
const ADMIN: &str = "admin";

/// On the first start (no `admin` identity yet): the root key, the `admin` identity and a
/// token with every right, and a repository to clone (the first one, or an empty
/// `admin/first`).
fn bootstrap_admin(data: &DataDir) -> anyhow::Result<Option<Bootstrap>> {
    use crate::auth::token::{Grant, Op, Scope};
    if data.find_identity(ADMIN)?.is_some() {
        return Ok(None);
    }
    let identity = crate::store::Identity {
        name: ADMIN.to_owned(),
        kind: crate::store::IdentityKind::Human,
        owner: None,
        keys: Vec::new(),
        created_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        disabled: false,
        incarnation: 0,
    };
    let identity = match data.add_identity(&identity) {
        Ok(stored) => stored,
        // Another process created it first: it printed the token.
        Err(crate::store::IdentityError::Exists(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let root = crate::auth::root_key(data)?;
    let token = crate::auth::token::mint(
        &Grant {
            identity: ADMIN.to_owned(),
            scopes: vec![Scope::All],
            ops: vec![Op::Admin],
            ref_globs: Vec::new(),
            expires: None,
            parents: Vec::new(),
            incarnation: identity.incarnation,
        },
        &root,
    )?;
    let (example_repo, created_repo) = match data.list_repos()?.into_iter().next() {
        Some(record) => (record.name, false),
        None => {
            let name = crate::store::RepoName::parse("admin/first")?;
            data.create_repo(&name)?;
            (name.to_string(), true)
        }
    };
    Ok(Some(Bootstrap {
        token,
        example_repo,
        created_repo,
    }))
}

/// A server lives long and its requests allocate in bursts on many threads: freed memory
/// goes back to the system at once instead of after mimalloc's default delay, so the
/// resident size follows the work in progress (measured: 43 → 29 MiB anonymous after a
/// blobless clone of tokio, no CPU cost seen).
fn return_freed_memory_promptly() {
    /// `mi_option_purge_delay` in mimalloc 2's `mimalloc.h` (libmimalloc-sys 0.1.49).
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: sets a process-wide option; mimalloc allows it at any time.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The public repositories (private ones are not named to anonymous visitors).
async fn index(State(state): State<Arc<AppState>>) -> Response {
    let listed = tokio::task::spawn_blocking(move || {
        let mut public = Vec::new();
        for record in state.data.list_repos()? {
            if state.data.is_public(&record)? {
                public.push(record);
            }
        }
        Ok::<_, crate::store::StoreError>(public)
    })
    .await;
    match listed {
        Ok(Ok(mut repos)) => {
            repos.sort_by(|a, b| a.name.cmp(&b.name));
            let items: String = repos
                .iter()
                .map(|r| format!("<li>{}</li>\n", escape(&r.name)))
                .collect();
            let body = if items.is_empty() {
                "<p>No public repositories yet. Make one with <code>forge repo config OWNER/NAME public true</code>.</p>".to_owned()
            } else {
                format!("<ul>\n{items}</ul>")
            };
            Html(format!(
                "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>forge</title></head>\n<body><h1>forge</h1>\n{body}\n</body></html>\n"
            ))
            .into_response()
        }
        Ok(Err(e)) => {
            // The error names server paths: for the log, not for the visitor.
            tracing::error!("listing repositories: {e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("{INTERNAL_ERROR}\n"),
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!("listing repositories: {e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{INTERNAL_ERROR}\n"),
            )
                .into_response()
        }
    }
}
