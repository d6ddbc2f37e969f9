//! Checklist section K: bearer token usage at protected resources (RFC 6750).

use conformance::*;
use oauth_proto::access_token::TokenError;
use oauth_proto::bearer::BearerError;
use oauth_proto::http::HttpRequest;
use oauth_proto::scope::Scope;

fn setup() -> (Harness, String) {
    let mut h = Harness::default();
    let s = h.confidential_client();
    let r = h.token(
        "grant_type=client_credentials&scope=mail",
        Some(&basic("web", s.expose())),
    );
    let token = json(&r)["access_token"].as_str().unwrap().to_owned();
    (h, token)
}

fn get(auth: Option<&str>) -> HttpRequest {
    HttpRequest {
        method: "GET".into(),
        authorization: auth.map(str::to_owned),
        ..Default::default()
    }
}

fn mail() -> Scope {
    Scope::parse("mail").unwrap()
}

#[test]
fn k95_header_scheme_is_case_insensitive() {
    let (h, t) = setup();
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let req = get(Some(&format!("{scheme} {t}")));
        assert!(
            h.engine
                .authenticate_bearer(&req, &mail(), h.now, &h.store)
                .is_ok(),
            "{scheme}"
        );
    }
}

#[test]
fn k96_body_form_only_on_non_get_and_never_the_query() {
    let (h, t) = setup();
    let mut post = HttpRequest::form_post(format!("access_token={t}"));
    assert!(h
        .engine
        .authenticate_bearer(&post, &mail(), h.now, &h.store)
        .is_ok());
    post.method = "GET".into();
    assert_eq!(
        h.engine
            .authenticate_bearer(&post, &mail(), h.now, &h.store),
        Err(BearerError::Missing)
    );
    let mut q = get(None);
    q.query = format!("access_token={t}");
    assert!(matches!(
        h.engine.authenticate_bearer(&q, &mail(), h.now, &h.store),
        Err(BearerError::InvalidRequest(_))
    ));
}

#[test]
fn k96_body_token_needs_the_form_content_type() {
    let (h, t) = setup();
    let check = |content_type: Option<&str>| {
        let mut req = HttpRequest::form_post(format!("access_token={t}"));
        req.content_type = content_type.map(str::to_owned);
        h.engine.authenticate_bearer(&req, &mail(), h.now, &h.store)
    };
    // The media type is matched case-insensitively and may carry parameters.
    for ok in [
        "application/x-www-form-urlencoded",
        "Application/X-WWW-Form-Urlencoded; charset=UTF-8",
    ] {
        assert!(check(Some(ok)).is_ok(), "{ok}");
    }
    // Any other body is not a form: the token in it is not a credential.
    for other in [
        Some("application/json"),
        Some("text/plain"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        assert_eq!(check(other), Err(BearerError::Missing), "{other:?}");
    }
    // PUT and PATCH forms are non-GET requests too.
    let mut put = HttpRequest::form_post(format!("access_token={t}"));
    put.method = "PUT".into();
    assert!(h
        .engine
        .authenticate_bearer(&put, &mail(), h.now, &h.store)
        .is_ok());
}

#[test]
fn k97_token_in_two_places_is_invalid_request() {
    let (h, t) = setup();
    let req = HttpRequest::form_post(format!("access_token={t}"))
        .with_authorization(format!("Bearer {t}"));
    let e = h
        .engine
        .authenticate_bearer(&req, &mail(), h.now, &h.store)
        .unwrap_err();
    assert!(matches!(e, BearerError::InvalidRequest(_)));
    assert_eq!(e.response("mail").status, 400);
}

#[test]
fn k98_k99_no_credentials_gets_a_bare_challenge() {
    let (h, _) = setup();
    let e = h
        .engine
        .authenticate_bearer(&get(None), &mail(), h.now, &h.store)
        .unwrap_err();
    let r = e.response("example");
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"example\"")
    );
    // Another scheme counts as no bearer credentials.
    let e = h
        .engine
        .authenticate_bearer(&get(Some("Basic dXNlcjpwYXNz")), &mail(), h.now, &h.store)
        .unwrap_err();
    assert_eq!(e, BearerError::Missing);
}

#[test]
fn k100_invalid_expired_and_insufficient() {
    let (mut h, t) = setup();
    let e = h
        .engine
        .authenticate_bearer(
            &get(Some("Bearer mF_9.B5f-4.1JqM")),
            &mail(),
            h.now,
            &h.store,
        )
        .unwrap_err();
    let r = e.response("example");
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .starts_with("Bearer realm=\"example\", error=\"invalid_token\""));
    let e = h
        .engine
        .authenticate_bearer(
            &get(Some(&format!("Bearer {t}"))),
            &Scope::parse("mail calendar").unwrap(),
            h.now,
            &h.store,
        )
        .unwrap_err();
    let r = e.response("example");
    assert_eq!(r.status, 403);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("error=\"insufficient_scope\""));
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .ends_with("scope=\"calendar mail\""));
    h.now += 3600;
    let e = h
        .engine
        .authenticate_bearer(&get(Some(&format!("Bearer {t}"))), &mail(), h.now, &h.store)
        .unwrap_err();
    assert_eq!(e, BearerError::InvalidToken(TokenError::Expired));
    assert!(e
        .response("example")
        .header("www-authenticate")
        .unwrap()
        .contains("error_description=\"the access token expired\""));
}

#[test]
fn k101_each_attribute_once_and_malformed_header() {
    let (h, _) = setup();
    let e = h
        .engine
        .authenticate_bearer(&get(Some("Bearer a b")), &mail(), h.now, &h.store)
        .unwrap_err();
    assert!(matches!(e, BearerError::InvalidRequest(_)));
    let challenge = BearerError::InsufficientScope(mail())
        .response("r\"e\\alm")
        .header("www-authenticate")
        .unwrap()
        .to_owned();
    for attr in ["realm=", "error=", "error_description=", "scope="] {
        assert_eq!(challenge.matches(attr).count(), 1, "{challenge}");
    }
    assert!(challenge.starts_with("Bearer realm=\"realm\""));
}
