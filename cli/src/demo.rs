//! `pam-authy demo`: a sandbox, a temporary config and PAM service, and a real PAM
//! conversation through libpam with the built module, for the current user. The sandbox
//! approves a push by itself a few seconds after it is sent, and nothing stays in the
//! temporary directory, even when the demo is interrupted.

use authy_sandbox::{FaultScope, PushScenario, PushStatus, Sandbox, SandboxConfig};
use pam_harness::{Items, Message, Reply};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const SERVICE: &str = "pam_authy_demo";

/// The push status poll interval the demo config sets, and the poll that shows the
/// approval: the sandbox approves about 3 s after the push is sent.
const PUSH_POLL_MS: u64 = 500;
const APPROVING_POLL: u32 = 6;

/// Where a built or installed module is looked for, in order.
pub fn find_module(explicit: Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(path) = explicit {
        return path.canonicalize().map_err(|e| format!("{}: {e}", path.display()));
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.join("libpam_authy.so"));
    }
    for dir in ["/usr/lib/x86_64-linux-gnu/security", "/lib/x86_64-linux-gnu/security", "/usr/lib64/security"] {
        candidates.push(Path::new(dir).join("pam_authy.so"));
    }
    candidates
        .into_iter()
        .find(|p| p.exists())
        .ok_or_else(|| "pam_authy.so not found: run `cargo build` or pass --module PATH".to_owned())
}

/// Creates `path` exclusively (never through a planted link) with `mode` and writes `text`.
fn write_private(path: &Path, text: &str, mode: u32) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path).map_err(fail)?;
    file.set_permissions(std::fs::Permissions::from_mode(mode)).map_err(fail)?;
    file.write_all(text.as_bytes()).map_err(fail)
}

fn current_user() -> Result<String, String> {
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .ok_or_else(|| "the current user has no passwd entry".to_owned())
}

pub fn run(auto: bool, module: Option<PathBuf>) -> Result<(), String> {
    if !pam_harness::confdir_supported() {
        return Err(pam_harness::NO_CONFDIR.to_owned());
    }
    let module = find_module(module)?;
    let user = current_user()?;
    let api_key = sandbox_api_key(getrandom::fill)?;
    let sandbox = Sandbox::start(SandboxConfig { api_key: api_key.clone(), ..SandboxConfig::default() })
        .map_err(|e| format!("cannot start the sandbox: {e}"))?;
    let authy_id = sandbox.add_user("demo@example.org", "555-010-0100", 1);
    sandbox.set_push_scenario(
        FaultScope::User(authy_id),
        PushScenario::AfterPolls { status: PushStatus::Approved, polls: APPROVING_POLL },
    );

    let dir = tempfile::Builder::new().prefix("pam_authy_demo.").tempdir().map_err(|e| e.to_string())?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())?;
    let confdir = dir.path().join("pam.d");
    let ca = dir.path().join("ca.pem");
    let config = dir.path().join("pam_authy.toml");
    let stack_file = confdir.join(SERVICE);
    pam_harness::terminal::remove_on_signals(&[
        stack_file.clone(),
        confdir.clone(),
        ca.clone(),
        config.clone(),
        dir.path().to_path_buf(),
    ]);
    std::fs::create_dir(&confdir).map_err(|e| e.to_string())?;
    write_private(&ca, &sandbox.ca_pem(), 0o644)?;
    let text = format!(
        "# Written by `pam-authy demo`.\n[api]\nurl = \"{url}\"\napi_key = \"{api_key}\"\nca_file = \"{ca}\"\n\n\
         [auth]\npush_timeout_secs = 30\npush_poll_ms = {PUSH_POLL_MS}\n\n[users]\n\"{user}\" = {authy_id}\n",
        url = sandbox.url(),
        ca = ca.display(),
    );
    write_private(&config, &text, 0o600)?;
    let stack =
        format!("auth required {} config={}\naccount required pam_permit.so\n", module.display(), config.display());
    write_private(&stack_file, &stack, 0o644)?;

    println!("pam_authy demo");
    println!("  sandbox Authy API : {}", sandbox.url());
    println!("  module            : {}", module.display());
    println!("  config            : {}", config.display());
    println!("  PAM user          : {user} -> Authy ID {authy_id}");
    println!("  push              : type push at the prompt; the sandbox approves it about 3 s later");
    println!();

    let items = Items { rhost: Some("127.0.0.1".into()), tty: Some("demo".into()), ruser: None };
    let mut responder = |message: &Message| -> Reply {
        if message.style.is_prompt() {
            let token = sandbox.current_token(authy_id).unwrap_or_default();
            if auto {
                println!("{}{token}   (answered automatically)", message.text);
                return Reply::Text(token);
            }
            eprintln!("(sandbox) the Authy app of {user} shows: {token}");
        } else if auto {
            println!("{}", message.text);
            return Reply::text("");
        }
        pam_harness::terminal_responder(message)
    };
    let result = pam_harness::authenticate(Some(&confdir), SERVICE, &user, &items, &mut responder)?;
    println!();
    println!("PAM result: {} ({})", result.name(), result.code);
    if result.code == pam_harness::PAM_SUCCESS {
        Ok(())
    } else {
        Err(format!("authentication ended with {}", result.name()))
    }
}

/// A random key for the demo's sandbox, or an error when the random source fails: a key of
/// zeros would let anyone on the host use the sandbox.
fn sandbox_api_key<E: std::fmt::Display>(fill: impl FnOnce(&mut [u8]) -> Result<(), E>) -> Result<String, String> {
    let mut key_bytes = [0u8; 16];
    fill(&mut key_bytes).map_err(|e| format!("no random source for the sandbox's API key: {e}"))?;
    Ok(key_bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_random_source_is_an_error_never_a_fixed_key() {
        let failed = sandbox_api_key(|_: &mut [u8]| Err("no entropy"));
        assert!(failed.is_err(), "{failed:?}");
        let key = sandbox_api_key(|b: &mut [u8]| {
            b.fill(0xab);
            Ok::<(), String>(())
        })
        .expect("key");
        assert_eq!(key, "ab".repeat(16));
    }
}
