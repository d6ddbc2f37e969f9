//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document) through the engine:
//! an `https` URL as `client_id`, its document fetched by the driver (the harness serves
//! [`Harness::documents`]) and checked by the engine.

use conformance::*;
use oauth_proto::access_token::TokenError;
use oauth_proto::authorize::AuthorizeOutcome;
use oauth_proto::client_id_document::{ClientDocument, FetchError};
use oauth_proto::config::Config;
use oauth_proto::error::ErrorCode;

const URL: &str = "https://mcp.example.com/oauth/client.json";
const URL_ENC: &str = "https%3A%2F%2Fmcp.example.com%2Foauth%2Fclient.json";
const REDIRECT_ENC: &str = "http%3A%2F%2F127.0.0.1%3A49152%2Fcb";

fn enabled() -> Harness {
    Harness::new(Config {
        client_id_metadata_documents: true,
        ..Config::default()
    })
}

fn document(extra: &str) -> String {
    format!(
        r#"{{"client_id":"{URL}","client_name":"MCP Inspector","redirect_uris":["http://127.0.0.1/cb"],"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none","scope":"mail offline_access"{extra}}}"#
    )
}

fn serve(h: &mut Harness, body: &str) {
    h.documents.insert(
        URL.to_owned(),
        ClientDocument::fetched(body.as_bytes().to_vec()),
    );
}

fn query(client_id: &str, response_type: &str) -> String {
    format!(
        "response_type={response_type}&client_id={client_id}&redirect_uri={REDIRECT_ENC}&state=s1&scope=mail+offline_access&code_challenge={CHALLENGE}&code_challenge_method=S256"
    )
}

/// The authorization request must end on an error page (never a redirect) with `invalid_client`
/// and a description containing `says`.
fn refused_at_authorize(h: &mut Harness, client_id: &str, says: &str) {
    match h.authorize(&query(client_id, "code")) {
        AuthorizeOutcome::ErrorPage(e) => {
            assert_eq!(e.code, ErrorCode::InvalidClient, "{e}");
            assert!(e.description.contains(says), "{says:?} not in {e}");
        }
        other => panic!("expected an error page, got {other:?}"),
    }
}

#[test]
fn metadata_advertises_support_only_when_enabled() {
    let on = json(&enabled().engine.metadata());
    assert_eq!(on["client_id_metadata_document_supported"], true);
    let off = json(&Harness::default().engine.metadata());
    assert!(off.get("client_id_metadata_document_supported").is_none());
}

#[test]
fn a_document_client_completes_code_pkce_refresh_and_revocation() {
    let mut h = enabled();
    serve(&mut h, &document(""));
    let pending = h.pending(&query(URL_ENC, "code"));
    assert_eq!(pending.client_id(), URL);
    assert_eq!(pending.client_name(), "MCP Inspector");
    assert_eq!(pending.redirect_uri(), "http://127.0.0.1:49152/cb");
    let redirect = h.approve(pending, "alice");
    let code = location_param(&redirect, "code").expect("a code");

    let body = format!(
        "grant_type=authorization_code&code={code}&client_id={URL_ENC}&redirect_uri={REDIRECT_ENC}&code_verifier={VERIFIER}"
    );
    let r = h.token(&body, None);
    assert_eq!(r.status, 200, "{}", r.body);
    let j = json(&r);
    let access = j["access_token"].as_str().unwrap().to_owned();
    let refresh = j["refresh_token"].as_str().unwrap().to_owned();
    let claims = h.validate(&access).unwrap();
    assert_eq!(
        (claims.subject.as_str(), claims.client_id.as_str()),
        ("alice", URL)
    );
    // Authorization, decision and token request each asked for the document; none stored it.
    assert_eq!(h.fetched, vec![URL; 3]);
    assert!(h.client(URL).is_none());

    // Introspection by the client itself sees its own token.
    let r = h.introspect(&format!("token={access}&client_id={URL_ENC}"), None);
    assert_eq!(json(&r)["active"], true, "{}", r.body);
    assert_eq!(json(&r)["client_id"], URL);

    let r = h.token(
        &format!("grant_type=refresh_token&refresh_token={refresh}&client_id={URL_ENC}"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let refreshed = json(&r)["access_token"].as_str().unwrap().to_owned();

    // The client revokes its token itself, naming itself by its URL.
    let r = h.revoke(&format!("token={refreshed}&client_id={URL_ENC}"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(h.validate(&refreshed), Err(TokenError::Revoked));
}

#[test]
fn off_by_default_a_url_client_id_is_an_unknown_client_and_nothing_is_fetched() {
    let mut h = Harness::default();
    serve(&mut h, &document(""));
    match h.authorize(&query(URL_ENC, "code")) {
        AuthorizeOutcome::ErrorPage(e) => assert_eq!(e.code, ErrorCode::InvalidRequest),
        other => panic!("{other:?}"),
    }
    assert!(h.fetched.is_empty());
}

#[test]
fn a_bad_client_id_url_is_refused_before_any_fetch() {
    let mut h = enabled();
    for (bad, says) in [
        ("https%3A%2F%2Fmcp.example.com", "path"),
        ("https%3A%2F%2Fmcp.example.com%2Fa%23frag", "fragment"),
        ("https%3A%2F%2Fu%3Ap%40mcp.example.com%2Fc", "user name"),
        ("https%3A%2F%2Fmcp.example.com%2Fa%2F..%2Fc", ".."),
        ("https%3A%2F%2FMCP.example.com%2Fc", "canonical"),
    ] {
        refused_at_authorize(&mut h, bad, says);
    }
    let long = format!("https%3A%2F%2Fmcp.example.com%2F{}", "a".repeat(300));
    refused_at_authorize(&mut h, &long, "255 bytes");
    assert!(h.fetched.is_empty());
}

#[test]
fn every_fetch_failure_is_an_error_page_never_a_redirect() {
    for (error, says) in [
        (FetchError::Refused, "does not fetch from"),
        (FetchError::Unreachable, "could not be fetched"),
        (FetchError::Timeout, "too long"),
        (FetchError::Redirected, "redirect"),
        (FetchError::Status(404), "404"),
        (FetchError::TooLarge, "5 KB"),
        (FetchError::NotJson, "JSON"),
        (FetchError::NotFetched, "does not fetch"),
    ] {
        let mut h = enabled();
        h.documents
            .insert(URL.to_owned(), ClientDocument::failed(error));
        refused_at_authorize(&mut h, URL_ENC, says);
    }
}

#[test]
fn every_document_rule_is_checked() {
    let other = document("").replace(URL, "https://mcp.example.com/oauth/other.json");
    let big = document(&format!(
        r#","client_uri":"https://mcp.example.com/{}""#,
        "a".repeat(5200)
    ));
    let cases: Vec<(String, &str)> = vec![
        (other, "not exactly the URL"),
        ("{not json".to_owned(), "not a JSON object"),
        (big, "5 KB"),
        (document(r#","client_secret":"hunter2""#), "client_secret"),
        (
            document("").replace(r#""none""#, r#""client_secret_basic""#),
            "token_endpoint_auth_method none",
        ),
        (
            document("").replace(r#""none""#, r#""private_key_jwt""#),
            "private_key_jwt",
        ),
        (
            document("").replace("http://127.0.0.1/cb", "http://evil.example/cb"),
            "redirect_uris",
        ),
        (document(r#","application_type":"web""#), "redirect_uris"),
        (
            document("").replace("mail offline_access", "mail admin"),
            "client metadata rules",
        ),
        (
            document("").replace("MCP Inspector", "MCP\u{202e}Inspector"),
            "client metadata rules",
        ),
    ];
    for (body, says) in cases {
        let mut h = enabled();
        serve(&mut h, &body);
        refused_at_authorize(&mut h, URL_ENC, says);
    }
}

#[test]
fn an_absent_auth_method_means_none() {
    let mut h = enabled();
    serve(
        &mut h,
        &document("").replace(r#","token_endpoint_auth_method":"none""#, ""),
    );
    let pending = h.pending(&query(URL_ENC, "code"));
    assert_eq!(pending.client_id(), URL);
}

#[test]
fn errors_after_the_redirect_check_are_shown_not_redirected() {
    // Anyone can publish a document naming any redirect URI: like a self-registered client's,
    // its errors are offered as a link, never redirected at once.
    let mut h = enabled();
    serve(&mut h, &document(""));
    match h.authorize(&query(URL_ENC, "token")) {
        AuthorizeOutcome::ErrorLink(link) => {
            assert_eq!(link.error.code, ErrorCode::UnsupportedResponseType);
            assert_eq!(link.host, "127.0.0.1");
        }
        other => panic!("expected an error link, got {other:?}"),
    }
}

#[test]
fn the_token_endpoint_refuses_a_broken_document_with_invalid_client() {
    let mut h = enabled();
    serve(&mut h, &document(""));
    let code = h.code_for(&query(URL_ENC, "code"), "alice");
    // The document changed between the authorization and the token request.
    serve(
        &mut h,
        &document("").replace(r#""none""#, r#""client_secret_post""#),
    );
    let r = h.token(
        &format!(
            "grant_type=authorization_code&code={code}&client_id={URL_ENC}&redirect_uri={REDIRECT_ENC}&code_verifier={VERIFIER}"
        ),
        None,
    );
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(json(&r)["error"], "invalid_client");
    h.documents
        .insert(URL.to_owned(), ClientDocument::failed(FetchError::Timeout));
    let r = h.token("grant_type=refresh_token&refresh_token=x&client_id=https%3A%2F%2Fmcp.example.com%2Foauth%2Fclient.json", None);
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(json(&r)["error_description"]
        .as_str()
        .unwrap()
        .contains("too long"));
}

/// A `client_credentials` request naming a document asks for the document only (a
/// registered client's request reads the client with its grant's revocation status instead, see
/// `token_endpoint.rs`), and is refused as before: a document's client is public.
#[test]
fn a_client_credentials_request_by_document_fetches_it_and_is_refused() {
    let mut h = enabled();
    serve(&mut h, &document(""));
    let (r, asked) = h.token_asking(
        &format!("grant_type=client_credentials&client_id={URL_ENC}"),
        None,
    );
    assert_eq!(json(&r)["error"], "unauthorized_client", "{}", r.body);
    assert_eq!(
        asked,
        vec![oauth_proto::store::Op::FetchClientDocument { url: URL.into() }]
    );
}

/// Introspection and revocation by a client named by its document fetch the document, so the
/// access token's revocation status is read on its own, after it (a registered caller reads it
/// with its client, see `introspection.rs`); the answers are as before.
#[test]
fn a_document_caller_reads_the_token_status_on_its_own() {
    use oauth_proto::store::Op;
    let mut h = enabled();
    serve(&mut h, &document(""));
    let pending = h.pending(&query(URL_ENC, "code"));
    let redirect = h.approve(pending, "alice");
    let code = location_param(&redirect, "code").expect("a code");
    let body = format!(
        "grant_type=authorization_code&code={code}&client_id={URL_ENC}&redirect_uri={REDIRECT_ENC}&code_verifier={VERIFIER}"
    );
    let access = json(&h.token(&body, None))["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let claims = h.validate(&access).unwrap();
    let fetch = Op::FetchClientDocument { url: URL.into() };
    let status = Op::RevocationStatus {
        grant_id: claims.grant_id,
        subject: "alice".into(),
    };
    let body = format!("token={access}&client_id={URL_ENC}");
    let (r, asked) = h.introspect_asking(&body, None);
    assert_eq!(json(&r)["active"], true, "{}", r.body);
    let user = Op::UserClaims {
        subject: "alice".into(),
    };
    assert_eq!(asked, vec![fetch.clone(), status.clone(), user]);
    let (r, asked) = h.revoke_asking(&body, None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(asked, vec![fetch, status]);
    assert_eq!(h.validate(&access), Err(TokenError::Revoked));
}
