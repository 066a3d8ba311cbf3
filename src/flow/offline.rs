//! The offline fallback, used only when the API is unreachable and the user has an offline
//! secret: codes of the local TOTP entry, checked against the replay step and the failure
//! counter in the state store.
//!
//! A code succeeds only if the time window of its step ends after the window of every code
//! accepted before (windows, not step numbers, so a change of `period_secs` or `digits`
//! neither locks users out nor reopens a replay), and only if the store recorded it. Any state failure refuses the code; too many wrong
//! codes within the window lock the fallback.

use super::{ConvError, Decision, Factor, Outcome, Session};
use crate::offline::{self, OfflineParams};
use std::ops::ControlFlow;

pub fn offline_prompt(wording: &crate::backend::Wording) -> String {
    format!("{} cannot be reached. Offline code (pam_authy entry of your authenticator): ", wording.service)
}
/// Too many wrong offline codes lately: the fallback refuses every code for a while.
pub const OFFLINE_LOCKED: &str = "Too many wrong offline codes lately; try again later.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OfflineVerdict {
    Accepted,
    Replayed,
    Wrong,
    Locked,
}

impl Session<'_, '_> {
    /// The offline fallback: codes of the local TOTP entry, checked against the replay step
    /// and the failure counter in the state store. Any state failure refuses the code.
    pub(super) fn offline(&mut self) -> Decision {
        let Some(secret) = self.offline_secret else {
            return self.decision(Outcome::Unavailable, "api_unreachable");
        };
        let store = match self.state.get(self.config, self.deps.open_state) {
            Ok(store) => store,
            Err(error) => return self.decision(Outcome::ServiceError, format!("offline_state: {error}")),
        };
        let params = OfflineParams::from(&self.config.offline);
        let offline = &self.config.offline;
        while self.tries_left() {
            let code = match self.deps.conversation.prompt(&offline_prompt(self.backend.wording()), false) {
                Ok(code) => code,
                Err(ConvError) => return self.conversation_failed(),
            };
            let now = self.deps.clock.unix_time();
            let window_end =
                offline::matching_step(secret, code.expose(), now, &params).map(|step| params.step_end(step));
            let mut verdict = OfflineVerdict::Wrong;
            let updated = store.update(self.account, &mut |state| {
                state.prune(now, offline.failure_window_secs);
                if state.locked_out(now, offline.max_failures, offline.failure_window_secs) {
                    verdict = OfflineVerdict::Locked;
                    return false;
                }
                state.migrate_offline_step(params.period_secs, params.latest_end(now));
                verdict = match window_end {
                    Some(end) if state.accept_window(end) => OfflineVerdict::Accepted,
                    Some(_) => OfflineVerdict::Replayed,
                    None => OfflineVerdict::Wrong,
                };
                if verdict != OfflineVerdict::Accepted {
                    state.record_failure(now);
                }
                true
            });
            if let Err(error) = updated {
                return self.decision(Outcome::ServiceError, format!("offline_state: {error}"));
            }
            let complaint = match verdict {
                OfflineVerdict::Accepted => {
                    return self.decision(Outcome::Verified(Factor::Offline), "offline_code_valid");
                }
                OfflineVerdict::Locked => {
                    let _ = self.deps.conversation.error(OFFLINE_LOCKED);
                    return self.decision(Outcome::MaxTries, "offline_locked_out");
                }
                OfflineVerdict::Replayed => "That code was already used; wait for the next one.",
                OfflineVerdict::Wrong => "Wrong offline code.",
            };
            if let ControlFlow::Break(decision) = self.failed_try(complaint) {
                return decision;
            }
        }
        self.decision(Outcome::MaxTries, "too_many_failed_tries")
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::ApiError;
    use crate::clock::FakeClock;
    use crate::config::Config;
    use crate::flow::testing::*;
    use crate::flow::*;
    use crate::offline::{self, OfflineParams};
    use crate::secret::Secret;
    use crate::state::MemoryStateStore;
    use std::cell::RefCell;
    use std::path::Path;
    use std::time::Duration;

    fn offline_config(extra: &str) -> Config {
        let text = format!(
            "[api]\nurl = \"https://127.0.0.1:1\"\napi_key = \"k\"\n[auth]\n{extra}\n[users]\nalice = {{ authy_id = 42, offline_secret = \"{SEED}\" }}\n"
        );
        Config::parse(Path::new("/test.toml"), &text).expect("config")
    }

    const SEED: &str = "JBSWY3DPEHPK3PXP";

    fn offline_code(at: u64) -> &'static str {
        code_with(at, 6, 30)
    }

    fn code_with(at: u64, digits: u32, period_secs: u64) -> &'static str {
        let params = OfflineParams { digits, period_secs, skew_steps: 1 };
        let code = offline::code_at(&Secret::from(SEED), at, &params).expect("code");
        Box::leak(code.expose().to_owned().into_boxed_str())
    }

    /// One offline login attempt (one try) at the clock's time with `digits` and `period_secs`.
    fn offline_try(store: &MemoryStateStore, clock: &FakeClock, digits: u32, period_secs: u64, code: &str) -> Outcome {
        offline_run(store, clock, (digits, period_secs), code, None)
    }

    /// `offline_try` of a code that must be refused: the one try says why, and that it was the last.
    fn offline_refused(
        store: &MemoryStateStore,
        clock: &FakeClock,
        digits: u32,
        period_secs: u64,
        code: &str,
    ) -> Outcome {
        offline_run(store, clock, (digits, period_secs), code, Some(Step::Error(crate::flow::NO_TRIES_LEFT)))
    }

    fn offline_run(
        store: &MemoryStateStore,
        clock: &FakeClock,
        (digits, period_secs): (u32, u64),
        code: &str,
        said: Option<Step>,
    ) -> Outcome {
        let config =
            offline_config(&format!("max_tries = 1\n[offline]\ndigits = {digits}\nperiod_secs = {period_secs}"));
        let code: &'static str = Box::leak(code.to_owned().into_boxed_str());
        let mut steps = vec![Step::Prompt("Authy token", "1234567"), Step::Prompt("Offline code", code)];
        steps.extend(said);
        run_offline(&config, &steps, store, clock).outcome
    }

    fn unreachable_api() -> ScriptedApi {
        ScriptedApi {
            verdicts: RefCell::new(vec![Err(ApiError::Unreachable("refused".into()))].into()),
            ..ScriptedApi::default()
        }
    }

    fn run_offline(config: &Config, steps: &[Step], store: &MemoryStateStore, clock: &FakeClock) -> Decision {
        run_full(config, &args(&[]), &login("alice"), steps, &unreachable_api(), store, clock)
    }

    #[test]
    fn an_unreachable_api_falls_back_to_the_offline_code() {
        let store = MemoryStateStore::new();
        let steps = [Step::Prompt("Authy token", "1234567"), Step::Prompt("Offline code", offline_code(NOW))];
        let decision = run_offline(&offline_config("failmode = \"safe\""), &steps, &store, &FakeClock::at_unix(NOW));
        assert_eq!(decision.outcome, Outcome::Verified(Factor::Offline));
        assert_eq!(store.get("alice").offline_used_until, Some((NOW / 30 + 1) * 30));
    }

    #[test]
    fn a_wrong_offline_code_is_a_failed_try_and_counted() {
        let store = MemoryStateStore::new();
        let steps = [
            Step::Prompt("Authy token", "1234567"),
            Step::Prompt("Offline code", "000000"),
            Step::Error("Wrong offline code"),
            Step::Prompt("Offline code", "abc"),
            Step::Error("Wrong offline code. No tries left."),
        ];
        let decision = run_offline(&offline_config("max_tries = 2"), &steps, &store, &FakeClock::at_unix(NOW));
        assert_eq!(decision.outcome, Outcome::MaxTries);
        assert_eq!(store.get("alice").failures.len(), 2);
    }

    #[test]
    fn a_replayed_or_older_offline_code_is_refused() {
        let store = MemoryStateStore::new();
        let clock = FakeClock::at_unix(NOW);
        let config = offline_config("max_tries = 1");
        let first = [Step::Prompt("Authy token", "1234567"), Step::Prompt("Offline code", offline_code(NOW))];
        assert_eq!(run_offline(&config, &first, &store, &clock).outcome, Outcome::Verified(Factor::Offline));
        let used = Step::Error("That code was already used; wait for the next one. No tries left.");
        let again = [first[0].clone(), first[1].clone(), used.clone()];
        let again = run_offline(&config, &again, &store, &clock);
        assert_eq!(again.outcome, Outcome::MaxTries, "same step twice");
        clock.advance(Duration::from_secs(30));
        let wrong = Step::Error("Wrong offline code. No tries left.");
        let older =
            [Step::Prompt("Authy token", "1234567"), Step::Prompt("Offline code", offline_code(NOW - 30)), wrong];
        assert_eq!(run_offline(&config, &older, &store, &clock).outcome, Outcome::MaxTries, "a past step");
        let newer = [Step::Prompt("Authy token", "1234567"), Step::Prompt("Offline code", offline_code(NOW + 30))];
        assert_eq!(run_offline(&config, &newer, &store, &clock).outcome, Outcome::Verified(Factor::Offline));
    }

    /// Each case: (digits, period) before the change, then after it. A code is accepted
    /// before; after the change that code, and any code of a window the accepted one already
    /// covered, is refused, while the code of the next window is accepted, and the refusals
    /// never lock the user out.
    #[test]
    fn changing_the_period_or_the_digits_neither_locks_out_nor_reopens_a_replay() {
        let cases =
            [((6, 30), (6, 60)), ((6, 60), (6, 30)), ((6, 30), (8, 30)), ((8, 30), (6, 30)), ((6, 30), (8, 60))];
        for ((digits, period), (new_digits, new_period)) in cases {
            let case = format!("{digits} digits/{period} s -> {new_digits}/{new_period}");
            let store = MemoryStateStore::new();
            // The start of a 60 s window, hence of a 30 s one too.
            let start = NOW / 60 * 60 + 60;
            let clock = FakeClock::at_unix(start + 5);
            let accepted = code_with(start + 5, digits, period);
            assert_eq!(
                offline_try(&store, &clock, digits, period, accepted),
                Outcome::Verified(Factor::Offline),
                "{case}"
            );

            // After the change, still inside the accepted window.
            assert_eq!(
                offline_refused(&store, &clock, new_digits, new_period, accepted),
                Outcome::MaxTries,
                "{case}: replay"
            );
            let suffix = &accepted[accepted.len().saturating_sub(new_digits as usize)..];
            assert_eq!(
                offline_refused(&store, &clock, new_digits, new_period, suffix),
                Outcome::MaxTries,
                "{case}: suffix"
            );
            if new_period <= period {
                let covered = code_with(start + 5, new_digits, new_period);
                assert_eq!(
                    offline_refused(&store, &clock, new_digits, new_period, covered),
                    Outcome::MaxTries,
                    "{case}"
                );
            }

            // A fresh code: the new window after the accepted one.
            let next = start + period.max(new_period) + 1;
            clock.advance(Duration::from_secs(next - (start + 5)));
            let fresh = code_with(next, new_digits, new_period);
            assert_eq!(
                offline_try(&store, &clock, new_digits, new_period, fresh),
                Outcome::Verified(Factor::Offline),
                "{case}: fresh"
            );
            assert_eq!(
                offline_refused(&store, &clock, new_digits, new_period, fresh),
                Outcome::MaxTries,
                "{case}: again"
            );
        }
    }

    #[test]
    fn offline_verification_locks_after_max_failures_for_the_window() {
        let store = MemoryStateStore::new();
        let clock = FakeClock::at_unix(NOW);
        let config = offline_config("max_tries = 1\n[offline]\nmax_failures = 2\nfailure_window_secs = 300");
        let wrong = [
            Step::Prompt("Authy token", "1234567"),
            Step::Prompt("Offline code", "000000"),
            Step::Error("Wrong offline code. No tries left."),
        ];
        for _ in 0..2 {
            assert_eq!(run_offline(&config, &wrong, &store, &clock).outcome, Outcome::MaxTries);
        }
        let right = [
            Step::Prompt("Authy token", "1234567"),
            Step::Prompt("Offline code", offline_code(NOW)),
            Step::Error(super::OFFLINE_LOCKED),
        ];
        let locked = run_offline(&config, &right, &store, &clock);
        assert_eq!((locked.outcome, locked.reason.as_str()), (Outcome::MaxTries, "offline_locked_out"));
        clock.advance(Duration::from_secs(301));
        let right = [Step::Prompt("Authy token", "1234567"), Step::Prompt("Offline code", offline_code(NOW + 301))];
        assert_eq!(run_offline(&config, &right, &store, &clock).outcome, Outcome::Verified(Factor::Offline));
    }

    #[test]
    fn an_unusable_state_store_refuses_the_offline_code() {
        let steps = [Step::Prompt("Authy token", "1234567"), Step::Prompt("Offline code", offline_code(NOW))];
        let decision = run_offline(
            &offline_config("failmode = \"safe\""),
            &steps,
            &MemoryStateStore::failing(),
            &FakeClock::at_unix(NOW),
        );
        assert_eq!(decision.outcome, Outcome::ServiceError);
    }

    #[test]
    fn users_without_an_offline_secret_get_failmode_and_others_never_do() {
        let decision = run_offline(
            &offline_config("failmode = \"safe\""),
            &[Step::Prompt("Authy token", "1234567"), Step::PromptFails("Offline code")],
            &MemoryStateStore::new(),
            &FakeClock::at_unix(NOW),
        );
        assert_eq!(decision.outcome, Outcome::ConversationError);
    }
}
