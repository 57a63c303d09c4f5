//! What the server accepts as evidence: an envelope verified against the active keys of
//! known identities, uploaded by its signer or someone who may act for it, about commits
//! this repository has (or that the same push brings), with a statement that parses. An
//! accepted envelope becomes an `AttestationRecord`, stored exactly as received.

use ed25519_dalek::VerifyingKey;

use crate::attest::{self, AttestError, Envelope, KeyId, Statement};
use crate::object::{Kind, Sha1};
use crate::store::backend::{AttestationRecord, AttestationSigner};
use crate::store::{Identity, IdentityKind, Repo, StoreError};

/// Why an attestation was not kept, naming the rule that failed.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error(transparent)]
    Envelope(#[from] AttestError),
    #[error("no signature verifies against an active key of a known identity")]
    UnknownKey,
    #[error("the signature by {identity}'s key {key} does not verify over this payload")]
    BadSignature { identity: String, key: String },
    #[error(
        "signed by {identity} with a key that no longer counts (revoked, or the identity is disabled): {key}"
    )]
    RevokedKey { identity: String, key: String },
    #[error("{uploader} may not upload attestations signed by {signers}")]
    NotSigner { uploader: String, signers: String },
    #[error("the statement names no commit (a gitCommit subject)")]
    NoCommit,
    #[error("commit {0} is not in this repository")]
    UnknownCommit(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EvidenceError {
    pub fn code(&self) -> &'static str {
        match self {
            EvidenceError::Envelope(e) => e.code(),
            EvidenceError::UnknownKey => "unknown_key",
            EvidenceError::BadSignature { .. } => "bad_signature",
            EvidenceError::RevokedKey { .. } => "revoked_key",
            EvidenceError::NotSigner { .. } => "not_signer",
            EvidenceError::NoCommit | EvidenceError::UnknownCommit(_) => "unknown_commit",
            EvidenceError::Store(e) => e.code(),
        }
    }
}

/// Who uploads: the identity a token names, and whether it administers the repository
/// (an admin may upload for anyone).
pub struct Uploader<'a> {
    pub identity: &'a str,
    pub admin: bool,
}

/// The keys of every identity: active ones to verify with, revoked ones to say why.
struct Keyring {
    active: Vec<(VerifyingKey, String)>,
    revoked: Vec<(VerifyingKey, String)>,
}

impl Keyring {
    fn of(identities: &[Identity]) -> Keyring {
        let mut ring = Keyring {
            active: Vec::new(),
            revoked: Vec::new(),
        };
        for identity in identities {
            for key in &identity.keys {
                let Ok(parsed) = attest::keys::parse_public_key(&key.key) else {
                    continue;
                };
                let list = if key.is_active() && !identity.disabled {
                    &mut ring.active
                } else {
                    &mut ring.revoked
                };
                list.push((parsed, identity.name.clone()));
            }
        }
        ring
    }

    fn owner(list: &[(VerifyingKey, String)], id: &KeyId) -> Option<String> {
        list.iter()
            .find(|(key, _)| KeyId::of(key) == *id)
            .map(|(_, name)| name.clone())
    }
}

/// Whether `uploader` may upload what `signer` signed: it is the signer, the signer's
/// owner, or an administrator of the repository.
fn may_act_for(uploader: &Uploader<'_>, signer: &Identity) -> bool {
    uploader.admin
        || signer.name.eq_ignore_ascii_case(uploader.identity)
        || (signer.kind == IdentityKind::Agent
            && signer
                .owner
                .as_deref()
                .is_some_and(|owner| owner.eq_ignore_ascii_case(uploader.identity)))
}

/// Checks an uploaded envelope against the registry's `identities` and returns the record
/// to store. `brought(sha1)` answers whether a commit arrives with the same push (none for a
/// REST upload).
pub fn accept(
    identities: &[Identity],
    repo: &Repo,
    json: &[u8],
    uploader: &Uploader<'_>,
    brought: &dyn Fn(&Sha1) -> bool,
) -> Result<AttestationRecord, EvidenceError> {
    let envelope = Envelope::parse(json)?;
    let ring = Keyring::of(identities);
    let keys: Vec<VerifyingKey> = ring.active.iter().map(|(key, _)| *key).collect();
    let (verified, statement) = match attest::open(&envelope, &keys) {
        Ok(opened) => opened,
        Err(AttestError::BadSignature) => {
            let revoked: Vec<VerifyingKey> = ring.revoked.iter().map(|(key, _)| *key).collect();
            return Err(match envelope.verify(&revoked) {
                Ok(verified) => {
                    let key = verified.signers[0];
                    EvidenceError::RevokedKey {
                        identity: Keyring::owner(&ring.revoked, &key).unwrap_or_default(),
                        key: key.to_string(),
                    }
                }
                // A keyid hint naming a known key: that key's signature is wrong.
                Err(_) => match envelope.signatures.iter().find_map(|signature| {
                    ring.active
                        .iter()
                        .find(|(key, _)| KeyId::of(key).to_string() == signature.keyid)
                }) {
                    Some((key, identity)) => EvidenceError::BadSignature {
                        identity: identity.clone(),
                        key: KeyId::of(key).to_string(),
                    },
                    None => EvidenceError::UnknownKey,
                },
            });
        }
        Err(e) => return Err(e.into()),
    };
    let mut signers: Vec<AttestationSigner> = Vec::new();
    for key in &verified.signers {
        let Some(name) = Keyring::owner(&ring.active, key) else {
            continue;
        };
        if !signers.iter().any(|s| s.identity == name) {
            signers.push(AttestationSigner {
                identity: name,
                key: key.to_string(),
            });
        }
    }
    let acts_for_one = signers.iter().any(|signer| {
        identities
            .iter()
            .find(|i| i.name == signer.identity)
            .is_some_and(|identity| may_act_for(uploader, identity))
    });
    if !acts_for_one {
        return Err(EvidenceError::NotSigner {
            uploader: uploader.identity.to_owned(),
            signers: signers
                .iter()
                .map(|s| s.identity.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let commits = statement.commits();
    if commits.is_empty() {
        return Err(EvidenceError::NoCommit);
    }
    for commit in &commits {
        let stored = repo
            .locate_sha1(commit)
            .is_some_and(|location| location.kind() == Some(Kind::Commit));
        if !stored && !brought(commit) {
            return Err(EvidenceError::UnknownCommit(commit.to_hex()));
        }
    }
    let json = std::str::from_utf8(json)
        .map_err(|_| AttestError::Malformed("the envelope is not UTF-8".into()))?;
    Ok(AttestationRecord {
        id: blake3::hash(json.as_bytes()).to_hex().to_string(),
        commits: commits.iter().map(Sha1::to_hex).collect(),
        predicate_type: statement.predicate_type.clone(),
        signers,
        uploaded_by: uploader.identity.to_owned(),
        stored_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        summary: summary(&statement),
        envelope: json.to_owned(),
    })
}

/// A predicate's one-line gist: a test result's `result`, a review's `verdict`.
fn summary(statement: &Statement) -> Option<String> {
    if let Some(result) = statement.test_result() {
        return Some(result.chars().take(64).collect());
    }
    let verdict = statement.predicate.get("verdict")?.as_str()?;
    Some(verdict.chars().take(64).collect())
}

/// Whether a stored attestation's signer still counts: the key is active on an enabled
/// identity (a key revoked later stops counting; the attestation stays visible).
pub fn signer_counts(identities: &[Identity], signer: &AttestationSigner) -> bool {
    identities.iter().any(|identity| {
        identity.name == signer.identity
            && !identity.disabled
            && identity
                .keys
                .iter()
                .any(|key| key.key == signer.key && key.is_active())
    })
}

/// A stored attestation as the CLI's `--json` and REST show it (without its envelope):
/// who signed it, and whether each signer still counts.
pub fn describe(record: &AttestationRecord, identities: &[Identity]) -> AttestationView {
    AttestationView {
        id: record.id.clone(),
        commits: record.commits.clone(),
        predicate_type: record.predicate_type.clone(),
        summary: record.summary.clone(),
        signers: record
            .signers
            .iter()
            .map(|signer| SignerView {
                identity: signer.identity.clone(),
                key: signer.key.clone(),
                counts: signer_counts(identities, signer),
            })
            .collect(),
        uploaded_by: record.uploaded_by.clone(),
        stored_at: record.stored_at,
    }
}

/// A stored attestation as REST and `forge attest list` show it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AttestationView {
    /// The BLAKE3 of the stored envelope, hex.
    pub id: String,
    /// The commits it is about (SHA-1 hex).
    pub commits: Vec<String>,
    pub predicate_type: String,
    /// A test result's `result`, a review's `verdict`.
    pub summary: Option<String>,
    pub signers: Vec<SignerView>,
    pub uploaded_by: String,
    /// Seconds since the Unix epoch.
    pub stored_at: u64,
}

/// One signer of an attestation.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SignerView {
    pub identity: String,
    /// The Ed25519 public key, hex.
    pub key: String,
    /// Whether the signature counts for policies now (false once the key is revoked or
    /// the identity disabled).
    pub counts: bool,
}
