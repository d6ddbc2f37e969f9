//! The accept loop shared by both protocols: the loopback/plaintext check, the connection limit,
//! and shutdown.
//!
//! A client beyond [`crate::Limits::max_connections`] still gets one line (the protocol's "too
//! busy" reply) before the connection is closed, so that it reports something better than a reset.
//! On shutdown the loop stops accepting, tells every session to say goodbye, and waits for them.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::conn::Conn;
use crate::context::{MailContext, ServeError};

/// Serves `listener` until `shutdown` completes, running `session` for each connection.
pub(crate) async fn run<H, Fut>(
    listener: TcpListener,
    ctx: Arc<MailContext>,
    shutdown: impl Future<Output = ()>,
    protocol: &'static str,
    busy_reply: String,
    session: H,
) -> Result<(), ServeError>
where
    H: Fn(Conn) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let local = listener
        .local_addr()
        .map_err(|e| ServeError::Io(e.to_string()))?;
    ctx.check_listener(&local)?;
    info!(%local, protocol, "auth-only mail listener started (plaintext, loopback only)");
    let slots = Arc::new(Semaphore::new(ctx.limits.max_connections));
    let busy_reply: Arc<[u8]> = format!("{busy_reply}\r\n").into_bytes().into();
    let (stop, stopped) = watch::channel(false);
    let mut sessions = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            accepted = listener.accept() => {
                let (mut stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Typically out of file descriptors: back off instead of spinning.
                        warn!(error = %e, protocol, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                // Replies are a few short lines: send each at once rather than wait for an ACK.
                let _ = stream.set_nodelay(true);
                match slots.clone().try_acquire_owned() {
                    Ok(slot) => {
                        debug!(%peer, protocol, "connection opened");
                        let conn = Conn::new(stream, peer, ctx.clone(), stopped.clone());
                        let session = session(conn);
                        sessions.spawn(async move {
                            session.await;
                            debug!(%peer, protocol, "connection closed");
                            drop(slot);
                        });
                    }
                    Err(_) => {
                        warn!(%peer, protocol, "connection refused: too many connections");
                        let reply = busy_reply.clone();
                        sessions.spawn(async move {
                            let write = async {
                                let _ = stream.write_all(&reply).await;
                                let _ = stream.shutdown().await;
                            };
                            let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
                        });
                    }
                }
            }
        }
    }
    info!(%local, protocol, "auth-only mail listener stopping");
    let _ = stop.send(true);
    while sessions.join_next().await.is_some() {}
    Ok(())
}
