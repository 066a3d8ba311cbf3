//! The whole authentication state machine (`flow::authenticate`) driven by fuzz bytes: the
//! config knobs, every answer the user types, every API verdict. The invariant is the one the
//! module exists for: the login passes only through a verdict that says so (a token the API
//! called valid, a push it called approved, an offline code while it was unreachable, or
//! fail-safe while it was unreachable); only well-formed tokens reach the API; at most three
//! channel requests are made; the log line has no control character.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_authy::backend::{
    ApiError, ApprovalId, ApprovalRequest, ApprovalStatus, Backend, Channel, ChannelReceipt, Token, TokenVerdict, Word,
};
use pam_authy::clock::FakeClock;
use pam_authy::config::{Config, ModuleArgs, UserEntry};
use pam_authy::flow::{self, ConvError, Conversation, Deps, Factor, Login, Outcome};
use pam_authy::log::MemoryLog;
use pam_authy::secret::Secret;
use pam_authy::state::{MemoryStateStore, StateError, StateStore};
use pam_authy::users::FakeAccounts;
use std::cell::RefCell;
use std::path::Path;

/// Fuzz bytes, consumed as the flow asks for things; exhausted bytes read as zeros.
struct Script<'a> {
    data: &'a [u8],
}

impl Script<'_> {
    fn byte(&mut self) -> u8 {
        let (first, rest) = self.data.split_first().map_or((0, &[][..]), |(f, r)| (*f, r));
        self.data = rest;
        first
    }

    fn text(&mut self) -> Option<String> {
        let len = self.byte();
        if len == 255 {
            return None;
        }
        let take = usize::from(len % 24).min(self.data.len());
        let (text, rest) = self.data.split_at(take);
        self.data = rest;
        Some(String::from_utf8_lossy(text).into_owned())
    }
}

#[derive(Default)]
struct Seen {
    valid_token: bool,
    approved: bool,
    unreachable: bool,
    channel_requests: u32,
    prompts: u32,
}

struct Fuzzed<'a, 'b> {
    script: &'b RefCell<Script<'a>>,
    seen: &'b RefCell<Seen>,
}

impl Conversation for Fuzzed<'_, '_> {
    fn prompt(&mut self, _: &str, _: bool) -> Result<Secret, ConvError> {
        let mut seen = self.seen.borrow_mut();
        seen.prompts += 1;
        if seen.prompts > 64 {
            return Err(ConvError);
        }
        self.script.borrow_mut().text().map(Secret::new).ok_or(ConvError)
    }
    fn info(&mut self, _: &str) -> Result<(), ConvError> {
        if self.script.borrow_mut().byte() == 254 { Err(ConvError) } else { Ok(()) }
    }
    fn error(&mut self, _: &str) -> Result<(), ConvError> {
        if self.script.borrow_mut().byte() == 254 { Err(ConvError) } else { Ok(()) }
    }
}

fn api_error(choice: u8) -> ApiError {
    match choice % 5 {
        0 => ApiError::Unreachable("down".into()),
        1 => ApiError::Tls("bad certificate".into()),
        2 => ApiError::BadApiKey,
        3 => ApiError::Rejected { status: 429, code: None, message: String::new() },
        _ => ApiError::Protocol("odd".into()),
    }
}

impl Backend for Fuzzed<'_, '_> {
    fn words(&self) -> &[Word] {
        &[Word::Push, Word::Channel(Channel::Sms), Word::Channel(Channel::Call)]
    }
    fn verify_code(&mut self, token: &Token) -> Result<TokenVerdict, ApiError> {
        let digits = token.expose();
        assert!((6..=8).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()), "{digits:?}");
        let choice = self.script.borrow_mut().byte();
        let mut seen = self.seen.borrow_mut();
        let verdict = match choice % 8 {
            0 => Ok(TokenVerdict::Valid),
            1 | 2 => Ok(TokenVerdict::Invalid),
            3 => Ok(TokenVerdict::Reused),
            other => Err(api_error(other)),
        };
        seen.valid_token |= verdict == Ok(TokenVerdict::Valid);
        seen.unreachable |= matches!(verdict, Err(ApiError::Unreachable(_)));
        verdict
    }
    fn send_code(&mut self, _: Channel) -> Result<ChannelReceipt, ApiError> {
        self.seen.borrow_mut().channel_requests += 1;
        let choice = self.script.borrow_mut().byte();
        if choice % 2 == 0 { Ok(ChannelReceipt { cellphone: None }) } else { Err(api_error(choice / 2)) }
    }
    fn start_approval(&mut self, request: &ApprovalRequest) -> Result<ApprovalId, ApiError> {
        assert!(
            request.message.chars().chain(request.details.iter().flat_map(|(_, v)| v.chars())).all(|c| !c.is_control())
        );
        self.seen.borrow_mut().channel_requests += 1;
        let choice = self.script.borrow_mut().byte();
        if choice % 3 == 0 { Err(api_error(choice / 3)) } else { Ok(ApprovalId::parse("0123-abcd").expect("id")) }
    }
    fn poll_approval(&mut self, _: &ApprovalId, _: std::time::Duration) -> Result<ApprovalStatus, ApiError> {
        let choice = self.script.borrow_mut().byte();
        let status = match choice % 7 {
            0 => Ok(ApprovalStatus::Approved),
            1 => Ok(ApprovalStatus::Denied),
            2 => Ok(ApprovalStatus::Expired),
            3 | 4 => Ok(ApprovalStatus::Pending),
            other => Err(api_error(other)),
        };
        self.seen.borrow_mut().approved |= status == Ok(ApprovalStatus::Approved);
        status
    }
}

fuzz_target!(|data: &[u8]| {
    let script = RefCell::new(Script { data });
    let knobs = script.borrow_mut().byte();
    let method = ["prompt", "push", "sms", "call"][usize::from(knobs % 4)];
    let failmode = if knobs & 4 != 0 { "safe" } else { "secure" };
    let offline = knobs & 8 != 0;
    let max_tries = 1 + (knobs >> 4) % 4;
    let user = if offline { "alice = { authy_id = 42, offline_secret = \"JBSWY3DPEHPK3PXP\" }" } else { "alice = 42" };
    let text = format!(
        "[api]\nurl = \"https://127.0.0.1:1\"\napi_key = \"k\"\n[auth]\nfailmode = \"{failmode}\"\nmax_tries = {max_tries}\n\
         method = \"{method}\"\npush_timeout_secs = 5\npush_poll_ms = 1000\n[users]\n{user}\n"
    );
    let config = Config::parse(Path::new("/fuzz.toml"), &text).expect("config");
    let args = ModuleArgs::parse::<&str>(&[]).expect("args");
    let login = Login { user: "alice".into(), service: "sshd".into(), tty: Some("ssh".into()), ..Login::default() };
    let seen = RefCell::new(Seen::default());
    let mut conversation = Fuzzed { script: &script, seen: &seen };
    let connect = |_: &Config, _: &UserEntry| -> Result<Box<dyn Backend + '_>, ApiError> {
        Ok(Box::new(Fuzzed { script: &script, seen: &seen }))
    };
    let open_state = |_: &Config| -> Result<Box<dyn StateStore>, StateError> { Ok(Box::new(MemoryStateStore::new())) };
    let clock = FakeClock::at_unix(1_800_000_000);
    let log = MemoryLog::default();
    let mut deps = Deps {
        conversation: &mut conversation,
        connect: &connect,
        open_state: &open_state,
        clock: &clock,
        accounts: &FakeAccounts::one("alice", 100),
        log: &log,
    };
    let decision = flow::authenticate(&config, &args, &login, &mut deps);
    let seen = seen.borrow();
    match decision.outcome {
        Outcome::Verified(Factor::Token) => assert!(seen.valid_token),
        Outcome::Verified(Factor::Push) => assert!(seen.approved),
        Outcome::Verified(Factor::Offline) => assert!(offline && seen.unreachable),
        Outcome::Verified(Factor::Grace) => panic!("grace without grace_secs"),
        Outcome::FailSafe => assert!(failmode == "safe" && seen.unreachable && !offline),
        _ => {}
    }
    assert!(seen.channel_requests <= 3, "{} channel requests", seen.channel_requests);
    let line = decision.log_line(&login);
    assert!(!line.chars().any(char::is_control), "{line:?}");
    assert!(!log.text().chars().any(|c| c.is_control() && c != '\n'));
});
