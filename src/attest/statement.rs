//! in-toto Statement v1: what an attestation says, about which git objects.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::AttestError;
use crate::object::Sha1;

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// in-toto's test-result predicate: `result` PASSED, WARNED or FAILED.
pub const TEST_RESULT_TYPE: &str = "https://in-toto.io/attestation/test-result/v0.1";
/// Most subjects one statement may name.
pub const MAX_SUBJECTS: usize = 64;
/// Longest predicate type URI.
pub const MAX_TYPE_BYTES: usize = 1024;
/// Largest predicate, as JSON.
pub const MAX_PREDICATE_BYTES: usize = 128 << 10;

/// The digest-set keys of git objects (SHA-1 hex, as in-toto's digest set defines them).
const GIT_COMMIT: &str = "gitCommit";
const GIT_TREE: &str = "gitTree";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    #[serde(default)]
    pub predicate: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub digest: BTreeMap<String, String>,
}

impl Statement {
    /// A statement about one commit (and its tree, when given).
    pub fn about_commit(
        commit: Sha1,
        tree: Option<Sha1>,
        predicate_type: &str,
        predicate: serde_json::Value,
    ) -> Statement {
        let mut subject = vec![Subject {
            name: None,
            digest: BTreeMap::from([(GIT_COMMIT.to_owned(), commit.to_hex())]),
        }];
        if let Some(tree) = tree {
            subject.push(Subject {
                name: None,
                digest: BTreeMap::from([(GIT_TREE.to_owned(), tree.to_hex())]),
            });
        }
        Statement {
            statement_type: STATEMENT_TYPE.to_owned(),
            subject,
            predicate_type: predicate_type.to_owned(),
            predicate,
        }
    }

    /// Parses and checks a statement: its `_type`, a bounded list of subjects each with a
    /// digest, git digests that are SHA-1 hex, a bounded predicate type and predicate.
    pub fn parse(body: &[u8]) -> Result<Statement, AttestError> {
        let statement: Statement = serde_json::from_slice(body)
            .map_err(|e| AttestError::Malformed(format!("statement: {e}")))?;
        if statement.statement_type != STATEMENT_TYPE {
            return Err(AttestError::WrongStatementType(
                statement.statement_type.chars().take(200).collect(),
            ));
        }
        if statement.subject.is_empty() {
            return Err(AttestError::Malformed(
                "the statement names no subject".into(),
            ));
        }
        if statement.subject.len() > MAX_SUBJECTS {
            return Err(AttestError::TooLarge {
                what: "subject list",
                limit: MAX_SUBJECTS,
            });
        }
        if statement.predicate_type.is_empty() || statement.predicate_type.len() > MAX_TYPE_BYTES {
            return Err(AttestError::Malformed(format!(
                "the predicate type must be a URI of 1 to {MAX_TYPE_BYTES} bytes"
            )));
        }
        let predicate_bytes = serde_json::to_vec(&statement.predicate).map_or(0, |v| v.len());
        if predicate_bytes > MAX_PREDICATE_BYTES {
            return Err(AttestError::TooLarge {
                what: "predicate",
                limit: MAX_PREDICATE_BYTES,
            });
        }
        for subject in &statement.subject {
            if subject.digest.is_empty() {
                return Err(AttestError::Malformed("a subject has no digest".into()));
            }
            for key in [GIT_COMMIT, GIT_TREE] {
                if let Some(hex) = subject.digest.get(key)
                    && !is_sha1_hex(hex)
                {
                    return Err(AttestError::Malformed(format!(
                        "{key} must be 40 lower-case hex digits, not {:?}",
                        hex.chars().take(80).collect::<String>()
                    )));
                }
            }
        }
        Ok(statement)
    }

    /// The commits the statement is about.
    pub fn commits(&self) -> Vec<Sha1> {
        self.digests(GIT_COMMIT)
    }

    /// The trees the statement is about.
    pub fn trees(&self) -> Vec<Sha1> {
        self.digests(GIT_TREE)
    }

    fn digests(&self, key: &str) -> Vec<Sha1> {
        self.subject
            .iter()
            .filter_map(|s| s.digest.get(key))
            .filter_map(|hex| Sha1::from_hex(hex.as_bytes()).ok())
            .collect()
    }

    /// `predicate.result` of a test-result statement (`PASSED`, `WARNED`, `FAILED`).
    pub fn test_result(&self) -> Option<&str> {
        if self.predicate_type != TEST_RESULT_TYPE {
            return None;
        }
        self.predicate.get("result")?.as_str()
    }
}

fn is_sha1_hex(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(c: char) -> Sha1 {
        Sha1::from_hex(c.to_string().repeat(40).as_bytes()).unwrap()
    }

    #[test]
    fn round_trip_and_subjects() {
        let statement = Statement::about_commit(
            sha('a'),
            Some(sha('b')),
            TEST_RESULT_TYPE,
            serde_json::json!({"result": "PASSED", "configuration": []}),
        );
        let body = serde_json::to_vec(&statement).unwrap();
        let parsed = Statement::parse(&body).unwrap();
        assert_eq!(parsed, statement);
        assert_eq!(parsed.commits(), [sha('a')]);
        assert_eq!(parsed.trees(), [sha('b')]);
        assert_eq!(parsed.test_result(), Some("PASSED"));
        let text = String::from_utf8(body).unwrap();
        assert!(
            text.contains(r#""_type":"https://in-toto.io/Statement/v1""#),
            "{text}"
        );
        assert!(text.contains(r#""gitCommit":"aaaa"#), "{text}");
    }

    #[test]
    fn refusals() {
        let parse = |json: &str| Statement::parse(json.as_bytes());
        let ok = r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"gitCommit":"0123456789012345678901234567890123456789"}}],"predicateType":"x"}"#;
        assert!(parse(ok).is_ok());
        assert!(matches!(
            parse(&ok.replace("Statement/v1", "Statement/v0.1")),
            Err(AttestError::WrongStatementType(_))
        ));
        assert!(matches!(parse("garbage"), Err(AttestError::Malformed(_))));
        assert!(matches!(
            parse(&ok.replace("0123456789012345678901234567890123456789", "ABCDEF")),
            Err(AttestError::Malformed(_))
        ));
        assert!(matches!(
            parse(&ok.replace(r#""predicateType":"x""#, r#""predicateType":"""#)),
            Err(AttestError::Malformed(_))
        ));
        let many = format!(
            r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{}],"predicateType":"x"}}"#,
            vec![r#"{"digest":{"sha256":"00"}}"#; MAX_SUBJECTS + 1].join(",")
        );
        assert!(matches!(parse(&many), Err(AttestError::TooLarge { .. })));
        let none =
            r#"{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"x"}"#;
        assert!(matches!(parse(none), Err(AttestError::Malformed(_))));
    }
}
