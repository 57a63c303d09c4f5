//! Exploration goals: goals, approaches, claims with leases, promotion.

use forge::store::events::{Actor, EventFilter};
use forge::store::goals::{GoalError, NewGoal};
use forge::store::{DataDir, RepoName};

/// Claims taken through a repository reach the data directory's event log, in order, with
/// server time: a claim taken now is live for its bounded TTL.
#[test]
fn claims_through_a_repository_are_timed_by_the_server_and_logged() {
    let tmp = tempfile::tempdir().unwrap();
    let data = DataDir::open_or_init(tmp.path()).unwrap();
    let name = RepoName::parse("alice/app").unwrap();
    data.create_repo(&name).unwrap();
    let repo = data.open_repo(&name).unwrap();
    let alice = Actor {
        identity: Some("alice".into()),
        kind: "human".into(),
    };
    repo.create_goal(
        &NewGoal {
            name: "speed".into(),
            title: "Halve p99".into(),
            description: String::new(),
            target: "refs/heads/main".into(),
            required: Vec::new(),
            max_approaches: None,
            deadline: None,
        },
        &alice,
    )
    .unwrap();
    // No approach yet: nothing to claim.
    assert!(matches!(
        repo.claim("speed", "a", &alice, None),
        Err(GoalError::ApproachNotFound { .. })
    ));
    let goal = repo.meta().find_goal("speed").unwrap().unwrap();
    let now = forge::store::goals::now_ms();
    assert!(goal.created_at <= now && now - goal.created_at < 60_000);
    let types: Vec<String> = data
        .events(&EventFilter {
            limit: 100,
            ..EventFilter::default()
        })
        .unwrap()
        .into_iter()
        .filter(|e| e.repo.as_deref() == Some("alice/app"))
        .map(|e| e.kind.type_name().to_owned())
        .collect();
    assert_eq!(types, ["repo.created", "goal.created"]);
}

use crate::common::{self, Answer, assert_error, call, commit_file, git, try_git};
use crate::policy::World;

const PASSED_BY_CI: &str =
    r#"[{"predicate_type": "test-result", "signers": ["ci-bot"], "result": "PASSED"}]"#;

fn rest(w: &World, method: &str, path: &str, token: &str, body: Option<&str>) -> Answer {
    call(&w.server, method, path, Some(token), body)
}

fn goal_path(goal: &str) -> String {
    format!("/api/v1/repos/alice/app/goals/{goal}")
}

/// Creates goal `name` on main by alice (with `required` evidence) and its approaches.
fn create_goal(w: &World, alice: &str, name: &str, required: &str, approaches: &[&str]) {
    let body = format!(r#"{{"name": "{name}", "title": "Try {name}", "required": {required}}}"#);
    let created = rest(
        w,
        "POST",
        "/api/v1/repos/alice/app/goals",
        alice,
        Some(&body),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["target"], "refs/heads/main");
    for approach in approaches {
        let added = rest(
            w,
            "POST",
            &format!("{}/approaches", goal_path(name)),
            alice,
            Some(&format!(r#"{{"name": "{approach}"}}"#)),
        );
        assert_eq!(added.status, 201, "{}", added.body);
        assert_eq!(added.body["ref"], format!("refs/goals/{name}/{approach}"));
    }
}

fn claim(w: &World, token: &str, goal: &str, approach: &str, ttl_ms: u64) -> Answer {
    rest(
        w,
        "POST",
        &format!("{}/approaches/{approach}/claim", goal_path(goal)),
        token,
        Some(&format!(r#"{{"ttl_ms": {ttl_ms}}}"#)),
    )
}

fn lease_call(
    w: &World,
    token: &str,
    goal: &str,
    approach: &str,
    what: &str,
    lease: u64,
) -> Answer {
    rest(
        w,
        "POST",
        &format!("{}/approaches/{approach}/{what}", goal_path(goal)),
        token,
        Some(&format!(r#"{{"lease": {lease}}}"#)),
    )
}

/// Pushes `HEAD` of `work` to `refs/goals/GOAL/APPROACH` with the lease as a push option.
fn push_approach(
    work: &std::path::Path,
    url: &str,
    goal: &str,
    approach: &str,
    lease: Option<u64>,
) -> (bool, String) {
    let option = lease.map(|l| format!("claim={l}"));
    let refspec = format!("HEAD:refs/goals/{goal}/{approach}");
    let mut args = vec!["push", "-q"];
    if let Some(option) = &option {
        args.extend(["-o", option]);
    }
    args.extend([url, &refspec]);
    try_git(work, &args)
}

fn remote_ref(w: &World, name: &str) -> Option<String> {
    let listed = git(
        &w.work,
        &["ls-remote", &w.server.repo_url("alice/app"), name],
    );
    listed
        .lines()
        .find(|l| l.ends_with(&format!("\t{name}")))
        .map(|l| l[..40].to_owned())
}

/// A ref's commit as REST reads it (faster than `git ls-remote`, for the stress test).
fn rest_ref(w: &World, token: &str, name: &str) -> Option<String> {
    let answer = rest(
        w,
        "GET",
        &format!(
            "/api/v1/repos/alice/app/refs/{}",
            name.trim_start_matches("refs/").replace('/', "%2F")
        ),
        token,
        None,
    );
    answer.body["sha1"].as_str().map(str::to_owned)
}

fn add_agent(w: &World, name: &str) -> String {
    w.forge.ok(&[
        "identity", "add", name, "--kind", "agent", "--owner", "alice",
    ]);
    w.forge.write_token(name, "alice/app")
}

#[test]
fn a_claimed_approach_takes_pushes_from_its_holder_with_the_current_lease_only() {
    let w = World::new();
    let alice = w.forge.write_token("alice", "alice/app");
    create_goal(&w, &alice, "speed", "[]", &["a", "b"]);
    let one = add_agent(&w, "bot-one");
    let two = add_agent(&w, "bot-two");
    let url_one = w.server.repo_url_with(&one, "alice/app");
    let url_two = w.server.repo_url_with(&two, "alice/app");

    let taken = claim(&w, &one, "speed", "a", 5_000);
    assert_eq!(taken.status, 201, "{}", taken.body);
    let lease = taken.body["lease"].as_u64().unwrap();
    assert_eq!(taken.body["holder"], "bot-one");
    assert_eq!(taken.body["ttl_ms"], 5_000);
    assert_error(
        &claim(&w, &two, "speed", "a", 5_000),
        409,
        "approach_claimed",
        &format!("claimed by bot-one (lease {lease})"),
    );

    // Only the holder pushes, and only with its lease.
    let mine = w.commit("mine");
    let (ok, stderr) = push_approach(&w.work, &url_two, "speed", "a", None);
    assert!(!ok);
    assert!(
        stderr.contains(&format!(
            "approach a of goal speed is claimed by bot-one (lease {lease}); only its holder may push to it"
        )),
        "{stderr}"
    );
    let (ok, stderr) = push_approach(&w.work, &url_one, "speed", "a", None);
    assert!(!ok);
    assert!(
        stderr.contains(&format!("push with -o claim={lease}")),
        "{stderr}"
    );
    let (ok, stderr) = push_approach(&w.work, &url_one, "speed", "a", Some(lease));
    assert!(ok, "{stderr}");
    assert_eq!(
        remote_ref(&w, "refs/goals/speed/a").as_deref(),
        Some(mine.as_str())
    );
    // Unclaimed, b takes pushes without a lease; a lease sent for it is refused.
    let (ok, stderr) = push_approach(&w.work, &url_two, "speed", "b", Some(lease));
    assert!(!ok);
    assert!(
        stderr.contains("is not current (the approach is not claimed)"),
        "{stderr}"
    );
    let (ok, stderr) = push_approach(&w.work, &url_two, "speed", "b", None);
    assert!(ok, "{stderr}");
    // Refs of goals that are not approaches are the server's.
    for name in [
        "refs/goals/speed/merge/1",
        "refs/goals/other/a",
        "refs/archive/goals/speed/a",
        "refs/goals/speed/c",
    ] {
        let (ok, stderr) = try_git(&w.work, &["push", "-q", &url_one, &format!("HEAD:{name}")]);
        assert!(!ok, "{name}");
        assert!(
            stderr.contains("goal") || stderr.contains("archive"),
            "{name}: {stderr}"
        );
    }

    // Heartbeats carry the claim past its TTL.
    for _ in 0..4 {
        std::thread::sleep(std::time::Duration::from_millis(1_500));
        let renewed = lease_call(&w, &one, "speed", "a", "heartbeat", lease);
        assert_eq!(renewed.status, 200, "{}", renewed.body);
    }
    assert_error(
        &claim(&w, &two, "speed", "a", 5_000),
        409,
        "approach_claimed",
        "claimed by bot-one",
    );
    // bot-one pauses; its claim lapses by itself and bot-two takes the approach over.
    std::thread::sleep(std::time::Duration::from_millis(5_200));
    assert_error(
        &lease_call(&w, &one, "speed", "a", "heartbeat", lease),
        409,
        "claim_lost",
        &format!("claim lease {lease} on approach a is not current"),
    );
    let over = claim(&w, &two, "speed", "a", 5_000);
    assert_eq!(over.status, 201, "{}", over.body);
    let second = over.body["lease"].as_u64().unwrap();
    assert!(second > lease);
    // The paused agent comes back: its push is refused with the lease reason, nothing lands.
    commit_file(&w.work, "late.txt", "late", "late");
    let (ok, stderr) = push_approach(&w.work, &url_one, "speed", "a", Some(lease));
    assert!(!ok);
    assert!(
        stderr.contains(&format!(
            "claim lease {lease} on approach a is not current (holder bot-two, lease {second})"
        )),
        "{stderr}"
    );
    assert_eq!(
        remote_ref(&w, "refs/goals/speed/a").as_deref(),
        Some(mine.as_str())
    );
    // Over REST too, the lease travels in a header.
    let late = git(&w.work, &["rev-parse", "HEAD"]).trim().to_owned();
    let body = format!(r#"{{"ref": "refs/goals/speed/a", "old": "{mine}", "new": "{late}"}}"#);
    git(&w.work, &["push", "-q", &url_one, "HEAD:refs/heads/late"]);
    let answer = common::raw_http(
        &w.server.addr(),
        format!(
            "POST /api/v1/repos/alice/app/refs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {two}\r\nForge-Claim: {second}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        remote_ref(&w, "refs/goals/speed/a").as_deref(),
        Some(late.as_str())
    );
    // Released, the approach is free at once; the old lease is no longer current.
    let released = lease_call(&w, &two, "speed", "a", "release", second);
    assert_eq!(released.status, 200, "{}", released.body);
    assert_eq!(released.body["live"], false);
    assert_error(
        &lease_call(&w, &two, "speed", "a", "release", second),
        409,
        "claim_lost",
        "is not current",
    );
    let shown = rest(&w, "GET", &goal_path("speed"), &alice, None);
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert_eq!(shown.body["approaches"][0]["tip"], late.as_str());
    assert_eq!(
        shown.body["approaches"][0]["claim"],
        serde_json::Value::Null
    );
}

fn promote(w: &World, token: &str, goal: &str, approach: &str) -> Answer {
    rest(
        w,
        "POST",
        &format!("{}/promote", goal_path(goal)),
        token,
        Some(&format!(r#"{{"approach": "{approach}"}}"#)),
    )
}

fn head_of(w: &World, name: &str) -> String {
    remote_ref(w, name).unwrap_or_else(|| panic!("{name} is not on the server"))
}

/// Commits `file` with `content` on a branch from `base` in the work tree, pushes it to the
/// approach's ref (unclaimed), and returns the commit.
fn work_on(w: &World, base: &str, goal: &str, approach: &str, file: &str, content: &str) -> String {
    git(&w.work, &["checkout", "-q", "--detach", base]);
    commit_file(&w.work, file, content, &format!("{approach}: {file}"));
    let url = w.url("dev-bot");
    let (ok, stderr) = push_approach(&w.work, &url, goal, approach, None);
    assert!(ok, "{stderr}");
    git(&w.work, &["rev-parse", "HEAD"]).trim().to_owned()
}

#[test]
fn promotion_demands_the_goals_evidence_and_fast_forwards_or_merges_through_the_queue() {
    let w = World::new();
    let alice = w.forge.write_token("alice", "alice/app");
    let start = head_of(&w, "refs/heads/main");
    create_goal(&w, &alice, "fast", PASSED_BY_CI, &["a", "b"]);
    let tip = work_on(&w, &start, "fast", "a", "fast.txt", "fast\n");
    work_on(&w, &start, "fast", "b", "slow.txt", "slow\n");

    // Without ci-bot's PASSED result on the tip, the target does not move.
    let refused = promote(&w, &alice, "fast", "a");
    assert_error(
        &refused,
        422,
        "goal_evidence_missing",
        &format!(
            "FORGE-G001: goal fast needs 1 attestation(s) of https://in-toto.io/attestation/test-result/v0.1 with result PASSED by ci-bot on {tip}; found 0"
        ),
    );
    assert_eq!(head_of(&w, "refs/heads/main"), start);
    w.upload("ci-bot", &w.passed("ci-bot", &tip));
    let landed = promote(&w, &alice, "fast", "a");
    assert_eq!(landed.status, 200, "{}", landed.body);
    assert_eq!(landed.body["state"], "landed");
    assert_eq!(landed.body["how"], "fast_forward");
    assert_eq!(head_of(&w, "refs/heads/main"), tip);
    // The goal records its winner; its refs are archived, none is left in refs/goals/.
    let goal = rest(&w, "GET", &goal_path("fast"), &alice, None).body;
    assert_eq!(goal["goal"]["state"], "promoted");
    assert_eq!(goal["goal"]["winner"], "a");
    assert_eq!(goal["goal"]["promoted_commit"], tip.as_str());
    assert_eq!(goal["approaches"][0]["state"], "winner");
    assert_eq!(goal["approaches"][1]["state"], "archived");
    assert_eq!(goal["approaches"][1]["ref"], "refs/archive/goals/fast/b");
    assert!(remote_ref(&w, "refs/goals/fast/a").is_none());
    assert_eq!(head_of(&w, "refs/archive/goals/fast/a"), tip);
    assert_error(
        &promote(&w, &alice, "fast", "b"),
        409,
        "goal_closed",
        "goal fast is promoted",
    );
    let (ok, stderr) = push_approach(&w.work, &w.url("dev-bot"), "fast", "b", None);
    assert!(!ok);
    assert!(
        stderr.contains("goal fast is promoted: its approaches are archived"),
        "{stderr}"
    );

    // A goal whose approaches diverged from main: one conflicts, one merges cleanly.
    create_goal(&w, &alice, "merge", PASSED_BY_CI, &["clean", "clash"]);
    let clean = work_on(&w, &tip, "merge", "clean", "new.txt", "new\n");
    work_on(&w, &tip, "merge", "clash", "a.txt", "theirs\n");
    git(&w.work, &["checkout", "-q", "--detach", &tip]);
    commit_file(&w.work, "a.txt", "ours\n", "main moves on");
    let moved = git(&w.work, &["rev-parse", "HEAD"]).trim().to_owned();
    git(
        &w.work,
        &["push", "-q", &w.url("alice"), "HEAD:refs/heads/main"],
    );
    assert_error(
        &promote(&w, &alice, "merge", "clash"),
        409,
        "merge_conflict",
        "approach clash does not merge cleanly into refs/heads/main: conflicts in a.txt",
    );
    assert_eq!(head_of(&w, "refs/heads/main"), moved);
    assert!(remote_ref(&w, "refs/goals/merge/merge/1").is_none());
    // The clean one's merge waits in the queue for CI; promoting again before it attests
    // refuses with what is missing, on the merge commit.
    let queued = promote(&w, &alice, "merge", "clean");
    assert_eq!(queued.status, 202, "{}", queued.body);
    assert_eq!(queued.body["state"], "queued");
    assert_eq!(queued.body["ref"], "refs/goals/merge/merge/1");
    let merge = queued.body["commit"].as_str().unwrap().to_owned();
    assert_eq!(head_of(&w, "refs/goals/merge/merge/1"), merge);
    assert_eq!(head_of(&w, "refs/heads/main"), moved);
    assert_error(
        &promote(&w, &alice, "merge", "clean"),
        422,
        "goal_evidence_missing",
        &format!("on {merge}; found 0"),
    );
    w.upload("ci-bot", &w.passed("ci-bot", &merge));
    let landed = promote(&w, &alice, "merge", "clean");
    assert_eq!(landed.status, 200, "{}", landed.body);
    assert_eq!(landed.body["how"], "merge_queue");
    assert_eq!(head_of(&w, "refs/heads/main"), merge);
    assert_eq!(head_of(&w, "refs/archive/goals/merge/merge/1"), merge);

    // What stock git clones: the merge of main and the approach, parents in that order,
    // with the tree git's own merge-tree writes; fsck is clean.
    let clone = w.tmp.path().join("clone");
    git(
        w.tmp.path(),
        &[
            "clone",
            "-q",
            &w.server.repo_url("alice/app"),
            clone.to_str().unwrap(),
        ],
    );
    common::assert_fsck_clean(&clone.join(".git"));
    let parents = git(&clone, &["rev-list", "--parents", "-n", "1", "HEAD"]);
    assert_eq!(parents.trim(), format!("{merge} {moved} {clean}"));
    let expected = git(&clone, &["merge-tree", "--write-tree", &moved, &clean]);
    let tree = git(&clone, &["rev-parse", "HEAD^{tree}"]);
    assert_eq!(tree.trim(), expected.trim());
    let message = git(&clone, &["log", "-1", "--format=%s%n%an <%ae>"]);
    assert_eq!(
        message.trim(),
        "Promote approach clean of goal merge\nalice <alice@forge>"
    );
}

/// A goal that demands no evidence lands a merge at once; abandoning a goal archives its
/// approaches and ends their claims; every change is an event, in order.
#[test]
fn merges_land_at_once_without_demanded_evidence_and_abandoned_goals_archive_everything() {
    let w = World::new();
    let alice = w.forge.write_token("alice", "alice/app");
    let start = head_of(&w, "refs/heads/main");
    create_goal(&w, &alice, "quick", "[]", &["x"]);
    let x = work_on(&w, &start, "quick", "x", "x.txt", "x\n");
    git(&w.work, &["checkout", "-q", "--detach", &start]);
    commit_file(&w.work, "m.txt", "m\n", "main moves");
    git(
        &w.work,
        &["push", "-q", &w.url("alice"), "HEAD:refs/heads/main"],
    );
    let moved = git(&w.work, &["rev-parse", "HEAD"]).trim().to_owned();
    let landed = promote(&w, &alice, "quick", "x");
    assert_eq!(landed.status, 200, "{}", landed.body);
    assert_eq!(landed.body["how"], "merge");
    let merge = landed.body["commit"].as_str().unwrap().to_owned();
    assert_eq!(head_of(&w, "refs/heads/main"), merge);
    git(&w.work, &["fetch", "-q", &w.url("alice"), "main"]);
    let parents = git(&w.work, &["rev-list", "--parents", "-n", "1", "FETCH_HEAD"]);
    assert_eq!(parents.trim(), format!("{merge} {moved} {x}"));

    create_goal(&w, &alice, "dead", "[]", &["p", "q"]);
    let bot = add_agent(&w, "bot-dead");
    let taken = claim(&w, &bot, "dead", "p", 60_000);
    assert_eq!(taken.status, 201, "{}", taken.body);
    let abandoned = rest(
        &w,
        "POST",
        &format!("{}/abandon", goal_path("dead")),
        &alice,
        None,
    );
    assert_eq!(abandoned.status, 200, "{}", abandoned.body);
    assert_eq!(abandoned.body["goal"]["state"], "abandoned");
    assert_eq!(
        abandoned.body["archived"],
        serde_json::json!(["refs/archive/goals/dead/p", "refs/archive/goals/dead/q"])
    );
    assert!(remote_ref(&w, "refs/goals/dead/p").is_none());
    assert_eq!(head_of(&w, "refs/archive/goals/dead/q"), merge);
    assert_error(
        &lease_call(
            &w,
            &bot,
            "dead",
            "p",
            "heartbeat",
            taken.body["lease"].as_u64().unwrap(),
        ),
        409,
        "goal_closed",
        "goal dead is abandoned",
    );
    assert_error(
        &rest(
            &w,
            "POST",
            &format!("{}/abandon", goal_path("dead")),
            &alice,
            None,
        ),
        409,
        "goal_closed",
        "it ended already",
    );
    let events = rest(
        &w,
        "GET",
        "/api/v1/repos/alice/app/events?type=goal.created,approach.created,claim.taken,claim.ended,goal.promoted,goal.abandoned",
        &alice,
        None,
    );
    let types: Vec<&str> = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "goal.created",
            "approach.created",
            "goal.promoted",
            "goal.created",
            "approach.created",
            "approach.created",
            "claim.taken",
            "claim.ended",
            "goal.abandoned"
        ],
        "{}",
        events.body
    );
}

/// One provisioned agent as the test drives it: its kit from `POST /api/v1/provision`.
#[derive(Clone)]
struct Agent {
    identity: String,
    approach: String,
    token: String,
    clone_url: String,
    work: std::path::PathBuf,
}

impl Agent {
    fn claim(&self, w: &World) -> Answer {
        claim(w, &self.token, "race", &self.approach, 5_000)
    }

    fn heartbeat(&self, w: &World, lease: u64) -> Answer {
        lease_call(w, &self.token, "race", &self.approach, "heartbeat", lease)
    }

    /// Clones with its URL (stock git), commits `file`, pushes to its approach with `lease`.
    fn work_and_push(&self, file: &str, content: &str, lease: u64) -> (bool, String, String) {
        if !self.work.exists() {
            git(
                self.work.parent().unwrap(),
                &["clone", "-q", &self.clone_url, self.work.to_str().unwrap()],
            );
            git(&self.work, &["config", "user.name", &self.identity]);
            git(
                &self.work,
                &[
                    "config",
                    "user.email",
                    &format!("{}@example.com", self.identity),
                ],
            );
            git(
                &self.work,
                &[
                    "fetch",
                    "-q",
                    "origin",
                    &format!("refs/goals/race/{}", self.approach),
                ],
            );
            git(&self.work, &["checkout", "-q", "--detach", "FETCH_HEAD"]);
        }
        commit_file(
            &self.work,
            file,
            content,
            &format!("{}: {file}", self.identity),
        );
        let head = git(&self.work, &["rev-parse", "HEAD"]).trim().to_owned();
        let (ok, stderr) = push_approach(&self.work, "origin", "race", &self.approach, Some(lease));
        (ok, stderr, head)
    }
}

/// The issue's scenario end to end, with stock git against a real server: a goal with three
/// approaches and five provisioned agents working in parallel threads.
#[test]
fn five_provisioned_agents_race_for_three_approaches_with_stock_git() {
    let w = World::new();
    let alice = w.forge.write_token("alice", "alice/app");
    let start = head_of(&w, "refs/heads/main");
    let created = rest(
        &w,
        "POST",
        "/api/v1/repos/alice/app/goals",
        &alice,
        Some(&format!(
            r#"{{"name": "race", "title": "Make it fast", "required": {PASSED_BY_CI}, "max_approaches": 3}}"#
        )),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    // Everything the goal's repository tells, from here on, on one stream.
    let (status, mut stream) = crate::events::Stream::open(
        &w.server,
        "/api/v1/repos/alice/app/events/stream",
        &alice,
        None,
    );
    assert_eq!(status, 200);

    let provisioned = rest(
        &w,
        "POST",
        "/api/v1/provision",
        &alice,
        Some(
            r#"{"repo": "alice/app", "goal": "race", "agents": 5, "approaches": ["a", "b", "c"], "keys": "generate", "ttl_seconds": 3600}"#,
        ),
    );
    assert_eq!(provisioned.status, 201, "{}", provisioned.body);
    let kits = provisioned.body["agents"].as_array().unwrap();
    assert_eq!(kits.len(), 5);
    let agents: Vec<Agent> = kits
        .iter()
        .map(|kit| {
            let identity = kit["identity"].as_str().unwrap().to_owned();
            assert_eq!(
                kit["ref"],
                format!("refs/goals/race/{}", kit["approach"].as_str().unwrap())
            );
            assert_eq!(kit["secret_key"].as_str().unwrap().len(), 64);
            let env = kit["env"].as_str().unwrap();
            assert!(
                env.contains(&format!("FORGE_TOKEN={}\n", kit["token"].as_str().unwrap())),
                "{env}"
            );
            assert!(
                env.contains(&format!("FORGE_REF={}\n", kit["ref"].as_str().unwrap())),
                "{env}"
            );
            Agent {
                work: w.tmp.path().join(&identity),
                identity,
                approach: kit["approach"].as_str().unwrap().to_owned(),
                token: kit["token"].as_str().unwrap().to_owned(),
                clone_url: kit["clone_url"].as_str().unwrap().to_owned(),
            }
        })
        .collect();
    let approaches: Vec<&str> = agents.iter().map(|a| a.approach.as_str()).collect();
    assert_eq!(approaches, ["a", "b", "c", "a", "b"]);
    let names: Vec<&str> = agents.iter().map(|a| a.identity.as_str()).collect();
    assert_eq!(names, ["race-1", "race-2", "race-3", "race-4", "race-5"]);
    let identity = rest(&w, "GET", "/api/v1/identities/race-4", &alice, None);
    assert_eq!(identity.body["owner"], "alice", "{}", identity.body);
    // A token narrowed to its approach: no other ref, no fourth approach (the goal's bound).
    let (ok, stderr) = try_git(
        &w.work,
        &[
            "push",
            "-q",
            &agents[0].clone_url,
            &format!("{start}:refs/heads/mine"),
        ],
    );
    assert!(!ok && stderr.contains("not allowed by token"), "{stderr}");
    assert_error(
        &claim(&w, &agents[0].token, "race", "b", 5_000),
        403,
        "ref_not_permitted",
        "not allowed by token",
    );
    assert_error(
        &rest(
            &w,
            "POST",
            &format!("{}/approaches", goal_path("race")),
            &alice,
            Some(r#"{"name": "d"}"#),
        ),
        409,
        "too_many_approaches",
        "goal race has its 3 approaches already",
    );

    // Claim races: all five at once; of each pair on one approach, exactly one wins.
    let barrier = std::sync::Barrier::new(5);
    let claims: Vec<Answer> = std::thread::scope(|scope| {
        let handles: Vec<_> = agents
            .iter()
            .map(|agent| {
                let (w, barrier) = (&w, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    agent.claim(w)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut holders: std::collections::BTreeMap<&str, (usize, u64)> = Default::default();
    for (n, answer) in claims.iter().enumerate() {
        match answer.status {
            201 => {
                let previous = holders.insert(
                    agents[n].approach.as_str(),
                    (n, answer.body["lease"].as_u64().unwrap()),
                );
                assert!(previous.is_none(), "two holders of {}", agents[n].approach);
            }
            409 => assert_eq!(answer.body["error"]["code"], "approach_claimed"),
            other => panic!("claim answered {other}: {}", answer.body),
        }
    }
    assert_eq!(holders.len(), 3, "one winner per approach");
    let waiting: Vec<usize> = (0..5)
        .filter(|n| !holders.values().any(|(h, _)| h == n))
        .collect();
    assert_eq!(waiting.len(), 2);

    // The holders work in parallel: clone, commit, push with their leases.
    let pushed: Vec<(String, (bool, String, String))> = std::thread::scope(|scope| {
        let handles: Vec<_> = holders
            .iter()
            .map(|(approach, (n, lease))| {
                let agent = &agents[*n];
                let file = match *approach {
                    // b changes what main will change too: it will conflict.
                    "b" => "a.txt".to_owned(),
                    other => format!("{other}-work.txt"),
                };
                scope.spawn(move || {
                    (
                        approach.to_string(),
                        agent.work_and_push(&file, &format!("{approach}\n"), *lease),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut tips = std::collections::BTreeMap::new();
    for (approach, (ok, stderr, head)) in pushed {
        assert!(ok, "{approach}: {stderr}");
        assert_eq!(head_of(&w, &format!("refs/goals/race/{approach}")), head);
        tips.insert(approach, head);
    }

    // Heartbeats keep every claim past its 5 s TTL, while the waiting agents keep trying.
    let start_beats = std::time::Instant::now();
    while start_beats.elapsed() < std::time::Duration::from_millis(7_500) {
        for (n, lease) in holders.values() {
            let renewed = agents[*n].heartbeat(&w, *lease);
            assert_eq!(renewed.status, 200, "{}", renewed.body);
        }
        for n in &waiting {
            assert_error(&agents[*n].claim(&w), 409, "approach_claimed", "claimed by");
        }
        std::thread::sleep(std::time::Duration::from_millis(1_200));
    }
    // The holder of a stops heartbeating; its claim lapses and a's other agent takes over.
    let (stale, stale_lease) = holders["a"];
    let taker = if stale == 0 { 3 } else { 0 };
    std::thread::sleep(std::time::Duration::from_millis(5_300));
    let taken = agents[taker].claim(&w);
    assert_eq!(taken.status, 201, "{}", taken.body);
    let new_lease = taken.body["lease"].as_u64().unwrap();
    assert!(new_lease > stale_lease);
    // The stale agent comes back: refused with the lease reason, nothing of it lands.
    let (ok, stderr, _) = agents[stale].work_and_push("a-late.txt", "late\n", stale_lease);
    assert!(!ok);
    assert!(
        stderr.contains(&format!(
            "claim lease {stale_lease} on approach a is not current (holder {}, lease {new_lease})",
            agents[taker].identity
        )),
        "{stderr}"
    );
    assert_eq!(head_of(&w, "refs/goals/race/a"), tips["a"]);
    // The new holder builds on what a holds.
    git(
        w.tmp.path(),
        &[
            "clone",
            "-q",
            &agents[taker].clone_url,
            agents[taker].work.to_str().unwrap(),
        ],
    );
    git(
        &agents[taker].work,
        &["fetch", "-q", "origin", "refs/goals/race/a"],
    );
    git(
        &agents[taker].work,
        &["checkout", "-q", "--detach", "FETCH_HEAD"],
    );
    git(&agents[taker].work, &["config", "user.name", "taker"]);
    git(
        &agents[taker].work,
        &["config", "user.email", "taker@example.com"],
    );
    let (ok, stderr, a_tip) = agents[taker].work_and_push("a2.txt", "more\n", new_lease);
    assert!(ok, "{stderr}");
    assert_eq!(head_of(&w, "refs/goals/race/a"), a_tip);

    // Promotion: c lacks the evidence; main moves on; b conflicts; a merges through the queue.
    assert_error(
        &promote(&w, &alice, "race", "c"),
        422,
        "goal_evidence_missing",
        &format!("on {}; found 0", tips["c"]),
    );
    git(&w.work, &["checkout", "-q", "--detach", &start]);
    commit_file(&w.work, "a.txt", "main's own\n", "main moves on");
    let moved = git(&w.work, &["rev-parse", "HEAD"]).trim().to_owned();
    git(
        &w.work,
        &["push", "-q", &w.url("alice"), "HEAD:refs/heads/main"],
    );
    assert_error(
        &promote(&w, &alice, "race", "b"),
        409,
        "merge_conflict",
        "conflicts in a.txt",
    );
    let queued = promote(&w, &alice, "race", "a");
    assert_eq!(queued.status, 202, "{}", queued.body);
    let merge = queued.body["commit"].as_str().unwrap().to_owned();
    // CI (ci-bot) attests the queued merge; promotion then fast-forwards main to it.
    w.upload("ci-bot", &w.passed("ci-bot", &merge));
    let landed = promote(&w, &alice, "race", "a");
    assert_eq!(landed.status, 200, "{}", landed.body);
    assert_eq!(landed.body["how"], "merge_queue");
    assert_eq!(head_of(&w, "refs/heads/main"), merge);
    let clone = w.tmp.path().join("final");
    git(
        w.tmp.path(),
        &[
            "clone",
            "-q",
            &w.server.repo_url("alice/app"),
            clone.to_str().unwrap(),
        ],
    );
    common::assert_fsck_clean(&clone.join(".git"));
    let expected = git(&clone, &["merge-tree", "--write-tree", &moved, &a_tip]);
    assert_eq!(
        git(&clone, &["rev-parse", "HEAD^{tree}"]).trim(),
        expected.trim()
    );
    // The goal's end revoked the agents' tokens.
    let (ok, stderr) = try_git(&w.work, &["ls-remote", &agents[2].clone_url]);
    assert!(!ok, "{stderr}");

    // The stream told all of it, in order.
    let mut seen: Vec<(u64, String, Value)> = Vec::new();
    while !seen.iter().any(|(_, kind, _)| kind == "goal.promoted") {
        seen.push(stream.next().expect("the stream ended early"));
    }
    assert!(seen.windows(2).all(|p| p[0].0 < p[1].0), "in order");
    let kinds: Vec<&str> = seen.iter().map(|(_, k, _)| k.as_str()).collect();
    let position = |kind: &str, from: usize| {
        kinds[from..]
            .iter()
            .position(|k| *k == kind)
            .map(|p| p + from)
            .unwrap_or_else(|| panic!("no {kind} after {from} in {kinds:?}"))
    };
    let created = position("approach.created", 0);
    let first_claim = position("claim.taken", created);
    let takeover = (first_claim + 1..kinds.len())
        .filter(|i| kinds[*i] == "claim.taken")
        .nth(2)
        .expect("three claims and a takeover");
    let refused = position("ref.refused", takeover);
    let queued = position("goal.merge_queued", refused);
    let attested = position("attestation.added", queued);
    let promoted = position("goal.promoted", attested);
    assert_eq!(
        kinds.iter().filter(|k| **k == "approach.created").count(),
        3
    );
    assert_eq!(kinds.iter().filter(|k| **k == "claim.taken").count(), 4);
    assert_eq!(
        seen[refused].2["data"]["code"], "claim_lost",
        "{:?}",
        seen[refused]
    );
    assert_eq!(seen[promoted].2["data"]["winner"], "a");
    assert_eq!(seen[promoted].2["data"]["commit"], merge.as_str());
}

use serde_json::Value;

/// A small deterministic generator (xorshift), seeded per run and printed on failure.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A REST ref update `old → new` of `name`, with the lease in `Forge-Claim` when given.
fn move_ref(w: &World, token: &str, name: &str, old: &str, new: &str, lease: Option<u64>) -> u16 {
    move_ref_answer(w, token, name, old, new, lease).0
}

/// `move_ref`'s status and error code.
fn move_ref_answer(
    w: &World,
    token: &str,
    name: &str,
    old: &str,
    new: &str,
    lease: Option<u64>,
) -> (u16, String) {
    let body = format!(r#"{{"ref": "{name}", "old": "{old}", "new": "{new}"}}"#);
    let header = lease.map_or(String::new(), |l| format!("Forge-Claim: {l}\r\n"));
    let answer = common::raw_http(
        &w.server.addr(),
        format!(
            "POST /api/v1/repos/alice/app/refs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n{header}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    (
        answer.status,
        body["error"]["code"].as_str().unwrap_or("").to_owned(),
    )
}

/// What an agent saw succeed, with the server's times.
#[derive(Debug, Clone)]
enum Seen {
    Claimed {
        approach: String,
        lease: u64,
        holder: String,
        claimed_at: u64,
        expires_at: u64,
    },
    Renewed {
        lease: u64,
        expires_at: u64,
    },
    Released {
        lease: u64,
    },
    Moved {
        approach: String,
    },
}

/// Random interleavings of claim, heartbeat, release, fenced ref updates (with the current
/// lease, a stale one, or none), pauses longer than the TTL and a promotion, by four agents
/// and a promoter at once. Afterwards, from the answers and the event log: no approach ever
/// had two live holders, every accepted update is in the ref's history (none lost), every
/// update of a claimed approach came from its live holder, and the target moved only by
/// the promotion, once.
#[test]
fn claims_and_promotions_hold_their_invariants_under_random_interleavings() {
    let seed = std::env::var("FORGE_STRESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| forge::store::goals::now_ms() | 1);
    eprintln!("stress seed {seed} (FORGE_STRESS_SEED to repeat)");
    let w = World::new();
    let alice = w.forge.write_token("alice", "alice/app");
    let start = head_of(&w, "refs/heads/main");
    // A pool of commits the agents move their approaches between.
    let mut pool = Vec::new();
    for n in 0..24 {
        commit_file(
            &w.work,
            &format!("pool-{n}.txt"),
            format!("{n}\n"),
            &format!("pool {n}"),
        );
        pool.push(git(&w.work, &["rev-parse", "HEAD"]).trim().to_owned());
    }
    git(
        &w.work,
        &["push", "-q", &w.url("alice"), "HEAD:refs/heads/pool"],
    );
    let agents: Vec<(String, String)> = (1..=4)
        .map(|n| {
            let name = format!("stress-bot-{n}");
            let token = add_agent(&w, &name);
            (name, token)
        })
        .collect();
    for round in 0..2u64 {
        let goal = format!("stress-{round}");
        create_goal(&w, &alice, &goal, "[]", &["p", "q"]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(8);
        let seen: Vec<Seen> = std::thread::scope(|scope| {
            let mut handles = Vec::new();
            for (n, (name, token)) in agents.iter().enumerate() {
                let (w, goal, pool) = (&w, &goal, &pool);
                let mut dice = Dice(seed ^ ((round + 1) << 32) ^ ((n as u64 + 1) * 0x9e37_79b9));
                handles.push(scope.spawn(move || {
                    let mut seen = Vec::new();
                    let mut held: Option<(String, u64)> = None;
                    let mut stale: Option<u64> = None;
                    // The first agent takes p and sleeps past its TTL at once: the others
                    // take p over meanwhile, and its writes with the old lease must fail.
                    let mut sleeper = n == 0;
                    let mut stale_answers = Vec::new();
                    if !sleeper {
                        // The sleeper claims first.
                        std::thread::sleep(std::time::Duration::from_millis(300));
                    }
                    while std::time::Instant::now() < deadline {
                        if sleeper && held.is_some() {
                            sleeper = false;
                            let (on, lease) = held.clone().unwrap();
                            std::thread::sleep(std::time::Duration::from_millis(5_100));
                            // Lapsed: wait (a little) for another agent to take it over.
                            for _ in 0..20 {
                                let shown = rest(w, "GET", &goal_path(goal), token, None);
                                let taken = shown.body["approaches"]
                                    .as_array()
                                    .into_iter()
                                    .flatten()
                                    .any(|a| {
                                        a["name"] == on.as_str()
                                            && a["claim"]["holder"]
                                                .as_str()
                                                .is_some_and(|h| h != name.as_str())
                                    });
                                if taken {
                                    break;
                                }
                                std::thread::sleep(std::time::Duration::from_millis(50));
                            }
                            let name = format!("refs/goals/{goal}/{on}");
                            // Until an answer other than a lost compare-and-swap.
                            for _ in 0..20 {
                                let Some(old) = rest_ref(w, token, &name) else {
                                    break;
                                };
                                let new = pool.iter().find(|c| **c != old).unwrap();
                                let (status, code) =
                                    move_ref_answer(w, token, &name, &old, new, Some(lease));
                                if status == 200 {
                                    seen.push(Seen::Moved {
                                        approach: on.clone(),
                                    });
                                }
                                if code != "ref_changed" {
                                    stale_answers.push(code);
                                    break;
                                }
                            }
                        }
                        let approach = if sleeper || dice.below(2) == 0 {
                            "p"
                        } else {
                            "q"
                        };
                        match if sleeper { 0 } else { dice.below(10) } {
                            0..=2 => {
                                let answer = claim(w, token, goal, approach, 5_000);
                                if answer.status == 201 {
                                    let b = &answer.body;
                                    seen.push(Seen::Claimed {
                                        approach: approach.to_owned(),
                                        lease: b["lease"].as_u64().unwrap(),
                                        holder: name.clone(),
                                        claimed_at: b["claimed_at"].as_u64().unwrap(),
                                        expires_at: b["expires_at"].as_u64().unwrap(),
                                    });
                                    stale = held.as_ref().map(|h| h.1);
                                    held =
                                        Some((approach.to_owned(), b["lease"].as_u64().unwrap()));
                                }
                            }
                            3..=4 => {
                                if let Some((on, lease)) = &held {
                                    let answer =
                                        lease_call(w, token, goal, on, "heartbeat", *lease);
                                    if answer.status == 200 {
                                        seen.push(Seen::Renewed {
                                            lease: *lease,
                                            expires_at: answer.body["expires_at"].as_u64().unwrap(),
                                        });
                                    }
                                }
                            }
                            5 => {
                                if let Some((on, lease)) = held.take() {
                                    let answer = lease_call(w, token, goal, &on, "release", lease);
                                    if answer.status == 200 {
                                        seen.push(Seen::Released { lease });
                                    }
                                }
                            }
                            6..=8 => {
                                let on = held.as_ref().map_or(approach.to_owned(), |h| h.0.clone());
                                let name = format!("refs/goals/{goal}/{on}");
                                let Some(old) = rest_ref(w, token, &name) else {
                                    continue;
                                };
                                let new = &pool[dice.below(pool.len() as u64) as usize];
                                if *new == old {
                                    continue;
                                }
                                let lease = match dice.below(4) {
                                    0 => None,
                                    1 => stale,
                                    _ => held.as_ref().map(|h| h.1),
                                };
                                if move_ref(w, token, &name, &old, new, lease) == 200 {
                                    seen.push(Seen::Moved { approach: on });
                                }
                            }
                            _ => {
                                // A pause: long enough, sometimes, for the claim to lapse;
                                // back from it, the agent writes at once with the lease it
                                // had (another may hold the approach now).
                                let long = dice.below(3) == 0;
                                let pause = if long { 5_500 } else { 150 };
                                std::thread::sleep(std::time::Duration::from_millis(pause));
                                if let (true, Some((on, lease))) = (long, &held) {
                                    let name = format!("refs/goals/{goal}/{on}");
                                    let Some(old) = rest_ref(w, token, &name) else {
                                        continue;
                                    };
                                    let new = &pool[dice.below(pool.len() as u64) as usize];
                                    if *new != old
                                        && move_ref(w, token, &name, &old, new, Some(*lease)) == 200
                                    {
                                        seen.push(Seen::Moved {
                                            approach: on.clone(),
                                        });
                                    }
                                }
                            }
                        }
                    }
                    if n == 0 {
                        assert_eq!(
                            stale_answers,
                            ["claim_lost"],
                            "seed {seed}: the sleeper's write with its lapsed lease"
                        );
                    }
                    seen
                }));
            }
            let (w, goal, alice) = (&w, &goal, &alice);
            let mut dice = Dice(seed ^ 0x5151 ^ round);
            scope.spawn(move || {
                // After the sleeper's stale write (at about 5.9 s).
                std::thread::sleep(std::time::Duration::from_millis(6_500 + dice.below(1_200)));
                let approach = if dice.below(2) == 0 { "p" } else { "q" };
                let answer = promote(w, alice, goal, approach);
                assert_eq!(answer.status, 200, "seed {seed}: {}", answer.body);
            });
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        check_stress_round(&w, &alice, &goal, &seen, seed);
    }
    // The target moved only by the promotions, once per goal.
    let events = rest(
        &w,
        "GET",
        "/api/v1/repos/alice/app/events?type=ref.updated&limit=1000",
        &alice,
        None,
    );
    let main: Vec<&Value> = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["data"]["ref"] == "refs/heads/main")
        .collect();
    let vias: Vec<&str> = main
        .iter()
        .map(|e| e["data"]["via"].as_str().unwrap())
        .collect();
    assert_eq!(vias, ["push", "promotion", "promotion"], "seed {seed}");
    assert_ne!(head_of(&w, "refs/heads/main"), start);
}

fn check_stress_round(w: &World, alice: &str, goal: &str, seen: &[Seen], seed: u64) {
    let fail = |what: String| panic!("seed {seed}, goal {goal}: {what}");
    // The last known end of each claim (its heartbeats moved it), and whether it was released.
    let mut claims: Vec<(String, u64, String, u64, u64, bool)> = Vec::new();
    for s in seen {
        if let Seen::Claimed {
            approach,
            lease,
            holder,
            claimed_at,
            expires_at,
        } = s
        {
            claims.push((
                approach.clone(),
                *lease,
                holder.clone(),
                *claimed_at,
                *expires_at,
                false,
            ));
        }
    }
    for s in seen {
        match s {
            Seen::Renewed { lease, expires_at } => {
                let c = claims.iter_mut().find(|c| c.1 == *lease).unwrap();
                c.4 = c.4.max(*expires_at);
            }
            Seen::Released { lease } => claims.iter_mut().find(|c| c.1 == *lease).unwrap().5 = true,
            _ => {}
        }
    }
    claims.sort_by_key(|c| c.1);
    let leases: Vec<u64> = claims.iter().map(|c| c.1).collect();
    let mut unique = leases.clone();
    unique.dedup();
    if unique != leases {
        fail(format!("a lease given twice: {leases:?}"));
    }
    for approach in ["p", "q"] {
        let on: Vec<_> = claims.iter().filter(|c| c.0 == approach).collect();
        for pair in on.windows(2) {
            let (before, after) = (pair[0], pair[1]);
            if !before.5 && after.3 < before.4 {
                fail(format!(
                    "two holders of {approach}: lease {} live until {} ms, lease {} taken at {} ms",
                    before.1, before.4, after.1, after.3
                ));
            }
        }
    }
    // The event log: every accepted update of an approach, chained (none lost), each by the
    // live holder when the approach was claimed.
    let events = rest(
        w,
        "GET",
        "/api/v1/repos/alice/app/events?type=ref.updated,claim.taken,claim.released,claim.ended,goal.promoted&limit=1000",
        alice,
        None,
    );
    let items = events.body["items"].as_array().unwrap();
    for approach in ["p", "q"] {
        let name = format!("refs/goals/{goal}/{approach}");
        let mut tip: Option<String> = None;
        let mut accepted = 0;
        let mut holder: Option<(u64, String)> = None;
        for event in items {
            let data = &event["data"];
            match event["type"].as_str().unwrap() {
                "claim.taken" if data["goal"] == goal && data["approach"] == approach => {
                    holder = Some((
                        data["lease"].as_u64().unwrap(),
                        data["holder"].as_str().unwrap().to_owned(),
                    ));
                }
                "claim.released" | "claim.ended"
                    if data["goal"] == goal && data["approach"] == approach =>
                {
                    holder = None;
                }
                "ref.updated" if data["ref"] == name.as_str() => {
                    if let Some(before) = &tip
                        && data["before"] != before.as_str()
                    {
                        fail(format!(
                            "{name} moved from {} though it was at {before}",
                            data["before"]
                        ));
                    }
                    tip = data["after"].as_str().map(str::to_owned);
                    // The approach's creation, and the promotion's archiving, are not agents'.
                    if data["via"] != "rest" || data["created"] == true {
                        continue;
                    }
                    accepted += 1;
                    if let Some((lease, who)) = &holder {
                        let end = claims.iter().find(|c| c.1 == *lease).map_or(0, |c| c.4);
                        let at = event["at"].as_u64().unwrap();
                        if at < end && event["actor"]["identity"] != who.as_str() {
                            fail(format!(
                                "{} moved {name} while {who} held it (lease {lease}, live until {end}, update at {at})",
                                event["actor"]["identity"]
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
        let answered = seen
            .iter()
            .filter(|s| matches!(s, Seen::Moved { approach: a } if a == approach))
            .count();
        if accepted != answered {
            fail(format!(
                "{answered} updates of {name} answered 200, {accepted} in its history"
            ));
        }
    }
    let shown = rest(w, "GET", &goal_path(goal), alice, None);
    assert_eq!(
        shown.body["goal"]["state"], "promoted",
        "seed {seed}: {}",
        shown.body
    );
}

/// The `--json` error a failing forge command prints: `{code, message}`.
fn fails_json(forge: &common::Forge, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = forge.run(&all);
    assert!(!out.status.success(), "forge {args:?} should fail");
    serde_json::from_slice::<Value>(&out.stdout).expect("a JSON error")["error"].clone()
}

/// The operator's `forge goal` and `forge provision`, with `--json`, on the data directory
/// a server is serving: what they do is what REST and stock git see.
#[test]
fn the_goal_commands_drive_a_goal_from_the_data_directory() {
    let w = World::new();
    let f = &w.forge;
    let created = f.json(&[
        "goal",
        "create",
        "alice/app",
        "cli",
        "--title",
        "By hand",
        "--require",
        "test-result",
        "--signers",
        "ci-bot",
        "--result",
        "PASSED",
        "--as",
        "alice",
    ]);
    assert_eq!(created["goal"]["target"], "refs/heads/main");
    assert_eq!(created["goal"]["created_by"], "alice");
    assert_eq!(
        created["goal"]["required"][0]["predicate_type"],
        "https://in-toto.io/attestation/test-result/v0.1"
    );
    let added = f.json(&["goal", "approach", "alice/app", "cli", "one"]);
    assert_eq!(added["ref"], "refs/goals/cli/one");
    let refused = fails_json(f, &["goal", "approach", "alice/app", "cli", "merge"]);
    assert_eq!(refused["code"], "invalid_goal");
    assert!(
        refused["message"].as_str().unwrap().contains("reserved"),
        "{refused}"
    );
    let env_dir = w.tmp.path().join("agents");
    let kits = f.json(&[
        "provision",
        "alice/app",
        "cli",
        "--owner",
        "alice",
        "--agents",
        "2",
        "--approaches",
        "one,two",
        "--url",
        &w.server.url,
        "--env-dir",
        env_dir.to_str().unwrap(),
    ]);
    let agents = kits["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 2);
    assert_eq!(agents[1]["agent"]["ref"], "refs/goals/cli/two");
    let env = std::fs::read_to_string(env_dir.join("cli-2.env")).unwrap();
    assert!(env.contains("FORGE_REF=refs/goals/cli/two\n"), "{env}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(env_dir.join("cli-2.env"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // The agent claims through REST, the operator renews and releases on its behalf.
    let clone_url = agents[1]["clone_url"].as_str().unwrap();
    let token = agents[1]["agent"]["token"].as_str().unwrap();
    let taken = claim(&w, token, "cli", "two", 60_000);
    assert_eq!(taken.status, 201, "{}", taken.body);
    let lease = taken.body["lease"].as_u64().unwrap().to_string();
    let shown = f.json(&["goal", "show", "alice/app", "cli"]);
    assert_eq!(shown["approaches"][1]["claim"]["holder"], "cli-2");
    let renewed = f.json(&[
        "goal",
        "heartbeat",
        "alice/app",
        "cli",
        "two",
        "--lease",
        &lease,
        "--as",
        "cli-2",
    ]);
    assert_eq!(renewed["claim"]["heartbeats"], 1);
    let stranger = fails_json(
        f,
        &[
            "goal",
            "heartbeat",
            "alice/app",
            "cli",
            "two",
            "--lease",
            &lease,
            "--as",
            "bob",
        ],
    );
    assert_eq!(stranger["code"], "claim_lost", "{stranger}");
    commit_file(&w.work, "two.txt", "two\n", "two");
    let tip = git(&w.work, &["rev-parse", "HEAD"]).trim().to_owned();
    let (ok, stderr) = push_approach(
        &w.work,
        clone_url,
        "cli",
        "two",
        taken.body["lease"].as_u64(),
    );
    assert!(ok, "{stderr}");
    f.json(&[
        "goal",
        "release",
        "alice/app",
        "cli",
        "two",
        "--lease",
        &lease,
        "--as",
        "cli-2",
    ]);
    // Promotion by hand demands the goal's evidence as REST's does.
    let missing = fails_json(f, &["goal", "promote", "alice/app", "cli", "two"]);
    assert_eq!(missing["code"], "goal_evidence_missing");
    assert!(
        missing["message"]
            .as_str()
            .unwrap()
            .starts_with("FORGE-G001"),
        "{missing}"
    );
    w.upload("ci-bot", &w.passed("ci-bot", &tip));
    let landed = f.json(&[
        "goal",
        "promote",
        "alice/app",
        "cli",
        "two",
        "--as",
        "alice",
    ]);
    assert_eq!(landed["state"], "landed");
    assert_eq!(landed["how"], "fast_forward");
    assert_eq!(head_of(&w, "refs/heads/main"), tip);
    let listed = f.json(&["goal", "list", "alice/app"]);
    assert_eq!(listed["goals"][0]["state"], "promoted");
    assert_eq!(listed["goals"][0]["winner"], "two");
    // The goal's end revoked the agents' tokens.
    let (ok, _) = try_git(&w.work, &["ls-remote", clone_url]);
    assert!(!ok);
    let again = fails_json(f, &["goal", "abandon", "alice/app", "cli"]);
    assert_eq!(again["code"], "goal_closed");
}

/// Agents provisioned over REST stop with the token that provisioned them; a supplied
/// public key becomes the agent's; a refused provisioning makes nothing.
#[test]
fn revoking_the_provisioning_token_revokes_its_agents() {
    let w = World::new();
    let alice = w.forge.write_token("alice", "alice/app");
    create_goal(&w, &alice, "kit", "[]", &["a"]);
    let key_file = w.tmp.path().join("kit.key");
    let public = w.forge.ok(&["keygen", "--out", key_file.to_str().unwrap()]);
    let body = |keys: &str| {
        format!(r#"{{"repo": "alice/app", "goal": "kit", "agents": 1, "public_keys": [{keys}]}}"#)
    };
    let refused = rest(
        &w,
        "POST",
        "/api/v1/provision",
        &alice,
        Some(&body(r#""zz""#)),
    );
    assert_error(&refused, 400, "invalid_provision", "public key");
    let before = w.forge.json(&["identity", "list"]);
    assert!(!before.to_string().contains("kit-1"), "{before}");
    let made = rest(
        &w,
        "POST",
        "/api/v1/provision",
        &alice,
        Some(&body(&format!("\"{}\"", public.trim()))),
    );
    assert_eq!(made.status, 201, "{}", made.body);
    let agent = &made.body["agents"][0];
    assert_eq!(agent["public_key"], public.trim());
    assert_eq!(agent["secret_key"], Value::Null);
    let url = agent["clone_url"].as_str().unwrap();
    let (ok, stderr) = try_git(&w.work, &["ls-remote", url]);
    assert!(ok, "{stderr}");
    // Its token uploads what it signs with its key (the evidence a goal may demand).
    let main = head_of(&w, "refs/heads/main");
    let envelope = w.forge.attest_sign(
        &key_file,
        &main,
        None,
        "https://in-toto.io/attestation/test-result/v0.1",
        r#"{"result": "PASSED", "configuration": []}"#,
    );
    let uploaded = common::post_json(
        &w.server.addr(),
        "/api/v1/repos/alice/app/attestations",
        &format!("Bearer {}", agent["token"].as_str().unwrap()),
        envelope.trim(),
    );
    assert_eq!(uploaded.status, 201, "{}", uploaded.text());
    let revoked = rest(
        &w,
        "POST",
        "/api/v1/tokens/revoke",
        &alice,
        Some(&format!(r#"{{"token": "{alice}"}}"#)),
    );
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let (ok, _) = try_git(&w.work, &["ls-remote", url]);
    assert!(
        !ok,
        "the agent's token outlived the token that provisioned it"
    );
}
