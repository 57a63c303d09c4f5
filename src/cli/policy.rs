//! `forge policy add|list|remove`: a repository's ref rules, which the gate enforces on
//! every path (push, REST, `forge ref`, promotion). `docs/policies.md` explains them.

use std::path::Path;

use clap::Subcommand;
use serde_json::json;

use super::{parse_name, print_json, user_error};
use crate::attest::statement::TEST_RESULT_TYPE;
use crate::store::DataDir;
use crate::store::policy::{RefRule, RequiredAttestation, Signers};

#[derive(Subcommand)]
pub(super) enum PolicyCommand {
    /// Add a rule for the refs a glob matches (`*` one segment, `**` any).
    Add {
        repo: String,
        /// The refs it covers, e.g. refs/heads/main or refs/heads/release/*.
        #[arg(long = "ref")]
        pattern: String,
        /// Report what the rule would refuse, refuse nothing.
        #[arg(long)]
        evaluate: bool,
        /// Who may update matching refs: identities, `human`, `agent` (comma-separated).
        #[arg(long)]
        writers: Option<String>,
        /// Only fast-forward updates, no deletion.
        #[arg(long)]
        fast_forward_only: bool,
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
    },
    /// List the rules.
    List { repo: String },
    /// Remove a rule by its id.
    Remove { repo: String, id: u64 },
}

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn describe(rule: &RefRule) -> String {
    let mut parts = vec![format!("{}\t{}", rule.id, rule.pattern)];
    if rule.evaluate_only {
        parts.push("evaluate".into());
    }
    if let Some(writers) = &rule.writers {
        let names: Vec<String> = writers.iter().map(Signers::describe).collect();
        parts.push(format!("writers {}", names.join(",")));
    }
    if rule.fast_forward_only {
        parts.push("fast-forward-only".into());
    }
    for required in &rule.required {
        let signers: Vec<String> = required.signers.iter().map(Signers::describe).collect();
        let mut text = format!(
            "requires {}×{} by {}",
            required.min_signers,
            required.predicate_type,
            signers.join(",")
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

pub(super) fn command(data_path: &Path, command: PolicyCommand, json: bool) -> anyhow::Result<()> {
    let data = DataDir::open(data_path)?;
    match command {
        PolicyCommand::Add {
            repo,
            pattern,
            evaluate,
            writers,
            fast_forward_only,
            require,
            signers,
            min,
            result,
            not_pusher,
            bypass,
        } => {
            let repo = data.open_repo(&parse_name(&repo)?)?;
            crate::auth::glob::check(&pattern)
                .map_err(|e| user_error("invalid_argument", format!("--ref: {e}")))?;
            if !pattern.starts_with("refs/") {
                return Err(user_error(
                    "invalid_argument",
                    "--ref must start with refs/",
                ));
            }
            let required = match require {
                Some(kind) => {
                    let predicate_type = match kind.as_str() {
                        "test-result" => TEST_RESULT_TYPE.to_owned(),
                        uri if uri.contains(':') => uri.to_owned(),
                        other => {
                            return Err(user_error(
                                "invalid_argument",
                                format!(
                                    "--require takes test-result or a predicate type URI, not {other:?}"
                                ),
                            ));
                        }
                    };
                    if min == 0 {
                        return Err(user_error("invalid_argument", "--min must be at least 1"));
                    }
                    vec![RequiredAttestation {
                        predicate_type,
                        signers: list(&signers).iter().map(|s| Signers::parse(s)).collect(),
                        min_signers: min,
                        result,
                        not_pusher,
                    }]
                }
                None => Vec::new(),
            };
            let rule = RefRule {
                id: 0,
                pattern,
                evaluate_only: evaluate,
                writers: writers.map(|w| list(&w).iter().map(|s| Signers::parse(s)).collect()),
                fast_forward_only,
                required,
                bypass: bypass.map(|b| list(&b)).unwrap_or_default(),
            };
            if rule.writers.is_none() && !rule.fast_forward_only && rule.required.is_empty() {
                return Err(user_error(
                    "invalid_argument",
                    "a rule needs --writers, --fast-forward-only or --require",
                ));
            }
            let added = repo.add_rule(&rule)?;
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
            let removed = repo.remove_rule(id)?.ok_or_else(|| {
                user_error(
                    "rule_not_found",
                    format!("{} has no rule {id}", repo.name()),
                )
            })?;
            if json {
                print_json(json!({ "repo": repo.name(), "removed": removed }));
            } else {
                println!("removed rule {}", describe(&removed));
            }
        }
    }
    Ok(())
}
