//! `forge identity` and `forge token` from the command line: identities, minting, offline
//! narrowing, inspection, revocation, and clear errors.

use crate::common;

use common::Forge;

#[test]
fn identities_tokens_narrowing_and_revocation() {
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    forge.ok(&["identity", "add", "alice", "--kind", "human"]);
    let key = tmp.path().join("agent.pub");
    std::fs::write(
        &key,
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\n",
    )
    .unwrap();
    forge.ok(&[
        "identity",
        "add",
        "bot-1",
        "--kind",
        "agent",
        "--owner",
        "alice",
        "--public-key",
        &key.display().to_string(),
    ]);
    let listed = forge.json(&["identity", "list"]);
    let names: Vec<&str> = listed["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bot-1"]);
    assert_eq!(listed["identities"][1]["owner"], "alice");
    assert_eq!(listed["identities"][1]["kind"], "agent");

    // Bad identities.
    let err = forge.fails(&["identity", "add", "bot-2", "--kind", "agent"]);
    assert!(err.contains("an agent needs an owner (a human)"), "{err}");
    let err = forge.fails(&[
        "identity", "add", "bot-2", "--kind", "agent", "--owner", "bot-1",
    ]);
    assert!(
        err.contains("the owner of an agent must be a human"),
        "{err}"
    );
    let err = forge.fails(&["identity", "add", "alice", "--kind", "human"]);
    assert!(err.contains("identity alice already exists"), "{err}");
    let err = forge.fails(&["identity", "add", "../x", "--kind", "human"]);
    assert!(err.contains("invalid identity name"), "{err}");

    // Minting.
    let issued = forge.json(&[
        "token",
        "issue",
        "--identity",
        "bot-1",
        "--repo",
        "alice/app",
        "--ops",
        "read,write",
        "--refs",
        "refs/heads/agent/**",
        "--ttl",
        "1h",
    ]);
    let token = issued["token"].as_str().unwrap().to_owned();
    assert_eq!(issued["revocation_ids"].as_array().unwrap().len(), 1);
    let err = forge.fails(&["token", "issue", "--identity", "nobody"]);
    assert!(err.contains("identity nobody does not exist"), "{err}");
    let err = forge.fails(&["token", "issue", "--identity", "alice", "--ops", "fly"]);
    assert!(err.contains("unknown operation \"fly\""), "{err}");
    let err = forge.fails(&["token", "issue", "--identity", "alice", "--refs", "heads/x"]);
    assert!(err.contains("must start with refs/"), "{err}");
    let err = forge.fails(&["token", "issue", "--identity", "alice", "--ttl", "soon"]);
    assert!(err.contains("invalid --ttl"), "{err}");

    // Narrowing works with no data directory at all.
    let nowhere = Forge::new(&tmp.path().join("no-such-dir"));
    let narrowed = nowhere.json(&[
        "token",
        "attenuate",
        &token,
        "--ops",
        "read",
        "--refs",
        "refs/heads/agent/task-7/*",
        "--ttl",
        "10m",
    ]);
    let narrowed = narrowed["token"].as_str().unwrap().to_owned();
    assert!(!tmp.path().join("no-such-dir").exists());
    let shown = nowhere.json(&["token", "inspect", &narrowed]);
    let blocks = shown["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 2);
    let authority = blocks[0]["source"].as_str().unwrap();
    assert!(authority.contains("identity(\"bot-1\")"), "{authority}");
    assert!(
        authority.contains("right(\"alice/app\", \"write\")"),
        "{authority}"
    );
    assert!(
        authority.contains("ref_glob(\"refs/heads/agent/**\")"),
        "{authority}"
    );
    let narrowing = blocks[1]["source"].as_str().unwrap();
    assert!(narrowing.contains("operation(\"read\")"), "{narrowing}");
    assert!(
        narrowing.contains("refs/heads/agent/task-7/*"),
        "{narrowing}"
    );
    let text = nowhere.ok(&["token", "inspect", &narrowed]);
    assert!(
        text.contains("block 1 (narrowing), revocation id "),
        "{text}"
    );
    let err = nowhere.fails(&["token", "attenuate", &token]);
    assert!(err.contains("nothing to narrow"), "{err}");
    let err = nowhere.fails(&["token", "inspect", "not-a-token"]);
    assert!(err.contains("token is malformed"), "{err}");

    // Revocation: by token (its last block) and by id.
    let revoked = forge.json(&["token", "revoke", &narrowed]);
    assert_eq!(revoked["revoked"], blocks[1]["revocation_id"]);
    assert_eq!(revoked["new"], true);
    let again = forge.ok(&[
        "token",
        "revoke",
        blocks[1]["revocation_id"].as_str().unwrap(),
    ]);
    assert!(again.contains("was already revoked"), "{again}");

    // The root key is private to its owner.
    let key_file = tmp.path().join("data/keys/root.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}
