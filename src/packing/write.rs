//! Writes a git pack of chosen objects, reusing deltas wherever they already exist: entries
//! of the clone pack are copied as they are, blobs go out as their stored git zlib streams
//! (deltas included), trees as git deltas against the tree the store deltified them against.
//! Only objects with no usable base are inflated and compressed whole.

use std::io::{self, Write};
use std::sync::Arc;

use serde::Serialize;

use crate::delta::DeltaIndex;
use crate::git::pack::{PackEntryKind, PackWriter, PackedObject};
use crate::object::{IdMap, IdSet, Kind, ObjectId, Sha1};
use crate::store::cache::BoundedCache;
use crate::store::segment::{Storage, zlib_compress};
use crate::store::{ObjectLocation, Repo, StoreError};

use super::tier::{ClonePack, TierEntryKind};

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the pack: {0}")]
    Io(#[from] io::Error),
}

/// An object to pack.
#[derive(Clone)]
pub struct PackItem {
    pub location: ObjectLocation,
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct PackOptions {
    /// Deltas may refer to objects the client has but that are not in the pack.
    pub thin: bool,
    /// Deltas may refer to earlier entries by offset (else by id).
    pub ofs_delta: bool,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PackStats {
    pub objects: u64,
    pub deltas: u64,
    /// Entries copied from the clone pack.
    pub reused: u64,
    /// Entries copied as stored in the native store (blob zlib streams and deltas).
    pub copied: u64,
    pub bytes: u64,
}

/// What the client has and what the pack holds: decides which delta bases are usable.
pub struct Bases<'a> {
    /// Every object of the pack.
    pub chosen: &'a IdSet<ObjectId>,
    /// Objects the client has (used only for thin packs).
    pub client_has: &'a IdSet<ObjectId>,
    /// Suggested bases for blobs stored whole (the same path in the parent commit): a
    /// fresh delta is computed against them when usable.
    pub hints: Option<&'a IdMap<ObjectId, ObjectId>>,
}

pub struct PackJob<'a> {
    pub repo: &'a Repo,
    pub tier: Option<&'a ClonePack>,
    pub options: PackOptions,
    pub bases: Bases<'a>,
}

struct State<'a, W: Write> {
    job: &'a PackJob<'a>,
    pack: PackWriter<W>,
    written: IdMap<Sha1, u64>,
    trees: BoundedCache<ObjectId>,
    delta: Vec<u8>,
    stats: PackStats,
}

impl PackJob<'_> {
    /// Writes `items` as one pack into `out`. The trailing checksum is written only when
    /// every entry was, so a failure leaves a visibly broken pack, never a short valid one.
    pub fn write<W: Write>(
        &self,
        items: &[PackItem],
        out: W,
        tick: &mut dyn FnMut(usize) -> io::Result<()>,
    ) -> Result<(Sha1, W, Vec<PackedObject>, PackStats), PackError> {
        let mut from_tier: Vec<(u64, usize)> = Vec::new();
        let mut native: Vec<usize> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match self.tier.and_then(|t| t.find(&item.location.sha1())) {
                Some(offset) => from_tier.push((offset, i)),
                None => native.push(i),
            }
        }
        // Pack order keeps every base before its deltas.
        from_tier.sort_unstable();
        let mut state = State {
            job: self,
            pack: PackWriter::new(out, items.len() as u32)?,
            written: IdMap::with_capacity_and_hasher(items.len(), Default::default()),
            trees: BoundedCache::new(32 << 20),
            delta: Vec::new(),
            stats: PackStats::default(),
        };
        let mut done = 0;
        for (offset, i) in from_tier {
            state.copy_from_tier(&items[i], offset)?;
            done += 1;
            if done % 1024 == 0 {
                tick(done)?;
            }
        }
        for i in native {
            state.write_native(&items[i])?;
            done += 1;
            if done % 1024 == 0 {
                tick(done)?;
            }
        }
        tick(done)?;
        let State { pack, stats, .. } = state;
        let mut stats = stats;
        stats.bytes = pack.offset() + 20;
        stats.objects = items.len() as u64;
        let (checksum, out, objects) = pack.finish()?;
        Ok((checksum, out, objects, stats))
    }
}

impl<W: Write> State<'_, W> {
    fn record(&mut self, sha1: Sha1, offset: u64) {
        self.written.insert(sha1, offset);
    }

    /// How a delta may refer to `base`, or `None` when it cannot (the client will have
    /// neither the base nor a way to get it).
    fn base_ref(&self, base: &ObjectId, base_sha1: Sha1) -> Option<PackEntryKind> {
        if let Some(&offset) = self.written.get(&base_sha1) {
            return Some(if self.job.options.ofs_delta {
                PackEntryKind::OfsDelta(offset)
            } else {
                PackEntryKind::RefDelta(base_sha1)
            });
        }
        let bases = &self.job.bases;
        if bases.chosen.contains(base) || (self.job.options.thin && bases.client_has.contains(base))
        {
            // Later in the same pack, or with the client: git resolves both by id.
            return Some(PackEntryKind::RefDelta(base_sha1));
        }
        None
    }

    fn copy_from_tier(&mut self, item: &PackItem, offset: u64) -> Result<(), PackError> {
        let tier = self.job.tier.expect("tier entries come from a tier");
        let sha1 = item.location.sha1();
        let entry = tier.entry(offset)?;
        let kind = match entry.kind {
            TierEntryKind::Whole(kind) => Some(PackEntryKind::Whole(kind)),
            TierEntryKind::OfsDelta(base_offset) => {
                let base_sha1 = tier.sha1_at_offset(base_offset).ok_or_else(|| {
                    StoreError::Corrupt(format!("clone pack: no object at {base_offset}"))
                })?;
                match self.written.get(&base_sha1) {
                    Some(&o) if self.job.options.ofs_delta => Some(PackEntryKind::OfsDelta(o)),
                    Some(_) => Some(PackEntryKind::RefDelta(base_sha1)),
                    None => self
                        .job
                        .repo
                        .id_of_sha1(&base_sha1)
                        .and_then(|base| self.base_ref(&base, base_sha1)),
                }
            }
        };
        if matches!(kind, Some(PackEntryKind::Whole(Kind::Blob)))
            && self.write_hinted_delta(item)?
        {
            return Ok(());
        }
        match kind {
            Some(kind) => {
                let at = self.pack.write_entry(sha1, kind, entry.size, entry.zlib)?;
                self.record(sha1, at);
                self.stats.reused += 1;
                if !matches!(kind, PackEntryKind::Whole(_)) {
                    self.stats.deltas += 1;
                }
                Ok(())
            }
            None if self.write_hinted_delta(item)? => Ok(()),
            None => self.write_whole(item),
        }
    }

    /// Writes a blob as a fresh delta against its hinted base, when there is one the client
    /// can resolve and the delta is less than half the blob. Returns whether it did.
    fn write_hinted_delta(&mut self, item: &PackItem) -> Result<bool, PackError> {
        let repo = self.job.repo;
        let Some(&base) = self
            .job
            .bases
            .hints
            .and_then(|h| h.get(&item.location.id()))
        else {
            return Ok(false);
        };
        let Some(base_sha1) = repo.sha1_of(&base) else {
            return Ok(false);
        };
        // Only bases already written or with the client: a forward reference could close a
        // cycle with a stored delta that goes the other way.
        let reference = match self.written.get(&base_sha1) {
            Some(&offset) if self.job.options.ofs_delta => PackEntryKind::OfsDelta(offset),
            Some(_) => PackEntryKind::RefDelta(base_sha1),
            None if self.job.options.thin && self.job.bases.client_has.contains(&base) => {
                PackEntryKind::RefDelta(base_sha1)
            }
            None => return Ok(false),
        };
        let base_location = repo
            .locate(&base)
            .ok_or_else(|| StoreError::MissingObject(base.to_hex()))?;
        let (_, base_content) = repo.read_content(&base_location)?;
        let (_, content) = repo.read_content(&item.location)?;
        if DeltaIndex::new(&base_content)
            .encode(&content, &mut self.delta, content.len() / 2)
            .is_none()
        {
            return Ok(false);
        }
        let sha1 = item.location.sha1();
        let zlib = zlib_compress(&self.delta);
        let at = self
            .pack
            .write_entry(sha1, reference, self.delta.len() as u64, &zlib)?;
        self.record(sha1, at);
        self.stats.deltas += 1;
        Ok(true)
    }

    fn write_whole(&mut self, item: &PackItem) -> Result<(), PackError> {
        let (kind, body) = self.job.repo.git_object(&item.location)?;
        let at = self.pack.write_entry(
            item.location.sha1(),
            PackEntryKind::Whole(kind),
            body.len() as u64,
            &zlib_compress(&body),
        )?;
        self.record(item.location.sha1(), at);
        Ok(())
    }

    fn write_native(&mut self, item: &PackItem) -> Result<(), PackError> {
        let repo = self.job.repo;
        let location = &item.location;
        let sha1 = location.sha1();
        let raw = repo.raw_entry(location)?;
        let base = repo.delta_base(location, raw.storage);
        if item.kind == Kind::Blob {
            // A blob's native content is its git content: the stored stream is valid git.
            let kind = match (raw.storage, base) {
                (Storage::Full, _) if self.write_hinted_delta(item)? => return Ok(()),
                (Storage::Full, _) => Some(PackEntryKind::Whole(Kind::Blob)),
                (_, Some(base)) => repo
                    .sha1_of(&base)
                    .and_then(|base_sha1| self.base_ref(&base, base_sha1)),
                (_, None) => {
                    return Err(StoreError::Corrupt(format!(
                        "delta base of {} is missing",
                        location.id()
                    ))
                    .into());
                }
            };
            if kind.is_none() && self.write_hinted_delta(item)? {
                return Ok(());
            }
            if let Some(kind) = kind {
                let at = self
                    .pack
                    .write_entry(sha1, kind, raw.inflated_size, &raw.zlib())?;
                self.record(sha1, at);
                self.stats.copied += 1;
                if !matches!(kind, PackEntryKind::Whole(_)) {
                    self.stats.deltas += 1;
                }
                return Ok(());
            }
            return self.write_whole(item);
        }
        let (kind, body) = repo.git_object(location)?;
        let body: Arc<[u8]> = body.into();
        let mut entry = None;
        if kind == Kind::Tree
            && let Some(base) = base
            && let Some(base_sha1) = repo.sha1_of(&base)
            && let Some(reference) = self.base_ref(&base, base_sha1)
        {
            let base_body = match self.trees.get(&base) {
                Some(body) => body,
                None => {
                    let base_location = repo
                        .locate(&base)
                        .ok_or_else(|| StoreError::MissingObject(base.to_hex()))?;
                    Arc::from(repo.git_object(&base_location)?.1)
                }
            };
            if DeltaIndex::new(&base_body)
                .encode(&body, &mut self.delta, body.len() / 2)
                .is_some()
            {
                entry = Some((
                    reference,
                    self.delta.len() as u64,
                    zlib_compress(&self.delta),
                ));
            }
        }
        if kind == Kind::Tree {
            self.trees.insert(location.id(), body.clone());
        }
        let (reference, size, zlib) = match entry {
            Some(entry) => {
                self.stats.deltas += 1;
                entry
            }
            None => (
                PackEntryKind::Whole(kind),
                body.len() as u64,
                zlib_compress(&body),
            ),
        };
        let at = self.pack.write_entry(sha1, reference, size, &zlib)?;
        self.record(sha1, at);
        Ok(())
    }
}

/// The stored objects whose ids `keep` accepts, once each, in storage order (delta bases
/// before their deltas).
pub fn items_in_storage_order(
    repo: &Repo,
    mut keep: impl FnMut(&ObjectId) -> bool,
) -> Result<(Vec<PackItem>, IdSet<ObjectId>), StoreError> {
    let mut items = Vec::new();
    let mut added = IdSet::default();
    repo.for_each_entry(|location, entry| -> Result<(), StoreError> {
        let id = location.id();
        if keep(&id) && added.insert(id) {
            items.push(PackItem {
                location: location.clone(),
                kind: entry.kind,
            });
        }
        Ok(())
    })?;
    Ok((items, added))
}

/// The name a pack has while it is written (renamed to `pack-<checksum>` once whole).
pub const TMP_PACK_PREFIX: &str = "tmp-pack-";

/// Writes a self-contained pack of `items` (which must hold every delta base) into `dir`
/// as `pack-<checksum>.pack` and `.idx`, synced and renamed into place only when complete.
/// Returns the file name without extension and the statistics.
pub fn write_pack_files(
    repo: &Repo,
    items: &[PackItem],
    chosen: &IdSet<ObjectId>,
    dir: &std::path::Path,
    tick: &mut dyn FnMut(usize) -> io::Result<()>,
) -> Result<(String, PackStats), PackError> {
    let nobody = IdSet::default();
    let job = PackJob {
        repo,
        tier: None,
        options: PackOptions {
            thin: false,
            ofs_delta: true,
        },
        bases: Bases {
            chosen,
            client_has: &nobody,
            hints: None,
        },
    };
    let tmp = dir.join(format!("{TMP_PACK_PREFIX}{}.pack", std::process::id()));
    let io_error = |e: io::Error| StoreError::io("write", &tmp, e);
    let file = std::fs::File::create(&tmp).map_err(io_error)?;
    let written = job.write(items, io::BufWriter::with_capacity(1 << 20, file), tick);
    let (checksum, out, mut objects, stats) = match written {
        Ok(done) => done,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let file = out.into_inner().map_err(|e| io_error(e.into_error()))?;
    file.sync_all().map_err(io_error)?;
    let name = format!("pack-{checksum}");
    crate::store::segment::write_synced(
        &dir.join(format!("{name}.idx")),
        &crate::git::pack::index_v2(&mut objects, &checksum),
    )?;
    let pack_path = dir.join(format!("{name}.pack"));
    std::fs::rename(&tmp, &pack_path).map_err(|e| StoreError::io("rename", &pack_path, e))?;
    crate::store::segment::sync_dir(dir)?;
    Ok((name, stats))
}
