//! What a client asks of upload-pack, parsed from protocol v2 `fetch` arguments or from a
//! v0/v1 request, into one shape.

use bstr::{BString, ByteSlice};

use crate::object::Sha1;
use crate::protocol::pktline::{Band, Packet, PktReader};

use super::UploadError;

/// Most `want` lines one request may carry (a blobless checkout asks for every blob of the
/// checkout at once, so this is generous).
pub const MAX_WANTS: usize = 1_000_000;
/// Most `have` lines one request may carry (git sends at most a few hundred per round, and
/// re-sends the common ones).
pub const MAX_HAVES: usize = 100_000;
/// Most `shallow` lines.
pub const MAX_SHALLOWS: usize = 100_000;
/// Most `deepen-not` refs.
pub const MAX_DEEPEN_NOT: usize = 1000;

/// The object filters partial clones use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// `blob:none`
    NoBlobs,
    /// `blob:limit=N`: blobs of at least N bytes are left out.
    BlobLimit(u64),
    /// `tree:N`: trees and blobs at depth N or deeper (the root tree is depth 0) are left out.
    TreeDepth(u64),
}

impl Filter {
    pub fn parse(spec: &[u8]) -> Result<Filter, UploadError> {
        let bad = || UploadError::Request(format!("unsupported filter '{}'", spec.as_bstr()));
        if spec == b"blob:none" {
            return Ok(Filter::NoBlobs);
        }
        if let Some(limit) = spec.strip_prefix(b"blob:limit=") {
            return parse_size(limit).map(Filter::BlobLimit).ok_or_else(bad);
        }
        if let Some(depth) = spec.strip_prefix(b"tree:") {
            return parse_size(depth)
                .filter(|_| depth.iter().all(u8::is_ascii_digit))
                .map(Filter::TreeDepth)
                .ok_or_else(bad);
        }
        Err(bad())
    }
}

/// A number with an optional `k`, `m` or `g` suffix (powers of 1024), as git's filters take.
fn parse_size(text: &[u8]) -> Option<u64> {
    let (digits, scale) = match text.last()? {
        b'k' | b'K' => (&text[..text.len() - 1], 1u64 << 10),
        b'm' | b'M' => (&text[..text.len() - 1], 1 << 20),
        b'g' | b'G' => (&text[..text.len() - 1], 1 << 30),
        _ => (text, 1),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits
        .to_str()
        .ok()?
        .parse::<u64>()
        .ok()?
        .checked_mul(scale)
}

#[derive(Debug, Default, Clone)]
pub struct FetchArgs {
    pub wants: Vec<Sha1>,
    pub haves: Vec<Sha1>,
    pub shallows: Vec<Sha1>,
    pub depth: Option<u32>,
    pub deepen_since: Option<i64>,
    pub deepen_not: Vec<BString>,
    pub deepen_relative: bool,
    pub filter: Option<Filter>,
    pub thin_pack: bool,
    pub ofs_delta: bool,
    pub include_tag: bool,
    pub no_progress: bool,
    pub done: bool,
    pub wait_for_done: bool,
    /// v0 only: the side band the client asked for (v2 always uses side-band-64k).
    pub band: Option<Band>,
    /// v0 only: `multi_ack`, `multi_ack_detailed` and `no-done`.
    pub multi_ack: bool,
    pub multi_ack_detailed: bool,
    pub no_done: bool,
    /// v0 only: whether anything followed the want list. A deepening client's first
    /// stateless request stops there and expects only the shallow list back.
    pub negotiates: bool,
}

impl FetchArgs {
    pub fn deepens(&self) -> bool {
        self.depth.is_some() || self.deepen_since.is_some() || !self.deepen_not.is_empty()
    }

    /// Applies one argument line shared by v2 `fetch` and the v0 request. Returns false
    /// for a line this function does not know.
    fn apply(&mut self, line: &[u8]) -> Result<bool, UploadError> {
        if let Some(hex) = line.strip_prefix(b"have ") {
            push_limited(&mut self.haves, parse_id(hex)?, MAX_HAVES, "have")?;
        } else if let Some(hex) = line.strip_prefix(b"shallow ") {
            push_limited(&mut self.shallows, parse_id(hex)?, MAX_SHALLOWS, "shallow")?;
        } else if let Some(n) = line.strip_prefix(b"deepen ") {
            let depth = n
                .to_str()
                .ok()
                .and_then(|n| n.parse::<i64>().ok())
                .filter(|&d| d > 0)
                .ok_or_else(|| UploadError::Request(format!("invalid deepen: {}", n.as_bstr())))?;
            self.depth = Some(depth.min(i64::from(i32::MAX)) as u32);
        } else if let Some(time) = line.strip_prefix(b"deepen-since ") {
            let since = time
                .to_str()
                .ok()
                .and_then(|t| t.parse::<i64>().ok())
                .ok_or_else(|| {
                    UploadError::Request(format!("invalid deepen-since: {}", time.as_bstr()))
                })?;
            self.deepen_since = Some(since);
        } else if let Some(name) = line.strip_prefix(b"deepen-not ") {
            if self.deepen_not.len() >= MAX_DEEPEN_NOT {
                return Err(UploadError::Request("too many deepen-not lines".into()));
            }
            self.deepen_not.push(name.into());
        } else if line == b"deepen-relative" {
            self.deepen_relative = true;
        } else if let Some(spec) = line.strip_prefix(b"filter ") {
            if self.filter.is_some() {
                return Err(UploadError::Request("more than one filter".into()));
            }
            self.filter = Some(Filter::parse(spec)?);
        } else {
            return Ok(false);
        }
        Ok(true)
    }

    fn check(&self) -> Result<(), UploadError> {
        if self.depth.is_some() && (self.deepen_since.is_some() || !self.deepen_not.is_empty()) {
            return Err(UploadError::Request(
                "deepen and deepen-since (or deepen-not) cannot be used together".into(),
            ));
        }
        Ok(())
    }
}

fn push_limited(
    list: &mut Vec<Sha1>,
    id: Sha1,
    limit: usize,
    what: &str,
) -> Result<(), UploadError> {
    if list.len() >= limit {
        return Err(UploadError::Request(format!(
            "too many {what} lines (at most {limit})"
        )));
    }
    list.push(id);
    Ok(())
}

pub fn parse_id(hex: &[u8]) -> Result<Sha1, UploadError> {
    Sha1::from_hex(hex).map_err(|_| {
        UploadError::Request(format!("expected an object id, got '{}'", hex.as_bstr()))
    })
}

/// The next text line of a section of arguments, `None` at the flush that ends it.
pub fn next_arg<'a>(
    reader: &mut PktReader<'a>,
    section: &str,
) -> Result<Option<&'a [u8]>, UploadError> {
    match reader.next_packet()? {
        Some(Packet::Flush) => Ok(None),
        Some(packet @ Packet::Data(_)) => Ok(packet.text()),
        Some(other) => Err(UploadError::Request(format!(
            "unexpected {other:?} in {section}"
        ))),
        None => Err(UploadError::Request(format!(
            "expected flush after {section}"
        ))),
    }
}

/// The arguments of a v2 `fetch` command (after the delimiter, up to the flush).
pub fn parse_v2_fetch(reader: &mut PktReader<'_>) -> Result<FetchArgs, UploadError> {
    let mut args = FetchArgs {
        band: Some(Band::Large),
        ..FetchArgs::default()
    };
    while let Some(line) = next_arg(reader, "fetch arguments")? {
        if let Some(hex) = line.strip_prefix(b"want ") {
            push_limited(&mut args.wants, parse_id(hex)?, MAX_WANTS, "want")?;
            continue;
        }
        if args.apply(line)? {
            continue;
        }
        match line {
            b"thin-pack" => args.thin_pack = true,
            b"ofs-delta" => args.ofs_delta = true,
            b"no-progress" => args.no_progress = true,
            b"include-tag" => args.include_tag = true,
            b"done" => args.done = true,
            b"wait-for-done" => args.wait_for_done = true,
            _ => {
                return Err(UploadError::Request(format!(
                    "unexpected line: '{}'",
                    line.as_bstr()
                )));
            }
        }
    }
    args.check()?;
    Ok(args)
}

/// A v0/v1 stateless request: wants (the first carries the capabilities), shallow and deepen
/// lines, a flush, then haves in rounds separated by flushes, maybe ending with `done`.
pub fn parse_v0(body: &[u8]) -> Result<FetchArgs, UploadError> {
    let mut reader = PktReader::new(body);
    let mut args = FetchArgs {
        band: Some(Band::None),
        ..FetchArgs::default()
    };
    let mut first = true;
    while let Some(line) = next_arg(&mut reader, "the want list")? {
        if let Some(rest) = line.strip_prefix(b"want ") {
            let (hex, features) = rest.split_at(rest.len().min(40));
            push_limited(&mut args.wants, parse_id(hex)?, MAX_WANTS, "want")?;
            if first {
                first = false;
                apply_v0_features(&mut args, features);
            }
            continue;
        }
        if !args.apply(line)? {
            return Err(UploadError::Request(format!(
                "protocol error, expected to get object ID, not '{}'",
                line.as_bstr()
            )));
        }
    }
    while let Some(packet) = reader.next_packet()? {
        args.negotiates = true;
        match packet {
            Packet::Flush => {}
            Packet::Data(_) => {
                let line = packet.text().unwrap_or_default();
                if line == b"done" {
                    args.done = true;
                } else if let Some(hex) = line.strip_prefix(b"have ") {
                    push_limited(&mut args.haves, parse_id(hex)?, MAX_HAVES, "have")?;
                } else {
                    return Err(UploadError::Request(format!(
                        "expected SHA1 list, got '{}'",
                        line.as_bstr()
                    )));
                }
            }
            other => {
                return Err(UploadError::Request(format!(
                    "unexpected {other:?} in the have list"
                )));
            }
        }
    }
    args.check()?;
    Ok(args)
}

fn apply_v0_features(args: &mut FetchArgs, features: &[u8]) {
    for feature in features.split_str(" ").filter(|f| !f.is_empty()) {
        match feature {
            b"multi_ack_detailed" => args.multi_ack_detailed = true,
            b"multi_ack" => args.multi_ack = true,
            b"no-done" => args.no_done = true,
            b"thin-pack" => args.thin_pack = true,
            b"ofs-delta" => args.ofs_delta = true,
            b"side-band-64k" => args.band = Some(Band::Large),
            b"side-band" if args.band != Some(Band::Large) => args.band = Some(Band::Small),
            b"no-progress" => args.no_progress = true,
            b"include-tag" => args.include_tag = true,
            b"deepen-relative" => args.deepen_relative = true,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_as_git_writes_them() {
        assert_eq!(Filter::parse(b"blob:none").unwrap(), Filter::NoBlobs);
        assert_eq!(
            Filter::parse(b"blob:limit=1k").unwrap(),
            Filter::BlobLimit(1024)
        );
        assert_eq!(
            Filter::parse(b"blob:limit=0").unwrap(),
            Filter::BlobLimit(0)
        );
        assert_eq!(Filter::parse(b"tree:0").unwrap(), Filter::TreeDepth(0));
        for bad in [
            &b"blob:limit="[..],
            b"blob:limit=-1",
            b"tree:1k",
            b"sparse:oid=x",
            b"",
        ] {
            assert!(Filter::parse(bad).is_err(), "{bad:?}");
        }
    }
}
