//! The one module that talks to gitoxide. gix's API changes with every release; everything
//! else in the crate uses the plain types below.
//!
//! It offers: SHA-1 hashing with collision detection, read access to a local git
//! repository for `forge import` (refs, HEAD, pack files decoded in parallel, loose objects,
//! raw pack entries so their deltas can be kept), indexing of pushed packs, and three-way
//! merges of commits over the forge's own store (`merge`).

pub mod merge;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use bstr::BString;

use crate::object::{Kind, Sha1};

pub use merge::{
    Conflict, ConflictKind, MergeError, MergeLabels, MergeLimits, MergeOutcome, NewObject,
    ObjectSource, Read, ReadStats, Stage, StoreFailure, merge_commits,
};

/// SHA-1 with collision detection, as git computes object ids.
pub struct Hasher(gix::hash::Hasher);

impl Hasher {
    pub fn new() -> Self {
        Hasher(gix::hash::hasher(gix::hash::Kind::Sha1))
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes)
    }

    /// The digest. A detected collision attack yields an id no real object has (all `f`s),
    /// so the object cannot be confused with the one it collides with.
    pub fn finish(self) -> Sha1 {
        match self.0.try_finalize() {
            Ok(id) => Sha1::from_bytes(id.as_bytes()).expect("SHA-1 is 20 bytes"),
            Err(_) => Sha1([0xff; 20]),
        }
    }
}

impl Default for Hasher {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a local git repository could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path} is not a git repository: {message}")]
    NotARepository { path: PathBuf, message: String },
    #[error("cannot read {what} of {path}: {message}")]
    Read {
        path: PathBuf,
        what: &'static str,
        message: String,
    },
}

fn read_error(path: &Path, what: &'static str, e: impl std::fmt::Display) -> SourceError {
    SourceError::Read {
        path: path.to_owned(),
        what,
        message: e.to_string(),
    }
}

/// Where a ref points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceTarget {
    Object(Sha1),
    Symbolic(BString),
}

#[derive(Debug, Clone)]
pub struct SourceRef {
    pub name: BString,
    pub target: SourceTarget,
}

/// A local git repository opened for import.
pub struct SourceRepo {
    repo: gix::Repository,
}

fn kind_of(kind: gix::objs::Kind) -> Kind {
    match kind {
        gix::objs::Kind::Blob => Kind::Blob,
        gix::objs::Kind::Tree => Kind::Tree,
        gix::objs::Kind::Commit => Kind::Commit,
        gix::objs::Kind::Tag => Kind::Tag,
    }
}

fn sha1_of(id: &gix::oid) -> Sha1 {
    Sha1::from_bytes(id.as_bytes()).expect("SHA-1 repository")
}

impl SourceRepo {
    pub fn open(path: &Path) -> Result<SourceRepo, SourceError> {
        if !path.exists() {
            return Err(SourceError::NotARepository {
                path: path.to_owned(),
                message: "no such file or directory".into(),
            });
        }
        let repo = gix::open(path).map_err(|e| SourceError::NotARepository {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        if repo.object_hash() != gix::hash::Kind::Sha1 {
            return Err(SourceError::NotARepository {
                path: path.to_owned(),
                message: "only SHA-1 repositories are supported".into(),
            });
        }
        Ok(SourceRepo { repo })
    }

    pub fn is_shallow(&self) -> bool {
        self.repo.is_shallow().unwrap_or(false)
    }

    /// Every ref, then `HEAD` (symbolic or detached; absent when the file is missing).
    pub fn refs(&self) -> Result<Vec<SourceRef>, SourceError> {
        let dir = self.repo.git_dir();
        let platform = self
            .repo
            .references()
            .map_err(|e| read_error(dir, "refs", e))?;
        let mut out = Vec::new();
        for reference in platform.all().map_err(|e| read_error(dir, "refs", e))? {
            let reference = reference.map_err(|e| read_error(dir, "refs", e))?;
            out.push(convert_ref(&reference.inner));
        }
        match self.repo.find_reference("HEAD") {
            Ok(head) => out.push(convert_ref(&head.inner)),
            Err(e) => {
                if dir.join("HEAD").exists() {
                    return Err(read_error(dir, "HEAD", e));
                }
            }
        }
        Ok(out)
    }

    /// Object directories: the repository's own, then its alternates (recursively).
    pub fn object_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = vec![self.repo.objects.store_ref().path().to_owned()];
        let mut i = 0;
        while i < dirs.len() && dirs.len() < 16 {
            let alternates = dirs[i].join("info").join("alternates");
            if let Ok(text) = std::fs::read_to_string(&alternates) {
                for line in text.lines().map(str::trim) {
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    let path = dirs[i].join(line);
                    if !dirs.contains(&path) {
                        dirs.push(path);
                    }
                }
            }
            i += 1;
        }
        dirs
    }
}

fn convert_ref(r: &gix::refs::Reference) -> SourceRef {
    SourceRef {
        name: r.name.as_bstr().to_owned(),
        target: match &r.target {
            gix::refs::Target::Object(id) => SourceTarget::Object(sha1_of(id)),
            gix::refs::Target::Symbolic(name) => SourceTarget::Symbolic(name.as_bstr().to_owned()),
        },
    }
}

/// The `.idx` files of the packs in an objects directory.
pub fn pack_indices(objects_dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let pack_dir = objects_dir.join("pack");
    let entries = match std::fs::read_dir(&pack_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read_error(&pack_dir, "pack directory", e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| read_error(&pack_dir, "pack directory", e))?
            .path();
        if path.extension().is_some_and(|e| e == "idx") && path.with_extension("pack").exists() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// How a pack entry is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryStorage {
    Full,
    /// A delta against the entry at this pack offset.
    OfsDelta(u64),
    /// A delta against the object with this id.
    RefDelta(Sha1),
}

/// A pack entry's raw bytes: how it is stored and its zlib stream.
pub struct RawEntry<'a> {
    pub storage: EntryStorage,
    /// Size of the inflated stream (the object for `Full`, the delta instructions otherwise).
    pub inflated_size: u64,
    pub zlib: &'a [u8],
}

/// One pack of a source repository, read with its index.
pub struct SourcePack {
    bundle: gix_pack::Bundle,
    /// Every entry's start offset, ascending, then the end of the entry data.
    offsets: Vec<u64>,
}

impl SourcePack {
    pub fn open(idx: &Path) -> Result<SourcePack, SourceError> {
        let bundle = gix_pack::Bundle::at(idx, gix::hash::Kind::Sha1)
            .map_err(|e| read_error(idx, "pack", e))?;
        let mut offsets = bundle.index.sorted_offsets();
        offsets.push(bundle.pack.pack_end() as u64);
        Ok(SourcePack { bundle, offsets })
    }

    pub fn path(&self) -> &Path {
        self.bundle.pack.path()
    }

    pub fn num_objects(&self) -> u32 {
        self.bundle.index.num_objects()
    }

    /// Decodes every object in parallel, verifying the pack checksum, every entry's CRC32 and
    /// every object's SHA-1. `f` sees (id, kind, pack offset, body) once per object.
    pub fn for_each_object<F>(&self, interrupt: &AtomicBool, f: F) -> Result<(), SourceError>
    where
        F: FnMut(Sha1, Kind, u64, &[u8]) + Send + Clone,
    {
        let mut f = f;
        self.bundle
            .index
            .traverse_with_index(
                &self.bundle.pack,
                move |kind, data, entry, _progress| {
                    f(sha1_of(&entry.oid), kind_of(kind), entry.pack_offset, data);
                    Ok(())
                },
                &mut gix::utils::progress::Discard,
                interrupt,
                gix_pack::index::traverse::with_index::Options {
                    thread_limit: None,
                    check: gix_pack::index::traverse::SafetyCheck::All,
                    alloc_limit_bytes: None,
                },
            )
            .map_err(|e| read_error(self.path(), "pack objects", e))?;
        Ok(())
    }

    /// Decodes one object of this pack (resolving its delta chain).
    pub fn decode(&self, id: &Sha1) -> Result<Vec<u8>, SourceError> {
        let mut out = Vec::new();
        let mut inflate = gix::zlib::Inflate::default();
        self.bundle
            .find(
                gix::oid::from_bytes_unchecked(id.as_bytes()),
                &mut out,
                &mut inflate,
                &mut gix_pack::cache::Never,
            )
            .map_err(|e| read_error(self.path(), "pack object", format!("{id}: {e}")))?
            .ok_or_else(|| read_error(self.path(), "pack object", format!("{id} is not in it")))?;
        Ok(out)
    }

    /// The stored form of the entry at `offset`.
    pub fn raw_entry(&self, offset: u64) -> Result<RawEntry<'_>, SourceError> {
        let entry = self
            .bundle
            .pack
            .entry(offset)
            .map_err(|e| read_error(self.path(), "pack entry", e))?;
        let next = match self.offsets.binary_search(&offset) {
            Ok(i) if i + 1 < self.offsets.len() => self.offsets[i + 1],
            _ => {
                return Err(read_error(
                    self.path(),
                    "pack entry",
                    "offset is not an entry",
                ));
            }
        };
        let storage = match entry.header {
            gix_pack::data::entry::Header::OfsDelta { base_distance } => EntryStorage::OfsDelta(
                entry
                    .checked_base_pack_offset(base_distance)
                    .ok_or_else(|| read_error(self.path(), "pack entry", "bad delta offset"))?,
            ),
            gix_pack::data::entry::Header::RefDelta { base_id } => {
                EntryStorage::RefDelta(sha1_of(&base_id))
            }
            _ => EntryStorage::Full,
        };
        let zlib = self
            .bundle
            .pack
            .entry_slice(entry.data_offset..next)
            .ok_or_else(|| read_error(self.path(), "pack entry", "entry beyond the pack end"))?;
        Ok(RawEntry {
            storage,
            inflated_size: entry.decompressed_size,
            zlib,
        })
    }
}

/// Every loose object of an objects directory: (id, kind, body). The id is the file name;
/// callers verify it.
pub fn for_each_loose_object(
    objects_dir: &Path,
    mut f: impl FnMut(Sha1, Kind, &[u8]) -> Result<(), SourceError>,
) -> Result<(), SourceError> {
    let store = gix::odb::loose::Store::at(objects_dir, gix::hash::Kind::Sha1);
    let mut buf = Vec::new();
    for id in store.iter() {
        let id = id.map_err(|e| read_error(objects_dir, "loose objects", e))?;
        let data = store
            .try_find(&id, &mut buf)
            .map_err(|e| read_error(objects_dir, "loose object", format!("{id}: {e}")))?
            .ok_or_else(|| read_error(objects_dir, "loose object", format!("{id} vanished")))?;
        f(sha1_of(&id), kind_of(data.kind), data.data)?;
    }
    Ok(())
}

/// What `index_pack` wrote.
pub struct IndexedPack {
    pub objects: u32,
    /// The `.idx` beside the `.pack` (`None` for an empty pack: nothing is written).
    pub index_path: Option<PathBuf>,
}

/// Where a thin pack's missing bases come from: the git bytes of an object by SHA-1.
struct BaseLookup<F>(F);

impl<F> gix::objs::Find for BaseLookup<F>
where
    F: Fn(&Sha1, &mut Vec<u8>) -> Option<Kind>,
{
    fn try_find<'a>(
        &self,
        id: &gix::oid,
        buffer: &'a mut Vec<u8>,
    ) -> Result<Option<gix::objs::Data<'a>>, gix::error::Error> {
        buffer.clear();
        let Some(kind) = (self.0)(&sha1_of(id), buffer) else {
            return Ok(None);
        };
        let kind = match kind {
            Kind::Blob => gix::objs::Kind::Blob,
            Kind::Tree => gix::objs::Kind::Tree,
            Kind::Commit => gix::objs::Kind::Commit,
            Kind::Tag => gix::objs::Kind::Tag,
        };
        Ok(Some(gix::objs::Data {
            kind,
            object_hash: gix::hash::Kind::Sha1,
            data: buffer,
        }))
    }
}

/// Why a pushed pack could not be indexed, in words for the client (no server paths).
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("an object is larger than this server's limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("{0}")]
    Refused(String),
}

/// What indexing a pack may use.
#[derive(Debug, Clone, Copy)]
pub struct IndexLimits {
    /// Largest single allocation (object, delta result, the delta tree).
    pub alloc_bytes: usize,
    /// Threads resolving deltas (`None`: every core).
    pub threads: Option<usize>,
}

/// Where `index_pack` is, for progress: objects read from the stream (out of the count the
/// pack header declares), then objects whose ids were computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexStage {
    Receiving,
    Resolving,
}

/// Reads a pack stream into `pack_dir` as a `.pack` with its `.idx`, verifying the pack's
/// checksum and every object's SHA-1. Ref-deltas whose base is not in the pack (a thin
/// pack) get the base from `lookup`, which the written pack then contains. No single
/// allocation may exceed `alloc_limit` bytes (declared object sizes are the client's).
pub fn index_pack(
    pack: &mut dyn std::io::BufRead,
    pack_dir: &Path,
    lookup: impl Fn(&Sha1, &mut Vec<u8>) -> Option<Kind>,
    limits: IndexLimits,
    interrupt: &AtomicBool,
    on_progress: &(dyn Fn(IndexStage, u64, Option<u64>) + Sync),
) -> Result<IndexedPack, IndexError> {
    let counters = index_progress::Counters::default();
    let (finish, finished) = std::sync::mpsc::channel::<()>();
    let outcome = std::thread::scope(|scope| {
        let counters = &counters;
        scope.spawn(move || counters.report_until(&finished, on_progress));
        let outcome = gix_pack::Bundle::write_to_directory(
            pack,
            Some(pack_dir),
            &mut counters.root(),
            interrupt,
            Some(BaseLookup(lookup)),
            gix::hash::Kind::Sha1,
            gix_pack::bundle::write::Options {
                thread_limit: limits.threads,
                iteration_mode: gix_pack::data::input::Mode::Verify,
                index_version: Default::default(),
                alloc_limit_bytes: Some(limits.alloc_bytes),
                compression: gix::zlib::Compression::BEST_SPEED,
            },
        );
        drop(finish);
        outcome
    })
    .map_err(|e| {
        if e.is_resource_exhausted() {
            IndexError::TooLarge {
                limit: limits.alloc_bytes,
            }
        } else {
            IndexError::Refused(error_chain(&e))
        }
    })?;
    Ok(IndexedPack {
        objects: outcome.index.num_objects,
        index_path: outcome.index_path,
    })
}

/// An error with its sources, `outer: inner: innermost`, without repeating a source that
/// the outer message already quotes.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        source = inner.source();
    }
    text
}

/// gix reports progress through counters it increments from its worker threads; these
/// hold them so a thread can read them and report in the crate's own terms.
mod index_progress {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use parking_lot::Mutex;
    use std::time::Duration;

    use gix::progress::{Count, Id, MessageLevel, NestedProgress, Progress, StepShared, Unit};

    use super::IndexStage;

    const OBJECTS_INDEXED: Id = *b"IWIO";
    const OBJECTS_RESOLVED: Id = *b"IWRO";
    const POLL: Duration = Duration::from_millis(50);

    /// A count and its total as gix declared it (0: none).
    #[derive(Clone, Default)]
    struct Counter {
        step: StepShared,
        max: Arc<AtomicUsize>,
    }

    impl Counter {
        fn read(&self) -> Tally {
            let max = self.max.load(Ordering::Relaxed);
            (
                self.step.load(Ordering::Relaxed) as u64,
                (max > 0).then_some(max as u64),
            )
        }
    }

    type Registry = Arc<Mutex<Vec<(Id, Counter)>>>;
    /// A count with its total, if known.
    type Tally = (u64, Option<u64>);

    /// Every counter gix created.
    #[derive(Default)]
    pub(super) struct Counters(Registry);

    impl Counters {
        pub(super) fn root(&self) -> Node {
            Node::new(self.0.clone(), *b"ROOT")
        }

        /// Calls `report` with the latest counts until `finished` says so (or is dropped),
        /// then once more.
        pub(super) fn report_until(
            &self,
            finished: &std::sync::mpsc::Receiver<()>,
            report: &(dyn Fn(IndexStage, u64, Option<u64>) + Sync),
        ) {
            let mut last: Option<(IndexStage, u64, Option<u64>)> = None;
            loop {
                let done = !matches!(
                    finished.recv_timeout(POLL),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout)
                );
                let (received, resolved) = self.current();
                let checking_started =
                    last.is_some_and(|(stage, ..)| stage == IndexStage::Resolving);
                let mut send = |now: (IndexStage, u64, Option<u64>)| {
                    if last != Some(now) {
                        report(now.0, now.1, now.2);
                        last = Some(now);
                    }
                };
                match (received, resolved) {
                    (Some((count, max)), None) => send((IndexStage::Receiving, count, max)),
                    (received, Some((count, max))) => {
                        // The last count of receiving before checking starts.
                        if let Some((received, received_max)) = received
                            && !checking_started
                        {
                            send((IndexStage::Receiving, received, received_max));
                        }
                        send((IndexStage::Resolving, count, max));
                    }
                    (None, None) => {}
                }
                if done {
                    return;
                }
            }
        }

        /// Objects received and objects checked so far, each with its declared total; the
        /// second only once checking started.
        fn current(&self) -> (Option<Tally>, Option<Tally>) {
            let counters = self.0.lock();
            let find = |wanted: Id| {
                counters
                    .iter()
                    .rev()
                    .find(|(id, _)| *id == wanted)
                    .map(|(_, counter)| counter.read())
            };
            (
                find(OBJECTS_INDEXED),
                find(OBJECTS_RESOLVED).filter(|(count, _)| *count > 0),
            )
        }
    }

    pub(super) struct Node {
        registry: Registry,
        id: Id,
        name: String,
        counter: Counter,
    }

    impl Node {
        fn new(registry: Registry, id: Id) -> Node {
            let node = Node {
                registry,
                id,
                name: String::new(),
                counter: Counter::default(),
            };
            node.registry.lock().push((id, node.counter.clone()));
            node
        }
    }

    impl Count for Node {
        fn set(&self, step: usize) {
            self.counter.step.store(step, Ordering::Relaxed);
        }

        fn step(&self) -> usize {
            self.counter.step.load(Ordering::Relaxed)
        }

        fn inc_by(&self, step: usize) {
            self.counter.step.fetch_add(step, Ordering::Relaxed);
        }

        fn counter(&self) -> StepShared {
            self.counter.step.clone()
        }
    }

    impl Progress for Node {
        fn init(&mut self, max: Option<usize>, _unit: Option<Unit>) {
            self.counter.max.store(max.unwrap_or(0), Ordering::Relaxed);
            self.counter.step.store(0, Ordering::Relaxed);
        }

        fn max(&self) -> Option<usize> {
            Some(self.counter.max.load(Ordering::Relaxed)).filter(|&m| m > 0)
        }

        fn set_max(&mut self, max: Option<usize>) -> Option<usize> {
            let previous = self.counter.max.swap(max.unwrap_or(0), Ordering::Relaxed);
            (previous > 0).then_some(previous)
        }

        fn set_name(&mut self, name: String) {
            self.name = name;
        }

        fn name(&self) -> Option<String> {
            Some(self.name.clone())
        }

        fn id(&self) -> Id {
            self.id
        }

        fn message(&self, _level: MessageLevel, _message: String) {}
    }

    impl NestedProgress for Node {
        type SubProgress = Node;

        fn add_child(&mut self, name: impl Into<String>) -> Node {
            self.add_child_with_id(name, *b"    ")
        }

        fn add_child_with_id(&mut self, name: impl Into<String>, id: Id) -> Node {
            let mut child = Node::new(self.registry.clone(), id);
            child.name = name.into();
            child
        }
    }
}
