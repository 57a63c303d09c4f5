//! The canonical native encoding of trees, commits and tags, and their ids.
//!
//! The layout is specified in `docs/object-format.md`; the test vectors there are checked by
//! `tests::documented_vectors`. Decoding is strict (minimal varints, no trailing bytes, gitlink
//! flags consistent with modes), so one object has exactly one encoding and one id.

use bstr::BString;

use super::id::{Kind, ObjectId, Sha1};
use super::types::{
    Commit, EntryTarget, ExtraHeader, Node, Signature, Tag, Tree, TreeEntry, mode_is_gitlink,
};

/// BLAKE3 derive-key contexts, one per kind. Changing one changes every id: never do it.
pub const TREE_CONTEXT: &str = "forge 2026-11-24 native tree v1";
pub const COMMIT_CONTEXT: &str = "forge 2026-11-24 native commit v1";
pub const TAG_CONTEXT: &str = "forge 2026-11-24 native tag v1";

const FORM_PARSED: u8 = 0;
const FORM_UNPARSED: u8 = 1;
const TARGET_OBJECT: u8 = 0;
const TARGET_GITLINK: u8 = 1;

/// A tree, commit or tag in native form.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // parsed objects are the common case; boxing them costs more
pub enum NativeObject {
    /// The object's fields, with child references as native ids. `git_verbatim` holds the
    /// git bytes when serialising the fields does not reproduce them exactly (uppercase hex,
    /// `-0000` time zones, headers out of order, CRLF lines, …).
    Parsed {
        node: Node<ObjectId>,
        git_verbatim: Option<Vec<u8>>,
    },
    /// Git bytes that do not parse as this kind at all (git's own fsck rejects them too).
    /// Kept whole; such an object has no known children.
    Unparsed { kind: Kind, git_bytes: Vec<u8> },
}

impl NativeObject {
    pub fn kind(&self) -> Kind {
        match self {
            NativeObject::Parsed { node, .. } => node.kind(),
            NativeObject::Unparsed { kind, .. } => *kind,
        }
    }

    /// Every object this one refers to inside the repository.
    pub fn for_each_child(&self, f: impl FnMut(ObjectId)) {
        if let NativeObject::Parsed { node, .. } = self {
            node.for_each_child(f)
        }
    }
}

/// Why bytes are not a canonical native encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid native {kind} encoding: {reason}")]
pub struct DecodeError {
    pub kind: Kind,
    pub reason: &'static str,
}

/// The id of a tree, commit or tag from its canonical encoding.
pub fn native_id(kind: Kind, encoded: &[u8]) -> ObjectId {
    let context = match kind {
        Kind::Tree => TREE_CONTEXT,
        Kind::Commit => COMMIT_CONTEXT,
        Kind::Tag => TAG_CONTEXT,
        Kind::Blob => return ObjectId::for_blob(encoded),
    };
    let mut hasher = blake3::Hasher::new_derive_key(context);
    hasher.update(encoded);
    ObjectId(*hasher.finalize().as_bytes())
}

pub fn encode(object: &NativeObject) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(256));
    match object {
        NativeObject::Unparsed { git_bytes, .. } => {
            w.u8(FORM_UNPARSED);
            w.bytes(git_bytes);
        }
        NativeObject::Parsed { node, git_verbatim } => {
            w.u8(FORM_PARSED);
            match node {
                Node::Tree(tree) => w.tree(tree),
                Node::Commit(commit) => w.commit(commit),
                Node::Tag(tag) => w.tag(tag),
            }
            // Trees always re-serialise exactly, so they never carry a verbatim copy.
            if !matches!(node, Node::Tree(_)) {
                w.opt_bytes(git_verbatim.as_deref());
            }
        }
    }
    w.0
}

/// The encoding of a parsed tree, written straight from its entries (`count` of them), without
/// building a `NativeObject` first. Equal to `encode` of the same tree.
pub fn encode_tree<'a>(
    count: usize,
    entries: impl Iterator<Item = (&'a [u8], &'a [u8], EntryTarget<ObjectId>)>,
) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(2 + count * 48));
    w.u8(FORM_PARSED);
    w.uvarint(count as u64);
    for (mode, name, target) in entries {
        w.bytes(mode);
        w.bytes(name);
        match target {
            EntryTarget::Object(id) => {
                w.u8(TARGET_OBJECT);
                w.id(&id)
            }
            EntryTarget::Gitlink(sha) => {
                w.u8(TARGET_GITLINK);
                w.0.extend_from_slice(sha.as_bytes())
            }
        }
    }
    w.0
}

/// Length of the form byte and entry count at the start of a tree encoding.
pub fn tree_header_len(encoded: &[u8]) -> usize {
    1 + encoded
        .iter()
        .skip(1)
        .position(|b| b & 0x80 == 0)
        .map_or(encoded.len().saturating_sub(1), |i| i + 1)
}

pub fn decode(kind: Kind, bytes: &[u8]) -> Result<NativeObject, DecodeError> {
    let mut r = Reader {
        bytes,
        pos: 0,
        kind,
    };
    let object = match r.u8()? {
        FORM_UNPARSED => NativeObject::Unparsed {
            kind,
            git_bytes: r.bytes()?.to_vec(),
        },
        FORM_PARSED => {
            let node = match kind {
                Kind::Tree => Node::Tree(r.tree()?),
                Kind::Commit => Node::Commit(r.commit()?),
                Kind::Tag => Node::Tag(r.tag()?),
                Kind::Blob => return Err(r.error("blobs have no structured encoding")),
            };
            let git_verbatim = if kind == Kind::Tree {
                None
            } else {
                r.opt_bytes()?.map(<[u8]>::to_vec)
            };
            NativeObject::Parsed { node, git_verbatim }
        }
        _ => return Err(r.error("unknown form byte")),
    };
    if r.pos != bytes.len() {
        return Err(r.error("trailing bytes"));
    }
    Ok(object)
}

/// What a commit links to, read from its encoding without decoding the rest: enough to walk
/// history. An unparsed commit links to nothing (git cannot follow it either).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitLinks {
    pub tree: Option<ObjectId>,
    pub parents: Vec<ObjectId>,
    /// Committer time in seconds, 0 without a committer (as git's `commit->date`).
    pub committer_time: i64,
}

pub fn commit_links(encoded: &[u8]) -> Result<CommitLinks, DecodeError> {
    let mut r = Reader {
        bytes: encoded,
        pos: 0,
        kind: Kind::Commit,
    };
    if r.u8()? == FORM_UNPARSED {
        return Ok(CommitLinks {
            tree: None,
            parents: Vec::new(),
            committer_time: 0,
        });
    }
    let tree = r.id()?;
    let n = r.count(32)?;
    let parents = (0..n).map(|_| r.id()).collect::<Result<Vec<_>, _>>()?;
    r.signature()?;
    let committer_time = r.signature()?.map_or(0, |s| s.time);
    Ok(CommitLinks {
        tree: Some(tree),
        parents,
        committer_time,
    })
}

/// The object a tag points at and the type its `type` header claims, read from its
/// encoding; `None` for an unparsed tag.
pub fn tag_target(encoded: &[u8]) -> Result<Option<(ObjectId, &[u8])>, DecodeError> {
    let mut r = Reader {
        bytes: encoded,
        pos: 0,
        kind: Kind::Tag,
    };
    if r.u8()? == FORM_UNPARSED {
        return Ok(None);
    }
    let target = r.id()?;
    Ok(Some((target, r.bytes()?)))
}

/// Calls `f(mode, name, child)` for every entry of a tree encoding that names an object of
/// the repository (gitlinks are skipped), without decoding the tree.
pub fn for_each_tree_child(
    encoded: &[u8],
    mut f: impl FnMut(&[u8], &[u8], ObjectId),
) -> Result<(), DecodeError> {
    let mut r = Reader {
        bytes: encoded,
        pos: 0,
        kind: Kind::Tree,
    };
    if r.u8()? == FORM_UNPARSED {
        return Ok(());
    }
    let n = r.count(3 + 20)?;
    for _ in 0..n {
        let mode = r.bytes()?;
        let name = r.bytes()?;
        match r.u8()? {
            TARGET_OBJECT => f(mode, name, r.id()?),
            TARGET_GITLINK => {
                r.take(20)?;
            }
            _ => return Err(r.error("unknown entry target")),
        }
    }
    Ok(())
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, b: u8) {
        self.0.push(b)
    }

    fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn ivarint(&mut self, v: i64) {
        self.uvarint(((v << 1) ^ (v >> 63)) as u64)
    }

    fn bytes(&mut self, b: &[u8]) {
        self.uvarint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn opt_bytes(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.u8(0),
            Some(b) => {
                self.u8(1);
                self.bytes(b)
            }
        }
    }

    fn id(&mut self, id: &ObjectId) {
        self.0.extend_from_slice(id.as_bytes())
    }

    fn signature(&mut self, sig: Option<&Signature>) {
        match sig {
            None => self.u8(0),
            Some(sig) => {
                self.u8(1);
                self.bytes(&sig.name);
                self.bytes(&sig.email);
                self.ivarint(sig.time);
                self.ivarint(i64::from(sig.tz_offset_minutes));
            }
        }
    }

    fn extra_headers(&mut self, headers: &[ExtraHeader]) {
        self.uvarint(headers.len() as u64);
        for h in headers {
            self.bytes(&h.name);
            self.bytes(&h.value);
        }
    }

    fn tree(&mut self, tree: &Tree<ObjectId>) {
        self.uvarint(tree.entries.len() as u64);
        for entry in &tree.entries {
            self.bytes(&entry.mode);
            self.bytes(&entry.name);
            match &entry.target {
                EntryTarget::Object(id) => {
                    self.u8(TARGET_OBJECT);
                    self.id(id)
                }
                EntryTarget::Gitlink(sha) => {
                    self.u8(TARGET_GITLINK);
                    self.0.extend_from_slice(sha.as_bytes())
                }
            }
        }
    }

    fn commit(&mut self, c: &Commit<ObjectId>) {
        self.id(&c.tree);
        self.uvarint(c.parents.len() as u64);
        c.parents.iter().for_each(|p| self.id(p));
        self.signature(c.author.as_ref());
        self.signature(c.committer.as_ref());
        self.opt_bytes(c.encoding.as_deref().map(|v| &v[..]));
        self.extra_headers(&c.extra_headers);
        self.opt_bytes(c.message.as_deref().map(|v| &v[..]));
    }

    fn tag(&mut self, t: &Tag<ObjectId>) {
        self.id(&t.target);
        self.bytes(&t.target_type);
        self.opt_bytes(t.name.as_deref().map(|v| &v[..]));
        self.signature(t.tagger.as_ref());
        self.extra_headers(&t.extra_headers);
        self.opt_bytes(t.message.as_deref().map(|v| &v[..]));
        self.opt_bytes(t.signature.as_deref().map(|v| &v[..]));
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    kind: Kind,
}

impl<'a> Reader<'a> {
    fn error(&self, reason: &'static str) -> DecodeError {
        DecodeError {
            kind: self.kind,
            reason,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(self.error("truncated"))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn uvarint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return Err(self.error("varint overflows 64 bits"));
            }
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                if b == 0 && shift > 0 {
                    return Err(self.error("varint is not minimal"));
                }
                return Ok(value);
            }
        }
        Err(self.error("varint too long"))
    }

    fn ivarint(&mut self) -> Result<i64, DecodeError> {
        let u = self.uvarint()?;
        Ok((u >> 1) as i64 ^ -((u & 1) as i64))
    }

    fn len(&mut self) -> Result<usize, DecodeError> {
        let n = self.uvarint()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.bytes.len() - self.pos)
            .ok_or(self.error("length beyond the end"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.len()?;
        self.take(n)
    }

    fn bstring(&mut self) -> Result<BString, DecodeError> {
        Ok(self.bytes()?.into())
    }

    fn flag(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.error("option flag is neither 0 nor 1")),
        }
    }

    fn opt_bytes(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        if self.flag()? {
            Ok(Some(self.bytes()?))
        } else {
            Ok(None)
        }
    }

    fn opt_bstring(&mut self) -> Result<Option<BString>, DecodeError> {
        Ok(self.opt_bytes()?.map(Into::into))
    }

    fn id(&mut self) -> Result<ObjectId, DecodeError> {
        Ok(ObjectId::from_bytes(self.take(32)?).expect("32 bytes"))
    }

    fn count(&mut self, min_item_size: usize) -> Result<usize, DecodeError> {
        let n = self.len()?;
        // Bounds allocation by what the remaining bytes could hold.
        if n.saturating_mul(min_item_size) > self.bytes.len() - self.pos {
            return Err(self.error("count beyond the end"));
        }
        Ok(n)
    }

    fn signature(&mut self) -> Result<Option<Signature>, DecodeError> {
        if !self.flag()? {
            return Ok(None);
        }
        let name = self.bstring()?;
        let email = self.bstring()?;
        let time = self.ivarint()?;
        let tz = self.ivarint()?;
        let tz_offset_minutes =
            i32::try_from(tz).map_err(|_| self.error("time zone out of range"))?;
        Ok(Some(Signature {
            name,
            email,
            time,
            tz_offset_minutes,
        }))
    }

    fn extra_headers(&mut self) -> Result<Vec<ExtraHeader>, DecodeError> {
        let n = self.count(2)?;
        (0..n)
            .map(|_| {
                Ok(ExtraHeader {
                    name: self.bstring()?,
                    value: self.bstring()?,
                })
            })
            .collect()
    }

    fn tree(&mut self) -> Result<Tree<ObjectId>, DecodeError> {
        let n = self.count(3 + 20)?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let mode = self.bstring()?;
            let name = self.bstring()?;
            let target = match self.u8()? {
                TARGET_OBJECT => EntryTarget::Object(self.id()?),
                TARGET_GITLINK => {
                    EntryTarget::Gitlink(Sha1::from_bytes(self.take(20)?).expect("20 bytes"))
                }
                _ => return Err(self.error("unknown tree entry target")),
            };
            if mode_is_gitlink(&mode) != matches!(target, EntryTarget::Gitlink(_)) {
                return Err(self.error("gitlink flag does not match the mode"));
            }
            entries.push(TreeEntry { mode, name, target });
        }
        Ok(Tree { entries })
    }

    fn commit(&mut self) -> Result<Commit<ObjectId>, DecodeError> {
        let tree = self.id()?;
        let n = self.count(32)?;
        let parents = (0..n).map(|_| self.id()).collect::<Result<_, _>>()?;
        Ok(Commit {
            tree,
            parents,
            author: self.signature()?,
            committer: self.signature()?,
            encoding: self.opt_bstring()?,
            extra_headers: self.extra_headers()?,
            message: self.opt_bstring()?,
        })
    }

    fn tag(&mut self) -> Result<Tag<ObjectId>, DecodeError> {
        Ok(Tag {
            target: self.id()?,
            target_type: self.bstring()?,
            name: self.opt_bstring()?,
            tagger: self.signature()?,
            extra_headers: self.extra_headers()?,
            message: self.opt_bstring()?,
            signature: self.opt_bstring()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(object: &NativeObject) {
        let bytes = encode(object);
        assert_eq!(&decode(object.kind(), &bytes).unwrap(), object);
    }

    #[test]
    fn decode_is_strict() {
        let tree = NativeObject::Parsed {
            node: Node::Tree(Tree { entries: vec![] }),
            git_verbatim: None,
        };
        round_trip(&tree);
        let mut bytes = encode(&tree);
        bytes.push(0);
        assert_eq!(
            decode(Kind::Tree, &bytes).unwrap_err().reason,
            "trailing bytes"
        );
        // A non-minimal varint (0x80 0x00 for zero) is refused.
        assert_eq!(
            decode(Kind::Tree, &[0, 0x80, 0]).unwrap_err().reason,
            "varint is not minimal"
        );
        assert!(decode(Kind::Tree, &[0, 0xff, 0xff, 0xff, 0x7f]).is_err());
        assert!(decode(Kind::Blob, &[0]).is_err());
    }

    #[test]
    fn gitlink_flag_must_match_mode() {
        let mut w = Writer(vec![FORM_PARSED]);
        w.uvarint(1);
        w.bytes(b"100644");
        w.bytes(b"sub");
        w.u8(TARGET_GITLINK);
        w.0.extend_from_slice(&[7; 20]);
        assert_eq!(
            decode(Kind::Tree, &w.0).unwrap_err().reason,
            "gitlink flag does not match the mode"
        );
    }
}
