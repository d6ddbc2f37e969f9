//! Back-channel logout with the browser sessions in PostgreSQL, over two `oauth-server` nodes
//! whose every request alternates as a load balancer without sticky sessions sends them: the
//! sign-in on one node and the approval on the other record the relying party in the shared
//! session, the ID token's `sid` is the session's, the logout page on the other node accepts that
//! `sid` as the current session's and ends it, and the relying party (a receiver on 127.0.0.1,
//! allowed by `[server.cimd] allow_private_addresses`) gets a logout token with that `sid`,
//! which verifies with `/jwks`. The session's grant (no `offline_access`) is revoked in
//! PostgreSQL (Back-Channel Logout §2.7): its refresh token is refused on the other node, and its
//! access token at that node's `/userinfo` once the node's revocation view follows.

mod nodes;
mod receiver;

use std::time::Duration;

use nodes::{
    add_user, database, enc, Http, Node, Start, CHALLENGE, ISSUER, REDIRECT, USER, VERIFIER,
};

const CONFIG: &str = "[server.cimd]\nallow_private_addresses = true\ntimeout_ms = 2000\n";

#[test]
fn a_logout_on_another_node_tells_the_relying_party_the_sessions_sid() {
    let Some((cluster, url)) = database() else {
        return;
    };
    add_user(&url);
    let config = cluster.dir().join("node.toml");
    std::fs::write(&config, CONFIG).expect("write the configuration");
    let keys = cluster.dir().join("shared-keys");
    let nodes: Vec<Node> = (0..2)
        .map(|_| Node::start(Start::on(&url, &keys).config(&config)))
        .collect();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(scenario(&nodes));
}

async fn scenario(nodes: &[Node]) {
    let (a, b) = (&nodes[0].base, &nodes[1].base);
    let http = Http::new();
    let (port, mut got) = receiver::start().await;
    let body = serde_json::json!({
        "client_name": "Webmail",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid",
        "backchannel_logout_uri": format!("http://127.0.0.1:{port}/bc"),
    })
    .to_string();
    let r = http
        .send(
            "POST",
            format!("{b}/register"),
            &[("content-type", "application/json".to_owned())],
            body,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let rp = r.json()["client_id"].as_str().unwrap().to_owned();

    let query = format!(
        "response_type=code&client_id={rp}&redirect_uri={}&state=s&scope=openid\
         &code_challenge={CHALLENGE}&code_challenge_method=S256",
        enc(REDIRECT)
    );
    let consent = http.sign_in(a, &query).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    let cookie = consent.session_cookie();
    let redirect = http.approve(b, &consent).await;
    assert_eq!(redirect.status, 303, "{}", redirect.body);
    let code = redirect.code();
    let t = http
        .form(
            a,
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("client_id", &rp),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
            None,
            None,
        )
        .await;
    assert_eq!(t.status, 200, "{}", t.body);
    let id_token = t.json()["id_token"].as_str().unwrap().to_owned();
    let access_token = t.json()["access_token"].as_str().unwrap().to_owned();
    let refresh_token = t.json()["refresh_token"].as_str().unwrap().to_owned();
    let bearer = [("authorization", format!("Bearer {access_token}"))];
    let userinfo =
        |node: &str| http.send("GET", format!("{node}/userinfo"), &bearer, String::new());
    assert_eq!(userinfo(a).await.status, 200);
    let jwks = http
        .send("GET", format!("{b}/jwks"), &[], String::new())
        .await
        .json();
    let (_, id) = receiver::verify(&jwks, &id_token);
    let sid = id["sid"].as_str().expect("a sid").to_owned();
    assert_ne!(sid, cookie);
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));

    let page = http
        .send(
            "GET",
            format!("{a}/logout?id_token_hint={id_token}"),
            &[("cookie", format!("oauth_session={cookie}"))],
            String::new(),
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let done = http
        .form(
            b,
            "/logout",
            &[
                ("id_token_hint", &id_token),
                ("csrf", &page.hidden("csrf")),
                ("confirm", "1"),
            ],
            None,
            Some(&cookie),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);

    let received = tokio::time::timeout(Duration::from_secs(10), got.recv())
        .await
        .expect("the relying party is told within 10 s")
        .unwrap();
    let (header, claims) = receiver::verify(&jwks, &receiver::logout_token(&received));
    receiver::check_logout_token(&header, &claims, ISSUER, &rp, USER, &sid);

    let r = http
        .form(
            a,
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh_token),
                ("client_id", &rp),
            ],
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"], "invalid_grant");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = userinfo(a).await.status;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            tokio::time::Instant::now() < deadline,
            "node a refuses the revoked access token within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
