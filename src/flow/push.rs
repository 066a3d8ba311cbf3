//! A push: send an approval request, tell the user, and wait for the verdict on that very
//! request until the deadline, polling at the configured pace; a poll in flight at the
//! deadline is cut there.
//!
//! Only `Approved` succeeds. Denied, expired or unanswered pushes are failed tries that go
//! back to the prompt; a push that could not be sent goes back without costing a try. While
//! waiting, an unreachable API keeps the poll going; any other failure ends the login.

use super::{ConvError, Decision, Factor, Outcome, Session};
use crate::backend::{ApiError, ApprovalId, ApprovalStatus, Wording};
use crate::context;
use crate::log::Level;
use crate::secret::Secret;
use std::ops::ControlFlow;
use std::time::Duration;

/// Under sshd an info message waits for the next prompt, so the push notice is a prompt.
pub fn push_prompt(wording: &Wording) -> String {
    format!("{} sent: approve it on your phone, then press Enter (or type a {}): ", wording.push, wording.code)
}

/// How often a waiting push tells the user (and so learns whether the application is still
/// there, e.g. after Ctrl-C): a quarter of the timeout, between 1 and 15 seconds.
fn push_notice_every(timeout: Duration) -> Duration {
    (timeout / 4).clamp(Duration::from_secs(1), Duration::from_secs(15))
}

/// How a push ended.
enum PushEnd {
    Approved,
    /// Denied, expired or not answered in time: the user may still type a token.
    NotApproved(&'static str),
    /// The user typed something at the push prompt instead of pressing Enter.
    Typed(Secret),
    /// Could not be sent: the user may still type a token.
    NotSent,
    /// A result that ends the authentication.
    Final(Decision),
}

impl Session<'_, '_> {
    /// Sends a push and acts on how it ended; text typed at the push prompt is answered
    /// like any other answer.
    pub(super) fn push_step(&mut self) -> ControlFlow<Decision> {
        match self.push() {
            PushEnd::Approved => ControlFlow::Break(self.decision(Outcome::Verified(Factor::Push), "push_approved")),
            PushEnd::Final(decision) => ControlFlow::Break(decision),
            PushEnd::Typed(text) => self.answer(&text),
            PushEnd::NotSent => ControlFlow::Continue(()),
            PushEnd::NotApproved(why) => self.failed_try(why),
        }
    }

    /// Under sshd (PAM_TTY "ssh") info messages are held until the next prompt, so the push
    /// notice must itself be a prompt; elsewhere it is shown at once and the module waits.
    pub(super) fn notice_by_prompt(&self) -> bool {
        self.login.tty.as_deref() == Some("ssh") || self.login.service == "sshd"
    }

    /// Sends a OneTouch request and waits for its verdict.
    fn push(&mut self) -> PushEnd {
        match self.take_channel_request() {
            ControlFlow::Continue(true) => {}
            ControlFlow::Continue(false) => return PushEnd::NotSent,
            ControlFlow::Break(decision) => return PushEnd::Final(decision),
        }
        let timeout = self.config.auth.push_timeout;
        let request = context::approval_request(self.login, timeout.as_secs(), &self.config.auth.push_details);
        let approval = match self.backend.start_approval(&request) {
            Ok(approval) => approval,
            Err(error) if self.setup_broken(&error) => return PushEnd::Final(self.end_with(&error)),
            Err(error) => {
                self.log(Level::Notice, "push_failed", &error.to_string());
                let Wording { code, app, .. } = self.backend.wording();
                let complaint = format!("The push could not be sent; type a {code} from {app} instead.");
                return match self.deps.conversation.error(&complaint) {
                    Ok(()) => PushEnd::NotSent,
                    Err(ConvError) => PushEnd::Final(self.conversation_failed()),
                };
            }
        };
        self.log(Level::Info, "push_sent", approval.as_str());
        let started = self.deps.clock.monotonic();
        let deadline = started + timeout;
        if self.notice_by_prompt() {
            match self.deps.conversation.prompt(&push_prompt(self.backend.wording()), false) {
                Ok(typed) if !typed.expose().trim().is_empty() => return PushEnd::Typed(typed),
                Ok(_) => {}
                Err(ConvError) => return PushEnd::Final(self.conversation_failed()),
            }
        } else {
            let notice = format!(
                "{} sent to your phone: approve it there (waiting up to {} s).",
                self.backend.wording().push,
                timeout.as_secs()
            );
            if self.deps.conversation.info(&notice).is_err() {
                return PushEnd::Final(self.conversation_failed());
            }
        }
        self.wait_for_approval(&approval, started, deadline)
    }

    fn wait_for_approval(&mut self, approval: &ApprovalId, started: Duration, deadline: Duration) -> PushEnd {
        let poll = self.config.auth.push_poll;
        let prompted = self.notice_by_prompt();
        let notice_every = push_notice_every(self.config.auth.push_timeout);
        let mut next_notice = started + notice_every;
        loop {
            // The poll itself ends at the deadline: a reply after it changes nothing.
            let left = deadline.saturating_sub(self.deps.clock.monotonic());
            if left.is_zero() {
                return self.push_timed_out(approval);
            }
            match self.backend.poll_approval(approval, left) {
                Ok(ApprovalStatus::Approved) => return PushEnd::Approved,
                Ok(ApprovalStatus::Denied) => {
                    self.log(Level::Notice, "push_denied", approval.as_str());
                    return PushEnd::NotApproved("The push was denied.");
                }
                Ok(ApprovalStatus::Expired) => return PushEnd::NotApproved("The push expired."),
                Ok(ApprovalStatus::Pending) => {}
                // A transient failure while waiting: keep polling until the deadline.
                Err(ApiError::Unreachable(why)) => self.log(Level::Debug, "push_poll_failed", &why),
                Err(error) => return PushEnd::Final(self.end_with(&error)),
            }
            let now = self.deps.clock.monotonic();
            if now >= deadline {
                return self.push_timed_out(approval);
            }
            if !prompted && now >= next_notice {
                let left = (deadline - now).as_secs();
                if self.deps.conversation.info(&format!("Waiting for approval: {left} s left.")).is_err() {
                    return PushEnd::Final(self.conversation_failed());
                }
                next_notice = now + notice_every;
            }
            self.deps.clock.sleep(poll.min(deadline - now));
        }
    }

    fn push_timed_out(&self, approval: &ApprovalId) -> PushEnd {
        self.log(Level::Notice, "push_timeout", approval.as_str());
        PushEnd::NotApproved("The push was not approved in time.")
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::{ApiError, ApprovalStatus, Backend, TokenVerdict};
    use crate::clock::FakeClock;
    use crate::config::{Config, UserEntry};
    use crate::flow::testing::*;
    use crate::flow::*;
    use crate::log::MemoryLog;
    use crate::secret::Secret;
    use crate::state::{MemoryStateStore, StateError, StateStore};
    use std::cell::RefCell;

    #[test]
    fn push_typed_at_the_prompt_under_sshd_is_confirmed_by_enter_and_approved() {
        let api = push_api(vec![Ok(ApprovalStatus::Pending), Ok(ApprovalStatus::Approved)]);
        let steps =
            [Step::Prompt("Authy token", " PUSH "), Step::Prompt("approve it on your phone, then press Enter", "")];
        let decision = run_with(&config(""), &args(&[]), "alice", &steps, &api);
        assert_eq!(decision.outcome, Outcome::Verified(Factor::Push));
        let request = api.push_requests.borrow()[0].clone();
        assert!(request.details.contains(&("Service".into(), "sshd".into())));
        assert!(request.details.contains(&("From".into(), "192.0.2.7".into())));
        assert!(request.details.contains(&("User".into(), "alice".into())));
    }

    #[test]
    fn autopush_outside_sshd_notifies_at_once_and_waits() {
        let api =
            push_api(vec![Ok(ApprovalStatus::Pending), Ok(ApprovalStatus::Pending), Ok(ApprovalStatus::Approved)]);
        let steps = [Step::Info("Authy push sent to your phone")];
        let decision = run_login(&config("push_command = true"), &args(&["method=push"]), &sudo_login(), &steps, &api);
        assert_eq!(decision.outcome, Outcome::Verified(Factor::Push));
        let request = api.push_requests.borrow()[0].clone();
        assert!(request.details.contains(&("Command".into(), "systemctl restart nginx".into())));
        assert_eq!(request.seconds_to_expire, 60);
    }

    #[test]
    fn a_denied_autopush_falls_back_to_the_prompt_and_costs_a_try() {
        let mut api = push_api(vec![Ok(ApprovalStatus::Denied)]);
        api.verdicts = RefCell::new(vec![Ok(TokenVerdict::Valid)].into());
        let steps = [Step::Info("Authy push sent"), Step::Error("denied"), Step::Prompt("Authy token", "1234567")];
        let decision = run_login(&config("method = \"push\""), &args(&[]), &sudo_login(), &steps, &api);
        assert_eq!(decision.outcome, Outcome::Verified(Factor::Token));
        assert_eq!(decision.failed_tries, 1, "the denied push; the valid token is no failed try");
    }

    #[test]
    fn denied_expired_and_unanswered_pushes_never_succeed() {
        for (statuses, text) in [
            (vec![Ok(ApprovalStatus::Denied)], "denied"),
            (vec![Ok(ApprovalStatus::Expired)], "expired"),
            (vec![], "not approved in time"),
        ] {
            let api = push_api(statuses);
            let said = match text {
                "denied" => Step::Error("The push was denied. No tries left."),
                "expired" => Step::Error("The push expired. No tries left."),
                _ => Step::Error("The push was not approved in time. No tries left."),
            };
            let steps = [
                Step::Info("Authy push sent"),
                Step::Info("Waiting for approval"),
                Step::Info("Waiting for approval"),
                Step::Info("Waiting for approval"),
                said.clone(),
            ];
            let denied_or_expired = [steps[0].clone(), said];
            let steps: &[Step] = if text == "not approved in time" { &steps } else { &denied_or_expired };
            let decision = run_login(&config("max_tries = 1"), &args(&["method=push"]), &sudo_login(), steps, &api);
            assert_eq!(decision.outcome, Outcome::MaxTries, "{text}");
        }
    }

    #[test]
    fn a_reply_about_another_request_or_a_bad_reply_while_waiting_fails_closed() {
        let api = push_api(vec![Err(ApiError::Protocol("approval status for another uuid".into()))]);
        let decision =
            run_login(&config(""), &args(&["method=push"]), &sudo_login(), &[Step::Info("Authy push sent")], &api);
        assert_eq!(decision.outcome, Outcome::Denied);
    }

    #[test]
    fn a_transient_failure_while_waiting_keeps_polling() {
        let api = push_api(vec![Err(ApiError::Unreachable("reset".into())), Ok(ApprovalStatus::Approved)]);
        let decision =
            run_login(&config(""), &args(&["method=push"]), &sudo_login(), &[Step::Info("Authy push sent")], &api);
        assert_eq!(decision.outcome, Outcome::Verified(Factor::Push));
    }

    #[test]
    fn a_conversation_error_during_the_wait_fails_closed() {
        let api = push_api(vec![]);
        let steps = [Step::Info("Authy push sent")];
        let mut conversation = ScriptedConversation::new(&steps);
        struct Interrupting<'c>(&'c mut ScriptedConversation);
        impl Conversation for Interrupting<'_> {
            fn prompt(&mut self, text: &str, echo: bool) -> Result<Secret, ConvError> {
                self.0.prompt(text, echo)
            }
            fn info(&mut self, text: &str) -> Result<(), ConvError> {
                if text.contains("Waiting for approval") { Err(ConvError) } else { self.0.info(text) }
            }
            fn error(&mut self, text: &str) -> Result<(), ConvError> {
                self.0.error(text)
            }
        }
        let mut interrupting = Interrupting(&mut conversation);
        let clock = FakeClock::at_unix(1_700_000_000);
        let log = MemoryLog::default();
        let accounts = accounts();
        let connect = |_: &Config, _: &UserEntry| -> Result<Box<dyn Backend + '_>, ApiError> { Ok(Box::new(&api)) };
        let store = MemoryStateStore::new();
        let open_state = |_: &Config| -> Result<Box<dyn StateStore + '_>, StateError> { Ok(Box::new(&store)) };
        let mut deps = Deps {
            conversation: &mut interrupting,
            connect: &connect,
            open_state: &open_state,
            clock: &clock,
            accounts: &accounts,
            log: &log,
        };
        let decision = authenticate(&config(""), &args(&["method=push"]), &sudo_login(), &mut deps);
        assert_eq!(decision.outcome, Outcome::ConversationError);
        conversation.assert_drained();
    }

    /// Each poll may last only until the push deadline, so one in flight at the deadline
    /// is cut there instead of running a whole request timeout past it.
    #[test]
    fn each_poll_is_given_only_the_time_left_until_the_push_deadline() {
        let api = push_api(vec![]);
        let config = config("method = \"push\"\npush_timeout_secs = 5\npush_poll_ms = 2000\nmax_tries = 1");
        let steps = [
            Step::Info("Authy push sent"),
            Step::Info("Waiting for approval: 3 s left"),
            Step::Info("Waiting for approval: 1 s left"),
            Step::Error("The push was not approved in time. No tries left."),
        ];
        let decision = run_login(&config, &args(&[]), &sudo_login(), &steps, &api);
        assert_eq!(decision.outcome, Outcome::MaxTries);
        let limits: Vec<u64> = api.poll_limits.borrow().iter().map(|limit| limit.as_secs()).collect();
        assert_eq!(limits, [5, 3, 1], "the time each poll was given");
    }

    #[test]
    fn a_token_typed_at_the_push_prompt_is_verified_instead() {
        let mut api = push_api(vec![]);
        api.verdicts = RefCell::new(vec![Ok(TokenVerdict::Valid)].into());
        let steps = [Step::Prompt("press Enter", "7654321")];
        let decision = run_with(&config(""), &args(&["method=push"]), "alice", &steps, &api);
        assert_eq!(decision.outcome, Outcome::Verified(Factor::Token));
        assert_eq!(api.verified.borrow().as_slice(), ["7654321"]);
    }
}
