//! Codecs: how payloads become bytes and back, chosen by content type.
//!
//! JSON (`application/json`, the default and any `+json` type), `text/plain` and
//! `application/octet-stream` are built in. Other formats plug in through [`Codec`].
//!
//! ```
//! use bindery::codec::{Codecs, JSON};
//!
//! #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
//! struct Order { id: u64 }
//!
//! let codecs = Codecs::default();
//! let bytes = codecs.encode(&Order { id: 7 }, JSON).unwrap();
//! assert_eq!(&bytes[..], br#"{"id":7}"#);
//! let back: Order = codecs.decode(&bytes, "application/vnd.order+json").unwrap(); // any +json
//! assert_eq!(back, Order { id: 7 });
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{BoxError, Error, Result};

/// `application/json`
///
/// ```
/// use bindery::codec::{Codecs, JSON};
/// assert_eq!(JSON, "application/json");
/// let bytes = Codecs::default().encode(&[1, 2], JSON).unwrap();
/// assert_eq!(&bytes[..], b"[1,2]");
/// ```
pub const JSON: &str = "application/json";
/// `text/plain`
///
/// ```
/// use bindery::codec::{Codecs, TEXT};
/// assert_eq!(TEXT, "text/plain");
/// let bytes = Codecs::default().encode(&"hello", TEXT).unwrap();
/// assert_eq!(&bytes[..], b"hello"); // no JSON quotes
/// ```
pub const TEXT: &str = "text/plain";
/// `application/octet-stream`
///
/// ```
/// use bindery::codec::{Codecs, OCTET_STREAM};
/// assert_eq!(OCTET_STREAM, "application/octet-stream");
/// let bytes = Codecs::default().encode(&vec![0u8, 255], OCTET_STREAM).unwrap();
/// assert_eq!(&bytes[..], &[0, 255]); // bytes as they are
/// ```
pub const OCTET_STREAM: &str = "application/octet-stream";

/// A user-supplied format (Avro, Protobuf, CBOR, …) for one content type.
///
/// Custom codecs convert between wire bytes and a [`serde_json::Value`] tree, which bindery
/// then maps to and from your types with serde. Register one with
/// [`AppBuilder::codec`](crate::AppBuilder::codec).
///
/// ```
/// use bindery::codec::{Codec, Codecs};
/// use bindery::BoxError;
///
/// /// Payloads as `key=value` lines.
/// struct Lines;
/// impl Codec for Lines {
///     fn content_type(&self) -> &str { "text/x-lines" }
///     fn decode(&self, bytes: &[u8]) -> Result<serde_json::Value, BoxError> {
///         let text = std::str::from_utf8(bytes)?;
///         let mut map = serde_json::Map::new();
///         for line in text.lines() {
///             let (k, v) = line.split_once('=').ok_or("expected key=value")?;
///             map.insert(k.to_string(), v.into());
///         }
///         Ok(map.into())
///     }
///     fn encode(&self, value: &serde_json::Value) -> Result<bytes::Bytes, BoxError> {
///         let map = value.as_object().ok_or("expected an object")?;
///         let lines: Vec<String> = map.iter()
///             .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect();
///         Ok(lines.join("\n").into())
///     }
/// }
///
/// let mut codecs = Codecs::default();
/// codecs.register(Lines);
/// let bytes = codecs.encode(&std::collections::BTreeMap::from([("a", "1")]), "text/x-lines").unwrap();
/// assert_eq!(&bytes[..], b"a=1");
/// let back: std::collections::BTreeMap<String, String> = codecs.decode(&bytes, "text/x-lines").unwrap();
/// assert_eq!(back["a"], "1");
/// ```
pub trait Codec: Send + Sync + 'static {
    /// The content type this codec handles, e.g. `application/x-protobuf`.
    fn content_type(&self) -> &str;
    /// Wire bytes to a value tree.
    fn decode(&self, bytes: &[u8]) -> Result<serde_json::Value, BoxError>;
    /// A value tree to wire bytes.
    fn encode(&self, value: &serde_json::Value) -> Result<Bytes, BoxError>;
}

/// The codecs an app knows: the built-in ones plus any registered [`Codec`].
///
/// ```
/// let codecs = bindery::codec::Codecs::default();
/// let bytes = codecs.encode(&vec![1, 2], "application/json").unwrap();
/// let back: Vec<u8> = codecs.decode(&bytes, "application/json; charset=utf-8").unwrap();
/// assert_eq!(back, [1, 2]);
/// assert!(codecs.decode::<Vec<u8>>(b"nope", "application/json").unwrap_err().is_codec());
/// ```
#[derive(Clone, Default)]
pub struct Codecs {
    custom: HashMap<String, Arc<dyn Codec>>,
}

enum Builtin {
    Json,
    Text,
    Octet,
}

/// Payloads are copied into a per-thread chunk of this size, each taking its slice of it: no
/// allocation per message, and cloning a payload (a broker keeping a copy for redelivery) is a
/// reference-count increment. A chunk is freed, or reused, once every payload in it is dropped.
const CHUNK: usize = 8 * 1024;

/// A payload longer than this gets an allocation of its own instead of a slice of a chunk,
/// so one long-lived small payload never pins a large buffer.
const SLICE_MAX: usize = CHUNK / 4;

/// Encoders keep a scratch buffer per thread up to this size; a larger payload's buffer is
/// given back after use.
const SCRATCH_KEPT: usize = 64 * 1024;

/// Encodes into a reused per-thread buffer (serde_json writes in many small pieces, which a
/// plain vector takes fastest), then copies the result out in one go: into a slice of the
/// thread's chunk (see [`CHUNK`]), or, when large, into an allocation of exactly its size.
fn json<T: Serialize + ?Sized>(value: &T) -> Result<Bytes> {
    use std::cell::RefCell;

    use bytes::BytesMut;
    thread_local! {
        static SCRATCH: RefCell<(Vec<u8>, BytesMut)> = RefCell::new((Vec::new(), BytesMut::new()));
    }
    let fail = |e: serde_json::Error| Error::codec(format!("cannot encode payload as JSON: {e}"));
    SCRATCH.with(|scratch| {
        // A serializer that calls back into an encoder on this thread finds the buffers taken:
        // that inner call allocates on its own.
        let Ok(mut scratch) = scratch.try_borrow_mut() else {
            return serde_json::to_vec(value).map(Bytes::from).map_err(fail);
        };
        let (buf, chunk) = &mut *scratch;
        buf.clear();
        serde_json::to_writer(&mut *buf, value).map_err(fail)?;
        let out = if buf.len() <= SLICE_MAX {
            if chunk.capacity() < buf.len() {
                // Reuses the chunk in place once every payload in it was dropped, else starts
                // a new one.
                chunk.reserve(CHUNK);
            }
            chunk.extend_from_slice(buf);
            chunk.split().freeze()
        } else {
            Bytes::copy_from_slice(buf)
        };
        if buf.capacity() > SCRATCH_KEPT {
            *buf = Vec::new();
        }
        Ok(out)
    })
}

/// The media type without parameters, lowercased only when needed.
fn base(content_type: &str) -> &str {
    let media = match content_type.find(';') {
        Some(end) => &content_type[..end],
        None => content_type,
    };
    // Most values have no padding; only trim when there is some.
    if media.starts_with(char::is_whitespace) || media.ends_with(char::is_whitespace) { media.trim() } else { media }
}

/// Whether payloads of `content_type` are JSON text (`application/json`, `…+json`).
pub(crate) fn is_json(content_type: &str) -> bool {
    content_type == JSON || matches!(builtin(base(content_type)), Some(Builtin::Json))
}

fn builtin(base: &str) -> Option<Builtin> {
    if base.eq_ignore_ascii_case(JSON) || base.ends_with("+json") {
        Some(Builtin::Json)
    } else if base.eq_ignore_ascii_case(TEXT) {
        Some(Builtin::Text)
    } else if base.eq_ignore_ascii_case(OCTET_STREAM) {
        Some(Builtin::Octet)
    } else {
        None
    }
}

impl std::fmt::Debug for Codecs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codecs").field("custom", &self.custom.keys().collect::<Vec<_>>()).finish()
    }
}

impl Codecs {
    /// Adds (or replaces) the codec for its content type.
    ///
    /// See [`Codec`] for a full example.
    ///
    /// ```
    /// let mut codecs = bindery::codec::Codecs::default();
    /// assert!(!codecs.supports("application/x-custom"));
    /// ```
    pub fn register(&mut self, codec: impl Codec) {
        self.custom.insert(codec.content_type().to_ascii_lowercase(), Arc::new(codec));
    }

    /// Whether a content type can be encoded and decoded.
    ///
    /// ```
    /// let codecs = bindery::codec::Codecs::default();
    /// assert!(codecs.supports("application/vnd.order+json"));
    /// assert!(!codecs.supports("application/avro"));
    /// ```
    pub fn supports(&self, content_type: &str) -> bool {
        let b = base(content_type);
        builtin(b).is_some() || self.custom.contains_key(&b.to_ascii_lowercase())
    }

    fn custom(&self, b: &str) -> Result<&Arc<dyn Codec>> {
        self.custom.get(&b.to_ascii_lowercase()).ok_or_else(|| {
            Error::codec(format!("no codec for content type `{b}`; register one with AppBuilder::codec"))
        })
    }

    /// Decodes `bytes` of `content_type` into `T`.
    ///
    /// `text/plain` decodes into anything serde can build from a string; `application/json`
    /// (and `+json`) with serde_json; octet streams only into byte-oriented types.
    ///
    /// ```
    /// let codecs = bindery::codec::Codecs::default();
    /// let s: String = codecs.decode(b"hello", "text/plain").unwrap();
    /// assert_eq!(s, "hello");
    /// ```
    pub fn decode<T: DeserializeOwned>(&self, bytes: &[u8], content_type: &str) -> Result<T> {
        if content_type == JSON {
            return serde_json::from_slice(bytes).map_err(|e| Error::codec(format!("invalid JSON payload: {e}")));
        }
        let b = base(content_type);
        match builtin(b) {
            Some(Builtin::Json) => {
                serde_json::from_slice(bytes).map_err(|e| Error::codec(format!("invalid JSON payload: {e}")))
            }
            Some(Builtin::Text) => {
                let text = std::str::from_utf8(bytes)
                    .map_err(|e| Error::codec(format!("text/plain payload is not UTF-8: {e}")))?;
                T::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(text))
                    .map_err(|e| Error::codec(format!("cannot read text/plain payload: {e}")))
            }
            Some(Builtin::Octet) => T::deserialize(
                serde::de::value::BytesDeserializer::<serde::de::value::Error>::new(bytes),
            )
            .map_err(|e| {
                Error::codec(format!(
                    "cannot read application/octet-stream payload ({e}); take `Bytes` as the handler argument"
                ))
            }),
            None => {
                let value = self.custom(b)?.decode(bytes).map_err(|e| Error::codec(format!("{b} codec: {e}")))?;
                serde_json::from_value(value)
                    .map_err(|e| Error::codec(format!("{b} payload does not match the handler's type: {e}")))
            }
        }
    }

    /// Encodes `value` as `content_type`.
    ///
    /// ```
    /// let codecs = bindery::codec::Codecs::default();
    /// assert_eq!(&codecs.encode(&"hi", "text/plain").unwrap()[..], b"hi");
    /// assert_eq!(&codecs.encode(&"hi", "application/json").unwrap()[..], b"\"hi\"");
    /// ```
    pub fn encode<T: Serialize + ?Sized>(&self, value: &T, content_type: &str) -> Result<Bytes> {
        if content_type == JSON {
            return json(value);
        }
        let b = base(content_type);
        match builtin(b) {
            Some(Builtin::Json) => json(value),
            Some(Builtin::Text) => match serde_json::to_value(value) {
                Ok(serde_json::Value::String(s)) => Ok(Bytes::from(s)),
                Ok(other) => Ok(Bytes::from(other.to_string())),
                Err(e) => Err(Error::codec(format!("cannot encode payload as text: {e}"))),
            },
            Some(Builtin::Octet) => match serde_json::to_value(value) {
                Ok(serde_json::Value::String(s)) => Ok(Bytes::from(s)),
                Ok(serde_json::Value::Array(items)) => items
                    .iter()
                    .map(|v| v.as_u64().and_then(|n| u8::try_from(n).ok()))
                    .collect::<Option<Vec<u8>>>()
                    .map(Bytes::from)
                    .ok_or_else(|| Error::codec("application/octet-stream output must be bytes or a string")),
                Ok(_) => Err(Error::codec(
                    "application/octet-stream output must be a string or a byte sequence; return `Bytes` to send bytes as they are",
                )),
                Err(e) => Err(Error::codec(format!("cannot encode payload: {e}"))),
            },
            None => {
                let codec = self.custom(b)?;
                let value =
                    serde_json::to_value(value).map_err(|e| Error::codec(format!("cannot encode payload: {e}")))?;
                codec.encode(&value).map_err(|e| Error::codec(format!("{b} codec: {e}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serializes as the JSON text of its inner value's own encoding: an encoder calling back
    /// into the encoder on the same thread.
    struct Nested(u32);
    impl Serialize for Nested {
        fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
            let inner = json(&[self.0, self.0]).map_err(serde::ser::Error::custom)?;
            s.serialize_str(std::str::from_utf8(&inner).map_err(serde::ser::Error::custom)?)
        }
    }

    #[test]
    fn json_payloads_come_out_whole_in_every_size_and_when_nested() {
        assert_eq!(&json(&Nested(7)).unwrap()[..], br#""[7,7]""#);
        for len in [0usize, 1, 100, SLICE_MAX - 2, SLICE_MAX - 1, 5_000, 2 * SCRATCH_KEPT, 10, 300] {
            let text = "x".repeat(len);
            let encoded = json(&text).unwrap();
            assert_eq!(encoded.len(), len + 2);
            assert_eq!(serde_json::from_slice::<String>(&encoded).unwrap(), text);
        }
        let err = json(&std::collections::HashMap::from([((1, 2), 3)])).unwrap_err();
        assert!(err.to_string().contains("cannot encode payload as JSON"), "{err}");
        // What the failed encoding had written (`{`) is not part of the next payload.
        assert_eq!(&json(&"after").unwrap()[..], br#""after""#);
    }

    /// Payloads share chunks: each must keep its own bytes while later ones are encoded, while
    /// chunks are reused once emptied, and after others sharing its chunk were dropped.
    #[test]
    fn payloads_sharing_a_chunk_never_see_each_others_bytes() {
        let expected = |i: usize| format!("payload-{i}-{}", "y".repeat(i % 97));
        let mut kept: Vec<(usize, Bytes)> = (0..3_000).map(|i| (i, json(&expected(i)).unwrap())).collect();
        kept.retain(|(i, _)| i % 3 == 0); // free most slices of every chunk
        kept.extend((3_000..6_000).map(|i| (i, json(&expected(i)).unwrap())));
        drop(kept.drain(..500)); // some chunks are now free: the next ones may reuse them
        kept.extend((6_000..9_000).map(|i| (i, json(&expected(i)).unwrap())));
        for (i, bytes) in &kept {
            assert_eq!(serde_json::from_slice::<String>(bytes).unwrap(), expected(*i), "payload {i}");
        }
    }
}
