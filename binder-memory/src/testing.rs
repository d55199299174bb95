//! [`TestApp`]: run handlers on a private memory broker and talk to their destinations.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bindery::{App, AppBuilder, Error, ErrorKind, Handler, Message, RawMessage, Result, RunningApp};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::binder::MemoryBinder;
use crate::broker::MemoryBroker;
use crate::naming;

const BINDER: &str = "memory";

/// Every registered handler (or those you choose) on a private, recording memory broker.
///
/// Inputs and outputs are addressed by destination name. The broker records every destination
/// from the start, so [`output`](TestApp::output) also sees messages produced before it was
/// called. Successive `recv` calls on one destination return successive messages.
///
/// See the crate documentation for a complete test. This one checks an output and a dead
/// letter:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> bindery::Result<()> {
/// use bindery::prelude::*;
/// let charge = bindery::Handler::processor("charge", |m: Message<u64>, _ctx: Context| async move {
///     if *m.payload() == 0 {
///         return Err(HandlerError::new("nothing to charge"));
///     }
///     Ok(vec![m.map(|cents| cents * 2)])
/// })
/// .input("charges")
/// .output("charged")
/// .group("billing");
/// let app = bindery_memory::TestApp::builder()
///     .registered_handlers(false)
///     .handler(charge)
///     .config_toml("[bindings.charges.consumer]\nmax-attempts = 1")
///     .start()
///     .await?;
/// app.input("charges").send_json(&21).await?;
/// assert_eq!(app.output("charged").recv_json::<u64>().await?, 42);
/// app.input("charges").send_json(&0).await?;
/// let dead = app.output("charges.billing.dlq").recv().await?; // waits for the dead letter
/// assert_eq!(dead.headers().get_str("x-exception-message"), Some("nothing to charge"));
/// assert_eq!(app.dead_letters("charges", "billing").len(), 1);
/// app.shutdown().await
/// # }
/// ```
pub struct TestApp {
    running: Option<RunningApp>,
    broker: Arc<MemoryBroker>,
    cursors: Arc<Mutex<HashMap<String, usize>>>,
    timeout: Duration,
}

impl std::fmt::Debug for TestApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApp").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

/// Configures a [`TestApp`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> bindery::Result<()> {
/// use bindery::prelude::*;
/// let echo = bindery::Handler::processor("echo", |m: Message<String>, _ctx: Context| async move {
///     Ok::<_, HandlerError>(vec![m])
/// }).input("in").output("out");
/// let app = bindery_memory::TestApp::builder()
///     .registered_handlers(false)
///     .handler(echo)
///     .config_toml("[bindings.out]\ndestination = \"echoes\"")
///     .start()
///     .await?;
/// app.input("in").send_json(&"hello").await?;
/// assert_eq!(app.output("echoes").recv_json::<String>().await?, "hello");
/// app.shutdown().await
/// # }
/// ```
#[derive(Default)]
pub struct TestAppBuilder {
    config_file: Option<PathBuf>,
    config_toml: Option<String>,
    handlers: Vec<Handler>,
    skip_registered: bool,
    timeout: Option<Duration>,
}

impl std::fmt::Debug for TestAppBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestAppBuilder").field("handlers", &self.handlers.len()).finish_non_exhaustive()
    }
}

impl TestAppBuilder {
    /// Reads binding settings from a config file (binders are replaced by memory).
    /// ```
    /// # use bindery::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> bindery::Result<()> {
    /// let echo = bindery::Handler::processor("echo", |m: Message<String>, _c: Context| async move {
    ///     Ok::<_, HandlerError>(vec![m])
    /// }).input("in").output("out");
    /// let app = bindery_memory::TestApp::builder().registered_handlers(false).handler(echo)
    ///     .config_file("/no/such/file.toml").start().await;
    /// assert!(app.unwrap_err().is_config());
    /// Ok(())
    /// # }
    /// ```
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config_file = Some(path.into());
        self
    }

    /// Reads binding settings from TOML text.
    /// ```
    /// # use bindery::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> bindery::Result<()> {
    /// let echo = bindery::Handler::processor("echo", |m: Message<String>, _c: Context| async move {
    ///     Ok::<_, HandlerError>(vec![m])
    /// }).input("in").output("out");
    /// let app = bindery_memory::TestApp::builder().registered_handlers(false).handler(echo)
    ///     .config_toml("[bindings.out]\ndestination = \"echoed\"").start().await?;
    /// app.input("in").send_json(&"hi").await?;
    /// assert_eq!(app.output("echoed").recv_json::<String>().await?, "hi");
    /// app.shutdown().await
    /// # }
    /// ```
    pub fn config_toml(mut self, toml: &str) -> Self {
        self.config_toml = Some(toml.to_string());
        self
    }

    /// Adds a handler built in code.
    /// ```
    /// # use bindery::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> bindery::Result<()> {
    /// let echo = bindery::Handler::processor("echo", |m: Message<String>, _c: Context| async move {
    ///     Ok::<_, HandlerError>(vec![m])
    /// }).input("in").output("out");
    /// let app = bindery_memory::TestApp::builder().registered_handlers(false).handler(echo).start().await?;
    /// assert_eq!(app.app()?.health().is_up(), true);
    /// app.shutdown().await
    /// # }
    /// ```
    pub fn handler(mut self, handler: Handler) -> Self {
        self.handlers.push(handler);
        self
    }

    /// Whether to run the attribute-registered handlers too (default true).
    /// ```
    /// # use bindery::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> bindery::Result<()> {
    /// let echo = bindery::Handler::processor("echo", |m: Message<String>, _c: Context| async move {
    ///     Ok::<_, HandlerError>(vec![m])
    /// }).input("in").output("out");
    /// let app = bindery_memory::TestApp::builder().registered_handlers(false).handler(echo).start().await?;
    /// app.shutdown().await
    /// # }
    /// ```
    pub fn registered_handlers(mut self, yes: bool) -> Self {
        self.skip_registered = !yes;
        self
    }

    /// How long `recv` waits (default 5s).
    /// ```
    /// # use bindery::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> bindery::Result<()> {
    /// let echo = bindery::Handler::processor("echo", |m: Message<String>, _c: Context| async move {
    ///     Ok::<_, HandlerError>(vec![m])
    /// }).input("in").output("out");
    /// let app = bindery_memory::TestApp::builder().registered_handlers(false).handler(echo)
    ///     .recv_timeout(std::time::Duration::from_millis(50)).start().await?;
    /// assert!(app.output("out").recv().await.unwrap_err().is_timeout());
    /// app.shutdown().await
    /// # }
    /// ```
    pub fn recv_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Starts the app on a fresh memory broker.
    /// ```
    /// # use bindery::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> bindery::Result<()> {
    /// let echo = bindery::Handler::processor("echo", |m: Message<String>, _c: Context| async move {
    ///     Ok::<_, HandlerError>(vec![m])
    /// }).input("in").output("out");
    /// let app = bindery_memory::TestApp::builder().registered_handlers(false).handler(echo).start().await?;
    /// app.shutdown().await
    /// # }
    /// ```
    pub async fn start(self) -> Result<TestApp> {
        let broker = MemoryBroker::recording();
        let mut builder: AppBuilder = App::builder()
            .registered_handlers(!self.skip_registered)
            .binder(BINDER, Arc::new(MemoryBinder::new(broker.clone())))
            .override_binder(BINDER);
        let default_file = PathBuf::from("bindery.toml");
        if let Some(toml) = &self.config_toml {
            builder = builder.config(bindery::Config::from_toml_str(toml)?);
        } else if let Some(path) = self.config_file {
            builder = builder.config_file(path);
        } else if default_file.is_file() {
            builder = builder.config_file(default_file);
        }
        for h in self.handlers {
            builder = builder.handler(h);
        }
        let running = builder.build()?.start().await?;
        Ok(TestApp {
            running: Some(running),
            broker,
            cursors: Arc::new(Mutex::new(HashMap::new())),
            timeout: self.timeout.unwrap_or(Duration::from_secs(5)),
        })
    }
}

impl TestApp {
    /// Every registered handler on the memory binder, with `./bindery.toml` if there is one.
    /// ```
    /// # use bindery::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> bindery::Result<()> {
    /// let echo = bindery::Handler::processor("echo", |m: Message<String>, _c: Context| async move {
    ///     Ok::<_, HandlerError>(vec![m])
    /// }).input("in").output("out");
    /// # drop(echo);
    /// let app = bindery_memory::TestApp::start().await?; // every #[processor]/#[sink]/#[source] in the program
    /// app.shutdown().await
    /// # }
    /// ```
    pub async fn start() -> Result<TestApp> {
        TestAppBuilder::default().start().await
    }

    /// A builder for more control.
    /// ```
    /// # use bindery::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> bindery::Result<()> {
    /// let echo = bindery::Handler::processor("echo", |m: Message<String>, _c: Context| async move {
    ///     Ok::<_, HandlerError>(vec![m])
    /// }).input("in").output("out");
    /// let app = bindery_memory::TestApp::builder().registered_handlers(false).handler(echo).start().await?;
    /// app.shutdown().await
    /// # }
    /// ```
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder::default()
    }

    /// Publishes into `destination`.
    /// ```
    /// # use bindery::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> bindery::Result<()> {
    /// let echo = bindery::Handler::processor("echo", |m: Message<String>, _c: Context| async move {
    ///     Ok::<_, HandlerError>(vec![m])
    /// }).input("in").output("out");
    /// let app = bindery_memory::TestApp::builder().registered_handlers(false).handler(echo).start().await?;
    /// app.input("in").send_json(&"ping").await?;
    /// assert_eq!(app.output("in").recv_json::<String>().await?, "ping"); // inputs are recorded too
    /// app.shutdown().await
    /// # }
    /// ```
    pub fn input(&self, destination: &str) -> Input {
        Input { broker: self.broker.clone(), destination: destination.to_string() }
    }

    /// Reads what was published to `destination`.
    /// ```
    /// # use bindery::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> bindery::Result<()> {
    /// let echo = bindery::Handler::processor("echo", |m: Message<String>, _c: Context| async move {
    ///     Ok::<_, HandlerError>(vec![m])
    /// }).input("in").output("out");
    /// let app = bindery_memory::TestApp::builder().registered_handlers(false).handler(echo).start().await?;
    /// app.input("in").send_json(&"a").await?;
    /// app.input("in").send_json(&"b").await?;
    /// let out = app.output("out");
    /// assert_eq!(out.recv_json::<String>().await?, "a");
    /// assert_eq!(out.recv_json::<String>().await?, "b");
    /// app.shutdown().await
    /// # }
    /// ```
    pub fn output(&self, destination: &str) -> Output {
        Output {
            broker: self.broker.clone(),
            destination: destination.to_string(),
            cursors: self.cursors.clone(),
            timeout: self.timeout,
        }
    }

    /// The dead letters of `destination` consumed by `group`, with their headers.
    /// ```
    /// # use bindery::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> bindery::Result<()> {
    /// let echo = bindery::Handler::processor("echo", |m: Message<String>, _c: Context| async move {
    ///     Ok::<_, HandlerError>(vec![m])
    /// }).input("in").output("out");
    /// let app = bindery_memory::TestApp::builder().registered_handlers(false).handler(echo.group("g")).start().await?;
    /// app.input("in").send_raw(Message::new(bindery::Bytes::from_static(b"not json"))).await?;
    /// let dlq = app.output("in.g.dlq"); // dead letters are a destination like any other
    /// let dead = dlq.recv().await?;
    /// assert_eq!(dead.headers().get_str("x-exception-kind"), Some("decode"));
    /// assert_eq!(app.dead_letters("in", "g").len(), 1);
    /// app.shutdown().await
    /// # }
    /// ```
    pub fn dead_letters(&self, destination: &str, group: &str) -> Vec<RawMessage> {
        self.broker.history(&naming::dead_letter_topic(destination, group))
    }

    /// The broker, for fault injection and inspection.
    /// ```
    /// # use bindery::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> bindery::Result<()> {
    /// let echo = bindery::Handler::processor("echo", |m: Message<String>, _c: Context| async move {
    ///     Ok::<_, HandlerError>(vec![m])
    /// }).input("in").output("out");
    /// let app = bindery_memory::TestApp::builder().registered_handlers(false).handler(echo).start().await?;
    /// app.broker().faults().duplicate_next_deliveries(1);
    /// app.input("in").send_json(&"twice").await?;
    /// let out = app.output("out");
    /// assert_eq!(out.recv_json::<String>().await?, "twice");
    /// assert_eq!(out.recv_json::<String>().await?, "twice");
    /// app.shutdown().await
    /// # }
    /// ```
    pub fn broker(&self) -> &Arc<MemoryBroker> {
        &self.broker
    }

    /// The running app (health, imperative sources).
    /// ```
    /// # use bindery::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> bindery::Result<()> {
    /// let echo = bindery::Handler::processor("echo", |m: Message<String>, _c: Context| async move {
    ///     Ok::<_, HandlerError>(vec![m])
    /// }).input("in").output("out");
    /// let app = bindery_memory::TestApp::builder().registered_handlers(false).handler(echo).start().await?;
    /// app.app()?.source::<String>("in")?.send("via the app".into()).await?;
    /// assert_eq!(app.output("out").recv_json::<String>().await?, "via the app");
    /// app.shutdown().await
    /// # }
    /// ```
    pub fn app(&self) -> Result<&RunningApp> {
        self.running.as_ref().ok_or_else(|| Error::closed("test app already shut down"))
    }

    /// Graceful shutdown.
    /// ```
    /// # use bindery::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> bindery::Result<()> {
    /// let echo = bindery::Handler::processor("echo", |m: Message<String>, _c: Context| async move {
    ///     Ok::<_, HandlerError>(vec![m])
    /// }).input("in").output("out");
    /// let app = bindery_memory::TestApp::builder().registered_handlers(false).handler(echo).start().await?;
    /// app.shutdown().await
    /// # }
    /// ```
    pub async fn shutdown(mut self) -> Result<()> {
        match self.running.take() {
            Some(r) => r.shutdown().await,
            None => Ok(()),
        }
    }
}

/// Publishes test messages into one destination.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> bindery::Result<()> {
/// let app = bindery_memory::TestApp::builder().registered_handlers(false).start().await?;
/// let orders: bindery_memory::Input = app.input("orders");
/// orders.send_json(&serde_json::json!({"id": 1})).await?;
/// orders.send_message(bindery::Message::new(2).with_key("customer-7")).await?;
/// assert_eq!(app.output("orders").all().len(), 2); // the broker records every destination
/// app.shutdown().await
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Input {
    broker: Arc<MemoryBroker>,
    destination: String,
}

impl Input {
    /// Publishes `value` as JSON.
    /// ```
    /// # use bindery::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> bindery::Result<()> {
    /// let echo = bindery::Handler::processor("echo", |m: Message<String>, _c: Context| async move {
    ///     Ok::<_, HandlerError>(vec![m])
    /// }).input("in").output("out");
    /// let app = bindery_memory::TestApp::builder().registered_handlers(false).handler(echo).start().await?;
    /// app.input("in").send_json(&"x").await?;
    /// assert_eq!(app.output("out").recv_json::<String>().await?, "x");
    /// app.shutdown().await
    /// # }
    /// ```
    pub async fn send_json<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        let bytes =
            serde_json::to_vec(value).map_err(|e| Error::codec(format!("cannot encode test input as JSON: {e}")))?;
        self.send_raw(Message::new(bindery::Bytes::from(bytes)).with_content_type(bindery::codec::JSON)).await
    }

    /// Publishes a message with headers, its payload as JSON.
    /// ```
    /// # use bindery::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> bindery::Result<()> {
    /// let echo = bindery::Handler::processor("echo", |m: Message<String>, _c: Context| async move {
    ///     Ok::<_, HandlerError>(vec![m])
    /// }).input("in").output("out");
    /// let app = bindery_memory::TestApp::builder().registered_handlers(false).handler(echo).start().await?;
    /// app.input("in").send_message(Message::new("x").with_correlation_id("c-9")).await?;
    /// let m = app.output("out").recv_message::<String>().await?;
    /// assert_eq!(m.headers().correlation_id(), Some("c-9"));
    /// app.shutdown().await
    /// # }
    /// ```
    pub async fn send_message<T: Serialize>(&self, message: Message<T>) -> Result<()> {
        let (payload, mut headers) = message.into_parts();
        let bytes =
            serde_json::to_vec(&payload).map_err(|e| Error::codec(format!("cannot encode test input as JSON: {e}")))?;
        headers.insert_if_absent(bindery::headers::names::CONTENT_TYPE, bindery::codec::JSON);
        self.send_raw(Message::from_parts(bindery::Bytes::from(bytes), headers)).await
    }

    /// Publishes bytes and headers exactly as given (for undecodable or odd inputs).
    /// ```
    /// # use bindery::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> bindery::Result<()> {
    /// let echo = bindery::Handler::processor("echo", |m: Message<String>, _c: Context| async move {
    ///     Ok::<_, HandlerError>(vec![m])
    /// }).input("in").output("out");
    /// let app = bindery_memory::TestApp::builder().registered_handlers(false).handler(echo).start().await?;
    /// app.input("in").send_raw(Message::new(bindery::Bytes::from_static(b"\"raw\""))).await?;
    /// assert_eq!(app.output("out").recv_json::<String>().await?, "raw");
    /// app.shutdown().await
    /// # }
    /// ```
    pub async fn send_raw(&self, mut message: RawMessage) -> Result<()> {
        let h = message.headers_mut();
        h.insert_if_absent(bindery::headers::names::ID, uuid::Uuid::new_v4());
        self.broker.publish(&self.destination, message);
        Ok(())
    }
}

/// Reads one destination's messages in order.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> bindery::Result<()> {
/// let app = bindery_memory::TestApp::builder().registered_handlers(false).start().await?;
/// app.input("events").send_json(&1).await?;
/// app.input("events").send_json(&2).await?;
/// let events: bindery_memory::Output = app.output("events");
/// assert_eq!(events.recv_json::<u32>().await?, 1);
/// // One read position per destination, shared by every `Output` of this app:
/// assert_eq!(app.output("events").recv_json::<u32>().await?, 2);
/// assert_eq!(events.all().len(), 2);
/// app.shutdown().await
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Output {
    broker: Arc<MemoryBroker>,
    destination: String,
    cursors: Arc<Mutex<HashMap<String, usize>>>,
    timeout: Duration,
}

impl Output {
    /// Waits for this destination's next message (up to the test timeout).
    /// ```
    /// # use bindery::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> bindery::Result<()> {
    /// let echo = bindery::Handler::processor("echo", |m: Message<String>, _c: Context| async move {
    ///     Ok::<_, HandlerError>(vec![m])
    /// }).input("in").output("out");
    /// let app = bindery_memory::TestApp::builder().registered_handlers(false).handler(echo).start().await?;
    /// app.input("in").send_json(&"x").await?;
    /// let raw = app.output("out").recv().await?;
    /// assert_eq!(&raw.payload()[..], b"\"x\"");
    /// app.shutdown().await
    /// # }
    /// ```
    pub async fn recv(&self) -> Result<RawMessage> {
        let topic = self.broker.topic(&self.destination);
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let changed = topic.history_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut cursors = self.cursors.lock().unwrap_or_else(|p| p.into_inner());
                let at = cursors.entry(self.destination.clone()).or_insert(0);
                if let Some(m) = topic.history_at(*at) {
                    *at += 1;
                    return Ok(m);
                }
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "no message on `{}` within {:?} ({} seen in all)",
                        self.destination,
                        self.timeout,
                        topic.history_len()
                    ),
                ));
            }
        }
    }

    /// Waits for the next message and decodes its JSON payload.
    /// ```
    /// # use bindery::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> bindery::Result<()> {
    /// let echo = bindery::Handler::processor("echo", |m: Message<String>, _c: Context| async move {
    ///     Ok::<_, HandlerError>(vec![m])
    /// }).input("in").output("out");
    /// let app = bindery_memory::TestApp::builder().registered_handlers(false).handler(echo).start().await?;
    /// app.input("in").send_json(&"x").await?;
    /// assert_eq!(app.output("out").recv_json::<String>().await?, "x");
    /// app.shutdown().await
    /// # }
    /// ```
    pub async fn recv_json<T: DeserializeOwned>(&self) -> Result<T> {
        let m = self.recv().await?;
        serde_json::from_slice(m.payload())
            .map_err(|e| Error::codec(format!("message on `{}` is not the expected JSON: {e}", self.destination)))
    }

    /// Waits for the next message and decodes it with its headers.
    /// ```
    /// # use bindery::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> bindery::Result<()> {
    /// let echo = bindery::Handler::processor("echo", |m: Message<String>, _c: Context| async move {
    ///     Ok::<_, HandlerError>(vec![m])
    /// }).input("in").output("out");
    /// let app = bindery_memory::TestApp::builder().registered_handlers(false).handler(echo).start().await?;
    /// app.input("in").send_json(&"x").await?;
    /// let m = app.output("out").recv_message::<String>().await?;
    /// assert!(m.headers().id().is_some());
    /// app.shutdown().await
    /// # }
    /// ```
    pub async fn recv_message<T: DeserializeOwned>(&self) -> Result<Message<T>> {
        let m = self.recv().await?;
        let (payload, headers) = m.into_parts();
        let value = serde_json::from_slice(&payload)
            .map_err(|e| Error::codec(format!("message on `{}` is not the expected JSON: {e}", self.destination)))?;
        Ok(Message::from_parts(value, headers))
    }

    /// Everything published to this destination so far, whatever was already received.
    /// ```
    /// # use bindery::prelude::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> bindery::Result<()> {
    /// let echo = bindery::Handler::processor("echo", |m: Message<String>, _c: Context| async move {
    ///     Ok::<_, HandlerError>(vec![m])
    /// }).input("in").output("out");
    /// let app = bindery_memory::TestApp::builder().registered_handlers(false).handler(echo).start().await?;
    /// app.input("in").send_json(&"x").await?;
    /// app.output("out").recv().await?;
    /// assert_eq!(app.output("out").all().len(), 1);
    /// app.shutdown().await
    /// # }
    /// ```
    pub fn all(&self) -> Vec<RawMessage> {
        self.broker.history(&self.destination)
    }
}
