//! Reachability on the native store: peeling tags, walking trees, the closure of a set of
//! tips.

use crate::object::{
    IdMap, IdSet, Kind, ObjectId, for_each_tree_child, mode_is_followed, tag_target,
};
use crate::store::{ObjectLocation, Repo, StoreError};

use super::graph::{CommitGraph, CommitIndex};

/// Longest tag chain followed (git's own `deref_tag` has no limit; a chain this long is an
/// attack, not history).
const MAX_TAG_CHAIN: usize = 1000;

/// Follows tags to the object they finally point at. Returns the chain of tag ids met (the
/// start included when it is a tag) and the final object with its kind. Like git, a tag
/// whose `type` header names another kind than its target's does not peel: the kind is
/// then `None`.
pub fn peel(
    repo: &Repo,
    id: ObjectId,
) -> Result<(Vec<ObjectId>, ObjectId, Option<Kind>), StoreError> {
    let mut chain = Vec::new();
    let mut current = id;
    loop {
        let Some(location) = repo.locate(&current) else {
            return Ok((chain, current, None));
        };
        let kind = location.kind();
        if kind != Some(Kind::Tag) || chain.len() >= MAX_TAG_CHAIN {
            return Ok((chain, current, kind));
        }
        chain.push(current);
        let (_, content) = repo.read_content(&location)?;
        match tag_target(&content)
            .map_err(|e| StoreError::Corrupt(format!("tag {current}: {e}")))?
        {
            Some((target, claimed)) => {
                let actual = repo.locate(&target).and_then(|l| l.kind());
                if actual.is_none_or(|k| k.as_str().as_bytes() != claimed) {
                    return Ok((chain, target, None));
                }
                current = target;
            }
            None => return Ok((chain, current, kind)),
        }
    }
}

pub fn locate(repo: &Repo, id: &ObjectId) -> Result<ObjectLocation, StoreError> {
    repo.locate(id)
        .ok_or_else(|| StoreError::MissingObject(id.to_hex()))
}

/// Visits `root` and every tree and blob below it that `skip` does not hold yet, adding them
/// to `skip`. `visit(location, kind, depth)` decides whether a tree is descended into.
pub fn walk_tree(
    repo: &Repo,
    root: ObjectId,
    skip: &mut IdSet<ObjectId>,
    mut visit: impl FnMut(&ObjectLocation, Kind, u64) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    if !skip.insert(root) {
        return Ok(());
    }
    let mut stack = vec![(root, 0u64)];
    let mut children = Vec::new();
    while let Some((id, depth)) = stack.pop() {
        let location = locate(repo, &id)?;
        let kind = location.kind().unwrap_or(Kind::Blob);
        if !visit(&location, kind, depth)? || kind != Kind::Tree {
            continue;
        }
        let (_, content) = repo.read_content(&location)?;
        children.clear();
        for_each_tree_child(&content, |mode, _, child| {
            if mode_is_followed(mode) {
                children.push(child)
            }
        })
        .map_err(|e| StoreError::Corrupt(format!("tree {id}: {e}")))?;
        // Pushed in reverse so that entries come out in tree order.
        for &child in children.iter().rev() {
            if skip.insert(child) {
                stack.push((child, depth + 1));
            }
        }
    }
    Ok(())
}

/// Every object reachable from `tips` (commits through the graph, then all their trees).
pub fn reachable(
    repo: &Repo,
    graph: &mut CommitGraph,
    tips: &[ObjectId],
) -> Result<IdSet<ObjectId>, StoreError> {
    let mut out = IdSet::default();
    let mut commits: Vec<CommitIndex> = Vec::new();
    for &tip in tips {
        let (chain, target, kind) = peel(repo, tip)?;
        out.extend(chain);
        match kind {
            Some(Kind::Commit) => {
                if let Some(c) = graph.load(repo, target)? {
                    commits.push(c);
                }
            }
            Some(_) => walk_tree(repo, target, &mut out, |_, _, _| Ok(true))?,
            None => {}
        }
    }
    let mut seen_commits: IdMap<CommitIndex, ()> = IdMap::default();
    while let Some(c) = commits.pop() {
        if seen_commits.insert(c, ()).is_some() {
            continue;
        }
        let node = *graph.node(c);
        out.insert(node.id);
        if let Some(tree) = node.tree {
            walk_tree(repo, tree, &mut out, |_, _, _| Ok(true))?;
        }
        commits.extend(graph.parents(c));
    }
    Ok(out)
}
