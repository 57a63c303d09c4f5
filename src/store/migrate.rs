//! The data directory's format version and the steps between versions (`migrations/`).

use std::path::Path;

use super::StoreError;
use super::segment::{sync_dir, write_synced};

#[path = "../../migrations/0001_initial.rs"]
mod v0001_initial;

type Step = fn(&Path) -> Result<(), StoreError>;

/// Step `i` migrates from version `i` to version `i + 1`.
const MIGRATIONS: &[Step] = &[v0001_initial::migrate];

/// The format version this build reads and writes.
pub const CURRENT_FORMAT: u32 = MIGRATIONS.len() as u32;

const FORMAT_FILE: &str = "FORMAT";
const FORMAT_PREFIX: &str = "forge data directory, format ";

pub fn read_format(root: &Path) -> Result<Option<u32>, StoreError> {
    let path = root.join(FORMAT_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io("read", &path, e)),
    };
    text.trim()
        .strip_prefix(FORMAT_PREFIX)
        .and_then(|v| v.parse().ok())
        .map(Some)
        .ok_or_else(|| StoreError::NotADataDir {
            path: root.to_owned(),
            reason: format!("unreadable {FORMAT_FILE} file: {:?}", text.trim()),
        })
}

fn write_format(root: &Path, version: u32) -> Result<(), StoreError> {
    let tmp = root.join(format!("{FORMAT_FILE}.tmp"));
    write_synced(&tmp, format!("{FORMAT_PREFIX}{version}\n").as_bytes())?;
    let path = root.join(FORMAT_FILE);
    std::fs::rename(&tmp, &path).map_err(|e| StoreError::io("rename", &tmp, e))?;
    sync_dir(root)
}

/// Makes sure `root` is a data directory of the current format: creates it (when `create`),
/// upgrades an older one step by step, refuses a newer one.
pub fn prepare(root: &Path, create: bool) -> Result<(), StoreError> {
    let version = match read_format(root)? {
        Some(version) => version,
        None => {
            let empty = match std::fs::read_dir(root) {
                Ok(mut entries) => entries.next().is_none(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
                Err(e) => return Err(StoreError::io("read", root, e)),
            };
            if !empty {
                return Err(StoreError::NotADataDir {
                    path: root.to_owned(),
                    reason: format!("it is not empty and has no {FORMAT_FILE} file"),
                });
            }
            if !create {
                return Err(StoreError::NotInitialized(root.to_owned()));
            }
            std::fs::create_dir_all(root).map_err(|e| StoreError::io("create", root, e))?;
            0
        }
    };
    if version > CURRENT_FORMAT {
        return Err(StoreError::FormatTooNew {
            path: root.to_owned(),
            found: version,
            supported: CURRENT_FORMAT,
        });
    }
    for (step, migrate) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        migrate(root)?;
        write_format(root, step as u32 + 1)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_then_refuses_newer() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        assert!(matches!(
            prepare(&root, false),
            Err(StoreError::NotInitialized(_))
        ));
        prepare(&root, true).unwrap();
        assert_eq!(read_format(&root).unwrap(), Some(CURRENT_FORMAT));
        prepare(&root, false).unwrap();

        write_format(&root, CURRENT_FORMAT + 1).unwrap();
        let err = prepare(&root, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "data directory {} has format version {}, newer than this forge supports ({}); use a newer forge",
                root.display(),
                CURRENT_FORMAT + 1,
                CURRENT_FORMAT
            )
        );
    }

    #[test]
    fn refuses_a_foreign_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        assert!(matches!(
            prepare(dir.path(), true),
            Err(StoreError::NotADataDir { .. })
        ));
    }
}
