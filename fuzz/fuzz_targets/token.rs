//! Capability tokens as a client presents them (`auth::token`): `parse_unverified`,
//! `inspect` and `verify` against a fixed root key, on the input as text and on the
//! base64url of its raw bytes (which reaches the biscuit decoder instead of stopping at the
//! base64). And, since any holder may append a block to a token offline, the input as
//! the Datalog of a block appended to a genuine token: `verify` must refuse it or compile
//! it (`auth::compiled`), a compiled token must evaluate requests, and the appended block
//! must never allow a request the genuine token refuses (attenuation only narrows).
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use biscuit_auth::{BlockBuilder, KeyPair, PublicKey};
use forge::auth::policy::Request;
use forge::auth::token::{self, Grant, Op, Scope};
use libfuzzer_sys::fuzz_target;

struct Fixture {
    public: PublicKey,
    /// A token minted by the root key, for appending blocks to.
    minted: String,
    scopes: Vec<Scope>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let root = KeyPair::new();
        let grant = Grant {
            identity: "agent-42".into(),
            scopes: vec![Scope::parse("acme/widgets").unwrap(), Scope::parse("acme/*").unwrap()],
            ops: vec![Op::Read, Op::Write],
            ref_globs: vec!["refs/heads/agent/**".into()],
            expires: Some(UNIX_EPOCH + Duration::from_secs(1_900_000_000)),
            parents: Vec::new(),
            incarnation: 0,
        };
        let minted = token::mint(&grant, &root).expect("mint");
        Fixture {
            public: root.public(),
            minted,
            scopes: vec![
                Scope::parse("acme/widgets").unwrap(),
                Scope::parse("other/repo").unwrap(),
                Scope::parse("acme/*").unwrap(),
                Scope::All,
            ],
        }
    })
}

/// Every request the fuzzer asks about: `(scope, op, ref)` at a fixed time.
fn each_request(fixture: &Fixture, mut visit: impl FnMut(&Request<'_>)) {
    for scope in &fixture.scopes {
        for op in [Op::Read, Op::Write, Op::Admin] {
            for ref_name in [None, Some("refs/heads/agent/x"), Some("refs/tags/v1")] {
                visit(&Request {
                    scope,
                    op,
                    ref_name,
                });
            }
        }
    }
}

fn all_readers(text: &str, fixture: &Fixture) {
    let _ = token::parse_unverified(text);
    let _ = token::inspect(text);
    if let Ok(verified) = token::verify(text, &fixture.public) {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let _ = verified.compiled.expired(now);
        let _ = verified.compiled.expired(SystemTime::now());
        each_request(fixture, |request| {
            let _ = verified.compiled.authorize(request, now);
        });
    }
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let text = String::from_utf8_lossy(data);
    all_readers(&text, fixture);
    all_readers(&URL_SAFE.encode(data), fixture);

    // The input as Datalog appended to a genuine token.
    if let Ok(block) = BlockBuilder::new().code(&*text) {
        let base = token::parse_unverified(&fixture.minted).expect("own token parses");
        if let Ok(appended) = base.append(block).and_then(|t| t.to_base64()) {
            all_readers(&appended, fixture);
            if let Ok(narrowed) = token::verify(&appended, &fixture.public) {
                let genuine = token::verify(&fixture.minted, &fixture.public).expect("own token");
                let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
                each_request(fixture, |request| {
                    if narrowed.compiled.authorize(request, now).is_ok() {
                        assert!(
                            genuine.compiled.authorize(request, now).is_ok(),
                            "an appended block widened the token"
                        );
                    }
                });
            }
        }
    }
});
