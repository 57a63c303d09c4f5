//! git wire formats shared by the services: pkt-lines and side bands.

pub mod pktline;
