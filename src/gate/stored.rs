//! The gate's context over what a repository has stored: for updates that bring no
//! objects of their own (the operator's `forge ref`, REST ref updates, promotions), or a
//! few made by the server itself (a commit made through REST), not yet published.

use std::collections::BTreeMap;

use bstr::BString;

use crate::history::CommitGraph;
use crate::object::{IdMap, Kind, ObjectId, Sha1};
use crate::store::backend::AttestationRecord;
use crate::store::policy::RefRule;
use crate::store::{
    DataDir, GoalWrite, Identity, RefTarget, Repo, RepoSettings, SegmentWriter, StoreError,
};

use super::{GateContext, Proposal, Refusal};

pub struct StoredContext<'a> {
    repo: &'a Repo,
    graph: &'a mut CommitGraph,
    refs: BTreeMap<BString, RefTarget>,
    settings: RepoSettings,
    rules: Vec<RefRule>,
    identities: Vec<Identity>,
    may_update: &'a dyn Fn(&str) -> Result<(), Refusal>,
    notes: Vec<String>,
    brought: IdMap<ObjectId, Brought>,
}

/// An object an update brings, written to a segment that is not published yet.
#[derive(Debug, Clone)]
pub struct Brought {
    pub sha1: Sha1,
    pub kind: Kind,
    /// A commit's parents (stored commits or brought ones).
    pub parents: Vec<ObjectId>,
}

impl<'a> StoredContext<'a> {
    /// Reads the refs, settings and rules now (and the registry's identities when there
    /// are rules); `graph` is the commit graph to load ancestry into (a server's, kept
    /// between requests, or a new one).
    pub fn new(
        repo: &'a Repo,
        graph: &'a mut CommitGraph,
        data: &DataDir,
        may_update: &'a dyn Fn(&str) -> Result<(), Refusal>,
    ) -> Result<StoredContext<'a>, StoreError> {
        let rules = repo.rules()?;
        let identities = super::identities_for(&rules, data)?;
        Ok(StoredContext {
            repo,
            graph,
            refs: repo.refs()?.into_iter().collect(),
            settings: repo.settings()?,
            rules,
            identities,
            may_update,
            notes: Vec::new(),
            brought: IdMap::default(),
        })
    }

    /// Reads the registry's identities if the rules did not: a promotion's goal asks about
    /// signers without a rule.
    pub fn with_identities(&mut self, data: &DataDir) -> Result<(), StoreError> {
        if self.identities.is_empty() {
            self.identities = data.list_identities()?;
        }
        Ok(())
    }

    fn sha1_of(&self, id: &ObjectId) -> Option<Sha1> {
        match self.brought.get(id) {
            Some(brought) => Some(brought.sha1),
            None => self.repo.sha1_of(id),
        }
    }

    /// Lets the gate see an object the update brings (in the segment `apply_one_with`
    /// publishes).
    pub fn bring(&mut self, id: ObjectId, object: Brought) {
        self.brought.insert(id, object);
    }

    /// What the gate noted without refusing (evaluate-mode verdicts, bypasses).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Decides a proposal of one change and publishes it when authorized, with its event;
    /// a refusal is recorded as a `ref.refused` event and returned.
    pub fn apply_one(&mut self, proposal: &Proposal) -> Result<Result<(), Refusal>, StoreError> {
        self.apply_one_with(proposal, None)
    }

    /// `apply_one`, publishing `segment` (the brought objects) in the same transaction as
    /// the ref; refused, the segment is dropped and nothing of it remains.
    pub fn apply_one_with(
        &mut self,
        proposal: &Proposal,
        segment: Option<SegmentWriter>,
    ) -> Result<Result<(), Refusal>, StoreError> {
        self.apply_all(proposal, segment, GoalWrite::default())
    }

    /// Decides every change of a proposal and publishes them all, with `segment` and what
    /// `goal` records, in one transaction, or none: the first refusal is returned (every
    /// refusal is recorded as a `ref.refused` event).
    pub fn apply_all(
        &mut self,
        proposal: &Proposal,
        segment: Option<SegmentWriter>,
        goal: GoalWrite,
    ) -> Result<Result<(), Refusal>, StoreError> {
        let verdicts = super::decide(self, proposal)?;
        if verdicts.is_empty() {
            return Err(StoreError::Corrupt("the gate gave no verdict".into()));
        }
        if let Some(refusal) = verdicts.iter().find_map(|v| v.as_ref().err()) {
            self.repo
                .record_events(super::refusal_events(proposal, &verdicts))?;
            return Ok(Err(refusal.clone()));
        }
        let authorized: Vec<_> = verdicts.into_iter().filter_map(Result::ok).collect();
        let committed = self
            .repo
            .commit_goal(segment, &authorized, &proposal.caller.actor(), goal);
        match committed {
            Ok(()) => Ok(Ok(())),
            // The approach's claim moved on after the decision.
            Err(StoreError::GoalRefused { code, message })
                if matches!(code, "approach_claimed" | "claim_lost") =>
            {
                Ok(Err(Refusal::of_goal(code, message)))
            }
            Err(e) => Err(e),
        }
    }
}

impl GateContext for StoredContext<'_> {
    fn repo_name(&self) -> &str {
        self.repo.name()
    }

    fn refs(&self) -> &BTreeMap<BString, RefTarget> {
        &self.refs
    }

    fn settings(&self) -> &RepoSettings {
        &self.settings
    }

    fn kind_of(&self, id: &ObjectId) -> Option<Kind> {
        match self.brought.get(id) {
            Some(brought) => Some(brought.kind),
            None => self.repo.locate(id)?.kind(),
        }
    }

    fn is_ancestor(&mut self, old: &ObjectId, new: &ObjectId) -> Result<bool, StoreError> {
        if let Some(brought) = self.brought.get(new) {
            let parents = brought.parents.clone();
            for parent in parents {
                if parent == *old || self.is_ancestor(old, &parent)? {
                    return Ok(true);
                }
            }
            return Ok(false);
        }
        let (Some(old), Some(new)) = (
            self.graph.load(self.repo, *old)?,
            self.graph.load(self.repo, *new)?,
        ) else {
            return Ok(false);
        };
        Ok(self.graph.reaches(&[new], old))
    }

    fn merge_brought(
        &mut self,
        new: &ObjectId,
        known: &[ObjectId],
    ) -> Result<Option<String>, StoreError> {
        if let Some(brought) = self.brought.get(new) {
            if brought.parents.len() > 1 {
                return Ok(Some(brought.sha1.to_hex()));
            }
            let parents = brought.parents.clone();
            for parent in parents {
                if !known.contains(&parent)
                    && let Some(merge) = self.merge_brought(&parent, known)?
                {
                    return Ok(Some(merge));
                }
            }
            return Ok(None);
        }
        let Some(new) = self.graph.load(self.repo, *new)? else {
            return Ok(None);
        };
        let mut known_commits = Vec::with_capacity(known.len());
        for id in known {
            known_commits.extend(self.graph.load(self.repo, *id)?);
        }
        let merge = self.graph.first_merge(&[new], &known_commits);
        Ok(merge.map(|i| self.show_full(&self.graph.node(i).id)))
    }

    fn may_update(&self, name: &str) -> Result<(), Refusal> {
        (self.may_update)(name)
    }

    fn show(&self, id: &ObjectId) -> String {
        super::abbreviated(self.sha1_of(id), id)
    }

    fn show_full(&self, id: &ObjectId) -> String {
        self.sha1_of(id).map_or_else(|| id.to_hex(), |s| s.to_hex())
    }

    fn rules(&self) -> &[RefRule] {
        &self.rules
    }

    fn identities(&self) -> &[Identity] {
        &self.identities
    }

    fn attestations(&mut self, commit: &ObjectId) -> Result<Vec<AttestationRecord>, StoreError> {
        match self.sha1_of(commit) {
            Some(sha1) => self.repo.attestations(&sha1),
            None => Ok(Vec::new()),
        }
    }

    fn note(&mut self, text: String) {
        tracing::info!("{}: {text}", self.repo.name());
        self.notes.push(text);
    }

    fn goals(&self) -> Option<&dyn crate::store::goals::GoalStore> {
        Some(self.repo.meta())
    }
}
