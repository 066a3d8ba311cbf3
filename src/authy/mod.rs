//! The Authy backend: `AuthyBackend` binds the HTTPS client to one user's Authy ID and
//! offers the flow a code, push, SMS and call.
//!
//! Nothing here knows about PAM. Whatever the server says is untrusted: `response` parses
//! it strictly and every reply that is not exactly a success is an error or a denial.

pub mod client;
pub mod response;

pub use client::AuthyClient;

use crate::backend::{
    ApiError, ApprovalId, ApprovalRequest, ApprovalStatus, Backend, Channel, ChannelReceipt, Token, TokenVerdict, Word,
    Wording,
};
use crate::config::AuthyId;
use std::time::Duration;

/// What an Authy user may type instead of a token: every user has the app and a phone.
const WORDS: &[Word] = &[Word::Push, Word::Channel(Channel::Sms), Word::Channel(Channel::Call)];

/// The Authy API for one user, for one authentication.
pub struct AuthyBackend {
    client: AuthyClient,
    authy_id: AuthyId,
}

impl AuthyBackend {
    pub fn new(client: AuthyClient, authy_id: AuthyId) -> AuthyBackend {
        AuthyBackend { client, authy_id }
    }
}

impl Backend for AuthyBackend {
    fn wording(&self) -> &'static Wording {
        &Wording::AUTHY
    }

    fn words(&self) -> &[Word] {
        WORDS
    }

    fn verify_code(&mut self, code: &Token) -> Result<TokenVerdict, ApiError> {
        self.client.verify_token(self.authy_id, code)
    }

    fn send_code(&mut self, channel: Channel) -> Result<ChannelReceipt, ApiError> {
        self.client.request_token(self.authy_id, channel)
    }

    fn start_approval(&mut self, request: &ApprovalRequest) -> Result<ApprovalId, ApiError> {
        self.client.create_approval_request(self.authy_id, request)
    }

    fn poll_approval(&mut self, approval: &ApprovalId, within: Duration) -> Result<ApprovalStatus, ApiError> {
        self.client.approval_status(approval, within)
    }
}
