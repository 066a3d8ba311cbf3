//! The token prompt: what it says (the words the backend offers), what the user may type
//! (a token or one of those words), and what each answer does: verify a token, send a code
//! by SMS or call within the bounded number of requests, or start a push.
//!
//! Only a token the backend calls valid succeeds here; a wrong, reused or malformed one is
//! a failed try. An unreachable API hands over to the offline fallback when the user has
//! one, and otherwise ends in the outcome `api_failure` gives.

use super::{ConvError, Decision, Factor, Outcome, Session};
use crate::backend::{ApiError, Channel, Token, TokenVerdict, Word, Wording};
use crate::log::Level;
use crate::secret::Secret;
use std::ops::ControlFlow;

/// The token prompt of a backend that offers push, sms and call (Authy); `code_prompt`
/// builds it from the backend's wording and the words it offers.
pub const TOKEN_PROMPT: &str = "Authy token (or type push, sms or call): ";
const REUSED: &str = "That code was already used; wait for the next one.";
const NOTHING_TO_CHECK: &str = "That code can no longer be checked (it expired or was used); ask for a new one.";
/// Shown before a rate limit ends the login.
pub const RATE_LIMITED: &str = "Too many attempts: the verification service refuses more for now. Try again later.";
/// Channel requests (push, sms, call) one authentication may make.
pub const MAX_CHANNEL_REQUESTS: u32 = 3;

/// What the user reads when the login ends because the API cannot be reached and there is
/// no offline code to fall back on; under sshd it is a prompt (`api_failed_and_said`).
pub fn unreachable_message(wording: &Wording) -> String {
    format!("{} cannot be reached; try again later.", wording.service)
}

pub fn unreachable_prompt(wording: &Wording) -> String {
    format!("{} cannot be reached; try again later (press Enter): ", wording.service)
}

/// "a, b or c".
fn alternatives(words: &[Word], name: impl Fn(Word) -> &'static str) -> String {
    let names: Vec<&str> = words.iter().map(|&word| name(word)).collect();
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// The prompt for a code in the backend's words ("Authy token", "Verification code"),
/// naming only the words this user can type instead.
pub fn code_prompt(wording: &Wording, words: &[Word]) -> String {
    if words.is_empty() {
        format!("{}: ", wording.prompt)
    } else {
        format!("{} (or type {}): ", wording.prompt, alternatives(words, Word::as_str))
    }
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

impl Session<'_, '_> {
    /// The words still honoured: none once the channel requests are used up, so the prompt
    /// stops offering what would only be refused.
    fn words(&self) -> &[Word] {
        if self.channel_requests >= MAX_CHANNEL_REQUESTS { &[] } else { self.backend.words() }
    }

    /// The complaint when a word is typed after the requests ran out.
    fn no_more_requests(&self) -> String {
        let requests = alternatives(self.backend.words(), |word| match word {
            Word::Push => "push",
            Word::Channel(Channel::Sms) => "SMS",
            Word::Channel(Channel::Call) => "call",
        });
        format!("No more {requests} requests for this login; type a {}.", self.backend.wording().code)
    }

    pub(super) fn prompt_loop(&mut self) -> Decision {
        // Every round costs a try or a channel request; this bound only backs that rule up, so
        // that no answer can hold the application (sshd's pre-auth slot) in the loop.
        let max_rounds = self.config.auth.max_tries + MAX_CHANNEL_REQUESTS;
        let mut rounds = 0;
        while self.tries_left() {
            rounds += 1;
            if rounds > max_rounds {
                return self.decision(Outcome::MaxTries, "too_many_rounds");
            }
            let prompt = code_prompt(self.backend.wording(), self.words());
            let text = match self.deps.conversation.prompt(&prompt, false) {
                Ok(text) => text,
                Err(ConvError) => return self.conversation_failed(),
            };
            if let ControlFlow::Break(decision) = self.answer(&text) {
                return decision;
            }
        }
        self.decision(Outcome::MaxTries, "too_many_failed_tries")
    }

    /// Acts on one answer typed at the token prompt (or at the push prompt).
    pub(super) fn answer(&mut self, text: &Secret) -> ControlFlow<Decision> {
        match parse_answer(text.expose(), self.words()) {
            Answer::Invalid if parse_answer(text.expose(), self.backend.words()) != Answer::Invalid => {
                let complaint = self.no_more_requests();
                self.failed_try(&complaint)
            }
            Answer::Invalid => {
                let words = alternatives(self.words(), Word::as_str);
                let Wording { code, code_source, .. } = self.backend.wording();
                let complaint = if words.is_empty() {
                    format!("Invalid {code}: type the 6 to 8 digits {code_source}.")
                } else {
                    format!("Invalid {code}: type the 6 to 8 digits {code_source}, or {words}.")
                };
                self.failed_try(&complaint)
            }
            Answer::Channel(channel) => self.request_channel(channel),
            Answer::Push => self.push_step(),
            Answer::Token(token) => self.verify(&token),
        }
    }

    fn verify(&mut self, token: &Token) -> ControlFlow<Decision> {
        let tag = self.backend.replay_tag(token);
        if let Some(tag) = &tag
            && !self.claim_code(tag)?
        {
            self.log(Level::Notice, "code_reused", "refused before the API was asked");
            return self.failed_try(REUSED);
        }
        let verdict = self.backend.verify_code(token);
        // Only an answer that the code was not accepted frees it: after a timeout or an
        // unreadable reply the service may have accepted it, and would accept it again.
        if let Some(tag) = &tag
            && matches!(verdict, Ok(verdict) if verdict != TokenVerdict::Valid)
        {
            self.release_code(tag);
        }
        match verdict {
            Ok(TokenVerdict::Valid) => {
                ControlFlow::Break(self.decision(Outcome::Verified(Factor::Token), "token_valid"))
            }
            Ok(TokenVerdict::Reused) => self.failed_try(REUSED),
            Ok(TokenVerdict::Expired) => self.failed_try(NOTHING_TO_CHECK),
            Ok(TokenVerdict::Invalid) => {
                let complaint = format!("Wrong {}.", self.backend.wording().code);
                self.failed_try(&complaint)
            }
            Err(ApiError::Unreachable(why)) if self.offline_secret.is_some() => {
                self.log(Level::Warning, "api_unreachable_offline_fallback", &why);
                ControlFlow::Break(self.offline())
            }
            Err(error) => ControlFlow::Break(self.end_with(&error)),
        }
    }

    /// Claims a code's replay tag in the state store: `Continue(false)` when another login
    /// (any process, any service) already presented it within its validity. Any state
    /// failure ends the login: a guard that cannot be kept is no guard.
    fn claim_code(&mut self, tag: &str) -> ControlFlow<Decision, bool> {
        let store = match self.state.get(self.config, self.deps.open_state) {
            Ok(store) => store,
            Err(error) => {
                return ControlFlow::Break(self.decision(Outcome::ServiceError, format!("code_state: {error}")));
            }
        };
        let now = self.deps.clock.unix_time();
        // The service may accept the code as late as the request's end, and its window may
        // last a whole WINDOW from then.
        let until = now
            .saturating_add(crate::verify::replay::WINDOW.as_secs())
            .saturating_add(self.config.api.timeout.as_secs());
        let mut claimed = false;
        match store.update(self.account, &mut |state| {
            claimed = state.claim_code(tag, now, until);
            claimed
        }) {
            Ok(()) => ControlFlow::Continue(claimed),
            Err(error) => ControlFlow::Break(self.decision(Outcome::ServiceError, format!("code_state: {error}"))),
        }
    }

    /// Lets a code the service did not accept be typed again. A failure only costs the user
    /// that code until its claim expires.
    fn release_code(&self, tag: &str) {
        let released = self
            .state
            .get(self.config, self.deps.open_state)
            .and_then(|store| store.update(self.account, &mut |state| state.release_code(tag)));
        if let Err(error) = released {
            self.log(Level::Notice, "code_release_failed", &error.to_string());
        }
    }

    /// Takes one of the bounded channel requests (`Continue(true)`), or says there are none
    /// left (`Continue(false)`).
    pub(super) fn take_channel_request(&mut self) -> ControlFlow<Decision, bool> {
        if self.channel_requests >= MAX_CHANNEL_REQUESTS {
            // A refused request costs a try, so that asking again cannot loop for free.
            let complaint = self.no_more_requests();
            self.failed_try(&complaint)?;
            return ControlFlow::Continue(false);
        }
        self.channel_requests += 1;
        ControlFlow::Continue(true)
    }

    /// Asks the backend to send a code by SMS or call. Failing to send is not a failed try
    /// and never triggers failmode: only a token verification decides availability.
    pub(super) fn request_channel(&mut self, channel: Channel) -> ControlFlow<Decision> {
        if !self.take_channel_request()? {
            return ControlFlow::Continue(());
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
            Err(error) if self.setup_broken(&error) => return ControlFlow::Break(self.end_with(&error)),
            Err(error) => {
                self.log(Level::Notice, "channel_failed", &format!("{channel}: {error}"));
                let Wording { code, app, .. } = self.backend.wording();
                format!("{what} could not be sent; type a {code} from {app} instead.")
            }
        };
        let sent = self.deps.conversation.info(&notice);
        self.shown(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::ChannelReceipt;
    use crate::clock::FakeClock;
    use crate::config::ModuleArgs;
    use crate::flow::testing::*;
    use crate::state::MemoryStateStore;
    use std::cell::RefCell;

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

    /// The last try of a login: `typed`, refused as a code already claimed.
    fn refused_as_reused(typed: &Step) -> [Step; 2] {
        [typed.clone(), Step::Error("That code was already used; wait for the next one. No tries left.")]
    }

    fn tagging_api(verdicts: Vec<Result<TokenVerdict, ApiError>>) -> ScriptedApi {
        ScriptedApi { verdicts: RefCell::new(verdicts.into()), replay_tags: true, ..ScriptedApi::default() }
    }

    #[test]
    fn a_tagged_code_accepted_once_is_refused_to_the_next_login_of_any_service_without_asking_the_api() {
        let config = config("max_tries = 1");
        let args = ModuleArgs::parse::<&str>(&[]).expect("args");
        let store = MemoryStateStore::new();
        let clock = FakeClock::at_unix(1_700_000_000);
        let first = tagging_api(vec![Ok(TokenVerdict::Valid)]);
        let steps = [Step::Prompt("Authy token", "123456")];
        let decision = run_full(&config, &args, &login("alice"), &steps, &first, &store, &clock);
        assert_eq!(decision.outcome, Outcome::Verified(Factor::Token));
        let second = tagging_api(vec![]);
        let refused = refused_as_reused(&steps[0]);
        let decision = run_full(&config, &args, &sudo_login(), &refused, &second, &store, &clock);
        assert_eq!(decision.outcome, Outcome::MaxTries);
        assert!(second.verified.borrow().is_empty(), "a reused code must not reach the API");
        clock.advance(crate::verify::replay::WINDOW + config.api.timeout);
        let later = tagging_api(vec![Ok(TokenVerdict::Valid)]);
        let decision = run_full(&config, &args, &login("alice"), &steps, &later, &store, &clock);
        assert_eq!(decision.outcome, Outcome::Verified(Factor::Token), "the claim ends with the window");
    }

    #[test]
    fn a_tagged_code_the_api_did_not_accept_may_be_typed_again() {
        let config = config("");
        let args = ModuleArgs::parse::<&str>(&[]).expect("args");
        let store = MemoryStateStore::new();
        let clock = FakeClock::at_unix(1_700_000_000);
        let api = tagging_api(vec![Ok(TokenVerdict::Invalid), Ok(TokenVerdict::Valid)]);
        let steps =
            [Step::Prompt("Authy token", "123456"), Step::Error("Wrong"), Step::Prompt("Authy token", "123456")];
        let decision = run_full(&config, &args, &login("alice"), &steps, &api, &store, &clock);
        assert_eq!(decision.outcome, Outcome::Verified(Factor::Token));
        assert_eq!(store.get("alice").used_codes.len(), 1);
    }

    #[test]
    fn a_tagged_code_stays_claimed_for_a_whole_window_after_the_slowest_request_accepted_it() {
        let config = config("max_tries = 1");
        let args = ModuleArgs::parse::<&str>(&[]).expect("args");
        let store = MemoryStateStore::new();
        let clock = std::sync::Arc::new(FakeClock::at_unix(1_700_000_000));
        let first = ScriptedApi {
            verify_takes: Some((clock.clone(), config.api.timeout)),
            ..tagging_api(vec![Ok(TokenVerdict::Valid)])
        };
        let steps = [Step::Prompt("Authy token", "123456")];
        let decision = run_full(&config, &args, &login("alice"), &steps, &first, &store, &clock);
        assert_eq!(decision.outcome, Outcome::Verified(Factor::Token));
        // Accepted as the request ended: its window may last until now + WINDOW.
        clock.advance(crate::verify::replay::WINDOW - std::time::Duration::from_secs(1));
        let replay = tagging_api(vec![Ok(TokenVerdict::Valid)]);
        let refused = refused_as_reused(&steps[0]);
        let decision = run_full(&config, &args, &login("alice"), &refused, &replay, &store, &clock);
        assert_eq!(decision.outcome, Outcome::MaxTries);
        assert!(replay.verified.borrow().is_empty(), "a code still in its window reached the API again");
        clock.advance(std::time::Duration::from_secs(1));
        let decision = run_full(&config, &args, &login("alice"), &steps, &replay, &store, &clock);
        assert_eq!(decision.outcome, Outcome::Verified(Factor::Token), "the claim ends with the window");
    }

    #[test]
    fn a_tagged_code_the_api_may_have_accepted_stays_claimed() {
        let config = config("max_tries = 1");
        let args = ModuleArgs::parse::<&str>(&[]).expect("args");
        let clock = FakeClock::at_unix(1_700_000_000);
        let steps = [Step::Prompt("Authy token", "123456")];
        let unknown_fates = [
            (ApiError::Unreachable("timed out".into()), vec![steps[0].clone(), Step::Prompt("cannot be reached", "")]),
            (ApiError::Protocol("a reply cut short".into()), vec![steps[0].clone()]),
            (ApiError::RateLimited("HTTP 429 error 20429".into()), vec![steps[0].clone(), Step::Error("Too many")]),
        ];
        for (error, said) in unknown_fates {
            let store = MemoryStateStore::new();
            let first = tagging_api(vec![Err(error.clone())]);
            let _ = run_full(&config, &args, &login("alice"), &said, &first, &store, &clock);
            assert_eq!(store.get("alice").used_codes.len(), 1, "{error:?}: claim released");
            let replay = tagging_api(vec![Ok(TokenVerdict::Valid)]);
            let refused = refused_as_reused(&steps[0]);
            let decision = run_full(&config, &args, &login("alice"), &refused, &replay, &store, &clock);
            assert_eq!(decision.outcome, Outcome::MaxTries, "{error:?}");
            assert!(replay.verified.borrow().is_empty(), "{error:?}: the code reached the API again");
        }
    }

    #[test]
    fn a_replay_guard_that_cannot_be_kept_fails_closed_before_the_code_is_sent() {
        let config = config("");
        let args = ModuleArgs::parse::<&str>(&[]).expect("args");
        let api = tagging_api(vec![]);
        let clock = FakeClock::at_unix(1_700_000_000);
        let steps = [Step::Prompt("Authy token", "123456")];
        let decision = run_full(&config, &args, &login("alice"), &steps, &api, &MemoryStateStore::failing(), &clock);
        assert_eq!(decision.outcome, Outcome::ServiceError);
        assert!(decision.reason.starts_with("code_state:"), "{}", decision.reason);
        assert!(api.verified.borrow().is_empty());
    }

    #[test]
    fn a_rate_limit_is_explained_and_ends_the_login_without_another_request() {
        let limited = || ApiError::RateLimited("HTTP 429 error 60202".into());
        let steps = [Step::Prompt("Authy token", "123456"), Step::Error("Too many attempts")];
        let (decision, sent) = run_scripted(&config(""), "alice", &steps, vec![Err(limited())]);
        assert_eq!(decision.outcome, Outcome::Denied);
        assert!(decision.reason.starts_with("api_rate_limited:"), "{}", decision.reason);
        assert_eq!(sent.len(), 1);
        let api = ScriptedApi { channel_replies: RefCell::new(vec![Err(limited())].into()), ..ScriptedApi::default() };
        let steps = [Step::Prompt("Authy token", "sms"), Step::Error("Too many attempts")];
        let decision = run_with(&config(""), &ModuleArgs::parse::<&str>(&[]).expect("args"), "alice", &steps, &api);
        assert_eq!(decision.outcome, Outcome::Denied);
        assert_eq!(api.channels.borrow().len(), 1);
    }

    #[test]
    fn a_code_with_nothing_left_to_check_is_a_failed_try_with_its_own_message() {
        let steps = [
            Step::Prompt("Authy token", "123456"),
            Step::Error("can no longer be checked"),
            Step::Prompt("Authy token", "654321"),
        ];
        let (decision, _) =
            run_scripted(&config(""), "alice", &steps, vec![Ok(TokenVerdict::Expired), Ok(TokenVerdict::Valid)]);
        assert_eq!(decision.outcome, Outcome::Verified(Factor::Token));
        assert_eq!(decision.failed_tries, 1);
    }

    #[test]
    fn wrong_tokens_retry_then_hit_max_tries() {
        let steps = [
            Step::Prompt("Authy token", "1111111"),
            Step::Error("Wrong token"),
            Step::Prompt("Authy token", "2222222"),
            Step::Error("already used"),
            Step::Prompt("Authy token", "3333333"),
            Step::Error("Wrong token. No tries left."),
        ];
        let verdicts = vec![Ok(TokenVerdict::Invalid), Ok(TokenVerdict::Reused), Ok(TokenVerdict::Invalid)];
        let (decision, _) = run_scripted(&config(""), "alice", &steps, verdicts);
        assert_eq!(decision.outcome, Outcome::MaxTries);
        assert_eq!(decision.failed_tries, 3);
    }

    #[test]
    fn malformed_input_is_a_failed_try_that_never_reaches_the_api() {
        let steps = [
            Step::Prompt("Authy token", "../sms"),
            Step::Error("Invalid token"),
            Step::Prompt("Authy token", ""),
            Step::Error("Invalid token"),
            Step::Prompt("Authy token", "123456/42#"),
            Step::Error("Invalid token: type the 6 to 8 digits shown by Authy, or push, sms or call. No tries left."),
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
        let told =
            [Step::Prompt("Authy token", "1234567"), Step::Prompt("Authy cannot be reached; try again later", "")];
        let (secure, _) = run_scripted(&config(""), "alice", &told, vec![unreachable()]);
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
            Step::Prompt("Authy token: ", "sms"),
            Step::Error("No more push, SMS or call requests"),
            Step::Prompt("Authy token: ", "push"),
            Step::Error("No more push, SMS or call requests"),
            Step::PromptFails("Authy token: "),
        ];
        let decision = run_with(&config("failmode = \"safe\""), &args(&[]), "alice", &steps, &api);
        assert_eq!(decision.outcome, Outcome::ConversationError);
        assert_eq!(api.channels.borrow().len(), 3);
        assert_eq!(decision.failed_tries, 2, "each refused word costs a try");
    }

    #[test]
    fn words_typed_after_the_requests_ran_out_cost_a_try_and_are_no_longer_offered() {
        let api = ScriptedApi {
            channel_replies: RefCell::new(vec![Ok(ChannelReceipt { cellphone: None }); 3].into()),
            ..ScriptedApi::default()
        };
        let steps = [
            Step::Prompt("(or type push, sms or call)", "sms"),
            Step::Info("SMS sent"),
            Step::Prompt("(or type push, sms or call)", "sms"),
            Step::Info("SMS sent"),
            Step::Prompt("(or type push, sms or call)", "sms"),
            Step::Info("SMS sent"),
            Step::Prompt("Authy token: ", "push"),
            Step::Error("No more push, SMS or call requests for this login; type a token. No tries left."),
        ];
        let decision = run_with(&config("max_tries = 1"), &args(&[]), "alice", &steps, &api);
        assert_eq!(decision.outcome, Outcome::MaxTries);
        assert_eq!(decision.failed_tries, 1);
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
        let authy = &Wording::AUTHY;
        assert_eq!(code_prompt(authy, ALL_WORDS), TOKEN_PROMPT);
        assert_eq!(
            code_prompt(authy, &[Word::Push, Word::Channel(Channel::Call)]),
            "Authy token (or type push or call): "
        );
        assert_eq!(code_prompt(authy, push_only), "Authy token (or type push): ");
        assert_eq!(code_prompt(authy, &[]), "Authy token: ");
        let verify = &Wording::NEUTRAL;
        let sms_call_push = [Word::Channel(Channel::Sms), Word::Channel(Channel::Call), Word::Push];
        assert_eq!(code_prompt(verify, &sms_call_push), "Verification code (or type sms, call or push): ");
        assert_eq!(code_prompt(verify, &[Word::Push]), "Verification code (or type push): ");
        assert_eq!(code_prompt(verify, &[]), "Verification code: ");
    }
}
