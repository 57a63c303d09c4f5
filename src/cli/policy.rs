//! `forge policy add|list|remove`: a repository's ref rules, which the gate enforces on
//! every path (push, REST, `forge ref`, promotion). `docs/policies.md` explains them.

use std::path::Path;

use clap::{Args, Subcommand};
use serde_json::json;

use super::{parse_name, print_json, user_error};
use crate::store::DataDir;
use crate::store::policy::{PolicyError, RefRule, RequiredAttestation, Signers};

#[derive(Subcommand)]
pub(super) enum PolicyCommand {
    /// Add a rule for the refs a glob matches (`*` one segment, `**` any).
    Add(Box<NewRule>),
    /// List the rules.
    List { repo: String },
    /// Remove a rule by its id.
    Remove { repo: String, id: u64 },
}

/// `forge policy add`: the rule as flags.
#[derive(Args)]
pub(super) struct NewRule {
    repo: String,
    /// The refs it covers, e.g. refs/heads/main or refs/heads/release/*.
    #[arg(long = "ref")]
    pattern: String,
    /// Report what the rule would refuse, refuse nothing.
    #[arg(long)]
    evaluate: bool,
    /// Who may create, update or delete matching refs: identities, `human`, `agent`
    /// (comma-separated).
    #[arg(long)]
    writers: Option<String>,
    /// Who may create matching refs (`nobody`: no one).
    #[arg(long)]
    creators: Option<String>,
    /// Who may move existing matching refs (`nobody`: no one).
    #[arg(long)]
    updaters: Option<String>,
    /// Who may delete matching refs (`nobody`: no one).
    #[arg(long)]
    deleters: Option<String>,
    /// Only fast-forward updates, no deletion.
    #[arg(long)]
    fast_forward_only: bool,
    /// No merge commits in what an update brings.
    #[arg(long)]
    linear_history: bool,
    /// A predicate type the new tip must be attested with (`test-result` for in-toto's).
    #[arg(long)]
    require: Option<String>,
    /// Who must have signed it: identities, `human`, `agent`, `anyone` (comma-separated).
    #[arg(long, default_value = "anyone")]
    signers: String,
    /// How many distinct signers.
    #[arg(long, default_value_t = 1)]
    min: u32,
    /// The result the attestation must carry (e.g. PASSED).
    #[arg(long)]
    result: Option<String>,
    /// The identity updating the ref does not count as a signer.
    #[arg(long)]
    not_pusher: bool,
    /// Identities that may pass the rule without meeting it (comma-separated).
    #[arg(long)]
    bypass: Option<String>,
}

fn describe(rule: &RefRule) -> String {
    let set = |set: &[Signers]| {
        if set.is_empty() {
            "nobody".to_owned()
        } else {
            set.iter()
                .map(Signers::as_text)
                .collect::<Vec<_>>()
                .join(",")
        }
    };
    let mut parts = vec![format!("{}\t{}", rule.id, rule.pattern)];
    if rule.evaluate_only {
        parts.push("evaluate".into());
    }
    for (label, members) in [
        ("writers", &rule.writers),
        ("creators", &rule.creators),
        ("updaters", &rule.updaters),
        ("deleters", &rule.deleters),
    ] {
        if let Some(members) = members {
            parts.push(format!("{label} {}", set(members)));
        }
    }
    if rule.fast_forward_only {
        parts.push("fast-forward-only".into());
    }
    if rule.linear_history {
        parts.push("linear-history".into());
    }
    for required in &rule.required {
        let mut text = format!(
            "requires {}×{} by {}",
            required.min_signers,
            required.predicate_type,
            set(&required.signers)
        );
        if let Some(result) = &required.result {
            text.push_str(&format!(" result {result}"));
        }
        if required.not_pusher {
            text.push_str(" not-pusher");
        }
        parts.push(text);
    }
    if !rule.bypass.is_empty() {
        parts.push(format!("bypass {}", rule.bypass.join(",")));
    }
    parts.join("\t")
}

fn policy_error(error: PolicyError) -> anyhow::Error {
    match error {
        PolicyError::Store(e) => e.into(),
        other => user_error(other.code(), other.to_string()),
    }
}

pub(super) fn command(data_path: &Path, command: PolicyCommand, json: bool) -> anyhow::Result<()> {
    let data = DataDir::open(data_path)?;
    match command {
        PolicyCommand::Add(new) => {
            let NewRule {
                repo,
                pattern,
                evaluate,
                writers,
                creators,
                updaters,
                deleters,
                fast_forward_only,
                linear_history,
                require,
                signers,
                min,
                result,
                not_pusher,
                bypass,
            } = *new;
            let repo = data.open_repo(&parse_name(&repo)?)?;
            let required = require
                .map(|predicate_type| RequiredAttestation {
                    predicate_type,
                    signers: Signers::parse_list(&signers),
                    min_signers: min,
                    result,
                    not_pusher,
                })
                .into_iter()
                .collect();
            let set = |text: Option<String>| text.map(|t| Signers::parse_list(&t));
            let rule = RefRule {
                id: 0,
                pattern,
                evaluate_only: evaluate,
                writers: set(writers),
                creators: set(creators),
                updaters: set(updaters),
                deleters: set(deleters),
                fast_forward_only,
                linear_history,
                required,
                bypass: bypass
                    .map(|b| b.split(',').map(|s| s.trim().to_owned()).collect())
                    .unwrap_or_default(),
            };
            let added = repo
                .add_rule(rule, &crate::store::events::Actor::operator())
                .map_err(policy_error)?;
            if json {
                print_json(json!({ "repo": repo.name(), "rule": added }));
            } else {
                println!("added rule {}", describe(&added));
            }
        }
        PolicyCommand::List { repo } => {
            let repo = data.open_repo(&parse_name(&repo)?)?;
            let rules = repo.rules()?;
            if json {
                print_json(json!({ "repo": repo.name(), "rules": rules }));
            } else {
                for rule in &rules {
                    println!("{}", describe(rule));
                }
            }
        }
        PolicyCommand::Remove { repo, id } => {
            let repo = data.open_repo(&parse_name(&repo)?)?;
            let removed = repo
                .remove_rule(id, &crate::store::events::Actor::operator())
                .map_err(policy_error)?;
            if json {
                print_json(json!({ "repo": repo.name(), "removed": removed }));
            } else {
                println!("removed rule {}", describe(&removed));
            }
        }
    }
    Ok(())
}
