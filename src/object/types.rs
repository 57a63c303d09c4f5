//! The structured object types, generic over how they refer to other objects.
//!
//! `Tree<Sha1>` is a tree as git stores it; `Tree<ObjectId>` is the same tree in native form.
//! Translation maps one to the other without touching any other field, so every field git
//! has survives: raw mode strings, entry order, signatures with their time zones, encoding,
//! extra headers (gpgsig, mergetag, …), tag names that are not valid ref names.

use bstr::BString;

use super::id::{Kind, Sha1};

/// A tree: entries in the order git stored them (not re-sorted, duplicates kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree<Id> {
    pub entries: Vec<TreeEntry<Id>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry<Id> {
    /// The mode exactly as written in the tree (`100644`, `40000`, `040000`, `100664`, …).
    pub mode: BString,
    pub name: BString,
    pub target: EntryTarget<Id>,
}

/// What a tree entry points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryTarget<Id> {
    /// An object of this repository.
    Object(Id),
    /// A submodule commit (mode 160000): it lives in another repository, so it keeps its SHA-1.
    Gitlink(Sha1),
}

/// What a mode means, read the way git reads it (`canon_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Executable,
    Symlink,
    Directory,
    Gitlink,
}

const S_IFMT: u32 = 0o170000;

/// Parses an octal mode; `None` when it is empty or has a non-octal digit (git refuses such trees).
pub fn parse_octal_mode(mode: &[u8]) -> Option<u32> {
    if mode.is_empty() || mode.len() > 11 {
        return None;
    }
    mode.iter().try_fold(0u32, |acc, &c| match c {
        b'0'..=b'7' => Some(acc << 3 | u32::from(c - b'0')),
        _ => None,
    })
}

/// Whether git treats an entry with this mode as a submodule commit.
pub fn mode_is_gitlink(mode: &[u8]) -> bool {
    parse_octal_mode(mode).is_some_and(|m| m & S_IFMT == 0o160000)
}

/// Whether git follows an entry with this mode when it walks trees: git reads any mode that
/// is not a file, symlink or directory as a submodule (`canon_mode`), so `644` is not
/// followed although the store keeps its target as an object.
pub fn mode_is_followed(mode: &[u8]) -> bool {
    parse_octal_mode(mode).is_none_or(|m| matches!(m & S_IFMT, 0o100000 | 0o120000 | 0o040000))
}

/// The kind of entry a mode names (what `TreeEntry::kind` returns).
pub fn mode_kind(mode: &[u8]) -> EntryKind {
    let mode = parse_octal_mode(mode).unwrap_or(0);
    match mode & S_IFMT {
        0o040000 => EntryKind::Directory,
        0o120000 => EntryKind::Symlink,
        0o160000 => EntryKind::Gitlink,
        _ if mode & 0o100 != 0 => EntryKind::Executable,
        _ => EntryKind::File,
    }
}

impl<Id> TreeEntry<Id> {
    pub fn kind(&self) -> EntryKind {
        mode_kind(&self.mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_as_git_reads_them() {
        let kind = |mode: &str| {
            TreeEntry {
                mode: mode.into(),
                name: "x".into(),
                target: EntryTarget::Object(Sha1([0; 20])),
            }
            .kind()
        };
        assert_eq!(kind("100644"), EntryKind::File);
        assert_eq!(kind("100664"), EntryKind::File);
        assert_eq!(kind("100755"), EntryKind::Executable);
        assert_eq!(kind("120000"), EntryKind::Symlink);
        assert_eq!(kind("40000"), EntryKind::Directory);
        assert_eq!(kind("040000"), EntryKind::Directory);
        assert_eq!(kind("160000"), EntryKind::Gitlink);
        assert!(mode_is_gitlink(b"0160000") && !mode_is_gitlink(b"100644"));
        assert!(mode_is_followed(b"100644") && mode_is_followed(b"40000"));
        assert!(!mode_is_followed(b"644") && !mode_is_followed(b"160000"));
        assert_eq!(parse_octal_mode(b"8"), None);
    }
}

/// An author, committer or tagger line: `Name <email> 1700000000 +0100`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub name: BString,
    pub email: BString,
    /// Seconds since the Unix epoch.
    pub time: i64,
    /// Offset from UTC in minutes (`+0530` is 330).
    pub tz_offset_minutes: i32,
}

/// A header git does not interpret itself (`gpgsig`, `mergetag`, `HG:extra`, …), in order.
/// A multi-line value is kept unfolded (continuation lines without their leading space).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraHeader {
    pub name: BString,
    pub value: BString,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit<Id> {
    pub tree: Id,
    pub parents: Vec<Id>,
    pub author: Option<Signature>,
    pub committer: Option<Signature>,
    pub encoding: Option<BString>,
    pub extra_headers: Vec<ExtraHeader>,
    /// `None` when the object ends with its headers (no blank line).
    pub message: Option<BString>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag<Id> {
    pub target: Id,
    /// The `type` header as written (normally `commit`, `tree`, `blob` or `tag`).
    pub target_type: BString,
    /// The `tag` header; not necessarily a valid ref name.
    pub name: Option<BString>,
    pub tagger: Option<Signature>,
    pub extra_headers: Vec<ExtraHeader>,
    /// The message without its trailing signature; `None` when there is no blank line.
    pub message: Option<BString>,
    /// A PGP, SSH or X.509 signature block appended to the message.
    pub signature: Option<BString>,
}

/// A tree, commit or tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node<Id> {
    Tree(Tree<Id>),
    Commit(Commit<Id>),
    Tag(Tag<Id>),
}

impl<Id: Copy> Node<Id> {
    pub fn kind(&self) -> Kind {
        match self {
            Node::Tree(_) => Kind::Tree,
            Node::Commit(_) => Kind::Commit,
            Node::Tag(_) => Kind::Tag,
        }
    }

    /// Every object this one refers to inside the repository (gitlinks excluded).
    pub fn for_each_child(&self, mut f: impl FnMut(Id)) {
        match self {
            Node::Tree(tree) => {
                for entry in &tree.entries {
                    if let EntryTarget::Object(id) = entry.target {
                        f(id)
                    }
                }
            }
            Node::Commit(commit) => {
                f(commit.tree);
                commit.parents.iter().copied().for_each(f);
            }
            Node::Tag(tag) => f(tag.target),
        }
    }

    /// The same node with every in-repository reference mapped through `f`.
    pub fn try_map_ids<Other, E>(
        &self,
        mut f: impl FnMut(Id) -> Result<Other, E>,
    ) -> Result<Node<Other>, E> {
        Ok(match self {
            Node::Tree(tree) => Node::Tree(Tree {
                entries: tree
                    .entries
                    .iter()
                    .map(|e| {
                        Ok(TreeEntry {
                            mode: e.mode.clone(),
                            name: e.name.clone(),
                            target: match e.target {
                                EntryTarget::Object(id) => EntryTarget::Object(f(id)?),
                                EntryTarget::Gitlink(sha) => EntryTarget::Gitlink(sha),
                            },
                        })
                    })
                    .collect::<Result<_, E>>()?,
            }),
            Node::Commit(c) => Node::Commit(Commit {
                tree: f(c.tree)?,
                parents: c.parents.iter().map(|&p| f(p)).collect::<Result<_, E>>()?,
                author: c.author.clone(),
                committer: c.committer.clone(),
                encoding: c.encoding.clone(),
                extra_headers: c.extra_headers.clone(),
                message: c.message.clone(),
            }),
            Node::Tag(t) => Node::Tag(Tag {
                target: f(t.target)?,
                target_type: t.target_type.clone(),
                name: t.name.clone(),
                tagger: t.tagger.clone(),
                extra_headers: t.extra_headers.clone(),
                message: t.message.clone(),
                signature: t.signature.clone(),
            }),
        })
    }
}
