//! The Verify calls of enrolment and removal (`pam-authy enroll`, `status`, `remove`,
//! `migrate`, `check`): entities and TOTP factors. The module never makes these calls at
//! login; they live here so that the admin CLI reads replies with the same strict rules as
//! the module (documented status, no repeated keys, a reply that names what was asked).
//!
//! A factor's `binding` (its secret and otpauth URI) comes only in the create reply; it is
//! returned as a `Secret` and never logged.

use super::client::VerifyHttp;
use super::form::Form;
use super::response::{error_from, factor_kind, names, success_object, text};
use super::{FactorSid, FactorType, Identity, ServiceSid, paths};
use crate::backend::{ApiError, Token};
use crate::sanitize;
use crate::secret::Secret;
use serde_json::Value;

/// "The entity already exists": creating it again is not a failure.
pub const ENTITY_EXISTS: u32 = 60301;

/// A TOTP factor just created: its SID and the otpauth URI the user must scan.
pub struct NewTotpFactor {
    pub sid: FactorSid,
    pub uri: Secret,
}

/// A factor as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactorDetails {
    pub sid: FactorSid,
    pub factor_type: FactorType,
    pub verified: bool,
    pub friendly_name: String,
}

/// What a DELETE found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    Deleted,
    /// 404: it was already gone.
    NotFound,
}

fn entities(service: &ServiceSid) -> Vec<String> {
    let mut path = paths::service(service);
    path.push("Entities".into());
    path
}

fn entity(service: &ServiceSid, identity: &Identity) -> Vec<String> {
    let mut path = entities(service);
    path.push(identity.as_str().into());
    path
}

fn factors(service: &ServiceSid, identity: &Identity) -> Vec<String> {
    let mut path = entity(service, identity);
    path.push("Factors".into());
    path
}

/// `POST …/Entities` → 201; an existing entity (409/60301) is fine too.
pub fn create_entity(http: &dyn VerifyHttp, service: &ServiceSid, identity: &Identity) -> Result<(), ApiError> {
    let form = Form::new().add("Identity", identity.as_str()).finish();
    let (status, body) = http.post(&entities(service), &form)?;
    entity_created(status, &body, service, identity)
}

pub fn entity_created(status: u16, body: &[u8], service: &ServiceSid, identity: &Identity) -> Result<(), ApiError> {
    match error_from(status, body) {
        ApiError::Rejected { status: 409, code: Some(code), .. } if code == ENTITY_EXISTS.to_string() => return Ok(()),
        _ if status == 201 => {}
        other => return Err(other),
    }
    let map = success_object(status, body, &[201])?;
    names(&map, "identity", identity.as_str())?;
    names(&map, "service_sid", service.as_str())
}

/// `POST …/Factors` with `FactorType=totp` → 201 with the binding. `binding_secret` is a
/// base32 seed to reuse (a migration keeps the user's authenticator entry); without it Verify
/// makes one. Every factor is SHA-1, the only algorithm all common authenticator apps read;
/// a reused seed also gets the 30 s, 6 digit, skew 1 shape it was made with.
pub fn create_totp_factor(
    http: &dyn VerifyHttp,
    service: &ServiceSid,
    identity: &Identity,
    friendly_name: &str,
    binding_secret: Option<&Secret>,
) -> Result<NewTotpFactor, ApiError> {
    let mut form = Form::new().add("FactorType", "totp").add("FriendlyName", friendly_name).add("Config.Alg", "sha1");
    if let Some(secret) = binding_secret {
        form = form
            .add("Binding.Secret", secret.expose())
            .add("Config.TimeStep", "30")
            .add("Config.CodeLength", "6")
            .add("Config.Skew", "1");
    }
    let (status, body) = http.post(&factors(service, identity), &form.finish())?;
    let body = zeroize::Zeroizing::new(body);
    totp_factor_created(status, &body, service, identity)
}

pub fn totp_factor_created(
    status: u16,
    body: &[u8],
    service: &ServiceSid,
    identity: &Identity,
) -> Result<NewTotpFactor, ApiError> {
    let map = success_object(status, body, &[201])?;
    names(&map, "service_sid", service.as_str())?;
    names(&map, "identity", identity.as_str())?;
    names(&map, "factor_type", "totp")?;
    names(&map, "status", "unverified")?;
    let sid = FactorSid::parse(text(&map, "sid")?).ok_or_else(|| ApiError::Protocol("malformed factor sid".into()))?;
    let uri = map
        .get("binding")
        .and_then(Value::as_object)
        .and_then(|binding| binding.get("uri"))
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::Protocol("factor reply without binding.uri".into()))?;
    // Shown on the terminal and put in a QR code: printable ASCII only, bounded.
    let printable = uri.len() <= 1024 && uri.bytes().all(|b| (0x21..0x7f).contains(&b));
    if !uri.starts_with("otpauth://totp/") || !printable {
        return Err(ApiError::Protocol("binding.uri is not an otpauth://totp/ URI".into()));
    }
    Ok(NewTotpFactor { sid, uri: Secret::new(uri.to_owned()) })
}

/// `POST …/Factors/{sid}` with `AuthPayload` → 200: true once the factor is verified, false
/// for a wrong code (the factor stays unverified).
pub fn verify_factor(
    http: &dyn VerifyHttp,
    service: &ServiceSid,
    identity: &Identity,
    sid: &FactorSid,
    code: &Token,
) -> Result<bool, ApiError> {
    let form = Form::new().add("AuthPayload", code.expose()).finish();
    let (status, body) = http.post(&paths::factor(service, identity, sid), &form)?;
    Ok(factor_reply(status, &body, service, identity, sid)?.verified)
}

/// `GET …/Factors/{sid}` → 200.
pub fn fetch_factor(
    http: &dyn VerifyHttp,
    service: &ServiceSid,
    identity: &Identity,
    sid: &FactorSid,
) -> Result<FactorDetails, ApiError> {
    let (status, body) = http.get(&paths::factor(service, identity, sid))?;
    factor_reply(status, &body, service, identity, sid)
}

pub fn factor_reply(
    status: u16,
    body: &[u8],
    service: &ServiceSid,
    identity: &Identity,
    sid: &FactorSid,
) -> Result<FactorDetails, ApiError> {
    let map = success_object(status, body, &[200])?;
    let (factor_type, verified) = factor_kind(&map, service, identity, sid)?;
    let friendly_name = match map.get("friendly_name") {
        Some(Value::String(name)) => sanitize::display_text(name, 64),
        _ => String::new(),
    };
    Ok(FactorDetails { sid: sid.clone(), factor_type, verified, friendly_name })
}

/// `DELETE …/Factors/{sid}` → 204 (404: already gone).
pub fn delete_factor(
    http: &dyn VerifyHttp,
    service: &ServiceSid,
    identity: &Identity,
    sid: &FactorSid,
) -> Result<Deleted, ApiError> {
    let (status, body) = http.delete(&paths::factor(service, identity, sid))?;
    deleted(status, &body)
}

/// `DELETE …/Entities/{identity}` → 204 (404: already gone).
pub fn delete_entity(http: &dyn VerifyHttp, service: &ServiceSid, identity: &Identity) -> Result<Deleted, ApiError> {
    let (status, body) = http.delete(&entity(service, identity))?;
    deleted(status, &body)
}

pub fn deleted(status: u16, body: &[u8]) -> Result<Deleted, ApiError> {
    match status {
        204 => Ok(Deleted::Deleted),
        404 => match error_from(status, body) {
            ApiError::Rejected { .. } => Ok(Deleted::NotFound),
            other => Err(other),
        },
        _ => Err(error_from(status, body)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HEX: &str = "0123456789abcdef0123456789abcdef";

    fn service() -> ServiceSid {
        ServiceSid::parse(&format!("VA{HEX}")).expect("sid")
    }
    fn identity() -> Identity {
        Identity::parse("2f0c9a3e5b7d4e61a8c0f1e2d3c4b5a6").expect("identity")
    }
    fn factor() -> FactorSid {
        FactorSid::parse(&format!("YF{HEX}")).expect("sid")
    }

    fn new_factor(overrides: &[(&str, Value)]) -> Vec<u8> {
        let mut reply = json!({
            "sid": format!("YF{HEX}"),
            "service_sid": format!("VA{HEX}"),
            "identity": "2f0c9a3e5b7d4e61a8c0f1e2d3c4b5a6",
            "binding": {"secret": "GEZDGNBV", "uri": "otpauth://totp/svc:host?secret=GEZDGNBV&issuer=svc"},
            "friendly_name": "host",
            "status": "unverified",
            "factor_type": "totp",
        });
        for (key, value) in overrides {
            reply[*key] = value.clone();
        }
        serde_json::to_vec(&reply).expect("json")
    }

    #[test]
    fn a_new_factor_must_be_an_unverified_totp_factor_of_what_was_asked() {
        let made = totp_factor_created(201, &new_factor(&[]), &service(), &identity()).expect("factor");
        assert_eq!(made.sid, factor());
        assert!(made.uri.expose().starts_with("otpauth://totp/"));
        for overrides in [
            vec![("status", json!("verified"))],
            vec![("factor_type", json!("push"))],
            vec![("identity", json!("someoneelse1"))],
            vec![("service_sid", json!(format!("VA{}", &HEX.replace('0', "1"))))],
            vec![("sid", json!("YF0"))],
            vec![("binding", json!({"uri": "https://evil.example/"}))],
            vec![("binding", json!({"uri": "otpauth://totp/a\u{1b}[2J"}))],
            vec![("binding", Value::Null)],
        ] {
            assert!(
                totp_factor_created(201, &new_factor(&overrides), &service(), &identity()).is_err(),
                "{overrides:?}"
            );
        }
        assert!(totp_factor_created(200, &new_factor(&[]), &service(), &identity()).is_err());
    }

    #[test]
    fn an_existing_entity_is_not_a_failure_but_other_refusals_are() {
        let exists = br#"{"code":60301,"message":"exists","more_info":"x","status":409}"#;
        assert!(entity_created(409, exists, &service(), &identity()).is_ok());
        let other = br#"{"code":60306,"message":"bad","more_info":"x","status":400}"#;
        assert!(entity_created(400, other, &service(), &identity()).is_err());
        let ok = json!({"identity": identity().as_str(), "service_sid": service().as_str(), "sid": format!("YE{HEX}")});
        assert!(entity_created(201, &serde_json::to_vec(&ok).expect("json"), &service(), &identity()).is_ok());
        let wrong = json!({"identity": "another-one", "service_sid": service().as_str()});
        assert!(entity_created(201, &serde_json::to_vec(&wrong).expect("json"), &service(), &identity()).is_err());
    }

    #[test]
    fn a_factor_reply_says_verified_only_for_the_factor_asked() {
        let reply = |status: &str, sid: &str| {
            serde_json::to_vec(&json!({
                "sid": sid, "service_sid": service().as_str(), "identity": identity().as_str(),
                "factor_type": "totp", "status": status, "friendly_name": "web\u{1b}[31m",
            }))
            .expect("json")
        };
        let ok = factor_reply(200, &reply("verified", &format!("YF{HEX}")), &service(), &identity(), &factor());
        let ok = ok.expect("factor");
        assert!(ok.verified);
        assert!(!ok.friendly_name.contains('\u{1b}'));
        let wrong = factor_reply(200, &reply("unverified", &format!("YF{HEX}")), &service(), &identity(), &factor());
        assert!(!wrong.expect("factor").verified);
        let other = format!("YF{}", HEX.replace('0', "f"));
        assert!(factor_reply(200, &reply("verified", &other), &service(), &identity(), &factor()).is_err());
        assert!(
            factor_reply(200, &reply("approved", &format!("YF{HEX}")), &service(), &identity(), &factor()).is_err()
        );
        let limit = br#"{"code":60310,"message":"too many","more_info":"x","status":429}"#;
        assert!(matches!(factor_reply(429, limit, &service(), &identity(), &factor()), Err(ApiError::RateLimited(_))));
    }

    #[test]
    fn deleting_what_is_gone_is_reported_not_failed() {
        assert_eq!(deleted(204, b"").expect("204"), Deleted::Deleted);
        let gone = br#"{"code":20404,"message":"not found","more_info":"x","status":404}"#;
        assert_eq!(deleted(404, gone).expect("404"), Deleted::NotFound);
        assert!(deleted(404, b"<html>").is_err());
        assert!(deleted(200, b"").is_err());
        assert!(matches!(deleted(401, b""), Err(ApiError::BadApiKey)));
    }
}
