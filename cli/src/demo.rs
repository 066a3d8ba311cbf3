//! `pam-authy demo`: a sandbox (speaking the Authy API, or Verify with `--backend verify`),
//! a temporary config and PAM service, and a real PAM conversation through libpam with the
//! built module, for the current user. The sandbox
//! approves a push by itself a few seconds after it is sent, and nothing stays in the
//! temporary directory, even when the demo is interrupted.

use authy_sandbox::{FaultScope, PushScenario, PushStatus, Sandbox, SandboxConfig, TotpFactorSpec};
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

/// Which API the demo's sandbox speaks and the module is configured for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoBackend {
    Authy,
    Verify,
}

/// The demo user's factors in the sandbox.
enum DemoUser {
    Authy { authy_id: u64 },
    Verify { identity: String, totp_factor: String, push_factor: String },
}

/// The Verify demo user's phone: a fictional number (555-01xx is reserved for fiction).
const VERIFY_DEMO_PHONE: &str = "+15550100100";

impl DemoUser {
    /// The code to type now and what shows it: the SMS or call this login asked for, when
    /// one was sent since `seen_sends`, else the app's current code.
    fn code(&self, sandbox: &Sandbox, seen_sends: &mut usize) -> (String, &'static str) {
        match self {
            DemoUser::Authy { authy_id } => (sandbox.current_token(*authy_id).unwrap_or_default(), "the Authy app"),
            DemoUser::Verify { totp_factor, .. } => {
                let sent = sandbox.verify_sent_codes();
                if sent.len() > *seen_sends {
                    *seen_sends = sent.len();
                    if let Some(last) = sent.last() {
                        let source = if last.channel == "call" { "the phone call" } else { "the SMS" };
                        return (last.code.clone(), source);
                    }
                }
                (sandbox.verify_current_code(totp_factor).unwrap_or_default(), "the authenticator app")
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            DemoUser::Authy { authy_id } => format!("Authy ID {authy_id}"),
            DemoUser::Verify { identity, .. } => format!("Verify identity {identity} (TOTP, sms/call, push)"),
        }
    }
}

/// Creates the demo user in the sandbox; its push is approved a few seconds after it is sent.
fn demo_user(sandbox: &Sandbox, backend: DemoBackend) -> Result<DemoUser, String> {
    let approving = PushScenario::AfterPolls { status: PushStatus::Approved, polls: APPROVING_POLL };
    match backend {
        DemoBackend::Authy => {
            let authy_id = sandbox.add_user("demo@example.org", "555-010-0100", 1);
            sandbox.set_push_scenario(FaultScope::User(authy_id), approving);
            Ok(DemoUser::Authy { authy_id })
        }
        DemoBackend::Verify => {
            let service = sandbox.verify_account().service_sid;
            let identity = random_hex(getrandom::fill)?;
            let spec = TotpFactorSpec { friendly_name: "pam_authy demo".into(), ..TotpFactorSpec::default() };
            let totp = sandbox.verify_add_totp_factor(&service, &identity, &spec);
            let push = sandbox.verify_add_push_factor(&service, &identity);
            let (Some(totp), Some(push)) = (totp, push) else {
                return Err("the sandbox could not create the demo's Verify factors".to_owned());
            };
            sandbox.set_push_scenario(FaultScope::Verify, approving);
            Ok(DemoUser::Verify { identity, totp_factor: totp.sid, push_factor: push.sid })
        }
    }
}

/// The demo's config file: the sandbox as the API, trusted through `ca`, and the replay state
/// in `state_dir` (the demo's own directory: the host's belongs to the installed module).
fn config_text(sandbox: &Sandbox, demo_user: &DemoUser, user: &str, ca: &Path, state_dir: &Path) -> String {
    let auth = format!(
        "[auth]\npush_timeout_secs = 30\npush_poll_ms = {PUSH_POLL_MS}\n\n[offline]\nstate_dir = \"{}\"\n",
        state_dir.display()
    );
    let (url, ca) = (sandbox.url(), ca.display());
    match demo_user {
        DemoUser::Authy { authy_id } => format!(
            "# Written by `pam-authy demo`.\n[api]\nurl = \"{url}\"\napi_key = \"{key}\"\nca_file = \"{ca}\"\n\n\
             {auth}\n[users]\n\"{user}\" = {authy_id}\n",
            key = sandbox.api_key(),
        ),
        DemoUser::Verify { identity, totp_factor, push_factor } => {
            let account = sandbox.verify_account();
            format!(
                "# Written by `pam-authy demo`.\n[api]\nbackend = \"verify\"\nurl = \"{url}\"\nca_file = \"{ca}\"\n\n\
                 [verify]\nservice_sid = \"{service}\"\napi_key_sid = \"{key_sid}\"\napi_key_secret = \"{secret}\"\n\n\
                 {auth}\n[users]\n\"{user}\" = {{ verify_identity = \"{identity}\", totp_factor = \"{totp_factor}\", \
                 phone = \"{VERIFY_DEMO_PHONE}\", push_factor = \"{push_factor}\" }}\n",
                service = account.service_sid,
                key_sid = account.api_key_sid,
                secret = account.api_key_secret,
            )
        }
    }
}

pub fn run(auto: bool, module: Option<PathBuf>, backend: DemoBackend) -> Result<(), String> {
    if !pam_harness::confdir_supported() {
        return Err(pam_harness::NO_CONFDIR.to_owned());
    }
    let module = find_module(module)?;
    let user = current_user()?;
    let mut verify = authy_sandbox::default_verify_account();
    // The documented default credentials would let anyone on the host use this sandbox.
    verify.auth_token = random_hex(getrandom::fill)?;
    verify.api_key_secret = random_hex(getrandom::fill)?;
    let config = SandboxConfig { api_key: random_hex(getrandom::fill)?, verify, ..SandboxConfig::default() };
    let sandbox = Sandbox::start(config).map_err(|e| format!("cannot start the sandbox: {e}"))?;
    let demo_user = demo_user(&sandbox, backend)?;

    let dir = tempfile::Builder::new().prefix("pam_authy_demo.").tempdir().map_err(|e| e.to_string())?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())?;
    let confdir = dir.path().join("pam.d");
    let ca = dir.path().join("ca.pem");
    let config = dir.path().join("pam_authy.toml");
    let state_dir = dir.path().join("state");
    let stack_file = confdir.join(SERVICE);
    let state_stem = pam_authy::state::file_stem(&user).map_err(|e| e.to_string())?;
    pam_harness::terminal::remove_on_signals(&[
        stack_file.clone(),
        confdir.clone(),
        ca.clone(),
        config.clone(),
        state_dir.join(format!("{state_stem}.json")),
        state_dir.join(format!("{state_stem}.lock")),
        state_dir.clone(),
        dir.path().to_path_buf(),
    ]);
    std::fs::create_dir(&confdir).map_err(|e| e.to_string())?;
    write_private(&ca, &sandbox.ca_pem(), 0o644)?;
    write_private(&config, &config_text(&sandbox, &demo_user, &user, &ca, &state_dir), 0o600)?;
    let stack =
        format!("auth required {} config={}\naccount required pam_permit.so\n", module.display(), config.display());
    write_private(&stack_file, &stack, 0o644)?;

    let api = match backend {
        DemoBackend::Authy => "Authy API",
        DemoBackend::Verify => "Verify API",
    };
    println!("pam_authy demo");
    println!("  sandbox {api:<10}: {}", sandbox.url());
    println!("  module            : {}", module.display());
    println!("  config            : {}", config.display());
    println!("  PAM user          : {user} -> {}", demo_user.describe());
    println!("  push              : type push at the prompt; the sandbox approves it about 3 s later");
    println!();

    let items = Items { rhost: Some("127.0.0.1".into()), tty: Some("demo".into()), ruser: None };
    let mut seen_sends = 0;
    let mut responder = |message: &Message| -> Reply {
        if message.style.is_prompt() {
            let (code, source) = demo_user.code(&sandbox, &mut seen_sends);
            if auto {
                println!("{}{code}   (answered automatically)", message.text);
                return Reply::Text(code);
            }
            eprintln!("(sandbox) {source} of {user} shows: {code}");
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

/// A random key or identity for the demo's sandbox, or an error when the random source
/// fails: a key of zeros would let anyone on the host use the sandbox.
fn random_hex<E: std::fmt::Display>(fill: impl FnOnce(&mut [u8]) -> Result<(), E>) -> Result<String, String> {
    let mut key_bytes = [0u8; 16];
    fill(&mut key_bytes).map_err(|e| format!("no random source for the sandbox's API key: {e}"))?;
    Ok(key_bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_random_source_is_an_error_never_a_fixed_key() {
        let failed = random_hex(|_: &mut [u8]| Err("no entropy"));
        assert!(failed.is_err(), "{failed:?}");
        let key = random_hex(|b: &mut [u8]| {
            b.fill(0xab);
            Ok::<(), String>(())
        })
        .expect("key");
        assert_eq!(key, "ab".repeat(16));
    }
}
