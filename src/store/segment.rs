//! Segments: immutable files of compressed objects, each with a sorted index file beside it.
//!
//! A write (an import, later a push) appends objects to a new segment under a temporary name,
//! writes its index, syncs both, and renames them to the BLAKE3 of the segment's bytes. Only
//! then does the repository's database register the segment (in the same transaction as the
//! ref updates), so a crash at any point leaves at most an unregistered file behind.
//!
//! Entries hold the whole object or a git-format delta against another object, as a zlib
//! stream (or as is, when zlib would not make them smaller). Blob deltas keep the bytes git had in its pack, so they stay as small as
//! git made them and can be sent to git clients again as they are. Layouts are specified in
//! `docs/object-format.md`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use memmap2::Mmap;

use crate::object::{Kind, ObjectId, Sha1};

use super::StoreError;

const SEGMENT_MAGIC: &[u8; 4] = b"FSEG";
const INDEX_MAGIC: &[u8; 4] = b"FSIX";
const FORMAT_VERSION: u32 = 1;
const SEGMENT_HEADER_LEN: u64 = 8;
/// magic, version, count, offset width + 3 bytes of padding.
const INDEX_HEADER_LEN: usize = 16;
const FANOUT_LEN: usize = 256 * 4;

/// Tag bit: the entry's data is stored as is, not as a zlib stream (tiny objects and deltas,
/// where zlib's framing costs more than it saves).
const TAG_UNCOMPRESSED: u8 = 0x80;
/// Below this size, data is stored uncompressed without trying zlib.
const MIN_COMPRESS: usize = 64;

const STORAGE_FULL: u8 = 0;
const STORAGE_DELTA_AT: u8 = 1;
const STORAGE_DELTA_OF: u8 = 2;

/// How an entry's content is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    Full,
    /// A delta against the entry at this offset of the same segment.
    DeltaAt(u64),
    /// A delta against the object with this id, wherever it is stored.
    DeltaOf(ObjectId),
}

/// An entry as found in a segment.
#[derive(Debug, Clone, Copy)]
pub struct RawEntry<'a> {
    pub kind: Kind,
    /// Size of the object's content (after applying the delta, for deltas).
    pub size: u64,
    pub storage: Storage,
    /// Size of the data once inflated (equals `size` for full entries).
    pub inflated_size: u64,
    /// Whether `data` is a zlib stream (otherwise it is the bytes themselves).
    pub compressed: bool,
    pub data: &'a [u8],
}

impl RawEntry<'_> {
    /// The data as a zlib stream, compressing it if it is stored uncompressed.
    pub fn zlib(&self) -> std::borrow::Cow<'_, [u8]> {
        if self.compressed {
            std::borrow::Cow::Borrowed(self.data)
        } else {
            std::borrow::Cow::Owned(zlib_compress(self.data))
        }
    }
}

struct IndexEntry {
    id: ObjectId,
    sha1: Sha1,
    kind: Kind,
    offset: u64,
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_uvarint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

thread_local! {
    /// Setting up a compressor costs more than compressing a small object, so each thread
    /// keeps one and resets it.
    static COMPRESSOR: RefCell<Compress> = RefCell::new(Compress::new(Compression::default(), true));
}

/// A zlib stream of `data` (default level, as git writes).
/// Inflates a zlib stream that must hold exactly `size` bytes; the error says what is wrong.
pub fn zlib_inflate_exact(zlib: &[u8], size: usize) -> Result<Vec<u8>, String> {
    // One byte of room past `size`, so that a longer stream shows, and an empty one has room.
    let mut out = Vec::with_capacity(size.saturating_add(1));
    let status = Decompress::new(true)
        .decompress_vec(zlib, &mut out, FlushDecompress::Finish)
        .map_err(|e| e.to_string())?;
    if status != Status::StreamEnd || out.len() != size {
        return Err(format!("it does not inflate to the recorded {size} bytes"));
    }
    Ok(out)
}

pub fn zlib_compress(data: &[u8]) -> Vec<u8> {
    COMPRESSOR.with_borrow_mut(|compressor| {
        compressor.reset();
        let mut out = Vec::with_capacity(data.len() + data.len() / 16 + 64);
        loop {
            let consumed = compressor.total_in() as usize;
            let status = compressor
                .compress_vec(&data[consumed..], &mut out, FlushCompress::Finish)
                .expect("compressing into memory cannot fail");
            if status == Status::StreamEnd {
                return out;
            }
            out.reserve(out.capacity().max(64));
        }
    })
}

/// Writes a new segment. Dropping it without `finish` removes the temporary file.
pub struct SegmentWriter {
    dir: PathBuf,
    tmp_path: PathBuf,
    file: Option<BufWriter<File>>,
    hasher: blake3::Hasher,
    pos: u64,
    entries: Vec<IndexEntry>,
    offsets: HashMap<ObjectId, u64>,
    header: Vec<u8>,
    lock: Option<File>,
}

/// A finished, synced segment that is not registered yet. It keeps the writers' lock until
/// it is dropped, so that a clean-up never takes it for a leftover before it is registered.
#[derive(Debug)]
pub struct NewSegment {
    pub name: String,
    pub object_count: u64,
    pub bytes: u64,
    _lock: Option<File>,
}

/// The lock file every writer of a segment directory holds (shared) while it writes, and a
/// clean-up of leftovers holds exclusively.
pub const WRITERS_LOCK: &str = "writers.lock";

pub(crate) fn writers_lock(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join(WRITERS_LOCK);
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::io("open", &path, e))
}

impl SegmentWriter {
    pub fn create(dir: &Path) -> Result<SegmentWriter, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io("create", dir, e))?;
        let lock = writers_lock(dir)?;
        lock.lock_shared()
            .map_err(|e| StoreError::io("lock", &dir.join(WRITERS_LOCK), e))?;
        let tmp = tempfile::Builder::new()
            .prefix("tmp-")
            .suffix(".seg")
            .tempfile_in(dir)
            .map_err(|e| StoreError::io("create a segment in", dir, e))?;
        let (file, tmp_path) = tmp
            .keep()
            .map_err(|e| StoreError::io("create a segment in", dir, e.error))?;
        let mut writer = SegmentWriter {
            dir: dir.to_owned(),
            tmp_path,
            file: Some(BufWriter::with_capacity(1 << 20, file)),
            hasher: blake3::Hasher::new(),
            pos: 0,
            entries: Vec::new(),
            offsets: HashMap::new(),
            header: Vec::with_capacity(64),
            lock: Some(lock),
        };
        let mut header = SEGMENT_MAGIC.to_vec();
        header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        writer.write(&header)?;
        Ok(writer)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let file = self.file.as_mut().expect("segment writer is open");
        file.write_all(bytes)
            .map_err(|e| StoreError::io("write", &self.tmp_path, e))?;
        self.hasher.update(bytes);
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// The offset of an object already written to this segment.
    pub fn offset_of(&self, id: &ObjectId) -> Option<u64> {
        self.offsets.get(id).copied()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends an entry whose zlib stream is already made (for example copied from a git
    /// pack). Returns the entry's offset; an object already in the segment is not written twice.
    #[allow(clippy::too_many_arguments)]
    pub fn append_zlib(
        &mut self,
        id: ObjectId,
        sha1: Sha1,
        kind: Kind,
        size: u64,
        storage: Storage,
        inflated_size: u64,
        zlib: &[u8],
    ) -> Result<u64, StoreError> {
        self.append_entry(id, sha1, kind, size, storage, inflated_size, true, zlib)
    }

    /// Appends data (an object or a delta), compressed unless that does not make it smaller.
    fn append_data(
        &mut self,
        id: ObjectId,
        sha1: Sha1,
        kind: Kind,
        size: u64,
        storage: Storage,
        data: &[u8],
    ) -> Result<u64, StoreError> {
        if let Some(offset) = self.offset_of(&id) {
            return Ok(offset);
        }
        let len = data.len() as u64;
        if data.len() >= MIN_COMPRESS {
            let zlib = zlib_compress(data);
            if zlib.len() < data.len() {
                return self.append_entry(id, sha1, kind, size, storage, len, true, &zlib);
            }
        }
        self.append_entry(id, sha1, kind, size, storage, len, false, data)
    }

    #[allow(clippy::too_many_arguments)]
    fn append_entry(
        &mut self,
        id: ObjectId,
        sha1: Sha1,
        kind: Kind,
        size: u64,
        storage: Storage,
        inflated_size: u64,
        compressed: bool,
        data: &[u8],
    ) -> Result<u64, StoreError> {
        if let Some(offset) = self.offset_of(&id) {
            return Ok(offset);
        }
        let offset = self.pos;
        let mut header = std::mem::take(&mut self.header);
        header.clear();
        let storage_code = match storage {
            Storage::Full => STORAGE_FULL,
            Storage::DeltaAt(_) => STORAGE_DELTA_AT,
            Storage::DeltaOf(_) => STORAGE_DELTA_OF,
        };
        let raw_flag = if compressed { 0 } else { TAG_UNCOMPRESSED };
        header.push(kind.code() | storage_code << 4 | raw_flag);
        put_uvarint(&mut header, size);
        match storage {
            Storage::Full => {}
            Storage::DeltaAt(base) => {
                assert!(base < offset, "a delta base precedes its delta");
                put_uvarint(&mut header, offset - base);
                put_uvarint(&mut header, inflated_size);
            }
            Storage::DeltaOf(base) => {
                header.extend_from_slice(base.as_bytes());
                put_uvarint(&mut header, inflated_size);
            }
        }
        put_uvarint(&mut header, data.len() as u64);
        let written = self.write(&header).and_then(|()| self.write(data));
        self.header = header;
        written?;
        self.entries.push(IndexEntry {
            id,
            sha1,
            kind,
            offset,
        });
        self.offsets.insert(id, offset);
        Ok(offset)
    }

    /// Appends a whole object.
    pub fn append_full(
        &mut self,
        id: ObjectId,
        sha1: Sha1,
        kind: Kind,
        content: &[u8],
    ) -> Result<u64, StoreError> {
        self.append_data(id, sha1, kind, content.len() as u64, Storage::Full, content)
    }

    /// Appends an object as a git-format delta against `base`.
    pub fn append_delta(
        &mut self,
        id: ObjectId,
        sha1: Sha1,
        kind: Kind,
        size: u64,
        base: Storage,
        delta: &[u8],
    ) -> Result<u64, StoreError> {
        self.append_data(id, sha1, kind, size, base, delta)
    }

    /// Syncs the segment and its index and gives them their final names. Returns `None` for
    /// an empty segment (nothing is kept).
    pub fn finish(mut self) -> Result<Option<NewSegment>, StoreError> {
        let file = self.file.take().expect("segment writer is open");
        let file = file
            .into_inner()
            .map_err(|e| StoreError::io("write", &self.tmp_path, e.into_error()))?;
        if self.entries.is_empty() {
            drop(file);
            let _ = std::fs::remove_file(&self.tmp_path);
            return Ok(None);
        }
        file.sync_all()
            .map_err(|e| StoreError::io("sync", &self.tmp_path, e))?;
        drop(file);
        let checksum = *self.hasher.finalize().as_bytes();
        let name = ObjectId(checksum).to_hex();
        let index = build_index(&mut self.entries, self.pos, &checksum);

        let seg_path = self.dir.join(format!("{name}.seg"));
        let idx_path = self.dir.join(format!("{name}.idx"));
        let tmp_idx = self.dir.join(format!("tmp-{name}.idx"));
        write_synced(&tmp_idx, &index)?;
        std::fs::rename(&tmp_idx, &idx_path).map_err(|e| StoreError::io("rename", &tmp_idx, e))?;
        std::fs::rename(&self.tmp_path, &seg_path)
            .map_err(|e| StoreError::io("rename", &self.tmp_path, e))?;
        sync_dir(&self.dir)?;
        Ok(Some(NewSegment {
            name,
            object_count: self.entries.len() as u64,
            bytes: self.pos + index.len() as u64,
            _lock: self.lock.take(),
        }))
    }
}

impl Drop for SegmentWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp_path);
        }
    }
}

pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut file = File::create(path).map_err(|e| StoreError::io("create", path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| StoreError::io("write", path, e))
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("sync", dir, e))
}

fn fanout(keys: impl Iterator<Item = u8>, out: &mut Vec<u8>) {
    let mut counts = [0u32; 256];
    for k in keys {
        counts[k as usize] += 1;
    }
    let mut total = 0u32;
    for c in counts {
        total += c;
        out.extend_from_slice(&total.to_le_bytes());
    }
}

fn build_index(entries: &mut [IndexEntry], segment_len: u64, checksum: &[u8; 32]) -> Vec<u8> {
    entries.sort_unstable_by_key(|a| a.id);
    let n = entries.len();
    let wide = segment_len > u64::from(u32::MAX);
    let mut out = Vec::with_capacity(INDEX_HEADER_LEN + 2 * FANOUT_LEN + n * 66 + 64);
    out.extend_from_slice(INDEX_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(n as u32).to_le_bytes());
    out.extend_from_slice(&[if wide { 8 } else { 4 }, 0, 0, 0]);
    fanout(entries.iter().map(|e| e.id.0[0]), &mut out);
    entries.iter().for_each(|e| out.extend_from_slice(&e.id.0));
    entries
        .iter()
        .for_each(|e| out.extend_from_slice(&e.sha1.0));
    entries.iter().for_each(|e| out.push(e.kind.code()));
    for e in entries.iter() {
        if wide {
            out.extend_from_slice(&e.offset.to_le_bytes());
        } else {
            out.extend_from_slice(&(e.offset as u32).to_le_bytes());
        }
    }
    let mut by_sha1: Vec<u32> = (0..n as u32).collect();
    by_sha1.sort_unstable_by(|&a, &b| entries[a as usize].sha1.cmp(&entries[b as usize].sha1));
    fanout(
        by_sha1.iter().map(|&i| entries[i as usize].sha1.0[0]),
        &mut out,
    );
    by_sha1
        .iter()
        .for_each(|i| out.extend_from_slice(&i.to_le_bytes()));
    out.extend_from_slice(checksum);
    let own = *blake3::hash(&out).as_bytes();
    out.extend_from_slice(&own);
    out
}

/// An open, registered segment.
pub struct Segment {
    name: String,
    data: Mmap,
    index: Mmap,
    count: usize,
    offset_width: usize,
    ids_at: usize,
    sha1s_at: usize,
    kinds_at: usize,
    offsets_at: usize,
    sha1_fanout_at: usize,
    sha1_order_at: usize,
}

fn map(path: &Path) -> Result<Mmap, StoreError> {
    let file = File::open(path).map_err(|e| StoreError::io("open", path, e))?;
    // SAFETY: segment files are never modified after they are renamed into place; they are
    // only ever replaced by new files with other names.
    unsafe { Mmap::map(&file) }.map_err(|e| StoreError::io("map", path, e))
}

impl Segment {
    pub fn open(dir: &Path, name: &str) -> Result<Segment, StoreError> {
        let idx_path = dir.join(format!("{name}.idx"));
        let seg_path = dir.join(format!("{name}.seg"));
        let index = map(&idx_path)?;
        let data = map(&seg_path)?;
        let corrupt = |what: &str| StoreError::Corrupt(format!("segment index {name}: {what}"));
        if index.len() < INDEX_HEADER_LEN + 2 * FANOUT_LEN + 64 || &index[..4] != INDEX_MAGIC {
            return Err(corrupt("not a segment index"));
        }
        let version = u32::from_le_bytes(index[4..8].try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            return Err(corrupt("unknown index version"));
        }
        let count = u32::from_le_bytes(index[8..12].try_into().expect("4 bytes")) as usize;
        let offset_width = match index[12] {
            4 => 4,
            8 => 8,
            _ => return Err(corrupt("bad offset width")),
        };
        let ids_at = INDEX_HEADER_LEN + FANOUT_LEN;
        let sha1s_at = ids_at + count * 32;
        let kinds_at = sha1s_at + count * 20;
        let offsets_at = kinds_at + count;
        let sha1_fanout_at = offsets_at + count * offset_width;
        let sha1_order_at = sha1_fanout_at + FANOUT_LEN;
        let end = sha1_order_at + count * 4;
        if index.len() != end + 64 {
            return Err(corrupt("wrong size"));
        }
        if blake3::hash(&index[..end + 32]).as_bytes() != &index[end + 32..] {
            return Err(corrupt("checksum mismatch"));
        }
        if data.len() < SEGMENT_HEADER_LEN as usize || &data[..4] != SEGMENT_MAGIC {
            return Err(StoreError::Corrupt(format!(
                "segment {name}: not a segment"
            )));
        }
        Ok(Segment {
            name: name.to_owned(),
            data,
            index,
            count,
            offset_width,
            ids_at,
            sha1s_at,
            kinds_at,
            offsets_at,
            sha1_fanout_at,
            sha1_order_at,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether the segment's bytes still hash to its recorded checksum (and name).
    pub fn verify_checksum(&self) -> bool {
        let recorded = &self.index[self.index.len() - 64..self.index.len() - 32];
        blake3::hash(&self.data).as_bytes() == recorded
            && ObjectId::from_bytes(recorded).is_some_and(|id| id.to_hex() == self.name)
    }

    fn fanout_range(&self, fanout_at: usize, first: u8) -> (usize, usize) {
        let read = |i: usize| {
            u32::from_le_bytes(
                self.index[fanout_at + i * 4..fanout_at + i * 4 + 4]
                    .try_into()
                    .expect("4 bytes"),
            ) as usize
        };
        let end = read(first as usize).min(self.count);
        let start = if first == 0 {
            0
        } else {
            read(first as usize - 1)
        };
        (start.min(end), end)
    }

    pub fn id_at(&self, pos: usize) -> ObjectId {
        let at = self.ids_at + pos * 32;
        ObjectId::from_bytes(&self.index[at..at + 32]).expect("32 bytes")
    }

    pub fn sha1_at(&self, pos: usize) -> Sha1 {
        let at = self.sha1s_at + pos * 20;
        Sha1::from_bytes(&self.index[at..at + 20]).expect("20 bytes")
    }

    pub fn kind_at(&self, pos: usize) -> Option<Kind> {
        Kind::from_code(self.index[self.kinds_at + pos])
    }

    pub fn offset_at(&self, pos: usize) -> u64 {
        let at = self.offsets_at + pos * self.offset_width;
        if self.offset_width == 8 {
            u64::from_le_bytes(self.index[at..at + 8].try_into().expect("8 bytes"))
        } else {
            u64::from(u32::from_le_bytes(
                self.index[at..at + 4].try_into().expect("4 bytes"),
            ))
        }
    }

    fn sha1_order(&self, i: usize) -> usize {
        let at = self.sha1_order_at + i * 4;
        u32::from_le_bytes(self.index[at..at + 4].try_into().expect("4 bytes")) as usize
    }

    /// The position of an object by native id.
    pub fn find(&self, id: &ObjectId) -> Option<usize> {
        let (mut lo, mut hi) = self.fanout_range(self.ids_at - FANOUT_LEN, id.0[0]);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.id_at(mid).cmp(id) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// The position of an object by SHA-1.
    pub fn find_sha1(&self, sha1: &Sha1) -> Option<usize> {
        let (mut lo, mut hi) = self.fanout_range(self.sha1_fanout_at, sha1.0[0]);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let pos = self.sha1_order(mid);
            if pos >= self.count {
                return None;
            }
            match self.sha1_at(pos).cmp(sha1) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(pos),
            }
        }
        None
    }

    /// Positions whose native id or SHA-1 starts with `prefix` (for `show-id`).
    pub fn positions_with_prefix(&self, prefix: &crate::object::HexPrefix, out: &mut Vec<usize>) {
        let first = prefix.lower_bound(1)[0];
        let firsts: Vec<u8> = if prefix.digits >= 2 {
            vec![first]
        } else {
            (first..=first | 0x0f).collect()
        };
        for b in firsts {
            let (lo, hi) = self.fanout_range(self.ids_at - FANOUT_LEN, b);
            out.extend((lo..hi).filter(|&p| prefix.matches(self.id_at(p).as_bytes())));
            let (lo, hi) = self.fanout_range(self.sha1_fanout_at, b);
            out.extend(
                (lo..hi)
                    .map(|i| self.sha1_order(i))
                    .filter(|&p| p < self.count && prefix.matches(self.sha1_at(p).as_bytes())),
            );
        }
    }

    /// Reads the entry at `offset`.
    pub fn entry(&self, offset: u64) -> Result<RawEntry<'_>, StoreError> {
        decode_entry(&self.name, &self.data, offset)
    }
}

/// Decodes the entry at `offset` of a segment's bytes; what `Segment::entry` reads, callable
/// on any bytes (fuzzing). `name` only labels the error.
pub fn decode_entry<'a>(
    name: &str,
    data: &'a [u8],
    offset: u64,
) -> Result<RawEntry<'a>, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("segment {name}: bad entry at offset {offset}"));
    let mut pos = usize::try_from(offset).map_err(|_| corrupt())?;
    if pos < SEGMENT_HEADER_LEN as usize || pos >= data.len() {
        return Err(corrupt());
    }
    let tag = data[pos];
    pos += 1;
    let compressed = tag & TAG_UNCOMPRESSED == 0;
    let kind = Kind::from_code(tag & 0x0f).ok_or_else(corrupt)?;
    let size = get_uvarint(data, &mut pos).ok_or_else(corrupt)?;
    let (storage, inflated_size) = match (tag & !TAG_UNCOMPRESSED) >> 4 {
        STORAGE_FULL => (Storage::Full, size),
        STORAGE_DELTA_AT => {
            let distance = get_uvarint(data, &mut pos).ok_or_else(corrupt)?;
            let base = offset
                .checked_sub(distance)
                .filter(|&b| b >= SEGMENT_HEADER_LEN && distance > 0)
                .ok_or_else(corrupt)?;
            let inflated = get_uvarint(data, &mut pos).ok_or_else(corrupt)?;
            (Storage::DeltaAt(base), inflated)
        }
        STORAGE_DELTA_OF => {
            let id = data
                .get(pos..pos + 32)
                .and_then(ObjectId::from_bytes)
                .ok_or_else(corrupt)?;
            pos += 32;
            let inflated = get_uvarint(data, &mut pos).ok_or_else(corrupt)?;
            (Storage::DeltaOf(id), inflated)
        }
        _ => return Err(corrupt()),
    };
    let len = get_uvarint(data, &mut pos).ok_or_else(corrupt)?;
    let end = usize::try_from(len)
        .ok()
        .and_then(|z| pos.checked_add(z))
        .filter(|&end| end <= data.len())
        .ok_or_else(corrupt)?;
    Ok(RawEntry {
        kind,
        size,
        storage,
        inflated_size,
        compressed,
        data: &data[pos..end],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::HexPrefix;

    #[test]
    fn write_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::create(dir.path()).unwrap();
        let mut ids = Vec::new();
        for i in 0..300u32 {
            let content = format!("object {i}").repeat(i as usize % 7 + 1);
            let id = ObjectId::for_blob(content.as_bytes());
            let sha1 = crate::git::git_sha1(Kind::Blob, content.as_bytes());
            let offset = w
                .append_full(id, sha1, Kind::Blob, content.as_bytes())
                .unwrap();
            assert_eq!(w.append_full(id, sha1, Kind::Blob, b"").unwrap(), offset);
            ids.push((id, sha1, offset, content));
        }
        let delta_id = ObjectId([7; 32]);
        let delta_offset = w
            .append_delta(
                delta_id,
                Sha1([7; 20]),
                Kind::Tree,
                10,
                Storage::DeltaAt(ids[3].2),
                b"delta",
            )
            .unwrap();
        let new = w.finish().unwrap().unwrap();
        assert_eq!(new.object_count, 301);
        let seg = Segment::open(dir.path(), &new.name).unwrap();
        assert!(seg.verify_checksum());
        for (id, sha1, offset, content) in &ids {
            let pos = seg.find(id).unwrap();
            assert_eq!(seg.find_sha1(sha1), Some(pos));
            assert_eq!(seg.offset_at(pos), *offset);
            assert_eq!(seg.kind_at(pos), Some(Kind::Blob));
            let entry = seg.entry(*offset).unwrap();
            assert_eq!(entry.size, content.len() as u64);
            assert_eq!(entry.storage, Storage::Full);
        }
        let entry = seg.entry(delta_offset).unwrap();
        assert_eq!(entry.storage, Storage::DeltaAt(ids[3].2));
        assert_eq!((entry.size, entry.inflated_size), (10, 5));
        assert!(seg.find(&ObjectId([9; 32])).is_none());
        assert!(seg.find_sha1(&Sha1([9; 20])).is_none());

        let hex = ids[5].0.to_hex();
        let mut found = Vec::new();
        seg.positions_with_prefix(&HexPrefix::parse(&hex[..8]).unwrap(), &mut found);
        assert!(found.contains(&seg.find(&ids[5].0).unwrap()));
    }

    #[test]
    fn zlib_streams_inflate_back() {
        use std::io::Read;
        for data in [
            &b""[..],
            b"x",
            &vec![7u8; 1 << 20],
            &(0..200_000u32)
                .flat_map(|i| i.to_le_bytes())
                .collect::<Vec<_>>(),
        ] {
            let z = zlib_compress(data);
            let mut back = Vec::new();
            flate2::read::ZlibDecoder::new(&z[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data);
        }
    }

    #[test]
    fn dropped_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::create(dir.path()).unwrap();
        w.append_full(ObjectId([1; 32]), Sha1([1; 20]), Kind::Blob, b"x")
            .unwrap();
        drop(w);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, [WRITERS_LOCK]);
    }

    #[test]
    fn corrupt_index_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::create(dir.path()).unwrap();
        w.append_full(ObjectId([1; 32]), Sha1([1; 20]), Kind::Blob, b"x")
            .unwrap();
        let new = w.finish().unwrap().unwrap();
        let idx = dir.path().join(format!("{}.idx", new.name));
        let mut bytes = std::fs::read(&idx).unwrap();
        bytes[INDEX_HEADER_LEN + FANOUT_LEN] ^= 1;
        std::fs::write(&idx, bytes).unwrap();
        assert!(matches!(
            Segment::open(dir.path(), &new.name),
            Err(StoreError::Corrupt(_))
        ));
    }
}
