//! Object identifiers: the native BLAKE3 id and git's SHA-1.

use std::fmt;
use std::str::FromStr;

/// The four kinds of objects git and the native store share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Blob,
    Tree,
    Commit,
    Tag,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Blob, Kind::Tree, Kind::Commit, Kind::Tag];

    /// The name git uses in object headers and `cat-file` output.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Blob => "blob",
            Kind::Tree => "tree",
            Kind::Commit => "commit",
            Kind::Tag => "tag",
        }
    }

    pub fn from_name(name: &[u8]) -> Option<Kind> {
        Some(match name {
            b"blob" => Kind::Blob,
            b"tree" => Kind::Tree,
            b"commit" => Kind::Commit,
            b"tag" => Kind::Tag,
            _ => return None,
        })
    }

    /// Stable one-byte code used in the store's records.
    pub fn code(self) -> u8 {
        match self {
            Kind::Blob => 1,
            Kind::Tree => 2,
            Kind::Commit => 3,
            Kind::Tag => 4,
        }
    }

    pub fn from_code(code: u8) -> Option<Kind> {
        Some(match code {
            1 => Kind::Blob,
            2 => Kind::Tree,
            3 => Kind::Commit,
            4 => Kind::Tag,
            _ => return None,
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a hex string is not an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    #[error("expected {expected} hex digits, got {got}")]
    Length { expected: usize, got: usize },
    #[error("{0:?} is not a hex digit")]
    Digit(char),
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes hex (either case) into `out`; `hex` must be exactly twice as long.
pub(crate) fn decode_hex_into(hex: &[u8], out: &mut [u8]) -> Result<(), HexError> {
    if hex.len() != out.len() * 2 {
        return Err(HexError::Length {
            expected: out.len() * 2,
            got: hex.len(),
        });
    }
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let hi = hex_value(pair[0]).ok_or(HexError::Digit(pair[0] as char))?;
        let lo = hex_value(pair[1]).ok_or(HexError::Digit(pair[1] as char))?;
        *byte = hi << 4 | lo;
    }
    Ok(())
}

const HEX: &[u8; 16] = b"0123456789abcdef";

pub(crate) fn write_hex(bytes: &[u8], out: &mut Vec<u8>) {
    for b in bytes {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 15) as usize]);
    }
}

/// A hasher for maps keyed by object ids: ids are already uniformly distributed (they are
/// cryptographic hashes), so their first eight bytes serve as the hash.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only ids hash through here (see their `Hash`); mix anything else in anyway.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0 ^ u64::from_le_bytes(word)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 ^= value;
    }
}

/// A `HashMap` keyed by object ids, hashed by `IdHasher`.
pub type IdMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<IdHasher>>;

/// A `HashSet` of object ids, hashed by `IdHasher`.
pub type IdSet<K> = std::collections::HashSet<K, std::hash::BuildHasherDefault<IdHasher>>;

macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                let mut word = [0u8; 8];
                word.copy_from_slice(&self.0[..8]);
                state.write_u64(u64::from_le_bytes(word));
            }
        }

        impl $name {
            pub const LEN: usize = $len;
            pub const HEX_LEN: usize = $len * 2;

            pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
                Some(Self(bytes.try_into().ok()?))
            }

            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// The all-zero id git uses for "no object".
            pub fn is_zero(&self) -> bool {
                self.0.iter().all(|&b| b == 0)
            }

            /// Parses full-length hex in either case.
            pub fn from_hex(hex: &[u8]) -> Result<Self, HexError> {
                let mut out = [0u8; $len];
                decode_hex_into(hex, &mut out)?;
                Ok(Self(out))
            }

            pub fn to_hex(&self) -> String {
                let mut out = Vec::with_capacity($len * 2);
                write_hex(&self.0, &mut out);
                String::from_utf8(out).expect("hex is ASCII")
            }

            pub fn write_hex(&self, out: &mut Vec<u8>) {
                write_hex(&self.0, out)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl FromStr for $name {
            type Err = HexError;
            fn from_str(s: &str) -> Result<Self, HexError> {
                Self::from_hex(s.as_bytes())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }
    };
}

define_id!(
    /// A native object id: BLAKE3 of the blob content, or of the canonical encoding of a
    /// tree, commit or tag in derive-key mode (see `docs/object-format.md`).
    ObjectId,
    32
);

define_id!(
    /// A git object id (SHA-1 of `"<kind> <size>\0" + body`).
    Sha1,
    20
);

impl ObjectId {
    /// The id of a blob: plain BLAKE3 of its content, as `b3sum` prints it.
    pub fn for_blob(content: &[u8]) -> ObjectId {
        ObjectId(*blake3::hash(content).as_bytes())
    }
}

/// A hex prefix of an id, as a user types it (`forge show-id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HexPrefix {
    /// The prefix's full bytes (an odd digit count leaves the last nibble in `odd_nibble`).
    pub bytes: Vec<u8>,
    pub odd_nibble: Option<u8>,
    pub digits: usize,
}

impl HexPrefix {
    pub fn parse(hex: &str) -> Result<HexPrefix, HexError> {
        let raw = hex.as_bytes();
        let mut bytes = Vec::with_capacity(raw.len() / 2);
        for pair in raw.chunks(2) {
            let hi = hex_value(pair[0]).ok_or(HexError::Digit(pair[0] as char))?;
            if pair.len() == 2 {
                let lo = hex_value(pair[1]).ok_or(HexError::Digit(pair[1] as char))?;
                bytes.push(hi << 4 | lo);
            } else {
                return Ok(HexPrefix {
                    bytes,
                    odd_nibble: Some(hi),
                    digits: raw.len(),
                });
            }
        }
        Ok(HexPrefix {
            bytes,
            odd_nibble: None,
            digits: raw.len(),
        })
    }

    pub fn matches(&self, id: &[u8]) -> bool {
        if id.len() < self.bytes.len() + usize::from(self.odd_nibble.is_some()) {
            return false;
        }
        id.starts_with(&self.bytes)
            && self
                .odd_nibble
                .is_none_or(|n| id[self.bytes.len()] >> 4 == n)
    }

    /// The smallest id of `len` bytes that has this prefix (for range scans).
    pub fn lower_bound(&self, len: usize) -> Vec<u8> {
        let mut out = self.bytes.clone();
        if let Some(n) = self.odd_nibble {
            out.push(n << 4);
        }
        out.resize(len, 0);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_case() {
        let id = Sha1::from_hex(b"0123456789ABCDEFabcdef0123456789abcdef01").unwrap();
        assert_eq!(id.to_hex(), "0123456789abcdefabcdef0123456789abcdef01");
        assert!(matches!(
            Sha1::from_hex(b"12"),
            Err(HexError::Length {
                expected: 40,
                got: 2
            })
        ));
        assert_eq!(
            Sha1::from_hex(b"g123456789abcdefabcdef0123456789abcdef01"),
            Err(HexError::Digit('g'))
        );
    }

    #[test]
    fn prefix_matching() {
        let id = ObjectId::for_blob(b"hello");
        let hex = id.to_hex();
        let p = HexPrefix::parse(&hex[..9]).unwrap();
        assert!(p.matches(id.as_bytes()));
        assert_eq!(p.digits, 9);
        assert!(p.lower_bound(32) <= id.as_bytes().to_vec());
        let other = HexPrefix::parse("ffffffff0").unwrap();
        assert!(!other.matches(id.as_bytes()) || hex.starts_with("ffffffff0"));
    }
}
