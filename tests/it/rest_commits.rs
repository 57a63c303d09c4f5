//! Commits made over REST (`POST …/commits`) against a real `forge serve`: the result
//! cloned and fetched by stock git (same SHA-1s, `git fsck` clean), the gate's refusals
//! (token refs, ref policies, a lost compare-and-swap), and each malformed change.

use crate::common;

use common::{Answer, Forge, Server, assert_error, assert_fsck_clean, call, git};
use serde_json::{Value, json};

fn post_commit(server: &Server, token: &str, body: &Value) -> Answer {
    call(
        server,
        "POST",
        "/api/v1/repos/alice/app/commits",
        Some(token),
        Some(&body.to_string()),
    )
}

fn tip(server: &Server, token: &str, branch: &str) -> Option<String> {
    let answer = call(
        server,
        "GET",
        &format!("/api/v1/repos/alice/app/refs/heads%2F{branch}"),
        Some(token),
        None,
    );
    (answer.status == 200).then(|| answer.body["sha1"].as_str().unwrap().to_owned())
}

#[test]
fn a_rest_commit_is_what_stock_git_clones() {
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    forge.ok(&["repo", "create", "alice/app"]);
    forge.ok(&["identity", "add", "alice", "--kind", "human"]);
    let server = Server::start(&forge);
    let alice = forge.token(&[
        "--identity",
        "alice",
        "--repo",
        "alice/app",
        "--ops",
        "write",
    ]);

    // A root commit on a new branch.
    let root = post_commit(
        &server,
        &alice,
        &json!({
            "branch": "main",
            "message": "Start",
            "changes": [
                {"op": "put", "path": "README.md", "text": "# app\n"},
                {"op": "put", "path": "src/lib.rs", "text": "pub fn one() {}\n"},
                {"op": "put", "path": "src/old/mod.rs", "text": "// old\n"},
                {"op": "put", "path": "tools/run", "content": "IyEvYmluL3NoCmVjaG8gcnVuCg==", "mode": "executable"},
            ]
        }),
    );
    assert_eq!(root.status, 201, "{}", root.body);
    assert_eq!(root.body["branch"], "refs/heads/main");
    let first = root.body["commit"]["sha1"].as_str().unwrap().to_owned();
    assert_eq!(root.body["commit"]["parents"], json!([]));
    assert_eq!(root.body["commit"]["author"]["name"], "alice");
    assert_eq!(
        root.body["commit"]["committer"]["email"],
        "alice@forge.invalid"
    );
    assert_eq!(
        tip(&server, &alice, "main").as_deref(),
        Some(first.as_str())
    );

    // A second one on it: put, delete, move a directory, a symlink, another author.
    let second = post_commit(
        &server,
        &alice,
        &json!({
            "branch": "refs/heads/main",
            "parent": first,
            "message": "Rework\n\nMove old to new, link the readme.",
            "author": {"name": "Ann Author", "email": "ann@example.com"},
            "changes": [
                {"op": "put", "path": "src/lib.rs", "text": "pub fn two() {}\n"},
                {"op": "delete", "path": "tools"},
                {"op": "move", "from": "src/old", "to": "src/new"},
                {"op": "put", "path": "docs/readme", "text": "../README.md", "mode": "symlink"},
                {"op": "put", "path": "data.bin", "content": "AAEC/w=="},
            ]
        }),
    );
    assert_eq!(second.status, 201, "{}", second.body);
    let second_sha = second.body["commit"]["sha1"].as_str().unwrap().to_owned();
    assert_eq!(second.body["commit"]["parents"][0]["sha1"], first);
    assert_eq!(second.body["commit"]["author"]["name"], "Ann Author");
    assert_eq!(second.body["commit"]["committer"]["name"], "alice");
    assert_eq!(second.body["commit"]["subject"], "Rework");

    // Stock git clones exactly these commits, and fsck finds nothing wrong.
    let clone = tmp.path().join("clone");
    git(
        tmp.path(),
        &[
            "clone",
            "-q",
            &server.repo_url_with(&alice, "alice/app"),
            clone.to_str().unwrap(),
        ],
    );
    assert_fsck_clean(&clone.join(".git"));
    assert_eq!(git(&clone, &["rev-parse", "HEAD"]).trim(), second_sha);
    assert_eq!(git(&clone, &["rev-parse", "HEAD~1"]).trim(), first);
    assert_eq!(
        git(&clone, &["log", "-1", "--format=%an <%ae>|%cn <%ce>|%B"]).trim_end(),
        "Ann Author <ann@example.com>|alice <alice@forge.invalid>|Rework\n\nMove old to new, link the readme."
    );
    assert_eq!(
        git(
            &clone,
            &["ls-tree", "-r", "--format=%(objectmode) %(path)", "HEAD"]
        ),
        "100644 README.md\n100644 data.bin\n120000 docs/readme\n100644 src/lib.rs\n100644 src/new/mod.rs\n"
    );
    assert_eq!(
        git(
            &clone,
            &["ls-tree", "-r", "--format=%(objectmode) %(path)", "HEAD~1"]
        ),
        "100644 README.md\n100644 src/lib.rs\n100644 src/old/mod.rs\n100755 tools/run\n"
    );
    assert_eq!(
        std::fs::read(clone.join("data.bin")).unwrap(),
        [0, 1, 2, 255]
    );
    assert_eq!(
        std::fs::read_link(clone.join("docs/readme"))
            .unwrap()
            .to_str(),
        Some("../README.md")
    );
    assert_eq!(
        git(&clone, &["show", "HEAD~1:tools/run"]),
        "#!/bin/sh\necho run\n"
    );

    // A new branch from an existing commit, then a fetch of it into the clone.
    let branch = post_commit(
        &server,
        &alice,
        &json!({
            "branch": "agent/try",
            "parent": first,
            "message": "Try something",
            "changes": [{"op": "put", "path": "TRY", "text": "x"}]
        }),
    );
    assert_eq!(branch.status, 201, "{}", branch.body);
    let try_sha = branch.body["commit"]["sha1"].as_str().unwrap().to_owned();
    git(&clone, &["fetch", "-q", "origin"]);
    assert_eq!(
        git(&clone, &["rev-parse", "origin/agent/try"]).trim(),
        try_sha
    );
    assert_eq!(
        git(&clone, &["rev-parse", "origin/agent/try~1"]).trim(),
        first
    );
    assert_fsck_clean(&clone.join(".git"));

    // A push on top of a REST commit, and a REST commit on top of the push.
    common::commit_file(&clone, "pushed.txt", "pushed\n", "Pushed");
    git(&clone, &["push", "-q", "origin", "main"]);
    let pushed = git(&clone, &["rev-parse", "HEAD"]).trim().to_owned();
    let after_push = post_commit(
        &server,
        &alice,
        &json!({
            "branch": "main",
            "parent": pushed,
            "message": "After the push",
            "changes": [{"op": "move", "from": "pushed.txt", "to": "moved.txt"}]
        }),
    );
    assert_eq!(after_push.status, 201, "{}", after_push.body);
    git(&clone, &["pull", "-q", "--ff-only", "origin", "main"]);
    assert_eq!(git(&clone, &["show", "HEAD:moved.txt"]), "pushed\n");
    assert_fsck_clean(&clone.join(".git"));

    // The compare-and-swap: a commit built on a tip that moved loses, and changes nothing.
    let stale = post_commit(
        &server,
        &alice,
        &json!({
            "branch": "main",
            "parent": pushed,
            "message": "Stale",
            "changes": [{"op": "put", "path": "x", "text": "x"}]
        }),
    );
    assert_error(&stale, 409, "ref_changed", "");
    let no_parent = post_commit(
        &server,
        &alice,
        &json!({"branch": "main", "message": "Root again", "changes": []}),
    );
    assert_eq!(no_parent.status, 409, "{}", no_parent.body);
    assert_eq!(
        tip(&server, &alice, "main").as_deref(),
        after_push.body["commit"]["sha1"].as_str()
    );

    // Each malformed change is told apart, and nothing moves.
    let current = tip(&server, &alice, "main").unwrap();
    for (changes, status, code, message) in [
        (
            json!([{"op": "delete", "path": "missing"}]),
            422,
            "path_not_found",
            "missing: nothing is there to delete",
        ),
        (
            json!([{"op": "move", "from": "nope", "to": "x"}]),
            422,
            "path_not_found",
            "nothing is there to move",
        ),
        (
            json!([{"op": "put", "path": "README.md/inner", "text": "x"}]),
            422,
            "path_conflict",
            "README.md is a file",
        ),
        (
            json!([{"op": "put", "path": "src", "text": "x"}]),
            422,
            "path_conflict",
            "a directory is there",
        ),
        (
            json!([{"op": "move", "from": "README.md", "to": "src/lib.rs"}]),
            422,
            "path_conflict",
            "something is there already",
        ),
        (
            json!([{"op": "put", "path": ".git/config", "text": "x"}]),
            422,
            "fsck_refused",
            "hasDotgit",
        ),
        (
            json!([{"op": "put", "path": ".GIT", "text": "x"}]),
            422,
            "fsck_refused",
            "hasDotgit",
        ),
        (
            json!([{"op": "put", "path": ".gitmodules", "text": "[submodule \"a\"]\n\tpath = a\n\turl = --upload-pack=evil\n"}]),
            422,
            "fsck_refused",
            "gitmodulesUrl",
        ),
        (
            json!([{"op": "put", "path": "a/../b", "text": "x"}]),
            400,
            "invalid_path",
            "`.` and `..`",
        ),
        (
            json!([{"op": "put", "path": "", "text": "x"}]),
            400,
            "invalid_request",
            "names the root",
        ),
        (
            json!([{"op": "put", "path": "x", "content": "%%%"}]),
            400,
            "invalid_request",
            "changes[0].content is not base64",
        ),
        (
            json!([{"op": "put", "path": "x", "text": "a", "content": "YQ=="}]),
            400,
            "invalid_request",
            "not both",
        ),
        (
            json!([{"op": "chmod", "path": "x"}]),
            422,
            "invalid_request",
            "unknown variant `chmod`",
        ),
    ] {
        let answer = post_commit(
            &server,
            &alice,
            &json!({"branch": "main", "parent": current, "message": "Bad", "changes": changes}),
        );
        assert_error(&answer, status, code, message);
    }
    for (body, status, message) in [
        (
            json!({"branch": "main", "parent": current, "message": "  ", "changes": []}),
            400,
            "the message is empty",
        ),
        (
            json!({"branch": "main", "parent": "0123", "message": "m", "changes": []}),
            400,
            "parent is not a 40-digit SHA-1",
        ),
        (
            json!({"branch": "main", "parent": "1111111111111111111111111111111111111111", "message": "m", "changes": []}),
            422,
            "is not a commit of this repository",
        ),
        (
            json!({"branch": "main", "parent": current, "message": "m", "changes": [], "author": {"name": "x", "email": "<evil>"}}),
            400,
            "without '<', '>'",
        ),
        (
            json!({"branch": "main", "parent": current, "message": "m", "changes": [], "extra": 1}),
            422,
            "unknown field `extra`",
        ),
        (
            json!({"branch": "bad..name", "parent": current, "message": "m", "changes": []}),
            422,
            "ref names must not contain '..'",
        ),
    ] {
        let answer = post_commit(&server, &alice, &body);
        assert_eq!(answer.status, status, "{body}: {}", answer.body);
        let text = answer.body["error"]["message"].as_str().unwrap_or("");
        assert!(
            text.contains(message),
            "{text:?} should contain {message:?}"
        );
    }
    let not_json = common::raw_http(
        &server.addr(),
        format!(
            "POST /api/v1/repos/alice/app/commits HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {alice}\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        )
        .as_bytes(),
    );
    assert_eq!(not_json.status, 415, "{}", not_json.text());
    assert_eq!(
        tip(&server, &alice, "main").as_deref(),
        Some(current.as_str())
    );
    git(&clone, &["fetch", "-q", "origin"]);
    assert_fsck_clean(&clone.join(".git"));
}

#[test]
fn rest_commits_pass_the_gate_like_pushes() {
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    forge.ok(&["repo", "create", "alice/app"]);
    forge.ok(&["identity", "add", "alice", "--kind", "human"]);
    forge.ok(&[
        "identity", "add", "bot", "--kind", "agent", "--owner", "alice",
    ]);
    let server = Server::start(&forge);
    let alice = forge.token(&[
        "--identity",
        "alice",
        "--repo",
        "alice/app",
        "--ops",
        "write",
    ]);
    let reader = forge.token(&[
        "--identity",
        "alice",
        "--repo",
        "alice/app",
        "--ops",
        "read",
    ]);
    let bot = forge.token(&[
        "--identity",
        "bot",
        "--repo",
        "alice/app",
        "--ops",
        "write",
        "--refs",
        "refs/heads/agent/**",
    ]);
    let start = post_commit(
        &server,
        &alice,
        &json!({"branch": "main", "message": "Start", "changes": [{"op": "put", "path": "a", "text": "a"}]}),
    );
    assert_eq!(start.status, 201, "{}", start.body);
    let first = start.body["commit"]["sha1"].as_str().unwrap().to_owned();
    let change = |branch: &str| json!({"branch": branch, "parent": first, "message": "Change", "changes": [{"op": "put", "path": "b", "text": "b"}]});

    // Authorization: a read token may not write, a token's refs bind, no token is 401.
    assert_error(
        &post_commit(&server, &reader, &change("main")),
        403,
        "forbidden",
        "",
    );
    assert_error(
        &post_commit(&server, &bot, &change("main")),
        403,
        "ref_not_permitted",
        "not allowed by token",
    );
    assert_eq!(post_commit(&server, &bot, &change("agent/x")).status, 201);
    let anonymous = call(
        &server,
        "POST",
        "/api/v1/repos/alice/app/commits",
        None,
        Some(&change("main").to_string()),
    );
    assert_error(&anonymous, 401, "unauthorized", "a token is required");
    let elsewhere = call(
        &server,
        "POST",
        "/api/v1/repos/alice/other/commits",
        Some(&alice),
        Some(&change("main").to_string()),
    );
    assert_error(&elsewhere, 404, "repo_not_found", "");

    // A ref policy refuses a REST commit exactly as it refuses a push; the refusal is an event.
    forge.ok(&[
        "policy",
        "add",
        "alice/app",
        "--ref",
        "refs/heads/main",
        "--updaters",
        "nobody",
    ]);
    let refused = post_commit(&server, &alice, &change("main"));
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_error(
        &refused,
        422,
        "policy_refused",
        "FORGE-P001: rule 1 (refs/heads/main) lets nobody update it",
    );
    assert_eq!(
        tip(&server, &alice, "main").as_deref(),
        Some(first.as_str())
    );
    let events = call(
        &server,
        "GET",
        "/api/v1/repos/alice/app/events?type=ref.refused",
        Some(&alice),
        None,
    );
    assert_eq!(events.status, 200, "{}", events.body);
    let refusal = events.body["items"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(refusal["data"]["ref"], "refs/heads/main", "{refusal}");
    assert_eq!(refusal["data"]["via"], "rest", "{refusal}");
    assert_eq!(refusal["data"]["code"], "policy_refused", "{refusal}");
    assert!(
        refusal["data"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("FORGE-P001"),
        "{refusal}"
    );

    // The same push through git is refused with the same rule.
    let clone = tmp.path().join("clone");
    git(
        tmp.path(),
        &[
            "clone",
            "-q",
            &server.repo_url_with(&alice, "alice/app"),
            clone.to_str().unwrap(),
        ],
    );
    common::commit_file(&clone, "c", "c", "Pushed");
    let (pushed, stderr) = common::try_git(&clone, &["push", "origin", "main"]);
    assert!(!pushed && stderr.contains("FORGE-P001"), "{stderr}");

    // Nothing of the refused commit is left: the store's objects are what was published.
    let fsck = forge.run(&["fsck"]);
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr)
    );
    assert!(
        fsck.status.success() && !report.contains("unregistered"),
        "{report}"
    );
    let updated = call(
        &server,
        "GET",
        "/api/v1/repos/alice/app/events?type=ref.updated",
        Some(&alice),
        None,
    );
    let items = updated.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{}", updated.body);
    assert!(
        items.iter().all(|e| e["data"]["via"] == "rest"),
        "{}",
        updated.body
    );
}
