//! The Datalog of the blocks the forge writes: a grant's authority block and a narrowing's
//! block of checks. Minting and attenuating print them; `compiled` prints them again to
//! recognise a canonical block.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use biscuit_auth::BlockBuilder;
use biscuit_auth::builder::Term;

use super::error::TokenError;
use super::rights::{Op, Scope};
use crate::hex::encode as hex;

/// What the server grants an identity: the authority block of a new token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub identity: String,
    pub scopes: Vec<Scope>,
    pub ops: Vec<Op>,
    /// Refs `write` may update; empty: any.
    pub ref_globs: Vec<String>,
    pub expires: Option<SystemTime>,
    /// Revocation ids of the token this one was minted with (through the REST API):
    /// revoking that token revokes this one too.
    pub parents: Vec<Vec<u8>>,
    /// The identity's incarnation (`Identity::incarnation`): a token of an identity that
    /// was removed and added again under the same name is refused.
    pub incarnation: u64,
}

/// What a holder narrows a token to; every part is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Narrowing {
    pub scopes: Vec<Scope>,
    pub ops: Vec<Op>,
    pub ref_globs: Vec<String>,
    pub expires: Option<SystemTime>,
}

impl Narrowing {
    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty()
            && self.ops.is_empty()
            && self.ref_globs.is_empty()
            && self.expires.is_none()
    }
}

/// Datalog source with its parameters, built piece by piece.
#[derive(Default)]
struct Source {
    text: String,
    params: HashMap<String, Term>,
}

impl Source {
    /// A parameter placeholder for `term`.
    fn param(&mut self, term: Term) -> String {
        let name = format!("p{}", self.params.len());
        self.params.insert(name.clone(), term);
        format!("{{{name}}}")
    }

    fn str(&mut self, text: &str) -> String {
        self.param(Term::Str(text.to_owned()))
    }

    fn expiry_check(&mut self, expires: SystemTime) {
        let seconds = expires
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        let at = self.param(Term::Date(seconds));
        let _ = writeln!(self.text, "check if time($t), $t <= {at};");
    }

    /// `check if <alternatives joined by or>;`
    fn any_of(&mut self, alternatives: Vec<String>) {
        let _ = writeln!(self.text, "check if {};", alternatives.join(" or "));
    }
}

pub(super) fn check_identity(identity: &str) -> Result<(), TokenError> {
    crate::store::check_identity_name(identity).map_err(TokenError::Invalid)
}

pub(super) fn check_globs(globs: &[String]) -> Result<(), TokenError> {
    for glob in globs {
        crate::glob::check(glob).map_err(TokenError::Invalid)?;
    }
    Ok(())
}

/// Every (scope, operation) pair a grant gives, in the order the authority block lists them.
pub fn rights_of(grant: &Grant) -> Vec<(Scope, Op)> {
    grant
        .scopes
        .iter()
        .flat_map(|scope| grant.ops.iter().map(move |op| (scope.clone(), *op)))
        .collect()
}

/// The authority block: identity (and its incarnation), rights, ref globs (or
/// `no_ref_limit`), expiry.
pub(super) fn authority_block(
    identity: &str,
    incarnation: u64,
    parents: &[Vec<u8>],
    rights: &[(Scope, Op)],
    ref_globs: &[String],
    expires: Option<SystemTime>,
) -> Result<BlockBuilder, TokenError> {
    let mut source = Source::default();
    let identity = source.str(identity);
    let _ = writeln!(source.text, "identity({identity});");
    // Tokens minted before incarnations existed carry none and match incarnation 0.
    if incarnation != 0 {
        let _ = writeln!(source.text, "incarnation({incarnation});");
    }
    for parent in parents {
        let parent = source.str(&hex(parent));
        let _ = writeln!(source.text, "parent({parent});");
    }
    for (scope, op) in rights {
        let scope = source.str(&scope.fact_name());
        let op = source.str(op.as_str());
        let _ = writeln!(source.text, "right({scope}, {op});");
    }
    if ref_globs.is_empty() {
        source.text.push_str("no_ref_limit(true);\n");
    }
    for glob in ref_globs {
        let glob = source.str(glob);
        let _ = writeln!(source.text, "ref_glob({glob});");
    }
    if let Some(expires) = expires {
        source.expiry_check(expires);
    }
    BlockBuilder::new()
        .code_with_params(&source.text, source.params, HashMap::new())
        .map_err(|e| TokenError::Invalid(format!("cannot build the token: {e}")))
}

/// The block of checks a narrowing appends.
pub(super) fn narrowing_block(narrowing: &Narrowing) -> Result<BlockBuilder, TokenError> {
    check_globs(&narrowing.ref_globs)?;
    let mut source = Source::default();
    if !narrowing.scopes.is_empty() {
        let alternatives = narrowing
            .scopes
            .iter()
            .map(|scope| format!("scope({})", source.str(&scope.fact_name())))
            .collect();
        source.any_of(alternatives);
    }
    if !narrowing.ops.is_empty() {
        let alternatives = narrowing
            .ops
            .iter()
            .map(|op| format!("operation({})", source.str(op.as_str())))
            .collect();
        source.any_of(alternatives);
    }
    if !narrowing.ref_globs.is_empty() {
        let mut alternatives = vec!["ref_op(false)".to_owned()];
        for glob in &narrowing.ref_globs {
            let glob = source.str(glob);
            alternatives.push(format!("ref($r), $r.extern::glob({glob})"));
        }
        source.any_of(alternatives);
    }
    if let Some(expires) = narrowing.expires {
        source.expiry_check(expires);
    }
    BlockBuilder::new()
        .code_with_params(&source.text, source.params, HashMap::new())
        .map_err(|e| TokenError::Invalid(format!("cannot build the block: {e}")))
}
