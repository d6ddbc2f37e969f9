//! The listener: accepting connections, per-connection limits, the purge task, and graceful
//! shutdown.
//!
//! Each connection is served by hyper's HTTP/1.1 server with a bounded request head
//! (`max_buf_size`) and a deadline for receiving it (`header_read_timeout`, which also closes idle
//! keep-alive connections), so a slow or silent client holds a socket, never a thread, and not for
//! long. On shutdown the listener closes, every connection finishes the request it is serving and
//! closes, up to a grace period, and then the store is flushed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use oauth_proto::store::AsyncStore;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::clock;
use crate::http::{metrics, routes};

/// A running server.
pub struct Running {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    app: Arc<App>,
}

impl Running {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of the metrics listener, when `[server] metrics_listen` asks for one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The shared state (tests use it to reach the store and engine).
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Stops accepting, lets in-flight requests finish (within the grace period), flushes the
    /// store, and returns when all of that is done.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Binds the listen address of the settings and starts serving.
pub async fn start(app: App) -> std::io::Result<Running> {
    let listener = TcpListener::bind(&app.settings.listen).await?;
    let addr = listener.local_addr()?;
    let app = Arc::new(app);
    let (stop, stopped) = watch::channel(false);
    let metrics_addr = metrics::start(&app, stopped.clone()).await?;
    let purge = tokio::spawn(purge_loop(app.clone(), stopped.clone()));
    let task = tokio::spawn(accept_loop(listener, app.clone(), stopped, purge));
    Ok(Running {
        addr,
        metrics_addr,
        stop,
        task,
        app,
    })
}

async fn accept_loop(
    listener: TcpListener,
    app: Arc<App>,
    mut stopped: watch::Receiver<bool>,
    purge: JoinHandle<()>,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(app.settings.header_read_timeout_secs))
        // Header fields are limited to hyper's default of 100: setting `max_headers` explicitly,
        // even to that value, makes hyper fill two 100-entry arrays on the heap for every request.
        .max_buf_size(app.settings.max_header_bytes.max(8192))
        // Head and body are copied into one buffer and sent with one `write`, not a two-part
        // `writev`: every answer here is small, and under the cc load this cut the server's CPU
        // per request by about 8 % (bench/README.md).
        .writev(false);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let service = service_fn(move |req| {
                    let app = app.clone();
                    async move { Ok::<_, std::convert::Infallible>(routes::handle(app, req, peer).await) }
                });
                let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            _ = stopped.changed() => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: finishing in-flight requests");
    let grace = Duration::from_secs(app.settings.shutdown_grace_secs);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not finish within the grace period");
    }
    purge.abort();
    match app.store.flush().await {
        Ok(()) => tracing::info!("store flushed"),
        Err(e) => tracing::error!(error = %e, "flushing the store failed"),
    }
}

async fn purge_loop(app: Arc<App>, mut stopped: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(app.settings.purge_interval_secs));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.changed() => return,
        }
        let now = clock::now();
        app.sessions.purge(now);
        match app.store.purge(now).await {
            Ok(stats) if stats.removed > 0 => {
                tracing::debug!(removed = stats.removed, "purged expired records")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purge failed"),
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
