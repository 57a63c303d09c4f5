//! What one client may hold of the server at once: slots for work that occupies a thread
//! (fetches, pushes), shared fairly between callers and repositories, and a memory budget
//! for request bodies the server must hold whole.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// Why a slot or memory could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Busy {
    #[error("the server is busy: {0} requests of this kind are running; try again shortly")]
    Slots(usize),
    #[error(
        "the server is busy: {0} of this client's requests of this kind are running; try again shortly"
    )]
    Share(usize),
    #[error("the server is busy: too much request data is held in memory; try again shortly")]
    Memory,
}

/// At most `total` holders at once, and at most `per_key` under any one key (a caller, a
/// repository): one client cannot take every slot, however many connections it opens.
pub struct Slots {
    total: usize,
    per_key: usize,
    free: Arc<Semaphore>,
    held: Mutex<HashMap<String, usize>>,
    released: Notify,
}

/// A held slot, given back on drop.
pub struct Slot {
    slots: Arc<Slots>,
    keys: Vec<String>,
    _permit: OwnedSemaphorePermit,
}

impl Slots {
    pub fn new(total: usize, per_key: usize) -> Arc<Slots> {
        let total = total.max(1);
        Arc::new(Slots {
            total,
            per_key: per_key.clamp(1, total),
            free: Arc::new(Semaphore::new(total)),
            held: Mutex::new(HashMap::new()),
            released: Notify::new(),
        })
    }

    /// Waits up to `wait` for a slot that every key still has a share for.
    pub async fn acquire(
        self: &Arc<Self>,
        keys: Vec<String>,
        wait: Duration,
    ) -> Result<Slot, Busy> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if self.take_shares(&keys) {
                break;
            }
            if tokio::time::timeout_at(deadline, released).await.is_err() {
                return Err(Busy::Share(self.per_key));
            }
        }
        let shares = SharesHeld {
            slots: self,
            keys: &keys,
        };
        match tokio::time::timeout_at(deadline, self.free.clone().acquire_owned()).await {
            Ok(Ok(permit)) => {
                std::mem::forget(shares);
                Ok(Slot {
                    slots: self.clone(),
                    keys,
                    _permit: permit,
                })
            }
            _ => Err(Busy::Slots(self.total)),
        }
    }

    fn take_shares(&self, keys: &[String]) -> bool {
        let mut held = self.held.lock();
        if keys
            .iter()
            .any(|k| held.get(k).copied().unwrap_or(0) >= self.per_key)
        {
            return false;
        }
        for key in keys {
            *held.entry(key.clone()).or_default() += 1;
        }
        true
    }

    fn give_back(&self, keys: &[String]) {
        let mut held = self.held.lock();
        for key in keys {
            if let Some(count) = held.get_mut(key) {
                *count -= 1;
                if *count == 0 {
                    held.remove(key);
                }
            }
        }
        drop(held);
        self.released.notify_waiters();
    }

    /// Slots held now (for the metrics and the tests' load figures).
    pub fn in_use(&self) -> usize {
        self.total - self.free.available_permits()
    }
}

/// Shares taken while the slot itself is still awaited: given back if the wait fails or
/// is cancelled (the client went away).
struct SharesHeld<'a> {
    slots: &'a Slots,
    keys: &'a [String],
}

impl Drop for SharesHeld<'_> {
    fn drop(&mut self) {
        self.slots.give_back(self.keys);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.give_back(&self.keys);
    }
}

/// Bytes of request bodies held in memory by all requests together, and by any one client
/// (a quarter of the whole). Each request may hold a small allowance without asking (a
/// normal fetch request fits in it, so normal clients are served while the budget is
/// exhausted); beyond it, memory is reserved here first.
pub struct MemoryBudget {
    limit: usize,
    per_key: usize,
    used: Mutex<Used>,
}

#[derive(Default)]
struct Used {
    total: usize,
    by_key: HashMap<String, usize>,
}

/// Reserved bytes, given back on drop.
pub struct Reserved {
    budget: Arc<MemoryBudget>,
    key: String,
    bytes: usize,
}

impl MemoryBudget {
    pub fn new(limit: usize) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            limit,
            per_key: limit / 4,
            used: Mutex::new(Used::default()),
        })
    }

    /// An empty reservation to grow, counted against `key`'s share.
    pub fn reservation(self: &Arc<Self>, key: String) -> Reserved {
        Reserved {
            budget: self.clone(),
            key,
            bytes: 0,
        }
    }

    pub fn used(&self) -> usize {
        self.used.lock().total
    }
}

impl Reserved {
    /// Grows the reservation to `bytes` in all, or fails leaving it as it was.
    pub fn grow_to(&mut self, bytes: usize) -> Result<(), Busy> {
        if bytes <= self.bytes {
            return Ok(());
        }
        let more = bytes - self.bytes;
        let budget = &self.budget;
        let mut used = budget.used.lock();
        let mine = used.by_key.get(&self.key).copied().unwrap_or(0);
        if used.total + more > budget.limit || mine + more > budget.per_key {
            return Err(Busy::Memory);
        }
        used.total += more;
        *used.by_key.entry(self.key.clone()).or_default() += more;
        self.bytes = bytes;
        Ok(())
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        if self.bytes == 0 {
            return;
        }
        let mut used = self.budget.used.lock();
        used.total -= self.bytes;
        if let Some(mine) = used.by_key.get_mut(&self.key) {
            *mine -= self.bytes;
            if *mine == 0 {
                used.by_key.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_key_cannot_take_every_slot() {
        let slots = Slots::new(4, 2);
        let wait = Duration::from_millis(50);
        let a1 = slots.acquire(vec!["a".into()], wait).await.unwrap();
        let _a2 = slots.acquire(vec!["a".into()], wait).await.unwrap();
        assert_eq!(
            slots.acquire(vec!["a".into()], wait).await.err(),
            Some(Busy::Share(2))
        );
        let _b1 = slots.acquire(vec!["b".into()], wait).await.unwrap();
        let _b2 = slots
            .acquire(vec!["b".into(), "r".into()], wait)
            .await
            .unwrap();
        assert_eq!(
            slots.acquire(vec!["c".into()], wait).await.err(),
            Some(Busy::Slots(4))
        );
        assert_eq!(slots.in_use(), 4);
        // A waiter gets the slot as soon as one is given back.
        let waiter = {
            let slots = slots.clone();
            tokio::spawn(async move {
                slots
                    .acquire(vec!["a".into()], Duration::from_secs(5))
                    .await
                    .is_ok()
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(a1);
        assert!(waiter.await.unwrap());
        // A failed wait gives its shares back.
        assert!(slots.held.lock().get("c").is_none());
    }

    #[test]
    fn memory_is_reserved_and_given_back() {
        let budget = MemoryBudget::new(400);
        let mut a = budget.reservation("a".into());
        a.grow_to(60).unwrap();
        // One client holds at most a quarter.
        assert_eq!(a.grow_to(101), Err(Busy::Memory));
        let mut a2 = budget.reservation("a".into());
        assert_eq!(a2.grow_to(41), Err(Busy::Memory));
        a2.grow_to(40).unwrap();
        let mut others: Vec<Reserved> = (0..3)
            .map(|i| {
                let mut r = budget.reservation(format!("k{i}"));
                r.grow_to(100).unwrap();
                r
            })
            .collect();
        assert_eq!(budget.used(), 400);
        let mut late = budget.reservation("late".into());
        assert_eq!(late.grow_to(1), Err(Busy::Memory));
        drop(a);
        assert_eq!(budget.used(), 340);
        late.grow_to(60).unwrap();
        others.clear();
        drop((a2, late));
        assert_eq!(budget.used(), 0);
    }
}
