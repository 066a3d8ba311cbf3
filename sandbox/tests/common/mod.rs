//! A deliberately small HTTPS/1.1 client for the sandbox's integration tests.
//!
//! It speaks raw rustls (ring provider, trusting only the sandbox CA) and writes requests by
//! hand, so tests control every byte sent (odd paths, duplicate headers, missing keys) and see
//! every byte received. One request per connection with `Connection: close`, read to the end.
//! Not every test file uses every helper.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use authy_sandbox::Sandbox;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A client configuration that trusts only `ca_pem`.
pub fn client_config(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("add CA");
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

pub type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Opens a TLS connection to the sandbox, verifying it as `server_name`, and completes the
/// handshake (so certificate errors surface here).
pub fn connect_as(sb: &Sandbox, server_name: &str) -> io::Result<Tls> {
    let tcp = TcpStream::connect(sb.addr())?;
    tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
    let name = ServerName::try_from(server_name.to_owned()).map_err(io::Error::other)?;
    let conn = rustls::ClientConnection::new(client_config(&sb.ca_pem()), name).map_err(io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

pub fn connect(sb: &Sandbox) -> io::Result<Tls> {
    connect_as(sb, "127.0.0.1")
}

/// Reads from `r` until the peer closes, tolerating a close without close_notify.
pub fn read_all(r: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match r.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && !out.is_empty() => {
                return Ok(out);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Parses one response from raw bytes (body per Content-Length, or the rest).
pub fn parse_response(raw: &[u8]) -> Resp {
    parse_responses(raw).into_iter().next().expect("one response")
}

/// Parses every response in `raw` (keep-alive / pipelining).
pub fn parse_responses(mut raw: &[u8]) -> Vec<Resp> {
    let mut out = Vec::new();
    while !raw.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        let n = match resp.parse(raw).expect("HTTP response") {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => panic!("truncated response: {raw:?}"),
        };
        let headers: Vec<(String, String)> =
            resp.headers.iter().map(|h| (h.name.to_owned(), String::from_utf8_lossy(h.value).into_owned())).collect();
        let status = resp.code.expect("status");
        let len = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse::<usize>().expect("content-length"))
            .unwrap_or(raw.len() - n);
        let body = String::from_utf8_lossy(&raw[n..n + len]).into_owned();
        raw = &raw[n + len..];
        out.push(Resp { status, headers, body });
    }
    out
}

/// Sends raw bytes on a fresh TLS connection and returns everything the server sent back.
pub fn raw_exchange(sb: &Sandbox, bytes: &[u8]) -> io::Result<Vec<u8>> {
    let mut tls = connect(sb)?;
    tls.write_all(bytes)?;
    tls.flush()?;
    read_all(&mut tls)
}

/// Like `raw_exchange`, for a server known only by address and CA (e.g. the binary).
pub fn raw_exchange_to(addr: &str, ca_pem: &str, bytes: &[u8]) -> io::Result<Vec<u8>> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
    let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
    let conn = rustls::ClientConnection::new(client_config(ca_pem), name).map_err(io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(bytes)?;
    tls.flush()?;
    read_all(&mut tls)
}

/// Sends a request built from parts. `key` adds `X-Authy-API-Key`.
pub fn send(sb: &Sandbox, method: &str, target: &str, key: Option<&str>, body: Option<(&str, &str)>) -> Resp {
    let mut req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {}\r\nUser-Agent: AuthySandboxTest/1.0 (tests)\r\nConnection: close\r\n",
        sb.addr()
    );
    if let Some(k) = key {
        req.push_str(&format!("X-Authy-API-Key: {k}\r\n"));
    }
    let body_bytes = match body {
        Some((ct, b)) => {
            req.push_str(&format!("Content-Type: {ct}\r\nContent-Length: {}\r\n", b.len()));
            b
        }
        None => "",
    };
    req.push_str("\r\n");
    req.push_str(body_bytes);
    parse_response(&raw_exchange(sb, req.as_bytes()).expect("exchange"))
}

/// GET with the right API key.
pub fn get(sb: &Sandbox, target: &str) -> Resp {
    send(sb, "GET", target, Some(sb.api_key()), None)
}

/// POST a form body with the right API key.
pub fn post_form(sb: &Sandbox, target: &str, form: &str) -> Resp {
    send(sb, "POST", target, Some(sb.api_key()), Some(("application/x-www-form-urlencoded", form)))
}

/// POST a JSON body with the right API key.
pub fn post_json(sb: &Sandbox, target: &str, json: &str) -> Resp {
    send(sb, "POST", target, Some(sb.api_key()), Some(("application/json", json)))
}

/// A plain-HTTP request to the control interface, with the sandbox's control token.
pub fn control(sb: &Sandbox, method: &str, path: &str, json: Option<&str>) -> Resp {
    let addr = sb.control_addr().expect("control interface enabled");
    let auth = format!("Authorization: Bearer {}\r\n", sb.control_token());
    control_raw(addr, method, path, &format!("Host: {addr}\r\n{auth}"), json)
}

/// A plain-HTTP request to a control interface at `addr` with exactly the given header lines
/// (each ending in CRLF) besides Connection, Content-Type and Content-Length.
pub fn control_raw(addr: std::net::SocketAddr, method: &str, path: &str, headers: &str, json: Option<&str>) -> Resp {
    let mut tcp = TcpStream::connect(addr).expect("connect control");
    tcp.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let body = json.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\n{headers}Connection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(req.as_bytes()).expect("write");
    parse_response(&read_all(&mut tcp).expect("read"))
}

/// A sandbox with default settings and one user (phone 555-123-1185, +1).
pub fn sandbox_with_user() -> (Sandbox, u64) {
    let sb = Sandbox::start(authy_sandbox::SandboxConfig::default()).expect("start sandbox");
    let id = sb.add_user("alice@example.com", "555-123-1185", 1);
    (sb, id)
}

/// A token of the right length that is valid at none of the steps around `t`.
pub fn wrong_token(sb: &Sandbox, id: u64, t: u64) -> String {
    let near: Vec<String> = (0..5).map(|i| sb.token_at(id, t - 60 + i * 30).expect("token")).collect();
    (0..)
        .map(|n: u64| format!("{:07}", (n * 7_654_321 + 1_234_567) % 10_000_000))
        .find(|c| !near.contains(c))
        .expect("some wrong token")
}

/// `Basic base64(user:password)`, the Verify API's authentication header value.
pub fn basic_auth(user: &str, password: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = format!("{user}:{password}").into_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            out.push(if i <= chunk.len() { char::from(A[((n >> (18 - 6 * i)) & 63) as usize]) } else { '=' });
        }
    }
    format!("Basic {out}")
}

/// A raw Verify API request with optional Basic credentials and an optional form body.
pub fn verify_request(method: &str, target: &str, auth: Option<(&str, &str)>, form: Option<&str>) -> String {
    let mut req =
        format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\nConnection: close\r\n");
    if let Some((u, p)) = auth {
        req.push_str(&format!("Authorization: {}\r\n", basic_auth(u, p)));
    }
    if let Some(body) = form {
        req.push_str(&format!("Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(form.unwrap_or(""));
    req
}

/// Sends a Verify API request built by `verify_request`.
pub fn verify_send(sb: &Sandbox, method: &str, target: &str, auth: Option<(&str, &str)>, form: Option<&str>) -> Resp {
    parse_response(&raw_exchange(sb, verify_request(method, target, auth, form).as_bytes()).expect("exchange"))
}

fn with_verify_key(sb: &Sandbox, method: &str, target: &str, form: Option<&str>) -> Resp {
    let a = sb.verify_account();
    verify_send(sb, method, target, Some((&a.api_key_sid, &a.api_key_secret)), form)
}

/// GET on the Verify API with the sandbox's API key.
pub fn verify_get(sb: &Sandbox, target: &str) -> Resp {
    with_verify_key(sb, "GET", target, None)
}

/// POST a form to the Verify API with the sandbox's API key.
pub fn verify_post(sb: &Sandbox, target: &str, form: &str) -> Resp {
    with_verify_key(sb, "POST", target, Some(form))
}

/// DELETE on the Verify API with the sandbox's API key.
pub fn verify_delete(sb: &Sandbox, target: &str) -> Resp {
    with_verify_key(sb, "DELETE", target, None)
}
