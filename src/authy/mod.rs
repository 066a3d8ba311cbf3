//! The Authy API as the rest of the module sees it: a trait, its request and reply types,
//! and typed errors. `client` implements it over HTTPS; tests implement it with doubles.
//!
//! Nothing here knows about PAM. Whatever the server says is untrusted: `response` parses
//! it strictly and every reply that is not exactly a success is an error or a denial.

pub mod client;
pub mod error;
pub mod response;
pub mod trust;

pub use client::AuthyClient;
pub use error::ApiError;

use crate::config::AuthyId;
use crate::secret::Secret;
use std::fmt;

/// A token as the user typed it, validated: 6 to 8 ASCII digits, nothing else.
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

/// The verdict of `/verify` for a well-formed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenVerdict {
    Valid,
    Invalid,
    /// Right code, already used (Authy error 60019).
    Reused,
}

/// The channels that deliver a token out of band.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Sms,
    Call,
}

impl Channel {
    pub fn path(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Call => "call",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path())
    }
}

/// What the API said after a token request by SMS or call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelReceipt {
    /// The masked phone number, already sanitised for display.
    pub cellphone: Option<String>,
}

/// A OneTouch approval request as sent. Strings are sanitised and bounded by the caller
/// (`flow::login_context`), and again by the client before they go on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRequest {
    pub message: String,
    pub details: Vec<(String, String)>,
    pub seconds_to_expire: u64,
}

/// The uuid the API gave to an approval request; validated to `[0-9a-fA-F-]{1,64}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalUuid(String);

impl ApprovalUuid {
    pub fn parse(text: &str) -> Option<ApprovalUuid> {
        let ok = !text.is_empty() && text.len() <= 64 && text.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
        ok.then(|| ApprovalUuid(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ApprovalUuid {
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

/// The calls the PAM module makes. The client is built per authentication and dropped
/// before `pam_sm_authenticate` returns.
pub trait AuthyApi {
    fn verify_token(&self, authy_id: AuthyId, token: &Token) -> Result<TokenVerdict, ApiError>;
    fn request_token(&self, authy_id: AuthyId, channel: Channel) -> Result<ChannelReceipt, ApiError>;
    fn create_approval_request(&self, authy_id: AuthyId, request: &ApprovalRequest) -> Result<ApprovalUuid, ApiError>;
    fn approval_status(&self, uuid: &ApprovalUuid) -> Result<ApprovalStatus, ApiError>;
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
    fn approval_uuids_are_hex_and_dashes() {
        assert!(ApprovalUuid::parse("550e8400-e29b-41d4-a716-446655440000").is_some());
        for bad in ["", "../x", "abc/def", "a b", &"a".repeat(65)] {
            assert!(ApprovalUuid::parse(bad).is_none(), "{bad:?}");
        }
    }
}
