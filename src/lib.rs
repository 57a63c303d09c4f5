//! forge: a self-hosted git forge whose objects live in a native BLAKE3-addressed store.
//!
//! See `docs/ARCHITECTURE.md` for the map of the modules.

pub mod delta;
pub mod git;
pub mod gitx;
pub mod object;
pub mod store;
