//! Lossless translation between git objects and native objects.
//!
//! git → native: parse the body, map every child SHA-1 to its native id, and keep the git bytes
//! verbatim when re-serialising the parsed fields would not reproduce them. native → git: the
//! verbatim bytes if kept, otherwise the fields with every child mapped back to its SHA-1.

use std::borrow::Cow;

use crate::object::{Kind, NativeObject, ObjectId, Sha1};

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

/// Child SHA-1s of a git body, as git itself would follow them (gitlinks excluded).
pub fn git_children(kind: Kind, git_body: &[u8], mut f: impl FnMut(Sha1)) {
    if let Some(node) = format::parse(kind, git_body) {
        node.for_each_child(&mut f)
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
