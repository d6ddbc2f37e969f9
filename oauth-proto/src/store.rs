//! The storage contract: records, the reads a driver answers, and the effects it applies.
//!
//! The engine never calls a store. A [`Flow`](crate::flow::Flow) asks for what it needs as an [`Op`]
//! and the driver answers with the matching [`Reply`]; when the flow finishes it hands back
//! [`Effect`]s, which the driver applies before sending the response. Stores therefore hold no OAuth
//! logic, and the same flow runs over a synchronous store ([`Store`]) or an asynchronous one
//! ([`AsyncStore`]).
//!
//! Three kinds of op are atomic read-modify-writes, because OAuth needs them to be:
//! - [`Op::TakeCode`]: a code is handed out once. Of many concurrent takers exactly one gets
//!   [`CodeTake::Taken`]; the rest get [`CodeTake::Used`] (so replays can be detected and punished).
//! - [`Op::RotateRefresh`]: a compare-and-swap on a grant's [`RefreshFamily`], from its current
//!   refresh token to a successor. Of two concurrent refreshes with one token exactly one swaps;
//!   the other learns it lost. [`Op::RefreshPublic`] is the same together with the family's read,
//!   for a public client's refresh in one question.
//! - [`Op::SwapDevice`]: a compare-and-swap on a device authorization's revision.
//!
//! Stores keep codes, tokens and secrets only as [`SecretHash`]es. Every record carries the time after
//! which it is useless, so [`Store::purge`] can drop it and storage stays proportional to live state.
//! That includes clients a stranger registered: a dynamically registered client carries
//! [`ClientRecord::unused_expires_at`] until [`Effect::MarkClientUsed`] says it obtained a token,
//! and a purge at or after that time drops it (clients an administrator added carry none).
//! A remembered consent ([`ConsentRecord`]) is the one record without a time: it is bounded per
//! subject ([`MAX_CONSENTS_PER_SUBJECT`]) and goes when revoked ([`Effect::DeleteConsent`]) or
//! with its client (deleted, or dropped by a purge as unused).
//!
//! The contract holds only what the engine asks and writes. It has no user accounts and no listing
//! of every client: an embedder (a mail server) authenticates its users from its own directory
//! and hands the engine a subject, so it must not have to store anyone else's. The reference
//! server's accounts and its `client list` live in a contract of its own (`oauth_directory`,
//! beside the stores in `adapters/`), which the memory and file stores also implement.
//!
//! Failures are [`StoreError`]s: a [`StoreErrorKind`] a driver can act on, a message for the
//! operator, and the store's own typed error as the [`source`](std::error::Error::source).
//!
//! The [`RevocationView`] is the one read that is *not* an op: validating an access token must not
//! cost a store round trip, so a store keeps the (small) set of revoked grants and bumped credential
//! versions in memory and answers it synchronously.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::client::ClientRecord;
use crate::scope::Scope;
use crate::secret::SecretHash;

/// Identifies one grant: one approval by one subject for one client. All tokens issued from it
/// (by a code, by refreshes, by a device approval) share it, so revoking the grant revokes them all.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GrantId(pub [u8; 16]);

impl GrantId {
    /// Hex form.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for GrantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GrantId({})", self.to_hex())
    }
}

/// A PKCE challenge bound to a code (RFC 7636).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PkceChallenge {
    /// The method recorded at the authorization request.
    pub method: crate::pkce::PkceMethod,
    /// The challenge value.
    pub value: String,
}

/// An authorization code, stored under the hash of the code.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CodeRecord {
    /// SHA-256 of the code.
    pub hash: SecretHash,
    /// The grant the code's tokens will belong to (chosen at issue, so a replay can revoke them).
    pub grant_id: GrantId,
    /// The client the code was issued to.
    pub client_id: String,
    /// The approving subject.
    pub subject: String,
    /// The approved scope.
    pub scope: Scope,
    /// The redirect URI the code was delivered to.
    pub redirect_uri: String,
    /// Whether the authorization request carried `redirect_uri` (then the token request must too).
    pub redirect_uri_sent: bool,
    /// The PKCE challenge, if any.
    pub challenge: Option<PkceChallenge>,
    /// The subject's credential version when it approved.
    pub credential_version: u32,
    /// Issue time (Unix seconds).
    pub issued_at: u64,
    /// Expiry (Unix seconds).
    pub expires_at: u64,
    /// The resources (RFC 8707) the request named, which the tokens' audience must stay within;
    /// empty when it named none. Absent in records stored before resource indicators: empty.
    #[serde(default)]
    pub resources: Vec<String>,
    /// The authorization request's `nonce` (OpenID Connect Core §3.1.2.1), echoed in the ID
    /// token. Absent in records stored before ID tokens: none.
    #[serde(default)]
    pub nonce: Option<String>,
    /// When the approving user authenticated (Unix seconds), the ID token's `auth_time`. Absent
    /// in records stored before ID tokens: unknown, and the ID token then carries none.
    #[serde(default)]
    pub auth_time: Option<u64>,
    /// How the approving user authenticated (RFC 8176 values), the ID token's `amr`. Absent in
    /// records stored before it was carried: unknown (empty), and the ID token carries none.
    #[serde(default)]
    pub amr: Vec<String>,
    /// The browser session the code was approved in, the ID token's `sid` (Back-Channel Logout
    /// §2.1). Absent in older records, and for embedders without sessions: none.
    #[serde(default)]
    pub sid: Option<String>,
}

/// A grant: the durable record behind a family of refresh and access tokens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GrantRecord {
    /// Its identifier.
    pub grant_id: GrantId,
    /// The client it was granted to.
    pub client_id: String,
    /// The subject who granted it.
    pub subject: String,
    /// The consented scope; refreshes may narrow access tokens but never widen this.
    pub scope: Scope,
    /// The subject's credential version at grant time.
    pub credential_version: u32,
    /// When the grant was made.
    pub created_at: u64,
    /// When the last refresh token of the grant expires; the grant is useless after it.
    pub expires_at: u64,
    /// Set when the whole grant was revoked.
    pub revoked_at: Option<u64>,
    /// The resources (RFC 8707) the authorization named, which the tokens' audience must stay within;
    /// empty when it named none. Absent in records stored before resource indicators: empty.
    #[serde(default)]
    pub resources: Vec<String>,
    /// When the user authenticated for this grant (Unix seconds): the `auth_time` of the ID
    /// tokens its refreshes return (OpenID Connect Core §12.2). Absent in records stored before
    /// ID tokens: unknown.
    #[serde(default)]
    pub auth_time: Option<u64>,
    /// How the user authenticated for this grant (RFC 8176 values): the `amr` its refreshes'
    /// ID tokens repeat. Absent in older records: unknown (empty).
    #[serde(default)]
    pub amr: Vec<String>,
    /// The browser session the grant was approved in: the `sid` its refreshes' ID tokens repeat.
    /// Absent in older records and for grants from no session (device flow): none.
    #[serde(default)]
    pub sid: Option<String>,
}

/// The refresh tokens of one grant: one active token at a time, each rotation replacing it.
///
/// A refresh token names its grant and carries the grant's *family secret*, a random value every
/// token of the grant repeats (the engine's `issue` module has the format). So a store finds a
/// presented token's family by its grant id (the key of a row or map entry that a rotation
/// updates in place, instead of a record per token), and the engine tells the three kinds of
/// presented token apart by hash: the current one (usable), the one it replaced (a retry of a
/// rotation whose answer was lost, within the configured grace window), and any other that carries
/// the family secret: an older token of the grant, presented again, which is reuse (RFC 9700
/// §4.14.2) however old it is. A token that does not carry the family secret was never issued for
/// the grant, and revokes nothing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefreshFamily {
    /// The grant.
    pub grant_id: GrantId,
    /// SHA-256 of the family secret. `None` for a family a store adopted from refresh tokens
    /// issued before families (which carry no family secret and are known by their hash, see
    /// [`RefreshKey::Legacy`]): its first rotation gives it one ([`Op::RotateRefresh`]).
    pub family: Option<SecretHash>,
    /// SHA-256 of the current (active) token.
    pub current: SecretHash,
    /// When the current token was issued.
    pub issued_at: u64,
    /// When the current token expires.
    pub expires_at: u64,
    /// The token the current one replaced, and when: presented again within the grace window,
    /// a retry. `None` before the first rotation.
    pub previous: Option<Rotated>,
}

/// A refresh token rotated out: its hash and the time of its rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotated {
    /// SHA-256 of the token.
    pub hash: SecretHash,
    /// When it was rotated out.
    pub at: u64,
}

/// How a presented refresh token names its family, for [`Op::GetRefresh`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefreshKey {
    /// A token in the current format, which names its grant.
    Grant(GrantId),
    /// A token issued before families, by its SHA-256 hash. A store that held such tokens keeps
    /// every one of them (active or rotated, until it expires) as a lookup from its hash to its
    /// grant, and adopted each grant's active one as the grant's [`RefreshFamily`] (with the
    /// token it replaced as `previous`). It finds the family of the token's grant; a token it
    /// never held finds nothing.
    Legacy(SecretHash),
}

impl RefreshKey {
    /// The key of the raw refresh token `token`, as the engine looks it up (for tools and
    /// tests that hold a token and want its family).
    pub fn of(token: &str) -> Self {
        crate::refresh_token::Presented::parse(token).key()
    }
}

/// The token a rotation stores as a family's current one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Successor {
    /// Hash of the new token.
    pub hash: SecretHash,
    /// Issue time, which is also when the token it replaces is rotated out.
    pub issued_at: u64,
    /// Expiry.
    pub expires_at: u64,
}

/// A grant's refresh tokens together with the grant, as [`Op::GetRefresh`] returns them:
/// everything a refresh reads before it rotates, in one read (one round trip to a networked
/// store).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefreshGrant {
    /// The grant's refresh tokens.
    pub family: RefreshFamily,
    /// The grant it belongs to.
    pub grant: GrantRecord,
    /// The grant's client as registered: what [`Op::GetClient`] answers for `grant.client_id`
    /// (`None` once the client is deleted), so that the token endpoint authenticates a
    /// refreshing client without asking for it again.
    pub client: Option<Arc<ClientRecord>>,
    /// What [`Op::RevocationStatus`] answers for the grant and its subject, so that a refresh
    /// checks the subject's credential version without asking for it again.
    pub status: RevocationStatus,
}

/// Where a device authorization stands (RFC 8628).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceStatus {
    /// Waiting for the user.
    Pending,
    /// Approved; tokens not yet collected.
    Approved {
        /// The approving subject.
        subject: String,
        /// Its credential version at approval.
        credential_version: u32,
        /// The grant the tokens will belong to.
        grant_id: GrantId,
        /// When the approving user authenticated (Unix seconds), the ID token's `auth_time`.
        /// Absent in records stored before ID tokens: unknown.
        #[serde(default)]
        auth_time: Option<u64>,
        /// How the approving user authenticated (RFC 8176 values), the ID token's `amr`.
        /// Absent in older records: unknown (empty).
        #[serde(default)]
        amr: Vec<String>,
    },
    /// The user said no.
    Denied,
    /// Tokens were issued; the device code is spent.
    Consumed,
}

/// A device authorization, reachable by the device code's hash and by the user code's hash.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// SHA-256 of the device code.
    pub device_code_hash: SecretHash,
    /// SHA-256 of the normalized user code.
    pub user_code_hash: SecretHash,
    /// The requesting client.
    pub client_id: String,
    /// The requested scope.
    pub scope: Scope,
    /// Issue time.
    pub issued_at: u64,
    /// Expiry of both codes.
    pub expires_at: u64,
    /// Current minimum polling interval in seconds (grows by 5 on each `slow_down`).
    pub interval: u64,
    /// Time of the last poll.
    pub last_poll: Option<u64>,
    /// Where it stands.
    pub status: DeviceStatus,
    /// Bumped by every successful [`Op::SwapDevice`].
    pub revision: u64,
    /// The resources (RFC 8707) the request named, which the tokens' audience must stay within;
    /// empty when it named none. Absent in records stored before resource indicators: empty.
    #[serde(default)]
    pub resources: Vec<String>,
}

/// How to find a device authorization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DeviceLookup {
    /// By the hash of the device code (token polling).
    DeviceCode(SecretHash),
    /// By the hash of the normalized user code (the verification page).
    UserCode(SecretHash),
}

/// The most remembered consents one subject has ([`Effect::PutConsent`] drops the oldest beyond
/// it), so what a user's approvals cost the store is bounded.
pub const MAX_CONSENTS_PER_SUBJECT: usize = 100;

/// A user's remembered approval of a client (OpenID Connect: consent remembered per user and
/// client), so that a re-authorization asking for the same scope or less needs no second consent
/// page. One per (subject, client); it has no expiry: it lasts until the user or an administrator
/// revokes it, the client or the user is deleted, or newer approvals push it out
/// ([`MAX_CONSENTS_PER_SUBJECT`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    /// The user who approved.
    pub subject: String,
    /// The client approved.
    pub client_id: String,
    /// Everything the user approved for this client (the union of the approvals).
    pub scope: Scope,
    /// When the latest approval was made (Unix seconds): the order in which the oldest go.
    pub granted_at: u64,
}

/// How far past a new refresh token's expiry a rotation extends its grant's life, when it must.
///
/// A grant lives as long as its newest refresh token (stores purge it after its `expires_at`). A
/// rotation whose new token expires after the grant sets the grant's `expires_at` to the token's
/// expiry plus this step; one whose token is already covered leaves the grant as it is. So a grant
/// refreshed every hour is written about once a day instead of at every rotation: on a networked
/// store the rotation then writes only token rows. A grant outlives its last token by at most this
/// much, which only delays its purge (a refresh checks the token's own expiry).
pub const GRANT_EXTENSION: u64 = 86_400;

/// The grant life a rotation into a token expiring at `token_expires_at` leaves, from the grant's
/// `expires_at` ([`GRANT_EXTENSION`]).
pub fn extended_grant_expiry(grant_expires_at: u64, token_expires_at: u64) -> u64 {
    if grant_expires_at < token_expires_at {
        token_expires_at.saturating_add(GRANT_EXTENSION)
    } else {
        grant_expires_at
    }
}

/// The most grants one [`Op::GrantsOfSession`] answers: a page, so that what a session end
/// reads is bounded whatever a session did (the engine reads a bounded number of pages, see
/// [`crate::backchannel_logout`]).
pub const MAX_SESSION_GRANTS: usize = 100;

/// A live grant approved in a browser session, as [`Op::GrantsOfSession`] answers it: what a
/// session end needs to decide whether to revoke it (OpenID Connect Back-Channel Logout §2.7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionGrant {
    /// The grant.
    pub grant_id: GrantId,
    /// Its consented scope ([`GrantRecord::scope`]).
    pub scope: Scope,
}

/// Per-subject state: the credential version that access tokens must carry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectRecord {
    /// Bumped by [`Effect::RevokeSubject`] (password change, account disabled).
    pub credential_version: u32,
}

/// A read (or atomic read-modify-write) the driver answers from the store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// Reply: [`Reply::Client`].
    GetClient {
        /// The client identifier.
        client_id: String,
    },
    /// [`Op::GetClient`] for `client_id` and [`Op::RevocationStatus`] for `grant_id` and `subject`
    /// in one read (one round trip to a networked store, one snapshot), for a request that knows
    /// before reading anything which grant's status it needs: a `client_credentials` token
    /// request, whose grant ([`client_credentials_grant_id`](crate::token::client_credentials_grant_id))
    /// and subject follow from the client id it presents, and an introspection or revocation of an
    /// access token, whose grant and subject the token names (the client is then the caller's).
    /// Reply: [`Reply::ClientWithStatus`].
    GetClientWithStatus {
        /// The client identifier.
        client_id: String,
        /// The grant whose access revocation is asked.
        grant_id: GrantId,
        /// The subject whose credential version is asked.
        subject: String,
    },
    /// Reply: [`Reply::Subject`]; an unknown subject has the default record.
    GetSubject {
        /// The subject.
        subject: String,
    },
    /// Atomic take. Reply: [`Reply::Code`].
    TakeCode {
        /// Hash of the presented code.
        hash: SecretHash,
    },
    /// The family of a presented refresh token, with its grant, the grant's client and the
    /// revocation status of the grant and its subject ([`RefreshGrant`]), read as
    /// [`Op::GetClient`] and [`Op::RevocationStatus`] would. Reply: [`Reply::Refresh`]; `None`
    /// when the grant is unknown or has no refresh tokens (for [`RefreshKey::Legacy`], also when
    /// the hash is unknown). A revoked grant is answered (the engine tells its client so).
    GetRefresh {
        /// Which family.
        key: RefreshKey,
    },
    /// [`Op::GetRefresh`] and [`Op::RotateRefresh`] in one atomic step, for a public client's
    /// refresh (one round trip instead of two): if, at that moment, `grant_id`'s family has
    /// `presented` as its current token, `new.issued_at` is before that token's expiry, the grant
    /// is not revoked, and the grant's client is `client_id` and registered ([`Op::GetClient`]
    /// answers it), the family is rotated as `RotateRefresh { grant_id, from: presented, new,
    /// family, retry: false }` does, with the family's own `family` hash. The reply,
    /// [`Reply::RefreshRotated`], answers what `GetRefresh` answers for the grant after the op:
    /// after the rotation when there was one. (When there was none, a networked store may read
    /// after its attempt: the conditions only ever turn false, so the engine, which then goes on
    /// as after a `GetRefresh`, is as safe either way.) The engine asks it only for a token in the
    /// current format that it issued to a public client (whose client can only be public),
    /// presented without a client secret, in a request that nothing but those checks can refuse.
    RefreshPublic {
        /// The grant the presented token names.
        grant_id: GrantId,
        /// Hash of the presented token.
        presented: SecretHash,
        /// The client the request names.
        client_id: String,
        /// The token to rotate into.
        new: Successor,
    },
    /// Compare-and-swap: if `grant_id` is not revoked and its family's current token is `from`,
    /// make `new` the current token, with the family hash `family` (the family's own, or a new one
    /// for a family adopted without one), set `previous` to `from` rotated out at `new.issued_at`
    /// (unless `retry`: a retry replaces a successor whose answer was lost, and `previous` stays
    /// the token presented again, with its original rotation time), and extend the grant's life
    /// to cover `new` ([`GRANT_EXTENSION`]). Reply: [`Reply::Swapped`].
    RotateRefresh {
        /// The grant.
        grant_id: GrantId,
        /// Hash of the token being replaced: the family's current token.
        from: SecretHash,
        /// The new current token.
        new: Successor,
        /// The family hash the new token carries.
        family: SecretHash,
        /// Whether this replaces a successor whose answer was lost (see above).
        retry: bool,
    },
    /// Reply: [`Reply::Device`].
    GetDevice {
        /// Which code to look the authorization up by.
        by: DeviceLookup,
    },
    /// Compare-and-swap: if the stored record (found by `record.device_code_hash`) has revision
    /// `expected_revision`, replace it with `record`. Reply: [`Reply::Swapped`].
    SwapDevice {
        /// The revision the engine read.
        expected_revision: u64,
        /// The new record (its `revision` is `expected_revision + 1`).
        record: DeviceRecord,
    },
    /// Atomically add one to the counter `key` and return the new value. A counter that does not
    /// exist, or whose window ended at or before `now`, starts again at zero with its window ending
    /// at `expires_at`. Reply: [`Reply::Count`].
    Count {
        /// What is counted (e.g. `user_code:<address>`, `login:<user>`).
        key: String,
        /// The current time.
        now: u64,
        /// End of a new counting window.
        expires_at: u64,
    },
    /// The revocation view's answer for one access token, for flows that validate tokens
    /// (introspection, revocation). Reply: [`Reply::RevocationStatus`].
    RevocationStatus {
        /// The token's grant.
        grant_id: GrantId,
        /// The token's subject.
        subject: String,
    },
    /// What the embedder knows about the user `subject`, for answers that describe users
    /// (introspection): see [`crate::claims`]. Answered from the embedder's user directory, not
    /// necessarily by the store; a store that keeps no users, or does not know the subject,
    /// answers `None`. Reply: [`Reply::UserClaims`].
    UserClaims {
        /// The token's subject (a user, never a client).
        subject: String,
    },
    /// Every remembered consent of `subject` (at most [`MAX_CONSENTS_PER_SUBJECT`]), newest
    /// first (by `granted_at`, then by client id). Reply: [`Reply::Consents`].
    Consents {
        /// The user.
        subject: String,
    },
    /// The live grants of `subject` approved in the browser session `sid` ([`GrantRecord::sid`]):
    /// not revoked, expiring after `now`, with a grant id greater than `after` (all when `None`);
    /// the first [`MAX_SESSION_GRANTS`] of them in ascending grant id order, so that the next
    /// page starts after the last one answered. Reply: [`Reply::SessionGrants`].
    GrantsOfSession {
        /// The user whose session ended.
        subject: String,
        /// The session's `sid`.
        sid: String,
        /// The current time.
        now: u64,
        /// Where the page starts: after this grant id.
        after: Option<GrantId>,
    },
    /// Fetch the client metadata document at `url` (an `https` URL used as `client_id`; see
    /// [`crate::client_id_document`]). Answered by the driver, not the store: a `GET` of at most
    /// [`MAX_DOCUMENT_BYTES`](crate::client_id_document::MAX_DOCUMENT_BYTES), following no
    /// redirect, guarded against internal addresses and cached per HTTP caching. Asked only when
    /// [`Config::client_id_metadata_documents`](crate::config::Config) is on; a store asked
    /// directly answers [`FetchError::NotFetched`](crate::client_id_document::FetchError).
    /// Reply: [`Reply::ClientDocument`].
    FetchClientDocument {
        /// The client id, an `https` URL already checked against the draft's rules.
        url: String,
    },
}

/// What [`Op::TakeCode`] found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CodeTake {
    /// First redemption: the record, now marked used.
    Taken(CodeRecord),
    /// Already redeemed before: the record, so a replay can revoke the grant issued from it.
    Used(CodeRecord),
    /// Unknown or purged.
    Missing,
}

/// The store's answer to an [`Op`]; each op has exactly one matching variant.
///
/// A client comes shared ([`Arc`]): every token-style request reads its client, and a record with
/// its registration metadata is a dozen heap blocks, so stores keep clients in `Arc`s and answer
/// with a reference count instead of a deep copy. (Serialized, an `Arc` is just its record.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// For [`Op::GetClient`].
    Client(Option<Arc<ClientRecord>>),
    /// For [`Op::GetClientWithStatus`]: what [`Op::GetClient`] and [`Op::RevocationStatus`] answer.
    ClientWithStatus {
        /// As [`Reply::Client`] for the op's `client_id`.
        client: Option<Arc<ClientRecord>>,
        /// As [`Reply::RevocationStatus`] for the op's `grant_id` and `subject`.
        status: RevocationStatus,
    },
    /// For [`Op::GetSubject`].
    Subject(SubjectRecord),
    /// For [`Op::TakeCode`].
    Code(CodeTake),
    /// For [`Op::GetRefresh`].
    Refresh(Option<RefreshGrant>),
    /// For [`Op::RefreshPublic`]: the family after the op, and whether it was rotated.
    RefreshRotated {
        /// What [`Op::GetRefresh`] answers for the op's grant after the op.
        found: Option<RefreshGrant>,
        /// Whether the family was rotated into the op's `new`.
        rotated: bool,
    },
    /// For [`Op::RotateRefresh`] and [`Op::SwapDevice`]: whether the swap happened.
    Swapped(bool),
    /// For [`Op::GetDevice`].
    Device(Option<DeviceRecord>),
    /// For [`Op::Count`].
    Count(u32),
    /// For [`Op::UserClaims`].
    UserClaims(Option<crate::claims::UserClaims>),
    /// For [`Op::Consents`].
    Consents(Vec<ConsentRecord>),
    /// For [`Op::GrantsOfSession`].
    SessionGrants(Vec<SessionGrant>),
    /// For [`Op::FetchClientDocument`].
    ClientDocument(crate::client_id_document::ClientDocument),
    /// For [`Op::RevocationStatus`].
    RevocationStatus {
        /// As [`RevocationView::access_revoked_at`].
        access_revoked_at: Option<u64>,
        /// As [`RevocationView::credential_version`].
        credential_version: u32,
    },
}

/// A write the driver applies, in order, before sending the response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Effect {
    /// Insert or replace a client.
    PutClient(ClientRecord),
    /// The client obtained a token: clear its [`ClientRecord::unused_expires_at`], so purges keep
    /// it. Nothing else changes, and an unknown client is no error (it may have been deleted
    /// meanwhile). The engine emits it only while the record it read still had an expiry, so the
    /// token endpoint stays write-free for clients in use; a `PutClient` that raced with it and
    /// restored the expiry is healed by the client's next token.
    MarkClientUsed {
        /// The client.
        client_id: String,
    },
    /// Delete a client and revoke all its grants as [`Effect::RevokeClient`] does. Its
    /// remembered consents go too.
    DeleteClient {
        /// The client.
        client_id: String,
        /// The time of deletion.
        at: u64,
        /// Until when revocation entries must be kept (the longest access token lifetime from `at`).
        keep_until: u64,
    },
    /// Store a new authorization code.
    PutCode(CodeRecord),
    /// Store a new grant.
    PutGrant(GrantRecord),
    /// Store a grant's refresh tokens, replacing any it had: with its grant, which an earlier
    /// effect (or the store) holds. A family whose grant is not stored is dropped.
    PutRefreshFamily(RefreshFamily),
    /// Store a new device authorization.
    PutDevice(DeviceRecord),
    /// Revoke a grant: its refresh tokens die, and access tokens issued at or before `at` fail
    /// validation. The store keeps the revocation visible to [`RevocationView`] until `keep_until`.
    ///
    /// Every access revocation of a grant that already has one (this, [`Effect::RevokeAccess`],
    /// and the grants revoked by the client and subject revocations) is recorded at
    /// `max(at, previous + 1)` and kept `keep_until` plus the same shift: a token issued after the
    /// previous revocation is stamped `previous + 1` at the earliest
    /// (`oauth_proto`'s private `issue` module), and this revocation must reach it.
    RevokeGrant {
        /// The grant.
        grant_id: GrantId,
        /// The revocation time.
        at: u64,
        /// When every access token issued up to `at` has expired.
        keep_until: u64,
    },
    /// Revoke only the access tokens of a grant issued at or before `at`; refresh tokens live on.
    RevokeAccess {
        /// The grant.
        grant_id: GrantId,
        /// The revocation time.
        at: u64,
        /// When every access token issued up to `at` has expired.
        keep_until: u64,
    },
    /// Bump the subject's credential version (invalidating its access tokens) and revoke all its
    /// grants as [`Effect::RevokeGrant`] does. Also drops its unredeemed codes and pending device
    /// approvals.
    RevokeSubject {
        /// The subject.
        subject: String,
        /// The revocation time.
        at: u64,
        /// Until when revocation entries must be kept.
        keep_until: u64,
    },
    /// Revoke every grant of a client as [`Effect::RevokeGrant`] does.
    RevokeClient {
        /// The client.
        client_id: String,
        /// The revocation time.
        at: u64,
        /// Until when revocation entries must be kept.
        keep_until: u64,
    },
    /// Remember a consent: insert it, or replace the record of the same subject and client. If
    /// the subject then has more than [`MAX_CONSENTS_PER_SUBJECT`], its oldest (smallest
    /// `granted_at`, then smallest client id) go until it has that many.
    PutConsent(ConsentRecord),
    /// Forget the remembered consent of `subject` for `client_id`, or all of the subject's when
    /// `client_id` is `None` (the user is deleted). Forgetting what is not there is no error.
    DeleteConsent {
        /// The user.
        subject: String,
        /// The client, or every client.
        client_id: Option<String>,
    },
    /// Forget a counter (e.g. after a successful login).
    ResetCounter {
        /// The counter.
        key: String,
    },
}

/// What kind of failure a [`StoreError`] is, for drivers that answer or log them differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The store cannot be reached or cannot write (an IO error, a lost connection, a store that
    /// stopped after a failed write or is shutting down). Retrying later may succeed.
    Unavailable,
    /// Stored data is damaged or undecodable; retrying will not help.
    Corrupt,
    /// The store refused the call for its size or for load (an entry over a limit, a full pool).
    Overloaded,
    /// The store answered out of contract (a reply of the wrong kind); a bug in the store.
    ContractViolation,
}

impl StoreErrorKind {
    fn describe(self) -> &'static str {
        match self {
            StoreErrorKind::Unavailable => "store unavailable",
            StoreErrorKind::Corrupt => "store data damaged",
            StoreErrorKind::Overloaded => "store overloaded",
            StoreErrorKind::ContractViolation => "store broke its contract",
        }
    }
}

/// A store failed. Drivers answer `server_error` / `temporarily_unavailable`; the client did
/// nothing wrong.
///
/// It keeps what a driver needs to decide and what an operator needs to act: the
/// [`kind`](Self::kind), a message saying what failed (shown by `Display` after the kind), and
/// the underlying error where there is one ([`std::error::Error::source`]), so a store's own typed
/// error (the file store's, a database driver's) is not flattened into text.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// An error of `kind` described by `message`.
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        StoreError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// [`StoreErrorKind::Unavailable`], described by `message`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::Unavailable, message)
    }

    /// [`StoreErrorKind::ContractViolation`], described by `message`.
    pub fn contract_violation(message: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::ContractViolation, message)
    }

    /// The same error with `source` as its underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// What kind of failure it is.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// What failed.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.describe(), self.message)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// What a purge removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PurgeStats {
    /// Records dropped.
    pub removed: u64,
}

/// The synchronous store contract (what a mail server's own thread-per-connection code calls).
///
/// `execute` must answer each op as documented on [`Op`], atomically for the atomic ones. `apply`
/// must make all effects durable (as far as the store promises durability) before returning.
pub trait Store {
    /// Answers one op.
    fn execute(&self, op: Op) -> Result<Reply, StoreError>;
    /// Applies effects in order.
    fn apply(&self, effects: Vec<Effect>) -> Result<(), StoreError>;
    /// Drops every record whose expiry is at or before `now` (for clients: whose
    /// [`ClientRecord::unused_expires_at`] is). It visits every record, so a store
    /// should do it in steps that let other calls run in between rather than block them for the
    /// whole scan (the memory and file stores go one shard at a time).
    fn purge(&self, now: u64) -> Result<PurgeStats, StoreError>;
}

/// The asynchronous store contract, with the same meaning as [`Store`].
pub trait AsyncStore: Send + Sync {
    /// Answers one op.
    fn execute(
        &self,
        op: Op,
    ) -> impl std::future::Future<Output = Result<Reply, StoreError>> + Send;
    /// Applies effects in order.
    fn apply(
        &self,
        effects: Vec<Effect>,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send;
    /// Drops every record whose expiry is at or before `now`.
    fn purge(
        &self,
        now: u64,
    ) -> impl std::future::Future<Output = Result<PurgeStats, StoreError>> + Send;
}

/// The in-memory revocation state that access token validation consults.
pub trait RevocationView {
    /// If access tokens of the grant issued at or before some time are revoked, that time.
    fn access_revoked_at(&self, grant_id: &GrantId) -> Option<u64>;
    /// The subject's current credential version (0 for a subject never revoked).
    fn credential_version(&self, subject: &str) -> u32;
    /// Both answers at once; stores behind a lock override it to take the lock once.
    fn status(&self, grant_id: &GrantId, subject: &str) -> (Option<u64>, u32) {
        (
            self.access_revoked_at(grant_id),
            self.credential_version(subject),
        )
    }
}

/// A [`RevocationView`] built from one [`Reply::RevocationStatus`] (or the status a
/// [`RefreshGrant`] carries), for flows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationStatus {
    /// As [`RevocationView::access_revoked_at`] for the asked grant.
    pub access_revoked_at: Option<u64>,
    /// As [`RevocationView::credential_version`] for the asked subject.
    pub credential_version: u32,
}

impl RevocationView for RevocationStatus {
    fn access_revoked_at(&self, _: &GrantId) -> Option<u64> {
        self.access_revoked_at
    }
    fn credential_version(&self, _: &str) -> u32 {
        self.credential_version
    }
}

/// A view with nothing revoked: for checking a token's signature and expiry alone.
#[derive(Clone, Copy, Debug, Default)]
pub struct NothingRevoked;

impl RevocationView for NothingRevoked {
    fn access_revoked_at(&self, _: &GrantId) -> Option<u64> {
        None
    }
    fn credential_version(&self, _: &str) -> u32 {
        0
    }
}

impl Op {
    /// True for the ops that change the store (the atomic ones); a journaling store must make
    /// these durable before answering, exactly like effects.
    pub fn mutates(&self) -> bool {
        matches!(
            self,
            Op::TakeCode { .. }
                | Op::RefreshPublic { .. }
                | Op::RotateRefresh { .. }
                | Op::SwapDevice { .. }
                | Op::Count { .. }
        )
    }
}
