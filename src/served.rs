//! What a server keeps per repository it serves, between requests, shared by upload-pack
//! and receive-pack: the commit graph, the clone pack, peeled tags, the set of reachable
//! objects, the push lock and the background repack schedule. Below both services, so that
//! neither depends on the other.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bstr::BString;
use parking_lot::{Mutex, RwLock};

use crate::history::{CommitGraph, CommitIndex};
use crate::object::{IdMap, IdSet, ObjectId};
use crate::packing::ClonePack;
use crate::packing::tier::{ManifestStamp, manifest_stamp};
use crate::protocol::pktline;
use crate::store::{RefTarget, Repo, StoreError};

/// Limits on what one push may bring.
#[derive(Debug, Clone, Copy)]
pub struct PushLimits {
    /// The whole request body (commands and pack).
    pub max_push_bytes: u64,
    /// One object, inflated (and so any one buffer while indexing).
    pub max_object_bytes: u64,
    /// Threads checking objects while indexing (`None`: every core).
    pub index_threads: Option<usize>,
}

impl Default for PushLimits {
    fn default() -> PushLimits {
        PushLimits {
            max_push_bytes: 2 << 30,
            max_object_bytes: 512 << 20,
            index_threads: None,
        }
    }
}

/// The objects reachable from a set of refs.
pub(crate) type ReachableAt = (Vec<(BString, RefTarget)>, Arc<IdSet<ObjectId>>);

/// Per-repository state a server keeps between requests: the commit graph, the clone pack,
/// peeled tags and the set of reachable objects (for wants that are not ref tips).
pub struct RepoState {
    pub repo: Repo,
    pub(crate) graph: RwLock<CommitGraph>,
    tier: Mutex<Option<(ManifestStamp, Arc<ClonePack>)>>,
    peeled: Mutex<IdMap<ObjectId, Option<ObjectId>>>,
    pub(crate) reachable: Mutex<Option<ReachableAt>>,
    /// What reads by id learned of the refs, for one version of them.
    reach: Mutex<RefReach>,
    pub(crate) settings: ServeSettings,
    repack: Mutex<RepackSchedule>,
    /// Pushes check and move refs one at a time (they receive their packs in parallel).
    push: Mutex<()>,
}

/// What reads by id learned about one version of the refs (`Repo::refs_version`): the
/// commit-graph positions of their (peeled) tips, answers already given, and the objects
/// they reach once a read needed them. Reading all refs of a repository with thousands of
/// them costs milliseconds; the version costs one metadata read.
#[derive(Default)]
struct RefReach {
    version: Option<u64>,
    tips: Option<Arc<Vec<CommitIndex>>>,
    answers: IdMap<ObjectId, bool>,
    objects: Option<Arc<IdSet<ObjectId>>>,
}

/// Answers kept per version of the refs (a hostile reader may ask for endless ids).
const REACH_ANSWERS: usize = 4096;

impl RefReach {
    /// Itself if it is about `version`, else emptied for it.
    fn at(&mut self, version: u64) -> &mut RefReach {
        if self.version != Some(version) {
            *self = RefReach {
                version: Some(version),
                ..RefReach::default()
            };
        }
        self
    }
}

/// How a server answers fetches.
#[derive(Debug, Clone, Copy)]
pub struct ServeSettings {
    /// Silence after which a pack being prepared sends a keep-alive packet (git's
    /// `uploadpack.keepAlive`); `None` never sends one.
    pub keepalive: Option<Duration>,
    /// Rebuild a missing or stale clone pack in the background after a full clone or a push.
    pub auto_repack: bool,
    pub push: PushLimits,
}

impl Default for ServeSettings {
    fn default() -> ServeSettings {
        ServeSettings {
            keepalive: Some(pktline::KEEPALIVE),
            auto_repack: true,
            push: PushLimits::default(),
        }
    }
}

/// Background rebuilds of the clone pack: one at a time, and after one that took `t`, none
/// before `REPACK_SPACING × t` has passed, so a repository whose refs move all the time
/// spends at most about a tenth of a core on it.
#[derive(Default)]
struct RepackSchedule {
    running: bool,
    not_before: Option<Instant>,
}

const REPACK_SPACING: u32 = 10;

impl RepoState {
    pub fn new(repo: Repo, settings: ServeSettings) -> RepoState {
        RepoState {
            repo,
            settings,
            repack: Mutex::new(RepackSchedule::default()),
            push: Mutex::new(()),
            graph: RwLock::new(CommitGraph::default()),
            tier: Mutex::new(None),
            peeled: Mutex::new(IdMap::default()),
            reachable: Mutex::new(None),
            reach: Mutex::new(RefReach::default()),
        }
    }

    /// The current clone pack, reopened when `forge repack` replaced it (seen by the
    /// manifest's file identity, so an unchanged tier costs one `stat`).
    pub fn clone_pack(&self) -> Result<Option<Arc<ClonePack>>, StoreError> {
        let mut tier = self.tier.lock();
        let Some(stamp) = manifest_stamp(self.repo.dir())? else {
            *tier = None;
            return Ok(None);
        };
        if let Some((seen, pack)) = tier.as_ref()
            && *seen == stamp
        {
            return Ok(Some(pack.clone()));
        }
        match ClonePack::open(self.repo.dir()) {
            Ok(Some(pack)) => {
                let pack = Arc::new(pack);
                *tier = Some((stamp, pack.clone()));
                Ok(Some(pack))
            }
            Ok(None) => Ok(None),
            // A broken tier is derived data: serve from the store and let repack fix it.
            Err(e) => {
                tracing::warn!("clone pack of {} unusable: {e}", self.repo.name());
                Ok(None)
            }
        }
    }

    /// Runs `f` on the commit graph, which it may extend.
    /// Rebuilds the clone pack in a background thread unless one is running or the last
    /// one ended too recently. The rebuild loads its own commit graph so that fetches go on
    /// meanwhile; they see the new pack by its manifest.
    pub fn schedule_repack(self: &Arc<Self>) {
        if !self.settings.auto_repack {
            return;
        }
        {
            let mut schedule = self.repack.lock();
            if schedule.running || schedule.not_before.is_some_and(|t| Instant::now() < t) {
                return;
            }
            schedule.running = true;
        }
        let state = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("repack".into())
            .spawn(move || {
                let started = Instant::now();
                let mut graph = CommitGraph::default();
                match crate::packing::repack(&state.repo, &mut graph, false) {
                    Ok(report) => tracing::info!(
                        "repacked {}: {} objects, {} bytes in {:.2} s",
                        state.repo.name(),
                        report.objects,
                        report.pack_bytes,
                        report.seconds
                    ),
                    Err(e) => tracing::warn!("repack of {} failed: {e}", state.repo.name()),
                }
                let mut schedule = state.repack.lock();
                schedule.running = false;
                schedule.not_before = Some(Instant::now() + started.elapsed() * REPACK_SPACING);
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start a repack thread: {e}");
            self.repack.lock().running = false;
        }
    }

    /// Held while a push checks its updates and moves refs.
    pub fn push_lock(&self) -> parking_lot::MutexGuard<'_, ()> {
        self.push.lock()
    }

    pub fn with_graph<T>(&self, f: impl FnOnce(&mut CommitGraph) -> T) -> T {
        f(&mut self.graph.write())
    }

    /// Every object reachable from `refs` (the repository's refs now), kept until the refs
    /// change: what may be fetched or read by id.
    pub(crate) fn reachable_set(
        &self,
        graph: &mut CommitGraph,
        refs: &[(BString, RefTarget)],
    ) -> Result<Arc<IdSet<ObjectId>>, StoreError> {
        let mut cache = self.reachable.lock();
        if let Some((at, set)) = cache.as_ref()
            && at == refs
        {
            return Ok(set.clone());
        }
        let tips: Vec<ObjectId> = refs
            .iter()
            .filter_map(|(_, t)| match t {
                RefTarget::Direct(id) => Some(*id),
                RefTarget::Symbolic(_) => None,
            })
            .collect();
        let set = Arc::new(crate::history::reachable(&self.repo, graph, &tips)?);
        *cache = Some((refs.to_vec(), set.clone()));
        Ok(set)
    }

    /// Whether commit `id` is in the history of a ref (what a read by id may show: an
    /// object a force-push left behind is not served, as a fetch would not send it). A
    /// walk of the commit graph bounded by generation numbers from the ref tips, remembered
    /// until the refs change.
    pub fn commit_reachable(&self, id: ObjectId) -> Result<bool, StoreError> {
        // Read before the refs it stands for: what is kept under a version is never older.
        let version = self.repo.refs_version()?;
        if let Some(&known) = self.reach.lock().at(version).answers.get(&id) {
            return Ok(known);
        }
        let mut graph = self.graph.write();
        let Some(target) = graph.load(&self.repo, id)? else {
            return Ok(false);
        };
        let known_tips = self.reach.lock().at(version).tips.clone();
        let tips = match known_tips {
            Some(tips) => tips,
            None => {
                let mut tips = Vec::new();
                for (_, target) in &self.repo.refs()? {
                    if let RefTarget::Direct(tip) = target {
                        let peeled = self.peeled(*tip)?.unwrap_or(*tip);
                        tips.extend(graph.load(&self.repo, peeled)?);
                    }
                }
                let tips = Arc::new(tips);
                self.reach.lock().at(version).tips = Some(tips.clone());
                tips
            }
        };
        let reached = graph.reaches(&tips, target);
        drop(graph);
        let mut reach = self.reach.lock();
        let answers = &mut reach.at(version).answers;
        if answers.len() >= REACH_ANSWERS {
            answers.clear();
        }
        answers.insert(id, reached);
        Ok(reached)
    }

    /// Whether object `id` is reachable from a ref (a blob read by its id).
    pub fn object_reachable(&self, id: ObjectId) -> Result<bool, StoreError> {
        let version = self.repo.refs_version()?;
        let known = self.reach.lock().at(version).objects.clone();
        let objects = match known {
            Some(objects) => objects,
            None => {
                let refs = self.repo.refs()?;
                let objects = self.reachable_set(&mut self.graph.write(), &refs)?;
                self.reach.lock().at(version).objects = Some(objects.clone());
                objects
            }
        };
        Ok(objects.contains(&id))
    }

    /// The commit graph as loaded so far, for walks that only read it (holding its read
    /// lock keeps pushes waiting: long walks take it step by step).
    pub fn graph(&self) -> &RwLock<CommitGraph> {
        &self.graph
    }

    /// The object an annotated tag finally points at (`None` for anything else).
    pub(crate) fn peeled(&self, id: ObjectId) -> Result<Option<ObjectId>, StoreError> {
        if let Some(hit) = self.peeled.lock().get(&id) {
            return Ok(*hit);
        }
        let (chain, target, kind) = crate::history::peel(&self.repo, id)?;
        let peeled = (!chain.is_empty() && kind.is_some()).then_some(target);
        self.peeled.lock().insert(id, peeled);
        Ok(peeled)
    }

    /// The objects refs point at, and what their annotated tags peel to.
    pub(crate) fn ref_tips(
        &self,
        refs: &[(BString, RefTarget)],
    ) -> Result<IdSet<ObjectId>, StoreError> {
        let mut tips = IdSet::default();
        for (_, target) in refs {
            if let RefTarget::Direct(tip) = target {
                tips.insert(*tip);
                tips.extend(self.peeled(*tip)?);
            }
        }
        Ok(tips)
    }
}
