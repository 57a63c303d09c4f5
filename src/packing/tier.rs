//! The pack tier: a git pack per repository, derived from the native store, holding every
//! object reachable from its branches and tags with git deltas. A full clone whose wants
//! equal the pack's tips is this file streamed as it is; other fetches copy entries from it.
//!
//! It is derived data: deleting `packs/` loses nothing, `forge repack` rebuilds it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::git::pack::kind_of_type_code;
use crate::object::{Kind, Sha1};
use crate::store::StoreError;

pub const TIER_DIR: &str = "packs";
const MANIFEST: &str = "clone.json";

/// What the clone pack covers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// `pack-<checksum>`: the `.pack` and `.idx` file names without extension.
    pub pack: String,
    /// The refs (branches and tags) the pack was made from, with their SHA-1s.
    pub refs: Vec<(String, String)>,
    pub objects: u64,
    pub bytes: u64,
}

impl Manifest {
    /// The distinct objects the refs point at: a request wanting exactly these gets the pack.
    pub fn tips(&self) -> Vec<Sha1> {
        let mut tips: Vec<Sha1> = self
            .refs
            .iter()
            .filter_map(|(_, hex)| Sha1::from_hex(hex.as_bytes()).ok())
            .collect();
        tips.sort_unstable();
        tips.dedup();
        tips
    }
}

/// An entry of the clone pack.
#[derive(Debug, Clone, Copy)]
pub enum TierEntryKind {
    Whole(Kind),
    /// Delta against the entry at this offset.
    OfsDelta(u64),
}

pub struct TierEntry<'a> {
    pub kind: TierEntryKind,
    /// Size of the inflated object, or of the inflated delta.
    pub size: u64,
    pub zlib: &'a [u8],
}

pub struct ClonePack {
    pub manifest: Manifest,
    pack: memmap2::Mmap,
    idx: memmap2::Mmap,
    count: usize,
    /// Entry offsets, ascending (an entry ends where the next begins).
    offsets: Vec<u64>,
    reverse: std::sync::OnceLock<std::collections::HashMap<u64, Sha1>>,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::io("read", path, e)
}

fn corrupt(path: &Path, what: &str) -> StoreError {
    StoreError::Corrupt(format!("{}: {what}", path.display()))
}

pub fn tier_dir(repo_dir: &Path) -> PathBuf {
    repo_dir.join(TIER_DIR)
}

/// Identifies one written manifest: it is replaced by a rename, so a new one has a new
/// inode (and usually another size and time). `None` when there is no clone pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManifestStamp {
    inode: u64,
    len: u64,
    modified: Option<std::time::SystemTime>,
}

pub fn manifest_stamp(repo_dir: &Path) -> Result<Option<ManifestStamp>, StoreError> {
    use std::os::unix::fs::MetadataExt;
    let path = tier_dir(repo_dir).join(MANIFEST);
    match std::fs::metadata(&path) {
        Ok(meta) => Ok(Some(ManifestStamp {
            inode: meta.ino(),
            len: meta.len(),
            modified: meta.modified().ok(),
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io("read", &path, e)),
    }
}

pub fn read_manifest(repo_dir: &Path) -> Result<Option<Manifest>, StoreError> {
    let path = tier_dir(repo_dir).join(MANIFEST);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| corrupt(&path, &e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io("read", &path, e)),
    }
}

pub fn write_manifest(repo_dir: &Path, manifest: &Manifest) -> Result<(), StoreError> {
    let dir = tier_dir(repo_dir);
    let json = serde_json::to_vec_pretty(manifest).expect("serialisable");
    let tmp = dir.join(format!("{MANIFEST}.tmp"));
    crate::store::segment::write_synced(&tmp, &json)?;
    let path = dir.join(MANIFEST);
    std::fs::rename(&tmp, &path).map_err(|e| StoreError::io("rename", &path, e))?;
    crate::store::segment::sync_dir(&dir)
}

impl ClonePack {
    /// Opens the repository's clone pack; `None` when there is none.
    pub fn open(repo_dir: &Path) -> Result<Option<ClonePack>, StoreError> {
        let Some(manifest) = read_manifest(repo_dir)? else {
            return Ok(None);
        };
        let dir = tier_dir(repo_dir);
        let pack_path = dir.join(format!("{}.pack", manifest.pack));
        let idx_path = dir.join(format!("{}.idx", manifest.pack));
        let map = |path: &Path| -> Result<memmap2::Mmap, StoreError> {
            let file = std::fs::File::open(path).map_err(io_error(path))?;
            // SAFETY: pack files are written once under a temporary name and never modified.
            unsafe { memmap2::Mmap::map(&file) }.map_err(io_error(path))
        };
        let pack = map(&pack_path)?;
        let idx = map(&idx_path)?;
        if idx.len() < 8 + 1024 + 40 || idx[..8] != [0xff, b't', b'O', b'c', 0, 0, 0, 2] {
            return Err(corrupt(&idx_path, "not a version 2 pack index"));
        }
        let count =
            u32::from_be_bytes(idx[8 + 255 * 4..8 + 256 * 4].try_into().expect("4")) as usize;
        let small_end = 8 + 1024 + count * 28;
        if idx.len() < small_end + 40 || pack.len() < 32 || &pack[..4] != b"PACK" {
            return Err(corrupt(&pack_path, "truncated pack or index"));
        }
        let mut tier = ClonePack {
            manifest,
            pack,
            idx,
            count,
            offsets: Vec::with_capacity(count),
            reverse: std::sync::OnceLock::new(),
        };
        tier.offsets = (0..count).map(|i| tier.offset_at(i)).collect();
        tier.offsets.sort_unstable();
        if tier
            .offsets
            .last()
            .is_some_and(|&o| o >= tier.pack.len() as u64 - 20)
        {
            return Err(corrupt(&pack_path, "index points beyond the pack"));
        }
        Ok(Some(tier))
    }

    pub fn bytes(&self) -> &[u8] {
        &self.pack
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn sha1_at(&self, i: usize) -> Sha1 {
        let at = 8 + 1024 + i * 20;
        Sha1::from_bytes(&self.idx[at..at + 20]).expect("20 bytes")
    }

    fn offset_at(&self, i: usize) -> u64 {
        let at = 8 + 1024 + self.count * 24 + i * 4;
        let small = u32::from_be_bytes(self.idx[at..at + 4].try_into().expect("4"));
        if small & 0x8000_0000 == 0 {
            return u64::from(small);
        }
        let large = 8 + 1024 + self.count * 28 + (small & 0x7fff_ffff) as usize * 8;
        self.idx
            .get(large..large + 8)
            .map_or(u64::MAX, |b| u64::from_be_bytes(b.try_into().expect("8")))
    }

    /// The offset of an object in the pack.
    pub fn find(&self, sha1: &Sha1) -> Option<u64> {
        let first = sha1.0[0] as usize;
        let fanout = |i: usize| {
            u32::from_be_bytes(self.idx[8 + i * 4..12 + i * 4].try_into().expect("4")) as usize
        };
        let (mut lo, mut hi) = (
            if first == 0 { 0 } else { fanout(first - 1) },
            fanout(first),
        );
        hi = hi.min(self.count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.sha1_at(mid).cmp(sha1) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(self.offset_at(mid)),
            }
        }
        None
    }

    /// Reads the entry at `offset`: its type, size, base and zlib stream.
    pub fn entry(&self, offset: u64) -> Result<TierEntry<'_>, StoreError> {
        let bad = |what: &str| StoreError::Corrupt(format!("clone pack entry at {offset}: {what}"));
        let i = self
            .offsets
            .binary_search(&offset)
            .map_err(|_| bad("no entry starts here"))?;
        let end = self
            .offsets
            .get(i + 1)
            .copied()
            .unwrap_or(self.pack.len() as u64 - 20) as usize;
        let bytes = &self.pack[offset as usize..end];
        let mut pos = 0;
        let mut byte = *bytes.first().ok_or_else(|| bad("empty"))?;
        let type_code = (byte >> 4) & 7;
        let mut size = u64::from(byte & 0x0f);
        let mut shift = 4;
        while byte & 0x80 != 0 {
            pos += 1;
            byte = *bytes.get(pos).ok_or_else(|| bad("truncated header"))?;
            if shift > 57 {
                return Err(bad("size overflows"));
            }
            size |= u64::from(byte & 0x7f) << shift;
            shift += 7;
        }
        pos += 1;
        let kind = match type_code {
            1..=4 => TierEntryKind::Whole(kind_of_type_code(type_code).ok_or_else(|| bad("type"))?),
            6 => {
                let mut byte = *bytes.get(pos).ok_or_else(|| bad("truncated offset"))?;
                pos += 1;
                let mut distance = u64::from(byte & 0x7f);
                while byte & 0x80 != 0 {
                    byte = *bytes.get(pos).ok_or_else(|| bad("truncated offset"))?;
                    pos += 1;
                    distance = ((distance + 1) << 7) | u64::from(byte & 0x7f);
                    if distance > offset {
                        return Err(bad("base offset before the pack"));
                    }
                }
                TierEntryKind::OfsDelta(
                    offset
                        .checked_sub(distance)
                        .filter(|_| distance > 0)
                        .ok_or_else(|| bad("base offset"))?,
                )
            }
            _ => return Err(bad("unexpected entry type")),
        };
        Ok(TierEntry {
            kind,
            size,
            zlib: &bytes[pos..],
        })
    }

    /// The SHA-1 of the entry at `offset` (a delta base). The offset → id table is built
    /// on first use.
    pub fn sha1_at_offset(&self, offset: u64) -> Option<Sha1> {
        self.reverse
            .get_or_init(|| {
                (0..self.count)
                    .map(|i| (self.offset_at(i), self.sha1_at(i)))
                    .collect()
            })
            .get(&offset)
            .copied()
    }
}
