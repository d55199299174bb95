//! Runnable bindery services: `cargo run -p bindery-examples --bin <name>`.
//!
//! | binary | shows |
//! |---|---|
//! | `quickstart` | a processor and a sink from [`billing`], configured by `examples/bindery.toml` |
//! | `retry_dead_letter` | retries with backoff, then a dead letter and its headers |
//! | `partitioned` | a partition key from a JSON pointer; `concurrency = 4` keeps per-key order |
//! | `routing` | a sink choosing each message's destination with `Context::send` |
//! | `polled_source` | a `#[bindery::source]` on an interval, feeding a sink |
//! | `custom_codec` | a [`bindery::codec::Codec`] for `text/csv` |
//! | `relay` | a long-running service (`--serve`) on any binder; the process the crash runner kills |
//!
//! `tests/billing.rs` unit-tests the [`billing`] handlers on `bindery_memory::TestApp`.
//!
//! # Which handlers each binary runs
//!
//! `#[bindery::processor]`, `#[bindery::sink]` and `#[bindery::source]` register a handler for
//! the whole program, and [`App::from_config`](bindery::App::from_config) runs every handler the
//! program links. This library is linked into every binary of the crate, so it holds only the
//! quick start's handlers ([`billing`]): the quick start and the tests run "every registered
//! handler" and get exactly those. Each other example defines its handlers in its own binary
//! and starts just them:
//!
//! ```no_run
//! # async fn run(config: bindery::Config) -> anyhow::Result<()> {
//! let app = bindery::App::builder()
//!     .config(config)
//!     .registered_handlers(false) // not `billing`'s handlers, linked from this library
//!     .handler(bindery_examples::registered("charge")?)
//!     .build()?;
//! # Ok(()) }
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

pub mod billing;

/// Initialises logging from `RUST_LOG` (default `warn`), for the example binaries.
///
/// ```
/// bindery_examples::init_logging();
/// bindery_examples::init_logging(); // a second call keeps the first subscriber
/// ```
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
}

/// The handler that `#[bindery::processor]`, `#[bindery::sink]` or `#[bindery::source]`
/// registered for the function `name`, to add with
/// [`AppBuilder::handler`](bindery::AppBuilder::handler).
///
/// ```
/// assert!(bindery_examples::registered("no_such_handler").is_err());
/// assert_eq!(bindery_examples::registered("bill").unwrap().input_binding(), Some("orders"));
/// ```
pub fn registered(name: &str) -> anyhow::Result<bindery::Handler> {
    bindery::handler::registered().into_iter().find(|h| h.name() == name).ok_or_else(|| {
        anyhow::anyhow!("no handler named `{name}` is registered; is its attributed function in this binary?")
    })
}

/// Counts what handlers did, so an example can wait for it and exit (no sleeps).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> anyhow::Result<()> {
/// static DONE: bindery_examples::Counter = bindery_examples::Counter::new();
/// tokio::spawn(async { DONE.add(1) });
/// DONE.wait_for(1, std::time::Duration::from_secs(5)).await?;
/// assert_eq!(DONE.get(), 1);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Counter {
    count: AtomicUsize,
    changed: Notify,
}

impl Default for Counter {
    fn default() -> Self {
        Self::new()
    }
}

impl Counter {
    /// A counter at zero; usable in a `static`.
    ///
    /// ```
    /// static HANDLED: bindery_examples::Counter = bindery_examples::Counter::new();
    /// assert_eq!(HANDLED.get(), 0);
    /// ```
    pub const fn new() -> Self {
        Self { count: AtomicUsize::new(0), changed: Notify::const_new() }
    }

    /// Adds `n` and wakes waiters; returns the new count.
    ///
    /// ```
    /// let c = bindery_examples::Counter::new();
    /// assert_eq!(c.add(2), 2);
    /// assert_eq!(c.add(3), 5);
    /// ```
    pub fn add(&self, n: usize) -> usize {
        let now = self.count.fetch_add(n, Ordering::SeqCst) + n;
        self.changed.notify_waiters();
        now
    }

    /// The current count.
    ///
    /// ```
    /// let c = bindery_examples::Counter::default();
    /// c.add(1);
    /// assert_eq!(c.get(), 1);
    /// ```
    pub fn get(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Waits until the count reaches `n`; an error after `timeout`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// let c = bindery_examples::Counter::new();
    /// assert!(c.wait_for(1, Duration::from_millis(10)).await.is_err()); // nothing counted yet
    /// c.add(1);
    /// assert!(c.wait_for(1, Duration::from_millis(10)).await.is_ok());
    /// # }
    /// ```
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> anyhow::Result<()> {
        let reached = async {
            loop {
                let changed = self.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable(); // registered before the check: no lost wake-up
                if self.get() >= n {
                    return;
                }
                changed.await;
            }
        };
        tokio::time::timeout(timeout, reached)
            .await
            .map_err(|_| anyhow::anyhow!("waited {timeout:?} for {n} events, saw {}", self.get()))
    }
}
