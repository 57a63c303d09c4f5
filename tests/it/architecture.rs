//! The layering of `src/`, checked on the source text (rust-analyzer's "tidy" tests in
//! spirit): top-level modules only depend on lower layers, sibling modules inside a module
//! depend on each other without cycles, and redb, axum/hyper/tower and gix are named only in
//! their one home. Test code (`#[cfg(test)]` items) is left out: a test may reach anywhere.
//! `docs/ARCHITECTURE.md` lists these invariants.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level modules from the bottom layer up. A module may name modules of lower
/// layers only; modules of one layer are independent of each other. A new module has to be
/// placed here, which is the point.
const LAYERS: &[&[&str]] = &[
    &["hex", "progress", "protocol", "delta", "glob"],
    &["object"],
    &["gitx", "attest"],
    &["git", "pipeline"],
    &["store"],
    &["history", "import", "auth", "evidence"],
    &["packing", "gate"],
    &["export", "fsck", "served", "browse"],
    &["upload", "receive", "edit", "goals"],
    &["server"],
    &["cli"],
];

/// External crates and the only places that may name them.
const HOMES: &[(&str, &[&str])] = &[
    ("redb", &["store/redb/"]),
    ("axum", &["server/"]),
    ("hyper", &["server/"]),
    ("hyper_util", &["server/"]),
    ("http_body_util", &["server/"]),
    ("webpki_roots", &["server/"]),
    ("tower", &["server/"]),
    ("tower_http", &["server/"]),
    ("utoipa_axum", &["server/"]),
    ("tokio_rustls", &["server/"]),
    // gitoxide, every crate of it: only under `gitx/`.
    ("gix", &["gitx/"]),
    ("gix_pack", &["gitx/"]),
    ("gix_merge", &["gitx/"]),
    ("gix_diff", &["gitx/"]),
    ("gix_filter", &["gitx/"]),
    ("gix_worktree", &["gitx/"]),
    ("gix_revwalk", &["gitx/"]),
    ("gix_revision", &["gitx/"]),
    ("gix_index", &["gitx/"]),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/`, as its path relative to `src/`, with its code: comments,
/// string and character literals blanked, `#[cfg(test)]` items removed.
fn sources() -> BTreeMap<String, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let text = std::fs::read_to_string(&path).unwrap();
                out.insert(rel, without_tests(&code_only(&text)));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&src(), &src(), &mut out);
    out
}

/// `text` with comments and the contents of string and character literals replaced by
/// spaces (newlines kept), so that braces and paths in them do not count.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_before(&chars, i) {
            // A raw string: r"…", r#"…"#, and so on.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            out.push('"');
            j += 1;
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && (0..hashes).all(|k| chars.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                out.push(blank(chars[j]));
                j += 1;
            }
            out.push('"');
            i = j;
        } else if c == '"' {
            out.push('"');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push('"');
            i += 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{..}'), or a lifetime ('a), left as is.
            if next == Some('\\') {
                // Past the backslash and the character it escapes ('\'' included).
                let mut j = i + 3;
                while j < chars.len() && chars[j] != '\'' {
                    j += 1;
                }
                out.push_str("' '");
                i = j + 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                out.push_str("' '");
                i += 3;
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// `code` without the items marked `#[cfg(test)]` (up to their `;` or matching `}`).
fn without_tests(code: &str) -> String {
    let mut out = code.to_owned();
    while let Some(at) = out.find("#[cfg(test)]") {
        let rest = &out[at..];
        let end = match (rest.find(';'), rest.find('{')) {
            (Some(semi), Some(brace)) if semi < brace => at + semi + 1,
            (_, Some(brace)) => {
                let mut depth = 0usize;
                let mut end = out.len();
                for (k, c) in out[at + brace..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = at + brace + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (Some(semi), None) => at + semi + 1,
            (None, None) => out.len(),
        };
        out.replace_range(at..end, "");
    }
    out
}

/// The module path of a file: `auth/token.rs` → `[auth, token]`, `auth/mod.rs` → `[auth]`.
fn module_of(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(String::from)
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The identifiers that follow `prefix` (`crate::` or `super::`), brace groups expanded:
/// `crate::{a, b::c}` gives `a` and `b`.
fn names_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut from = 0;
    while let Some(found) = code[from..].find(prefix) {
        let at = from + found;
        from = at + prefix.len();
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[from..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    names.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                names.insert(name);
            }
        }
    }
    names
}

#[test]
fn top_level_modules_depend_only_on_lower_layers() {
    let sources = sources();
    let layer_of = |name: &str| LAYERS.iter().position(|layer| layer.contains(&name));
    let top_level: BTreeSet<String> = sources
        .keys()
        .map(|rel| module_of(rel)[0].clone())
        .collect();
    let mut problems = Vec::new();
    for module in &top_level {
        if module != "lib" && module != "main" && layer_of(module).is_none() {
            problems.push(format!("{module} is in no layer of LAYERS"));
        }
    }
    for (rel, code) in &sources {
        let me = &module_of(rel)[0];
        let Some(my_layer) = layer_of(me) else {
            continue;
        };
        for name in names_after(code, "crate::") {
            if &name == me || !top_level.contains(&name) {
                continue;
            }
            match layer_of(&name) {
                Some(layer) if layer < my_layer => {}
                _ => problems.push(format!(
                    "{rel} names crate::{name}, which is not below {me}"
                )),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn sibling_modules_have_no_dependency_cycles() {
    let sources = sources();
    let modules: BTreeSet<Vec<String>> = sources.keys().map(|rel| module_of(rel)).collect();
    // parent module → child → the siblings it names.
    let mut graphs: BTreeMap<Vec<String>, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (rel, code) in &sources {
        let me = module_of(rel);
        if me.len() < 2 {
            continue;
        }
        let (name, parent) = me.split_last().unwrap();
        let is_sibling = |other: &str| {
            let mut path = parent.to_vec();
            path.push(other.to_owned());
            other != name && modules.contains(&path)
        };
        let mut named: BTreeSet<String> = names_after(code, "super::")
            .into_iter()
            .filter(|n| n != "super" && is_sibling(n))
            .collect();
        let absolute = format!("crate::{}::", parent.join("::"));
        named.extend(
            names_after(code, &absolute)
                .into_iter()
                .filter(|n| is_sibling(n)),
        );
        graphs
            .entry(parent.to_vec())
            .or_default()
            .insert(name.clone(), named);
    }
    let mut problems = Vec::new();
    for (parent, graph) in &graphs {
        if let Some(cycle) = find_cycle(graph) {
            problems.push(format!("{}: {}", parent.join("::"), cycle.join(" → ")));
        }
    }
    assert!(problems.is_empty(), "cycles:\n{}", problems.join("\n"));
}

/// A cycle in `graph`, as the nodes on it with the first repeated at the end.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn storage_http_and_gix_crates_are_named_only_in_their_homes() {
    let mut problems = Vec::new();
    for (rel, code) in &sources() {
        for (krate, homes) in HOMES {
            if homes.iter().any(|home| rel.starts_with(home)) {
                continue;
            }
            let path = format!("{krate}::");
            let named = code.match_indices(&path).any(|(at, _)| {
                !code[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
            });
            if named {
                problems.push(format!("{rel} names {krate}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every gitoxide crate the manifest names has its home in `HOMES`, so none is used outside
/// `gitx/` unnoticed.
#[test]
fn every_gitoxide_dependency_has_a_home() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let mut missing = Vec::new();
    for line in manifest.lines() {
        let name = line.split(['=', ' ']).next().unwrap_or("");
        if name == "gix" || name.starts_with("gix-") {
            let krate = name.replace('-', "_");
            if !HOMES.iter().any(|(k, _)| *k == krate) {
                missing.push(krate);
            }
        }
    }
    assert!(missing.is_empty(), "no home in HOMES: {missing:?}");
}

/// The constructors of `store::Authorized` and the only places that may call them: refs
/// move only through the gate, or by an import the operator runs.
const AUTHORIZERS: &[(&str, &[&str])] = &[
    ("by_gate", &["gate/", "store/refs.rs"]),
    ("by_import", &["import/", "store/refs.rs"]),
];

#[test]
fn only_the_gate_and_import_authorize_ref_updates() {
    let mut problems = Vec::new();
    for (rel, code) in &sources() {
        for (constructor, homes) in AUTHORIZERS {
            if homes.iter().any(|home| rel.starts_with(home)) {
                continue;
            }
            if names_identifier(code, constructor) {
                problems.push(format!("{rel} calls Authorized::{constructor}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // And the store's one way to publish refs takes nothing else.
    let repo = &sources()["store/repo.rs"];
    assert!(
        repo.contains("authorized: &[Authorized],"),
        "Repo::commit must take authorized updates"
    );
}

/// Whether `ident` occurs in `code` as a whole identifier.
fn names_identifier(code: &str, ident: &str) -> bool {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    code.match_indices(ident).any(|(at, _)| {
        !code[..at].chars().next_back().is_some_and(is_ident)
            && !code[at + ident.len()..]
                .chars()
                .next()
                .is_some_and(is_ident)
    })
}

/// The checks see what they should: a cycle, an upward edge, a test-only edge ignored.
#[test]
fn the_layering_checks_read_code_as_code() {
    let code = code_only(
        "use crate::store::Repo; // crate::server\nlet s = \"crate::cli\"; let c = '{';\n\
         #[cfg(test)]\nmod tests { use crate::server::x; fn f() { let b = '}'; } }\n\
         use crate::{git::a, object};",
    );
    let code = without_tests(&code);
    let names = names_after(&code, "crate::");
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["git", "object", "store"]
    );
    let mut graph = BTreeMap::new();
    graph.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    graph.insert("b".to_owned(), BTreeSet::from(["c".to_owned()]));
    graph.insert("c".to_owned(), BTreeSet::from(["a".to_owned()]));
    assert_eq!(find_cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
    graph.get_mut("c").unwrap().clear();
    assert_eq!(find_cycle(&graph), None);
    assert!(names_identifier("x = A::by_gate(u);", "by_gate"));
    assert!(!names_identifier(
        "x = A::by_gates(u); by_gate_x",
        "by_gate"
    ));
}
