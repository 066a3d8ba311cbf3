//! The offline TOTP fallback, failmode per failure kind, replay protection, the rate limit
//! and the grace period, through the built module and real libpam. The unit tests in
//! src/flow/ and src/state/ drive the same rules with a fake clock; here the real clock
//! runs, and no test sleeps to reach a time step: codes are computed for the current step.

#![allow(clippy::disallowed_methods)]

mod common;

use authy_sandbox::{Fault, FaultScope, Sandbox, SandboxConfig, ServerCert};
use common::*;
use pam_authy::offline::{OfflineParams, code_at};
use pam_authy::secret::Secret;
use pam_harness::{
    Items, Message, PAM_AUTH_ERR, PAM_AUTHINFO_UNAVAIL, PAM_MAXTRIES, PAM_SERVICE_ERR, PAM_SUCCESS, Reply,
};
use std::time::{SystemTime, UNIX_EPOCH};

const SEED: &str = "jbsw y3dp ehpk 3pxp"; // 80 bits, pasted the way people paste it
const PARAMS: OfflineParams = OfflineParams { digits: 6, period_secs: 30, skew_steps: 1 };

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("time").as_secs()
}

fn code(offset_secs: i64) -> String {
    let at = now().saturating_add_signed(offset_secs);
    code_at(&Secret::from(SEED), at, &PARAMS).expect("code").expose().to_owned()
}

/// A test dir whose config maps the current user with an offline secret to a sandbox user,
/// with the API URL replaced by `url` (a closed port for "unreachable").
fn setup_with_url(sandbox: &Sandbox, id: u64, url: &str, extra: &str) -> TestDir {
    let dir = TestDir::new();
    let mapping = format!("\"{}\" = {{ authy_id = {id}, offline_secret = \"{SEED}\" }}", current_user());
    let state = format!("[offline]\nstate_dir = \"{}\"\n", dir.state_dir().display());
    let extra =
        if extra.contains("[offline]\n") { extra.replace("[offline]\n", &state) } else { format!("{extra}\n{state}") };
    let text = config_for(&dir, sandbox, &mapping, &extra).replace(&sandbox.url(), url);
    dir.write_config(&text);
    dir.service("svc", "");
    dir
}

fn setup_down(extra: &str) -> (TestDir, Sandbox) {
    let (sandbox, id) = sandbox();
    let url = format!("https://127.0.0.1:{}", closed_port());
    (setup_with_url(&sandbox, id, &url, extra), sandbox)
}

#[test]
fn an_unreachable_api_falls_back_to_the_offline_code() {
    let (dir, _sandbox) = setup_down("");
    let result = dir.authenticate("svc", &current_user(), &mut token_then_offline("1234567", vec![code(0)]));
    assert_eq!(result.code, PAM_SUCCESS, "{}", result.text());
    assert!(result.prompts().iter().any(|p| p.contains("Authy cannot be reached")), "{}", result.text());
    let state_dir = std::fs::metadata(dir.state_dir()).expect("state dir created");
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&state_dir.permissions()) & 0o777, 0o700);
}

#[test]
fn a_wrong_offline_code_fails_and_a_replayed_one_too() {
    let (dir, _sandbox) = setup_down("[auth]\nmax_tries = 1");
    let wrong = dir.authenticate("svc", &current_user(), &mut token_then_offline("1234567", vec!["000000".into()]));
    assert_eq!(wrong.code, PAM_MAXTRIES, "{}", wrong.text());
    let current = code(0);
    let first = dir.authenticate("svc", &current_user(), &mut token_then_offline("1234567", vec![current.clone()]));
    assert_eq!(first.code, PAM_SUCCESS, "{}", first.text());
    let replay = dir.authenticate("svc", &current_user(), &mut token_then_offline("1234567", vec![current]));
    assert_eq!(replay.code, PAM_MAXTRIES, "the same code twice: {}", replay.text());
    let past = dir.authenticate("svc", &current_user(), &mut token_then_offline("1234567", vec![code(-30)]));
    assert_eq!(past.code, PAM_MAXTRIES, "a code from a past step: {}", past.text());
}

#[test]
fn offline_verification_locks_after_max_failures() {
    let (dir, _sandbox) = setup_down("[auth]\nmax_tries = 5\n[offline]\nmax_failures = 3\nfailure_window_secs = 300");
    let wrong = vec!["000000".to_owned(), "111111".into(), "222222".into()];
    let mut answers = token_then_offline("1234567", [wrong, vec![code(0)]].concat());
    let result = dir.authenticate("svc", &current_user(), &mut answers);
    assert_eq!(result.code, PAM_MAXTRIES, "locked out even with the right code: {}", result.text());
    let later = dir.authenticate("svc", &current_user(), &mut token_then_offline("1234567", vec![code(0)]));
    assert_eq!(later.code, PAM_MAXTRIES, "still locked in another process' view: {}", later.text());
}

#[test]
fn thirty_two_parallel_logins_with_one_valid_code_succeed_exactly_once() {
    let (dir, _sandbox) = setup_down("[auth]\nmax_tries = 1\n[offline]\nmax_failures = 100");
    let dir = std::sync::Arc::new(dir);
    let current = code(0);
    let user = current_user();
    let handles: Vec<_> = (0..32)
        .map(|_| {
            let (dir, current, user) = (dir.clone(), current.clone(), user.clone());
            std::thread::spawn(move || {
                dir.authenticate("svc", &user, &mut token_then_offline("1234567", vec![current])).code
            })
        })
        .collect();
    let codes: Vec<i32> = handles.into_iter().map(|h| h.join().expect("thread")).collect();
    assert_eq!(codes.iter().filter(|c| **c == PAM_SUCCESS).count(), 1, "{codes:?}");
    assert!(codes.iter().all(|c| *c == PAM_SUCCESS || *c == PAM_MAXTRIES), "{codes:?}");
    for entry in std::fs::read_dir(dir.state_dir()).expect("state dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).expect("state file");
            let state: serde_json::Value = serde_json::from_str(&text).expect("state file is valid JSON");
            assert_eq!(state["failures"].as_array().map(Vec::len), Some(31), "{text}");
        }
    }
}

#[test]
fn an_unusable_state_dir_or_file_refuses_the_offline_code() {
    type Breaker = fn(&TestDir);
    let cases: [(&str, Breaker); 4] = [
        ("symlinked state dir", |dir| {
            let real = dir.path().join("real-state");
            std::fs::create_dir(&real).expect("mkdir");
            set_mode(&real, 0o700);
            std::os::unix::fs::symlink(&real, dir.state_dir()).expect("symlink");
        }),
        ("world-writable state dir", |dir| {
            std::fs::create_dir(dir.state_dir()).expect("mkdir");
            set_mode(&dir.state_dir(), 0o777);
        }),
        ("state dir is a file", |dir| {
            dir.write("state", "", 0o600);
        }),
        ("corrupt state file", |dir| {
            std::fs::create_dir(dir.state_dir()).expect("mkdir");
            set_mode(&dir.state_dir(), 0o700);
            let stem: String = current_user().bytes().map(|b| format!("{b:02x}")).collect();
            let file = dir.state_dir().join(format!("{stem}.json"));
            std::fs::write(&file, "{\"last_offline_step\": \"garbage\"").expect("write");
            set_mode(&file, 0o600);
        }),
    ];
    for (name, breaker) in cases {
        let (dir, _sandbox) = setup_down("[auth]\nfailmode = \"safe\"");
        breaker(&dir);
        let mut answers = |m: &Message| {
            if !m.style.is_prompt() {
                Reply::text("")
            } else if m.text.contains("Offline code") {
                Reply::Text(code(0))
            } else {
                Reply::text("1234567")
            }
        };
        let result = dir.authenticate("svc", &current_user(), &mut answers);
        assert_eq!(result.code, PAM_SERVICE_ERR, "{name}: {}", result.text());
    }
}

/// Each failure kind: what failmode secure and safe make of it, for a user without an
/// offline secret. Only an unreachable API is ever softened.
#[test]
fn failmode_applies_only_to_an_unreachable_api() {
    let kinds: Vec<(&str, Option<Fault>, bool, i32)> = vec![
        ("connection refused", None, true, PAM_AUTHINFO_UNAVAIL),
        ("HTTP 500", Some(Fault::Status(500)), true, PAM_AUTHINFO_UNAVAIL),
        ("HTTP 503", Some(Fault::Status(503)), true, PAM_AUTHINFO_UNAVAIL),
        ("connection reset", Some(Fault::Reset), true, PAM_AUTHINFO_UNAVAIL),
        ("timeout", Some(Fault::Hang), true, PAM_AUTHINFO_UNAVAIL),
        ("HTTP 429", Some(Fault::Status(429)), false, PAM_AUTH_ERR),
        ("HTTP 404", Some(Fault::Status(404)), false, PAM_AUTH_ERR),
        ("HTML", Some(Fault::Html), false, PAM_AUTH_ERR),
        ("invalid JSON", Some(Fault::InvalidJson), false, PAM_AUTH_ERR),
        ("redirect", Some(Fault::Redirect("http://127.0.0.1:1/".into())), false, PAM_AUTH_ERR),
    ];
    for (name, fault, unreachable, secure_code) in kinds {
        for (failmode, expected) in
            [("secure", secure_code), ("safe", if unreachable { PAM_SUCCESS } else { secure_code })]
        {
            let (sandbox, id) = sandbox();
            let url = if fault.is_none() { format!("https://127.0.0.1:{}", closed_port()) } else { sandbox.url() };
            let dir = TestDir::new();
            let extra = format!("[auth]\nfailmode = \"{failmode}\"");
            let text = config_for(&dir, &sandbox, &format!("\"{}\" = {id}", current_user()), &extra)
                .replace(&sandbox.url(), &url)
                .replace("timeout_secs = 5", "timeout_secs = 1");
            dir.write_config(&text);
            dir.service("svc", "");
            sandbox.set_fault(FaultScope::Global, fault.clone());
            let result = dir.authenticate("svc", &current_user(), &mut answers(&["1234567", ""]));
            assert_eq!(result.code, expected, "{name} under failmode {failmode}: {}", result.text());
        }
    }
    for (name, cert) in [
        ("self-signed", ServerCert::SelfSigned),
        ("wrong host", ServerCert::WrongHost),
        ("expired", ServerCert::Expired),
        ("unknown CA", ServerCert::UnknownCa),
    ] {
        let (good, _) = sandbox();
        let (bad, id) =
            sandbox_with(SandboxConfig { api_key: API_KEY.into(), server_cert: cert, ..SandboxConfig::default() });
        let dir = TestDir::new();
        let text = config_for(&dir, &good, &format!("\"{}\" = {id}", current_user()), "[auth]\nfailmode = \"safe\"")
            .replace(&good.url(), &bad.url());
        dir.write_config(&text);
        dir.service("svc", "");
        let result = dir.authenticate("svc", &current_user(), &mut answers(&["1234567"]));
        assert_eq!(result.code, PAM_AUTH_ERR, "TLS {name} under failmode safe: {}", result.text());
    }
}

#[test]
fn the_grace_period_spares_the_same_login_a_prompt_and_nothing_else() {
    let (sandbox, id) = sandbox();
    let dir = setup_with_url(&sandbox, id, &sandbox.url(), "[auth]\ngrace_secs = 300");
    let from = |rhost: Option<&str>| Items { rhost: rhost.map(str::to_owned), tty: Some("ssh".into()), ruser: None };
    let mut refuse = |_: &Message| Reply::ConvError;
    let first = dir.authenticate_with(
        "svc",
        &current_user(),
        &from(Some("198.51.100.1")),
        &mut answer_with_token(&sandbox, id),
    );
    assert_eq!(first.code, PAM_SUCCESS, "{}", first.text());
    let hit = dir.authenticate_with("svc", &current_user(), &from(Some("198.51.100.1")), &mut answers(&[]));
    assert_eq!(hit.code, PAM_SUCCESS, "{}", hit.text());
    assert!(hit.transcript.is_empty(), "grace must not prompt: {}", hit.text());
    let other = dir.authenticate_with("svc", &current_user(), &from(Some("198.51.100.2")), &mut refuse);
    assert_ne!(other.code, PAM_SUCCESS, "another rhost: {}", other.text());
    assert!(!other.transcript.is_empty(), "another rhost must be asked");
    let local = dir.authenticate_with("svc", &current_user(), &from(None), &mut refuse);
    assert_ne!(local.code, PAM_SUCCESS, "no rhost: {}", local.text());
    dir.service("other-service", "");
    let other_service =
        dir.authenticate_with("other-service", &current_user(), &from(Some("198.51.100.1")), &mut refuse);
    assert_ne!(other_service.code, PAM_SUCCESS, "another service: {}", other_service.text());
}
