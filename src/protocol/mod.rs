//! git wire formats shared by the services: pkt-lines and side bands.

pub mod pktline;

/// What the services announce as `agent=` to git clients.
pub const AGENT: &str = concat!("forge/", env!("CARGO_PKG_VERSION"));
