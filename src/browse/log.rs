//! The history of a commit, as `git log` shows it: newest committer date first (ties in
//! the order commits were reached), optionally limited to the commits that changed a path,
//! with git's default history simplification.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use parking_lot::RwLock;

use crate::history::{CommitGraph, CommitIndex};
use crate::object::{EntryKind, EntryTarget, ObjectId};
use crate::store::{Repo, StoreError};

/// Loads a commit and its history into `graph` (a write of the graph; the walks that
/// follow only read it).
pub fn load_commit(
    repo: &Repo,
    graph: &mut CommitGraph,
    id: ObjectId,
) -> Result<CommitIndex, BrowseError> {
    graph
        .load(repo, id)?
        .ok_or_else(|| StoreError::MissingObject(id.to_hex()).into())
}

use super::{BrowseError, PathEntry, lookup};

/// One page of a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPage {
    pub commits: Vec<ObjectId>,
    /// Commits to skip for the next page, when there is one.
    pub next_skip: Option<usize>,
}

/// Up to `limit` commits of the history of `start` (loaded by `load_commit`) after the
/// first `skip`, as `git log [-- path]` lists them. A page is found by walking from the tip
/// again, so a cursor of (tip, `skip`) names the same page for ever. The graph is read
/// under its lock one step at a time, never while trees are read, so a long walk does not
/// keep a push from extending it.
pub fn log(
    repo: &Repo,
    graph: &RwLock<CommitGraph>,
    start: CommitIndex,
    path: &[&str],
    skip: usize,
    limit: usize,
) -> Result<LogPage, BrowseError> {
    let mut walk = Walk {
        queue: BinaryHeap::new(),
        queued: HashSet::new(),
        sequence: 0,
    };
    walk.push(start, graph.read().node(start).time);
    let mut at_path: HashMap<CommitIndex, Option<(EntryTarget<ObjectId>, EntryKind)>> =
        HashMap::new();
    let mut path_entry = |i: CommitIndex| -> Result<_, BrowseError> {
        if let Some(hit) = at_path.get(&i) {
            return Ok(*hit);
        }
        let tree = graph.read().node(i).tree;
        let entry = match tree {
            Some(tree) => lookup(repo, tree, path)?.map(|e: PathEntry| (e.target, e.kind)),
            None => None,
        };
        at_path.insert(i, entry);
        Ok(entry)
    };
    let mut shown = 0usize;
    let mut commits = Vec::new();
    let mut parents: Vec<CommitIndex> = Vec::new();
    while let Some(i) = walk.pop() {
        parents.clear();
        parents.extend_from_slice(graph.read().parents(i));
        let show = if path.is_empty() {
            true
        } else {
            let here = path_entry(i)?;
            if parents.is_empty() {
                here.is_some()
            } else {
                let mut same = None;
                for &p in &parents {
                    if path_entry(p)? == here {
                        same = Some(p);
                        break;
                    }
                }
                match same {
                    // Unchanged from a parent: the change is on that parent's side, so only
                    // that side is followed (git's default simplification).
                    Some(p) => {
                        parents.clear();
                        parents.push(p);
                        false
                    }
                    None => true,
                }
            }
        };
        if show {
            if shown >= skip {
                if commits.len() == limit {
                    return Ok(LogPage {
                        commits,
                        next_skip: Some(skip + limit),
                    });
                }
                commits.push(graph.read().node(i).id);
            }
            shown += 1;
        }
        let graph = graph.read();
        for &p in &parents {
            walk.push(p, graph.node(p).time);
        }
    }
    Ok(LogPage {
        commits,
        next_skip: None,
    })
}

/// git's revision walk order: the newest committer date first, ties first-come first-served.
struct Walk {
    queue: BinaryHeap<(i64, Reverse<u64>, CommitIndex)>,
    queued: HashSet<CommitIndex>,
    sequence: u64,
}

impl Walk {
    fn push(&mut self, i: CommitIndex, time: i64) {
        if self.queued.insert(i) {
            self.sequence += 1;
            self.queue.push((time, Reverse(self.sequence), i));
        }
    }

    fn pop(&mut self) -> Option<CommitIndex> {
        self.queue.pop().map(|(_, _, i)| i)
    }
}
