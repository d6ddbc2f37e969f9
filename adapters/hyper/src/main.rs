//! The `oauth-server` binary: parses the command line, sets up logging, runs.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = oauth_server::admin::cli::Cli::parse();
    oauth_server::log::init();
    let runtime = match oauth_server::log::runtime_builder().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("oauth-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(oauth_server::run(cli));
    drop(runtime);
    oauth_server::log::output::flush_all();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("oauth-server: {msg}");
            ExitCode::FAILURE
        }
    }
}
