//! The accept loop shared by both protocols: the loopback/plaintext check, the connection limits,
//! and shutdown.
//!
//! Two limits guard the slots: [`crate::Limits::max_connections`] in all, and
//! [`crate::Limits::max_connections_per_address`] per source address, so that one address opening
//! idle connections cannot take every slot (without it, 64 idle connections from one stranger
//! locked every user out for as long as the idle timeout, renewed at will). A client beyond either
//! limit still gets one line (the protocol's "too busy" reply) before the connection is closed, so
//! that it reports something better than a reset. On shutdown the loop stops accepting, tells every
//! session to say goodbye, and waits for them.

use oauth_proto::throttle::address_key;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
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
    let per_address = Arc::new(PerAddress::new(ctx.limits.max_connections_per_address));
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
                let taken = match per_address.take(peer.ip()) {
                    Some(address_slot) => slots
                        .clone()
                        .try_acquire_owned()
                        .map(|slot| (slot, address_slot))
                        .map_err(|_| "too many connections"),
                    None => Err("too many connections from this address"),
                };
                match taken {
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
                    Err(why) => {
                        warn!(%peer, protocol, "connection refused: {why}");
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

/// Connections open per source address (normalized by [`address_key`]). Every entry belongs to at
/// least one open connection, so the map never holds more than `max_connections` entries.
struct PerAddress {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in [`PerAddress`]; given back when dropped.
struct AddressSlot {
    table: Arc<PerAddress>,
    key: IpAddr,
}

impl PerAddress {
    fn new(max: usize) -> Self {
        PerAddress {
            max,
            open: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        // Each change is one insert or update with nothing that can panic in between.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for one more connection from `ip`, or `None` when its address has `max` open.
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let key = address_key(ip);
        let mut open = self.lock();
        let count = open.entry(key).or_insert(0);
        if *count >= self.max {
            if *count == 0 {
                open.remove(&key);
            }
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            table: self.clone(),
            key,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.table.lock();
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_counted_per_ipv4_or_ipv6_slash_64() {
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(address_key(v4), v4);
        assert_eq!(address_key("::ffff:192.0.2.7".parse().unwrap()), v4);
        assert_eq!(
            address_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd".parse().unwrap()),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn per_address_slots_are_capped_and_given_back() {
        let table = Arc::new(PerAddress::new(2));
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let a2: IpAddr = "2001:db8::2".parse().unwrap();
        let b: IpAddr = "127.0.0.1".parse().unwrap();
        let first = table.take(a).unwrap();
        let _second = table.take(a2).unwrap();
        assert!(table.take(a).is_none(), "the /64 is full");
        assert!(table.take(b).is_some(), "another address is not");
        drop(first);
        assert!(
            table.take(a).is_some(),
            "a closed connection gives its place back"
        );
        let zero = Arc::new(PerAddress::new(0));
        assert!(zero.take(b).is_none());
        assert!(zero.lock().is_empty(), "a refusal leaves no entry behind");
    }
}
