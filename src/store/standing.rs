//! Tokens' standing (revoked? identity gone, replaced or disabled?) kept between requests.
//!
//! Every request's token is checked for standing, and a registry read transaction costs
//! several microseconds — more than the rest of a cached token check. Answers are kept
//! until a change that could alter one: every write of revocations or identities through a
//! `DataDir`, in any process on the data directory, adds one to a counter in a small
//! shared file (`standing.stamp`, mapped into memory) after its transaction commits. A
//! reader takes the counter before it reads the registry, so what it keeps under a count
//! is never older than that count. An answer is also dropped after `MAX_AGE`, which bounds
//! how long a writer that died between its commit and its count leaves a stale one.
//!
//! This holds on one machine (processes sharing the data directory's file). A registry
//! shared by several machines needs a notification of its own.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

const STAMP_FILE: &str = "standing.stamp";
/// The longest an answer is kept, whatever the counter says.
const MAX_AGE: Duration = Duration::from_secs(2);
/// Answers kept at most (tokens are minted offline, so their variety is the holders').
const MAX_ENTRIES: usize = 10_000;

/// Answers of type `S` (the identities module's `Standing`), by `key`.
pub(super) struct StandingCache<S> {
    /// The shared counter; without it (the file cannot be mapped) nothing is kept.
    stamp: Option<memmap2::MmapMut>,
    answers: Mutex<HashMap<[u8; 32], Kept<S>>>,
}

struct Kept<S> {
    count: u64,
    at: Instant,
    standing: S,
}

impl<S: Clone> StandingCache<S> {
    pub(super) fn open(root: &Path) -> StandingCache<S> {
        let stamp = map_stamp(&root.join(STAMP_FILE))
            .inspect_err(|e| tracing::warn!("token standing will not be cached: {e}"))
            .ok();
        StandingCache {
            stamp,
            answers: Mutex::new(HashMap::new()),
        }
    }

    fn counter(&self) -> Option<&AtomicU64> {
        let map = self.stamp.as_ref()?;
        // SAFETY: the mapping is page-aligned, at least 8 bytes long, lives as long as
        // `self`, and is only ever accessed atomically (here and in other processes).
        Some(unsafe { &*(map.as_ptr() as *const AtomicU64) })
    }

    /// The kept answer for `key` and the count it must have been read at to be current;
    /// `None` for the count when nothing may be kept.
    pub(super) fn get(&self, key: &[u8; 32]) -> (Option<S>, Option<u64>) {
        let Some(count) = self.counter().map(|c| c.load(Ordering::Acquire)) else {
            return (None, None);
        };
        let answers = self.answers.lock();
        let hit = answers
            .get(key)
            .filter(|kept| kept.count == count && kept.at.elapsed() < MAX_AGE)
            .map(|kept| kept.standing.clone());
        (hit, Some(count))
    }

    /// Keeps an answer read after the counter stood at `count`.
    pub(super) fn put(&self, key: [u8; 32], count: Option<u64>, standing: &S) {
        let Some(count) = count else {
            return;
        };
        let mut answers = self.answers.lock();
        if answers.len() >= MAX_ENTRIES {
            answers.clear();
        }
        answers.insert(
            key,
            Kept {
                count,
                at: Instant::now(),
                standing: standing.clone(),
            },
        );
    }

    /// After a committed write that may change some token's standing.
    pub(super) fn changed(&self) {
        if let Some(counter) = self.counter() {
            counter.fetch_add(1, Ordering::AcqRel);
        }
        // Other processes see the counter; this one need not keep what it knows is old.
        self.answers.lock().clear();
    }
}

fn map_stamp(path: &Path) -> std::io::Result<memmap2::MmapMut> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    if file.metadata()?.len() < 8 {
        file.set_len(8)?;
    }
    // SAFETY: the file is the data directory's own and is never truncated; a shared
    // mapping is how processes see one another's counts.
    unsafe { memmap2::MmapOptions::new().len(8).map_mut(&file) }
}

/// The key an answer is kept under: everything the standing check reads.
pub(super) fn key(identity: &str, incarnation: u64, ids: &[Vec<u8>]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&(identity.len() as u64).to_le_bytes());
    hasher.update(identity.as_bytes());
    hasher.update(&incarnation.to_le_bytes());
    for id in ids {
        hasher.update(&(id.len() as u64).to_le_bytes());
        hasher.update(id);
    }
    *hasher.finalize().as_bytes()
}
