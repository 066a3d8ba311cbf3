//! The second-factor service as the flow sees it: a backend bound to one mapped user that
//! verifies a code, sends a code by a channel, and starts and polls an approval.
//!
//! The flow never knows which service answers. A backend is built per authentication for
//! one user, so the service's identifiers (an Authy ID today; a Verify identity, factor and
//! verification SIDs tomorrow) live inside it. Whatever a server says is untrusted: each
//! backend parses strictly, and a reply that is not exactly a success is an error or a
//! denial. `ApiError` is the same for every backend, and `flow::outcome::api_failure` is the
//! one place that turns it into an outcome.

pub mod error;

pub use error::ApiError;

use crate::authy::{AuthyBackend, AuthyClient};
use crate::config::{self, Config, UserEntry};
use crate::secret::Secret;
use crate::verify::backend::VerifyBackend;
use crate::verify::client::VerifyClient;
use std::fmt;
use std::time::Duration;

/// One mapped user's second-factor service, for one authentication.
pub trait Backend {
    /// What the user reads about this service and its codes. Neutral unless a backend names
    /// itself: a user of one service never reads another's name.
    fn wording(&self) -> &'static Wording {
        &Wording::NEUTRAL
    }
    /// The words this user may type at the code prompt instead of a code, in prompt order.
    /// A backend offers only what it can do for this user (no `sms` without a phone).
    fn words(&self) -> &[Word];
    /// Checks a code the user typed. A backend that sent a code checks against that send.
    fn verify_code(&mut self, code: &Token) -> Result<TokenVerdict, ApiError>;
    /// For a code whose reuse the service does not refuse itself: a keyed tag (never the
    /// code) that the flow claims in the state store before `verify_code`, so that the
    /// same code is refused to every later login within its validity. None: no local guard.
    fn replay_tag(&self, _code: &Token) -> Option<String> {
        None
    }
    /// Asks the service to deliver a code by `channel`; only called for an offered word.
    fn send_code(&mut self, channel: Channel) -> Result<ChannelReceipt, ApiError>;
    /// Sends an approval request (a push) to the user's device.
    fn start_approval(&mut self, request: &ApprovalRequest) -> Result<ApprovalId, ApiError>;
    /// The state of the approval `start_approval` returned; a reply about any other
    /// approval is an error. The request ends by `within` (the push deadline) at the latest.
    fn poll_approval(&mut self, approval: &ApprovalId, within: Duration) -> Result<ApprovalStatus, ApiError>;
}

/// The configured backend for one mapped user, over a transport that trusts the system
/// bundle and `ca_file`. `started_at` (seconds since the epoch) dates what the backend sends.
pub fn for_user(config: &Config, user: &UserEntry, started_at: u64) -> Result<Box<dyn Backend>, ApiError> {
    match (config.api.backend, &config.verify, user.authy_id, &user.verify) {
        (config::Backend::Authy, _, Some(authy_id), _) => {
            Ok(Box::new(AuthyBackend::new(AuthyClient::new(&config.api)?, authy_id)))
        }
        (config::Backend::Verify, Some(verify), _, Some(verify_user)) => {
            let client = VerifyClient::new(&config.api, verify)?;
            Ok(Box::new(VerifyBackend::new(client, verify, verify_user, started_at)))
        }
        // `Config::parse` never builds such an entry; refuse it rather than guess.
        _ => Err(ApiError::Protocol("the user's entry does not match [api] backend".into())),
    }
}

/// The service-specific words of the messages the user reads; the flow builds every message
/// from these, so that no message names a service the user does not use.
#[derive(Debug, PartialEq, Eq)]
pub struct Wording {
    /// What the prompt asks for: "Authy token".
    pub prompt: &'static str,
    /// What a code is called in a sentence: "token".
    pub code: &'static str,
    /// Where the user's codes come from: "shown by Authy".
    pub code_source: &'static str,
    /// The app that shows codes, after "a token from": "the Authy app".
    pub app: &'static str,
    /// The service as the subject of "cannot be reached": "Authy".
    pub service: &'static str,
    /// A sent push, at the start of a sentence: "Authy push".
    pub push: &'static str,
}

impl Wording {
    /// For a service whose codes come from any authenticator app, SMS or call (Verify).
    pub const NEUTRAL: Wording = Wording {
        prompt: "Verification code",
        code: "code",
        code_source: "from your authenticator app or message",
        app: "your authenticator app",
        service: "The verification service",
        push: "Push",
    };
    pub const AUTHY: Wording = Wording {
        prompt: "Authy token",
        code: "token",
        code_source: "shown by Authy",
        app: "the Authy app",
        service: "Authy",
        push: "Authy push",
    };
}

/// A code as the user typed it, validated: 6 to 8 ASCII digits, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token(Secret);

impl Token {
    pub const MIN_DIGITS: usize = 6;
    pub const MAX_DIGITS: usize = 8;

    /// Validates what the user typed before it can go anywhere near a URL.
    pub fn parse(input: &str) -> Option<Token> {
        let digits = input.trim_matches(|c: char| c == ' ' || c == '\t');
        let well_formed =
            (Self::MIN_DIGITS..=Self::MAX_DIGITS).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
        well_formed.then(|| Token(Secret::from(digits)))
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    pub fn len(&self) -> usize {
        self.0.expose().len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The service's verdict on a well-formed code. A backend whose service does not refuse a
/// reused code itself is where the flow will learn what to record to refuse it locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenVerdict {
    Valid,
    Invalid,
    /// Right code, already used (Authy error 60019).
    Reused,
    /// Nothing to check the code against: the code sent by SMS or call expired, was used or
    /// ran out of checks (Verify 20404), or none was sent.
    Expired,
}

/// The channels that deliver a code out of band.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Sms,
    Call,
}

impl Channel {
    /// The lower-case name: the word the user types and the name the APIs use.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Call => "call",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the user may type at the code prompt instead of a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Word {
    Push,
    Channel(Channel),
}

impl Word {
    /// What the user types (any case).
    pub fn as_str(self) -> &'static str {
        match self {
            Word::Push => "push",
            Word::Channel(channel) => channel.as_str(),
        }
    }
}

/// What the service said after sending a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelReceipt {
    /// The masked phone number, already sanitised for display.
    pub cellphone: Option<String>,
}

/// An approval request as sent. Strings are sanitised and bounded by the caller
/// (`context::approval_request`), and again by the client before they go on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRequest {
    pub message: String,
    pub details: Vec<(String, String)>,
    pub seconds_to_expire: u64,
}

/// The service's opaque name for one approval request (an Authy uuid, a Verify challenge
/// SID): 1 to 64 ASCII letters, digits and dashes, so it is safe as a URL path segment.
/// Backends check their own stricter shape before building one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalId(String);

impl ApprovalId {
    pub fn parse(text: &str) -> Option<ApprovalId> {
        let ok = !text.is_empty() && text.len() <= 64 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        ok.then(|| ApprovalId(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ApprovalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Denied,
    Expired,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_six_to_eight_ascii_digits() {
        assert_eq!(Token::parse("1234567").map(|t| t.len()), Some(7));
        assert!(Token::parse(" 123456 ").is_some());
        for bad in [
            "",
            "12345",
            "123456789",
            "12345a",
            "../sms",
            "123456/1",
            "123456#",
            "123456?x=1",
            "+123456",
            "-123456",
            "12 3456",
            "１２３４５６",
            "١٢٣٤٥٦",
            "%31%32%33%34%35%36",
            "1234567\n",
            "123456\0",
        ] {
            assert!(Token::parse(bad).is_none(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn approval_ids_are_safe_path_segments() {
        assert!(ApprovalId::parse("550e8400-e29b-41d4-a716-446655440000").is_some());
        assert!(ApprovalId::parse("YC0123456789abcdef0123456789abcdef").is_some());
        for bad in ["", "../x", "abc/def", "a b", "a.b", "a%2f", &"a".repeat(65)] {
            assert!(ApprovalId::parse(bad).is_none(), "{bad:?}");
        }
    }
}
