//! What can go wrong in a push, typed: the pack as a whole (git shows `unpack REASON`) and
//! each ref (`ng REF REASON`). Each has a stable code, as the CLI and REST report errors.

use std::io;

use crate::gate::Refusal;
use crate::gitx::{IndexError, SourceError};
use crate::import::ImportError;
use crate::store::StoreError;

/// Why the objects of a push were not accepted; nothing of it is published.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("pushing from a shallow clone is not supported")]
    Shallow,
    #[error("a delete-only push must not send a pack")]
    UnexpectedPack,
    #[error("the pack is missing")]
    NoPack,
    #[error("reading the pack: {0}")]
    Read(#[source] io::Error),
    #[error("cannot create a quarantine: {0}")]
    Quarantine(#[source] StoreError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Ingest(#[from] ImportError),
    #[error(transparent)]
    Pack(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PushError {
    pub fn code(&self) -> &'static str {
        match self {
            PushError::Shallow => "shallow_push",
            PushError::UnexpectedPack | PushError::NoPack => "bad_request",
            PushError::Read(_) => "read_failed",
            PushError::Index(IndexError::TooLarge { .. }) => "too_large",
            PushError::Index(_) | PushError::Pack(_) => "bad_pack",
            PushError::Ingest(e) => e.code(),
            PushError::Quarantine(e) | PushError::Store(e) => e.code(),
        }
    }
}

/// Why one ref of a push did not move.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RefError {
    /// The gate refused it.
    #[error(transparent)]
    Refused(Refusal),
    /// The objects were not accepted (the reason is on the `unpack` line).
    #[error("unpacker error")]
    Unpack,
    /// Another push moved the ref between the gate's decision and the commit (the push
    /// lock makes this rare: another process on the same data directory).
    #[error("fetch first: {0} was updated by another push meanwhile")]
    Concurrent(String),
    #[error("internal error: {0}")]
    Store(String),
    /// An attestation the push carried was refused (nothing of the push is kept).
    #[error("attestation {number} refused: {reason}")]
    Attestation { number: usize, reason: String },
}

impl RefError {
    pub fn code(&self) -> &'static str {
        match self {
            RefError::Refused(refusal) => refusal.code(),
            RefError::Unpack => "unpack_failed",
            RefError::Concurrent(_) => "ref_changed",
            RefError::Store(_) => "internal",
            RefError::Attestation { .. } => "attestation_refused",
        }
    }
}
