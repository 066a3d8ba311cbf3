//! Classes 1, 10 and 11 of the adversarial suite: what the user types and what the
//! application answers never reaches a URL unless it is a token, conversation faults fail
//! closed, and server or login text reaches no terminal with its escape sequences.
//!
//! The 2015 Authy bypass: a "token" of `../sms` made the client call `/verify/../sms/{id}`,
//! which the server normalised to `/sms/{id}`, whose 200 `success: true` the client took for
//! a verified token. The sandbox here runs in the same dot-segment-normalising mode, and
//! records every request: the proof is that none was sent.

#![allow(clippy::disallowed_methods)]

mod common;

use authy_sandbox::{Fault, FaultScope, PushScenario, Sandbox, SandboxConfig};
use common::*;
use pam_harness::{Items, Message, PAM_CONV_ERR, PAM_MAXTRIES, PAM_SUCCESS, Reply};

fn normalising_sandbox() -> (Sandbox, u64) {
    sandbox_with(SandboxConfig { api_key: API_KEY.into(), normalize_dot_segments: true, ..SandboxConfig::default() })
}

fn setup(sandbox: &Sandbox, id: u64, extra: &str, args: &str) -> TestDir {
    let dir = TestDir::new();
    dir.write_config(&config_for(&dir, sandbox, &format!("\"{}\" = {id}", current_user()), extra));
    dir.service("svc", args);
    dir
}

/// Path, query and fragment characters, percent-encoding, dot segments, non-ASCII digits,
/// signs, white space inside, control characters, overlong input.
fn hostile_tokens() -> Vec<String> {
    let mut list: Vec<String> = [
        "../sms",
        "../sms/..",
        "..",
        ".",
        "1234567/../../sms",
        "../../protected/json/sms",
        "1234567/..",
        "..%2Fsms",
        "%2e%2e%2fsms",
        "%2E%2E/sms",
        "1234567%2F..%2Fsms",
        "%31%32%33%34%35%36%37",
        "1234567?force=false",
        "1234567?",
        "1234567#",
        "1234567#../sms",
        "1234567;x=1",
        "1234567/",
        "/1234567",
        "\\..\\sms",
        "1234567\\",
        "1234567&api_key=x",
        "１２３４５６７",
        "١٢٣٤٥٦٧",
        "۱۲۳۴۵۶۷",
        "१२३४५६७",
        "¹²³⁴⁵⁶⁷",
        "1234567\u{200b}",
        "\u{feff}1234567",
        "+1234567",
        "-1234567",
        "1234567.0",
        "1e6",
        "0x12345",
        "12 34567",
        "1234567\r\nX-Injected: 1",
        "1234567\n",
        "1234567\u{1b}[A",
        "123456789",
        "12345",
        "",
        " ",
        "sms/../verify",
        "push?x",
        "call#",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    list.push(format!("1234567{}", "0".repeat(1000)));
    list.push("9".repeat(400));
    list
}

#[test]
fn hostile_tokens_are_refused_before_any_request_even_by_a_normalising_server() {
    let (sandbox, id) = normalising_sandbox();
    let dir = setup(&sandbox, id, "[auth]\nmax_tries = 1\nfailmode = \"safe\"", "");
    for token in hostile_tokens() {
        let result = dir.authenticate("svc", &current_user(), &mut answers(&[&token]));
        assert_eq!(result.code, PAM_MAXTRIES, "{token:?}: {} {}", result.name(), result.text());
        assert!(sandbox.requests().is_empty(), "{token:?} reached the server: {:?}", sandbox.requests());
    }
    // Control: the same server and config verify a real token, and the request is recorded.
    let result = dir.authenticate("svc", &current_user(), &mut answer_with_token(&sandbox, id));
    assert_eq!(result.code, PAM_SUCCESS, "control: {}", result.text());
    let requests = sandbox.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].raw_path, requests[0].route_path);
    assert!(requests[0].raw_path.starts_with("/protected/json/verify/"), "{requests:?}");
}

/// The same inputs at the push prompt (sshd: the push notice is a prompt, and text typed
/// there is treated as a token).
#[test]
fn hostile_text_typed_at_the_push_prompt_never_reaches_the_server() {
    let (sandbox, id) = normalising_sandbox();
    let dir = setup(&sandbox, id, "[auth]\nmax_tries = 1\npush_timeout_secs = 5\npush_poll_ms = 100", "method=push");
    sandbox.set_push_scenario(FaultScope::User(id), PushScenario::Never);
    for token in ["../sms", "1234567/../../sms", "%2e%2e%2fsms", "１２３４５６７"] {
        sandbox.clear_requests();
        let result = dir.authenticate("svc", &current_user(), &mut answers(&[token]));
        assert_eq!(result.code, PAM_MAXTRIES, "{token:?}: {}", result.text());
        let paths: Vec<String> = sandbox.requests().into_iter().map(|r| r.raw_path).collect();
        assert_eq!(paths.len(), 1, "{token:?}: only the approval request may be sent: {paths:?}");
        assert!(paths[0].starts_with("/onetouch/json/users/"), "{paths:?}");
    }
}

/// Class 10: a reply of 1 MB is refused whole (and never trimmed into a token), a NULL reply
/// or a conversation error ends the login with PAM_CONV_ERR and no request.
#[test]
fn a_one_megabyte_reply_is_refused_whole_and_sends_nothing() {
    let (sandbox, id) = normalising_sandbox();
    let dir = setup(&sandbox, id, "[auth]\nmax_tries = 1", "");
    let token = sandbox.current_token(id).expect("token");
    for reply in
        [format!("{token}{}", " ".repeat(1 << 20)), format!("{}{token}", "\t".repeat(1 << 20)), "7".repeat(1 << 20)]
    {
        let result = dir.authenticate("svc", &current_user(), &mut answers(&[&reply]));
        assert_eq!(result.code, PAM_MAXTRIES, "{}", result.text());
    }
    assert!(sandbox.requests().is_empty(), "{:?}", sandbox.requests());
}

#[test]
fn conversation_faults_at_every_prompt_fail_closed() {
    let (sandbox, id) = normalising_sandbox();
    let dir = setup(&sandbox, id, "[auth]\npush_timeout_secs = 5\npush_poll_ms = 100", "");
    sandbox.set_push_scenario(FaultScope::User(id), PushScenario::Never);
    for fault in [Reply::ConvError, Reply::Null, Reply::NoResponseArray] {
        // At the token prompt.
        let result = dir.authenticate("svc", &current_user(), &mut |_: &Message| fault.clone());
        assert_eq!(result.code, PAM_CONV_ERR, "{fault:?}: {}", result.text());
        // Mid-push: `push` typed, then the fault at the push prompt (sshd style).
        let mut first = true;
        let result = dir.authenticate("svc", &current_user(), &mut |m: &Message| {
            if m.style.is_prompt() && std::mem::take(&mut first) { Reply::text("push") } else { fault.clone() }
        });
        assert_eq!(result.code, PAM_CONV_ERR, "{fault:?} at the push prompt: {}", result.text());
    }
    let verified = sandbox.requests().iter().filter(|r| r.route_path.contains("/verify/")).count();
    assert_eq!(verified, 0);
}

/// Mid-push abort outside sshd (sudo): the application fails the conversation at the
/// "Waiting for approval" notice, and an approval arriving afterwards changes nothing.
#[test]
fn an_approval_after_a_mid_push_abort_changes_nothing() {
    let (sandbox, id) = normalising_sandbox();
    let dir = setup(&sandbox, id, "[auth]\npush_timeout_secs = 8\npush_poll_ms = 100", "method=push");
    sandbox.set_push_scenario(FaultScope::User(id), PushScenario::Manual);
    let items = Items { rhost: None, tty: Some("/dev/pts/3".into()), ruser: Some("alice".into()) };
    let result = dir.authenticate_with("svc", &current_user(), &items, &mut |m: &Message| {
        if m.text.contains("Waiting for approval") { Reply::ConvError } else { Reply::text("") }
    });
    assert_eq!(result.code, PAM_CONV_ERR, "{}", result.text());
    let uuid = sandbox.approval_requests().first().expect("approval request").uuid.clone();
    let polls = sandbox.requests().len();
    assert!(sandbox.decide_push(&uuid, authy_sandbox::PushStatus::Approved));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(sandbox.requests().len(), polls, "the module kept polling after it returned");
}

fn assert_no_control(texts: &[String], what: &str) {
    for text in texts {
        assert!(
            !text.chars().any(|c| c.is_control()
                || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')),
            "{what}: {text:?}"
        );
    }
}

/// Class 11 (duo_unix's escape-inject tests): server text (an SMS receipt's phone number, an
/// error message) reaches the terminal without escape sequences, newlines or bidi overrides.
#[test]
fn server_text_reaches_the_terminal_without_escapes() {
    let hostile = "\u{1b}]0;owned\u{7}\u{1b}[2J\u{1b}[1;1H\r\nsudo: success\u{202e}\u{9b}31m";
    let sent = format!(
        r#"{{"success":true,"message":"SMS token was sent","cellphone":{}}}"#,
        serde_json::to_string(&format!("+1-XXX{hostile}")).expect("json")
    );
    let refused = format!(
        r#"{{"message":{},"success":false,"errors":{{}},"error_code":"60003"}}"#,
        serde_json::to_string(hostile).expect("json")
    );
    for (status, body) in [(200, sent), (429, refused.clone()), (400, refused)] {
        // A fresh sandbox each time: the same token twice would be a replay.
        let (sandbox, id) = sandbox();
        let dir = setup(&sandbox, id, "", "");
        sandbox.set_fault_times(FaultScope::User(id), Fault::Body(status, body), 1);
        let result = dir.authenticate("svc", &current_user(), &mut word_then_token("sms", &sandbox, id));
        assert_eq!(result.code, PAM_SUCCESS, "{status}: {}", result.text());
        let texts: Vec<String> = result.transcript.iter().map(|m| m.text.clone()).collect();
        assert_no_control(&texts, &format!("HTTP {status}"));
        assert!(texts.iter().all(|t| !t.contains("\u{1b}")), "{texts:?}");
    }
}

/// Login text set by the application (PAM_RHOST, PAM_TTY, PAM_RUSER) reaches the user's phone
/// and the user's terminal without escapes, and cannot forge another push detail.
#[test]
fn login_text_with_escapes_reaches_the_push_request_sanitised() {
    let (sandbox, id) = sandbox();
    let dir = setup(&sandbox, id, "[auth]\npush_timeout_secs = 5\npush_poll_ms = 100", "method=push");
    sandbox.set_push_scenario(
        FaultScope::User(id),
        PushScenario::AfterPolls { status: authy_sandbox::PushStatus::Approved, polls: 1 },
    );
    let items = Items {
        rhost: Some("203.0.113.9\u{1b}[2J\nFrom: trusted-host".into()),
        tty: Some("pts/1\u{7}\u{202e}".into()),
        ruser: Some("bob\r\nUser: root".into()),
    };
    let result = dir.authenticate_with("svc", &current_user(), &items, &mut answers(&[""]));
    assert_eq!(result.code, PAM_SUCCESS, "{}", result.text());
    let request = sandbox.approval_requests().into_iter().next().expect("approval request");
    let mut texts: Vec<String> = request.details.iter().flat_map(|(k, v)| [k.clone(), v.clone()]).collect();
    texts.push(request.message.clone());
    assert_no_control(&texts, "approval request");
    assert_eq!(request.details.get("From").map(String::as_str), Some("203.0.113.9[2JFrom: trusted-host"));
    assert_no_control(&result.transcript.iter().map(|m| m.text.clone()).collect::<Vec<_>>(), "transcript");
}
