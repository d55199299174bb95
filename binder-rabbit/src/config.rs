//! `[binders.<name>]` settings for `type = "rabbit"` and the binding-level
//! `[bindings.<name>.options]` the RabbitMQ binder understands.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bindery::{Error, Result};
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::uri::AMQPScheme;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
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
/// # TLS (amqps:// only), rustls; files are read when the binder is created
/// tls-ca-file = "/etc/bindery/rabbit-ca.pem"      # PEM CA certificate(s) trusted besides the system's
/// tls-cert-file = "/etc/bindery/client.pem"       # client certificate chain (PEM), with tls-key-file
/// tls-key-file = "/etc/bindery/client-key.pem"    # its unencrypted PEM private key
/// ```
///
/// Relative TLS paths are relative to the working directory. A missing, unreadable or
/// malformed file is a configuration error naming the key and the path.
///
/// ```
/// let c = bindery::Config::from_toml_str(
///     "[binders.mq]\ntype = \"rabbit\"\nuri = \"amqp://app:s3cret@mq.internal/%2f\"\nconnection-name = \"billing\"",
/// )
/// .unwrap();
/// let opts: bindery_rabbit::RabbitOptions = c.binder_settings("mq").options().unwrap();
/// assert_eq!(opts.connection_name.as_deref(), Some("billing"));
/// assert!(!format!("{opts:?}").contains("s3cret")); // credentials never appear in Debug output
///
/// let c = bindery::Config::from_toml_str(
///     "[binders.mq]\ntype = \"rabbit\"\nuri = \"amqps://mq.internal/%2f\"\ntls-ca-file = \"/no/such/ca.pem\"",
/// )
/// .unwrap();
/// let opts: bindery_rabbit::RabbitOptions = c.binder_settings("mq").options().unwrap();
/// assert_eq!(opts.tls_ca_file.as_deref(), Some(std::path::Path::new("/no/such/ca.pem")));
/// let e = opts.validate("mq").unwrap_err();
/// assert!(e.is_config() && e.to_string().contains("binders.mq.tls-ca-file") && e.to_string().contains("/no/such/ca.pem"));
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
    /// PEM file of CA certificates an `amqps://` connection trusts besides the system's trust
    /// store: the private CA (or self-signed certificate) of the broker.
    pub tls_ca_file: Option<PathBuf>,
    /// PEM certificate chain presented to the broker for client-certificate authentication;
    /// needs `tls-key-file`.
    pub tls_cert_file: Option<PathBuf>,
    /// Unencrypted PEM private key (PKCS#8, PKCS#1 or SEC1) of `tls-cert-file`. Its content
    /// never appears in `Debug` output or errors.
    pub tls_key_file: Option<PathBuf>,
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
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
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
            .field("tls_ca_file", &self.tls_ca_file)
            .field("tls_cert_file", &self.tls_cert_file)
            .field("tls_key_file", &self.tls_key_file)
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

    /// Checks the settings: a parseable `amqp://`/`amqps://` URI, sane backoff, and TLS files
    /// that exist and hold PEM certificates (and a key), set only with `amqps://`.
    ///
    /// ```
    /// assert!(bindery_rabbit::RabbitOptions::new("http://x").validate("mq").is_err());
    /// assert!(bindery_rabbit::RabbitOptions::new("amqps://u:p@mq:5671/prod").validate("mq").is_ok());
    /// let mut tls = bindery_rabbit::RabbitOptions::new("amqps://mq:5671/prod");
    /// tls.tls_ca_file = Some("missing-ca.pem".into());
    /// let e = tls.validate("mq").unwrap_err();
    /// assert!(e.to_string().contains("binders.mq.tls-ca-file") && e.to_string().contains("missing-ca.pem"), "{e}");
    /// ```
    pub fn validate(&self, binder: &str) -> Result<()> {
        self.checked(binder).map(|_| ())
    }

    /// [`validate`](Self::validate), returning the TLS settings read from the files.
    pub(crate) fn checked(&self, binder: &str) -> Result<OwnedTLSConfig> {
        let uri =
            self.uri.parse().map_err(|why| Error::config("configuration", format!("binders.{binder}.uri"), why))?;
        if self.reconnect_initial.is_zero() || self.reconnect_max < self.reconnect_initial {
            return Err(Error::config(
                "configuration",
                format!("binders.{binder}.reconnect-initial"),
                "must be above zero and at most `reconnect-max`",
            ));
        }
        self.tls_config(binder, uri.scheme == AMQPScheme::AMQPS)
    }

    /// Reads the TLS files. They only make sense with `amqps://`: with `amqp://` they are an
    /// error rather than a silently unencrypted connection.
    fn tls_config(&self, binder: &str, amqps: bool) -> Result<OwnedTLSConfig> {
        let key = |name: &str| format!("binders.{binder}.{name}");
        let files = [
            ("tls-ca-file", &self.tls_ca_file),
            ("tls-cert-file", &self.tls_cert_file),
            ("tls-key-file", &self.tls_key_file),
        ];
        if let (false, Some((name, _))) = (amqps, files.iter().find(|(_, f)| f.is_some())) {
            return Err(Error::config(
                "configuration",
                key(name),
                format!(
                    "TLS settings need an `amqps://` uri, but `uri` is `{}`: use amqps:// (port 5671 by default) or remove the tls-* keys",
                    self.uri.redacted()
                ),
            ));
        }
        let mut config = OwnedTLSConfig::default();
        if let Some(path) = &self.tls_ca_file {
            let pem = read_certificates(path).map_err(|why| Error::config("configuration", key("tls-ca-file"), why))?;
            config.cert_chain = Some(pem);
        }
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(cert), Some(private)) => {
                let pem =
                    read_certificates(cert).map_err(|why| Error::config("configuration", key("tls-cert-file"), why))?;
                let private = read_private_key(private)
                    .map_err(|why| Error::config("configuration", key("tls-key-file"), why))?;
                config.identity = Some(OwnedIdentity::PKCS8 { pem: pem.into_bytes(), key: private });
            }
            (Some(_), None) => {
                return Err(Error::config(
                    "configuration",
                    key("tls-key-file"),
                    "missing: `tls-cert-file` is set, and a client certificate needs its private key",
                ));
            }
            (None, Some(_)) => {
                return Err(Error::config(
                    "configuration",
                    key("tls-cert-file"),
                    "missing: `tls-key-file` is set, and a private key needs its client certificate",
                ));
            }
            (None, None) => {}
        }
        Ok(config)
    }
}

/// The PEM text of a file of certificates, checked the way the TLS layer will read it.
fn read_certificates(path: &Path) -> std::result::Result<String, String> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read `{shown}`: {e}"))?;
    let text = String::from_utf8(bytes).map_err(|_| format!("`{shown}` is not a PEM file (not text)"))?;
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(text.as_bytes()) {
        let cert = cert.map_err(|e| format!("`{shown}` is not valid PEM: {}", describe_pem_error(&e)))?;
        // Every X.509 certificate is a DER SEQUENCE.
        if cert.first() != Some(&0x30) {
            return Err(format!("certificate {} in `{shown}` is not an X.509 certificate", count + 1));
        }
        count += 1;
    }
    if count == 0 {
        return Err(format!("`{shown}` holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)"));
    }
    Ok(text)
}

/// A PEM parse error in words (the parser's own `Display` prints markers as byte lists).
fn describe_pem_error(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { end_marker } => {
            format!("a section has no `-----END {}-----` line", String::from_utf8_lossy(end_marker).trim())
        }
        pem::Error::IllegalSectionStart { line } => {
            format!("malformed line `{}`", String::from_utf8_lossy(line).trim())
        }
        pem::Error::Base64Decode(why) => format!("bad base64 ({why})"),
        other => other.to_string(),
    }
}

/// The bytes of a PEM private key file. Errors never quote the file's content.
fn read_private_key(path: &Path) -> std::result::Result<Vec<u8>, String> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read `{shown}`: {e}"))?;
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(_) => Ok(bytes),
        Err(pem::Error::NoItemsFound) => Err(format!(
            "`{shown}` holds no PEM private key (unencrypted PKCS#8 `BEGIN PRIVATE KEY`, PKCS#1 `BEGIN RSA PRIVATE KEY` or SEC1 `BEGIN EC PRIVATE KEY`)"
        )),
        Err(_) => Err(format!("`{shown}` is not a valid PEM private key")),
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

    /// Scratch files for one test, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(test: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("bindery-rabbit-{test}-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn file(&self, name: &str, content: &str) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, content).unwrap();
            path
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    // Syntactically a certificate and a key (a DER SEQUENCE), which is all the checks look at.
    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n";

    fn tls(ca: Option<&Path>, cert: Option<&Path>, key: Option<&Path>) -> RabbitOptions {
        let mut o = RabbitOptions::new("amqps://app:TopSecret@mq:5671/%2f");
        o.tls_ca_file = ca.map(Path::to_path_buf);
        o.tls_cert_file = cert.map(Path::to_path_buf);
        o.tls_key_file = key.map(Path::to_path_buf);
        o
    }

    fn error(o: &RabbitOptions) -> String {
        let e = o.validate("mq").unwrap_err();
        assert!(e.is_config(), "{e}");
        let text = e.to_string();
        assert!(!text.contains("TopSecret"), "{text}");
        text
    }

    #[test]
    fn tls_files_are_read_and_checked() {
        let dir = Scratch::new("tls");
        let (ca, cert, key) = (dir.file("ca.pem", CERT), dir.file("client.pem", CERT), dir.file("key.pem", KEY));
        let two = dir.file("two.pem", &format!("{CERT}{CERT}"));

        let config = tls(Some(&two), Some(&cert), Some(&key)).checked("mq").unwrap();
        assert_eq!(config.cert_chain.as_deref(), Some(format!("{CERT}{CERT}").as_str()));
        match config.identity {
            Some(OwnedIdentity::PKCS8 { pem, key }) => {
                assert_eq!(pem, CERT.as_bytes());
                assert_eq!(key, KEY.as_bytes());
            }
            other => panic!("expected a PEM identity, got {}", other.is_some()),
        }
        assert_eq!(tls(None, None, None).checked("mq").unwrap(), OwnedTLSConfig::default());
        let debug = format!("{:?}", tls(Some(&ca), Some(&cert), Some(&key)));
        assert!(debug.contains("key.pem") && !debug.contains("PRIVATE KEY"), "{debug}");

        let missing = dir.0.join("missing.pem");
        let text = error(&tls(Some(&missing), None, None));
        assert!(text.contains("binders.mq.tls-ca-file") && text.contains(&missing.display().to_string()), "{text}");
        assert!(text.contains("cannot read"), "{text}");

        let empty = dir.file("empty.pem", "");
        let text = error(&tls(Some(&empty), None, None));
        assert!(text.contains("binders.mq.tls-ca-file") && text.contains("no PEM certificate"), "{text}");

        let cut = dir.file("cut.pem", "-----BEGIN CERTIFICATE-----\nMAA=\n");
        let text = error(&tls(Some(&cut), None, None));
        assert!(text.contains("cut.pem") && text.contains("-----END CERTIFICATE-----"), "{text}");

        let not_der = dir.file("not-der.pem", "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n");
        let text = error(&tls(Some(&not_der), None, None));
        assert!(text.contains("not an X.509 certificate"), "{text}");

        let binary = dir.0.join("binary.der");
        std::fs::write(&binary, [0x30, 0x82, 0xff, 0xfe]).unwrap();
        let text = error(&tls(Some(&binary), None, None));
        assert!(text.contains("binary.der") && text.contains("not a PEM file"), "{text}");

        let text = error(&tls(None, Some(&cert), None));
        assert!(text.contains("binders.mq.tls-key-file") && text.contains("missing"), "{text}");
        let text = error(&tls(None, None, Some(&key)));
        assert!(text.contains("binders.mq.tls-cert-file") && text.contains("missing"), "{text}");

        let text = error(&tls(None, Some(&ca), Some(&cert)));
        assert!(text.contains("binders.mq.tls-key-file") && text.contains("no PEM private key"), "{text}");
        let bad_key = dir.file("bad-key.pem", "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n");
        let text = error(&tls(None, Some(&cert), Some(&bad_key)));
        assert!(text.contains("bad-key.pem") && text.contains("not a valid PEM private key"), "{text}");
        assert!(!text.contains("!!!!"), "the key file's content is never quoted: {text}");

        let mut plain = tls(Some(&ca), None, None);
        plain.uri = SecretUri::new("amqp://app:TopSecret@mq:5672/%2f");
        let text = error(&plain);
        assert!(text.contains("binders.mq.tls-ca-file") && text.contains("amqps://"), "{text}");
    }

    #[test]
    fn tls_keys_from_config() {
        let c = bindery::Config::from_toml_str(
            "[binders.mq]\ntype = \"rabbit\"\nuri = \"amqps://h/%2f\"\ntls-ca-file = \"ca.pem\"\n\
             tls-cert-file = \"c.pem\"\ntls-key-file = \"k.pem\"\n",
        )
        .unwrap();
        let o: RabbitOptions = c.binder_settings("mq").options().unwrap();
        assert_eq!(o.tls_ca_file, Some(PathBuf::from("ca.pem")));
        assert_eq!(o.tls_cert_file, Some(PathBuf::from("c.pem")));
        assert_eq!(o.tls_key_file, Some(PathBuf::from("k.pem")));
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
