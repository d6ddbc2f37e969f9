//! One client connection: bounded line reads under an idle timeout, replies with CRLF, a shutdown
//! signal, and a clean close.
//!
//! Every wait is bounded (the idle timeout for reads and writes, a short grace period when
//! closing), so a silent or slow client holds a connection slot for a bounded time only. Until the
//! client authenticates the bound is the shorter [`crate::Limits::pre_auth_idle_timeout`]: a
//! stranger's idle connection holds a slot for nothing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::timeout;

use crate::context::MailContext;
use crate::line::{read_line, LineError};

/// How long, and how much, to keep reading after deciding to close, so that the peer sees the last
/// reply instead of a reset caused by unread input.
const DRAIN_TIME: Duration = Duration::from_millis(500);
const DRAIN_BYTES: usize = 1 << 20;

/// Why a session ended before the client asked it to.
#[derive(Debug)]
pub(crate) enum End {
    /// The client closed the connection.
    Eof,
    /// The client sent a line longer than the limit.
    TooLong,
    /// The client was silent (or did not read) for longer than the idle timeout.
    Timeout,
    /// The listener is shutting down.
    Shutdown,
    /// The connection failed, or the session hit an internal error.
    Io(std::io::Error),
}

/// A client connection.
pub(crate) struct Conn {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    peer: SocketAddr,
    ctx: Arc<MailContext>,
    shutdown: watch::Receiver<bool>,
    line: Vec<u8>,
    authenticated: bool,
}

impl Conn {
    pub(crate) fn new(
        stream: TcpStream,
        peer: SocketAddr,
        ctx: Arc<MailContext>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let (read, writer) = stream.into_split();
        Conn {
            reader: BufReader::with_capacity(8 * 1024, read),
            writer,
            peer,
            ctx,
            shutdown,
            line: Vec::new(),
            authenticated: false,
        }
    }

    /// Marks the client authenticated: from now on waits are bounded by the (longer)
    /// [`crate::Limits::idle_timeout`].
    pub(crate) fn set_authenticated(&mut self) {
        self.authenticated = true;
    }

    /// How long the next read or write may wait.
    fn idle_timeout(&self) -> Duration {
        let limits = &self.ctx.limits;
        if self.authenticated {
            limits.idle_timeout
        } else {
            limits.pre_auth_idle_timeout
        }
    }

    /// Waits `delay` (the throttle's), unless the listener shuts down first.
    pub(crate) async fn pause(&mut self, delay: Duration) -> Result<(), End> {
        tokio::select! {
            () = tokio::time::sleep(delay) => Ok(()),
            _ = self.shutdown.wait_for(|stop| *stop) => Err(End::Shutdown),
        }
    }

    /// The client's address.
    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The listener's context.
    pub(crate) fn ctx(&self) -> &Arc<MailContext> {
        &self.ctx
    }

    /// Reads the client's next line, without its line ending.
    pub(crate) async fn read_line(&mut self) -> Result<Vec<u8>, End> {
        let max = self.ctx.limits.max_line;
        let idle = self.idle_timeout();
        let read = timeout(idle, read_line(&mut self.reader, &mut self.line, max));
        let result = tokio::select! {
            r = read => match r {
                Err(_) => Err(End::Timeout),
                Ok(Ok(())) => Ok(()),
                Ok(Err(LineError::Eof)) => Err(End::Eof),
                Ok(Err(LineError::TooLong)) => Err(End::TooLong),
                Ok(Err(LineError::Io(e))) => Err(End::Io(e)),
            },
            _ = self.shutdown.wait_for(|stop| *stop) => Err(End::Shutdown),
        };
        result.map(|()| std::mem::take(&mut self.line))
    }

    /// Sends one reply line; CRLF is added.
    pub(crate) async fn send(&mut self, line: &str) -> Result<(), End> {
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        match timeout(self.idle_timeout(), self.writer.write_all(&bytes)).await {
            Err(_) => Err(End::Timeout),
            Ok(Err(e)) => Err(End::Io(e)),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Sends a last line, if any, and closes the connection cleanly: the write side is shut down,
    /// then unread input is drained briefly so that the peer gets the reply rather than a reset.
    pub(crate) async fn close(mut self, last: Option<&str>) {
        if let Some(line) = last {
            let _ = self.send(line).await;
        }
        let _ = timeout(DRAIN_TIME, self.writer.shutdown()).await;
        let mut sink = [0u8; 8192];
        let mut drained = 0;
        let _ = timeout(DRAIN_TIME, async {
            while drained < DRAIN_BYTES {
                match self.reader.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => drained += n,
                }
            }
        })
        .await;
    }
}
