//! # bindery
//!
//! Spring Cloud Stream's programming model for Rust. Write plain async functions, mark them
//! [`processor`], [`sink`] or [`source`], and a config file decides whether they run on Kafka,
//! RabbitMQ or in memory.
//!
//! ```
//! use bindery::prelude::*;
//!
//! #[derive(Serialize, Deserialize)]
//! struct Order { id: u64, cents: u64 }
//! #[derive(Serialize, Deserialize)]
//! struct Invoice { order: u64, cents: u64 }
//!
//! #[bindery::processor(input = "orders", output = "invoices")]
//! async fn bill(order: Order) -> Result<Invoice, HandlerError> {
//!     Ok(Invoice { order: order.id, cents: order.cents })
//! }
//! # fn main() {}
//! ```
//!
//! The crate is organised as the contract describes it:
//! [`Message`] and [`Headers`] carry data, [`codec`] turns payloads into bytes, [`Binder`]
//! connects bindings to a broker, [`Config`] reads `bindery.toml`, and [`App`] runs it all.

#![forbid(unsafe_code)]

pub mod binder;
pub mod codec;
mod config;
mod error;
pub mod handler;
pub mod headers;
mod message;
mod partition;
mod pipeline;
mod runtime;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use binder::{Binder, Health};
pub use config::{BinderSettings, BindingConfig, Config, ConsumerConfig, ProducerConfig, StartOffset};
pub use error::{BoxError, Error, ErrorKind, HandlerError, Result};
pub use handler::{Context, Failure, Handler};
pub use headers::{HeaderValue, Headers, new_message_id};
pub use message::{Message, RawMessage};
pub use runtime::{App, AppBuilder, RunningApp, Source};

pub use bindery_macros::{processor, sink, source};

/// Byte buffers, re-exported so handlers can take `bindery::Bytes` without another dependency.
pub use bytes::Bytes;

/// What most handler modules need: `use bindery::prelude::*;`.
///
/// ```
/// use bindery::prelude::*;
/// let m: Message<u8> = Message::new(1);
/// assert_eq!(*m.payload(), 1);
/// ```
pub mod prelude {
    pub use crate::{App, Bytes, Context, HandlerError, Headers, Message};
    pub use serde::{Deserialize, Serialize};
}

/// Not public API: what the attribute macros' generated code calls. May change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::handler::{HandlerFn, HandlerKind, Invocation, Outputs, Registration, failure, handler_fn};
    pub use crate::{Failure, Message};
    pub use inventory;
}
