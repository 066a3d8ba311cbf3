//! Syslog (facility authpriv, ident `pam_authy`): one line per decision, `key=value` fields
//! with the service name in each, values sanitised and quoted by `sanitize::log_value`.
//!
//! The syslog crate talks to /dev/log over its own socket; it never calls openlog(3), so
//! the host's (sshd's, sudo's) own syslog identity is left alone. A logger is made per call
//! and dropped at once. Failing to log never changes a PAM result. Callers never pass a
//! token, key or seed: fields are user, service, rhost, tty, outcome and reasons.

use crate::sanitize::log_value;
#[cfg(any(test, feature = "test-support"))]
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Err,
    Warning,
    Notice,
    Info,
    Debug,
}

/// Where log lines go.
pub trait Log {
    fn log(&self, level: Level, line: &str);
}

/// Formats `fields` as one `key=value` line.
pub fn format_fields(fields: &[(&str, &str)]) -> String {
    let mut line = String::new();
    for (key, value) in fields {
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(key);
        line.push('=');
        line.push_str(&log_value(value));
    }
    line
}

/// The real syslog; `debug` lines are dropped unless the `debug` module argument is set.
pub struct Syslog {
    pub debug: bool,
}

impl Log for Syslog {
    fn log(&self, level: Level, line: &str) {
        if level == Level::Debug && !self.debug {
            return;
        }
        let formatter = syslog::Formatter3164 {
            facility: syslog::Facility::LOG_AUTHPRIV,
            hostname: None,
            process: "pam_authy".into(),
            pid: std::process::id(),
        };
        if let Ok(mut logger) = syslog::unix(formatter) {
            let line = line.to_owned();
            let _ = match level {
                Level::Err => logger.err(line),
                Level::Warning => logger.warning(line),
                Level::Notice => logger.notice(line),
                Level::Info => logger.info(line),
                Level::Debug => logger.debug(line),
            };
        }
    }
}

/// Keeps lines in memory. Tests and `test-support` only.
#[cfg(any(test, feature = "test-support"))]
#[derive(Default)]
pub struct MemoryLog {
    pub lines: Mutex<Vec<(Level, String)>>,
}

#[cfg(any(test, feature = "test-support"))]
impl MemoryLog {
    pub fn lines(&self) -> Vec<(Level, String)> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn text(&self) -> String {
        self.lines().into_iter().map(|(_, l)| l + "\n").collect()
    }
}

#[cfg(any(test, feature = "test-support"))]
impl Log for MemoryLog {
    fn log(&self, level: Level, line: &str) {
        if let Ok(mut lines) = self.lines.lock() {
            lines.push((level, line.to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_joined_and_hostile_values_quoted() {
        let line = format_fields(&[("service", "sshd"), ("user", "bob outcome=success"), ("rhost", "")]);
        assert_eq!(line, "service=sshd user=\"bob outcome=success\" rhost=\"\"");
    }
}
