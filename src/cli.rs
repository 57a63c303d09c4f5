//! The `forge` command line: parsing, dispatch, and human or JSON output.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use serde_json::json;

mod attest;
mod auth;
mod goal;
mod hooks;
mod pipeline;
mod policy;
mod refs;
mod serve;
mod watch;

use crate::object::{HexPrefix, Kind, ObjectId, Sha1};
use crate::progress::Progress;
use crate::store::{DataDir, RepoName, RepoRecord, Setting, SettingError, StoreError};

#[derive(Parser)]
#[command(
    name = "forge",
    version,
    about = "A self-hosted git forge whose objects live in a native BLAKE3-addressed store"
)]
struct Cli {
    /// Data directory.
    #[arg(
        long,
        global = true,
        env = "FORGE_DATA",
        default_value = "./forge-data"
    )]
    data: PathBuf,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the forge over HTTP or HTTPS (initializes the data directory on first start).
    /// Settings come from flags, FORGE_* environment variables and a TOML file (--config),
    /// in that order of precedence.
    Serve(Box<serve::ServeArgs>),
    /// Create and list repositories.
    #[command(subcommand)]
    Repo(RepoCommand),
    /// List, show, set and delete a repository's refs by hand (to repair one).
    #[command(subcommand)]
    Ref(refs::RefCommand),
    /// Add and list identities (humans and agents).
    #[command(subcommand)]
    Identity(auth::IdentityCommand),
    /// Issue, narrow, inspect and revoke capability tokens.
    #[command(subcommand)]
    Token(auth::TokenCommand),
    /// Write a new Ed25519 key pair for signing attestations (the secret file is mode
    /// 0600 and never overwritten); prints the public key.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign and verify attestations (DSSE envelopes of in-toto statements), offline.
    #[command(subcommand)]
    Attest(attest::AttestCommand),
    /// Add, list and remove a repository's ref rules (who may update, fast-forward only,
    /// required attestations), enforced on every path a ref moves by.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Exploration goals: approaches tried in parallel, claims with leases, promotion of
    /// the winner (docs/goals.md).
    #[command(subcommand)]
    Goal(goal::GoalCommand),
    /// Create a goal's agents: identities owned by a human, each with an approach and a
    /// token narrowed to its ref; prints their clone URLs (and environment files).
    Provision(Box<goal::ProvisionArgs>),
    /// Webhooks: add, list, change, remove, and their deliveries (docs/webhooks.md).
    #[command(subcommand)]
    Hook(hooks::HookCommand),
    /// Local CI: run `.forge/pipeline.toml` of a commit in a clean checkout and sign the
    /// test result (in a git work tree; no data directory).
    #[command(subcommand)]
    Pipeline(pipeline::PipelineCommand),
    /// Print events as they happen: of the data directory, or of a forge's event stream
    /// (`--server URL --token TOKEN`).
    Watch(watch::Watch),
    /// The event log: remove what a retention bound no longer keeps.
    #[command(subcommand)]
    Events(watch::EventsCommand),
    /// Import every object and ref of a local git repository (bare or not).
    Import {
        /// Target repository, created if it does not exist.
        repo: String,
        git_dir: PathBuf,
    },
    /// Write a bare git repository generated from the native store.
    Export { repo: String, out_dir: PathBuf },
    /// Rebuild the clone pack of the pack tier (git packs derived from the native store, from
    /// which clones and fetches are served).
    Repack {
        repo: String,
        /// Rebuild even when the clone pack already matches the branches and tags.
        #[arg(long)]
        force: bool,
    },
    /// Re-derive every id and check that every ref reaches a complete history.
    Fsck {
        /// One repository; all of them when omitted.
        repo: Option<String>,
    },
    /// Show an object's type and both ids, given a SHA-1 or BLAKE3 id or a prefix (≥ 8 hex digits).
    ShowId { repo: String, id: String },
}

#[derive(Subcommand)]
enum RepoCommand {
    /// Create an empty repository.
    Create { name: String },
    /// List repositories.
    List,
    /// Show or change a repository setting. `allow-force` (true|false, default false):
    /// whether pushes may rewrite the default branch's history. `fsck-objects`
    /// (true|false, default true): whether pushed objects must pass git's fsck checks
    /// (false to mirror old history git refuses). `public` (true|false, default false):
    /// whether anyone may read it without a token.
    Config {
        name: String,
        key: String,
        value: Option<String>,
    },
}

/// A failure the user caused or can fix, with a stable code for `--json`.
#[derive(Debug)]
struct UserError {
    code: &'static str,
    message: String,
}

impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UserError {}

fn user_error(code: &'static str, message: impl Into<String>) -> anyhow::Error {
    UserError {
        code,
        message: message.into(),
    }
    .into()
}

fn setting_error(error: SettingError) -> anyhow::Error {
    user_error(error.code(), error.to_string())
}

fn error_code(error: &anyhow::Error) -> &'static str {
    if let Some(e) = error.downcast_ref::<UserError>() {
        return e.code;
    }
    for cause in error.chain() {
        if let Some(store) = cause.downcast_ref::<StoreError>() {
            return store.code();
        }
        if let Some(import) = cause.downcast_ref::<crate::import::ImportError>() {
            return import.code();
        }
        if cause.downcast_ref::<crate::export::ExportError>().is_some() {
            return "export_failed";
        }
        if let Some(config) = cause.downcast_ref::<serve::ConfigError>() {
            return config.code();
        }
        if cause
            .downcast_ref::<crate::server::tls::TlsError>()
            .is_some()
        {
            return "bad_tls";
        }
    }
    "error"
}

pub fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let json = cli.json;
    match run(cli, &matches) {
        Ok(code) => code,
        Err(error) => {
            if json {
                println!(
                    "{}",
                    json!({"error": {"code": error_code(&error), "message": format!("{error:#}")}})
                );
            } else {
                eprintln!("error: {error:#}");
            }
            ExitCode::FAILURE
        }
    }
}

fn parse_name(name: &str) -> anyhow::Result<RepoName> {
    Ok(RepoName::parse(name).map_err(StoreError::from)?)
}

fn print_json(value: serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(&value).expect("JSON values serialise")
    );
}

fn run(cli: Cli, top: &ArgMatches) -> anyhow::Result<ExitCode> {
    let progress = Progress::new(!cli.json);
    match cli.command {
        Command::Serve(args) => {
            let Some(matches) = top.subcommand_matches("serve") else {
                anyhow::bail!("the serve command's arguments are missing");
            };
            let config = serve::config_of(&args)?;
            let data_given = matches!(
                top.value_source("data"),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            );
            let data_path = serve::data_dir(cli.data, data_given, &config);
            let options = serve::options(*args, matches, config, cli.json)?;
            let data = DataDir::open_or_init(&data_path)?;
            drop(data);
            crate::server::serve(data_path, options)?;
        }
        Command::Repo(RepoCommand::Create { name }) => {
            let name = parse_name(&name)?;
            let data = DataDir::open_or_init(&cli.data)?;
            let record = data.create_repo(&name)?;
            if cli.json {
                print_json(json!({ "repo": record }));
            } else {
                println!("created {}", record.name);
            }
        }
        Command::Repo(RepoCommand::List) => {
            let data = DataDir::open(&cli.data)?;
            let mut repos = data.list_repos()?;
            repos.sort_by(|a, b| a.name.cmp(&b.name));
            if cli.json {
                print_json(json!({ "repos": repos }));
            } else {
                for RepoRecord { name, .. } in repos {
                    println!("{name}");
                }
            }
        }
        Command::Repo(RepoCommand::Config { name, key, value }) => {
            let name = parse_name(&name)?;
            let setting = Setting::parse(&key).map_err(setting_error)?;
            let data = DataDir::open(&cli.data)?;
            if let Some(value) = &value {
                let value = setting.parse_value(value).map_err(setting_error)?;
                data.set_setting(&name, setting, value)?;
            }
            let current = data.setting(&name, setting)?;
            if cli.json {
                print_json(json!({ "repo": name.to_string(), "key": key, "value": current }));
            } else {
                println!("{current}");
            }
        }
        Command::Import { repo, git_dir } => {
            let name = parse_name(&repo)?;
            if !git_dir.exists() {
                return Err(user_error(
                    "bad_source",
                    format!("{} does not exist", git_dir.display()),
                ));
            }
            let data = DataDir::open_or_init(&cli.data)?;
            let (repo, created) = data.open_or_create_repo(&name)?;
            let result = crate::import::import(&repo, &git_dir, &progress);
            if result.is_err() && created {
                // Leave nothing behind for a failed first import.
                drop(repo);
                let _ = data.delete_repo(&name);
            }
            let report = result.with_context(|| format!("import into {name} failed"))?;
            if cli.json {
                print_json(json!({ "repo": name.to_string(), "import": report }));
            } else {
                println!(
                    "imported {} objects ({} commits, {} trees, {} blobs, {} tags) and {} refs into {name} in {:.1}s",
                    report.objects,
                    report.commits,
                    report.trees,
                    report.blobs,
                    report.tags,
                    report.refs,
                    report.seconds
                );
                if report.skipped_unreachable > 0 {
                    println!(
                        "skipped {} unreachable objects that refer to missing objects",
                        report.skipped_unreachable
                    );
                }
            }
        }
        Command::Export { repo, out_dir } => {
            let name = parse_name(&repo)?;
            let data = DataDir::open(&cli.data)?;
            let repo = data.open_repo(&name)?;
            let report = crate::export::export(&repo, &out_dir, &progress)
                .with_context(|| format!("export of {name} failed"))?;
            if cli.json {
                print_json(json!({ "repo": name.to_string(), "export": report }));
            } else {
                println!(
                    "exported {} objects and {} refs of {name} to {} in {:.1}s",
                    report.objects,
                    report.refs,
                    out_dir.display(),
                    report.seconds
                );
            }
        }
        Command::Repack { repo, force } => {
            let name = parse_name(&repo)?;
            let data = DataDir::open(&cli.data)?;
            let repo = data.open_repo(&name)?;
            let mut graph = crate::history::CommitGraph::default();
            let report = crate::packing::repack(&repo, &mut graph, force)
                .with_context(|| format!("repack of {name} failed"))?;
            if cli.json {
                print_json(json!({ "repo": name.to_string(), "repack": report }));
            } else if report.rebuilt {
                println!(
                    "repacked {name}: {} objects ({} deltas) from {} refs, {:.1} MiB, in {:.1}s",
                    report.objects,
                    report.deltas,
                    report.refs,
                    report.pack_bytes as f64 / (1 << 20) as f64,
                    report.seconds
                );
            } else {
                println!(
                    "{name}: the clone pack already matches its {} branches and tags",
                    report.refs
                );
            }
        }
        Command::Fsck { repo } => {
            let data = DataDir::open(&cli.data)?;
            let names = match repo {
                Some(name) => vec![parse_name(&name)?],
                None => {
                    let mut names = data
                        .list_repos()?
                        .into_iter()
                        .map(|r| parse_name(&r.name))
                        .collect::<anyhow::Result<Vec<_>>>()?;
                    names.sort();
                    names
                }
            };
            let mut reports = Vec::new();
            for name in &names {
                let repo = data.open_repo(name)?;
                reports.push(crate::fsck::fsck(&repo, &progress)?);
            }
            let failed = reports.iter().any(|r| !r.problems.is_empty());
            if cli.json {
                print_json(json!({ "ok": !failed, "repos": reports }));
            } else {
                for report in &reports {
                    let verdict = if report.problems.is_empty() {
                        "ok".to_owned()
                    } else {
                        format!("{} problem(s)", report.problems.len())
                    };
                    println!(
                        "{}: {} objects, {} refs: {verdict}",
                        report.repo, report.objects, report.refs
                    );
                    for problem in &report.problems {
                        println!("  error: {problem}");
                    }
                    for note in &report.notes {
                        println!("  note: {note}");
                    }
                }
            }
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Ref(command) => refs::command(&cli.data, command, cli.json)?,
        Command::Identity(command) => auth::identity(&cli.data, command, cli.json)?,
        Command::Token(command) => auth::token(&cli.data, command, cli.json)?,
        Command::Keygen { out } => attest::keygen(&out, cli.json)?,
        Command::Attest(command) => attest::command(&cli.data, command, cli.json)?,
        Command::Policy(command) => policy::command(&cli.data, command, cli.json)?,
        Command::Hook(command) => hooks::command(&cli.data, command, cli.json)?,
        Command::Goal(command) => goal::command(&cli.data, command, cli.json)?,
        Command::Provision(args) => goal::provision(&cli.data, *args, cli.json)?,
        Command::Pipeline(command) => return pipeline::command(command, cli.json),
        Command::Watch(watch) => watch::command(&cli.data, watch, cli.json)?,
        Command::Events(command) => watch::events_command(&cli.data, command, cli.json)?,
        Command::ShowId { repo, id } => {
            let name = parse_name(&repo)?;
            let data = DataDir::open(&cli.data)?;
            let repo = data.open_repo(&name)?;
            let (kind, native, sha1) = show_id(&repo, &id)?;
            if cli.json {
                print_json(json!({
                    "type": kind.as_str(),
                    "blake3": native.to_hex(),
                    "sha1": sha1.to_hex(),
                }));
            } else {
                println!("type   {kind}\nblake3 {native}\nsha1   {sha1}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn show_id(repo: &crate::store::Repo, given: &str) -> anyhow::Result<(Kind, ObjectId, Sha1)> {
    let given = given.trim();
    if given.len() < 8 || given.len() > ObjectId::HEX_LEN {
        return Err(user_error(
            "invalid_id",
            format!(
                "{given:?} is not an object id: give a SHA-1 (40 hex digits), a BLAKE3 id (64) or a prefix of at least 8"
            ),
        ));
    }
    let prefix = HexPrefix::parse(given)
        .map_err(|e| user_error("invalid_id", format!("{given:?} is not an object id: {e}")))?;
    let found = repo.find_by_prefix(&prefix);
    match found.as_slice() {
        [] => Err(user_error(
            "not_found",
            format!("no object of {} matches {given}", repo.name()),
        )),
        [one] => Ok((
            one.kind()
                .ok_or_else(|| StoreError::Corrupt(format!("object {} has no kind", one.id())))?,
            one.id(),
            one.sha1(),
        )),
        many => {
            let list: Vec<String> = many
                .iter()
                .take(10)
                .map(|l| {
                    format!(
                        "{} {} (sha1 {})",
                        l.kind().map_or("?", Kind::as_str),
                        l.id(),
                        l.sha1()
                    )
                })
                .collect();
            Err(user_error(
                "ambiguous_id",
                format!(
                    "{given} is ambiguous; it matches {} objects:\n  {}",
                    many.len(),
                    list.join("\n  ")
                ),
            ))
        }
    }
}
