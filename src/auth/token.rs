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

use biscuit_auth::{Biscuit, BiscuitBuilder, KeyPair, PublicKey, UnverifiedBiscuit};

pub use super::blocks::{Grant, Narrowing, rights_of};
use super::blocks::{authority_block, check_globs, check_identity, narrowing_block};
pub use super::error::{MAX_BLOCKS, MAX_TOKEN_CHARS, TokenError};
pub use super::rights::{Op, Scope};

/// The key id minted tokens carry, for a later rotation of the root key.
pub const ROOT_KEY_ID: u32 = 1;

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
    use std::time::{Duration, SystemTime};

    use biscuit_auth::BlockBuilder;

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
