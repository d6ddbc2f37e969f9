//! The server's log: `tracing` events as one plain text line each, on standard error.
//!
//! Two parts, each in its own file: [`line`] formats an event (the same shape as
//! `tracing_subscriber`'s default format, without its per-event costs), and [`output`] gets lines
//! to standard error without a write per line: each tokio worker thread collects its lines in a
//! buffer of its own, which a flusher thread writes out in one `write` per batch, at most 50 ms
//! after its first line (see [`output`], wired into the runtime by [`runtime_builder`]). Under the
//! load benchmark, a log thread woken for every few lines, the per-field formatting of the default
//! subscriber, and then a `write` every time a worker went idle, each cost several percent of the
//! server's throughput (bench/README.md).

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
