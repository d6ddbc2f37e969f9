//! A public client's refresh in one store op ([`Op::RefreshPublic`], issue 19).
//!
//! Refresh tokens issued to public clients start with `rtp.`; a plain refresh with such a token and
//! no client secret reads and rotates its family in one op. These tests pin down when the engine asks that
//! op rather than `GetRefresh` then `RotateRefresh`, that the store rotates only what the request
//! may rotate (a refused request leaves the token as it was), and the two refusals that can
//! follow a one-step rotation (stale credentials, a client no longer allowed `refresh_token`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use conformance::store_contract::fixtures;
use conformance::*;
use oauth_proto::access_token::TokenError;
use oauth_proto::client::{ClientKind, ClientRecord, GrantType};
use oauth_proto::config::Config;
use oauth_proto::response::Response;
use oauth_proto::secret::SecretHash;
use oauth_proto::store::{
    Effect, GrantId, Op, RefreshFamily, RefreshGrant, RefreshKey, Reply, Rotated, Store,
};

const WEB_QUERY: &str = "response_type=code&client_id=web&redirect_uri=https%3A%2F%2Fclient.example.com%2Fcb&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256";

/// The prefix of refresh tokens issued to public clients.
const PUBLIC_PREFIX: &str = "rtp.";

fn err(r: &Response) -> String {
    json(r)["error"].as_str().unwrap_or_default().to_owned()
}

/// A public client `app`'s grant for `bob`: (harness, access token, refresh token).
fn public_grant() -> (Harness, String, String) {
    let mut h = Harness::default();
    h.public_client();
    let code = h.code_for(&format!("response_type=code&client_id=app&code_challenge={CHALLENGE}&code_challenge_method=S256"), "bob");
    let r = h.token(
        &format!(
            "grant_type=authorization_code&code={code}&client_id=app&code_verifier={VERIFIER}"
        ),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let j = json(&r);
    (
        h,
        j["access_token"].as_str().unwrap().to_owned(),
        j["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// A refresh by `client_id` (no secret) with `rt` and `extra` form parameters: the response and
/// the names of the ops it asked.
fn refresh_as(h: &mut Harness, client_id: &str, rt: &str, extra: &str) -> (Response, Vec<String>) {
    let (r, asked) = h.token_asking(
        &format!("grant_type=refresh_token&refresh_token={rt}&client_id={client_id}{extra}"),
        None,
    );
    (r, op_names(&asked))
}

/// `app`'s plain refresh.
fn plain(h: &mut Harness, rt: &str) -> (Response, Vec<String>) {
    refresh_as(h, "app", rt, "")
}

/// The tokens of a successful response: (access token, refresh token).
fn issued(r: &Response) -> (String, String) {
    assert_eq!(r.status, 200, "{}", r.body);
    let j = json(r);
    (
        j["access_token"]
            .as_str()
            .expect("an access token")
            .to_owned(),
        j["refresh_token"]
            .as_str()
            .expect("a refresh token")
            .to_owned(),
    )
}

/// What the store holds for the family of the raw refresh token `rt`.
fn stored(h: &Harness, rt: &str) -> RefreshGrant {
    match h.store.execute(Op::GetRefresh {
        key: RefreshKey::of(rt),
    }) {
        Ok(Reply::Refresh(Some(found))) => found,
        other => panic!("the refresh token's family is stored: {other:?}"),
    }
}

/// Whether `rt` is its family's current token.
fn is_current(h: &Harness, rt: &str) -> bool {
    stored(h, rt).family.current == SecretHash::of(rt)
}

/// A refresh token in the current format, made here byte by byte as `oauth_proto`'s private
/// `refresh_token` module documents it: `rtp.`, then base64url of the grant id, the family
/// secret, 32 random bytes and the first 8 bytes of the SHA-256 of those 64.
fn public_token(grant: [u8; 16], family: [u8; 16], random: u8) -> String {
    let mut body = Vec::with_capacity(72);
    body.extend_from_slice(&grant);
    body.extend_from_slice(&family);
    body.extend_from_slice(&[random; 32]);
    let check = SecretHash::of_bytes(&body).0;
    body.extend_from_slice(&check[..8]);
    format!("{PUBLIC_PREFIX}{}", URL_SAFE_NO_PAD.encode(body))
}

fn client_record(h: &Harness, client_id: &str) -> ClientRecord {
    match h.store.execute(Op::GetClient {
        client_id: client_id.to_owned(),
    }) {
        Ok(Reply::Client(Some(c))) => (*c).clone(),
        other => panic!("{client_id} is registered: {other:?}"),
    }
}

/// A plain refresh asks one op; its successor carries the prefix and refreshes the same way; the
/// first token presented again is reuse, found by that same single op, and revokes the grant.
#[test]
fn a_public_clients_plain_refresh_asks_one_op_and_reuse_still_revokes_the_grant() {
    let (mut h, _, rt1) = public_grant();
    assert!(rt1.starts_with(PUBLIC_PREFIX), "{rt1}");
    h.now += 10;
    let (r, ops) = plain(&mut h, &rt1);
    assert_eq!(ops, ["RefreshPublic"]);
    let (at2, rt2) = issued(&r);
    assert!(rt2.starts_with(PUBLIC_PREFIX), "{rt2}");
    assert_ne!(rt2, rt1);
    assert_eq!(h.validate(&at2).map(|c| c.client_id), Ok("app".to_owned()));
    assert!(!is_current(&h, &rt1));
    assert!(is_current(&h, &rt2));

    h.now += 10;
    let (r, ops) = plain(&mut h, &rt2);
    assert_eq!(ops, ["RefreshPublic"]);
    let (_, rt3) = issued(&r);
    assert!(rt3.starts_with(PUBLIC_PREFIX), "{rt3}");

    h.now += 10;
    let (r, ops) = plain(&mut h, &rt1);
    assert_eq!(ops, ["RefreshPublic"]);
    assert_eq!((r.status, err(&r).as_str()), (400, "invalid_grant"));
    assert!(json(&r).get("access_token").is_none());
    assert!(stored(&h, &rt1).grant.revoked_at.is_some());
    assert_eq!(h.validate(&at2), Err(TokenError::Revoked));
    assert_eq!(err(&plain(&mut h, &rt3).0), "invalid_grant");
}

/// Only tokens issued to public clients carry the prefix; a confidential client's refresh reads
/// its token with `GetRefresh` first.
#[test]
fn a_confidential_clients_refresh_token_has_no_prefix_and_is_read_first() {
    let mut h = Harness::default();
    let s = h.confidential_client();
    let code = h.code_for(WEB_QUERY, "alice");
    let auth = basic("web", s.expose());
    let r = h.token(&format!("grant_type=authorization_code&code={code}&redirect_uri=https%3A%2F%2Fclient.example.com%2Fcb&code_verifier={VERIFIER}"), Some(&auth));
    let (_, rt) = issued(&r);
    assert!(!rt.starts_with(PUBLIC_PREFIX), "{rt}");
    let (r, asked) = h.token_asking(
        &format!("grant_type=refresh_token&refresh_token={rt}"),
        Some(&auth),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        op_names(&asked).first().map(String::as_str),
        Some("GetRefresh")
    );
    assert!(!op_names(&asked).iter().any(|n| n == "RefreshPublic"));
}

/// A narrowing `scope` takes the two-step path (read, then rotate) and succeeds.
#[test]
fn a_refresh_that_narrows_the_scope_takes_two_steps() {
    let (mut h, _, rt) = public_grant();
    let (r, ops) = refresh_as(&mut h, "app", &rt, "&scope=mail");
    assert_eq!(ops, ["GetRefresh", "RotateRefresh"]);
    let (_, new) = issued(&r);
    assert_eq!(json(&r)["scope"], "mail");
    assert!(new.starts_with(PUBLIC_PREFIX), "{new}");
}

/// A public client presenting a secret takes the two-step path, is refused as invalid_client
/// before any rotation, and its token stays usable.
#[test]
fn a_secret_presented_for_a_public_client_is_refused_without_rotating() {
    let (mut h, _, rt) = public_grant();
    let (r, asked) = h.token_asking(
        &format!("grant_type=refresh_token&refresh_token={rt}"),
        Some(&basic("app", "some-secret-0123456789")),
    );
    let ops = op_names(&asked);
    assert_eq!((r.status, err(&r).as_str()), (401, "invalid_client"));
    // Read, then refused on the client the read carries: nothing rotated.
    assert_eq!(ops, ["GetRefresh"]);
    assert!(is_current(&h, &rt));
    let (r, ops) = plain(&mut h, &rt);
    assert_eq!(ops, ["RefreshPublic"]);
    issued(&r);
}

/// A `resource` parameter takes the two-step path; naming a resource this server does not know
/// is invalid_target and leaves the token usable.
#[test]
fn a_refresh_naming_a_resource_takes_two_steps_and_a_refusal_keeps_the_token() {
    let (mut h, _, rt) = public_grant();
    let (r, ops) = refresh_as(
        &mut h,
        "app",
        &rt,
        "&resource=https%3A%2F%2Fmail.example%2F",
    );
    assert_eq!((r.status, err(&r).as_str()), (400, "invalid_target"));
    assert_eq!(ops, ["GetRefresh"]);
    assert!(is_current(&h, &rt));
    let (r, ops) = plain(&mut h, &rt);
    assert_eq!(ops, ["RefreshPublic"]);
    issued(&r);
}

/// Another public client naming itself with `app`'s token: the store does not rotate it, the
/// request is invalid_grant, and `app` can still use it.
#[test]
fn another_public_client_cannot_rotate_the_token() {
    let (mut h, _, rt) = public_grant();
    h.add_client(
        "other",
        ClientKind::Public,
        &["http://127.0.0.1/other"],
        &[GrantType::AuthorizationCode, GrantType::RefreshToken],
        "mail offline_access",
    );
    let (r, ops) = refresh_as(&mut h, "other", &rt, "");
    assert_eq!(ops.first().map(String::as_str), Some("RefreshPublic"));
    assert!(!ops.iter().any(|n| n == "RotateRefresh"), "{ops:?}");
    assert_eq!((r.status, err(&r).as_str()), (400, "invalid_grant"));
    assert!(is_current(&h, &rt));
    assert!(stored(&h, &rt).grant.revoked_at.is_none());
    let (r, ops) = plain(&mut h, &rt);
    assert_eq!(ops, ["RefreshPublic"]);
    issued(&r);
}

/// An expired token is not rotated: invalid_grant, the record as it was.
#[test]
fn an_expired_token_is_not_rotated() {
    let (mut h, _, rt) = public_grant();
    h.now += Config::default().refresh_token_ttl_secs;
    let (r, ops) = plain(&mut h, &rt);
    assert_eq!(ops, ["RefreshPublic"]);
    assert_eq!((r.status, err(&r).as_str()), (400, "invalid_grant"));
    assert!(is_current(&h, &rt));
    // One second earlier it would have been rotated: the bound is the expiry itself.
    let (mut h, _, rt) = public_grant();
    h.now += Config::default().refresh_token_ttl_secs - 1;
    let (r, ops) = plain(&mut h, &rt);
    assert_eq!(ops, ["RefreshPublic"]);
    issued(&r);
    assert!(!is_current(&h, &rt));
}

/// A token of a revoked grant is not rotated: invalid_grant, the record as it was.
#[test]
fn a_token_of_a_revoked_grant_is_not_rotated() {
    let (mut h, at, rt) = public_grant();
    let grant_id = stored(&h, &rt).grant.grant_id;
    h.now += 5;
    h.apply(vec![Effect::RevokeGrant {
        grant_id,
        at: h.now,
        keep_until: h.engine.revocation_keep_until(h.now),
    }]);
    assert_eq!(h.validate(&at), Err(TokenError::Revoked));
    h.now += 5;
    let (r, ops) = plain(&mut h, &rt);
    assert_eq!(ops, ["RefreshPublic"]);
    assert_eq!((r.status, err(&r).as_str()), (400, "invalid_grant"));
    assert!(json(&r).get("access_token").is_none());
    assert!(is_current(&h, &rt));
}

/// A token whose grant's client is not registered (deleted, say) is not rotated, whether the
/// request names that client (invalid_client: no such client) or a registered one
/// (invalid_grant: not its token).
#[test]
fn a_token_of_an_unregistered_client_is_not_rotated() {
    let (mut h, _, _) = public_grant();
    let rt = &public_token([7; 16], [8; 16], 9);
    let ttl = Config::default().refresh_token_ttl_secs;
    let mut grant = fixtures::grant(7, "ghost", "bob", h.now + ttl);
    grant.grant_id = GrantId([7; 16]);
    h.apply(vec![
        Effect::PutGrant(grant),
        Effect::PutRefreshFamily(RefreshFamily {
            grant_id: GrantId([7; 16]),
            family: Some(SecretHash::of_bytes(&[8; 16])),
            current: SecretHash::of(rt),
            issued_at: h.now,
            expires_at: h.now + ttl,
            previous: None,
        }),
    ]);
    let before = stored(&h, rt);
    assert!(before.client.is_none());
    assert!(is_current(&h, rt));
    h.now += 5;
    let (r, ops) = refresh_as(&mut h, "ghost", rt, "");
    assert_eq!(ops.first().map(String::as_str), Some("RefreshPublic"));
    assert!(!ops.iter().any(|n| n == "RotateRefresh"), "{ops:?}");
    assert_eq!((r.status, err(&r).as_str()), (401, "invalid_client"));
    assert_eq!(stored(&h, rt), before);
    let (r, ops) = refresh_as(&mut h, "app", rt, "");
    assert_eq!(ops.first().map(String::as_str), Some("RefreshPublic"));
    assert_eq!((r.status, err(&r).as_str()), (400, "invalid_grant"));
    assert_eq!(stored(&h, rt), before);
}

/// The i88 race for a public client: a grant stored, unrevoked, after its subject's credentials
/// changed is rotated by the one-step op (the store cannot see credential versions), then refused
/// and revoked.
#[test]
fn a_public_grant_stored_after_a_racing_credential_change_is_refused_and_revoked() {
    let (mut h, _, rt) = public_grant();
    let found = stored(&h, &rt);
    h.apply(h.engine.revoke_subject("bob", h.now));
    h.apply(vec![
        Effect::PutGrant(found.grant.clone()),
        Effect::PutRefreshFamily(found.family.clone()),
    ]);
    assert!(stored(&h, &rt).grant.revoked_at.is_none());
    h.now += 5;
    let (r, ops) = plain(&mut h, &rt);
    assert_eq!(ops, ["RefreshPublic"]);
    assert_eq!((r.status, err(&r).as_str()), (400, "invalid_grant"));
    assert!(json(&r).get("access_token").is_none());
    assert!(json(&r).get("refresh_token").is_none());
    let after = stored(&h, &rt);
    assert!(!is_current(&h, &rt), "rotated by the one-step op");
    assert!(
        after.grant.revoked_at.is_some(),
        "the stale grant is revoked"
    );
}

/// A client whose registration no longer allows `refresh_token`: the one-step op rotates its
/// token, the request is unauthorized_client, and the token is rotated out, so once the grant
/// type is allowed again presenting it is reuse (as refresh.rs's module docs say).
#[test]
fn a_client_no_longer_allowed_refresh_is_refused_after_the_rotation() {
    let (mut h, at, rt) = public_grant();
    let allowed = client_record(&h, "app");
    let mut disallowed = allowed.clone();
    disallowed
        .grant_types
        .retain(|g| *g != GrantType::RefreshToken);
    assert_ne!(disallowed.grant_types, allowed.grant_types);
    h.apply(vec![Effect::PutClient(disallowed)]);
    h.now += 5;
    let (r, ops) = plain(&mut h, &rt);
    assert_eq!(ops, ["RefreshPublic"]);
    assert_eq!((r.status, err(&r).as_str()), (400, "unauthorized_client"));
    assert!(json(&r).get("access_token").is_none());
    assert!(json(&r).get("refresh_token").is_none());
    let after = stored(&h, &rt);
    assert!(!is_current(&h, &rt));
    assert!(after.grant.revoked_at.is_none());
    assert_eq!(h.validate(&at).map(|_| ()), Ok(()));

    h.apply(vec![Effect::PutClient(allowed)]);
    h.now += 5;
    let (r, ops) = plain(&mut h, &rt);
    assert_eq!(ops, ["RefreshPublic"]);
    assert_eq!((r.status, err(&r).as_str()), (400, "invalid_grant"));
    assert!(stored(&h, &rt).grant.revoked_at.is_some());
    assert_eq!(h.validate(&at), Err(TokenError::Revoked));
}

/// A made-up token that names a real grant but not its family secret is unknown: refused, and
/// nothing revoked or rotated (a grant id is no secret: access tokens name theirs).
#[test]
fn a_token_naming_a_grant_without_its_family_secret_revokes_nothing() {
    let (mut h, at, rt) = public_grant();
    let grant_id = stored(&h, &rt).grant.grant_id;
    let before = stored(&h, &rt);
    for family in [[0; 16], [0xff; 16]] {
        let forged = public_token(grant_id.0, family, 1);
        let (r, ops) = plain(&mut h, &forged);
        assert_eq!(ops, ["RefreshPublic"]);
        assert_eq!((r.status, err(&r).as_str()), (400, "invalid_grant"));
        assert!(json(&r)["error_description"]
            .as_str()
            .unwrap()
            .contains("unknown"));
        // The same through the two-step path (a narrowing scope).
        let (r, ops) = refresh_as(&mut h, "app", &forged, "&scope=mail");
        assert_eq!(ops, ["GetRefresh"]);
        assert_eq!((r.status, err(&r).as_str()), (400, "invalid_grant"));
    }
    assert_eq!(stored(&h, &rt), before);
    assert_eq!(h.validate(&at).map(|_| ()), Ok(()));
    issued(&plain(&mut h, &rt).0);
}

/// Reuse is detected however old the token: after many rotations, the first token presented
/// again revokes the grant, though the store keeps no record of it.
#[test]
fn a_token_rotated_out_long_ago_is_still_reuse() {
    let (mut h, _, rt1) = public_grant();
    let mut rt = rt1.clone();
    let mut at = String::new();
    for _ in 0..20 {
        h.now += 60;
        (at, rt) = issued(&plain(&mut h, &rt).0);
    }
    let family = stored(&h, &rt).family;
    assert_eq!(family.current, SecretHash::of(&rt));
    assert_ne!(family.previous.map(|p| p.hash), Some(SecretHash::of(&rt1)));
    h.now += 60;
    let (r, _) = plain(&mut h, &rt1);
    assert_eq!((r.status, err(&r).as_str()), (400, "invalid_grant"));
    assert!(json(&r)["error_description"]
        .as_str()
        .unwrap()
        .contains("already used"));
    assert!(stored(&h, &rt).grant.revoked_at.is_some());
    assert_eq!(h.validate(&at), Err(TokenError::Revoked));
}

/// A rotation records the token it replaced and when, which is what a retry is checked against.
#[test]
fn a_rotation_records_the_replaced_token_and_its_time() {
    let (mut h, _, rt1) = public_grant();
    h.now += 42;
    let (_, rt2) = issued(&plain(&mut h, &rt1).0);
    let family = stored(&h, &rt2).family;
    assert_eq!(family.current, SecretHash::of(&rt2));
    assert_eq!(
        family.previous,
        Some(Rotated {
            hash: SecretHash::of(&rt1),
            at: h.now
        })
    );
    assert_eq!(family.issued_at, h.now);
    assert_eq!(
        family.expires_at,
        h.now + Config::default().refresh_token_ttl_secs
    );
}

/// A token issued before families (adopted by its store as the family's current token, and kept
/// as a lookup by its hash) takes the two-step path once; its successor is in the current format,
/// with a family secret of its own, and takes one step; the old token presented again is reuse.
#[test]
fn a_token_from_before_families_takes_two_steps_and_its_successor_one() {
    let (mut h, _, rt) = public_grant();
    let grant_id = stored(&h, &rt).grant.grant_id;
    let legacy = "LegacyTokenFromBeforeFamilies0123456789_-AB";
    let expires_at = h.now + Config::default().refresh_token_ttl_secs;
    h.store
        .write()
        .insert(oauth_store_memory::Record::LegacyRefresh {
            hash: SecretHash::of(legacy),
            grant_id,
            expires_at,
        });
    h.apply(vec![Effect::PutRefreshFamily(RefreshFamily {
        grant_id,
        family: None,
        current: SecretHash::of(legacy),
        issued_at: h.now,
        expires_at,
        previous: None,
    })]);
    assert_eq!(
        RefreshKey::of(legacy),
        RefreshKey::Legacy(SecretHash::of(legacy))
    );
    // The family has no secret yet: a token in the current format naming it is unknown.
    h.now += 5;
    let (r, _) = plain(&mut h, &rt);
    assert_eq!((r.status, err(&r).as_str()), (400, "invalid_grant"));
    assert!(stored(&h, legacy).grant.revoked_at.is_none());

    let (r, ops) = plain(&mut h, legacy);
    assert_eq!(ops, ["GetRefresh", "RotateRefresh"]);
    let (_, next) = issued(&r);
    assert!(next.starts_with(PUBLIC_PREFIX), "{next}");
    let family = stored(&h, &next).family;
    assert!(family.family.is_some());
    assert_eq!(family.current, SecretHash::of(&next));
    assert_eq!(
        family.previous.map(|p| p.hash),
        Some(SecretHash::of(legacy))
    );
    h.now += 5;
    let (r, ops) = plain(&mut h, &next);
    assert_eq!(ops, ["RefreshPublic"]);
    let (at, _) = issued(&r);

    h.now += 5;
    let (r, _) = plain(&mut h, legacy);
    assert_eq!((r.status, err(&r).as_str()), (400, "invalid_grant"));
    assert!(stored(&h, legacy).grant.revoked_at.is_some());
    assert_eq!(h.validate(&at), Err(TokenError::Revoked));
}
