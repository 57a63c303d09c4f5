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

/// Builds a new data directory beside `root` and renames it into place, so a crash never
/// leaves a half-made one (only a hidden `.NAME.init-…` sibling, which nothing reads).
fn create_whole(root: &Path) -> Result<(), StoreError> {
    let parent = match root.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| StoreError::io("create", &parent, e))?;
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "forge-data".to_owned());
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{name}.init-"))
        .tempdir_in(&parent)
        .map_err(|e| StoreError::io("create a directory in", &parent, e))?;
    for (step, migrate) in MIGRATIONS.iter().enumerate() {
        migrate(staging.path())?;
        write_format(staging.path(), step as u32 + 1)?;
    }
    let staged = staging.keep();
    // rename(2) replaces an empty directory, and fails on a non-empty one: then another
    // process created the data directory meanwhile, and ours is dropped.
    match std::fs::rename(&staged, root) {
        Ok(()) => sync_dir(&parent),
        Err(_) if read_format(root)?.is_some() => {
            let _ = std::fs::remove_dir_all(&staged);
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staged);
            Err(StoreError::io("create", root, e))
        }
    }
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
            create_whole(root)?;
            // Ours, or another process's that got there first: either way complete.
            read_format(root)?.ok_or_else(|| StoreError::NotADataDir {
                path: root.to_owned(),
                reason: format!("no {FORMAT_FILE} file after creating it"),
            })?
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
    fn creation_is_whole_and_racing_creators_agree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let root = root.clone();
                std::thread::spawn(move || prepare(&root, true))
            })
            .collect();
        for thread in threads {
            thread.join().unwrap().unwrap();
        }
        assert_eq!(read_format(&root).unwrap(), Some(CURRENT_FORMAT));
        assert!(root.join("forge.redb").exists() && root.join("repos").is_dir());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n != "data")
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        // An existing empty directory becomes a data directory too.
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        prepare(&empty, true).unwrap();
        assert_eq!(read_format(&empty).unwrap(), Some(CURRENT_FORMAT));
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
