//! The imitation of the Twilio Verify v2 API: routing under `/v2`, HTTP Basic authentication,
//! form parameters, the endpoints and their JSON bodies.
//!
//! The facts it reproduces are written down in docs/verify-api.md; the sandbox's own choices
//! where the API is silent are in sandbox/README.md. Bodies are compact snake_case JSON with
//! every field present (nullable ones as `null`), dates as ISO-8601 `Z`, errors exactly
//! `{"code","message","more_info","status"}`. Lifecycle rules live in `verify_state`; this
//! module turns requests into calls on it and its records into bodies. No socket I/O here.

use crate::clock::rfc3339;
use crate::http::{Request, Response, parse_form, percent_decode};
use crate::json::J;
use crate::model::TotpAlg;
use crate::server::Shared;
use crate::store::{hex, secret_bytes};
use crate::verify_state::{
    CHALLENGE_DEFAULT_TTL_SECS, CHALLENGE_MAX_TTL_SECS, Challenge, ChallengeStatus, Factor, FactorType, MAX_TRIES,
    SendAttempt, Service, TotpConfig, Verification, VerificationStatus, VerifyState, is_sid, new_sid, prune,
    random_code, valid_identity,
};

/// A request under `/v2`, decoded enough to be answered later without the raw request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call {
    pub method: String,
    /// The path as sent, without `/v2` (for "not found" messages).
    pub resource: String,
    /// Decoded path segments after `v2`.
    pub segs: Vec<String>,
    /// Query parameters for GET/DELETE, form fields for POST, in the order sent.
    pub params: Vec<(String, String)>,
    /// `(user, password)` of a well-formed `Authorization: Basic` header.
    pub auth: Option<(String, String)>,
}

/// Whether a path belongs to the Verify API.
pub(crate) fn is_verify_path(path: &str) -> bool {
    path == "/v2" || path.starts_with("/v2/")
}

/// Decodes a request for the Verify API.
pub(crate) fn decode(req: &Request, query: &[(String, String)]) -> Call {
    let method = if req.method == "HEAD" { "GET".to_owned() } else { req.method.clone() };
    let resource = req.path.strip_prefix("/v2").unwrap_or("").to_owned();
    let segs = req.path.trim_start_matches('/').split('/').skip(1).map(|s| percent_decode(s, false)).collect();
    let params = if method == "POST" {
        let form = req
            .header("content-type")
            .is_none_or(|ct| ct.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
        if form { parse_form(&String::from_utf8_lossy(&req.body)) } else { Vec::new() }
    } else {
        query.to_vec()
    };
    let auth = req.header("authorization").and_then(basic_credentials);
    Call { method, resource, segs, params, auth }
}

/// `Basic base64(user:password)` → `(user, password)`.
pub(crate) fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, token) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(base64_decode(token.trim())?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// Parameter lookups, case-exact; the first occurrence of a single-valued name counts.
struct Params<'a>(&'a [(String, String)]);

impl<'a> Params<'a> {
    fn get(&self, name: &str) -> Option<&'a str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&'a str> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }
}

/// `{"code","message","more_info","status"}`, the only error shape of the API.
pub(crate) fn error(status: u16, code: u32, message: &str) -> Response {
    let mut r = Response::json(
        status,
        J::obj([
            ("code", J::u(u64::from(code))),
            ("message", J::s(message)),
            ("more_info", J::s(format!("https://www.twilio.com/docs/errors/{code}"))),
            ("status", J::u(u64::from(status))),
        ])
        .to_string(),
    );
    if status == 401 {
        r.extra_headers.push(("WWW-Authenticate".to_owned(), "Basic realm=\"Twilio API\"".to_owned()));
    }
    r
}

fn invalid(name: &str) -> Response {
    error(400, 60200, &format!("Invalid parameter: {name}"))
}

fn reply(status: u16, body: J) -> Response {
    Response::json(status, body.to_string())
}

fn date(t: u64) -> J {
    J::s(rfc3339(t))
}

/// Everything a handler needs besides the state.
struct Ctx<'a> {
    now: u64,
    base: &'a str,
    call: &'a Call,
}

impl<'a> Ctx<'a> {
    fn not_found(&self) -> Response {
        error(404, 20404, &format!("The requested resource {} was not found", self.call.resource))
    }

    fn params(&self) -> Params<'a> {
        Params(&self.call.params)
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v2{path}", self.base)
    }
}

/// Answers a Verify request (no fault, or after a `Slow` wait).
pub(crate) fn answer(shared: &Shared, call: &Call) -> Response {
    let now = shared.now();
    let mut store = shared.store();
    let v = &mut store.verify;
    let authenticated = call.auth.as_ref().is_some_and(|(u, p)| v.authenticates(u, p));
    if !authenticated {
        return error(401, 20003, "Authenticate");
    }
    let ctx = Ctx { now, base: &shared.api_url, call };
    let segs: Vec<&str> = call.segs.iter().map(String::as_str).collect();
    let m = call.method.as_str();
    let service_sid = match segs.as_slice() {
        ["Services"] => {
            return match m {
                "GET" => list_services(v, &ctx),
                "POST" => create_service(v, &ctx),
                _ => method_not_allowed(),
            };
        }
        ["Services", sid, ..] => *sid,
        _ => return ctx.not_found(),
    };
    let Some(service) = v.services.get(service_sid).cloned() else {
        return ctx.not_found();
    };
    match (&segs[2..], m) {
        ([], "GET") => reply(200, service_json(v, &ctx, &service)),
        (["Verifications"], "POST") => create_verification(v, &ctx, &service),
        (["Verifications", sid], "GET") => fetch_verification(v, &ctx, &service, sid),
        (["Verifications", sid], "POST") => update_verification(v, &ctx, &service, sid),
        (["VerificationCheck"], "POST") => check_verification(v, &ctx, &service),
        (["Entities"], "POST") => create_entity(v, &ctx, &service),
        (["Entities"], "GET") => list_entities(v, &ctx, &service),
        (["Entities", identity], "GET") => match v.entities.get(&(service.sid.clone(), (*identity).to_owned())) {
            Some(e) => reply(200, entity_json(v, &ctx, &service, identity, e)),
            None => ctx.not_found(),
        },
        (["Entities", identity], "DELETE") => {
            if v.delete_entity(&service.sid, identity) {
                no_content()
            } else {
                ctx.not_found()
            }
        }
        (["Entities", identity, "Factors"], "POST") => create_factor(v, &ctx, &service, identity),
        (["Entities", identity, "Factors"], "GET") => list_factors(v, &ctx, &service, identity),
        (["Entities", identity, "Factors", sid], "GET") => match owned_factor(v, &service, identity, sid) {
            Some(f) => reply(200, factor_json(v, &ctx, &f, false)),
            None => ctx.not_found(),
        },
        (["Entities", identity, "Factors", sid], "POST") => update_factor(v, &ctx, &service, identity, sid),
        (["Entities", identity, "Factors", sid], "DELETE") => {
            if owned_factor(v, &service, identity, sid).is_some() {
                v.factors.remove(*sid);
                no_content()
            } else {
                ctx.not_found()
            }
        }
        (["Entities", identity, "Challenges"], "POST") => create_challenge(v, &ctx, &service, identity),
        (["Entities", identity, "Challenges"], "GET") => list_challenges(v, &ctx, &service, identity),
        (["Entities", identity, "Challenges", sid], "GET") => {
            if owned_challenge(v, &service, identity, sid).is_none() {
                return ctx.not_found();
            }
            v.refresh_challenge(sid, now, true);
            match v.challenges.get(*sid) {
                Some(c) => reply(200, challenge_json(v, &ctx, c)),
                None => ctx.not_found(),
            }
        }
        (["Entities", identity, "Challenges", sid], "POST") => update_challenge(v, &ctx, &service, identity, sid),
        (["Entities", identity, "Challenges", sid, "Notifications"], "POST") => {
            notify_challenge(v, &ctx, &service, identity, sid)
        }
        (
            []
            | ["Verifications" | "VerificationCheck" | "Entities"]
            | ["Verifications" | "Entities", _]
            | ["Entities", _, "Factors" | "Challenges"]
            | ["Entities", _, "Factors" | "Challenges", _]
            | ["Entities", _, "Challenges", _, "Notifications"],
            _,
        ) => method_not_allowed(),
        _ => ctx.not_found(),
    }
}

fn method_not_allowed() -> Response {
    error(405, 20004, "Method not allowed")
}

fn no_content() -> Response {
    Response {
        status: 204,
        content_type: "application/json; charset=utf-8".to_owned(),
        body: Vec::new(),
        extra_headers: Vec::new(),
    }
}

/// One page of a list: `{"<key>": [...], "meta": {...}}`, honouring `PageSize` and `Page`.
fn list_reply(ctx: &Ctx<'_>, key: &str, items: Vec<J>) -> Response {
    let p = ctx.params();
    let page_size = p.get("PageSize").and_then(|s| s.parse::<usize>().ok()).unwrap_or(50).clamp(1, 1000);
    let page = p.get("Page").and_then(|s| s.parse::<usize>().ok()).unwrap_or(0);
    let total = items.len();
    let start = page.saturating_mul(page_size).min(total);
    let end = start.saturating_add(page_size).min(total);
    let path = ctx.url(&ctx.call.resource);
    let page_url = |n: usize| J::s(format!("{path}?PageSize={page_size}&Page={n}"));
    let shown: Vec<J> = items.into_iter().skip(start).take(end - start).collect();
    reply(
        200,
        J::Obj(vec![
            (key.to_owned(), J::Arr(shown)),
            (
                "meta".to_owned(),
                J::obj([
                    ("page", J::u(page as u64)),
                    ("page_size", J::u(page_size as u64)),
                    ("first_page_url", page_url(0)),
                    ("previous_page_url", if page > 0 { page_url(page - 1) } else { J::Null }),
                    ("url", page_url(page)),
                    ("next_page_url", if end < total { page_url(page + 1) } else { J::Null }),
                    ("key", J::s(key)),
                ]),
            ),
        ]),
    )
}

// -------------------------------------------------------------------------------- services --

fn service_json(v: &VerifyState, ctx: &Ctx<'_>, s: &Service) -> J {
    let url = ctx.url(&format!("/Services/{}", s.sid));
    J::obj([
        ("sid", J::s(s.sid.clone())),
        ("account_sid", J::s(v.account_sid.clone())),
        ("friendly_name", J::s(s.friendly_name.clone())),
        ("code_length", J::u(u64::from(s.code_length))),
        ("lookup_enabled", J::Bool(false)),
        ("psd2_enabled", J::Bool(false)),
        ("skip_sms_to_landlines", J::Bool(false)),
        ("dtmf_input_required", J::Bool(true)),
        ("tts_name", J::Null),
        ("do_not_share_warning_enabled", J::Bool(false)),
        ("custom_code_enabled", J::Bool(false)),
        (
            "push",
            J::obj([
                ("include_date", J::Bool(false)),
                ("apn_credential_sid", J::Null),
                ("fcm_credential_sid", J::Null),
            ]),
        ),
        (
            "totp",
            J::obj([
                ("issuer", J::s(s.totp_issuer.clone().unwrap_or_else(|| s.friendly_name.clone()))),
                ("time_step", J::u(s.totp.step)),
                ("code_length", J::u(u64::from(s.totp.digits))),
                ("skew", J::u(u64::from(s.totp.skew))),
            ]),
        ),
        ("whatsapp", J::obj([("msg_service_sid", J::Null), ("from", J::Null)])),
        ("default_template_sid", J::Null),
        ("verify_event_subscription_enabled", J::Bool(false)),
        ("date_created", date(s.created)),
        ("date_updated", date(s.updated)),
        ("url", J::s(url.clone())),
        (
            "links",
            J::obj([
                ("verification_checks", J::s(format!("{url}/VerificationCheck"))),
                ("verifications", J::s(format!("{url}/Verifications"))),
                ("rate_limits", J::s(format!("{url}/RateLimits"))),
                ("messaging_configurations", J::s(format!("{url}/MessagingConfigurations"))),
                ("entities", J::s(format!("{url}/Entities"))),
                ("webhooks", J::s(format!("{url}/Webhooks"))),
                ("access_tokens", J::s(format!("{url}/AccessTokens"))),
            ]),
        ),
    ])
}

fn list_services(v: &VerifyState, ctx: &Ctx<'_>) -> Response {
    let items = v.services.values().map(|s| service_json(v, ctx, s)).collect();
    list_reply(ctx, "services", items)
}

fn int_param(p: &Params<'_>, name: &str, range: std::ops::RangeInclusive<u64>) -> Result<Option<u64>, Response> {
    match p.get(name) {
        None => Ok(None),
        Some(s) => match s.parse::<u64>() {
            Ok(n) if range.contains(&n) => Ok(Some(n)),
            _ => Err(invalid(name)),
        },
    }
}

fn create_service(v: &mut VerifyState, ctx: &Ctx<'_>) -> Response {
    let p = ctx.params();
    let Some(name) = p.get("FriendlyName").filter(|n| !n.trim().is_empty() && n.chars().count() <= 30) else {
        return invalid("FriendlyName");
    };
    let parsed = (|| {
        Ok::<_, Response>((
            int_param(&p, "CodeLength", 4..=10)?,
            int_param(&p, "Totp.TimeStep", 20..=60)?,
            int_param(&p, "Totp.CodeLength", 3..=8)?,
            int_param(&p, "Totp.Skew", 0..=2)?,
        ))
    })();
    let (code_length, step, digits, skew) = match parsed {
        Ok(t) => t,
        Err(r) => return r,
    };
    let sid = v.add_service(None, name, ctx.now);
    let Some(s) = v.services.get_mut(&sid) else {
        return ctx.not_found();
    };
    if let Some(n) = code_length {
        s.code_length = n as u32;
    }
    if let Some(n) = step {
        s.totp.step = n;
    }
    if let Some(n) = digits {
        s.totp.digits = n as u32;
    }
    if let Some(n) = skew {
        s.totp.skew = n as u32;
    }
    s.totp_issuer = p.get("Totp.Issuer").map(str::to_owned);
    let s = s.clone();
    reply(201, service_json(v, ctx, &s))
}

// --------------------------------------------------------------------------- verifications --

/// E.164: `+`, a non-zero digit, 7 to 15 digits in all.
pub(crate) fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
}

fn verification_json(v: &VerifyState, ctx: &Ctx<'_>, x: &Verification) -> J {
    J::obj([
        ("sid", J::s(x.sid.clone())),
        ("service_sid", J::s(x.service.clone())),
        ("account_sid", J::s(v.account_sid.clone())),
        ("to", J::s(x.to.clone())),
        ("channel", J::s(x.channel)),
        ("status", J::s(x.status.as_str())),
        ("valid", J::Bool(x.status == VerificationStatus::Approved)),
        ("lookup", J::Obj(Vec::new())),
        ("amount", J::Null),
        ("payee", J::Null),
        (
            "send_code_attempts",
            J::Arr(
                x.attempts
                    .iter()
                    .map(|a| {
                        J::obj([
                            ("time", date(a.time)),
                            ("channel", J::s(a.channel.to_ascii_uppercase())),
                            ("attempt_sid", J::s(a.sid.clone())),
                        ])
                    })
                    .collect(),
            ),
        ),
        ("date_created", date(x.created)),
        ("date_updated", date(x.updated)),
        ("sna", J::Null),
        ("url", J::s(ctx.url(&format!("/Services/{}/Verifications/{}", x.service, x.sid)))),
    ])
}

fn create_verification(v: &mut VerifyState, ctx: &Ctx<'_>, service: &Service) -> Response {
    let p = ctx.params();
    let Some(to) = p.get("To").filter(|t| is_e164(t)) else {
        return invalid("To");
    };
    let channel = match p.get("Channel") {
        Some("sms") => "sms",
        Some("call") => "call",
        _ => return invalid("Channel"),
    };
    let now = ctx.now;
    let sid = match v.live_verification_for(&service.sid, to, now) {
        Some(sid) => {
            let Some(x) = v.verifications.get_mut(&sid) else {
                return ctx.not_found();
            };
            if x.attempts.len() >= MAX_TRIES as usize {
                return error(429, 60203, "Max send attempts reached");
            }
            x.channel = channel;
            x.updated = now;
            x.attempts.push(SendAttempt { time: now, channel, sid: new_sid("VL") });
            sid
        }
        None => {
            let sid = new_sid("VE");
            v.insert_verification(Verification {
                sid: sid.clone(),
                service: service.sid.clone(),
                to: to.to_owned(),
                channel,
                status: VerificationStatus::Pending,
                code: random_code(service.code_length),
                created: now,
                updated: now,
                attempts: vec![SendAttempt { time: now, channel, sid: new_sid("VL") }],
                checks: 0,
            });
            sid
        }
    };
    v.stats.sends += 1;
    match v.verifications.get(&sid) {
        Some(x) => reply(201, verification_json(v, ctx, x)),
        None => ctx.not_found(),
    }
}

/// The verification if it is still pending (expiry applied); approved, canceled, expired and
/// maxed-out ones are gone as far as the API is concerned.
fn live_verification<'a>(
    v: &'a mut VerifyState,
    service: &Service,
    sid: &str,
    now: u64,
) -> Option<&'a mut Verification> {
    v.expire_verification(sid, now);
    v.verifications.get_mut(sid).filter(|x| x.service == service.sid && x.status == VerificationStatus::Pending)
}

fn fetch_verification(v: &mut VerifyState, ctx: &Ctx<'_>, service: &Service, sid: &str) -> Response {
    match live_verification(v, service, sid, ctx.now) {
        Some(x) => {
            let x = x.clone();
            reply(200, verification_json(v, ctx, &x))
        }
        None => ctx.not_found(),
    }
}

fn update_verification(v: &mut VerifyState, ctx: &Ctx<'_>, service: &Service, sid: &str) -> Response {
    let status = match ctx.params().get("Status") {
        Some("canceled") => VerificationStatus::Canceled,
        Some("approved") => VerificationStatus::Approved,
        _ => return invalid("Status"),
    };
    let now = ctx.now;
    let Some(x) = live_verification(v, service, sid, now) else {
        return ctx.not_found();
    };
    x.status = status;
    x.updated = now;
    let x = x.clone();
    reply(200, verification_json(v, ctx, &x))
}

fn check_json(v: &VerifyState, x: &Verification) -> J {
    J::obj([
        ("sid", J::s(x.sid.clone())),
        ("service_sid", J::s(x.service.clone())),
        ("account_sid", J::s(v.account_sid.clone())),
        ("to", J::s(x.to.clone())),
        ("channel", J::s(x.channel)),
        ("status", J::s(x.status.as_str())),
        ("valid", J::Bool(x.status == VerificationStatus::Approved)),
        ("amount", J::Null),
        ("payee", J::Null),
        ("sna_attempts_error_codes", J::Arr(Vec::new())),
        ("date_created", date(x.created)),
        ("date_updated", date(x.updated)),
    ])
}

fn check_verification(v: &mut VerifyState, ctx: &Ctx<'_>, service: &Service) -> Response {
    let p = ctx.params();
    let now = ctx.now;
    let sid = match (p.get("To"), p.get("VerificationSid")) {
        (None, None) => return error(400, 60221, "No target verification specified"),
        (Some(_), Some(_)) => return invalid("VerificationSid"),
        (Some(to), None) if !is_e164(to) => return invalid("To"),
        (None, Some(sid)) if !is_sid(sid, "VE") => return invalid("VerificationSid"),
        (Some(to), None) => v.live_verification_for(&service.sid, to, now),
        (None, Some(sid)) => Some(sid.to_owned()),
    };
    let Some(code) = p.get("Code").filter(|c| (4..=10).contains(&c.chars().count())) else {
        return invalid("Code");
    };
    let check_status = v.check_status;
    let Some(x) = sid.and_then(|sid: String| live_verification(v, service, &sid, now)) else {
        return ctx.not_found();
    };
    if x.checks >= MAX_TRIES {
        x.status = VerificationStatus::MaxAttemptsReached;
        x.updated = now;
        return error(429, 60202, "Max check attempts reached");
    }
    x.checks += 1;
    if x.code == code {
        x.status = VerificationStatus::Approved;
        x.updated = now;
    }
    let x = x.clone();
    v.stats.checks += 1;
    reply(check_status, check_json(v, &x))
}

// -------------------------------------------------------------------------------- entities --

fn entity_json(
    v: &VerifyState,
    ctx: &Ctx<'_>,
    service: &Service,
    identity: &str,
    e: &crate::verify_state::Entity,
) -> J {
    let url = ctx.url(&format!("/Services/{}/Entities/{identity}", service.sid));
    J::obj([
        ("sid", J::s(e.sid.clone())),
        ("identity", J::s(identity)),
        ("account_sid", J::s(v.account_sid.clone())),
        ("service_sid", J::s(service.sid.clone())),
        ("date_created", date(e.created)),
        ("date_updated", date(e.updated)),
        ("url", J::s(url.clone())),
        (
            "links",
            J::obj([
                ("factors", J::s(format!("{url}/Factors"))),
                ("new_factors", J::s(format!("{url}/Factors"))),
                ("challenges", J::s(format!("{url}/Challenges"))),
            ]),
        ),
    ])
}

fn create_entity(v: &mut VerifyState, ctx: &Ctx<'_>, service: &Service) -> Response {
    let Some(identity) = ctx.params().get("Identity").filter(|i| valid_identity(i)) else {
        return error(400, 60306, "Invalid parameter: Identity");
    };
    let key = (service.sid.clone(), identity.to_owned());
    if v.entities.contains_key(&key) {
        return error(409, 60301, "Entity already exists");
    }
    let e = v.ensure_entity(&service.sid, identity, ctx.now).clone();
    reply(201, entity_json(v, ctx, service, identity, &e))
}

fn list_entities(v: &VerifyState, ctx: &Ctx<'_>, service: &Service) -> Response {
    let items = v
        .entities
        .iter()
        .filter(|((s, _), _)| *s == service.sid)
        .map(|((_, identity), e)| entity_json(v, ctx, service, identity, e))
        .collect();
    list_reply(ctx, "entities", items)
}

// --------------------------------------------------------------------------------- factors --

fn owned_factor(v: &VerifyState, service: &Service, identity: &str, sid: &str) -> Option<Factor> {
    v.factors.get(sid).filter(|f| f.service == service.sid && f.identity == identity).cloned()
}

fn otpauth_uri(issuer: &str, name: &str, secret_b32: &str, cfg: TotpConfig) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={secret_b32}&issuer={}&algorithm={}&digits={}&period={}",
        enc(issuer),
        enc(name),
        enc(issuer),
        cfg.alg.as_str().to_ascii_uppercase(),
        cfg.digits,
        cfg.step
    )
}

fn factor_json(v: &VerifyState, ctx: &Ctx<'_>, f: &Factor, with_binding: bool) -> J {
    let config = match f.factor_type {
        FactorType::Totp => J::obj([
            ("alg", J::s(f.totp.alg.as_str())),
            ("skew", J::u(u64::from(f.totp.skew))),
            ("code_length", J::u(u64::from(f.totp.digits))),
            ("time_step", J::u(f.totp.step)),
        ]),
        FactorType::Push => J::obj([
            ("sdk_version", J::s("1.0.0")),
            ("app_id", J::s("com.example.sandbox")),
            ("notification_platform", J::s("none")),
            ("notification_token", J::Null),
        ]),
    };
    let mut pairs: Vec<(String, J)> = vec![
        ("sid".into(), J::s(f.sid.clone())),
        ("account_sid".into(), J::s(v.account_sid.clone())),
        ("service_sid".into(), J::s(f.service.clone())),
        ("entity_sid".into(), J::s(f.entity_sid.clone())),
        ("identity".into(), J::s(f.identity.clone())),
    ];
    if with_binding {
        let secret = totp_rs::Secret::from(f.secret.clone()).to_base32();
        let issuer = v
            .services
            .get(&f.service)
            .map(|s| s.totp_issuer.clone().unwrap_or_else(|| s.friendly_name.clone()))
            .unwrap_or_default();
        pairs.push((
            "binding".into(),
            J::obj([
                ("secret", J::s(secret.clone())),
                ("uri", J::s(otpauth_uri(&issuer, &f.friendly_name, &secret, f.totp))),
            ]),
        ));
        pairs.push(("options".into(), J::Null));
    }
    pairs.extend([
        ("date_created".into(), date(f.created)),
        ("date_updated".into(), date(f.updated)),
        ("friendly_name".into(), J::s(f.friendly_name.clone())),
        ("status".into(), J::s(if f.verified { "verified" } else { "unverified" })),
        ("factor_type".into(), J::s(f.factor_type.as_str())),
        ("config".into(), config),
        ("metadata".into(), J::Null),
        ("url".into(), J::s(ctx.url(&format!("/Services/{}/Entities/{}/Factors/{}", f.service, f.identity, f.sid)))),
    ]);
    J::Obj(pairs)
}

fn create_factor(v: &mut VerifyState, ctx: &Ctx<'_>, service: &Service, identity: &str) -> Response {
    let p = ctx.params();
    if !valid_identity(identity) {
        return error(400, 60306, "Invalid parameter: Identity");
    }
    let Some(name) = p.get("FriendlyName").filter(|n| !n.is_empty() && n.chars().count() <= 64) else {
        return invalid("FriendlyName");
    };
    if p.get("FactorType") != Some("totp") {
        // Push factors are made by the phone SDK with a device key; see sandbox/README.md.
        return invalid("FactorType");
    }
    let secret = match p.get("Binding.Secret") {
        None => match secret_bytes::<20>() {
            Ok(b) => b.to_vec(),
            Err(_) => return error(500, 20500, "Internal Server Error"),
        },
        Some(s) => match totp_rs::Secret::try_from_base32(s).ok().map(|s| s.as_bytes().to_vec()) {
            Some(bytes) if !bytes.is_empty() => bytes,
            _ => return invalid("Binding.Secret"),
        },
    };
    let mut cfg = service.totp;
    match p.get("Config.Alg").map(TotpAlg::parse) {
        None => {}
        Some(Some(alg)) => cfg.alg = alg,
        Some(None) => return invalid("Config.Alg"),
    }
    let parsed = (|| {
        Ok::<_, Response>((
            int_param(&p, "Config.TimeStep", 20..=60)?,
            int_param(&p, "Config.CodeLength", 3..=8)?,
            int_param(&p, "Config.Skew", 0..=2)?,
        ))
    })();
    match parsed {
        Ok((step, digits, skew)) => {
            cfg.step = step.unwrap_or(cfg.step);
            cfg.digits = digits.map_or(cfg.digits, |d| d as u32);
            cfg.skew = skew.map_or(cfg.skew, |s| s as u32);
        }
        Err(r) => return r,
    }
    let now = ctx.now;
    let totp_count = v
        .factors
        .values()
        .filter(|f| f.service == service.sid && f.identity == identity && f.factor_type == FactorType::Totp)
        .count();
    if totp_count >= 100 {
        return error(400, 60315, "Too many factors of this type for the entity");
    }
    if v.factors.values().any(|f| f.service == service.sid && f.identity == identity && f.secret == secret) {
        return error(409, 60317, "A factor with the same binding already exists");
    }
    let entity = v.ensure_entity(&service.sid, identity, now);
    prune(&mut entity.factor_creations, now, 86_400);
    if entity.factor_creations.len() >= 100 {
        return error(429, 60326, "Too many factor creations for the entity");
    }
    entity.factor_creations.push(now);
    let entity_sid = entity.sid.clone();
    let f = Factor {
        sid: new_sid("YF"),
        service: service.sid.clone(),
        identity: identity.to_owned(),
        entity_sid,
        friendly_name: name.to_owned(),
        factor_type: FactorType::Totp,
        verified: false,
        secret,
        totp: cfg,
        failed_verifications: 0,
        created: now,
        updated: now,
        challenge_creations: Vec::new(),
    };
    v.factors.insert(f.sid.clone(), f.clone());
    reply(201, factor_json(v, ctx, &f, true))
}

fn list_factors(v: &VerifyState, ctx: &Ctx<'_>, service: &Service, identity: &str) -> Response {
    if !v.entities.contains_key(&(service.sid.clone(), identity.to_owned())) {
        return ctx.not_found();
    }
    let mut factors: Vec<&Factor> =
        v.factors.values().filter(|f| f.service == service.sid && f.identity == identity).collect();
    factors.sort_by_key(|f| f.created);
    let items = factors.into_iter().map(|f| factor_json(v, ctx, f, false)).collect();
    list_reply(ctx, "factors", items)
}

fn update_factor(v: &mut VerifyState, ctx: &Ctx<'_>, service: &Service, identity: &str, sid: &str) -> Response {
    let Some(f) = owned_factor(v, service, identity, sid) else {
        return ctx.not_found();
    };
    let p = ctx.params();
    if p.get("FriendlyName").is_some_and(|name| name.is_empty() || name.chars().count() > 64) {
        return invalid("FriendlyName");
    }
    let now = ctx.now;
    if let Some(code) = p.get("AuthPayload")
        && !f.verified
        && f.factor_type == FactorType::Totp
    {
        if f.failed_verifications >= MAX_TRIES {
            return error(429, 60310, "Max factor verification attempts reached");
        }
        let accepted = f.totp.accepts(&f.secret, code, now);
        if let Some(stored) = v.factors.get_mut(sid) {
            if accepted {
                stored.verified = true;
            } else {
                stored.failed_verifications += 1;
            }
        }
        v.stats.factor_verifications += 1;
    }
    let Some(stored) = v.factors.get_mut(sid) else {
        return ctx.not_found();
    };
    if let Some(name) = p.get("FriendlyName") {
        stored.friendly_name = name.to_owned();
    }
    stored.updated = now;
    let f = stored.clone();
    reply(200, factor_json(v, ctx, &f, false))
}

// ------------------------------------------------------------------------------ challenges --

fn owned_challenge<'a>(v: &'a VerifyState, service: &Service, identity: &str, sid: &str) -> Option<&'a Challenge> {
    v.challenges.get(sid).filter(|c| c.service == service.sid && c.identity == identity)
}

/// Converts a parsed JSON value to the ordered writer's type (object keys keep serde's order).
fn to_j(value: &serde_json::Value) -> J {
    use serde_json::Value;
    match value {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Number(n) => n.as_i64().map_or_else(|| J::s(n.to_string()), J::Int),
        Value::String(s) => J::s(s.clone()),
        Value::Array(items) => J::Arr(items.iter().map(to_j).collect()),
        Value::Object(map) => J::Obj(map.iter().map(|(k, v)| (k.clone(), to_j(v))).collect()),
    }
}

fn challenge_json(v: &VerifyState, ctx: &Ctx<'_>, c: &Challenge) -> J {
    let details = if c.message.is_none() && c.fields.is_empty() {
        J::Null
    } else {
        J::obj([
            ("message", J::opt_s(c.message.clone())),
            (
                "fields",
                J::Arr(
                    c.fields
                        .iter()
                        .map(|(l, val)| J::obj([("label", J::s(l.clone())), ("value", J::s(val.clone()))]))
                        .collect(),
                ),
            ),
        ])
    };
    let url = ctx.url(&format!("/Services/{}/Entities/{}/Challenges/{}", c.service, c.identity, c.sid));
    J::obj([
        ("sid", J::s(c.sid.clone())),
        ("account_sid", J::s(v.account_sid.clone())),
        ("service_sid", J::s(c.service.clone())),
        ("entity_sid", J::s(c.entity_sid.clone())),
        ("identity", J::s(c.identity.clone())),
        ("factor_sid", J::s(c.factor_sid.clone())),
        ("date_created", date(c.created)),
        ("date_updated", date(c.updated)),
        ("date_responded", c.responded.map_or(J::Null, date)),
        ("expiration_date", date(c.expiration)),
        ("status", J::s(c.status.as_str())),
        ("responded_reason", J::s("none")),
        ("details", details),
        ("hidden_details", c.hidden_details.as_ref().map_or(J::Null, |m| to_j(&serde_json::Value::Object(m.clone())))),
        ("metadata", J::Null),
        ("factor_type", J::s(c.factor_type.as_str())),
        ("url", J::s(url.clone())),
        ("links", J::obj([("notifications", J::s(format!("{url}/Notifications")))])),
    ])
}

/// `2026-12-02T18:30:00Z`, with optional fractional seconds and a `±hh:mm` offset instead of `Z`.
pub(crate) fn parse_iso8601(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
    };
    let (y, mo, d, h, mi, se) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset: i64 = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let oh: i64 = rest[1..3].parse().ok()?;
            let om: i64 = rest[4..6].parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    // Howard Hinnant's days_from_civil.
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let t = days * 86_400 + h * 3600 + mi * 60 + se - offset;
    u64::try_from(t).ok()
}

/// `Details.Fields`: each value a JSON object `{"label": ≤36 chars, "value": ≤128 chars}`, at most 20.
fn parse_fields(raw: &[&str]) -> Option<Vec<(String, String)>> {
    if raw.len() > 20 {
        return None;
    }
    raw.iter()
        .map(|text| {
            let v: serde_json::Value = serde_json::from_str(text).ok()?;
            let o = v.as_object()?;
            let label = o.get("label")?.as_str()?;
            let value = o.get("value")?.as_str()?;
            (label.chars().count() <= 36 && value.chars().count() <= 128).then(|| (label.to_owned(), value.to_owned()))
        })
        .collect()
}

fn parse_hidden_details(text: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    if text.chars().count() > 1024 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let o = v.as_object()?;
    o.values().all(serde_json::Value::is_string).then(|| o.clone())
}

fn create_challenge(v: &mut VerifyState, ctx: &Ctx<'_>, service: &Service, identity: &str) -> Response {
    let p = ctx.params();
    let now = ctx.now;
    let Some(factor_sid) = p.get("FactorSid") else {
        return invalid("FactorSid");
    };
    if !is_sid(factor_sid, "YF") {
        return invalid("FactorSid");
    }
    let Some(f) = owned_factor(v, service, identity, factor_sid) else {
        return ctx.not_found();
    };
    let expiration = match p.get("ExpirationDate") {
        None => now + CHALLENGE_DEFAULT_TTL_SECS,
        Some(s) => match parse_iso8601(s) {
            Some(t) if t > now && t <= now + CHALLENGE_MAX_TTL_SECS => t,
            _ => return invalid("ExpirationDate"),
        },
    };
    let message = p.get("Details.Message").map(str::to_owned);
    if message.as_ref().is_some_and(|m| m.is_empty() || m.chars().count() > 256)
        || (f.factor_type == FactorType::Push && message.is_none())
    {
        return invalid("Details.Message");
    }
    let Some(fields) = parse_fields(&p.all("Details.Fields")) else {
        return invalid("Details.Fields");
    };
    let hidden_details = match p.get("HiddenDetails") {
        None => None,
        Some(text) => match parse_hidden_details(text) {
            Some(m) => Some(m),
            None => return invalid("HiddenDetails"),
        },
    };
    let payload = p.get("AuthPayload");
    if payload.is_some_and(|c| f.factor_type == FactorType::Totp && !(3..=8).contains(&c.len())) {
        return invalid("AuthPayload");
    }
    if !f.verified {
        return error(403, 60318, "The factor is not verified");
    }
    let Some(stored) = v.factors.get_mut(factor_sid) else {
        return ctx.not_found();
    };
    prune(&mut stored.challenge_creations, now, 86_400);
    let last_hour = stored.challenge_creations.iter().filter(|t| t.saturating_add(3600) > now).count();
    let day = stored.challenge_creations.len();
    let limited =
        if f.totp.digits <= 4 && f.factor_type == FactorType::Totp { day >= 10 } else { last_hour >= 50 || day >= 100 };
    if limited {
        return error(429, 60312, "Too many challenges created for the factor");
    }
    stored.challenge_creations.push(now);
    let mut c = Challenge {
        sid: new_sid("YC"),
        service: service.sid.clone(),
        identity: identity.to_owned(),
        entity_sid: f.entity_sid.clone(),
        factor_sid: f.sid.clone(),
        factor_type: f.factor_type,
        status: ChallengeStatus::Pending,
        created: now,
        updated: now,
        responded: None,
        expiration,
        message,
        fields,
        hidden_details,
        wrong_codes: 0,
        polls: 0,
        notifications: 0,
    };
    if let (Some(code), FactorType::Totp) = (payload, f.factor_type) {
        if f.totp.accepts(&f.secret, code, now) {
            c.status = ChallengeStatus::Approved;
            c.responded = Some(now);
        } else {
            c.wrong_codes = 1;
        }
    }
    v.stats.challenges += 1;
    let body = challenge_json(v, ctx, &c);
    v.insert_challenge(c);
    reply(201, body)
}

fn list_challenges(v: &mut VerifyState, ctx: &Ctx<'_>, service: &Service, identity: &str) -> Response {
    let p = ctx.params();
    let sids: Vec<String> = v
        .challenges_in_order()
        .filter(|c| c.service == service.sid && c.identity == identity)
        .filter(|c| p.get("FactorSid").is_none_or(|f| c.factor_sid == f))
        .map(|c| c.sid.clone())
        .collect();
    for sid in &sids {
        v.refresh_challenge(sid, ctx.now, false);
    }
    let wanted = p.get("Status").and_then(ChallengeStatus::parse);
    let mut items: Vec<J> = sids
        .iter()
        .filter_map(|sid| v.challenges.get(sid))
        .filter(|c| wanted.is_none_or(|s| c.status == s))
        .map(|c| challenge_json(v, ctx, c))
        .collect();
    if p.get("Order") == Some("desc") {
        items.reverse();
    }
    list_reply(ctx, "challenges", items)
}

fn update_challenge(v: &mut VerifyState, ctx: &Ctx<'_>, service: &Service, identity: &str, sid: &str) -> Response {
    let now = ctx.now;
    if owned_challenge(v, service, identity, sid).is_none() {
        return ctx.not_found();
    }
    v.refresh_challenge(sid, now, false);
    let Some(code) = ctx.params().get("AuthPayload").map(str::to_owned) else {
        return invalid("AuthPayload");
    };
    let Some(c) = v.challenges.get(sid).cloned() else {
        return ctx.not_found();
    };
    match c.status {
        ChallengeStatus::Approved | ChallengeStatus::Denied => {
            return error(403, 60322, "The challenge has already been responded");
        }
        ChallengeStatus::Expired => return error(403, 60323, "The challenge has expired"),
        ChallengeStatus::Pending => {}
    }
    let Some(f) = v.factors.get(&c.factor_sid).cloned() else {
        return ctx.not_found();
    };
    if f.factor_type == FactorType::Push {
        // A push answer is a JWT signed by the phone's key; only the control interface answers here.
        return invalid("AuthPayload");
    }
    if c.wrong_codes >= MAX_TRIES {
        return error(429, 60308, "Max challenge verification attempts reached");
    }
    let Some(stored) = v.challenges.get_mut(sid) else {
        return ctx.not_found();
    };
    if f.totp.accepts(&f.secret, &code, now) {
        stored.status = ChallengeStatus::Approved;
        stored.responded = Some(now);
    } else {
        stored.wrong_codes += 1;
    }
    stored.updated = now;
    let c = stored.clone();
    reply(200, challenge_json(v, ctx, &c))
}

fn notify_challenge(v: &mut VerifyState, ctx: &Ctx<'_>, service: &Service, identity: &str, sid: &str) -> Response {
    let ttl = match int_param(&ctx.params(), "Ttl", 0..=300) {
        Ok(t) => t.unwrap_or(300),
        Err(r) => return r,
    };
    if owned_challenge(v, service, identity, sid).is_none() {
        return ctx.not_found();
    }
    let account = v.account_sid.clone();
    let Some(c) = v.challenges.get_mut(sid) else {
        return ctx.not_found();
    };
    if c.factor_type != FactorType::Push || c.status != ChallengeStatus::Pending {
        return error(400, 60200, "Invalid parameter: ChallengeSid");
    }
    if c.notifications >= 3 {
        return error(429, 60309, "Max notifications reached for the challenge");
    }
    c.notifications += 1;
    reply(
        201,
        J::obj([
            ("sid", J::s(new_sid("NT"))),
            ("account_sid", J::s(account)),
            ("service_sid", J::s(c.service.clone())),
            ("entity_sid", J::s(c.entity_sid.clone())),
            ("identity", J::s(c.identity.clone())),
            ("challenge_sid", J::s(c.sid.clone())),
            ("priority", J::s("high")),
            ("ttl", J::u(ttl)),
            ("date_created", date(ctx.now)),
        ]),
    )
}

/// A fresh random secret (auth token or API key secret); an error rather than a guessable one.
pub(crate) fn new_secret() -> std::io::Result<String> {
    Ok(hex(&secret_bytes::<16>()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_decode() {
        // "ACx:tok" in base64.
        assert_eq!(basic_credentials("Basic QUN4OnRvaw=="), Some(("ACx".into(), "tok".into())));
        assert_eq!(basic_credentials("basic QUN4OnRvaw"), Some(("ACx".into(), "tok".into())));
        assert_eq!(basic_credentials("Bearer QUN4OnRvaw=="), None);
        assert_eq!(basic_credentials("Basic !!!"), None);
        assert_eq!(basic_credentials("Basic QUN4"), None);
    }

    #[test]
    fn iso8601_forms() {
        assert_eq!(parse_iso8601("2017-02-10T01:09:52Z"), Some(1_486_688_992));
        assert_eq!(parse_iso8601("2017-02-10T01:09:52.123456Z"), Some(1_486_688_992));
        assert_eq!(parse_iso8601("2017-02-10T02:09:52+01:00"), Some(1_486_688_992));
        assert_eq!(parse_iso8601("2017-02-10 01:09:52Z"), None);
        assert_eq!(parse_iso8601("2017-13-10T01:09:52Z"), None);
        assert_eq!(parse_iso8601("2017-02-10T01:09:52"), None);
        assert_eq!(parse_iso8601("é"), None);
        assert_eq!(rfc3339(parse_iso8601("2000-02-29T00:00:00Z").unwrap_or(0)), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn e164_and_fields() {
        assert!(is_e164("+15017122661"));
        assert!(!is_e164("15017122661"));
        assert!(!is_e164("+0501712266"));
        assert!(!is_e164("+1501 7122661"));
        assert_eq!(
            parse_fields(&[r#"{"label":"Host","value":"h1"}"#]),
            Some(vec![("Host".to_owned(), "h1".to_owned())])
        );
        assert_eq!(parse_fields(&["{\"label\":\"x\"}"]), None);
        assert_eq!(parse_fields(&["not json"]), None);
        assert!(parse_hidden_details(r#"{"ip":"1.2.3.4"}"#).is_some());
        assert!(parse_hidden_details(r#"{"n":1}"#).is_none());
    }
}
