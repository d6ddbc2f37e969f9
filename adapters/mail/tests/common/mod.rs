//! Shared by the integration tests: real tokens over a real `KeyRing`, a revocation view with one
//! revoked grant, and both listeners started on 127.0.0.1:0 with a throttle the test can inspect
//! and a fixed clock.

#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use oauth_mail_listeners::{serve_imap, serve_smtp, Limits, MailContext, ServeError};
use oauth_proto::access_token::{self, AccessClaims, KeyRing, TokenKey};
use oauth_proto::sasl::SaslPolicy;
use oauth_proto::scope::Scope;
use oauth_proto::store::{GrantId, RevocationView};
use oauth_proto::throttle::{Throttle, ThrottleConfig, Verdict};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub const NOW: u64 = 1_700_000_000;
pub const USER: &str = "user@example.com";
pub const OTHER: &str = "other@example.com";
pub const OIDC: &str = "https://as.example.com/.well-known/openid-configuration";
pub const GOOD_GRANT: GrantId = GrantId([3; 16]);
pub const REVOKED_GRANT: GrantId = GrantId([4; 16]);

pub fn ring() -> KeyRing {
    KeyRing::new(TokenKey::new(1, &[7u8; 32]).unwrap(), vec![]).unwrap()
}

/// Another server's keys, with the same key id: its tokens fail the signature check here.
fn foreign_ring() -> KeyRing {
    KeyRing::new(TokenKey::new(1, &[9u8; 32]).unwrap(), vec![]).unwrap()
}

fn claims(grant: GrantId, issued_at: u64, expires_at: u64) -> AccessClaims {
    AccessClaims {
        grant_id: grant,
        subject: USER.into(),
        client_id: "mail-client".into(),
        scope: Scope::parse("mail openid").unwrap(),
        issued_at,
        expires_at,
        credential_version: 0,
        audience: Default::default(),
    }
}

/// The test tokens, all for [`USER`].
pub struct Tokens {
    pub valid: String,
    pub expired: String,
    pub revoked: String,
    pub foreign: String,
}

pub fn tokens() -> Tokens {
    Tokens {
        valid: access_token::issue(&ring(), &claims(GOOD_GRANT, NOW - 10, NOW + 3600)).unwrap(),
        expired: access_token::issue(&ring(), &claims(GOOD_GRANT, NOW - 7200, NOW - 3600)).unwrap(),
        revoked: access_token::issue(&ring(), &claims(REVOKED_GRANT, NOW - 10, NOW + 3600))
            .unwrap(),
        foreign: access_token::issue(&foreign_ring(), &claims(GOOD_GRANT, NOW - 10, NOW + 3600))
            .unwrap(),
    }
}

/// The store's view: [`REVOKED_GRANT`] was revoked at `NOW`.
struct OneRevoked;

impl RevocationView for OneRevoked {
    fn access_revoked_at(&self, grant_id: &GrantId) -> Option<u64> {
        (*grant_id == REVOKED_GRANT).then_some(NOW)
    }
    fn credential_version(&self, _: &str) -> u32 {
        0
    }
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

pub fn oauthbearer(user: &str, token: &str) -> String {
    b64(
        format!("n,a={user},\x01host=localhost\x01port=143\x01auth=Bearer {token}\x01\x01")
            .as_bytes(),
    )
}

pub fn xoauth2(user: &str, token: &str) -> String {
    b64(format!("user={user}\x01auth=Bearer {token}\x01\x01").as_bytes())
}

pub fn policy() -> SaslPolicy {
    SaslPolicy {
        openid_configuration: Some(OIDC.into()),
        allow_plaintext: true,
        ..SaslPolicy::default()
    }
}

/// A throttle that never delays or refuses: for tests about something else.
pub fn quiet_throttle() -> ThrottleConfig {
    ThrottleConfig {
        address_free_failures: 10_000,
        address_max_failures: 10_000,
        ..ThrottleConfig::default()
    }
}

/// A throttle whose verdict tells whether an address failed exactly `n` times (`n >= 1`): see
/// [`Servers::counted_exactly`]. The one-millisecond delay it adds at `n` is harmless.
pub fn counting_throttle(n: u32) -> ThrottleConfig {
    ThrottleConfig {
        address_free_failures: n - 1,
        address_max_failures: n + 1,
        base_delay_ms: 1,
        max_delay_ms: 1,
        ..ThrottleConfig::default()
    }
}

pub const LOCALHOST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// Both listeners, running, with their throttle.
pub struct Servers {
    pub imap: SocketAddr,
    pub smtp: SocketAddr,
    /// The throttle the listeners count failures in (its clock is fixed at [`NOW`]).
    pub throttle: Arc<Throttle>,
    /// How many times the validator ran.
    pub validations: Arc<AtomicUsize>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<Result<(), ServeError>>>,
}

impl Servers {
    pub async fn start(limits: Limits) -> Servers {
        Self::start_with(limits, quiet_throttle()).await
    }

    pub async fn start_with(limits: Limits, throttle: ThrottleConfig) -> Servers {
        let throttle = Arc::new(Throttle::new(throttle));
        let validations = Arc::new(AtomicUsize::new(0));
        let count = validations.clone();
        let keys = ring();
        let validator = Arc::new(move |token: &str| {
            count.fetch_add(1, Ordering::SeqCst);
            access_token::validate(&keys, token, NOW, &OneRevoked)
        });
        let ctx = MailContext::new(validator, policy(), "mail.test")
            .with_throttle(throttle.clone())
            .with_clock(Arc::new(|| NOW))
            .with_limits(limits);
        let ctx = Arc::new(ctx);
        let imap = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let smtp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (imap_addr, smtp_addr) = (imap.local_addr().unwrap(), smtp.local_addr().unwrap());
        let (stop, stopped) = watch::channel(false);
        let mut a = stopped.clone();
        let mut b = stopped;
        let tasks = vec![
            tokio::spawn(serve_imap(imap, ctx.clone(), async move {
                let _ = a.wait_for(|s| *s).await;
            })),
            tokio::spawn(serve_smtp(smtp, ctx, async move {
                let _ = b.wait_for(|s| *s).await;
            })),
        ];
        Servers {
            imap: imap_addr,
            smtp: smtp_addr,
            throttle,
            validations,
            stop,
            tasks,
        }
    }

    /// Stops both listeners and checks that they ended cleanly.
    pub async fn stop(self) {
        self.stop.send(true).unwrap();
        for task in self.tasks {
            task.await.unwrap().unwrap();
        }
    }

    /// With a [`counting_throttle`]`(n)`: whether `ip` has exactly `n` failures counted (fewer
    /// get no delay, more are refused).
    pub fn counted_exactly(&self, ip: IpAddr) -> bool {
        let verdict = self.throttle.check(ip, None, NOW);
        verdict
            == Verdict::Proceed {
                delay: Duration::from_millis(1),
            }
    }

    pub fn validations(&self) -> usize {
        self.validations.load(Ordering::SeqCst)
    }
}
