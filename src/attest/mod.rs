//! Signed attestations: DSSE envelopes (`dsse.rs`) holding in-toto statements about git
//! commits (`statement.rs`), signed with Ed25519 keys (`keys.rs`). Everything here works
//! offline, so that `forge attest sign|verify` and `forge keygen` need no data directory;
//! which keys count, and for whom, is the server's business.

pub mod dsse;
pub mod keys;
pub mod statement;

pub use dsse::{Envelope, Verified};
pub use keys::KeyId;
pub use statement::Statement;

/// Why an attestation, or a key, was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestError {
    #[error("the {what} is over the limit of {limit}")]
    TooLarge { what: &'static str, limit: usize },
    #[error("malformed {0}")]
    Malformed(String),
    #[error("the envelope carries no signature")]
    Unsigned,
    #[error("no signature verifies against the given keys")]
    BadSignature,
    #[error("the payload type is {0:?}, not application/vnd.in-toto+json")]
    WrongPayloadType(String),
    #[error("the statement's _type is {0:?}, not https://in-toto.io/Statement/v1")]
    WrongStatementType(String),
    #[error("invalid key: {0}")]
    BadKey(String),
}

impl AttestError {
    pub fn code(&self) -> &'static str {
        match self {
            AttestError::TooLarge { .. } => "too_large",
            AttestError::Malformed(_) => "malformed_attestation",
            AttestError::Unsigned | AttestError::BadSignature => "bad_signature",
            AttestError::WrongPayloadType(_) | AttestError::WrongStatementType(_) => "wrong_type",
            AttestError::BadKey(_) => "bad_key",
        }
    }
}

/// Verifies an envelope against `keys` and parses the statement it signs.
pub fn open(
    envelope: &Envelope,
    keys: &[ed25519_dalek::VerifyingKey],
) -> Result<(Verified, Statement), AttestError> {
    let in_toto = envelope.payload_type == dsse::IN_TOTO_PAYLOAD_TYPE
        || (envelope
            .payload_type
            .starts_with("application/vnd.in-toto.")
            && envelope.payload_type.ends_with("+json"));
    if !in_toto {
        return Err(AttestError::WrongPayloadType(
            envelope.payload_type.chars().take(200).collect(),
        ));
    }
    let verified = envelope.verify(keys)?;
    let statement = Statement::parse(&verified.body)?;
    Ok((verified, statement))
}
