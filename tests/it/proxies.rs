//! `forge serve --trusted-proxy`: forwarding headers are believed from trusted peers only.
//! What shows it: the client address in the request's log line (`--log-format json`) and
//! the absolute URL of the REST refs' `Link` header.

use crate::common;

use common::{Forge, Server};

/// A repository with two branches, so that a page of one ref has a next page.
fn two_branches(forge: &Forge, server: &Server, dir: &std::path::Path) {
    forge.ok(&["repo", "create", "alice/app"]);
    let work = dir.join("work");
    common::git(dir, &["init", "-q", "-b", "main", work.to_str().unwrap()]);
    common::commit_file(&work, "a", "a\n", "first");
    let url = server.repo_url("alice/app");
    common::git(
        &work,
        &["push", "-q", &url, "main", "main:refs/heads/topic"],
    );
}

/// `GET` the first page of one ref with extra headers: the answer and the log line of it.
fn refs_page(server: &Server, extra: &str) -> (common::RawAnswer, serde_json::Value) {
    let request = format!(
        "GET /api/v1/repos/alice/app/refs?limit=1 HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n{extra}Connection: close\r\n\r\n",
        server.addr(),
        server.token
    );
    let answer = common::raw_http(&server.addr(), request.as_bytes());
    assert_eq!(answer.status, 200, "{}", answer.text());
    let id = header(&answer, "x-request-id");
    let mut line = None;
    assert!(
        common::wait_for(std::time::Duration::from_secs(10), || {
            line = server.log().into_iter().find_map(|l| {
                let json: serde_json::Value = serde_json::from_str(&l).ok()?;
                (json["id"] == id.as_str() && json["message"] == "request").then_some(json)
            });
            line.is_some()
        }),
        "no log line for request {id}: {:?}",
        server.log()
    );
    (answer, line.unwrap())
}

fn header(answer: &common::RawAnswer, name: &str) -> String {
    answer
        .head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no {name} in {}", answer.head))
}

const FORWARDED_BY_NGINX: &str = "X-Forwarded-For: 198.51.100.1, 203.0.113.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: forge.example.com\r\n";

#[test]
fn forwarding_headers_are_believed_from_trusted_proxies_only() {
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    let server = Server::start_with(
        &forge,
        &["--log-format", "json", "--trusted-proxy", "127.0.0.0/8"],
    );
    two_branches(&forge, &server, tmp.path());

    // From a trusted peer: the rightmost untrusted hop is the client, and the URL is the
    // one the client used.
    let (answer, logged) = refs_page(&server, FORWARDED_BY_NGINX);
    assert_eq!(logged["client"], "203.0.113.7", "{logged}");
    assert!(
        logged["peer"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{logged}"
    );
    let link = header(&answer, "link");
    assert!(
        link.starts_with("<https://forge.example.com/api/v1/repos/alice/app/refs?limit=1&cursor="),
        "{link}"
    );
    // RFC 7239.
    let (answer, logged) = refs_page(
        &server,
        "Forwarded: for=\"[2001:db8::7]:4711\";proto=https;host=git.example.org\r\n",
    );
    assert_eq!(logged["client"], "2001:db8::7", "{logged}");
    assert!(
        header(&answer, "link").starts_with("<https://git.example.org/api/v1/"),
        "{answer:?}",
        answer = answer.head
    );
    // No forwarding headers: the peer itself, and its Host.
    let (answer, logged) = refs_page(&server, "");
    assert_eq!(logged["client"], "127.0.0.1", "{logged}");
    assert!(
        header(&answer, "link").starts_with(&format!("<{}/api/v1/", server.url)),
        "{}",
        answer.head
    );
    // The trusted list is announced in the log.
    assert!(
        server
            .log()
            .iter()
            .any(|l| l.contains("believing forwarding headers from 127.0.0.0/8")),
        "{:?}",
        server.log()
    );
}

#[test]
fn forwarding_headers_from_other_peers_are_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    // A proxy is trusted, but not the loopback address the test connects from.
    let server = Server::start_with(
        &forge,
        &["--log-format", "json", "--trusted-proxy", "10.0.0.1"],
    );
    two_branches(&forge, &server, tmp.path());
    let (answer, logged) = refs_page(&server, FORWARDED_BY_NGINX);
    assert_eq!(logged["client"], "127.0.0.1", "{logged}");
    let link = header(&answer, "link");
    assert!(
        link.starts_with(&format!("<{}/api/v1/repos/alice/app/refs?", server.url)),
        "{link}"
    );
    let (_, logged) = refs_page(&server, "Forwarded: for=203.0.113.7;proto=https\r\n");
    assert_eq!(logged["client"], "127.0.0.1", "{logged}");
}

#[test]
fn a_bad_trusted_proxy_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    let out = forge.run(&["serve", "--trusted-proxy", "10.0.0.0/33"]);
    assert!(!out.status.success());
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(
        error.contains("\"10.0.0.0/33\" is not an address or CIDR block"),
        "{error}"
    );
}

/// A refused push's hint names the upload URL the pusher reaches: through a trusted proxy,
/// the one the proxy was asked for.
#[test]
fn a_refusal_hint_names_the_upload_url_the_pusher_reaches() {
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    let server = Server::start_with(&forge, &["--trusted-proxy", "127.0.0.1"]);
    two_branches(&forge, &server, tmp.path());
    forge.ok(&["identity", "add", "ci-bot", "--kind", "human"]);
    forge.ok(&[
        "policy",
        "add",
        "alice/app",
        "--ref",
        "refs/heads/main",
        "--require",
        "test-result",
        "--signers",
        "ci-bot",
    ]);
    let work = tmp.path().join("work");
    common::commit_file(&work, "b", "b\n", "second");
    let url = server.repo_url("alice/app");
    let hint = |stderr: &str| {
        stderr
            .lines()
            .find_map(|l| l.strip_prefix("remote: forge: refs/heads/main: then upload it (POST "))
            .and_then(|rest| rest.split(')').next())
            .unwrap_or_else(|| panic!("no upload hint in {stderr}"))
            .to_owned()
    };
    let (pushed, stderr) = common::try_git(&work, &["push", &url, "main"]);
    assert!(!pushed, "{stderr}");
    assert_eq!(
        hint(&stderr),
        format!("{}/api/v1/repos/alice/app/attestations", server.url)
    );
    let (pushed, stderr) = common::try_git(
        &work,
        &[
            "-c",
            "http.extraHeader=X-Forwarded-Proto: https",
            "-c",
            "http.extraHeader=X-Forwarded-Host: forge.example.com",
            "push",
            &url,
            "main",
        ],
    );
    assert!(!pushed, "{stderr}");
    assert_eq!(
        hint(&stderr),
        "https://forge.example.com/api/v1/repos/alice/app/attestations"
    );
}
