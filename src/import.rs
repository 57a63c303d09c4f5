//! `forge import`: every object and ref of a local git repository into a native repository.
//!
//! 1. Scan: decode every object of every pack in parallel (pack checksum, CRC32 and SHA-1
//!    verified by gix) and every loose object. Blobs get their BLAKE3 id at once; trees,
//!    commits and tags are kept in a temporary stash, since their native ids depend on their
//!    children's.
//! 2. Translate: walk the stashed objects depth-first (refs first, so history is met oldest
//!    first), children before parents, computing each native object and writing it. Trees
//!    are stored as deltas against the previous tree at the same path.
//! 3. Blobs: copy each blob's zlib stream from the git pack as it is, deltas included, so the
//!    store keeps git's compression without recomputing it.
//! 4. Commit: register the segment and set the refs, in one transaction, compare-and-swap
//!    against the refs read before the import.
//!
//! Objects that cannot be translated because they refer to missing objects are skipped when
//! no ref reaches them, and fail the import (naming the missing objects) when one does.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::rc::Rc;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{Receiver, SyncSender};
use std::time::Instant;

use bstr::BString;
use serde::Serialize;

use crate::delta::DeltaIndex;
use crate::git::{check_ref_name, git_sha1, git_to_native};
use crate::gitx::{EntryStorage, SourceError, SourcePack, SourceRepo, SourceTarget};
use crate::object::{
    IdMap, Kind, NativeObject, Node, ObjectId, Sha1, encode, native_id, tree_header_len,
};
use crate::progress::Progress;
use crate::store::segment::{SegmentWriter, Storage, zlib_compress};
use crate::store::{Expected, RefTarget, RefUpdate, Repo, StoreError};

/// Translated objects go to the writer thread in batches, to keep thread hand-offs rare.
const WRITE_BATCH: usize = 256;
/// git's default `pack.depth`; longer chains make reads slower for little gain.
const MAX_TREE_DELTA_DEPTH: u32 = 50;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0} is a shallow repository; import a complete clone instead")]
    Shallow(String),
    #[error("loose object {id} is corrupt: its content hashes to {actual}")]
    CorruptLoose { id: Sha1, actual: Sha1 },
    #[error("the repository is incomplete: {reference} needs {count} missing object(s): {list}")]
    Missing {
        reference: String,
        count: usize,
        list: String,
    },
    #[error("invalid ref {name:?} in the source: {reason}")]
    BadRef { name: String, reason: &'static str },
    #[error("cannot use the temporary stash: {0}")]
    Stash(std::io::Error),
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct ImportReport {
    pub objects: u64,
    pub blobs: u64,
    pub trees: u64,
    pub commits: u64,
    pub tags: u64,
    pub refs: u64,
    /// Objects no ref reaches that refer to missing objects.
    pub skipped_unreachable: u64,
    /// Trees, commits and tags whose git bytes are kept verbatim (non-canonical git).
    pub verbatim: u64,
    pub blob_deltas_reused: u64,
    pub tree_deltas: u64,
    pub source_bytes: u64,
    pub seconds: f64,
    /// Seconds per phase: scan, translate, blobs, publish.
    pub phase_seconds: [f64; 4],
}

/// Where a blob's bytes come from.
enum BlobSource {
    Pack { pack: usize, offset: u64 },
    Loose { zlib: Vec<u8> },
}

struct BlobInfo {
    id: ObjectId,
    size: u64,
    source: BlobSource,
}

#[derive(Clone, Copy)]
struct StashedNode {
    kind: Kind,
    at: usize,
    len: usize,
}

/// Trees, commits and tags from the scan, in a temporary file (mapped once the scan is done),
/// so memory does not grow with the history.
struct Stash {
    file: std::io::BufWriter<std::fs::File>,
    len: usize,
}

#[derive(Default)]
struct Scan {
    blobs: IdMap<Sha1, BlobInfo>,
    nodes: IdMap<Sha1, StashedNode>,
    /// Per pack: (offset, id) of every entry, sorted, to resolve ofs-delta bases.
    pack_offsets: Vec<Vec<(u64, Sha1)>>,
}

pub fn import(
    repo: &Repo,
    source_path: &Path,
    progress: &Progress,
) -> Result<ImportReport, ImportError> {
    let started = Instant::now();
    let source = SourceRepo::open(source_path)?;
    if source.is_shallow() {
        return Err(ImportError::Shallow(source_path.display().to_string()));
    }
    let source_refs = source.refs()?;
    for r in &source_refs {
        check_ref_name(&r.name).map_err(|reason| ImportError::BadRef {
            name: r.name.to_string(),
            reason,
        })?;
        if let SourceTarget::Symbolic(target) = &r.target {
            check_ref_name(target).map_err(|reason| ImportError::BadRef {
                name: target.to_string(),
                reason,
            })?;
        }
    }
    let forge_refs: HashMap<BString, RefTarget> = repo.refs()?.into_iter().collect();
    repo.remove_unregistered_files()?;

    let mut report = ImportReport::default();
    let stash_file = tempfile::tempfile_in(repo.dir()).map_err(ImportError::Stash)?;
    let mut stash = Stash {
        file: std::io::BufWriter::with_capacity(1 << 20, stash_file),
        len: 0,
    };
    let mut packs = Vec::new();
    let scan = scan(&source, &mut packs, &mut stash, &mut report, progress)?;
    let mut lap = Instant::now();
    report.phase_seconds[0] = started.elapsed().as_secs_f64();
    let stash_file = stash
        .file
        .into_inner()
        .map_err(|e| ImportError::Stash(e.into_error()))?;
    // SAFETY: the stash is a private temporary file that nothing else writes.
    let stash_map = if stash.len == 0 {
        None
    } else {
        Some(unsafe { memmap2::Mmap::map(&stash_file) }.map_err(ImportError::Stash)?)
    };
    let stash_bytes: &[u8] = stash_map.as_deref().unwrap_or(&[]);

    let mut writer = repo.new_segment()?;
    let roots: Vec<(String, Sha1)> = source_refs
        .iter()
        .filter_map(|r| match &r.target {
            SourceTarget::Object(id) => Some((r.name.to_string(), *id)),
            SourceTarget::Symbolic(_) => None,
        })
        .collect();
    // Translation follows the dependency order on this thread; compressing and writing
    // (tree deltas, zlib) happen on another.
    let (queue, jobs) = std::sync::mpsc::sync_channel(16);
    let (translated, written) = std::thread::scope(|scope| {
        let writing = std::thread::Builder::new()
            .name("forge-writer".into())
            .spawn_scoped(scope, || write_nodes(jobs, &mut writer))
            .expect("spawning a thread");
        let translated = translate_nodes(&scan, stash_bytes, &roots, queue, &mut report, progress);
        (
            translated,
            writing.join().expect("the writer thread does not panic"),
        )
    });
    let written = written?;
    let translated = translated?;
    report.trees = written.trees;
    report.commits = written.commits;
    report.tags = written.tags;
    report.tree_deltas = written.tree_deltas;
    report.phase_seconds[1] = lap.elapsed().as_secs_f64();
    lap = Instant::now();
    write_blobs(&scan, &packs, &mut writer, &mut report, progress)?;
    report.phase_seconds[2] = lap.elapsed().as_secs_f64();
    lap = Instant::now();

    let resolve = |id: &Sha1| translated.get(id).copied();
    let mut updates = Vec::new();
    for r in &source_refs {
        let new = match &r.target {
            SourceTarget::Object(id) => RefTarget::Direct(
                resolve(id).expect("every ref target was translated or the walk failed"),
            ),
            SourceTarget::Symbolic(target) => RefTarget::Symbolic(target.clone()),
        };
        updates.push(RefUpdate {
            expected: match forge_refs.get(&r.name) {
                Some(old) => Expected::Value(old.clone()),
                None => Expected::Absent,
            },
            name: r.name.clone(),
            new: Some(new),
        });
    }
    report.refs = updates.len() as u64;
    report.objects = report.blobs + report.trees + report.commits + report.tags;
    progress.phase("Publishing", None);
    repo.commit(Some(writer), &updates)?;
    progress.finish();
    report.phase_seconds[3] = lap.elapsed().as_secs_f64();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn scan(
    source: &SourceRepo,
    packs: &mut Vec<SourcePack>,
    stash: &mut Stash,
    report: &mut ImportReport,
    progress: &Progress,
) -> Result<Scan, ImportError> {
    let mut scan = Scan::default();
    let dirs = source.object_dirs();
    let mut indices = Vec::new();
    for dir in &dirs {
        indices.extend(crate::gitx::pack_indices(dir)?);
    }
    for idx in &indices {
        packs.push(SourcePack::open(idx)?);
    }
    let total: u64 = packs.iter().map(|p| u64::from(p.num_objects())).sum();
    progress.phase("Reading objects", Some(total));

    struct Found<'s> {
        blobs: Vec<(Sha1, ObjectId, u64, u64)>,
        nodes: Vec<(Sha1, Kind, usize, usize)>,
        offsets: Vec<(u64, Sha1)>,
        stash: &'s mut Stash,
        error: Option<std::io::Error>,
    }
    let interrupt = AtomicBool::new(false);
    for (pack_no, pack) in packs.iter().enumerate() {
        report.source_bytes += std::fs::metadata(pack.path()).map_or(0, |m| m.len());
        let found = Mutex::new(Found {
            blobs: Vec::new(),
            nodes: Vec::new(),
            offsets: Vec::new(),
            stash: &mut *stash,
            error: None,
        });
        let shared = &found;
        let interrupt_ref = &interrupt;
        pack.for_each_object(&interrupt, move |id, kind, offset, body| {
            let blob_id = (kind == Kind::Blob).then(|| ObjectId::for_blob(body));
            let mut found = shared.lock().expect("scan lock");
            found.offsets.push((offset, id));
            match blob_id {
                Some(b3) => found.blobs.push((id, b3, body.len() as u64, offset)),
                None => {
                    let at = found.stash.len;
                    if let Err(e) = found.stash.file.write_all(body) {
                        found.error.get_or_insert(e);
                        interrupt_ref.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    found.stash.len += body.len();
                    found.nodes.push((id, kind, at, body.len()));
                }
            }
            drop(found);
            progress.inc(1);
        })?;
        let mut found = found.into_inner().expect("scan lock");
        if let Some(e) = found.error.take() {
            return Err(ImportError::Stash(e));
        }
        for (id, b3, size, offset) in found.blobs {
            scan.blobs.entry(id).or_insert(BlobInfo {
                id: b3,
                size,
                source: BlobSource::Pack {
                    pack: pack_no,
                    offset,
                },
            });
        }
        for (id, kind, at, len) in found.nodes {
            scan.nodes
                .entry(id)
                .or_insert(StashedNode { kind, at, len });
        }
        found.offsets.sort_unstable();
        scan.pack_offsets.push(found.offsets);
    }

    let mut corrupt_loose = None;
    let mut stash_error = None;
    progress.phase("Reading loose objects", None);
    for dir in &dirs {
        crate::gitx::for_each_loose_object(dir, |id, kind, body| {
            progress.inc(1);
            if scan.blobs.contains_key(&id) || scan.nodes.contains_key(&id) {
                return Ok(());
            }
            let actual = git_sha1(kind, body);
            if actual != id {
                corrupt_loose.get_or_insert((id, actual));
                return Ok(());
            }
            report.source_bytes += body.len() as u64;
            if kind == Kind::Blob {
                scan.blobs.insert(
                    id,
                    BlobInfo {
                        id: ObjectId::for_blob(body),
                        size: body.len() as u64,
                        source: BlobSource::Loose {
                            zlib: zlib_compress(body),
                        },
                    },
                );
            } else {
                if let Err(e) = stash.file.write_all(body) {
                    stash_error.get_or_insert(e);
                }
                scan.nodes.insert(
                    id,
                    StashedNode {
                        kind,
                        at: stash.len,
                        len: body.len(),
                    },
                );
                stash.len += body.len();
            }
            Ok(())
        })?;
    }
    if let Some((id, actual)) = corrupt_loose {
        return Err(ImportError::CorruptLoose { id, actual });
    }
    if let Some(e) = stash_error {
        return Err(ImportError::Stash(e));
    }
    Ok(scan)
}

enum Translated {
    Native(ObjectId),
    /// Refers (perhaps indirectly) to a missing object.
    Broken,
}

struct Frame {
    id: Sha1,
    /// Where the object was met, and the same path's object in the first parent's commit:
    /// the best delta base for a tree is its previous version.
    path: BString,
    counterpart: Option<Sha1>,
    expanded: bool,
}

/// Translates every stashed tree, commit and tag, children first, and queues each for writing.
fn translate_nodes(
    scan: &Scan,
    stash: &[u8],
    roots: &[(String, Sha1)],
    queue: SyncSender<Vec<NodeWrite>>,
    report: &mut ImportReport,
    progress: &Progress,
) -> Result<IdMap<Sha1, ObjectId>, ImportError> {
    progress.phase("Translating", Some(scan.nodes.len() as u64));
    // Blobs are translated already; trees, commits and tags join them here.
    let mut done: IdMap<Sha1, Translated> = IdMap::default();
    done.reserve(scan.nodes.len() + scan.blobs.len());
    for (sha1, blob) in &scan.blobs {
        done.insert(*sha1, Translated::Native(blob.id));
    }
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    let mut children = ChildrenCache::default();
    let mut missing: Vec<Sha1> = Vec::new();
    let mut broken_ref: Option<String> = None;
    let mut stack: Vec<Frame> = Vec::new();
    let body_of = |node: &StashedNode| &stash[node.at..node.at + node.len];

    let mut unreachable: Vec<(Sha1, usize)> =
        scan.nodes.iter().map(|(id, n)| (*id, n.at)).collect();
    unreachable.sort_unstable_by_key(|&(_, at)| at);
    let all_roots = roots
        .iter()
        .map(|(name, id)| (Some(name.as_str()), *id))
        .chain(unreachable.iter().map(|&(id, _)| (None, id)));

    for (ref_name, root) in all_roots {
        if done.contains_key(&root) {
            continue;
        }
        stack.push(Frame {
            id: root,
            path: BString::default(),
            counterpart: None,
            expanded: false,
        });
        while let Some(frame) = stack.pop() {
            if done.contains_key(&frame.id) {
                continue;
            }
            let Some(node) = scan.nodes.get(&frame.id) else {
                if ref_name.is_some() {
                    missing.push(frame.id);
                }
                done.insert(frame.id, Translated::Broken);
                continue;
            };
            let body = body_of(node);
            if !frame.expanded {
                let (path, counterpart) = (frame.path.clone(), frame.counterpart);
                stack.push(Frame {
                    expanded: true,
                    ..frame
                });
                let old = counterpart.and_then(|c| children.get(&c));
                push_children(
                    node.kind,
                    body,
                    &path,
                    counterpart,
                    old,
                    &done,
                    scan,
                    stash,
                    &mut stack,
                );
                continue;
            }
            let resolve = |child: Sha1| match done.get(&child) {
                Some(Translated::Native(id)) => Ok(*id),
                _ => Err(()),
            };
            let fast_tree = if node.kind == Kind::Tree {
                // Most entries are unchanged from the previous version: take their ids from it.
                let mut hint =
                    PreviousVersion::new(frame.counterpart.and_then(|c| children.get(&c)));
                let mut pairs = Vec::new();
                let encoded = crate::git::tree_to_native_encoding(body, |child| {
                    let id = match hint.find(&child) {
                        Some(id) => id,
                        None => resolve(child)?,
                    };
                    pairs.push((child, id));
                    Ok(id)
                });
                if matches!(encoded, Ok(Some(_))) {
                    children.insert(frame.id, pairs.into());
                }
                encoded
            } else {
                Ok(None)
            };
            let encoded = match fast_tree {
                Ok(Some(encoded)) => Ok(encoded),
                Err(()) => Err(()),
                Ok(None) => git_to_native(node.kind, body, resolve).map(|native| {
                    let verbatim = match &native {
                        NativeObject::Parsed { git_verbatim, .. } => git_verbatim.is_some(),
                        NativeObject::Unparsed { .. } => true,
                    };
                    report.verbatim += u64::from(verbatim);
                    encode(&native)
                }),
            };
            let Ok(encoded) = encoded else {
                done.insert(frame.id, Translated::Broken);
                continue;
            };
            let id = native_id(node.kind, &encoded);
            let base_hint = frame.counterpart.and_then(|c| match done.get(&c) {
                Some(Translated::Native(id)) => Some(*id),
                _ => None,
            });
            let job = NodeWrite {
                sha1: frame.id,
                id,
                kind: node.kind,
                path: frame.path,
                base_hint,
                encoded,
            };
            batch.push(job);
            if batch.len() == WRITE_BATCH && queue.send(std::mem::take(&mut batch)).is_err() {
                // The writer stopped; its error is the one to report.
                return Ok(IdMap::default());
            }
            done.insert(frame.id, Translated::Native(id));
            progress.inc(1);
        }
        if let Some(name) = ref_name
            && matches!(done.get(&root), Some(Translated::Broken))
        {
            broken_ref.get_or_insert_with(|| name.to_owned());
        }
    }

    if !batch.is_empty() && queue.send(batch).is_err() {
        return Ok(IdMap::default());
    }
    if let Some(reference) = broken_ref {
        missing.sort_unstable();
        missing.dedup();
        let mut list: Vec<String> = missing.iter().take(10).map(Sha1::to_hex).collect();
        if missing.len() > 10 {
            list.push(format!("… and {} more", missing.len() - 10));
        }
        return Err(ImportError::Missing {
            reference,
            count: missing.len(),
            list: list.join(", "),
        });
    }
    let mut out = IdMap::default();
    out.reserve(done.len());
    for (sha1, t) in done {
        match t {
            Translated::Native(id) => {
                out.insert(sha1, id);
            }
            Translated::Broken => {
                if scan.nodes.contains_key(&sha1) {
                    report.skipped_unreachable += 1;
                }
            }
        }
    }
    Ok(out)
}

/// Pushes the children of a node that still need translating, each with its counterpart in
/// the first parent. Parents go on top, so history is translated oldest first.
#[allow(clippy::too_many_arguments)]
fn push_children(
    kind: Kind,
    body: &[u8],
    path: &BString,
    counterpart: Option<Sha1>,
    counterpart_children: Option<&Rc<[(Sha1, ObjectId)]>>,
    done: &IdMap<Sha1, Translated>,
    scan: &Scan,
    stash: &[u8],
    stack: &mut Vec<Frame>,
) {
    let mut unchanged = PreviousVersion::new(counterpart_children);
    let mut pending = |id: &Sha1| unchanged.find(id).is_none() && !done.contains_key(id);
    let stashed = |id: &Sha1| {
        scan.nodes
            .get(id)
            .map(|n| (n.kind, &stash[n.at..n.at + n.len]))
    };
    match kind {
        Kind::Tree => {
            // Trees list their entries in git's order, so each subtree's old version is found
            // by walking the counterpart alongside (a merge join; unsorted trees just find
            // fewer counterparts).
            let mut old = counterpart
                .and_then(|c| stashed(&c))
                .filter(|(kind, _)| *kind == Kind::Tree)
                .map(|(_, body)| crate::git::format::tree_entries(body).map_while(Result::ok))
                .into_iter()
                .flatten()
                .filter(|e| e.is_directory())
                .peekable();
            for entry in crate::git::format::tree_entries(body).map_while(Result::ok) {
                if entry.is_gitlink() || !pending(&entry.id) {
                    continue;
                }
                while old.peek().is_some_and(|o| {
                    git_tree_order(o.name, true, entry.name, entry.is_directory()).is_lt()
                }) {
                    old.next();
                }
                let counterpart = old.peek().filter(|o| o.name == entry.name).map(|o| o.id);
                let mut child = path.clone();
                if !child.is_empty() {
                    child.push(b'/');
                }
                child.extend_from_slice(entry.name);
                stack.push(Frame {
                    id: entry.id,
                    path: child,
                    counterpart,
                    expanded: false,
                });
            }
        }
        Kind::Commit => {
            let Some(Node::Commit(commit)) = crate::git::format::parse(kind, body) else {
                return;
            };
            let parent_tree = commit
                .parents
                .first()
                .and_then(stashed)
                .and_then(|(k, b)| (k == Kind::Commit).then(|| crate::git::format::commit_tree(b)))
                .flatten();
            let mut push = |id: Sha1, counterpart: Option<Sha1>| {
                if pending(&id) {
                    stack.push(Frame {
                        id,
                        path: BString::default(),
                        counterpart,
                        expanded: false,
                    });
                }
            };
            push(commit.tree, parent_tree);
            for parent in commit.parents.into_iter().rev() {
                push(parent, None);
            }
        }
        _ => {
            if let Some(Node::Tag(tag)) = crate::git::format::parse(kind, body)
                && pending(&tag.target)
            {
                stack.push(Frame {
                    id: tag.target,
                    path: BString::default(),
                    counterpart: None,
                    expanded: false,
                });
            }
        }
    }
}

/// The (SHA-1, native id) of each entry of recently translated trees, in entry order.
#[derive(Default)]
struct ChildrenCache {
    trees: IdMap<Sha1, Rc<[(Sha1, ObjectId)]>>,
    order: std::collections::VecDeque<Sha1>,
    entries: usize,
}

impl ChildrenCache {
    /// About 50 MiB of entries.
    const BUDGET: usize = 1 << 20;

    fn get(&self, tree: &Sha1) -> Option<&Rc<[(Sha1, ObjectId)]>> {
        self.trees.get(tree)
    }

    fn insert(&mut self, tree: Sha1, children: Rc<[(Sha1, ObjectId)]>) {
        self.entries += children.len();
        if self.trees.insert(tree, children).is_none() {
            self.order.push_back(tree);
        }
        while self.entries > Self::BUDGET {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(c) = self.trees.remove(&old) {
                self.entries -= c.len();
            }
        }
    }
}

/// Matches a tree's entries, in order, against its previous version's: an entry with the same
/// SHA-1 at (about) the same place is unchanged, and its native id is known without a lookup.
struct PreviousVersion<'a> {
    old: &'a [(Sha1, ObjectId)],
    next: usize,
}

impl<'a> PreviousVersion<'a> {
    /// How far ahead an entry may have moved (entries removed before it).
    const WINDOW: usize = 4;

    fn new(old: Option<&'a Rc<[(Sha1, ObjectId)]>>) -> Self {
        PreviousVersion {
            old: old.map_or(&[], |o| &o[..]),
            next: 0,
        }
    }

    fn find(&mut self, sha1: &Sha1) -> Option<ObjectId> {
        let end = (self.next + Self::WINDOW).min(self.old.len());
        let at = (self.next..end).find(|&j| self.old[j].0 == *sha1)?;
        self.next = at + 1;
        Some(self.old[at].1)
    }
}

/// git's order of tree entries: by name, a directory's name compared as if it ended in '/'.
fn git_tree_order(a: &[u8], a_dir: bool, b: &[u8], b_dir: bool) -> std::cmp::Ordering {
    let n = a.len().min(b.len());
    a[..n].cmp(&b[..n]).then_with(|| {
        let next = |name: &[u8], dir: bool| match name.get(n) {
            Some(&c) => Some(c),
            None if dir => Some(b'/'),
            None => None,
        };
        next(a, a_dir).cmp(&next(b, b_dir))
    })
}

/// A translated tree, commit or tag on its way to the segment.
struct NodeWrite {
    sha1: Sha1,
    id: ObjectId,
    kind: Kind,
    path: BString,
    /// The native id of this tree's previous version, if known.
    base_hint: Option<ObjectId>,
    encoded: Vec<u8>,
}

#[derive(Default)]
struct WrittenNodes {
    trees: u64,
    commits: u64,
    tags: u64,
    tree_deltas: u64,
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
    trees: IdMap<ObjectId, (std::rc::Rc<TreeBase>, u64)>,
    order: std::collections::VecDeque<(ObjectId, u64)>,
}

impl TreeBases {
    fn get(&mut self, id: &ObjectId) -> Option<std::rc::Rc<TreeBase>> {
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
        self.trees.insert(id, (std::rc::Rc::new(base), self.tick));
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

/// Writes translated nodes in the order they come. A tree is stored as a delta against its
/// previous version (or, failing that, the last tree written at its path), and against the
/// start of that version's chain when the chain is already `MAX_TREE_DELTA_DEPTH` long.
fn write_nodes(
    jobs: Receiver<Vec<NodeWrite>>,
    writer: &mut SegmentWriter,
) -> Result<WrittenNodes, ImportError> {
    let mut written = WrittenNodes::default();
    let mut bases = TreeBases {
        budget: 256 << 20,
        used: 0,
        tick: 0,
        trees: IdMap::default(),
        order: std::collections::VecDeque::new(),
    };
    let mut last_at_path: HashMap<BString, ObjectId> = HashMap::new();
    let mut delta = Vec::new();
    for job in jobs.into_iter().flatten() {
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
/// cannot be stored first (not a blob of this import, or a cycle between packs) is decoded
/// and stored whole instead.
fn write_blobs(
    scan: &Scan,
    packs: &[SourcePack],
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
                None if raw.inflated_size == info.size => Some(Storage::Full),
                Some((_, Some(base))) if writer.offset_of(&base.id).is_some() => Some(
                    Storage::DeltaAt(writer.offset_of(&base.id).expect("checked")),
                ),
                Some((base_sha1, Some(_))) if !waiting.contains(&base_sha1) => {
                    waiting.insert(current);
                    stack.push(base_sha1);
                    continue;
                }
                _ => None,
            };
            match storage {
                Some(storage) => {
                    if storage != Storage::Full {
                        report.blob_deltas_reused += 1;
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

#[cfg(test)]
mod tests {
    use super::git_tree_order;
    use std::cmp::Ordering::*;

    #[test]
    fn tree_order_is_gits() {
        assert_eq!(git_tree_order(b"foo", true, b"foo.c", false), Greater);
        assert_eq!(git_tree_order(b"foo", false, b"foo.c", false), Less);
        assert_eq!(git_tree_order(b"foo", true, b"foo0", false), Less);
        assert_eq!(git_tree_order(b"a", true, b"a", true), Equal);
        assert_eq!(git_tree_order(b"a", false, b"a", true), Less);
        assert_eq!(git_tree_order(b"b", true, b"a", true), Greater);
    }
}
