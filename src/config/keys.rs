//! The keys the configuration file accepts, read off the parser itself. serde's derive hands
//! the deserializer every struct's field names and every enum's variant names, so a probe
//! standing in for a TOML file learns exactly what `Config::parse` takes in each table;
//! `[users]` entries, which are checked by hand, come from `users::USER_KEYS`, the list that
//! parser admits. Only tests read this (the man pages and the default config document it).

use super::schema::RawConfig;
use super::users::USER_KEYS;
use serde::Deserialize;
use serde::de::value::Error;
use serde::de::{DeserializeSeed, Deserializer, Error as _, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use std::cell::Cell;

/// One key of one table and, when its value (or each item of its list) is one of a closed
/// set of words, those words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub table: &'static str,
    pub name: &'static str,
    pub values: &'static [&'static str],
}

/// Every table and key of the file, in the parser's order.
pub fn accepted_keys() -> Vec<Key> {
    let Shape::Struct(tables) = shape_at(&[]) else { panic!("RawConfig is not a struct") };
    let mut keys = Vec::new();
    for &table in tables {
        match shape_at(&[table]) {
            Shape::Struct(names) => {
                for &name in names {
                    let values = match shape_at(&[table, name]) {
                        Shape::Words(words) => words,
                        _ => &[],
                    };
                    keys.push(Key { table, name, values });
                }
            }
            Shape::Table if table == "users" => {
                keys.extend(USER_KEYS.iter().map(|&name| Key { table, name, values: &[] }));
            }
            other => panic!("[{table}] is a {other:?}: teach config::keys what its keys are"),
        }
    }
    keys
}

/// The words a unit enum such as `Method` is written as in the file.
pub fn words_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let seen = Cell::new(None);
    let _ = T::deserialize(Probe { path: &[], seen: &seen });
    match seen.get() {
        Some(Shape::Words(words)) => words,
        other => panic!("not an enum of words: {other:?}"),
    }
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    Struct(&'static [&'static str]),
    Words(&'static [&'static str]),
    Table,
    Scalar,
}

/// What `RawConfig` expects at `path` (a table, then a key).
fn shape_at(path: &[&'static str]) -> Shape {
    let seen = Cell::new(None);
    // The probe always ends in an error once it has seen the shape; the shape is the answer.
    let _ = RawConfig::deserialize(Probe { path, seen: &seen });
    seen.get().unwrap_or_else(|| panic!("no field {path:?} in RawConfig"))
}

/// A deserializer that follows `path` through structs by offering one field at a time and
/// records what the type expects where the path ends.
#[derive(Clone, Copy)]
struct Probe<'a> {
    path: &'a [&'static str],
    seen: &'a Cell<Option<Shape>>,
}

impl Probe<'_> {
    fn stop<T>(self, shape: Shape) -> Result<T, Error> {
        if self.path.is_empty() {
            self.seen.set(Some(shape));
        }
        Err(Error::custom("probed"))
    }
}

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
        self.stop(Shape::Scalar)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    /// A list is described by its items.
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if !self.path.is_empty() {
            return self.stop(Shape::Scalar);
        }
        visitor.visit_seq(OneItem(Some(self)))
    }

    fn deserialize_map<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
        self.stop(Shape::Table)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.path.split_first() {
            None => self.stop(Shape::Struct(fields)),
            Some((&field, rest)) => {
                visitor.visit_map(OneField { key: Some(field), value: Probe { path: rest, ..self } })
            }
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Error> {
        self.stop(Shape::Words(variants))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct newtype_struct tuple tuple_struct identifier ignored_any
    }
}

struct OneField<'a> {
    key: Option<&'static str>,
    value: Probe<'a>,
}

impl<'de> MapAccess<'de> for OneField<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        self.key.take().map(|key| seed.deserialize(key.into_deserializer())).transpose()
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        seed.deserialize(self.value)
    }
}

struct OneItem<'a>(Option<Probe<'a>>);

impl<'de> SeqAccess<'de> for OneItem<'_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        self.0.take().map(|probe| seed.deserialize(probe)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::config::schema::{RawApi, RawAuth, RawOffline, RawVerify};
    use std::path::Path;

    /// Each table's fields named by a pattern without `..`: a field added to a `Raw*` struct
    /// stops this from compiling until it is named here too, and the test then fails unless
    /// the probe lists it.
    fn fields_by_pattern() -> Vec<(&'static str, Vec<&'static str>)> {
        let raw: RawConfig = toml::from_str("[api]").expect("an empty [api] is valid TOML for the schema");
        let RawConfig { api, auth, offline, verify, users: _ } = raw;
        let RawApi { backend: _, url: _, api_key: _, api_key_file: _, timeout_secs: _, ca_file: _, proxy: _ } = api;
        let RawVerify { service_sid: _, api_key_sid: _, api_key_secret: _, api_key_secret_file: _ } = verify;
        let RawAuth {
            failmode: _,
            unmapped_users: _,
            groups: _,
            max_tries: _,
            method: _,
            push_timeout_secs: _,
            push_poll_ms: _,
            grace_secs: _,
            push_details: _,
            push_command: _,
        } = auth;
        let RawOffline {
            digits: _,
            period_secs: _,
            skew_steps: _,
            state_dir: _,
            max_failures: _,
            failure_window_secs: _,
        } = offline;
        vec![
            ("api", vec!["backend", "url", "api_key", "api_key_file", "timeout_secs", "ca_file", "proxy"]),
            (
                "auth",
                vec![
                    "failmode",
                    "unmapped_users",
                    "groups",
                    "max_tries",
                    "method",
                    "push_timeout_secs",
                    "push_poll_ms",
                    "grace_secs",
                    "push_details",
                    "push_command",
                ],
            ),
            (
                "offline",
                vec!["digits", "period_secs", "skew_steps", "state_dir", "max_failures", "failure_window_secs"],
            ),
            ("verify", vec!["service_sid", "api_key_sid", "api_key_secret", "api_key_secret_file"]),
            ("users", USER_KEYS.to_vec()),
        ]
    }

    #[test]
    fn every_field_the_parser_reads_is_listed() {
        let keys = accepted_keys();
        let mut tables: Vec<&str> = keys.iter().map(|key| key.table).collect();
        tables.dedup();
        let expected = fields_by_pattern();
        assert_eq!(tables.len(), expected.len(), "tables: {tables:?}");
        for (table, mut fields) in expected {
            let mut listed: Vec<&str> = keys.iter().filter(|key| key.table == table).map(|key| key.name).collect();
            listed.sort_unstable();
            fields.sort_unstable();
            assert_eq!(listed, fields, "[{table}]");
        }
    }

    fn problem(text: &str) -> String {
        match Config::parse(Path::new("/etc/pam_authy/pam_authy.toml"), text) {
            Ok(_) => String::new(),
            Err(error) => error.to_string(),
        }
    }

    fn with(table: &str, line: &str) -> String {
        match table {
            "api" => format!("[api]\napi_key = \"k\"\n{line}\n"),
            "users" => format!("[api]\napi_key = \"k\"\n[users]\nalice = {{ {line} }}\n"),
            _ => format!("[api]\napi_key = \"k\"\n[{table}]\n{line}\n"),
        }
    }

    #[test]
    fn the_parser_knows_every_listed_key_and_word_and_no_other() {
        for key in accepted_keys() {
            // A value of the wrong type: the parser names the key's problem, never "unknown".
            let (table, name) = (key.table, key.name);
            let message = problem(&with(table, &format!("{name} = 1.5")));
            assert!(!message.contains("unknown"), "[{table}] {name}: {message}");
            for word in key.values {
                let taken = [format!("{name} = \"{word}\""), format!("{name} = [\"{word}\"]")]
                    .iter()
                    .map(|line| problem(&with(table, line)))
                    .any(|message| !message.contains("unknown") && !message.contains("wrong type"));
                assert!(taken, "[{table}] {name} = \"{word}\" is not taken");
            }
            let message = problem(&with(table, &format!("{name}_x = 1")));
            assert!(message.contains("unknown key"), "[{table}] {name}_x: {message}");
        }
    }

    #[test]
    fn closed_sets_of_words_are_found_for_scalars_and_lists() {
        let values = |table: &str, name: &str| {
            accepted_keys().into_iter().find(|key| key.table == table && key.name == name).expect(name).values
        };
        assert_eq!(values("auth", "failmode"), ["secure", "safe"]);
        assert_eq!(values("api", "backend"), ["authy", "verify"]);
        assert!(values("auth", "push_details").contains(&"requested_by"));
        assert!(values("auth", "groups").is_empty());
        assert_eq!(words_of::<crate::config::Method>(), ["prompt", "push", "sms", "call"]);
    }
}
