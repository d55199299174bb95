//! [`Message`]: a payload with headers.

use bytes::Bytes;

use crate::headers::{HeaderValue, Headers, names};
use std::borrow::Cow;

/// A payload plus its headers. Handlers take `Message<T>` when they need headers, and return
/// it when they want to set headers or the partition key on an output.
///
/// ```
/// use bindery::Message;
/// let m = Message::new(41u32 + 1)
///     .with_key("customer-7")
///     .with_header("tenant", "acme")
///     .with_correlation_id("order-1");
/// assert_eq!(*m.payload(), 42);
/// assert_eq!(m.headers().key(), Some(&b"customer-7"[..]));
/// assert_eq!(m.headers().correlation_id(), Some("order-1"));
/// assert_eq!(m.into_payload(), 42);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Message<T> {
    payload: T,
    headers: Headers,
}

/// A message as binders see it: encoded payload bytes and headers.
///
/// ```
/// let raw: bindery::RawMessage = bindery::Message::new(bytes::Bytes::from_static(b"{}"));
/// assert_eq!(raw.payload().len(), 2);
/// ```
pub type RawMessage = Message<Bytes>;

impl<T> Message<T> {
    /// A message with no headers yet; bindery adds `id`, `timestamp` and `contentType` when
    /// it is sent.
    ///
    /// ```
    /// assert!(bindery::Message::new("x").headers().is_empty());
    /// ```
    pub fn new(payload: T) -> Self {
        Self { payload, headers: Headers::new() }
    }

    /// A message from its parts.
    ///
    /// ```
    /// let m = bindery::Message::from_parts(1, bindery::Headers::new());
    /// assert_eq!(*m.payload(), 1);
    /// ```
    pub fn from_parts(payload: T, headers: Headers) -> Self {
        Self { payload, headers }
    }

    /// The payload.
    ///
    /// ```
    /// assert_eq!(*bindery::Message::new(5).payload(), 5);
    /// ```
    pub fn payload(&self) -> &T {
        &self.payload
    }

    /// The payload, mutable.
    ///
    /// ```
    /// let mut m = bindery::Message::new(5);
    /// *m.payload_mut() += 1;
    /// assert_eq!(*m.payload(), 6);
    /// ```
    pub fn payload_mut(&mut self) -> &mut T {
        &mut self.payload
    }

    /// The headers.
    ///
    /// ```
    /// assert_eq!(bindery::Message::new(()).headers().len(), 0);
    /// ```
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The headers, mutable.
    ///
    /// ```
    /// let mut m = bindery::Message::new(());
    /// m.headers_mut().insert("a", "b");
    /// assert_eq!(m.headers().get_str("a"), Some("b"));
    /// ```
    pub fn headers_mut(&mut self) -> &mut Headers {
        &mut self.headers
    }

    /// The payload, dropping the headers.
    ///
    /// ```
    /// assert_eq!(bindery::Message::new("p").into_payload(), "p");
    /// ```
    pub fn into_payload(self) -> T {
        self.payload
    }

    /// Payload and headers.
    ///
    /// ```
    /// let (p, h) = bindery::Message::new(1).with_header("a", "b").into_parts();
    /// assert_eq!((p, h.len()), (1, 1));
    /// ```
    pub fn into_parts(self) -> (T, Headers) {
        (self.payload, self.headers)
    }

    /// Same headers, payload transformed.
    ///
    /// ```
    /// let m = bindery::Message::new(2).with_key("k").map(|n| n * 10);
    /// assert_eq!((*m.payload(), m.headers().key().is_some()), (20, true));
    /// ```
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Message<U> {
        Message { payload: f(self.payload), headers: self.headers }
    }

    /// Sets a header.
    ///
    /// ```
    /// let m = bindery::Message::new(()).with_header("tenant", "acme");
    /// assert_eq!(m.headers().get_str("tenant"), Some("acme"));
    /// ```
    pub fn with_header(mut self, name: impl Into<Cow<'static, str>>, value: impl Into<HeaderValue>) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// Sets the partition key: messages with one key go to one partition and keep their order.
    ///
    /// ```
    /// let m = bindery::Message::new(()).with_key("k");
    /// assert_eq!(m.headers().key(), Some(&b"k"[..]));
    /// ```
    pub fn with_key(mut self, key: impl Into<HeaderValue>) -> Self {
        self.headers.insert(names::KEY, key);
        self
    }

    /// Sets `correlationId` (otherwise copied from the input being handled).
    ///
    /// ```
    /// let m = bindery::Message::new(()).with_correlation_id("c");
    /// assert_eq!(m.headers().correlation_id(), Some("c"));
    /// ```
    pub fn with_correlation_id(mut self, id: impl Into<HeaderValue>) -> Self {
        self.headers.insert(names::CORRELATION_ID, id);
        self
    }

    /// Sets `contentType`, overriding the binding's `content-type` for this message.
    ///
    /// ```
    /// let m = bindery::Message::new("hi".to_string()).with_content_type("text/plain");
    /// assert_eq!(m.headers().content_type(), Some("text/plain"));
    /// ```
    pub fn with_content_type(mut self, content_type: impl Into<HeaderValue>) -> Self {
        self.headers.insert(names::CONTENT_TYPE, content_type);
        self
    }
}

impl<T> From<T> for Message<T> {
    fn from(payload: T) -> Self {
        Message::new(payload)
    }
}
