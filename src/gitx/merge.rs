//! Server-side three-way merges of two commits, as `git merge-tree --write-tree` makes them
//! (git's `ort` strategy: rename tracking, histogram diffs, `merge`-style conflict markers,
//! several merge bases merged into a virtual one first), by `gix-merge`'s tree merge over
//! the forge's own store. The merge bases are merged here (`Merger`), not by
//! `gix_merge::commit`, whose virtual base differs from git's.
//!
//! The store is read through [`ObjectSource`] (git bytes by SHA-1; `store::Repo` implements
//! it), and everything the merge writes — merged blobs, trees, virtual merge bases — goes to
//! a map in memory: nothing touches the store. The outcome is plain data: the merged tree's
//! SHA-1, whether git would call the merge clean, the conflicted paths with their kinds and
//! the index stages git would leave, and the new objects (git bytes) the merged tree needs,
//! children first, for a writer to ingest. Reads are bounded ([`MergeLimits`]), so a hostile
//! history cannot make one request run unbounded. No `.gitattributes` is read: no merge
//! driver, filter or external command runs on what a pushed tree says.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use bstr::{BStr, BString, ByteSlice};

use crate::object::{Kind, Sha1};

use gix_merge::tree::Resolution;

use super::{Hasher, kind_of, sha1_of};

/// Where a merge reads objects: git bodies by SHA-1 (`store::Repo` implements it).
pub trait ObjectSource {
    /// The kind of a stored object, from its index entry only (nothing is read).
    fn kind_of(&self, id: &Sha1) -> Option<Kind>;

    /// Reads an object's git body into `out` (cleared first), unless it is a blob of more
    /// than `max_blob_size` bytes (the read budget left), which is not read.
    fn read(&self, id: &Sha1, max_blob_size: u64, out: &mut Vec<u8>) -> Result<Read, StoreFailure>;

    /// An object's kind and the size of its git body (`None`: not stored).
    fn header(&self, id: &Sha1) -> Result<Option<(Kind, u64)>, StoreFailure>;
}

/// What [`ObjectSource::read`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// The object is not stored.
    Missing,
    /// Its git body is in the buffer.
    Object(Kind),
    /// A blob larger than the size it was allowed; nothing was read.
    TooLarge { size: u64 },
}

/// A failure of the store a merge reads, with the store's stable code.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct StoreFailure {
    pub code: &'static str,
    pub error: Box<dyn std::error::Error + Send + Sync>,
}

/// How much one merge may read from the store: objects (each read or header lookup counts,
/// repeats too) and bytes of git bodies. Beyond either, the merge stops with
/// [`MergeError::TooLarge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergeLimits {
    pub max_objects: u64,
    pub max_bytes: u64,
}

impl Default for MergeLimits {
    /// Enough for merges of large repositories' long-diverged branches (a merge of two
    /// tokio branches 300 commits apart reads about 8,000 objects and 15 MiB).
    fn default() -> Self {
        MergeLimits {
            max_objects: 500_000,
            max_bytes: 1 << 30,
        }
    }
}

/// The names conflict markers carry (`<<<<<<< ours` … `>>>>>>> theirs`). git's merge-tree
/// writes the arguments it was given; for byte-identical conflicted trees, pass the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeLabels {
    pub ours: String,
    pub theirs: String,
}

impl MergeLabels {
    pub fn new(ours: impl Into<String>, theirs: impl Into<String>) -> Self {
        MergeLabels {
            ours: ours.into(),
            theirs: theirs.into(),
        }
    }

    /// The labels `git merge-tree --write-tree OURS THEIRS` uses when given the full ids.
    pub fn of_commits(ours: &Sha1, theirs: &Sha1) -> Self {
        MergeLabels::new(ours.to_hex(), theirs.to_hex())
    }
}

/// A merge's result. Nothing is stored; `new_objects` is what storing `tree` takes.
#[derive(Debug, Clone)]
pub struct MergeOutcome {
    /// The merged tree: with conflict markers in text files (and `ours` kept for binary
    /// ones) where not clean, as git writes it.
    pub tree: Sha1,
    /// The merge bases, best first (more than one: they were merged into a virtual base).
    pub merge_bases: Vec<Sha1>,
    /// No conflict git would leave unresolved (git's `merge-tree` exit status 0).
    pub clean: bool,
    /// The conflicted paths in git's index order, each once, with its kind and the stages
    /// git's index would hold (what `git merge-tree` lists as conflicted file info).
    pub conflicts: Vec<Conflict>,
    /// Trees and blobs `tree` needs that the store does not have, each after every new
    /// object it names (blobs and subtrees before their tree, `tree` itself last).
    pub new_objects: Vec<NewObject>,
    /// What the merge read from the store.
    pub read: ReadStats,
}

/// An object a merge made, in git form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewObject {
    pub sha1: Sha1,
    pub kind: Kind,
    /// The git body (without the `"<kind> <size>\0"` header).
    pub body: Vec<u8>,
}

/// Objects and bytes read from the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub objects: u64,
    pub bytes: u64,
}

/// A conflicted path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub path: BString,
    pub kind: ConflictKind,
    /// Base, ours, theirs, as git's index stages 1, 2 and 3 (`None`: no such stage).
    pub stages: [Option<Stage>; 3],
}

/// One index stage of a conflicted path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stage {
    /// The git mode (`0o100644`, `0o100755`, `0o120000`, `0o160000`).
    pub mode: u32,
    pub id: Sha1,
}

/// Why a path conflicts, with a stable name each (`as_str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConflictKind {
    /// Both sides changed a text file in overlapping places: conflict markers.
    Content,
    /// Both sides added the file with different content.
    AddAdd,
    /// Both sides changed a binary file; ours is kept.
    Binary,
    /// Both sides changed a symbolic link's target; ours is kept.
    Symlink,
    /// One side modified the file, the other deleted it.
    ModifyDelete,
    /// One side renamed the file, the other deleted it.
    RenameDelete,
    /// Both sides renamed the file, to different paths.
    RenameRename,
    /// Two different files were renamed (or added) to one path.
    RenameCollision,
    /// A file on one side where the other has a directory; one was moved aside.
    DirectoryFile,
    /// Both sides put entries of different types (file, link, submodule) at the path.
    TypeMismatch,
    /// Both sides moved a submodule to different commits.
    Submodule,
    /// A file added into a directory the other side renamed: where it goes is a guess.
    FileLocation,
    /// A case the merge does not know how to resolve.
    Unknown,
}

impl ConflictKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictKind::Content => "content",
            ConflictKind::AddAdd => "add_add",
            ConflictKind::Binary => "binary",
            ConflictKind::Symlink => "symlink",
            ConflictKind::ModifyDelete => "modify_delete",
            ConflictKind::RenameDelete => "rename_delete",
            ConflictKind::RenameRename => "rename_rename",
            ConflictKind::RenameCollision => "rename_collision",
            ConflictKind::DirectoryFile => "directory_file",
            ConflictKind::TypeMismatch => "type_mismatch",
            ConflictKind::Submodule => "submodule",
            ConflictKind::FileLocation => "file_location",
            ConflictKind::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ConflictKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a merge could not be made.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{0} is not a commit of this repository")]
    NotACommit(Sha1),
    #[error("{ours} and {theirs} have no common history")]
    UnrelatedHistories { ours: Sha1, theirs: Sha1 },
    #[error("the merge would read more than {limit} {what} from the store")]
    TooLarge { what: &'static str, limit: u64 },
    #[error("object {0} is missing from the store")]
    MissingObject(Sha1),
    #[error(transparent)]
    Store(StoreFailure),
    #[error("the merge failed: {0}")]
    Failed(String),
}

impl MergeError {
    pub fn code(&self) -> &'static str {
        match self {
            MergeError::NotACommit(_) => "not_a_commit",
            MergeError::UnrelatedHistories { .. } => "unrelated_histories",
            MergeError::TooLarge { .. } => "merge_too_large",
            MergeError::MissingObject(_) => "object_not_found",
            MergeError::Store(failure) => failure.code,
            MergeError::Failed(_) => "merge_failed",
        }
    }
}

/// git's `merge.renameLimit` default: rename detection compares at most 7000 × 7000
/// candidates (`diff.renameLimit`'s 1000 is for diffs).
const RENAME_LIMIT: usize = 7000;
/// Blobs larger than this merge as binary (git's `MAX_XDIFF_SIZE`, just under 1 GiB).
const MAX_XDIFF_SIZE: u64 = 1024 * 1024 * 1023;
/// Blobs larger than this are not compared for renames (git's `core.bigFileThreshold`).
const BIG_FILE_THRESHOLD: u64 = 512 << 20;

/// Merges `theirs` into `ours` as `git merge-tree --write-tree` does, reading `source` and
/// writing nothing to it. Unrelated histories are an error (git's default, without
/// `--allow-unrelated-histories`); a conflicted merge is an outcome with `clean == false`.
pub fn merge_commits(
    source: &impl ObjectSource,
    ours: Sha1,
    theirs: Sha1,
    labels: &MergeLabels,
    limits: MergeLimits,
) -> Result<MergeOutcome, MergeError> {
    for id in [ours, theirs] {
        if source.kind_of(&id) != Some(Kind::Commit) {
            return Err(MergeError::NotACommit(id));
        }
    }
    let odb = Odb::new(source, limits);
    let result = merge_in(&odb, ours, theirs, labels);
    // A stop the adapter recorded explains any failure, and voids any success: gix may
    // have taken a refused read for an absent object and gone on.
    if let Some(stop) = odb.stop.take() {
        return Err(stop);
    }
    let mut outcome = result?;
    outcome.read = odb.stats();
    Ok(outcome)
}

fn merge_in(
    odb: &Odb<'_, impl ObjectSource>,
    ours: Sha1,
    theirs: Sha1,
    labels: &MergeLabels,
) -> Result<MergeOutcome, MergeError> {
    let failed = |e: gix::error::Error| MergeError::Failed(super::error_chain(&e));
    let mut merger = Merger::new(odb);
    // The bases first, so unrelated histories are told apart from other failures; the
    // graph keeps the commits for the merge's own search.
    let bases: Vec<gix::ObjectId> =
        gix_revision::merge_base(oid(&ours), &[oid(&theirs)], &mut merger.graph)
            .map_err(failed)?
            .ok_or(MergeError::UnrelatedHistories { ours, theirs })?
            .into();
    let mut outcome = merger
        .merge(
            oid(&ours),
            oid(&theirs),
            Some(bases.clone()),
            [
                labels.ours.as_bytes().as_bstr(),
                labels.theirs.as_bytes().as_bstr(),
            ],
            0,
        )
        .map_err(failed)?;

    let unresolved = gix_merge::tree::TreatAsUnresolved::git();
    let tree = outcome
        .tree
        .write(|tree| gix::objs::Write::write(odb, tree))
        .map_err(failed)?;
    // git's `merge.directoryRenames` default (`conflict`) moves a file added to a directory
    // the other side renamed, and calls that a conflict; gix resolves it silently.
    let relocated = outcome.conflicts.iter().any(|c| {
        matches!(
            c.resolution,
            Ok(Resolution::SourceLocationAffectedByRename { .. })
        )
    });
    let clean = !outcome.has_unresolved_conflicts(unresolved) && !relocated;
    let conflicts = if clean {
        Vec::new()
    } else {
        conflicts(odb, &tree, &outcome, unresolved).map_err(failed)?
    };
    Ok(MergeOutcome {
        tree: sha1_of(&tree),
        merge_bases: bases.iter().map(|id| sha1_of(id)).collect(),
        clean,
        conflicts,
        new_objects: odb.new_objects_of(sha1_of(&tree)),
        read: ReadStats::default(),
    })
}

type Graph<'o> =
    gix_revwalk::Graph<'o, 'o, gix_revwalk::graph::Commit<gix_revision::merge_base::Flags>>;

/// What one merge keeps across the recursion of its virtual merge bases.
///
/// This is `gix_merge::commit` done here, because its virtual merge base differs from
/// git's: gix resolves text conflicts between merge bases with *ours*, where git's `ort`
/// keeps them, conflict markers and all (longer by two per level), in the virtual base.
/// When both sides of a criss-cross resolved such a conflict, gix then calls clean a merge
/// git calls conflicted (tests/it/merge.rs shows both). Everything else is as gix does it:
/// bases merged pairwise from the last found, as git merges them, tree conflicts between
/// bases resolved with the ancestor, binary files and links taken from the ancestor.
struct Merger<'o, S> {
    odb: &'o Odb<'o, S>,
    graph: Graph<'o>,
    diff_cache: gix_diff::blob::Platform,
    blob_merge: gix_merge::blob::Platform,
    state: gix_diff::tree::State,
}

impl<'o, S: ObjectSource> Merger<'o, S> {
    fn new(odb: &'o Odb<'o, S>) -> Self {
        let diff_cache = gix_diff::blob::Platform::new(
            gix_diff::blob::platform::Options {
                algorithm: Some(gix_diff::blob::Algorithm::Histogram),
                skip_internal_diff_if_external_is_configured: false,
            },
            gix_diff::blob::Pipeline::new(
                Default::default(),
                filter_pipeline(),
                Vec::new(),
                gix_diff::blob::pipeline::Options {
                    large_file_threshold_bytes: BIG_FILE_THRESHOLD,
                    fs: Default::default(),
                },
            ),
            gix_diff::blob::pipeline::Mode::ToGit,
            no_attributes(),
        );
        let blob_merge = gix_merge::blob::Platform::new(
            gix_merge::blob::Pipeline::new(
                Default::default(),
                filter_pipeline(),
                gix_merge::blob::pipeline::Options {
                    large_file_threshold_bytes: MAX_XDIFF_SIZE,
                },
            ),
            gix_merge::blob::pipeline::Mode::ToGit,
            no_attributes(),
            Vec::new(),
            Default::default(),
        );
        Merger {
            odb,
            graph: gix_revwalk::Graph::new(odb, None),
            diff_cache,
            blob_merge,
            state: Default::default(),
        }
    }

    /// Merges two commits (`depth` 0) or two merge bases of a merge (`depth` > 0). `bases`:
    /// their merge bases when known.
    fn merge(
        &mut self,
        ours: gix::ObjectId,
        theirs: gix::ObjectId,
        bases: Option<Vec<gix::ObjectId>>,
        [current, other]: [&BStr; 2],
        depth: u8,
    ) -> Result<gix_merge::tree::Outcome<'o>, gix::error::Error> {
        let bases: Vec<gix::ObjectId> = match bases {
            Some(bases) => bases,
            None => gix_revision::merge_base(ours, &[theirs], &mut self.graph)?
                .map(Vec::from)
                .unwrap_or_default(),
        };
        let abbreviated;
        let (base_tree, ancestor): (gix::ObjectId, &BStr) = match bases.as_slice() {
            [base] => {
                abbreviated = base.to_hex_with_len(7).to_string();
                (self.tree_of(base)?, abbreviated.as_bytes().as_bstr())
            }
            [_, _, ..] => (
                self.virtual_base(bases.clone(), depth + 1)?,
                b"merged common ancestors".as_bstr(),
            ),
            // Only between merge bases (the caller refuses unrelated commits): git merges
            // them as if from an empty tree.
            [] => (
                gix::objs::Write::write(self.odb, &gix::objs::Tree::empty())?,
                b"empty tree".as_bstr(),
            ),
        };
        let (our_tree, their_tree) = (self.tree_of(&ours)?, self.tree_of(&theirs)?);
        let odb = self.odb;
        gix_merge::tree(
            &base_tree,
            &our_tree,
            &their_tree,
            gix_merge::blob::builtin_driver::text::Labels {
                ancestor: Some(ancestor),
                current: Some(current),
                other: Some(other),
            },
            odb,
            |blob| gix::objs::Write::write_buf(odb, gix::objs::Kind::Blob, blob),
            &mut self.state,
            &mut self.diff_cache,
            &mut self.blob_merge,
            tree_options(depth),
        )
    }

    /// Merges merge bases into one virtual commit, as git does: from the last found on,
    /// each merged with the next (recursively, should they have several bases themselves).
    /// Returns its tree.
    fn virtual_base(
        &mut self,
        mut bases: Vec<gix::ObjectId>,
        depth: u8,
    ) -> Result<gix::ObjectId, gix::error::Error> {
        let Some(mut merged) = bases.pop() else {
            return Err(gix::error::Error::from_error(std::io::Error::other(
                "no merge base to merge",
            )));
        };
        let mut tree = self.tree_of(&merged)?;
        while let Some(next) = bases.pop() {
            let labels = [
                b"Temporary merge branch 1".as_bstr(),
                b"Temporary merge branch 2".as_bstr(),
            ];
            let mut outcome = self.merge(merged, next, None, labels, depth)?;
            tree = outcome
                .tree
                .write(|tree| gix::objs::Write::write(self.odb, tree))?;
            merged = self.virtual_commit(merged, next, tree)?;
        }
        Ok(tree)
    }

    /// A commit with parents `[a, b]` and `tree`, the rest copied from `a` (kept in memory,
    /// so later merge-base searches through it find both parents).
    fn virtual_commit(
        &self,
        a: gix::ObjectId,
        b: gix::ObjectId,
        tree: gix::ObjectId,
    ) -> Result<gix::ObjectId, gix::error::Error> {
        use gix::objs::FindExt;
        let mut buf = Vec::new();
        let mut commit = self.odb.find_commit(&a, &mut buf)?.to_owned()?;
        commit.parents = vec![a, b].into();
        commit.tree = tree;
        gix::objs::Write::write(self.odb, &commit)
    }

    fn tree_of(&self, commit: &gix::oid) -> Result<gix::ObjectId, gix::error::Error> {
        use gix::objs::FindExt;
        let mut buf = Vec::new();
        Ok(self.odb.find_commit(commit, &mut buf)?.tree())
    }
}

/// git's defaults for a merge without configuration, as `merge-tree` runs it; at `depth` > 0
/// (merging merge bases) as git's `ort` merges them: tree conflicts, binary files and links
/// resolved with the ancestor, text conflicts kept with markers longer by two per level.
fn tree_options(depth: u8) -> gix_merge::tree::Options {
    use gix_merge::blob::builtin_driver::binary::ResolveWith;
    use gix_merge::blob::builtin_driver::text;
    let virtual_base = depth > 0;
    let ancestor = virtual_base.then_some(ResolveWith::Ancestor);
    gix_merge::tree::Options {
        rewrites: Some(gix_diff::Rewrites {
            copies: None,
            percentage: Some(0.5),
            limit: RENAME_LIMIT,
            track_empty: false,
        }),
        blob_merge: gix_merge::blob::platform::merge::Options {
            is_virtual_ancestor: virtual_base,
            resolve_binary_with: ancestor,
            text: text::Options {
                // merge-ort diffs with histogram whatever `diff.algorithm` says.
                diff_algorithm: gix_diff::blob::Algorithm::Histogram,
                conflict: text::Conflict::Keep {
                    style: text::ConflictStyle::Merge,
                    marker_size: text::Conflict::DEFAULT_MARKER_SIZE
                        .try_into()
                        .expect("non-zero"),
                },
            },
        },
        blob_merge_command_ctx: Default::default(),
        fail_on_conflict: None,
        marker_size_multiplier: depth,
        symlink_conflicts: ancestor,
        tree_conflicts: virtual_base.then_some(gix_merge::tree::ResolveWith::Ancestor),
    }
}

/// No filters: blobs merge as stored (no attributes name a filter driver).
fn filter_pipeline() -> gix_filter::Pipeline {
    gix_filter::Pipeline::new(
        Default::default(),
        gix::hash::Kind::Sha1,
        Default::default(),
    )
}

/// An attribute stack that reads no `.gitattributes` anywhere, so no merge driver, filter
/// or external command is ever chosen by what a pushed tree says.
fn no_attributes() -> gix_worktree::Stack {
    gix_worktree::Stack::new(
        "/nonexistent",
        gix_worktree::stack::State::AttributesStack(Default::default()),
        gix::glob::pattern::Case::Sensitive,
        Vec::new(),
        Vec::new(),
    )
}

/// The conflicted paths as git's index would hold them after the merge: the merged tree's
/// entries with the unresolved conflicts' stages applied (gix's own emulation of git's
/// index), each path with the kind of the first conflict that names it.
fn conflicts(
    odb: &Odb<'_, impl ObjectSource>,
    tree: &gix::oid,
    merge: &gix_merge::tree::Outcome<'_>,
    how: gix_merge::tree::TreatAsUnresolved,
) -> Result<Vec<Conflict>, gix::error::Error> {
    let unresolved: Vec<(ConflictKind, Vec<&BStr>)> = merge
        .conflicts
        .iter()
        .filter(|c| c.is_unresolved(how))
        .map(|c| (kind_of_conflict(c), paths_of_conflict(c)))
        .collect();
    let mut index = gix_index::State::from_tree(
        tree,
        odb,
        gix::validate::path::component::Options {
            protect_windows: false,
            protect_hfs: false,
            protect_ntfs: false,
        },
    )?;
    gix_merge::tree::apply_index_entries(
        &merge.conflicts,
        how,
        &mut index,
        gix_merge::tree::apply_index_entries::RemovalMode::Prune,
    );
    let mut out: Vec<Conflict> = Vec::new();
    for entry in index.entries() {
        let stage = entry.stage_raw() as usize;
        if stage == 0 {
            continue;
        }
        let path = entry.path(&index);
        if out.last().is_none_or(|last| last.path != path) {
            let kind = unresolved
                .iter()
                .find(|(_, paths)| paths.contains(&path))
                .map_or(ConflictKind::Unknown, |(kind, _)| *kind);
            out.push(Conflict {
                path: path.to_owned(),
                kind,
                stages: [None; 3],
            });
        }
        if let Some(slot) = out.last_mut().and_then(|c| c.stages.get_mut(stage - 1)) {
            *slot = Some(Stage {
                mode: entry.mode.bits(),
                id: sha1_of(&entry.id),
            });
        }
    }
    // git keeps the base at a renamed file's new path when the other side deleted it
    // (stage 1 beside the renaming side's); gix leaves that stage out.
    for conflict in merge.conflicts.iter().filter(|c| c.is_unresolved(how)) {
        let Err(gix_merge::tree::ResolutionFailure::OursDeletedTheirsRenamed) = conflict.resolution
        else {
            continue;
        };
        let (ours, theirs) = conflict.changes_in_resolution();
        let Some(rename) = [ours, theirs]
            .into_iter()
            .find(|c| matches!(c, gix_diff::tree_with_rewrites::Change::Rewrite { .. }))
        else {
            continue;
        };
        let (mode, id) = rename.source_entry_mode_and_id();
        if let Some(entry) = out
            .iter_mut()
            .find(|c| c.path == rename.location() && c.kind == ConflictKind::RenameDelete)
            && entry.stages[0].is_none()
        {
            entry.stages[0] = Some(Stage {
                mode: u32::from(mode.value()),
                id: sha1_of(id),
            });
        }
    }
    // A file moved along with a directory the other side renamed: git leaves it at its new
    // path in the moving side's stage alone.
    for conflict in &merge.conflicts {
        let Ok(Resolution::SourceLocationAffectedByRename { final_location }) =
            &conflict.resolution
        else {
            continue;
        };
        let moved = conflict.changes_in_resolution().1;
        let stage = if std::ptr::eq(moved, &conflict.theirs) {
            2
        } else {
            1
        };
        let (mode, id) = moved.entry_mode_and_id();
        let mut stages = [None; 3];
        stages[stage] = Some(Stage {
            mode: u32::from(mode.value()),
            id: sha1_of(id),
        });
        out.retain(|c| c.path != *final_location);
        out.push(Conflict {
            path: final_location.clone(),
            kind: ConflictKind::FileLocation,
            stages,
        });
    }
    // A conflict that left no stage (gix found no entry to replace) is still reported.
    for (kind, paths) in &unresolved {
        if !out.iter().any(|c| paths.contains(&c.path.as_bstr())) {
            out.push(Conflict {
                path: paths[0].to_owned(),
                kind: *kind,
                stages: [None; 3],
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Every path a conflict involves: both sides' locations and sources, and where an entry
/// was moved aside.
fn paths_of_conflict(conflict: &gix_merge::tree::Conflict) -> Vec<&BStr> {
    use gix_merge::tree::ResolutionFailure as F;
    let (ours, theirs) = conflict.changes_in_resolution();
    let mut paths = vec![
        ours.location(),
        theirs.location(),
        ours.source_location(),
        theirs.source_location(),
    ];
    match &conflict.resolution {
        Err(F::OursModifiedTheirsDirectoryThenOursRenamed {
            renamed_unique_path_to_modified_blob: path,
        })
        | Err(F::OursDirectoryTheirsNonDirectoryTheirsRenamed {
            renamed_unique_path_of_theirs: path,
        })
        | Err(F::OursAddedTheirsAddedTypeMismatch {
            their_unique_location: path,
        }) => paths.push(path.as_bstr()),
        Ok(gix_merge::tree::Resolution::OursModifiedTheirsRenamedAndChangedThenRename {
            final_location: Some(path),
            ..
        }) => paths.push(path.as_bstr()),
        _ => {}
    }
    paths
}

fn kind_of_conflict(conflict: &gix_merge::tree::Conflict) -> ConflictKind {
    use gix_merge::tree::{Resolution as R, ResolutionFailure as F};
    let (ours, theirs) = conflict.changes_in_resolution();
    let failure = match &conflict.resolution {
        Ok(R::OursModifiedTheirsRenamedAndChangedThenRename {
            final_location: Some(_),
            ..
        }) => return ConflictKind::FileLocation,
        Ok(R::Forced(failure)) => failure,
        Ok(_) => {
            // A content merge that kept conflict markers, or picked ours (binary, links).
            let Some(merged) = conflict.content_merge() else {
                return ConflictKind::Unknown;
            };
            // Both arrived at the path, added or renamed there from different files: what
            // git calls add/add.
            use gix_diff::tree_with_rewrites::Change;
            let arrived =
                |c: &Change| matches!(c, Change::Addition { .. } | Change::Rewrite { .. });
            let both_added = arrived(ours)
                && arrived(theirs)
                && !(matches!(ours, Change::Rewrite { .. })
                    && matches!(theirs, Change::Rewrite { .. })
                    && ours.source_location() == theirs.source_location());
            let kept_ours = merged.merged_blob_id == ours.entry_mode_and_id().1;
            return if ours.entry_mode().is_link() {
                ConflictKind::Symlink
            } else if both_added {
                ConflictKind::AddAdd
            } else if kept_ours {
                ConflictKind::Binary
            } else {
                ConflictKind::Content
            };
        }
        Err(failure) => failure,
    };
    match failure {
        F::SubmoduleMerge | F::SubmoduleAddAdd => ConflictKind::Submodule,
        F::OursRenamedTheirsRenamedToSameLocation => ConflictKind::RenameCollision,
        F::OursRenamedTheirsRenamedDifferently { .. } => ConflictKind::RenameRename,
        F::OursModifiedTheirsDirectoryThenOursRenamed { .. }
        | F::OursDirectoryTheirsNonDirectoryTheirsRenamed { .. } => ConflictKind::DirectoryFile,
        F::OursAddedTheirsAddedTypeMismatch { .. } | F::OursModifiedTheirsRenamedTypeMismatch => {
            ConflictKind::TypeMismatch
        }
        F::OursDeletedTheirsRenamed => ConflictKind::RenameDelete,
        F::OursModifiedTheirsDeleted => ConflictKind::ModifyDelete,
        F::Unknown => ConflictKind::Unknown,
    }
}

fn oid(sha1: &Sha1) -> gix::ObjectId {
    gix::ObjectId::from(sha1.0)
}

/// gix's view of the store: reads through `ObjectSource` within the limits, writes to
/// memory. The first reason to stop is kept and every later read refused, so the merge
/// ends with it.
struct Odb<'s, S> {
    source: &'s S,
    limits: MergeLimits,
    objects: Cell<u64>,
    bytes: Cell<u64>,
    /// Objects the merge wrote that the store does not have.
    written: RefCell<HashMap<Sha1, (Kind, Vec<u8>)>>,
    stop: RefCell<Option<MergeError>>,
}

impl<'s, S: ObjectSource> Odb<'s, S> {
    fn new(source: &'s S, limits: MergeLimits) -> Self {
        Odb {
            source,
            limits,
            objects: Cell::new(0),
            bytes: Cell::new(0),
            written: RefCell::new(HashMap::new()),
            stop: RefCell::new(None),
        }
    }

    fn stats(&self) -> ReadStats {
        ReadStats {
            objects: self.objects.get(),
            bytes: self.bytes.get(),
        }
    }

    /// Records why the merge must stop (the first reason wins) and gives gix an error.
    fn stop(&self, why: MergeError) -> gix::error::Error {
        let message = why.to_string();
        self.stop.borrow_mut().get_or_insert(why);
        gix::error::Error::from_error(std::io::Error::other(message))
    }

    /// Counts one object against the limit; `Err` once the merge must stop.
    fn count_object(&self) -> Result<(), gix::error::Error> {
        if let Some(stop) = self.stop.borrow().as_ref() {
            return Err(gix::error::Error::from_error(std::io::Error::other(
                stop.to_string(),
            )));
        }
        let objects = self.objects.get() + 1;
        if objects > self.limits.max_objects {
            return Err(self.stop(MergeError::TooLarge {
                what: "objects",
                limit: self.limits.max_objects,
            }));
        }
        self.objects.set(objects);
        Ok(())
    }

    fn count_bytes(&self, n: u64) -> Result<(), gix::error::Error> {
        let bytes = self.bytes.get().saturating_add(n);
        if bytes > self.limits.max_bytes {
            return Err(self.stop(MergeError::TooLarge {
                what: "bytes",
                limit: self.limits.max_bytes,
            }));
        }
        self.bytes.set(bytes);
        Ok(())
    }

    fn store_failure(&self, failure: StoreFailure) -> gix::error::Error {
        self.stop(MergeError::Store(failure))
    }

    /// The new objects `root` needs, children first; `root` last when it is new.
    fn new_objects_of(&self, root: Sha1) -> Vec<NewObject> {
        let mut written = self.written.borrow_mut();
        let mut out = Vec::new();
        // Depth first with an explicit stack: (tree, children pushed yet).
        let mut stack = vec![(root, false)];
        while let Some((id, expanded)) = stack.pop() {
            if expanded {
                if let Some((kind, body)) = written.remove(&id) {
                    out.push(NewObject {
                        sha1: id,
                        kind,
                        body,
                    });
                }
                continue;
            }
            let Some((kind, body)) = written.get(&id) else {
                continue;
            };
            stack.push((id, true));
            if *kind != Kind::Tree {
                continue;
            }
            let mut children = Vec::new();
            for entry in gix::objs::TreeRefIter::from_bytes(body, gix::hash::Kind::Sha1).flatten() {
                if !entry.mode.is_commit() {
                    children.push(sha1_of(entry.oid));
                }
            }
            // Reversed so the tree's entries come out in their order.
            for child in children.into_iter().rev() {
                if written.contains_key(&child) {
                    stack.push((child, false));
                }
            }
        }
        out
    }
}

impl<S: ObjectSource> gix::objs::Find for Odb<'_, S> {
    fn try_find<'a>(
        &self,
        id: &gix::oid,
        buffer: &'a mut Vec<u8>,
    ) -> Result<Option<gix::objs::Data<'a>>, gix::error::Error> {
        let sha1 = sha1_of(id);
        let data = |kind: Kind, buffer: &'a mut Vec<u8>| {
            Some(gix::objs::Data {
                kind: gix_kind(kind),
                object_hash: gix::hash::Kind::Sha1,
                data: buffer,
            })
        };
        if let Some((kind, body)) = self.written.borrow().get(&sha1) {
            buffer.clear();
            buffer.extend_from_slice(body);
            return Ok(data(*kind, buffer));
        }
        self.count_object()?;
        let left = self.limits.max_bytes.saturating_sub(self.bytes.get());
        match self.source.read(&sha1, left, buffer) {
            Ok(Read::Object(kind)) => {
                self.count_bytes(buffer.len() as u64)?;
                Ok(data(kind, buffer))
            }
            Ok(Read::TooLarge { .. }) => Err(self.stop(MergeError::TooLarge {
                what: "bytes",
                limit: self.limits.max_bytes,
            })),
            Ok(Read::Missing) => Err(self.stop(MergeError::MissingObject(sha1))),
            Err(failure) => Err(self.store_failure(failure)),
        }
    }
}

impl<S: ObjectSource> gix::objs::FindHeader for Odb<'_, S> {
    fn try_header(&self, id: &gix::oid) -> Result<Option<gix::objs::Header>, gix::error::Error> {
        let sha1 = sha1_of(id);
        if let Some((kind, body)) = self.written.borrow().get(&sha1) {
            return Ok(Some(gix::objs::Header {
                kind: gix_kind(*kind),
                size: body.len() as u64,
            }));
        }
        self.count_object()?;
        match self.source.header(&sha1) {
            Ok(Some((kind, size))) => Ok(Some(gix::objs::Header {
                kind: gix_kind(kind),
                size,
            })),
            Ok(None) => Err(self.stop(MergeError::MissingObject(sha1))),
            Err(failure) => Err(self.store_failure(failure)),
        }
    }
}

impl<S: ObjectSource> gix::objs::Write for Odb<'_, S> {
    fn write_stream(
        &self,
        kind: gix::objs::Kind,
        size: u64,
        from: &mut dyn std::io::Read,
    ) -> Result<gix::ObjectId, gix::error::Error> {
        let mut body = Vec::with_capacity(size.min(1 << 20) as usize);
        from.read_to_end(&mut body)
            .map_err(gix::error::Error::from_error)?;
        let kind = kind_of(kind);
        let mut hasher = Hasher::new();
        hasher.update(format!("{} {}\0", kind.as_str(), body.len()).as_bytes());
        hasher.update(&body);
        let sha1 = hasher.finish();
        if self.source.kind_of(&sha1).is_none() {
            self.written
                .borrow_mut()
                .entry(sha1)
                .or_insert((kind, body));
        }
        Ok(oid(&sha1))
    }

    fn write_stream_with_known_id(
        &self,
        kind: gix::objs::Kind,
        size: u64,
        from: &mut dyn std::io::Read,
        _id: gix::ObjectId,
    ) -> Result<gix::ObjectId, gix::error::Error> {
        // The id is computed here all the same: it names what the store will hold.
        self.write_stream(kind, size, from)
    }

    fn write_buf_with_known_id(
        &self,
        kind: gix::objs::Kind,
        mut from: &[u8],
        _id: gix::ObjectId,
    ) -> Result<gix::ObjectId, gix::error::Error> {
        self.write_stream(kind, from.len() as u64, &mut from)
    }
}

fn gix_kind(kind: Kind) -> gix::objs::Kind {
    match kind {
        Kind::Blob => gix::objs::Kind::Blob,
        Kind::Tree => gix::objs::Kind::Tree,
        Kind::Commit => gix::objs::Kind::Commit,
        Kind::Tag => gix::objs::Kind::Tag,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store in memory, counting reads.
    #[derive(Default)]
    struct Memory {
        objects: HashMap<Sha1, (Kind, Vec<u8>)>,
        reads: Cell<u64>,
    }

    impl ObjectSource for Memory {
        fn kind_of(&self, id: &Sha1) -> Option<Kind> {
            self.objects.get(id).map(|(kind, _)| *kind)
        }

        fn read(&self, id: &Sha1, max: u64, out: &mut Vec<u8>) -> Result<Read, StoreFailure> {
            self.reads.set(self.reads.get() + 1);
            out.clear();
            Ok(match self.objects.get(id) {
                None => Read::Missing,
                Some((Kind::Blob, body)) if body.len() as u64 > max => Read::TooLarge {
                    size: body.len() as u64,
                },
                Some((kind, body)) => {
                    out.extend_from_slice(body);
                    Read::Object(*kind)
                }
            })
        }

        fn header(&self, id: &Sha1) -> Result<Option<(Kind, u64)>, StoreFailure> {
            Ok(self
                .objects
                .get(id)
                .map(|(kind, body)| (*kind, body.len() as u64)))
        }
    }

    impl Memory {
        fn put(&mut self, kind: Kind, body: Vec<u8>) -> Sha1 {
            let mut hasher = Hasher::new();
            hasher.update(format!("{} {}\0", kind.as_str(), body.len()).as_bytes());
            hasher.update(&body);
            let id = hasher.finish();
            self.objects.insert(id, (kind, body));
            id
        }

        /// A tree of files (names in git's order).
        fn tree(&mut self, files: &[(&str, &str)]) -> Sha1 {
            let mut body = Vec::new();
            for (name, content) in files {
                let blob = self.put(Kind::Blob, content.as_bytes().to_vec());
                body.extend_from_slice(format!("100644 {name}\0").as_bytes());
                body.extend_from_slice(&blob.0);
            }
            self.put(Kind::Tree, body)
        }

        fn commit(&mut self, tree: Sha1, parents: &[Sha1], message: &str) -> Sha1 {
            let mut body = format!("tree {tree}\n");
            for parent in parents {
                body.push_str(&format!("parent {parent}\n"));
            }
            body.push_str("author A <a@example.com> 1700000000 +0000\n");
            body.push_str("committer A <a@example.com> 1700000000 +0000\n");
            body.push_str(&format!("\n{message}\n"));
            self.put(Kind::Commit, body.into_bytes())
        }
    }

    /// base: a, b; ours changes a's first line, theirs b and adds c.
    fn diverged() -> (Memory, Sha1, Sha1) {
        let mut store = Memory::default();
        let base_tree = store.tree(&[("a", "1\n2\n3\n"), ("b", "x\n")]);
        let base = store.commit(base_tree, &[], "base");
        let ours_tree = store.tree(&[("a", "one\n2\n3\n"), ("b", "x\n")]);
        let ours = store.commit(ours_tree, &[base], "ours");
        let theirs_tree = store.tree(&[("a", "1\n2\n3\n"), ("b", "y\n"), ("c", "new\n")]);
        let theirs = store.commit(theirs_tree, &[base], "theirs");
        (store, ours, theirs)
    }

    #[test]
    fn a_clean_merge_lists_what_its_tree_needs_and_stores_nothing() {
        let (mut store, ours, theirs) = diverged();
        let before = store.objects.len();
        let outcome = merge_commits(
            &store,
            ours,
            theirs,
            &MergeLabels::new("ours", "theirs"),
            MergeLimits::default(),
        )
        .unwrap();
        assert!(outcome.clean && outcome.conflicts.is_empty());
        assert_eq!(
            store.objects.len(),
            before,
            "nothing was written to the store"
        );
        assert_eq!(outcome.merge_bases.len(), 1);
        // Every blob of the result exists already: the one new object is the tree.
        assert_eq!(outcome.new_objects.len(), 1);
        let new = &outcome.new_objects[0];
        assert_eq!((new.kind, new.sha1), (Kind::Tree, outcome.tree));
        let expected = store.tree(&[("a", "one\n2\n3\n"), ("b", "y\n"), ("c", "new\n")]);
        assert_eq!(outcome.tree, expected);
        assert_eq!(outcome.read.objects, store.reads.get());
        assert!(outcome.read.bytes > 0);
    }

    #[test]
    fn a_conflicted_merge_keeps_markers_and_its_blob_comes_before_its_tree() {
        let mut store = Memory::default();
        let base_tree = store.tree(&[("a", "1\n")]);
        let base = store.commit(base_tree, &[], "base");
        let ours_tree = store.tree(&[("a", "ours\n")]);
        let ours = store.commit(ours_tree, &[base], "ours");
        let theirs_tree = store.tree(&[("a", "theirs\n")]);
        let theirs = store.commit(theirs_tree, &[base], "theirs");
        let outcome = merge_commits(
            &store,
            ours,
            theirs,
            &MergeLabels::new("main", "goal"),
            MergeLimits::default(),
        )
        .unwrap();
        assert!(!outcome.clean);
        assert_eq!(outcome.conflicts.len(), 1);
        let conflict = &outcome.conflicts[0];
        assert_eq!(
            (conflict.path.as_bstr(), conflict.kind),
            (b"a".as_bstr(), ConflictKind::Content)
        );
        let stage_ids: Vec<Option<Sha1>> =
            conflict.stages.iter().map(|s| s.map(|s| s.id)).collect();
        let blob = |store: &mut Memory, text: &str| store.put(Kind::Blob, text.into());
        assert_eq!(
            stage_ids,
            [
                Some(blob(&mut store, "1\n")),
                Some(blob(&mut store, "ours\n")),
                Some(blob(&mut store, "theirs\n"))
            ]
        );
        let kinds: Vec<Kind> = outcome.new_objects.iter().map(|o| o.kind).collect();
        assert_eq!(kinds, [Kind::Blob, Kind::Tree]);
        assert_eq!(
            outcome.new_objects[0].body.as_bstr(),
            "<<<<<<< main\nours\n=======\ntheirs\n>>>>>>> goal\n"
        );
        assert_eq!(outcome.new_objects[1].sha1, outcome.tree);
    }

    #[test]
    fn reads_beyond_the_limits_stop_the_merge() {
        let (store, ours, theirs) = diverged();
        let labels = MergeLabels::of_commits(&ours, &theirs);
        let full = merge_commits(&store, ours, theirs, &labels, MergeLimits::default()).unwrap();
        let objects = MergeLimits {
            max_objects: full.read.objects - 1,
            ..MergeLimits::default()
        };
        let err = merge_commits(&store, ours, theirs, &labels, objects).unwrap_err();
        assert!(
            matches!(
                err,
                MergeError::TooLarge {
                    what: "objects",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(err.code(), "merge_too_large");
        let bytes = MergeLimits {
            max_bytes: full.read.bytes - 1,
            ..MergeLimits::default()
        };
        let err = merge_commits(&store, ours, theirs, &labels, bytes).unwrap_err();
        assert!(
            matches!(err, MergeError::TooLarge { what: "bytes", .. }),
            "{err}"
        );
        // Exactly the limits the merge needs are enough.
        let exact = MergeLimits {
            max_objects: full.read.objects,
            max_bytes: full.read.bytes,
        };
        assert_eq!(
            merge_commits(&store, ours, theirs, &labels, exact)
                .unwrap()
                .tree,
            full.tree
        );
    }

    #[test]
    fn unrelated_missing_and_non_commits_are_typed() {
        let (mut store, ours, theirs) = diverged();
        let labels = MergeLabels::new("a", "b");
        let limits = MergeLimits::default();
        let other_tree = store.tree(&[("z", "z\n")]);
        let unrelated = store.commit(other_tree, &[], "elsewhere");
        let err = merge_commits(&store, ours, unrelated, &labels, limits).unwrap_err();
        assert!(
            matches!(err, MergeError::UnrelatedHistories { .. }),
            "{err}"
        );
        assert_eq!(err.code(), "unrelated_histories");

        let err = merge_commits(&store, ours, other_tree, &labels, limits).unwrap_err();
        assert!(matches!(err, MergeError::NotACommit(id) if id == other_tree));
        let err = merge_commits(&store, Sha1([7; 20]), theirs, &labels, limits).unwrap_err();
        assert_eq!(err.code(), "not_a_commit");

        // A store that lost a tree the merge needs (the base's).
        let lost = store.tree(&[("a", "1\n2\n3\n"), ("b", "x\n")]);
        store.objects.remove(&lost);
        let err = merge_commits(&store, ours, theirs, &labels, limits).unwrap_err();
        assert!(
            matches!(err, MergeError::MissingObject(id) if id == lost),
            "{err}"
        );
        assert_eq!(err.code(), "object_not_found");
    }

    /// A criss-cross whose bases conflict, one side keeping one base's text: git (and
    /// `merge_commits`) keep the bases' conflict in the virtual base and conflict again;
    /// `gix_merge::commit` resolves the bases with one side and calls the merge clean. Should
    /// gix change, this says so, and `Merger` may go.
    #[test]
    fn the_virtual_base_keeps_the_bases_conflict_as_git_does_and_gix_merge_commit_does_not() {
        let mut store = Memory::default();
        let text = |line2: &str, line11: &str| {
            (1..=12)
                .map(|i| match i {
                    2 => format!("{line2}\n"),
                    11 => format!("{line11}\n"),
                    _ => format!("line {i}\n"),
                })
                .collect::<String>()
        };
        let commit = |store: &mut Memory, content: String, parents: &[Sha1]| {
            let tree = store.tree(&[("f", &content)]);
            store.commit(tree, parents, "c")
        };
        let base = commit(&mut store, text("line 2", "line 11"), &[]);
        let x = commit(&mut store, text("two, by x", "line 11"), &[base]);
        let y = commit(&mut store, text("two, by y", "line 11"), &[base]);
        let ours = commit(&mut store, text("two, by y", "line 11"), &[x, y]);
        let theirs = commit(&mut store, text("two, by z", "eleven"), &[y, x]);

        let labels = MergeLabels::new("ours", "theirs");
        let outcome = merge_commits(&store, ours, theirs, &labels, MergeLimits::default()).unwrap();
        assert_eq!(outcome.merge_bases.len(), 2);
        assert!(!outcome.clean);

        let odb = Odb::new(&store, MergeLimits::default());
        let mut merger = Merger::new(&odb);
        let gix_outcome = gix_merge::commit(
            oid(&ours),
            oid(&theirs),
            Default::default(),
            &mut merger.graph,
            &mut merger.diff_cache,
            &mut merger.blob_merge,
            &odb,
            &mut |id| id.to_hex_with_len(7).to_string(),
            gix_merge::commit::Options {
                allow_missing_merge_base: false,
                tree_merge: tree_options(0),
                use_first_merge_base: false,
            },
        )
        .unwrap();
        assert!(
            !gix_outcome
                .tree_merge
                .has_unresolved_conflicts(gix_merge::tree::TreatAsUnresolved::git()),
            "gix-merge now keeps the bases' conflict: gix_merge::commit may serve again"
        );
    }
}
