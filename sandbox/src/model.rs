//! The public vocabulary tests use to steer and inspect a sandbox.
//!
//! Faults, push scenarios and the records of what the sandbox saw are plain data here so that
//! the Rust API, the control interface and the store all speak the same types. Nothing in this
//! file performs I/O or holds locks.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Which requests a fault or push scenario applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultScope {
    /// Every API request (a user-scoped setting wins when both match).
    Global,
    /// Requests whose path names this authy_id (verify, sms, call, users/{id}/…, onetouch
    /// users/{id}/approval_requests) and status polls of approval requests owned by it.
    User(u64),
    /// Every request to the Verify API (`/v2/...`); it wins over `Global` there.
    Verify,
}

/// A misbehaviour the API listener shows instead of (or before) its normal answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status with an Authy error body: 429 uses 60003 "DoS protection", anything
    /// else the generic 60000 "An error occurred".
    Status(u16),
    /// Read the request and never answer (until the sandbox is dropped).
    Hang,
    /// Wait this long, then answer normally.
    Slow(Duration),
    /// Read the request, then close the connection with a TCP RST (SO_LINGER 0).
    Reset,
    /// 200 with a truncated, invalid JSON body.
    InvalidJson,
    /// 200 with a `text/html` page, like a captive portal or a misrouted proxy.
    Html,
    /// 302 with `Location:` this URL.
    Redirect(String),
    /// Exactly this status and raw body (`application/json` content type).
    Body(u16, String),
}

/// How approval requests progress without a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PushScenario {
    /// Pending until `decide_push` (or until it expires).
    #[default]
    Manual,
    /// The `polls`-th status GET (counting from 1; 0 behaves like 1) is the first to show
    /// `status`.
    AfterPolls {
        /// The final status.
        status: PushStatus,
        /// Which poll reveals it.
        polls: u32,
    },
    /// Pending forever: `decide_push` and `seconds_to_expire` are ignored.
    Never,
}

/// The status of an approval request, as Authy spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PushStatus {
    /// Waiting for the user.
    Pending,
    /// The user approved.
    Approved,
    /// The user denied.
    Denied,
    /// Nobody answered before `seconds_to_expire`.
    Expired,
}

impl PushStatus {
    /// `pending`, `approved`, `denied` or `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            PushStatus::Pending => "pending",
            PushStatus::Approved => "approved",
            PushStatus::Denied => "denied",
            PushStatus::Expired => "expired",
        }
    }

    /// Parses the API spelling.
    pub fn parse(s: &str) -> Option<PushStatus> {
        match s {
            "pending" => Some(PushStatus::Pending),
            "approved" => Some(PushStatus::Approved),
            "denied" => Some(PushStatus::Denied),
            "expired" => Some(PushStatus::Expired),
            _ => None,
        }
    }
}

/// One approval request as the sandbox holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRecord {
    /// The v4 UUID returned to the client.
    pub uuid: String,
    /// The user it was sent to.
    pub authy_id: u64,
    /// The `message` parameter.
    pub message: String,
    /// `details[...]`, shown to the user.
    pub details: BTreeMap<String, String>,
    /// `hidden_details[...]`, stored only.
    pub hidden_details: BTreeMap<String, String>,
    /// As requested (default 86400; 0 = never).
    pub seconds_to_expire: u64,
    /// Current status (expiry already applied).
    pub status: PushStatus,
    /// How many status GETs it received.
    pub polls: u32,
    /// When it was created.
    pub created_at: Instant,
    /// When it stopped being pending.
    pub decided_at: Option<Instant>,
}

/// One API request, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path exactly as sent (percent-escapes and dot segments intact), without the query.
    pub raw_path: String,
    /// The path the router saw: `raw_path` after dot-segment normalisation when that mode is
    /// on, otherwise identical.
    pub route_path: String,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    /// The API key presented (header `X-Authy-API-Key`, else `api_key` parameter).
    pub api_key: Option<String>,
    /// The body, lossily decoded as UTF-8.
    pub body: String,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
}

/// The HMAC of a TOTP factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpAlg {
    /// HMAC-SHA1, the default and the only one common authenticator apps all support.
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

impl TotpAlg {
    /// `sha1`, `sha256` or `sha512`.
    pub fn as_str(self) -> &'static str {
        match self {
            TotpAlg::Sha1 => "sha1",
            TotpAlg::Sha256 => "sha256",
            TotpAlg::Sha512 => "sha512",
        }
    }

    /// Parses the API spelling (lower case, exact).
    pub fn parse(s: &str) -> Option<TotpAlg> {
        match s {
            "sha1" => Some(TotpAlg::Sha1),
            "sha256" => Some(TotpAlg::Sha256),
            "sha512" => Some(TotpAlg::Sha512),
            _ => None,
        }
    }
}

/// What a Verify client needs: the account, an API key and the default service.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyAccount {
    /// `AC` + 32 hex; with `auth_token`, one accepted Basic-auth pair.
    pub account_sid: String,
    /// The account's auth token.
    pub auth_token: String,
    /// `SK` + 32 hex; with `api_key_secret`, the other accepted pair.
    pub api_key_sid: String,
    /// The API key's secret.
    pub api_key_secret: String,
    /// `VA` + 32 hex: the service that exists from the start.
    pub service_sid: String,
}

impl std::fmt::Debug for VerifyAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyAccount")
            .field("account_sid", &self.account_sid)
            .field("api_key_sid", &self.api_key_sid)
            .field("service_sid", &self.service_sid)
            .finish_non_exhaustive()
    }
}

/// A TOTP factor to create directly (without the enrolment round trip).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpFactorSpec {
    /// Created `verified` (the default), or `unverified` as right after `POST .../Factors`.
    pub verified: bool,
    /// HMAC algorithm (default sha1).
    pub alg: TotpAlg,
    /// Code length, 3..=8 (default 6).
    pub digits: u32,
    /// Time step in seconds, 20..=60 (default 30).
    pub step: u64,
    /// Accepted steps either side, 0..=2 (default 1).
    pub skew: u32,
    /// The raw secret; `None` draws 20 random bytes.
    pub secret: Option<Vec<u8>>,
    /// The factor's friendly name.
    pub friendly_name: String,
}

impl Default for TotpFactorSpec {
    fn default() -> Self {
        TotpFactorSpec {
            verified: true,
            alg: TotpAlg::Sha1,
            digits: 6,
            step: 30,
            skew: 1,
            secret: None,
            friendly_name: "sandbox authenticator".to_owned(),
        }
    }
}

/// A factor created through the test API.
#[derive(Clone, PartialEq, Eq)]
pub struct NewFactor {
    /// `YF` + 32 hex.
    pub sid: String,
    /// The entity's `YE` SID.
    pub entity_sid: String,
    /// The raw TOTP secret (empty for push factors).
    pub secret: Vec<u8>,
    /// The same secret in Base32, as an authenticator app takes it.
    pub secret_base32: String,
}

impl std::fmt::Debug for NewFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewFactor")
            .field("sid", &self.sid)
            .field("entity_sid", &self.entity_sid)
            .finish_non_exhaustive()
    }
}

/// A Verify challenge as the sandbox holds it (for push: what the phone would show).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyChallengeRecord {
    /// `YC` + 32 hex.
    pub sid: String,
    /// The service.
    pub service_sid: String,
    /// The entity's identity.
    pub identity: String,
    /// The factor challenged.
    pub factor_sid: String,
    /// `totp` or `push`.
    pub factor_type: String,
    /// `pending`, `approved`, `denied` or `expired` (expiry applied).
    pub status: String,
    /// `Details.Message` as sent.
    pub message: Option<String>,
    /// `Details.Fields` as (label, value), in the order sent.
    pub fields: Vec<(String, String)>,
    /// `HiddenDetails` as compact JSON text.
    pub hidden_details: Option<String>,
    /// Creation time (sandbox clock).
    pub created_unix: u64,
    /// Expiration time (sandbox clock).
    pub expiration_unix: u64,
    /// How many times a client fetched it.
    pub polls: u32,
    /// Wrong TOTP codes tried against it.
    pub wrong_codes: u32,
}

/// A code the sandbox "sent" by SMS or voice for a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifySentCode {
    /// `VE` + 32 hex.
    pub verification_sid: String,
    /// The service.
    pub service_sid: String,
    /// The E.164 number.
    pub to: String,
    /// `sms` or `call` (the latest send's).
    pub channel: String,
    /// The code.
    pub code: String,
    /// `pending`, `approved`, `canceled`, `max_attempts_reached` or `expired`.
    pub status: String,
    /// Deliveries so far.
    pub sends: u32,
    /// Checks so far.
    pub checks: u32,
}
