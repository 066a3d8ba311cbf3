//! pam_authy: an Authy second factor for PAM (sshd, sudo, su, login...).
//!
//! Architecture: `pam` is the only file that touches C. It collects the PAM items, adapts
//! the conversation and turns the core's `Outcome` into a PAM code in one match (libpam's
//! structures are in `pam_abi`, which the test harness compiles too). Everything
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
// The one file that talks to C; `unsafe_code` is denied everywhere else (workspace lints).
#[allow(unsafe_code)]
mod pam;
mod pam_abi;
pub mod sanitize;
pub mod secret;
pub mod secure_fs;
pub mod state;
#[cfg(test)]
mod test_support;
pub mod transport;
pub mod users;
pub mod verify;

/// The lib's unit tests run on the scanning allocator, so that tests can prove a secret was
/// wiped before its memory was freed (`pam_harness::scanning::watch`).
#[cfg(test)]
#[global_allocator]
static ALLOCATOR: pam_harness::scanning::Scanning = pam_harness::scanning::Scanning;

#[cfg(test)]
mod tests {
    /// The lint is only as good as its exceptions: no file may lift it except this one (for
    /// `pam`) and the test harness crate.
    #[test]
    fn unsafe_code_is_allowed_only_in_the_ffi_file_and_the_harness() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        let mut dirs: Vec<_> =
            ["src", "tests", "cli", "sandbox", "benches", "harness", "fuzz"].map(|d| root.join(d)).into();
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() && !path.ends_with("target") {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    files.push(path);
                }
            }
        }
        assert!(files.len() > 20, "found only {} source files", files.len());
        let allowed = [root.join("src/lib.rs"), root.join("harness/src/lib.rs")];
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read");
            // Spelled in pieces so that this test does not count itself.
            let lifts: usize = ["allow", "warn", "expect"]
                .iter()
                .flat_map(|level| {
                    ["unsafe_code", "clippy::undocumented_unsafe_blocks", "unsafe_op_in_unsafe_fn"]
                        .map(|lint| format!("{level}({lint})"))
                })
                .map(|lift| text.matches(&lift).count())
                .sum();
            let expected = usize::from(allowed.contains(&file));
            assert_eq!(lifts, expected, "{} lifts the unsafe lints", file.display());
        }
        let cargo = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
        assert!(cargo.contains("unsafe_code = \"deny\"") && cargo.contains("undocumented_unsafe_blocks = \"deny\""));
    }
}
