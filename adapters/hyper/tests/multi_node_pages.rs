//! Three `oauth-server` processes on one PostgreSQL database, and a browser (an HTTP client with
//! a cookie jar) whose every request goes to another node, as a load balancer without sticky
//! sessions sends them: the code flow with PKCE and the device flow complete; an attacker
//! spreading wrong passwords for alice over the nodes is refused within the bound
//! `oauth-server`'s `shared_limits` documents while alice signs in; registrations spread over
//! the nodes respect the one quota. The cluster is a throwaway one the test starts
//! (`oauth_store_postgres::testing`).

mod nodes;

use std::net::IpAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use nodes::{
    add_app, add_user, database, enc, Node, Resp, Start, CHALLENGE, PASSWORD, REDIRECT, USER,
    VERIFIER,
};
use oauth_store_postgres::testing::Cluster;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Guesses of one account from one address before the address is refused for it.
const PAIR_MAX: usize = 6;
/// Registrations per address, and in all, per window.
const PER_ADDRESS: usize = 4;
const TOTAL: usize = 6;
/// The nodes' configuration: fast delays, and the bounds above.
const CONFIG: &str = "[throttle]\nbase_delay_ms = 1\nmax_delay_ms = 5\npair_free_failures = 3\n\
                      pair_max_failures = 6\nregistrations_per_address = 4\nregistrations_total = 6\n";
/// Longer than `shared_limits::INTERVAL` (100 ms) plus a delivery: guesses this far apart are
/// counted everywhere before the next, so the bound is the single-node budget exactly.
const PACE: Duration = Duration::from_millis(500);

/// A database with alice and a public app, and three nodes on it.
struct Deployment {
    nodes: Vec<Node>,
    app: String,
    _cluster: Cluster,
}

fn deploy() -> Option<Deployment> {
    let (cluster, url) = database()?;
    add_user(&url);
    let app = add_app(&url, "mail offline_access");
    let config = cluster.dir().join("node.toml");
    std::fs::write(&config, CONFIG).expect("write the configuration");
    let keys = cluster.dir().join("shared-keys");
    let mut nodes = vec![Node::start(Start::on(&url, &keys).config(&config))];
    nodes.extend((0..2).map(|_| Node::start(Start::on(&url, &keys).config(&config))));
    Some(Deployment {
        nodes,
        app,
        _cluster: cluster,
    })
}

fn run(test: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(test)
}

/// A browser at one source address, keeping the session cookie as browsers do.
struct Browser {
    http: Client<HttpConnector, Full<Bytes>>,
    cookie: Option<String>,
}

impl Browser {
    fn at(source: &str) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_local_address(Some(source.parse::<IpAddr>().expect("an address")));
        Browser {
            http: Client::builder(TokioExecutor::new()).build(connector),
            cookie: None,
        }
    }

    async fn send(&mut self, method: &str, url: String, ctype: &str, body: String) -> Resp {
        let mut b = hyper::Request::builder().method(method).uri(url);
        if !ctype.is_empty() {
            b = b.header("content-type", ctype);
        }
        if let Some(c) = &self.cookie {
            b = b.header("cookie", format!("oauth_session={c}"));
        }
        let resp = self
            .http
            .request(b.body(Full::new(Bytes::from(body))).expect("request"))
            .await
            .expect("the node answers");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        if let Some(c) = headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix("oauth_session="))
        {
            self.cookie = Some(c.split(';').next().unwrap_or_default().to_owned());
        }
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        Resp {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    async fn get(&mut self, node: &Node, path_and_query: &str) -> Resp {
        self.send(
            "GET",
            format!("{}{path_and_query}", node.base),
            "",
            String::new(),
        )
        .await
    }

    async fn post(&mut self, node: &Node, path: &str, form: &[(&str, &str)]) -> Resp {
        let body = serde_urlencoded::to_string(form).expect("form");
        self.send(
            "POST",
            format!("{}{path}", node.base),
            "application/x-www-form-urlencoded",
            body,
        )
        .await
    }

    async fn register(&mut self, node: &Node, body: serde_json::Value) -> Resp {
        self.send(
            "POST",
            format!("{}/register", node.base),
            "application/json",
            body.to_string(),
        )
        .await
    }
}

#[test]
fn a_browser_alternating_between_nodes_completes_the_code_and_device_flows() {
    let Some(d) = deploy() else {
        return;
    };
    run(async {
        let [one, two, three] = &d.nodes[..] else {
            panic!("three nodes");
        };
        // The code flow with PKCE: the page at node 1, sign-in at node 2, approval at node 3,
        // the code redeemed at node 1.
        let mut browser = Browser::at("127.0.0.1");
        let query = format!(
            "response_type=code&client_id={}&redirect_uri={}&state=xyz&scope=mail+offline_access\
             &code_challenge={CHALLENGE}&code_challenge_method=S256",
            enc(&d.app),
            enc(REDIRECT)
        );
        let page = browser.get(one, &format!("/authorize?{query}")).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains("name=\"password\""), "{}", page.body);
        let consent = browser
            .post(
                two,
                "/authorize",
                &[
                    ("csrf", &page.hidden("csrf")),
                    ("page", &page.hidden("page")),
                    ("username", USER),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(consent.status, 200, "{}", consent.body);
        assert!(
            consent.body.contains("value=\"approve\""),
            "{}",
            consent.body
        );
        let approved = browser
            .post(
                three,
                "/authorize",
                &[
                    ("csrf", &consent.hidden("csrf")),
                    ("page", &consent.hidden("page")),
                    ("decision", "approve"),
                ],
            )
            .await;
        assert_eq!(approved.status, 303, "{}", approved.body);
        let location = approved.headers["location"].to_str().expect("location");
        assert!(location.starts_with(REDIRECT), "{location}");
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(location.split_once('?').expect("a query").1)
                .expect("query");
        let param = |name: &str| {
            pairs
                .iter()
                .find_map(|(k, v)| (k == name).then(|| v.clone()))
                .unwrap_or_else(|| panic!("no {name} in {location}"))
        };
        assert_eq!(param("state"), "xyz");
        let code = param("code");
        // The page was used once: approving again, anywhere, finds it gone.
        let again = browser
            .post(
                one,
                "/authorize",
                &[
                    ("csrf", &consent.hidden("csrf")),
                    ("page", &consent.hidden("page")),
                    ("decision", "approve"),
                ],
            )
            .await;
        assert_eq!(again.status, 400, "{}", again.body);
        let mut client = Browser::at("127.0.0.1");
        let tokens = client
            .post(
                one,
                "/token",
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", VERIFIER),
                    ("client_id", &d.app),
                ],
            )
            .await;
        assert_eq!(tokens.status, 200, "{}", tokens.body);
        assert!(
            tokens.json()["refresh_token"].is_string(),
            "{}",
            tokens.body
        );

        // The device flow: the device starts at node 1; the person enters the code at node 2,
        // signs in at node 3 and approves at node 1; the device gets its tokens from node 2.
        let tv = client
            .register(
                one,
                serde_json::json!({
                    "token_endpoint_auth_method": "none",
                    "grant_types": [DEVICE_GRANT, "refresh_token"],
                    "client_name": "Living room TV",
                    "scope": "mail offline_access",
                }),
            )
            .await;
        assert_eq!(tv.status, 201, "{}", tv.body);
        let tv = tv.json()["client_id"]
            .as_str()
            .expect("client_id")
            .to_owned();
        let started = client
            .post(
                one,
                "/device_authorization",
                &[("client_id", &tv), ("scope", "mail offline_access")],
            )
            .await;
        assert_eq!(started.status, 200, "{}", started.body);
        let started = started.json();
        let user_code = started["user_code"].as_str().expect("user_code");
        let device_code = started["device_code"].as_str().expect("device_code");

        let mut person = Browser::at("127.0.0.1");
        let form = person.get(two, "/device").await;
        assert_eq!(form.status, 200, "{}", form.body);
        let sign_in = person
            .post(
                three,
                "/device",
                &[("csrf", &form.hidden("csrf")), ("user_code", user_code)],
            )
            .await;
        assert_eq!(sign_in.status, 200, "{}", sign_in.body);
        assert!(
            sign_in.body.contains("name=\"password\""),
            "{}",
            sign_in.body
        );
        let consent = person
            .post(
                one,
                "/device",
                &[
                    ("csrf", &sign_in.hidden("csrf")),
                    ("page", &sign_in.hidden("page")),
                    ("username", USER),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(consent.status, 200, "{}", consent.body);
        assert!(consent.body.contains(user_code), "the code, to compare");
        let approved = person
            .post(
                two,
                "/device",
                &[
                    ("csrf", &consent.hidden("csrf")),
                    ("page", &consent.hidden("page")),
                    ("decision", "approve"),
                ],
            )
            .await;
        assert_eq!(approved.status, 200, "{}", approved.body);
        assert!(
            approved.body.contains("Device connected"),
            "{}",
            approved.body
        );
        let polled = client
            .post(
                three,
                "/token",
                &[
                    ("grant_type", DEVICE_GRANT),
                    ("device_code", device_code),
                    ("client_id", &tv),
                ],
            )
            .await;
        assert_eq!(polled.status, 200, "{}", polled.body);
        assert!(polled.json()["access_token"].is_string());
    });
}

#[test]
fn guesses_spread_over_the_nodes_are_refused_within_the_single_node_budget() {
    let Some(d) = deploy() else {
        return;
    };
    run(async {
        let mut attacker = Browser::at("127.0.0.2");
        let query = format!(
            "response_type=code&client_id={}&redirect_uri={}&scope=mail\
             &code_challenge={CHALLENGE}&code_challenge_method=S256",
            enc(&d.app),
            enc(REDIRECT)
        );
        // Round robin over the nodes, one guess per PACE; each node alone would allow PAIR_MAX.
        let mut checked = 0;
        let mut refused_in_a_row = 0;
        for attempt in 0..3 * PAIR_MAX + 3 {
            let node = &d.nodes[attempt % 3];
            let page = attacker.get(node, &format!("/authorize?{query}")).await;
            assert_eq!(page.status, 200, "{}", page.body);
            let answer = attacker
                .post(
                    node,
                    "/authorize",
                    &[
                        ("csrf", &page.hidden("csrf")),
                        ("page", &page.hidden("page")),
                        ("username", USER),
                        ("password", &format!("guess {attempt}")),
                    ],
                )
                .await;
            match answer.status {
                200 => {
                    assert!(answer.body.contains("wrong"), "{}", answer.body);
                    checked += 1;
                    refused_in_a_row = 0;
                }
                429 => refused_in_a_row += 1,
                other => panic!("{other}: {}", answer.body),
            }
            if refused_in_a_row == 3 {
                break;
            }
            tokio::time::sleep(PACE).await;
        }
        assert_eq!(
            refused_in_a_row, 3,
            "every node refuses the attacker in the end"
        );
        assert_eq!(
            checked, PAIR_MAX,
            "guesses checked before every node refused (one node alone allows {PAIR_MAX})"
        );

        // Alice, from her own address, signs in at any node meanwhile.
        for node in &d.nodes {
            let mut alice = Browser::at("127.0.0.1");
            let page = alice.get(node, &format!("/authorize?{query}")).await;
            assert_eq!(page.status, 200, "{}", page.body);
            let consent = alice
                .post(
                    node,
                    "/authorize",
                    &[
                        ("csrf", &page.hidden("csrf")),
                        ("page", &page.hidden("page")),
                        ("username", USER),
                        ("password", PASSWORD),
                    ],
                )
                .await;
            assert_eq!(consent.status, 200, "{}", consent.body);
            assert!(
                consent.body.contains("value=\"approve\""),
                "{}",
                consent.body
            );
        }
    });
}

#[test]
fn registrations_spread_over_the_nodes_respect_one_quota() {
    let Some(d) = deploy() else {
        return;
    };
    run(async {
        let body = || {
            serde_json::json!({
                "token_endpoint_auth_method": "none",
                "redirect_uris": [REDIRECT],
                "client_name": "Mail app",
            })
        };
        // One address, round robin: PER_ADDRESS in all, not per node.
        let mut first = Browser::at("127.0.0.1");
        for i in 0..PER_ADDRESS + 2 {
            let r = first.register(&d.nodes[i % 3], body()).await;
            let expected = if i < PER_ADDRESS { 201 } else { 429 };
            assert_eq!(r.status, expected, "registration {i}: {}", r.body);
            if expected == 429 {
                let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
                assert!((1..=3600).contains(&retry), "{retry}");
            }
        }
        // Another address gets what is left of the total.
        let mut second = Browser::at("127.0.0.3");
        for i in 0..TOTAL - PER_ADDRESS + 2 {
            let r = second.register(&d.nodes[(i + 1) % 3], body()).await;
            let expected = if i < TOTAL - PER_ADDRESS { 201 } else { 429 };
            assert_eq!(
                r.status, expected,
                "registration {i} from 127.0.0.3: {}",
                r.body
            );
        }
    });
}
