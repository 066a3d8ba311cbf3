//! What every admin subcommand shares: where the config is, loading it with the module's
//! own checks, looking a user up in `[users]`, the API client, and the way results, warnings
//! and failures are printed. Nothing here prints a secret.

use pam_authy::authy::AuthyClient;
use pam_authy::config::{AuthyId, Backend, Config, DEFAULT_CONFIG_PATH, UserEntry, read_drop_in, valid_account_name};
use pam_authy::sanitize::display_text;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why a subcommand did not succeed.
#[derive(Debug)]
pub enum Exit {
    /// A one-line reason, printed by `main` as `pam-authy: REASON`.
    Failed(String),
    /// The subcommand printed its own report (`check`); exit non-zero without more output.
    Reported,
    /// The subcommand printed its result (text or JSON); add only the reason on stderr.
    ReportedWithReason(String),
}

impl From<String> for Exit {
    fn from(message: String) -> Self {
        Exit::Failed(message)
    }
}

impl From<&str> for Exit {
    fn from(message: &str) -> Self {
        Exit::Failed(message.to_owned())
    }
}

pub type Outcome = Result<(), Exit>;

/// The config path as the module would see it: absolute, with symlinks left in place so
/// that the module's symlink check still applies to it.
pub fn config_path(arg: Option<&Path>) -> Result<PathBuf, String> {
    let path = arg.unwrap_or(Path::new(DEFAULT_CONFIG_PATH));
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    std::env::current_dir()
        .map(|dir| dir.join(path))
        .map_err(|e| format!("{}: cannot resolve a relative path: {e}", path.display()))
}

/// Loads the config with every check the module makes (owner, mode, symlinks, schema).
pub fn load(path: &Path) -> Result<Config, String> {
    Config::load(path).map_err(|e| e.to_string())
}

/// Refuses names the mapping could never hold, before anything is sent or written.
pub fn check_user_name(user: &str) -> Result<(), String> {
    if valid_account_name(user) {
        Ok(())
    } else {
        Err(format!("{user:?} is not a valid user name (no spaces, control characters, ':' or '/')"))
    }
}

/// The `[users]` entry of `user`, or a message saying the user is unmapped.
pub fn mapped<'c>(config: &'c Config, user: &str) -> Result<&'c UserEntry, String> {
    config.user(user).ok_or_else(|| {
        format!("{user} is not in [users] of {}; map it with `pam-authy enroll {user} ...`", config.path.display())
    })
}

/// The users the main config file maps itself, not its `users.d` drop-ins.
fn main_file_users(path: &Path) -> Result<Vec<String>, String> {
    const MAX_CONFIG_BYTES: u64 = 1 << 20;
    let read = pam_authy::secure_fs::read_file(path, MAX_CONFIG_BYTES).map_err(|e| e.to_string())?;
    let text = std::str::from_utf8(&read.bytes).map_err(|_| format!("{}: not UTF-8", path.display()))?;
    let config = Config::parse(path, text).map_err(|e| e.to_string())?;
    Ok(config.users.into_keys().collect())
}

/// The file whose `[users]` holds `user`'s line: the main config or one of its drop-ins,
/// each read with the module's checks.
pub fn mapping_file(config: &Config, user: &str) -> Result<PathBuf, String> {
    mapping_files(config)?
        .remove(user)
        .ok_or_else(|| format!("{user} is not in [users] of {} or its users.d", config.path.display()))
}

/// Every mapped user with the file that holds its line.
pub fn mapping_files(config: &Config) -> Result<BTreeMap<String, PathBuf>, String> {
    let mut files: BTreeMap<String, PathBuf> =
        main_file_users(&config.path)?.into_iter().map(|user| (user, config.path.clone())).collect();
    for drop_in in &config.drop_ins {
        let users = read_drop_in(drop_in, config.api.backend).map_err(|e| e.to_string())?;
        files.extend(users.into_keys().map(|user| (user, drop_in.clone())));
    }
    Ok(files)
}

/// The module's own client, built from the config exactly as the module builds it.
pub fn client(config: &Config) -> Result<AuthyClient, String> {
    authy_only(config)?;
    AuthyClient::new(&config.api).map_err(|e| format!("{}: {e}", config.api.url))
}

/// A message as it may reach the terminal: whatever it quotes from outside (API replies,
/// certificate names, file contents) loses escape sequences, line breaks and invisible
/// characters here, at the last step before output, whoever built the message.
pub fn clean(message: &str) -> String {
    display_text(message, MAX_MESSAGE_CHARS)
}

/// The account commands speak the Authy API; Verify enrolment is not built yet.
pub fn authy_only(config: &Config) -> Result<(), String> {
    match config.api.backend {
        Backend::Authy => Ok(()),
        Backend::Verify => {
            Err(format!("{}: [api] backend = \"verify\": this command manages Authy users only", config.path.display()))
        }
    }
}

/// The user's Authy ID (a user of the Verify backend has none).
pub fn authy_id(config: &Config, user: &str, entry: &UserEntry) -> Result<AuthyId, String> {
    authy_only(config)?;
    entry.authy_id.ok_or_else(|| format!("{user} has no authy_id in {}", config.path.display()))
}

const MAX_MESSAGE_CHARS: usize = 4000;

pub fn warn(message: &str) {
    eprintln!("warning: {}", clean(message));
}

/// A failure reason on stderr, as `pam-authy: REASON`.
pub fn print_failure(message: &str) {
    eprintln!("pam-authy: {}", clean(message));
}

/// One JSON document on stdout, every string in it cleaned like terminal text.
pub fn print_json(value: &serde_json::Value) {
    println!("{}", clean_json(value));
}

fn clean_json(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(text) => Value::String(clean(text)),
        Value::Array(items) => Value::Array(items.iter().map(clean_json).collect()),
        Value::Object(fields) => Value::Object(fields.iter().map(|(k, v)| (clean(k), clean_json(v))).collect()),
        other => other.clone(),
    }
}

/// Whether an account of that name exists (NSS); lookup failures count as "don't know".
pub fn account_exists(user: &str) -> Option<bool> {
    nix::unistd::User::from_name(user).ok().map(|u| u.is_some())
}

/// Warns when the module would not find the account (it resolves users through NSS).
pub fn warn_if_no_account(user: &str) {
    if account_exists(user) == Some(false) {
        warn(&format!(
            "there is no account {user} on this system; the module looks users up through NSS \
             and answers PAM_USER_UNKNOWN for unknown accounts"
        ));
    }
}
