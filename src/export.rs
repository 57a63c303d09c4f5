//! `forge export`: a bare git repository generated from the native store.
//!
//! One pack holds every stored object, written by `packing::PackJob` in storage order: blobs
//! go out as their stored zlib streams, git deltas included; trees, commits and tags are
//! regenerated from their native form (trees as git deltas against the tree the store
//! deltified them against). The `.idx` is written from the ids the pack writer saw, so no
//! second pass over the pack is needed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use bstr::ByteSlice;
use serde::Serialize;

use crate::packing::PackError;
use crate::packing::write::{items_in_storage_order, write_pack_files};
use crate::progress::Progress;
use crate::store::segment::{sync_dir, write_synced};
use crate::store::{RefTarget, Repo, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0} exists and is not an empty directory")]
    NotEmpty(PathBuf),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Write {
        path: path.to_owned(),
        source,
    }
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct ExportReport {
    pub objects: u64,
    pub refs: u64,
    pub pack_bytes: u64,
    pub seconds: f64,
}

pub fn export(repo: &Repo, out: &Path, progress: &Progress) -> Result<ExportReport, ExportError> {
    let started = std::time::Instant::now();
    match std::fs::read_dir(out) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(ExportError::NotEmpty(out.to_owned()));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(_) => return Err(ExportError::NotEmpty(out.to_owned())),
    }
    let pack_dir = out.join("objects").join("pack");
    for dir in [
        pack_dir.clone(),
        out.join("objects").join("info"),
        out.join("refs").join("heads"),
        out.join("refs").join("tags"),
    ] {
        std::fs::create_dir_all(&dir).map_err(write_error(&dir))?;
    }
    let config = out.join("config");
    write_synced(
        &config,
        b"[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n",
    )?;

    let mut report = ExportReport::default();
    let mut unique = HashSet::new();
    repo.for_each_location(|loc| {
        unique.insert(loc.id());
    });
    report.objects = unique.len() as u64;
    if !unique.is_empty() {
        report.pack_bytes = write_pack(repo, &pack_dir, unique.len() as u32, progress)?;
    }
    report.refs = write_refs(repo, out)?;
    sync_dir(out)?;
    progress.finish();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn write_pack(
    repo: &Repo,
    pack_dir: &Path,
    count: u32,
    progress: &Progress,
) -> Result<u64, ExportError> {
    progress.phase("Writing objects", Some(u64::from(count)));
    let (items, chosen) = items_in_storage_order(repo, |_| true)?;
    let mut done = 0;
    let (_, stats) = write_pack_files(repo, &items, &chosen, pack_dir, &mut |n| {
        progress.inc((n - done) as u64);
        done = n;
        Ok(())
    })
    .map_err(|e| match e {
        PackError::Store(e) => ExportError::Store(e),
        PackError::Io(source) => ExportError::Write {
            path: pack_dir.to_owned(),
            source,
        },
    })?;
    Ok(stats.bytes)
}

/// `packed-refs` for direct refs, loose files for symbolic ones, and `HEAD`.
fn write_refs(repo: &Repo, out: &Path) -> Result<u64, ExportError> {
    let refs = repo.refs()?;
    let mut packed = Vec::new();
    let mut count = 0;
    for (name, target) in &refs {
        let line = match target {
            RefTarget::Direct(id) => {
                let sha1 = repo.sha1_of(id).ok_or_else(|| StoreError::DanglingRef {
                    name: name.to_string(),
                    target: id.to_hex(),
                })?;
                format!("{sha1}\n").into_bytes()
            }
            RefTarget::Symbolic(target) => format!("ref: {}\n", target.as_bstr()).into_bytes(),
        };
        crate::git::check_ref_name(name).map_err(|reason| StoreError::InvalidRefName {
            name: name.to_string(),
            reason,
        })?;
        if name.as_slice() == b"HEAD" {
            write_synced(&out.join("HEAD"), &line)?;
            continue;
        }
        count += 1;
        match target {
            RefTarget::Direct(_) => {
                packed.extend_from_slice(&line[..40]);
                packed.push(b' ');
                packed.extend_from_slice(name);
                packed.push(b'\n');
            }
            RefTarget::Symbolic(_) => {
                // The name was validated: it starts with refs/ and has no `..` component.
                let path = out.join(name.to_path_lossy());
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(write_error(parent))?;
                }
                write_synced(&path, &line)?;
            }
        }
    }
    if !out.join("HEAD").exists() {
        write_synced(&out.join("HEAD"), b"ref: refs/heads/main\n")?;
    }
    write_synced(&out.join("packed-refs"), &packed)?;
    Ok(count)
}
