//! Directories and paths at a commit.

use bstr::{BString, ByteSlice};

use crate::object::{EntryKind, EntryTarget, Kind, NativeObject, Node, ObjectId, Sha1, decode};
use crate::store::{Repo, StoreError};

use super::BrowseError;

/// Longest path looked up (git has no bound; 4 KiB is more than any file system takes).
const MAX_PATH: usize = 4096;

/// One entry of a directory listing.
#[derive(Debug, Clone)]
pub struct TreeItem {
    pub name: BString,
    /// The mode as the tree writes it (`100644`, `40000`, …).
    pub mode: BString,
    pub kind: EntryKind,
    /// The object it names here (`None` for a submodule commit, which lives elsewhere).
    pub id: Option<ObjectId>,
    pub sha1: Sha1,
}

/// What a path names at a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathEntry {
    pub mode: BString,
    pub kind: EntryKind,
    pub target: EntryTarget<ObjectId>,
}

/// A path's components: slashes at either end are ignored; empty, `.` and `..` components
/// and NUL bytes are refused. The empty path is the root.
pub fn split_path(path: &str) -> Result<Vec<&str>, BrowseError> {
    let invalid = |reason| BrowseError::InvalidPath {
        path: path.to_owned(),
        reason,
    };
    if path.len() > MAX_PATH {
        return Err(invalid("longer than 4096 bytes"));
    }
    if path.contains('\0') {
        return Err(invalid("contains a NUL byte"));
    }
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    let components: Vec<&str> = trimmed.split('/').collect();
    if components.iter().any(|c| c.is_empty()) {
        return Err(invalid("empty component"));
    }
    if components.iter().any(|c| *c == "." || *c == "..") {
        return Err(invalid("`.` and `..` are not components of a stored path"));
    }
    Ok(components)
}

/// The entries of a tree, in the order the tree stores them.
pub fn read_tree(repo: &Repo, id: ObjectId) -> Result<Vec<TreeItem>, BrowseError> {
    let tree = parsed_tree(repo, id)?;
    tree.entries
        .into_iter()
        .map(|entry| {
            let kind = entry.kind();
            let (id, sha1) = match entry.target {
                EntryTarget::Object(id) => (
                    Some(id),
                    repo.sha1_of(&id)
                        .ok_or_else(|| StoreError::MissingObject(id.to_hex()))?,
                ),
                EntryTarget::Gitlink(sha1) => (None, sha1),
            };
            Ok(TreeItem {
                name: entry.name,
                mode: entry.mode,
                kind,
                id,
                sha1,
            })
        })
        .collect()
}

fn parsed_tree(repo: &Repo, id: ObjectId) -> Result<crate::object::Tree<ObjectId>, BrowseError> {
    let location = crate::history::locate(repo, &id)?;
    let (kind, content) = repo.read_content(&location)?;
    match (kind, decode(kind, &content)) {
        (
            Kind::Tree,
            Ok(NativeObject::Parsed {
                node: Node::Tree(tree),
                ..
            }),
        ) => Ok(tree),
        _ => Err(BrowseError::Unparsed(location.sha1().to_hex())),
    }
}

/// What `components` names below the tree `root` (the root itself for no components);
/// `None` when nothing is there. A path through a file or a submodule names nothing.
pub fn lookup(
    repo: &Repo,
    root: ObjectId,
    components: &[&str],
) -> Result<Option<PathEntry>, BrowseError> {
    let mut current = PathEntry {
        mode: "40000".into(),
        kind: EntryKind::Directory,
        target: EntryTarget::Object(root),
    };
    for component in components {
        let EntryTarget::Object(tree) = current.target else {
            return Ok(None);
        };
        if current.kind != EntryKind::Directory {
            return Ok(None);
        }
        let found = parsed_tree(repo, tree)?
            .entries
            .into_iter()
            .find(|e| e.name.as_bytes() == component.as_bytes());
        match found {
            Some(entry) => {
                current = PathEntry {
                    kind: entry.kind(),
                    mode: entry.mode,
                    target: entry.target,
                }
            }
            None => return Ok(None),
        }
    }
    Ok(Some(current))
}

/// Joins a directory's path and an entry's name, lossily as UTF-8 where it is not.
pub(super) fn join(dir: &[u8], name: &[u8]) -> BString {
    let mut path = BString::from(dir);
    if !path.is_empty() {
        path.push(b'/');
    }
    path.extend_from_slice(name);
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_stored_components() {
        assert_eq!(split_path("").unwrap(), Vec::<&str>::new());
        assert_eq!(split_path("/").unwrap(), Vec::<&str>::new());
        assert_eq!(split_path("src/lib.rs").unwrap(), vec!["src", "lib.rs"]);
        assert_eq!(split_path("/src/").unwrap(), vec!["src"]);
        for bad in ["a//b", "a/./b", "../x", "a\0b"] {
            assert!(
                matches!(split_path(bad), Err(BrowseError::InvalidPath { .. })),
                "{bad:?}"
            );
        }
        assert!(split_path(&"a".repeat(5000)).is_err());
    }
}
