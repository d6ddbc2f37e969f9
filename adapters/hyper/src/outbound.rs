//! The HTTP client of every request this server makes to a URL a client chose: fetching a client
//! metadata document ([`crate::cimd`]) and delivering a back-channel logout token
//! ([`crate::pages::backchannel`]). Both are a stranger's request made from inside the server's
//! network, so both go through this one client, under the `[server.cimd]` settings:
//!
//! - every host is resolved by [`GuardedResolver`], which keeps only public unicast addresses,
//!   and the connection goes to exactly those (no second lookup); an IP literal host is checked
//!   by [`literal_refused`] before the request. `allow_private_addresses` lifts this, for tests;
//! - TLS is rustls with Mozilla's roots plus `trusted_roots`; `connect_timeout_ms` bounds the
//!   TCP connection;
//! - no proxy from the environment, no redirect followed, no decompression: hyper-util's client
//!   does none of these unless asked.
//!
//! Each caller adds its own bounds (total time, concurrency, body size) and its own scheme
//! rule: documents are `https` only ([`Scheme::HttpsOnly`]); logout URIs may be loopback `http`
//! as registration allows, which the resolver still refuses unless private addresses are allowed.

use std::sync::Arc;
use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

pub use crate::cimd::address::{literal_refused, GuardedResolver, ResolveError};
use crate::cimd::CimdSettings;

/// The guarded client, for request bodies of type `B`.
pub type GuardedClient<B> = Client<HttpsConnector<HttpConnector<GuardedResolver>>, B>;

/// Which schemes the connector accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `https` only.
    HttpsOnly,
    /// `https`, and `http` (the caller restricts where).
    HttpsOrHttp,
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
        .map_err(|e| format!("TLS for outbound requests: {e}"))
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

/// The guarded client of `settings`; an error names the setting at fault.
pub fn client<B>(settings: &CimdSettings, scheme: Scheme) -> Result<GuardedClient<B>, String>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
{
    let mut http = HttpConnector::new_with_resolver(GuardedResolver {
        allow_private: settings.allow_private_addresses,
    });
    // The https connector below decides the schemes; this lets it see https URLs at all.
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_millis(settings.connect_timeout_ms)));
    let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls_config(settings)?);
    let https = match scheme {
        Scheme::HttpsOnly => builder.https_only().enable_http1().wrap_connector(http),
        Scheme::HttpsOrHttp => builder.https_or_http().enable_http1().wrap_connector(http),
    };
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(https))
}

/// Why a request got no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The address is one the policy refuses.
    Refused,
    /// The connection timed out.
    Timeout,
    /// Anything else.
    Unreachable,
}

/// Classifies a client error: refused addresses, a timeout, or anything else.
pub fn failure(e: &hyper_util::client::legacy::Error) -> Failure {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(ResolveError::Refused) = err.downcast_ref::<ResolveError>() {
            return Failure::Refused;
        }
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return Failure::Timeout;
        }
        source = err.source();
    }
    Failure::Unreachable
}
