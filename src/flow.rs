//! The authentication state machine: from a login and a configuration to one `Decision`.
//!
//! Generic over its seams (the conversation, the Authy API, the clock, the account database
//! and the log) so that unit tests drive every branch with scripted doubles. The rule it
//! keeps: the only ways to `Outcome::Verified` are a token the API verified, and (later
//! layers) an approved push or a locally verified offline code. Every other path, including
//! every error, ends in an outcome that `pam.rs` maps to a PAM error code.

use crate::authy::{ApiError, AuthyApi, Token, TokenVerdict};
use crate::clock::Clock;
use crate::config::{AuthyId, Config, ConfigError, FailMode, ModuleArgs};
use crate::log::{Level, Log, format_fields};
use crate::secret::Secret;
use crate::users::{AccountDb, Subject, SubjectError, resolve};
use std::fmt;

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

/// How the module ended. `pam.rs` maps each to exactly one PAM code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A second factor was verified: PAM_SUCCESS.
    Verified(Factor),
    /// The API was unreachable and failmode is `safe`: PAM_SUCCESS, logged as a warning.
    FailSafe,
    /// Not subject to 2FA (outside `groups`, or unmapped under `ignore`): PAM_IGNORE.
    Exempt,
    /// Unmapped under `deny`, or no such account: PAM_USER_UNKNOWN.
    UnknownUser,
    /// A denial or an untrustworthy API reply: PAM_AUTH_ERR.
    Denied,
    /// Too many wrong answers: PAM_MAXTRIES.
    MaxTries,
    /// The API was unreachable and no fallback applied: PAM_AUTHINFO_UNAVAIL.
    Unavailable,
    /// The configuration or an account lookup is broken: PAM_SERVICE_ERR.
    ServiceError,
    /// The conversation failed or was interrupted: PAM_CONV_ERR.
    ConversationError,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    Token,
}

impl Outcome {
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Verified(_) => "success",
            Outcome::FailSafe => "success_failmode_safe",
            Outcome::Exempt => "ignore",
            Outcome::UnknownUser => "user_unknown",
            Outcome::Denied => "denied",
            Outcome::MaxTries => "maxtries",
            Outcome::Unavailable => "unavailable",
            Outcome::ServiceError => "service_error",
            Outcome::ConversationError => "conversation_error",
        }
    }
}

impl fmt::Display for Factor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Factor::Token => "token",
        })
    }
}

/// The outcome with what the log line needs to explain it. No secret ever goes in here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    pub reason: String,
    pub account: Option<String>,
    pub authy_id: Option<AuthyId>,
    pub tries: u32,
}

impl Decision {
    fn new(outcome: Outcome, reason: impl Into<String>) -> Decision {
        Decision {
            outcome,
            reason: reason.into(),
            account: None,
            authy_id: None,
            tries: 0,
        }
    }

    /// The syslog line for this decision.
    pub fn log_line(&self, login: &Login) -> String {
        let authy_id = self.authy_id.map(|id| id.to_string()).unwrap_or_default();
        let tries = self.tries.to_string();
        let mut fields = vec![
            ("service", login.service.as_str()),
            ("user", login.user.as_str()),
            ("rhost", login.rhost.as_deref().unwrap_or("")),
            ("tty", login.tty.as_deref().unwrap_or("")),
            ("outcome", self.outcome.word()),
            ("reason", self.reason.as_str()),
        ];
        if let Some(account) = &self.account
            && account != &login.user {
                fields.push(("account", account));
            }
        if self.authy_id.is_some() {
            fields.push(("authy_id", &authy_id));
        }
        if self.tries > 0 {
            fields.push(("tries", &tries));
        }
        format_fields(&fields)
    }

    /// How loud the line is: a fail-safe pass is a warning, broken setups are errors.
    pub fn log_level(&self) -> Level {
        match self.outcome {
            Outcome::Verified(_) | Outcome::Exempt => Level::Info,
            Outcome::FailSafe | Outcome::Unavailable => Level::Warning,
            Outcome::ServiceError => Level::Err,
            _ => Level::Notice,
        }
    }
}

/// Builds the API client for a mapped user (only then: exempt logins make no connection).
pub type Connect<'a> = dyn Fn(&Config) -> Result<Box<dyn AuthyApi + 'a>, ApiError> + 'a;

/// Everything the flow needs from the outside world.
pub struct Deps<'a> {
    pub conversation: &'a mut dyn Conversation,
    pub connect: &'a Connect<'a>,
    pub clock: &'a dyn Clock,
    pub accounts: &'a dyn AccountDb,
    pub log: &'a dyn Log,
}

pub const TOKEN_PROMPT: &str = "Authy token: ";

/// Loads the configuration named by the module arguments, then authenticates.
pub fn run(args: &[String], login: &Login, deps: &mut Deps<'_>) -> Decision {
    let config = ModuleArgs::parse(args).and_then(|args| Config::load(&args.config_path));
    match config {
        Ok(config) => authenticate(&config, login, deps),
        Err(error) => config_error(&error),
    }
}

fn config_error(error: &ConfigError) -> Decision {
    Decision::new(Outcome::ServiceError, format!("config: {error}"))
}

/// Authenticates `login` under `config`.
pub fn authenticate(config: &Config, login: &Login, deps: &mut Deps<'_>) -> Decision {
    let subject = match resolve(config, deps.accounts, &login.user) {
        Ok(subject) => subject,
        Err(error @ SubjectError::MissingGroup(_)) => {
            return Decision::new(
                Outcome::ServiceError,
                format!("config: {}: {error}", config.path.display()),
            );
        }
        Err(error) => return Decision::new(Outcome::ServiceError, error.to_string()),
    };
    let (account, entry) = match subject {
        Subject::Mapped { account, entry } => (account, entry),
        Subject::OutsideGroups { account } => {
            return Decision {
                account: Some(account),
                ..Decision::new(Outcome::Exempt, "outside_groups")
            };
        }
        Subject::UnmappedIgnored { account } => {
            return Decision {
                account: Some(account),
                ..Decision::new(Outcome::Exempt, "unmapped")
            };
        }
        Subject::UnmappedDenied { account } => {
            return Decision {
                account: Some(account),
                ..Decision::new(Outcome::UnknownUser, "unmapped")
            };
        }
        Subject::NoSuchAccount => return Decision::new(Outcome::UnknownUser, "no_such_account"),
    };
    let mut decision = match (deps.connect)(config) {
        Ok(api) => prompt_loop(config, entry.authy_id, api.as_ref(), deps),
        Err(error) => api_failure(config, &error),
    };
    decision.account = Some(account);
    decision.authy_id = Some(entry.authy_id);
    decision
}

/// Asks for a token until one verifies or `max_tries` answers were wrong.
fn prompt_loop(
    config: &Config,
    authy_id: AuthyId,
    api: &dyn AuthyApi,
    deps: &mut Deps<'_>,
) -> Decision {
    let max_tries = config.auth.max_tries;
    for attempt in 1..=max_tries {
        let answer = match deps.conversation.prompt(TOKEN_PROMPT, false) {
            Ok(answer) => answer,
            Err(ConvError) => {
                return Decision {
                    tries: attempt - 1,
                    ..Decision::new(Outcome::ConversationError, "conversation")
                };
            }
        };
        let last = attempt == max_tries;
        let Some(token) = Token::parse(answer.expose()) else {
            if tell(
                deps,
                last,
                "Invalid token: type the 6 to 8 digits shown by Authy.",
            )
            .is_err()
            {
                return Decision {
                    tries: attempt,
                    ..Decision::new(Outcome::ConversationError, "conversation")
                };
            }
            continue;
        };
        match api.verify_token(authy_id, &token) {
            Ok(TokenVerdict::Valid) => {
                return Decision {
                    tries: attempt,
                    ..Decision::new(Outcome::Verified(Factor::Token), "token_valid")
                };
            }
            Ok(verdict @ (TokenVerdict::Invalid | TokenVerdict::Reused)) => {
                deps.log.log(
                    Level::Debug,
                    &format!("authy_id={authy_id} verdict={verdict:?}"),
                );
                let text = if verdict == TokenVerdict::Reused {
                    "That token was already used; wait for the next one."
                } else {
                    "Wrong token."
                };
                if tell(deps, last, text).is_err() {
                    return Decision {
                        tries: attempt,
                        ..Decision::new(Outcome::ConversationError, "conversation")
                    };
                }
            }
            Err(error) => {
                return Decision {
                    tries: attempt,
                    ..api_failure(config, &error)
                };
            }
        }
    }
    Decision {
        tries: max_tries,
        ..Decision::new(Outcome::MaxTries, "too_many_wrong_tokens")
    }
}

/// Shows an error message, unless it was the last try (the application reports that).
fn tell(deps: &mut Deps<'_>, last: bool, text: &str) -> Result<(), ConvError> {
    if last {
        Ok(())
    } else {
        deps.conversation.error(text)
    }
}

/// What an API failure means. Only `Unreachable` may be softened by failmode; everything
/// else fails closed.
fn api_failure(config: &Config, error: &ApiError) -> Decision {
    let reason = format!("api_{}: {error}", error.kind());
    match error {
        ApiError::Unreachable(_) => match config.auth.failmode {
            FailMode::Secure => Decision::new(Outcome::Unavailable, reason),
            FailMode::Safe => Decision::new(Outcome::FailSafe, reason),
        },
        ApiError::BadApiKey => Decision::new(Outcome::ServiceError, reason),
        ApiError::Tls(_) | ApiError::Rejected { .. } | ApiError::Protocol(_) => {
            Decision::new(Outcome::Denied, reason)
        }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::authy::{ApprovalRequest, ApprovalStatus, ApprovalUuid, Channel, ChannelReceipt};
    use crate::clock::FakeClock;
    use crate::log::MemoryLog;
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
            ScriptedConversation {
                steps: steps.iter().cloned().collect(),
            }
        }

        pub fn assert_drained(&self) {
            assert!(
                self.steps.is_empty(),
                "conversation steps left: {:?}",
                self.steps
            );
        }

        fn next(&mut self, kind: &str, text: &str) -> Step {
            self.steps
                .pop_front()
                .unwrap_or_else(|| panic!("unexpected {kind} {text:?}: script is empty"))
        }
    }

    impl Conversation for ScriptedConversation {
        fn prompt(&mut self, text: &str, _echo: bool) -> Result<Secret, ConvError> {
            match self.next("prompt", text) {
                Step::Prompt(expected, answer) if text.contains(expected) => {
                    Ok(Secret::from(answer))
                }
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

    /// An API double that answers verify calls from a script and records them.
    #[derive(Default)]
    pub struct ScriptedApi {
        pub verdicts: RefCell<VecDeque<Result<TokenVerdict, ApiError>>>,
        pub verified: RefCell<Vec<String>>,
    }

    impl AuthyApi for ScriptedApi {
        fn verify_token(&self, _: AuthyId, token: &Token) -> Result<TokenVerdict, ApiError> {
            self.verified.borrow_mut().push(token.expose().to_owned());
            self.verdicts
                .borrow_mut()
                .pop_front()
                .expect("unexpected verify call")
        }
        fn request_token(&self, _: AuthyId, _: Channel) -> Result<ChannelReceipt, ApiError> {
            panic!("unexpected token request")
        }
        fn create_approval_request(
            &self,
            _: AuthyId,
            _: &ApprovalRequest,
        ) -> Result<ApprovalUuid, ApiError> {
            panic!("unexpected approval request")
        }
        fn approval_status(&self, _: &ApprovalUuid) -> Result<ApprovalStatus, ApiError> {
            panic!("unexpected approval status")
        }
    }

    fn config(auth: &str) -> Config {
        let text = format!(
            "[api]\nurl = \"https://127.0.0.1:1\"\napi_key = \"k\"\n[auth]\n{auth}\n[users]\nalice = 42\n"
        );
        Config::parse(Path::new("/test.toml"), &text).expect("config")
    }

    fn accounts() -> FakeAccounts {
        let mut db = FakeAccounts::default();
        db.accounts
            .insert("alice".into(), ("alice".into(), 100, vec![100]));
        db.accounts
            .insert("bob".into(), ("bob".into(), 101, vec![101]));
        db
    }

    fn login(user: &str) -> Login {
        Login {
            user: user.into(),
            service: "sshd".into(),
            rhost: Some("192.0.2.7".into()),
            ..Login::default()
        }
    }

    /// Runs the flow with a scripted conversation and API; returns the decision and the
    /// tokens that reached the API.
    fn run_scripted(
        config: &Config,
        user: &str,
        steps: &[Step],
        verdicts: Vec<Result<TokenVerdict, ApiError>>,
    ) -> (Decision, Vec<String>) {
        let api = ScriptedApi {
            verdicts: RefCell::new(verdicts.into()),
            ..ScriptedApi::default()
        };
        let mut conversation = ScriptedConversation::new(steps);
        let clock = FakeClock::at_unix(1_700_000_000);
        let log = MemoryLog::default();
        let accounts = accounts();
        let connect =
            |_: &Config| -> Result<Box<dyn AuthyApi + '_>, ApiError> { Ok(Box::new(&api)) };
        let mut deps = Deps {
            conversation: &mut conversation,
            connect: &connect,
            clock: &clock,
            accounts: &accounts,
            log: &log,
        };
        let decision = authenticate(config, &login(user), &mut deps);
        conversation.assert_drained();
        let verified = api.verified.borrow().clone();
        (decision, verified)
    }

    impl AuthyApi for &ScriptedApi {
        fn verify_token(&self, id: AuthyId, token: &Token) -> Result<TokenVerdict, ApiError> {
            (*self).verify_token(id, token)
        }
        fn request_token(&self, id: AuthyId, channel: Channel) -> Result<ChannelReceipt, ApiError> {
            (*self).request_token(id, channel)
        }
        fn create_approval_request(
            &self,
            id: AuthyId,
            r: &ApprovalRequest,
        ) -> Result<ApprovalUuid, ApiError> {
            (*self).create_approval_request(id, r)
        }
        fn approval_status(&self, uuid: &ApprovalUuid) -> Result<ApprovalStatus, ApiError> {
            (*self).approval_status(uuid)
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
        let verdicts = vec![
            Ok(TokenVerdict::Invalid),
            Ok(TokenVerdict::Reused),
            Ok(TokenVerdict::Invalid),
        ];
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
        let (decision, _) = run_scripted(
            &config(""),
            "alice",
            &[Step::PromptFails("Authy token")],
            vec![],
        );
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
            (
                ApiError::Rejected {
                    status: 404,
                    code: Some("60026".into()),
                    message: String::new(),
                },
                Outcome::Denied,
            ),
        ];
        for (error, expected) in closed {
            let (decision, _) =
                run_scripted(&safe_config, "alice", &prompt, vec![Err(error.clone())]);
            assert_eq!(decision.outcome, expected, "{error:?} under failmode safe");
        }
    }

    #[test]
    fn unmapped_and_unknown_users_never_see_a_prompt() {
        let (denied, _) = run_scripted(&config(""), "bob", &[], vec![]);
        assert_eq!(denied.outcome, Outcome::UnknownUser);
        let (ignored, _) = run_scripted(&config("unmapped_users = \"ignore\""), "bob", &[], vec![]);
        assert_eq!(ignored.outcome, Outcome::Exempt);
        let (unknown, _) = run_scripted(
            &config("unmapped_users = \"ignore\""),
            "mallory",
            &[],
            vec![],
        );
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
}
