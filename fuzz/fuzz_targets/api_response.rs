//! Every Authy reply parser on an arbitrary status and body: never panics, and a success is
//! only ever read from HTTP 200 with a JSON object that says exactly that (checked here
//! against an independent reading with serde_json). Kept server text has no control
//! characters, and only 5xx may count as "unreachable".
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_authy::authy::response::{
    approval_created, approval_status, approval_uuid, error_from, generic_success, token_request, verify,
};
use pam_authy::backend::{ApiError, TokenVerdict};
use serde_json::Value;

fn is_true(value: Option<&Value>) -> bool {
    matches!(value, Some(Value::Bool(true))) || value.and_then(Value::as_str) == Some("true")
}

fn clean(text: &str) -> bool {
    !text.chars().any(char::is_control)
}

fn check_error(status: u16, error: &ApiError) {
    match error {
        ApiError::Unreachable(_) => assert!((500..=599).contains(&status), "{status} unreachable"),
        ApiError::Rejected { message, .. } => assert!(clean(message), "{message:?}"),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let status = u16::from_le_bytes([data[0], data[1]]) % 600;
    let body = &data[2..];
    let object = serde_json::from_slice::<Value>(body).ok().and_then(|v| v.as_object().cloned());

    match verify(status, body) {
        Ok(TokenVerdict::Valid) => {
            let map = object.as_ref().expect("a valid verdict from a body that is no JSON object");
            assert_eq!(status, 200);
            assert_eq!(map.get("token").and_then(Value::as_str), Some("is valid"));
            assert!(is_true(map.get("success")));
        }
        Ok(_) => assert_eq!(status, 401),
        Err(error) => check_error(status, &error),
    }
    match token_request(status, body) {
        Ok(receipt) => {
            assert_eq!(status, 200);
            assert!(is_true(object.as_ref().and_then(|m| m.get("success"))));
            assert!(receipt.cellphone.iter().all(|c| clean(c)));
        }
        Err(error) => check_error(status, &error),
    }
    match approval_created(status, body) {
        Ok(uuid) => {
            assert_eq!(status, 200);
            assert!(uuid.as_str().bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'));
        }
        Err(error) => check_error(status, &error),
    }
    let asked = approval_uuid("550e8400-e29b-41d4-a716-446655440000").expect("uuid");
    match approval_status(status, body, &asked) {
        Ok(_) => {
            assert_eq!(status, 200);
            let request = object.as_ref().and_then(|m| m.get("approval_request")).expect("approval_request");
            assert_eq!(request.get("uuid").and_then(Value::as_str), Some(asked.as_str()));
        }
        Err(error) => check_error(status, &error),
    }
    match generic_success(status, body) {
        Ok(_) => assert_eq!(status, 200),
        Err(error) => check_error(status, &error),
    }
    check_error(status, &error_from(status, body));
});
