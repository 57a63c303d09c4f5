//! One repository: its segments of objects and its refs.

use super::events::{Actor, NewEvent};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

use bstr::{BString, ByteSlice};

use crate::git::{check_ref_name, native_to_git};
use crate::object::{Kind, NativeObject, ObjectId, Sha1, decode};

use super::backend::{AttestationRecord, MetaStore, MetaWrite, SegmentEntry};
use super::cache::BoundedCache;
use super::refs::{Authorized, RefTarget, RefUpdate};
use super::segment::{
    RawEntry, Segment, SegmentWriter, Storage, WRITERS_LOCK, writers_lock, zlib_inflate_exact,
};
use super::settings::{RepoSettings, Setting};
use super::{RepoRecord, StoreError};

/// Longest delta chain a read follows before calling the store corrupt (git's own packs
/// stay below 4096).
const MAX_CHAIN: usize = 10_000;
const CACHE_BUDGET: usize = 96 << 20;
/// Objects above this size are refused as corrupt rather than allocated.
const MAX_OBJECT_SIZE: u64 = 8 << 30;

static SEGMENT_SERIAL: AtomicU64 = AtomicU64::new(1);

struct LoadedSegment {
    serial: u64,
    segment: Segment,
    /// (offset, position) of every entry, ascending; built on first use.
    by_offset: std::sync::OnceLock<Vec<(u64, u32)>>,
}

impl LoadedSegment {
    fn new(segment: Segment) -> LoadedSegment {
        LoadedSegment {
            serial: SEGMENT_SERIAL.fetch_add(1, Ordering::Relaxed),
            segment,
            by_offset: std::sync::OnceLock::new(),
        }
    }

    fn by_offset(&self) -> &[(u64, u32)] {
        self.by_offset.get_or_init(|| {
            let mut list: Vec<(u64, u32)> = (0..self.segment.len())
                .map(|pos| (self.segment.offset_at(pos), pos as u32))
                .collect();
            list.sort_unstable();
            list
        })
    }
}

/// Where an object is stored.
#[derive(Clone)]
pub struct ObjectLocation {
    segment: Arc<LoadedSegment>,
    pos: usize,
}

impl ObjectLocation {
    pub fn id(&self) -> ObjectId {
        self.segment.segment.id_at(self.pos)
    }

    pub fn sha1(&self) -> Sha1 {
        self.segment.segment.sha1_at(self.pos)
    }

    pub fn kind(&self) -> Option<Kind> {
        self.segment.segment.kind_at(self.pos)
    }

    pub fn segment_name(&self) -> &str {
        self.segment.segment.name()
    }

    fn offset(&self) -> u64 {
        self.segment.segment.offset_at(self.pos)
    }
}

/// An object read from the store, in native form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredObject {
    Blob(Vec<u8>),
    Node(Box<NativeObject>),
}

pub struct Repo {
    record: RepoRecord,
    dir: PathBuf,
    /// Refs, the segment registry and settings (redb's `repo.redb` today).
    meta: Box<dyn MetaStore>,
    /// The data directory's registry, whose event log this repository's outbox is relayed
    /// into after every write.
    log: Arc<dyn super::backend::Registry>,
    /// Who relays after a write, when not the writer itself (`relay_with`).
    relay_sink: std::sync::OnceLock<Arc<dyn Fn(u64) + Send + Sync>>,
    /// Newest first, so recent objects are found first.
    segments: RwLock<Arc<Vec<Arc<LoadedSegment>>>>,
    /// The segment generation `segments` was loaded at (`None`: a repository written
    /// before the counter existed, compared segment by segment instead).
    loaded_generation: Mutex<Option<u64>>,
    /// Decoded delta bases by (segment serial, entry offset).
    cache: Mutex<BoundedCache<(u64, u64)>>,
}

/// The bytes of an entry: inflated, or as stored when it is not compressed.
fn entry_data(entry: &RawEntry<'_>, what: impl Fn() -> String) -> Result<Vec<u8>, StoreError> {
    if entry.compressed {
        inflate(entry.data, entry.inflated_size, what)
    } else if entry.data.len() as u64 == entry.inflated_size {
        Ok(entry.data.to_vec())
    } else {
        Err(StoreError::Corrupt(format!(
            "{}: stored size differs",
            what()
        )))
    }
}

fn inflate(zlib: &[u8], expected: u64, what: impl Fn() -> String) -> Result<Vec<u8>, StoreError> {
    if expected > MAX_OBJECT_SIZE {
        return Err(StoreError::Corrupt(format!("{}: size {expected}", what())));
    }
    zlib_inflate_exact(zlib, expected as usize)
        .map_err(|why| StoreError::Corrupt(format!("{}: {why}", what())))
}

impl Repo {
    /// Lays out the object directory of a new, empty repository in `dir`.
    pub(crate) fn init_objects(dir: &Path) -> Result<(), StoreError> {
        let objects = dir.join("objects");
        std::fs::create_dir_all(&objects).map_err(|e| StoreError::io("create", &objects, e))?;
        writers_lock(&objects)?;
        Ok(())
    }

    /// A repository whose objects are in `dir` and whose metadata is in `meta`.
    pub(crate) fn open(
        dir: &Path,
        record: RepoRecord,
        meta: Box<dyn MetaStore>,
        log: Arc<dyn super::backend::Registry>,
    ) -> Result<Repo, StoreError> {
        let repo = Repo {
            record,
            dir: dir.to_owned(),
            meta,
            log,
            relay_sink: std::sync::OnceLock::new(),
            segments: RwLock::new(Arc::new(Vec::new())),
            loaded_generation: Mutex::new(None),
            cache: Mutex::new(BoundedCache::new(CACHE_BUDGET)),
        };
        repo.reload_segments()?;
        Ok(repo)
    }

    /// The repository's metadata store.
    pub fn meta(&self) -> &dyn MetaStore {
        self.meta.as_ref()
    }

    /// Creates a goal at server time; its event is relayed like every write's.
    pub fn create_goal(
        &self,
        goal: &super::goals::NewGoal,
        actor: &Actor,
    ) -> Result<super::goals::Goal, super::goals::GoalError> {
        let created = self.meta.create_goal(goal, actor, super::goals::now_ms())?;
        self.after_commit();
        Ok(created)
    }

    /// Claims an approach for `holder` at server time, with a TTL within the bounds.
    pub fn claim(
        &self,
        goal: &str,
        approach: &str,
        holder: &Actor,
        ttl_ms: Option<u64>,
    ) -> Result<super::goals::ClaimRecord, super::goals::GoalError> {
        let ttl = super::goals::claim_ttl(ttl_ms);
        let claim = self
            .meta
            .claim(goal, approach, holder, ttl, super::goals::now_ms())?;
        self.after_commit();
        Ok(claim)
    }

    /// Renews `holder`'s claim `lease` at server time (no event: see `GoalStore`).
    pub fn heartbeat(
        &self,
        goal: &str,
        approach: &str,
        lease: u64,
        holder: &str,
    ) -> Result<super::goals::ClaimRecord, super::goals::GoalError> {
        self.meta
            .heartbeat(goal, approach, lease, holder, super::goals::now_ms())
    }

    /// Ends `holder`'s claim `lease` at server time.
    pub fn release(
        &self,
        goal: &str,
        approach: &str,
        lease: u64,
        holder: &Actor,
    ) -> Result<super::goals::ClaimRecord, super::goals::GoalError> {
        let released = self
            .meta
            .release(goal, approach, lease, holder, super::goals::now_ms())?;
        self.after_commit();
        Ok(released)
    }

    pub fn name(&self) -> &str {
        &self.record.name
    }

    /// Sets how many bytes of decoded delta bases this handle keeps (the cache is emptied).
    pub fn set_cache_budget(&self, bytes: usize) {
        *self.cache.lock() = BoundedCache::new(bytes);
    }

    /// The registry id: a repository deleted and created again under the same name gets
    /// a new one.
    pub fn id(&self) -> u64 {
        self.record.id
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn objects_dir(&self) -> PathBuf {
        self.dir.join("objects")
    }

    /// Loads the registered segments (keeping those already open).
    fn reload_segments(&self) -> Result<(), StoreError> {
        let (registered, generation) = self.meta.segments()?;
        let current = self.segments();
        let mut loaded = Vec::with_capacity(registered.len());
        for SegmentEntry { name, .. } in registered {
            if let Some(open) = current.iter().find(|s| s.segment.name() == name) {
                loaded.push(open.clone());
            } else {
                loaded.push(Arc::new(LoadedSegment::new(Segment::open(
                    &self.objects_dir(),
                    &name,
                )?)));
            }
        }
        *self.segments.write() = Arc::new(loaded);
        *self.loaded_generation.lock() = generation;
        Ok(())
    }

    /// The segment generation this handle has loaded (tests; `None` before the counter).
    pub fn loaded_generation(&self) -> Option<u64> {
        *self.loaded_generation.lock()
    }

    fn segments(&self) -> Arc<Vec<Arc<LoadedSegment>>> {
        self.segments.read().clone()
    }

    /// Names of the registered segments, newest first.
    pub fn segment_names(&self) -> Vec<String> {
        self.segments()
            .iter()
            .map(|s| s.segment.name().to_owned())
            .collect()
    }

    /// Segment files in the objects directory that no committed write registered (left by
    /// a crash or an interrupted write), and quarantine directories.
    pub fn unregistered_files(&self) -> Result<Vec<PathBuf>, StoreError> {
        // The registry, not this handle's list: another process may have registered
        // segments since this handle last looked.
        let names: Vec<String> = self
            .meta
            .segments()?
            .0
            .into_iter()
            .map(|entry| entry.name)
            .collect();
        let dir = self.objects_dir();
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| StoreError::io("read", &dir, e))? {
            let path = entry.map_err(|e| StoreError::io("read", &dir, e))?.path();
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            if path.file_name().is_some_and(|n| n == WRITERS_LOCK) {
                continue;
            }
            if !names.iter().any(|n| n == stem) {
                out.push(path);
            }
        }
        out.extend(self.stale_quarantines()?);
        out.sort();
        Ok(out)
    }

    /// A private directory beside the store for incoming data (a pushed pack being
    /// indexed), removed when dropped; one left by a crash goes with the next
    /// `remove_unregistered_files`.
    pub fn quarantine(&self) -> Result<Quarantine, StoreError> {
        let lock = writers_lock(&self.objects_dir())?;
        lock.lock_shared()
            .map_err(|e| StoreError::io("lock", &self.objects_dir().join(WRITERS_LOCK), e))?;
        let dir = tempfile::Builder::new()
            .prefix(QUARANTINE_PREFIX)
            .tempdir_in(&self.dir)
            .map_err(|e| StoreError::io("create a quarantine in", &self.dir, e))?;
        Ok(Quarantine { dir, _lock: lock })
    }

    /// Quarantine directories whose writer is gone.
    fn stale_quarantines(&self) -> Result<Vec<PathBuf>, StoreError> {
        let mut out = Vec::new();
        for entry in
            std::fs::read_dir(&self.dir).map_err(|e| StoreError::io("read", &self.dir, e))?
        {
            let entry = entry.map_err(|e| StoreError::io("read", &self.dir, e))?;
            let is_quarantine = entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(QUARANTINE_PREFIX));
            if is_quarantine && entry.path().is_dir() {
                out.push(entry.path());
            }
        }
        Ok(out)
    }

    /// Segments whose bytes no longer match their checksum.
    pub fn corrupt_segments(&self) -> Vec<String> {
        self.segments()
            .iter()
            .filter(|s| !s.segment.verify_checksum())
            .map(|s| s.segment.name().to_owned())
            .collect()
    }

    /// Deletes segment files that no committed write registered, and quarantines left by
    /// an interrupted push. Does nothing while any writer (of any process) is between
    /// creating a segment or quarantine and registering or dropping it.
    pub fn remove_unregistered_files(&self) -> Result<usize, StoreError> {
        let lock = writers_lock(&self.objects_dir())?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(0),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(StoreError::io("lock", &self.objects_dir(), e));
            }
        }
        let files = self.unregistered_files()?;
        for path in &files {
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(path)
            } else {
                std::fs::remove_file(path)
            };
            removed.map_err(|e| StoreError::io("remove", path, e))?;
        }
        Ok(files.len())
    }

    /// Visits every stored object's location, segment by segment, newest first. An object
    /// stored twice is visited twice.
    pub fn for_each_location(&self, mut f: impl FnMut(ObjectLocation)) {
        for segment in self.segments().iter() {
            for pos in 0..segment.segment.len() {
                f(ObjectLocation {
                    segment: segment.clone(),
                    pos,
                })
            }
        }
    }

    /// Visits every stored entry in storage order, oldest segment first, so that delta
    /// bases stored in the same segment come before their deltas.
    pub fn for_each_entry<E: From<StoreError>>(
        &self,
        mut f: impl FnMut(&ObjectLocation, RawEntry<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        for segment in self.segments().iter().rev() {
            for &(offset, pos) in segment.by_offset() {
                let location = ObjectLocation {
                    segment: segment.clone(),
                    pos: pos as usize,
                };
                let entry = segment.segment.entry(offset)?;
                f(&location, entry)?;
            }
        }
        Ok(())
    }

    /// The native id of the object an entry's delta applies to.
    pub fn delta_base(&self, location: &ObjectLocation, storage: Storage) -> Option<ObjectId> {
        match storage {
            Storage::Full => None,
            Storage::DeltaOf(id) => Some(id),
            Storage::DeltaAt(offset) => {
                let list = location.segment.by_offset();
                let i = list.binary_search_by_key(&offset, |&(o, _)| o).ok()?;
                Some(location.segment.segment.id_at(list[i].1 as usize))
            }
        }
    }

    pub fn locate(&self, id: &ObjectId) -> Option<ObjectLocation> {
        self.segments().iter().find_map(|s| {
            s.segment.find(id).map(|pos| ObjectLocation {
                segment: s.clone(),
                pos,
            })
        })
    }

    pub fn locate_sha1(&self, sha1: &Sha1) -> Option<ObjectLocation> {
        self.segments().iter().find_map(|s| {
            s.segment.find_sha1(sha1).map(|pos| ObjectLocation {
                segment: s.clone(),
                pos,
            })
        })
    }

    pub fn contains(&self, id: &ObjectId) -> bool {
        self.locate(id).is_some()
    }

    pub fn sha1_of(&self, id: &ObjectId) -> Option<Sha1> {
        self.locate(id).map(|l| l.sha1())
    }

    pub fn id_of_sha1(&self, sha1: &Sha1) -> Option<ObjectId> {
        self.locate_sha1(sha1).map(|l| l.id())
    }

    /// Objects whose native id or SHA-1 starts with the given hex prefix.
    pub fn find_by_prefix(&self, prefix: &crate::object::HexPrefix) -> Vec<ObjectLocation> {
        let mut out: Vec<ObjectLocation> = Vec::new();
        for segment in self.segments().iter() {
            let mut positions = Vec::new();
            segment
                .segment
                .positions_with_prefix(prefix, &mut positions);
            for pos in positions {
                let loc = ObjectLocation {
                    segment: segment.clone(),
                    pos,
                };
                if !out.iter().any(|o| o.id() == loc.id()) {
                    out.push(loc);
                }
            }
        }
        out
    }

    /// The native content at a location: blob bytes, or the canonical encoding of a tree,
    /// commit or tag. Delta chains are resolved through a cache of recent bases.
    pub fn read_content(&self, location: &ObjectLocation) -> Result<(Kind, Arc<[u8]>), StoreError> {
        let mut chain: Vec<(Arc<LoadedSegment>, u64)> = Vec::new();
        let mut segment = location.segment.clone();
        let mut offset = location.offset();
        let kind = segment.segment.entry(offset)?.kind;
        let describe =
            |s: &LoadedSegment, off: u64| format!("segment {} entry at {off}", s.segment.name());
        let mut current: Arc<[u8]> = loop {
            if let Some(hit) = self.cache.lock().get(&(segment.serial, offset)) {
                break hit;
            }
            let entry = segment.segment.entry(offset)?;
            match entry.storage {
                Storage::Full => {
                    break entry_data(&entry, || describe(&segment, offset))?.into();
                }
                Storage::DeltaAt(base) => {
                    chain.push((segment.clone(), offset));
                    offset = base;
                }
                Storage::DeltaOf(base) => {
                    chain.push((segment.clone(), offset));
                    let base = self.locate(&base).ok_or_else(|| {
                        StoreError::Corrupt(format!("delta base {base} is missing"))
                    })?;
                    offset = base.offset();
                    segment = base.segment;
                }
            }
            if chain.len() > MAX_CHAIN {
                return Err(StoreError::Corrupt(format!(
                    "delta chain longer than {MAX_CHAIN} at {}",
                    location.id()
                )));
            }
        };
        for (segment, offset) in chain.iter().rev() {
            let entry = segment.segment.entry(*offset)?;
            let delta = entry_data(&entry, || describe(segment, *offset))?;
            let mut out = Vec::new();
            crate::delta::apply(&current, &delta, &mut out, entry.size)
                .map_err(|e| StoreError::Corrupt(format!("{}: {e}", describe(segment, *offset))))?;
            if out.len() as u64 != entry.size {
                return Err(StoreError::Corrupt(format!(
                    "{}: delta result has the wrong size",
                    describe(segment, *offset)
                )));
            }
            current = out.into();
            self.cache
                .lock()
                .insert((segment.serial, *offset), current.clone());
        }
        Ok((kind, current))
    }

    /// The size of an object's content, from its entry header (nothing is inflated).
    pub fn object_size(&self, location: &ObjectLocation) -> Result<u64, StoreError> {
        Ok(location.segment.segment.entry(location.offset())?.size)
    }

    /// How many deltas must be applied to read the object at `location`, counting at most
    /// to `limit` (entry headers only, nothing is inflated).
    pub fn delta_depth(
        &self,
        location: &ObjectLocation,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let mut segment = location.segment.clone();
        let mut offset = location.offset();
        let mut depth = 0;
        while depth < limit {
            match segment.segment.entry(offset)?.storage {
                Storage::Full => break,
                Storage::DeltaAt(base) => offset = base,
                Storage::DeltaOf(base) => {
                    let base = self.locate(&base).ok_or_else(|| {
                        StoreError::Corrupt(format!("delta base {base} is missing"))
                    })?;
                    offset = base.offset();
                    segment = base.segment;
                }
            }
            depth += 1;
        }
        Ok(depth)
    }

    /// The stored entry of an object: its zlib stream, as a whole object or a delta.
    pub fn raw_entry<'a>(&self, location: &'a ObjectLocation) -> Result<RawEntry<'a>, StoreError> {
        location.segment.segment.entry(location.offset())
    }

    /// Picks up segments other processes registered since this handle last looked.
    pub fn refresh(&self) -> Result<(), StoreError> {
        // One read of a counter when nothing changed, however many segments there are.
        let loaded = *self.loaded_generation.lock();
        if let Some(loaded) = loaded {
            if self.meta.generation()? == Some(loaded) {
                return Ok(());
            }
            return self.reload_segments();
        }
        let (registered, _) = self.meta.segments()?;
        let current = self.segments();
        let unchanged = registered.len() == current.len()
            && registered
                .iter()
                .zip(current.iter())
                .all(|(entry, loaded)| loaded.segment.name() == entry.name);
        if unchanged {
            return Ok(());
        }
        self.reload_segments()
    }

    /// Reads and decodes an object.
    pub fn read(&self, id: &ObjectId) -> Result<Option<StoredObject>, StoreError> {
        let Some(location) = self.locate(id) else {
            return Ok(None);
        };
        self.read_at(&location).map(Some)
    }

    pub fn read_at(&self, location: &ObjectLocation) -> Result<StoredObject, StoreError> {
        let (kind, content) = self.read_content(location)?;
        Ok(match kind {
            Kind::Blob => StoredObject::Blob(content.to_vec()),
            _ => {
                StoredObject::Node(Box::new(decode(kind, &content).map_err(|e| {
                    StoreError::Corrupt(format!("object {}: {e}", location.id()))
                })?))
            }
        })
    }

    /// An object in git form: its kind and body, regenerated from the native object.
    pub fn git_object(&self, location: &ObjectLocation) -> Result<(Kind, Vec<u8>), StoreError> {
        let (kind, content) = self.read_content(location)?;
        if kind == Kind::Blob {
            return Ok((kind, content.to_vec()));
        }
        let native = decode(kind, &content)
            .map_err(|e| StoreError::Corrupt(format!("object {}: {e}", location.id())))?;
        let body = native_to_git(&native, |child| {
            self.sha1_of(&child)
                .ok_or_else(|| StoreError::MissingObject(child.to_hex()))
        })?;
        Ok((
            kind,
            match body {
                Cow::Borrowed(b) => b.to_vec(),
                Cow::Owned(b) => b,
            },
        ))
    }

    /// Every ref, sorted by name.
    pub fn refs(&self) -> Result<Vec<(BString, RefTarget)>, StoreError> {
        self.meta.refs()
    }

    /// Goes up whenever a ref changes (see `MetaStore::refs_version`).
    pub fn refs_version(&self) -> Result<u64, StoreError> {
        self.meta.refs_version()
    }

    pub fn read_ref(&self, name: &[u8]) -> Result<Option<RefTarget>, StoreError> {
        self.meta.read_ref(name)
    }

    /// The settings kept in this repository's metadata, read at one point in time.
    pub fn settings(&self) -> Result<RepoSettings, StoreError> {
        self.meta.settings()
    }

    /// A setting's row as stored (`None` when never set); for the registry's migration of
    /// the public flag, which once lived here.
    pub(super) fn stored_setting(&self, setting: Setting) -> Result<Option<String>, StoreError> {
        self.meta.stored_setting(setting)
    }

    /// Writes a setting kept in this repository (`DataDir::set_setting` sends `public` to
    /// the registry instead).
    pub(super) fn set_setting(
        &self,
        setting: Setting,
        value: bool,
        actor: &super::events::Actor,
    ) -> Result<(), StoreError> {
        self.meta.set_setting(setting, value, actor)?;
        self.after_commit();
        Ok(())
    }

    /// Starts writing a new segment of objects for this repository.
    pub fn new_segment(&self) -> Result<SegmentWriter, StoreError> {
        SegmentWriter::create(&self.objects_dir())
    }

    /// Publishes a written segment and applies ref updates, atomically: after a crash or a
    /// failed compare-and-swap, neither is visible. Every direct ref target must be stored
    /// (in an existing segment or the new one). Only updates the gate authorized (or an
    /// import wrote) are accepted.
    pub fn commit(
        &self,
        segment: Option<SegmentWriter>,
        authorized: &[Authorized],
    ) -> Result<(), StoreError> {
        self.commit_with(segment, authorized, &[], &Actor::operator())
    }

    /// Stores verified attestations (`crate::evidence` decides which), uploaded by `actor`.
    pub fn record_attestations(
        &self,
        records: &[AttestationRecord],
        actor: &Actor,
    ) -> Result<(), StoreError> {
        self.commit_with(None, &[], records, actor)
    }

    /// Writes events that tell of no change of the store (a refused update) to the outbox.
    pub fn record_events(&self, events: Vec<NewEvent>) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        self.meta.commit(&MetaWrite {
            events,
            ..MetaWrite::default()
        })?;
        self.after_commit();
        Ok(())
    }

    /// Relays this repository's pending outbox events into the data directory's log. The
    /// change they tell of is committed already, so a failure is logged, not returned: the
    /// next relay (after the next write, or before a read of the log) moves them.
    /// After a write with events: relays them now, or hands the repository's id to the
    /// sink set with `relay_with` (a server relays off the writer's path, so a push is not
    /// kept waiting for the log).
    fn after_commit(&self) {
        match self.relay_sink.get() {
            Some(sink) => sink(self.record.id),
            None => self.relay_events(),
        }
    }

    /// Has every later write hand this repository's id to `sink` instead of relaying.
    pub fn relay_with(&self, sink: Arc<dyn Fn(u64) + Send + Sync>) {
        let _ = self.relay_sink.set(sink);
    }

    pub fn relay_events(&self) {
        if let Err(e) = super::backend::relay(
            self.log.as_ref(),
            self.meta.as_ref(),
            self.record.id,
            &self.record.name,
        ) {
            tracing::warn!("{}: relaying events: {e}", self.record.name);
        }
    }

    /// Up to `limit` outbox events after `after` (for the relay into the log).
    pub fn outbox(&self, after: u64, limit: usize) -> Result<Vec<(u64, NewEvent)>, StoreError> {
        self.meta.outbox(after, limit)
    }

    pub fn outbox_end(&self) -> Result<u64, StoreError> {
        self.meta.outbox_end()
    }

    /// The attestations naming a commit, in the order they were stored.
    pub fn attestations(&self, commit: &Sha1) -> Result<Vec<AttestationRecord>, StoreError> {
        self.meta.attestations(&commit.to_hex())
    }

    /// The repository's ref rules (`forge policy`).
    pub fn rules(&self) -> Result<Vec<super::policy::RefRule>, StoreError> {
        self.meta.rules()
    }

    /// Checks a ref rule (`RefRule::checked`) and adds it under a fresh id.
    pub fn add_rule(
        &self,
        rule: super::policy::RefRule,
        actor: &Actor,
    ) -> Result<super::policy::RefRule, super::policy::PolicyError> {
        let added = self.meta.add_rule(&rule.checked()?, actor)?;
        self.after_commit();
        Ok(added)
    }

    /// Removes a ref rule by its id.
    pub fn remove_rule(
        &self,
        id: u64,
        actor: &Actor,
    ) -> Result<super::policy::RefRule, super::policy::PolicyError> {
        let removed = self.meta.remove_rule(id, actor)?;
        self.after_commit();
        removed.ok_or_else(|| super::policy::PolicyError::NotFound {
            repo: self.name().to_owned(),
            id,
        })
    }

    /// `commit`, with attestations written in the same transaction (a push that carries
    /// its evidence), and the events of both: one per ref, one per attestation new here,
    /// by `actor`.
    pub fn commit_with(
        &self,
        segment: Option<SegmentWriter>,
        authorized: &[Authorized],
        attestations: &[AttestationRecord],
        actor: &Actor,
    ) -> Result<(), StoreError> {
        self.commit_all(
            segment,
            authorized,
            attestations,
            actor,
            GoalWrite::default(),
        )
    }

    /// `commit`, with what the refs' goal records with them in the same transaction: the
    /// approaches whose refs it creates, or the goal's end (a promotion, an abandonment).
    pub fn commit_goal(
        &self,
        segment: Option<SegmentWriter>,
        authorized: &[Authorized],
        actor: &Actor,
        goal: GoalWrite,
    ) -> Result<(), StoreError> {
        self.commit_all(segment, authorized, &[], actor, goal)
    }

    fn commit_all(
        &self,
        segment: Option<SegmentWriter>,
        authorized: &[Authorized],
        attestations: &[AttestationRecord],
        actor: &Actor,
        goal: GoalWrite,
    ) -> Result<(), StoreError> {
        let updates: Vec<&RefUpdate> = authorized.iter().map(Authorized::update).collect();
        // Names are checked where refs are made or moved; a delete takes any stored name,
        // so that a ref which should never have been accepted can still be removed.
        for update in updates.iter().filter(|u| u.new.is_some()) {
            let symbolic = match &update.new {
                Some(RefTarget::Symbolic(target)) => Some(target.as_slice()),
                _ => None,
            };
            for name in std::iter::once(update.name.as_slice()).chain(symbolic) {
                check_ref_name(name).map_err(|reason| StoreError::InvalidRefName {
                    name: name.as_bstr().to_string(),
                    reason,
                })?;
            }
        }
        let new_segment = match segment {
            Some(writer) => writer.finish()?,
            None => None,
        };
        let opened = match &new_segment {
            Some(new) => Some(Segment::open(&self.objects_dir(), &new.name)?),
            None => None,
        };
        let result = self.commit_txn(
            new_segment.as_ref(),
            opened.as_ref(),
            authorized,
            attestations,
            actor,
            goal,
        );
        if result.is_err()
            && let Some(new) = &new_segment
        {
            // Not registered: nothing refers to these files.
            let dir = self.objects_dir();
            let _ = std::fs::remove_file(dir.join(format!("{}.seg", new.name)));
            let _ = std::fs::remove_file(dir.join(format!("{}.idx", new.name)));
        }
        let generations = result?;
        self.after_commit();
        if let Some(segment) = opened {
            let loaded = Arc::new(LoadedSegment::new(segment));
            let mut list = self.segments.write();
            let mut new_list = Vec::with_capacity(list.len() + 1);
            new_list.push(loaded);
            new_list.extend(list.iter().cloned());
            *list = Arc::new(new_list);
            // Up to date only if no other handle registered a segment since this one loaded.
            if let Some((before, after)) = generations {
                let mut generation = self.loaded_generation.lock();
                if *generation == before {
                    *generation = Some(after);
                }
            }
        }
        Ok(())
    }

    /// Checks every direct target is stored, in the new segment or a registered one; the
    /// metadata commit then checks, in its transaction, that those segments are still
    /// registered, and writes the refs and the new segment's registration.
    fn commit_txn(
        &self,
        new_segment: Option<&super::segment::NewSegment>,
        opened: Option<&Segment>,
        authorized: &[Authorized],
        attestations: &[AttestationRecord],
        actor: &Actor,
        goal: GoalWrite,
    ) -> Result<Option<super::backend::GenerationStep>, StoreError> {
        let updates: Vec<&RefUpdate> = authorized.iter().map(Authorized::update).collect();
        let events: Vec<NewEvent> = authorized
            .iter()
            .filter_map(|a| a.event().cloned())
            .collect();
        let fences = authorized
            .iter()
            .filter_map(|a| a.fence().cloned())
            .collect();
        let mut needs: Vec<String> = Vec::new();
        for update in &updates {
            let Some(RefTarget::Direct(id)) = &update.new else {
                continue;
            };
            if opened.is_some_and(|s| s.find(id).is_some()) {
                continue;
            }
            match self.locate(id) {
                Some(location) => {
                    let name = location.segment_name();
                    if !needs.iter().any(|n| n == name) {
                        needs.push(name.to_owned());
                    }
                }
                None => {
                    return Err(StoreError::DanglingRef {
                        name: update.name.to_string(),
                        target: id.to_hex(),
                    });
                }
            }
        }
        let segment = new_segment.map(|new| SegmentEntry {
            name: new.name.clone(),
            objects: new.object_count,
            bytes: new.bytes,
            added_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        });
        self.meta.commit(&MetaWrite {
            refs: updates,
            segment,
            needs,
            attestations: attestations.to_vec(),
            events,
            actor: Some(actor.clone()),
            approaches: goal.approaches,
            fences,
            goal_end: goal.end,
            now: super::goals::now_ms(),
        })
    }
}

/// What a commit records of a goal with its refs (`Repo::commit_goal`).
#[derive(Debug, Clone, Default)]
pub struct GoalWrite {
    /// Approaches whose refs the commit creates.
    pub approaches: Vec<super::goals::Approach>,
    /// The goal the commit ends.
    pub end: Option<super::goals::GoalEnd>,
}

/// A merge (`gitx::merge_commits`) reads the store through this: git bodies by SHA-1, as
/// `git_object` regenerates them (the bytes git has, verbatim where the store kept them).
impl crate::gitx::ObjectSource for Repo {
    fn kind_of(&self, id: &Sha1) -> Option<Kind> {
        self.locate_sha1(id)?.kind()
    }

    fn read(
        &self,
        id: &Sha1,
        max_blob_size: u64,
        out: &mut Vec<u8>,
    ) -> Result<crate::gitx::Read, crate::gitx::StoreFailure> {
        out.clear();
        let Some(location) = self.locate_sha1(id) else {
            return Ok(crate::gitx::Read::Missing);
        };
        if location.kind() == Some(Kind::Blob) {
            let size = self.object_size(&location)?;
            if size > max_blob_size {
                return Ok(crate::gitx::Read::TooLarge { size });
            }
            out.extend_from_slice(&self.read_content(&location)?.1);
            return Ok(crate::gitx::Read::Object(Kind::Blob));
        }
        let (kind, body) = self.git_object(&location)?;
        *out = body;
        Ok(crate::gitx::Read::Object(kind))
    }

    fn header(&self, id: &Sha1) -> Result<Option<(Kind, u64)>, crate::gitx::StoreFailure> {
        let Some(location) = self.locate_sha1(id) else {
            return Ok(None);
        };
        Ok(Some(match location.kind() {
            // A blob's native content is its git body: the entry header has its size.
            Some(Kind::Blob) => (Kind::Blob, self.object_size(&location)?),
            // Other kinds differ in size between the two forms: regenerated to be exact.
            _ => {
                let (kind, body) = self.git_object(&location)?;
                (kind, body.len() as u64)
            }
        }))
    }
}

impl From<StoreError> for crate::gitx::StoreFailure {
    fn from(error: StoreError) -> Self {
        crate::gitx::StoreFailure {
            code: error.code(),
            error: Box::new(error),
        }
    }
}

const QUARANTINE_PREFIX: &str = "push-";

/// A directory for incoming data that is not part of the store (see `Repo::quarantine`).
pub struct Quarantine {
    dir: tempfile::TempDir,
    _lock: std::fs::File,
}

impl Quarantine {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::{EntryTarget, Node, Tree, TreeEntry, encode, native_id};
    use crate::store::{DataDir, Expected, RepoName};

    fn main_ref(id: ObjectId) -> RefTarget {
        RefTarget::Direct(id)
    }

    /// A segment of one blob, registered by `repo` with no ref update.
    fn add_blob(repo: &Repo, blob: &[u8]) -> ObjectId {
        let id = ObjectId::for_blob(blob);
        let mut writer = repo.new_segment().unwrap();
        writer
            .append_full(id, crate::git::git_sha1(Kind::Blob, blob), Kind::Blob, blob)
            .unwrap();
        repo.commit(Some(writer), &[]).unwrap();
        id
    }

    #[test]
    fn handles_see_each_others_segments_through_the_generation() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open_or_init(&dir.path().join("data")).unwrap();
        let name = RepoName::parse("a/b").unwrap();
        let first = data.open_or_create_repo(&name).unwrap().0;
        let second = data.open_repo(&name).unwrap();
        // A new repository has registered nothing yet.
        assert_eq!(first.loaded_generation(), Some(0));

        let one = add_blob(&first, b"one\n");
        assert_eq!(first.loaded_generation(), Some(1));
        assert!(second.locate(&one).is_none());
        second.refresh().unwrap();
        assert!(second.locate(&one).is_some());
        assert_eq!(second.loaded_generation(), Some(1));

        let two = add_blob(&second, b"two\n");
        assert_eq!(second.loaded_generation(), Some(2));
        // `first` loaded generation 1 and did not see 2 being registered.
        assert!(first.locate(&two).is_none());
        first.refresh().unwrap();
        assert!(first.locate(&two).is_some() && first.locate(&one).is_some());
        assert_eq!(first.loaded_generation(), Some(2));

        // Registering while another handle registered meanwhile leaves this handle behind,
        // so its next refresh reloads instead of trusting a generation it skipped.
        let three = add_blob(&first, b"three\n");
        let four = add_blob(&second, b"four\n");
        assert_eq!(first.loaded_generation(), Some(3));
        assert_eq!(second.loaded_generation(), Some(2), "it did not load 3");
        second.refresh().unwrap();
        assert_eq!(second.loaded_generation(), Some(4));
        assert!(second.locate(&three).is_some() && second.locate(&four).is_some());
        first.refresh().unwrap();
        assert!(first.locate(&four).is_some());
        // Nothing changed: one read of the counter, nothing reloaded.
        let before = first.segment_names();
        first.refresh().unwrap();
        assert_eq!(first.segment_names(), before);
        assert_eq!(first.loaded_generation(), Some(4));
    }

    #[test]
    fn objects_and_refs_round_trip_with_compare_and_swap() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open_or_init(&dir.path().join("data")).unwrap();
        let repo = data
            .open_or_create_repo(&RepoName::parse("a/b").unwrap())
            .unwrap()
            .0;

        let blob = b"hello\n";
        let blob_id = ObjectId::for_blob(blob);
        let blob_sha1 = crate::git::git_sha1(Kind::Blob, blob);
        let tree = NativeObject::Parsed {
            node: Node::Tree(Tree {
                entries: vec![TreeEntry {
                    mode: "100644".into(),
                    name: "hello".into(),
                    target: EntryTarget::Object(blob_id),
                }],
            }),
            git_verbatim: None,
        };
        let encoded = encode(&tree);
        let tree_id = native_id(Kind::Tree, &encoded);
        let git_tree = native_to_git(&tree, |_| Ok::<_, ()>(blob_sha1))
            .unwrap()
            .into_owned();
        let tree_sha1 = crate::git::git_sha1(Kind::Tree, &git_tree);

        let mut writer = repo.new_segment().unwrap();
        writer
            .append_full(blob_id, blob_sha1, Kind::Blob, blob)
            .unwrap();
        writer
            .append_full(tree_id, tree_sha1, Kind::Tree, &encoded)
            .unwrap();
        let create = RefUpdate {
            name: "refs/heads/main".into(),
            expected: Expected::Absent,
            new: Some(main_ref(tree_id)),
        };
        repo.commit(Some(writer), &[Authorized::by_import(create.clone())])
            .unwrap();

        assert_eq!(
            repo.read(&blob_id).unwrap(),
            Some(StoredObject::Blob(blob.to_vec()))
        );
        assert_eq!(
            repo.read(&tree_id).unwrap(),
            Some(StoredObject::Node(Box::new(tree)))
        );
        assert_eq!(repo.id_of_sha1(&tree_sha1), Some(tree_id));
        let location = repo.locate(&tree_id).unwrap();
        assert_eq!(
            repo.git_object(&location).unwrap(),
            (Kind::Tree, git_tree.to_vec())
        );

        // A stale expectation is refused and changes nothing.
        let err = repo
            .commit(None, &[Authorized::by_import(create.clone())])
            .unwrap_err();
        assert!(matches!(err, StoreError::RefConflict { .. }), "{err}");
        // A ref to an object that is not stored is refused.
        let dangling = RefUpdate {
            name: "refs/heads/other".into(),
            expected: Expected::Absent,
            new: Some(main_ref(ObjectId([9; 32]))),
        };
        assert!(matches!(
            repo.commit(None, &[Authorized::by_import(dangling)]),
            Err(StoreError::DanglingRef { .. })
        ));
        // All or nothing: a good update beside a bad one does not apply.
        let good = RefUpdate {
            name: "refs/tags/v1".into(),
            expected: Expected::Absent,
            new: Some(main_ref(blob_id)),
        };
        let bad = RefUpdate {
            name: "refs/heads/main".into(),
            expected: Expected::Value(main_ref(blob_id)),
            new: None,
        };
        assert!(
            repo.commit(
                None,
                &[
                    Authorized::by_import(good.clone()),
                    Authorized::by_import(bad)
                ]
            )
            .is_err()
        );
        assert_eq!(repo.read_ref(b"refs/tags/v1").unwrap(), None);
        // Invalid names are refused.
        let hostile = RefUpdate {
            name: "refs/../../etc".into(),
            ..good.clone()
        };
        assert!(matches!(
            repo.commit(None, &[Authorized::by_import(hostile)]),
            Err(StoreError::InvalidRefName { .. })
        ));
        // Deleting with the right expectation works.
        let delete = RefUpdate {
            name: "refs/heads/main".into(),
            expected: Expected::Value(main_ref(tree_id)),
            new: None,
        };
        repo.commit(
            None,
            &[Authorized::by_import(delete), Authorized::by_import(good)],
        )
        .unwrap();
        assert_eq!(repo.read_ref(b"refs/heads/main").unwrap(), None);
        assert_eq!(
            repo.read_ref(b"refs/tags/v1").unwrap(),
            Some(main_ref(blob_id))
        );

        // A segment written but never committed is left over, and removed by the clean-up.
        let mut writer = repo.new_segment().unwrap();
        writer
            .append_full(ObjectId([3; 32]), Sha1([3; 20]), Kind::Blob, b"x")
            .unwrap();
        let unregistered = writer.finish().unwrap().unwrap();
        drop(unregistered);
        assert_eq!(repo.unregistered_files().unwrap().len(), 2);
        assert_eq!(repo.remove_unregistered_files().unwrap(), 2);
        assert!(repo.unregistered_files().unwrap().is_empty());
        assert!(repo.contains(&blob_id));
    }
}
