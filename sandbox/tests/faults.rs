//! Every fault kind, its scoping (global, per user, approval polls of that user), counted
//! faults, and that dropping the sandbox releases connections a `Hang` holds.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use authy_sandbox::{Fault, FaultScope};
use common::*;

fn status_path(id: u64) -> String {
    format!("/protected/json/users/{id}/status")
}

#[test]
fn status_faults_use_authy_error_bodies() {
    let (sb, id) = sandbox_with_user();
    sb.set_fault(FaultScope::Global, Some(Fault::Status(429)));
    let r = get(&sb, &status_path(id));
    assert_eq!(r.status, 429);
    assert_eq!(
        r.body,
        r#"{"message":"DoS protection","success":false,"errors":{"message":"DoS protection"},"error_code":"60003"}"#
    );
    for code in [500u16, 503, 502] {
        sb.set_fault(FaultScope::Global, Some(Fault::Status(code)));
        let r = get(&sb, &status_path(id));
        assert_eq!(r.status, code);
        assert_eq!(
            r.body,
            r#"{"message":"An error occurred","success":false,"errors":{"message":"An error occurred"},"error_code":"60000"}"#
        );
    }
    sb.set_fault(FaultScope::Global, None);
    assert_eq!(get(&sb, &status_path(id)).status, 200);
}

#[test]
fn faults_apply_before_the_api_key_check() {
    let (sb, id) = sandbox_with_user();
    sb.set_fault(FaultScope::Global, Some(Fault::Status(503)));
    let r = send(&sb, "GET", &status_path(id), None, None);
    assert_eq!(r.status, 503);
}

#[test]
fn hang_reads_the_request_and_never_answers() {
    let (sb, id) = sandbox_with_user();
    sb.set_fault(FaultScope::Global, Some(Fault::Hang));
    let mut tls = connect(&sb).expect("connect");
    tls.sock.set_read_timeout(Some(Duration::from_millis(700))).expect("timeout");
    write!(tls, "GET {} HTTP/1.1\r\nHost: x\r\nX-Authy-API-Key: {}\r\n\r\n", status_path(id), sb.api_key())
        .expect("write");
    tls.flush().expect("flush");
    let mut buf = [0u8; 64];
    let err = tls.read(&mut buf).expect_err("no answer");
    assert!(matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut), "{err:?}");
    // The request was read and recorded even though it is never answered.
    assert_eq!(sb.requests().len(), 1);
}

#[test]
fn dropping_the_sandbox_releases_hung_connections() {
    let (sb, id) = sandbox_with_user();
    sb.set_fault(FaultScope::Global, Some(Fault::Hang));
    let mut conns = Vec::new();
    for _ in 0..3 {
        let mut tls = connect(&sb).expect("connect");
        write!(tls, "GET {} HTTP/1.1\r\nHost: x\r\nX-Authy-API-Key: {}\r\n\r\n", status_path(id), sb.api_key())
            .expect("write");
        tls.flush().expect("flush");
        conns.push(tls);
    }
    // Also an idle connection that never sent anything.
    conns.push(connect(&sb).expect("idle"));
    while sb.requests().len() < 3 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    drop(sb);
    assert!(started.elapsed() < Duration::from_secs(3), "drop took {:?}", started.elapsed());
    for mut c in conns {
        c.sock.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let mut buf = [0u8; 64];
        // Closed (EOF or an error), but not a timeout.
        match c.read(&mut buf) {
            Ok(n) => assert_eq!(n, 0),
            Err(e) => assert!(!matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut), "{e:?}"),
        }
    }
}

#[test]
fn slow_waits_then_answers_normally() {
    let (sb, id) = sandbox_with_user();
    sb.set_fault(FaultScope::Global, Some(Fault::Slow(Duration::from_millis(400))));
    let started = Instant::now();
    let r = get(&sb, &status_path(id));
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["message"], "User status.");
}

#[test]
fn reset_closes_with_a_tcp_rst() {
    let (sb, id) = sandbox_with_user();
    sb.set_fault(FaultScope::Global, Some(Fault::Reset));
    let mut tls = connect(&sb).expect("connect");
    write!(tls, "GET {} HTTP/1.1\r\nHost: x\r\nX-Authy-API-Key: {}\r\n\r\n", status_path(id), sb.api_key())
        .expect("write");
    tls.flush().expect("flush");
    let err = read_all(&mut tls).expect_err("reset");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err:?}");
}

#[test]
fn invalid_json_html_redirect_and_raw_body() {
    let (sb, id) = sandbox_with_user();
    sb.set_fault(FaultScope::Global, Some(Fault::InvalidJson));
    let r = get(&sb, &status_path(id));
    assert_eq!(r.status, 200);
    assert!(serde_json::from_str::<serde_json::Value>(&r.body).is_err());

    sb.set_fault(FaultScope::Global, Some(Fault::Html));
    let r = get(&sb, &status_path(id));
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").expect("ct").starts_with("text/html"));
    assert!(r.body.starts_with("<html>") && r.body.ends_with("</html>"));

    sb.set_fault(FaultScope::Global, Some(Fault::Redirect("https://evil.example/verify".into())));
    let r = get(&sb, &status_path(id));
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("https://evil.example/verify"));

    let dup = r#"{"token":"is invalid","token":"is valid","success":true}"#;
    sb.set_fault(FaultScope::Global, Some(Fault::Body(200, dup.into())));
    let r = get(&sb, &status_path(id));
    assert_eq!((r.status, r.body.as_str()), (200, dup));

    let huge = format!(r#"{{"message":"{}"}}"#, "x".repeat(3 * 1024 * 1024));
    sb.set_fault(FaultScope::Global, Some(Fault::Body(200, huge.clone())));
    let r = get(&sb, &status_path(id));
    assert_eq!(r.body.len(), huge.len());

    sb.set_fault(FaultScope::Global, Some(Fault::Body(418, "teapot".into())));
    assert_eq!(get(&sb, &status_path(id)).status, 418);
}

#[test]
fn user_faults_hit_only_that_users_paths_and_win_over_global() {
    let (sb, alice) = sandbox_with_user();
    let bob = sb.add_user("bob@example.com", "555-000-0002", 1);
    sb.set_fault(FaultScope::User(alice), Some(Fault::Status(500)));
    let tok = sb.current_token(alice).expect("token");
    for path in [
        status_path(alice),
        format!("/protected/json/verify/{tok}/{alice}?force=true"),
        format!("/protected/json/sms/{alice}?force=true"),
        format!("/protected/json/call/{alice}?force=true"),
    ] {
        assert_eq!(get(&sb, &path).status, 500, "{path}");
    }
    assert_eq!(post_form(&sb, &format!("/onetouch/json/users/{alice}/approval_requests"), "message=x").status, 500);
    assert_eq!(post_form(&sb, &format!("/protected/json/users/{alice}/remove"), "").status, 500);
    // Other users and user-less paths are untouched.
    assert_eq!(get(&sb, &status_path(bob)).status, 200);
    assert_eq!(get(&sb, "/protected/json/app/details").status, 200);

    // The status poll of an approval request belongs to its user.
    sb.set_fault(FaultScope::User(alice), None);
    let uuid = post_form(
        &sb,
        &format!("/onetouch/json/users/{alice}/approval_requests"),
        "message=x",
    )
    .json()["approval_request"]["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    sb.set_fault(FaultScope::User(alice), Some(Fault::Status(503)));
    assert_eq!(get(&sb, &format!("/onetouch/json/approval_requests/{uuid}")).status, 503);

    // A user rule beats the global one.
    sb.set_fault(FaultScope::Global, Some(Fault::Status(429)));
    assert_eq!(get(&sb, &status_path(alice)).status, 503);
    assert_eq!(get(&sb, &status_path(bob)).status, 429);
}

#[test]
fn counted_faults_clear_themselves() {
    let (sb, id) = sandbox_with_user();
    sb.set_fault_times(FaultScope::Global, Fault::Status(503), 2);
    let statuses: Vec<u16> = (0..3).map(|_| get(&sb, &status_path(id)).status).collect();
    assert_eq!(statuses, vec![503, 503, 200]);
}
