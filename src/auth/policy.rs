//! Authorizing one request against a verified token: the forge's policy, evaluated on
//! every request (expiry and narrowing stay live; nothing is cached here). At run time the
//! token's compiled form decides (`compiled.rs`); `datalog` states the same policy in
//! biscuit's Datalog, and the tests hold the two to the same answers.

pub use super::rights::{Denied, Request};
use super::token::VerifiedToken;

/// Runs the forge's policy and every check of `token` for `request`, now.
pub fn authorize(token: &VerifiedToken, request: &Request<'_>) -> Result<(), Denied> {
    token
        .compiled
        .authorize(request, std::time::SystemTime::now())
}

/// The policy in biscuit's Datalog: the specification the compiled evaluation is tested
/// against.
#[cfg(test)]
pub mod datalog {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::time::Duration;

    use biscuit_auth::builder::Term;
    use biscuit_auth::datalog::ExternFunc;
    use biscuit_auth::error::{FailedCheck, Logic, Token as TokenFailure};
    use biscuit_auth::{AuthorizerBuilder, AuthorizerLimits};

    use super::{Denied, Request};
    use crate::auth::token::{Scope, VerifiedToken};

    /// Rights come from the authority block (`right`, `ref_glob`, `no_ref_limit`); the
    /// request facts (`operation`, `scope`, `ref_op`, `ref`, `time`) from the server.
    const POLICY: &str = r#"
allowed($op) <- operation($op), scope($s), right($s, $op);
allowed($op) <- operation($op), scope($s), right($s, "admin");
allowed("read") <- operation("read"), scope($s), right($s, "write");
check if ref_op(false)
      or no_ref_limit(true)
      or scope($s), right($s, "admin")
      or ref($r), ref_glob($g), $r.extern::glob($g);
allow if operation($op), allowed($op);
deny if true;
"#;

    fn glob_function() -> ExternFunc {
        ExternFunc::new(Arc::new(|name, glob| match (name, glob) {
            (Term::Str(name), Some(Term::Str(glob))) => {
                Ok(Term::Bool(crate::glob::matches(&glob, &name)))
            }
            _ => Err("glob takes two strings".to_owned()),
        }))
    }

    /// The policy and the token's checks, run by biscuit's Datalog engine.
    pub fn authorize_with_datalog(
        token: &VerifiedToken,
        request: &Request<'_>,
    ) -> Result<(), Denied> {
        let mut params = HashMap::new();
        let mut facts = String::new();
        params.insert("op".to_owned(), Term::Str(request.op.as_str().to_owned()));
        facts.push_str("operation({op});\n");
        for (i, scope) in request.scope.covering().into_iter().enumerate() {
            params.insert(format!("s{i}"), Term::Str(scope));
            facts.push_str(&format!("scope({{s{i}}});\n"));
        }
        match request.ref_name {
            Some(name) => {
                params.insert("ref".to_owned(), Term::Str(name.to_owned()));
                facts.push_str("ref_op(true);\nref({ref});\n");
            }
            None => facts.push_str("ref_op(false);\n"),
        }
        let unevaluable = |e: TokenFailure| Denied::Unevaluable(e.to_string());
        let mut authorizer = AuthorizerBuilder::new()
            .code_with_params(&facts, params, HashMap::new())
            .and_then(|b| b.code(POLICY))
            .map_err(unevaluable)?
            .time()
            .register_extern_func("glob".to_owned(), glob_function())
            .set_limits(AuthorizerLimits {
                max_facts: 1000,
                max_iterations: 100,
                // The specification, not a guard: on a loaded machine (tests in parallel,
                // a debug build) 5 ms made the engine give up and the proptest disagree.
                max_time: Duration::from_secs(2),
            })
            .build(&token.biscuit)
            .map_err(unevaluable)?;
        match authorizer.authorize() {
            Ok(_) => Ok(()),
            Err(TokenFailure::FailedLogic(
                Logic::Unauthorized { checks, .. } | Logic::NoMatchingPolicy { checks },
            )) => Err(explain(&checks, request)),
            Err(other) => Err(unevaluable(other)),
        }
    }

    /// The most useful reason among the failed checks (expiry first), else the missing right.
    fn explain(checks: &[FailedCheck], request: &Request<'_>) -> Denied {
        let rules: Vec<(u32, &str)> = checks
            .iter()
            .map(|c| match c {
                FailedCheck::Block(b) => (b.block_id, b.rule.as_str()),
                FailedCheck::Authorizer(a) => (u32::MAX, a.rule.as_str()),
            })
            .collect();
        if rules.iter().any(|(_, rule)| rule.contains("time($t)")) {
            return Denied::Expired;
        }
        if rules
            .iter()
            .any(|(block, rule)| rule.contains("ref(") && (*block == u32::MAX || *block > 0))
        {
            return Denied::RefNotAllowed;
        }
        if let Some((_, rule)) = rules
            .iter()
            .find(|(block, _)| *block > 0 && *block != u32::MAX)
        {
            return Denied::Narrowed(rule.to_string());
        }
        Denied::NoRight {
            op: request.op.as_str(),
            scope: match request.scope {
                Scope::Repo(name) => name.to_string(),
                other => other.fact_name(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use biscuit_auth::KeyPair;

    use super::*;
    use crate::auth::rights::{Op, Scope};
    use crate::auth::token::{Grant, Narrowing, attenuate, mint, verify};

    fn token(root: &KeyPair, scopes: &[&str], ops: &[Op], globs: &[&str]) -> String {
        mint(
            &Grant {
                identity: "agent-42".into(),
                scopes: scopes.iter().map(|s| Scope::parse(s).unwrap()).collect(),
                ops: ops.to_vec(),
                ref_globs: globs.iter().map(|g| g.to_string()).collect(),
                expires: Some(SystemTime::now() + Duration::from_secs(3600)),
                parents: Vec::new(),
                incarnation: 0,
            },
            root,
        )
        .unwrap()
    }

    fn check(
        root: &KeyPair,
        token: &str,
        repo_name: &str,
        op: Op,
        r: Option<&str>,
    ) -> Result<(), Denied> {
        let verified = verify(token, &root.public()).unwrap();
        authorize(
            &verified,
            &Request {
                scope: &Scope::parse(repo_name).unwrap(),
                op,
                ref_name: r,
            },
        )
    }

    #[test]
    fn rights_scopes_and_globs() {
        let root = KeyPair::new();
        let t = token(
            &root,
            &["acme/widgets"],
            &[Op::Write],
            &["refs/heads/agent/**"],
        );
        assert_eq!(check(&root, &t, "acme/widgets", Op::Read, None), Ok(()));
        assert_eq!(check(&root, &t, "ACME/Widgets", Op::Read, None), Ok(()));
        assert!(matches!(
            check(&root, &t, "acme/other", Op::Read, None),
            Err(Denied::NoRight { .. })
        ));
        assert_eq!(
            check(
                &root,
                &t,
                "acme/widgets",
                Op::Write,
                Some("refs/heads/agent/x/y")
            ),
            Ok(())
        );
        assert_eq!(
            check(
                &root,
                &t,
                "acme/widgets",
                Op::Write,
                Some("refs/heads/main")
            ),
            Err(Denied::RefNotAllowed)
        );
        assert!(matches!(
            check(&root, &t, "acme/widgets", Op::Admin, None),
            Err(Denied::NoRight { .. })
        ));
        let owner = token(&root, &["acme/*"], &[Op::Read], &[]);
        assert_eq!(
            check(&root, &owner, "acme/anything", Op::Read, None),
            Ok(())
        );
        assert!(check(&root, &owner, "other/anything", Op::Read, None).is_err());
        assert!(
            check(
                &root,
                &owner,
                "acme/anything",
                Op::Write,
                Some("refs/heads/x")
            )
            .is_err()
        );
        let admin = token(&root, &["*"], &[Op::Admin], &[]);
        assert_eq!(
            check(&root, &admin, "x/y", Op::Write, Some("refs/heads/main")),
            Ok(())
        );
        assert_eq!(check(&root, &admin, "x/y", Op::Admin, None), Ok(()));
    }

    #[test]
    fn narrowing_only_narrows() {
        let root = KeyPair::new();
        let t = token(&root, &["acme/*"], &[Op::Write], &[]);
        let narrowed = attenuate(
            &t,
            &Narrowing {
                ref_globs: vec!["refs/heads/agent/*".into()],
                ..Narrowing::default()
            },
        )
        .unwrap();
        assert_eq!(check(&root, &narrowed, "acme/w", Op::Read, None), Ok(()));
        assert_eq!(
            check(
                &root,
                &narrowed,
                "acme/w",
                Op::Write,
                Some("refs/heads/agent/a")
            ),
            Ok(())
        );
        assert_eq!(
            check(
                &root,
                &narrowed,
                "acme/w",
                Op::Write,
                Some("refs/heads/main")
            ),
            Err(Denied::RefNotAllowed)
        );
        let read_only = attenuate(
            &narrowed,
            &Narrowing {
                ops: vec![Op::Read],
                scopes: vec![Scope::parse("acme/w").unwrap()],
                ..Narrowing::default()
            },
        )
        .unwrap();
        assert_eq!(check(&root, &read_only, "acme/w", Op::Read, None), Ok(()));
        assert!(matches!(
            check(
                &root,
                &read_only,
                "acme/w",
                Op::Write,
                Some("refs/heads/agent/a")
            ),
            Err(Denied::Narrowed(_))
        ));
        assert!(check(&root, &read_only, "acme/v", Op::Read, None).is_err());
        // Widening is impossible: a narrowing naming another repository only adds a check.
        let widened = attenuate(
            &t,
            &Narrowing {
                scopes: vec![Scope::parse("other/x").unwrap()],
                ..Narrowing::default()
            },
        )
        .unwrap();
        assert!(check(&root, &widened, "other/x", Op::Read, None).is_err());
        assert!(check(&root, &widened, "acme/w", Op::Read, None).is_err());
    }

    #[test]
    fn expiry_in_the_token_and_in_a_narrowing() {
        let root = KeyPair::new();
        let expired = mint(
            &Grant {
                identity: "a".into(),
                scopes: vec![Scope::All],
                ops: vec![Op::Admin],
                ref_globs: vec![],
                expires: Some(SystemTime::now() - Duration::from_secs(1)),
                parents: Vec::new(),
                incarnation: 0,
            },
            &root,
        )
        .unwrap();
        assert_eq!(
            check(&root, &expired, "x/y", Op::Read, None),
            Err(Denied::Expired)
        );
        let t = token(&root, &["*"], &[Op::Read], &[]);
        let short = attenuate(
            &t,
            &Narrowing {
                expires: Some(SystemTime::now() - Duration::from_secs(1)),
                ..Narrowing::default()
            },
        )
        .unwrap();
        assert_eq!(
            check(&root, &short, "x/y", Op::Read, None),
            Err(Denied::Expired)
        );
    }
}
