//! What a hostile client could do to the server before, each reproduced against a real
//! `forge serve` and shown fixed: refs that break every clone, names too long to
//! advertise, bodies that hold memory, connections and slots held by clients that send
//! nothing, a repository cache that listing fills, tokens outliving their identity, names
//! that break scripts, and a server that logged nothing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common;
use common::{
    Forge, Server, commit_file, git, open_fds, parse_answer, pkt, post_json, proc_status_kb,
    raw_http, split_url, try_git, wait_for,
};

/// A work tree with one commit, and a forge serving an empty `alice/app`.
fn pushed_forge(tmp: &Path, options: &[&str]) -> (Forge, Server, PathBuf, String) {
    let forge = Forge::new(&tmp.join("data"));
    forge.ok(&["repo", "create", "alice/app"]);
    let server = Server::start_with(&forge, options);
    let work = tmp.join("work");
    git(
        tmp,
        &["init", "-q", "-b", "main", &work.display().to_string()],
    );
    commit_file(&work, "a.txt", "a\n", "first");
    let url = server.repo_url("alice/app");
    git(&work, &["push", "-q", &url, "main"]);
    (forge, server, work, url)
}

fn clone_ok(tmp: &Path, url: &str, dir: &str) -> bool {
    let (ok, stderr) = try_git(tmp, &["clone", "-q", "--mirror", url, dir]);
    assert!(ok, "clone failed: {stderr}");
    ok
}

#[test]
fn refs_that_would_break_clones_are_refused_with_gits_words() {
    let tmp = tempfile::tempdir().unwrap();
    let (forge, _server, work, url) = pushed_forge(tmp.path(), &[]);
    git(&work, &["push", "-q", &url, "HEAD:refs/heads/df"]);

    // A ref below an existing one, and one above existing ones.
    let (ok, stderr) = try_git(&work, &["push", &url, "HEAD:refs/heads/df/x"]);
    assert!(!ok);
    assert!(
        stderr.contains("! [remote rejected] HEAD -> df/x ('refs/heads/df' exists; cannot create 'refs/heads/df/x')"),
        "{stderr}"
    );
    git(&work, &["push", "-q", &url, "HEAD:refs/heads/up/y"]);
    let (ok, stderr) = try_git(&work, &["push", &url, "HEAD:refs/heads/up"]);
    assert!(!ok);
    assert!(
        stderr.contains("('refs/heads/up/y' exists; cannot create 'refs/heads/up')"),
        "{stderr}"
    );
    // Two new refs of one push that conflict with each other.
    let (ok, stderr) = try_git(
        &work,
        &[
            "push",
            &url,
            "HEAD:refs/heads/pair",
            "HEAD:refs/heads/pair/z",
        ],
    );
    assert!(!ok);
    assert!(
        stderr
            .contains("cannot process 'refs/heads/pair' and 'refs/heads/pair/z' at the same time"),
        "{stderr}"
    );
    // A name of one level below refs/, as git's receive-pack refuses it.
    let (ok, stderr) = try_git(&work, &["push", &url, "HEAD:refs/heads"]);
    assert!(!ok);
    assert!(stderr.contains("funny refname"), "{stderr}");
    // Deleting the file makes room for the directory, in one push.
    git(
        &work,
        &["push", "-q", &url, ":refs/heads/df", "HEAD:refs/heads/df/x"],
    );

    let refs = forge.ok(&["ref", "list", "alice/app"]);
    let names: Vec<&str> = refs
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "HEAD",
            "refs/heads/df/x",
            "refs/heads/main",
            "refs/heads/pair",
            "refs/heads/up/y"
        ],
        "{refs}"
    );
    // Every clone still works: git can hold every ref the server has.
    clone_ok(tmp.path(), &url, "mirror.git");
    let (ok, stderr) = try_git(tmp.path(), &["clone", "-q", &url, "checkout"]);
    assert!(ok, "{stderr}");
}

#[test]
fn a_ref_named_twice_in_one_push_is_refused_in_gits_words() {
    let tmp = tempfile::tempdir().unwrap();
    let (_forge, _server, work, url) = pushed_forge(tmp.path(), &[]);
    let head = git(&work, &["rev-parse", "HEAD"]).trim().to_owned();
    let zero = "0".repeat(40);
    let mut body = pkt(&format!(
        "{zero} {head} refs/heads/dup\0report-status agent=test\n"
    ));
    body.extend(pkt(&format!("{zero} {head} refs/heads/dup\n")));
    body.extend_from_slice(b"0000");
    // An empty pack: the commit is on the server already.
    body.extend(common::git_bytes(
        &work,
        &["pack-objects", "--stdout", "-q"],
        Some(b""),
    ));
    let answer = common::post_receive_pack(&url, &body);
    let text = answer.text();
    assert_eq!(answer.status, 200, "{text}");
    assert!(
        text.contains("ng refs/heads/dup multiple updates for ref 'refs/heads/dup' not allowed"),
        "{text}"
    );
    assert!(!text.contains("meanwhile"), "{text}");
}

#[test]
fn ref_names_are_bounded_and_every_push_still_works_afterwards() {
    let tmp = tempfile::tempdir().unwrap();
    let (forge, server, work, url) = pushed_forge(tmp.path(), &[]);
    // 63,640 bytes in components of 100 (as long as git sends): the server refuses it.
    let long = format!("refs/heads/{}", vec!["a".repeat(100); 630].join("/"));
    let (ok, stderr) = try_git(&work, &["push", &url, &format!("HEAD:{long}")]);
    assert!(!ok);
    assert!(
        stderr.contains("invalid ref name: ref names must be at most 1024 bytes long"),
        "{stderr}"
    );
    let component = format!("refs/heads/{}", "b".repeat(256));
    let (ok, stderr) = try_git(&work, &["push", &url, &format!("HEAD:{component}")]);
    assert!(!ok);
    assert!(
        stderr.contains("ref name components must be at most 255 bytes long"),
        "{stderr}"
    );
    // The advertisement of both services still answers, and pushes and deletes work.
    let (host, path, token) = split_url(&url);
    for service in ["git-receive-pack", "git-upload-pack"] {
        let answer = raw_http(
            &host,
            format!(
                "GET {path}/info/refs?service={service} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        );
        assert_eq!(answer.status, 200, "{service}: {}", answer.text());
    }
    let longest = format!("refs/heads/{}", "c".repeat(255));
    git(&work, &["push", "-q", &url, &format!("HEAD:{longest}")]);
    git(&work, &["push", "-q", &url, &format!(":{longest}")]);
    clone_ok(tmp.path(), &url, "mirror.git");
    drop(server);

    // The operator's way out: refs listed, shown, moved and deleted by hand.
    let head = git(&work, &["rev-parse", "HEAD"]).trim().to_owned();
    forge.ok(&["ref", "set", "alice/app", "refs/heads/fix", &head[..12]]);
    let shown = forge.json(&["ref", "show", "alice/app", "refs/heads/fix"]);
    assert_eq!(shown["ref"]["sha1"], head.as_str(), "{shown}");
    assert_eq!(
        forge.ok(&["ref", "show", "alice/app", "HEAD"]).trim(),
        "ref: refs/heads/main HEAD"
    );
    let refused = forge.fails(&["ref", "set", "alice/app", "refs/heads/fix/deeper", &head]);
    assert!(
        refused.contains("'refs/heads/fix' exists; cannot create 'refs/heads/fix/deeper'"),
        "{refused}"
    );
    let stale = forge.fails(&[
        "ref",
        "delete",
        "alice/app",
        "refs/heads/fix",
        "--old",
        &"1".repeat(40),
    ]);
    assert!(stale.contains("no object"), "{stale}");
    forge.ok(&["ref", "delete", "alice/app", "refs/heads/fix"]);
    let missing = forge.fails(&["ref", "show", "alice/app", "refs/heads/fix"]);
    assert!(
        missing.contains("no ref refs/heads/fix in alice/app"),
        "{missing}"
    );
}

/// Starts an upload-pack POST of `length` bytes that sends `sent` of them and stalls.
fn stalled_upload(addr: &str, repo: &str, length: usize, sent: usize) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /{repo}.git/git-upload-pack HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-git-upload-pack-request\r\nContent-Length: {length}\r\n\r\n"
    )
    .unwrap();
    let chunk = vec![b'0'; 1 << 20];
    let mut left = sent;
    while left > 0 {
        let n = left.min(chunk.len());
        if stream.write_all(&chunk[..n]).is_err() {
            break;
        }
        left -= n;
    }
    stream
}

/// The HTTP status the server answered on `stream`, if it answered within `limit`.
fn answered_status(stream: &mut TcpStream, limit: Duration) -> Option<u16> {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                response.extend_from_slice(&buf[..n]);
                if response.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    (response.len() >= 12).then(|| parse_answer(&response).status)
}

#[test]
fn stalled_anonymous_bodies_hold_bounded_memory_and_time_out() {
    let tmp = tempfile::tempdir().unwrap();
    let (forge, server, _work, url) = pushed_forge(
        tmp.path(),
        &["--max-request-memory", "16777216", "--idle-timeout", "3"],
    );
    forge.ok(&["repo", "config", "alice/app", "public", "true"]);
    let pid = server.pid();
    let before = proc_status_kb(pid, "VmRSS");
    // Twelve anonymous clients each send 8 MiB of a 60 MiB body, then stall: without a
    // bound they would hold 96 MiB between them.
    let mut stalled: Vec<TcpStream> = (0..12)
        .map(|_| stalled_upload(&server.addr(), "alice/app", 60 << 20, 8 << 20))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let during = proc_status_kb(pid, "VmRSS");
    assert!(
        during < before + 40 * 1024,
        "RSS grew from {before} kB to {during} kB"
    );
    // A normal client is served meanwhile, anonymously.
    let started = Instant::now();
    clone_ok(tmp.path(), &server.anonymous_url("alice/app"), "anon.git");
    assert!(started.elapsed() < Duration::from_secs(10));
    let _ = url;
    // Past the budget, clients are told the server is busy; the rest time out.
    let statuses: Vec<Option<u16>> = stalled
        .iter_mut()
        .map(|s| answered_status(s, Duration::from_secs(10)))
        .collect();
    let busy = statuses.iter().filter(|s| **s == Some(503)).count();
    let timed_out = statuses.iter().filter(|s| **s == Some(408)).count();
    assert!(busy >= 10, "{statuses:?}");
    assert_eq!(busy + timed_out, 12, "{statuses:?}");
    assert!(wait_for(Duration::from_secs(5), || proc_status_kb(
        pid, "VmRSS"
    ) < before + 24 * 1024));
    let log = server.log().join("\n");
    assert!(log.contains("status=503"), "{log}");
}

#[test]
fn idle_connections_time_out_and_cannot_lock_others_out() {
    let tmp = tempfile::tempdir().unwrap();
    let (forge, server, _work, url) = pushed_forge(
        tmp.path(),
        &[
            "--max-connections",
            "20",
            "--header-timeout",
            "2",
            "--idle-timeout",
            "30",
        ],
    );
    forge.ok(&["repo", "config", "alice/app", "public", "true"]);
    let addr = server.addr();
    // Silent connections are closed after the header timeout.
    let mut silent = TcpStream::connect(&addr).unwrap();
    let mut partial = TcpStream::connect(&addr).unwrap();
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let started = Instant::now();
    for stream in [&mut silent, &mut partial] {
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        let mut buf = [0u8; 64];
        let n = stream.read(&mut buf).unwrap_or(0);
        assert_eq!(n, 0, "the server answered {:?}", &buf[..n]);
    }
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );

    // 60 idle connections against a limit of 20: the oldest idle ones make room, and a
    // normal client is served at once.
    let idle: Vec<TcpStream> = (0..60)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let answer = raw_http(
        &addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(answer.status, 200);
    clone_ok(tmp.path(), &server.anonymous_url("alice/app"), "c1.git");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(open_fds(server.pid()) < 60, "{}", open_fds(server.pid()));
    drop(idle);

    // When every connection is busy (20 stalled bodies), a new one is told so.
    let mut busy: Vec<TcpStream> = (0..20)
        .map(|_| stalled_upload(&addr, "alice/app", 1000, 10))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let answer = raw_http(
        &addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(answer.status, 503, "{}", answer.text());
    assert!(
        answer.text().contains("too many connections"),
        "{}",
        answer.text()
    );
    for stream in &mut busy {
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }
    drop(busy);
    assert!(wait_for(Duration::from_secs(5), || {
        raw_http(
            &addr,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .status
            == 200
    }));
    let _ = url;
}

#[test]
fn stalled_pushes_of_one_agent_do_not_block_other_pushes() {
    let tmp = tempfile::tempdir().unwrap();
    let (forge, server, work, url) = pushed_forge(tmp.path(), &["--idle-timeout", "30"]);
    forge.ok(&[
        "identity", "add", "mallory", "--kind", "agent", "--owner", "admin",
    ]);
    forge.ok(&["repo", "create", "mallory/scratch"]);
    let mallory = forge.json(&[
        "token",
        "issue",
        "--identity",
        "mallory",
        "--repo",
        "mallory/scratch",
        "--ops",
        "write",
    ])["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let addr = server.addr();
    let open_push = |with_data: bool| {
        let mut stream = TcpStream::connect(&addr).unwrap();
        write!(
            stream,
            "POST /mallory/scratch.git/git-receive-pack HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-git-receive-pack-request\r\nAuthorization: Bearer {mallory}\r\nContent-Length: 100000\r\n\r\n"
        )
        .unwrap();
        if with_data {
            // The commands start, then nothing more comes.
            stream.write_all(b"00").unwrap();
        }
        stream
    };
    // 16 pushes that send headers only, and 16 that send a first byte and stall.
    let held: Vec<TcpStream> = (0..32).map(|i| open_push(i % 2 == 1)).collect();
    std::thread::sleep(Duration::from_millis(500));
    commit_file(&work, "b.txt", "b\n", "second");
    let started = Instant::now();
    git(&work, &["push", "-q", &url, "main"]);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "the push took {took:?}");
    drop(held);
}

#[test]
fn listing_many_repositories_keeps_descriptors_bounded_and_errors_show_no_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    for i in 0..40 {
        forge.ok(&["repo", "create", &format!("o/r{i}")]);
        if i % 2 == 0 {
            forge.ok(&["repo", "config", &format!("o/r{i}"), "public", "true"]);
        }
    }
    // A repository whose database is damaged (before anything opened it).
    let data = tmp.path().join("data");
    let record = forge.repo_id("o/r39");
    std::fs::write(
        data.join(format!("repos/{record}/repo.redb")),
        b"not a database",
    )
    .unwrap();
    let server = Server::start_with(&forge, &["--max-open-repos", "8"]);
    let addr = server.addr();
    let before = open_fds(server.pid());
    let page = raw_http(
        &addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<li>o/r38</li>"), "{}", page.text());
    assert!(!page.text().contains("o/r39"), "{}", page.text());
    // Touch every sound repository over git: at most 8 stay open.
    for i in 0..39 {
        let (ok, stderr) = try_git(
            tmp.path(),
            &["ls-remote", &server.repo_url(&format!("o/r{i}"))],
        );
        assert!(ok, "{stderr}");
    }
    let after = open_fds(server.pid());
    assert!(after <= before + 12, "descriptors {before} → {after}");

    // The damaged one answers 500 without naming server paths.
    let (ok, stderr) = try_git(tmp.path(), &["ls-remote", &server.repo_url("o/r39")]);
    assert!(!ok);
    assert!(stderr.contains("500"), "{stderr}");
    let answer = raw_http(
        &addr,
        format!(
            "GET /o/r39.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
            server.bearer()
        )
        .as_bytes(),
    );
    assert_eq!(answer.status, 500);
    let root = data.display().to_string();
    assert!(!answer.text().contains(&root), "{}", answer.text());
    assert!(
        answer.text().contains("internal error"),
        "{}",
        answer.text()
    );
    let log = server.log().join("\n");
    assert!(
        log.contains("repo.redb"),
        "the log names what failed: {log}"
    );
}

#[test]
fn tokens_stop_with_their_identity_and_admin_tokens_take_no_ref_limits() {
    let tmp = tempfile::tempdir().unwrap();
    let (forge, server, _work, _url) = pushed_forge(tmp.path(), &[]);
    let data = tmp.path().join("data");
    forge.ok(&["identity", "add", "bob", "--kind", "human"]);
    forge.ok(&[
        "identity", "add", "bot", "--kind", "agent", "--owner", "bob",
    ]);
    forge.ok(&["repo", "create", "bob/app"]);
    let token_for = |forge: &Forge, who: &str| {
        forge.token(&[
            "--identity",
            who,
            "--repo",
            "bob/app",
            "--ops",
            "read,write",
        ])
    };
    let bob = token_for(&forge, "bob");
    let bot = token_for(&forge, "bot");
    let url_with = |token: &str| server.repo_url("bob/app").replace(&server.token, token);
    let ls = |token: &str| try_git(tmp.path(), &["ls-remote", &url_with(token)]);
    assert!(ls(&bob).0 && ls(&bot).0);

    // A token signed with this server's key for an identity it does not know.
    let copy = tmp.path().join("copy");
    let status = std::process::Command::new("cp")
        .args([
            "-a",
            &data.display().to_string(),
            &copy.display().to_string(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let other = Forge::new(&copy);
    other.ok(&["identity", "add", "ghost", "--kind", "human"]);
    let ghost = other.token(&["--identity", "ghost", "--repo", "*", "--ops", "admin"]);
    let (ok, stderr) = ls(&ghost);
    assert!(!ok);
    assert!(
        stderr.contains("the identity ghost does not exist"),
        "{stderr}"
    );
    let body = r#"{"name":"ghost/r"}"#;
    let answer = post_json(
        &server.addr(),
        "/api/v1/repos",
        &format!("Bearer {ghost}"),
        body,
    );
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert!(answer.text().contains("the identity ghost does not exist"));

    // Disabling a human stops its tokens and its agents' tokens; enabling restores them.
    forge.ok(&["identity", "disable", "bob"]);
    let (ok, stderr) = ls(&bob);
    assert!(
        !ok && stderr.contains("the identity bob is disabled"),
        "{stderr}"
    );
    let (ok, stderr) = ls(&bot);
    assert!(
        !ok && stderr.contains("the identity bob is disabled"),
        "{stderr}"
    );
    forge.ok(&["identity", "enable", "bob"]);
    assert!(ls(&bob).0 && ls(&bot).0);
    // Removing: a human who owns agents stays until they are gone.
    let refused = forge.fails(&["identity", "remove", "bob"]);
    assert!(
        refused.contains("bob owns the agents bot; remove them first"),
        "{refused}"
    );
    forge.ok(&["identity", "remove", "bot"]);
    let (ok, stderr) = ls(&bot);
    assert!(
        !ok && stderr.contains("the identity bot does not exist"),
        "{stderr}"
    );
    forge.ok(&["identity", "remove", "bob"]);
    assert!(!ls(&bob).0);
    // Adding an identity with the name again does not revive the tokens of the old one.
    forge.ok(&["identity", "add", "bob", "--kind", "human"]);
    let (ok, stderr) = ls(&bob);
    assert!(
        !ok && stderr
            .contains("the token was issued to an earlier identity named bob, since removed"),
        "{stderr}"
    );
    let new_bob = token_for(&forge, "bob");
    assert!(ls(&new_bob).0);

    // admin with ref limits would ignore them: refused at issue time.
    let refused = forge.fails(&[
        "token",
        "issue",
        "--identity",
        "admin",
        "--repo",
        "*",
        "--ops",
        "admin",
        "--refs",
        "refs/heads/bob/**",
    ]);
    assert!(
        refused.contains("ref limits (--refs) cannot be combined with admin"),
        "{refused}"
    );
}

#[test]
fn names_that_break_scripts_or_other_systems_are_refused_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    let server = Server::start(&forge);
    for (name, reason) in [
        ("-api/b", "must not start with '-'"),
        ("a/con", "device name on Windows"),
        ("a/aux.txt", "device name on Windows"),
        ("a/b.", "must not end with '.'"),
        ("a/b.lock", "must not end with '.lock'"),
    ] {
        let body = format!("{{\"name\":\"{name}\"}}");
        let answer = post_json(&server.addr(), "/api/v1/repos", &server.bearer(), &body);
        assert_eq!(answer.status, 400, "{name}: {}", answer.text());
        assert!(answer.text().contains(reason), "{name}: {}", answer.text());
        if !name.starts_with('-') {
            let refused = forge.fails(&["repo", "create", name]);
            assert!(refused.contains(reason), "{name}: {refused}");
        }
    }
    let refused = forge.fails(&["identity", "add", "nul", "--kind", "human"]);
    assert!(refused.contains("device name on Windows"), "{refused}");
    assert!(
        forge.json(&["repo", "list"])["repos"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["name"] == "admin/first")
    );
}

#[test]
fn the_server_logs_each_request_and_each_refusal() {
    let tmp = tempfile::tempdir().unwrap();
    let (_forge, server, work, url) = pushed_forge(tmp.path(), &["--log-format", "json"]);
    let (ok, _) = try_git(&work, &["push", &url, "HEAD:refs/heads"]);
    assert!(!ok);
    let answer = raw_http(
        &server.addr(),
        b"GET /alice/app.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer forged\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(answer.status, 401);
    // (git's own first request, without credentials, is a 401 too: wait for this one's.)
    assert!(wait_for(Duration::from_secs(5), || server
        .log()
        .iter()
        .any(|l| l.contains("refused with 401"))));
    let log = server.log();
    let events: Vec<serde_json::Value> = log
        .iter()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let requests: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["message"] == "request")
        .collect();
    assert!(
        requests.iter().any(|r| r["method"] == "POST"
            && r["path"] == "/alice/app.git/git-receive-pack"
            && r["status"] == 200
            && r["ms"].as_f64().is_some()),
        "{log:#?}"
    );
    assert!(
        events.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.contains("funny refname"))),
        "the refused ref and its reason: {log:#?}"
    );
    assert!(
        events.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.contains("refused") && m.contains("401"))),
        "the refused token: {log:#?}"
    );
    // No token ever reaches the log.
    assert!(!log.iter().any(|l| l.contains(&server.token)), "{log:#?}");
}

#[test]
fn killed_repacks_leave_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let (forge, _server, _work, _url) = pushed_forge(tmp.path(), &["--no-auto-repack"]);
    forge.ok(&["repack", "alice/app"]);
    let id = forge.repo_id("alice/app");
    let packs = tmp.path().join(format!("data/repos/{id}/packs"));
    // What a repack killed while writing leaves: its temporary pack.
    std::fs::write(packs.join("tmp-pack-4242.pack"), vec![7u8; 5000]).unwrap();
    let report = forge.ok(&["fsck", "alice/app"]);
    assert!(
        report.contains("1 temporary pack file(s) (5000 bytes) left by an interrupted repack"),
        "{report}"
    );
    forge.ok(&["repack", "--force", "alice/app"]);
    assert!(!packs.join("tmp-pack-4242.pack").exists());
    let report = forge.ok(&["fsck", "alice/app"]);
    assert!(!report.contains("temporary pack"), "{report}");
}
