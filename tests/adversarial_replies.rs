//! Classes 2 and 4 of the adversarial suite: a reply is trusted only when it is exactly a
//! success, and a server that fails TLS verification is never "unreachable".
//!
//! Every case runs the built module through real libpam with `failmode = "safe"`, so that a
//! reply misread as "API unreachable" would turn into PAM_SUCCESS and fail the test; the
//! user also has an offline secret where TLS is concerned, so that a TLS failure misread as
//! unreachable would reach the offline prompt. Replies the sandbox cannot express (invalid
//! UTF-8, bodies without a length, lying headers) come from `RawServer`.

#![allow(clippy::disallowed_methods)]

mod adversarial_support;
mod common;

use adversarial_support::{RawServer, Tripwire, http_response};
use authy_sandbox::{Fault, FaultScope, Sandbox, SandboxConfig, ServerCert};
use common::*;
use pam_harness::{AuthResult, PAM_AUTH_ERR, PAM_SUCCESS};

const FAILMODE_SAFE: &str = "[auth]\nfailmode = \"safe\"\nmax_tries = 3";

fn setup(sandbox: &Sandbox, id: u64, extra: &str) -> TestDir {
    let dir = TestDir::new();
    dir.write_config(&config_for(&dir, sandbox, &format!("\"{}\" = {id}", current_user()), extra));
    dir.service("svc", "");
    dir
}

/// Asserts a denial that came from the reply itself: PAM_AUTH_ERR after the first token,
/// without a second prompt, an offline prompt or a fail-safe pass.
fn assert_denied(result: &AuthResult, case: &str) {
    assert_eq!(result.code, PAM_AUTH_ERR, "{case}: {} {}", result.name(), result.text());
    assert_eq!(result.prompts().len(), 1, "{case}: {}", result.text());
}

/// Bodies a 200 reply to `/verify` may carry that are not a verified token.
const NOT_A_SUCCESS: &[(&str, &str)] = &[
    ("success false", r#"{"message":"Token is valid.","token":"is valid","success":false}"#),
    ("success \"false\"", r#"{"message":"Token is valid.","token":"is valid","success":"false"}"#),
    ("no token field", r#"{"message":"Token is valid.","success":true}"#),
    ("token is invalid", r#"{"message":"Token is invalid.","token":"is invalid","success":true}"#),
    ("no success field", r#"{"message":"Token is valid.","token":"is valid"}"#),
    ("success 1", r#"{"token":"is valid","success":1}"#),
    ("success \"TRUE\"", r#"{"token":"is valid","success":"TRUE"}"#),
    ("success null", r#"{"token":"is valid","success":null}"#),
    ("success [true]", r#"{"token":"is valid","success":[true]}"#),
    ("token true", r#"{"token":true,"success":true}"#),
    ("token [\"is valid\"]", r#"{"token":["is valid"],"success":true}"#),
    ("token with a trailing space", r#"{"token":"is valid ","success":true}"#),
    ("token in another case", r#"{"token":"Is Valid","success":true}"#),
    ("duplicated token, valid last", r#"{"token":"is invalid","token":"is valid","success":true}"#),
    ("duplicated success, true last", r#"{"token":"is valid","success":false,"success":true}"#),
    ("duplicated identical keys", r#"{"token":"is valid","token":"is valid","success":true}"#),
    ("the reply to /sms (2015)", r#"{"success":true,"message":"SMS token was sent","cellphone":"+1-XXX-XXX-XX85"}"#),
    ("generic success", r#"{"success":true}"#),
    ("an array", r#"["success",true,"token","is valid"]"#),
    ("a string", r#""is valid""#),
    ("null", "null"),
    ("empty body", ""),
    ("trailing garbage", r#"{"token":"is valid","success":true} x"#),
    ("two objects", r#"{"token":"is invalid","success":false}{"token":"is valid","success":true}"#),
    ("byte order mark", "\u{feff}{\"token\":\"is valid\",\"success\":true}"),
    ("truncated", r#"{"token":"is valid","success":true"#),
    ("nested verdict", r#"{"data":{"token":"is valid","success":true}}"#),
];

#[test]
fn a_200_reply_that_is_not_exactly_a_verified_token_is_denied() {
    let (sandbox, id) = sandbox();
    let dir = setup(&sandbox, id, FAILMODE_SAFE);
    for (case, body) in NOT_A_SUCCESS {
        sandbox.set_fault(FaultScope::User(id), Some(Fault::Body(200, (*body).into())));
        let result = dir.authenticate("svc", &current_user(), &mut answer_with_token(&sandbox, id));
        assert_denied(&result, case);
    }
}

#[test]
fn a_verdict_with_another_status_than_200_is_denied() {
    let (sandbox, id) = sandbox();
    let dir = setup(&sandbox, id, FAILMODE_SAFE);
    let valid = r#"{"message":"Token is valid.","token":"is valid","success":true}"#;
    for status in [201, 202, 203, 204, 206, 226, 300, 301, 304, 400, 401, 403, 404, 418, 429] {
        sandbox.set_fault(FaultScope::User(id), Some(Fault::Body(status, valid.into())));
        let result = dir.authenticate("svc", &current_user(), &mut answer_with_token(&sandbox, id));
        assert_denied(&result, &format!("HTTP {status}"));
    }
}

#[test]
fn html_a_truncated_reply_and_a_huge_body_are_denied() {
    let (sandbox, id) = sandbox();
    let dir = setup(&sandbox, id, FAILMODE_SAFE);
    let mut huge = String::from(r#"{"token":"is valid","success":true,"pad":""#);
    huge.push_str(&"a".repeat(pam_authy::transport::MAX_BODY_BYTES));
    huge.push_str("\"}");
    let cases = [("html", Fault::Html), ("invalid json", Fault::InvalidJson), ("huge body", Fault::Body(200, huge))];
    for (case, fault) in cases {
        sandbox.set_fault(FaultScope::User(id), Some(fault));
        let result = dir.authenticate("svc", &current_user(), &mut answer_with_token(&sandbox, id));
        assert_denied(&result, case);
    }
}

/// Replies only a raw server can give. Each is served to every request of one login.
#[test]
fn invalid_utf8_lying_headers_and_unbounded_bodies_are_denied() {
    let valid = br#"{"token":"is valid","success":true}"#;
    let mut invalid_utf8 = br#"{"token":"is valid","success":true,"message":""#.to_vec();
    invalid_utf8.extend_from_slice(b"\xff\xfe\xc0\xaf\"}");
    let mut chunked_huge =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n".to_vec();
    let chunk = vec![b' '; 1 << 20];
    chunked_huge.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
    chunked_huge.extend_from_slice(&chunk);
    chunked_huge.extend_from_slice(b"\r\n0\r\n\r\n");
    let mut close_delimited = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
    close_delimited.extend_from_slice(&vec![b'{'; 256 * 1024]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("invalid UTF-8 in a string", http_response("200 OK", &["Content-Type: application/json"], &invalid_utf8)),
        ("a Latin-1 body", http_response("200 OK", &[], b"{\"token\":\"is valid\",\"success\":true,\"m\":\"\xe9\"}")),
        ("NUL bytes", http_response("200 OK", &[], b"{\"token\":\"is valid\0\",\"success\":true}")),
        ("1 MiB chunked", chunked_huge),
        ("256 KiB close-delimited", close_delimited),
        (
            "an html page naming the verdict",
            http_response("200 OK", &["Content-Type: text/html"], b"<html>is valid</html>"),
        ),
        (
            "a second status line in the body",
            http_response("401 Unauthorized", &[], b"HTTP/1.1 200 OK\r\n\r\n{\"token\":\"is valid\",\"success\":true}"),
        ),
        ("a 101 switch", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n".to_vec()),
        ("garbage instead of HTTP", valid.to_vec()),
    ];
    for (case, response) in cases {
        let server = RawServer::start(response);
        let dir = TestDir::new();
        let ca = dir.write("raw-ca.pem", server.ca_pem(), 0o644);
        dir.write_config(&format!(
            "[api]\nurl = \"{}\"\napi_key = \"{API_KEY}\"\nca_file = \"{}\"\ntimeout_secs = 5\n{FAILMODE_SAFE}\n[users]\n\"{}\" = 1\n",
            server.url(),
            ca.display(),
            current_user()
        ));
        dir.service("svc", "");
        let result = dir.authenticate("svc", &current_user(), &mut answers(&["1234567"]));
        assert_denied(&result, case);
        assert_eq!(server.requests().len(), 1, "{case}: {:?}", server.requests());
    }
}

/// A redirect is refused, not followed: not to plain http, not to another host name for the
/// same server, not even to the same host. The redirect targets would verify if followed.
#[test]
fn redirects_are_refused_and_never_followed() {
    let (sandbox, id) = sandbox();
    let dir = setup(&sandbox, id, FAILMODE_SAFE);
    let tripwire = Tripwire::start();
    let port = sandbox.addr().port();
    for target in ["http_plain", "another_host", "same_host"] {
        sandbox.clear_requests();
        let token = sandbox.current_token(id).expect("token");
        let location = match target {
            "http_plain" => format!("{}/protected/json/verify/{token}/{id}?force=true", tripwire.url()),
            "another_host" => format!("https://localhost:{port}/protected/json/verify/{token}/{id}?force=true"),
            _ => format!("https://127.0.0.1:{port}/protected/json/verify/{token}/{id}?force=true"),
        };
        sandbox.set_fault_times(FaultScope::Global, Fault::Redirect(location), 1);
        let result = dir.authenticate("svc", &current_user(), &mut answers(&[&token]));
        assert_denied(&result, target);
        assert_eq!(sandbox.requests().len(), 1, "{target}: the redirect was followed: {:?}", sandbox.requests());
    }
    assert_eq!(tripwire.connections(), 0, "the http:// redirect target was contacted");
}

/// Class 4: every bad certificate fails closed (PAM_AUTH_ERR) under `failmode = "safe"` and
/// for a user with an offline secret: never a fail-safe pass, never the offline prompt.
#[test]
fn a_bad_server_certificate_fails_closed_never_fail_safe_nor_offline() {
    let user = current_user();
    for cert in
        [ServerCert::Good, ServerCert::SelfSigned, ServerCert::WrongHost, ServerCert::Expired, ServerCert::UnknownCa]
    {
        let (sandbox, id) =
            sandbox_with(SandboxConfig { api_key: API_KEY.into(), server_cert: cert, ..SandboxConfig::default() });
        let dir = TestDir::new();
        let mapping = format!("\"{user}\" = {{ authy_id = {id}, offline_secret = \"JBSWY3DPEHPK3PXP\" }}");
        let extra = format!("{FAILMODE_SAFE}\n[offline]\nstate_dir = \"{}\"", dir.state_dir().display());
        dir.write_config(&config_for(&dir, &sandbox, &mapping, &extra));
        dir.service("svc", "");
        let result = dir.authenticate("svc", &user, &mut answer_with_token(&sandbox, id));
        if cert == ServerCert::Good {
            assert_eq!(result.code, PAM_SUCCESS, "control: {}", result.text());
            continue;
        }
        assert_denied(&result, &format!("{cert:?}"));
        assert!(!result.text().contains("Offline code"), "{cert:?}: {}", result.text());
        assert!(sandbox.requests().is_empty(), "{cert:?}: a request got through: {:?}", sandbox.requests());
    }
}

/// A pinned `ca_file` is not a licence for its CA to vouch for other names: the sandbox's own
/// CA signs a certificate for another host, and the client refuses it.
#[test]
fn a_certificate_from_the_pinned_ca_for_another_name_is_refused() {
    let (sandbox, id) = sandbox_with(SandboxConfig {
        api_key: API_KEY.into(),
        server_cert: ServerCert::WrongHost,
        ..SandboxConfig::default()
    });
    let dir = TestDir::new();
    let text = config_for(&dir, &sandbox, &format!("\"{}\" = {id}", current_user()), FAILMODE_SAFE);
    dir.write_config(&text.replace("https://127.0.0.1", "https://localhost"));
    dir.service("svc", "");
    let result = dir.authenticate("svc", &current_user(), &mut answers(&["1234567"]));
    assert_denied(&result, "wrong host via localhost");
}
