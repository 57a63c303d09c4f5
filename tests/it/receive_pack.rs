//! Push with stock git into a real `forge serve`.

use crate::common;

use std::path::{Path, PathBuf};

use common::corpus::{malformed_corpus, synthetic_history};
use common::{
    Forge, Server, assert_fsck_clean, branches_and_tags, clone_work, commit_file, git,
    reachable_objects, try_git,
};

/// A forge with an empty `alice/app`, served.
fn empty_forge(tmp: &Path) -> (Forge, Server, String) {
    let forge = Forge::new(&tmp.join("data"));
    forge.ok(&["repo", "create", "alice/app"]);
    let server = Server::start_with(&forge, &["--no-auto-repack"]);
    let url = server.repo_url("alice/app");
    (forge, server, url)
}

fn clone_back(tmp: &Path, url: &str, dir: &str) -> PathBuf {
    let target = tmp.join(dir);
    git(
        tmp,
        &["clone", "-q", "--bare", url, &target.display().to_string()],
    );
    target
}

#[test]
fn push_a_history_then_commits_branches_tags_and_deletions() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source.git");
    synthetic_history(&source, 300);
    git(
        &source,
        &["tag", "-a", "-m", "a tag of a tag", "v0-signed", "v0"],
    );
    let (forge, _server, url) = empty_forge(tmp.path());

    // The whole history into the empty repository, with progress from the server.
    let (ok, stderr) = try_git(&source, &["push", "--progress", "--mirror", &url]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("remote: Translating objects: 100% ("),
        "{stderr}"
    );
    let back = clone_back(tmp.path(), &url, "back");
    assert_eq!(branches_and_tags(&back), branches_and_tags(&source));
    assert_eq!(reachable_objects(&back), reachable_objects(&source));
    assert_fsck_clean(&back);
    let exported = tmp.path().join("export.git");
    forge.ok(&["export", "alice/app", &exported.display().to_string()]);
    assert_eq!(common::snapshot(&exported), common::snapshot(&source));

    // New commits, a branch and a tag; then both deleted.
    let work = tmp.path().join("work");
    clone_work(&back, &work);
    git(&work, &["remote", "set-url", "origin", &url]);
    for i in 0..3 {
        commit_file(&work, &format!("new{i}.txt"), format!("{i}\n"), "new work");
    }
    git(&work, &["push", "-q", "origin", "main"]);
    git(&work, &["branch", "topic", "HEAD~1"]);
    git(&work, &["tag", "-a", "-m", "release", "v-new"]);
    let (ok, stderr) = try_git(&work, &["push", "origin", "topic", "v-new"]);
    assert!(ok, "{stderr}");
    let remote = git(&work, &["ls-remote", "origin"]);
    for name in ["refs/heads/main", "refs/heads/topic", "refs/tags/v-new"] {
        let local = git(&work, &["rev-parse", name]);
        assert!(
            remote.contains(&format!("{}\t{name}", local.trim())),
            "{name}: {remote}"
        );
    }
    // Deleting sends no pack at all.
    git(
        &work,
        &["push", "-q", "origin", "--delete", "topic", "v-new"],
    );
    let remote = git(&work, &["ls-remote", "origin"]);
    assert!(!remote.contains("refs/heads/topic") && !remote.contains("v-new"));
    let again = clone_back(tmp.path(), &url, "again");
    assert_eq!(
        git(&again, &["rev-parse", "main"]),
        git(&work, &["rev-parse", "main"])
    );
    assert_fsck_clean(&again);
    forge.ok(&["fsck"]);
}

#[test]
fn force_pushes_follow_the_repository_setting_and_atomic_pushes_are_all_or_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source.git");
    synthetic_history(&source, 40);
    let (forge, _server, url) = empty_forge(tmp.path());
    git(&source, &["push", "-q", "--mirror", &url]);
    let work = tmp.path().join("work");
    clone_work(&source, &work);
    git(&work, &["remote", "set-url", "origin", &url]);
    let main_before = git(&work, &["rev-parse", "origin/main"]);

    // Rewriting the default branch is refused by default.
    git(&work, &["reset", "-q", "--hard", "HEAD~2"]);
    commit_file(&work, "rewrite.txt", "rewritten\n", "rewrite");
    let (ok, stderr) = try_git(&work, &["push", "--force", "origin", "main"]);
    assert!(!ok);
    assert!(
        stderr.contains(
            "! [remote rejected] main -> main (non-fast-forward updates of the default branch are not allowed)"
        ),
        "{stderr}"
    );
    assert_eq!(
        git(&work, &["ls-remote", "origin", "refs/heads/main"])[..40],
        main_before[..40]
    );
    // Without --force git itself refuses.
    let (ok, stderr) = try_git(&work, &["push", "origin", "main"]);
    assert!(!ok && stderr.contains("[rejected]"), "{stderr}");
    // Other branches may be rewritten.
    let (ok, stderr) = try_git(&work, &["push", "--force", "origin", "main:side"]);
    assert!(ok, "{stderr}");
    // Allowed once the repository says so.
    assert_eq!(
        forge.ok(&["repo", "config", "alice/app", "allow-force", "true"]),
        "true\n"
    );
    let (ok, stderr) = try_git(&work, &["push", "--force", "origin", "main"]);
    assert!(ok, "{stderr}");
    assert_eq!(
        git(&work, &["ls-remote", "origin", "refs/heads/main"])[..40],
        git(&work, &["rev-parse", "main"])[..40]
    );
    let err = forge.fails(&["repo", "config", "alice/app", "allow-force", "maybe"]);
    assert!(
        err.contains("allow-force is true or false, not 'maybe'"),
        "{err}"
    );
    let err = forge.fails(&["repo", "config", "alice/app", "colour", "true"]);
    assert!(
        err.contains("unknown setting 'colour' (known: allow-force, fsck-objects, public)"),
        "{err}"
    );
    // Defaults read as such; `public` is answered from the registry.
    assert_eq!(
        forge.ok(&["repo", "config", "alice/app", "fsck-objects"]),
        "true\n"
    );
    assert_eq!(
        forge.ok(&["repo", "config", "alice/app", "public"]),
        "false\n"
    );
    let json = forge.json(&["repo", "config", "alice/app", "allow-force"]);
    assert_eq!(json["value"], true, "{json}");

    // --atomic: a good update and one the server refuses (deleting the current branch).
    commit_file(&work, "more.txt", "more\n", "more");
    let before = git(&work, &["ls-remote", "origin"]);
    let (ok, stderr) = try_git(
        &work,
        &[
            "push",
            "--atomic",
            "origin",
            "main",
            ":refs/heads/main",
            "HEAD:refs/heads/fresh",
        ],
    );
    assert!(!ok, "{stderr}");
    assert_eq!(git(&work, &["ls-remote", "origin"]), before, "{stderr}");
    // Without --atomic the good ones land and the bad one is reported.
    let (ok, stderr) = try_git(
        &work,
        &[
            "push",
            "origin",
            ":refs/heads/main",
            "HEAD:refs/heads/fresh",
        ],
    );
    assert!(!ok);
    assert!(
        stderr.contains("! [remote rejected] main (refusing to delete the current branch)"),
        "{stderr}"
    );
    assert!(git(&work, &["ls-remote", "origin"]).contains("refs/heads/fresh"));

    // Push options are accepted.
    commit_file(&work, "opts.txt", "opts\n", "with options");
    let (ok, stderr) = try_git(
        &work,
        &[
            "push",
            "-o",
            "ci.skip",
            "-o",
            "reviewer=bob",
            "origin",
            "main",
        ],
    );
    assert!(ok, "{stderr}");
    forge.ok(&["fsck"]);
}

#[test]
fn concurrent_pushes_to_one_branch_lose_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source.git");
    synthetic_history(&source, 30);
    let (forge, _server, url) = empty_forge(tmp.path());
    git(&source, &["push", "-q", "--mirror", &url]);
    let clients: Vec<PathBuf> = (0..2)
        .map(|i| {
            let work = tmp.path().join(format!("client{i}"));
            clone_work(&source, &work);
            git(&work, &["remote", "set-url", "origin", &url]);
            commit_file(&work, &format!("client{i}.txt"), format!("{i}\n"), "work");
            work
        })
        .collect();
    let results: Vec<(bool, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = clients
            .iter()
            .map(|work| scope.spawn(move || try_git(work, &["push", "origin", "main"])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners = results.iter().filter(|(ok, _)| *ok).count();
    assert_eq!(winners, 1, "{results:?}");
    let (loser, (_, stderr)) = clients
        .iter()
        .zip(&results)
        .find(|(_, (ok, _))| !ok)
        .unwrap();
    // Told to fetch first: by the server when both started together, by git otherwise.
    assert!(stderr.contains("fetch first"), "{stderr}");
    git(
        loser,
        &["pull", "-q", "--no-rebase", "--no-edit", "origin", "main"],
    );
    git(loser, &["push", "-q", "origin", "main"]);
    let back = clone_back(tmp.path(), &url, "back");
    let files = git(&back, &["ls-tree", "--name-only", "main"]);
    assert!(
        files.contains("client0.txt") && files.contains("client1.txt"),
        "{files}"
    );
    assert_fsck_clean(&back);
    forge.ok(&["fsck"]);
}

#[test]
fn big_chunked_and_thin_pushes() {
    let tmp = tempfile::tempdir().unwrap();
    let (forge, _server, url) = empty_forge(tmp.path());
    let work = tmp.path().join("work");
    git(
        tmp.path(),
        &["init", "-q", "-b", "main", &work.display().to_string()],
    );
    let mut big = common::noise(0x9e37_79b9_7f4a_7c15, 3_000_000, |s| b'a' + (s % 26) as u8);
    commit_file(&work, "big.txt", &big, "big");
    let (trace, stderr) = common::curl_trace(&work, &["push", "--progress", &url, "main"]);
    assert!(trace.contains("Transfer-Encoding: chunked"), "not chunked");
    assert!(
        stderr.contains("remote: Checking objects: 100% (3/3), done."),
        "{stderr}"
    );
    let early = clone_back(tmp.path(), &url, "early");
    // A small edit of the big file: git sends a thin pack, a delta against the blob the
    // server already has. The store keeps that delta, and a fetch sends it on.
    big[1_000_000..1_000_010].copy_from_slice(b"0123456789");
    commit_file(&work, "big.txt", &big, "edit");
    let segments = |dir: &Path| -> Vec<(String, u64)> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name().to_string_lossy().ends_with(".seg") {
                found.push((
                    entry.file_name().to_string_lossy().into_owned(),
                    entry.metadata().unwrap().len(),
                ));
            }
        }
        found
    };
    let objects_dir = tmp.path().join("data/repos/1/objects");
    let before = segments(&objects_dir);
    let (ok, stderr) = try_git(&work, &["push", &url, "main"]);
    assert!(ok, "{stderr}");
    let added: Vec<_> = segments(&objects_dir)
        .into_iter()
        .filter(|s| !before.contains(s))
        .collect();
    assert_eq!(added.len(), 1, "{added:?}");
    assert!(
        added[0].1 < 10_000,
        "the edit is stored as a delta: {added:?}"
    );
    let pack_kib = |repo: &Path| -> u64 {
        let counts = git(repo, &["count-objects", "-v"]);
        counts
            .lines()
            .find_map(|l| l.strip_prefix("size-pack: "))
            .unwrap()
            .parse()
            .unwrap()
    };
    let early_before = pack_kib(&early);
    git(&early, &["fetch", "-q", &url, "main:main"]);
    assert!(
        pack_kib(&early) - early_before < 10,
        "the fetch reuses the pushed delta"
    );
    let back = clone_back(tmp.path(), &url, "back");
    assert_eq!(reachable_objects(&back), reachable_objects(&work));
    assert_fsck_clean(&back);
    forge.ok(&["fsck"]);
}

#[test]
fn malformed_objects_survive_a_push_and_hostile_trees_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus.git");
    malformed_corpus(&corpus);
    let (forge, server, url) = empty_forge(tmp.path());
    let refs = git(&corpus, &["for-each-ref", "--format=%(refname)"]);

    // With git's checks on (the default), the forge takes exactly what git's
    // receive-pack takes with receive.fsckObjects, and refuses the rest in git's words.
    forge.ok(&["repo", "create", "alice/checked"]);
    let checked = server.repo_url("alice/checked");
    let strict = common::strict_git_remote(tmp.path(), "strict.git");
    let mut refused = 0;
    for name in refs.lines() {
        let refspec = format!("{name}:{name}");
        let (git_ok, stock) = try_git(&corpus, &["push", &strict.display().to_string(), &refspec]);
        let (forge_ok, stderr) = try_git(&corpus, &["push", &checked, &refspec]);
        assert_eq!(
            forge_ok, git_ok,
            "{name}: git said {stock}\nthe forge said {stderr}"
        );
        // (git prints some problems and still takes the object: only refusals count.)
        if let Some(problem) = common::fsck_problem(&stock).filter(|_| !git_ok) {
            assert!(stderr.contains(&problem), "{name}: {problem} in {stderr}");
            refused += 1;
        }
    }
    assert!(
        refused >= 5,
        "the corpus has objects git's fsck refuses: {refused}"
    );

    // Without them (a mirror of old history), every object git itself can send lands.
    forge.ok(&["repo", "config", "alice/app", "fsck-objects", "false"]);
    let mut pushed = Vec::new();
    for name in refs.lines() {
        let (ok, stderr) = try_git(&corpus, &["push", &url, &format!("{name}:{name}")]);
        if !ok {
            // git's own client refuses some refs (a branch at a non-commit); the rest land.
            assert!(!stderr.contains("remote unpack failed"), "{name}: {stderr}");
            continue;
        }
        pushed.push(name.to_owned());
    }
    assert!(pushed.len() > 40, "{pushed:?}");
    // Each pushed object reads back byte-exact.
    let back = tmp.path().join("back.git");
    git(
        tmp.path(),
        &["init", "-q", "--bare", &back.display().to_string()],
    );
    git(&back, &["fetch", "-q", &url, "refs/*:refs/*"]);
    for name in &pushed {
        let id = git(&corpus, &["rev-parse", name]);
        let id = id.trim();
        assert_eq!(git(&back, &["rev-parse", name]).trim(), id);
        let kind = git(&corpus, &["cat-file", "-t", id]);
        assert_eq!(
            common::git_bytes(&back, &["cat-file", kind.trim(), id], None),
            common::git_bytes(&corpus, &["cat-file", kind.trim(), id], None),
            "{name}"
        );
    }
    forge.ok(&["fsck"]);
}
