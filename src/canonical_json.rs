//! Canonical JSON: the one spelling of an entry body that is hashed and signed.
//!
//! The rules (schema/FORMAT.md, "Body") are a strict subset of JSON:
//! objects with keys sorted by their UTF-8 bytes and no duplicates, no
//! whitespace, integers only (no fraction, no exponent, no `-0`), strings
//! escaped minimally (`\"`, `\\`, `\b \f \n \r \t`, other U+0000..U+001F as
//! `\u00xx` with lower-case hex, everything else literal UTF-8), and no
//! `null`. This module writes that form itself instead of relying on
//! serde_json's map ordering, which a feature flag elsewhere could change.
//! Reading needs no parser of its own: `event::Body::decode` re-encodes the
//! typed body with [`to_vec_typed`] and requires exactly the bytes it was
//! given.
//!
//! Two writers give the same bytes: [`to_vec`] for a `serde_json::Value`,
//! and [`to_vec_typed`], a serde serializer that writes typed values
//! straight into canonical form (no intermediate `Value`), which the append
//! and verify paths use.

use serde::ser::{self, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

/// Write `value` in canonical form. Fails on floats and nulls, which the
/// format does not allow.
pub fn to_vec(value: &Value) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    write_value(&mut out, value)?;
    Ok(out)
}

fn write_value(out: &mut Vec<u8>, value: &Value) -> Result<()> {
    match value {
        Value::Null => return Err(Error::format("null is not allowed in an entry body")),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                out.extend_from_slice(u.to_string().as_bytes());
            } else if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else {
                return Err(Error::format(
                    "a number in an entry body is not an integer (amounts are decimal strings)",
                ));
            }
        }
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push(b'{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(out, key);
                out.push(b':');
                write_value(out, &map[key.as_str()])?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

pub(crate) fn write_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    // Most strings need no escape: copy them whole.
    if !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x00..=0x1f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// Write any serializable value in canonical form, without building a
/// `serde_json::Value`. Fails on floats, nulls (a `None` that is not
/// skipped), bytes, non-string map keys and duplicate keys.
pub fn to_vec_typed<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    value
        .serialize(Canonical { out: &mut out })
        .map_err(|e| Error::format(e.0))?;
    Ok(out)
}

/// [`to_vec_typed`], appended to `out`. On an error `out` may hold part of
/// the value: discard it.
pub(crate) fn write_typed<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<()> {
    value
        .serialize(Canonical { out })
        .map_err(|e| Error::format(e.0))
}

/// Why a value has no canonical form.
#[derive(Debug)]
pub struct CanonicalError(String);

impl std::fmt::Display for CanonicalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CanonicalError {}

impl ser::Error for CanonicalError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        CanonicalError(msg.to_string())
    }
}

fn refuse<T>(what: &str) -> std::result::Result<T, CanonicalError> {
    Err(CanonicalError(format!(
        "{what} is not allowed in an entry body"
    )))
}

struct Canonical<'a> {
    out: &'a mut Vec<u8>,
}

/// Arrays (sequences, tuples), closed by `close`.
struct SeqWriter<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
    close: &'static [u8],
}

/// Objects (maps, structs): member values are written at the end of `out`
/// as they come, then sorted by key bytes and rewritten in place as
/// `{"key":value,...}`, followed by `close`.
struct ObjectWriter<'a> {
    out: &'a mut Vec<u8>,
    /// Where the object starts in `out`.
    base: usize,
    /// Inline up to [`OBJECT_MEMBERS_INLINE`] members: an event's objects
    /// fit, so writing one allocates nothing.
    members: smallvec::SmallVec<[Member; OBJECT_MEMBERS_INLINE]>,
    key: Option<String>,
    close: &'static [u8],
}

/// A member written so far: its key and where its value is in `out`.
type Member = (std::borrow::Cow<'static, str>, std::ops::Range<usize>);

/// Members an object holds without allocating (40 bytes each on the
/// stack); the widest event object (fund.create) has 8.
const OBJECT_MEMBERS_INLINE: usize = 16;

thread_local! {
    /// The values of the object being sorted (reused: no allocation per
    /// object once it has grown).
    static VALUES: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl<'a> ObjectWriter<'a> {
    fn new(out: &'a mut Vec<u8>, close: &'static [u8]) -> Self {
        ObjectWriter {
            base: out.len(),
            out,
            members: smallvec::SmallVec::new(),
            key: None,
            close,
        }
    }

    fn member<T: Serialize + ?Sized>(
        &mut self,
        key: std::borrow::Cow<'static, str>,
        value: &T,
    ) -> std::result::Result<(), CanonicalError> {
        let start = self.out.len() - self.base;
        value.serialize(Canonical {
            out: &mut *self.out,
        })?;
        self.members.push((key, start..self.out.len() - self.base));
        Ok(())
    }

    fn finish(mut self) -> std::result::Result<(), CanonicalError> {
        self.members
            .sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        if self.members.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(CanonicalError("an object has a key twice".into()));
        }
        VALUES.with(|values| {
            let mut values = values.borrow_mut();
            values.clear();
            values.extend_from_slice(&self.out[self.base..]);
            self.out.truncate(self.base);
            self.out.push(b'{');
            for (i, (key, range)) in self.members.iter().enumerate() {
                if i > 0 {
                    self.out.push(b',');
                }
                write_string(self.out, key);
                self.out.push(b':');
                self.out.extend_from_slice(&values[range.clone()]);
            }
        });
        self.out.push(b'}');
        self.out.extend_from_slice(self.close);
        Ok(())
    }
}

/// Open `{"variant":` for an externally tagged enum variant.
fn open_variant(out: &mut Vec<u8>, variant: &str) {
    out.push(b'{');
    write_string(out, variant);
    out.push(b':');
}

macro_rules! integer {
    ($($name:ident: $t:ty),*) => {
        $(fn $name(self, v: $t) -> std::result::Result<(), CanonicalError> {
            use std::io::Write as _;
            // Straight into `out`: writing to a Vec cannot fail.
            let _ = write!(self.out, "{v}");
            Ok(())
        })*
    };
}

impl<'a> ser::Serializer for Canonical<'a> {
    type Ok = ();
    type Error = CanonicalError;
    type SerializeSeq = SeqWriter<'a>;
    type SerializeTuple = SeqWriter<'a>;
    type SerializeTupleStruct = SeqWriter<'a>;
    type SerializeTupleVariant = SeqWriter<'a>;
    type SerializeMap = ObjectWriter<'a>;
    type SerializeStruct = ObjectWriter<'a>;
    type SerializeStructVariant = ObjectWriter<'a>;

    fn serialize_bool(self, v: bool) -> std::result::Result<(), CanonicalError> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }

    integer!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_u128: u128);

    fn serialize_f32(self, _: f32) -> std::result::Result<(), CanonicalError> {
        refuse("a float (amounts are decimal strings)")
    }

    fn serialize_f64(self, _: f64) -> std::result::Result<(), CanonicalError> {
        refuse("a float (amounts are decimal strings)")
    }

    fn serialize_char(self, v: char) -> std::result::Result<(), CanonicalError> {
        write_string(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }

    fn serialize_str(self, v: &str) -> std::result::Result<(), CanonicalError> {
        write_string(self.out, v);
        Ok(())
    }

    fn serialize_bytes(self, _: &[u8]) -> std::result::Result<(), CanonicalError> {
        refuse("a byte string")
    }

    fn serialize_none(self) -> std::result::Result<(), CanonicalError> {
        refuse("null")
    }

    fn serialize_some<T: Serialize + ?Sized>(
        self,
        value: &T,
    ) -> std::result::Result<(), CanonicalError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> std::result::Result<(), CanonicalError> {
        refuse("null")
    }

    fn serialize_unit_struct(self, _: &'static str) -> std::result::Result<(), CanonicalError> {
        refuse("null")
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> std::result::Result<(), CanonicalError> {
        write_string(self.out, variant);
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> std::result::Result<(), CanonicalError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> std::result::Result<(), CanonicalError> {
        open_variant(self.out, variant);
        value.serialize(Canonical {
            out: &mut *self.out,
        })?;
        self.out.push(b'}');
        Ok(())
    }

    fn serialize_seq(self, _: Option<usize>) -> std::result::Result<SeqWriter<'a>, CanonicalError> {
        self.out.push(b'[');
        Ok(SeqWriter {
            out: self.out,
            first: true,
            close: b"]",
        })
    }

    fn serialize_tuple(self, len: usize) -> std::result::Result<SeqWriter<'a>, CanonicalError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        len: usize,
    ) -> std::result::Result<SeqWriter<'a>, CanonicalError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> std::result::Result<SeqWriter<'a>, CanonicalError> {
        open_variant(self.out, variant);
        self.out.push(b'[');
        Ok(SeqWriter {
            out: self.out,
            first: true,
            close: b"]}",
        })
    }

    fn serialize_map(
        self,
        _: Option<usize>,
    ) -> std::result::Result<ObjectWriter<'a>, CanonicalError> {
        Ok(ObjectWriter::new(self.out, b""))
    }

    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> std::result::Result<ObjectWriter<'a>, CanonicalError> {
        Ok(ObjectWriter::new(self.out, b""))
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> std::result::Result<ObjectWriter<'a>, CanonicalError> {
        open_variant(self.out, variant);
        Ok(ObjectWriter::new(self.out, b"}"))
    }
}

impl SeqWriter<'_> {
    fn element<T: Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> std::result::Result<(), CanonicalError> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        value.serialize(Canonical {
            out: &mut *self.out,
        })
    }

    fn close(self) -> std::result::Result<(), CanonicalError> {
        self.out.extend_from_slice(self.close);
        Ok(())
    }
}

/// The four array-like serializers are the same writer.
macro_rules! array_serializer {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for SeqWriter<'_> {
            type Ok = ();
            type Error = CanonicalError;
            fn $method<T: Serialize + ?Sized>(
                &mut self,
                value: &T,
            ) -> std::result::Result<(), CanonicalError> {
                self.element(value)
            }
            fn end(self) -> std::result::Result<(), CanonicalError> {
                self.close()
            }
        }
    )*};
}

array_serializer!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for ObjectWriter<'_> {
    type Ok = ();
    type Error = CanonicalError;
    fn serialize_key<T: Serialize + ?Sized>(
        &mut self,
        key: &T,
    ) -> std::result::Result<(), CanonicalError> {
        match serde_json::to_value(key) {
            Ok(Value::String(k)) => {
                self.key = Some(k);
                Ok(())
            }
            _ => refuse("a map key that is not a string"),
        }
    }
    fn serialize_value<T: Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> std::result::Result<(), CanonicalError> {
        let key = self
            .key
            .take()
            .ok_or_else(|| CanonicalError("a map value without a key".into()))?;
        self.member(key.into(), value)
    }
    fn end(self) -> std::result::Result<(), CanonicalError> {
        self.finish()
    }
}

/// Structs and struct variants are the same object writer.
macro_rules! struct_serializer {
    ($($trait:ident),*) => {$(
        impl ser::$trait for ObjectWriter<'_> {
            type Ok = ();
            type Error = CanonicalError;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> std::result::Result<(), CanonicalError> {
                self.member(key.into(), value)
            }
            fn end(self) -> std::result::Result<(), CanonicalError> {
                self.finish()
            }
        }
    )*};
}

struct_serializer!(SerializeStruct, SerializeStructVariant);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_by_bytes_and_writes_no_whitespace() {
        let v = json!({"b": 1, "a": [true, "x"], "B": -3, "é": "y"});
        let bytes = to_vec(&v).unwrap();
        assert_eq!(bytes, r#"{"B":-3,"a":[true,"x"],"b":1,"é":"y"}"#.as_bytes());
    }

    #[test]
    fn escapes_minimally() {
        let v = json!("q\"b\\\u{8}\u{c}\n\r\t\u{1}\u{1f}/\u{7f}é");
        let bytes = to_vec(&v).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "\"q\\\"b\\\\\\b\\f\\n\\r\\t\\u0001\\u001f/\u{7f}é\""
        );
    }

    #[test]
    fn rejects_floats_and_nulls() {
        assert!(to_vec(&json!({"a": 1.5})).is_err());
        assert!(to_vec(&json!({"a": null})).is_err());
    }

    #[test]
    fn typed_writer_agrees_with_the_value_writer() {
        #[derive(serde::Serialize)]
        struct Inner {
            z: u64,
            a: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            skipped: Option<String>,
            list: Vec<(String, i64)>,
        }
        #[derive(serde::Serialize)]
        enum Tagged {
            #[serde(rename = "x.y")]
            Newtype(Inner),
            Unit,
        }
        let value = (
            Tagged::Newtype(Inner {
                z: 7,
                a: Some("q\"\u{1}é".into()),
                skipped: None,
                list: vec![("b".into(), -3)],
            }),
            Tagged::Unit,
            std::collections::BTreeMap::from([("é", 1), ("B", 2), ("a", 3)]),
        );
        let typed = to_vec_typed(&value).unwrap();
        assert_eq!(
            typed,
            to_vec(&serde_json::to_value(&value).unwrap()).unwrap()
        );
        assert_eq!(
            String::from_utf8(typed).unwrap(),
            r#"[{"x.y":{"a":"q\"\u0001é","list":[["b",-3]],"z":7}},"Unit",{"B":2,"a":3,"é":1}]"#
        );
        assert!(to_vec_typed(&Some(1.5)).is_err());
        assert!(to_vec_typed(&vec![None::<u8>]).is_err());
    }
}
