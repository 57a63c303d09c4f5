//! git's formats: object bodies, ref names, and the translation to and from native objects.

pub mod format;
pub mod pack;
mod refname;
mod translate;

pub use refname::check_ref_name;
pub use translate::{Sha1Hasher, git_sha1, git_to_native, native_to_git, tree_to_native_encoding};
