//! `AuthyApi` over HTTPS: reqwest blocking with a rustls configuration we build ourselves.
//!
//! The client is steered by the config file only. Trust anchors are the fixed system bundle
//! plus `ca_file`; `SSL_CERT_FILE`, `SSL_CERT_DIR` and proxy variables in the environment (which
//! under sudo belongs to the invoking user) are never read. Redirects are not followed, every
//! request is bounded by `timeout_secs` (connect and TLS included) and every body by
//! `response::MAX_BODY_BYTES`. A client owns one runtime thread: build it per
//! authentication and drop it before returning to the application.

use super::response;
use super::trust;
use super::{
    ApiError, ApprovalRequest, ApprovalStatus, ApprovalUuid, AuthyApi, Channel, ChannelReceipt, Token, TokenVerdict,
};
use crate::config::{ApiConfig, AuthyId};
use crate::secret::Secret;
use reqwest::blocking::{Client, RequestBuilder};
use reqwest::header::{HeaderMap, HeaderValue};
use std::io::Read;
use std::sync::Arc;

pub use super::trust::SYSTEM_CA_BUNDLES;

const USER_AGENT: &str = concat!("AuthyPAM/", env!("CARGO_PKG_VERSION"), " (pam_authy; Linux)");

pub struct AuthyClient {
    http: Client,
    base: reqwest::Url,
    api_key: Secret,
}

/// Builds the rustls configuration: the configured anchors, then (when `use_system_bundle`)
/// the system bundle, ring provider, TLS 1.2 and 1.3. Never installs a process-wide provider:
/// the module lives inside sshd.
fn tls_config(extra_ca_pem: Option<&[u8]>, use_system_bundle: bool) -> Result<rustls::ClientConfig, ApiError> {
    let configured =
        extra_ca_pem.map(trust::roots_from_pem).transpose().map_err(|e| ApiError::Tls(format!("ca_file: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        trust::AnchorsThenSystem::new(configured, use_system_bundle, provider.clone()).map_err(ApiError::Tls)?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ApiError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(config)
}

impl AuthyClient {
    /// A client that trusts the system bundle and the configured `ca_file`.
    pub fn new(config: &ApiConfig) -> Result<AuthyClient, ApiError> {
        Self::build(config, true)
    }

    /// A client that trusts only the configured `ca_file` (used by tests and by `pam-authy
    /// check --strict-ca`).
    pub fn with_configured_anchors_only(config: &ApiConfig) -> Result<AuthyClient, ApiError> {
        Self::build(config, false)
    }

    fn build(config: &ApiConfig, use_system_bundle: bool) -> Result<AuthyClient, ApiError> {
        let tls = tls_config(config.ca_pem.as_deref(), use_system_bundle)?;
        let mut headers = HeaderMap::new();
        let mut key = HeaderValue::from_str(config.api_key.expose())
            .map_err(|_| ApiError::Protocol("the API key is not a valid header value".into()))?;
        key.set_sensitive(true);
        headers.insert("X-Authy-API-Key", key);
        let mut builder = Client::builder()
            .tls_backend_preconfigured(tls)
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .pool_max_idle_per_host(1)
            .user_agent(USER_AGENT)
            .default_headers(headers);
        builder = match &config.proxy {
            Some(proxy) => {
                builder.proxy(reqwest::Proxy::all(proxy).map_err(|e| ApiError::Protocol(format!("proxy: {e}")))?)
            }
            None => builder.no_proxy(),
        };
        let http = builder.build().map_err(|e| ApiError::Protocol(format!("cannot build the HTTP client: {e}")))?;
        let base = reqwest::Url::parse(&config.url).map_err(|e| ApiError::Protocol(format!("url: {e}")))?;
        Ok(AuthyClient { http, base, api_key: config.api_key.clone() })
    }

    /// The URL of `segments` under the base; each segment is percent-encoded by the URL
    /// library even though callers only pass validated digits, uuids and fixed words.
    fn url(&self, segments: &[&str]) -> Result<reqwest::Url, ApiError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|_| ApiError::Protocol("the API URL cannot take a path".into()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// Sends, reads at most `MAX_BODY_BYTES + 1` bytes, and classifies transport failures.
    fn send(&self, request: RequestBuilder) -> Result<(u16, Vec<u8>), ApiError> {
        let response = request.send().map_err(classify)?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        response.take(response::MAX_BODY_BYTES as u64 + 1).read_to_end(&mut body).map_err(|e| classify_io(&e))?;
        if body.len() > response::MAX_BODY_BYTES {
            return Err(ApiError::Protocol("reply too large".into()));
        }
        Ok((status, body))
    }

    fn get(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<(u16, Vec<u8>), ApiError> {
        let mut url = self.url(segments)?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        self.send(self.http.get(url))
    }

    fn post_json(&self, segments: &[&str], body: &serde_json::Value) -> Result<(u16, Vec<u8>), ApiError> {
        let url = self.url(segments)?;
        let body = serde_json::to_vec(body).map_err(|e| ApiError::Protocol(e.to_string()))?;
        self.send(self.http.post(url).header(reqwest::header::CONTENT_TYPE, "application/json").body(body))
    }

    /// `GET /protected/json/app/details`: proves URL, TLS and key (used by `pam-authy check`).
    pub fn app_details(&self) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
        let (status, body) = self.get(&["protected", "json", "app", "details"], &[])?;
        response::generic_success(status, &body)
    }

    /// `POST /protected/json/users/new`.
    pub fn create_user(&self, email: &str, cellphone: &str, country_code: u16) -> Result<AuthyId, ApiError> {
        let body = serde_json::json!({
            "user": {"email": email, "cellphone": cellphone, "country_code": country_code},
            "send_install_link_via_sms": false,
        });
        let (status, body) = self.post_json(&["protected", "json", "users", "new"], &body)?;
        let map = response::generic_success(status, &body)?;
        map.get("user")
            .and_then(|u| u.get("id"))
            .and_then(serde_json::Value::as_u64)
            .and_then(AuthyId::new)
            .ok_or_else(|| ApiError::Protocol("users/new without a positive user id".into()))
    }

    /// `GET /protected/json/users/{id}/status`.
    pub fn user_status(&self, authy_id: AuthyId) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
        let id = authy_id.to_string();
        let (status, body) = self.get(&["protected", "json", "users", &id, "status"], &[])?;
        response::generic_success(status, &body)
    }

    /// `POST /protected/json/users/{id}/remove`.
    pub fn remove_user(&self, authy_id: AuthyId) -> Result<(), ApiError> {
        let id = authy_id.to_string();
        let (status, body) = self.post_json(&["protected", "json", "users", &id, "remove"], &serde_json::json!({}))?;
        response::generic_success(status, &body).map(|_| ())
    }

    pub fn api_key(&self) -> &Secret {
        &self.api_key
    }
}

impl AuthyApi for AuthyClient {
    fn verify_token(&self, authy_id: AuthyId, token: &Token) -> Result<TokenVerdict, ApiError> {
        let id = authy_id.to_string();
        let (status, body) = self.get(&["protected", "json", "verify", token.expose(), &id], &[("force", "true")])?;
        response::verify(status, &body)
    }

    fn request_token(&self, authy_id: AuthyId, channel: Channel) -> Result<ChannelReceipt, ApiError> {
        let id = authy_id.to_string();
        let (status, body) = self.get(&["protected", "json", channel.path(), &id], &[("force", "true")])?;
        response::token_request(status, &body)
    }

    fn create_approval_request(&self, authy_id: AuthyId, request: &ApprovalRequest) -> Result<ApprovalUuid, ApiError> {
        let id = authy_id.to_string();
        let details: serde_json::Map<String, serde_json::Value> =
            request.details.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
        let body = serde_json::json!({
            "message": request.message,
            "details": details,
            "seconds_to_expire": request.seconds_to_expire,
        });
        let (status, body) = self.post_json(&["onetouch", "json", "users", &id, "approval_requests"], &body)?;
        response::approval_created(status, &body)
    }

    fn approval_status(&self, uuid: &ApprovalUuid) -> Result<ApprovalStatus, ApiError> {
        let (status, body) = self.get(&["onetouch", "json", "approval_requests", uuid.as_str()], &[])?;
        response::approval_status(status, &body, uuid)
    }
}

/// Walks an error chain looking for a rustls error. `io::Error::source()` skips the error it
/// wraps, and the TLS stack nests io::Errors, so wrapped errors are opened explicitly.
fn tls_error_in(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(tls) = error.downcast_ref::<rustls::Error>() {
        return Some(tls.to_string());
    }
    if let Some(inner) = error.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref)
        && let Some(found) = tls_error_in(inner)
    {
        return Some(found);
    }
    error.source().and_then(tls_error_in)
}

fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut current = error.source();
    while let Some(e) = current {
        text.push_str(": ");
        text.push_str(&e.to_string());
        current = e.source();
    }
    crate::sanitize::display_text(&text, 200)
}

/// True when the chain holds a failure the network itself can cause (a reset, an EOF without
/// TLS close_notify, a timeout). A reply that is not HTTP, or a body cut short after a clean
/// TLS close, can only come from the authenticated peer: that is a bad reply, not an outage.
fn network_failure_in(error: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind;
    if let Some(http) = error.downcast_ref::<reqwest::Error>()
        && (http.is_timeout() || http.is_connect())
    {
        return true;
    }
    if let Some(io) = error.downcast_ref::<std::io::Error>() {
        let network = io.raw_os_error().is_some()
            || matches!(
                io.kind(),
                ErrorKind::UnexpectedEof
                    | ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::ConnectionRefused
                    | ErrorKind::BrokenPipe
                    | ErrorKind::NotConnected
                    | ErrorKind::TimedOut
                    | ErrorKind::WouldBlock
            );
        if network || io.get_ref().is_some_and(|inner| network_failure_in(inner)) {
            return true;
        }
    }
    error.source().is_some_and(network_failure_in)
}

fn classify(error: reqwest::Error) -> ApiError {
    // The URL holds the token (`/verify/{token}/{id}`): it must never reach a message.
    let error = error.without_url();
    if let Some(tls) = tls_error_in(&error) {
        return ApiError::Tls(tls);
    }
    if error.is_timeout() || error.is_connect() || network_failure_in(&error) {
        return ApiError::Unreachable(describe(&error));
    }
    ApiError::Protocol(describe(&error))
}

fn classify_io(error: &std::io::Error) -> ApiError {
    if let Some(tls) = tls_error_in(error) {
        return ApiError::Tls(tls);
    }
    if network_failure_in(error) {
        return ApiError::Unreachable(describe(error));
    }
    ApiError::Protocol(describe(error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AuthyId;
    use std::time::Duration;

    #[test]
    fn a_transport_error_never_quotes_the_url_and_its_token() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port());
        let config = ApiConfig {
            url: format!("https://127.0.0.1:{}", port.expect("port")),
            api_key: Secret::from("key"),
            timeout: Duration::from_secs(2),
            ca_pem: None,
            proxy: None,
        };
        let client = AuthyClient::new(&config).expect("client");
        let token = Token::parse("7654321").expect("token");
        let error = client.verify_token(AuthyId::new(42).expect("id"), &token).expect_err("nothing listens");
        assert!(error.is_unreachable(), "{error:?}");
        let text = format!("{error} {error:?}");
        assert!(!text.contains("7654321") && !text.contains("/verify/"), "{text}");
    }
}
