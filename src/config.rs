//! The configuration file and the module arguments, turned into one validated `Config`.
//!
//! `/etc/pam_authy/pam_authy.toml` is parsed with serde (`deny_unknown_fields`) and then
//! validated; any problem is a `ConfigError`, which the module always turns into
//! PAM_SERVICE_ERR whatever `failmode` says. The file and `api_key_file` are read through
//! `secure_fs` (root-owned, no symlinks, not writable by others, not readable by others when
//! they hold a secret). Secret values are deserialised as untyped TOML values and checked by
//! hand, so a serde or TOML error message can never echo a key or a seed into syslog.
//!
//! `[api] backend` picks the service: `authy` (the default, `[api] api_key` and `authy_id`
//! per user) or `verify` (a `[verify]` table and `verify_identity` plus factors per user).
//! While a host moves from Authy to Verify (`pam-authy migrate`) a config holds both: the
//! other backend's keys are validated like the rest and kept for the switch or a rollback,
//! but no login reads them.

mod diagnose;
mod users_d;

pub use users_d::{MAX_DROP_INS, USERS_DIR, users_dir};

use crate::secret::Secret;
use crate::secure_fs::{self, FileError};
use crate::verify::{ApiKeySid, FactorSid, Identity, Phone, ServiceSid};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/pam_authy/pam_authy.toml";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/pam_authy";
pub const DEFAULT_AUTHY_URL: &str = "https://api.authy.com";
pub const DEFAULT_VERIFY_URL: &str = "https://verify.twilio.com";
const MAX_FILE_BYTES: u64 = 1 << 20;
const MAX_KEY_FILE_BYTES: u64 = 4096;

/// A problem with the configuration: always fatal, always PAM_SERVICE_ERR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: PathBuf,
    pub problem: String,
}

impl ConfigError {
    fn new(path: &Path, problem: impl Into<String>) -> Self {
        ConfigError { path: path.to_path_buf(), problem: problem.into() }
    }

    fn file(error: FileError) -> Self {
        ConfigError { path: error.path().to_path_buf(), problem: error.to_string() }
    }

    /// A file named by a config value (`api_key_file`, `ca_file`): the message names the key,
    /// never the path, since a secret pasted into the wrong key must not reach a log.
    fn named_file(path: &Path, key: &str, named: &Path, error: &FileError) -> Self {
        let where_ = if error.path() == named { "" } else { " (a directory on its path)" };
        ConfigError::new(path, format!("{key}{where_}: {}", error.problem()))
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.problem.clone();
        let path = self.path.display().to_string();
        // FileError messages already start with the path.
        if text.starts_with(&path) { f.write_str(&text) } else { write!(f, "{path}: {text}") }
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    Secure,
    Safe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnmappedPolicy {
    Deny,
    Ignore,
}

/// The second-factor service the module talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Authy,
    Verify,
}

/// What the module does first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Prompt,
    Push,
    Sms,
    Call,
}

impl Method {
    pub fn parse(text: &str) -> Option<Method> {
        match text {
            "prompt" => Some(Method::Prompt),
            "push" => Some(Method::Push),
            "sms" => Some(Method::Sms),
            "call" => Some(Method::Call),
            _ => None,
        }
    }
}

/// A positive Authy user id that the config can hold: TOML integers stop at `i64::MAX`, so
/// an id from the API beyond that could never be written into `[users]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AuthyId(u64);

impl AuthyId {
    pub const MAX: u64 = i64::MAX as u64;

    pub fn new(id: u64) -> Option<AuthyId> {
        (1..=Self::MAX).contains(&id).then_some(AuthyId(id))
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for AuthyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A user of the Verify backend: the entity and what it can be challenged with (at least
/// one of the three).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyUser {
    pub identity: Identity,
    pub totp_factor: Option<FactorSid>,
    pub phone: Option<Phone>,
    pub push_factor: Option<FactorSid>,
}

/// One `[users]` entry: `authy_id` is set with backend `authy`, `verify` with backend
/// `verify`; under `authy`, `verify` may be set too (a user `pam-authy migrate` has moved,
/// waiting for the switch), which no login reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    pub authy_id: Option<AuthyId>,
    pub verify: Option<VerifyUser>,
    /// Normalised base32 (upper case, no spaces or padding), at least 80 bits.
    pub offline_secret: Option<Secret>,
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

/// A detail field of a push approval request (`[auth] push_details`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetailField {
    User,
    Host,
    Service,
    From,
    Tty,
    RequestedBy,
}

/// What a push approval request tells the API (and the phone) about the login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushDetails {
    pub fields: Vec<DetailField>,
    /// sudo's command line: off unless the admin opts in, since arguments can hold secrets.
    pub command: bool,
}

impl Default for PushDetails {
    fn default() -> Self {
        use DetailField::*;
        PushDetails { fields: vec![User, Host, Service, From, Tty, RequestedBy], command: false }
    }
}

/// The `[verify]` table (backend `verify` only).
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    pub service_sid: ServiceSid,
    /// The Basic-auth user: an API key SID or the account SID.
    pub api_key_sid: ApiKeySid,
    pub api_key_secret: Secret,
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub failmode: FailMode,
    pub unmapped_users: UnmappedPolicy,
    pub groups: Vec<String>,
    pub max_tries: u32,
    pub method: Method,
    pub push_timeout: Duration,
    pub push_poll: Duration,
    pub grace: Duration,
    pub push_details: PushDetails,
}

#[derive(Debug, Clone)]
pub struct OfflineConfig {
    pub digits: u32,
    pub period_secs: u64,
    pub skew_steps: u8,
    pub state_dir: PathBuf,
    pub max_failures: u32,
    pub failure_window_secs: u64,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub api: ApiConfig,
    /// Required with `[api] backend = "verify"`; under `authy` optional, read only by
    /// `pam-authy migrate` and `check` while a host moves to Verify.
    pub verify: Option<VerifyConfig>,
    pub auth: AuthConfig,
    pub offline: OfflineConfig,
    /// The main file's `[users]` and every drop-in's.
    pub users: BTreeMap<String, UserEntry>,
    /// The `users.d` files read, in order (`Config::load` only).
    pub drop_ins: Vec<PathBuf>,
    /// An API key or secret is written in this file (not in a separate file).
    api_key_inline: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    api: RawApi,
    #[serde(default)]
    auth: RawAuth,
    #[serde(default)]
    offline: RawOffline,
    #[serde(default)]
    verify: RawVerify,
    #[serde(default)]
    users: toml::Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    backend: Option<Backend>,
    url: Option<String>,
    api_key: Option<toml::Value>,
    api_key_file: Option<PathBuf>,
    timeout_secs: Option<u64>,
    ca_file: Option<PathBuf>,
    proxy: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawVerify {
    service_sid: Option<String>,
    api_key_sid: Option<String>,
    api_key_secret: Option<toml::Value>,
    api_key_secret_file: Option<PathBuf>,
}

impl RawVerify {
    fn is_empty(&self) -> bool {
        self.service_sid.is_none()
            && self.api_key_sid.is_none()
            && self.api_key_secret.is_none()
            && self.api_key_secret_file.is_none()
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    failmode: Option<FailMode>,
    unmapped_users: Option<UnmappedPolicy>,
    groups: Option<Vec<String>>,
    max_tries: Option<u32>,
    method: Option<Method>,
    push_timeout_secs: Option<u64>,
    push_poll_ms: Option<u64>,
    grace_secs: Option<u64>,
    push_details: Option<Vec<DetailField>>,
    push_command: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOffline {
    digits: Option<u32>,
    period_secs: Option<u64>,
    skew_steps: Option<u8>,
    state_dir: Option<PathBuf>,
    max_failures: Option<u32>,
    failure_window_secs: Option<u64>,
}

fn in_range<T: PartialOrd + fmt::Display + Copy>(
    path: &Path,
    key: &str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::new(path, format!("{key} is out of range ({}..={})", range.start(), range.end())))
    }
}

/// Line number (1-based) of a byte offset, for error messages that must not quote the file.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes().iter().take(offset).filter(|b| **b == b'\n').count() + 1
}

/// A parse or schema error as `line N: [table] key: problem`, built only from the error's
/// kind, our own schema's names and the position: serde and TOML messages quote the value
/// (`invalid type: string "..."`, `unknown variant ...`), and a value may be a pasted secret.
/// The key is named only for errors about a value, which serde raises for known keys only.
fn toml_problem(text: &str, error: &toml::de::Error) -> String {
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

impl Config {
    /// Reads and validates the file at `path` and its `users.d` drop-ins with all ownership
    /// and mode checks: what the module and `pam-authy check` both call.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let mut config = Config::load_main(path)?;
        config.drop_ins = users_d::merge_drop_ins(path, config.api.backend, &mut config.users)?;
        Ok(config)
    }

    /// The main file alone, with its owner, mode and schema checks.
    fn load_main(path: &Path) -> Result<Config, ConfigError> {
        let file = secure_fs::read_file(path, MAX_FILE_BYTES).map_err(ConfigError::file)?;
        let text = std::str::from_utf8(&file.bytes).map_err(|_| ConfigError::new(path, "is not valid UTF-8"))?;
        let config = Config::parse(path, text)?;
        if file.readable_by_group_or_other() && config.file_holds_secrets() {
            return Err(ConfigError::new(
                path,
                format!("mode {:04o} lets group or other read the secrets it holds; use 0600", file.mode),
            ));
        }
        Ok(config)
    }

    fn file_holds_secrets(&self) -> bool {
        self.api_key_inline || self.users.values().any(|u| u.offline_secret.is_some())
    }

    /// Parses and validates `text` alone (no drop-ins); `path` names the file in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|error| ConfigError::new(path, toml_problem(text, &error)))?;
        let (api, api_key_inline) = parse_api(path, raw.api)?;
        let (verify, secret_inline) = parse_verify(path, api.backend, raw.verify)?;
        let auth = parse_auth(path, raw.auth)?;
        let offline = parse_offline(path, raw.offline)?;
        let users = parse_users(path, api.backend, raw.users)?;
        let api_key_inline = api_key_inline || secret_inline;
        Ok(Config { path: path.to_path_buf(), api, verify, auth, offline, users, drop_ins: Vec::new(), api_key_inline })
    }

    pub fn user(&self, name: &str) -> Option<&UserEntry> {
        self.users.get(name)
    }
}

fn parse_api(path: &Path, raw: RawApi) -> Result<(ApiConfig, bool), ConfigError> {
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
fn parse_verify(path: &Path, backend: Backend, raw: RawVerify) -> Result<(Option<VerifyConfig>, bool), ConfigError> {
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

fn parse_auth(path: &Path, raw: RawAuth) -> Result<AuthConfig, ConfigError> {
    let groups = raw.groups.unwrap_or_default();
    if let Some(at) = groups.iter().position(|group| !valid_account_name(group)) {
        return Err(ConfigError::new(
            path,
            format!(
                "[auth] groups: entry {} is not a valid group name (empty, white space, control, ':' or '/')",
                at + 1
            ),
        ));
    }
    Ok(AuthConfig {
        failmode: raw.failmode.unwrap_or(FailMode::Secure),
        unmapped_users: raw.unmapped_users.unwrap_or(UnmappedPolicy::Deny),
        groups,
        max_tries: in_range(path, "[auth] max_tries", raw.max_tries.unwrap_or(3), 1..=10)?,
        method: raw.method.unwrap_or(Method::Prompt),
        push_timeout: Duration::from_secs(in_range(
            path,
            "[auth] push_timeout_secs",
            raw.push_timeout_secs.unwrap_or(60),
            5..=600,
        )?),
        push_poll: Duration::from_millis(in_range(
            path,
            "[auth] push_poll_ms",
            raw.push_poll_ms.unwrap_or(1000),
            100..=30_000,
        )?),
        grace: Duration::from_secs(in_range(path, "[auth] grace_secs", raw.grace_secs.unwrap_or(0), 0..=86_400)?),
        push_details: PushDetails {
            fields: raw.push_details.unwrap_or_else(|| PushDetails::default().fields),
            command: raw.push_command.unwrap_or(false),
        },
    })
}

fn parse_offline(path: &Path, raw: RawOffline) -> Result<OfflineConfig, ConfigError> {
    let state_dir = raw.state_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
    if !state_dir.is_absolute() {
        return Err(ConfigError::new(path, "[offline] state_dir must be an absolute path"));
    }
    Ok(OfflineConfig {
        digits: in_range(path, "[offline] digits", raw.digits.unwrap_or(6), 6..=8)?,
        period_secs: in_range(path, "[offline] period_secs", raw.period_secs.unwrap_or(30), 10..=300)?,
        skew_steps: in_range(path, "[offline] skew_steps", raw.skew_steps.unwrap_or(1), 0..=10)?,
        state_dir,
        max_failures: in_range(path, "[offline] max_failures", raw.max_failures.unwrap_or(5), 1..=100)?,
        failure_window_secs: in_range(
            path,
            "[offline] failure_window_secs",
            raw.failure_window_secs.unwrap_or(300),
            10..=86_400,
        )?,
    })
}

/// Unix user and group names as the mapping accepts them: no empty names, no white space,
/// no control characters, no `:` or `/` (which no passwd entry can hold).
pub fn valid_account_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && !name.chars().any(|c| c.is_whitespace() || c.is_control() || c == ':' || c == '/')
}

fn parse_users(path: &Path, backend: Backend, table: toml::Table) -> Result<BTreeMap<String, UserEntry>, ConfigError> {
    let mut users = BTreeMap::new();
    for (name, value) in table {
        if !valid_account_name(&name) {
            return Err(ConfigError::new(
                path,
                "[users] holds a name that is not a valid user name (empty, white space, control, ':' or '/')",
            ));
        }
        let entry = match value {
            toml::Value::Integer(_) if backend == Backend::Verify => {
                return Err(ConfigError::new(
                    path,
                    format!(
                        "[users] {name}: an Authy ID needs backend = \"authy\"; use {{ verify_identity = ..., totp_factor = ... }}"
                    ),
                ));
            }
            toml::Value::Integer(id) => {
                UserEntry { authy_id: Some(authy_id(path, &name, id)?), verify: None, offline_secret: None }
            }
            toml::Value::Table(fields) => parse_user_table(path, backend, &name, fields)?,
            _ if backend == Backend::Verify => {
                return Err(ConfigError::new(path, format!("[users] {name}: must be a table with verify_identity")));
            }
            _ => {
                return Err(ConfigError::new(
                    path,
                    format!("[users] {name}: must be an Authy ID or a table with authy_id"),
                ));
            }
        };
        users.insert(name, entry);
    }
    Ok(users)
}

fn authy_id(path: &Path, name: &str, id: i64) -> Result<AuthyId, ConfigError> {
    u64::try_from(id)
        .ok()
        .and_then(AuthyId::new)
        .ok_or_else(|| ConfigError::new(path, format!("[users] {name}: Authy ID must be a positive integer")))
}

fn parse_user_table(path: &Path, backend: Backend, name: &str, fields: toml::Table) -> Result<UserEntry, ConfigError> {
    let mut id = None;
    let mut offline_secret = None;
    let mut identity = None;
    let (mut totp_factor, mut phone, mut push_factor) = (None, None, None);
    let invalid = |key: &str, what: &str| ConfigError::new(path, format!("[users] {name}: {key} must be {what}"));
    for (key, value) in fields {
        match (key.as_str(), value) {
            ("authy_id", toml::Value::Integer(raw)) => id = Some(authy_id(path, name, raw)?),
            ("offline_secret", toml::Value::String(secret)) => {
                let secret = Secret::new(secret);
                offline_secret = Some(normalize_base32_secret(&secret).ok_or_else(|| {
                    ConfigError::new(path, format!("[users] {name}: offline_secret must be base32 of at least 80 bits"))
                })?);
            }
            ("verify_identity", toml::Value::String(text)) => {
                let parsed = Identity::parse(&text).ok_or_else(|| {
                    invalid(&key, "8 to 64 letters and digits in groups separated by single dashes (a UUID or a hash)")
                })?;
                if text.eq_ignore_ascii_case(name) {
                    return Err(invalid(&key, "an opaque id, not the user name"));
                }
                identity = Some(parsed);
            }
            ("totp_factor", toml::Value::String(text)) => {
                totp_factor = Some(
                    FactorSid::parse(&text).ok_or_else(|| invalid(&key, "YF followed by 32 lower-case hex digits"))?,
                );
            }
            ("push_factor", toml::Value::String(text)) => {
                push_factor = Some(
                    FactorSid::parse(&text).ok_or_else(|| invalid(&key, "YF followed by 32 lower-case hex digits"))?,
                );
            }
            ("phone", toml::Value::String(text)) => {
                phone = Some(Phone::parse(&text).ok_or_else(|| invalid(&key, "an E.164 number such as +15551234567"))?);
            }
            ("authy_id" | "offline_secret" | "verify_identity" | "totp_factor" | "push_factor" | "phone", _) => {
                return Err(ConfigError::new(path, format!("[users] {name}: {key} has the wrong type")));
            }
            _ => {
                return Err(ConfigError::new(
                    path,
                    format!(
                        "[users] {name}: unknown key (expected authy_id, verify_identity, totp_factor, phone, push_factor or offline_secret)"
                    ),
                ));
            }
        }
    }
    // An entry may hold both mappings while a host moves from Authy to Verify (`pam-authy
    // migrate`); the backend in use needs its own, the other one is checked and kept for a
    // rollback. Under `verify` the Authy ID is not kept in the entry: no login uses it.
    let has_verify_keys = identity.is_some() || totp_factor.is_some() || phone.is_some() || push_factor.is_some();
    let verify = if backend == Backend::Verify || has_verify_keys {
        let identity =
            identity.ok_or_else(|| ConfigError::new(path, format!("[users] {name}: missing verify_identity")))?;
        if totp_factor.is_none() && phone.is_none() && push_factor.is_none() {
            return Err(ConfigError::new(
                path,
                format!("[users] {name}: needs at least one of totp_factor, phone, push_factor"),
            ));
        }
        Some(VerifyUser { identity, totp_factor, phone, push_factor })
    } else {
        None
    };
    match backend {
        Backend::Authy => {
            let authy_id = id.ok_or_else(|| ConfigError::new(path, format!("[users] {name}: missing authy_id")))?;
            Ok(UserEntry { authy_id: Some(authy_id), verify, offline_secret })
        }
        Backend::Verify => Ok(UserEntry { authy_id: None, verify, offline_secret }),
    }
}

/// Accepts base32 as people paste it (lower case, spaces, dashes, `=` padding) and returns the
/// canonical form, or None when it is not base32 or decodes to fewer than 80 bits.
pub fn normalize_base32_secret(secret: &Secret) -> Option<Secret> {
    let body = secret.expose().trim_end_matches(|c: char| c == '=' || c.is_whitespace());
    let mut canonical = zeroize::Zeroizing::new(String::with_capacity(body.len()));
    for c in body.chars() {
        match c {
            ' ' | '\t' | '-' => {}
            'a'..='z' | 'A'..='Z' | '2'..='7' => canonical.push(c.to_ascii_uppercase()),
            _ => return None,
        }
    }
    let decoded = totp_rs::Secret::try_from_base32(canonical.as_str()).ok()?;
    (decoded.as_bytes().len() >= 10).then(|| Secret::new(canonical.to_string()))
}

/// The module arguments from the pam.d line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleArgs {
    pub config_path: PathBuf,
    pub debug: bool,
    pub method: Option<Method>,
    /// One-prompt mode (`password_and_code=N`): the one answer is the password followed by
    /// an N-digit code; the password goes on to the next module as PAM_AUTHTOK.
    pub password_and_code: Option<usize>,
}

impl ModuleArgs {
    /// Unknown or malformed arguments are configuration errors, so a typo never silently
    /// changes what the stack does.
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<ModuleArgs, ConfigError> {
        let mut parsed = ModuleArgs {
            config_path: PathBuf::from(DEFAULT_CONFIG_PATH),
            debug: false,
            method: None,
            password_and_code: None,
        };
        let here = Path::new("module arguments");
        for (position, arg) in args.iter().enumerate() {
            let arg = arg.as_ref();
            match arg.split_once('=') {
                None if arg == "debug" => parsed.debug = true,
                Some(("config", value)) if Path::new(value).is_absolute() => parsed.config_path = PathBuf::from(value),
                Some(("config", _)) => {
                    return Err(ConfigError::new(here, "config= needs an absolute path"));
                }
                Some(("method", value)) => {
                    parsed.method = Some(
                        Method::parse(value)
                            .ok_or_else(|| ConfigError::new(here, "method= takes prompt, push, sms or call"))?,
                    );
                }
                Some(("password_and_code", digits)) => {
                    let digits = digits.parse().ok().filter(|digits| (6..=8).contains(digits));
                    parsed.password_and_code = Some(digits.ok_or_else(|| {
                        ConfigError::new(here, "password_and_code= takes the code's length, 6, 7 or 8")
                    })?);
                }
                _ => {
                    return Err(ConfigError::new(
                        here,
                        format!(
                            "argument {} is unknown (expected debug, config=PATH, method=... or password_and_code=N)",
                            position + 1
                        ),
                    ));
                }
            }
        }
        if parsed.password_and_code.is_some() && parsed.method.is_some() {
            return Err(ConfigError::new(here, "password_and_code= asks one question for a code: it takes no method="));
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const MINIMAL: &str = "[api]\napi_key = \"key\"\n";

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/pam_authy/pam_authy.toml"), text)
    }

    fn problem(text: &str) -> String {
        parse(text).expect_err("must be refused").problem
    }

    #[test]
    fn authy_ids_are_exactly_those_a_config_can_hold() {
        assert_eq!(AuthyId::new(0), None);
        assert_eq!(AuthyId::new(1).map(AuthyId::get), Some(1));
        assert_eq!(AuthyId::new(i64::MAX as u64).map(AuthyId::get), Some(i64::MAX as u64));
        assert_eq!(AuthyId::new(i64::MAX as u64 + 1), None);
        assert_eq!(AuthyId::new(u64::MAX), None);
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = parse(MINIMAL).expect("config");
        assert_eq!(config.api.url, "https://api.authy.com");
        assert_eq!(config.api.timeout, Duration::from_secs(10));
        assert_eq!(config.auth.failmode, FailMode::Secure);
        assert_eq!(config.auth.unmapped_users, UnmappedPolicy::Deny);
        assert_eq!(config.auth.max_tries, 3);
        assert_eq!(config.auth.method, Method::Prompt);
        assert_eq!(config.offline.digits, 6);
        assert_eq!(config.offline.period_secs, 30);
        assert_eq!(config.offline.skew_steps, 1);
        assert_eq!(config.offline.state_dir, PathBuf::from("/var/lib/pam_authy"));
        assert!(config.users.is_empty());
    }

    #[test]
    fn the_documented_example_parses() {
        let text = r#"
[api]
url = "https://api.authy.com"
api_key = "abc"
timeout_secs = 10

[auth]
failmode = "secure"
unmapped_users = "deny"
groups = []
max_tries = 3

[offline]
digits = 6
period_secs = 30
skew_steps = 1
state_dir = "/var/lib/pam_authy"

[users]
alice = 1234567
bob = { authy_id = 7654321, offline_secret = "jbsw y3dp ehpk 3pxp" }
"#;
        let config = parse(text).expect("config");
        assert_eq!(config.user("alice").and_then(|u| u.authy_id).map(AuthyId::get), Some(1234567));
        let bob = config.user("bob").expect("bob");
        assert_eq!(bob.authy_id.map(AuthyId::get), Some(7654321));
        assert_eq!(bob.offline_secret.as_ref().map(Secret::expose), Some("JBSWY3DPEHPK3PXP"));
    }

    #[test]
    fn each_schema_violation_is_refused_with_a_clear_message() {
        let cases = [
            ("[api]\napi_key = \"k\"\nbogus = 1\n", "line 3: unknown key"),
            ("[api]\napi_key = \"k\"\n[auth]\nfailmode = \"open\"\n", "line 4: [auth] failmode: unknown value"),
            ("[api]\napi_key = \"k\"\n[auth]\nmax_tries = \"3\"\n", "[auth] max_tries: wrong type"),
            ("[api]\napi_key = \"k\"\n[auth]\nmax_tries = 0\n", "max_tries is out of range"),
            ("[api]\napi_key = \"k\"\nurl = \"http://api.authy.com\"\n", "https://"),
            ("[api]\napi_key = \"k\"\nurl = \"https://u:p@api.authy.com\"\n", "credentials"),
            ("[api]\n", "needs api_key or api_key_file"),
            ("[api]\napi_key = \"k\"\napi_key_file = \"/k\"\n", "both"),
            ("[api]\napi_key = \"a b\"\n", "printable ASCII"),
            ("[api]\napi_key = \"k\"\n[users]\nalice = 0\n", "positive integer"),
            ("[api]\napi_key = \"k\"\n[users]\nalice = -5\n", "positive integer"),
            ("[api]\napi_key = \"k\"\n[users]\nalice = \"123\"\n", "must be an Authy ID"),
            ("[api]\napi_key = \"k\"\n[users]\nalice = 1\nalice = 2\n", "duplicate key"),
            ("[api]\napi_key = \"k\"\n[users]\nalice = 1\n\"alice\" = 2\n", "duplicate key"),
            ("[api]\napi_key = \"k\"\n[users]\nalice = 99999999999999999999\n", "line 4"),
            ("[api]\napi_key = \"k\"\n[users]\n\"alice \" = 1\n", "not a valid user name"),
            ("[api]\napi_key = \"k\"\n[users]\nbob = { authy_id = 1, extra = 2 }\n", "unknown key"),
            ("[api]\napi_key = \"k\"\n[users]\nbob = { offline_secret = \"JBSWY3DPEHPK3PXP\" }\n", "missing authy_id"),
            (
                "[api]\napi_key = \"k\"\n[users]\nbob = { authy_id = 1, offline_secret = \"JBSWY3DP\" }\n",
                "at least 80 bits",
            ),
            ("[api]\napi_key = \"k\"\n[users]\nbob = { authy_id = 1, offline_secret = \"not base32!\" }\n", "base32"),
            ("[api]\napi_key = \"k\"\n[offline]\nstate_dir = \"relative\"\n", "absolute"),
            ("[api]\napi_key = \"k\"\n[offline]\ndigits = 9\n", "out of range"),
            ("[api\napi_key = \"k\"\n", "line 1"),
        ];
        for (text, expected) in cases {
            let problem = problem(text);
            assert!(problem.contains(expected), "{text:?}: {problem:?} lacks {expected:?}");
        }
    }

    #[test]
    fn error_messages_never_echo_a_secret_value() {
        for text in [
            "[api]\napi_key = 123456789\n",
            "[api]\napi_key = \"SECRETKEY\n",
            "[api]\napi_key = \"k\"\n[users]\nbob = { authy_id = 1, offline_secret = 12345678 }\n",
            "[api]\napi_key = \"k\"\n[users]\nbob = { authy_id = 1, offline_secret = \"SECRETSEED\" }\n",
        ] {
            let problem = problem(text);
            for secret in ["123456789", "SECRETKEY", "12345678", "SECRETSEED"] {
                assert!(!problem.contains(secret), "{problem:?} leaks {secret}");
            }
        }
    }

    #[test]
    fn push_details_are_chosen_by_the_admin_and_the_command_is_opt_in() {
        let config = parse(MINIMAL).expect("config");
        assert_eq!(config.auth.push_details, PushDetails::default());
        assert!(!config.auth.push_details.command);
        let text = "[api]\napi_key = \"k\"\n[auth]\npush_details = [\"host\", \"requested_by\"]\npush_command = true\n";
        let details = parse(text).expect("config").auth.push_details;
        assert_eq!(details.fields, [DetailField::Host, DetailField::RequestedBy]);
        assert!(details.command);
        assert!(parse("[api]\napi_key = \"k\"\n[auth]\npush_details = [\"command\"]\n").is_err());
    }

    #[test]
    fn a_config_error_names_the_key_and_the_problem_never_the_value() {
        let k = "[api]\napi_key = \"k\"\n";
        let cases = [
            format!("{k}timeout_secs = \"PASTEDVALUE\"\n"),
            format!("{k}timeout_secs = 987654321\n"),
            format!("{k}url = \"PASTEDVALUE\"\n"),
            format!("{k}proxy = \"PASTEDVALUE\"\n"),
            format!("{k}PASTEDVALUE = 1\n"),
            format!("{k}[auth]\nfailmode = \"PASTEDVALUE\"\n"),
            format!("{k}[auth]\nmethod = \"PASTEDVALUE\"\n"),
            format!("{k}[auth]\nmax_tries = 987654321\n"),
            format!("{k}[auth]\ngroups = [\"PASTED VALUE\"]\n"),
            format!("{k}[auth]\npush_details = [\"PASTEDVALUE\"]\n"),
            format!("{k}[offline]\nstate_dir = 987654321\n"),
            format!("{k}[users]\n\"PASTED VALUE\" = 1\n"),
            format!("{k}[users]\nbob = {{ authy_id = 1, PASTEDVALUE = 2 }}\n"),
            format!("{k}[users]\nbob = \"PASTEDVALUE\"\n"),
            format!("{k}[users]\nbob = 1\nbob = \"PASTEDVALUE\"\n"),
            format!("{k}[users]\nPASTEDVALUE = 1\nPASTEDVALUE = 2\n"),
            "[api]\napi_key = PASTEDVALUE\n".to_owned(),
            "[api]\napi_key = \"PASTEDVALUE\"junk\n".to_owned(),
            "[api]\napi_key = \"PASTED VALUE\"\n".to_owned(),
        ];
        for text in cases {
            let error = parse(&text).expect_err("must be refused");
            let shown = error.to_string();
            assert!(!shown.contains("PASTED") && !shown.contains("987654321"), "{text:?} -> {shown}");
            assert!(shown.starts_with("/etc/pam_authy/pam_authy.toml: "), "{shown}");
        }
        let shown = parse(&format!("{k}[auth]\nfailmode = \"PASTEDVALUE\"\n")).expect_err("refused").to_string();
        assert!(shown.contains("line 4") && shown.contains("failmode") && shown.contains("secure"), "{shown}");
        for args in [&["PASTEDVALUE"][..], &["method=PASTEDVALUE"], &["config=PASTEDVALUE"]] {
            let shown = ModuleArgs::parse(args).expect_err("refused").to_string();
            assert!(!shown.contains("PASTED"), "{args:?} -> {shown}");
        }
    }

    #[test]
    fn base32_secrets_are_accepted_as_people_paste_them() {
        for pasted in [
            "JBSWY3DPEHPK3PXP",
            "jbswy3dpehpk3pxp",
            "jbsw y3dp ehpk 3pxp",
            "JBSW-Y3DP-EHPK-3PXP",
            "JBSWY3DPEHPK3PXP====",
        ] {
            let canonical = normalize_base32_secret(&Secret::from(pasted)).expect(pasted);
            assert_eq!(canonical.expose(), "JBSWY3DPEHPK3PXP");
        }
        assert!(normalize_base32_secret(&Secret::from("JBSWY3DP")).is_none());
        assert!(normalize_base32_secret(&Secret::from("JBSWY3DPEHPK3PX1")).is_none());
    }

    #[test]
    fn module_arguments_are_strict() {
        let args = ModuleArgs::parse(&["config=/tmp/x.toml", "debug", "method=push"]).expect("args");
        assert_eq!(args.config_path, PathBuf::from("/tmp/x.toml"));
        assert!(args.debug);
        assert_eq!(args.method, Some(Method::Push));
        assert_eq!(ModuleArgs::parse::<&str>(&[]).expect("none").config_path, PathBuf::from(DEFAULT_CONFIG_PATH));
        assert_eq!(ModuleArgs::parse(&["password_and_code=7"]).expect("args").password_and_code, Some(7));
        for bad in [
            "config=relative.toml",
            "method=carrier-pigeon",
            "nodebug",
            "failmode=safe",
            "password_and_code",
            "password_and_code=5",
            "password_and_code=9",
            "password_and_code=seven",
        ] {
            assert!(ModuleArgs::parse(&[bad]).is_err(), "{bad}");
        }
    }

    use crate::test_support::{private_dir, write_file as write_private};

    #[test]
    fn a_file_holding_a_secret_must_not_be_readable_by_others() {
        let dir = private_dir();
        let path = write_private(dir.path(), "c.toml", MINIMAL, 0o644);
        assert!(Config::load(&path).expect_err("refused").problem.contains("0644"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(Config::load(&path).is_ok());
    }

    #[test]
    fn a_file_without_secrets_may_be_world_readable_and_its_key_file_may_not() {
        let dir = private_dir();
        let key = write_private(dir.path(), "api_key", "filekey\n", 0o600);
        let text = format!("[api]\napi_key_file = \"{}\"\n", key.display());
        let path = write_private(dir.path(), "c.toml", &text, 0o644);
        let config = Config::load(&path).expect("config");
        assert_eq!(config.api.api_key.expose(), "filekey");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        assert!(Config::load(&path).expect_err("refused").problem.contains("API key"));
    }

    const VERIFY: &str = "[api]\nbackend = \"verify\"\n[verify]\nservice_sid = \"VA0123456789abcdef0123456789abcdef\"\napi_key_sid = \"SK0123456789abcdef0123456789abcdef\"\napi_key_secret = \"s3cret\"\n";

    #[test]
    fn the_documented_verify_example_parses() {
        let text = format!(
            "{VERIFY}[users]\nalice = {{ verify_identity = \"2f0c9a3e5b7d4e61a8c0f1e2d3c4b5a6\", totp_factor = \"YF0123456789abcdef0123456789abcdef\" }}\n\
             bob = {{ verify_identity = \"6b1d0c9a-3e5b\", phone = \"+15551234567\", push_factor = \"YFfedcba9876543210fedcba9876543210\", offline_secret = \"JBSWY3DPEHPK3PXP\" }}\n"
        );
        let config = parse(&text).expect("config");
        assert_eq!(config.api.backend, Backend::Verify);
        assert_eq!(config.api.url, DEFAULT_VERIFY_URL);
        let verify = config.verify.as_ref().expect("[verify]");
        assert_eq!(verify.service_sid.as_str(), "VA0123456789abcdef0123456789abcdef");
        assert_eq!(verify.api_key_secret.expose(), "s3cret");
        let alice = config.user("alice").expect("alice");
        assert_eq!(alice.authy_id, None);
        let alice = alice.verify.as_ref().expect("verify user");
        assert!(alice.totp_factor.is_some() && alice.phone.is_none() && alice.push_factor.is_none());
        let bob = config.user("bob").expect("bob");
        assert!(bob.offline_secret.is_some());
        assert_eq!(bob.verify.as_ref().and_then(|v| v.phone.as_ref()).map(Phone::as_str), Some("+15551234567"));
        assert!(parse(MINIMAL).expect("authy").verify.is_none());
        assert_eq!(parse(MINIMAL).expect("authy").api.backend, Backend::Authy);
    }

    #[test]
    fn a_config_moving_from_authy_to_verify_holds_both_mappings_and_each_backend_reads_its_own() {
        let users = "[users]\nalice = { authy_id = 1, verify_identity = \"2f0c9a3e5b7d4e61\", totp_factor = \"YF0123456789abcdef0123456789abcdef\" }\nbob = 2\n";
        let authy =
            parse(&format!("{}{users}", VERIFY.replace("backend = \"verify\"", "api_key = \"k\""))).expect("authy");
        assert_eq!(authy.api.backend, Backend::Authy);
        assert!(authy.verify.is_some(), "[verify] kept for migrate and check");
        let alice = authy.user("alice").expect("alice");
        assert_eq!(alice.authy_id.map(AuthyId::get), Some(1));
        assert!(alice.verify.is_some());
        assert!(authy.user("bob").expect("bob").verify.is_none());

        let switched = VERIFY.replace("[verify]", "api_key = \"k\"\n[verify]");
        let verify = parse(&format!("{switched}{}", users.replace("bob = 2\n", ""))).expect("verify");
        assert_eq!(verify.api.backend, Backend::Verify);
        let alice = verify.user("alice").expect("alice");
        assert!(alice.authy_id.is_none(), "no login under verify reads the Authy ID");
        assert!(alice.verify.is_some());
        assert!(problem(&format!("{switched}{users}")).contains("an Authy ID needs backend = \"authy\""));
    }

    #[test]
    fn each_verify_misuse_is_refused_with_a_precise_message() {
        let user = |fields: &str| format!("{VERIFY}[users]\nalice = {{ {fields} }}\n");
        let identity = "verify_identity = \"2f0c9a3e5b7d4e61\"";
        let cases = [
            (
                "[api]\napi_key = \"k\"\n[verify]\nservice_sid = \"VA0123456789abcdef0123456789abcdef\"\n".to_owned(),
                "[verify] needs api_key_sid",
            ),
            (format!("{VERIFY}api_key = \"k\"\n"), "line 7: unknown key"),
            (VERIFY.replace("[verify]", "api_key = \"k k\"\n[verify]"), "[api] api key must be"),
            (VERIFY.replace("VA0123", "VX0123"), "service_sid must be VA"),
            (VERIFY.replace("SK0123", "YF0123"), "api_key_sid must be SK"),
            (VERIFY.replace("abcdef\"\napi_key_secret", "ABCDEF\"\napi_key_secret"), "api_key_sid must be SK"),
            (VERIFY.replace("api_key_secret = \"s3cret\"\n", ""), "needs api_key_secret or api_key_secret_file"),
            (format!("{VERIFY}api_key_secret_file = \"/k\"\n"), "both api_key_secret and api_key_secret_file"),
            (VERIFY.replace("\"s3cret\"", "\"s3 cret\""), "[verify] api key secret must be"),
            (VERIFY.replace("\"s3cret\"", "42"), "api_key_secret must be a string"),
            ("[api]\nbackend = \"verify\"\n".to_owned(), "[verify] needs service_sid"),
            ("[api]\nbackend = \"twilio\"\n".to_owned(), "[api] backend: unknown value (expected `authy` or `verify`)"),
            (format!("{VERIFY}[users]\nalice = 42\n"), "an Authy ID needs backend = \"authy\""),
            (user(&format!("{identity}, authy_id = 0, phone = \"+15551234567\"")), "Authy ID must be a positive"),
            (user("totp_factor = \"YF0123456789abcdef0123456789abcdef\""), "missing verify_identity"),
            (user(identity), "needs at least one of totp_factor, phone, push_factor"),
            (
                user("verify_identity = \"alice@example.com\", phone = \"+15551234567\""),
                "verify_identity must be 8 to 64",
            ),
            (
                user("verify_identity = \"../../x/Factors\", phone = \"+15551234567\""),
                "verify_identity must be 8 to 64",
            ),
            (
                format!(
                    "{VERIFY}[users]\nalicealice = {{ verify_identity = \"AliceAlice\", phone = \"+15551234567\" }}\n"
                ),
                "not the user name",
            ),
            (user(&format!("{identity}, phone = \"5551234567\"")), "phone must be an E.164 number"),
            (user(&format!("{identity}, phone = 15551234567")), "phone has the wrong type"),
            (
                user(&format!("{identity}, totp_factor = \"YC0123456789abcdef0123456789abcdef\"")),
                "totp_factor must be YF",
            ),
            (user(&format!("{identity}, push_factor = \"YF0123\"")), "push_factor must be YF"),
            (
                user(&format!("{identity}, totp = \"YF0123456789abcdef0123456789abcdef\"")),
                "unknown key (expected authy_id, verify_identity, totp_factor",
            ),
            (
                "[api]\napi_key = \"k\"\n[users]\nalice = { authy_id = 1, phone = \"+15551234567\" }\n".to_owned(),
                "missing verify_identity",
            ),
            (
                "[api]\napi_key = \"k\"\n[users]\nalice = { verify_identity = \"2f0c9a3e5b7d4e61\" }\n".to_owned(),
                "needs at least one of totp_factor, phone, push_factor",
            ),
        ];
        for (text, expected) in cases {
            let problem = problem(&text);
            assert!(problem.contains(expected), "{text:?}: {problem:?} lacks {expected:?}");
            assert!(!problem.contains("s3cret"), "{problem}");
        }
    }

    #[test]
    fn a_verify_secret_in_the_file_or_in_a_readable_file_is_held_to_the_key_rules() {
        let dir = private_dir();
        let path = write_private(dir.path(), "inline.toml", VERIFY, 0o644);
        assert!(Config::load(&path).expect_err("refused").problem.contains("0644"));
        let secret = write_private(dir.path(), "verify_secret", "filesecret\n", 0o600);
        let text =
            VERIFY.replace("api_key_secret = \"s3cret\"", &format!("api_key_secret_file = \"{}\"", secret.display()));
        let path = write_private(dir.path(), "file.toml", &text, 0o644);
        let config = Config::load(&path).expect("config");
        assert_eq!(config.verify.expect("verify").api_key_secret.expose(), "filesecret");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o604)).expect("chmod");
        let problem = Config::load(&path).expect_err("refused").problem;
        assert!(problem.contains("0604") && problem.contains("API key secret"), "{problem}");
    }
}
