//! git's object format: parsing tree, commit and tag bodies into fields, and writing them back.
//!
//! Parsing is as lenient as git's own reader where git can still follow the object's links
//! (so history that git walks, we walk), and `serialize` writes the canonical form. Whether an
//! object is canonical is decided by comparing the two, in `translate`.

use bstr::{BString, ByteSlice};

use crate::object::{
    Commit, EntryTarget, ExtraHeader, Kind, Node, Sha1, Signature, Tag, Tree, TreeEntry,
    mode_is_gitlink,
};

/// Parses a tree, commit or tag body. `None` means git could not parse it either
/// (truncated tree entry, commit without a `tree` line, tag without `object`, …).
pub fn parse(kind: Kind, body: &[u8]) -> Option<Node<Sha1>> {
    match kind {
        Kind::Blob => None,
        Kind::Tree => parse_tree(body).map(Node::Tree),
        Kind::Commit => parse_commit(body).map(Node::Commit),
        Kind::Tag => parse_tag(body).map(Node::Tag),
    }
}

/// Writes the canonical git body of a node.
pub fn serialize(node: &Node<Sha1>, out: &mut Vec<u8>) {
    match node {
        Node::Tree(tree) => serialize_tree(tree, out),
        Node::Commit(commit) => serialize_commit(commit, out),
        Node::Tag(tag) => serialize_tag(tag, out),
    }
}

/// The git body of a merge commit: `tree`, parents `[ours, theirs]` (the first parent is
/// the branch merged into), author, committer and message (a final newline added when
/// missing, as `git commit` leaves one). Canonical, so the store keeps it without verbatim
/// bytes. The tree is typically a `gitx::merge_commits` outcome's.
pub fn merge_commit(
    tree: Sha1,
    ours: Sha1,
    theirs: Sha1,
    author: &Signature,
    committer: &Signature,
    message: &str,
) -> Vec<u8> {
    let mut message = BString::from(message);
    if !message.ends_with(b"\n") {
        message.push(b'\n');
    }
    let mut out = Vec::with_capacity(256 + message.len());
    serialize_commit(
        &Commit {
            tree,
            parents: vec![ours, theirs],
            author: Some(author.clone()),
            committer: Some(committer.clone()),
            encoding: None,
            extra_headers: Vec::new(),
            message: Some(message),
        },
        &mut out,
    );
    out
}

/// One entry of a git tree, borrowed from its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawTreeEntry<'a> {
    pub mode: &'a [u8],
    pub name: &'a [u8],
    pub id: Sha1,
}

impl RawTreeEntry<'_> {
    pub fn is_gitlink(&self) -> bool {
        mode_is_gitlink(self.mode)
    }

    pub fn is_directory(&self) -> bool {
        crate::object::parse_octal_mode(self.mode).is_some_and(|m| m & 0o170000 == 0o040000)
    }
}

/// The entries of a git tree body, without copying; yields `Err` (and stops) where the body
/// stops being a tree.
pub fn tree_entries(body: &[u8]) -> impl Iterator<Item = Result<RawTreeEntry<'_>, ()>> {
    let mut rest = body;
    let mut failed = false;
    std::iter::from_fn(move || {
        if rest.is_empty() || failed {
            return None;
        }
        let entry = (|| {
            // Modes and names are short: a plain scan beats a vectorised search here.
            let space = rest.iter().position(|&b| b == b' ')?;
            let mode = &rest[..space];
            if !mode.iter().all(|c| (b'0'..=b'7').contains(c)) {
                return None;
            }
            let after = &rest[space + 1..];
            let nul = after.iter().position(|&b| b == 0)?;
            let id = Sha1::from_bytes(after.get(nul + 1..nul + 21)?)?;
            let entry = RawTreeEntry {
                mode,
                name: &after[..nul],
                id,
            };
            rest = &after[nul + 21..];
            Some(entry)
        })();
        failed = entry.is_none();
        Some(entry.ok_or(()))
    })
}

fn parse_tree(body: &[u8]) -> Option<Tree<Sha1>> {
    let entries = tree_entries(body)
        .map(|e| {
            e.map(|e| TreeEntry {
                mode: e.mode.into(),
                name: e.name.into(),
                target: if e.is_gitlink() {
                    EntryTarget::Gitlink(e.id)
                } else {
                    EntryTarget::Object(e.id)
                },
            })
        })
        .collect::<Result<_, ()>>()
        .ok()?;
    Some(Tree { entries })
}

/// The tree id of a commit body, read from its first line only.
pub fn commit_tree(body: &[u8]) -> Option<Sha1> {
    let line = body.strip_prefix(b"tree ")?.get(..41)?;
    if line[40] != b'\n' {
        return None;
    }
    hex_id(&line[..40])
}

/// The tree and parents of a commit read the way git's `parse_commit_buffer` reads them: a
/// `tree` line first, then consecutive `parent` lines; the rest is not looked at. Works on
/// commits too odd for `parse`.
pub fn commit_links(body: &[u8]) -> Option<(Sha1, Vec<Sha1>)> {
    let tree = commit_tree(body)?;
    let mut rest = &body[46..];
    let mut parents = Vec::new();
    while let Some(line) = rest.strip_prefix(b"parent ") {
        match line.get(..41) {
            Some(hex) if hex[40] == b'\n' => {
                parents.push(hex_id(&hex[..40])?);
                rest = &line[41..];
            }
            _ => break,
        }
    }
    Some((tree, parents))
}

fn serialize_tree(tree: &Tree<Sha1>, out: &mut Vec<u8>) {
    for entry in &tree.entries {
        out.extend_from_slice(&entry.mode);
        out.push(b' ');
        out.extend_from_slice(&entry.name);
        out.push(0);
        let sha = match &entry.target {
            EntryTarget::Object(sha) | EntryTarget::Gitlink(sha) => sha,
        };
        out.extend_from_slice(sha.as_bytes());
    }
}

/// Header lines (continuations unfolded) and the message after the blank line, if any.
struct Headers<'a> {
    lines: Vec<(&'a [u8], BString)>,
    message: Option<&'a [u8]>,
}

fn split_headers(body: &[u8]) -> Headers<'_> {
    let mut lines: Vec<(&[u8], BString)> = Vec::new();
    let mut rest = body;
    let mut message = None;
    while !rest.is_empty() {
        let (line, next) = match rest.find_byte(b'\n') {
            Some(nl) => (&rest[..nl], &rest[nl + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        if line.is_empty() && rest.len() > line.len() {
            message = Some(next);
            break;
        }
        if let (Some(continuation), Some((_, value))) = (line.strip_prefix(b" "), lines.last_mut())
        {
            value.push(b'\n');
            value.extend_from_slice(continuation);
        } else {
            let (name, value) = match line.find_byte(b' ') {
                Some(sp) => (&line[..sp], &line[sp + 1..]),
                None => (line, &line[line.len()..]),
            };
            lines.push((name, value.into()));
        }
        rest = next;
    }
    Headers { lines, message }
}

fn write_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.push(b' ');
    // Multi-line values are folded with a leading space on each continuation line.
    for (i, line) in value.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\n ");
        }
        out.extend_from_slice(line);
    }
    out.push(b'\n');
}

fn hex_id(value: &[u8]) -> Option<Sha1> {
    Sha1::from_hex(value).ok()
}

fn parse_commit(body: &[u8]) -> Option<Commit<Sha1>> {
    let headers = split_headers(body);
    let mut lines = headers.lines.into_iter().peekable();
    // git requires `tree <hex>` first and takes only the `parent` lines right after it.
    let (name, value) = lines.next()?;
    if name != b"tree" {
        return None;
    }
    let tree = hex_id(&value)?;
    let mut parents = Vec::new();
    while let Some((b"parent", value)) = lines.peek().map(|(n, v)| (*n, v)) {
        parents.push(hex_id(value)?);
        lines.next();
    }
    let (mut author, mut committer, mut encoding) = (None, None, None);
    let mut extra_headers = Vec::new();
    for (name, value) in lines {
        match name {
            b"author" if author.is_none() => author = Some(parse_signature(&value)),
            b"committer" if committer.is_none() => committer = Some(parse_signature(&value)),
            b"encoding" if encoding.is_none() => encoding = Some(value),
            _ => extra_headers.push(ExtraHeader {
                name: name.into(),
                value,
            }),
        }
    }
    Some(Commit {
        tree,
        parents,
        author,
        committer,
        encoding,
        extra_headers,
        message: headers.message.map(Into::into),
    })
}

fn serialize_commit(c: &Commit<Sha1>, out: &mut Vec<u8>) {
    let mut hex = Vec::with_capacity(40);
    let mut id_line = |out: &mut Vec<u8>, name: &[u8], id: &Sha1| {
        hex.clear();
        id.write_hex(&mut hex);
        write_header(out, name, &hex);
    };
    id_line(out, b"tree", &c.tree);
    for parent in &c.parents {
        id_line(out, b"parent", parent);
    }
    if let Some(author) = &c.author {
        write_header(out, b"author", &format_signature(author));
    }
    if let Some(committer) = &c.committer {
        write_header(out, b"committer", &format_signature(committer));
    }
    if let Some(encoding) = &c.encoding {
        write_header(out, b"encoding", encoding);
    }
    for h in &c.extra_headers {
        write_header(out, &h.name, &h.value);
    }
    if let Some(message) = &c.message {
        out.push(b'\n');
        out.extend_from_slice(message);
    }
}

fn parse_tag(body: &[u8]) -> Option<Tag<Sha1>> {
    let headers = split_headers(body);
    let mut lines = headers.lines.into_iter();
    let (name, value) = lines.next()?;
    if name != b"object" {
        return None;
    }
    let target = hex_id(&value)?;
    let (name, target_type) = lines.next()?;
    if name != b"type" {
        return None;
    }
    let (mut tag_name, mut tagger) = (None, None);
    let mut extra_headers = Vec::new();
    for (name, value) in lines {
        match name {
            b"tag" if tag_name.is_none() => tag_name = Some(value),
            b"tagger" if tagger.is_none() => tagger = Some(parse_signature(&value)),
            _ => extra_headers.push(ExtraHeader {
                name: name.into(),
                value,
            }),
        }
    }
    let (message, signature) = match headers.message {
        None => (None, None),
        Some(text) => {
            let split = signature_start(text);
            let signature = (split < text.len()).then(|| text[split..].into());
            (Some(text[..split].into()), signature)
        }
    };
    Some(Tag {
        target,
        target_type,
        name: tag_name,
        tagger,
        extra_headers,
        message,
        signature,
    })
}

/// Where the signature block of a tag message starts: the last line that opens one, as git's
/// `parse_signed_buffer` decides; `text.len()` when there is none.
fn signature_start(text: &[u8]) -> usize {
    const MARKERS: [&[u8]; 4] = [
        b"-----BEGIN PGP SIGNATURE-----",
        b"-----BEGIN PGP MESSAGE-----",
        b"-----BEGIN SSH SIGNATURE-----",
        b"-----BEGIN SIGNED MESSAGE-----",
    ];
    let mut found = text.len();
    let mut pos = 0;
    while pos < text.len() {
        if MARKERS.iter().any(|m| text[pos..].starts_with(m)) {
            found = pos;
        }
        pos = text[pos..]
            .find_byte(b'\n')
            .map_or(text.len(), |nl| pos + nl + 1);
    }
    found
}

fn serialize_tag(t: &Tag<Sha1>, out: &mut Vec<u8>) {
    let mut hex = Vec::with_capacity(40);
    t.target.write_hex(&mut hex);
    write_header(out, b"object", &hex);
    write_header(out, b"type", &t.target_type);
    if let Some(name) = &t.name {
        write_header(out, b"tag", name);
    }
    if let Some(tagger) = &t.tagger {
        write_header(out, b"tagger", &format_signature(tagger));
    }
    for h in &t.extra_headers {
        write_header(out, &h.name, &h.value);
    }
    if t.message.is_some() || t.signature.is_some() {
        out.push(b'\n');
        out.extend_from_slice(t.message.as_deref().map_or(&b""[..], |m| &m[..]));
        out.extend_from_slice(t.signature.as_deref().map_or(&b""[..], |m| &m[..]));
    }
}

/// Reads `Name <email> 1700000000 +0100` leniently: what does not fit is left at zero, and the
/// comparison in `translate` keeps the original bytes.
pub fn parse_signature(value: &[u8]) -> Signature {
    let mut sig = Signature {
        name: BString::default(),
        email: BString::default(),
        time: 0,
        tz_offset_minutes: 0,
    };
    let Some(lt) = value.find_byte(b'<') else {
        sig.name = value.into();
        return sig;
    };
    let name = &value[..lt];
    sig.name = name.strip_suffix(b" ").unwrap_or(name).into();
    let Some(gt) = value[lt..].find_byte(b'>').map(|i| lt + i) else {
        sig.email = value[lt + 1..].into();
        return sig;
    };
    sig.email = value[lt + 1..gt].into();
    let mut rest = value[gt + 1..].split(|&b| b == b' ').skip(1);
    if let Some(time) = rest.next() {
        sig.time = std::str::from_utf8(time)
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
    }
    if let Some(tz) = rest.next() {
        sig.tz_offset_minutes = parse_tz(tz).unwrap_or(0);
    }
    sig
}

fn parse_tz(tz: &[u8]) -> Option<i32> {
    let (sign, digits) = match tz.split_first()? {
        (b'+', d) => (1, d),
        (b'-', d) => (-1, d),
        _ => return None,
    };
    if digits.len() != 4 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = |i: usize| i32::from(digits[i] - b'0');
    Some(sign * ((n(0) * 10 + n(1)) * 60 + n(2) * 10 + n(3)))
}

pub fn format_signature(sig: &Signature) -> Vec<u8> {
    let mut out = Vec::with_capacity(sig.name.len() + sig.email.len() + 32);
    out.extend_from_slice(&sig.name);
    out.extend_from_slice(b" <");
    out.extend_from_slice(&sig.email);
    out.extend_from_slice(b"> ");
    let tz = sig.tz_offset_minutes;
    let sign = if tz < 0 { '-' } else { '+' };
    let abs = tz.unsigned_abs();
    out.extend_from_slice(format!("{} {sign}{:02}{:02}", sig.time, abs / 60, abs % 60).as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `fuzz/fuzz_targets/git_objects.rs` (its input is kept in
    /// `fuzz/regressions/git_objects/`): a `parent` line that is not hex. The tree is still
    /// read, the links are not, and the full parser refuses the commit.
    #[test]
    fn a_parent_line_that_is_not_hex_has_a_tree_but_no_links() {
        let body = include_bytes!("../../fuzz/regressions/git_objects/harness-bad-parent-hex");
        assert!(commit_tree(body).is_some());
        assert!(commit_links(body).is_none());
        assert!(parse(Kind::Commit, body).is_none());
        assert!(crate::git::fsck::check(Kind::Commit, body).is_err());
    }

    fn round_trip(kind: Kind, body: &[u8]) -> Vec<u8> {
        let node = parse(kind, body).expect("parses");
        let mut out = Vec::new();
        serialize(&node, &mut out);
        out
    }

    #[test]
    fn canonical_commit_round_trips() {
        let body = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\
parent 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\
author A U Thor <a@example.com> 1700000000 +0530\n\
committer C O Mitter <c@example.com> 1700000001 -0700\n\
encoding ISO-8859-1\n\
gpgsig -----BEGIN PGP SIGNATURE-----\n \n abc\n -----END PGP SIGNATURE-----\n\
\n\
subject\n\nbody\n";
        assert_eq!(round_trip(Kind::Commit, body), body);
        let Some(Node::Commit(c)) = parse(Kind::Commit, body) else {
            panic!()
        };
        assert_eq!(c.author.unwrap().tz_offset_minutes, 330);
        assert_eq!(c.committer.unwrap().tz_offset_minutes, -420);
        assert_eq!(
            c.extra_headers[0].value,
            "-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----"
        );
    }

    #[test]
    fn lossy_forms_are_detected_by_comparison() {
        for body in [
            &b"tree 4B825DC642CB6EB9A060E54BF8D69288FBEE4904\nauthor a <b> 1 +0000\ncommitter a <b> 1 +0000\n\nm"[..],
            b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor a <b> 1 -0000\n\nm",
            b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nfoo\n\nm",
            b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\ncommitter a <b> 1 +0000\nauthor a <b> 1 +0000\n\nm",
        ] {
            assert_ne!(round_trip(Kind::Commit, body), body);
        }
    }

    #[test]
    fn git_rejects_what_we_call_unparsed() {
        assert!(parse(Kind::Commit, b"").is_none());
        assert!(
            parse(
                Kind::Commit,
                b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\r\n"
            )
            .is_none()
        );
        assert!(parse(Kind::Tree, b"100644 a\0short").is_none());
        assert!(parse(Kind::Tree, b"10x644 a\0aaaaaaaaaaaaaaaaaaaa").is_none());
        assert!(parse(Kind::Tag, b"type commit\n").is_none());
    }

    #[test]
    fn tag_signature_is_split_at_the_last_marker() {
        let body = b"object 4b825dc642cb6eb9a060e54bf8d69288fbee4904\ntype commit\ntag v1\n\
tagger T <t@x> 1 +0000\n\nmsg\n-----BEGIN PGP SIGNATURE-----\nx\n-----BEGIN SSH SIGNATURE-----\ny\n";
        let Some(Node::Tag(t)) = parse(Kind::Tag, body) else {
            panic!()
        };
        assert_eq!(
            t.signature.as_deref().unwrap(),
            &b"-----BEGIN SSH SIGNATURE-----\ny\n"[..]
        );
        assert_eq!(round_trip(Kind::Tag, body), body);
    }

    #[test]
    fn signatures() {
        let s = parse_signature(b"Name <e@x> -5 +1234");
        assert_eq!((s.time, s.tz_offset_minutes), (-5, 754));
        assert_eq!(format_signature(&s), b"Name <e@x> -5 +1234");
        let odd = parse_signature(b"no email");
        assert_eq!(odd.name, "no email");
    }

    #[test]
    fn a_merge_commit_is_canonical_with_both_parents_in_order() {
        let id = |byte: u8| Sha1([byte; 20]);
        let person = |name: &str, time: i64, tz: i32| Signature {
            name: name.into(),
            email: format!("{}@example.com", name.to_lowercase()).into(),
            time,
            tz_offset_minutes: tz,
        };
        let body = merge_commit(
            id(1),
            id(2),
            id(3),
            &person("Ann", 1_700_000_000, 90),
            &person("Bot", 1_700_000_001, -300),
            "Promote goal 15",
        );
        let expected = format!(
            "tree {}\nparent {}\nparent {}\n\
             author Ann <ann@example.com> 1700000000 +0130\n\
             committer Bot <bot@example.com> 1700000001 -0500\n\
             \nPromote goal 15\n",
            id(1),
            id(2),
            id(3)
        );
        assert_eq!(body.as_bstr(), expected.as_bytes().as_bstr());
        assert_eq!(round_trip(Kind::Commit, &body), body);
        assert!(crate::git::fsck::check(Kind::Commit, &body).is_ok());
        // A message that ends its line already is kept as it is.
        let again = merge_commit(
            id(1),
            id(2),
            id(3),
            &person("Ann", 1_700_000_000, 90),
            &person("Bot", 1_700_000_001, -300),
            "Promote goal 15\n",
        );
        assert_eq!(again, body);
    }
}
