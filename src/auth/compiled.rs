//! What a token means, read once from its blocks and evaluated natively on every request.
//!
//! The server accepts only tokens whose every block is in the exact form this forge writes
//! (an authority block from `token::authority_block`, narrowings from
//! `token::narrowing_block`): a block counts as canonical only if its new symbols are plain
//! words (no quotes, spaces, brackets or commas, so nothing printed can pass for something
//! else) and regenerating it from what was read prints the very same Datalog. Any other
//! block is refused, so the Datalog engine never runs on a holder's input; the forge's
//! policy in Datalog (`policy::datalog`) is the specification the tests hold this to.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use biscuit_auth::Biscuit;

use super::blocks::{Narrowing, authority_block, narrowing_block};
use super::rights::{Denied, Op, Request, Scope};
use crate::glob;

/// Revocation ids are Ed25519 signatures.
const REVOCATION_ID_BYTES: usize = 64;

/// A token's meaning, read from its canonical blocks.
#[derive(Debug, Clone)]
pub struct Compiled {
    identity: String,
    incarnation: u64,
    /// Revocation ids of the token this one was minted with.
    parents: Vec<Vec<u8>>,
    /// `right(scope, op)` facts: scope names as the Datalog has them.
    rights: Vec<(String, Op)>,
    /// `ref_glob` facts; `None` for `no_ref_limit(true)`.
    ref_globs: Option<Vec<String>>,
    /// The authority block's expiry (Unix seconds).
    expires: Option<u64>,
    narrowings: Vec<CompiledNarrowing>,
}

#[derive(Debug, Clone)]
struct CompiledNarrowing {
    scopes: Vec<String>,
    ops: Vec<Op>,
    ref_globs: Vec<String>,
    expires: Option<u64>,
    /// Each check as biscuit prints it (the reason of a refusal), in block order.
    printed: Vec<String>,
}

/// Reads a verified token's blocks; `None` when any block is not in canonical form.
pub fn compile(token: &Biscuit) -> Option<Compiled> {
    if token.block_count() == 0 {
        return None;
    }
    for i in 0..token.block_count() {
        let plain = token
            .block_symbols(i)
            .ok()?
            .iter()
            .all(|symbol| symbol.bytes().all(is_plain));
        if !plain || token.block_external_key(i).ok()?.is_some() {
            return None;
        }
    }
    let mut compiled = read_authority(&token.print_block_source(0).ok()?)?;
    for i in 1..token.block_count() {
        compiled
            .narrowings
            .push(read_narrowing(&token.print_block_source(i).ok()?)?);
    }
    Some(compiled)
}

/// Bytes a symbol of a canonical block may hold: those of names, scopes, globs and ops.
fn is_plain(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.' | b'/' | b'*')
}

fn read_authority(printed: &str) -> Option<Compiled> {
    let mut identity = None;
    let mut incarnation = 0;
    let mut parents = Vec::new();
    let mut rights = Vec::new();
    let mut globs = Vec::new();
    let mut unlimited = false;
    let mut expires = None;
    for line in printed.lines() {
        if let Some(rest) = line.strip_prefix("identity(") {
            identity = Some(quoted_args(rest.strip_suffix(");")?)?.pop()?);
        } else if let Some(rest) = line.strip_prefix("incarnation(") {
            incarnation = rest.strip_suffix(");")?.parse().ok()?;
        } else if let Some(rest) = line.strip_prefix("parent(") {
            parents.push(crate::hex::decode(
                &quoted_args(rest.strip_suffix(");")?)?.pop()?,
                REVOCATION_ID_BYTES,
            )?);
        } else if let Some(rest) = line.strip_prefix("right(") {
            let mut args = quoted_args(rest.strip_suffix(");")?)?;
            let op = Op::parse(&args.pop()?).ok()?;
            rights.push((args.pop()?, op));
        } else if let Some(rest) = line.strip_prefix("ref_glob(") {
            globs.push(quoted_args(rest.strip_suffix(");")?)?.pop()?);
        } else if line == "no_ref_limit(true);" {
            unlimited = true;
        } else {
            expires = Some(read_expiry(line)?);
        }
    }
    let identity = identity?;
    let scopes: Vec<(Scope, Op)> = rights
        .iter()
        .map(|(scope, op)| Scope::parse(scope).ok().map(|s| (s, *op)))
        .collect::<Option<_>>()?;
    let regenerated = authority_block(
        &identity,
        incarnation,
        &parents,
        &scopes,
        &globs,
        expires.map(at),
    )
    .ok()?
    .to_string();
    if regenerated != printed || unlimited != globs.is_empty() {
        return None;
    }
    Some(Compiled {
        identity,
        incarnation,
        parents,
        rights,
        ref_globs: (!unlimited).then_some(globs),
        expires,
        narrowings: Vec::new(),
    })
}

fn read_narrowing(printed: &str) -> Option<CompiledNarrowing> {
    let mut narrowing = Narrowing::default();
    let mut lines = Vec::new();
    for line in printed.lines() {
        let check = line.strip_prefix("check if ")?.strip_suffix(';')?;
        lines.push(line.strip_suffix(';')?.to_owned());
        if check.starts_with("scope(") {
            for alternative in check.split(" or ") {
                let inner = alternative.strip_prefix("scope(")?.strip_suffix(')')?;
                narrowing
                    .scopes
                    .push(Scope::parse(&quoted_args(inner)?.pop()?).ok()?);
            }
        } else if check.starts_with("operation(") {
            for alternative in check.split(" or ") {
                let inner = alternative.strip_prefix("operation(")?.strip_suffix(')')?;
                narrowing
                    .ops
                    .push(Op::parse(&quoted_args(inner)?.pop()?).ok()?);
            }
        } else if let Some(rest) = check.strip_prefix("ref_op(false) or ") {
            for alternative in rest.split(" or ") {
                let inner = alternative
                    .strip_prefix("ref($r), $r.extern::glob(")?
                    .strip_suffix(')')?;
                narrowing.ref_globs.push(quoted_args(inner)?.pop()?);
            }
        } else {
            narrowing.expires = Some(at(read_expiry(line)?));
        }
    }
    // Canonical means: regenerating prints the very same block.
    if narrowing_block(&narrowing).ok()?.to_string() != printed {
        return None;
    }
    Some(CompiledNarrowing {
        scopes: narrowing.scopes.iter().map(Scope::fact_name).collect(),
        ops: narrowing.ops,
        ref_globs: narrowing.ref_globs,
        expires: narrowing.expires.map(seconds),
        printed: lines,
    })
}

/// `"a", "b"` → `[a, b]`, for strings without quotes or backslashes (as this forge writes).
fn quoted_args(text: &str) -> Option<Vec<String>> {
    text.split(", ")
        .map(|part| {
            let inner = part.strip_prefix('"')?.strip_suffix('"')?;
            (!inner.contains(['"', '\\'])).then(|| inner.to_owned())
        })
        .collect()
}

/// `check if time($t), $t <= 2026-11-24T23:39:08Z;` → Unix seconds.
fn read_expiry(line: &str) -> Option<u64> {
    let date = line
        .strip_prefix("check if time($t), $t <= ")?
        .strip_suffix(';')?;
    parse_utc(date)
}

/// `YYYY-MM-DDTHH:MM:SSZ` (how biscuit prints whole-second dates) → Unix seconds.
fn parse_utc(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || b[19] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> { text.get(range)?.parse().ok() };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hour * 3600 + minute * 60 + second).ok()
}

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

fn seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

impl Compiled {
    pub fn identity(&self) -> &str {
        &self.identity
    }

    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    pub fn parents(&self) -> &[Vec<u8>] {
        &self.parents
    }

    /// The authority block's `right(scope, op)` facts.
    pub fn rights(&self) -> &[(String, Op)] {
        &self.rights
    }

    /// The authority block's ref globs (`None`: any ref).
    pub fn ref_globs(&self) -> Option<&[String]> {
        self.ref_globs.as_deref()
    }

    /// The authority block's expiry.
    pub fn expires(&self) -> Option<SystemTime> {
        self.expires.map(at)
    }

    /// Whether the token may update only some refs (its authority block's globs, or a
    /// narrowing's): such a token must not do what reaches every ref at once (delete the
    /// repository, publish it).
    pub fn limits_refs(&self) -> bool {
        self.ref_globs.is_some() || self.narrowings.iter().any(|n| !n.ref_globs.is_empty())
    }

    /// Whether a holder appended narrowing blocks.
    pub fn is_narrowed(&self) -> bool {
        !self.narrowings.is_empty()
    }

    /// Whether any block's expiry has passed.
    pub fn expired(&self, now: SystemTime) -> bool {
        let now = seconds(now);
        std::iter::once(self.expires)
            .chain(self.narrowings.iter().map(|n| n.expires))
            .any(|at| at.is_some_and(|at| now > at))
    }

    /// The forge's policy (`policy::datalog` states it in Datalog) for `request` at `now`:
    /// every expiry, every narrowing's checks, the ref check, then the rights.
    pub fn authorize(&self, request: &Request<'_>, now: SystemTime) -> Result<(), Denied> {
        let now = seconds(now);
        let covering = request.scope.covering();
        let covers = |scope: &str| covering.iter().any(|c| c == scope);
        let has = |op: Op| self.rights.iter().any(|(s, o)| *o == op && covers(s));
        let ref_matches = |globs: &[String]| {
            request
                .ref_name
                .is_some_and(|name| globs.iter().any(|g| glob::matches(g, name)))
        };

        if self.expired(at(now)) {
            return Err(Denied::Expired);
        }
        let is_ref_op = request.ref_name.is_some();
        let server_ref_check = !is_ref_op
            || self.ref_globs.is_none()
            || has(Op::Admin)
            || ref_matches(self.ref_globs.as_deref().unwrap_or_default());
        let narrowing_ref_check = self
            .narrowings
            .iter()
            .all(|n| n.ref_globs.is_empty() || !is_ref_op || ref_matches(&n.ref_globs));
        if !server_ref_check || !narrowing_ref_check {
            return Err(Denied::RefNotAllowed);
        }
        for narrowing in &self.narrowings {
            let mut printed = narrowing.printed.iter();
            let mut fails = |ok: bool, present: bool| -> Option<String> {
                if !present {
                    return None;
                }
                let line = printed.next().cloned().unwrap_or_default();
                (!ok).then_some(line)
            };
            let scope_ok = narrowing.scopes.iter().any(|s| covers(s));
            if let Some(line) = fails(scope_ok, !narrowing.scopes.is_empty()) {
                return Err(Denied::Narrowed(line));
            }
            let op_ok = narrowing.ops.contains(&request.op);
            if let Some(line) = fails(op_ok, !narrowing.ops.is_empty()) {
                return Err(Denied::Narrowed(line));
            }
        }
        let allowed =
            has(request.op) || has(Op::Admin) || (request.op == Op::Read && has(Op::Write));
        if !allowed {
            return Err(Denied::NoRight {
                op: request.op.as_str(),
                scope: match request.scope {
                    Scope::Repo(name) => name.to_string(),
                    other => other.fact_name(),
                },
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use biscuit_auth::KeyPair;
    use proptest::prelude::*;

    use super::*;
    use crate::auth::policy::datalog::authorize_with_datalog;
    use crate::auth::token::{Grant, attenuate, mint, verify};

    #[test]
    fn dates_as_biscuit_prints_them() {
        assert_eq!(parse_utc("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_utc("2026-11-24T23:39:08Z"), Some(1_795_563_548));
        assert_eq!(parse_utc("2000-02-29T12:00:00Z"), Some(951_825_600));
        assert_eq!(parse_utc("2026-11-24 23:39:08Z"), None);
        assert_eq!(parse_utc("2026-13-24T23:39:08Z"), None);
    }

    #[test]
    fn hand_written_blocks_are_not_compiled() {
        let root = KeyPair::new();
        let token = mint(
            &Grant {
                identity: "a".into(),
                scopes: vec![Scope::All],
                ops: vec![Op::Read],
                ref_globs: vec![],
                expires: None,
                parents: Vec::new(),
                incarnation: 0,
            },
            &root,
        )
        .unwrap();
        let verified = verify(&token, &root.public()).unwrap();
        assert!(compile(&verified.biscuit).is_some());
        let append = |code: &str| {
            verified
                .biscuit
                .append(biscuit_auth::BlockBuilder::new().code(code).unwrap())
                .unwrap()
        };
        for code in [
            // Not a form the forge writes.
            r#"check if operation("read"), scope("x/y");"#,
            // A fact or a rule, even one printed like a check.
            r#"right("*", "admin");"#,
            r#"g($a) <- right($a, $b);"#,
            // A string that would print as two alternatives.
            r#"check if scope("acme/w\") or scope(\"evil/x");"#,
        ] {
            assert!(compile(&append(code)).is_none(), "{code}");
        }
        assert!(compile(&append(r#"check if operation("read");"#)).is_some());
    }

    fn scope_strategy() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["acme/w", "acme/v", "acme/*", "other/x", "*"])
            .prop_map(str::to_owned)
    }

    fn ops_strategy() -> impl Strategy<Value = Vec<Op>> {
        prop::sample::subsequence(vec![Op::Read, Op::Write, Op::Admin], 0..=3)
    }

    fn globs_strategy() -> impl Strategy<Value = Vec<String>> {
        prop::sample::subsequence(
            vec![
                "refs/heads/agent/*",
                "refs/heads/**",
                "refs/tags/v*",
                "refs/heads/main",
            ],
            0..=2,
        )
        .prop_map(|g| g.into_iter().map(str::to_owned).collect())
    }

    /// Seconds from now: past, near future, or none.
    fn expiry_strategy() -> impl Strategy<Value = Option<i64>> {
        prop::sample::select(vec![None, Some(-100), Some(3600)])
    }

    fn at_offset(offset: Option<i64>) -> Option<SystemTime> {
        offset.map(|o| {
            if o < 0 {
                SystemTime::now() - Duration::from_secs(o.unsigned_abs())
            } else {
                SystemTime::now() + Duration::from_secs(o as u64)
            }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// The native evaluation and the Datalog engine decide alike, reasons included.
        #[test]
        fn native_and_datalog_agree(
            scopes in prop::collection::vec(scope_strategy(), 1..=2),
            ops in ops_strategy().prop_filter("an op", |o| !o.is_empty()),
            globs in globs_strategy(),
            expiry in expiry_strategy(),
            narrowings in prop::collection::vec(
                (prop::collection::vec(scope_strategy(), 0..=2), ops_strategy(), globs_strategy(), expiry_strategy()),
                0..=2,
            ),
            request_repo in prop::sample::select(vec!["acme/w", "acme/v", "other/x", "zed/q"]),
            request_op in prop::sample::select(vec![Op::Read, Op::Write, Op::Admin]),
            request_ref in prop::sample::select(vec![None, Some("refs/heads/agent/a"), Some("refs/heads/main"), Some("refs/tags/v1"), Some("refs/heads/agent/a/b")]),
        ) {
            let root = KeyPair::new();
            // Minting refuses admin with ref limits.
            let globs = if ops.contains(&Op::Admin) { Vec::new() } else { globs };
            let mut token = mint(&Grant {
                identity: "prop".into(),
                scopes: scopes.iter().map(|s| Scope::parse(s).unwrap()).collect(),
                ops,
                ref_globs: globs,
                expires: at_offset(expiry),
                parents: Vec::new(),
                incarnation: 0,
            }, &root).unwrap();
            for (scopes, ops, globs, expiry) in &narrowings {
                let narrowing = Narrowing {
                    scopes: scopes.iter().map(|s| Scope::parse(s).unwrap()).collect(),
                    ops: ops.clone(),
                    ref_globs: globs.clone(),
                    expires: at_offset(*expiry),
                };
                if !narrowing.is_empty() {
                    token = attenuate(&token, &narrowing).unwrap();
                }
            }
            let verified = verify(&token, &root.public()).unwrap();
            let scope = Scope::parse(request_repo).unwrap();
            let request = Request { scope: &scope, op: request_op, ref_name: request_ref };
            let native = verified.compiled.authorize(&request, SystemTime::now());
            let datalog = authorize_with_datalog(&verified, &request);
            prop_assert_eq!(native, datalog);
        }
    }
}
