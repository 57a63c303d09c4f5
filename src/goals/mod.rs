//! What is done with exploration goals beyond their records (`store::goals`): adding an
//! approach (its ref, made through the gate), promoting the winner onto the target, and
//! abandoning a goal — for the CLI and REST alike. Every ref these move passes the gate, and
//! each operation is one transaction with the goal's records and events.
//!
//! Promotion fast-forwards the target when the approach contains it. Otherwise the server
//! merges the target's tip and the approach's tip (`gitx::merge_commits`); a conflict
//! refuses with the conflicting paths. A merge commit has no evidence yet: when the goal
//! demands evidence, the merge is published to the goal's merge queue
//! (`refs/goals/<goal>/merge/<n>`) for CI to attest, and the next promotion of the same tips
//! fast-forwards the target to it once it carries the evidence.

pub mod provision;

use std::collections::BTreeMap;

use bstr::{BString, ByteSlice};

use crate::gate::{
    self, Caller, Claim, GateContext, GoalPart, NewValue, Promotes, Proposal, RefChange, Refusal,
    StoredContext, Via,
};
use crate::git::{git_sha1, git_to_native};
use crate::gitx::{MergeError, MergeLabels, MergeLimits};
use crate::history::CommitGraph;
use crate::object::{Kind, ObjectId, Sha1, Signature, encode, native_id};
use crate::store::events::{EventKind, MergeQueued, NewEvent};
use crate::store::goals::{
    ARCHIVE_PREFIX, Approach, ApproachState, GOALS_PREFIX, Goal, GoalEnd, GoalError, GoalState,
    approach_ref, archived_of, check_approach_name, merge_prefix, merge_ref, now_ms,
};
use crate::store::{DataDir, GoalWrite, RefTarget, Repo, StoreError};

/// Why a goal operation did not happen; each with a stable code shared by CLI and REST.
#[derive(Debug, thiserror::Error)]
pub enum GoalOpError {
    #[error(transparent)]
    Goal(#[from] GoalError),
    /// The gate refused a ref the operation moves (a policy, the goal's evidence, a token).
    #[error(transparent)]
    Refused(Refusal),
    #[error("approach {approach} does not merge cleanly into {target}: conflicts in {}", paths.join(", "))]
    Conflict {
        approach: String,
        target: String,
        paths: Vec<String>,
    },
    #[error("merging approach {approach}: {error}")]
    Merge { approach: String, error: MergeError },
    #[error("{0}")]
    NotPromotable(String),
    #[error("base {0} is not a commit of this repository")]
    BaseNotFound(String),
    #[error(transparent)]
    Identity(crate::store::IdentityError),
    #[error("{0}")]
    Provision(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl GoalOpError {
    pub fn code(&self) -> &'static str {
        match self {
            GoalOpError::Goal(e) => e.code(),
            GoalOpError::Refused(refusal) => refusal.code(),
            GoalOpError::Conflict { .. } => "merge_conflict",
            GoalOpError::Merge { error, .. } => error.code(),
            GoalOpError::NotPromotable(_) => "not_promotable",
            GoalOpError::BaseNotFound(_) => "object_not_found",
            GoalOpError::Identity(e) => e.code(),
            GoalOpError::Provision(_) => "invalid_provision",
            GoalOpError::Store(e) => e.code(),
        }
    }
}

/// A write that carries a goal refusal from the metadata store is that refusal.
fn goal_store_error(error: StoreError) -> GoalOpError {
    match error {
        StoreError::GoalRefused { code, message } => {
            GoalOpError::Goal(GoalError::Refused { code, message })
        }
        other => GoalOpError::Store(other),
    }
}

/// Who acts, on which repository, and what their token lets them update.
pub struct Acting<'a> {
    pub repo: &'a Repo,
    pub data: &'a DataDir,
    pub caller: Caller,
    pub may_update: &'a dyn Fn(&str) -> Result<(), Refusal>,
}

impl Acting<'_> {
    fn via(&self) -> Via {
        match self.caller {
            Caller::Operator => Via::Admin,
            _ => Via::Rest,
        }
    }
}

fn open_goal(repo: &Repo, name: &str, what: &'static str) -> Result<Goal, GoalOpError> {
    let goal = repo
        .meta()
        .find_goal(name)?
        .ok_or_else(|| GoalError::NotFound(name.to_owned()))?;
    if goal.state != GoalState::Open {
        return Err(GoalError::Closed {
            goal: name.to_owned(),
            state: goal.state.as_str(),
            what,
        }
        .into());
    }
    Ok(goal)
}

fn direct(target: Option<RefTarget>) -> Option<ObjectId> {
    match target {
        Some(RefTarget::Direct(id)) => Some(id),
        _ => None,
    }
}

/// Adds approach `name` to an open goal: its ref, from `base` or the target's tip, made
/// through the gate, and its record, in one transaction.
pub fn add_approach(
    acting: &Acting<'_>,
    graph: &mut CommitGraph,
    goal: &str,
    name: &str,
    base: Option<Sha1>,
) -> Result<Approach, GoalOpError> {
    check_approach_name(name)?;
    let record = open_goal(acting.repo, goal, "no approach can be added")?;
    let repo = acting.repo;
    let base_id = match base {
        Some(sha1) => match repo.id_of_sha1(&sha1) {
            Some(id) if repo.locate(&id).and_then(|l| l.kind()) == Some(Kind::Commit) => id,
            _ => return Err(GoalOpError::BaseNotFound(sha1.to_hex())),
        },
        None => direct(repo.read_ref(record.target.as_bytes())?).ok_or_else(|| {
            GoalOpError::NotPromotable(format!(
                "the target {} has no commit to start from: give a base",
                record.target
            ))
        })?,
    };
    let base_sha1 = repo
        .sha1_of(&base_id)
        .ok_or_else(|| GoalOpError::BaseNotFound(base_id.to_hex()))?;
    let approach = Approach {
        goal: goal.to_owned(),
        name: name.to_owned(),
        base: base_sha1.to_hex(),
        state: ApproachState::Active,
        created_by: acting.caller.actor().identity,
        created_at: now_ms(),
    };
    let proposal = Proposal {
        via: acting.via(),
        caller: acting.caller.clone(),
        changes: vec![RefChange {
            name: approach_ref(goal, name).into(),
            claim: Claim::Absent,
            new: NewValue::Set(RefTarget::Direct(base_id)),
        }],
        goal: GoalPart {
            new_approach: true,
            ..GoalPart::default()
        },
    };
    if repo.meta().approaches(goal)?.iter().any(|a| a.name == name) {
        return Err(GoalError::ApproachExists {
            goal: goal.to_owned(),
            approach: name.to_owned(),
        }
        .into());
    }
    let mut ctx = StoredContext::new(repo, graph, acting.data, acting.may_update)?;
    let write = GoalWrite {
        approaches: vec![approach.clone()],
        end: None,
    };
    ctx.apply_all(&proposal, None, write)
        .map_err(goal_store_error)?
        .map_err(GoalOpError::Refused)?;
    Ok(approach)
}

/// How a promotion ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Promotion {
    /// The target moved to `commit`; the goal is promoted and its refs archived.
    Landed {
        commit: Sha1,
        /// `fast_forward` (the approach contained the target), `merge` (merged and landed
        /// at once: the goal demands no evidence) or `merge_queue` (the queued merge,
        /// attested).
        how: &'static str,
        archived: Vec<String>,
    },
    /// The merge waits in the goal's merge queue for the evidence the goal demands.
    Queued { r#ref: String, commit: Sha1 },
}

/// Promotes approach `name` of an open goal onto its target. The caller holds the lock
/// that serialises the repository's ref updates (a server's push lock); another process's
/// update is caught by the compare-and-swap of the target.
pub fn promote(
    acting: &Acting<'_>,
    graph: &mut CommitGraph,
    goal: &str,
    name: &str,
) -> Result<Promotion, GoalOpError> {
    let repo = acting.repo;
    let record = open_goal(repo, goal, "nothing more can be promoted")?;
    let approach = repo
        .meta()
        .approaches(goal)?
        .into_iter()
        .find(|a| a.name == name)
        .ok_or_else(|| GoalError::ApproachNotFound {
            goal: goal.to_owned(),
            approach: name.to_owned(),
        })?;
    let tip = direct(repo.read_ref(approach.ref_name().as_bytes())?)
        .ok_or_else(|| GoalOpError::NotPromotable(format!("approach {name} has no commit")))?;
    let target_tip = direct(repo.read_ref(record.target.as_bytes())?);
    // The goal's refs move to the archive, whoever's token promotes: the gate asks the
    // caller's token about the target only.
    let may_update = |ref_name: &str| {
        if ref_name.starts_with(GOALS_PREFIX) || ref_name.starts_with(ARCHIVE_PREFIX) {
            Ok(())
        } else {
            (acting.may_update)(ref_name)
        }
    };
    let mut ctx = StoredContext::new(repo, graph, acting.data, &may_update)?;
    if !record.required.is_empty() {
        ctx.with_identities(acting.data)?;
    }
    // A target without a commit yet takes the approach as it is.
    let target = match target_tip {
        Some(target) if target != tip && !ctx.is_ancestor(&target, &tip)? => target,
        _ => {
            return land(
                acting,
                &mut ctx,
                &record,
                name,
                target_tip,
                tip,
                None,
                "fast_forward",
            );
        }
    };
    let queue = merge_queue(ctx.refs(), goal);
    if let Some(queued) = queued_merge(repo, &queue, target, tip)? {
        return land(
            acting,
            &mut ctx,
            &record,
            name,
            target_tip,
            queued,
            None,
            "merge_queue",
        );
    }
    let merge = make_merge(repo, &record, &approach, target, tip, &acting.caller)?;
    for (id, brought) in &merge.brought {
        ctx.bring(*id, brought.clone());
    }
    if record.required.is_empty() {
        return land(
            acting,
            &mut ctx,
            &record,
            name,
            target_tip,
            merge.commit,
            Some(merge.segment),
            "merge",
        );
    }
    let number = queue.first().map_or(1, |(last, _)| last + 1);
    let queue_ref = merge_ref(goal, number);
    let (target_sha1, tip_sha1) = (merge.ours, merge.theirs);
    let proposal = Proposal {
        via: Via::Promotion,
        caller: acting.caller.clone(),
        changes: vec![RefChange {
            name: queue_ref.clone().into(),
            claim: Claim::Absent,
            new: NewValue::Set(RefTarget::Direct(merge.commit)),
        }],
        goal: GoalPart::default(),
    };
    ctx.apply_all(&proposal, Some(merge.segment), GoalWrite::default())?
        .map_err(GoalOpError::Refused)?;
    repo.record_events(vec![NewEvent::now(
        acting.caller.actor(),
        EventKind::GoalMergeQueued(MergeQueued {
            goal: goal.to_owned(),
            approach: name.to_owned(),
            r#ref: queue_ref.clone(),
            commit: merge.commit_sha1.to_hex(),
            target_tip: target_sha1.to_hex(),
            approach_tip: tip_sha1.to_hex(),
        }),
    )])?;
    Ok(Promotion::Queued {
        r#ref: queue_ref,
        commit: merge.commit_sha1,
    })
}

/// Moves the target to `commit` through the gate (with the goal's evidence demanded of
/// it), archives the goal's refs and records its end, in one transaction.
#[allow(clippy::too_many_arguments)]
fn land(
    acting: &Acting<'_>,
    ctx: &mut StoredContext<'_>,
    goal: &Goal,
    winner: &str,
    target_tip: Option<ObjectId>,
    commit: ObjectId,
    segment: Option<crate::store::SegmentWriter>,
    how: &'static str,
) -> Result<Promotion, GoalOpError> {
    let repo = acting.repo;
    let mut changes = vec![RefChange {
        name: goal.target.clone().into(),
        claim: match target_tip {
            Some(id) => Claim::Target(RefTarget::Direct(id)),
            None => Claim::Absent,
        },
        new: NewValue::Set(RefTarget::Direct(commit)),
    }];
    let archived = archive_changes(repo, &goal.name, &mut changes)?;
    let proposal = Proposal {
        via: Via::Promotion,
        caller: acting.caller.clone(),
        changes,
        goal: GoalPart {
            promotes: Some(Promotes {
                goal: goal.name.clone(),
                target: goal.target.clone(),
                required: goal.required.clone(),
            }),
            ..GoalPart::default()
        },
    };
    let sha1 = Sha1::from_hex(ctx.show_full(&commit).as_bytes())
        .map_err(|_| StoreError::MissingObject(commit.to_hex()))?;
    let write = GoalWrite {
        approaches: Vec::new(),
        end: Some(GoalEnd {
            goal: goal.name.clone(),
            state: GoalState::Promoted,
            winner: Some(winner.to_owned()),
            commit: Some(sha1.to_hex()),
            archived: archived.clone(),
        }),
    };
    ctx.apply_all(&proposal, segment, write)
        .map_err(goal_store_error)?
        .map_err(GoalOpError::Refused)?;
    provision::revoke_at_end(acting, &goal.name);
    Ok(Promotion::Landed {
        commit: sha1,
        how,
        archived,
    })
}

/// The changes that move every ref of the goal's space (approaches, merge queue) to the
/// archive; returns the archive's names.
fn archive_changes(
    repo: &Repo,
    goal: &str,
    changes: &mut Vec<RefChange>,
) -> Result<Vec<String>, GoalOpError> {
    let prefix = format!("{GOALS_PREFIX}{goal}/");
    let mut archived = Vec::new();
    for (name, target) in repo.refs()? {
        let Some(text) = name.to_str().ok().filter(|n| n.starts_with(&prefix)) else {
            continue;
        };
        let Some(to) = archived_of(text) else {
            continue;
        };
        changes.push(RefChange {
            name: name.clone(),
            claim: Claim::Target(target.clone()),
            new: NewValue::Delete,
        });
        changes.push(RefChange {
            name: BString::from(to.as_str()),
            claim: Claim::Absent,
            new: NewValue::Set(target),
        });
        archived.push(to);
    }
    Ok(archived)
}

/// Ends an open goal without a winner: its refs go to the archive, its claims end.
pub fn abandon(
    acting: &Acting<'_>,
    graph: &mut CommitGraph,
    goal: &str,
) -> Result<Vec<String>, GoalOpError> {
    let repo = acting.repo;
    let record = open_goal(repo, goal, "it ended already")?;
    let mut changes = Vec::new();
    let archived = archive_changes(repo, goal, &mut changes)?;
    let write = GoalWrite {
        approaches: Vec::new(),
        end: Some(GoalEnd {
            goal: record.name.clone(),
            state: GoalState::Abandoned,
            winner: None,
            commit: None,
            archived: archived.clone(),
        }),
    };
    if changes.is_empty() {
        // No refs to move: the goal's end is the whole write.
        repo.commit_goal(None, &[], &acting.caller.actor(), write)
            .map_err(goal_store_error)?;
        provision::revoke_at_end(acting, goal);
        return Ok(archived);
    }
    let anything = |_: &str| Ok(());
    let proposal = Proposal {
        via: Via::Promotion,
        caller: acting.caller.clone(),
        changes,
        goal: GoalPart::default(),
    };
    let mut ctx = StoredContext::new(repo, graph, acting.data, &anything)?;
    ctx.apply_all(&proposal, None, write)
        .map_err(goal_store_error)?
        .map_err(GoalOpError::Refused)?;
    provision::revoke_at_end(acting, goal);
    Ok(archived)
}

/// The goal's merge-queue commits (`refs/goals/<goal>/merge/<n>`), newest first.
fn merge_queue(refs: &BTreeMap<BString, RefTarget>, goal: &str) -> Vec<(u64, ObjectId)> {
    let prefix = merge_prefix(goal);
    let mut queue: Vec<(u64, ObjectId)> = refs
        .iter()
        .filter_map(|(name, value)| {
            let number = name.to_str().ok()?.strip_prefix(&prefix)?.parse().ok()?;
            direct(Some(value.clone())).map(|id| (number, id))
        })
        .collect();
    queue.sort_unstable_by_key(|q| std::cmp::Reverse(q.0));
    queue
}

/// The newest merge of the queue whose parents are the target's tip and the approach's.
fn queued_merge(
    repo: &Repo,
    queue: &[(u64, ObjectId)],
    target: ObjectId,
    tip: ObjectId,
) -> Result<Option<ObjectId>, GoalOpError> {
    for (_, id) in queue {
        let info = crate::browse::commit_info(repo, *id)
            .map_err(|e| StoreError::Corrupt(format!("merge-queue commit: {e}")))?;
        let parents: Vec<ObjectId> = info.parents.iter().map(|p| p.0).collect();
        if parents == [target, tip] {
            return Ok(Some(*id));
        }
    }
    Ok(None)
}

/// A merge made for a promotion: its objects in a segment not yet published.
struct Made {
    commit: ObjectId,
    commit_sha1: Sha1,
    /// The target's tip and the approach's it merges.
    ours: Sha1,
    theirs: Sha1,
    brought: Vec<(ObjectId, gate::Brought)>,
    segment: crate::store::SegmentWriter,
}

/// Merges the approach's tip into the target's, as `git merge-tree --write-tree` would,
/// and writes the merged tree's new objects and the merge commit to a new segment.
fn make_merge(
    repo: &Repo,
    goal: &Goal,
    approach: &Approach,
    target: ObjectId,
    tip: ObjectId,
    caller: &Caller,
) -> Result<Made, GoalOpError> {
    let sha1 = |id: &ObjectId| {
        repo.sha1_of(id)
            .ok_or_else(|| StoreError::MissingObject(id.to_hex()))
    };
    let (ours, theirs) = (sha1(&target)?, sha1(&tip)?);
    let labels = MergeLabels::new(goal.target.clone(), approach.ref_name());
    let outcome = crate::gitx::merge_commits(repo, ours, theirs, &labels, MergeLimits::default())
        .map_err(|error| GoalOpError::Merge {
        approach: approach.name.clone(),
        error,
    })?;
    if !outcome.clean {
        let mut paths: Vec<String> = outcome
            .conflicts
            .iter()
            .map(|c| c.path.to_str_lossy().into_owned())
            .collect();
        paths.dedup();
        return Err(GoalOpError::Conflict {
            approach: approach.name.clone(),
            target: goal.target.clone(),
            paths,
        });
    }
    let mut segment = repo.new_segment()?;
    let mut made: Vec<(Sha1, ObjectId)> = Vec::new();
    let mut brought = Vec::new();
    let resolve = |made: &[(Sha1, ObjectId)], sha1: Sha1| -> Result<ObjectId, StoreError> {
        made.iter()
            .find(|(s, _)| *s == sha1)
            .map(|(_, id)| *id)
            .or_else(|| repo.id_of_sha1(&sha1))
            .ok_or_else(|| StoreError::MissingObject(sha1.to_hex()))
    };
    let mut store = |made: &mut Vec<(Sha1, ObjectId)>,
                     kind: Kind,
                     body: &[u8],
                     parents: Vec<ObjectId>|
     -> Result<(ObjectId, Sha1), StoreError> {
        let sha1 = git_sha1(kind, body);
        if let Some(id) = repo.id_of_sha1(&sha1) {
            return Ok((id, sha1));
        }
        let (id, content) = if kind == Kind::Blob {
            (ObjectId::for_blob(body), body.to_vec())
        } else {
            let native = git_to_native(kind, body, |child| resolve(made, child))?;
            let encoded = encode(&native);
            (native_id(kind, &encoded), encoded)
        };
        segment.append_full(id, sha1, kind, &content)?;
        made.push((sha1, id));
        brought.push((
            id,
            gate::Brought {
                sha1,
                kind,
                parents,
            },
        ));
        Ok((id, sha1))
    };
    for object in &outcome.new_objects {
        store(&mut made, object.kind, &object.body, Vec::new())?;
    }
    let who = caller.actor().identity.unwrap_or_else(|| "operator".into());
    let signature = Signature {
        name: who.clone().into(),
        email: format!("{who}@forge").into(),
        time: (now_ms() / 1000) as i64,
        tz_offset_minutes: 0,
    };
    let message = format!(
        "Promote approach {} of goal {}\n\n{}\n",
        approach.name, goal.name, goal.title
    );
    let body = crate::git::format::merge_commit(
        outcome.tree,
        ours,
        theirs,
        &signature,
        &signature,
        &message,
    );
    let (commit, commit_sha1) = store(&mut made, Kind::Commit, &body, vec![target, tip])?;
    Ok(Made {
        commit,
        commit_sha1,
        ours,
        theirs,
        brought,
        segment,
    })
}
