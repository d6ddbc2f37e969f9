//! The documents fetched lately, each until its freshness runs out.
//!
//! Bounded, because strangers choose the URLs: at most `capacity` entries (each at most 5 KB);
//! a new entry first drops the expired ones, then, if still full, the one that would expire
//! soonest. Lookups and insertions take one short lock; nothing is held across a fetch.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use oauth_proto::client_id_document::ClientDocument;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// URL → document (or failure) and when it stops being fresh.
#[derive(Debug)]
pub struct Cache {
    capacity: usize,
    entries: Mutex<HashMap<String, (ClientDocument, Instant)>>,
}

impl Cache {
    /// An empty cache of at most `capacity` entries (0 keeps nothing).
    pub fn new(capacity: usize) -> Self {
        Cache {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<String, (ClientDocument, Instant)>> {
        // A panic while holding the lock leaves a map that is still whole.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The fresh entry for `url`, if any.
    pub fn get(&self, url: &str, now: Instant) -> Option<ClientDocument> {
        let entries = self.entries();
        let (document, until) = entries.get(url)?;
        (*until > now).then(|| document.clone())
    }

    /// Keeps `document` for `url` for `fresh_for` from `now`.
    pub fn put(&self, url: &str, document: ClientDocument, now: Instant, fresh_for: Duration) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.entries();
        if entries.len() >= self.capacity && !entries.contains_key(url) {
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= self.capacity {
                let soonest = entries
                    .iter()
                    .min_by_key(|(_, (_, until))| *until)
                    .map(|(k, _)| k.clone());
                if let Some(k) = soonest {
                    entries.remove(&k);
                }
            }
        }
        entries.insert(url.to_owned(), (document, now + fresh_for));
    }

    /// How many entries are kept (expired ones included until a new entry drops them).
    pub fn len(&self) -> usize {
        self.entries().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oauth_proto::client_id_document::FetchError;

    #[test]
    fn entries_expire_and_the_size_stays_bounded() {
        let cache = Cache::new(2);
        let t = Instant::now();
        let doc = |b: &str| ClientDocument::fetched(b.as_bytes().to_vec());
        cache.put("a", doc("a"), t, Duration::from_secs(10));
        assert_eq!(cache.get("a", t), Some(doc("a")));
        assert_eq!(cache.get("a", t + Duration::from_secs(10)), None);
        cache.put("b", doc("b"), t, Duration::from_secs(20));
        cache.put(
            "c",
            ClientDocument::failed(FetchError::Timeout),
            t,
            Duration::from_secs(5),
        );
        // Full: "a" (soonest to expire) made room for "c".
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get("a", t), None);
        assert_eq!(cache.get("b", t), Some(doc("b")));
        // Expired entries go first.
        cache.put(
            "d",
            doc("d"),
            t + Duration::from_secs(6),
            Duration::from_secs(5),
        );
        assert_eq!(cache.get("b", t), Some(doc("b")));
        assert_eq!(cache.len(), 2);
        assert!(Cache::new(0).get("a", t).is_none());
    }
}
