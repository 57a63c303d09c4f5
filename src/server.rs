//! `forge serve`: the HTTP server. For now it serves the list of repositories; the git smart
//! HTTP front end, the REST API and the pages come next.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::store::DataDir;

struct AppState {
    data: PathBuf,
}

/// Serves until interrupted. Announces the address on stderr (or as a JSON line on stdout
/// with `json`), which matters when `listen` asks for any free port (`127.0.0.1:0`).
pub fn serve(data: PathBuf, listen: SocketAddr, json: bool) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let state = Arc::new(AppState { data: data.clone() });
        let app = Router::new()
            .route("/", get(index))
            .route("/healthz", get(|| async { "ok\n" }))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        if json {
            println!(
                "{}",
                serde_json::json!({"listening": format!("http://{addr}/"), "data": data})
            );
        } else {
            eprintln!("forge: serving {} on http://{addr}/", data.display());
        }
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        Ok(())
    })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

async fn index(State(state): State<Arc<AppState>>) -> Response {
    let listed = tokio::task::spawn_blocking(move || {
        DataDir::open(&state.data).and_then(|d| d.list_repos())
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
                "<p>No repositories yet. Create one with <code>forge repo create OWNER/NAME</code>.</p>".to_owned()
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
