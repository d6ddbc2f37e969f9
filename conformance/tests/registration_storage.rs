//! Registration cannot be turned into storage (issue 15, finding 1): what one anonymous RFC 7591
//! registration may make the server keep is bounded (`#language` variants per member, and the
//! whole kept metadata, `max_client_metadata_bytes`), and a dynamically registered client that
//! never obtains a token is dropped by the store's purge `unused_client_ttl_secs` after it
//! registered. Reported: 25 `client_name#tag` variants of 2048 bytes each (about 60 KB per
//! registration) were accepted and kept forever.

use conformance::surface::*;
use conformance::*;
use oauth_proto::client::ClientRecord;
use oauth_proto::config::{Config, RegistrationPolicy};
use oauth_proto::device_verify::{DeviceDecisionOutcome, DeviceVerifyOutcome};
use oauth_proto::flow::Next;
use oauth_proto::http::HttpRequest;
use oauth_proto::response::Response;
use oauth_proto::store::{Effect, Store};

const NATIVE: &str = r#"{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"],"client_name":"Thunderbird"}"#;
const DAY: u64 = 86400;

#[track_caller]
fn refused(r: &Response, mentions: &str) {
    assert_eq!(r.status, 400, "{}", r.body);
    let j = json(r);
    assert_eq!(j["error"], "invalid_client_metadata", "{}", r.body);
    let description = j["error_description"].as_str().unwrap();
    assert!(description.contains(mentions), "{description}");
}

/// What the bound on kept metadata measures: redirect URIs, scope and the informative members,
/// as JSON.
fn kept_size(c: &ClientRecord) -> usize {
    serde_json::to_vec(&(&c.redirect_uris, c.scope.as_str(), &c.metadata))
        .unwrap()
        .len()
}

/// A registration body for a public client with `members` added.
fn native_with(members: &[(String, serde_json::Value)]) -> String {
    let mut body: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(NATIVE).unwrap();
    body.extend(members.iter().cloned());
    serde_json::Value::Object(body).to_string()
}

/// `n` variants `base#l0`, `base#l1`... of `value`.
fn variants(base: &str, n: usize, value: &str) -> Vec<(String, serde_json::Value)> {
    (0..n)
        .map(|i| (format!("{base}#l{i}"), value.into()))
        .collect()
}

/// A token request whose response and effects are both returned (and the effects applied).
fn token_effects(
    h: &mut Harness,
    body: &str,
    authorization: Option<&str>,
) -> (Response, Vec<Effect>) {
    let mut request = HttpRequest::form_post(body);
    request.authorization = authorization.map(str::to_owned);
    let mut flow = h.engine.token(request, h.now);
    loop {
        match flow.step(&mut h.rng) {
            Next::Op(op, waiting) => {
                flow = waiting.answer(h.store.execute(op).expect("memory store"))
            }
            Next::Done(done) => {
                h.store.apply(done.effects.clone()).expect("memory store");
                return (done.output, done.effects);
            }
        }
    }
}

fn marks_used(effects: &[Effect], client_id: &str) -> bool {
    effects
        .iter()
        .any(|e| matches!(e, Effect::MarkClientUsed { client_id: c } if c == client_id))
}

fn marks_any(effects: &[Effect]) -> bool {
    effects
        .iter()
        .any(|e| matches!(e, Effect::MarkClientUsed { .. }))
}

fn purged(h: &Harness, now: u64) -> u64 {
    h.store.purge(now).expect("memory store").removed
}

/// Registers NATIVE and returns its client id.
fn native(h: &mut Harness) -> String {
    h.register_ok(NATIVE)["client_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Runs the code flow for `client_id` (redirect `http://127.0.0.1/cb`) up to the token request.
fn redeem(h: &mut Harness, client_id: &str, code: Option<&str>) -> (Response, Vec<Effect>) {
    let query = format!("response_type=code&client_id={client_id}&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&scope=mail&code_challenge={CHALLENGE}&code_challenge_method=S256");
    let issued = h.code_for(&query, "alice");
    let code = code.unwrap_or(&issued);
    token_effects(
        h,
        &format!("grant_type=authorization_code&code={code}&client_id={client_id}&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&code_verifier={VERIFIER}"),
        None,
    )
}

#[test]
fn the_reported_registration_of_25_name_variants_is_refused_and_stores_nothing() {
    let mut h = Harness::default();
    let body = native_with(&variants("client_name", 25, &"x".repeat(2048)));
    assert!(body.len() > 50_000 && body.len() < Config::default().max_body_bytes);
    refused(&h.register(&body, None), "language variants");
    assert!(h.store.read().is_empty());
}

#[test]
fn language_variants_are_bounded_per_member() {
    let mut h = Harness::default();
    // Eight variants of two members each is fine...
    let mut members = variants("client_name", 8, "Nom");
    members.extend(variants("logo_uri", 8, "https://app.example/logo.png"));
    // ... and variants with malformed tags are dropped, not counted.
    members.extend((0..20).map(|i| (format!("client_name#bad tag {i}"), "x".into())));
    let j = h.register_ok(&native_with(&members));
    assert_eq!(j["client_name#l7"], "Nom");
    assert_eq!(j["logo_uri#l7"], "https://app.example/logo.png");
    assert!(j.get("client_name#bad tag 0").is_none());
    // A ninth variant of any localizable member is refused, naming the member and the bound.
    for base in [
        "client_name",
        "client_uri",
        "logo_uri",
        "tos_uri",
        "policy_uri",
    ] {
        let body = native_with(&variants(base, 9, "https://app.example/x"));
        refused(&h.register(&body, None), &format!("{base} has more than 8"));
    }
}

#[test]
fn what_a_registration_keeps_is_bounded_as_a_whole() {
    let mut h = Harness::default();
    let long = "x".repeat(2000);
    let attacks = [
        // Each value within max_metadata_string_len, each list within its count.
        native_with(&variants("client_name", 8, &long)),
        native_with(&[(
            "contacts".into(),
            (0..10)
                .map(|i| format!("{i}{long}"))
                .collect::<Vec<_>>()
                .into(),
        )]),
        native_with(&[(
            "redirect_uris".into(),
            (0..10)
                .map(|i| format!("http://127.0.0.1/{i}{long}"))
                .collect::<Vec<_>>()
                .into(),
        )]),
        // A JWK Set is kept as sent; only the body limit bounded it.
        native_with(&[(
            "jwks".into(),
            serde_json::json!({"keys": [{"kty": "oct", "k": "A".repeat(60_000)}]}),
        )]),
    ];
    for body in &attacks {
        assert!(body.len() < Config::default().max_body_bytes);
        refused(&h.register(body, None), "8192 bytes");
    }
    assert!(h.store.read().is_empty());
}

#[test]
fn the_bound_is_the_json_size_of_what_is_kept() {
    let mut h = Harness::new(Config {
        max_client_metadata_bytes: 1024,
        ..Config::default()
    });
    let mut largest_kept = None;
    let mut first_refused = None;
    for len in 800..1100 {
        let body = native_with(&[("client_name".into(), "n".repeat(len).into())]);
        let r = h.register(&body, None);
        if r.status == 201 {
            assert!(
                first_refused.is_none(),
                "accepted {len} after refusing less"
            );
            let id = json(&r)["client_id"].as_str().unwrap().to_owned();
            largest_kept = Some(kept_size(&h.client(&id).unwrap()));
        } else {
            refused(&r, "1024 bytes");
            first_refused.get_or_insert(len);
        }
    }
    assert_eq!(largest_kept, Some(1024), "kept up to the byte");
    assert!(first_refused.is_some());
}

#[test]
fn updates_are_bounded_like_registrations() {
    let mut h = Harness::default();
    let j = h.register_ok(NATIVE);
    let id = j["client_id"].as_str().unwrap().to_owned();
    let rat = bearer(j["registration_access_token"].as_str().unwrap());
    let before = h.client(&id).unwrap();
    let with_id = |members: Vec<(String, serde_json::Value)>| {
        let mut members = members;
        members.push(("client_id".into(), id.clone().into()));
        native_with(&members)
    };
    let r = h.client_configuration(
        &id,
        "PUT",
        &with_id(variants("client_name", 9, "x")),
        Some(&rat),
    );
    refused(&r, "language variants");
    let r = h.client_configuration(
        &id,
        "PUT",
        &with_id(variants("client_name", 8, &"x".repeat(2000))),
        Some(&rat),
    );
    refused(&r, "8192 bytes");
    assert_eq!(h.client(&id).unwrap(), before);
}

#[test]
fn an_unused_registration_expires() {
    let mut h = Harness::default();
    let j = h.register_ok(NATIVE);
    let id = j["client_id"].as_str().unwrap().to_owned();
    let rat = bearer(j["registration_access_token"].as_str().unwrap());
    assert_eq!(h.client(&id).unwrap().unused_expires_at, Some(T0 + DAY));
    // An update is not use: it does not extend the registration's life.
    h.now = T0 + 3600;
    let update = native_with(&[
        ("client_id".into(), id.clone().into()),
        ("client_name".into(), "Renamed".into()),
    ]);
    assert_eq!(
        h.client_configuration(&id, "PUT", &update, Some(&rat))
            .status,
        200
    );
    assert_eq!(h.client(&id).unwrap().unused_expires_at, Some(T0 + DAY));

    assert_eq!(purged(&h, T0 + DAY - 1), 0);
    assert!(h.client(&id).is_some());
    assert_eq!(purged(&h, T0 + DAY), 1);
    assert_eq!(h.client(&id), None);
    // Gone for good: its registration access token no longer reads it.
    h.now = T0 + DAY;
    let r = h.client_configuration(&id, "GET", "", Some(&rat));
    assert_eq!(r.status, 401, "{}", r.body);
}

#[test]
fn the_unused_lifetime_is_configurable() {
    let mut h = Harness::new(Config {
        unused_client_ttl_secs: 7200,
        ..Config::default()
    });
    let id = native(&mut h);
    assert_eq!(h.client(&id).unwrap().unused_expires_at, Some(T0 + 7200));
    assert_eq!(purged(&h, T0 + 7200), 1);
}

#[test]
fn the_first_token_marks_a_registered_client_used_and_later_ones_write_nothing_for_it() {
    let mut h = Harness::default();
    let id = native(&mut h);
    let (r, effects) = redeem(&mut h, &id, None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(marks_used(&effects, &id), "{effects:?}");
    assert_eq!(h.client(&id).unwrap().unused_expires_at, None);
    assert_eq!(
        purged(&h, T0 + 10 * 365 * DAY),
        3,
        "the code, the grant and its refresh token"
    );
    assert!(
        h.client(&id).is_some(),
        "a used client never expires unused"
    );

    // Its refreshes write nothing about the client.
    let refresh = json(&r)["refresh_token"].as_str().unwrap().to_owned();
    let (r, effects) = token_effects(
        &mut h,
        &format!("grant_type=refresh_token&refresh_token={refresh}&client_id={id}"),
        None,
    );
    // (The purge ten years on dropped the grant, so this refresh is refused.)
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(!marks_any(&effects), "{effects:?}");
}

#[test]
fn a_refresh_marks_a_client_whose_record_still_expires() {
    let mut h = Harness::default();
    let id = native(&mut h);
    let (r, _) = redeem(&mut h, &id, None);
    let refresh = json(&r)["refresh_token"].as_str().unwrap().to_owned();
    // An update that read the record before the redemption marked it puts the expiry back.
    let stale = ClientRecord {
        unused_expires_at: Some(T0 + DAY),
        access_token_format: Default::default(),
        ..h.client(&id).unwrap()
    };
    h.apply(vec![Effect::PutClient(stale)]);
    let (r, effects) = token_effects(
        &mut h,
        &format!("grant_type=refresh_token&refresh_token={refresh}&client_id={id}"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(marks_used(&effects, &id), "{effects:?}");
    assert_eq!(h.client(&id).unwrap().unused_expires_at, None);
    // And a client in use writes nothing for itself on its next refresh.
    let refresh = json(&r)["refresh_token"].as_str().unwrap().to_owned();
    let (r, effects) = token_effects(
        &mut h,
        &format!("grant_type=refresh_token&refresh_token={refresh}&client_id={id}"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!marks_any(&effects), "{effects:?}");
}

#[test]
fn failed_token_requests_leave_the_client_unused() {
    let mut h = Harness::default();
    let id = native(&mut h);
    let (r, effects) = redeem(&mut h, &id, Some("not-the-code"));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(!marks_any(&effects), "{effects:?}");
    assert_eq!(h.client(&id).unwrap().unused_expires_at, Some(T0 + DAY));
}

#[test]
fn device_and_client_credentials_tokens_mark_the_client_used() {
    let mut h = Harness::new(Config {
        confidential_registration: RegistrationPolicy::Open,
        ..Config::default()
    });
    // A device client.
    let id = h.register_ok(r#"{"grant_types":["urn:ietf:params:oauth:grant-type:device_code"],"token_endpoint_auth_method":"none"}"#)["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = h.device_authorization(&format!("client_id={id}&scope=mail"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let started = json(&r);
    let user_code = started["user_code"].as_str().unwrap();
    let pending = match h.device_verify(user_code) {
        DeviceVerifyOutcome::Consent(p) => p,
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        h.device_approve(pending, "alice"),
        DeviceDecisionOutcome::Approved
    ));
    let device_code = started["device_code"].as_str().unwrap();
    let device_client = id.clone();
    let (r, effects) = token_effects(
        &mut h,
        &format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code={device_code}&client_id={id}"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(marks_used(&effects, &id), "{effects:?}");

    // A confidential client_credentials client.
    let j = h.register_ok(r#"{"grant_types":["client_credentials"],"scope":"mail"}"#);
    let (id, secret) = (
        j["client_id"].as_str().unwrap(),
        j["client_secret"].as_str().unwrap(),
    );
    let (r, effects) = token_effects(
        &mut h,
        "grant_type=client_credentials",
        Some(&basic(id, secret)),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(marks_used(&effects, id), "{effects:?}");
    let (r, effects) = token_effects(
        &mut h,
        "grant_type=client_credentials",
        Some(&basic(id, secret)),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!marks_any(&effects), "{effects:?}");
    assert_eq!(
        purged(&h, T0 + 10 * 365 * DAY),
        1,
        "the device authorization"
    );
    assert!(h.client(&device_client).is_some());
    assert!(h.client(id).is_some());
}

#[test]
fn administrator_added_clients_never_expire_unused() {
    let h = Harness::default();
    h.public_client();
    h.confidential_client();
    assert_eq!(purged(&h, u64::MAX), 0);
    assert!(h.client("app").is_some());
    assert!(h.client("web").is_some());
}
