//! `GET /api/v1/user`: who the token speaks for and what it grants.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use serde_json::json;

use super::{ApiError, ApiResult, blocking, required};
use crate::auth::token;
use crate::server::AppState;
use crate::server::auth::Caller;

pub(super) async fn get(State(app): State<Arc<AppState>>, caller: Caller) -> ApiResult {
    blocking(move || {
        let token = required(&caller)?;
        let identity = app.data.find_identity(&token.identity)?;
        let compiled = &token.compiled;
        let shown = token::inspect(&token.biscuit.to_base64().map_err(ApiError::internal)?)
            .map_err(ApiError::internal)?;
        Ok(Json(json!({
            "identity": {
                "name": token.identity,
                "kind": identity.as_ref().map(|i| i.kind.as_str()),
                "owner": identity.as_ref().and_then(|i| i.owner.clone()),
            },
            "rights": compiled.rights().iter().map(|(scope, op)| json!({"scope": scope, "op": op.as_str()})).collect::<Vec<_>>(),
            "ref_globs": compiled.ref_globs(),
            "expires": compiled.expires().map(|at| at.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())),
            "blocks": shown.blocks.iter().map(|b| json!({"source": b.source, "revocation_id": b.revocation_id})).collect::<Vec<_>>(),
        }))
        .into_response())
    })
    .await
}
