//! Revisions as users name them, and commits as they read them.

use bstr::{BString, ByteSlice};

use crate::object::{Kind, NativeObject, Node, ObjectId, Sha1, Signature, decode};
use crate::store::{RefTarget, Repo};

use super::BrowseError;

/// Longest revision name looked up (a ref name's bound).
const MAX_REVISION: usize = 1024;
/// Symbolic refs followed before giving up (`HEAD` → a branch is one).
const MAX_SYMBOLIC: usize = 5;

/// A revision resolved to the commit it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revision {
    pub commit: ObjectId,
    pub sha1: Sha1,
    /// Named by an object id rather than a ref: what it names can never change.
    pub by_id: bool,
}

/// Resolves a revision: `None` or empty is `HEAD`; 40 hex digits a SHA-1, 64 a native id;
/// a full ref name (`refs/…`, `HEAD`) as it is; anything else a branch, then a tag, then a
/// name under `refs/`. Tags are peeled to the commit they point at.
pub fn resolve(repo: &Repo, rev: Option<&str>) -> Result<Revision, BrowseError> {
    let rev = rev.filter(|r| !r.is_empty()).unwrap_or("HEAD");
    let not_found = || BrowseError::RevisionNotFound(rev.to_owned());
    if rev.len() > MAX_REVISION {
        return Err(not_found());
    }
    let (id, by_id) = if let Some(id) = by_object_id(repo, rev) {
        (id, true)
    } else {
        (by_ref(repo, rev)?.ok_or_else(not_found)?, false)
    };
    let (_, target, kind) = crate::history::peel(repo, id)?;
    match kind {
        Some(Kind::Commit) => Ok(Revision {
            commit: target,
            sha1: repo.sha1_of(&target).ok_or_else(not_found)?,
            by_id,
        }),
        Some(other) => Err(BrowseError::NotACommit {
            rev: rev.to_owned(),
            kind: other.to_string(),
        }),
        None => Err(not_found()),
    }
}

fn by_object_id(repo: &Repo, rev: &str) -> Option<ObjectId> {
    match rev.len() {
        40 => Sha1::from_hex(rev.as_bytes())
            .ok()
            .and_then(|sha1| repo.id_of_sha1(&sha1)),
        64 => ObjectId::from_hex(rev.as_bytes())
            .ok()
            .filter(|id| repo.contains(id)),
        _ => None,
    }
}

fn by_ref(repo: &Repo, rev: &str) -> Result<Option<ObjectId>, BrowseError> {
    let candidates: Vec<String> = if rev == "HEAD" || rev.starts_with("refs/") {
        vec![rev.to_owned()]
    } else {
        vec![
            format!("refs/heads/{rev}"),
            format!("refs/tags/{rev}"),
            format!("refs/{rev}"),
        ]
    };
    for candidate in candidates {
        let mut name = BString::from(candidate);
        for _ in 0..=MAX_SYMBOLIC {
            match repo.read_ref(&name)? {
                Some(RefTarget::Direct(id)) => return Ok(Some(id)),
                Some(RefTarget::Symbolic(target)) => name = target,
                None => break,
            }
        }
    }
    Ok(None)
}

/// A commit as a reader wants it: both ids of it, its tree and its parents, its people and
/// its message.
#[derive(Debug, Clone)]
pub struct CommitInfo {
    pub id: ObjectId,
    pub sha1: Sha1,
    pub tree: ObjectId,
    pub tree_sha1: Sha1,
    pub parents: Vec<(ObjectId, Sha1)>,
    pub author: Option<Signature>,
    pub committer: Option<Signature>,
    pub message: BString,
    pub encoding: Option<BString>,
    /// A `gpgsig` (or `gpgsig-sha256`) header: the commit carries a signature (not verified).
    pub signed: bool,
}

pub fn commit_info(repo: &Repo, id: ObjectId) -> Result<CommitInfo, BrowseError> {
    let location = crate::history::locate(repo, &id)?;
    let (kind, content) = repo.read_content(&location)?;
    let commit = match (kind, decode(kind, &content)) {
        (
            Kind::Commit,
            Ok(NativeObject::Parsed {
                node: Node::Commit(commit),
                ..
            }),
        ) => commit,
        _ => return Err(BrowseError::Unparsed(location.sha1().to_hex())),
    };
    let sha1_of = |id: &ObjectId| {
        repo.sha1_of(id)
            .ok_or_else(|| crate::store::StoreError::MissingObject(id.to_hex()))
    };
    Ok(CommitInfo {
        id,
        sha1: location.sha1(),
        tree: commit.tree,
        tree_sha1: sha1_of(&commit.tree)?,
        parents: commit
            .parents
            .iter()
            .map(|p| Ok((*p, sha1_of(p)?)))
            .collect::<Result<_, crate::store::StoreError>>()?,
        signed: commit
            .extra_headers
            .iter()
            .any(|h| h.name == "gpgsig" || h.name == "gpgsig-sha256"),
        author: commit.author,
        committer: commit.committer,
        message: commit.message.unwrap_or_default(),
        encoding: commit.encoding,
    })
}

impl CommitInfo {
    /// The first line of the message (git's subject), lossily as UTF-8.
    pub fn subject(&self) -> String {
        self.message
            .lines()
            .next()
            .unwrap_or_default()
            .to_str_lossy()
            .into_owned()
    }
}
