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

/// A benchmark's rounds, each running raw and bindery back to back. The report's rates are each
/// side's best round; every round's own ratio goes into the report too, because on a shared
/// machine the two bests can come from rounds the machine ran at different speeds, and the
/// spread of the per-round ratios shows how far one run's ratio can be trusted.
#[derive(Debug, Default)]
pub(crate) struct Rounds(Vec<(f64, f64)>);

impl Rounds {
    /// One round's rates: raw, then bindery.
    pub(crate) fn push(&mut self, raw: f64, bindery: f64) {
        self.0.push((raw, bindery));
    }

    /// Each side's best rate (raw, bindery).
    pub(crate) fn best(&self) -> (f64, f64) {
        self.0.iter().fold((0.0, 0.0), |(r, b), (rr, bb)| (f64::max(r, *rr), f64::max(b, *bb)))
    }

    /// Every round's ratio, bindery over raw, in round order.
    pub(crate) fn ratios(&self) -> Vec<f64> {
        self.0.iter().map(|(r, b)| b / r).collect()
    }

    /// Every round's bindery rate, in round order.
    #[allow(dead_code, reason = "only the memory bench states a target in msg/s")]
    pub(crate) fn bindery_rates(&self) -> Vec<f64> {
        self.0.iter().map(|(_, b)| *b).collect()
    }

    /// Every round's ratio to two places, for a bench's own output.
    #[allow(dead_code, reason = "the RabbitMQ bench prints its rounds' rates instead")]
    pub(crate) fn shown(&self) -> String {
        self.ratios().iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(" ")
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
