//! Sequences of header operations with arbitrary names and values (bytes, text, numbers,
//! UUIDs), checked after every step against a plain model: what was inserted reads back
//! equal, order is insertion order, typed accessors answer exactly when the bytes parse, and
//! clones taken earlier do not change.
#![no_main]

use arbitrary::Arbitrary;
use bindery::headers::names;
use bindery::{Bytes, HeaderValue, Headers, Message};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Name {
    Id,
    Timestamp,
    ContentType,
    CorrelationId,
    DeliveryAttempt,
    Key,
    ReplyTo,
    Traceparent,
    Other(String),
}

impl Name {
    fn as_str(&self) -> &str {
        match self {
            Name::Id => names::ID,
            Name::Timestamp => names::TIMESTAMP,
            Name::ContentType => names::CONTENT_TYPE,
            Name::CorrelationId => names::CORRELATION_ID,
            Name::DeliveryAttempt => names::DELIVERY_ATTEMPT,
            Name::Key => names::KEY,
            Name::ReplyTo => names::REPLY_TO,
            Name::Traceparent => names::TRACEPARENT,
            Name::Other(s) => s,
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Value {
    Bytes(Vec<u8>),
    Shared(Vec<u8>),
    Slice(Vec<u8>),
    Text(String),
    Str(String),
    U64(u64),
    U32(u32),
    Uuid(u128),
    Static,
}

impl Value {
    /// The header value and the bytes it must hold.
    fn build(&self) -> (HeaderValue, Vec<u8>) {
        match self {
            Value::Bytes(b) => (HeaderValue::from(b.clone()), b.clone()),
            Value::Shared(b) => (HeaderValue::from(Bytes::from(b.clone())), b.clone()),
            Value::Slice(b) => (HeaderValue::from(&b[..]), b.clone()),
            Value::Text(s) => (HeaderValue::from(s.clone()), s.clone().into_bytes()),
            Value::Str(s) => (HeaderValue::from(s.as_str()), s.clone().into_bytes()),
            Value::U64(n) => (HeaderValue::from(*n), n.to_string().into_bytes()),
            Value::U32(n) => (HeaderValue::from(*n), n.to_string().into_bytes()),
            Value::Uuid(n) => {
                let id = uuid::Uuid::from_u128(*n);
                (HeaderValue::from(id), id.hyphenated().to_string().into_bytes())
            }
            Value::Static => (HeaderValue::from_static("application/json"), b"application/json".to_vec()),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Op {
    Insert(Name, Value),
    InsertIfAbsent(Name, Value),
    Remove(Name),
    SetCorrelationId(Value),
    SetContentType(Value),
    SetKey(Value),
    SetReplyTo(Value),
    /// Keep a clone; it must stay as it was whatever happens to the original.
    Snapshot,
}

type Model = Vec<(String, Vec<u8>)>;

fn set(model: &mut Model, name: &str, value: Vec<u8>) {
    match model.iter_mut().find(|(n, _)| n == name) {
        Some(slot) => slot.1 = value,
        None => model.push((name.to_string(), value)),
    }
}

/// Sets a standard header through its typed setter, and the model's copy by name.
fn apply(
    headers: &mut Headers,
    model: &mut Model,
    setter: impl FnOnce(&mut Headers, HeaderValue),
    name: &str,
    value: &Value,
) {
    let (v, bytes) = value.build();
    setter(headers, v);
    set(model, name, bytes);
}

fn check(headers: &Headers, model: &Model) {
    assert_eq!(headers.len(), model.len());
    assert_eq!(headers.is_empty(), model.is_empty());
    let seen: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (n, v.as_bytes())).collect();
    let expected: Vec<(&str, &[u8])> = model.iter().map(|(n, v)| (n.as_str(), &v[..])).collect();
    assert_eq!(seen, expected, "insertion order and values");
    for (name, value) in model {
        let v = headers.get(name).expect("inserted header is present");
        assert!(headers.contains(name));
        assert_eq!(v.as_bytes(), &value[..]);
        assert_eq!(&v.to_bytes()[..], &value[..]);
        assert_eq!(v.as_str(), std::str::from_utf8(value).ok());
        assert_eq!(headers.get_str(name), std::str::from_utf8(value).ok());
        assert_eq!(v, &HeaderValue::from(value.clone()));
        let _ = format!("{v:?}");
    }
    let text = |n: &str| model.iter().find(|(k, _)| k == n).and_then(|(_, v)| std::str::from_utf8(v).ok());
    assert_eq!(headers.id(), text(names::ID).and_then(|s| uuid::Uuid::parse_str(s).ok()));
    assert_eq!(headers.timestamp(), text(names::TIMESTAMP).and_then(|s| s.parse::<u64>().ok()));
    assert_eq!(headers.delivery_attempt(), text(names::DELIVERY_ATTEMPT).and_then(|s| s.parse::<u32>().ok()));
    assert_eq!(headers.content_type(), text(names::CONTENT_TYPE));
    assert_eq!(headers.correlation_id(), text(names::CORRELATION_ID));
    assert_eq!(headers.reply_to(), text(names::REPLY_TO));
    assert_eq!(headers.traceparent(), text(names::TRACEPARENT));
    assert_eq!(headers.key(), model.iter().find(|(k, _)| k == names::KEY).map(|(_, v)| &v[..]));
    let _ = format!("{headers:?}");
}

fuzz_target!(|ops: Vec<Op>| {
    let mut headers = Headers::new();
    let mut model: Model = Vec::new();
    let mut snapshots: Vec<(Headers, Model)> = Vec::new();
    for op in &ops {
        match op {
            Op::Insert(name, value) => {
                let (v, bytes) = value.build();
                headers.insert(name.as_str().to_string(), v);
                set(&mut model, name.as_str(), bytes);
            }
            Op::InsertIfAbsent(name, value) => {
                let (v, bytes) = value.build();
                headers.insert_if_absent(name.as_str().to_string(), v);
                if !model.iter().any(|(n, _)| n == name.as_str()) {
                    model.push((name.as_str().to_string(), bytes));
                }
            }
            Op::Remove(name) => {
                let removed = headers.remove(name.as_str());
                let at = model.iter().position(|(n, _)| n == name.as_str());
                let expected = at.map(|at| model.remove(at).1);
                assert_eq!(removed.as_ref().map(HeaderValue::as_bytes), expected.as_deref());
            }
            Op::SetCorrelationId(value) => {
                apply(&mut headers, &mut model, |h, v| h.set_correlation_id(v), names::CORRELATION_ID, value)
            }
            Op::SetContentType(value) => {
                apply(&mut headers, &mut model, |h, v| h.set_content_type(v), names::CONTENT_TYPE, value)
            }
            Op::SetKey(value) => apply(&mut headers, &mut model, |h, v| h.set_key(v), names::KEY, value),
            Op::SetReplyTo(value) => apply(&mut headers, &mut model, |h, v| h.set_reply_to(v), names::REPLY_TO, value),
            Op::Snapshot => snapshots.push((headers.clone(), model.clone())),
        }
        check(&headers, &model);
    }
    for (snapshot, model) in &snapshots {
        check(snapshot, model);
    }
    // The same entries built another way are equal headers, on a message too.
    let rebuilt: Headers = model.iter().map(|(n, v)| (n.clone(), v.clone())).collect();
    assert_eq!(rebuilt, headers);
    let message = model.iter().fold(Message::new(()), |m, (n, v)| m.with_header(n.clone(), v.clone()));
    assert_eq!(message.headers(), &headers);
});
