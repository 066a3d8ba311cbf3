//! The `[api]` and `[verify]` tables: which backend, where it is, how long to wait, and its
//! credentials, inline or in a separate file held to the secret rules (root-owned, 0600).

use super::error::{ConfigError, in_range};
use super::schema::{RawApi, RawVerify};
use super::{DEFAULT_AUTHY_URL, DEFAULT_VERIFY_URL, MAX_FILE_BYTES};
use crate::secret::Secret;
use crate::secure_fs;
use crate::verify::{ApiKeySid, ServiceSid};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

const MAX_KEY_FILE_BYTES: u64 = 4096;

/// The second-factor service the module talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Authy,
    Verify,
}

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub backend: Backend,
    pub url: String,
    /// The Authy API key; empty with backend `verify`, whose credentials are in `VerifyConfig`.
    pub api_key: Secret,
    pub timeout: Duration,
    /// Extra trust anchors (PEM), from `ca_file`.
    pub ca_pem: Option<Vec<u8>>,
    pub proxy: Option<String>,
}

/// The `[verify]` table (backend `verify` only).
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    pub service_sid: ServiceSid,
    /// The Basic-auth user: an API key SID or the account SID.
    pub api_key_sid: ApiKeySid,
    pub api_key_secret: Secret,
}

pub(super) fn parse_api(path: &Path, raw: RawApi) -> Result<(ApiConfig, bool), ConfigError> {
    let backend = raw.backend.unwrap_or_default();
    let default_url = match backend {
        Backend::Authy => DEFAULT_AUTHY_URL,
        Backend::Verify => DEFAULT_VERIFY_URL,
    };
    let url = validate_url(path, raw.url.as_deref().unwrap_or(default_url))?;
    let (api_key, inline) = match (backend, raw.api_key, raw.api_key_file) {
        (Backend::Verify, None, None) => (Secret::default(), false),
        // Kept after a migration for a rollback (`backend = "authy"`); checked, never sent.
        (_, key, file) => {
            let (key, inline) = authy_api_key(path, key, file)?;
            validate_api_key(path, "[api] api key", &key)?;
            (key, inline)
        }
    };
    let timeout_secs = in_range(path, "[api] timeout_secs", raw.timeout_secs.unwrap_or(10), 1..=120)?;
    let ca_pem = match raw.ca_file {
        Some(ca_file) => Some(read_ca_file(path, &ca_file)?),
        None => None,
    };
    let proxy = raw.proxy.map(|proxy| validate_proxy(path, &proxy)).transpose()?;
    let api = ApiConfig { backend, url, api_key, timeout: Duration::from_secs(timeout_secs), ca_pem, proxy };
    Ok((api, inline))
}

fn authy_api_key(path: &Path, key: Option<toml::Value>, file: Option<PathBuf>) -> Result<(Secret, bool), ConfigError> {
    secret_inline_or_file(path, ("[api]", "api_key", "api_key_file", "API key"), key, file)
}

/// A secret set inline (`names.1`) or in a file (`names.2`) of table `names.0`, exactly one
/// of them; `names.3` says what it is. Also returns whether it was inline.
fn secret_inline_or_file(
    path: &Path,
    names: (&str, &str, &str, &str),
    inline: Option<toml::Value>,
    file: Option<PathBuf>,
) -> Result<(Secret, bool), ConfigError> {
    let (table, key, file_key, what) = names;
    Ok(match (inline, file) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(path, format!("{table} sets both {key} and {file_key}; keep one")));
        }
        (None, None) => return Err(ConfigError::new(path, format!("{table} needs {key} or {file_key}"))),
        (Some(toml::Value::String(secret)), None) => (Secret::new(secret), true),
        (Some(_), None) => return Err(ConfigError::new(path, format!("{table} {key} must be a string"))),
        (None, Some(file)) => (read_secret_file(path, &format!("{table} {file_key}"), &file, what)?, false),
    })
}

/// The `[verify]` table: required and complete with backend `verify`, absent otherwise.
pub(super) fn parse_verify(
    path: &Path,
    backend: Backend,
    raw: RawVerify,
) -> Result<(Option<VerifyConfig>, bool), ConfigError> {
    // Under `authy` the table is optional: `pam-authy migrate` and `check` use it, logins do not.
    if backend == Backend::Authy && raw.is_empty() {
        return Ok((None, false));
    }
    let service_sid = raw.service_sid.ok_or_else(|| ConfigError::new(path, "[verify] needs service_sid"))?;
    let service_sid = ServiceSid::parse(&service_sid).ok_or_else(|| {
        ConfigError::new(path, "[verify] service_sid must be VA followed by 32 lower-case hex digits")
    })?;
    let api_key_sid = raw.api_key_sid.ok_or_else(|| ConfigError::new(path, "[verify] needs api_key_sid"))?;
    let api_key_sid = ApiKeySid::parse(&api_key_sid).ok_or_else(|| {
        ConfigError::new(
            path,
            "[verify] api_key_sid must be SK (an API key) or AC (the account) followed by 32 lower-case hex digits",
        )
    })?;
    let names = ("[verify]", "api_key_secret", "api_key_secret_file", "API key secret");
    let (api_key_secret, inline) = secret_inline_or_file(path, names, raw.api_key_secret, raw.api_key_secret_file)?;
    validate_api_key(path, "[verify] api key secret", &api_key_secret)?;
    Ok((Some(VerifyConfig { service_sid, api_key_sid, api_key_secret }), inline))
}

fn validate_url(path: &Path, url: &str) -> Result<String, ConfigError> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| ConfigError::new(path, format!("[api] url is not a URL: {e}")))?;
    if parsed.scheme() != "https" {
        return Err(ConfigError::new(path, "[api] url must start with https://"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::new(path, "[api] url has no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ConfigError::new(path, "[api] url must not carry credentials"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(ConfigError::new(path, "[api] url must not have a query or fragment"));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

fn validate_proxy(path: &Path, proxy: &str) -> Result<String, ConfigError> {
    let parsed =
        reqwest::Url::parse(proxy).map_err(|e| ConfigError::new(path, format!("[api] proxy is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ConfigError::new(path, "[api] proxy must be an http:// or https:// URL"));
    }
    Ok(proxy.to_owned())
}

/// The key goes into an HTTP header: printable ASCII only, bounded.
fn validate_api_key(path: &Path, what: &str, key: &Secret) -> Result<(), ConfigError> {
    let text = key.expose();
    if text.is_empty() || text.len() > 256 || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::new(
            path,
            format!("{what} must be 1 to 256 printable ASCII characters without spaces"),
        ));
    }
    Ok(())
}

/// Reads the file named by `key` (`[api] api_key_file`, `[verify] api_key_secret_file`);
/// `what` names the secret in messages.
fn read_secret_file(path: &Path, key: &str, file: &Path, what: &str) -> Result<Secret, ConfigError> {
    let secret = secure_fs::read_file(file, MAX_KEY_FILE_BYTES)
        .map_err(|error| ConfigError::named_file(path, key, file, &error))?;
    if secret.readable_by_group_or_other() {
        return Err(ConfigError::new(
            path,
            format!("{key}: mode {:04o} lets group or other read the {what}; use 0600", secret.mode),
        ));
    }
    let text =
        std::str::from_utf8(&secret.bytes).map_err(|_| ConfigError::new(path, format!("{key}: is not UTF-8")))?;
    Ok(Secret::from(text.trim()))
}

fn read_ca_file(path: &Path, file: &Path) -> Result<Vec<u8>, ConfigError> {
    const KEY: &str = "[api] ca_file";
    let ca =
        secure_fs::read_file(file, MAX_FILE_BYTES).map_err(|error| ConfigError::named_file(path, KEY, file, &error))?;
    if !ca.bytes.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        return Err(ConfigError::new(path, format!("{KEY}: holds no PEM certificate")));
    }
    Ok(ca.bytes.clone())
}
