//! A repository read the way people and agents browse it: revisions, commits, logs,
//! comparisons, directories, files and archives, over the native store and named by git's
//! ids. The REST API (and the pages after it) are views of these.

mod archive;
mod compare;
mod log;
mod revision;
mod time;
mod tree;

pub use archive::{ArchiveFormat, ArchivePlan, plan_archive};
pub use compare::{ChangeStatus, Comparison, FileChange, compare, diff_trees};
pub use log::{LogPage, load_commit, log};
pub use revision::{CommitInfo, Revision, commit_info, resolve};
pub use time::rfc3339;
pub use tree::{PathEntry, TreeItem, lookup, read_tree, split_path};

use crate::store::StoreError;

/// Why a read of a repository failed; each with a stable code (`code`) for the CLI and REST.
#[derive(Debug, thiserror::Error)]
pub enum BrowseError {
    #[error(
        "no revision {0:?} in this repository (a branch, a tag, a full ref name or a 40-digit SHA-1)"
    )]
    RevisionNotFound(String),
    #[error("{rev} names a {kind}, not a commit")]
    NotACommit { rev: String, kind: String },
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("{path} does not exist at {commit}")]
    PathNotFound { path: String, commit: String },
    #[error("{path} is not a directory at {commit}")]
    NotADirectory { path: String, commit: String },
    #[error("{path} is not a file at {commit}")]
    NotAFile { path: String, commit: String },
    #[error(
        "object {0} is stored as malformed git bytes that do not parse, so it cannot be browsed"
    )]
    Unparsed(String),
    #[error("{0}")]
    TooLarge(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl BrowseError {
    pub fn code(&self) -> &'static str {
        match self {
            BrowseError::RevisionNotFound(_) => "revision_not_found",
            BrowseError::NotACommit { .. } => "not_a_commit",
            BrowseError::InvalidPath { .. } => "invalid_path",
            BrowseError::PathNotFound { .. } => "path_not_found",
            BrowseError::NotADirectory { .. } => "not_a_directory",
            BrowseError::NotAFile { .. } => "not_a_file",
            BrowseError::Unparsed(_) => "unparsed_object",
            BrowseError::TooLarge(_) => "too_large",
            BrowseError::Store(e) => e.code(),
        }
    }
}
