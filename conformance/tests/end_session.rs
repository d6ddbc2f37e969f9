//! RP-initiated logout through the engine (OpenID Connect RP-Initiated Logout 1.0 §2, §3):
//! the end-session request's checks, registration of `post_logout_redirect_uris`, and discovery.

use conformance::surface::json_request;
use conformance::*;
use oauth_proto::end_session::{EndSessionOutcome, Logout};
use oauth_proto::error::ErrorCode;
use oauth_proto::http::HttpRequest;

const RP_REDIRECT: &str = "http%3A%2F%2F127.0.0.1%2Fcb";
const AFTER: &str = "http://127.0.0.1/signed-out";

/// Registers a public OpenID client with a logout redirect and returns its id.
fn register(h: &mut Harness, extra: &str) -> String {
    let body = format!(
        r#"{{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none",
            "grant_types":["authorization_code"],"scope":"openid email",
            "client_name":"Webmail","post_logout_redirect_uris":["{AFTER}"]{extra}}}"#
    );
    let flow = h.engine.register(json_request("POST", &body, None), h.now);
    let r = h.run(flow);
    assert_eq!(r.status, 201, "{}", r.body);
    let j = json(&r);
    assert_eq!(j["post_logout_redirect_uris"], serde_json::json!([AFTER]));
    j["client_id"].as_str().unwrap().to_owned()
}

/// An ID token for alice from a code flow of `client`.
fn id_token(h: &mut Harness, client: &str) -> String {
    let query = format!(
        "response_type=code&client_id={client}&redirect_uri={RP_REDIRECT}&scope=openid\
         &code_challenge={CHALLENGE}&code_challenge_method=S256"
    );
    let code = h.code_for(&query, "alice");
    let r = h.token(
        &format!(
            "grant_type=authorization_code&code={code}&client_id={client}\
             &redirect_uri={RP_REDIRECT}&code_verifier={VERIFIER}"
        ),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    json(&r)["id_token"].as_str().unwrap().to_owned()
}

fn end(h: &mut Harness, query: &str) -> EndSessionOutcome {
    let request = HttpRequest {
        method: "GET".into(),
        query: query.to_owned(),
        ..Default::default()
    };
    let flow = h.engine.end_session(request, h.now);
    h.run(flow)
}

#[track_caller]
fn logout(outcome: EndSessionOutcome) -> Logout {
    match outcome {
        EndSessionOutcome::Logout(l) => l,
        other => panic!("expected a valid logout, got {other:?}"),
    }
}

#[track_caller]
fn invalid(outcome: EndSessionOutcome, says: &str) {
    match outcome {
        EndSessionOutcome::Invalid(e) => {
            assert_eq!(e.code, ErrorCode::InvalidRequest);
            assert!(e.description.contains(says), "{}", e.description);
        }
        other => panic!("expected invalid_request ({says}), got {other:?}"),
    }
}

fn enc(s: &str) -> String {
    serde_urlencoded::to_string([("", s)]).unwrap()[1..].to_owned()
}

#[test]
fn discovery_names_the_end_session_endpoint() {
    let h = Harness::default();
    let m: serde_json::Value = serde_json::from_str(&h.engine.metadata().body).unwrap();
    assert_eq!(
        m["end_session_endpoint"],
        format!("{}/logout", m["issuer"].as_str().unwrap())
    );
}

#[test]
fn a_hinted_logout_returns_to_the_registered_uri_with_the_state() {
    let mut h = Harness::default();
    let client = register(&mut h, "");
    let hint = id_token(&mut h, &client);
    let l = logout(end(
        &mut h,
        &format!(
            "id_token_hint={hint}&post_logout_redirect_uri={}&state=a%20b%26c",
            enc(AFTER)
        ),
    ));
    assert_eq!(l.client_id(), Some(client.as_str()));
    assert_eq!(l.client_name(), Some("Webmail"));
    assert_eq!(l.hint_subject(), Some("alice"));
    assert_eq!(
        l.redirect(),
        Some(format!("{AFTER}?state=a+b%26c").as_str())
    );
    // client_id alone names the client as well; the hint may be long expired (§2).
    h.now += 365 * 86_400;
    let l = logout(end(
        &mut h,
        &format!("client_id={client}&post_logout_redirect_uri={}", enc(AFTER)),
    ));
    assert_eq!((l.hint_subject(), l.redirect()), (None, Some(AFTER)));
    let l = logout(end(
        &mut h,
        &format!("id_token_hint={hint}&client_id={client}"),
    ));
    assert_eq!((l.hint_subject(), l.redirect()), (Some("alice"), None));
}

#[test]
fn a_bare_logout_ends_the_session_and_returns_nowhere() {
    let mut h = Harness::default();
    let l = logout(end(&mut h, ""));
    assert_eq!(
        (l.client_id(), l.redirect(), l.hint_subject()),
        (None, None, None)
    );
    let l = logout(end(&mut h, "state=x&ui_locales=de&logout_hint=alice"));
    assert_eq!(l.redirect(), None);
}

#[test]
fn redirects_are_only_to_the_clients_registered_uris() {
    let mut h = Harness::default();
    let client = register(&mut h, "");
    let other = register(&mut h, "");
    let hint = id_token(&mut h, &client);
    for uri in [
        "http://127.0.0.1/signed-out/",
        "http://127.0.0.1/signed-out?x=1",
        "https://evil.example/",
        "http://127.0.0.1/cb",
    ] {
        invalid(
            end(
                &mut h,
                &format!("client_id={client}&post_logout_redirect_uri={}", enc(uri)),
            ),
            "not one the client registered",
        );
    }
    invalid(
        end(&mut h, &format!("post_logout_redirect_uri={}", enc(AFTER))),
        "needs client_id or id_token_hint",
    );
    invalid(
        end(
            &mut h,
            &format!("client_id=nobody&post_logout_redirect_uri={}", enc(AFTER)),
        ),
        "unknown client",
    );
    invalid(
        end(&mut h, &format!("id_token_hint={hint}&client_id={other}")),
        "not the client the id_token_hint was issued to",
    );
    let long = "s".repeat(1025);
    invalid(
        end(
            &mut h,
            &format!(
                "client_id={client}&post_logout_redirect_uri={}&state={long}",
                enc(AFTER)
            ),
        ),
        "state is longer",
    );
}

#[test]
fn a_hint_must_be_an_id_token_of_this_server() {
    let mut h = Harness::default();
    let client = register(&mut h, "");
    let hint = id_token(&mut h, &client);
    // Another server's keys: the same claims, signed by a key this server never had.
    let mut other = Harness::new(oauth_proto::config::Config::default());
    let algorithms = [oauth_proto::jose::Algorithm::Es256];
    let keys = oauth_proto::jose::KeySet::generate(&algorithms, &mut other.rng).unwrap();
    other.engine =
        oauth_proto::Engine::new(oauth_proto::config::Config::default(), test_keys(), keys)
            .unwrap();
    let other_client = register(&mut other, "");
    let foreign = id_token(&mut other, &other_client);
    let mut tampered = hint.clone();
    tampered.replace_range(hint.len() - 4.., "AAAA");
    for (token, says) in [
        (foreign.as_str(), "not an ID token signed by this server"),
        (tampered.as_str(), "not an ID token signed by this server"),
        ("garbage", "not an ID token signed by this server"),
        (&"a".repeat(9000), "longer than 8192 bytes"),
    ] {
        invalid(end(&mut h, &format!("id_token_hint={token}")), says);
    }
}

#[test]
fn logout_redirects_are_checked_at_registration() {
    let mut h = Harness::default();
    for (uri, status) in [
        ("http://localhost/out", 400),
        ("https://a.example/out#f", 400),
    ] {
        let body = format!(
            r#"{{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none",
                "post_logout_redirect_uris":["{uri}"]}}"#
        );
        let flow = h.engine.register(json_request("POST", &body, None), h.now);
        let r = h.run(flow);
        assert_eq!(r.status, status, "{uri}: {}", r.body);
        assert_eq!(json(&r)["error"], "invalid_redirect_uri", "{}", r.body);
    }
    // A native client's logout redirect follows its type's rules too.
    let body = r#"{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none",
        "application_type":"native","post_logout_redirect_uris":["https://a.example/out"]}"#;
    let flow = h.engine.register(json_request("POST", body, None), h.now);
    let r = h.run(flow);
    assert_eq!(r.status, 400, "{}", r.body);
}
