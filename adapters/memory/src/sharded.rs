//! A hash map split into a fixed number of shards by key.
//!
//! Why: a `HashMap` grows by rehashing every entry into a table twice the size, all in one insert.
//! The store's maps grow by one entry per code, grant and device authorization (and, before
//! refresh families, per refresh rotation), each under the store's write lock, so one growth of a
//! map of a few hundred thousand refresh tokens stalled every request for tens of milliseconds
//! (46 ms in the load benchmark at 230,000 tokens, and it doubles with every doubling of the map). Split into [`SHARDS`] maps, an insert grows at
//! most one shard, a [`SHARDS`]th of the whole: the same total work, in pauses too short to see.
//!
//! Keys pick their shard from their own bytes: they are SHA-256 digests or random identifiers, so
//! their bytes are uniform and no client can aim its records at one shard.

use std::collections::hash_map::{Entry, HashMap};

use oauth_proto::secret::SecretHash;
use oauth_proto::store::GrantId;

/// Number of shards.
pub const SHARDS: usize = 256;

/// A key whose bytes are uniformly distributed, so any of them picks a shard fairly.
pub trait ShardKey: std::hash::Hash + Eq {
    /// The byte that places the key: its shard is this modulo the shard count. Persistent stores
    /// record the shard count they purged by, so a purge of "part `k` of `n`" (the keys whose byte
    /// is `k` modulo `n`) means the same to a build with another count.
    fn byte(&self) -> u8;

    /// The shard this key lives in, below [`SHARDS`].
    fn shard(&self) -> usize {
        usize::from(self.byte()) % SHARDS
    }
}

impl ShardKey for SecretHash {
    fn byte(&self) -> u8 {
        self.0[0]
    }
}

impl ShardKey for GrantId {
    fn byte(&self) -> u8 {
        self.0[0]
    }
}

/// Part `index` of `of` equal parts of the key space: the keys whose [`ShardKey::byte`] is
/// `index` modulo `of`. Part `k` of [`SHARDS`] is shard `k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    /// Which part.
    pub index: usize,
    /// Of how many (0 is no part at all).
    pub of: usize,
}

impl Part {
    /// Whether `key` belongs to this part.
    fn holds(self, key: &impl ShardKey) -> bool {
        usize::from(key.byte()).checked_rem(self.of) == Some(self.index)
    }

    /// The shards that may hold keys of this part.
    fn shards(self) -> impl Iterator<Item = usize> {
        let mut seen = [false; SHARDS];
        (0..=255u8)
            .map(usize::from)
            .filter(move |b| b.checked_rem(self.of) == Some(self.index))
            .map(|b| b % SHARDS)
            .filter(move |&s| !std::mem::replace(&mut seen[s], true))
    }
}

/// A map with the `HashMap` operations the store uses, over [`SHARDS`] shards.
#[derive(Clone, Debug)]
pub struct ShardedMap<K, V> {
    shards: Vec<HashMap<K, V>>,
}

impl<K, V> Default for ShardedMap<K, V> {
    fn default() -> Self {
        ShardedMap {
            shards: (0..SHARDS).map(|_| HashMap::new()).collect(),
        }
    }
}

/// Equal when they hold the same entries: a key's shard depends on the key alone.
impl<K: ShardKey, V: PartialEq> PartialEq for ShardedMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.shards == other.shards
    }
}

impl<K: ShardKey, V> ShardedMap<K, V> {
    fn shard(&self, key: &K) -> &HashMap<K, V> {
        &self.shards[key.shard()]
    }

    fn shard_mut(&mut self, key: &K) -> &mut HashMap<K, V> {
        &mut self.shards[key.shard()]
    }

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.shard(key).get(key)
    }

    /// The value of `key`, to change in place.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.shard_mut(key).get_mut(key)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &K) -> bool {
        self.shard(key).contains_key(key)
    }

    /// Sets `key` to `value`, returning the value it replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.shard_mut(&key).insert(key, value)
    }

    /// The entry of `key`, for in-place insertion or update.
    pub fn entry(&mut self, key: K) -> Entry<'_, K, V> {
        self.shard_mut(&key).entry(key)
    }

    /// Keeps only the entries for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        for shard in &mut self.shards {
            shard.retain(&mut keep);
        }
    }

    /// Keeps only the entries of shard `shard` (below [`SHARDS`]) for which `keep` is true;
    /// returns how many went.
    pub fn retain_shard(&mut self, shard: usize, keep: impl FnMut(&K, &mut V) -> bool) -> usize {
        let map = &mut self.shards[shard];
        let before = map.len();
        map.retain(keep);
        before - map.len()
    }

    /// Keeps only the entries of `part` for which `keep` is true, and every entry of other parts;
    /// returns how many went. Visits only the shards that hold keys of `part`.
    pub fn retain_part(&mut self, part: Part, mut keep: impl FnMut(&K, &mut V) -> bool) -> usize {
        let mut removed = 0;
        for shard in part.shards() {
            removed += self.retain_shard(shard, |k, v| !part.holds(k) || keep(k, v));
        }
        removed
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.shards.iter().flat_map(HashMap::iter)
    }

    /// Every value, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.shards.iter().flat_map(HashMap::values)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.shards.iter().map(HashMap::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(first: u8, rest: u8) -> SecretHash {
        let mut k = [rest; 32];
        k[0] = first;
        SecretHash(k)
    }

    #[test]
    fn behaves_as_one_map() {
        let mut m = ShardedMap::default();
        for first in 0..=255u8 {
            assert_eq!(m.insert(key(first, 1), u32::from(first)), None);
        }
        assert_eq!(m.len(), 256);
        assert_eq!(m.insert(key(7, 1), 70), Some(7));
        assert_eq!(m.get(&key(7, 1)), Some(&70));
        assert!(m.get(&key(7, 2)).is_none());
        *m.get_mut(&key(200, 1)).expect("present") += 1;
        assert_eq!(m.get(&key(200, 1)), Some(&201));
        *m.entry(key(3, 9)).or_insert(0) += 5;
        assert!(m.contains_key(&key(3, 9)));
        m.retain(|k, v| k.0[0] % 2 == 0 && *v != 0);
        assert_eq!(m.len(), 127, "even first bytes except 0 (value 0)");
        let in_shard_2 = (0..=255u8)
            .filter(|&first| first % 2 == 0 && first != 0 && usize::from(first) % SHARDS == 2)
            .count();
        assert_eq!(m.retain_shard(2, |_, _| false), in_shard_2);
        assert_eq!(m.len(), 127 - in_shard_2);
        assert!(m.get(&key(2, 1)).is_none());
        assert_eq!(m.get(&key(4, 1)), Some(&4));
        assert_eq!(m.values().copied().max(), Some(254));
    }

    #[test]
    fn equal_contents_compare_equal_whatever_the_insertion_order() {
        let mut a = ShardedMap::default();
        let mut b = ShardedMap::default();
        for i in 0..100u8 {
            a.insert(key(i, i), i);
            b.insert(key(99 - i, 99 - i), 99 - i);
        }
        assert_eq!(a, b);
        b.insert(key(5, 5), 0);
        assert_ne!(a, b);
    }

    #[test]
    fn every_shard_is_used() {
        let mut m = ShardedMap::default();
        for first in 0..=255u8 {
            m.insert(key(first, 0), ());
        }
        assert!(m.shards.iter().all(|s| s.len() == 256 / SHARDS));
    }
}
