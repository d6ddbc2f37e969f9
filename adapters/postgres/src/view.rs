//! The revocation view this node answers access token validation from, without a round trip.
//!
//! It holds every row of `revoked_access` and every subject whose credential version is above 0,
//! loaded when the store opens and then updated from this node's own committed writes: each
//! revoking statement returns the rows it left (`RETURNING`), with their `revocation_seq`, and
//! they are laid in here after the transaction commits. An entry is replaced only by one with a
//! higher sequence number, so rows that arrive out of order (several writers on this node now;
//! the rows other nodes wrote, once the catch-up reads them) never roll a revocation back.
//! Entries whose `keep_until` has passed go when this node purges, as the rows do.
//!
//! Until LISTEN/NOTIFY and the periodic catch-up land, a revocation made through another node is
//! seen here only after a restart; the `revocation_seq` column is what that catch-up reads.

use std::collections::HashMap;

use parking_lot::RwLock;

use oauth_proto::store::GrantId;

/// An access revocation as stored: the time, until when it is kept, and its sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Revoked {
    pub(crate) at: u64,
    pub(crate) keep_until: u64,
    pub(crate) seq: i64,
}

/// A subject's credential version and its sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Version {
    pub(crate) version: u32,
    pub(crate) seq: i64,
}

/// What a committed write changed in the view.
#[derive(Debug, Default)]
pub(crate) struct ViewChanges {
    pub(crate) access: Vec<(GrantId, Revoked)>,
    pub(crate) subjects: Vec<(Vec<u8>, Version)>,
}

impl ViewChanges {
    pub(crate) fn is_empty(&self) -> bool {
        self.access.is_empty() && self.subjects.is_empty()
    }
}

#[derive(Debug, Default)]
struct Maps {
    access: HashMap<GrantId, Revoked>,
    subjects: HashMap<Vec<u8>, Version>,
}

/// The view, behind one lock (a read takes it once for both answers).
#[derive(Debug, Default)]
pub(crate) struct RevocationCache {
    maps: RwLock<Maps>,
}

impl RevocationCache {
    /// Lays `changes` over the view, each entry only over an older one.
    pub(crate) fn merge(&self, changes: ViewChanges) {
        if changes.is_empty() {
            return;
        }
        let mut maps = self.maps.write();
        for (grant, revoked) in changes.access {
            let entry = maps.access.entry(grant).or_insert(revoked);
            if entry.seq < revoked.seq {
                *entry = revoked;
            }
        }
        for (subject, version) in changes.subjects {
            let entry = maps.subjects.entry(subject).or_insert(version);
            if entry.seq < version.seq {
                *entry = version;
            }
        }
    }

    /// Drops the access revocations kept until `now` or before, as a purge drops their rows.
    pub(crate) fn purge(&self, now: u64) {
        self.maps.write().access.retain(|_, r| r.keep_until > now);
    }

    pub(crate) fn access_revoked_at(&self, grant_id: &GrantId) -> Option<u64> {
        self.maps.read().access.get(grant_id).map(|r| r.at)
    }

    pub(crate) fn credential_version(&self, subject: &str) -> u32 {
        self.maps
            .read()
            .subjects
            .get(subject.as_bytes())
            .map_or(0, |v| v.version)
    }

    pub(crate) fn status(&self, grant_id: &GrantId, subject: &str) -> (Option<u64>, u32) {
        let maps = self.maps.read();
        (
            maps.access.get(grant_id).map(|r| r.at),
            maps.subjects
                .get(subject.as_bytes())
                .map_or(0, |v| v.version),
        )
    }
}
