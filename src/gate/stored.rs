//! The gate's context over what a repository has stored: for updates that bring no
//! objects of their own (the operator's `forge ref`, REST ref updates, promotions).

use std::collections::BTreeMap;

use bstr::BString;

use crate::history::CommitGraph;
use crate::object::{Kind, ObjectId};
use crate::store::backend::AttestationRecord;
use crate::store::policy::RefRule;
use crate::store::{DataDir, Identity, RefTarget, Repo, RepoSettings, StoreError};

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
        })
    }

    /// What the gate noted without refusing (evaluate-mode verdicts, bypasses).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Decides a proposal of one change and publishes it when authorized, with its event;
    /// a refusal is recorded as a `ref.refused` event and returned.
    pub fn apply_one(&mut self, proposal: &Proposal) -> Result<Result<(), Refusal>, StoreError> {
        let verdicts = super::decide(self, proposal)?;
        let Some(verdict) = verdicts.first() else {
            return Err(StoreError::Corrupt("the gate gave no verdict".into()));
        };
        match verdict {
            Ok(authorized) => {
                self.repo.commit_with(
                    None,
                    std::slice::from_ref(authorized),
                    &[],
                    &proposal.caller.actor(),
                )?;
                Ok(Ok(()))
            }
            Err(refusal) => {
                self.repo
                    .record_events(super::refusal_events(proposal, &verdicts))?;
                Ok(Err(refusal.clone()))
            }
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
        self.repo.locate(id)?.kind()
    }

    fn is_ancestor(&mut self, old: &ObjectId, new: &ObjectId) -> Result<bool, StoreError> {
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
        super::abbreviated(self.repo.sha1_of(id), id)
    }

    fn show_full(&self, id: &ObjectId) -> String {
        self.repo
            .sha1_of(id)
            .map_or_else(|| id.to_hex(), |s| s.to_hex())
    }

    fn rules(&self) -> &[RefRule] {
        &self.rules
    }

    fn identities(&self) -> &[Identity] {
        &self.identities
    }

    fn attestations(&mut self, commit: &ObjectId) -> Result<Vec<AttestationRecord>, StoreError> {
        match self.repo.sha1_of(commit) {
            Some(sha1) => self.repo.attestations(&sha1),
            None => Ok(Vec::new()),
        }
    }

    fn note(&mut self, text: String) {
        tracing::info!("{}: {text}", self.repo.name());
        self.notes.push(text);
    }
}
