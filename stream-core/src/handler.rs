//! Handlers: what `#[processor]`, `#[sink]` and `#[source]` register, and the same thing built
//! by hand with [`Handler`].
//!
//! ```
//! use bindery::prelude::*;
//!
//! // What `#[bindery::processor(input = "orders", output = "invoices")]` would register:
//! let bill = bindery::Handler::processor("bill", |m: Message<u64>, _ctx: Context| async move {
//!     Ok::<_, HandlerError>(vec![m.map(|cents| cents * 120 / 100)])
//! })
//! .input("orders")
//! .output("invoices");
//! assert_eq!(bill.kind(), bindery::handler::HandlerKind::Processor);
//! assert_eq!((bill.input_binding(), bill.output_binding()), (Some("orders"), Some("invoices")));
//! let app = bindery::App::builder().registered_handlers(false).handler(bill);
//! # let _ = app;
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{BoxError, Error};
use crate::headers::{Headers, names};
use crate::message::{Message, RawMessage};
use crate::runtime::Runtime;

/// What a handler is.
///
/// ```
/// use bindery::prelude::*;
/// use bindery::handler::HandlerKind;
/// let log = bindery::Handler::sink("log", |_m: Message<String>, _c: Context| async { Ok::<_, HandlerError>(()) });
/// assert_eq!(log.kind(), HandlerKind::Sink);
/// let tick = bindery::Handler::source("tick", std::time::Duration::from_secs(1), || async {
///     Ok::<_, HandlerError>(Some(Message::new(1)))
/// });
/// assert_eq!(tick.kind(), HandlerKind::Source);
/// assert_eq!(tick.input_binding(), None); // sources have no input
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandlerKind {
    /// Consumes one message, produces zero or more.
    Processor,
    /// Consumes messages.
    Sink,
    /// Produces messages on an interval.
    Source,
}

/// Why an attempt at handling a message failed.
///
/// ```
/// let f = bindery::Failure::decode("invalid JSON payload");
/// assert!(!f.is_retryable());
/// assert_eq!(f.kind(), "decode");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Failure {
    /// Boxed, so a handler's `Result<Outputs, Failure>` is no bigger than its outputs.
    inner: Box<(&'static str, String)>,
}

impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Failure").field("kind", &self.inner.0).field("message", &self.inner.1).finish()
    }
}

impl Failure {
    /// The payload could not be decoded: never retried, straight to the dead letter.
    ///
    /// ```
    /// assert_eq!(bindery::Failure::decode("x").kind(), "decode");
    /// ```
    pub fn decode(message: impl Into<String>) -> Self {
        Self { inner: Box::new(("decode", message.into())) }
    }

    /// The handler returned an error.
    ///
    /// ```
    /// assert!(bindery::Failure::handler("x").is_retryable());
    /// ```
    pub fn handler(message: impl Into<String>) -> Self {
        Self { inner: Box::new(("handler", message.into())) }
    }

    /// The handler panicked.
    ///
    /// ```
    /// assert_eq!(bindery::Failure::panic("boom").kind(), "panic");
    /// ```
    pub fn panic(message: impl Into<String>) -> Self {
        Self { inner: Box::new(("panic", message.into())) }
    }

    /// An output could not be encoded: a bug in the handler's output, not retried.
    ///
    /// ```
    /// assert!(!bindery::Failure::encode("x").is_retryable());
    /// ```
    pub fn encode(message: impl Into<String>) -> Self {
        Self { inner: Box::new(("encode", message.into())) }
    }

    /// `decode`, `encode`, `handler` or `panic`: the `x-exception-kind` header of dead letters.
    ///
    /// ```
    /// assert_eq!(bindery::Failure::handler("x").kind(), "handler");
    /// ```
    pub fn kind(&self) -> &'static str {
        self.inner.0
    }

    /// The reason: the `x-exception-message` header of dead letters.
    ///
    /// ```
    /// assert_eq!(bindery::Failure::handler("no stock").message(), "no stock");
    /// ```
    pub fn message(&self) -> &str {
        &self.inner.1
    }

    /// Whether another attempt could succeed.
    ///
    /// ```
    /// assert!(bindery::Failure::panic("x").is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        matches!(self.inner.0, "handler" | "panic")
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failure: {}", self.inner.0, self.inner.1)
    }
}

/// Encoded outputs of one invocation, each for a binding (`None` = the handler's output).
/// Not public API: generated code builds it.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct Outputs {
    pub(crate) items: Vec<(Option<String>, RawMessage)>,
}

impl Outputs {
    /// No outputs.
    ///
    /// ```
    /// assert!(bindery::handler::Outputs::none().is_empty());
    /// ```
    pub fn none() -> Self {
        Self { items: Vec::new() }
    }

    /// Number of outputs.
    ///
    /// ```
    /// assert_eq!(bindery::handler::Outputs::none().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when there are none.
    ///
    /// ```
    /// assert!(bindery::handler::Outputs::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

pub(crate) struct InvocationState {
    pub(crate) message: RawMessage,
    pub(crate) attempt: std::sync::atomic::AtomicU32,
    pub(crate) sends: Mutex<Vec<(Option<String>, RawMessage)>>,
    /// Set once anything was queued in `sends`, so the common case skips the lock.
    pub(crate) has_sends: std::sync::atomic::AtomicBool,
    /// The message names a content type other than its binding's (looked up once).
    pub(crate) foreign_type: bool,
}

/// One call of a handler: the inbound message and what the handler may reach.
/// Not public API: generated code and [`Handler`] use it; applications see [`Context`].
#[doc(hidden)]
/// Generated code and [`Handler`] use it; applications normally see [`Context`] instead.
#[derive(Clone)]
pub struct Invocation {
    pub(crate) state: Arc<InvocationState>,
    pub(crate) env: Arc<HandlerEnv>,
}

impl std::fmt::Debug for Invocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invocation")
            .field("handler", &self.env.handler)
            .field("headers", self.state.message.headers())
            .finish()
    }
}

/// Per-handler state shared by all its invocations.
pub(crate) struct HandlerEnv {
    pub(crate) handler: String,
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) input_content_type: String,
    pub(crate) output: Option<Arc<crate::runtime::OutputBinding>>,
}

impl Invocation {
    pub(crate) fn new(message: RawMessage, env: Arc<HandlerEnv>) -> Self {
        let foreign_type = message
            .headers()
            .get(names::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes() != env.input_content_type.as_bytes());
        Self {
            state: Arc::new(InvocationState {
                foreign_type,
                message,
                attempt: std::sync::atomic::AtomicU32::new(1),
                sends: Mutex::new(Vec::new()),
                has_sends: std::sync::atomic::AtomicBool::new(false),
            }),
            env,
        }
    }

    /// The inbound message, encoded.
    pub fn raw(&self) -> &RawMessage {
        &self.state.message
    }

    fn content_type(&self) -> &str {
        if !self.state.foreign_type {
            return &self.env.input_content_type;
        }
        match self.state.message.headers().get(names::CONTENT_TYPE) {
            // Most messages carry the binding's own type: skip re-validating the text.
            Some(v) if v.as_bytes() != self.env.input_content_type.as_bytes() => {
                v.as_str().unwrap_or(&self.env.input_content_type)
            }
            _ => &self.env.input_content_type,
        }
    }

    /// Decodes the payload into `T` with the codec of its content type.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, Failure> {
        self.env
            .runtime
            .codecs
            .decode(self.state.message.payload(), self.content_type())
            .map_err(|e| Failure::decode(e.to_string()))
    }

    /// Decodes the payload and copies the headers into a [`Message`].
    pub fn decode_message<T: DeserializeOwned>(&self) -> Result<Message<T>, Failure> {
        Ok(Message::from_parts(self.decode()?, self.headers()))
    }

    /// The inbound headers, plus `deliveryAttempt` from the second attempt on (Spring sets it
    /// on retries; the first attempt keeps the headers as received).
    pub fn headers(&self) -> Headers {
        let mut headers = self.state.message.headers().clone();
        let attempt = self.state.attempt.load(std::sync::atomic::Ordering::Relaxed);
        if attempt > 1 {
            headers.insert(names::DELIVERY_ATTEMPT, attempt);
        }
        headers
    }

    /// The payload as UTF-8 text.
    pub fn text(&self) -> Result<String, Failure> {
        std::str::from_utf8(self.state.message.payload())
            .map(str::to_owned)
            .map_err(|e| Failure::decode(format!("payload is not UTF-8 text: {e}")))
    }

    /// The raw payload bytes.
    pub fn bytes(&self) -> Bytes {
        self.state.message.payload().clone()
    }

    /// A [`Context`] for this invocation.
    pub fn context(&self) -> Context {
        Context { inv: self.clone() }
    }

    /// Encodes one output for the handler's output binding.
    pub fn output<U: Serialize>(&self, message: Message<U>) -> Result<Outputs, Failure> {
        let mut out = Outputs { items: Vec::with_capacity(1) };
        self.push_output(&mut out, message)?;
        Ok(out)
    }

    /// Encodes several outputs for the handler's output binding.
    pub fn outputs<U: Serialize>(&self, messages: impl IntoIterator<Item = Message<U>>) -> Result<Outputs, Failure> {
        let mut out = Outputs::none();
        for m in messages {
            self.push_output(&mut out, m)?;
        }
        Ok(out)
    }

    /// One output whose payload bytes pass through unencoded.
    pub fn output_bytes(&self, message: Message<Bytes>) -> Result<Outputs, Failure> {
        self.outputs_bytes(std::iter::once(message))
    }

    /// Outputs whose payload bytes pass through unencoded.
    pub fn outputs_bytes(&self, messages: impl IntoIterator<Item = Message<Bytes>>) -> Result<Outputs, Failure> {
        let binding = self.output_binding()?;
        let mut out = Outputs::none();
        for m in messages {
            out.items.push((None, binding.encode_bytes(m)));
        }
        Ok(out)
    }

    /// One text output, sent as its UTF-8 bytes (not re-encoded).
    pub fn output_text(&self, message: Message<String>) -> Result<Outputs, Failure> {
        self.output_bytes(message.map(Bytes::from))
    }

    /// Text outputs, sent as their UTF-8 bytes.
    pub fn outputs_text(&self, messages: impl IntoIterator<Item = Message<String>>) -> Result<Outputs, Failure> {
        self.outputs_bytes(messages.into_iter().map(|m| m.map(Bytes::from)))
    }

    fn output_binding(&self) -> Result<&Arc<crate::runtime::OutputBinding>, Failure> {
        self.env.output.as_ref().ok_or_else(|| {
            Failure::encode(format!("handler `{}` returned a value but has no output binding", self.env.handler))
        })
    }

    fn push_output<U: Serialize>(&self, out: &mut Outputs, message: Message<U>) -> Result<(), Failure> {
        let binding = self.env.output.as_ref().ok_or_else(|| {
            Failure::encode(format!("handler `{}` returned a value but has no output binding", self.env.handler))
        })?;
        let raw = binding.encode(&self.env.runtime.codecs, message).map_err(|e| Failure::encode(e.to_string()))?;
        out.items.push((None, raw));
        Ok(())
    }
}

/// What a handler can reach besides its payload: the inbound headers, the correlation id,
/// and [`send`](Context::send) for extra or dynamic outputs.
///
/// Messages sent through the context are published together with the handler's return value,
/// only if the handler succeeds, and the input is acknowledged only after the broker
/// confirmed all of them.
///
/// ```
/// use bindery::prelude::*;
///
/// #[derive(Serialize, Deserialize)]
/// struct Order { id: u64, cents: u64 }
///
/// #[bindery::sink(input = "orders-ctx-doc")]
/// async fn route(order: Order, ctx: Context) -> Result<(), HandlerError> {
///     let lane = if order.cents > 10_000 { "orders-large" } else { "orders-small" };
///     ctx.send(lane, &order)?;
///     assert_eq!(ctx.delivery_attempt(), 1);
///     Ok(())
/// }
/// # fn main() {}
/// ```
#[derive(Clone, Debug)]
pub struct Context {
    inv: Invocation,
}

impl Context {
    /// The inbound message's headers (empty for sources).
    /// ```
    /// # use bindery::prelude::*;
    /// #[bindery::sink(input = "ctx-doc-headers")]
    /// async fn look(order: serde_json::Value, ctx: Context) {
    ///     let tenant = ctx.headers().get_str("tenant");
    ///     println!("{order} for {tenant:?}");
    /// }
    /// # fn main() {}
    /// ```
    pub fn headers(&self) -> &Headers {
        self.inv.state.message.headers()
    }

    /// The conversation id: the inbound `correlationId`, else its `id`.
    /// ```
    /// # use bindery::prelude::*;
    /// #[bindery::sink(input = "ctx-doc-corr")]
    /// async fn look(order: serde_json::Value, ctx: Context) {
    ///     println!("{order} in conversation {:?}", ctx.correlation_id());
    /// }
    /// # fn main() {}
    /// ```
    pub fn correlation_id(&self) -> Option<&str> {
        let h = self.headers();
        h.correlation_id().or_else(|| h.get_str(names::ID))
    }

    /// Which attempt this is (1 = first).
    /// ```
    /// # use bindery::prelude::*;
    /// #[bindery::sink(input = "ctx-doc-attempt")]
    /// async fn look(order: serde_json::Value, ctx: Context) {
    ///     if ctx.delivery_attempt() > 1 { println!("retrying {order}"); }
    /// }
    /// # fn main() {}
    /// ```
    pub fn delivery_attempt(&self) -> u32 {
        self.inv.state.attempt.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The name of the handler being run.
    /// ```
    /// # use bindery::prelude::*;
    /// #[bindery::sink(input = "ctx-doc-name")]
    /// async fn look(order: serde_json::Value, ctx: Context) {
    ///     assert_eq!(ctx.handler_name(), "look");
    /// }
    /// # fn main() {}
    /// ```
    pub fn handler_name(&self) -> &str {
        &self.inv.env.handler
    }

    /// Queues `value` for binding `binding` (any name; its destination, binder and content type
    /// come from `[bindings.<binding>]`, defaulting to a destination of the same name).
    /// ```
    /// # use bindery::prelude::*;
    /// #[bindery::sink(input = "ctx-doc-send")]
    /// async fn look(order: serde_json::Value, ctx: Context) {
    ///     let _ = ctx.send("audit-log", &order);
    /// }
    /// # fn main() {}
    /// ```
    pub fn send<U: Serialize + ?Sized>(&self, binding: &str, value: &U) -> Result<(), Error> {
        let out = self.inv.env.runtime.output(binding)?;
        let raw = out.encode_ref(&self.inv.env.runtime.codecs, value, Headers::new())?;
        self.push(binding, raw);
        Ok(())
    }

    /// Queues a message with headers for binding `binding`.
    /// ```
    /// # use bindery::prelude::*;
    /// #[bindery::sink(input = "ctx-doc-sendm")]
    /// async fn look(order: serde_json::Value, ctx: Context) {
    ///     let _ = ctx.send_message("audit-log", Message::new(order).with_key("k"));
    /// }
    /// # fn main() {}
    /// ```
    pub fn send_message<U: Serialize>(&self, binding: &str, message: Message<U>) -> Result<(), Error> {
        let out = self.inv.env.runtime.output(binding)?;
        let raw = out.encode(&self.inv.env.runtime.codecs, message)?;
        self.push(binding, raw);
        Ok(())
    }

    fn push(&self, binding: &str, raw: RawMessage) {
        if let Ok(mut sends) = self.inv.state.sends.lock() {
            sends.push((Some(binding.to_string()), raw));
            self.inv.state.has_sends.store(true, std::sync::atomic::Ordering::Release);
        }
    }
}

/// The erased form every handler takes. Not public API.
#[doc(hidden)]
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Outputs, Failure>> + Send + 'static>>;
/// The erased handler function. Not public API.
#[doc(hidden)]
pub type HandlerFn = Arc<dyn Fn(Invocation) -> HandlerFuture + Send + Sync + 'static>;

/// Wraps an async function of [`Invocation`] as a [`HandlerFn`]. Not public API.
#[doc(hidden)]
pub fn handler_fn<F, Fut>(f: F) -> HandlerFn
where
    F: Fn(Invocation) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Outputs, Failure>> + Send + 'static,
{
    Arc::new(move |inv| Box::pin(f(inv)) as HandlerFuture)
}

/// Turns a handler's error into a retryable [`Failure`]. Not public API.
#[doc(hidden)]
pub fn failure<E: Into<BoxError>>(e: E) -> Failure {
    Failure::handler(e.into().to_string())
}

/// A handler built in code, the same thing the attribute macros register.
///
/// ```
/// use bindery::prelude::*;
/// use bindery::Handler;
///
/// let upper = Handler::processor("upper", |m: Message<String>, _ctx: Context| async move {
///     Ok::<_, HandlerError>(vec![Message::new(m.into_payload().to_uppercase())])
/// })
/// .input("words")
/// .output("shouts");
/// assert_eq!(upper.input_binding(), Some("words"));
/// assert_eq!(upper.output_binding(), Some("shouts"));
/// ```
#[derive(Clone)]
pub struct Handler {
    pub(crate) name: String,
    pub(crate) kind: HandlerKind,
    pub(crate) input: Option<String>,
    pub(crate) output: Option<String>,
    pub(crate) group: Option<String>,
    pub(crate) interval: Option<Duration>,
    pub(crate) func: HandlerFn,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("input", &self.input)
            .field("output", &self.output)
            .field("group", &self.group)
            .finish()
    }
}

impl Handler {
    /// A processor: typed input, any number of typed outputs.
    /// ```
    /// use bindery::prelude::*;
    /// let double = bindery::Handler::processor("double", |m: Message<u64>, _ctx: Context| async move {
    ///     Ok::<_, HandlerError>(vec![m.map(|n| n * 2)])
    /// });
    /// assert_eq!(double.input_binding(), Some("double-in-0"));
    /// ```
    pub fn processor<T, U, E, F, Fut>(name: &str, f: F) -> Self
    where
        T: DeserializeOwned + Send + 'static,
        U: Serialize + Send + 'static,
        E: Into<BoxError> + 'static,
        F: Fn(Message<T>, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<Message<U>>, E>> + Send + 'static,
    {
        let f = Arc::new(f);
        let func = handler_fn(move |inv: Invocation| {
            let f = f.clone();
            async move {
                let msg = inv.decode_message::<T>()?;
                let out = f(msg, inv.context()).await.map_err(failure)?;
                inv.outputs(out)
            }
        });
        Self::raw(name, HandlerKind::Processor, func)
    }

    /// A sink: typed input, no outputs (but [`Context::send`] works).
    /// ```
    /// use bindery::prelude::*;
    /// let h = bindery::Handler::sink("log", |_m: Message<String>, _c: Context| async { Ok::<_, HandlerError>(()) });
    /// assert_eq!(h.output_binding(), None);
    /// ```
    pub fn sink<T, E, F, Fut>(name: &str, f: F) -> Self
    where
        T: DeserializeOwned + Send + 'static,
        E: Into<BoxError> + 'static,
        F: Fn(Message<T>, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
    {
        let f = Arc::new(f);
        let func = handler_fn(move |inv: Invocation| {
            let f = f.clone();
            async move {
                let msg = inv.decode_message::<T>()?;
                f(msg, inv.context()).await.map_err(failure)?;
                Ok(Outputs::none())
            }
        });
        Self::raw(name, HandlerKind::Sink, func)
    }

    /// A polled source: called every `interval`; `None` publishes nothing this time.
    /// ```
    /// use bindery::prelude::*;
    /// let tick = bindery::Handler::source("tick", std::time::Duration::from_secs(1), || async {
    ///     Ok::<_, HandlerError>(Some(Message::new("tick")))
    /// });
    /// assert_eq!(tick.output_binding(), Some("tick-out-0"));
    /// ```
    pub fn source<U, E, F, Fut>(name: &str, interval: Duration, f: F) -> Self
    where
        U: Serialize + Send + 'static,
        E: Into<BoxError> + 'static,
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Option<Message<U>>, E>> + Send + 'static,
    {
        let f = Arc::new(f);
        let func = handler_fn(move |inv: Invocation| {
            let f = f.clone();
            async move {
                match f().await.map_err(failure)? {
                    Some(m) => inv.output(m),
                    None => Ok(Outputs::none()),
                }
            }
        });
        let mut h = Self::raw(name, HandlerKind::Source, func);
        h.interval = Some(interval);
        h
    }

    /// A handler from its erased function (what the macros generate).
    /// ```
    /// use bindery::prelude::*;
    /// let f = bindery::__private::handler_fn(|_inv| async { Ok(bindery::__private::Outputs::none()) });
    /// let h = bindery::Handler::raw("noop", bindery::handler::HandlerKind::Sink, f);
    /// assert_eq!(h.input_binding(), Some("noop-in-0"));
    /// ```
    pub fn raw(name: &str, kind: HandlerKind, func: HandlerFn) -> Self {
        let input = (kind != HandlerKind::Source).then(|| format!("{name}-in-0"));
        let output = (kind != HandlerKind::Sink).then(|| format!("{name}-out-0"));
        Self { name: name.to_string(), kind, input, output, group: None, interval: None, func }
    }

    /// Sets the input binding name (default `<name>-in-0`).
    /// ```
    /// use bindery::prelude::*;
    /// let h = bindery::Handler::sink("log", |_m: Message<String>, _c: Context| async { Ok::<_, HandlerError>(()) }).input("events");
    /// assert_eq!(h.input_binding(), Some("events"));
    /// ```
    pub fn input(mut self, binding: &str) -> Self {
        self.input = Some(binding.to_string());
        self
    }

    /// Sets the output binding name (default `<name>-out-0`).
    /// ```
    /// use bindery::prelude::*;
    /// let h = bindery::Handler::processor("p", |m: Message<u8>, _c: Context| async move { Ok::<_, HandlerError>(vec![m]) }).output("out");
    /// assert_eq!(h.output_binding(), Some("out"));
    /// ```
    pub fn output(mut self, binding: &str) -> Self {
        self.output = Some(binding.to_string());
        self
    }

    /// Sets the consumer group (config's `group` still wins).
    /// ```
    /// use bindery::prelude::*;
    /// let h = bindery::Handler::sink("log", |_m: Message<String>, _c: Context| async { Ok::<_, HandlerError>(()) }).group("audit");
    /// # let _ = h;
    /// ```
    pub fn group(mut self, group: &str) -> Self {
        self.group = Some(group.to_string());
        self
    }

    /// Sets a source's polling interval.
    /// ```
    /// use bindery::prelude::*;
    /// let tick = bindery::Handler::source("t", std::time::Duration::from_secs(1), || async { Ok::<_, HandlerError>(Some(Message::new(1))) })
    ///     .interval(std::time::Duration::from_millis(250));
    /// # let _ = tick;
    /// ```
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = Some(interval);
        self
    }

    /// The handler's name.
    /// ```
    /// use bindery::prelude::*;
    /// let h = bindery::Handler::sink("log", |_m: Message<String>, _c: Context| async { Ok::<_, HandlerError>(()) });
    /// assert_eq!(h.name(), "log");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What kind of handler it is.
    /// ```
    /// use bindery::prelude::*;
    /// let h = bindery::Handler::sink("log", |_m: Message<String>, _c: Context| async { Ok::<_, HandlerError>(()) });
    /// assert_eq!(h.kind(), bindery::handler::HandlerKind::Sink);
    /// ```
    pub fn kind(&self) -> HandlerKind {
        self.kind
    }

    /// The input binding name.
    /// ```
    /// use bindery::prelude::*;
    /// let h = bindery::Handler::sink("log", |_m: Message<String>, _c: Context| async { Ok::<_, HandlerError>(()) });
    /// assert_eq!(h.input_binding(), Some("log-in-0"));
    /// ```
    pub fn input_binding(&self) -> Option<&str> {
        self.input.as_deref()
    }

    /// The output binding name.
    /// ```
    /// use bindery::prelude::*;
    /// let h = bindery::Handler::sink("log", |_m: Message<String>, _c: Context| async { Ok::<_, HandlerError>(()) });
    /// assert_eq!(h.output_binding(), None);
    /// ```
    pub fn output_binding(&self) -> Option<&str> {
        self.output.as_deref()
    }
}

/// A handler registered by an attribute macro. Not public API: generated code builds it.
#[doc(hidden)]
pub struct Registration {
    pub name: &'static str,
    pub kind: HandlerKind,
    pub input: Option<&'static str>,
    pub output: Option<&'static str>,
    pub group: Option<&'static str>,
    pub interval_ms: Option<u64>,
    pub module: &'static str,
    pub build: fn() -> HandlerFn,
}

inventory::collect!(Registration);

impl Registration {
    pub(crate) fn to_handler(&self) -> Handler {
        Handler {
            name: self.name.to_string(),
            kind: self.kind,
            input: self.input.map(str::to_string),
            output: self.output.map(str::to_string),
            group: self.group.map(str::to_string),
            interval: self.interval_ms.map(Duration::from_millis),
            func: (self.build)(),
        }
    }
}

/// Every handler registered with the attribute macros in this program.
///
/// ```
/// let names: Vec<String> = bindery::handler::registered().iter().map(|h| h.name().to_string()).collect();
/// assert!(names.iter().all(|n| !n.is_empty()));
/// ```
pub fn registered() -> Vec<Handler> {
    let mut v: Vec<Handler> = inventory::iter::<Registration>.into_iter().map(Registration::to_handler).collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_one_pointer_and_keeps_its_kind_and_message() {
        // A handler's result is moved through every layer per message: the failure's room
        // must not make it bigger than the outputs.
        assert_eq!(std::mem::size_of::<Failure>(), std::mem::size_of::<usize>());
        assert_eq!(std::mem::size_of::<std::result::Result<Outputs, Failure>>(), std::mem::size_of::<Outputs>());
        let f = Failure::panic("boom");
        assert_eq!((f.kind(), f.message()), ("panic", "boom"));
        assert!(f.is_retryable());
        assert_eq!(f.to_string(), "panic failure: boom");
        assert_eq!(format!("{f:?}"), r#"Failure { kind: "panic", message: "boom" }"#);
        assert_eq!(f.clone(), f);
        assert_ne!(Failure::handler("boom"), f);
    }
}
