//! The Verify v2 endpoints over real HTTPS: authentication, every endpoint's statuses, body
//! fields and error codes, and the lifecycle limits (expiry, attempt, send and creation limits).

mod common;

use authy_sandbox::{PushStatus, Sandbox, SandboxConfig, TotpAlg, TotpFactorSpec};
use common::*;
use serde_json::Value;

const T: u64 = 1_800_000_015;
const IDENTITY: &str = "2f0c9a3e-5b7d-4e61-a8c0-f1e2d3c4b5a6";
const PHONE: &str = "+15017122661";

fn service_path(sb: &Sandbox) -> String {
    format!("/v2/Services/{}", sb.verify_account().service_sid)
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The object's field names, sorted (serde_json's map sorts them anyway).
fn keys(v: &Value) -> Vec<&str> {
    v.as_object().expect("object").keys().map(String::as_str).collect()
}

fn assert_fields(v: &Value, expected: &[&str]) {
    let mut want = expected.to_vec();
    want.sort_unstable();
    assert_eq!(keys(v), want);
}

fn assert_error(r: &Resp, status: u16, code: u64) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(
        r.body,
        format!(
            r#"{{"code":{code},"message":{},"more_info":"https://www.twilio.com/docs/errors/{code}","status":{status}}}"#,
            serde_json::to_string(r.json()["message"].as_str().expect("message")).expect("json")
        )
    );
}

fn assert_sid(v: &Value, prefix: &str) {
    let s = v.as_str().unwrap_or_else(|| panic!("{v} is not a string"));
    assert_eq!(s.len(), 34, "{s}");
    assert!(s.starts_with(prefix) && s[2..].bytes().all(|b| b.is_ascii_hexdigit()), "{s}");
}

fn assert_date(v: &Value) {
    let s = v.as_str().unwrap_or_else(|| panic!("{v} is not a date"));
    assert_eq!(s.len(), 20, "{s}");
    assert!(s.ends_with('Z') && &s[10..11] == "T", "{s}");
}

fn started() -> Sandbox {
    let sb = Sandbox::start(SandboxConfig::default()).expect("start");
    sb.set_clock(Some(T));
    sb
}

/// A TOTP code for `secret` (base32) computed independently of the sandbox.
fn totp_code(secret_b32: &str, alg: totp_rs::Algorithm, digits: u8, step: u64, at: u64) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret_b32).expect("base32");
    totp_rs::Builder::new()
        .with_algorithm(alg)
        .with_digits(digits)
        .with_step_duration(step)
        .with_secret(secret.as_bytes().to_vec())
        .build_noncompliant()
        .generate(at)
        .to_string()
}

fn wrong(code: &str) -> String {
    code.chars().map(|c| char::from(b'0' + ((c as u8 - b'0' + 1) % 10))).collect()
}

#[test]
fn basic_auth_is_required_and_checked() {
    let sb = started();
    let path = service_path(&sb);
    let a = sb.verify_account();
    for auth in [
        None,
        Some((a.account_sid.as_str(), "wrong")),
        Some((a.api_key_sid.as_str(), a.auth_token.as_str())),
        Some(("SK0123456789abcdef0123456789abcdef", a.api_key_secret.as_str())),
        Some(("nobody", "x")),
    ] {
        let r = verify_send(&sb, "GET", &path, auth, None);
        assert_eq!(r.status, 401, "{auth:?}");
        assert_eq!(
            r.body,
            r#"{"code":20003,"message":"Authenticate","more_info":"https://www.twilio.com/docs/errors/20003","status":401}"#
        );
        assert!(r.header("www-authenticate").is_some_and(|h| h.starts_with("Basic")));
    }
    // The Authy API key opens nothing here; unknown paths are 401 before 404.
    assert_eq!(send(&sb, "GET", &path, Some(sb.api_key()), None).status, 401);
    assert_eq!(verify_send(&sb, "GET", "/v2/Nothing", None, None).status, 401);
    // Both kinds of credentials work.
    assert_eq!(verify_send(&sb, "GET", &path, Some((&a.account_sid, &a.auth_token)), None).status, 200);
    assert_eq!(verify_send(&sb, "GET", &path, Some((&a.api_key_sid, &a.api_key_secret)), None).status, 200);
    let (sid, secret) = sb.verify_create_api_key().expect("key");
    assert_eq!(verify_send(&sb, "GET", &path, Some((&sid, &secret)), None).status, 200);
    // The request log names the SID, never the secret.
    let logged = sb.requests();
    assert!(logged.iter().any(|r| r.api_key.as_deref() == Some(sid.as_str())));
    assert!(!logged.iter().any(|r| r.api_key.as_deref() == Some(secret.as_str())));
}

#[test]
fn unknown_resources_and_methods() {
    let sb = started();
    let r = verify_get(&sb, "/v2/Services/VA00000000000000000000000000000000");
    assert_error(&r, 404, 20404);
    assert_eq!(
        r.json()["message"],
        "The requested resource /Services/VA00000000000000000000000000000000 was not found"
    );
    assert_error(&verify_get(&sb, "/v2/Elsewhere"), 404, 20404);
    assert_error(&verify_get(&sb, &format!("{}/Nope", service_path(&sb))), 404, 20404);
    assert_error(&verify_delete(&sb, &format!("{}/VerificationCheck", service_path(&sb))), 405, 20004);
}

#[test]
fn services_fetch_create_and_list() {
    let sb = started();
    let r = verify_get(&sb, &service_path(&sb));
    assert_eq!(r.status, 200);
    let s = r.json();
    assert_fields(
        &s,
        &[
            "sid",
            "account_sid",
            "friendly_name",
            "code_length",
            "lookup_enabled",
            "psd2_enabled",
            "skip_sms_to_landlines",
            "dtmf_input_required",
            "tts_name",
            "do_not_share_warning_enabled",
            "custom_code_enabled",
            "push",
            "totp",
            "whatsapp",
            "default_template_sid",
            "verify_event_subscription_enabled",
            "date_created",
            "date_updated",
            "url",
            "links",
        ],
    );
    assert_sid(&s["sid"], "VA");
    assert_sid(&s["account_sid"], "AC");
    assert_eq!(s["code_length"], 6);
    assert_eq!(s["totp"]["time_step"], 30);
    assert_eq!(s["totp"]["skew"], 1);
    assert!(s["tts_name"].is_null());
    assert_date(&s["date_created"]);

    let r = verify_post(&sb, "/v2/Services", "FriendlyName=Login&CodeLength=8&Totp.TimeStep=60&Totp.Skew=0");
    assert_eq!(r.status, 201, "{}", r.body);
    let created = r.json();
    assert_eq!(created["code_length"], 8);
    assert_eq!(created["totp"]["time_step"], 60);
    assert_eq!(created["totp"]["issuer"], "Login");
    assert_error(&verify_post(&sb, "/v2/Services", "CodeLength=6"), 400, 60200);
    assert_error(&verify_post(&sb, "/v2/Services", "FriendlyName=x&CodeLength=3"), 400, 60200);
    // Case-exact names: `friendlyname` is not `FriendlyName`.
    assert_error(&verify_post(&sb, "/v2/Services", "friendlyname=x"), 400, 60200);
    let list = verify_get(&sb, "/v2/Services?PageSize=1").json();
    assert_eq!(list["services"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["meta"]["key"], "services");
    assert!(list["meta"]["next_page_url"].is_string());
    assert!(list["meta"]["previous_page_url"].is_null());
}

fn start_sms(sb: &Sandbox, channel: &str) -> Value {
    let r = verify_post(
        sb,
        &format!("{}/Verifications", service_path(sb)),
        &format!("To={}&Channel={channel}", enc(PHONE)),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()
}

fn check(sb: &Sandbox, form: &str) -> Resp {
    verify_post(sb, &format!("{}/VerificationCheck", service_path(sb)), form)
}

#[test]
fn verification_create_check_and_soft_delete() {
    let sb = started();
    let v = start_sms(&sb, "sms");
    assert_fields(
        &v,
        &[
            "sid",
            "service_sid",
            "account_sid",
            "to",
            "channel",
            "status",
            "valid",
            "lookup",
            "amount",
            "payee",
            "send_code_attempts",
            "date_created",
            "date_updated",
            "sna",
            "url",
        ],
    );
    assert_sid(&v["sid"], "VE");
    assert_eq!(v["status"], "pending");
    assert_eq!(v["valid"], false);
    assert_eq!(v["to"], PHONE);
    assert_eq!(v["channel"], "sms");
    assert!(v["amount"].is_null() && v["sna"].is_null());
    assert_eq!(v["date_created"], "2027-01-15T08:00:15Z");
    assert_sid(&v["send_code_attempts"][0]["attempt_sid"], "VL");
    let sid = v["sid"].as_str().expect("sid").to_owned();
    let code = sb.verify_code(&sid).expect("code sent");
    assert_eq!(code.len(), 6);

    let fetched = verify_get(&sb, &format!("{}/Verifications/{sid}", service_path(&sb)));
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.json()["sid"], sid.as_str());

    let r = check(&sb, &format!("VerificationSid={sid}&Code={}", wrong(&code)));
    assert_eq!(r.status, 201, "{}", r.body);
    let c = r.json();
    assert_fields(
        &c,
        &[
            "sid",
            "service_sid",
            "account_sid",
            "to",
            "channel",
            "status",
            "valid",
            "amount",
            "payee",
            "sna_attempts_error_codes",
            "date_created",
            "date_updated",
        ],
    );
    assert_eq!((c["status"].as_str(), c["valid"].as_bool()), (Some("pending"), Some(false)));
    let r = check(&sb, &format!("VerificationSid={sid}&Code={code}"));
    assert_eq!(r.status, 201);
    assert_eq!((r.json()["status"].as_str(), r.json()["valid"].as_bool()), (Some("approved"), Some(true)));
    assert_eq!(r.json()["sid"], sid.as_str());
    // Approved means gone: the same code again, or a fetch, is 404 20404.
    let r = check(&sb, &format!("VerificationSid={sid}&Code={code}"));
    assert_error(&r, 404, 20404);
    assert_eq!(
        r.json()["message"],
        format!("The requested resource /Services/{}/VerificationCheck was not found", sb.verify_account().service_sid)
    );
    assert_error(&verify_get(&sb, &format!("{}/Verifications/{sid}", service_path(&sb))), 404, 20404);
}

#[test]
fn checks_by_to_and_the_switchable_200() {
    let sb = started();
    start_sms(&sb, "call");
    let code = sb.verify_sent_codes()[0].code.clone();
    assert!(sb.set_verification_check_status(200));
    assert!(!sb.set_verification_check_status(202));
    let r = check(&sb, &format!("To={}&Code={code}", enc(PHONE)));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["status"], "approved");
    assert_eq!(r.json()["channel"], "call");
    assert_error(&check(&sb, &format!("To={}&Code={code}", enc(PHONE))), 404, 20404);
}

#[test]
fn resends_keep_the_code_and_the_sixth_send_is_refused() {
    let sb = started();
    let first = start_sms(&sb, "sms");
    for n in 2..=5 {
        let again = start_sms(&sb, if n == 3 { "call" } else { "sms" });
        assert_eq!(again["sid"], first["sid"]);
        assert_eq!(again["send_code_attempts"].as_array().map(Vec::len), Some(n));
    }
    let sent = sb.verify_sent_codes();
    assert_eq!((sent.len(), sent[0].sends), (1, 5));
    let r =
        verify_post(&sb, &format!("{}/Verifications", service_path(&sb)), &format!("To={}&Channel=sms", enc(PHONE)));
    assert_error(&r, 429, 60203);
    assert_eq!(sb.verify_stats().sends, 5);
}

#[test]
fn the_sixth_check_is_refused_then_the_verification_is_gone() {
    let sb = started();
    let sid = start_sms(&sb, "sms")["sid"].as_str().expect("sid").to_owned();
    let code = sb.verify_code(&sid).expect("code");
    for _ in 0..5 {
        let r = check(&sb, &format!("VerificationSid={sid}&Code={}", wrong(&code)));
        assert_eq!(r.json()["status"], "pending");
    }
    assert_error(&check(&sb, &format!("VerificationSid={sid}&Code={code}")), 429, 60202);
    assert_error(&check(&sb, &format!("VerificationSid={sid}&Code={code}")), 404, 20404);
    assert_eq!(sb.verify_sent_codes()[0].status, "max_attempts_reached");
}

#[test]
fn verifications_expire_after_ten_minutes() {
    let sb = started();
    let sid = start_sms(&sb, "sms")["sid"].as_str().expect("sid").to_owned();
    let code = sb.verify_code(&sid).expect("code");
    sb.advance_clock(599);
    assert_eq!(verify_get(&sb, &format!("{}/Verifications/{sid}", service_path(&sb))).status, 200);
    sb.advance_clock(1);
    assert_error(&check(&sb, &format!("VerificationSid={sid}&Code={code}")), 404, 20404);
    assert_error(&verify_get(&sb, &format!("{}/Verifications/{sid}", service_path(&sb))), 404, 20404);
    // A new send after expiry is a new verification with a new SID.
    assert_ne!(start_sms(&sb, "sms")["sid"], sid.as_str());
}

#[test]
fn verifications_can_be_canceled_or_approved_by_update() {
    let sb = started();
    let path = |sid: &str| format!("{}/Verifications/{sid}", service_path(&sb));
    let sid = start_sms(&sb, "sms")["sid"].as_str().expect("sid").to_owned();
    assert_error(&verify_post(&sb, &path(&sid), "Status=done"), 400, 60200);
    let r = verify_post(&sb, &path(&sid), "Status=canceled");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "canceled");
    assert_error(&check(&sb, &format!("VerificationSid={sid}&Code=123456")), 404, 20404);
    assert_error(&verify_post(&sb, &path(&sid), "Status=canceled"), 404, 20404);
    let sid = start_sms(&sb, "sms")["sid"].as_str().expect("sid").to_owned();
    let r = verify_post(&sb, &path(&sid), "Status=approved");
    assert_eq!((r.json()["status"].as_str(), r.json()["valid"].as_bool()), (Some("approved"), Some(true)));
}

#[test]
fn verification_parameters_are_validated() {
    let sb = started();
    let create = |form: &str| verify_post(&sb, &format!("{}/Verifications", service_path(&sb)), form);
    for form in
        ["Channel=sms", "To=15017122661&Channel=sms", "To=%2B1501712266a&Channel=sms", "to=%2B15017122661&channel=sms"]
    {
        let r = create(form);
        assert_error(&r, 400, 60200);
        assert_eq!(r.json()["message"], "Invalid parameter: To", "{form}");
    }
    for form in ["To=%2B15017122661", "To=%2B15017122661&Channel=SMS", "To=%2B15017122661&Channel=pigeon"] {
        let r = create(form);
        assert_error(&r, 400, 60200);
        assert_eq!(r.json()["message"], "Invalid parameter: Channel", "{form}");
    }
    let sid = start_sms(&sb, "sms")["sid"].as_str().expect("sid").to_owned();
    assert_error(&check(&sb, "Code=123456"), 400, 60221);
    assert_eq!(check(&sb, "Code=123456").json()["message"], "No target verification specified");
    assert_error(&check(&sb, &format!("VerificationSid={sid}&Code=123")), 400, 60200);
    assert_error(&check(&sb, &format!("VerificationSid={sid}&Code=12345678901")), 400, 60200);
    assert_error(&check(&sb, &format!("VerificationSid={sid}")), 400, 60200);
    assert_error(&check(&sb, "VerificationSid=VE123&Code=123456"), 400, 60200);
    assert_error(&check(&sb, "To=12345&Code=123456"), 400, 60200);
    // A well-formed but unknown target is simply not found.
    assert_error(&check(&sb, "VerificationSid=VE00000000000000000000000000000000&Code=123456"), 404, 20404);
    assert_error(&check(&sb, "To=%2B4915112345678&Code=123456"), 404, 20404);
    // Another service never sees this verification.
    let other = sb.verify_create_service("Other");
    let r = verify_post(
        &sb,
        &format!("/v2/Services/{other}/VerificationCheck"),
        &format!("VerificationSid={sid}&Code=123456"),
    );
    assert_error(&r, 404, 20404);
}

fn entity_path(sb: &Sandbox, identity: &str) -> String {
    format!("{}/Entities/{identity}", service_path(sb))
}

#[test]
fn entities_create_fetch_list_delete() {
    let sb = started();
    let r = verify_post(&sb, &format!("{}/Entities", service_path(&sb)), &format!("Identity={IDENTITY}"));
    assert_eq!(r.status, 201, "{}", r.body);
    let e = r.json();
    assert_fields(
        &e,
        &["sid", "identity", "account_sid", "service_sid", "date_created", "date_updated", "url", "links"],
    );
    assert_sid(&e["sid"], "YE");
    assert_eq!(e["identity"], IDENTITY);
    assert_error(
        &verify_post(&sb, &format!("{}/Entities", service_path(&sb)), &format!("Identity={IDENTITY}")),
        409,
        60301,
    );
    for bad in ["short", "alice%40example.com", "a--bbbbbbbb", ""] {
        assert_error(
            &verify_post(&sb, &format!("{}/Entities", service_path(&sb)), &format!("Identity={bad}")),
            400,
            60306,
        );
    }
    let fetched = verify_get(&sb, &entity_path(&sb, IDENTITY));
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.json()["sid"], e["sid"]);
    assert_eq!(
        verify_get(&sb, &format!("{}/Entities", service_path(&sb))).json()["entities"].as_array().map(Vec::len),
        Some(1)
    );
    let r = verify_delete(&sb, &entity_path(&sb, IDENTITY));
    assert_eq!((r.status, r.body.as_str()), (204, ""));
    assert_error(&verify_get(&sb, &entity_path(&sb, IDENTITY)), 404, 20404);
    assert_error(&verify_delete(&sb, &entity_path(&sb, IDENTITY)), 404, 20404);
}

fn create_factor(sb: &Sandbox, extra: &str) -> Value {
    let r = verify_post(
        sb,
        &format!("{}/Factors", entity_path(sb, IDENTITY)),
        &format!("FriendlyName=alice%27s+phone&FactorType=totp{extra}"),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()
}

#[test]
fn totp_factor_enrolment_with_the_real_secret() {
    let sb = started();
    let f = create_factor(&sb, "");
    assert_fields(
        &f,
        &[
            "sid",
            "account_sid",
            "service_sid",
            "entity_sid",
            "identity",
            "binding",
            "options",
            "date_created",
            "date_updated",
            "friendly_name",
            "status",
            "factor_type",
            "config",
            "metadata",
            "url",
        ],
    );
    assert_sid(&f["sid"], "YF");
    assert_sid(&f["entity_sid"], "YE");
    assert_eq!(f["status"], "unverified");
    assert_eq!(f["config"], serde_json::json!({"alg":"sha1","skew":1,"code_length":6,"time_step":30}));
    let secret = f["binding"]["secret"].as_str().expect("secret").to_owned();
    let uri = f["binding"]["uri"].as_str().expect("uri");
    assert!(uri.starts_with("otpauth://totp/pam_authy%20sandbox:alice%27s%20phone?secret="), "{uri}");
    assert!(uri.ends_with("&issuer=pam_authy%20sandbox&algorithm=SHA1&digits=6&period=30"), "{uri}");
    let sid = f["sid"].as_str().expect("sid").to_owned();
    let path = format!("{}/Factors/{sid}", entity_path(&sb, IDENTITY));

    // The binding is only in the create reply.
    let fetched = verify_get(&sb, &path).json();
    assert!(fetched.get("binding").is_none());
    assert_eq!(keys(&fetched).len(), 13);

    let code = totp_code(&secret, totp_rs::Algorithm::SHA1, 6, 30, T);
    let r = verify_post(&sb, &path, &format!("AuthPayload={}", wrong(&code)));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "unverified");
    // One step back is inside skew 1.
    let r = verify_post(
        &sb,
        &path,
        &format!("AuthPayload={}", totp_code(&secret, totp_rs::Algorithm::SHA1, 6, 30, T - 30)),
    );
    assert_eq!(r.json()["status"], "verified");
    let list = verify_get(&sb, &format!("{}/Factors", entity_path(&sb, IDENTITY))).json();
    assert_eq!(list["factors"][0]["status"], "verified");
    assert_eq!(list["meta"]["key"], "factors");
    assert_eq!(verify_delete(&sb, &path).status, 204);
    assert_error(&verify_get(&sb, &path), 404, 20404);
}

#[test]
fn factor_config_is_honoured_and_validated() {
    let sb = started();
    let f = create_factor(
        &sb,
        "&Config.Alg=sha256&Config.CodeLength=8&Config.TimeStep=60&Config.Skew=0&Binding.Secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
    );
    assert_eq!(f["binding"]["secret"], "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    assert!(f["binding"]["uri"].as_str().expect("uri").ends_with("algorithm=SHA256&digits=8&period=60"));
    let path = format!("{}/Factors/{}", entity_path(&sb, IDENTITY), f["sid"].as_str().expect("sid"));
    let at = |t| totp_code("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", totp_rs::Algorithm::SHA256, 8, 60, t);
    // Skew 0: the previous step is refused.
    assert_eq!(verify_post(&sb, &path, &format!("AuthPayload={}", at(T - 60))).json()["status"], "unverified");
    assert_eq!(verify_post(&sb, &path, &format!("AuthPayload={}", at(T))).json()["status"], "verified");
    // Same binding twice.
    let r = verify_post(
        &sb,
        &format!("{}/Factors", entity_path(&sb, IDENTITY)),
        "FriendlyName=x&FactorType=totp&Binding.Secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
    );
    assert_error(&r, 409, 60317);
    for extra in
        ["&Config.Alg=md5", "&Config.CodeLength=9", "&Config.TimeStep=10", "&Config.Skew=3", "&Binding.Secret=%21%21"]
    {
        let r = verify_post(
            &sb,
            &format!("{}/Factors", entity_path(&sb, IDENTITY)),
            &format!("FriendlyName=x&FactorType=totp{extra}"),
        );
        assert_error(&r, 400, 60200);
    }
    for form in
        ["FactorType=totp", "FriendlyName=x", "FriendlyName=x&FactorType=push", "FriendlyName=x&FactorType=TOTP"]
    {
        assert_error(&verify_post(&sb, &format!("{}/Factors", entity_path(&sb, IDENTITY)), form), 400, 60200);
    }
    assert_error(
        &verify_post(&sb, &format!("{}/Factors", entity_path(&sb, "bad")), "FriendlyName=x&FactorType=totp"),
        400,
        60306,
    );
}

#[test]
fn five_wrong_enrolment_codes_then_60310() {
    let sb = started();
    let f = create_factor(&sb, "");
    let secret = f["binding"]["secret"].as_str().expect("secret");
    let path = format!("{}/Factors/{}", entity_path(&sb, IDENTITY), f["sid"].as_str().expect("sid"));
    let code = totp_code(secret, totp_rs::Algorithm::SHA1, 6, 30, T);
    for _ in 0..5 {
        assert_eq!(verify_post(&sb, &path, &format!("AuthPayload={}", wrong(&code))).json()["status"], "unverified");
    }
    assert_error(&verify_post(&sb, &path, &format!("AuthPayload={code}")), 429, 60310);
    assert_eq!(sb.verify_stats().factor_verifications, 5);
}

fn challenges(sb: &Sandbox) -> String {
    format!("{}/Challenges", entity_path(sb, IDENTITY))
}

#[test]
fn totp_challenges_approve_on_the_right_code_only() {
    let sb = started();
    let service = sb.verify_account().service_sid;
    let unverified = sb
        .verify_add_totp_factor(&service, IDENTITY, &TotpFactorSpec { verified: false, ..TotpFactorSpec::default() })
        .expect("factor");
    assert_error(
        &verify_post(&sb, &challenges(&sb), &format!("FactorSid={}&AuthPayload=123456", unverified.sid)),
        403,
        60318,
    );
    let f = sb.verify_add_totp_factor(&service, IDENTITY, &TotpFactorSpec::default()).expect("factor");
    let code = sb.verify_current_code(&f.sid).expect("code");
    assert_eq!(code, totp_code(&f.secret_base32, totp_rs::Algorithm::SHA1, 6, 30, T));

    let r = verify_post(&sb, &challenges(&sb), &format!("FactorSid={}&AuthPayload={code}", f.sid));
    assert_eq!(r.status, 201, "{}", r.body);
    let c = r.json();
    assert_fields(
        &c,
        &[
            "sid",
            "account_sid",
            "service_sid",
            "entity_sid",
            "identity",
            "factor_sid",
            "date_created",
            "date_updated",
            "date_responded",
            "expiration_date",
            "status",
            "responded_reason",
            "details",
            "hidden_details",
            "metadata",
            "factor_type",
            "url",
            "links",
        ],
    );
    assert_sid(&c["sid"], "YC");
    assert_eq!(c["status"], "approved");
    assert_eq!(c["factor_sid"], f.sid.as_str());
    assert_eq!(c["factor_type"], "totp");
    assert_eq!(c["identity"], IDENTITY);
    assert_date(&c["date_responded"]);
    assert_eq!(c["expiration_date"], "2027-01-15T08:05:15Z");
    // The sandbox, like the API as far as anyone documents, does not refuse a replayed code.
    let r = verify_post(&sb, &challenges(&sb), &format!("FactorSid={}&AuthPayload={code}", f.sid));
    assert_eq!(r.json()["status"], "approved");

    let r = verify_post(&sb, &challenges(&sb), &format!("FactorSid={}&AuthPayload={}", f.sid, wrong(&code)));
    assert_eq!(r.status, 201);
    let c = r.json();
    assert_eq!(c["status"], "pending");
    assert!(c["date_responded"].is_null());
    let path = format!("{}/{}", challenges(&sb), c["sid"].as_str().expect("sid"));
    // Answer it by update with the right code, then it is answered for good.
    let r = verify_post(&sb, &path, &format!("AuthPayload={code}"));
    assert_eq!((r.status, r.json()["status"].as_str()), (200, Some("approved")));
    assert_error(&verify_post(&sb, &path, &format!("AuthPayload={code}")), 403, 60322);
    let fetched = verify_get(&sb, &path);
    assert_eq!(fetched.json()["status"], "approved");
    // Parameters.
    assert_error(&verify_post(&sb, &challenges(&sb), "AuthPayload=123456"), 400, 60200);
    assert_error(&verify_post(&sb, &challenges(&sb), &format!("FactorSid={}&AuthPayload=12", f.sid)), 400, 60200);
    assert_error(
        &verify_post(&sb, &challenges(&sb), "FactorSid=YF00000000000000000000000000000000&AuthPayload=123456"),
        404,
        20404,
    );
    // Another entity's factor is not found under this one.
    let other = sb.verify_add_totp_factor(&service, "other-identity-01", &TotpFactorSpec::default()).expect("factor");
    assert_error(
        &verify_post(&sb, &challenges(&sb), &format!("FactorSid={}&AuthPayload=123456", other.sid)),
        404,
        20404,
    );
}

#[test]
fn five_wrong_challenge_codes_then_60308() {
    let sb = started();
    let service = sb.verify_account().service_sid;
    let f = sb.verify_add_totp_factor(&service, IDENTITY, &TotpFactorSpec::default()).expect("factor");
    let code = sb.verify_current_code(&f.sid).expect("code");
    let c = verify_post(&sb, &challenges(&sb), &format!("FactorSid={}&AuthPayload={}", f.sid, wrong(&code))).json();
    let path = format!("{}/{}", challenges(&sb), c["sid"].as_str().expect("sid"));
    for _ in 0..4 {
        assert_eq!(verify_post(&sb, &path, &format!("AuthPayload={}", wrong(&code))).json()["status"], "pending");
    }
    assert_error(&verify_post(&sb, &path, &format!("AuthPayload={code}")), 429, 60308);
    assert_eq!(sb.verify_challenges()[0].wrong_codes, 5);
}

#[test]
fn challenges_expire_and_expiration_date_is_bounded() {
    let sb = started();
    let service = sb.verify_account().service_sid;
    let f = sb.verify_add_totp_factor(&service, IDENTITY, &TotpFactorSpec::default()).expect("factor");
    let c =
        verify_post(&sb, &challenges(&sb), &format!("FactorSid={}&ExpirationDate=2027-01-15T08:01:15Z", f.sid)).json();
    assert_eq!(c["status"], "pending");
    assert_eq!(c["expiration_date"], "2027-01-15T08:01:15Z");
    let path = format!("{}/{}", challenges(&sb), c["sid"].as_str().expect("sid"));
    sb.advance_clock(60);
    assert_eq!(verify_get(&sb, &path).json()["status"], "expired");
    let code = sb.verify_current_code(&f.sid).expect("code");
    assert_error(&verify_post(&sb, &path, &format!("AuthPayload={code}")), 403, 60323);
    for bad in ["2027-01-15T09:01:16Z", "2027-01-15T08:01:15Z", "tomorrow"] {
        let r = verify_post(&sb, &challenges(&sb), &format!("FactorSid={}&ExpirationDate={bad}", f.sid));
        assert_error(&r, 400, 60200);
    }
    let ok =
        verify_post(&sb, &challenges(&sb), &format!("FactorSid={}&ExpirationDate=2027-01-15T10:01:15%2B01:00", f.sid));
    assert_eq!(ok.json()["expiration_date"], "2027-01-15T09:01:15Z");
}

#[test]
fn push_challenges_echo_details_and_follow_the_phone() {
    let sb = started();
    let service = sb.verify_account().service_sid;
    let f = sb.verify_add_push_factor(&service, IDENTITY).expect("push factor");
    let form = format!(
        "FactorSid={}&Details.Message={}&Details.Fields={}&Details.Fields={}&HiddenDetails={}",
        f.sid,
        enc("Login to host1"),
        enc(r#"{"label":"User","value":"alice"}"#),
        enc(r#"{"label":"From","value":"192.0.2.7"}"#),
        enc(r#"{"session":"ab12","tty":"pts/3"}"#),
    );
    let r = verify_post(&sb, &challenges(&sb), &form);
    assert_eq!(r.status, 201, "{}", r.body);
    let c = r.json();
    assert_eq!(c["status"], "pending");
    assert_eq!(c["factor_type"], "push");
    assert_eq!(
        c["details"],
        serde_json::json!({"message":"Login to host1","fields":[{"label":"User","value":"alice"},{"label":"From","value":"192.0.2.7"}]})
    );
    assert_eq!(c["hidden_details"], serde_json::json!({"session":"ab12","tty":"pts/3"}));
    let sid = c["sid"].as_str().expect("sid").to_owned();
    let rec = &sb.verify_challenges()[0];
    assert_eq!(rec.message.as_deref(), Some("Login to host1"));
    assert_eq!(rec.fields[1], ("From".to_owned(), "192.0.2.7".to_owned()));
    assert_eq!(rec.hidden_details.as_deref(), Some(r#"{"session":"ab12","tty":"pts/3"}"#));
    let path = format!("{}/{sid}", challenges(&sb));
    assert_eq!(verify_get(&sb, &path).json()["status"], "pending");
    assert!(sb.verify_decide_challenge(&sid, PushStatus::Approved));
    let r = verify_get(&sb, &path).json();
    assert_eq!(r["status"], "approved");
    assert_date(&r["date_responded"]);
    assert_eq!(sb.verify_challenges()[0].polls, 2);
    // Denied is final too; the server itself cannot answer a push.
    let sid2 = verify_post(&sb, &challenges(&sb), &form).json()["sid"].as_str().expect("sid").to_owned();
    assert_error(&verify_post(&sb, &format!("{}/{sid2}", challenges(&sb)), "AuthPayload=123456"), 400, 60200);
    assert!(sb.verify_decide_challenge(&sid2, PushStatus::Denied));
    assert_eq!(verify_get(&sb, &format!("{}/{sid2}", challenges(&sb))).json()["status"], "denied");
    assert!(!sb.verify_decide_challenge("YC00000000000000000000000000000000", PushStatus::Approved));
    // Listing with filters.
    let list = verify_get(&sb, &format!("{}?Status=denied", challenges(&sb))).json();
    assert_eq!(list["challenges"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["challenges"][0]["sid"], sid2.as_str());
}

#[test]
fn push_challenge_parameters_are_validated() {
    let sb = started();
    let service = sb.verify_account().service_sid;
    let f = sb.verify_add_push_factor(&service, IDENTITY).expect("push factor");
    let long_label = format!(r#"{{"label":"{}","value":"v"}}"#, "x".repeat(37));
    for (extra, name) in [
        (String::new(), "Details.Message"),
        (format!("&Details.Message={}", "m".repeat(257)), "Details.Message"),
        (format!("&Details.Message=m&Details.Fields={}", enc("not json")), "Details.Fields"),
        (format!("&Details.Message=m&Details.Fields={}", enc(&long_label)), "Details.Fields"),
        (format!("&Details.Message=m&HiddenDetails={}", enc(r#"{"n":1}"#)), "HiddenDetails"),
        (format!("&Details.Message=m&HiddenDetails={}", enc("[1]")), "HiddenDetails"),
    ] {
        let r = verify_post(&sb, &challenges(&sb), &format!("FactorSid={}{extra}", f.sid));
        assert_error(&r, 400, 60200);
        assert_eq!(r.json()["message"], format!("Invalid parameter: {name}"));
    }
    let many: String =
        (0..21).map(|i| format!("&Details.Fields={}", enc(&format!(r#"{{"label":"l{i}","value":"v"}}"#)))).collect();
    assert_error(
        &verify_post(&sb, &challenges(&sb), &format!("FactorSid={}&Details.Message=m{many}", f.sid)),
        400,
        60200,
    );
}

#[test]
fn push_scenarios_and_expiry_apply_to_verify_challenges() {
    let sb = started();
    let service = sb.verify_account().service_sid;
    let f = sb.verify_add_push_factor(&service, IDENTITY).expect("push factor");
    sb.set_push_scenario(
        authy_sandbox::FaultScope::Verify,
        authy_sandbox::PushScenario::AfterPolls { status: PushStatus::Approved, polls: 2 },
    );
    let sid = verify_post(&sb, &challenges(&sb), &format!("FactorSid={}&Details.Message=m", f.sid)).json()["sid"]
        .as_str()
        .expect("sid")
        .to_owned();
    let path = format!("{}/{sid}", challenges(&sb));
    assert_eq!(verify_get(&sb, &path).json()["status"], "pending");
    assert_eq!(verify_get(&sb, &path).json()["status"], "approved");
    sb.set_push_scenario(authy_sandbox::FaultScope::Verify, authy_sandbox::PushScenario::Manual);
    let sid = verify_post(&sb, &challenges(&sb), &format!("FactorSid={}&Details.Message=m", f.sid)).json()["sid"]
        .as_str()
        .expect("sid")
        .to_owned();
    sb.advance_clock(300);
    assert_eq!(verify_get(&sb, &format!("{}/{sid}", challenges(&sb))).json()["status"], "expired");
}

#[test]
fn challenge_creation_is_rate_limited_per_factor() {
    let sb = started();
    let service = sb.verify_account().service_sid;
    let f = sb.verify_add_totp_factor(&service, IDENTITY, &TotpFactorSpec::default()).expect("factor");
    for _ in 0..50 {
        assert_eq!(verify_post(&sb, &challenges(&sb), &format!("FactorSid={}", f.sid)).status, 201);
    }
    assert_error(&verify_post(&sb, &challenges(&sb), &format!("FactorSid={}", f.sid)), 429, 60312);
    sb.advance_clock(3600);
    assert_eq!(verify_post(&sb, &challenges(&sb), &format!("FactorSid={}", f.sid)).status, 201);
    // Short codes: ten a day.
    let short = sb
        .verify_add_totp_factor(
            &service,
            IDENTITY,
            &TotpFactorSpec { digits: 4, alg: TotpAlg::Sha1, ..TotpFactorSpec::default() },
        )
        .expect("factor");
    for _ in 0..10 {
        assert_eq!(verify_post(&sb, &challenges(&sb), &format!("FactorSid={}", short.sid)).status, 201);
    }
    assert_error(&verify_post(&sb, &challenges(&sb), &format!("FactorSid={}", short.sid)), 429, 60312);
}

#[test]
fn push_notifications_are_limited_to_three() {
    let sb = started();
    let service = sb.verify_account().service_sid;
    let f = sb.verify_add_push_factor(&service, IDENTITY).expect("push factor");
    let sid = verify_post(&sb, &challenges(&sb), &format!("FactorSid={}&Details.Message=m", f.sid)).json()["sid"]
        .as_str()
        .expect("sid")
        .to_owned();
    let path = format!("{}/{sid}/Notifications", challenges(&sb));
    for _ in 0..3 {
        let r = verify_post(&sb, &path, "Ttl=60");
        assert_eq!(r.status, 201, "{}", r.body);
        assert_sid(&r.json()["sid"], "NT");
        assert_eq!(r.json()["ttl"], 60);
    }
    assert_error(&verify_post(&sb, &path, ""), 429, 60309);
}
