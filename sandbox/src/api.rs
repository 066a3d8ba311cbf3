//! The imitation of the Authy REST API: routing, faults, authentication and the endpoints.
//!
//! Bodies follow docs/authy-api.md byte for byte in shape: compact JSON, keys in the
//! documented order, `success` the string `"true"` on verify success, `error_code` a string.
//! A request goes through [`prepare`] (record it, route it, pick a fault) and then, unless a
//! fault replaces the answer, [`answer`] (API key, parameters, handler). The split lets the
//! server wait out a `Slow` fault between the two without holding the state lock. This module
//! does no socket I/O.

use std::collections::BTreeMap;

use crate::clock::{civil_from_unix, month_name, now_unix, rfc3339};
use crate::http::{Request, Response, normalize_dot_segments, parse_form, percent_decode};
use crate::json::J;
use crate::model::{Fault, RecordedRequest};
use crate::params::{BadJson, Params};
use crate::server::Shared;
use crate::store::{SentCode, Store, User};
use crate::verify;

/// Which endpoint a request is for. Ids and tokens are kept as sent (decoded) so handlers can
/// answer "not found" for malformed ones exactly like unknown ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    UsersNew,
    UserStatus(String),
    /// Remove a user; the flag selects the message the legacy `/users/delete/{id}` path used.
    UserRemove(String, bool),
    Sms(String),
    Call(String),
    Verify {
        token: String,
        id: String,
    },
    ApprovalCreate(String),
    ApprovalStatus(String),
    AppDetails,
    AppStats,
    /// Anything under `/v2`: the Twilio Verify API (see `verify`).
    TwilioVerify(Box<verify::Call>),
    NotFound,
}

/// A request after routing, ready to be answered.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub route: Route,
    pub params: Result<Params, BadJson>,
    pub api_key: Option<String>,
    /// The fault to show instead of (or before, for `Slow`) the normal answer.
    pub fault: Option<Fault>,
    pub head_only: bool,
}

/// Records, routes and picks the fault for one request.
pub(crate) fn prepare(shared: &Shared, req: &Request) -> Prepared {
    let query = req.query.as_deref().map(parse_form).unwrap_or_default();
    let route_path = if shared.normalize { normalize_dot_segments(&req.path) } else { req.path.clone() };
    let params = Params::from_parts(&query, req.header("content-type"), &req.body);
    // The header is what every current client sends; `?api_key=` is the pre-2017 form that
    // authy-openvpn, authy-ssh, authy.net and go-authy still hard-code.
    let api_key = req.header("x-authy-api-key").map(str::to_owned).or_else(|| {
        params
            .as_ref()
            .ok()
            .and_then(|p| p.get("api_key"))
            .or_else(|| query.iter().rev().find(|(k, _)| k == "api_key").map(|(_, v)| v.as_str()))
            .map(str::to_owned)
    });
    let head_only = req.method == "HEAD";
    let route = if verify::is_verify_path(&route_path) {
        Route::TwilioVerify(Box::new(verify::decode(req, &query)))
    } else {
        route(&req.method, &route_path)
    };
    // For Verify the log shows who authenticated (the SID), never the secret.
    let api_key = match &route {
        Route::TwilioVerify(call) => call.auth.as_ref().map(|(user, _)| user.clone()),
        _ => api_key,
    };

    let mut store = shared.store();
    store.record(RecordedRequest {
        method: req.method.clone(),
        raw_path: req.path.clone(),
        route_path,
        query,
        api_key: api_key.clone(),
        body: String::from_utf8_lossy(&req.body).into_owned(),
        user_agent: req.header("user-agent").map(str::to_owned),
    });
    let fault = if matches!(route, Route::TwilioVerify(_)) {
        store.take_verify_fault()
    } else {
        let subject = subject_user(&route, &store);
        store.take_fault(subject)
    };
    Prepared { route, params, api_key, fault, head_only }
}

/// The authy_id a request is about, for user-scoped faults.
fn subject_user(route: &Route, store: &Store) -> Option<u64> {
    match route {
        Route::UserStatus(id)
        | Route::UserRemove(id, _)
        | Route::Sms(id)
        | Route::Call(id)
        | Route::Verify { id, .. }
        | Route::ApprovalCreate(id) => parse_id(id),
        Route::ApprovalStatus(uuid) => store.approval_owner(uuid),
        Route::UsersNew | Route::AppDetails | Route::AppStats | Route::TwilioVerify(_) | Route::NotFound => None,
    }
}

/// Maps method and path to a route. Only the `json` format exists; `xml` is answered 404,
/// which docs/authy-api.md allows. As in Sinatra, a wrong method is simply an unknown route.
pub(crate) fn route(method: &str, path: &str) -> Route {
    let Some(rest) = path.strip_prefix('/') else {
        return Route::NotFound;
    };
    let segs: Vec<String> = rest.split('/').map(|s| percent_decode(s, false)).collect();
    if segs.iter().any(String::is_empty) {
        return Route::NotFound;
    }
    let get = method == "GET" || method == "HEAD";
    let post = method == "POST";
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    match s.as_slice() {
        ["protected", "json", "users", "new"] if post => Route::UsersNew,
        ["protected", "json", "users", "delete", id] if post => Route::UserRemove((*id).to_owned(), true),
        ["protected", "json", "users", id, "status"] if get => Route::UserStatus((*id).to_owned()),
        ["protected", "json", "users", id, "remove" | "delete"] if post => Route::UserRemove((*id).to_owned(), false),
        ["protected", "json", "sms", id] if get => Route::Sms((*id).to_owned()),
        ["protected", "json", "call", id] if get => Route::Call((*id).to_owned()),
        ["protected", "json", "verify", token, id] if get => {
            Route::Verify { token: (*token).to_owned(), id: (*id).to_owned() }
        }
        ["protected", "json", "app", "details"] if get => Route::AppDetails,
        ["protected", "json", "app", "stats"] if get => Route::AppStats,
        ["onetouch", "json", "users", id, "approval_requests"] if post => Route::ApprovalCreate((*id).to_owned()),
        ["onetouch", "json", "approval_requests", uuid] if get => Route::ApprovalStatus((*uuid).to_owned()),
        _ => Route::NotFound,
    }
}

/// An authy_id must be all digits (docs/authy-api.md §10); anything else is "User not found.".
fn parse_id(id: &str) -> Option<u64> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    id.parse().ok()
}

/// The canned answer a non-timing fault produces for this request, in the error shape of the
/// API it addressed. `Hang`, `Reset` and `Slow` are the server's business and yield `None`.
pub(crate) fn fault_response_for(p: &Prepared, fault: &Fault) -> Option<Response> {
    if !matches!(p.route, Route::TwilioVerify(_)) {
        return fault_response(fault);
    }
    Some(match fault {
        Fault::Status(429) => verify::error(429, 20429, "Too Many Requests"),
        Fault::Status(code) => verify::error(*code, 20000 + u32::from(*code), crate::http::reason(*code)),
        // Cut mid-string, as a proxy dropping the tail of an approved check would.
        Fault::InvalidJson => Response::json(201, r#"{"sid":"VE0123456789abcdef0123456789abcdef","status":"appro"#),
        other => return fault_response(other),
    })
}

/// The canned answer a non-timing fault produces. `Hang`, `Reset` and `Slow` are the
/// server's business and yield `None`.
pub(crate) fn fault_response(fault: &Fault) -> Option<Response> {
    Some(match fault {
        Fault::Status(429) => error(429, "60003", "DoS protection"),
        Fault::Status(code) => error(*code, "60000", "An error occurred"),
        // Cut mid-string, as a proxy dropping the tail of a verify success would.
        Fault::InvalidJson => Response::json(200, r#"{"message":"Token is valid.","token":"is val"#),
        Fault::Html => Response {
            status: 200,
            content_type: "text/html; charset=utf-8".to_owned(),
            body: b"<html><head><title>Authy</title></head><body><h1>Welcome</h1><p>Please sign in to continue.</p></body></html>".to_vec(),
            extra_headers: Vec::new(),
        },
        Fault::Redirect(url) => Response {
            status: 302,
            content_type: "text/html; charset=utf-8".to_owned(),
            body: format!(
                "<html><body>You are being <a href=\"{}\">redirected</a>.</body></html>",
                url.replace('"', "%22")
            )
            .into_bytes(),
            extra_headers: vec![("Location".to_owned(), url.clone())],
        },
        Fault::Body(status, body) => Response::json(*status, body.clone()),
        Fault::Hang | Fault::Reset | Fault::Slow(_) => return None,
    })
}

/// `{"message":M,"success":false,"errors":{"message":M},"error_code":C}` (docs/authy-api.md §9).
fn error(status: u16, code: &str, message: &str) -> Response {
    reply(
        status,
        J::obj([
            ("message", J::s(message)),
            ("success", J::Bool(false)),
            ("errors", J::obj([("message", J::s(message))])),
            ("error_code", J::s(code)),
        ]),
    )
}

fn reply(status: u16, body: J) -> Response {
    Response::json(status, body.to_string())
}

fn user_not_found() -> Response {
    error(404, "60026", "User not found.")
}

/// Answers a prepared request normally (no fault, or after a `Slow` wait).
pub(crate) fn answer(shared: &Shared, p: &Prepared) -> Response {
    if let Route::TwilioVerify(call) = &p.route {
        return verify::answer(shared, call);
    }
    if p.api_key.as_deref() != Some(shared.api_key.as_str()) {
        return error(401, "60001", "Invalid API key");
    }
    let params = match &p.params {
        Ok(params) => params,
        Err(BadJson) => return error(400, "60002", "Invalid request"),
    };
    let mut store = shared.store();
    match &p.route {
        Route::UsersNew => users_new(&mut store, params),
        Route::UserStatus(id) => user_status(&store, id),
        Route::UserRemove(id, legacy) => user_remove(&mut store, id, *legacy),
        Route::Sms(id) => send_code(&mut store, shared, id, params, Channel::Sms),
        Route::Call(id) => send_code(&mut store, shared, id, params, Channel::Call),
        Route::Verify { token, id } => verify(&mut store, shared, token, id, params),
        Route::ApprovalCreate(id) => approval_create(&mut store, id, params),
        Route::ApprovalStatus(uuid) => approval_status(&mut store, uuid),
        Route::AppDetails => app_details(&store),
        Route::AppStats => app_stats(&store),
        Route::TwilioVerify(_) | Route::NotFound => error(404, "60000", "Resource not found"),
    }
}

fn flag(params: &Params, name: &str) -> bool {
    params.get(name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The last `n` characters (by char, so a hand-edited state file cannot split a UTF-8
/// sequence).
fn last_chars(s: &str, n: usize) -> String {
    let count = s.chars().count();
    s.chars().skip(count.saturating_sub(n)).collect()
}

/// `XXX-XXX-1118`: the last four digits, as in `users/{id}/status`.
fn mask_status_phone(digits: &str) -> String {
    format!("XXX-XXX-{}", last_chars(digits, 4))
}

/// `+1-XXX-XXX-XX85`: country code and the last two digits, as in the sms/call answers.
fn mask_sent_phone(user: &User) -> String {
    format!("+{}-XXX-XXX-XX{}", user.country_code, last_chars(&user.cellphone, 2))
}

/// The device type a user's app would report.
fn device_type(user: &User) -> &'static str {
    if user.has_app { "android" } else { "sms" }
}

// ---------------------------------------------------------------------------------- users --

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Dashes, dots and spaces are allowed in a cellphone (docs/authy-api.md §1); the rest must be
/// 6 to 15 digits (E.164 allows at most 15).
fn normalize_cellphone(raw: &str) -> Option<String> {
    let digits: String = raw.chars().filter(|c| !matches!(c, '-' | '.' | ' ')).collect();
    ((6..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

fn parse_country_code(raw: &str) -> Option<u32> {
    let raw = raw.trim().trim_start_matches('+');
    if raw.is_empty() || raw.len() > 4 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok().filter(|cc| *cc > 0)
}

fn users_new(store: &mut Store, params: &Params) -> Response {
    let email = params.get("user[email]").unwrap_or("").trim().to_owned();
    let phone = normalize_cellphone(params.get("user[cellphone]").unwrap_or(""));
    let cc = parse_country_code(params.get("user[country_code]").unwrap_or(""));
    let mut invalid: Vec<&str> = Vec::new();
    if !valid_email(&email) {
        invalid.push("email");
    }
    if phone.is_none() {
        invalid.push("cellphone");
    }
    if cc.is_none() {
        invalid.push("country_code");
    }
    let (Some(phone), Some(cc), true) = (phone, cc, invalid.is_empty()) else {
        // Each bad field appears inside `errors` and again at top level (ruby/java mocks).
        let msg = "User was not valid";
        let mut errors: Vec<(String, J)> = invalid.iter().map(|f| ((*f).to_owned(), J::s("is invalid"))).collect();
        errors.push(("message".to_owned(), J::s(msg)));
        let mut body = vec![
            ("message".to_owned(), J::s(msg)),
            ("success".to_owned(), J::Bool(false)),
            ("errors".to_owned(), J::Obj(errors)),
        ];
        body.extend(invalid.iter().map(|f| ((*f).to_owned(), J::s("is invalid"))));
        body.push(("error_code".to_owned(), J::s("60027")));
        return reply(400, J::Obj(body));
    };
    let id = store.upsert_user(&email, &phone, cc);
    reply(
        200,
        J::obj([
            ("message", J::s("User created successfully.")),
            ("user", J::obj([("id", J::u(id))])),
            ("success", J::Bool(true)),
        ]),
    )
}

fn lookup<'a>(store: &'a Store, id: &str) -> Option<&'a User> {
    parse_id(id).and_then(|id| store.users.get(&id))
}

fn user_status(store: &Store, id: &str) -> Response {
    let Some(u) = lookup(store, id) else {
        return user_not_found();
    };
    let (devices, detailed) = if u.has_app {
        (
            vec![J::s(device_type(u))],
            vec![J::obj([
                ("device_type", J::s("authy")),
                ("os_type", J::s(device_type(u))),
                ("registration_device_id", J::Null),
                ("registration_method", J::Null),
                ("device_id", J::u(u.id.saturating_mul(10).saturating_add(1))),
                ("last_sync_date", J::Int(0)),
                ("creation_date", J::u(u.created_at)),
            ])],
        )
    } else {
        (Vec::new(), Vec::new())
    };
    reply(
        200,
        J::obj([
            (
                "status",
                J::obj([
                    ("authy_id", J::u(u.id)),
                    ("confirmed", J::Bool(u.confirmed)),
                    ("registered", J::Bool(u.registered)),
                    ("country_code", J::u(u64::from(u.country_code))),
                    ("phone_number", J::s(mask_status_phone(&u.cellphone))),
                    ("email", J::opt_s(u.emails.first().cloned())),
                    ("devices", J::Arr(devices)),
                    ("has_hard_token", J::Bool(false)),
                    ("account_disabled", J::Bool(u.account_disabled)),
                    ("detailed_devices", J::Arr(detailed)),
                    ("deleted_devices", J::Arr(Vec::new())),
                ]),
            ),
            ("message", J::s("User status.")),
            ("success", J::Bool(true)),
        ]),
    )
}

/// Removal only marks the user: Authy deletes for real about a day later and tokens keep
/// verifying meanwhile (docs/authy-api.md §3), so `status` then shows `account_disabled: true`.
fn user_remove(store: &mut Store, id: &str, legacy_delete_path: bool) -> Response {
    let Some(uid) = lookup(store, id).map(|u| u.id) else {
        return user_not_found();
    };
    if let Some(u) = store.users.get_mut(&uid) {
        u.account_disabled = true;
    }
    store.persist();
    let message = if legacy_delete_path { "User removed from application" } else { "User was added to remove." };
    reply(200, J::obj([("message", J::s(message)), ("success", J::Bool(true))]))
}

// ----------------------------------------------------------------------------- sms / call --

/// 503 for a disabled add-on. The only recorded body (docs/authy-api.md §4, 2013) puts `success`
/// first, then `message`, then `errors`; the boolean `false` and the trailing `error_code`
/// (60007/60006, inferred from the Java enum) follow every post-2016 error body.
fn addon_disabled(code: &str, message: &str, short: &str) -> Response {
    reply(
        503,
        J::obj([
            ("success", J::Bool(false)),
            ("message", J::s(message)),
            ("errors", J::obj([("message", J::s(short))])),
            ("error_code", J::s(code)),
        ]),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    Sms,
    Call,
}

fn send_code(store: &mut Store, shared: &Shared, id: &str, params: &Params, channel: Channel) -> Response {
    let Some(user) = lookup(store, id).cloned() else {
        return user_not_found();
    };
    match channel {
        Channel::Sms if !store.sms_enabled => {
            return addon_disabled(
                "60007",
                "The text-message addon is not enabled for this app. Upgrade at least to Starter Plan to use SMS, see https://www.authy.com/pricing",
                "The text-message addon is not enabled for this app.",
            );
        }
        Channel::Call if !store.calls_enabled => {
            return addon_disabled(
                "60006",
                "The calls add-on is not enabled on this App. To enable please contact support@authy.com",
                "The calls add-on is not enabled on this App.",
            );
        }
        _ => {}
    }
    let cellphone = mask_sent_phone(&user);
    if user.has_app && !flag(params, "force") {
        // App users get a push instead; the text (double space included) is copied from two
        // independent client mocks.
        let message = match channel {
            Channel::Sms => {
                "Ignored: SMS is not needed for smartphones. Pass force=true if you want to actually send it anyway."
            }
            Channel::Call => {
                "Call ignored. User is using  App Tokens and this call is not necessary. Pass force=true if you still want to call users that are using the App."
            }
        };
        return reply(
            200,
            J::obj([
                ("success", J::Bool(true)),
                ("ignored", J::Bool(true)),
                ("device", J::s(device_type(&user))),
                ("cellphone", J::s(cellphone)),
                ("message", J::s(message)),
            ]),
        );
    }
    // "Sending" means putting the user's current TOTP in the outbox, where the control
    // interface shows it; tests usually read it with `current_token` instead.
    let code = shared.otp.token_at(&user.secret, shared.now());
    let message = match channel {
        Channel::Sms => {
            store.stats.sms += 1;
            "SMS token was sent"
        }
        Channel::Call => {
            store.stats.calls += 1;
            "Call started..."
        }
    };
    store.send(SentCode {
        authy_id: user.id,
        channel: match channel {
            Channel::Sms => "sms",
            Channel::Call => "call",
        },
        to: format!("+{}{}", user.country_code, user.cellphone),
        code,
    });
    reply(200, J::obj([("success", J::Bool(true)), ("message", J::s(message)), ("cellphone", J::s(cellphone))]))
}

// --------------------------------------------------------------------------------- verify --

fn token_invalid(code: &str, message: &str) -> Response {
    reply(
        401,
        J::obj([
            ("message", J::s(message)),
            ("token", J::s("is invalid")),
            ("success", J::Bool(false)),
            ("errors", J::obj([("message", J::s(message))])),
            ("error_code", J::s(code)),
        ]),
    )
}

fn token_valid(user: &User) -> Response {
    // `success` is the STRING "true" here, unlike every other endpoint (docs/authy-api.md §5).
    reply(
        200,
        J::obj([
            ("message", J::s("Token is valid.")),
            ("token", J::s("is valid")),
            ("success", J::s("true")),
            (
                "device",
                J::obj([
                    ("id", J::Null),
                    ("os_type", J::s(device_type(user))),
                    ("registration_date", J::u(user.created_at)),
                    ("registration_method", J::Null),
                    ("registration_country", J::Null),
                    ("registration_region", J::Null),
                    ("registration_city", J::Null),
                    ("country", J::Null),
                    ("region", J::Null),
                    ("city", J::Null),
                    ("ip", J::Null),
                    ("last_account_recovery_at", J::u(user.created_at)),
                    ("last_sync_date", J::Null),
                ]),
            ),
        ]),
    )
}

fn verify(store: &mut Store, shared: &Shared, token: &str, id: &str, params: &Params) -> Response {
    let Some(user) = lookup(store, id).cloned() else {
        return user_not_found();
    };
    let all_digits = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    // Documented legacy behaviour: without force=true, a user who has not finished
    // registration is let in with any code, to avoid lock-outs. Modules must send force=true.
    if !flag(params, "force") && !user.registered && all_digits {
        return token_valid(&user);
    }
    let now = shared.now();
    let Some(step) = shared.otp.matching_step(&user.secret, token, now) else {
        return token_invalid("60020", "Token is invalid");
    };
    if user.used_steps.contains(&step) {
        return token_invalid("60019", "Token is invalid. Token was used recently.");
    }
    let current = shared.otp.step(now);
    if let Some(u) = store.users.get_mut(&user.id) {
        // Steps older than the window can never match again; forget them.
        u.used_steps.retain(|s| s.saturating_add(2) >= current);
        u.used_steps.push(step);
        u.confirmed = true;
    }
    store.stats.auths += 1;
    store.persist();
    token_valid(&user)
}

// ------------------------------------------------------------------------------- onetouch --

fn approval_create(store: &mut Store, id: &str, params: &Params) -> Response {
    let Some(uid) = lookup(store, id).map(|u| u.id) else {
        return user_not_found();
    };
    let message = params.get("message").unwrap_or("").trim().to_owned();
    if message.is_empty() {
        return error(400, "60004", "Invalid parameter: message is required");
    }
    let seconds_to_expire = match params.get("seconds_to_expire").map(str::trim) {
        None | Some("") => 86_400,
        Some(s) => match s.parse::<u64>() {
            Ok(n) => n,
            Err(_) => return error(400, "60004", "Invalid parameter: seconds_to_expire"),
        },
    };
    let uuid =
        store.create_approval(uid, message, params.hash("details"), params.hash("hidden_details"), seconds_to_expire);
    reply(200, J::obj([("approval_request", J::obj([("uuid", J::s(uuid))])), ("success", J::Bool(true))]))
}

/// The fixed application id of the sandbox app, Mongo-style like Authy's.
const APP_OBJECT_ID: &str = "5a1d2c3b4e5f60718293a4b5";

fn approval_status(store: &mut Store, uuid: &str) -> Response {
    let Some(a) = store.poll_approval(uuid) else {
        let msg = format!("Approval request not found: {uuid}");
        return reply(
            404,
            J::obj([
                ("message", J::s(msg)),
                ("success", J::Bool(false)),
                ("errors", J::Obj(Vec::new())),
                ("error_code", J::s("60049")),
            ]),
        );
    };
    let email = store.users.get(&a.record.authy_id).and_then(|u| u.emails.first().cloned());
    let processed = a.decided_unix.map(rfc3339);
    let updated = processed.clone().unwrap_or_else(|| rfc3339(a.created_unix));
    reply(
        200,
        J::obj([
            (
                "approval_request",
                J::obj([
                    ("_app_name", J::s("authy-sandbox")),
                    ("_app_serial_id", J::Int(1)),
                    ("_authy_id", J::u(a.record.authy_id)),
                    ("_id", J::s(a.object_id.clone())),
                    ("_user_email", J::opt_s(email)),
                    ("app_id", J::s(APP_OBJECT_ID)),
                    ("created_at", J::s(rfc3339(a.created_unix))),
                    ("updated_at", J::s(updated)),
                    ("processed_at", J::opt_s(processed)),
                    ("notified", J::Bool(false)),
                    ("seconds_to_expire", J::u(a.record.seconds_to_expire)),
                    ("status", J::s(a.record.status.as_str())),
                    ("user_id", J::s(format!("{:024x}", a.record.authy_id))),
                    ("uuid", J::s(a.record.uuid.clone())),
                ]),
            ),
            ("success", J::Bool(true)),
        ]),
    )
}

// ------------------------------------------------------------------------------------ app --

/// The sandbox app's numeric id.
const APP_ID: u64 = 1234;

fn app_details(store: &Store) -> Response {
    reply(
        200,
        J::obj([
            (
                "app",
                J::obj([
                    ("name", J::s("Authy Sandbox")),
                    ("plan", J::s("pay_as_you_go")),
                    ("sms_enabled", J::Bool(store.sms_enabled)),
                    ("phone_calls_enabled", J::Bool(store.calls_enabled)),
                    ("app_id", J::u(APP_ID)),
                    ("onetouch_enabled", J::Bool(true)),
                ]),
            ),
            ("message", J::s("Application information.")),
            ("success", J::Bool(true)),
        ]),
    )
}

fn app_stats(store: &Store) -> Response {
    let (year, month, _, _) = civil_from_unix(now_unix());
    let users = store.users.len() as u64;
    reply(
        200,
        J::obj([
            ("message", J::s("Monthly statistics.")),
            ("count", J::Int(1)),
            ("app_id", J::u(APP_ID)),
            ("total_users", J::u(users)),
            ("success", J::Bool(true)),
            (
                "stats",
                J::Arr(vec![J::obj([
                    ("month", J::s(month_name(month))),
                    ("year", J::Int(i64::from(year))),
                    ("sms_count", J::u(store.stats.sms)),
                    ("calls_count", J::u(store.stats.calls)),
                    ("users_count", J::u(users)),
                    ("auths_count", J::u(store.stats.auths)),
                    ("api_calls_count", J::u(store.stats.api_calls)),
                ])]),
            ),
        ]),
    )
}

/// Details of an approval as the control interface lists them.
pub(crate) fn details_json(map: &BTreeMap<String, String>) -> serde_json::Value {
    serde_json::Value::Object(map.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_the_documented_paths() {
        assert_eq!(route("POST", "/protected/json/users/new"), Route::UsersNew);
        assert_eq!(
            route("GET", "/protected/json/verify/1234567/42"),
            Route::Verify { token: "1234567".into(), id: "42".into() }
        );
        assert_eq!(
            route("GET", "/protected/json/verify/%2e%2e%2fsms/42"),
            Route::Verify { token: "../sms".into(), id: "42".into() }
        );
        assert_eq!(route("POST", "/protected/json/users/delete/9"), Route::UserRemove("9".into(), true));
        assert_eq!(route("POST", "/protected/json/users/9/delete"), Route::UserRemove("9".into(), false));
        assert_eq!(route("GET", "/protected/xml/app/details"), Route::NotFound);
        assert_eq!(route("POST", "/protected/json/sms/1"), Route::NotFound);
        assert_eq!(route("GET", "/protected/json/sms/1/"), Route::NotFound);
        assert_eq!(route("GET", "*"), Route::NotFound);
        assert_eq!(route("HEAD", "/protected/json/app/details"), Route::AppDetails);
    }

    #[test]
    fn phone_masks_match_the_documented_shapes() {
        let u = User {
            id: 1,
            emails: vec![],
            cellphone: "5551231185".into(),
            country_code: 1,
            has_app: true,
            registered: true,
            confirmed: false,
            account_disabled: false,
            secret: vec![],
            created_at: 0,
            used_steps: vec![],
        };
        assert_eq!(mask_sent_phone(&u), "+1-XXX-XXX-XX85");
        assert_eq!(mask_status_phone(&u.cellphone), "XXX-XXX-1185");
    }

    #[test]
    fn field_validation() {
        assert!(valid_email("a.b@example.com"));
        assert!(!valid_email("a@b"));
        assert!(!valid_email("a b@c.d"));
        assert_eq!(normalize_cellphone("555-123.45 67"), Some("5551234567".into()));
        assert_eq!(normalize_cellphone("55a1234567"), None);
        assert_eq!(parse_country_code("+44"), Some(44));
        assert_eq!(parse_country_code("0"), None);
    }

    #[test]
    fn routing_and_parsing_survive_random_input() {
        // xorshift64*: reproducible noise without a dependency.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        let alphabet: Vec<char> = "/.%2eEfF+&=[]{}\"é\u{0}09azAZ?#".chars().collect();
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let s: String = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            let norm = normalize_dot_segments(&s);
            assert!(norm.starts_with('/'));
            let _ = route("GET", &norm);
            let _ = route("POST", &s);
            let _ = parse_form(&s);
            let _ = Params::from_parts(&[], Some("application/json"), s.as_bytes());
            let _ = Params::from_parts(&[], None, s.as_bytes()).map(|p| p.hash("details"));
            let _ = mask_status_phone(&s);
        }
    }

    #[test]
    fn fault_bodies() {
        let r = fault_response(&Fault::Status(429)).expect("response");
        assert_eq!(r.status, 429);
        assert_eq!(
            String::from_utf8_lossy(&r.body),
            r#"{"message":"DoS protection","success":false,"errors":{"message":"DoS protection"},"error_code":"60003"}"#
        );
        let r = fault_response(&Fault::InvalidJson).expect("response");
        assert!(serde_json::from_slice::<serde_json::Value>(&r.body).is_err());
        assert!(fault_response(&Fault::Hang).is_none());
    }
}
