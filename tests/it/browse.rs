//! Reading a repository over REST against a real `forge serve`: commits, logs (of a ref and
//! of a path), comparisons, directories, files, blobs and archives, each checked against
//! what stock git says of the same history.

use std::ffi::OsStr;
use std::path::Path;

use crate::common;

use common::{Forge, RawAnswer, Server, assert_error, call, git, git_with_env};
use serde_json::Value;

/// Commits everything in `work` at `time` (author and committer), returning the SHA-1.
fn commit_at(work: &Path, time: i64, message: &str) -> String {
    git(work, &["add", "-A"]);
    commit_staged_at(work, time, message)
}

/// Commits what is staged at `time`.
fn commit_staged_at(work: &Path, time: i64, message: &str) -> String {
    let date = format!("{time} +0130");
    let date = OsStr::new(&date);
    git_with_env(
        work,
        &["commit", "-q", "--allow-empty", "-m", message],
        &[
            ("GIT_AUTHOR_NAME", OsStr::new("Ann Author")),
            ("GIT_AUTHOR_EMAIL", OsStr::new("ann@example.com")),
            ("GIT_COMMITTER_NAME", OsStr::new("Cy Committer")),
            ("GIT_COMMITTER_EMAIL", OsStr::new("cy@example.com")),
            ("GIT_AUTHOR_DATE", date),
            ("GIT_COMMITTER_DATE", date),
        ],
    );
    git(work, &["rev-parse", "HEAD"]).trim().to_owned()
}

fn merge_at(work: &Path, time: i64, branch: &str) -> String {
    let date = format!("{time} +0130");
    let date = OsStr::new(&date);
    git_with_env(
        work,
        &[
            "merge",
            "-q",
            "--no-ff",
            "-m",
            &format!("Merge {branch}"),
            branch,
        ],
        &[
            ("GIT_AUTHOR_NAME", OsStr::new("Ann Author")),
            ("GIT_AUTHOR_EMAIL", OsStr::new("ann@example.com")),
            ("GIT_COMMITTER_NAME", OsStr::new("Cy Committer")),
            ("GIT_COMMITTER_EMAIL", OsStr::new("cy@example.com")),
            ("GIT_AUTHOR_DATE", date),
            ("GIT_COMMITTER_DATE", date),
        ],
    );
    git(work, &["rev-parse", "HEAD"]).trim().to_owned()
}

const LONG_DIR: &str =
    "a-directory-name-long-enough/that-the-whole-path/passes-the-hundred-bytes-of-ustar";

/// A history with merges, commits of equal time and one older than its parent, and every
/// kind of tree entry: a file, an executable, a symlink, a submodule, a long path, a
/// non-ASCII name.
fn history(work: &Path) {
    std::fs::create_dir_all(work).unwrap();
    git(work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("README"), "hello\n").unwrap();
    std::fs::create_dir_all(work.join("src")).unwrap();
    std::fs::write(work.join("src/lib.rs"), "pub fn one() {}\n").unwrap();
    std::fs::create_dir_all(work.join("bin")).unwrap();
    std::fs::write(work.join("bin/run.sh"), "#!/bin/sh\necho run\n").unwrap();
    std::fs::set_permissions(
        work.join("bin/run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("README", work.join("link")).unwrap();
    std::fs::create_dir_all(work.join(LONG_DIR)).unwrap();
    std::fs::write(work.join(LONG_DIR).join("file.txt"), "deep\n").unwrap();
    std::fs::write(work.join("ünïcode.txt"), "ü\n").unwrap();
    commit_at(work, 1_000_000_000, "Start\n\nWith a body.");
    git(work, &["branch", "old"]);
    git(work, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(
        work.join("src/lib.rs"),
        "pub fn one() {}\npub fn two() {}\n",
    )
    .unwrap();
    commit_at(work, 1_000_002_000, "Two");
    std::fs::create_dir_all(work.join("docs")).unwrap();
    std::fs::write(work.join("docs/guide.md"), "# Guide\n").unwrap();
    commit_at(work, 1_000_002_000, "Guide");
    git(work, &["checkout", "-q", "main"]);
    std::fs::write(work.join("README"), "hello, world\n").unwrap();
    commit_at(work, 1_000_001_500, "Greet the world");
    git(work, &["checkout", "-q", "-b", "side"]);
    std::fs::remove_file(work.join("ünïcode.txt")).unwrap();
    commit_at(work, 1_000_001_600, "Side");
    git(work, &["checkout", "-q", "main"]);
    merge_at(work, 1_000_003_000, "feature");
    git(
        work,
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            "160000,1234567890123456789012345678901234567890,vendor/sub",
        ],
    );
    std::fs::write(
        work.join("src/lib.rs"),
        "pub fn one() {}\npub fn three() {}\n",
    )
    .unwrap();
    git(work, &["add", "src/lib.rs"]);
    // Older than its parent: git log's date order shows it after commits of later dates.
    commit_staged_at(work, 1_000_002_500, "Three");
    git(work, &["tag", "-a", "-m", "version one", "v1", "HEAD~1"]);
}

fn get(server: &Server, path: &str, token: Option<&str>, headers: &[(&str, &str)]) -> RawAnswer {
    let addr = server.addr();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    common::raw_http(&addr, request.as_bytes())
}

fn header<'a>(answer: &'a RawAnswer, name: &str) -> Option<&'a str> {
    answer.head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

fn json(answer: &RawAnswer) -> Value {
    assert_eq!(answer.status, 200, "{}\n{}", answer.head, answer.text());
    serde_json::from_slice(&answer.body).unwrap()
}

fn lines(text: String) -> Vec<String> {
    text.lines().map(str::to_owned).collect()
}

/// Every page of a log, following `next_cursor`, as SHA-1s.
fn whole_log(server: &Server, token: &str, query: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut path = format!("/api/v1/repos/alice/app/commits?limit=2&{query}");
    loop {
        let answer = get(server, &path, Some(token), &[]);
        let page = json(&answer);
        for item in page["items"].as_array().unwrap() {
            out.push(item["sha1"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                let link = header(&answer, "link").expect("a Link header with a next page");
                assert!(
                    link.contains(cursor) && link.ends_with("rel=\"next\""),
                    "{link}"
                );
                path = format!("/api/v1/repos/alice/app/commits?limit=2&{query}&cursor={cursor}");
            }
            None => {
                assert!(header(&answer, "link").is_none());
                return out;
            }
        }
    }
}

#[test]
fn commits_logs_and_comparisons_agree_with_git() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    history(&work);
    let forge = Forge::new(&tmp.path().join("data"));
    forge.ok(&["repo", "create", "alice/app"]);
    forge.ok(&["import", "alice/app", work.to_str().unwrap()]);
    let server = Server::start(&forge);
    let token = server.token.clone();

    // One commit, by id: both ids, people, message; immutable and revalidated by ETag.
    let merge = git(&work, &["rev-parse", "main~1"]).trim().to_owned();
    let answer = get(
        &server,
        &format!("/api/v1/repos/alice/app/commits/{merge}"),
        Some(&token),
        &[],
    );
    let commit = json(&answer);
    assert_eq!(commit["sha1"], merge);
    assert_eq!(commit["id"].as_str().unwrap().len(), 64);
    assert_eq!(
        commit["tree"]["sha1"],
        git(&work, &["rev-parse", "main~1^{tree}"]).trim()
    );
    let parents: Vec<&str> = commit["parents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sha1"].as_str().unwrap())
        .collect();
    assert_eq!(
        parents,
        git(&work, &["log", "-1", "--format=%P", &merge])
            .split_whitespace()
            .collect::<Vec<_>>()
    );
    assert_eq!(commit["author"]["name"], "Ann Author");
    assert_eq!(commit["author"]["email"], "ann@example.com");
    assert_eq!(commit["committer"]["name"], "Cy Committer");
    assert_eq!(commit["committer"]["timestamp"], 1_000_003_000);
    assert_eq!(commit["committer"]["tz_offset_minutes"], 90);
    assert_eq!(
        commit["committer"]["date"],
        git(&work, &["log", "-1", "--format=%cI", &merge]).trim()
    );
    assert_eq!(commit["subject"], "Merge feature");
    assert_eq!(commit["message"], "Merge feature\n");
    assert_eq!(commit["signed"], false);
    let etag = header(&answer, "etag").unwrap().to_owned();
    assert_eq!(
        header(&answer, "cache-control"),
        Some("private, max-age=31536000, immutable")
    );
    let again = get(
        &server,
        &format!("/api/v1/repos/alice/app/commits/{merge}"),
        Some(&token),
        &[("If-None-Match", &etag)],
    );
    assert_eq!(again.status, 304, "{}", again.head);
    assert!(again.body.is_empty());
    // By a branch or a tag (peeled): revalidated on every use, as the ref may move.
    let by_branch = get(
        &server,
        "/api/v1/repos/alice/app/commits/main",
        Some(&token),
        &[],
    );
    assert_eq!(
        json(&by_branch)["sha1"],
        git(&work, &["rev-parse", "main"]).trim()
    );
    assert_eq!(
        header(&by_branch, "cache-control"),
        Some("private, no-cache")
    );
    let by_tag = json(&get(
        &server,
        "/api/v1/repos/alice/app/commits/v1",
        Some(&token),
        &[],
    ));
    assert_eq!(by_tag["sha1"], merge);
    let full_ref = json(&get(
        &server,
        "/api/v1/repos/alice/app/commits/refs%2Fheads%2Ffeature",
        Some(&token),
        &[],
    ));
    assert_eq!(
        full_ref["sha1"],
        git(&work, &["rev-parse", "feature"]).trim()
    );
    let missing = call(
        &server,
        "GET",
        "/api/v1/repos/alice/app/commits/nope",
        Some(&token),
        None,
    );
    assert_error(&missing, 404, "revision_not_found", "no revision \"nope\"");
    let tree = git(&work, &["rev-parse", "main^{tree}"]).trim().to_owned();
    let not_commit = call(
        &server,
        "GET",
        &format!("/api/v1/repos/alice/app/commits/{tree}"),
        Some(&token),
        None,
    );
    assert_error(
        &not_commit,
        422,
        "not_a_commit",
        "names a tree, not a commit",
    );

    // The log, page by page, is git log's order: by date, ties as reached, skew and all.
    for (query, rev, path) in [
        ("ref=main", "main", None),
        ("", "main", None),
        ("ref=feature", "feature", None),
        ("ref=main&path=src/lib.rs", "main", Some("src/lib.rs")),
        ("ref=main&path=src", "main", Some("src")),
        ("ref=main&path=docs", "main", Some("docs")),
        ("ref=main&path=README", "main", Some("README")),
        (
            "ref=side&path=%C3%BCn%C3%AFcode.txt",
            "side",
            Some("ünïcode.txt"),
        ),
        ("ref=main&path=nothing-here", "main", Some("nothing-here")),
    ] {
        let mut args = vec!["log", "--format=%H", rev];
        if let Some(path) = path {
            args.extend(["--", path]);
        }
        assert_eq!(
            whole_log(&server, &token, query),
            lines(git(&work, &args)),
            "{query}"
        );
    }
    // A cursor pins the history it started from, though the branch moves meanwhile.
    let first = json(&get(
        &server,
        "/api/v1/repos/alice/app/commits?ref=main&limit=3",
        Some(&token),
        &[],
    ));
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let tip = git(&work, &["rev-parse", "main"]).trim().to_owned();
    forge.ok(&["ref", "set", "alice/app", "refs/heads/keep", &tip]);
    forge.ok(&[
        "ref",
        "set",
        "alice/app",
        "refs/heads/main",
        git(&work, &["rev-parse", "old"]).trim(),
    ]);
    let rest = json(&get(
        &server,
        &format!("/api/v1/repos/alice/app/commits?limit=100&cursor={cursor}"),
        Some(&token),
        &[],
    ));
    let all = lines(git(&work, &["log", "--format=%H", "main"]));
    let rest: Vec<&str> = rest["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sha1"].as_str().unwrap())
        .collect();
    assert_eq!(
        rest,
        all[3..].iter().map(String::as_str).collect::<Vec<_>>()
    );
    // Once no ref reaches a commit (a force-push left it behind), it is not served by its
    // id either, as a fetch would not send it (what the server remembers of the refs it
    // asked about before goes with them: the ref is deleted by another process).
    let by_id = format!("/api/v1/repos/alice/app/commits/{tip}");
    assert_eq!(call(&server, "GET", &by_id, Some(&token), None).status, 200);
    forge.ok(&["ref", "delete", "alice/app", "refs/heads/keep"]);
    for path in [
        format!("/api/v1/repos/alice/app/commits/{tip}"),
        format!("/api/v1/repos/alice/app/tree?ref={tip}"),
        format!("/api/v1/repos/alice/app/archive?ref={tip}"),
        format!("/api/v1/repos/alice/app/commits?cursor={cursor}"),
    ] {
        let answer = call(&server, "GET", &path, Some(&token), None);
        assert!(
            matches!(answer.status, 400 | 404),
            "{path}: {}",
            answer.body
        );
    }
    forge.ok(&["ref", "set", "alice/app", "refs/heads/main", &all[0]]);
    assert_eq!(
        call(
            &server,
            "GET",
            &format!("/api/v1/repos/alice/app/commits/{tip}"),
            Some(&token),
            None
        )
        .status,
        200
    );
    for (query, status, code) in [
        ("cursor=garbage", 400, "invalid_request"),
        ("limit=0", 400, "invalid_request"),
        ("limit=101", 400, "invalid_request"),
        ("path=a//b", 400, "invalid_path"),
        ("path=../etc", 400, "invalid_path"),
        ("ref=nope", 404, "revision_not_found"),
    ] {
        let answer = call(
            &server,
            "GET",
            &format!("/api/v1/repos/alice/app/commits?{query}"),
            Some(&token),
            None,
        );
        assert_eq!(answer.status, status, "{query}: {}", answer.body);
        assert_eq!(answer.body["error"]["code"], code, "{query}");
    }

    // Compare: git's merge base, counts and three-dot changed files.
    for (base, head) in [
        ("feature", "main"),
        ("main", "feature"),
        ("old", "main"),
        ("side", "feature"),
        ("main", "main"),
    ] {
        let answer = get(
            &server,
            &format!("/api/v1/repos/alice/app/compare?base={base}&head={head}"),
            Some(&token),
            &[],
        );
        let comparison = json(&answer);
        let merge_base = git(&work, &["merge-base", base, head]).trim().to_owned();
        assert_eq!(comparison["merge_base"], merge_base, "{base}...{head}");
        let count = |range: String| {
            git(&work, &["rev-list", "--count", &range])
                .trim()
                .parse::<u64>()
                .unwrap()
        };
        assert_eq!(
            comparison["ahead_by"],
            count(format!("{base}..{head}")),
            "{base}...{head}"
        );
        assert_eq!(
            comparison["behind_by"],
            count(format!("{head}..{base}")),
            "{base}...{head}"
        );
        let ahead: Vec<&str> = comparison["commits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["sha1"].as_str().unwrap())
            .collect();
        let mut expected = lines(git(
            &work,
            &["rev-list", "--topo-order", &format!("{base}..{head}")],
        ));
        expected.reverse();
        assert_eq!(ahead.len(), expected.len());
        let mut sorted_ahead = ahead.clone();
        sorted_ahead.sort();
        let mut sorted_expected = expected.clone();
        sorted_expected.sort();
        assert_eq!(sorted_ahead, sorted_expected, "{base}...{head}");
        let files: Vec<String> = comparison["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let status = match f["status"].as_str().unwrap() {
                    "added" => "A",
                    "deleted" => "D",
                    "modified" => "M",
                    "type_changed" => "T",
                    other => panic!("{other}"),
                };
                format!("{status}\t{}", f["path"].as_str().unwrap())
            })
            .collect();
        let mut git_files = lines(git(
            &work,
            &[
                "-c",
                "core.quotepath=false",
                "diff",
                "--no-renames",
                "--name-status",
                &format!("{base}...{head}"),
            ],
        ));
        git_files.sort_by(|a, b| a.split('\t').nth(1).cmp(&b.split('\t').nth(1)));
        assert_eq!(files, git_files, "{base}...{head}");
        assert_eq!(comparison["files_truncated"], false);
    }
    let unrelated = call(
        &server,
        "GET",
        "/api/v1/repos/alice/app/compare?base=main",
        Some(&token),
        None,
    );
    assert_eq!(unrelated.status, 400, "{}", unrelated.body);

    // Who may read: not anonymous, not another identity's token; 404 hides the repository.
    forge.ok(&["identity", "add", "bob", "--kind", "human"]);
    let bob = forge.token(&["--identity", "bob", "--repo", "bob/*", "--ops", "read"]);
    for path in [
        "/api/v1/repos/alice/app/commits/main",
        "/api/v1/repos/alice/app/commits",
        "/api/v1/repos/alice/app/compare?base=old&head=main",
    ] {
        assert_error(
            &call(&server, "GET", path, None, None),
            401,
            "unauthorized",
            "a token is required",
        );
        assert_error(
            &call(&server, "GET", path, Some(&bob), None),
            404,
            "repo_not_found",
            "alice/app does not exist",
        );
    }
}

#[test]
fn trees_files_blobs_and_archives_agree_with_git() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    history(&work);
    let forge = Forge::new(&tmp.path().join("data"));
    forge.ok(&["repo", "create", "alice/app"]);
    forge.ok(&["import", "alice/app", work.to_str().unwrap()]);
    forge.ok(&["repo", "config", "alice/app", "public", "true"]);
    let server = Server::start(&forge);
    let head = git(&work, &["rev-parse", "main"]).trim().to_owned();

    // Directories list what git ls-tree lists (public: no token needed).
    for (path, rev) in [
        ("", "main"),
        ("src", "main"),
        (LONG_DIR, "main"),
        ("", "old"),
    ] {
        let query = format!(
            "/api/v1/repos/alice/app/tree?ref={rev}&path={}",
            path.replace('/', "%2F")
        );
        let listing = json(&get(&server, &query, None, &[]));
        let ours: Vec<String> = listing["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let kind = match e["type"].as_str().unwrap() {
                    "directory" => "tree",
                    "submodule" => "commit",
                    _ => "blob",
                };
                format!(
                    "{} {kind} {}\t{}",
                    e["mode"].as_str().unwrap(),
                    e["sha1"].as_str().unwrap(),
                    e["name"].as_str().unwrap()
                )
            })
            .collect();
        let spec = if path.is_empty() {
            rev.to_owned()
        } else {
            format!("{rev}:{path}")
        };
        let theirs: Vec<String> = lines(git(
            &work,
            &["-c", "core.quotepath=false", "ls-tree", &spec],
        ))
        .into_iter()
        .map(|l| l.replacen("040000 ", "40000 ", 1))
        .collect();
        assert_eq!(ours, theirs, "{path} at {rev}");
    }
    let root = json(&get(&server, "/api/v1/repos/alice/app/tree", None, &[]));
    let kinds: Vec<(&str, &str)> = root["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["type"].as_str().unwrap()))
        .collect();
    for expected in [
        ("README", "file"),
        ("link", "symlink"),
        ("src", "directory"),
        ("vendor", "directory"),
    ] {
        assert!(kinds.contains(&expected), "{kinds:?}");
    }
    let vendor = json(&get(
        &server,
        "/api/v1/repos/alice/app/tree?path=vendor",
        None,
        &[],
    ));
    assert_eq!(vendor["items"][0]["type"], "submodule");
    assert_eq!(
        vendor["items"][0]["sha1"],
        "1234567890123456789012345678901234567890"
    );
    let bin = json(&get(
        &server,
        "/api/v1/repos/alice/app/tree?path=bin",
        None,
        &[],
    ));
    assert_eq!(bin["items"][0]["type"], "executable");
    assert_eq!(bin["items"][0]["size"], 19);

    // A file as JSON (base64) and raw, and a blob by SHA-1, byte for byte.
    use base64::Engine;
    for path in [
        "README",
        "src/lib.rs",
        "bin/run.sh",
        "link",
        "ünïcode.txt",
        &format!("{LONG_DIR}/file.txt"),
    ] {
        let expected =
            common::git_bytes(&work, &["cat-file", "blob", &format!("main:{path}")], None);
        let encoded = path
            .replace('/', "%2F")
            .replace("ü", "%C3%BC")
            .replace("ï", "%C3%AF");
        let file = json(&get(
            &server,
            &format!("/api/v1/repos/alice/app/file?path={encoded}"),
            None,
            &[],
        ));
        assert_eq!(file["encoding"], "base64");
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(file["content"].as_str().unwrap())
                .unwrap(),
            expected,
            "{path}"
        );
        assert_eq!(file["size"], expected.len());
        assert_eq!(file["commit"], head);
        let raw = get(
            &server,
            &format!("/api/v1/repos/alice/app/raw?ref=main&path={encoded}"),
            None,
            &[],
        );
        assert_eq!(raw.status, 200);
        assert_eq!(raw.body, expected, "{path}");
        assert_eq!(
            header(&raw, "content-type"),
            Some("application/octet-stream")
        );
        assert_eq!(header(&raw, "x-content-type-options"), Some("nosniff"));
        assert_eq!(header(&raw, "cache-control"), Some("public, no-cache"));
        let sha1 = file["sha1"].as_str().unwrap();
        assert_eq!(
            sha1,
            git(&work, &["rev-parse", &format!("main:{path}")]).trim()
        );
        let blob = get(
            &server,
            &format!("/api/v1/repos/alice/app/blobs/{sha1}"),
            None,
            &[],
        );
        assert_eq!(blob.body, expected);
        assert_eq!(
            header(&blob, "cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        let etag = header(&blob, "etag").unwrap().to_owned();
        let cached = get(
            &server,
            &format!("/api/v1/repos/alice/app/blobs/{sha1}"),
            None,
            &[("If-None-Match", &etag)],
        );
        assert_eq!(cached.status, 304);
    }
    let link = json(&get(
        &server,
        "/api/v1/repos/alice/app/file?path=link",
        None,
        &[],
    ));
    assert_eq!(link["type"], "symlink");
    assert_eq!(link["mode"], "120000");
    let old_file = json(&get(
        &server,
        &format!(
            "/api/v1/repos/alice/app/file?ref={}&path=README",
            git(&work, &["rev-parse", "old"]).trim()
        ),
        None,
        &[],
    ));
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(old_file["content"].as_str().unwrap())
            .unwrap(),
        b"hello\n"
    );

    for (path, status, code, message) in [
        (
            "/api/v1/repos/alice/app/file?path=src",
            422,
            "not_a_file",
            "src is not a file at",
        ),
        (
            "/api/v1/repos/alice/app/file?path=vendor/sub",
            422,
            "not_a_file",
            "vendor/sub is not a file",
        ),
        (
            "/api/v1/repos/alice/app/tree?path=README",
            422,
            "not_a_directory",
            "README is not a directory",
        ),
        (
            "/api/v1/repos/alice/app/file?path=missing.txt",
            404,
            "path_not_found",
            "missing.txt does not exist at",
        ),
        (
            "/api/v1/repos/alice/app/file?path=README/x",
            404,
            "path_not_found",
            "README/x does not exist",
        ),
        (
            "/api/v1/repos/alice/app/raw?path=src/./lib.rs",
            400,
            "invalid_path",
            "`.` and `..`",
        ),
        (
            "/api/v1/repos/alice/app/tree?ref=nope",
            404,
            "revision_not_found",
            "no revision",
        ),
        (
            "/api/v1/repos/alice/app/blobs/zz",
            400,
            "invalid_request",
            "not a 40-digit SHA-1",
        ),
        (
            "/api/v1/repos/alice/app/archive?format=rar",
            400,
            "invalid_request",
            "format is tar.gz or zip",
        ),
        (
            "/api/v1/repos/alice/app/archive?prefix=../up",
            400,
            "invalid_request",
            "without `.`, `..`",
        ),
        (
            "/api/v1/repos/alice/app/archive?prefix=..%5C..%5Cstartup%5C",
            400,
            "invalid_request",
            "`\\`",
        ),
    ] {
        assert_error(
            &call(&server, "GET", path, None, None),
            status,
            code,
            message,
        );
    }
    let tree_sha = git(&work, &["rev-parse", "main^{tree}"]).trim().to_owned();
    assert_error(
        &call(
            &server,
            "GET",
            &format!("/api/v1/repos/alice/app/blobs/{tree_sha}"),
            None,
            None,
        ),
        404,
        "object_not_found",
        "has no blob",
    );

    // Archives: the files of `git archive`, with its modes, links and commit id.
    let short = &head[..7];
    let ours = tmp.path().join("ours");
    let theirs = tmp.path().join("theirs");
    std::fs::create_dir_all(&ours).unwrap();
    std::fs::create_dir_all(&theirs).unwrap();
    let tarball = get(
        &server,
        "/api/v1/repos/alice/app/archive?ref=main",
        None,
        &[("Accept-Encoding", "gzip")],
    );
    assert_eq!(tarball.status, 200, "{}", tarball.text());
    assert_eq!(header(&tarball, "content-type"), Some("application/gzip"));
    assert!(
        header(&tarball, "content-encoding").is_none(),
        "an archive is not compressed twice"
    );
    assert_eq!(
        header(&tarball, "content-disposition"),
        Some(format!("attachment; filename=\"app-{short}.tar.gz\"").as_str())
    );
    std::fs::write(tmp.path().join("ours.tar.gz"), &tarball.body).unwrap();
    git(
        tmp.path(),
        &[
            "-C",
            work.to_str().unwrap(),
            "archive",
            "--format=tar.gz",
            &format!("--prefix=app-{short}/"),
            "-o",
            tmp.path().join("theirs.tar.gz").to_str().unwrap(),
            "main",
        ],
    );
    let list = |file: &str| -> Vec<String> {
        let out = std::process::Command::new("tar")
            .args(["-tvzf", file])
            .current_dir(tmp.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Mode, owner, size, time and name of every entry.
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let listing = list("ours.tar.gz");
    assert_eq!(listing.len(), 16, "{listing:#?}");
    assert_eq!(listing, list("theirs.tar.gz"));
    for (file, dir) in [("ours.tar.gz", &ours), ("theirs.tar.gz", &theirs)] {
        let out = std::process::Command::new("tar")
            .args([
                "-xzf",
                tmp.path().join(file).to_str().unwrap(),
                "-C",
                dir.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let diff = std::process::Command::new("diff")
        .args(["-r", "--no-dereference"])
        .arg(&ours)
        .arg(&theirs)
        .output()
        .unwrap();
    assert!(
        diff.status.success(),
        "{}",
        String::from_utf8_lossy(&diff.stdout)
    );
    let gunzipped = std::process::Command::new("sh")
        .arg("-c")
        .arg("gzip -dc ours.tar.gz | git get-tar-commit-id")
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&gunzipped.stdout).trim(), head);

    let zip = get(
        &server,
        &format!("/api/v1/repos/alice/app/archive?ref={head}&format=zip&prefix="),
        None,
        &[],
    );
    assert_eq!(zip.status, 200, "{}", zip.text());
    assert_eq!(header(&zip, "content-type"), Some("application/zip"));
    assert_eq!(
        header(&zip, "cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    std::fs::write(tmp.path().join("ours.zip"), &zip.body).unwrap();
    git(
        tmp.path(),
        &[
            "-C",
            work.to_str().unwrap(),
            "archive",
            "--format=zip",
            "-o",
            tmp.path().join("theirs.zip").to_str().unwrap(),
            "main",
        ],
    );
    let python = std::env::var("FORGE_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let describe = |file: &str| -> String {
        let script = "import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\nprint(z.comment.decode())\nfor i in z.infolist():\n    print(i.filename, oct(i.external_attr >> 16), z.read(i).hex())\n";
        let out = std::process::Command::new(&python)
            .args(["-c", script, file])
            .current_dir(tmp.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let (ours_zip, theirs_zip) = (describe("ours.zip"), describe("theirs.zip"));
    assert!(ours_zip.starts_with(&format!("{head}\n")), "{ours_zip}");
    assert_eq!(ours_zip, theirs_zip);
    let unzip = std::process::Command::new("unzip")
        .args(["-tq", "ours.zip"])
        .current_dir(tmp.path())
        .output();
    if let Ok(unzip) = unzip {
        assert!(
            unzip.status.success(),
            "{}",
            String::from_utf8_lossy(&unzip.stdout)
        );
    }
}
