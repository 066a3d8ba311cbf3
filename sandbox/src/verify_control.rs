//! The control interface's Verify endpoints (`/verify/...`) and the clock (`/clock`).
//!
//! Plain HTTP + JSON on loopback, beside the Authy control endpoints in `control` and with the
//! same conventions (`{"error": ...}` with 400 or 404). Each endpoint is a thin wrapper over an
//! operation in `verify_ops`, so scripts and in-process tests see the same behaviour.

use serde_json::{Value, json};

use crate::http::Response;
use crate::model::{PushStatus, TotpAlg, TotpFactorSpec};
use crate::server::Shared;

fn ok(v: Value) -> Response {
    Response::json(200, v.to_string())
}

fn fail(status: u16, msg: impl Into<String>) -> Response {
    Response::json(status, json!({ "error": msg.into() }).to_string())
}

/// Answers `/verify/...` and `/clock`; `None` for any other path.
pub(crate) fn handle(
    shared: &Shared,
    method: &str,
    segs: &[&str],
    query: &[(String, String)],
    body: &Value,
) -> Option<Response> {
    Some(match (method, segs) {
        ("POST", ["clock"]) => set_clock(shared, body),
        ("GET", ["clock"]) => ok(json!({ "now": shared.now() })),
        ("GET", ["verify"]) => {
            let a = shared.verify_account();
            ok(json!({
                "api_url": shared.api_url,
                "account_sid": a.account_sid,
                "auth_token": a.auth_token,
                "api_key_sid": a.api_key_sid,
                "api_key_secret": a.api_key_secret,
                "service_sid": a.service_sid,
            }))
        }
        ("POST", ["verify", "services"]) => {
            let name = body.get("friendly_name").and_then(Value::as_str).unwrap_or("sandbox service");
            ok(json!({ "sid": shared.verify_create_service(name) }))
        }
        ("POST", ["verify", "keys"]) => match shared.verify_create_api_key() {
            Some((sid, secret)) => ok(json!({ "sid": sid, "secret": secret })),
            None => fail(500, "no random source for a secret"),
        },
        ("POST", ["verify", "services", service, "entities", identity]) => {
            match shared.verify_add_entity(service, identity) {
                Some(sid) => ok(json!({ "sid": sid })),
                None => fail(404, "unknown service or invalid identity"),
            }
        }
        ("POST", ["verify", "services", service, "entities", identity, "factors"]) => {
            add_factor(shared, service, identity, body)
        }
        ("GET", ["verify", "factors", sid, "code"]) => {
            let at = query.iter().find(|(k, _)| k == "at").and_then(|(_, v)| v.parse::<u64>().ok());
            match shared.verify_factor_code(sid, at.unwrap_or_else(|| shared.now())) {
                Some(code) => ok(json!({ "code": code })),
                None => fail(404, "unknown TOTP factor"),
            }
        }
        ("GET", ["verify", "verifications"]) => ok(Value::Array(
            shared
                .verify_sent_codes()
                .into_iter()
                .map(|s| {
                    json!({
                        "sid": s.verification_sid,
                        "service_sid": s.service_sid,
                        "to": s.to,
                        "channel": s.channel,
                        "code": s.code,
                        "status": s.status,
                        "sends": s.sends,
                        "checks": s.checks,
                    })
                })
                .collect(),
        )),
        ("GET", ["verify", "verifications", sid, "code"]) => {
            match shared.verify_sent_codes().into_iter().find(|s| s.verification_sid == *sid) {
                Some(s) => ok(json!({ "code": s.code })),
                None => fail(404, "unknown verification"),
            }
        }
        ("GET", ["verify", "challenges"]) => ok(Value::Array(
            shared
                .verify_challenges()
                .into_iter()
                .map(|c| {
                    let hidden = c.hidden_details.as_deref().and_then(|t| serde_json::from_str::<Value>(t).ok());
                    json!({
                        "sid": c.sid,
                        "service_sid": c.service_sid,
                        "identity": c.identity,
                        "factor_sid": c.factor_sid,
                        "factor_type": c.factor_type,
                        "status": c.status,
                        "message": c.message,
                        "fields": c.fields.iter().map(|(l, v)| json!({ "label": l, "value": v })).collect::<Vec<_>>(),
                        "hidden_details": hidden,
                        "created_unix": c.created_unix,
                        "expiration_unix": c.expiration_unix,
                        "polls": c.polls,
                        "wrong_codes": c.wrong_codes,
                    })
                })
                .collect(),
        )),
        ("POST", ["verify", "challenges", sid]) => {
            let Some(status) = body.get("status").and_then(Value::as_str).and_then(PushStatus::parse) else {
                return Some(fail(400, "status must be pending, approved, denied or expired"));
            };
            if shared.verify_decide_challenge(sid, status) {
                ok(json!({ "sid": sid, "status": status.as_str() }))
            } else {
                fail(404, "unknown challenge (or the Verify scenario is \"never\")")
            }
        }
        ("POST", ["verify", "check_status"]) => {
            let status = body.get("status").and_then(Value::as_u64).and_then(|s| u16::try_from(s).ok());
            match status {
                Some(s) if shared.set_verification_check_status(s) => ok(json!({ "status": s })),
                _ => fail(400, "expected {\"status\": 200|201}"),
            }
        }
        ("GET", ["verify", "stats"]) => {
            let s = shared.verify_stats();
            ok(json!({
                "sends": s.sends,
                "checks": s.checks,
                "challenges": s.challenges,
                "factor_verifications": s.factor_verifications,
            }))
        }
        _ => return None,
    })
}

/// `{"unix": N}` freezes the clock at N, `{"advance": S}` moves it S seconds on (and freezes
/// it), `{"unix": null}` returns to real time.
fn set_clock(shared: &Shared, body: &Value) -> Response {
    if let Some(secs) = body.get("advance").and_then(Value::as_u64) {
        shared.advance_clock(secs);
    } else if let Some(unix) = body.get("unix") {
        match unix {
            Value::Null => shared.set_clock(None),
            v => match v.as_u64() {
                Some(t) => shared.set_clock(Some(t)),
                None => return fail(400, "unix must be a number or null"),
            },
        }
    } else {
        return fail(400, "expected {\"unix\": N|null} or {\"advance\": SECS}");
    }
    ok(json!({ "now": shared.now() }))
}

fn add_factor(shared: &Shared, service: &str, identity: &str, body: &Value) -> Response {
    let kind = body.get("factor_type").and_then(Value::as_str).unwrap_or("totp");
    let created = match kind {
        "push" => shared.verify_add_push_factor(service, identity),
        "totp" => {
            let mut spec = TotpFactorSpec::default();
            if let Some(v) = body.get("verified").and_then(Value::as_bool) {
                spec.verified = v;
            }
            if let Some(alg) = body.get("alg").and_then(Value::as_str) {
                match TotpAlg::parse(alg) {
                    Some(a) => spec.alg = a,
                    None => return fail(400, "alg must be sha1, sha256 or sha512"),
                }
            }
            let num = |name: &str| body.get(name).and_then(Value::as_u64);
            if let Some(d) = num("digits") {
                spec.digits = u32::try_from(d).unwrap_or(u32::MAX);
            }
            if let Some(s) = num("step") {
                spec.step = s;
            }
            if let Some(s) = num("skew") {
                spec.skew = u32::try_from(s).unwrap_or(u32::MAX);
            }
            if let Some(name) = body.get("friendly_name").and_then(Value::as_str) {
                spec.friendly_name = name.to_owned();
            }
            if let Some(b32) = body.get("secret").and_then(Value::as_str) {
                match totp_rs::Secret::try_from_base32(b32) {
                    Ok(s) => spec.secret = Some(s.as_bytes().to_vec()),
                    Err(_) => return fail(400, "secret must be base32"),
                }
            }
            shared.verify_add_totp_factor(service, identity, &spec)
        }
        _ => return fail(400, "factor_type must be totp or push"),
    };
    match created {
        Some(f) => ok(json!({
            "sid": f.sid,
            "entity_sid": f.entity_sid,
            "factor_type": kind,
            "secret": f.secret_base32,
        })),
        None => fail(404, "unknown service, invalid identity or parameters out of range"),
    }
}
