//! Ed25519 keys of attestations: a key pair file written by `forge keygen` (the 32-byte
//! secret seed as 64 hex digits, mode 0600) and public keys as 64 hex digits.

use std::io::Write;
use std::path::Path;

use ed25519_dalek::{SigningKey, VerifyingKey};

use super::AttestError;

/// A public key, named by its 32 bytes (shown as hex: the `keyid` of the forge's
/// envelopes, and how identities list their keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub [u8; 32]);

impl KeyId {
    pub fn of(key: &VerifyingKey) -> KeyId {
        KeyId(key.to_bytes())
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::hex::encode(&self.0))
    }
}

/// A public key from 64 hex digits (surrounding white space allowed), refusing points that
/// are not valid keys.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, AttestError> {
    let bad = || AttestError::BadKey("expected an Ed25519 public key as 64 hex digits".into());
    let bytes = crate::hex::decode(text.trim(), 32).ok_or_else(bad)?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| bad())?;
    let key = VerifyingKey::from_bytes(&bytes).map_err(|_| bad())?;
    if key.is_weak() {
        return Err(AttestError::BadKey(
            "a small-order point is not a key".into(),
        ));
    }
    Ok(key)
}

/// A new key pair from the operating system's random source.
pub fn generate() -> Result<SigningKey, AttestError> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed)
        .map_err(|e| AttestError::BadKey(format!("no random source: {e}")))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Writes a secret key file readable by its owner only; never replaces an existing file.
pub fn write_secret_key(path: &Path, key: &SigningKey) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(format!("{}\n", crate::hex::encode(&key.to_bytes())).as_bytes())?;
    file.sync_all()
}

/// Reads a secret key file `write_secret_key` wrote.
pub fn read_secret_key(path: &Path) -> Result<SigningKey, AttestError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| AttestError::BadKey(format!("{}: {e}", path.display())))?;
    let bytes = crate::hex::decode(text.trim(), 32).ok_or_else(|| {
        AttestError::BadKey(format!(
            "{}: expected a secret key as 64 hex digits (forge keygen writes one)",
            path.display()
        ))
    })?;
    let seed: [u8; 32] = bytes.try_into().expect("32 bytes");
    Ok(SigningKey::from_bytes(&seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_round_trip_private_and_never_overwrite() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let key = generate().unwrap();
        write_secret_key(&path, &key).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(read_secret_key(&path).unwrap().to_bytes(), key.to_bytes());
        assert!(write_secret_key(&path, &generate().unwrap()).is_err());
        assert_eq!(read_secret_key(&path).unwrap().to_bytes(), key.to_bytes());
        let public = KeyId::of(&key.verifying_key()).to_string();
        assert_eq!(
            parse_public_key(&format!(" {public}\n")).unwrap(),
            key.verifying_key()
        );
        assert!(parse_public_key(&public[..62]).is_err());
        // The identity point is a small-order point.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(parse_public_key(&crate::hex::encode(&identity)).is_err());
    }
}
