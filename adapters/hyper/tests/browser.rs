//! The pages in a real browser: headless Chromium driven over WebDriver (chromedriver).
//!
//! One test walks a person's paths through the authorization page: sign in and approve (landing
//! on the redirect URI with a code that the token endpoint accepts with the PKCE verifier), deny,
//! and a wrong password. The redirect URI is a tiny loopback listener in the test, so the browser
//! really loads it and the CSP's `form-action` is exercised on the redirect after the POST.
//! Another walks the device flow (RFC 8628): open the `verification_uri_complete` link, find the
//! code prefilled, sign in, compare the code and approve (the polling device then gets tokens),
//! deny a second device (it gets `access_denied`), and mistype a code.
//!
//! Without `chromedriver` on the PATH (or in `$CHROMEDRIVER`) the test prints why and passes, so a
//! plain `cargo test` works anywhere; CI installs Debian's `chromium` and `chromium-driver`.
//! Set `OAUTH_SCREENSHOT_DIR` to save a screenshot of each page.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn find_program(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// Answers every request with a small page, like a native app's loopback listener.
async fn redirect_listener() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let body = "<!doctype html><title>callback</title><p>back in the app</p>";
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(resp.as_bytes()).await;
            });
        }
    });
    format!("http://127.0.0.1:{port}/cb")
}

async fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for_url(c: &Client, prefix: &str) -> url::Url {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let u = c.current_url().await.unwrap();
        if u.as_str().starts_with(prefix) {
            return u;
        }
        assert!(Instant::now() < deadline, "still at {u}, expected {prefix}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn param(u: &url::Url, name: &str) -> Option<String> {
    u.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn screenshot(c: &Client, name: &str) {
    if let Some(dir) = std::env::var_os("OAUTH_SCREENSHOT_DIR") {
        let png = c.screenshot().await.unwrap();
        std::fs::write(Path::new(&dir).join(format!("{name}.png")), png).unwrap();
    }
}

async fn sign_in(c: &Client, password: &str) {
    c.wait()
        .for_element(Locator::Css("input[name=username]"))
        .await
        .unwrap()
        .send_keys(USER)
        .await
        .unwrap();
    c.find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys(password)
        .await
        .unwrap();
    screenshot(c, "login").await;
    c.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn journey(c: &Client, s: &TestServer) {
    // 1. Sign in and approve.
    c.goto(&format!(
        "{}/authorize?{}",
        s.base,
        s.authorize_query("browser-1")
    ))
    .await
    .unwrap();
    sign_in(c, PASSWORD).await;
    let approve = c
        .wait()
        .for_element(Locator::Css("button[name=decision][value=approve]"))
        .await
        .unwrap();
    let text = c
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("Native <Mail> App"), "{text}");
    assert!(
        text.contains("127.0.0.1") && text.contains("offline_access"),
        "{text}"
    );
    screenshot(c, "consent").await;
    approve.click().await.unwrap();
    let landed = wait_for_url(c, &s.redirect).await;
    assert_eq!(param(&landed, "state").as_deref(), Some("browser-1"));
    assert_eq!(
        param(&landed, "iss").as_deref(),
        Some("http://127.0.0.1:8080")
    );
    let code = param(&landed, "code").expect("a code");
    let t = s
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &s.redirect),
                ("client_id", &s.public_id),
                ("code_verifier", VERIFIER),
            ],
            None,
        )
        .await;
    assert_eq!(t.status, 200, "{}", t.body);
    assert!(t.json()["access_token"].is_string());

    // 2. Same browser, still signed in, consent remembered (issue 18): straight back to the
    // client with a code; with prompt=consent the consent page again, and deny.
    c.goto(&format!(
        "{}/authorize?{}",
        s.base,
        s.authorize_query("browser-2a")
    ))
    .await
    .unwrap();
    let landed = wait_for_url(c, &s.redirect).await;
    assert_eq!(param(&landed, "state").as_deref(), Some("browser-2a"));
    assert!(param(&landed, "code").is_some(), "{landed}");
    c.goto(&format!(
        "{}/authorize?{}&prompt=consent",
        s.base,
        s.authorize_query("browser-2")
    ))
    .await
    .unwrap();
    c.wait()
        .for_element(Locator::Css("button[name=decision][value=deny]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let landed = wait_for_url(c, &s.redirect).await;
    assert_eq!(param(&landed, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&landed, "state").as_deref(), Some("browser-2"));
    assert!(param(&landed, "code").is_none());

    // 2b. prompt=login in the signed-in browser: the password again, on a form naming the user;
    // then the consent page (the denial above withdrew the remembered consent), and a code.
    c.goto(&format!(
        "{}/authorize?{}&prompt=login",
        s.base,
        s.authorize_query("browser-2b")
    ))
    .await
    .unwrap();
    let name = c
        .wait()
        .for_element(Locator::Css("input[name=username]"))
        .await
        .unwrap();
    assert_eq!(name.prop("value").await.unwrap().as_deref(), Some(USER));
    name.clear().await.unwrap();
    sign_in(c, PASSWORD).await;
    c.wait()
        .for_element(Locator::Css("button[name=decision][value=approve]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let landed = wait_for_url(c, &s.redirect).await;
    assert_eq!(param(&landed, "state").as_deref(), Some("browser-2b"));
    assert!(param(&landed, "code").is_some(), "{landed}");

    // 2c. Signing out with the consent page's link: the server asks first ("Sign out?"), and
    // after the person confirms, the session is gone: the next request asks for a password.
    c.goto(&format!(
        "{}/authorize?{}&prompt=consent",
        s.base,
        s.authorize_query("browser-2c")
    ))
    .await
    .unwrap();
    c.wait()
        .for_element(Locator::LinkText("Sign out"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("button[type=submit]:not([name])"))
        .await
        .unwrap();
    assert!(
        main_text(c).await.contains("Signed in as"),
        "the confirmation names the user"
    );
    screenshot(c, "sign-out").await;
    c.find(Locator::Css("button[type=submit]:not([name])"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("p.ok")).await.unwrap();
    assert!(main_text(c).await.contains("You are signed out"));
    c.goto(&format!(
        "{}/authorize?{}",
        s.base,
        s.authorize_query("browser-2d")
    ))
    .await
    .unwrap();
    c.wait()
        .for_element(Locator::Css("input[name=password]"))
        .await
        .unwrap();

    // 3. Signed out: a wrong password keeps the person on the sign-in form with a message.
    c.delete_all_cookies().await.unwrap();
    c.goto(&format!(
        "{}/authorize?{}",
        s.base,
        s.authorize_query("browser-3")
    ))
    .await
    .unwrap();
    sign_in(c, "not the password").await;
    let error = c.wait().for_element(Locator::Css("p.error")).await.unwrap();
    assert!(error.text().await.unwrap().contains("wrong"));
    screenshot(c, "wrong-password").await;
    assert!(c.current_url().await.unwrap().as_str().starts_with(&s.base));
    assert!(c.find(Locator::Css("input[name=password]")).await.is_ok());
}

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

async fn device_poll(s: &TestServer, client_id: &str, device_code: &str) -> Resp {
    s.token(
        &[
            ("grant_type", DEVICE_GRANT),
            ("device_code", device_code),
            ("client_id", client_id),
        ],
        None,
    )
    .await
}

/// Starts a device authorization; returns the user code, the device code and the complete
/// verification URI rewritten to the test server's address.
async fn device_start(s: &TestServer, client_id: &str) -> (String, String, String) {
    let r = s
        .post_form(
            "/device_authorization",
            None,
            &[("client_id", client_id), ("scope", "mail")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let d = r.json();
    let complete = d["verification_uri_complete"].as_str().unwrap();
    let path = complete.strip_prefix("http://127.0.0.1:8080").unwrap();
    (
        d["user_code"].as_str().unwrap().to_owned(),
        d["device_code"].as_str().unwrap().to_owned(),
        format!("{}{path}", s.base),
    )
}

async fn main_text(c: &Client) -> String {
    c.find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Opens the link a device showed, checks the prefilled code and submits it.
async fn submit_code(c: &Client, uri: &str, user_code: &str) {
    c.goto(uri).await.unwrap();
    let input = c
        .wait()
        .for_element(Locator::Css("input[name=user_code]"))
        .await
        .unwrap();
    assert_eq!(
        input.prop("value").await.unwrap().as_deref(),
        Some(user_code)
    );
    screenshot(c, "device-code").await;
    c.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn device_journey(c: &Client, s: &TestServer) {
    let body = serde_json::json!({
        "token_endpoint_auth_method": "none",
        "grant_types": [DEVICE_GRANT],
        "client_name": "Kitchen TV",
        "scope": "mail",
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
    let client_id = r.json()["client_id"].as_str().unwrap().to_owned();

    // 1. Open the link, sign in, check the code and approve; the device gets its tokens.
    let (user_code, device_code, uri) = device_start(s, &client_id).await;
    submit_code(c, &uri, &user_code).await;
    sign_in(c, PASSWORD).await;
    let approve = c
        .wait()
        .for_element(Locator::Css("button[name=decision][value=approve]"))
        .await
        .unwrap();
    let text = main_text(c).await;
    assert!(
        text.contains("Kitchen TV") && text.contains(&user_code),
        "{text}"
    );
    assert!(
        text.contains("Only continue if you started this on your device"),
        "{text}"
    );
    assert!(text.contains("mail"), "{text}");
    screenshot(c, "device-consent").await;
    approve.click().await.unwrap();
    let ok = c.wait().for_element(Locator::Css("p.ok")).await.unwrap();
    assert!(ok
        .text()
        .await
        .unwrap()
        .contains("You may return to your device"));
    screenshot(c, "device-approved").await;
    let t = device_poll(s, &client_id, &device_code).await;
    assert_eq!(t.status, 200, "{}", t.body);
    assert!(t.json()["access_token"].is_string());

    // 2. Still signed in: a second device goes straight to consent; deny it.
    let (user_code, device_code, uri) = device_start(s, &client_id).await;
    submit_code(c, &uri, &user_code).await;
    c.wait()
        .for_element(Locator::Css("button[name=decision][value=deny]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let denied = c.wait().for_element(Locator::Css("p.ok")).await.unwrap();
    assert!(denied.text().await.unwrap().contains("You denied access"));
    let t = device_poll(s, &client_id, &device_code).await;
    assert_eq!(t.status, 400, "{}", t.body);
    assert_eq!(t.json()["error"], "access_denied");

    // 3. A mistyped code: the form again, with the message.
    c.goto(&format!("{}/device", s.base)).await.unwrap();
    c.wait()
        .for_element(Locator::Css("input[name=user_code]"))
        .await
        .unwrap()
        .send_keys("BCDF-GHJK")
        .await
        .unwrap();
    c.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let error = c.wait().for_element(Locator::Css("p.error")).await.unwrap();
    assert!(error.text().await.unwrap().contains("not valid"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_code_flow_approve_deny_and_wrong_password() {
    in_browser(|c, s| async move { journey(&c, &s).await }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_device_flow_approve_deny_and_wrong_code() {
    in_browser(|c, s| async move { device_journey(&c, &s).await }).await;
}

/// Runs a journey in a fresh headless Chromium against a fresh server (skipping when there is no
/// chromedriver), closing the browser even when an assertion fails.
async fn in_browser<F, Fut>(journey: F)
where
    F: FnOnce(Client, std::sync::Arc<TestServer>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let Some(driver) = find_program("CHROMEDRIVER", &["chromedriver"]) else {
        missing_component("chromedriver (apt-get install chromium chromium-driver)");
        return;
    };
    let chromium = find_program(
        "CHROME_BIN",
        &["chromium", "chromium-browser", "google-chrome"],
    );
    let redirect = redirect_listener().await;
    let s = std::sync::Arc::new(TestServer::start_with(test_settings(), &redirect).await);

    let port = free_port().await;
    let mut driver = tokio::process::Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    wait_for_port(port).await;

    let profile = std::env::temp_dir().join(format!(
        "oauth-server-chromium-{}-{port}",
        std::process::id()
    ));
    let mut options = serde_json::json!({
        "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--window-size=412,915",
            format!("--user-data-dir={}", profile.display()),
        ]
    });
    if let Some(bin) = chromium {
        options["binary"] = serde_json::Value::String(bin.display().to_string());
    }
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".to_owned(), options);
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a Chromium session");

    // Run the journey in a task so the browser is closed even when an assertion fails.
    let task = tokio::spawn(journey(client.clone(), s.clone()));
    let outcome = tokio::time::timeout(Duration::from_secs(120), task).await;
    let _ = client.close().await;
    let _ = driver.kill().await;
    let _ = std::fs::remove_dir_all(&profile);
    if let Ok(s) = std::sync::Arc::try_unwrap(s) {
        s.running.shutdown().await;
    }
    match outcome {
        Err(_) => panic!("the browser journey did not finish in 120 s"),
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("the browser journey failed: {e}"),
        Ok(Ok(())) => {}
    }
}
