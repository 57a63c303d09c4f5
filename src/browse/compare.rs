//! Two revisions compared: their merge bases, how far each is ahead of the other, and the
//! files changed between the merge base and the head (GitHub's three-dot compare).

use std::collections::{BTreeMap, BinaryHeap};

use bstr::BString;

use crate::history::{CommitGraph, CommitIndex};
use crate::object::{EntryKind, EntryTarget, ObjectId};
use crate::store::Repo;

use super::tree::join;
use super::{BrowseError, read_tree};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// The best common ancestors (none for unrelated histories; more than one after a
    /// criss-cross merge), highest generation first.
    pub merge_bases: Vec<ObjectId>,
    /// Commits in the head's history and not the base's, oldest first.
    pub ahead: Vec<ObjectId>,
    /// How many commits are in the base's history and not the head's.
    pub behind_by: usize,
}

const BASE: u8 = 1;
const HEAD: u8 = 2;
const STALE: u8 = 4;

/// Compares the histories of `base` and `head` (loaded by `load_commit`) in one walk by
/// descending generation: a commit's flags are final when it is reached, since every child
/// comes before it.
pub fn compare(graph: &CommitGraph, base: CommitIndex, head: CommitIndex) -> Comparison {
    let mut flags: std::collections::HashMap<CommitIndex, u8> = Default::default();
    let mut queue: BinaryHeap<(u32, CommitIndex)> = BinaryHeap::new();
    // Commits queued that can still change the answer (not both-sided and stale).
    let mut live = 0usize;
    let paint = |flags: &mut std::collections::HashMap<CommitIndex, u8>,
                 queue: &mut BinaryHeap<(u32, CommitIndex)>,
                 live: &mut usize,
                 i: CommitIndex,
                 add: u8| {
        let entry = flags.entry(i).or_insert(0);
        let before = *entry;
        if before & add == add {
            return;
        }
        *entry |= add;
        if before == 0 {
            queue.push((graph.node(i).generation, i));
            *live += 1;
        } else if before & STALE == 0 && *entry & STALE != 0 {
            *live -= 1;
        }
    };
    paint(&mut flags, &mut queue, &mut live, base, BASE);
    paint(&mut flags, &mut queue, &mut live, head, HEAD);
    let mut comparison = Comparison {
        merge_bases: Vec::new(),
        ahead: Vec::new(),
        behind_by: 0,
    };
    while live > 0 {
        let Some((_, i)) = queue.pop() else { break };
        let mut f = flags[&i];
        if f & STALE == 0 {
            live -= 1;
        }
        match f & (BASE | HEAD) {
            BASE if f & STALE == 0 => comparison.behind_by += 1,
            HEAD if f & STALE == 0 => comparison.ahead.push(graph.node(i).id),
            both if both == BASE | HEAD && f & STALE == 0 => {
                comparison.merge_bases.push(graph.node(i).id);
                f |= STALE;
            }
            _ => {}
        }
        let parents: Vec<CommitIndex> = graph.parents(i).to_vec();
        for p in parents {
            paint(&mut flags, &mut queue, &mut live, p, f);
        }
    }
    comparison.ahead.reverse();
    comparison
}

/// How a path changed between two trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeStatus {
    Added,
    Deleted,
    Modified,
    /// A file became a symlink or a submodule, or the other way round.
    TypeChanged,
}

impl ChangeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeStatus::Added => "added",
            ChangeStatus::Deleted => "deleted",
            ChangeStatus::Modified => "modified",
            ChangeStatus::TypeChanged => "type_changed",
        }
    }
}

/// One changed path (never a directory: a directory's changes are its files').
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub path: BString,
    pub status: ChangeStatus,
    pub old: Option<(BString, EntryTarget<ObjectId>)>,
    pub new: Option<(BString, EntryTarget<ObjectId>)>,
}

/// The files that differ between two trees (`None`: the empty tree), in path order, at most
/// `limit` of them; the flag says whether more were left out.
pub fn diff_trees(
    repo: &Repo,
    old: Option<ObjectId>,
    new: Option<ObjectId>,
    limit: usize,
) -> Result<(Vec<FileChange>, bool), BrowseError> {
    let mut out = Vec::new();
    let truncated = diff_into(repo, b"", old, new, limit, &mut out)?;
    Ok((out, truncated))
}

type Side = BTreeMap<BString, (BString, EntryKind, EntryTarget<ObjectId>)>;

fn entries(repo: &Repo, tree: Option<ObjectId>) -> Result<Side, BrowseError> {
    let Some(tree) = tree else {
        return Ok(Side::new());
    };
    Ok(read_tree(repo, tree)?
        .into_iter()
        .map(|item| {
            let target = match item.id {
                Some(id) => EntryTarget::Object(id),
                None => EntryTarget::Gitlink(item.sha1),
            };
            (item.name, (item.mode, item.kind, target))
        })
        .collect())
}

/// Returns whether the limit cut the list short.
fn diff_into(
    repo: &Repo,
    dir: &[u8],
    old: Option<ObjectId>,
    new: Option<ObjectId>,
    limit: usize,
    out: &mut Vec<FileChange>,
) -> Result<bool, BrowseError> {
    if old == new {
        return Ok(false);
    }
    let old = entries(repo, old)?;
    let new = entries(repo, new)?;
    let mut names: Vec<&BString> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    let subtree = |side: Option<&(BString, EntryKind, EntryTarget<ObjectId>)>| match side {
        Some((_, EntryKind::Directory, EntryTarget::Object(id))) => Some(*id),
        _ => None,
    };
    let file = |side: Option<&(BString, EntryKind, EntryTarget<ObjectId>)>| match side {
        Some((mode, kind, target)) if *kind != EntryKind::Directory => {
            Some((mode.clone(), *kind, *target))
        }
        _ => None,
    };
    for name in names {
        let path = join(dir, name);
        let (o, n) = (old.get(name), new.get(name));
        if o == n {
            continue;
        }
        if (subtree(o).is_some() || subtree(n).is_some())
            && diff_into(repo, &path, subtree(o), subtree(n), limit, out)?
        {
            return Ok(true);
        }
        let change = match (file(o), file(n)) {
            (None, None) => continue,
            (Some((mode, _, target)), None) => FileChange {
                path,
                status: ChangeStatus::Deleted,
                old: Some((mode, target)),
                new: None,
            },
            (None, Some((mode, _, target))) => FileChange {
                path,
                status: ChangeStatus::Added,
                old: None,
                new: Some((mode, target)),
            },
            (Some((old_mode, old_kind, old_target)), Some((new_mode, new_kind, new_target))) => {
                let file_like = |k: EntryKind| matches!(k, EntryKind::File | EntryKind::Executable);
                let status = if old_kind == new_kind || (file_like(old_kind) && file_like(new_kind))
                {
                    ChangeStatus::Modified
                } else {
                    ChangeStatus::TypeChanged
                };
                FileChange {
                    path,
                    status,
                    old: Some((old_mode, old_target)),
                    new: Some((new_mode, new_target)),
                }
            }
        };
        if out.len() == limit {
            return Ok(true);
        }
        out.push(change);
    }
    Ok(false)
}
