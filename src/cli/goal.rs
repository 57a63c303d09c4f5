//! `forge goal …` and `forge provision`: exploration goals on the data directory, as the
//! operator (or on behalf of an identity, `--as NAME`, whose name the records and events
//! carry). The same operations as REST's `/api/v1/repos/{owner}/{name}/goals`.

use std::path::Path;

use clap::{Args, Subcommand};
use serde_json::json;

use super::{parse_name, print_json, user_error};
use crate::gate::Caller;
use crate::goals::provision::{Keys, ProvisionRequest};
use crate::goals::{Acting, GoalOpError, Promotion};
use crate::history::CommitGraph;
use crate::object::Sha1;
use crate::store::goals::{Goal, GoalError, NewGoal, approach_ref, now_ms};
use crate::store::policy::{RequiredAttestation, Signers};
use crate::store::{DataDir, RefTarget, Repo};

#[derive(Subcommand)]
pub(super) enum GoalCommand {
    /// Create a goal: a target branch that approaches compete to be promoted onto.
    Create(Box<NewGoalArgs>),
    /// List a repository's goals.
    List { repo: String },
    /// Show a goal, its approaches, their tips and live claims.
    Show { repo: String, goal: String },
    /// Add an approach: its ref `refs/goals/<goal>/<name>`, from the target's tip or a base.
    Approach {
        repo: String,
        goal: String,
        name: String,
        /// The commit to start from (SHA-1).
        #[arg(long)]
        base: Option<String>,
        #[command(flatten)]
        who: Who,
    },
    /// Claim an approach for an identity (one holder at a time; a new lease each).
    Claim {
        repo: String,
        goal: String,
        approach: String,
        /// The lease's time to live: 90s, 5m, 1h (bounded to 5 s – 1 h).
        #[arg(long)]
        ttl: Option<String>,
        #[command(flatten)]
        who: Holder,
    },
    /// Renew a live claim by its TTL.
    Heartbeat {
        repo: String,
        goal: String,
        approach: String,
        #[arg(long)]
        lease: u64,
        #[command(flatten)]
        who: Holder,
    },
    /// Give a claim up.
    Release {
        repo: String,
        goal: String,
        approach: String,
        #[arg(long)]
        lease: u64,
        #[command(flatten)]
        who: Holder,
    },
    /// Promote an approach onto the goal's target (fast-forward, merge, or the merge queue).
    Promote {
        repo: String,
        goal: String,
        approach: String,
        #[command(flatten)]
        who: Who,
    },
    /// End a goal without a winner: its refs go to the archive, its claims end.
    Abandon {
        repo: String,
        goal: String,
        #[command(flatten)]
        who: Who,
    },
}

/// Who acts: the operator unless `--as` names an identity.
#[derive(Args)]
pub(super) struct Who {
    /// Act as this identity (its name goes in the records and events).
    #[arg(long = "as")]
    identity: Option<String>,
}

/// The identity that holds a claim.
#[derive(Args)]
pub(super) struct Holder {
    /// The identity holding (or taking) the claim.
    #[arg(long = "as")]
    identity: String,
}

#[derive(Args)]
pub(super) struct NewGoalArgs {
    repo: String,
    name: String,
    #[arg(long)]
    title: String,
    #[arg(long, default_value = "")]
    description: String,
    /// The branch to promote onto (default: the repository's default branch).
    #[arg(long)]
    target: Option<String>,
    /// A predicate type a promotion's new target tip must be attested with
    /// (`test-result` for in-toto's).
    #[arg(long)]
    require: Option<String>,
    /// Who must have signed it (comma-separated identities, human, agent, anyone).
    #[arg(long, default_value = "anyone")]
    signers: String,
    /// The result it must carry (e.g. PASSED).
    #[arg(long)]
    result: Option<String>,
    #[arg(long)]
    max_approaches: Option<u32>,
    /// How long approaches may be added and claimed: 30m, 8h, 7d.
    #[arg(long)]
    time_budget: Option<String>,
    #[command(flatten)]
    who: Who,
}

/// `forge provision`: agents for a goal.
#[derive(Args)]
pub(super) struct ProvisionArgs {
    repo: String,
    goal: String,
    /// The human the agents belong to.
    #[arg(long)]
    owner: String,
    /// How many agents.
    #[arg(long)]
    agents: u32,
    /// Approaches given out in turn (comma-separated; made when missing).
    #[arg(long)]
    approaches: Option<String>,
    /// The tokens' lifetime: 1h, 1d, 7d (default 1d, at most 30d).
    #[arg(long)]
    ttl: Option<String>,
    /// Generate a key pair per agent (the private key is printed once).
    #[arg(long)]
    generate_keys: bool,
    /// The server's URL as agents reach it, for their clone URLs and environment files.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Write each agent's environment file to DIR/<identity>.env (mode 0600).
    #[arg(long)]
    env_dir: Option<std::path::PathBuf>,
}

fn goal_error(error: GoalError) -> anyhow::Error {
    match error {
        GoalError::Store(e) => e.into(),
        other => user_error(other.code(), other.to_string()),
    }
}

fn op_error(error: GoalOpError) -> anyhow::Error {
    match error {
        GoalOpError::Store(e) => e.into(),
        GoalOpError::Goal(e) => goal_error(e),
        GoalOpError::Refused(refusal) => {
            let mut text = refusal.reason.clone();
            for hint in &refusal.hints {
                text.push_str(&format!("\n  {hint}"));
            }
            user_error(refusal.code(), text)
        }
        other => user_error(other.code(), other.to_string()),
    }
}

/// The caller `--as` names, with its kind from the registry.
fn caller_of(data: &DataDir, identity: Option<&str>) -> anyhow::Result<Caller> {
    let Some(name) = identity else {
        return Ok(Caller::Operator);
    };
    let Some(record) = data.find_identity(name)? else {
        return Err(user_error(
            "identity_not_found",
            format!("identity {name} does not exist"),
        ));
    };
    Ok(Caller::Identity {
        name: record.name,
        kind: Some(record.kind),
    })
}

fn describe_goal(goal: &Goal) -> String {
    let mut text = format!(
        "{}\t{}\t{}\t{}",
        goal.name,
        goal.state.as_str(),
        goal.target,
        goal.title
    );
    if let Some(winner) = &goal.winner {
        text.push_str(&format!("\twinner {winner}"));
    }
    text
}

fn tip_of(repo: &Repo, name: &str) -> anyhow::Result<Option<String>> {
    Ok(match repo.read_ref(name.as_bytes())? {
        Some(RefTarget::Direct(id)) => repo.sha1_of(&id).map(|s| s.to_hex()),
        _ => None,
    })
}

pub(super) fn command(data_path: &Path, command: GoalCommand, json: bool) -> anyhow::Result<()> {
    let data = DataDir::open(data_path)?;
    let anything = |_: &str| Ok(());
    let acting = |repo, caller| Acting {
        repo,
        data: &data,
        caller,
        may_update: &anything,
    };
    match command {
        GoalCommand::Create(args) => {
            let NewGoalArgs {
                repo,
                name,
                title,
                description,
                target,
                require,
                signers,
                result,
                max_approaches,
                time_budget,
                who,
            } = *args;
            let repo = data.open_repo(&parse_name(&repo)?)?;
            let caller = caller_of(&data, who.identity.as_deref())?;
            let target = match target {
                Some(t) if t.starts_with("refs/") => t,
                Some(branch) => format!("refs/heads/{branch}"),
                None => match repo.read_ref(b"HEAD")? {
                    Some(RefTarget::Symbolic(to)) => to.to_string(),
                    _ => "refs/heads/main".into(),
                },
            };
            let budget = match time_budget {
                Some(text) => super::auth::parse_span("--time-budget", &text)?,
                None => None,
            };
            let required = require
                .map(|predicate_type| RequiredAttestation {
                    predicate_type,
                    signers: Signers::parse_list(&signers),
                    min_signers: 1,
                    result,
                    not_pusher: false,
                })
                .into_iter()
                .collect();
            let goal = NewGoal {
                name,
                title,
                description,
                target,
                required,
                max_approaches,
                deadline: budget.map(|b| now_ms().saturating_add(b.as_millis() as u64)),
            }
            .checked()
            .map_err(goal_error)?;
            let created = repo
                .create_goal(&goal, &caller.actor())
                .map_err(goal_error)?;
            if json {
                print_json(json!({ "repo": repo.name(), "goal": created }));
            } else {
                println!("created goal {}", describe_goal(&created));
            }
        }
        GoalCommand::List { repo } => {
            let repo = data.open_repo(&parse_name(&repo)?)?;
            let goals = repo.meta().list_goals()?;
            if json {
                print_json(json!({ "repo": repo.name(), "goals": goals }));
            } else {
                for goal in &goals {
                    println!("{}", describe_goal(goal));
                }
            }
        }
        GoalCommand::Show { repo, goal } => {
            let repo = data.open_repo(&parse_name(&repo)?)?;
            let record = repo
                .meta()
                .find_goal(&goal)?
                .ok_or_else(|| goal_error(GoalError::NotFound(goal.clone())))?;
            let now = now_ms();
            let mut approaches = Vec::new();
            for approach in repo.meta().approaches(&goal)? {
                let shown_ref = approach.current_ref();
                let claim = repo
                    .meta()
                    .claim_of(&goal, &approach.name)?
                    .filter(|c| c.live(now));
                approaches.push((approach, tip_of(&repo, &shown_ref)?, shown_ref, claim));
            }
            if json {
                let approaches: Vec<_> = approaches
                    .iter()
                    .map(|(a, tip, shown_ref, claim)| {
                        json!({ "approach": a, "ref": shown_ref, "tip": tip, "claim": claim })
                    })
                    .collect();
                print_json(json!({ "goal": record, "approaches": approaches }));
            } else {
                println!("{}", describe_goal(&record));
                for (approach, tip, shown_ref, claim) in &approaches {
                    let held = claim.as_ref().map_or(String::new(), |c| {
                        format!("\tclaimed by {} (lease {})", c.holder, c.lease)
                    });
                    println!(
                        "  {}\t{:?}\t{shown_ref}\t{}{held}",
                        approach.name,
                        approach.state,
                        tip.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        GoalCommand::Approach {
            repo,
            goal,
            name,
            base,
            who,
        } => {
            let repo = data.open_repo(&parse_name(&repo)?)?;
            let caller = caller_of(&data, who.identity.as_deref())?;
            let base = base
                .map(|b| {
                    Sha1::from_hex(b.as_bytes()).map_err(|_| {
                        user_error("invalid_argument", format!("{b:?} is not a SHA-1"))
                    })
                })
                .transpose()?;
            let mut graph = CommitGraph::default();
            let added =
                crate::goals::add_approach(&acting(&repo, caller), &mut graph, &goal, &name, base)
                    .map_err(op_error)?;
            if json {
                print_json(json!({ "approach": added, "ref": added.ref_name() }));
            } else {
                println!("added approach {} at {}", added.ref_name(), added.base);
            }
        }
        GoalCommand::Claim {
            repo,
            goal,
            approach,
            ttl,
            who,
        } => {
            let repo = data.open_repo(&parse_name(&repo)?)?;
            let caller = caller_of(&data, Some(&who.identity))?;
            let ttl = match ttl {
                Some(text) => {
                    super::auth::parse_span("--ttl", &text)?.map(|d| d.as_millis() as u64)
                }
                None => None,
            };
            let claim = repo
                .claim(&goal, &approach, &caller.actor(), ttl)
                .map_err(goal_error)?;
            if json {
                print_json(json!({ "claim": claim }));
            } else {
                println!(
                    "claimed {} with lease {} until {} ms (push with -o claim={})",
                    approach_ref(&goal, &approach),
                    claim.lease,
                    claim.expires_at,
                    claim.lease
                );
            }
        }
        GoalCommand::Heartbeat {
            repo,
            goal,
            approach,
            lease,
            who,
        } => {
            let repo = data.open_repo(&parse_name(&repo)?)?;
            let caller = caller_of(&data, Some(&who.identity))?;
            let holder = caller.actor().identity.unwrap_or_default();
            let claim = repo
                .heartbeat(&goal, &approach, lease, &holder)
                .map_err(goal_error)?;
            if json {
                print_json(json!({ "claim": claim }));
            } else {
                println!(
                    "lease {} renewed until {} ms",
                    claim.lease, claim.expires_at
                );
            }
        }
        GoalCommand::Release {
            repo,
            goal,
            approach,
            lease,
            who,
        } => {
            let repo = data.open_repo(&parse_name(&repo)?)?;
            let caller = caller_of(&data, Some(&who.identity))?;
            let claim = repo
                .release(&goal, &approach, lease, &caller.actor())
                .map_err(goal_error)?;
            if json {
                print_json(json!({ "claim": claim }));
            } else {
                println!("released lease {}", claim.lease);
            }
        }
        GoalCommand::Promote {
            repo,
            goal,
            approach,
            who,
        } => {
            let repo = data.open_repo(&parse_name(&repo)?)?;
            let caller = caller_of(&data, who.identity.as_deref())?;
            let mut graph = CommitGraph::default();
            let promoted =
                crate::goals::promote(&acting(&repo, caller), &mut graph, &goal, &approach)
                    .map_err(op_error)?;
            match promoted {
                Promotion::Landed {
                    commit,
                    how,
                    archived,
                } => {
                    if json {
                        print_json(json!({
                            "state": "landed", "commit": commit.to_hex(), "how": how, "archived": archived,
                        }));
                    } else {
                        println!("promoted {approach} onto the target at {commit} ({how})");
                    }
                }
                Promotion::Queued { r#ref, commit } => {
                    if json {
                        print_json(json!({
                            "state": "queued", "commit": commit.to_hex(), "ref": r#ref,
                        }));
                    } else {
                        println!(
                            "merge {commit} queued at {ref}: attest it, then promote again",
                            ref = r#ref
                        );
                    }
                }
            }
        }
        GoalCommand::Abandon { repo, goal, who } => {
            let repo = data.open_repo(&parse_name(&repo)?)?;
            let caller = caller_of(&data, who.identity.as_deref())?;
            let mut graph = CommitGraph::default();
            let archived = crate::goals::abandon(&acting(&repo, caller), &mut graph, &goal)
                .map_err(op_error)?;
            if json {
                print_json(json!({ "goal": goal, "state": "abandoned", "archived": archived }));
            } else {
                println!("abandoned {goal}; archived {}", archived.join(", "));
            }
        }
    }
    Ok(())
}

pub(super) fn provision(data_path: &Path, args: ProvisionArgs, json: bool) -> anyhow::Result<()> {
    let data = DataDir::open(data_path)?;
    let name = parse_name(&args.repo)?;
    let repo = data.open_repo(&name)?;
    let ttl = match args.ttl {
        Some(text) => super::auth::parse_span("--ttl", &text)?
            .ok_or_else(|| user_error("invalid_argument", "provisioned tokens expire"))?,
        None => crate::goals::provision::DEFAULT_AGENT_TTL,
    };
    let request = ProvisionRequest {
        repo: name.clone(),
        goal: args.goal.clone(),
        owner: args.owner,
        count: args.agents,
        approaches: args
            .approaches
            .map(|a| a.split(',').map(|s| s.trim().to_owned()).collect())
            .unwrap_or_default(),
        ttl,
        keys: if args.generate_keys {
            Keys::Generate
        } else {
            Keys::None
        },
        parents: Vec::new(),
    };
    let anything = |_: &str| Ok(());
    let acting = Acting {
        repo: &repo,
        data: &data,
        caller: Caller::Operator,
        may_update: &anything,
    };
    let root = crate::auth::root_key(&data)?;
    let mut graph = CommitGraph::default();
    let agents = crate::goals::provision::provision(&acting, &mut graph, &root, &request)
        .map_err(op_error)?;
    if let Some(dir) = &args.env_dir {
        std::fs::create_dir_all(dir)?;
        for agent in &agents {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let path = dir.join(format!("{}.env", agent.identity));
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| user_error("invalid_argument", format!("{}: {e}", path.display())))?;
            file.write_all(agent.env_file(&name, &args.goal, &args.url).as_bytes())?;
        }
    }
    if json {
        let agents: Vec<_> = agents
            .iter()
            .map(|a| {
                json!({
                    "agent": a,
                    "clone_url": a.clone_url(&name, &args.url),
                    "env": a.env_file(&name, &args.goal, &args.url),
                })
            })
            .collect();
        print_json(json!({ "repo": name.to_string(), "goal": args.goal, "agents": agents }));
    } else {
        for agent in &agents {
            println!(
                "{}\t{}\t{}",
                agent.identity,
                agent.r#ref,
                agent.clone_url(&name, &args.url)
            );
        }
    }
    Ok(())
}
