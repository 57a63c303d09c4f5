//! The REST API under `/api/v1` against a real `forge serve`: each endpoint, its
//! authorization, and its error bodies.

use crate::common;

use common::{Answer, Forge, Server, assert_error, call};
use serde_json::{Value, json};

#[test]
fn user_repos_tokens_and_revocation() {
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    forge.ok(&["repo", "create", "alice/app"]);
    forge.ok(&["repo", "create", "bob/lib"]);
    forge.ok(&["repo", "create", "bob/site"]);
    forge.ok(&["repo", "config", "bob/site", "public", "true"]);
    forge.ok(&["identity", "add", "alice", "--kind", "human"]);
    forge.ok(&["identity", "add", "bob", "--kind", "human"]);
    forge.ok(&[
        "identity",
        "add",
        "alices-bot",
        "--kind",
        "agent",
        "--owner",
        "alice",
    ]);
    let server = Server::start_with(&forge, &[]);
    let admin = server.token.clone();
    let alice = forge.token(&["--identity", "alice", "--repo", "alice/*", "--ops", "admin"]);

    // GET /api/v1/user
    let anonymous = call(&server, "GET", "/api/v1/user", None, None);
    assert_error(&anonymous, 401, "unauthorized", "a token is required");
    assert!(
        anonymous
            .head
            .contains("www-authenticate: Bearer realm=\"forge\"")
            || anonymous
                .head
                .contains("WWW-Authenticate: Bearer realm=\"forge\""),
        "{}",
        anonymous.head
    );
    let garbage = call(&server, "GET", "/api/v1/user", Some("not-a-token"), None);
    assert_error(&garbage, 401, "unauthorized", "token is malformed");
    let me = call(&server, "GET", "/api/v1/user", Some(&alice), None);
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["identity"]["name"], "alice");
    assert_eq!(me.body["identity"]["kind"], "human");
    assert_eq!(
        me.body["rights"],
        json!([{"scope": "alice/*", "op": "admin"}])
    );
    assert_eq!(me.body["blocks"].as_array().unwrap().len(), 1);
    let short = forge.json(&["token", "attenuate", &alice, "--ttl", "1s"])["token"]
        .as_str()
        .unwrap()
        .to_owned();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let expired = call(&server, "GET", "/api/v1/user", Some(&short), None);
    assert_error(&expired, 401, "unauthorized", "token expired");

    // GET /api/v1/repos: public ones for anyone, readable ones for a token, a page at a time.
    let mut paged = Vec::new();
    let mut path = "/api/v1/repos?limit=1".to_owned();
    loop {
        let page = call(&server, "GET", &path, Some(&admin), None);
        assert_eq!(page.status, 200, "{}", page.body);
        paged.extend(
            page.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["name"].as_str().unwrap().to_owned()),
        );
        let Some(cursor) = page.body["next_cursor"].as_str() else {
            assert!(!page.head.to_ascii_lowercase().contains("\r\nlink:"));
            break;
        };
        assert!(
            page.head
                .contains(&format!("cursor={cursor}>; rel=\"next\"")),
            "{}",
            page.head
        );
        path = format!("/api/v1/repos?limit=1&cursor={cursor}");
    }
    assert_eq!(paged, ["alice/app", "bob/lib", "bob/site"]);
    assert_error(
        &call(
            &server,
            "GET",
            "/api/v1/repos?cursor=%%%",
            Some(&admin),
            None,
        ),
        400,
        "invalid_request",
        "",
    );
    let names = |answer: &Answer| -> Vec<String> {
        answer.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(&call(&server, "GET", "/api/v1/repos", None, None)),
        ["bob/site"]
    );
    assert_eq!(
        names(&call(&server, "GET", "/api/v1/repos", Some(&alice), None)),
        ["alice/app", "bob/site"]
    );
    assert_eq!(
        names(&call(&server, "GET", "/api/v1/repos", Some(&admin), None)),
        ["alice/app", "bob/lib", "bob/site"]
    );

    // POST /api/v1/repos
    let created = call(
        &server,
        "POST",
        "/api/v1/repos",
        Some(&alice),
        Some(r#"{"name": "alice/new", "public": true}"#),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["repo"]["name"], "alice/new");
    assert_eq!(created.body["repo"]["public"], true);
    let again = call(
        &server,
        "POST",
        "/api/v1/repos",
        Some(&alice),
        Some(r#"{"name": "alice/new"}"#),
    );
    assert_error(
        &again,
        409,
        "repo_exists",
        "repository alice/new already exists",
    );
    let elsewhere = call(
        &server,
        "POST",
        "/api/v1/repos",
        Some(&alice),
        Some(r#"{"name": "bob/x"}"#),
    );
    assert_error(
        &elsewhere,
        403,
        "forbidden",
        "token does not allow admin on bob/x",
    );
    let bad_name = call(
        &server,
        "POST",
        "/api/v1/repos",
        Some(&alice),
        Some(r#"{"name": "alice/../x"}"#),
    );
    assert_error(&bad_name, 400, "invalid_request", "invalid repository name");
    let bad_json = call(&server, "POST", "/api/v1/repos", Some(&alice), Some("{"));
    assert_error(&bad_json, 400, "invalid_request", "");
    let anonymous = call(
        &server,
        "POST",
        "/api/v1/repos",
        None,
        Some(r#"{"name": "alice/y"}"#),
    );
    assert_error(&anonymous, 401, "unauthorized", "a token is required");

    // POST /api/v1/tokens: for oneself or one's agents, with rights one administers.
    let minted = call(
        &server,
        "POST",
        "/api/v1/tokens",
        Some(&alice),
        Some(
            r#"{"identity": "alices-bot", "repos": ["alice/app"], "ops": ["write"], "refs": ["refs/heads/bot/**"], "ttl_seconds": 600}"#,
        ),
    );
    assert_eq!(minted.status, 201, "{}", minted.body);
    let bot = minted.body["token"].as_str().unwrap().to_owned();
    let bot_me = call(&server, "GET", "/api/v1/user", Some(&bot), None);
    assert_eq!(bot_me.body["identity"]["name"], "alices-bot");
    assert_eq!(bot_me.body["identity"]["owner"], "alice");
    assert_eq!(bot_me.body["ref_globs"], json!(["refs/heads/bot/**"]));
    let for_bob = call(
        &server,
        "POST",
        "/api/v1/tokens",
        Some(&alice),
        Some(r#"{"identity": "bob", "repos": ["alice/app"], "ops": ["read"]}"#),
    );
    assert_error(
        &for_bob,
        403,
        "forbidden",
        "alice does not administer identity bob",
    );
    let bobs_repos = call(
        &server,
        "POST",
        "/api/v1/tokens",
        Some(&alice),
        Some(r#"{"identity": "alices-bot", "repos": ["bob/*"], "ops": ["read"]}"#),
    );
    assert_error(
        &bobs_repos,
        403,
        "forbidden",
        "minting rights on bob/* needs admin there",
    );
    let nobody = call(
        &server,
        "POST",
        "/api/v1/tokens",
        Some(&admin),
        Some(r#"{"identity": "nobody", "repos": ["*"], "ops": ["read"]}"#),
    );
    assert_error(
        &nobody,
        404,
        "identity_not_found",
        "identity nobody does not exist",
    );
    let bad_op = call(
        &server,
        "POST",
        "/api/v1/tokens",
        Some(&admin),
        Some(r#"{"identity": "bob", "repos": ["*"], "ops": ["fly"]}"#),
    );
    assert_error(&bad_op, 400, "invalid_request", "unknown operation \"fly\"");
    let by_admin = call(
        &server,
        "POST",
        "/api/v1/tokens",
        Some(&admin),
        Some(r#"{"identity": "bob", "repos": ["bob/*"], "ops": ["read", "write"]}"#),
    );
    assert_eq!(by_admin.status, 201, "{}", by_admin.body);
    // The bot's narrow token cannot mint anything (it has no admin).
    let by_bot = call(
        &server,
        "POST",
        "/api/v1/tokens",
        Some(&bot),
        Some(r#"{"identity": "alices-bot", "repos": ["alice/app"], "ops": ["read"]}"#),
    );
    assert_error(&by_bot, 403, "forbidden", "needs admin there");

    // A narrowed token cannot mint (its limits would not carry over).
    let narrowed_alice =
        forge.json(&["token", "attenuate", &alice, "--refs", "refs/heads/x/*"])["token"]
            .as_str()
            .unwrap()
            .to_owned();
    let by_narrowed = call(
        &server,
        "POST",
        "/api/v1/tokens",
        Some(&narrowed_alice),
        Some(r#"{"identity": "alices-bot", "repos": ["alice/app"], "ops": ["read"]}"#),
    );
    assert_error(
        &by_narrowed,
        403,
        "forbidden",
        "a narrowed token cannot mint tokens",
    );
    // Whether an identity exists is not told to those who do not administer it.
    let ghost = call(
        &server,
        "POST",
        "/api/v1/tokens",
        Some(&alice),
        Some(r#"{"identity": "ghost", "repos": ["alice/app"], "ops": ["read"]}"#),
    );
    assert_error(
        &ghost,
        403,
        "forbidden",
        "alice does not administer identity ghost",
    );
    // A minted token lives no longer than its minter's, and dies with it.
    let short_alice = forge.token(&[
        "--identity",
        "alice",
        "--repo",
        "alice/*",
        "--ops",
        "admin",
        "--ttl",
        "1h",
    ]);
    let child = call(
        &server,
        "POST",
        "/api/v1/tokens",
        Some(&short_alice),
        Some(
            r#"{"identity": "alices-bot", "repos": ["alice/app"], "ops": ["read"], "ttl_seconds": 864000}"#,
        ),
    );
    assert_eq!(child.status, 201, "{}", child.body);
    let child = child.body["token"].as_str().unwrap().to_owned();
    let child_me = call(&server, "GET", "/api/v1/user", Some(&child), None);
    let parent_me = call(&server, "GET", "/api/v1/user", Some(&short_alice), None);
    assert_eq!(child_me.body["expires"], parent_me.body["expires"]);
    forge.ok(&["token", "revoke", &short_alice]);
    let orphan = call(&server, "GET", "/api/v1/user", Some(&child), None);
    assert_error(&orphan, 401, "unauthorized", "token revoked");

    // POST /api/v1/tokens/revoke
    let neither = call(
        &server,
        "POST",
        "/api/v1/tokens/revoke",
        Some(&bot),
        Some("{}"),
    );
    assert_error(&neither, 400, "invalid_request", "exactly one of");
    let by_id = call(
        &server,
        "POST",
        "/api/v1/tokens/revoke",
        Some(&alice),
        Some(&format!(r#"{{"revocation_id": "{}"}}"#, "ab".repeat(64))),
    );
    assert_error(&by_id, 403, "forbidden", "needs admin on *");
    let bobs = by_admin.body["token"].as_str().unwrap();
    let not_hers = call(
        &server,
        "POST",
        "/api/v1/tokens/revoke",
        Some(&alice),
        Some(&json!({"token": bobs}).to_string()),
    );
    assert_error(
        &not_hers,
        403,
        "forbidden",
        "alice may not revoke tokens of bob",
    );
    let revoked = call(
        &server,
        "POST",
        "/api/v1/tokens/revoke",
        Some(&alice),
        Some(&json!({"token": bot}).to_string()),
    );
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(revoked.body["new"], true);
    let after = call(&server, "GET", "/api/v1/user", Some(&bot), None);
    assert_error(&after, 401, "unauthorized", "token revoked");
    let by_admin_id = call(
        &server,
        "POST",
        "/api/v1/tokens/revoke",
        Some(&admin),
        Some(&json!({"revocation_id": by_admin.body["revocation_ids"][0]}).to_string()),
    );
    assert_eq!(by_admin_id.status, 200, "{}", by_admin_id.body);
    let bob_after = call(&server, "GET", "/api/v1/user", Some(bobs), None);
    assert_error(&bob_after, 401, "unauthorized", "token revoked");
}

/// A ref update over REST passes the same gate as a push and as `forge ref set`: the same
/// rules, the same words, and a stable code per refusal.
#[test]
fn ref_updates_over_rest_pass_the_gate_a_push_passes() {
    use common::{commit_file, git, try_git};
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    forge.ok(&["repo", "create", "alice/app"]);
    forge.ok(&["identity", "add", "alice", "--kind", "human"]);
    let server = Server::start_with(&forge, &[]);
    let url = server.repo_url("alice/app");
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    commit_file(&work, "a.txt", "one\n", "one");
    let first = git(&work, &["rev-parse", "HEAD"]).trim().to_owned();
    commit_file(&work, "a.txt", "two\n", "two");
    let second = git(&work, &["rev-parse", "HEAD"]).trim().to_owned();
    let tree = git(&work, &["rev-parse", "HEAD^{tree}"]).trim().to_owned();
    git(
        &work,
        &["push", "-q", &url, "main", "main:refs/heads/topic"],
    );
    let remote_ref = |name: &str| {
        let listed = git(&work, &["ls-remote", &url, name]);
        listed.split_whitespace().next().unwrap_or("").to_owned()
    };

    let writer = forge.token(&[
        "--identity",
        "alice",
        "--repo",
        "alice/app",
        "--ops",
        "write",
    ]);
    let path = "/api/v1/repos/alice/app/refs";
    let update = |token: &str, body: Value| {
        call(&server, "POST", path, Some(token), Some(&body.to_string()))
    };
    // Any other branch may move anywhere, with the value it is at now as the claim.
    let moved = update(
        &writer,
        json!({"ref": "refs/heads/topic", "old": second, "new": first}),
    );
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(moved.body["ref"]["sha1"], first.as_str());
    assert_eq!(remote_ref("refs/heads/topic"), first);
    let created = update(&writer, json!({"ref": "refs/tags/v1", "new": second}));
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(remote_ref("refs/tags/v1"), second);

    // The refusals, each with its code and git's words.
    let cases = [
        (
            json!({"ref": "refs/heads/topic", "old": second, "new": second}),
            409,
            "ref_changed",
            format!("fetch first: the ref is at {} on the server", &first[..12]),
        ),
        (
            json!({"ref": "refs/heads/main", "old": second, "new": first}),
            422,
            "non_fast_forward",
            "non-fast-forward updates of the default branch are not allowed".to_owned(),
        ),
        (
            json!({"ref": "refs/heads/main", "old": second, "new": null}),
            422,
            "current_branch",
            "refusing to delete the current branch".to_owned(),
        ),
        (
            json!({"ref": "refs/heads/blob", "new": tree}),
            422,
            "not_a_commit",
            "a branch must point to a commit, not a tree".to_owned(),
        ),
        (
            json!({"ref": "refs/heads/x", "new": "1".repeat(40)}),
            422,
            "object_not_found",
            format!("missing object {}", "1".repeat(40)),
        ),
        (
            json!({"ref": "refs/heads/a..b", "new": second}),
            422,
            "invalid_ref",
            "invalid ref name: ref names must not contain '..'".to_owned(),
        ),
        (
            json!({"ref": "HEAD", "new": second}),
            422,
            "invalid_ref",
            "funny refname: only names of two levels below refs/ can be pushed".to_owned(),
        ),
        (
            json!({"ref": "refs/heads/topic/x", "new": second}),
            409,
            "ref_name_conflict",
            "'refs/heads/topic' exists; cannot create 'refs/heads/topic/x'".to_owned(),
        ),
        (
            json!({"ref": "refs/heads/y", "new": "not hex"}),
            400,
            "invalid_request",
            "new is not a 40-digit SHA-1".to_owned(),
        ),
    ];
    for (body, status, code, message) in &cases {
        assert_error(&update(&writer, body.clone()), *status, code, message);
    }
    assert_eq!(remote_ref("refs/heads/main"), second);

    // The token's rights: refs it does not cover, a read-only token, a repository it
    // cannot see (not told it exists), no token.
    let narrowed = forge.json(&["token", "attenuate", &writer, "--refs", "refs/heads/x/*"]);
    let narrowed = narrowed["token"].as_str().unwrap().to_owned();
    assert_error(
        &update(&narrowed, json!({"ref": "refs/heads/new", "new": second})),
        403,
        "ref_not_permitted",
        "not allowed by token",
    );
    let allowed = update(&narrowed, json!({"ref": "refs/heads/x/y", "new": second}));
    assert_eq!(allowed.status, 200, "{}", allowed.body);
    let reader = forge.token(&[
        "--identity",
        "alice",
        "--repo",
        "alice/app",
        "--ops",
        "read",
    ]);
    let refused = update(&reader, json!({"ref": "refs/heads/new", "new": second}));
    assert_eq!(refused.status, 403, "{}", refused.body);
    let elsewhere = forge.token(&["--identity", "alice", "--repo", "bob/*", "--ops", "write"]);
    assert_error(
        &update(&elsewhere, json!({"ref": "refs/heads/new", "new": second})),
        404,
        "repo_not_found",
        "repository alice/app does not exist",
    );
    let anonymous = call(
        &server,
        "POST",
        path,
        None,
        Some(r#"{"ref": "refs/heads/n"}"#),
    );
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);

    // A push and the operator meet the same gate, in the same words.
    commit_file(&work, "b.txt", "three\n", "three");
    git(&work, &["reset", "-q", "--hard", &first]);
    commit_file(&work, "c.txt", "other\n", "diverged");
    let (ok, stderr) = try_git(&work, &["push", "--force", &url, "main"]);
    assert!(!ok);
    assert!(
        stderr.contains("(non-fast-forward updates of the default branch are not allowed)"),
        "{stderr}"
    );
    let refused = forge.run(&[
        "--json",
        "ref",
        "set",
        "alice/app",
        "refs/heads/topic/x",
        &second,
    ]);
    assert!(!refused.status.success());
    let error: Value = serde_json::from_slice(&refused.stdout)
        .or_else(|_| serde_json::from_slice(&refused.stderr))
        .unwrap();
    assert_eq!(error["error"]["code"], "ref_name_conflict", "{error}");
    assert_eq!(
        error["error"]["message"],
        "'refs/heads/topic' exists; cannot create 'refs/heads/topic/x'"
    );
    // The operator repairs: the default branch may be moved back by hand.
    forge.ok(&["ref", "set", "alice/app", "refs/heads/main", &first]);
    assert_eq!(remote_ref("refs/heads/main"), first);
    forge.ok(&["fsck"]);
}

/// Failures the handlers never see (unknown paths and methods, bodies axum refuses,
/// credentials refused before any handler) answer the same JSON error body.
#[test]
fn every_failure_is_the_json_error_body() {
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    forge.ok(&["repo", "create", "alice/app"]);
    let server = Server::start_with(&forge, &[]);
    let admin = server.token.clone();

    let unknown = call(&server, "GET", "/api/v1/nothing/here", Some(&admin), None);
    assert_error(
        &unknown,
        404,
        "not_found",
        "no such API endpoint: /api/v1/nothing/here",
    );
    assert!(
        unknown.head.contains("content-type: application/json"),
        "{}",
        unknown.head
    );
    let bare = call(&server, "GET", "/api", None, None);
    assert_error(&bare, 404, "not_found", "no such API endpoint: /api");

    let method = call(&server, "DELETE", "/api/v1/repos", Some(&admin), None);
    assert_error(
        &method,
        405,
        "method_not_allowed",
        "/api/v1/repos does not take DELETE",
    );

    let garbage = call(&server, "POST", "/api/v1/repos", Some(&admin), Some("{"));
    assert_error(
        &garbage,
        400,
        "invalid_request",
        "Failed to parse the request body as JSON",
    );
    let shape = call(
        &server,
        "POST",
        "/api/v1/repos",
        Some(&admin),
        Some(r#"{"name": 7}"#),
    );
    assert_error(&shape, 422, "invalid_request", "invalid type: integer `7`");

    // No JSON content type: 415, whatever the body.
    let addr = server.url.trim_start_matches("http://");
    let body = r#"{"name": "alice/other"}"#;
    let plain = common::raw_http(
        addr,
        format!(
            "POST /api/v1/repos HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(plain.status, 415, "{}", plain.text());
    let error: Value = serde_json::from_slice(&plain.body).unwrap();
    assert_eq!(error["error"]["code"], "unsupported_media_type", "{error}");

    // Credentials are refused by the one extractor, before any handler, in JSON here and
    // in git's plain text on the git routes.
    let forged = call(&server, "GET", "/api/v1/repos", Some("not-a-token"), None);
    assert_eq!(forged.status, 401, "{}", forged.body);
    assert_eq!(
        forged.body["error"]["code"], "unauthorized",
        "{}",
        forged.body
    );
    assert!(
        forged
            .head
            .contains("www-authenticate: Bearer realm=\"forge\""),
        "{}",
        forged.head
    );
    let git = call(
        &server,
        "GET",
        "/alice/app.git/info/refs?service=git-upload-pack",
        Some("not-a-token"),
        None,
    );
    assert_eq!(git.status, 401, "{}", git.head);
    assert!(
        git.head.contains("www-authenticate: Basic realm=\"forge\""),
        "{}",
        git.head
    );
    assert!(
        git.head.contains("content-type: text/plain"),
        "{}",
        git.head
    );

    // A repository owner that is one of the forge's own paths is refused.
    let reserved = call(
        &server,
        "POST",
        "/api/v1/repos",
        Some(&admin),
        Some(r#"{"name": "api/tools"}"#),
    );
    assert_error(
        &reserved,
        400,
        "invalid_request",
        "the owner is a path of the forge's own",
    );
}

/// The OpenAPI document the server serves is generated from the handlers; a handler
/// changed without its documentation changes it, and this snapshot fails until the
/// change is reviewed (`cargo insta review`, or `INSTA_UPDATE=always cargo test`).
#[test]
fn the_openapi_document_is_served_and_checked_in() {
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    let server = Server::start_with(&forge, &[]);
    let answer = call(&server, "GET", "/api/v1/openapi.json", None, None);
    assert_eq!(answer.status, 200, "{}", answer.head);
    assert!(
        answer.head.contains("content-type: application/json"),
        "{}",
        answer.head
    );
    assert_eq!(answer.body["openapi"], "3.1.0");
    // Every operation answers its errors with the one error body (a 304 has no body).
    for (path, item) in answer.body["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            for (status, response) in responses {
                if status == "304" {
                    assert!(response.get("content").is_none(), "{method} {path} 304");
                } else if !status.starts_with('2') {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
    insta::assert_snapshot!(
        "openapi",
        serde_json::to_string_pretty(&answer.body).unwrap()
    );
}

/// Every answer names its request (`x-request-id`, also in the request's log line), and
/// JSON is gzip-compressed for a client that asks, while git's answers never are.
#[test]
fn answers_carry_a_request_id_and_json_is_compressed() {
    use std::io::Read;
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    forge.ok(&["repo", "create", "alice/app"]);
    forge.ok(&["repo", "config", "alice/app", "public", "true"]);
    let server = Server::start_with(&forge, &[]);
    let addr = server.url.trim_start_matches("http://");
    let get = |path: &str| {
        common::raw_http(
            addr,
            format!(
                "GET {path} HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nX-Request-Id: mine\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
    };
    let id_of = |head: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix("x-request-id: "))
            .unwrap_or_else(|| panic!("no request id in {head}"))
            .to_owned()
    };

    let listed = get("/api/v1/repos");
    assert_eq!(listed.status, 200, "{}", listed.head);
    assert!(
        listed.head.contains("content-encoding: gzip"),
        "{}",
        listed.head
    );
    let mut json = String::new();
    flate2::read::GzDecoder::new(&listed.body[..])
        .read_to_string(&mut json)
        .unwrap();
    let body: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(body["items"][0]["name"], "alice/app", "{body}");

    let refs = get("/alice/app.git/info/refs?service=git-upload-pack");
    assert_eq!(refs.status, 200, "{}", refs.head);
    assert!(!refs.head.contains("content-encoding"), "{}", refs.head);

    // The server's own ids, not the client's, and a fresh one per request.
    let (first, second) = (id_of(&listed.head), id_of(&refs.head));
    for id in [&first, &second] {
        assert_eq!(id.len(), 16, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    }
    assert_ne!(first, second);
    // The line is written once the answer is sent.
    let logged = common::wait_for(std::time::Duration::from_secs(10), || {
        server.log().iter().any(|line| line.contains(&first))
    });
    assert!(
        logged,
        "the request's log line names its id: {:?}",
        server.log()
    );
}

/// Refs over REST: pages by name with an opaque cursor and a `Link` header, a prefix, and
/// one ref by name (slashes percent-encoded), read by the same rules as git.
#[test]
fn refs_are_listed_in_pages_and_read_one_by_one() {
    use common::git;
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    forge.ok(&["repo", "create", "alice/app"]);
    let server = Server::start_with(&forge, &[]);
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    common::commit_file(&work, "a", "1", "one");
    let head = git(&work, &["rev-parse", "HEAD"]).trim().to_owned();
    let mut refspecs = vec!["main".to_owned()];
    for i in 0..5 {
        refspecs.push(format!("main:refs/heads/topic/{i}"));
    }
    refspecs.push("main:refs/tags/v1".to_owned());
    let mut args = vec!["push", "-q"];
    let url = server.repo_url("alice/app");
    args.push(&url);
    args.extend(refspecs.iter().map(String::as_str));
    git(&work, &args);
    let admin = server.token.clone();

    let mut names = Vec::new();
    let mut path = "/api/v1/repos/alice/app/refs?prefix=refs/heads/&limit=2".to_owned();
    let mut pages = 0;
    loop {
        let page = call(&server, "GET", &path, Some(&admin), None);
        assert_eq!(page.status, 200, "{}", page.body);
        pages += 1;
        for item in page.body["items"].as_array().unwrap() {
            assert_eq!(item["sha1"], head.as_str(), "{item}");
            assert_eq!(item["id"].as_str().unwrap().len(), 64);
            names.push(item["name"].as_str().unwrap().to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(cursor) => {
                let link = page
                    .head
                    .lines()
                    .find_map(|l| l.strip_prefix("link: "))
                    .unwrap_or_else(|| panic!("a Link header in {}", page.head));
                assert!(link.contains(&format!("cursor={cursor}")), "{link}");
                assert!(link.ends_with("; rel=\"next\""), "{link}");
                path = format!(
                    "/api/v1/repos/alice/app/refs?prefix=refs/heads/&limit=2&cursor={cursor}"
                );
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        names,
        [
            "refs/heads/main",
            "refs/heads/topic/0",
            "refs/heads/topic/1",
            "refs/heads/topic/2",
            "refs/heads/topic/3",
            "refs/heads/topic/4",
        ]
    );
    let all = call(
        &server,
        "GET",
        "/api/v1/repos/alice/app/refs",
        Some(&admin),
        None,
    );
    let all = all.body["items"].as_array().unwrap();
    assert_eq!(all[0]["name"], "HEAD");
    assert_eq!(all[0]["target"], "refs/heads/main");
    assert_eq!(all.len(), 8, "HEAD, 6 branches and a tag");

    let one = call(
        &server,
        "GET",
        "/api/v1/repos/alice/app/refs/tags%2Fv1",
        Some(&admin),
        None,
    );
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.body["name"], "refs/tags/v1");
    assert_eq!(one.body["sha1"], head.as_str());
    assert_error(
        &call(
            &server,
            "GET",
            "/api/v1/repos/alice/app/refs/heads%2Fnope",
            Some(&admin),
            None,
        ),
        404,
        "ref_not_found",
        "alice/app has no ref refs/heads/nope",
    );
    assert_error(
        &call(
            &server,
            "GET",
            "/api/v1/repos/alice/app/refs?cursor=%%%",
            Some(&admin),
            None,
        ),
        400,
        "invalid_request",
        "",
    );
    // A private repository is not there for a caller without read on it.
    assert_error(
        &call(&server, "GET", "/api/v1/repos/alice/app/refs", None, None),
        401,
        "unauthorized",
        "a token is required",
    );
}

#[test]
fn one_repository_its_settings_and_deletion() {
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    forge.ok(&["identity", "add", "alice", "--kind", "human"]);
    forge.ok(&["identity", "add", "bob", "--kind", "human"]);
    let server = Server::start_with(&forge, &[]);
    let alice = forge.token(&["--identity", "alice", "--repo", "alice/*", "--ops", "admin"]);
    let alice_writer = forge.token(&["--identity", "alice", "--repo", "alice/*", "--ops", "write"]);
    let bob = forge.token(&["--identity", "bob", "--repo", "bob/*", "--ops", "admin"]);
    let created = call(
        &server,
        "POST",
        "/api/v1/repos",
        Some(&alice),
        Some(r#"{"name": "alice/app"}"#),
    );
    assert_eq!(created.status, 201, "{}", created.body);

    let got = call(
        &server,
        "GET",
        "/api/v1/repos/alice/app",
        Some(&alice),
        None,
    );
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(
        got.body,
        json!({
            "name": "alice/app",
            "public": false,
            "created_at": got.body["created_at"],
            "default_branch": got.body["default_branch"],
            "allow_force": false,
            "fsck_objects": true,
            "git_path": "/alice/app.git",
        })
    );
    assert_error(
        &call(&server, "GET", "/api/v1/repos/alice/app", None, None),
        401,
        "unauthorized",
        "a token is required",
    );
    assert_error(
        &call(&server, "GET", "/api/v1/repos/alice/app", Some(&bob), None),
        404,
        "repo_not_found",
        "alice/app does not exist",
    );

    // Settings: admin only; each change is an event; the repository reads as changed.
    let patch = |token: &str, body: &str| {
        call(
            &server,
            "PATCH",
            "/api/v1/repos/alice/app",
            Some(token),
            Some(body),
        )
    };
    assert_error(
        &patch(&alice_writer, r#"{"public": true}"#),
        403,
        "forbidden",
        "",
    );
    assert_error(
        &patch(&bob, r#"{"public": true}"#),
        404,
        "repo_not_found",
        "",
    );
    assert_error(
        &patch(&alice, r#"{"colour": "red"}"#),
        422,
        "invalid_request",
        "unknown field `colour`",
    );
    let changed = patch(&alice, r#"{"public": true, "allow_force": true}"#);
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(changed.body["public"], true);
    assert_eq!(changed.body["allow_force"], true);
    assert_eq!(changed.body["fsck_objects"], true);
    assert_eq!(
        call(&server, "GET", "/api/v1/repos/alice/app", None, None).status,
        200
    );
    assert_eq!(
        forge
            .ok(&["repo", "config", "alice/app", "allow-force"])
            .trim(),
        "true"
    );
    let events = call(
        &server,
        "GET",
        "/api/v1/repos/alice/app/events?type=repo.changed",
        Some(&alice),
        None,
    );
    let changes: Vec<(&str, bool)> = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["data"]["setting"].as_str().unwrap(),
                e["data"]["value"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [("public", true), ("allow-force", true)],
        "{}",
        events.body
    );
    assert!(
        events.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"]["identity"] == "alice")
    );

    // Deletion: admin only; afterwards the name is free and git finds nothing there.
    assert_error(
        &call(
            &server,
            "DELETE",
            "/api/v1/repos/alice/app",
            Some(&alice_writer),
            None,
        ),
        403,
        "forbidden",
        "",
    );
    let deleted = call(
        &server,
        "DELETE",
        "/api/v1/repos/alice/app",
        Some(&alice),
        None,
    );
    assert_eq!(deleted.status, 204, "{}", deleted.head);
    assert_error(
        &call(
            &server,
            "GET",
            "/api/v1/repos/alice/app",
            Some(&alice),
            None,
        ),
        404,
        "repo_not_found",
        "",
    );
    assert_error(
        &call(
            &server,
            "DELETE",
            "/api/v1/repos/alice/app",
            Some(&alice),
            None,
        ),
        404,
        "repo_not_found",
        "",
    );
    let (cloned, stderr) = common::try_git(
        tmp.path(),
        &["clone", &server.repo_url_with(&alice, "alice/app"), "gone"],
    );
    assert!(!cloned && stderr.contains("not found"), "{stderr}");
    let again = call(
        &server,
        "POST",
        "/api/v1/repos",
        Some(&alice),
        Some(r#"{"name": "alice/app"}"#),
    );
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(
        call(
            &server,
            "GET",
            "/api/v1/repos/alice/app",
            Some(&alice),
            None
        )
        .body["public"],
        false
    );
    let log = call(
        &server,
        "GET",
        "/api/v1/events?type=repo.deleted",
        Some(&server.token),
        None,
    );
    assert_eq!(
        log.body["items"][0]["data"]["name"], "alice/app",
        "{}",
        log.body
    );
}

#[test]
fn identities_over_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    forge.ok(&["identity", "add", "alice", "--kind", "human"]);
    forge.ok(&["identity", "add", "bob", "--kind", "human"]);
    let server = Server::start_with(&forge, &[]);
    let admin = server.token.clone();
    let alice = forge.token(&["--identity", "alice", "--repo", "alice/*", "--ops", "read"]);
    let bob = forge.token(&["--identity", "bob", "--repo", "bob/*", "--ops", "read"]);
    let post = |token: &str, body: &str| {
        call(
            &server,
            "POST",
            "/api/v1/identities",
            Some(token),
            Some(body),
        )
    };

    // A human adds agents it owns (the owner may be left out); not humans, not others' agents.
    let bot = post(&alice, r#"{"name": "alice-bot", "kind": "agent"}"#);
    assert_eq!(bot.status, 201, "{}", bot.body);
    assert_eq!(bot.body["owner"], "alice");
    assert_eq!(bot.body["kind"], "agent");
    assert_eq!(bot.body["disabled"], false);
    assert_error(
        &post(&alice, r#"{"name": "carol", "kind": "human"}"#),
        403,
        "forbidden",
        "may add only agents it owns",
    );
    assert_error(
        &post(
            &alice,
            r#"{"name": "bobs-bot", "kind": "agent", "owner": "bob"}"#,
        ),
        403,
        "forbidden",
        "",
    );
    assert_error(
        &post(&alice, r#"{"name": "alice-bot", "kind": "agent"}"#),
        409,
        "identity_exists",
        "",
    );
    assert_error(
        &post(&alice, r#"{"name": "../x", "kind": "agent"}"#),
        400,
        "invalid_argument",
        "invalid identity name",
    );
    assert_error(
        &post(&alice, r#"{"name": "x", "kind": "robot"}"#),
        422,
        "invalid_request",
        "unknown variant `robot`",
    );
    let narrowed = forge.json(&["token", "attenuate", &alice, "--ttl", "1h"])["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_error(
        &post(&narrowed, r#"{"name": "alice-bot-2", "kind": "agent"}"#),
        403,
        "forbidden",
        "narrowed",
    );
    let bot_token = forge.token(&[
        "--identity",
        "alice-bot",
        "--repo",
        "alice/*",
        "--ops",
        "read",
    ]);
    assert_error(
        &post(&bot_token, r#"{"name": "sub-bot", "kind": "agent"}"#),
        403,
        "forbidden",
        "",
    );
    // A site admin adds humans, and agents for anyone (an agent must name its owner).
    assert_eq!(
        post(&admin, r#"{"name": "carol", "kind": "human"}"#).status,
        201
    );
    assert_error(
        &post(&admin, r#"{"name": "stray", "kind": "agent"}"#),
        400,
        "invalid_argument",
        "an agent needs an owner",
    );
    assert_error(
        &post(
            &admin,
            r#"{"name": "carols", "kind": "human", "owner": "bob"}"#,
        ),
        400,
        "invalid_argument",
        "only agents have an owner",
    );
    assert_error(
        &post(
            &admin,
            r#"{"name": "orphan", "kind": "agent", "owner": "nobody-here"}"#,
        ),
        404,
        "identity_not_found",
        "",
    );

    // Reading: a site admin all, a human itself and its agents, an agent itself.
    let names = |token: &str| -> Vec<String> {
        call(&server, "GET", "/api/v1/identities", Some(token), None).body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&alice), ["alice", "alice-bot"]);
    assert_eq!(names(&bob), ["bob"]);
    assert!(names(&admin).len() >= 5);
    assert_eq!(
        call(
            &server,
            "GET",
            "/api/v1/identities/alice-bot",
            Some(&bot_token),
            None
        )
        .status,
        200
    );
    assert_error(
        &call(
            &server,
            "GET",
            "/api/v1/identities/alice-bot",
            Some(&bob),
            None,
        ),
        403,
        "forbidden",
        "does not administer identity alice-bot",
    );
    assert_error(
        &call(&server, "GET", "/api/v1/identities/ghost", Some(&bob), None),
        403,
        "forbidden",
        "",
    );
    assert_error(
        &call(
            &server,
            "GET",
            "/api/v1/identities/ghost",
            Some(&admin),
            None,
        ),
        404,
        "identity_not_found",
        "",
    );
    assert_error(
        &call(&server, "GET", "/api/v1/identities", None, None),
        401,
        "unauthorized",
        "",
    );

    // Disabling: the owner disables its agent, whose tokens stop at once; the agent cannot
    // re-enable itself.
    let disabled = call(
        &server,
        "PATCH",
        "/api/v1/identities/alice-bot",
        Some(&alice),
        Some(r#"{"disabled": true}"#),
    );
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    assert_eq!(disabled.body["disabled"], true);
    assert_error(
        &call(&server, "GET", "/api/v1/user", Some(&bot_token), None),
        401,
        "unauthorized",
        "disabled",
    );
    assert_error(
        &call(
            &server,
            "PATCH",
            "/api/v1/identities/alice-bot",
            Some(&bob),
            Some(r#"{"disabled": false}"#),
        ),
        403,
        "forbidden",
        "",
    );
    assert_eq!(
        call(
            &server,
            "PATCH",
            "/api/v1/identities/alice-bot",
            Some(&alice),
            Some(r#"{"disabled": false}"#)
        )
        .status,
        200
    );
    assert_eq!(
        call(&server, "GET", "/api/v1/user", Some(&bot_token), None).status,
        200
    );

    // Removal: a human removes its agent, not itself; a site admin removes a human.
    assert_error(
        &call(
            &server,
            "DELETE",
            "/api/v1/identities/alice",
            Some(&alice),
            None,
        ),
        403,
        "forbidden",
        "cannot remove its own identity",
    );
    assert_error(
        &call(
            &server,
            "PATCH",
            "/api/v1/identities/alice",
            Some(&alice),
            Some(r#"{"disabled": true}"#),
        ),
        403,
        "forbidden",
        "cannot disable its own identity",
    );
    assert_error(
        &call(
            &server,
            "PATCH",
            "/api/v1/identities/admin",
            Some(&admin),
            Some(r#"{"disabled": true}"#),
        ),
        403,
        "forbidden",
        "lock it out",
    );
    assert_error(
        &call(
            &server,
            "DELETE",
            "/api/v1/identities/bob",
            Some(&alice),
            None,
        ),
        403,
        "forbidden",
        "",
    );
    assert_error(
        &call(
            &server,
            "DELETE",
            "/api/v1/identities/alice",
            Some(&admin),
            None,
        ),
        400,
        "invalid_argument",
        "alice-bot",
    );
    let removed = call(
        &server,
        "DELETE",
        "/api/v1/identities/alice-bot",
        Some(&alice),
        None,
    );
    assert_eq!(removed.status, 204, "{}", removed.body);
    assert_error(
        &call(&server, "GET", "/api/v1/user", Some(&bot_token), None),
        401,
        "unauthorized",
        "",
    );
    assert_eq!(
        call(
            &server,
            "DELETE",
            "/api/v1/identities/carol",
            Some(&admin),
            None
        )
        .status,
        204
    );
    let events: Vec<String> = call(
        &server,
        "GET",
        "/api/v1/events?type=identity.added,identity.changed,identity.removed",
        Some(&admin),
        None,
    )
    .body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {} by {}",
                e["type"].as_str().unwrap(),
                e["data"]["name"].as_str().unwrap_or("?"),
                e["actor"]["identity"].as_str().unwrap_or("?")
            )
        })
        .collect();
    assert!(
        events.contains(&"identity.added alice-bot by alice".to_owned()),
        "{events:?}"
    );
    assert!(
        events.contains(&"identity.removed alice-bot by alice".to_owned()),
        "{events:?}"
    );
    assert!(
        events.contains(&"identity.added carol by admin".to_owned()),
        "{events:?}"
    );
}

/// schemathesis (PyPI) runs against a live server's own document with every check on
/// (`.ci/schemathesis`: a seeded repository, a token, the destructive operations last) and
/// finds nothing. `FORGE_TEST_SCHEMATHESIS` names its executable when it is not on `PATH`.
#[test]
fn schemathesis_finds_nothing() {
    let schemathesis =
        std::env::var("FORGE_TEST_SCHEMATHESIS").unwrap_or_else(|_| "schemathesis".to_owned());
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/schemathesis");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(&schemathesis)
        .arg(common::forge_bin())
        .output()
        .unwrap_or_else(|e| panic!("bash {}: {e}", script.display()));
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "schemathesis ({schemathesis}; FORGE_TEST_SCHEMATHESIS names another) failed:\n{report}"
    );
    // Both runs tested every operation they selected, and reached the seeded data.
    assert_eq!(report.matches("generated, ").count(), 2, "{report}");
    assert!(!report.contains(" failed"), "{report}");
    let answered = report
        .lines()
        .find_map(|l| l.split("answered 2xx: ").nth(1))
        .and_then(|n| n.trim().parse::<u32>().ok())
        .unwrap_or(0);
    assert!(
        answered > 50,
        "too few requests reached the seeded repository:\n{report}"
    );
}
