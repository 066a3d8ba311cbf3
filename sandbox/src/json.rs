//! An ordered, compact JSON writer for the Authy response bodies.
//!
//! Real clients depend on the *bytes* of Authy's answers, not just their meaning: authy-python
//! looks for the substring `"token":"is valid"` (no space) and authy-openvpn only scans the first
//! few keys, so `message` and `token` must come first. serde_json's default map sorts keys, and
//! turning on its `preserve_order` feature would change the map type for the whole workspace, so
//! the API bodies are built with this tiny value type instead. It must not be used to parse.

use std::fmt::{self, Write as _};

/// A JSON value whose objects keep their keys in insertion order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum J {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    /// Builds an object from `(key, value)` pairs, keeping their order.
    pub(crate) fn obj<const N: usize>(pairs: [(&str, J); N]) -> J {
        J::Obj(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    /// A string value.
    pub(crate) fn s(text: impl Into<String>) -> J {
        J::Str(text.into())
    }

    /// An unsigned integer; values beyond `i64::MAX` cannot occur for ids or times here, but
    /// saturate rather than wrap if they ever do.
    pub(crate) fn u(n: u64) -> J {
        J::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }

    /// A string or `null`.
    pub(crate) fn opt_s(text: Option<String>) -> J {
        text.map_or(J::Null, J::Str)
    }

    fn write_to(&self, out: &mut String) {
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Int(n) => {
                let _ = write!(out, "{n}");
            }
            J::Str(s) => write_str(s, out),
            J::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_to(out);
                }
                out.push(']');
            }
            J::Obj(pairs) => {
                out.push('{');
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_str(k, out);
                    out.push(':');
                    v.write_to(out);
                }
                out.push('}');
            }
        }
    }
}

impl fmt::Display for J {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.write_to(&mut out);
        f.write_str(&out)
    }
}

/// Writes a JSON string literal with the escapes RFC 8259 requires (and no others, like Rails).
fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_keep_insertion_order_and_are_compact() {
        let v = J::obj([
            ("message", J::s("Token is valid.")),
            ("token", J::s("is valid")),
            ("success", J::s("true")),
            ("n", J::Int(-3)),
            ("a", J::Arr(vec![J::Null, J::Bool(false)])),
        ]);
        assert_eq!(
            v.to_string(),
            r#"{"message":"Token is valid.","token":"is valid","success":"true","n":-3,"a":[null,false]}"#
        );
    }

    #[test]
    fn strings_are_escaped_so_serde_can_read_them_back() {
        let nasty = "q\"b\\s\n\t\u{1}é/";
        let text = J::s(nasty).to_string();
        let back: String = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(back, nasty);
    }
}
