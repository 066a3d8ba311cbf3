//! The HTTPS transport every backend sits on: a reqwest blocking client over a rustls
//! configuration we build ourselves, one bounded request at a time, failures sorted into
//! `ApiError` kinds.
//!
//! The client is steered by the config file only. Trust anchors are the fixed system bundle
//! plus `ca_file` (`trust`); `SSL_CERT_FILE`, `SSL_CERT_DIR` and proxy variables in the
//! environment (which under sudo belongs to the invoking user) are never read. Redirects are
//! not followed, every request is bounded by the endpoint's timeout (connect and TLS
//! included) and every body by `MAX_BODY_BYTES`. A transport owns one runtime thread: build
//! it per authentication and drop it before returning to the application. It knows nothing
//! of any API's paths or replies.

pub mod trust;

use crate::backend::ApiError;
use reqwest::blocking::{Client, RequestBuilder};
use reqwest::header::HeaderMap;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

/// Upper bound on what we read of any reply body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Where and how to reach one API, from the config file.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint<'a> {
    /// The `https://` base URL; request paths are appended to it.
    pub url: &'a str,
    pub timeout: Duration,
    /// Extra trust anchors (`ca_file`), PEM.
    pub ca_pem: Option<&'a [u8]>,
    pub proxy: Option<&'a str>,
}

impl<'a> Endpoint<'a> {
    /// The endpoint `[api]` names (url, timeout, ca_file, proxy), for every backend.
    pub fn of(api: &'a crate::config::ApiConfig) -> Endpoint<'a> {
        Endpoint { url: &api.url, timeout: api.timeout, ca_pem: api.ca_pem.as_deref(), proxy: api.proxy.as_deref() }
    }
}

/// Which certificates the transport trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchors {
    /// The configured `ca_file`, then the system bundle.
    ConfiguredAndSystem,
    /// Only the configured `ca_file` (tests, `pam-authy check --strict-ca`).
    ConfiguredOnly,
}

pub struct Transport {
    http: Client,
    base: reqwest::Url,
    /// The whole-request deadline, connect to the body's last byte.
    timeout: Duration,
}

/// Builds the rustls configuration: the configured anchors, then (when asked) the system
/// bundle, ring provider, TLS 1.2 and 1.3. Never installs a process-wide provider: the
/// module lives inside sshd.
fn tls_config(extra_ca_pem: Option<&[u8]>, anchors: Anchors) -> Result<rustls::ClientConfig, ApiError> {
    let configured =
        extra_ca_pem.map(trust::roots_from_pem).transpose().map_err(|e| ApiError::Tls(format!("ca_file: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let use_system_bundle = anchors == Anchors::ConfiguredAndSystem;
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

impl Transport {
    /// A transport to `endpoint` that sends `headers` (credentials, user agent) with every
    /// request.
    pub fn new(endpoint: &Endpoint<'_>, anchors: Anchors, headers: HeaderMap) -> Result<Transport, ApiError> {
        let tls = tls_config(endpoint.ca_pem, anchors)?;
        let mut builder = Client::builder()
            .tls_backend_preconfigured(tls)
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(endpoint.timeout)
            .connect_timeout(endpoint.timeout)
            .pool_max_idle_per_host(1)
            .default_headers(headers);
        builder = match endpoint.proxy {
            Some(proxy) => {
                builder.proxy(reqwest::Proxy::all(proxy).map_err(|e| ApiError::Protocol(format!("proxy: {e}")))?)
            }
            None => builder.no_proxy(),
        };
        let http = builder.build().map_err(|e| ApiError::Protocol(format!("cannot build the HTTP client: {e}")))?;
        let base = reqwest::Url::parse(endpoint.url).map_err(|e| ApiError::Protocol(format!("url: {e}")))?;
        Ok(Transport { http, base, timeout: endpoint.timeout })
    }

    /// The URL of `segments` under the base; each segment is percent-encoded by the URL
    /// library even though callers only pass validated digits, ids and fixed words.
    fn url(&self, segments: &[&str]) -> Result<reqwest::Url, ApiError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|_| ApiError::Protocol("the API URL cannot take a path".into()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// Sends, reads at most `MAX_BODY_BYTES + 1` bytes, and classifies transport failures.
    /// The client's `timeout` bounds each wait (each body read) on its own, so a body that
    /// trickles in could go on for hours; the per-request timeout is reqwest's total one, from
    /// connecting to the body's last byte, whatever the server does.
    /// `limit` (at most the timeout) is the whole request's deadline.
    fn send(&self, request: RequestBuilder, limit: Duration) -> Result<(u16, Vec<u8>), ApiError> {
        let limit = limit.min(self.timeout);
        if limit.is_zero() {
            return Err(ApiError::Unreachable("no time left for the request".into()));
        }
        let response = request.timeout(limit).send().map_err(classify)?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        response.take(MAX_BODY_BYTES as u64 + 1).read_to_end(&mut body).map_err(|e| classify_io(&e))?;
        if body.len() > MAX_BODY_BYTES {
            return Err(ApiError::Protocol("reply too large".into()));
        }
        Ok((status, body))
    }

    /// `GET` of `segments` with `query`: the status and the bounded body. The URL may hold a
    /// secret (Authy's `/verify/{token}/{id}`): our copy is wiped after the call; reqwest parses
    /// its own, which it frees unwiped (docs/threat-model.md, class 9).
    pub fn get(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<(u16, Vec<u8>), ApiError> {
        self.get_within(segments, query, self.timeout)
    }

    /// `get` that ends by `within` when that comes before the timeout: a poll in flight at
    /// the push deadline is cut there, not one timeout later.
    pub fn get_within(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
        within: Duration,
    ) -> Result<(u16, Vec<u8>), ApiError> {
        let mut url = self.url(segments)?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let url = zeroize::Zeroizing::new(String::from(url));
        self.send(self.http.get(url.as_str()), within)
    }

    /// `POST` of a form-encoded body to `segments` (it may hold a code: a `Secret`).
    pub fn post_form(&self, segments: &[&str], body: &crate::secret::Secret) -> Result<(u16, Vec<u8>), ApiError> {
        let url = self.url(segments)?;
        let request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body.expose().to_owned());
        self.send(request, self.timeout)
    }

    /// `DELETE` of `segments`: the status and the bounded body.
    pub fn delete(&self, segments: &[&str]) -> Result<(u16, Vec<u8>), ApiError> {
        self.send(self.http.delete(self.url(segments)?), self.timeout)
    }

    /// `POST` of a JSON body to `segments`: the status and the bounded body.
    pub fn post_json(&self, segments: &[&str], body: &serde_json::Value) -> Result<(u16, Vec<u8>), ApiError> {
        let url = self.url(segments)?;
        let body = serde_json::to_vec(body).map_err(|e| ApiError::Protocol(e.to_string()))?;
        self.send(
            self.http.post(url).header(reqwest::header::CONTENT_TYPE, "application/json").body(body),
            self.timeout,
        )
    }
}

/// Walks an error chain looking for a rustls error. `io::Error::source()` skips the error it
/// wraps, and the TLS stack nests io::Errors, so wrapped errors are opened explicitly.
fn tls_error_in(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(tls) = error.downcast_ref::<rustls::Error>() {
        // It quotes the names the server's certificate presents: text from the peer.
        return Some(crate::sanitize::display_text(&tls.to_string(), 300));
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

/// Error numbers the network (or its absence) causes. Anything else from the OS (EMFILE,
/// ENFILE, ENOMEM, ENOBUFS, EACCES, EPERM, EAGAIN...) is this host's own trouble, often within
/// reach of the unprivileged caller of sudo or su (rlimits), and never "unreachable".
const NETWORK_ERRNOS: &[i32] = &[
    libc::ECONNREFUSED,
    libc::ECONNRESET,
    libc::ECONNABORTED,
    libc::ENETUNREACH,
    libc::ENETDOWN,
    libc::ENETRESET,
    libc::EHOSTUNREACH,
    libc::EHOSTDOWN,
    libc::ETIMEDOUT,
    libc::EPIPE,
    libc::ENOTCONN,
];

/// The first OS error in the chain that is not a network one, if any.
fn local_failure_in(error: &(dyn std::error::Error + 'static)) -> Option<i32> {
    if let Some(io) = error.downcast_ref::<std::io::Error>() {
        if let Some(errno) = io.raw_os_error().filter(|e| !NETWORK_ERRNOS.contains(e)) {
            return Some(errno);
        }
        if let Some(found) = io.get_ref().and_then(|inner| local_failure_in(inner)) {
            return Some(found);
        }
    }
    error.source().and_then(local_failure_in)
}

/// True when a proxy answered the CONNECT with a refusal (407, 403 or any status but 200).
/// hyper-util keeps its tunnel error private and passes no status on, so it is recognised by
/// name; a proxy that cannot reach the API (502) is counted as a refusal too: fail closed.
fn proxy_refusal_in(error: &(dyn std::error::Error + 'static)) -> bool {
    let name = format!("{error:?}");
    ["ProxyAuthRequired", "TunnelUnsuccessful", "ProxyHeadersTooLong"].contains(&name.as_str())
        || error.source().is_some_and(proxy_refusal_in)
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
        let network = io.raw_os_error().is_some_and(|e| NETWORK_ERRNOS.contains(&e))
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
    // The URL may hold a secret (Authy's `/verify/{token}/{id}`): it must never reach a message.
    let error = error.without_url();
    if let Some(tls) = tls_error_in(&error) {
        return ApiError::Tls(tls);
    }
    if let Some(errno) = local_failure_in(&error) {
        return ApiError::Local(describe_errno(errno));
    }
    if proxy_refusal_in(&error) {
        return ApiError::ProxyRefused(describe(&error));
    }
    if error.is_timeout() || error.is_connect() || network_failure_in(&error) {
        return ApiError::Unreachable(describe(&error));
    }
    ApiError::Protocol(describe(&error))
}

fn describe_errno(errno: i32) -> String {
    let errno = nix::errno::Errno::from_raw(errno);
    format!("{errno}: {}", errno.desc())
}

fn classify_io(error: &std::io::Error) -> ApiError {
    if let Some(tls) = tls_error_in(error) {
        return ApiError::Tls(tls);
    }
    if let Some(errno) = local_failure_in(error) {
        return ApiError::Local(describe_errno(errno));
    }
    if network_failure_in(error) {
        return ApiError::Unreachable(describe(error));
    }
    ApiError::Protocol(describe(error))
}
