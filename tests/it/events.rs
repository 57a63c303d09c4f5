//! Events: every ref update (push, REST, `forge ref set`), refusal, attestation and policy
//! change is an event of the data directory's log, in order without gaps, each naming its
//! actor, readable only by those who may read the repository.

use crate::common;

use common::{Forge, Server, assert_error, call, git};
use serde_json::Value;

fn events(server: &Server, path: &str, token: Option<&str>) -> Value {
    let answer = call(server, "GET", path, token, None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body
}

fn types_and_refs(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["type"].as_str().unwrap(),
                e["data"]["ref"].as_str().unwrap_or("-"),
                e["data"]["via"].as_str().unwrap_or("-")
            )
        })
        .collect()
}

#[test]
fn every_change_and_refusal_is_an_event_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    forge.ok(&["repo", "create", "alice/app"]);
    forge.ok(&["repo", "create", "alice/secret"]);
    forge.ok(&["identity", "add", "alice", "--kind", "human"]);
    forge.ok(&["identity", "add", "bob", "--kind", "human"]);
    forge.ok(&[
        "identity", "add", "bot", "--kind", "agent", "--owner", "alice",
    ]);
    let server = Server::start_with(&forge, &[]);
    let alice = forge.token(&["--identity", "alice", "--repo", "alice/*", "--ops", "admin"]);
    let bot = forge.write_token("bot", "alice/app");
    let bob = forge.token(&["--identity", "bob", "--repo", "alice/app", "--ops", "read"]);

    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    common::commit_file(&work, "a", "1", "one");
    let one = git(&work, &["rev-parse", "HEAD"]).trim().to_owned();
    common::commit_file(&work, "a", "2", "two");
    let two = git(&work, &["rev-parse", "HEAD"]).trim().to_owned();
    let url = server.repo_url_with(&bot, "alice/app");
    git(
        &work,
        &["push", "-q", &url, &format!("{one}:refs/heads/main")],
    );
    git(
        &work,
        &["push", "-q", &url, &format!("{two}:refs/heads/topic")],
    );
    // A forced update of a branch that is not the default one, and a deletion.
    git(
        &work,
        &["push", "-q", "-f", &url, &format!("{one}:refs/heads/topic")],
    );
    git(&work, &["push", "-q", &url, ":refs/heads/topic"]);
    // Refused: the default branch does not move backwards.
    git(
        &work,
        &["push", "-q", &url, &format!("{two}:refs/heads/main")],
    );
    let (ok, _) = common::try_git(
        &work,
        &["push", "-q", "-f", &url, &format!("{one}:refs/heads/main")],
    );
    assert!(!ok);
    // REST, and the operator's forge ref set while the server runs.
    let moved = common::post_json(
        &server.addr(),
        "/api/v1/repos/alice/app/refs",
        &format!("Bearer {alice}"),
        &format!(r#"{{"ref": "refs/heads/rest", "new": "{one}"}}"#),
    );
    assert_eq!(moved.status, 200, "{}", moved.text());
    forge.ok(&["ref", "set", "alice/app", "refs/heads/admin", &two]);
    // A policy added over REST, and a push to the private repository.
    let rule = call(
        &server,
        "POST",
        "/api/v1/repos/alice/app/policies",
        Some(&alice),
        Some(r#"{"pattern": "refs/heads/main", "fast_forward_only": true}"#),
    );
    assert_eq!(rule.status, 201, "{}", rule.body);
    git(
        &work,
        &[
            "push",
            "-q",
            &server.repo_url_with(&alice, "alice/secret"),
            &format!("{one}:refs/heads/main"),
        ],
    );

    let page = events(&server, "/api/v1/repos/alice/app/events", Some(&alice));
    assert_eq!(
        types_and_refs(&page),
        [
            "repo.created - -",
            "ref.updated refs/heads/main push",
            "ref.updated refs/heads/topic push",
            "ref.updated refs/heads/topic push",
            "ref.updated refs/heads/topic push",
            "ref.updated refs/heads/main push",
            "ref.refused refs/heads/main push",
            "ref.updated refs/heads/rest rest",
            "ref.updated refs/heads/admin admin",
            "policy.added - -",
        ],
        "{page}"
    );
    let items = page["items"].as_array().unwrap();
    let seqs: Vec<u64> = items.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
    assert_eq!(items[0]["data"]["name"], "alice/app");
    assert_eq!(items[0]["actor"]["kind"], "operator");
    let items = &items[1..];
    let created = &items[0];
    assert_eq!(created["repo"], "alice/app");
    assert_eq!(created["actor"]["identity"], "bot");
    assert_eq!(created["actor"]["kind"], "agent");
    assert_eq!(created["data"]["before"], Value::Null);
    assert_eq!(created["data"]["after"], one.as_str());
    assert_eq!(created["data"]["created"], true);
    assert_eq!(items[1]["data"]["forced"], false);
    assert_eq!(items[2]["data"]["forced"], true, "{}", items[2]);
    assert_eq!(items[2]["data"]["before"], two.as_str());
    assert_eq!(items[3]["data"]["deleted"], true);
    assert_eq!(items[3]["data"]["after"], Value::Null);
    assert_eq!(items[4]["data"]["forced"], false);
    assert_eq!(items[5]["data"]["code"], "non_fast_forward", "{}", items[5]);
    assert_eq!(items[6]["actor"]["identity"], "alice");
    assert_eq!(items[7]["actor"]["kind"], "operator");
    assert_eq!(items[8]["data"]["pattern"], "refs/heads/main");
    // Where to read on from: past the page's last event, to what the read scanned (a
    // repository's reader moves past other repositories' events).
    assert!(
        page["next_after"].as_u64().unwrap() >= *seqs.last().unwrap(),
        "{page}"
    );

    // The whole log, for a site admin: gap-free from 1, identities and tokens included.
    let site = events(&server, "/api/v1/events?limit=1000", Some(&server.token));
    let site_items = site["items"].as_array().unwrap();
    let all_seqs: Vec<u64> = site_items
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        all_seqs,
        (1..=all_seqs.len() as u64).collect::<Vec<u64>>(),
        "gap-free"
    );
    assert!(
        site_items.iter().any(|e| e["type"] == "identity.added"
            && e["data"]["name"] == "bot"
            && e["data"]["owner"] == "alice"),
        "{site}"
    );
    assert!(
        site_items
            .iter()
            .any(|e| e["type"] == "token.minted" && e["data"]["identity"] == "alice"),
        "{site}"
    );
    // Others see the events of the repositories they may read, and nothing of identities.
    let all = events(&server, "/api/v1/events", Some(&alice));
    let mine = all["items"].as_array().unwrap();
    assert_eq!(mine.len(), 12, "{all}");
    assert!(
        mine.iter()
            .all(|e| e["repo"] == "alice/app" || e["repo"] == "alice/secret")
    );
    let bobs = events(&server, "/api/v1/events", Some(&bob));
    assert_eq!(bobs["items"].as_array().unwrap().len(), 10, "{bobs}");
    assert!(
        bobs["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["repo"] == "alice/app")
    );
    assert_eq!(
        bobs["next_after"],
        *all_seqs.last().unwrap(),
        "skipped events are not read again"
    );
    let anonymous = events(&server, "/api/v1/events", None);
    assert_eq!(
        anonymous["items"].as_array().unwrap().len(),
        0,
        "{anonymous}"
    );
    assert_error(
        &call(
            &server,
            "GET",
            "/api/v1/repos/alice/secret/events",
            Some(&bob),
            None,
        ),
        404,
        "repo_not_found",
        "does not exist",
    );

    // Pages by `after` and `limit`, filtered by type.
    let first = events(
        &server,
        "/api/v1/repos/alice/app/events?limit=4",
        Some(&alice),
    );
    assert_eq!(first["items"].as_array().unwrap().len(), 4);
    assert_eq!(first["next_after"], seqs[3]);
    let rest = events(
        &server,
        &format!("/api/v1/repos/alice/app/events?after={}&limit=100", seqs[3]),
        Some(&alice),
    );
    assert_eq!(rest["items"][0]["seq"], seqs[4]);
    assert_eq!(rest["items"].as_array().unwrap().len(), 6);
    let refused = events(
        &server,
        "/api/v1/events?type=ref.refused,policy.added",
        Some(&alice),
    );
    assert_eq!(
        types_and_refs(&refused),
        ["ref.refused refs/heads/main push", "policy.added - -"]
    );
    assert_error(
        &call(
            &server,
            "GET",
            "/api/v1/events?type=ref.moved",
            Some(&alice),
            None,
        ),
        400,
        "invalid_request",
        "unknown event type \"ref.moved\"",
    );
    assert_error(
        &call(&server, "GET", "/api/v1/events?limit=0", Some(&alice), None),
        400,
        "invalid_request",
        "limit is 1 to 1000",
    );
}

/// A Server-Sent Events connection read frame by frame.
pub(crate) struct Stream {
    reader: std::io::BufReader<std::net::TcpStream>,
}

impl Stream {
    pub(crate) fn open(
        server: &Server,
        path: &str,
        token: &str,
        last_event_id: Option<u64>,
    ) -> (u16, Stream) {
        use std::io::{BufRead, Write};
        let mut tcp = std::net::TcpStream::connect(server.addr()).unwrap();
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let resume = last_event_id.map_or(String::new(), |id| format!("Last-Event-ID: {id}\r\n"));
        write!(
            tcp,
            // HTTP/1.0: the body is not chunked, so its lines are the stream's own.
            "GET {path} HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n{resume}\r\n"
        )
        .unwrap();
        let mut reader = std::io::BufReader::new(tcp);
        let mut status_line = String::new();
        reader.read_line(&mut status_line).unwrap();
        let status = status_line[9..12].parse().unwrap();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        (status, Stream { reader })
    }

    /// The next event: (id, type, data), skipping keep-alive comments; `None` when the
    /// server ended the stream.
    pub(crate) fn next(&mut self) -> Option<(u64, String, Value)> {
        use std::io::BufRead;
        let (mut id, mut kind, mut data) = (None, String::new(), String::new());
        loop {
            let mut line = String::new();
            // The body is chunked: a chunk-size line precedes each piece.
            if self.reader.read_line(&mut line).unwrap() == 0 {
                return None;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if let Some(v) = line
                .strip_prefix("id: ")
                .or_else(|| line.strip_prefix("id:"))
            {
                id = Some(v.trim().parse().unwrap());
            } else if let Some(v) = line
                .strip_prefix("event: ")
                .or_else(|| line.strip_prefix("event:"))
            {
                kind = v.trim().to_owned();
            } else if let Some(v) = line
                .strip_prefix("data: ")
                .or_else(|| line.strip_prefix("data:"))
            {
                data.push_str(v);
            } else if let (true, Some(id)) = (line.is_empty(), id) {
                return Some((id, kind, serde_json::from_str(&data).unwrap()));
            } else if line == "0" && id.is_none() && data.is_empty() {
                // The last chunk.
                let mut end = String::new();
                let _ = self.reader.read_line(&mut end);
                return None;
            }
        }
    }
}

/// A stream sees every event once, in order, across a disconnect and a resume by
/// `Last-Event-ID` during a burst of updates, events made by the `forge` CLI beside the
/// server included; a caller holds a bounded number of streams.
#[test]
fn streams_resume_without_loss_or_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    forge.ok(&["repo", "create", "alice/app"]);
    forge.ok(&["identity", "add", "alice", "--kind", "human"]);
    let server = Server::start_with(&forge, &[]);
    let alice = forge.token(&["--identity", "alice", "--repo", "alice/*", "--ops", "admin"]);
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    common::commit_file(&work, "a", "1", "one");
    let one = git(&work, &["rev-parse", "HEAD"]).trim().to_owned();
    git(
        &work,
        &[
            "push",
            "-q",
            &server.repo_url_with(&alice, "alice/app"),
            "main",
        ],
    );

    let (status, mut stream) = Stream::open(&server, "/api/v1/events/stream?after=0", &alice, None);
    assert_eq!(status, 200);
    let (first, kind, data) = stream.next().unwrap();
    assert_eq!(kind, "repo.created", "{data}");
    let (id, kind, data) = stream.next().unwrap();
    assert_eq!(kind, "ref.updated");
    assert_eq!(data["data"]["ref"], "refs/heads/main");

    // A burst of 1,000 stock-git pushes (two pushers, each a chain of commits on its own
    // branch) while the reader goes away twice and comes back with Last-Event-ID.
    const PUSHES: usize = 500;
    let pushers: Vec<_> = ["left", "right"]
        .into_iter()
        .map(|branch| {
            let dir = tmp.path().join(branch);
            git(
                tmp.path(),
                &[
                    "clone",
                    "-q",
                    &server.repo_url_with(&alice, "alice/app"),
                    dir.to_str().unwrap(),
                ],
            );
            std::thread::spawn(move || {
                let mut pushed = Vec::with_capacity(PUSHES);
                for i in 0..PUSHES {
                    git(
                        &dir,
                        &[
                            "commit",
                            "-q",
                            "--allow-empty",
                            "-m",
                            &format!("{branch} {i}"),
                        ],
                    );
                    git(
                        &dir,
                        &["push", "-q", "origin", &format!("HEAD:refs/heads/{branch}")],
                    );
                    pushed.push(git(&dir, &["rev-parse", "HEAD"]).trim().to_owned());
                }
                (format!("refs/heads/{branch}"), pushed)
            })
        })
        .collect();
    let mut seen: Vec<(u64, String, String)> = vec![
        (first, "-".into(), "-".into()),
        (id, "refs/heads/main".into(), one.clone()),
    ];
    let take = |stream: &mut Stream, n: usize, seen: &mut Vec<(u64, String, String)>| {
        for _ in 0..n {
            let (id, _, data) = stream.next().unwrap();
            seen.push((
                id,
                data["data"]["ref"].as_str().unwrap_or("-").to_owned(),
                data["data"]["after"].as_str().unwrap_or("-").to_owned(),
            ));
        }
    };
    take(&mut stream, 50, &mut seen);
    drop(stream);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (status, mut resumed) = Stream::open(
        &server,
        "/api/v1/events/stream",
        &alice,
        Some(seen.last().unwrap().0),
    );
    assert_eq!(status, 200);
    take(&mut resumed, 200, &mut seen);
    drop(resumed);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (status, mut resumed) = Stream::open(
        &server,
        "/api/v1/events/stream",
        &alice,
        Some(seen.last().unwrap().0),
    );
    assert_eq!(status, 200);
    let pushed: Vec<(String, Vec<String>)> =
        pushers.into_iter().map(|p| p.join().unwrap()).collect();
    // An event of another process: the operator's forge ref set beside the server.
    forge.ok(&["ref", "set", "alice/app", "refs/heads/by-cli", &one]);
    loop {
        let (id, _, data) = resumed.next().unwrap();
        let name = data["data"]["ref"].as_str().unwrap_or("-").to_owned();
        let after = data["data"]["after"].as_str().unwrap_or("-").to_owned();
        seen.push((id, name.clone(), after));
        if name == "refs/heads/by-cli" {
            assert_eq!(data["actor"]["kind"], "operator");
            break;
        }
    }
    // Every event once, in order: each branch's pushes exactly in the order they were made.
    assert!(
        seen.windows(2).all(|w| w[0].0 < w[1].0),
        "ids strictly increase"
    );
    for (branch, commits) in &pushed {
        let got: Vec<&String> = seen
            .iter()
            .filter(|(_, name, _)| name == branch)
            .map(|(_, _, after)| after)
            .collect();
        assert_eq!(got.len(), PUSHES, "{branch}: every push seen once");
        assert!(
            got.iter().zip(commits).all(|(a, b)| *a == b),
            "{branch} in push order"
        );
    }

    // A per-repository stream, and the bound on open streams per identity.
    let (status, _repo_stream) = Stream::open(
        &server,
        "/api/v1/repos/alice/app/events/stream",
        &alice,
        None,
    );
    assert_eq!(status, 200);
    let mut open = Vec::new();
    for _ in 0..14 {
        let (status, s) = Stream::open(&server, "/api/v1/events/stream", &alice, None);
        assert_eq!(status, 200);
        open.push(s);
    }
    let (status, _) = Stream::open(&server, "/api/v1/events/stream", &alice, None);
    assert_eq!(status, 429, "the 17th stream of one identity");
    drop(open);
    let reopened = common::wait_for(std::time::Duration::from_secs(10), || {
        Stream::open(&server, "/api/v1/events/stream", &alice, None).0 == 200
    });
    assert!(reopened, "closed streams free their slots");
    assert_error(
        &call(
            &server,
            "GET",
            "/api/v1/events/stream?type=nope",
            Some(&alice),
            None,
        ),
        400,
        "invalid_request",
        "unknown event type",
    );
}

/// `forge watch` prints events as they happen, from a server's stream and from a data
/// directory, and stops after `--count`.
#[test]
fn forge_watch_follows_a_server_and_a_data_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    forge.ok(&["repo", "create", "alice/app"]);
    let server = Server::start_with(&forge, &[]);
    // Where the log ends now: the watch starts there, whenever it connects.
    let end = events(&server, "/api/v1/events?limit=1000", Some(&server.token))["next_after"]
        .as_u64()
        .unwrap()
        .to_string();
    let mut watcher = forge
        .command(&[
            "--json",
            "watch",
            "--server",
            &server.url,
            "--token",
            &server.token,
            "--type",
            "ref.updated",
            "--after",
            &end,
            "--count",
            "2",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    common::commit_file(&work, "a", "1", "one");
    let url = server.repo_url("alice/app");
    git(
        &work,
        &["push", "-q", &url, "main", "main:refs/heads/second"],
    );
    let finished = common::wait_for(std::time::Duration::from_secs(30), || {
        watcher.try_wait().unwrap().is_some()
    });
    assert!(finished, "the watcher stops after two events");
    let mut out = String::new();
    std::io::Read::read_to_string(watcher.stdout.as_mut().unwrap(), &mut out).unwrap();
    let refs: Vec<String> = out
        .lines()
        .map(|line| {
            let event: Value = serde_json::from_str(line).unwrap();
            event["data"]["ref"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(refs, ["refs/heads/main", "refs/heads/second"], "{out}");

    // From the data directory, from the start, as text.
    let text = forge.ok(&[
        "watch",
        "--after",
        "0",
        "--type",
        "repo.created",
        "--count",
        "1",
    ]);
    assert_eq!(text, "1 repo.created alice/app operator alice/app\n");
    let refused = forge.fails(&["watch", "--type", "ref.moved"]);
    assert!(
        refused.contains("unknown event type \"ref.moved\""),
        "{refused}"
    );
}

/// The log's retention bound: pruned events are gone for good, and a reader asking for
/// them is told so (410), never handed the rest as if it were complete; sequence numbers go
/// on from where they were.
#[test]
fn pruned_events_are_reported_gone() {
    let tmp = tempfile::tempdir().unwrap();
    let forge = Forge::new(&tmp.path().join("data"));
    forge.ok(&["repo", "create", "alice/app"]);
    let server = Server::start_with(&forge, &[]);
    let admin = server.token.clone();
    for i in 0..10 {
        let created = call(
            &server,
            "POST",
            "/api/v1/repos",
            Some(&admin),
            Some(&format!(r#"{{"name": "alice/r{i}"}}"#)),
        );
        assert_eq!(created.status, 201, "{}", created.body);
    }
    let all = events(&server, "/api/v1/events?limit=1000", Some(&admin));
    let seqs: Vec<u64> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    let last = *seqs.last().unwrap();
    assert!(last >= 12, "{seqs:?}");

    let pruned = forge.json(&["events", "prune", "--keep", "4"]);
    let through = pruned["pruned_through"].as_u64().unwrap();
    assert_eq!(through, last - 4, "{pruned}");
    assert_eq!(pruned["removed"].as_u64().unwrap(), last - 4);
    let text = forge.ok(&["events", "prune", "--keep", "4"]);
    assert_eq!(
        text.trim(),
        format!("removed 0 events; the log keeps {} to {last}", through + 1)
    );

    // Without `after`: from the oldest kept. From before it: 410, naming where to resume.
    let kept = events(&server, "/api/v1/events", Some(&admin));
    let kept: Vec<u64> = kept["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(kept, ((through + 1)..=last).collect::<Vec<_>>());
    for path in [
        "/api/v1/events?after=0".to_owned(),
        format!("/api/v1/events?after={}", through - 1),
        "/api/v1/repos/alice/app/events?after=0".to_owned(),
    ] {
        assert_error(
            &call(&server, "GET", &path, Some(&admin), None),
            410,
            "events_pruned",
            &format!(
                "up to {through} were removed by the log's retention bound; read from after={through}"
            ),
        );
    }
    let from_kept = events(
        &server,
        &format!("/api/v1/events?after={through}"),
        Some(&admin),
    );
    assert_eq!(from_kept["items"][0]["seq"], through + 1);
    let (status, _) = Stream::open(&server, "/api/v1/events/stream", &admin, Some(1));
    assert_eq!(status, 410, "a stream resumed from a pruned event");
    let (status, mut stream) =
        Stream::open(&server, "/api/v1/events/stream", &admin, Some(through));
    assert_eq!(status, 200);
    assert_eq!(stream.next().unwrap().0, through + 1);
    let watch = forge
        .command(&["watch", "--after", "0", "--count", "1"])
        .output()
        .unwrap();
    assert!(!watch.status.success());
    assert!(
        String::from_utf8_lossy(&watch.stderr)
            .contains("were removed by the log's retention bound")
    );

    // Everything pruned: the next event still takes the next number.
    forge.ok(&["events", "prune", "--keep", "0"]);
    assert_eq!(
        events(&server, "/api/v1/events", Some(&admin))["items"],
        serde_json::json!([])
    );
    assert_eq!(
        call(
            &server,
            "POST",
            "/api/v1/repos",
            Some(&admin),
            Some(r#"{"name": "alice/after"}"#)
        )
        .status,
        201
    );
    let after = events(&server, "/api/v1/events", Some(&admin));
    assert_eq!(after["items"][0]["seq"], last + 1, "{after}");
    assert_eq!(after["items"][0]["type"], "repo.created");
    let err = forge.fails(&["events", "prune"]);
    assert!(err.contains("--keep N and/or --max-age SPAN"), "{err}");
    let err = forge.fails(&["events", "prune", "--max-age", "soon"]);
    assert!(err.contains("invalid --max-age \"soon\""), "{err}");
    drop(server);

    // The server applies its own bound when it starts (and every ten minutes).
    let server = Server::start_with(
        &forge,
        &["--event-max-count", "0", "--event-max-age", "never"],
    );
    let emptied = common::wait_for(std::time::Duration::from_secs(10), || {
        forge.json(&["events", "prune", "--keep", "1000000"])["pruned_through"].as_u64()
            == Some(last + 1)
    });
    assert!(emptied, "forge serve --event-max-count 0 prunes the log");
    drop(server);
}
