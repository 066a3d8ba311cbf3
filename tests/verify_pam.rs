//! The Verify backend through the built module, real libpam and the sandbox's Verify API:
//! each row of README's Verify table, and the adversarial classes of the Authy backend
//! (lying replies, replies about another SID, redirects and HTML, untrusted TLS, replay).

// Tests measure wall time against real sockets; the module's clock rule is for src/.
#![allow(clippy::disallowed_methods)]

mod common;

use authy_sandbox::{Fault, FaultScope, PushScenario, PushStatus, Sandbox, SandboxConfig};
use common::*;
use pam_harness::{
    AuthResult, Message, PAM_AUTH_ERR, PAM_AUTHINFO_UNAVAIL, PAM_MAXTRIES, PAM_SERVICE_ERR, PAM_SUCCESS, Reply,
};

/// A sandbox with one entity holding a verified TOTP factor and a push factor.
struct Verify {
    dir: TestDir,
    sandbox: Sandbox,
    totp: String,
    push: String,
}

impl Verify {
    fn new() -> Verify {
        let sandbox =
            Sandbox::start(SandboxConfig { api_key: API_KEY.into(), ..SandboxConfig::default() }).expect("sandbox");
        let VerifyFactors { totp, push } = VerifyFactors::new(&sandbox);
        Verify { dir: TestDir::new(), sandbox, totp, push }
    }

    /// Writes the config: `fields` of the user's entry after verify_identity, `extra` TOML
    /// tables (with their headers) after [verify], and `url` instead of the sandbox's.
    fn config_at(&self, url: &str, fields: &str, extra: &str) {
        let text = verify_config_for(&self.dir, &self.sandbox, fields, extra);
        self.dir.write_config(&text.replace(&self.sandbox.url(), url));
        self.dir.service("svc", "");
        self.dir.service("svc2", "");
    }

    fn config(&self, fields: &str, extra: &str) {
        let extra = format!("[offline]\nstate_dir = \"{}\"\n{extra}", self.dir.state_dir().display());
        self.config_at(&self.sandbox.url(), fields, &extra);
    }

    fn all_factors(&self) -> String {
        VerifyFactors { totp: self.totp.clone(), push: self.push.clone() }.all()
    }

    fn totp_only(&self) -> String {
        format!("totp_factor = \"{}\"", self.totp)
    }

    fn code(&self) -> String {
        self.sandbox.verify_current_code(&self.totp).expect("code")
    }

    fn login(&self, service: &str, responder: &mut dyn FnMut(&Message) -> Reply) -> AuthResult {
        self.dir.authenticate(service, &current_user(), responder)
    }
}

/// Types `word`, then the code the sandbox sent for the latest verification.
fn word_then_sent_code<'a>(word: &'a str, sandbox: &'a Sandbox) -> impl FnMut(&Message) -> Reply + 'a {
    let mut asked = 0;
    move |m: &Message| {
        if !m.style.is_prompt() {
            return Reply::text("");
        }
        asked += 1;
        if asked == 1 {
            Reply::text(word)
        } else {
            Reply::Text(sandbox.verify_sent_codes().last().expect("a sent code").code.clone())
        }
    }
}

#[test]
fn a_totp_code_verifies_and_the_prompt_names_only_the_users_words() {
    let verify = Verify::new();
    verify.config(&verify.totp_only(), "");
    let code = verify.code();
    let result = verify.login("svc", &mut answers(&[&code]));
    assert_eq!(result.code, PAM_SUCCESS, "{}", result.text());
    assert_eq!(result.prompts(), ["Verification code: "]);
    verify.config(&verify.all_factors(), "");
    let result = verify.login("svc", &mut answers(&["000000", "000001", "000002"]));
    assert_eq!(result.code, PAM_MAXTRIES, "{}", result.text());
    assert_eq!(result.prompts()[0], "Verification code (or type sms, call or push): ");
}

#[test]
fn a_totp_code_accepted_once_is_refused_to_the_next_login_of_another_service() {
    let verify = Verify::new();
    verify.config(&verify.totp_only(), "[auth]\nmax_tries = 1");
    let code = verify.code();
    assert_eq!(verify.login("svc", &mut answers(&[&code])).code, PAM_SUCCESS);
    let challenges = verify.sandbox.verify_challenges().len();
    let result = verify.login("svc2", &mut answers(&[&code]));
    assert_eq!(result.code, PAM_MAXTRIES, "{}", result.text());
    assert_eq!(last_message(&result), "That code was already used; wait for the next one. No tries left.");
    assert_eq!(verify.sandbox.verify_challenges().len(), challenges, "the replayed code reached the API");
    let state = std::fs::read_dir(verify.dir.state_dir()).expect("state dir");
    for entry in state.flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        assert!(!text.contains(&code), "{} holds the code", entry.path().display());
    }
}

#[test]
fn sms_and_call_codes_are_checked_against_that_very_verification() {
    for word in ["sms", "call"] {
        let verify = Verify::new();
        verify.config(&verify.all_factors(), "");
        let result = verify.login("svc", &mut word_then_sent_code(word, &verify.sandbox));
        assert_eq!(result.code, PAM_SUCCESS, "{word}: {}", result.text());
        let sent = verify.sandbox.verify_sent_codes();
        assert_eq!(sent.len(), 1);
        assert_eq!((sent[0].to.as_str(), sent[0].channel.as_str()), (VERIFY_PHONE, word));
        assert!(!result.text().contains(VERIFY_PHONE), "the full number was shown: {}", result.text());
    }
}

#[test]
fn a_used_verification_code_is_a_failed_try_never_a_success() {
    let verify = Verify::new();
    verify.config(&format!("phone = \"{VERIFY_PHONE}\""), "[auth]\nmax_tries = 2");
    let mut asked = 0;
    let mut first_code = String::new();
    let sandbox = &verify.sandbox;
    let result = verify.login("svc", &mut |m: &Message| {
        if !m.style.is_prompt() {
            return Reply::text("");
        }
        asked += 1;
        match asked {
            1 => Reply::text("sms"),
            _ => {
                if first_code.is_empty() {
                    first_code = sandbox.verify_sent_codes().last().expect("sent").code.clone();
                }
                Reply::Text(first_code.clone())
            }
        }
    });
    assert_eq!(result.code, PAM_SUCCESS, "{}", result.text());
    let result = verify.login("svc", &mut answers(&[&first_code, &first_code]));
    assert_ne!(result.code, PAM_SUCCESS, "a code of a used verification passed: {}", result.text());
    assert_eq!(
        last_message(&result),
        "That code can no longer be checked (it expired or was used); ask for a new one. No tries left."
    );
}

/// The text of the last message the module sent.
fn last_message(result: &AuthResult) -> &str {
    result.transcript.last().map_or("", |m| m.text.as_str())
}

#[test]
fn too_many_wrong_checks_are_explained_and_end_the_login() {
    let verify = Verify::new();
    verify.config(&format!("phone = \"{VERIFY_PHONE}\""), "[auth]\nmax_tries = 10");
    let wrong = ["sms", "000000", "000000", "000000", "000000", "000000", "000000", "000000"];
    let result = verify.login("svc", &mut answers(&wrong));
    assert_eq!(result.code, PAM_AUTH_ERR, "{}", result.text());
    assert!(result.text().contains("Too many attempts"), "{}", result.text());
    assert!(result.prompts().len() < wrong.len(), "the module kept asking after the limit");
}

#[test]
fn a_push_is_approved_only_by_its_own_challenge() {
    let verify = Verify::new();
    verify.config(&verify.all_factors(), "[auth]\npush_timeout_secs = 5\npush_poll_ms = 100");
    verify
        .sandbox
        .set_push_scenario(FaultScope::Verify, PushScenario::AfterPolls { status: PushStatus::Approved, polls: 2 });
    let result = verify.login("svc", &mut answers(&["push", ""]));
    assert_eq!(result.code, PAM_SUCCESS, "{}", result.text());
    let challenges = verify.sandbox.verify_challenges();
    assert_eq!(challenges.len(), 1);
    assert_eq!((challenges[0].factor_sid.as_str(), challenges[0].factor_type.as_str()), (verify.push.as_str(), "push"));
    assert!(challenges[0].message.as_deref().is_some_and(|m| m.contains(" as ")), "{:?}", challenges[0]);
    assert!(challenges[0].fields.iter().any(|(label, _)| label == "User"), "{:?}", challenges[0].fields);
    assert_eq!(challenges[0].hidden_details, None, "the login context is sent once, visibly");
    verify
        .sandbox
        .set_push_scenario(FaultScope::Verify, PushScenario::AfterPolls { status: PushStatus::Denied, polls: 1 });
    verify.config(&verify.all_factors(), "[auth]\npush_timeout_secs = 5\npush_poll_ms = 100\nmax_tries = 1");
    let result = verify.login("svc", &mut answers(&["push", ""]));
    assert_eq!(result.code, PAM_MAXTRIES, "{}", result.text());
    assert_eq!(last_message(&result), "The push was denied. No tries left.");
}

#[test]
fn bad_credentials_are_a_service_error() {
    let verify = Verify::new();
    verify.config(&verify.totp_only(), "");
    let config = verify.dir.config_path();
    let text = std::fs::read_to_string(&config).expect("config");
    let secret = verify.sandbox.verify_account().api_key_secret;
    verify.dir.write_config(&text.replace(&secret, "wrong-secret-0123456789"));
    let code = verify.code();
    let result = verify.login("svc", &mut answers(&[&code]));
    assert_eq!(result.code, PAM_SERVICE_ERR, "{}", result.text());
}

#[test]
fn an_unreachable_api_follows_failmode_and_the_offline_fallback_exactly_as_authy() {
    let verify = Verify::new();
    let down = format!("https://127.0.0.1:{}", closed_port());
    let state = format!("[offline]\nstate_dir = \"{}\"\n", verify.dir.state_dir().display());
    verify.config_at(&down, &verify.totp_only(), &state);
    // The code, then Enter at the notice that the API cannot be reached (a prompt under sshd).
    let result = verify.login("svc", &mut answers(&["123456", ""]));
    assert_eq!(result.code, PAM_AUTHINFO_UNAVAIL, "{}", result.text());
    verify.config_at(&down, &verify.totp_only(), &format!("[auth]\nfailmode = \"safe\"\n{state}"));
    // Another code: the first stays claimed, as Verify may have accepted it.
    let result = verify.login("svc", &mut answers(&["123457"]));
    assert_eq!(result.code, PAM_SUCCESS, "{}", result.text());
}

/// Every prompt and message a Verify user can read through the module: the code prompt,
/// an invalid answer, a wrong code, an SMS, a push that could not be sent, the unreachable
/// API and the offline prompt. None says "Authy" or "token".
#[test]
fn nothing_a_verify_user_reads_names_authy() {
    let verify = Verify::new();
    verify.config(&verify.all_factors(), "[auth]\nmax_tries = 5");
    let mut transcript = String::new();
    let result = verify.login("svc", &mut answers(&["abc", "000000", "sms", "000001", "000002", "000003"]));
    assert_eq!(result.code, PAM_MAXTRIES, "{}", result.text());
    transcript.push_str(&result.text());
    verify.sandbox.set_fault(FaultScope::Verify, Some(Fault::Status(503)));
    verify.config(&verify.all_factors(), "[auth]\nmax_tries = 1");
    let result = verify.login("svc", &mut answers(&["push", "000000", ""]));
    transcript.push_str(&result.text());
    verify.sandbox.set_fault(FaultScope::Verify, None);
    let down = format!("https://127.0.0.1:{}", closed_port());
    let offline = format!("[auth]\nmax_tries = 1\n[offline]\nstate_dir = \"{}\"\n", verify.dir.state_dir().display());
    verify.config_at(&down, &verify.totp_only(), &offline);
    let result = verify.login("svc", &mut answers(&["123456", ""]));
    assert_eq!(result.code, PAM_AUTHINFO_UNAVAIL, "{}", result.text());
    transcript.push_str(&result.text());
    let with_offline = format!("{}, offline_secret = \"JBSWY3DPEHPK3PXPJBSWY3DP\"", verify.totp_only());
    verify.config_at(&down, &with_offline, &offline);
    let result = verify.login("svc", &mut answers(&["123457", "000000"]));
    transcript.push_str(&result.text());
    for expected in [
        "Verification code (or type sms, call or push): ",
        "Invalid code: type the 6 to 8 digits from your authenticator app or message, or sms, call or push.",
        "Wrong code.",
        "SMS sent to +1********67; type the code you receive.",
        "The push could not be sent; type a code from your authenticator app instead.",
        "The verification service cannot be reached; try again later (press Enter): ",
        "The verification service cannot be reached. Offline code",
    ] {
        assert!(transcript.contains(expected), "{expected:?} not in {transcript}");
    }
    assert!(!transcript.contains("Authy") && !transcript.contains("token"), "{transcript}");
}

#[test]
fn lying_replies_and_transport_tricks_never_pass() {
    let verify = Verify::new();
    verify.config(&verify.totp_only(), "[auth]\nmax_tries = 1");
    let account = verify.sandbox.verify_account();
    let other_factor = "YFfedcba9876543210fedcba9876543210";
    let lie = |factor: &str, identity: &str, service: &str, factor_type: &str| {
        format!(
            "{{\"sid\":\"YC0123456789abcdef0123456789abcdef\",\"service_sid\":\"{service}\",\"identity\":\"{identity}\",\
             \"factor_sid\":\"{factor}\",\"factor_type\":\"{factor_type}\",\"status\":\"approved\",\"expiration_date\":null}}"
        )
    };
    let faults = [
        Fault::Body(201, lie(other_factor, VERIFY_IDENTITY, &account.service_sid, "totp")),
        Fault::Body(201, lie(&verify.totp, "aaaaaaaa-bbbb", &account.service_sid, "totp")),
        Fault::Body(201, lie(&verify.totp, VERIFY_IDENTITY, "VAfedcba9876543210fedcba9876543210", "totp")),
        Fault::Body(201, lie(&verify.totp, VERIFY_IDENTITY, &account.service_sid, "push")),
        Fault::Body(200, lie(&verify.totp, VERIFY_IDENTITY, &account.service_sid, "totp")),
        Fault::Body(
            201,
            lie(&verify.totp, VERIFY_IDENTITY, &account.service_sid, "totp")
                .replace("\"status\":\"approved\"", "\"status\":\"pending\",\"status\":\"approved\""),
        ),
        Fault::Html,
        Fault::InvalidJson,
        Fault::Redirect(format!("{}/v2/elsewhere", verify.sandbox.url())),
    ];
    // A code per fault: a code sent to a lying service stays claimed.
    for (fault, code) in faults.into_iter().zip(123_456..) {
        verify.sandbox.set_fault(FaultScope::Verify, Some(fault.clone()));
        let result = verify.login("svc", &mut answers(&[&code.to_string()]));
        assert_eq!(result.code, PAM_AUTH_ERR, "{fault:?}: {}", result.text());
    }
    verify.sandbox.set_fault(FaultScope::Verify, None);
    // Without the sandbox CA the certificate is untrusted: TLS failure, never failmode.
    let text = std::fs::read_to_string(verify.dir.config_path()).expect("config");
    let untrusted: String = text.lines().filter(|l| !l.starts_with("ca_file")).map(|l| format!("{l}\n")).collect();
    verify.dir.write_config(&untrusted.replace("[auth]", "[auth]\nfailmode = \"safe\""));
    let code = verify.code();
    let result = verify.login("svc", &mut answers(&[&code]));
    assert_eq!(result.code, PAM_AUTH_ERR, "{}", result.text());
}

#[test]
fn a_user_without_an_authy_id_under_the_authy_backend_is_a_service_error() {
    let verify = Verify::new();
    verify.config(&verify.totp_only(), "");
    let text = std::fs::read_to_string(verify.dir.config_path()).expect("config");
    verify.dir.write_config(&text.replace("backend = \"verify\"", "backend = \"authy\"\napi_key = \"k\""));
    let result = verify.login("svc", &mut answers(&["123456"]));
    assert_eq!(result.code, PAM_SERVICE_ERR, "{}", result.text());
}
