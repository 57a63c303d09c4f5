//! Pushes that must be refused or that break off: corrupt, truncated and lying packs,
//! delta and zlib bombs, size limits, hostile tree entries, a body cut off half way and a
//! server killed mid-push. Each leaves the refs and the stored objects as they were, and
//! the client is told why.

use crate::common;

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::corpus::synthetic_history;
use common::{
    Forge, Server, assert_fsck_clean, clone_work, commit_file, git, git_bytes, git_output,
    literally, pkt, split_url, try_git, wait_for,
};

const ZERO: &str = "0000000000000000000000000000000000000000";

/// A forge with `alice/app` holding `source`'s main branch, served with `options`.
fn seeded_forge(tmp: &Path, source: &Path, options: &[&str]) -> (Forge, Server, String) {
    let forge = Forge::new(&tmp.join("data"));
    forge.ok(&["repo", "create", "alice/app"]);
    let mut all = vec!["--no-auto-repack"];
    all.extend_from_slice(options);
    let server = Server::start_with(&forge, &all);
    let url = server.repo_url("alice/app");
    git(source, &["push", "-q", &url, "main"]);
    (forge, server, url)
}

/// A push body: one command with `report-status`, then `pack`.
fn push_body(old: &str, new: &str, pack: &[u8]) -> Vec<u8> {
    let mut body = pkt(&format!(
        "{old} {new} refs/heads/main\0report-status agent=test\n"
    ));
    body.extend_from_slice(b"0000");
    body.extend_from_slice(pack);
    body
}

/// POSTs `body` to `url`'s git-receive-pack; the status and the decoded body.
fn post_receive_pack(url: &str, body: &[u8]) -> (u16, String) {
    let answer = common::post_receive_pack(url, body);
    (answer.status, answer.text())
}

/// The pack git would send for `revs` (lines for `pack-objects --revs`).
fn pack_of(repo: &Path, revs: &str) -> Vec<u8> {
    git_bytes(
        repo,
        &["pack-objects", "--revs", "--stdout", "-q"],
        Some(revs.as_bytes()),
    )
}

/// One entry of a hand-made pack.
enum Entry {
    /// A blob: the size its header declares, the data to compress.
    Whole(u64, Vec<u8>),
    /// A delta against the entry just before.
    DeltaOfPrevious(Vec<u8>),
    /// A delta against an object named by id.
    RefDelta([u8; 20], Vec<u8>),
}

/// A pack of hand-made entries, with its trailer.
fn hand_pack(entries: &[Entry]) -> Vec<u8> {
    use forge::git::pack::{PackEntryKind, PackWriter};
    let mut pack = PackWriter::new(Vec::new(), entries.len() as u32).unwrap();
    let mut previous = 0;
    for entry in entries {
        let (kind, size, payload) = match entry {
            Entry::Whole(size, data) => {
                (PackEntryKind::Whole(forge::object::Kind::Blob), *size, data)
            }
            Entry::DeltaOfPrevious(delta) => {
                (PackEntryKind::OfsDelta(previous), delta.len() as u64, delta)
            }
            Entry::RefDelta(base, delta) => (
                PackEntryKind::RefDelta(forge::object::Sha1(*base)),
                delta.len() as u64,
                delta,
            ),
        };
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        zlib.write_all(payload).unwrap();
        let zlib = zlib.finish().unwrap();
        // The ids only name entries in an index, which nothing here writes.
        previous = pack
            .write_entry(forge::object::Sha1([0; 20]), kind, size, &zlib)
            .unwrap();
    }
    pack.finish().unwrap().1
}

fn delta_varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A delta that doubles its base: two copies of the whole base.
fn doubling_delta(base_size: u64) -> Vec<u8> {
    let mut delta = Vec::new();
    delta_varint(base_size, &mut delta);
    delta_varint(base_size * 2, &mut delta);
    for _ in 0..2 {
        // Copy from offset 0 (no offset bytes), three size bytes.
        delta.push(0x80 | 0x10 | 0x20 | 0x40);
        delta.extend_from_slice(&[
            base_size as u8,
            (base_size >> 8) as u8,
            (base_size >> 16) as u8,
        ]);
    }
    delta
}

/// Every quarantine directory and every file of the data directory, relative to it.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(dir).unwrap().display().to_string();
            if path.is_dir() {
                if relative.contains("push-") {
                    out.push(relative);
                }
                stack.push(path);
            } else if !relative.ends_with(".redb") && !relative.ends_with(".lock") {
                out.push(relative);
            }
        }
    }
    out.sort();
    out
}

fn remote_main(work: &Path, url: &str) -> String {
    let out = git(work, &["ls-remote", url, "refs/heads/main"]);
    out.split_whitespace().next().unwrap_or("").to_owned()
}

/// The `unpack` line of a report-status answer, and whether the ref was refused.
fn unpack_reason(answer: &str) -> String {
    let line = answer
        .lines()
        .find_map(|l| l.split_once("unpack ").map(|(_, reason)| reason))
        .unwrap_or_else(|| panic!("no unpack line in {answer:?}"));
    assert!(
        answer.contains("ng refs/heads/main "),
        "the ref must be refused: {answer:?}"
    );
    line.to_owned()
}

fn source_with_history(tmp: &Path, commits: usize) -> (PathBuf, PathBuf) {
    let source = tmp.join("source.git");
    synthetic_history(&source, commits);
    let work = tmp.join("work");
    clone_work(&source, &work);
    (source, work)
}

#[test]
fn corrupt_truncated_and_lying_packs_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (source, work) = source_with_history(tmp.path(), 20);
    let (forge, _server, url) = seeded_forge(tmp.path(), &source, &[]);
    let old = remote_main(&work, &url);
    commit_file(
        &work,
        "new.txt",
        common::noise(7, 50_000, |n| n as u8),
        "new",
    );
    let new = git(&work, &["rev-parse", "HEAD"]).trim().to_owned();
    let pack = pack_of(&work, &format!("{new}\n^{old}\n"));
    let before = files_under(&tmp.path().join("data"));

    let mut flipped = pack.clone();
    let middle = pack.len() / 2;
    flipped[middle] ^= 0xff;
    let truncated = pack[..pack.len() - 30].to_vec();
    let mut bad_trailer = pack.clone();
    *bad_trailer.last_mut().unwrap() ^= 1;
    let unknown_base_entry = hand_pack(&[Entry::RefDelta([0xab; 20], doubling_delta(10))]);
    let lying_id = "1234567890123456789012345678901234567890";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "a flipped byte",
            push_body(&old, &new, &flipped),
            "corrupt deflate stream",
        ),
        (
            "a truncated pack",
            push_body(&old, &new, &truncated),
            "pack is incomplete",
        ),
        (
            "a wrong trailer",
            push_body(&old, &new, &bad_trailer),
            "Failed to verify pack checksum",
        ),
        (
            "a command whose object the pack lacks",
            push_body(&old, lying_id, &pack),
            lying_id,
        ),
        (
            "no pack at all",
            push_body(&old, &new, b""),
            "the pack is missing",
        ),
        (
            "not a pack",
            push_body(&old, &new, b"NOTAPACK at all, really"),
            "Pack data type not recognized",
        ),
        (
            "a delta against an object nobody has",
            push_body(&old, &new, &unknown_base_entry),
            "base object abababababababababababababababababababab could not be found",
        ),
    ];
    for (what, body, expected) in cases {
        let (status, answer) = post_receive_pack(&url, &body);
        assert_eq!(status, 200, "{what}: {answer}");
        let reason = unpack_reason(&answer);
        assert_ne!(reason, "ok", "{what}: {answer}");
        assert!(reason.contains(expected), "{what}: {reason}");
        assert_eq!(remote_main(&work, &url), old, "{what}");
        assert_eq!(files_under(&tmp.path().join("data")), before, "{what}");
    }
    let fsck = forge.ok(&["fsck"]);
    assert!(!fsck.contains("unregistered"), "{fsck}");

    // The same push done right lands.
    git(&work, &["push", "-q", &url, "main"]);
    assert_eq!(remote_main(&work, &url), new);
    forge.ok(&["fsck"]);
}

#[test]
fn bombs_and_oversized_pushes_are_refused_with_the_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let (source, work) = source_with_history(tmp.path(), 5);
    let (forge, _server, url) = seeded_forge(
        tmp.path(),
        &source,
        &[
            "--max-object-bytes",
            "1048576",
            "--max-push-bytes",
            "4000000",
        ],
    );
    let old = remote_main(&work, &url);
    let before = files_under(&tmp.path().join("data"));
    let too_large = "an object is larger than this server's limit of 1048576 bytes";

    // A delta bomb: each delta doubles the last; the tenth would be 4 MiB.
    let mut entries = vec![Entry::Whole(4096, vec![0u8; 4096])];
    for i in 0..10 {
        entries.push(Entry::DeltaOfPrevious(doubling_delta(4096 << i)));
    }
    let delta_bomb = hand_pack(&entries);
    assert!(delta_bomb.len() < 1000);
    let (status, answer) = post_receive_pack(&url, &push_body(&old, &"1".repeat(40), &delta_bomb));
    assert_eq!(status, 200);
    assert_eq!(unpack_reason(&answer), too_large, "{answer}");

    // A zlib bomb: one blob declaring 64 MiB of zeros (64 KiB compressed).
    let zlib_bomb = hand_pack(&[Entry::Whole(64 << 20, vec![0u8; 64 << 20])]);
    assert!(zlib_bomb.len() < 200_000);
    let (_, answer) = post_receive_pack(&url, &push_body(&old, &"2".repeat(40), &zlib_bomb));
    assert_eq!(unpack_reason(&answer), too_large, "{answer}");

    // With stock git: one object over the limit, then a push over the size limit.
    commit_file(
        &work,
        "big.bin",
        common::noise(1, 2 << 20, |n| n as u8),
        "big",
    );
    let (ok, stderr) = try_git(&work, &["push", &url, "main"]);
    assert!(!ok);
    assert!(
        stderr.contains(&format!("error: remote unpack failed: {too_large}")),
        "{stderr}"
    );
    assert!(
        stderr.contains(" ! [remote rejected] main -> main (unpacker error)"),
        "{stderr}"
    );
    git(&work, &["reset", "-q", "--hard", "HEAD~1"]);
    for i in 0..6 {
        let name = format!("part{i}.bin");
        commit_file(
            &work,
            &name,
            common::noise(10 + i, 900_000, |n| n as u8),
            "part",
        );
    }
    let (ok, stderr) = try_git(&work, &["push", &url, "main"]);
    assert!(!ok);
    assert!(
        stderr.contains("the push is larger than this server's limit of 4000000 bytes"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("curl"),
        "git must get the answer: {stderr}"
    );

    assert_eq!(remote_main(&work, &url), old);
    assert_eq!(files_under(&tmp.path().join("data")), before);
    let fsck = forge.ok(&["fsck"]);
    assert!(!fsck.contains("unregistered"), "{fsck}");
}

/// A delta that appends one byte to its base.
fn appending_delta(base_size: u64) -> Vec<u8> {
    let mut delta = Vec::new();
    delta_varint(base_size, &mut delta);
    delta_varint(base_size + 1, &mut delta);
    delta.push(0x80 | 0x10 | 0x20);
    delta.extend_from_slice(&[base_size as u8, (base_size >> 8) as u8]);
    delta.extend_from_slice(&[1, b'x']);
    delta
}

#[test]
fn delta_chains_deeper_than_git_makes_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (source, work) = source_with_history(tmp.path(), 2);
    let (forge, _server, url) = seeded_forge(tmp.path(), &source, &[]);
    let before = files_under(&tmp.path().join("data"));
    let depth = 5_000u64;
    let mut entries = vec![Entry::Whole(1, b"x".to_vec())];
    for size in 1..=depth {
        entries.push(Entry::DeltaOfPrevious(appending_delta(size)));
    }
    let pack = hand_pack(&entries);
    let content = vec![b'x'; depth as usize + 1];
    let mut hasher = forge::gitx::Hasher::new();
    hasher.update(format!("blob {}\0", content.len()).as_bytes());
    hasher.update(&content);
    let tip = hasher.finish().to_string();
    let mut body = pkt(&format!("{ZERO} {tip} refs/tags/deep\0report-status\n"));
    body.extend_from_slice(b"0000");
    body.extend_from_slice(&pack);
    let (status, answer) = post_receive_pack(&url, &body);
    assert_eq!(status, 200);
    assert!(
        answer.contains("unpack blob ")
            && answer.contains("delta chain longer than 4095 (git never makes one)"),
        "{answer}"
    );
    assert!(answer.contains("ng refs/tags/deep "), "{answer}");
    assert_eq!(files_under(&tmp.path().join("data")), before);
    assert!(git(&work, &["ls-remote", &url, "refs/tags/deep"]).is_empty());
    forge.ok(&["fsck"]);
}

#[test]
fn hostile_tree_entries_are_refused_as_git_refuses_them_and_nothing_is_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let (source, work) = source_with_history(tmp.path(), 3);
    let (forge, _server, url) = seeded_forge(tmp.path(), &source, &[]);
    let strict = common::strict_git_remote(tmp.path(), "strict.git");
    git(
        &source,
        &["push", "-q", &strict.display().to_string(), "main"],
    );
    let before = files_under(&tmp.path().join("data"));
    let blob = literally(&work, "blob", b"payload\n");
    let head = git(&work, &["rev-parse", "HEAD"]).trim().to_owned();
    // Names git's fsck refuses in every spelling a checkout could take for `.git`
    // (HFS+ ignores U+200C, NTFS reads `git~1` as `.git`), and a `.gitmodules` symlink.
    let cases: [(&str, &str, &str); 7] = [
        ("100644", ".git", "hasDotgit: contains '.git'"),
        ("100644", ".GIT", "hasDotgit: contains '.git'"),
        ("100644", ".git\u{200c}", "hasDotgit: contains '.git'"),
        ("100644", "git~1", "hasDotgit: contains '.git'"),
        ("100644", "..", "hasDotdot: contains '..'"),
        ("100644", "a/b", "fullPathname: contains full pathnames"),
        (
            "120000",
            ".gitmodules",
            "gitmodulesSymlink: .gitmodules is a symbolic link",
        ),
    ];
    for (i, (mode, name, problem)) in cases.iter().enumerate() {
        let mut inner = format!("{mode} {name}\0").into_bytes();
        inner.extend(common::hex_to_bytes(&blob));
        let tree = literally(&work, "tree", &inner);
        // Nested one level down too: the check applies at every depth.
        let mut outer = b"40000 dir\0".to_vec();
        outer.extend(common::hex_to_bytes(&tree));
        let top = literally(&work, "tree", &outer);
        for (depth, tree) in [(0, &tree), (1, &top)] {
            let commit = git(
                &work,
                &[
                    "commit-tree",
                    tree,
                    "-p",
                    &head,
                    "-m",
                    &format!("hostile {i}"),
                ],
            );
            let refspec = format!("{}:refs/heads/hostile-{i}-{depth}", commit.trim());
            // Stock git refuses it, with this problem…
            let (ok, stock) = try_git(&work, &["push", &strict.display().to_string(), &refspec]);
            assert!(!ok, "git accepted {name:?}");
            assert_eq!(
                common::fsck_problem(&stock).as_deref(),
                Some(*problem),
                "{stock}"
            );
            // …and so does the forge, in the same words.
            let (ok, stderr) = try_git(&work, &["push", &url, &refspec]);
            assert!(!ok, "{name:?}");
            assert!(
                stderr.contains("error: remote unpack failed: object "),
                "{stderr}"
            );
            assert!(stderr.contains(problem), "{name:?}: {stderr}");
            assert!(stderr.contains("(unpacker error)"), "{stderr}");
        }
    }
    assert_eq!(files_under(&tmp.path().join("data")), before);
    let refs = git(&work, &["ls-remote", &url]);
    assert!(!refs.contains("hostile"), "{refs}");
    forge.ok(&["fsck"]);

    // A repository that mirrors old history may take them (`fsck-objects false`), as git
    // does without receive.fsckObjects; `forge import` always does.
    forge.ok(&["repo", "config", "alice/app", "fsck-objects", "false"]);
    let mut inner = b"100644 git~1\0".to_vec();
    inner.extend(common::hex_to_bytes(&blob));
    let tree = literally(&work, "tree", &inner);
    let commit = git(
        &work,
        &["commit-tree", &tree, "-p", &head, "-m", "old history"],
    );
    git(
        &work,
        &[
            "push",
            "-q",
            &url,
            &format!("{}:refs/heads/mirrored", commit.trim()),
        ],
    );
    assert!(git(&work, &["ls-remote", &url]).contains("refs/heads/mirrored"));
    forge.ok(&["fsck"]);
}

/// The `object <sha>: <msgId>: <message>` of the first `remote: error:` line stock git
/// printed for a refused push.
fn fsck_error_line(stderr: &str) -> Option<String> {
    stderr.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("remote: error: ")?;
        rest.starts_with("object ").then(|| rest.trim().to_owned())
    })
}

/// A tree of `entries` (mode, name, target id), in the order given.
fn tree_of(work: &Path, entries: &[(&str, &str, &str)]) -> String {
    let mut body = Vec::new();
    for (mode, name, target) in entries {
        body.extend_from_slice(format!("{mode} {name}\0").as_bytes());
        body.extend(common::hex_to_bytes(target));
    }
    literally(work, "tree", &body)
}

#[test]
fn hostile_gitmodules_and_gitattributes_are_refused_as_git_refuses_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (source, work) = source_with_history(tmp.path(), 3);
    let (forge, _server, url) = seeded_forge(tmp.path(), &source, &[]);
    let strict = common::strict_git_remote(tmp.path(), "strict.git");
    let strict_url = strict.display().to_string();
    git(&source, &["push", "-q", &strict_url, "main"]);
    let head = git(&work, &["rev-parse", "HEAD"]).trim().to_owned();
    let commit = |tree: &str, message: &str| {
        git(&work, &["commit-tree", tree, "-p", &head, "-m", message])
            .trim()
            .to_owned()
    };
    // What only a tree's name for it makes hostile lands first, under a harmless name, so
    // that a later tree naming it `.gitmodules` finds it in the store, not in the push.
    let stored_bad = literally(
        &work,
        "blob",
        b"[submodule \"s\"]\n\turl = --upload-pack=x\n",
    );
    let harmless = commit(
        &tree_of(&work, &[("100644", "notes.txt", &stored_bad)]),
        "notes",
    );
    for remote in [&url, &strict_url] {
        git(
            &work,
            &[
                "push",
                "-q",
                remote,
                &format!("{harmless}:refs/heads/notes"),
            ],
        );
    }
    let stored_tree = git(&work, &["rev-parse", "HEAD^{tree}"]).trim().to_owned();
    let before = files_under(&tmp.path().join("data"));
    let refs_before = git(&work, &["ls-remote", &url]);

    let long_line = format!("*.c {}\n", "x".repeat(2044));
    let empty_tree = literally(&work, "tree", b"");
    let absent_commit = "1234567890123456789012345678901234567890";
    let blob = |content: &[u8]| literally(&work, "blob", content);
    // (what, the tree's entries, the problem git reports or None for accepted); `None` as
    // a target is a blob of the content given last.
    let url_x = blob(b"[submodule \"a\"]\n\turl = -x\n");
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str, String)>, Option<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "url = -x",
            vec![("100644", ".gitmodules", url_x.clone())],
            Some("gitmodulesUrl"),
        ),
        (
            "url = -x at GITMOD~1",
            vec![("100644", "GITMOD~1", url_x.clone())],
            Some("gitmodulesUrl"),
        ),
        (
            "url = -x at .GITMODULES",
            vec![("100644", ".GITMODULES", url_x.clone())],
            Some("gitmodulesUrl"),
        ),
        (
            "CRLF and quotes",
            vec![(
                "100644",
                ".gitmodules",
                blob(b"[submodule \"a\"]\r\n\turl = \"-\"x # c\r\n"),
            )],
            Some("gitmodulesUrl"),
        ),
        (
            "a newline escaped into an https URL",
            vec![(
                "100644",
                ".gitmodules",
                blob(b"[submodule \"a\"]\n\turl = https://example.com/%0a\n"),
            )],
            Some("gitmodulesUrl"),
        ),
        (
            "a relative URL climbing to the host",
            vec![(
                "100644",
                ".gitmodules",
                blob(b"[submodule \"a\"]\n\turl = ../:x\n"),
            )],
            Some("gitmodulesUrl"),
        ),
        (
            "name with ..",
            vec![(
                "100644",
                ".gitmodules",
                blob(b"[submodule \"../../hooks\"]\n\tpath = a\n"),
            )],
            Some("gitmodulesName"),
        ),
        (
            "path = -x",
            vec![(
                "100644",
                ".gitmodules",
                blob(b"[submodule \"a\"]\n\tpath = -x\n"),
            )],
            Some("gitmodulesPath"),
        ),
        (
            "update = !rm",
            vec![(
                "100644",
                ".gitmodules",
                blob(b"[submodule \"a\"]\n\tupdate = !rm -rf ~\n"),
            )],
            Some("gitmodulesUpdate"),
        ),
        (
            "a stored blob",
            vec![("100644", ".gitmodules", stored_bad.clone())],
            Some("gitmodulesUrl"),
        ),
        (
            "a stored tree",
            vec![("40000", ".gitmodules", stored_tree.clone())],
            Some("gitmodulesBlob"),
        ),
        (
            "a pushed tree",
            vec![("40000", ".gitmodules", empty_tree.clone())],
            Some("gitmodulesBlob"),
        ),
        (
            "a gitlink to an absent commit",
            vec![("160000", ".gitmodules", absent_commit.to_owned())],
            Some("gitmodulesMissing"),
        ),
        (
            "a long .gitattributes line",
            vec![("100644", ".gitattributes", blob(long_line.as_bytes()))],
            Some("gitattributesLineLength"),
        ),
        (
            "a long line at gi7d29~1",
            vec![("100644", "gi7d29~1", blob(long_line.as_bytes()))],
            Some("gitattributesLineLength"),
        ),
        (
            ".gitattributes as a directory",
            vec![("40000", ".gitattributes", empty_tree.clone())],
            Some("gitattributesBlob"),
        ),
        (
            ".gitattributes as a gitlink to an absent commit",
            vec![("160000", ".gitattributes", absent_commit.to_owned())],
            Some("gitattributesMissing"),
        ),
        // Accepted by both.
        (
            "an ordinary .gitmodules",
            vec![(
                "100644",
                ".gitmodules",
                blob(b"[submodule \"lib\"]\n\tpath = lib\n\turl = ../lib.git\n\tupdate = rebase\n"),
            )],
            None,
        ),
        (
            "a syntax error before url = -x (gitmodulesParse is INFO)",
            vec![(
                "100644",
                ".gitmodules",
                blob(b"=\n[submodule \"a\"]\n\turl = -x\n"),
            )],
            None,
        ),
        (
            "a .gitattributes line of 2047 bytes",
            vec![(
                "100644",
                ".gitattributes",
                blob(format!("*.c {}\n", "x".repeat(2043)).as_bytes()),
            )],
            None,
        ),
        (
            "url = -x at a .gitattributes symlink",
            vec![("120000", ".gitattributes", url_x.clone())],
            None,
        ),
        (
            "url = -x, not at .gitmodules",
            vec![("100644", "gitmodules", url_x.clone())],
            None,
        ),
    ];
    // The refusals first, so that the data directory can be compared after them.
    let (refused, accepted): (Vec<_>, Vec<_>) = cases
        .iter()
        .enumerate()
        .partition(|(_, (_, _, problem))| problem.is_some());
    let push_both = |i: usize, what: &str, entries: &[(&str, &str, String)]| {
        let entries: Vec<(&str, &str, &str)> = entries
            .iter()
            .map(|(mode, name, target)| (*mode, *name, target.as_str()))
            .collect();
        let tree = tree_of(&work, &entries);
        // One level down too: every tree of the push is looked at.
        let outer = tree_of(&work, &[("40000", "sub", &tree)]);
        [(0, tree), (1, outer)].map(|(depth, tree)| {
            let refspec = format!("{}:refs/heads/gm-{i}-{depth}", commit(&tree, what));
            let (git_ok, stock) = try_git(&work, &["push", &strict_url, &refspec]);
            let (forge_ok, stderr) = try_git(&work, &["push", &url, &refspec]);
            (refspec, git_ok, stock, forge_ok, stderr)
        })
    };
    for (i, (what, entries, problem)) in refused {
        let problem = problem.unwrap_or_default();
        for (_, git_ok, stock, forge_ok, stderr) in push_both(i, what, entries) {
            assert!(!git_ok, "{what}: git took it: {stock}");
            assert!(!forge_ok, "{what}: the forge took it: {stderr}");
            // The same object, problem and words.
            let line = fsck_error_line(&stock).unwrap_or_else(|| panic!("{what}: {stock}"));
            assert!(line.contains(&format!(": {problem}: ")), "{what}: {line}");
            assert!(
                stderr.contains(&format!("error: remote unpack failed: {line}")),
                "{what}: git said {line}\nthe forge said {stderr}"
            );
            assert!(stderr.contains("(unpacker error)"), "{stderr}");
        }
    }
    // Nothing of the refused pushes was kept, and the repository still serves.
    assert_eq!(files_under(&tmp.path().join("data")), before);
    assert_eq!(git(&work, &["ls-remote", &url]), refs_before);
    let back = tmp.path().join("back.git");
    git(
        tmp.path(),
        &["clone", "-q", "--mirror", &url, &back.display().to_string()],
    );
    assert_fsck_clean(&back);
    assert_eq!(git(&back, &["rev-parse", "main"]).trim(), head);
    forge.ok(&["fsck"]);

    for (i, (what, entries, _)) in accepted {
        for (refspec, git_ok, stock, forge_ok, stderr) in push_both(i, what, entries) {
            assert!(git_ok, "{what}: git refused it: {stock}");
            assert!(forge_ok, "{what}: the forge refused it: {stderr}");
            let (commit, name) = refspec.split_once(':').unwrap();
            let refs = git(&work, &["ls-remote", &url, name]);
            assert!(refs.starts_with(commit), "{what}: {refs}");
        }
    }
    forge.ok(&["fsck"]);
}

#[test]
fn quiet_pushes_show_no_progress_and_empty_packs_and_deletions_work() {
    let tmp = tempfile::tempdir().unwrap();
    let (source, work) = source_with_history(tmp.path(), 3);
    let (forge, _server, url) = seeded_forge(tmp.path(), &source, &[]);
    for i in 0..40 {
        commit_file(&work, &format!("f{i}.txt"), format!("{i}\n"), "more");
    }
    let first = git(&work, &["rev-parse", "HEAD~20"]).trim().to_owned();
    let (ok, loud) = try_git(
        &work,
        &[
            "push",
            "--progress",
            &url,
            &format!("{first}:refs/heads/main"),
        ],
    );
    assert!(ok, "{loud}");
    assert!(loud.contains("remote: Translating objects: 100%"), "{loud}");
    let (ok, quiet) = try_git(&work, &["push", "--quiet", &url, "main"]);
    assert!(ok, "{quiet}");
    assert!(!quiet.contains("remote:"), "{quiet}");

    // A branch at a commit the server has: git sends an empty pack.
    let trace = git_output(&work, &["push", &url, "main:refs/heads/copy"], None);
    assert!(trace.status.success());
    let main = remote_main(&work, &url);
    let copy = git(&work, &["ls-remote", &url, "refs/heads/copy"]);
    assert!(copy.starts_with(&main), "{copy}");
    // Delete-only: no pack at all.
    let (ok, stderr) = try_git(&work, &["push", &url, ":refs/heads/copy"]);
    assert!(ok, "{stderr}");
    assert!(git(&work, &["ls-remote", &url, "refs/heads/copy"]).is_empty());
    // A pack sent with a delete-only push is refused.
    let (_, answer) = post_receive_pack(&url, &{
        let mut body = pkt(&format!("{main} {ZERO} refs/heads/main\0report-status\n"));
        body.extend_from_slice(b"0000");
        body.extend_from_slice(&hand_pack(&[]));
        body
    });
    assert!(
        answer.contains("unpack a delete-only push must not send a pack"),
        "{answer}"
    );
    assert_eq!(remote_main(&work, &url), main);
    forge.ok(&["fsck"]);
}

fn quarantines(data: &Path) -> Vec<String> {
    files_under(data)
        .into_iter()
        .filter(|f| f.rsplit('/').next().is_some_and(|n| n.starts_with("push-")))
        .collect()
}

#[test]
fn a_push_cut_off_mid_body_or_killed_mid_push_leaves_the_store_consistent() {
    let tmp = tempfile::tempdir().unwrap();
    let (source, work) = source_with_history(tmp.path(), 5);
    let data = tmp.path().join("data");
    let (forge, mut server, url) = seeded_forge(tmp.path(), &source, &[]);
    let old = remote_main(&work, &url);
    for i in 0..4 {
        commit_file(
            &work,
            &format!("big{i}.bin"),
            common::noise(40 + i, 4 << 20, |n| n as u8),
            "big",
        );
    }
    let new = git(&work, &["rev-parse", "HEAD"]).trim().to_owned();
    let pack = pack_of(&work, &format!("{new}\n^{old}\n"));
    let before = files_under(&data);

    // Half the body, chunked, then the connection closes.
    let (host, path, token) = split_url(&url);
    let mut stream = TcpStream::connect(&host).unwrap();
    write!(
        stream,
        "POST {path}/git-receive-pack HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/x-git-receive-pack-request\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .unwrap();
    let body = push_body(&old, &new, &pack);
    for chunk in body[..body.len() / 2].chunks(65536) {
        write!(stream, "{:x}\r\n", chunk.len()).unwrap();
        stream.write_all(chunk).unwrap();
        stream.write_all(b"\r\n").unwrap();
    }
    assert!(wait_for(Duration::from_secs(20), || !quarantines(&data).is_empty()));
    drop(stream);
    assert!(
        wait_for(Duration::from_secs(20), || quarantines(&data).is_empty()),
        "the quarantine goes when the push fails"
    );
    assert_eq!(remote_main(&work, &url), old);
    assert_eq!(files_under(&data), before);

    // kill -9 while the server indexes a push.
    let pusher = {
        let work = work.clone();
        let url = url.clone();
        std::thread::spawn(move || try_git(&work, &["push", &url, "main"]))
    };
    assert!(
        wait_for(Duration::from_secs(60), || !quarantines(&data).is_empty()),
        "the push reaches the server"
    );
    server.kill_hard();
    let (ok, stderr) = pusher.join().unwrap();
    assert!(!ok, "{stderr}");
    drop(server);

    let fsck = forge.ok(&["fsck"]);
    assert!(
        fsck.contains("unregistered"),
        "the killed push left its quarantine: {fsck}"
    );
    let server = Server::start_with(&forge, &["--no-auto-repack"]);
    let url = server.repo_url("alice/app");
    assert_eq!(remote_main(&work, &url), old);
    let (ok, stderr) = try_git(&work, &["push", &url, "main"]);
    assert!(ok, "{stderr}");
    assert_eq!(remote_main(&work, &url), new);
    let back = tmp.path().join("back.git");
    git(
        tmp.path(),
        &["clone", "-q", "--bare", &url, &back.display().to_string()],
    );
    let objects = |repo: &Path| {
        let mut list: Vec<String> = git(repo, &["rev-list", "--objects", "main"])
            .lines()
            .map(|l| l[..40].to_owned())
            .collect();
        list.sort();
        list
    };
    assert_eq!(objects(&back), objects(&work));
    assert_fsck_clean(&back);
    let left = quarantines(&data);
    assert!(
        left.is_empty(),
        "the next push removed the leftovers: {left:?}"
    );
    let fsck = forge.ok(&["fsck"]);
    assert!(!fsck.contains("unregistered"), "{fsck}");
}
