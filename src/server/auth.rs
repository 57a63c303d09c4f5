//! Who is asking, and may they: credentials from the `Authorization` header, verified
//! tokens (cached by their hash), and the decision for one repository and operation, made
//! on every request (revocation and expiry stay live).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::auth::policy::{Denied, Request, authorize};
use crate::auth::token::{Op, Scope, TokenError, VerifiedToken, verify};
use crate::gate::{Refusal, RefusalCode};
use crate::store::{DataDir, IdentityKind, RepoName, Standing, StoreError};

use super::AppState;
use super::error::{ApiError, HttpError};

/// Verified tokens kept; the cache is emptied when full (holders can mint endless valid
/// variants offline, so it must stay bounded).
const VERIFIED_CACHE_ENTRIES: usize = 10_000;

pub struct Authenticator {
    root: biscuit_auth::KeyPair,
    public: biscuit_auth::PublicKey,
    verified: Mutex<HashMap<[u8; 32], Arc<VerifiedToken>>>,
}

impl Authenticator {
    pub fn new(root: biscuit_auth::KeyPair) -> Authenticator {
        Authenticator {
            public: root.public(),
            root,
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// The key new tokens are signed with.
    pub fn root_key(&self) -> &biscuit_auth::KeyPair {
        &self.root
    }

    /// Checks a token's signatures, or finds it among those already checked.
    pub fn verify(&self, token: &str) -> Result<Arc<VerifiedToken>, TokenError> {
        // Refused before it is even hashed: headers may be hundreds of kilobytes.
        if token.len() > crate::auth::token::MAX_TOKEN_CHARS {
            return Err(TokenError::TooLarge);
        }
        let key = *blake3::hash(token.as_bytes()).as_bytes();
        if let Some(hit) = self.cache().get(&key) {
            return Ok(hit.clone());
        }
        let verified = Arc::new(verify(token, &self.public)?);
        let mut cache = self.cache();
        if cache.len() >= VERIFIED_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(key, verified.clone());
        Ok(verified)
    }

    /// Forgets every verified token (after a root key change; and to measure cold checks).
    pub fn forget_verified(&self) {
        self.cache().clear();
    }

    /// Verified tokens in the cache now (for `/metrics`).
    pub fn cached(&self) -> usize {
        self.cache().len()
    }

    fn cache(&self) -> parking_lot::MutexGuard<'_, HashMap<[u8; 32], Arc<VerifiedToken>>> {
        self.verified.lock()
    }
}

/// The token a request carries: `Authorization: Basic` (any user name, the token as the
/// password; or the token as the user name with an empty password), `Bearer` or `token`.
pub fn credential(headers: &HeaderMap) -> Result<Option<String>, AuthFailure> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || AuthFailure::refused("the Authorization header is malformed");
    let value = value.to_str().map_err(|_| bad())?.trim();
    let (scheme, rest) = value.split_once(' ').ok_or_else(bad)?;
    let rest = rest.trim();
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" | "token" => Ok(Some(rest.to_owned())),
        "basic" => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .map_err(|_| bad())?;
            let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
            let (user, password) = decoded.split_once(':').unwrap_or((&decoded, ""));
            let token = if password.is_empty() || password == "x-oauth-basic" {
                user
            } else {
                password
            };
            Ok(Some(token.to_owned()))
        }
        _ => Err(bad()),
    }
}

/// What a request may do, once its token (if any) checked out: the extractor every route
/// family (git, REST, later pages) takes, so that credentials are verified on one path.
#[derive(Clone)]
pub struct Caller {
    pub token: Option<Arc<VerifiedToken>>,
    /// The token's identity's kind, as the standing check read it.
    pub kind: Option<IdentityKind>,
}

/// Why a request's credentials were refused: a reason the caller is told with 401, or a
/// failure of the store (500, details to the log). Rendered in the format of the routes
/// that refused: JSON under `/api/`, git's plain text with a Basic challenge elsewhere.
#[derive(Debug)]
pub struct AuthFailure {
    pub kind: AuthFailureKind,
    surface: Surface,
}

#[derive(Debug)]
pub enum AuthFailureKind {
    Refused(String),
    Store(StoreError),
}

/// Which routes a request is for, which decides how a refusal is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Surface {
    Git,
    Api,
}

impl Surface {
    fn of(path: &str) -> Surface {
        if super::is_api_path(path) {
            Surface::Api
        } else {
            Surface::Git
        }
    }
}

impl AuthFailure {
    fn refused(reason: impl Into<String>) -> AuthFailure {
        AuthFailure {
            kind: AuthFailureKind::Refused(reason.into()),
            surface: Surface::Git,
        }
    }
}

impl From<StoreError> for AuthFailure {
    fn from(error: StoreError) -> AuthFailure {
        AuthFailure {
            kind: AuthFailureKind::Store(error),
            surface: Surface::Git,
        }
    }
}

impl From<AuthFailure> for HttpError {
    fn from(failure: AuthFailure) -> HttpError {
        match failure.kind {
            AuthFailureKind::Refused(reason) => HttpError::unauthorized(reason),
            AuthFailureKind::Store(error) => HttpError::internal(error),
        }
    }
}

impl From<AuthFailure> for ApiError {
    fn from(failure: AuthFailure) -> ApiError {
        match failure.kind {
            AuthFailureKind::Refused(reason) => ApiError::unauthorized(reason),
            AuthFailureKind::Store(error) => ApiError::internal(error),
        }
    }
}

impl IntoResponse for AuthFailure {
    fn into_response(self) -> Response {
        match self.surface {
            Surface::Api => ApiError::from(self).into_response(),
            Surface::Git => HttpError::from(self).into_response(),
        }
    }
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = AuthFailure;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<AppState>,
    ) -> Result<Caller, AuthFailure> {
        // Inline, not on a blocking thread: a cached token and one registry read cost a
        // few microseconds, less than a hop to the blocking pool.
        authenticate(&app.auth, &app.data, &parts.headers).map_err(|mut failure| {
            failure.surface = Surface::of(parts.uri.path());
            failure
        })
    }
}

impl Caller {
    /// Who asks, as the gate records it.
    pub fn gate_caller(&self) -> crate::gate::Caller {
        match &self.token {
            Some(token) => crate::gate::Caller::Identity {
                name: token.identity.clone(),
                kind: self.kind,
            },
            None => crate::gate::Caller::Anonymous,
        }
    }

    /// Whether the caller's token holds `admin` on every repository (`*`): a site admin.
    pub fn site_admin(&self) -> bool {
        let Some(token) = &self.token else {
            return false;
        };
        let request = Request {
            scope: &Scope::All,
            op: Op::Admin,
            ref_name: None,
        };
        authorize(token, &request).is_ok()
    }

    /// Whether the caller's token holds `admin` on `repo` now.
    pub fn administers(&self, repo: &RepoName) -> bool {
        let Some(token) = &self.token else {
            return false;
        };
        let scope = Scope::Repo(repo.clone());
        let request = Request {
            scope: &scope,
            op: Op::Admin,
            ref_name: None,
        };
        authorize(token, &request).is_ok()
    }

    /// Whether the caller may update `ref_name` of `repo` (every ref of a push is asked).
    pub fn may_update(&self, repo: &RepoName, ref_name: &str) -> Result<(), Refusal> {
        let refused = |reason: String| Refusal::new(RefusalCode::NotPermitted, reason);
        let Some(token) = &self.token else {
            return Err(refused("not allowed without a token".into()));
        };
        let scope = Scope::Repo(repo.clone());
        let request = Request {
            scope: &scope,
            op: Op::Write,
            ref_name: Some(ref_name),
        };
        authorize(token, &request).map_err(|denied| {
            refused(match denied {
                Denied::RefNotAllowed => "not allowed by token".to_owned(),
                other => other.to_string(),
            })
        })
    }
}

/// Reads and verifies the request's token, refusing malformed, bad, revoked or expired
/// ones (and tokens whose identity is gone or disabled).
pub fn authenticate(
    auth: &Authenticator,
    data: &DataDir,
    headers: &HeaderMap,
) -> Result<Caller, AuthFailure> {
    let Some(token) = credential(headers)? else {
        return Ok(Caller {
            token: None,
            kind: None,
        });
    };
    let verified = auth
        .verify(&token)
        .map_err(|e| AuthFailure::refused(e.to_string()))?;
    let kind = match data.token_standing(
        &verified.identity,
        verified.incarnation,
        &verified.revocation_ids,
    )? {
        Standing::Good(kind) => kind,
        Standing::Revoked => return Err(AuthFailure::refused("token revoked")),
        Standing::UnknownIdentity(name) => {
            return Err(AuthFailure::refused(format!(
                "the identity {name} does not exist"
            )));
        }
        Standing::Disabled(name) => {
            return Err(AuthFailure::refused(format!(
                "the identity {name} is disabled"
            )));
        }
        Standing::EarlierIncarnation(name) => {
            return Err(AuthFailure::refused(format!(
                "the token was issued to an earlier identity named {name}, since removed"
            )));
        }
    };
    // Before any repository is looked up: an expired token learns nothing.
    if verified.compiled.expired(std::time::SystemTime::now()) {
        return Err(AuthFailure::refused("token expired"));
    }
    Ok(Caller {
        token: Some(verified),
        kind: Some(kind),
    })
}

/// Decides `op` on an existing repository. `public` repositories can be read by anyone.
/// A caller who may not even read the repository is told it does not exist.
pub fn decide(caller: &Caller, repo: &RepoName, public: bool, op: Op) -> Result<(), HttpError> {
    let Some(token) = &caller.token else {
        if public && op == Op::Read {
            return Ok(());
        }
        return Err(HttpError::unauthorized("authentication required"));
    };
    let scope = Scope::Repo(repo.clone());
    let ask = |op| {
        authorize(
            token,
            &Request {
                scope: &scope,
                op,
                ref_name: None,
            },
        )
    };
    match ask(op) {
        Ok(()) => Ok(()),
        Err(Denied::Expired) => Err(HttpError::unauthorized("token expired")),
        Err(denied) => {
            if public && op == Op::Read {
                return Ok(());
            }
            let may_read = public || (op != Op::Read && ask(Op::Read).is_ok());
            if may_read {
                Err(HttpError::new(StatusCode::FORBIDDEN, denied.to_string()))
            } else {
                Err(HttpError::not_found())
            }
        }
    }
}
