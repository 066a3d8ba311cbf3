//! Every Verify reply parser on an arbitrary status and body: never panics; an approval is
//! only ever read from the documented status and a JSON object that says `approved` about
//! the very service, identity, factor and SID asked (checked against an independent reading
//! with serde_json); only 5xx may count as "unreachable"; kept server text has no control
//! characters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_authy::backend::{ApiError, Channel};
use pam_authy::verify::response::{
    ChallengeAsked, challenge_created, challenge_fetched, error_from, factor_fetched, service_fetched,
    verification_checked, verification_created,
};
use pam_authy::verify::{
    ChallengeSid, ChallengeStatus, CheckVerdict, FactorSid, FactorType, Identity, Phone, ServiceSid, VerificationSid,
};
use serde_json::Value;

const HEX: &str = "0123456789abcdef0123456789abcdef";

fn clean(text: &str) -> bool {
    !text.chars().any(char::is_control)
}

fn check_error(status: u16, error: &ApiError) {
    match error {
        ApiError::Unreachable(_) => assert!((500..=599).contains(&status), "{status} unreachable"),
        ApiError::Rejected { message, .. } | ApiError::RateLimited(message) => assert!(clean(message), "{message:?}"),
        _ => {}
    }
}

fn field<'v>(object: Option<&'v Value>, key: &str) -> Option<&'v str> {
    object.and_then(|o| o.get(key)).and_then(Value::as_str)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let status = u16::from_le_bytes([data[0], data[1]]) % 600;
    let body = &data[2..];
    let object = serde_json::from_slice::<Value>(body).ok().filter(Value::is_object);
    let object = object.as_ref();

    let service = ServiceSid::parse(&format!("VA{HEX}")).expect("sid");
    let identity = Identity::parse("2f0c9a3e5b7d4e61a8c0f1e2d3c4b5a6").expect("identity");
    let factor = FactorSid::parse(&format!("YF{HEX}")).expect("sid");
    let challenge = ChallengeSid::parse(&format!("YC{HEX}")).expect("sid");
    let verification = VerificationSid::parse(&format!("VE{HEX}")).expect("sid");
    let phone = Phone::parse("+15551234567").expect("phone");

    for factor_type in [FactorType::Totp, FactorType::Push] {
        let asked = ChallengeAsked { service: &service, identity: &identity, factor: &factor, factor_type };
        for (result, documented) in [
            (challenge_created(status, body, &asked), 201),
            (challenge_fetched(status, body, &asked, &challenge), 200),
        ] {
            match result {
                Ok(found) => {
                    assert_eq!(status, documented);
                    assert_eq!(field(object, "service_sid"), Some(service.as_str()));
                    assert_eq!(field(object, "identity"), Some(identity.as_str()));
                    assert_eq!(field(object, "factor_sid"), Some(factor.as_str()));
                    assert_eq!(field(object, "factor_type"), Some(factor_type.word()));
                    assert_eq!(field(object, "sid"), Some(found.sid.as_str()));
                    if found.status == ChallengeStatus::Approved {
                        assert_eq!(field(object, "status"), Some("approved"));
                    }
                    if documented == 200 {
                        assert_eq!(found.sid, challenge);
                    }
                }
                Err(error) => check_error(status, &error),
            }
        }
    }
    match verification_checked(status, body, &service, &verification, &phone) {
        Ok(CheckVerdict::Approved) => {
            assert!(status == 200 || status == 201, "{status}");
            assert_eq!(field(object, "status"), Some("approved"));
            assert_eq!(object.and_then(|o| o.get("valid")), Some(&Value::Bool(true)));
            assert_eq!(field(object, "sid"), Some(verification.as_str()));
            assert_eq!(field(object, "service_sid"), Some(service.as_str()));
            assert_eq!(field(object, "to"), Some(phone.as_str()));
        }
        Ok(_) => assert!(matches!(status, 200 | 201 | 404), "{status}"),
        Err(error) => check_error(status, &error),
    }
    for channel in [Channel::Sms, Channel::Call] {
        match verification_created(status, body, &service, &phone, channel) {
            Ok(sid) => {
                assert_eq!(status, 201);
                assert_eq!(field(object, "sid"), Some(sid.as_str()));
                assert_eq!(field(object, "channel"), Some(channel.as_str()));
                assert_eq!(field(object, "status"), Some("pending"));
            }
            Err(error) => check_error(status, &error),
        }
    }
    match service_fetched(status, body, &service) {
        Ok(info) => {
            assert_eq!(status, 200);
            assert!(clean(&info.friendly_name));
        }
        Err(error) => check_error(status, &error),
    }
    match factor_fetched(status, body, &service, &identity, &factor) {
        Ok(_) => assert_eq!(status, 200),
        Err(error) => check_error(status, &error),
    }
    check_error(status, &error_from(status, body));
});
