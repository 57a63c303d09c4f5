//! Writing translated objects and blobs into the new segment.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;
use std::sync::mpsc::Receiver;

use bstr::BString;

use crate::delta::DeltaIndex;
use crate::gitx::{EntryStorage, SourcePack};
use crate::object::{IdMap, Kind, ObjectId, Sha1, tree_header_len};
use crate::progress::Progress;
use crate::store::segment::{SegmentWriter, Storage};

use super::{BlobSource, ImportError, ImportReport, ObjectRefusal, Scan};

/// git's default `pack.depth`; longer chains make reads slower for little gain.
const MAX_TREE_DELTA_DEPTH: u32 = 50;
/// Longest blob delta chain accepted: git's own limit on `--depth`, so every read of a
/// stored blob stays bounded.
pub(super) const MAX_DELTA_CHAIN: u32 = 4095;

/// A translated tree, commit or tag on its way to the segment.
pub(super) struct NodeWrite {
    pub sha1: Sha1,
    pub id: ObjectId,
    pub kind: Kind,
    pub path: BString,
    /// The native id of this tree's previous version, if known.
    pub base_hint: Option<ObjectId>,
    pub encoded: Vec<u8>,
}

/// Translation results in batches, each numbered by its place in the walk (`None`: the
/// object could not be translated).
pub(super) type Results = Vec<(u64, Option<NodeWrite>)>;

#[derive(Default)]
pub(super) struct WrittenNodes {
    pub trees: u64,
    pub commits: u64,
    pub tags: u64,
    pub tree_deltas: u64,
}

/// A tree recently written, kept as a possible delta base.
struct TreeBase {
    offset: u64,
    encoded: Vec<u8>,
    depth: u32,
    /// The whole (undeltified) tree at the start of this one's delta chain.
    chain_start: ObjectId,
}

/// Recently written trees, least recently used evicted first, bounded in bytes.
struct TreeBases {
    budget: usize,
    used: usize,
    tick: u64,
    trees: IdMap<ObjectId, (Rc<TreeBase>, u64)>,
    order: std::collections::VecDeque<(ObjectId, u64)>,
}

impl TreeBases {
    fn get(&mut self, id: &ObjectId) -> Option<Rc<TreeBase>> {
        self.tick += 1;
        let tick = self.tick;
        let (base, used) = self.trees.get_mut(id)?;
        *used = tick;
        self.order.push_back((*id, tick));
        Some(base.clone())
    }

    fn insert(&mut self, id: ObjectId, base: TreeBase) {
        self.tick += 1;
        self.used += base.encoded.len();
        self.trees.insert(id, (Rc::new(base), self.tick));
        self.order.push_back((id, self.tick));
        while self.used > self.budget {
            let Some((old, tick)) = self.order.pop_front() else {
                break;
            };
            if self.trees.get(&old).is_some_and(|(_, used)| *used == tick)
                && let Some((b, _)) = self.trees.remove(&old)
            {
                self.used -= b.encoded.len();
            }
        }
    }
}

/// Writes translated nodes in the order of the walk (restoring it from the numbers: several
/// workers translate at once). A tree is stored as a delta against its
/// previous version (or, failing that, the last tree written at its path), and against the
/// start of that version's chain when the chain is already `MAX_TREE_DELTA_DEPTH` long.
pub(super) fn write_nodes(
    results: Receiver<Results>,
    writer: &mut SegmentWriter,
    tree_base_cache: usize,
) -> Result<WrittenNodes, ImportError> {
    let mut written = WrittenNodes::default();
    let mut bases = TreeBases {
        budget: tree_base_cache,
        used: 0,
        tick: 0,
        trees: IdMap::default(),
        order: std::collections::VecDeque::new(),
    };
    let mut last_at_path: HashMap<BString, ObjectId> = HashMap::new();
    let mut delta = Vec::new();
    let mut next = 0u64;
    let mut early: BTreeMap<u64, Option<NodeWrite>> = BTreeMap::new();
    let in_order = results.into_iter().flatten().flat_map(|(seq, job)| {
        early.insert(seq, job);
        let mut ready = Vec::new();
        while let Some(job) = early.remove(&next) {
            ready.push(job);
            next += 1;
        }
        ready
    });
    for job in in_order.flatten() {
        if job.kind != Kind::Tree {
            if job.kind == Kind::Commit {
                written.commits += 1;
            } else {
                written.tags += 1;
            }
            writer.append_full(job.id, job.sha1, job.kind, &job.encoded)?;
            continue;
        }
        written.trees += 1;
        let mut candidates = Vec::with_capacity(2);
        for id in [job.base_hint, last_at_path.get(&job.path).copied()]
            .into_iter()
            .flatten()
        {
            if let Some(base) = bases.get(&id) {
                if base.depth < MAX_TREE_DELTA_DEPTH {
                    candidates.push(base);
                } else if let Some(start) = bases.get(&base.chain_start) {
                    candidates.push(start);
                }
            }
        }
        let chosen = candidates
            .into_iter()
            .find(|base| tree_delta(&base.encoded, &job.encoded, &mut delta));
        let (offset, depth, chain_start) = match chosen {
            Some(base) => {
                written.tree_deltas += 1;
                let offset = writer.append_delta(
                    job.id,
                    job.sha1,
                    Kind::Tree,
                    job.encoded.len() as u64,
                    Storage::DeltaAt(base.offset),
                    &delta,
                )?;
                (offset, base.depth + 1, base.chain_start)
            }
            None => (
                writer.append_full(job.id, job.sha1, Kind::Tree, &job.encoded)?,
                0,
                job.id,
            ),
        };
        last_at_path.insert(job.path, job.id);
        bases.insert(
            job.id,
            TreeBase {
                offset,
                encoded: job.encoded,
                depth,
                chain_start,
            },
        );
    }
    Ok(written)
}

/// A delta from one native tree to another, when it is worth it: an edit in one place
/// (cheap to find), else a general delta at most half the tree's size.
fn tree_delta(base: &[u8], target: &[u8], delta: &mut Vec<u8>) -> bool {
    let (base_header, target_header) = (tree_header_len(base), tree_header_len(target));
    crate::delta::encode_edit(
        base,
        target,
        base_header,
        target_header,
        delta,
        target.len() / 8 + 64,
    )
    .or_else(|| DeltaIndex::new(base).encode(target, delta, target.len() / 2))
    .is_some()
}

/// Stores every blob, keeping git's zlib streams and deltas as they are. A delta whose base
/// the store already has refers to it there (`stored_base` says whether it may); one whose
/// base cannot be stored first (a cycle between packs) is decoded and stored whole instead.
pub(super) fn write_blobs(
    scan: &Scan,
    packs: &[SourcePack],
    stored_base: &dyn Fn(&Sha1) -> Option<(ObjectId, u32)>,
    writer: &mut SegmentWriter,
    report: &mut ImportReport,
    progress: &Progress,
) -> Result<(), ImportError> {
    progress.phase("Storing blobs", Some(scan.blobs.len() as u64));
    let mut order: Vec<(usize, u64, Sha1)> = Vec::with_capacity(scan.blobs.len());
    let mut loose: Vec<Sha1> = Vec::new();
    for (sha1, info) in &scan.blobs {
        match info.source {
            BlobSource::Pack { pack, offset } => order.push((pack, offset, *sha1)),
            BlobSource::Loose { .. } => loose.push(*sha1),
        }
    }
    order.sort_unstable();
    loose.sort_unstable();
    let mut waiting: HashSet<Sha1> = HashSet::new();
    let mut stack: Vec<Sha1> = Vec::new();
    // Delta chain length of every blob stored here as a delta.
    let mut depths: IdMap<ObjectId, u32> = IdMap::default();
    let depth_of =
        |depths: &IdMap<ObjectId, u32>, id: &ObjectId| depths.get(id).copied().unwrap_or(0);
    for sha1 in order.iter().map(|o| o.2).chain(loose) {
        stack.push(sha1);
        while let Some(&current) = stack.last() {
            let info = &scan.blobs[&current];
            if writer.offset_of(&info.id).is_some() {
                stack.pop();
                continue;
            }
            let (pack_no, offset) = match &info.source {
                BlobSource::Loose { zlib } => {
                    writer.append_zlib(
                        info.id,
                        current,
                        Kind::Blob,
                        info.size,
                        Storage::Full,
                        info.size,
                        zlib,
                    )?;
                    report.blobs += 1;
                    progress.inc(1);
                    stack.pop();
                    continue;
                }
                BlobSource::Pack { pack, offset } => (*pack, *offset),
            };
            let pack = &packs[pack_no];
            let raw = pack.raw_entry(offset)?;
            let base = match raw.storage {
                EntryStorage::Full => None,
                EntryStorage::OfsDelta(base_offset) => {
                    let offsets = &scan.pack_offsets[pack_no];
                    offsets
                        .binary_search_by_key(&base_offset, |&(o, _)| o)
                        .ok()
                        .map(|i| offsets[i].1)
                }
                EntryStorage::RefDelta(base) => Some(base),
            };
            let storage = match base.map(|b| (b, scan.blobs.get(&b))) {
                None if raw.inflated_size == info.size => Some((Storage::Full, 0)),
                Some((_, Some(base))) if writer.offset_of(&base.id).is_some() => {
                    let depth = depth_of(&depths, &base.id) + 1;
                    if depth > MAX_DELTA_CHAIN {
                        // Decoding such a chain costs its depth per object: refuse it.
                        return Err(ObjectRefusal::DeltaChain { id: current }.into());
                    }
                    let at = writer.offset_of(&base.id).expect("checked");
                    Some((Storage::DeltaAt(at), depth))
                }
                Some((base_sha1, Some(_))) if !waiting.contains(&base_sha1) => {
                    waiting.insert(current);
                    stack.push(base_sha1);
                    continue;
                }
                Some((base_sha1, None)) => {
                    stored_base(&base_sha1).map(|(base, depth)| (Storage::DeltaOf(base), depth + 1))
                }
                _ => None,
            };
            match storage {
                Some((storage, depth)) => {
                    if storage != Storage::Full {
                        report.blob_deltas_reused += 1;
                        depths.insert(info.id, depth);
                    }
                    writer.append_zlib(
                        info.id,
                        current,
                        Kind::Blob,
                        info.size,
                        storage,
                        raw.inflated_size,
                        raw.zlib,
                    )?;
                }
                None => {
                    let content = pack.decode(&current)?;
                    writer.append_full(info.id, current, Kind::Blob, &content)?;
                }
            }
            report.blobs += 1;
            progress.inc(1);
            stack.pop();
        }
    }
    Ok(())
}
