//! The server's log: `tracing` events as one plain text line each, on standard error.
//!
//! Two parts, each in its own file: [`line`] formats an event (the same shape as
//! `tracing_subscriber`'s default format, without its per-event costs), and [`output`] gets lines
//! to standard error without a write per line and without a log thread: each tokio worker thread
//! collects its lines and writes them out, in one `write`, when it goes idle (see
//! [`output::flush_idle_thread`], wired into the runtime by [`runtime_builder`]). Under the load
//! benchmark, a log thread woken for every few lines, and the per-field formatting of the default
//! subscriber, cost more CPU than the whole OAuth engine (bench/README.md).

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

/// A multi-threaded runtime builder whose workers flush their log lines whenever they go idle and
/// when they stop.
pub fn runtime_builder() -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .enable_all()
        .on_thread_park(output::flush_idle_thread)
        .on_thread_stop(output::flush_thread);
    builder
}
