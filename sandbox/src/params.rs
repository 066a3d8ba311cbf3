//! Request parameters, merged Rails-style from the query string and the body.
//!
//! Authy (a Rails/Sinatra service) accepted parameters from the query string, a form body with
//! nested names (`user[email]`, `details[Key]`) or a JSON body, and real clients use all three
//! (PHP even puts `users/new` fields in the query of a POST). Everything is flattened here to
//! Rails names so the handlers look up one thing. Body values win over query values, as in
//! Rails. This module only parses; it decides nothing.

use std::collections::BTreeMap;

use crate::http::parse_form;

/// Flattened `(name, value)` pairs; the last occurrence of a name wins on lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Params(Vec<(String, String)>);

/// The body claimed to be JSON but was not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadJson;

impl Params {
    /// Merges decoded query pairs with the parsed body.
    pub(crate) fn from_parts(
        query: &[(String, String)],
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Params, BadJson> {
        let mut pairs = query.to_vec();
        let ct = content_type.unwrap_or("").to_ascii_lowercase();
        let trimmed = body.trim_ascii_start();
        if ct.starts_with("application/json") || (ct.is_empty() && trimmed.starts_with(b"{")) {
            if !trimmed.is_empty() {
                let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| BadJson)?;
                match value {
                    serde_json::Value::Object(map) => {
                        for (k, v) in map {
                            flatten(&k, &v, &mut pairs);
                        }
                    }
                    // Rails wraps a non-object JSON body as `_json`; nothing here reads it.
                    other => flatten("_json", &other, &mut pairs),
                }
            }
        } else if ct.is_empty() || ct.starts_with("application/x-www-form-urlencoded") {
            pairs.extend(parse_form(&String::from_utf8_lossy(body)));
        }
        Ok(Params(pairs))
    }

    /// The value of `name`, if given.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The hash under `prefix`: `details[A]=1&details[B]=2` gives `{A: 1, B: 2}`. Deeper
    /// nesting keeps the rest of the name as the key (`details[a][b]` → `a][b`).
    pub(crate) fn hash(&self, prefix: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let open = format!("{prefix}[");
        for (k, v) in &self.0 {
            if let Some(rest) = k.strip_prefix(&open)
                && let Some(key) = rest.strip_suffix(']')
                && !key.is_empty()
            {
                out.insert(key.to_owned(), v.clone());
            }
        }
        out
    }
}

/// Flattens one JSON value to Rails names (`a[b]`, `a[][c]`); scalars become their text.
fn flatten(name: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    use serde_json::Value;
    match value {
        Value::Null => out.push((name.to_owned(), String::new())),
        Value::Bool(b) => out.push((name.to_owned(), b.to_string())),
        Value::Number(n) => out.push((name.to_owned(), n.to_string())),
        Value::String(s) => out.push((name.to_owned(), s.clone())),
        Value::Array(items) => {
            for item in items {
                flatten(&format!("{name}[]"), item, out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                flatten(&format!("{name}[{k}]"), v, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_bodies_flatten_to_rails_names() {
        let p = Params::from_parts(
            &[],
            Some("application/json"),
            br#"{"message":"Login","details":{"User":"bob","Host":"h"},"seconds_to_expire":120,"force":true,"logos":[{"res":"default"}]}"#,
        )
        .expect("json");
        assert_eq!(p.get("message"), Some("Login"));
        assert_eq!(p.get("seconds_to_expire"), Some("120"));
        assert_eq!(p.get("force"), Some("true"));
        assert_eq!(p.get("logos[][res]"), Some("default"));
        let d = p.hash("details");
        assert_eq!(d.get("User").map(String::as_str), Some("bob"));
        assert_eq!(d.len(), 2);
    }

    #[test]
    fn body_overrides_query_and_forms_nest() {
        let q = vec![("user[email]".to_owned(), "q@x.io".to_owned())];
        let p = Params::from_parts(
            &q,
            Some("application/x-www-form-urlencoded"),
            b"user%5Bemail%5D=b%40x.io&hidden_details[ip]=1.2.3.4",
        )
        .expect("form");
        assert_eq!(p.get("user[email]"), Some("b@x.io"));
        assert_eq!(p.hash("hidden_details").get("ip").map(String::as_str), Some("1.2.3.4"));
    }

    #[test]
    fn broken_json_is_reported_and_other_types_ignored() {
        assert_eq!(Params::from_parts(&[], Some("application/json"), b"{\"a\":"), Err(BadJson));
        let p = Params::from_parts(&[], Some("text/plain"), b"a=1").expect("ignored");
        assert_eq!(p.get("a"), None);
        let p = Params::from_parts(&[], None, b" {\"a\":[1,2]}").expect("sniffed json");
        assert_eq!(p.get("a[]"), Some("2"));
    }
}
