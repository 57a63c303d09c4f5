//! Goals, approaches and claims in a repository's `repo.redb` (`GoalStore` for
//! `RedbMeta`), beside the refs their promotions move.

use redb::{ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::meta::RedbMeta;
use crate::store::backend::MetaWrite;
use crate::store::events::{
    Actor, ApproachInfo, ClaimInfo, EventKind, GoalEnded, GoalInfo, NewEvent,
};
use crate::store::goals::{
    Approach, ApproachState, ClaimRecord, Goal, GoalEnd, GoalError, GoalState, GoalStore,
    MAX_APPROACHES, NewGoal, check_approach_name, check_new_goal,
};
use crate::store::{Expected, StoreError};

/// Goal name → the goal (JSON).
const GOALS: TableDefinition<&str, &[u8]> = TableDefinition::new("goals");
/// `goal/approach` → the approach (JSON); a goal's approaches are a prefix scan.
const APPROACHES: TableDefinition<&str, &[u8]> = TableDefinition::new("goal_approaches");
/// `goal/approach` → its last claim (JSON).
const CLAIMS: TableDefinition<&str, &[u8]> = TableDefinition::new("goal_claims");
/// `lease` → the last lease given in this repository (leases only grow).
const GOAL_COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("goal_counters");
const LEASE: &str = "lease";

fn key(goal: &str, approach: &str) -> String {
    format!("{goal}/{approach}")
}

fn encode(record: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(record).expect("serialisable")
}

fn decode<T: DeserializeOwned>(what: &str, key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("{what} {key}: {e}")))
}

fn claim_info(claim: &ClaimRecord) -> ClaimInfo {
    ClaimInfo {
        goal: claim.goal.clone(),
        approach: claim.approach.clone(),
        lease: claim.lease,
        holder: claim.holder.clone(),
        expires_at: claim.expires_at,
    }
}

impl RedbMeta {
    fn read<T: DeserializeOwned>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        what: &str,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        let Some(table) = self.read_table(table)? else {
            return Ok(None);
        };
        let value = table.get(key).map_err(|e| self.error(e))?;
        value.map(|v| decode(what, key, v.value())).transpose()
    }

    fn read_in<T: DeserializeOwned>(
        &self,
        txn: &redb::WriteTransaction,
        table: TableDefinition<&str, &[u8]>,
        what: &str,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        let table = txn.open_table(table).map_err(|e| self.error(e))?;
        let value = table.get(key).map_err(|e| self.error(e))?;
        value.map(|v| decode(what, key, v.value())).transpose()
    }

    fn write_in(
        &self,
        txn: &redb::WriteTransaction,
        table: TableDefinition<&str, &[u8]>,
        key: &str,
        record: &impl Serialize,
    ) -> Result<(), StoreError> {
        let mut table = txn.open_table(table).map_err(|e| self.error(e))?;
        table
            .insert(key, encode(record).as_slice())
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// The goal, open at `now`, that a claim is taken on.
    fn open_goal_in(
        &self,
        txn: &redb::WriteTransaction,
        goal: &str,
        now: u64,
        what: &'static str,
    ) -> Result<Goal, GoalError> {
        let Some(record) = self.read_in::<Goal>(txn, GOALS, "goal", goal)? else {
            return Err(GoalError::NotFound(goal.to_owned()));
        };
        if record.state != GoalState::Open {
            return Err(GoalError::Closed {
                goal: goal.to_owned(),
                state: record.state.as_str(),
                what,
            });
        }
        if record.deadline.is_some_and(|deadline| now >= deadline) {
            return Err(GoalError::PastDeadline {
                goal: goal.to_owned(),
                what,
            });
        }
        Ok(record)
    }

    /// The live claim `lease` of `holder` on the approach, or why it is not one.
    fn current_claim_in(
        &self,
        txn: &redb::WriteTransaction,
        goal: &str,
        approach: &str,
        lease: u64,
        holder: &str,
        now: u64,
    ) -> Result<ClaimRecord, GoalError> {
        let claim: Option<ClaimRecord> =
            self.read_in(txn, CLAIMS, "claim", &key(goal, approach))?;
        match claim {
            Some(claim)
                if claim.live(now)
                    && claim.lease == lease
                    && claim.holder.eq_ignore_ascii_case(holder) =>
            {
                Ok(claim)
            }
            Some(claim) if claim.live(now) => Err(GoalError::lost(approach, lease, Some(&claim))),
            _ => Err(GoalError::lost(approach, lease, None)),
        }
    }
}

impl RedbMeta {
    /// Records the approaches of a write, each with the ref the write creates for it
    /// (`MetaWrite::approaches`), and their events.
    pub(super) fn add_approaches_in(
        &self,
        txn: &redb::WriteTransaction,
        write: &MetaWrite<'_>,
    ) -> Result<(), GoalError> {
        for approach in &write.approaches {
            check_approach_name(&approach.name)?;
            let ref_name = approach.ref_name();
            let created = write.refs.iter().any(|update| {
                update.name == ref_name.as_bytes()
                    && update.expected == Expected::Absent
                    && update.new.is_some()
            });
            if !created {
                return Err(GoalError::Invalid(format!(
                    "an approach is recorded with the creation of its ref {ref_name}"
                )));
            }
            let goal =
                self.open_goal_in(txn, &approach.goal, write.now, "no approach can be added")?;
            let slot = key(&approach.goal, &approach.name);
            if self
                .read_in::<Approach>(txn, APPROACHES, "approach", &slot)?
                .is_some()
            {
                return Err(GoalError::ApproachExists {
                    goal: approach.goal.clone(),
                    approach: approach.name.clone(),
                });
            }
            let max = goal.max_approaches.unwrap_or(MAX_APPROACHES);
            let count = {
                let table = txn.open_table(APPROACHES).map_err(|e| self.error(e))?;
                let (from, to) = goal_range(&approach.goal);
                table
                    .range(from.as_str()..to.as_str())
                    .map_err(|e| self.error(e))?
                    .count()
            };
            if count >= max as usize {
                return Err(GoalError::TooManyApproaches {
                    goal: approach.goal.clone(),
                    max,
                });
            }
            self.write_in(txn, APPROACHES, &slot, approach)?;
            self.append_event(
                txn,
                &NewEvent::now(
                    write.actor.clone().unwrap_or_else(Actor::operator),
                    EventKind::ApproachCreated(ApproachInfo {
                        goal: approach.goal.clone(),
                        name: approach.name.clone(),
                        r#ref: ref_name,
                        base: approach.base.clone(),
                    }),
                ),
            )?;
        }
        Ok(())
    }
}

impl RedbMeta {
    /// Refuses the write unless every fenced approach still has the claim its write was
    /// decided on (`MetaWrite::fences`).
    pub(super) fn check_fences_in(
        &self,
        txn: &redb::WriteTransaction,
        write: &MetaWrite<'_>,
    ) -> Result<(), GoalError> {
        for fence in &write.fences {
            let goal: Option<Goal> = self.read_in(txn, GOALS, "goal", &fence.goal)?;
            match goal {
                None => return Err(GoalError::NotFound(fence.goal.clone())),
                Some(goal) if goal.state != GoalState::Open => {
                    return Err(GoalError::Closed {
                        goal: fence.goal.clone(),
                        state: goal.state.as_str(),
                        what: "its approaches are archived",
                    });
                }
                Some(_) => {}
            }
            let slot = key(&fence.goal, &fence.approach);
            let approach: Option<Approach> = self.read_in(txn, APPROACHES, "approach", &slot)?;
            if approach.is_none_or(|a| a.state != ApproachState::Active) {
                return Err(GoalError::ApproachNotFound {
                    goal: fence.goal.clone(),
                    approach: fence.approach.clone(),
                });
            }
            let claim: Option<ClaimRecord> = self.read_in(txn, CLAIMS, "claim", &slot)?;
            let live = claim.filter(|c| c.live(write.now));
            match (fence.lease, live) {
                (None, None) => {}
                (Some(lease), Some(held)) if held.lease == lease => {}
                (Some(lease), live) => {
                    return Err(GoalError::lost(&fence.approach, lease, live.as_ref()));
                }
                (None, Some(held)) => {
                    return Err(GoalError::Held {
                        goal: fence.goal.clone(),
                        approach: fence.approach.clone(),
                        holder: held.holder,
                        lease: held.lease,
                        expires_at: held.expires_at,
                    });
                }
            }
        }
        Ok(())
    }

    /// Ends a goal with the write that moves its refs (`MetaWrite::goal_end`): records the
    /// winner, archives the approaches, ends live claims. The events it returns follow the
    /// write's own (its refs' `ref.updated`).
    pub(super) fn end_goal_in(
        &self,
        txn: &redb::WriteTransaction,
        write: &MetaWrite<'_>,
        end: &GoalEnd,
    ) -> Result<Vec<NewEvent>, GoalError> {
        let actor = write.actor.clone().unwrap_or_else(Actor::operator);
        let Some(mut goal) = self.read_in::<Goal>(txn, GOALS, "goal", &end.goal)? else {
            return Err(GoalError::NotFound(end.goal.clone()));
        };
        if goal.state != GoalState::Open {
            return Err(GoalError::Closed {
                goal: end.goal.clone(),
                state: goal.state.as_str(),
                what: "it ended already",
            });
        }
        goal.state = end.state;
        goal.winner = end.winner.clone();
        goal.promoted_commit = end.commit.clone();
        goal.updated_at = write.now;
        self.write_in(txn, GOALS, &goal.name, &goal)?;
        let (from, to) = goal_range(&end.goal);
        let mut approaches: Vec<Approach> = Vec::new();
        let mut claims: Vec<ClaimRecord> = Vec::new();
        {
            let table = txn.open_table(APPROACHES).map_err(|e| self.error(e))?;
            for row in table
                .range(from.as_str()..to.as_str())
                .map_err(|e| self.error(e))?
            {
                let (slot, value) = row.map_err(|e| self.error(e))?;
                approaches.push(decode("approach", slot.value(), value.value())?);
            }
            let table = txn.open_table(CLAIMS).map_err(|e| self.error(e))?;
            for row in table
                .range(from.as_str()..to.as_str())
                .map_err(|e| self.error(e))?
            {
                let (slot, value) = row.map_err(|e| self.error(e))?;
                claims.push(decode("claim", slot.value(), value.value())?);
            }
        }
        for mut approach in approaches {
            approach.state = if end.winner.as_deref() == Some(approach.name.as_str()) {
                ApproachState::Winner
            } else {
                ApproachState::Archived
            };
            self.write_in(
                txn,
                APPROACHES,
                &key(&approach.goal, &approach.name),
                &approach,
            )?;
        }
        let mut events = Vec::new();
        for mut claim in claims.into_iter().filter(|c| c.live(write.now)) {
            claim.released = true;
            self.write_in(txn, CLAIMS, &key(&claim.goal, &claim.approach), &claim)?;
            events.push(NewEvent::now(
                actor.clone(),
                EventKind::ClaimEnded(claim_info(&claim)),
            ));
        }
        let ended = GoalEnded {
            name: goal.name.clone(),
            target: goal.target.clone(),
            winner: end.winner.clone(),
            commit: end.commit.clone(),
            archived: end.archived.clone(),
        };
        events.push(NewEvent::now(
            actor,
            match end.state {
                GoalState::Promoted => EventKind::GoalPromoted(ended),
                _ => EventKind::GoalAbandoned(ended),
            },
        ));
        Ok(events)
    }
}

/// The keys of `goal`'s approaches: from `goal/` up to `goal0` (the byte after `/`).
fn goal_range(goal: &str) -> (String, String) {
    (format!("{goal}/"), format!("{goal}0"))
}

impl GoalStore for RedbMeta {
    fn create_goal(&self, goal: &NewGoal, actor: &Actor, now: u64) -> Result<Goal, GoalError> {
        check_new_goal(goal)?;
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        if self
            .read_in::<Goal>(&txn, GOALS, "goal", &goal.name)?
            .is_some()
        {
            return Err(GoalError::Exists(goal.name.clone()));
        }
        let record = Goal {
            name: goal.name.clone(),
            title: goal.title.clone(),
            description: goal.description.clone(),
            target: goal.target.clone(),
            required: goal.required.clone(),
            max_approaches: goal.max_approaches,
            deadline: goal.deadline,
            state: GoalState::Open,
            winner: None,
            promoted_commit: None,
            created_by: actor.identity.clone(),
            created_at: now,
            updated_at: now,
            provisioned: Vec::new(),
        };
        self.write_in(&txn, GOALS, &record.name, &record)?;
        self.append_event(
            &txn,
            &NewEvent::now(
                actor.clone(),
                EventKind::GoalCreated(GoalInfo {
                    name: record.name.clone(),
                    title: record.title.clone(),
                    target: record.target.clone(),
                    state: record.state.as_str().to_owned(),
                }),
            ),
        )?;
        txn.commit().map_err(|e| self.error(e))?;
        Ok(record)
    }

    fn find_goal(&self, name: &str) -> Result<Option<Goal>, StoreError> {
        self.read(GOALS, "goal", name)
    }

    fn list_goals(&self) -> Result<Vec<Goal>, StoreError> {
        let Some(table) = self.read_table(GOALS)? else {
            return Ok(Vec::new());
        };
        let mut goals = Vec::new();
        for row in table.iter().map_err(|e| self.error(e))? {
            let (name, value) = row.map_err(|e| self.error(e))?;
            goals.push(decode("goal", name.value(), value.value())?);
        }
        Ok(goals)
    }

    fn approaches(&self, goal: &str) -> Result<Vec<Approach>, StoreError> {
        let Some(table) = self.read_table(APPROACHES)? else {
            return Ok(Vec::new());
        };
        let (from, to) = goal_range(goal);
        let mut approaches = Vec::new();
        for row in table
            .range(from.as_str()..to.as_str())
            .map_err(|e| self.error(e))?
        {
            let (name, value) = row.map_err(|e| self.error(e))?;
            approaches.push(decode("approach", name.value(), value.value())?);
        }
        Ok(approaches)
    }

    fn add_provisioned(&self, goal: &str, ids: &[String], now: u64) -> Result<(), GoalError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        let mut record = self.open_goal_in(&txn, goal, now, "no agents can be provisioned")?;
        record.provisioned.extend(ids.iter().cloned());
        record.updated_at = now;
        self.write_in(&txn, GOALS, goal, &record)?;
        txn.commit().map_err(|e| self.error(e))?;
        Ok(())
    }

    fn claim_of(&self, goal: &str, approach: &str) -> Result<Option<ClaimRecord>, StoreError> {
        self.read(CLAIMS, "claim", &key(goal, approach))
    }

    fn claim(
        &self,
        goal: &str,
        approach: &str,
        holder: &Actor,
        ttl_ms: u64,
        now: u64,
    ) -> Result<ClaimRecord, GoalError> {
        let Some(name) = holder.identity.clone() else {
            return Err(GoalError::Invalid(
                "a claim is held by an identity; the operator holds none".into(),
            ));
        };
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        self.open_goal_in(&txn, goal, now, "its approaches cannot be claimed")?;
        let slot = key(goal, approach);
        if self
            .read_in::<Approach>(&txn, APPROACHES, "approach", &slot)?
            .is_none()
        {
            return Err(GoalError::ApproachNotFound {
                goal: goal.to_owned(),
                approach: approach.to_owned(),
            });
        }
        let current: Option<ClaimRecord> = self.read_in(&txn, CLAIMS, "claim", &slot)?;
        if let Some(held) = current.filter(|c| c.live(now)) {
            return Err(GoalError::Held {
                goal: goal.to_owned(),
                approach: approach.to_owned(),
                holder: held.holder,
                lease: held.lease,
                expires_at: held.expires_at,
            });
        }
        let lease = {
            let mut counters = txn.open_table(GOAL_COUNTERS).map_err(|e| self.error(e))?;
            let last = counters
                .get(LEASE)
                .map_err(|e| self.error(e))?
                .map_or(0, |v| v.value());
            counters
                .insert(LEASE, last + 1)
                .map_err(|e| self.error(e))?;
            last + 1
        };
        let claim = ClaimRecord {
            goal: goal.to_owned(),
            approach: approach.to_owned(),
            lease,
            holder: name,
            ttl_ms,
            expires_at: now.saturating_add(ttl_ms),
            heartbeats: 0,
            released: false,
            claimed_at: now,
        };
        self.write_in(&txn, CLAIMS, &slot, &claim)?;
        self.append_event(
            &txn,
            &NewEvent::now(holder.clone(), EventKind::ClaimTaken(claim_info(&claim))),
        )?;
        txn.commit().map_err(|e| self.error(e))?;
        Ok(claim)
    }

    fn heartbeat(
        &self,
        goal: &str,
        approach: &str,
        lease: u64,
        holder: &str,
        now: u64,
    ) -> Result<ClaimRecord, GoalError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        self.open_goal_in(&txn, goal, now, "its claims end with it")?;
        let mut claim = self.current_claim_in(&txn, goal, approach, lease, holder, now)?;
        claim.expires_at = claim.expires_at.max(now.saturating_add(claim.ttl_ms));
        claim.heartbeats += 1;
        self.write_in(&txn, CLAIMS, &key(goal, approach), &claim)?;
        txn.commit().map_err(|e| self.error(e))?;
        Ok(claim)
    }

    fn release(
        &self,
        goal: &str,
        approach: &str,
        lease: u64,
        holder: &Actor,
        now: u64,
    ) -> Result<ClaimRecord, GoalError> {
        let name = holder.identity.as_deref().unwrap_or("");
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        let mut claim = self.current_claim_in(&txn, goal, approach, lease, name, now)?;
        claim.released = true;
        self.write_in(&txn, CLAIMS, &key(goal, approach), &claim)?;
        self.append_event(
            &txn,
            &NewEvent::now(holder.clone(), EventKind::ClaimReleased(claim_info(&claim))),
        )?;
        txn.commit().map_err(|e| self.error(e))?;
        Ok(claim)
    }
}
