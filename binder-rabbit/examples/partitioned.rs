//! Partitioned routing on RabbitMQ, as Spring Cloud Stream does it: the producer picks
//! partition `abs(key.hashCode()) % 2` and publishes with routing key `sensors-<n>`; two
//! consumer instances (`instance-index` 0 and 1 of `instance-count = 2`) each consume their own
//! queue, `sensors.dashboard-0` / `sensors.dashboard-1`, bound with `sensors-0` / `sensors-1`.
//!
//! `scripts/rabbitmq start`, then `cargo run -p bindery-rabbit --example partitioned`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bindery::prelude::*;
use bindery::{Context, Handler, HandlerError, RunningApp};
use bindery_rabbit::{RabbitBinder, RabbitOptions, naming};

#[derive(Debug, Serialize, Deserialize)]
struct Reading {
    sensor: String,
    celsius: f64,
}

const SENSORS: [&str; 6] = ["boiler", "attic", "cellar", "garage", "kitchen", "porch"];

fn uri() -> String {
    std::env::var("RABBIT_URI").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

type Seen = Arc<Mutex<BTreeMap<u32, BTreeSet<String>>>>;

async fn instance(index: u32, seen: Seen, done: Arc<tokio::sync::Notify>) -> anyhow::Result<RunningApp> {
    let config = format!(
        "instance-index = {index}\ninstance-count = 2\n\
         [bindings.readings]\ndestination = \"sensors\"\ngroup = \"dashboard\"\n"
    );
    let sink = Handler::sink("dashboard", move |m: Message<Reading>, _ctx: Context| {
        let (seen, done) = (seen.clone(), done.clone());
        async move {
            if let Ok(mut s) = seen.lock() {
                s.entry(index).or_default().insert(m.into_payload().sensor);
            }
            done.notify_waiters();
            Ok::<_, HandlerError>(())
        }
    })
    .input("readings");
    Ok(App::builder()
        .registered_handlers(false)
        .binder("rabbit", Arc::new(RabbitBinder::new(RabbitOptions::new(uri()))?))
        .override_binder("rabbit")
        .config(bindery::Config::from_toml_str(&config)?)
        .handler(sink)
        .build()?
        .start()
        .await?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seen: Seen = Arc::default();
    let done = Arc::new(tokio::sync::Notify::new());
    let first = instance(0, seen.clone(), done.clone()).await?;
    let second = instance(1, seen.clone(), done.clone()).await?;

    let producer = App::builder()
        .registered_handlers(false)
        .binder("rabbit", Arc::new(RabbitBinder::new(RabbitOptions::new(uri()))?))
        .override_binder("rabbit")
        .config(bindery::Config::from_toml_str(
            "[bindings.out]\ndestination = \"sensors\"\n[bindings.out.producer]\npartition-key = \"/sensor\"\npartition-count = 2\n",
        )?)
        .build()?
        .start()
        .await?;
    let out = producer.source::<Reading>("out")?;
    for sensor in SENSORS {
        out.send(Reading { sensor: sensor.into(), celsius: 21.5 }).await?;
    }

    let all = |s: &BTreeMap<u32, BTreeSet<String>>| s.values().map(BTreeSet::len).sum::<usize>() >= SENSORS.len();
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let notified = done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if seen.lock().map(|s| all(&s)).unwrap_or(false) {
                return;
            }
            notified.await;
        }
    })
    .await;
    producer.shutdown().await?;
    first.shutdown().await?;
    second.shutdown().await?;
    if waited.is_err() {
        anyhow::bail!("not every reading arrived within 10s: {seen:?}");
    }

    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    for (index, sensors) in &seen {
        println!("partitioned: instance {index} (queue sensors.dashboard-{index}) got {sensors:?}");
        for s in sensors {
            let expected = naming::select_partition(s, 2);
            anyhow::ensure!(expected == *index, "{s} belongs to partition {expected}, got it on instance {index}");
        }
    }
    println!("partitioned: every sensor went to the instance Spring's partition selector picks");
    Ok(())
}
