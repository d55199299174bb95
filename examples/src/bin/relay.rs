//! A relay service, the shape of an outbox relay or a CQRS projector: `forward` (a processor)
//! moves events from `relay.in` to `relay.out`, and `record` (a sink in group `recorder`)
//! appends the id of every event it sees to a file. It is the service the crash runner
//! (`examples/tests/crash.rs`) kills and restarts to prove nothing is lost.
//!
//! - `cargo run -p bindery-examples --bin relay` runs a short demo on the memory binder:
//!   publishes 1,000 events, waits until all were recorded, and exits 0.
//! - `cargo run -p bindery-examples --bin relay -- --serve` runs as a service until SIGINT or
//!   SIGTERM, on the binder its config and environment choose: `examples/relay.toml`, then
//!   `BINDERY_…` variables (`BINDERY_DEFAULT_BINDER=rabbit`,
//!   `BINDERY_BINDINGS__RELAY_IN__DESTINATION=…`). `RELAY_RECORD` names the file of recorded
//!   ids (default `relay-record.txt`).
//!
//! An event with `"poison": true` is rejected by `forward` on every attempt and ends in the
//! dead-letter destination; a payload that is not an event goes there without a retry.

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use bindery::prelude::*;
use bindery_examples::{Counter, registered};

// Link every binder the service may run on; config picks one.
use bindery_kafka as _;
use bindery_memory as _;
use bindery_rabbit as _;

/// What flows through the relay.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Event {
    id: u64,
    #[serde(default)]
    poison: bool,
    #[serde(default)]
    body: String,
}

/// Where `record` appends ids: one line per delivery, written before the delivery is acknowledged.
static RECORD: Mutex<Option<std::fs::File>> = Mutex::new(None);
static RECORDED: Counter = Counter::new();

/// Moves an event on, or rejects a poisoned one.
#[bindery::processor(input = "relay-in", output = "relay-out")]
async fn forward(event: Event) -> Result<Event, HandlerError> {
    if event.poison {
        return Err(HandlerError::new(format!("event {} is poisoned", event.id)));
    }
    Ok(event)
}

/// Records the event's id. A failed write fails the delivery, so it is retried, never lost.
#[bindery::sink(input = "record-in", group = "recorder")]
async fn record(event: Event) -> Result<(), HandlerError> {
    let line = format!("{}\n", event.id);
    {
        let mut file = RECORD.lock().map_err(|_| HandlerError::new("record file lock poisoned"))?;
        if let Some(f) = file.as_mut() {
            f.write_all(line.as_bytes()).map_err(|e| HandlerError::new(format!("cannot record: {e}")))?;
        }
    }
    let work = SINK_WORK.load(std::sync::atomic::Ordering::Relaxed);
    if work > 0 {
        // A deliberately slow sink (RELAY_SINK_WORK_US): busy for that long per event.
        let until = std::time::Instant::now() + Duration::from_micros(work);
        while std::time::Instant::now() < until {
            std::hint::spin_loop();
        }
    }
    RECORDED.add(1);
    Ok(())
}

static SINK_WORK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn env_number(name: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(name) {
        Ok(v) => v.parse().map_err(|e| anyhow::anyhow!("{name}={v:?} is not a number: {e}")),
        Err(_) => Ok(default),
    }
}

/// The process's peak resident set (VmHWM) in KiB, where the platform reports it.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn config_path() -> String {
    std::env::var("RELAY_CONFIG").unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/relay.toml").to_string())
}

async fn app() -> anyhow::Result<bindery::App> {
    Ok(bindery::App::builder()
        .config_file(config_path())
        .registered_handlers(false)
        .handler(registered("record")?)
        .handler(registered("forward")?)
        .build()?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bindery_examples::init_logging();
    let serve = std::env::args().any(|a| a == "--serve");
    let path = std::env::var("RELAY_RECORD").unwrap_or_else(|_| "relay-record.txt".to_string());
    if serve {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        *RECORD.lock().map_err(|_| anyhow::anyhow!("record lock poisoned"))? = Some(file);
        let app = app().await?;
        let binder = app.config().default_binder().to_string();
        let running = app.start().await?;
        // Bindings are up: a supervisor (or the crash runner) may start feeding.
        eprintln!("relay: ready on binder `{binder}`, recording to {path}");
        return Ok(running.run_until_signal().await?);
    }

    // The demo: the same handlers on the memory binder, fed by this process as fast as it can.
    // RELAY_EVENTS (default 1,000) and RELAY_SINK_WORK_US (default 0) make it the backpressure
    // run: a sink slower than the feeder, with memory bounded by the binder's queue capacity.
    let events = env_number("RELAY_EVENTS", 1_000)?;
    SINK_WORK.store(env_number("RELAY_SINK_WORK_US", 0)?, std::sync::atomic::Ordering::Relaxed);
    let started = std::time::Instant::now();
    let app = app().await?.start().await?;
    let input = app.source::<Event>("relay-feed")?;
    // Pipelined: up to 1,024 sends wait for their broker confirmations at once.
    let mut pending = std::collections::VecDeque::new();
    for id in 0..events {
        pending.push_back(input.dispatch(Message::new(Event { id, poison: false, body: "x".repeat(64) })).await?);
        if pending.len() >= 1024 {
            if let Some(confirmation) = pending.pop_front() {
                confirmation.await?;
            }
        }
    }
    for confirmation in pending {
        confirmation.await?;
    }
    RECORDED.wait_for(events as usize, Duration::from_secs(600)).await?;
    app.shutdown().await?;
    println!("relay: {events} events forwarded and recorded in {:?}", started.elapsed());
    if let Some(kib) = peak_rss_kib() {
        println!("relay: peak RSS {kib} KiB");
    }
    Ok(())
}
