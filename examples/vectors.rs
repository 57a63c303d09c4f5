//! Prints the test vectors of docs/object-format.md (run: cargo run --example vectors).
use std::collections::HashMap;

use forge::git::{git_sha1, git_to_native};
use forge::object::{Kind, ObjectId, Sha1, encode, native_id};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn main() {
    let mut map: HashMap<Sha1, ObjectId> = HashMap::new();
    let mut emit = |kind: Kind, body: Vec<u8>, note: &str| -> Sha1 {
        let sha1 = git_sha1(kind, &body);
        let (native, id) = if kind == Kind::Blob {
            (body.clone(), ObjectId::for_blob(&body))
        } else {
            let n = git_to_native(kind, &body, |s| map.get(&s).copied().ok_or(s)).unwrap();
            let e = encode(&n);
            let id = native_id(kind, &e);
            (e, id)
        };
        map.insert(sha1, id);
        println!(
            "# {note}\nkind: {kind}\ngit: {}\nsha1: {sha1}\nnative: {}\nblake3: {id}\n",
            hex(&body),
            hex(&native)
        );
        sha1
    };
    let hello = emit(
        Kind::Blob,
        b"hello\n".to_vec(),
        "a blob: its id is b3sum of the content",
    );
    let empty = emit(Kind::Blob, Vec::new(), "the empty blob");
    let empty_tree = emit(Kind::Tree, Vec::new(), "the empty tree");
    let mut tree = b"100644 hello.txt\0".to_vec();
    tree.extend_from_slice(&hello.0);
    tree.extend_from_slice(b"100755 run\0");
    tree.extend_from_slice(&empty.0);
    tree.extend_from_slice(b"160000 vendor\0");
    tree.extend_from_slice(&[0x01; 20]);
    tree.extend_from_slice(b"40000 sub\0");
    tree.extend_from_slice(&empty_tree.0);
    let tree = emit(
        Kind::Tree,
        tree,
        "a tree with a file, an executable, a submodule (keeps its SHA-1) and a directory",
    );
    let mut padded = b"040000 sub\0".to_vec();
    padded.extend_from_slice(&empty_tree.0);
    emit(Kind::Tree, padded, "a zero-padded mode is kept as written");
    let root = emit(Kind::Commit, format!("tree {tree}\nauthor A U Thor <author@example.com> 1700000000 +0530\ncommitter C O Mitter <committer@example.com> 1700000100 -0700\n\nFirst commit\n").into_bytes(), "a root commit");
    emit(Kind::Commit, format!("tree {tree}\nparent {root}\nauthor A U Thor <author@example.com> 1700000200 +0000\ncommitter A U Thor <author@example.com> 1700000200 +0000\nencoding ISO-8859-1\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n iQEz\n -----END PGP SIGNATURE-----\n\nSigned\n").into_bytes(), "a signed commit with an encoding: extra headers keep their order, multi-line values are unfolded");
    emit(Kind::Commit, format!("tree {tree}\nauthor A <a@example.com> 1700000000 -0000\ncommitter A <a@example.com> 1700000000 -0000\n\nodd zone").into_bytes(), "a commit with `-0000` zones and no final newline: the fields cannot say `-0000`, so the git bytes are kept verbatim");
    emit(Kind::Tag, format!("object {root}\ntype commit\ntag v1.0\ntagger T <t@example.com> 1700000300 +0100\n\nRelease\n-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n").into_bytes(), "a signed annotated tag: the signature is split from the message");
    emit(
        Kind::Tree,
        b"not a tree".to_vec(),
        "bytes that do not parse as a tree: kept whole, with no children",
    );
}
