//! The native object model: ids, structured types and their canonical encoding.
//!
//! Nothing here knows about git's byte format; `crate::git` translates.

mod encoding;
mod id;
mod types;

pub use encoding::{
    COMMIT_CONTEXT, DecodeError, NativeObject, TAG_CONTEXT, TREE_CONTEXT, decode, encode,
    encode_tree, native_id, tree_header_len,
};
pub use id::{HexError, HexPrefix, IdHasher, IdMap, Kind, ObjectId, Sha1};
pub use types::{
    Commit, EntryKind, EntryTarget, ExtraHeader, Node, Signature, Tag, Tree, TreeEntry,
    mode_is_gitlink, parse_octal_mode,
};
