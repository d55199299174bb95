//! `[binders.<name>]` settings of a `kafka` binder and `[bindings.<name>.options]` of its bindings.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use rdkafka::ClientConfig;
use serde::Deserialize;

/// Settings of one `kafka` binder: `[binders.<name>]` minus `type`.
///
/// Every key is kebab-case and unknown keys are errors. The `config` table goes to librdkafka
/// untouched (after bindery's own defaults, so it can override them). Values of keys that look
/// secret (`sasl.password`, `ssl.key.password`, anything naming a password, secret or token)
/// never appear in `Debug` output, logs or errors.
///
/// ```
/// let c = bindery::Config::from_toml_str(r#"
/// [binders.main]
/// type = "kafka"
/// brokers = "10.0.0.1:9092,10.0.0.2:9092"
/// replication-factor = 3
/// [binders.main.config]
/// "security.protocol" = "SASL_SSL"
/// "sasl.password" = "hunter2"
/// "#).unwrap();
/// let opts: bindery_kafka::KafkaOptions = c.binder_settings("main").options().unwrap();
/// assert_eq!(opts.brokers, "10.0.0.1:9092,10.0.0.2:9092");
/// assert_eq!(opts.replication_factor, 3);
/// assert!(!format!("{opts:?}").contains("hunter2"));
/// ```
#[derive(Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct KafkaOptions {
    /// `bootstrap.servers`: comma-separated `host:port` list. Default `127.0.0.1:9092`.
    pub brokers: String,
    /// librdkafka properties, passed through untouched (`security.protocol`, `sasl.*`, `ssl.*`, ...).
    pub config: BTreeMap<String, ConfigValue>,
    /// Replication factor of topics the binder creates; `-1` (default) takes the broker's default.
    pub replication_factor: i16,
    /// Fewest partitions of any topic the binder creates or grows, as Spring's
    /// `minPartitionCount` (default 1). Consumers create missing topics with this many.
    pub min_partition_count: u32,
    /// Create missing topics on bind (default true).
    pub auto_create_topics: bool,
    /// Grow a topic that has fewer partitions than a producer's `partition-count` (default
    /// true); when false, such a topic is a bind error.
    pub auto_add_partitions: bool,
    /// How long a bind waits for the broker before failing (the runtime then retries after
    /// `binding-retry-interval`). Default 10s.
    #[serde(with = "humantime_serde")]
    pub bind_timeout: Duration,
    /// How often consumers refresh lag and broker state for health (librdkafka statistics).
    /// Default 5s.
    #[serde(with = "humantime_serde")]
    pub health_interval: Duration,
    /// How often finished offsets are committed (`auto.commit.interval.ms`). Default 1s.
    #[serde(with = "humantime_serde")]
    pub commit_interval: Duration,
}

impl Default for KafkaOptions {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            config: BTreeMap::new(),
            replication_factor: -1,
            min_partition_count: 1,
            auto_create_topics: true,
            auto_add_partitions: true,
            bind_timeout: Duration::from_secs(10),
            health_interval: Duration::from_secs(5),
            commit_interval: Duration::from_secs(1),
        }
    }
}

/// A librdkafka property value as written in config: text, number or boolean.
///
/// ```
/// use bindery_kafka::ConfigValue;
/// assert_eq!(ConfigValue::Int(5).to_string(), "5");
/// assert_eq!(ConfigValue::Bool(true).to_string(), "true");
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ConfigValue {
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A fractional number.
    Float(f64),
    /// Text.
    Text(String),
}

impl fmt::Display for ConfigValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigValue::Bool(b) => write!(f, "{b}"),
            ConfigValue::Int(i) => write!(f, "{i}"),
            ConfigValue::Float(x) => write!(f, "{x}"),
            ConfigValue::Text(s) => f.write_str(s),
        }
    }
}

/// True for librdkafka property names whose values must never be shown.
///
/// ```
/// assert!(bindery_kafka::is_secret_key("sasl.password"));
/// assert!(bindery_kafka::is_secret_key("ssl.key.password"));
/// assert!(bindery_kafka::is_secret_key("sasl.oauthbearer.client.secret"));
/// assert!(!bindery_kafka::is_secret_key("security.protocol"));
/// ```
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "secret", "token", "sasl.jaas.config", "ssl.key.pem", "private.key"]
        .iter()
        .any(|needle| k.contains(needle))
        || k == "sasl.oauthbearer.config"
}

const REDACTED: &str = "<redacted>";

impl fmt::Debug for KafkaOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config: BTreeMap<&str, String> = self
            .config
            .iter()
            .map(|(k, v)| (k.as_str(), if is_secret_key(k) { REDACTED.to_string() } else { v.to_string() }))
            .collect();
        f.debug_struct("KafkaOptions")
            .field("brokers", &self.brokers)
            .field("config", &config)
            .field("replication_factor", &self.replication_factor)
            .field("min_partition_count", &self.min_partition_count)
            .field("auto_create_topics", &self.auto_create_topics)
            .field("auto_add_partitions", &self.auto_add_partitions)
            .field("bind_timeout", &self.bind_timeout)
            .field("health_interval", &self.health_interval)
            .field("commit_interval", &self.commit_interval)
            .finish()
    }
}

impl KafkaOptions {
    /// Removes every secret value of this binder's config from `text` (for error messages
    /// that quote librdkafka, which may echo a value it rejected).
    ///
    /// ```
    /// let mut o = bindery_kafka::KafkaOptions::default();
    /// o.config.insert("sasl.password".into(), bindery_kafka::ConfigValue::Text("hunter2".into()));
    /// assert_eq!(o.redact("bad value \"hunter2\""), "bad value \"<redacted>\"");
    /// ```
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (k, v) in &self.config {
            let v = v.to_string();
            if is_secret_key(k) && !v.is_empty() {
                out = out.replace(&v, REDACTED);
            }
        }
        out
    }

    /// The librdkafka config common to every client of this binder: brokers, bindery's
    /// defaults, then the user's `config` table (which wins).
    pub(crate) fn client_config(
        &self,
        defaults: &[(&str, String)],
        overrides: &BTreeMap<String, ConfigValue>,
    ) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        c.set("statistics.interval.ms", self.health_interval.as_millis().max(1).to_string());
        for (k, v) in defaults {
            c.set(*k, v);
        }
        for (k, v) in self.config.iter().chain(overrides) {
            c.set(k, v.to_string());
        }
        c
    }
}

/// Binding-level options of a Kafka binding: `[bindings.<name>.options]`.
///
/// ```
/// let c = bindery::Config::from_toml_str(r#"
/// [bindings.orders.options.config]
/// "fetch.min.bytes" = 1024
/// "#).unwrap();
/// let options = c.binding("orders").options;
/// let opts = bindery_kafka::KafkaBindingOptions::from_map("orders", &options.into_iter().collect()).unwrap();
/// assert_eq!(opts.config["fetch.min.bytes"].to_string(), "1024");
/// ```
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct KafkaBindingOptions {
    /// librdkafka properties for this binding's client only (its own producer or consumer).
    pub config: BTreeMap<String, ConfigValue>,
}

impl KafkaBindingOptions {
    /// Reads a binding's options, naming the binding and key on error.
    ///
    /// ```
    /// let mut m = serde_json::Map::new();
    /// m.insert("colour".into(), serde_json::json!("red"));
    /// let e = bindery_kafka::KafkaBindingOptions::from_map("orders", &m).unwrap_err();
    /// assert!(e.to_string().contains("bindings.orders.options"), "{e}");
    /// ```
    pub fn from_map(binding: &str, options: &serde_json::Map<String, serde_json::Value>) -> bindery::Result<Self> {
        serde_json::from_value(serde_json::Value::Object(options.clone())).map_err(|e| {
            bindery::Error::config(
                "configuration",
                format!("bindings.{binding}.options"),
                format!("{e} (the kafka binder takes `config`, a table of librdkafka properties)"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> bindery::Result<KafkaOptions> {
        bindery::Config::from_toml_str(toml)?.binder_settings("k").options()
    }

    #[test]
    fn defaults_and_overrides() {
        let o = parse("[binders.k]\ntype = \"kafka\"\n").unwrap();
        assert_eq!(o.brokers, "127.0.0.1:9092");
        assert_eq!(o.replication_factor, -1);
        assert!(o.auto_create_topics && o.auto_add_partitions);
        let o = parse(
            "[binders.k]\ntype = \"kafka\"\nbrokers = \"b:1\"\nauto-add-partitions = false\nbind-timeout = \"3s\"\n[binders.k.config]\n\"linger.ms\" = 5\n\"enable.ssl.certificate.verification\" = false\n",
        )
        .unwrap();
        assert_eq!(o.brokers, "b:1");
        assert!(!o.auto_add_partitions);
        assert_eq!(o.bind_timeout, Duration::from_secs(3));
        assert_eq!(o.config["linger.ms"], ConfigValue::Int(5));
        let c = o.client_config(&[("linger.ms", "0".into())], &BTreeMap::new());
        assert_eq!(c.get("linger.ms"), Some("5"), "user config wins over bindery defaults");
        assert_eq!(c.get("enable.ssl.certificate.verification"), Some("false"));
        assert_eq!(c.get("bootstrap.servers"), Some("b:1"));
    }

    #[test]
    fn unknown_keys_name_key() {
        let e = parse("[binders.k]\ntype = \"kafka\"\nbroker = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("binders.k.broker"), "{e}");
        let e = parse("[binders.k]\ntype = \"kafka\"\nbind-timeout = \"soon\"\n").unwrap_err();
        assert!(e.to_string().contains("binders.k.bind-timeout"), "{e}");
    }

    #[test]
    fn secrets_never_in_debug_or_redacted_text() {
        let o = parse(
            "[binders.k]\ntype = \"kafka\"\n[binders.k.config]\n\"sasl.password\" = \"pa55-word\"\n\"ssl.key.password\" = \"k3y-pass\"\n\"sasl.oauthbearer.client.secret\" = \"s3cr3t\"\n\"sasl.username\" = \"alice\"\n",
        )
        .unwrap();
        let dbg = format!("{o:?}");
        for secret in ["pa55-word", "k3y-pass", "s3cr3t"] {
            assert!(!dbg.contains(secret), "{dbg}");
            assert_eq!(o.redact(&format!("x {secret} y")), "x <redacted> y");
        }
        assert!(dbg.contains("alice"), "non-secret values stay visible: {dbg}");
    }

    #[test]
    fn binding_options_reject_unknown() {
        let mut m = serde_json::Map::new();
        m.insert("config".into(), serde_json::json!({"fetch.min.bytes": 1}));
        assert!(KafkaBindingOptions::from_map("b", &m).is_ok());
        m.insert("partitions".into(), serde_json::json!(3));
        let e = KafkaBindingOptions::from_map("b", &m).unwrap_err();
        assert!(e.to_string().contains("partitions") && e.to_string().contains("bindings.b.options"), "{e}");
    }
}
