//! How an authentication ended: the `Outcome` (`pam.rs` maps each to one PAM code), the
//! `Decision` that explains it in one syslog line, and `api_failure`, the one mapping from
//! an API failure to an outcome and a reason, shared by every backend and every call.
//!
//! README.md's table "What the module returns" lists every reason this module can give.

use super::Login;
use crate::backend::ApiError;
use crate::config::{AuthyId, ConfigError, FailMode};
use crate::log::{Level, format_fields};
use std::fmt;

/// How the module ended. `pam.rs` maps each to exactly one PAM code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A second factor was verified: PAM_SUCCESS.
    Verified(Factor),
    /// The API was unreachable and failmode is `safe`: PAM_SUCCESS, logged as a warning.
    FailSafe,
    /// Not subject to 2FA (outside `groups`, or unmapped under `ignore`): PAM_IGNORE.
    Exempt,
    /// Unmapped under `deny`, or no such account: PAM_USER_UNKNOWN.
    UnknownUser,
    /// A denial or an untrustworthy API reply: PAM_AUTH_ERR.
    Denied,
    /// Too many wrong answers: PAM_MAXTRIES.
    MaxTries,
    /// The API was unreachable and no fallback applied: PAM_AUTHINFO_UNAVAIL.
    Unavailable,
    /// The configuration or an account lookup is broken: PAM_SERVICE_ERR.
    ServiceError,
    /// The conversation failed or was interrupted: PAM_CONV_ERR.
    ConversationError,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    Token,
    Push,
    /// The local TOTP of the offline entry, while the API was unreachable.
    Offline,
    /// A second factor for the same (user, service, rhost) within `grace_secs`.
    Grace,
}

impl Outcome {
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Verified(_) => "success",
            Outcome::FailSafe => "success_failmode_safe",
            Outcome::Exempt => "ignore",
            Outcome::UnknownUser => "user_unknown",
            Outcome::Denied => "denied",
            Outcome::MaxTries => "maxtries",
            Outcome::Unavailable => "unavailable",
            Outcome::ServiceError => "service_error",
            Outcome::ConversationError => "conversation_error",
        }
    }
}

impl fmt::Display for Factor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Factor::Token => "token",
            Factor::Push => "push",
            Factor::Offline => "offline",
            Factor::Grace => "grace",
        })
    }
}

/// The outcome with what the log line needs to explain it. No secret ever goes in here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    pub reason: String,
    pub account: Option<String>,
    pub authy_id: Option<AuthyId>,
    /// Wrong, reused or malformed codes and unapproved pushes before the decision.
    pub failed_tries: u32,
}

impl Decision {
    pub(super) fn new(outcome: Outcome, reason: impl Into<String>) -> Decision {
        Decision { outcome, reason: reason.into(), account: None, authy_id: None, failed_tries: 0 }
    }

    /// The module arguments or the config file could not be used: nothing was asked.
    pub fn config_error(error: &ConfigError) -> Decision {
        Decision::new(Outcome::ServiceError, format!("config: {error}"))
    }

    /// The syslog line for this decision.
    pub fn log_line(&self, login: &Login) -> String {
        let authy_id = self.authy_id.map(|id| id.to_string()).unwrap_or_default();
        let failed_tries = self.failed_tries.to_string();
        let mut fields = vec![
            ("service", login.service.as_str()),
            ("user", login.user.as_str()),
            ("rhost", login.rhost.as_deref().unwrap_or("")),
            ("tty", login.tty.as_deref().unwrap_or("")),
            ("outcome", self.outcome.word()),
            ("reason", self.reason.as_str()),
        ];
        if let Some(account) = &self.account
            && account != &login.user
        {
            fields.push(("account", account));
        }
        if self.authy_id.is_some() {
            fields.push(("authy_id", &authy_id));
        }
        if self.failed_tries > 0 {
            fields.push(("failed_tries", &failed_tries));
        }
        format_fields(&fields)
    }

    /// How loud the line is: a fail-safe pass is a warning, broken setups are errors.
    pub fn log_level(&self) -> Level {
        match self.outcome {
            Outcome::Verified(_) | Outcome::Exempt => Level::Info,
            Outcome::FailSafe | Outcome::Unavailable => Level::Warning,
            Outcome::ServiceError => Level::Err,
            _ => Level::Notice,
        }
    }
}

/// What an API failure means, wherever it happens: the outcome that ends the login and the
/// reason `api_<kind>: <detail>`. Only `Unreachable` may be softened by failmode; everything
/// else fails closed. A call may still decide that a failure does not end the login (a code
/// that could not be sent leaves the prompt open), but never what it would end in.
pub fn api_failure(error: &ApiError, failmode: FailMode) -> (Outcome, String) {
    let reason = format!("api_{}: {error}", error.kind());
    let outcome = match error {
        ApiError::Unreachable(_) => match failmode {
            FailMode::Secure => Outcome::Unavailable,
            FailMode::Safe => Outcome::FailSafe,
        },
        ApiError::BadApiKey | ApiError::Local(_) | ApiError::ProxyRefused(_) => Outcome::ServiceError,
        ApiError::Tls(_) | ApiError::RateLimited(_) | ApiError::Rejected { .. } | ApiError::Protocol(_) => {
            Outcome::Denied
        }
    };
    (outcome, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_kind() -> [ApiError; 8] {
        [
            ApiError::RateLimited("HTTP 429 error 60202".into()),
            ApiError::Unreachable("refused".into()),
            ApiError::Tls("bad certificate".into()),
            ApiError::BadApiKey,
            ApiError::Rejected { status: 429, code: Some("60003".into()), message: String::new() },
            ApiError::Protocol("html".into()),
            ApiError::Local("EMFILE: Too many open files".into()),
            ApiError::ProxyRefused("proxy authorization required".into()),
        ]
    }

    #[test]
    fn only_an_unreachable_api_follows_failmode() {
        for error in every_kind() {
            let (secure, _) = api_failure(&error, FailMode::Secure);
            let (safe, _) = api_failure(&error, FailMode::Safe);
            match error {
                ApiError::Unreachable(_) => {
                    assert_eq!((secure, safe), (Outcome::Unavailable, Outcome::FailSafe));
                }
                ApiError::BadApiKey | ApiError::Local(_) | ApiError::ProxyRefused(_) => {
                    assert_eq!((secure, safe), (Outcome::ServiceError, Outcome::ServiceError), "{error:?}")
                }
                _ => assert_eq!((secure, safe), (Outcome::Denied, Outcome::Denied), "{error:?}"),
            }
        }
    }

    #[test]
    fn the_readme_table_names_every_api_failure_reason() {
        let readme = include_str!("../../README.md");
        let rows: Vec<&str> = readme.lines().filter(|line| line.starts_with('|')).collect();
        for error in every_kind() {
            for failmode in [FailMode::Secure, FailMode::Safe] {
                let (outcome, reason) = api_failure(&error, failmode);
                let word = reason.split(':').next().unwrap_or_default();
                let (reason_cell, outcome_cell) = (format!("`{word}"), format!("`{}`", outcome.word()));
                let named = rows.iter().any(|row| row.contains(&reason_cell) && row.contains(&outcome_cell));
                assert!(named, "README.md has no row for {outcome_cell} {reason_cell}");
            }
        }
    }
}
