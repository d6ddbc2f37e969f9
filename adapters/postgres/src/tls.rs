//! How every connection of the store is made, with TLS or without: the pool's, the follower's
//! (which also carries the key changes, [`keys`](crate::keys)), the failure exchange's, and so
//! the administration commands', which open the same store. [`Connector::new`] decides once, at
//! start, from the URL's `sslmode` and [`Options::ca_file`](crate::Options::ca_file).
//!
//! # What `sslmode` means here
//!
//! | URL | connection |
//! | --- | --- |
//! | `sslmode=require` | TLS, the server's certificate verified against Mozilla's roots (`webpki-roots`) plus the PEM certificates of the CA file, and the URL's host name checked against it; anything else fails the connection |
//! | no `sslmode`, `sslmode=prefer`, `sslmode=disable` | plain text, as before TLS was supported (for a unix socket or a trusted network) |
//!
//! `require` is stronger here than libpq's, which encrypts without verifying anything: it is what
//! libpq calls `verify-full`. Encryption toward a server nobody checked protects against a
//! passive listener only, and a store that sends its password hashes and signing keys through
//! the connection needs the active attacker excluded too. `prefer` (tokio-postgres' default when
//! the URL says nothing) stays plain rather than trying a verified TLS first: Debian installs
//! PostgreSQL with `ssl = on` and a self-signed "snakeoil" certificate, so a verifying `prefer`
//! would turn every such default installation from working into failing, while a `prefer` that
//! accepted any certificate would promise a protection it does not give. So TLS is either asked
//! for and verified, or not used.
//!
//! A CA file given without `sslmode=require` is refused at start: the operator meant TLS, and the
//! connection would silently be plain. TLS goes over TCP; PostgreSQL offers none on a unix
//! socket, so `sslmode=require` with a socket directory as the host fails to connect.
//!
//! rustls with ring's algorithms, as the server's other TLS client (its client metadata document
//! fetcher): no C library to build, X25519 and P-256 key exchange.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Client, Config, Connection, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::OpenError;

/// The stream a connection runs over: a rustls stream when TLS is on, the bare socket otherwise
/// (tokio-postgres never starts TLS when the mode is [`SslMode::Disable`]).
pub(crate) type Stream = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream;

/// Makes the store's connections, all the same way.
#[derive(Clone)]
pub(crate) struct Connector {
    tls: MakeRustlsConnect,
}

impl Connector {
    /// The connector for `config`, whose `sslmode` is normalised: `require` stays (verified TLS),
    /// anything else becomes `disable` (plain). `ca_file` adds trusted roots to Mozilla's.
    pub(crate) fn new(config: &mut Config, ca_file: Option<&Path>) -> Result<Self, OpenError> {
        let require = config.get_ssl_mode() == SslMode::Require;
        if !require {
            if let Some(path) = ca_file {
                return Err(OpenError::Tls(format!(
                    "a CA file ({}) is given but the URL does not say sslmode=require, so the \
                     connection would not use TLS",
                    path.display()
                )));
            }
            config.ssl_mode(SslMode::Disable);
        }
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = ca_file {
            add_ca_file(&mut roots, path)?;
        }
        Ok(Connector {
            tls: MakeRustlsConnect::new(client_config(roots)?),
        })
    }

    /// Opens one connection of `config` (which [`Connector::new`] normalised).
    pub(crate) async fn connect(
        &self,
        config: &Config,
    ) -> Result<(Client, Connection<Socket, Stream>), tokio_postgres::Error> {
        config.connect(self.tls.clone()).await
    }

    /// The TLS connector, for the pool's manager.
    pub(crate) fn make_tls(&self) -> MakeRustlsConnect {
        self.tls.clone()
    }
}

/// Adds every PEM certificate of `path` to `roots`; a file that cannot be read, holds none, or
/// holds one that is no usable root is an error naming it.
fn add_ca_file(roots: &mut rustls::RootCertStore, path: &Path) -> Result<(), OpenError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            OpenError::Tls(format!(
                "cannot read certificates from the CA file {}: {e}",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(OpenError::Tls(format!(
            "the CA file {} holds no PEM certificate",
            path.display()
        )));
    }
    for cert in certs {
        roots.add(cert).map_err(|e| {
            OpenError::Tls(format!(
                "a certificate in the CA file {} is not usable as a root: {e}",
                path.display()
            ))
        })?;
    }
    Ok(())
}

/// rustls with ring's algorithms and `roots`.
///
/// rustls 0.23.48 deprecated ring's provider for lacking post-quantum key exchange; as for the
/// client metadata fetcher, building aws-lc (a large C library) in is not worth it here.
#[allow(deprecated)]
fn client_config(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, OpenError> {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| OpenError::Tls(e.to_string()))
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}
