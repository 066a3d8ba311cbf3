//! One-prompt mode (`password_and_code=N`), for applications that ask a single question
//! (OpenVPN's PAM plugin, RADIUS servers, some web portals): the one answer is the user's
//! password followed by an N-digit code.
//!
//! `OnePrompt` stands between the flow and the application. The flow's first prompt asks the
//! application once, for both; the code goes to the flow, the password is kept for the next
//! module (`pam` sets PAM_AUTHTOK; that module must take it with `use_first_pass`). Every
//! later prompt is answered empty without asking anyone, which the flow counts as a failed
//! try, and the mode allows one try only, at the prompt (no push, no words). An answer that
//! is not a non-empty password followed by exactly N ASCII digits gives the flow an empty
//! code (a failed try that never reaches the network) and keeps no password.

use super::{ConvError, Conversation};
use crate::config::{Config, Method, ModuleArgs};
use crate::secret::Secret;

/// The one question of one-prompt mode.
pub const PASSWORD_AND_CODE_PROMPT: &str = "Password and code: ";
/// Asked instead when the login needed no code (an exempt user, a grace period), so that the
/// next module still gets the password.
pub const PASSWORD_PROMPT: &str = "Password: ";

/// The conversation of one-prompt mode; a plain pass-through when the mode is off.
pub struct OnePrompt<'c> {
    inner: &'c mut dyn Conversation,
    digits: Option<usize>,
    asked: bool,
    password: Option<Secret>,
}

impl<'c> OnePrompt<'c> {
    /// `digits`: the code's length in one-prompt mode (`password_and_code`), None when off.
    pub fn new(inner: &'c mut dyn Conversation, digits: Option<usize>) -> Self {
        OnePrompt { inner, digits, asked: false, password: None }
    }

    /// The password for the next module once the flow is done: split off the one answer, or,
    /// when the login went on without asking (`goes_on` and nothing asked yet), asked for
    /// alone. None when the mode is off, the answer was malformed, or the login failed
    /// before anything was asked.
    pub fn password_for_next_module(&mut self, goes_on: bool) -> Result<Option<Secret>, ConvError> {
        if self.digits.is_none() {
            return Ok(None);
        }
        if !self.asked && goes_on {
            self.asked = true;
            return self.inner.prompt(PASSWORD_PROMPT, false).map(Some);
        }
        Ok(self.password.take())
    }
}

/// The config and arguments the flow runs with in one-prompt mode: one try, at the prompt.
pub fn one_try_at_the_prompt(config: &Config, args: &ModuleArgs) -> Option<(Config, ModuleArgs)> {
    args.password_and_code?;
    let mut config = config.clone();
    config.auth.max_tries = 1;
    config.auth.method = Method::Prompt;
    Some((config, ModuleArgs { method: Some(Method::Prompt), ..args.clone() }))
}

/// `password` + `code` when `answer` is a non-empty password followed by exactly `digits`
/// ASCII digits.
pub fn split_password_and_code(answer: &str, digits: usize) -> Option<(&str, &str)> {
    let cut = answer.len().checked_sub(digits).filter(|cut| *cut > 0 && answer.is_char_boundary(*cut))?;
    let (password, code) = answer.split_at(cut);
    code.bytes().all(|b| b.is_ascii_digit()).then_some((password, code))
}

impl Conversation for OnePrompt<'_> {
    fn prompt(&mut self, text: &str, echo: bool) -> Result<Secret, ConvError> {
        let Some(digits) = self.digits else { return self.inner.prompt(text, echo) };
        if self.asked {
            return Ok(Secret::default());
        }
        self.asked = true;
        let answer = self.inner.prompt(PASSWORD_AND_CODE_PROMPT, false)?;
        match split_password_and_code(answer.expose(), digits) {
            Some((password, code)) => {
                self.password = Some(Secret::from(password));
                Ok(Secret::from(code))
            }
            None => Ok(Secret::default()),
        }
    }

    fn info(&mut self, text: &str) -> Result<(), ConvError> {
        self.inner.info(text)
    }

    fn error(&mut self, text: &str) -> Result<(), ConvError> {
        self.inner.error(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::testing::{ScriptedConversation, Step};

    #[test]
    fn the_code_is_split_off_the_end_and_anything_else_is_refused() {
        assert_eq!(split_password_and_code("s3cret pw1234567", 7), Some(("s3cret pw", "1234567")));
        assert_eq!(split_password_and_code("pw99123456", 6), Some(("pw99", "123456")));
        for malformed in ["1234567", "123456", "", "pw123456", "pw12345a7", "pw1234567\n", "pwé234567", "pw１234567"]
        {
            assert_eq!(split_password_and_code(malformed, 7), None, "{malformed:?}");
        }
    }

    #[test]
    fn one_question_is_asked_and_later_prompts_get_an_empty_answer() {
        let args = ModuleArgs::parse(&["password_and_code=6"]).expect("args");
        let mut scripted = ScriptedConversation::new(&[Step::Prompt("Password and code", "pw654321")]);
        let mut one = OnePrompt::new(&mut scripted, args.password_and_code);
        assert_eq!(one.prompt("Authy token: ", false).expect("code").expose(), "654321");
        assert_eq!(one.prompt("Authy token: ", false).expect("empty").expose(), "");
        assert_eq!(one.password_for_next_module(true).expect("conv").map(|p| p.expose().to_owned()), Some("pw".into()));
        scripted.assert_drained();

        let mut scripted = ScriptedConversation::new(&[Step::Prompt("Password and code", "123456")]);
        let mut one = OnePrompt::new(&mut scripted, args.password_and_code);
        assert_eq!(one.prompt("Authy token: ", false).expect("empty").expose(), "");
        assert!(one.password_for_next_module(true).expect("conv").is_none(), "no password from a malformed answer");
    }

    #[test]
    fn a_login_that_needs_no_code_still_asks_for_the_password_and_a_failed_one_does_not() {
        let args = ModuleArgs::parse(&["password_and_code=6"]).expect("args");
        let mut scripted = ScriptedConversation::new(&[Step::Prompt("Password: ", "pw")]);
        let mut one = OnePrompt::new(&mut scripted, args.password_and_code);
        assert_eq!(one.password_for_next_module(true).expect("conv").map(|p| p.expose().to_owned()), Some("pw".into()));
        scripted.assert_drained();
        let mut scripted = ScriptedConversation::new(&[]);
        assert!(
            OnePrompt::new(&mut scripted, args.password_and_code)
                .password_for_next_module(false)
                .expect("conv")
                .is_none()
        );
        let plain = ModuleArgs::parse::<&str>(&[]).expect("args");
        assert!(
            OnePrompt::new(&mut scripted, plain.password_and_code)
                .password_for_next_module(true)
                .expect("conv")
                .is_none()
        );
    }
}
