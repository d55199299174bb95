//! `[binders.<name>]` settings for `type = "rabbit"` and the binding-level
//! `[bindings.<name>.options]` the RabbitMQ binder understands.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use bindery::{Error, Result};
use serde::Deserialize;

/// Settings of a RabbitMQ binder.
///
/// ```toml
/// [binders.mq]
/// type = "rabbit"
/// uri = "amqp://guest:guest@127.0.0.1:5672/%2f"   # amqp:// or amqps://; the password is never logged
/// connection-name = "billing-service"             # shown in the management UI
/// reconnect-initial = "100ms"                     # first wait after losing the broker
/// reconnect-max = "5s"                            # the wait doubles up to this
/// connect-timeout = "5s"                          # how long a bind waits for a connection
/// publish-timeout = "60s"                         # how long an unconfirmed publish is retried
/// ```
///
/// ```
/// let c = bindery::Config::from_toml_str(
///     "[binders.mq]\ntype = \"rabbit\"\nuri = \"amqp://app:s3cret@mq.internal/%2f\"\nconnection-name = \"billing\"",
/// )
/// .unwrap();
/// let opts: bindery_rabbit::RabbitOptions = c.binder_settings("mq").options().unwrap();
/// assert_eq!(opts.connection_name.as_deref(), Some("billing"));
/// assert!(!format!("{opts:?}").contains("s3cret")); // credentials never appear in Debug output
/// ```
#[derive(Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RabbitOptions {
    /// The broker address, `amqp://user:pass@host:port/vhost` or `amqps://…`.
    pub uri: SecretUri,
    /// Connection name shown in the management UI (`connection_name` client property).
    pub connection_name: Option<String>,
    /// First wait before reconnecting after the connection is lost or refused.
    #[serde(with = "humantime_serde")]
    pub reconnect_initial: Duration,
    /// Longest wait between reconnection attempts (the wait doubles up to it).
    #[serde(with = "humantime_serde")]
    pub reconnect_max: Duration,
    /// How long binding a producer or consumer waits for a connection before failing (the
    /// runtime then retries the binding every `binding-retry-interval`).
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How long an unconfirmed publish is retried across reconnections before its
    /// confirmation fails (the input it came from is then redelivered).
    #[serde(with = "humantime_serde")]
    pub publish_timeout: Duration,
}

impl Default for RabbitOptions {
    fn default() -> Self {
        Self {
            uri: SecretUri::new("amqp://guest:guest@127.0.0.1:5672/%2f"),
            connection_name: None,
            reconnect_initial: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            publish_timeout: Duration::from_secs(60),
        }
    }
}

impl fmt::Debug for RabbitOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RabbitOptions")
            .field("uri", &self.uri)
            .field("connection_name", &self.connection_name)
            .field("reconnect_initial", &self.reconnect_initial)
            .field("reconnect_max", &self.reconnect_max)
            .field("connect_timeout", &self.connect_timeout)
            .field("publish_timeout", &self.publish_timeout)
            .finish()
    }
}

impl RabbitOptions {
    /// Options for the broker at `uri`, everything else default.
    ///
    /// ```
    /// let o = bindery_rabbit::RabbitOptions::new("amqp://127.0.0.1:5672/%2f");
    /// assert_eq!(o.uri.redacted(), "amqp://127.0.0.1:5672/%2f");
    /// ```
    pub fn new(uri: impl Into<String>) -> Self {
        Self { uri: SecretUri::new(uri), ..Self::default() }
    }

    /// Checks the settings: a parseable `amqp://`/`amqps://` URI, sane backoff.
    ///
    /// ```
    /// assert!(bindery_rabbit::RabbitOptions::new("http://x").validate("mq").is_err());
    /// assert!(bindery_rabbit::RabbitOptions::new("amqps://u:p@mq:5671/prod").validate("mq").is_ok());
    /// ```
    pub fn validate(&self, binder: &str) -> Result<()> {
        self.uri.parse().map_err(|why| Error::config("configuration", format!("binders.{binder}.uri"), why))?;
        if self.reconnect_initial.is_zero() || self.reconnect_max < self.reconnect_initial {
            return Err(Error::config(
                "configuration",
                format!("binders.{binder}.reconnect-initial"),
                "must be above zero and at most `reconnect-max`",
            ));
        }
        Ok(())
    }
}

/// A broker URI whose password never reaches `Debug`, `Display`, logs or errors.
///
/// ```
/// let uri = bindery_rabbit::SecretUri::new("amqp://app:hunter2@mq:5672/%2f");
/// assert_eq!(uri.redacted(), "amqp://app:***@mq:5672/%2f");
/// assert_eq!(format!("{uri:?}"), "\"amqp://app:***@mq:5672/%2f\"");
/// assert_eq!(uri.to_string(), "amqp://app:***@mq:5672/%2f");
/// ```
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct SecretUri(String);

impl SecretUri {
    /// Wraps a URI.
    ///
    /// ```
    /// let _ = bindery_rabbit::SecretUri::new("amqp://localhost");
    /// ```
    pub fn new(uri: impl Into<String>) -> Self {
        Self(uri.into())
    }

    /// The URI with its password replaced by `***`.
    ///
    /// ```
    /// assert_eq!(bindery_rabbit::SecretUri::new("amqps://u@h").redacted(), "amqps://u@h");
    /// ```
    pub fn redacted(&self) -> String {
        redact_uri(&self.0)
    }

    /// Parses it, with an error that never quotes the URI.
    pub(crate) fn parse(&self) -> std::result::Result<lapin::uri::AMQPUri, String> {
        let scheme = self.0.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("amqp" | "amqps") => {}
            _ => return Err(format!("`{}` is not an amqp:// or amqps:// URI", self.redacted())),
        }
        self.0.parse::<lapin::uri::AMQPUri>().map_err(|e| {
            // The parser's message may echo parts of the input: keep only ours, plus the reason
            // when it cannot contain the password.
            let why = if e.contains(&self.0) || self.password().is_some_and(|p| e.contains(p)) {
                "malformed URI".to_string()
            } else {
                e
            };
            format!("cannot parse `{}`: {why}", self.redacted())
        })
    }

    fn password(&self) -> Option<&str> {
        let rest = self.0.split_once("://")?.1;
        let authority = rest.split(['/', '?', '#']).next()?;
        let userinfo = authority.rsplit_once('@')?.0;
        userinfo.split_once(':').map(|(_, p)| p).filter(|p| !p.is_empty())
    }
}

impl fmt::Debug for SecretUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.redacted(), f)
    }
}

impl fmt::Display for SecretUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// `scheme://user:password@host/…` → `scheme://user:***@host/…`; anything without a password
/// is returned unchanged.
pub(crate) fn redact_uri(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        // Not a URI we understand: it may still hold a secret, so show none of it.
        return if uri.contains('@') { "<redacted>".to_string() } else { uri.to_string() };
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => uri.to_string(),
        },
        None => uri.to_string(),
    }
}

/// The kind of exchange a destination is (Spring's `exchangeType`, default `topic`).
///
/// ```
/// assert_eq!(bindery_rabbit::ExchangeType::default(), bindery_rabbit::ExchangeType::Topic);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ExchangeType {
    /// Routing-key patterns (`#`, `*`): Spring's default.
    #[default]
    Topic,
    /// Exact routing keys.
    Direct,
    /// Every bound queue gets every message.
    Fanout,
    /// Routing by header values.
    Headers,
}

impl ExchangeType {
    pub(crate) fn kind(self) -> lapin::ExchangeKind {
        match self {
            ExchangeType::Topic => lapin::ExchangeKind::Topic,
            ExchangeType::Direct => lapin::ExchangeKind::Direct,
            ExchangeType::Fanout => lapin::ExchangeKind::Fanout,
            ExchangeType::Headers => lapin::ExchangeKind::Headers,
        }
    }
}

/// `[bindings.<name>.options]` for bindings on a RabbitMQ binder.
///
/// ```toml
/// [bindings.orders.options]
/// prefetch = 200               # unacknowledged deliveries per consumer (default from concurrency)
/// quorum = true                # declare the group queue as a quorum queue (x-queue-type)
/// ttl = "10m"                  # x-message-ttl of the group queue
/// max-length = 100000          # x-max-length of the group queue
/// declare = false              # bind to existing exchanges/queues; declare nothing
/// exchange-type = "topic"      # topic (default), direct, fanout, headers
/// binding-routing-key = "#"    # how the group queue is bound (default `#`)
/// auto-bind-dlq = true         # DLX/DLQ and the queue's dead-letter arguments (default true)
/// persistent = true            # delivery mode 2 (default true)
/// ```
///
/// ```
/// use bindery_rabbit::BindingOptions;
/// let json = serde_json::json!({"prefetch": 50, "quorum": true, "ttl": "30s"});
/// let o = BindingOptions::parse("orders", json.as_object().unwrap().iter()).unwrap();
/// assert_eq!(o.prefetch, Some(50));
/// assert!(o.quorum && o.declare);
/// let bad = serde_json::json!({"prefech": 50});
/// let e = BindingOptions::parse("orders", bad.as_object().unwrap().iter()).unwrap_err();
/// assert!(e.to_string().contains("bindings.orders.options.prefech"));
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct BindingOptions {
    /// Unacknowledged deliveries the broker may push to this consumer (`basic.qos`).
    pub prefetch: Option<u16>,
    /// Declare group queues as quorum queues (`x-queue-type = quorum`).
    pub quorum: bool,
    /// Message time-to-live of the group queue (`x-message-ttl`).
    #[serde(with = "humantime_serde")]
    pub ttl: Option<Duration>,
    /// Maximum messages in the group queue (`x-max-length`).
    pub max_length: Option<u64>,
    /// Declare exchanges, queues and bindings (default). `false` uses what exists.
    pub declare: bool,
    /// The destination exchange's type.
    pub exchange_type: ExchangeType,
    /// The routing key group queues are bound with (default `#`; partitioned consumers use
    /// `<destination>-<instance-index>`).
    pub binding_routing_key: Option<String>,
    /// Declare the `DLX` exchange and `<destination>.<group>.dlq`, and give group queues
    /// `x-dead-letter-exchange`/`x-dead-letter-routing-key` (default true).
    pub auto_bind_dlq: bool,
    /// Publish with delivery mode 2 (persistent).
    pub persistent: bool,
}

impl Default for BindingOptions {
    fn default() -> Self {
        Self {
            prefetch: None,
            quorum: false,
            ttl: None,
            max_length: None,
            declare: true,
            exchange_type: ExchangeType::Topic,
            binding_routing_key: None,
            auto_bind_dlq: true,
            persistent: true,
        }
    }
}

/// The option keys, for error messages.
const KEYS: &[&str] = &[
    "prefetch",
    "quorum",
    "ttl",
    "max-length",
    "declare",
    "exchange-type",
    "binding-routing-key",
    "auto-bind-dlq",
    "persistent",
];

impl BindingOptions {
    /// Reads a binding's options; unknown keys and wrong types are errors naming the key.
    ///
    /// ```
    /// let none = serde_json::Map::new();
    /// let o = bindery_rabbit::BindingOptions::parse("in", none.iter()).unwrap();
    /// assert!(o.declare && o.persistent && o.auto_bind_dlq);
    /// ```
    pub fn parse<'a>(
        binding: &str,
        options: impl IntoIterator<Item = (&'a String, &'a serde_json::Value)>,
    ) -> Result<Self> {
        let mut map = serde_json::Map::new();
        for (key, value) in options {
            if !KEYS.contains(&key.as_str()) {
                return Err(Error::config(
                    "configuration",
                    format!("bindings.{binding}.options.{key}"),
                    format!("unknown option for the `rabbit` binder (known: {})", KEYS.join(", ")),
                ));
            }
            map.insert(key.clone(), value.clone());
        }
        for (key, value) in &map {
            let mut one = serde_json::Map::new();
            one.insert(key.clone(), value.clone());
            if let Err(e) = serde_json::from_value::<BindingOptions>(serde_json::Value::Object(one)) {
                return Err(Error::config("configuration", format!("bindings.{binding}.options.{key}"), e));
            }
        }
        serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|e| Error::config("configuration", format!("bindings.{binding}.options"), e))
    }

    /// Reads options from a spec's map.
    pub(crate) fn from_spec(binding: &str, options: &serde_json::Map<String, serde_json::Value>) -> Result<Self> {
        Self::parse(binding, options.iter())
    }

    /// Checks the `[bindings.<name>.options]` table at startup.
    pub(crate) fn check(binding: &str, options: &BTreeMap<String, serde_json::Value>) -> Result<()> {
        Self::parse(binding, options.iter()).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(redact_uri("amqp://guest:guest@127.0.0.1:5672/%2f"), "amqp://guest:***@127.0.0.1:5672/%2f");
        assert_eq!(redact_uri("amqps://u:p%40ss@h/v?heartbeat=5"), "amqps://u:***@h/v?heartbeat=5");
        assert_eq!(redact_uri("amqp://u@h/v"), "amqp://u@h/v");
        assert_eq!(redact_uri("amqp://h:5672"), "amqp://h:5672");
        assert_eq!(redact_uri("garbage:secret@host"), "<redacted>");
        // An `@` in the path is not userinfo.
        assert_eq!(redact_uri("amqp://h/v@x"), "amqp://h/v@x");
    }

    #[test]
    fn credentials_never_in_debug_display_or_errors() {
        let opts = RabbitOptions::new("amqp://app:TopSecret@mq:5672/%2f");
        assert!(!format!("{opts:?}").contains("TopSecret"));
        assert!(!format!("{:#?}", opts).contains("TopSecret"));
        assert!(!opts.uri.to_string().contains("TopSecret"));
        let bad = RabbitOptions::new("amqp://app:TopSecret@mq:notaport/%2f");
        let e = bad.validate("mq").unwrap_err();
        assert!(!e.to_string().contains("TopSecret"), "{e}");
        assert!(e.to_string().contains("binders.mq.uri"), "{e}");
        let wrong = RabbitOptions::new("http://app:TopSecret@mq/");
        let e = wrong.validate("mq").unwrap_err();
        assert!(!e.to_string().contains("TopSecret"), "{e}");
    }

    #[test]
    fn binder_settings_from_config() {
        let c = bindery::Config::from_toml_str(
            "[binders.mq]\ntype = \"rabbit\"\nuri = \"amqps://u:p@h:5671/prod\"\nreconnect-max = \"2s\"\n",
        )
        .unwrap();
        let o: RabbitOptions = c.binder_settings("mq").options().unwrap();
        assert_eq!(o.reconnect_max, Duration::from_secs(2));
        o.validate("mq").unwrap();
        let c = bindery::Config::from_toml_str("[binders.mq]\ntype = \"rabbit\"\nurl = \"amqp://h\"\n").unwrap();
        let e = c.binder_settings("mq").options::<RabbitOptions>().unwrap_err();
        assert!(e.to_string().contains("url"), "{e}");
        let zero = RabbitOptions { reconnect_initial: Duration::ZERO, ..RabbitOptions::default() };
        assert!(zero.validate("mq").unwrap_err().to_string().contains("reconnect-initial"));
    }

    #[test]
    fn binding_options_parse_and_name_bad_keys() {
        let v = serde_json::json!({
            "prefetch": 10, "quorum": true, "ttl": "1m", "max-length": 5, "declare": false,
            "exchange-type": "direct", "binding-routing-key": "orders.*", "auto-bind-dlq": false, "persistent": false
        });
        let o = BindingOptions::parse("b", v.as_object().unwrap().iter()).unwrap();
        assert_eq!(o.prefetch, Some(10));
        assert_eq!(o.ttl, Some(Duration::from_secs(60)));
        assert_eq!(o.max_length, Some(5));
        assert_eq!(o.exchange_type, ExchangeType::Direct);
        assert_eq!(o.binding_routing_key.as_deref(), Some("orders.*"));
        assert!(o.quorum && !o.declare && !o.auto_bind_dlq && !o.persistent);

        let v = serde_json::json!({"prefetch": "lots"});
        let e = BindingOptions::parse("b", v.as_object().unwrap().iter()).unwrap_err();
        assert!(e.to_string().contains("bindings.b.options.prefetch"), "{e}");
        let v = serde_json::json!({"exchange-type": "fan"});
        let e = BindingOptions::parse("b", v.as_object().unwrap().iter()).unwrap_err();
        assert!(e.to_string().contains("bindings.b.options.exchange-type"), "{e}");
        let v = serde_json::json!({"colour": 1});
        let e = BindingOptions::parse("b", v.as_object().unwrap().iter()).unwrap_err();
        assert!(e.is_config() && e.to_string().contains("bindings.b.options.colour"), "{e}");
    }
}
