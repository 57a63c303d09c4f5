//! git's formats: object bodies, ref names, and the translation to and from native objects.

pub mod format;
pub mod fsck;
pub mod pack;
mod refname;
mod translate;

pub use refname::{
    MAX_REF_COMPONENT_BYTES, MAX_REF_NAME_BYTES, check_ref_name, directory_conflict,
    is_directory_of,
};
pub use translate::{Sha1Hasher, git_sha1, git_to_native, native_to_git, tree_to_native_encoding};
