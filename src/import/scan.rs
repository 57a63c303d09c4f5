//! Scanning a source repository: every object decoded once and verified.

use parking_lot::Mutex;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use crate::git::git_sha1;
use crate::gitx::SourcePack;
use crate::object::{Kind, ObjectId, Sha1};
use crate::progress::Progress;
use crate::store::segment::zlib_compress;

use super::{
    BlobInfo, BlobSource, ImportError, ImportReport, IngestRules, Known, Scan, Stash, StashedNode,
};

/// Decodes every object of every pack (in parallel) and every loose object. Blobs get their
/// native id; trees, commits and tags are appended to the stash. Objects the store already
/// has are verified and left out.
pub(super) fn scan(
    dirs: &[PathBuf],
    known: Known<'_>,
    rules: IngestRules,
    packs: &mut Vec<SourcePack>,
    stash: &mut Stash,
    report: &mut ImportReport,
    progress: &Progress,
) -> Result<Scan, ImportError> {
    let mut scan = Scan::default();
    let mut indices = Vec::new();
    for dir in dirs {
        indices.extend(crate::gitx::pack_indices(dir)?);
    }
    for idx in &indices {
        packs.push(SourcePack::open(idx)?);
    }
    let total: u64 = packs.iter().map(|p| u64::from(p.num_objects())).sum();
    progress.phase("Reading objects", Some(total));

    struct Found<'s> {
        blobs: Vec<(Sha1, ObjectId, u64, u64)>,
        nodes: Vec<(Sha1, Kind, usize, usize)>,
        offsets: Vec<(u64, Sha1)>,
        stash: &'s mut Stash,
        error: Option<std::io::Error>,
        refused: Option<String>,
    }
    let interrupt = AtomicBool::new(false);
    for (pack_no, pack) in packs.iter().enumerate() {
        report.source_bytes += std::fs::metadata(pack.path()).map_or(0, |m| m.len());
        let found = Mutex::new(Found {
            blobs: Vec::new(),
            nodes: Vec::new(),
            offsets: Vec::new(),
            stash: &mut *stash,
            error: None,
            refused: None,
        });
        let shared = &found;
        let interrupt_ref = &interrupt;
        let scanned = pack.for_each_object(&interrupt, move |id, kind, offset, body| {
            let blob_id = (kind == Kind::Blob).then(|| ObjectId::for_blob(body));
            let stored = known(&id).is_some();
            let verdict = rules.check(&id, kind, body);
            let mut found = shared.lock();
            if let Err(why) = verdict {
                found.refused.get_or_insert(why);
                interrupt_ref.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            found.offsets.push((offset, id));
            if stored {
                drop(found);
                progress.inc(1);
                return;
            }
            match blob_id {
                Some(b3) => found.blobs.push((id, b3, body.len() as u64, offset)),
                None => {
                    let at = found.stash.len;
                    if let Err(e) = found.stash.file.write_all(body) {
                        found.error.get_or_insert(e);
                        interrupt_ref.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    found.stash.len += body.len();
                    found.nodes.push((id, kind, at, body.len()));
                }
            }
            drop(found);
            progress.inc(1);
        });
        let mut found = found.into_inner();
        if let Some(why) = found.refused.take() {
            return Err(ImportError::Refused(why));
        }
        scanned?;
        if let Some(e) = found.error.take() {
            return Err(ImportError::Stash(e));
        }
        for (id, b3, size, offset) in found.blobs {
            scan.blobs.entry(id).or_insert(BlobInfo {
                id: b3,
                size,
                source: BlobSource::Pack {
                    pack: pack_no,
                    offset,
                },
            });
        }
        for (id, kind, at, len) in found.nodes {
            scan.nodes
                .entry(id)
                .or_insert(StashedNode { kind, at, len });
        }
        found.offsets.sort_unstable();
        scan.pack_offsets.push(found.offsets);
    }

    let mut corrupt_loose = None;
    let mut refused = None;
    let mut stash_error = None;
    progress.phase("Reading loose objects", None);
    for dir in dirs {
        crate::gitx::for_each_loose_object(dir, |id, kind, body| {
            progress.inc(1);
            if scan.blobs.contains_key(&id) || scan.nodes.contains_key(&id) || known(&id).is_some()
            {
                return Ok(());
            }
            let actual = git_sha1(kind, body);
            if actual != id {
                corrupt_loose.get_or_insert((id, actual));
                return Ok(());
            }
            if let Err(why) = rules.check(&id, kind, body) {
                refused.get_or_insert(why);
                return Ok(());
            }
            report.source_bytes += body.len() as u64;
            if kind == Kind::Blob {
                scan.blobs.insert(
                    id,
                    BlobInfo {
                        id: ObjectId::for_blob(body),
                        size: body.len() as u64,
                        source: BlobSource::Loose {
                            zlib: zlib_compress(body),
                        },
                    },
                );
            } else {
                if let Err(e) = stash.file.write_all(body) {
                    stash_error.get_or_insert(e);
                }
                scan.nodes.insert(
                    id,
                    StashedNode {
                        kind,
                        at: stash.len,
                        len: body.len(),
                    },
                );
                stash.len += body.len();
            }
            Ok(())
        })?;
    }
    if let Some(why) = refused {
        return Err(ImportError::Refused(why));
    }
    if let Some((id, actual)) = corrupt_loose {
        return Err(ImportError::CorruptLoose { id, actual });
    }
    if let Some(e) = stash_error {
        return Err(ImportError::Stash(e));
    }
    Ok(scan)
}
