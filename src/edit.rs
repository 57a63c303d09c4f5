//! Commits made without a clone: file changes (put, delete, move) applied to a branch's
//! tree, written as native objects with their SHA-1s, checked as git's fsck checks a push,
//! and published with the branch's move through the one gate (`StoredContext`), in one
//! metadata transaction. Refused, nothing of them remains.

use std::collections::BTreeMap;

use bstr::{BString, ByteSlice};

use crate::browse::{self, BrowseError};
use crate::gate::{
    self, Brought, Claim, NewValue, Proposal, RefChange, Refusal, StoredContext, Via,
};
use crate::git::fsck::{self, NamedObject};
use crate::git::{git_sha1, native_to_git};
use crate::history::CommitGraph;
use crate::object::{
    Commit, EntryKind, EntryTarget, IdMap, Kind, NativeObject, Node, ObjectId, Sha1, Signature,
    Tree, TreeEntry, encode, native_id,
};
use crate::store::{DataDir, RefTarget, Repo, StoreError};

/// Most changes one commit takes.
pub const MAX_CHANGES: usize = 1000;
/// Longest commit message taken.
pub const MAX_MESSAGE: usize = 64 << 10;

/// What a file becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileMode {
    File,
    Executable,
    Symlink,
}

impl FileMode {
    fn git_mode(self) -> &'static str {
        match self {
            FileMode::File => "100644",
            FileMode::Executable => "100755",
            FileMode::Symlink => "120000",
        }
    }
}

/// One change to the tree, applied in order.
#[derive(Debug, Clone)]
pub enum Change {
    /// Writes a file (creating the directories above it), replacing one there.
    Put {
        path: String,
        content: Vec<u8>,
        mode: FileMode,
    },
    /// Removes a file or a whole directory.
    Delete { path: String },
    /// Renames a file or a directory; nothing may be at `to` yet.
    Move { from: String, to: String },
}

/// A person as a commit names them; the time is the commit's.
#[derive(Debug, Clone)]
pub struct Person {
    pub name: String,
    pub email: String,
}

/// A commit to make on `branch`.
#[derive(Debug, Clone)]
pub struct NewCommit {
    /// The full ref name (`refs/heads/…`).
    pub branch: String,
    /// The commit to build on: the branch's tip when it exists (else the update loses a
    /// compare-and-swap), any commit to start a new branch from, `None` for a root commit.
    pub parent: Option<Sha1>,
    pub message: String,
    pub author: Person,
    pub committer: Person,
    /// Seconds since the epoch (UTC).
    pub time: i64,
    pub changes: Vec<Change>,
}

/// The commit made.
#[derive(Debug, Clone)]
pub struct Made {
    pub commit: ObjectId,
    pub sha1: Sha1,
    /// What the gate noted without refusing (an evaluate-mode rule, a bypass).
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("{0}")]
    Invalid(String),
    #[error("the parent {0} is not a commit of this repository")]
    ParentNotFound(String),
    #[error("{path}: nothing is there to {action}")]
    PathNotFound { path: String, action: &'static str },
    #[error("{path}: {reason}")]
    Conflict { path: String, reason: String },
    #[error("git's fsck refuses the result: {0}")]
    Fsck(String),
    #[error(transparent)]
    Browse(BrowseError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<BrowseError> for EditError {
    fn from(error: BrowseError) -> EditError {
        match error {
            BrowseError::Store(e) => EditError::Store(e),
            other => EditError::Browse(other),
        }
    }
}

impl EditError {
    pub fn code(&self) -> &'static str {
        match self {
            EditError::Invalid(_) => "invalid_request",
            EditError::ParentNotFound(_) => "parent_not_found",
            EditError::PathNotFound { .. } => "path_not_found",
            EditError::Conflict { .. } => "path_conflict",
            EditError::Fsck(_) => "fsck_refused",
            EditError::Browse(e) => e.code(),
            EditError::Store(e) => e.code(),
        }
    }
}

/// A commit written to a segment that is not published yet (`prepare`), to be moved onto
/// its branch through the gate (`publish`).
pub struct Prepared {
    branch: BString,
    /// The parent commit, `None` for a root commit.
    parent: Option<ObjectId>,
    commit: ObjectId,
    sha1: Sha1,
    objects: Vec<(ObjectId, Brought)>,
    segment: crate::store::SegmentWriter,
}

/// Builds the commit: the parent's tree with the changes applied, every new object
/// checked and written to a new segment. Needs no lock (nothing is published); the branch's
/// compare-and-swap in `publish` catches a parent that moved meanwhile.
pub fn prepare(repo: &Repo, request: NewCommit) -> Result<Prepared, EditError> {
    validate(&request)?;
    let parent = match request.parent {
        Some(sha1) => {
            let revision = browse::resolve(repo, Some(&sha1.to_hex()))
                .map_err(|_| EditError::ParentNotFound(sha1.to_hex()))?;
            Some(browse::commit_info(repo, revision.commit)?)
        }
        None => None,
    };
    let mut root = Dir::default();
    if let Some(parent) = &parent {
        root.load(repo, parent.tree)?;
    }
    for change in request.changes {
        apply(repo, &mut root, change)?;
    }
    let mut out = Written::default();
    let tree = root.write(repo, &mut out)?;
    out.check_named(repo)?;
    let signature = |person: &Person| Signature {
        name: person.name.clone().into(),
        email: person.email.clone().into(),
        time: request.time,
        tz_offset_minutes: 0,
    };
    let mut message = request.message;
    if !message.ends_with('\n') {
        message.push('\n');
    }
    let parents: Vec<ObjectId> = parent.iter().map(|p| p.id).collect();
    let commit = NativeObject::Parsed {
        node: Node::Commit(Commit {
            tree,
            parents: parents.clone(),
            author: Some(signature(&request.author)),
            committer: Some(signature(&request.committer)),
            encoding: None,
            extra_headers: Vec::new(),
            message: Some(message.into()),
        }),
        git_verbatim: None,
    };
    let (commit_id, commit_sha1) = out.add(repo, Kind::Commit, &commit)?;

    let mut segment = repo.new_segment()?;
    for object in &out.objects {
        segment.append_full(object.id, object.sha1, object.kind, &object.content)?;
    }
    let objects = out
        .objects
        .iter()
        .map(|object| {
            let brought = Brought {
                sha1: object.sha1,
                kind: object.kind,
                parents: if object.id == commit_id {
                    parents.clone()
                } else {
                    Vec::new()
                },
            };
            (object.id, brought)
        })
        .collect();
    Ok(Prepared {
        branch: BString::from(request.branch),
        parent: parent.map(|p| p.id),
        commit: commit_id,
        sha1: commit_sha1,
        objects,
        segment,
    })
}

impl Prepared {
    /// The parent it was built on (`None`: a root commit).
    pub fn parent(&self) -> Option<ObjectId> {
        self.parent
    }

    /// Moves the branch onto the commit through the gate, publishing its objects in the
    /// same transaction. The caller holds the lock that serialises the repository's ref
    /// updates. `Ok(Err(refusal))`: the gate refused it (the refusal is recorded as an
    /// event, the objects are gone).
    pub fn publish(
        self,
        repo: &Repo,
        graph: &mut CommitGraph,
        data: &DataDir,
        caller: gate::Caller,
        lease: Option<u64>,
        may_update: &dyn Fn(&str) -> Result<(), Refusal>,
    ) -> Result<Result<Made, Refusal>, EditError> {
        let mut ctx = StoredContext::new(repo, graph, data, may_update)?;
        for (id, brought) in self.objects {
            ctx.bring(id, brought);
        }
        let claim = match (repo.read_ref(&self.branch)?, self.parent) {
            (Some(_), Some(parent)) => Claim::Target(RefTarget::Direct(parent)),
            _ => Claim::Absent,
        };
        let proposal = Proposal {
            via: Via::Rest,
            caller,
            changes: vec![RefChange {
                name: self.branch,
                claim,
                new: NewValue::Set(RefTarget::Direct(self.commit)),
            }],
            goal: gate::GoalPart {
                lease,
                ..gate::GoalPart::default()
            },
        };
        // An empty segment (the same commit made twice) publishes nothing new.
        let segment = (!self.segment.is_empty()).then_some(self.segment);
        Ok(match ctx.apply_one_with(&proposal, segment)? {
            Ok(()) => Ok(Made {
                commit: self.commit,
                sha1: self.sha1,
                notes: ctx.notes().to_vec(),
            }),
            Err(refusal) => Err(refusal),
        })
    }
}

fn validate(request: &NewCommit) -> Result<(), EditError> {
    let invalid = |why: String| Err(EditError::Invalid(why));
    if request.changes.len() > MAX_CHANGES {
        return invalid(format!(
            "{} changes; a commit takes at most {MAX_CHANGES}",
            request.changes.len()
        ));
    }
    if request.message.trim().is_empty() {
        return invalid("the message is empty".into());
    }
    if request.message.len() > MAX_MESSAGE {
        return invalid(format!(
            "the message has {} bytes; at most {MAX_MESSAGE}",
            request.message.len()
        ));
    }
    if request.message.contains('\0') {
        return invalid("the message contains a NUL byte".into());
    }
    for (what, person) in [
        ("author", &request.author),
        ("committer", &request.committer),
    ] {
        let bad = |s: &str| s.is_empty() || s.len() > 256 || s.contains(['<', '>', '\n', '\0']);
        if bad(&person.name) || bad(&person.email) {
            return invalid(format!(
                "the {what}'s name and email are 1 to 256 bytes without '<', '>', newlines or NUL"
            ));
        }
    }
    Ok(())
}

/// A directory being edited: entries as stored until a change reaches into them.
#[derive(Debug, Default)]
struct Dir {
    entries: BTreeMap<BString, Item>,
}

#[derive(Debug)]
enum Item {
    /// An entry as the parent's tree has it (a directory not descended into).
    Stored {
        mode: BString,
        kind: EntryKind,
        target: EntryTarget<ObjectId>,
    },
    File {
        content: Vec<u8>,
        mode: FileMode,
    },
    Dir(Dir),
}

impl Dir {
    fn load(&mut self, repo: &Repo, tree: ObjectId) -> Result<(), EditError> {
        for item in browse::read_tree(repo, tree)? {
            let target = match item.id {
                Some(id) => EntryTarget::Object(id),
                None => EntryTarget::Gitlink(item.sha1),
            };
            self.entries.insert(
                item.name,
                Item::Stored {
                    mode: item.mode,
                    kind: item.kind,
                    target,
                },
            );
        }
        Ok(())
    }

    /// The directory at `components`, made (`create`) where missing; opened from the store
    /// where it was not yet.
    fn descend(
        &mut self,
        repo: &Repo,
        components: &[&str],
        path: &str,
        create: bool,
    ) -> Result<Option<&mut Dir>, EditError> {
        let Some((first, rest)) = components.split_first() else {
            return Ok(Some(self));
        };
        let item = match self.entries.entry(BString::from(*first)) {
            std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::btree_map::Entry::Vacant(entry) if create => {
                entry.insert(Item::Dir(Dir::default()))
            }
            std::collections::btree_map::Entry::Vacant(_) => return Ok(None),
        };
        if let Item::Stored {
            kind: EntryKind::Directory,
            target: EntryTarget::Object(tree),
            ..
        } = item
        {
            let mut dir = Dir::default();
            dir.load(repo, *tree)?;
            *item = Item::Dir(dir);
        }
        match item {
            Item::Dir(dir) => dir.descend(repo, rest, path, create),
            _ if create => Err(EditError::Conflict {
                path: path.to_owned(),
                reason: format!("{first} is a file, not a directory"),
            }),
            _ => Ok(None),
        }
    }

    /// Writes the root's tree (and every new object below it) into `out`; returns its id.
    /// A root left empty is git's empty tree.
    fn write(self, repo: &Repo, out: &mut Written) -> Result<ObjectId, EditError> {
        match self.write_nonempty(repo, out)? {
            Some(id) => Ok(id),
            None => Ok(out.add(repo, Kind::Tree, &empty_tree())?.0),
        }
    }

    /// Writes a directory's tree; an empty one is not written (git keeps none): `None`.
    fn write_nonempty(self, repo: &Repo, out: &mut Written) -> Result<Option<ObjectId>, EditError> {
        let mut entries: Vec<TreeEntry<ObjectId>> = Vec::with_capacity(self.entries.len());
        for (name, item) in self.entries {
            let (mode, target) = match item {
                Item::Stored { mode, target, .. } => (mode, target),
                Item::File { content, mode } => {
                    let id = out.add_blob(repo, content);
                    (mode.git_mode().into(), EntryTarget::Object(id))
                }
                Item::Dir(dir) => match dir.write_nonempty(repo, out)? {
                    Some(id) => ("40000".into(), EntryTarget::Object(id)),
                    None => continue,
                },
            };
            entries.push(TreeEntry { mode, name, target });
        }
        if entries.is_empty() {
            return Ok(None);
        }
        // git's order: names compared as if a directory's ended in '/'.
        let key = |e: &TreeEntry<ObjectId>| {
            let mut key = e.name.to_vec();
            if e.kind() == EntryKind::Directory {
                key.push(b'/');
            }
            key
        };
        entries.sort_by_cached_key(key);
        let tree = NativeObject::Parsed {
            node: Node::Tree(Tree { entries }),
            git_verbatim: None,
        };
        Ok(Some(out.add(repo, Kind::Tree, &tree)?.0))
    }
}

fn empty_tree() -> NativeObject {
    NativeObject::Parsed {
        node: Node::Tree(Tree {
            entries: Vec::new(),
        }),
        git_verbatim: None,
    }
}

fn apply(repo: &Repo, root: &mut Dir, change: Change) -> Result<(), EditError> {
    match change {
        Change::Put {
            path,
            content,
            mode,
        } => {
            if path.ends_with('/') {
                return Err(EditError::Invalid(format!(
                    "{path:?} ends with `/`: a file's path names the file"
                )));
            }
            let (dir, name) = parent_and_name(&path)?;
            let Some(parent) = root.descend(repo, &dir, &path, true)? else {
                return Err(not_a_directory(&path));
            };
            if let Some(
                Item::Dir(_)
                | Item::Stored {
                    kind: EntryKind::Directory,
                    ..
                },
            ) = parent.entries.get(name.as_bytes().as_bstr())
            {
                return Err(EditError::Conflict {
                    path,
                    reason: "a directory is there".into(),
                });
            }
            parent
                .entries
                .insert(name.into(), Item::File { content, mode });
        }
        Change::Delete { path } => {
            take(repo, root, &path, "delete")?;
        }
        Change::Move { from, to } => {
            let (source, target) = (from.trim_matches('/'), to.trim_matches('/'));
            if target == source || target.starts_with(&format!("{source}/")) {
                return Err(EditError::Conflict {
                    path: to,
                    reason: format!("{from} cannot move into itself"),
                });
            }
            let item = take(repo, root, &from, "move")?;
            let (dir, name) = parent_and_name(&to)?;
            let Some(parent) = root.descend(repo, &dir, &to, true)? else {
                return Err(not_a_directory(&to));
            };
            if parent.entries.contains_key(name.as_bytes().as_bstr()) {
                return Err(EditError::Conflict {
                    path: to,
                    reason: "something is there already".into(),
                });
            }
            parent.entries.insert(name.into(), item);
        }
    }
    Ok(())
}

fn not_a_directory(path: &str) -> EditError {
    EditError::Conflict {
        path: path.to_owned(),
        reason: "a directory above it is a file".into(),
    }
}

/// Removes what `path` names and returns it.
fn take(repo: &Repo, root: &mut Dir, path: &str, action: &'static str) -> Result<Item, EditError> {
    let missing = || EditError::PathNotFound {
        path: path.to_owned(),
        action,
    };
    let (dir, name) = parent_and_name(path)?;
    let parent = root.descend(repo, &dir, path, false)?.ok_or_else(missing)?;
    parent
        .entries
        .remove(name.as_bytes().as_bstr())
        .ok_or_else(missing)
}

/// A path's directory components and last name; the root itself is no file's path.
fn parent_and_name(path: &str) -> Result<(Vec<&str>, &str), EditError> {
    let mut components = browse::split_path(path)?;
    let name = components
        .pop()
        .ok_or_else(|| EditError::Invalid(format!("{path:?} names the root, not a file")))?;
    Ok((components, name))
}

struct NewObject {
    id: ObjectId,
    sha1: Sha1,
    kind: Kind,
    /// Blob bytes, or the native encoding of a tree or commit.
    content: Vec<u8>,
}

/// The objects a commit brings, with their SHA-1s, each once.
#[derive(Default)]
struct Written {
    objects: Vec<NewObject>,
    sha1s: IdMap<ObjectId, Sha1>,
    /// Blobs a tree names `.gitmodules` or `.gitattributes`, checked once all are written.
    named: Vec<(fsck::NamedAs, Sha1)>,
}

impl Written {
    fn sha1_of(&self, repo: &Repo, id: &ObjectId) -> Result<Sha1, StoreError> {
        match self.sha1s.get(id) {
            Some(sha1) => Ok(*sha1),
            None => repo
                .sha1_of(id)
                .ok_or_else(|| StoreError::MissingObject(id.to_hex())),
        }
    }

    fn add_blob(&mut self, repo: &Repo, content: Vec<u8>) -> ObjectId {
        let id = ObjectId::for_blob(&content);
        if let Some(sha1) = repo.sha1_of(&id) {
            // Stored already: nothing to write.
            self.sha1s.insert(id, sha1);
            return id;
        }
        if let std::collections::hash_map::Entry::Vacant(e) = self.sha1s.entry(id) {
            let sha1 = git_sha1(Kind::Blob, &content);
            e.insert(sha1);
            self.objects.push(NewObject {
                id,
                sha1,
                kind: Kind::Blob,
                content,
            });
        }
        id
    }

    /// Adds a tree or commit, checked as git's fsck checks a pushed one.
    fn add(
        &mut self,
        repo: &Repo,
        kind: Kind,
        object: &NativeObject,
    ) -> Result<(ObjectId, Sha1), EditError> {
        let encoded = encode(object);
        let id = native_id(kind, &encoded);
        if let Some(sha1) = self.sha1s.get(&id) {
            return Ok((id, *sha1));
        }
        if let Some(sha1) = repo.sha1_of(&id) {
            self.sha1s.insert(id, sha1);
            return Ok((id, sha1));
        }
        let git = native_to_git(object, |child| self.sha1_of(repo, &child))?;
        let mut named = Vec::new();
        fsck::check_noting(kind, &git, |as_named, sha1| named.push((as_named, sha1)))
            .map_err(|problem| EditError::Fsck(problem.to_string()))?;
        self.named.extend(named);
        let sha1 = git_sha1(kind, &git);
        self.sha1s.insert(id, sha1);
        self.objects.push(NewObject {
            id,
            sha1,
            kind,
            content: encoded,
        });
        Ok((id, sha1))
    }

    /// git's checks of the `.gitmodules` and `.gitattributes` blobs the new trees name.
    fn check_named(&self, repo: &Repo) -> Result<(), EditError> {
        for (named, sha1) in &self.named {
            let new = self.objects.iter().find(|o| o.sha1 == *sha1);
            let stored;
            let object = match new {
                Some(o) if o.kind == Kind::Blob => NamedObject::Blob(Some(&o.content)),
                Some(_) => NamedObject::NotBlob,
                None => match repo.locate_sha1(sha1) {
                    Some(location) if location.kind() == Some(Kind::Blob) => {
                        stored = repo.read_content(&location)?.1;
                        NamedObject::Blob(Some(&stored))
                    }
                    Some(_) => NamedObject::NotBlob,
                    None => NamedObject::Missing,
                },
            };
            fsck::check_named(*named, object)
                .map_err(|problem| EditError::Fsck(format!("{sha1}: {problem}")))?;
        }
        Ok(())
    }
}
