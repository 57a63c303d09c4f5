//! The test vectors of `docs/object-format.md` hold: ids, encodings and both translations.

use std::collections::HashMap;

use forge::git::{git_sha1, git_to_native, native_to_git};
use forge::object::{Kind, ObjectId, Sha1, decode, native_id};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn documented_vectors() {
    let doc = include_str!("../../docs/object-format.md");
    let block = doc
        .split("```vectors\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("a vectors block");
    let mut to_native: HashMap<Sha1, ObjectId> = HashMap::new();
    let mut checked = 0;
    for vector in block.split("\n\n") {
        let field = |name: &str| {
            vector
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}:")))
                .unwrap_or_else(|| panic!("field {name} in {vector}"))
                .trim()
                .to_owned()
        };
        let kind = Kind::from_name(field("kind").as_bytes()).unwrap();
        let git = unhex(&field("git"));
        let sha1: Sha1 = field("sha1").parse().unwrap();
        let native = unhex(&field("native"));
        let id: ObjectId = field("blake3").parse().unwrap();
        assert_eq!(git_sha1(kind, &git), sha1, "{vector}");
        if kind == Kind::Blob {
            assert_eq!(native, git);
            assert_eq!(ObjectId::for_blob(&git), id);
        } else {
            let translated = git_to_native(kind, &git, |s| to_native.get(&s).copied().ok_or(s))
                .expect("children are earlier vectors");
            assert_eq!(forge::object::encode(&translated), native, "{vector}");
            assert_eq!(native_id(kind, &native), id, "{vector}");
            let decoded = decode(kind, &native).unwrap();
            let back = native_to_git(&decoded, |child| {
                to_native
                    .iter()
                    .find(|(_, n)| **n == child)
                    .map(|(s, _)| *s)
                    .ok_or(child)
            })
            .unwrap();
            assert_eq!(&*back, &git[..], "{vector}");
        }
        to_native.insert(sha1, id);
        checked += 1;
    }
    assert_eq!(checked, 10);
}
