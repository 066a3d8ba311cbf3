//! What the Twilio Verify imitation remembers, and the lifecycle rules that change it.
//!
//! Services, entities, factors, challenges and verifications live here as plain data behind
//! the server's one mutex. Every rule that depends on time (verification expiry after ten
//! minutes, challenge expiry, attempt and creation limits) takes `now` from the caller, so
//! moving the sandbox clock moves all of them. Nothing here is persisted: the Verify side is
//! per-run test state. Bodies and statuses are `verify`'s business, not this file's.

use std::collections::{BTreeMap, VecDeque};

use crate::model::{PushScenario, PushStatus, TotpAlg};
use crate::store::{hex, random_bytes};

/// A verification stays checkable this long after it was created.
pub(crate) const VERIFICATION_TTL_SECS: u64 = 600;
/// Checks, sends, wrong factor verifications and wrong challenge codes each allow five tries;
/// the sixth is refused.
pub(crate) const MAX_TRIES: u32 = 5;
/// Default and maximum challenge lifetimes.
pub(crate) const CHALLENGE_DEFAULT_TTL_SECS: u64 = 300;
pub(crate) const CHALLENGE_MAX_TTL_SECS: u64 = 3600;
/// Old challenges and verifications are forgotten past this many, so a long demo stays bounded.
const MAX_KEPT: usize = 10_000;

/// A 34-character SID: two-letter prefix and 32 lower-case hex digits.
pub(crate) fn new_sid(prefix: &str) -> String {
    format!("{prefix}{}", hex(&random_bytes::<16>()))
}

/// Whether `s` is `prefix` followed by 32 hex digits.
pub(crate) fn is_sid(s: &str, prefix: &str) -> bool {
    s.len() == 34 && s.starts_with(prefix) && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Identity rules: 8 to 64 characters, alphanumeric runs separated by single dashes.
pub(crate) fn valid_identity(s: &str) -> bool {
    (8..=64).contains(&s.len())
        && s.split('-').all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn algorithm(alg: TotpAlg) -> totp_rs::Algorithm {
    match alg {
        TotpAlg::Sha1 => totp_rs::Algorithm::SHA1,
        TotpAlg::Sha256 => totp_rs::Algorithm::SHA256,
        TotpAlg::Sha512 => totp_rs::Algorithm::SHA512,
    }
}

/// How a TOTP factor computes its codes. Ranges as the API enforces them: digits 3..=8,
/// step 20..=60 s, skew 0..=2 steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TotpConfig {
    pub alg: TotpAlg,
    pub digits: u32,
    pub step: u64,
    pub skew: u32,
}

impl TotpConfig {
    pub(crate) fn in_range(self) -> bool {
        (3..=8).contains(&self.digits) && (20..=60).contains(&self.step) && self.skew <= 2
    }

    fn totp(self, secret: &[u8]) -> totp_rs::Totp {
        // Digits and step were range-checked, so generation cannot panic; short secrets given
        // through `Binding.Secret` must still work, hence noncompliant.
        totp_rs::Builder::new()
            .with_algorithm(algorithm(self.alg))
            .with_digits(self.digits as u8)
            .with_step_duration(self.step.max(1))
            .with_skew(0)
            .with_secret(secret.to_vec())
            .build_noncompliant()
    }

    /// The code at `unix_time`.
    pub(crate) fn code_at(self, secret: &[u8], unix_time: u64) -> String {
        self.totp(secret).generate(unix_time).to_string()
    }

    /// Whether `code` is valid at `now`, within ±skew steps.
    pub(crate) fn accepts(self, secret: &[u8], code: &str, now: u64) -> bool {
        if code.len() != self.digits as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        let totp = self.totp(secret);
        let skew = u64::from(self.skew) * self.step;
        (now.saturating_sub(skew)..=now.saturating_add(skew))
            .step_by(self.step.max(1) as usize)
            .any(|t| totp.generate(t).to_string() == code)
    }
}

/// A Verify service.
#[derive(Debug, Clone)]
pub(crate) struct Service {
    pub sid: String,
    pub friendly_name: String,
    pub code_length: u32,
    pub totp_issuer: Option<String>,
    pub totp: TotpConfig,
    pub created: u64,
    pub updated: u64,
}

/// An entity: one end user of a service, named by an opaque identity.
#[derive(Debug, Clone)]
pub(crate) struct Entity {
    pub sid: String,
    pub created: u64,
    pub updated: u64,
    /// Creation times of its factors in the last day (limit 60326).
    pub factor_creations: Vec<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FactorType {
    Totp,
    Push,
}

impl FactorType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FactorType::Totp => "totp",
            FactorType::Push => "push",
        }
    }
}

/// A factor of an entity.
#[derive(Debug, Clone)]
pub(crate) struct Factor {
    pub sid: String,
    pub service: String,
    pub identity: String,
    pub entity_sid: String,
    pub friendly_name: String,
    pub factor_type: FactorType,
    pub verified: bool,
    pub secret: Vec<u8>,
    pub totp: TotpConfig,
    pub failed_verifications: u32,
    pub created: u64,
    pub updated: u64,
    /// Creation times of its challenges in the last day (limit 60312).
    pub challenge_creations: Vec<u64>,
}

/// A challenge's status as the API spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChallengeStatus {
    Pending,
    Approved,
    Denied,
    Expired,
}

impl ChallengeStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ChallengeStatus::Pending => "pending",
            ChallengeStatus::Approved => "approved",
            ChallengeStatus::Denied => "denied",
            ChallengeStatus::Expired => "expired",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<ChallengeStatus> {
        match s {
            "pending" => Some(ChallengeStatus::Pending),
            "approved" => Some(ChallengeStatus::Approved),
            "denied" => Some(ChallengeStatus::Denied),
            "expired" => Some(ChallengeStatus::Expired),
            _ => None,
        }
    }
}

/// A challenge (a TOTP code to check, or a push to answer).
#[derive(Debug, Clone)]
pub(crate) struct Challenge {
    pub sid: String,
    pub service: String,
    pub identity: String,
    pub entity_sid: String,
    pub factor_sid: String,
    pub factor_type: FactorType,
    pub status: ChallengeStatus,
    pub created: u64,
    pub updated: u64,
    pub responded: Option<u64>,
    pub expiration: u64,
    pub message: Option<String>,
    /// `Details.Fields` as (label, value), in the order sent.
    pub fields: Vec<(String, String)>,
    /// `HiddenDetails` as sent (a JSON object with string values).
    pub hidden_details: Option<serde_json::Map<String, serde_json::Value>>,
    pub wrong_codes: u32,
    pub polls: u32,
    pub notifications: u32,
}

/// A verification's status as the API spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VerificationStatus {
    Pending,
    Approved,
    Canceled,
    MaxAttemptsReached,
    Expired,
}

impl VerificationStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            VerificationStatus::Pending => "pending",
            VerificationStatus::Approved => "approved",
            VerificationStatus::Canceled => "canceled",
            VerificationStatus::MaxAttemptsReached => "max_attempts_reached",
            VerificationStatus::Expired => "expired",
        }
    }
}

/// One delivery of a verification's code.
#[derive(Debug, Clone)]
pub(crate) struct SendAttempt {
    pub time: u64,
    pub channel: &'static str,
    pub sid: String,
}

/// An SMS or voice verification.
#[derive(Debug, Clone)]
pub(crate) struct Verification {
    pub sid: String,
    pub service: String,
    pub to: String,
    pub channel: &'static str,
    pub status: VerificationStatus,
    pub code: String,
    pub created: u64,
    pub updated: u64,
    pub attempts: Vec<SendAttempt>,
    pub checks: u32,
}

/// Usage counters, shown by the control interface.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyStats {
    /// Verifications created or re-sent (each delivery counts).
    pub sends: u64,
    /// VerificationCheck requests answered with a verdict.
    pub checks: u64,
    /// Challenges created.
    pub challenges: u64,
    /// Factor verifications (enrolment codes) tried.
    pub factor_verifications: u64,
}

/// The whole Verify side of a sandbox.
#[derive(Debug)]
pub(crate) struct VerifyState {
    pub account_sid: String,
    pub auth_token: String,
    /// API key SID → secret.
    pub keys: BTreeMap<String, String>,
    /// The key configured at start (others come from the control interface).
    pub primary_key: String,
    /// The service that exists from the start.
    pub default_service: String,
    pub services: BTreeMap<String, Service>,
    /// Keyed by (service SID, identity).
    pub entities: BTreeMap<(String, String), Entity>,
    pub factors: BTreeMap<String, Factor>,
    pub challenges: BTreeMap<String, Challenge>,
    challenge_order: VecDeque<String>,
    pub verifications: BTreeMap<String, Verification>,
    verification_order: VecDeque<String>,
    /// The status VerificationCheck answers on success paths: 201 (default) or 200.
    pub check_status: u16,
    pub push_scenario: PushScenario,
    pub stats: VerifyStats,
}

impl VerifyState {
    pub(crate) fn new(account_sid: String, auth_token: String) -> VerifyState {
        VerifyState {
            account_sid,
            auth_token,
            keys: BTreeMap::new(),
            primary_key: String::new(),
            default_service: String::new(),
            services: BTreeMap::new(),
            entities: BTreeMap::new(),
            factors: BTreeMap::new(),
            challenges: BTreeMap::new(),
            challenge_order: VecDeque::new(),
            verifications: BTreeMap::new(),
            verification_order: VecDeque::new(),
            check_status: 201,
            push_scenario: PushScenario::Manual,
            stats: VerifyStats::default(),
        }
    }

    /// Whether Basic-auth credentials are the account's or one of its API keys.
    pub(crate) fn authenticates(&self, user: &str, password: &str) -> bool {
        if user.starts_with("AC") {
            return user == self.account_sid && password == self.auth_token;
        }
        user.starts_with("SK") && self.keys.get(user).is_some_and(|s| s == password)
    }

    /// Adds a service with the API's defaults (codes of 6, TOTP sha1/6/30/skew 1).
    pub(crate) fn add_service(&mut self, sid: Option<String>, friendly_name: &str, now: u64) -> String {
        let sid = sid.unwrap_or_else(|| new_sid("VA"));
        self.services.insert(
            sid.clone(),
            Service {
                sid: sid.clone(),
                friendly_name: friendly_name.to_owned(),
                code_length: 6,
                totp_issuer: None,
                totp: TotpConfig { alg: TotpAlg::Sha1, digits: 6, step: 30, skew: 1 },
                created: now,
                updated: now,
            },
        );
        sid
    }

    /// The entity, created if missing (factor creation creates it implicitly).
    pub(crate) fn ensure_entity(&mut self, service: &str, identity: &str, now: u64) -> &mut Entity {
        self.entities.entry((service.to_owned(), identity.to_owned())).or_insert_with(|| Entity {
            sid: new_sid("YE"),
            created: now,
            updated: now,
            factor_creations: Vec::new(),
        })
    }

    /// Removes an entity with its factors and challenges.
    pub(crate) fn delete_entity(&mut self, service: &str, identity: &str) -> bool {
        if self.entities.remove(&(service.to_owned(), identity.to_owned())).is_none() {
            return false;
        }
        self.factors.retain(|_, f| !(f.service == service && f.identity == identity));
        self.challenges.retain(|_, c| !(c.service == service && c.identity == identity));
        true
    }

    /// Stores a new challenge, forgetting the oldest past the cap.
    pub(crate) fn insert_challenge(&mut self, c: Challenge) {
        if self.challenge_order.len() >= MAX_KEPT
            && let Some(old) = self.challenge_order.pop_front()
        {
            self.challenges.remove(&old);
        }
        self.challenge_order.push_back(c.sid.clone());
        self.challenges.insert(c.sid.clone(), c);
    }

    /// Stores a new verification, forgetting the oldest past the cap.
    pub(crate) fn insert_verification(&mut self, v: Verification) {
        if self.verification_order.len() >= MAX_KEPT
            && let Some(old) = self.verification_order.pop_front()
        {
            self.verifications.remove(&old);
        }
        self.verification_order.push_back(v.sid.clone());
        self.verifications.insert(v.sid.clone(), v);
    }

    /// Challenges in creation order.
    pub(crate) fn challenges_in_order(&self) -> impl Iterator<Item = &Challenge> {
        self.challenge_order.iter().filter_map(|sid| self.challenges.get(sid))
    }

    /// Verifications in creation order.
    pub(crate) fn verifications_in_order(&self) -> impl Iterator<Item = &Verification> {
        self.verification_order.iter().filter_map(|sid| self.verifications.get(sid))
    }

    /// Marks a pending verification past its ten minutes as expired.
    pub(crate) fn expire_verification(&mut self, sid: &str, now: u64) {
        if let Some(v) = self.verifications.get_mut(sid)
            && v.status == VerificationStatus::Pending
            && now >= v.created.saturating_add(VERIFICATION_TTL_SECS)
        {
            v.status = VerificationStatus::Expired;
            v.updated = v.created.saturating_add(VERIFICATION_TTL_SECS);
        }
    }

    /// The live (pending, unexpired) verification of `service` for `to`, newest first.
    pub(crate) fn live_verification_for(&mut self, service: &str, to: &str, now: u64) -> Option<String> {
        let sids: Vec<String> = self
            .verification_order
            .iter()
            .rev()
            .filter(|sid| self.verifications.get(*sid).is_some_and(|v| v.service == service && v.to == to))
            .cloned()
            .collect();
        for sid in sids {
            self.expire_verification(&sid, now);
            if self.verifications.get(&sid).is_some_and(|v| v.status == VerificationStatus::Pending) {
                return Some(sid);
            }
        }
        None
    }

    /// Applies expiry and the push scenario to a challenge; `count_poll` when a client fetched it.
    pub(crate) fn refresh_challenge(&mut self, sid: &str, now: u64, count_poll: bool) {
        let scenario = self.push_scenario;
        let Some(c) = self.challenges.get_mut(sid) else {
            return;
        };
        if count_poll {
            c.polls = c.polls.saturating_add(1);
        }
        if c.status != ChallengeStatus::Pending || scenario == PushScenario::Never {
            return;
        }
        if now >= c.expiration {
            c.status = ChallengeStatus::Expired;
            c.updated = c.expiration;
            return;
        }
        if let PushScenario::AfterPolls { status, polls } = scenario
            && c.factor_type == FactorType::Push
            && count_poll
            && c.polls >= polls.max(1)
            && status != PushStatus::Pending
        {
            c.status = challenge_status_of(status);
            c.updated = now;
            c.responded = Some(now);
        }
    }

    /// Answers a push challenge as the phone would; false if unknown or its scenario is `Never`.
    pub(crate) fn decide_challenge(&mut self, sid: &str, status: PushStatus, now: u64) -> bool {
        if self.push_scenario == PushScenario::Never {
            return false;
        }
        let Some(c) = self.challenges.get_mut(sid) else {
            return false;
        };
        c.status = challenge_status_of(status);
        c.updated = now;
        c.responded = (status != PushStatus::Pending).then_some(now);
        true
    }
}

fn challenge_status_of(status: PushStatus) -> ChallengeStatus {
    match status {
        PushStatus::Pending => ChallengeStatus::Pending,
        PushStatus::Approved => ChallengeStatus::Approved,
        PushStatus::Denied => ChallengeStatus::Denied,
        PushStatus::Expired => ChallengeStatus::Expired,
    }
}

/// Keeps only the instants within the last `window` seconds.
pub(crate) fn prune(times: &mut Vec<u64>, now: u64, window: u64) {
    times.retain(|t| t.saturating_add(window) > now);
}

/// A random code of `len` digits for an SMS or call.
pub(crate) fn random_code(len: u32) -> String {
    let bytes = random_bytes::<16>();
    // A modulo bias of at most 6/256 per digit does not matter to a test double.
    bytes.iter().take(len as usize).map(|b| char::from(b'0' + b % 10)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_and_identities() {
        let sid = new_sid("YF");
        assert!(is_sid(&sid, "YF"));
        assert_eq!(sid.len(), 34);
        assert!(!is_sid(&sid, "YC"));
        assert!(!is_sid("YFzz", "YF"));
        assert!(valid_identity("2f0c9a3e-5b7d"));
        assert!(!valid_identity("short"));
        assert!(!valid_identity("has--double"));
        assert!(!valid_identity("-leading-dash"));
        assert!(!valid_identity("alice@example.com"));
    }

    #[test]
    fn totp_follows_rfc6238_for_every_algorithm() {
        // RFC 6238 appendix B, T = 59, 8 digits.
        let at = |alg, secret: &[u8]| TotpConfig { alg, digits: 8, step: 30, skew: 1 }.code_at(secret, 59);
        assert_eq!(at(TotpAlg::Sha1, b"12345678901234567890"), "94287082");
        assert_eq!(at(TotpAlg::Sha256, b"12345678901234567890123456789012"), "46119246");
        assert_eq!(
            at(TotpAlg::Sha512, b"1234567890123456789012345678901234567890123456789012345678901234"),
            "90693936"
        );
    }

    #[test]
    fn skew_bounds_the_window() {
        let secret = b"abcdefghijabcdefghij";
        let t = 1_700_000_115;
        for skew in 0..=2u32 {
            let cfg = TotpConfig { alg: TotpAlg::Sha1, digits: 6, step: 30, skew };
            for k in 0..=3u64 {
                let earlier = cfg.code_at(secret, t - k * 30);
                let ok = cfg.accepts(secret, &earlier, t);
                // A code of another step may collide by chance; only assert the inside.
                if k <= u64::from(skew) {
                    assert!(ok, "skew {skew}, {k} steps back");
                }
            }
        }
        let cfg = TotpConfig { alg: TotpAlg::Sha1, digits: 6, step: 30, skew: 1 };
        assert!(!cfg.accepts(secret, "12345", t));
        assert!(!cfg.accepts(secret, "12345a", t));
    }

    #[test]
    fn random_codes_have_the_length_asked() {
        assert_eq!(random_code(6).len(), 6);
        assert!(random_code(10).bytes().all(|b| b.is_ascii_digit()));
    }
}
