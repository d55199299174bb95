//! Config text of any bytes, in any of the three formats, plus `BINDERY_…` variables: loading
//! ends in a config that keeps every validation rule, or in a config error with a message.
//!
//! Input: the first byte picks the format (`0` TOML, `1` YAML, `2` JSON, by value mod 3); the
//! rest up to the first NUL is the file; after it, `NAME=value` lines become `BINDERY_NAME`
//! variables.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use bindery::Config;
use libfuzzer_sys::fuzz_target;

/// One directory per fuzzing process for the YAML and JSON files (they load only from files).
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("bindery-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    })
}

fn env(bytes: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|line| {
            let (name, value) = line.split_once('=').unwrap_or((line, ""));
            (format!("BINDERY_{name}"), value.to_string())
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&format, rest)) = data.split_first() else { return };
    let (text, vars) = match rest.iter().position(|&b| b == 0) {
        Some(at) => (&rest[..at], env(&rest[at + 1..])),
        None => (rest, Vec::new()),
    };
    let from_env = !vars.is_empty();
    let (loaded, file) = match format % 3 {
        0 => match std::str::from_utf8(text) {
            Ok(toml) => (Config::from_toml_str_with_env(toml, vars), None),
            Err(_) => return,
        },
        n => {
            let name = if n == 1 { "bindery.yaml" } else { "bindery.json" };
            let path = dir().join(name);
            std::fs::write(&path, text).expect("write config file");
            (Config::load_with_env(&path, vars), Some(name))
        }
    };
    match loaded {
        Ok(config) => {
            // A loaded config keeps the rules `finish` checks.
            assert!(config.instance_index() < config.instance_count(), "{config:?}");
            for name in config.binding_names() {
                let b = config.binding(name);
                assert!(b.consumer.max_attempts >= 1, "{name}: {b:?}");
                assert!((1..=1024).contains(&b.consumer.concurrency), "{name}: {b:?}");
                assert!(b.consumer.backoff_multiplier.is_finite() && b.consumer.backoff_multiplier >= 1.0);
                assert!(b.producer.partition_count >= 1, "{name}: {b:?}");
                if let Some(key) = &b.producer.partition_key {
                    assert!(key.starts_with('/') || key.starts_with("header:"), "{key}");
                }
            }
            for name in config.binder_names() {
                let settings = config.binder_settings(name);
                assert!(!settings.kind().trim().is_empty(), "binder `{name}` without a type");
                // A binder reading its settings gets them or a config error, never a panic.
                if let Err(e) = settings.options::<serde_json::Value>() {
                    assert!(e.is_config() && !e.to_string().is_empty(), "{e}");
                }
            }
            let _ = (config.default_binder(), config.shutdown_timeout(), config.binding_retry_interval());
        }
        Err(e) => {
            let message = e.to_string();
            assert!(e.is_config(), "not a config error: {message}");
            assert!(!message.trim().is_empty());
            // Without variables every value came from the file: the error says which file.
            if let (Some(name), false) = (file, from_env) {
                assert!(message.contains(name), "error does not name the file: {message}");
            }
        }
    }
});
