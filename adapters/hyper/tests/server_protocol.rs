//! The protocol endpoints over real HTTP: discovery, registration and its management, device
//! authorization, introspection, revocation.

mod common;

use common::*;

#[tokio::test]
async fn discovery_documents_describe_what_is_served() {
    let s = TestServer::start().await;
    let r = s.get("/.well-known/oauth-authorization-server", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let m = r.json();
    let issuer = m["issuer"].as_str().unwrap().to_owned();
    for key in [
        "authorization_endpoint",
        "token_endpoint",
        "registration_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
        "device_authorization_endpoint",
    ] {
        let url = m[key].as_str().unwrap_or_else(|| panic!("{key} missing"));
        assert!(url.starts_with(&issuer), "{key}: {url}");
        // Every advertised endpoint is really served here (a GET is refused with 405, not 404).
        let path = &url[issuer.len()..];
        let probe = s.get(path, None).await;
        assert_ne!(probe.status, 404, "{key} {path} is not routed");
    }
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        s.get("/.well-known/openid-configuration", None)
            .await
            .json()["issuer"],
        issuer
    );
    assert_eq!(
        s.get("/.well-known/oauth-protected-resource", None)
            .await
            .status,
        200
    );
    assert_eq!(
        s.get("/.well-known/oauth-authorization-server/other", None)
            .await
            .status,
        404
    );
    s.running.shutdown().await;
}

#[tokio::test]
async fn a_native_client_registers_reads_its_registration_and_deletes_it() {
    let s = TestServer::start().await;
    let body = serde_json::json!({
        "redirect_uris": ["http://127.0.0.1/callback"],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
        "client_name": "Mail Client",
        "scope": "mail offline_access",
    });
    let r = s
        .send(
            "POST",
            "/register",
            &[("content-type", "application/json")],
            body.to_string().as_bytes(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let reg = r.json();
    let client_id = reg["client_id"].as_str().unwrap().to_owned();
    let rat = reg["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(reg.get("client_secret").is_none());
    let path = format!("/register/{client_id}");
    let bearer = format!("Bearer {rat}");
    let read = s
        .send("GET", &path, &[("authorization", &bearer)], b"")
        .await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.json()["client_name"], "Mail Client");
    let wrong = s
        .send("GET", &path, &[("authorization", "Bearer wrong")], b"")
        .await;
    assert_eq!(wrong.status, 401);

    // The new client starts a device authorization.
    let r = s
        .post_form(
            "/device_authorization",
            None,
            &[("client_id", &client_id), ("scope", "mail")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let d = r.json();
    assert_eq!(d["user_code"].as_str().unwrap().len(), 9);
    let poll = s
        .token(
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", d["device_code"].as_str().unwrap()),
                ("client_id", &client_id),
            ],
            None,
        )
        .await;
    assert_eq!(poll.json()["error"], "authorization_pending");

    let del = s
        .send("DELETE", &path, &[("authorization", &bearer)], b"")
        .await;
    assert_eq!(del.status, 204);
    assert_eq!(
        s.send("GET", &path, &[("authorization", &bearer)], b"")
            .await
            .status,
        401
    );
    s.running.shutdown().await;
}

#[tokio::test]
async fn introspection_and_revocation() {
    let s = TestServer::start().await;
    let r = s
        .token(
            &[("grant_type", "client_credentials")],
            Some((&s.service_id, &s.service_secret)),
        )
        .await;
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    let basic = |id: &str, secret: &str| {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                enc(id),
                enc(secret)
            ))
        )
    };
    let form = format!("token={token}");
    let headers_web = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("authorization", &*basic(&s.web_id, &s.web_secret)),
    ];
    let r = s
        .send("POST", "/introspect", &headers_web, form.as_bytes())
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!(j["active"], true);
    assert_eq!(
        j["client_id"],
        s.service_id.as_str(),
        "the token's owner, not the caller"
    );
    // Unauthenticated introspection is refused.
    let r = s
        .send(
            "POST",
            "/introspect",
            &[("content-type", "application/x-www-form-urlencoded")],
            form.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 401);
    // The owner revokes it; it is inactive at once.
    let headers_service = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("authorization", &*basic(&s.service_id, &s.service_secret)),
    ];
    let r = s
        .send("POST", "/revoke", &headers_service, form.as_bytes())
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s
        .send("POST", "/introspect", &headers_web, form.as_bytes())
        .await;
    assert_eq!(r.json(), serde_json::json!({"active": false}));
    s.running.shutdown().await;
}
