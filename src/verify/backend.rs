//! The Verify backend: `VerifyBackend` binds the Verify API to one user's identity, factors
//! and phone, and offers the flow what that user can do (a code; `sms` and `call` with a
//! phone; `push` with a push factor).
//!
//! A typed code goes to the VerificationCheck of the very verification this login started by
//! SMS or call, or else to a TOTP Challenge of the user's factor. A push is a Challenge of the
//! push factor, and only a reply about that challenge counts. Verify does not refuse a TOTP
//! code used twice, so the backend gives the flow a keyed tag of each such code (`replay`).

use super::client::VerifyHttp;
use super::form::{self, PushDetails};
use super::response::{self, ChallengeAsked};
use super::{ChallengeSid, ChallengeStatus, CheckVerdict, FactorSid, FactorType, ServiceSid, VerificationSid, paths};
use crate::backend::{
    ApiError, ApprovalId, ApprovalRequest, ApprovalStatus, Backend, Channel, ChannelReceipt, Token, TokenVerdict, Word,
    Wording,
};
use crate::config::{VerifyConfig, VerifyUser};
use crate::secret::Secret;
use std::time::Duration;

/// The Verify API for one user, for one authentication.
pub struct VerifyBackend<H: VerifyHttp> {
    http: H,
    service: ServiceSid,
    user: VerifyUser,
    words: Vec<Word>,
    replay_key: Secret,
    /// Seconds since the epoch when the authentication started (push expiry dates).
    started_at: u64,
    /// The verification the last `sms` or `call` started: typed codes are checked against it.
    verification: Option<VerificationSid>,
    /// The push challenge this login created.
    push: Option<ChallengeSid>,
}

impl<H: VerifyHttp> VerifyBackend<H> {
    pub fn new(http: H, verify: &VerifyConfig, user: &VerifyUser, started_at: u64) -> VerifyBackend<H> {
        let mut words = Vec::new();
        if user.phone.is_some() {
            words.extend([Word::Channel(Channel::Sms), Word::Channel(Channel::Call)]);
        }
        if user.push_factor.is_some() {
            words.push(Word::Push);
        }
        VerifyBackend {
            http,
            service: verify.service_sid.clone(),
            user: user.clone(),
            words,
            replay_key: verify.api_key_secret.clone(),
            started_at,
            verification: None,
            push: None,
        }
    }

    fn asked<'a>(&'a self, factor: &'a FactorSid, factor_type: FactorType) -> ChallengeAsked<'a> {
        ChallengeAsked { service: &self.service, identity: &self.user.identity, factor, factor_type }
    }

    fn check(&mut self, sid: VerificationSid, code: &Token) -> Result<TokenVerdict, ApiError> {
        let phone =
            self.user.phone.as_ref().ok_or_else(|| ApiError::Protocol("a verification without a phone".into()))?;
        let (status, body) =
            self.http.post(&paths::verification_check(&self.service), &form::verification_check(&sid, code))?;
        match response::verification_checked(status, &body, &self.service, &sid, phone)? {
            CheckVerdict::Approved => Ok(TokenVerdict::Valid),
            CheckVerdict::WrongCode => Ok(TokenVerdict::Invalid),
            CheckVerdict::NoPendingVerification => {
                self.verification = None;
                Ok(TokenVerdict::Expired)
            }
            CheckVerdict::TooManyAttempts => {
                self.verification = None;
                Err(ApiError::RateLimited("max check attempts reached".into()))
            }
        }
    }

    fn totp(&self, factor: &FactorSid, code: &Token) -> Result<TokenVerdict, ApiError> {
        let path = paths::challenges(&self.service, &self.user.identity);
        let (status, body) = self.http.post(&path, &form::totp_challenge(factor, code))?;
        let challenge = response::challenge_created(status, &body, &self.asked(factor, FactorType::Totp))?;
        Ok(match challenge.status {
            ChallengeStatus::Approved => TokenVerdict::Valid,
            ChallengeStatus::Pending | ChallengeStatus::Denied | ChallengeStatus::Expired => TokenVerdict::Invalid,
        })
    }
}

/// `+15551234567` -> `+1*******67`: enough for the user to recognise, little for a shoulder.
fn masked(phone: &str) -> String {
    let keep_end = 2;
    let chars: Vec<char> = phone.chars().collect();
    chars.iter().enumerate().map(|(i, c)| if i < 2 || i + keep_end >= chars.len() { *c } else { '*' }).collect()
}

impl<H: VerifyHttp> Backend for VerifyBackend<H> {
    fn wording(&self) -> &'static Wording {
        &Wording::NEUTRAL
    }

    fn words(&self) -> &[Word] {
        &self.words
    }

    fn verify_code(&mut self, code: &Token) -> Result<TokenVerdict, ApiError> {
        if let Some(sid) = self.verification.clone() {
            return self.check(sid, code);
        }
        match self.user.totp_factor.clone() {
            Some(factor) => self.totp(&factor, code),
            // Nothing to check a code against before an `sms` or `call`.
            None => Ok(TokenVerdict::Expired),
        }
    }

    fn replay_tag(&self, code: &Token) -> Option<String> {
        match (&self.verification, &self.user.totp_factor) {
            (None, Some(factor)) => Some(super::replay::tag(&self.replay_key, factor, code)),
            _ => None,
        }
    }

    fn send_code(&mut self, channel: Channel) -> Result<ChannelReceipt, ApiError> {
        let phone = self.user.phone.as_ref().ok_or_else(|| ApiError::Protocol("no phone for this user".into()))?;
        let (status, body) =
            self.http.post(&paths::verifications(&self.service), &form::verification(phone, channel))?;
        let sid = response::verification_created(status, &body, &self.service, phone, channel)?;
        self.verification = Some(sid);
        Ok(ChannelReceipt { cellphone: Some(masked(phone.as_str())) })
    }

    fn start_approval(&mut self, request: &ApprovalRequest) -> Result<ApprovalId, ApiError> {
        let factor =
            self.user.push_factor.clone().ok_or_else(|| ApiError::Protocol("no push factor for this user".into()))?;
        let details = PushDetails {
            message: request.message.clone(),
            fields: request.details.clone(),
            expires_at: self.started_at.saturating_add(request.seconds_to_expire),
        };
        let path = paths::challenges(&self.service, &self.user.identity);
        let (status, body) = self.http.post(&path, &form::push_challenge(&factor, &details))?;
        let challenge = response::challenge_created(status, &body, &self.asked(&factor, FactorType::Push))?;
        if challenge.status != ChallengeStatus::Pending {
            return Err(ApiError::Protocol("a new push challenge that is not pending".into()));
        }
        let id = ApprovalId::parse(challenge.sid.as_str())
            .ok_or_else(|| ApiError::Protocol("malformed challenge sid".into()))?;
        self.push = Some(challenge.sid);
        Ok(id)
    }

    fn poll_approval(&mut self, approval: &ApprovalId, within: Duration) -> Result<ApprovalStatus, ApiError> {
        let sid = self
            .push
            .clone()
            .filter(|sid| sid.as_str() == approval.as_str())
            .ok_or_else(|| ApiError::Protocol("a poll for a challenge this login did not create".into()))?;
        let factor =
            self.user.push_factor.clone().ok_or_else(|| ApiError::Protocol("no push factor for this user".into()))?;
        let (status, body) =
            self.http.get_within(&paths::challenge(&self.service, &self.user.identity, &sid), within)?;
        let challenge = response::challenge_fetched(status, &body, &self.asked(&factor, FactorType::Push), &sid)?;
        Ok(match challenge.status {
            ChallengeStatus::Pending => ApprovalStatus::Pending,
            ChallengeStatus::Approved => ApprovalStatus::Approved,
            ChallengeStatus::Denied => ApprovalStatus::Denied,
            ChallengeStatus::Expired => ApprovalStatus::Expired,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::{Identity, Phone};
    use serde_json::{Value, json};
    use std::cell::RefCell;
    use std::collections::VecDeque;

    const HEX: &str = "0123456789abcdef0123456789abcdef";
    const OTHER: &str = "fedcba9876543210fedcba9876543210";
    const IDENTITY: &str = "2f0c9a3e5b7d4e61";

    /// Replies in order; records every request as (method, path, form).
    #[derive(Default)]
    struct Scripted {
        replies: RefCell<VecDeque<Result<(u16, Value), ApiError>>>,
        requests: RefCell<Vec<(String, String, String)>>,
    }

    impl Scripted {
        fn reply(&self, method: &str, path: &[String], form: &str) -> Result<(u16, Vec<u8>), ApiError> {
            self.requests.borrow_mut().push((method.into(), path.join("/"), form.into()));
            let next = self.replies.borrow_mut().pop_front().expect("a scripted reply");
            next.map(|(status, body)| (status, body.to_string().into_bytes()))
        }
    }

    impl VerifyHttp for &Scripted {
        fn get(&self, path: &[String]) -> Result<(u16, Vec<u8>), ApiError> {
            self.reply("GET", path, "")
        }
        fn get_within(&self, path: &[String], _: Duration) -> Result<(u16, Vec<u8>), ApiError> {
            self.reply("GET", path, "")
        }
        fn post(&self, path: &[String], form: &Secret) -> Result<(u16, Vec<u8>), ApiError> {
            self.reply("POST", path, form.expose())
        }
    }

    fn verify_config() -> VerifyConfig {
        VerifyConfig {
            service_sid: ServiceSid::parse(&format!("VA{HEX}")).expect("sid"),
            api_key_sid: crate::verify::ApiKeySid::parse(&format!("SK{HEX}")).expect("sid"),
            api_key_secret: Secret::from("secret"),
        }
    }

    fn user(totp: bool, phone: bool, push: bool) -> VerifyUser {
        VerifyUser {
            identity: Identity::parse(IDENTITY).expect("identity"),
            totp_factor: totp.then(|| FactorSid::parse(&format!("YF{HEX}")).expect("sid")),
            phone: phone.then(|| Phone::parse("+15551234567").expect("phone")),
            push_factor: push.then(|| FactorSid::parse(&format!("YF{OTHER}")).expect("sid")),
        }
    }

    fn challenge(factor: &str, factor_type: &str, status: &str) -> Value {
        json!({
            "sid": format!("YC{HEX}"), "service_sid": format!("VA{HEX}"), "identity": IDENTITY,
            "factor_sid": factor, "factor_type": factor_type, "status": status,
            "expiration_date": "2026-12-02T20:05:00Z"
        })
    }

    fn verification(status: &str, valid: bool) -> Value {
        json!({
            "sid": format!("VE{HEX}"), "service_sid": format!("VA{HEX}"), "to": "+15551234567",
            "channel": "sms", "status": status, "valid": valid
        })
    }

    fn code(text: &str) -> Token {
        Token::parse(text).expect("code")
    }

    #[test]
    fn words_are_only_what_the_user_can_use() {
        let http = Scripted::default();
        let config = verify_config();
        assert!(VerifyBackend::new(&http, &config, &user(true, false, false), 0).words().is_empty());
        assert_eq!(
            VerifyBackend::new(&http, &config, &user(false, true, true), 0).words(),
            [Word::Channel(Channel::Sms), Word::Channel(Channel::Call), Word::Push]
        );
        assert_eq!(VerifyBackend::new(&http, &config, &user(true, false, true), 0).words(), [Word::Push]);
    }

    #[test]
    fn a_code_is_a_totp_challenge_of_the_users_factor_and_only_approved_is_valid() {
        let http = Scripted::default();
        let totp = format!("YF{HEX}");
        http.replies.borrow_mut().extend([
            Ok((201, challenge(&totp, "totp", "approved"))),
            Ok((201, challenge(&totp, "totp", "pending"))),
            Ok((201, challenge(&format!("YF{OTHER}"), "totp", "approved"))),
            Ok((201, challenge(&totp, "push", "approved"))),
        ]);
        let config = verify_config();
        let mut backend = VerifyBackend::new(&http, &config, &user(true, false, false), 0);
        assert_eq!(backend.verify_code(&code("123456")), Ok(TokenVerdict::Valid));
        assert_eq!(backend.verify_code(&code("123456")), Ok(TokenVerdict::Invalid));
        assert!(matches!(backend.verify_code(&code("123456")), Err(ApiError::Protocol(_))));
        assert!(matches!(backend.verify_code(&code("123456")), Err(ApiError::Protocol(_))));
        let requests = http.requests.borrow();
        assert_eq!(requests[0].0, "POST");
        assert_eq!(requests[0].1, format!("v2/Services/VA{HEX}/Entities/{IDENTITY}/Challenges"));
        assert_eq!(requests[0].2, format!("FactorSid=YF{HEX}&AuthPayload=123456"));
        assert!(backend.replay_tag(&code("123456")).is_some());
    }

    #[test]
    fn after_sms_the_code_is_checked_against_that_very_verification() {
        let http = Scripted::default();
        http.replies.borrow_mut().extend([
            Ok((201, verification("pending", false))),
            Ok((200, verification("pending", false))),
            Ok((201, verification("approved", true))),
        ]);
        let config = verify_config();
        let mut backend = VerifyBackend::new(&http, &config, &user(true, true, false), 0);
        let receipt = backend.send_code(Channel::Sms).expect("sent");
        assert_eq!(receipt.cellphone.as_deref(), Some("+1********67"));
        assert_eq!(backend.replay_tag(&code("654321")), None, "Verify refuses a used verification itself");
        assert_eq!(backend.verify_code(&code("000000")), Ok(TokenVerdict::Invalid));
        assert_eq!(backend.verify_code(&code("654321")), Ok(TokenVerdict::Valid));
        let requests = http.requests.borrow();
        assert_eq!(requests[0].1, format!("v2/Services/VA{HEX}/Verifications"));
        assert_eq!(requests[0].2, "To=%2B15551234567&Channel=sms");
        assert_eq!(requests[2].1, format!("v2/Services/VA{HEX}/VerificationCheck"));
        assert_eq!(requests[2].2, format!("VerificationSid=VE{HEX}&Code=654321"));
    }

    #[test]
    fn a_verification_that_is_gone_is_never_a_success_and_the_next_code_goes_to_the_factor() {
        let http = Scripted::default();
        let gone = json!({"code": 20404, "message": "not found", "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404});
        http.replies.borrow_mut().extend([
            Ok((201, verification("pending", false))),
            Ok((404, gone)),
            Ok((201, challenge(&format!("YF{HEX}"), "totp", "approved"))),
        ]);
        let config = verify_config();
        let mut backend = VerifyBackend::new(&http, &config, &user(true, true, false), 0);
        backend.send_code(Channel::Call).map(|_| ()).expect_err("the reply names channel sms");
        http.replies.borrow_mut().push_front(Ok((201, verification("pending", false))));
        backend.send_code(Channel::Sms).expect("sent");
        assert_eq!(backend.verify_code(&code("654321")), Ok(TokenVerdict::Expired));
        assert_eq!(backend.verify_code(&code("123456")), Ok(TokenVerdict::Valid));
    }

    #[test]
    fn too_many_checks_are_a_rate_limit() {
        let http = Scripted::default();
        http.replies.borrow_mut().extend([
            Ok((201, verification("pending", false))),
            Ok((200, verification("max_attempts_reached", false))),
        ]);
        let config = verify_config();
        let mut backend = VerifyBackend::new(&http, &config, &user(false, true, false), 0);
        backend.send_code(Channel::Sms).expect("sent");
        assert!(matches!(backend.verify_code(&code("123456")), Err(ApiError::RateLimited(_))));
        assert_eq!(backend.verify_code(&code("123456")), Ok(TokenVerdict::Expired), "no factor, no verification");
    }

    #[test]
    fn a_push_is_approved_only_by_a_reply_about_the_challenge_this_login_created() {
        let http = Scripted::default();
        let push = format!("YF{OTHER}");
        let mut other_sid = challenge(&push, "push", "approved");
        other_sid["sid"] = json!(format!("YC{OTHER}"));
        http.replies.borrow_mut().extend([
            Ok((201, challenge(&push, "push", "pending"))),
            Ok((200, challenge(&push, "push", "pending"))),
            Ok((200, other_sid)),
            Ok((200, challenge(&push, "push", "approved"))),
        ]);
        let config = verify_config();
        let mut backend = VerifyBackend::new(&http, &config, &user(true, false, true), 1_000);
        let request = ApprovalRequest {
            message: "Login to web1".into(),
            details: vec![("User".into(), "alice".into())],
            seconds_to_expire: 60,
        };
        let approval = backend.start_approval(&request).expect("created");
        assert_eq!(approval.as_str(), format!("YC{HEX}"));
        assert_eq!(backend.poll_approval(&approval, Duration::from_secs(5)), Ok(ApprovalStatus::Pending));
        assert!(matches!(backend.poll_approval(&approval, Duration::from_secs(5)), Err(ApiError::Protocol(_))));
        assert_eq!(backend.poll_approval(&approval, Duration::from_secs(5)), Ok(ApprovalStatus::Approved));
        let forged = ApprovalId::parse(&format!("YC{OTHER}")).expect("id");
        assert!(matches!(backend.poll_approval(&forged, Duration::from_secs(5)), Err(ApiError::Protocol(_))));
        let requests = http.requests.borrow();
        assert!(requests[0].2.contains("ExpirationDate=1970-01-01T00%3A17%3A40Z"), "{}", requests[0].2);
        assert_eq!(requests[1].0, "GET");
        assert_eq!(requests[1].1, format!("v2/Services/VA{HEX}/Entities/{IDENTITY}/Challenges/YC{HEX}"));
    }
}
