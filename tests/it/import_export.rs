//! Import a git repository into the native store, export it back, and compare what a git user
//! would compare: every object byte for byte, every ref, HEAD, and `git fsck`.

use crate::common;

use std::path::Path;

use common::corpus::{malformed_corpus, synthetic_history};
use common::{Forge, clone_work, commit_file, fsck_messages, git, git_bytes, snapshot};

fn round_trip(source: &Path, data: &Path, name: &str, out: &Path) -> serde_json::Value {
    let forge = Forge::new(data);
    let report = forge.json(&["import", name, source.to_str().unwrap()]);
    forge.ok(&["export", name, out.to_str().unwrap()]);
    assert_eq!(
        snapshot(source),
        snapshot(out),
        "export differs from the source"
    );
    let fsck = forge.json(&["fsck", name]);
    assert_eq!(fsck["ok"], true, "forge fsck: {fsck}");
    report
}

#[test]
fn synthetic_history_packed_loose_and_multi_pack() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source.git");
    synthetic_history(&source, 600);
    // A real pack with deltas, then more history loose and in a second pack.
    git(&source, &["repack", "-adf", "-q"]);
    let work = tmp.path().join("work");
    clone_work(&source, &work);
    for i in 0..5 {
        let content = format!("content {i}\n").repeat(50);
        commit_file(
            &work,
            &format!("new{i}.txt"),
            content,
            &format!("loose {i}"),
        );
    }
    git(&work, &["push", "-q", "origin", "main"]);
    git(&work, &["checkout", "-q", "-b", "topic"]);
    commit_file(&work, "topic.txt", "topic\n", "topic");
    git(&work, &["push", "-q", "origin", "topic"]);
    git(&source, &["repack", "-d", "-q"]);
    for i in 0..3 {
        commit_file(
            &work,
            &format!("last{i}.txt"),
            format!("{i}\n"),
            &format!("last {i}"),
        );
    }
    git(&work, &["push", "-q", "origin", "topic"]);
    let packs = std::fs::read_dir(source.join("objects/pack"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "pack")
        })
        .count();
    assert!(packs >= 2, "the source has several packs ({packs})");

    let out = tmp.path().join("export.git");
    let report = round_trip(&source, &tmp.path().join("data"), "alice/synthetic", &out);
    assert!(
        report["import"]["blob_deltas_reused"].as_u64().unwrap() > 100,
        "{report}"
    );
    assert!(
        report["import"]["tree_deltas"].as_u64().unwrap() > 100,
        "{report}"
    );
    assert_eq!(
        report["import"]["verbatim"], 0,
        "canonical history needs no verbatim bytes"
    );
    // The export is a repository git fully accepts.
    assert!(fsck_messages(&out).is_empty(), "{:?}", fsck_messages(&out));
    git(&out, &["verify-pack", "-v", &first_pack(&out)]);
    assert_eq!(
        git(&out, &["log", "--oneline", "topic"]).lines().count(),
        609
    );
    assert_eq!(git(&out, &["notes", "show", "main~5"]), "reviewed\n");
}

fn first_pack(repo: &Path) -> String {
    std::fs::read_dir(repo.join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "idx"))
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn every_malformed_kind_round_trips_byte_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("corpus.git");
    let count = malformed_corpus(&source);
    assert!(count > 70, "corpus has {count} objects");
    let out = tmp.path().join("export.git");
    let report = round_trip(&source, &tmp.path().join("data"), "bob/corpus", &out);
    assert!(
        report["import"]["verbatim"].as_u64().unwrap() > 20,
        "{report}"
    );
    // git judges the export exactly as it judges the source.
    assert_eq!(fsck_messages(&source), fsck_messages(&out));
    assert!(
        !fsck_messages(&source).is_empty(),
        "the corpus is malformed"
    );
    assert_eq!(
        git(&out, &["symbolic-ref", "refs/corpus/symbolic"]).trim(),
        "refs/heads/main"
    );
}

#[test]
fn corpus_in_a_pack_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("corpus.git");
    malformed_corpus(&source);
    // Pack every object as it is (pack-objects would refuse to walk the broken ones).
    let ids = git(
        &source,
        &[
            "cat-file",
            "--batch-all-objects",
            "--batch-check=%(objectname)",
        ],
    );
    let pack_base = source.join("objects/pack/pack");
    git_bytes(
        &source,
        &["pack-objects", "-q", pack_base.to_str().unwrap()],
        Some(ids.as_bytes()),
    );
    git(&source, &["prune-packed"]);
    let out = tmp.path().join("export.git");
    round_trip(&source, &tmp.path().join("data"), "bob/packed", &out);
    assert_eq!(fsck_messages(&source), fsck_messages(&out));
}

#[test]
fn importing_twice_is_idempotent_and_keeps_one_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source.git");
    synthetic_history(&source, 120);
    let forge = Forge::new(&tmp.path().join("data"));
    forge.ok(&["import", "carol/app", source.to_str().unwrap()]);
    forge.ok(&["import", "carol/app", source.to_str().unwrap()]);
    let out = tmp.path().join("export.git");
    forge.ok(&["export", "carol/app", out.to_str().unwrap()]);
    assert_eq!(snapshot(&source), snapshot(&out));
    assert_eq!(forge.json(&["fsck"])["ok"], true);
}

#[test]
fn blob_ids_are_b3sum_of_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source.git");
    synthetic_history(&source, 30);
    let forge = Forge::new(&tmp.path().join("data"));
    forge.ok(&["import", "dan/b3", source.to_str().unwrap()]);
    let listing = git(&source, &["ls-tree", "-r", "main"]);
    let mut checked = 0;
    for line in listing.lines() {
        let (meta, path) = line.split_once('\t').unwrap();
        let sha1 = meta.split_whitespace().nth(2).unwrap();
        let file = tmp.path().join(path.replace('/', "_"));
        std::fs::write(&file, git_bytes(&source, &["cat-file", "blob", sha1], None)).unwrap();
        let b3sum = std::process::Command::new("b3sum")
            .arg("--no-names")
            .arg(&file)
            .output()
            .expect("b3sum is installed (apt-get install b3sum)");
        assert!(b3sum.status.success());
        let expected = String::from_utf8(b3sum.stdout).unwrap().trim().to_owned();
        let shown = forge.json(&["show-id", "dan/b3", sha1]);
        assert_eq!(shown["type"], "blob");
        assert_eq!(shown["sha1"], sha1);
        assert_eq!(shown["blake3"], expected.as_str(), "{path}");
        // The BLAKE3 id finds the same object.
        assert_eq!(forge.json(&["show-id", "dan/b3", &expected])["sha1"], sha1);
        checked += 1;
    }
    assert!(checked >= 40, "checked {checked} blobs");
}
