//! Class 9 (second half) of the adversarial suite: secrets are zeroed after use.
//!
//! This test binary runs on the harness's scanning allocator (`pam_harness::scanning`): a
//! secret that was dropped without being wiped, or copied into a buffer that was, leaves its
//! marker in freed memory and `watch` counts it. Each test uses its own markers. The test's
//! own copies of the markers are built without reallocation and wiped by `Zeroizing`.
//!
//! This covers the Rust core that the module links (secret, token, config, offline, flow);
//! the module's own conversation buffers are wiped in `pam.rs::take_response` before `free`.

use pam_authy::backend::{
    ApiError, ApprovalId, ApprovalRequest, ApprovalStatus, Backend, Channel, ChannelReceipt, Token, TokenVerdict, Word,
};
use pam_authy::clock::Clock;
use pam_authy::config::{Config, ModuleArgs, UserEntry};
use pam_authy::flow::{self, ConvError, Conversation, Deps, Login, Outcome};
use pam_authy::log::MemoryLog;
use pam_authy::offline::{OfflineParams, code_at, matching_step};
use pam_authy::secret::Secret;
use pam_authy::state::{MemoryStateStore, StateStore};
use pam_authy::users::FakeAccounts;
use pam_harness::scanning::{Scanning, watch};
use std::path::Path;
use std::time::Duration;
use zeroize::Zeroizing;

#[global_allocator]
static ALLOCATOR: Scanning = Scanning;

/// `parts` joined in a buffer allocated once at its final size and wiped on drop.
fn joined(parts: &[&str]) -> Zeroizing<String> {
    let mut text = Zeroizing::new(String::with_capacity(parts.iter().map(|p| p.len()).sum()));
    for part in parts {
        text.push_str(part);
    }
    text
}

#[test]
fn secrets_and_tokens_are_wiped_when_dropped() {
    let hits = watch(&["SECRET-7c1e5a90d3", "90817263"], || {
        let secret = Secret::from("SECRET-7c1e5a90d3");
        let copy = secret.clone();
        drop(secret);
        drop(copy);
        let token = Token::parse(" 90817263 ").expect("token");
        let cloned = token.clone();
        drop(token);
        drop(cloned);
    });
    assert_eq!(hits, [0, 0], "secret or token left in freed memory");
}

#[test]
fn the_api_key_and_the_offline_seed_are_wiped_with_the_config() {
    let (key, seed, canonical) = ("APIKEY-f00dfeed2c9b", "qzer oize dsee dxqa", "QZEROIZEDSEEDXQA");
    let hits = watch(&[key, seed, canonical], || {
        let text = joined(&[
            "[api]\napi_key = \"",
            key,
            "\"\n[users]\nalice = { authy_id = 1, offline_secret = \"",
            seed,
            "\" }\n",
        ]);
        let config = Config::parse(Path::new("/etc/pam_authy/pam_authy.toml"), &text).expect("config");
        assert_eq!(config.user("alice").and_then(|u| u.offline_secret.as_ref()).map(Secret::expose), Some(canonical));
        drop(config);
    });
    assert_eq!(hits, [0, 0, 0], "API key, pasted seed or canonical seed left in freed memory");
}

#[test]
fn keys_and_seeds_read_from_files_are_wiped() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).expect("chmod");
    let key_path = dir.path().join("api_key");
    let config_path = dir.path().join("pam_authy.toml");
    let key = "FILEKEY-3e8b6d01a7";
    {
        let mut file = std::fs::File::create(&key_path).expect("key");
        std::io::Write::write_all(&mut file, key.as_bytes()).expect("write");
        std::io::Write::write_all(&mut file, b"\n").expect("write");
    }
    std::fs::set_permissions(&key_path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
    std::fs::write(&config_path, format!("[api]\napi_key_file = \"{}\"\n", key_path.display())).expect("config");
    std::fs::set_permissions(&config_path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
    // A config holding its secrets inline, long enough that reading it needs a large buffer.
    let (inline_key, seed) = ("INLINEKEY-5b2f90c4e1", "MZXW6YTBOI2ZEROQ");
    let inline_path = dir.path().join("inline.toml");
    let padding = "# padding\n".repeat(800);
    std::fs::write(
        &inline_path,
        format!("{padding}[api]\napi_key = \"{inline_key}\"\n[users]\nbob = {{ authy_id = 2, offline_secret = \"{seed}\" }}\n"),
    )
    .expect("config");
    std::fs::set_permissions(&inline_path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
    let hits = watch(&[key, inline_key, seed], || {
        let config = Config::load(&config_path).expect("config");
        assert_eq!(config.api.api_key.expose(), key);
        drop(config);
        let config = Config::load(&inline_path).expect("config");
        assert_eq!(config.api.api_key.expose(), inline_key);
        drop(config);
    });
    assert_eq!(hits, [0, 0, 0], "a key or seed read from a file was left in freed memory");
}

#[test]
fn offline_codes_are_wiped_after_checking() {
    let seed = Secret::from("JBSWY3DPEHPK3PXPJBSWY3DP");
    let params = OfflineParams { digits: 8, period_secs: 30, skew_steps: 1 };
    let at = 1_800_000_000;
    let code = Zeroizing::new(code_at(&seed, at, &params).expect("code").expose().to_owned());
    let next = Zeroizing::new(code_at(&seed, at + 30, &params).expect("code").expose().to_owned());
    let hits = watch(&[code.as_str(), next.as_str()], || {
        assert_eq!(matching_step(&seed, &code, at, &params), Some(at / 30));
        assert_eq!(matching_step(&seed, "00000000", at, &params), None);
        drop(code_at(&seed, at, &params));
    });
    assert_eq!(hits, [0, 0], "offline codes left in freed memory");
}

/// A conversation that answers every prompt with the next of `answers` (already Secrets).
struct Answers(Vec<Secret>);

impl Conversation for Answers {
    fn prompt(&mut self, _: &str, _: bool) -> Result<Secret, ConvError> {
        if self.0.is_empty() { Err(ConvError) } else { Ok(self.0.remove(0)) }
    }
    fn info(&mut self, _: &str) -> Result<(), ConvError> {
        Ok(())
    }
    fn error(&mut self, _: &str) -> Result<(), ConvError> {
        Ok(())
    }
}

/// Wrong for `wrong`, valid otherwise; keeps no copy of any token.
struct Verifier {
    wrong: &'static str,
}

impl Backend for Verifier {
    fn words(&self) -> &[Word] {
        &[]
    }
    fn verify_code(&mut self, token: &Token) -> Result<TokenVerdict, ApiError> {
        Ok(if token.expose() == self.wrong { TokenVerdict::Invalid } else { TokenVerdict::Valid })
    }
    fn send_code(&mut self, _: Channel) -> Result<ChannelReceipt, ApiError> {
        Err(ApiError::Unreachable("not in this test".into()))
    }
    fn start_approval(&mut self, _: &ApprovalRequest) -> Result<ApprovalId, ApiError> {
        Err(ApiError::Unreachable("not in this test".into()))
    }
    fn poll_approval(&mut self, _: &ApprovalId, _: std::time::Duration) -> Result<ApprovalStatus, ApiError> {
        Err(ApiError::Unreachable("not in this test".into()))
    }
}

struct StillClock;

impl Clock for StillClock {
    fn unix_time(&self) -> u64 {
        1_800_000_000
    }
    fn monotonic(&self) -> Duration {
        Duration::ZERO
    }
    fn sleep(&self, _: Duration) {}
}

#[test]
fn tokens_typed_at_the_prompt_are_wiped_after_the_flow() {
    let (wrong, right) = ("80706050", "91827364");
    let config = Config::parse(
        Path::new("/t.toml"),
        "[api]\nurl = \"https://127.0.0.1:1\"\napi_key = \"k\"\n[users]\nalice = 42\n",
    )
    .expect("config");
    let args = ModuleArgs::parse::<&str>(&[]).expect("args");
    let login = Login { user: "alice".into(), service: "sshd".into(), ..Login::default() };
    let log = MemoryLog::default();
    let hits = watch(&[wrong, right], || {
        let mut conversation = Answers(vec![Secret::from(wrong), Secret::from(right)]);
        let connect =
            |_: &Config, _: &UserEntry| -> Result<Box<dyn Backend>, ApiError> { Ok(Box::new(Verifier { wrong })) };
        let open_state = |_: &Config| -> Result<Box<dyn StateStore>, pam_authy::state::StateError> {
            Ok(Box::new(MemoryStateStore::new()))
        };
        let mut deps = Deps {
            conversation: &mut conversation,
            connect: &connect,
            open_state: &open_state,
            clock: &StillClock,
            accounts: &FakeAccounts::one("alice", 100),
            log: &log,
        };
        let decision = flow::authenticate(&config, &args, &login, &mut deps);
        assert!(matches!(decision.outcome, Outcome::Verified(_)), "{decision:?}");
    });
    assert_eq!(hits, [0, 0], "typed tokens left in freed memory");
    let text = log.text();
    assert!(!text.contains(wrong) && !text.contains(right), "{text}");
}
