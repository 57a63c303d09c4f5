//! What a token grants and what a request asks, as plain types: operations, repository
//! scopes, a request, and why one is denied. The leaf every other part of `auth` builds on.

use super::error::TokenError;
use crate::store::RepoName;

/// What a token may do to a repository. `Admin` implies the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    Read,
    Write,
    Admin,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::Write => "write",
            Op::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Result<Op, TokenError> {
        match text {
            "read" => Ok(Op::Read),
            "write" => Ok(Op::Write),
            "admin" => Ok(Op::Admin),
            other => Err(TokenError::Invalid(format!(
                "unknown operation {other:?} (read, write or admin)"
            ))),
        }
    }

    /// A comma-separated list, as the CLI takes it.
    pub fn parse_list(text: &str) -> Result<Vec<Op>, TokenError> {
        let mut ops: Vec<Op> = text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Op::parse)
            .collect::<Result<_, _>>()?;
        ops.sort();
        ops.dedup();
        if ops.is_empty() {
            return Err(TokenError::Invalid("no operation given".into()));
        }
        Ok(ops)
    }
}

/// Which repositories a right covers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Repo(RepoName),
    /// Every repository of an owner: `owner/*`.
    Owner(String),
    /// Every repository.
    All,
}

impl Scope {
    pub fn parse(text: &str) -> Result<Scope, TokenError> {
        if text == "*" {
            return Ok(Scope::All);
        }
        if let Some(owner) = text.strip_suffix("/*") {
            // An owner is checked as a repository name's first half.
            RepoName::parse(&format!("{owner}/x"))
                .map_err(|e| TokenError::Invalid(format!("{text}: {e}")))?;
            return Ok(Scope::Owner(owner.to_ascii_lowercase()));
        }
        RepoName::parse(text)
            .map(Scope::Repo)
            .map_err(|e| TokenError::Invalid(format!("{text}: {e}")))
    }

    /// The name the Datalog uses: `owner/name`, `owner/*` or `*`.
    pub fn fact_name(&self) -> String {
        match self {
            Scope::Repo(name) => name.key(),
            Scope::Owner(owner) => format!("{owner}/*"),
            Scope::All => "*".to_owned(),
        }
    }

    /// The scope names a request on this scope falls under (what the authorizer asserts):
    /// a right on any of them covers the request.
    pub fn covering(&self) -> Vec<String> {
        match self {
            Scope::Repo(repo) => vec![
                repo.key(),
                format!("{}/*", repo.owner().to_ascii_lowercase()),
                "*".to_owned(),
            ],
            Scope::Owner(owner) => vec![format!("{owner}/*"), "*".to_owned()],
            Scope::All => vec!["*".to_owned()],
        }
    }
}

/// One request: an operation on a repository (or on every repository of an owner, or on
/// all), and for a ref update the ref.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub scope: &'a Scope,
    pub op: Op,
    pub ref_name: Option<&'a str>,
}

/// Why a token does not allow a request, in words for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("token expired")]
    Expired,
    #[error("not allowed by token")]
    RefNotAllowed,
    #[error("token does not allow {op} on {scope}")]
    NoRight { op: &'static str, scope: String },
    #[error("token was narrowed to exclude this request: {0}")]
    Narrowed(String),
    #[error("token cannot be evaluated: {0}")]
    Unevaluable(String),
}
