//! Checklist sections C (authorization endpoint), D (redirect URIs) and F (PKCE at authorization).

use conformance::*;
use oauth_proto::authorize::AuthorizeOutcome;
use oauth_proto::client::{ClientKind, GrantType};
use oauth_proto::config::Config;
use oauth_proto::error::ErrorCode;

fn harness() -> Harness {
    let h = Harness::default();
    h.public_client();
    h.confidential_client();
    h.add_client(
        "multi",
        ClientKind::Public,
        &["https://a.example.com/cb", "https://b.example.com/cb?x=1"],
        &[GrantType::AuthorizationCode],
        "mail",
    );
    h.add_client(
        "cc-only",
        ClientKind::Confidential,
        &["https://cc.example.com/cb"],
        &[GrantType::ClientCredentials],
        "mail",
    );
    h
}

const PKCE: &str =
    "code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256";

fn error_page(o: AuthorizeOutcome) -> ErrorCode {
    match o {
        AuthorizeOutcome::ErrorPage(e) => e.code,
        other => panic!("expected an error page, got {other:?}"),
    }
}

/// The error redirect's parameters.
fn redirected(o: AuthorizeOutcome) -> (String, Vec<(String, String)>) {
    match o {
        AuthorizeOutcome::Redirect(r) => {
            assert_eq!(r.status, 302);
            let loc = r.header("location").unwrap().to_owned();
            let q: Vec<(String, String)> =
                serde_urlencoded::from_str(loc.split_once('?').unwrap().1).unwrap();
            (loc, q)
        }
        other => panic!("expected a redirect, got {other:?}"),
    }
}

fn param<'a>(q: &'a [(String, String)], k: &str) -> Option<&'a str> {
    q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

#[test]
fn c26_unknown_client_or_bad_redirect_is_an_error_page_never_a_redirect() {
    let mut h = harness();
    assert_eq!(error_page(h.authorize(&format!("response_type=code&client_id=nobody&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&{PKCE}"))), ErrorCode::InvalidRequest);
    assert_eq!(
        error_page(h.authorize(&format!(
            "response_type=code&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&{PKCE}"
        ))),
        ErrorCode::InvalidRequest
    );
    assert_eq!(
        error_page(h.authorize(&format!(
            "response_type=code&client_id=web&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&{PKCE}"
        ))),
        ErrorCode::InvalidRequest
    );
    // Duplicate client_id or redirect_uri: error page.
    assert_eq!(
        error_page(h.authorize(&format!(
            "response_type=code&client_id=web&client_id=web&{PKCE}"
        ))),
        ErrorCode::InvalidRequest
    );
    // A fragment is never acceptable.
    assert_eq!(error_page(h.authorize(&format!("response_type=code&client_id=web&redirect_uri=https%3A%2F%2Fclient.example.com%2Fcb%23frag&{PKCE}"))), ErrorCode::InvalidRequest);
}

#[test]
fn c27_missing_or_unsupported_response_type_is_redirected() {
    let mut h = harness();
    let (_, q) = redirected(h.authorize(&format!("client_id=web&state=s1&{PKCE}")));
    assert_eq!(param(&q, "error"), Some("invalid_request"));
    assert_eq!(param(&q, "state"), Some("s1"));
    // C41: the implicit grant is not supported.
    let (_, q) = redirected(h.authorize(&format!(
        "response_type=token&client_id=web&state=s1&{PKCE}"
    )));
    assert_eq!(param(&q, "error"), Some("unsupported_response_type"));
    assert!(param(&q, "error_description").is_some());
}

#[test]
fn c28_client_not_allowed_the_code_grant_is_unauthorized_client() {
    let mut h = harness();
    let (_, q) = redirected(h.authorize(&format!("response_type=code&client_id=cc-only&{PKCE}")));
    assert_eq!(param(&q, "error"), Some("unauthorized_client"));
}

#[test]
fn c28_denial_is_access_denied_with_state_and_iss() {
    let mut h = harness();
    let pending = h.pending(&format!(
        "response_type=code&client_id=web&state=abc&{PKCE}"
    ));
    let r = h.deny(pending);
    assert_eq!(r.status, 303);
    assert_eq!(
        location_param(&r, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(location_param(&r, "state").as_deref(), Some("abc"));
    assert_eq!(
        location_param(&r, "iss").as_deref(),
        Some("http://127.0.0.1:8080")
    );
}

#[test]
fn c29_state_is_echoed_exactly_and_omitted_when_absent() {
    let mut h = harness();
    let state = "a b&c=d/é%";
    let enc: String = serde_urlencoded::to_string([("state", state)]).unwrap();
    let pending = h.pending(&format!("response_type=code&client_id=web&{enc}&{PKCE}"));
    let r = h.approve(pending, "alice");
    assert_eq!(location_param(&r, "state").as_deref(), Some(state));
    let pending = h.pending(&format!("response_type=code&client_id=web&{PKCE}"));
    let r = h.approve(pending, "alice");
    assert_eq!(location_param(&r, "state"), None);
}

#[test]
fn c30_c40_error_redirects_carry_error_state_and_iss_in_the_query() {
    let mut h = harness();
    let (loc, q) = redirected(h.authorize(&format!(
        "response_type=code&client_id=web&state=z&scope=admin&{PKCE}"
    )));
    assert!(loc.starts_with("https://client.example.com/cb?"));
    assert_eq!(param(&q, "error"), Some("invalid_scope"));
    assert_eq!(param(&q, "state"), Some("z"));
    assert_eq!(param(&q, "iss"), Some("http://127.0.0.1:8080"));
}

#[test]
fn c31_existing_query_of_the_redirect_uri_is_kept() {
    let mut h = harness();
    let pending = h.pending(&format!("response_type=code&client_id=multi&redirect_uri=https%3A%2F%2Fb.example.com%2Fcb%3Fx%3D1&{PKCE}"));
    let r = h.approve(pending, "alice");
    assert!(r
        .header("location")
        .unwrap()
        .starts_with("https://b.example.com/cb?x=1&code="));
}

#[test]
fn c39_scope_defaults_to_the_clients_and_unknown_scope_is_invalid_scope() {
    let mut h = harness();
    let pending = h.pending(&format!("response_type=code&client_id=web&{PKCE}"));
    assert_eq!(pending.scope().to_string(), "mail offline_access");
    let (_, q) = redirected(h.authorize(&format!(
        "response_type=code&client_id=web&scope=mail+%22bad&{PKCE}"
    )));
    assert_eq!(param(&q, "error"), Some("invalid_scope"));
    // Empty scope counts as absent (A4).
    let pending = h.pending(&format!("response_type=code&client_id=web&scope=&{PKCE}"));
    assert_eq!(pending.scope().to_string(), "mail offline_access");
}

#[test]
fn a5_a6_unknown_parameters_ignored_repeated_ones_refused() {
    let mut h = harness();
    h.pending(&format!("response_type=code&client_id=web&foo=bar&{PKCE}"));
    let (_, q) = redirected(h.authorize(&format!(
        "response_type=code&client_id=web&scope=mail&scope=mail&{PKCE}"
    )));
    assert_eq!(param(&q, "error"), Some("invalid_request"));
    // A repeated state is refused and not echoed.
    let (_, q) = redirected(h.authorize(&format!(
        "response_type=code&client_id=web&state=a&state=b&{PKCE}"
    )));
    assert_eq!(param(&q, "error"), Some("invalid_request"));
    assert_eq!(param(&q, "state"), None);
}

#[test]
fn d43_matching_is_exact() {
    let mut h = harness();
    for bad in [
        "https://client.example.com/cb/",
        "https://client.example.com/CB",
        "https://CLIENT.example.com/cb",
        "https://client.example.com/cb?x",
        "https://client.example.com/c",
        "https://client.example.com:443/cb",
    ] {
        let enc = serde_urlencoded::to_string([("redirect_uri", bad)]).unwrap();
        assert_eq!(
            error_page(h.authorize(&format!("response_type=code&client_id=web&{enc}&{PKCE}"))),
            ErrorCode::InvalidRequest,
            "{bad}"
        );
    }
}

#[test]
fn d44_loopback_port_is_ignored_but_nothing_else() {
    let mut h = harness();
    for good in [
        "http://127.0.0.1/cb",
        "http://127.0.0.1:1/cb",
        "http://127.0.0.1:65535/cb",
    ] {
        let enc = serde_urlencoded::to_string([("redirect_uri", good)]).unwrap();
        let p = h.pending(&format!("response_type=code&client_id=app&{enc}&{PKCE}"));
        assert_eq!(p.redirect_uri(), good);
    }
    for bad in [
        "http://127.0.0.1:8080/cb2",
        "https://127.0.0.1:8080/cb",
        "http://localhost:8080/cb",
        "http://127.0.0.1:/cb",
        "http://127.0.0.1:8080@evil/cb",
        "http://127.0.0.1.evil.com/cb",
    ] {
        let enc = serde_urlencoded::to_string([("redirect_uri", bad)]).unwrap();
        assert_eq!(
            error_page(h.authorize(&format!("response_type=code&client_id=app&{enc}&{PKCE}"))),
            ErrorCode::InvalidRequest,
            "{bad}"
        );
    }
    // IPv6 loopback.
    h.add_client(
        "v6",
        ClientKind::Public,
        &["http://[::1]/cb"],
        &[GrantType::AuthorizationCode],
        "mail",
    );
    let p = h.pending(&format!("response_type=code&client_id=v6&redirect_uri=http%3A%2F%2F%5B%3A%3A1%5D%3A5000%2Fcb&{PKCE}"));
    assert_eq!(p.redirect_uri(), "http://[::1]:5000/cb");
}

#[test]
fn d48_several_registered_uris_require_redirect_uri() {
    let mut h = harness();
    assert_eq!(
        error_page(h.authorize(&format!("response_type=code&client_id=multi&{PKCE}"))),
        ErrorCode::InvalidRequest
    );
    let p = h.pending(&format!("response_type=code&client_id=web&{PKCE}"));
    assert_eq!(p.redirect_uri(), "https://client.example.com/cb");
    assert!(!p.redirect_uri_sent());
}

#[test]
fn f56_public_client_without_challenge_is_invalid_request() {
    let mut h = harness();
    let (_, q) = redirected(
        h.authorize("response_type=code&client_id=app&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb"),
    );
    assert_eq!(param(&q, "error"), Some("invalid_request"));
}

#[test]
fn f57_confidential_client_needs_pkce_by_default_and_by_policy_not() {
    let mut h = harness();
    let (_, q) = redirected(h.authorize("response_type=code&client_id=web"));
    assert_eq!(param(&q, "error"), Some("invalid_request"));
    let mut h = Harness::new(Config {
        require_pkce_for_confidential: false,
        ..Config::default()
    });
    h.confidential_client();
    h.pending("response_type=code&client_id=web");
}

#[test]
fn f57_a_per_client_flag_requires_pkce_when_the_default_is_relaxed() {
    let mut h = Harness::new(Config {
        require_pkce_for_confidential: false,
        ..Config::default()
    });
    h.confidential_client();
    h.add_client(
        "strict",
        ClientKind::Confidential,
        &["https://strict.example.com/cb"],
        &[GrantType::AuthorizationCode],
        "mail",
    );
    let mut strict = h.client("strict").expect("stored");
    strict.require_pkce = true;
    h.apply(vec![oauth_proto::store::Effect::PutClient(strict)]);
    let (loc, q) = redirected(h.authorize("response_type=code&client_id=strict&state=s"));
    assert!(loc.starts_with("https://strict.example.com/cb?"), "{loc}");
    assert_eq!(param(&q, "error"), Some("invalid_request"));
    assert_eq!(param(&q, "state"), Some("s"));
    h.pending(&format!("response_type=code&client_id=strict&{PKCE}"));
    // The relaxed default still applies to the client without the flag.
    h.pending("response_type=code&client_id=web");
}

#[test]
fn f58_f59_f60_methods_and_syntax() {
    let mut h = harness();
    let c = CHALLENGE;
    for q in [
        format!("response_type=code&client_id=web&code_challenge={c}&code_challenge_method=S512"),
        format!("response_type=code&client_id=web&code_challenge={c}&code_challenge_method=plain"),
        // F59: no method means plain, which is refused by default rather than silently S256.
        format!("response_type=code&client_id=web&code_challenge={c}"),
        "response_type=code&client_id=web&code_challenge=short&code_challenge_method=S256"
            .to_owned(),
        format!(
            "response_type=code&client_id=web&code_challenge={c}%2B&code_challenge_method=S256"
        ),
        "response_type=code&client_id=web&code_challenge_method=S256".to_owned(),
    ] {
        let (_, p) = redirected(h.authorize(&q));
        assert_eq!(param(&p, "error"), Some("invalid_request"), "{q}");
    }
    let mut h = Harness::new(Config {
        allow_plain_pkce: true,
        ..Config::default()
    });
    h.confidential_client();
    let p = h.pending(&format!(
        "response_type=code&client_id=web&code_challenge={VERIFIER}"
    ));
    assert_eq!(
        p.challenge().unwrap().method,
        oauth_proto::pkce::PkceMethod::Plain
    );
}

#[test]
fn c38_hostile_state_never_breaks_the_redirect() {
    let mut h = harness();
    let state = "\"><script>alert(1)</script>\r\nLocation: evil";
    let enc = serde_urlencoded::to_string([("state", state)]).unwrap();
    let p = h.pending(&format!("response_type=code&client_id=web&{enc}&{PKCE}"));
    let r = h.approve(p, "alice");
    let loc = r.header("location").unwrap();
    assert!(!loc.contains('\r') && !loc.contains('\n') && !loc.contains('<') && !loc.contains('"'));
    assert_eq!(location_param(&r, "state").as_deref(), Some(state));
}

#[test]
fn c32_no_code_before_the_embedder_approves() {
    let mut h = harness();
    // Consent is the only outcome of a valid request: the engine issues nothing by itself.
    assert!(matches!(
        h.authorize(&format!("response_type=code&client_id=web&{PKCE}")),
        AuthorizeOutcome::Consent(_)
    ));
    assert_eq!(h.store.read().len(), 4, "only the four clients are stored");
}

#[test]
fn approve_refuses_an_empty_or_huge_subject() {
    let mut h = harness();
    let p = h.pending(&format!("response_type=code&client_id=web&{PKCE}"));
    assert!(h.engine.approve(p.clone(), "", h.now, h.now).is_err());
    assert!(h
        .engine
        .approve(p, &"x".repeat(2000), h.now, h.now)
        .is_err());
}

#[test]
fn a4_empty_parameters_count_as_absent() {
    let mut h = harness();
    // state= : no state to echo; scope= : the client's default scope; redirect_uri= with one
    // registered URI: the registered one.
    let p = h.pending(&format!(
        "response_type=code&client_id=web&state=&scope=&redirect_uri=&{PKCE}"
    ));
    assert_eq!(p.state(), None);
    assert_eq!(p.scope().to_string(), "mail offline_access");
    assert_eq!(p.redirect_uri(), "https://client.example.com/cb");
    assert!(!p.redirect_uri_sent());
    let r = h.approve(p, "alice");
    assert!(location_param(&r, "code").is_some());
    assert_eq!(location_param(&r, "state"), None);
    // response_type= is a missing response_type, not an unsupported one.
    let (_, q) = redirected(h.authorize(&format!("response_type=&client_id=web&state=s&{PKCE}")));
    assert_eq!(param(&q, "error"), Some("invalid_request"));
    // client_id= is a missing client: an error page.
    assert_eq!(
        error_page(h.authorize(&format!("response_type=code&client_id=&{PKCE}"))),
        ErrorCode::InvalidRequest
    );
}

#[test]
fn a7_query_values_are_decoded_per_appendix_b() {
    let mut h = harness();
    let p = h.pending(&format!(
        "response_type=code&client_id=web&state=+%25%26%2B%C2%A3%E2%82%AC&scope=mail+offline_access&{PKCE}"
    ));
    assert_eq!(p.state(), Some(" %&+£€"));
    assert_eq!(p.scope().to_string(), "mail offline_access");
    // And re-encoded on the way out, so the client decodes the same bytes.
    let r = h.approve(p, "alice");
    assert_eq!(location_param(&r, "state").as_deref(), Some(" %&+£€"));
    // Bytes that are not UTF-8 after decoding are refused, not mangled.
    assert_eq!(
        error_page(h.authorize(&format!(
            "response_type=code&client_id=web&state=%FF&{PKCE}"
        ))),
        ErrorCode::InvalidRequest
    );
    // The same rules for form bodies.
    let auth = basic("web", "web-secret-0123456789abcdef");
    let r = h.token(
        "grant_type=client_credentials&scope=mail+offline_access",
        Some(&auth),
    );
    assert_eq!(json(&r)["scope"], "mail offline_access", "{}", r.body);
    let r = h.token("grant_type=client_credentials&scope=mail%FF", Some(&auth));
    assert_eq!(
        (r.status, json(&r)["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let r = h.introspect("token=%00%FF", Some(&auth));
    assert_eq!(
        (r.status, json(&r)["error"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[test]
fn a6_responses_never_repeat_a_parameter() {
    let mut h = harness();
    let count = |loc: &str| {
        let q: Vec<(String, String)> =
            serde_urlencoded::from_str(loc.split_once('?').unwrap().1).unwrap();
        let mut names: Vec<String> = q.into_iter().map(|(k, _)| k).collect();
        let n = names.len();
        names.sort();
        names.dedup();
        (n, names.len())
    };
    // Success, on a registered URI that has a query of its own.
    let p = h.pending(&format!("response_type=code&client_id=multi&redirect_uri=https%3A%2F%2Fb.example.com%2Fcb%3Fx%3D1&state=s&{PKCE}"));
    let r = h.approve(p, "alice");
    let (all, distinct) = count(r.header("location").unwrap());
    assert_eq!((all, distinct), (4, 4), "x, code, state, iss");
    // Denial and an error redirect.
    let p = h.pending(&format!("response_type=code&client_id=web&state=s&{PKCE}"));
    let (all, distinct) = count(h.deny(p).header("location").unwrap());
    assert_eq!(all, distinct);
    let (loc, _) = redirected(h.authorize(&format!(
        "response_type=code&client_id=web&state=s&scope=nope&{PKCE}"
    )));
    let (all, distinct) = count(&loc);
    assert_eq!(all, distinct);
}

#[test]
fn a8_descriptions_that_echo_input_stay_in_the_allowed_set() {
    let mut h = harness();
    let allowed = |s: &str| {
        s.chars()
            .all(|c| matches!(c as u32, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
    };
    // Hostile values in every parameter the authorization endpoint may mention.
    for hostile in [
        "scope=mail+%22%5C%0D%0A%C3%A9",
        "code_challenge_method=%22%5C%E2%82%AC",
        "response_type=%22%5C%0A%C3%A9",
    ] {
        let query = format!("response_type=code&client_id=web&state=s&{PKCE}&{hostile}");
        let query = query.replacen(
            "response_type=code&",
            "",
            hostile.starts_with("response_type") as usize,
        );
        let (_, q) = match h.authorize(&query) {
            AuthorizeOutcome::Redirect(r) => redirected(AuthorizeOutcome::Redirect(r)),
            other => panic!("{query}: {other:?}"),
        };
        let d = param(&q, "error_description").unwrap_or_default();
        assert!(allowed(d), "{query}: {d:?}");
        assert!(allowed(param(&q, "error").unwrap()));
    }
    // A hostile redirect URI is described on the error page, never echoed raw.
    match h.authorize(&format!(
        "response_type=code&client_id=web&redirect_uri=https%3A%2F%2Fe%2F%22%3E%3Cx%3E%C3%A9%0A&{PKCE}"
    )) {
        AuthorizeOutcome::ErrorPage(e) => assert!(allowed(&e.description), "{}", e.description),
        other => panic!("{other:?}"),
    }
    // Registration errors echo the offending URI; it is sanitized too.
    let r = h.register(
        r#"{"token_endpoint_auth_method":"none","redirect_uris":["https://c.example/\"\\é\n#x"]}"#,
        None,
    );
    assert_eq!(r.status, 400);
    let d = json(&r)["error_description"].as_str().unwrap().to_owned();
    assert!(allowed(&d), "{d:?}");
}

#[test]
fn c40_iss_is_form_urlencoded_in_every_authorization_response() {
    let mut h = Harness::new(Config {
        issuer: "https://honest.as.example".to_owned(),
        ..Config::default()
    });
    h.confidential_client();
    let p = h.pending(&format!("response_type=code&client_id=web&state=s&{PKCE}"));
    let deny = h.deny(p.clone());
    let ok = h.approve(p, "alice");
    let (error, _) = redirected(h.authorize(&format!(
        "response_type=code&client_id=web&scope=nope&{PKCE}"
    )));
    for loc in [
        ok.header("location").unwrap(),
        deny.header("location").unwrap(),
        &error,
    ] {
        assert!(loc.contains("iss=https%3A%2F%2Fhonest.as.example"), "{loc}");
    }
}

#[test]
fn d46_relative_or_fragment_redirect_uri_at_authorization_is_an_error_page() {
    let mut h = harness();
    for bad in [
        "/cb",
        "cb",
        "//client.example.com/cb",
        "https://client.example.com/cb#",
        "https://client.example.com/cb#x",
    ] {
        let enc = serde_urlencoded::to_string([("redirect_uri", bad)]).unwrap();
        assert_eq!(
            error_page(h.authorize(&format!("response_type=code&client_id=web&{enc}&{PKCE}"))),
            ErrorCode::InvalidRequest,
            "{bad}"
        );
    }
}

/// `self_registered` as a client that registered itself (RFC 7591): its record has a
/// registration access token.
fn self_registered(h: &Harness) {
    h.add_client(
        "dyn",
        ClientKind::Public,
        &["https://evil.example/landing"],
        &[GrantType::AuthorizationCode],
        "mail",
    );
    let mut c = h.client("dyn").expect("stored");
    c.registration_token_hash = Some(oauth_proto::secret::SecretHash::of("rat"));
    h.apply(vec![oauth_proto::store::Effect::PutClient(c)]);
}

#[test]
fn c30_a_self_registered_clients_errors_are_shown_with_a_link_never_redirected() {
    // RFC 9700 §4.11.2: anyone can register https://evil.example/landing, so an error for such
    // a client must not bounce the browser there on its own.
    let mut h = harness();
    self_registered(&h);
    for query in [
        "client_id=dyn&response_type=x&state=s".to_owned(),
        format!("client_id=dyn&response_type=code&scope=admin&state=s&{PKCE}"),
        "client_id=dyn&response_type=code&state=s".to_owned(),
    ] {
        match h.authorize(&query) {
            AuthorizeOutcome::ErrorLink(l) => {
                assert!(
                    l.location
                        .starts_with("https://evil.example/landing?error="),
                    "{}",
                    l.location
                );
                assert_eq!(l.host, "evil.example");
                let q: Vec<(String, String)> =
                    serde_urlencoded::from_str(l.location.split_once('?').unwrap().1).unwrap();
                assert_eq!(param(&q, "error"), Some(l.error.code.as_str()));
                assert_eq!(param(&q, "state"), Some("s"));
                assert_eq!(param(&q, "iss"), Some("http://127.0.0.1:8080"));
            }
            other => panic!("{query}: expected an error with a link, got {other:?}"),
        }
    }
    // A valid request of the same client still reaches consent.
    h.pending(&format!("client_id=dyn&response_type=code&{PKCE}"));
    // An administrator's client keeps the RFC 6749 §4.1.2.1 redirect.
    redirected(h.authorize("client_id=web&response_type=x&state=s"));
}

#[test]
fn a8_no_error_description_carries_request_text() {
    let mut h = harness();
    self_registered(&h);
    let marker = "ATTACKERTEXT";
    for query in [
        format!("response_type={marker}&client_id=web&state=s&{PKCE}"),
        format!("response_type=code&client_id=web&scope=mail+{marker}&{PKCE}"),
        format!("response_type=code&client_id=web&scope=%22{marker}&{PKCE}"),
        format!("response_type=code&client_id=web&code_challenge_method={marker}&code_challenge={CHALLENGE}"),
        format!("response_type=code&client_id=web&code_challenge={marker}&code_challenge_method=S256"),
        format!("response_type={marker}&client_id=dyn&state=s"),
        format!("response_type=code&client_id=dyn&scope={marker}&{PKCE}"),
    ] {
        let (description, location) = match h.authorize(&query) {
            AuthorizeOutcome::Redirect(r) => {
                let loc = r.header("location").unwrap().to_owned();
                let (_, q) = redirected(AuthorizeOutcome::Redirect(r));
                (param(&q, "error_description").unwrap().to_owned(), loc)
            }
            AuthorizeOutcome::ErrorLink(l) => (l.error.description.to_string(), l.location),
            other => panic!("{query}: {other:?}"),
        };
        assert!(!description.contains(marker), "{query}: {description}");
        assert!(!location.contains(marker), "{query}: {location}");
    }
}

#[test]
fn c29_state_is_bounded_and_an_oversized_one_is_refused_not_echoed() {
    let mut h = harness();
    let at_limit = "s".repeat(oauth_proto::authorize::MAX_STATE_BYTES);
    let p = h.pending(&format!(
        "response_type=code&client_id=web&state={at_limit}&{PKCE}"
    ));
    assert_eq!(p.state(), Some(at_limit.as_str()));
    let over = "s".repeat(oauth_proto::authorize::MAX_STATE_BYTES + 1);
    let (loc, q) = redirected(h.authorize(&format!(
        "response_type=code&client_id=web&state={over}&{PKCE}"
    )));
    assert_eq!(param(&q, "error"), Some("invalid_request"));
    assert_eq!(
        param(&q, "error_description"),
        Some("state is longer than 1024 bytes")
    );
    assert_eq!(param(&q, "state"), None);
    assert!(loc.len() < 300, "{loc}");
}
