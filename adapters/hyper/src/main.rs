//! The `oauth-server` binary: parses the command line, sets up logging, runs.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = oauth_server::cli::Cli::parse();
    // Log lines are written by a background thread, not on the request path: a synchronous write
    // to stderr per request cost a quarter of the server's CPU per request (bench/README.md).
    // Not lossy: when the buffer is full, logging waits rather than dropping lines. The thread
    // writes through a `BufWriter` and flushes whenever its queue runs empty, so under load many
    // lines share one `write` (stderr alone is unbuffered: a syscall per line cost a sixth of the
    // server's CPU), and when idle every line still appears at once. The guard flushes what is
    // buffered when `main` returns.
    let (writer, _flush_on_exit) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        ));
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(writer)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("oauth-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(oauth_server::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("oauth-server: {msg}");
            ExitCode::FAILURE
        }
    }
}
