//! The data directory: its format version, the registry of repositories, and each
//! repository's native object store and refs.
//!
//! ```text
//! forge-data/
//!   FORMAT               format version of the whole directory (see `migrate`)
//!   forge.redb           registry of repositories, identities, revoked token blocks
//!   keys/root.key        the root signing key of tokens (hex, mode 0600)
//!   repos/<id>/
//!     repo.redb          refs, registered segments, repository metadata
//!     objects/<b3>.seg   immutable segments of compressed objects …
//!     objects/<b3>.idx   … and their sorted indexes (native id ⇄ SHA-1)
//! ```

pub mod backend;
pub(crate) mod cache;
pub mod events;
pub mod goals;
pub mod hooks;
mod identities;
pub mod migrate;
mod name;
pub mod policy;
mod redb;
mod refs;
mod repo;
pub mod segment;
mod settings;
mod standing;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use backend::{MetaStore, Registry};

pub use identities::{
    Identity, IdentityError, IdentityKey, IdentityKind, Standing, check_identity_name, new_identity,
};
pub use name::{InvalidRepoName, RepoName, check_name_part};
pub use refs::{Authorized, Expected, RefTarget, RefUpdate};
pub use repo::{GoalWrite, ObjectLocation, Quarantine, Repo, StoredObject};
pub use segment::SegmentWriter;
pub use settings::{RepoSettings, Setting, SettingError};

pub(crate) use self::redb::open_db;

/// The registry's database in the data directory, and each repository's metadata in its
/// directory: the one place the backend is chosen (redb, embedded).
const REGISTRY_FILE: &str = "forge.redb";
const REPO_META_FILE: &str = "repo.redb";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database {path}: {message}")]
    Database { path: PathBuf, message: String },
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    #[error("no data directory at {0} (run `forge serve` or `forge repo create` to make one)")]
    NotInitialized(PathBuf),
    #[error(
        "data directory {path} has format version {found}, newer than this forge supports ({supported}); use a newer forge"
    )]
    FormatTooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("{path} is not a forge data directory: {reason}")]
    NotADataDir { path: PathBuf, reason: String },
    #[error(transparent)]
    InvalidName(#[from] InvalidRepoName),
    #[error("repository {0} does not exist")]
    RepoNotFound(String),
    #[error("repository {0} already exists")]
    RepoExists(String),
    #[error("invalid ref name {name:?}: {reason}")]
    InvalidRefName { name: String, reason: &'static str },
    #[error("ref {name} changed concurrently: expected {expected}, found {found}")]
    RefConflict {
        name: String,
        expected: String,
        found: String,
    },
    /// git's wording (`refs.c`): one name would be a directory of the other.
    #[error("'{existing}' exists; cannot create '{name}'")]
    RefNameConflict { name: String, existing: String },
    #[error("ref {name} points to {target}, which is not in the store")]
    DanglingRef { name: String, target: String },
    #[error("object {0} is not in the store")]
    MissingObject(String),
    #[error("segment {0} was unregistered while a ref to one of its objects was written")]
    SegmentUnregistered(String),
    /// A goal's rule refused a write (`goals::GoalError`, carried by its code and text).
    #[error("{message}")]
    GoalRefused { code: &'static str, message: String },
}

impl StoreError {
    /// The stable code the CLI's `--json` and REST report this error with.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::RepoNotFound(_) => "repo_not_found",
            StoreError::RepoExists(_) => "repo_exists",
            StoreError::InvalidName(_) => "invalid_name",
            StoreError::NotInitialized(_) => "not_initialized",
            StoreError::FormatTooNew { .. } => "format_too_new",
            StoreError::NotADataDir { .. } => "not_a_data_dir",
            StoreError::RefConflict { .. } => "ref_changed",
            StoreError::InvalidRefName { .. } => "invalid_ref",
            StoreError::RefNameConflict { .. } => "ref_name_conflict",
            StoreError::DanglingRef { .. } | StoreError::MissingObject(_) => "object_not_found",
            StoreError::SegmentUnregistered(_) => "store_changed",
            StoreError::Corrupt(_) => "corrupt",
            StoreError::Io { .. } | StoreError::Database { .. } => "store_error",
            StoreError::GoalRefused { code, .. } => code,
        }
    }

    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> StoreError {
        StoreError::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn db(path: &Path, e: impl std::fmt::Display) -> StoreError {
        StoreError::Database {
            path: path.to_owned(),
            message: e.to_string(),
        }
    }
}

/// A repository's entry in the registry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepoRecord {
    pub id: u64,
    pub name: String,
    pub created_at: u64,
    /// Whether anyone may read it, kept here so that listing needs no repository opened.
    /// `None` in records written before the flag moved here from the repository's own
    /// settings: read from there once (`DataDir::is_public`) and written back.
    #[serde(default)]
    pub public: Option<bool>,
}

/// Events removed per registry transaction when the log is pruned.
const PRUNE_STEP: u64 = 10_000;

/// How much of the event log is kept (`None`: no bound of that kind).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    pub max_events: Option<u64>,
    pub max_age: Option<std::time::Duration>,
}

/// An open data directory.
pub struct DataDir {
    root: PathBuf,
    registry: Arc<dyn Registry>,
    standing: Arc<standing::StandingCache<Standing>>,
    /// Who the changes made through this handle are by (the operator unless
    /// `acting_as` said otherwise): their events name it.
    actor: events::Actor,
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl DataDir {
    /// Opens a data directory, creating it first if it does not exist.
    pub fn open_or_init(root: &Path) -> Result<DataDir, StoreError> {
        migrate::prepare(root, true)?;
        Self::open_prepared(root)
    }

    /// Opens an existing data directory.
    pub fn open(root: &Path) -> Result<DataDir, StoreError> {
        migrate::prepare(root, false)?;
        Self::open_prepared(root)
    }

    fn open_prepared(root: &Path) -> Result<DataDir, StoreError> {
        let registry = self::redb::RedbRegistry::open(&root.join(REGISTRY_FILE))?;
        Ok(DataDir {
            root: root.to_owned(),
            registry: Arc::new(registry),
            standing: Arc::new(standing::StandingCache::open(root)),
            actor: events::Actor::operator(),
        })
    }

    /// The same data directory, with changes made by `actor`.
    pub fn acting_as(&self, actor: events::Actor) -> DataDir {
        DataDir {
            root: self.root.clone(),
            registry: self.registry.clone(),
            standing: self.standing.clone(),
            actor,
        }
    }

    /// The registry of repositories, identities and revocations.
    pub fn registry(&self) -> &dyn Registry {
        self.registry.as_ref()
    }

    /// The webhooks, their cursors and delivery logs.
    pub fn hooks(&self) -> &dyn hooks::HookStore {
        self.registry.as_ref()
    }

    fn repo_dir(&self, id: u64) -> PathBuf {
        self.root.join("repos").join(id.to_string())
    }

    pub fn find_repo(&self, name: &RepoName) -> Result<Option<RepoRecord>, StoreError> {
        self.registry.find_repo(name)
    }

    pub fn list_repos(&self) -> Result<Vec<RepoRecord>, StoreError> {
        self.registry.list_repos()
    }

    /// Creates an empty repository. Its directory is complete before it is registered, so a
    /// crash leaves either no repository or a whole one.
    pub fn create_repo(&self, name: &RepoName) -> Result<RepoRecord, StoreError> {
        let actor = self.actor.clone();
        self.registry.create_repo(
            name,
            now_secs(),
            &mut |id| {
                let dir = self.repo_dir(id);
                // A directory left by a creation that crashed before it was registered.
                if dir.exists() {
                    std::fs::remove_dir_all(&dir).map_err(|e| StoreError::io("remove", &dir, e))?;
                }
                Repo::init_objects(&dir)?;
                self::redb::RedbMeta::create(&dir.join(REPO_META_FILE)).map(|_| ())
            },
            &actor,
        )
    }

    /// Whether anyone may read the repository. Records from before the flag lived in the
    /// registry are answered from the repository's settings, once.
    pub fn is_public(&self, record: &RepoRecord) -> Result<bool, StoreError> {
        if let Some(public) = record.public {
            return Ok(public);
        }
        let public = self
            .open_record(record.clone())?
            .stored_setting(Setting::Public)?
            .as_deref()
            == Some("true");
        let name = RepoName::parse(&record.name)?;
        self.update_record(&name, |r| {
            if r.public.is_none() {
                r.public = Some(public);
            }
        })?;
        Ok(public)
    }

    /// Makes the repository readable by anyone, or private again.
    pub fn set_public(&self, name: &RepoName, public: bool) -> Result<RepoRecord, StoreError> {
        let changed = events::NewEvent::now(
            self.actor.clone(),
            events::EventKind::RepoSettingChanged(events::RepoSettingChanged {
                setting: Setting::Public.key().to_owned(),
                value: public,
            }),
        );
        self.registry
            .update_repo(name, &mut |r| r.public = Some(public), Some(&changed))
    }

    /// A setting's value: `public` from the registry record, the others from the
    /// repository's database (their defaults when never set).
    pub fn setting(&self, name: &RepoName, setting: Setting) -> Result<bool, StoreError> {
        let record = self
            .find_repo(name)?
            .ok_or_else(|| StoreError::RepoNotFound(name.to_string()))?;
        match setting {
            Setting::Public => self.is_public(&record),
            Setting::AllowForce => Ok(self.open_record(record)?.settings()?.allow_force),
            Setting::FsckObjects => Ok(self.open_record(record)?.settings()?.fsck_objects),
        }
    }

    /// Changes a setting where it is kept (see `setting`).
    pub fn set_setting(
        &self,
        name: &RepoName,
        setting: Setting,
        value: bool,
    ) -> Result<(), StoreError> {
        match setting {
            Setting::Public => self.set_public(name, value).map(|_| ()),
            _ => self
                .open_repo(name)?
                .set_setting(setting, value, &self.actor),
        }
    }

    fn update_record(
        &self,
        name: &RepoName,
        mut change: impl FnMut(&mut RepoRecord),
    ) -> Result<RepoRecord, StoreError> {
        self.registry.update_repo(name, &mut change, None)
    }

    /// Removes a repository from the registry, then its files.
    pub fn delete_repo(&self, name: &RepoName) -> Result<(), StoreError> {
        let record = self.registry.remove_repo(name, &self.actor)?;
        let dir = self.repo_dir(record.id);
        std::fs::remove_dir_all(&dir).map_err(|e| StoreError::io("remove", &dir, e))
    }

    /// Opens a repository found by `find_repo`.
    /// Events of the data directory's log, as `filter` asks. Call `Repo::relay_events`
    /// (or `relay_all_events`) first to include what was committed but not yet relayed.
    pub fn events(&self, filter: &events::EventFilter) -> Result<Vec<events::Event>, StoreError> {
        self.registry.events(filter)
    }

    /// The log's last sequence number (0 when empty).
    pub fn last_event(&self) -> Result<u64, StoreError> {
        self.registry.last_event()
    }

    /// The sequence number the log was pruned through (0: nothing removed yet).
    pub fn events_pruned_through(&self) -> Result<u64, StoreError> {
        self.registry.pruned_through()
    }

    /// Removes the log's events that `retention` no longer keeps: beyond the newest
    /// `max_events`, or older than `max_age`. Returns the sequence number the log is now
    /// pruned through; readers asking for anything up to it are told the events are gone.
    pub fn prune_events(&self, retention: Retention) -> Result<u64, StoreError> {
        let end = self.last_event()?;
        let mut through = self.registry.pruned_through()?;
        if let Some(max) = retention.max_events {
            through = through.max(end.saturating_sub(max));
        }
        if let Some(age) = retention.max_age {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let cutoff = now_ms.saturating_sub(age.as_millis() as u64);
            // Events are appended in time order: the old ones are a prefix of the log.
            let mut after = through;
            loop {
                let batch = self.registry.events(&events::EventFilter {
                    after,
                    repo: None,
                    types: Vec::new(),
                    limit: 1000,
                })?;
                let old = batch.iter().take_while(|e| e.at < cutoff).count();
                if let Some(last_old) = old.checked_sub(1).map(|i| &batch[i]) {
                    through = through.max(last_old.seq);
                }
                if old < batch.len() || batch.is_empty() {
                    break;
                }
                after = batch[batch.len() - 1].seq;
            }
        }
        // In steps, so that a large backlog does not hold the registry's one writer.
        let mut done = self.registry.pruned_through()?;
        while done < through {
            let step = self
                .registry
                .prune_events(through.min(done.saturating_add(PRUNE_STEP)))?;
            if step <= done {
                break;
            }
            done = step;
        }
        Ok(done)
    }

    /// Relays every repository's pending outbox events into the log (a reader that wants
    /// everything up to now; events of other processes included).
    pub fn relay_all_events(&self) -> Result<(), StoreError> {
        for record in self.list_repos()? {
            self.relay_record_events(&record)?;
        }
        Ok(())
    }

    /// Relays one repository's pending outbox events, through a handle of its own.
    pub fn relay_record_events(&self, record: &RepoRecord) -> Result<(), StoreError> {
        let meta = self.open_meta(record)?;
        backend::relay(
            self.registry.as_ref(),
            meta.as_ref(),
            record.id,
            &record.name,
        )?;
        Ok(())
    }

    pub fn open_record(&self, record: RepoRecord) -> Result<Repo, StoreError> {
        let meta = self.open_meta(&record)?;
        Repo::open(
            &self.repo_dir(record.id),
            record,
            meta,
            self.registry.clone(),
        )
    }

    /// A handle of its own on a repository's metadata store (the conformance tests open
    /// several at once, as several processes do).
    pub fn open_meta(&self, record: &RepoRecord) -> Result<Box<dyn MetaStore>, StoreError> {
        let path = self.repo_dir(record.id).join(REPO_META_FILE);
        Ok(Box::new(self::redb::RedbMeta::open(&path)?))
    }

    pub fn open_repo(&self, name: &RepoName) -> Result<Repo, StoreError> {
        let record = self
            .find_repo(name)?
            .ok_or_else(|| StoreError::RepoNotFound(name.to_string()))?;
        self.open_record(record)
    }

    /// Opens the repository, creating it if it does not exist yet.
    pub fn open_or_create_repo(&self, name: &RepoName) -> Result<(Repo, bool), StoreError> {
        match self.open_repo(name) {
            Ok(repo) => Ok((repo, false)),
            Err(StoreError::RepoNotFound(_)) => {
                let record = match self.create_repo(name) {
                    Ok(record) => record,
                    // Created by someone else in between.
                    Err(StoreError::RepoExists(_)) => return Ok((self.open_repo(name)?, false)),
                    Err(e) => return Err(e),
                };
                Ok((self.open_record(record)?, true))
            }
            Err(e) => Err(e),
        }
    }
}
