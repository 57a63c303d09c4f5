//! The data directory's registry in `forge.redb`: repositories, identities, revoked token
//! blocks.

use std::path::{Path, PathBuf};

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::store::backend::{Registry, StandingRecords};
use crate::store::events::{
    Actor, Event, EventFilter, EventKind, IdentityChanged, KeyChanged, NewEvent, RepoChanged,
};
use crate::store::identities::{Identity, IdentityError, IdentityKey, IdentityKind};
use crate::store::{RepoName, RepoRecord, StoreError};

use super::open_db;

/// Repository names (lowercased) → their record (JSON).
const REPOS: TableDefinition<&str, &[u8]> = TableDefinition::new("repos");
/// Counters and settings of the whole directory.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const NEXT_REPO_ID: &str = "next_repo_id";
/// Identity names (lowercased) → their record (JSON).
const IDENTITIES: TableDefinition<&str, &[u8]> = TableDefinition::new("identities");
/// Revocation ids of token blocks (64 bytes) → when they were revoked (Unix seconds).
const REVOKED: TableDefinition<&[u8], u64> = TableDefinition::new("revoked_token_blocks");
/// The data directory's event log: sequence number → `Event` (JSON).
pub(super) const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// Repository id (8 bytes, big-endian) and sequence number (8 bytes, big-endian) of each of
/// its events: a repository's events without a scan of the whole log.
const REPO_EVENTS: TableDefinition<&[u8], ()> = TableDefinition::new("repo_events");
/// Repository id → the last outbox sequence number relayed into the log.
const RELAYED: TableDefinition<u64, u64> = TableDefinition::new("relayed_outbox");
/// The `META` key of the sequence number the event log is pruned through.
const EVENTS_PRUNED: &str = "events_pruned_through";

/// An event to log, and the repository (id, name) it is about.
pub(super) type Logged = (NewEvent, Option<(u64, String)>);

fn identity_event(
    actor: &Actor,
    identity: &Identity,
    kind: fn(IdentityChanged) -> EventKind,
) -> Logged {
    let changed = IdentityChanged {
        name: identity.name.clone(),
        kind: identity.kind.as_str().to_owned(),
        owner: identity.owner.clone(),
        disabled: identity.disabled,
    };
    (NewEvent::now(actor.clone(), kind(changed)), None)
}

fn repo_event(actor: &Actor, record: &RepoRecord, kind: EventKind) -> Logged {
    (
        NewEvent::now(actor.clone(), kind),
        Some((record.id, record.name.clone())),
    )
}

fn repo_event_key(repo: u64, seq: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&repo.to_be_bytes());
    key[8..].copy_from_slice(&seq.to_be_bytes());
    key
}

pub struct RedbRegistry {
    path: PathBuf,
    pub(super) db: redb::Database,
}

/// A JSON record of one of the tables keyed by lowercased names.
trait Record: serde::de::DeserializeOwned {
    const TABLE: TableDefinition<'static, &'static str, &'static [u8]>;
    /// What a corrupt one is called in the error.
    const WHAT: &'static str;

    fn decode(name: &str, bytes: &[u8]) -> Result<Self, StoreError> {
        serde_json::from_slice(bytes)
            .map_err(|e| StoreError::Corrupt(format!("{} of {name}: {e}", Self::WHAT)))
    }
}

impl Record for RepoRecord {
    const TABLE: TableDefinition<'static, &'static str, &'static [u8]> = REPOS;
    const WHAT: &'static str = "registry entry";
}

impl Record for Identity {
    const TABLE: TableDefinition<'static, &'static str, &'static [u8]> = IDENTITIES;
    const WHAT: &'static str = "identity record";
}

impl RedbRegistry {
    pub fn open(path: &Path) -> Result<RedbRegistry, StoreError> {
        Ok(RedbRegistry {
            path: path.to_owned(),
            db: open_db(path)?,
        })
    }

    pub(super) fn error(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::db(&self.path, e)
    }

    /// A table for reading; `None` while nothing was ever written to it.
    fn read_table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        definition: TableDefinition<K, V>,
    ) -> Result<Option<redb::ReadOnlyTable<K, V>>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        match txn.open_table(definition) {
            Ok(table) => Ok(Some(table)),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(self.error(e)),
        }
    }

    /// The record under `key` (a lowercased name).
    fn get<R: Record>(&self, name: &str, key: &str) -> Result<Option<R>, StoreError> {
        let Some(table) = self.read_table(R::TABLE)? else {
            return Ok(None);
        };
        let value = table.get(key).map_err(|e| self.error(e))?;
        value.map(|v| R::decode(name, v.value())).transpose()
    }

    /// Every record, by key.
    fn all<R: Record>(&self) -> Result<Vec<R>, StoreError> {
        let Some(table) = self.read_table(R::TABLE)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for item in table.iter().map_err(|e| self.error(e))? {
            let (key, value) = item.map_err(|e| self.error(e))?;
            out.push(R::decode(key.value(), value.value())?);
        }
        Ok(out)
    }

    /// Reads, changes and writes back the record under `key` in one transaction; `missing`
    /// is the error when there is none. An error of `change` writes nothing.
    fn change<R: Record + serde::Serialize, E: From<StoreError>>(
        &self,
        name: &str,
        key: &str,
        missing: impl FnOnce() -> E,
        change: impl FnOnce(&mut R) -> Result<(), E>,
        logged: impl FnOnce(&R) -> Option<Logged>,
    ) -> Result<R, E> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        let record = {
            let mut table = txn.open_table(R::TABLE).map_err(|e| self.error(e))?;
            let mut record = match table.get(key).map_err(|e| self.error(e))? {
                Some(value) => R::decode(name, value.value())?,
                None => return Err(missing()),
            };
            change(&mut record)?;
            let json = serde_json::to_vec(&record).expect("serialisable");
            table
                .insert(key, json.as_slice())
                .map_err(|e| self.error(e))?;
            record
        };
        if let Some(logged) = logged(&record) {
            self.log_in(&txn, logged)?;
        }
        txn.commit().map_err(|e| self.error(e))?;
        Ok(record)
    }

    fn change_identity(
        &self,
        name: &str,
        change: impl FnOnce(&mut Identity) -> Result<(), IdentityError>,
        logged: impl FnOnce(&Identity) -> Option<Logged>,
    ) -> Result<Identity, IdentityError> {
        let missing = || IdentityError::NotFound(name.to_owned());
        self.change(name, &name.to_ascii_lowercase(), missing, change, logged)
    }

    /// The log's last sequence number inside `txn`: its last event's, or where it was pruned
    /// through when pruning emptied it (numbers are never reused).
    fn log_end(
        &self,
        txn: &redb::WriteTransaction,
        log: &redb::Table<u64, &[u8]>,
    ) -> Result<u64, StoreError> {
        let last = log
            .last()
            .map_err(|e| self.error(e))?
            .map_or(0, |(k, _)| k.value());
        let meta = txn.open_table(META).map_err(|e| self.error(e))?;
        let pruned = meta
            .get(EVENTS_PRUNED)
            .map_err(|e| self.error(e))?
            .map_or(0, |v| v.value());
        Ok(last.max(pruned))
    }

    /// Appends `logged` to the event log inside `txn` (indexed by its repository, if any).
    pub(super) fn log_in(
        &self,
        txn: &redb::WriteTransaction,
        logged: Logged,
    ) -> Result<(), StoreError> {
        let mut log = txn.open_table(EVENTS).map_err(|e| self.error(e))?;
        let seq = self.log_end(txn, &log)? + 1;
        let (event, repo) = logged;
        let event = Event {
            seq,
            repo: repo.as_ref().map(|(_, name)| name.clone()),
            at: event.at,
            actor: event.actor,
            kind: event.kind,
        };
        let json = serde_json::to_vec(&event).expect("serialisable");
        log.insert(seq, json.as_slice())
            .map_err(|e| self.error(e))?;
        if let Some((id, _)) = repo {
            let mut index = txn.open_table(REPO_EVENTS).map_err(|e| self.error(e))?;
            index
                .insert(repo_event_key(id, seq).as_slice(), ())
                .map_err(|e| self.error(e))?;
        }
        Ok(())
    }
}

impl Registry for RedbRegistry {
    fn relayed(&self, repo: u64) -> Result<u64, StoreError> {
        let Some(table) = self.read_table(RELAYED)? else {
            return Ok(0);
        };
        let mark = table.get(repo).map_err(|e| self.error(e))?;
        Ok(mark.map_or(0, |v| v.value()))
    }

    fn relay_events(
        &self,
        repo: u64,
        name: &str,
        events: &[(u64, NewEvent)],
    ) -> Result<usize, StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        let appended = {
            let mut relayed = txn.open_table(RELAYED).map_err(|e| self.error(e))?;
            let mark = relayed
                .get(repo)
                .map_err(|e| self.error(e))?
                .map_or(0, |v| v.value());
            let mut log = txn.open_table(EVENTS).map_err(|e| self.error(e))?;
            let mut index = txn.open_table(REPO_EVENTS).map_err(|e| self.error(e))?;
            let mut seq = self.log_end(&txn, &log)?;
            let mut appended = 0;
            let mut new_mark = mark;
            for (outbox_seq, event) in events {
                // Another relay appended it already, or it is out of order: either way the
                // mark, not this call, says what is next.
                if *outbox_seq != new_mark + 1 {
                    continue;
                }
                seq += 1;
                let event = Event {
                    seq,
                    repo: Some(name.to_owned()),
                    at: event.at,
                    actor: event.actor.clone(),
                    kind: event.kind.clone(),
                };
                let json = serde_json::to_vec(&event).expect("serialisable");
                log.insert(seq, json.as_slice())
                    .map_err(|e| self.error(e))?;
                index
                    .insert(repo_event_key(repo, seq).as_slice(), ())
                    .map_err(|e| self.error(e))?;
                new_mark = *outbox_seq;
                appended += 1;
            }
            if new_mark != mark {
                relayed.insert(repo, new_mark).map_err(|e| self.error(e))?;
            }
            appended
        };
        txn.commit().map_err(|e| self.error(e))?;
        Ok(appended)
    }

    fn events(&self, filter: &EventFilter) -> Result<Vec<Event>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let log = match txn.open_table(EVENTS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.error(e)),
        };
        let decode = |seq: u64, json: &[u8]| -> Result<Event, StoreError> {
            serde_json::from_slice(json)
                .map_err(|e| StoreError::Corrupt(format!("event {seq}: {e}")))
        };
        let wanted = |event: &Event| {
            filter.types.is_empty() || filter.types.iter().any(|t| t == event.kind.type_name())
        };
        let mut out = Vec::new();
        let start = filter.after.saturating_add(1);
        match filter.repo {
            None => {
                for item in log.range(start..).map_err(|e| self.error(e))? {
                    let (seq, json) = item.map_err(|e| self.error(e))?;
                    let event = decode(seq.value(), json.value())?;
                    if wanted(&event) {
                        out.push(event);
                        if out.len() >= filter.limit {
                            break;
                        }
                    }
                }
            }
            Some(repo) => {
                let index = txn.open_table(REPO_EVENTS).map_err(|e| self.error(e))?;
                let from = repo_event_key(repo, start);
                let to = repo_event_key(repo.saturating_add(1), 0);
                for item in index
                    .range(from.as_slice()..to.as_slice())
                    .map_err(|e| self.error(e))?
                {
                    let (key, _) = item.map_err(|e| self.error(e))?;
                    let seq =
                        u64::from_be_bytes(key.value()[8..16].try_into().expect("16-byte key"));
                    let Some(json) = log.get(seq).map_err(|e| self.error(e))? else {
                        return Err(StoreError::Corrupt(format!(
                            "event {seq} is indexed but missing"
                        )));
                    };
                    let event = decode(seq, json.value())?;
                    if wanted(&event) {
                        out.push(event);
                        if out.len() >= filter.limit {
                            break;
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    fn append_event(&self, event: &NewEvent) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        self.log_in(&txn, (event.clone(), None))?;
        txn.commit().map_err(|e| self.error(e))
    }

    fn last_event(&self) -> Result<u64, StoreError> {
        let last = match self.read_table(EVENTS)? {
            Some(log) => log
                .last()
                .map_err(|e| self.error(e))?
                .map_or(0, |(k, _)| k.value()),
            None => 0,
        };
        Ok(last.max(self.pruned_through()?))
    }

    fn pruned_through(&self) -> Result<u64, StoreError> {
        let Some(meta) = self.read_table(META)? else {
            return Ok(0);
        };
        let pruned = meta.get(EVENTS_PRUNED).map_err(|e| self.error(e))?;
        Ok(pruned.map_or(0, |v| v.value()))
    }

    fn prune_events(&self, through: u64) -> Result<u64, StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        let pruned = {
            let mut log = txn.open_table(EVENTS).map_err(|e| self.error(e))?;
            let end = self.log_end(&txn, &log)?;
            let mut meta = txn.open_table(META).map_err(|e| self.error(e))?;
            let before = meta
                .get(EVENTS_PRUNED)
                .map_err(|e| self.error(e))?
                .map_or(0, |v| v.value());
            let through = through.min(end);
            if through <= before {
                return Ok(before);
            }
            log.retain_in(before + 1..=through, |_, _| false)
                .map_err(|e| self.error(e))?;
            // The index is by repository, then sequence number: one range per repository,
            // found by skipping from one repository's keys to the next one's.
            let mut index = txn.open_table(REPO_EVENTS).map_err(|e| self.error(e))?;
            let mut from = repo_event_key(0, 0);
            loop {
                let next = index
                    .range(from.as_slice()..)
                    .map_err(|e| self.error(e))?
                    .next()
                    .transpose()
                    .map_err(|e| self.error(e))?
                    .map(|(key, _)| {
                        u64::from_be_bytes(key.value()[..8].try_into().expect("16-byte key"))
                    });
                let Some(repo) = next else { break };
                let start = repo_event_key(repo, 0);
                let stop = repo_event_key(repo, through.saturating_add(1));
                index
                    .retain_in(start.as_slice()..stop.as_slice(), |_, _| false)
                    .map_err(|e| self.error(e))?;
                let Some(following) = repo.checked_add(1) else {
                    break;
                };
                from = repo_event_key(following, 0);
            }
            meta.insert(EVENTS_PRUNED, through)
                .map_err(|e| self.error(e))?;
            through
        };
        txn.commit().map_err(|e| self.error(e))?;
        Ok(pruned)
    }

    fn find_repo(&self, name: &RepoName) -> Result<Option<RepoRecord>, StoreError> {
        self.get(&name.to_string(), &name.key())
    }

    fn list_repos(&self) -> Result<Vec<RepoRecord>, StoreError> {
        self.all()
    }

    fn create_repo(
        &self,
        name: &RepoName,
        created_at: u64,
        lay_out: &mut dyn FnMut(u64) -> Result<(), StoreError>,
        actor: &Actor,
    ) -> Result<RepoRecord, StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        let record = {
            let mut repos = txn.open_table(REPOS).map_err(|e| self.error(e))?;
            if repos
                .get(name.key().as_str())
                .map_err(|e| self.error(e))?
                .is_some()
            {
                return Err(StoreError::RepoExists(name.to_string()));
            }
            let mut meta = txn.open_table(META).map_err(|e| self.error(e))?;
            let id = meta
                .get(NEXT_REPO_ID)
                .map_err(|e| self.error(e))?
                .map_or(1, |v| v.value());
            meta.insert(NEXT_REPO_ID, id + 1)
                .map_err(|e| self.error(e))?;
            lay_out(id)?;
            let record = RepoRecord {
                id,
                name: name.to_string(),
                created_at,
                public: Some(false),
            };
            let json = serde_json::to_vec(&record).expect("serialisable");
            repos
                .insert(name.key().as_str(), json.as_slice())
                .map_err(|e| self.error(e))?;
            record
        };
        let created = EventKind::RepoCreated(RepoChanged {
            name: record.name.clone(),
            public: false,
        });
        self.log_in(&txn, repo_event(actor, &record, created))?;
        txn.commit().map_err(|e| self.error(e))?;
        Ok(record)
    }

    fn update_repo(
        &self,
        name: &RepoName,
        change: &mut dyn FnMut(&mut RepoRecord),
        event: Option<&NewEvent>,
    ) -> Result<RepoRecord, StoreError> {
        let missing = || StoreError::RepoNotFound(name.to_string());
        self.change(
            &name.to_string(),
            &name.key(),
            missing,
            |record| {
                change(record);
                Ok(())
            },
            |record| event.map(|event| (event.clone(), Some((record.id, record.name.clone())))),
        )
    }

    fn remove_repo(&self, name: &RepoName, actor: &Actor) -> Result<RepoRecord, StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        let record = {
            let mut repos = txn.open_table(REPOS).map_err(|e| self.error(e))?;
            let removed = repos
                .remove(name.key().as_str())
                .map_err(|e| self.error(e))?;
            match removed {
                Some(value) => RepoRecord::decode(&name.to_string(), value.value())?,
                None => return Err(StoreError::RepoNotFound(name.to_string())),
            }
        };
        // Its hooks go with it, in the same transaction.
        self.remove_hooks_of(&txn, record.id)?;
        let deleted = EventKind::RepoDeleted(RepoChanged {
            name: record.name.clone(),
            public: record.public.unwrap_or(false),
        });
        self.log_in(&txn, repo_event(actor, &record, deleted))?;
        txn.commit().map_err(|e| self.error(e))?;
        Ok(record)
    }

    fn add_identity(&self, identity: &Identity, actor: &Actor) -> Result<Identity, IdentityError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        {
            let mut table = txn.open_table(IDENTITIES).map_err(|e| self.error(e))?;
            let key = identity.name.to_ascii_lowercase();
            if table
                .get(key.as_str())
                .map_err(|e| self.error(e))?
                .is_some()
            {
                return Err(IdentityError::Exists(identity.name.clone()));
            }
            for item in table.iter().map_err(|e| self.error(e))? {
                let (stored, value) = item.map_err(|e| self.error(e))?;
                let other = Identity::decode(stored.value(), value.value())?;
                if let Some(taken) = identity
                    .keys
                    .iter()
                    .find(|k| other.keys.iter().any(|o| o.key == k.key))
                {
                    return Err(IdentityError::Invalid(format!(
                        "key {} already belongs to identity {}",
                        taken.key, other.name
                    )));
                }
            }
            if let Some(owner) = &identity.owner {
                let owner_record = table
                    .get(owner.to_ascii_lowercase().as_str())
                    .map_err(|e| self.error(e))?
                    .ok_or_else(|| IdentityError::NotFound(owner.clone()))?;
                let owner_record = Identity::decode(owner, owner_record.value())?;
                if owner_record.kind != IdentityKind::Human {
                    return Err(IdentityError::Invalid(format!(
                        "the owner of an agent must be a human; {owner} is an agent"
                    )));
                }
            }
            let json = serde_json::to_vec(identity).expect("serialisable");
            table
                .insert(key.as_str(), json.as_slice())
                .map_err(|e| self.error(e))?;
        }
        self.log_in(
            &txn,
            identity_event(actor, identity, EventKind::IdentityAdded),
        )?;
        txn.commit().map_err(|e| self.error(e))?;
        Ok(identity.clone())
    }

    fn find_identity(&self, name: &str) -> Result<Option<Identity>, StoreError> {
        self.get(name, &name.to_ascii_lowercase())
    }

    fn list_identities(&self) -> Result<Vec<Identity>, StoreError> {
        self.all()
    }

    fn set_identity_disabled(
        &self,
        name: &str,
        disabled: bool,
        actor: &Actor,
    ) -> Result<Identity, IdentityError> {
        self.change_identity(
            name,
            |identity| {
                identity.disabled = disabled;
                Ok(())
            },
            |identity| {
                Some(identity_event(
                    actor,
                    identity,
                    EventKind::IdentityStateChanged,
                ))
            },
        )
    }

    fn add_identity_key(
        &self,
        name: &str,
        key: &IdentityKey,
        actor: &Actor,
    ) -> Result<Identity, IdentityError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        let identity = {
            let mut table = txn.open_table(IDENTITIES).map_err(|e| self.error(e))?;
            let lowered = name.to_ascii_lowercase();
            let mut identity = None;
            for item in table.iter().map_err(|e| self.error(e))? {
                let (stored, value) = item.map_err(|e| self.error(e))?;
                let other = Identity::decode(stored.value(), value.value())?;
                if other.keys.iter().any(|k| k.key == key.key) {
                    return Err(IdentityError::Invalid(format!(
                        "key {} already belongs to identity {}",
                        key.key, other.name
                    )));
                }
                if stored.value() == lowered {
                    identity = Some(other);
                }
            }
            let mut identity = identity.ok_or_else(|| IdentityError::NotFound(name.to_owned()))?;
            identity.keys.push(key.clone());
            let json = serde_json::to_vec(&identity).expect("serialisable");
            table
                .insert(lowered.as_str(), json.as_slice())
                .map_err(|e| self.error(e))?;
            identity
        };
        let added = EventKind::KeyAdded(KeyChanged {
            identity: identity.name.clone(),
            key: key.key.clone(),
        });
        self.log_in(&txn, (NewEvent::now(actor.clone(), added), None))?;
        txn.commit().map_err(|e| self.error(e))?;
        Ok(identity)
    }

    fn revoke_identity_key(
        &self,
        name: &str,
        key: &str,
        at: u64,
        actor: &Actor,
    ) -> Result<Identity, IdentityError> {
        self.change_identity(
            name,
            |identity| {
                let owner = identity.name.clone();
                match identity.keys.iter_mut().find(|k| k.key == key) {
                    Some(found) if found.is_active() => {
                        found.revoked_at = Some(at);
                        Ok(())
                    }
                    Some(_) => Err(IdentityError::Invalid(format!(
                        "key {key} is already revoked"
                    ))),
                    None => Err(IdentityError::KeyNotFound {
                        identity: owner,
                        key: key.to_owned(),
                    }),
                }
            },
            |identity| {
                let revoked = EventKind::KeyRevoked(KeyChanged {
                    identity: identity.name.clone(),
                    key: key.to_owned(),
                });
                Some((NewEvent::now(actor.clone(), revoked), None))
            },
        )
    }

    fn remove_identity(&self, name: &str, actor: &Actor) -> Result<Identity, IdentityError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        let identity = {
            let mut table = txn.open_table(IDENTITIES).map_err(|e| self.error(e))?;
            let key = name.to_ascii_lowercase();
            let identity = match table.get(key.as_str()).map_err(|e| self.error(e))? {
                Some(value) => Identity::decode(name, value.value())?,
                None => return Err(IdentityError::NotFound(name.to_owned())),
            };
            let mut agents = Vec::new();
            for item in table.iter().map_err(|e| self.error(e))? {
                let (key, value) = item.map_err(|e| self.error(e))?;
                let other = Identity::decode(key.value(), value.value())?;
                if other
                    .owner
                    .as_deref()
                    .is_some_and(|owner| owner.eq_ignore_ascii_case(name))
                {
                    agents.push(other.name);
                }
            }
            if !agents.is_empty() {
                return Err(IdentityError::Invalid(format!(
                    "{name} owns the agents {}; remove them first",
                    agents.join(", ")
                )));
            }
            table.remove(key.as_str()).map_err(|e| self.error(e))?;
            identity
        };
        self.log_in(
            &txn,
            identity_event(actor, &identity, EventKind::IdentityRemoved),
        )?;
        txn.commit().map_err(|e| self.error(e))?;
        Ok(identity)
    }

    fn revoke_token_blocks(
        &self,
        ids: &[Vec<u8>],
        at: u64,
        event: &NewEvent,
    ) -> Result<usize, StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        let mut added = 0;
        {
            let mut table = txn.open_table(REVOKED).map_err(|e| self.error(e))?;
            for id in ids {
                if table
                    .insert(id.as_slice(), at)
                    .map_err(|e| self.error(e))?
                    .is_none()
                {
                    added += 1;
                }
            }
        }
        if added > 0 {
            self.log_in(&txn, (event.clone(), None))?;
        }
        txn.commit().map_err(|e| self.error(e))?;
        Ok(added)
    }

    fn standing_records(&self, name: &str, ids: &[Vec<u8>]) -> Result<StandingRecords, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let mut records = StandingRecords::default();
        match txn.open_table(REVOKED) {
            Ok(table) => {
                for id in ids {
                    if table
                        .get(id.as_slice())
                        .map_err(|e| self.error(e))?
                        .is_some()
                    {
                        records.revoked = true;
                        return Ok(records);
                    }
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(self.error(e)),
        }
        let identities = match txn.open_table(IDENTITIES) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(records),
            Err(e) => return Err(self.error(e)),
        };
        let read = |name: &str| -> Result<Option<Identity>, StoreError> {
            let value = identities
                .get(name.to_ascii_lowercase().as_str())
                .map_err(|e| self.error(e))?;
            value.map(|v| Identity::decode(name, v.value())).transpose()
        };
        records.identity = read(name)?;
        if let Some(owner) = records.identity.as_ref().and_then(|i| i.owner.clone()) {
            records.owner = read(&owner)?;
        }
        Ok(records)
    }

    fn any_revoked(&self, ids: &[Vec<u8>]) -> Result<bool, StoreError> {
        let Some(table) = self.read_table(REVOKED)? else {
            return Ok(false);
        };
        for id in ids {
            if table
                .get(id.as_slice())
                .map_err(|e| self.error(e))?
                .is_some()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
