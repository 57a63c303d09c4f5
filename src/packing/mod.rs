//! Git packs made from the native store: the pack writer that reuses stored deltas, and the
//! pack tier (a clone pack per repository, rebuilt by `forge repack`).

pub mod repack;
pub mod tier;
pub mod write;

pub use repack::{RepackReport, repack};
pub use tier::ClonePack;
pub use write::{PackError, PackItem, PackJob, PackOptions, PackStats};
