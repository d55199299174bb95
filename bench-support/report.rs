//! What every binder's throughput bench shares: the process's peak memory and the result lines
//! `scripts/bench` collects into `docs/bench/REPORT.md`. Included by each bench with
//! `#[path = "../../bench-support/report.rs"] mod report;`.

/// The process's peak resident set in KiB (Linux `VmHWM`; 0 where it is not reported).
pub(crate) fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Appends one result line to the file named by `BENCH_JSON` (read by `scripts/bench`), if set.
pub(crate) fn record(result: serde_json::Value) {
    if let Some(path) = std::env::var_os("BENCH_JSON") {
        use std::io::Write;
        let written =
            std::fs::OpenOptions::new().create(true).append(true).open(&path).and_then(|mut f| writeln!(f, "{result}"));
        if let Err(e) = written {
            panic!("cannot append to BENCH_JSON file {}: {e}", path.to_string_lossy());
        }
    }
}

/// The `p`-th percentile (0.0–1.0) of `samples` by nearest rank; sorts `samples` in place.
/// Zero for no samples.
pub(crate) fn percentile(samples: &mut [std::time::Duration], p: f64) -> std::time::Duration {
    samples.sort_unstable();
    let i = ((samples.len() as f64 - 1.0) * p).round().max(0.0) as usize;
    samples.get(i).copied().unwrap_or_default()
}

/// `d` in microseconds, as the report's latency columns give it.
pub(crate) fn micros(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The median and 99th percentile of `samples`, in microseconds; sorts `samples` in place.
#[allow(dead_code, reason = "the RabbitMQ bench keeps its percentiles as durations")]
pub(crate) fn p50_p99_us(samples: &mut [std::time::Duration]) -> (f64, f64) {
    (micros(percentile(samples, 0.50)), micros(percentile(samples, 0.99)))
}
