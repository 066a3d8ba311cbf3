//! The token prompt: what it says (the words the backend offers), what the user may type
//! (a token or one of those words), and what each answer does: verify a token, send a code
//! by SMS or call within the bounded number of requests, or start a push.
//!
//! Only a token the backend calls valid succeeds here; a wrong, reused or malformed one is
//! a failed try. An unreachable API hands over to the offline fallback when the user has
//! one, and otherwise ends in the outcome `api_failure` gives.

use super::{ConvError, Decision, Factor, Outcome, Session};
use crate::backend::{ApiError, Channel, Token, TokenVerdict, Word};
use crate::log::Level;
use crate::secret::Secret;
use std::ops::ControlFlow;

/// The token prompt of a backend that offers push, sms and call (Authy); `token_prompt`
/// builds it from the words the backend offers.
pub const TOKEN_PROMPT: &str = "Authy token (or type push, sms or call): ";
/// Channel requests (push, sms, call) one authentication may make.
pub const MAX_CHANNEL_REQUESTS: u32 = 3;
/// What the user reads when the login ends because the API cannot be reached and there is
/// no offline code to fall back on; under sshd it is a prompt (`api_failed_and_said`).
pub const UNREACHABLE_MESSAGE: &str = "Authy cannot be reached; try again later.";
pub const UNREACHABLE_PROMPT: &str = "Authy cannot be reached; try again later (press Enter): ";

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
    pub(super) fn prompt_loop(&mut self) -> Decision {
        while self.tries_left() {
            let prompt = token_prompt(self.backend.words());
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
        match parse_answer(text.expose(), self.backend.words()) {
            Answer::Invalid => {
                let words = alternatives(self.backend.words(), Word::as_str);
                let complaint = if words.is_empty() {
                    "Invalid token: type the 6 to 8 digits shown by Authy.".to_owned()
                } else {
                    format!("Invalid token: type the 6 to 8 digits shown by Authy, or {words}.")
                };
                self.failed_try(&complaint)
            }
            Answer::Channel(channel) => self.request_channel(channel),
            Answer::Push => self.push_step(),
            Answer::Token(token) => self.verify(&token),
        }
    }

    fn verify(&mut self, token: &Token) -> ControlFlow<Decision> {
        match self.backend.verify_code(token) {
            Ok(TokenVerdict::Valid) => {
                ControlFlow::Break(self.decision(Outcome::Verified(Factor::Token), "token_valid"))
            }
            Ok(TokenVerdict::Reused) => self.failed_try("That token was already used; wait for the next one."),
            Ok(TokenVerdict::Invalid) => self.failed_try("Wrong token."),
            Err(ApiError::Unreachable(why)) if self.offline_secret.is_some() => {
                self.log(Level::Warning, "api_unreachable_offline_fallback", &why);
                ControlFlow::Break(self.offline())
            }
            Err(error) => ControlFlow::Break(self.api_failed_and_said(&error)),
        }
    }

    /// Takes one of the bounded channel requests (`Continue(true)`), or says there are none
    /// left (`Continue(false)`).
    pub(super) fn take_channel_request(&mut self) -> ControlFlow<Decision, bool> {
        if self.channel_requests >= MAX_CHANNEL_REQUESTS {
            let requests = alternatives(self.backend.words(), |word| match word {
                Word::Push => "push",
                Word::Channel(Channel::Sms) => "SMS",
                Word::Channel(Channel::Call) => "call",
            });
            let complaint = format!("No more {requests} requests for this login; type a token.");
            let sent = self.deps.conversation.error(&complaint);
            self.shown(sent)?;
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
            Err(error) if self.setup_broken(&error) => return ControlFlow::Break(self.api_failed(&error)),
            Err(error) => {
                self.log(Level::Notice, "channel_failed", &format!("{channel}: {error}"));
                format!("{what} could not be sent; type a token from the Authy app instead.")
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
    use crate::flow::testing::*;
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
}
