//! The store's logic over plain maps: one method per kind of op, effect and purge.

use std::collections::HashMap;

use crate::sharded::ShardedMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use oauth_proto::client::ClientRecord;
use oauth_proto::secret::SecretHash;
use oauth_proto::store::{
    CodeRecord, CodeTake, DeviceLookup, DeviceRecord, DeviceStatus, Effect, GrantId, GrantRecord,
    Op, PurgeStats, RefreshGrant, RefreshRecord, RefreshState, Reply, SubjectRecord, UserRecord,
};

/// One stored record, as a snapshot lists them. `MemoryState` is exactly the set of its records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Record {
    /// A client.
    Client(ClientRecord),
    /// An authorization code and whether it was taken.
    Code {
        /// The code.
        record: CodeRecord,
        /// Taken already.
        used: bool,
    },
    /// A grant.
    Grant(GrantRecord),
    /// A refresh token.
    Refresh(RefreshRecord),
    /// A device authorization.
    Device(DeviceRecord),
    /// A subject's credential version.
    Subject {
        /// The subject.
        subject: String,
        /// Its record.
        record: SubjectRecord,
    },
    /// Access tokens of a grant revoked up to `at`, remembered until `keep_until`.
    RevokedAccess {
        /// The grant.
        grant_id: GrantId,
        /// Tokens issued at or before this are revoked.
        at: u64,
        /// When the entry can go.
        keep_until: u64,
    },
    /// A counter.
    Counter {
        /// Its key.
        key: String,
        /// Its value.
        count: u32,
        /// End of its window.
        expires_at: u64,
    },
    /// A user.
    User(UserRecord),
}

/// All state of a store, answering the contract of `oauth_proto::store`.
///
/// Clients are kept in `Arc`s: [`Op::GetClient`] is on every token-style request, and answering it
/// shares the record instead of copying it (a client is replaced whole by `PutClient`, never edited
/// in place).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemoryState {
    clients: HashMap<String, Arc<ClientRecord>>,
    codes: ShardedMap<SecretHash, (CodeRecord, bool)>,
    grants: ShardedMap<GrantId, GrantRecord>,
    refresh: ShardedMap<SecretHash, RefreshRecord>,
    devices: ShardedMap<SecretHash, DeviceRecord>,
    user_codes: ShardedMap<SecretHash, SecretHash>,
    subjects: HashMap<String, SubjectRecord>,
    revoked_access: ShardedMap<GrantId, (u64, u64)>,
    counters: HashMap<String, (u32, u64)>,
    users: HashMap<String, UserRecord>,
}

impl MemoryState {
    /// Answers an op that does not change anything. Mutating ops are answered by [`Self::execute`].
    pub fn query(&self, op: &Op) -> Reply {
        match op {
            Op::GetClient { client_id } => Reply::Client(self.clients.get(client_id).cloned()),
            Op::ListClients => {
                let mut all: Vec<ClientRecord> = self
                    .clients
                    .values()
                    .map(|c| ClientRecord::clone(c))
                    .collect();
                all.sort_by(|a, b| a.client_id.cmp(&b.client_id));
                Reply::Clients(all)
            }
            Op::GetSubject { subject } => {
                Reply::Subject(self.subjects.get(subject).cloned().unwrap_or_default())
            }
            Op::GetRefresh { hash } => Reply::Refresh(self.refresh.get(hash).and_then(|token| {
                let grant = self.grants.get(&token.grant_id)?;
                Some(RefreshGrant {
                    token: token.clone(),
                    grant: grant.clone(),
                })
            })),
            Op::GetDevice { by } => Reply::Device(self.device(by).cloned()),
            Op::RevocationStatus { grant_id, subject } => Reply::RevocationStatus {
                access_revoked_at: self.access_revoked_at(grant_id),
                credential_version: self.credential_version(subject),
            },
            Op::GetUser { username } => Reply::User(self.users.get(username).cloned()),
            Op::ListUsers => {
                let mut all: Vec<_> = self.users.values().cloned().collect();
                all.sort_by(|a, b| a.username.cmp(&b.username));
                Reply::Users(all)
            }
            // Mutating ops are never answered here; answering them as "nothing happened" keeps a
            // misrouted call harmless rather than panicking.
            Op::TakeCode { .. } => Reply::Code(CodeTake::Missing),
            Op::RotateRefresh { .. } | Op::SwapDevice { .. } => Reply::Swapped(false),
            Op::Count { .. } => Reply::Count(u32::MAX),
        }
    }

    /// Answers any op, performing the atomic ones.
    pub fn execute(&mut self, op: Op) -> Reply {
        match op {
            Op::TakeCode { hash } => Reply::Code(match self.codes.get_mut(&hash) {
                None => CodeTake::Missing,
                Some((record, used)) if *used => CodeTake::Used(record.clone()),
                Some((record, used)) => {
                    *used = true;
                    CodeTake::Taken(record.clone())
                }
            }),
            Op::RotateRefresh { old, new } => Reply::Swapped(self.rotate(old, new)),
            Op::SwapDevice {
                expected_revision,
                record,
            } => {
                let swapped = match self.devices.get_mut(&record.device_code_hash) {
                    Some(current) if current.revision == expected_revision => {
                        *current = record;
                        true
                    }
                    _ => false,
                };
                Reply::Swapped(swapped)
            }
            Op::Count {
                key,
                now,
                expires_at,
            } => {
                let entry = self.counters.entry(key).or_insert((0, expires_at));
                if entry.1 <= now {
                    *entry = (0, expires_at);
                }
                entry.0 = entry.0.saturating_add(1);
                Reply::Count(entry.0)
            }
            other => self.query(&other),
        }
    }

    fn rotate(&mut self, old: SecretHash, new: RefreshRecord) -> bool {
        let Some(current) = self.refresh.get_mut(&old) else {
            return false;
        };
        if current.state != RefreshState::Active || current.grant_id != new.grant_id {
            return false;
        }
        let Some(grant) = self.grants.get_mut(&new.grant_id) else {
            return false;
        };
        if grant.revoked_at.is_some() {
            return false;
        }
        current.state = RefreshState::Rotated { at: new.issued_at };
        grant.expires_at = grant.expires_at.max(new.expires_at);
        self.refresh.insert(new.hash, new);
        true
    }

    fn device(&self, by: &DeviceLookup) -> Option<&DeviceRecord> {
        match by {
            DeviceLookup::DeviceCode(h) => self.devices.get(h),
            DeviceLookup::UserCode(h) => self.user_codes.get(h).and_then(|d| self.devices.get(d)),
        }
    }

    /// Applies one effect.
    pub fn apply(&mut self, effect: Effect) {
        match effect {
            Effect::PutClient(c) => self.insert(Record::Client(c)),
            Effect::DeleteClient {
                client_id,
                at,
                keep_until,
            } => {
                self.clients.remove(&client_id);
                self.revoke_where(|g| g.client_id == client_id, at, keep_until);
            }
            Effect::PutCode(record) => self.insert(Record::Code {
                record,
                used: false,
            }),
            Effect::PutGrant(g) => self.insert(Record::Grant(g)),
            Effect::PutRefresh(r) => self.insert(Record::Refresh(r)),
            Effect::PutDevice(d) => self.insert(Record::Device(d)),
            Effect::RevokeGrant {
                grant_id,
                at,
                keep_until,
            } => {
                if let Some(g) = self.grants.get_mut(&grant_id) {
                    g.revoked_at.get_or_insert(at);
                }
                self.revoke_access(grant_id, at, keep_until);
            }
            Effect::RevokeAccess {
                grant_id,
                at,
                keep_until,
            } => self.revoke_access(grant_id, at, keep_until),
            Effect::RevokeSubject {
                subject,
                at,
                keep_until,
            } => {
                let record = self.subjects.entry(subject.clone()).or_default();
                record.credential_version = record.credential_version.wrapping_add(1);
                self.codes.retain(|_, (c, _)| c.subject != subject);
                self.devices.retain(|_, d| {
                    !matches!(&d.status, DeviceStatus::Approved { subject: s, .. } if *s == subject)
                });
                let devices = &self.devices;
                self.user_codes.retain(|_, d| devices.contains_key(d));
                self.revoke_where(|g| g.subject == subject, at, keep_until);
            }
            Effect::RevokeClient {
                client_id,
                at,
                keep_until,
            } => {
                self.revoke_where(|g| g.client_id == client_id, at, keep_until);
            }
            Effect::ResetCounter { key } => {
                self.counters.remove(&key);
            }
            Effect::PutUser(u) => self.insert(Record::User(u)),
            Effect::DeleteUser { username } => {
                self.users.remove(&username);
            }
        }
    }

    fn revoke_access(&mut self, grant_id: GrantId, at: u64, keep_until: u64) {
        let entry = self
            .revoked_access
            .entry(grant_id)
            .or_insert((at, keep_until));
        entry.0 = entry.0.max(at);
        entry.1 = entry.1.max(keep_until);
    }

    fn revoke_where(&mut self, matches: impl Fn(&GrantRecord) -> bool, at: u64, keep_until: u64) {
        let ids: Vec<GrantId> = self
            .grants
            .values()
            .filter(|g| matches(g))
            .map(|g| g.grant_id)
            .collect();
        for id in ids {
            if let Some(g) = self.grants.get_mut(&id) {
                g.revoked_at.get_or_insert(at);
            }
            self.revoke_access(id, at, keep_until);
        }
    }

    /// Drops everything that expired at or before `now`, and grants that were revoked (with their
    /// refresh tokens): a revoked grant answers like an unknown one.
    pub fn purge(&mut self, now: u64) -> PurgeStats {
        let before = self.len();
        self.codes.retain(|_, (c, _)| c.expires_at > now);
        self.grants
            .retain(|_, g| g.expires_at > now && g.revoked_at.is_none());
        let grants = &self.grants;
        self.refresh
            .retain(|_, r| r.expires_at > now && grants.contains_key(&r.grant_id));
        self.devices.retain(|_, d| d.expires_at > now);
        let devices = &self.devices;
        self.user_codes.retain(|_, d| devices.contains_key(d));
        self.revoked_access
            .retain(|_, (_, keep_until)| *keep_until > now);
        self.counters.retain(|_, (_, expires_at)| *expires_at > now);
        PurgeStats {
            removed: (before - self.len()) as u64,
        }
    }

    /// The number of records held.
    pub fn len(&self) -> usize {
        self.clients.len()
            + self.codes.len()
            + self.grants.len()
            + self.refresh.len()
            + self.devices.len()
            + self.subjects.len()
            + self.revoked_access.len()
            + self.counters.len()
            + self.users.len()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Revocation view: when a grant's access tokens were revoked.
    pub fn access_revoked_at(&self, grant_id: &GrantId) -> Option<u64> {
        self.revoked_access.get(grant_id).map(|(at, _)| *at)
    }

    /// Revocation view: a subject's credential version.
    pub fn credential_version(&self, subject: &str) -> u32 {
        self.subjects
            .get(subject)
            .map_or(0, |s| s.credential_version)
    }

    /// Every record, for a snapshot.
    pub fn records(&self) -> impl Iterator<Item = Record> + '_ {
        let clients = self
            .clients
            .values()
            .map(|c| Record::Client(ClientRecord::clone(c)));
        let codes = self.codes.values().map(|(record, used)| Record::Code {
            record: record.clone(),
            used: *used,
        });
        let grants = self.grants.values().cloned().map(Record::Grant);
        let refresh = self.refresh.values().cloned().map(Record::Refresh);
        let devices = self.devices.values().cloned().map(Record::Device);
        let subjects = self
            .subjects
            .iter()
            .map(|(subject, record)| Record::Subject {
                subject: subject.clone(),
                record: record.clone(),
            });
        let revoked = self
            .revoked_access
            .iter()
            .map(|(grant_id, (at, keep_until))| Record::RevokedAccess {
                grant_id: *grant_id,
                at: *at,
                keep_until: *keep_until,
            });
        let counters = self
            .counters
            .iter()
            .map(|(key, (count, expires_at))| Record::Counter {
                key: key.clone(),
                count: *count,
                expires_at: *expires_at,
            });
        let users = self.users.values().cloned().map(Record::User);
        clients
            .chain(codes)
            .chain(grants)
            .chain(refresh)
            .chain(devices)
            .chain(subjects)
            .chain(revoked)
            .chain(counters)
            .chain(users)
    }

    /// Inserts (or replaces) one record: loading a snapshot, and every `Put*` effect.
    pub fn insert(&mut self, record: Record) {
        match record {
            Record::Client(c) => {
                self.clients.insert(c.client_id.clone(), Arc::new(c));
            }
            Record::Code { record, used } => {
                self.codes.insert(record.hash, (record, used));
            }
            Record::Grant(g) => {
                self.grants.insert(g.grant_id, g);
            }
            Record::Refresh(r) => {
                self.refresh.insert(r.hash, r);
            }
            Record::Device(d) => {
                self.user_codes.insert(d.user_code_hash, d.device_code_hash);
                self.devices.insert(d.device_code_hash, d);
            }
            Record::Subject { subject, record } => {
                self.subjects.insert(subject, record);
            }
            Record::RevokedAccess {
                grant_id,
                at,
                keep_until,
            } => {
                self.revoked_access.insert(grant_id, (at, keep_until));
            }
            Record::Counter {
                key,
                count,
                expires_at,
            } => {
                self.counters.insert(key, (count, expires_at));
            }
            Record::User(u) => {
                self.users.insert(u.username.clone(), u);
            }
        }
    }
}
