//! The module arguments of the pam.d line (`config=`, `debug`, `method=`): strict, so a typo
//! never silently changes what the stack does.

use super::DEFAULT_CONFIG_PATH;
use super::auth::Method;
use super::error::ConfigError;
use std::path::{Path, PathBuf};

/// The module arguments from the pam.d line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleArgs {
    pub config_path: PathBuf,
    pub debug: bool,
    pub method: Option<Method>,
    /// One-prompt mode (`password_and_code=N`): the one answer is the password followed by
    /// an N-digit code; the password goes on to the next module as PAM_AUTHTOK.
    pub password_and_code: Option<usize>,
}

impl ModuleArgs {
    /// Unknown or malformed arguments are configuration errors, so a typo never silently
    /// changes what the stack does.
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<ModuleArgs, ConfigError> {
        let mut parsed = ModuleArgs {
            config_path: PathBuf::from(DEFAULT_CONFIG_PATH),
            debug: false,
            method: None,
            password_and_code: None,
        };
        let here = Path::new("module arguments");
        for (position, arg) in args.iter().enumerate() {
            let arg = arg.as_ref();
            match arg.split_once('=') {
                None if arg == "debug" => parsed.debug = true,
                Some(("config", value)) if Path::new(value).is_absolute() => parsed.config_path = PathBuf::from(value),
                Some(("config", _)) => {
                    return Err(ConfigError::new(here, "config= needs an absolute path"));
                }
                Some(("method", value)) => {
                    parsed.method = Some(
                        Method::parse(value)
                            .ok_or_else(|| ConfigError::new(here, "method= takes prompt, push, sms or call"))?,
                    );
                }
                Some(("password_and_code", digits)) => {
                    let digits = digits.parse().ok().filter(|digits| (6..=8).contains(digits));
                    parsed.password_and_code = Some(digits.ok_or_else(|| {
                        ConfigError::new(here, "password_and_code= takes the code's length, 6, 7 or 8")
                    })?);
                }
                _ => {
                    return Err(ConfigError::new(
                        here,
                        format!(
                            "argument {} is unknown (expected debug, config=PATH, method=... or password_and_code=N)",
                            position + 1
                        ),
                    ));
                }
            }
        }
        if parsed.password_and_code.is_some() && parsed.method.is_some() {
            return Err(ConfigError::new(here, "password_and_code= asks one question for a code: it takes no method="));
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_arguments_are_strict() {
        let args = ModuleArgs::parse(&["config=/tmp/x.toml", "debug", "method=push"]).expect("args");
        assert_eq!(args.config_path, PathBuf::from("/tmp/x.toml"));
        assert!(args.debug);
        assert_eq!(args.method, Some(Method::Push));
        assert_eq!(ModuleArgs::parse::<&str>(&[]).expect("none").config_path, PathBuf::from(DEFAULT_CONFIG_PATH));
        assert_eq!(ModuleArgs::parse(&["password_and_code=7"]).expect("args").password_and_code, Some(7));
        for bad in [
            "config=relative.toml",
            "method=carrier-pigeon",
            "nodebug",
            "failmode=safe",
            "password_and_code",
            "password_and_code=5",
            "password_and_code=9",
            "password_and_code=seven",
        ] {
            assert!(ModuleArgs::parse(&[bad]).is_err(), "{bad}");
        }
    }
}
