//! Message ↔ AMQP mapping, as the binder does it: `contentType` is the AMQP `content-type`
//! property, every other header an AMQP header (UTF-8 values as long strings, anything else as
//! a byte array, so binary values survive byte for byte). Public for tools and tests that read
//! or write bindery's queues with their own lapin client.
//!
//! ```
//! use bindery_rabbit::amqp;
//! let m = bindery::Message::new(bindery::Bytes::from_static(b"{}"))
//!     .with_content_type("application/json")
//!     .with_header("tenant", "acme");
//! let props = amqp::to_properties(&m, true).unwrap();
//! assert_eq!(props.content_type().as_ref().map(|c| c.as_str()), Some("application/json"));
//! let back = amqp::to_message(b"{}".to_vec(), &props);
//! assert_eq!(back.headers().get_str("tenant"), Some("acme"));
//! assert_eq!(back.headers().content_type(), Some("application/json"));
//! ```

use bindery::headers::names;
use bindery::{Bytes, Error, HeaderValue, Headers, Message, RawMessage};
use lapin::BasicProperties;
use lapin::types::{AMQPValue, ByteArray, FieldTable, LongString, ShortString};

/// AMQP delivery mode 2: the broker writes the message to disk.
const PERSISTENT: u8 = 2;
/// AMQP delivery mode 1: kept in memory.
const TRANSIENT: u8 = 1;

/// The AMQP properties for an outgoing message (`persistent`: delivery mode 2). Fails, naming
/// the header, when a header name is longer than AMQP's 255-byte limit.
///
/// ```
/// let m = bindery::Message::new(bindery::Bytes::new()).with_header("x-bin", vec![0u8, 255]);
/// let props = bindery_rabbit::amqp::to_properties(&m, false).unwrap();
/// assert_eq!(props.delivery_mode(), &Some(1));
/// ```
pub fn to_properties(message: &RawMessage, persistent: bool) -> bindery::Result<BasicProperties> {
    let mut table = std::collections::BTreeMap::new();
    let mut content_type = None;
    for (name, value) in message.headers().iter() {
        if name == names::CONTENT_TYPE {
            if let Some(ct) = value.as_str().and_then(|s| ShortString::try_new(s).ok()) {
                content_type = Some(ct);
                continue;
            }
        }
        let key = ShortString::try_new(name)
            .map_err(|_| Error::codec(format!("header name `{}…` is longer than AMQP's 255 bytes", truncate(name))))?;
        table.insert(key, header_to_amqp(value));
    }
    let mut props = BasicProperties::default().with_delivery_mode(if persistent { PERSISTENT } else { TRANSIENT });
    if let Some(ct) = content_type {
        props = props.with_content_type(ct);
    }
    if !table.is_empty() {
        props = props.with_headers(FieldTable::from(table));
    }
    Ok(props)
}

fn truncate(name: &str) -> &str {
    let mut end = name.len().min(40);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

fn header_to_amqp(value: &HeaderValue) -> AMQPValue {
    match value.as_str() {
        Some(s) => AMQPValue::LongString(LongString::from(s)),
        None => AMQPValue::ByteArray(ByteArray::from(value.as_bytes())),
    }
}

/// A received message: payload as is, AMQP headers as headers, `content-type` as
/// `contentType`, and the `message-id`/`correlation-id`/`reply-to` properties filling the `id`,
/// `correlationId` and `replyTo` headers when those are absent. Typed header values (numbers,
/// booleans) become text; tables and arrays (RabbitMQ's `x-death`) become JSON text.
///
/// ```
/// let props = lapin::BasicProperties::default().with_content_type("text/plain".into());
/// let m = bindery_rabbit::amqp::to_message(b"hi".to_vec(), &props);
/// assert_eq!(m.headers().content_type(), Some("text/plain"));
/// ```
pub fn to_message(data: Vec<u8>, props: &BasicProperties) -> RawMessage {
    let table = props.headers().as_ref();
    let mut headers = Headers::with_capacity(table.map_or(0, |t| t.inner().len()) + 1);
    if let Some(table) = table {
        for (name, value) in table {
            headers.insert(name.as_str().to_string(), amqp_to_header(value));
        }
    }
    if let Some(ct) = props.content_type() {
        headers.insert_if_absent(names::CONTENT_TYPE, ct.as_str());
    }
    // Foreign publishers use the AMQP properties; bindery's own headers win when both exist.
    if let Some(id) = props.message_id() {
        headers.insert_if_absent(names::ID, id.as_str());
    }
    if let Some(c) = props.correlation_id() {
        headers.insert_if_absent(names::CORRELATION_ID, c.as_str());
    }
    if let Some(r) = props.reply_to() {
        headers.insert_if_absent(names::REPLY_TO, r.as_str());
    }
    Message::from_parts(Bytes::from(data), headers)
}

fn amqp_to_header(value: &AMQPValue) -> HeaderValue {
    match value {
        AMQPValue::LongString(s) => HeaderValue::from(s.as_bytes()),
        AMQPValue::ByteArray(b) => HeaderValue::from(b.as_slice()),
        AMQPValue::ShortString(s) => HeaderValue::from(s.as_str()),
        AMQPValue::Void => HeaderValue::from(""),
        other => HeaderValue::from(amqp_to_json(other).to_string().trim_matches('"').to_string()),
    }
}

/// Structured values (`x-death` is a list of tables) become JSON text.
fn amqp_to_json(value: &AMQPValue) -> serde_json::Value {
    use serde_json::Value;
    match value {
        AMQPValue::Boolean(b) => Value::Bool(*b),
        AMQPValue::ShortShortInt(n) => (*n).into(),
        AMQPValue::ShortShortUInt(n) => (*n).into(),
        AMQPValue::ShortInt(n) => (*n).into(),
        AMQPValue::ShortUInt(n) => (*n).into(),
        AMQPValue::LongInt(n) => (*n).into(),
        AMQPValue::LongUInt(n) => (*n).into(),
        AMQPValue::LongLongInt(n) => (*n).into(),
        AMQPValue::Timestamp(n) => (*n).into(),
        AMQPValue::Float(f) => serde_json::Number::from_f64(f64::from(*f)).map_or(Value::Null, Value::Number),
        AMQPValue::Double(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        AMQPValue::DecimalValue(d) => {
            let v = f64::from(d.value) / 10f64.powi(i32::from(d.scale));
            serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
        }
        AMQPValue::ShortString(s) => Value::String(s.as_str().to_string()),
        AMQPValue::LongString(s) => Value::String(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ByteArray(b) => Value::Array(b.as_slice().iter().map(|x| (*x).into()).collect()),
        AMQPValue::FieldArray(a) => Value::Array(a.as_slice().iter().map(amqp_to_json).collect()),
        AMQPValue::FieldTable(t) => {
            Value::Object(t.inner().iter().map(|(k, v)| (k.as_str().to_string(), amqp_to_json(v))).collect())
        }
        AMQPValue::Void => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(m: &RawMessage) -> RawMessage {
        let props = to_properties(m, true).unwrap();
        to_message(m.payload().to_vec(), &props)
    }

    #[test]
    fn content_type_is_the_amqp_property() {
        let m = Message::new(Bytes::from_static(b"{}")).with_content_type("application/json");
        let props = to_properties(&m, true).unwrap();
        assert_eq!(props.content_type().as_ref().map(|c| c.as_str()), Some("application/json"));
        assert!(props.headers().is_none(), "contentType must not also be an AMQP header");
        assert_eq!(props.delivery_mode(), &Some(2));
        assert_eq!(round_trip(&m).headers().content_type(), Some("application/json"));
        assert_eq!(to_properties(&m, false).unwrap().delivery_mode(), &Some(1));
    }

    #[test]
    fn headers_round_trip_byte_for_byte() {
        let binary = vec![0u8, 1, 127, 128, 254, 255];
        let long = "x".repeat(70_000);
        let m = Message::new(Bytes::from_static(b"p"))
            .with_header("x-unicode", "grüße, 世界 🌍")
            .with_header("x-binary", binary.clone())
            .with_header("x-long", long.clone())
            .with_header("x-empty", "")
            .with_key("customer-1");
        let props = to_properties(&m, true).unwrap();
        let table = props.headers().as_ref().unwrap();
        assert!(matches!(table.inner().get("x-binary"), Some(AMQPValue::ByteArray(_))));
        assert!(matches!(table.inner().get("x-unicode"), Some(AMQPValue::LongString(_))));
        let back = round_trip(&m);
        let h = back.headers();
        assert_eq!(h.get_str("x-unicode"), Some("grüße, 世界 🌍"));
        assert_eq!(h.get("x-binary").map(|v| v.as_bytes()), Some(&binary[..]));
        assert_eq!(h.get_str("x-long"), Some(long.as_str()));
        assert_eq!(h.get_str("x-empty"), Some(""));
        assert_eq!(h.key(), Some(&b"customer-1"[..]));
        assert_eq!(&back.payload()[..], b"p");
    }

    #[test]
    fn overlong_header_name_is_an_error_naming_it() {
        let name = "h".repeat(300);
        let m = Message::new(Bytes::new()).with_header(name, "v");
        let e = to_properties(&m, true).unwrap_err().to_string();
        assert!(e.contains("hhhh") && e.contains("255"), "{e}");
        // An overlong content type travels as a header instead of failing.
        let ct = format!("text/{}", "x".repeat(300));
        let m = Message::new(Bytes::new()).with_content_type(ct.clone());
        assert_eq!(round_trip(&m).headers().content_type(), Some(ct.as_str()));
    }

    #[test]
    fn foreign_properties_and_typed_headers_become_headers() {
        let mut table = FieldTable::default();
        table.insert("count".into(), AMQPValue::LongInt(-7));
        table.insert("flag".into(), AMQPValue::Boolean(true));
        let mut death = FieldTable::default();
        death.insert("queue".into(), AMQPValue::LongString("orders.billing".into()));
        death.insert("count".into(), AMQPValue::LongLongInt(1));
        table.insert("x-death".into(), AMQPValue::FieldArray(vec![AMQPValue::FieldTable(death)].into()));
        let props = BasicProperties::default()
            .with_headers(table)
            .with_content_type("text/plain".into())
            .with_message_id("m-1".into())
            .with_correlation_id("c-1".into())
            .with_reply_to("replies".into());
        let m = to_message(b"hi".to_vec(), &props);
        let h = m.headers();
        assert_eq!(h.get_str("count"), Some("-7"));
        assert_eq!(h.get_str("flag"), Some("true"));
        assert_eq!(h.get_str("x-death"), Some(r#"[{"count":1,"queue":"orders.billing"}]"#));
        assert_eq!(h.content_type(), Some("text/plain"));
        assert_eq!(h.get_str("id"), Some("m-1"));
        assert_eq!(h.correlation_id(), Some("c-1"));
        assert_eq!(h.reply_to(), Some("replies"));
    }
}
