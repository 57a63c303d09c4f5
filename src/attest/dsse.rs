//! DSSE v1 envelopes (Dead Simple Signing Envelope): the signature is over
//! `PAE(payloadType, payload)`, so a signature cannot be moved to another payload type, and
//! what a verifier hands on is exactly the bytes that were signed.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::{AttestError, KeyId};

/// The payload type of an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// Largest envelope accepted, as JSON.
pub const MAX_ENVELOPE_BYTES: usize = 256 << 10;
/// Most signatures one envelope may carry.
pub const MAX_SIGNATURES: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Base64 of the payload (standard or URL-safe alphabet; padding optional).
    pub payload: String,
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// A hint of which key signed; not authenticated, so only an ordering hint.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub keyid: String,
    pub sig: String,
}

/// The pre-authentication encoding: `DSSEv1 SP len(type) SP type SP len(body) SP body`.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + payload_type.len() + body.len());
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(body);
    out
}

/// Base64 in either alphabet, padded or not, as DSSE verifiers must accept.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

/// Signs `body` as an envelope of `payload_type` with one signature.
pub fn sign(payload_type: &str, body: &[u8], key: &SigningKey) -> Envelope {
    let signature = key.sign(&pae(payload_type, body));
    Envelope {
        payload: STANDARD.encode(body),
        payload_type: payload_type.to_owned(),
        signatures: vec![EnvelopeSignature {
            keyid: KeyId::of(&key.verifying_key()).to_string(),
            sig: STANDARD.encode(signature.to_bytes()),
        }],
    }
}

/// A verified envelope: the payload bytes the signatures cover and the keys that signed
/// them (each counted once, whatever the number of signatures it made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub payload_type: String,
    pub body: Vec<u8>,
    pub signers: Vec<KeyId>,
}

impl Envelope {
    /// Parses an envelope's JSON, bounded in size; unknown fields are ignored.
    pub fn parse(json: &[u8]) -> Result<Envelope, AttestError> {
        if json.len() > MAX_ENVELOPE_BYTES {
            return Err(AttestError::TooLarge {
                what: "envelope",
                limit: MAX_ENVELOPE_BYTES,
            });
        }
        serde_json::from_slice(json).map_err(|e| AttestError::Malformed(format!("envelope: {e}")))
    }

    /// Checks the signatures against `keys` and returns what they cover. Fails unless at
    /// least one signature verifies (strictly: no small-order keys, no malleable
    /// signatures). `keyid` hints are ignored: every signature is tried against every key.
    pub fn verify(&self, keys: &[VerifyingKey]) -> Result<Verified, AttestError> {
        if self.signatures.is_empty() {
            return Err(AttestError::Unsigned);
        }
        if self.signatures.len() > MAX_SIGNATURES {
            return Err(AttestError::TooLarge {
                what: "signature list",
                limit: MAX_SIGNATURES,
            });
        }
        let body = decode_base64(&self.payload)
            .ok_or_else(|| AttestError::Malformed("the payload is not base64".into()))?;
        let message = pae(&self.payload_type, &body);
        let mut signers: Vec<KeyId> = Vec::new();
        for signature in &self.signatures {
            let Some(raw) = decode_base64(&signature.sig) else {
                continue;
            };
            let Ok(signature) = Signature::from_slice(&raw) else {
                continue;
            };
            for key in keys {
                if key.verify_strict(&message, &signature).is_ok() {
                    let id = KeyId::of(key);
                    if !signers.contains(&id) {
                        signers.push(id);
                    }
                }
            }
        }
        if signers.is_empty() {
            return Err(AttestError::BadSignature);
        }
        Ok(Verified {
            payload_type: self.payload_type.clone(),
            body,
            signers,
        })
    }

    /// The envelope as compact JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an envelope serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SigningKey {
        SigningKey::from_bytes(&[byte; 32])
    }

    #[test]
    fn pae_matches_the_specification_vector() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
    }

    #[test]
    fn signatures_cover_type_and_body_and_nothing_else() {
        let signer = key(1);
        let envelope = sign(IN_TOTO_PAYLOAD_TYPE, b"{}", &signer);
        let verified = envelope
            .verify(&[key(2).verifying_key(), signer.verifying_key()])
            .unwrap();
        assert_eq!(verified.body, b"{}");
        assert_eq!(verified.signers, [KeyId::of(&signer.verifying_key())]);
        // Another key, another body, another type, a truncated signature: all refused.
        assert_eq!(
            envelope.verify(&[key(2).verifying_key()]),
            Err(AttestError::BadSignature)
        );
        let mut other_body = envelope.clone();
        other_body.payload = STANDARD.encode(b"{ }");
        assert_eq!(
            other_body.verify(&[signer.verifying_key()]),
            Err(AttestError::BadSignature)
        );
        let mut other_type = envelope.clone();
        other_type.payload_type = "application/json".into();
        assert_eq!(
            other_type.verify(&[signer.verifying_key()]),
            Err(AttestError::BadSignature)
        );
        let mut short = envelope.clone();
        short.signatures[0].sig.truncate(20);
        assert!(short.verify(&[signer.verifying_key()]).is_err());
        // A signature over the raw body instead of its PAE does not count.
        let mut raw = envelope.clone();
        raw.signatures[0].sig = STANDARD.encode(signer.sign(b"{}").to_bytes());
        assert_eq!(
            raw.verify(&[signer.verifying_key()]),
            Err(AttestError::BadSignature)
        );
    }

    #[test]
    fn either_base64_alphabet_and_distinct_signers() {
        let (a, b) = (key(3), key(4));
        let body = vec![0xfb, 0xff, 0xfe];
        let mut envelope = sign(IN_TOTO_PAYLOAD_TYPE, &body, &a);
        envelope.payload = URL_SAFE_NO_PAD.encode(&body);
        let second = sign(IN_TOTO_PAYLOAD_TYPE, &body, &b).signatures.remove(0);
        envelope.signatures.push(second.clone());
        envelope.signatures.push(second);
        let verified = envelope
            .verify(&[a.verifying_key(), b.verifying_key()])
            .unwrap();
        assert_eq!(verified.body, body);
        assert_eq!(verified.signers.len(), 2, "b signed twice and counts once");
        envelope.signatures = vec![envelope.signatures[0].clone(); MAX_SIGNATURES + 1];
        assert!(matches!(
            envelope.verify(&[a.verifying_key()]),
            Err(AttestError::TooLarge { .. })
        ));
        envelope.signatures.clear();
        assert_eq!(
            envelope.verify(&[a.verifying_key()]),
            Err(AttestError::Unsigned)
        );
    }

    #[test]
    fn parsing_is_bounded_and_lenient_about_unknown_fields() {
        let parsed = Envelope::parse(
            br#"{"payload":"e30=","payloadType":"t","signatures":[{"sig":"AA=="}],"extra":1}"#,
        )
        .unwrap();
        assert_eq!(parsed.signatures[0].keyid, "");
        assert!(matches!(
            Envelope::parse(b"{\"payload\": 1}"),
            Err(AttestError::Malformed(_))
        ));
        let huge = vec![b' '; MAX_ENVELOPE_BYTES + 1];
        assert!(matches!(
            Envelope::parse(&huge),
            Err(AttestError::TooLarge { .. })
        ));
    }
}
