//! Provisioning a goal's agents in one call: N agent identities bound to an owning human,
//! each given an approach (round-robin over the ones asked for, made when missing), a token
//! narrowed to read the repository and write only its approach's ref (which is what claims,
//! heartbeats and pushes to it need) and upload attestations, with an expiry; optionally an
//! Ed25519 key pair (the private key is returned once, never stored) or a public key the
//! caller supplies. The tokens' revocation ids are recorded on the goal: its end revokes
//! them all, and a token minted through REST is revoked with the token that minted it.

use std::time::{Duration, SystemTime};

use super::{Acting, GoalOpError, add_approach, open_goal};
use crate::auth::token::{self, Grant, Op, Scope};
use crate::history::CommitGraph;
use crate::store::goals::approach_ref;
use crate::store::{IdentityError, IdentityKind, RepoName, check_identity_name, new_identity};

/// At most this many agents per call.
pub const MAX_AGENTS: u32 = 64;
/// A provisioned token's lifetime unless asked otherwise, and the most it may be.
pub const DEFAULT_AGENT_TTL: Duration = Duration::from_secs(24 * 3600);
pub const MAX_AGENT_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The agents' signing keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keys {
    None,
    /// A new key pair each; the private key is in the answer only.
    Generate,
    /// One public key (64 hex digits) per agent, in order.
    Supplied(Vec<String>),
}

/// What a provisioning asks for.
#[derive(Debug, Clone)]
pub struct ProvisionRequest {
    pub repo: RepoName,
    pub goal: String,
    /// The human the agents belong to (disabling them, or it, stops them all).
    pub owner: String,
    pub count: u32,
    /// Approaches given out in turn (agent 1 the first, …); made from the target's tip when
    /// missing. Empty: the goal's approaches.
    pub approaches: Vec<String>,
    pub ttl: Duration,
    pub keys: Keys,
    /// Revocation ids of the token the provisioning was asked with: revoking it revokes the
    /// agents' tokens too.
    pub parents: Vec<Vec<u8>>,
}

/// One agent as provisioned.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ProvisionedAgent {
    pub identity: String,
    pub approach: String,
    /// The ref its token may write: `refs/goals/<goal>/<approach>`.
    pub r#ref: String,
    pub token: String,
    pub revocation_ids: Vec<String>,
    /// Seconds since the epoch.
    pub expires_at: u64,
    pub public_key: Option<String>,
    /// The private key of a generated pair (64 hex digits): shown this once.
    pub secret_key: Option<String>,
}

impl ProvisionedAgent {
    /// The environment file an agent is started with (`KEY=value` lines).
    pub fn env_file(&self, repo: &RepoName, goal: &str, server_url: &str) -> String {
        let mut lines = vec![
            format!("FORGE_URL={server_url}"),
            format!("FORGE_REPO={repo}"),
            format!("FORGE_GOAL={goal}"),
            format!("FORGE_APPROACH={}", self.approach),
            format!("FORGE_REF={}", self.r#ref),
            format!("FORGE_IDENTITY={}", self.identity),
            format!("FORGE_TOKEN={}", self.token),
            format!("FORGE_CLONE_URL={}", self.clone_url(repo, server_url)),
        ];
        if let Some(secret) = &self.secret_key {
            lines.push(format!("FORGE_SIGNING_KEY={secret}"));
        }
        lines.push(String::new());
        lines.join("\n")
    }

    /// `scheme://x:TOKEN@host/owner/name.git`: what stock git clones and pushes with.
    pub fn clone_url(&self, repo: &RepoName, server_url: &str) -> String {
        let with_token = match server_url.split_once("://") {
            Some((scheme, rest)) => format!("{scheme}://x:{}@{rest}", self.token),
            None => server_url.to_owned(),
        };
        format!("{}/{repo}.git", with_token.trim_end_matches('/'))
    }
}

fn invalid(message: impl Into<String>) -> GoalOpError {
    GoalOpError::Provision(message.into())
}

/// Checks everything first (so that a refused request makes nothing), then makes the
/// approaches, identities, keys and tokens.
pub fn provision(
    acting: &Acting<'_>,
    graph: &mut CommitGraph,
    root: &biscuit_auth::KeyPair,
    request: &ProvisionRequest,
) -> Result<Vec<ProvisionedAgent>, GoalOpError> {
    let data = acting.data;
    let repo = acting.repo;
    if !(1..=MAX_AGENTS).contains(&request.count) {
        return Err(invalid(format!("agents is 1 to {MAX_AGENTS}")));
    }
    if request.ttl.is_zero() || request.ttl > MAX_AGENT_TTL {
        return Err(invalid("a provisioned token lives 1 s to 30 days"));
    }
    let goal = open_goal(repo, &request.goal, "no agents can be provisioned")?;
    let owner = data
        .find_identity(&request.owner)?
        .ok_or_else(|| IdentityError::NotFound(request.owner.clone()))
        .map_err(identity_error)?;
    if owner.kind != IdentityKind::Human || owner.disabled {
        return Err(invalid(format!(
            "agents belong to an enabled human; {} is not one",
            owner.name
        )));
    }
    let existing: Vec<String> = repo
        .meta()
        .approaches(&goal.name)?
        .into_iter()
        .map(|a| a.name)
        .collect();
    let approaches = if request.approaches.is_empty() {
        if existing.is_empty() {
            return Err(invalid(
                "the goal has no approach yet: name the approaches to provision agents for",
            ));
        }
        existing.clone()
    } else {
        for name in &request.approaches {
            crate::store::goals::check_approach_name(name)?;
        }
        request.approaches.clone()
    };
    let public_keys: Vec<Option<String>> = match &request.keys {
        Keys::None | Keys::Generate => vec![None; request.count as usize],
        Keys::Supplied(keys) => {
            if keys.len() != request.count as usize {
                return Err(invalid(format!(
                    "{} public keys for {} agents",
                    keys.len(),
                    request.count
                )));
            }
            for key in keys {
                crate::attest::keys::parse_public_key(key)
                    .map_err(|e| invalid(format!("public key {key:?}: {e}")))?;
            }
            keys.iter()
                .map(|k| Some(k.trim().to_ascii_lowercase()))
                .collect()
        }
    };
    let identities = data.list_identities()?;
    let taken = |name: &str| identities.iter().any(|i| i.name.eq_ignore_ascii_case(name));
    let mut names = Vec::with_capacity(request.count as usize);
    let mut number = 1u32;
    while names.len() < request.count as usize {
        let name = format!("{}-{number}", goal.name);
        if !taken(&name) {
            check_identity_name(&name).map_err(invalid)?;
            names.push(name);
        }
        number += 1;
    }

    for name in approaches.iter().filter(|n| !existing.contains(n)) {
        add_approach(acting, graph, &goal.name, name, None)?;
    }
    let expires = SystemTime::now() + request.ttl;
    let expires_at = expires
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut agents = Vec::with_capacity(names.len());
    for (n, name) in names.into_iter().enumerate() {
        let approach = approaches[n % approaches.len()].clone();
        let identity =
            new_identity(&name, IdentityKind::Agent, Some(&owner.name)).map_err(identity_error)?;
        let added = data.add_identity(&identity).map_err(identity_error)?;
        let (public_key, secret_key) = match (&request.keys, &public_keys[n]) {
            (Keys::Generate, _) => {
                let pair = crate::attest::keys::generate()
                    .map_err(|e| invalid(format!("a key pair: {e}")))?;
                let public = crate::hex::encode(pair.verifying_key().as_bytes());
                (Some(public), Some(crate::hex::encode(&pair.to_bytes())))
            }
            (_, Some(public)) => (Some(public.clone()), None),
            _ => (None, None),
        };
        if let Some(public) = &public_key {
            data.add_identity_key(&added.name, public)
                .map_err(identity_error)?;
        }
        let ref_name = approach_ref(&goal.name, &approach);
        let grant = Grant {
            incarnation: added.incarnation,
            identity: added.name.clone(),
            scopes: vec![Scope::Repo(request.repo.clone())],
            ops: vec![Op::Read, Op::Write],
            ref_globs: vec![ref_name.clone()],
            expires: Some(expires),
            parents: request.parents.clone(),
        };
        let minted = token::mint(&grant, root).map_err(|e| invalid(e.to_string()))?;
        let ids = token::parse_unverified(&minted)
            .map_err(|e| invalid(e.to_string()))?
            .revocation_identifiers();
        data.token_minted(&added.name, &ids)?;
        agents.push(ProvisionedAgent {
            identity: added.name,
            approach,
            r#ref: ref_name,
            token: minted,
            revocation_ids: ids.iter().map(|id| token::hex(id)).collect(),
            expires_at,
            public_key,
            secret_key,
        });
    }
    let ids: Vec<String> = agents
        .iter()
        .flat_map(|a| a.revocation_ids.iter().cloned())
        .collect();
    repo.meta()
        .add_provisioned(&goal.name, &ids, crate::store::goals::now_ms())?;
    Ok(agents)
}

fn identity_error(error: IdentityError) -> GoalOpError {
    match error {
        IdentityError::Store(e) => GoalOpError::Store(e),
        other => GoalOpError::Identity(other),
    }
}

/// Revokes the tokens provisioned for a goal that ended (after the commit that ended it:
/// the registry is another store). A failure is logged; `forge token revoke` remains.
pub(super) fn revoke_at_end(acting: &Acting<'_>, goal: &str) {
    let ids = match acting.repo.meta().find_goal(goal) {
        Ok(Some(goal)) => goal.provisioned,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!("goal {goal}: reading its agents' tokens: {e}");
            return;
        }
    };
    let decoded: Vec<Vec<u8>> = ids
        .iter()
        .filter_map(|id| crate::hex::decode(id, id.len() / 2))
        .collect();
    if decoded.is_empty() {
        return;
    }
    if let Err(e) = acting.data.revoke_token_blocks_of(&decoded, None) {
        tracing::warn!("goal {goal}: revoking its agents' tokens: {e}");
    }
}
