//! Ref policies as stored: rules that match ref globs, each demanding something of the
//! updates of matching refs. Plain data; the gate (`gate/policy.rs`) evaluates them.

use serde::{Deserialize, Serialize};

use super::IdentityKind;

/// One rule of a repository's policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefRule {
    /// Assigned when the rule is added; never reused.
    #[serde(default)]
    pub id: u64,
    /// The refs it covers (`*` one segment, `**` any).
    pub pattern: String,
    /// `evaluate`: report what it would refuse, refuse nothing.
    #[serde(default)]
    pub evaluate_only: bool,
    /// Who may create, update and delete matching refs (`None`: anyone the token lets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writers: Option<Vec<Signers>>,
    /// Only fast-forward updates, and no deletion.
    #[serde(default)]
    pub fast_forward_only: bool,
    /// Evidence the new tip must carry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required: Vec<RequiredAttestation>,
    /// Identities that may update matching refs without meeting the rule (recorded in the
    /// log when they do). Administering the repository never implies it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bypass: Vec<String>,
}

/// A set of identities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signers {
    Identity(String),
    Kind(IdentityKind),
    Anyone,
}

impl Signers {
    /// `name`, `human`, `agent` or `anyone`.
    pub fn parse(text: &str) -> Signers {
        match text {
            "anyone" | "*" => Signers::Anyone,
            "human" | "humans" => Signers::Kind(IdentityKind::Human),
            "agent" | "agents" => Signers::Kind(IdentityKind::Agent),
            name => Signers::Identity(name.to_owned()),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Signers::Identity(name) => name.clone(),
            Signers::Kind(kind) => format!("any {}", kind.as_str()),
            Signers::Anyone => "anyone".into(),
        }
    }
}

/// An attestation the new tip of a matching ref must have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequiredAttestation {
    pub predicate_type: String,
    /// Who counts as a signer.
    pub signers: Vec<Signers>,
    /// How many distinct signers (at least 1).
    pub min_signers: u32,
    /// The summary the attestation must carry (a test result's `PASSED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// The identity that updates the ref does not count as a signer (no self-approval).
    #[serde(default)]
    pub not_pusher: bool,
}
