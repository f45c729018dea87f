//! Per-isolate memory of what D1 said, for a bounded time: a Worker isolate serves many
//! requests, and most of them ask about the same few sites.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

/// Entries kept for `ttl_ms`; when `limit` entries are held, the next one clears them all (a
/// crude bound, but the keys are few and the values small).
pub struct Ttl<K, V> {
    entries: HashMap<K, (i64, V)>,
    ttl_ms: i64,
    limit: usize,
}

impl<K: Eq + Hash, V: Clone> Ttl<K, V> {
    pub fn new(ttl_ms: i64, limit: usize) -> Self {
        Ttl {
            entries: HashMap::new(),
            ttl_ms,
            limit,
        }
    }

    /// The value kept for `key`, unless it is older than the time to live at `now` (ms).
    pub fn get<Q>(&self, key: &Q, now: i64) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.entries
            .get(key)
            .filter(|(at, _)| now - at < self.ttl_ms)
            .map(|(_, value)| value.clone())
    }

    pub fn put(&mut self, key: K, value: V, now: i64) {
        if self.entries.len() >= self.limit {
            self.entries.clear();
        }
        self.entries.insert(key, (now, value));
    }

    /// Forgets every entry whose key `matches` (a change this isolate made).
    pub fn forget(&mut self, matches: impl Fn(&K) -> bool) {
        self.entries.retain(|key, _| !matches(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_lives_for_its_time_to_live_and_no_longer() {
        let mut cache = Ttl::new(60_000, 8);
        cache.put("demo", 1, 1_000);
        assert_eq!(cache.get(&"demo", 1_000), Some(1));
        assert_eq!(cache.get(&"demo", 60_999), Some(1));
        assert_eq!(cache.get(&"demo", 61_000), None);
        assert_eq!(cache.get(&"other", 1_000), None);
    }

    #[test]
    fn a_newer_value_replaces_the_older() {
        let mut cache = Ttl::new(60_000, 8);
        cache.put("demo", 1, 0);
        cache.put("demo", 2, 30_000);
        assert_eq!(cache.get(&"demo", 80_000), Some(2));
    }

    #[test]
    fn a_full_cache_starts_afresh_rather_than_grow() {
        let mut cache = Ttl::new(60_000, 2);
        cache.put("a", 1, 0);
        cache.put("b", 2, 0);
        cache.put("c", 3, 0);
        assert_eq!(cache.get(&"a", 0), None);
        assert_eq!(cache.get(&"c", 0), Some(3));
    }

    #[test]
    fn forgetting_takes_only_the_matching_keys() {
        let mut cache = Ttl::new(60_000, 8);
        cache.put(("demo", "default"), 1, 0);
        cache.put(("demo", "short"), 2, 0);
        cache.put(("other", "default"), 3, 0);
        cache.forget(|(site, _)| *site == "demo");
        assert_eq!(cache.get(&("demo", "default"), 0), None);
        assert_eq!(cache.get(&("demo", "short"), 0), None);
        assert_eq!(cache.get(&("other", "default"), 0), Some(3));
    }
}
