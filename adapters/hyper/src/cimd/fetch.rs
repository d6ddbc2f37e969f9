//! The HTTP fetch of one document, and the cache in front of it (the rules are in the parent
//! module's docs).

use std::time::{Duration, Instant, SystemTime};

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, USER_AGENT};
use oauth_proto::client_id_document::{ClientDocument, FetchError, MAX_DOCUMENT_BYTES};

use super::cache::Cache;
use super::{failed, CimdSettings};
use crate::outbound::{self, Scheme};

type HttpsClient = outbound::GuardedClient<Empty<Bytes>>;

/// Fetches client metadata documents, and remembers them for a while.
pub struct Fetcher {
    /// `None` when the TLS configuration could not be built: every fetch is then unreachable.
    client: Option<HttpsClient>,
    settings: CimdSettings,
    cache: Cache,
    /// One permit per fetch in flight.
    slots: tokio::sync::Semaphore,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("settings", &self.settings)
            .field("cached", &self.cache.len())
            .finish_non_exhaustive()
    }
}

impl Fetcher {
    /// A fetcher for `settings`; an error names the setting at fault.
    pub fn new(settings: &CimdSettings) -> Result<Self, String> {
        Ok(Fetcher {
            client: Some(outbound::client(settings, Scheme::HttpsOnly)?),
            settings: settings.clone(),
            cache: Cache::new(settings.max_cached_documents),
            slots: tokio::sync::Semaphore::new(settings.max_concurrent_fetches),
        })
    }

    /// A fetcher whose every fetch is unreachable (its settings could not be used).
    pub fn unavailable(settings: &CimdSettings) -> Self {
        Fetcher {
            client: None,
            settings: settings.clone(),
            cache: Cache::new(0),
            slots: tokio::sync::Semaphore::new(1),
        }
    }

    /// The document at `url` (an `https` URL the engine already checked), from the cache while
    /// fresh; a failure is an answer too, and is remembered for `failure_cache_secs`.
    pub async fn fetch(&self, url: &str) -> ClientDocument {
        if let Some(known) = self.cache.get(url, Instant::now()) {
            return known;
        }
        let total = Duration::from_millis(self.settings.timeout_ms);
        let fetch = async {
            // The semaphore is never closed; waiting for a slot counts toward the timeout.
            let _slot = self
                .slots
                .acquire()
                .await
                .map_err(|_| FetchError::Unreachable)?;
            self.fetch_now(url).await
        };
        let (document, fresh_for) = match tokio::time::timeout(total, fetch).await {
            Ok(Ok((body, fresh_for))) => (ClientDocument::fetched(body), fresh_for),
            Ok(Err(e)) => (failed(url, e), self.failure_ttl()),
            Err(_) => (failed(url, FetchError::Timeout), self.failure_ttl()),
        };
        self.cache
            .put(url, document.clone(), Instant::now(), fresh_for);
        document
    }

    fn failure_ttl(&self) -> Duration {
        Duration::from_secs(self.settings.failure_cache_secs)
    }

    /// One `GET`: the body and how long to keep it.
    async fn fetch_now(&self, url: &str) -> Result<(Vec<u8>, Duration), FetchError> {
        let client = self.client.as_ref().ok_or(FetchError::Unreachable)?;
        let parsed = url::Url::parse(url).map_err(|_| FetchError::Unreachable)?;
        let host = parsed.host().ok_or(FetchError::Unreachable)?;
        if outbound::literal_refused(&host, self.settings.allow_private_addresses) == Some(true) {
            return Err(FetchError::Refused);
        }
        let request = hyper::Request::get(url)
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, "oauth-server (client metadata document fetch)")
            .body(Empty::<Bytes>::new())
            .map_err(|_| FetchError::Unreachable)?;
        let (request_parts, body) = request.into_parts();
        let response = client
            .request(hyper::Request::from_parts(request_parts.clone(), body))
            .await
            .map_err(|e| match outbound::failure(&e) {
                outbound::Failure::Refused => FetchError::Refused,
                outbound::Failure::Timeout => FetchError::Timeout,
                outbound::Failure::Unreachable => FetchError::Unreachable,
            })?;
        let status = response.status();
        if status.is_redirection() {
            return Err(FetchError::Redirected);
        }
        if status != hyper::StatusCode::OK {
            return Err(FetchError::Status(status.as_u16()));
        }
        let (parts, body) = response.into_parts();
        if !is_json(parts.headers.get(CONTENT_TYPE)) {
            return Err(FetchError::NotJson);
        }
        let announced = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if announced.is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64) {
            return Err(FetchError::TooLarge);
        }
        let body = Limited::new(body, MAX_DOCUMENT_BYTES)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    FetchError::TooLarge
                } else {
                    FetchError::Unreachable
                }
            })?
            .to_bytes();
        if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() {
            return Err(FetchError::NotJson);
        }
        Ok((body.to_vec(), self.fresh_for(&request_parts, &parts)))
    }

    /// How long HTTP caching keeps the answer, within the configured bounds.
    fn fresh_for(
        &self,
        request: &hyper::http::request::Parts,
        response: &hyper::http::response::Parts,
    ) -> Duration {
        let options = http_cache_semantics::CacheOptions {
            // This server is the document's only reader, like a browser's own cache.
            shared: false,
            // Explicit freshness only: no guessing from Last-Modified.
            cache_heuristic: 0.0,
            ..Default::default()
        };
        let now = SystemTime::now();
        let policy =
            http_cache_semantics::CachePolicy::new_options(request, response, now, options);
        let ttl = if policy.is_storable() {
            policy.time_to_live(now)
        } else {
            Duration::ZERO
        };
        ttl.clamp(
            Duration::from_secs(self.settings.min_cache_secs),
            Duration::from_secs(self.settings.max_cache_secs),
        )
    }
}

/// `application/json` or `application/<something>+json`, parameters allowed.
fn is_json(content_type: Option<&hyper::header::HeaderValue>) -> bool {
    let Some(mime) = content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok())
    else {
        return false;
    };
    mime.type_() == mime::APPLICATION
        && (mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types() {
        let ok = |v: &str| is_json(Some(&hyper::header::HeaderValue::from_str(v).unwrap()));
        assert!(ok("application/json"));
        assert!(ok("application/json; charset=utf-8"));
        assert!(ok("Application/JSON"));
        assert!(ok("application/oauth-client-metadata+json"));
        assert!(!ok("text/html"));
        assert!(!ok("text/json"));
        assert!(!ok("application/jsonp"));
        assert!(!is_json(None));
    }

    #[test]
    fn unreadable_roots_are_named() {
        let settings = CimdSettings {
            trusted_roots: vec!["/nonexistent/ca.pem".into()],
            ..CimdSettings::default()
        };
        let e = Fetcher::new(&settings).unwrap_err();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        assert!(Fetcher::new(&CimdSettings::default()).is_ok());
    }
}
