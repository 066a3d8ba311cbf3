//! The sandbox's TOTP: what the "Authy app" of a sandbox user would show.
//!
//! RFC 6238 with SHA-1, the configured digits (Authy's API default is 7) and period, and a
//! verification window of ±1 step. Replay tracking lives in the store, not here: totp-rs does
//! not track reuse, it only reports which step matched.

use totp_rs::{Algorithm, Builder, Totp};

/// Digits and period of every user's TOTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OtpParams {
    pub digits: u32,
    pub period: u64,
}

impl OtpParams {
    /// Rejects what totp-rs cannot generate without panicking (it panics at 10+ digits or a
    /// zero step) and what Authy never used (fewer than 6 or more than 8 digits).
    pub(crate) fn validate(digits: u32, period: u64) -> Result<OtpParams, String> {
        if !(6..=8).contains(&digits) {
            return Err(format!("totp_digits must be 6..=8, got {digits}"));
        }
        if period == 0 || period > 86_400 {
            return Err(format!("totp_period_secs must be 1..=86400, got {period}"));
        }
        Ok(OtpParams { digits, period })
    }

    fn totp(self, secret: &[u8]) -> Totp {
        // `build_noncompliant` because secrets loaded from a state file may be shorter than
        // totp-rs's 128-bit minimum; the parameters that could make it panic were validated.
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(self.digits as u8)
            .with_step_duration(self.period)
            .with_skew(1)
            .with_secret(secret.to_vec())
            .build_noncompliant()
    }

    /// The code valid at `unix_time`.
    pub(crate) fn token_at(self, secret: &[u8], unix_time: u64) -> String {
        self.totp(secret).generate(unix_time).to_string()
    }

    /// The step number `token` matches at `now` (±1 step), if any.
    pub(crate) fn matching_step(self, secret: &[u8], token: &str, now: u64) -> Option<u64> {
        if token.len() != self.digits as usize || !token.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.totp(secret).check(token, now)
    }

    /// The step containing `now`.
    pub(crate) fn step(self, now: u64) -> u64 {
        now / self.period
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vector() {
        let p = OtpParams::validate(8, 30).expect("params");
        assert_eq!(p.token_at(b"12345678901234567890", 59), "94287082");
    }

    #[test]
    fn window_is_one_step_each_side() {
        let p = OtpParams::validate(7, 30).expect("params");
        let s = b"abcdefghijabcdefghij";
        let t = 1_700_000_000;
        let tok = p.token_at(s, t);
        assert_eq!(tok.len(), 7);
        assert_eq!(p.matching_step(s, &tok, t), Some(t / 30));
        assert!(p.matching_step(s, &tok, t + 30).is_some());
        assert!(p.matching_step(s, &tok, t - 30).is_some());
        assert!(p.matching_step(s, &tok, t + 90).is_none());
        assert!(p.matching_step(s, "+123456", t).is_none());
        assert!(p.matching_step(s, "", t).is_none());
    }

    #[test]
    fn bad_parameters_are_refused() {
        assert!(OtpParams::validate(10, 30).is_err());
        assert!(OtpParams::validate(5, 30).is_err());
        assert!(OtpParams::validate(6, 0).is_err());
    }
}
