//! Typed failures of a second-factor API call, the same for every backend.
//!
//! Each backend sorts its own failures into these kinds; `flow::outcome::api_failure` is the
//! one place that turns a kind into an outcome and a reason. The split matters for security: only `Unreachable` may lead to the offline fallback or
//! to failmode `safe`. A TLS failure, a bad key, a refusal or a reply we cannot trust
//! always fails closed.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// DNS failure, connection refused or reset, timeout, or HTTP 5xx.
    Unreachable(String),
    /// The TLS handshake or the server certificate failed verification.
    Tls(String),
    /// The API refused our credentials (Authy: HTTP 401 with error 60001).
    BadApiKey,
    /// The API refuses more attempts or sends for now (Verify: HTTP 429, 60202, 60203,
    /// 60308, 60312, 20429, 60212). The user is told; the module does not retry.
    RateLimited(String),
    /// A well-formed API error other than the ones above (404 user not found, 429...).
    Rejected { status: u16, code: Option<String>, message: String },
    /// A reply that is not what the API documents: wrong status, shape, type or size.
    Protocol(String),
    /// This host's own failure, not the network's: a descriptor or memory limit, a permission
    /// (EMFILE, ENOMEM, EACCES...). Often within reach of the caller of sudo or su.
    Local(String),
    /// The configured proxy refused the tunnel (407, 403...): a configuration error.
    ProxyRefused(String),
}

impl ApiError {
    /// True only for failures that mean "the API could not be reached".
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ApiError::Unreachable(_))
    }

    /// A short stable word for syslog.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::Unreachable(_) => "unreachable",
            ApiError::Tls(_) => "tls",
            ApiError::BadApiKey => "bad_api_key",
            ApiError::RateLimited(_) => "rate_limited",
            ApiError::Rejected { .. } => "rejected",
            ApiError::Local(_) => "local",
            ApiError::ProxyRefused(_) => "proxy_refused",
            ApiError::Protocol(_) => "protocol",
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Unreachable(why) => write!(f, "API unreachable: {why}"),
            ApiError::Tls(why) => write!(f, "TLS failure: {why}"),
            ApiError::BadApiKey => f.write_str("the API rejected the credentials"),
            ApiError::RateLimited(why) => write!(f, "API refuses more attempts for now: {why}"),
            ApiError::Rejected { status, code, message } => {
                write!(f, "API refused: HTTP {status}")?;
                if let Some(code) = code {
                    write!(f, " error {code}")?;
                }
                if !message.is_empty() {
                    write!(f, " ({message})")?;
                }
                Ok(())
            }
            ApiError::Protocol(why) => write!(f, "unexpected API reply: {why}"),
            ApiError::Local(why) => write!(f, "local failure (not the network): {why}"),
            ApiError::ProxyRefused(why) => write!(f, "the proxy refused the tunnel: {why}"),
        }
    }
}

impl std::error::Error for ApiError {}
