//! A decision is applied only to the request the user was shown (issue 16): `Engine::approve`,
//! `Engine::deny` and the device decisions read the client or the device record again, so a
//! client changed or deleted between the consent page and the decision cannot get a code for
//! another redirect URI, a wider scope, or without the PKCE it now needs. (A pending request
//! cannot be forged or edited at all: its fields are private, it has no constructor and no
//! `Deserialize`; that is checked by the compiler, not here.)

use conformance::*;
use oauth_proto::authorize::{DecisionOutcome, PendingAuthorization};
use oauth_proto::client::{ClientKind, GrantType};
use oauth_proto::config::Config;
use oauth_proto::device_verify::{DeviceDecisionOutcome, DeviceVerifyOutcome};
use oauth_proto::error::ErrorCode;
use oauth_proto::scope::Scope;
use oauth_proto::store::{DeviceStatus, Effect};

const PKCE: &str =
    "code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256";

fn harness() -> Harness {
    let h = Harness::new(Config {
        require_pkce_for_confidential: false,
        ..Config::default()
    });
    h.confidential_client();
    h
}

/// A pending request of `web` for `mail offline_access`, with `state=s` and PKCE.
fn pending(h: &mut Harness) -> PendingAuthorization {
    h.pending(&format!("response_type=code&client_id=web&state=s&{PKCE}"))
}

/// Both decisions end on an error page with `code`, and nothing is stored.
#[track_caller]
fn error_page(h: &mut Harness, p: PendingAuthorization, code: ErrorCode) {
    let records = h.store.read().len();
    for subject in [Some("alice"), None] {
        match h.decide(p.clone(), subject) {
            DecisionOutcome::ErrorPage(e) => assert_eq!(e.code, code, "{e}"),
            other => panic!("expected an error page, got {other:?}"),
        }
    }
    assert_eq!(h.store.read().len(), records, "nothing was stored");
}

/// Both decisions send `code` back to the client's registered URI (303, with `state`), and
/// nothing is stored.
#[track_caller]
fn error_redirect(h: &mut Harness, p: PendingAuthorization, code: ErrorCode) {
    let records = h.store.read().len();
    for subject in [Some("alice"), None] {
        match h.decide(p.clone(), subject) {
            DecisionOutcome::Redirect(r) => {
                assert_eq!(r.status, 303);
                assert!(r
                    .header("location")
                    .unwrap()
                    .starts_with("https://client.example.com/cb?error="));
                assert_eq!(location_param(&r, "error").as_deref(), Some(code.as_str()));
                assert_eq!(location_param(&r, "state").as_deref(), Some("s"));
                assert_eq!(location_param(&r, "code"), None);
            }
            other => panic!("expected an error redirect, got {other:?}"),
        }
    }
    assert_eq!(h.store.read().len(), records, "nothing was stored");
}

fn change_web(h: &Harness, change: impl FnOnce(&mut oauth_proto::client::ClientRecord)) {
    let mut web = h.client("web").expect("stored");
    change(&mut web);
    h.apply(vec![Effect::PutClient(web)]);
}

#[test]
fn a_deleted_client_gets_neither_a_code_nor_a_redirect() {
    let mut h = harness();
    let p = pending(&mut h);
    h.apply(vec![Effect::DeleteClient {
        client_id: "web".to_owned(),
        at: h.now,
        keep_until: h.now + 3600,
    }]);
    error_page(&mut h, p, ErrorCode::InvalidRequest);
}

#[test]
fn a_redirect_uri_unregistered_since_the_page_gets_no_code() {
    let mut h = harness();
    let p = pending(&mut h);
    change_web(&h, |c| {
        c.redirect_uris = vec!["https://other.example.com/cb".to_owned()]
    });
    error_page(&mut h, p, ErrorCode::InvalidRequest);
}

#[test]
fn an_omitted_redirect_uri_must_still_resolve_to_the_same_one() {
    // The request named no redirect_uri, so the client's only one was used; now it has two, and
    // the request no longer says which (RFC 6749 §3.1.2.3): refused, though the URI is still there.
    let mut h = harness();
    let p = pending(&mut h);
    assert!(!p.redirect_uri_sent());
    change_web(&h, |c| {
        c.redirect_uris
            .push("https://client.example.com/cb2".to_owned())
    });
    error_page(&mut h, p, ErrorCode::InvalidRequest);
}

#[test]
fn a_scope_narrowed_since_the_page_is_not_granted() {
    let mut h = harness();
    let p = pending(&mut h);
    assert_eq!(p.scope().to_string(), "mail offline_access");
    change_web(&h, |c| c.scope = Scope::parse("mail").unwrap());
    error_redirect(&mut h, p, ErrorCode::InvalidScope);
}

#[test]
fn a_self_registered_client_changed_since_the_page_gets_an_error_page_not_a_redirect() {
    let mut h = harness();
    change_web(&h, |c| {
        c.registration_token_hash = Some(oauth_proto::secret::SecretHash::of("rat"))
    });
    let p = pending(&mut h);
    change_web(&h, |c| c.scope = Scope::parse("mail").unwrap());
    error_page(&mut h, p, ErrorCode::InvalidScope);
}

#[test]
fn a_client_that_lost_the_code_grant_gets_no_code() {
    let mut h = harness();
    let p = pending(&mut h);
    change_web(&h, |c| c.grant_types = vec![GrantType::ClientCredentials]);
    error_redirect(&mut h, p, ErrorCode::UnauthorizedClient);
}

#[test]
fn a_client_that_now_requires_pkce_gets_no_code_for_a_request_without() {
    let mut h = harness();
    let p = h.pending("response_type=code&client_id=web&state=s");
    assert!(p.challenge().is_none());
    change_web(&h, |c| c.require_pkce = true);
    error_redirect(&mut h, p, ErrorCode::InvalidRequest);
    // With a challenge the same change is no obstacle.
    let p = pending(&mut h);
    let r = h.approve(p, "alice");
    assert!(location_param(&r, "code").is_some());
}

#[test]
fn an_unchanged_client_still_gets_its_code_and_its_denial() {
    let mut h = harness();
    // An unrelated change (a new name) does not invalidate the request.
    let p = pending(&mut h);
    change_web(&h, |c| c.name = "Renamed".to_owned());
    let r = h.approve(p, "alice");
    assert_eq!(r.status, 303);
    assert!(r
        .header("location")
        .unwrap()
        .starts_with("https://client.example.com/cb?code="));
    let p = pending(&mut h);
    let r = h.deny(p);
    assert_eq!(
        location_param(&r, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(location_param(&r, "state").as_deref(), Some("s"));
}

#[test]
fn a_device_decision_applies_only_to_the_request_shown() {
    let mut h = Harness::default();
    h.device_client();
    let (device_code, user_code) = h.start_device();
    let pending = match h.device_verify(&user_code) {
        DeviceVerifyOutcome::Consent(p) => p,
        other => panic!("{other:?}"),
    };
    // The record changes under the page (here its scope widens): the decision refuses.
    let mut record = h.device_record(&device_code).unwrap();
    record.scope = Scope::parse("mail offline_access").unwrap();
    h.apply(vec![Effect::PutDevice(record)]);
    assert_eq!(
        h.device_approve(pending.clone(), "alice"),
        DeviceDecisionOutcome::NotPending
    );
    assert_eq!(h.device_deny(pending), DeviceDecisionOutcome::NotPending);
    assert_eq!(
        h.device_record(&device_code).unwrap().status,
        DeviceStatus::Pending,
        "nothing was decided"
    );
}

#[test]
fn another_clients_device_record_is_never_decided() {
    let mut h = Harness::default();
    h.device_client();
    h.add_client(
        "tv2",
        ClientKind::Public,
        &[],
        &[GrantType::DeviceCode],
        "mail",
    );
    let (device_code, user_code) = h.start_device();
    let pending = match h.device_verify(&user_code) {
        DeviceVerifyOutcome::Consent(p) => p,
        other => panic!("{other:?}"),
    };
    let mut record = h.device_record(&device_code).unwrap();
    record.client_id = "tv2".to_owned();
    h.apply(vec![Effect::PutDevice(record)]);
    assert_eq!(
        h.device_approve(pending, "alice"),
        DeviceDecisionOutcome::NotPending
    );
    assert_eq!(
        h.device_record(&device_code).unwrap().status,
        DeviceStatus::Pending
    );
}
