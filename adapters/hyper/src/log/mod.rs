//! The server's log: `tracing` events as one plain text line each, on standard error.
//!
//! Two parts, each in its own file: [`line`](mod@line) formats an event (the same shape as
//! `tracing_subscriber`'s default format, without its per-event costs), and [`output`] gets lines
//! to standard error without a write per line: each tokio worker thread collects its lines in a
//! buffer of its own, which a flusher thread writes out in one `write` per batch, at most 50 ms
//! after its first line (see [`output`], wired into the runtime by [`runtime_builder`]). Under the
//! load benchmark, a log thread woken for every few lines, the per-field formatting of the default
//! subscriber, and then a `write` every time a worker went idle, each cost several percent of the
//! server's throughput (bench/README.md).
//!
//! Why not the well-kept crates (issue 16): the project uses `tracing-subscriber`'s own format and
//! `tracing-appender`'s non-blocking writer unless they cost more than 3 % of `client_credentials`
//! throughput. Both were measured against this module on the same commit (bench/README.md, "The
//! log on the well-kept crates"), and both cost more:
//! - `tracing-appender`, configured as the server would need it (`lossy(false)`: its default drops
//!   lines when its channel of 128,000 lines is full, where this output makes the logging threads
//!   wait; a 64 KiB `BufWriter` its thread flushes whenever the channel runs empty; the
//!   `WorkerGuard` dropped after the runtime, which waits at most 0.1 s to queue its stop and 1 s
//!   for the queue to drain, where [`output::flush_all`] waits as long as standard error does):
//!   1,300 more instructions per `cc` request under callgrind, but 0.89x the throughput (median
//!   of 6 paired rounds). Its thread is woken every few lines, and on two cores shared with the
//!   load generator each wake-up is a context switch for a worker.
//! - The default format (ANSI off, and a writer escaping control characters inside a line as
//!   [`line`](mod@line) does, since the default format escapes ANSI sequences in messages but
//!   writes line breaks in field values as they are):
//!   about 6,600 more instructions per event (9,000 against 2,400, mostly `core::fmt` and the
//!   calendar arithmetic of every timestamp) and 0.96x the throughput (median of 36 paired
//!   rounds).
//! - Both together: 0.78x and 0.86x (two batches, 14 paired rounds).
//!
//! The line keeps the default format's shape, so the tests, the docs and any log tooling see the
//! same lines either way.

pub mod line;
pub mod output;

/// Installs the global subscriber: `RUST_LOG` filters (default `info`), [`line::Line`] format,
/// [`output::Stderr`] output.
pub fn init() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .event_format(line::Line)
        .with_writer(output::Stderr)
        .init();
}

/// A multi-threaded runtime builder whose threads buffer their log lines (and write them out when
/// they stop). Call [`output::flush_all`] once the runtime is gone.
pub fn runtime_builder() -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .enable_all()
        .on_thread_start(output::register_thread)
        .on_thread_stop(output::unregister_thread);
    builder
}
