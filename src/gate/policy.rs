//! Ref policies in the gate: every rule whose glob matches the ref applies, and the most
//! restrictive wins (any violation refuses). A rule in evaluate mode reports what it would
//! refuse and refuses nothing; an identity on a rule's bypass list passes it, and the pass
//! is noted. Codes are stable and documented in `docs/policies.md`.

use crate::glob;
use crate::object::ObjectId;
use crate::store::backend::AttestationRecord;
use crate::store::policy::{RefRule, RequiredAttestation, Signers};
use crate::store::{Identity, RefTarget, StoreError};

use super::{Caller, GateContext, Refusal, RefusalCode};

/// A matching rule's objection to an update.
pub(super) struct Violation {
    code: &'static str,
    pub(super) message: String,
    pub(super) hints: Vec<String>,
}

/// What the update does to the ref.
pub(super) struct Update<'a> {
    pub name: &'a str,
    pub current: Option<&'a RefTarget>,
    /// `None` for a delete.
    pub new: Option<&'a RefTarget>,
}

pub(super) fn caller_name(caller: &Caller) -> Option<&str> {
    match caller {
        Caller::Identity { name, .. } => Some(name),
        _ => None,
    }
}

fn in_set(set: &[Signers], name: &str, identities: &[Identity]) -> bool {
    let identity = identities
        .iter()
        .find(|i| i.name.eq_ignore_ascii_case(name));
    set.iter().any(|member| match member {
        Signers::Anyone => true,
        Signers::Identity(wanted) => wanted.eq_ignore_ascii_case(name),
        Signers::Kind(kind) => identity.is_some_and(|i| i.kind == *kind),
    })
}

fn describe_set(set: &[Signers]) -> String {
    set.iter()
        .map(Signers::describe)
        .collect::<Vec<_>>()
        .join(" or ")
}

/// What the rules said of an update.
pub(super) struct Checked {
    /// The refusal of the first enforced rule that objects (the others' objections are
    /// its further lines).
    pub refusal: Option<Refusal>,
    /// Objections that did not refuse: bypasses and evaluate-mode verdicts, also noted to
    /// the caller; an authorized update's event records them.
    pub passed: Vec<String>,
}

/// Checks `update` against every rule matching its ref.
pub(super) fn check(
    ctx: &mut dyn GateContext,
    caller: &Caller,
    update: &Update<'_>,
) -> Result<Checked, StoreError> {
    let rules: Vec<RefRule> = ctx
        .rules()
        .iter()
        .filter(|rule| glob::matches(&rule.pattern, update.name))
        .cloned()
        .collect();
    let mut refusal: Option<Refusal> = None;
    let mut passed = Vec::new();
    // The new tip's evidence, read once for every rule that asks.
    let evidence = match update.new {
        Some(RefTarget::Direct(new)) if rules.iter().any(|r| !r.required.is_empty()) => {
            ctx.attestations(new)?
        }
        _ => Vec::new(),
    };
    for rule in &rules {
        let violations = violations(ctx, caller, rule, update, &evidence)?;
        if violations.is_empty() {
            continue;
        }
        let bypasser = caller_name(caller)
            .filter(|name| rule.bypass.iter().any(|b| b.eq_ignore_ascii_case(name)));
        for violation in violations {
            let line = format!(
                "{}: rule {} ({}) {}",
                violation.code, rule.id, rule.pattern, violation.message
            );
            if let Some(name) = bypasser {
                let note = format!("{name} bypassed {line}");
                ctx.note(note.clone());
                passed.push(note);
            } else if rule.evaluate_only {
                let note = format!("evaluate: would refuse: {line}");
                ctx.note(note.clone());
                passed.push(note);
            } else {
                match &mut refusal {
                    None => {
                        let mut first = Refusal::new(RefusalCode::Policy, line);
                        first.hints = violation.hints;
                        refusal = Some(first);
                    }
                    Some(first) => {
                        first.hints.push(line);
                        first.hints.extend(violation.hints);
                    }
                }
            }
        }
    }
    Ok(Checked { refusal, passed })
}

fn violations(
    ctx: &mut dyn GateContext,
    caller: &Caller,
    rule: &RefRule,
    update: &Update<'_>,
    evidence: &[AttestationRecord],
) -> Result<Vec<Violation>, StoreError> {
    let mut out = Vec::new();
    let action = match (update.current, update.new) {
        (None, _) => "create",
        (Some(_), None) => "delete",
        (Some(_), Some(_)) => "update",
    };
    let for_action = match action {
        "create" => &rule.creators,
        "delete" => &rule.deleters,
        _ => &rule.updaters,
    };
    for set in [&rule.writers, for_action] {
        let Some(set) = set else { continue };
        let allowed = caller_name(caller).is_some_and(|name| in_set(set, name, ctx.identities()));
        if !allowed {
            let message = if set.is_empty() {
                format!("lets nobody {action} it")
            } else {
                format!("lets only {} {action} it", describe_set(set))
            };
            out.push(Violation {
                code: "FORGE-P001",
                message,
                hints: Vec::new(),
            });
        }
    }
    if rule.fast_forward_only {
        match (update.current, update.new) {
            (Some(_), None) => out.push(Violation {
                code: "FORGE-P002",
                message: "allows no deletion (fast-forward only)".into(),
                hints: Vec::new(),
            }),
            (Some(RefTarget::Direct(old)), Some(RefTarget::Direct(new)))
                if old != new && !ctx.is_ancestor(old, new)? =>
            {
                out.push(Violation {
                    code: "FORGE-P002",
                    message: "allows fast-forward updates only".into(),
                    hints: vec![
                        "merge or rebase onto the ref's current commit, then push again".into(),
                    ],
                })
            }
            _ => {}
        }
    }
    if rule.linear_history
        && let Some(RefTarget::Direct(new)) = update.new
    {
        let known: Vec<ObjectId> = match update.current {
            Some(RefTarget::Direct(old)) => vec![*old],
            Some(_) => Vec::new(),
            // A new ref brings what no ref of the repository has.
            None => ctx
                .refs()
                .values()
                .filter_map(|target| match target {
                    RefTarget::Direct(id) => Some(*id),
                    _ => None,
                })
                .collect(),
        };
        if let Some(merge) = ctx.merge_brought(new, &known)? {
            out.push(Violation {
                code: "FORGE-P004",
                message: format!("requires linear history; {merge} is a merge commit"),
                hints: vec![
                    "rebase instead of merging (git rebase, or git pull --rebase), then push again"
                        .into(),
                ],
            });
        }
    }
    if let Some(RefTarget::Direct(new)) = update.new {
        for required in &rule.required {
            if let Some(violation) = missing_attestation(&*ctx, caller, required, new, evidence) {
                out.push(violation);
            }
        }
    }
    Ok(out)
}

/// Whether `new` has enough attestations meeting `required`; the violation says what is
/// missing and how to produce it.
pub(super) fn missing_attestation(
    ctx: &dyn GateContext,
    caller: &Caller,
    required: &RequiredAttestation,
    new: &ObjectId,
    evidence: &[AttestationRecord],
) -> Option<Violation> {
    let pusher = caller_name(caller);
    let mut signers: Vec<String> = Vec::new();
    for record in evidence
        .iter()
        .filter(|r| r.predicate_type == required.predicate_type)
    {
        if let Some(wanted) = &required.result
            && record.summary.as_deref() != Some(wanted.as_str())
        {
            continue;
        }
        for signer in &record.signers {
            let counts = crate::evidence::signer_counts(ctx.identities(), signer)
                && in_set(&required.signers, &signer.identity, ctx.identities())
                && !(required.not_pusher
                    && pusher.is_some_and(|p| p.eq_ignore_ascii_case(&signer.identity)));
            if counts && !signers.contains(&signer.identity) {
                signers.push(signer.identity.clone());
            }
        }
    }
    let needed = required.min_signers.max(1) as usize;
    if signers.len() >= needed {
        return None;
    }
    let commit = ctx.show_full(new);
    let result = required
        .result
        .as_ref()
        .map(|r| format!(" with result {r}"))
        .unwrap_or_default();
    let not_pusher = if required.not_pusher {
        ", not by the pusher"
    } else {
        ""
    };
    Some(Violation {
        code: "FORGE-P003",
        message: format!(
            "needs {needed} attestation(s) of {}{result} by {}{not_pusher} on {commit}; found {}",
            required.predicate_type,
            describe_set(&required.signers),
            signers.len()
        ),
        hints: vec![
            format!(
                "sign one: forge attest sign --key KEY --commit {commit} --predicate-type {} --predicate FILE.json",
                required.predicate_type
            ),
            format!(
                "then upload it (POST {}) or push with git push -o attest=<base64url envelope>",
                ctx.url_of(&format!("/api/v1/repos/{}/attestations", ctx.repo_name()))
            ),
        ],
    })
}
