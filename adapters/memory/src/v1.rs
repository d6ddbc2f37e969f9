//! Record version 1, read and converted: what stores wrote before refresh families.
//!
//! Why it is kept: record version 1 stored one [`RefreshRecord`] per refresh token, and the
//! tokens its stores issued are still in users' hands (mail clients keep a refresh token for
//! months). A deployment upgrading must keep them working, so the file store reads version 1
//! snapshots and journals, and `oauth-server db import` version 1 exports, through this module
//! and converts them into version 2 ([`RECORD_VERSION`](crate::RECORD_VERSION)) as they load.
//! Nothing writes version 1 any more.
//!
//! What changed: a version 1 token does not name its grant and carries no family secret, so it
//! can only be found by its hash. The conversion keeps every version 1 token, active or rotated
//! until it expires, as a lookup from its hash to its grant
//! ([`Record::LegacyRefresh`](crate::Record::LegacyRefresh), answered by
//! `GetRefresh { key: RefreshKey::Legacy(hash) }`), and adopts each grant's active token as the
//! grant's [`RefreshFamily`]: no family secret (the first rotation gives it one), the active token
//! as `current`, and the token rotated into it (whose successor is its hash), if any, as
//! `previous`, so a client that lost the answer of the last version 1 rotation can still retry it.
//!
//! Journals are converted by replaying them: a version 1 rotation becomes a rotation of the
//! grant's family that keeps its (absent) family hash, plus a lookup entry for the new token,
//! which was issued in the old format too:
//! - `PutRefresh(token)`: the lookup entry, and the grant's family if it has none (an active
//!   token) or its `previous` (the token rotated into the family's current one).
//! - `RotateRefresh { old, new }`: a rotation from `old` into `new` (`retry: false`).
//! - `RetryRotation { old, successor, new }`: a rotation from `successor` into `new` with
//!   `retry: true` (`previous` stays `old`, with its rotation time).
//! - `RefreshPublic { hash, client_id, new }`: version 2's `RefreshPublic` on the family of the
//!   grant that `hash` finds.
//!
//! Every other record, op and effect has the same shape in both versions: the version 1 types
//! here read their refresh variants by name and hand every other name to the current type.

use std::marker::PhantomData;

use serde::de::{Deserializer, EnumAccess, VariantAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use oauth_proto::secret::SecretHash;
use oauth_proto::store::{GrantId, RefreshFamily, Rotated, Successor};

use crate::record::Named;
use crate::state::MemoryState;

/// The state of one version 1 refresh token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefreshState {
    /// Usable.
    Active,
    /// Replaced by a successor at the given time.
    Rotated {
        /// When it was rotated.
        at: u64,
        /// Hash of its successor. `None` in records stored before successors were recorded.
        #[serde(default)]
        successor: Option<SecretHash>,
    },
}

/// A version 1 refresh token, stored under its hash.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefreshRecord {
    /// SHA-256 of the token.
    pub hash: SecretHash,
    /// The grant it belongs to.
    pub grant_id: GrantId,
    /// Issue time.
    pub issued_at: u64,
    /// Expiry.
    pub expires_at: u64,
    /// Active or rotated.
    pub state: RefreshState,
}

impl RefreshRecord {
    /// The version 2 lookup entry of this token.
    fn legacy(&self) -> crate::Record {
        crate::Record::LegacyRefresh {
            hash: self.hash,
            grant_id: self.grant_id,
            expires_at: self.expires_at,
        }
    }

    /// The version 2 family this token is the current token of (`previous` not yet known).
    fn family(&self) -> RefreshFamily {
        RefreshFamily {
            grant_id: self.grant_id,
            family: None,
            current: self.hash,
            issued_at: self.issued_at,
            expires_at: self.expires_at,
            previous: None,
        }
    }

    /// The successor this token was rotated into, and when.
    fn rotated_into(&self) -> Option<(SecretHash, Rotated)> {
        match self.state {
            RefreshState::Rotated {
                at,
                successor: Some(successor),
            } => Some((
                successor,
                Rotated {
                    hash: self.hash,
                    at,
                },
            )),
            _ => None,
        }
    }

    fn successor(&self) -> Successor {
        Successor {
            hash: self.hash,
            issued_at: self.issued_at,
            expires_at: self.expires_at,
        }
    }
}

/// A version 1 record: a refresh token, or a record the same in both versions. (Read once, at an
/// upgrade, and converted at once: the size difference of its variants is not worth a box.)
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// A record version 2 has unchanged.
    Current(crate::Record),
    /// A refresh token (`Record::Refresh` in version 1).
    Refresh(RefreshRecord),
}

/// A version 1 change: a refresh token stored, or a change the same in both versions.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// A change version 2 has unchanged.
    Current(crate::Change),
    /// `Effect::PutRefresh` of version 1.
    PutRefresh(RefreshRecord),
}

/// A version 1 mutating op, as journals hold them.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// An op version 2 has unchanged (a code take, a device swap, a count).
    Current(oauth_proto::store::Op),
    /// One of version 1's refresh rotations.
    Refresh(RefreshOp),
}

/// Version 1's refresh rotations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RefreshOp {
    /// If `old` is active, of `new`'s grant, and the grant is not revoked: rotate it into `new`.
    RotateRefresh {
        /// Hash of the token being replaced.
        old: SecretHash,
        /// Its successor.
        new: RefreshRecord,
    },
    /// A retried rotation: `old` was rotated into `successor`, which is replaced by `new`.
    RetryRotation {
        /// Hash of the rotated token presented again.
        old: SecretHash,
        /// Hash of the successor `old` was rotated to.
        successor: SecretHash,
        /// The successor's replacement.
        new: RefreshRecord,
    },
    /// A public client's read and rotation of the token `hash` in one step.
    RefreshPublic {
        /// Hash of the presented token.
        hash: SecretHash,
        /// The client the request names.
        client_id: String,
        /// The token to rotate into.
        new: Successor,
    },
}

/// Version 1's `Record::Refresh`, alone: what `Record` reads for that name.
#[derive(Serialize, Deserialize)]
enum RefreshVariant<T> {
    Refresh(T),
}

/// Version 1's `Effect::PutRefresh`, alone.
#[derive(Serialize, Deserialize)]
enum PutRefreshVariant<T> {
    PutRefresh(T),
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Record::Current(record) => record.serialize(serializer),
            Record::Refresh(r) => RefreshVariant::Refresh(r).serialize(serializer),
        }
    }
}

impl Serialize for Change {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Change::Current(change) => change.serialize(serializer),
            Change::PutRefresh(r) => PutRefreshVariant::PutRefresh(r).serialize(serializer),
        }
    }
}

impl Serialize for Op {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Op::Current(op) => op.serialize(serializer),
            Op::Refresh(op) => op.serialize(serializer),
        }
    }
}

/// A type read by its variant name: some names its own, every other one the current type's.
trait ByName: Sized {
    fn by_name<'de, V: VariantAccess<'de>>(named: Named<V>) -> Result<Self, V::Error>;
}

impl ByName for Record {
    fn by_name<'de, V: VariantAccess<'de>>(named: Named<V>) -> Result<Self, V::Error> {
        if named.name == "Refresh" {
            let RefreshVariant::Refresh(r) = RefreshVariant::deserialize(named)?;
            Ok(Record::Refresh(r))
        } else {
            crate::Record::deserialize(named).map(Record::Current)
        }
    }
}

impl ByName for Change {
    fn by_name<'de, V: VariantAccess<'de>>(named: Named<V>) -> Result<Self, V::Error> {
        if named.name == "PutRefresh" {
            let PutRefreshVariant::PutRefresh(r) = PutRefreshVariant::deserialize(named)?;
            Ok(Change::PutRefresh(r))
        } else {
            crate::Change::deserialize(named).map(Change::Current)
        }
    }
}

impl ByName for Op {
    fn by_name<'de, V: VariantAccess<'de>>(named: Named<V>) -> Result<Self, V::Error> {
        if matches!(
            named.name.as_str(),
            "RotateRefresh" | "RetryRotation" | "RefreshPublic"
        ) {
            RefreshOp::deserialize(named).map(Op::Refresh)
        } else {
            oauth_proto::store::Op::deserialize(named).map(Op::Current)
        }
    }
}

struct ByNameVisitor<T>(PhantomData<T>);

impl<'de, T: ByName> Visitor<'de> for ByNameVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a record version 1 enum variant")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<T, A::Error> {
        let (name, variant): (String, A::Variant) = data.variant()?;
        T::by_name(Named { name, variant })
    }
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_enum("Record", &[], ByNameVisitor(PhantomData))
    }
}

impl<'de> Deserialize<'de> for Change {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_enum("Change", &[], ByNameVisitor(PhantomData))
    }
}

impl<'de> Deserialize<'de> for Op {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_enum("Op", &[], ByNameVisitor(PhantomData))
    }
}

/// Converts a whole set of version 1 records (a snapshot's, an export's) into version 2,
/// whatever their order: every record unchanged but the refresh tokens, which become lookup
/// entries and families (see the module docs).
pub fn convert(records: impl IntoIterator<Item = Record>) -> Vec<crate::Record> {
    let mut out = Vec::new();
    let mut tokens = Vec::new();
    for record in records {
        match record {
            Record::Current(record) => out.push(record),
            Record::Refresh(token) => tokens.push(token),
        }
    }
    out.extend(convert_refresh(tokens));
    out
}

/// The version 2 records of a set of version 1 refresh tokens: a lookup entry for each, and a
/// family for each grant with an active one. A grant with several active tokens (version 1 never
/// issued that) adopts the newest; its predecessor is the token rotated into it latest.
pub fn convert_refresh(mut tokens: Vec<RefreshRecord>) -> Vec<crate::Record> {
    let mut out: Vec<crate::Record> = tokens.iter().map(RefreshRecord::legacy).collect();
    // Newest first, so the first active token of a grant is the one adopted, and the first
    // token rotated into a family's current one is the latest rotation.
    tokens.sort_by(|a, b| {
        let at = |t: &RefreshRecord| match t.state {
            RefreshState::Active => t.issued_at,
            RefreshState::Rotated { at, .. } => at,
        };
        at(b).cmp(&at(a)).then_with(|| b.hash.0.cmp(&a.hash.0))
    });
    let mut families: std::collections::HashMap<GrantId, RefreshFamily> =
        std::collections::HashMap::new();
    for token in tokens.iter().filter(|t| t.state == RefreshState::Active) {
        families
            .entry(token.grant_id)
            .or_insert_with(|| token.family());
    }
    for token in &tokens {
        if let Some((successor, rotated)) = token.rotated_into() {
            if let Some(f) = families.get_mut(&token.grant_id) {
                if f.current == successor && f.previous.is_none() {
                    f.previous = Some(rotated);
                }
            }
        }
    }
    let mut families: Vec<RefreshFamily> = families.into_values().collect();
    families.sort_by_key(|f| f.grant_id);
    out.extend(families.into_iter().map(crate::Record::RefreshFamily));
    out
}

impl MemoryState {
    /// Applies one version 1 change (a journal's), converted as the module docs say.
    pub fn apply_v1(&mut self, change: Change) {
        match change {
            Change::Current(change) => self.apply_change(change),
            Change::PutRefresh(token) => {
                self.insert(token.legacy());
                if token.state == RefreshState::Active {
                    if self.family(&token.grant_id).is_none() {
                        self.apply(oauth_proto::store::Effect::PutRefreshFamily(token.family()));
                    }
                } else if let Some((successor, rotated)) = token.rotated_into() {
                    if self
                        .family(&token.grant_id)
                        .is_some_and(|f| f.current == successor)
                    {
                        self.set_previous(&token.grant_id, rotated);
                    }
                }
            }
        }
    }

    /// Performs one version 1 mutating op (a journal's), converted as the module docs say.
    pub fn execute_v1(&mut self, op: Op) {
        let (grant_id, new, rotated) = match op {
            Op::Current(op) => {
                self.execute(op);
                return;
            }
            Op::Refresh(RefreshOp::RotateRefresh { old, new }) => {
                let rotated = self.rotate(new.grant_id, old, &new.successor(), None, false);
                (new.grant_id, new.successor(), rotated)
            }
            Op::Refresh(RefreshOp::RetryRotation { successor, new, .. }) => {
                let rotated = self.rotate(new.grant_id, successor, &new.successor(), None, true);
                (new.grant_id, new.successor(), rotated)
            }
            Op::Refresh(RefreshOp::RefreshPublic {
                hash,
                client_id,
                new,
            }) => {
                let Some(grant_id) = self.legacy_grant(&hash) else {
                    return;
                };
                let rotated = self.refresh_public_legacy(grant_id, hash, &client_id, &new);
                (grant_id, new, rotated)
            }
        };
        if rotated {
            self.insert(crate::Record::LegacyRefresh {
                hash: new.hash,
                grant_id,
                expires_at: new.expires_at,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oauth_proto::client::{AuthMethod, ClientKind, ClientRecord, GrantType};
    use oauth_proto::scope::Scope;
    use oauth_proto::store::{Effect, GrantRecord, RefreshKey, Reply};

    fn grant(byte: u8) -> GrantRecord {
        GrantRecord {
            grant_id: GrantId([byte; 16]),
            client_id: "c".into(),
            subject: "u".into(),
            scope: Scope::parse("mail").expect("scope"),
            credential_version: 0,
            created_at: 0,
            expires_at: 9000,
            revoked_at: None,
            resources: Vec::new(),
            auth_time: None,
            amr: Vec::new(),
            sid: None,
        }
    }

    fn token(name: &str, grant: u8, issued_at: u64, state: RefreshState) -> RefreshRecord {
        RefreshRecord {
            hash: SecretHash::of(name),
            grant_id: GrantId([grant; 16]),
            issued_at,
            expires_at: issued_at + 1000,
            state,
        }
    }

    fn into(at: u64, name: &str) -> RefreshState {
        RefreshState::Rotated {
            at,
            successor: Some(SecretHash::of(name)),
        }
    }

    fn family(state: &MemoryState, name: &str) -> Option<RefreshFamily> {
        let key = RefreshKey::Legacy(SecretHash::of(name));
        match state.query(&oauth_proto::store::Op::GetRefresh { key }) {
            Reply::Refresh(found) => found.map(|f| f.family),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_chain_of_tokens_becomes_its_active_one_with_the_last_rotation_in_any_order() {
        let tokens = vec![
            token("t0", 1, 0, into(10, "t1")),
            token("t2", 1, 20, RefreshState::Active),
            token("t1", 1, 10, into(20, "t2")),
            // Stored before successors were recorded: a lookup, never a predecessor.
            token(
                "t-old",
                1,
                0,
                RefreshState::Rotated {
                    at: 5,
                    successor: None,
                },
            ),
            // A grant whose tokens are all rotated (its active one expired and was purged).
            token("u0", 2, 0, into(10, "u1")),
        ];
        let expected = RefreshFamily {
            grant_id: GrantId([1; 16]),
            family: None,
            current: SecretHash::of("t2"),
            issued_at: 20,
            expires_at: 1020,
            previous: Some(Rotated {
                hash: SecretHash::of("t1"),
                at: 20,
            }),
        };
        for order in [tokens.clone(), tokens.iter().rev().cloned().collect()] {
            let records = convert_refresh(order);
            let mut state = MemoryState::default();
            state.apply(Effect::PutGrant(grant(1)));
            state.apply(Effect::PutGrant(grant(2)));
            records.into_iter().for_each(|r| state.insert(r));
            for name in ["t0", "t1", "t2", "t-old"] {
                assert_eq!(family(&state, name), Some(expected.clone()), "{name}");
            }
            assert_eq!(family(&state, "u0"), None, "no active token, no family");
            assert_eq!(state.len(), 2 + 5 + 1, "grants, lookups, one family");
        }
    }

    #[test]
    fn records_round_trip_and_other_names_read_as_the_current_types() {
        let records = vec![
            Record::Current(crate::Record::Grant(grant(1))),
            Record::Refresh(token("t", 1, 0, RefreshState::Active)),
        ];
        let json = serde_json::to_string(&records).expect("serialize");
        assert!(json.contains(r#"{"Refresh":{"hash":"#), "{json}");
        let back: Vec<Record> = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, records);
        assert!(serde_json::from_str::<Record>(r#"{"RefreshFamily":{}}"#).is_err());
        let op = Op::Refresh(RefreshOp::RotateRefresh {
            old: SecretHash::of("t"),
            new: token("t2", 1, 5, RefreshState::Active),
        });
        let json = serde_json::to_string(&op).expect("serialize");
        assert_eq!(serde_json::from_str::<Op>(&json).expect("deserialize"), op);
        let take = Op::Current(oauth_proto::store::Op::TakeCode {
            hash: SecretHash::of("code"),
        });
        let json = serde_json::to_string(&take).expect("serialize");
        assert_eq!(
            serde_json::from_str::<Op>(&json).expect("deserialize"),
            take
        );
        let put = Change::PutRefresh(token("t", 1, 0, RefreshState::Active));
        let json = serde_json::to_string(&put).expect("serialize");
        assert_eq!(
            serde_json::from_str::<Change>(&json).expect("deserialize"),
            put
        );
    }

    #[test]
    fn journal_ops_replay_as_family_rotations() {
        let mut state = MemoryState::default();
        state.apply(Effect::PutClient(ClientRecord {
            client_id: "c".into(),
            name: "app".into(),
            kind: ClientKind::Public,
            secret_hash: None,
            secret_expires_at: None,
            auth_method: AuthMethod::None,
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scope: Scope::parse("mail").expect("scope"),
            require_pkce: true,
            resource_server: false,
            registration_token_hash: None,
            created_at: 0,
            metadata: serde_json::Map::new(),
            unused_expires_at: None,
            access_token_format: Default::default(),
        }));
        state.apply(Effect::PutGrant(grant(1)));
        state.apply_v1(Change::PutRefresh(token("t0", 1, 0, RefreshState::Active)));
        // A second active token of the grant does not replace its family.
        state.apply_v1(Change::PutRefresh(token("x", 1, 1, RefreshState::Active)));
        state.execute_v1(Op::Refresh(RefreshOp::RotateRefresh {
            old: SecretHash::of("t0"),
            new: token("t1", 1, 10, RefreshState::Active),
        }));
        state.execute_v1(Op::Refresh(RefreshOp::RetryRotation {
            old: SecretHash::of("t0"),
            successor: SecretHash::of("t1"),
            new: token("t1b", 1, 15, RefreshState::Active),
        }));
        state.execute_v1(Op::Refresh(RefreshOp::RefreshPublic {
            hash: SecretHash::of("t1b"),
            client_id: "c".into(),
            new: Successor {
                hash: SecretHash::of("t2"),
                issued_at: 30,
                expires_at: 1030,
            },
        }));
        // A stale rotation changes nothing and adds no lookup.
        state.execute_v1(Op::Refresh(RefreshOp::RotateRefresh {
            old: SecretHash::of("t0"),
            new: token("stale", 1, 40, RefreshState::Active),
        }));
        let expected = RefreshFamily {
            grant_id: GrantId([1; 16]),
            family: None,
            current: SecretHash::of("t2"),
            issued_at: 30,
            expires_at: 1030,
            previous: Some(Rotated {
                hash: SecretHash::of("t1b"),
                at: 30,
            }),
        };
        for name in ["t0", "x", "t1", "t1b", "t2"] {
            assert_eq!(family(&state, name), Some(expected.clone()), "{name}");
        }
        assert_eq!(family(&state, "stale"), None);
    }
}
