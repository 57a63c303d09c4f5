//! Lossless translation between git objects and native objects.
//!
//! git → native: parse the body, map every child SHA-1 to its native id, and keep the git bytes
//! verbatim when re-serialising the parsed fields would not reproduce them. native → git: the
//! verbatim bytes if kept, otherwise the fields with every child mapped back to its SHA-1.

use std::borrow::Cow;

use crate::object::{EntryTarget, Kind, NativeObject, ObjectId, Sha1, encode_tree};

use super::format;

/// Translates a tree, commit or tag body. `resolve` maps a child's SHA-1 to its native id
/// (and fails for an object the store does not have).
pub fn git_to_native<E>(
    kind: Kind,
    git_body: &[u8],
    resolve: impl FnMut(Sha1) -> Result<ObjectId, E>,
) -> Result<NativeObject, E> {
    debug_assert_ne!(kind, Kind::Blob, "blobs need no translation");
    let Some(node) = format::parse(kind, git_body) else {
        return Ok(NativeObject::Unparsed {
            kind,
            git_bytes: git_body.to_vec(),
        });
    };
    let mut canonical = Vec::with_capacity(git_body.len());
    format::serialize(&node, &mut canonical);
    let git_verbatim = (canonical != git_body).then(|| git_body.to_vec());
    Ok(NativeObject::Parsed {
        node: node.try_map_ids(resolve)?,
        git_verbatim,
    })
}

/// The native encoding of a git tree, written in one pass over its entries; `None` when the
/// body is not a tree (translate it with `git_to_native`, which keeps it whole). Equal to
/// `encode(&git_to_native(Kind::Tree, ..))` for every tree.
pub fn tree_to_native_encoding<E>(
    git_body: &[u8],
    mut resolve: impl FnMut(Sha1) -> Result<ObjectId, E>,
) -> Result<Option<Vec<u8>>, E> {
    // Two passes over the entries (count, then encode) cost less than collecting them.
    let mut count = 0;
    for entry in format::tree_entries(git_body) {
        if entry.is_err() {
            return Ok(None);
        }
        count += 1;
    }
    let mut failed = None;
    let encoded = encode_tree(
        count,
        format::tree_entries(git_body).flatten().map(|e| {
            let target = if e.is_gitlink() {
                EntryTarget::Gitlink(e.id)
            } else {
                match resolve(e.id) {
                    Ok(id) => EntryTarget::Object(id),
                    Err(err) => {
                        failed.get_or_insert(err);
                        EntryTarget::Gitlink(e.id)
                    }
                }
            };
            (e.mode, e.name, target)
        }),
    );
    match failed {
        Some(err) => Err(err),
        None => Ok(Some(encoded)),
    }
}

/// The git body of a native tree, commit or tag. `resolve` maps a child's native id to its SHA-1.
pub fn native_to_git<E>(
    object: &NativeObject,
    resolve: impl FnMut(ObjectId) -> Result<Sha1, E>,
) -> Result<Cow<'_, [u8]>, E> {
    match object {
        NativeObject::Unparsed { git_bytes, .. } => Ok(Cow::Borrowed(git_bytes)),
        NativeObject::Parsed {
            git_verbatim: Some(bytes),
            ..
        } => Ok(Cow::Borrowed(bytes)),
        NativeObject::Parsed {
            node,
            git_verbatim: None,
        } => {
            let mut out = Vec::with_capacity(256);
            format::serialize(&node.try_map_ids(resolve)?, &mut out);
            Ok(Cow::Owned(out))
        }
    }
}

/// git's object id: SHA-1 over `"<kind> <size>\0"` and the body (with collision detection).
pub fn git_sha1(kind: Kind, body: &[u8]) -> Sha1 {
    let mut hasher = Sha1Hasher::new(kind, body.len() as u64);
    hasher.update(body);
    hasher.finish()
}

/// Incremental SHA-1 of a git object whose size is known up front.
pub struct Sha1Hasher(crate::gitx::Hasher);

impl Sha1Hasher {
    pub fn new(kind: Kind, size: u64) -> Self {
        let mut hasher = crate::gitx::Hasher::new();
        hasher.update(format!("{} {size}\0", kind.as_str()).as_bytes());
        Sha1Hasher(hasher)
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes)
    }

    pub fn finish(self) -> Sha1 {
        self.0.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    /// A reversible stand-in for the store's map: native id = SHA-1 padded with a marker.
    fn to_native(sha: Sha1) -> Result<ObjectId, Infallible> {
        let mut id = [0xAB; 32];
        id[..20].copy_from_slice(sha.as_bytes());
        Ok(ObjectId(id))
    }

    fn to_sha1(id: ObjectId) -> Result<Sha1, Infallible> {
        Ok(Sha1::from_bytes(&id.as_bytes()[..20]).unwrap())
    }

    mod properties {
        use super::*;
        use crate::object::{decode, encode};
        use proptest::prelude::*;

        fn hex40() -> impl Strategy<Value = String> {
            prop::array::uniform20(any::<u8>()).prop_flat_map(|b| {
                let hex = Sha1(b).to_hex();
                prop_oneof![
                    Just(hex.clone()),
                    Just(hex.to_uppercase()),
                    Just(hex[..39].to_owned())
                ]
            })
        }

        fn text() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                prop::collection::vec(any::<u8>(), 0..40),
                "[ -~]{0,30}".prop_map(String::into_bytes),
                prop::collection::vec(
                    prop::sample::select(b"ab \n\r\t<>+-0123456789".to_vec()),
                    0..30
                ),
            ]
        }

        fn signature() -> impl Strategy<Value = Vec<u8>> {
            let tz = prop_oneof![
                Just("+0000".to_owned()),
                Just("-0000".to_owned()),
                Just("+0530".to_owned()),
                Just("-1200".to_owned()),
                Just("+100".to_owned()),
                Just("+1234567".to_owned()),
                Just(String::new()),
                "[+-][0-9]{4}",
            ];
            let time = prop_oneof![
                Just("1112911993".to_owned()),
                Just("-5".to_owned()),
                Just("0001".to_owned()),
                Just("99999999999999999999".to_owned()),
                Just(String::new()),
                "[0-9]{1,12}",
            ];
            (
                "[A-Za-z .]{0,12}",
                "[a-z@.<]{0,10}",
                time,
                tz,
                any::<bool>(),
            )
                .prop_map(|(name, email, time, tz, brackets)| {
                    if brackets {
                        format!("{name} <{email}> {time} {tz}").into_bytes()
                    } else {
                        format!("{name} {email} {time} {tz}").into_bytes()
                    }
                })
        }

        /// Commit- and tag-like bodies: plausible header lines in any order, then a message.
        fn header_body(
            first: &'static str,
            second: &'static str,
        ) -> impl Strategy<Value = Vec<u8>> {
            let line = prop_oneof![
                hex40().prop_map(|h| format!("parent {h}").into_bytes()),
                hex40().prop_map(|h| format!("object {h}").into_bytes()),
                signature().prop_map(|s| [b"author ".to_vec(), s].concat()),
                signature().prop_map(|s| [b"committer ".to_vec(), s].concat()),
                signature().prop_map(|s| [b"tagger ".to_vec(), s].concat()),
                Just(b"type commit".to_vec()),
                text().prop_map(|t| [b"tag ".to_vec(), t].concat()),
                text().prop_map(|t| [b"encoding ".to_vec(), t].concat()),
                text().prop_map(|t| [b"gpgsig ".to_vec(), t].concat()),
                text().prop_map(|t| [b"x-extra".to_vec(), t].concat()),
                text(),
            ];
            let ending = prop_oneof![Just(&b"\n"[..]), Just(&b"\r\n"[..])];
            (
                hex40(),
                prop::collection::vec((line, ending), 0..8),
                prop::option::of(text()),
                any::<bool>(),
            )
                .prop_map(move |(id, lines, message, signed)| {
                    let mut out = format!("{first} {id}\n{second}").into_bytes();
                    for (line, ending) in lines {
                        out.extend_from_slice(&line);
                        out.extend_from_slice(ending);
                    }
                    if let Some(message) = message {
                        out.push(b'\n');
                        out.extend_from_slice(&message);
                        if signed {
                            out.extend_from_slice(b"\n-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n");
                        }
                    }
                    out
                })
        }

        fn tree_body() -> impl Strategy<Value = Vec<u8>> {
            let mode = prop_oneof![
                Just("100644".to_owned()),
                Just("100755".to_owned()),
                Just("40000".to_owned()),
                Just("040000".to_owned()),
                Just("0100644".to_owned()),
                Just("100664".to_owned()),
                Just("120000".to_owned()),
                Just("160000".to_owned()),
                Just("0160000".to_owned()),
                "[0-7]{0,8}",
                "[0-9a-z]{1,3}",
            ];
            let name = prop::collection::vec(1u8..=255, 0..12);
            let entry = (mode, name, prop::array::uniform20(any::<u8>()));
            (
                prop::collection::vec(entry, 0..6),
                prop::collection::vec(any::<u8>(), 0..3),
            )
                .prop_map(|(entries, tail)| {
                    let mut out = Vec::new();
                    for (mode, name, id) in entries {
                        out.extend_from_slice(mode.as_bytes());
                        out.push(b' ');
                        out.extend_from_slice(&name);
                        out.push(0);
                        out.extend_from_slice(&id);
                    }
                    out.extend_from_slice(&tail[..tail.len() % 2 * tail.len()]);
                    out
                })
        }

        fn any_body() -> impl Strategy<Value = (Kind, Vec<u8>)> {
            let kind = prop::sample::select(vec![Kind::Tree, Kind::Commit, Kind::Tag]);
            prop_oneof![
                (kind, prop::collection::vec(any::<u8>(), 0..200)),
                tree_body().prop_map(|b| (Kind::Tree, b)),
                header_body("tree", "").prop_map(|b| (Kind::Commit, b)),
                header_body("object", "type commit\n").prop_map(|b| (Kind::Tag, b)),
            ]
        }

        /// The generator reaches every form: canonical, verbatim and unparsed, of each kind.
        #[test]
        fn generator_covers_every_form() {
            use proptest::strategy::ValueTree;
            let mut runner = proptest::test_runner::TestRunner::deterministic();
            let mut seen = std::collections::HashMap::new();
            for _ in 0..3000 {
                let (kind, body) = any_body().new_tree(&mut runner).unwrap().current();
                let form = match git_to_native(kind, &body, to_native).unwrap() {
                    NativeObject::Unparsed { .. } => "unparsed",
                    NativeObject::Parsed {
                        git_verbatim: None, ..
                    } => "canonical",
                    NativeObject::Parsed { .. } => "verbatim",
                };
                *seen.entry((kind, form)).or_insert(0) += 1;
            }
            for kind in [Kind::Tree, Kind::Commit, Kind::Tag] {
                for form in ["unparsed", "canonical", "verbatim"] {
                    if kind == Kind::Tree && form == "verbatim" {
                        continue; // trees always re-serialise exactly
                    }
                    let n = seen.get(&(kind, form)).copied().unwrap_or(0);
                    assert!(n >= 30, "{kind} {form}: {n} of 3000 ({seen:?})");
                }
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(3000))]

            /// git → native → git gives the same bytes, the native encoding decodes to the same
            /// object, and the git bytes translate back to the same native object.
            #[test]
            fn git_bytes_survive_both_translations((kind, body) in any_body()) {
                let native = git_to_native(kind, &body, to_native).unwrap();
                let encoded = encode(&native);
                prop_assert_eq!(&decode(kind, &encoded).unwrap(), &native);
                let git = native_to_git(&native, to_sha1).unwrap();
                prop_assert_eq!(&*git, &body[..]);
                prop_assert_eq!(git_to_native(kind, &git, to_native).unwrap(), native);
            }

            /// The one-pass tree encoding equals the general translation.
            #[test]
            fn tree_fast_path_matches(body in tree_body()) {
                let slow = encode(&git_to_native(Kind::Tree, &body, to_native).unwrap());
                match tree_to_native_encoding(&body, to_native).unwrap() {
                    Some(fast) => prop_assert_eq!(fast, slow),
                    None => prop_assert_eq!(slow[0], 1, "only unparsed trees take the slow path"),
                }
            }

            /// Different git objects never share a native encoding (so never a native id).
            #[test]
            fn distinct_objects_have_distinct_native_ids(a in any_body(), b in any_body()) {
                prop_assume!(a != b);
                let na = encode(&git_to_native(a.0, &a.1, to_native).unwrap());
                let nb = encode(&git_to_native(b.0, &b.1, to_native).unwrap());
                prop_assert!(a.0 != b.0 || na != nb);
            }
        }
    }

    #[test]
    fn known_sha1() {
        // `git hash-object -t blob /dev/null`
        assert_eq!(
            git_sha1(Kind::Blob, b"").to_hex(),
            "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
        );
        // the empty tree
        assert_eq!(
            git_sha1(Kind::Tree, b"").to_hex(),
            "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
        );
    }

    #[test]
    fn verbatim_only_when_needed() {
        let canonical = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor a <b> 1 +0000\ncommitter a <b> 1 +0000\n\nm\n";
        let native = git_to_native(Kind::Commit, canonical, to_native).unwrap();
        assert!(matches!(
            native,
            NativeObject::Parsed {
                git_verbatim: None,
                ..
            }
        ));
        assert_eq!(&*native_to_git(&native, to_sha1).unwrap(), canonical);

        let odd = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor a <b> 1 -0000\n\nm";
        let native = git_to_native(Kind::Commit, odd, to_native).unwrap();
        assert!(matches!(
            native,
            NativeObject::Parsed {
                git_verbatim: Some(_),
                ..
            }
        ));
        assert_eq!(&*native_to_git(&native, to_sha1).unwrap(), odd);
    }
}
