//! forge: a self-hosted git forge whose objects live in a native BLAKE3-addressed store.
//!
//! See `docs/ARCHITECTURE.md` for the map of the modules.

pub mod attest;
pub mod auth;
pub mod browse;
pub mod cli;
pub mod delta;
pub mod edit;
pub mod evidence;
pub mod export;
pub mod fsck;
pub mod gate;
pub mod git;
pub mod gitx;
pub mod glob;
pub mod goals;
pub mod hex;
pub mod history;
pub mod import;
pub mod object;
pub mod packing;
pub mod pipeline;
pub mod progress;
pub mod protocol;
pub mod receive;
pub mod served;
pub mod server;
pub mod store;
pub mod upload;
