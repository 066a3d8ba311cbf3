//! End to end under the real sudo, su and login: the shipped `pam.d-examples/sudo` (password,
//! then Authy), `sudo-push` (password, then a push), `sudo-push-sufficient` (a push instead
//! of the password), `su` and `login`, and the Debian pam-auth-update profile as
//! pam-auth-update itself writes it into common-auth. Each program runs in a private mount
//! namespace where a copy of the host's /etc/pam.d (and a test sudoers) is mounted, as a
//! throwaway user, through a pipe (`sudo -S`) or a pty (`expect`), against the sandbox in
//! this process. Root only; skipped with a message otherwise.
//!
//! The examples name the installed module and its default config; the tests change only
//! that reference (`pam_authy.so` becomes the built module plus `config=<test config>`).
//!
//! One-prompt mode (`password_and_code=N`) runs through libpam in this process, with the
//! host's pam_unix behind the module checking a throwaway user's real password.

#![allow(clippy::disallowed_methods)]

mod common;
mod e2e;

use authy_sandbox::{FaultScope, PushScenario, PushStatus, Sandbox};
use common::{TestDir, config_for, sandbox};
use e2e::{
    BREAK_GLASS_GROUP, LOGIN_COMMAND, LOGIN_MARKER, Run, TestGroup, TestUser, as_user, install_example, namespace_argv,
    point_at_test_module, point_break_glass_at, private_login_records, pty_dialog, report_timing, rule, sudo_piped,
    sudoers, timed_sudo,
};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const FAST_PUSH: &str = "push_timeout_secs = 10\npush_poll_ms = 100";

/// A typo'd key: the module refuses the whole file (PAM_SERVICE_ERR) for every user.
const BROKEN_CONFIG: &str = "[auth]\nmax_tires = 3";

/// One sudo setup: a user with a password allowed to run anything, a sandbox, a config
/// and a pam.d with one example installed. Fields drop in order: the user first.
struct Case {
    user: TestUser,
    sandbox: Sandbox,
    id: u64,
    pam_d: PathBuf,
    sudoers: PathBuf,
    dir: TestDir,
}

impl Case {
    /// `example` installed as `service`; the user is mapped unless `mapped` is false.
    fn new(service: &str, example: &str, mapped: bool, extra: &str) -> Case {
        let user = TestUser::with_password();
        let (sandbox, id) = sandbox();
        let dir = TestDir::new();
        let users = if mapped { format!("{} = {id}", user.name) } else { String::new() };
        dir.write_config(&config_for(&dir, &sandbox, &users, extra));
        let pam_d = install_example(&dir, service, example);
        let sudoers = sudoers(&dir, &user.name);
        Case { user, sandbox, id, pam_d, sudoers, dir }
    }

    fn token(&self) -> String {
        self.sandbox.current_token(self.id).expect("token")
    }

    /// `sudo -S` with `stdin` as the answers, timed.
    fn sudo(&self, test: &str, stdin: &str) -> Run {
        timed_sudo(test, &self.pam_d, &self.sudoers, &self.user.name, stdin)
    }

    fn api_calls(&self) -> Vec<String> {
        e2e::api_calls(&self.sandbox)
    }

    fn fast_push(&self, status: PushStatus, polls: u32) {
        self.sandbox.set_push_scenario(FaultScope::User(self.id), PushScenario::AfterPolls { status, polls });
    }
}

fn assert_ran(run: &Run) {
    assert!(run.ok() && run.stdout.contains(LOGIN_MARKER), "the command must run:\n{}", run.output());
}

fn assert_refused(run: &Run) {
    assert!(!run.ok() && !run.stdout.contains(LOGIN_MARKER), "the command must not run:\n{}", run.output());
}

/// Where `needle` first appears in the transcript (to check the order of prompts).
fn position(run: &Run, needle: &str) -> usize {
    run.stdout.find(needle).unwrap_or_else(|| panic!("{needle:?} not in the transcript:\n{}", run.output()))
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sudo")]
fn sudo_asks_the_password_then_the_token_on_a_terminal() {
    let test = "sudo_asks_the_password_then_the_token_on_a_terminal";
    if !e2e::enabled(test) {
        return;
    }
    let case = Case::new("sudo", "sudo", true, "");
    let binds = e2e::sudo_binds(&case.pam_d, &case.sudoers);
    let argv = namespace_argv(&binds, &as_user(&case.user.name, &["sudo", "-k", "sh", "-c", LOGIN_COMMAND]));
    let token = case.token();
    let rules = [rule("password for", &[case.user.password()]), rule("Authy token", &[&token])];
    let run = pty_dialog(case.dir.path(), &argv, &rules);
    report_timing(test, "sudo (pty)", run.elapsed);
    assert_ran(&run);
    assert!(position(&run, "password for") < position(&run, "Authy token (or type push, sms or call): "));
    assert_eq!(case.api_calls().iter().filter(|p| p.starts_with("/protected/json/verify/")).count(), 1);
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sudo")]
fn sudo_with_a_wrong_token_is_refused() {
    if !e2e::enabled("sudo_with_a_wrong_token_is_refused") {
        return;
    }
    let case = Case::new("sudo", "sudo", true, "[auth]\nmax_tries = 1");
    let token = case.token();
    let wrong = format!("{}{}", if token.starts_with('9') { '1' } else { '9' }, &token[1..]);
    let run = case.sudo("sudo_with_a_wrong_token_is_refused", &format!("{}\n{wrong}\n", case.user.password()));
    assert_refused(&run);
    assert!(run.stderr.contains("Authy token"), "{}", run.output());
    assert_eq!(case.api_calls().len(), 1, "one verify: {:?}", case.api_calls());
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sudo")]
fn an_exempt_user_needs_only_the_password_for_sudo() {
    if !e2e::enabled("an_exempt_user_needs_only_the_password_for_sudo") {
        return;
    }
    // Mapped, but 2FA is only for members of root's group, which the test user is not in.
    let case = Case::new("sudo", "sudo", true, "[auth]\ngroups = [\"root\"]");
    let run = case.sudo("an_exempt_user_needs_only_the_password_for_sudo", &format!("{}\n", case.user.password()));
    assert_ran(&run);
    assert!(!run.stderr.contains("Authy"), "{}", run.output());
    assert!(case.api_calls().is_empty());
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sudo")]
fn an_approved_push_lets_sudo_run_the_command() {
    if !e2e::enabled("an_approved_push_lets_sudo_run_the_command") {
        return;
    }
    let case = Case::new("sudo", "sudo-push", true, &format!("[auth]\n{FAST_PUSH}\npush_command = true"));
    case.fast_push(PushStatus::Approved, 2);
    let run = case.sudo("an_approved_push_lets_sudo_run_the_command", &format!("{}\n", case.user.password()));
    assert_ran(&run);
    assert!(run.stdout.contains("Authy push sent to your phone: approve it there (waiting up to 10 s)."));
    let requests = case.sandbox.approval_requests();
    assert_eq!(requests.len(), 1);
    let details = &requests[0].details;
    assert_eq!(details.get("Service").map(String::as_str), Some("sudo"), "{details:?}");
    assert_eq!(details.get("User"), Some(&case.user.name), "{details:?}");
    assert_eq!(details.get("From").map(String::as_str), Some("local"), "sudo sets no PAM_RHOST: {details:?}");
    assert_eq!(details.get("Command").map(String::as_str), Some("sh -c 'echo E2E_LOGIN_$((6*7))'"), "{details:?}");
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sudo")]
fn a_denied_push_refuses_sudo() {
    if !e2e::enabled("a_denied_push_refuses_sudo") {
        return;
    }
    let case = Case::new("sudo", "sudo-push", true, &format!("[auth]\n{FAST_PUSH}\nmax_tries = 1"));
    case.fast_push(PushStatus::Denied, 1);
    let run = case.sudo("a_denied_push_refuses_sudo", &format!("{}\n", case.user.password()));
    assert_refused(&run);
    let request = &case.sandbox.approval_requests()[0];
    assert_eq!(request.status, PushStatus::Denied);
    assert_eq!(request.details.get("Command"), None, "the command goes out only when push_command is set");
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sudo")]
fn an_approved_push_alone_is_enough_with_the_sufficient_variant() {
    let test = "an_approved_push_alone_is_enough_with_the_sufficient_variant";
    if !e2e::enabled(test) {
        return;
    }
    let case = Case::new("sudo", "sudo-push-sufficient", true, &format!("[auth]\n{FAST_PUSH}"));
    case.fast_push(PushStatus::Approved, 2);
    let run = case.sudo(test, "");
    assert_ran(&run);
    assert!(!run.stderr.contains("password for"), "no password asked: {}", run.output());
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sudo")]
fn a_denied_push_falls_back_to_the_password_with_the_sufficient_variant() {
    let test = "a_denied_push_falls_back_to_the_password_with_the_sufficient_variant";
    if !e2e::enabled(test) {
        return;
    }
    let case = Case::new("sudo", "sudo-push-sufficient", true, &format!("[auth]\n{FAST_PUSH}\nmax_tries = 1"));
    case.fast_push(PushStatus::Denied, 1);
    let run = case.sudo(test, &format!("{}\n", case.user.password()));
    assert_ran(&run);
    assert!(run.stderr.contains("password for"), "{}", run.output());
    assert_eq!(case.sandbox.approval_requests()[0].status, PushStatus::Denied);
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sudo")]
fn su_asks_the_target_password_then_the_token() {
    let test = "su_asks_the_target_password_then_the_token";
    if !e2e::enabled(test) {
        return;
    }
    // The target account is the one mapped: su authenticates the user being switched to.
    let case = Case::new("su", "su", true, "");
    let caller = TestUser::create();
    let mut binds = vec![(case.pam_d.clone(), PathBuf::from("/etc/pam.d"))];
    binds.extend(private_login_records(case.dir.path()));
    let argv = namespace_argv(&binds, &as_user(&caller.name, &["su", &case.user.name, "-c", LOGIN_COMMAND]));
    let token = case.token();
    let rules = [rule("Password:", &[case.user.password()]), rule("Authy token", &[&token])];
    let run = pty_dialog(case.dir.path(), &argv, &rules);
    report_timing(test, "su (pty)", run.elapsed);
    assert_ran(&run);
    assert!(position(&run, "Password:") < position(&run, "Authy token"));
    let verified: Vec<String> =
        case.api_calls().into_iter().filter(|p| p.starts_with("/protected/json/verify/")).collect();
    assert_eq!(verified.len(), 1);
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sudo")]
fn a_console_login_asks_the_password_then_the_token() {
    let test = "a_console_login_asks_the_password_then_the_token";
    if !e2e::enabled(test) {
        return;
    }
    let case = Case::new("login", "login", true, "");
    let mut binds = vec![(case.pam_d.clone(), PathBuf::from("/etc/pam.d"))];
    binds.extend(private_login_records(case.dir.path()));
    let argv = namespace_argv(&binds, &["login", &case.user.name]);
    let token = case.token();
    let leave = format!("{LOGIN_COMMAND}; exit");
    let rules = [
        rule("Password:", &[case.user.password()]),
        rule("Authy token", &[&token]),
        // The user's /bin/sh prompt: the session is up.
        rule("$ ", &[&leave]),
    ];
    let run = pty_dialog(case.dir.path(), &argv, &rules);
    report_timing(test, "login (pty)", run.elapsed);
    assert!(run.stdout.contains(LOGIN_MARKER), "the shell must run:\n{}", run.output());
    assert!(position(&run, "Password:") < position(&run, "Authy token"));
}

/// `examples/pam.d/sudo` with a config broken by a typo, and a break-glass group of its own
/// that holds the user or nobody.
fn broken_config_case(user_in_group: bool) -> (Case, TestGroup) {
    let case = Case::new("sudo", "sudo", true, BROKEN_CONFIG);
    let group = if user_in_group { TestGroup::with_members(&[&case.user]) } else { TestGroup::with_members(&[]) };
    point_break_glass_at(&case.pam_d, "sudo", &group);
    (case, group)
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sudo")]
fn a_break_glass_member_needs_only_the_password_for_sudo_while_the_config_is_broken() {
    let test = "a_break_glass_member_needs_only_the_password_for_sudo_while_the_config_is_broken";
    if !e2e::enabled(test) {
        return;
    }
    let (case, _group) = broken_config_case(true);
    let run = case.sudo(test, &format!("{}\n", case.user.password()));
    assert_ran(&run);
    assert!(!run.stderr.contains("Authy"), "{}", run.output());
    assert!(case.api_calls().is_empty());

    let wrong_password = case.sudo(test, "not-the-password\n");
    assert_refused(&wrong_password);
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sudo")]
fn a_mapped_user_outside_the_break_glass_group_is_refused_sudo_while_the_config_is_broken() {
    let test = "a_mapped_user_outside_the_break_glass_group_is_refused_sudo_while_the_config_is_broken";
    if !e2e::enabled(test) {
        return;
    }
    let (case, _group) = broken_config_case(false);
    let run = case.sudo(test, &format!("{}\n{}\n", case.user.password(), case.token()));
    assert_refused(&run);
    assert!(case.api_calls().is_empty());
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sudo")]
fn sudo_says_that_authy_cannot_be_reached_when_there_is_no_offline_secret() {
    let test = "sudo_says_that_authy_cannot_be_reached_when_there_is_no_offline_secret";
    if !e2e::enabled(test) {
        return;
    }
    let case = Case::new("sudo", "sudo", true, "");
    let config = std::fs::read_to_string(case.dir.config_path()).expect("read config");
    let unreachable = format!("https://127.0.0.1:{}", common::closed_port());
    case.dir.write_config(&config.replace(&case.sandbox.url(), &unreachable));
    let run = case.sudo(test, &format!("{}\n1234567\n", case.user.password()));
    assert_refused(&run);
    assert!(run.stderr.contains("Authy cannot be reached; try again later."), "{}", run.output());
}

/// A case whose config points at a closed loopback port: the API cannot be reached and the
/// user has no offline secret.
fn unreachable_case(service: &str) -> Case {
    let case = Case::new(service, service, true, "");
    let config = std::fs::read_to_string(case.dir.config_path()).expect("read config");
    let unreachable = format!("https://127.0.0.1:{}", common::closed_port());
    case.dir.write_config(&config.replace(&case.sandbox.url(), &unreachable));
    case
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real su")]
fn su_says_that_the_api_cannot_be_reached_when_there_is_no_offline_secret() {
    let test = "su_says_that_the_api_cannot_be_reached_when_there_is_no_offline_secret";
    if !e2e::enabled(test) {
        return;
    }
    let case = unreachable_case("su");
    let caller = TestUser::create();
    let mut binds = vec![(case.pam_d.clone(), PathBuf::from("/etc/pam.d"))];
    binds.extend(private_login_records(case.dir.path()));
    let argv = namespace_argv(&binds, &as_user(&caller.name, &["su", &case.user.name, "-c", LOGIN_COMMAND]));
    let rules = [rule("Password:", &[case.user.password()]), rule("Authy token", &["1234567"])];
    let run = pty_dialog(case.dir.path(), &argv, &rules);
    report_timing(test, "su (pty)", run.elapsed);
    assert_refused(&run);
    assert!(position(&run, "Authy token") < position(&run, "cannot be reached; try again later."));
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real login")]
fn a_console_login_says_that_the_api_cannot_be_reached_when_there_is_no_offline_secret() {
    let test = "a_console_login_says_that_the_api_cannot_be_reached_when_there_is_no_offline_secret";
    if !e2e::enabled(test) {
        return;
    }
    let case = unreachable_case("login");
    let mut binds = vec![(case.pam_d.clone(), PathBuf::from("/etc/pam.d"))];
    binds.extend(private_login_records(case.dir.path()));
    let argv = namespace_argv(&binds, &["login", &case.user.name]);
    let leave = format!("{LOGIN_COMMAND}; exit");
    let rules = [
        rule("Password:", &[case.user.password()]),
        rule("Authy token", &["1234567"]),
        rule("$ ", &[&leave]),
        // login asks for another try: the dialog ends here.
        rule("Login incorrect", &[]),
    ];
    let run = pty_dialog(case.dir.path(), &argv, &rules);
    report_timing(test, "login (pty)", run.elapsed);
    assert!(!run.stdout.contains(LOGIN_MARKER), "the shell must not run:\n{}", run.output());
    assert!(position(&run, "Authy token") < position(&run, "cannot be reached; try again later."));
    assert!(position(&run, "cannot be reached; try again later.") < position(&run, "Login incorrect"));
}

/// What pam-auth-update writes: the host's profiles plus ours, into a copy of the host's
/// /etc/pam.d, /var/lib/pam and /usr/share/pam-configs under `root` (its `--root`), with a
/// private copy of the debconf database mounted over the host's.
fn enable_profile_with_pam_auth_update(dir: &TestDir) -> PathBuf {
    let root = dir.path().join("root");
    for (host, copy) in [("/etc/pam.d", "etc"), ("/var/lib/pam", "var/lib"), ("/usr/share/pam-configs", "usr/share")] {
        let target = root.join(copy);
        std::fs::create_dir_all(&target).expect("mkdir");
        let cp = Command::new("cp").arg("-a").arg(host).arg(&target).output().expect("cp");
        assert!(cp.status.success(), "cp {host}: {}", String::from_utf8_lossy(&cp.stderr));
    }
    let profile = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/debian/pam-configs-pam_authy");
    std::fs::copy(profile, root.join("usr/share/pam-configs/pam_authy")).expect("copy the profile");
    let debconf = dir.path().join("debconf");
    let cp = Command::new("cp").arg("-a").arg("/var/cache/debconf").arg(&debconf).output().expect("cp");
    assert!(cp.status.success(), "cp debconf: {}", String::from_utf8_lossy(&cp.stderr));
    let root_arg = root.to_str().expect("utf-8 path");
    let binds = [(debconf, PathBuf::from("/var/cache/debconf"))];
    let mut command = e2e::in_namespace(&binds, &["pam-auth-update", "--root", root_arg, "--enable", "pam_authy"]);
    command.env("DEBIAN_FRONTEND", "noninteractive");
    let run = e2e::run(command, "", Duration::from_secs(30));
    assert!(run.ok(), "pam-auth-update: {}", run.output());
    root.join("etc/pam.d")
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sudo")]
fn the_debian_profile_puts_authy_after_the_password_in_common_auth() {
    let test = "the_debian_profile_puts_authy_after_the_password_in_common_auth";
    if !e2e::enabled(test) {
        return;
    }
    let user = TestUser::with_password();
    let (sandbox, id) = sandbox();
    let dir = TestDir::new();
    dir.write_config(&config_for(&dir, &sandbox, &format!("{} = {id}", user.name), ""));
    let pam_d = enable_profile_with_pam_auth_update(&dir);

    let common_auth = std::fs::read_to_string(pam_d.join("common-auth")).expect("common-auth");
    let rules: Vec<&str> = common_auth.lines().filter(|l| l.starts_with("auth")).collect();
    let at = |module: &str| rules.iter().position(|l| l.contains(module)).unwrap_or(usize::MAX);
    assert!(at("pam_unix.so") < at("pam_permit.so"), "{common_auth}");
    assert!(
        at("pam_permit.so") < at("pam_authy.so") && at("pam_authy.so") < rules.len(),
        "pam_authy.so must follow the primary block:\n{common_auth}"
    );
    let authy_line: Vec<&str> = rules[at("pam_authy.so")].split_whitespace().collect();
    assert_eq!(authy_line, ["auth", "required", "pam_authy.so"]);
    let break_glass = format!("pam_succeed_if.so quiet_fail user ingroup {BREAK_GLASS_GROUP}");
    assert_eq!(at(&break_glass) + 1, at("pam_authy.so"), "the break-glass line skips exactly Authy:\n{common_auth}");
    assert!(rules[at(&break_glass)].contains("[success=1 default=ignore]"), "{common_auth}");
    std::fs::write(pam_d.join("common-auth"), point_at_test_module(&common_auth, &dir.config_path()))
        .expect("write common-auth");

    // Debian's own /etc/pam.d/sudo, which includes common-auth, now asks for both.
    let sudoers = sudoers(&dir, &user.name);
    let token = sandbox.current_token(id).expect("token");
    let run = sudo_piped(&pam_d, &sudoers, &user.name, &format!("{}\n{token}\n", user.password()));
    report_timing(test, "sudo -S", run.elapsed);
    assert_ran(&run);
    assert!(run.stderr.contains("Authy token"), "{}", run.output());
    let verified = sandbox.requests().iter().filter(|r| r.route_path.starts_with("/protected/json/verify/")).count();
    assert_eq!(verified, 1);
}

/// Not root-only: a new file in pam.d-examples must come with a test that installs it.
#[test]
fn every_shipped_example_is_used_by_an_end_to_end_test() {
    let sources = [include_str!("e2e_sshd.rs"), include_str!("e2e_sudo.rs"), include_str!("e2e_rhel.rs")];
    let file_names = |dir: &std::path::Path, prefix: &str| -> Vec<String> {
        std::fs::read_dir(dir)
            .expect("pam.d-examples")
            .map(|entry| entry.expect("entry"))
            .filter(|entry| entry.file_type().expect("file type").is_file())
            .map(|entry| format!("{prefix}{}", entry.file_name().into_string().expect("utf-8 name")))
            .collect()
    };
    let examples = std::path::Path::new(e2e::EXAMPLES);
    let mut names = file_names(examples, "");
    names.extend(file_names(&examples.join("rhel"), "rhel/"));
    names.sort();
    assert!(names.len() >= 11, "{names:?}");
    let unused: Vec<&String> =
        names.iter().filter(|name| !sources.iter().any(|s| s.contains(&format!("\"{name}\"")))).collect();
    assert!(unused.is_empty(), "examples no end-to-end test installs: {unused:?}");
}

/// Not root-only: every stack that loads the module has the break-glass line right before
/// it, so a broken config can never lock out the break-glass group.
#[test]
fn every_stack_that_loads_the_module_lets_the_break_glass_group_skip_it() {
    let break_glass =
        format!("[success=1 default=ignore] pam_succeed_if.so quiet_fail user ingroup {BREAK_GLASS_GROUP}");
    let profile = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/debian/pam-configs-pam_authy");
    // Every stack file, Debian's and rhel/'s; the READMEs hold recipes, not stacks.
    let examples = std::path::Path::new(e2e::EXAMPLES);
    let mut stacks: Vec<PathBuf> = [examples.to_path_buf(), examples.join("rhel")]
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).expect("pam.d-examples").map(|entry| entry.expect("entry").path()))
        .filter(|path| path.is_file() && !path.to_string_lossy().contains("README"))
        .collect();
    stacks.push(PathBuf::from(profile));
    let mut checked = 0;
    for stack in stacks {
        let text = std::fs::read_to_string(&stack).expect("read stack");
        let rules: Vec<String> = text
            .lines()
            .filter(|line| !line.trim_start().starts_with('#') && !line.trim().is_empty())
            .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        for (at, rule) in rules.iter().enumerate().filter(|(_, rule)| rule.contains("pam_authy.so")) {
            let before = at.checked_sub(1).map(|i| rules[i].as_str()).unwrap_or("");
            assert!(before.ends_with(&break_glass), "{}: no break-glass line before {rule:?}", stack.display());
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked} stacks");
}

/// A stack as a single-question application (OpenVPN's plugin) would use it: the module in
/// one-prompt mode, then pam_unix taking the password it hands on.
fn one_prompt_case(mapped: bool) -> Case {
    let case = Case::new("sudo", "sudo", mapped, "[auth]\nunmapped_users = \"ignore\"");
    let digits = case.token().len();
    let stack = format!(
        "auth required {} config={} password_and_code={digits}\nauth required pam_unix.so use_first_pass\naccount required pam_permit.so\n",
        common::module_path().display(),
        case.dir.config_path().display()
    );
    std::fs::write(case.dir.confdir().join("vpn"), stack).expect("write the stack");
    case
}

fn one_answer(case: &Case, answer: &str) -> pam_harness::AuthResult {
    let items = pam_harness::Items { rhost: Some("198.51.100.7".into()), tty: None, ruser: None };
    let mut responder = |m: &pam_harness::Message| {
        if m.style.is_prompt() { pam_harness::Reply::text(answer) } else { pam_harness::Reply::text("") }
    };
    pam_harness::authenticate(Some(&case.dir.confdir()), "vpn", &case.user.name, &items, &mut responder)
        .expect("pam_start")
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates a user with a password for pam_unix")]
fn one_prompt_mode_hands_the_password_to_pam_unix_and_checks_the_code() {
    let test = "one_prompt_mode_hands_the_password_to_pam_unix_and_checks_the_code";
    if !e2e::enabled(test) {
        return;
    }
    let case = one_prompt_case(true);
    let password = case.user.password().to_owned();
    let result = one_answer(&case, &format!("{password}{}", case.token()));
    assert_eq!(result.code, pam_harness::PAM_SUCCESS, "{}", result.text());
    assert_eq!(result.prompts(), ["Password and code: "], "one question, no more");

    // A fresh code (the sandbox refuses one used twice), so that only the password is wrong.
    case.sandbox.set_clock(Some(case.sandbox.now_unix() + 120));
    let wrong_password = one_answer(&case, &format!("not-{password}{}", case.token()));
    assert_eq!(wrong_password.code, pam_harness::PAM_AUTH_ERR, "{}", wrong_password.text());
    let wrong_code = one_answer(&case, &format!("{password}{}", "0".repeat(case.token().len())));
    assert_ne!(wrong_code.code, pam_harness::PAM_SUCCESS, "{}", wrong_code.text());
    assert_eq!(wrong_code.prompts().len(), 1, "{}", wrong_code.text());
    let verified = |case: &Case| case.api_calls().iter().filter(|p| p.starts_with("/protected/json/verify/")).count();
    let before = verified(&case);
    for malformed in [password.clone(), case.token(), String::new(), format!("{password}12345x7")] {
        let result = one_answer(&case, &malformed);
        assert_ne!(result.code, pam_harness::PAM_SUCCESS, "{malformed:?}: {}", result.text());
        assert_eq!(result.prompts().len(), 1, "{}", result.text());
    }
    assert_eq!(verified(&case), before, "a malformed answer reached the API");
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates a user with a password for pam_unix")]
fn one_prompt_mode_asks_an_exempt_user_for_the_password_alone() {
    let test = "one_prompt_mode_asks_an_exempt_user_for_the_password_alone";
    if !e2e::enabled(test) {
        return;
    }
    let case = one_prompt_case(false);
    let result = one_answer(&case, case.user.password());
    assert_eq!(result.code, pam_harness::PAM_SUCCESS, "{}", result.text());
    assert_eq!(result.prompts(), ["Password: "]);
    let wrong = one_answer(&case, "not-the-password");
    assert_eq!(wrong.code, pam_harness::PAM_AUTH_ERR, "{}", wrong.text());
    assert!(case.api_calls().is_empty());
}
