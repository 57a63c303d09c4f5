//! Scanning a source repository: every object decoded once and verified.

use parking_lot::Mutex;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use crate::git::fsck::{NamedAs, NamedObject};
use crate::git::git_sha1;
use crate::gitx::SourcePack;
use crate::object::{Kind, ObjectId, Sha1};
use crate::progress::Progress;
use crate::store::segment::{zlib_compress, zlib_inflate_exact};
use crate::store::{Repo, StoreError};

use super::{
    BlobInfo, BlobSource, ImportError, ImportReport, IngestRules, Known, ObjectRefusal, Scan,
    Stash, StashedNode,
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
        named: Vec<(Sha1, NamedAs)>,
        stash: &'s mut Stash,
        error: Option<std::io::Error>,
        refused: Option<ObjectRefusal>,
    }
    let interrupt = AtomicBool::new(false);
    for (pack_no, pack) in packs.iter().enumerate() {
        report.source_bytes += std::fs::metadata(pack.path()).map_or(0, |m| m.len());
        let found = Mutex::new(Found {
            blobs: Vec::new(),
            nodes: Vec::new(),
            offsets: Vec::new(),
            named: Vec::new(),
            stash: &mut *stash,
            error: None,
            refused: None,
        });
        let shared = &found;
        let interrupt_ref = &interrupt;
        let scanned = pack.for_each_object(&interrupt, move |id, kind, offset, body| {
            let blob_id = (kind == Kind::Blob).then(|| ObjectId::for_blob(body));
            let stored = known(&id).is_some();
            // Nearly always empty, so nothing is allocated.
            let mut named = Vec::new();
            let verdict = rules.check(&id, kind, body, &mut named);
            let mut found = shared.lock();
            if let Err(why) = verdict {
                found.refused.get_or_insert(why);
                interrupt_ref.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            found.named.append(&mut named);
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
        for (id, named) in found.named {
            *scan.named.entry(id).or_default() |= named;
        }
    }

    let mut corrupt_loose = None;
    let mut refused = None;
    let mut stash_error = None;
    let mut named = Vec::new();
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
            if let Err(why) = rules.check(&id, kind, body, &mut named) {
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
    for (id, named) in named {
        *scan.named.entry(id).or_default() |= named;
    }
    if let Some((id, actual)) = corrupt_loose {
        return Err(ImportError::CorruptLoose { id, actual });
    }
    if let Some(e) = stash_error {
        return Err(ImportError::Stash(e));
    }
    Ok(scan)
}

/// git's `fsck_finish`: each id a tree named `.gitmodules` or `.gitattributes` is read (from
/// the source's packs or loose objects, or from the store) and its content checked, those
/// named `.gitmodules` first, as git does. A problem refuses the ingest as a per-object one
/// does, against the named object's id.
pub(super) fn check_named_blobs(
    scan: &Scan,
    packs: &[SourcePack],
    repo: &Repo,
) -> Result<(), ImportError> {
    let mut named: Vec<(&Sha1, &NamedAs)> = scan.named.iter().collect();
    named.sort_unstable_by_key(|(id, named)| (!named.gitmodules, **id));
    for (id, &named) in named {
        let limit = crate::git::fsck::read_limit(named);
        let body;
        let object = if let Some(blob) = scan.blobs.get(id) {
            if blob.size > limit {
                NamedObject::Blob(None)
            } else {
                body = match &blob.source {
                    BlobSource::Pack { pack, .. } => match packs.get(*pack) {
                        Some(pack) => pack.decode(id)?,
                        None => {
                            return Err(ImportError::Store(StoreError::Corrupt(format!(
                                "blob {id} is recorded in a pack that was not opened"
                            ))));
                        }
                    },
                    BlobSource::Loose { zlib } => inflate_loose(id, zlib, blob.size)?,
                };
                NamedObject::Blob(Some(&body[..]))
            }
        } else if scan.nodes.contains_key(id) {
            NamedObject::NotBlob
        } else if let Some(location) = repo.locate_sha1(id) {
            match location.kind() {
                Some(Kind::Blob) if repo.object_size(&location)? > limit => NamedObject::Blob(None),
                Some(Kind::Blob) => {
                    body = repo.read_content(&location)?.1.to_vec();
                    NamedObject::Blob(Some(&body[..]))
                }
                Some(_) => NamedObject::NotBlob,
                None => {
                    return Err(ImportError::Store(StoreError::Corrupt(format!(
                        "object {id} has no known kind in segment {}",
                        location.segment_name()
                    ))));
                }
            }
        } else {
            NamedObject::Missing
        };
        crate::git::fsck::check_named(named, object)
            .map_err(|problem| ObjectRefusal::Fsck { id: *id, problem })?;
    }
    Ok(())
}

/// A loose blob's body back from the zlib stream the scan kept of it.
fn inflate_loose(id: &Sha1, zlib: &[u8], size: u64) -> Result<Vec<u8>, ImportError> {
    let failed = |message: String| ImportError::LooseInflate { id: *id, message };
    let size = usize::try_from(size).map_err(|e| failed(e.to_string()))?;
    zlib_inflate_exact(zlib, size).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_blobs_inflate_back_to_their_size() {
        let id = Sha1([7; 20]);
        for body in [&b""[..], b"[submodule \"a\"]\n\turl = -x\n"] {
            let zlib = zlib_compress(body);
            assert_eq!(inflate_loose(&id, &zlib, body.len() as u64).unwrap(), body);
        }
        let zlib = zlib_compress(b"abc");
        for wrong in [2, 4] {
            assert!(matches!(
                inflate_loose(&id, &zlib, wrong),
                Err(ImportError::LooseInflate { .. })
            ));
        }
        assert!(inflate_loose(&id, b"not zlib", 3).is_err());
    }
}
