//! Hostile input: arbitrary header bytes, payloads, content types, config files and environment
//! variables never panic and always end in a value or a clear error.

use std::collections::BTreeMap;

use bindery::codec::Codecs;
use bindery::{Config, HeaderValue, Headers};
use proptest::prelude::*;

/// Header names worth colliding with: the standard ones plus arbitrary text.
fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("id".to_string()),
        Just("timestamp".to_string()),
        Just("contentType".to_string()),
        Just("correlationId".to_string()),
        Just("deliveryAttempt".to_string()),
        Just("key".to_string()),
        Just("traceparent".to_string()),
        ".{0,40}",
    ]
}

/// Values: arbitrary bytes, arbitrary text, and well-formed values of the typed headers.
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..120),
        ".{0,60}".prop_map(String::into_bytes),
        any::<u32>().prop_map(|n| n.to_string().into_bytes()),
        any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string().into_bytes()),
    ]
}

/// Content types a broker might hand us, well-formed or not.
fn content_type() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("application/json".to_string()),
        Just("application/json; charset=utf-8".to_string()),
        Just("application/vnd.order+json".to_string()),
        Just("text/plain".to_string()),
        Just("application/octet-stream".to_string()),
        Just(String::new()),
        ".{0,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Whatever is inserted, the last value per name is what `get` returns, and every typed
    /// accessor answers exactly when the bytes parse as that type.
    #[test]
    fn headers_keep_the_last_value_and_typed_accessors_never_panic(
        entries in proptest::collection::vec((header_name(), header_value()), 0..24)
    ) {
        let mut headers = Headers::new();
        let mut model: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for (name, value) in &entries {
            headers.insert(name.clone(), HeaderValue::from(value.clone()));
            model.insert(name.clone(), value.clone());
        }
        prop_assert_eq!(headers.len(), model.len());
        for (name, value) in &model {
            prop_assert_eq!(headers.get(name).map(|v| v.as_bytes()), Some(&value[..]));
            let text = std::str::from_utf8(value).ok();
            prop_assert_eq!(headers.get_str(name), text);
        }
        let text = |n: &str| model.get(n).and_then(|v| std::str::from_utf8(v).ok());
        prop_assert_eq!(headers.delivery_attempt(), text("deliveryAttempt").and_then(|s| s.parse::<u32>().ok()));
        prop_assert_eq!(headers.timestamp(), text("timestamp").and_then(|s| s.parse::<u64>().ok()));
        prop_assert_eq!(headers.id(), text("id").and_then(|s| uuid::Uuid::parse_str(s).ok()));
        prop_assert_eq!(headers.key(), model.get("key").map(|v| &v[..]));
        prop_assert_eq!(headers.correlation_id(), text("correlationId"));
        // Copy-on-write: a clone is unaffected by later changes to the original.
        let snapshot = headers.clone();
        headers.insert("x-later", "changed");
        prop_assert!(!snapshot.contains("x-later") || model.contains_key("x-later"));
    }

    /// Arbitrary bytes under an arbitrary content type decode to a value or a codec error.
    #[test]
    fn decoding_arbitrary_bytes_is_a_value_or_a_codec_error(
        bytes in proptest::collection::vec(any::<u8>(), 0..256),
        ct in content_type(),
    ) {
        let codecs = Codecs::default();
        match codecs.decode::<serde_json::Value>(&bytes, &ct) {
            Ok(v) => {
                // Only the JSON family and text decode into a JSON value.
                if ct.contains("json") {
                    prop_assert_eq!(Some(v), serde_json::from_slice::<serde_json::Value>(&bytes).ok());
                }
            }
            Err(e) => {
                prop_assert!(e.is_codec() || e.is_config(), "unexpected error kind: {e}");
                prop_assert!(!e.to_string().is_empty());
            }
        }
        // Typed targets too: a struct, a string, raw bytes.
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Order { id: u64, customer: String }
        let _ = codecs.decode::<Order>(&bytes, &ct);
        let _ = codecs.decode::<String>(&bytes, &ct);
        let _ = codecs.decode::<Vec<u8>>(&bytes, &ct);
    }

    /// Any JSON value survives encode then decode under the JSON content types.
    #[test]
    fn json_values_round_trip(value in json_value(), ct in prop_oneof![
        Just("application/json"), Just("application/json;charset=UTF-8"), Just("application/x.event+json")
    ]) {
        let codecs = Codecs::default();
        let bytes = codecs.encode(&value, ct).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back: serde_json::Value = codecs.decode(&bytes, ct).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, value);
    }

    /// Text payloads round trip byte for byte under text/plain.
    #[test]
    fn text_round_trips(text in ".{0,200}") {
        let codecs = Codecs::default();
        let bytes = codecs.encode(&text, "text/plain").map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&bytes[..], text.as_bytes());
        let back: String = codecs.decode(&bytes, "text/plain").map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, text);
    }

    /// A config file of arbitrary bytes loads or fails with an error that names the file.
    #[test]
    fn arbitrary_config_files_fail_with_the_file_named(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let dir = tempdir();
        let path = dir.join("bindery.toml");
        std::fs::write(&path, &bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if let Err(e) = Config::load_with_env(&path, Vec::<(String, String)>::new()) {
            prop_assert!(e.is_config(), "{e}");
            prop_assert!(e.to_string().contains("bindery.toml"), "error does not name the file: {e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// An unknown key anywhere in a binding is rejected with its full path.
    #[test]
    fn unknown_binding_keys_are_named(binding in "[a-z][a-z0-9-]{0,12}", key in "[a-z][a-z0-9-]{0,16}", section in prop_oneof![
        Just(""), Just("consumer"), Just("producer")
    ]) {
        let known = [
            "destination", "group", "binder", "content-type", "consumer", "producer", "options",
            "concurrency", "max-attempts", "backoff-initial", "backoff-multiplier", "backoff-max",
            "dead-letter", "start-offset", "partition-key", "partition-count", "auto-startup",
        ];
        prop_assume!(!known.contains(&key.as_str()));
        let table = if section.is_empty() { format!("bindings.{binding}") } else { format!("bindings.{binding}.{section}") };
        let toml = format!("[{table}]\n{key} = 1\n");
        match Config::from_toml_str(&toml) {
            Ok(_) => prop_assert!(false, "unknown key `{table}.{key}` was accepted"),
            Err(e) => prop_assert!(e.to_string().contains(&format!("{table}.{key}")), "key not named: {e}"),
        }
    }

    /// Arbitrary `BINDERY_…` variables load or fail with a config error naming the variable's key.
    #[test]
    fn arbitrary_environment_never_panics(vars in proptest::collection::vec(
        ("BINDERY_[A-Z0-9_]{0,40}", ".{0,30}"), 0..6)
    ) {
        match Config::from_toml_str_with_env("", vars.clone()) {
            Ok(_) => {}
            Err(e) => {
                prop_assert!(e.is_config(), "{e}");
                prop_assert!(e.to_string().contains("key `"), "error names no key: {e}");
            }
        }
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        // Finite floats that survive a text round trip exactly.
        (-1.0e9f64..1.0e9).prop_map(|f| serde_json::Value::from((f * 1000.0).round() / 1000.0)),
        ".{0,30}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(".{0,12}", inner, 0..8)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A fresh directory under the system temp dir.
fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("bindery-hostile-{}", uuid::Uuid::new_v4().simple()));
    let _ = std::fs::create_dir_all(&dir);
    dir
}
