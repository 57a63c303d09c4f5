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

/// `forge attest sign` of a PASSED test result about `commit` (and `tree`): the envelope.
fn sign_passed(forge: &Forge, key: &std::path::Path, commit: &str, tree: Option<&str>) -> String {
    let predicate = key.with_extension("predicate.json");
    std::fs::write(&predicate, r#"{"result": "PASSED", "configuration": []}"#).unwrap();
    let mut args = vec![
        "attest",
        "sign",
        "--key",
        key.to_str().unwrap(),
        "--commit",
        commit,
    ];
    if let Some(tree) = tree {
        args.extend(["--tree", tree]);
    }
    args.extend([
        "--predicate-type",
        TEST_RESULT,
        "--predicate",
        predicate.to_str().unwrap(),
    ]);
    forge.ok(&args)
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

    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    commit_file(&work, "a.txt", "one\n", "one");
    let commit = git(&work, &["rev-parse", "HEAD"]).trim().to_owned();
    let tree = git(&work, &["rev-parse", "HEAD^{tree}"]).trim().to_owned();
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
        bad.contains("small-order point") || bad.contains("Ed25519"),
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
