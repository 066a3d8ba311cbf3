//! The `[auth]` table: what happens on failure (`failmode`, unmapped users), who is asked
//! (`groups`), how (`method`, tries, push timing, what a push shows) and the grace period.

use super::error::{ConfigError, in_range};
use super::schema::RawAuth;
use super::users::valid_account_name;
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

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

pub(super) fn parse_auth(path: &Path, raw: RawAuth) -> Result<AuthConfig, ConfigError> {
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
