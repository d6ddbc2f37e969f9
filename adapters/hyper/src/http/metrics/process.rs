//! Process basics under the names every Prometheus client uses: when the server started, its
//! resident memory and its open file descriptors (the last two from Linux's `/proc`, left out
//! where it is not there). Read when scraped; nothing is kept.

use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

/// Writes `process_start_time_seconds`, `process_resident_memory_bytes`, `process_open_fds`.
#[derive(Debug)]
pub(crate) struct ProcessCollector {
    /// When the server started, in seconds since the Unix epoch.
    started: f64,
}

impl ProcessCollector {
    /// The collector of a server starting now.
    pub(crate) fn new() -> Self {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        ProcessCollector {
            started: since.as_secs_f64(),
        }
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        ConstGauge::new(self.started).encode(encoder.encode_descriptor(
            "process_start_time_seconds",
            "When the server started, in seconds since the Unix epoch",
            None,
            MetricType::Gauge,
        )?)?;
        if let Some(bytes) = resident_bytes() {
            ConstGauge::new(bytes).encode(encoder.encode_descriptor(
                "process_resident_memory_bytes",
                "Resident memory",
                None,
                MetricType::Gauge,
            )?)?;
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            let open = i64::try_from(fds.count()).unwrap_or(i64::MAX);
            ConstGauge::new(open).encode(encoder.encode_descriptor(
                "process_open_fds",
                "Open file descriptors",
                None,
                MetricType::Gauge,
            )?)?;
        }
        Ok(())
    }
}

/// The `VmRSS` line of `/proc/self/status` (`VmRSS:     5120 kB`), in bytes.
fn resident_bytes() -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kib: i64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_resident_memory_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(super::resident_bytes().is_some_and(|b| b > 0));
        }
    }
}
