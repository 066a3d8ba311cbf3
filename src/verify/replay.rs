//! The local replay guard for Verify TOTP codes.
//!
//! Verify does not refuse a TOTP code presented twice within its validity window, so the
//! module remembers every code it submitted for a factor, per user in `state_dir`, and
//! refuses the same code for the same factor until the longest window a Verify factor can
//! have has passed. What is stored is a keyed hash (HMAC-SHA256 under the API key secret,
//! which only root can read) of the factor and the code, never the code: a six-digit code
//! hashed without a key would be found by trying all of them.
//!
//! The claim is taken before the request and lasts `WINDOW` plus `[api] timeout_secs`: the
//! service accepts the code at the latest when the request ends, and the code's window
//! cannot outlast that moment by more than `WINDOW`, whatever the factor's skew and time
//! step (the module does not read them). A claim is released only when the service answered
//! that it did not accept the code; after a timeout or an unreadable reply it may have, and
//! the claim stays. At most `state::MAX_USED_CODES` (64) claims are kept per user; a full
//! list refuses every new code (fail closed) until its oldest claim ends, within one claim's
//! life. One factor cannot fill it: with time steps of at least 20 s it has at most about 20
//! distinct codes in that time; only many logins in flight at once, or killed mid-request,
//! can.

use super::FactorSid;
use crate::backend::Token;
use crate::secret::Secret;
use std::time::Duration;

/// The longest a Verify TOTP code can be accepted: `(2 * skew + 1) * time_step` with the
/// largest values a factor may have (skew 0 to 2, time step 20 to 60 s): 5 × 60 s.
pub const WINDOW: Duration = Duration::from_secs(5 * 60);

/// The tag stored for `code` presented for `factor`: 32 hex digits.
pub fn tag(key: &Secret, factor: &FactorSid, code: &Token) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.expose().as_bytes());
    let mut context = ring::hmac::Context::with_key(&key);
    context.update(b"pam_authy verify totp\0");
    context.update(factor.as_str().as_bytes());
    context.update(b"\0");
    context.update(code.expose().as_bytes());
    let digest = context.sign();
    digest.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_depends_on_key_factor_and_code_and_never_shows_the_code() {
        let key = Secret::from("secret");
        let factor = FactorSid::parse("YF0123456789abcdef0123456789abcdef").expect("sid");
        let other = FactorSid::parse("YFfedcba9876543210fedcba9876543210").expect("sid");
        let code = Token::parse("123456").expect("code");
        let tag_one = tag(&key, &factor, &code);
        assert_eq!(tag_one.len(), 32);
        assert_eq!(tag_one, tag(&key, &factor, &code));
        assert_ne!(tag_one, tag(&Secret::from("other"), &factor, &code));
        assert_ne!(tag_one, tag(&key, &other, &code));
        assert_ne!(tag_one, tag(&key, &factor, &Token::parse("123457").expect("code")));
        assert!(!tag_one.contains("123456"));
    }
}
