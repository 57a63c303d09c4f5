//! `forge serve`: the HTTP server. git's smart HTTP protocol (`smart_http.rs`) and, for
//! now, a page listing the repositories; the REST API and the pages come next.

mod api;
pub mod auth;
mod smart_http;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;

use crate::store::DataDir;
use crate::upload::{RepoState, ServeSettings};

/// Decoded delta bases a served repository keeps between requests. Walks go newest to
/// oldest, so a small cache already resolves most chains; more only holds memory.
const SERVED_REPO_CACHE: usize = 16 << 20;

impl AppState {
    /// The served state of a registered repository, opened once and kept (refreshed to see
    /// other processes' writes).
    fn repo_state(
        &self,
        record: crate::store::RepoRecord,
    ) -> Result<Arc<RepoState>, crate::store::StoreError> {
        let mut repos = self.repos.lock().expect("repo cache lock");
        if let Some(state) = repos.get(&record.id) {
            let state = state.clone();
            drop(repos);
            state.repo.refresh()?;
            return Ok(state);
        }
        let id = record.id;
        let repo = self.data.open_record(record)?;
        repo.set_cache_budget(SERVED_REPO_CACHE);
        let state = Arc::new(RepoState::new(repo, self.settings));
        repos.insert(id, state.clone());
        Ok(state)
    }

    /// Whether anyone may read the repository (`forge repo config … public true`).
    fn is_public(
        &self,
        record: &crate::store::RepoRecord,
    ) -> Result<bool, crate::store::StoreError> {
        crate::auth::is_public(&self.repo_state(record.clone())?.repo)
    }
}

/// Each push holds a blocking thread while its body arrives: this many at once leaves the
/// rest of the blocking pool to fetches whatever pushing clients do.
const MAX_CONCURRENT_PUSHES: usize = 16;

/// How `forge serve` runs.
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub settings: ServeSettings,
    /// Print the address as a JSON line on stdout instead of a sentence on stderr.
    pub json: bool,
}

pub struct AppState {
    data: DataDir,
    auth: auth::Authenticator,
    /// Pushes running at once; more wait (without holding a thread) for a slot.
    push_slots: Arc<tokio::sync::Semaphore>,
    settings: ServeSettings,
    /// Served repositories by registry id (a name deleted and created again is a new id).
    repos: Mutex<HashMap<u64, Arc<RepoState>>>,
}

/// Serves until interrupted. Announces the address, which matters when `listen` asks for
/// any free port (`127.0.0.1:0`).
pub fn serve(data: PathBuf, options: ServeOptions) -> anyhow::Result<()> {
    let ServeOptions {
        listen,
        settings,
        json,
    } = options;
    return_freed_memory_promptly();
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
            push_slots: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_PUSHES)),
            settings,
            repos: Mutex::new(HashMap::new()),
        });
        let app = Router::new()
            .route("/", get(index))
            .route("/healthz", get(|| async { "ok\n" }))
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
            .with_state(state);
        // git waits for each small response before sending the next request: no Nagle delay.
        let listener = tokio::net::TcpListener::bind(listen).await?.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let addr = axum::serve::Listener::local_addr(&listener)?;
        let example = bootstrap.as_ref().map(|b| {
            format!(
                "git clone http://admin:{}@{addr}/{}.git",
                b.token, b.example_repo
            )
        });
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "listening": format!("http://{addr}/"),
                    "data": data,
                    "admin_token": bootstrap.as_ref().map(|b| &b.token),
                    "clone": example,
                })
            );
        } else {
            eprintln!("forge: serving {} on http://{addr}/", data.display());
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
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
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
        public_keys: Vec::new(),
        created_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    match data.add_identity(&identity) {
        Ok(()) => {}
        // Another process created it first: it printed the token.
        Err(crate::store::IdentityError::Exists(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let root = crate::auth::root_key(data)?;
    let token = crate::auth::token::mint(
        &Grant {
            identity: ADMIN.to_owned(),
            scopes: vec![Scope::All],
            ops: vec![Op::Admin],
            ref_globs: Vec::new(),
            expires: None,
            parents: Vec::new(),
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
            if state.is_public(&record)? {
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
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("cannot read the data directory: {e}\n"),
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
