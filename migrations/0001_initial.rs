//! Format 0 → 1: an empty directory becomes a data directory.
//!
//! Creates `repos/` and the registry database `forge.redb`. Repositories create their own
//! files when they are made, so there is nothing else to lay out.

use std::path::Path;

use crate::store::StoreError;

pub fn migrate(root: &Path) -> Result<(), StoreError> {
    let repos = root.join("repos");
    std::fs::create_dir_all(&repos).map_err(|e| StoreError::io("create", &repos, e))?;
    crate::store::open_db(&root.join("forge.redb"))?;
    Ok(())
}
