//! The parts of an HTTP request handlers look at, read once with the body limit applied.

use std::net::SocketAddr;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::HeaderMap;
use oauth_proto::error::OAuthError;
use oauth_proto::http::HttpRequest;

use crate::reply::{self, HttpResponse};

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

fn too_large() -> HttpResponse {
    reply::json_error(
        413,
        &OAuthError::invalid_request("the request body is too large"),
    )
}

/// 408: the body did not arrive within the request's time (the caller keeps the clock).
pub fn too_slow() -> HttpResponse {
    reply::json_error(
        408,
        &OAuthError::invalid_request("the request body was not received in time"),
    )
}

/// Reads the body, at most `max` bytes. Errors are answered as the client's: 413 for too large,
/// 400 for a broken body. The caller bounds the time (and answers [`too_slow`]).
pub async fn read(
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
    max: usize,
) -> Result<Request, HttpResponse> {
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let body = match read_body(body, declared, max).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => return Err(too_large()),
        Err(BodyError::Broken) => {
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
    })
}

enum BodyError {
    TooLarge,
    Broken,
}

/// The body's bytes, at most `max`, copied once into a buffer sized from `Content-Length`.
async fn read_body(
    mut body: Incoming,
    declared: Option<u64>,
    max: usize,
) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Broken)?;
        if let Ok(data) = frame.into_data() {
            if data.len() > max - out.len() {
                return Err(BodyError::TooLarge);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}
