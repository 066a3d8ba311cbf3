//! The authentication state machine: from a login and a parsed configuration to one
//! `Decision`.
//!
//! Generic over its seams (the conversation, the backend, the clock, the account database,
//! the state store and the log) so that unit tests drive every branch with scripted doubles.
//! The rule it keeps: the only ways to `Outcome::Verified` are a code the backend verified,
//! an approval it reported approved, a local offline code while it was unreachable, and a
//! grace record of such a success. Every other path, including every error, ends in an
//! outcome that `pam.rs` maps to a PAM error code.
//!
//! This file decides who is asked at all (the user's mapping, grace, the backend) and keeps
//! the session's count of failed tries. The rest is split by concern: `prompt` (the token
//! prompt, its words and channels), `push` (an approval and its wait), `offline` (the
//! fallback when the API is unreachable), `grace` (the grace period), `outcome` (how it ends).
//! A session step returns `ControlFlow`: `Continue` goes back to the prompt, `Break` ends
//! the authentication with a decision, whether a success or not.

mod grace;
mod offline;
pub mod one_prompt;
pub mod outcome;
mod prompt;
mod push;
#[cfg(test)]
mod testing;

pub use offline::offline_prompt;
pub use outcome::{Decision, Factor, Outcome, api_failure};
pub use prompt::{
    MAX_CHANNEL_REQUESTS, RATE_LIMITED, TOKEN_PROMPT, code_prompt, unreachable_message, unreachable_prompt,
};
pub use push::push_prompt;

/// Ends the message of the last failed try.
pub const NO_TRIES_LEFT: &str = "No tries left.";

use crate::backend::{ApiError, Backend, Channel, Word};
use crate::clock::Clock;
use crate::config::{AuthyId, Config, Method, ModuleArgs, UserEntry};
use crate::log::{Level, Log, format_fields};
use crate::secret::Secret;
use crate::state::{StateError, StateStore};
use crate::users::{AccountDb, Subject, SubjectError, resolve};
use grace::GracePeriod;
use std::ops::ControlFlow;

/// The application's side of the PAM conversation.
pub trait Conversation {
    /// Asks a question; the answer is secret (echo off) unless `echo` is true.
    fn prompt(&mut self, text: &str, echo: bool) -> Result<Secret, ConvError>;
    fn info(&mut self, text: &str) -> Result<(), ConvError>;
    fn error(&mut self, text: &str) -> Result<(), ConvError>;
}

/// The conversation failed: the application returned an error, or no answer at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvError;

/// The login being authenticated, from the PAM items. All strings are as PAM gave them;
/// they are sanitised where they are shown, logged or sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Login {
    pub user: String,
    pub service: String,
    pub rhost: Option<String>,
    pub tty: Option<String>,
    pub ruser: Option<String>,
    pub hostname: String,
    /// The command being authorised, when the application lets us learn it (sudo).
    pub command: Option<String>,
}

/// Builds the backend for a mapped user (only then: exempt logins make no connection).
pub type Connect<'a> = dyn Fn(&Config, &UserEntry) -> Result<Box<dyn Backend + 'a>, ApiError> + 'a;

/// Opens the per-user state store (replay steps, failure counts, grace records); called
/// only when the offline fallback or the grace period needs it.
pub type OpenState<'a> = dyn Fn(&Config) -> Result<Box<dyn StateStore + 'a>, StateError> + 'a;

/// Everything the flow needs from the outside world.
pub struct Deps<'a> {
    pub conversation: &'a mut dyn Conversation,
    pub connect: &'a Connect<'a>,
    pub open_state: &'a OpenState<'a>,
    pub clock: &'a dyn Clock,
    pub accounts: &'a dyn AccountDb,
    pub log: &'a dyn Log,
}

/// The state store of one authentication: opened (a path walk from `/`) on first use only,
/// then shared by the grace check, the offline fallback and the grace record.
struct StateCell<'d> {
    cell: std::cell::OnceCell<Result<Box<dyn StateStore + 'd>, StateError>>,
}

impl<'d> StateCell<'d> {
    fn new() -> Self {
        StateCell { cell: std::cell::OnceCell::new() }
    }

    fn get(&self, config: &Config, open: &OpenState<'d>) -> Result<&(dyn StateStore + 'd), StateError> {
        match self.cell.get_or_init(|| open(config)) {
            Ok(store) => Ok(store.as_ref()),
            Err(error) => Err(error.clone()),
        }
    }
}

/// Authenticates `login` under `config`.
pub fn authenticate(config: &Config, args: &ModuleArgs, login: &Login, deps: &mut Deps<'_>) -> Decision {
    let subject = match resolve(config, deps.accounts, &login.user) {
        Ok(subject) => subject,
        Err(error @ SubjectError::MissingGroup(_)) => {
            return Decision::new(Outcome::ServiceError, format!("config: {}: {error}", config.path.display()));
        }
        Err(error) => return Decision::new(Outcome::ServiceError, error.to_string()),
    };
    let (account, entry) = match subject {
        Subject::Mapped { account, entry } => (account, entry),
        Subject::OutsideGroups { account } => {
            return Decision { account: Some(account), ..Decision::new(Outcome::Exempt, "outside_groups") };
        }
        Subject::UnmappedIgnored { account } => {
            return Decision { account: Some(account), ..Decision::new(Outcome::Exempt, "unmapped") };
        }
        Subject::UnmappedDenied { account } => {
            return Decision { account: Some(account), ..Decision::new(Outcome::UnknownUser, "unmapped") };
        }
        Subject::NoSuchAccount => return Decision::new(Outcome::UnknownUser, "no_such_account"),
    };
    let grace = GracePeriod::new(config, login, &account);
    let state = StateCell::new();
    let mut decision = if grace.is_some_and(|g| g.still_valid(deps, &state)) {
        Decision::new(Outcome::Verified(Factor::Grace), "grace_period")
    } else {
        let decision = match (deps.connect)(config, entry) {
            Ok(mut backend) => {
                let mut session = Session {
                    config,
                    login,
                    account: &account,
                    authy_id: entry.authy_id,
                    offline_secret: entry.offline_secret.as_ref(),
                    backend: backend.as_mut(),
                    deps,
                    state: &state,
                    failed_tries: 0,
                    channel_requests: 0,
                };
                session.run(args.method.unwrap_or(config.auth.method))
            }
            Err(error) => {
                let (outcome, reason) = api_failure(&error, config.auth.failmode);
                Decision::new(outcome, reason)
            }
        };
        if let (Some(grace), Outcome::Verified(_)) = (grace, decision.outcome) {
            grace.record(deps, &state);
        }
        decision
    };
    decision.account = Some(account);
    decision.authy_id = entry.authy_id;
    decision
}

/// One authentication of a mapped user, from the first step to the decision.
struct Session<'s, 'd> {
    config: &'s Config,
    login: &'s Login,
    /// The canonical account name: the key of the per-user state.
    account: &'s str,
    /// None with the Verify backend.
    authy_id: Option<AuthyId>,
    offline_secret: Option<&'s Secret>,
    backend: &'s mut dyn Backend,
    deps: &'s mut Deps<'d>,
    state: &'s StateCell<'d>,
    /// Failed tries so far: wrong, reused or malformed tokens, denied, expired or unanswered
    /// pushes, wrong or replayed offline codes. `max_tries` of them end the login.
    failed_tries: u32,
    channel_requests: u32,
}

impl Session<'_, '_> {
    fn decision(&self, outcome: Outcome, reason: impl Into<String>) -> Decision {
        Decision { failed_tries: self.failed_tries, ..Decision::new(outcome, reason) }
    }

    /// The decision an API failure ends the login with (`api_failure`).
    fn api_failed(&self, error: &ApiError) -> Decision {
        let (outcome, reason) = api_failure(error, self.config.auth.failmode);
        self.decision(outcome, reason)
    }

    /// `api_failed`, and when the login ends because the API cannot be reached, the user is
    /// told, so that the prompt does not just come back. Under sshd a message after the last
    /// prompt is dropped for this result, so there the notice is a prompt (its answer is
    /// ignored). Best effort: the decision stands whatever the conversation does.
    fn api_failed_and_said(&mut self, error: &ApiError) -> Decision {
        let decision = self.api_failed(error);
        if decision.outcome == Outcome::Unavailable {
            let wording = self.backend.wording();
            if self.notice_by_prompt() {
                let _ = self.deps.conversation.prompt(&unreachable_prompt(wording), false);
            } else {
                let _ = self.deps.conversation.error(&unreachable_message(wording));
            }
        }
        decision
    }

    /// Ends the login on an API failure; a rate limit is explained to the user first, so
    /// that nobody retries into a longer block.
    fn end_with(&mut self, error: &ApiError) -> Decision {
        if matches!(error, ApiError::RateLimited(_)) && self.deps.conversation.error(RATE_LIMITED).is_err() {
            return self.conversation_failed();
        }
        self.api_failed_and_said(error)
    }

    /// A failure that no later answer can mend (bad credentials, a rate limit): it ends the
    /// login even where the call was optional (sending a code or a push).
    fn setup_broken(&self, error: &ApiError) -> bool {
        matches!(error, ApiError::RateLimited(_))
            || api_failure(error, self.config.auth.failmode).0 == Outcome::ServiceError
    }

    fn offers(&self, word: Word) -> bool {
        self.backend.words().contains(&word)
    }

    fn conversation_failed(&self) -> Decision {
        self.decision(Outcome::ConversationError, "conversation")
    }

    /// Goes on after a message was shown, or ends the login if the conversation failed.
    fn shown(&self, sent: Result<(), ConvError>) -> ControlFlow<Decision> {
        match sent {
            Ok(()) => ControlFlow::Continue(()),
            Err(ConvError) => ControlFlow::Break(self.conversation_failed()),
        }
    }

    fn tries_left(&self) -> bool {
        self.failed_tries < self.config.auth.max_tries
    }

    /// A failed try, and why. The last one says why too, and that no try is left: the
    /// application only reports that authentication failed. That last message is best
    /// effort (sshd shows it after PAM_MAXTRIES too); the login ends in MaxTries whatever
    /// the conversation does.
    fn failed_try(&mut self, text: &str) -> ControlFlow<Decision> {
        self.failed_tries += 1;
        if self.tries_left() {
            let sent = self.deps.conversation.error(text);
            return self.shown(sent);
        }
        let _ = self.deps.conversation.error(&format!("{text} {NO_TRIES_LEFT}"));
        ControlFlow::Continue(())
    }

    fn run(&mut self, method: Method) -> Decision {
        let first = match method {
            Method::Sms if self.offers(Word::Channel(Channel::Sms)) => self.request_channel(Channel::Sms),
            Method::Call if self.offers(Word::Channel(Channel::Call)) => self.request_channel(Channel::Call),
            Method::Push if self.offers(Word::Push) => self.push_step(),
            // A first step this user's backend cannot take: the prompt offers what it can.
            Method::Prompt | Method::Sms | Method::Call | Method::Push => ControlFlow::Continue(()),
        };
        match first {
            ControlFlow::Break(decision) => decision,
            ControlFlow::Continue(()) => self.prompt_loop(),
        }
    }

    fn log(&self, level: Level, event: &str, detail: &str) {
        let id = self.authy_id.map(|id| id.to_string());
        let mut fields = vec![("service", self.login.service.as_str()), ("user", self.login.user.as_str())];
        if let Some(id) = &id {
            fields.push(("authy_id", id));
        }
        fields.extend([("event", event), ("detail", detail)]);
        let line = format_fields(&fields);
        self.deps.log.log(level, &line);
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::TokenVerdict;
    use crate::flow::testing::*;
    use crate::flow::*;

    #[test]
    fn unmapped_and_unknown_users_never_see_a_prompt() {
        let (denied, _) = run_scripted(&config(""), "bob", &[], vec![]);
        assert_eq!(denied.outcome, Outcome::UnknownUser);
        let (ignored, _) = run_scripted(&config("unmapped_users = \"ignore\""), "bob", &[], vec![]);
        assert_eq!(ignored.outcome, Outcome::Exempt);
        let (unknown, _) = run_scripted(&config("unmapped_users = \"ignore\""), "mallory", &[], vec![]);
        assert_eq!(unknown.outcome, Outcome::UnknownUser);
    }

    #[test]
    fn the_log_line_counts_failed_tries_and_not_the_success() {
        let steps = [
            Step::Prompt("Authy token", "1111111"),
            Step::Error("Wrong token"),
            Step::Prompt("Authy token", "2222222"),
        ];
        let verdicts = vec![Ok(TokenVerdict::Invalid), Ok(TokenVerdict::Valid)];
        let (decision, _) = run_scripted(&config(""), "alice", &steps, verdicts);
        assert_eq!(decision.outcome, Outcome::Verified(Factor::Token));
        let line = decision.log_line(&login("alice"));
        assert!(line.ends_with(" reason=token_valid authy_id=42 failed_tries=1"), "{line}");
    }

    #[test]
    fn the_log_line_names_the_login_and_never_the_token() {
        let (decision, _) = run_scripted(
            &config(""),
            "alice",
            &[Step::Prompt("Authy token", "7654321")],
            vec![Ok(TokenVerdict::Valid)],
        );
        let line = decision.log_line(&login("alice"));
        assert_eq!(
            line,
            "service=sshd user=alice rhost=192.0.2.7 tty=\"\" outcome=success reason=token_valid authy_id=42"
        );
        assert!(!line.contains("7654321"));
    }

    /// Every message a user can read, for a backend that is Authy and for one that is not:
    /// the Authy user reads Authy's words, the other never reads "Authy" or "token".
    #[test]
    fn every_message_speaks_the_backends_words() {
        use crate::backend::{ApiError, ChannelReceipt};
        use std::cell::RefCell;
        let offline = "[api]\nurl = \"https://127.0.0.1:1\"\napi_key = \"k\"\n[auth]\nmax_tries = 9\n[users]\n\
                       alice = { authy_id = 42, offline_secret = \"JBSWY3DPEHPK3PXP\" }\n";
        let offline = crate::config::Config::parse(std::path::Path::new("/test.toml"), offline).expect("config");
        let plenty = config("max_tries = 9\npush_timeout_secs = 5");
        let local = Login { service: "sudo".into(), tty: Some("/dev/pts/1".into()), ..login("alice") };
        let mut all_text = [Vec::new(), Vec::new()];
        for (neutral, text) in [false, true].into_iter().zip(all_text.iter_mut()) {
            let api = |verdicts: Vec<Result<TokenVerdict, ApiError>>| ScriptedApi {
                verdicts: RefCell::new(verdicts.into()),
                channel_replies: RefCell::new(
                    vec![Err(ApiError::Unreachable("503".into())), Ok(ChannelReceipt { cellphone: None })].into(),
                ),
                push_created: RefCell::new(
                    vec![Err(ApiError::Unreachable("503".into())), Ok(uuid()), Ok(uuid())].into(),
                ),
                statuses: RefCell::new(vec![Ok(crate::backend::ApprovalStatus::Denied)].into()),
                neutral_words: neutral,
                ..ScriptedApi::default()
            };
            let unreachable = || vec![Err(ApiError::Unreachable("refused".into()))];
            let typed = ["x", "0000000", "sms", "push", "push", "sms", "1111111", "2222222"];
            let verdicts = vec![Ok(TokenVerdict::Invalid), Ok(TokenVerdict::Reused), Ok(TokenVerdict::Expired)];
            let runs = [
                run_recorded(&plenty, &login("alice"), &typed, &api(verdicts)),
                run_recorded(&plenty, &local, &["push", "push"], &api(vec![])),
                run_recorded(&plenty, &login("alice"), &["1234567", ""], &api(unreachable())),
                run_recorded(&plenty, &local, &["1234567"], &api(unreachable())),
                run_recorded(&offline, &login("alice"), &["1234567", "000000"], &api(unreachable())),
                run_recorded(&plenty, &local, &["1234567"], &api(vec![Err(ApiError::RateLimited("60202".into()))])),
            ];
            for (_, shown) in runs {
                text.extend(shown);
            }
        }
        let [authy, neutral] = all_text;
        let expected = [
            "Invalid token: type the 6 to 8 digits shown by Authy, or push, sms or call.",
            "Wrong token.",
            "SMS could not be sent; type a token from the Authy app instead.",
            "The push could not be sent; type a token from the Authy app instead.",
            "Authy push sent: approve it on your phone, then press Enter (or type a token): ",
            "No more push, SMS or call requests for this login; type a token.",
            "Authy push sent to your phone: approve it there (waiting up to 5 s).",
            "Authy cannot be reached; try again later (press Enter): ",
            "Authy cannot be reached; try again later.",
            "Authy cannot be reached. Offline code (pam_authy entry of your authenticator): ",
        ];
        for message in expected {
            assert!(authy.iter().any(|shown| shown == message), "{message:?} not in {authy:#?}");
        }
        for message in expected.map(|m| {
            m.replace("shown by Authy", "from your authenticator app or message")
                .replace("the Authy app", "your authenticator app")
                .replace("Authy push", "Push")
                .replace("Authy cannot", "The verification service cannot")
                .replace("token", "code")
        }) {
            assert!(neutral.contains(&message), "{message:?} not in {neutral:#?}");
        }
        assert_eq!(authy.len(), neutral.len(), "{authy:#?}\n{neutral:#?}");
        for shown in &neutral {
            assert!(!shown.contains("Authy") && !shown.contains("token"), "{shown:?}");
        }
        assert!(neutral.iter().any(|shown| shown.contains(crate::flow::RATE_LIMITED)), "{neutral:#?}");
        assert!(neutral.iter().any(|shown| shown.starts_with("Verification code (or type push, sms or call)")));
    }
}
