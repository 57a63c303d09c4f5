//! The error of every token operation: parsing rights, minting, narrowing, verifying.

/// Largest token accepted, in base64 characters: a hostile token is refused before any
/// decoding (a legitimate 4-block token is about 1,200).
pub const MAX_TOKEN_CHARS: usize = 4096;
/// Most blocks accepted (the authority block and seven narrowings).
pub const MAX_BLOCKS: usize = 8;
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
