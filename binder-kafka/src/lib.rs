//! # bindery-kafka
//!
//! The Kafka binder for bindery (binder type `kafka`, on `rdkafka`/librdkafka).
//!
//! Name the crate once so it links, and point a binder at your brokers:
//!
//! ```no_run
//! use bindery::prelude::*;
//! use bindery_kafka as _; // links the `kafka` binder type
//!
//! #[derive(Serialize, Deserialize)]
//! struct Order { id: u64, cents: u64 }
//!
//! #[bindery::sink(input = "orders", group = "billing")]
//! async fn bill(order: Order) {
//!     println!("order {} for {} cents", order.id, order.cents);
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> bindery::Result<()> {
//! // bindery.toml:  default-binder = "kafka"   (the one line that moves an app to Kafka)
//! let config = bindery::Config::from_toml_str(r#"
//! default-binder = "main"
//! [binders.main]
//! type = "kafka"
//! brokers = "127.0.0.1:9092"
//! "#)?;
//! bindery::App::builder().config(config).build()?.run().await
//! # }
//! ```
//!
//! What the binder does (the crate README has the details):
//! - destination = topic, created on bind when missing (`partition-count`, `replication-factor`);
//! - group = `group.id`; no group = a fresh `anonymous.<uuid>` group assigned every partition
//!   from the end of the log (`start-offset = "earliest"` reads it all);
//! - the `key` header is the record key, placed by `murmur2_random` like Java clients;
//! - offsets are committed only up to the first unfinished record of each partition;
//! - dead letters go to `error.<destination>.<group>` with `kafka_dlt-original-topic`,
//!   `-partition` and `-offset` headers;
//! - a record with a null value (tombstone) arrives as JSON `null` with header
//!   `kafka_tombstone: true`, so an `Option<T>` argument gets `None`; a keyed output whose
//!   payload is `null` (for example `Message::new(None::<T>).with_key(k)`) is sent as one.

mod admin;
mod binder;
mod config;
mod consumer;
mod context;
mod hash;
mod ledger;
pub mod naming;
mod offsets;
mod producer;

pub use binder::KafkaBinder;
pub use config::{ConfigValue, KafkaBindingOptions, KafkaOptions, is_secret_key};
