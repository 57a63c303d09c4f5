//! What the gate costs one ref update when the repository keeps 10,000 attestations and
//! five rules match the ref (every one restricting updaters, demanding fast-forwards,
//! linear history and evidence): a fast-forward of `main` onto a
//! commit that has what the rules need. `cargo run --release --example gate_cost`.
//!
//! Measured: `decide` alone (the context already read, as a push with several refs reuses
//! it), and `decide` with its context read first (what one REST ref update or a one-ref
//! push pays: refs, settings, rules and the registry's identities).

use std::process::Command;
use std::time::Instant;

use forge::gate::{self, Caller, Claim, NewValue, Proposal, RefChange, StoredContext, Via};
use forge::history::CommitGraph;
use forge::object::Sha1;
use forge::progress::Progress;
use forge::store::backend::{AttestationRecord, AttestationSigner};
use forge::store::events::Actor;
use forge::store::policy::{RefRule, RequiredAttestation, Signers};
use forge::store::{DataDir, Identity, IdentityKey, IdentityKind, RefTarget, RepoName};

const TEST_RESULT: &str = "https://in-toto.io/attestation/test-result/v0.1";

fn git(dir: &std::path::Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output()?;
    anyhow::ensure!(out.status.success(), "git {args:?} failed");
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let work = tmp.path().join("work");
    std::fs::create_dir(&work)?;
    git(&work, &["init", "-q", "-b", "main"])?;
    for n in 0..3 {
        std::fs::write(work.join("a.txt"), format!("{n}\n"))?;
        git(&work, &["add", "a.txt"])?;
        git(
            &work,
            &[
                "-c",
                "user.name=b",
                "-c",
                "user.email=b@b",
                "commit",
                "-qm",
                &format!("c{n}"),
            ],
        )?;
    }
    let tip = Sha1::from_hex(git(&work, &["rev-parse", "HEAD"])?.as_bytes())?;
    let parent = Sha1::from_hex(git(&work, &["rev-parse", "HEAD~1"])?.as_bytes())?;
    git(&work, &["branch", "tip", &tip.to_hex()])?;
    git(&work, &["update-ref", "refs/heads/main", &parent.to_hex()])?;

    let data = DataDir::open_or_init(&tmp.path().join("data"))?;
    let name = RepoName::parse("bench/gate")?;
    let (repo, _) = data.open_or_create_repo(&name)?;
    forge::import::import(&repo, &work.join(".git"), &Progress::new(false))?;
    let signers = ["ci-bot", "alice", "bob", "carol", "dave"];
    for (n, signer) in signers.iter().enumerate() {
        data.add_identity(&Identity {
            name: (*signer).into(),
            kind: IdentityKind::Human,
            owner: None,
            keys: vec![IdentityKey {
                key: format!("{:064x}", n + 1),
                added_at: 0,
                revoked_at: None,
            }],
            created_at: 0,
            disabled: false,
            incarnation: 0,
        })?;
    }
    // Five rules matching refs/heads/main, each requiring evidence of the tip.
    for pattern in [
        "refs/heads/main",
        "refs/heads/*",
        "refs/heads/**",
        "refs/**",
        "refs/*/main",
    ] {
        repo.add_rule(
            RefRule {
                pattern: pattern.into(),
                updaters: Some(vec![Signers::Identity("eve".into())]),
                fast_forward_only: true,
                linear_history: true,
                required: vec![RequiredAttestation {
                    predicate_type: TEST_RESULT.into(),
                    signers: vec![
                        Signers::Identity("ci-bot".into()),
                        Signers::Kind(IdentityKind::Human),
                    ],
                    min_signers: 2,
                    result: Some("PASSED".into()),
                    not_pusher: true,
                }],
                ..RefRule::default()
            },
            &Actor::operator(),
        )?;
    }
    // 10,000 attestations: 9,990 about other commits, 10 about the tip.
    // Envelopes of 888 bytes of JSON, larger than the forge's own test results (569 bytes,
    // 657 with a tree subject).
    let envelope = format!(
        r#"{{"payload":"{}","payloadType":"application/vnd.in-toto+json","signatures":[{{"keyid":"{}","sig":"{}"}}]}}"#,
        "e".repeat(640),
        "k".repeat(64),
        "s".repeat(88)
    );
    let record = |n: u64, commit: String, signer: usize| AttestationRecord {
        id: format!("{n:064x}"),
        commits: vec![commit],
        predicate_type: TEST_RESULT.into(),
        signers: vec![AttestationSigner {
            identity: signers[signer].into(),
            key: format!("{:064x}", signer + 1),
        }],
        uploaded_by: signers[signer].into(),
        stored_at: n,
        summary: Some("PASSED".into()),
        envelope: envelope.clone(),
    };
    let mut records: Vec<AttestationRecord> = (0..9_990u64)
        .map(|n| record(n, format!("{:040x}", n * 7919 + 1), (n % 5) as usize))
        .collect();
    records.extend((0..10u64).map(|n| record(20_000 + n, tip.to_hex(), (n % 5) as usize)));
    for chunk in records.chunks(1000) {
        repo.record_attestations(chunk, &Actor::operator())?;
    }
    let old = repo.id_of_sha1(&parent).expect("imported");
    let new = repo.id_of_sha1(&tip).expect("imported");
    let proposal = Proposal {
        via: Via::Push,
        caller: Caller::Identity {
            name: "eve".into(),
            kind: Some(IdentityKind::Agent),
        },
        changes: vec![RefChange {
            name: "refs/heads/main".into(),
            claim: Claim::Target(RefTarget::Direct(old)),
            new: NewValue::Set(RefTarget::Direct(new)),
        }],
        goal: forge::gate::GoalPart::default(),
    };
    let anything = |_: &str| Ok(());
    let mut graph = CommitGraph::default();
    const ROUNDS: usize = 2_000;

    let mut ctx = StoredContext::new(&repo, &mut graph, &data, &anything)?;
    let verdict = gate::decide(&mut ctx, &proposal)?;
    anyhow::ensure!(
        verdict[0].is_ok(),
        "the tip's evidence must satisfy the rules: {verdict:?}"
    );
    let mut alone = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let verdict = gate::decide(&mut ctx, &proposal)?;
        alone.push(started.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(verdict);
    }
    drop(ctx);
    let mut with_context = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let mut ctx = StoredContext::new(&repo, &mut graph, &data, &anything)?;
        let verdict = gate::decide(&mut ctx, &proposal)?;
        with_context.push(started.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(verdict);
    }
    println!(
        "10,000 attestations stored (10 about the new tip), 5 matching rules, {ROUNDS} rounds"
    );
    println!("decide, context read:   median {:.1} µs", median(alone));
    println!(
        "decide with its context: median {:.1} µs",
        median(with_context)
    );
    Ok(())
}
