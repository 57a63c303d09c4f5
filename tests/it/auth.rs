//! Tokens on the wire with stock git: who may clone, fetch and push what, and what git
//! shows when a token is refused.

use crate::common;

use std::path::Path;

use common::corpus::synthetic_history;
use common::{Forge, Server, clone_work, commit_file, git, git_output, try_git};

/// A forge with `alice/app` and `bob/secret`, both holding a small history, served.
fn forge_with_two_repos(tmp: &Path) -> (Forge, Server) {
    let source = tmp.join("source.git");
    synthetic_history(&source, 5);
    let forge = Forge::new(&tmp.join("data"));
    forge.ok(&["repo", "create", "alice/app"]);
    forge.ok(&["repo", "create", "bob/secret"]);
    forge.ok(&["identity", "add", "alice", "--kind", "human"]);
    forge.ok(&[
        "identity", "add", "bot", "--kind", "agent", "--owner", "alice",
    ]);
    let server = Server::start_with(&forge, &["--no-auto-repack"]);
    git(
        &source,
        &["push", "-q", &server.repo_url("alice/app"), "main"],
    );
    let secret = tmp.join("secret");
    clone_work(&source, &secret);
    commit_file(&secret, "only-in-bob.txt", "bob's\n", "secret");
    git(
        &secret,
        &["push", "-q", &server.repo_url("bob/secret"), "main"],
    );
    (forge, server)
}

fn url_with(server: &Server, token: &str, repo: &str) -> String {
    server
        .anonymous_url(repo)
        .replacen("http://", &format!("http://x-access-token:{token}@"), 1)
}

/// `git clone -q` of `repo` into `dir/target` with `token` in the URL: (success, stderr).
fn clone_with(
    server: &Server,
    dir: &Path,
    token: &str,
    repo: &str,
    target: &str,
) -> (bool, String) {
    try_git(
        dir,
        &["clone", "-q", &url_with(server, token, repo), target],
    )
}

#[test]
fn private_and_public_repositories_and_read_only_tokens() {
    let tmp = tempfile::tempdir().unwrap();
    let (forge, server) = forge_with_two_repos(tmp.path());
    let dir = tmp.path();

    // No credentials: a private repository asks for them, and git gives up.
    let (ok, stderr) = try_git(
        dir,
        &["clone", "-q", &server.anonymous_url("alice/app"), "anon"],
    );
    assert!(!ok);
    assert!(stderr.contains("could not read Username"), "{stderr}");
    // A repository that does not exist looks the same.
    let (ok, stderr) = try_git(
        dir,
        &[
            "clone",
            "-q",
            &server.anonymous_url("alice/nothing"),
            "anon2",
        ],
    );
    assert!(!ok);
    assert!(stderr.contains("could not read Username"), "{stderr}");
    // Public: anyone reads, nobody anonymous writes.
    forge.ok(&["repo", "config", "alice/app", "public", "true"]);
    git(
        dir,
        &["clone", "-q", &server.anonymous_url("alice/app"), "anon"],
    );
    let anon = dir.join("anon");
    commit_file(&anon, "x.txt", "x\n", "anonymous work");
    let (ok, stderr) = try_git(&anon, &["push", "origin", "main"]);
    assert!(!ok);
    assert!(stderr.contains("could not read Username"), "{stderr}");

    // A read-only token clones and cannot push; git shows the reason.
    let read = forge.token(&["--identity", "alice", "--repo", "alice/*", "--ops", "read"]);
    forge.ok(&["repo", "config", "alice/app", "public", "false"]);
    let reader = dir.join("reader");
    let (ok, stderr) = clone_with(
        &server,
        dir,
        &read,
        "alice/app",
        &reader.display().to_string(),
    );
    assert!(ok, "{stderr}");
    commit_file(&reader, "y.txt", "y\n", "reader's work");
    let (ok, stderr) = try_git(&reader, &["push", "origin", "main"]);
    assert!(!ok);
    assert!(
        stderr.contains("remote: token does not allow write on alice/app"),
        "{stderr}"
    );
    assert!(stderr.contains("403"), "{stderr}");
}

#[test]
fn narrowed_tokens_push_only_where_they_may() {
    let tmp = tempfile::tempdir().unwrap();
    let (forge, server) = forge_with_two_repos(tmp.path());
    let dir = tmp.path();
    let write = forge.token(&[
        "--identity",
        "bot",
        "--repo",
        "alice/app",
        "--ops",
        "read,write",
        "--ttl",
        "1h",
    ]);
    // Narrowed offline, with no data directory.
    let nowhere = Forge::new(&dir.join("nowhere"));
    let agent =
        nowhere.json(&["token", "attenuate", &write, "--refs", "refs/heads/agent/*"])["token"]
            .as_str()
            .unwrap()
            .to_owned();
    let work = dir.join("work");
    let (ok, stderr) = clone_with(
        &server,
        dir,
        &agent,
        "alice/app",
        &work.display().to_string(),
    );
    assert!(ok, "{stderr}");
    commit_file(&work, "agent.txt", "agent work\n", "agent work");
    let (ok, stderr) = try_git(
        &work,
        &["push", "origin", "main", "main:refs/heads/agent/task-1"],
    );
    assert!(!ok, "main is refused");
    assert!(
        stderr.contains(" ! [remote rejected] main -> main (not allowed by token)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(" * [new branch]      main -> agent/task-1"),
        "the other ref lands: {stderr}"
    );
    let remote = git(&work, &["ls-remote", "origin"]);
    let head = git(&work, &["rev-parse", "HEAD"]);
    assert!(
        remote.contains(&format!("{}\trefs/heads/agent/task-1", head.trim())),
        "{remote}"
    );
    assert!(
        !remote.contains(&format!("{}\trefs/heads/main", head.trim())),
        "{remote}"
    );
    // With --atomic nothing lands.
    let (ok, stderr) = try_git(
        &work,
        &[
            "push",
            "--atomic",
            "origin",
            "main",
            "main:refs/heads/agent/task-2",
        ],
    );
    assert!(!ok);
    assert!(stderr.contains("(not allowed by token)"), "{stderr}");
    assert!(!git(&work, &["ls-remote", "origin"]).contains("task-2"));
    // One segment only: agent/* does not cover agent/a/b.
    let (ok, stderr) = try_git(&work, &["push", "origin", "main:refs/heads/agent/a/b"]);
    assert!(!ok);
    assert!(stderr.contains("(not allowed by token)"), "{stderr}");
}

#[test]
fn expired_revoked_tampered_and_foreign_tokens_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (forge, server) = forge_with_two_repos(tmp.path());
    let dir = tmp.path();
    let clone = |token: &str, target: &str| clone_with(&server, dir, token, "alice/app", target);
    let parent = forge.token(&[
        "--identity",
        "alice",
        "--repo",
        "alice/app",
        "--ops",
        "read",
    ]);
    let child = forge.json(&["token", "attenuate", &parent, "--ttl", "1h"])["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (ok, stderr) = clone(&child, "c0");
    assert!(ok, "{stderr}");

    // Expired by its narrowing.
    let expired = forge.json(&["token", "attenuate", &parent, "--ttl", "1s"])["token"]
        .as_str()
        .unwrap()
        .to_owned();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let (ok, stderr) = clone(&expired, "c1");
    assert!(!ok);
    assert!(stderr.contains("remote: token expired"), "{stderr}");
    assert!(stderr.contains("Authentication failed"), "{stderr}");

    // An expired token learns nothing: a repository that does not exist answers the same.
    let (ok, stderr) = clone_with(&server, dir, &expired, "alice/nothing", "c1b");
    assert!(!ok);
    assert!(stderr.contains("remote: token expired"), "{stderr}");

    // Tampered: one character of the signature part changed.
    let mut tampered: Vec<char> = parent.chars().collect();
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    let (ok, stderr) = clone(&tampered, "c2");
    assert!(!ok);
    assert!(
        stderr.contains("remote: token signature is invalid")
            || stderr.contains("remote: token is malformed"),
        "{stderr}"
    );
    assert!(stderr.contains("Authentication failed"), "{stderr}");

    // Signed by another server's key.
    let other = Forge::new(&dir.join("other-data"));
    other.ok(&["identity", "add", "alice", "--kind", "human"]);
    let foreign = other.token(&[
        "--identity",
        "alice",
        "--repo",
        "alice/app",
        "--ops",
        "read",
    ]);
    let (ok, stderr) = clone(&foreign, "c3");
    assert!(!ok);
    assert!(
        stderr
            .contains("remote: token signature is invalid (tampered, or signed by another server)"),
        "{stderr}"
    );

    // An oversized token is refused before any decoding.
    let huge = "A".repeat(5000);
    let (ok, stderr) = clone(&huge, "c6");
    assert!(!ok);
    assert!(
        stderr.contains("remote: token is longer than 4096 characters"),
        "{stderr}"
    );

    // Revoking the parent stops the child narrowed from it.
    forge.ok(&["token", "revoke", &parent]);
    let (ok, stderr) = clone(&child, "c4");
    assert!(!ok);
    assert!(stderr.contains("remote: token revoked"), "{stderr}");
    let (ok, _) = clone(&parent, "c5");
    assert!(!ok);
}

#[test]
fn a_token_for_one_repository_cannot_read_another() {
    let tmp = tempfile::tempdir().unwrap();
    let (forge, server) = forge_with_two_repos(tmp.path());
    let dir = tmp.path();
    let alice = forge.token(&[
        "--identity",
        "alice",
        "--repo",
        "alice/app",
        "--ops",
        "read",
    ]);
    let (ok, stderr) = clone_with(&server, dir, &alice, "bob/secret", "stolen");
    assert!(!ok);
    assert!(stderr.contains("remote: repository not found"), "{stderr}");
    // Asking alice/app for an object only bob/secret has gets nothing.
    let secret_only = git(&dir.join("secret"), &["rev-parse", "HEAD"])
        .trim()
        .to_owned();
    let work = dir.join("alice-work");
    let (ok, stderr) = clone_with(
        &server,
        dir,
        &alice,
        "alice/app",
        &work.display().to_string(),
    );
    assert!(ok, "{stderr}");
    let (ok, stderr) = try_git(&work, &["fetch", "origin", &secret_only]);
    assert!(!ok);
    assert!(
        stderr.contains(&format!(
            "remote error: upload-pack: not our ref {secret_only}"
        )),
        "{stderr}"
    );
    assert!(
        !git_output(&work, &["cat-file", "-e", &secret_only], None)
            .status
            .success()
    );
}
