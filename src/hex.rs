//! Lower-case hex for keys and revocation ids.

use std::fmt::Write as _;

pub fn encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// The bytes of `text` when it is exactly `len` bytes of hex (either case).
pub fn decode(text: &str, len: usize) -> Option<Vec<u8>> {
    if text.len() != len * 2 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip_and_refusals() {
        assert_eq!(super::encode(&[0, 0xab, 0xff]), "00abff");
        assert_eq!(super::decode("00ABff", 3), Some(vec![0, 0xab, 0xff]));
        assert_eq!(super::decode("00ab", 3), None);
        assert_eq!(super::decode("+0ab", 2), None);
        assert_eq!(super::decode("zz", 1), None);
    }
}
