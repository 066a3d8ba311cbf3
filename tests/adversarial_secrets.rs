//! Class 9 (first half) and the syslog side of class 11 of the adversarial suite: no token,
//! offline code, API key or TOTP seed in syslog at any level, in an error message or in
//! `Debug` output; no log line that server or login text can split or forge.
//!
//! Syslog is captured for real: a child process (this test binary re-run) enters a private
//! mount namespace, keeps the host's /dev reachable under a temporary directory, mounts a
//! tmpfs on /dev with only the device nodes a process needs bound back, and listens on its
//! own /dev/log datagram socket while it runs logins (all with the `debug` argument) through
//! libpam and the module. Root only; skipped with a message otherwise. The host's /dev is
//! never changed. `adversarial_zeroing.rs` checks that the secrets are wiped from memory.

#![allow(clippy::disallowed_methods)]

mod adversarial_support;
mod common;

use adversarial_support::{CHILD_ROLE, child_role, one_test_args, output_text};
use authy_sandbox::{Fault, FaultScope, PushScenario, PushStatus, Sandbox};
use common::*;
use pam_authy::backend::Token;
use pam_authy::config::Config;
use pam_authy::offline::{OfflineParams, code_at};
use pam_authy::secret::Secret;
use pam_harness::{Items, Message, Reply};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CHILD_TEST: &str = "child_captures_syslog_while_logging_in";
const SEED: &str = "mzxw 6ytb oi2z erox";
const SEED_CANONICAL: &str = "MZXW6YTBOI2ZEROX";
const WRONG_TOKENS: [&str; 3] = ["8642097", "7531864", "9753108"];
const WRONG_OFFLINE: &str = "135792";
const WRONG_KEY: &str = "wrongkey-SECRET-4f2a9c";
const CONFIG_SECRETS: [&str; 3] = ["UNTERMINATED-SECRET-77d1", "SPACEY-SECRET-91ab", "NOTBASE32-SECRET-1x"];

#[test]
#[cfg_attr(
    not(pam_authy_tests_as_root),
    ignore = "needs root: capturing /dev/log in a private mount namespace needs root"
)]
fn no_secret_reaches_syslog_at_any_level() {
    common::require_root();
    let host_had_log = std::fs::symlink_metadata("/dev/log").is_ok();
    let hostdev = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("current_exe");
    let output = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", NAMESPACE_SCRIPT, "sh"])
        .arg(hostdev.path())
        .arg(exe)
        .args(one_test_args(CHILD_TEST))
        .env(CHILD_ROLE, "syslog")
        .output()
        .expect("unshare");
    let text = output_text(&output);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("SYSLOG-CHECKED"), "the child did not run its checks: {text}");
    assert_eq!(std::fs::symlink_metadata("/dev/log").is_ok(), host_had_log, "the host's /dev was changed");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mounts.contains("pam-authy-test-dev"), "the test /dev leaked into the host namespace");
}

/// Splits `key=value key="quoted \\"value\\""` as `log::format_fields` writes it.
fn fields(message: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    let mut chars = message.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    other => value.push(other),
                }
            }
            chars.next();
        } else {
            value = chars.by_ref().take_while(|c| *c != ' ').collect();
        }
        fields.push((key.trim().to_owned(), value));
    }
    fields
}

/// Logs in as told and returns the PAM code; prompts get `answers` in order, then "".
fn login(dir: &TestDir, items: &Items, answers: &[String]) -> i32 {
    let mut answers = answers.iter();
    dir.authenticate_with("svc", &current_user(), items, &mut |m: &Message| {
        if m.style.is_prompt() { Reply::Text(answers.next().cloned().unwrap_or_default()) } else { Reply::text("") }
    })
    .code
}

fn online(sandbox: &Sandbox, id: u64, extra: &str) -> TestDir {
    let dir = TestDir::new();
    dir.write_config(&config_for(&dir, sandbox, &format!("\"{}\" = {id}", current_user()), extra));
    dir.service("svc", "debug");
    dir
}

/// The child side: listens on /dev/log, runs every kind of login, checks the datagrams.
#[test]
fn child_captures_syslog_while_logging_in() {
    if child_role().as_deref() != Some("syslog") {
        return;
    }
    let _ = std::fs::remove_file("/dev/log");
    let socket = UnixDatagram::bind("/dev/log").expect("bind /dev/log");
    socket.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    let received: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let reader = {
        let received = received.clone();
        std::thread::spawn(move || {
            let mut buffer = vec![0u8; 64 * 1024];
            let mut idle = 0;
            while idle < 15 {
                match socket.recv(&mut buffer) {
                    Ok(n) => {
                        received.lock().expect("lock").push(buffer[..n].to_vec());
                        idle = 0;
                    }
                    Err(_) => idle += 1,
                }
            }
        })
    };

    let ssh = Items { rhost: Some("192.0.2.10".into()), tty: Some("ssh".into()), ruser: None };
    let mut secrets: Vec<String> = vec![API_KEY.into(), WRONG_KEY.into(), SEED.into(), SEED_CANONICAL.into()];
    secrets.extend(WRONG_TOKENS.iter().map(|t| t.to_string()));
    secrets.extend(CONFIG_SECRETS.iter().map(|t| t.to_string()));
    secrets.push(WRONG_OFFLINE.into());
    let mut codes = Vec::new();

    // A right token, wrong tokens, an SMS code, a push.
    let (sandbox, id) = common::sandbox();
    let dir = online(&sandbox, id, "[auth]\npush_timeout_secs = 5\npush_poll_ms = 100");
    let token = sandbox.current_token(id).expect("token");
    secrets.push(token.clone());
    codes.push(login(&dir, &ssh, &[token]));
    codes.push(login(&dir, &ssh, &WRONG_TOKENS.map(String::from)));
    let (sandbox, id) = common::sandbox();
    let dir = online(&sandbox, id, "[auth]\npush_timeout_secs = 5\npush_poll_ms = 100");
    let sms_code = sandbox.current_token(id).expect("token");
    secrets.push(sms_code.clone());
    codes.push(login(&dir, &ssh, &["sms".into(), sms_code]));
    sandbox
        .set_push_scenario(FaultScope::User(id), PushScenario::AfterPolls { status: PushStatus::Approved, polls: 2 });
    codes.push(login(&dir, &ssh, &["push".into(), String::new()]));

    // Hostile server text and a hostile remote host: logged, but neither split nor forged.
    let (sandbox, id) = common::sandbox();
    let dir = online(&sandbox, id, "");
    let hostile = r#"{"message":"evil\u001b[2J\r\nDec 1 00:00:00 host sshd[1]: Accepted password for root","success":false,"errors":{},"error_code":"60003"}"#;
    sandbox.set_fault_times(FaultScope::User(id), Fault::Body(429, hostile.into()), 1);
    let forged = Items {
        rhost: Some("203.0.113.5\nuser=root outcome=success reason=token_valid".into()),
        tty: Some("pts/0 outcome=success".into()),
        ruser: None,
    };
    let token = sandbox.current_token(id).expect("token");
    secrets.push(token.clone());
    codes.push(login(&dir, &forged, &["sms".into(), token]));

    // Offline: the API is down; a wrong then a right code.
    let dir = TestDir::new();
    let text = offline_config(&dir, &sandbox, id, SEED, &dir.state_dir(), "", "");
    dir.write_config(&text);
    dir.service("svc", "debug");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs();
    let params = OfflineParams { digits: 6, period_secs: 30, skew_steps: 1 };
    let code = code_at(&Secret::from(SEED), now, &params).expect("code").expose().to_owned();
    secrets.push(code.clone());
    // The token typed before the module learns the API is down is a secret too: it once
    // reached syslog inside the transport error's URL.
    let typed_while_down = "7654321".to_owned();
    secrets.push(typed_while_down.clone());
    codes.push(login(&dir, &ssh, &[typed_while_down, WRONG_OFFLINE.into(), code]));

    // A key the API refuses, and config files whose errors might quote a secret.
    let (sandbox, id) = common::sandbox();
    let dir = online(&sandbox, id, "");
    let text = std::fs::read_to_string(dir.config_path()).expect("config").replace(API_KEY, WRONG_KEY);
    dir.write_config(&text);
    codes.push(login(&dir, &ssh, &[sandbox.current_token(id).expect("token")]));
    for broken in [
        format!("[api]\napi_key = \"{}\n", CONFIG_SECRETS[0]),
        format!("[api]\napi_key = \"x {}\"\n", CONFIG_SECRETS[1]),
        format!(
            "[api]\napi_key = \"k\"\n[users]\nbob = {{ authy_id = 1, offline_secret = \"{}\" }}\n",
            CONFIG_SECRETS[2]
        ),
        format!("[api]\napi_key = {}\n", CONFIG_SECRETS[1]),
    ] {
        let dir = TestDir::new();
        dir.write_config(&broken);
        dir.service("svc", "debug");
        codes.push(login(&dir, &ssh, &[]));
    }
    // A user defined in the main file and again in a users.d drop-in (with a seed).
    let dir = online(&sandbox, id, "");
    std::fs::create_dir(dir.path().join("users.d")).expect("mkdir users.d");
    let duplicate = format!("[users]\n\"{}\" = {{ authy_id = 5, offline_secret = \"{SEED}\" }}\n", current_user());
    let drop_in = dir.write("users.d/team.toml", &duplicate, 0o600);
    codes.push(login(&dir, &ssh, &[]));
    assert_eq!(codes, [0, 11, 0, 0, 0, 0, 3, 3, 3, 3, 3, 3], "the logins did not end as planned");

    // The Verify backend: a right and wrong TOTP codes, an SMS code, a push, the API down with
    // an offline secret, and an API key secret the API refuses.
    let verify_codes = verify_logins(&ssh, &mut secrets);
    assert_eq!(verify_codes, [0, 11, 0, 0, 0, 3], "the Verify logins did not end as planned");

    reader.join().expect("reader");
    let datagrams = received.lock().expect("lock").clone();
    let lines: Vec<String> = datagrams.iter().map(|d| String::from_utf8_lossy(d).into_owned()).collect();
    let all = lines.join("\n");
    // libpam logs through the same socket (with the application's name); ours carry pam_authy[.
    let ours = lines.iter().filter(|l| l.contains(" pam_authy[")).count();
    assert!(ours >= codes.len(), "too few pam_authy lines: {all}");
    assert!(lines.iter().any(|l| l.contains("outcome=success")), "{all}");
    assert!(lines.iter().any(|l| l.contains("offline_code_valid")), "{all}");
    let (main, drop_in) = (dir.config_path().display().to_string(), drop_in.display().to_string());
    assert!(
        lines.iter().any(|l| l.contains("outcome=service_error") && l.contains(&main) && l.contains(&drop_in)),
        "no one line names both files that define the user: {all}"
    );
    assert!(lines.iter().filter(|l| l.contains("outcome=success")).count() >= 8, "{all}");
    for secret in &secrets {
        for line in &lines {
            assert!(!line.contains(secret.as_str()), "syslog holds the secret {secret:?}: {line:?}");
        }
    }
    for datagram in &datagrams {
        assert!(
            !datagram.iter().any(|b| *b < 0x20 || *b == 0x7f),
            "control byte in {:?}",
            String::from_utf8_lossy(datagram)
        );
    }
    for line in lines.iter().filter(|l| l.contains(" pam_authy[") && l.contains("outcome=")) {
        let fields = fields(line.split_once("]: ").map_or("", |(_, message)| message));
        let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys.iter().filter(|k| **k == "outcome").count(), 1, "forged field: {line}");
        assert_eq!(keys.iter().filter(|k| **k == "user").count(), 1, "forged field: {line}");
        assert_eq!(keys.iter().filter(|k| **k == "reason").count(), 1, "forged field: {line}");
    }
    println!("SYSLOG-CHECKED {} lines", lines.len());
}

const VERIFY_WRONG_CODES: [&str; 3] = ["864209", "753186", "975310"];
const VERIFY_WRONG_SECRET: &str = "wrong-verify-SECRET-8e1d";

/// Logins through the Verify backend; every code, the API key secret and the offline seed
/// join `secrets`. Returns the PAM codes.
fn verify_logins(ssh: &Items, secrets: &mut Vec<String>) -> Vec<i32> {
    let sandbox = common::sandbox().0;
    let account = sandbox.verify_account();
    let factors = VerifyFactors::new(&sandbox);
    secrets.extend([account.api_key_secret.clone(), account.auth_token.clone(), VERIFY_WRONG_SECRET.into()]);
    secrets.extend(VERIFY_WRONG_CODES.map(String::from));
    let dir = TestDir::new();
    let extra = format!(
        "[auth]\npush_timeout_secs = 5\npush_poll_ms = 100\n[offline]\nstate_dir = \"{}\"",
        dir.state_dir().display()
    );
    let text = verify_config_for(&dir, &sandbox, &format!("{}, offline_secret = \"{SEED}\"", factors.all()), &extra);
    let config = |url: &str, secret: &str| {
        text.replace(&sandbox.url(), url).replace(&format!("\"{}\"", account.api_key_secret), &format!("\"{secret}\""))
    };
    let totp = factors.totp;
    dir.write_config(&config(&sandbox.url(), &account.api_key_secret));
    dir.service("svc", "debug");
    let mut codes = Vec::new();
    let code = sandbox.verify_current_code(&totp).expect("code");
    secrets.push(code.clone());
    codes.push(login(&dir, ssh, &[code]));
    codes.push(login(&dir, ssh, &VERIFY_WRONG_CODES.map(String::from)));
    // The SMS code is read from the sandbox when the module asks for it.
    let mut asked = 0;
    let mut sms_code = String::new();
    codes.push(
        dir.authenticate_with("svc", &current_user(), ssh, &mut |m: &Message| {
            if !m.style.is_prompt() {
                return Reply::text("");
            }
            asked += 1;
            if asked == 1 {
                return Reply::text("sms");
            }
            sms_code = sandbox.verify_sent_codes().last().expect("a sent code").code.clone();
            Reply::Text(sms_code.clone())
        })
        .code,
    );
    secrets.push(sms_code);
    sandbox.set_push_scenario(FaultScope::Verify, PushScenario::AfterPolls { status: PushStatus::Approved, polls: 2 });
    codes.push(login(&dir, ssh, &["push".into(), String::new()]));
    let down = format!("https://127.0.0.1:{}", closed_port());
    dir.write_config(&config(&down, &account.api_key_secret));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs();
    let params = OfflineParams { digits: 6, period_secs: 30, skew_steps: 1 };
    let offline = code_at(&Secret::from(SEED), now, &params).expect("code").expose().to_owned();
    secrets.push(offline.clone());
    let typed_while_down = "246813".to_owned();
    secrets.push(typed_while_down.clone());
    codes.push(login(&dir, ssh, &[typed_while_down, offline]));
    dir.write_config(&config(&sandbox.url(), VERIFY_WRONG_SECRET));
    codes.push(login(&dir, ssh, &["sms".into()]));
    codes
}

/// `Debug` of every type that holds or carries a secret shows none of it.
#[test]
fn debug_output_and_error_messages_never_show_a_secret() {
    let key = "DEBUGKEY-SECRET-0a9b8c";
    let seed = "GEZDGNBVGY3TQOJQGEZDGNBV";
    let text = format!("[api]\napi_key = \"{key}\"\n[users]\nbob = {{ authy_id = 1, offline_secret = \"{seed}\" }}\n");
    let config = Config::parse(Path::new("/etc/pam_authy/pam_authy.toml"), &text).expect("config");
    let token = Token::parse("90817263").expect("token");
    let shown = [
        format!("{config:?}"),
        format!("{:?}", config.api),
        format!("{:?}", config.users),
        format!("{token:?}"),
        format!("{:?}", Secret::from(key)),
        format!("{}", Secret::from(key)),
        format!("{:?}", Some(Secret::from(seed))),
    ];
    for text in &shown {
        for secret in [key, seed, "90817263"] {
            assert!(!text.contains(secret), "{secret} shown in {text}");
        }
    }
    assert!(shown[0].contains("redacted"), "{}", shown[0]);
    // Errors about a bad secret name the file and the problem, never the value.
    for bad in [
        format!("[api]\napi_key = \"{key} with spaces\"\n"),
        format!("[api]\napi_key = \"{key}\n"),
        format!("[api]\napi_key = {key}\n"),
        format!("[api]\napi_key = \"k\"\n[users]\nbob = {{ authy_id = 1, offline_secret = \"{key}!\" }}\n"),
        format!("[api]\napi_key = \"k\"\n[users]\nbob = {{ authy_id = 1, offline_secret = {key} }}\n"),
        format!("[api]\napi_key = \"k\"\nurl = \"https://user:{key}@api.authy.com\"\n"),
        format!("[api]\napi_key = \"k\"\nproxy = \"http://user:{key}@proxy:3128\"\ntimeout_secs = \"x\"\n"),
    ] {
        let error = Config::parse(Path::new("/etc/pam_authy/pam_authy.toml"), &bad).expect_err("refused");
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains(key), "the error shows the secret: {shown}");
    }
}
