//! `forge repack`: rebuilds a repository's clone pack from the native store.

use std::path::Path;

use bstr::ByteSlice;
use serde::Serialize;

use crate::history::{CommitGraph, reachable};
use crate::store::{RefTarget, Repo, StoreError};

use super::tier::{Manifest, read_manifest, tier_dir, write_manifest};
use super::write::{PackError, TMP_PACK_PREFIX, items_in_storage_order, write_pack_files};

#[derive(Debug, Clone, Default, Serialize)]
pub struct RepackReport {
    pub objects: u64,
    pub refs: u64,
    pub pack_bytes: u64,
    pub deltas: u64,
    pub seconds: f64,
    /// False when the clone pack already matched the refs.
    pub rebuilt: bool,
}

/// The refs a clone pack covers: branches and tags (what `git clone` fetches).
pub fn clone_refs(repo: &Repo) -> Result<Vec<(String, crate::object::ObjectId)>, StoreError> {
    let mut out = Vec::new();
    for (name, target) in repo.refs()? {
        if let RefTarget::Direct(id) = target
            && (name.starts_with(b"refs/heads/") || name.starts_with(b"refs/tags/"))
        {
            out.push((name.to_str_lossy().into_owned(), id));
        }
    }
    out.sort();
    Ok(out)
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::io("write", path, e)
}

/// Rebuilds the clone pack unless it already covers exactly the current branches and tags
/// (`force` rebuilds anyway). Old packs are removed once the new manifest is in place.
pub fn repack(
    repo: &Repo,
    graph: &mut CommitGraph,
    force: bool,
) -> Result<RepackReport, PackError> {
    let started = std::time::Instant::now();
    let dir = tier_dir(repo.dir());
    std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
    let lock_path = dir.join("repack.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_error(&lock_path))?;
    lock.lock().map_err(io_error(&lock_path))?;
    // Under the lock no other repack is writing: any temporary pack is a killed one's.
    remove_unfinished(&dir);

    let refs = clone_refs(repo)?;
    let mut named = Vec::with_capacity(refs.len());
    for (name, id) in &refs {
        let sha1 = repo.sha1_of(id).ok_or_else(|| StoreError::DanglingRef {
            name: name.clone(),
            target: id.to_hex(),
        })?;
        named.push((name.clone(), sha1.to_hex()));
    }
    let mut report = RepackReport {
        refs: refs.len() as u64,
        ..RepackReport::default()
    };
    if !force
        && let Some(current) = read_manifest(repo.dir())?
        && current.refs == named
        && dir.join(format!("{}.pack", current.pack)).exists()
    {
        report.objects = current.objects;
        report.pack_bytes = current.bytes;
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    report.rebuilt = true;
    let tips: Vec<_> = refs.iter().map(|(_, id)| *id).collect();
    let set = reachable(repo, graph, &tips)?;
    let (items, _) = items_in_storage_order(repo, |id| set.contains(id))?;
    let (name, stats) = write_pack_files(repo, &items, &set, &dir, &mut |_| Ok(()))?;
    write_manifest(
        repo.dir(),
        &Manifest {
            pack: name.clone(),
            refs: named,
            objects: stats.objects,
            bytes: stats.bytes,
        },
    )?;
    // Readers that still map an old pack keep their mapping after the unlink.
    for entry in std::fs::read_dir(&dir).map_err(io_error(&dir))?.flatten() {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        if file_name.starts_with("pack-") && !file_name.starts_with(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    report.objects = stats.objects;
    report.pack_bytes = stats.bytes;
    report.deltas = stats.deltas;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Temporary packs left in the pack tier by a repack that was killed, with their sizes;
/// none while a repack is running (its own file is not a leftover).
pub fn unfinished_repacks(repo_dir: &Path) -> Vec<(std::path::PathBuf, u64)> {
    let dir = tier_dir(repo_dir);
    let Ok(lock) = std::fs::File::open(dir.join("repack.lock")) else {
        return temporary_packs(&dir);
    };
    match lock.try_lock() {
        Ok(()) => temporary_packs(&dir),
        Err(_) => Vec::new(),
    }
}

/// Removes what killed repacks left, unless a repack is running now.
pub fn sweep_unfinished(repo_dir: &Path) -> usize {
    let dir = tier_dir(repo_dir);
    let Ok(lock) = std::fs::File::open(dir.join("repack.lock")) else {
        return remove_unfinished(&dir);
    };
    match lock.try_lock() {
        Ok(()) => remove_unfinished(&dir),
        Err(_) => 0,
    }
}

fn temporary_packs(dir: &Path) -> Vec<(std::path::PathBuf, u64)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<_> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(TMP_PACK_PREFIX))
        .map(|e| (e.path(), e.metadata().map_or(0, |m| m.len())))
        .collect();
    found.sort();
    found
}

fn remove_unfinished(dir: &Path) -> usize {
    let mut removed = 0;
    for (path, _) in temporary_packs(dir) {
        match std::fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(e) => tracing::warn!("cannot remove {}: {e}", path.display()),
        }
    }
    if removed > 0 {
        tracing::info!("removed {removed} temporary pack(s) left by an interrupted repack");
    }
    removed
}
