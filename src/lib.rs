//! pam_authy: an Authy second factor for PAM (sshd, sudo, su, login...).
//!
//! Architecture: `pam` is the only file that touches C. It collects the PAM items, adapts
//! the conversation and turns the core's `Outcome` into a PAM code in one match. Everything
//! that decides is plain Rust that tests drive with doubles:
//!
//! - `config`: the TOML file and module arguments -> one validated `Config` (fails closed).
//! - `secure_fs`: StrictModes-style, race-free opening of root-owned files.
//! - `users`: PAM user -> canonical account -> Authy ID, groups, unmapped-user policy.
//! - `backend`: the second-factor service as the flow sees it (verify a code, send one, start
//!   and poll an approval), bound to one user; `ApiError`, the same for every backend.
//! - `transport`: the HTTPS client every backend sits on (trust, proxy, timeouts, body cap).
//! - `authy`: the Authy backend: its client and strict reply parser.
//! - `verify`: the Twilio Verify API: validated SIDs and identities, request forms, strict replies.
//! - `flow`: the authentication state machine over Conversation, Backend and Clock;
//!   `flow::outcome` maps every API failure to an outcome in one function.
//! - `log`: one syslog line (authpriv) per decision, never a secret.
//! - `secret`, `sanitize`: zeroed, redacted secrets; escape-free untrusted text.
//!
//! The admin CLI (`cli/`) and the sandbox (`sandbox/`) reuse these types, so what
//! `pam-authy check` reports is what the module will do.

pub mod authy;
pub mod backend;
pub mod clock;
pub mod config;
pub mod context;
pub mod flow;
pub mod log;
pub mod offline;
mod pam;
pub mod sanitize;
pub mod secret;
pub mod secure_fs;
pub mod state;
#[cfg(test)]
mod test_support;
pub mod transport;
pub mod users;
pub mod verify;
