//! The one error type of bindery: an opaque [`Error`] with a [`ErrorKind`].

use std::fmt;

/// A boxed error as handlers and binders return it (the tower convention).
///
/// ```
/// use bindery::BoxError;
/// fn parse(s: &str) -> Result<u64, BoxError> {
///     if s.is_empty() { return Err("empty input".into()); } // from a &str
///     Ok(s.parse()?) // from any std error
/// }
/// assert_eq!(parse("7").unwrap(), 7);
/// assert_eq!(parse("").unwrap_err().to_string(), "empty input");
/// assert!(parse("x").is_err());
/// ```
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with bindery's [`Error`].
///
/// ```
/// fn check() -> bindery::Result<()> { Ok(()) }
/// assert!(check().is_ok());
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, coarsely. New kinds may be added, so match with a wildcard arm.
///
/// ```
/// let err = bindery::Error::config("bindery.toml", "bindings.orders.group", "expected a string");
/// assert_eq!(err.kind(), bindery::ErrorKind::Config);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Configuration is malformed, incomplete or names something that does not exist.
    Config,
    /// A binder could not create or keep a binding (broker unreachable, topology refused).
    Binding,
    /// The broker refused or lost a message (publish not confirmed).
    Broker,
    /// A payload could not be encoded or decoded.
    Codec,
    /// A wait ran out of time.
    Timeout,
    /// The application is shutting down or already stopped.
    Closed,
    /// Two handlers, or a handler and its config, contradict each other.
    Handler,
}

/// bindery's error: what failed, where, and what to do about it.
///
/// ```
/// let err = bindery::Error::binding("orders-in-0", "broker refused the queue declaration");
/// assert!(err.is_binding());
/// assert!(err.to_string().contains("orders-in-0"));
/// ```
pub struct Error {
    /// Boxed, so `Result<T>` is barely bigger than `T`: results are moved on every send and
    /// delivery, and errors are rare.
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    source: Option<BoxError>,
}

impl Error {
    /// A new error of `kind` with a human message.
    ///
    /// ```
    /// let e = bindery::Error::new(bindery::ErrorKind::Timeout, "no message within 5s");
    /// assert!(e.is_timeout());
    /// ```
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { inner: Box::new(Inner { kind, message: message.into(), source: None }) }
    }

    /// Attaches the underlying cause.
    ///
    /// ```
    /// let io = std::io::Error::other("connection reset");
    /// let e = bindery::Error::broker("publish to orders failed").with_source(io);
    /// assert!(std::error::Error::source(&e).is_some());
    /// ```
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.inner.source = Some(source.into());
        self
    }

    /// A configuration error naming the file (or other source), the key and what was expected.
    ///
    /// ```
    /// let e = bindery::Error::config("app.toml", "shutdown-timeout", "expected a duration such as \"30s\"");
    /// assert_eq!(e.to_string(), "invalid configuration in app.toml at key `shutdown-timeout`: expected a duration such as \"30s\"");
    /// ```
    pub fn config(source: impl fmt::Display, key: impl fmt::Display, what: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Config, format!("invalid configuration in {source} at key `{key}`: {what}"))
    }

    /// A binding could not be created or kept.
    ///
    /// ```
    /// let e = bindery::Error::binding("orders", "topic has 2 partitions, 4 requested");
    /// assert!(e.is_binding());
    /// ```
    pub fn binding(binding: impl fmt::Display, what: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Binding, format!("binding `{binding}`: {what}"))
    }

    /// The broker did not take a message.
    ///
    /// ```
    /// assert!(bindery::Error::broker("nack from broker").is_broker());
    /// ```
    pub fn broker(what: impl Into<String>) -> Self {
        Self::new(ErrorKind::Broker, what)
    }

    /// A payload could not be encoded or decoded.
    ///
    /// ```
    /// assert!(bindery::Error::codec("expected JSON").is_codec());
    /// ```
    pub fn codec(what: impl Into<String>) -> Self {
        Self::new(ErrorKind::Codec, what)
    }

    /// The app or binding is closed.
    ///
    /// ```
    /// assert!(bindery::Error::closed("app stopped").is_closed());
    /// ```
    pub fn closed(what: impl Into<String>) -> Self {
        Self::new(ErrorKind::Closed, what)
    }

    /// What kind of failure this is.
    ///
    /// ```
    /// assert_eq!(bindery::Error::codec("x").kind(), bindery::ErrorKind::Codec);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// True for configuration errors.
    ///
    /// ```
    /// assert!(bindery::Error::config("f", "k", "w").is_config());
    /// ```
    pub fn is_config(&self) -> bool {
        self.inner.kind == ErrorKind::Config
    }

    /// True when a binding could not be created or kept.
    ///
    /// ```
    /// assert!(!bindery::Error::codec("x").is_binding());
    /// ```
    pub fn is_binding(&self) -> bool {
        self.inner.kind == ErrorKind::Binding
    }

    /// True when the broker refused or lost a message.
    ///
    /// ```
    /// assert!(bindery::Error::broker("x").is_broker());
    /// ```
    pub fn is_broker(&self) -> bool {
        self.inner.kind == ErrorKind::Broker
    }

    /// True for encode/decode failures.
    ///
    /// ```
    /// assert!(bindery::Error::codec("x").is_codec());
    /// ```
    pub fn is_codec(&self) -> bool {
        self.inner.kind == ErrorKind::Codec
    }

    /// True when a wait ran out of time.
    ///
    /// ```
    /// assert!(bindery::Error::new(bindery::ErrorKind::Timeout, "x").is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        self.inner.kind == ErrorKind::Timeout
    }

    /// True when the app or binding is closed.
    ///
    /// ```
    /// assert!(bindery::Error::closed("x").is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.kind == ErrorKind::Closed
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind).field("message", &self.inner.message);
        if let Some(source) = &self.inner.source {
            d.field("source", &source.to_string());
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.message)?;
        if let Some(source) = &self.inner.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The error a handler returns to say "this attempt failed": retried, then dead-lettered.
///
/// Any `std::error::Error` converts into it with `?`; [`HandlerError::new`] takes a message.
///
/// ```
/// fn charge(cents: u64) -> Result<u64, bindery::HandlerError> {
///     if cents == 0 { return Err(bindery::HandlerError::new("nothing to charge")); }
///     let parsed: u64 = "42".parse()?; // any std error converts
///     Ok(cents + parsed)
/// }
/// assert_eq!(charge(0).unwrap_err().to_string(), "nothing to charge");
/// ```
#[derive(Debug)]
pub struct HandlerError {
    inner: BoxError,
}

impl HandlerError {
    /// A failure with a message.
    ///
    /// ```
    /// let e = bindery::HandlerError::new("customer unknown");
    /// assert_eq!(e.to_string(), "customer unknown");
    /// ```
    pub fn new(message: impl Into<String>) -> Self {
        Self { inner: message.into().into() }
    }

    /// The boxed cause.
    ///
    /// ```
    /// let e = bindery::HandlerError::new("x");
    /// assert_eq!(e.into_inner().to_string(), "x");
    /// ```
    pub fn into_inner(self) -> BoxError {
        self.inner
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for HandlerError {
    fn from(e: E) -> Self {
        Self { inner: Box::new(e) }
    }
}

impl From<HandlerError> for BoxError {
    fn from(e: HandlerError) -> Self {
        e.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_stay_small_and_errors_keep_everything() {
        // One pointer: a `Result<T>` moved on every send is barely bigger than `T`.
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
        assert_eq!(std::mem::size_of::<Result<()>>(), std::mem::size_of::<usize>());
        let e = Error::broker("broker went away").with_source(std::io::Error::other("reset"));
        assert_eq!(e.kind(), ErrorKind::Broker);
        assert!(e.is_broker());
        assert!(e.to_string().contains("broker went away"), "{e}");
        assert_eq!(std::error::Error::source(&e).map(|s| s.to_string()), Some("reset".to_string()));
        assert!(format!("{e:?}").contains("Broker"), "{e:?}");
    }
}
