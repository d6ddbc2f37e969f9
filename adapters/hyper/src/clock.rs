//! The clock. The engine takes `now` as an argument; this is the one place that reads it.

use std::time::{SystemTime, UNIX_EPOCH};

/// The current Unix time in seconds (0 if the system clock is before 1970).
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
