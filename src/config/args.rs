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
    /// The arguments a pam.d line may carry (a trailing `=` takes a value); `parse` refuses
    /// any other before it looks at one, so this list is exactly what the parser takes.
    pub const ARGUMENTS: [&str; 4] = ["debug", "config=", "method=", "password_and_code="];

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
            let unknown = || {
                ConfigError::new(
                    here,
                    format!(
                        "argument {} is unknown (expected debug, config=PATH, method=... or password_and_code=N)",
                        position + 1
                    ),
                )
            };
            let name = arg.find('=').map_or(arg, |at| &arg[..=at]);
            if !Self::ARGUMENTS.contains(&name) {
                return Err(unknown());
            }
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
                _ => return Err(unknown()),
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

    #[test]
    fn every_listed_argument_and_method_is_taken() {
        for argument in ModuleArgs::ARGUMENTS {
            let arg = match argument {
                "config=" => "config=/etc/x.toml".to_owned(),
                "method=" => "method=push".to_owned(),
                "password_and_code=" => "password_and_code=6".to_owned(),
                plain => plain.to_owned(),
            };
            assert!(ModuleArgs::parse(&[arg.as_str()]).is_ok(), "{arg}");
            assert!(ModuleArgs::parse(&[format!("{argument}x")]).is_err(), "{argument}x");
        }
        for word in crate::config::keys::words_of::<Method>() {
            assert_eq!(Method::parse(word).map(|m| format!("{m:?}").to_lowercase()), Some(word.to_string()));
            assert!(ModuleArgs::parse(&[format!("method={word}")]).is_ok(), "method={word}");
        }
    }
}
