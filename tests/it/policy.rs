//! Ref policies against a real `forge serve` and stock git: a protected branch moves only
//! when the evidence its rules demand exists, on every path a ref moves by.

use crate::common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Forge, Server, commit_file, git, try_git};
use serde_json::Value;

const TEST_RESULT: &str = "https://in-toto.io/attestation/test-result/v0.1";
const REVIEW: &str = "urn:forge:attestation:review:v1";

/// A served repository `alice/app` with one commit on `main`; humans alice, bob and carol,
/// agents ci-bot and dev-bot (owned by alice), each with a key at `TMP/NAME.key`.
pub(crate) struct World {
    pub tmp: tempfile::TempDir,
    pub forge: Forge,
    pub server: Server,
    pub work: std::path::PathBuf,
}

impl World {
    pub fn new() -> World {
        let tmp = tempfile::tempdir().unwrap();
        let forge = Forge::new(&tmp.path().join("data"));
        forge.ok(&["repo", "create", "alice/app"]);
        for (name, kind, owner) in [
            ("alice", "human", None),
            ("bob", "human", None),
            ("carol", "human", None),
            ("ci-bot", "agent", Some("alice")),
            ("dev-bot", "agent", Some("alice")),
        ] {
            let mut args = vec!["identity", "add", name, "--kind", kind];
            if let Some(owner) = owner {
                args.extend(["--owner", owner]);
            }
            forge.ok(&args);
            let key = tmp.path().join(format!("{name}.key"));
            let public = forge.ok(&["keygen", "--out", key.to_str().unwrap()]);
            forge.ok(&["identity", "key", "add", name, public.trim()]);
        }
        let server = Server::start(&forge);
        let work = tmp.path().join("work");
        std::fs::create_dir(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        commit_file(&work, "a.txt", "one\n", "one");
        git(
            &work,
            &["push", "-q", &server.repo_url("alice/app"), "main"],
        );
        World {
            tmp,
            forge,
            server,
            work,
        }
    }

    pub fn url(&self, identity: &str) -> String {
        let token = self.forge.write_token(identity, "alice/app");
        self.server.repo_url_with(&token, "alice/app")
    }

    pub fn commit(&self, message: &str) -> String {
        commit_file(&self.work, &format!("{message}.txt"), message, message);
        git(&self.work, &["rev-parse", "HEAD"]).trim().to_owned()
    }

    /// An envelope signed by `identity` about `commit`.
    fn attestation(
        &self,
        identity: &str,
        commit: &str,
        predicate_type: &str,
        predicate: &str,
    ) -> String {
        let key = self.tmp.path().join(format!("{identity}.key"));
        self.forge
            .attest_sign(&key, commit, None, predicate_type, predicate)
    }

    /// The rule most tests start from: `main` needs ci-bot's PASSED test result.
    pub fn protect_main(&self) -> String {
        self.add_rule(&[
            "--ref",
            "refs/heads/main",
            "--require",
            "test-result",
            "--signers",
            "ci-bot",
            "--result",
            "PASSED",
        ])
    }

    /// `forge policy add alice/app ARGS`.
    pub fn add_rule(&self, args: &[&str]) -> String {
        let mut all = vec!["policy", "add", "alice/app"];
        all.extend_from_slice(args);
        self.forge.ok(&all)
    }

    pub(crate) fn passed(&self, identity: &str, commit: &str) -> String {
        self.attestation(
            identity,
            commit,
            TEST_RESULT,
            r#"{"result": "PASSED", "configuration": []}"#,
        )
    }

    pub(crate) fn upload(&self, uploader: &str, envelope: &str) {
        let token = self.forge.write_token(uploader, "alice/app");
        let answer = common::post_json(
            &self.server.addr(),
            "/api/v1/repos/alice/app/attestations",
            &format!("Bearer {token}"),
            envelope.trim(),
        );
        assert_eq!(answer.status, 201, "{}", answer.text());
    }

    fn push(&self, identity: &str, refspec: &str, envelopes: &[&str]) -> (bool, String) {
        let url = self.url(identity);
        let options: Vec<String> = envelopes
            .iter()
            .map(|e| format!("attest={}", URL_SAFE_NO_PAD.encode(e.trim())))
            .collect();
        let mut args = vec!["push"];
        for option in &options {
            args.extend(["-o", option.as_str()]);
        }
        args.extend([url.as_str(), refspec]);
        try_git(&self.work, &args)
    }

    /// Moves `refs/heads/main` from `old` to `new` over REST with `identity`'s write token.
    fn rest_update_main(&self, identity: &str, old: &str, new: &str) -> common::RawAnswer {
        let token = self.forge.write_token(identity, "alice/app");
        common::post_json(
            &self.server.addr(),
            "/api/v1/repos/alice/app/refs",
            &format!("Bearer {token}"),
            &format!(r#"{{"ref": "refs/heads/main", "old": "{old}", "new": "{new}"}}"#),
        )
    }

    fn remote(&self, name: &str) -> String {
        let listed = git(
            &self.work,
            &["ls-remote", &self.server.repo_url("alice/app"), name],
        );
        listed.split_whitespace().next().unwrap_or("").to_owned()
    }
}

#[test]
fn a_protected_branch_moves_only_with_the_evidence_its_rules_demand() {
    let w = World::new();
    let added = w.protect_main();
    assert!(
        added.starts_with("added rule 1\trefs/heads/main\trequires 1×"),
        "{added}"
    );

    // Refused without evidence, with the code, the rule, what is missing and how to fix it.
    let second = w.commit("two");
    let (ok, stderr) = w.push("dev-bot", "main", &[]);
    assert!(!ok);
    let reason = format!(
        "FORGE-P003: rule 1 (refs/heads/main) needs 1 attestation(s) of {TEST_RESULT} with result PASSED by ci-bot on {second}; found 0"
    );
    assert!(
        stderr.contains(&format!("! [remote rejected] main -> main ({reason})")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("remote: forge: refs/heads/main: sign one: forge attest sign --key KEY --commit {second} --predicate-type {TEST_RESULT}")),
        "{stderr}"
    );
    // The upload URL is absolute: the server's as the pusher reached it.
    assert!(
        stderr.contains(&format!("remote: forge: refs/heads/main: then upload it (POST {}/api/v1/repos/alice/app/attestations) or push with git push -o attest=<base64url envelope>", w.server.url)),
        "{stderr}"
    );
    // A failed test run does not count; another signer does not either.
    let (ok, _) = w.push("dev-bot", "main:refs/heads/topic", &[]);
    assert!(ok);
    w.upload(
        "ci-bot",
        &w.attestation(
            "ci-bot",
            &second,
            TEST_RESULT,
            r#"{"result": "FAILED", "configuration": []}"#,
        ),
    );
    w.upload("bob", &w.passed("bob", &second));
    assert!(!w.push("dev-bot", "main", &[]).0);
    // CI's PASSED result, uploaded: the same push lands.
    w.upload("ci-bot", &w.passed("ci-bot", &second));
    let (ok, stderr) = w.push("dev-bot", "main", &[]);
    assert!(ok, "{stderr}");
    assert_eq!(w.remote("refs/heads/main"), second);

    // In one step: the owner of ci-bot pushes with ci-bot's attestation attached.
    let third = w.commit("three");
    let (ok, stderr) = w.push("alice", "main", &[&w.passed("ci-bot", &third)]);
    assert!(ok, "{stderr}");
    assert_eq!(w.remote("refs/heads/main"), third);

    // The other paths meet the same rule: REST and the operator's forge ref set.
    let fourth = w.commit("four");
    assert!(w.push("dev-bot", "main:refs/heads/topic", &[]).0);
    let answer = w.rest_update_main("alice", &third, &fourth);
    assert_eq!(answer.status, 422, "{}", answer.text());
    let body: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(body["error"]["code"], "policy_refused");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("FORGE-P003: rule 1"),
        "{body}"
    );
    let refused = w
        .forge
        .fails(&["ref", "set", "alice/app", "refs/heads/main", &fourth]);
    assert!(
        refused.contains("FORGE-P003: rule 1 (refs/heads/main)"),
        "{refused}"
    );
    assert_eq!(w.remote("refs/heads/main"), third);

    // A key revoked later stops its attestations counting.
    w.upload("ci-bot", &w.passed("ci-bot", &fourth));
    let ci_key = w.forge.json(&["identity", "key", "list", "ci-bot"])["keys"][0]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    w.forge
        .ok(&["identity", "key", "revoke", "ci-bot", &ci_key]);
    let (ok, stderr) = w.push("dev-bot", "main", &[]);
    assert!(!ok);
    assert!(stderr.contains("found 0"), "{stderr}");

    // Bypass is for the named identity only, and is told and logged.
    w.forge.ok(&["policy", "remove", "alice/app", "1"]);
    w.add_rule(&[
        "--ref",
        "refs/heads/main",
        "--require",
        "test-result",
        "--signers",
        "ci-bot",
        "--bypass",
        "carol",
    ]);
    assert!(
        !w.push("alice", "main", &[]).0,
        "admin-like owners do not bypass"
    );
    let (ok, stderr) = w.push("carol", "main", &[]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("remote: forge: carol bypassed FORGE-P003: rule 2 (refs/heads/main)"),
        "{stderr}"
    );
    assert!(
        w.server
            .log()
            .iter()
            .any(|line| line.contains("carol bypassed FORGE-P003")),
        "the bypass is in the server's log"
    );
    // And in the event of the update it let through.
    let bypass_event = common::call(
        &w.server,
        "GET",
        "/api/v1/repos/alice/app/events?type=ref.updated",
        Some(&w.server.token),
        None,
    );
    let last = bypass_event.body["items"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["actor"]["identity"], "carol", "{last}");
    assert!(
        last["data"]["policy_notes"][0]
            .as_str()
            .unwrap_or("")
            .starts_with("carol bypassed FORGE-P003: rule 2 (refs/heads/main)"),
        "{last}"
    );

    // Evaluate mode refuses nothing and says what it would have refused.
    w.forge.ok(&["policy", "remove", "alice/app", "2"]);
    w.add_rule(&[
        "--ref",
        "refs/heads/**",
        "--require",
        "test-result",
        "--evaluate",
    ]);
    let fifth = w.commit("five");
    let (ok, stderr) = w.push("dev-bot", "main", &[]);
    assert!(ok, "{stderr}");
    assert!(
        stderr
            .contains("remote: forge: evaluate: would refuse: FORGE-P003: rule 3 (refs/heads/**)"),
        "{stderr}"
    );
    assert_eq!(w.remote("refs/heads/main"), fifth);
    let listed = w.forge.json(&["policy", "list", "alice/app"]);
    assert_eq!(listed["rules"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["rules"][0]["id"], 3);
    assert_eq!(listed["rules"][0]["evaluate_only"], true);
}

#[test]
fn reviews_need_distinct_humans_other_than_the_pusher() {
    let w = World::new();
    w.add_rule(&[
        "--ref",
        "refs/heads/release/*",
        "--require",
        REVIEW,
        "--signers",
        "human",
        "--min",
        "2",
        "--result",
        "approved",
        "--not-pusher",
    ]);
    w.add_rule(&[
        "--ref",
        "refs/heads/agent/*",
        "--require",
        "test-result",
        "--not-pusher",
    ]);
    let commit = w.commit("release");
    let review = |who: &str| {
        w.attestation(
            who,
            &commit,
            REVIEW,
            &format!(r#"{{"verdict": "approved", "reviewer": "{who}"}}"#),
        )
    };
    // Reviewers upload their own reviews of a commit the repository has.
    assert!(w.push("alice", "main:refs/heads/wip", &[]).0);
    w.upload("alice", &review("alice"));
    w.upload("bob", &review("bob"));
    // alice pushes: her own review does not count.
    let (ok, stderr) = w.push("alice", "main:refs/heads/release/1", &[]);
    assert!(!ok);
    assert!(
        stderr.contains(&format!(
            "needs 2 attestation(s) of {REVIEW} with result approved by any human, not by the pusher on {commit}; found 1"
        )),
        "{stderr}"
    );
    // An agent's review is no human's; a rejection is no approval.
    w.upload("alice", &review("dev-bot"));
    w.upload(
        "carol",
        &w.attestation("carol", &commit, REVIEW, r#"{"verdict": "rejected"}"#),
    );
    assert!(!w.push("alice", "main:refs/heads/release/1", &[]).0);
    w.upload("carol", &review("carol"));
    let (ok, stderr) = w.push("alice", "main:refs/heads/release/1", &[]);
    assert!(ok, "{stderr}");

    // An agent attesting its own push does not satisfy "not by the pusher"; its owner's
    // push with the same evidence does.
    let (ok, stderr) = w.push(
        "ci-bot",
        "main:refs/heads/agent/x",
        &[&w.passed("ci-bot", &commit)],
    );
    assert!(!ok);
    assert!(stderr.contains("not by the pusher"), "{stderr}");
    let (ok, stderr) = w.push(
        "alice",
        "main:refs/heads/agent/x",
        &[&w.passed("ci-bot", &commit)],
    );
    assert!(ok, "{stderr}");
}

#[test]
fn writers_and_fast_forwards() {
    let w = World::new();
    w.add_rule(&[
        "--ref",
        "refs/heads/stable",
        "--writers",
        "alice,human-less",
        "--fast-forward-only",
    ]);
    let first = git(&w.work, &["rev-parse", "HEAD"]).trim().to_owned();
    let (ok, stderr) = w.push("dev-bot", "main:refs/heads/stable", &[]);
    assert!(!ok);
    assert!(
        stderr.contains(
            "(FORGE-P001: rule 1 (refs/heads/stable) lets only alice or human-less create it)"
        ),
        "{stderr}"
    );
    assert!(w.push("alice", "main:refs/heads/stable", &[]).0);
    w.commit("two");
    assert!(w.push("alice", "main:refs/heads/stable", &[]).0);
    let (ok, stderr) = w.push("alice", &format!("+{first}:refs/heads/stable"), &[]);
    assert!(!ok);
    assert!(
        stderr
            .contains("(FORGE-P002: rule 1 (refs/heads/stable) allows fast-forward updates only)"),
        "{stderr}"
    );
    let (ok, stderr) = w.push("alice", ":refs/heads/stable", &[]);
    assert!(!ok);
    assert!(
        stderr.contains(
            "(FORGE-P002: rule 1 (refs/heads/stable) allows no deletion (fast-forward only))"
        ),
        "{stderr}"
    );
    let removed = w.forge.fails(&["policy", "remove", "alice/app", "7"]);
    assert!(removed.contains("alice/app has no rule 7"), "{removed}");
    let bad = w
        .forge
        .fails(&["policy", "add", "alice/app", "--ref", "refs/heads/x"]);
    assert!(
        bad.contains(
            "a rule needs writers, creators, updaters, deleters, fast-forward only, linear history or a required attestation"
        ),
        "{bad}"
    );
}

#[test]
fn linear_history_on_every_path() {
    let w = World::new();
    w.add_rule(&["--ref", "refs/heads/main", "--linear-history"]);
    w.add_rule(&["--ref", "refs/heads/release/*", "--linear-history"]);
    let base = git(&w.work, &["rev-parse", "HEAD"]).trim().to_owned();
    git(&w.work, &["checkout", "-q", "-b", "side"]);
    w.commit("side");
    git(&w.work, &["checkout", "-q", "main"]);
    w.commit("two");
    git(
        &w.work,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "merge",
            "-q",
            "--no-ff",
            "-m",
            "merge side",
            "side",
        ],
    );
    let merge = git(&w.work, &["rev-parse", "HEAD"]).trim().to_owned();
    let reason = format!(
        "FORGE-P004: rule 1 (refs/heads/main) requires linear history; {merge} is a merge commit"
    );
    let refused = format!("({reason})");

    // The merge arrives in the push's pack.
    let (ok, stderr) = w.push("alice", "main", &[]);
    assert!(!ok);
    assert!(stderr.contains(&refused), "{stderr}");
    assert!(
        stderr.contains("remote: forge: refs/heads/main: rebase instead of merging"),
        "{stderr}"
    );
    assert_eq!(w.remote("refs/heads/main"), base);

    // The merge is stored already (on a branch no rule covers): the update of main still
    // brings it.
    assert!(w.push("alice", "main:refs/heads/feature", &[]).0);
    let (ok, stderr) = w.push("alice", "main", &[]);
    assert!(!ok);
    assert!(stderr.contains(&refused), "{stderr}");

    // A REST ref update is held to it too.
    let answer = w.rest_update_main("alice", &base, &merge);
    assert_eq!(answer.status, 422, "{}", answer.text());
    assert!(answer.text().contains(&reason), "{}", answer.text());

    // A new ref brings only what no ref has: the merge is on feature already.
    assert!(w.push("alice", "main:refs/heads/release/1", &[]).0);

    // Rebased, the same work lands.
    git(&w.work, &["reset", "-q", "--hard", "HEAD~1"]);
    git(
        &w.work,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "cherry-pick",
            "side",
        ],
    );
    let (ok, stderr) = w.push("alice", "main", &[]);
    assert!(ok, "{stderr}");
    let tip = git(&w.work, &["rev-parse", "HEAD"]).trim().to_owned();
    assert_eq!(w.remote("refs/heads/main"), tip);
}

#[test]
fn creation_update_and_deletion_restricted_apart() {
    let w = World::new();
    w.add_rule(&[
        "--ref",
        "refs/heads/agent/**",
        "--creators",
        "agent",
        "--deleters",
        "nobody",
    ]);
    let listed = w.forge.json(&["policy", "list", "alice/app"]);
    assert_eq!(listed["rules"][0]["creators"], serde_json::json!(["agent"]));
    assert_eq!(listed["rules"][0]["deleters"], serde_json::json!([]));
    assert!(listed["rules"][0].get("updaters").is_none(), "{listed}");
    let (ok, stderr) = w.push("alice", "main:refs/heads/agent/x", &[]);
    assert!(!ok);
    assert!(
        stderr.contains("(FORGE-P001: rule 1 (refs/heads/agent/**) lets only any agent create it)"),
        "{stderr}"
    );
    assert!(w.push("dev-bot", "main:refs/heads/agent/x", &[]).0);
    let tip = w.commit("two");
    let (ok, stderr) = w.push("alice", "main:refs/heads/agent/x", &[]);
    assert!(ok, "updates are not restricted: {stderr}");
    assert_eq!(w.remote("refs/heads/agent/x"), tip);
    let (ok, stderr) = w.push("dev-bot", ":refs/heads/agent/x", &[]);
    assert!(!ok);
    assert!(
        stderr.contains("(FORGE-P001: rule 1 (refs/heads/agent/**) lets nobody delete it)"),
        "{stderr}"
    );
    // The operator's `forge ref delete` goes through the same gate.
    let refused = w
        .forge
        .fails(&["ref", "delete", "alice/app", "refs/heads/agent/x"]);
    assert!(
        refused.contains("FORGE-P001: rule 1 (refs/heads/agent/**) lets nobody delete it"),
        "{refused}"
    );
    assert_eq!(w.remote("refs/heads/agent/x"), tip);
    let reserved = w
        .forge
        .fails(&["identity", "add", "agent", "--kind", "human"]);
    assert!(
        reserved.contains("it names a set of identities in ref policies"),
        "{reserved}"
    );
}

#[test]
fn policies_and_keys_over_rest() {
    use common::{assert_error, call};
    let w = World::new();
    let s = &w.server;
    let admin = w.forge.token(&[
        "--identity",
        "alice",
        "--repo",
        "alice/app",
        "--ops",
        "admin",
    ]);
    let bob = w.forge.write_token("bob", "alice/app");
    let rule = r#"{"pattern": "refs/heads/main", "required": [{"predicate_type": "test-result", "signers": ["ci-bot"], "result": "PASSED"}]}"#;
    let path = "/api/v1/repos/alice/app/policies";
    assert_error(
        &call(s, "POST", path, Some(&bob), Some(rule)),
        403,
        "forbidden",
        "admin",
    );
    let added = call(s, "POST", path, Some(&admin), Some(rule));
    assert_eq!(added.status, 201, "{}", added.body);
    assert_eq!(added.body["rule"]["id"], 1);
    assert_eq!(
        added.body["rule"]["required"][0]["predicate_type"],
        TEST_RESULT
    );
    assert_eq!(added.body["rule"]["required"][0]["min_signers"], 1);
    let listed = call(s, "GET", path, Some(&bob), None);
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["rules"][0], added.body["rule"]);
    assert_eq!(
        w.forge.json(&["policy", "list", "alice/app"])["rules"][0],
        added.body["rule"]
    );
    assert_error(
        &call(
            s,
            "POST",
            path,
            Some(&admin),
            Some(r#"{"pattern": "heads/x", "linear_history": true}"#),
        ),
        400,
        "invalid_rule",
        "the ref glob must start with refs/: \"heads/x\"",
    );
    assert_error(
        &call(
            s,
            "POST",
            path,
            Some(&admin),
            Some(r#"{"pattern": "refs/heads/x", "fast_forward": true}"#),
        ),
        422,
        "invalid_request",
        "unknown field `fast_forward`",
    );
    assert_error(
        &call(
            s,
            "GET",
            "/api/v1/repos/alice/nothing/policies",
            Some(&bob),
            None,
        ),
        404,
        "repo_not_found",
        "alice/nothing",
    );

    // The rule added over REST holds for a push.
    let commit = w.commit("two");
    let (ok, stderr) = w.push("bob", "main", &[]);
    assert!(!ok);
    assert!(
        stderr.contains("FORGE-P003: rule 1 (refs/heads/main)"),
        "{stderr}"
    );

    assert_error(
        &call(s, "DELETE", &format!("{path}/1"), Some(&bob), None),
        403,
        "forbidden",
        "admin",
    );
    let removed = call(s, "DELETE", &format!("{path}/1"), Some(&admin), None);
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert_eq!(removed.body["removed"], added.body["rule"]);
    assert_error(
        &call(s, "DELETE", &format!("{path}/1"), Some(&admin), None),
        404,
        "rule_not_found",
        "alice/app has no rule 1",
    );
    let (ok, stderr) = w.push("bob", "main", &[]);
    assert!(ok, "{stderr}");
    assert_eq!(w.remote("refs/heads/main"), commit);

    // Keys: an agent's owner adds one; the agent may not add its own.
    let key_file = w.tmp.path().join("ci-bot-2.key");
    let public = w.forge.ok(&["keygen", "--out", key_file.to_str().unwrap()]);
    let public = public.trim();
    let alice = w
        .forge
        .token(&["--identity", "alice", "--repo", "alice/*", "--ops", "read"]);
    let ci_bot = w.forge.write_token("ci-bot", "alice/app");
    let keys = "/api/v1/identities/ci-bot/keys";
    let body = format!(r#"{{"key": "{public}"}}"#);
    assert_error(
        &call(s, "POST", keys, Some(&ci_bot), Some(&body)),
        403,
        "forbidden",
        "ci-bot does not administer identity ci-bot",
    );
    assert_error(
        &call(s, "POST", keys, Some(&bob), Some(&body)),
        403,
        "forbidden",
        "bob does not administer identity ci-bot",
    );
    assert_error(
        &call(
            s,
            "GET",
            "/api/v1/identities/nobody-here/keys",
            Some(&bob),
            None,
        ),
        403,
        "forbidden",
        "bob does not administer identity nobody-here",
    );
    assert_error(
        &call(
            s,
            "GET",
            "/api/v1/identities/nobody-here/keys",
            Some(&s.token),
            None,
        ),
        404,
        "identity_not_found",
        "identity nobody-here does not exist",
    );
    assert_error(
        &call(s, "POST", keys, Some(&alice), Some(r#"{"key": "abc"}"#)),
        400,
        "invalid_argument",
        "the public key: ",
    );
    let added = call(s, "POST", keys, Some(&alice), Some(&body));
    assert_eq!(added.status, 201, "{}", added.body);
    assert_eq!(added.body["keys"][1]["key"], public);
    assert_error(
        &call(
            s,
            "POST",
            "/api/v1/identities/bob/keys",
            Some(&s.token),
            Some(&body),
        ),
        400,
        "invalid_argument",
        public,
    );
    let listed = call(s, "GET", keys, Some(&ci_bot), None);
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["keys"], added.body["keys"]);

    // The new key signs attestations that are kept; revoked by the agent itself, it
    // stops being accepted.
    let signed = |commit: &str| {
        w.forge.attest_sign(
            &key_file,
            commit,
            None,
            TEST_RESULT,
            r#"{"result": "PASSED", "configuration": []}"#,
        )
    };
    w.upload("ci-bot", &signed(&commit));
    let revoked = call(
        s,
        "DELETE",
        &format!("{keys}/{public}"),
        Some(&ci_bot),
        None,
    );
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert!(
        revoked.body["keys"][1]["revoked_at"].is_u64(),
        "{}",
        revoked.body
    );
    let missing = format!("{keys}/{}", "0".repeat(64));
    assert_error(
        &call(s, "DELETE", &missing, Some(&ci_bot), None),
        404,
        "key_not_found",
        &format!("ci-bot has no key {}", "0".repeat(64)),
    );
    let base = git(&w.work, &["rev-parse", "HEAD~1"]).trim().to_owned();
    let answer = common::post_json(
        &s.addr(),
        "/api/v1/repos/alice/app/attestations",
        &format!("Bearer {ci_bot}"),
        signed(&base).trim(),
    );
    assert_eq!(answer.status, 422, "{}", answer.text());
    assert!(
        answer.text().contains("\"revoked_key\""),
        "{}",
        answer.text()
    );
}
