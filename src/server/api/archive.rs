//! `/api/v1/repos/{owner}/{name}/archive`: a revision's files as `tar.gz` or `zip`,
//! streamed as they are written.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::respond::Freshness;
use super::{ApiError, ApiPath, ApiQuery, ErrorBody, RepoPath, blocking, repo_for};
use crate::auth::token::Op;
use crate::browse::{self, ArchiveFormat};
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::server::stream;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ArchiveQuery {
    /// The revision (default `HEAD`): a branch, a tag, a full ref name or an id.
    #[serde(rename = "ref")]
    #[param(rename = "ref")]
    rev: Option<String>,
    /// `tar.gz` (default) or `zip`.
    #[param(pattern = "^(tar\\.gz|tgz|zip)?$")]
    format: Option<String>,
    /// The directory every path is under, `NAME-SHORTSHA/` by default; empty for none. A
    /// relative path without `.` or `..` components.
    #[param(pattern = "^[^\\\\:\\u0000-\\u001f]{0,255}$")]
    prefix: Option<String>,
}

/// An archive of a revision
///
/// Every file of the revision's tree as `git archive` writes it (directories first, modes, symlinks; the commit id in the tar's global header or the zip's comment), streamed.
#[utoipa::path(
    get,
    path = "/api/v1/repos/{owner}/{name}/archive",
    operation_id = "contents_archive",
    tag = "contents",
    params(RepoPath, ArchiveQuery),
    responses(
        (status = 200, description = "The archive", content(
            (Vec<u8> = "application/gzip"),
            (Vec<u8> = "application/zip"),
        )),
        (status = 304, description = "The client's copy (`If-None-Match`) is current"),
        (status = 400, description = "An unknown format or a bad prefix", body = ErrorBody),
        (status = 401, description = "A private repository without a token, or a token refused", body = ErrorBody),
        (status = 404, description = "No such repository or revision", body = ErrorBody),
        (status = 413, description = "Too large for zip without zip64: ask for tar.gz", body = ErrorBody),
        (status = 422, description = "The revision names something other than a commit", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(super) async fn archive(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    client: crate::server::forwarded::Client,
    headers: HeaderMap,
    ApiPath(RepoPath { owner, name }): ApiPath<RepoPath>,
    ApiQuery(query): ApiQuery<ArchiveQuery>,
) -> Result<Response, ApiError> {
    let format_name = query
        .format
        .as_deref()
        .filter(|f| !f.is_empty())
        .unwrap_or("tar.gz");
    let format = ArchiveFormat::parse(format_name).ok_or_else(|| {
        ApiError::bad_request(format!("format is tar.gz or zip, not {format_name:?}"))
    })?;
    if let Some(prefix) = &query.prefix
        && (prefix.len() > 255
            || prefix.contains('\0')
            || prefix.starts_with('/')
            || prefix.contains(['\\', ':'])
            || prefix.chars().any(char::is_control)
            || prefix.split('/').any(|c| c == ".." || c == "."))
    {
        return Err(ApiError::bad_request(
            "the prefix is a relative path of at most 255 bytes, without `.`, `..`, `\\`, `:` or control characters",
        ));
    }
    let slot = super::fetch_slot(&app, &caller, &client).await?;
    let metrics = app.metrics.clone();
    let prepared = blocking(move || {
        let (_, record) = repo_for(&app, caller.token.as_deref(), &owner, &name, Op::Read)?;
        let public = app.data.is_public(&record)?;
        let state = app.repo_state(record)?;
        let revision = super::visible_revision(&state, query.rev.as_deref())?;
        let short = &revision.sha1.to_hex()[..7];
        let base_name = format!("{name}-{short}");
        let prefix = query.prefix.unwrap_or_else(|| format!("{base_name}/"));
        let freshness = Freshness {
            etag: format!(
                "archive-{}-{}-{}",
                revision.sha1,
                format.extension(),
                &blake3::hash(prefix.as_bytes()).to_hex()[..16]
            ),
            immutable: revision.by_id,
            public,
        };
        if let Some(answer) = freshness.not_modified(&headers) {
            return Ok(Err(answer));
        }
        let info = browse::commit_info(&state.repo, revision.commit)?;
        let plan = browse::plan_archive(&state.repo, &info, format, &prefix)?;
        Ok(Ok((
            state,
            plan,
            freshness,
            format!("{base_name}.{}", format.extension()),
        )))
    })
    .await?;
    let (state, plan, freshness, file_name) = match prepared {
        Ok(prepared) => prepared,
        Err(not_modified) => return Ok(not_modified),
    };
    let body = stream::streamed(move |writer| {
        // Held while the archive is written: slow downloads count against the fetch bound.
        let _slot = slot;
        let writer = writer.counted(metrics);
        let mut out = std::io::BufWriter::with_capacity(64 << 10, writer.clone());
        plan.write(&state.repo, &mut out).inspect_err(|e| {
            tracing::warn!("archive of {}: {e}", state.repo.name());
            writer.abort(std::io::Error::other(e.to_string()));
        })
    })
    .await
    .map_err(|failure| match failure {
        Some(e) => ApiError::internal(e),
        None => ApiError::internal("the archive writer panicked"),
    })?;
    let mut response = body.into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(disposition) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\""))
    {
        response_headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    freshness.apply(&mut response);
    Ok(response)
}
