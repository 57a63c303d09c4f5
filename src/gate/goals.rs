//! The gate's rules for the refs of goals. `refs/goals/<goal>/<approach>` is written by
//! stock git and REST like any ref, fenced by the approach's claim: while it is claimed,
//! only its holder with the current lease may move it; a lease that is no longer current
//! is refused, so a paused agent that comes back after its claim moved on cannot overwrite
//! the new holder's work. The goal's merge queue (`…/merge/<n>`) and the archive
//! (`refs/archive/goals/`) are written by promotions only (and by the operator, who
//! repairs).

use crate::store::goals::{
    ARCHIVE_PREFIX, ApproachState, ClaimFence, GOALS_PREFIX, GoalState, approach_of_ref, now_ms,
};

use super::{Caller, GateContext, GoalPart, Promotes, Refusal, RefusalCode, Via};
use crate::store::StoreError;

/// What a write to `name` must still find at its commit (`Some`: an approach's claim),
/// or why it is refused. `creating`: the ref does not exist yet; `deleting`: it goes.
pub(super) fn check(
    ctx: &mut dyn GateContext,
    via: Via,
    caller: &Caller,
    part: &GoalPart,
    name: &str,
    creating: bool,
    deleting: bool,
) -> Result<Result<Option<ClaimFence>, Refusal>, StoreError> {
    let in_goals = name.starts_with(GOALS_PREFIX);
    let in_archive = name.starts_with(ARCHIVE_PREFIX);
    if !(in_goals || in_archive) || matches!(via, Via::Admin | Via::Promotion) {
        return Ok(Ok(None));
    }
    let refuse = |code: RefusalCode, reason: String| Ok(Err(Refusal::new(code, reason)));
    if in_archive {
        return refuse(
            RefusalCode::GoalRef,
            format!("{ARCHIVE_PREFIX} keeps the refs of ended goals; only the server writes there"),
        );
    }
    let Some((goal_name, approach_name)) = approach_of_ref(name) else {
        return refuse(
            RefusalCode::GoalRef,
            "refs/goals/<goal>/<approach> are approaches; a goal's merge queue is written by its promotion only".into(),
        );
    };
    let Some(store) = ctx.goals() else {
        return refuse(
            RefusalCode::GoalRef,
            format!("goal {goal_name} does not exist"),
        );
    };
    let Some(goal) = store.find_goal(goal_name)? else {
        return refuse(
            RefusalCode::GoalRef,
            format!("goal {goal_name} does not exist; refs/goals/ holds the approaches of goals"),
        );
    };
    if goal.state != GoalState::Open {
        return refuse(
            RefusalCode::GoalRef,
            format!(
                "goal {goal_name} is {}: its approaches are archived",
                goal.state.as_str()
            ),
        );
    }
    let approach = store
        .approaches(goal_name)?
        .into_iter()
        .find(|a| a.name == approach_name);
    match approach {
        None if creating && part.new_approach => return Ok(Ok(None)),
        None => {
            return refuse(
                RefusalCode::GoalRef,
                format!(
                    "goal {goal_name} has no approach {approach_name}: add it first (forge goal approach, or POST /api/v1/repos/{}/goals/{goal_name}/approaches)",
                    ctx.repo_name()
                ),
            );
        }
        Some(approach) if approach.state != ApproachState::Active => {
            return refuse(
                RefusalCode::GoalRef,
                format!("approach {approach_name} of goal {goal_name} is archived"),
            );
        }
        Some(_) if deleting => {
            return refuse(
                RefusalCode::GoalRef,
                "an approach's ref stays while its goal is open (abandon the goal to archive it)"
                    .to_owned(),
            );
        }
        Some(_) => {}
    }
    let claim = store
        .claim_of(goal_name, approach_name)?
        .filter(|c| c.live(now_ms()));
    let fence = |lease| ClaimFence {
        goal: goal_name.to_owned(),
        approach: approach_name.to_owned(),
        lease,
    };
    let caller_name = super::policy::caller_name(caller);
    let Some(held) = claim else {
        return match part.lease {
            None => Ok(Ok(Some(fence(None)))),
            Some(lease) => refuse(
                RefusalCode::ClaimLost,
                format!(
                    "claim lease {lease} on approach {approach_name} is not current (the approach is not claimed): claim it again"
                ),
            ),
        };
    };
    match part.lease {
        Some(lease) if lease != held.lease => refuse(
            RefusalCode::ClaimLost,
            format!(
                "claim lease {lease} on approach {approach_name} is not current (holder {}, lease {})",
                held.holder, held.lease
            ),
        ),
        _ if caller_name.is_none_or(|c| !c.eq_ignore_ascii_case(&held.holder)) => refuse(
            RefusalCode::ClaimHeld,
            format!(
                "approach {approach_name} of goal {goal_name} is claimed by {} (lease {}); only its holder may push to it",
                held.holder, held.lease
            ),
        ),
        None => refuse(
            RefusalCode::ClaimLost,
            format!(
                "approach {approach_name} is claimed by you with lease {}: push with -o claim={} (REST: the Forge-Claim header)",
                held.lease, held.lease
            ),
        ),
        Some(_) => Ok(Ok(Some(fence(Some(held.lease))))),
    }
}

/// Whether the target's new tip of a promotion carries the evidence its goal demands;
/// the refusal says what is missing and how to produce it.
pub(super) fn check_evidence(
    ctx: &mut dyn GateContext,
    caller: &Caller,
    required: &Promotes,
    new: &crate::object::ObjectId,
) -> Result<Option<Refusal>, StoreError> {
    if required.required.is_empty() {
        return Ok(None);
    }
    let evidence = ctx.attestations(new)?;
    let mut refusal: Option<Refusal> = None;
    for wanted in &required.required {
        if let Some(violation) =
            super::policy::missing_attestation(&*ctx, caller, wanted, new, &evidence)
        {
            let line = format!("FORGE-G001: goal {} {}", required.goal, violation.message);
            match &mut refusal {
                None => {
                    let mut first = Refusal::new(RefusalCode::GoalEvidence, line);
                    first.hints = violation.hints;
                    refusal = Some(first);
                }
                Some(first) => first.hints.push(line),
            }
        }
    }
    Ok(refusal)
}
