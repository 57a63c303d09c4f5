//! Ref policies as stored: rules that match ref globs, each demanding something of the
//! updates of matching refs. Plain data; the gate (`gate/policy.rs`) evaluates them.

use serde::{Deserialize, Serialize};

use super::IdentityKind;
use crate::attest::statement::TEST_RESULT_TYPE;

/// One rule of a repository's policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
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
    #[schema(value_type = Option<Vec<String>>)]
    pub writers: Option<Vec<Signers>>,
    /// Who may create matching refs, on top of `writers` (`Some([])`: nobody).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>)]
    pub creators: Option<Vec<Signers>>,
    /// Who may move existing matching refs, on top of `writers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>)]
    pub updaters: Option<Vec<Signers>>,
    /// Who may delete matching refs, on top of `writers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>)]
    pub deleters: Option<Vec<Signers>>,
    /// Only fast-forward updates, and no deletion.
    #[serde(default)]
    pub fast_forward_only: bool,
    /// No merge commit among the commits an update brings to the ref.
    #[serde(default)]
    pub linear_history: bool,
    /// Evidence the new tip must carry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required: Vec<RequiredAttestation>,
    /// Identities that may update matching refs without meeting the rule (each pass is
    /// noted to them and logged). Administering the repository never implies it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bypass: Vec<String>,
}

/// A set of identities, written as a string: an identity's name, `human`, `agent` or
/// `anyone` (identity names cannot be these words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signers {
    Identity(String),
    Kind(IdentityKind),
    Anyone,
}

/// The words that name sets of identities, which no identity may be called.
pub const RESERVED_NAMES: &[&str] = &["human", "humans", "agent", "agents", "anyone", "nobody"];

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

    /// A comma-separated list; `nobody` (alone) is the empty set.
    pub fn parse_list(text: &str) -> Vec<Signers> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty() && *s != "nobody")
            .map(Signers::parse)
            .collect()
    }

    /// The string form, which `parse` reads back.
    pub fn as_text(&self) -> &str {
        match self {
            Signers::Identity(name) => name,
            Signers::Kind(kind) => kind.as_str(),
            Signers::Anyone => "anyone",
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

impl Serialize for Signers {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_text())
    }
}

impl<'de> Deserialize<'de> for Signers {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Signers, D::Error> {
        /// Rules stored before signers were strings held tagged maps.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Text(String),
            Tagged(Tagged),
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum Tagged {
            Identity(String),
            Kind(IdentityKind),
            Anyone,
        }
        Ok(match Form::deserialize(deserializer)? {
            Form::Text(text) => Signers::parse(&text),
            Form::Tagged(Tagged::Identity(name)) => Signers::Identity(name),
            Form::Tagged(Tagged::Kind(kind)) => Signers::Kind(kind),
            Form::Tagged(Tagged::Anyone) => Signers::Anyone,
        })
    }
}

/// An attestation the new tip of a matching ref must have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequiredAttestation {
    /// A URI; `test-result` stands for in-toto's test-result predicate.
    pub predicate_type: String,
    /// Who counts as a signer.
    #[serde(default = "anyone")]
    #[schema(value_type = Vec<String>)]
    pub signers: Vec<Signers>,
    /// How many distinct signers (at least 1).
    #[serde(default = "one")]
    pub min_signers: u32,
    /// The summary the attestation must carry (a test result's `PASSED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// The identity that updates the ref does not count as a signer (no self-approval).
    #[serde(default)]
    pub not_pusher: bool,
}

fn anyone() -> Vec<Signers> {
    vec![Signers::Anyone]
}

fn one() -> u32 {
    1
}

/// Why a rule was not added or removed.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{0}")]
    Invalid(String),
    #[error("{repo} has no rule {id}")]
    NotFound { repo: String, id: u64 },
    #[error(transparent)]
    Store(#[from] super::StoreError),
}

impl PolicyError {
    /// The stable code the CLI's `--json` and REST report this error with.
    pub fn code(&self) -> &'static str {
        match self {
            PolicyError::Invalid(_) => "invalid_rule",
            PolicyError::NotFound { .. } => "rule_not_found",
            PolicyError::Store(e) => e.code(),
        }
    }
}

const MAX_LIST: usize = 64;
const MAX_TEXT: usize = 1024;

impl RequiredAttestation {
    /// Checks it and expands `test-result` to its URI, as it is stored (in a rule or a
    /// goal).
    pub fn check(&mut self) -> Result<(), PolicyError> {
        let invalid = |text: String| Err(PolicyError::Invalid(text));
        if self.predicate_type == "test-result" {
            self.predicate_type = TEST_RESULT_TYPE.to_owned();
        }
        let uri = &self.predicate_type;
        if !uri.contains(':') || uri.len() > MAX_TEXT || uri.chars().any(char::is_whitespace) {
            return invalid(format!(
                "a predicate type is test-result or a URI, not {uri:?}"
            ));
        }
        if self.min_signers == 0 {
            return invalid("a required attestation needs at least 1 signer".into());
        }
        if self.signers.is_empty() {
            return invalid(
                "a required attestation needs signers (anyone, human, agent or names)".into(),
            );
        }
        check_set(&self.signers)?;
        if self
            .result
            .as_ref()
            .is_some_and(|r| r.is_empty() || r.len() > MAX_TEXT)
        {
            return invalid("a required result is 1 to 1024 bytes".into());
        }
        Ok(())
    }
}

impl RefRule {
    /// The rule as it is stored: checked, `test-result` expanded, the id left to the store.
    pub fn checked(mut self) -> Result<RefRule, PolicyError> {
        let invalid = |text: String| Err(PolicyError::Invalid(text));
        if !self.pattern.starts_with("refs/") {
            return invalid(format!(
                "the ref glob must start with refs/: {:?}",
                self.pattern
            ));
        }
        if let Err(e) = crate::glob::check(&self.pattern) {
            return invalid(format!("the ref glob {:?}: {e}", self.pattern));
        }
        let demands = self.writers.is_some()
            || self.creators.is_some()
            || self.updaters.is_some()
            || self.deleters.is_some()
            || self.fast_forward_only
            || self.linear_history
            || !self.required.is_empty();
        if !demands {
            return invalid(
                "a rule needs writers, creators, updaters, deleters, fast-forward only, \
                 linear history or a required attestation"
                    .into(),
            );
        }
        let sets = [
            &self.writers,
            &self.creators,
            &self.updaters,
            &self.deleters,
        ];
        for set in sets.into_iter().flatten() {
            check_set(set)?;
        }
        if self.required.len() > MAX_LIST || self.bypass.len() > MAX_LIST {
            return invalid(format!(
                "at most {MAX_LIST} required attestations and bypassers"
            ));
        }
        for name in &self.bypass {
            super::check_identity_name(name).map_err(PolicyError::Invalid)?;
        }
        for required in &mut self.required {
            required.check()?;
        }
        self.id = 0;
        Ok(self)
    }
}

fn check_set(set: &[Signers]) -> Result<(), PolicyError> {
    if set.len() > MAX_LIST {
        return Err(PolicyError::Invalid(format!(
            "at most {MAX_LIST} entries in a list of identities"
        )));
    }
    for member in set {
        if let Signers::Identity(name) = member {
            super::check_identity_name(name).map_err(PolicyError::Invalid)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signers_are_strings_and_old_tagged_records_still_read() {
        let rule: RefRule = serde_json::from_str(
            r#"{"id":3,"pattern":"refs/heads/main","writers":[{"identity":"alice"},{"kind":"agent"},"anyone"]}"#,
        )
        .unwrap();
        assert_eq!(
            rule.writers,
            Some(vec![
                Signers::Identity("alice".into()),
                Signers::Kind(IdentityKind::Agent),
                Signers::Anyone
            ])
        );
        let written = serde_json::to_string(&rule).unwrap();
        assert!(
            written.contains(r#""writers":["alice","agent","anyone"]"#),
            "{written}"
        );
    }

    #[test]
    fn rules_are_checked_before_they_are_stored() {
        let rule = |json: &str| serde_json::from_str::<RefRule>(json).unwrap().checked();
        let ok = rule(r#"{"pattern":"refs/heads/main","required":[{"predicate_type":"test-result","result":"PASSED"}]}"#).unwrap();
        assert_eq!(ok.required[0].predicate_type, TEST_RESULT_TYPE);
        assert_eq!(ok.required[0].signers, vec![Signers::Anyone]);
        assert_eq!(ok.required[0].min_signers, 1);
        let refused = |json: &str| rule(json).unwrap_err().to_string();
        assert_eq!(
            refused(r#"{"pattern":"heads/main","linear_history":true}"#),
            "the ref glob must start with refs/: \"heads/main\""
        );
        assert!(refused(r#"{"pattern":"refs/heads/main"}"#).starts_with("a rule needs writers"));
        assert!(
            refused(r#"{"pattern":"refs/heads/main","writers":["bad name"]}"#)
                .starts_with("invalid identity name \"bad name\"")
        );
        assert_eq!(
            refused(r#"{"pattern":"refs/heads/main","required":[{"predicate_type":"review"}]}"#),
            "a predicate type is test-result or a URI, not \"review\""
        );
        assert_eq!(
            refused(
                r#"{"pattern":"refs/heads/main","required":[{"predicate_type":"test-result","min_signers":0}]}"#
            ),
            "a required attestation needs at least 1 signer"
        );
        assert!(serde_json::from_str::<RefRule>(r#"{"pattern":"refs/x","wrtiers":[]}"#).is_err());
    }
}
