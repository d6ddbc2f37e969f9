//! The real `oauth-server` binary as the tests that drive it start and stop it: `serve` on a data
//! directory until it says where it listens, and SIGTERM with a clean exit.

// Each test binary that includes this module uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_oauth-server");

/// A running `serve`: the child, everything it printed up to its listening line, and the address
/// that line names.
pub struct Served {
    pub child: Child,
    pub printed: String,
    pub addr: String,
}

/// Starts `serve` on the data directory, on a port the kernel picks, and waits for its
/// listening line. The caller stops it ([`stop`]).
// The child is handed to the caller, which stops and waits for it.
#[allow(clippy::zombie_processes)]
pub fn serve(dir: &std::path::Path) -> Served {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap_or(0) == 0 {
            let status = child.wait();
            panic!("serve exited early ({status:?}): {printed}");
        }
        printed.push_str(&line);
        if let Some(addr) = line
            .trim()
            .strip_prefix("oauth-server listening on http://")
        {
            let addr = addr.to_owned();
            return Served {
                child,
                printed,
                addr,
            };
        }
    }
}

/// Stops a served binary with SIGTERM and asserts it exits cleanly.
pub fn stop(mut child: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
}
