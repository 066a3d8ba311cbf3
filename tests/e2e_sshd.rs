//! End to end under the real OpenSSH: the shipped `pam.d-examples/sshd` (public key, then
//! Authy) and `sshd-password` (password, then Authy), each with its sshd_config snippet,
//! run by a real sshd on a loopback port in a private mount namespace, driven by the real
//! `ssh` client through SSH_ASKPASS, against the sandbox in this process. Root only;
//! skipped with a message otherwise. Each test has its own user, port and directories.
//!
//! The examples name the installed module and its default config; the tests change only
//! that reference (`pam_authy.so` becomes the built module plus `config=<test config>`).

#![allow(clippy::disallowed_methods)]

mod common;
mod e2e;

use authy_sandbox::{FaultScope, PushScenario, PushStatus, Sandbox};
use common::{TestDir, config_for, sandbox};
use e2e::{
    Askpass, LOGIN_MARKER, Run, Sshd, TestGroup, TestUser, explain_ssh, install_example, key_pair,
    point_break_glass_at, timed_ssh,
};
use std::path::PathBuf;

const FAST_PUSH: &str = "push_timeout_secs = 10\npush_poll_ms = 100";

/// A typo'd key: the module refuses the whole file (PAM_SERVICE_ERR) for every user.
const BROKEN_CONFIG: &str = "[auth]\nmax_tires = 3";

/// One sshd login setup. Fields drop in order: sshd first, then the user, the sandbox and
/// the directory.
struct Case {
    sshd: Sshd,
    user: TestUser,
    sandbox: Option<Sandbox>,
    id: u64,
    askpass: Askpass,
    /// The key the client offers (authorized for the user unless a test says otherwise).
    key: PathBuf,
    dir: TestDir,
}

/// The stacks, the user and the config: `users` gives the `[users]` lines for the user's
/// name and Authy ID, `extra` the other sections (`@STATE_DIR@` becomes the state dir).
struct Setup<'a> {
    pam: &'a str,
    sshd_config: &'a str,
    user: TestUser,
    authorize_key: bool,
    users: &'a dyn Fn(&str, u64) -> String,
    extra: &'a str,
}

fn mapped(user: &str, id: u64) -> String {
    format!("{user} = {id}")
}

fn nobody_mapped(_: &str, _: u64) -> String {
    String::new()
}

impl Case {
    fn start(setup: Setup<'_>) -> Case {
        let (sandbox, id) = sandbox();
        let dir = TestDir::new();
        let users = (setup.users)(&setup.user.name, id);
        let extra = setup.extra.replace("@STATE_DIR@", &dir.state_dir().display().to_string());
        dir.write_config(&config_for(&dir, &sandbox, &users, &extra));
        let pam_d = install_example(&dir, "sshd", setup.pam);
        let key = key_pair(dir.path(), "client_key");
        if setup.authorize_key {
            setup.user.authorize_key(&key.with_extension("pub"));
        }
        let sshd = Sshd::start(&dir, &pam_d, setup.sshd_config, &setup.user.name);
        let askpass = Askpass::new(&dir);
        Case { sshd, user: setup.user, sandbox: Some(sandbox), id, askpass, key, dir }
    }

    fn publickey(user: TestUser, users: &dyn Fn(&str, u64) -> String, extra: &str) -> Case {
        Case::start(Setup {
            pam: "sshd",
            sshd_config: "sshd_config-publickey.conf",
            user,
            authorize_key: true,
            users,
            extra,
        })
    }

    fn sandbox(&self) -> &Sandbox {
        self.sandbox.as_ref().expect("the sandbox is up")
    }

    fn token(&self) -> String {
        self.sandbox().current_token(self.id).expect("token")
    }

    /// A well-formed token that is not the current one.
    fn wrong_token(&self, n: u32) -> String {
        let token = self.token();
        let first = token.chars().next().and_then(|c| c.to_digit(10)).expect("digit");
        format!("{}{}", (first + n) % 10, &token[1..])
    }

    fn login(&self, test: &str) -> Run {
        timed_ssh(test, "ssh", &self.sshd, &self.user.name, &self.key, &self.askpass)
    }

    /// Everything a failed assertion should show.
    fn explain(&self, run: &Run) -> String {
        explain_ssh(run, &self.askpass, &self.sshd)
    }

    fn api_calls(&self) -> Vec<String> {
        e2e::api_calls(self.sandbox())
    }
}

fn assert_logged_in(case: &Case, run: &Run) {
    assert!(run.ok() && run.stdout.contains(LOGIN_MARKER), "the login must succeed:\n{}", case.explain(run));
}

fn assert_refused(case: &Case, run: &Run) {
    assert!(!run.ok() && !run.stdout.contains(LOGIN_MARKER), "the login must fail:\n{}", case.explain(run));
    assert!(run.stderr.contains("Permission denied"), "{}", case.explain(run));
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sshd")]
fn a_key_and_the_right_token_log_in_over_ssh() {
    if !e2e::enabled("a_key_and_the_right_token_log_in_over_ssh") {
        return;
    }
    let case = Case::publickey(TestUser::create(), &mapped, "");
    case.askpass.answer("token", &[&case.token()]);
    let run = case.login("a_key_and_the_right_token_log_in_over_ssh");
    assert_logged_in(&case, &run);
    let prompts = case.askpass.prompts();
    assert_eq!(prompts, [format!("({}@127.0.0.1) Authy token (or type push, sms or call): ", case.user.name)]);
    let log = case.sshd.log_text();
    assert!(log.contains("Partial publickey") && log.contains("Accepted keyboard-interactive/pam"), "{log}");
    let verified = case.api_calls().iter().filter(|p| p.starts_with("/protected/json/verify/")).count();
    assert_eq!(verified, 1);
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sshd")]
fn a_key_and_wrong_tokens_are_refused_after_max_tries() {
    if !e2e::enabled("a_key_and_wrong_tokens_are_refused_after_max_tries") {
        return;
    }
    let case = Case::publickey(TestUser::create(), &mapped, "");
    let wrong: Vec<String> = (1..=3).map(|n| case.wrong_token(n)).collect();
    case.askpass.answer("token", &wrong.iter().map(String::as_str).collect::<Vec<_>>());
    let run = case.login("a_key_and_wrong_tokens_are_refused_after_max_tries");
    assert_refused(&case, &run);
    let prompts = case.askpass.prompts();
    assert_eq!(prompts.len(), 3, "max_tries = 3 prompts in one keyboard-interactive round: {prompts:#?}");
    assert!(prompts[1].contains("Wrong token.\nAuthy token"), "the error rides on the next prompt: {prompts:#?}");
    assert_eq!(case.api_calls().len(), 3);
    assert!(case.sshd.log_text().contains("Failed keyboard-interactive/pam"));
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sshd")]
fn an_approved_push_logs_in_and_tells_the_phone_where_the_login_comes_from() {
    let test = "an_approved_push_logs_in_and_tells_the_phone_where_the_login_comes_from";
    if !e2e::enabled(test) {
        return;
    }
    let case = Case::publickey(TestUser::create(), &mapped, &format!("[auth]\n{FAST_PUSH}"));
    case.sandbox().set_push_scenario(
        FaultScope::User(case.id),
        PushScenario::AfterPolls { status: PushStatus::Approved, polls: 2 },
    );
    case.askpass.answer("token", &["push"]);
    case.askpass.answer("push", &[""]);
    let run = case.login(test);
    assert_logged_in(&case, &run);
    let prompts = case.askpass.prompts();
    assert_eq!(prompts.len(), 2, "{prompts:#?}");
    assert!(prompts[1].ends_with("Authy push sent: approve it on your phone, then press Enter (or type a token): "));
    let requests = case.sandbox().approval_requests();
    assert_eq!(requests.len(), 1);
    let details = &requests[0].details;
    let host = nix::unistd::gethostname().expect("hostname").to_string_lossy().into_owned();
    assert_eq!(details.get("From").map(String::as_str), Some("127.0.0.1"), "PAM_RHOST as sshd set it: {details:?}");
    assert_eq!(details.get("Service").map(String::as_str), Some("sshd"), "{details:?}");
    assert_eq!(details.get("TTY").map(String::as_str), Some("ssh"), "{details:?}");
    assert_eq!(details.get("User"), Some(&case.user.name), "{details:?}");
    assert_eq!(requests[0].message, format!("SSH login to {host} as {}", case.user.name));
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sshd")]
fn a_denied_push_is_refused() {
    if !e2e::enabled("a_denied_push_is_refused") {
        return;
    }
    let case = Case::publickey(TestUser::create(), &mapped, &format!("[auth]\n{FAST_PUSH}\nmax_tries = 1"));
    case.sandbox().set_push_scenario(
        FaultScope::User(case.id),
        PushScenario::AfterPolls { status: PushStatus::Denied, polls: 1 },
    );
    case.askpass.answer("token", &["push"]);
    case.askpass.answer("push", &[""]);
    let run = case.login("a_denied_push_is_refused");
    assert_refused(&case, &run);
    assert_eq!(case.askpass.prompts().len(), 2);
    assert_eq!(case.sandbox().approval_requests()[0].status, PushStatus::Denied);
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sshd")]
fn an_sms_code_logs_in() {
    if !e2e::enabled("an_sms_code_logs_in") {
        return;
    }
    let case = Case::publickey(TestUser::create(), &mapped, "");
    case.askpass.answer("token", &["sms", &case.token()]);
    let run = case.login("an_sms_code_logs_in");
    assert_logged_in(&case, &run);
    let prompts = case.askpass.prompts();
    assert_eq!(prompts.len(), 2, "{prompts:#?}");
    assert!(
        prompts[1].contains("SMS sent to +1-XXX-XXX-XX67; type the code you receive.\nAuthy token"),
        "sshd shows the notice with the next prompt: {prompts:#?}"
    );
    let sms = case.sandbox().requests().into_iter().find(|r| r.route_path.starts_with("/protected/json/sms/"));
    assert!(sms.is_some_and(|r| r.query.contains(&("force".into(), "true".into()))));
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sshd")]
fn a_user_outside_groups_logs_in_with_the_key_alone() {
    if !e2e::enabled("a_user_outside_groups_logs_in_with_the_key_alone") {
        return;
    }
    // Mapped, but 2FA is only for members of root's group, which the test user is not in.
    let case = Case::publickey(TestUser::create(), &mapped, "[auth]\ngroups = [\"root\"]");
    let run = case.login("a_user_outside_groups_logs_in_with_the_key_alone");
    assert_logged_in(&case, &run);
    assert!(case.askpass.prompts().is_empty(), "no prompt: {:#?}", case.askpass.prompts());
    assert!(case.api_calls().is_empty(), "no API call: {:?}", case.api_calls());
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sshd")]
fn an_unmapped_user_logs_in_with_the_key_alone_when_unmapped_users_are_ignored() {
    let test = "an_unmapped_user_logs_in_with_the_key_alone_when_unmapped_users_are_ignored";
    if !e2e::enabled(test) {
        return;
    }
    let case = Case::publickey(TestUser::create(), &nobody_mapped, "[auth]\nunmapped_users = \"ignore\"");
    let run = case.login(test);
    assert_logged_in(&case, &run);
    assert!(case.askpass.prompts().is_empty(), "no prompt: {:#?}", case.askpass.prompts());
    assert!(case.api_calls().is_empty());
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sshd")]
fn an_unmapped_user_is_refused_when_unmapped_users_are_denied() {
    let test = "an_unmapped_user_is_refused_when_unmapped_users_are_denied";
    if !e2e::enabled(test) {
        return;
    }
    let case = Case::publickey(TestUser::create(), &nobody_mapped, "");
    let run = case.login(test);
    assert_refused(&case, &run);
    assert!(case.askpass.prompts().is_empty(), "no prompt: {:#?}", case.askpass.prompts());
    assert!(case.api_calls().is_empty());
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sshd")]
fn without_the_key_no_prompt_reaches_authy() {
    if !e2e::enabled("without_the_key_no_prompt_reaches_authy") {
        return;
    }
    let mut case = Case::start(Setup {
        pam: "sshd",
        sshd_config: "sshd_config-publickey.conf",
        user: TestUser::create(),
        authorize_key: true,
        users: &mapped,
        extra: "",
    });
    // The client offers a key the server does not know.
    case.key = key_pair(case.dir.path(), "stranger_key");
    case.askpass.answer("token", &[&case.token()]);
    let run = case.login("without_the_key_no_prompt_reaches_authy");
    assert_refused(&case, &run);
    assert!(run.stderr.contains("Permission denied (publickey)"), "{}", case.explain(&run));
    assert!(case.askpass.prompts().is_empty(), "no prompt: {:#?}", case.askpass.prompts());
    assert!(case.api_calls().is_empty(), "no API call: {:?}", case.api_calls());
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sshd")]
fn the_offline_code_logs_in_while_the_sandbox_is_down() {
    if !e2e::enabled("the_offline_code_logs_in_while_the_sandbox_is_down") {
        return;
    }
    let seed = "JBSWY3DPEHPK3PXPJBSWY3DP";
    let offline_user = |user: &str, id: u64| format!("{user} = {{ authy_id = {id}, offline_secret = \"{seed}\" }}");
    let mut case = Case::publickey(TestUser::create(), &offline_user, "[offline]\nstate_dir = \"@STATE_DIR@\"");
    drop(case.sandbox.take());

    let params = pam_authy::offline::OfflineParams { digits: 6, period_secs: 30, skew_steps: 1 };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs();
    let code = pam_authy::offline::code_at(&pam_authy::secret::Secret::from(seed), now, &params).expect("code");
    case.askpass.answer("token", &["1234567"]);
    case.askpass.answer("offline", &[code.expose()]);
    let run = case.login("the_offline_code_logs_in_while_the_sandbox_is_down");
    assert_logged_in(&case, &run);
    let prompts = case.askpass.prompts();
    assert_eq!(prompts.len(), 2, "{prompts:#?}");
    assert!(prompts[1].ends_with("Authy cannot be reached. Offline code (pam_authy entry of your authenticator): "));
}

fn password_case(users: &dyn Fn(&str, u64) -> String) -> Case {
    Case::start(Setup {
        pam: "sshd-password",
        sshd_config: "sshd_config-password.conf",
        user: TestUser::with_password(),
        authorize_key: false,
        users,
        extra: "",
    })
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sshd")]
fn a_password_and_a_token_log_in_with_the_password_stack() {
    if !e2e::enabled("a_password_and_a_token_log_in_with_the_password_stack") {
        return;
    }
    let case = password_case(&mapped);
    case.askpass.answer("password", &[case.user.password()]);
    case.askpass.answer("token", &[&case.token()]);
    let run = case.login("a_password_and_a_token_log_in_with_the_password_stack");
    assert_logged_in(&case, &run);
    let prompts = case.askpass.prompts();
    assert_eq!(prompts.len(), 2, "{prompts:#?}");
    assert!(prompts[0].ends_with("Password: ") && prompts[1].contains("Authy token"), "{prompts:#?}");
    assert!(!case.sshd.log_text().contains("Partial"), "one method, keyboard-interactive, carries both");
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sshd")]
fn a_wrong_password_never_reaches_authy() {
    if !e2e::enabled("a_wrong_password_never_reaches_authy") {
        return;
    }
    let case = password_case(&mapped);
    case.askpass.answer("password", &["not-the-password"]);
    case.askpass.answer("token", &[&case.token()]);
    let run = case.login("a_wrong_password_never_reaches_authy");
    assert_refused(&case, &run);
    let prompts = case.askpass.prompts();
    assert_eq!(prompts.len(), 1, "only the password was asked: {prompts:#?}");
    assert!(case.api_calls().is_empty(), "no API call: {:?}", case.api_calls());
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sshd")]
fn an_exempt_user_logs_in_with_the_password_alone() {
    if !e2e::enabled("an_exempt_user_logs_in_with_the_password_alone") {
        return;
    }
    let case = Case::start(Setup {
        pam: "sshd-password",
        sshd_config: "sshd_config-password.conf",
        user: TestUser::with_password(),
        authorize_key: false,
        users: &nobody_mapped,
        extra: "[auth]\nunmapped_users = \"ignore\"",
    });
    case.askpass.answer("password", &[case.user.password()]);
    let run = case.login("an_exempt_user_logs_in_with_the_password_alone");
    assert_logged_in(&case, &run);
    assert_eq!(case.askpass.prompts().len(), 1, "{:#?}", case.askpass.prompts());
    assert!(case.api_calls().is_empty());
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sshd")]
fn a_break_glass_member_logs_in_with_the_key_alone_while_the_config_is_broken() {
    let test = "a_break_glass_member_logs_in_with_the_key_alone_while_the_config_is_broken";
    if !e2e::enabled(test) {
        return;
    }
    let case = Case::publickey(TestUser::create(), &mapped, BROKEN_CONFIG);
    let group = TestGroup::with_members(&[&case.user]);
    point_break_glass_at(&case.dir.confdir(), "sshd", &group);
    let run = case.login(test);
    assert_logged_in(&case, &run);
    assert!(case.askpass.prompts().is_empty(), "{:#?}", case.askpass.prompts());
    assert!(case.api_calls().is_empty(), "{:?}", case.api_calls());
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sshd")]
fn a_mapped_user_outside_the_break_glass_group_is_refused_while_the_config_is_broken() {
    let test = "a_mapped_user_outside_the_break_glass_group_is_refused_while_the_config_is_broken";
    if !e2e::enabled(test) {
        return;
    }
    let case = Case::publickey(TestUser::create(), &mapped, BROKEN_CONFIG);
    let group = TestGroup::with_members(&[]);
    point_break_glass_at(&case.dir.confdir(), "sshd", &group);
    let run = case.login(test);
    assert_refused(&case, &run);
    assert!(case.api_calls().is_empty(), "{:?}", case.api_calls());
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sshd")]
fn without_an_offline_secret_the_user_is_told_that_authy_cannot_be_reached() {
    let test = "without_an_offline_secret_the_user_is_told_that_authy_cannot_be_reached";
    if !e2e::enabled(test) {
        return;
    }
    let mut case = Case::publickey(TestUser::create(), &mapped, "");
    drop(case.sandbox.take());
    case.askpass.answer("token", &["1234567"]);
    let run = case.login(test);
    assert_refused(&case, &run);
    let prompts = case.askpass.prompts();
    assert_eq!(prompts.len(), 2, "{prompts:#?}");
    assert!(prompts[1].ends_with("Authy cannot be reached; try again later (press Enter): "), "{prompts:#?}");
}
