//! The control interface: plain HTTP + JSON on loopback for shell scripts and tests.
//!
//! It mirrors the `Sandbox` methods (see sandbox/README.md for the table) and is deliberately
//! separate from the API listener and its paths, so nothing a client under test sends can
//! reach it. It hands out the API key and live codes, so every request must name the
//! listener itself in `Host` (a page that rebinds a DNS name to loopback cannot) and carry the
//! per-run token as `Authorization: Bearer` (another local user, or a page's form POST,
//! cannot). It parses JSON leniently where the meaning is clear and answers `400
//! {"error": ...}` otherwise; it never touches sockets itself.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde_json::{Value, json};

use crate::api::details_json;
use crate::http::{Request, Response, parse_form};
use crate::model::{Fault, FaultScope, PushScenario, PushStatus};
use crate::server::Shared;

fn ok(v: Value) -> Response {
    Response::json(200, v.to_string())
}

fn fail(status: u16, msg: impl Into<String>) -> Response {
    Response::json(status, json!({ "error": msg.into() }).to_string())
}

/// Whether `Host` names this listener: a loopback name or literal with the listener's port.
fn host_is_ours(shared: &Shared, req: &Request) -> bool {
    let listener = shared.control_url.as_deref().and_then(|u| u.strip_prefix("http://"));
    let Some(listener) = listener.and_then(|a| a.parse::<SocketAddr>().ok()) else {
        return false;
    };
    let mut hosts = req.headers.iter().filter(|(n, _)| n == "host").map(|(_, v)| v.as_str());
    let (Some(host), None) = (hosts.next(), hosts.next()) else {
        return false;
    };
    let Some((name, port)) = host.rsplit_once(':') else {
        return false;
    };
    let name = name.to_ascii_lowercase();
    let bound = match listener.ip() {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    };
    port == listener.port().to_string() && ["localhost", "127.0.0.1", "[::1]", bound.as_str()].contains(&name.as_str())
}

/// Whether the request carries this run's token, compared without an early exit.
fn token_is_ours(shared: &Shared, req: &Request) -> bool {
    let mut given = req.headers.iter().filter(|(n, _)| n == "authorization").map(|(_, v)| v.as_str());
    let (Some(given), None) = (given.next(), given.next()) else {
        return false;
    };
    let Some(given) = given.strip_prefix("Bearer ") else {
        return false;
    };
    let expected = shared.control_token.as_bytes();
    given.len() == expected.len() && given.bytes().zip(expected).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
}

/// Answers one control request, after checking that it is addressed to this listener and
/// authorised.
pub(crate) fn handle(shared: &Shared, req: &Request) -> Response {
    if !host_is_ours(shared, req) {
        return fail(403, "the Host header must name this loopback listener");
    }
    if !token_is_ours(shared, req) {
        let mut refused = fail(401, "send the control token printed at start as `Authorization: Bearer TOKEN`");
        refused.extra_headers.push(("WWW-Authenticate".to_owned(), "Bearer".to_owned()));
        return refused;
    }
    handle_authorised(shared, req)
}

fn handle_authorised(shared: &Shared, req: &Request) -> Response {
    let body: Value = if req.body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match serde_json::from_slice(&req.body) {
            Ok(v) => v,
            Err(e) => return fail(400, format!("body is not JSON: {e}")),
        }
    };
    let query = req.query.as_deref().map(parse_form).unwrap_or_default();
    let segs: Vec<&str> = req.path.trim_start_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let method = if req.method == "HEAD" { "GET" } else { req.method.as_str() };
    match (method, segs.as_slice()) {
        ("GET", []) => ok(json!({
            "api_url": shared.api_url,
            "control_url": shared.control_url,
            "api_key": shared.api_key,
        })),
        ("GET", ["ca.pem"]) => Response {
            status: 200,
            content_type: "application/x-pem-file".to_owned(),
            body: shared.ca_pem.clone().into_bytes(),
            extra_headers: Vec::new(),
        },
        ("GET", ["users"]) => ok(Value::Array(
            shared
                .users()
                .iter()
                .map(|u| {
                    json!({
                        "authy_id": u.id,
                        "emails": u.emails,
                        "cellphone": u.cellphone,
                        "country_code": u.country_code,
                        "has_app": u.has_app,
                        "registered": u.registered,
                        "confirmed": u.confirmed,
                        "account_disabled": u.account_disabled,
                    })
                })
                .collect(),
        )),
        ("POST", ["users"]) => create_user(shared, &body),
        ("POST", ["users", id]) => match id.parse::<u64>() {
            Ok(id) => {
                let has_app = body.get("has_app").and_then(Value::as_bool);
                let registered = body.get("registered").and_then(Value::as_bool);
                if shared.set_user_flags(id, has_app, registered) {
                    ok(json!({ "authy_id": id }))
                } else {
                    fail(404, "unknown user")
                }
            }
            Err(_) => fail(404, "unknown user"),
        },
        ("GET", ["users", id, "token"]) => {
            let Ok(id) = id.parse::<u64>() else {
                return fail(404, "unknown user");
            };
            let at = query.iter().find(|(k, _)| k == "at").and_then(|(_, v)| v.parse::<u64>().ok());
            let token = match at {
                Some(t) => shared.token_at(id, t),
                None => shared.current_token(id),
            };
            match token {
                Some(token) => ok(json!({ "token": token })),
                None => fail(404, "unknown user"),
            }
        }
        ("GET", ["users", id, "secret"]) => {
            let user = id.parse::<u64>().ok().and_then(|id| shared.user(id));
            match user {
                Some(u) => ok(json!({
                    "totp_secret": totp_rs::Secret::from(u.secret).to_base32(),
                    "digits": shared.otp.digits,
                    "period": shared.otp.period,
                })),
                None => fail(404, "unknown user"),
            }
        }
        ("POST", ["faults"]) => set_fault(shared, &body),
        ("POST", ["push", "scenario"]) => set_scenario(shared, &body),
        ("POST", ["push", uuid]) => {
            let Some(status) = body.get("status").and_then(Value::as_str).and_then(PushStatus::parse) else {
                return fail(400, "status must be pending, approved, denied or expired");
            };
            if shared.decide_push(uuid, status) {
                ok(json!({ "uuid": uuid, "status": status.as_str() }))
            } else {
                fail(404, "unknown uuid (or its scenario is \"never\")")
            }
        }
        ("GET", ["push"]) => ok(Value::Array(
            shared
                .approval_requests()
                .iter()
                .map(|a| {
                    json!({
                        "uuid": a.uuid,
                        "authy_id": a.authy_id,
                        "message": a.message,
                        "details": details_json(&a.details),
                        "hidden_details": details_json(&a.hidden_details),
                        "seconds_to_expire": a.seconds_to_expire,
                        "status": a.status.as_str(),
                        "polls": a.polls,
                        "age_ms": duration_ms(a.created_at.elapsed()),
                        "decided_ms_ago": a.decided_at.map(|d| duration_ms(d.elapsed())),
                    })
                })
                .collect(),
        )),
        ("GET", ["requests"]) => ok(Value::Array(
            shared
                .requests()
                .iter()
                .map(|r| {
                    json!({
                        "method": r.method,
                        "raw_path": r.raw_path,
                        "route_path": r.route_path,
                        "query": r.query.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
                        "api_key": r.api_key,
                        "body": r.body,
                        "user_agent": r.user_agent,
                    })
                })
                .collect(),
        )),
        ("DELETE", ["requests"]) => {
            shared.clear_requests();
            ok(json!({ "cleared": true }))
        }
        ("GET", ["outbox"]) => ok(Value::Array(
            shared
                .outbox()
                .iter()
                .map(|s| {
                    json!({
                        "authy_id": s.authy_id,
                        "channel": s.channel,
                        "to": s.to,
                        "code": s.code,
                    })
                })
                .collect(),
        )),
        ("POST", [which @ ("sms" | "calls")]) => {
            let Some(on) = body.get("enabled").and_then(Value::as_bool) else {
                return fail(400, "expected {\"enabled\": true|false}");
            };
            if *which == "sms" {
                shared.set_sms_enabled(on);
            } else {
                shared.set_calls_enabled(on);
            }
            ok(json!({ "enabled": on }))
        }
        _ => crate::verify_control::handle(shared, method, &segs, &query, &body)
            .unwrap_or_else(|| fail(404, "no such control endpoint; see sandbox/README.md")),
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn create_user(shared: &Shared, body: &Value) -> Response {
    let email = body.get("email").and_then(Value::as_str).unwrap_or("");
    let cellphone = match body.get("cellphone") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return fail(400, "cellphone is required"),
    };
    let country_code = match body.get("country_code") {
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Some(Value::String(s)) => s.trim().trim_start_matches('+').parse().ok(),
        _ => None,
    };
    let Some(country_code) = country_code.filter(|cc| *cc > 0) else {
        return fail(400, "country_code must be a positive number");
    };
    if !cellphone.chars().any(|c| c.is_ascii_digit()) {
        return fail(400, "cellphone has no digits");
    }
    let id = shared.add_user(email, &cellphone, country_code);
    let has_app = body.get("has_app").and_then(Value::as_bool);
    let registered = body.get("registered").and_then(Value::as_bool);
    if has_app.is_some() || registered.is_some() {
        shared.set_user_flags(id, has_app, registered);
    }
    ok(json!({ "authy_id": id }))
}

/// `"global"` or `{"user": N}`; absent means global.
fn parse_scope(v: Option<&Value>) -> Result<FaultScope, String> {
    match v {
        None | Some(Value::Null) => Ok(FaultScope::Global),
        Some(Value::String(s)) if s == "global" => Ok(FaultScope::Global),
        Some(Value::String(s)) if s == "verify" => Ok(FaultScope::Verify),
        Some(Value::Object(o)) => o
            .get("user")
            .and_then(|u| u.as_u64().or_else(|| u.as_str().and_then(|s| s.parse().ok())))
            .map(FaultScope::User)
            .ok_or_else(|| "scope must be \"global\", \"verify\" or {\"user\": N}".to_owned()),
        Some(_) => Err("scope must be \"global\", \"verify\" or {\"user\": N}".to_owned()),
    }
}

/// The JSON spelling of a fault (see README); `null` clears.
pub(crate) fn parse_fault(v: &Value) -> Result<Option<Fault>, String> {
    let status_of = |o: &serde_json::Map<String, Value>| {
        o.get("status").and_then(Value::as_u64).and_then(|s| u16::try_from(s).ok())
    };
    match v {
        Value::Null => Ok(None),
        Value::String(s) => match s.as_str() {
            "hang" => Ok(Some(Fault::Hang)),
            "reset" => Ok(Some(Fault::Reset)),
            "invalid_json" => Ok(Some(Fault::InvalidJson)),
            "html" => Ok(Some(Fault::Html)),
            other => Err(format!("unknown fault {other:?}")),
        },
        Value::Object(o) => {
            if let Some(body) = o.get("body") {
                let body = match body {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                return Ok(Some(Fault::Body(status_of(o).unwrap_or(200), body)));
            }
            if let Some(ms) = o.get("slow_ms").and_then(Value::as_u64) {
                return Ok(Some(Fault::Slow(Duration::from_millis(ms))));
            }
            if let Some(url) = o.get("redirect").and_then(Value::as_str) {
                return Ok(Some(Fault::Redirect(url.to_owned())));
            }
            if let Some(status) = status_of(o) {
                return Ok(Some(Fault::Status(status)));
            }
            Err("unknown fault object".to_owned())
        }
        _ => Err("fault must be null, a string or an object".to_owned()),
    }
}

fn set_fault(shared: &Shared, body: &Value) -> Response {
    let scope = match parse_scope(body.get("scope")) {
        Ok(s) => s,
        Err(e) => return fail(400, e),
    };
    let Some(fault_json) = body.get("fault") else {
        return fail(400, "expected {\"scope\": ..., \"fault\": ...}");
    };
    let fault = match parse_fault(fault_json) {
        Ok(f) => f,
        Err(e) => return fail(400, e),
    };
    let times = body.get("times").and_then(Value::as_u64).map(|t| u32::try_from(t).unwrap_or(u32::MAX));
    shared.set_fault(scope, fault, times);
    ok(json!({ "ok": true }))
}

/// `"manual"`, `"never"` or `{"status": "approved", "after_polls": N}`.
pub(crate) fn parse_scenario(v: &Value) -> Result<PushScenario, String> {
    match v {
        Value::String(s) if s == "manual" => Ok(PushScenario::Manual),
        Value::String(s) if s == "never" => Ok(PushScenario::Never),
        Value::Object(o) => {
            let status = o
                .get("status")
                .and_then(Value::as_str)
                .and_then(PushStatus::parse)
                .ok_or("after_polls needs a status")?;
            let polls =
                o.get("after_polls").and_then(Value::as_u64).map(|p| u32::try_from(p).unwrap_or(u32::MAX)).unwrap_or(1);
            Ok(PushScenario::AfterPolls { status, polls })
        }
        _ => Err("scenario must be \"manual\", \"never\" or {\"status\", \"after_polls\"}".into()),
    }
}

fn set_scenario(shared: &Shared, body: &Value) -> Response {
    let scope = match parse_scope(body.get("scope")) {
        Ok(s) => s,
        Err(e) => return fail(400, e),
    };
    let scenario = match body.get("scenario").map(parse_scenario) {
        Some(Ok(s)) => s,
        Some(Err(e)) => return fail(400, e),
        None => return fail(400, "expected {\"scope\": ..., \"scenario\": ...}"),
    };
    shared.set_push_scenario(scope, scenario);
    ok(json!({ "ok": true }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_spellings() {
        let f = |s: &str| parse_fault(&serde_json::from_str(s).expect("json"));
        assert_eq!(f("null"), Ok(None));
        assert_eq!(f(r#"{"status":503}"#), Ok(Some(Fault::Status(503))));
        assert_eq!(f(r#""hang""#), Ok(Some(Fault::Hang)));
        assert_eq!(f(r#"{"slow_ms":1500}"#), Ok(Some(Fault::Slow(Duration::from_millis(1500)))));
        assert_eq!(f(r#""reset""#), Ok(Some(Fault::Reset)));
        assert_eq!(f(r#""invalid_json""#), Ok(Some(Fault::InvalidJson)));
        assert_eq!(f(r#""html""#), Ok(Some(Fault::Html)));
        assert_eq!(f(r#"{"redirect":"https://x.example/"}"#), Ok(Some(Fault::Redirect("https://x.example/".into()))));
        assert_eq!(f(r#"{"status":200,"body":"{}"}"#), Ok(Some(Fault::Body(200, "{}".into()))));
        assert!(f(r#""boom""#).is_err());
        assert!(f("3").is_err());
    }

    #[test]
    fn scenario_and_scope_spellings() {
        let s = |t: &str| parse_scenario(&serde_json::from_str(t).expect("json"));
        assert_eq!(s(r#""manual""#), Ok(PushScenario::Manual));
        assert_eq!(s(r#""never""#), Ok(PushScenario::Never));
        assert_eq!(
            s(r#"{"status":"denied","after_polls":3}"#),
            Ok(PushScenario::AfterPolls { status: PushStatus::Denied, polls: 3 })
        );
        assert!(s(r#"{"status":"maybe"}"#).is_err());
        let scope = |t: &str| parse_scope(Some(&serde_json::from_str(t).expect("json")));
        assert_eq!(scope(r#""global""#), Ok(FaultScope::Global));
        assert_eq!(scope(r#"{"user":12}"#), Ok(FaultScope::User(12)));
        assert_eq!(scope(r#""verify""#), Ok(FaultScope::Verify));
        assert!(scope(r#""user""#).is_err());
    }
}
