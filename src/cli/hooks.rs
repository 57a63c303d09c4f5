//! `forge hook add|list|change|remove|deliveries`: webhooks on the data directory, as the
//! REST API manages them (`docs/webhooks.md`); a running `forge serve` delivers them. Hooks
//! the operator adds act for no identity. The secret is read from `FORGE_HOOK_SECRET` or a
//! file, never from the command line, and never printed.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::json;

use super::{parse_name, print_json, user_error};
use crate::store::DataDir;
use crate::store::events::Actor;
use crate::store::hooks::{
    Delivery, DeliveryState, Hook, HookChange, HookError, HookScope, NewHook, check_events,
    check_secret, check_url,
};

#[derive(Subcommand)]
pub(super) enum HookCommand {
    /// Add a hook to a repository (OWNER/NAME) or, with `site`, for every event.
    Add(NewHookArgs),
    /// List the hooks of a repository, or the site-wide ones (`site`).
    List(Target),
    /// Change a hook: its URL, secret, event types, active flag.
    Change(ChangeArgs),
    /// Remove a hook with its delivery log.
    Remove {
        #[command(flatten)]
        target: Target,
        id: u64,
    },
    /// A hook's deliveries, newest first, with their attempts.
    Deliveries {
        #[command(flatten)]
        target: Target,
        id: u64,
        /// At most this many.
        #[arg(long, default_value_t = 30)]
        limit: usize,
    },
}

/// Whose hooks: a repository's, or the site's.
#[derive(Args)]
pub(super) struct Target {
    /// The repository, OWNER/NAME; or `site` for the site-wide hooks (every event of the
    /// data directory).
    target: String,
}

#[derive(Args)]
pub(super) struct NewHookArgs {
    #[command(flatten)]
    target: Target,
    /// Where deliveries are POSTed (http:// or https://).
    #[arg(long)]
    url: String,
    /// A file holding the secret that signs deliveries (X-Forge-Signature-256); or set
    /// FORGE_HOOK_SECRET. Trailing newlines are dropped.
    #[arg(long)]
    secret_file: Option<PathBuf>,
    /// Event types, comma-separated (default: every type).
    #[arg(long, value_delimiter = ',')]
    events: Vec<String>,
    /// Add it inactive.
    #[arg(long)]
    inactive: bool,
}

#[derive(Args)]
pub(super) struct ChangeArgs {
    #[command(flatten)]
    target: Target,
    id: u64,
    #[arg(long)]
    url: Option<String>,
    /// A file holding the new secret (or FORGE_HOOK_SECRET).
    #[arg(long)]
    secret_file: Option<PathBuf>,
    /// Remove the secret: deliveries are no longer signed.
    #[arg(long, conflicts_with = "secret_file")]
    no_secret: bool,
    /// Event types, comma-separated; an empty value for every type.
    #[arg(long, value_delimiter = ',')]
    events: Option<Vec<String>>,
    #[arg(long)]
    active: Option<bool>,
}

fn hook_error(error: HookError) -> anyhow::Error {
    match error {
        HookError::Store(e) => e.into(),
        other => user_error(other.code(), other.to_string()),
    }
}

/// The secret of `--secret-file`, else of `FORGE_HOOK_SECRET`, checked.
fn secret(file: Option<&Path>) -> anyhow::Result<Option<String>> {
    let secret = match file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| {
                    user_error("bad_secret", format!("cannot read {}: {e}", path.display()))
                })?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
        ),
        None => std::env::var("FORGE_HOOK_SECRET")
            .ok()
            .filter(|s| !s.is_empty()),
    };
    if let Some(secret) = &secret {
        check_secret(secret).map_err(hook_error)?;
    }
    Ok(secret)
}

/// The scope and repository name `target` names.
fn scope(data: &DataDir, target: &Target) -> anyhow::Result<(HookScope, Option<String>)> {
    if target.target == "site" {
        return Ok((HookScope::Site, None));
    }
    let name = parse_name(&target.target)?;
    let record = data
        .find_repo(&name)?
        .ok_or_else(|| crate::store::StoreError::RepoNotFound(name.to_string()))?;
    Ok((HookScope::Repo(record.id), Some(record.name)))
}

/// The hook `id` of the scope.
fn hook_of(data: &DataDir, scope: HookScope, id: u64) -> anyhow::Result<Hook> {
    match data.hooks().find_hook(id)? {
        Some(hook) if hook.scope == scope => Ok(hook),
        _ => Err(hook_error(HookError::NotFound(id))),
    }
}

fn view(hook: &Hook) -> serde_json::Value {
    json!({
        "id": hook.id,
        "url": hook.url,
        "events": hook.events,
        "active": hook.active,
        "has_secret": hook.secret.is_some(),
        "repo": hook.repo,
        "created_by": hook.created_by,
        "created_at": hook.created_at,
        "cursor": hook.cursor,
    })
}

fn describe(hook: &Hook) -> String {
    format!(
        "{}\t{}\t{}\t{}{}",
        hook.id,
        hook.url,
        if hook.events.is_empty() {
            "all events".to_owned()
        } else {
            hook.events.join(",")
        },
        if hook.active { "active" } else { "inactive" },
        if hook.secret.is_some() {
            "\tsigned"
        } else {
            ""
        }
    )
}

fn describe_delivery(delivery: &Delivery) -> String {
    let last = delivery
        .attempts
        .last()
        .map_or("-".to_owned(), |a| match (a.status, &a.error) {
            (Some(status), _) => format!("HTTP {status}"),
            (None, Some(error)) => error.clone(),
            (None, None) => "-".to_owned(),
        });
    let state = match delivery.state {
        DeliveryState::Pending => "pending",
        DeliveryState::Delivered => "delivered",
        DeliveryState::Failed => "failed",
    };
    format!(
        "{}\tevent {}\t{}\t{state}\t{} attempt(s)\t{last}",
        delivery.id,
        delivery.event.seq,
        delivery.event.kind.type_name(),
        delivery.attempts.len()
    )
}

pub(super) fn command(data_path: &Path, command: HookCommand, json: bool) -> anyhow::Result<()> {
    let data = DataDir::open(data_path)?;
    let actor = Actor::operator();
    match command {
        HookCommand::Add(args) => {
            let (scope, repo) = scope(&data, &args.target)?;
            check_url(&args.url).map_err(hook_error)?;
            let events = check_events(&args.events).map_err(hook_error)?;
            let hook = data
                .hooks()
                .add_hook(
                    &NewHook {
                        scope,
                        repo,
                        url: args.url,
                        secret: secret(args.secret_file.as_deref())?,
                        events,
                        active: !args.inactive,
                        created_by: None,
                        creator_incarnation: None,
                    },
                    &actor,
                )
                .map_err(hook_error)?;
            if json {
                print_json(json!({ "hook": view(&hook) }));
            } else {
                println!("added hook {}", describe(&hook));
            }
        }
        HookCommand::List(target) => {
            let (scope, _) = scope(&data, &target)?;
            let hooks = data.hooks().hooks(Some(scope))?;
            if json {
                print_json(json!({ "hooks": hooks.iter().map(view).collect::<Vec<_>>() }));
            } else {
                for hook in &hooks {
                    println!("{}", describe(hook));
                }
            }
        }
        HookCommand::Change(args) => {
            let (scope, _) = scope(&data, &args.target)?;
            let hook = hook_of(&data, scope, args.id)?;
            if let Some(url) = &args.url {
                check_url(url).map_err(hook_error)?;
            }
            let secret = if args.no_secret {
                Some(None)
            } else {
                secret(args.secret_file.as_deref())?.map(Some)
            };
            let events = match &args.events {
                Some(events) => {
                    let given: Vec<String> =
                        events.iter().filter(|e| !e.is_empty()).cloned().collect();
                    Some(check_events(&given).map_err(hook_error)?)
                }
                None => None,
            };
            let change = HookChange {
                url: args.url,
                secret,
                events,
                active: args.active,
            };
            let hook = data
                .hooks()
                .update_hook(hook.id, &change, &actor)
                .map_err(hook_error)?;
            if json {
                print_json(json!({ "hook": view(&hook) }));
            } else {
                println!("changed hook {}", describe(&hook));
            }
        }
        HookCommand::Remove { target, id } => {
            let (scope, _) = scope(&data, &target)?;
            let hook = hook_of(&data, scope, id)?;
            let removed = data
                .hooks()
                .remove_hook(hook.id, &actor)
                .map_err(hook_error)?;
            if json {
                print_json(json!({ "removed": view(&removed) }));
            } else {
                println!("removed hook {}", describe(&removed));
            }
        }
        HookCommand::Deliveries { target, id, limit } => {
            let (scope, _) = scope(&data, &target)?;
            let hook = hook_of(&data, scope, id)?;
            let deliveries = data
                .hooks()
                .deliveries(hook.id, None, limit.clamp(1, 1000))?;
            if json {
                let items: Vec<serde_json::Value> = deliveries
                    .iter()
                    .map(|d| {
                        json!({
                            "id": d.id,
                            "seq": d.event.seq,
                            "type": d.event.kind.type_name(),
                            "state": d.state,
                            "attempts": d.attempts,
                        })
                    })
                    .collect();
                print_json(json!({ "hook": hook.id, "deliveries": items }));
            } else {
                for delivery in &deliveries {
                    println!("{}", describe_delivery(delivery));
                }
            }
        }
    }
    Ok(())
}
