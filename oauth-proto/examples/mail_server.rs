//! A mail server that embeds `oauth-proto`: its own user directory, tokens issued through the
//! engine, and IMAP `AUTHENTICATE XOAUTH2` checked by the engine's SASL exchange.
//!
//! Everything a real server does over sockets is a function call here (the browser's sign-in and
//! consent, the mail client's token request, its IMAP command), so the program runs as is and as a
//! test (`cargo test -p oauth-proto --example mail_server`). The parts that matter to an embedder:
//!
//! - [`MailServer::run`]: the whole driver loop by hand. Step the flow, answer each op from the
//!   store through the `Waiting` flow, apply the effects *before* using the output.
//! - [`MailServer::approve`]: the authorization code flow. The engine validates the request; the
//!   mail server signs the user in against *its own* directory and names the subject it approves.
//! - [`MailServer::authenticate`]: one SASL login with the default [`SaslPolicy`] (a token must
//!   carry the `mail` scope and name a user), behind [`Engine::throttle`]: ask first, record a
//!   failure that counts, so a stranger guessing tokens is slowed and then refused.

use std::collections::HashMap;
use std::error::Error;
use std::net::IpAddr;
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine as _;
use oauth_proto::access_token::{KeyRing, TokenKey};
use oauth_proto::authorize::{AuthorizeOutcome, DecisionOutcome};
use oauth_proto::client::{AuthMethod, ClientKind, ClientRecord, GrantType};
use oauth_proto::config::Config;
use oauth_proto::flow::{Flow, Next, Procedure};
use oauth_proto::http::HttpRequest;
use oauth_proto::pkce;
use oauth_proto::random::Random;
use oauth_proto::sasl::{
    decode_client_line, decode_initial_response, Mechanism, Protocol, SaslExchange, SaslPolicy,
    Step,
};
use oauth_proto::scope::Scope;
use oauth_proto::store::{Effect, Store, StoreError};
use oauth_proto::throttle::Verdict;
use oauth_proto::Engine;
use oauth_store_memory::MemoryStore;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// The operating system's randomness: what a server must pass the engine.
fn os_random(dest: &mut [u8]) {
    getrandom::fill(dest).expect("the operating system's random source failed");
}

/// The mail server's own users: names and Argon2 password hashes. Not the engine's business: the
/// engine only learns the subject the server approves.
#[derive(Default)]
struct Users(HashMap<String, String>);

impl Users {
    fn add(&mut self, name: &str, password: &str) -> Result<()> {
        let mut salt = [0u8; 16];
        os_random(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
        let phc = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| e.to_string())?
            .to_string();
        self.0.insert(name.to_owned(), phc);
        Ok(())
    }

    /// True for the right password. An unknown user costs the same hash, so timing does not tell
    /// which names exist.
    fn check(&self, name: &str, password: &str) -> bool {
        static DUMMY: OnceLock<String> = OnceLock::new();
        let dummy = DUMMY.get_or_init(|| {
            let salt = SaltString::encode_b64(&[0u8; 16]).expect("16 bytes encode");
            Argon2::default()
                .hash_password(b"no such user", &salt)
                .map(|h| h.to_string())
                .unwrap_or_default()
        });
        let phc = self.0.get(name);
        let verified = PasswordHash::new(phc.unwrap_or(dummy)).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        });
        verified && phc.is_some()
    }
}

/// The mail app's registration: a public (native) client using the code flow with PKCE.
const CLIENT_ID: &str = "mail-app";
const REDIRECT_URI: &str = "http://127.0.0.1:7000/cb";

struct MailServer {
    engine: Engine,
    store: MemoryStore,
    users: Users,
}

/// What one IMAP `AUTHENTICATE` ended with.
#[derive(Debug, PartialEq, Eq)]
enum Login {
    /// Signed in as this user.
    User(String),
    /// Refused; the IMAP reply line sent to the client.
    Refused(String),
}

impl MailServer {
    fn new(config: Config) -> Result<Self> {
        let mut key = [0u8; 32];
        os_random(&mut key);
        let keys = KeyRing::new(TokenKey::new(1, &key)?, vec![])?;
        let signing = oauth_proto::jose::KeySet::generate(
            &[oauth_proto::jose::Algorithm::Es256],
            &mut |dest: &mut [u8]| os_random(dest),
        )?;
        let server = MailServer {
            engine: Engine::new(config, keys, signing)?,
            store: MemoryStore::new(),
            users: Users::default(),
        };
        server.store.apply(vec![Effect::PutClient(ClientRecord {
            client_id: CLIENT_ID.to_owned(),
            name: "Mail App".to_owned(),
            kind: ClientKind::Public,
            secret_hash: None,
            secret_expires_at: None,
            auth_method: AuthMethod::None,
            redirect_uris: vec![REDIRECT_URI.to_owned()],
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scope: Scope::parse("mail offline_access").map_err(|_| "invalid scope")?,
            require_pkce: true,
            resource_server: false,
            registration_token_hash: None,
            created_at: 0,
            metadata: Default::default(),
            unused_expires_at: None,
            access_token_format: Default::default(),
        })])?;
        Ok(server)
    }

    /// The run loop: answer every op from the store, then apply the effects, and only then hand
    /// out the output (a response naming a code or token must not leave before the store has it).
    fn run<P: Procedure>(&self, mut flow: Flow<P>) -> std::result::Result<P::Output, StoreError> {
        let mut rng = os_random;
        let rng: &mut dyn Random = &mut rng;
        loop {
            match flow.step(rng) {
                Next::Op(op, waiting) => flow = waiting.answer(self.store.execute(op)?),
                Next::Done(done) => {
                    if !done.effects.is_empty() {
                        self.store.apply(done.effects)?;
                    }
                    return Ok(done.output);
                }
            }
        }
    }

    /// `GET /authorize?{query}`, then the user's sign-in and "allow": the redirect's `Location`.
    fn approve(&self, query: &str, user: &str, password: &str, now: u64) -> Result<String> {
        let pending = match self.run(self.engine.authorize(query.as_bytes(), now))? {
            AuthorizeOutcome::Consent(pending) => pending,
            AuthorizeOutcome::ErrorPage(e) => return Err(e.description.into()),
            other => return Err(format!("not a consent: {other:?}").into()),
        };
        // The mail server's own directory decides who the user is.
        if !self.users.check(user, password) {
            return Err("wrong user name or password".into());
        }
        // The user authenticated just now, with the password checked above.
        match self.run(self.engine.approve(pending, user, now, now)?)? {
            DecisionOutcome::Redirect(response) => Ok(response
                .header("location")
                .ok_or("a redirect without a location")?
                .to_owned()),
            other => Err(format!("not approved: {other:?}").into()),
        }
    }

    /// `POST /token` with a form body: the JSON body of the answer.
    fn token(&self, form: &str, now: u64) -> Result<serde_json::Value> {
        let response = self.run(self.engine.token(HttpRequest::form_post(form), now))?;
        let body: serde_json::Value = serde_json::from_str(&response.body)?;
        if response.status != 200 {
            return Err(format!("token endpoint: {body}").into());
        }
        Ok(body)
    }

    /// IMAP `a1 AUTHENTICATE XOAUTH2 {initial}` from `peer` over TLS; `next_line` stands for the
    /// client's next line when the server sends a challenge.
    fn authenticate(
        &self,
        peer: IpAddr,
        initial: &[u8],
        mut next_line: impl FnMut(&str) -> Vec<u8>,
        now: u64,
    ) -> Result<Login> {
        let throttle = self.engine.throttle();
        // Ask the limiter before looking at the credential. Counted per source address only,
        // never per claimed user, so nobody can lock a user out.
        match throttle.check(peer, None, now) {
            Verdict::Refuse { retry_after } => {
                return Ok(Login::Refused(format!(
                    "a1 NO [UNAVAILABLE] too many failures, retry in {retry_after} s"
                )))
            }
            Verdict::Proceed { delay } => std::thread::sleep(delay),
        }
        let policy = SaslPolicy {
            openid_configuration: Some(self.engine.endpoints().openid_configuration),
            ..SaslPolicy::default()
        };
        let validator = |token: &str| self.engine.validate_access_token(token, now, &self.store);
        let mut exchange = SaslExchange::new(Mechanism::XOAuth2, true, &policy)?;
        let mut input = decode_initial_response(initial);
        loop {
            let step = exchange.step(input, &policy, &validator)?;
            if step.counts_toward_lockout() {
                throttle.record_failure(peer, None, now);
            }
            match step {
                Step::Challenge(challenge) => {
                    input = decode_client_line(&next_line(&Protocol::Imap.challenge(&challenge)));
                }
                Step::Success(user) => {
                    throttle.record_success(peer, None, now);
                    return Ok(Login::User(user.identity().to_owned()));
                }
                Step::Failure(failure) => {
                    return Ok(Login::Refused(format!(
                        "a1 {}",
                        Protocol::Imap.failure(&failure)
                    )))
                }
                // A step this server does not know: never a success.
                _ => return Ok(Login::Refused("a1 NO authentication failed".to_owned())),
            }
        }
    }
}

/// The XOAUTH2 initial response a mail client sends.
fn xoauth2(user: &str, token: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .encode(format!("user={user}\x01auth=Bearer {token}\x01\x01"))
        .into_bytes()
}

/// The whole story: a user gets a token through the code flow and signs in to IMAP with it; a
/// wrong token is refused with the discovery challenge. Returns the users signed in.
fn demo(now: u64) -> Result<Vec<Login>> {
    let mut server = MailServer::new(Config {
        issuer: "https://mail.example.com".to_owned(),
        ..Config::default()
    })?;
    server.users.add("alice", "correct horse battery staple")?;

    // The mail app: PKCE and the code flow in a browser.
    let verifier = "mail-app-pkce-verifier-0123456789-abcdefghijklmnopq";
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("scope", "mail offline_access")
        .append_pair("state", "xyz")
        .append_pair("code_challenge", &pkce::s256_challenge(verifier))
        .append_pair("code_challenge_method", "S256")
        .finish();
    if server.approve(&query, "alice", "wrong", now).is_ok() {
        return Err("a wrong password was accepted".into());
    }
    let location = server.approve(&query, "alice", "correct horse battery staple", now)?;
    let code = url::Url::parse(&location)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .ok_or("no code in the redirect")?;
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", &code)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("client_id", CLIENT_ID)
        .append_pair("code_verifier", verifier)
        .finish();
    let tokens = server.token(&form, now)?;
    let access_token = tokens["access_token"].as_str().ok_or("no access token")?;

    // The mail client signs in over IMAP.
    let user: IpAddr = "192.0.2.10".parse()?;
    let stranger: IpAddr = "198.51.100.7".parse()?;
    let mut logins =
        vec![server.authenticate(user, &xoauth2("alice", access_token), |_| Vec::new(), now)?];
    // A stranger's made-up token: an error challenge naming the discovery URL, then `NO`.
    let mut challenge = String::new();
    logins.push(server.authenticate(
        stranger,
        &xoauth2("alice", "made-up"),
        |line| {
            challenge = line.to_owned();
            Vec::new() // XOAUTH2's acknowledgement: an empty line
        },
        now,
    )?);
    let json = base64::engine::general_purpose::STANDARD
        .decode(challenge.trim_end().trim_start_matches("+ "))?;
    let json: serde_json::Value = serde_json::from_slice(&json)?;
    if json["status"] != "401" {
        return Err(format!("unexpected challenge {json}").into());
    }
    Ok(logins)
}

// The embedder owns the clock; the engine only ever gets `now` as an argument (clippy.toml bans
// clock reads in this crate, and this program is the embedder).
#[cfg_attr(test, allow(dead_code))]
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
fn main() -> Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    for login in demo(now)? {
        println!("{login:?}");
    }
    Ok(())
}

#[test]
fn a_user_signs_in_with_a_token_from_the_code_flow_and_a_made_up_token_is_refused() {
    let logins = demo(1_767_225_600).unwrap();
    assert_eq!(logins[0], Login::User("alice".to_owned()));
    assert!(
        matches!(&logins[1], Login::Refused(line) if line.starts_with("a1 NO")),
        "{logins:?}"
    );
}

#[test]
fn a_stranger_guessing_tokens_is_refused_without_a_check() {
    // Short delays, so the test does not wait out the real ones.
    let throttle = oauth_proto::throttle::ThrottleConfig {
        base_delay_ms: 1,
        max_delay_ms: 2,
        ..Default::default()
    };
    let server = MailServer::new(Config {
        throttle,
        ..Config::default()
    })
    .unwrap();
    let stranger: IpAddr = "198.51.100.7".parse().unwrap();
    let limit = server.engine.throttle().config().address_max_failures;
    let mut refused = None;
    for i in 0..=limit + 1 {
        let login = server
            .authenticate(
                stranger,
                &xoauth2("alice", &format!("guess-{i}")),
                |_| Vec::new(),
                1_000,
            )
            .unwrap();
        if let Login::Refused(line) = &login {
            if line.contains("too many failures") {
                refused = Some(i);
                break;
            }
        }
    }
    assert!(refused.is_some(), "the limiter never refused the stranger");
}
