//! The metrics listener: `GET /metrics` for the peers in `[server] metrics_allow`, 403 for any
//! other peer, 404 for any other path (see the [module docs](super) for why it is a listener of
//! its own).
//!
//! Connections get the public listener's limits on the request head (size and time). The
//! listener stops accepting when the server stops.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Method;
use hyper_util::rt::{TokioIo, TokioTimer};
use ipnet::IpNet;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::App;
use crate::http::reply::{self, HttpResponse};

/// Parses `[server] metrics_allow`: addresses (`127.0.0.1`) or CIDRs (`10.0.0.0/8`).
pub(crate) fn parse_allowed(entries: &[String]) -> Result<Vec<IpNet>, String> {
    entries
        .iter()
        .map(|e| {
            e.parse::<IpNet>()
                .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("[server] metrics_allow: {e:?} is not an address or a CIDR"))
        })
        .collect()
}

/// What the listener's connections share.
struct Exporter {
    registry: Registry,
    allowed: Vec<IpNet>,
}

impl Exporter {
    fn allows(&self, peer: IpAddr) -> bool {
        // An IPv4 peer of a dual-stack socket arrives as `::ffff:a.b.c.d`.
        let peer = peer.to_canonical();
        self.allowed.iter().any(|net| net.contains(&peer))
    }

    fn answer(&self, req: &hyper::Request<Incoming>, peer: SocketAddr) -> HttpResponse {
        if !self.allows(peer.ip()) {
            tracing::debug!(peer = %peer.ip(), "metrics refused to a peer not in metrics_allow");
            return reply::text(403, "forbidden: not in [server] metrics_allow\n");
        }
        if req.uri().path() != "/metrics" {
            return reply::text(404, "not found\n");
        }
        if !matches!(*req.method(), Method::GET | Method::HEAD) {
            let mut resp = reply::text(405, "method not allowed\n");
            resp.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return resp;
        }
        let mut body = String::new();
        if prometheus_text::encode(&mut body, &self.registry).is_err() {
            // Writing to a `String` does not fail; a collector returning an error would.
            tracing::error!("encoding the metrics failed");
            return reply::text(500, "encoding the metrics failed\n");
        }
        let mut resp = hyper::Response::new(Full::new(Bytes::from(body)));
        let headers = resp.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(prometheus_text::CONTENT_TYPE),
        );
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}

/// Binds `[server] metrics_listen` and serves it until `stopped` changes; `None` when the
/// setting is unset (no metrics listener).
pub(crate) async fn start(
    app: &Arc<App>,
    stopped: watch::Receiver<bool>,
) -> std::io::Result<Option<SocketAddr>> {
    let Some(listen) = &app.settings.metrics_listen else {
        return Ok(None);
    };
    let listener = TcpListener::bind(listen).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("[server] metrics_listen {listen:?}: {e}"))
    })?;
    let addr = listener.local_addr()?;
    let exporter = Arc::new(Exporter {
        registry: super::registry(app.store.clone()),
        // `ServerSettings::validate` has parsed the list; an unvalidated bad one allows nobody.
        allowed: parse_allowed(&app.settings.metrics_allow).unwrap_or_default(),
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(app.settings.header_read_timeout_secs))
        .max_buf_size(app.settings.max_header_bytes.max(8192));
    tokio::spawn(accept_loop(listener, exporter, builder, stopped));
    Ok(Some(addr))
}

async fn accept_loop(
    listener: TcpListener,
    exporter: Arc<Exporter>,
    builder: http1::Builder,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.changed() => return,
        };
        let exporter = exporter.clone();
        let service = service_fn(move |req| {
            let resp = exporter.answer(&req, peer);
            async move { Ok::<_, std::convert::Infallible>(resp) }
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "metrics connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exporter(allow: &[&str]) -> Exporter {
        let allow: Vec<String> = allow.iter().map(|a| a.to_string()).collect();
        Exporter {
            registry: Registry::default(),
            allowed: parse_allowed(&allow).unwrap(),
        }
    }

    #[test]
    fn allows_listed_peers_only_including_ipv4_on_a_dual_stack_socket() {
        let default = exporter(&["127.0.0.1", "::1"]);
        assert!(default.allows("127.0.0.1".parse().unwrap()));
        assert!(default.allows("::ffff:127.0.0.1".parse().unwrap()));
        assert!(default.allows("::1".parse().unwrap()));
        assert!(!default.allows("127.0.0.2".parse().unwrap()));
        assert!(!default.allows("10.0.0.5".parse().unwrap()));
        let network = exporter(&["10.0.0.0/8"]);
        assert!(network.allows("10.1.2.3".parse().unwrap()));
        assert!(!network.allows("127.0.0.1".parse().unwrap()));
        assert!(!exporter(&[]).allows("127.0.0.1".parse().unwrap()));
        assert!(parse_allowed(&["localhost".to_owned()]).is_err());
    }
}
