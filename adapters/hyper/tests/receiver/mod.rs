//! A relying party's back-channel logout endpoint for tests: an HTTP/1.1 receiver on 127.0.0.1
//! that answers 200 to every request and hands over what it got, and the check of a logout token
//! against a server's published JWK Set, as a relying party makes it.
#![allow(dead_code)]

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use oauth_proto::jose::{jws, VerifyingKey};
use tokio::sync::mpsc;

/// What the receiver got: the content type and the body.
pub type Received = (Option<String>, String);

/// A receiver on 127.0.0.1: its port and what it gets.
pub async fn start() -> (u16, mpsc::UnboundedReceiver<Received>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let tx = tx.clone();
                        async move {
                            let content_type = req
                                .headers()
                                .get("content-type")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_owned);
                            let body = req.into_body().collect().await?.to_bytes();
                            let _ = tx.send((content_type, String::from_utf8_lossy(&body).into()));
                            Ok::<_, hyper::Error>(hyper::Response::new(Full::new(Bytes::new())))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (port, rx)
}

/// The logout token of a back-channel logout request (a form with `logout_token` only).
pub fn logout_token(received: &Received) -> String {
    assert_eq!(
        received.0.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    let form: Vec<(String, String)> = serde_urlencoded::from_str(&received.1).unwrap();
    assert_eq!(form.len(), 1, "{form:?}");
    assert_eq!(form[0].0, "logout_token");
    form[0].1.clone()
}

/// `token`'s header and claims, verified with the JWK Set `jwks` only (the document a relying
/// party fetches from `jwks_uri`).
pub fn verify(jwks: &serde_json::Value, token: &str) -> (serde_json::Value, serde_json::Value) {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header: serde_json::Value =
        serde_json::from_slice(&b64.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the kid is published");
    let key = VerifyingKey::from_jwk(&serde_json::from_value(jwk.clone()).unwrap()).unwrap();
    let verified = jws::verify_with(token, &key).expect("signature verifies");
    (header, serde_json::from_slice(&verified.payload).unwrap())
}

/// The checks of Back-Channel Logout §2.4 on a verified logout token's header and claims, for
/// the session `sid` of `sub` at `iss`, told to `aud`.
pub fn check_logout_token(
    header: &serde_json::Value,
    claims: &serde_json::Value,
    iss: &str,
    aud: &str,
    sub: &str,
    sid: &str,
) {
    assert_eq!(header["typ"], "logout+jwt");
    assert_eq!(claims["iss"], iss);
    assert_eq!(claims["aud"], aud);
    assert_eq!(claims["sub"], sub);
    assert_eq!(claims["sid"], sid);
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    assert_eq!(
        claims["events"],
        serde_json::json!({"http://schemas.openid.net/event/backchannel-logout": {}})
    );
    assert!(claims.get("nonce").is_none());
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert!(exp > iat && exp <= iat + 300, "short-lived: {iat}..{exp}");
}
