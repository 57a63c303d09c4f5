//! Webhooks against a real `forge serve` and stock git: receivers are real HTTP servers on
//! loopback written here (a thread per connection), deliveries are checked byte for byte
//! (the HMAC-SHA256 signature computed here over the body received), and the delivery log
//! is read back over REST.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common;

use common::{Forge, Server, assert_error, call, git, wait_for};
use serde_json::{Value, json};

/// One request a receiver got.
#[derive(Clone, Debug)]
struct Received {
    /// Header names lowercased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// What a receiver does with its `n`th request (0-based).
#[derive(Clone, Copy)]
enum Reply {
    Status(u16),
    /// Reads the request, then answers nothing for a minute.
    Hang,
    /// Answers 200 with a few bytes of a longer body, then nothing for a minute.
    StallBody,
}

/// An HTTP server on 127.0.0.1 that records every request.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start(reply: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let kept = got.clone();
        let reply = Arc::new(reply);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let kept = kept.clone();
                let reply = reply.clone();
                std::thread::spawn(move || {
                    let _ = serve_one(stream, &kept, &*reply);
                });
            }
        });
        Receiver { port, got }
    }

    fn answering(status: u16) -> Receiver {
        Receiver::start(move |_| Reply::Status(status))
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook?x=1", self.port)
    }

    fn requests(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// The requests of event type `kind`.
    fn of_type(&self, kind: &str) -> Vec<Received> {
        self.requests()
            .into_iter()
            .filter(|r| r.header("x-forge-event") == Some(kind))
            .collect()
    }

    fn wait_for_type(&self, kind: &str, count: usize) -> Vec<Received> {
        assert!(
            wait_for(Duration::from_secs(20), || self.of_type(kind).len()
                >= count),
            "no {count} {kind} deliveries; got {:?}",
            self.requests()
                .iter()
                .map(|r| r.header("x-forge-event").unwrap_or("-").to_owned())
                .collect::<Vec<_>>()
        );
        self.of_type(kind)
    }
}

fn serve_one(
    stream: std::net::TcpStream,
    got: &Mutex<Vec<Received>>,
    reply: &dyn Fn(usize) -> Reply,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    assert!(line.starts_with("POST /hook?x=1 HTTP/1.1"), "{line:?}");
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed.split_once(':').unwrap();
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map(|(_, v)| v.parse().unwrap())
        .expect("a Content-Length");
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let index = {
        let mut got = got.lock().unwrap();
        got.push(Received { headers, body });
        got.len() - 1
    };
    let mut stream = stream;
    match reply(index) {
        Reply::Status(status) => {
            let text = format!("answer {index}");
            write!(
                stream,
                "HTTP/1.1 {status} Whatever\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            )?;
        }
        Reply::Hang => std::thread::sleep(Duration::from_secs(60)),
        Reply::StallBody => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nfirst"
            )?;
            stream.flush()?;
            std::thread::sleep(Duration::from_secs(60));
        }
    }
    Ok(())
}

/// HMAC-SHA256 of `body` keyed by `secret`, as `sha256=HEX`.
fn sign(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// A data directory with `alice/app`, and a work tree with two commits (`one`, `two`).
struct Setup {
    tmp: tempfile::TempDir,
    forge: Forge,
    work: std::path::PathBuf,
    one: String,
    two: String,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    forge.ok(&["repo", "create", "alice/app"]);
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    common::commit_file(&work, "a", "1", "one");
    let one = git(&work, &["rev-parse", "HEAD"]).trim().to_owned();
    common::commit_file(&work, "a", "2", "two");
    let two = git(&work, &["rev-parse", "HEAD"]).trim().to_owned();
    Setup {
        tmp,
        forge,
        work,
        one,
        two,
    }
}

const ALLOW_LOOPBACK: &[&str] = &[
    "--hook-allow-host",
    "127.0.0.1",
    "--hook-retry-delay",
    "0.2",
];

fn add_hook(server: &Server, path: &str, body: Value) -> Value {
    let added = call(
        server,
        "POST",
        path,
        Some(&server.token),
        Some(&body.to_string()),
    );
    assert_eq!(added.status, 201, "{}", added.body);
    added.body
}

fn push(setup: &Setup, server: &Server, spec: &str) {
    git(
        &setup.work,
        &["push", "-q", &server.repo_url("alice/app"), spec],
    );
}

/// The hook's delivery log, newest first.
fn deliveries(server: &Server, hook_path: &str) -> Vec<Value> {
    let page = call(
        server,
        "GET",
        &format!("{hook_path}/deliveries"),
        Some(&server.token),
        None,
    );
    assert_eq!(page.status, 200, "{}", page.body);
    page.body["items"].as_array().unwrap().clone()
}

fn wait_for_state(server: &Server, hook_path: &str, state: &str) -> Vec<Value> {
    let mut last = Vec::new();
    let done = wait_for(Duration::from_secs(30), || {
        last = deliveries(server, hook_path);
        !last.is_empty() && last.iter().all(|d| d["state"] == state)
    });
    assert!(done, "deliveries not all {state}: {last:?}");
    last
}

#[test]
fn a_push_is_delivered_signed_and_the_secret_is_never_shown() {
    let setup = setup();
    let server = Server::start_with(&setup.forge, ALLOW_LOOPBACK);
    let receiver = Receiver::answering(200);
    let secret = "It's a Secret to Everybody";
    let hook = add_hook(
        &server,
        "/api/v1/repos/alice/app/hooks",
        json!({"url": receiver.url(), "secret": secret}),
    );
    assert_eq!(hook["has_secret"], true);
    assert_eq!(hook["active"], true);
    assert_eq!(hook["repo"], "alice/app");
    assert_eq!(hook["events"], json!([]));
    let id = hook["id"].as_u64().unwrap();
    let hook_path = format!("/api/v1/repos/alice/app/hooks/{id}");

    let started = Instant::now();
    push(&setup, &server, &format!("{}:refs/heads/main", setup.two));
    assert!(started.elapsed() < Duration::from_secs(10));
    let got = receiver.wait_for_type("ref.updated", 1);
    assert_eq!(got.len(), 1);
    let request = &got[0];
    let body = request.json();
    assert_eq!(body["type"], "ref.updated");
    assert_eq!(body["repo"], "alice/app");
    assert_eq!(body["data"]["ref"], "refs/heads/main");
    assert_eq!(body["data"]["before"], Value::Null);
    assert_eq!(body["data"]["after"], setup.two.as_str());
    assert_eq!(body["data"]["created"], true);
    assert_eq!(body["data"]["via"], "push");
    assert_eq!(body["actor"]["identity"], "admin");
    assert!(body["seq"].as_u64().unwrap() > 0);
    assert!(body["at"].as_u64().unwrap() > 0);
    // The headers: the delivery id is the body's, the signature is over the exact bytes.
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert!(
        request
            .header("user-agent")
            .unwrap()
            .starts_with("forge-hooks/")
    );
    assert_eq!(request.header("x-forge-event"), Some("ref.updated"));
    let delivery = request.header("x-forge-delivery").unwrap().to_owned();
    assert_eq!(body["id"], delivery.as_str());
    let signature = request.header("x-forge-signature-256").unwrap();
    assert_eq!(signature, sign(secret, &request.body));
    assert_ne!(signature, sign("another secret", &request.body));
    let mut tampered = request.body.clone();
    tampered[0] = b' ';
    assert_ne!(signature, sign(secret, &tampered));

    // The log: delivered at the first attempt, with the answer's first bytes.
    let log = wait_for_state(&server, &hook_path, "delivered");
    let entry = log
        .iter()
        .find(|d| d["id"].as_u64() == delivery.parse().ok())
        .unwrap();
    assert_eq!(entry["type"], "ref.updated");
    assert_eq!(entry["seq"], body["seq"]);
    assert_eq!(entry["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(entry["attempts"][0]["status"], 200);
    assert_eq!(entry["attempts"][0]["response"], "answer 0");
    assert!(entry["attempts"][0]["duration_ms"].is_u64());
    let one = call(
        &server,
        "GET",
        &format!("{hook_path}/deliveries/{delivery}"),
        Some(&server.token),
        None,
    );
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.body["state"], "delivered");

    // The secret is in no answer: not the list, the hook, a change, the events.
    for path in [
        "/api/v1/repos/alice/app/hooks".to_owned(),
        hook_path.clone(),
        format!("{hook_path}/deliveries"),
        "/api/v1/events".to_owned(),
        "/api/v1/repos/alice/app/events".to_owned(),
    ] {
        let answer = call(&server, "GET", &path, Some(&server.token), None);
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        assert!(!answer.body.to_string().contains("Secret"), "{path}");
    }
    let changed = call(
        &server,
        "PATCH",
        &hook_path,
        Some(&server.token),
        Some(r#"{"events": ["ref.updated", "ref.refused"]}"#),
    );
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert!(!changed.body.to_string().contains("Secret"));
    assert_eq!(
        changed.body["events"],
        json!(["ref.updated", "ref.refused"])
    );
    assert_eq!(changed.body["has_secret"], true);
    // Every change to the hook is an event of the repository's log (no URL, no secret).
    let events = call(
        &server,
        "GET",
        "/api/v1/repos/alice/app/events?type=hook.added,hook.changed",
        Some(&server.token),
        None,
    );
    let kinds: Vec<&str> = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["hook.added", "hook.changed"]);
    assert_eq!(events.body["items"][0]["data"]["host"], "127.0.0.1");
    assert_eq!(events.body["items"][0]["data"]["id"], id);
    assert!(!events.body.to_string().contains("/hook?x=1"));
    // A hook starts after its own hook.added: that one is never delivered to it.
    assert!(receiver.of_type("hook.added").is_empty());

    let removed = call(&server, "DELETE", &hook_path, Some(&server.token), None);
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert!(!removed.body.to_string().contains("Secret"));
    let gone = call(&server, "GET", &hook_path, Some(&server.token), None);
    assert_error(&gone, 404, "hook_not_found", "does not exist");
    let events = call(
        &server,
        "GET",
        "/api/v1/repos/alice/app/events?type=hook.removed",
        Some(&server.token),
        None,
    );
    assert_eq!(events.body["items"].as_array().unwrap().len(), 1);
    drop(setup.tmp);
}

#[test]
fn failed_attempts_are_retried_with_the_same_delivery_id_and_logged() {
    let setup = setup();
    let server = Server::start_with(&setup.forge, ALLOW_LOOPBACK);
    let receiver = Receiver::start(|n| Reply::Status(if n < 2 { 500 } else { 200 }));
    let hook = add_hook(
        &server,
        "/api/v1/repos/alice/app/hooks",
        json!({"url": receiver.url(), "events": ["ref.updated"], "secret": "s"}),
    );
    let hook_path = format!("/api/v1/repos/alice/app/hooks/{}", hook["id"]);
    push(&setup, &server, &format!("{}:refs/heads/main", setup.one));
    let got = receiver.wait_for_type("ref.updated", 3);
    assert_eq!(got.len(), 3);
    let ids: Vec<&str> = got
        .iter()
        .map(|r| r.header("x-forge-delivery").unwrap())
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert!(got.iter().all(|r| r.body == got[0].body));
    let log = wait_for_state(&server, &hook_path, "delivered");
    assert_eq!(log.len(), 1);
    let attempts = log[0]["attempts"].as_array().unwrap();
    let statuses: Vec<u64> = attempts
        .iter()
        .map(|a| a["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [500, 500, 200]);
    assert!(attempts[0]["error"].as_str().unwrap().contains("not a 2xx"));
    assert_eq!(attempts[1]["response"], "answer 1");
    // The backoff grows: the second wait is longer than the first (0.2 s, then 0.4 s).
    let at: Vec<u64> = attempts.iter().map(|a| a["at"].as_u64().unwrap()).collect();
    assert!(at[1] - at[0] >= 200, "{at:?}");
    assert!(at[2] - at[1] >= 400, "{at:?}");

    // Redelivered: a new chain, the same id and the same bytes, logged.
    let redelivered = call(
        &server,
        "POST",
        &format!("{hook_path}/deliveries/{}/redeliver", ids[0]),
        Some(&server.token),
        None,
    );
    assert_eq!(redelivered.status, 202, "{}", redelivered.body);
    assert_eq!(redelivered.body["state"], "pending");
    let got = receiver.wait_for_type("ref.updated", 4);
    assert_eq!(got[3].header("x-forge-delivery"), Some(ids[0]));
    assert_eq!(got[3].body, got[0].body);
    let log = wait_for_state(&server, &hook_path, "delivered");
    assert_eq!(log[0]["redeliveries"], 1);
    let attempts = log[0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 4);
    assert_eq!(attempts[3]["chain"], 1);
    assert_eq!(attempts[3]["status"], 200);
    let missing = call(
        &server,
        "POST",
        &format!("{hook_path}/deliveries/999999/redeliver"),
        Some(&server.token),
        None,
    );
    assert_error(&missing, 404, "delivery_not_found", "does not exist");
}

#[test]
fn a_receiver_that_never_answers_delays_neither_pushes_nor_other_hooks() {
    let setup = setup();
    // An attempt timeout far longer than anything here may take, even on a loaded machine.
    let mut options = ALLOW_LOOPBACK.to_vec();
    options.extend(["--hook-timeout", "60"]);
    let server = Server::start_with(&setup.forge, &options);
    let dead = Receiver::start(|_| Reply::Hang);
    let alive = Receiver::answering(204);
    add_hook(
        &server,
        "/api/v1/repos/alice/app/hooks",
        json!({"url": dead.url()}),
    );
    let alive_hook = add_hook(
        &server,
        "/api/v1/hooks",
        json!({"url": alive.url(), "events": ["ref.updated"]}),
    );
    // Three pushes, each well within the attempt timeout while the dead receiver holds its
    // first delivery.
    let started = Instant::now();
    push(&setup, &server, &format!("{}:refs/heads/main", setup.one));
    assert!(wait_for(Duration::from_secs(10), || !dead
        .requests()
        .is_empty()));
    push(&setup, &server, &format!("{}:refs/heads/main", setup.two));
    push(&setup, &server, &format!("{}:refs/heads/topic", setup.two));
    let pushed = started.elapsed();
    assert!(pushed < Duration::from_secs(20), "pushes took {pushed:?}");
    let got = alive.wait_for_type("ref.updated", 3);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    // In order: main created, main moved, topic created.
    let refs: Vec<(String, bool)> = got
        .iter()
        .map(|r| {
            let body = r.json();
            (
                body["data"]["ref"].as_str().unwrap().to_owned(),
                body["data"]["created"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        refs,
        [
            ("refs/heads/main".to_owned(), true),
            ("refs/heads/main".to_owned(), false),
            ("refs/heads/topic".to_owned(), true)
        ]
    );
    // The dead one got its first delivery only: the others wait behind it, in order.
    assert_eq!(dead.requests().len(), 1);
    let alive_log = deliveries(&server, &format!("/api/v1/hooks/{}", alive_hook["id"]));
    assert_eq!(alive_log.len(), 3);
}

#[test]
fn internal_targets_are_refused_unless_allowed() {
    let setup = setup();
    let server = Server::start_with(&setup.forge, &["--hook-retry-delay", "0.2"]);
    let receiver = Receiver::answering(200);
    // A literal loopback address is refused at once.
    let refused = call(
        &server,
        "POST",
        "/api/v1/repos/alice/app/hooks",
        Some(&server.token),
        Some(&json!({"url": receiver.url()}).to_string()),
    );
    assert_error(
        &refused,
        422,
        "hook_target_refused",
        "127.0.0.1, a loopback address; deliveries to internal addresses are refused unless forge serve --hook-allow-host allows them",
    );
    for url in [
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:80/",
        "http://10.0.0.1/",
        "http://[fd00::1]/",
    ] {
        let refused = call(
            &server,
            "POST",
            "/api/v1/hooks",
            Some(&server.token),
            Some(&json!({"url": url}).to_string()),
        );
        assert_error(&refused, 422, "hook_target_refused", "target refused");
    }
    // A name is checked on the address it resolves to, when delivering.
    let url = format!("http://localhost:{}/hook?x=1", receiver.port);
    let hook = add_hook(
        &server,
        "/api/v1/repos/alice/app/hooks",
        json!({"url": url}),
    );
    let hook_path = format!("/api/v1/repos/alice/app/hooks/{}", hook["id"]);
    push(&setup, &server, &format!("{}:refs/heads/main", setup.one));
    let log = wait_for_state(&server, &hook_path, "failed");
    let attempts = log[0]["attempts"].as_array().unwrap();
    // Refused targets are not retried: the rule would refuse them again.
    assert_eq!(attempts.len(), 1);
    let error = attempts[0]["error"].as_str().unwrap();
    assert!(
        error.starts_with("target refused: localhost resolves to ")
            && error.contains("a loopback address")
            && error.contains("--hook-allow-host"),
        "{error}"
    );
    assert!(attempts[0].get("status").is_none());
    assert!(receiver.requests().is_empty());
}

#[test]
fn hooks_need_admin_and_valid_fields() {
    let setup = setup();
    let forge = &setup.forge;
    forge.ok(&["repo", "create", "alice/other"]);
    forge.ok(&["identity", "add", "alice", "--kind", "human"]);
    forge.ok(&["identity", "add", "bob", "--kind", "human"]);
    let server = Server::start_with(forge, ALLOW_LOOPBACK);
    let alice = forge.token(&["--identity", "alice", "--repo", "alice/*", "--ops", "admin"]);
    let bob_reads = forge.token(&["--identity", "bob", "--repo", "alice/app", "--ops", "read"]);
    let bob_writes = forge.token(&["--identity", "bob", "--repo", "alice/app", "--ops", "write"]);
    let bob_other = forge.token(&[
        "--identity",
        "bob",
        "--repo",
        "alice/other",
        "--ops",
        "admin",
    ]);
    let body = json!({"url": "https://hooks.example.com/x", "secret": "hush-hush"}).to_string();
    let hooks = "/api/v1/repos/alice/app/hooks";

    let anonymous = call(&server, "GET", hooks, None, None);
    assert_error(&anonymous, 401, "unauthorized", "a token is required");
    for token in [&bob_reads, &bob_writes] {
        let list = call(&server, "GET", hooks, Some(token), None);
        assert_eq!(list.status, 403, "{}", list.body);
        let add = call(&server, "POST", hooks, Some(token), Some(&body));
        assert_eq!(add.status, 403, "{}", add.body);
    }
    // A token that may not read the repository is not told it exists.
    let add = call(&server, "POST", hooks, Some(&bob_other), Some(&body));
    assert_error(&add, 404, "repo_not_found", "does not exist");

    let added = call(&server, "POST", hooks, Some(&alice), Some(&body));
    assert_eq!(added.status, 201, "{}", added.body);
    assert_eq!(added.body["created_by"], "alice");
    assert!(!added.body.to_string().contains("hush"));
    let hook_path = format!("{hooks}/{}", added.body["id"]);
    // Another repository's path does not reach it.
    let elsewhere = call(
        &server,
        "GET",
        &format!("/api/v1/repos/alice/other/hooks/{}", added.body["id"]),
        Some(&alice),
        None,
    );
    assert_error(&elsewhere, 404, "hook_not_found", "does not exist");
    let site_path = format!("/api/v1/hooks/{}", added.body["id"]);
    let as_site = call(&server, "GET", &site_path, Some(&server.token), None);
    assert_error(&as_site, 404, "hook_not_found", "does not exist");
    for method in ["GET", "DELETE"] {
        let refused = call(&server, method, &hook_path, Some(&bob_reads), None);
        assert_eq!(refused.status, 403, "{method} {}", refused.body);
    }
    let listed = call(&server, "GET", hooks, Some(&alice), None);
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    assert!(!listed.body.to_string().contains("hush"));

    // Site-wide hooks are for site admins only.
    for (method, path) in [
        ("GET", "/api/v1/hooks"),
        ("POST", "/api/v1/hooks"),
        ("GET", "/api/v1/hooks/1"),
        ("GET", "/api/v1/hooks/1/deliveries"),
    ] {
        let refused = call(&server, method, path, Some(&alice), Some(&body));
        assert_eq!(refused.status, 403, "{method} {path}: {}", refused.body);
        let anonymous = call(&server, method, path, None, Some(&body));
        assert_eq!(anonymous.status, 401, "{method} {path}: {}", anonymous.body);
    }
    let site = call(
        &server,
        "POST",
        "/api/v1/hooks",
        Some(&server.token),
        Some(&body),
    );
    assert_eq!(site.status, 201, "{}", site.body);
    assert_eq!(site.body["repo"], Value::Null);

    // Fields are checked, each refusal with its reason.
    for (body, message) in [
        (
            json!({"url": "ftp://x.example/"}),
            "the scheme must be http or https",
        ),
        (
            json!({"url": "https://u:p@x.example/"}),
            "credentials in the URL are refused",
        ),
        (json!({"url": "x.example"}), "not an absolute http"),
        (
            json!({"url": format!("https://x.example/{}", "a".repeat(2100))}),
            "at most 2048",
        ),
        (
            json!({"url": "https://x.example/", "secret": ""}),
            "a secret is 1 to 256 bytes",
        ),
        (
            json!({"url": "https://x.example/", "secret": "s".repeat(300)}),
            "a secret is 1 to 256 bytes",
        ),
        (
            json!({"url": "https://x.example/", "events": ["ref.pushed"]}),
            "unknown event type \"ref.pushed\"",
        ),
        (
            json!({"url": "https://x.example/", "events": [""]}),
            "is not an event type",
        ),
    ] {
        let refused = call(
            &server,
            "POST",
            hooks,
            Some(&alice),
            Some(&body.to_string()),
        );
        assert_error(&refused, 422, "invalid_hook", message);
    }
    let unknown_field = call(
        &server,
        "POST",
        hooks,
        Some(&alice),
        Some(r#"{"url": "https://x.example/", "colour": "red"}"#),
    );
    assert_error(&unknown_field, 422, "invalid_request", "unknown field");
    let bad_id = call(&server, "GET", &format!("{hooks}/x1"), Some(&alice), None);
    assert_eq!(bad_id.status, 400, "{}", bad_id.body);
    let bad_patch = call(
        &server,
        "PATCH",
        &hook_path,
        Some(&alice),
        Some(r#"{"url": "gopher://x/"}"#),
    );
    assert_error(&bad_patch, 422, "invalid_hook", "http or https");
    // The secret is removed with an empty string.
    let cleared = call(
        &server,
        "PATCH",
        &hook_path,
        Some(&alice),
        Some(r#"{"secret": ""}"#),
    );
    assert_eq!(cleared.status, 200, "{}", cleared.body);
    assert_eq!(cleared.body["has_secret"], false);

    // A repository deleted takes its hooks along; one made again under the name has none.
    let deleted = call(
        &server,
        "DELETE",
        "/api/v1/repos/alice/app",
        Some(&server.token),
        None,
    );
    assert!(
        deleted.status == 200 || deleted.status == 204,
        "{}",
        deleted.body
    );
    forge.ok(&["repo", "create", "alice/app"]);
    let listed = call(&server, "GET", hooks, Some(&alice), None);
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["items"], json!([]));
    let site_list = call(&server, "GET", "/api/v1/hooks", Some(&server.token), None);
    assert_eq!(site_list.body["items"].as_array().unwrap().len(), 1);
}

#[test]
fn a_hook_gets_only_the_types_it_asks_for_and_site_hooks_get_everything() {
    let setup = setup();
    let server = Server::start_with(&setup.forge, ALLOW_LOOPBACK);
    let refusals = Receiver::answering(200);
    let everything = Receiver::answering(200);
    add_hook(
        &server,
        "/api/v1/repos/alice/app/hooks",
        json!({"url": refusals.url(), "events": ["ref.refused"]}),
    );
    add_hook(&server, "/api/v1/hooks", json!({"url": everything.url()}));
    push(&setup, &server, &format!("{}:refs/heads/main", setup.two));
    // Refused: the default branch does not move backwards.
    let (ok, _) = common::try_git(
        &setup.work,
        &[
            "push",
            "-q",
            "-f",
            &server.repo_url("alice/app"),
            &format!("{}:refs/heads/main", setup.one),
        ],
    );
    assert!(!ok);
    // An event of the registry (no repository) reaches site hooks only.
    setup
        .forge
        .ok(&["identity", "add", "carol", "--kind", "human"]);
    let refused = refusals.wait_for_type("ref.refused", 1);
    assert_eq!(refused[0].json()["data"]["ref"], "refs/heads/main");
    everything.wait_for_type("ref.refused", 1);
    everything.wait_for_type("ref.updated", 1);
    let added = everything.wait_for_type("identity.added", 1);
    assert_eq!(added[0].json()["data"]["name"], "carol");
    assert_eq!(added[0].json().get("repo"), None);
    // Given time, the filtered hook still has nothing else.
    std::thread::sleep(Duration::from_millis(700));
    let kinds: Vec<String> = refusals
        .requests()
        .iter()
        .map(|r| r.header("x-forge-event").unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["ref.refused"]);
}

#[test]
fn a_restart_neither_loses_nor_repeats_a_delivery() {
    let setup = setup();
    let receiver = Receiver::answering(200);
    let hook_path;
    {
        let server = Server::start_with(&setup.forge, ALLOW_LOOPBACK);
        let hook = add_hook(
            &server,
            "/api/v1/repos/alice/app/hooks",
            json!({"url": receiver.url(), "events": ["ref.updated"]}),
        );
        hook_path = format!("/api/v1/repos/alice/app/hooks/{}", hook["id"]);
        push(&setup, &server, &format!("{}:refs/heads/main", setup.one));
        push(&setup, &server, &format!("{}:refs/heads/keep", setup.two));
        receiver.wait_for_type("ref.updated", 2);
        wait_for_state(&server, &hook_path, "delivered");
    }
    // While no server runs, the operator moves refs: the events wait in the log.
    setup
        .forge
        .ok(&["ref", "set", "alice/app", "refs/heads/main", &setup.two]);
    setup
        .forge
        .ok(&["ref", "set", "alice/app", "refs/heads/copy", &setup.two]);
    let server = Server::start_with(&setup.forge, ALLOW_LOOPBACK);
    let got = receiver.wait_for_type("ref.updated", 4);
    wait_for_state(&server, &hook_path, "delivered");
    std::thread::sleep(Duration::from_millis(800));
    let got_later = receiver.of_type("ref.updated");
    assert_eq!(got_later.len(), 4, "{got:?}");
    let seqs: Vec<u64> = got_later
        .iter()
        .map(|r| r.json()["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let via: Vec<String> = got_later
        .iter()
        .map(|r| r.json()["data"]["via"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(via, ["push", "push", "admin", "admin"]);
    // And a server that runs while the CLI writes delivers what the CLI wrote.
    setup
        .forge
        .ok(&["ref", "delete", "alice/app", "refs/heads/copy"]);
    let got = receiver.wait_for_type("ref.updated", 5);
    assert_eq!(got[4].json()["data"]["deleted"], true);
    assert_eq!(deliveries(&server, &hook_path).len(), 5);
}

#[test]
fn the_delivery_log_is_paged() {
    let setup = setup();
    let server = Server::start_with(&setup.forge, ALLOW_LOOPBACK);
    let receiver = Receiver::answering(200);
    let hook = add_hook(&server, "/api/v1/hooks", json!({"url": receiver.url()}));
    let hook_path = format!("/api/v1/hooks/{}", hook["id"]);
    for name in ["dan", "erin", "frank"] {
        setup
            .forge
            .ok(&["identity", "add", name, "--kind", "human"]);
    }
    receiver.wait_for_type("identity.added", 3);
    let mut seen = Vec::new();
    let mut path = format!("{hook_path}/deliveries?limit=2");
    loop {
        let page = call(&server, "GET", &path, Some(&server.token), None);
        assert_eq!(page.status, 200, "{}", page.body);
        for item in page.body["items"].as_array().unwrap() {
            seen.push(item["id"].as_u64().unwrap());
        }
        match page.body["next_cursor"].as_str() {
            Some(cursor) => {
                let link = page
                    .head
                    .lines()
                    .find(|l| l.to_ascii_lowercase().starts_with("link:"))
                    .expect("a Link header");
                assert!(link.contains(&format!("cursor={cursor}")), "{link}");
                assert!(link.contains("rel=\"next\""), "{link}");
                path = format!("{hook_path}/deliveries?limit=2&cursor={cursor}");
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 3);
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seen:?}"
    );
    for query in ["limit=0", "limit=101", "cursor=abc"] {
        let bad = call(
            &server,
            "GET",
            &format!("{hook_path}/deliveries?{query}"),
            Some(&server.token),
            None,
        );
        assert_eq!(bad.status, 400, "{query}: {}", bad.body);
    }
}

#[test]
fn an_answer_whose_body_stalls_counts_by_its_status() {
    let setup = setup();
    let mut options = ALLOW_LOOPBACK.to_vec();
    options.extend(["--hook-timeout", "1"]);
    let server = Server::start_with(&setup.forge, &options);
    let receiver = Receiver::start(|_| Reply::StallBody);
    let hook = add_hook(&server, "/api/v1/hooks", json!({"url": receiver.url()}));
    setup
        .forge
        .ok(&["identity", "add", "gina", "--kind", "human"]);
    let log = wait_for_state(
        &server,
        &format!("/api/v1/hooks/{}", hook["id"]),
        "delivered",
    );
    let attempts = log[0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0]["status"], 200);
    assert_eq!(attempts[0]["response"], "first");
    assert!(attempts[0]["duration_ms"].as_u64().unwrap() < 1500);
}

#[test]
fn an_attempt_without_an_answer_times_out_and_the_delivery_fails_after_its_attempts() {
    let setup = setup();
    let mut options = ALLOW_LOOPBACK.to_vec();
    options.extend(["--hook-timeout", "0.5", "--hook-attempts", "2"]);
    let server = Server::start_with(&setup.forge, &options);
    let receiver = Receiver::start(|_| Reply::Hang);
    let hook = add_hook(&server, "/api/v1/hooks", json!({"url": receiver.url()}));
    setup
        .forge
        .ok(&["identity", "add", "hank", "--kind", "human"]);
    let log = wait_for_state(&server, &format!("/api/v1/hooks/{}", hook["id"]), "failed");
    let attempts = log[0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    for attempt in attempts {
        assert_eq!(attempt["error"], "timeout: no answer within 0.5 s");
        assert!(attempt.get("status").is_none());
    }
    assert_eq!(receiver.requests().len(), 2);
    assert!(
        server
            .log()
            .iter()
            .any(|l| l.contains("webhooks: delivery") && l.contains("failed: timeout"))
    );
}

#[test]
fn the_operator_manages_hooks_with_the_cli() {
    let setup = setup();
    let forge = &setup.forge;
    let receiver = Receiver::answering(200);
    let out = forge
        .command(&[
            "--json",
            "hook",
            "add",
            "alice/app",
            "--url",
            &receiver.url(),
            "--events",
            "ref.updated,ref.refused",
        ])
        .env("FORGE_HOOK_SECRET", "from the environment")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let added: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = added["hook"]["id"].as_u64().unwrap();
    assert_eq!(added["hook"]["has_secret"], true);
    assert_eq!(added["hook"]["created_by"], Value::Null);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("environment"));
    let listed = forge.ok(&["hook", "list", "alice/app"]);
    assert!(
        listed.starts_with(&format!(
            "{id}\t{}\tref.updated,ref.refused\tactive\tsigned",
            receiver.url()
        )),
        "{listed}"
    );
    assert_eq!(forge.ok(&["hook", "list", "site"]), "");

    let server = Server::start_with(forge, ALLOW_LOOPBACK);
    push(&setup, &server, &format!("{}:refs/heads/main", setup.one));
    let got = receiver.wait_for_type("ref.updated", 1);
    assert_eq!(
        got[0].header("x-forge-signature-256").unwrap(),
        sign("from the environment", &got[0].body)
    );
    assert!(wait_for(Duration::from_secs(20), || {
        forge
            .ok(&["hook", "deliveries", "alice/app", &id.to_string()])
            .contains("\tref.updated\tdelivered\t1 attempt(s)\tHTTP 200")
    }));
    let changed = forge.ok(&[
        "hook",
        "change",
        "alice/app",
        &id.to_string(),
        "--no-secret",
        "--active",
        "false",
    ]);
    assert!(changed.contains("\tinactive"), "{changed}");
    assert!(!changed.contains("signed"), "{changed}");

    for (args, message) in [
        (
            vec!["hook", "add", "alice/app", "--url", "ftp://x/"],
            "the scheme must be http or https",
        ),
        (
            vec![
                "hook",
                "add",
                "site",
                "--url",
                "https://x/",
                "--events",
                "nope",
            ],
            "unknown event type",
        ),
        (
            vec!["hook", "remove", "site", &id.to_string()],
            "does not exist",
        ),
        (vec!["hook", "list", "alice/none"], "does not exist"),
    ] {
        let stderr = forge.fails(&args);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    let removed = forge.ok(&["hook", "remove", "alice/app", &id.to_string()]);
    assert!(
        removed.starts_with(&format!("removed hook {id}\t")),
        "{removed}"
    );
    assert_eq!(forge.ok(&["hook", "list", "alice/app"]), "");
}

#[test]
fn two_servers_on_one_data_directory_deliver_each_event_once_in_order() {
    let setup = setup();
    let first = Server::start_with(&setup.forge, ALLOW_LOOPBACK);
    let second = Server::start_with(&setup.forge, ALLOW_LOOPBACK);
    let receiver = Receiver::answering(200);
    add_hook(
        &first,
        "/api/v1/repos/alice/app/hooks",
        json!({"url": receiver.url(), "events": ["ref.updated"]}),
    );
    push(&setup, &first, &format!("{}:refs/heads/main", setup.one));
    push(&setup, &second, &format!("{}:refs/heads/main", setup.two));
    for name in ["a", "b", "c"] {
        push(&setup, &first, &format!("{}:refs/heads/{name}", setup.two));
    }
    let got = receiver.wait_for_type("ref.updated", 5);
    std::thread::sleep(Duration::from_millis(1500));
    let got_later = receiver.of_type("ref.updated");
    assert_eq!(got_later.len(), 5, "{got:?}");
    let seqs: Vec<u64> = got_later
        .iter()
        .map(|r| r.json()["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
}

#[test]
fn a_hook_delivers_only_while_its_maker_stands_as_its_tokens_would() {
    let setup = setup();
    let forge = &setup.forge;
    forge.ok(&["identity", "add", "carol", "--kind", "human"]);
    forge.ok(&[
        "identity",
        "add",
        "carol-bot",
        "--kind",
        "agent",
        "--owner",
        "carol",
    ]);
    let bot = forge.token(&[
        "--identity",
        "carol-bot",
        "--repo",
        "alice/app",
        "--ops",
        "admin",
    ]);
    let server = Server::start_with(forge, ALLOW_LOOPBACK);
    let receiver = Receiver::answering(200);
    let body = json!({"url": receiver.url(), "events": ["ref.updated"]}).to_string();
    let added = call(
        &server,
        "POST",
        "/api/v1/repos/alice/app/hooks",
        Some(&bot),
        Some(&body),
    );
    assert_eq!(added.status, 201, "{}", added.body);
    assert_eq!(added.body["created_by"], "carol-bot");
    let pushed = |branch: &str| {
        push(
            &setup,
            &server,
            &format!("{}:refs/heads/{branch}", setup.one),
        );
    };
    let delivered_refs = || -> Vec<String> {
        receiver
            .of_type("ref.updated")
            .iter()
            .map(|r| r.json()["data"]["ref"].as_str().unwrap().to_owned())
            .collect()
    };
    pushed("b1");
    receiver.wait_for_type("ref.updated", 1);
    // The bot's owner disabled: the bot's tokens stop, and so does its hook.
    forge.ok(&["identity", "disable", "carol"]);
    pushed("b2");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(delivered_refs(), ["refs/heads/b1"]);
    forge.ok(&["identity", "enable", "carol"]);
    pushed("b3");
    receiver.wait_for_type("ref.updated", 2);
    assert_eq!(
        delivered_refs(),
        ["refs/heads/b1", "refs/heads/b3"],
        "what happened meanwhile passed it by"
    );
    // Another identity under the bot's name does not inherit its hook.
    forge.ok(&["identity", "remove", "carol-bot"]);
    forge.ok(&[
        "identity",
        "add",
        "carol-bot",
        "--kind",
        "agent",
        "--owner",
        "carol",
    ]);
    pushed("b4");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(delivered_refs(), ["refs/heads/b1", "refs/heads/b3"]);
}
