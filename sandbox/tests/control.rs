//! The plain-HTTP control interface: every endpoint, driven exactly as a shell script would.

mod common;

use authy_sandbox::{PushStatus, Sandbox, SandboxConfig};
use common::*;
use serde_json::json;

fn start() -> Sandbox {
    Sandbox::start(SandboxConfig {
        control_listen: Some("127.0.0.1:0".parse().expect("addr")),
        ..SandboxConfig::default()
    })
    .expect("start")
}

#[test]
fn users_and_tokens() {
    let sb = start();
    assert!(sb.control_url().expect("url").starts_with("http://127.0.0.1:"));
    let r = control(
        &sb,
        "POST",
        "/users",
        Some(r#"{"email":"a@example.com","cellphone":"555-123-4567","country_code":1}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.json()["authy_id"].as_u64().expect("id");
    assert_eq!(sb.add_user("x@example.com", "5551234567", 1), id);

    let r = control(&sb, "GET", &format!("/users/{id}/token"), None);
    assert_eq!(r.json(), json!({ "token": sb.current_token(id).expect("token") }));
    let r = control(&sb, "GET", &format!("/users/{id}/token?at=1700000000"), None);
    assert_eq!(r.json()["token"], sb.token_at(id, 1_700_000_000).expect("token"));
    assert_eq!(control(&sb, "GET", "/users/999/token", None).status, 404);

    let r = control(&sb, "POST", &format!("/users/{id}"), Some(r#"{"has_app":false,"registered":false}"#));
    assert_eq!(r.status, 200);
    let users = control(&sb, "GET", "/users", None).json();
    assert_eq!(users[0]["has_app"], false);
    assert_eq!(users[0]["registered"], false);
    assert_eq!(users[0]["emails"], json!(["a@example.com", "x@example.com"]));

    let s = control(&sb, "GET", &format!("/users/{id}/secret"), None).json();
    assert_eq!(s["digits"], 7);
    assert!(s["totp_secret"].as_str().expect("b32").len() >= 32);

    assert_eq!(control(&sb, "POST", "/users", Some(r#"{"email":"a@b.c"}"#)).status, 400);
    assert_eq!(control(&sb, "POST", "/users", Some("{nope")).status, 400);
}

#[test]
fn faults_can_be_set_and_cleared() {
    let sb = start();
    let id = sb.add_user("a@example.com", "5551234567", 1);
    let status = format!("/protected/json/users/{id}/status");
    let set = |body: &str| {
        let r = control(&sb, "POST", "/faults", Some(body));
        assert_eq!(r.status, 200, "{body}: {}", r.body);
    };
    set(r#"{"scope":"global","fault":{"status":503}}"#);
    assert_eq!(get(&sb, &status).status, 503);
    set(r#"{"scope":"global","fault":null}"#);
    assert_eq!(get(&sb, &status).status, 200);
    set(&format!(r#"{{"scope":{{"user":{id}}},"fault":"html"}}"#));
    assert!(get(&sb, &status).body.starts_with("<html>"));
    set(&format!(r#"{{"scope":{{"user":{id}}},"fault":"invalid_json"}}"#));
    assert_eq!(get(&sb, &status).status, 200);
    set(&format!(r#"{{"scope":{{"user":{id}}},"fault":{{"slow_ms":50}}}}"#));
    assert_eq!(get(&sb, &status).status, 200);
    set(&format!(r#"{{"scope":{{"user":{id}}},"fault":{{"status":429}},"times":1}}"#));
    assert_eq!(get(&sb, &status).status, 429);
    assert_eq!(get(&sb, &status).status, 200);
    set(r#"{"scope":"global","fault":{"redirect":"https://x.example/"}}"#);
    assert_eq!(get(&sb, &status).status, 302);
    set(r#"{"scope":"global","fault":{"status":201,"body":"{\"a\":1}"}}"#);
    let r = get(&sb, &status);
    assert_eq!((r.status, r.body.as_str()), (201, r#"{"a":1}"#));
    for bad in
        [r#"{"scope":"global","fault":"explode"}"#, r#"{"scope":"everyone","fault":null}"#, r#"{"scope":"global"}"#]
    {
        assert_eq!(control(&sb, "POST", "/faults", Some(bad)).status, 400, "{bad}");
    }
    // "hang" and "reset" are accepted too (their behaviour is covered in faults.rs).
    set(r#"{"scope":"global","fault":"hang"}"#);
    set(r#"{"scope":"global","fault":"reset"}"#);
    set(r#"{"scope":"global","fault":null}"#);
}

#[test]
fn push_scenarios_decisions_and_listing() {
    let sb = start();
    let id = sb.add_user("a@example.com", "5551234567", 1);
    let create = || {
        post_form(&sb, &format!("/onetouch/json/users/{id}/approval_requests"), "message=Login&details[Host]=web1")
            .json()["approval_request"]["uuid"]
            .as_str()
            .expect("uuid")
            .to_owned()
    };
    let r = control(
        &sb,
        "POST",
        "/push/scenario",
        Some(r#"{"scope":"global","scenario":{"status":"approved","after_polls":2}}"#),
    );
    assert_eq!(r.status, 200);
    let uuid = create();
    let poll = |u: &str| {
        get(&sb, &format!("/onetouch/json/approval_requests/{u}")).json()["approval_request"]["status"].clone()
    };
    assert_eq!(poll(&uuid), "pending");
    assert_eq!(poll(&uuid), "approved");

    control(&sb, "POST", "/push/scenario", Some(r#"{"scope":"global","scenario":"manual"}"#));
    let second = create();
    let r = control(&sb, "POST", &format!("/push/{second}"), Some(r#"{"status":"denied"}"#));
    assert_eq!(r.status, 200);
    assert_eq!(poll(&second), "denied");
    assert_eq!(control(&sb, "POST", "/push/nope", Some(r#"{"status":"denied"}"#)).status, 404);
    assert_eq!(control(&sb, "POST", &format!("/push/{second}"), Some(r#"{"status":"maybe"}"#)).status, 400);
    control(&sb, "POST", "/push/scenario", Some(&format!(r#"{{"scope":{{"user":{id}}},"scenario":"never"}}"#)));
    let third = create();
    assert_eq!(control(&sb, "POST", &format!("/push/{third}"), Some(r#"{"status":"approved"}"#)).status, 404);
    assert_eq!(poll(&third), "pending");

    let list = control(&sb, "GET", "/push", None).json();
    assert_eq!(list.as_array().expect("array").len(), 3);
    assert_eq!(list[0]["status"], "approved");
    assert_eq!(list[0]["polls"], 2);
    assert_eq!(list[0]["details"], json!({ "Host": "web1" }));
    assert_eq!(list[1]["status"], "denied");
    assert!(list[1]["decided_ms_ago"].is_u64());
    assert!(list[2]["decided_ms_ago"].is_null());
    assert_eq!(sb.approval_requests()[1].status, PushStatus::Denied);
}

#[test]
fn requests_outbox_and_switches() {
    let sb = start();
    let id = sb.add_user("a@example.com", "5551234567", 1);
    get(&sb, &format!("/protected/json/sms/{id}?force=true"));
    let reqs = control(&sb, "GET", "/requests", None).json();
    assert_eq!(reqs[0]["method"], "GET");
    assert_eq!(reqs[0]["raw_path"], format!("/protected/json/sms/{id}"));
    assert_eq!(reqs[0]["query"], json!([["force", "true"]]));
    assert_eq!(reqs[0]["api_key"], sb.api_key());
    let outbox = control(&sb, "GET", "/outbox", None).json();
    assert_eq!(outbox[0]["channel"], "sms");
    assert_eq!(outbox[0]["to"], "+15551234567");
    assert_eq!(outbox[0]["code"].as_str().map(str::len), Some(7));
    assert_eq!(control(&sb, "DELETE", "/requests", None).status, 200);
    assert!(sb.requests().is_empty());

    assert_eq!(control(&sb, "POST", "/sms", Some(r#"{"enabled":false}"#)).status, 200);
    assert_eq!(get(&sb, &format!("/protected/json/sms/{id}?force=true")).status, 503);
    control(&sb, "POST", "/calls", Some(r#"{"enabled":false}"#));
    assert_eq!(get(&sb, &format!("/protected/json/call/{id}?force=true")).status, 503);
    control(&sb, "POST", "/sms", Some(r#"{"enabled":true}"#));
    assert_eq!(get(&sb, &format!("/protected/json/sms/{id}?force=true")).status, 200);
    assert_eq!(control(&sb, "POST", "/sms", Some("{}")).status, 400);
}

#[test]
fn index_ca_and_unknown_paths() {
    let sb = start();
    let v = control(&sb, "GET", "/", None).json();
    assert_eq!(v["api_url"], sb.url());
    assert_eq!(v["api_key"], sb.api_key());
    let r = control(&sb, "GET", "/ca.pem", None);
    assert_eq!(r.body, sb.ca_pem());
    assert_eq!(control(&sb, "GET", "/protected/json/app/details", None).status, 404);
    // The API listener does not answer control paths either.
    assert_eq!(get(&sb, "/faults").status, 404);
}

#[test]
fn control_requests_without_the_token_are_refused() {
    let sb = start();
    let addr = sb.control_addr().expect("addr");
    let host = format!("Host: {addr}\r\n");
    let token = sb.control_token().to_owned();
    assert_eq!(token.len(), 64, "{token}");
    for headers in [
        host.clone(),
        format!("{host}Authorization: Bearer wrong\r\n"),
        format!("{host}Authorization: Bearer {}\r\n", &token[..63]),
        format!("{host}Authorization: Basic {token}\r\n"),
        format!("{host}Authorization: Bearer {token}x\r\n"),
    ] {
        for (method, path) in [("GET", "/"), ("GET", "/users"), ("GET", "/ca.pem")] {
            let r = control_raw(addr, method, path, &headers, None);
            assert_eq!(r.status, 401, "{method} {path} with {headers:?}: {}", r.body);
            assert!(!r.body.contains(sb.api_key()), "{}", r.body);
        }
    }
    // A browser's "simple" POST carries no Authorization header: it changes nothing.
    let r = control_raw(addr, "POST", "/sms", &host, Some(r#"{"enabled":false}"#));
    assert_eq!(r.status, 401, "{}", r.body);
    let r = control_raw(addr, "GET", &format!("/?token={token}"), &host, None);
    assert_eq!(r.status, 401, "the token is never taken from the URL: {}", r.body);
    let r = control(&sb, "GET", "/", None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["api_key"], sb.api_key());
}

#[test]
fn control_requests_naming_a_foreign_host_are_refused() {
    let sb = start();
    let addr = sb.control_addr().expect("addr");
    let port = addr.port();
    let auth = format!("Authorization: Bearer {}\r\n", sb.control_token());
    for host in [
        format!("Host: evil.example:{port}\r\n"),
        format!("Host: 127.0.0.1.nip.io:{port}\r\n"),
        format!("Host: localhost.evil.example:{port}\r\n"),
        "Host: 127.0.0.1\r\n".to_owned(),
        format!("Host: 127.0.0.1:{}\r\n", port.wrapping_add(1)),
        format!("Host: 127.0.0.1:{port}\r\nHost: evil.example:{port}\r\n"),
        String::new(),
    ] {
        let r = control_raw(addr, "GET", "/", &format!("{host}{auth}"), None);
        assert_eq!(r.status, 403, "{host:?}: {}", r.body);
        assert!(!r.body.contains(sb.api_key()), "{}", r.body);
    }
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("LocalHost:{port}")] {
        let r = control_raw(addr, "GET", "/", &format!("Host: {host}\r\n{auth}"), None);
        assert_eq!(r.status, 200, "{host}: {}", r.body);
    }
}
