//! Canonical JSON and the object digest.
//!
//! Every object is stored once, keyed by `sha256:<hex>` of its canonical JSON encoding:
//! - object keys sorted by Unicode code point (byte order of their UTF-8), at every level;
//! - no whitespace outside strings;
//! - strings and numbers exactly as `serde_json` writes them (minimal escaping, non-ASCII as raw
//!   UTF-8; integers as integers, floats in shortest round-trip form, so `1.0` stays `1.0`).
//!
//! So two objects that differ only in key order, indentation, quoting style, comments, flow vs
//! block style or document markers — anything YAML formatting can change without changing the
//! data — get one digest; a changed value (including `1` vs `1.0`) gets another.
//!
//! Keys are sorted here rather than trusting `serde_json::Map`'s order, because the
//! `preserve_order` feature, enabled by any crate in the build, would make that order
//! insertion order.

use std::io::{self, Write};

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Writes the canonical encoding of `value` to `out`.
pub fn write<W: Write>(value: &Value, out: &mut W) -> io::Result<()> {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.write_all(b"{")?;
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.write_all(b",")?;
                }
                serde_json::to_writer(&mut *out, key)?;
                out.write_all(b":")?;
                write(item, out)?;
            }
            out.write_all(b"}")
        }
        Value::Array(items) => {
            out.write_all(b"[")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.write_all(b",")?;
                }
                write(item, out)?;
            }
            out.write_all(b"]")
        }
        scalar => Ok(serde_json::to_writer(&mut *out, scalar)?),
    }
}

/// The canonical encoding of `value`.
pub fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write(value, &mut out).expect("writing to a Vec cannot fail");
    out
}

/// `sha256:<lowercase hex>` of the canonical encoding of `value`, computed without
/// materialising the encoding.
pub fn digest(value: &Value) -> String {
    let mut hasher = HashWriter(Sha256::new());
    write(value, &mut hasher).expect("hashing cannot fail");
    format!("sha256:{}", hex::encode(hasher.0.finalize()))
}

/// The same digest, of an encoding already made by [`write()`] or [`to_vec`].
pub fn digest_of_encoding(encoding: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(encoding)))
}

struct HashWriter(Sha256);

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn canonical_sorts_keys_at_every_level_and_drops_whitespace() {
        let value = json!({"b": {"z": 1, "a": [true, null, "é\n"]}, "a": 1.0, "A": -2});
        assert_eq!(
            String::from_utf8(to_vec(&value)).unwrap(),
            r#"{"A":-2,"a":1.0,"b":{"a":[true,null,"é\n"],"z":1}}"#
        );
    }

    #[test]
    fn canonical_digest_ignores_key_order_but_not_values() {
        let a =
            json!({"spec": {"group": "g", "names": {"kind": "K", "plural": "ks"}}, "kind": "X"});
        let b =
            json!({"kind": "X", "spec": {"names": {"plural": "ks", "kind": "K"}, "group": "g"}});
        assert_eq!(digest(&a), digest(&b));
        assert_ne!(
            digest(&a),
            digest(&json!({"kind": "X", "spec": {"group": "g"}}))
        );
        assert_ne!(digest(&json!({"n": 1})), digest(&json!({"n": 1.0})));
        let d = digest(&a);
        assert!(d.starts_with("sha256:") && d.len() == 71, "{d}");
    }

    #[test]
    fn canonical_digest_matches_sha256_of_encoding() {
        let value = json!({"x": [1, "two"]});
        let expected = format!(
            "sha256:{}",
            hex::encode(Sha256::digest(br#"{"x":[1,"two"]}"#))
        );
        assert_eq!(digest(&value), expected);
        assert_eq!(digest_of_encoding(&to_vec(&value)), expected);
    }
}
