//! The Twilio Verify (v2) API as the module sees it: validated identifiers, the request forms
//! and the strict reply parsers. Nothing here does I/O or knows about PAM.
//!
//! Every identifier that goes into a URL path is a type that can only hold characters that
//! need no escaping (SIDs: two capital letters and 32 lower-case hex digits; identities:
//! alphanumerics separated by dashes), so neither a config value nor a reply can steer a
//! request elsewhere. A success is a conjunction (`response`): the documented HTTP status,
//! `status == "approved"`, and a reply that names the very service, identity, factor and SID
//! that were asked.

pub mod admin;
pub mod backend;
pub mod client;
pub mod form;
pub mod replay;
pub mod response;

use std::fmt;

/// True for `prefix` followed by exactly 32 lower-case hex digits. Twilio issues SIDs in lower
/// case; accepting one spelling means a reply naming our SID compares equal byte for byte.
fn is_sid(text: &str, prefixes: &[&str]) -> bool {
    text.len() == 34
        && prefixes.iter().any(|p| text.starts_with(p))
        && text.bytes().skip(2).all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

macro_rules! sid_type {
    ($(#[$doc:meta])* $name:ident, [$($prefix:literal),+]) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const PREFIXES: &'static [&'static str] = &[$($prefix),+];

            pub fn parse(text: &str) -> Option<$name> {
                is_sid(text, Self::PREFIXES).then(|| $name(text.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

sid_type!(
    /// A Verify service, `VA…`.
    ServiceSid,
    ["VA"]
);
sid_type!(
    /// The Basic-auth user: an API key `SK…` or the account itself `AC…`.
    ApiKeySid,
    ["SK", "AC"]
);
sid_type!(
    /// A factor (TOTP or push) of an entity, `YF…`.
    FactorSid,
    ["YF"]
);
sid_type!(
    /// A challenge of a factor, `YC…`.
    ChallengeSid,
    ["YC"]
);
sid_type!(
    /// A verification (an OTP sent by SMS or call), `VE…`.
    VerificationSid,
    ["VE"]
);
sid_type!(
    /// An entity, `YE…` (replies carry it; requests use the identity).
    EntitySid,
    ["YE"]
);

/// A phone number in E.164: `+`, a non-zero digit, 7 to 15 digits in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(text: &str) -> Option<Phone> {
        let digits = text.strip_prefix('+')?;
        let ok =
            (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
        ok.then(|| Phone(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The opaque id of a Verify entity: 8 to 64 ASCII alphanumerics in groups separated by
/// single dashes (a UUID or a hash). Never a user name or other personal data; the config
/// refuses an identity equal to the account it maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity(String);

impl Identity {
    pub fn parse(text: &str) -> Option<Identity> {
        let ok = (8..=64).contains(&text.len())
            && text.split('-').all(|group| !group.is_empty() && group.bytes().all(|b| b.is_ascii_alphanumeric()));
        ok.then(|| Identity(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The factor types the module challenges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorType {
    Totp,
    Push,
}

impl FactorType {
    pub fn word(self) -> &'static str {
        match self {
            FactorType::Totp => "totp",
            FactorType::Push => "push",
        }
    }
}

/// The status of a challenge as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeStatus {
    Pending,
    Approved,
    Denied,
    Expired,
}

/// A challenge reply that named what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub sid: ChallengeSid,
    pub status: ChallengeStatus,
    /// `expiration_date` in seconds since the epoch, when the reply gives one.
    pub expires_at: Option<u64>,
}

/// What a VerificationCheck said about the typed code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckVerdict {
    Approved,
    /// `pending`: a wrong code, the verification is still open.
    WrongCode,
    /// 404/20404 or a closed status (expired, canceled, failed, deleted): nothing to check
    /// against any more. Never a success, whatever was approved before.
    NoPendingVerification,
    /// `max_attempts_reached`.
    TooManyAttempts,
}

/// What the module checks of a Verify service (`pam-authy check` / `test`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    pub sid: ServiceSid,
    pub friendly_name: String,
    pub totp_time_step: Option<u64>,
    pub totp_code_length: Option<u64>,
    pub totp_skew: Option<u64>,
}

/// A factor as fetched (no binding: the secret is only in the create reply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactorInfo {
    pub sid: FactorSid,
    pub factor_type: FactorType,
    pub verified: bool,
    pub time_step: Option<u64>,
    pub code_length: Option<u64>,
    pub skew: Option<u64>,
}

/// The API paths, built only from validated identifiers.
pub mod paths {
    use super::{ChallengeSid, Identity, ServiceSid};

    pub fn service(service: &ServiceSid) -> Vec<String> {
        vec!["v2".into(), "Services".into(), service.as_str().into()]
    }

    pub fn verifications(service: &ServiceSid) -> Vec<String> {
        let mut path = self::service(service);
        path.push("Verifications".into());
        path
    }

    pub fn verification_check(service: &ServiceSid) -> Vec<String> {
        let mut path = self::service(service);
        path.push("VerificationCheck".into());
        path
    }

    pub fn challenges(service: &ServiceSid, identity: &Identity) -> Vec<String> {
        let mut path = self::service(service);
        path.extend(["Entities".into(), identity.as_str().into(), "Challenges".into()]);
        path
    }

    pub fn challenge(service: &ServiceSid, identity: &Identity, sid: &ChallengeSid) -> Vec<String> {
        let mut path = challenges(service, identity);
        path.push(sid.as_str().into());
        path
    }

    pub fn factor(service: &ServiceSid, identity: &Identity, sid: &super::FactorSid) -> Vec<String> {
        let mut path = self::service(service);
        path.extend(["Entities".into(), identity.as_str().into(), "Factors".into(), sid.as_str().into()]);
        path
    }
}

/// Calendar date (proleptic Gregorian) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = i64::from(if month > 2 { month - 3 } else { month + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2015-07-30T20:00:00Z` for a time in seconds since the epoch.
pub fn iso8601(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let seconds = unix % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", seconds / 3600, seconds / 60 % 60, seconds % 60)
}

/// Reads exactly `YYYY-MM-DDTHH:MM:SSZ` (the form every Verify reply uses).
pub fn parse_iso8601(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'Z'
    {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = text.get(range)?;
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok()).flatten()
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || day == 0 || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    if civil_from_days(days) != (i64::from(year), month, day) {
        return None;
    }
    let unix = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    u64::try_from(unix).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn sids_are_their_prefix_and_32_lower_case_hex_digits() {
        assert!(ServiceSid::parse(&format!("VA{HEX}")).is_some());
        assert!(ApiKeySid::parse(&format!("SK{HEX}")).is_some());
        assert!(ApiKeySid::parse(&format!("AC{HEX}")).is_some());
        assert!(FactorSid::parse(&format!("YF{HEX}")).is_some());
        let upper = HEX.to_ascii_uppercase();
        for bad in [
            format!("YF{HEX}"),
            format!("VA{}", &HEX[1..]),
            format!("VA{HEX}0"),
            format!("VA{upper}"),
            format!("va{HEX}"),
            format!("VA{}/..", &HEX[3..]),
            format!("VA{}g", &HEX[1..]),
            String::new(),
            "VA".into(),
        ] {
            assert!(ServiceSid::parse(&bad).is_none(), "{bad:?}");
        }
        assert!(ChallengeSid::parse(&format!("YF{HEX}")).is_none());
    }

    #[test]
    fn phones_are_e164() {
        for good in ["+15551234567", "+447700900123", "+2901234"] {
            assert!(Phone::parse(good).is_some(), "{good}");
        }
        for bad in ["15551234567", "+0551234567", "+1 555 123 4567", "+1555123456789012", "+123", "+1555abc4567", ""] {
            assert!(Phone::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn identities_are_dash_separated_alphanumerics() {
        for good in ["2f0c9a3e5b7d4e61a8c0f1e2d3c4b5a6", "550e8400-e29b-41d4-a716-446655440000", "abcdefgh"] {
            assert!(Identity::parse(good).is_some(), "{good}");
        }
        for bad in [
            "short",
            "-abcdefgh",
            "abcdefgh-",
            "abcd--efgh",
            "abcd/efgh",
            "abcd efgh",
            "alice@example.com",
            "../../../Services",
            "abcdefgh%2F",
            &"a".repeat(65),
        ] {
            assert!(Identity::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn dates_round_trip_and_only_the_reply_format_is_read() {
        assert_eq!(parse_iso8601("2015-07-30T20:00:00Z"), Some(1_438_286_400));
        assert_eq!(iso8601(1_438_286_400), "2015-07-30T20:00:00Z");
        assert_eq!(parse_iso8601("2024-02-29T23:59:59Z").map(iso8601).as_deref(), Some("2024-02-29T23:59:59Z"));
        for bad in [
            "2023-02-29T00:00:00Z",
            "2015-07-30T20:00:00",
            "2015-07-30 20:00:00Z",
            "2015-07-30T20:00:00.000Z",
            "2015-13-30T20:00:00Z",
            "2015-07-30T24:00:00Z",
            "+015-07-30T20:00:00Z",
            "1969-12-31T23:59:59Z",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }

    #[test]
    fn paths_hold_only_validated_segments() {
        let service = ServiceSid::parse(&format!("VA{HEX}")).expect("sid");
        let identity = Identity::parse("2f0c9a3e5b7d4e61").expect("identity");
        let challenge = ChallengeSid::parse(&format!("YC{HEX}")).expect("sid");
        assert_eq!(
            paths::challenge(&service, &identity, &challenge).join("/"),
            format!("v2/Services/VA{HEX}/Entities/2f0c9a3e5b7d4e61/Challenges/YC{HEX}")
        );
        assert_eq!(paths::verification_check(&service).join("/"), format!("v2/Services/VA{HEX}/VerificationCheck"));
    }
}
