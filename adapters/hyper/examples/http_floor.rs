//! The load benchmark's floor: the same hyper + tokio server setup as `oauth-server` (HTTP/1.1,
//! multi-threaded runtime, `TCP_NODELAY`, the same header limits, one `write` per answer),
//! answering every request with a fixed token-shaped JSON body after reading the request body,
//! and doing nothing else.
//!
//! `bench/run.sh` runs it beside `oauth-server` and the peer. Its requests per second are what this
//! machine's HTTP stack and load generator allow at all; `oauth-server`'s fraction of it is the
//! cost of the OAuth work, and the floor's ratio to the peer is the most any server built on this
//! stack could reach on this machine.
//!
//! An optional second argument is an amount of synthetic work per request, in nanoseconds of busy
//! waiting before the answer: `bench/budget.sh` runs the floor at several amounts to find how much
//! work per request a server on this stack can do and still reach a given multiple of the peer.
//!
//!     cargo run --release -p oauth-server --example http_floor -- 127.0.0.1:18081 [WORK_NS]

use std::convert::Infallible;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

const BODY: &str = r#"{"access_token":"AQEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","token_type":"Bearer","expires_in":3600,"scope":"mail"}"#;

async fn answer(
    req: Request<Incoming>,
    work: Duration,
) -> Result<Response<Full<Bytes>>, Infallible> {
    // Read the body as the real server does (bounded), then answer.
    let _ = Limited::new(req.into_body(), 64 * 1024).collect().await;
    busy_wait(work);
    Ok(Response::builder()
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .header("pragma", "no-cache")
        .body(Full::new(Bytes::from_static(BODY.as_bytes())))
        .expect("static response"))
}

/// Keeps the CPU busy for `work` (a stand-in for a server's own per-request work).
fn busy_wait(work: Duration) {
    if work.is_zero() {
        return;
    }
    let start = Instant::now();
    while start.elapsed() < work {
        std::hint::spin_loop();
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18081".to_owned());
    let work = match args.next().map(|n| n.parse::<u64>()) {
        None => Duration::ZERO,
        Some(Ok(ns)) => Duration::from_nanos(ns),
        Some(Err(e)) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)),
    };
    let listener = TcpListener::bind(&addr).await?;
    println!("http floor listening on http://{}", listener.local_addr()?);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .max_buf_size(16 * 1024)
        .writev(false);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let conn = builder.serve_connection(
            TokioIo::new(stream),
            service_fn(move |req| answer(req, work)),
        );
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}
