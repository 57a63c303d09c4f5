//! Clone and fetch with stock git against a real `forge serve`.

use crate::common;

use std::path::Path;

use common::corpus::{malformed_corpus, synthetic_history};
use common::{
    Forge, Server, assert_fsck_clean, branches_and_tags, commit_file, git, git_output, pkt,
    reachable_objects,
};

/// A source repository with history, merges, annotated and lightweight tags and a tag of a
/// tag, imported into a fresh forge as `alice/app`.
fn served_source(tmp: &Path, commits: usize) -> (Forge, std::path::PathBuf) {
    let source = tmp.join("source.git");
    synthetic_history(&source, commits);
    git(
        &source,
        &["tag", "-a", "-m", "a tag of a tag", "v0-signed", "v0"],
    );
    let forge = Forge::new(&tmp.join("data"));
    forge.ok(&["import", "alice/app", &source.display().to_string()]);
    (forge, source)
}

fn clone_bare(tmp: &Path, url: &str, dir: &str, extra: &[&str]) -> std::path::PathBuf {
    let target = tmp.join(dir);
    let mut args = vec!["clone", "-q", "--bare"];
    args.extend_from_slice(extra);
    args.push(url);
    let target_arg = target.display().to_string();
    args.push(&target_arg);
    git(tmp, &args);
    target
}

fn assert_same_history(source: &Path, clone: &Path) {
    assert_eq!(branches_and_tags(clone), branches_and_tags(source));
    assert_eq!(reachable_objects(clone), reachable_objects(source));
    assert_fsck_clean(clone);
}

#[test]
fn clone_with_every_protocol_version_with_and_without_the_clone_pack() {
    let tmp = tempfile::tempdir().unwrap();
    let (forge, source) = served_source(tmp.path(), 600);
    // Clones walk the store until the clone pack is built here, not in the background.
    let server = Server::start_with(&forge, &["--no-auto-repack"]);
    let url = server.repo_url("alice/app");
    for round in ["store", "clone-pack"] {
        if round == "clone-pack" {
            let report = forge.json(&["repack", "alice/app"]);
            assert_eq!(report["repack"]["rebuilt"], true, "{report}");
            assert_eq!(
                report["repack"]["objects"].as_u64().unwrap() as usize,
                reachable_objects(&source).len()
            );
        }
        for version in ["2", "1", "0"] {
            let dir = format!("clone-{round}-v{version}");
            let clone = clone_bare(
                tmp.path(),
                &url,
                &dir,
                &["-c", &format!("protocol.version={version}")],
            );
            assert_same_history(&source, &clone);
            assert_eq!(
                git(&clone, &["symbolic-ref", "HEAD"]).trim(),
                "refs/heads/main"
            );
        }
    }
    // Without `.git` in the URL, too; a second repack with unchanged refs does nothing.
    let clone = clone_bare(
        tmp.path(),
        &format!("{}/alice/app", server.auth_url()),
        "plain",
        &[],
    );
    assert_same_history(&source, &clone);
    let again = forge.json(&["repack", "alice/app"]);
    assert_eq!(again["repack"]["rebuilt"], false, "{again}");
}

#[test]
fn incremental_fetch_negotiates_over_several_rounds() {
    let tmp = tempfile::tempdir().unwrap();
    let (forge, source) = served_source(tmp.path(), 300);
    forge.ok(&["repack", "alice/app"]);
    let server = Server::start(&forge);
    let url = server.repo_url("alice/app");
    let work = tmp.path().join("work");
    git(
        tmp.path(),
        &["clone", "-q", &url, &work.display().to_string()],
    );
    // Local commits the server has never seen make git send many unknown haves, so it
    // needs several rounds before the common base is found.
    git(&work, &["checkout", "-q", "-b", "local"]);
    for i in 0..300 {
        git(
            &work,
            &["commit", "-q", "--allow-empty", "-m", &format!("local {i}")],
        );
    }
    // New history on the server side: commits on main in a clone of the source, imported.
    let upstream = tmp.path().join("upstream");
    common::clone_work(&source, &upstream);
    for i in 0..20 {
        commit_file(
            &upstream,
            &format!("new{i}.txt"),
            format!("new {i}\n"),
            "more",
        );
    }
    git(&upstream, &["tag", "-a", "-m", "new release", "v-new"]);
    git(&upstream, &["push", "-q", "origin", "main", "v-new"]);
    forge.ok(&["import", "alice/app", &source.display().to_string()]);

    let trace = traced(&work, &["fetch", "origin"]);
    let rounds = trace.matches("fetch> command=fetch").count();
    assert!(
        rounds >= 2,
        "expected several rounds, saw {rounds}:\n{trace}"
    );
    assert!(trace.contains("fetch< ready"), "{trace}");
    let main = git(&source, &["rev-parse", "refs/heads/main"]);
    assert_eq!(git(&work, &["rev-parse", "refs/remotes/origin/main"]), main);
    // The annotated tag on the new commits followed the branch.
    assert_eq!(
        git(&work, &["rev-parse", "refs/tags/v-new"]),
        git(&source, &["rev-parse", "refs/tags/v-new"])
    );
    assert_fsck_clean(&work);
}

/// Runs git with packet tracing; returns the trace (stderr).
fn traced(dir: &Path, args: &[&str]) -> String {
    let out = common::git_with_env(dir, args, &[("GIT_TRACE_PACKET", "1".as_ref())]);
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn shallow_clones_deepen_and_unshallow() {
    let tmp = tempfile::tempdir().unwrap();
    let (forge, source) = served_source(tmp.path(), 400);
    let server = Server::start(&forge);
    let url = server.repo_url("alice/app");
    // Protocol v2 sends shallow lines once in a `shallow-info` section; v0 re-sends them
    // with every stateless round. `clone -c` keeps the version for later fetches.
    for version in ["2", "0"] {
        shallow_round(tmp.path(), &source, &url, version);
    }
}

/// `-c CONFIG` followed by `args`.
fn with_config<'a>(config: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["-c", config];
    all.extend_from_slice(args);
    all
}

fn shallow_round(tmp: &Path, source: &Path, url: &str, version: &str) {
    let config = format!("protocol.version={version}");
    let clone_with = |dir: &str, extra: &[&str]| {
        clone_bare(
            tmp,
            url,
            &format!("{dir}-v{version}"),
            &with_config(&config, extra),
        )
    };
    let head = git(source, &["rev-parse", "main"]);
    let shallow = clone_with("depth1", &["--depth", "1"]);
    assert_eq!(git(&shallow, &["rev-parse", "main"]), head);
    assert_eq!(git(&shallow, &["rev-list", "--count", "main"]).trim(), "1");
    assert_eq!(
        std::fs::read_to_string(shallow.join("shallow")).unwrap(),
        head
    );
    assert_fsck_clean(&shallow);
    // Its tree is complete: every object of the tip is there.
    let tip_objects = git(source, &["rev-list", "--objects", "--no-walk", "main"]);
    let present = git(&shallow, &["rev-list", "--objects", "--no-walk", "main"]);
    assert_eq!(present, tip_objects);

    git(&shallow, &["fetch", "-q", "--deepen", "5", "origin"]);
    assert_eq!(git(&shallow, &["rev-list", "--count", "main"]).trim(), "6");
    assert_fsck_clean(&shallow);

    git(&shallow, &["fetch", "-q", "--unshallow", "origin"]);
    assert!(!shallow.join("shallow").exists());
    assert_eq!(
        git(&shallow, &["rev-list", "--count", "main"]),
        git(source, &["rev-list", "--count", "main"])
    );
    assert_fsck_clean(&shallow);

    // --shallow-since: the synthetic commits are one minute apart from 1600000000.
    let since = clone_with(
        "since",
        &["--shallow-since", "@1600018000", "--single-branch"],
    );
    let expected = git(
        source,
        &["rev-list", "--count", "--since=1600018000", "main"],
    );
    assert_eq!(git(&since, &["rev-list", "--count", "main"]), expected);
    assert_fsck_clean(&since);

    // --shallow-exclude: history stops at the excluded tag.
    let exclude = clone_with("exclude", &["--shallow-exclude", "v200", "--single-branch"]);
    let expected = git(source, &["rev-list", "--count", "main", "^v200"]);
    assert_eq!(git(&exclude, &["rev-list", "--count", "main"]), expected);
    assert_fsck_clean(&exclude);
    // Deepening a history cut by ref goes on from its shallow boundary as with git's own
    // upload-pack.
    git(&exclude, &["fetch", "-q", "--deepen", "3", "origin"]);
    let theirs = clone_bare(
        tmp,
        &format!("file://{}", source.display()),
        &format!("exclude-git-v{version}"),
        &with_config(&config, &["--shallow-exclude", "v200", "--single-branch"]),
    );
    git(&theirs, &["fetch", "-q", "--deepen", "3", "origin"]);
    assert_eq!(
        git(&exclude, &["rev-list", "main"]),
        git(&theirs, &["rev-list", "main"])
    );
    assert_fsck_clean(&exclude);

    // An unknown ref to exclude is refused with git's message.
    let out = git_output(
        tmp,
        &with_config(
            &config,
            &[
                "clone",
                "-q",
                "--bare",
                "--shallow-exclude",
                "nope",
                url,
                "bad",
            ],
        ),
        None,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ambiguous deepen-not: nope"), "{stderr}");
}

#[test]
fn partial_clones_fetch_missing_blobs_lazily() {
    let tmp = tempfile::tempdir().unwrap();
    let (forge, source) = served_source(tmp.path(), 200);
    // A large file, so blob:limit has something to leave out.
    let upstream = tmp.path().join("upstream");
    common::clone_work(&source, &upstream);
    commit_file(&upstream, "big.bin", vec![b'x'; 5000], "big file");
    git(&upstream, &["push", "-q", "origin", "main"]);
    forge.ok(&["import", "alice/app", &source.display().to_string()]);
    let server = Server::start(&forge);
    let url = server.repo_url("alice/app");

    let work = tmp.path().join("blobless");
    git(
        tmp.path(),
        &[
            "clone",
            "-q",
            "--filter=blob:none",
            "--no-checkout",
            &url,
            &work.display().to_string(),
        ],
    );
    let missing = git(&work, &["rev-list", "--objects", "--missing=print", "main"]);
    let missing_count = missing.lines().filter(|l| l.starts_with('?')).count();
    assert!(missing_count > 100, "blobs were left out: {missing_count}");
    // Checking out fetches the blobs of the tip on demand.
    git(&work, &["checkout", "-q", "main"]);
    assert_eq!(
        std::fs::read(work.join("big.bin")).unwrap(),
        vec![b'x'; 5000]
    );
    assert_eq!(
        git(&work, &["rev-parse", "HEAD^{tree}"]),
        git(&source, &["rev-parse", "main^{tree}"])
    );
    assert!(git(&work, &["status", "--porcelain"]).is_empty());
    let out = git_output(&work, &["fsck", "--no-progress"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let limited = clone_bare(tmp.path(), &url, "limited", &["--filter=blob:limit=1k"]);
    let big = git(&source, &["rev-parse", "main:big.bin"]);
    let small = git(&source, &["rev-parse", "main:bin/run0.sh"]);
    // `--missing=print` lists missing objects as `?ID` without fetching them (a plain
    // `cat-file -e` would fetch lazily and always succeed).
    let missing = git(
        &limited,
        &["rev-list", "--objects", "--missing=print", "main"],
    );
    assert!(missing.contains(&format!("?{}", big.trim())), "{missing}");
    assert!(!missing.contains(&format!("?{}", small.trim())));
    // …and the small blob was received: it is listed as present.
    assert!(
        missing.lines().any(|l| l.starts_with(small.trim())),
        "{missing}"
    );
}

#[test]
fn ls_remote_lists_refs_peeled_and_the_empty_repository_clones() {
    let tmp = tempfile::tempdir().unwrap();
    let (forge, source) = served_source(tmp.path(), 100);
    // Many refs: 5,000 extra branches.
    let mut refs = String::new();
    let head = git(&source, &["rev-parse", "main"]);
    for i in 0..5000 {
        refs.push_str(&format!("create refs/heads/many/{i:05} {}", head));
    }
    common::git_bytes(&source, &["update-ref", "--stdin"], Some(refs.as_bytes()));
    forge.ok(&["import", "alice/app", &source.display().to_string()]);
    forge.ok(&["repo", "create", "alice/empty"]);
    let server = Server::start(&forge);

    let listed = git(tmp.path(), &["ls-remote", &server.repo_url("alice/app")]);
    let expected = git(&source, &["show-ref", "--head", "-d"]);
    let normalize = |text: &str| {
        let mut lines: Vec<String> = text.lines().map(|l| l.replace('\t', " ")).collect();
        lines.sort();
        lines
    };
    assert_eq!(normalize(&listed), normalize(&expected));
    assert!(listed.lines().count() > 5000);
    // Protocol v0 lists the same.
    let v0 = git(
        tmp.path(),
        &[
            "-c",
            "protocol.version=0",
            "ls-remote",
            &server.repo_url("alice/app"),
        ],
    );
    assert_eq!(normalize(&v0), normalize(&listed));

    let out = git_output(
        tmp.path(),
        &["clone", &server.repo_url("alice/empty"), "empty"],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("You appear to have cloned an empty repository"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let empty = tmp.path().join("empty");
    assert_eq!(
        git(&empty, &["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/main"
    );

    // Unknown repositories are 404s that git reports.
    let out = git_output(
        tmp.path(),
        &["ls-remote", &server.repo_url("alice/nope")],
        None,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not found"), "{stderr}");
}

/// Every object of a repository, byte for byte (`cat-file --batch` of all objects).
fn all_objects(dir: &Path) -> Vec<u8> {
    common::git_bytes(
        dir,
        &["cat-file", "--batch-all-objects", "--batch", "--unordered"],
        None,
    )
}

#[test]
fn malformed_objects_fetch_byte_exact_wherever_git_itself_can_serve_them() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("corpus.git");
    malformed_corpus(&source);
    let forge = Forge::new(&tmp.path().join("data"));
    forge.ok(&["import", "odd/corpus", &source.display().to_string()]);
    let server = Server::start(&forge);
    let refs = git(&source, &["for-each-ref", "--format=%(refname)"]);
    let (mut served_by_both, mut refused_by_git) = (0, 0);
    for (i, name) in refs.lines().enumerate() {
        // git's own upload-pack first: what it can serve, the forge must serve identically.
        let fetch = |url: &str, dir: &str| {
            let target = tmp.path().join(format!("{dir}-{i}"));
            git(
                tmp.path(),
                &["init", "-q", "--bare", &target.display().to_string()],
            );
            let out = git_output(
                &target,
                &["fetch", "-q", "--no-tags", url, &format!("+{name}:{name}")],
                None,
            );
            (target, out.status.success())
        };
        let (by_git, git_ok) = fetch(&format!("file://{}", source.display()), "git");
        let (by_forge, forge_ok) = fetch(&server.repo_url("odd/corpus"), "forge");
        if git_ok {
            served_by_both += 1;
            assert!(
                forge_ok,
                "the forge failed to serve {name}, which git serves"
            );
            let mut a = all_objects(&by_git);
            let mut b = all_objects(&by_forge);
            a.sort_unstable();
            b.sort_unstable();
            assert!(a == b, "objects of {name} differ");
            assert_eq!(
                git(&by_forge, &["rev-parse", name]),
                git(&source, &["rev-parse", name])
            );
        } else {
            refused_by_git += 1;
        }
    }
    assert!(served_by_both > 50, "{served_by_both} refs served by both");
    eprintln!("{served_by_both} refs served byte-exact; git itself refuses {refused_by_git}");
    // The whole main history (an octopus over the odd commits) clones and equals git's clone.
    let ours = clone_bare(
        tmp.path(),
        &server.repo_url("odd/corpus"),
        "ours",
        &["--single-branch"],
    );
    let theirs = clone_bare(
        tmp.path(),
        &format!("file://{}", source.display()),
        "theirs",
        &["--single-branch"],
    );
    assert_eq!(branches_and_tags(&ours), branches_and_tags(&theirs));
    assert_eq!(reachable_objects(&ours), reachable_objects(&theirs));
    assert_eq!(common::fsck_messages(&ours), common::fsck_messages(&theirs));
}

#[test]
fn bad_requests_get_errors_git_prints() {
    let tmp = tempfile::tempdir().unwrap();
    let (forge, source) = served_source(tmp.path(), 50);
    // An object in the store that no ref reaches.
    let orphan = common::literally(&source, "blob", b"not reachable from any ref\n");
    forge.ok(&["import", "alice/app", &source.display().to_string()]);
    let server = Server::start(&forge);
    let url = server.repo_url("alice/app");

    let work = tmp.path().join("work");
    git(tmp.path(), &["init", "-q", &work.display().to_string()]);
    let out = git_output(&work, &["fetch", &url, &orphan], None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("upload-pack: not our ref {orphan}")),
        "{stderr}"
    );
    let missing = "0123456789012345678901234567890123456789";
    let out = git_output(&work, &["fetch", &url, missing], None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("not our ref {missing}")),
        "{stderr}"
    );

    // Raw requests: a broken pkt-line and an unknown command are answered with ERR lines.
    let fetch_with = |arg: &str| {
        let mut body = pkt("command=fetch\n");
        body.extend_from_slice(b"0001");
        body.extend(pkt(arg));
        body.extend_from_slice(b"0000");
        body
    };
    for (body, expected) in [
        (b"00zzcommand=fetch".to_vec(), "invalid pkt-line length"),
        (
            [pkt("command=frobnicate\n"), b"0000".to_vec()].concat(),
            "invalid command",
        ),
        (fetch_with("deepen -1\n"), "invalid deepen: -1"),
        (fetch_with("filter tree:x\n"), "unsupported filter 'tree:x'"),
        (
            fetch_with("want 12345\n"),
            "expected an object id, got '12345'",
        ),
    ] {
        let response = post(
            &server.url,
            "alice/app",
            &body,
            &[
                ("Git-Protocol", "version=2"),
                ("Authorization", &server.bearer()),
            ],
        );
        assert!(response.contains("ERR "), "{response}");
        assert!(response.contains(expected), "{response}");
    }
    // A gzip-compressed request is understood.
    let request = [
        pkt("command=ls-refs\n"),
        b"0001".to_vec(),
        pkt("ref-prefix refs/heads/main\n"),
        b"0000".to_vec(),
    ]
    .concat();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &request).unwrap();
    let response = post(
        &server.url,
        "alice/app",
        &gz.finish().unwrap(),
        &[
            ("Git-Protocol", "version=2"),
            ("Content-Encoding", "gzip"),
            ("Authorization", &server.bearer()),
        ],
    );
    let main = git(&source, &["rev-parse", "main"]);
    assert!(
        response.contains(&format!("{} refs/heads/main", main.trim())),
        "{response}"
    );
}

/// POSTs to `git-upload-pack` over a plain socket; returns the whole response as text.
fn post(base: &str, repo: &str, body: &[u8], headers: &[(&str, &str)]) -> String {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let mut request = format!(
        "POST /{repo}.git/git-upload-pack HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/x-git-upload-pack-request\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

#[test]
fn repositories_imported_while_serving_are_served_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    forge.ok(&["repo", "create", "bob/later"]);
    let server = Server::start(&forge);
    let url = server.repo_url("bob/later");
    // The server opens the (empty) repository first.
    assert!(git(tmp.path(), &["ls-remote", &url]).is_empty());
    let source = tmp.path().join("source.git");
    synthetic_history(&source, 30);
    forge.ok(&["import", "bob/later", &source.display().to_string()]);
    forge.ok(&["repack", "bob/later"]);
    let clone = clone_bare(tmp.path(), &url, "clone", &[]);
    assert_same_history(&source, &clone);
    // A repository created while serving.
    forge.ok(&["import", "bob/new", &source.display().to_string()]);
    let clone = clone_bare(tmp.path(), &server.repo_url("bob/new"), "new", &[]);
    assert_same_history(&source, &clone);
    forge.ok(&["fsck"]);
}

#[test]
fn keepalive_packets_while_a_pack_is_prepared() {
    let tmp = tempfile::tempdir().unwrap();
    let (forge, source) = served_source(tmp.path(), 200);
    // Two servers on one data directory: git's default interval (5 s), which this small
    // clone never reaches, and one so short that every pause in the enumeration sends one.
    // Without the clone pack, which would be sent with no preparation at all.
    let quiet = Server::start_with(&forge, &["--no-auto-repack"]);
    let eager = Server::start_with(&forge, &["--no-auto-repack", "--keepalive", "0.000001"]);
    for (server, expect_keepalives) in [(&quiet, false), (&eager, true)] {
        for version in ["2", "0"] {
            let dir = tmp
                .path()
                .join(format!("clone-{expect_keepalives}-v{version}"));
            let trace = traced(
                tmp.path(),
                &[
                    "-c",
                    &format!("protocol.version={version}"),
                    "clone",
                    "-q",
                    "--bare",
                    &server.repo_url("alice/app"),
                    &dir.display().to_string(),
                ],
            );
            // A keep-alive is an empty band-1 packet: `0005\x01`.
            let keepalives = trace
                .lines()
                .filter(|l| l.ends_with("sideband< \\1"))
                .count();
            assert_eq!(keepalives > 0, expect_keepalives, "{keepalives}\n{trace}");
            assert_same_history(&source, &dir);
        }
    }
}

#[test]
fn a_lazy_fetch_of_many_blobs_sends_a_chunked_body() {
    let tmp = tempfile::tempdir().unwrap();
    // 25,000 distinct blobs: the lazy fetch of all of them asks with 25,000 `want` lines,
    // over 1 MiB, more than git's http.postBuffer, so git streams the body chunked.
    let source = tmp.path().join("many.git");
    std::fs::create_dir_all(&source).unwrap();
    git(&source, &["init", "-q", "--bare", "-b", "main"]);
    let mut script = String::from(
        "commit refs/heads/main\ncommitter C <c@example.com> 1600000000 +0000\ndata 5\nmany\n",
    );
    for i in 0..25_000 {
        let body = format!("blob number {i}\n");
        script.push_str(&format!(
            "M 100644 inline d{}/f{i}.txt\ndata {}\n{body}\n",
            i % 50,
            body.len()
        ));
    }
    common::git_bytes(
        &source,
        &["fast-import", "--quiet"],
        Some(script.as_bytes()),
    );
    let forge = Forge::new(&tmp.path().join("data"));
    forge.ok(&["import", "alice/many", &source.display().to_string()]);
    let server = Server::start(&forge);

    let work = tmp.path().join("work");
    git(
        tmp.path(),
        &[
            "clone",
            "-q",
            "--filter=blob:none",
            "--no-checkout",
            &server.repo_url("alice/many"),
            &work.display().to_string(),
        ],
    );
    let (trace, _) = common::curl_trace(&work, &["checkout", "-q", "main"]);
    assert!(
        trace.contains("Transfer-Encoding: chunked"),
        "the lazy fetch was not chunked"
    );
    assert_eq!(
        git(&work, &["rev-parse", "HEAD^{tree}"]),
        git(&source, &["rev-parse", "main^{tree}"])
    );
    assert!(git(&work, &["status", "--porcelain"]).is_empty());
    let missing = git(&work, &["rev-list", "--objects", "--missing=print", "HEAD"]);
    assert!(
        !missing.lines().any(|l| l.starts_with('?')),
        "blobs still missing"
    );
}

#[test]
fn an_error_in_the_middle_of_a_pack_reaches_git_and_breaks_the_pack() {
    let tmp = tempfile::tempdir().unwrap();
    let (forge, source) = served_source(tmp.path(), 50);
    // A blob that does not compress keeps its bytes visible in its segment (as is, or in
    // deflate's stored blocks): find it there and break its entry header. Nothing reads
    // blob headers before the pack is under way.
    let noise = common::noise(0x2545_f491_4f6c_dd1d, 200_000, |s| s as u8);
    let upstream = tmp.path().join("upstream");
    common::clone_work(&source, &upstream);
    commit_file(&upstream, "zz-noise.bin", &noise, "noise");
    git(&upstream, &["push", "-q", "origin", "main"]);
    forge.ok(&["import", "alice/app", &source.display().to_string()]);
    let (segment, data_start) =
        find_in_files(&tmp.path().join("data"), &noise[..64]).expect("the blob's bytes");
    let mut bytes = std::fs::read(&segment).unwrap();
    // The entry starts with a tag byte (kind, storage in bits 4-6) and the size as a
    // varint: 200,000 is c0 9a 0c.
    let before = &bytes[data_start - 20..data_start];
    let size_at = before
        .windows(3)
        .rposition(|w| w == [0xc0, 0x9a, 0x0c])
        .expect("the entry header");
    let tag = data_start - 20 + size_at - 1;
    assert_eq!((bytes[tag] >> 4) & 7, 0, "a whole object: {before:x?}");
    bytes[tag] |= 0x70;
    std::fs::write(&segment, &bytes).unwrap();

    let server = Server::start(&forge);
    for version in ["2", "0"] {
        let target = tmp.path().join(format!("broken-v{version}"));
        let out = git_output(
            tmp.path(),
            &[
                "-c",
                &format!("protocol.version={version}"),
                "clone",
                "--bare",
                &server.repo_url("alice/app"),
                &target.display().to_string(),
            ],
            None,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains("remote: upload-pack: store is corrupt: segment")
                && stderr.contains("bad entry at offset"),
            "{stderr}"
        );
        assert!(!target.exists(), "git keeps no half clone");
    }
}

/// The file under `dir` containing `needle`, and the offset where it starts.
fn find_in_files(dir: &Path, needle: &[u8]) -> Option<(std::path::PathBuf, usize)> {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if let Some(found) = find_in_files(&path, needle) {
                return Some(found);
            }
        } else if let Ok(bytes) = std::fs::read(&path)
            && let Some(at) = bytes.windows(needle.len()).position(|w| w == needle)
        {
            return Some((path, at));
        }
    }
    None
}

#[test]
fn full_clones_rebuild_a_stale_clone_pack_in_the_background() {
    let tmp = tempfile::tempdir().unwrap();
    let (forge, source) = served_source(tmp.path(), 120);
    let server = Server::start(&forge);
    let url = server.repo_url("alice/app");
    let data = tmp.path().join("data");
    let mut clones = 0;
    let mut clone = |progress: bool| {
        clones += 1;
        let dir = tmp.path().join(format!("clone{clones}"));
        let mut args = vec!["clone", "--bare"];
        if progress {
            args.push("--progress");
        }
        args.extend([url.as_str(), dir.to_str().unwrap()]);
        let out = git_output(tmp.path(), &args, None);
        assert!(out.status.success());
        assert_same_history(&source, &dir);
        // A walked pack ends with "remote: Total N (delta D), reused R, pack-reused P";
        // the clone pack sent as it is with "remote: Total N, pack-reused N".
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let total = stderr
            .split(['\n', '\r'])
            .find(|l| l.contains("remote: Total"))
            .map(str::to_owned)
            .unwrap_or_default();
        let verbatim = total.contains(", pack-reused") && !total.contains("(delta");
        (total, verbatim)
    };
    for round in 0..2 {
        if round == 1 {
            // The refs move: the clone pack no longer covers them.
            let upstream = tmp.path().join("upstream");
            common::clone_work(&source, &upstream);
            commit_file(&upstream, "later.txt", "later\n", "later");
            git(&upstream, &["push", "-q", "origin", "main"]);
            forge.ok(&["import", "alice/app", &source.display().to_string()]);
        }
        let main = git(&source, &["rev-parse", "main"]);
        // The first clone is walked and asks for a rebuild; clone again until the
        // manifest names the current tip (a rebuild too soon after the last is skipped).
        let (total, verbatim) = clone(true);
        assert!(!verbatim, "{total}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !manifest_of(&data).contains(main.trim()) {
            assert!(std::time::Instant::now() < deadline, "no background repack");
            std::thread::sleep(std::time::Duration::from_millis(200));
            clone(false);
        }
        let (total, verbatim) = clone(true);
        assert!(verbatim, "{total}");
    }
    forge.ok(&["fsck"]);
}

/// The clone pack's manifest (`clone.json`) under a data directory, or "".
fn manifest_of(dir: &Path) -> String {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            let found = manifest_of(&path);
            if !found.is_empty() {
                return found;
            }
        } else if path.file_name().is_some_and(|n| n == "clone.json") {
            return std::fs::read_to_string(&path).unwrap_or_default();
        }
    }
    String::new()
}
