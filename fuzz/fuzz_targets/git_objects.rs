//! git object bodies as a client pushes them: `git::format::parse` for every kind, the
//! borrowed tree iterator, the commit-link fast paths, signatures, git's fsck checks, and
//! the git ⇄ native translation the store relies on (lossless both ways).
#![no_main]

use std::convert::Infallible;

use forge::git::{self, format, fsck};
use forge::object::{self, Kind, NativeObject, Node, ObjectId, Sha1};
use libfuzzer_sys::fuzz_target;

/// A reversible stand-in for the store's SHA-1 → native id map (as the property tests in
/// `src/git/translate.rs` use): the SHA-1 padded with a marker.
fn to_native(sha: Sha1) -> Result<ObjectId, Infallible> {
    let mut id = [0xAB; 32];
    id[..20].copy_from_slice(sha.as_bytes());
    Ok(ObjectId(id))
}

fn to_sha1(id: ObjectId) -> Result<Sha1, Infallible> {
    Ok(Sha1::from_bytes(&id.as_bytes()[..20]).unwrap())
}

fn ok<T>(r: Result<T, Infallible>) -> T {
    match r {
        Ok(v) => v,
    }
}

fuzz_target!(|body: &[u8]| {
    // The borrowed tree iterator: stops after its first error.
    let mut entries = 0usize;
    let mut failed = false;
    for entry in format::tree_entries(body) {
        assert!(!failed, "tree_entries yielded after an error");
        match entry {
            Ok(e) => {
                entries += 1;
                let _ = (e.is_gitlink(), e.is_directory());
            }
            Err(()) => failed = true,
        }
    }
    assert!(entries <= body.len() / 22);

    // The commit-link fast paths agree with the full parser where both succeed.
    // (`commit_links` is `None` for a bad `parent` line where `commit_tree` still reads the
    // tree, as git's `parse_commit_buffer` fails there: regressions/git_objects/.)
    let tree = format::commit_tree(body);
    let links = format::commit_links(body);
    if let Some((links_tree, _)) = &links {
        assert_eq!(tree, Some(*links_tree));
    }
    if let (Some(tree), Some(Node::Commit(c))) = (tree, format::parse(Kind::Commit, body)) {
        assert_eq!(tree, c.tree);
    }

    let sig = format::parse_signature(body);
    let _ = format::format_signature(&sig);

    // The input as the blob a tree names `.gitmodules` and/or `.gitattributes` (git's
    // fsck_finish checks): a config parse, URL and name rules, line lengths.
    for (gitmodules, gitattributes) in [(true, false), (false, true), (true, true)] {
        let named = fsck::NamedAs {
            gitmodules,
            gitattributes,
        };
        let _ = fsck::check_named(named, fsck::NamedObject::Blob(Some(body)));
    }

    for kind in Kind::ALL {
        let mut noted = 0usize;
        let _ = fsck::check_noting(kind, body, |_, _| noted += 1);
        // A noted entry is a tree entry: at least a mode, a name, a NUL and 20 bytes.
        assert!(noted <= body.len() / 22);
        let parsed = format::parse(kind, body);
        if kind == Kind::Blob {
            assert!(parsed.is_none());
            continue;
        }
        if let Some(node) = &parsed {
            assert_eq!(node.kind(), kind);
            let mut out = Vec::new();
            format::serialize(node, &mut out);
        }

        // git → native → git gives the same bytes; the native encoding decodes to the same
        // object; the git bytes translate back to the same native object.
        let native = ok(git::git_to_native(kind, body, to_native));
        assert_eq!(native.kind(), kind);
        assert_eq!(matches!(native, NativeObject::Parsed { .. }), parsed.is_some());
        let encoded = object::encode(&native);
        assert_eq!(object::decode(kind, &encoded).as_ref(), Ok(&native));
        let _ = object::native_id(kind, &encoded);
        let back = ok(git::native_to_git(&native, to_sha1));
        assert_eq!(&*back, body);
        assert_eq!(ok(git::git_to_native(kind, &back, to_native)), native);

        // The store's readers of the encoding agree with the decoded object.
        let mut children = Vec::new();
        native.for_each_child(|id| children.push(id));
        match kind {
            Kind::Tree => {
                let fast = ok(git::tree_to_native_encoding(body, to_native));
                match fast {
                    Some(fast) => assert_eq!(fast, encoded),
                    None => assert!(matches!(native, NativeObject::Unparsed { .. })),
                }
                let mut seen = Vec::new();
                object::for_each_tree_child(&encoded, |_, _, id| seen.push(id)).unwrap();
                assert_eq!(seen, children);
            }
            Kind::Commit => {
                let links = object::commit_links(&encoded).unwrap();
                let mut linked: Vec<ObjectId> = links.tree.into_iter().collect();
                linked.extend(&links.parents);
                assert_eq!(linked, children);
            }
            Kind::Tag => {
                let target = object::tag_target(&encoded).unwrap();
                assert_eq!(target.map(|(id, _)| id).into_iter().collect::<Vec<_>>(), children);
            }
            Kind::Blob => unreachable!(),
        }
    }
});
