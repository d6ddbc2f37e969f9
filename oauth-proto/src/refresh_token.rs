//! The refresh token format, and what a presented token is to its grant's family.
//!
//! A refresh token is `rt.` (`rtp.` when issued to a public client) followed by the unpadded
//! base64url form of 72 bytes: the grant id (16), the grant's family secret (16), fresh random
//! bytes (32) and a check (8: the start of the SHA-256 of the 64 before it). Stores keep only
//! SHA-256 hashes: of the whole token (the family's `current` and `previous`) and of the family
//! secret ([`RefreshFamily::family`]).
//!
//! Why a token names its grant: a store then finds the token's family by the grant id and
//! rotates it by updating that one row or entry ([`RefreshFamily`]), instead of inserting a record
//! per token and keeping every rotated one (for reuse detection) in an index by hash. On
//! PostgreSQL that is one in-place (HOT) update per refresh instead of an update, an insert and
//! three index entries.
//!
//! Why it carries the family secret: reuse detection (RFC 9700 §4.14.2) revokes the grant when a
//! rotated token is presented again, however old. With the family secret, a token that names a
//! grant but is neither its current nor its previous token is told apart: it carries the secret
//! (an older token of the grant: reuse, which revokes) or not (never issued for the grant: unknown,
//! which revokes nothing). A grant id alone is no secret (access tokens name theirs), so without
//! the family secret anyone could revoke anyone's grant by presenting a made-up token naming it.
//! Only a holder of one of the grant's tokens knows it, and such a holder can present that token.
//!
//! Why the check: a token damaged on its way (a changed character) fails it and is unknown, as
//! any other string is, instead of passing for an older token of its family and revoking the
//! grant. It is no MAC (anyone can compute it): what keeps a stranger from naming a grant is the
//! family secret, and the token as a whole is only ever accepted by its hash.//!
//! Why `rtp.`: a client's kind never changes (neither registration updates nor the operator can
//! turn one into the other), and the prefix is part of the hashed token, so a token carrying it
//! was issued to a public client: the token endpoint may then read and rotate it in one step,
//! before it has read the client ([`Op::RefreshPublic`](crate::store::Op::RefreshPublic)).
//!
//! Tokens issued before this format carry none of it: they are found by their hash
//! ([`RefreshKey::Legacy`]), and their rotation starts a family secret.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::random::Random;
use crate::secret::{Secret, SecretHash};
use crate::store::{GrantId, RefreshFamily, RefreshKey};

const PREFIX: &str = "rt.";
const PUBLIC_PREFIX: &str = "rtp.";
/// Bytes of the family secret: 128 bits, as unguessable as RFC 6749 §10.10 asks of a token.
const FAMILY_BYTES: usize = 16;
/// Fresh random bytes in every token: 256 bits.
const RANDOM_BYTES: usize = 32;
/// Bytes of the check.
const CHECK_BYTES: usize = 8;
/// The bytes the check covers.
const CHECKED_BYTES: usize = 16 + FAMILY_BYTES + RANDOM_BYTES;
const BODY_BYTES: usize = CHECKED_BYTES + CHECK_BYTES;

/// A grant's family secret. `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct FamilySecret([u8; FAMILY_BYTES]);

impl FamilySecret {
    /// A new random family secret, for a new grant or a family adopted without one.
    pub(crate) fn generate(rng: &mut dyn Random) -> Self {
        let mut secret = [0u8; FAMILY_BYTES];
        rng.fill(&mut secret);
        FamilySecret(secret)
    }

    /// The hash stores keep ([`RefreshFamily::family`]).
    pub(crate) fn hash(&self) -> SecretHash {
        SecretHash::of_bytes(&self.0)
    }
}

impl std::fmt::Debug for FamilySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FamilySecret(<redacted>)")
    }
}

/// A new refresh token of `grant_id`'s family `family`, for a public client or not.
pub(crate) fn mint(
    rng: &mut dyn Random,
    grant_id: GrantId,
    family: &FamilySecret,
    public: bool,
) -> Secret {
    let mut body = [0u8; BODY_BYTES];
    body[..16].copy_from_slice(&grant_id.0);
    body[16..16 + FAMILY_BYTES].copy_from_slice(&family.0);
    rng.fill(&mut body[16 + FAMILY_BYTES..CHECKED_BYTES]);
    let check = check(&body[..CHECKED_BYTES]);
    body[CHECKED_BYTES..].copy_from_slice(&check);
    let prefix = if public { PUBLIC_PREFIX } else { PREFIX };
    Secret::new(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(body)))
}

/// The check of a token's first [`CHECKED_BYTES`].
fn check(checked: &[u8]) -> [u8; CHECK_BYTES] {
    let digest = SecretHash::of_bytes(checked).0;
    let mut check = [0u8; CHECK_BYTES];
    check.copy_from_slice(&digest[..CHECK_BYTES]);
    check
}

/// A presented refresh token, parsed.
#[derive(Debug)]
pub(crate) struct Presented {
    /// SHA-256 of the whole token.
    pub(crate) hash: SecretHash,
    /// What the token names, when it is in the current format.
    pub(crate) names: Option<Names>,
}

/// What a token in the current format names and carries.
#[derive(Debug)]
pub(crate) struct Names {
    /// Its grant.
    pub(crate) grant_id: GrantId,
    /// Its family secret.
    pub(crate) family: FamilySecret,
    /// Issued to a public client (`rtp.`).
    pub(crate) public: bool,
}

impl Presented {
    /// Parses `token`. Anything not in the current format is taken for a token issued before it,
    /// known (if at all) by its hash.
    pub(crate) fn parse(token: &str) -> Self {
        let (public, body) = match (
            token.strip_prefix(PUBLIC_PREFIX),
            token.strip_prefix(PREFIX),
        ) {
            (Some(body), _) => (true, Some(body)),
            (None, Some(body)) => (false, Some(body)),
            (None, None) => (false, None),
        };
        let mut bytes = [0u8; BODY_BYTES];
        let names = body
            .filter(|b| b.len() == URL_SAFE_NO_PAD_LEN)
            .and_then(|b| URL_SAFE_NO_PAD.decode_slice(b, &mut bytes).ok())
            .filter(|&n| n == BODY_BYTES)
            .filter(|_| check(&bytes[..CHECKED_BYTES]) == bytes[CHECKED_BYTES..])
            .map(|_| {
                let mut grant = [0u8; 16];
                grant.copy_from_slice(&bytes[..16]);
                let mut family = [0u8; FAMILY_BYTES];
                family.copy_from_slice(&bytes[16..16 + FAMILY_BYTES]);
                Names {
                    grant_id: GrantId(grant),
                    family: FamilySecret(family),
                    public,
                }
            });
        Presented {
            hash: SecretHash::of(token),
            names,
        }
    }

    /// How a store finds the token's family.
    pub(crate) fn key(&self) -> RefreshKey {
        match &self.names {
            Some(names) => RefreshKey::Grant(names.grant_id),
            None => RefreshKey::Legacy(self.hash),
        }
    }

    /// What this token is to `family`, which a store found by [`Presented::key`].
    pub(crate) fn standing(&self, family: &RefreshFamily) -> Standing {
        // A token in the current format must carry the family's secret; one issued before it was
        // found among the store's own tokens by its hash, so it is one of the family's.
        let carries_secret = match (&self.names, &family.family) {
            (Some(names), Some(hash)) => names.family.hash().ct_eq(hash),
            (Some(_), None) => false,
            (None, _) => true,
        };
        if !carries_secret {
            return Standing::Foreign;
        }
        if self.hash.ct_eq(&family.current) {
            return Standing::Current;
        }
        match family.previous {
            Some(previous) if previous.hash.ct_eq(&self.hash) => Standing::Previous(previous.at),
            _ => Standing::Older,
        }
    }

    /// The family secret a successor of this token carries: its own, or for a token issued
    /// before families a new one.
    pub(crate) fn successor_family(&self, rng: &mut dyn Random) -> FamilySecret {
        match &self.names {
            Some(names) => names.family.clone(),
            None => FamilySecret::generate(rng),
        }
    }
}

/// The length of [`BODY_BYTES`] in unpadded base64url.
const URL_SAFE_NO_PAD_LEN: usize = (BODY_BYTES * 4).div_ceil(3);

/// What a presented token is to the family its key found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Standing {
    /// The family's current token.
    Current,
    /// The token the current one replaced, rotated out at the given time.
    Previous(u64),
    /// An older token of the family: presented again, reuse.
    Older,
    /// Not a token of this family.
    Foreign,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Rotated;

    fn counter() -> impl FnMut(&mut [u8]) {
        let mut n = 0u8;
        move |buf: &mut [u8]| {
            for b in buf {
                n = n.wrapping_add(1);
                *b = n;
            }
        }
    }

    #[test]
    fn a_minted_token_names_its_grant_and_family() {
        let mut rng = counter();
        let family = FamilySecret::generate(&mut rng);
        let token = mint(&mut rng, GrantId([7; 16]), &family, true);
        assert!(token.expose().starts_with("rtp."));
        let presented = Presented::parse(token.expose());
        assert_eq!(presented.hash, token.hash());
        let names = presented.names.as_ref().expect("current format");
        assert_eq!((names.grant_id, names.public), (GrantId([7; 16]), true));
        assert_eq!(names.family, family);
        let private = mint(&mut rng, GrantId([7; 16]), &family, false);
        assert!(private.expose().starts_with("rt.") && !private.expose().starts_with("rtp."));
        assert_ne!(private, token);
    }

    #[test]
    fn anything_else_is_known_by_its_hash_only() {
        for token in ["", "rt.", "rt.short", "p.abc", "rtp.!!!", "xyz"] {
            let presented = Presented::parse(token);
            assert!(presented.names.is_none(), "{token}");
            assert_eq!(presented.key(), RefreshKey::Legacy(SecretHash::of(token)));
        }
        let mut rng = counter();
        let good = mint(&mut rng, GrantId([1; 16]), &FamilySecret([2; 16]), false);
        let longer = format!("{}A", good.expose());
        assert!(Presented::parse(&longer).names.is_none());
        assert!(Presented::parse(good.expose()).names.is_some());
        // Any changed character fails the check (or the decoding).
        for i in "rt.".len()..good.expose().len() {
            let mut damaged = good.expose().as_bytes().to_vec();
            damaged[i] = if damaged[i] == b'A' { b'B' } else { b'A' };
            let damaged = String::from_utf8(damaged).unwrap();
            assert!(Presented::parse(&damaged).names.is_none(), "{i}");
        }
    }

    #[test]
    fn standing_tells_current_previous_older_and_foreign_apart() {
        let mut rng = counter();
        let secret = FamilySecret::generate(&mut rng);
        let grant = GrantId([3; 16]);
        let [older, previous, current] = [(); 3].map(|_| mint(&mut rng, grant, &secret, false));
        let family = RefreshFamily {
            grant_id: grant,
            family: Some(secret.hash()),
            current: current.hash(),
            issued_at: 10,
            expires_at: 100,
            previous: Some(Rotated {
                hash: previous.hash(),
                at: 10,
            }),
        };
        let standing = |t: &Secret| Presented::parse(t.expose()).standing(&family);
        assert_eq!(standing(&current), Standing::Current);
        assert_eq!(standing(&previous), Standing::Previous(10));
        assert_eq!(standing(&older), Standing::Older);
        let stranger = mint(&mut rng, grant, &FamilySecret([9; 16]), false);
        assert_eq!(standing(&stranger), Standing::Foreign);
        let adopted = RefreshFamily {
            family: None,
            ..family.clone()
        };
        assert_eq!(
            Presented::parse(current.expose()).standing(&adopted),
            Standing::Foreign
        );
        let legacy = Secret::new("legacy-token");
        let legacy_family = RefreshFamily {
            current: legacy.hash(),
            ..adopted
        };
        assert_eq!(
            Presented::parse(legacy.expose()).standing(&legacy_family),
            Standing::Current
        );
        assert_eq!(
            Presented::parse("another-legacy").standing(&legacy_family),
            Standing::Older
        );
    }
}
