//! `forge import`: every object and ref of a local git repository into a native repository.
//!
//! 1. Scan: decode every object of every pack in parallel (pack checksum, CRC32 and SHA-1
//!    verified by gix) and every loose object. Blobs get their BLAKE3 id at once; trees,
//!    commits and tags are kept in a temporary stash, since their native ids depend on their
//!    children's.
//! 2. Translate: walk the stashed objects depth-first (refs first, so history is met oldest
//!    first), children before parents, translating them on every core and writing them in
//!    that order. Trees are stored as deltas against their previous version.
//! 3. Blobs: copy each blob's zlib stream from the git pack as it is, deltas included, so the
//!    store keeps git's compression without recomputing it.
//! 4. Commit: register the segment and set the refs, in one transaction, compare-and-swap
//!    against the refs read before the import.
//!
//! Objects that cannot be translated because they refer to missing objects are skipped when
//! no ref reaches them, and fail the import (naming the missing objects) when one does.

mod scan;
mod translate;
mod write;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bstr::BString;
use serde::Serialize;

use crate::git::check_ref_name;
use crate::git::fsck::NamedAs;
use crate::gitx::{SourceError, SourceRepo, SourceTarget};
use crate::object::{IdMap, Kind, ObjectId, Sha1};
use crate::progress::Progress;
use crate::store::segment::SegmentWriter;
use crate::store::{Authorized, Expected, RefTarget, RefUpdate, Repo, StoreError};

/// Longest stored delta chain a pushed blob delta may extend (git's default depth), so
/// chains do not grow push after push.
const MAX_STORED_DELTA_DEPTH: usize = 50;

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
    #[error("cannot inflate loose object {id} again: {message}")]
    LooseInflate { id: Sha1, message: String },
    #[error(transparent)]
    Refused(#[from] ObjectRefusal),
}

/// Why an object brought in was refused (a push is held to these; an import to the last).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ObjectRefusal {
    #[error("object {id} is {size} bytes, over this server's limit of {limit}")]
    TooLarge { id: Sha1, size: u64, limit: u64 },
    /// git's own words: `object <id>: <msg-id>: <message>`.
    #[error("object {id}: {problem}")]
    Fsck {
        id: Sha1,
        problem: crate::git::fsck::FsckProblem,
    },
    /// Decoding such a chain costs its depth per object.
    #[error(
        "blob {id} is at the end of a delta chain longer than {} (git never makes one)",
        write::MAX_DELTA_CHAIN
    )]
    DeltaChain { id: Sha1 },
}

impl ImportError {
    /// The stable code the CLI's `--json` and REST report this error with.
    pub fn code(&self) -> &'static str {
        match self {
            ImportError::Source(_) | ImportError::BadRef { .. } => "bad_source",
            ImportError::Store(e) => e.code(),
            ImportError::Missing { .. } => "incomplete_source",
            ImportError::Shallow(_) => "shallow_source",
            ImportError::CorruptLoose { .. } | ImportError::LooseInflate { .. } => "corrupt_source",
            ImportError::Stash(_) => "import_failed",
            ImportError::Refused(ObjectRefusal::TooLarge { .. }) => "too_large",
            ImportError::Refused(_) => "object_refused",
        }
    }
}

/// Checks an ingest makes on every object it reads (a push is held to them; an import of
/// a repository the admin trusts is not).
#[derive(Debug, Clone, Copy, Default)]
pub struct IngestRules {
    /// Objects larger than this are refused.
    pub max_object_bytes: Option<u64>,
    /// Every object passes the checks git's receive-pack makes with
    /// `receive.fsckObjects` (`git::fsck`: tree entries such as `.git` in its HFS and NTFS
    /// spellings, a `.gitmodules` symlink, malformed headers and identities), and so do the
    /// blobs trees name `.gitmodules` or `.gitattributes`, once every object is read.
    pub fsck_objects: bool,
    /// Bytes of recently written trees kept as delta bases (`None`: 256 MiB, which finds
    /// nearly every base of a whole history; a push's trees are few and recent).
    pub tree_base_cache: Option<usize>,
}

impl IngestRules {
    /// Checks one object, adding to `named` the ids its tree entries name `.gitmodules` or
    /// `.gitattributes` (checked by `scan::check_named_blobs` once every object is read).
    fn check(
        &self,
        id: &Sha1,
        kind: Kind,
        body: &[u8],
        named: &mut Vec<(Sha1, NamedAs)>,
    ) -> Result<(), ObjectRefusal> {
        if let Some(max) = self.max_object_bytes
            && body.len() as u64 > max
        {
            return Err(ObjectRefusal::TooLarge {
                id: *id,
                size: body.len() as u64,
                limit: max,
            });
        }
        if self.fsck_objects {
            crate::git::fsck::check_noting(kind, body, |as_, sha1| named.push((sha1, as_)))
                .map_err(|problem| ObjectRefusal::Fsck { id: *id, problem })?;
        }
        Ok(())
    }
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
    /// Bytes read from the source: its pack files, plus loose objects' inflated bodies.
    pub source_bytes: u64,
    pub seconds: f64,
    /// Seconds per phase: scan, translate, blobs, publish.
    pub phase_seconds: [f64; 4],
}

/// Where a blob's bytes come from.
pub(super) enum BlobSource {
    Pack { pack: usize, offset: u64 },
    Loose { zlib: Vec<u8> },
}

struct BlobInfo {
    id: ObjectId,
    size: u64,
    source: BlobSource,
}

/// A tree, commit or tag: its kind and where its git body is in the stash.
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

/// What the store already has: SHA-1 → native id.
type Known<'a> = &'a (dyn Fn(&Sha1) -> Option<ObjectId> + Sync);

/// Everything the scan found.

#[derive(Default)]
struct Scan {
    blobs: IdMap<Sha1, BlobInfo>,
    nodes: IdMap<Sha1, StashedNode>,
    /// Per pack: (offset, id) of every entry, sorted, to resolve ofs-delta bases.
    pack_offsets: Vec<Vec<(u64, Sha1)>>,
    /// What tree entries name `.gitmodules` or `.gitattributes` (with `fsck_objects`).
    named: IdMap<Sha1, NamedAs>,
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

    let roots: Vec<(String, Sha1)> = source_refs
        .iter()
        .filter_map(|r| match &r.target {
            SourceTarget::Object(id) => Some((r.name.to_string(), *id)),
            SourceTarget::Symbolic(_) => None,
        })
        .collect();
    let Ingested {
        writer,
        mut report,
        ids,
    } = ingest(
        repo,
        &source.object_dirs(),
        &roots,
        IngestRules::default(),
        progress,
    )?;
    let lap = Instant::now();
    let mut updates = Vec::new();
    for r in &source_refs {
        let new = match &r.target {
            SourceTarget::Object(id) => RefTarget::Direct(
                ids.resolve(repo, id)
                    .expect("every ref target was translated or the walk failed"),
            ),
            SourceTarget::Symbolic(target) => RefTarget::Symbolic(target.clone()),
        };
        updates.push(Authorized::by_import(RefUpdate {
            expected: match forge_refs.get(&r.name) {
                Some(old) => Expected::Value(old.clone()),
                None => Expected::Absent,
            },
            name: r.name.clone(),
            new: Some(new),
        }));
    }
    report.refs = updates.len() as u64;
    progress.phase("Publishing", None);
    repo.commit(Some(writer), &updates)?;
    progress.finish();
    report.phase_seconds[3] = lap.elapsed().as_secs_f64();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Objects read from git object directories and written into a new segment that is not
/// published yet: the caller commits it with its ref updates (or drops it).
pub struct Ingested {
    pub writer: SegmentWriter,
    pub report: ImportReport,
    pub ids: IngestedIds,
}

/// The native ids of the objects an ingest translated.
pub struct IngestedIds {
    nodes: IdMap<Sha1, (ObjectId, Kind)>,
    blobs: IdMap<Sha1, ObjectId>,
}

impl IngestedIds {
    /// The native id of a SHA-1: translated here, or already in the store.
    pub fn resolve(&self, repo: &Repo, sha1: &Sha1) -> Option<ObjectId> {
        self.typed(repo, sha1).map(|(id, _)| id)
    }

    /// The native id and kind of a SHA-1: translated here, or already in the store.
    pub fn typed(&self, repo: &Repo, sha1: &Sha1) -> Option<(ObjectId, Kind)> {
        if let Some(node) = self.nodes.get(sha1) {
            return Some(*node);
        }
        if let Some(blob) = self.blobs.get(sha1) {
            return Some((*blob, Kind::Blob));
        }
        let location = repo.locate_sha1(sha1)?;
        Some((location.id(), location.kind()?))
    }
}

/// Reads every object of the packs and loose objects in `object_dirs` and translates those
/// the store does not have yet into a new segment. Every root must then have its whole
/// history in the segment or the store, or the ingest fails naming what is missing: objects
/// already stored are complete by construction, so this is the connectivity check.
pub fn ingest(
    repo: &Repo,
    object_dirs: &[PathBuf],
    roots: &[(String, Sha1)],
    rules: IngestRules,
    progress: &Progress,
) -> Result<Ingested, ImportError> {
    let started = Instant::now();
    let known = |sha1: &Sha1| repo.id_of_sha1(sha1);
    let mut report = ImportReport::default();
    let stash_file = tempfile::tempfile_in(repo.dir()).map_err(ImportError::Stash)?;
    let mut stash = Stash {
        file: std::io::BufWriter::with_capacity(1 << 20, stash_file),
        len: 0,
    };
    let mut packs = Vec::new();
    let scan = scan::scan(
        object_dirs,
        &known,
        rules,
        &mut packs,
        &mut stash,
        &mut report,
        progress,
    )?;
    // As git's fsck_finish: after every object is read, before anything is written.
    scan::check_named_blobs(&scan, &packs, repo)?;
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
    // Translation runs on every core; the writer thread deltifies, compresses and writes the
    // results in the order the walk produced them.
    let (results, written_results) = std::sync::mpsc::sync_channel(64);
    let (translated, written) = std::thread::scope(|scope| {
        let writing = std::thread::Builder::new()
            .name("forge-writer".into())
            .spawn_scoped(scope, || {
                write::write_nodes(
                    written_results,
                    &mut writer,
                    rules.tree_base_cache.unwrap_or(256 << 20),
                )
            })
            .expect("spawning a thread");
        let translated = translate::translate(&scan, stash_bytes, roots, &known, results, progress);
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
    report.verbatim = translated.verbatim;
    report.skipped_unreachable = translated.skipped_unreachable;
    report.phase_seconds[1] = lap.elapsed().as_secs_f64();
    lap = Instant::now();
    // A pushed delta against a blob the store has is kept as it is (fetches then send it
    // as it came), unless the base's own chain is already long.
    let stored_base = |sha1: &Sha1| {
        let location = repo.locate_sha1(sha1)?;
        let depth = repo.delta_depth(&location, MAX_STORED_DELTA_DEPTH).ok()?;
        (location.kind()? == Kind::Blob && depth < MAX_STORED_DELTA_DEPTH)
            .then(|| (location.id(), depth as u32))
    };
    write::write_blobs(
        &scan,
        &packs,
        &stored_base,
        &mut writer,
        &mut report,
        progress,
    )?;
    report.phase_seconds[2] = lap.elapsed().as_secs_f64();
    report.objects = report.blobs + report.trees + report.commits + report.tags;
    report.seconds = started.elapsed().as_secs_f64();
    let blobs = scan.blobs.iter().map(|(s, b)| (*s, b.id)).collect();
    let nodes = translated
        .ids
        .iter()
        .map(|(sha1, id)| (*sha1, (*id, scan.nodes[sha1].kind)))
        .collect();
    Ok(Ingested {
        writer,
        report,
        ids: IngestedIds { nodes, blobs },
    })
}
