//! Configuration loading through the public API: files in every supported format, the
//! `BINDERY_PROFILE` overlay, `BINDERY_…` environment overrides with Spring's relaxed binding,
//! error messages and Spring Cloud Stream defaults.
//!
//! Environment variables are passed explicitly (`*_with_env`), never set on the process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bindery::{Config, StartOffset};

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("bindery-config-it-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// Writes `file` in the directory and returns its path.
    fn write(&self, file: &str, text: &str) -> PathBuf {
        let path = self.0.join(file);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

/// The file name as it appears in error messages (the path is printed with `display`).
fn shown(path: &Path) -> String {
    path.display().to_string()
}

const FULL_TOML: &str = r#"
default-binder = "main"
instance-index = 1
instance-count = 3
shutdown-timeout = "45s"
binding-retry-interval = "250ms"

[binders.main]
type = "kafka"
brokers = "127.0.0.1:9092"

[binders.mq]
type = "rabbit"
uri = "amqp://127.0.0.1:5672/%2f"

[bindings.orders-in]
destination = "orders.v1"
group = "billing"
binder = "mq"
content-type = "text/plain"

[bindings.orders-in.consumer]
concurrency = 4
max-attempts = 5
backoff-initial = "250ms"
backoff-multiplier = 3.0
backoff-max = "1m"
dead-letter = false
start-offset = "latest"

[bindings.invoices-out.producer]
partition-key = "/order"
partition-count = 4
"#;

const FULL_YAML: &str = r#"
default-binder: main
instance-index: 1
instance-count: 3
shutdown-timeout: 45s
binding-retry-interval: 250ms
binders:
  main:
    type: kafka
    brokers: "127.0.0.1:9092"
  mq:
    type: rabbit
    uri: "amqp://127.0.0.1:5672/%2f"
bindings:
  orders-in:
    destination: orders.v1
    group: billing
    binder: mq
    content-type: text/plain
    consumer:
      concurrency: 4
      max-attempts: 5
      backoff-initial: 250ms
      backoff-multiplier: 3.0
      backoff-max: 1m
      dead-letter: false
      start-offset: latest
  invoices-out:
    producer:
      partition-key: /order
      partition-count: 4
"#;

const FULL_JSON: &str = r#"{
  "default-binder": "main",
  "instance-index": 1,
  "instance-count": 3,
  "shutdown-timeout": "45s",
  "binding-retry-interval": "250ms",
  "binders": {
    "main": { "type": "kafka", "brokers": "127.0.0.1:9092" },
    "mq": { "type": "rabbit", "uri": "amqp://127.0.0.1:5672/%2f" }
  },
  "bindings": {
    "orders-in": {
      "destination": "orders.v1",
      "group": "billing",
      "binder": "mq",
      "content-type": "text/plain",
      "consumer": {
        "concurrency": 4,
        "max-attempts": 5,
        "backoff-initial": "250ms",
        "backoff-multiplier": 3.0,
        "backoff-max": "1m",
        "dead-letter": false,
        "start-offset": "latest"
      }
    },
    "invoices-out": {
      "producer": { "partition-key": "/order", "partition-count": 4 }
    }
  }
}"#;

/// Every value of `FULL_*` read back.
fn assert_full(c: &Config) {
    assert_eq!(c.default_binder(), "main");
    assert_eq!(c.instance_index(), 1);
    assert_eq!(c.instance_count(), 3);
    assert_eq!(c.shutdown_timeout(), Duration::from_secs(45));
    assert_eq!(c.binding_retry_interval(), Duration::from_millis(250));
    assert_eq!(c.binder_names().collect::<Vec<_>>(), ["main", "mq"]);
    assert_eq!(c.binder_settings("main").kind(), "kafka");
    assert_eq!(c.binder_settings("mq").kind(), "rabbit");
    assert_eq!(c.binding_names().collect::<Vec<_>>(), ["invoices-out", "orders-in"]);

    let orders = c.binding("orders-in");
    assert_eq!(orders.destination.as_deref(), Some("orders.v1"));
    assert_eq!(orders.group.as_deref(), Some("billing"));
    assert_eq!(orders.binder.as_deref(), Some("mq"));
    assert_eq!(orders.content_type.as_deref(), Some("text/plain"));
    assert_eq!(orders.consumer.concurrency, 4);
    assert_eq!(orders.consumer.max_attempts, 5);
    assert_eq!(orders.consumer.backoff_initial, Duration::from_millis(250));
    assert_eq!(orders.consumer.backoff_multiplier, 3.0);
    assert_eq!(orders.consumer.backoff_max, Duration::from_secs(60));
    assert_eq!(orders.consumer.dead_letter, Some(false));
    assert_eq!(orders.consumer.start_offset, Some(StartOffset::Latest));

    let invoices = c.binding("invoices-out");
    assert_eq!(invoices.destination, None);
    assert_eq!(invoices.producer.partition_key.as_deref(), Some("/order"));
    assert_eq!(invoices.producer.partition_count, 4);
    // A section with only a producer part keeps consumer defaults.
    assert_eq!(invoices.consumer.max_attempts, 3);
}

// ------------------------------------------------------------------ file formats

#[test]
fn toml_file_loads_every_key() {
    let dir = TempDir::new("toml");
    let path = dir.write("bindery.toml", FULL_TOML);
    assert_full(&Config::load_with_env(&path, no_env()).unwrap());
}

#[test]
fn yaml_file_loads_every_key() {
    let dir = TempDir::new("yaml");
    let path = dir.write("bindery.yaml", FULL_YAML);
    assert_full(&Config::load_with_env(&path, no_env()).unwrap());
}

#[test]
fn yml_extension_is_yaml() {
    let dir = TempDir::new("yml");
    let path = dir.write("bindery.yml", FULL_YAML);
    assert_full(&Config::load_with_env(&path, no_env()).unwrap());
}

#[test]
fn json_file_loads_every_key() {
    let dir = TempDir::new("json");
    let path = dir.write("bindery.json", FULL_JSON);
    assert_full(&Config::load_with_env(&path, no_env()).unwrap());
}

#[test]
fn load_reads_a_file_from_disk() {
    let dir = TempDir::new("load");
    let path = dir.write("app.toml", FULL_TOML);
    // `load` also reads the real environment; nothing in FULL_TOML is expected to be overridden
    // by a test machine, so the file's values must come through.
    let c = Config::load(&path).unwrap();
    assert_eq!(c.binding("orders-in").destination.as_deref(), Some("orders.v1"));
    assert_eq!(c.binding("invoices-out").producer.partition_count, 4);
}

#[test]
fn toml_text_parses_like_a_file() {
    assert_full(&Config::from_toml_str_with_env(FULL_TOML, no_env()).unwrap());
}

// ------------------------------------------------------------------ profiles

#[test]
fn profile_file_overrides_base_and_keeps_the_rest() {
    let dir = TempDir::new("profile");
    let base = dir.write(
        "bindery.toml",
        r#"
default-binder = "memory"
shutdown-timeout = "10s"
[bindings.orders]
destination = "orders.v1"
group = "billing"
[bindings.orders.consumer]
max-attempts = 4
"#,
    );
    dir.write(
        "bindery-prod.toml",
        r#"
default-binder = "kafka"
[bindings.orders]
group = "billing-prod"
[bindings.orders.consumer]
concurrency = 8
[bindings.audit]
group = "audit"
"#,
    );
    let c = Config::load_with_env(&base, env(&[("BINDERY_PROFILE", "prod")])).unwrap();
    assert_eq!(c.default_binder(), "kafka");
    assert_eq!(c.shutdown_timeout(), Duration::from_secs(10), "base keys the profile does not set stay");
    let orders = c.binding("orders");
    assert_eq!(orders.group.as_deref(), Some("billing-prod"));
    assert_eq!(orders.destination.as_deref(), Some("orders.v1"), "the overlay merges, it does not replace sections");
    assert_eq!(orders.consumer.max_attempts, 4);
    assert_eq!(orders.consumer.concurrency, 8);
    assert_eq!(c.binding("audit").group.as_deref(), Some("audit"), "the profile can add bindings");

    // Without the profile variable the overlay is not read.
    let plain = Config::load_with_env(&base, no_env()).unwrap();
    assert_eq!(plain.default_binder(), "memory");
    assert_eq!(plain.binding("orders").group.as_deref(), Some("billing"));
}

#[test]
fn profile_overlay_uses_the_base_files_format() {
    let dir = TempDir::new("profile-yaml");
    let base = dir.write("bindery.yaml", "default-binder: memory\nbindings:\n  orders:\n    group: a\n");
    dir.write("bindery-staging.yaml", "bindings:\n  orders:\n    group: b\n");
    // A TOML profile file beside a YAML base is not the overlay.
    dir.write("bindery-staging.toml", "default-binder = \"rabbit\"\n");
    let c = Config::load_with_env(&base, env(&[("BINDERY_PROFILE", "staging")])).unwrap();
    assert_eq!(c.binding("orders").group.as_deref(), Some("b"));
    assert_eq!(c.default_binder(), "memory");
}

#[test]
fn missing_profile_file_is_fine() {
    let dir = TempDir::new("profile-missing");
    let base = dir.write("bindery.toml", "default-binder = \"rabbit\"\n");
    let c = Config::load_with_env(&base, env(&[("BINDERY_PROFILE", "nowhere")])).unwrap();
    assert_eq!(c.default_binder(), "rabbit");
}

// ------------------------------------------------------------------ environment

#[test]
fn env_sets_root_keys() {
    let c = Config::from_toml_str_with_env(
        "",
        env(&[
            ("BINDERY_DEFAULT_BINDER", "kafka"),
            ("BINDERY_SHUTDOWN_TIMEOUT", "2s"),
            ("BINDERY_BINDING_RETRY_INTERVAL", "150ms"),
            ("BINDERY_INSTANCE_INDEX", "2"),
            ("BINDERY_INSTANCE_COUNT", "3"),
            ("UNRELATED", "ignored"),
            ("NOT_BINDERY_DEFAULT_BINDER", "rabbit"),
        ]),
    )
    .unwrap();
    assert_eq!(c.default_binder(), "kafka");
    assert_eq!(c.shutdown_timeout(), Duration::from_secs(2));
    assert_eq!(c.binding_retry_interval(), Duration::from_millis(150));
    assert_eq!(c.instance_index(), 2);
    assert_eq!(c.instance_count(), 3);
}

#[test]
fn env_binding_names_use_relaxed_binding() {
    // Declared in the file as `orders-in`: `ORDERS_IN` finds it.
    let c = Config::from_toml_str_with_env(
        "[bindings.orders-in]\ndestination = \"orders.v1\"\ngroup = \"a\"",
        env(&[("BINDERY_BINDINGS__ORDERS_IN__GROUP", "b")]),
    )
    .unwrap();
    let orders = c.binding("orders-in");
    assert_eq!(orders.group.as_deref(), Some("b"));
    assert_eq!(orders.destination.as_deref(), Some("orders.v1"));
    assert_eq!(c.binding_names().collect::<Vec<_>>(), ["orders-in"], "no second binding `orders_in`");

    // Not declared anywhere: the kebab-case name.
    let c = Config::from_toml_str_with_env("", env(&[("BINDERY_BINDINGS__ORDERS_IN__GROUP", "x")])).unwrap();
    assert_eq!(c.binding("orders-in").group.as_deref(), Some("x"));

    // `-`, `_` and case are not significant.
    let c = Config::from_toml_str_with_env(
        "[bindings.orders-in]\ngroup = \"a\"",
        env(&[("BINDERY_BINDINGS__ORDERSIN__DESTINATION", "orders.v2")]),
    )
    .unwrap();
    assert_eq!(c.binding("orders-in").destination.as_deref(), Some("orders.v2"));
    assert_eq!(c.binding("orders-in").group.as_deref(), Some("a"));
}

#[test]
fn env_sets_consumer_and_producer_values_with_their_types() {
    let c = Config::from_toml_str_with_env(
        "",
        env(&[
            ("BINDERY_BINDINGS__X__CONSUMER__MAX_ATTEMPTS", "5"),
            ("BINDERY_BINDINGS__X__CONSUMER__CONCURRENCY", "6"),
            ("BINDERY_BINDINGS__X__CONSUMER__BACKOFF_INITIAL", "20ms"),
            ("BINDERY_BINDINGS__X__CONSUMER__BACKOFF_MULTIPLIER", "1.5"),
            ("BINDERY_BINDINGS__X__CONSUMER__BACKOFF_MAX", "3s"),
            ("BINDERY_BINDINGS__X__CONSUMER__DEAD_LETTER", "false"),
            ("BINDERY_BINDINGS__X__CONSUMER__START_OFFSET", "latest"),
            ("BINDERY_BINDINGS__X__PRODUCER__PARTITION_KEY", "/customer"),
            ("BINDERY_BINDINGS__X__PRODUCER__PARTITION_COUNT", "8"),
            ("BINDERY_BINDINGS__X__CONTENT_TYPE", "text/plain"),
        ]),
    )
    .unwrap();
    let x = c.binding("x");
    assert_eq!(x.consumer.max_attempts, 5);
    assert_eq!(x.consumer.concurrency, 6);
    assert_eq!(x.consumer.backoff_initial, Duration::from_millis(20));
    assert_eq!(x.consumer.backoff_multiplier, 1.5);
    assert_eq!(x.consumer.backoff_max, Duration::from_secs(3));
    assert_eq!(x.consumer.dead_letter, Some(false));
    assert_eq!(x.consumer.start_offset, Some(StartOffset::Latest));
    assert_eq!(x.producer.partition_key.as_deref(), Some("/customer"));
    assert_eq!(x.producer.partition_count, 8);
    assert_eq!(x.content_type.as_deref(), Some("text/plain"));
}

#[test]
fn env_integer_multiplier_is_accepted() {
    let c =
        Config::from_toml_str_with_env("", env(&[("BINDERY_BINDINGS__X__CONSUMER__BACKOFF_MULTIPLIER", "3")])).unwrap();
    assert_eq!(c.binding("x").consumer.backoff_multiplier, 3.0);
}

#[test]
fn env_string_keys_keep_values_that_look_like_numbers() {
    // A group or a destination named with digits only is still a name.
    let c = Config::from_toml_str_with_env("", env(&[("BINDERY_BINDINGS__ORDERS__GROUP", "2024")])).unwrap();
    assert_eq!(c.binding("orders").group.as_deref(), Some("2024"));
    let c = Config::from_toml_str_with_env("", env(&[("BINDERY_BINDINGS__ORDERS__DESTINATION", "42")])).unwrap();
    assert_eq!(c.binding("orders").destination.as_deref(), Some("42"));
}

#[test]
fn env_beats_profile_beats_base() {
    let dir = TempDir::new("precedence");
    let base = dir.write(
        "bindery.toml",
        r#"
default-binder = "memory"
shutdown-timeout = "11s"
binding-retry-interval = "1s"
[bindings.orders]
group = "base"
destination = "base-dest"
content-type = "application/json"
"#,
    );
    dir.write(
        "bindery-prod.toml",
        r#"
default-binder = "rabbit"
shutdown-timeout = "22s"
[bindings.orders]
group = "profile"
destination = "profile-dest"
"#,
    );
    let c = Config::load_with_env(
        &base,
        env(&[
            ("BINDERY_PROFILE", "prod"),
            ("BINDERY_DEFAULT_BINDER", "kafka"),
            ("BINDERY_BINDINGS__ORDERS__GROUP", "env"),
        ]),
    )
    .unwrap();
    // set everywhere: env wins
    assert_eq!(c.default_binder(), "kafka");
    assert_eq!(c.binding("orders").group.as_deref(), Some("env"));
    // base and profile: profile wins
    assert_eq!(c.shutdown_timeout(), Duration::from_secs(22));
    assert_eq!(c.binding("orders").destination.as_deref(), Some("profile-dest"));
    // base only
    assert_eq!(c.binding_retry_interval(), Duration::from_secs(1));
    assert_eq!(c.binding("orders").content_type.as_deref(), Some("application/json"));
}

#[test]
fn env_finds_bindings_declared_only_in_the_profile() {
    let dir = TempDir::new("profile-env");
    let base = dir.write("bindery.toml", "default-binder = \"memory\"\n");
    dir.write("bindery-prod.toml", "[bindings.payments_in]\ngroup = \"p\"\n");
    let c = Config::load_with_env(
        &base,
        env(&[("BINDERY_PROFILE", "prod"), ("BINDERY_BINDINGS__PAYMENTS_IN__DESTINATION", "payments.v1")]),
    )
    .unwrap();
    assert_eq!(c.binding_names().collect::<Vec<_>>(), ["payments_in"]);
    assert_eq!(c.binding("payments_in").destination.as_deref(), Some("payments.v1"));
    assert_eq!(c.binding("payments_in").group.as_deref(), Some("p"));
}

// ------------------------------------------------------------------ errors

#[test]
fn unknown_keys_in_toml_name_the_full_path_and_the_file() {
    let cases = [
        ("default-bindr = \"kafka\"\n", "default-bindr"),
        ("[bindings.orders]\ndestnation = \"x\"\n", "bindings.orders.destnation"),
        ("[bindings.orders.consumer]\nmax-attempt = 3\n", "bindings.orders.consumer.max-attempt"),
        ("[bindings.orders.producer]\npartition-keys = \"/id\"\n", "bindings.orders.producer.partition-keys"),
        ("[bindings.orders.consumr]\nmax-attempts = 3\n", "bindings.orders.consumr"),
    ];
    for (i, (text, key)) in cases.into_iter().enumerate() {
        let dir = TempDir::new("unknown-toml");
        let path = dir.write(&format!("case{i}.toml"), text);
        let err = Config::load_with_env(&path, no_env()).unwrap_err();
        let msg = err.to_string();
        assert!(err.is_config(), "{msg}");
        assert!(msg.contains(&format!("`{key}`")), "should name key `{key}`: {msg}");
        assert!(msg.contains(&shown(&path)), "should name file {}: {msg}", path.display());
        assert!(msg.contains("unknown"), "should say the key is unknown: {msg}");
    }
}

#[test]
fn unknown_keys_in_yaml_and_json_name_the_full_path_and_the_file() {
    let dir = TempDir::new("unknown-other");
    let yaml = dir.write("bindery.yaml", "bindings:\n  orders:\n    consumer:\n      max-attempt: 3\n");
    let err = Config::load_with_env(&yaml, no_env()).unwrap_err().to_string();
    assert!(err.contains("`bindings.orders.consumer.max-attempt`"), "{err}");
    assert!(err.contains(&shown(&yaml)), "{err}");

    let json = dir.write("bindery.json", r#"{"bindings": {"orders": {"producer": {"partition-cnt": 2}}}}"#);
    let err = Config::load_with_env(&json, no_env()).unwrap_err().to_string();
    assert!(err.contains("`bindings.orders.producer.partition-cnt`"), "{err}");
    assert!(err.contains(&shown(&json)), "{err}");

    let root = dir.write("root.json", r#"{"shutdown-timout": "1s"}"#);
    let err = Config::load_with_env(&root, no_env()).unwrap_err().to_string();
    assert!(err.contains("`shutdown-timout`"), "{err}");
    assert!(err.contains(&shown(&root)), "{err}");
}

#[test]
fn unknown_key_in_the_profile_file_names_the_profile_file() {
    let dir = TempDir::new("unknown-profile");
    let base =
        dir.write("bindery.toml", "[bindings.orders]\ngroup = \"a\"\n[bindings.orders.consumer]\nmax-attempts = 2\n");
    let profile = dir.write("bindery-prod.toml", "[bindings.orders.consumer]\nmax-atempts = 4\n");
    let err = Config::load_with_env(&base, env(&[("BINDERY_PROFILE", "prod")])).unwrap_err().to_string();
    assert!(err.contains("`bindings.orders.consumer.max-atempts`"), "{err}");
    assert!(err.contains(&shown(&profile)), "should name the profile file, where the key is: {err}");
}

#[test]
fn unknown_key_from_env_is_named() {
    let err = Config::from_toml_str_with_env("", env(&[("BINDERY_BINDINGS__ORDERS__CONSUMER__MAX_ATTEMPT", "5")]))
        .unwrap_err();
    let msg = err.to_string();
    assert!(err.is_config(), "{msg}");
    assert!(msg.contains("`bindings.orders.consumer.max-attempt`"), "{msg}");
    assert!(msg.contains("environment"), "should say the key came from the environment: {msg}");
}

#[test]
fn wrong_types_name_the_key() {
    let cases = [
        ("[bindings.o.consumer]\nmax-attempts = \"three\"\n", "bindings.o.consumer.max-attempts"),
        ("[bindings.o.consumer]\nconcurrency = -1\n", "bindings.o.consumer.concurrency"),
        ("[bindings.o.consumer]\ndead-letter = \"maybe\"\n", "bindings.o.consumer.dead-letter"),
        ("[bindings.o.consumer]\nstart-offset = \"middle\"\n", "bindings.o.consumer.start-offset"),
        ("[bindings.o.producer]\npartition-count = \"four\"\n", "bindings.o.producer.partition-count"),
        ("[bindings.o]\ngroup = [1, 2]\n", "bindings.o.group"),
        ("instance-count = \"many\"\n", "instance-count"),
        ("bindings = 3\n", "bindings"),
    ];
    for (text, key) in cases {
        let err = Config::from_toml_str_with_env(text, no_env()).unwrap_err();
        let msg = err.to_string();
        assert!(err.is_config(), "{text}: {msg}");
        assert!(msg.contains(&format!("`{key}`")), "{text}: should name `{key}`: {msg}");
    }
}

#[test]
fn bad_durations_name_the_key() {
    let cases = [
        ("shutdown-timeout = \"soon\"\n", "shutdown-timeout"),
        ("binding-retry-interval = \"5 parsecs\"\n", "binding-retry-interval"),
        ("[bindings.o.consumer]\nbackoff-initial = \"fast\"\n", "bindings.o.consumer.backoff-initial"),
        ("[bindings.o.consumer]\nbackoff-max = 5\n", "bindings.o.consumer.backoff-max"),
    ];
    for (text, key) in cases {
        let err = Config::from_toml_str_with_env(text, no_env()).unwrap_err();
        let msg = err.to_string();
        assert!(err.is_config(), "{text}: {msg}");
        assert!(msg.contains(&format!("`{key}`")), "{text}: should name `{key}`: {msg}");
    }
    let err = Config::from_toml_str_with_env("", env(&[("BINDERY_SHUTDOWN_TIMEOUT", "soon")])).unwrap_err();
    assert!(err.to_string().contains("`shutdown-timeout`"), "{err}");
    let err = Config::from_toml_str_with_env("", env(&[("BINDERY_BINDINGS__X__CONSUMER__MAX_ATTEMPTS", "lots")]))
        .unwrap_err();
    assert!(err.to_string().contains("`bindings.x.consumer.max-attempts`"), "{err}");
}

#[test]
fn errors_in_a_file_name_the_file() {
    let dir = TempDir::new("bad-value-file");
    let path = dir.write("bindery.toml", "[bindings.o.consumer]\nbackoff-initial = \"fast\"\n");
    let err = Config::load_with_env(&path, no_env()).unwrap_err().to_string();
    assert!(err.contains("`bindings.o.consumer.backoff-initial`"), "{err}");
    assert!(err.contains(&shown(&path)), "{err}");

    let path = dir.write("invalid.toml", "[bindings.o.consumer]\nmax-attempts = 0\n");
    let err = Config::load_with_env(&path, no_env()).unwrap_err().to_string();
    assert!(err.contains("`bindings.o.consumer.max-attempts`"), "{err}");
    assert!(err.contains(&shown(&path)), "{err}");
}

#[test]
fn missing_file_is_a_clear_error() {
    let dir = TempDir::new("missing");
    let path = dir.path("bindery.toml");
    let err = Config::load_with_env(&path, no_env()).unwrap_err();
    let msg = err.to_string();
    assert!(err.is_config(), "{msg}");
    assert!(msg.contains(&shown(&path)), "should name the path: {msg}");
    assert!(msg.contains("not found"), "should say the file is missing: {msg}");
    // A missing base file is an error even when a profile file exists.
    dir.write("bindery-prod.toml", "default-binder = \"memory\"\n");
    assert!(Config::load_with_env(&path, env(&[("BINDERY_PROFILE", "prod")])).is_err());
    assert!(Config::load(&path).is_err());
}

#[test]
fn unsupported_extension_is_a_clear_error() {
    let dir = TempDir::new("ext");
    let path = dir.write("bindery.ini", "default-binder = memory\n");
    let err = Config::load_with_env(&path, no_env()).unwrap_err();
    let msg = err.to_string();
    assert!(err.is_config(), "{msg}");
    assert!(msg.contains("unsupported extension"), "{msg}");
    assert!(msg.contains("ini"), "should name the extension: {msg}");
    assert!(msg.contains(".toml") && msg.contains(".yaml") && msg.contains(".json"), "should list the formats: {msg}");
    assert!(msg.contains(&shown(&path)), "{msg}");

    let path = dir.write("bindery", "default-binder = \"memory\"\n");
    let msg = Config::load_with_env(&path, no_env()).unwrap_err().to_string();
    assert!(msg.contains("unsupported extension"), "{msg}");
}

#[test]
fn syntax_errors_are_config_errors_naming_the_file() {
    let dir = TempDir::new("syntax");
    let path = dir.write("bindery.toml", "[bindings.orders\ngroup = \"a\"\n");
    let err = Config::load_with_env(&path, no_env()).unwrap_err();
    assert!(err.is_config(), "{err}");
    assert!(err.to_string().contains(&shown(&path)), "{err}");
}

// ------------------------------------------------------------------ defaults

fn assert_spring_defaults(c: &Config) {
    assert_eq!(c.default_binder(), "memory");
    assert_eq!(c.instance_index(), 0);
    assert_eq!(c.instance_count(), 1);
    assert_eq!(c.shutdown_timeout(), Duration::from_secs(30));
    assert_eq!(c.binding_retry_interval(), Duration::from_secs(5));
    for name in ["undeclared", "declared"] {
        let b = c.binding(name);
        assert_eq!(b.destination, None, "{name}");
        assert_eq!(b.group, None, "{name}");
        assert_eq!(b.binder, None, "{name}");
        assert_eq!(b.content_type, None, "{name}");
        assert_eq!(b.consumer.max_attempts, 3, "{name}");
        assert_eq!(b.consumer.backoff_initial, Duration::from_secs(1), "{name}");
        assert_eq!(b.consumer.backoff_multiplier, 2.0, "{name}");
        assert_eq!(b.consumer.backoff_max, Duration::from_secs(10), "{name}");
        assert_eq!(b.consumer.concurrency, 1, "{name}");
        assert_eq!(b.consumer.dead_letter, None, "{name}: resolved by group at bind time");
        assert_eq!(b.consumer.start_offset, None, "{name}: resolved by group at bind time");
        assert_eq!(b.producer.partition_key, None, "{name}");
        assert_eq!(b.producer.partition_count, 1, "{name}");
        assert!(b.options.is_empty(), "{name}");
    }
}

#[test]
fn defaults_equal_spring_cloud_streams() {
    assert_spring_defaults(&Config::from_toml_str_with_env("[bindings.declared.consumer]\n", no_env()).unwrap());
    let dir = TempDir::new("defaults");
    let path = dir.write("bindery.yaml", "bindings:\n  declared:\n    producer: {}\n");
    assert_spring_defaults(&Config::load_with_env(&path, no_env()).unwrap());
    let path = dir.write("bindery.json", r#"{"bindings": {"declared": {}}}"#);
    assert_spring_defaults(&Config::load_with_env(&path, no_env()).unwrap());
}

// ------------------------------------------------------------------ binder settings

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct KafkaLike {
    brokers: String,
    #[serde(default)]
    config: BTreeMap<String, String>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
struct WithDefaults {
    uri: String,
    heartbeat: u32,
}

#[test]
fn binder_options_come_from_the_entry_and_the_environment() {
    let dir = TempDir::new("binder-opts");
    let path = dir.write(
        "bindery.toml",
        r#"
[binders.main]
type = "kafka"
brokers = "file:9092"
[binders.main.config]
"security.protocol" = "SASL_SSL"
"#,
    );
    let c = Config::load_with_env(&path, no_env()).unwrap();
    let main = c.binder_settings("main");
    assert_eq!((main.name(), main.kind()), ("main", "kafka"));
    let opts: KafkaLike = main.options().unwrap();
    assert_eq!(opts.brokers, "file:9092");
    assert_eq!(opts.config.get("security.protocol").map(String::as_str), Some("SASL_SSL"));

    let c = Config::load_with_env(&path, env(&[("BINDERY_BINDERS__MAIN__BROKERS", "env:9092")])).unwrap();
    let opts: KafkaLike = c.binder_settings("main").options().unwrap();
    assert_eq!(opts.brokers, "env:9092");
    assert_eq!(opts.config.get("security.protocol").map(String::as_str), Some("SASL_SSL"));
}

#[test]
fn env_passes_client_config_keys_through_untouched() {
    // `[binders.main.config]` holds client keys such as `sasl.password` as flat keys; the
    // environment form `CONFIG__SASL_PASSWORD` must produce the same flat key, not a nested
    // `sasl = { password = .. }` table.
    let dir = TempDir::new("binder-passthrough");
    let path = dir.write(
        "bindery.toml",
        "[binders.main]\ntype = \"kafka\"\nbrokers = \"b:9092\"\n[binders.main.config]\n\"security.protocol\" = \"SASL_SSL\"\n",
    );
    let c = Config::load_with_env(&path, env(&[("BINDERY_BINDERS__MAIN__CONFIG__SASL_PASSWORD", "hunter2")])).unwrap();
    let opts: KafkaLike = c.binder_settings("main").options().unwrap();
    assert_eq!(opts.config.get("sasl.password").map(String::as_str), Some("hunter2"), "{:?}", opts.config);
    assert_eq!(opts.config.get("security.protocol").map(String::as_str), Some("SASL_SSL"));
    // Config's Debug never prints binder settings (they may hold credentials).
    let debug = format!("{c:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
}

#[test]
fn unknown_binder_option_names_key_and_file() {
    let dir = TempDir::new("binder-unknown");
    let path = dir.write("bindery.toml", "[binders.mq]\ntype = \"rabbit\"\nurl = \"amqp://x\"\n");
    let c = Config::load_with_env(&path, no_env()).unwrap();
    let err = c.binder_settings("mq").options::<WithDefaults>().unwrap_err();
    let msg = err.to_string();
    assert!(err.is_config(), "{msg}");
    assert!(msg.contains("`binders.mq.url`"), "{msg}");
    assert!(msg.contains(&shown(&path)), "{msg}");

    let path = dir.write("typed.toml", "[binders.mq]\ntype = \"rabbit\"\nheartbeat = \"often\"\n");
    let c = Config::load_with_env(&path, no_env()).unwrap();
    let msg = c.binder_settings("mq").options::<WithDefaults>().unwrap_err().to_string();
    assert!(msg.contains("binders.mq"), "{msg}");
}

#[test]
fn a_binder_type_without_an_entry_gets_its_defaults() {
    let c = Config::from_toml_str_with_env("[binders.mq]\ntype = \"rabbit\"\nuri = \"amqp://h\"\n", no_env()).unwrap();
    let rabbit = c.binder_settings("rabbit");
    assert_eq!((rabbit.name(), rabbit.kind()), ("rabbit", "rabbit"));
    let opts: WithDefaults = rabbit.options().unwrap();
    assert_eq!((opts.uri.as_str(), opts.heartbeat), ("", 0));
    let mq: WithDefaults = c.binder_settings("mq").options().unwrap();
    assert_eq!(mq.uri, "amqp://h");
}

#[test]
fn binder_entries_need_a_type() {
    let err = Config::from_toml_str_with_env("[binders.main]\nbrokers = \"x\"\n", no_env()).unwrap_err();
    assert!(err.is_config(), "{err}");
    assert!(err.to_string().contains("type"), "{err}");
}
