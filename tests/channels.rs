//! Push, SMS and voice through the built module, real libpam and the sandbox.

// Tests measure wall time against real sockets; the module's clock rule is for src/.
#![allow(clippy::disallowed_methods)]

mod common;

use authy_sandbox::{Fault, FaultScope, PushScenario, PushStatus, Sandbox};
use common::*;
use pam_harness::{Items, Message, PAM_AUTH_ERR, PAM_CONV_ERR, PAM_MAXTRIES, PAM_SUCCESS, Reply, Style};
use std::time::{Duration, Instant};

const FAST_PUSH: &str = "[auth]\npush_timeout_secs = 5\npush_poll_ms = 100";

fn setup(extra: &str, service_args: &str) -> (TestDir, Sandbox, u64) {
    let (sandbox, id) = sandbox();
    let dir = TestDir::new();
    let mapping = format!("\"{}\" = {id}", current_user());
    dir.write_config(&config_for(&dir, &sandbox, &mapping, extra));
    dir.service("svc", service_args);
    (dir, sandbox, id)
}

fn ssh_items() -> Items {
    Items { rhost: Some("203.0.113.9".into()), tty: Some("ssh".into()), ruser: None }
}

fn sudo_items() -> Items {
    Items { rhost: None, tty: Some("/dev/pts/4".into()), ruser: Some("alice".into()) }
}

/// Types `push` at the token prompt, Enter at the push prompt, then `rest` in order.
fn push_then(rest: &[&'static str]) -> impl FnMut(&Message) -> Reply {
    let mut answers = vec!["push", ""];
    answers.extend_from_slice(rest);
    let mut answers = answers.into_iter();
    move |m: &Message| {
        if m.style.is_prompt() {
            Reply::text(answers.next().unwrap_or_else(|| panic!("unexpected prompt {:?}", m.text)))
        } else {
            Reply::text("")
        }
    }
}

#[test]
fn an_approved_push_succeeds_and_carries_the_login_context() {
    let (dir, sandbox, id) = setup(FAST_PUSH, "");
    sandbox
        .set_push_scenario(FaultScope::User(id), PushScenario::AfterPolls { status: PushStatus::Approved, polls: 2 });
    let result = dir.authenticate_with("svc", &current_user(), &ssh_items(), &mut push_then(&[]));
    assert_eq!(result.code, PAM_SUCCESS, "{}", result.text());
    assert!(result.prompts()[0].contains("push, sms or call"), "{:?}", result.prompts());
    assert!(result.prompts()[1].contains("press Enter"), "{:?}", result.prompts());
    let requests = sandbox.approval_requests();
    assert_eq!(requests.len(), 1);
    let details = &requests[0].details;
    assert_eq!(details.get("User").map(String::as_str), Some(current_user().as_str()));
    assert_eq!(details.get("Service").map(String::as_str), Some("svc"));
    assert_eq!(details.get("From").map(String::as_str), Some("203.0.113.9"));
    assert_eq!(details.get("TTY").map(String::as_str), Some("ssh"));
    let host = nix::unistd::gethostname().expect("hostname").to_string_lossy().into_owned();
    assert_eq!(details.get("Host"), Some(&host));
    assert!(requests[0].message.contains(&host), "{}", requests[0].message);
    assert_eq!(requests[0].seconds_to_expire, 5);
}

#[test]
fn denied_and_expired_pushes_fail() {
    for status in [PushStatus::Denied, PushStatus::Expired] {
        let (dir, sandbox, id) = setup(&format!("{FAST_PUSH}\nmax_tries = 1"), "");
        sandbox.set_push_scenario(FaultScope::User(id), PushScenario::AfterPolls { status, polls: 1 });
        let result = dir.authenticate_with("svc", &current_user(), &ssh_items(), &mut push_then(&[]));
        assert_eq!(result.code, PAM_MAXTRIES, "{status:?}: {}", result.text());
        let why = if status == PushStatus::Denied { "The push was denied." } else { "The push expired." };
        let last = result.transcript.last().expect("a last message");
        assert_eq!((last.style, last.text.as_str()), (Style::ErrorMsg, &*format!("{why} No tries left.")));
    }
}

#[test]
fn an_unanswered_push_fails_at_the_local_deadline() {
    let (dir, sandbox, id) = setup(&format!("{FAST_PUSH}\nmax_tries = 1"), "method=push");
    sandbox.set_push_scenario(FaultScope::User(id), PushScenario::Never);
    let started = Instant::now();
    let result = dir.authenticate_with("svc", &current_user(), &sudo_items(), &mut answers(&[]));
    let waited = started.elapsed();
    assert_eq!(result.code, PAM_MAXTRIES, "{}", result.text());
    assert!(waited >= Duration::from_secs(5) && waited < Duration::from_secs(8), "{waited:?}");
    assert!(result.text().contains("Waiting for approval"), "{}", result.text());
    assert!(
        result.text().ends_with("ErrorMsg: The push was not approved in time. No tries left.\n"),
        "{}",
        result.text()
    );
}

#[test]
fn an_approval_reported_for_another_uuid_is_refused() {
    let (dir, sandbox, id) = setup(FAST_PUSH, "");
    let mut answers = vec!["push", ""].into_iter();
    let result = dir.authenticate_with("svc", &current_user(), &ssh_items(), &mut |m: &Message| {
        if m.text.contains("press Enter") {
            let body = r#"{"approval_request":{"status":"approved","uuid":"00000000-0000-4000-8000-000000000000"},"success":true}"#;
            sandbox.set_fault(FaultScope::User(id), Some(Fault::Body(200, body.into())));
        }
        if m.style.is_prompt() { Reply::text(answers.next().expect("prompt")) } else { Reply::text("") }
    });
    assert_eq!(result.code, PAM_AUTH_ERR, "{}", result.text());
}

#[test]
fn a_denied_autopush_falls_back_to_the_prompt() {
    let (dir, sandbox, id) = setup(FAST_PUSH, "method=push");
    sandbox.set_push_scenario(FaultScope::User(id), PushScenario::AfterPolls { status: PushStatus::Denied, polls: 1 });
    let result = dir.authenticate_with("svc", &current_user(), &sudo_items(), &mut answer_with_token(&sandbox, id));
    assert_eq!(result.code, PAM_SUCCESS, "{}", result.text());
    assert!(result.text().contains("denied"), "{}", result.text());
    assert_eq!(sandbox.approval_requests().len(), 1);
}

#[test]
fn sms_and_call_send_with_force_and_their_code_verifies() {
    for word in ["sms", "CALL"] {
        let (dir, sandbox, id) = setup("", "");
        let result = dir.authenticate("svc", &current_user(), &mut word_then_token(word, &sandbox, id));
        assert_eq!(result.code, PAM_SUCCESS, "{word}: {}", result.text());
        let path = format!("/protected/json/{}/{id}", word.to_lowercase());
        let sent = sandbox.requests().into_iter().find(|r| r.route_path == path).expect("channel request");
        assert!(sent.query.contains(&("force".to_owned(), "true".to_owned())), "{sent:?}");
        let info: Vec<&Message> = result.transcript.iter().filter(|m| m.style == Style::TextInfo).collect();
        assert!(info.iter().any(|m| m.text.contains("XXX")), "{}", result.text());
    }
}

#[test]
fn disabled_sms_is_reported_and_the_user_can_still_type_a_token() {
    let (dir, sandbox, id) = setup("[auth]\nfailmode = \"safe\"", "");
    sandbox.set_sms_enabled(false);
    let result = dir.authenticate("svc", &current_user(), &mut word_then_token("sms", &sandbox, id));
    assert_eq!(result.code, PAM_SUCCESS, "{}", result.text());
    assert!(result.text().contains("could not be sent"), "{}", result.text());
}

#[test]
fn a_conversation_error_while_waiting_for_a_push_fails_closed() {
    let (dir, sandbox, id) = setup(FAST_PUSH, "method=push");
    sandbox.set_push_scenario(FaultScope::User(id), PushScenario::Never);
    let result = dir.authenticate_with("svc", &current_user(), &sudo_items(), &mut |m: &Message| {
        if m.text.contains("Waiting for approval") { Reply::ConvError } else { Reply::text("") }
    });
    assert_eq!(result.code, PAM_CONV_ERR, "{}", result.text());
}

#[test]
fn server_text_reaches_the_terminal_without_escape_sequences() {
    let (dir, sandbox, id) = setup("", "");
    let hostile =
        r#"{"success":true,"message":"SMS token was sent","cellphone":"+1-XXX\u001b[2J\u001b]0;pwned\u0007-XX85"}"#;
    sandbox.set_fault(FaultScope::User(id), Some(Fault::Body(200, hostile.into())));
    let mut asked = 0;
    let result = dir.authenticate("svc", &current_user(), &mut |m: &Message| {
        if !m.style.is_prompt() {
            return Reply::text("");
        }
        asked += 1;
        if asked == 1 { Reply::text("sms") } else { Reply::ConvError }
    });
    assert_eq!(result.code, PAM_CONV_ERR);
    for message in &result.transcript {
        assert!(!message.text.chars().any(|c| c.is_control() && c != '\n'), "{:?}", message.text);
    }
    assert!(result.text().contains("+1-XXX[2J]0;pwned-XX85"), "{}", result.text());
}

/// How long an approval takes to become PAM_SUCCESS (printed; asserted loosely).
#[test]
fn an_approval_turns_into_success_within_one_poll_interval() {
    let (dir, sandbox, _) = setup("[auth]\npush_timeout_secs = 20\npush_poll_ms = 200", "method=push");
    let sandbox = std::sync::Arc::new(sandbox);
    let approver = {
        let sandbox = sandbox.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(request) = sandbox.approval_requests().first() {
                    std::thread::sleep(Duration::from_millis(300));
                    assert!(sandbox.decide_push(&request.uuid, PushStatus::Approved));
                    return Instant::now();
                }
                assert!(Instant::now() < deadline, "no approval request seen");
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let result = dir.authenticate_with("svc", &current_user(), &sudo_items(), &mut answers(&[]));
    let returned = Instant::now();
    let approved_at = approver.join().expect("approver");
    assert_eq!(result.code, PAM_SUCCESS, "{}", result.text());
    let latency = returned - approved_at;
    eprintln!("push approval -> PAM_SUCCESS: {latency:?} (poll interval 200 ms)");
    assert!(latency < Duration::from_millis(1500), "{latency:?}");
}
