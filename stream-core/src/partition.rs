//! Partition keys taken from a message: `producer.partition-key` is `header:<name>` or a JSON
//! pointer (RFC 6901) into the payload.
//!
//! A pointer is read straight off the encoded JSON: a single pass that compares object keys
//! in place and skips every value off the path, without building the document. Converting
//! the payload to a `serde_json::Value` first (the obvious way) allocated every field and
//! cost about 3,800 instructions for a 60-byte event, more than encoding it.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::headers::{HeaderValue, Headers};

/// A parsed `producer.partition-key`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum KeySelector {
    /// `header:<name>`: that header's value.
    Header(String),
    /// A JSON pointer, split into its unescaped reference tokens.
    Pointer(Vec<String>),
}

impl KeySelector {
    /// Parses a selector (config validation has checked its form: `/…` or `header:…`).
    pub(crate) fn parse(selector: &str) -> Self {
        match selector.strip_prefix("header:") {
            Some(name) => Self::Header(name.to_string()),
            None => {
                Self::Pointer(selector.split('/').skip(1).map(|t| t.replace("~1", "/").replace("~0", "~")).collect())
            }
        }
    }

    /// The key for a message whose payload is the JSON text `json`, or `None` if the pointer
    /// leads nowhere (or to `null`), or the payload is not JSON.
    pub(crate) fn key_in_json(&self, json: &[u8], headers: &Headers) -> Option<HeaderValue> {
        match self {
            Self::Header(name) => headers.get(name).cloned(),
            Self::Pointer(tokens) => {
                let mut de = serde_json::Deserializer::from_slice(json);
                Seek { tokens }.deserialize(&mut de).ok().flatten()
            }
        }
    }

    /// The key for a typed payload whose JSON text, if it was encoded as JSON, is `json`.
    ///
    /// The pointer is followed through the payload's own `Serialize` calls: fields off the path
    /// are never visited, so this costs a fraction of reading the text. Shapes the walk does not
    /// follow (floats, bytes, enum variants with data, objects or arrays as keys) fall back to
    /// reading `json`, or for payloads not encoded as JSON, their JSON form.
    pub(crate) fn key_of<U: serde::Serialize + ?Sized>(
        &self,
        payload: &U,
        json: Option<&[u8]>,
        headers: &Headers,
    ) -> Option<HeaderValue> {
        let Self::Pointer(tokens) = self else { return self.key_in_json(&[], headers) };
        match payload.serialize(walk::Walker { tokens }) {
            Ok(key) => key,
            Err(walk::Unsupported) => match json {
                Some(json) => self.key_in_json(json, headers),
                None => self.key_in_json(&serde_json::to_vec(payload).ok()?, headers),
            },
        }
    }
}

impl fmt::Display for KeySelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Header(name) => write!(f, "header:{name}"),
            Self::Pointer(tokens) => {
                tokens.iter().try_for_each(|t| write!(f, "/{}", t.replace('~', "~0").replace('/', "~1")))
            }
        }
    }
}

/// Walks `tokens` down the document; yields the key found at their end.
struct Seek<'p> {
    tokens: &'p [String],
}

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = Option<HeaderValue>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        match self.tokens {
            [] => d.deserialize_any(Leaf),
            _ => d.deserialize_any(self),
        }
    }
}

impl<'de> Visitor<'de> for Seek<'_> {
    type Value = Option<HeaderValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (token, rest) = match self.tokens.split_first() {
            Some(split) => split,
            None => return Ok(None),
        };
        let mut found = None;
        while let Some(matched) = map.next_key_seed(KeyIs(token))? {
            if matched && found.is_none() {
                found = Some(map.next_value_seed(Seek { tokens: rest })?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found.flatten())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let Some((token, rest)) = self.tokens.split_first() else { return Ok(None) };
        // As `serde_json::Value::pointer`: decimal digits, no sign, no leading zero.
        let index = match token.parse::<usize>() {
            Ok(i) if !token.starts_with('+') && (token == "0" || !token.starts_with('0')) => Some(i),
            _ => None,
        };
        let mut found = None;
        let mut at = 0;
        loop {
            if Some(at) == index {
                match seq.next_element_seed(Seek { tokens: rest })? {
                    Some(v) => found = v,
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            at += 1;
        }
        Ok(found)
    }

    // A scalar where the path goes on: nothing there.
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Whether an object key equals the token, compared without allocating.
struct KeyIs<'t>(&'t str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

/// The key text for the value at the pointer, as `serde_json::Value`'s `to_string` writes it
/// (strings without quotes); `null` gives no key.
struct Leaf;

impl<'de> Visitor<'de> for Leaf {
    type Value = Option<HeaderValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(HeaderValue::from(v)))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(HeaderValue::from(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(HeaderValue::from(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(HeaderValue::from(v.to_string())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(v).map(|n| HeaderValue::from(n.to_string())))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(HeaderValue::from_static(if v { "true" } else { "false" })))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let v: serde_json::Value = serde::Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(Some(HeaderValue::from(v.to_string())))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let v: serde_json::Value = serde::Deserialize::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(Some(HeaderValue::from(v.to_string())))
    }
}

/// Following a pointer through a payload's `Serialize` implementation, as JSON would lay the
/// payload out (structs and maps as objects, sequences and tuples as arrays, `Option` and
/// newtypes transparent, unit variants as strings, `{"variant": value}` for newtype variants).
mod walk {
    use std::fmt;

    use serde::Serialize;
    use serde::ser::{self, Impossible};

    use crate::headers::HeaderValue;

    /// The payload took a shape the walk does not follow: read its JSON instead.
    #[derive(Debug)]
    pub(crate) struct Unsupported;

    impl fmt::Display for Unsupported {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("shape not followed")
        }
    }
    impl std::error::Error for Unsupported {}
    impl ser::Error for Unsupported {
        fn custom<T: fmt::Display>(_: T) -> Self {
            Unsupported
        }
    }

    type Key = Option<HeaderValue>;

    pub(crate) struct Walker<'p> {
        pub(crate) tokens: &'p [String],
    }

    impl<'p> Walker<'p> {
        /// A scalar: the key if the path ends here, nothing if it goes on into it.
        fn scalar(&self, key: impl FnOnce() -> HeaderValue) -> Result<Key, Unsupported> {
            Ok(self.tokens.is_empty().then(key))
        }

        /// A value JSON writes as a number or in a way the walk does not reproduce: fine to
        /// pass over on the way, but as the key itself it is read from the JSON text.
        fn unsupported_leaf(&self) -> Result<Key, Unsupported> {
            if self.tokens.is_empty() { Err(Unsupported) } else { Ok(None) }
        }

        /// A container: its members are looked up by the first token; the key itself may not
        /// be a container (its JSON text is then needed).
        fn descend(&self) -> Result<(&'p str, &'p [String]), Unsupported> {
            self.tokens.split_first().map(|(t, rest)| (t.as_str(), rest)).ok_or(Unsupported)
        }
    }

    /// As `serde_json::Value::pointer` reads an array index: digits, no sign, no leading zero.
    fn index(token: &str) -> Option<usize> {
        if token.starts_with('+') || (token.starts_with('0') && token.len() > 1) { None } else { token.parse().ok() }
    }

    impl<'p> ser::Serializer for Walker<'p> {
        type Ok = Key;
        type Error = Unsupported;
        type SerializeSeq = Elements<'p>;
        type SerializeTuple = Elements<'p>;
        type SerializeTupleStruct = Elements<'p>;
        type SerializeTupleVariant = Impossible<Key, Unsupported>;
        type SerializeMap = Entries<'p>;
        type SerializeStruct = Fields<'p>;
        type SerializeStructVariant = Impossible<Key, Unsupported>;

        fn serialize_bool(self, v: bool) -> Result<Key, Unsupported> {
            self.scalar(|| HeaderValue::from_static(if v { "true" } else { "false" }))
        }
        fn serialize_i8(self, v: i8) -> Result<Key, Unsupported> {
            self.serialize_i64(i64::from(v))
        }
        fn serialize_i16(self, v: i16) -> Result<Key, Unsupported> {
            self.serialize_i64(i64::from(v))
        }
        fn serialize_i32(self, v: i32) -> Result<Key, Unsupported> {
            self.serialize_i64(i64::from(v))
        }
        fn serialize_i64(self, v: i64) -> Result<Key, Unsupported> {
            self.scalar(|| HeaderValue::from(v.to_string()))
        }
        fn serialize_u8(self, v: u8) -> Result<Key, Unsupported> {
            self.serialize_u64(u64::from(v))
        }
        fn serialize_u16(self, v: u16) -> Result<Key, Unsupported> {
            self.serialize_u64(u64::from(v))
        }
        fn serialize_u32(self, v: u32) -> Result<Key, Unsupported> {
            self.serialize_u64(u64::from(v))
        }
        fn serialize_u64(self, v: u64) -> Result<Key, Unsupported> {
            self.scalar(|| HeaderValue::from(v))
        }
        fn serialize_f32(self, _: f32) -> Result<Key, Unsupported> {
            self.unsupported_leaf()
        }
        fn serialize_f64(self, _: f64) -> Result<Key, Unsupported> {
            self.unsupported_leaf()
        }
        fn serialize_char(self, v: char) -> Result<Key, Unsupported> {
            self.scalar(|| HeaderValue::from(v.encode_utf8(&mut [0; 4]) as &str))
        }
        fn serialize_str(self, v: &str) -> Result<Key, Unsupported> {
            self.scalar(|| HeaderValue::from(v))
        }
        fn serialize_bytes(self, _: &[u8]) -> Result<Key, Unsupported> {
            Err(Unsupported) // an array of numbers in JSON
        }
        fn serialize_none(self) -> Result<Key, Unsupported> {
            Ok(None)
        }
        fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Key, Unsupported> {
            v.serialize(self)
        }
        fn serialize_unit(self) -> Result<Key, Unsupported> {
            Ok(None)
        }
        fn serialize_unit_struct(self, _: &'static str) -> Result<Key, Unsupported> {
            Ok(None)
        }
        fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<Key, Unsupported> {
            self.serialize_str(variant)
        }
        fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> Result<Key, Unsupported> {
            v.serialize(self)
        }
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            variant: &'static str,
            v: &T,
        ) -> Result<Key, Unsupported> {
            let (token, rest) = self.descend()?;
            if token == variant { v.serialize(Walker { tokens: rest }) } else { Ok(None) }
        }
        fn serialize_seq(self, _: Option<usize>) -> Result<Elements<'p>, Unsupported> {
            let (token, rest) = self.descend()?;
            Ok(Elements { index: index(token), rest, at: 0, found: None })
        }
        fn serialize_tuple(self, len: usize) -> Result<Elements<'p>, Unsupported> {
            self.serialize_seq(Some(len))
        }
        fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Elements<'p>, Unsupported> {
            self.serialize_seq(Some(len))
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, Unsupported> {
            Err(Unsupported)
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Entries<'p>, Unsupported> {
            let (token, rest) = self.descend()?;
            Ok(Entries { token, rest, matched: false, found: None })
        }
        fn serialize_struct(self, name: &'static str, _: usize) -> Result<Fields<'p>, Unsupported> {
            if name.starts_with("$serde_json::private::") {
                // serde_json's raw JSON text or arbitrary-precision number in disguise.
                return Err(Unsupported);
            }
            let (token, rest) = self.descend()?;
            Ok(Fields { token, rest, found: None })
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, Unsupported> {
            Err(Unsupported)
        }
    }

    pub(crate) struct Elements<'p> {
        index: Option<usize>,
        rest: &'p [String],
        at: usize,
        found: Option<Key>,
    }

    impl Elements<'_> {
        fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unsupported> {
            if self.found.is_none() && Some(self.at) == self.index {
                self.found = Some(v.serialize(Walker { tokens: self.rest })?);
            }
            self.at += 1;
            Ok(())
        }
    }

    /// Sequences, tuples and tuple structs are all JSON arrays.
    macro_rules! array_like {
        ($($kind:ident :: $method:ident),*) => {$(
            impl ser::$kind for Elements<'_> {
                type Ok = Key;
                type Error = Unsupported;
                fn $method<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unsupported> {
                    self.element(v)
                }
                fn end(self) -> Result<Key, Unsupported> {
                    Ok(self.found.flatten())
                }
            }
        )*};
    }
    array_like!(
        SerializeSeq::serialize_element,
        SerializeTuple::serialize_element,
        SerializeTupleStruct::serialize_field
    );

    pub(crate) struct Fields<'p> {
        token: &'p str,
        rest: &'p [String],
        found: Option<Key>,
    }

    impl ser::SerializeStruct for Fields<'_> {
        type Ok = Key;
        type Error = Unsupported;
        fn serialize_field<T: Serialize + ?Sized>(&mut self, name: &'static str, v: &T) -> Result<(), Unsupported> {
            if self.found.is_none() && name == self.token {
                self.found = Some(v.serialize(Walker { tokens: self.rest })?);
            }
            Ok(())
        }
        fn end(self) -> Result<Key, Unsupported> {
            Ok(self.found.flatten())
        }
    }

    pub(crate) struct Entries<'p> {
        token: &'p str,
        rest: &'p [String],
        /// The key just given equals the token.
        matched: bool,
        found: Option<Key>,
    }

    impl ser::SerializeMap for Entries<'_> {
        type Ok = Key;
        type Error = Unsupported;
        fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Unsupported> {
            if self.found.is_some() {
                return Ok(());
            }
            // As JSON writes a map key: strings as they are, numbers and booleans as text.
            self.matched = match serde_json::to_value(key) {
                Ok(serde_json::Value::String(k)) => k == self.token,
                Ok(serde_json::Value::Number(n)) => n.to_string() == self.token,
                Ok(serde_json::Value::Bool(b)) => (if b { "true" } else { "false" }) == self.token,
                _ => return Err(Unsupported),
            };
            Ok(())
        }
        fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Unsupported> {
            if std::mem::take(&mut self.matched) {
                self.found = Some(v.serialize(Walker { tokens: self.rest })?);
            }
            Ok(())
        }
        fn end(self) -> Result<Key, Unsupported> {
            Ok(self.found.flatten())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the key was before this module: the payload as a `serde_json::Value`, then
    /// `Value::pointer`. Both must agree on every document and pointer.
    fn by_value(selector: &str, doc: &serde_json::Value) -> Option<HeaderValue> {
        match doc.pointer(selector)? {
            serde_json::Value::String(s) => Some(HeaderValue::from(s.clone())),
            serde_json::Value::Null => None,
            other => Some(HeaderValue::from(other.to_string())),
        }
    }

    #[test]
    fn pointers_read_off_the_json_text_agree_with_value_pointer() {
        let doc = serde_json::json!({
            "order": 7, "neg": -3, "price": 2.5, "ok": true, "none": null,
            "customer": {"id": "c-9", "tags": ["a", {"deep": 1}], "empty": {}},
            "a/b": "slash", "m~n": "tilde", "": "empty key", "uni": "ünï", "esc": "q\"uote\n",
            "list": [10, 20, [30, 40]], "obj": {"x": [1, {"y": null}]}
        });
        let json = serde_json::to_vec(&doc).unwrap();
        let headers = Headers::new();
        for pointer in [
            "/order",
            "/neg",
            "/price",
            "/ok",
            "/none",
            "/customer",
            "/customer/id",
            "/customer/tags",
            "/customer/tags/0",
            "/customer/tags/1",
            "/customer/tags/1/deep",
            "/customer/tags/2",
            "/customer/empty",
            "/a~1b",
            "/m~0n",
            "/",
            "/uni",
            "/esc",
            "/list/2/1",
            "/list/01",
            "/list/+1",
            "/list/-1",
            "/list/x",
            "/obj/x/1/y",
            "/order/deeper",
            "/missing",
            "/customer/missing/x",
            "/list/9",
        ] {
            let selector = KeySelector::parse(pointer);
            assert_eq!(selector.to_string(), pointer, "round trip of {pointer}");
            assert_eq!(selector.key_in_json(&json, &headers), by_value(pointer, &doc), "pointer {pointer}");
            // A `Value` payload, walked through its `Serialize` impl.
            assert_eq!(selector.key_of(&doc, Some(&json), &headers), by_value(pointer, &doc), "walked {pointer}");
        }
    }

    /// The walk through `Serialize` gives the key reading the JSON text gives, for every shape
    /// it follows, and declines (so the text is read) only where it says it does.
    #[test]
    fn walking_a_typed_payload_agrees_with_reading_its_json() {
        use std::collections::BTreeMap;

        #[derive(serde::Serialize)]
        struct Id(u32);
        #[derive(serde::Serialize)]
        enum Kind {
            Plain,
            Wrapped(String),
            Pair(u8, u8),
            Named { at: u8 },
        }
        #[derive(serde::Serialize)]
        struct Inner {
            id: Id,
            tags: Vec<&'static str>,
            by_name: BTreeMap<&'static str, i64>,
            by_number: BTreeMap<u32, char>,
        }
        #[derive(serde::Serialize)]
        struct Event {
            customer: &'static str,
            amount: i64,
            ok: bool,
            missing: Option<u8>,
            present: Option<u8>,
            price: f64,
            kinds: (Kind, Kind, Kind, Kind),
            inner: Inner,
            #[serde(skip_serializing_if = "Option::is_none")]
            skipped: Option<u8>,
            #[serde(with = "serde_bytes_like")]
            raw: Vec<u8>,
        }
        mod serde_bytes_like {
            pub(super) fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(v)
            }
        }
        let event = Event {
            customer: "c-7",
            amount: -12,
            ok: true,
            missing: None,
            present: Some(3),
            price: 2.5,
            kinds: (Kind::Plain, Kind::Wrapped("w".into()), Kind::Pair(1, 2), Kind::Named { at: 4 }),
            inner: Inner {
                id: Id(9),
                tags: vec!["a", "b"],
                by_name: BTreeMap::from([("x", 1), ("y", -2)]),
                by_number: BTreeMap::from([(5, 'q')]),
            },
            skipped: None,
            raw: vec![7, 8],
        };
        let json = serde_json::to_vec(&event).unwrap();
        let headers = Headers::new();
        let walked = [
            "/customer",
            "/amount",
            "/ok",
            "/missing",
            "/present",
            "/kinds/0",
            "/kinds/1/Wrapped",
            "/kinds/1/Other",
            "/inner/id",
            "/inner/tags/1",
            "/inner/tags/01",
            "/inner/tags/7",
            "/inner/by_name/y",
            "/inner/by_number/5",
            "/inner/by_number/6",
            "/skipped",
            "/nothing",
            "/customer/deeper",
            "/price/x",
        ];
        let read = ["/price", "/kinds/2/Pair/1", "/kinds/3/Named/at", "/raw/0", "/inner", "/inner/tags"];
        for pointer in walked.iter().chain(&read) {
            let selector = KeySelector::parse(pointer);
            let expected = selector.key_in_json(&json, &headers);
            assert_eq!(selector.key_of(&event, Some(&json), &headers), expected, "pointer {pointer}");
            assert_eq!(selector.key_of(&event, None, &headers), expected, "pointer {pointer}, not encoded as JSON");
            let KeySelector::Pointer(tokens) = &selector else { unreachable!() };
            let by_walk = serde::Serialize::serialize(&event, walk::Walker { tokens });
            assert_eq!(by_walk.is_ok(), walked.contains(pointer), "pointer {pointer} walked: {by_walk:?}");
        }
        assert_eq!(
            KeySelector::parse("/inner/by_name/y").key_of(&event, None, &headers),
            Some(HeaderValue::from("-2"))
        );
    }

    #[test]
    fn header_selectors_and_typed_payloads() {
        #[derive(serde::Serialize)]
        struct Order<'a> {
            id: u64,
            customer: &'a str,
            note: Option<&'a str>,
        }
        let order = Order { id: 42, customer: "c-1", note: None };
        let mut h = Headers::new();
        h.insert("tenant", "acme");
        assert_eq!(KeySelector::parse("/customer").key_of(&order, None, &h), Some(HeaderValue::from("c-1")));
        assert_eq!(KeySelector::parse("/id").key_of(&order, None, &h), Some(HeaderValue::from("42")));
        assert_eq!(KeySelector::parse("/note").key_of(&order, None, &h), None);
        assert_eq!(KeySelector::parse("header:tenant").key_in_json(b"{}", &h), Some(HeaderValue::from("acme")));
        assert_eq!(KeySelector::parse("header:missing").key_in_json(b"{}", &h), None);
        assert_eq!(KeySelector::parse("/x").key_in_json(b"not json", &h), None);
    }
}
