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
//! typed body with [`to_vec`] and requires exactly the bytes it was given.

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

fn write_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
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
}
