//! The parts of an HTTP request handlers look at, read once with the body limit applied.
//!
//! # Lingering close
//! A body refused early (413 for too large, 408 for too slow) is mostly still on its way. Closing
//! with unread data makes the kernel reset the connection, and a client that writes its whole body
//! before reading (Python's `urllib`, most simple clients) then gets a broken pipe instead of the
//! answer. So before answering such a refusal the server reads and discards the rest of the body,
//! for at most [`LINGER_SECS`] and [`LINGER_MAX_BYTES`], and answers with `Connection: close`. A
//! body declared longer than that bound is not drained at all (it could not be drained in time
//! anyway), and neither is one the client holds back behind `Expect: 100-continue` (reading it
//! would invite it). A stranger can therefore make the server read at most 8 MiB or 2 s per
//! refused request, no more than one accepted request of the same size costs.

use std::net::SocketAddr;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::HeaderMap;
use oauth_proto::error::OAuthError;
use oauth_proto::http::HttpRequest;

use crate::http::reply::{self, HttpResponse};

/// A request with its body read. `Debug` shows neither headers nor body (they carry secrets).
pub struct Request {
    /// Method.
    pub method: hyper::Method,
    /// The request target (path and query).
    pub uri: hyper::Uri,
    /// Header fields.
    pub headers: HeaderMap,
    /// Body bytes (empty for GET).
    pub body: Vec<u8>,
    /// The peer's address.
    pub peer: SocketAddr,
    /// The client's address: the peer's, or behind a trusted proxy the one it forwarded for
    /// ([`crate::http::proxies`]).
    pub client: std::net::IpAddr,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path())
            .field("body_len", &self.body.len())
            .field("peer", &self.peer)
            .finish()
    }
}

impl Request {
    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// The address of the client the request is from, which every per-address limit keys on.
    pub fn client_addr(&self) -> std::net::IpAddr {
        self.client
    }

    /// The raw query (without `?`), empty when none.
    pub fn query(&self) -> &str {
        self.uri.query().unwrap_or("")
    }

    /// A header as text, if present and visible ASCII (by name, or faster by a typed constant).
    pub fn header(&self, name: impl hyper::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The form the engine's JSON endpoints take (the body moves, it is not copied).
    pub fn into_engine(self) -> HttpRequest {
        HttpRequest {
            content_type: self.header(hyper::header::CONTENT_TYPE).map(str::to_owned),
            authorization: self.header(hyper::header::AUTHORIZATION).map(str::to_owned),
            method: self.method.as_str().to_owned(),
            query: self.query().to_owned(),
            body: self.body,
        }
    }
}

/// How long a refused body is drained before the connection closes (see the module docs).
pub const LINGER_SECS: u64 = 2;
/// How many bytes of a refused body are drained at most (see the module docs).
pub const LINGER_MAX_BYTES: u64 = 8 << 20;

/// A refusal that closes the connection once answered (after [`linger`]).
fn closing(status: u16, description: &'static str) -> HttpResponse {
    let mut resp = reply::json_error(status, &OAuthError::invalid_request(description));
    resp.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    resp
}

fn too_large() -> HttpResponse {
    closing(413, "the request body is too large")
}

fn too_slow() -> HttpResponse {
    closing(408, "the request body was not received in time")
}

/// Reads and discards what is left of a refused body, within [`LINGER_SECS`] and
/// [`LINGER_MAX_BYTES`]; `left` is what the client declared is still to come, when it said.
async fn linger(mut body: Incoming, left: Option<u64>, expect_continue: bool) {
    if expect_continue || left.is_some_and(|n| n > LINGER_MAX_BYTES) {
        return;
    }
    let drain = async {
        let mut seen = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                seen += data.len() as u64;
                if seen > LINGER_MAX_BYTES {
                    return;
                }
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(LINGER_SECS), drain).await;
}

/// Reads the body, at most `max` bytes, by `deadline`. Errors are answered as the client's: 413
/// for too large and 408 for too slow (both after a lingering close, see the module docs), 400
/// for a broken body.
pub async fn read(
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
    max: usize,
    deadline: tokio::time::Instant,
) -> Result<Request, HttpResponse> {
    let (parts, mut body) = req.into_parts();
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let expect_continue = parts
        .headers
        .get(hyper::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if declared.is_some_and(|n| n > max as u64) {
        linger(body, declared, expect_continue).await;
        return Err(too_large());
    }
    let mut out = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    let read = tokio::time::timeout_at(deadline, read_body(&mut body, &mut out, max)).await;
    let left = declared.map(|n| n.saturating_sub(out.len() as u64));
    let body = match read {
        Ok(Ok(())) => out,
        Ok(Err(BodyError::TooLarge)) => {
            linger(body, left, expect_continue).await;
            return Err(too_large());
        }
        Err(_elapsed) => {
            linger(body, left, expect_continue).await;
            return Err(too_slow());
        }
        Ok(Err(BodyError::Broken)) => {
            return Err(reply::json_error(
                400,
                &OAuthError::invalid_request("the request body could not be read"),
            ))
        }
    };
    Ok(Request {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        body,
        peer,
        client: peer.ip(),
    })
}

enum BodyError {
    TooLarge,
    Broken,
}

/// The body's bytes, at most `max`, appended to `out` (sized by the caller from `Content-Length`).
async fn read_body(body: &mut Incoming, out: &mut Vec<u8>, max: usize) -> Result<(), BodyError> {
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Broken)?;
        if let Ok(data) = frame.into_data() {
            if data.len() > max - out.len() {
                return Err(BodyError::TooLarge);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(())
}
