//! Which objects a pack carries: the commits negotiation chose, their trees and blobs minus
//! what the client already has, filtered for partial clones, plus tags that follow.

use crate::history::{CommitGraph, CommitIndex, locate, peel, walk_tree};
use crate::object::{
    EntryKind, IdMap, IdSet, Kind, ObjectId, for_each_tree_child, mode_is_followed, mode_kind,
};
use crate::packing::PackError;
use crate::store::{ObjectLocation, Repo};

use super::request::Filter;

/// An object chosen for the pack.
#[derive(Clone)]
pub struct Selected {
    pub location: ObjectLocation,
    pub kind: Kind,
}

#[derive(Default)]
pub struct Selection {
    pub objects: Vec<Selected>,
    /// Trees and blobs the client has (reachable from the boundary commits): thin-pack
    /// delta bases.
    pub client_has: IdSet<ObjectId>,
    /// Every selected id.
    pub chosen: IdSet<ObjectId>,
    /// Trees and blobs the walk has met (sent, had by the client, or filtered out).
    visited: IdSet<ObjectId>,
    /// For blobs that changed in a sent commit: the blob at the same path in its first
    /// parent, a good delta base when the stored form has none the client can use.
    pub hints: IdMap<ObjectId, ObjectId>,
}

pub struct Enumeration<'a> {
    pub repo: &'a Repo,
    pub graph: &'a CommitGraph,
    pub filter: Option<Filter>,
    /// Called now and then with the number of objects chosen so far (progress, keep-alive).
    pub tick: &'a mut dyn FnMut(usize) -> std::io::Result<()>,
}

impl Enumeration<'_> {
    /// Everything the client has from `boundary` commits and `have_other` objects.
    pub fn client_has(
        &mut self,
        boundary: &[CommitIndex],
        have_other: &[ObjectId],
    ) -> Result<IdSet<ObjectId>, PackError> {
        let mut has = IdSet::default();
        for &c in boundary {
            let node = self.graph.node(c);
            has.insert(node.id);
            if let Some(tree) = node.tree {
                walk_tree(self.repo, tree, &mut has, |_, _, _| Ok(true))?;
            }
            (self.tick)(0)?;
        }
        for &id in have_other {
            walk_tree(self.repo, id, &mut has, |_, _, _| Ok(true))?;
        }
        Ok(has)
    }

    pub fn select(
        &mut self,
        commits: &[CommitIndex],
        want_other: &[ObjectId],
        client_has: IdSet<ObjectId>,
    ) -> Result<Selection, PackError> {
        let repo = self.repo;
        let mut selection = Selection {
            client_has,
            ..Selection::default()
        };
        for &c in commits {
            let id = self.graph.node(c).id;
            if selection.chosen.insert(id) {
                selection.objects.push(Selected {
                    location: locate(repo, &id)?,
                    kind: Kind::Commit,
                });
            }
        }
        (self.tick)(selection.objects.len())?;
        // Explicit wants are sent whatever the filter says (a partial clone's lazy fetch
        // asks for blobs with its filter still set).
        for id in want_other {
            let location = locate(repo, id)?;
            let kind = location.kind().unwrap_or(Kind::Blob);
            if kind == Kind::Tree {
                self.add_tree(*id, &mut selection, true)?;
            } else if selection.chosen.insert(*id) {
                selection.objects.push(Selected { location, kind });
            }
        }
        let mut last_tick = selection.objects.len();
        for &c in commits {
            if let Some(tree) = self.graph.node(c).tree {
                self.add_tree(tree, &mut selection, false)?;
            }
            if selection.objects.len() - last_tick >= 1000 {
                last_tick = selection.objects.len();
                (self.tick)(last_tick)?;
            }
        }
        (self.tick)(selection.objects.len())?;
        Ok(selection)
    }

    fn add_tree(
        &mut self,
        root: ObjectId,
        selection: &mut Selection,
        explicit: bool,
    ) -> Result<(), PackError> {
        let repo = self.repo;
        let filter = self.filter;
        let Selection {
            objects,
            client_has,
            chosen,
            visited,
            ..
        } = selection;
        let mut too_deep = Vec::new();
        walk_tree(repo, root, visited, |location, kind, depth| {
            let id = location.id();
            if client_has.contains(&id) {
                return Ok(false);
            }
            let keep = match (filter, kind) {
                _ if explicit && depth == 0 => true,
                (Some(Filter::NoBlobs), Kind::Blob) => false,
                (Some(Filter::BlobLimit(limit)), Kind::Blob) => repo.object_size(location)? < limit,
                (Some(Filter::TreeDepth(limit)), _) if depth >= limit => {
                    // Met again nearer the root, it must be looked at again.
                    too_deep.push(id);
                    false
                }
                _ => true,
            };
            if keep && chosen.insert(id) {
                objects.push(Selected {
                    location: location.clone(),
                    kind,
                });
            }
            Ok(keep)
        })?;
        for id in too_deep {
            visited.remove(&id);
        }
        Ok(())
    }

    /// Pairs each blob a sent commit changed with the blob at the same path in its first
    /// parent (descending only into subtrees that differ).
    pub fn delta_hints(
        &mut self,
        commits: &[CommitIndex],
        selection: &mut Selection,
    ) -> Result<(), PackError> {
        let repo = self.repo;
        let mut pairs: Vec<(ObjectId, ObjectId)> = Vec::new();
        let mut seen_pairs: IdSet<ObjectId> = IdSet::default();
        for &c in commits {
            let Some(&parent) = self.graph.parents(c).first() else {
                continue;
            };
            if let (Some(new), Some(old)) = (self.graph.node(c).tree, self.graph.node(parent).tree)
                && new != old
                && seen_pairs.insert(new)
            {
                pairs.push((new, old));
            }
            while let Some((new, old)) = pairs.pop() {
                let old_entries = tree_entries(repo, &old)?;
                for (name, mode, id) in tree_entries(repo, &new)? {
                    let Ok(i) = old_entries.binary_search_by(|(n, _, _)| n.as_slice().cmp(&name))
                    else {
                        continue;
                    };
                    let (_, old_mode, old_id) = &old_entries[i];
                    if *old_id == id || !selection.chosen.contains(&id) {
                        continue;
                    }
                    match (is_tree_mode(&mode), is_tree_mode(old_mode)) {
                        (true, true) if seen_pairs.insert(id) => pairs.push((id, *old_id)),
                        (true, true) => {}
                        (false, false) => {
                            selection.hints.entry(id).or_insert(*old_id);
                        }
                        _ => {}
                    }
                }
            }
            (self.tick)(selection.objects.len())?;
        }
        Ok(())
    }

    /// Annotated tags (and tag chains) under `refs/tags/` whose final target is in the pack.
    pub fn include_tags(
        &mut self,
        tags: &[ObjectId],
        selection: &mut Selection,
    ) -> Result<(), PackError> {
        for &tag in tags {
            let (chain, target, kind) = peel(self.repo, tag)?;
            if chain.is_empty() || kind.is_none() || !selection.chosen.contains(&target) {
                continue;
            }
            for id in chain {
                if selection.chosen.insert(id) {
                    selection.objects.push(Selected {
                        location: locate(self.repo, &id)?,
                        kind: Kind::Tag,
                    });
                }
            }
        }
        Ok(())
    }
}

fn is_tree_mode(mode: &[u8]) -> bool {
    mode_kind(mode) == EntryKind::Directory
}

/// A tree entry as (name, mode, id).
type NamedEntry = (Vec<u8>, Vec<u8>, ObjectId);

/// A tree's followed entries, sorted by name.
fn tree_entries(repo: &Repo, id: &ObjectId) -> Result<Vec<NamedEntry>, PackError> {
    let (_, content) = repo.read_content(&locate(repo, id)?)?;
    let mut out = Vec::new();
    for_each_tree_child(&content, |mode, name, child| {
        if mode_is_followed(mode) {
            out.push((name.to_vec(), mode.to_vec(), child));
        }
    })
    .map_err(|e| crate::store::StoreError::Corrupt(format!("tree {id}: {e}")))?;
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
