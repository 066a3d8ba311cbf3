//! The Authy API over the shared HTTPS transport: paths, the API-key header, and the strict
//! reply parsers of `response`. The PAM module reaches it through `AuthyBackend`; the admin
//! CLI also calls the account endpoints directly.

use super::response;
use crate::backend::{
    ApiError, ApprovalId, ApprovalRequest, ApprovalStatus, Channel, ChannelReceipt, Token, TokenVerdict,
};
use crate::config::{ApiConfig, AuthyId};
use crate::secret::Secret;
use crate::transport::{Anchors, Endpoint, Transport};
use reqwest::header::{HeaderMap, HeaderValue};
use std::time::Duration;

const USER_AGENT: &str = concat!("AuthyPAM/", env!("CARGO_PKG_VERSION"), " (pam_authy; Linux)");

pub struct AuthyClient {
    transport: Transport,
    api_key: Secret,
}

impl AuthyClient {
    /// A client that trusts the system bundle and the configured `ca_file`.
    pub fn new(config: &ApiConfig) -> Result<AuthyClient, ApiError> {
        Self::build(config, Anchors::ConfiguredAndSystem)
    }

    /// A client that trusts only the configured `ca_file` (used by tests and by `pam-authy
    /// check --strict-ca`).
    pub fn with_configured_anchors_only(config: &ApiConfig) -> Result<AuthyClient, ApiError> {
        Self::build(config, Anchors::ConfiguredOnly)
    }

    fn build(config: &ApiConfig, anchors: Anchors) -> Result<AuthyClient, ApiError> {
        let mut headers = HeaderMap::new();
        let mut key = HeaderValue::from_str(config.api_key.expose())
            .map_err(|_| ApiError::Protocol("the API key is not a valid header value".into()))?;
        key.set_sensitive(true);
        headers.insert("X-Authy-API-Key", key);
        headers.insert(reqwest::header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        let transport = Transport::new(&Endpoint::of(config), anchors, headers)?;
        Ok(AuthyClient { transport, api_key: config.api_key.clone() })
    }

    /// `GET /protected/json/app/details`: proves URL, TLS and key (used by `pam-authy check`).
    pub fn app_details(&self) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
        let (status, body) = self.transport.get(&["protected", "json", "app", "details"], &[])?;
        response::generic_success(status, &body)
    }

    /// `POST /protected/json/users/new`.
    pub fn create_user(&self, email: &str, cellphone: &str, country_code: u16) -> Result<AuthyId, ApiError> {
        let body = serde_json::json!({
            "user": {"email": email, "cellphone": cellphone, "country_code": country_code},
            "send_install_link_via_sms": false,
        });
        let (status, body) = self.transport.post_json(&["protected", "json", "users", "new"], &body)?;
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
        let (status, body) = self.transport.get(&["protected", "json", "users", &id, "status"], &[])?;
        response::generic_success(status, &body)
    }

    /// `POST /protected/json/users/{id}/remove`.
    pub fn remove_user(&self, authy_id: AuthyId) -> Result<(), ApiError> {
        let id = authy_id.to_string();
        let (status, body) =
            self.transport.post_json(&["protected", "json", "users", &id, "remove"], &serde_json::json!({}))?;
        response::generic_success(status, &body).map(|_| ())
    }

    pub fn api_key(&self) -> &Secret {
        &self.api_key
    }

    /// `GET /protected/json/verify/{token}/{id}?force=true`.
    pub fn verify_token(&self, authy_id: AuthyId, token: &Token) -> Result<TokenVerdict, ApiError> {
        let id = authy_id.to_string();
        let (status, body) =
            self.transport.get(&["protected", "json", "verify", token.expose(), &id], &[("force", "true")])?;
        response::verify(status, &body)
    }

    /// `GET /protected/json/{sms,call}/{id}?force=true`.
    pub fn request_token(&self, authy_id: AuthyId, channel: Channel) -> Result<ChannelReceipt, ApiError> {
        let id = authy_id.to_string();
        let (status, body) = self.transport.get(&["protected", "json", channel.as_str(), &id], &[("force", "true")])?;
        response::token_request(status, &body)
    }

    /// `POST /onetouch/json/users/{id}/approval_requests`.
    pub fn create_approval_request(
        &self,
        authy_id: AuthyId,
        request: &ApprovalRequest,
    ) -> Result<ApprovalId, ApiError> {
        let id = authy_id.to_string();
        let details: serde_json::Map<String, serde_json::Value> =
            request.details.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
        let body = serde_json::json!({
            "message": request.message,
            "details": details,
            "seconds_to_expire": request.seconds_to_expire,
        });
        let (status, body) =
            self.transport.post_json(&["onetouch", "json", "users", &id, "approval_requests"], &body)?;
        response::approval_created(status, &body)
    }

    /// `GET /onetouch/json/approval_requests/{uuid}`, ended by `within` at the latest.
    pub fn approval_status(&self, uuid: &ApprovalId, within: Duration) -> Result<ApprovalStatus, ApiError> {
        let path = ["onetouch", "json", "approval_requests", uuid.as_str()];
        let (status, body) = self.transport.get_within(&path, &[], within)?;
        response::approval_status(status, &body, uuid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AuthyId;
    use std::time::Duration;

    #[test]
    fn a_transport_error_never_quotes_the_url_and_its_token() {
        let config = ApiConfig {
            backend: crate::config::Backend::Authy,
            url: format!("https://127.0.0.1:{}", pam_harness::closed_port()),
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
