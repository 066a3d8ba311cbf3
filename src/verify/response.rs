//! Strict parsing of Verify replies, from status code and raw body bytes.
//!
//! Pure functions, fuzzed: no I/O, no panics. A reply is read only with the HTTP status the
//! API documents for that call, as a JSON object without repeated keys, and it must name what
//! was asked (service, identity, factor, challenge or verification SID, phone); anything
//! else is an error. Error bodies map to `ApiError` in `error_from` and nowhere else.

use super::{
    Challenge, ChallengeSid, ChallengeStatus, CheckVerdict, FactorInfo, FactorSid, FactorType, Identity, Phone,
    ServiceInfo, ServiceSid, VerificationSid,
};
use crate::authy::response::{object, reject_duplicate_keys};
use crate::backend::{ApiError, Channel};
use crate::sanitize;
use serde_json::{Map, Value};

pub use crate::transport::MAX_BODY_BYTES;

/// Codes that mean "too many attempts or sends": the user is told, the login fails, and the
/// module does not try again.
pub const RATE_LIMIT_CODES: [u32; 6] = [60202, 60203, 60308, 60312, 20429, 60212];
/// Bad or missing credentials.
pub const BAD_CREDENTIALS: u32 = 20003;
/// The resource does not exist (for a verification: approved, expired or used up).
pub const NOT_FOUND: u32 = 20404;
/// A parameter the API refused: our request was wrong.
pub const INVALID_PARAMETER: u32 = 60200;

/// The fields of a Twilio error body: `{"code", "message", "more_info", "status"}`.
struct ErrorBody {
    code: u32,
    message: String,
}

/// Reads an error body: a JSON object without repeated keys whose integer `status` is the
/// HTTP status and whose `code` is a positive integer.
fn error_body(status: u16, body: &[u8]) -> Option<ErrorBody> {
    reject_duplicate_keys(body).ok()?;
    let map = object(body).ok()?;
    if map.get("status").and_then(Value::as_u64) != Some(u64::from(status)) {
        return None;
    }
    let code = map.get("code").and_then(Value::as_u64).and_then(|c| u32::try_from(c).ok()).filter(|c| *c > 0)?;
    let message = match map.get("message") {
        Some(Value::String(text)) => sanitize::display_text(text, 120),
        _ => String::new(),
    };
    Some(ErrorBody { code, message })
}

/// Classifies a reply that is not the documented success (shared by every call).
pub fn error_from(status: u16, body: &[u8]) -> ApiError {
    if (500..=599).contains(&status) {
        return ApiError::Unreachable(format!("HTTP {status}"));
    }
    if (300..=399).contains(&status) {
        return ApiError::Protocol(format!("redirect (HTTP {status}) refused"));
    }
    if (200..=299).contains(&status) {
        return ApiError::Protocol(format!("HTTP {status} is not the documented status of this call"));
    }
    let parsed = error_body(status, body);
    if status == 401 || parsed.as_ref().is_some_and(|e| e.code == BAD_CREDENTIALS) {
        return ApiError::BadApiKey;
    }
    match parsed {
        Some(error) if error.code == INVALID_PARAMETER => {
            ApiError::Protocol(format!("the API refused a parameter (HTTP {status} error {INVALID_PARAMETER})"))
        }
        Some(error) if status == 429 || RATE_LIMIT_CODES.contains(&error.code) => {
            ApiError::RateLimited(format!("HTTP {status} error {} ({})", error.code, error.message))
        }
        Some(error) => ApiError::Rejected { status, code: Some(error.code.to_string()), message: error.message },
        None => ApiError::Protocol(format!("HTTP {status} with a body that is not a Twilio error")),
    }
}

/// The body of a documented success: one JSON object without repeated keys.
pub(super) fn success_object(status: u16, body: &[u8], documented: &[u16]) -> Result<Map<String, Value>, ApiError> {
    if !documented.contains(&status) {
        return Err(error_from(status, body));
    }
    reject_duplicate_keys(body)?;
    object(body)
}

pub(super) fn text<'m>(map: &'m Map<String, Value>, key: &str) -> Result<&'m str, ApiError> {
    map.get(key).and_then(Value::as_str).ok_or_else(|| ApiError::Protocol(format!("reply without a string {key}")))
}

/// The reply's `key` must equal `asked`, byte for byte.
pub(super) fn names(map: &Map<String, Value>, key: &str, asked: &str) -> Result<(), ApiError> {
    if text(map, key)? == asked { Ok(()) } else { Err(ApiError::Protocol(format!("reply about another {key}"))) }
}

/// An optional non-negative integer (`null` or absent is None; another type is an error).
fn number(map: Option<&Map<String, Value>>, key: &str) -> Result<Option<u64>, ApiError> {
    match map.and_then(|m| m.get(key)) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value.as_u64().map(Some).ok_or_else(|| ApiError::Protocol(format!("{key} is not a number"))),
    }
}

/// What a challenge reply must name.
#[derive(Debug, Clone, Copy)]
pub struct ChallengeAsked<'a> {
    pub service: &'a ServiceSid,
    pub identity: &'a Identity,
    pub factor: &'a FactorSid,
    pub factor_type: FactorType,
}

fn challenge(map: &Map<String, Value>, asked: &ChallengeAsked<'_>) -> Result<Challenge, ApiError> {
    let sid =
        ChallengeSid::parse(text(map, "sid")?).ok_or_else(|| ApiError::Protocol("malformed challenge sid".into()))?;
    names(map, "service_sid", asked.service.as_str())?;
    names(map, "identity", asked.identity.as_str())?;
    names(map, "factor_sid", asked.factor.as_str())?;
    names(map, "factor_type", asked.factor_type.word())?;
    let status = match text(map, "status")? {
        "pending" => ChallengeStatus::Pending,
        "approved" => ChallengeStatus::Approved,
        "denied" => ChallengeStatus::Denied,
        "expired" => ChallengeStatus::Expired,
        _ => return Err(ApiError::Protocol("unknown challenge status".into())),
    };
    let expires_at = match map.get("expiration_date") {
        None | Some(Value::Null) => None,
        Some(Value::String(date)) => {
            Some(super::parse_iso8601(date).ok_or_else(|| ApiError::Protocol("malformed expiration_date".into()))?)
        }
        Some(_) => return Err(ApiError::Protocol("expiration_date is not a date".into())),
    };
    Ok(Challenge { sid, status, expires_at })
}

/// `POST …/Entities/{identity}/Challenges` → 201.
pub fn challenge_created(status: u16, body: &[u8], asked: &ChallengeAsked<'_>) -> Result<Challenge, ApiError> {
    challenge(&success_object(status, body, &[201])?, asked)
}

/// `GET …/Challenges/{sid}` → 200, about that very challenge.
pub fn challenge_fetched(
    status: u16,
    body: &[u8],
    asked: &ChallengeAsked<'_>,
    sid: &ChallengeSid,
) -> Result<Challenge, ApiError> {
    let challenge = challenge(&success_object(status, body, &[200])?, asked)?;
    if &challenge.sid == sid { Ok(challenge) } else { Err(ApiError::Protocol("reply about another challenge".into())) }
}

/// `POST …/Verifications` → 201 `pending`, for the service, number and channel asked.
pub fn verification_created(
    status: u16,
    body: &[u8],
    service: &ServiceSid,
    to: &Phone,
    channel: Channel,
) -> Result<VerificationSid, ApiError> {
    let map = success_object(status, body, &[201])?;
    let sid = VerificationSid::parse(text(&map, "sid")?)
        .ok_or_else(|| ApiError::Protocol("malformed verification sid".into()))?;
    names(&map, "service_sid", service.as_str())?;
    names(&map, "to", to.as_str())?;
    names(&map, "channel", channel.as_str())?;
    names(&map, "status", "pending")?;
    Ok(sid)
}

/// `POST …/VerificationCheck` → 200 or 201 (the spec lists both). Approved only with
/// `status == "approved"`, `valid == true`, and the service, verification and number asked;
/// 404 with 20404 means there is no pending verification any more.
pub fn verification_checked(
    status: u16,
    body: &[u8],
    service: &ServiceSid,
    sid: &VerificationSid,
    to: &Phone,
) -> Result<CheckVerdict, ApiError> {
    if status == 404 && error_body(status, body).is_some_and(|e| e.code == NOT_FOUND) {
        return Ok(CheckVerdict::NoPendingVerification);
    }
    let map = success_object(status, body, &[200, 201])?;
    names(&map, "sid", sid.as_str())?;
    names(&map, "service_sid", service.as_str())?;
    names(&map, "to", to.as_str())?;
    let valid = match map.get("valid") {
        Some(Value::Bool(valid)) => *valid,
        _ => return Err(ApiError::Protocol("reply without a boolean valid".into())),
    };
    match (text(&map, "status")?, valid) {
        ("approved", true) => Ok(CheckVerdict::Approved),
        ("pending", false) => Ok(CheckVerdict::WrongCode),
        ("max_attempts_reached", false) => Ok(CheckVerdict::TooManyAttempts),
        ("canceled" | "expired" | "failed" | "deleted", false) => Ok(CheckVerdict::NoPendingVerification),
        _ => Err(ApiError::Protocol("verification check with an unknown or contradictory status".into())),
    }
}

/// `GET /v2/Services/{sid}` → 200, about that service.
pub fn service_fetched(status: u16, body: &[u8], sid: &ServiceSid) -> Result<ServiceInfo, ApiError> {
    let map = success_object(status, body, &[200])?;
    names(&map, "sid", sid.as_str())?;
    let friendly_name = sanitize::display_text(text(&map, "friendly_name")?, 64);
    let totp = match map.get("totp") {
        None | Some(Value::Null) => None,
        Some(Value::Object(totp)) => Some(totp),
        Some(_) => return Err(ApiError::Protocol("totp is not an object".into())),
    };
    Ok(ServiceInfo {
        sid: sid.clone(),
        friendly_name,
        totp_time_step: number(totp, "time_step")?,
        totp_code_length: number(totp, "code_length")?,
        totp_skew: number(totp, "skew")?,
    })
}

/// What every factor reply must say: that it is about that factor of that entity, of a known
/// type, verified or not. Its type and whether it is verified.
pub(super) fn factor_kind(
    map: &Map<String, Value>,
    service: &ServiceSid,
    identity: &Identity,
    sid: &FactorSid,
) -> Result<(FactorType, bool), ApiError> {
    names(map, "sid", sid.as_str())?;
    names(map, "service_sid", service.as_str())?;
    names(map, "identity", identity.as_str())?;
    let factor_type = match text(map, "factor_type")? {
        "totp" => FactorType::Totp,
        "push" => FactorType::Push,
        _ => return Err(ApiError::Protocol("unknown factor_type".into())),
    };
    let verified = match text(map, "status")? {
        "verified" => true,
        "unverified" => false,
        _ => return Err(ApiError::Protocol("unknown factor status".into())),
    };
    Ok((factor_type, verified))
}

/// `GET …/Entities/{identity}/Factors/{sid}` → 200, about that factor of that entity.
pub fn factor_fetched(
    status: u16,
    body: &[u8],
    service: &ServiceSid,
    identity: &Identity,
    sid: &FactorSid,
) -> Result<FactorInfo, ApiError> {
    let map = success_object(status, body, &[200])?;
    let (factor_type, verified) = factor_kind(&map, service, identity, sid)?;
    let config = match map.get("config") {
        None | Some(Value::Null) => None,
        Some(Value::Object(config)) => Some(config),
        Some(_) => return Err(ApiError::Protocol("config is not an object".into())),
    };
    Ok(FactorInfo {
        sid: sid.clone(),
        factor_type,
        verified,
        time_step: number(config, "time_step")?,
        code_length: number(config, "code_length")?,
        skew: number(config, "skew")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HEX: &str = "0123456789abcdef0123456789abcdef";
    const OTHER: &str = "fedcba9876543210fedcba9876543210";

    fn service() -> ServiceSid {
        ServiceSid::parse(&format!("VA{HEX}")).expect("sid")
    }
    fn identity() -> Identity {
        Identity::parse("2f0c9a3e5b7d4e61a8c0f1e2d3c4b5a6").expect("identity")
    }
    fn factor() -> FactorSid {
        FactorSid::parse(&format!("YF{HEX}")).expect("sid")
    }
    fn challenge_sid() -> ChallengeSid {
        ChallengeSid::parse(&format!("YC{HEX}")).expect("sid")
    }
    fn verification_sid() -> VerificationSid {
        VerificationSid::parse(&format!("VE{HEX}")).expect("sid")
    }
    fn phone() -> Phone {
        Phone::parse("+15551234567").expect("phone")
    }

    /// A challenge reply with every documented field (digest section 6).
    fn challenge_reply(status: &str) -> Value {
        json!({
            "sid": format!("YC{HEX}"),
            "account_sid": format!("AC{HEX}"),
            "service_sid": format!("VA{HEX}"),
            "entity_sid": format!("YE{HEX}"),
            "identity": "2f0c9a3e5b7d4e61a8c0f1e2d3c4b5a6",
            "factor_sid": format!("YF{HEX}"),
            "date_created": "2015-07-30T20:00:00Z",
            "date_updated": "2015-07-30T20:00:00Z",
            "date_responded": null,
            "expiration_date": "2015-07-30T20:05:00Z",
            "status": status,
            "responded_reason": "none",
            "details": {"message": "Login", "fields": []},
            "hidden_details": {},
            "metadata": null,
            "factor_type": "totp",
            "url": "https://verify.twilio.com/v2/...",
            "links": {"notifications": "https://verify.twilio.com/v2/..."}
        })
    }

    fn asked(factor_type: FactorType) -> (ServiceSid, Identity, FactorSid, FactorType) {
        (service(), identity(), factor(), factor_type)
    }

    fn create(status: u16, body: &Value, factor_type: FactorType) -> Result<Challenge, ApiError> {
        let (service, identity, factor, factor_type) = asked(factor_type);
        let asked = ChallengeAsked { service: &service, identity: &identity, factor: &factor, factor_type };
        challenge_created(status, body.to_string().as_bytes(), &asked)
    }

    fn fetch(status: u16, body: &Value, factor_type: FactorType) -> Result<Challenge, ApiError> {
        let (service, identity, factor, factor_type) = asked(factor_type);
        let asked = ChallengeAsked { service: &service, identity: &identity, factor: &factor, factor_type };
        challenge_fetched(status, body.to_string().as_bytes(), &asked, &challenge_sid())
    }

    #[test]
    fn an_approved_totp_challenge_for_what_was_asked_is_approved() {
        let challenge = create(201, &challenge_reply("approved"), FactorType::Totp).expect("approved");
        assert_eq!(challenge.status, ChallengeStatus::Approved);
        assert_eq!(challenge.sid, challenge_sid());
        assert_eq!(challenge.expires_at, Some(1_438_286_700));
        assert_eq!(
            create(201, &challenge_reply("pending"), FactorType::Totp).map(|c| c.status),
            Ok(ChallengeStatus::Pending)
        );
    }

    #[test]
    fn a_challenge_reply_naming_anything_else_is_refused() {
        let mut cases = Vec::new();
        for (key, value) in [
            ("sid", json!(format!("YF{HEX}"))),
            ("sid", json!("YC123")),
            ("service_sid", json!(format!("VA{OTHER}"))),
            ("identity", json!("aaaaaaaa-bbbb")),
            ("factor_sid", json!(format!("YF{OTHER}"))),
            ("factor_type", json!("push")),
            ("status", json!("APPROVED")),
            ("status", json!("approved ")),
            ("status", json!(true)),
            ("expiration_date", json!("tomorrow")),
            ("expiration_date", json!(12)),
        ] {
            let mut reply = challenge_reply("approved");
            reply[key] = value;
            cases.push(reply);
        }
        for key in ["sid", "service_sid", "identity", "factor_sid", "factor_type", "status"] {
            let mut reply = challenge_reply("approved");
            reply.as_object_mut().expect("object").remove(key);
            cases.push(reply);
        }
        for reply in &cases {
            assert!(create(201, reply, FactorType::Totp).is_err(), "{reply}");
        }
        for status in [200, 202, 204, 302] {
            assert!(create(status, &challenge_reply("approved"), FactorType::Totp).is_err(), "{status}");
        }
    }

    #[test]
    fn a_fetched_challenge_must_be_the_one_this_login_created() {
        let mut reply = challenge_reply("approved");
        reply["factor_type"] = json!("push");
        assert_eq!(fetch(200, &reply, FactorType::Push).map(|c| c.status), Ok(ChallengeStatus::Approved));
        assert!(fetch(201, &reply, FactorType::Push).is_err());
        assert!(fetch(200, &reply, FactorType::Totp).is_err());
        reply["sid"] = json!(format!("YC{OTHER}"));
        assert!(fetch(200, &reply, FactorType::Push).is_err());
        for status in ["denied", "expired", "pending"] {
            let mut reply = challenge_reply(status);
            reply["factor_type"] = json!("push");
            assert_ne!(fetch(200, &reply, FactorType::Push).map(|c| c.status), Ok(ChallengeStatus::Approved));
        }
    }

    #[test]
    fn raw_bodies_that_are_not_one_clean_object_are_refused() {
        let approved = challenge_reply("approved").to_string();
        let duplicated =
            approved.replacen("\"status\":\"approved\"", "\"status\":\"pending\",\"status\":\"approved\"", 1);
        assert!(duplicated.contains("pending"));
        let (service, identity, factor, factor_type) = asked(FactorType::Totp);
        let asked = ChallengeAsked { service: &service, identity: &identity, factor: &factor, factor_type };
        let mut huge = approved.trim_end_matches('}').to_owned();
        huge.push_str(&format!(",\"pad\":\"{}\"}}", "a".repeat(MAX_BODY_BYTES)));
        for body in [
            duplicated.as_bytes(),
            b"<html>approved</html>",
            b"",
            b"[]",
            &approved.as_bytes()[..approved.len() - 1],
            huge.as_bytes(),
        ] {
            assert!(challenge_created(201, body, &asked).is_err(), "{}", String::from_utf8_lossy(body));
        }
    }

    fn twilio_error(code: u32, status: u16, message: &str) -> Vec<u8> {
        json!({"code": code, "message": message, "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn errors_map_as_the_issue_says() {
        assert_eq!(error_from(401, &twilio_error(20003, 401, "Authenticate")), ApiError::BadApiKey);
        assert_eq!(error_from(401, b"<html>no</html>"), ApiError::BadApiKey);
        assert_eq!(error_from(403, &twilio_error(20003, 403, "Permission Denied")), ApiError::BadApiKey);
        for (code, status) in [(60202, 429), (60203, 429), (60308, 429), (60312, 429), (20429, 429), (60212, 429)] {
            let error = error_from(status, &twilio_error(code, status, "Max check attempts reached"));
            assert!(matches!(error, ApiError::RateLimited(_)), "{code}: {error:?}");
        }
        assert!(matches!(error_from(429, &twilio_error(60999, 429, "x")), ApiError::RateLimited(_)));
        assert!(matches!(error_from(403, &twilio_error(60318, 403, "x")), ApiError::Rejected { .. }));
        match error_from(429, &twilio_error(60203, 429, "\u{1b}]0;owned\u{7}Max send attempts")) {
            ApiError::RateLimited(why) => assert!(!why.chars().any(char::is_control), "{why:?}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(error_from(400, &twilio_error(60200, 400, "Invalid parameter: To")), ApiError::Protocol(_)));
        for status in [500, 502, 503, 504] {
            assert!(error_from(status, b"<html>down</html>").is_unreachable());
        }
        for status in [301, 302, 307, 308] {
            assert!(matches!(error_from(status, b""), ApiError::Protocol(_)));
        }
        assert!(matches!(error_from(404, b"<html>not found</html>"), ApiError::Protocol(_)));
        assert!(matches!(error_from(404, &twilio_error(20404, 400, "x")), ApiError::Protocol(_)));
        assert!(matches!(error_from(404, br#"{"code":"20404","status":404}"#), ApiError::Protocol(_)));
        assert!(matches!(error_from(200, b"{}"), ApiError::Protocol(_)));
        match error_from(403, &twilio_error(60318, 403, "\u{1b}[2Jfactor\nunverified")) {
            ApiError::Rejected { status: 403, code, message } => {
                assert_eq!(code.as_deref(), Some("60318"));
                assert!(!message.chars().any(char::is_control), "{message:?}");
            }
            other => panic!("{other:?}"),
        }
    }

    fn verification_reply(status: &str, valid: bool) -> Value {
        json!({
            "sid": format!("VE{HEX}"),
            "service_sid": format!("VA{HEX}"),
            "account_sid": format!("AC{HEX}"),
            "to": "+15551234567",
            "channel": "sms",
            "status": status,
            "valid": valid,
            "amount": null,
            "payee": null,
            "sna_attempts_error_codes": [],
            "date_created": "2015-07-30T20:00:00Z",
            "date_updated": "2015-07-30T20:00:00Z"
        })
    }

    fn check(status: u16, body: &Value) -> Result<CheckVerdict, ApiError> {
        verification_checked(status, body.to_string().as_bytes(), &service(), &verification_sid(), &phone())
    }

    #[test]
    fn a_verification_check_is_approved_only_when_it_says_so_about_this_verification() {
        assert_eq!(check(201, &verification_reply("approved", true)), Ok(CheckVerdict::Approved));
        assert_eq!(check(200, &verification_reply("approved", true)), Ok(CheckVerdict::Approved));
        assert_eq!(check(200, &verification_reply("pending", false)), Ok(CheckVerdict::WrongCode));
        assert_eq!(check(200, &verification_reply("max_attempts_reached", false)), Ok(CheckVerdict::TooManyAttempts));
        assert_eq!(check(200, &verification_reply("expired", false)), Ok(CheckVerdict::NoPendingVerification));
        let gone = twilio_error(20404, 404, "The requested resource /Services/VA/VerificationCheck was not found");
        assert_eq!(
            verification_checked(404, &gone, &service(), &verification_sid(), &phone()),
            Ok(CheckVerdict::NoPendingVerification)
        );
        let mut refused = vec![verification_reply("approved", false), verification_reply("pending", true)];
        for (key, value) in [
            ("sid", json!(format!("VE{OTHER}"))),
            ("service_sid", json!(format!("VA{OTHER}"))),
            ("to", json!("+15550000000")),
            ("valid", json!("true")),
            ("status", json!("Approved")),
        ] {
            let mut reply = verification_reply("approved", true);
            reply[key] = value;
            refused.push(reply);
        }
        let mut no_valid = verification_reply("approved", true);
        no_valid.as_object_mut().expect("object").remove("valid");
        refused.push(no_valid);
        for reply in &refused {
            assert!(check(201, reply).is_err(), "{reply}");
        }
        assert!(check(202, &verification_reply("approved", true)).is_err());
        assert!(check(429, &json!({"code": 60202, "message": "Max check attempts reached", "status": 429})).is_err());
    }

    #[test]
    fn a_created_verification_is_pending_for_the_number_and_channel_asked() {
        let body = verification_reply("pending", false).to_string();
        let created = verification_created(201, body.as_bytes(), &service(), &phone(), Channel::Sms);
        assert_eq!(created, Ok(verification_sid()));
        assert!(verification_created(201, body.as_bytes(), &service(), &phone(), Channel::Call).is_err());
        assert!(verification_created(200, body.as_bytes(), &service(), &phone(), Channel::Sms).is_err());
        let other = Phone::parse("+15550000000").expect("phone");
        assert!(verification_created(201, body.as_bytes(), &service(), &other, Channel::Sms).is_err());
        let approved = verification_reply("approved", true).to_string();
        assert!(verification_created(201, approved.as_bytes(), &service(), &phone(), Channel::Sms).is_err());
    }

    #[test]
    fn service_and_factor_replies_are_read_for_what_was_asked() {
        let service_reply = json!({
            "sid": format!("VA{HEX}"), "friendly_name": "pam\u{1b}[2J", "code_length": 6,
            "totp": {"issuer": "pam", "time_step": 30, "code_length": 6, "skew": 1}
        });
        let info = service_fetched(200, service_reply.to_string().as_bytes(), &service()).expect("service");
        assert_eq!((info.friendly_name.as_str(), info.totp_time_step, info.totp_skew), ("pam[2J", Some(30), Some(1)));
        let other = ServiceSid::parse(&format!("VA{OTHER}")).expect("sid");
        assert!(service_fetched(200, service_reply.to_string().as_bytes(), &other).is_err());

        let factor_reply = json!({
            "sid": format!("YF{HEX}"), "service_sid": format!("VA{HEX}"),
            "identity": "2f0c9a3e5b7d4e61a8c0f1e2d3c4b5a6", "status": "verified", "factor_type": "totp",
            "config": {"alg": "sha1", "skew": 1, "code_length": 6, "time_step": 30}
        });
        let body = factor_reply.to_string();
        let info = factor_fetched(200, body.as_bytes(), &service(), &identity(), &factor()).expect("factor");
        assert!(info.verified && info.factor_type == FactorType::Totp && info.time_step == Some(30));
        let other_identity = Identity::parse("aaaaaaaa-bbbb").expect("identity");
        assert!(factor_fetched(200, body.as_bytes(), &service(), &other_identity, &factor()).is_err());
        let unknown = body.replace("verified", "VERIFIED");
        assert!(factor_fetched(200, unknown.as_bytes(), &service(), &identity(), &factor()).is_err());
    }
}
