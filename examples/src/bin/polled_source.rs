//! A polled source: `tick` is called every 200ms and its result published; `log_tick` consumes
//! the ticks. The source returns `Option`: `None` publishes nothing, which is how it stops
//! after five ticks.
//!
//! Both handlers keep Spring's default binding names (`tick-out-0`, `log_tick-in-0`); the
//! config points both at one destination.
//!
//! `cargo run -p bindery-examples --bin polled_source`

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bindery::prelude::*;
use bindery_examples::{Counter, registered};

use bindery_memory as _;

const CONFIG: &str = r#"
[bindings.tick-out-0]
destination = "ticks"

[bindings.log_tick-in-0]
destination = "ticks"
group = "log"
"#;

const TICKS: u64 = 5;

#[derive(Debug, Serialize, Deserialize)]
struct Tick {
    seq: u64,
}

static LOGGED: Counter = Counter::new();

/// Publishes `Tick { seq }` every 200ms, five times.
#[bindery::source(interval = "200ms")]
async fn tick() -> Option<Tick> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::SeqCst) + 1;
    (seq <= TICKS).then(|| {
        println!("tick:     published tick {seq}");
        Tick { seq }
    })
}

/// Logs every tick.
#[bindery::sink]
async fn log_tick(tick: Message<Tick>) {
    let at = tick.headers().timestamp().unwrap_or_default();
    println!("log_tick: received tick {} (timestamp {at})", tick.payload().seq);
    LOGGED.add(1);
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bindery_examples::init_logging();
    let app = App::builder()
        .config(bindery::Config::from_toml_str(CONFIG)?)
        .registered_handlers(false)
        .handler(registered("log_tick")?) // the consumer first: its group exists before the first tick
        .handler(registered("tick")?)
        .build()?
        .start()
        .await?;

    LOGGED.wait_for(TICKS as usize, Duration::from_secs(10)).await?;
    app.shutdown().await?;
    println!("polled_source: {TICKS} ticks published and consumed");
    Ok(())
}
