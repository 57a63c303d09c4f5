//! `forge identity …` and `forge token …`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};
use serde_json::json;

use super::{print_json, user_error};
use crate::auth::token::{self, Grant, Narrowing, Op, Scope, TokenError};
use crate::store::{DataDir, IdentityError, IdentityKey, IdentityKind};

#[derive(Subcommand)]
pub(super) enum IdentityCommand {
    /// Add a human or an agent (an agent names the human who owns it).
    Add {
        name: String,
        #[arg(long, value_parser = ["human", "agent"])]
        kind: String,
        /// The owning human (agents only).
        #[arg(long)]
        owner: Option<String>,
        /// A file holding an Ed25519 public key (64 hex digits), for attestations.
        #[arg(long)]
        public_key: Option<PathBuf>,
    },
    /// List identities.
    List,
    /// Remove an identity: its tokens stop working at once (a human who owns agents is
    /// kept until they are removed).
    Remove { name: String },
    /// Disable an identity: its tokens, and its agents' tokens, are refused until it is
    /// enabled again.
    Disable { name: String },
    /// Enable a disabled identity.
    Enable { name: String },
    /// Add, list and revoke an identity's Ed25519 keys (for attestations).
    #[command(subcommand)]
    Key(KeyCommand),
}

#[derive(Subcommand)]
pub(super) enum KeyCommand {
    /// Give an identity a public key: 64 hex digits, or a file holding them (`forge
    /// keygen` prints one). A key belongs to one identity, for good.
    Add { name: String, key: String },
    /// List an identity's keys, revoked ones included.
    List { name: String },
    /// Revoke a key: attestations it signed stop counting (they stay visible).
    Revoke { name: String, key: String },
}

/// The narrowing flags `issue` and `attenuate` share.
#[derive(Args)]
pub(super) struct ScopeArgs {
    /// A repository (OWNER/NAME), every repository of an owner (OWNER/*), or * (repeatable).
    #[arg(long = "repo")]
    repos: Vec<String>,
    /// Operations, comma-separated: read, write, admin (admin implies the others).
    #[arg(long)]
    ops: Option<String>,
    /// Refs that write may update, as globs (`*` one segment, `**` any); repeatable.
    #[arg(long = "refs")]
    refs: Vec<String>,
    /// Lifetime: 90s, 30m, 1h, 7d, or `never`.
    #[arg(long)]
    ttl: Option<String>,
}

#[derive(Subcommand)]
pub(super) enum TokenCommand {
    /// Mint a token for an identity, signed by this server's root key.
    Issue {
        #[arg(long)]
        identity: String,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Narrow a token offline (no data directory, no server): the result can do at most
    /// what both the token and the flags allow.
    Attenuate {
        token: String,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Show a token's blocks and revocation ids (offline).
    Inspect { token: String },
    /// Revoke a token (its last block, so tokens narrowed from it stop too) or a revocation id.
    Revoke { token_or_id: String },
}

fn token_error(e: TokenError) -> anyhow::Error {
    let code = match e {
        TokenError::TooLarge
        | TokenError::TooManyBlocks
        | TokenError::Malformed(_)
        | TokenError::NotCanonical => "invalid_token",
        TokenError::BadSignature => "bad_signature",
        TokenError::Invalid(_) => "invalid_argument",
    };
    user_error(code, e.to_string())
}

/// `90s`, `30m`, `1h`, `7d`; `never` is `None`.
pub(super) fn parse_ttl(text: &str) -> anyhow::Result<Option<Duration>> {
    parse_span("--ttl", text)
}

/// A span of time as `flag` takes it: `90s`, `30m`, `1h`, `7d` (at most ten years);
/// `never` is `None`.
pub(super) fn parse_span(flag: &str, text: &str) -> anyhow::Result<Option<Duration>> {
    if text == "never" {
        return Ok(None);
    }
    let bad = || {
        user_error(
            "invalid_argument",
            format!("invalid {flag} {text:?}: expected a number with s, m, h or d, or never"),
        )
    };
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let number: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    number
        .checked_mul(seconds)
        .filter(|&s| s > 0 && s <= 10 * 365 * 86_400)
        .map(|s| Some(Duration::from_secs(s)))
        .ok_or_else(bad)
}

impl ScopeArgs {
    fn scopes(&self) -> anyhow::Result<Vec<Scope>> {
        self.repos
            .iter()
            .map(|r| Scope::parse(r).map_err(token_error))
            .collect()
    }

    fn ops(&self) -> anyhow::Result<Vec<Op>> {
        match &self.ops {
            Some(ops) => Op::parse_list(ops).map_err(token_error),
            None => Ok(Vec::new()),
        }
    }

    fn expires(&self, default: Option<Duration>) -> anyhow::Result<Option<SystemTime>> {
        let ttl = match &self.ttl {
            Some(ttl) => parse_ttl(ttl)?,
            None => default,
        };
        Ok(ttl.map(|ttl| SystemTime::now() + ttl))
    }
}

/// Tokens live 30 days unless told otherwise.
const DEFAULT_TTL: Duration = Duration::from_secs(30 * 86_400);

pub(super) fn identity(
    data_path: &Path,
    command: IdentityCommand,
    json: bool,
) -> anyhow::Result<()> {
    match command {
        IdentityCommand::Add {
            name,
            kind,
            owner,
            public_key,
        } => {
            let kind = if kind == "agent" {
                IdentityKind::Agent
            } else {
                IdentityKind::Human
            };
            let mut identity = crate::store::new_identity(&name, kind, owner.as_deref())
                .map_err(identity_error)?;
            if let Some(path) = public_key {
                identity.keys.push(IdentityKey {
                    key: read_public_key(&path)?,
                    added_at: now_secs(),
                    revoked_at: None,
                });
            }
            let data = DataDir::open_or_init(data_path)?;
            let identity = data.add_identity(&identity).map_err(identity_error)?;
            if json {
                print_json(json!({ "identity": identity }));
            } else {
                println!("added {} {}", identity.kind.as_str(), identity.name);
            }
        }
        IdentityCommand::Remove { name } => {
            let data = DataDir::open(data_path)?;
            let removed = data.remove_identity(&name).map_err(identity_error)?;
            if json {
                print_json(json!({ "removed": removed }));
            } else {
                println!("removed {} {}", removed.kind.as_str(), removed.name);
            }
        }
        IdentityCommand::Disable { ref name } | IdentityCommand::Enable { ref name } => {
            let disable = matches!(command, IdentityCommand::Disable { .. });
            let data = DataDir::open(data_path)?;
            let identity = data
                .set_identity_disabled(name, disable)
                .map_err(identity_error)?;
            if json {
                print_json(json!({ "identity": identity }));
            } else {
                let state = if disable { "disabled" } else { "enabled" };
                println!("{state} {} {}", identity.kind.as_str(), identity.name);
            }
        }
        IdentityCommand::Key(command) => key_command(data_path, command, json)?,
        IdentityCommand::List => {
            let data = DataDir::open(data_path)?;
            let identities = data.list_identities()?;
            if json {
                print_json(json!({ "identities": identities }));
            } else {
                for identity in identities {
                    let disabled = if identity.disabled { "\tdisabled" } else { "" };
                    match &identity.owner {
                        Some(owner) => println!(
                            "{}\t{}\towner {owner}{disabled}",
                            identity.name,
                            identity.kind.as_str()
                        ),
                        None => {
                            println!("{}\t{}{disabled}", identity.name, identity.kind.as_str())
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

fn key_command(data_path: &Path, command: KeyCommand, json: bool) -> anyhow::Result<()> {
    let data = DataDir::open(data_path)?;
    match command {
        KeyCommand::Add { name, key } => {
            let hex = if crate::hex::decode(key.trim(), 32).is_some() {
                check_public_key(key.trim(), &key)?
            } else {
                read_public_key(Path::new(&key))?
            };
            let identity = data.add_identity_key(&name, &hex).map_err(identity_error)?;
            if json {
                print_json(json!({ "identity": identity.name, "keys": identity.keys }));
            } else {
                println!("added key {hex} to {}", identity.name);
            }
        }
        KeyCommand::List { name } => {
            let identity = data
                .find_identity(&name)?
                .ok_or_else(|| identity_error(IdentityError::NotFound(name.clone())))?;
            if json {
                print_json(json!({ "identity": identity.name, "keys": identity.keys }));
            } else {
                for key in &identity.keys {
                    match key.revoked_at {
                        Some(at) => println!("{}	revoked {at}", key.key),
                        None => println!("{}	active", key.key),
                    }
                }
            }
        }
        KeyCommand::Revoke { name, key } => {
            let identity = data
                .revoke_identity_key(&name, key.trim())
                .map_err(identity_error)?;
            if json {
                print_json(json!({ "identity": identity.name, "keys": identity.keys }));
            } else {
                println!("revoked key {} of {}", key.trim(), identity.name);
            }
        }
    }
    Ok(())
}

fn identity_error(e: IdentityError) -> anyhow::Error {
    match e {
        IdentityError::Store(e) => e.into(),
        other => user_error(other.code(), other.to_string()),
    }
}

fn read_public_key(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| user_error("invalid_argument", format!("{}: {e}", path.display())))?;
    check_public_key(text.trim(), &path.display().to_string())
}

/// `hex` as the lower-case hex of a valid Ed25519 public key; `source` names it in errors.
fn check_public_key(hex: &str, source: &str) -> anyhow::Result<String> {
    crate::attest::keys::parse_public_key(hex)
        .map(|key| crate::attest::KeyId::of(&key).to_string())
        .map_err(|e| user_error("invalid_argument", format!("{source}: {e}")))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Mints a token for `grant` with the data directory's root key, and logs it.
pub fn issue(data: &DataDir, grant: &Grant) -> anyhow::Result<String> {
    let root = crate::auth::root_key(data)?;
    let minted = token::mint(grant, &root).map_err(token_error)?;
    let ids = token::parse_unverified(&minted)
        .map_err(token_error)?
        .revocation_identifiers();
    data.token_minted(&grant.identity, &ids)?;
    Ok(minted)
}

pub(super) fn token(data_path: &Path, command: TokenCommand, json: bool) -> anyhow::Result<()> {
    match command {
        TokenCommand::Issue { identity, scope } => {
            let data = DataDir::open(data_path)?;
            let Some(record) = data.find_identity(&identity)? else {
                return Err(user_error(
                    "identity_not_found",
                    format!("identity {identity} does not exist (forge identity add)"),
                ));
            };
            let mut scopes = scope.scopes()?;
            if scopes.is_empty() {
                // By default, an identity's own repositories.
                scopes.push(Scope::Owner(record.name.to_ascii_lowercase()));
            }
            let mut ops = scope.ops()?;
            if ops.is_empty() {
                ops.push(Op::Read);
            }
            let grant = Grant {
                incarnation: record.incarnation,
                identity: record.name,
                scopes,
                ops,
                ref_globs: scope.refs.clone(),
                expires: scope.expires(Some(DEFAULT_TTL))?,
                parents: Vec::new(),
            };
            let minted = issue(&data, &grant)?;
            print_token(&minted, json)?;
        }
        TokenCommand::Attenuate { token, scope } => {
            let narrowing = Narrowing {
                scopes: scope.scopes()?,
                ops: scope.ops()?,
                ref_globs: scope.refs.clone(),
                expires: scope.expires(None)?,
            };
            let narrowed = token::attenuate(&token, &narrowing).map_err(token_error)?;
            print_token(&narrowed, json)?;
        }
        TokenCommand::Inspect { token } => {
            let shown = token::inspect(&token).map_err(token_error)?;
            if json {
                let blocks: Vec<_> = shown
                    .blocks
                    .iter()
                    .map(|b| json!({ "source": b.source, "revocation_id": b.revocation_id }))
                    .collect();
                print_json(json!({ "blocks": blocks }));
            } else {
                for (i, block) in shown.blocks.iter().enumerate() {
                    let what = if i == 0 { "authority" } else { "narrowing" };
                    println!("block {i} ({what}), revocation id {}", block.revocation_id);
                    for line in block.source.lines() {
                        println!("  {line}");
                    }
                }
            }
        }
        TokenCommand::Revoke { token_or_id } => {
            let id = revocation_target(&token_or_id)?;
            let data = DataDir::open(data_path)?;
            let added = data.revoke_token_blocks(std::slice::from_ref(&id))?;
            if json {
                print_json(json!({ "revoked": token::hex(&id), "new": added > 0 }));
            } else if added > 0 {
                println!("revoked {}", token::hex(&id));
            } else {
                println!("{} was already revoked", token::hex(&id));
            }
        }
    }
    Ok(())
}

/// A revocation id (128 hex digits), or a token whose last block is to be revoked.
fn revocation_target(given: &str) -> anyhow::Result<Vec<u8>> {
    let given = given.trim();
    if let Some(id) = crate::hex::decode(given, 64) {
        return Ok(id);
    }
    let shown = token::parse_unverified(given).map_err(token_error)?;
    shown
        .revocation_identifiers()
        .pop()
        .ok_or_else(|| user_error("invalid_token", "token has no blocks"))
}

fn print_token(minted: &str, json: bool) -> anyhow::Result<()> {
    if json {
        let shown = token::parse_unverified(minted).map_err(token_error)?;
        let ids: Vec<String> = shown
            .revocation_identifiers()
            .iter()
            .map(|id| token::hex(id))
            .collect();
        print_json(json!({ "token": minted, "revocation_ids": ids }));
    } else {
        println!("{minted}");
    }
    Ok(())
}
