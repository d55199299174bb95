//! Partitioning: a key taken from the payload by a JSON pointer, and `concurrency = 4`.
//!
//! Readings from six sensors are keyed by `/sensor`. `record` handles up to four at once, but
//! the readings of one sensor never run in parallel or out of order: messages with the same
//! key go to the same partition and the same worker.
//!
//! `cargo run -p bindery-examples --bin partitioned`

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bindery::prelude::*;
use bindery_examples::{Counter, registered};

use bindery_memory as _;

const CONFIG: &str = r#"
[bindings.readings-out]           # what main publishes to
destination = "readings"
[bindings.readings-out.producer]
partition-key = "/sensor"         # a JSON pointer into the payload (or "header:<name>")
partition-count = 4

[bindings.readings-in]            # what `record` consumes
destination = "readings"
group = "dashboard"
[bindings.readings-in.consumer]
concurrency = 4                   # in parallel, but in order per key
"#;

const SENSORS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];
const PER_SENSOR: u64 = 5;

#[derive(Debug, Serialize, Deserialize)]
struct Reading {
    sensor: String,
    seq: u64,
    celsius: f64,
}

static HANDLED: Mutex<Vec<(String, u64)>> = Mutex::new(Vec::new());
static DONE: Counter = Counter::new();
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static MOST_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Stores a reading; slower for some sensors, so sensors overtake each other.
#[bindery::sink(input = "readings-in")]
async fn record(msg: Message<Reading>) {
    let now = IN_FLIGHT.fetch_add(1, Ordering::SeqCst) + 1;
    MOST_IN_FLIGHT.fetch_max(now, Ordering::SeqCst);
    assert_eq!(msg.headers().key(), Some(msg.payload().sensor.as_bytes())); // set from /sensor
    let reading = msg.into_payload();
    let work = 2 + 3 * (reading.sensor.as_bytes()[0] - b'a') as u64; // simulated work: 2..17ms
    tokio::time::sleep(Duration::from_millis(work)).await;
    HANDLED.lock().unwrap_or_else(|p| p.into_inner()).push((reading.sensor, reading.seq));
    IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    DONE.add(1);
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bindery_examples::init_logging();
    let app = App::builder()
        .config(bindery::Config::from_toml_str(CONFIG)?)
        .registered_handlers(false)
        .handler(registered("record")?)
        .build()?
        .start()
        .await?;

    let readings = app.source::<Reading>("readings-out")?;
    for seq in 1..=PER_SENSOR {
        for sensor in SENSORS {
            readings.send(Reading { sensor: sensor.into(), seq, celsius: 20.0 + seq as f64 / 10.0 }).await?;
        }
    }
    println!("partitioned: published {PER_SENSOR} readings for each of sensors {}", SENSORS.join(", "));

    DONE.wait_for(SENSORS.len() * PER_SENSOR as usize, Duration::from_secs(10)).await?;
    app.shutdown().await?;

    let handled = std::mem::take(&mut *HANDLED.lock().unwrap_or_else(|p| p.into_inner()));
    let order: Vec<String> = handled.iter().map(|(s, n)| format!("{s}{n}")).collect();
    println!("partitioned: handled in this order: {}", order.join(" "));
    println!("partitioned: at most {} readings handled at once", MOST_IN_FLIGHT.load(Ordering::SeqCst));
    let mut per_sensor: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (sensor, seq) in handled {
        per_sensor.entry(sensor).or_default().push(seq);
    }
    for (sensor, seqs) in &per_sensor {
        anyhow::ensure!(seqs.is_sorted(), "sensor {sensor} out of order: {seqs:?}");
        println!("partitioned: sensor {sensor}: {seqs:?} (in order)");
    }
    Ok(())
}
