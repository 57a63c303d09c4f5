//! History on the native store: the commit graph with generation numbers, and reachability.

mod graph;
mod reach;

pub use graph::{CommitGraph, CommitIndex, CommitNode};
pub use reach::{locate, peel, reachable, walk_tree};
