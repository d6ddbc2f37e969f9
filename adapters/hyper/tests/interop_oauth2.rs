//! An established client library that nobody here wrote, the `oauth2` crate, against the running
//! server: authorization code with PKCE (through the real pages), refresh, client credentials.
//! The library's HTTP goes through a small hyper client (its own HTTP features are off).

mod common;

use common::*;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge, RedirectUrl,
    Scope, TokenResponse, TokenUrl,
};

async fn http(req: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, std::io::Error> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let (parts, body) = req.into_parts();
    let req = hyper::Request::from_parts(parts, Full::new(Bytes::from(body)));
    let resp = client.request(req).await.map_err(std::io::Error::other)?;
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    Ok(oauth2::HttpResponse::from_parts(parts, body.to_vec()))
}

#[tokio::test]
async fn oauth2_crate_code_pkce_refresh_and_client_credentials() {
    let s = TestServer::start().await;
    let client = BasicClient::new(ClientId::new(s.public_id.clone()))
        .set_auth_uri(AuthUrl::new(format!("{}/authorize", s.base)).unwrap())
        .set_token_uri(TokenUrl::new(format!("{}/token", s.base)).unwrap())
        .set_redirect_uri(RedirectUrl::new(s.redirect.clone()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("mail".to_owned()))
        .add_scope(Scope::new("offline_access".to_owned()))
        .set_pkce_challenge(challenge)
        .url();

    let (cookie, consent) = s.sign_in_with(url.query().unwrap()).await;
    let r = s
        .post_form(
            "/authorize",
            Some(&cookie),
            &[
                ("csrf", &consent.hidden("csrf")),
                ("page", &consent.hidden("page")),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.location_param("state").as_deref(),
        Some(csrf.secret().as_str())
    );
    let code = r.location_param("code").unwrap();

    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    assert!(!tokens.access_token().secret().is_empty());
    let scopes: Vec<String> = tokens
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(scopes, ["mail", "offline_access"]);
    let refresh = tokens.refresh_token().expect("a refresh token").clone();

    let refreshed = client
        .exchange_refresh_token(&refresh)
        .request_async(&http)
        .await
        .expect("refresh");
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        refresh.secret()
    );
    // The rotated-out token is refused, and the library reports the server's error.
    let reuse = client
        .exchange_refresh_token(&refresh)
        .request_async(&http)
        .await;
    match reuse {
        Err(oauth2::RequestTokenError::ServerResponse(e)) => {
            assert_eq!(e.error().as_ref(), "invalid_grant")
        }
        other => panic!("{other:?}"),
    }

    let service = BasicClient::new(ClientId::new(s.service_id.clone()))
        .set_client_secret(ClientSecret::new(s.service_secret.clone()))
        .set_token_uri(TokenUrl::new(format!("{}/token", s.base)).unwrap());
    let cc = service
        .exchange_client_credentials()
        .add_scope(Scope::new("mail".to_owned()))
        .request_async(&http)
        .await
        .expect("client credentials");
    let claims = s
        .running
        .app()
        .engine
        .validate_access_token(
            cc.access_token().secret(),
            oauth_server::clock::now(),
            &*s.running.app().store,
        )
        .unwrap();
    assert_eq!(claims.client_id, s.service_id);
    s.running.shutdown().await;
}
