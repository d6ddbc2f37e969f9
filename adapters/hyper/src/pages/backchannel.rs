//! Back-channel logout delivery (OpenID Connect Back-Channel Logout 1.0 §2.5): when a browser
//! session ends (the logout page, "not you?", another user signing in over it), each client it
//! gave a code with `openid` that registered a `backchannel_logout_uri` gets a logout token.
//!
//! The engine makes the tokens ([`oauth_proto::backchannel_logout`]); this module POSTs them,
//! form-encoded (`logout_token=...`), in the background: the user's page never waits for a
//! relying party, and a failure is only logged (client id, URL, reason; never the token). Each
//! delivery goes through the outbound client ([`crate::outbound`]: the SSRF policy of client
//! metadata documents, no proxy, no redirect followed) and is bounded: at most
//! `max_concurrent_fetches` deliveries in flight (their own slots, not the documents'), each
//! within `timeout_ms` (waiting for a slot included), the answer's body never read. A URL whose
//! scheme is `http` is delivered only to a loopback IP literal (what registration accepts), and
//! an IP literal the policy refuses is not connected to at all.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, USER_AGENT};
use oauth_proto::backchannel_logout::LogoutNotice;
use oauth_proto::flow::drive_async;

use crate::app::App;
use crate::cimd::CimdSettings;
use crate::outbound::{self, GuardedClient, Scheme};
use crate::pages::sessions::Ended;
use crate::rng::OsRandom;

/// Delivers logout tokens (see the module docs). Cheap to share.
pub struct Deliverer {
    /// `None` when the TLS configuration could not be built: nothing is delivered (logged).
    client: Option<GuardedClient<Full<Bytes>>>,
    allow_private: bool,
    timeout: Duration,
    /// One permit per delivery in flight.
    slots: tokio::sync::Semaphore,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Why a delivery failed.
#[derive(Debug, PartialEq, Eq)]
pub enum Undelivered {
    /// The URL is not one this server sends to (the policy, or not a URL).
    Refused,
    /// No answer within the time allowed.
    Timeout,
    /// No answer.
    Unreachable,
    /// A redirect, not followed.
    Redirected(u16),
    /// Another status than 200 or 204.
    Status(u16),
}

impl Deliverer {
    /// A deliverer under the outbound `settings`.
    pub fn new(settings: &CimdSettings) -> Self {
        let client = outbound::client(settings, Scheme::HttpsOrHttp)
            .map_err(|e| tracing::error!(error = %e, "back-channel logout cannot be delivered"))
            .ok();
        Deliverer {
            client,
            allow_private: settings.allow_private_addresses,
            timeout: Duration::from_millis(settings.timeout_ms),
            slots: tokio::sync::Semaphore::new(settings.max_concurrent_fetches.max(1)),
        }
    }

    /// POSTs one logout token, within the time allowed.
    pub async fn deliver(&self, notice: &LogoutNotice) -> Result<u16, Undelivered> {
        let send = async {
            let _slot = self
                .slots
                .acquire()
                .await
                .map_err(|_| Undelivered::Unreachable)?;
            self.send(notice).await
        };
        tokio::time::timeout(self.timeout, send)
            .await
            .unwrap_or(Err(Undelivered::Timeout))
    }

    async fn send(&self, notice: &LogoutNotice) -> Result<u16, Undelivered> {
        let client = self.client.as_ref().ok_or(Undelivered::Unreachable)?;
        let url = url::Url::parse(&notice.uri).map_err(|_| Undelivered::Refused)?;
        let host = url.host().ok_or(Undelivered::Refused)?;
        let loopback_literal = match &host {
            url::Host::Ipv4(ip) => ip.is_loopback(),
            url::Host::Ipv6(ip) => ip.is_loopback(),
            url::Host::Domain(_) => false,
        };
        let scheme_ok = match url.scheme() {
            "https" => true,
            "http" => loopback_literal,
            _ => false,
        };
        if !scheme_ok
            || outbound::literal_refused(&host, self.allow_private) == Some(true)
            || !url.username().is_empty()
            || url.fragment().is_some()
        {
            return Err(Undelivered::Refused);
        }
        let body = serde_urlencoded::to_string([("logout_token", &notice.logout_token)])
            .map_err(|_| Undelivered::Refused)?;
        let request = hyper::Request::post(url.as_str())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(CACHE_CONTROL, "no-store")
            .header(USER_AGENT, "oauth-server (back-channel logout)")
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| Undelivered::Refused)?;
        let response = client
            .request(request)
            .await
            .map_err(|e| match outbound::failure(&e) {
                outbound::Failure::Refused => Undelivered::Refused,
                outbound::Failure::Timeout => Undelivered::Timeout,
                outbound::Failure::Unreachable => Undelivered::Unreachable,
            })?;
        // The body is never read: dropping the response closes the connection.
        let status = response.status();
        if status.is_redirection() {
            return Err(Undelivered::Redirected(status.as_u16()));
        }
        if status != hyper::StatusCode::OK && status != hyper::StatusCode::NO_CONTENT {
            return Err(Undelivered::Status(status.as_u16()));
        }
        Ok(status.as_u16())
    }
}

/// Tells the clients of the `ended` session, in the background (see the module docs).
pub(crate) fn notify(app: &App, ended: Option<Ended>) {
    let Some(ended) = ended.filter(|e| !e.relying_parties.is_empty()) else {
        return;
    };
    if !app.engine.config().backchannel_logout {
        return;
    }
    let engine = app.engine.clone();
    let flows = app.flow_store.clone();
    let deliverer = app.backchannel.clone();
    tokio::spawn(async move {
        let flow = engine.backchannel_logout(
            &ended.user,
            ended.oidc_sid.as_deref(),
            &ended.relying_parties,
            crate::clock::now(),
        );
        let notices = match drive_async(flow, &flows, &mut OsRandom).await {
            Ok(n) => n,
            Err(e) => {
                crate::http::reply::store_failed(&e, "back-channel logout");
                return;
            }
        };
        let deliveries = notices.into_iter().map(|notice| {
            let deliverer: Arc<Deliverer> = deliverer.clone();
            async move {
                match deliverer.deliver(&notice).await {
                    Ok(status) => tracing::info!(
                        client_id = %notice.client_id,
                        status,
                        "back-channel logout delivered"
                    ),
                    Err(reason) => tracing::warn!(
                        client_id = %notice.client_id,
                        uri = %notice.uri,
                        ?reason,
                        "back-channel logout not delivered"
                    ),
                }
            }
        });
        futures_join_all(deliveries).await;
    });
}

/// Runs the deliveries of one session together (the deliverer bounds them across sessions).
async fn futures_join_all<F: std::future::Future<Output = ()> + Send + 'static>(
    all: impl Iterator<Item = F>,
) {
    let mut set = tokio::task::JoinSet::new();
    for f in all {
        set.spawn(f);
    }
    while set.join_next().await.is_some() {}
}
