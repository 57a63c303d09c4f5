//! Identities and capability tokens.
//!
//! - `rights.rs`: operations, scopes, a request and why it is denied (the leaf);
//! - `blocks.rs`: the Datalog of the blocks the forge writes (a grant, a narrowing);
//! - `error.rs`: the error of every token operation, and the size and block caps;
//! - `token.rs`: minting from a typed grant, offline narrowing, verification with size and
//!   block caps, inspection;
//! - `policy.rs`: the authorization of one request (the forge's Datalog policy);
//! - `compiled.rs`: the same decision without the Datalog engine, for canonical tokens;
//! - `glob.rs`: the ref globs tokens use;
//! - `identity.rs`: identity names. Identities, revocations and the root key are stored in
//!   the data directory (`store/identities.rs`).

pub mod blocks;
pub mod compiled;
pub mod error;
pub mod policy;
pub mod rights;
pub mod token;

use crate::store::{DataDir, StoreError};

/// The server's root key pair, created in the data directory on first use.
pub fn root_key(data: &DataDir) -> Result<biscuit_auth::KeyPair, StoreError> {
    let bytes = data.root_key_bytes()?;
    let private = biscuit_auth::PrivateKey::from_bytes(&bytes, biscuit_auth::Algorithm::Ed25519)
        .map_err(|e| StoreError::Corrupt(format!("root key: {e}")))?;
    Ok(biscuit_auth::KeyPair::from(&private))
}
