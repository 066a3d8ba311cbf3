//! The grace period: with `grace_secs` set, a login from the same account, service and
//! remote host within that time of a verified second factor is not asked again.
//!
//! Only remote logins qualify (no rhost, no grace). A state failure means "no grace": the
//! user is asked for a factor, and a failure to record one is logged, never fatal.

use super::{Deps, Login, StateCell};
use crate::config::Config;
use crate::log::{Level, format_fields};

/// The grace period of one login: only with `grace_secs` set and a remote host.
#[derive(Clone, Copy)]
pub(super) struct GracePeriod<'a> {
    config: &'a Config,
    account: &'a str,
    service: &'a str,
    rhost: &'a str,
}

impl<'a> GracePeriod<'a> {
    pub(super) fn new(config: &'a Config, login: &'a Login, account: &'a str) -> Option<GracePeriod<'a>> {
        let rhost = login.rhost.as_deref().unwrap_or("");
        (!config.auth.grace.is_zero() && !rhost.is_empty()).then_some(GracePeriod {
            config,
            account,
            service: &login.service,
            rhost,
        })
    }

    /// A state failure means "no grace": the user is asked for a factor.
    pub(super) fn still_valid<'d>(&self, deps: &Deps<'d>, state: &StateCell<'d>) -> bool {
        let now = deps.clock.unix_time();
        let mut valid = false;
        let checked = state.get(self.config, deps.open_state).and_then(|store| {
            store.update(self.account, &mut |state| {
                valid = state.grace_valid(self.service, self.rhost, now);
                false
            })
        });
        if let Err(error) = checked {
            deps.log.log(
                Level::Warning,
                &format_fields(&[("event", "grace_state_failed"), ("detail", &error.to_string())]),
            );
            return false;
        }
        valid
    }

    pub(super) fn record<'d>(&self, deps: &Deps<'d>, state: &StateCell<'d>) {
        let now = deps.clock.unix_time();
        let expires_at = now.saturating_add(self.config.auth.grace.as_secs());
        let recorded = state.get(self.config, deps.open_state).and_then(|store| {
            store.update(self.account, &mut |state| {
                state.prune(now, self.config.offline.failure_window_secs);
                state.grant_grace(self.service, self.rhost, expires_at);
                true
            })
        });
        if let Err(error) = recorded {
            deps.log.log(
                Level::Warning,
                &format_fields(&[("event", "grace_record_failed"), ("detail", &error.to_string())]),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::TokenVerdict;
    use crate::clock::FakeClock;
    use crate::flow::testing::*;
    use crate::flow::*;
    use crate::state::MemoryStateStore;
    use std::cell::RefCell;
    use std::time::Duration;

    #[test]
    fn the_grace_period_skips_the_prompt_for_the_same_triple_until_it_expires() {
        let config = config("grace_secs = 600");
        let store = MemoryStateStore::new();
        let clock = FakeClock::at_unix(NOW);
        let api = ScriptedApi {
            verdicts: RefCell::new(vec![Ok(TokenVerdict::Valid), Ok(TokenVerdict::Valid)].into()),
            ..ScriptedApi::default()
        };
        let ssh = login("alice");
        let first =
            run_full(&config, &args(&[]), &ssh, &[Step::Prompt("Authy token", "1234567")], &api, &store, &clock);
        assert_eq!(first.outcome, Outcome::Verified(Factor::Token));
        let hit = run_full(&config, &args(&[]), &ssh, &[], &api, &store, &clock);
        assert_eq!((hit.outcome, hit.reason.as_str()), (Outcome::Verified(Factor::Grace), "grace_period"));
        let other_host = Login { rhost: Some("192.0.2.99".into()), ..ssh.clone() };
        let miss =
            run_full(&config, &args(&[]), &other_host, &[Step::PromptFails("Authy token")], &api, &store, &clock);
        assert_eq!(miss.outcome, Outcome::ConversationError, "another rhost is a miss");
        let local = Login { rhost: None, ..ssh.clone() };
        let miss = run_full(&config, &args(&[]), &local, &[Step::PromptFails("Authy token")], &api, &store, &clock);
        assert_eq!(miss.outcome, Outcome::ConversationError, "no rhost, no grace");
        clock.advance(Duration::from_secs(601));
        let expired =
            run_full(&config, &args(&[]), &ssh, &[Step::Prompt("Authy token", "7654321")], &api, &store, &clock);
        assert_eq!(expired.outcome, Outcome::Verified(Factor::Token));
    }
}
