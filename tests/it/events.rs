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
    assert_eq!(seqs, (1..=9).collect::<Vec<u64>>(), "gap-free, in order");
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
    assert_eq!(page["next_after"], 9);

    // The site-wide log holds the private repository's event too, for those who may read it.
    let all = events(&server, "/api/v1/events", Some(&alice));
    assert_eq!(all["items"].as_array().unwrap().len(), 10, "{all}");
    assert_eq!(all["items"][9]["repo"], "alice/secret");
    let bobs = events(&server, "/api/v1/events", Some(&bob));
    assert_eq!(bobs["items"].as_array().unwrap().len(), 9, "{bobs}");
    assert!(
        bobs["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["repo"] == "alice/app")
    );
    assert_eq!(bobs["next_after"], 10, "skipped events are not read again");
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
    assert_eq!(first["next_after"], 4);
    let rest = events(
        &server,
        "/api/v1/repos/alice/app/events?after=4&limit=100",
        Some(&alice),
    );
    assert_eq!(rest["items"][0]["seq"], 5);
    assert_eq!(rest["items"].as_array().unwrap().len(), 5);
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
