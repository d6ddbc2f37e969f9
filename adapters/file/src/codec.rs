//! What goes inside a frame: length-prefixed MessagePack entries.
//!
//! A frame payload is a sequence of entries, each a u32 LE length and that many bytes of
//! MessagePack. The frame's checksum covers them all, so entries carry no checksum of their own.
//!
//! Why MessagePack (`rmp-serde`): client records carry `serde_json::Value` metadata, whose
//! `Deserialize` needs a self-describing format; postcard and bincode cannot decode it. MessagePack
//! is self-describing yet compact, and it is fast enough that replay stays well under a microsecond
//! per record. Structs are written as arrays (field order matters) and enum variants by name.
//! Fixed-size byte arrays (the 32-byte secret hashes, 16-byte grant ids) are written as MessagePack
//! binary (`BytesMode::ForceAll`) instead of arrays of integers: a third smaller, and decoded in
//! one copy rather than 32 integer parses. No record holds a `Vec<u8>`, the one type that mode would
//! not read back; the store contract's round trips (JSON metadata included) check that.
//! What the entries hold (`oauth_store_memory::Record` in snapshots, `oauth_store_memory::Change`
//! lists and ops in journals) is versioned by `oauth_store_memory::RECORD_VERSION`, which every
//! file header records; the compatibility rules are in that crate's `record` module. The framing
//! here and in `format` is versioned by [`format::VERSION`](crate::format::VERSION).
//!
//! The journal records the *inputs* (mutating ops, effect lists, purges), not their results:
//! `MemoryState` is deterministic, so replaying the inputs in order rebuilds the same state.

use rmp_serde::config::BytesMode;
use serde::{Deserialize, Serialize};

use oauth_directory::UserChange;
use oauth_proto::store::{Effect, Op};
use oauth_store_memory::{v1, Change, Record};

use crate::error::FileStoreError;

/// A journal entry, borrowed for writing.
#[derive(Serialize)]
pub(crate) enum EntryRef<'a> {
    /// A mutating op that changed the state.
    Op(&'a Op),
    /// One `apply` (or `Directory::change`) call: its changes are replayed together, and a crash
    /// keeps all or none of them.
    Effects(Changes<'a>),
    /// A purge step that removed something.
    Purge {
        /// Its time argument.
        now: u64,
        /// The shard it purged (`MemoryState::purge_shard`), one of the journal header's shard
        /// count.
        shard: Option<u32>,
    },
}

/// A journal entry, owned for replay. Same shape as [`EntryRef`]. Entries live one at a time
/// during replay, so the size of the `Op` variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Deserialize)]
pub(crate) enum Entry {
    /// See [`EntryRef::Op`].
    Op(Op),
    /// See [`EntryRef::Effects`].
    Effects(Vec<Change>),
    /// An op of a journal of record version 1 ([`V1Entry`]), converted as it is replayed.
    #[serde(skip_deserializing)]
    OpV1(v1::Op),
    /// An `apply` call of a journal of record version 1, converted as it is replayed.
    #[serde(skip_deserializing)]
    EffectsV1(Vec<v1::Change>),
    /// See [`EntryRef::Purge`].
    Purge {
        /// Its time argument.
        now: u64,
        /// The shard it purged; `None` (journals written before purges went shard by shard): all.
        #[serde(default)]
        shard: Option<u32>,
        /// How many shards `shard` is one of. Not in the entry: recovery fills it in from the
        /// journal's header (`format::Header::shards`), which the writer's build recorded.
        #[serde(skip)]
        of: u32,
    },
}

/// A journal entry of record version 1 (`oauth_store_memory::v1`), as it is decoded; replayed
/// as the [`Entry`] it becomes ([`V1Entry::into_entry`]).
// Decoded one at a time and consumed at once: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Deserialize)]
pub(crate) enum V1Entry {
    /// See [`EntryRef::Op`].
    Op(v1::Op),
    /// See [`EntryRef::Effects`].
    Effects(Vec<v1::Change>),
    /// See [`Entry::Purge`].
    Purge {
        now: u64,
        #[serde(default)]
        shard: Option<u32>,
    },
}

impl V1Entry {
    /// The entry to replay.
    pub(crate) fn into_entry(self) -> Entry {
        match self {
            V1Entry::Op(op) => Entry::OpV1(op),
            V1Entry::Effects(changes) => Entry::EffectsV1(changes),
            V1Entry::Purge { now, shard } => Entry::Purge { now, shard, of: 0 },
        }
    }
}

/// Decodes a journal entry of record version `record_version` (1 or this build's).
pub(crate) fn decode_entry(bytes: &[u8], record_version: u32) -> Result<Entry, String> {
    if record_version == 1 {
        decode::<V1Entry>(bytes).map(V1Entry::into_entry)
    } else {
        decode::<Entry>(bytes)
    }
}

/// One call's changes, borrowed for writing: its user changes, then its engine effects. Written
/// as one list of [`Change`]s, each as its inner value (so an `apply` of effects alone is written
/// as it always was).
#[derive(Clone, Copy)]
pub(crate) struct Changes<'a> {
    /// The user changes, applied first.
    pub users: &'a [UserChange],
    /// The engine effects, applied after them.
    pub effects: &'a [Effect],
}

#[cfg(test)]
impl<'a> Changes<'a> {
    /// Engine effects alone.
    pub(crate) fn effects(effects: &'a [Effect]) -> Self {
        Changes {
            users: &[],
            effects,
        }
    }
}

impl Serialize for Changes<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.users.len() + self.effects.len()))?;
        for change in self.users {
            seq.serialize_element(change)?;
        }
        for effect in self.effects {
            seq.serialize_element(effect)?;
        }
        seq.end()
    }
}

/// One item of a snapshot, borrowed for writing.
#[derive(Serialize)]
pub(crate) enum SnapshotItemRef<'a> {
    /// A record of the state.
    Record(&'a Record),
    /// The last item: how many records came before it (a snapshot without it is incomplete).
    End {
        /// Number of records.
        records: u64,
    },
}

/// One item of a snapshot, owned for loading. (Decoded one at a time and consumed at once, so the
/// size difference between its variants costs nothing.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Deserialize)]
pub(crate) enum SnapshotItem {
    /// See [`SnapshotItemRef::Record`].
    Record(Record),
    /// See [`SnapshotItemRef::End`].
    End {
        /// Number of records.
        records: u64,
    },
}

/// One item of a snapshot of record version 1 (`oauth_store_memory::v1`), owned for loading.
// Decoded one at a time and consumed at once: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Deserialize)]
pub(crate) enum V1SnapshotItem {
    /// See [`SnapshotItem::Record`].
    Record(v1::Record),
    /// See [`SnapshotItem::End`].
    End {
        /// Number of records.
        records: u64,
    },
}

/// Appends `value` to `out` as one length-prefixed entry, refusing entries over `limit` bytes.
pub(crate) fn append<T: Serialize>(
    out: &mut Vec<u8>,
    value: &T,
    limit: usize,
) -> Result<(), FileStoreError> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    let mut ser = rmp_serde::Serializer::new(&mut *out).with_bytes(BytesMode::ForceAll);
    if let Err(e) = value.serialize(&mut ser) {
        out.truncate(start);
        return Err(FileStoreError::Encode(e.to_string()));
    }
    let len = out.len() - start - 4;
    if len > limit {
        out.truncate(start);
        return Err(FileStoreError::TooLarge { bytes: len, limit });
    }
    out[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(())
}

/// Decodes one entry's bytes.
pub(crate) fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
    rmp_serde::from_slice(bytes).map_err(|e| e.to_string())
}

/// Splits a frame payload into its entries, each with its offset within the payload.
pub(crate) fn entries(payload: &[u8]) -> Entries<'_> {
    Entries { payload, pos: 0 }
}

/// Iterator over the entries of a payload; yields an error (and stops) on a bad length prefix.
pub(crate) struct Entries<'a> {
    payload: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<(usize, &'a [u8]), usize>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = &self.payload[self.pos..];
        if rest.is_empty() {
            return None;
        }
        let at = self.pos;
        let entry = rest
            .get(..4)
            .map(|l| u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize)
            .and_then(|len| rest.get(4..len.checked_add(4)?));
        match entry {
            Some(bytes) => {
                self.pos += 4 + bytes.len();
                Some(Ok((at, bytes)))
            }
            None => {
                self.pos = self.payload.len();
                Some(Err(at))
            }
        }
    }
}

/// Splits a buffer of length-prefixed entries (as [`append`] writes them) into runs of at most
/// `max` bytes, cutting only between entries. A single entry longer than `max` forms its own run.
pub(crate) fn split_runs(buf: &[u8], max: usize) -> Vec<&[u8]> {
    let mut runs = Vec::new();
    let (mut start, mut pos) = (0, 0);
    while pos + 4 <= buf.len() {
        let len = u32::from_le_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]]) as usize;
        let end = pos.saturating_add(4).saturating_add(len).min(buf.len());
        if end - start > max && pos > start {
            runs.push(&buf[start..pos]);
            start = pos;
        }
        pos = end;
    }
    if start < buf.len() {
        runs.push(&buf[start..]);
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use oauth_proto::secret::SecretHash;

    fn engine(effects: &[Effect]) -> Vec<Change> {
        effects
            .iter()
            .map(|e| Change::Engine(Box::new(e.clone())))
            .collect()
    }

    #[test]
    fn entries_round_trip_and_split() {
        let mut buf = Vec::new();
        let ops: Vec<Op> = (0..10)
            .map(|i| Op::TakeCode {
                hash: SecretHash::of(&format!("code {i}")),
            })
            .collect();
        for op in &ops {
            append(&mut buf, &EntryRef::Op(op), 1 << 20).unwrap();
        }
        let decoded: Vec<Op> = entries(&buf)
            .map(|e| match decode::<Entry>(e.unwrap().1).unwrap() {
                Entry::Op(op) => op,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(decoded, ops);

        let runs = split_runs(&buf, 100);
        assert!(runs.len() > 1);
        assert_eq!(runs.concat(), buf);
        assert_eq!(runs.iter().map(|r| entries(r).count()).sum::<usize>(), 10);
    }

    #[test]
    fn clients_with_json_metadata_round_trip() {
        // Client metadata is arbitrary JSON: byte-sized integer arrays must stay arrays of numbers
        // even though fixed byte arrays are written as binary.
        let metadata = serde_json::json!({
            "small_ints": [0, 1, 127, 128, 255],
            "mixed": [-1, 256, 1.5, null, true, "s", [], {}],
            "nested": {"deep": {"x": [3, 2, 1]}},
            "unicode": "é 日本 🦀",
            "big": u64::MAX,
            "neg": i64::MIN,
        });
        let client = oauth_proto::client::ClientRecord {
            client_id: "c".into(),
            name: "n".into(),
            kind: oauth_proto::client::ClientKind::Public,
            secret_hash: Some(SecretHash::of("s")),
            secret_expires_at: Some(7),
            auth_method: oauth_proto::client::AuthMethod::None,
            redirect_uris: vec!["https://a.example/cb".into()],
            grant_types: vec![oauth_proto::client::GrantType::DeviceCode],
            scope: oauth_proto::scope::Scope::parse("a b").unwrap(),
            require_pkce: true,
            resource_server: false,
            registration_token_hash: None,
            created_at: 1,
            metadata: metadata.as_object().unwrap().clone(),
            unused_expires_at: Some(86_400),
            access_token_format: Default::default(),
        };
        let effects = vec![Effect::PutClient(client)];
        let mut buf = Vec::new();
        append(
            &mut buf,
            &EntryRef::Effects(Changes::effects(&effects)),
            1 << 20,
        )
        .unwrap();
        let (_, bytes) = entries(&buf).next().unwrap().unwrap();
        match decode::<Entry>(bytes).unwrap() {
            Entry::Effects(back) => assert_eq!(back, engine(&effects)),
            other => panic!("{other:?}"),
        }
        let record = Record::Client(match &effects[0] {
            Effect::PutClient(c) => c.clone(),
            _ => unreachable!(),
        });
        let mut buf = Vec::new();
        append(&mut buf, &SnapshotItemRef::Record(&record), 1 << 20).unwrap();
        let (_, bytes) = entries(&buf).next().unwrap().unwrap();
        match decode::<SnapshotItem>(bytes).unwrap() {
            SnapshotItem::Record(back) => assert_eq!(back, record),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hashes_are_written_as_binary() {
        let mut buf = Vec::new();
        let op = Op::TakeCode {
            hash: SecretHash([0xff; 32]),
        };
        append(&mut buf, &EntryRef::Op(&op), 1 << 20).unwrap();
        // 4-byte length, then a few bytes of enum framing, then bin8 (0xc4, 32) and the hash.
        assert!(buf.len() < 4 + 16 + 34, "{} bytes", buf.len());
        assert!(buf.windows(2).any(|w| w == [0xc4, 32]));
    }

    #[test]
    fn oversized_entries_are_refused_and_leave_no_trace() {
        let mut buf = vec![1, 2, 3];
        let big = Op::Count {
            key: "x".repeat(1000),
            now: 0,
            expires_at: 1,
        };
        let err = append(&mut buf, &EntryRef::Op(&big), 100).unwrap_err();
        assert!(matches!(err, FileStoreError::TooLarge { limit: 100, .. }));
        assert_eq!(buf, vec![1, 2, 3]);
    }

    #[test]
    fn purges_journaled_before_shards_read_as_whole_purges() {
        // The entry as it was written before purges went shard by shard: the variant with `now`
        // alone.
        #[derive(Serialize)]
        enum Old {
            Purge { now: u64 },
        }
        let mut buf = Vec::new();
        append(&mut buf, &Old::Purge { now: 9 }, 100).unwrap();
        append(
            &mut buf,
            &EntryRef::Purge {
                now: 10,
                shard: Some(63),
            },
            100,
        )
        .unwrap();
        let decoded: Vec<Entry> = entries(&buf)
            .map(|e| decode(e.unwrap().1).unwrap())
            .collect();
        assert!(matches!(
            decoded[..],
            [
                Entry::Purge {
                    now: 9,
                    shard: None,
                    ..
                },
                Entry::Purge {
                    now: 10,
                    shard: Some(63),
                    ..
                }
            ]
        ));
    }

    #[test]
    fn rotated_refresh_tokens_stored_before_successors_were_recorded_read_as_having_none() {
        use oauth_proto::store::GrantId;
        use oauth_store_memory::v1::{RefreshRecord, RefreshState};
        // The record as it was written before `RefreshState::Rotated` had a successor.
        #[derive(Serialize)]
        enum OldState {
            Rotated { at: u64 },
        }
        #[derive(Serialize)]
        struct OldRecord {
            hash: SecretHash,
            grant_id: GrantId,
            issued_at: u64,
            expires_at: u64,
            state: OldState,
        }
        let old = OldRecord {
            hash: SecretHash::of("rt"),
            grant_id: GrantId([7; 16]),
            issued_at: 1,
            expires_at: 2,
            state: OldState::Rotated { at: 3 },
        };
        let mut buf = Vec::new();
        append(&mut buf, &old, 1000).unwrap();
        let (_, bytes) = entries(&buf).next().unwrap().unwrap();
        let record: RefreshRecord = decode(bytes).unwrap();
        assert_eq!(
            record.state,
            RefreshState::Rotated {
                at: 3,
                successor: None
            }
        );
        assert_eq!(record.hash, SecretHash::of("rt"));
    }

    #[test]
    fn records_stored_before_resource_indicators_read_as_naming_no_resource() {
        use oauth_proto::scope::Scope;
        use oauth_proto::store::{CodeRecord, GrantId, GrantRecord};
        // The records as they were written before their `resources` field (RFC 8707).
        #[derive(Serialize)]
        struct OldGrant {
            grant_id: GrantId,
            client_id: String,
            subject: String,
            scope: Scope,
            credential_version: u32,
            created_at: u64,
            expires_at: u64,
            revoked_at: Option<u64>,
        }
        #[derive(Serialize)]
        struct OldCode {
            hash: SecretHash,
            grant_id: GrantId,
            client_id: String,
            subject: String,
            scope: Scope,
            redirect_uri: String,
            redirect_uri_sent: bool,
            challenge: Option<oauth_proto::store::PkceChallenge>,
            credential_version: u32,
            issued_at: u64,
            expires_at: u64,
        }
        fn one<T: Serialize>(value: &T) -> Vec<u8> {
            let mut buf = Vec::new();
            append(&mut buf, value, 1000).unwrap();
            let (_, bytes) = entries(&buf).next().unwrap().unwrap();
            bytes.to_vec()
        }
        let grant: GrantRecord = decode(&one(&OldGrant {
            grant_id: GrantId([1; 16]),
            client_id: "c".into(),
            subject: "u".into(),
            scope: Scope::parse("mail").unwrap(),
            credential_version: 2,
            created_at: 3,
            expires_at: 4,
            revoked_at: None,
        }))
        .unwrap();
        assert!(grant.resources.is_empty());
        assert_eq!((grant.credential_version, grant.expires_at), (2, 4));
        let code: CodeRecord = decode(&one(&OldCode {
            hash: SecretHash::of("code"),
            grant_id: GrantId([1; 16]),
            client_id: "c".into(),
            subject: "u".into(),
            scope: Scope::parse("mail").unwrap(),
            redirect_uri: "http://127.0.0.1/cb".into(),
            redirect_uri_sent: true,
            challenge: None,
            credential_version: 0,
            issued_at: 5,
            expires_at: 6,
        }))
        .unwrap();
        assert!(code.resources.is_empty());
        assert_eq!(code.expires_at, 6);
        // Nor a nonce or an authentication time (OpenID Connect), added after them.
        assert_eq!((code.nonce.as_deref(), code.auth_time), (None, None));
        assert_eq!(grant.auth_time, None);
        // Nor how or in which session the user signed in (ID token `amr`, `sid`), added last.
        assert_eq!((code.amr.len(), code.sid.as_deref()), (0, None));
        assert_eq!((grant.amr.len(), grant.sid.as_deref()), (0, None));
        // A device approval written before its `auth_time`.
        #[derive(Serialize)]
        enum OldStatus {
            Approved {
                subject: String,
                credential_version: u32,
                grant_id: GrantId,
            },
        }
        let status: oauth_proto::store::DeviceStatus = decode(&one(&OldStatus::Approved {
            subject: "u".into(),
            credential_version: 3,
            grant_id: GrantId([2; 16]),
        }))
        .unwrap();
        assert_eq!(
            status,
            oauth_proto::store::DeviceStatus::Approved {
                subject: "u".into(),
                credential_version: 3,
                grant_id: GrantId([2; 16]),
                auth_time: None,
                amr: Vec::new(),
            }
        );
        // And a record naming resources keeps them.
        let bound = GrantRecord {
            resources: vec![
                "imap://mail.example.com".into(),
                "smtp://mail.example.com".into(),
            ],
            amr: vec!["pwd".into()],
            sid: Some("s1".into()),
            ..grant
        };
        assert_eq!(decode::<GrantRecord>(&one(&bound)).unwrap(), bound);
    }

    #[test]
    fn marking_a_client_used_round_trips() {
        let effects = vec![Effect::MarkClientUsed {
            client_id: "c".into(),
        }];
        let mut buf = Vec::new();
        append(
            &mut buf,
            &EntryRef::Effects(Changes::effects(&effects)),
            1000,
        )
        .unwrap();
        let (_, bytes) = entries(&buf).next().unwrap().unwrap();
        match decode::<Entry>(bytes).unwrap() {
            Entry::Effects(back) => assert_eq!(back, engine(&effects)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn clients_stored_before_unused_expiry_existed_read_as_never_expiring() {
        use oauth_proto::client::{AuthMethod, ClientKind, ClientRecord, GrantType};
        use oauth_proto::scope::Scope;
        // The record as it was written before `ClientRecord::unused_expires_at`.
        #[derive(Serialize)]
        struct OldClient {
            client_id: String,
            name: String,
            kind: ClientKind,
            secret_hash: Option<SecretHash>,
            secret_expires_at: Option<u64>,
            auth_method: AuthMethod,
            redirect_uris: Vec<String>,
            grant_types: Vec<GrantType>,
            scope: Scope,
            require_pkce: bool,
            resource_server: bool,
            registration_token_hash: Option<SecretHash>,
            created_at: u64,
            metadata: serde_json::Map<String, serde_json::Value>,
        }
        #[derive(Serialize)]
        enum OldRecord {
            Client(OldClient),
        }
        #[derive(Serialize)]
        enum OldItem {
            Record(OldRecord),
        }
        let old = OldClient {
            client_id: "old".into(),
            name: "Old app".into(),
            kind: ClientKind::Public,
            secret_hash: None,
            secret_expires_at: None,
            auth_method: AuthMethod::None,
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
            grant_types: vec![GrantType::AuthorizationCode],
            scope: Scope::parse("mail").unwrap(),
            require_pkce: false,
            resource_server: false,
            registration_token_hash: Some(SecretHash::of("rat")),
            created_at: 5,
            metadata: serde_json::json!({"client_name": "Old app"})
                .as_object()
                .unwrap()
                .clone(),
        };
        let mut buf = Vec::new();
        append(&mut buf, &OldItem::Record(OldRecord::Client(old)), 1000).unwrap();
        let (_, bytes) = entries(&buf).next().unwrap().unwrap();
        let SnapshotItem::Record(Record::Client(client)) = decode::<SnapshotItem>(bytes).unwrap()
        else {
            panic!("not a client record");
        };
        let expected = ClientRecord {
            client_id: "old".into(),
            name: "Old app".into(),
            kind: ClientKind::Public,
            secret_hash: None,
            secret_expires_at: None,
            auth_method: AuthMethod::None,
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
            grant_types: vec![GrantType::AuthorizationCode],
            scope: Scope::parse("mail").unwrap(),
            require_pkce: false,
            resource_server: false,
            registration_token_hash: Some(SecretHash::of("rat")),
            created_at: 5,
            metadata: serde_json::json!({"client_name": "Old app"})
                .as_object()
                .unwrap()
                .clone(),
            unused_expires_at: None,
            access_token_format: Default::default(),
        };
        assert_eq!(client, expected);
    }

    #[test]
    fn user_writes_journaled_as_engine_effects_read_as_user_changes() {
        use oauth_directory::UserRecord;
        // As `oauth-server user passwd` journaled it while users were part of the engine's
        // contract: one `Effects` entry holding `Effect::PutUser` and the subject's revocation,
        // and one holding `Effect::DeleteUser`.
        #[derive(Serialize)]
        struct OldUser {
            username: String,
            password_hash: String,
            created_at: u64,
        }
        #[derive(Serialize)]
        enum OldEffect {
            PutUser(OldUser),
            RevokeSubject {
                subject: String,
                at: u64,
                keep_until: u64,
            },
            DeleteUser {
                username: String,
            },
        }
        #[derive(Serialize)]
        enum OldEntry {
            Effects(Vec<OldEffect>),
        }
        #[derive(Serialize)]
        enum OldRecord {
            User(OldUser),
        }
        #[derive(Serialize)]
        enum OldItem {
            Record(OldRecord),
        }
        let old_user = || OldUser {
            username: "alice".into(),
            password_hash: "$argon2id$old".into(),
            created_at: 5,
        };
        let mut buf = Vec::new();
        let passwd = OldEntry::Effects(vec![
            OldEffect::PutUser(old_user()),
            OldEffect::RevokeSubject {
                subject: "alice".into(),
                at: 10,
                keep_until: 20,
            },
        ]);
        append(&mut buf, &passwd, 1000).unwrap();
        let delete = OldEntry::Effects(vec![OldEffect::DeleteUser {
            username: "alice".into(),
        }]);
        append(&mut buf, &delete, 1000).unwrap();
        append(
            &mut buf,
            &OldItem::Record(OldRecord::User(old_user())),
            1000,
        )
        .unwrap();
        let mut items = entries(&buf).map(|e| e.unwrap().1);
        let user = UserRecord {
            username: "alice".into(),
            password_hash: "$argon2id$old".into(),
            created_at: 5,
            email: None,
            name: None,
        };
        let Entry::Effects(changes) = decode::<Entry>(items.next().unwrap()).unwrap() else {
            panic!("not an effects entry");
        };
        assert_eq!(
            changes,
            [
                Change::User(UserChange::PutUser(user.clone())),
                Change::Engine(Box::new(Effect::RevokeSubject {
                    subject: "alice".into(),
                    at: 10,
                    keep_until: 20,
                })),
            ]
        );
        let Entry::Effects(changes) = decode::<Entry>(items.next().unwrap()).unwrap() else {
            panic!("not an effects entry");
        };
        assert_eq!(
            changes,
            [Change::User(UserChange::DeleteUser {
                username: "alice".into()
            })]
        );
        let SnapshotItem::Record(record) = decode::<SnapshotItem>(items.next().unwrap()).unwrap()
        else {
            panic!("not a record");
        };
        assert_eq!(record, Record::User(user));
    }

    #[test]
    fn a_change_call_is_written_as_the_old_effect_lists_were() {
        use oauth_directory::UserRecord;
        let user = UserRecord {
            username: "bob".into(),
            password_hash: "h".into(),
            created_at: 1,
            email: None,
            name: None,
        };
        let users = [UserChange::PutUser(user.clone())];
        let effects = [Effect::ResetCounter { key: "k".into() }];
        let mut buf = Vec::new();
        append(
            &mut buf,
            &EntryRef::Effects(Changes {
                users: &users,
                effects: &effects,
            }),
            1000,
        )
        .unwrap();
        let (_, bytes) = entries(&buf).next().unwrap().unwrap();
        let Entry::Effects(changes) = decode::<Entry>(bytes).unwrap() else {
            panic!("not an effects entry");
        };
        assert_eq!(
            changes,
            [
                Change::User(UserChange::PutUser(user)),
                Change::Engine(Box::new(Effect::ResetCounter { key: "k".into() }))
            ]
        );
    }

    #[test]
    fn a_bad_length_prefix_is_reported() {
        let mut buf = Vec::new();
        append(
            &mut buf,
            &EntryRef::Purge {
                now: 5,
                shard: Some(7),
            },
            100,
        )
        .unwrap();
        let good = buf.len();
        buf.extend_from_slice(&[200, 0, 0, 0, 1]);
        let items: Vec<_> = entries(&buf).collect();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1], Err(good));
    }
}
