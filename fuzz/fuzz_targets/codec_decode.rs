//! Payload bytes under a content type taken from the input (a known one, or the raw bytes of a
//! `contentType` header), decoded into one of several handler argument types: the result is a
//! value or a codec error. A decoded value encodes and decodes again to the same value.
#![no_main]

use arbitrary::Arbitrary;
use bindery::codec::{Codec, Codecs};
use bindery::{BoxError, Bytes, Headers};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Debug, Arbitrary)]
enum ContentType {
    Json,
    JsonCharset,
    VendorJson,
    Text,
    TextCharset,
    Octet,
    Custom,
    Empty,
    /// Whatever a broker delivered in the `contentType` header; the binding's type
    /// (`application/json`) applies when it is absent or not UTF-8.
    Header(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
enum Target {
    Value,
    Order,
    Text,
    Bytes,
    Number,
    Float,
    List,
    Map,
    Flag,
}

#[derive(Debug, Arbitrary)]
struct Input {
    content_type: ContentType,
    target: Target,
    payload: Vec<u8>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u64,
    customer: String,
    lines: Vec<Line>,
    note: Option<String>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Line {
    sku: String,
    quantity: u32,
}

/// A registered format: payloads are JSON text wrapped in `<` `>`.
struct Angle;

impl Codec for Angle {
    fn content_type(&self) -> &str {
        "application/x-angle"
    }
    fn decode(&self, bytes: &[u8]) -> Result<serde_json::Value, BoxError> {
        let inner = bytes.strip_prefix(b"<").and_then(|b| b.strip_suffix(b">")).ok_or("expected <…>")?;
        Ok(serde_json::from_slice(inner)?)
    }
    fn encode(&self, value: &serde_json::Value) -> Result<Bytes, BoxError> {
        Ok(format!("<{value}>").into())
    }
}

fn round_trip<T>(codecs: &Codecs, payload: &[u8], content_type: &str)
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    match codecs.decode::<T>(payload, content_type) {
        Ok(value) => {
            assert!(codecs.supports(content_type), "decoded under unsupported `{content_type}`");
            let bytes = codecs
                .encode(&value, content_type)
                .unwrap_or_else(|e| panic!("decoded {value:?} under `{content_type}` but cannot encode it: {e}"));
            let back: T = codecs.decode(&bytes, content_type).unwrap_or_else(|e| {
                panic!("{value:?} encoded as {bytes:?} under `{content_type}` does not decode: {e}")
            });
            if back != value {
                // serde_json (without its `float_roundtrip` feature, as bindery builds it) may
                // read a float's shortest text back off by a unit in the last place: allow that,
                // and only that.
                let (a, b) = (serde_json::to_value(&back), serde_json::to_value(&value));
                assert!(
                    matches!((&a, &b), (Ok(a), Ok(b)) if nearly_equal(a, b)),
                    "round trip under `{content_type}` via {bytes:?}: {back:?} != {value:?}"
                );
            }
        }
        Err(e) => {
            assert!(e.is_codec(), "not a codec error: {e}");
            assert!(!e.to_string().trim().is_empty());
        }
    }
}

/// Equal JSON trees, except that floats may differ by a few units in the last place.
fn nearly_equal(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(a, b)| nearly_equal(a, b)),
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|((ka, a), (kb, b))| ka == kb && nearly_equal(a, b))
        }
        (Value::Number(x), Value::Number(y)) if x.is_f64() && y.is_f64() => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x.signum() == y.signum() && x.to_bits().abs_diff(y.to_bits()) <= 4,
            _ => false,
        },
        _ => a == b,
    }
}

/// Whether the codecs treat `content_type` as `text/plain` (its media type, any case).
fn is_text(content_type: &str) -> bool {
    content_type.split(';').next().is_some_and(|media| media.trim().eq_ignore_ascii_case("text/plain"))
}

fuzz_target!(|input: Input| {
    let mut codecs = Codecs::default();
    codecs.register(Angle);
    let mut headers = Headers::new();
    let content_type = match &input.content_type {
        ContentType::Json => "application/json",
        ContentType::JsonCharset => "application/json; charset=utf-8",
        ContentType::VendorJson => "application/vnd.order+json",
        ContentType::Text => "text/plain",
        ContentType::TextCharset => "Text/Plain;charset=UTF-8",
        ContentType::Octet => "application/octet-stream",
        ContentType::Custom => "Application/X-Angle",
        ContentType::Empty => "",
        ContentType::Header(raw) => {
            headers.set_content_type(raw.clone());
            headers.content_type().unwrap_or("application/json")
        }
    };
    let payload = &input.payload[..];
    match input.target {
        Target::Value => round_trip::<serde_json::Value>(&codecs, payload, content_type),
        Target::Order => round_trip::<Order>(&codecs, payload, content_type),
        Target::Text => round_trip::<String>(&codecs, payload, content_type),
        Target::Bytes if is_text(content_type) => {
            // text/plain hands a byte buffer the payload as it is; encoding writes non-string
            // values as their JSON text (`[104,105]`), so only text round trips under it.
            if let Ok(bytes) = codecs.decode::<serde_bytes::ByteBuf>(payload, content_type) {
                assert_eq!(&bytes[..], payload);
            }
        }
        Target::Bytes => round_trip::<serde_bytes::ByteBuf>(&codecs, payload, content_type),
        Target::Number => round_trip::<i64>(&codecs, payload, content_type),
        Target::Float => round_trip::<f64>(&codecs, payload, content_type),
        Target::List => round_trip::<Vec<u8>>(&codecs, payload, content_type),
        Target::Map => round_trip::<std::collections::BTreeMap<String, Option<i32>>>(&codecs, payload, content_type),
        Target::Flag => round_trip::<bool>(&codecs, payload, content_type),
    }
});
