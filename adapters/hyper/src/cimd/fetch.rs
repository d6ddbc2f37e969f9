//! The HTTP fetch of one document, and the cache in front of it (the rules are in the parent
//! module's docs).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, USER_AGENT};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use oauth_proto::client_id_document::{ClientDocument, FetchError, MAX_DOCUMENT_BYTES};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use super::address::{self, GuardedResolver, ResolveError};
use super::cache::Cache;
use super::{failed, CimdSettings};

type HttpsClient = Client<HttpsConnector<HttpConnector<GuardedResolver>>, Empty<Bytes>>;

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

/// The TLS client configuration: Mozilla's roots and the configured ones, ring's algorithms.
///
/// rustls 0.23.48 deprecated ring's provider because it lacks post-quantum key exchange, steering
/// to aws-lc-rs. Fetching a public document gains nothing from it that would be worth building
/// aws-lc (a large C library) into the server; X25519 and P-256 remain sound for this.
#[allow(deprecated)]
fn tls_config(settings: &CimdSettings) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for path in &settings.trusted_roots {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| {
                format!(
                    "[server.cimd] trusted_roots: cannot read certificates from {}: {e}",
                    path.display()
                )
            })?;
        if certs.is_empty() {
            return Err(format!(
                "[server.cimd] trusted_roots: {} holds no PEM certificate",
                path.display()
            ));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| {
                format!(
                    "[server.cimd] trusted_roots: a certificate in {} is not usable as a root: {e}",
                    path.display()
                )
            })?;
        }
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS for client metadata documents: {e}"))
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

impl Fetcher {
    /// A fetcher for `settings`; an error names the setting at fault.
    pub fn new(settings: &CimdSettings) -> Result<Self, String> {
        let mut http = HttpConnector::new_with_resolver(GuardedResolver {
            allow_private: settings.allow_private_addresses,
        });
        // The https connector below refuses plain http; this lets it see https URLs at all.
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_millis(settings.connect_timeout_ms)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(settings)?)
            .https_only()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Ok(Fetcher {
            client: Some(client),
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
        if address::literal_refused(&host, self.settings.allow_private_addresses) == Some(true) {
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
            .map_err(|e| connect_failure(&e))?;
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

/// Why the request got no answer: refused addresses, a timeout, or anything else unreachable.
fn connect_failure(e: &hyper_util::client::legacy::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(ResolveError::Refused) = err.downcast_ref::<ResolveError>() {
            return FetchError::Refused;
        }
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return FetchError::Timeout;
        }
        source = err.source();
    }
    FetchError::Unreachable
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
