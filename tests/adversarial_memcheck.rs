//! The memory-safety run of the adversarial suite: one test that drives the built module
//! through libpam along every main path (token right and wrong, push, SMS, offline code,
//! conversation faults, a 1 MB reply, a hostile reply, a config error). `cargo test` runs it
//! as an ordinary test; `scripts/adversarial-ci` runs this binary under valgrind memcheck,
//! which fails on any invalid read or write, use of uninitialised memory or bad free in
//! libpam, the module or the harness.

#![allow(clippy::disallowed_methods)]

mod common;

use authy_sandbox::{Fault, FaultScope, PushScenario, PushStatus};
use common::*;
use pam_authy::offline::{OfflineParams, code_at};
use pam_authy::secret::Secret;
use pam_harness::{Message, PAM_AUTH_ERR, PAM_CONV_ERR, PAM_MAXTRIES, PAM_SERVICE_ERR, PAM_SUCCESS, Reply};

const SEED: &str = "JBSWY3DPEHPK3PXP";

#[test]
fn every_main_path_through_libpam_and_the_module() {
    let user = current_user();
    let (sandbox, id) = sandbox();
    let fast = "[auth]\nmax_tries = 2\npush_timeout_secs = 5\npush_poll_ms = 100";
    let dir = TestDir::new();
    dir.write_config(&config_for(&dir, &sandbox, &format!("\"{user}\" = {id}"), fast));
    dir.service("svc", "debug");

    let result = dir.authenticate("svc", &user, &mut answer_with_token(&sandbox, id));
    assert_eq!(result.code, PAM_SUCCESS, "token: {}", result.text());
    let result = dir.authenticate("svc", &user, &mut answers(&["0000000", "../sms"]));
    assert_eq!(result.code, PAM_MAXTRIES, "wrong tokens: {}", result.text());

    sandbox
        .set_push_scenario(FaultScope::User(id), PushScenario::AfterPolls { status: PushStatus::Approved, polls: 2 });
    let result = dir.authenticate("svc", &user, &mut answers(&["push", ""]));
    assert_eq!(result.code, PAM_SUCCESS, "push: {}", result.text());

    let mut asked = 0;
    let result = dir.authenticate("svc", &user, &mut |m: &Message| {
        if !m.style.is_prompt() {
            return Reply::text("");
        }
        asked += 1;
        if asked == 1 { Reply::text("sms") } else { Reply::text("1111111") }
    });
    assert_eq!(result.code, PAM_MAXTRIES, "sms: {}", result.text());

    for reply in [Reply::ConvError, Reply::Null, Reply::NoResponseArray, Reply::Text("7".repeat(1 << 20))] {
        let code = dir.authenticate("svc", &user, &mut |_: &Message| reply.clone()).code;
        assert!(code == PAM_CONV_ERR || code == PAM_MAXTRIES, "{code}");
    }

    let hostile = "{\"token\":\"is valid\",\"success\":true,\"token\":\"is valid\",\"m\":\"\\u001b[2J\"}";
    sandbox.set_fault(FaultScope::User(id), Some(Fault::Body(200, hostile.into())));
    let result = dir.authenticate("svc", &user, &mut answers(&["1234567"]));
    assert_eq!(result.code, PAM_AUTH_ERR, "hostile reply: {}", result.text());
    sandbox.set_fault(FaultScope::User(id), None);

    let offline = TestDir::new();
    let text = offline_config(&offline, &sandbox, id, SEED, &offline.state_dir(), "", "");
    offline.write_config(&text);
    offline.service("svc", "debug");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs();
    let params = OfflineParams { digits: 6, period_secs: 30, skew_steps: 1 };
    let code = code_at(&Secret::from(SEED), now, &params).expect("code").expose().to_owned();
    let result = offline.authenticate("svc", &user, &mut |m: &Message| {
        if m.text.contains("Offline code") { Reply::Text(code.clone()) } else { Reply::text("1234567") }
    });
    assert_eq!(result.code, PAM_SUCCESS, "offline: {}", result.text());

    let broken = TestDir::new();
    broken.write_config("[api]\napi_key = \"unterminated\n");
    broken.service("svc", "debug");
    assert_eq!(broken.authenticate("svc", &user, &mut answers(&[])).code, PAM_SERVICE_ERR);
}
