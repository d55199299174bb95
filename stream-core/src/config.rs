//! Configuration: `bindery.toml` (or `.yaml`/`.json`), the `BINDERY_PROFILE` overlay and
//! `BINDERY_…` environment overrides, loaded with figment.
//!
//! ```
//! let config = bindery::Config::from_toml_str(r#"
//!     default-binder = "memory"
//!     [bindings.orders]
//!     destination = "orders.v1"
//!     group = "billing"
//!     [bindings.orders.consumer]
//!     max-attempts = 5
//!     backoff-initial = "250ms"
//! "#).unwrap();
//! let orders = config.binding("orders");
//! assert_eq!(orders.destination.as_deref(), Some("orders.v1"));
//! assert_eq!(orders.consumer.max_attempts, 5);
//! assert_eq!(orders.consumer.backoff_initial, std::time::Duration::from_millis(250));
//! assert_eq!(orders.consumer.backoff_max, std::time::Duration::from_secs(10)); // Spring's default
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Json, Toml, Yaml};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The whole configuration of an app.
///
/// ```
/// let config = bindery::Config::from_toml_str(r#"
///     default-binder = "kafka"
///     shutdown-timeout = "10s"
///     [bindings.invoices]
///     destination = "invoices.v1"
///     binder = "memory"
/// "#).unwrap();
/// assert_eq!(config.default_binder(), "kafka");
/// assert_eq!(config.shutdown_timeout(), std::time::Duration::from_secs(10));
/// assert_eq!(config.binding("invoices").destination.as_deref(), Some("invoices.v1"));
/// assert_eq!(config.binding("invoices").binder.as_deref(), Some("memory"));
/// assert!(bindery::Config::from_toml_str("no-such-key = 1").is_err()); // unknown keys are errors
/// ```
#[derive(Clone)]
pub struct Config {
    figment: Figment,
    root: RootConfig,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Binder settings may hold credentials: show only names and types.
        f.debug_struct("Config")
            .field("default_binder", &self.root.default_binder)
            .field("binders", &self.root.binders.iter().map(|(n, b)| (n, &b.kind)).collect::<Vec<_>>())
            .field("bindings", &self.root.bindings.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RootConfig {
    #[serde(default = "default_binder")]
    default_binder: String,
    #[serde(default)]
    instance_index: u32,
    #[serde(default = "one")]
    instance_count: u32,
    #[serde(default = "thirty_seconds", with = "humantime_serde")]
    shutdown_timeout: Duration,
    #[serde(default = "five_seconds", with = "humantime_serde")]
    binding_retry_interval: Duration,
    #[serde(default)]
    binders: BTreeMap<String, BinderEntry>,
    #[serde(default)]
    bindings: BTreeMap<String, BindingConfig>,
}

impl Default for RootConfig {
    fn default() -> Self {
        Self {
            default_binder: default_binder(),
            instance_index: 0,
            instance_count: 1,
            shutdown_timeout: thirty_seconds(),
            binding_retry_interval: five_seconds(),
            binders: BTreeMap::new(),
            bindings: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
struct BinderEntry {
    #[serde(rename = "type")]
    kind: String,
}

fn default_binder() -> String {
    "memory".to_string()
}
fn one() -> u32 {
    1
}
fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}
fn five_seconds() -> Duration {
    Duration::from_secs(5)
}

/// One binding's settings (`[bindings.<name>]`). Every field has Spring Cloud Stream's default.
///
/// ```
/// let b = bindery::BindingConfig::default();
/// assert_eq!(b.consumer.max_attempts, 3);
/// assert_eq!(b.consumer.concurrency, 1);
/// assert_eq!(b.producer.partition_count, 1);
/// ```
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub struct BindingConfig {
    /// Topic / exchange / memory topic; defaults to the binding name.
    pub destination: Option<String>,
    /// Consumer group; overrides the handler's `group` attribute.
    pub group: Option<String>,
    /// A `[binders.*]` name or a binder type; defaults to `default-binder`.
    pub binder: Option<String>,
    /// Content type of outputs and of inputs that carry no `contentType` header.
    pub content_type: Option<String>,
    /// Consumer settings.
    #[serde(default)]
    pub consumer: ConsumerConfig,
    /// Producer settings.
    #[serde(default)]
    pub producer: ProducerConfig,
    /// Binder-specific settings for this binding, checked by the binder.
    #[serde(default)]
    pub options: BTreeMap<String, serde_json::Value>,
}

/// Where a new consumer group starts reading (Kafka).
///
/// ```
/// let o: bindery::StartOffset = serde_json::from_str("\"earliest\"").unwrap();
/// assert_eq!(o, bindery::StartOffset::Earliest);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StartOffset {
    /// From the oldest retained message.
    Earliest,
    /// Only messages published after the consumer joined.
    Latest,
}

/// `[bindings.<name>.consumer]`.
///
/// ```
/// let c = bindery::ConsumerConfig::default();
/// assert_eq!(c.backoff_initial, std::time::Duration::from_secs(1));
/// assert_eq!(c.backoff_multiplier, 2.0);
/// assert_eq!(c.dead_letter, None); // resolved at bind time: true when a group is set
/// ```
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ConsumerConfig {
    /// Handler invocations in parallel; messages with one key still run in order.
    pub concurrency: usize,
    /// Attempts before dead-lettering; 1 = no retry.
    pub max_attempts: u32,
    /// First retry delay.
    #[serde(with = "humantime_serde")]
    pub backoff_initial: Duration,
    /// Factor applied to the delay after each retry.
    pub backoff_multiplier: f64,
    /// Largest retry delay.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// Dead-letter failed messages; default true when a group is set.
    pub dead_letter: Option<bool>,
    /// Where a new group starts; default earliest with a group, latest without.
    pub start_offset: Option<StartOffset>,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            concurrency: 1,
            max_attempts: 3,
            backoff_initial: Duration::from_secs(1),
            backoff_multiplier: 2.0,
            backoff_max: Duration::from_secs(10),
            dead_letter: None,
            start_offset: None,
        }
    }
}

/// `[bindings.<name>.producer]`.
///
/// ```
/// let p = bindery::ProducerConfig::default();
/// assert_eq!(p.partition_key, None);
/// ```
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ProducerConfig {
    /// `/json/pointer` into the payload, or `header:<name>`; becomes the message key.
    pub partition_key: Option<String>,
    /// Number of partitions of the destination.
    pub partition_count: u32,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self { partition_key: None, partition_count: 1 }
    }
}

/// Upper bound on `consumer.concurrency` (each unit is a task and queue).
const MAX_CONCURRENCY: usize = 1024;

const ROOT_KEYS: &[&str] = &[
    "default-binder",
    "instance-index",
    "instance-count",
    "shutdown-timeout",
    "binding-retry-interval",
    "binders",
    "bindings",
];
const BINDING_KEYS: &[&str] = &["destination", "group", "binder", "content-type", "consumer", "producer", "options"];
const CONSUMER_KEYS: &[&str] = &[
    "concurrency",
    "max-attempts",
    "backoff-initial",
    "backoff-multiplier",
    "backoff-max",
    "dead-letter",
    "start-offset",
];
const PRODUCER_KEYS: &[&str] = &["partition-key", "partition-count"];

/// Spring's relaxed binding: case, `-` and `_` do not matter.
fn relaxed(s: &str) -> String {
    s.chars().filter(|c| *c != '-' && *c != '_').flat_map(char::to_lowercase).collect()
}

fn kebab(s: &str) -> String {
    s.to_lowercase().replace('_', "-")
}

fn pick(segment: &str, known: &[String]) -> String {
    let r = relaxed(segment);
    known.iter().find(|k| relaxed(k) == r).cloned().unwrap_or_else(|| kebab(segment))
}

/// Maps one `BINDERY_` variable (prefix removed) onto a dotted config key.
fn env_key(var: &str, bindings: &[String], binders: &[String]) -> Vec<String> {
    let owned = |keys: &[&str]| keys.iter().map(|k| k.to_string()).collect::<Vec<_>>();
    let segments: Vec<&str> = var.split("__").collect();
    let mut out = Vec::with_capacity(segments.len());
    let mut schema = owned(ROOT_KEYS);
    let mut i = 0;
    while i < segments.len() {
        let key = pick(segments[i], &schema);
        let next = match (out.len(), out.first().map(String::as_str), key.as_str()) {
            (0, _, "bindings") => bindings.to_vec(),
            (0, _, "binders") => binders.to_vec(),
            (1, Some("bindings"), _) => owned(BINDING_KEYS),
            (2, Some("bindings"), "consumer") => owned(CONSUMER_KEYS),
            (2, Some("bindings"), "producer") => owned(PRODUCER_KEYS),
            (2, Some("binders"), "config") => {
                // Passed to the client untouched: `SASL_PASSWORD` becomes the one key `sasl.password`.
                out.push(key);
                out.push(segments[i + 1..].join("_").to_lowercase().replace('_', "."));
                out.retain(|s| !s.is_empty());
                return out;
            }
            _ => Vec::new(),
        };
        out.push(key);
        schema = next;
        i += 1;
    }
    out.retain(|s| !s.is_empty());
    out
}

/// `BINDERY_…` variables as a figment provider, keys mapped with relaxed binding.
struct EnvVars {
    dict: figment::value::Dict,
}

impl EnvVars {
    fn from_vars(vars: impl IntoIterator<Item = (String, String)>, bindings: &[String], binders: &[String]) -> Self {
        let mut dict = figment::value::Dict::new();
        for (name, value) in vars {
            let Some(rest) = name.strip_prefix("BINDERY_") else { continue };
            if rest.eq_ignore_ascii_case("PROFILE") || rest.is_empty() {
                continue;
            }
            let path = env_key(rest, bindings, binders);
            // Values stay text; extraction converts them to the target type ("5" for a number,
            // "2024" for a group name), as Spring's relaxed binding does.
            let mut value = figment::value::Value::from(value);
            for segment in path.iter().rev() {
                let mut d = figment::value::Dict::new();
                d.insert(segment.clone(), value);
                value = figment::value::Value::from(d);
            }
            if let figment::value::Value::Dict(_, nested) = value {
                merge_dict(&mut dict, nested);
            }
        }
        Self { dict }
    }
}

fn merge_dict(into: &mut figment::value::Dict, from: figment::value::Dict) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(figment::value::Value::Dict(_, a)), figment::value::Value::Dict(_, b)) => merge_dict(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

impl figment::Provider for EnvVars {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named("BINDERY_ environment variable")
    }

    fn data(&self) -> std::result::Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        Ok(figment::Profile::Default.collect(self.dict.clone()))
    }
}

/// Where a config value came from, for error messages.
fn describe(md: Option<&figment::Metadata>) -> String {
    match md {
        Some(md) => match &md.source {
            Some(figment::Source::File(path)) => path.display().to_string(),
            Some(other) => format!("{} ({other})", md.name),
            None => md.name.to_string(),
        },
        None => "configuration".to_string(),
    }
}

fn figment_error(e: figment::Error) -> Error {
    let first = e.into_iter().next();
    match first {
        Some(e) => {
            let mut key = e.path.join(".");
            let what = match &e.kind {
                figment::error::Kind::UnknownField(field, expected) => {
                    if e.path.last() != Some(field) {
                        key = if key.is_empty() { field.clone() } else { format!("{key}.{field}") };
                    }
                    if expected.is_empty() {
                        "unknown key".to_string()
                    } else {
                        format!("unknown key; expected one of: {}", expected.join(", "))
                    }
                }
                other => other.to_string(),
            };
            let key = if key.is_empty() { "<root>".to_string() } else { key };
            Error::config(describe(e.metadata.as_ref()), key, what)
        }
        None => Error::new(crate::ErrorKind::Config, "invalid configuration"),
    }
}

impl Default for Config {
    fn default() -> Self {
        Self { figment: Figment::new(), root: RootConfig::default() }
    }
}

impl Config {
    /// Loads `path` (TOML, YAML or JSON by extension), then `<stem>-<profile>.<ext>` beside it
    /// when `BINDERY_PROFILE` is set, then `BINDERY_…` environment variables.
    ///
    /// A missing base file is an error; a missing profile file is not (Spring's behaviour).
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("bindery-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("bindery.toml");
    /// std::fs::write(&path, "[bindings.orders]\ngroupp = \"x\"\n").unwrap();
    /// let err = bindery::Config::load(&path).unwrap_err();
    /// assert!(err.to_string().contains("bindings.orders.groupp"), "{err}");
    /// assert!(err.to_string().contains("bindery.toml"), "{err}");
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        Self::load_with_handlers(path, &[])
    }

    pub(crate) fn load_with_handlers(path: impl AsRef<Path>, handler_bindings: &[String]) -> Result<Self> {
        let figment = Self::file_layers(path.as_ref(), std::env::var("BINDERY_PROFILE").ok())?;
        Self::finish(figment, handler_bindings)
    }

    fn file_layers(path: &Path, profile: Option<String>) -> Result<Figment> {
        if !path.is_file() {
            return Err(Error::config(
                path.display(),
                "<file>",
                "file not found; pass the path of bindery.toml (or .yaml/.json)",
            ));
        }
        let mut figment = Figment::new().merge(file_provider(path)?);
        if let Some(profile) = profile {
            let profile_path = profile_path(path, &profile);
            if profile_path.is_file() {
                figment = figment.merge(file_provider(&profile_path)?);
            } else {
                tracing::info!(path = %profile_path.display(), "no profile config file; using the base file only");
            }
        }
        Ok(figment)
    }

    /// Parses TOML text with the given variables standing in for the process environment
    /// (only `BINDERY_…` ones are read). For tests of environment overrides.
    ///
    /// ```
    /// let c = bindery::Config::from_toml_str_with_env(
    ///     "[bindings.orders-in]\ngroup = \"a\"",
    ///     [("BINDERY_BINDINGS__ORDERS_IN__GROUP".to_string(), "b".to_string())],
    /// ).unwrap();
    /// assert_eq!(c.binding("orders-in").group.as_deref(), Some("b"));
    /// ```
    pub fn from_toml_str_with_env(toml: &str, vars: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        Self::finish_with_env(Figment::new().merge(Toml::string(toml)), &[], vars)
    }

    /// Like [`load`](Self::load), with the given variables standing in for the process
    /// environment (including `BINDERY_PROFILE`).
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("bindery-doc-env-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// std::fs::write(dir.join("bindery.yaml"), "default-binder: memory\n").unwrap();
    /// std::fs::write(dir.join("bindery-prod.yaml"), "default-binder: kafka\n").unwrap();
    /// let env = [("BINDERY_PROFILE".to_string(), "prod".to_string())];
    /// let c = bindery::Config::load_with_env(dir.join("bindery.yaml"), env).unwrap();
    /// assert_eq!(c.default_binder(), "kafka");
    /// ```
    pub fn load_with_env(path: impl AsRef<Path>, vars: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let vars: Vec<(String, String)> = vars.into_iter().collect();
        let profile = vars.iter().find(|(k, _)| k == "BINDERY_PROFILE").map(|(_, v)| v.clone());
        let figment = Self::file_layers(path.as_ref(), profile)?;
        Self::finish_with_env(figment, &[], vars)
    }

    /// Parses TOML text (no profile overlay, but `BINDERY_…` variables still apply).
    ///
    /// ```
    /// let err = bindery::Config::from_toml_str("shutdown-timeout = \"soon\"").unwrap_err();
    /// assert!(err.to_string().contains("shutdown-timeout"), "{err}");
    /// ```
    pub fn from_toml_str(toml: &str) -> Result<Self> {
        Self::finish(Figment::new().merge(Toml::string(toml)), &[])
    }

    pub(crate) fn from_figment(figment: Figment, handler_bindings: &[String]) -> Result<Self> {
        Self::finish(figment, handler_bindings)
    }

    fn finish(figment: Figment, handler_bindings: &[String]) -> Result<Self> {
        Self::finish_with_env(figment, handler_bindings, std::env::vars())
    }

    fn finish_with_env(
        figment: Figment,
        handler_bindings: &[String],
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self> {
        // Names already known let `BINDERY_BINDINGS__ORDERS_IN__GROUP` find binding `orders-in`.
        let names = |key: &str| -> Vec<String> {
            figment
                .find_value(key)
                .ok()
                .and_then(|v| v.into_dict())
                .map(|d| d.into_keys().collect())
                .unwrap_or_default()
        };
        let mut bindings = names("bindings");
        bindings.extend(handler_bindings.iter().cloned());
        let binders = names("binders");
        let env = EnvVars::from_vars(vars, &bindings, &binders);
        let figment = figment.merge(env);
        let root: RootConfig = figment.extract_lossy().map_err(figment_error)?;
        // A rule broken at `key`: the error names the key and where it was set.
        let invalid = |key: String, what: String| Error::config(describe(figment.find_metadata(&key)), &key, what);
        for (name, entry) in &root.binders {
            if entry.kind.trim().is_empty() {
                return Err(invalid(format!("binders.{name}.type"), "must name a binder type".into()));
            }
        }
        if root.instance_count == 0 {
            return Err(invalid("instance-count".into(), "must be at least 1".into()));
        }
        if root.instance_index >= root.instance_count {
            return Err(invalid(
                "instance-index".into(),
                format!("must be below instance-count ({})", root.instance_count),
            ));
        }
        for (name, b) in &root.bindings {
            let c = &b.consumer;
            let key = |k: &str| format!("bindings.{name}.{k}");
            if c.max_attempts == 0 {
                return Err(invalid(key("consumer.max-attempts"), "must be at least 1 (1 = no retry)".into()));
            }
            if c.concurrency == 0 || c.concurrency > MAX_CONCURRENCY {
                return Err(invalid(key("consumer.concurrency"), format!("must be between 1 and {MAX_CONCURRENCY}")));
            }
            if !(c.backoff_multiplier.is_finite() && c.backoff_multiplier >= 1.0) {
                return Err(invalid(key("consumer.backoff-multiplier"), "must be a number >= 1.0".into()));
            }
            if b.producer.partition_count == 0 {
                return Err(invalid(key("producer.partition-count"), "must be at least 1".into()));
            }
            if let Some(selector) = &b.producer.partition_key {
                if !(selector.starts_with('/') || selector.starts_with("header:")) {
                    return Err(invalid(
                        key("producer.partition-key"),
                        "expected a JSON pointer such as \"/customer\" or \"header:<name>\"".into(),
                    ));
                }
            }
        }
        Ok(Self { figment, root })
    }

    /// Where `key` was set (a file path, or the environment), for error messages.
    pub(crate) fn source_of(&self, key: &str) -> String {
        describe(self.figment.find_metadata(key))
    }

    /// The binder used by bindings that name none.
    ///
    /// ```
    /// assert_eq!(bindery::Config::default().default_binder(), "memory");
    /// ```
    pub fn default_binder(&self) -> &str {
        &self.root.default_binder
    }

    /// This instance's index among `instance-count` (partitioned consumers).
    ///
    /// ```
    /// assert_eq!(bindery::Config::default().instance_index(), 0);
    /// ```
    pub fn instance_index(&self) -> u32 {
        self.root.instance_index
    }

    /// How many instances share partitioned destinations.
    ///
    /// ```
    /// assert_eq!(bindery::Config::default().instance_count(), 1);
    /// ```
    pub fn instance_count(&self) -> u32 {
        self.root.instance_count
    }

    /// Upper bound on graceful shutdown.
    ///
    /// ```
    /// assert_eq!(bindery::Config::default().shutdown_timeout(), std::time::Duration::from_secs(30));
    /// ```
    pub fn shutdown_timeout(&self) -> Duration {
        self.root.shutdown_timeout
    }

    /// Delay between attempts to create a binding while its broker is down.
    ///
    /// ```
    /// assert_eq!(bindery::Config::default().binding_retry_interval(), std::time::Duration::from_secs(5));
    /// ```
    pub fn binding_retry_interval(&self) -> Duration {
        self.root.binding_retry_interval
    }

    /// The settings of binding `name` (defaults when it has no section).
    ///
    /// ```
    /// let c = bindery::Config::default();
    /// assert_eq!(c.binding("anything").consumer.max_attempts, 3);
    /// ```
    pub fn binding(&self, name: &str) -> BindingConfig {
        self.root.bindings.get(name).cloned().unwrap_or_default()
    }

    /// Names of the bindings with a `[bindings.*]` section.
    ///
    /// ```
    /// let c = bindery::Config::from_toml_str("[bindings.a]\n[bindings.b]").unwrap();
    /// assert_eq!(c.binding_names().collect::<Vec<_>>(), ["a", "b"]);
    /// ```
    pub fn binding_names(&self) -> impl Iterator<Item = &str> {
        self.root.bindings.keys().map(String::as_str)
    }

    /// Names of the `[binders.*]` entries.
    ///
    /// ```
    /// let c = bindery::Config::from_toml_str("[binders.mq]\ntype = \"memory\"").unwrap();
    /// assert_eq!(c.binder_names().collect::<Vec<_>>(), ["mq"]);
    /// ```
    pub fn binder_names(&self) -> impl Iterator<Item = &str> {
        self.root.binders.keys().map(String::as_str)
    }

    /// Resolves a binder reference (an entry name, else a type name) to settings.
    ///
    /// ```
    /// let c = bindery::Config::from_toml_str("[binders.mq]\ntype = \"rabbit\"").unwrap();
    /// assert_eq!(c.binder_settings("mq").kind(), "rabbit");
    /// assert_eq!(c.binder_settings("kafka").kind(), "kafka"); // a type with its defaults
    /// ```
    pub fn binder_settings(&self, reference: &str) -> BinderSettings {
        match self.root.binders.get(reference) {
            Some(entry) => BinderSettings {
                name: reference.to_string(),
                kind: entry.kind.clone(),
                figment: Some(self.figment.clone()),
            },
            None => BinderSettings { name: reference.to_string(), kind: reference.to_string(), figment: None },
        }
    }

    /// Overrides, used by test harnesses: sets `default-binder` and every binding's binder.
    pub(crate) fn force_binder(&mut self, binder: &str) {
        self.root.default_binder = binder.to_string();
        for b in self.root.bindings.values_mut() {
            b.binder = Some(binder.to_string());
        }
    }
}

/// One binder instance's settings: its name, type and type-specific keys.
///
/// ```
/// #[derive(Debug, serde::Deserialize)]
/// #[serde(rename_all = "kebab-case", deny_unknown_fields)]
/// struct MqOptions { uri: String }
///
/// let c = bindery::Config::from_toml_str("[binders.mq]\ntype = \"rabbit\"\nurl = \"amqp://x\"").unwrap();
/// let err = c.binder_settings("mq").options::<MqOptions>().unwrap_err();
/// assert!(err.to_string().contains("binders.mq.url"), "{err}");
/// ```
#[derive(Clone)]
pub struct BinderSettings {
    name: String,
    kind: String,
    figment: Option<Figment>,
}

impl std::fmt::Debug for BinderSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BinderSettings").field("name", &self.name).field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl BinderSettings {
    /// Settings for a binder of `kind` with all defaults (no config entry).
    ///
    /// ```
    /// let s = bindery::BinderSettings::defaults("memory");
    /// assert_eq!((s.name(), s.kind()), ("memory", "memory"));
    /// ```
    pub fn defaults(kind: &str) -> Self {
        Self { name: kind.to_string(), kind: kind.to_string(), figment: None }
    }

    /// The entry name (`main` for `[binders.main]`), or the type when used directly.
    ///
    /// ```
    /// assert_eq!(bindery::BinderSettings::defaults("kafka").name(), "kafka");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The binder type, e.g. `kafka`.
    ///
    /// ```
    /// assert_eq!(bindery::BinderSettings::defaults("kafka").kind(), "kafka");
    /// ```
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// Deserializes the type-specific keys (everything in the entry but `type`) into `T`.
    /// Errors name the key and the file it came from.
    ///
    /// ```
    /// #[derive(serde::Deserialize, Default)]
    /// #[serde(default)]
    /// struct Opts { broker: String }
    /// let s = bindery::BinderSettings::defaults("memory");
    /// assert_eq!(s.options::<Opts>().unwrap().broker, "");
    /// ```
    pub fn options<T: DeserializeOwned>(&self) -> Result<T> {
        let Some(figment) = &self.figment else {
            return T::deserialize(serde_json::Value::Object(Default::default()))
                .map_err(|e| Error::config("defaults", format!("binders.{}", self.name), e));
        };
        let key = format!("binders.{}", self.name);
        let mut dict = figment.find_value(&key).ok().and_then(|v| v.into_dict()).unwrap_or_default();
        dict.remove("type");
        let source = describe(figment.find_metadata(&key));
        // A figment of just this entry, so values from the environment convert like any other.
        let entry = Figment::from(figment::providers::Serialized::defaults(dict));
        entry.extract_lossy::<T>().map_err(|e| {
            let first = e.into_iter().next();
            match first {
                Some(e) => {
                    let mut path = e.path.clone();
                    if let figment::error::Kind::UnknownField(field, _) = &e.kind {
                        if path.last() != Some(field) {
                            path.push(field.clone());
                        }
                    }
                    let what = match &e.kind {
                        figment::error::Kind::UnknownField(_, expected) if !expected.is_empty() => {
                            format!("unknown key; expected one of: {}", expected.join(", "))
                        }
                        figment::error::Kind::UnknownField(..) => "unknown key".to_string(),
                        other => other.to_string(),
                    };
                    let full = std::iter::once(key.clone()).chain(path).collect::<Vec<_>>().join(".");
                    Error::config(&source, full, what)
                }
                None => Error::config(&source, &key, "invalid binder settings"),
            }
        })
    }
}

fn file_provider(path: &Path) -> Result<Figment> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let provider = match ext.as_str() {
        "toml" => Figment::from(Toml::file_exact(path)),
        "yaml" | "yml" => Figment::from(Yaml::file_exact(path)),
        "json" => Figment::from(Json::file_exact(path)),
        other => {
            return Err(Error::config(
                path.display(),
                "<file>",
                format!("unsupported extension `{other}`; use .toml, .yaml or .json"),
            ));
        }
    };
    Ok(provider)
}

fn profile_path(path: &Path, profile: &str) -> PathBuf {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("bindery");
    let ext = path.extension().and_then(|s| s.to_str()).unwrap_or("toml");
    path.with_file_name(format!("{stem}-{profile}.{ext}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_keys_follow_relaxed_binding() {
        let bindings = vec!["orders-in".to_string()];
        let binders = vec!["main".to_string()];
        let env_key = |v: &str, b: &[String], d: &[String]| env_key(v, b, d).join(".");
        assert_eq!(env_key("DEFAULT_BINDER", &bindings, &binders), "default-binder");
        assert_eq!(env_key("BINDINGS__ORDERS_IN__GROUP", &bindings, &binders), "bindings.orders-in.group");
        assert_eq!(
            env_key("BINDINGS__ORDERS_IN__CONSUMER__MAX_ATTEMPTS", &bindings, &binders),
            "bindings.orders-in.consumer.max-attempts"
        );
        assert_eq!(env_key("BINDINGS__NEW_ONE__DESTINATION", &bindings, &binders), "bindings.new-one.destination");
        assert_eq!(
            env_key("BINDERS__MAIN__CONFIG__SASL_PASSWORD", &bindings, &binders),
            "binders.main.config.sasl.password"
        );
        assert_eq!(env_key("BINDERS__MAIN__TYPE", &bindings, &binders), "binders.main.type");
    }

    #[test]
    fn unknown_root_key_is_named() {
        let err = Config::from_toml_str("default-bindr = \"kafka\"").unwrap_err();
        assert!(err.is_config());
        assert!(err.to_string().contains("`default-bindr`"), "{err}");
        assert!(err.to_string().contains("default-binder"), "should list the expected keys: {err}");
    }

    #[test]
    fn bad_duration_names_key() {
        let err = Config::from_toml_str("[bindings.o.consumer]\nbackoff-max = 5").unwrap_err();
        assert!(err.to_string().contains("bindings.o.consumer.backoff-max"), "{err}");
    }

    #[test]
    fn invalid_values_are_rejected() {
        for (toml, key) in [
            ("[bindings.o.consumer]\nmax-attempts = 0", "max-attempts"),
            ("[bindings.o.consumer]\nconcurrency = 0", "concurrency"),
            ("[bindings.o.consumer]\nbackoff-multiplier = 0.5", "backoff-multiplier"),
            ("[bindings.o.producer]\npartition-key = \"customer\"", "partition-key"),
            ("instance-index = 2\ninstance-count = 2", "instance-index"),
            ("[binders.x]\ntype = \"\"", "binders.x.type"),
        ] {
            let err = Config::from_toml_str(toml).unwrap_err();
            assert!(err.to_string().contains(key), "{toml}: {err}");
        }
    }
}
