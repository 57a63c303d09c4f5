//! A repository's metadata in its own redb database (`repo.redb`).

use std::path::{Path, PathBuf};

use bstr::{BString, ByteSlice};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::store::StoreError;
use crate::store::backend::{
    AttestationRecord, GenerationStep, MetaStore, MetaWrite, SegmentEntry,
};
use crate::store::events::{
    Actor, AttestationAdded, EventKind, NewEvent, PolicyChanged, RepoSettingChanged,
};
use crate::store::policy::RefRule;
use crate::store::refs::{Expected, RefTarget};
use crate::store::settings::{RepoSettings, Setting};

use super::open_db;

/// Ref name → encoded `RefTarget`.
const REFS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("refs");
/// Registered segment name → `SegmentRecord` (JSON).
const SEGMENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("segments");
/// Counters of the repository: `SEGMENTS_GENERATION` goes up in every transaction that
/// changes the segment table, so a handle sees in one read whether others registered any.
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
const SEGMENTS_GENERATION: &str = "segments";
/// Goes up in every transaction that writes a ref (`MetaStore::refs_version`).
const REFS_VERSION: &str = "refs";
/// Attestation id (hex) → `AttestationRecord` (JSON).
const ATTESTATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("attestations");
/// Commit SHA-1 (20 bytes) followed by the attestation's serial number (8 bytes,
/// big-endian, the counter `NEXT_ATTESTATION`) and its id (hex): a prefix scan lists a
/// commit's attestations in the order they were stored.
const ATTESTED: TableDefinition<&[u8], ()> = TableDefinition::new("attested_commits");
/// Ref rule id → `RefRule` (JSON); the next id is the counter `RULES`.
const RULES: TableDefinition<u64, &[u8]> = TableDefinition::new("ref_rules");
const NEXT_RULE: &str = "next_rule";
const NEXT_ATTESTATION: &str = "next_attestation";
/// The outbox: this repository's events (`NewEvent`, JSON) by sequence number, written in
/// the transaction of their change and relayed into the registry's log.
const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("event_outbox");
/// Repository settings (`forge repo config`): key → value.
const CONFIG: TableDefinition<&str, &str> = TableDefinition::new("config");

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SegmentRecord {
    objects: u64,
    bytes: u64,
    added_at: u64,
}

pub struct RedbMeta {
    path: PathBuf,
    pub(super) db: redb::Database,
}

impl RedbMeta {
    /// Creates the database of a new repository, with `HEAD` naming `refs/heads/main` and
    /// the segment generation at 0.
    pub fn create(path: &Path) -> Result<RedbMeta, StoreError> {
        let meta = RedbMeta::open(path)?;
        let txn = meta.db.begin_write().map_err(|e| meta.error(e))?;
        {
            let mut refs = txn.open_table(REFS).map_err(|e| meta.error(e))?;
            txn.open_table(SEGMENTS).map_err(|e| meta.error(e))?;
            let mut counters = txn.open_table(COUNTERS).map_err(|e| meta.error(e))?;
            counters
                .insert(SEGMENTS_GENERATION, 0)
                .map_err(|e| meta.error(e))?;
            let head = RefTarget::Symbolic("refs/heads/main".into()).encode();
            refs.insert(&b"HEAD"[..], head.as_slice())
                .map_err(|e| meta.error(e))?;
        }
        txn.commit().map_err(|e| meta.error(e))?;
        Ok(meta)
    }

    pub fn open(path: &Path) -> Result<RedbMeta, StoreError> {
        Ok(RedbMeta {
            path: path.to_owned(),
            db: open_db(path)?,
        })
    }

    pub(super) fn error(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::db(&self.path, e)
    }

    /// A table for reading; `None` while nothing was ever written to it.
    pub(super) fn read_table<K: redb::Key + 'static, V: redb::Value + 'static>(
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

    /// Appends one event to the outbox inside `txn`.
    pub(super) fn append_event(
        &self,
        txn: &redb::WriteTransaction,
        event: &NewEvent,
    ) -> Result<(), StoreError> {
        let mut outbox = txn.open_table(OUTBOX).map_err(|e| self.error(e))?;
        let seq = outbox
            .last()
            .map_err(|e| self.error(e))?
            .map_or(0, |(k, _)| k.value())
            + 1;
        let json = serde_json::to_vec(event).expect("serialisable");
        outbox
            .insert(seq, json.as_slice())
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    fn generation_in(&self, txn: &redb::ReadTransaction) -> Result<Option<u64>, StoreError> {
        let counters = match txn.open_table(COUNTERS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.error(e)),
        };
        let value = counters
            .get(SEGMENTS_GENERATION)
            .map_err(|e| self.error(e))?;
        Ok(value.map(|v| v.value()))
    }

    fn config_rows(&self) -> Result<Option<Vec<(String, String)>>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = match txn.open_table(CONFIG) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.error(e)),
        };
        let mut rows = Vec::new();
        for row in table.iter().map_err(|e| self.error(e))? {
            let (key, value) = row.map_err(|e| self.error(e))?;
            rows.push((key.value().to_owned(), value.value().to_owned()));
        }
        Ok(Some(rows))
    }

    /// Refuses `name` when, with the refs as this transaction leaves them, a ref exists that
    /// is a directory of it or below it (`refs/heads/a` beside `refs/heads/a/b`): git keeps
    /// refs as files, and a clone of a repository with both fails.
    fn check_directory_conflict(
        &self,
        refs: &redb::Table<'_, &[u8], &[u8]>,
        name: &[u8],
    ) -> Result<(), StoreError> {
        let conflict = |existing: &[u8]| StoreError::RefNameConflict {
            name: name.as_bstr().to_string(),
            existing: existing.as_bstr().to_string(),
        };
        for (i, _) in name.iter().enumerate().filter(|(_, b)| **b == b'/') {
            let dir = &name[..i];
            if refs.get(dir).map_err(|e| self.error(e))?.is_some() {
                return Err(conflict(dir));
            }
        }
        let mut below = name.to_vec();
        below.push(b'/');
        let mut end = name.to_vec();
        end.push(b'/' + 1);
        let mut range = refs
            .range(below.as_slice()..end.as_slice())
            .map_err(|e| self.error(e))?;
        if let Some(entry) = range.next() {
            let (key, _) = entry.map_err(|e| self.error(e))?;
            return Err(conflict(key.value()));
        }
        Ok(())
    }
}

fn commit_bytes(commit: &str) -> Result<Vec<u8>, StoreError> {
    crate::hex::decode(commit, 20)
        .ok_or_else(|| StoreError::Corrupt(format!("attestation subject {commit:?}")))
}

fn attested_key(commit: &str, serial: u64, id: &str) -> Result<Vec<u8>, StoreError> {
    let mut key = commit_bytes(commit)?;
    key.extend_from_slice(&serial.to_be_bytes());
    key.extend_from_slice(id.as_bytes());
    Ok(key)
}

fn decode_ref(name: &[u8], bytes: &[u8]) -> Result<RefTarget, StoreError> {
    RefTarget::decode(bytes).ok_or_else(|| StoreError::Corrupt(format!("ref {}", name.as_bstr())))
}

impl MetaStore for RedbMeta {
    fn outbox(&self, after: u64, limit: usize) -> Result<Vec<(u64, NewEvent)>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = match txn.open_table(OUTBOX) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.error(e)),
        };
        let mut out = Vec::new();
        for item in table.range(after + 1..).map_err(|e| self.error(e))? {
            let (seq, json) = item.map_err(|e| self.error(e))?;
            let event = serde_json::from_slice(json.value())
                .map_err(|e| StoreError::Corrupt(format!("outbox event {}: {e}", seq.value())))?;
            out.push((seq.value(), event));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    fn outbox_end(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = match txn.open_table(OUTBOX) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
            Err(e) => return Err(self.error(e)),
        };
        let last = table.last().map_err(|e| self.error(e))?;
        Ok(last.map_or(0, |(k, _)| k.value()))
    }

    fn refs(&self) -> Result<Vec<(BString, RefTarget)>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = txn.open_table(REFS).map_err(|e| self.error(e))?;
        let mut out = Vec::new();
        for item in table.iter().map_err(|e| self.error(e))? {
            let (name, value) = item.map_err(|e| self.error(e))?;
            let target = decode_ref(name.value(), value.value())?;
            out.push((BString::from(name.value()), target));
        }
        Ok(out)
    }

    fn refs_version(&self) -> Result<u64, StoreError> {
        let Some(counters) = self.read_table(COUNTERS)? else {
            return Ok(0);
        };
        let value = counters.get(REFS_VERSION).map_err(|e| self.error(e))?;
        Ok(value.map_or(0, |v| v.value()))
    }

    fn read_ref(&self, name: &[u8]) -> Result<Option<RefTarget>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = txn.open_table(REFS).map_err(|e| self.error(e))?;
        let value = table.get(name).map_err(|e| self.error(e))?;
        value.map(|v| decode_ref(name, v.value())).transpose()
    }

    fn settings(&self) -> Result<RepoSettings, StoreError> {
        let rows = self.config_rows()?.unwrap_or_default();
        Ok(RepoSettings::from_rows(
            rows.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        ))
    }

    fn stored_setting(&self, setting: Setting) -> Result<Option<String>, StoreError> {
        let rows = self.config_rows()?.unwrap_or_default();
        Ok(rows
            .into_iter()
            .find(|(key, _)| key == setting.key())
            .map(|(_, value)| value))
    }

    fn set_setting(&self, setting: Setting, value: bool, actor: &Actor) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        {
            let mut table = txn.open_table(CONFIG).map_err(|e| self.error(e))?;
            let text = if value { "true" } else { "false" };
            table
                .insert(setting.key(), text)
                .map_err(|e| self.error(e))?;
        }
        let changed = EventKind::RepoSettingChanged(RepoSettingChanged {
            setting: setting.key().to_owned(),
            value,
        });
        self.append_event(&txn, &NewEvent::now(actor.clone(), changed))?;
        txn.commit().map_err(|e| self.error(e))
    }

    fn segments(&self) -> Result<(Vec<SegmentEntry>, Option<u64>), StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let generation = self.generation_in(&txn)?;
        let table = txn.open_table(SEGMENTS).map_err(|e| self.error(e))?;
        let mut out = Vec::new();
        for item in table.iter().map_err(|e| self.error(e))? {
            let (name, record) = item.map_err(|e| self.error(e))?;
            let record: SegmentRecord = serde_json::from_slice(record.value()).map_err(|e| {
                StoreError::Corrupt(format!("segment record {}: {e}", name.value()))
            })?;
            out.push(SegmentEntry {
                name: name.value().to_owned(),
                objects: record.objects,
                bytes: record.bytes,
                added_at: record.added_at,
            });
        }
        out.sort_by(|a, b| {
            b.added_at
                .cmp(&a.added_at)
                .then_with(|| a.name.cmp(&b.name))
        });
        Ok((out, generation))
    }

    fn attestations(&self, commit: &str) -> Result<Vec<AttestationRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let index = match txn.open_table(ATTESTED) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.error(e)),
        };
        let records = txn.open_table(ATTESTATIONS).map_err(|e| self.error(e))?;
        let start = commit_bytes(commit)?;
        let mut end = start.clone();
        end.extend_from_slice(&[0xff; 9]);
        let mut out = Vec::new();
        for item in index
            .range(start.as_slice()..end.as_slice())
            .map_err(|e| self.error(e))?
        {
            let (key, _) = item.map_err(|e| self.error(e))?;
            let id = std::str::from_utf8(&key.value()[28..])
                .map_err(|_| StoreError::Corrupt("attestation index".into()))?
                .to_owned();
            let Some(value) = records.get(id.as_str()).map_err(|e| self.error(e))? else {
                return Err(StoreError::Corrupt(format!(
                    "attestation {id} is indexed but missing"
                )));
            };
            out.push(
                serde_json::from_slice(value.value())
                    .map_err(|e| StoreError::Corrupt(format!("attestation {id}: {e}")))?,
            );
        }
        Ok(out)
    }

    fn rules(&self) -> Result<Vec<RefRule>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = match txn.open_table(RULES) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.error(e)),
        };
        let mut out = Vec::new();
        for item in table.iter().map_err(|e| self.error(e))? {
            let (id, value) = item.map_err(|e| self.error(e))?;
            out.push(
                serde_json::from_slice(value.value())
                    .map_err(|e| StoreError::Corrupt(format!("ref rule {}: {e}", id.value())))?,
            );
        }
        Ok(out)
    }

    fn add_rule(&self, rule: &RefRule, actor: &Actor) -> Result<RefRule, StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        let added = {
            let mut counters = txn.open_table(COUNTERS).map_err(|e| self.error(e))?;
            let id = counters
                .get(NEXT_RULE)
                .map_err(|e| self.error(e))?
                .map_or(1, |v| v.value());
            counters
                .insert(NEXT_RULE, id + 1)
                .map_err(|e| self.error(e))?;
            let mut rules = txn.open_table(RULES).map_err(|e| self.error(e))?;
            let added = RefRule { id, ..rule.clone() };
            let json = serde_json::to_vec(&added).expect("serialisable");
            rules
                .insert(id, json.as_slice())
                .map_err(|e| self.error(e))?;
            self.append_event(
                &txn,
                &NewEvent::now(
                    actor.clone(),
                    EventKind::PolicyAdded(PolicyChanged {
                        rule_id: id,
                        pattern: added.pattern.clone(),
                    }),
                ),
            )?;
            added
        };
        txn.commit().map_err(|e| self.error(e))?;
        Ok(added)
    }

    fn remove_rule(&self, id: u64, actor: &Actor) -> Result<Option<RefRule>, StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        let removed = {
            let mut rules = txn.open_table(RULES).map_err(|e| self.error(e))?;
            let removed = rules.remove(id).map_err(|e| self.error(e))?;
            match removed {
                Some(value) => Some(
                    serde_json::from_slice::<RefRule>(value.value())
                        .map_err(|e| StoreError::Corrupt(format!("ref rule {id}: {e}")))?,
                ),
                None => None,
            }
        };
        if let Some(rule) = &removed {
            self.append_event(
                &txn,
                &NewEvent::now(
                    actor.clone(),
                    EventKind::PolicyRemoved(PolicyChanged {
                        rule_id: id,
                        pattern: rule.pattern.clone(),
                    }),
                ),
            )?;
        }
        txn.commit().map_err(|e| self.error(e))?;
        Ok(removed)
    }

    fn generation(&self) -> Result<Option<u64>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        self.generation_in(&txn)
    }

    fn commit(&self, write: &MetaWrite<'_>) -> Result<Option<GenerationStep>, StoreError> {
        let mut step = None;
        // Events of attestations that turn out to be new, after the write's own.
        let mut added: Vec<NewEvent> = Vec::new();
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        {
            let mut refs = txn.open_table(REFS).map_err(|e| self.error(e))?;
            for update in &write.refs {
                let current = refs
                    .get(update.name.as_slice())
                    .map_err(|e| self.error(e))?
                    .map(|v| decode_ref(&update.name, v.value()))
                    .transpose()?;
                let holds = match &update.expected {
                    Expected::Any => true,
                    Expected::Absent => current.is_none(),
                    Expected::Value(v) => current.as_ref() == Some(v),
                };
                if !holds {
                    return Err(StoreError::RefConflict {
                        name: update.name.to_string(),
                        expected: match &update.expected {
                            Expected::Value(v) => v.to_string(),
                            _ => "no ref".into(),
                        },
                        found: current.map_or("no ref".into(), |c| c.to_string()),
                    });
                }
                match &update.new {
                    Some(target) => {
                        refs.insert(update.name.as_slice(), target.encode().as_slice())
                            .map_err(|e| self.error(e))?;
                    }
                    None => {
                        refs.remove(update.name.as_slice())
                            .map_err(|e| self.error(e))?;
                    }
                }
            }
            for update in write.refs.iter().filter(|u| u.new.is_some()) {
                self.check_directory_conflict(&refs, &update.name)?;
            }
            if !write.refs.is_empty() {
                let mut counters = txn.open_table(COUNTERS).map_err(|e| self.error(e))?;
                let version = counters
                    .get(REFS_VERSION)
                    .map_err(|e| self.error(e))?
                    .map_or(0, |v| v.value());
                counters
                    .insert(REFS_VERSION, version + 1)
                    .map_err(|e| self.error(e))?;
            }
            if !write.needs.is_empty() {
                let segments = txn.open_table(SEGMENTS).map_err(|e| self.error(e))?;
                for name in &write.needs {
                    if segments
                        .get(name.as_str())
                        .map_err(|e| self.error(e))?
                        .is_none()
                    {
                        return Err(StoreError::SegmentUnregistered(name.clone()));
                    }
                }
            }
            if !write.attestations.is_empty() {
                let mut records = txn.open_table(ATTESTATIONS).map_err(|e| self.error(e))?;
                let mut index = txn.open_table(ATTESTED).map_err(|e| self.error(e))?;
                let mut counters = txn.open_table(COUNTERS).map_err(|e| self.error(e))?;
                let mut serial = counters
                    .get(NEXT_ATTESTATION)
                    .map_err(|e| self.error(e))?
                    .map_or(1, |v| v.value());
                for record in &write.attestations {
                    if records
                        .get(record.id.as_str())
                        .map_err(|e| self.error(e))?
                        .is_some()
                    {
                        continue;
                    }
                    let json = serde_json::to_vec(record).expect("serialisable");
                    records
                        .insert(record.id.as_str(), json.as_slice())
                        .map_err(|e| self.error(e))?;
                    added.push(NewEvent::now(
                        write.actor.clone().unwrap_or_else(Actor::operator),
                        EventKind::AttestationAdded(AttestationAdded {
                            id: record.id.clone(),
                            commits: record.commits.clone(),
                            predicate_type: record.predicate_type.clone(),
                            signers: record.signers.iter().map(|s| s.identity.clone()).collect(),
                        }),
                    ));
                    for commit in &record.commits {
                        let key = attested_key(commit, serial, &record.id)?;
                        index
                            .insert(key.as_slice(), ())
                            .map_err(|e| self.error(e))?;
                    }
                    serial += 1;
                }
                counters
                    .insert(NEXT_ATTESTATION, serial)
                    .map_err(|e| self.error(e))?;
            }
            if !write.approaches.is_empty() {
                self.add_approaches_in(&txn, write)?;
            }
            if !write.fences.is_empty() {
                self.check_fences_in(&txn, write)?;
            }
            if let Some(end) = &write.goal_end {
                added.extend(self.end_goal_in(&txn, write, end)?);
            }
            if !write.events.is_empty() || !added.is_empty() {
                let mut outbox = txn.open_table(OUTBOX).map_err(|e| self.error(e))?;
                let mut seq = outbox
                    .last()
                    .map_err(|e| self.error(e))?
                    .map_or(0, |(k, _)| k.value());
                for event in write.events.iter().chain(&added) {
                    seq += 1;
                    let json = serde_json::to_vec(event).expect("serialisable");
                    outbox
                        .insert(seq, json.as_slice())
                        .map_err(|e| self.error(e))?;
                }
            }
            if let Some(segment) = &write.segment {
                let mut segments = txn.open_table(SEGMENTS).map_err(|e| self.error(e))?;
                let record = SegmentRecord {
                    objects: segment.objects,
                    bytes: segment.bytes,
                    added_at: segment.added_at,
                };
                let json = serde_json::to_vec(&record).expect("serialisable");
                segments
                    .insert(segment.name.as_str(), json.as_slice())
                    .map_err(|e| self.error(e))?;
                let mut counters = txn.open_table(COUNTERS).map_err(|e| self.error(e))?;
                let before = counters
                    .get(SEGMENTS_GENERATION)
                    .map_err(|e| self.error(e))?
                    .map(|v| v.value());
                let after = before.unwrap_or(0) + 1;
                counters
                    .insert(SEGMENTS_GENERATION, after)
                    .map_err(|e| self.error(e))?;
                step = Some((before, after));
            }
        }
        txn.commit().map_err(|e| self.error(e))?;
        Ok(step)
    }
}
