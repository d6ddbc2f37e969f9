//! Self-contained access tokens, validated without a store read.
//!
//! # Format
//! An access token is unpadded base64url (so it is a valid RFC 6750 `b64token` and needs no escaping
//! anywhere) of these bytes:
//!
//! | bytes | field |
//! |---|---|
//! | 1 | format version: `1` without audience, `2` with one |
//! | 4 | key id (big-endian) |
//! | 16 | grant id |
//! | 8 | issued at (Unix seconds, big-endian) |
//! | 8 | expires at |
//! | 4 | subject's credential version |
//! | 2 + n | subject (length-prefixed UTF-8) |
//! | 1 + n | client id |
//! | 2 + n | scope (space-separated) |
//! | 1 + (1 + n)… | version 2 only: the audience, a count (1 to [`MAX_AUDIENCE`]) then each resource identifier (length-prefixed, 1 to [`MAX_RESOURCE`] bytes) |
//! | 32 | HMAC-SHA256 over everything before it, under the key named by the key id |
//!
//! # Audience (RFC 8707)
//! A token issued for protected resources ([`crate::resource`]) carries their identifiers
//! themselves, not an index into the configuration: a token stays verifiable, and keeps meaning
//! the same resources, whatever the administrator later adds, removes or reorders. Several
//! resources are allowed, since RFC 8707 lets a request name several. A token without audience is
//! still written as version 1, byte for byte as before audiences existed, so tokens issued before
//! an upgrade validate until they expire, and servers that configure no resources issue exactly
//! what they did. The audience is checked by
//! [`Engine::validate_access_token_for`](crate::engine::Engine::validate_access_token_for) after
//! the one HMAC, with a comparison of the few identifiers the token carries.
//!
//! Nothing is parsed before the tag has been verified except the key id, so a forged token costs one
//! HMAC and is never interpreted. Keys rotate: one key signs, several verify; a token signed by a key
//! that is no longer listed is [`TokenError::UnknownKey`]. Each key's HMAC state is keyed once, when
//! the key is built, and cloned per token (no per-token key schedule).
//!
//! Issuing builds a typical token on the stack from borrowed claims, so a token that goes straight
//! into a token response costs no allocation of its own.
//!
//! The claims are readable by whoever holds the token (they are not encrypted): they are the
//! holder's own subject, client and scope, which the token grants anyway.
//!
//! # The other format: JWT (RFC 9068)
//! A client or a protected resource can be set to JWT access tokens ([`AccessTokenFormat`]),
//! signed with the server's asymmetric keys so that resource servers validate them from the JWKS
//! ([`crate::jose::access_token`]). They carry the same [`AccessClaims`], and the engine's
//! validation entry points accept both formats, telling them apart by the first character
//! ([`crate::jose::access_token::is_jwt`]), so this format's path pays one comparison for it.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use smallvec::SmallVec;

use crate::scope::Scope;
use crate::store::{GrantId, RevocationView};

type HmacSha256 = Hmac<Sha256>;

const VERSION: u8 = 1;
const VERSION_AUDIENCE: u8 = 2;
const FIXED: usize = 1 + 4 + 16 + 8 + 8 + 4;
const TAG: usize = 32;
/// Longest subject an access token can carry, in bytes.
pub const MAX_SUBJECT: usize = 1024;
/// Longest client id an access token can carry, in bytes.
pub const MAX_CLIENT_ID: usize = 255;
/// Longest scope string an access token can carry, in bytes.
pub const MAX_SCOPE: usize = 4096;
/// Most resources one access token can name as its audience.
pub const MAX_AUDIENCE: usize = 8;
/// Longest resource identifier an access token can carry, in bytes.
pub const MAX_RESOURCE: usize = 255;
const MAX_RAW: usize = FIXED
    + 2
    + MAX_SUBJECT
    + 1
    + MAX_CLIENT_ID
    + 2
    + MAX_SCOPE
    + 1
    + MAX_AUDIENCE * (1 + MAX_RESOURCE)
    + TAG;
const SMALL: usize = 384;
/// Longest token string accepted; anything longer is malformed without being decoded.
pub const MAX_TOKEN_LEN: usize = MAX_RAW.div_ceil(3) * 4;

/// An HMAC key with its identifier. `Debug` never prints the key.
#[derive(Clone)]
pub struct TokenKey {
    id: u32,
    mac: HmacSha256,
}

impl TokenKey {
    /// Builds a key from at least 32 bytes of secret material.
    pub fn new(id: u32, secret: &[u8]) -> Result<Self, crate::config::ConfigError> {
        if secret.len() < 32 {
            return Err(crate::config::ConfigError::new(
                "token_keys",
                format!(
                    "token key {id} has {} bytes, at least 32 are needed",
                    secret.len()
                ),
            ));
        }
        let mac = HmacSha256::new_from_slice(secret).map_err(|_| {
            crate::config::ConfigError::new("token_keys", format!("token key {id} is unusable"))
        })?;
        Ok(TokenKey { id, mac })
    }

    /// The key id.
    pub fn id(&self) -> u32 {
        self.id
    }
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenKey({}, <redacted>)", self.id)
    }
}

/// The signing key and the keys still accepted for verification.
#[derive(Clone, Debug)]
pub struct KeyRing {
    signing: TokenKey,
    verifying: Vec<TokenKey>,
}

impl KeyRing {
    /// A ring that signs with `signing` and also accepts tokens of `older` keys.
    pub fn new(
        signing: TokenKey,
        older: Vec<TokenKey>,
    ) -> Result<Self, crate::config::ConfigError> {
        let mut verifying = vec![signing.clone()];
        for k in older {
            if verifying.iter().any(|v| v.id == k.id) {
                return Err(crate::config::ConfigError::new(
                    "token_keys",
                    format!("token key id {} is listed twice", k.id),
                ));
            }
            verifying.push(k);
        }
        Ok(KeyRing { signing, verifying })
    }

    fn verifier(&self, id: u32) -> Option<&TokenKey> {
        self.verifying.iter().find(|k| k.id == id)
    }
}

/// The format of the access tokens issued to a client or for a protected resource.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessTokenFormat {
    /// This module's HMAC tokens: the default, the fastest to issue and to validate, validated by
    /// this server (or by introspection).
    #[default]
    Hmac,
    /// RFC 9068 JWTs signed with the server's asymmetric keys ([`crate::jose::access_token`]).
    Jwt,
}

impl AccessTokenFormat {
    /// The name used in the configuration and by the administration commands.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessTokenFormat::Hmac => "hmac",
            AccessTokenFormat::Jwt => "jwt",
        }
    }

    /// The format named `name` ([`AccessTokenFormat::as_str`]).
    pub fn parse(name: &str) -> Option<Self> {
        [AccessTokenFormat::Hmac, AccessTokenFormat::Jwt]
            .into_iter()
            .find(|f| f.as_str() == name)
    }

    /// True for the default ([`AccessTokenFormat::Hmac`]), which records and configurations
    /// leave unwritten.
    pub fn is_default(&self) -> bool {
        *self == AccessTokenFormat::Hmac
    }
}

/// What an access token says, once validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessClaims {
    /// The grant it was issued from.
    pub grant_id: GrantId,
    /// The resource owner (for `client_credentials`, the client itself).
    pub subject: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The scope it grants.
    pub scope: Scope,
    /// Issue time.
    pub issued_at: u64,
    /// Expiry.
    pub expires_at: u64,
    /// The subject's credential version at issue.
    pub credential_version: u32,
    /// The protected resources the token is for (RFC 8707); empty for a token without audience
    /// (see [`AccessClaims::is_for`]).
    pub audience: Audience,
}

/// The protected resources an access token is for: their identifiers (RFC 8707), in issue order.
/// Kept exactly as the token carries them after its count byte: each identifier preceded by its
/// length byte. Reading a token's audience is then one check of the lengths and characters and
/// one copy, the check of a resource walks a few length bytes, and issuing writes the bytes as
/// they are. Held inline when short (one or two mail resources; `smallvec`), so a typical token's
/// audience allocates nothing: validation is on every request's path. Only identifiers of 1 to
/// [`MAX_RESOURCE`] printable ASCII characters are ever stored, so each is always a `str`.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Audience(SmallVec<[u8; 48]>);

impl std::fmt::Debug for Audience {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Whether `id` is an identifier the format carries: 1 to [`MAX_RESOURCE`] printable ASCII bytes.
fn is_carried(id: &[u8]) -> bool {
    // `u8::is_ascii_graphic` folded without an early exit, which the compiler vectorizes.
    !id.is_empty()
        && id.len() <= MAX_RESOURCE
        && id
            .iter()
            .fold(true, |graphic, b| graphic & (b.wrapping_sub(0x21) < 0x5e))
}

/// The identifiers of length-prefixed `bytes`, stopping at the first inconsistency (which the
/// constructors never let in).
struct Identifiers<'a>(&'a [u8]);

impl<'a> Iterator for Identifiers<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (&len, rest) = self.0.split_first()?;
        let id = rest.get(..len as usize)?;
        self.0 = &rest[len as usize..];
        Some(id)
    }
}

impl Audience {
    /// An audience of these identifiers, or `None` when the token format cannot carry them:
    /// more than [`MAX_AUDIENCE`], or one that is not 1 to [`MAX_RESOURCE`] printable ASCII
    /// characters (every valid identifier is, see [`crate::resource::is_valid_identifier`]).
    pub fn new<I, S>(identifiers: I) -> Option<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut bytes = SmallVec::new();
        for (i, id) in identifiers.into_iter().enumerate() {
            let id = id.as_ref().as_bytes();
            if i == MAX_AUDIENCE || !is_carried(id) {
                return None;
            }
            bytes.push(id.len() as u8);
            bytes.extend_from_slice(id);
        }
        Some(Audience(bytes))
    }

    /// The length-prefixed identifiers at the start of `bytes` (`count` of them, 1 to
    /// [`MAX_AUDIENCE`]) and what follows them, or `None` if they are not what [`Audience::new`]
    /// builds.
    fn read(count: usize, bytes: &[u8]) -> Option<(Audience, &[u8])> {
        if count == 0 || count > MAX_AUDIENCE {
            return None;
        }
        let mut at = 0;
        for _ in 0..count {
            let len = *bytes.get(at)? as usize;
            if !is_carried(bytes.get(at + 1..at + 1 + len)?) {
                return None;
            }
            at += 1 + len;
        }
        Some((Audience(SmallVec::from_slice(&bytes[..at])), &bytes[at..]))
    }

    /// The identifiers, in issue order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        Identifiers(&self.0).map(|id| std::str::from_utf8(id).unwrap_or_default())
    }

    /// Whether `resource` is one of the identifiers.
    pub fn contains(&self, resource: &str) -> bool {
        Identifiers(&self.0).any(|id| id == resource.as_bytes())
    }

    /// Whether it names no resource.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many resources it names.
    pub fn len(&self) -> usize {
        Identifiers(&self.0).count()
    }

    /// Whether the format can carry it (always, for an audience built by [`Audience::new`]).
    pub(crate) fn is_encodable(&self) -> bool {
        self.is_empty()
            || Audience::read(self.len(), &self.0)
                .is_some_and(|(read, rest)| rest.is_empty() && read == *self)
    }
}

impl AccessClaims {
    /// Whether the token may be used at `resource`: it names that resource in its audience, or
    /// it has no audience and `unbound_accepted` (the engine passes "no resources are
    /// configured", see [`crate::resource`]).
    pub fn is_for(&self, resource: &str, unbound_accepted: bool) -> bool {
        if self.audience.is_empty() {
            return unbound_accepted;
        }
        self.audience.contains(resource)
    }

    /// True for a token a client obtained for itself with `client_credentials` (RFC 6749 §4.4):
    /// it names no user, its subject is the client id. Such tokens belong to the client's derived
    /// grant ([`crate::token::client_credentials_grant_id`]), which no user's grant can have.
    pub fn is_client_credentials(&self) -> bool {
        self.grant_id == crate::token::client_credentials_grant_id(&self.client_id)
    }
}

/// Why an access token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a token of this format (bad encoding, wrong length, bad fields).
    Malformed,
    /// The tag does not verify: forged or altered.
    BadSignature,
    /// Signed with a key this server no longer (or never) had.
    UnknownKey,
    /// Past its expiry.
    Expired,
    /// Its grant, its access, or its subject's credentials were revoked.
    Revoked,
    /// Valid, but issued for other protected resources than the one it was presented to
    /// (RFC 8707; RFC 6750 §3.1 `invalid_token`: the token is invalid *here*).
    WrongAudience,
}

impl TokenError {
    /// A description suitable for `error_description`.
    pub fn description(self) -> &'static str {
        match self {
            TokenError::Malformed => "the access token is malformed",
            TokenError::BadSignature => "the access token signature is invalid",
            TokenError::UnknownKey => "the access token was signed with an unknown key",
            TokenError::Expired => "the access token expired",
            TokenError::Revoked => "the access token was revoked",
            TokenError::WrongAudience => "the access token was issued for another resource",
        }
    }
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.description())
    }
}

impl std::error::Error for TokenError {}

/// Claims to sign, borrowed from wherever the issuer holds them.
pub(crate) struct Unsigned<'a> {
    pub grant_id: GrantId,
    pub subject: &'a str,
    pub client_id: &'a str,
    pub scope: &'a Scope,
    pub issued_at: u64,
    pub expires_at: u64,
    pub credential_version: u32,
    pub audience: &'a Audience,
}

impl<'a> Unsigned<'a> {
    /// The claims of an already decoded token, to sign again (in either format).
    pub(crate) fn of(claims: &'a AccessClaims) -> Self {
        Unsigned {
            grant_id: claims.grant_id,
            subject: &claims.subject,
            client_id: &claims.client_id,
            scope: &claims.scope,
            issued_at: claims.issued_at,
            expires_at: claims.expires_at,
            credential_version: claims.credential_version,
            audience: &claims.audience,
        }
    }
}

/// Encodes and signs claims with the ring's signing key. Fields longer than the format allows are
/// refused (the engine never issues such tokens: it bounds subjects, client ids and scopes first).
pub fn issue(keys: &KeyRing, claims: &AccessClaims) -> Result<String, TokenError> {
    sign(keys, &Unsigned::of(claims), str::to_owned)
}

/// Writes into a buffer sized exactly for what is written.
struct Writer<'b> {
    buf: &'b mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.at + bytes.len();
        if let Some(dest) = self.buf.get_mut(self.at..end) {
            dest.copy_from_slice(bytes);
        }
        self.at = end;
    }
}

/// As [`issue`], handing the token to `with` instead of returning it. Tokens of up to 384
/// raw bytes are built and encoded on the stack.
pub(crate) fn sign<R>(
    keys: &KeyRing,
    claims: &Unsigned<'_>,
    with: impl FnOnce(&str) -> R,
) -> Result<R, TokenError> {
    let subject = claims.subject.as_bytes();
    let client = claims.client_id.as_bytes();
    let scope = claims.scope.as_str().as_bytes();
    if subject.len() > MAX_SUBJECT
        || client.len() > MAX_CLIENT_ID
        || scope.len() > MAX_SCOPE
        || !claims.audience.is_encodable()
    {
        return Err(TokenError::Malformed);
    }
    let audience_len = if claims.audience.is_empty() {
        0
    } else {
        // A count, then the length-prefixed identifiers as the audience holds them.
        1 + claims.audience.0.len()
    };
    let len = FIXED + 5 + subject.len() + client.len() + scope.len() + audience_len + TAG;
    let mut small = [0u8; SMALL];
    let mut large = Vec::new();
    let raw: &mut [u8] = if len <= SMALL {
        &mut small[..len]
    } else {
        large.resize(len, 0);
        &mut large
    };
    let mut w = Writer { buf: raw, at: 0 };
    w.put(&[if audience_len == 0 {
        VERSION
    } else {
        VERSION_AUDIENCE
    }]);
    w.put(&keys.signing.id.to_be_bytes());
    w.put(&claims.grant_id.0);
    w.put(&claims.issued_at.to_be_bytes());
    w.put(&claims.expires_at.to_be_bytes());
    w.put(&claims.credential_version.to_be_bytes());
    w.put(&(subject.len() as u16).to_be_bytes());
    w.put(subject);
    w.put(&[client.len() as u8]);
    w.put(client);
    w.put(&(scope.len() as u16).to_be_bytes());
    w.put(scope);
    if audience_len > 0 {
        w.put(&[claims.audience.len() as u8]);
        w.put(&claims.audience.0);
    }
    let tag = keys
        .signing
        .mac
        .clone()
        .chain_update(&w.buf[..len - TAG])
        .finalize()
        .into_bytes();
    w.put(&tag);
    let raw = &*w.buf;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut encoded = [0u8; SMALL / 3 * 4 + 4];
    match b64.encode_slice(raw, &mut encoded) {
        Ok(n) => {
            let token = std::str::from_utf8(&encoded[..n]).map_err(|_| TokenError::Malformed)?;
            Ok(with(token))
        }
        Err(_) => Ok(with(&b64.encode(raw))),
    }
}

/// Validates a token: encoding, key, tag, fields, expiry (`now >= expires_at` is expired), then
/// revocation (grant access revoked at or after issue, or credential version moved on).
pub fn validate(
    keys: &KeyRing,
    token: &str,
    now: u64,
    view: &dyn RevocationView,
) -> Result<AccessClaims, TokenError> {
    admit(verify(keys, token, now)?, None, view)
}

/// The checks after the signature, shared by both formats: the audience when `audience` is
/// `Some((resource, unbound_accepted))` ([`AccessClaims::is_for`]), then revocation.
pub(crate) fn admit(
    claims: AccessClaims,
    audience: Option<(&str, bool)>,
    view: &dyn RevocationView,
) -> Result<AccessClaims, TokenError> {
    if let Some((resource, unbound_accepted)) = audience {
        if !claims.is_for(resource, unbound_accepted) {
            return Err(TokenError::WrongAudience);
        }
    }
    check_revocation(&claims, view)?;
    Ok(claims)
}

/// [`validate`] without the revocation check, which [`check_revocation`] makes.
pub(crate) fn verify(keys: &KeyRing, token: &str, now: u64) -> Result<AccessClaims, TokenError> {
    if token.len() > MAX_TOKEN_LEN || token.len() < (FIXED + 5 + TAG) * 4 / 3 {
        return Err(TokenError::Malformed);
    }
    // Typical tokens are a few hundred bytes: decode them on the stack without zeroing kilobytes;
    // only unusually long ones (long subjects or scopes) pay for a heap buffer.
    let mut small = [0u8; SMALL];
    let mut large = Vec::new();
    let buf: &mut [u8] = if token.len() <= SMALL / 3 * 4 {
        &mut small
    } else {
        large.resize(MAX_RAW + 3, 0);
        &mut large
    };
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode_slice(token.as_bytes(), buf)
        .map_err(|_| TokenError::Malformed)?;
    let raw = &buf[..n];
    if n < FIXED + 5 + TAG || !matches!(raw[0], VERSION | VERSION_AUDIENCE) {
        return Err(TokenError::Malformed);
    }
    let key_id = u32::from_be_bytes([raw[1], raw[2], raw[3], raw[4]]);
    let key = keys.verifier(key_id).ok_or(TokenError::UnknownKey)?;
    let (body, tag) = raw.split_at(n - TAG);
    key.mac
        .clone()
        .chain_update(body)
        .verify_slice(tag)
        .map_err(|_| TokenError::BadSignature)?;
    let claims = parse_body(body).ok_or(TokenError::Malformed)?;
    if now >= claims.expires_at {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// The revocation half of [`validate`]: the grant's access revoked at or after issue, or the
/// subject's credential version moved on. Whole seconds suffice in both directions: issuing stamps
/// a token after the grant's last revocation, and the store records a revocation after the grant's
/// previous one ([`issue`](crate::issue) explains why that is race-free), so a token issued before a
/// revocation is refused and one issued after it is not, even within one second.
pub(crate) fn check_revocation(
    claims: &AccessClaims,
    view: &dyn RevocationView,
) -> Result<(), TokenError> {
    let (revoked_at, version) = view.status(&claims.grant_id, &claims.subject);
    if revoked_at.is_some_and(|at| claims.issued_at <= at) || version != claims.credential_version {
        return Err(TokenError::Revoked);
    }
    Ok(())
}

fn parse_body(body: &[u8]) -> Option<AccessClaims> {
    let mut r = Reader(body);
    let version = r.take(5)?[0];
    let grant_id = GrantId(r.take(16)?.try_into().ok()?);
    let issued_at = u64::from_be_bytes(r.take(8)?.try_into().ok()?);
    let expires_at = u64::from_be_bytes(r.take(8)?.try_into().ok()?);
    let credential_version = u32::from_be_bytes(r.take(4)?.try_into().ok()?);
    let subject_len = u16::from_be_bytes(r.take(2)?.try_into().ok()?) as usize;
    let subject = std::str::from_utf8(r.take(subject_len)?).ok()?.to_owned();
    let client_len = r.take(1)?[0] as usize;
    let client_id = std::str::from_utf8(r.take(client_len)?).ok()?.to_owned();
    let scope_len = u16::from_be_bytes(r.take(2)?.try_into().ok()?) as usize;
    let scope = Scope::parse(std::str::from_utf8(r.take(scope_len)?).ok()?).ok()?;
    let audience = if version == VERSION_AUDIENCE {
        parse_audience(&mut r)?
    } else {
        Audience::default()
    };
    if !r.0.is_empty() {
        return None;
    }
    Some(AccessClaims {
        grant_id,
        subject,
        client_id,
        scope,
        issued_at,
        expires_at,
        credential_version,
        audience,
    })
}

/// The audience of a version 2 token (out of line: version 1 tokens never pay for it).
#[inline(never)]
fn parse_audience(r: &mut Reader<'_>) -> Option<Audience> {
    let count = r.take(1)?[0] as usize;
    let (audience, rest) = Audience::read(count, r.0)?;
    r.0 = rest;
    Some(audience)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NothingRevoked;

    fn keys() -> KeyRing {
        KeyRing::new(TokenKey::new(7, &[0x42; 32]).unwrap(), Vec::new()).unwrap()
    }

    fn claims(audience: &[&str]) -> AccessClaims {
        AccessClaims {
            grant_id: GrantId([9; 16]),
            subject: "alice".to_owned(),
            client_id: "tb".to_owned(),
            scope: Scope::parse("mail").unwrap(),
            issued_at: 1000,
            expires_at: 4600,
            credential_version: 0,
            audience: Audience::new(audience).unwrap(),
        }
    }

    /// The bytes of the format table, written out by hand, then tagged with HMAC-SHA256.
    fn by_hand(version: u8, audience: &[&str]) -> String {
        let mut raw = vec![version, 0, 0, 0, 7];
        raw.extend_from_slice(&[9; 16]);
        raw.extend_from_slice(&1000u64.to_be_bytes());
        raw.extend_from_slice(&4600u64.to_be_bytes());
        raw.extend_from_slice(&0u32.to_be_bytes());
        raw.extend_from_slice(&[0, 5]);
        raw.extend_from_slice(b"alice");
        raw.extend_from_slice(&[2]);
        raw.extend_from_slice(b"tb");
        raw.extend_from_slice(&[0, 4]);
        raw.extend_from_slice(b"mail");
        if version == 2 {
            raw.push(audience.len() as u8);
            for a in audience {
                raw.push(a.len() as u8);
                raw.extend_from_slice(a.as_bytes());
            }
        }
        let tag = HmacSha256::new_from_slice(&[0x42; 32])
            .unwrap()
            .chain_update(&raw)
            .finalize()
            .into_bytes();
        raw.extend_from_slice(&tag);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    #[test]
    fn a_token_without_audience_is_version_1_byte_for_byte() {
        let token = issue(&keys(), &claims(&[])).unwrap();
        assert_eq!(token, by_hand(1, &[]));
        let back = validate(&keys(), &token, 2000, &NothingRevoked).unwrap();
        assert_eq!(back, claims(&[]));
    }

    #[test]
    fn a_token_with_audience_is_version_2_and_round_trips() {
        let audience = ["imap://mail.example.com", "https://mail.example.com/jmap"];
        let token = issue(&keys(), &claims(&audience)).unwrap();
        assert_eq!(token, by_hand(2, &audience));
        let back = validate(&keys(), &token, 2000, &NothingRevoked).unwrap();
        assert_eq!(back, claims(&audience));
        assert!(back.is_for("imap://mail.example.com", false));
        assert!(!back.is_for("smtp://mail.example.com", true));
        assert!(claims(&[]).is_for("smtp://mail.example.com", true));
        assert!(!claims(&[]).is_for("smtp://mail.example.com", false));
    }

    #[test]
    fn audiences_the_format_cannot_hold_are_refused_at_issue() {
        let long = format!("https://example.com/{}", "a".repeat(MAX_RESOURCE));
        assert_eq!(Audience::new([&long]), None);
        assert_eq!(Audience::new([""]), None);
        assert_eq!(
            Audience::new::<[&str; 0], &str>([]),
            Some(Audience::default())
        );
        let many: Vec<String> = (0..=MAX_AUDIENCE)
            .map(|i| format!("imap://h{i}.example"))
            .collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(Audience::new(&refs), None);
        let full = &refs[..MAX_AUDIENCE];
        let token = issue(&keys(), &claims(full)).unwrap();
        let back = validate(&keys(), &token, 2000, &NothingRevoked).unwrap();
        assert_eq!(back.audience.iter().collect::<Vec<_>>(), full);
        // Identifiers with a space or a control character could not be told apart once read.
        for bad in ["imap://a b", "imap://a\u{1}", " imap://a"] {
            assert_eq!(Audience::new([bad]), None);
        }
        // What `Audience::new` would refuse is refused at issue too.
        for raw in [
            &b"\x08imap://a\x00"[..],
            b"\x09 imap://a",
            b"\x09imap://a\x01",
            b"\x09imap://a",
        ] {
            let c = AccessClaims {
                audience: Audience(raw.into()),
                ..claims(&[])
            };
            assert_eq!(issue(&keys(), &c), Err(TokenError::Malformed));
        }
    }

    #[test]
    fn signed_but_inconsistent_audiences_are_malformed() {
        // Correctly tagged bytes whose audience part is wrong: the parser, not the tag, refuses.
        let sign_raw = |mut raw: Vec<u8>| {
            let tag = HmacSha256::new_from_slice(&[0x42; 32])
                .unwrap()
                .chain_update(&raw)
                .finalize()
                .into_bytes();
            raw.extend_from_slice(&tag);
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        };
        let body = |version: u8, tail: &[u8]| {
            let good = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(by_hand(1, &[]))
                .unwrap();
            let mut raw = good[..good.len() - TAG].to_vec();
            raw[0] = version;
            raw.extend_from_slice(tail);
            raw
        };
        for (version, tail) in [
            (2u8, &[][..]),                     // version 2 without an audience
            (2, &[0][..]),                      // zero resources
            (2, &[1, 0][..]),                   // an empty resource
            (2, &[1, 5, b'a'][..]),             // shorter than its length
            (2, &[1, 1, b'a', 0][..]),          // trailing bytes
            (2, &[1, 3, b'a', b' ', b'b'][..]), // a space inside an identifier
            (1, &[1, 1, b'a'][..]),             // an audience in version 1
            (3, &[][..]),                       // unknown version
        ] {
            assert_eq!(
                validate(
                    &keys(),
                    &sign_raw(body(version, tail)),
                    2000,
                    &NothingRevoked
                ),
                Err(TokenError::Malformed),
                "{version} {tail:?}"
            );
        }
    }
}
