//! Strict parsing of Authy replies, from status code and raw body bytes.
//!
//! Pure functions, fuzzed: no I/O, no panics. A success is a conjunction (HTTP 200, a JSON
//! object, the exact fields the API documents); anything else is a denial or an error.
//! Server text kept for messages is passed through `sanitize::display_text` first.

use crate::backend::{ApiError, ApprovalId, ApprovalStatus, ChannelReceipt, TokenVerdict};
use crate::sanitize;
use crate::transport::MAX_BODY_BYTES;
use serde::Deserialize;
use serde_json::Value;

/// The fields of an Authy error body we look at.
#[derive(Deserialize, Default)]
struct ErrorBody {
    message: Option<Value>,
    error_code: Option<Value>,
    token: Option<Value>,
    errors: Option<Value>,
}

/// At most this many field errors (`"email": "is invalid"`) are kept from `errors`.
const MAX_FIELD_ERRORS: usize = 4;

fn error_code(body: &ErrorBody) -> Option<String> {
    match &body.error_code {
        Some(Value::String(code)) if code.len() <= 8 && code.bytes().all(|b| b.is_ascii_digit()) => Some(code.clone()),
        Some(Value::Number(code)) => code.as_u64().map(|c| c.to_string()),
        _ => None,
    }
}

/// The top-level message, then the field errors of `errors` (users/new says which field was
/// wrong only there), e.g. `User was not valid: email is invalid`.
fn message(body: &ErrorBody) -> String {
    let mut text = match &body.message {
        Some(Value::String(text)) => sanitize::display_text(text, 120),
        _ => String::new(),
    };
    let fields: Vec<String> = match &body.errors {
        Some(Value::Object(errors)) => errors
            .iter()
            .filter(|(field, _)| field.as_str() != "message")
            .filter_map(|(field, problem)| Some((field, problem.as_str()?)))
            .take(MAX_FIELD_ERRORS)
            .map(|(field, problem)| {
                format!("{} {}", sanitize::display_text(field, 32), sanitize::display_text(problem, 60))
            })
            .collect(),
        _ => Vec::new(),
    };
    if !fields.is_empty() {
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&fields.join(", "));
    }
    text
}

fn parse_error_body(body: &[u8]) -> Option<ErrorBody> {
    serde_json::from_slice::<ErrorBody>(body).ok()
}

/// Classifies a non-200 reply (shared by every endpoint).
pub fn error_from(status: u16, body: &[u8]) -> ApiError {
    let parsed = parse_error_body(body);
    let code = parsed.as_ref().and_then(error_code);
    if status == 401 && code.as_deref() == Some("60001") {
        return ApiError::BadApiKey;
    }
    if (500..=599).contains(&status) {
        return ApiError::Unreachable(format!("HTTP {status}"));
    }
    if (300..=399).contains(&status) {
        return ApiError::Protocol(format!("redirect (HTTP {status}) refused"));
    }
    match parsed {
        Some(body) => ApiError::Rejected { status, message: message(&body), code },
        None => ApiError::Protocol(format!("HTTP {status} with a body that is not an Authy error")),
    }
}

fn is_true(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(true)) => true,
        Some(Value::String(text)) => text == "true",
        _ => false,
    }
}

pub(crate) fn object(body: &[u8]) -> Result<serde_json::Map<String, Value>, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::Protocol("reply too large".into()));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::Protocol("reply is not a JSON object".into())),
        Err(_) => Err(ApiError::Protocol("reply is not valid JSON".into())),
    }
}

/// `serde_json::Value` keeps the last of duplicated keys; a reply with duplicates is refused
/// instead, so that no two parsers could read two different verdicts from one body.
pub(crate) fn reject_duplicate_keys(body: &[u8]) -> Result<(), ApiError> {
    struct NoDuplicates;
    impl<'de> serde::de::Visitor<'de> for NoDuplicates {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("JSON without duplicated keys")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                if !seen.insert(key) {
                    return Err(serde::de::Error::custom("duplicated key"));
                }
                map.next_value::<Checked>()?;
            }
            Ok(())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element::<Checked>()?.is_some() {}
            Ok(())
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
    }
    struct Checked;
    impl<'de> Deserialize<'de> for Checked {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Checked, D::Error> {
            d.deserialize_any(NoDuplicates).map(|()| Checked)
        }
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    Checked::deserialize(&mut deserializer)
        .and_then(|_| deserializer.end())
        .map_err(|_| ApiError::Protocol("reply is not valid JSON or repeats a key".into()))
}

fn success_object(status: u16, body: &[u8]) -> Result<serde_json::Map<String, Value>, ApiError> {
    if status != 200 {
        return Err(error_from(status, body));
    }
    reject_duplicate_keys(body)?;
    let map = object(body)?;
    Ok(map)
}

/// `/protected/json/verify/{token}/{id}`: valid only on HTTP 200 with `token == "is valid"`
/// and `success` true or "true"; 401 with 60020 (or the legacy `token: "is invalid"`) is a
/// wrong token, 60019 a reused one.
pub fn verify(status: u16, body: &[u8]) -> Result<TokenVerdict, ApiError> {
    if status == 401 {
        if body.len() <= MAX_BODY_BYTES {
            reject_duplicate_keys(body)?;
        }
        let parsed = parse_error_body(body).unwrap_or_default();
        return match error_code(&parsed).as_deref() {
            Some("60019") => Ok(TokenVerdict::Reused),
            Some("60020") => Ok(TokenVerdict::Invalid),
            Some("60001") => Err(ApiError::BadApiKey),
            None if parsed.token == Some(Value::String("is invalid".into())) => Ok(TokenVerdict::Invalid),
            _ => Err(error_from(status, body)),
        };
    }
    let map = success_object(status, body)?;
    let token_valid = map.get("token") == Some(&Value::String("is valid".into()));
    if token_valid && is_true(map.get("success")) {
        Ok(TokenVerdict::Valid)
    } else {
        Err(ApiError::Protocol("HTTP 200 without a valid-token verdict".into()))
    }
}

/// `/protected/json/{sms,call}/{id}` with `force=true`: success means the code was sent.
pub fn token_request(status: u16, body: &[u8]) -> Result<ChannelReceipt, ApiError> {
    let map = success_object(status, body)?;
    if !is_true(map.get("success")) {
        return Err(ApiError::Protocol("token request without success".into()));
    }
    if is_true(map.get("ignored")) {
        return Err(ApiError::Rejected { status, code: None, message: "the request was ignored by the API".into() });
    }
    let cellphone = match map.get("cellphone") {
        Some(Value::String(phone)) => Some(sanitize::display_text(phone, 32)),
        _ => None,
    };
    Ok(ChannelReceipt { cellphone })
}

/// An Authy approval uuid: `[0-9a-fA-F-]{1,64}`.
pub fn approval_uuid(text: &str) -> Option<ApprovalId> {
    let uuid_shaped = text.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    if uuid_shaped { ApprovalId::parse(text) } else { None }
}

/// `POST /onetouch/json/users/{id}/approval_requests`.
pub fn approval_created(status: u16, body: &[u8]) -> Result<ApprovalId, ApiError> {
    let map = success_object(status, body)?;
    if !is_true(map.get("success")) {
        return Err(ApiError::Protocol("approval request without success".into()));
    }
    match map.get("approval_request").and_then(|r| r.get("uuid")) {
        Some(Value::String(uuid)) => {
            approval_uuid(uuid).ok_or_else(|| ApiError::Protocol("malformed approval uuid".into()))
        }
        _ => Err(ApiError::Protocol("approval request without uuid".into())),
    }
}

/// `GET /onetouch/json/approval_requests/{uuid}`: the reply must name the very uuid asked.
pub fn approval_status(status: u16, body: &[u8], asked: &ApprovalId) -> Result<ApprovalStatus, ApiError> {
    let map = success_object(status, body)?;
    if !is_true(map.get("success")) {
        return Err(ApiError::Protocol("approval status without success".into()));
    }
    let request = map
        .get("approval_request")
        .and_then(Value::as_object)
        .ok_or_else(|| ApiError::Protocol("approval status without approval_request".into()))?;
    if request.get("uuid").and_then(Value::as_str) != Some(asked.as_str()) {
        return Err(ApiError::Protocol("approval status for another uuid".into()));
    }
    match request.get("status").and_then(Value::as_str) {
        Some("pending") => Ok(ApprovalStatus::Pending),
        Some("approved") => Ok(ApprovalStatus::Approved),
        Some("denied") => Ok(ApprovalStatus::Denied),
        Some("expired") => Ok(ApprovalStatus::Expired),
        _ => Err(ApiError::Protocol("unknown approval status".into())),
    }
}

/// Any endpoint whose success is `success: true` and whose payload the caller reads itself
/// (the admin CLI's users/new, status, remove, app/details).
pub fn generic_success(status: u16, body: &[u8]) -> Result<serde_json::Map<String, Value>, ApiError> {
    let map = success_object(status, body)?;
    if is_true(map.get("success")) { Ok(map) } else { Err(ApiError::Protocol("reply without success".into())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/api/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn documented_valid_token_reply_is_valid() {
        assert_eq!(verify(200, &fixture("verify-valid.json")), Ok(TokenVerdict::Valid));
        assert_eq!(
            verify(200, br#"{"success":true,"message":"Token is valid.","token":"is valid"}"#),
            Ok(TokenVerdict::Valid)
        );
    }

    #[test]
    fn documented_wrong_and_reused_token_replies_are_denials() {
        assert_eq!(verify(401, &fixture("verify-invalid.json")), Ok(TokenVerdict::Invalid));
        assert_eq!(verify(401, &fixture("verify-reused.json")), Ok(TokenVerdict::Reused));
        assert_eq!(
            verify(401, br#"{"errors":{"token":"is invalid"},"token":"is invalid","success":false}"#),
            Ok(TokenVerdict::Invalid)
        );
    }

    #[test]
    fn field_errors_of_a_refusal_are_kept_sanitised_and_bounded() {
        let body = br#"{"message":"User was not valid","success":false,"errors":{"message":"User was not valid","email":"is invalid","cellphone":"is invalid\u001b[2J"},"email":"is invalid","error_code":"60027"}"#;
        let ApiError::Rejected { status: 400, code, message } = error_from(400, body) else { panic!("a refusal") };
        assert_eq!(code.as_deref(), Some("60027"));
        assert_eq!(message, "User was not valid: cellphone is invalid[2J, email is invalid");
        let many: String = (0..20).map(|i| format!(r#""f{i}":"is invalid","#)).collect();
        let body = format!(r#"{{"message":"m","errors":{{{many}"message":"m"}}}}"#);
        let ApiError::Rejected { message, .. } = error_from(400, body.as_bytes()) else { panic!("a refusal") };
        assert_eq!(message.matches("is invalid").count(), MAX_FIELD_ERRORS, "{message}");
    }

    #[test]
    fn a_bad_api_key_is_its_own_error() {
        assert_eq!(verify(401, &fixture("invalid-api-key.json")), Err(ApiError::BadApiKey));
    }

    #[test]
    fn replies_that_are_not_exactly_a_success_never_verify() {
        let cases: &[(u16, &[u8])] = &[
            (200, br#"{"success":false,"token":"is valid"}"#),
            (200, br#"{"success":"false","token":"is valid"}"#),
            (200, br#"{"success":true}"#),
            (200, br#"{"success":true,"token":"is invalid"}"#),
            (200, br#"{"success":true,"token":"is valid "}"#),
            (200, br#"{"success":1,"token":"is valid"}"#),
            (200, br#"{"success":"TRUE","token":"is valid"}"#),
            (200, br#"{"success":true,"token":["is valid"]}"#),
            (200, br#"{"success":true,"token":"is invalid","token":"is valid"}"#),
            (200, br#"{"success":true,"token":"is valid","token":"is valid"}"#),
            (200, br#"{"success":true,"token":"is valid""#),
            (200, b"<html><body>ok</body></html>"),
            (200, b"\xff\xfe{\"success\":true,\"token\":\"is valid\"}"),
            (200, br#"["success",true,"token","is valid"]"#),
            (200, b""),
            (201, br#"{"success":true,"token":"is valid"}"#),
            (302, br#"{"success":true,"token":"is valid"}"#),
            (200, br#"{"message":"SMS token was sent","success":true,"cellphone":"+1-XXX-XXX-XX85"}"#),
        ];
        for (status, body) in cases {
            let verdict = verify(*status, body);
            assert!(verdict.is_err(), "{status} {:?} gave {verdict:?}", String::from_utf8_lossy(body));
        }
        let mut huge = br#"{"success":true,"token":"is valid","pad":""#.to_vec();
        huge.extend(std::iter::repeat_n(b'a', MAX_BODY_BYTES));
        huge.extend(br#""}"#);
        assert!(verify(200, &huge).is_err());
    }

    #[test]
    fn server_errors_count_as_unreachable_and_client_errors_do_not() {
        assert!(verify(503, b"<html>down</html>").unwrap_err().is_unreachable());
        assert!(verify(500, b"").unwrap_err().is_unreachable());
        let too_many = verify(429, br#"{"message":"DoS protection","success":false,"errors":{},"error_code":"60003"}"#);
        assert!(matches!(too_many, Err(ApiError::Rejected { status: 429, .. })));
        assert!(matches!(verify(404, &fixture("user-not-found.json")), Err(ApiError::Rejected { status: 404, .. })));
    }

    #[test]
    fn sms_sent_and_ignored_replies() {
        let sent = token_request(200, &fixture("sms-sent.json")).expect("sent");
        assert_eq!(sent.cellphone.as_deref(), Some("+1-XXX-XXX-XX85"));
        assert!(token_request(200, &fixture("sms-ignored.json")).is_err());
        assert!(token_request(503, &fixture("sms-disabled.json")).unwrap_err().is_unreachable());
    }

    #[test]
    fn approval_status_must_name_the_uuid_that_was_asked() {
        let asked = approval_uuid("8d031630-d15b-0134-b0a8-0a77bbe8093e").expect("uuid");
        let other = approval_uuid("00000000-0000-0000-0000-000000000000").expect("uuid");
        let body = fixture("approval-approved.json");
        assert_eq!(approval_status(200, &body, &asked), Ok(ApprovalStatus::Approved));
        assert!(approval_status(200, &body, &other).is_err());
        assert!(approval_status(200, br#"{"approval_request":{"status":"APPROVED","uuid":"8d031630-d15b-0134-b0a8-0a77bbe8093e"},"success":true}"#, &asked).is_err());
    }

    #[test]
    fn approval_uuids_are_hex_and_dashes() {
        assert!(approval_uuid("550e8400-e29b-41d4-a716-446655440000").is_some());
        for bad in ["", "../x", "abc/def", "a b", "YC0123", &"a".repeat(65)] {
            assert!(approval_uuid(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn approval_creation_needs_a_well_formed_uuid() {
        assert!(
            approval_created(
                200,
                br#"{"approval_request":{"uuid":"550e8400-e29b-41d4-a716-446655440000"},"success":true}"#
            )
            .is_ok()
        );
        assert!(
            approval_created(200, br#"{"approval_request":{"uuid":"../../protected/json/sms/1"},"success":true}"#)
                .is_err()
        );
        assert!(approval_created(200, br#"{"approval_request":{},"success":true}"#).is_err());
    }

    #[test]
    fn server_text_is_sanitised_before_it_is_kept() {
        let body = br#"{"message":"\u001b[2J\u001b]0;owned\u0007evil\nline","success":false,"errors":{},"error_code":"60003"}"#;
        match error_from(429, body) {
            ApiError::Rejected { message, .. } => {
                assert!(!message.chars().any(char::is_control), "{message:?}");
            }
            other => panic!("{other:?}"),
        }
    }
}
