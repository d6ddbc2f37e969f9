//! Three `oauth-server` processes on one PostgreSQL database, as behind a load balancer: what one
//! node issues, another validates; a revocation at one is refused by every node within the bound
//! `oauth-store-postgres` documents (1 s); concurrent uses of one refresh token or one code, spread
//! over the nodes, succeed exactly once. The keys live in the database (`oauth_store_postgres`'s
//! `keys`: the nodes agree on them whatever their data directories hold; `multi_node_keys.rs`
//! tests that apart); the cluster is a throwaway one the test starts
//! (`oauth_store_postgres::testing`).

mod nodes;

use std::time::{Duration, Instant};

use nodes::{
    add_app, add_resource_server, add_user, database, enc, Http, Node, Resp, Start, CHALLENGE,
    REDIRECT, VERIFIER,
};
use oauth_store_postgres::testing::Cluster;

/// The propagation bound of `oauth-store-postgres`.
const BOUND: Duration = Duration::from_secs(1);

impl Http {
    /// Whether `node` says the token is active, asked by the resource server.
    async fn active(&self, node: &Node, rs: &(String, String), token: &str) -> bool {
        let r = self
            .form(
                &node.base,
                "/introspect",
                &[("token", token)],
                Some((&rs.0, &rs.1)),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["active"]
            .as_bool()
            .unwrap_or_else(|| panic!("no active in {}", r.body))
    }
}

/// The deployment: a database, three nodes, a resource server and an app.
struct Deployment {
    nodes: Vec<Node>,
    http: Http,
    /// A confidential resource server with client_credentials (id, secret).
    rs: (String, String),
    /// A public app with the code flow.
    app: String,
    _cluster: Cluster,
}

fn deploy() -> Option<Deployment> {
    let (cluster, url) = database()?;
    add_user(&url);
    let rs = add_resource_server(&url);
    let app = add_app(&url, "mail offline_access");
    // The nodes' data directory; the keys they sign with come from the database.
    let keys = cluster.dir().join("shared-keys");
    // The races below are 98 failed guesses from one address: delays of a few milliseconds
    // instead of the default 200 ms doubling, so that the test takes seconds, not a minute.
    let config = cluster.dir().join("node.toml");
    std::fs::write(&config, "[throttle]\nbase_delay_ms = 1\nmax_delay_ms = 5\n")
        .expect("write the configuration");
    let first = Node::start(Start::on(&url, &keys).config(&config));
    let mut nodes = vec![first];
    nodes.extend((0..2).map(|_| Node::start(Start::on(&url, &keys).config(&config))));
    Some(Deployment {
        nodes,
        http: Http::new(),
        rs,
        app,
        _cluster: cluster,
    })
}

impl Deployment {
    /// Signs `USER` in at `node` and approves the app (on the consent page, which
    /// `prompt=consent` shows even when the consent is remembered); the code.
    async fn code(&self, node: &Node, state: &str) -> String {
        let query = format!(
            "response_type=code&client_id={}&redirect_uri={}&state={state}\
             &scope=mail+offline_access&code_challenge={CHALLENGE}&code_challenge_method=S256\
             &prompt=consent",
            enc(&self.app),
            enc(REDIRECT)
        );
        let consent = self.http.sign_in(&node.base, &query).await;
        assert_eq!(consent.status, 200, "{}", consent.body);
        self.http.approve(&node.base, &consent).await.code()
    }

    async fn redeem(&self, node: &Node, code: &str) -> Resp {
        self.http
            .form(
                &node.base,
                "/token",
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", VERIFIER),
                    ("client_id", &self.app),
                ],
                None,
                None,
            )
            .await
    }

    async fn refresh(&self, node: &Node, token: &str) -> Resp {
        self.http
            .form(
                &node.base,
                "/token",
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token),
                    ("client_id", &self.app),
                ],
                None,
                None,
            )
            .await
    }

    /// Waits until every node says `token` is inactive; panics past `bound`.
    async fn refused_everywhere_within(&self, token: &str, bound: Duration) -> Duration {
        let started = Instant::now();
        let mut refused = vec![false; self.nodes.len()];
        loop {
            for (i, node) in self.nodes.iter().enumerate() {
                if !refused[i] {
                    refused[i] = !self.http.active(node, &self.rs, token).await;
                }
            }
            if refused.iter().all(|r| *r) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() <= bound,
                "nodes {refused:?} (false: still active) after {:?}",
                started.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[test]
fn three_nodes_on_one_database() {
    // The cluster's harness blocks on a runtime of its own: set up outside the test's.
    let Some(d) = deploy() else {
        return;
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(scenario(&d));
}

async fn scenario(d: &Deployment) {
    let [one, two, three] = &d.nodes[..] else {
        panic!("three nodes");
    };

    // Issued by node 1, introspected and validated by nodes 2 and 3.
    let issued = d
        .http
        .form(
            &one.base,
            "/token",
            &[("grant_type", "client_credentials"), ("scope", "mail")],
            Some((&d.rs.0, &d.rs.1)),
            None,
        )
        .await;
    assert_eq!(issued.status, 200, "{}", issued.body);
    let access = issued.json()["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    for node in [two, three] {
        assert!(d.http.active(node, &d.rs, &access).await);
    }

    // Revoked at node 3: refused by every node within the bound.
    let revoked = d
        .http
        .form(
            &three.base,
            "/revoke",
            &[("token", &access)],
            Some((&d.rs.0, &d.rs.1)),
            None,
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    d.refused_everywhere_within(&access, BOUND).await;

    // 50 concurrent redemptions of one code, spread over the nodes: exactly one succeeds.
    let code = d.code(one, "code-race").await;
    let answers = futures_join(
        (0..50)
            .map(|i| {
                let code = &code;
                async move { d.redeem(&d.nodes[i % 3], code).await }
            })
            .collect(),
    )
    .await;
    let won: Vec<&Resp> = answers.iter().filter(|r| r.status == 200).collect();
    assert_eq!(won.len(), 1, "exactly one redemption succeeds");
    for lost in answers.iter().filter(|r| r.status != 200) {
        assert_eq!(lost.status, 400, "{}", lost.body);
        assert_eq!(lost.json()["error"], "invalid_grant", "{}", lost.body);
    }

    // 50 concurrent refreshes of one refresh token, spread over the nodes: exactly one succeeds,
    // and the reuse by the others revokes the grant: the winner's tokens stop working too.
    let code = d.code(two, "refresh-race").await;
    let tokens = d.redeem(three, &code).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let refresh = tokens.json()["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_owned();
    let answers = futures_join(
        (0..50)
            .map(|i| {
                let refresh = &refresh;
                async move { d.refresh(&d.nodes[i % 3], refresh).await }
            })
            .collect(),
    )
    .await;
    let won: Vec<&Resp> = answers.iter().filter(|r| r.status == 200).collect();
    assert_eq!(won.len(), 1, "exactly one refresh succeeds");
    for lost in answers.iter().filter(|r| r.status != 200) {
        assert_eq!(lost.status, 400, "{}", lost.body);
        assert_eq!(lost.json()["error"], "invalid_grant", "{}", lost.body);
    }
    let winner = won[0].json();
    let new_access = winner["access_token"].as_str().expect("access_token");
    let new_refresh = winner["refresh_token"].as_str().expect("refresh_token");
    d.refused_everywhere_within(new_access, BOUND).await;
    for node in &d.nodes {
        let r = d.refresh(node, new_refresh).await;
        assert_eq!(r.status, 400, "the grant is revoked: {}", r.body);
        assert_eq!(r.json()["error"], "invalid_grant", "{}", r.body);
    }
}

/// Runs the futures concurrently (on this task), in order.
async fn futures_join<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(o) => *output = Some(o),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

#[test]
fn without_its_database_a_node_answers_503_with_retry_after_logs_once_and_recovers() {
    let Some((cluster, url)) = database() else {
        return;
    };
    let rs = add_resource_server(&url);
    let config = cluster.dir().join("node.toml");
    std::fs::write(&config, "").expect("write the configuration");
    let log = cluster.dir().join("node.log");
    let keys = cluster.dir().join("keys");
    let node = Node::start(Start::on(&url, &keys).config(&config).log(&log));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let http = Http::new();
    let token = |http: Http| {
        let rs = rs.clone();
        let node = &node;
        async move {
            http.form(
                &node.base,
                "/token",
                &[("grant_type", "client_credentials")],
                Some((&rs.0, &rs.1)),
                None,
            )
            .await
        }
    };
    let issued = runtime.block_on(token(http.clone()));
    assert_eq!(issued.status, 200, "{}", issued.body);
    let access = issued.json()["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();

    cluster.stop_server().expect("stop the database");
    for _ in 0..20 {
        let r = runtime.block_on(token(http.clone()));
        assert_eq!(r.status, 503, "{}", r.body);
        assert_eq!(r.headers["retry-after"], "5");
        assert_eq!(r.json()["error"], "temporarily_unavailable", "{}", r.body);
    }
    // Introspection authenticates its caller against the store: 503 as well.
    let r = runtime.block_on(http.form(
        &node.base,
        "/introspect",
        &[("token", &access)],
        Some((&rs.0, &rs.1)),
        None,
    ));
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.headers["retry-after"], "5");
    // The log is written by a thread of its own: wait for the line, then for any other.
    let read_log = || std::fs::read_to_string(&log).expect("read the log");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !read_log().contains("the store is failing") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let lines = read_log();
    let failing: Vec<&str> = lines
        .lines()
        .filter(|l| l.contains("the store is failing"))
        .collect();
    assert_eq!(failing.len(), 1, "one line for the outage:\n{lines}");
    let errors = lines.lines().filter(|l| l.contains("ERROR")).count();
    assert_eq!(errors, 1, "no other error line:\n{lines}");
    assert!(failing[0].contains("PostgreSQL"), "{}", failing[0]);

    cluster.start_server().expect("start the database again");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = runtime.block_on(token(http.clone()));
        if r.status == 200 {
            // The database is back, and still knows the token.
            assert!(runtime.block_on(http.active(&node, &rs, &access)));
            break;
        }
        assert_eq!(r.status, 503, "{}", r.body);
        assert!(Instant::now() < deadline, "the node did not recover");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(node);
}
