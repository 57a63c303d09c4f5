//! Identities, revoked token blocks and the root signing key, kept in the data directory.

use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{DataDir, StoreError, now_secs};

/// Identity names follow the rules of a repository owner (`check_name_part`): 1 to 100
/// letters, digits, `-`, `_` and `.`, not starting with `.` or `-`, without `..`, not
/// ending in `.` or `.lock`, and no Windows device name. The words that name sets of
/// identities in ref policies (`human`, `agent`, `anyone`, …) are no identity's name.
pub fn check_identity_name(name: &str) -> Result<(), String> {
    super::check_name_part(name)
        .map_err(|reason| format!("invalid identity name {name:?}: {reason}"))?;
    if super::policy::RESERVED_NAMES
        .iter()
        .any(|word| word.eq_ignore_ascii_case(name))
    {
        return Err(format!(
            "invalid identity name {name:?}: it names a set of identities in ref policies"
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IdentityKind {
    Human,
    Agent,
}

impl IdentityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::Human => "human",
            IdentityKind::Agent => "agent",
        }
    }
}

/// A new identity as the CLI and REST add it: a valid name, an owner exactly for an agent,
/// no keys yet (`DataDir::add_identity` checks the owner exists and is a human).
pub fn new_identity(
    name: &str,
    kind: IdentityKind,
    owner: Option<&str>,
) -> Result<Identity, IdentityError> {
    check_identity_name(name).map_err(IdentityError::Invalid)?;
    match (kind, owner) {
        (IdentityKind::Agent, None) => Err(IdentityError::Invalid(
            "an agent needs an owner (a human)".into(),
        )),
        (IdentityKind::Human, Some(_)) => {
            Err(IdentityError::Invalid("only agents have an owner".into()))
        }
        _ => Ok(Identity {
            name: name.to_owned(),
            kind,
            owner: owner.map(str::to_owned),
            keys: Vec::new(),
            created_at: now_secs(),
            disabled: false,
            incarnation: 0,
        }),
    }
}

/// A human or an agent (which names the human who owns it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub name: String,
    pub kind: IdentityKind,
    /// The owning human, for an agent.
    pub owner: Option<String>,
    /// Ed25519 public keys of its attestations, revoked ones kept (their attestations
    /// stay visible but stop counting). Records from before revocation held a list of hex
    /// strings under `public_keys`.
    #[serde(default, alias = "public_keys", deserialize_with = "keys_or_legacy")]
    pub keys: Vec<IdentityKey>,
    pub created_at: u64,
    /// A disabled identity's tokens are refused (`forge identity disable`); so are its
    /// agents' tokens.
    #[serde(default)]
    pub disabled: bool,
    /// Chosen when the identity is added and carried by its tokens, so that removing an
    /// identity and adding one with the same name does not revive the old tokens. 0 for
    /// identities added before incarnations existed (their tokens carry none).
    #[serde(default)]
    pub incarnation: u64,
}

/// Whether a verified token may still act, as the data directory says now.
/// One public key of an identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IdentityKey {
    /// Ed25519, 64 lower-case hex digits.
    pub key: String,
    pub added_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<u64>,
}

impl IdentityKey {
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }
}

fn keys_or_legacy<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<IdentityKey>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Entry {
        Legacy(String),
        Key(IdentityKey),
    }
    let entries: Vec<Entry> = Vec::deserialize(deserializer)?;
    Ok(entries
        .into_iter()
        .map(|entry| match entry {
            Entry::Legacy(key) => IdentityKey {
                key,
                added_at: 0,
                revoked_at: None,
            },
            Entry::Key(key) => key,
        })
        .collect())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Good, and the token's identity is of this kind.
    Good(IdentityKind),
    Revoked,
    /// No such identity (removed, or the token was minted elsewhere with the same key).
    UnknownIdentity(String),
    /// The identity was removed and another added with its name since the token was minted.
    EarlierIncarnation(String),
    Disabled(String),
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("identity {0} already exists")]
    Exists(String),
    #[error("identity {0} does not exist")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{identity} has no key {key}")]
    KeyNotFound { identity: String, key: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl IdentityError {
    /// The stable code the CLI's `--json` and REST report this error with.
    pub fn code(&self) -> &'static str {
        match self {
            IdentityError::Exists(_) => "identity_exists",
            IdentityError::NotFound(_) => "identity_not_found",
            IdentityError::Invalid(_) => "invalid_argument",
            IdentityError::KeyNotFound { .. } => "key_not_found",
            IdentityError::Store(e) => e.code(),
        }
    }
}

impl DataDir {
    fn key_file(&self) -> PathBuf {
        self.root.join("keys").join("root.key")
    }

    /// The server's root signing key (32 secret bytes, hex, file mode 0600), created on
    /// first use. Creation is atomic: a complete file is renamed into place, and a second
    /// process racing to create it keeps the first one's key.
    pub fn root_key_bytes(&self) -> Result<Vec<u8>, StoreError> {
        let path = self.key_file();
        if let Some(bytes) = self.read_key_file()? {
            return Ok(bytes);
        }
        let dir = path.parent().expect("the key file has a directory");
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io("create", dir, e))?;
        let secret = biscuit_auth::KeyPair::new().private().to_bytes_hex();
        let mut tmp = tempfile::Builder::new()
            .prefix(".root.key-")
            .permissions(
                <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600),
            )
            .tempfile_in(dir)
            .map_err(|e| StoreError::io("create a key in", dir, e))?;
        tmp.write_all(format!("{secret}\n").as_bytes())
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| StoreError::io("write", tmp.path(), e))?;
        // Never replace an existing key: link fails if another process created one first.
        match std::fs::hard_link(tmp.path(), &path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(StoreError::io("create", &path, e)),
        }
        self.read_key_file()?
            .ok_or_else(|| StoreError::Corrupt(format!("{} vanished", path.display())))
    }

    fn read_key_file(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.key_file();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io("read", &path, e)),
        };
        let bytes = crate::hex::decode(text.trim(), 32);
        bytes
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt(format!("{} is not a root key", path.display())))
    }

    /// Adds `identity` with a fresh incarnation and returns the record as stored.
    pub fn add_identity(&self, identity: &Identity) -> Result<Identity, IdentityError> {
        check_identity_name(&identity.name).map_err(IdentityError::Invalid)?;
        let mut identity = identity.clone();
        identity.incarnation = fresh_incarnation(&identity.name);
        let added = self.registry.add_identity(&identity, &self.actor)?;
        self.standing.changed();
        Ok(added)
    }

    pub fn find_identity(&self, name: &str) -> Result<Option<Identity>, StoreError> {
        self.registry.find_identity(name)
    }

    pub fn list_identities(&self) -> Result<Vec<Identity>, StoreError> {
        self.registry.list_identities()
    }

    /// Records revoked token blocks; returns how many were not revoked before.
    pub fn revoke_token_blocks(&self, ids: &[Vec<u8>]) -> Result<usize, StoreError> {
        self.revoke_token_blocks_of(ids, None)
    }

    /// `revoke_token_blocks`, naming the identity whose token it was in the event.
    pub fn revoke_token_blocks_of(
        &self,
        ids: &[Vec<u8>],
        identity: Option<&str>,
    ) -> Result<usize, StoreError> {
        let event = super::events::NewEvent::now(
            self.actor.clone(),
            super::events::EventKind::TokenRevoked(super::events::TokenChanged {
                identity: identity.map(str::to_owned),
                revocation_ids: ids.iter().map(|id| crate::hex::encode(id)).collect(),
            }),
        );
        let revoked = self.registry.revoke_token_blocks(ids, now_secs(), &event)?;
        self.standing.changed();
        Ok(revoked)
    }

    /// Logs a minted token (minting writes nothing else: tokens are verified offline).
    pub fn token_minted(
        &self,
        identity: &str,
        revocation_ids: &[Vec<u8>],
    ) -> Result<(), StoreError> {
        self.registry.append_event(&super::events::NewEvent::now(
            self.actor.clone(),
            super::events::EventKind::TokenMinted(super::events::TokenChanged {
                identity: Some(identity.to_owned()),
                revocation_ids: revocation_ids
                    .iter()
                    .map(|id| crate::hex::encode(id))
                    .collect(),
            }),
        ))
    }

    /// Whether a token for `identity` with these revocation ids may act: none revoked, the
    /// identity known and enabled, and an agent's owner too. Read on every request; the
    /// answer is kept only until a revocation or identity change by any process on the
    /// data directory (`standing`), so those take effect at once.
    pub fn token_standing(
        &self,
        identity: &str,
        incarnation: u64,
        ids: &[Vec<u8>],
    ) -> Result<Standing, StoreError> {
        let key = super::standing::key(identity, incarnation, ids);
        let (kept, count) = self.standing.get(&key);
        if let Some(standing) = kept {
            return Ok(standing);
        }
        let standing = self.read_standing(identity, incarnation, ids)?;
        self.standing.put(key, count, &standing);
        Ok(standing)
    }

    fn read_standing(
        &self,
        identity: &str,
        incarnation: u64,
        ids: &[Vec<u8>],
    ) -> Result<Standing, StoreError> {
        let records = self.registry.standing_records(identity, ids)?;
        if records.revoked {
            return Ok(Standing::Revoked);
        }
        let Some(record) = records.identity else {
            return Ok(Standing::UnknownIdentity(identity.to_owned()));
        };
        if record.incarnation != incarnation {
            return Ok(Standing::EarlierIncarnation(record.name));
        }
        if record.disabled {
            return Ok(Standing::Disabled(record.name));
        }
        // An agent stands only while its owner (a human, who has none) does.
        if let Some(owner) = record.owner {
            match records.owner {
                None => return Ok(Standing::UnknownIdentity(owner)),
                Some(o) if o.disabled => return Ok(Standing::Disabled(o.name)),
                Some(_) => {}
            }
        }
        Ok(Standing::Good(record.kind))
    }

    /// Disables or enables an identity: a disabled one's tokens, and its agents', are
    /// refused on their next request.
    pub fn set_identity_disabled(
        &self,
        name: &str,
        disabled: bool,
    ) -> Result<Identity, IdentityError> {
        let changed = self
            .registry
            .set_identity_disabled(name, disabled, &self.actor)?;
        self.standing.changed();
        Ok(changed)
    }

    /// Removes an identity; its tokens stop working. A human who still owns agents is
    /// kept (remove the agents first), so no agent is left without an owner.
    /// Gives `name` a public key no identity has had (a key names one signer, for good).
    /// The key is checked to be a usable Ed25519 public key (64 hex digits).
    pub fn add_identity_key(&self, name: &str, key: &str) -> Result<Identity, IdentityError> {
        let parsed = crate::attest::keys::parse_public_key(key.trim())
            .map_err(|e| IdentityError::Invalid(format!("the public key: {e}")))?;
        let key = IdentityKey {
            key: crate::attest::KeyId::of(&parsed).to_string(),
            added_at: now_secs(),
            revoked_at: None,
        };
        self.registry.add_identity_key(name, &key, &self.actor)
    }

    /// Revokes one of `name`'s keys: its attestations stop counting.
    pub fn revoke_identity_key(&self, name: &str, key: &str) -> Result<Identity, IdentityError> {
        self.registry
            .revoke_identity_key(name, &key.to_ascii_lowercase(), now_secs(), &self.actor)
    }

    pub fn remove_identity(&self, name: &str) -> Result<Identity, IdentityError> {
        let removed = self.registry.remove_identity(name, &self.actor)?;
        self.standing.changed();
        Ok(removed)
    }

    /// Whether any of the ids is revoked (read from the database on every call, so a
    /// revocation by another process takes effect at once).
    pub fn any_revoked(&self, ids: &[Vec<u8>]) -> Result<bool, StoreError> {
        self.registry.any_revoked(ids)
    }
}

fn fresh_incarnation(name: &str) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut hasher = blake3::Hasher::new();
    hasher.update(name.as_bytes());
    hasher.update(&nanos.to_le_bytes());
    hasher.update(&std::process::id().to_le_bytes());
    let bytes: [u8; 8] = hasher.finalize().as_bytes()[..8]
        .try_into()
        .expect("8 bytes");
    (u64::from_le_bytes(bytes) & (i64::MAX as u64)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_from_before_key_revocation_still_read() {
        let legacy =
            r#"{"name":"ci","kind":"agent","owner":"alice","public_keys":["ab"],"created_at":5}"#;
        let identity: Identity = serde_json::from_str(legacy).unwrap();
        assert_eq!(
            identity.keys,
            [IdentityKey {
                key: "ab".into(),
                added_at: 0,
                revoked_at: None
            }]
        );
        let written = serde_json::to_string(&identity).unwrap();
        assert!(
            written.contains(r#""keys":[{"key":"ab","added_at":0}]"#),
            "{written}"
        );
        let again: Identity = serde_json::from_str(&written).unwrap();
        assert_eq!(again, identity);
    }
}
