//! `forge export`: a bare git repository generated from the native store.
//!
//! One pack holds every stored object. Blobs go out as their stored zlib streams, git deltas
//! included; trees, commits and tags are regenerated from their native form (trees as git
//! deltas against the tree the store deltified them against). The `.idx` is written from the
//! ids the pack writer saw, so no second pass over the pack is needed.

use std::collections::{HashMap, HashSet};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bstr::ByteSlice;
use serde::Serialize;

use crate::delta::DeltaIndex;
use crate::git::pack::{PackEntryKind, PackWriter, index_v2};
use crate::object::{Kind, ObjectId};
use crate::progress::Progress;
use crate::store::cache::BoundedCache;
use crate::store::segment::{Storage, sync_dir, write_synced, zlib_compress};
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
    let tmp_path = pack_dir.join("tmp-export.pack");
    let file = std::fs::File::create(&tmp_path).map_err(write_error(&tmp_path))?;
    let mut pack = PackWriter::new(BufWriter::with_capacity(1 << 20, file), count)
        .map_err(write_error(&tmp_path))?;
    let mut written: HashMap<ObjectId, u64> = HashMap::with_capacity(count as usize);
    // Recently written git tree bodies, as delta bases for the trees that follow.
    let mut trees: BoundedCache<ObjectId> = BoundedCache::new(64 << 20);
    let mut delta = Vec::new();
    repo.for_each_entry(|location, entry| -> Result<(), ExportError> {
        let id = location.id();
        if written.contains_key(&id) {
            return Ok(());
        }
        let sha1 = location.sha1();
        let base = repo.delta_base(location, entry.storage);
        let base_ref = |base: ObjectId| -> Result<PackEntryKind, ExportError> {
            Ok(match written.get(&base) {
                Some(&offset) => PackEntryKind::OfsDelta(offset),
                None => PackEntryKind::RefDelta(
                    repo.sha1_of(&base)
                        .ok_or_else(|| StoreError::MissingObject(base.to_hex()))?,
                ),
            })
        };
        let offset = if entry.kind == Kind::Blob {
            // A blob's native content is its git content: its stored stream is valid git.
            let kind = match (entry.storage, base) {
                (Storage::Full, _) => PackEntryKind::Whole(Kind::Blob),
                (_, Some(base)) => base_ref(base)?,
                (_, None) => {
                    return Err(
                        StoreError::Corrupt(format!("delta base of {id} is missing")).into(),
                    );
                }
            };
            pack.write_entry(sha1, kind, entry.inflated_size, &entry.zlib())
        } else {
            let (kind, body) = repo.git_object(location)?;
            let body: Arc<[u8]> = body.into();
            let tree_base = base
                .filter(|_| kind == Kind::Tree)
                .and_then(|b| trees.get(&b).map(|body| (b, body)));
            let deltified = tree_base.and_then(|(base, base_body)| {
                DeltaIndex::new(&base_body)
                    .encode(&body, &mut delta, body.len() / 2)
                    .map(|()| base)
            });
            if kind == Kind::Tree {
                trees.insert(id, body.clone());
            }
            match deltified {
                Some(base) => {
                    let kind = base_ref(base)?;
                    pack.write_entry(sha1, kind, delta.len() as u64, &zlib_compress(&delta))
                }
                None => pack.write_entry(
                    sha1,
                    PackEntryKind::Whole(kind),
                    body.len() as u64,
                    &zlib_compress(&body),
                ),
            }
        }
        .map_err(write_error(&tmp_path))?;
        written.insert(id, offset);
        progress.inc(1);
        Ok(())
    })?;
    let (checksum, file, mut objects) = pack.finish().map_err(write_error(&tmp_path))?;
    let file = file.into_inner().map_err(|e| ExportError::Write {
        path: tmp_path.clone(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(write_error(&tmp_path))?;
    let bytes = file.metadata().map_err(write_error(&tmp_path))?.len();
    let name = format!("pack-{checksum}");
    write_synced(
        &pack_dir.join(format!("{name}.idx")),
        &index_v2(&mut objects, &checksum),
    )?;
    let pack_path = pack_dir.join(format!("{name}.pack"));
    std::fs::rename(&tmp_path, &pack_path).map_err(write_error(&tmp_path))?;
    sync_dir(pack_dir)?;
    Ok(bytes)
}

/// `packed-refs` for direct refs, loose files for symbolic ones, and `HEAD`.
fn write_refs(repo: &Repo, out: &Path) -> Result<u64, ExportError> {
    let mut refs = repo.refs()?;
    refs.sort_by(|a, b| a.0.cmp(&b.0));
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
