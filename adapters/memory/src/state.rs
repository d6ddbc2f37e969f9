//! The store's logic over plain maps: one method per kind of op, effect and purge.

use std::collections::HashMap;

use crate::sharded::{Part, ShardedMap, SHARDS};
use std::sync::Arc;

use oauth_directory::{UserChange, UserRecord};
use oauth_proto::client::ClientRecord;
use oauth_proto::client_id_document::{ClientDocument, FetchError};
use oauth_proto::secret::SecretHash;
use oauth_proto::store::extended_grant_expiry;
use oauth_proto::store::{
    CodeRecord, CodeTake, ConsentRecord, DeviceLookup, DeviceRecord, DeviceStatus, Effect, GrantId,
    GrantRecord, Op, PurgeStats, RefreshFamily, RefreshGrant, RefreshKey, Reply, RevocationStatus,
    Rotated, SessionGrant, SubjectRecord, Successor, MAX_CONSENTS_PER_SUBJECT, MAX_SESSION_GRANTS,
};

use crate::record::{Change, Record};

/// All state of a store, answering the contract of `oauth_proto::store`.
///
/// Clients are kept in `Arc`s: [`Op::GetClient`] is on every token-style request, and answering it
/// shares the record instead of copying it (a client is replaced whole, by `PutClient` or
/// `MarkClientUsed`, never edited in place).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemoryState {
    clients: HashMap<String, Arc<ClientRecord>>,
    codes: ShardedMap<SecretHash, (CodeRecord, bool)>,
    grants: ShardedMap<GrantId, GrantRecord>,
    /// Every grant's refresh tokens, rotated in place.
    families: ShardedMap<GrantId, RefreshFamily>,
    /// Refresh tokens issued before families, by hash: their grant, until they expire.
    legacy: ShardedMap<SecretHash, LegacyRefresh>,
    devices: ShardedMap<SecretHash, DeviceRecord>,
    user_codes: ShardedMap<SecretHash, SecretHash>,
    subjects: HashMap<String, SubjectRecord>,
    revoked_access: ShardedMap<GrantId, (u64, u64)>,
    counters: HashMap<String, (u32, u64)>,
    users: HashMap<String, UserRecord>,
    /// Remembered consents by subject, each list newest first (at most
    /// `MAX_CONSENTS_PER_SUBJECT`).
    consents: HashMap<String, Vec<ConsentRecord>>,
}

/// A refresh token issued before families (record version 1): all a store keeps of it is which
/// grant's family it finds ([`RefreshKey::Legacy`]), until it expires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LegacyRefresh {
    grant_id: GrantId,
    expires_at: u64,
}

impl MemoryState {
    /// Answers an op that does not change anything. Mutating ops are answered by [`Self::execute`].
    pub fn query(&self, op: &Op) -> Reply {
        match op {
            Op::GetClient { client_id } => Reply::Client(self.clients.get(client_id).cloned()),
            Op::GetClientWithStatus {
                client_id,
                grant_id,
                subject,
            } => Reply::ClientWithStatus {
                client: self.clients.get(client_id).cloned(),
                status: self.revocation_status(grant_id, subject),
            },
            Op::GetSubject { subject } => {
                Reply::Subject(self.subjects.get(subject).cloned().unwrap_or_default())
            }
            Op::GetRefresh { key } => Reply::Refresh(self.refresh_grant(key)),
            Op::GetDevice { by } => Reply::Device(self.device(by).cloned()),
            Op::RevocationStatus { grant_id, subject } => {
                let status = self.revocation_status(grant_id, subject);
                Reply::RevocationStatus {
                    access_revoked_at: status.access_revoked_at,
                    credential_version: status.credential_version,
                }
            }
            // Mutating ops are never answered here; answering them as "nothing happened" keeps a
            // misrouted call harmless rather than panicking.
            Op::TakeCode { .. } => Reply::Code(CodeTake::Missing),
            Op::RotateRefresh { .. } | Op::SwapDevice { .. } => Reply::Swapped(false),
            Op::RefreshPublic { grant_id, .. } => Reply::RefreshRotated {
                found: self.refresh_grant(&RefreshKey::Grant(*grant_id)),
                rotated: false,
            },
            Op::Count { .. } => Reply::Count(u32::MAX),
            Op::UserClaims { subject } => {
                Reply::UserClaims(self.users.get(subject).map(UserRecord::claims))
            }
            Op::Consents { subject } => {
                Reply::Consents(self.consents.get(subject).cloned().unwrap_or_default())
            }
            Op::GrantsOfSession {
                subject,
                sid,
                now,
                after,
            } => Reply::SessionGrants(self.grants_of_session(subject, sid, *now, *after)),
            // Documents are fetched by the driver, never by a store.
            Op::FetchClientDocument { .. } => {
                Reply::ClientDocument(ClientDocument::failed(FetchError::NotFetched))
            }
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
            Op::RotateRefresh {
                grant_id,
                from,
                new,
                family,
                retry,
            } => Reply::Swapped(self.rotate(grant_id, from, &new, Some(family), retry)),
            Op::RefreshPublic {
                grant_id,
                presented,
                client_id,
                new,
            } => {
                let rotated = self.refresh_public(grant_id, presented, &client_id, &new);
                Reply::RefreshRotated {
                    found: self.refresh_grant(&RefreshKey::Grant(grant_id)),
                    rotated,
                }
            }
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

    /// What [`Op::GetRefresh`] answers for `key`.
    fn refresh_grant(&self, key: &RefreshKey) -> Option<RefreshGrant> {
        let grant_id = match key {
            RefreshKey::Grant(grant_id) => grant_id,
            RefreshKey::Legacy(hash) => &self.legacy.get(hash)?.grant_id,
        };
        let family = self.families.get(grant_id)?;
        let grant = self.grants.get(grant_id)?;
        Some(RefreshGrant {
            family: family.clone(),
            grant: grant.clone(),
            client: self.clients.get(&grant.client_id).cloned(),
            status: self.revocation_status(&grant.grant_id, &grant.subject),
        })
    }

    /// What [`Op::RevocationStatus`] answers for `grant_id` and `subject`.
    fn revocation_status(&self, grant_id: &GrantId, subject: &str) -> RevocationStatus {
        RevocationStatus {
            access_revoked_at: self.access_revoked_at(grant_id),
            credential_version: self.credential_version(subject),
        }
    }

    /// [`Op::RotateRefresh`]'s compare-and-swap; `family: None` keeps the family's own hash (a
    /// public client's refresh, and rotations replayed from record version 1).
    pub(crate) fn rotate(
        &mut self,
        grant_id: GrantId,
        from: SecretHash,
        new: &Successor,
        family: Option<SecretHash>,
        retry: bool,
    ) -> bool {
        let Some(grant) = self.grants.get_mut(&grant_id) else {
            return false;
        };
        if grant.revoked_at.is_some() {
            return false;
        }
        let Some(current) = self.families.get_mut(&grant_id) else {
            return false;
        };
        // `SecretHash`'s `==` is constant-time.
        if current.current != from {
            return false;
        }
        if !retry {
            current.previous = Some(Rotated {
                hash: from,
                at: new.issued_at,
            });
        }
        current.current = new.hash;
        current.issued_at = new.issued_at;
        current.expires_at = new.expires_at;
        if family.is_some() {
            current.family = family;
        }
        grant.expires_at = extended_grant_expiry(grant.expires_at, new.expires_at);
        true
    }

    /// [`Op::RefreshPublic`]'s rotation: whether it happened. A family adopted from record
    /// version 1 (without a family hash) is not rotated: the engine sends it a `RotateRefresh`
    /// that gives it one.
    fn refresh_public(
        &mut self,
        grant_id: GrantId,
        presented: SecretHash,
        client_id: &str,
        new: &Successor,
    ) -> bool {
        self.family(&grant_id).is_some_and(|f| f.family.is_some())
            && self.public_rotation(grant_id, presented, client_id, new)
    }

    /// Record version 1's `RefreshPublic`, replayed: [`Self::refresh_public`] on a family adopted
    /// from version 1 tokens, which has no family hash (`v1` module).
    pub(crate) fn refresh_public_legacy(
        &mut self,
        grant_id: GrantId,
        presented: SecretHash,
        client_id: &str,
        new: &Successor,
    ) -> bool {
        self.public_rotation(grant_id, presented, client_id, new)
    }

    /// A public client's rotation, keeping the family hash: if `presented` is current and
    /// unexpired at `new.issued_at` and the grant's client is `client_id` and registered.
    fn public_rotation(
        &mut self,
        grant_id: GrantId,
        presented: SecretHash,
        client_id: &str,
        new: &Successor,
    ) -> bool {
        let rotatable = self
            .families
            .get(&grant_id)
            .is_some_and(|f| f.current == presented && new.issued_at < f.expires_at)
            && self
                .grants
                .get(&grant_id)
                .is_some_and(|g| g.client_id == client_id)
            && self.clients.contains_key(client_id);
        rotatable && self.rotate(grant_id, presented, new, None, false)
    }

    /// The family of `grant_id`, if it has one.
    pub(crate) fn family(&self, grant_id: &GrantId) -> Option<&RefreshFamily> {
        self.families.get(grant_id)
    }

    /// The grant a refresh token issued before families (by its hash) belongs to.
    pub(crate) fn legacy_grant(&self, hash: &SecretHash) -> Option<GrantId> {
        self.legacy.get(hash).map(|l| l.grant_id)
    }

    /// Sets `grant_id`'s family's `previous` (record version 1's conversion).
    pub(crate) fn set_previous(&mut self, grant_id: &GrantId, previous: Rotated) {
        if let Some(f) = self.families.get_mut(grant_id) {
            f.previous = Some(previous);
        }
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
            Effect::MarkClientUsed { client_id } => {
                if let Some(c) = self.clients.get_mut(&client_id) {
                    if c.unused_expires_at.is_some() {
                        let mut used = ClientRecord::clone(c);
                        used.unused_expires_at = None;
                        *c = Arc::new(used);
                    }
                }
            }
            Effect::DeleteClient {
                client_id,
                at,
                keep_until,
            } => {
                self.clients.remove(&client_id);
                self.drop_consents_of(|c| c == client_id);
                self.revoke_where(|g| g.client_id == client_id, at, keep_until);
            }
            Effect::PutCode(record) => self.insert(Record::Code {
                record,
                used: false,
            }),
            Effect::PutGrant(g) => self.insert(Record::Grant(g)),
            Effect::PutRefreshFamily(f) => {
                if self.grants.contains_key(&f.grant_id) {
                    self.insert(Record::RefreshFamily(f));
                }
            }
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
            Effect::PutConsent(c) => self.insert(Record::Consent(c)),
            Effect::DeleteConsent { subject, client_id } => match client_id {
                None => {
                    self.consents.remove(&subject);
                }
                Some(client_id) => {
                    if let Some(list) = self.consents.get_mut(&subject) {
                        list.retain(|c| c.client_id != client_id);
                        if list.is_empty() {
                            self.consents.remove(&subject);
                        }
                    }
                }
            },
        }
    }

    /// Drops every remembered consent whose client id `gone` says is gone.
    fn drop_consents_of(&mut self, gone: impl Fn(&str) -> bool) -> usize {
        let mut removed = 0;
        self.consents.retain(|_, list| {
            let before = list.len();
            list.retain(|c| !gone(&c.client_id));
            removed += before - list.len();
            !list.is_empty()
        });
        removed
    }

    /// Applies one user change (the reference server's directory, `oauth_directory`).
    pub fn change_user(&mut self, change: UserChange) {
        match change {
            UserChange::PutUser(u) => self.insert(Record::User(u)),
            UserChange::DeleteUser { username } => {
                self.users.remove(&username);
            }
        }
    }

    /// Applies one journaled change, of either contract.
    pub fn apply_change(&mut self, change: Change) {
        match change {
            Change::Engine(effect) => self.apply(*effect),
            Change::User(change) => self.change_user(change),
        }
    }

    /// The user named `username` (the reference server's directory).
    pub fn user(&self, username: &str) -> Option<UserRecord> {
        self.users.get(username).cloned()
    }

    /// Every user, sorted by name.
    pub fn users(&self) -> Vec<UserRecord> {
        let mut all: Vec<_> = self.users.values().cloned().collect();
        all.sort_by(|a, b| a.username.cmp(&b.username));
        all
    }

    /// Every client, sorted by id.
    pub fn clients(&self) -> Vec<ClientRecord> {
        let mut all: Vec<ClientRecord> = self
            .clients
            .values()
            .map(|c| ClientRecord::clone(c))
            .collect();
        all.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        all
    }

    /// Revokes the grant's access tokens issued at or before `at`. A grant that already has a
    /// revocation gets this one no earlier than the second after it (and keeps it that much
    /// longer): a token issued after the earlier revocation claims that second at the earliest
    /// (`oauth_proto::issue`), and it was issued before this one, which must reach it.
    fn revoke_access(&mut self, grant_id: GrantId, at: u64, keep_until: u64) {
        match self.revoked_access.entry(grant_id) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert((at, keep_until));
            }
            std::collections::hash_map::Entry::Occupied(mut e) => {
                let (previous, keep) = e.get_mut();
                let moved = at.max(previous.saturating_add(1));
                *keep = (*keep).max(keep_until.saturating_add(moved - at));
                *previous = moved;
            }
        }
    }

    /// [`Op::GrantsOfSession`]: a scan of the grants (no index by subject: this store keeps the
    /// grants of one node, and a session ends far less often than tokens are used), keeping the
    /// first [`MAX_SESSION_GRANTS`] by grant id.
    fn grants_of_session(
        &self,
        subject: &str,
        sid: &str,
        now: u64,
        after: Option<GrantId>,
    ) -> Vec<SessionGrant> {
        let mut found: Vec<SessionGrant> = self
            .grants
            .values()
            .filter(|g| {
                g.subject == subject
                    && g.sid.as_deref() == Some(sid)
                    && g.revoked_at.is_none()
                    && g.expires_at > now
                    && after.is_none_or(|a| g.grant_id > a)
            })
            .map(|g| SessionGrant {
                grant_id: g.grant_id,
                scope: g.scope.clone(),
            })
            .collect();
        found.sort_unstable_by_key(|g| g.grant_id);
        found.truncate(MAX_SESSION_GRANTS);
        found
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
    /// refresh families and legacy refresh tokens): a revoked grant answers like an unknown one. The same as
    /// [`Self::purge_shard`] on every shard.
    pub fn purge(&mut self, now: u64) -> PurgeStats {
        let mut stats = PurgeStats::default();
        for shard in 0..SHARDS {
            stats.removed += self.purge_shard(now, shard).removed;
        }
        stats
    }

    /// [`Self::purge`] of one shard (below [`SHARDS`]) of every sharded map; shard 0 also purges
    /// the login counters and the clients, which are not sharded: a client goes when it was
    /// registered dynamically and never obtained a token before its `unused_expires_at`.
    ///
    /// Why shards: a purge visits every record, and a store runs it under its write lock, which
    /// every token request needs. In one step that stalled every request for 38 ms at 100,000
    /// grants with two refresh tokens each, and 816 ms at a million (`cargo bench -p conformance
    /// --bench purge`); one shard is a [`SHARDS`]th of that, and stores release their lock
    /// between shards.
    ///
    /// Whether a record goes depends on the record and `now` alone, never on which shards were
    /// purged before: a refresh family, or a legacy refresh token, goes when its current token
    /// (the legacy token) expired or its grant is dead (expired, revoked or gone), and a user code
    /// when its device authorization is, wherever those live. So the shards can be
    /// purged in any order, with other changes in between, and all of them together are a full
    /// purge.
    pub fn purge_shard(&mut self, now: u64, shard: usize) -> PurgeStats {
        self.purge_part(now, shard, SHARDS)
    }

    /// [`Self::purge`] of part `index` of `of` (the keys whose placing byte is `index` modulo
    /// `of`; part 0 also takes the unsharded counters and clients): the same as
    /// [`Self::purge_shard`] when `of` is [`SHARDS`]. A persistent store replays the purge steps
    /// of a build with another shard count through it: all `of` parts of one `now` are one whole
    /// purge, as the shards are.
    pub fn purge_part(&mut self, now: u64, index: usize, of: usize) -> PurgeStats {
        let part = Part { index, of };
        let live_grant = |g: &GrantRecord| g.expires_at > now && g.revoked_at.is_none();
        let live_device = |d: &DeviceRecord| d.expires_at > now;
        let mut removed = self.codes.retain_part(part, |_, (c, _)| c.expires_at > now);
        removed += self.grants.retain_part(part, |_, g| live_grant(g));
        let grants = &self.grants;
        removed += self.families.retain_part(part, |grant_id, f| {
            f.expires_at > now && grants.get(grant_id).is_some_and(live_grant)
        });
        removed += self.legacy.retain_part(part, |_, l| {
            l.expires_at > now && grants.get(&l.grant_id).is_some_and(live_grant)
        });
        removed += self.devices.retain_part(part, |_, d| live_device(d));
        let devices = &self.devices;
        // An index of the device authorizations, not a record of its own: not counted.
        self.user_codes
            .retain_part(part, |_, d| devices.get(d).is_some_and(live_device));
        removed += self
            .revoked_access
            .retain_part(part, |_, (_, keep_until)| *keep_until > now);
        if index == 0 && of > 0 {
            let before = self.counters.len();
            self.counters.retain(|_, (_, expires_at)| *expires_at > now);
            removed += before - self.counters.len();
            let before = self.clients.len();
            let mut dropped = Vec::new();
            self.clients.retain(|id, c| {
                let keep = c.unused_expires_at.is_none_or(|at| at > now);
                if !keep {
                    dropped.push(id.clone());
                }
                keep
            });
            removed += before - self.clients.len();
            if !dropped.is_empty() {
                removed += self.drop_consents_of(|c| dropped.iter().any(|d| d == c));
            }
        }
        PurgeStats {
            removed: removed as u64,
        }
    }

    /// The number of records held.
    pub fn len(&self) -> usize {
        self.clients.len()
            + self.codes.len()
            + self.grants.len()
            + self.families.len()
            + self.legacy.len()
            + self.devices.len()
            + self.subjects.len()
            + self.revoked_access.len()
            + self.counters.len()
            + self.users.len()
            + self.consents.values().map(Vec::len).sum::<usize>()
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
        let families = self.families.values().cloned().map(Record::RefreshFamily);
        let legacy = self.legacy.iter().map(|(hash, l)| Record::LegacyRefresh {
            hash: *hash,
            grant_id: l.grant_id,
            expires_at: l.expires_at,
        });
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
        let consents = self
            .consents
            .values()
            .flatten()
            .cloned()
            .map(Record::Consent);
        clients
            .chain(codes)
            .chain(grants)
            .chain(families)
            .chain(legacy)
            .chain(devices)
            .chain(subjects)
            .chain(revoked)
            .chain(counters)
            .chain(users)
            .chain(consents)
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
            Record::RefreshFamily(f) => {
                self.families.insert(f.grant_id, f);
            }
            Record::LegacyRefresh {
                hash,
                grant_id,
                expires_at,
            } => {
                self.legacy.insert(
                    hash,
                    LegacyRefresh {
                        grant_id,
                        expires_at,
                    },
                );
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
            Record::Consent(c) => {
                let list = self.consents.entry(c.subject.clone()).or_default();
                list.retain(|old| old.client_id != c.client_id);
                list.push(c);
                // Newest first; the oldest beyond the bound go.
                list.sort_by(|a, b| {
                    b.granted_at
                        .cmp(&a.granted_at)
                        .then_with(|| b.client_id.cmp(&a.client_id))
                });
                list.truncate(MAX_CONSENTS_PER_SUBJECT);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oauth_proto::scope::Scope;

    /// A key whose shard is `shard` (its first byte), told apart by `n`.
    fn hash(shard: u8, n: u8) -> SecretHash {
        let mut h = [n; 32];
        h[0] = shard;
        SecretHash(h)
    }

    fn grant_id(shard: u8, n: u8) -> GrantId {
        let mut g = [n; 16];
        g[0] = shard;
        GrantId(g)
    }

    fn grant(id: GrantId, expires_at: u64, revoked_at: Option<u64>) -> Effect {
        Effect::PutGrant(GrantRecord {
            grant_id: id,
            client_id: "c".into(),
            subject: "u".into(),
            scope: Scope::parse("mail").expect("scope"),
            credential_version: 0,
            created_at: 0,
            expires_at,
            revoked_at,
            resources: Vec::new(),
            auth_time: None,
            amr: Vec::new(),
            sid: None,
        })
    }

    fn family(grant_id: GrantId, current: SecretHash, expires_at: u64) -> Effect {
        Effect::PutRefreshFamily(RefreshFamily {
            grant_id,
            family: Some(SecretHash::of("family secret")),
            current,
            issued_at: 0,
            expires_at,
            previous: None,
        })
    }

    /// A refresh token issued before families.
    fn legacy(hash: SecretHash, grant_id: GrantId, expires_at: u64) -> Record {
        Record::LegacyRefresh {
            hash,
            grant_id,
            expires_at,
        }
    }

    fn device(device_code_hash: SecretHash, user_code_hash: SecretHash, expires_at: u64) -> Effect {
        Effect::PutDevice(DeviceRecord {
            device_code_hash,
            user_code_hash,
            client_id: "c".into(),
            scope: Scope::parse("mail").expect("scope"),
            issued_at: 0,
            expires_at,
            interval: 5,
            last_poll: None,
            status: DeviceStatus::Pending,
            revision: 0,
            resources: Vec::new(),
        })
    }

    /// Records spread over shards 0 to 49, living and dead, whose dependents (refresh tokens, user
    /// codes) sit in other shards than what they depend on, before and after it.
    fn mixed_state() -> MemoryState {
        let mut s = MemoryState::default();
        for n in 0..50u8 {
            let g = grant_id(n, n);
            let revoked = (n % 5 == 0).then_some(1);
            s.apply(grant(g, 100 + u64::from(n) * 4, revoked));
            s.apply(family(g, hash(49 - n, n), 100 + u64::from(n) * 2));
            s.insert(legacy(hash(n / 2, n.wrapping_add(100)), g, 300));
            s.apply(device(
                hash(n, n),
                hash(49 - n, n.wrapping_add(50)),
                100 + u64::from(n) * 3,
            ));
        }
        s
    }

    #[test]
    fn dependents_of_dead_records_go_whichever_shard_is_purged_first() {
        let mut s = MemoryState::default();
        let revoked = grant_id(10, 1);
        let expired = grant_id(12, 2);
        s.apply(grant(revoked, 1000, Some(5)));
        s.apply(grant(expired, 50, None));
        // Their families, and legacy refresh tokens in shards purged before and after their
        // grants', still unexpired.
        s.apply(family(revoked, hash(7, 7), 900));
        s.apply(family(expired, hash(7, 8), 900));
        s.insert(legacy(hash(3, 1), revoked, 900));
        s.insert(legacy(hash(30, 1), revoked, 900));
        s.insert(legacy(hash(4, 2), expired, 900));
        s.insert(legacy(hash(40, 2), expired, 900));
        // A device authorization in shard 40 that has expired, its user code in shard 2.
        s.apply(device(hash(40, 9), hash(2, 9), 50));
        let mut removed = 0;
        for shard in 0..SHARDS {
            removed += s.purge_shard(100, shard).removed;
        }
        assert_eq!(
            removed, 9,
            "two grants, their families, four legacy tokens, one device authorization"
        );
        assert!(s.is_empty(), "{s:?}");
        assert_eq!(
            s.user_codes.len(),
            0,
            "the user code index follows its device"
        );
    }

    #[test]
    fn every_shard_in_any_order_is_one_whole_purge() {
        for now in [0, 120, 160, 250, 400] {
            let mut whole = mixed_state();
            let expected = whole.purge(now);
            for order in [
                (0..SHARDS).collect::<Vec<_>>(),
                (0..SHARDS).rev().collect(),
                (0..SHARDS).map(|i| (i * 37) % SHARDS).collect(),
            ] {
                let mut stepped = mixed_state();
                let removed: u64 = order
                    .iter()
                    .map(|&shard| stepped.purge_shard(now, shard).removed)
                    .sum();
                assert_eq!(removed, expected.removed, "at {now}");
                assert_eq!(stepped, whole, "at {now}");
            }
        }
    }

    #[test]
    fn every_part_of_any_count_is_one_whole_purge() {
        for now in [0, 120, 160, 250, 400] {
            let mut whole = mixed_state();
            let expected = whole.purge(now);
            for of in [1, 2, 3, 16, 100, 255, 256, 300, 1000] {
                let mut parted = mixed_state();
                let removed: u64 = (0..of)
                    .rev()
                    .map(|index| parted.purge_part(now, index, of).removed)
                    .sum();
                assert_eq!(removed, expected.removed, "{of} parts at {now}");
                assert_eq!(parted, whole, "{of} parts at {now}");
            }
        }
    }

    #[test]
    fn a_part_purges_only_its_keys() {
        let mut s = MemoryState::default();
        for first in [3u8, 19, 35, 4] {
            s.apply(grant(grant_id(first, 1), 50, None));
        }
        // Part 3 of 16: first bytes 3, 19, 35, ...; not 4.
        assert_eq!(s.purge_part(100, 3, 16).removed, 3);
        assert_eq!(s.grants.len(), 1);
        assert!(s.grants.get(&grant_id(4, 1)).is_some());
        // No part at all, or one past the count, purges nothing and never panics.
        assert_eq!(s.purge_part(100, 0, 0).removed, 0);
        assert_eq!(s.purge_part(100, 20, 16).removed, 0);
        assert_eq!(s.grants.len(), 1);
    }

    fn rotate(grant_id: GrantId, from: &str, to: &str, at: u64, retry: bool) -> Op {
        Op::RotateRefresh {
            grant_id,
            from: SecretHash::of(from),
            new: Successor {
                hash: SecretHash::of(to),
                issued_at: at,
                expires_at: at + 1000,
            },
            family: SecretHash::of("family secret"),
            retry,
        }
    }

    fn found(s: &MemoryState, key: RefreshKey) -> Option<RefreshFamily> {
        match s.query(&Op::GetRefresh { key }) {
            Reply::Refresh(found) => found.map(|f| f.family),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_family_rotates_in_place_and_a_retry_keeps_its_previous_token() {
        let mut s = MemoryState::default();
        let g = grant_id(1, 1);
        s.apply(family(g, SecretHash::of("t0"), 900));
        assert_eq!(s.families.len(), 0, "no family without its grant");
        s.apply(grant(g, 950, None));
        s.apply(family(g, SecretHash::of("t0"), 900));
        assert_eq!(
            s.execute(rotate(g, "t0", "t1", 10, false)),
            Reply::Swapped(true)
        );
        assert_eq!(
            s.execute(rotate(g, "t0", "t9", 11, false)),
            Reply::Swapped(false)
        );
        assert_eq!(
            s.execute(rotate(g, "t1", "t2", 12, true)),
            Reply::Swapped(true)
        );
        let f = found(&s, RefreshKey::Grant(g)).expect("found by grant");
        assert_eq!(
            (f.current, f.issued_at, f.expires_at),
            (SecretHash::of("t2"), 12, 1012)
        );
        assert_eq!(
            f.previous,
            Some(Rotated {
                hash: SecretHash::of("t0"),
                at: 10
            }),
            "a retry keeps the token presented again"
        );
        assert_eq!(
            s.grants.get(&g).map(|g| g.expires_at),
            Some(1010 + oauth_proto::store::GRANT_EXTENSION),
            "the first rotation extended the grant past its token; the next one was covered"
        );
        assert_eq!(found(&s, RefreshKey::Legacy(SecretHash::of("t2"))), None);
        s.apply(Effect::RevokeGrant {
            grant_id: g,
            at: 20,
            keep_until: 30,
        });
        assert_eq!(
            s.execute(rotate(g, "t2", "t3", 21, false)),
            Reply::Swapped(false)
        );
        assert!(
            found(&s, RefreshKey::Grant(g)).is_some(),
            "a revoked grant is answered"
        );
    }

    #[test]
    fn a_public_refresh_needs_the_family_secret_the_client_and_an_unexpired_token() {
        let mut s = MemoryState::default();
        let g = grant_id(2, 2);
        s.apply(grant(g, 950, None));
        s.insert(Record::RefreshFamily(RefreshFamily {
            family: None,
            ..match family(g, SecretHash::of("t0"), 900) {
                Effect::PutRefreshFamily(f) => f,
                _ => unreachable!(),
            }
        }));
        let public = |client: &str, at: u64| Op::RefreshPublic {
            grant_id: g,
            presented: SecretHash::of("t0"),
            client_id: client.into(),
            new: Successor {
                hash: SecretHash::of("t1"),
                issued_at: at,
                expires_at: at + 100,
            },
        };
        let rotated = |reply: Reply| match reply {
            Reply::RefreshRotated { found, rotated } => (found.map(|f| f.family.current), rotated),
            other => panic!("{other:?}"),
        };
        let t0 = Some(SecretHash::of("t0"));
        assert_eq!(
            rotated(s.execute(public("c", 10))),
            (t0, false),
            "client unregistered"
        );
        s.apply(Effect::PutClient(ClientRecord {
            client_id: "c".into(),
            name: "app".into(),
            kind: oauth_proto::client::ClientKind::Public,
            secret_hash: None,
            secret_expires_at: None,
            auth_method: oauth_proto::client::AuthMethod::None,
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
            grant_types: Vec::new(),
            scope: Scope::parse("mail").expect("scope"),
            require_pkce: true,
            resource_server: false,
            registration_token_hash: None,
            created_at: 0,
            metadata: serde_json::Map::new(),
            unused_expires_at: None,
            access_token_format: Default::default(),
        }));
        assert_eq!(
            rotated(s.execute(public("c", 10))),
            (t0, false),
            "adopted: no family secret"
        );
        s.apply(family(g, SecretHash::of("t0"), 900));
        assert_eq!(
            rotated(s.execute(public("other", 10))),
            (t0, false),
            "another client"
        );
        assert_eq!(rotated(s.execute(public("c", 900))), (t0, false), "expired");
        let t1 = Some(SecretHash::of("t1"));
        assert_eq!(
            rotated(s.execute(public("c", 10))),
            (t1, true),
            "answered after"
        );
        assert_eq!(
            rotated(s.execute(public("c", 11))),
            (t1, false),
            "used once"
        );
    }

    #[test]
    fn the_mixed_state_has_something_to_keep_and_something_to_drop() {
        let mut s = mixed_state();
        let total = s.len() as u64;
        let removed = s.purge(160).removed;
        assert!(removed > 0 && removed < total, "{removed} of {total}");
    }
}
