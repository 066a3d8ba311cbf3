//! The operations tests and scripts use to set up and steer the Verify side of a sandbox.
//!
//! Like `ops` for the Authy side, both the in-process `Sandbox` methods and the control
//! interface call these, so they behave the same. They shortcut what a client would do over
//! the API (create a verified factor in one step, read the code an SMS carried, answer a push
//! as the phone would) and never go through `/v2`, so no client can depend on them.

use crate::model::{NewFactor, PushStatus, TotpFactorSpec, VerifyAccount, VerifyChallengeRecord, VerifySentCode};
use crate::server::Shared;
use crate::verify::new_secret;
use crate::verify_state::{Factor, FactorType, TotpConfig, VerifyStats, new_sid, valid_identity};

impl Shared {
    /// The account, the first API key and the default service.
    pub(crate) fn verify_account(&self) -> VerifyAccount {
        let store = self.store();
        let v = &store.verify;
        let api_key_secret = v.keys.get(&v.primary_key).cloned().unwrap_or_default();
        VerifyAccount {
            account_sid: v.account_sid.clone(),
            auth_token: v.auth_token.clone(),
            api_key_sid: v.primary_key.clone(),
            api_key_secret,
            service_sid: v.default_service.clone(),
        }
    }

    /// Adds a service with the API's defaults; returns its SID.
    pub(crate) fn verify_create_service(&self, friendly_name: &str) -> String {
        let now = self.now();
        self.store().verify.add_service(None, friendly_name, now)
    }

    /// Adds an API key; returns `(SID, secret)`, or `None` without a random source.
    pub(crate) fn verify_create_api_key(&self) -> Option<(String, String)> {
        let (sid, secret) = (new_sid("SK"), new_secret().ok()?);
        self.store().verify.keys.insert(sid.clone(), secret.clone());
        Some((sid, secret))
    }

    /// The entity's `YE` SID, creating it if needed; `None` for an unknown service or an
    /// identity the API would refuse.
    pub(crate) fn verify_add_entity(&self, service_sid: &str, identity: &str) -> Option<String> {
        let now = self.now();
        let mut store = self.store();
        if !store.verify.services.contains_key(service_sid) || !valid_identity(identity) {
            return None;
        }
        Some(store.verify.ensure_entity(service_sid, identity, now).sid.clone())
    }

    /// Adds a TOTP factor (entity created if needed); `None` for an unknown service, a bad
    /// identity, a spec out of the API's ranges, or no random source for the secret.
    pub(crate) fn verify_add_totp_factor(
        &self,
        service_sid: &str,
        identity: &str,
        spec: &TotpFactorSpec,
    ) -> Option<NewFactor> {
        let totp = TotpConfig { alg: spec.alg, digits: spec.digits, step: spec.step, skew: spec.skew };
        if !totp.in_range() || spec.secret.as_ref().is_some_and(Vec::is_empty) {
            return None;
        }
        let secret = match &spec.secret {
            Some(s) => s.clone(),
            None => crate::store::secret_bytes::<20>().ok()?.to_vec(),
        };
        self.add_factor(service_sid, identity, FactorType::Totp, spec.verified, secret, totp, &spec.friendly_name)
    }

    /// Adds a verified push factor, as the Verify Push SDK on a phone would have.
    pub(crate) fn verify_add_push_factor(&self, service_sid: &str, identity: &str) -> Option<NewFactor> {
        let totp = TotpConfig { alg: crate::model::TotpAlg::Sha1, digits: 6, step: 30, skew: 1 };
        self.add_factor(service_sid, identity, FactorType::Push, true, Vec::new(), totp, "sandbox phone")
    }

    #[allow(clippy::too_many_arguments)]
    fn add_factor(
        &self,
        service_sid: &str,
        identity: &str,
        factor_type: FactorType,
        verified: bool,
        secret: Vec<u8>,
        totp: TotpConfig,
        friendly_name: &str,
    ) -> Option<NewFactor> {
        let now = self.now();
        let mut store = self.store();
        let v = &mut store.verify;
        if !v.services.contains_key(service_sid) || !valid_identity(identity) {
            return None;
        }
        let entity_sid = v.ensure_entity(service_sid, identity, now).sid.clone();
        let f = Factor {
            sid: new_sid("YF"),
            service: service_sid.to_owned(),
            identity: identity.to_owned(),
            entity_sid: entity_sid.clone(),
            friendly_name: friendly_name.to_owned(),
            factor_type,
            verified,
            secret: secret.clone(),
            totp,
            failed_verifications: 0,
            created: now,
            updated: now,
            challenge_creations: Vec::new(),
        };
        let sid = f.sid.clone();
        v.factors.insert(sid.clone(), f);
        let secret_base32 =
            if secret.is_empty() { String::new() } else { totp_rs::Secret::from(secret.clone()).to_base32() };
        Some(NewFactor { sid, entity_sid, secret, secret_base32 })
    }

    /// The code a TOTP factor's app shows at `unix_time`.
    pub(crate) fn verify_factor_code(&self, factor_sid: &str, unix_time: u64) -> Option<String> {
        let store = self.store();
        let f = store.verify.factors.get(factor_sid).filter(|f| f.factor_type == FactorType::Totp)?;
        Some(f.totp.code_at(&f.secret, unix_time))
    }

    /// Every SMS/call verification so far, oldest first (expiry applied).
    pub(crate) fn verify_sent_codes(&self) -> Vec<VerifySentCode> {
        let now = self.now();
        let mut store = self.store();
        let v = &mut store.verify;
        let sids: Vec<String> = v.verifications_in_order().map(|x| x.sid.clone()).collect();
        for sid in &sids {
            v.expire_verification(sid, now);
        }
        v.verifications_in_order()
            .map(|x| VerifySentCode {
                verification_sid: x.sid.clone(),
                service_sid: x.service.clone(),
                to: x.to.clone(),
                channel: x.channel.to_owned(),
                code: x.code.clone(),
                status: x.status.as_str().to_owned(),
                sends: u32::try_from(x.attempts.len()).unwrap_or(u32::MAX),
                checks: x.checks,
            })
            .collect()
    }

    /// Every challenge so far, oldest first (expiry applied, no poll counted).
    pub(crate) fn verify_challenges(&self) -> Vec<VerifyChallengeRecord> {
        let now = self.now();
        let mut store = self.store();
        let v = &mut store.verify;
        let sids: Vec<String> = v.challenges_in_order().map(|c| c.sid.clone()).collect();
        for sid in &sids {
            v.refresh_challenge(sid, now, false);
        }
        v.challenges_in_order()
            .map(|c| VerifyChallengeRecord {
                sid: c.sid.clone(),
                service_sid: c.service.clone(),
                identity: c.identity.clone(),
                factor_sid: c.factor_sid.clone(),
                factor_type: c.factor_type.as_str().to_owned(),
                status: c.status.as_str().to_owned(),
                message: c.message.clone(),
                fields: c.fields.clone(),
                hidden_details: c.hidden_details.as_ref().map(|m| serde_json::Value::Object(m.clone()).to_string()),
                created_unix: c.created,
                expiration_unix: c.expiration,
                polls: c.polls,
                wrong_codes: c.wrong_codes,
            })
            .collect()
    }

    /// Answers a challenge as the phone would.
    pub(crate) fn verify_decide_challenge(&self, sid: &str, status: PushStatus) -> bool {
        let now = self.now();
        self.store().verify.decide_challenge(sid, status, now)
    }

    /// 201 (the default) or 200 for VerificationCheck; false for any other status.
    pub(crate) fn set_verification_check_status(&self, status: u16) -> bool {
        if status != 200 && status != 201 {
            return false;
        }
        self.store().verify.check_status = status;
        true
    }

    /// Freezes the sandbox clock `secs` later than it reads now.
    pub(crate) fn advance_clock(&self, secs: u64) {
        let now = self.now();
        *self.clock_override() = Some(now.saturating_add(secs));
    }

    pub(crate) fn verify_stats(&self) -> VerifyStats {
        self.store().verify.stats
    }
}
