//! Attestation keys and envelopes from the command line: `forge keygen`, `forge attest
//! sign|verify` (offline: no data directory is read or made) and an identity's keys.

use crate::common;

use base64::Engine;
use common::{Forge, commit_file, git};
use serde_json::Value;

const TEST_RESULT: &str = "https://in-toto.io/attestation/test-result/v0.1";

/// Runs forge with `--json` and returns (success, parsed stdout or the error object).
fn json_outcome(forge: &Forge, args: &[&str]) -> (bool, Value) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = forge.run(&all);
    let text = if out.status.success() {
        out.stdout
    } else {
        [out.stdout, out.stderr].concat()
    };
    let value = serde_json::from_slice(&text)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&text)));
    (out.status.success(), value)
}

/// A work tree under `dir` with one commit on `main`: (work tree, commit, tree).
fn one_commit(dir: &std::path::Path) -> (std::path::PathBuf, String, String) {
    let work = dir.join("work");
    std::fs::create_dir(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    commit_file(&work, "a.txt", "one\n", "one");
    let commit = git(&work, &["rev-parse", "HEAD"]).trim().to_owned();
    let tree = git(&work, &["rev-parse", "HEAD^{tree}"]).trim().to_owned();
    (work, commit, tree)
}

/// `forge attest sign` of a PASSED test result about `commit` (and `tree`): the envelope.
fn sign_passed(forge: &Forge, key: &std::path::Path, commit: &str, tree: Option<&str>) -> String {
    let predicate = r#"{"result": "PASSED", "configuration": []}"#;
    forge.attest_sign(key, commit, tree, TEST_RESULT, predicate)
}

/// `forge attest verify FILE --public-key KEY`, which must fail: its error object.
fn verify_refused(forge: &Forge, file: &std::path::Path, key: &str) -> Value {
    let file = file.to_str().unwrap();
    let (ok, error) = json_outcome(forge, &["attest", "verify", file, "--public-key", key]);
    assert!(!ok, "{file} verified with {key}");
    error["error"].clone()
}

#[test]
fn keys_sign_and_verify_offline() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("no-data-here");
    let forge = Forge::new(&data);
    let key = tmp.path().join("ci.key");
    let public = forge.ok(&["keygen", "--out", key.to_str().unwrap()]);
    let public = public.trim().to_owned();
    assert_eq!(public.len(), 64, "{public}");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let again = forge.fails(&["keygen", "--out", key.to_str().unwrap()]);
    assert!(again.contains("exists"), "{again}");

    let (_work, commit, tree) = one_commit(tmp.path());
    let envelope = sign_passed(&forge, &key, &commit, Some(&tree));
    let parsed: Value = serde_json::from_str(&envelope).unwrap();
    assert_eq!(parsed["payloadType"], "application/vnd.in-toto+json");
    assert_eq!(parsed["signatures"][0]["keyid"], public.as_str());
    let payload = base64::engine::general_purpose::STANDARD
        .decode(parsed["payload"].as_str().unwrap())
        .unwrap();
    let statement: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        statement["subject"][0]["digest"]["gitCommit"],
        commit.as_str()
    );
    assert_eq!(statement["subject"][1]["digest"]["gitTree"], tree.as_str());
    let file = tmp.path().join("envelope.json");
    std::fs::write(&file, &envelope).unwrap();
    let file = file.to_str().unwrap();

    let shown = forge.ok(&["attest", "verify", file, "--public-key", &public]);
    assert_eq!(
        shown,
        format!(
            "verified: signed by {public}\npredicate: {TEST_RESULT}\ncommit: {commit}\ntree: {tree}\nresult: PASSED\n"
        )
    );
    let (ok, verified) = json_outcome(&forge, &["attest", "verify", file, "--public-key", &public]);
    assert!(ok);
    assert_eq!(verified["signers"][0], public.as_str());
    assert_eq!(verified["commits"][0], commit.as_str());

    // Another key; the payload changed after signing; garbage; a short commit id.
    let other = tmp.path().join("other.key");
    let other_public = forge.ok(&["keygen", "--out", other.to_str().unwrap()]);
    let error = verify_refused(&forge, std::path::Path::new(file), other_public.trim());
    assert_eq!(error["code"], "bad_signature", "{error}");
    assert_eq!(
        error["message"],
        "no signature verifies against the given keys"
    );
    let forged_statement = String::from_utf8(payload.clone())
        .unwrap()
        .replace("PASSED", "FAILED");
    let mut forged = parsed.clone();
    forged["payload"] = base64::engine::general_purpose::STANDARD
        .encode(forged_statement)
        .into();
    let forged_file = tmp.path().join("forged.json");
    std::fs::write(&forged_file, forged.to_string()).unwrap();
    let error = verify_refused(&forge, &forged_file, &public);
    assert_eq!(error["code"], "bad_signature", "{error}");
    let garbage = tmp.path().join("garbage.json");
    std::fs::write(&garbage, "{not json").unwrap();
    let error = verify_refused(&forge, &garbage, &public);
    assert_eq!(error["code"], "malformed_attestation", "{error}");
    let short = forge.fails(&[
        "attest",
        "sign",
        "--key",
        key.to_str().unwrap(),
        "--commit",
        &commit[..12],
        "--predicate-type",
        TEST_RESULT,
        "--predicate",
        key.with_extension("predicate.json").to_str().unwrap(),
    ]);
    assert!(short.contains("--commit takes a full SHA-1"), "{short}");
    assert!(!data.exists(), "the offline commands made a data directory");
}

#[test]
fn identities_hold_keys_one_owner_each_and_revoke_them() {
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    forge.ok(&["identity", "add", "alice", "--kind", "human"]);
    forge.ok(&[
        "identity", "add", "ci-bot", "--kind", "agent", "--owner", "alice",
    ]);
    let key = tmp.path().join("ci.key");
    let public = forge.ok(&["keygen", "--out", key.to_str().unwrap()]);
    let public = public.trim().to_owned();
    let added = forge.ok(&["identity", "key", "add", "ci-bot", &public]);
    assert_eq!(added, format!("added key {public} to ci-bot\n"));
    let taken = forge.fails(&["identity", "key", "add", "alice", &public]);
    assert!(
        taken.contains(&format!("key {public} already belongs to identity ci-bot")),
        "{taken}"
    );
    // A file holding the key works too; a point that is no key is refused.
    let second = tmp.path().join("second.key");
    let second_public = forge.ok(&["keygen", "--out", second.to_str().unwrap()]);
    let second_file = tmp.path().join("second.pub");
    std::fs::write(&second_file, &second_public).unwrap();
    forge.ok(&[
        "identity",
        "key",
        "add",
        "alice",
        second_file.to_str().unwrap(),
    ]);
    let bad = forge.fails(&["identity", "key", "add", "alice", &"0".repeat(64)]);
    assert!(
        bad.contains("invalid key: a small-order point is not a key"),
        "{bad}"
    );

    assert_eq!(
        forge.ok(&["identity", "key", "list", "ci-bot"]),
        format!("{public}\tactive\n")
    );
    forge.ok(&["identity", "key", "revoke", "ci-bot", &public]);
    let listed = forge.json(&["identity", "key", "list", "ci-bot"]);
    assert_eq!(listed["keys"][0]["key"], public.as_str());
    assert!(
        listed["keys"][0]["revoked_at"].as_u64().is_some(),
        "{listed}"
    );
    let twice = forge.fails(&["identity", "key", "revoke", "ci-bot", &public]);
    assert!(twice.contains("already revoked"), "{twice}");
    let elsewhere = forge.fails(&["identity", "key", "add", "ci-bot", &public]);
    assert!(elsewhere.contains("already belongs"), "{elsewhere}");
}

/// The Python that has securesystemslib (`.ci/run` makes one and names it).
fn python() -> String {
    std::env::var("FORGE_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Envelopes of securesystemslib's DSSE are accepted, and the forge's verify there.
#[test]
fn envelopes_interoperate_with_securesystemslib() {
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/interop/dsse.py");
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let statement = tmp.path().join("statement.json");
    std::fs::write(
        &statement,
        format!(
            r#"{{"_type": "https://in-toto.io/Statement/v1", "subject": [{{"digest": {{"gitCommit": "{commit}"}}}}], "predicateType": "{TEST_RESULT}", "predicate": {{"result": "PASSED", "configuration": []}}}}"#
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(python())
            .arg(&script)
            .args(args)
            .output()
            .expect("python3 runs (FORGE_TEST_PYTHON names one with securesystemslib)");
        assert!(
            out.status.success(),
            "dsse.py {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    // securesystemslib signs, the forge verifies.
    let signed: Value = serde_json::from_str(&run(&["sign", statement.to_str().unwrap()])).unwrap();
    let theirs = tmp.path().join("theirs.json");
    std::fs::write(&theirs, signed["envelope"].to_string()).unwrap();
    let public = signed["public"].as_str().unwrap();
    let shown = forge.ok(&[
        "attest",
        "verify",
        theirs.to_str().unwrap(),
        "--public-key",
        public,
    ]);
    assert!(shown.contains(&format!("commit: {commit}")), "{shown}");
    assert!(shown.contains("result: PASSED"), "{shown}");

    // The forge signs, securesystemslib verifies; and refuses it under another key.
    let key = tmp.path().join("forge.key");
    let our_public = forge.ok(&["keygen", "--out", key.to_str().unwrap()]);
    let envelope = sign_passed(&forge, &key, commit, None);
    let ours = tmp.path().join("ours.json");
    std::fs::write(&ours, envelope).unwrap();
    assert_eq!(
        run(&["verify", ours.to_str().unwrap(), our_public.trim()]),
        "verified\n"
    );
    let refused = std::process::Command::new(python())
        .arg(&script)
        // The right keyid with another key's bytes: only the signature check can refuse.
        .args(["verify", ours.to_str().unwrap(), public, our_public.trim()])
        .output()
        .unwrap();
    assert!(
        !refused.status.success(),
        "verified under a key that did not sign"
    );
}

/// An HTTP request with a bearer token (or none) and a body: status and JSON answer.
fn api(
    server: &common::Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> (u16, Value) {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    request.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    ));
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    let answer = common::raw_http(&server.addr(), &bytes);
    let value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    (answer.status, value)
}

/// An envelope over any body, signed with the key in `key_file` (for hostile inputs the
/// CLI would not make).
fn envelope_over(key_file: &std::path::Path, body: &[u8]) -> forge::attest::Envelope {
    let key = forge::attest::keys::read_secret_key(key_file).unwrap();
    forge::attest::dsse::sign("application/vnd.in-toto+json", body, &key)
}

fn statement(commit: &str, statement_type: &str) -> Vec<u8> {
    format!(
        r#"{{"_type":"{statement_type}","subject":[{{"digest":{{"gitCommit":"{commit}"}}}}],"predicateType":"{TEST_RESULT}","predicate":{{"result":"PASSED","configuration":[]}}}}"#
    )
    .into_bytes()
}

#[test]
fn uploads_keep_only_verified_attestations_about_commits_here() {
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    forge.ok(&["repo", "create", "alice/app"]);
    forge.ok(&["repo", "create", "alice/other"]);
    forge.ok(&["identity", "add", "alice", "--kind", "human"]);
    forge.ok(&["identity", "add", "mallory", "--kind", "human"]);
    forge.ok(&[
        "identity", "add", "ci-bot", "--kind", "agent", "--owner", "alice",
    ]);
    let keygen = |name: &str| {
        let path = tmp.path().join(format!("{name}.key"));
        let public = forge.ok(&["keygen", "--out", path.to_str().unwrap()]);
        (path, public.trim().to_owned())
    };
    let (ci_key, ci_public) = keygen("ci");
    let (old_key, old_public) = keygen("old");
    let (stray_key, _) = keygen("stray");
    forge.ok(&["identity", "key", "add", "ci-bot", &ci_public]);
    forge.ok(&["identity", "key", "add", "ci-bot", &old_public]);
    forge.ok(&["identity", "key", "revoke", "ci-bot", &old_public]);
    let server = common::Server::start(&forge);

    let (work, commit, tree) = one_commit(tmp.path());
    git(
        &work,
        &["push", "-q", &server.repo_url("alice/app"), "main"],
    );

    let token = |identity: &str, repo: &str| forge.write_token(identity, repo);
    let (ci, alice, mallory) = (
        token("ci-bot", "alice/app"),
        token("alice", "alice/*"),
        token("mallory", "alice/*"),
    );
    let upload_path = "/api/v1/repos/alice/app/attestations";
    let upload = |token: &str, body: &[u8]| api(&server, "POST", upload_path, Some(token), body);

    // Kept: signed by ci-bot's active key, uploaded by ci-bot, then by its owner.
    let signed = sign_passed(&forge, &ci_key, &commit, Some(&tree));
    let (status, kept) = upload(&ci, signed.as_bytes());
    assert_eq!(status, 201, "{kept}");
    let kept = &kept["attestation"];
    assert_eq!(kept["commits"], serde_json::json!([commit]));
    assert_eq!(kept["predicate_type"], TEST_RESULT);
    assert_eq!(kept["summary"], "PASSED");
    assert_eq!(kept["signers"][0]["identity"], "ci-bot");
    assert_eq!(kept["signers"][0]["key"], ci_public.as_str());
    assert_eq!(kept["uploaded_by"], "ci-bot");
    let (status, _) = upload(&ci, signed.as_bytes());
    assert_eq!(status, 200, "the same envelope again is kept once");
    let by_owner = envelope_over(
        &ci_key,
        &statement(&commit, "https://in-toto.io/Statement/v1"),
    );
    let (status, answer) = upload(&alice, by_owner.to_json().as_bytes());
    assert_eq!(status, 201, "{answer}");

    // Refused, each with its rule.
    let tampered = {
        let mut envelope = by_owner.clone();
        let body = statement(&commit, "https://in-toto.io/Statement/v1");
        let forged = String::from_utf8(body).unwrap().replace("PASSED", "FAILED");
        envelope.payload = base64::engine::general_purpose::STANDARD.encode(forged);
        envelope.to_json()
    };
    let raw_signature = {
        let body = statement(&commit, "https://in-toto.io/Statement/v1");
        let mut envelope = envelope_over(&ci_key, &body);
        let key = forge::attest::keys::read_secret_key(&ci_key).unwrap();
        use ed25519_dalek::Signer;
        envelope.signatures[0].sig =
            base64::engine::general_purpose::STANDARD.encode(key.sign(&body).to_bytes());
        envelope.to_json()
    };
    let absent = "1".repeat(40);
    let oversized = format!(
        r#"{{"payload":"{}","payloadType":"application/vnd.in-toto+json","signatures":[]}}"#,
        "A".repeat(300 << 10)
    );
    let cases: Vec<(&str, String, String, u16, &str, String)> = vec![
        (
            "wrong signature",
            mallory.clone(),
            tampered.clone(),
            422,
            "bad_signature",
            format!("the signature by ci-bot's key {ci_public} does not verify over this payload"),
        ),
        (
            "wrong signature by the owner",
            alice.clone(),
            tampered,
            422,
            "bad_signature",
            "does not verify".into(),
        ),
        (
            "PAE over other bytes",
            ci.clone(),
            raw_signature,
            422,
            "bad_signature",
            "does not verify".into(),
        ),
        (
            "unknown key",
            ci.clone(),
            sign_passed(&forge, &stray_key, &commit, None),
            422,
            "unknown_key",
            "no signature verifies against an active key of a known identity".into(),
        ),
        (
            "revoked key",
            ci.clone(),
            sign_passed(&forge, &old_key, &commit, None),
            422,
            "revoked_key",
            format!(
                "signed by ci-bot with a key that no longer counts (revoked, or the identity is disabled): {old_public}"
            ),
        ),
        (
            "uploader not the signer",
            mallory.clone(),
            signed.clone(),
            403,
            "not_signer",
            "mallory may not upload attestations signed by ci-bot".into(),
        ),
        (
            "commit not here",
            ci.clone(),
            sign_passed(&forge, &ci_key, &absent, None),
            422,
            "unknown_commit",
            format!("commit {absent} is not in this repository"),
        ),
        (
            "wrong _type",
            ci.clone(),
            envelope_over(
                &ci_key,
                &statement(&commit, "https://in-toto.io/Statement/v0.1"),
            )
            .to_json(),
            422,
            "wrong_type",
            "Statement/v0.1".into(),
        ),
        (
            "garbage",
            ci.clone(),
            "{not json".into(),
            422,
            "malformed_attestation",
            "envelope".into(),
        ),
        (
            "garbage statement",
            ci.clone(),
            envelope_over(&ci_key, b"[1, 2").to_json(),
            422,
            "malformed_attestation",
            "statement".into(),
        ),
        (
            "oversized",
            ci.clone(),
            oversized,
            413,
            "too_large",
            "envelope is over the limit".into(),
        ),
    ];
    for (what, token, body, status, code, message) in &cases {
        let (got, answer) = upload(token, body.as_bytes());
        assert_eq!(got, *status, "{what}: {answer}");
        assert_eq!(answer["error"]["code"], *code, "{what}: {answer}");
        let text = answer["error"]["message"].as_str().unwrap_or("");
        assert!(
            text.contains(message.as_str()),
            "{what}: {text:?} lacks {message:?}"
        );
    }
    // Replayed into a repository that lacks the commit.
    let (status, answer) = api(
        &server,
        "POST",
        "/api/v1/repos/alice/other/attestations",
        Some(&alice),
        signed.as_bytes(),
    );
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["code"], "unknown_commit");
    // No token, a read-only token.
    assert_eq!(
        api(&server, "POST", upload_path, None, signed.as_bytes()).0,
        401
    );
    let reader = forge.token(&[
        "--identity",
        "ci-bot",
        "--repo",
        "alice/app",
        "--ops",
        "read",
    ]);
    assert_eq!(upload(&reader, signed.as_bytes()).0, 403);

    // Only the two kept ones are there; a key revoked later stops them counting.
    let list_path = format!("/api/v1/repos/alice/app/commits/{commit}/attestations");
    let (status, listed) = api(&server, "GET", &list_path, Some(&alice), b"");
    assert_eq!(status, 200, "{listed}");
    let attestations = listed["attestations"].as_array().unwrap();
    assert_eq!(attestations.len(), 2, "{listed}");
    assert_eq!(attestations[0]["signers"][0]["counts"], true);
    assert_eq!(
        attestations[0]["envelope"],
        serde_json::from_str::<Value>(&signed).unwrap()
    );
    let (_, other) = api(
        &server,
        "GET",
        &format!("/api/v1/repos/alice/other/commits/{commit}/attestations"),
        Some(&alice),
        b"",
    );
    assert_eq!(other["attestations"], serde_json::json!([]));
    forge.ok(&["identity", "key", "revoke", "ci-bot", &ci_public]);
    let (_, listed) = api(&server, "GET", &list_path, Some(&alice), b"");
    assert_eq!(
        listed["attestations"][0]["signers"][0]["counts"], false,
        "{listed}"
    );
    let shown = forge.ok(&["attest", "list", "alice/app", &commit]);
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 2, "{shown}");
    assert!(
        lines[0].ends_with(&format!("\t{TEST_RESULT}\tci-bot (key revoked)\tPASSED")),
        "{shown}"
    );
    forge.ok(&["fsck"]);
}

/// `git push -o attest=<base64url envelope>`: the attestation is checked like an upload
/// (the commits the push brings count as the repository's) and stored with the refs, or
/// the push is refused with the rule it broke and nothing is kept.
#[test]
fn a_push_carries_its_attestation() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    forge.ok(&["repo", "create", "alice/app"]);
    forge.ok(&["identity", "add", "alice", "--kind", "human"]);
    forge.ok(&["identity", "add", "mallory", "--kind", "human"]);
    forge.ok(&[
        "identity", "add", "ci-bot", "--kind", "agent", "--owner", "alice",
    ]);
    let key = tmp.path().join("ci.key");
    let public = forge.ok(&["keygen", "--out", key.to_str().unwrap()]);
    forge.ok(&["identity", "key", "add", "ci-bot", public.trim()]);
    let server = common::Server::start(&forge);
    let (work, first, _) = one_commit(tmp.path());
    git(
        &work,
        &["push", "-q", &server.repo_url("alice/app"), "main"],
    );
    commit_file(&work, "b.txt", "two\n", "two");
    let second = git(&work, &["rev-parse", "HEAD"]).trim().to_owned();
    let url_of = |identity: &str| {
        server.repo_url_with(&forge.write_token(identity, "alice/app"), "alice/app")
    };
    let option = |envelope: &str| format!("attest={}", URL_SAFE_NO_PAD.encode(envelope.trim()));
    let remote_main = || {
        let listed = git(
            &work,
            &[
                "ls-remote",
                &server.repo_url("alice/app"),
                "refs/heads/main",
            ],
        );
        listed.split_whitespace().next().unwrap_or("").to_owned()
    };
    let stored = |commit: &str| forge.ok(&["attest", "list", "alice/app", commit]);

    // Refused: a commit neither stored nor pushed; an uploader who may not act for ci-bot.
    let absent = "1".repeat(40);
    let elsewhere = option(&sign_passed(&forge, &key, &absent, None));
    let (ok, stderr) = common::try_git(
        &work,
        &["push", "-o", &elsewhere, &url_of("ci-bot"), "main"],
    );
    assert!(!ok);
    assert!(
        stderr.contains(&format!(
            "(attestation 1 refused: commit {absent} is not in this repository)"
        )),
        "{stderr}"
    );
    let about_second = option(&sign_passed(&forge, &key, &second, None));
    let (ok, stderr) = common::try_git(
        &work,
        &["push", "-o", &about_second, &url_of("mallory"), "main"],
    );
    assert!(!ok);
    assert!(
        stderr.contains(
            "(attestation 1 refused: mallory may not upload attestations signed by ci-bot)"
        ),
        "{stderr}"
    );
    let (ok, stderr) = common::try_git(
        &work,
        &["push", "-o", "attest=%%%", &url_of("ci-bot"), "main"],
    );
    assert!(!ok);
    assert!(
        stderr.contains("(attestation 1 refused: the option is not base64"),
        "{stderr}"
    );
    assert_eq!(remote_main(), first, "no refused push moved main");
    assert_eq!(stored(&second), "", "no refused push kept its attestation");

    // Kept: the commit arrives with the push that attests it.
    let (ok, stderr) = common::try_git(
        &work,
        &["push", "-o", &about_second, &url_of("ci-bot"), "main"],
    );
    assert!(ok, "{stderr}");
    assert_eq!(remote_main(), second);
    let listed = forge.json(&["attest", "list", "alice/app", &second]);
    let kept = &listed["attestations"][0];
    assert_eq!(kept["uploaded_by"], "ci-bot", "{listed}");
    assert_eq!(kept["signers"][0]["identity"], "ci-bot");
    assert_eq!(kept["summary"], "PASSED");
    // The push's ref update and its attestation are events of one transaction, the
    // attestation by the pusher.
    let page = common::call(
        &server,
        "GET",
        "/api/v1/repos/alice/app/events?type=attestation.added",
        Some(&server.token),
        None,
    );
    let added = &page.body["items"].as_array().unwrap()[..];
    assert_eq!(added.len(), 1, "{}", page.body);
    assert_eq!(added[0]["actor"]["identity"], "ci-bot");
    assert_eq!(added[0]["data"]["commits"][0], second.as_str());
    assert_eq!(added[0]["data"]["signers"][0], "ci-bot");
    assert_eq!(added[0]["data"]["id"], kept["id"]);
    forge.ok(&["fsck"]);
}
