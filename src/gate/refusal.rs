//! Why the gate refused an update: a stable code for programs (the CLI's `--json`, REST
//! error bodies) and a reason in git's wording, as a push reports it (`ng REF reason`).

/// The kinds of refusal. Codes are stable: scripts and agents match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalCode {
    /// The name is not one git accepts, or not one this path may update.
    InvalidName,
    /// The caller's token does not allow updating this ref.
    NotPermitted,
    /// The ref is not at the value the caller claimed.
    Stale,
    /// A delete of a ref that does not exist.
    NoSuchRef,
    /// A delete of the branch `HEAD` names.
    CurrentBranch,
    /// The new value names an object the server does not have.
    MissingObject,
    /// A branch would point to something other than a commit.
    NotACommit,
    /// A non-fast-forward update of the protected default branch.
    NonFastForward,
    /// The name would be a directory of another ref, or below one.
    NameConflict,
    /// One ref named twice in one proposal.
    Duplicate,
    /// Another update of an all-or-nothing proposal was refused.
    Atomic,
    /// A ref rule of the repository refused it (the reason starts with the rule's
    /// `FORGE-P…` code, documented in `docs/policies.md`).
    Policy,
    /// A ref of a goal this path may not write (the archive, a merge queue, an approach
    /// that does not exist or was archived).
    GoalRef,
    /// Another agent holds the approach's claim.
    ClaimHeld,
    /// The writer's claim lease is not the approach's current one (or it sent none).
    ClaimLost,
    /// A promotion's new target tip lacks the evidence its goal demands (`FORGE-G001`).
    GoalEvidence,
}

impl RefusalCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCode::InvalidName => "invalid_ref",
            RefusalCode::NotPermitted => "ref_not_permitted",
            RefusalCode::Stale => "ref_changed",
            RefusalCode::NoSuchRef => "ref_not_found",
            RefusalCode::CurrentBranch => "current_branch",
            RefusalCode::MissingObject => "object_not_found",
            RefusalCode::NotACommit => "not_a_commit",
            RefusalCode::NonFastForward => "non_fast_forward",
            RefusalCode::NameConflict => "ref_name_conflict",
            RefusalCode::Duplicate => "duplicate_ref",
            RefusalCode::Atomic => "atomic_failed",
            RefusalCode::Policy => "policy_refused",
            RefusalCode::GoalRef => "goal_ref",
            RefusalCode::ClaimHeld => "approach_claimed",
            RefusalCode::ClaimLost => "claim_lost",
            RefusalCode::GoalEvidence => "goal_evidence_missing",
        }
    }
}

/// A refused update.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Refusal {
    pub code: RefusalCode,
    /// git's wording, one line.
    pub reason: String,
    /// Further lines: what else was refused, and how to get past it (a push shows them as
    /// `remote:` lines).
    pub hints: Vec<String>,
}

impl Refusal {
    pub fn new(code: RefusalCode, reason: impl Into<String>) -> Refusal {
        Refusal {
            code,
            reason: reason.into(),
            hints: Vec::new(),
        }
    }

    pub fn code(&self) -> &'static str {
        self.code.as_str()
    }
}

impl Refusal {
    /// A goal refusal the metadata store made in a commit's transaction (a claim that
    /// moved on after the gate's decision), as the gate would have made it.
    pub fn of_goal(code: &str, message: String) -> Refusal {
        let code = match code {
            "approach_claimed" => RefusalCode::ClaimHeld,
            "claim_lost" => RefusalCode::ClaimLost,
            _ => RefusalCode::GoalRef,
        };
        Refusal::new(code, message)
    }
}
