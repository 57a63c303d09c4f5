//! The store's mutable state behind two narrow traits, in the way jj keeps immutable
//! objects apart from the mutable state with one compare-and-swap point:
//!
//! - [`MetaStore`]: one repository's refs, its registry of segments, its settings, and
//!   [`MetaStore::commit`], the one transaction that compare-and-swaps refs, registers a
//!   segment and writes further rows atomically (later: events, attestations, goals);
//! - [`Registry`]: the data directory's repositories (with `public` in the record, so that
//!   listing opens none), identities and revoked token blocks.
//!
//! Objects (segments, their indexes, reads and caches) stay in files beside them
//! (`repo.rs`, `segment.rs`): immutable, so any process may read them once registered.
//! redb implements both traits (`redb/`) and is named nowhere else; a PostgreSQL
//! implementation plugs in here without touching the services above. Both are held to
//! `tests/it/store_conformance.rs`.

use bstr::BString;
use serde::{Deserialize, Serialize};

use super::events::{Actor, Event, EventFilter, NewEvent};
use super::hooks::HookStore;
use super::identities::{Identity, IdentityError, IdentityKey};
use super::policy::RefRule;
use super::refs::{RefTarget, RefUpdate};
use super::settings::{RepoSettings, Setting};
use super::{RepoName, RepoRecord, StoreError};

/// A segment in a repository's registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentEntry {
    pub name: String,
    pub objects: u64,
    pub bytes: u64,
    /// Nanoseconds since the epoch: segments are searched newest first.
    pub added_at: u64,
}

/// A verified attestation as stored: the envelope exactly as it was received and
/// verified, indexed by every commit it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestationRecord {
    /// BLAKE3 of the envelope bytes, hex: the same envelope is stored once.
    pub id: String,
    /// The commits its statement names (SHA-1 hex).
    pub commits: Vec<String>,
    pub predicate_type: String,
    /// Who signed it: each identity once, with the key that verified.
    pub signers: Vec<AttestationSigner>,
    /// The identity whose token uploaded it.
    pub uploaded_by: String,
    /// Seconds since the epoch.
    pub stored_at: u64,
    /// A one-line summary of the predicate (a test result's `result`, a review's verdict).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The envelope's JSON as received.
    pub envelope: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestationSigner {
    pub identity: String,
    /// The Ed25519 public key, hex.
    pub key: String,
}

/// What one [`MetaStore::commit`] writes, all or nothing.
#[derive(Debug, Clone, Default)]
pub struct MetaWrite<'a> {
    /// Ref updates, each applied only if the ref holds what it expects. Directory
    /// conflicts (`refs/a` beside `refs/a/b`) are refused with the refs as the write leaves
    /// them.
    pub refs: Vec<&'a RefUpdate>,
    /// A segment whose files are complete, to register.
    pub segment: Option<SegmentEntry>,
    /// Registered segments holding the objects the new refs point to: the write fails
    /// (`StoreError::SegmentUnregistered`) if one was unregistered meanwhile (a later
    /// garbage collection), so no ref is left pointing at a removed object.
    pub needs: Vec<String>,
    /// Attestations to store (one already stored under its id is left as it is).
    pub attestations: Vec<AttestationRecord>,
    /// Events telling of this write, appended to the repository's outbox in the same
    /// transaction.
    pub events: Vec<NewEvent>,
    /// Who writes: each attestation new to the store adds an `attestation.added` event by
    /// this actor (one already stored adds none).
    pub actor: Option<Actor>,
    /// Approaches of goals to record with the refs the write creates for them: each
    /// refused (`StoreError::GoalRefused`, nothing written) unless its goal is open, before
    /// its deadline, below its bound, and without an approach of that name.
    pub approaches: Vec<super::goals::Approach>,
    /// Claims the writes to approach refs were decided on: the write is refused
    /// (`StoreError::GoalRefused`, code `claim_lost`) unless each approach's live claim at
    /// `now` is still the one fenced (or, fenced without a lease, there is none).
    pub fences: Vec<super::goals::ClaimFence>,
    /// A goal that ends with this write (its promotion or abandonment): refused unless
    /// open; its approaches are archived and their live claims end.
    pub goal_end: Option<super::goals::GoalEnd>,
    /// Server time of the write (milliseconds since the epoch), for the goals' deadlines
    /// and claims.
    pub now: u64,
}

/// The segment generation a commit moved from and to (`None` before: a repository
/// written before generations were counted).
pub type GenerationStep = (Option<u64>, u64);

/// One repository's mutable metadata.
pub trait MetaStore: super::goals::GoalStore + Send + Sync {
    /// Every ref, sorted by name.
    fn refs(&self) -> Result<Vec<(BString, RefTarget)>, StoreError>;
    fn read_ref(&self, name: &[u8]) -> Result<Option<RefTarget>, StoreError>;
    /// A number that goes up in every commit that moves, creates or deletes a ref (0 before
    /// the first): what is derived from the refs can be kept until it changes, across
    /// processes sharing the repository.
    fn refs_version(&self) -> Result<u64, StoreError>;
    /// The typed settings, read at one point in time.
    fn settings(&self) -> Result<RepoSettings, StoreError>;
    /// A setting's row as stored (`None` when never set).
    fn stored_setting(&self, setting: Setting) -> Result<Option<String>, StoreError>;
    /// Sets a setting, with its `repo.changed` event in the outbox.
    fn set_setting(&self, setting: Setting, value: bool, actor: &Actor) -> Result<(), StoreError>;
    /// The registered segments, newest first, and the generation they are at, read at one
    /// point in time.
    fn segments(&self) -> Result<(Vec<SegmentEntry>, Option<u64>), StoreError>;
    /// The segment generation alone: it goes up by one in every commit that registers a
    /// segment, so a reader learns in one read whether it has to look at the list again.
    fn generation(&self) -> Result<Option<u64>, StoreError>;
    /// Applies a write atomically; returns the generation step when it registered a
    /// segment. A failed compare-and-swap (`StoreError::RefConflict`) or directory
    /// conflict leaves everything as it was.
    fn commit(&self, write: &MetaWrite<'_>) -> Result<Option<GenerationStep>, StoreError>;
    /// The attestations naming `commit` (SHA-1 hex), in the order they were stored.
    fn attestations(&self, commit: &str) -> Result<Vec<AttestationRecord>, StoreError>;
    /// The repository's ref rules, by id.
    fn rules(&self) -> Result<Vec<RefRule>, StoreError>;
    /// Adds a rule under a fresh id (ids are never reused) and returns it; its
    /// `policy.added` event by `actor` is written in the same transaction.
    fn add_rule(&self, rule: &RefRule, actor: &Actor) -> Result<RefRule, StoreError>;
    /// Removes a rule (`None` when there is none with that id), with its `policy.removed`
    /// event.
    fn remove_rule(&self, id: u64, actor: &Actor) -> Result<Option<RefRule>, StoreError>;
    /// Up to `limit` events of the outbox after its sequence number `after`, in order.
    fn outbox(&self, after: u64, limit: usize) -> Result<Vec<(u64, NewEvent)>, StoreError>;
    /// The outbox's last sequence number (0 when empty): one read tells a relay whether
    /// anything is pending.
    fn outbox_end(&self) -> Result<u64, StoreError>;
}

/// The data directory's registry (its webhooks behind their own narrow trait).
pub trait Registry: HookStore + Send + Sync {
    fn find_repo(&self, name: &RepoName) -> Result<Option<RepoRecord>, StoreError>;
    fn list_repos(&self) -> Result<Vec<RepoRecord>, StoreError>;
    /// Registers `name` under a fresh id, once `lay_out(id)` made its files, in one
    /// transaction: a crash leaves no record, or a record of a whole repository. Ids are
    /// never reused.
    fn create_repo(
        &self,
        name: &RepoName,
        created_at: u64,
        lay_out: &mut dyn FnMut(u64) -> Result<(), StoreError>,
        actor: &Actor,
    ) -> Result<RepoRecord, StoreError>;
    /// Changes a record in one transaction, logging `event` (about this repository) in it.
    fn update_repo(
        &self,
        name: &RepoName,
        change: &mut dyn FnMut(&mut RepoRecord),
        event: Option<&NewEvent>,
    ) -> Result<RepoRecord, StoreError>;
    /// Removes the record (the caller removes the files after).
    fn remove_repo(&self, name: &RepoName, actor: &Actor) -> Result<RepoRecord, StoreError>;

    /// Adds an identity; an agent's owner must exist and be a human.
    fn add_identity(&self, identity: &Identity, actor: &Actor) -> Result<Identity, IdentityError>;
    fn find_identity(&self, name: &str) -> Result<Option<Identity>, StoreError>;
    fn list_identities(&self) -> Result<Vec<Identity>, StoreError>;
    fn set_identity_disabled(
        &self,
        name: &str,
        disabled: bool,
        actor: &Actor,
    ) -> Result<Identity, IdentityError>;
    /// Adds a key to an identity; refused when any identity has or had it.
    fn add_identity_key(
        &self,
        name: &str,
        key: &IdentityKey,
        actor: &Actor,
    ) -> Result<Identity, IdentityError>;
    /// Marks an active key of the identity revoked at `at`.
    fn revoke_identity_key(
        &self,
        name: &str,
        key: &str,
        at: u64,
        actor: &Actor,
    ) -> Result<Identity, IdentityError>;
    /// Removes an identity that owns no agents.
    fn remove_identity(&self, name: &str, actor: &Actor) -> Result<Identity, IdentityError>;

    /// Records revoked token blocks; returns how many were new (`event` is logged when any
    /// was).
    fn revoke_token_blocks(
        &self,
        ids: &[Vec<u8>],
        at: u64,
        event: &NewEvent,
    ) -> Result<usize, StoreError>;
    fn any_revoked(&self, ids: &[Vec<u8>]) -> Result<bool, StoreError>;
    /// What a token's standing is decided from, read at one point in time (one read on
    /// every request): whether any of `ids` is revoked, the identity `name`, and the owner
    /// that identity names.
    fn standing_records(&self, name: &str, ids: &[Vec<u8>]) -> Result<StandingRecords, StoreError>;

    /// How far repository `repo`'s outbox has been relayed into the log.
    fn relayed(&self, repo: u64) -> Result<u64, StoreError>;
    /// Appends the outbox events of repository `repo` (named `name`) that follow what was
    /// relayed before, in one transaction that also moves the mark: concurrent relays of
    /// the same events append them once. Returns how many were appended.
    fn relay_events(
        &self,
        repo: u64,
        name: &str,
        events: &[(u64, NewEvent)],
    ) -> Result<usize, StoreError>;
    /// Events of the log, in order, as the filter asks.
    fn events(&self, filter: &EventFilter) -> Result<Vec<Event>, StoreError>;
    /// The log's last sequence number (0 when empty).
    fn last_event(&self) -> Result<u64, StoreError>;
    /// Logs an event of no repository that no other write carries (a minted token).
    fn append_event(&self, event: &NewEvent) -> Result<(), StoreError>;
    /// Removes the log's events up to sequence number `through` (never past its end), with
    /// their index entries; sequence numbers go on from where they were. Returns the
    /// sequence number the log is now pruned through.
    fn prune_events(&self, through: u64) -> Result<u64, StoreError>;
    /// The sequence number the log was pruned through (0: nothing removed): a reader asking
    /// for events after an earlier one is told they are gone.
    fn pruned_through(&self) -> Result<u64, StoreError>;
}

/// The records a token's standing is decided from (`Registry::standing_records`).
#[derive(Debug, Clone, Default)]
pub struct StandingRecords {
    pub revoked: bool,
    pub identity: Option<Identity>,
    pub owner: Option<Identity>,
}

/// Events read from an outbox and appended to the log per relay call.
const RELAY_BATCH: usize = 1000;

/// Moves repository `repo`'s outbox events that the log lacks into it, in order. Safe to
/// run anywhere at any time: the log's mark decides what is appended, in the transaction
/// that appends it. Returns how many were appended.
pub fn relay(
    log: &dyn Registry,
    outbox: &dyn MetaStore,
    repo: u64,
    name: &str,
) -> Result<usize, StoreError> {
    let end = outbox.outbox_end()?;
    let mut after = log.relayed(repo)?;
    let mut appended = 0;
    while after < end {
        let batch = outbox.outbox(after, RELAY_BATCH)?;
        let Some((last, _)) = batch.last() else { break };
        after = *last;
        appended += log.relay_events(repo, name, &batch)?;
    }
    Ok(appended)
}
