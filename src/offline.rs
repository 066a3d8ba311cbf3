//! Local TOTP verification (RFC 6238, HMAC-SHA1) for the offline authenticator entry.
//!
//! This file only answers "which time step, if any, does this code belong to": it keeps no
//! state and decides nothing about replay or rate limits (that is `state` and `flow`). Every
//! candidate step in the skew window is computed and compared in constant time, so the time
//! taken does not tell which step matched or how many digits were right. Codes are held in
//! zeroed buffers and never printed; secrets stay in `Secret`.

use crate::config::{OfflineConfig, normalize_base32_secret};
use crate::secret::Secret;
use std::fmt::Write as _;
use subtle::{ConditionallySelectable, ConstantTimeEq};
use totp_rs::{Algorithm, Builder, Totp};
use zeroize::Zeroizing;

/// The TOTP parameters of the offline entry, as `[offline]` configures them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfflineParams {
    pub digits: u32,
    pub period_secs: u64,
    pub skew_steps: u8,
}

impl From<&OfflineConfig> for OfflineParams {
    fn from(config: &OfflineConfig) -> Self {
        OfflineParams { digits: config.digits, period_secs: config.period_secs, skew_steps: config.skew_steps }
    }
}

impl OfflineParams {
    /// The unix time at which the window of time step `step` ends (saturating).
    pub fn step_end(&self, step: u64) -> u64 {
        step.saturating_add(1).saturating_mul(self.period_secs)
    }

    /// The end of the newest window a code may match at `unix_time` (the skew included).
    pub fn latest_end(&self, unix_time: u64) -> u64 {
        let step = unix_time.checked_div(self.period_secs).unwrap_or(u64::MAX);
        self.step_end(step.saturating_add(u64::from(self.skew_steps)))
    }
}

/// Builds the generator, or None when the secret or the parameters cannot be used. totp-rs
/// refuses secrets under 128 bits in `build`; 80-bit seeds are common in authenticator apps,
/// so the checks are done here (at least 80 bits, 6 to 8 digits, a non-zero period) and the
/// generator is built with `build_noncompliant`.
fn generator(secret_base32: &Secret, params: &OfflineParams) -> Option<Totp> {
    if !(6..=8).contains(&params.digits) || params.period_secs == 0 {
        return None;
    }
    let canonical = normalize_base32_secret(secret_base32)?;
    let secret = totp_rs::Secret::try_from_base32(canonical.expose()).ok()?;
    if secret.as_bytes().len() < 10 {
        return None;
    }
    Some(
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(u8::try_from(params.digits).ok()?)
            .with_step_duration(params.period_secs)
            .with_skew(0)
            .with_secret(secret)
            .build_noncompliant(),
    )
}

/// The code of time step `step`, zero-padded to `digits`.
fn code_of_step(totp: &Totp, step: u64, period_secs: u64) -> Option<Zeroizing<String>> {
    let time = step.checked_mul(period_secs)?;
    let mut code = Zeroizing::new(String::with_capacity(8));
    write!(code, "{}", totp.generate(time)).ok()?;
    Some(code)
}

/// Some(step) of the newest time step in `[now - skew, now + skew]` whose code equals `code`,
/// None otherwise, or when `code` is not exactly `digits` ASCII digits, or when the secret or
/// the parameters are unusable. All candidate steps are always computed and compared in
/// constant time.
pub fn matching_step(secret_base32: &Secret, code: &str, unix_time: u64, params: &OfflineParams) -> Option<u64> {
    let expected_len = usize::try_from(params.digits).ok()?;
    if code.len() != expected_len || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = generator(secret_base32, params)?;
    let origin = unix_time / params.period_secs;
    let skew = u64::from(params.skew_steps);
    let mut found = subtle::Choice::from(0u8);
    let mut newest = 0u64;
    for step in origin.saturating_sub(skew)..=origin.saturating_add(skew) {
        let Some(candidate) = code_of_step(&totp, step, params.period_secs) else {
            continue;
        };
        let equal = candidate.as_bytes().ct_eq(code.as_bytes());
        // Steps ascend, so the last match is the newest one.
        newest = u64::conditional_select(&newest, &step, equal);
        found |= equal;
    }
    bool::from(found).then_some(newest)
}

/// The code the authenticator shows at `unix_time` (for tests and the CLI), or None when the
/// secret or the parameters are unusable.
pub fn code_at(secret_base32: &Secret, unix_time: u64, params: &OfflineParams) -> Option<Secret> {
    let totp = generator(secret_base32, params)?;
    let code = code_of_step(&totp, unix_time / params.period_secs, params.period_secs)?;
    Some(Secret::new(code.as_str().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B: the ASCII seed "12345678901234567890" (160 bits), in base32.
    const RFC_SEED: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    /// An 80-bit seed, as authenticator apps commonly issue.
    const SHORT_SEED: &str = "JBSWY3DPEHPK3PXP";

    fn params(digits: u32, skew_steps: u8) -> OfflineParams {
        OfflineParams { digits, period_secs: 30, skew_steps }
    }

    fn code(seed: &str, time: u64, params: &OfflineParams) -> String {
        code_at(&Secret::from(seed), time, params).expect("code").expose().to_owned()
    }

    #[test]
    fn rfc_6238_sha1_vectors_are_reproduced_and_accepted() {
        let params = params(8, 0);
        let vectors = [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        for (time, expected) in vectors {
            assert_eq!(code(RFC_SEED, time, &params), expected, "T={time}");
            assert_eq!(matching_step(&Secret::from(RFC_SEED), expected, time, &params), Some(time / 30), "T={time}");
        }
    }

    #[test]
    fn an_80_bit_secret_generates_and_verifies_codes() {
        let params = params(6, 1);
        let time = 1_700_000_000;
        let current = code(SHORT_SEED, time, &params);
        assert_eq!(current.len(), 6);
        assert_eq!(matching_step(&Secret::from(SHORT_SEED), &current, time, &params), Some(time / 30));
    }

    #[test]
    fn secrets_pasted_in_lower_case_with_spaces_or_padding_verify_like_the_canonical_form() {
        let params = params(6, 0);
        let time = 1_700_000_000;
        let current = code(SHORT_SEED, time, &params);
        for pasted in ["jbswy3dpehpk3pxp", "jbsw y3dp ehpk 3pxp", "JBSW-Y3DP-EHPK-3PXP======"] {
            assert_eq!(code(pasted, time, &params), current, "{pasted}");
            assert_eq!(matching_step(&Secret::from(pasted), &current, time, &params), Some(time / 30), "{pasted}");
        }
    }

    #[test]
    fn secrets_that_are_not_base32_or_shorter_than_80_bits_verify_nothing() {
        let params = params(6, 1);
        for seed in ["JBSWY3DP", "not base32!", ""] {
            assert!(code_at(&Secret::from(seed), 59, &params).is_none(), "{seed}");
            assert_eq!(matching_step(&Secret::from(seed), "123456", 59, &params), None);
        }
    }

    #[test]
    fn codes_within_the_skew_window_match_their_own_step_and_others_do_not() {
        let seed = Secret::from(RFC_SEED);
        let params = params(6, 1);
        let now = 1_700_000_015;
        let step = now / 30;
        for offset in [-1i64, 0, 1] {
            let time = (now as i64 + offset * 30) as u64;
            let candidate = code(RFC_SEED, time, &params);
            assert_eq!(
                matching_step(&seed, &candidate, now, &params),
                Some((step as i64 + offset) as u64),
                "offset {offset}"
            );
        }
        for offset in [-3i64, -2, 2, 3] {
            let time = (now as i64 + offset * 30) as u64;
            let candidate = code(RFC_SEED, time, &params);
            if (-1..=1).all(|o| code(RFC_SEED, (now as i64 + o * 30) as u64, &params) != candidate) {
                assert_eq!(matching_step(&seed, &candidate, now, &params), None, "offset {offset}");
            }
        }
    }

    #[test]
    fn a_zero_skew_accepts_only_the_current_step() {
        let seed = Secret::from(RFC_SEED);
        let params = params(6, 0);
        let now = 1_700_000_015;
        let previous = code(RFC_SEED, now - 30, &params);
        let current = code(RFC_SEED, now, &params);
        assert_eq!(matching_step(&seed, &current, now, &params), Some(now / 30));
        if previous != current {
            assert_eq!(matching_step(&seed, &previous, now, &params), None);
        }
    }

    #[test]
    fn codes_of_the_wrong_length_or_with_non_digits_are_refused() {
        let seed = Secret::from(RFC_SEED);
        let six = params(6, 1);
        let current = code(RFC_SEED, 59, &six);
        assert_eq!(matching_step(&seed, &current, 59, &six), Some(1));
        let eight = params(8, 1);
        assert_eq!(matching_step(&seed, &current, 59, &eight), None);
        assert_eq!(matching_step(&seed, "94287082", 59, &eight), Some(1));
        for bad in ["9428708", "942870820", "+4287082", " 94287082", "9428708a", "９4287082", ""] {
            assert_eq!(matching_step(&seed, bad, 59, &eight), None, "{bad:?}");
        }
    }

    #[test]
    fn unusable_parameters_verify_nothing() {
        let seed = Secret::from(RFC_SEED);
        for bad in [
            OfflineParams { digits: 5, period_secs: 30, skew_steps: 1 },
            OfflineParams { digits: 9, period_secs: 30, skew_steps: 1 },
            OfflineParams { digits: 6, period_secs: 0, skew_steps: 1 },
        ] {
            assert!(code_at(&seed, 59, &bad).is_none(), "{bad:?}");
            assert_eq!(matching_step(&seed, "123456", 59, &bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_period_from_the_configuration_is_used() {
        let seed = Secret::from(RFC_SEED);
        let params = OfflineParams { digits: 6, period_secs: 60, skew_steps: 0 };
        let start = 1_700_000_040; // a multiple of 60
        let current = code(RFC_SEED, start, &params);
        assert_eq!(code(RFC_SEED, start + 59, &params), current);
        assert_eq!(matching_step(&seed, &current, start + 59, &params), Some(start / 60));
    }

    #[test]
    fn times_at_the_ends_of_u64_do_not_panic() {
        let seed = Secret::from(RFC_SEED);
        let params = params(6, 10);
        for time in [0, u64::MAX] {
            let _ = code_at(&seed, time, &params);
            let _ = matching_step(&seed, "123456", time, &params);
        }
    }

    #[test]
    fn params_come_from_the_offline_configuration() {
        let config = OfflineConfig {
            digits: 7,
            period_secs: 45,
            skew_steps: 2,
            state_dir: "/var/lib/pam_authy".into(),
            max_failures: 5,
            failure_window_secs: 300,
        };
        assert_eq!(OfflineParams::from(&config), OfflineParams { digits: 7, period_secs: 45, skew_steps: 2 });
    }
}
