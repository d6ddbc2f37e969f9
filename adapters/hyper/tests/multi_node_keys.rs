//! Signing keys shared through PostgreSQL (issue 19): two `oauth-server` nodes started at the same
//! moment on an empty database agree on one set of keys (what one signs, the other verifies),
//! and `oauth-server key rotate --postgres` while both run reaches both within the bound
//! `oauth-store-postgres` documents (1 s): each signs access tokens with the new token key and
//! ID tokens with the new signing key, tokens signed before still validate at both, and both
//! publish the old and the new public keys. Each node has a data directory of its own, so the
//! keys can only come from the database. A deployment moving from the file store keeps its keys:
//! the first node on an empty database stores those of its data directory. The cluster is a
//! throwaway one the test starts (`oauth_store_postgres::testing`).

mod nodes;

use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use nodes::{
    add_app, add_resource_server, add_user, admin, cluster, enc, Http, Node, Resp, Start, BIN,
    CHALLENGE, REDIRECT, VERIFIER,
};
use oauth_proto::jose::{jws, JwkSet, VerifyingKey};
use oauth_store_postgres::testing::sql;
use serde_json::Value;

/// The propagation bound of `oauth-store-postgres` (its `keys` module).
const BOUND: Duration = Duration::from_secs(1);

/// Runs an administration command on the database that must fail; its standard error.
fn refused(url: &str, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .args(["--postgres", url])
        .output()
        .expect("run oauth-server");
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// The id of the token key that signed an access token (bytes 1 to 4 of the token).
fn key_id(access_token: &str) -> u32 {
    let bytes = unb64(access_token);
    u32::from_be_bytes(bytes[1..5].try_into().expect("four bytes"))
}

/// The `kid` in an ID token's header.
fn kid(id_token: &str) -> String {
    let header = id_token.split('.').next().expect("a header");
    let header: Value = serde_json::from_slice(&unb64(header)).expect("a JSON header");
    header["kid"].as_str().expect("a kid").to_owned()
}

/// The test's HTTP client, the deployment's clients and its nodes.
struct Deployment {
    http: Http,
    /// A confidential resource server with client_credentials (id, secret).
    rs: (String, String),
    /// A public app with the code flow and `openid`.
    app: String,
    nodes: [Node; 2],
}

impl Deployment {
    async fn send(
        &self,
        method: &str,
        url: String,
        headers: &[(&str, String)],
        body: String,
    ) -> Resp {
        self.http.send(method, url, headers, body).await
    }

    /// A form POST to `node`, as the resource server if `basic`.
    async fn form(
        &self,
        node: &Node,
        path: &str,
        form: &[(&str, &str)],
        basic: bool,
        cookie: Option<&str>,
    ) -> Resp {
        let rs = basic.then_some((self.rs.0.as_str(), self.rs.1.as_str()));
        self.http.form(&node.base, path, form, rs, cookie).await
    }

    /// Whether `node` says the access token is active (asked by the resource server).
    async fn active(&self, node: &Node, token: &str) -> bool {
        let r = self
            .form(node, "/introspect", &[("token", token)], true, None)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["active"].as_bool().expect("active")
    }

    /// A client_credentials access token of the resource server from `node`.
    async fn client_token(&self, node: &Node) -> String {
        let r = self
            .form(
                node,
                "/token",
                &[("grant_type", "client_credentials"), ("scope", "mail")],
                true,
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["access_token"]
            .as_str()
            .expect("a token")
            .to_owned()
    }

    /// The JWK Set `node` publishes.
    async fn jwks(&self, node: &Node) -> JwkSet {
        let r = self
            .send("GET", format!("{}/jwks", node.base), &[], String::new())
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        serde_json::from_str(&r.body).expect("a JWK Set")
    }

    /// Whether the ID token's signature verifies with the key of its kid in `node`'s JWK Set.
    async fn verifies_at(&self, node: &Node, id_token: &str) -> bool {
        let kid = kid(id_token);
        let jwks = self.jwks(node).await;
        let Some(jwk) = jwks.keys.iter().find(|k| k.kid.as_deref() == Some(&kid)) else {
            return false;
        };
        let key = VerifyingKey::from_jwk(jwk).expect("a usable public key");
        jws::verify_with(id_token, &key).is_ok()
    }

    /// Signs `USER` in at `node`, approves the app and redeems the code there: the token
    /// response (access, refresh and ID token).
    async fn sign_in(&self, node: &Node) -> Value {
        let query = format!(
            "response_type=code&client_id={}&redirect_uri={}&state=s&nonce=n\
             &scope=openid+mail+offline_access&code_challenge={CHALLENGE}\
             &code_challenge_method=S256",
            enc(&self.app),
            enc(REDIRECT)
        );
        let consent = self.http.sign_in(&node.base, &query).await;
        assert_eq!(consent.status, 200, "{}", consent.body);
        let code = self.http.approve(&node.base, &consent).await.code();
        let r = self
            .form(
                node,
                "/token",
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", VERIFIER),
                    ("client_id", &self.app),
                ],
                false,
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }

    /// Refreshes at `node`: the new token response.
    async fn refresh(&self, node: &Node, refresh_token: &str) -> Value {
        let r = self
            .form(
                node,
                "/token",
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token),
                    ("client_id", &self.app),
                ],
                false,
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }
}

fn text(v: &Value, name: &str) -> String {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {v}"))
        .to_owned()
}

#[test]
fn two_nodes_agree_on_keys_and_a_rotation_reaches_both_within_the_bound() {
    // The cluster's harness blocks on a runtime of its own: set up outside the test's.
    let Some(cluster) = cluster() else {
        return;
    };
    let url = cluster.create_database().expect("create a database");
    add_user(&url);
    let rs = add_resource_server(&url);
    let app = add_app(&url, "openid mail offline_access");
    // The administration commands made no keys: the nodes find the table empty.
    let said = refused(&url, &["key", "list"]);
    assert!(said.contains("holds no keys yet"), "{said}");
    // Both at the same moment, each with a data directory of its own.
    let (data_a, data_b) = (cluster.dir().join("data-a"), cluster.dir().join("data-b"));
    let mut nodes = [
        Node::spawn(Start::on(&url, &data_a)),
        Node::spawn(Start::on(&url, &data_b)),
    ];
    for node in &mut nodes {
        node.listening();
    }
    let d = Deployment {
        http: Http::new(),
        rs,
        app,
        nodes,
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(scenario(&d, &url));
    drop(d);
}

async fn scenario(d: &Deployment, url: &str) {
    let [a, b] = &d.nodes;

    // One set of keys: one token key, the same public keys at both nodes.
    let listed = admin(url, &["key", "list"], None);
    assert_eq!(listed.matches("token ").count(), 1, "{listed}");
    assert!(listed.contains("token   1  signing"), "{listed}");
    let jwks_before = d.jwks(a).await;
    assert_eq!(jwks_before.keys.len(), 3, "{jwks_before:?}");
    assert_eq!(d.jwks(b).await, jwks_before);

    // What one node signs, the other verifies.
    let signed_in = d.sign_in(a).await;
    let old_access = text(&signed_in, "access_token");
    let old_id_token = text(&signed_in, "id_token");
    let old_kid = kid(&old_id_token);
    assert_eq!(key_id(&old_access), 1);
    assert!(d.active(b, &old_access).await);
    assert!(d.verifies_at(b, &old_id_token).await);
    let old_client_token = d.client_token(b).await;
    assert!(d.active(a, &old_client_token).await);

    // A rotation while both run.
    let said = admin(url, &["key", "rotate"], None);
    let rotated = Instant::now();
    assert!(said.contains("new token key 2"), "{said}");
    let new_kid = said
        .split("ES256 ")
        .nth(1)
        .and_then(|rest| rest.split([',', ';', ' ', '\n']).next())
        .unwrap_or_else(|| panic!("no ES256 kid in {said}"))
        .to_owned();
    assert_ne!(new_kid, old_kid);

    // Within the bound, both sign with the new keys: access tokens with token key 2, ID tokens
    // (refreshed, so each node signs a new one) with the new ES256 key.
    let mut refresh = text(&signed_in, "refresh_token");
    let mut fresh = Vec::new();
    for node in [a, b] {
        loop {
            let issued = d.refresh(node, &refresh).await;
            refresh = text(&issued, "refresh_token");
            let access = text(&issued, "access_token");
            let id_token = text(&issued, "id_token");
            if key_id(&access) == 2 && kid(&id_token) == new_kid {
                assert_eq!(key_id(&d.client_token(node).await), 2);
                fresh.push((access, id_token));
                break;
            }
            assert!(
                rotated.elapsed() < BOUND,
                "{} still signs with token key {} and kid {} {:?} after the rotation",
                node.base,
                key_id(&access),
                kid(&id_token),
                rotated.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // Old and new tokens validate at both; both publish the old and the new public keys.
    for node in [a, b] {
        assert!(d.active(node, &old_access).await, "{}", node.base);
        assert!(d.active(node, &old_client_token).await, "{}", node.base);
        assert!(d.verifies_at(node, &old_id_token).await, "{}", node.base);
        for (access, id_token) in &fresh {
            assert!(d.active(node, access).await, "{}", node.base);
            assert!(d.verifies_at(node, id_token).await, "{}", node.base);
        }
        let jwks = d.jwks(node).await;
        assert_eq!(jwks.keys.len(), 6, "{jwks:?}");
        for kid in [&old_kid, &new_kid] {
            assert!(
                jwks.keys
                    .iter()
                    .any(|k| k.kid.as_deref() == Some(kid.as_str())),
                "{kid} not published by {}",
                node.base
            );
        }
    }
    let listed = admin(url, &["key", "list"], None);
    assert!(listed.contains("token   2  signing"), "{listed}");
    assert!(listed.contains("token   1  rotated out at"), "{listed}");
    // The old keys may verify tokens for a lifetime yet; the new ones sign.
    let said = refused(url, &["key", "retire", "1"]);
    assert!(said.contains("until"), "{said}");
    let said = refused(url, &["key", "retire", &new_kid]);
    assert!(said.contains("active"), "{said}");

    // A change no notification announces (as one sent while a node's listening connection was
    // down) is read by the periodic catch-up, within the bound too: here token key 1 is put
    // back in front, written by SQL alone.
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        sql(
            &url,
            "UPDATE server_keys SET revision = revision + 1,
                 token_keys = convert_to(jsonb_build_object('keys',
                     jsonb_build_array(t.k -> 1, t.k -> 0))::text, 'UTF8')
             FROM (SELECT convert_from(token_keys, 'UTF8')::jsonb -> 'keys' AS k
                   FROM server_keys) AS t",
        )
    })
    .await
    .expect("the update ran")
    .expect("the update");
    let changed = Instant::now();
    for node in [a, b] {
        while key_id(&d.client_token(node).await) != 1 {
            assert!(
                changed.elapsed() < BOUND,
                "{} missed a change made without a notification",
                node.base
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[test]
fn the_first_node_on_an_empty_database_takes_the_data_directorys_keys() {
    let Some(cluster) = cluster() else {
        return;
    };
    let url = cluster.create_database().expect("create a database");
    let data = cluster.dir().join("moved");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let http = Http::new();
    let jwks = |node: &Node| {
        let uri = format!("{}/jwks", node.base);
        runtime.block_on(async {
            let r = http.send("GET", uri, &[], String::new()).await;
            serde_json::from_str::<JwkSet>(&r.body).expect("a JWK Set")
        })
    };
    // A file-store server made its keys in the data directory.
    let files = Node::start(Start {
        postgres: None,
        ..Start::on(&url, &data)
    });
    let published = jwks(&files);
    drop(files);
    let token_keys: Value =
        serde_json::from_slice(&std::fs::read(data.join("token-keys.json")).expect("key file"))
            .expect("JSON");
    let secret = token_keys["keys"][0]["secret"].as_str().expect("a secret");

    let node = Node::start(Start::on(&url, &data));
    assert_eq!(jwks(&node), published);
    let stored = sql(
        &url,
        "SELECT convert_from(token_keys, 'UTF8') FROM server_keys",
    )
    .expect("query")
    .expect("a row");
    assert!(stored.contains(secret), "the token key was not taken over");
    drop(node);
}
