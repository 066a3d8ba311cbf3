//! The file as serde sees it (`Raw*`, `deny_unknown_fields`) and the parse errors rebuilt
//! from the error's kind, our schema's names and the line, so no TOML or serde message can
//! quote a value (which may be a pasted secret) into syslog.

use super::api::Backend;
use super::auth::{DetailField, FailMode, Method, UnmappedPolicy};
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) api: RawApi,
    #[serde(default)]
    pub(super) auth: RawAuth,
    #[serde(default)]
    pub(super) offline: RawOffline,
    #[serde(default)]
    pub(super) verify: RawVerify,
    #[serde(default)]
    pub(super) users: toml::Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    pub(super) backend: Option<Backend>,
    pub(super) url: Option<String>,
    pub(super) api_key: Option<toml::Value>,
    pub(super) api_key_file: Option<PathBuf>,
    pub(super) timeout_secs: Option<u64>,
    pub(super) ca_file: Option<PathBuf>,
    pub(super) proxy: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVerify {
    pub(super) service_sid: Option<String>,
    pub(super) api_key_sid: Option<String>,
    pub(super) api_key_secret: Option<toml::Value>,
    pub(super) api_key_secret_file: Option<PathBuf>,
}

impl RawVerify {
    pub(super) fn is_empty(&self) -> bool {
        self.service_sid.is_none()
            && self.api_key_sid.is_none()
            && self.api_key_secret.is_none()
            && self.api_key_secret_file.is_none()
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    pub(super) failmode: Option<FailMode>,
    pub(super) unmapped_users: Option<UnmappedPolicy>,
    pub(super) groups: Option<Vec<String>>,
    pub(super) max_tries: Option<u32>,
    pub(super) method: Option<Method>,
    pub(super) push_timeout_secs: Option<u64>,
    pub(super) push_poll_ms: Option<u64>,
    pub(super) grace_secs: Option<u64>,
    pub(super) push_details: Option<Vec<DetailField>>,
    pub(super) push_command: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOffline {
    pub(super) digits: Option<u32>,
    pub(super) period_secs: Option<u64>,
    pub(super) skew_steps: Option<u8>,
    pub(super) state_dir: Option<PathBuf>,
    pub(super) max_failures: Option<u32>,
    pub(super) failure_window_secs: Option<u64>,
}

/// Line number (1-based) of a byte offset, for error messages that must not quote the file.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes().iter().take(offset).filter(|b| **b == b'\n').count() + 1
}

/// A parse or schema error as `line N: [table] key: problem`, built only from the error's
/// kind, our own schema's names and the position: serde and TOML messages quote the value
/// (`invalid type: string "..."`, `unknown variant ...`), and a value may be a pasted secret.
/// The key is named only for errors about a value, which serde raises for known keys only.
pub(super) fn toml_problem(text: &str, error: &toml::de::Error) -> String {
    let message = error.message();
    let expected = message
        .split_once(", expected ")
        .map(|(_, rest)| rest.trim_end())
        .filter(|rest| rest.chars().all(|c| c.is_ascii_alphanumeric() || " `_-,.".contains(c)));
    let expected = expected.map(|e| format!(" (expected {e})")).unwrap_or_default();
    let (problem, value_error) = if message.starts_with("unknown field") {
        (format!("unknown key{expected}"), false)
    } else if message.starts_with("unknown variant") {
        (format!("unknown value{expected}"), true)
    } else if message.starts_with("invalid type") {
        (format!("wrong type{expected}"), true)
    } else if message.starts_with("invalid value") || message.starts_with("invalid length") {
        (format!("invalid value{expected}"), true)
    } else if let Some(field) = message.strip_prefix("missing field ").filter(|f| f.starts_with('`')) {
        (format!("missing {}", field.trim_end()), false)
    } else if message.starts_with("duplicate key") {
        ("duplicate key".to_owned(), false)
    } else {
        ("not valid TOML".to_owned(), false)
    };
    let Some(span) = error.span() else { return problem };
    let line = line_of(text, span.start);
    let line_text = text.lines().nth(line - 1).unwrap_or("");
    let key = line_text.split_once('=').map(|(key, _)| key.trim()).filter(|key| {
        value_error && !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    });
    let table = text
        .lines()
        .take(line)
        .filter_map(|l| l.trim().strip_prefix('[')?.strip_suffix(']'))
        .filter(|t| ["api", "verify", "auth", "offline", "users"].contains(t))
        .last();
    match (table, key) {
        (Some(table), Some(key)) => format!("line {line}: [{table}] {key}: {problem}"),
        (None, Some(key)) => format!("line {line}: {key}: {problem}"),
        _ => format!("line {line}: {problem}"),
    }
}
