//! `forge pipeline run`: the steps of `.forge/pipeline.toml` at a commit run in a clean
//! checkout of it, and the signed test result lets a protected branch move.

use crate::common;

use crate::policy::World;
use base64::Engine;
use common::{commit_file, git};
use serde_json::Value;

const PIPELINE: &str = r#"
[[step]]
name = "unit"
command = "echo 'test result: ok. 3 passed; 0 failed; 0 ignored'; grep -q committed a.txt"

[[step]]
name = "clean-env"
command = "test -z \"$SECRET_FOR_TEST\" && test -n \"$FORGE_PIPELINE_COMMIT\""

[[step]]
name = "lint"
command = "echo lint failed; exit 3"
required = false

[[step]]
name = "hangs"
command = "sleep 30 & sleep 30; wait"
timeout = 1
required = false
"#;

#[test]
fn a_pipeline_run_signs_the_evidence_a_protected_branch_needs() {
    let w = World::new();
    let (forge, server, work) = (&w.forge, &w.server, &w.work);
    let key = w.tmp.path().join("ci-bot.key");
    w.protect_main();

    std::fs::create_dir(work.join(".forge")).unwrap();
    std::fs::write(work.join(".forge/pipeline.toml"), PIPELINE).unwrap();
    commit_file(work, "a.txt", "committed\n", "with a pipeline");
    let commit = git(work, &["rev-parse", "HEAD"]).trim().to_owned();
    let tree = git(work, &["rev-parse", "HEAD^{tree}"]).trim().to_owned();
    let config = git(work, &["rev-parse", "HEAD:.forge/pipeline.toml"])
        .trim()
        .to_owned();
    let url = server.repo_url_with(&forge.write_token("alice", "alice/app"), "alice/app");
    git(work, &["push", "-q", &url, "main:refs/heads/topic"]);
    // An uncommitted change the steps must not see, and a secret they must not inherit.
    std::fs::write(work.join("a.txt"), "dirty\n").unwrap();

    let ci_token = forge.write_token("ci-bot", "alice/app");
    // `forge pipeline run` uploading to the repository's URL (with `suffix`) as ci-bot.
    let run_and_upload = |suffix: &str, env: &[(&str, &str)]| {
        let upload = format!("{}/alice/app{suffix}", server.url);
        let mut command = forge.command(&[
            "pipeline",
            "run",
            "--key",
            key.to_str().unwrap(),
            "--upload",
            &upload,
            "--token",
            &ci_token,
        ]);
        command.current_dir(work).envs(env.iter().copied());
        command.output().unwrap()
    };
    let started = std::time::Instant::now();
    let out = run_and_upload("", &[("SECRET_FOR_TEST", "leaked")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("PASSED: uploaded attestation "),
        "{stdout}"
    );
    assert!(
        stdout.trim_end().ends_with(&format!("about {commit}")),
        "{stdout}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "the hanging step's process group was not killed at its timeout"
    );
    assert_eq!(
        std::fs::read_to_string(work.join("a.txt")).unwrap(),
        "dirty\n"
    );
    let worktrees = git(work, &["worktree", "list"]);
    assert_eq!(
        worktrees.lines().count(),
        1,
        "the checkout was not removed: {worktrees}"
    );

    // What was signed: the commit and its tree, the pipeline file, each step.
    let listed = forge.json(&["attest", "list", "alice/app", &commit]);
    assert_eq!(listed["attestations"][0]["summary"], "PASSED", "{listed}");
    let answer = common::raw_http(
        &server.addr(),
        format!(
            "GET /api/v1/repos/alice/app/commits/{commit}/attestations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ci_token}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    let body: Value = serde_json::from_slice(&answer.body).unwrap();
    let payload = body["attestations"][0]["envelope"]["payload"]
        .as_str()
        .unwrap();
    let payload = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .unwrap();
    let statement: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        statement["subject"][0]["digest"]["gitCommit"],
        commit.as_str()
    );
    assert_eq!(statement["subject"][1]["digest"]["gitTree"], tree.as_str());
    let predicate = &statement["predicate"];
    assert_eq!(predicate["result"], "PASSED");
    assert_eq!(
        predicate["configuration"][0]["digest"]["gitBlob"],
        config.as_str()
    );
    assert_eq!(
        predicate["passedTests"],
        serde_json::json!(["unit", "clean-env"])
    );
    assert_eq!(
        predicate["failedTests"],
        serde_json::json!(["lint", "hangs"])
    );
    let steps = predicate["steps"].as_array().unwrap();
    assert_eq!(steps[0]["passedCount"], 3);
    assert_eq!(steps[0]["failedCount"], 0);
    assert_eq!(steps[2]["exitCode"], 3);
    assert_eq!(steps[2]["outputTail"], "lint failed\n");
    assert_eq!(steps[3]["timedOut"], true);
    assert_eq!(steps[3]["exitCode"], Value::Null);

    // The evidence lets main move.
    let (ok, stderr) = common::try_git(work, &["push", &url, "main"]);
    assert!(ok, "{stderr}");

    // A required step that fails: FAILED, exit 1, and main does not move to it.
    std::fs::write(
        work.join(".forge/pipeline.toml"),
        "[[step]]\nname = \"unit\"\ncommand = \"exit 1\"\n",
    )
    .unwrap();
    git(work, &["checkout", "-q", "--", "a.txt"]);
    commit_file(work, "b.txt", "two\n", "breaks the tests");
    git(work, &["push", "-q", &url, "main:refs/heads/topic"]);
    let out = run_and_upload(".git", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("FAILED: uploaded"));
    let (ok, stderr) = common::try_git(work, &["push", &url, "main"]);
    assert!(!ok);
    assert!(stderr.contains("FORGE-P003"), "{stderr}");

    // No pipeline file: a clear error.
    let out = forge
        .command(&[
            "pipeline",
            "run",
            "--key",
            key.to_str().unwrap(),
            "--commit",
            "HEAD~2",
        ])
        .current_dir(work)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(".forge/pipeline.toml at"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
