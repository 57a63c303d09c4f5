//! The native object model: ids, structured types and their canonical encoding.
//!
//! Nothing here knows about git's byte format; `crate::git` translates.

mod encoding;
mod id;
mod types;

pub use encoding::{
    COMMIT_CONTEXT, CommitLinks, DecodeError, NativeObject, TAG_CONTEXT, TREE_CONTEXT,
    commit_links, decode, encode, encode_tree, for_each_tree_child, native_id, tag_target,
    tree_header_len,
};
pub use id::{HexError, HexPrefix, IdHasher, IdMap, IdSet, Kind, ObjectId, Sha1};
pub use types::{
    Commit, EntryKind, EntryTarget, ExtraHeader, Node, Signature, Tag, Tree, TreeEntry,
    mode_is_followed, mode_is_gitlink, mode_kind, parse_octal_mode,
};
