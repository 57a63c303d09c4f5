//! The redb implementations of the metadata store and the registry: the only code that
//! names redb (`tests/it/architecture.rs` holds it to this directory).

mod goals;
mod hooks;
mod meta;
mod registry;

use std::path::Path;

use super::StoreError;

pub use meta::RedbMeta;
pub use registry::RedbRegistry;

pub(crate) fn open_db(path: &Path) -> Result<redb::Database, StoreError> {
    // Several processes (the server, admin commands) may open a data directory at once.
    redb::Database::builder()
        .set_cache_size(64 << 20)
        .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
        .create(path)
        .map_err(|e| StoreError::db(path, e))
}
