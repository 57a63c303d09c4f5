//! One entry of a segment file (`store::segment::decode_entry`, what `Segment::entry`
//! reads): the input follows a segment header, entries are decoded at the first offset, at
//! each following entry, at an offset the input picks, and at the bases their deltas name;
//! then each entry's content is read the way `Repo::read_content` does (bounded inflate,
//! delta chains within the segment resolved, `DeltaOf` bases left out as they live in other
//! segments), and trees, commits and tags are decoded from their native encoding.
#![no_main]

use std::io::Read;

use flate2::{Decompress, FlushDecompress, Status};
use forge::object::{self, Kind};
use forge::store::segment::{RawEntry, Storage, decode_entry};
use libfuzzer_sys::fuzz_target;

/// How a segment begins (`SEGMENT_MAGIC` and `FORMAT_VERSION` in `src/store/segment.rs`).
const HEADER: &[u8; 8] = b"FSEG\x01\x00\x00\x00";
/// Largest inflated size the target reads (the store allows 8 GiB).
const MAX_INFLATE: u64 = 1 << 20;
/// Longest delta chain the target follows (the store allows 10,000).
const MAX_CHAIN: usize = 16;

/// `entry_data` in `src/store/repo.rs`, with a smaller bound.
fn entry_data(entry: &RawEntry<'_>) -> Option<Vec<u8>> {
    if entry.compressed {
        if entry.inflated_size > MAX_INFLATE {
            return None;
        }
        let mut out = Vec::with_capacity(entry.inflated_size as usize);
        let mut z = Decompress::new(true);
        let status = z
            .decompress_vec(entry.data, &mut out, FlushDecompress::Finish)
            .ok()?;
        (status == Status::StreamEnd && out.len() as u64 == entry.inflated_size).then_some(out)
    } else {
        (entry.data.len() as u64 == entry.inflated_size).then(|| entry.data.to_vec())
    }
}

/// The content of the entry at `offset`, as `Repo::read_content` resolves it.
fn read_content(segment: &[u8], offset: u64) -> Option<(Kind, Vec<u8>)> {
    let first = decode_entry("fuzz", segment, offset).ok()?;
    let mut chain = Vec::new();
    let mut at = offset;
    let mut current = loop {
        let entry = decode_entry("fuzz", segment, at).ok()?;
        match entry.storage {
            Storage::Full => break entry_data(&entry)?,
            Storage::DeltaAt(base) => {
                assert!(base < at, "a delta base precedes its delta");
                chain.push(entry);
                at = base;
            }
            Storage::DeltaOf(_) => return None,
        }
        if chain.len() > MAX_CHAIN {
            return None;
        }
    };
    for entry in chain.iter().rev() {
        let delta = entry_data(entry)?;
        let mut out = Vec::new();
        forge::delta::apply(&current, &delta, &mut out, entry.size.min(MAX_INFLATE)).ok()?;
        assert!(out.len() as u64 <= entry.size);
        if out.len() as u64 != entry.size {
            return None;
        }
        current = out;
    }
    Some((first.kind, current))
}

fn check_entry(segment: &[u8], entry: &RawEntry<'_>) {
    // The data lies inside the segment, after the header.
    let start = entry.data.as_ptr() as usize - segment.as_ptr() as usize;
    assert!(start >= HEADER.len() && start + entry.data.len() <= segment.len());
    if entry.storage == Storage::Full {
        assert_eq!(entry.inflated_size, entry.size);
    }
    // `zlib` (how entries are sent to git clients) inflates to the stored bytes.
    if !entry.compressed {
        let zlib = entry.zlib();
        let mut back = Vec::new();
        flate2::read::ZlibDecoder::new(&zlib[..])
            .read_to_end(&mut back)
            .expect("our own zlib stream inflates");
        assert_eq!(back, entry.data);
    }
}

fn read_native(kind: Kind, content: &[u8]) {
    if kind == Kind::Blob {
        return;
    }
    let _ = object::decode(kind, content);
    let _ = object::tree_header_len(content);
    match kind {
        Kind::Tree => {
            let _ = object::for_each_tree_child(content, |_, _, _| {});
        }
        Kind::Commit => {
            let _ = object::commit_links(content);
        }
        Kind::Tag => {
            let _ = object::tag_target(content);
        }
        Kind::Blob => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let mut segment = Vec::with_capacity(HEADER.len() + data.len());
    segment.extend_from_slice(HEADER);
    segment.extend_from_slice(data);
    let segment = &segment[..];

    let mut offsets = vec![HEADER.len() as u64];
    if data.len() >= 2 {
        offsets.push(u64::from(u16::from_le_bytes([data[0], data[1]])));
        offsets.push(segment.len() as u64 - 1);
    }
    offsets.push(u64::MAX);
    // The entries one after another, from the first, as a scan of the segment reads them.
    let mut at = HEADER.len() as u64;
    for _ in 0..32 {
        let Ok(entry) = decode_entry("fuzz", segment, at) else {
            break;
        };
        let end = (entry.data.as_ptr() as usize - segment.as_ptr() as usize + entry.data.len()) as u64;
        assert!(end > at);
        if let Storage::DeltaAt(base) = entry.storage {
            offsets.push(base);
        }
        offsets.push(end);
        at = end;
    }
    offsets.sort_unstable();
    offsets.dedup();

    for &offset in &offsets {
        let Ok(entry) = decode_entry("fuzz", segment, offset) else {
            continue;
        };
        check_entry(segment, &entry);
        if let Some((kind, content)) = read_content(segment, offset) {
            assert_eq!(content.len() as u64, entry.size);
            read_native(kind, &content);
        }
    }
});
