//! The stored form of a store's state: [`Record`] and [`Change`], a versioned contract.
//!
//! A [`MemoryState`](crate::MemoryState) is exactly a set of [`Record`]s, and every change to it
//! is a [`Change`] (an engine effect or a user change), so these two types are what a persistent
//! store built on `MemoryState` writes down: the file store's snapshots list records and its
//! journal lists changes (with the mutating ops and purges). They are part of this crate's public
//! contract, not an internal of `MemoryState`, and they are versioned by [`RECORD_VERSION`], which
//! the file store records in every file header.
//!
//! Compatibility rules, for anyone changing them (or the `oauth_proto::store` and
//! `oauth_directory` records they hold):
//! - New fields go at the end with `#[serde(default)]`, new variants anywhere (variants are
//!   written by name); files of the same version still read. The file store writes structs as
//!   arrays, so only the last field may be left out when empty (`skip_serializing_if`): a field
//!   left out before another would shift the next one into its place.
//! - Anything else (renaming or removing a variant or field, changing a field's type or meaning)
//!   needs a new [`RECORD_VERSION`], and the file store reading files of the old version must
//!   convert them or refuse them with a clear error.
//! - A record or change moved between contracts keeps its variant name: the user writes moved from
//!   the engine's `Effect` to `oauth_directory::UserChange` under the names `PutUser` and
//!   `DeleteUser`, and [`Change`] is written without a wrapper of its own, so journals written
//!   when they were effects read unchanged.

use serde::de::{self, Deserializer, EnumAccess, IntoDeserializer, VariantAccess, Visitor};
use serde::{Deserialize, Serialize};

use oauth_directory::{UserChange, UserRecord};
use oauth_proto::client::ClientRecord;
use oauth_proto::secret::SecretHash;
use oauth_proto::store::{
    CodeRecord, ConsentRecord, DeviceRecord, Effect, GrantId, GrantRecord, RefreshFamily,
    SubjectRecord,
};

/// The version of [`Record`] and [`Change`] this build writes. It also reads version 1 (the
/// `v1` module converts it): version 2 replaced the record per refresh token (`Refresh`) by one
/// [`RefreshFamily`] per grant and a lookup of the tokens issued before families
/// ([`Record::LegacyRefresh`]).
pub const RECORD_VERSION: u32 = 2;

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
    /// A grant's refresh tokens.
    RefreshFamily(RefreshFamily),
    /// A refresh token issued before families (record version 1), known by its hash alone: which
    /// grant's family it finds ([`RefreshKey::Legacy`](oauth_proto::store::RefreshKey::Legacy)),
    /// until it expires.
    LegacyRefresh {
        /// SHA-256 of the token.
        hash: SecretHash,
        /// Its grant.
        grant_id: GrantId,
        /// When the token expires; the entry goes then.
        expires_at: u64,
    },
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
    /// A user of the reference server's directory.
    User(UserRecord),
    /// A remembered consent.
    Consent(ConsentRecord),
}

/// One write to a state: an engine effect or a user change.
///
/// Serialized as the effect or the user change itself (the variant of `Effect` or `UserChange`,
/// by name), without a wrapper: the two enums' variant names are disjoint, and the name says which
/// one an entry is. So a list of changes reads like the lists of effects journaled before the user
/// writes left the engine's contract.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// An effect of the engine's contract (boxed: an authorization code's effect is several
    /// times the size of a user change).
    Engine(Box<Effect>),
    /// A change to the reference server's users.
    User(UserChange),
}

/// The variant names of [`UserChange`]; every other name is an [`Effect`].
const USER_VARIANTS: &[&str] = &["PutUser", "DeleteUser"];

impl Serialize for Change {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Change::Engine(effect) => effect.serialize(serializer),
            Change::User(change) => change.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Change {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_enum("Change", &[], ChangeVisitor)
    }
}

/// Reads the variant name, then hands the rest to `Effect`'s or `UserChange`'s own `Deserialize`.
struct ChangeVisitor;

impl<'de> Visitor<'de> for ChangeVisitor {
    type Value = Change;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an engine effect or a user change")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Change, A::Error> {
        let (name, variant): (String, A::Variant) = data.variant()?;
        let named = Named { name, variant };
        if USER_VARIANTS.contains(&named.name.as_str()) {
            UserChange::deserialize(named).map(Change::User)
        } else {
            Effect::deserialize(named).map(|e| Change::Engine(Box::new(e)))
        }
    }
}

/// An enum whose variant name was already read: a deserializer that presents it again, followed
/// by the variant's content still in the input. (The `v1` module reads its records this way too:
/// by name, the old refresh variants, and every other name as the current type.)
pub(crate) struct Named<V> {
    pub(crate) name: String,
    pub(crate) variant: V,
}

impl<'de, A: VariantAccess<'de>> Deserializer<'de> for Named<A> {
    type Error = A::Error;

    fn deserialize_any<W: Visitor<'de>>(self, visitor: W) -> Result<W::Value, A::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

impl<'de, V: VariantAccess<'de>> EnumAccess<'de> for Named<V> {
    type Error = V::Error;
    type Variant = V;

    fn variant_seed<S: de::DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, V), V::Error> {
        let name = seed.deserialize(self.name.into_deserializer())?;
        Ok((name, self.variant))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_variant_names_are_the_user_changes_and_no_effects() {
        // Serialized through serde_json's externally tagged form, the variant name is the key.
        let name = |v: serde_json::Value| match v {
            serde_json::Value::Object(m) => m.keys().next().cloned().expect("a variant"),
            serde_json::Value::String(s) => s,
            other => panic!("{other}"),
        };
        let put = UserChange::PutUser(UserRecord {
            username: "u".into(),
            password_hash: "h".into(),
            created_at: 1,
            email: None,
            name: None,
        });
        let delete = UserChange::DeleteUser {
            username: "u".into(),
        };
        let names: Vec<String> = [put, delete]
            .into_iter()
            .map(|c| name(serde_json::to_value(c).expect("serialize")))
            .collect();
        assert_eq!(names, USER_VARIANTS);
        let effect = Effect::ResetCounter { key: "k".into() };
        let effect_name = name(serde_json::to_value(&effect).expect("serialize"));
        assert!(!USER_VARIANTS.contains(&effect_name.as_str()));
    }

    #[test]
    fn changes_round_trip_as_their_inner_value() {
        let changes = vec![
            Change::User(UserChange::DeleteUser {
                username: "gone".into(),
            }),
            Change::Engine(Box::new(Effect::ResetCounter { key: "k".into() })),
        ];
        let json = serde_json::to_string(&changes).expect("serialize");
        assert_eq!(
            json,
            r#"[{"DeleteUser":{"username":"gone"}},{"ResetCounter":{"key":"k"}}]"#
        );
        let back: Vec<Change> = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, changes);
        let unknown = serde_json::from_str::<Change>(r#"{"NoSuchChange":{}}"#);
        assert!(unknown.is_err());
    }
}
