//! OpenID Connect's interaction parameters through the engine (Core §3.1.2.1, §3.1.2.3,
//! §3.1.2.6): `prompt`, `max_age`, `login_hint`, `id_token_hint`, and remembered consent
//! ([`Engine::proceed`]).

use conformance::*;
use oauth_proto::authorize::{AuthorizeOutcome, PendingAuthorization};
use oauth_proto::client::{ClientKind, ClientRecord, GrantType};
use oauth_proto::interaction::{SignedIn, Step};
use oauth_proto::jose::{Algorithm, Audience, IdTokenClaims, KeySet};
use oauth_proto::random::CounterRandom;
use oauth_proto::response::Response;
use oauth_proto::secret::Secret;
use oauth_proto::store::{Effect, Op, Reply, Store};

const REDIRECT: &str = "http%3A%2F%2F127.0.0.1%2Fcb";
const ISSUER: &str = "http://127.0.0.1:8080";

/// A public client `rp` an administrator added, scope `openid email profile`.
fn rp(h: &Harness) {
    h.add_client(
        "rp",
        ClientKind::Public,
        &["http://127.0.0.1/cb"],
        &[GrantType::AuthorizationCode, GrantType::RefreshToken],
        "openid email profile",
    );
}

fn query(extra: &str) -> String {
    format!(
        "response_type=code&client_id=rp&redirect_uri={REDIRECT}&state=s&code_challenge={CHALLENGE}\
         &code_challenge_method=S256&scope=openid{extra}"
    )
}

/// The error a request was redirected back with (an administrator's client).
fn redirected_error(outcome: &AuthorizeOutcome) -> (String, String) {
    match outcome {
        AuthorizeOutcome::Redirect(r) => (
            location_param(r, "error").expect("an error"),
            location_param(r, "error_description").unwrap_or_default(),
        ),
        other => panic!("expected an error redirect, got {other:?}"),
    }
}

fn assert_invalid(h: &mut Harness, extra: &str, description_has: &str) {
    let outcome = h.authorize(&query(extra));
    let (error, description) = redirected_error(&outcome);
    assert_eq!(error, "invalid_request", "{extra}: {description}");
    assert!(
        description.contains(description_has),
        "{extra}: {description}"
    );
}

fn proceed(h: &mut Harness, p: PendingAuthorization, who: Option<(&str, u64, bool)>) -> Step {
    let signed_in = who.map(|(subject, auth_time, fresh)| SignedIn {
        subject,
        auth_time,
        amr: &[],
        sid: None,
        fresh,
    });
    let flow = h.engine.proceed(p, signed_in, h.now);
    h.run(flow)
}

fn step_error(step: &Step) -> String {
    match step {
        Step::Redirect(r) => {
            assert_eq!(
                location_param(r, "state").as_deref(),
                Some("s"),
                "state kept"
            );
            assert_eq!(
                location_param(r, "iss").as_deref(),
                Some(ISSUER),
                "iss sent"
            );
            location_param(r, "error").expect("an error redirect")
        }
        other => panic!("expected an error redirect, got {other:?}"),
    }
}

fn step_code(step: &Step) -> String {
    match step {
        Step::Redirect(r) => location_param(r, "code").unwrap_or_else(|| panic!("{r:?}")),
        other => panic!("expected a code, got {other:?}"),
    }
}

fn hint(keys: &KeySet, alg: Algorithm, iss: &str, aud: &str, sub: &str, exp: u64) -> String {
    IdTokenClaims {
        iss: iss.into(),
        sub: sub.into(),
        aud: Audience::One(aud.into()),
        exp,
        iat: exp.saturating_sub(3600),
        auth_time: None,
        nonce: None,
        azp: None,
        at_hash: None,
        sid: None,
        acr: None,
        amr: None,
    }
    .sign(
        keys.signing_key(alg).expect("a key"),
        &mut CounterRandom::new(1),
    )
}

/// Approves `query` for alice through the consent page (remembering the consent).
fn consent_once(h: &mut Harness, extra: &str) {
    let p = h.pending(&query(extra));
    let r: Response = h.approve(p, "alice");
    assert!(location_param(&r, "code").is_some());
}

#[test]
fn prompt_values_are_checked() {
    let mut h = Harness::default();
    rp(&h);
    for bad in [
        "none+login",
        "none+consent",
        "login+none",
        "none+select_account",
    ] {
        assert_invalid(
            &mut h,
            &format!("&prompt={bad}"),
            "prompt=none cannot be combined",
        );
    }
    for bad in ["bogus", "login+bogus", "NONE", "none,login"] {
        assert_invalid(&mut h, &format!("&prompt={bad}"), "prompt has a value");
    }
    assert_invalid(&mut h, "&prompt=login&prompt=consent", "prompt");
    for good in [
        "none",
        "login",
        "consent",
        "select_account",
        "login++consent+select_account",
    ] {
        let p = h.pending(&query(&format!("&prompt={good}")));
        let prompt = p.interaction().prompt();
        assert_eq!(prompt.none(), good == "none", "{good}");
        assert_eq!(prompt.login(), good.contains("login"), "{good}");
        assert_eq!(prompt.consent(), good.contains("consent"), "{good}");
    }
}

#[test]
fn max_age_must_be_a_non_negative_integer() {
    let mut h = Harness::default();
    rp(&h);
    for bad in ["-1", "abc", "1.5", "%2B5", "0x10", "1e3", "+"] {
        assert_invalid(&mut h, &format!("&max_age={bad}"), "max_age must be");
    }
    let p = h.pending(&query("&max_age=0"));
    assert_eq!(p.interaction().max_age(), Some(0));
    let p = h.pending(&query("&max_age=99999999999999999999999"));
    assert_eq!(
        p.interaction().max_age(),
        Some(u64::MAX),
        "no limit in practice"
    );
    let p = h.pending(&query(""));
    assert_eq!(p.interaction().max_age(), None);
}

#[test]
fn login_hint_is_kept_and_bounded() {
    let mut h = Harness::default();
    rp(&h);
    let p = h.pending(&query("&login_hint=alice%40example.com"));
    assert_eq!(p.interaction().login_hint(), Some("alice@example.com"));
    let long = "a".repeat(255);
    let p = h.pending(&query(&format!("&login_hint={long}")));
    assert_eq!(p.interaction().login_hint(), Some(long.as_str()));
    assert_invalid(
        &mut h,
        &format!("&login_hint={}", "a".repeat(256)),
        "login_hint is longer",
    );
}

#[test]
fn id_token_hint_of_another_key_issuer_or_client_is_refused() {
    let mut h = Harness::default();
    rp(&h);
    let ours = test_signing_keys();
    let theirs = KeySet::generate(&[Algorithm::Es256], &mut CounterRandom::new(0xbad)).unwrap();
    let future = h.now + 600;
    let foreign_key = hint(&theirs, Algorithm::Es256, ISSUER, "rp", "alice", future);
    assert_invalid(
        &mut h,
        &format!("&id_token_hint={foreign_key}"),
        "not an ID token signed by this server",
    );
    for garbage in ["abc", "a.b.c", "eyJhbGciOiJub25lIn0.e30."] {
        assert_invalid(
            &mut h,
            &format!("&id_token_hint={garbage}"),
            "not an ID token signed by this server",
        );
    }
    let other_issuer = hint(
        &ours,
        Algorithm::Es256,
        "https://evil.example",
        "rp",
        "alice",
        future,
    );
    assert_invalid(
        &mut h,
        &format!("&id_token_hint={other_issuer}"),
        "another issuer",
    );
    let other_client = hint(
        &ours,
        Algorithm::Es256,
        ISSUER,
        "someone-else",
        "alice",
        future,
    );
    assert_invalid(
        &mut h,
        &format!("&id_token_hint={other_client}"),
        "another client",
    );
    assert_invalid(
        &mut h,
        &format!("&id_token_hint={}", "a".repeat(8193)),
        "longer than 8192",
    );
}

#[test]
fn expired_id_token_hints_and_rotated_out_keys_are_accepted() {
    let mut h = Harness::default();
    rp(&h);
    let ours = test_signing_keys();
    // Expired a day ago: the hint names the user, its lifetime does not matter (§3.1.2.1).
    let expired = hint(
        &ours,
        Algorithm::Es256,
        ISSUER,
        "rp",
        "alice",
        h.now - 86_400,
    );
    let p = h.pending(&query(&format!("&id_token_hint={expired}")));
    assert_eq!(p.interaction().hint_subject(), Some("alice"));
    // Each algorithm the server signs with.
    for alg in [Algorithm::Rs256, Algorithm::EdDsa] {
        let t = hint(&ours, alg, ISSUER, "rp", "bob", h.now - 5);
        let p = h.pending(&query(&format!("&id_token_hint={t}")));
        assert_eq!(p.interaction().hint_subject(), Some("bob"), "{alg:?}");
    }
    // Signed by a key rotated out since: still one of ours.
    let mut rotated = ours.clone();
    rotated
        .rotate(
            Algorithm::Es256,
            h.now,
            3600,
            &mut CounterRandom::new(0x707),
        )
        .unwrap();
    h.engine.set_keys(test_keys(), rotated).unwrap();
    let p = h.pending(&query(&format!("&id_token_hint={expired}")));
    assert_eq!(p.interaction().hint_subject(), Some("alice"));
}

#[test]
fn prompt_none_answers_without_a_page() {
    let mut h = Harness::default();
    rp(&h);
    let signed_in = Some(("alice", h.now - 10, false));
    // No session: login_required.
    let p = h.pending(&query("&prompt=none"));
    assert_eq!(step_error(&proceed(&mut h, p, None)), "login_required");
    // A session, no remembered consent: consent_required.
    let p = h.pending(&query("&prompt=none"));
    assert_eq!(
        step_error(&proceed(&mut h, p, signed_in)),
        "consent_required"
    );
    // A session older than max_age: login_required.
    let p = h.pending(&query("&prompt=none&max_age=5"));
    assert_eq!(step_error(&proceed(&mut h, p, signed_in)), "login_required");
    // The hint names someone else than the signed-in user: login_required.
    let other = hint(
        &test_signing_keys(),
        Algorithm::Es256,
        ISSUER,
        "rp",
        "bob",
        h.now,
    );
    let p = h.pending(&query(&format!("&prompt=none&id_token_hint={other}")));
    assert_eq!(step_error(&proceed(&mut h, p, signed_in)), "login_required");
    // Once alice approved, the same request gets a code silently; and with her own hint too.
    consent_once(&mut h, "");
    let p = h.pending(&query("&prompt=none"));
    step_code(&proceed(&mut h, p, signed_in));
    let own = hint(
        &test_signing_keys(),
        Algorithm::Es256,
        ISSUER,
        "rp",
        "alice",
        h.now - 1,
    );
    let p = h.pending(&query(&format!("&prompt=none&id_token_hint={own}")));
    step_code(&proceed(&mut h, p, signed_in));
    // More scope than approved: consent_required.
    let p = h.pending(&query("+email&prompt=none"));
    assert_eq!(
        step_error(&proceed(&mut h, p, signed_in)),
        "consent_required"
    );
}

#[test]
fn prompt_none_errors_of_a_self_registered_client_are_shown_with_a_link() {
    let mut h = Harness::default();
    rp(&h);
    let mut client = match h.store.execute(Op::GetClient {
        client_id: "rp".into(),
    }) {
        Ok(Reply::Client(Some(c))) => ClientRecord::clone(&c),
        other => panic!("{other:?}"),
    };
    client.registration_token_hash = Some(Secret::new("registration-token-0123".to_owned()).hash());
    h.apply(vec![Effect::PutClient(client)]);
    let p = h.pending(&query("&prompt=none"));
    match proceed(&mut h, p, None) {
        Step::ErrorLink(l) => {
            assert_eq!(l.error.code.as_str(), "login_required");
            assert!(l
                .location
                .starts_with("http://127.0.0.1/cb?error=login_required"));
            assert_eq!(l.host, "127.0.0.1");
        }
        other => panic!("expected an error with a link, got {other:?}"),
    }
}

#[test]
fn prompt_login_and_max_age_ask_for_a_fresh_sign_in() {
    let mut h = Harness::default();
    rp(&h);
    consent_once(&mut h, "");
    let session = |fresh| Some(("alice", h.now - 100, fresh));
    let (stale, fresh) = (session(false), session(true));
    for extra in ["&prompt=login", "&max_age=0", "&max_age=99"] {
        let p = h.pending(&query(extra));
        assert!(
            matches!(proceed(&mut h, p, stale), Step::SignIn(_)),
            "{extra}"
        );
        // Signed in on this request's form: satisfied (and consent is remembered).
        let p = h.pending(&query(extra));
        step_code(&proceed(&mut h, p, fresh));
    }
    // Young enough for max_age: no sign-in.
    let p = h.pending(&query("&max_age=100"));
    step_code(&proceed(&mut h, p, stale));
    // Nobody signed in: the form.
    let p = h.pending(&query(""));
    assert!(matches!(proceed(&mut h, p, None), Step::SignIn(_)));
    // A hint naming someone else: the form, unless the user just signed in (whoever it was).
    let other = hint(
        &test_signing_keys(),
        Algorithm::Es256,
        ISSUER,
        "rp",
        "bob",
        h.now,
    );
    let p = h.pending(&query(&format!("&id_token_hint={other}")));
    assert!(matches!(proceed(&mut h, p, stale), Step::SignIn(_)));
    let p = h.pending(&query(&format!("&id_token_hint={other}")));
    step_code(&proceed(&mut h, p, fresh));
}

#[test]
fn remembered_consent_skips_the_page_until_forced_widened_or_revoked() {
    let mut h = Harness::default();
    rp(&h);
    let alice = Some(("alice", h.now - 10, false));
    let p = h.pending(&query("+email"));
    assert!(
        matches!(proceed(&mut h, p, alice), Step::Consent(_)),
        "first time"
    );
    consent_once(&mut h, "+email");
    // The same scope or less: no page.
    for extra in ["+email", ""] {
        let p = h.pending(&query(extra));
        step_code(&proceed(&mut h, p, alice));
    }
    // Another user approved nothing.
    let p = h.pending(&query(""));
    let bob = Some(("bob", h.now, false));
    assert!(matches!(proceed(&mut h, p, bob), Step::Consent(_)));
    // prompt=consent and select_account force the page.
    for extra in ["&prompt=consent", "&prompt=select_account"] {
        let p = h.pending(&query(extra));
        assert!(
            matches!(proceed(&mut h, p, alice), Step::Consent(_)),
            "{extra}"
        );
    }
    // A wider scope asks; approving it remembers the union.
    let p = h.pending(&query("+profile"));
    assert!(matches!(proceed(&mut h, p, alice), Step::Consent(_)));
    consent_once(&mut h, "+profile");
    let p = h.pending(&query("+email+profile"));
    step_code(&proceed(&mut h, p, alice));
    match h.store.execute(Op::Consents {
        subject: "alice".into(),
    }) {
        Ok(Reply::Consents(c)) => {
            assert_eq!(c.len(), 1);
            assert_eq!(c[0].scope.as_str(), "email openid profile");
        }
        other => panic!("{other:?}"),
    }
    // Revoked (by the user or an administrator): the page again.
    h.apply(vec![Effect::DeleteConsent {
        subject: "alice".into(),
        client_id: Some("rp".into()),
    }]);
    let p = h.pending(&query(""));
    assert!(matches!(proceed(&mut h, p, alice), Step::Consent(_)));
}

#[test]
fn a_silent_code_carries_the_sessions_auth_time() {
    let mut h = Harness::default();
    rp(&h);
    consent_once(&mut h, "");
    let auth_time = h.now - 300;
    let p = h.pending(&query("&prompt=none&nonce=n1"));
    let code = step_code(&proceed(&mut h, p, Some(("alice", auth_time, false))));
    let r = h.token(
        &format!(
            "grant_type=authorization_code&code={code}&client_id=rp\
             &redirect_uri={REDIRECT}&code_verifier={VERIFIER}"
        ),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let token = json(&r)["id_token"].as_str().unwrap().to_owned();
    let claims = IdTokenClaims::decode(&token, &test_signing_keys()).unwrap();
    assert_eq!(claims.sub, "alice");
    assert_eq!(claims.auth_time, Some(auth_time));
    assert_eq!(claims.nonce.as_deref(), Some("n1"));
}

#[test]
fn a_client_changed_since_the_request_gets_no_silent_code() {
    let mut h = Harness::default();
    rp(&h);
    consent_once(&mut h, "+email");
    let p = h.pending(&query("+email"));
    // The administrator narrows the client's scope meanwhile.
    h.add_client(
        "rp",
        ClientKind::Public,
        &["http://127.0.0.1/cb"],
        &[GrantType::AuthorizationCode],
        "openid",
    );
    let alice = Some(("alice", h.now, false));
    match proceed(&mut h, p, alice) {
        Step::Redirect(r) => {
            assert_eq!(
                location_param(&r, "error").as_deref(),
                Some("invalid_scope")
            );
            assert!(location_param(&r, "code").is_none());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn denying_on_the_consent_page_withdraws_the_remembered_consent() {
    let mut h = Harness::default();
    rp(&h);
    consent_once(&mut h, "");
    let alice = Some(("alice", h.now - 10, false));
    let p = h.pending(&query("&prompt=consent"));
    let Step::Consent(p) = proceed(&mut h, p, alice) else {
        panic!("prompt=consent shows the page")
    };
    let flow = h.engine.deny_and_forget(p, "alice", h.now);
    match h.run(flow) {
        oauth_proto::authorize::DecisionOutcome::Redirect(r) => {
            assert_eq!(
                location_param(&r, "error").as_deref(),
                Some("access_denied")
            );
        }
        other => panic!("{other:?}"),
    }
    // No silent code any more: the page, or consent_required with prompt=none.
    let p = h.pending(&query(""));
    assert!(matches!(proceed(&mut h, p, alice), Step::Consent(_)));
    let p = h.pending(&query("&prompt=none"));
    assert_eq!(step_error(&proceed(&mut h, p, alice)), "consent_required");
    // A plain denial (no user named) forgets nothing.
    consent_once(&mut h, "");
    let p = h.pending(&query(""));
    let flow = h.engine.deny(p, h.now);
    h.run(flow);
    let p = h.pending(&query(""));
    step_code(&proceed(&mut h, p, alice));
}
