//! Hostile and sloppy clients: garbage bytes, oversized heads and bodies, stalled clients,
//! keep-alive, pipelining, chunked bodies, HEAD, concurrency. The server must answer or close,
//! keep serving everyone else, and never panic (a hook counts panics in sandbox threads).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use authy_sandbox::{Sandbox, SandboxConfig};
use common::*;

static SERVER_PANICS: AtomicUsize = AtomicUsize::new(0);

/// Counts panics on the sandbox's own threads (they are all named `authy-sandbox-*`).
fn watch_panics() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name().is_some_and(|n| n.starts_with("authy-sandbox")) {
                SERVER_PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

fn assert_alive(sb: &Sandbox, id: u64) {
    let r = get(sb, &format!("/protected/json/users/{id}/status"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(SERVER_PANICS.load(Ordering::SeqCst), 0, "a sandbox thread panicked");
}

/// xorshift64*: deterministic "random" bytes without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn bytes(&mut self, n: usize, alphabet: &[u8]) -> Vec<u8> {
        (0..n).map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize]).collect()
    }
}

fn exchange_tolerant(sb: &Sandbox, bytes: &[u8]) -> Vec<u8> {
    let Ok(mut tls) = connect(sb) else {
        return Vec::new();
    };
    tls.sock.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
    if tls.write_all(bytes).and_then(|()| tls.flush()).is_err() {
        return Vec::new();
    }
    // Half-close so a server waiting for more body bytes sees the end.
    let _ = tls.sock.shutdown(std::net::Shutdown::Write);
    read_all(&mut tls).unwrap_or_default()
}

#[test]
fn garbage_requests_get_an_answer_or_a_close_and_nothing_panics() {
    watch_panics();
    let sb = Sandbox::start(SandboxConfig { normalize_dot_segments: true, ..SandboxConfig::default() }).expect("start");
    let id = sb.add_user("a@example.com", "5551234567", 1);
    let key = sb.api_key().to_owned();
    let mut fixed: Vec<Vec<u8>> = vec![
        b"\r\n\r\n".to_vec(),
        b"GET\r\n\r\n".to_vec(),
        b"GET / HTTP/9.9\r\n\r\n".to_vec(),
        b"GET /\xff\xfe HTTP/1.1\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nX: \xff\xfe\r\n\r\n".to_vec(),
        b"GET /%%%%%2e%2E%2f%2F%ff%00 HTTP/1.1\r\n\r\n".to_vec(),
        b"POST /protected/json/users/new HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef".to_vec(),
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc".to_vec(),
        b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc".to_vec(),
        format!("GET /protected/json/verify/{}/{id} HTTP/1.1\r\nX-Authy-API-Key: {key}\r\n\r\n", "../".repeat(2000)).into_bytes(),
        format!("POST /onetouch/json/users/{id}/approval_requests HTTP/1.1\r\nX-Authy-API-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n{{\"message\":{{\"a\":[1,{{}}]}}}}").into_bytes(),
        format!("POST /onetouch/json/users/{id}/approval_requests HTTP/1.1\r\nX-Authy-API-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n[1,2]").into_bytes(),
        format!("POST /protected/json/users/new HTTP/1.1\r\nX-Authy-API-Key: {key}\r\nContent-Length: 43\r\n\r\nuser[email]=%&user[cellphone]=%zz&user[=]=1").into_bytes(),
        format!("GET /protected/json/verify/1234567/99999999999999999999999 HTTP/1.1\r\nX-Authy-API-Key: {key}\r\n\r\n").into_bytes(),
        format!("GET /onetouch/json/approval_requests/{} HTTP/1.1\r\nX-Authy-API-Key: {key}\r\n\r\n", "%e2%80%ae".repeat(50)).into_bytes(),
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let alphabet: Vec<u8> = (0u8..=255).collect();
    let http_ish = b"GET POST /%2e./?&=[]{}\":,\r\n HTTP/1.1 Content-Length: 0123456789 chunked Expect: 100-continue X-Authy-API-Key";
    for i in 0..60 {
        let n = (rng.next() % 600) as usize;
        fixed.push(if i % 2 == 0 {
            rng.bytes(n, &alphabet)
        } else {
            let mut v = b"GET /protected/json/".to_vec();
            v.extend(rng.bytes(n, http_ish));
            v.extend_from_slice(b"\r\n\r\n");
            v
        });
    }
    for bytes in &fixed {
        let out = exchange_tolerant(&sb, bytes);
        if !out.is_empty() {
            assert!(out.starts_with(b"HTTP/1.1 "), "{:?}", String::from_utf8_lossy(&out));
        }
    }
    assert_alive(&sb, id);
}

#[test]
fn plain_http_on_the_tls_port_is_dropped() {
    watch_panics();
    let (sb, id) = sandbox_with_user();
    let mut tcp = TcpStream::connect(sb.addr()).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    let mut buf = Vec::new();
    let _ = tcp.read_to_end(&mut buf);
    assert!(!String::from_utf8_lossy(&buf).contains("HTTP/1.1 200"));
    assert_alive(&sb, id);
}

#[test]
fn oversized_heads_and_bodies_are_refused_with_431_and_413() {
    watch_panics();
    let (sb, id) = sandbox_with_user();
    let big_header = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(17 * 1024));
    let r = parse_response(&exchange_tolerant(&sb, big_header.as_bytes()));
    assert_eq!(r.status, 431);
    let many: String = (0..100).map(|i| format!("X-{i}: v\r\n")).collect();
    let r = parse_response(&exchange_tolerant(&sb, format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()));
    assert_eq!(r.status, 431);

    // The client sends the whole oversized body; the 413 must still reach it.
    let body = "x".repeat(200 * 1024);
    let req = format!(
        "POST /protected/json/users/new HTTP/1.1\r\nX-Authy-API-Key: {}\r\nContent-Length: {}\r\n\r\n{body}",
        sb.api_key(),
        body.len()
    );
    let r = parse_response(&exchange_tolerant(&sb, req.as_bytes()));
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error_code"], "60002");
    // Exactly 64 KiB is fine.
    let body = format!("user[email]=a%40b.co&pad={}", "x".repeat(64 * 1024 - 25));
    assert_eq!(body.len(), 64 * 1024);
    let r = post_form(&sb, "/protected/json/users/new", &body);
    assert_eq!(r.status, 400, "validation, not size: {}", r.body);
    assert_eq!(r.json()["error_code"], "60027");
    assert_alive(&sb, id);
}

#[test]
fn a_stalled_client_does_not_block_others() {
    watch_panics();
    let (sb, id) = sandbox_with_user();
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let mut tls = connect(&sb).expect("connect");
        tls.write_all(b"GET /protected/json/app/det").expect("partial");
        tls.flush().expect("flush");
        stalled.push(tls);
    }
    let mut raw = TcpStream::connect(sb.addr()).expect("raw");
    raw.write_all(&[0x16, 0x03, 0x01]).expect("partial hello");
    for _ in 0..5 {
        assert_alive(&sb, id);
    }
}

#[test]
fn keep_alive_and_pipelining_work() {
    watch_panics();
    let (sb, id) = sandbox_with_user();
    let key = sb.api_key().to_owned();
    let one = format!("GET /protected/json/users/{id}/status HTTP/1.1\r\nHost: x\r\nX-Authy-API-Key: {key}\r\n\r\n");
    let last = format!(
        "GET /protected/json/app/details HTTP/1.1\r\nHost: x\r\nX-Authy-API-Key: {key}\r\nConnection: close\r\n\r\n"
    );
    // Sequential on one connection.
    let mut tls = connect(&sb).expect("connect");
    tls.write_all(one.as_bytes()).expect("write");
    tls.flush().expect("flush");
    let mut first = vec![0u8; 4096];
    let n = tls.read(&mut first).expect("first answer");
    let r = parse_response(&first[..n]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("keep-alive"));
    tls.write_all(last.as_bytes()).expect("write");
    tls.flush().expect("flush");
    let rest = read_all(&mut tls).expect("rest");
    let r = parse_response(&rest);
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(r.json()["message"], "Application information.");

    // Pipelined in one write.
    let all = parse_responses(&raw_exchange(&sb, format!("{one}{one}{last}").as_bytes()).expect("pipelined"));
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|r| r.status == 200));
    assert_alive(&sb, id);
}

#[test]
fn chunked_bodies_expect_continue_and_head() {
    watch_panics();
    let sb = Sandbox::start(SandboxConfig::default()).expect("start");
    let form = "user[email]=z%40example.com&user[cellphone]=5557654321&user[country_code]=1";
    let (a, b) = form.split_at(20);
    let req = format!(
        "POST /protected/json/users/new HTTP/1.1\r\nHost: x\r\nX-Authy-API-Key: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        sb.api_key(),
        a.len(),
        b.len()
    );
    let r = parse_response(&raw_exchange(&sb, req.as_bytes()).expect("chunked"));
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.json()["user"]["id"].as_u64().expect("id");

    // Expect: 100-continue gets an interim answer before the body is sent.
    let mut tls = connect(&sb).expect("connect");
    write!(
        tls,
        "POST /onetouch/json/users/{id}/approval_requests HTTP/1.1\r\nHost: x\r\nX-Authy-API-Key: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        sb.api_key()
    )
    .expect("head");
    tls.flush().expect("flush");
    let mut interim = [0u8; 64];
    let n = tls.read(&mut interim).expect("100");
    assert!(interim[..n].starts_with(b"HTTP/1.1 100 Continue\r\n\r\n"));
    tls.write_all(b"message=x").expect("body");
    tls.flush().expect("flush");
    let r = parse_response(&read_all(&mut tls).expect("answer"));
    assert_eq!(r.status, 200);

    // HEAD: headers with the GET's length, no body.
    let out = raw_exchange(
        &sb,
        format!(
            "HEAD /protected/json/app/details HTTP/1.1\r\nX-Authy-API-Key: {}\r\nConnection: close\r\n\r\n",
            sb.api_key()
        )
        .as_bytes(),
    )
    .expect("head");
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n"), "{text}");
    assert_alive(&sb, id);
}

#[test]
fn concurrent_clients_are_served() {
    watch_panics();
    let (sb, id) = sandbox_with_user();
    std::thread::scope(|s| {
        for t in 0..8 {
            let sb = &sb;
            s.spawn(move || {
                for i in 0..8 {
                    let r = if (t + i) % 2 == 0 {
                        get(sb, &format!("/protected/json/users/{id}/status"))
                    } else {
                        post_form(sb, &format!("/onetouch/json/users/{id}/approval_requests"), "message=hi")
                    };
                    assert_eq!(r.status, 200);
                }
            });
        }
    });
    assert_eq!(sb.requests().len(), 64);
    assert_eq!(sb.approval_requests().len(), 32);
    assert_alive(&sb, id);
}
