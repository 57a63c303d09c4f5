//! A bounded cache of decoded objects, so reading along delta chains does not decode the
//! same bases again and again.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Arc;

/// First-in first-out eviction bounded by total bytes; objects larger than an eighth of the
/// budget are not kept.
pub struct BoundedCache<K> {
    budget: usize,
    used: usize,
    entries: HashMap<K, Arc<[u8]>>,
    order: VecDeque<K>,
}

impl<K: Hash + Eq + Copy> BoundedCache<K> {
    pub fn new(budget: usize) -> BoundedCache<K> {
        BoundedCache {
            budget,
            used: 0,
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub fn get(&self, key: &K) -> Option<Arc<[u8]>> {
        self.entries.get(key).cloned()
    }

    pub fn insert(&mut self, key: K, value: Arc<[u8]>) {
        if value.len() > self.budget / 8 || self.entries.contains_key(&key) {
            return;
        }
        self.used += value.len();
        self.entries.insert(key, value);
        self.order.push_back(key);
        while self.used > self.budget {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(v) = self.entries.remove(&old) {
                self.used -= v.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_budget() {
        let mut cache = BoundedCache::new(800);
        for i in 0..100u64 {
            cache.insert((0, i), vec![0u8; 100].into());
            assert!(cache.used <= 800);
        }
        assert!(cache.get(&(0, 99)).is_some());
        assert!(cache.get(&(0, 0)).is_none());
        cache.insert((1, 0), vec![0u8; 101].into());
        assert!(cache.get(&(1, 0)).is_none(), "too large to keep");
    }
}
