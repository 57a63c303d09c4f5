//! `forge ref list|show|set|delete`: an operator's way to look at and repair a repository's
//! refs by hand, with or without `forge serve` running on the same data directory.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use bstr::{BString, ByteSlice};
use clap::Subcommand;
use serde_json::json;

use super::{parse_name, print_json, user_error};
use crate::gate::{
    Caller, Claim, GoalPart, NewValue, Proposal, RefChange, RefusalCode, StoredContext, Via,
};
use crate::history::CommitGraph;
use crate::object::{HexPrefix, ObjectId};
use crate::store::{DataDir, RefTarget, Repo, StoreError};

#[derive(Subcommand)]
pub(super) enum RefCommand {
    /// List the refs (SHA-1, name; symbolic refs as `ref: TARGET`).
    List {
        repo: String,
        /// Only refs whose names start with this.
        #[arg(long)]
        prefix: Option<OsString>,
    },
    /// Show one ref: its SHA-1 and native id, or its target.
    Show { repo: String, name: OsString },
    /// Point a ref at an object the store has (SHA-1 or BLAKE3 id, or a unique prefix of
    /// at least 8 hex digits), or at another ref with --symbolic.
    Set {
        repo: String,
        name: OsString,
        /// The object (omit with --symbolic).
        value: Option<String>,
        /// Make it a symbolic ref to this ref (for example HEAD → refs/heads/main).
        #[arg(long, conflicts_with = "value")]
        symbolic: Option<OsString>,
        /// Only if the ref is at this object now (`none`: only if it does not exist).
        #[arg(long)]
        old: Option<String>,
    },
    /// Delete a ref, whatever its name (names git refuses included, so that a ref that
    /// breaks clones can be removed).
    Delete {
        repo: String,
        name: OsString,
        /// Only if the ref is at this object now.
        #[arg(long)]
        old: Option<String>,
    },
}

fn bytes(name: &OsString) -> BString {
    BString::from(name.as_bytes())
}

/// An object named by SHA-1 or native id (or a unique prefix) that the store has.
fn resolve(repo: &Repo, given: &str) -> anyhow::Result<ObjectId> {
    let prefix =
        HexPrefix::parse(given).map_err(|e| user_error("invalid_argument", e.to_string()))?;
    let found = repo.find_by_prefix(&prefix);
    match found.as_slice() {
        [one] => Ok(one.id()),
        [] => Err(user_error(
            "object_not_found",
            format!("no object {given} in {}", repo.name()),
        )),
        _ => Err(user_error(
            "ambiguous_id",
            format!("{given} names {} objects; give more digits", found.len()),
        )),
    }
}

/// The ref's value, or the error that it does not exist.
fn existing(repo: &Repo, name: &[u8]) -> anyhow::Result<RefTarget> {
    repo.read_ref(name)?.ok_or_else(|| {
        user_error(
            "ref_not_found",
            format!("no ref {} in {}", name.as_bstr(), repo.name()),
        )
    })
}

fn claim(repo: &Repo, old: Option<&str>) -> anyhow::Result<Claim> {
    Ok(match old {
        None => Claim::Any,
        Some("none") => Claim::Absent,
        Some(given) => Claim::Target(RefTarget::Direct(resolve(repo, given)?)),
    })
}

/// Passes the operator's change through the gate (as `Via::Admin`, which repairs: the
/// default branch's protections do not apply, but the repository's ref rules do) and
/// publishes it.
fn through_gate(data: &DataDir, repo: &Repo, change: RefChange) -> anyhow::Result<()> {
    let name = change.name.clone();
    let mut graph = CommitGraph::default();
    let anything = |_: &str| Ok(());
    let mut ctx = StoredContext::new(repo, &mut graph, data, &anything)?;
    let proposal = Proposal {
        via: Via::Admin,
        caller: Caller::Operator,
        changes: vec![change],
        goal: GoalPart::default(),
    };
    ctx.apply_one(&proposal)
        .map_err(store_error)?
        .map_err(|refusal| match refusal.code {
            RefusalCode::Stale => user_error(
                refusal.code(),
                format!(
                    "{} is not at the expected value (it changed, or --old is wrong)",
                    name.as_bstr()
                ),
            ),
            _ => user_error(refusal.code(), refusal.reason),
        })
}

fn describe(repo: &Repo, name: &[u8], target: &RefTarget) -> serde_json::Value {
    match target {
        RefTarget::Direct(id) => json!({
            "name": name.to_str_lossy(),
            "sha1": repo.sha1_of(id).map(|s| s.to_string()),
            "id": id.to_string(),
        }),
        RefTarget::Symbolic(to) => json!({
            "name": name.to_str_lossy(),
            "symbolic": to.to_str_lossy(),
        }),
    }
}

fn line(repo: &Repo, name: &[u8], target: &RefTarget) -> String {
    match target {
        RefTarget::Direct(id) => match repo.sha1_of(id) {
            Some(sha1) => format!("{sha1} {}", name.as_bstr()),
            None => format!("{id} {} (missing from the store)", name.as_bstr()),
        },
        RefTarget::Symbolic(to) => format!("ref: {} {}", to.as_bstr(), name.as_bstr()),
    }
}

fn store_error(e: StoreError) -> anyhow::Error {
    match e {
        StoreError::RefConflict { name, .. } => user_error(
            "ref_changed",
            format!("{name} changed while it was being updated; try again"),
        ),
        other => other.into(),
    }
}

pub(super) fn command(data_path: &Path, command: RefCommand, json: bool) -> anyhow::Result<()> {
    let data = DataDir::open(data_path)?;
    match command {
        RefCommand::List { repo, prefix } => {
            let repo = data.open_repo(&parse_name(&repo)?)?;
            let prefix = prefix.as_ref().map(bytes).unwrap_or_default();
            let refs: Vec<_> = repo
                .refs()?
                .into_iter()
                .filter(|(name, _)| name.starts_with(&prefix))
                .collect();
            if json {
                let listed: Vec<_> = refs.iter().map(|(n, t)| describe(&repo, n, t)).collect();
                print_json(json!({ "repo": repo.name(), "refs": listed }));
            } else {
                for (name, target) in &refs {
                    println!("{}", line(&repo, name, target));
                }
            }
        }
        RefCommand::Show { repo, name } => {
            let repo = data.open_repo(&parse_name(&repo)?)?;
            let name = bytes(&name);
            let target = existing(&repo, &name)?;
            if json {
                print_json(json!({ "repo": repo.name(), "ref": describe(&repo, &name, &target) }));
            } else {
                println!("{}", line(&repo, &name, &target));
            }
        }
        RefCommand::Set {
            repo,
            name,
            value,
            symbolic,
            old,
        } => {
            let repo = data.open_repo(&parse_name(&repo)?)?;
            let name = bytes(&name);
            let target = match (value, symbolic) {
                (Some(value), None) => RefTarget::Direct(resolve(&repo, &value)?),
                (None, Some(to)) => RefTarget::Symbolic(bytes(&to)),
                _ => {
                    return Err(user_error(
                        "invalid_argument",
                        "give the object to point at, or --symbolic REF",
                    ));
                }
            };
            let change = RefChange {
                name: name.clone(),
                claim: claim(&repo, old.as_deref())?,
                new: NewValue::Set(target.clone()),
            };
            through_gate(&data, &repo, change)?;
            if json {
                print_json(json!({ "repo": repo.name(), "ref": describe(&repo, &name, &target) }));
            } else {
                println!("{}", line(&repo, &name, &target));
            }
        }
        RefCommand::Delete { repo, name, old } => {
            let repo = data.open_repo(&parse_name(&repo)?)?;
            let name = bytes(&name);
            let current = existing(&repo, &name)?;
            let claim = match old {
                Some(_) => claim(&repo, old.as_deref())?,
                None => Claim::Target(current.clone()),
            };
            let change = RefChange {
                name: name.clone(),
                claim,
                new: NewValue::Delete,
            };
            through_gate(&data, &repo, change)?;
            if json {
                print_json(
                    json!({ "repo": repo.name(), "deleted": describe(&repo, &name, &current) }),
                );
            } else {
                println!("deleted {}", line(&repo, &name, &current));
            }
        }
    }
    Ok(())
}
