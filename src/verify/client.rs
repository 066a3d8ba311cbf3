//! The Verify API over the shared HTTPS transport: HTTP Basic credentials from `[verify]`,
//! form-encoded requests, and nothing else. `VerifyHttp` is the seam the backend talks to,
//! so its logic is tested with scripted replies and the real client adds only the wire.

use super::paths;
use crate::backend::ApiError;
use crate::config::{ApiConfig, VerifyConfig};
use crate::secret::Secret;
use crate::transport::{Anchors, Endpoint, Transport};
use reqwest::header::{HeaderMap, HeaderValue};
use std::time::Duration;

const USER_AGENT: &str = concat!("pam_authy/", env!("CARGO_PKG_VERSION"), " (linux x86_64)");

/// The two requests the backend makes: status and bounded body, or a transport failure.
/// `delete` only the admin CLI sends (`admin`).
pub trait VerifyHttp {
    fn get(&self, path: &[String]) -> Result<(u16, Vec<u8>), ApiError>;
    /// `get` ended by `within` at the latest (a push poll at the push deadline).
    fn get_within(&self, path: &[String], within: Duration) -> Result<(u16, Vec<u8>), ApiError>;
    fn post(&self, path: &[String], form: &Secret) -> Result<(u16, Vec<u8>), ApiError>;
    fn delete(&self, _path: &[String]) -> Result<(u16, Vec<u8>), ApiError> {
        Err(ApiError::Protocol("DELETE is not a request the module sends".into()))
    }
}

pub struct VerifyClient {
    transport: Transport,
}

/// Standard base64 (RFC 4648, with padding) of `bytes`, for the Basic credentials.
fn base64(bytes: &[u8]) -> zeroize::Zeroizing<String> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = zeroize::Zeroizing::new(String::with_capacity(bytes.len().div_ceil(3) * 4));
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl VerifyClient {
    /// A client that trusts the system bundle and the configured `ca_file`.
    pub fn new(api: &ApiConfig, verify: &VerifyConfig) -> Result<VerifyClient, ApiError> {
        Self::build(api, verify, Anchors::ConfiguredAndSystem)
    }

    /// A client that trusts only the configured `ca_file` (tests, `pam-authy check --strict-ca`).
    pub fn with_configured_anchors_only(api: &ApiConfig, verify: &VerifyConfig) -> Result<VerifyClient, ApiError> {
        Self::build(api, verify, Anchors::ConfiguredOnly)
    }

    fn build(api: &ApiConfig, verify: &VerifyConfig, anchors: Anchors) -> Result<VerifyClient, ApiError> {
        let credentials = Secret::new(format!("{}:{}", verify.api_key_sid, verify.api_key_secret.expose()));
        let encoded = base64(credentials.expose().as_bytes());
        let mut authorization = HeaderValue::from_str(&format!("Basic {}", encoded.as_str()))
            .map_err(|_| ApiError::Protocol("the API key secret is not a valid header value".into()))?;
        authorization.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(reqwest::header::AUTHORIZATION, authorization);
        headers.insert(reqwest::header::ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(reqwest::header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        Ok(VerifyClient { transport: Transport::new(&Endpoint::of(api), anchors, headers)? })
    }

    /// `GET /v2/Services/{sid}`: proves URL, TLS, credentials and service (`pam-authy check`).
    pub fn service(&self, verify: &VerifyConfig) -> Result<super::ServiceInfo, ApiError> {
        let (status, body) = self.get(&paths::service(&verify.service_sid))?;
        super::response::service_fetched(status, &body, &verify.service_sid)
    }
}

fn segments(path: &[String]) -> Vec<&str> {
    path.iter().map(String::as_str).collect()
}

impl VerifyHttp for VerifyClient {
    fn get(&self, path: &[String]) -> Result<(u16, Vec<u8>), ApiError> {
        self.transport.get(&segments(path), &[])
    }

    fn get_within(&self, path: &[String], within: Duration) -> Result<(u16, Vec<u8>), ApiError> {
        self.transport.get_within(&segments(path), &[], within)
    }

    fn post(&self, path: &[String], form: &Secret) -> Result<(u16, Vec<u8>), ApiError> {
        self.transport.post_form(&segments(path), form)
    }

    fn delete(&self, path: &[String]) -> Result<(u16, Vec<u8>), ApiError> {
        self.transport.delete(&segments(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_rfc_4648_with_padding() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
            ("SK01:s3/cr+t", "U0swMTpzMy9jcit0"),
        ] {
            assert_eq!(base64(plain.as_bytes()).as_str(), encoded, "{plain}");
        }
    }
}
