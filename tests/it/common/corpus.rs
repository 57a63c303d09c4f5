//! Repositories for tests: a corpus of every malformed kind git accepts without fsck, and a
//! synthetic history made with `git fast-import`.

use std::path::Path;

use super::{git, git_bytes, hex_to_bytes, literally};

const SIG: &str = "A U Thor <author@example.com> 1112911993 -0700";

fn tree_entry(mode: &str, name: &[u8], id_hex: &str) -> Vec<u8> {
    let mut out = mode.as_bytes().to_vec();
    out.push(b' ');
    out.extend_from_slice(name);
    out.push(0);
    out.extend_from_slice(&hex_to_bytes(id_hex));
    out
}

fn commit(tree: &str, parents: &[&str], rest: &str) -> Vec<u8> {
    let mut out = format!("tree {tree}\n");
    for p in parents {
        out.push_str(&format!("parent {p}\n"));
    }
    out.push_str(rest);
    out.into_bytes()
}

/// Builds, in a new bare repository at `dir`, one object of every odd kind and a ref to each
/// (`refs/corpus/<name>`, tags under `refs/tags/`). Returns the number of corpus objects.
pub fn malformed_corpus(dir: &Path) -> usize {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "--bare", "-b", "main"]);
    let mut refs: Vec<(String, String)> = Vec::new();
    let mut add = |name: &str, id: String| {
        refs.push((name.to_owned(), id.clone()));
        id
    };

    // Blobs, including a binary one and an empty one.
    let hello = add("blob-hello", literally(dir, "blob", b"hello\n"));
    let no_newline = add("blob-no-newline", literally(dir, "blob", b"world"));
    let binary: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let binary = add("blob-binary", literally(dir, "blob", &binary));
    add("blob-empty", literally(dir, "blob", b""));
    let empty_tree = add("tree-empty", literally(dir, "tree", b""));
    let submodule = "0123456789abcdef0123456789abcdef01234567";

    // Trees.
    let normal_tree = {
        let mut body = Vec::new();
        body.extend(tree_entry("100644", b"a", &hello));
        body.extend(tree_entry("100755", b"b", &no_newline));
        body.extend(tree_entry("120000", b"link", &hello));
        body.extend(tree_entry("160000", b"module", submodule));
        body.extend(tree_entry("40000", b"sub", &empty_tree));
        body.extend(tree_entry("100644", b"z-binary", &binary));
        add("tree-normal", literally(dir, "tree", &body))
    };
    let odd_trees: Vec<(&str, Vec<u8>)> = vec![
        (
            "tree-zero-padded-dir",
            tree_entry("040000", b"sub", &empty_tree),
        ),
        ("tree-zero-padded-file", tree_entry("0100644", b"a", &hello)),
        ("tree-100664", tree_entry("100664", b"a", &hello)),
        ("tree-short-mode", tree_entry("644", b"a", &hello)),
        (
            "tree-gitlink-padded",
            tree_entry("0160000", b"m", submodule),
        ),
        (
            "tree-unsorted",
            [
                tree_entry("100644", b"b", &hello),
                tree_entry("100644", b"a", &no_newline),
            ]
            .concat(),
        ),
        (
            "tree-duplicate",
            [
                tree_entry("100644", b"a", &hello),
                tree_entry("100644", b"a", &hello),
            ]
            .concat(),
        ),
        (
            "tree-odd-names",
            [
                tree_entry("100644", b"with space", &hello),
                tree_entry("100644", "ünïcode".as_bytes(), &hello),
                tree_entry("100644", b"\xff\xfe bytes", &hello),
                tree_entry("100644", b".git", &hello),
                tree_entry("40000", b"..", &empty_tree),
            ]
            .concat(),
        ),
        ("tree-empty-name", tree_entry("100644", b"", &hello)),
        ("tree-garbage", b"this is not a tree at all".to_vec()),
        (
            "tree-truncated",
            tree_entry("100644", b"a", &hello)[..20].to_vec(),
        ),
    ];
    for (name, body) in odd_trees {
        add(name, literally(dir, "tree", &body));
    }

    // Commits.
    let sig_lines =
        format!("author {SIG}\ncommitter C O Mitter <c@example.com> 1112911993 +0530\n");
    let base = add(
        "commit-normal",
        literally(
            dir,
            "commit",
            &commit(&normal_tree, &[], &format!("{sig_lines}\nmessage\n")),
        ),
    );
    let second = add(
        "commit-child",
        literally(
            dir,
            "commit",
            &commit(&empty_tree, &[&base], &format!("{sig_lines}\nchild\n")),
        ),
    );
    let gpgsig = "gpgsig -----BEGIN PGP SIGNATURE-----\n \n iQEzBAABCAAdFiEE\n =abcd\n -----END PGP SIGNATURE-----\n";
    let mergetag = format!(
        "mergetag object {base}\n type commit\n tag v0\n tagger {SIG}\n \n tagged\n -----BEGIN PGP SIGNATURE-----\n xyz\n -----END PGP SIGNATURE-----\n"
    );
    let odd_commits: Vec<(&str, Vec<u8>)> = vec![
        (
            "commit-no-author",
            commit(&empty_tree, &[], "committer C <c@x> 1 +0000\n\nm\n"),
        ),
        (
            "commit-no-committer",
            commit(&empty_tree, &[], &format!("author {SIG}\n\nm\n")),
        ),
        ("commit-no-signatures", commit(&empty_tree, &[], "\nm\n")),
        (
            "commit-tz-long",
            commit(
                &empty_tree,
                &[],
                "author A <a> 1 +1234567\ncommitter A <a> 1 +1234567\n\nm\n",
            ),
        ),
        (
            "commit-tz-minus-zero",
            commit(
                &empty_tree,
                &[],
                "author A <a> 1 -0000\ncommitter A <a> 1 -0000\n\nm\n",
            ),
        ),
        (
            "commit-tz-short",
            commit(
                &empty_tree,
                &[],
                "author A <a> 1 +100\ncommitter A <a> 1 +100\n\nm\n",
            ),
        ),
        (
            "commit-tz-missing",
            commit(&empty_tree, &[], "author A <a> 1\ncommitter A <a> 1\n\nm\n"),
        ),
        (
            "commit-time-missing",
            commit(&empty_tree, &[], "author A <a>\ncommitter A <a>\n\nm\n"),
        ),
        (
            "commit-time-negative",
            commit(
                &empty_tree,
                &[],
                "author A <a> -5 +0000\ncommitter A <a> -5 +0000\n\nm\n",
            ),
        ),
        (
            "commit-time-huge",
            commit(
                &empty_tree,
                &[],
                "author A <a> 99999999999999999999 +0000\ncommitter A <a> 1 +0000\n\nm\n",
            ),
        ),
        (
            "commit-time-padded",
            commit(
                &empty_tree,
                &[],
                "author A <a> 0001 +0000\ncommitter A <a> 1 +0000\n\nm\n",
            ),
        ),
        (
            "commit-no-email-brackets",
            commit(
                &empty_tree,
                &[],
                "author A a@x 1 +0000\ncommitter A <a> 1 +0000\n\nm\n",
            ),
        ),
        (
            "commit-trailing-junk",
            commit(
                &empty_tree,
                &[],
                "author A <a> 1 +0000 junk\ncommitter A <a> 1 +0000\n\nm\n",
            ),
        ),
        (
            "commit-double-space",
            commit(
                &empty_tree,
                &[],
                "author A  <a>  1 +0000\ncommitter A <a> 1 +0000\n\nm\n",
            ),
        ),
        (
            "commit-crlf-headers",
            commit(
                &empty_tree,
                &[],
                "author A <a> 1 +0000\r\ncommitter A <a> 1 +0000\r\n\r\nm\r\n",
            ),
        ),
        (
            "commit-crlf-tree",
            format!("tree {empty_tree}\r\nauthor A <a> 1 +0000\r\n\r\nm\r\n").into_bytes(),
        ),
        (
            "commit-extra-no-value",
            commit(&empty_tree, &[], &format!("{sig_lines}foo\n\nm\n")),
        ),
        (
            "commit-extra-empty-value",
            commit(&empty_tree, &[], &format!("{sig_lines}foo \n\nm\n")),
        ),
        (
            "commit-extra-custom",
            commit(
                &empty_tree,
                &[],
                &format!("{sig_lines}HG:extra branch=x\nx-y z\n\nm\n"),
            ),
        ),
        (
            "commit-uppercase-hex",
            commit(
                &empty_tree.to_uppercase(),
                &[&base.to_uppercase()],
                &format!("{sig_lines}\nm\n"),
            ),
        ),
        (
            "commit-nul-message",
            commit(&empty_tree, &[], &format!("{sig_lines}\nhello\0world\n")),
        ),
        (
            "commit-no-trailing-newline",
            commit(&empty_tree, &[], &format!("{sig_lines}\nno newline")),
        ),
        ("commit-headers-only", commit(&empty_tree, &[], &sig_lines)),
        (
            "commit-headers-no-final-newline",
            commit(&empty_tree, &[], &sig_lines[..sig_lines.len() - 1]),
        ),
        (
            "commit-empty-message",
            commit(&empty_tree, &[], &format!("{sig_lines}\n")),
        ),
        (
            "commit-leading-blank-lines",
            commit(&empty_tree, &[], &format!("{sig_lines}\n\n\nm\n")),
        ),
        (
            "commit-gpgsig",
            commit(
                &empty_tree,
                &[&base],
                &format!("{sig_lines}{gpgsig}\nsigned\n"),
            ),
        ),
        (
            "commit-gpgsig-sha256",
            commit(
                &empty_tree,
                &[&base],
                &format!(
                    "{sig_lines}gpgsig-sha256 -----BEGIN SSH SIGNATURE-----\n abc\n -----END SSH SIGNATURE-----\n\nm\n"
                ),
            ),
        ),
        (
            "commit-mergetag",
            commit(
                &empty_tree,
                &[&base, &second],
                &format!("{sig_lines}{mergetag}\nmerge\n"),
            ),
        ),
        (
            "commit-encoding",
            [
                commit(
                    &empty_tree,
                    &[],
                    &format!("{sig_lines}encoding ISO-8859-1\n\n"),
                ),
                b"caf\xe9\n".to_vec(),
            ]
            .concat(),
        ),
        (
            "commit-encoding-after-extra",
            commit(
                &empty_tree,
                &[],
                &format!("{sig_lines}x-a b\nencoding UTF-8\n\nm\n"),
            ),
        ),
        (
            "commit-author-before-parent",
            format!("tree {empty_tree}\nauthor {SIG}\nparent {base}\ncommitter {SIG}\n\nm\n")
                .into_bytes(),
        ),
        (
            "commit-committer-first",
            commit(
                &empty_tree,
                &[],
                &format!("committer {SIG}\nauthor {SIG}\n\nm\n"),
            ),
        ),
        (
            "commit-duplicate-author",
            commit(
                &empty_tree,
                &[],
                &format!("author {SIG}\nauthor {SIG}\n\nm\n"),
            ),
        ),
        (
            "commit-continuation-first",
            commit(
                &empty_tree,
                &[],
                &format!(" orphan continuation\n{sig_lines}\nm\n"),
            ),
        ),
        ("commit-garbage", b"not a commit".to_vec()),
        ("commit-empty", b"".to_vec()),
    ];
    let mut octopus_parents = vec![base.clone(), second.clone()];
    for (name, body) in odd_commits {
        let id = add(name, literally(dir, "commit", &body));
        if octopus_parents.len() < 5 && name.starts_with("commit-tz") {
            octopus_parents.push(id);
        }
    }
    let parents: Vec<&str> = octopus_parents.iter().map(String::as_str).collect();
    let octopus = add(
        "commit-octopus",
        literally(
            dir,
            "commit",
            &commit(&normal_tree, &parents, &format!("{sig_lines}\noctopus\n")),
        ),
    );

    // Tags.
    let tag = |object: &str, kind: &str, name: &str, rest: &str| {
        format!("object {object}\ntype {kind}\ntag {name}\n{rest}").into_bytes()
    };
    let tagger = format!("tagger {SIG}\n");
    let normal_tag = add(
        "tag-normal",
        literally(
            dir,
            "tag",
            &tag(&base, "commit", "v1", &format!("{tagger}\nrelease\n")),
        ),
    );
    let odd_tags: Vec<(&str, Vec<u8>)> = vec![
        (
            "tag-no-tagger",
            tag(&base, "commit", "v2.6.11", "\nold style\n"),
        ),
        ("tag-no-message", tag(&base, "commit", "v3", &tagger)),
        (
            "tag-no-message-blank",
            tag(&base, "commit", "v3b", &format!("{tagger}\n")),
        ),
        (
            "tag-extra-headers",
            tag(
                &base,
                "commit",
                "v4",
                &format!("{tagger}x-foo bar\nencoding UTF-8\n\nm\n"),
            ),
        ),
        (
            "tag-name-space",
            tag(&base, "commit", "v1 0", &format!("{tagger}\nm\n")),
        ),
        (
            "tag-name-dots",
            tag(&base, "commit", "a..b", &format!("{tagger}\nm\n")),
        ),
        (
            "tag-name-dash",
            tag(&base, "commit", "-v1", &format!("{tagger}\nm\n")),
        ),
        (
            "tag-name-tilde",
            tag(&base, "commit", "v1~2", &format!("{tagger}\nm\n")),
        ),
        (
            "tag-signed-pgp",
            tag(
                &base,
                "commit",
                "v5",
                &format!(
                    "{tagger}\nsigned\n-----BEGIN PGP SIGNATURE-----\n\niQEz\n-----END PGP SIGNATURE-----\n"
                ),
            ),
        ),
        (
            "tag-signed-ssh",
            tag(
                &base,
                "commit",
                "v6",
                &format!(
                    "{tagger}\nsigned\n-----BEGIN SSH SIGNATURE-----\nU1NI\n-----END SSH SIGNATURE-----\n"
                ),
            ),
        ),
        (
            "tag-signature-only",
            tag(
                &base,
                "commit",
                "v7",
                &format!(
                    "{tagger}\n-----BEGIN PGP SIGNATURE-----\nx\n-----END PGP SIGNATURE-----\n"
                ),
            ),
        ),
        (
            "tag-of-tag",
            tag(
                &normal_tag,
                "tag",
                "v1-again",
                &format!("{tagger}\nnested\n"),
            ),
        ),
        (
            "tag-of-tree",
            tag(&normal_tree, "tree", "tree-tag", &format!("{tagger}\nm\n")),
        ),
        (
            "tag-of-blob",
            tag(&hello, "blob", "blob-tag", &format!("{tagger}\nm\n")),
        ),
        (
            "tag-wrong-type",
            tag(&base, "blob", "liar", &format!("{tagger}\nm\n")),
        ),
        (
            "tag-uppercase-object",
            tag(
                &base.to_uppercase(),
                "commit",
                "v8",
                &format!("{tagger}\nm\n"),
            ),
        ),
        (
            "tag-bad-tagger",
            tag(&base, "commit", "v9", "tagger nobody\n\nm\n"),
        ),
        (
            "tag-crlf",
            tag(&base, "commit", "v10", "tagger A <a> 1 +0000\r\n\r\nm\r\n"),
        ),
        ("tag-garbage", b"not a tag".to_vec()),
    ];
    for (name, body) in odd_tags {
        add(name, literally(dir, "tag", &body));
    }

    let count = refs.len();
    // Written as files: `git update-ref` refuses to point a ref at an object it cannot parse.
    for (name, id) in &refs {
        let full = if name.starts_with("tag-") {
            format!("refs/tags/{name}")
        } else {
            format!("refs/corpus/{name}")
        };
        let path = dir.join(&full);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, format!("{id}\n")).unwrap();
    }
    git(dir, &["update-ref", "refs/heads/main", &octopus]);
    git(
        dir,
        &["symbolic-ref", "refs/corpus/symbolic", "refs/heads/main"],
    );
    count
}

/// A synthetic history made with `git fast-import`: `commits` commits on `main` touching a
/// few files each (so deltas form), side branches merged back, annotated and lightweight
/// tags, and a note.
pub fn synthetic_history(dir: &Path, commits: usize) {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "--bare", "-b", "main"]);
    let mut script = String::new();
    let files = 40;
    let mut contents: Vec<String> = (0..files)
        .map(|f| {
            (0..60)
                .map(|l| {
                    format!("file {f} line {l}: the quick brown fox jumps over the lazy dog\n")
                })
                .collect()
        })
        .collect();
    let mut last_main = None;
    for c in 0..commits {
        let branch = if c % 50 == 25 { "side" } else { "main" };
        let commit_mark = c + 1;
        script.push_str(&format!(
            "commit refs/heads/{branch}\nmark :{commit_mark}\n"
        ));
        script.push_str(&format!(
            "author A U Thor <author@example.com> {} +0100\ncommitter C O Mitter <c@example.com> {} -0500\n",
            1_600_000_000 + c * 60,
            1_600_000_000 + c * 60 + 5
        ));
        let message = format!("commit {c}\n\nChanges a few files.\n");
        script.push_str(&format!("data {}\n{message}", message.len()));
        if branch == "side" {
            if let Some(m) = last_main {
                script.push_str(&format!("from :{m}\n"));
            }
        } else if let Some(m) = last_main {
            script.push_str(&format!("from :{m}\n"));
            if c % 50 == 26 {
                script.push_str(&format!("merge :{}\n", commit_mark - 1));
            }
        }
        for k in 0..3 {
            let f = (c * 7 + k * 13) % files;
            let line = (c * 3 + k) % 60;
            let mut lines: Vec<String> = contents[f].lines().map(str::to_owned).collect();
            lines[line] = format!("file {f} line {line}: changed in commit {c}");
            if c % 10 == 0 {
                lines.push(format!("appended in {c}"));
            }
            contents[f] = lines.join("\n") + "\n";
            let path = format!("dir{}/sub{}/file{f}.txt", f % 4, f % 3);
            script.push_str(&format!(
                "M 100644 inline {path}\ndata {}\n{}\n",
                contents[f].len(),
                contents[f]
            ));
        }
        if c % 97 == 0 {
            script.push_str(&format!(
                "M 100755 inline bin/run{c}.sh\ndata 10\n#!/bin/sh\n\n"
            ));
        }
        if branch == "main" {
            last_main = Some(commit_mark);
        }
        if c % 200 == 0 {
            script.push_str(&format!(
                "tag v{c}\nfrom :{commit_mark}\ntagger T <t@example.com> {} +0000\ndata 8\nrelease\n",
                1_600_000_000 + c * 60
            ));
        }
        if c == 10 {
            script.push_str(&format!("reset refs/tags/light\nfrom :{commit_mark}\n\n"));
        }
    }
    if let Some(m) = last_main {
        script.push_str(&format!(
            "commit refs/notes/commits\ncommitter N <n@example.com> 1600000000 +0000\ndata 5\nnote\nN inline :{m}\ndata 9\nreviewed\n"
        ));
    }
    git_bytes(dir, &["fast-import", "--quiet"], Some(script.as_bytes()));
}
