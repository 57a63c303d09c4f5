//! The commit graph of a repository, loaded from the native store on demand and kept in
//! memory: parents, root tree, committer time and generation number of every commit met.
//!
//! Commits never change, so a loaded node stays valid for the life of the process; a new
//! tip only loads the commits not met before.

use crate::object::{CommitLinks, IdMap, Kind, ObjectId, commit_links};
use crate::store::{Repo, StoreError};

/// Index of a commit in its graph.
pub type CommitIndex = u32;

#[derive(Debug, Clone, Copy)]
pub struct CommitNode {
    pub id: ObjectId,
    pub tree: Option<ObjectId>,
    /// 1 for a root commit, else one more than the highest parent: a parent's generation is
    /// always lower than its child's, so visiting by descending generation is a topological
    /// order.
    pub generation: u32,
    pub time: i64,
    parents_start: u32,
    parents_len: u32,
}

#[derive(Default)]
pub struct CommitGraph {
    index: IdMap<ObjectId, CommitIndex>,
    nodes: Vec<CommitNode>,
    parents: Vec<CommitIndex>,
}

impl CommitGraph {
    /// Whether `target` is one of `from` or an ancestor of one. Generation numbers stop the
    /// walk below the target's, so an unrelated history is not walked to its root.
    pub fn reaches(&self, from: &[CommitIndex], target: CommitIndex) -> bool {
        let floor = self.node(target).generation;
        let mut seen = vec![false; self.nodes.len()];
        let mut stack: Vec<CommitIndex> = from.to_vec();
        while let Some(i) = stack.pop() {
            if i == target {
                return true;
            }
            if std::mem::replace(&mut seen[i as usize], true) || self.node(i).generation <= floor {
                continue;
            }
            stack.extend_from_slice(self.parents(i));
        }
        false
    }

    /// A merge commit (two or more parents) reachable from `from` and from none of
    /// `known`. Commits are visited by descending generation, so every child of a commit
    /// has painted it before it is visited, and the walk ends once only commits `known`
    /// reaches are left.
    pub fn first_merge(&self, from: &[CommitIndex], known: &[CommitIndex]) -> Option<CommitIndex> {
        let mut walk = Paint {
            flags: vec![0; self.nodes.len()],
            queue: std::collections::BinaryHeap::new(),
            unknown_queued: 0,
        };
        for &i in from {
            walk.paint(self, i, Paint::NEW);
        }
        for &i in known {
            walk.paint(self, i, Paint::KNOWN);
        }
        while walk.unknown_queued > 0 {
            let (_, i) = walk.queue.pop()?;
            let flags = &mut walk.flags[i as usize];
            *flags &= !Paint::QUEUED;
            let known = *flags & Paint::KNOWN != 0;
            if !known {
                walk.unknown_queued -= 1;
                if self.parents(i).len() > 1 {
                    return Some(i);
                }
            }
            let flag = if known { Paint::KNOWN } else { Paint::NEW };
            for &parent in self.parents(i) {
                walk.paint(self, parent, flag);
            }
        }
        None
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn get(&self, id: &ObjectId) -> Option<CommitIndex> {
        self.index.get(id).copied()
    }

    pub fn node(&self, i: CommitIndex) -> &CommitNode {
        &self.nodes[i as usize]
    }

    pub fn parents(&self, i: CommitIndex) -> &[CommitIndex] {
        let n = &self.nodes[i as usize];
        &self.parents[n.parents_start as usize..(n.parents_start + n.parents_len) as usize]
    }

    /// Loads a commit and its whole ancestry. `None` when `id` is not a commit of the store.
    /// Parents that are not commits are left out, as git cannot walk through them either.
    pub fn load(&mut self, repo: &Repo, id: ObjectId) -> Result<Option<CommitIndex>, StoreError> {
        if let Some(i) = self.get(&id) {
            return Ok(Some(i));
        }
        if !is_commit(repo, &id) {
            return Ok(None);
        }
        let mut pending: IdMap<ObjectId, CommitLinks> = IdMap::default();
        let mut stack = vec![id];
        while let Some(&top) = stack.last() {
            if self.index.contains_key(&top) {
                stack.pop();
                continue;
            }
            let links = match pending.entry(top) {
                std::collections::hash_map::Entry::Occupied(slot) => slot.into_mut(),
                std::collections::hash_map::Entry::Vacant(slot) => {
                    let location = repo
                        .locate(&top)
                        .ok_or_else(|| StoreError::MissingObject(top.to_hex()))?;
                    let (_, content) = repo.read_content(&location)?;
                    let mut links = commit_links(&content)
                        .map_err(|e| StoreError::Corrupt(format!("commit {top}: {e}")))?;
                    if links.tree.is_none() {
                        // Too odd to parse into fields; git still follows its links.
                        links = git_links(repo, &location)?;
                    }
                    links.parents.retain(|p| is_commit(repo, p));
                    slot.insert(links)
                }
            };
            let before = stack.len();
            stack.extend(
                links
                    .parents
                    .iter()
                    .filter(|p| !self.index.contains_key(*p)),
            );
            if stack.len() > before {
                continue;
            }
            let links = pending.remove(&top).expect("pending commit");
            stack.pop();
            let parents_start = self.parents.len() as u32;
            let mut generation = 0;
            for p in &links.parents {
                let pi = self.index[p];
                generation = generation.max(self.nodes[pi as usize].generation);
                self.parents.push(pi);
            }
            let index = self.nodes.len() as CommitIndex;
            self.nodes.push(CommitNode {
                id: top,
                tree: links.tree,
                generation: generation + 1,
                time: links.committer_time,
                parents_start,
                parents_len: links.parents.len() as u32,
            });
            self.index.insert(top, index);
        }
        Ok(self.get(&id))
    }
}

/// The state of `first_merge`'s walk: per commit, whether new or known history reaches
/// it and whether it waits in the queue.
struct Paint {
    flags: Vec<u8>,
    queue: std::collections::BinaryHeap<(u32, CommitIndex)>,
    /// Queued commits that known history does not reach (yet).
    unknown_queued: usize,
}

impl Paint {
    const NEW: u8 = 1;
    const KNOWN: u8 = 2;
    const QUEUED: u8 = 4;

    fn paint(&mut self, graph: &CommitGraph, i: CommitIndex, flag: u8) {
        let flags = &mut self.flags[i as usize];
        if *flags & Paint::QUEUED != 0 {
            if flag == Paint::KNOWN && *flags & Paint::KNOWN == 0 {
                self.unknown_queued -= 1;
            }
            *flags |= flag;
        } else if *flags == 0 {
            // Children come first (higher generations), so a commit is painted only
            // before it is visited.
            *flags = flag | Paint::QUEUED;
            self.queue.push((graph.node(i).generation, i));
            if flag == Paint::NEW {
                self.unknown_queued += 1;
            }
        }
    }
}

/// A commit's links read from its git bytes, as git reads them.
fn git_links(
    repo: &Repo,
    location: &crate::store::ObjectLocation,
) -> Result<CommitLinks, StoreError> {
    let (_, body) = repo.git_object(location)?;
    let mut links = CommitLinks {
        tree: None,
        parents: Vec::new(),
        committer_time: 0,
    };
    if let Some((tree, parents)) = crate::git::format::commit_links(&body) {
        links.tree = repo.id_of_sha1(&tree);
        links.parents = parents.iter().filter_map(|p| repo.id_of_sha1(p)).collect();
    }
    Ok(links)
}

fn is_commit(repo: &Repo, id: &ObjectId) -> bool {
    repo.locate(id)
        .is_some_and(|l| l.kind() == Some(Kind::Commit))
}
