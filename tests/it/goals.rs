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
