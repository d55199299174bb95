//! Backpressure and memory: the relay service's demo mode feeds events as fast as it can into a
//! sink made slower than the feeder (`RELAY_SINK_WORK_US`), once with a small and once with a
//! ten times larger batch. The backlog waits in bounded queues (the feeder is held back), so the
//! peak resident set of the larger run must not grow with the backlog.
//!
//! Sizes: `BACKPRESSURE_SMALL` / `BACKPRESSURE_LARGE` (defaults 10,000 / 100,000 in the test
//! command; `scripts/prove` runs 100,000 / 1,000,000 in release mode).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn size(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Runs the demo with `events` events; returns (peak RSS in KiB, the run's report line).
fn run(events: u64) -> (u64, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_relay"))
        .env("RELAY_EVENTS", events.to_string())
        .env("RELAY_SINK_WORK_US", "20")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "relay demo failed: {}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let rss = stdout
        .lines()
        .find_map(|l| l.strip_prefix("relay: peak RSS ")?.strip_suffix(" KiB")?.parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in the relay's output:\n{stdout}"));
    let line = stdout.lines().find(|l| l.contains("forwarded and recorded")).unwrap_or_default().to_string();
    (rss, line)
}

#[test]
fn peak_memory_does_not_grow_with_the_backlog() {
    let small = size("BACKPRESSURE_SMALL", 10_000);
    let large = size("BACKPRESSURE_LARGE", 100_000);
    let (small_rss, small_line) = run(small);
    let (large_rss, large_line) = run(large);
    println!("backpressure: {small_line}; peak RSS {small_rss} KiB");
    println!("backpressure: {large_line}; peak RSS {large_rss} KiB");
    println!(
        "backpressure: peak RSS ratio {:.2} for {}x the events",
        large_rss as f64 / small_rss as f64,
        large / small
    );
    // Unbounded buffering of the extra events (≥ 100 B each in flight) would add far more than
    // this allowance; allocator noise and thread stacks stay well inside it.
    let allowance = small_rss / 4 + 4 * 1024;
    assert!(
        large_rss <= small_rss + allowance,
        "peak RSS grew with the backlog: {small_rss} KiB for {small} events, {large_rss} KiB for {large}"
    );
}
