//! The admin CLI on bad input: clear errors, and nothing changed.

use crate::common;

use std::path::Path;

use common::corpus::synthetic_history;
use common::{Forge, clone_work, commit_file, git, snapshot};

fn repo_names(forge: &Forge) -> Vec<String> {
    forge.json(&["repo", "list"])["repos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

fn data_dir_listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
        }
    }
    out.sort();
    out
}

#[test]
fn repositories_are_created_listed_and_validated() {
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    assert_eq!(
        forge.fails(&["repo", "list"]).trim(),
        format!(
            "error: no data directory at {} (run `forge serve` or `forge repo create` to make one)",
            tmp.path().join("data").display()
        )
    );
    assert_eq!(
        forge.ok(&["repo", "create", "alice/app"]),
        "created alice/app\n"
    );
    assert_eq!(
        forge.fails(&["repo", "create", "Alice/App"]).trim(),
        "error: repository Alice/App already exists"
    );
    for (bad, reason) in [
        ("alice", "expected OWNER/NAME"),
        ("alice/../etc", "expected exactly one '/' (OWNER/NAME)"),
        ("alice/.hidden", "a part must not start with '.'"),
        ("alice/a..b", "'..' is not allowed"),
        ("alice/app.git", "the name must not end in '.git'"),
        (
            "al ice/app",
            "only letters, digits, '-', '_' and '.' are allowed",
        ),
    ] {
        assert_eq!(
            forge.fails(&["repo", "create", bad]).trim(),
            format!("error: invalid repository name {bad:?}: {reason}")
        );
    }
    forge.ok(&["repo", "create", "bob/lib"]);
    assert_eq!(repo_names(&forge), ["alice/app", "bob/lib"]);
    assert_eq!(forge.ok(&["repo", "list"]), "alice/app\nbob/lib\n");

    // JSON errors carry a stable code.
    let out = forge.run(&["--json", "repo", "create", "alice/app"]);
    assert!(!out.status.success());
    let error: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(error["error"]["code"], "repo_exists");
    assert_eq!(
        error["error"]["message"],
        "repository alice/app already exists"
    );
}

#[test]
fn a_newer_data_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let forge = Forge::new(&data);
    forge.ok(&["repo", "create", "alice/app"]);
    std::fs::write(data.join("FORMAT"), "forge data directory, format 99\n").unwrap();
    assert_eq!(
        forge.fails(&["repo", "list"]).trim(),
        format!(
            "error: data directory {} has format version 99, newer than this forge supports (1); use a newer forge",
            data.display()
        )
    );
    let foreign = tmp.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    assert!(
        Forge::new(&foreign)
            .fails(&["repo", "create", "a/b"])
            .contains("is not a forge data directory: it is not empty and has no FORMAT file")
    );
    assert!(!foreign.join("FORMAT").exists());
}

#[test]
fn bad_import_sources_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let forge = Forge::new(&data);
    forge.ok(&["repo", "create", "alice/app"]);
    let before = data_dir_listing(&data);

    let missing = tmp.path().join("nope");
    assert_eq!(
        forge
            .fails(&["import", "alice/new", missing.to_str().unwrap()])
            .trim(),
        format!("error: {} does not exist", missing.display())
    );
    let plain = tmp.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    std::fs::write(plain.join("file.txt"), "x").unwrap();
    let err = forge.fails(&["import", "alice/new", plain.to_str().unwrap()]);
    assert!(
        err.contains(&format!("{} is not a git repository", plain.display())),
        "{err}"
    );
    assert!(
        forge
            .fails(&["import", "alice/bad..name", plain.to_str().unwrap()])
            .contains("invalid repository name")
    );

    // A repository with a missing object.
    let source = tmp.path().join("broken.git");
    synthetic_history(&source, 20);
    git(&source, &["repack", "-adq"]);
    let work = tmp.path().join("work");
    clone_work(&source, &work);
    commit_file(&work, "extra.txt", "extra content\n", "extra");
    git(&work, &["push", "-q", "origin", "main"]);
    let blob = git(&source, &["rev-parse", "main:extra.txt"])
        .trim()
        .to_owned();
    std::fs::remove_file(source.join("objects").join(&blob[..2]).join(&blob[2..])).unwrap();
    let err = forge.fails(&["import", "alice/new", source.to_str().unwrap()]);
    assert!(
        err.contains("the repository is incomplete: refs/heads/main needs 1 missing object(s): ")
            && err.contains(&blob),
        "{err}"
    );
    // The same into the existing repository leaves it as it was.
    forge.fails(&["import", "alice/app", source.to_str().unwrap()]);
    assert_eq!(data_dir_listing(&data), before);
    assert_eq!(repo_names(&forge), ["alice/app"]);

    // A loose object whose content does not match its name.
    let corrupt = tmp.path().join("corrupt.git");
    synthetic_history(&corrupt, 5);
    let readme = git(&corrupt, &["rev-parse", "main:dir0/sub0/file0.txt"]);
    let other = git(&corrupt, &["rev-parse", "main:dir1/sub1/file1.txt"]);
    git(&corrupt, &["repack", "-adq"]);
    // Turn the pack back into loose objects, then swap one object's file for another's.
    let packs: Vec<_> = std::fs::read_dir(corrupt.join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let pack = packs
        .iter()
        .find(|p| p.extension().is_some_and(|x| x == "pack"))
        .unwrap();
    let pack_bytes = std::fs::read(pack).unwrap();
    for p in &packs {
        std::fs::remove_file(p).unwrap();
    }
    common::git_bytes(&corrupt, &["unpack-objects", "-q"], Some(&pack_bytes));
    let path_of = |id: &str| {
        corrupt
            .join("objects")
            .join(&id.trim()[..2])
            .join(&id.trim()[2..])
    };
    std::fs::copy(path_of(&other), path_of(&readme)).unwrap();
    let err = forge.fails(&["import", "alice/new", corrupt.to_str().unwrap()]);
    assert!(
        err.contains(&format!("loose object {} is corrupt", readme.trim())),
        "{err}"
    );

    // A pack with a flipped byte.
    let damaged = tmp.path().join("damaged.git");
    synthetic_history(&damaged, 30);
    git(&damaged, &["repack", "-adq"]);
    let pack = std::fs::read_dir(damaged.join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "pack"))
        .unwrap();
    let mut bytes = std::fs::read(&pack).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&pack, bytes).unwrap();
    let err = forge.fails(&["import", "alice/new", damaged.to_str().unwrap()]);
    assert!(err.contains("cannot read pack objects of"), "{err}");

    // A shallow clone.
    let good = tmp.path().join("good.git");
    synthetic_history(&good, 10);
    let shallow = tmp.path().join("shallow");
    git(
        tmp.path(),
        &[
            "clone",
            "-q",
            "--depth",
            "1",
            &format!("file://{}", good.display()),
            shallow.to_str().unwrap(),
        ],
    );
    assert!(
        forge
            .fails(&["import", "alice/new", shallow.to_str().unwrap()])
            .contains("is a shallow repository")
    );

    assert_eq!(data_dir_listing(&data), before);
    assert_eq!(repo_names(&forge), ["alice/app"]);
    assert_eq!(forge.json(&["fsck"])["ok"], true);
}

#[test]
fn unknown_repositories_and_bad_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    let source = tmp.path().join("source.git");
    synthetic_history(&source, 10);
    forge.ok(&["import", "alice/app", source.to_str().unwrap()]);
    let out = tmp.path().join("out");
    for args in [
        vec!["export", "ghost/repo", out.to_str().unwrap()],
        vec!["fsck", "ghost/repo"],
        vec!["show-id", "ghost/repo", "0123456789"],
    ] {
        assert_eq!(
            forge.fails(&args).trim(),
            "error: repository ghost/repo does not exist"
        );
    }
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep"), "x").unwrap();
    assert!(
        forge
            .fails(&["export", "alice/app", out.to_str().unwrap()])
            .contains("exists and is not an empty directory")
    );
    assert_eq!(std::fs::read_to_string(out.join("keep")).unwrap(), "x");

    assert!(
        forge
            .fails(&["show-id", "alice/app", "abc"])
            .contains("a prefix of at least 8")
    );
    assert!(
        forge
            .fails(&["show-id", "alice/app", "zzzzzzzzzz"])
            .contains("is not a hex digit")
    );
    assert_eq!(
        forge.fails(&["show-id", "alice/app", "00000000000"]).trim(),
        "error: no object of alice/app matches 00000000000"
    );
    let head = git(&source, &["rev-parse", "main"]).trim().to_owned();
    let full = forge.json(&["show-id", "alice/app", &head]);
    assert_eq!(full["type"], "commit");
    assert_eq!(full["sha1"], head.as_str());
    let b3 = full["blake3"].as_str().unwrap().to_owned();
    assert_eq!(forge.json(&["show-id", "alice/app", &b3[..10]]), full);
    assert_eq!(forge.json(&["show-id", "alice/app", &head[..8]]), full);
    assert_eq!(
        forge.ok(&["show-id", "alice/app", &b3.to_uppercase()]),
        format!("type   commit\nblake3 {b3}\nsha1   {head}\n")
    );
}

#[test]
fn fsck_reports_damage_in_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let forge = Forge::new(&data);
    let source = tmp.path().join("source.git");
    synthetic_history(&source, 40);
    forge.ok(&["import", "alice/app", source.to_str().unwrap()]);
    assert_eq!(
        forge.ok(&["fsck"]).lines().next().unwrap(),
        format!(
            "alice/app: {} objects, {} refs: ok",
            git(
                &source,
                &["cat-file", "--batch-all-objects", "--batch-check"]
            )
            .lines()
            .count(),
            git(&source, &["for-each-ref"]).lines().count() + 1
        )
    );
    let objects = data.join("repos/1/objects");
    let segment = std::fs::read_dir(&objects)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = bytes.len() * 2 / 3;
    bytes[at] ^= 0x01;
    std::fs::write(&segment, bytes).unwrap();
    let out = forge.run(&["fsck", "alice/app"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("problem(s)"), "{text}");
    assert!(
        text.contains("its bytes do not match its checksum"),
        "{text}"
    );
    let report = forge.run(&["--json", "fsck"]);
    let json: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(json["ok"], false);
}

#[test]
fn import_updates_refs_of_an_existing_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    let source = tmp.path().join("source.git");
    synthetic_history(&source, 30);
    forge.ok(&["import", "alice/app", source.to_str().unwrap()]);
    let work = tmp.path().join("work");
    clone_work(&source, &work);
    commit_file(&work, "more.txt", "more\n", "more");
    git(
        &work,
        &["push", "-q", "origin", "main", "main:refs/heads/second"],
    );
    git(&source, &["tag", "-d", "light"]);
    forge.ok(&["import", "alice/app", source.to_str().unwrap()]);
    let out = tmp.path().join("out.git");
    forge.ok(&["export", "alice/app", out.to_str().unwrap()]);
    // The new commit and branch arrived; the deleted tag stays in the forge.
    let mut expected = snapshot(&source);
    let exported = snapshot(&out);
    assert_eq!(exported.objects_digest, expected.objects_digest);
    assert!(exported.refs.contains("refs/tags/light"));
    expected.refs = exported.refs.clone();
    assert_eq!(exported, expected);
}
