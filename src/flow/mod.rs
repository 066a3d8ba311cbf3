//! The authentication state machine: from a login and a configuration to one `Decision`.
//!
//! Generic over its seams (the conversation, the Authy API, the clock, the account database
//! and the log) so that unit tests drive every branch with scripted doubles. The rule it
//! keeps: the only ways to `Outcome::Verified` are a token the API verified, and (later
//! layers) an approved push or a locally verified offline code. Every other path, including
//! every error, ends in an outcome that `pam.rs` maps to a PAM error code.

pub mod outcome;

pub use outcome::{Decision, Factor, Outcome, api_failure};

use crate::backend::{ApiError, ApprovalId, ApprovalStatus, Backend, Channel, Token, TokenVerdict, Word};
use crate::clock::Clock;
use crate::config::{AuthyId, Config, ConfigError, Method, ModuleArgs, UserEntry};
use crate::context;
use crate::log::{Level, Log, format_fields};
use crate::offline::{self, OfflineParams};
use crate::secret::Secret;
use crate::state::{StateError, StateStore};
use crate::users::{AccountDb, Subject, SubjectError, resolve};
use std::time::Duration;

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

/// Everything the flow needs from the outside world.
pub struct Deps<'a> {
    pub conversation: &'a mut dyn Conversation,
    pub connect: &'a Connect<'a>,
    pub open_state: &'a OpenState<'a>,
    pub clock: &'a dyn Clock,
    pub accounts: &'a dyn AccountDb,
    pub log: &'a dyn Log,
}

/// The token prompt of a backend that offers push, sms and call (Authy); `token_prompt`
/// builds it from the words the backend offers.
pub const TOKEN_PROMPT: &str = "Authy token (or type push, sms or call): ";
pub const OFFLINE_PROMPT: &str = "Authy cannot be reached. Offline code (pam_authy entry of your authenticator): ";
/// Under sshd an info message waits for the next prompt, so the push notice is a prompt.
pub const PUSH_PROMPT: &str = "Authy push sent: approve it on your phone, then press Enter (or type a token): ";
/// Channel requests (push, sms, call) one authentication may make.
pub const MAX_CHANNEL_REQUESTS: u32 = 3;
/// "a, b or c".
fn alternatives(words: &[Word], name: impl Fn(Word) -> &'static str) -> String {
    let names: Vec<&str> = words.iter().map(|&word| name(word)).collect();
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// The prompt for a token, naming the words the backend offers instead.
pub fn token_prompt(words: &[Word]) -> String {
    if words.is_empty() {
        "Authy token: ".to_owned()
    } else {
        format!("Authy token (or type {}): ", alternatives(words, Word::as_str))
    }
}

/// How often a waiting push tells the user (and so learns whether the application is still
/// there, e.g. after Ctrl-C): a quarter of the timeout, between 1 and 15 seconds.
fn push_notice_every(timeout: Duration) -> Duration {
    (timeout / 4).clamp(Duration::from_secs(1), Duration::from_secs(15))
}

/// Loads the configuration named by the module arguments, then authenticates.
pub fn run(args: &[String], login: &Login, deps: &mut Deps<'_>) -> Decision {
    let loaded = ModuleArgs::parse(args).and_then(|args| Config::load(&args.config_path).map(|c| (args, c)));
    match loaded {
        Ok((args, config)) => authenticate(&config, &args, login, deps),
        Err(error) => config_error(&error),
    }
}

fn config_error(error: &ConfigError) -> Decision {
    Decision::new(Outcome::ServiceError, format!("config: {error}"))
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
                    tries: 0,
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
    decision.authy_id = Some(entry.authy_id);
    decision
}

/// What the user typed at the token prompt.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Token(Token),
    Push,
    Channel(Channel),
    /// Empty, malformed, too long: a failed try that never reaches the network.
    Invalid,
}

/// A token, or one of the `offered` words in any case; anything else is invalid.
fn parse_answer(text: &str, offered: &[Word]) -> Answer {
    let typed = text.trim_matches(|c: char| c == ' ' || c == '\t');
    match offered.iter().find(|word| typed.eq_ignore_ascii_case(word.as_str())) {
        Some(Word::Push) => Answer::Push,
        Some(Word::Channel(channel)) => Answer::Channel(*channel),
        None => Token::parse(typed).map_or(Answer::Invalid, Answer::Token),
    }
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

/// One authentication of a mapped user: the prompt loop and its channels.
struct Session<'s, 'd> {
    config: &'s Config,
    login: &'s Login,
    /// The canonical account name: the key of the per-user state.
    account: &'s str,
    authy_id: AuthyId,
    offline_secret: Option<&'s Secret>,
    backend: &'s mut dyn Backend,
    deps: &'s mut Deps<'d>,
    state: &'s StateCell<'d>,
    /// Failed tries so far: wrong or malformed tokens, denied or expired pushes.
    tries: u32,
    channel_requests: u32,
}

impl Session<'_, '_> {
    fn decision(&self, outcome: Outcome, reason: impl Into<String>) -> Decision {
        Decision { tries: self.tries, ..Decision::new(outcome, reason) }
    }

    /// The decision an API failure ends the login with (`api_failure`).
    fn api_failed(&self, error: &ApiError) -> Decision {
        let (outcome, reason) = api_failure(error, self.config.auth.failmode);
        self.decision(outcome, reason)
    }

    /// A failure that no later answer can mend (a bad API key): it ends the login even
    /// where the call was optional (sending a code or a push).
    fn setup_broken(&self, error: &ApiError) -> bool {
        api_failure(error, self.config.auth.failmode).0 == Outcome::ServiceError
    }

    fn offers(&self, word: Word) -> bool {
        self.backend.words().contains(&word)
    }

    fn conversation_failed(&self) -> Decision {
        self.decision(Outcome::ConversationError, "conversation")
    }

    fn tries_left(&self) -> bool {
        self.tries < self.config.auth.max_tries
    }

    /// A failed try: say so unless it was the last one (the application reports that).
    fn failed_try(&mut self, text: &str) -> Result<(), Decision> {
        self.tries += 1;
        if self.tries_left() {
            self.deps.conversation.error(text).map_err(|ConvError| self.conversation_failed())?;
        }
        Ok(())
    }

    fn run(&mut self, method: Method) -> Decision {
        let first = match method {
            Method::Prompt => Ok(None),
            Method::Sms if self.offers(Word::Channel(Channel::Sms)) => {
                self.request_channel(Channel::Sms).map(|()| None)
            }
            Method::Call if self.offers(Word::Channel(Channel::Call)) => {
                self.request_channel(Channel::Call).map(|()| None)
            }
            Method::Push if self.offers(Word::Push) => self.push_step(),
            // A first step this user's backend cannot take: the prompt offers what it can.
            Method::Sms | Method::Call | Method::Push => Ok(None),
        };
        match first {
            Ok(Some(decision)) | Err(decision) => decision,
            Ok(None) => self.prompt_loop(),
        }
    }

    fn prompt_loop(&mut self) -> Decision {
        while self.tries_left() {
            let prompt = token_prompt(self.backend.words());
            let text = match self.deps.conversation.prompt(&prompt, false) {
                Ok(text) => text,
                Err(ConvError) => return self.conversation_failed(),
            };
            match self.answer(&text) {
                Ok(Some(decision)) | Err(decision) => return decision,
                Ok(None) => {}
            }
        }
        self.decision(Outcome::MaxTries, "too_many_failed_tries")
    }

    /// Acts on one answer. Ok(None): keep prompting.
    fn answer(&mut self, text: &Secret) -> Result<Option<Decision>, Decision> {
        match parse_answer(text.expose(), self.backend.words()) {
            Answer::Invalid => {
                let words = alternatives(self.backend.words(), Word::as_str);
                let complaint = if words.is_empty() {
                    "Invalid token: type the 6 to 8 digits shown by Authy.".to_owned()
                } else {
                    format!("Invalid token: type the 6 to 8 digits shown by Authy, or {words}.")
                };
                self.failed_try(&complaint)?;
                Ok(None)
            }
            Answer::Channel(channel) => self.request_channel(channel).map(|()| None),
            Answer::Push => self.push_step(),
            Answer::Token(token) => self.verify(&token),
        }
    }

    /// Sends a push and says what it means: Ok(Some) ends the authentication, Ok(None) goes
    /// back to the prompt, and text typed at the push prompt is answered like any other.
    fn push_step(&mut self) -> Result<Option<Decision>, Decision> {
        match self.push() {
            PushEnd::Approved => Ok(Some(self.decision(Outcome::Verified(Factor::Push), "push_approved"))),
            PushEnd::Final(decision) => Err(decision),
            PushEnd::Typed(text) => self.answer(&text),
            PushEnd::NotSent => Ok(None),
            PushEnd::NotApproved(why) => {
                self.failed_try(why)?;
                Ok(None)
            }
        }
    }

    fn verify(&mut self, token: &Token) -> Result<Option<Decision>, Decision> {
        match self.backend.verify_code(token) {
            Ok(TokenVerdict::Valid) => {
                self.tries += 1;
                Ok(Some(self.decision(Outcome::Verified(Factor::Token), "token_valid")))
            }
            Ok(TokenVerdict::Reused) => {
                self.failed_try("That token was already used; wait for the next one.")?;
                Ok(None)
            }
            Ok(TokenVerdict::Invalid) => {
                self.failed_try("Wrong token.")?;
                Ok(None)
            }
            Err(ApiError::Unreachable(why)) if self.offline_secret.is_some() => {
                self.log(Level::Warning, "api_unreachable_offline_fallback", &why);
                Err(self.offline())
            }
            Err(error) => {
                self.tries += 1;
                Err(self.api_failed(&error))
            }
        }
    }

    /// The offline fallback: codes of the local TOTP entry, checked against the replay step
    /// and the failure counter in the state store. Any state failure refuses the code.
    fn offline(&mut self) -> Decision {
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
            let code = match self.deps.conversation.prompt(OFFLINE_PROMPT, false) {
                Ok(code) => code,
                Err(ConvError) => return self.conversation_failed(),
            };
            let now = self.deps.clock.unix_time();
            let step = offline::matching_step(secret, code.expose(), now, &params);
            let mut verdict = OfflineVerdict::Wrong;
            let updated = store.update(self.account, &mut |state| {
                state.prune(now, offline.failure_window_secs);
                if state.locked_out(now, offline.max_failures, offline.failure_window_secs) {
                    verdict = OfflineVerdict::Locked;
                    return false;
                }
                verdict = match step {
                    Some(step) if state.accept_step(step) => OfflineVerdict::Accepted,
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
                    self.tries += 1;
                    return self.decision(Outcome::Verified(Factor::Offline), "offline_code_valid");
                }
                OfflineVerdict::Locked => return self.decision(Outcome::MaxTries, "offline_locked_out"),
                OfflineVerdict::Replayed => "That code was already used; wait for the next one.",
                OfflineVerdict::Wrong => "Wrong offline code.",
            };
            if let Err(decision) = self.failed_try(complaint) {
                return decision;
            }
        }
        self.decision(Outcome::MaxTries, "too_many_failed_tries")
    }

    /// Takes one of the bounded channel requests, or says there are none left.
    fn take_channel_request(&mut self) -> Result<bool, Decision> {
        if self.channel_requests >= MAX_CHANNEL_REQUESTS {
            let requests = alternatives(self.backend.words(), |word| match word {
                Word::Push => "push",
                Word::Channel(Channel::Sms) => "SMS",
                Word::Channel(Channel::Call) => "call",
            });
            let complaint = format!("No more {requests} requests for this login; type a token.");
            self.deps.conversation.error(&complaint).map_err(|ConvError| self.conversation_failed())?;
            return Ok(false);
        }
        self.channel_requests += 1;
        Ok(true)
    }

    /// Asks the API to send a token by SMS or call. Failing to send is not a failed try and
    /// never triggers failmode: only a token verification decides availability.
    fn request_channel(&mut self, channel: Channel) -> Result<(), Decision> {
        if !self.take_channel_request()? {
            return Ok(());
        }
        let what = match channel {
            Channel::Sms => "SMS",
            Channel::Call => "Call",
        };
        let notice = match self.backend.send_code(channel) {
            Ok(receipt) => {
                self.log(Level::Info, "channel_sent", channel.as_str());
                let verb = if channel == Channel::Sms { "sent" } else { "started" };
                match receipt.cellphone {
                    Some(phone) => format!("{what} {verb} to {phone}; type the code you receive."),
                    None => format!("{what} {verb}; type the code you receive."),
                }
            }
            Err(error) if self.setup_broken(&error) => return Err(self.api_failed(&error)),
            Err(error) => {
                self.log(Level::Notice, "channel_failed", &format!("{channel}: {error}"));
                format!("{what} could not be sent; type a token from the Authy app instead.")
            }
        };
        self.deps.conversation.info(&notice).map_err(|ConvError| self.conversation_failed())
    }

    fn log(&self, level: Level, event: &str, detail: &str) {
        let id = self.authy_id.to_string();
        let line = format_fields(&[
            ("service", &self.login.service),
            ("user", &self.login.user),
            ("authy_id", &id),
            ("event", event),
            ("detail", detail),
        ]);
        self.deps.log.log(level, &line);
    }

    /// Under sshd (PAM_TTY "ssh") info messages are held until the next prompt, so the push
    /// notice must itself be a prompt; elsewhere it is shown at once and the module waits.
    fn notice_by_prompt(&self) -> bool {
        self.login.tty.as_deref() == Some("ssh") || self.login.service == "sshd"
    }

    /// Sends a OneTouch request and waits for its verdict.
    fn push(&mut self) -> PushEnd {
        match self.take_channel_request() {
            Ok(true) => {}
            Ok(false) => return PushEnd::NotSent,
            Err(decision) => return PushEnd::Final(decision),
        }
        let timeout = self.config.auth.push_timeout;
        let request = context::approval_request(self.login, timeout.as_secs());
        let approval = match self.backend.start_approval(&request) {
            Ok(approval) => approval,
            Err(error) if self.setup_broken(&error) => return PushEnd::Final(self.api_failed(&error)),
            Err(error) => {
                self.log(Level::Notice, "push_failed", &error.to_string());
                return match self
                    .deps
                    .conversation
                    .error("The push could not be sent; type a token from the Authy app instead.")
                {
                    Ok(()) => PushEnd::NotSent,
                    Err(ConvError) => PushEnd::Final(self.conversation_failed()),
                };
            }
        };
        self.log(Level::Info, "push_sent", approval.as_str());
        let started = self.deps.clock.monotonic();
        let deadline = started + timeout;
        if self.notice_by_prompt() {
            match self.deps.conversation.prompt(PUSH_PROMPT, false) {
                Ok(typed) if !typed.expose().trim().is_empty() => return PushEnd::Typed(typed),
                Ok(_) => {}
                Err(ConvError) => return PushEnd::Final(self.conversation_failed()),
            }
        } else {
            let notice =
                format!("Authy push sent to your phone: approve it there (waiting up to {} s).", timeout.as_secs());
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
            match self.backend.poll_approval(approval) {
                Ok(ApprovalStatus::Approved) => return PushEnd::Approved,
                Ok(ApprovalStatus::Denied) => {
                    self.log(Level::Notice, "push_denied", approval.as_str());
                    return PushEnd::NotApproved("The push was denied.");
                }
                Ok(ApprovalStatus::Expired) => return PushEnd::NotApproved("The push expired."),
                Ok(ApprovalStatus::Pending) => {}
                // A transient failure while waiting: keep polling until the deadline.
                Err(ApiError::Unreachable(why)) => self.log(Level::Debug, "push_poll_failed", &why),
                Err(error) => return PushEnd::Final(self.api_failed(&error)),
            }
            let now = self.deps.clock.monotonic();
            if now >= deadline {
                self.log(Level::Notice, "push_timeout", approval.as_str());
                return PushEnd::NotApproved("The push was not approved in time.");
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OfflineVerdict {
    Accepted,
    Replayed,
    Wrong,
    Locked,
}

/// The grace period of one login: only with `grace_secs` set and a remote host.
#[derive(Clone, Copy)]
struct GracePeriod<'a> {
    config: &'a Config,
    account: &'a str,
    service: &'a str,
    rhost: &'a str,
}

impl<'a> GracePeriod<'a> {
    fn new(config: &'a Config, login: &'a Login, account: &'a str) -> Option<GracePeriod<'a>> {
        let rhost = login.rhost.as_deref().unwrap_or("");
        (!config.auth.grace.is_zero() && !rhost.is_empty()).then_some(GracePeriod {
            config,
            account,
            service: &login.service,
            rhost,
        })
    }

    /// A state failure means "no grace": the user is asked for a factor.
    fn still_valid<'d>(&self, deps: &Deps<'d>, state: &StateCell<'d>) -> bool {
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

    fn record<'d>(&self, deps: &Deps<'d>, state: &StateCell<'d>) {
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
pub mod tests {
    use super::*;
    use crate::backend::{ApprovalRequest, ChannelReceipt};
    use crate::clock::FakeClock;
    use crate::log::MemoryLog;
    use crate::state::MemoryStateStore;
    use crate::users::tests::FakeAccounts;
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::path::Path;

    /// One step the scripted conversation expects, in order.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Step {
        /// Expect a prompt containing the text; answer it.
        Prompt(&'static str, &'static str),
        /// Expect a prompt containing the text; fail the conversation.
        PromptFails(&'static str),
        Info(&'static str),
        Error(&'static str),
    }

    /// A conversation that fails the test on any unexpected message and must be drained.
    pub struct ScriptedConversation {
        steps: VecDeque<Step>,
    }

    impl ScriptedConversation {
        pub fn new(steps: &[Step]) -> Self {
            ScriptedConversation { steps: steps.iter().cloned().collect() }
        }

        pub fn assert_drained(&self) {
            assert!(self.steps.is_empty(), "conversation steps left: {:?}", self.steps);
        }

        fn next(&mut self, kind: &str, text: &str) -> Step {
            self.steps.pop_front().unwrap_or_else(|| panic!("unexpected {kind} {text:?}: script is empty"))
        }
    }

    impl Conversation for ScriptedConversation {
        fn prompt(&mut self, text: &str, _echo: bool) -> Result<Secret, ConvError> {
            match self.next("prompt", text) {
                Step::Prompt(expected, answer) if text.contains(expected) => Ok(Secret::from(answer)),
                Step::PromptFails(expected) if text.contains(expected) => Err(ConvError),
                other => panic!("prompt {text:?} but expected {other:?}"),
            }
        }
        fn info(&mut self, text: &str) -> Result<(), ConvError> {
            match self.next("info", text) {
                Step::Info(expected) if text.contains(expected) => Ok(()),
                other => panic!("info {text:?} but expected {other:?}"),
            }
        }
        fn error(&mut self, text: &str) -> Result<(), ConvError> {
            match self.next("error", text) {
                Step::Error(expected) if text.contains(expected) => Ok(()),
                other => panic!("error {text:?} but expected {other:?}"),
            }
        }
    }

    /// A backend double that answers from scripts and records what it was asked.
    #[derive(Default)]
    pub struct ScriptedApi {
        pub verdicts: RefCell<VecDeque<Result<TokenVerdict, ApiError>>>,
        pub verified: RefCell<Vec<String>>,
        pub channel_replies: RefCell<VecDeque<Result<ChannelReceipt, ApiError>>>,
        pub channels: RefCell<Vec<Channel>>,
        pub push_created: RefCell<VecDeque<Result<ApprovalId, ApiError>>>,
        pub push_requests: RefCell<Vec<ApprovalRequest>>,
        pub statuses: RefCell<VecDeque<Result<ApprovalStatus, ApiError>>>,
    }

    const ALL_WORDS: &[Word] = &[Word::Push, Word::Channel(Channel::Sms), Word::Channel(Channel::Call)];

    impl Backend for &ScriptedApi {
        fn words(&self) -> &[Word] {
            ALL_WORDS
        }
        fn verify_code(&mut self, token: &Token) -> Result<TokenVerdict, ApiError> {
            self.verified.borrow_mut().push(token.expose().to_owned());
            self.verdicts.borrow_mut().pop_front().expect("unexpected verify call")
        }
        fn send_code(&mut self, channel: Channel) -> Result<ChannelReceipt, ApiError> {
            self.channels.borrow_mut().push(channel);
            self.channel_replies.borrow_mut().pop_front().expect("unexpected token request")
        }
        fn start_approval(&mut self, request: &ApprovalRequest) -> Result<ApprovalId, ApiError> {
            self.push_requests.borrow_mut().push(request.clone());
            self.push_created.borrow_mut().pop_front().expect("unexpected approval request")
        }
        fn poll_approval(&mut self, _: &ApprovalId) -> Result<ApprovalStatus, ApiError> {
            // Once the script is exhausted the request stays pending.
            self.statuses.borrow_mut().pop_front().unwrap_or(Ok(ApprovalStatus::Pending))
        }
    }

    fn config(auth: &str) -> Config {
        let text =
            format!("[api]\nurl = \"https://127.0.0.1:1\"\napi_key = \"k\"\n[auth]\n{auth}\n[users]\nalice = 42\n");
        Config::parse(Path::new("/test.toml"), &text).expect("config")
    }

    fn accounts() -> FakeAccounts {
        let mut db = FakeAccounts::default();
        db.accounts.insert("alice".into(), ("alice".into(), 100, vec![100]));
        db.accounts.insert("bob".into(), ("bob".into(), 101, vec![101]));
        db
    }

    fn login(user: &str) -> Login {
        Login { user: user.into(), service: "sshd".into(), rhost: Some("192.0.2.7".into()), ..Login::default() }
    }

    /// Runs the flow with a scripted conversation and API; returns the decision and the
    /// tokens that reached the API.
    fn run_scripted(
        config: &Config,
        user: &str,
        steps: &[Step],
        verdicts: Vec<Result<TokenVerdict, ApiError>>,
    ) -> (Decision, Vec<String>) {
        let api = ScriptedApi { verdicts: RefCell::new(verdicts.into()), ..ScriptedApi::default() };
        let decision = run_with(config, &ModuleArgs::parse::<&str>(&[]).expect("args"), user, steps, &api);
        let verified = api.verified.borrow().clone();
        (decision, verified)
    }

    fn run_with(config: &Config, args: &ModuleArgs, user: &str, steps: &[Step], api: &ScriptedApi) -> Decision {
        run_login(config, args, &login(user), steps, api)
    }

    fn run_login(config: &Config, args: &ModuleArgs, login: &Login, steps: &[Step], api: &ScriptedApi) -> Decision {
        let clock = FakeClock::at_unix(1_700_000_000);
        run_full(config, args, login, steps, api, &MemoryStateStore::new(), &clock)
    }

    fn run_full(
        config: &Config,
        args: &ModuleArgs,
        login: &Login,
        steps: &[Step],
        api: &ScriptedApi,
        store: &MemoryStateStore,
        clock: &FakeClock,
    ) -> Decision {
        let mut conversation = ScriptedConversation::new(steps);
        let log = MemoryLog::default();
        let accounts = accounts();
        let connect = |_: &Config, _: &UserEntry| -> Result<Box<dyn Backend + '_>, ApiError> { Ok(Box::new(api)) };
        let open_state = |_: &Config| -> Result<Box<dyn StateStore + '_>, StateError> { Ok(Box::new(store)) };
        let mut deps = Deps {
            conversation: &mut conversation,
            connect: &connect,
            open_state: &open_state,
            clock,
            accounts: &accounts,
            log: &log,
        };
        let decision = authenticate(config, args, login, &mut deps);
        conversation.assert_drained();
        decision
    }

    impl StateStore for &MemoryStateStore {
        fn update(
            &self,
            user: &str,
            change: &mut dyn FnMut(&mut crate::state::UserState) -> bool,
        ) -> Result<(), StateError> {
            (*self).update(user, change)
        }
    }

    #[test]
    fn a_valid_token_verifies() {
        let (decision, sent) = run_scripted(
            &config(""),
            "alice",
            &[Step::Prompt("Authy token", "1234567")],
            vec![Ok(TokenVerdict::Valid)],
        );
        assert_eq!(decision.outcome, Outcome::Verified(Factor::Token));
        assert_eq!(sent, vec!["1234567"]);
    }

    #[test]
    fn wrong_tokens_retry_then_hit_max_tries() {
        let steps = [
            Step::Prompt("Authy token", "1111111"),
            Step::Error("Wrong token"),
            Step::Prompt("Authy token", "2222222"),
            Step::Error("already used"),
            Step::Prompt("Authy token", "3333333"),
        ];
        let verdicts = vec![Ok(TokenVerdict::Invalid), Ok(TokenVerdict::Reused), Ok(TokenVerdict::Invalid)];
        let (decision, _) = run_scripted(&config(""), "alice", &steps, verdicts);
        assert_eq!(decision.outcome, Outcome::MaxTries);
        assert_eq!(decision.tries, 3);
    }

    #[test]
    fn malformed_input_is_a_failed_try_that_never_reaches_the_api() {
        let steps = [
            Step::Prompt("Authy token", "../sms"),
            Step::Error("Invalid token"),
            Step::Prompt("Authy token", ""),
            Step::Error("Invalid token"),
            Step::Prompt("Authy token", "123456/42#"),
        ];
        let (decision, sent) = run_scripted(&config(""), "alice", &steps, vec![]);
        assert_eq!(decision.outcome, Outcome::MaxTries);
        assert!(sent.is_empty());
    }

    #[test]
    fn a_conversation_error_fails_closed() {
        let (decision, _) = run_scripted(&config(""), "alice", &[Step::PromptFails("Authy token")], vec![]);
        assert_eq!(decision.outcome, Outcome::ConversationError);
    }

    #[test]
    fn unreachable_api_follows_failmode_and_nothing_else_does() {
        let unreachable = || Err(ApiError::Unreachable("refused".into()));
        let prompt = [Step::Prompt("Authy token", "1234567")];
        let (secure, _) = run_scripted(&config(""), "alice", &prompt, vec![unreachable()]);
        assert_eq!(secure.outcome, Outcome::Unavailable);
        let safe_config = config("failmode = \"safe\"");
        let (safe, _) = run_scripted(&safe_config, "alice", &prompt, vec![unreachable()]);
        assert_eq!(safe.outcome, Outcome::FailSafe);
        let closed = [
            (ApiError::Tls("bad cert".into()), Outcome::Denied),
            (ApiError::BadApiKey, Outcome::ServiceError),
            (ApiError::Protocol("html".into()), Outcome::Denied),
            (ApiError::Rejected { status: 404, code: Some("60026".into()), message: String::new() }, Outcome::Denied),
        ];
        for (error, expected) in closed {
            let (decision, _) = run_scripted(&safe_config, "alice", &prompt, vec![Err(error.clone())]);
            assert_eq!(decision.outcome, expected, "{error:?} under failmode safe");
        }
    }

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
            "service=sshd user=alice rhost=192.0.2.7 tty=\"\" outcome=success reason=token_valid authy_id=42 tries=1"
        );
        assert!(!line.contains("7654321"));
    }

    fn uuid() -> ApprovalId {
        ApprovalId::parse("550e8400-e29b-41d4-a716-446655440000").expect("uuid")
    }

    fn push_api(statuses: Vec<Result<ApprovalStatus, ApiError>>) -> ScriptedApi {
        ScriptedApi {
            push_created: RefCell::new(vec![Ok(uuid())].into()),
            statuses: RefCell::new(statuses.into()),
            ..ScriptedApi::default()
        }
    }

    fn args(list: &[&str]) -> ModuleArgs {
        ModuleArgs::parse(list).expect("args")
    }

    fn sudo_login() -> Login {
        Login {
            user: "alice".into(),
            service: "sudo".into(),
            tty: Some("/dev/pts/3".into()),
            hostname: "web1".into(),
            command: Some("systemctl restart nginx".into()),
            ..Login::default()
        }
    }

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
        let decision = run_login(&config(""), &args(&["method=push"]), &sudo_login(), &steps, &api);
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
        assert_eq!(decision.tries, 2);
    }

    #[test]
    fn denied_expired_and_unanswered_pushes_never_succeed() {
        for (statuses, text) in [
            (vec![Ok(ApprovalStatus::Denied)], "denied"),
            (vec![Ok(ApprovalStatus::Expired)], "expired"),
            (vec![], "not approved in time"),
        ] {
            let api = push_api(statuses);
            let steps = [
                Step::Info("Authy push sent"),
                Step::Info("Waiting for approval"),
                Step::Info("Waiting for approval"),
                Step::Info("Waiting for approval"),
            ];
            let steps: &[Step] = if text == "not approved in time" { &steps } else { &steps[..1] };
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

    #[test]
    fn a_token_typed_at_the_push_prompt_is_verified_instead() {
        let mut api = push_api(vec![]);
        api.verdicts = RefCell::new(vec![Ok(TokenVerdict::Valid)].into());
        let steps = [Step::Prompt("press Enter", "7654321")];
        let decision = run_with(&config(""), &args(&["method=push"]), "alice", &steps, &api);
        assert_eq!(decision.outcome, Outcome::Verified(Factor::Token));
        assert_eq!(api.verified.borrow().as_slice(), ["7654321"]);
    }

    #[test]
    fn sms_then_the_code_verifies_and_the_request_is_not_a_failed_try() {
        let api = ScriptedApi {
            channel_replies: RefCell::new(
                vec![Ok(ChannelReceipt { cellphone: Some("+1-XXX-XXX-XX67".into()) })].into(),
            ),
            verdicts: RefCell::new(vec![Ok(TokenVerdict::Valid)].into()),
            ..ScriptedApi::default()
        };
        let steps = [
            Step::Prompt("Authy token", "Sms"),
            Step::Info("SMS sent to +1-XXX-XXX-XX67"),
            Step::Prompt("Authy token", "1234567"),
        ];
        let decision = run_with(&config("max_tries = 1"), &args(&[]), "alice", &steps, &api);
        assert_eq!(decision.outcome, Outcome::Verified(Factor::Token));
        assert_eq!(api.channels.borrow().as_slice(), [Channel::Sms]);
    }

    #[test]
    fn method_call_starts_a_call_before_the_first_prompt() {
        let api = ScriptedApi {
            channel_replies: RefCell::new(vec![Ok(ChannelReceipt { cellphone: None })].into()),
            verdicts: RefCell::new(vec![Ok(TokenVerdict::Valid)].into()),
            ..ScriptedApi::default()
        };
        let steps = [Step::Info("Call started"), Step::Prompt("Authy token", "1234567")];
        let decision = run_with(&config("method = \"call\""), &args(&[]), "alice", &steps, &api);
        assert_eq!(decision.outcome, Outcome::Verified(Factor::Token));
        assert_eq!(api.channels.borrow().as_slice(), [Channel::Call]);
    }

    #[test]
    fn channel_requests_are_bounded_and_a_failed_send_never_triggers_failmode() {
        let api = ScriptedApi {
            channel_replies: RefCell::new(
                vec![
                    Err(ApiError::Unreachable("HTTP 503".into())),
                    Ok(ChannelReceipt { cellphone: None }),
                    Ok(ChannelReceipt { cellphone: None }),
                ]
                .into(),
            ),
            ..ScriptedApi::default()
        };
        let steps = [
            Step::Prompt("Authy token", "sms"),
            Step::Info("could not be sent"),
            Step::Prompt("Authy token", "call"),
            Step::Info("Call started"),
            Step::Prompt("Authy token", "sms"),
            Step::Info("SMS sent"),
            Step::Prompt("Authy token", "sms"),
            Step::Error("No more push, SMS or call requests"),
            Step::Prompt("Authy token", "push"),
            Step::Error("No more push, SMS or call requests"),
            Step::PromptFails("Authy token"),
        ];
        let decision = run_with(&config("failmode = \"safe\""), &args(&[]), "alice", &steps, &api);
        assert_eq!(decision.outcome, Outcome::ConversationError);
        assert_eq!(api.channels.borrow().len(), 3);
    }

    #[test]
    fn the_answer_grammar_is_case_insensitive_and_strict() {
        assert_eq!(parse_answer(" PuSh ", ALL_WORDS), Answer::Push);
        assert_eq!(parse_answer("SMS", ALL_WORDS), Answer::Channel(Channel::Sms));
        assert_eq!(parse_answer("\tcall", ALL_WORDS), Answer::Channel(Channel::Call));
        assert!(matches!(parse_answer("1234567", ALL_WORDS), Answer::Token(_)));
        for other in ["pushy", "s m s", "", "push sms", "call 1234567"] {
            assert_eq!(parse_answer(other, ALL_WORDS), Answer::Invalid, "{other:?}");
        }
    }

    #[test]
    fn only_the_words_the_backend_offers_are_understood_and_shown() {
        let push_only = &[Word::Push];
        assert_eq!(parse_answer("push", push_only), Answer::Push);
        assert_eq!(parse_answer("sms", push_only), Answer::Invalid);
        assert_eq!(parse_answer("call", &[]), Answer::Invalid);
        assert_eq!(token_prompt(ALL_WORDS), TOKEN_PROMPT);
        assert_eq!(token_prompt(&[Word::Push, Word::Channel(Channel::Call)]), "Authy token (or type push or call): ");
        assert_eq!(token_prompt(push_only), "Authy token (or type push): ");
        assert_eq!(token_prompt(&[]), "Authy token: ");
    }

    fn offline_config(extra: &str) -> Config {
        let text = format!(
            "[api]\nurl = \"https://127.0.0.1:1\"\napi_key = \"k\"\n[auth]\n{extra}\n[users]\nalice = {{ authy_id = 42, offline_secret = \"{SEED}\" }}\n"
        );
        Config::parse(Path::new("/test.toml"), &text).expect("config")
    }

    const SEED: &str = "JBSWY3DPEHPK3PXP";
    const NOW: u64 = 1_700_000_000;

    fn offline_code(at: u64) -> &'static str {
        let params = OfflineParams { digits: 6, period_secs: 30, skew_steps: 1 };
        let code = offline::code_at(&Secret::from(SEED), at, &params).expect("code");
        Box::leak(code.expose().to_owned().into_boxed_str())
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
        assert_eq!(store.get("alice").last_offline_step, Some(NOW / 30));
    }

    #[test]
    fn a_wrong_offline_code_is_a_failed_try_and_counted() {
        let store = MemoryStateStore::new();
        let steps = [
            Step::Prompt("Authy token", "1234567"),
            Step::Prompt("Offline code", "000000"),
            Step::Error("Wrong offline code"),
            Step::Prompt("Offline code", "abc"),
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
        let again = run_offline(&config, &first, &store, &clock);
        assert_eq!(again.outcome, Outcome::MaxTries, "same step twice");
        clock.advance(Duration::from_secs(30));
        let older = [Step::Prompt("Authy token", "1234567"), Step::Prompt("Offline code", offline_code(NOW - 30))];
        assert_eq!(run_offline(&config, &older, &store, &clock).outcome, Outcome::MaxTries, "a past step");
        let newer = [Step::Prompt("Authy token", "1234567"), Step::Prompt("Offline code", offline_code(NOW + 30))];
        assert_eq!(run_offline(&config, &newer, &store, &clock).outcome, Outcome::Verified(Factor::Offline));
    }

    #[test]
    fn offline_verification_locks_after_max_failures_for_the_window() {
        let store = MemoryStateStore::new();
        let clock = FakeClock::at_unix(NOW);
        let config = offline_config("max_tries = 1\n[offline]\nmax_failures = 2\nfailure_window_secs = 300");
        let wrong = [Step::Prompt("Authy token", "1234567"), Step::Prompt("Offline code", "000000")];
        for _ in 0..2 {
            assert_eq!(run_offline(&config, &wrong, &store, &clock).outcome, Outcome::MaxTries);
        }
        let right = [Step::Prompt("Authy token", "1234567"), Step::Prompt("Offline code", offline_code(NOW))];
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
