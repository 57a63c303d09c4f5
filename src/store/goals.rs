//! Exploration goals as plain data: a goal (what is sought, on which target branch, with
//! what evidence demanded before a promotion), its approaches (each one ref, tried by one
//! agent at a time), and the claims agents hold on approaches, with leases that fence out a
//! holder whose claim has moved on. Kept in each repository's metadata store
//! (`GoalStore`), so that a promotion moves the target ref and records the goal's end in
//! one transaction. The rules names and lengths follow are checked here, once.

use serde::{Deserialize, Serialize};

use super::StoreError;
use super::events::Actor;
use super::policy::RequiredAttestation;

/// Where a goal's approaches live: `refs/goals/<goal>/<approach>`.
pub const GOALS_PREFIX: &str = "refs/goals/";
/// Where the approaches of a goal that ended are kept (until garbage collection):
/// `refs/archive/goals/<goal>/<approach>`.
pub const ARCHIVE_PREFIX: &str = "refs/archive/goals/";
/// Approach names that are parts of a goal's own ref space (`…/merge/<n>` holds the
/// merge-queue commits of promotions).
pub const RESERVED_APPROACH_NAMES: &[&str] = &["merge", "archive"];

/// Bounds on what a goal may ask of the server.
pub const MAX_TITLE_BYTES: usize = 256;
pub const MAX_DESCRIPTION_BYTES: usize = 64 << 10;
pub const MAX_APPROACHES: u32 = 1000;
/// Claim leases: the server picks the TTL within these bounds.
pub const MIN_CLAIM_TTL_MS: u64 = 5_000;
pub const DEFAULT_CLAIM_TTL_MS: u64 = 300_000;
pub const MAX_CLAIM_TTL_MS: u64 = 3_600_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GoalState {
    Open,
    /// An approach won; its tip (or the merge of it) is on the target.
    Promoted,
    Abandoned,
}

/// A goal as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Goal {
    /// Unique in the repository, and the goal's part of its approaches' refs.
    pub name: String,
    pub title: String,
    pub description: String,
    /// The branch a winner is promoted onto (`refs/heads/…`).
    pub target: String,
    /// Evidence an approach's tip must carry before it may be promoted (the policy rules'
    /// kind of requirement).
    pub required: Vec<RequiredAttestation>,
    /// At most this many approaches (none: `MAX_APPROACHES`).
    pub max_approaches: Option<u32>,
    /// Milliseconds since the epoch after which no approach may be added or claimed.
    pub deadline: Option<u64>,
    pub state: GoalState,
    /// The approach promoted, once one was.
    pub winner: Option<String>,
    /// The commit the target was moved to by the promotion (SHA-1 hex).
    pub promoted_commit: Option<String>,
    /// Who made it (`None`: the operator).
    pub created_by: Option<String>,
    pub created_at: u64,
    pub updated_at: u64,
    /// Revocation ids (hex) of the tokens provisioned for its agents: revoked when it ends.
    #[serde(default)]
    pub provisioned: Vec<String>,
}

/// What a new goal asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGoal {
    pub name: String,
    pub title: String,
    pub description: String,
    pub target: String,
    pub required: Vec<RequiredAttestation>,
    pub max_approaches: Option<u32>,
    pub deadline: Option<u64>,
}

impl NewGoal {
    /// The goal as it is stored: its required evidence with `test-result` expanded.
    pub fn checked(mut self) -> Result<NewGoal, GoalError> {
        for required in &mut self.required {
            required
                .check()
                .map_err(|e| GoalError::Invalid(e.to_string()))?;
        }
        check_new_goal(&self)?;
        Ok(self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApproachState {
    Active,
    /// The goal ended with another approach (or none): its ref is under the archive.
    Archived,
    Winner,
}

/// An approach as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approach {
    pub goal: String,
    pub name: String,
    /// The commit it started from (SHA-1 hex).
    pub base: String,
    pub state: ApproachState,
    pub created_by: Option<String>,
    pub created_at: u64,
}

impl Approach {
    /// The ref agents push to while the goal is open.
    pub fn ref_name(&self) -> String {
        approach_ref(&self.goal, &self.name)
    }

    /// Where its commits are now: its ref while active, under the archive once its goal
    /// ended.
    pub fn current_ref(&self) -> String {
        match self.state {
            ApproachState::Active => self.ref_name(),
            _ => archived_ref(&self.goal, &self.name),
        }
    }
}

pub fn approach_ref(goal: &str, approach: &str) -> String {
    format!("{GOALS_PREFIX}{goal}/{approach}")
}

pub fn archived_ref(goal: &str, approach: &str) -> String {
    format!("{ARCHIVE_PREFIX}{goal}/{approach}")
}

/// Where a promotion publishes the merge it made for CI to attest: the goal's merge queue.
pub fn merge_ref(goal: &str, number: u64) -> String {
    format!("{GOALS_PREFIX}{goal}/merge/{number}")
}

/// The prefix of a goal's merge-queue refs.
pub fn merge_prefix(goal: &str) -> String {
    format!("{GOALS_PREFIX}{goal}/merge/")
}

/// Where an ended goal keeps a ref of its own space (`refs/goals/<goal>/…`).
pub fn archived_of(name: &str) -> Option<String> {
    name.strip_prefix(GOALS_PREFIX)
        .map(|rest| format!("{ARCHIVE_PREFIX}{rest}"))
}

/// What a write to an approach's ref was decided on: the claim the approach had. The
/// metadata store checks it again in the write's transaction (`MetaWrite::fences`), so a
/// claim taken over between the gate's decision and the commit refuses the write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimFence {
    pub goal: String,
    pub approach: String,
    /// The lease of the live claim the writer holds (none: the approach was not claimed,
    /// and must still not be).
    pub lease: Option<u64>,
}

/// A goal's end, written with the ref updates that move its target and archive its
/// approaches (`MetaWrite::goal_end`): the goal must still be open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoalEnd {
    pub goal: String,
    /// `Promoted` or `Abandoned`.
    pub state: GoalState,
    pub winner: Option<String>,
    /// The commit the target moved to (SHA-1 hex).
    pub commit: Option<String>,
    /// The refs the goal's refs were moved to.
    pub archived: Vec<String>,
}

/// The goal and approach a ref of `refs/goals/` belongs to (not the merge-queue refs).
pub fn approach_of_ref(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix(GOALS_PREFIX)?;
    let (goal, approach) = rest.split_once('/')?;
    (!approach.contains('/')).then_some((goal, approach))
}

/// A claim on an approach, as stored: one holder at a time, taken by compare-and-swap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRecord {
    pub goal: String,
    pub approach: String,
    /// The fencing token: from a per-repository counter, so it only grows; a holder's
    /// writes carry it and are refused once it is not the approach's current one.
    pub lease: u64,
    pub holder: String,
    pub ttl_ms: u64,
    /// Server time, milliseconds since the epoch; a claim is live while now < this.
    pub expires_at: u64,
    pub heartbeats: u64,
    /// Released by its holder (an expired claim is one whose time has passed).
    pub released: bool,
    pub claimed_at: u64,
}

impl ClaimRecord {
    /// Whether it still holds the approach at server time `now`.
    pub fn live(&self, now: u64) -> bool {
        !self.released && now < self.expires_at
    }
}

/// Why a goal operation was refused; each with a stable code shared by CLI and REST.
#[derive(Debug, thiserror::Error)]
pub enum GoalError {
    #[error("{0}")]
    Invalid(String),
    #[error("goal {0} does not exist")]
    NotFound(String),
    #[error("goal {0} already exists")]
    Exists(String),
    #[error("goal {goal} has no approach {approach}")]
    ApproachNotFound { goal: String, approach: String },
    #[error("goal {goal} already has an approach {approach}")]
    ApproachExists { goal: String, approach: String },
    #[error("goal {goal} has its {max} approaches already")]
    TooManyApproaches { goal: String, max: u32 },
    #[error("goal {goal} is {state}: {what}")]
    Closed {
        goal: String,
        state: &'static str,
        what: &'static str,
    },
    #[error("goal {goal} is past its deadline: {what}")]
    PastDeadline { goal: String, what: &'static str },
    #[error(
        "approach {approach} of goal {goal} is claimed by {holder} (lease {lease}) until {expires_at} ms"
    )]
    Held {
        goal: String,
        approach: String,
        holder: String,
        lease: u64,
        expires_at: u64,
    },
    #[error("claim lease {lease} on approach {approach} is not current{current}")]
    ClaimLost {
        approach: String,
        lease: u64,
        /// ` (holder X, lease N)` or ` (the approach is not claimed)`.
        current: String,
    },
    /// A refusal the metadata store made in a write's transaction, as it carried it.
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl GoalError {
    pub fn code(&self) -> &'static str {
        match self {
            GoalError::Invalid(_) => "invalid_goal",
            GoalError::NotFound(_) => "goal_not_found",
            GoalError::Exists(_) => "goal_exists",
            GoalError::ApproachNotFound { .. } => "approach_not_found",
            GoalError::ApproachExists { .. } => "approach_exists",
            GoalError::TooManyApproaches { .. } => "too_many_approaches",
            GoalError::Closed { .. } | GoalError::PastDeadline { .. } => "goal_closed",
            GoalError::Held { .. } => "approach_claimed",
            GoalError::ClaimLost { .. } => "claim_lost",
            GoalError::Refused { code, .. } => code,
            GoalError::Store(e) => e.code(),
        }
    }

    /// The `current` text of `ClaimLost` for the claim an approach has now.
    pub fn lost(approach: &str, lease: u64, now: Option<&ClaimRecord>) -> GoalError {
        GoalError::ClaimLost {
            approach: approach.to_owned(),
            lease,
            current: match now {
                Some(claim) => format!(" (holder {}, lease {})", claim.holder, claim.lease),
                None => " (the approach is not claimed)".to_owned(),
            },
        }
    }
}

impl From<GoalError> for StoreError {
    /// A refusal carried through a write of the metadata store (`MetaWrite::approaches`).
    fn from(e: GoalError) -> StoreError {
        match e {
            GoalError::Store(e) => e,
            GoalError::Refused { code, message } => StoreError::GoalRefused { code, message },
            other => StoreError::GoalRefused {
                code: other.code(),
                message: other.to_string(),
            },
        }
    }
}

impl GoalState {
    pub fn as_str(self) -> &'static str {
        match self {
            GoalState::Open => "open",
            GoalState::Promoted => "promoted",
            GoalState::Abandoned => "abandoned",
        }
    }
}

/// A goal's or approach's name: 1 to 64 of `a-z 0-9 - _ .`, starting with a letter or
/// digit, no `..`, not ending in `.` or `.lock` — one ref component everywhere.
pub fn check_name(what: &str, name: &str) -> Result<(), GoalError> {
    let bad = |why: &str| GoalError::Invalid(format!("{what} name {name:?}: {why}"));
    if name.is_empty() || name.len() > 64 {
        return Err(bad("1 to 64 characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
    {
        return Err(bad("only a-z, 0-9, '-', '_' and '.'"));
    }
    if !name.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(bad("it starts with a letter or a digit"));
    }
    if name.contains("..") || name.ends_with('.') || name.ends_with(".lock") {
        return Err(bad("no '..', and no '.' or '.lock' at the end"));
    }
    Ok(())
}

pub fn check_approach_name(name: &str) -> Result<(), GoalError> {
    check_name("an approach", name)?;
    if RESERVED_APPROACH_NAMES.contains(&name) {
        return Err(GoalError::Invalid(format!(
            "an approach cannot be called {name:?} (reserved in the goal's refs)"
        )));
    }
    Ok(())
}

/// Checks a new goal's fields (the target is checked as a branch name by the caller, who
/// knows the repository). Its required evidence is checked (and `test-result` expanded)
/// by `NewGoal::checked`.
pub fn check_new_goal(goal: &NewGoal) -> Result<(), GoalError> {
    check_name("a goal", &goal.name)?;
    if goal.required.len() > 16 {
        return Err(GoalError::Invalid(
            "a goal demands at most 16 attestations".into(),
        ));
    }
    for required in &goal.required {
        required
            .clone()
            .check()
            .map_err(|e| GoalError::Invalid(e.to_string()))?;
    }
    if goal.title.trim().is_empty() || goal.title.len() > MAX_TITLE_BYTES {
        return Err(GoalError::Invalid(format!(
            "a goal's title has 1 to {MAX_TITLE_BYTES} bytes"
        )));
    }
    if goal.title.chars().any(char::is_control) {
        return Err(GoalError::Invalid(
            "a goal's title has no control characters".into(),
        ));
    }
    if goal.description.len() > MAX_DESCRIPTION_BYTES {
        return Err(GoalError::Invalid(format!(
            "a goal's description has at most {MAX_DESCRIPTION_BYTES} bytes"
        )));
    }
    if !goal.target.starts_with("refs/heads/") {
        return Err(GoalError::Invalid(format!(
            "a goal's target is a branch (refs/heads/…), not {:?}",
            goal.target
        )));
    }
    if let Some(max) = goal.max_approaches
        && !(1..=MAX_APPROACHES).contains(&max)
    {
        return Err(GoalError::Invalid(format!(
            "max_approaches is 1 to {MAX_APPROACHES}"
        )));
    }
    Ok(())
}

/// Server time in milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The TTL a claim gets when `asked` (milliseconds) is asked for: within the bounds.
pub fn claim_ttl(asked: Option<u64>) -> u64 {
    asked
        .unwrap_or(DEFAULT_CLAIM_TTL_MS)
        .clamp(MIN_CLAIM_TTL_MS, MAX_CLAIM_TTL_MS)
}

/// A repository's goals, their approaches and claims: the narrow trait `MetaStore`
/// extends. Every change writes its event to the repository's outbox in its transaction.
/// Times are the server's, in milliseconds since the epoch, passed in (so that tests and
/// every server agree on one clock: the caller's).
pub trait GoalStore {
    fn create_goal(&self, goal: &NewGoal, actor: &Actor, now: u64) -> Result<Goal, GoalError>;
    fn find_goal(&self, name: &str) -> Result<Option<Goal>, StoreError>;
    /// Every goal, by name.
    fn list_goals(&self) -> Result<Vec<Goal>, StoreError>;
    /// The goal's approaches, by name.
    fn approaches(&self, goal: &str) -> Result<Vec<Approach>, StoreError>;
    /// The claim an approach has (live or not: `ClaimRecord::live` says), the last one
    /// taken.
    fn claim_of(&self, goal: &str, approach: &str) -> Result<Option<ClaimRecord>, StoreError>;
    /// Takes the approach for `holder` if no live claim holds it, with a new lease and
    /// `ttl_ms` (already bounded by `claim_ttl`).
    fn claim(
        &self,
        goal: &str,
        approach: &str,
        holder: &Actor,
        ttl_ms: u64,
        now: u64,
    ) -> Result<ClaimRecord, GoalError>;
    /// Extends `holder`'s live claim `lease` by its TTL from `now` (never shortening it).
    /// Not an event: agents renew every third of their TTL.
    fn heartbeat(
        &self,
        goal: &str,
        approach: &str,
        lease: u64,
        holder: &str,
        now: u64,
    ) -> Result<ClaimRecord, GoalError>;
    /// Records the revocation ids of tokens provisioned for the goal's agents.
    fn add_provisioned(&self, goal: &str, ids: &[String], now: u64) -> Result<(), GoalError>;
    /// Ends `holder`'s live claim `lease`; the approach may be claimed again at once
    /// (with a new lease).
    fn release(
        &self,
        goal: &str,
        approach: &str,
        lease: u64,
        actor: &Actor,
        now: u64,
    ) -> Result<ClaimRecord, GoalError>;
}
