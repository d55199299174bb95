//! A custom codec: payloads as `text/csv`, registered with `AppBuilder::codec`.
//!
//! A codec converts between wire bytes and a `serde_json::Value`; bindery maps that value to
//! and from your types with serde. Bindings choose the content type of what they publish
//! with `content-type`; consumers decode by each message's `contentType` header. Without the
//! codec, publishing fails ("no codec for content type `text/csv`") and consumers treat
//! `text/csv` input as a decode failure: no retry, straight to the dead letter.
//!
//! `cargo run -p bindery-examples --bin custom_codec`

use std::time::Duration;

use bindery::BoxError;
use bindery::codec::Codec;
use bindery::prelude::*;
use bindery_examples::{Counter, registered};
use serde_json::{Map, Value};

use bindery_memory as _;

const CONFIG: &str = r#"
[bindings.orders-out]             # what main publishes to
destination = "orders"
content-type = "text/csv"

[bindings.totals]                 # what `total` publishes
content-type = "text/csv"

[bindings.totals-in]              # what `show` consumes
destination = "totals"
"#;

/// `text/csv` with one record per message: a header line, then a value line. Plain values
/// only: no quoting, so no commas or line breaks inside a value.
struct Csv;

impl Codec for Csv {
    fn content_type(&self) -> &str {
        "text/csv"
    }

    fn decode(&self, bytes: &[u8]) -> Result<Value, BoxError> {
        let mut lines = std::str::from_utf8(bytes)?.lines();
        let (Some(header), Some(record)) = (lines.next(), lines.next()) else {
            return Err("expected a header line and a record line".into());
        };
        let (names, cells): (Vec<&str>, Vec<&str>) = (header.split(',').collect(), record.split(',').collect());
        if names.len() != cells.len() {
            return Err(format!("{} columns in the header, {} in the record", names.len(), cells.len()).into());
        }
        // Cells that read as numbers become JSON numbers, so they fill numeric fields (a
        // shortcut: a real CSV codec would know each column's type).
        let cell = |c: &str| c.parse::<u64>().map(Value::from).or_else(|_| c.parse::<f64>().map(Value::from));
        Ok(names.iter().zip(cells).map(|(n, c)| (n.to_string(), cell(c).unwrap_or_else(|_| c.into()))).collect())
    }

    fn encode(&self, value: &Value) -> Result<bindery::Bytes, BoxError> {
        let record: &Map<String, Value> = value.as_object().ok_or("text/csv payloads are records")?;
        let mut cells = Vec::with_capacity(record.len());
        for (name, v) in record {
            let cell = match v {
                Value::String(s) if !s.contains([',', '\n', '\r']) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return Err(format!("field `{name}` is not a plain value").into()),
            };
            cells.push(cell);
        }
        let header: Vec<&str> = record.keys().map(String::as_str).collect();
        Ok(format!("{}\n{}", header.join(","), cells.join(",")).into())
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Order {
    id: u64,
    customer: String,
    cents: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Total {
    order: u64,
    cents: u64,
}

static SHOWN: Counter = Counter::new();

/// Adds tax; the order arrives as CSV, the total leaves as CSV.
#[bindery::processor(input = "orders", output = "totals")]
async fn total(msg: Message<Order>) -> Total {
    println!("total: decoded {} payload into {:?}", msg.headers().content_type().unwrap_or("-"), msg.payload());
    let order = msg.into_payload();
    Total { order: order.id, cents: order.cents * 120 / 100 }
}

/// Prints the totals as they are on the wire.
#[bindery::sink(input = "totals-in")]
async fn show(msg: Message<Bytes>) {
    let content_type = msg.headers().content_type().unwrap_or("-");
    println!("show:  {content_type} payload {:?}", String::from_utf8_lossy(msg.payload()));
    SHOWN.add(1);
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bindery_examples::init_logging();
    let app = App::builder()
        .config(bindery::Config::from_toml_str(CONFIG)?)
        .codec(Csv)
        .registered_handlers(false)
        .handler(registered("total")?)
        .handler(registered("show")?)
        .build()?
        .start()
        .await?;

    let orders = app.source::<Order>("orders-out")?;
    for (id, customer) in [(1, "acme"), (2, "globex")] {
        orders.send(Order { id, customer: customer.into(), cents: 1_000 * id }).await?;
    }

    SHOWN.wait_for(2, Duration::from_secs(10)).await?;
    app.shutdown().await?;
    println!("custom_codec: 2 orders read and 2 totals written as text/csv");
    Ok(())
}
