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
//!
//! Each concern has its own file: `schema` (the raw TOML and its value-free errors), `api`
//! (`[api]`, `[verify]`), `auth`, `offline`, `users` (the mapping), `args` (module arguments),
//! `users_d` (drop-ins), `diagnose` (every problem at once), `error`, and for tests `keys` (every
//! key the parser takes, read off the parser). This file joins them into `Config` and loads it.

mod api;
mod args;
mod auth;
mod diagnose;
mod error;
#[cfg(any(test, feature = "test-support"))]
pub mod keys;
mod offline;
mod schema;
#[cfg(test)]
mod tests;
mod users;
mod users_d;

pub use api::{ApiConfig, Backend, VerifyConfig};
pub use args::ModuleArgs;
pub use auth::{AuthConfig, DetailField, FailMode, Method, PushDetails, UnmappedPolicy};
pub use error::ConfigError;
pub use offline::OfflineConfig;
pub use users::{AuthyId, USER_KEYS, UserEntry, VerifyUser, normalize_base32_secret, valid_account_name};
pub use users_d::{MAX_DROP_INS, USERS_DIR, read_drop_in, users_dir};

use crate::secure_fs;
use schema::{RawConfig, toml_problem};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use users::parse_users;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/pam_authy/pam_authy.toml";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/pam_authy";
pub const DEFAULT_AUTHY_URL: &str = "https://api.authy.com";
pub const DEFAULT_VERIFY_URL: &str = "https://verify.twilio.com";
const MAX_FILE_BYTES: u64 = 1 << 20;

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
        let (api, api_key_inline) = api::parse_api(path, raw.api)?;
        let (verify, secret_inline) = api::parse_verify(path, api.backend, raw.verify)?;
        let auth = auth::parse_auth(path, raw.auth)?;
        let offline = offline::parse_offline(path, raw.offline)?;
        let users = parse_users(path, api.backend, raw.users)?;
        let api_key_inline = api_key_inline || secret_inline;
        Ok(Config { path: path.to_path_buf(), api, verify, auth, offline, users, drop_ins: Vec::new(), api_key_inline })
    }

    pub fn user(&self, name: &str) -> Option<&UserEntry> {
        self.users.get(name)
    }
}
