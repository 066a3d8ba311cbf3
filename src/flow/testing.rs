//! The doubles and runners the flow's unit tests share: a conversation that expects its
//! messages in order, a backend that answers from scripts, and `run_*` helpers that drive
//! `authenticate` with them.

use super::*;
use crate::backend::{ApprovalId, ApprovalRequest, ApprovalStatus, ChannelReceipt, Token, TokenVerdict};
use crate::clock::FakeClock;
use crate::log::MemoryLog;
use crate::state::MemoryStateStore;
use crate::users::FakeAccounts;
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
    /// The time each status poll was given to end by.
    pub poll_limits: RefCell<Vec<std::time::Duration>>,
    /// Gives every code a replay tag, as the Verify backend does for TOTP codes.
    pub replay_tags: bool,
    /// Speaks as a backend that is not Authy (Verify); Authy's words otherwise.
    pub neutral_words: bool,
    /// Each code check moves this clock on by that much, as a slow request would.
    pub verify_takes: Option<(std::sync::Arc<FakeClock>, std::time::Duration)>,
}

pub const ALL_WORDS: &[Word] = &[Word::Push, Word::Channel(Channel::Sms), Word::Channel(Channel::Call)];

impl Backend for &ScriptedApi {
    fn wording(&self) -> &'static crate::backend::Wording {
        if self.neutral_words { &crate::backend::Wording::NEUTRAL } else { &crate::backend::Wording::AUTHY }
    }
    fn words(&self) -> &[Word] {
        ALL_WORDS
    }
    fn verify_code(&mut self, token: &Token) -> Result<TokenVerdict, ApiError> {
        self.verified.borrow_mut().push(token.expose().to_owned());
        if let Some((clock, duration)) = &self.verify_takes {
            clock.advance(*duration);
        }
        self.verdicts.borrow_mut().pop_front().expect("unexpected verify call")
    }
    fn replay_tag(&self, code: &Token) -> Option<String> {
        self.replay_tags.then(|| format!("tag-of-{}", code.len()))
    }
    fn send_code(&mut self, channel: Channel) -> Result<ChannelReceipt, ApiError> {
        self.channels.borrow_mut().push(channel);
        self.channel_replies.borrow_mut().pop_front().expect("unexpected token request")
    }
    fn start_approval(&mut self, request: &ApprovalRequest) -> Result<ApprovalId, ApiError> {
        self.push_requests.borrow_mut().push(request.clone());
        self.push_created.borrow_mut().pop_front().expect("unexpected approval request")
    }
    fn poll_approval(&mut self, _: &ApprovalId, within: std::time::Duration) -> Result<ApprovalStatus, ApiError> {
        self.poll_limits.borrow_mut().push(within);
        // Once the script is exhausted the request stays pending.
        self.statuses.borrow_mut().pop_front().unwrap_or(Ok(ApprovalStatus::Pending))
    }
}

pub fn config(auth: &str) -> Config {
    let text = format!("[api]\nurl = \"https://127.0.0.1:1\"\napi_key = \"k\"\n[auth]\n{auth}\n[users]\nalice = 42\n");
    Config::parse(Path::new("/test.toml"), &text).expect("config")
}

pub fn accounts() -> FakeAccounts {
    let mut db = FakeAccounts::default();
    db.accounts.insert("alice".into(), ("alice".into(), 100, vec![100]));
    db.accounts.insert("bob".into(), ("bob".into(), 101, vec![101]));
    db
}

pub fn login(user: &str) -> Login {
    Login { user: user.into(), service: "sshd".into(), rhost: Some("192.0.2.7".into()), ..Login::default() }
}

/// Runs the flow with a scripted conversation and API; returns the decision and the
/// tokens that reached the API.
pub fn run_scripted(
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

pub fn run_with(config: &Config, args: &ModuleArgs, user: &str, steps: &[Step], api: &ScriptedApi) -> Decision {
    run_login(config, args, &login(user), steps, api)
}

pub fn run_login(config: &Config, args: &ModuleArgs, login: &Login, steps: &[Step], api: &ScriptedApi) -> Decision {
    let clock = FakeClock::at_unix(1_700_000_000);
    run_full(config, args, login, steps, api, &MemoryStateStore::new(), &clock)
}

pub fn run_full(
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

pub fn uuid() -> ApprovalId {
    ApprovalId::parse("550e8400-e29b-41d4-a716-446655440000").expect("uuid")
}

pub fn push_api(statuses: Vec<Result<ApprovalStatus, ApiError>>) -> ScriptedApi {
    ScriptedApi {
        push_created: RefCell::new(vec![Ok(uuid())].into()),
        statuses: RefCell::new(statuses.into()),
        ..ScriptedApi::default()
    }
}

pub fn args(list: &[&str]) -> ModuleArgs {
    ModuleArgs::parse(list).expect("args")
}

pub fn sudo_login() -> Login {
    Login {
        user: "alice".into(),
        service: "sudo".into(),
        tty: Some("/dev/pts/3".into()),
        hostname: "web1".into(),
        command: Some("systemctl restart nginx".into()),
        ..Login::default()
    }
}

pub const NOW: u64 = 1_700_000_000;

/// A conversation that answers prompts in order (failing once the answers run out) and
/// keeps every text it was shown, prompts included.
#[derive(Default)]
pub struct RecordingConversation {
    pub answers: VecDeque<&'static str>,
    pub shown: Vec<String>,
}

impl Conversation for RecordingConversation {
    fn prompt(&mut self, text: &str, _echo: bool) -> Result<Secret, ConvError> {
        self.shown.push(text.to_owned());
        self.answers.pop_front().map(Secret::from).ok_or(ConvError)
    }
    fn info(&mut self, text: &str) -> Result<(), ConvError> {
        self.shown.push(text.to_owned());
        Ok(())
    }
    fn error(&mut self, text: &str) -> Result<(), ConvError> {
        self.shown.push(text.to_owned());
        Ok(())
    }
}

/// Runs the flow for alice with `answers`; returns the decision and every text shown.
pub fn run_recorded(
    config: &Config,
    login: &Login,
    answers: &[&'static str],
    api: &ScriptedApi,
) -> (Decision, Vec<String>) {
    let mut conversation = RecordingConversation { answers: answers.iter().copied().collect(), shown: Vec::new() };
    let log = MemoryLog::default();
    let accounts = accounts();
    let store = MemoryStateStore::new();
    let clock = FakeClock::at_unix(NOW);
    let connect = |_: &Config, _: &UserEntry| -> Result<Box<dyn Backend + '_>, ApiError> { Ok(Box::new(api)) };
    let open_state = |_: &Config| -> Result<Box<dyn StateStore + '_>, StateError> { Ok(Box::new(&store)) };
    let mut deps = Deps {
        conversation: &mut conversation,
        connect: &connect,
        open_state: &open_state,
        clock: &clock,
        accounts: &accounts,
        log: &log,
    };
    let decision = authenticate(config, &args(&[]), login, &mut deps);
    (decision, conversation.shown)
}
