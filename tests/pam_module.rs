//! The built pam_authy.so through real libpam (`pam_start_confdir`), real TLS and the
//! sandbox: the walking-skeleton behaviours and every failure case with its PAM code.

// Tests measure wall time against real sockets; the module's clock rule is for src/.
#![allow(clippy::disallowed_methods)]

mod common;

use authy_sandbox::{Fault, FaultScope, SandboxConfig, ServerCert};
use common::*;
use pam_harness::{
    Items, PAM_AUTH_ERR, PAM_AUTHINFO_UNAVAIL, PAM_CONV_ERR, PAM_MAXTRIES, PAM_SERVICE_ERR, PAM_SUCCESS,
    PAM_USER_UNKNOWN, Reply, Style,
};

fn verify_requests(sandbox: &authy_sandbox::Sandbox) -> usize {
    sandbox.requests().iter().filter(|r| r.route_path.contains("/verify/")).count()
}

/// A test dir with a config mapping the current user to the sandbox user.
fn setup(extra: &str) -> (TestDir, authy_sandbox::Sandbox, u64) {
    let (sandbox, id) = sandbox();
    let dir = TestDir::new();
    let mapping = format!("\"{}\" = {id}", current_user());
    dir.write_config(&config_for(&dir, &sandbox, &mapping, extra));
    dir.service("login2fa", "");
    (dir, sandbox, id)
}

#[test]
fn a_valid_token_authenticates() {
    let (dir, sandbox, id) = setup("");
    let result = dir.authenticate("login2fa", &current_user(), &mut answer_with_token(&sandbox, id));
    assert_eq!(result.code, PAM_SUCCESS, "{}", result.text());
    assert_eq!(result.prompts(), vec![pam_authy::flow::TOKEN_PROMPT]);
    let requests = sandbox.requests();
    let verify = requests.iter().find(|r| r.route_path.contains("/verify/")).expect("verify request");
    assert!(verify.query.contains(&("force".to_owned(), "true".to_owned())), "{verify:?}");
    assert_eq!(verify.api_key.as_deref(), Some(API_KEY));
}

#[test]
fn a_wrong_token_is_retried_and_then_a_right_one_passes() {
    let (dir, sandbox, id) = setup("");
    let mut first = true;
    let result = dir.authenticate("login2fa", &current_user(), &mut |m: &pam_harness::Message| {
        if !m.style.is_prompt() {
            return Reply::text("");
        }
        if std::mem::take(&mut first) {
            Reply::text("0000000")
        } else {
            Reply::Text(sandbox.current_token(id).expect("token"))
        }
    });
    assert_eq!(result.code, PAM_SUCCESS, "{}", result.text());
    assert!(result.text().contains("Wrong token"));
}

#[test]
fn wrong_tokens_until_max_tries_give_maxtries() {
    let (dir, sandbox, _) = setup("[auth]\nmax_tries = 2");
    let result = dir.authenticate("login2fa", &current_user(), &mut answers(&["0000000", "1111111"]));
    assert_eq!(result.code, PAM_MAXTRIES, "{}", result.text());
    assert_eq!(verify_requests(&sandbox), 2);
    let errors: Vec<&str> =
        result.transcript.iter().filter(|m| m.style == Style::ErrorMsg).map(|m| m.text.as_str()).collect();
    assert_eq!(errors, ["Wrong token.", "Wrong token. No tries left."], "the last try says why too");
}

#[test]
fn non_digit_input_is_a_failed_try_that_never_reaches_the_network() {
    let (dir, sandbox, _) = setup("");
    let result = dir.authenticate("login2fa", &current_user(), &mut answers(&["../sms", "12345a7", "1234567/1#"]));
    assert_eq!(result.code, PAM_MAXTRIES, "{}", result.text());
    assert_eq!(verify_requests(&sandbox), 0);
    assert!(sandbox.requests().is_empty(), "{:?}", sandbox.requests());
}

#[test]
fn unmapped_users_are_unknown_under_deny_and_ignored_under_ignore() {
    let (dir, sandbox, _) = setup("");
    let denied = dir.authenticate("login2fa", UNMAPPED_USER, &mut answers(&[]));
    assert_eq!(denied.code, PAM_USER_UNKNOWN, "{}", denied.text());
    let ignore = config_for(&dir, &sandbox, "", "[auth]\nunmapped_users = \"ignore\"");
    dir.write_config(&ignore);
    dir.ignore_probe_service("probe");
    let ignored = dir.authenticate("probe", UNMAPPED_USER, &mut answers(&[]));
    assert_eq!(ignored.code, PAM_SUCCESS, "PAM_IGNORE expected: {}", ignored.text());
    assert!(ignored.transcript.is_empty());
    assert!(sandbox.requests().is_empty());
}

#[test]
fn a_user_outside_the_groups_is_ignored_without_a_prompt() {
    let (dir, sandbox, _) = setup("[auth]\ngroups = [\"daemon\"]");
    dir.ignore_probe_service("probe");
    let result = dir.authenticate("probe", &current_user(), &mut answers(&[]));
    assert_eq!(result.code, PAM_SUCCESS, "PAM_IGNORE expected: {}", result.text());
    let alone = dir.authenticate("login2fa", &current_user(), &mut answers(&[]));
    assert_ne!(alone.code, PAM_SUCCESS, "IGNORE alone must not pass a stack");
    assert!(sandbox.requests().is_empty());
}

#[test]
fn a_wrong_api_key_is_a_service_error() {
    let (sandbox, id) = sandbox();
    let dir = TestDir::new();
    let text =
        config_for(&dir, &sandbox, &format!("\"{}\" = {id}", current_user()), "").replace(API_KEY, "not-the-key");
    dir.write_config(&text);
    dir.service("login2fa", "");
    let result = dir.authenticate("login2fa", &current_user(), &mut answer_with_token(&sandbox, id));
    assert_eq!(result.code, PAM_SERVICE_ERR, "{}", result.text());
}

/// The current user mapped, the API on a closed port, no offline secret.
fn api_down_without_offline_secret() -> TestDir {
    let dir = TestDir::new();
    let (sandbox, id) = sandbox();
    let text = config_for(&dir, &sandbox, &format!("\"{}\" = {id}", current_user()), "")
        .replace(&sandbox.url(), &format!("https://127.0.0.1:{}", closed_port()));
    dir.write_config(&text);
    dir
}

#[test]
fn an_unreachable_api_is_authinfo_unavail_under_failmode_secure() {
    let dir = api_down_without_offline_secret();
    dir.service("login2fa", "");
    let console = Items { rhost: None, tty: Some("/dev/tty1".into()), ruser: None };
    let result = dir.authenticate_with("login2fa", &current_user(), &console, &mut answers(&["1234567"]));
    assert_eq!(result.code, PAM_AUTHINFO_UNAVAIL, "{}", result.text());
    let last = result.transcript.last().expect("a message");
    assert_eq!(last.text, "Authy cannot be reached; try again later.", "{}", result.text());
    assert!(!last.style.is_prompt(), "{}", result.text());
}

#[test]
fn under_sshd_the_unreachable_api_is_said_in_a_prompt_because_sshd_drops_a_last_message() {
    let dir = api_down_without_offline_secret();
    dir.service("sshd", "");
    let result = dir.authenticate("sshd", &current_user(), &mut answers(&["1234567", ""]));
    assert_eq!(result.code, PAM_AUTHINFO_UNAVAIL, "{}", result.text());
    assert_eq!(result.prompts().last().copied(), Some("Authy cannot be reached; try again later (press Enter): "));
}

#[test]
fn an_unreachable_api_passes_under_failmode_safe_but_a_bad_certificate_never_does() {
    let dir = TestDir::new();
    let (sandbox, id) = sandbox();
    let mapping = format!("\"{}\" = {id}", current_user());
    let down = config_for(&dir, &sandbox, &mapping, "[auth]\nfailmode = \"safe\"")
        .replace(&sandbox.url(), &format!("https://127.0.0.1:{}", closed_port()));
    dir.write_config(&down);
    dir.service("login2fa", "");
    let result = dir.authenticate("login2fa", &current_user(), &mut answers(&["1234567"]));
    assert_eq!(result.code, PAM_SUCCESS, "{}", result.text());

    let (bad_tls, bad_id) = sandbox_with(SandboxConfig {
        api_key: API_KEY.into(),
        server_cert: ServerCert::SelfSigned,
        ..SandboxConfig::default()
    });
    let mapping = format!("\"{}\" = {bad_id}", current_user());
    // Trust the good CA of the first sandbox: the self-signed server must be refused.
    let text =
        config_for(&dir, &sandbox, &mapping, "[auth]\nfailmode = \"safe\"").replace(&sandbox.url(), &bad_tls.url());
    dir.write_config(&text);
    let result = dir.authenticate("login2fa", &current_user(), &mut answers(&["1234567"]));
    assert_eq!(result.code, PAM_AUTH_ERR, "{}", result.text());
}

#[test]
fn a_server_error_is_unavailable_and_a_hung_server_is_bounded_by_the_timeout() {
    let (dir, sandbox, id) = setup("");
    sandbox.set_fault(FaultScope::Global, Some(Fault::Status(503)));
    let result = dir.authenticate("login2fa", &current_user(), &mut answer_with_token(&sandbox, id));
    assert_eq!(result.code, PAM_AUTHINFO_UNAVAIL, "{}", result.text());

    let text = config_for(&dir, &sandbox, &format!("\"{}\" = {id}", current_user()), "")
        .replace("timeout_secs = 5", "timeout_secs = 1");
    dir.write_config(&text);
    sandbox.set_fault(FaultScope::Global, Some(Fault::Hang));
    let started = std::time::Instant::now();
    let result = dir.authenticate("login2fa", &current_user(), &mut answer_with_token(&sandbox, id));
    assert_eq!(result.code, PAM_AUTHINFO_UNAVAIL, "{}", result.text());
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
}

#[test]
fn html_invalid_json_and_redirect_replies_are_denied() {
    let (dir, sandbox, id) = setup("[auth]\nfailmode = \"safe\"");
    for fault in [Fault::Html, Fault::InvalidJson, Fault::Redirect("https://127.0.0.1:1/".into())] {
        sandbox.set_fault(FaultScope::Global, Some(fault.clone()));
        let result = dir.authenticate("login2fa", &current_user(), &mut answer_with_token(&sandbox, id));
        assert_eq!(result.code, PAM_AUTH_ERR, "{fault:?}: {}", result.text());
    }
}

#[test]
fn a_conversation_error_or_a_null_reply_fails_closed() {
    let (dir, sandbox, _) = setup("");
    for reply in [Reply::ConvError, Reply::Null, Reply::NoResponseArray] {
        let result = dir.authenticate("login2fa", &current_user(), &mut |_: &pam_harness::Message| reply.clone());
        assert_eq!(result.code, PAM_CONV_ERR, "{reply:?}: {}", result.text());
    }
    assert!(sandbox.requests().is_empty());
}

/// Each config error is PAM_SERVICE_ERR with no prompt, whatever failmode says.
#[test]
fn every_config_error_is_a_service_error_before_any_prompt() {
    let (sandbox, id) = sandbox();
    let user = current_user();
    let good = |dir: &TestDir, extra: &str| config_for(dir, &sandbox, &format!("\"{user}\" = {id}"), extra);
    type Breaker = fn(&TestDir, String);
    let cases: Vec<(&str, Breaker)> = vec![
        ("missing file", |dir, _| {
            let _ = std::fs::remove_file(dir.config_path());
        }),
        ("parse error", |dir, text| {
            dir.write_config(&format!("{text}\n[broken"));
        }),
        ("unknown key", |dir, text| {
            dir.write_config(&text.replace("[api]\n", "[api]\nretries = 3\n"));
        }),
        ("wrong type", |dir, text| {
            dir.write_config(&text.replace("timeout_secs = 5", "timeout_secs = \"5\""));
        }),
        ("duplicate user", |dir, text| {
            let user = current_user();
            dir.write_config(&format!("{text}\"{user}\" = 77\n"));
        }),
        ("authy id zero", |dir, text| {
            let user = current_user();
            let line = text.lines().last().unwrap_or_default().to_owned();
            dir.write_config(&text.replace(&line, &format!("\"{user}\" = 0")));
        }),
        ("plain http url", |dir, text| {
            dir.write_config(&text.replace("url = \"https://", "url = \"http://"));
        }),
        ("world-readable file with the api key", |dir, text| {
            dir.write("pam_authy.toml", &text, 0o644);
        }),
        ("group-writable file", |dir, text| {
            dir.write("pam_authy.toml", &text, 0o620);
        }),
        ("symlinked file", |dir, text| {
            let real = dir.write("real.toml", &text, 0o600);
            let _ = std::fs::remove_file(dir.config_path());
            std::os::unix::fs::symlink(real, dir.config_path()).expect("symlink");
        }),
        ("world-writable directory", |dir, text| {
            dir.write_config(&text);
            set_mode(dir.path(), 0o777);
        }),
    ];
    for (name, breaker) in cases {
        let dir = TestDir::new();
        let text = good(&dir, "[auth]\nfailmode = \"safe\"\nunmapped_users = \"ignore\"");
        breaker(&dir, text);
        dir.service("login2fa", "");
        let result = dir.authenticate("login2fa", &user, &mut answers(&[]));
        set_mode(dir.path(), 0o700);
        assert_eq!(result.code, PAM_SERVICE_ERR, "{name}: {}", result.text());
        assert!(result.transcript.is_empty(), "{name}: {}", result.text());
    }
    assert!(sandbox.requests().is_empty());
}

#[test]
fn unknown_module_arguments_are_a_service_error() {
    let (dir, sandbox, id) = setup("");
    dir.service("login2fa", "failmode=safe");
    let result = dir.authenticate("login2fa", &current_user(), &mut answer_with_token(&sandbox, id));
    assert_eq!(result.code, PAM_SERVICE_ERR, "{}", result.text());
}

#[test]
fn the_module_never_changes_pam_user() {
    let (dir, sandbox, id) = setup("");
    let result = dir.authenticate("login2fa", &current_user(), &mut answer_with_token(&sandbox, id));
    assert_eq!(result.code, PAM_SUCCESS);
    assert_eq!(result.user_after.as_deref(), Some(current_user().as_str()));
}

/// `users.d` beside the config file, private like the test dir.
fn users_d(dir: &TestDir) -> std::path::PathBuf {
    let users_d = dir.path().join(pam_authy::config::USERS_DIR);
    std::fs::create_dir(&users_d).expect("mkdir users.d");
    users_d
}

#[test]
fn a_user_mapped_in_a_users_d_drop_in_logs_in() {
    let (sandbox, id) = sandbox();
    let dir = TestDir::new();
    dir.write_config(&config_for(&dir, &sandbox, "", ""));
    let users_d = users_d(&dir);
    std::fs::write(users_d.join("10-team.toml"), format!("[users]\n\"{}\" = {id}\n", current_user())).expect("write");
    dir.service("login2fa", "");
    let result = dir.authenticate("login2fa", &current_user(), &mut answer_with_token(&sandbox, id));
    assert_eq!(result.code, PAM_SUCCESS, "{}", result.text());
    assert_eq!(result.prompts(), vec![pam_authy::flow::TOKEN_PROMPT]);
}

#[test]
fn a_user_in_two_files_or_an_unsafe_drop_in_is_a_service_error_before_any_prompt() {
    let (sandbox, id) = sandbox();
    let user = current_user();
    type Breaker = fn(&std::path::Path, &str);
    let cases: [(&str, Breaker); 4] = [
        ("user also in the main file", |users_d, user| {
            std::fs::write(users_d.join("team.toml"), format!("[users]\n\"{user}\" = 5\n")).expect("write");
        }),
        ("group-writable drop-in", |users_d, _| {
            std::fs::write(users_d.join("team.toml"), "[users]\nnobody = 5\n").expect("write");
            set_mode(&users_d.join("team.toml"), 0o664);
        }),
        ("world-writable users.d", |users_d, _| set_mode(users_d, 0o777)),
        ("a drop-in with [auth]", |users_d, _| {
            std::fs::write(users_d.join("team.toml"), "[auth]\nfailmode = \"safe\"\n").expect("write");
        }),
    ];
    for (name, breaker) in cases {
        let dir = TestDir::new();
        let mapping = format!("\"{user}\" = {id}");
        dir.write_config(&config_for(
            &dir,
            &sandbox,
            &mapping,
            "[auth]\nfailmode = \"safe\"\nunmapped_users = \"ignore\"",
        ));
        breaker(&users_d(&dir), &user);
        dir.service("login2fa", "");
        let result = dir.authenticate("login2fa", &user, &mut answer_with_token(&sandbox, id));
        assert_eq!(result.code, PAM_SERVICE_ERR, "{name}: {}", result.text());
        assert!(result.transcript.is_empty(), "{name}: {}", result.text());
    }
    assert!(sandbox.requests().is_empty());
}
