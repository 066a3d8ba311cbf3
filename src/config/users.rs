//! The `[users]` table: which Unix account maps to which second-factor identity (an Authy
//! ID, or a Verify entity and its factors), each entry checked against the backend, and the
//! offline seed in its canonical base32 form.

use super::api::Backend;
use super::error::ConfigError;
use crate::secret::Secret;
use crate::verify::{FactorSid, Identity, Phone};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

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

/// Unix user and group names as the mapping accepts them: no empty names, no white space,
/// no control characters, no `:` or `/` (which no passwd entry can hold).
pub fn valid_account_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && !name.chars().any(|c| c.is_whitespace() || c.is_control() || c == ':' || c == '/')
}

pub(super) fn parse_users(
    path: &Path,
    backend: Backend,
    table: toml::Table,
) -> Result<BTreeMap<String, UserEntry>, ConfigError> {
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

/// The keys a `[users]` entry may hold; `parse_user_table` refuses any other before it looks
/// at one, so this list is exactly what the parser takes.
pub const USER_KEYS: [&str; 6] =
    ["authy_id", "verify_identity", "totp_factor", "phone", "push_factor", "offline_secret"];

fn parse_user_table(path: &Path, backend: Backend, name: &str, fields: toml::Table) -> Result<UserEntry, ConfigError> {
    let mut id = None;
    let mut offline_secret = None;
    let mut identity = None;
    let (mut totp_factor, mut phone, mut push_factor) = (None, None, None);
    let invalid = |key: &str, what: &str| ConfigError::new(path, format!("[users] {name}: {key} must be {what}"));
    let unknown = || {
        let [others @ .., last] = USER_KEYS;
        ConfigError::new(path, format!("[users] {name}: unknown key (expected {} or {last})", others.join(", ")))
    };
    for (key, value) in fields {
        if !USER_KEYS.contains(&key.as_str()) {
            return Err(unknown());
        }
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
            _ => return Err(ConfigError::new(path, format!("[users] {name}: {key} has the wrong type"))),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authy_ids_are_exactly_those_a_config_can_hold() {
        assert_eq!(AuthyId::new(0), None);
        assert_eq!(AuthyId::new(1).map(AuthyId::get), Some(1));
        assert_eq!(AuthyId::new(i64::MAX as u64).map(AuthyId::get), Some(i64::MAX as u64));
        assert_eq!(AuthyId::new(i64::MAX as u64 + 1), None);
        assert_eq!(AuthyId::new(u64::MAX), None);
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
}
