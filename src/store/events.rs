//! Events: what changed, who changed it and when, as plain data. A repository's events are
//! written into its own log (an outbox) in the very transaction of the change they tell of,
//! so an event exists exactly when its change committed; they are then relayed, in order
//! and exactly once, into the data directory's one log, where they get the gap-free
//! sequence numbers readers page and resume by (`backend::relay`).

use serde::{Deserialize, Serialize};

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Actor {
    /// The identity; none for the operator (`forge` on the data directory) and anonymous
    /// callers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// `human`, `agent`, `operator` or `anonymous`.
    pub kind: String,
}

impl Actor {
    pub fn operator() -> Actor {
        Actor {
            identity: None,
            kind: "operator".into(),
        }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", content = "data")]
pub enum EventKind {
    /// A ref was created, moved or deleted (one event per ref).
    #[serde(rename = "ref.updated")]
    RefUpdated(RefUpdated),
    /// A ref update was refused: by which rule, and why.
    #[serde(rename = "ref.refused")]
    RefRefused(RefRefused),
    /// A verified attestation was stored.
    #[serde(rename = "attestation.added")]
    AttestationAdded(AttestationAdded),
    /// A ref rule was added to the repository's policy.
    #[serde(rename = "policy.added")]
    PolicyAdded(PolicyChanged),
    /// A ref rule was removed.
    #[serde(rename = "policy.removed")]
    PolicyRemoved(PolicyChanged),
    #[serde(rename = "repo.created")]
    RepoCreated(RepoChanged),
    #[serde(rename = "repo.deleted")]
    RepoDeleted(RepoChanged),
    /// A setting changed (`public`, `allow-force`, `fsck-objects`).
    #[serde(rename = "repo.changed")]
    RepoSettingChanged(RepoSettingChanged),
    #[serde(rename = "identity.added")]
    IdentityAdded(IdentityChanged),
    /// Disabled or enabled.
    #[serde(rename = "identity.changed")]
    IdentityStateChanged(IdentityChanged),
    #[serde(rename = "identity.removed")]
    IdentityRemoved(IdentityChanged),
    #[serde(rename = "key.added")]
    KeyAdded(KeyChanged),
    #[serde(rename = "key.revoked")]
    KeyRevoked(KeyChanged),
    #[serde(rename = "token.minted")]
    TokenMinted(TokenChanged),
    #[serde(rename = "token.revoked")]
    TokenRevoked(TokenChanged),
    /// A webhook was added (to a repository, or site-wide).
    #[serde(rename = "hook.added")]
    HookAdded(HookInfo),
    /// A webhook's URL, secret, event types or active flag changed.
    #[serde(rename = "hook.changed")]
    HookChanged(HookInfo),
    #[serde(rename = "hook.removed")]
    HookRemoved(HookInfo),
    /// An exploration goal was created.
    #[serde(rename = "goal.created")]
    GoalCreated(GoalInfo),
    /// An approach was added to a goal (its ref's `ref.updated` comes with it).
    #[serde(rename = "approach.created")]
    ApproachCreated(ApproachInfo),
    /// An agent took an approach, with a new lease.
    #[serde(rename = "claim.taken")]
    ClaimTaken(ClaimInfo),
    /// Its holder gave the claim up.
    #[serde(rename = "claim.released")]
    ClaimReleased(ClaimInfo),
    /// A claim ended without its holder: its goal ended (promoted or abandoned).
    #[serde(rename = "claim.ended")]
    ClaimEnded(ClaimInfo),
    /// An approach won: the target ref moved to it (or to its merge) in the same
    /// transaction, and the goal's approaches were archived.
    #[serde(rename = "goal.promoted")]
    GoalPromoted(GoalEnded),
    /// The goal was given up; its approaches were archived.
    #[serde(rename = "goal.abandoned")]
    GoalAbandoned(GoalEnded),
    /// A promotion's merge of the target and an approach was published to the goal's
    /// merge queue (`refs/goals/<goal>/merge/<n>`), for CI to attest before it lands.
    #[serde(rename = "goal.merge_queued")]
    GoalMergeQueued(MergeQueued),
}

impl EventKind {
    /// The type as readers filter by it (`ref.updated`, …).
    pub fn type_name(&self) -> &'static str {
        match self {
            EventKind::RefUpdated(_) => "ref.updated",
            EventKind::RefRefused(_) => "ref.refused",
            EventKind::AttestationAdded(_) => "attestation.added",
            EventKind::PolicyAdded(_) => "policy.added",
            EventKind::PolicyRemoved(_) => "policy.removed",
            EventKind::RepoCreated(_) => "repo.created",
            EventKind::RepoDeleted(_) => "repo.deleted",
            EventKind::RepoSettingChanged(_) => "repo.changed",
            EventKind::IdentityAdded(_) => "identity.added",
            EventKind::IdentityStateChanged(_) => "identity.changed",
            EventKind::IdentityRemoved(_) => "identity.removed",
            EventKind::KeyAdded(_) => "key.added",
            EventKind::KeyRevoked(_) => "key.revoked",
            EventKind::TokenMinted(_) => "token.minted",
            EventKind::TokenRevoked(_) => "token.revoked",
            EventKind::HookAdded(_) => "hook.added",
            EventKind::HookChanged(_) => "hook.changed",
            EventKind::HookRemoved(_) => "hook.removed",
            EventKind::GoalCreated(_) => "goal.created",
            EventKind::ApproachCreated(_) => "approach.created",
            EventKind::ClaimTaken(_) => "claim.taken",
            EventKind::ClaimReleased(_) => "claim.released",
            EventKind::ClaimEnded(_) => "claim.ended",
            EventKind::GoalPromoted(_) => "goal.promoted",
            EventKind::GoalAbandoned(_) => "goal.abandoned",
            EventKind::GoalMergeQueued(_) => "goal.merge_queued",
        }
    }
}

/// A comma-separated list of event types (`ref.updated,ref.refused`), each checked to be
/// one of `EVENT_TYPES`; the error names the unknown one.
pub fn parse_types(list: &str) -> Result<Vec<String>, String> {
    // An empty list asks for no filter (`?type=`), as a missing one does.
    if list.trim().is_empty() {
        return Ok(Vec::new());
    }
    let types: Vec<String> = list.split(',').map(|t| t.trim().to_owned()).collect();
    match types.iter().find(|t| !EVENT_TYPES.contains(&t.as_str())) {
        Some(unknown) => Err(format!(
            "unknown event type {unknown:?} (known: {})",
            EVENT_TYPES.join(", ")
        )),
        None => Ok(types),
    }
}

/// Every type an event may have.
pub const EVENT_TYPES: &[&str] = &[
    "ref.updated",
    "ref.refused",
    "attestation.added",
    "policy.added",
    "policy.removed",
    "repo.created",
    "repo.deleted",
    "repo.changed",
    "identity.added",
    "identity.changed",
    "identity.removed",
    "key.added",
    "key.revoked",
    "token.minted",
    "token.revoked",
    "hook.added",
    "hook.changed",
    "hook.removed",
    "goal.created",
    "approach.created",
    "claim.taken",
    "claim.released",
    "claim.ended",
    "goal.promoted",
    "goal.abandoned",
    "goal.merge_queued",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RefUpdated {
    #[serde(rename = "ref")]
    pub name: String,
    /// The SHA-1 (or, for a symbolic ref, `ref: NAME`) before; none when created.
    pub before: Option<String>,
    /// After; none when deleted.
    pub after: Option<String>,
    pub created: bool,
    pub deleted: bool,
    /// The update was not a fast-forward (the old commit is not in the new one's history).
    pub forced: bool,
    /// `push`, `rest`, `admin` or `promotion`.
    pub via: String,
    /// Ref rules the update did not meet and passed all the same: a bypass by an identity
    /// on the rule's bypass list, or a rule in evaluate mode (`FORGE-P…` lines).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy_notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RefRefused {
    #[serde(rename = "ref")]
    pub name: String,
    /// The refusal's stable code (`FORGE-P003`, `stale`, …).
    pub code: String,
    pub reason: String,
    pub via: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttestationAdded {
    /// The attestation's id (BLAKE3 of its envelope).
    pub id: String,
    pub commits: Vec<String>,
    pub predicate_type: String,
    pub signers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PolicyChanged {
    pub rule_id: u64,
    pub pattern: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RepoChanged {
    /// `owner/name`.
    pub name: String,
    pub public: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RepoSettingChanged {
    pub setting: String,
    pub value: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IdentityChanged {
    pub name: String,
    /// `human` or `agent`.
    pub kind: String,
    pub owner: Option<String>,
    pub disabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyChanged {
    pub identity: String,
    /// The Ed25519 public key, hex.
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenChanged {
    /// The identity the token speaks for (none when revoked by id alone).
    pub identity: Option<String>,
    /// Revocation ids (128 hex digits): a minted token's blocks, or the blocks revoked.
    pub revocation_ids: Vec<String>,
}

/// A webhook, as its events tell of it: never its secret nor its whole URL (which may
/// carry a receiver's token in its query), which only its administrators read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HookInfo {
    pub id: u64,
    /// `repo` or `site`.
    pub scope: String,
    /// The host deliveries go to.
    pub host: String,
    /// The event types it gets (empty: all).
    pub events: Vec<String>,
    pub active: bool,
}

/// A goal, as its events tell of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GoalInfo {
    pub name: String,
    pub title: String,
    /// The branch a winner is promoted onto.
    pub target: String,
    /// `open`, `promoted` or `abandoned`.
    pub state: String,
}

/// An approach, as its events tell of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApproachInfo {
    pub goal: String,
    pub name: String,
    /// `refs/goals/<goal>/<name>`.
    pub r#ref: String,
    /// The commit it starts from (SHA-1).
    pub base: String,
}

/// A claim on an approach, as its events tell of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClaimInfo {
    pub goal: String,
    pub approach: String,
    /// The fencing token: the holder's writes carry it.
    pub lease: u64,
    pub holder: String,
    /// Server time (milliseconds since the epoch) at which it lapses unless renewed.
    pub expires_at: u64,
}

/// A goal's end, as its event tells of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GoalEnded {
    pub name: String,
    pub target: String,
    /// The approach promoted (none when abandoned).
    pub winner: Option<String>,
    /// The commit the target moved to (SHA-1; none when abandoned).
    pub commit: Option<String>,
    /// The refs the goal's approaches (and merge-queue commits) were moved to.
    pub archived: Vec<String>,
}

/// A merge waiting in a goal's queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MergeQueued {
    pub goal: String,
    pub approach: String,
    /// `refs/goals/<goal>/merge/<n>`.
    pub r#ref: String,
    /// The merge commit (SHA-1): attest it, then promote again.
    pub commit: String,
    /// The target's tip and the approach's tip it merges (SHA-1).
    pub target_tip: String,
    pub approach_tip: String,
}

/// An event as a change writes it (its sequence numbers are assigned by the store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEvent {
    /// Milliseconds since the Unix epoch.
    pub at: u64,
    pub actor: Actor,
    #[serde(flatten)]
    pub kind: EventKind,
}

impl NewEvent {
    pub fn now(actor: Actor, kind: EventKind) -> NewEvent {
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        NewEvent { at, actor, kind }
    }
}

/// An event in the data directory's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    /// Its place in the log: 1, 2, 3 … without gaps.
    pub seq: u64,
    /// The repository (`owner/name`) it happened in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub at: u64,
    pub actor: Actor,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Which events a reader asks for.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only events with a sequence number above this.
    pub after: u64,
    /// Only this repository's (by its registry id).
    pub repo: Option<u64>,
    /// Only these types (none: all).
    pub types: Vec<String>,
    pub limit: usize,
}
