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
