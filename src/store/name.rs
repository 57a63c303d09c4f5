//! Repository names: `owner/name`.

use std::fmt;

/// A validated repository name. Each half has letters, digits, `-`, `_` and `.`, does not
/// start with `.`, contains no `..`, and the name does not end in `.git` (the URL suffix).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName {
    owner: String,
    name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid repository name {given:?}: {reason}")]
pub struct InvalidRepoName {
    pub given: String,
    pub reason: &'static str,
}

const MAX_PART: usize = 100;

/// First path segments the server answers itself: a repository owned by one of them could
/// not be reached at `/{owner}/{name}`.
pub const SITE_PATHS: &[&str] = &["api", "assets", "healthz", "login", "logout", "metrics"];

fn check_part(part: &str) -> Result<(), &'static str> {
    if part.is_empty() {
        return Err("owner and name must not be empty (expected OWNER/NAME)");
    }
    if part.len() > MAX_PART {
        return Err("owner and name are at most 100 characters each");
    }
    if !part
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err("only letters, digits, '-', '_' and '.' are allowed");
    }
    if part.starts_with('.') {
        return Err("a part must not start with '.'");
    }
    if part.contains("..") {
        return Err("'..' is not allowed");
    }
    if part.starts_with('-') {
        return Err("a part must not start with '-' (it would read as an option)");
    }
    if part.ends_with('.') {
        return Err("a part must not end with '.'");
    }
    if part.to_ascii_lowercase().ends_with(".lock") {
        return Err("a part must not end with '.lock'");
    }
    if is_windows_device(part) {
        return Err(
            "a part must not be a device name on Windows (con, prn, aux, nul, com1-9, lpt1-9)",
        );
    }
    Ok(())
}

/// Names Windows reserves for devices, with or without an extension (`aux.txt`): a clone
/// or export into such a directory fails there.
fn is_windows_device(part: &str) -> bool {
    let stem = part.split('.').next().unwrap_or(part).to_ascii_lowercase();
    match stem.as_str() {
        "con" | "prn" | "aux" | "nul" => true,
        _ => {
            let (prefix, digit) = stem.split_at(stem.len().min(3));
            matches!(prefix, "com" | "lpt")
                && digit.len() == 1
                && digit.as_bytes()[0].is_ascii_digit()
                && digit != "0"
        }
    }
}

/// Checks one part of a repository name, or an identity name (which names an owner), by
/// the same rules, so every name is valid on every path (CLI, REST, exports).
pub fn check_name_part(part: &str) -> Result<(), &'static str> {
    check_part(part)
}

impl RepoName {
    pub fn parse(given: &str) -> Result<RepoName, InvalidRepoName> {
        let invalid = |reason| InvalidRepoName {
            given: given.to_owned(),
            reason,
        };
        let (owner, name) = given
            .split_once('/')
            .ok_or_else(|| invalid("expected OWNER/NAME"))?;
        if name.contains('/') {
            return Err(invalid("expected exactly one '/' (OWNER/NAME)"));
        }
        check_part(owner).map_err(invalid)?;
        check_part(name).map_err(invalid)?;
        if SITE_PATHS.iter().any(|p| owner.eq_ignore_ascii_case(p)) {
            return Err(invalid(
                "the owner is a path of the forge's own (api, assets, healthz, login, logout, metrics)",
            ));
        }
        if name.to_ascii_lowercase().ends_with(".git") {
            return Err(invalid("the name must not end in '.git'"));
        }
        Ok(RepoName {
            owner: owner.to_owned(),
            name: name.to_owned(),
        })
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key under which the name is unique: names differing only in case are one repository.
    pub fn key(&self) -> String {
        format!("{}/{}", self.owner, self.name).to_ascii_lowercase()
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names() {
        for ok in [
            "alice/app",
            "A-b_c.d/x.y-z_1",
            "o/n.gitx",
            "a/b",
            "a/con-tools",
            "a/com0",
            "a/com10",
            "a/b-",
            "a/locks",
        ] {
            assert_eq!(RepoName::parse(ok).unwrap().to_string(), ok);
        }
        assert_eq!(RepoName::parse("Alice/App").unwrap().key(), "alice/app");
    }

    #[test]
    fn invalid_names() {
        for (bad, reason) in [
            ("alice", "expected OWNER/NAME"),
            ("a/b/c", "expected exactly one '/' (OWNER/NAME)"),
            (
                "/b",
                "owner and name must not be empty (expected OWNER/NAME)",
            ),
            (
                "a/",
                "owner and name must not be empty (expected OWNER/NAME)",
            ),
            ("a/.hidden", "a part must not start with '.'"),
            ("../b", "a part must not start with '.'"),
            ("a/b..c", "'..' is not allowed"),
            (
                "-api/b",
                "a part must not start with '-' (it would read as an option)",
            ),
            ("a/b.", "a part must not end with '.'"),
            ("a/b.lock", "a part must not end with '.lock'"),
            (
                "API/tools",
                "the owner is a path of the forge's own (api, assets, healthz, login, logout, metrics)",
            ),
            ("a/B.LOCK", "a part must not end with '.lock'"),
            (
                "a/con",
                "a part must not be a device name on Windows (con, prn, aux, nul, com1-9, lpt1-9)",
            ),
            (
                "a/aux.txt",
                "a part must not be a device name on Windows (con, prn, aux, nul, com1-9, lpt1-9)",
            ),
            (
                "NUL/x",
                "a part must not be a device name on Windows (con, prn, aux, nul, com1-9, lpt1-9)",
            ),
            (
                "a/com1",
                "a part must not be a device name on Windows (con, prn, aux, nul, com1-9, lpt1-9)",
            ),
            (
                "a/b c",
                "only letters, digits, '-', '_' and '.' are allowed",
            ),
            (
                "a/b\\c",
                "only letters, digits, '-', '_' and '.' are allowed",
            ),
            ("a/é", "only letters, digits, '-', '_' and '.' are allowed"),
            ("a/app.git", "the name must not end in '.git'"),
        ] {
            assert_eq!(RepoName::parse(bad).unwrap_err().reason, reason, "{bad}");
        }
        assert!(RepoName::parse(&format!("a/{}", "x".repeat(101))).is_err());
    }
}
