//! What authorizing one git request costs the server: credentials parsed, token verified
//! (cold) or found in the verified-token cache (hit), revocation read from the database,
//! and the policy evaluated. `cargo run --release --example auth_cost`.

use std::time::{Duration, Instant, SystemTime};

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use forge::auth::token::{Grant, Narrowing, Op, Scope, attenuate, mint};
use forge::server::auth::{Authenticator, authenticate, decide};
use forge::store::{DataDir, RepoName};

fn main() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let data = DataDir::open_or_init(tmp.path())?;
    let root = forge::auth::root_key(&data)?;
    // The token's identity exists (every request reads its standing).
    let identity = data
        .add_identity(&forge::store::new_identity(
            "agent-42",
            forge::store::IdentityKind::Human,
            None,
        )?)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let one_block = mint(
        &Grant {
            identity: "agent-42".into(),
            scopes: vec![Scope::parse("acme/widgets")?],
            ops: vec![Op::Read, Op::Write],
            ref_globs: vec!["refs/heads/agent/**".into()],
            expires: Some(SystemTime::now() + Duration::from_secs(3600)),
            parents: Vec::new(),
            incarnation: identity.incarnation,
        },
        &root,
    )?;
    let two_blocks = attenuate(
        &one_block,
        &Narrowing {
            ops: vec![Op::Read],
            expires: Some(SystemTime::now() + Duration::from_secs(600)),
            ..Narrowing::default()
        },
    )?;
    let repo = RepoName::parse("acme/widgets")?;
    println!(
        "{:<10} {:>6} {:>14} {:>14}",
        "token", "chars", "cold µs", "cache hit µs"
    );
    for (label, token) in [("1 block", &one_block), ("2 blocks", &two_blocks)] {
        let mut headers = HeaderMap::new();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("x:{token}"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {basic}"))?,
        );
        let request = |auth: &Authenticator| {
            let who =
                authenticate(auth, &data, &headers).map_err(|_| anyhow::anyhow!("refused"))?;
            decide(&who, &repo, false, Op::Read).map_err(|_| anyhow::anyhow!("denied"))
        };
        let warm = Authenticator::new(forge::auth::root_key(&data)?);
        let cold = median_micros(9, 200, || {
            warm.forget_verified();
            request(&warm)
        })?;
        request(&warm)?;
        let hit = median_micros(9, 5000, || request(&warm))?;
        println!("{label:<10} {:>6} {cold:>14.1} {hit:>14.1}", token.len());
        parts(&data, token, &repo)?;
    }
    Ok(())
}

/// The median over `rounds` of the mean time of `n` calls.
fn median_micros(
    rounds: usize,
    n: usize,
    mut f: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<f64> {
    let mut means = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        for _ in 0..n {
            f()?;
        }
        means.push(start.elapsed().as_secs_f64() * 1e6 / n as f64);
    }
    means.sort_by(|a, b| a.total_cmp(b));
    Ok(means[rounds / 2])
}

#[allow(dead_code)]
fn parts(data: &DataDir, token: &str, repo: &RepoName) -> anyhow::Result<()> {
    let root = forge::auth::root_key(data)?;
    let verified = forge::auth::token::verify(token, &root.public())?;
    let revoked = median_micros(9, 5000, || {
        data.any_revoked(&verified.revocation_ids)?;
        Ok(())
    })?;
    let scope = Scope::Repo(repo.clone());
    let authorize = median_micros(9, 5000, || {
        forge::auth::policy::authorize(
            &verified,
            &forge::auth::policy::Request {
                scope: &scope,
                op: Op::Read,
                ref_name: None,
            },
        )
        .map_err(|e| anyhow::anyhow!("{e}"))
    })?;
    println!("  revocation lookup {revoked:.1} µs, policy {authorize:.1} µs");
    Ok(())
}
