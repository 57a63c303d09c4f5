//! Capability tokens: biscuit tokens signed by the server's root key.
//!
//! The authority block, minted only from a typed `Grant`, names the identity and its rights:
//!
//! ```text
//! identity("alice");
//! right("alice/app", "write");      // scopes: "owner/name", "owner/*", or "*"
//! ref_glob("refs/heads/agent/**");  // or no_ref_limit(true)
//! check if time($t), $t <= 2026-11-25T00:00:00Z;
//! ```
//!
//! A holder narrows a token offline by appending a block of checks, made from a typed
//! `Narrowing`: repositories, operations, ref globs, expiry. Blocks can only add checks, so
//! an appended block never widens what the authority block grants. Every string enters the
//! Datalog as a parameter, never as source text.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use biscuit_auth::builder::Term;
use biscuit_auth::{Biscuit, BiscuitBuilder, BlockBuilder, KeyPair, PublicKey, UnverifiedBiscuit};

use crate::store::RepoName;

/// Largest token accepted, in base64 characters: a hostile token is refused before any
/// decoding (a legitimate 4-block token is about 1,200).
pub const MAX_TOKEN_CHARS: usize = 4096;
/// Most blocks accepted (the authority block and seven narrowings).
pub const MAX_BLOCKS: usize = 8;
/// The key id minted tokens carry, for a later rotation of the root key.
pub const ROOT_KEY_ID: u32 = 1;

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

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token is longer than {MAX_TOKEN_CHARS} characters")]
    TooLarge,
    #[error("token has more than {MAX_BLOCKS} blocks")]
    TooManyBlocks,
    #[error("token is malformed: {0}")]
    Malformed(String),
    #[error("token signature is invalid (tampered, or signed by another server)")]
    BadSignature,
    #[error(
        "token has a block this forge does not accept (narrow tokens with `forge token attenuate`)"
    )]
    NotCanonical,
    #[error("{0}")]
    Invalid(String),
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

fn check_identity(identity: &str) -> Result<(), TokenError> {
    crate::auth::identity::check_name(identity).map_err(TokenError::Invalid)
}

fn check_globs(globs: &[String]) -> Result<(), TokenError> {
    for glob in globs {
        crate::auth::glob::check(glob).map_err(TokenError::Invalid)?;
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

/// Signs a new token for `grant` with the root key.
pub fn mint(grant: &Grant, root: &KeyPair) -> Result<String, TokenError> {
    check_identity(&grant.identity)?;
    check_globs(&grant.ref_globs)?;
    if grant.scopes.is_empty() || grant.ops.is_empty() {
        return Err(TokenError::Invalid(
            "a token needs at least one repository scope and one operation".into(),
        ));
    }
    // admin may update any ref (and mint tokens that can): ref limits on it would be
    // silently ignored, so the combination is refused instead.
    if grant.ops.contains(&Op::Admin) && !grant.ref_globs.is_empty() {
        return Err(TokenError::Invalid(
            "ref limits (--refs) cannot be combined with admin, which may update every ref; \
             issue read,write with --refs instead"
                .into(),
        ));
    }
    if grant.incarnation > i64::MAX as u64 {
        return Err(TokenError::Invalid(
            "an identity incarnation out of range".into(),
        ));
    }
    let block = authority_block(
        &grant.identity,
        grant.incarnation,
        &grant.parents,
        &rights_of(grant),
        &grant.ref_globs,
        grant.expires,
    )?;
    let token = BiscuitBuilder::new()
        .merge(block)
        .root_key_id(ROOT_KEY_ID)
        .build(root)
        .map_err(|e| TokenError::Invalid(format!("cannot sign the token: {e}")))?;
    token
        .to_base64()
        .map_err(|e| TokenError::Invalid(format!("cannot encode the token: {e}")))
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

/// Appends a narrowing block to `token`, offline: no key and no server needed.
pub fn attenuate(token: &str, narrowing: &Narrowing) -> Result<String, TokenError> {
    if narrowing.is_empty() {
        return Err(TokenError::Invalid(
            "nothing to narrow: give --repo, --ops, --refs or --ttl".into(),
        ));
    }
    let unverified = parse_unverified(token)?;
    if unverified.block_count() >= MAX_BLOCKS {
        return Err(TokenError::TooManyBlocks);
    }
    unverified
        .append(narrowing_block(narrowing)?)
        .and_then(|t| t.to_base64())
        .map_err(|e| TokenError::Invalid(format!("cannot append the block: {e}")))
}

/// Decodes a token without checking its signatures (for narrowing and inspection),
/// refusing oversized ones first.
pub fn parse_unverified(token: &str) -> Result<UnverifiedBiscuit, TokenError> {
    let token = token.trim();
    if token.len() > MAX_TOKEN_CHARS {
        return Err(TokenError::TooLarge);
    }
    let unverified =
        UnverifiedBiscuit::from_base64(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
    if unverified.block_count() > MAX_BLOCKS {
        return Err(TokenError::TooManyBlocks);
    }
    Ok(unverified)
}

/// A token whose signatures checked out against the root key, and whose blocks are all in
/// the forms this forge writes.
#[derive(Clone)]
pub struct VerifiedToken {
    pub biscuit: Biscuit,
    /// The identity named by the authority block.
    pub identity: String,
    /// The incarnation of the identity it was minted for (0: none recorded).
    pub incarnation: u64,
    /// Every id whose revocation stops this token: one 64-byte id per block (revoking one
    /// revokes that block and what was appended to it), and those of the token it was
    /// minted with.
    pub revocation_ids: Vec<Vec<u8>>,
    /// What the blocks mean, evaluated on every request (`compiled.rs`).
    pub compiled: super::compiled::Compiled,
}

/// Checks size, block count, every signature, and that every block is canonical. No
/// Datalog runs: a hostile block could make the engine spin.
pub fn verify(token: &str, root: &PublicKey) -> Result<VerifiedToken, TokenError> {
    let unverified = parse_unverified(token)?;
    let root = *root;
    let biscuit = unverified
        .verify(move |id: Option<u32>| match id {
            Some(ROOT_KEY_ID) | None => Ok(root),
            Some(_) => Err(biscuit_auth::error::Format::UnknownPublicKey),
        })
        .map_err(|_| TokenError::BadSignature)?;
    let compiled = super::compiled::compile(&biscuit).ok_or(TokenError::NotCanonical)?;
    let mut revocation_ids = compiled.parents().to_vec();
    revocation_ids.extend(biscuit.revocation_identifiers());
    Ok(VerifiedToken {
        identity: compiled.identity().to_owned(),
        incarnation: compiled.incarnation(),
        revocation_ids,
        compiled,
        biscuit,
    })
}

/// What `forge token inspect` shows: each block's Datalog and revocation id.
pub struct Inspection {
    pub blocks: Vec<InspectedBlock>,
}

pub struct InspectedBlock {
    pub source: String,
    pub revocation_id: String,
}

pub fn inspect(token: &str) -> Result<Inspection, TokenError> {
    let unverified = parse_unverified(token)?;
    let ids = unverified.revocation_identifiers();
    let mut blocks = Vec::with_capacity(unverified.block_count());
    for (i, id) in ids.iter().enumerate() {
        let source = unverified
            .print_block_source(i)
            .map_err(|e| TokenError::Malformed(e.to_string()))?;
        blocks.push(InspectedBlock {
            source,
            revocation_id: hex(id),
        });
    }
    Ok(Inspection { blocks })
}

pub use crate::hex::encode as hex;

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            identity: "agent-42".into(),
            scopes: vec![Scope::parse("acme/widgets").unwrap()],
            ops: vec![Op::Read, Op::Write],
            ref_globs: vec!["refs/heads/agent/**".into()],
            expires: Some(SystemTime::now() + Duration::from_secs(3600)),
            parents: Vec::new(),
            incarnation: 0,
        }
    }

    #[test]
    fn mint_verify_attenuate_inspect() {
        let root = KeyPair::new();
        let token = mint(&grant(), &root).unwrap();
        let verified = verify(&token, &root.public()).unwrap();
        assert_eq!(verified.identity, "agent-42");
        assert_eq!(verified.revocation_ids.len(), 1);
        let narrowed = attenuate(
            &token,
            &Narrowing {
                ops: vec![Op::Read],
                ..Narrowing::default()
            },
        )
        .unwrap();
        let verified = verify(&narrowed, &root.public()).unwrap();
        assert_eq!(verified.revocation_ids.len(), 2);
        let shown = inspect(&narrowed).unwrap();
        assert_eq!(shown.blocks.len(), 2);
        assert!(
            shown.blocks[0]
                .source
                .contains("right(\"acme/widgets\", \"write\")")
        );
        assert!(shown.blocks[1].source.contains("operation(\"read\")"));
    }

    #[test]
    fn hostile_and_foreign_tokens_are_refused() {
        let root = KeyPair::new();
        let token = mint(&grant(), &root).unwrap();
        let other = KeyPair::new();
        assert!(matches!(
            verify(&token, &other.public()),
            Err(TokenError::BadSignature)
        ));
        // Flip one character in the middle: either undecodable or a bad signature.
        let mut tampered: Vec<char> = token.chars().collect();
        let i = tampered.len() / 2;
        tampered[i] = if tampered[i] == 'A' { 'B' } else { 'A' };
        let tampered: String = tampered.into_iter().collect();
        assert!(verify(&tampered, &root.public()).is_err());
        assert!(matches!(
            verify(&"A".repeat(MAX_TOKEN_CHARS + 1), &root.public()),
            Err(TokenError::TooLarge)
        ));
        let mut long = token.clone();
        for _ in 0..MAX_BLOCKS - 1 {
            long = attenuate(
                &long,
                &Narrowing {
                    ops: vec![Op::Read],
                    ..Narrowing::default()
                },
            )
            .unwrap();
        }
        assert!(matches!(
            attenuate(
                &long,
                &Narrowing {
                    ops: vec![Op::Read],
                    ..Narrowing::default()
                }
            ),
            Err(TokenError::TooManyBlocks) | Err(TokenError::TooLarge)
        ));
    }

    #[test]
    fn blocks_the_forge_does_not_write_are_refused_without_running_them() {
        let root = KeyPair::new();
        let token = mint(&grant(), &root).unwrap();
        let unverified = parse_unverified(&token).unwrap();
        // Facts and a rule whose evaluation would take minutes.
        let mut code: String = (0..40).map(|i| format!("f({i});\n")).collect();
        code.push_str("g($a) <- f($a), f($b), f($c), f($d), f($e);\n");
        let hostile = unverified
            .append(BlockBuilder::new().code(&code).unwrap())
            .unwrap()
            .to_base64()
            .unwrap();
        assert!(hostile.len() <= MAX_TOKEN_CHARS);
        let started = std::time::Instant::now();
        assert!(matches!(
            verify(&hostile, &root.public()),
            Err(TokenError::NotCanonical)
        ));
        assert!(started.elapsed() < Duration::from_millis(100));
    }

    #[test]
    fn strings_cannot_inject_datalog() {
        let root = KeyPair::new();
        let mut evil = grant();
        evil.ref_globs = vec!["refs/heads/x\"); right(\"*\", \"admin".into()];
        assert!(mint(&evil, &root).is_err(), "the glob is refused outright");
        let scope = Scope::parse("acme/widgets\"); right(\"*\", \"admin");
        assert!(scope.is_err());
    }
}
