//! Back-channel logout delivery (OpenID Connect Back-Channel Logout 1.0 §2.5): when a browser
//! session ends (the logout page, "not you?", another user signing in over it), each client it
//! gave a code with `openid` that registered a `backchannel_logout_uri` gets a logout token.
//! Before that, and whether or not anyone is told, the session's grants without
//! `offline_access` are revoked (§2.7, [`oauth_proto::backchannel_logout`]): the session end
//! waits for the store to have the revocations, so a refresh token of the ended session is
//! refused from the moment the user sees "signed out".
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

/// Ends the `ended` session at the engine: its grants without `offline_access` are revoked
/// (Back-Channel Logout §2.7) before this returns, so the page that says "signed out" is sent
/// after the store has the revocations; its clients are then told in the background (see the
/// module docs). Runs on every session end, whether or not back-channel logout is on: the
/// revocation does not depend on delivery. A store failure is logged; the session is over all
/// the same.
pub(crate) async fn notify(app: &App, ended: Option<Ended>) {
    let Some(ended) = ended else {
        return;
    };
    let tells = app.engine.config().backchannel_logout && !ended.relying_parties.is_empty();
    if ended.oidc_sid.is_none() && !tells {
        return;
    }
    let flow = app.engine.backchannel_logout(
        &ended.user,
        ended.oidc_sid.as_deref(),
        &ended.relying_parties,
        crate::clock::now(),
    );
    let end = match drive_async(flow, &app.flow_store, &mut OsRandom).await {
        Ok(end) => end,
        Err(e) => {
            crate::http::reply::store_failed(&e, "ending a session");
            return;
        }
    };
    if !end.revoked.is_empty() || end.more {
        tracing::info!(
            revoked = end.revoked.len(),
            more = end.more,
            "session ended: its grants without offline_access revoked"
        );
    }
    let notices = end.notices;
    if notices.is_empty() {
        return;
    }
    let deliverer = app.backchannel.clone();
    tokio::spawn(async move {
        // The session's deliveries run together; the deliverer's slots bound them across
        // sessions.
        let mut deliveries = tokio::task::JoinSet::new();
        for notice in notices {
            let deliverer: Arc<Deliverer> = deliverer.clone();
            deliveries.spawn(async move {
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
            });
        }
        while deliveries.join_next().await.is_some() {}
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Empty;
    use hyper_util::rt::TokioIo;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A server on 127.0.0.1 answering every request with `status` (and a `Location` to
    /// `location`); its port and how many requests it got.
    async fn answering(status: u16, location: String) -> (u16, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (hits, location) = (counted.clone(), location.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_req| {
                        hits.fetch_add(1, Ordering::SeqCst);
                        let response = hyper::Response::builder()
                            .status(status)
                            .header("location", location.clone())
                            .body(Empty::<Bytes>::new());
                        async move { response }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (port, hits)
    }

    fn notice(uri: String) -> LogoutNotice {
        LogoutNotice {
            client_id: "rp".into(),
            uri,
            logout_token: "t".into(),
        }
    }

    fn deliverer(allow_private: bool) -> Deliverer {
        Deliverer::new(&CimdSettings {
            allow_private_addresses: allow_private,
            timeout_ms: 1000,
            ..CimdSettings::default()
        })
    }

    #[tokio::test]
    async fn redirects_are_not_followed_and_statuses_are_reported() {
        let (target, target_hits) = answering(200, String::new()).await;
        let (port, hits) = answering(307, format!("http://127.0.0.1:{target}/")).await;
        let d = deliverer(true);
        let to = |port: u16| notice(format!("http://127.0.0.1:{port}/bc"));
        assert_eq!(
            d.deliver(&to(port)).await,
            Err(Undelivered::Redirected(307))
        );
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        assert_eq!(target_hits.load(Ordering::SeqCst), 0, "never followed");
        assert_eq!(d.deliver(&to(target)).await, Ok(200));
        let (failing, _) = answering(500, String::new()).await;
        assert_eq!(d.deliver(&to(failing)).await, Err(Undelivered::Status(500)));
    }

    #[tokio::test]
    async fn the_address_policy_and_the_scheme_rule_refuse_before_connecting() {
        let (port, hits) = answering(200, String::new()).await;
        let loopback = notice(format!("http://127.0.0.1:{port}/bc"));
        assert_eq!(
            deliverer(false).deliver(&loopback).await,
            Err(Undelivered::Refused)
        );
        for refused in [
            "https://10.0.0.1/bc",
            "https://169.254.169.254/latest",
            "http://192.0.2.1/bc",
            "http://app.example/bc",
            "ftp://127.0.0.1/bc",
            "not a url",
        ] {
            assert_eq!(
                deliverer(false).deliver(&notice(refused.into())).await,
                Err(Undelivered::Refused),
                "{refused}"
            );
        }
        // Plain http goes only to a loopback literal, even where private addresses are allowed.
        assert_eq!(
            deliverer(true)
                .deliver(&notice("http://localhost:1/bc".into()))
                .await,
            Err(Undelivered::Refused)
        );
        assert_eq!(hits.load(Ordering::SeqCst), 0);
    }
}
