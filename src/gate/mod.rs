//! The one gate every ref update passes: a push, an operator's `forge ref set` or
//! `delete`, a REST ref update, a goal's promotion. Each is a neutral [`RefChange`] inside a
//! [`Proposal`] saying who asks and through which path; [`decide`] answers each with a
//! typed [`Refusal`] or an [`Authorized`] update, the only kind `store::Repo::commit`
//! publishes. What a rule needs to know of the repository (its refs, objects, ancestry,
//! settings, what the caller's token allows) it asks of one [`GateContext`], which each
//! path implements over what it holds (a push: the objects it brought, not yet published).
//!
//! Rules by path: names pushed or sent over REST are git's names below `refs/` with two
//! levels at least (git's receive-pack rule); the operator may also name `HEAD` and delete
//! any stored name, so that a ref which should never have been accepted can be removed.
//! The default branch is protected from deletion and from non-fast-forward updates (unless
//! `allow-force`) on every path but the operator's, who repairs by hand.

mod goals;
mod policy;
mod refusal;
mod stored;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bstr::{BStr, BString, ByteSlice};

use crate::git::{check_ref_name, is_directory_of};
use crate::object::{Kind, ObjectId};
use crate::store::backend::AttestationRecord;
use crate::store::events::{Actor, EventKind, NewEvent, RefRefused, RefUpdated};
use crate::store::policy::RefRule;
use crate::store::{
    Authorized, DataDir, Expected, Identity, IdentityKind, RefTarget, RefUpdate, RepoSettings,
    StoreError,
};

pub use refusal::{Refusal, RefusalCode};
pub use stored::{Brought, StoredContext};

/// Through which path an update comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// git push over smart HTTP.
    Push,
    /// The REST API.
    Rest,
    /// The operator's `forge ref` commands, on the data directory itself.
    Admin,
    /// A goal's winning approach promoted onto its target ref.
    Promotion,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Push => "push",
            Via::Rest => "rest",
            Via::Admin => "admin",
            Via::Promotion => "promotion",
        }
    }

    /// Whether names must be git's pushable ones (two levels below `refs/`).
    fn needs_pushable_names(self) -> bool {
        !matches!(self, Via::Admin)
    }

    /// Whether the repository's protections of its default branch apply.
    fn is_protected(self) -> bool {
        !matches!(self, Via::Admin)
    }
}

/// Who asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The operator, with access to the data directory.
    Operator,
    /// The identity a token names, and its kind when the registry knows it (policies
    /// treat agents and humans apart: no self-approval by the agent that pushed).
    Identity {
        name: String,
        kind: Option<IdentityKind>,
    },
    /// A request without a token.
    Anonymous,
}

impl Caller {
    /// Who the events of this caller's changes name.
    pub fn actor(&self) -> Actor {
        match self {
            Caller::Operator => Actor::operator(),
            Caller::Identity { name, kind } => Actor {
                identity: Some(name.clone()),
                kind: kind.map_or("unknown", IdentityKind::as_str).to_owned(),
            },
            Caller::Anonymous => Actor {
                identity: None,
                kind: "anonymous".into(),
            },
        }
    }
}

/// What the caller believes the ref holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Whatever it holds (the operator's `forge ref set` without `--old`).
    Any,
    /// That it does not exist.
    Absent,
    Target(RefTarget),
    /// An object the server does not have (a push's old SHA-1 it never stored): stale.
    Unknown,
}

/// What the ref should become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewValue {
    Delete,
    Set(RefTarget),
    /// An object the caller named that the server does not have, as the caller named it.
    Missing(String),
}

/// One ref update, as neutral as the paths that propose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefChange {
    pub name: BString,
    pub claim: Claim,
    pub new: NewValue,
}

/// Updates proposed together (one push, one request).
#[derive(Debug, Clone)]
pub struct Proposal {
    pub via: Via,
    pub caller: Caller,
    pub changes: Vec<RefChange>,
    /// What the proposal says about the goals whose refs it writes.
    pub goal: GoalPart,
}

/// What a proposal carries for the refs of goals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoalPart {
    /// The claim lease the writer holds (`git push -o claim=<lease>`, REST's `Forge-Claim`).
    pub lease: Option<u64>,
    /// It creates an approach's ref (with the approach's record, in one commit).
    pub new_approach: bool,
    /// A promotion: the evidence its goal demands of the target's new tip.
    pub promotes: Option<Promotes>,
}

/// A goal's demand of a promotion's new target tip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promotes {
    pub goal: String,
    /// The branch promoted onto.
    pub target: String,
    pub required: Vec<crate::store::policy::RequiredAttestation>,
}

/// What the gate may ask about the repository. A path implements it over what it holds:
/// the refs as read under the lock that serialises its updates, and objects it is about to
/// publish as well as stored ones.
pub trait GateContext {
    /// The repository's name (`owner/name`), for messages that tell how to fix a refusal.
    fn repo_name(&self) -> &str;
    /// The URL of `path` (`/api/v1/…`) on this server as the caller reaches it, for hints
    /// that name an upload URL: absolute where the caller came over HTTP (behind a trusted
    /// proxy, the proxy's), the path itself otherwise.
    fn url_of(&self, path: &str) -> String {
        path.to_owned()
    }
    /// Every ref, as now.
    fn refs(&self) -> &BTreeMap<BString, RefTarget>;
    fn settings(&self) -> &RepoSettings;
    /// The kind of an object the store has or the update brings (`None`: neither).
    fn kind_of(&self, id: &ObjectId) -> Option<Kind>;
    /// Whether commit `old` is in the history of commit `new`.
    fn is_ancestor(&mut self, old: &ObjectId, new: &ObjectId) -> Result<bool, StoreError>;
    /// A merge commit among those in the history of commit `new` and in no history of
    /// `known` (the commits an update brings to a ref that had `known`), as `show_full`
    /// shows it.
    fn merge_brought(
        &mut self,
        new: &ObjectId,
        known: &[ObjectId],
    ) -> Result<Option<String>, StoreError>;
    /// Whether the caller may update this ref (a refusal is `RefusalCode::NotPermitted`).
    fn may_update(&self, name: &str) -> Result<(), Refusal>;
    /// An object as users know it (its SHA-1, abbreviated where git would).
    fn show(&self, id: &ObjectId) -> String;
    /// An object's full SHA-1 (hex), as commands that name it take it.
    fn show_full(&self, id: &ObjectId) -> String;
    /// The repository's ref rules.
    fn rules(&self) -> &[RefRule];
    /// Every identity (kinds, owners, and which keys still count).
    fn identities(&self) -> &[Identity];
    /// The attestations about a commit: stored ones, and those the update carries.
    fn attestations(&mut self, commit: &ObjectId) -> Result<Vec<AttestationRecord>, StoreError>;
    /// Something the caller should be told without a refusal (an evaluate-mode rule's
    /// verdict, a bypass).
    fn note(&mut self, text: String);
    /// The repository's goals, approaches and claims (none: the path knows of no goals,
    /// and refs of goals are refused).
    fn goals(&self) -> Option<&dyn crate::store::goals::GoalStore>;
}

/// The gate's answer to one change.
pub type Verdict = Result<Authorized, Refusal>;

/// Decides every change of a proposal, in order. Each change is checked on its own
/// (name, permission, claim, the new value, protections), then across the proposal (one
/// name twice; names that would be directories of each other).
pub fn decide(ctx: &mut dyn GateContext, proposal: &Proposal) -> Result<Vec<Verdict>, StoreError> {
    let mut verdicts = Vec::with_capacity(proposal.changes.len());
    for change in &proposal.changes {
        verdicts.push(decide_one(
            ctx,
            proposal.via,
            &proposal.caller,
            &proposal.goal,
            change,
        )?);
    }
    refuse_name_conflicts(ctx.refs(), &proposal.changes, &mut verdicts);
    Ok(verdicts)
}

fn decide_one(
    ctx: &mut dyn GateContext,
    via: Via,
    caller: &Caller,
    goal: &GoalPart,
    change: &RefChange,
) -> Result<Verdict, StoreError> {
    let name: &BStr = change.name.as_bstr();
    let current = ctx.refs().get(&change.name).cloned();
    if let Err(refusal) = check_name(via, name, &change.new, current.is_some()) {
        return Ok(Err(refusal));
    }
    let text = name.to_str_lossy();
    if let Err(refusal) = ctx.may_update(&text) {
        return Ok(Err(refusal));
    }
    let stale = match (&change.claim, &current) {
        (Claim::Any, _) | (Claim::Absent, None) => false,
        (Claim::Target(claimed), Some(now)) => claimed != now,
        _ => true,
    };
    if stale {
        let reason = match &current {
            Some(target) => format!(
                "fetch first: the ref is at {} on the server",
                show(ctx, target)
            ),
            None => "fetch first: the ref does not exist on the server".to_owned(),
        };
        return Ok(Err(Refusal::new(RefusalCode::Stale, reason)));
    }
    let expected = match &current {
        Some(target) => Expected::Value(target.clone()),
        None => Expected::Absent,
    };
    let is_default = default_branch(ctx.refs()).is_some_and(|branch| branch == name);
    let protected = via.is_protected() && is_default;
    let new = match &change.new {
        NewValue::Delete => {
            if current.is_none() {
                return Ok(Err(Refusal::new(
                    RefusalCode::NoSuchRef,
                    "the ref does not exist",
                )));
            }
            if protected {
                return Ok(Err(Refusal::new(
                    RefusalCode::CurrentBranch,
                    "refusing to delete the current branch",
                )));
            }
            None
        }
        NewValue::Missing(given) => {
            return Ok(Err(Refusal::new(
                RefusalCode::MissingObject,
                format!("missing object {given}"),
            )));
        }
        NewValue::Set(target) => Some(target.clone()),
    };
    if let Some(RefTarget::Direct(new_id)) = &new {
        let Some(kind) = ctx.kind_of(new_id) else {
            let shown = ctx.show(new_id);
            return Ok(Err(Refusal::new(
                RefusalCode::MissingObject,
                format!("missing object {shown}"),
            )));
        };
        if name.starts_with(b"refs/heads/") && kind != Kind::Commit {
            let kind = format!("{kind:?}").to_lowercase();
            return Ok(Err(Refusal::new(
                RefusalCode::NotACommit,
                format!("a branch must point to a commit, not a {kind}"),
            )));
        }
        if let Some(RefTarget::Direct(old_id)) = &current
            && old_id != new_id
            && protected
            && !ctx.settings().allow_force
            && !ctx.is_ancestor(old_id, new_id)?
        {
            return Ok(Err(Refusal::new(
                RefusalCode::NonFastForward,
                "non-fast-forward updates of the default branch are not allowed",
            )));
        }
    }
    let update = policy::Update {
        name: &text,
        current: current.as_ref(),
        new: new.as_ref(),
    };
    let fence = match goals::check(
        ctx,
        via,
        caller,
        goal,
        &text,
        current.is_none(),
        new.is_none(),
    )? {
        Ok(fence) => fence,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let checked = policy::check(ctx, caller, &update)?;
    if let Some(refusal) = checked.refusal {
        return Ok(Err(refusal));
    }
    if via == Via::Promotion
        && let Some(promotes) = &goal.promotes
        && promotes.target == text
        && let Some(RefTarget::Direct(new_id)) = &new
        && let Some(refusal) = goals::check_evidence(ctx, caller, promotes, new_id)?
    {
        return Ok(Err(refusal));
    }
    let forced = match (&current, &new) {
        (Some(RefTarget::Direct(old_id)), Some(RefTarget::Direct(new_id))) if old_id != new_id => {
            !(ctx.kind_of(old_id) == Some(Kind::Commit) && ctx.is_ancestor(old_id, new_id)?)
        }
        _ => false,
    };
    let event = NewEvent::now(
        caller.actor(),
        EventKind::RefUpdated(RefUpdated {
            name: text.into_owned(),
            before: current.as_ref().map(|t| shown_full(ctx, t)),
            after: new.as_ref().map(|t| shown_full(ctx, t)),
            created: current.is_none(),
            deleted: new.is_none(),
            forced,
            via: via.as_str().to_owned(),
            policy_notes: checked.passed,
        }),
    );
    let authorized = Authorized::by_gate(
        RefUpdate {
            name: change.name.clone(),
            expected,
            new,
        },
        event,
    );
    Ok(Ok(match fence {
        Some(fence) => authorized.fenced(fence),
        None => authorized,
    }))
}

/// The `ref.refused` events of a proposal's refused changes, for the outbox: agents read
/// why an update failed from the events as well as from the answer.
pub fn refusal_events(proposal: &Proposal, verdicts: &[Verdict]) -> Vec<NewEvent> {
    proposal
        .changes
        .iter()
        .zip(verdicts)
        .filter_map(|(change, verdict)| {
            let refusal = verdict.as_ref().err()?;
            Some(NewEvent::now(
                proposal.caller.actor(),
                EventKind::RefRefused(RefRefused {
                    name: change.name.to_str_lossy().into_owned(),
                    code: refusal.code().to_owned(),
                    reason: refusal.reason.clone(),
                    via: proposal.via.as_str().to_owned(),
                }),
            ))
        })
        .collect()
}

/// A ref's value as events show it: the full SHA-1, or `ref: NAME` for a symbolic ref.
fn shown_full(ctx: &dyn GateContext, target: &RefTarget) -> String {
    match target {
        RefTarget::Direct(id) => ctx.show_full(id),
        RefTarget::Symbolic(name) => format!("ref: {}", name.to_str_lossy()),
    }
}

/// The identities the rules may ask about: none are read when there are no rules, so an
/// update of a repository without a policy costs no registry read.
pub fn identities_for(rules: &[RefRule], data: &DataDir) -> Result<Vec<Identity>, StoreError> {
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    data.list_identities()
}

/// How `GateContext::show` names an object: its SHA-1 abbreviated to 12 digits, as git
/// does in messages (the native id when it has none).
pub fn abbreviated(sha1: Option<crate::object::Sha1>, id: &ObjectId) -> String {
    match sha1 {
        Some(sha1) => sha1.to_hex()[..12].to_owned(),
        None => id.to_hex()[..12].to_owned(),
    }
}

/// The branch `HEAD` names.
fn default_branch(refs: &BTreeMap<BString, RefTarget>) -> Option<&BStr> {
    match refs.get(b"HEAD".as_slice()) {
        Some(RefTarget::Symbolic(target)) => Some(target.as_bstr()),
        _ => None,
    }
}

fn show(ctx: &dyn GateContext, target: &RefTarget) -> String {
    match target {
        RefTarget::Direct(id) => ctx.show(id),
        RefTarget::Symbolic(to) => format!("ref: {}", to.as_bstr()),
    }
}

fn check_name(via: Via, name: &BStr, new: &NewValue, exists: bool) -> Result<(), Refusal> {
    let invalid = |reason: String| Refusal::new(RefusalCode::InvalidName, reason);
    if via.needs_pushable_names() {
        // git's receive-pack checks the name after `refs/` as a ref of its own, which needs
        // two levels: `refs/heads` itself (a directory of every branch) is refused.
        if !name.starts_with(b"refs/") || !name[5..].contains(&b'/') {
            return Err(invalid(
                "funny refname: only names of two levels below refs/ can be pushed".into(),
            ));
        }
    } else if *new == NewValue::Delete && exists {
        return Ok(());
    }
    check_ref_name(name).map_err(|reason| invalid(format!("invalid ref name: {reason}")))?;
    if name.to_str().is_err() {
        return Err(invalid("invalid ref name: not UTF-8".into()));
    }
    if let NewValue::Set(RefTarget::Symbolic(to)) = new {
        check_ref_name(to)
            .map_err(|reason| invalid(format!("invalid symbolic target: {reason}")))?;
    }
    Ok(())
}

/// Refuses what git's ref transaction refuses about names across updates: a ref named
/// twice, and a new ref that is a directory of another ref or below one (`refs/heads/a`
/// beside `refs/heads/a/b`), counting the refs this proposal deletes as gone.
fn refuse_name_conflicts(
    refs: &BTreeMap<BString, RefTarget>,
    changes: &[RefChange],
    verdicts: &mut [Verdict],
) {
    let mut seen: HashMap<&[u8], usize> = HashMap::new();
    for change in changes {
        *seen.entry(change.name.as_slice()).or_default() += 1;
    }
    for (change, verdict) in changes.iter().zip(verdicts.iter_mut()) {
        if seen[change.name.as_slice()] > 1 {
            *verdict = Err(Refusal::new(
                RefusalCode::Duplicate,
                format!(
                    "multiple updates for ref '{}' not allowed",
                    change.name.as_bstr()
                ),
            ));
        }
    }
    let deleted: BTreeSet<&[u8]> = verdicts
        .iter()
        .filter_map(|v| v.as_ref().ok())
        .filter(|a| a.update().new.is_none())
        .map(|a| a.update().name.as_slice())
        .collect();
    let remaining: BTreeSet<&[u8]> = refs
        .keys()
        .map(|name| name.as_slice())
        .filter(|name| name.starts_with(b"refs/") && !deleted.contains(name))
        .collect();
    let mut created: BTreeSet<&[u8]> = BTreeSet::new();
    for (change, verdict) in changes.iter().zip(verdicts.iter_mut()) {
        let Ok(authorized) = verdict else { continue };
        if authorized.update().new.is_none() || refs.contains_key(&change.name) {
            continue;
        }
        let name = change.name.as_slice();
        if let Some(existing) = directory_neighbour(&remaining, name) {
            *verdict = Err(Refusal::new(
                RefusalCode::NameConflict,
                format!(
                    "'{}' exists; cannot create '{}'",
                    existing.as_bstr(),
                    name.as_bstr()
                ),
            ));
        } else if let Some(other) = directory_neighbour(&created, name) {
            *verdict = Err(Refusal::new(
                RefusalCode::NameConflict,
                format!(
                    "cannot process '{}' and '{}' at the same time",
                    other.as_bstr(),
                    name.as_bstr()
                ),
            ));
        } else {
            created.insert(name);
        }
    }
}

/// A name of `names` that is a directory of `name`, or below it.
fn directory_neighbour<'a>(names: &BTreeSet<&'a [u8]>, name: &[u8]) -> Option<&'a [u8]> {
    let above = name
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'/')
        .find_map(|(i, _)| names.get(&name[..i]).copied());
    above.or_else(|| {
        let mut below = name.to_vec();
        below.push(b'/');
        names
            .range::<[u8], _>((
                std::ops::Bound::Included(below.as_slice()),
                std::ops::Bound::Unbounded,
            ))
            .next()
            .copied()
            .filter(|n| is_directory_of(name, n))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(byte: u8) -> ObjectId {
        ObjectId([byte; 32])
    }

    /// A repository of `refs`, objects of the given kinds, and commit 1 in the history of
    /// commit 2 but not of commit 3.
    struct Fixture {
        refs: BTreeMap<BString, RefTarget>,
        settings: RepoSettings,
        kinds: HashMap<ObjectId, Kind>,
        refused: Option<&'static str>,
    }

    impl GateContext for Fixture {
        fn repo_name(&self) -> &str {
            "alice/app"
        }
        fn refs(&self) -> &BTreeMap<BString, RefTarget> {
            &self.refs
        }
        fn settings(&self) -> &RepoSettings {
            &self.settings
        }
        fn kind_of(&self, id: &ObjectId) -> Option<Kind> {
            self.kinds.get(id).copied()
        }
        fn merge_brought(
            &mut self,
            _: &ObjectId,
            _: &[ObjectId],
        ) -> Result<Option<String>, StoreError> {
            Ok(None)
        }
        fn is_ancestor(&mut self, old: &ObjectId, new: &ObjectId) -> Result<bool, StoreError> {
            Ok(*old == id(1) && *new == id(2))
        }
        fn may_update(&self, name: &str) -> Result<(), Refusal> {
            match self.refused {
                Some(prefix) if name.starts_with(prefix) => Err(Refusal::new(
                    RefusalCode::NotPermitted,
                    "not allowed by token",
                )),
                _ => Ok(()),
            }
        }
        fn show(&self, id: &ObjectId) -> String {
            format!("<{}>", id.0[0])
        }
        fn show_full(&self, id: &ObjectId) -> String {
            format!("<{}>", id.0[0])
        }
        fn rules(&self) -> &[RefRule] {
            &[]
        }
        fn identities(&self) -> &[Identity] {
            &[]
        }
        fn attestations(&mut self, _: &ObjectId) -> Result<Vec<AttestationRecord>, StoreError> {
            Ok(Vec::new())
        }
        fn note(&mut self, _: String) {}
        fn goals(&self) -> Option<&dyn crate::store::goals::GoalStore> {
            None
        }
    }

    fn fixture() -> Fixture {
        let mut refs = BTreeMap::new();
        refs.insert(
            BString::from("HEAD"),
            RefTarget::Symbolic("refs/heads/main".into()),
        );
        refs.insert("refs/heads/main".into(), RefTarget::Direct(id(1)));
        refs.insert("refs/heads/topic".into(), RefTarget::Direct(id(1)));
        let kinds = [
            (1, Kind::Commit),
            (2, Kind::Commit),
            (3, Kind::Commit),
            (9, Kind::Blob),
        ]
        .into_iter()
        .map(|(b, k)| (id(b), k))
        .collect();
        Fixture {
            refs,
            settings: RepoSettings::default(),
            kinds,
            refused: None,
        }
    }

    fn change(name: &str, claim: Claim, new: NewValue) -> RefChange {
        RefChange {
            name: name.into(),
            claim,
            new,
        }
    }

    fn set(byte: u8) -> NewValue {
        NewValue::Set(RefTarget::Direct(id(byte)))
    }

    fn at(byte: u8) -> Claim {
        Claim::Target(RefTarget::Direct(id(byte)))
    }

    fn run(ctx: &mut Fixture, via: Via, changes: Vec<RefChange>) -> Vec<Verdict> {
        let proposal = Proposal {
            via,
            caller: Caller::Anonymous,
            changes,
            goal: GoalPart::default(),
        };
        decide(ctx, &proposal).unwrap()
    }

    fn one(ctx: &mut Fixture, via: Via, change: RefChange) -> Verdict {
        run(ctx, via, vec![change]).pop().unwrap()
    }

    fn refused(verdict: Verdict) -> (RefusalCode, String) {
        let refusal = verdict.unwrap_err();
        (refusal.code, refusal.reason)
    }

    #[test]
    fn fast_forwards_and_forced_updates_of_the_default_branch() {
        let ctx = &mut fixture();
        let ok = one(ctx, Via::Push, change("refs/heads/main", at(1), set(2))).unwrap();
        assert_eq!(
            ok.update(),
            &RefUpdate {
                name: "refs/heads/main".into(),
                expected: Expected::Value(RefTarget::Direct(id(1))),
                new: Some(RefTarget::Direct(id(2))),
            }
        );
        for via in [Via::Push, Via::Rest, Via::Promotion] {
            let (code, reason) = refused(one(ctx, via, change("refs/heads/main", at(1), set(3))));
            assert_eq!(code, RefusalCode::NonFastForward);
            assert_eq!(
                reason,
                "non-fast-forward updates of the default branch are not allowed"
            );
        }
        // Other branches may be forced; the default one when the repository allows it, and
        // by the operator, who repairs.
        assert!(one(ctx, Via::Push, change("refs/heads/topic", at(1), set(3))).is_ok());
        assert!(
            one(
                ctx,
                Via::Admin,
                change("refs/heads/main", Claim::Any, set(3))
            )
            .is_ok()
        );
        ctx.settings.allow_force = true;
        assert!(one(ctx, Via::Push, change("refs/heads/main", at(1), set(3))).is_ok());
    }

    #[test]
    fn claims_that_do_not_hold_are_stale() {
        let ctx = &mut fixture();
        for claim in [at(2), Claim::Absent, Claim::Unknown] {
            let (code, reason) = refused(one(
                ctx,
                Via::Push,
                change("refs/heads/main", claim, set(2)),
            ));
            assert_eq!(code, RefusalCode::Stale);
            assert_eq!(reason, "fetch first: the ref is at <1> on the server");
        }
        let (code, reason) = refused(one(ctx, Via::Push, change("refs/heads/new", at(1), set(2))));
        assert_eq!(code, RefusalCode::Stale);
        assert_eq!(reason, "fetch first: the ref does not exist on the server");
        // Whatever the claim, the update is held to the value the gate saw.
        let any = one(
            ctx,
            Via::Admin,
            change("refs/heads/topic", Claim::Any, set(2)),
        )
        .unwrap();
        assert_eq!(
            any.update().expected,
            Expected::Value(RefTarget::Direct(id(1)))
        );
        let new = one(
            ctx,
            Via::Push,
            change("refs/heads/new", Claim::Absent, set(2)),
        )
        .unwrap();
        assert_eq!(new.update().expected, Expected::Absent);
    }

    #[test]
    fn names_by_path() {
        let ctx = &mut fixture();
        for outside in ["HEAD", "refs/heads", "refs/x", "refs/"] {
            let (code, reason) = refused(one(ctx, Via::Push, change(outside, Claim::Any, set(2))));
            assert_eq!(code, RefusalCode::InvalidName);
            assert!(reason.starts_with("funny refname"), "{reason}");
        }
        let (_, reason) = refused(one(
            ctx,
            Via::Rest,
            change("refs/heads/a..b", Claim::Absent, set(2)),
        ));
        assert_eq!(reason, "invalid ref name: ref names must not contain '..'");
        let (_, reason) = refused(one(
            ctx,
            Via::Push,
            change("refs/heads/\u{fffd}\u{0}", Claim::Absent, set(2)),
        ));
        assert!(reason.starts_with("invalid ref name"), "{reason}");
        // The operator may point HEAD elsewhere, and delete a stored name git refuses.
        let head = NewValue::Set(RefTarget::Symbolic("refs/heads/topic".into()));
        assert!(one(ctx, Via::Admin, change("HEAD", Claim::Any, head)).is_ok());
        let bad_target = NewValue::Set(RefTarget::Symbolic("refs/heads/a..b".into()));
        let (_, reason) = refused(one(ctx, Via::Admin, change("HEAD", Claim::Any, bad_target)));
        assert!(reason.starts_with("invalid symbolic target"), "{reason}");
        ctx.refs
            .insert("refs/heads/bad..name".into(), RefTarget::Direct(id(1)));
        let delete = change("refs/heads/bad..name", Claim::Any, NewValue::Delete);
        assert!(one(ctx, Via::Admin, delete.clone()).is_ok());
        assert!(one(ctx, Via::Push, delete).is_err());
    }

    #[test]
    fn deletes_kinds_and_missing_objects() {
        let ctx = &mut fixture();
        let (code, reason) = refused(one(
            ctx,
            Via::Push,
            change("refs/heads/main", at(1), NewValue::Delete),
        ));
        assert_eq!(code, RefusalCode::CurrentBranch);
        assert_eq!(reason, "refusing to delete the current branch");
        let topic = one(
            ctx,
            Via::Push,
            change("refs/heads/topic", at(1), NewValue::Delete),
        );
        assert_eq!(topic.unwrap().update().new, None);
        let (code, reason) = refused(one(
            ctx,
            Via::Push,
            change("refs/heads/gone", Claim::Absent, NewValue::Delete),
        ));
        assert_eq!(
            (code, reason.as_str()),
            (RefusalCode::NoSuchRef, "the ref does not exist")
        );

        let (code, reason) = refused(one(
            ctx,
            Via::Push,
            change("refs/heads/blob", Claim::Absent, set(9)),
        ));
        assert_eq!(code, RefusalCode::NotACommit);
        assert_eq!(reason, "a branch must point to a commit, not a blob");
        assert!(
            one(
                ctx,
                Via::Push,
                change("refs/tags/blob", Claim::Absent, set(9))
            )
            .is_ok()
        );
        let (code, reason) = refused(one(
            ctx,
            Via::Admin,
            change("refs/tags/x", Claim::Absent, set(7)),
        ));
        assert_eq!(
            (code, reason.as_str()),
            (RefusalCode::MissingObject, "missing object <7>")
        );
        let missing = NewValue::Missing("abc".into());
        let (code, reason) = refused(one(
            ctx,
            Via::Push,
            change("refs/tags/y", Claim::Absent, missing),
        ));
        assert_eq!(
            (code, reason.as_str()),
            (RefusalCode::MissingObject, "missing object abc")
        );
    }

    #[test]
    fn the_token_is_asked_about_every_ref() {
        let ctx = &mut fixture();
        ctx.refused = Some("refs/heads/topic");
        let verdicts = run(
            ctx,
            Via::Push,
            vec![
                change("refs/heads/topic", at(1), set(2)),
                change("refs/tags/v1", Claim::Absent, set(2)),
            ],
        );
        let (code, reason) = refused(verdicts[0].clone());
        assert_eq!(
            (code, reason.as_str()),
            (RefusalCode::NotPermitted, "not allowed by token")
        );
        assert!(verdicts[1].is_ok());
    }

    #[test]
    fn names_across_a_proposal() {
        let ctx = &mut fixture();
        let twice = run(
            ctx,
            Via::Push,
            vec![
                change("refs/heads/x", Claim::Absent, set(2)),
                change("refs/heads/x", Claim::Absent, set(3)),
            ],
        );
        for verdict in twice {
            assert_eq!(
                refused(verdict).1,
                "multiple updates for ref 'refs/heads/x' not allowed"
            );
        }
        let (code, reason) = refused(one(
            ctx,
            Via::Admin,
            change("refs/heads/topic/deeper", Claim::Any, set(2)),
        ));
        assert_eq!(code, RefusalCode::NameConflict);
        assert_eq!(
            reason,
            "'refs/heads/topic' exists; cannot create 'refs/heads/topic/deeper'"
        );
        // A ref deleted in the same proposal is gone; two new ones may still collide.
        let replaced = run(
            ctx,
            Via::Push,
            vec![
                change("refs/heads/topic", at(1), NewValue::Delete),
                change("refs/heads/topic/deeper", Claim::Absent, set(2)),
                change("refs/tags/a", Claim::Absent, set(2)),
                change("refs/tags/a/b", Claim::Absent, set(2)),
            ],
        );
        assert!(replaced[0].is_ok() && replaced[1].is_ok() && replaced[2].is_ok());
        assert_eq!(
            refused(replaced[3].clone()).1,
            "cannot process 'refs/tags/a' and 'refs/tags/a/b' at the same time"
        );
    }
}
