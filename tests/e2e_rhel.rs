//! End to end with the RHEL-family stacks of `pam.d-examples/rhel/` under the real OpenSSH
//! sshd and sudo: a copy of the host's /etc/pam.d with RHEL's include files laid over it
//! (`tests/fixtures/rhel-pam.d`: system-auth, password-auth and postlogin as authselect
//! writes them), the example installed as the service, in a private mount namespace,
//! against the sandbox in this process. Also the authselect recipe
//! (`rhel/authselect-README`): its sed command run on those include files, under RHEL's
//! stock sshd stack. Root only; skipped with a message otherwise.
//!
//! The examples name the installed module and its default config; the tests change only
//! that reference (`pam_authy.so` becomes the built module plus `config=<test config>`).

#![allow(clippy::disallowed_methods)]

mod common;
mod e2e;

use authy_sandbox::Sandbox;
use common::{TestDir, config_for, sandbox};
use e2e::{
    Askpass, LOGIN_MARKER, Run, Sshd, TestGroup, TestUser, api_calls, explain_ssh, install_example, key_pair,
    point_break_glass_at, timed_ssh, timed_sudo,
};
use std::path::{Path, PathBuf};
use std::process::Command;

const RHEL_INCLUDES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rhel-pam.d");
/// A config the module refuses (a misspelt key): only the break-glass group gets in.
const BROKEN_CONFIG: &str = "[auth]\nmax_tires = 3";

/// `example` (under pam.d-examples/) installed as `service` in a copy of the host's pam.d
/// on which RHEL's include files replace the host's.
fn rhel_pam_d(dir: &TestDir, service: &str, example: &str) -> PathBuf {
    let pam_d = install_example(dir, service, example);
    for name in ["system-auth", "password-auth", "postlogin"] {
        std::fs::copy(Path::new(RHEL_INCLUDES).join(name), pam_d.join(name)).expect("copy RHEL include file");
    }
    pam_d
}

fn mapped_config(dir: &TestDir, sandbox: &Sandbox, user: &str, id: u64, extra: &str) {
    dir.write_config(&config_for(dir, sandbox, &format!("{user} = {id}"), extra));
}

/// A token of the right shape that is not the current one.
fn wrong(token: &str) -> String {
    format!("{}{}", if token.starts_with('9') { '1' } else { '9' }, &token[1..])
}

/// The RHEL sshd stack: sshd (publickey, then keyboard-interactive) for a fresh user.
struct SshCase {
    sshd: Sshd,
    user: TestUser,
    sandbox: Sandbox,
    id: u64,
    askpass: Askpass,
    key: PathBuf,
    _dir: TestDir,
    pam_d: PathBuf,
}

impl SshCase {
    fn start(extra: &str) -> SshCase {
        let user = TestUser::create();
        let (sandbox, id) = sandbox();
        let dir = TestDir::new();
        mapped_config(&dir, &sandbox, &user.name, id, extra);
        let pam_d = rhel_pam_d(&dir, "sshd", "rhel/sshd");
        let key = key_pair(dir.path(), "client_key");
        user.authorize_key(&key.with_extension("pub"));
        let sshd = Sshd::start(&dir, &pam_d, "sshd_config-publickey.conf", &user.name);
        let askpass = Askpass::new(&dir);
        SshCase { sshd, user, sandbox, id, askpass, key, _dir: dir, pam_d }
    }

    fn login(&self, test: &str) -> Run {
        timed_ssh(test, "ssh", &self.sshd, &self.user.name, &self.key, &self.askpass)
    }

    fn explain(&self, run: &Run) -> String {
        explain_ssh(run, &self.askpass, &self.sshd)
    }
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sshd")]
fn rhel_sshd_stack_a_key_and_the_right_token_log_in() {
    let test = "rhel_sshd_stack_a_key_and_the_right_token_log_in";
    if !e2e::enabled(test) {
        return;
    }
    let case = SshCase::start("");
    case.askpass.answer("token", &[&case.sandbox.current_token(case.id).expect("token")]);
    let run = case.login(test);
    assert!(run.ok() && run.stdout.contains(LOGIN_MARKER), "the login must succeed:\n{}", case.explain(&run));
    let log = case.sshd.log_text();
    assert!(log.contains("Partial publickey") && log.contains("Accepted keyboard-interactive/pam"), "{log}");
    assert_eq!(api_calls(&case.sandbox).iter().filter(|p| p.starts_with("/protected/json/verify/")).count(), 1);
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sshd")]
fn rhel_sshd_stack_a_key_and_a_wrong_token_are_refused() {
    let test = "rhel_sshd_stack_a_key_and_a_wrong_token_are_refused";
    if !e2e::enabled(test) {
        return;
    }
    let case = SshCase::start("[auth]\nmax_tries = 1");
    case.askpass.answer("token", &[&wrong(&case.sandbox.current_token(case.id).expect("token"))]);
    let run = case.login(test);
    assert!(!run.ok() && !run.stdout.contains(LOGIN_MARKER), "the login must fail:\n{}", case.explain(&run));
    assert!(run.stderr.contains("Permission denied"), "{}", case.explain(&run));
    assert_eq!(api_calls(&case.sandbox).len(), 1);
}

/// The RHEL sudo stack for a fresh user with a password.
struct SudoCase {
    user: TestUser,
    sandbox: Sandbox,
    id: u64,
    pam_d: PathBuf,
    sudoers: PathBuf,
    dir: TestDir,
}

impl SudoCase {
    fn new(extra: &str) -> SudoCase {
        let user = TestUser::with_password();
        let (sandbox, id) = sandbox();
        let dir = TestDir::new();
        mapped_config(&dir, &sandbox, &user.name, id, extra);
        let pam_d = rhel_pam_d(&dir, "sudo", "rhel/sudo");
        let sudoers = e2e::sudoers(&dir, &user.name);
        SudoCase { user, sandbox, id, pam_d, sudoers, dir }
    }

    fn sudo(&self, test: &str, stdin: &str) -> Run {
        timed_sudo(test, &self.pam_d, &self.sudoers, &self.user.name, stdin)
    }

    fn token(&self) -> String {
        self.sandbox.current_token(self.id).expect("token")
    }
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sudo")]
fn rhel_sudo_stack_asks_the_password_then_the_token() {
    let test = "rhel_sudo_stack_asks_the_password_then_the_token";
    if !e2e::enabled(test) {
        return;
    }
    let case = SudoCase::new("");
    let run = case.sudo(test, &format!("{}\n{}\n", case.user.password(), case.token()));
    assert!(run.ok() && run.stdout.contains(LOGIN_MARKER), "the command must run:\n{}", run.output());
    assert!(run.stderr.contains("Authy token"), "{}", run.output());
    assert_eq!(api_calls(&case.sandbox).len(), 1, "one verify: {:?}", api_calls(&case.sandbox));
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sudo")]
fn rhel_sudo_stack_refuses_the_right_password_with_a_wrong_token() {
    let test = "rhel_sudo_stack_refuses_the_right_password_with_a_wrong_token";
    if !e2e::enabled(test) {
        return;
    }
    let case = SudoCase::new("[auth]\nmax_tries = 1");
    let run = case.sudo(test, &format!("{}\n{}\n", case.user.password(), wrong(&case.token())));
    assert!(!run.ok() && !run.stdout.contains(LOGIN_MARKER), "the command must not run:\n{}", run.output());
    assert!(run.stderr.contains("Authy token"), "{}", run.output());
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sudo")]
fn rhel_sudo_stack_never_asks_authy_after_a_wrong_password() {
    let test = "rhel_sudo_stack_never_asks_authy_after_a_wrong_password";
    if !e2e::enabled(test) {
        return;
    }
    let case = SudoCase::new("");
    // sudo asks three times; every answer is a wrong password, then a token nobody should read.
    let run = case.sudo(test, &format!("not-it-1\nnot-it-2\nnot-it-3\n{}\n", case.token()));
    assert!(!run.ok() && !run.stdout.contains(LOGIN_MARKER), "the command must not run:\n{}", run.output());
    assert!(!run.stderr.contains("Authy"), "Authy was asked after a wrong password:\n{}", run.output());
    assert!(api_calls(&case.sandbox).is_empty(), "no API call: {:?}", api_calls(&case.sandbox));
}

/// Why the RHEL stacks do not build on `include`/`substack system-auth`: under this libpam,
/// `auth include system-auth` before pam_authy lets the password alone through, and
/// `auth substack system-auth` sends a wrong password on to Authy. If either ever stops
/// being true, the comment in pam.d-examples/rhel/sudo must change with it.
#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sudo")]
fn rhel_include_files_cannot_simply_precede_pam_authy() {
    let test = "rhel_include_files_cannot_simply_precede_pam_authy";
    if !e2e::enabled(test) {
        return;
    }
    let case = SudoCase::new("");
    let stack = |control: &str| {
        format!(
            "auth {control} system-auth\nauth required {} config={}\naccount include system-auth\nsession include system-auth\n",
            common::module_path().display(),
            case.dir.config_path().display()
        )
    };
    std::fs::write(case.pam_d.join("sudo"), stack("include")).expect("write stack");
    let run = case.sudo(test, &format!("{}\n", case.user.password()));
    assert!(
        run.ok() && !run.stderr.contains("Authy"),
        "include: the password alone ran the command:\n{}",
        run.output()
    );

    std::fs::write(case.pam_d.join("sudo"), stack("substack")).expect("write stack");
    let run = case.sudo(test, "not-it-1\nnot-it-2\nnot-it-3\n");
    assert!(!run.ok(), "{}", run.output());
    assert!(run.stderr.contains("Authy token"), "substack: a wrong password reached Authy:\n{}", run.output());
}

/// The `sed -i` line of the authselect recipe, as the README shows it.
fn authselect_recipe_command() -> String {
    let readme = std::fs::read_to_string(e2e::example("rhel/authselect-README")).expect("read the recipe");
    let lines: Vec<&str> = readme.lines().map(str::trim).filter(|line| line.starts_with("sed -i")).collect();
    assert_eq!(lines.len(), 1, "the recipe has one sed command: {lines:?}");
    lines[0].to_owned()
}

/// RHEL's stock sshd stack over password-auth and system-auth edited by the recipe, with
/// the password stack's sshd_config.
fn authselect_case(extra: &str) -> SshCase {
    let user = TestUser::with_password();
    let (sandbox, id) = sandbox();
    let dir = TestDir::new();
    mapped_config(&dir, &sandbox, &user.name, id, extra);
    let pam_d = rhel_pam_d(&dir, "sshd", "rhel/sshd");
    std::fs::copy(Path::new(RHEL_INCLUDES).join("sshd"), pam_d.join("sshd")).expect("stock sshd");
    let edit = Command::new("sh").arg("-c").arg(authselect_recipe_command()).current_dir(&pam_d).output().expect("sh");
    assert!(edit.status.success(), "the recipe's sed failed: {}", String::from_utf8_lossy(&edit.stderr));
    for name in ["system-auth", "password-auth"] {
        let text = std::fs::read_to_string(pam_d.join(name)).expect("read");
        assert_eq!(text.matches("pam_authy.so").count(), 1, "the recipe adds one Authy line to {name}:\n{text}");
        assert_eq!(text.matches("pam_authy-exempt").count(), 1, "and one break-glass line:\n{text}");
        assert!(text.contains("requisite                                    pam_unix.so nullok\n"), "{text}");
        std::fs::write(pam_d.join(name), e2e::point_at_test_module(&text, &dir.config_path())).expect("write");
    }
    let key = key_pair(dir.path(), "client_key");
    let sshd = Sshd::start(&dir, &pam_d, "sshd_config-password.conf", &user.name);
    let askpass = Askpass::new(&dir);
    SshCase { sshd, user, sandbox, id, askpass, key, _dir: dir, pam_d }
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sshd")]
fn authselect_recipe_asks_the_password_then_the_token_under_the_stock_sshd_stack() {
    let test = "authselect_recipe_asks_the_password_then_the_token_under_the_stock_sshd_stack";
    if !e2e::enabled(test) {
        return;
    }
    let case = authselect_case("");
    case.askpass.answer("password", &[case.user.password()]);
    case.askpass.answer("token", &[&case.sandbox.current_token(case.id).expect("token")]);
    let run = case.login(test);
    assert!(run.ok() && run.stdout.contains(LOGIN_MARKER), "the login must succeed:\n{}", case.explain(&run));
    let prompts = case.askpass.prompts();
    assert_eq!(prompts.len(), 2, "{prompts:#?}");
    assert!(prompts[0].ends_with("Password: ") && prompts[1].contains("Authy token"), "{prompts:#?}");
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sshd")]
fn authselect_recipe_refuses_a_right_password_with_a_wrong_token() {
    let test = "authselect_recipe_refuses_a_right_password_with_a_wrong_token";
    if !e2e::enabled(test) {
        return;
    }
    let case = authselect_case("[auth]\nmax_tries = 1");
    case.askpass.answer("password", &[case.user.password()]);
    case.askpass.answer("token", &[&wrong(&case.sandbox.current_token(case.id).expect("token"))]);
    let run = case.login(test);
    assert!(!run.ok() && !run.stdout.contains(LOGIN_MARKER), "the login must fail:\n{}", case.explain(&run));
    assert_eq!(api_calls(&case.sandbox).len(), 1, "{:?}", api_calls(&case.sandbox));
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sshd")]
fn authselect_recipe_never_asks_authy_after_a_wrong_password() {
    let test = "authselect_recipe_never_asks_authy_after_a_wrong_password";
    if !e2e::enabled(test) {
        return;
    }
    let case = authselect_case("[auth]\nmax_tries = 1");
    case.askpass.answer("password", &["not-the-password"]);
    case.askpass.answer("token", &[&case.sandbox.current_token(case.id).expect("token")]);
    let run = case.login(test);
    assert!(!run.ok() && !run.stdout.contains(LOGIN_MARKER), "the login must fail:\n{}", case.explain(&run));
    assert!(case.askpass.prompts().iter().all(|p| !p.contains("Authy")), "{:#?}", case.askpass.prompts());
    assert!(api_calls(&case.sandbox).is_empty(), "no API call: {:?}", api_calls(&case.sandbox));
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sudo")]
fn rhel_sudo_stack_lets_a_break_glass_member_in_with_the_password_while_the_config_is_broken() {
    let test = "rhel_sudo_stack_lets_a_break_glass_member_in_with_the_password_while_the_config_is_broken";
    if !e2e::enabled(test) {
        return;
    }
    let case = SudoCase::new(BROKEN_CONFIG);
    let refused = case.sudo(test, &format!("{}\n{}\n", case.user.password(), case.token()));
    assert!(!refused.ok() && !refused.stdout.contains(LOGIN_MARKER), "broken config: {}", refused.output());
    let group = TestGroup::with_members(&[&case.user]);
    point_break_glass_at(&case.pam_d, "sudo", &group);
    let run = case.sudo(test, &format!("{}\n", case.user.password()));
    assert!(run.ok() && run.stdout.contains(LOGIN_MARKER), "the command must run:\n{}", run.output());
    assert!(!run.stderr.contains("Authy"), "{}", run.output());
    let wrong_password = case.sudo(test, "not-it-1\nnot-it-2\nnot-it-3\n");
    assert!(!wrong_password.ok(), "{}", wrong_password.output());
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sshd")]
fn authselect_recipe_lets_a_break_glass_member_in_with_the_password_while_the_config_is_broken() {
    let test = "authselect_recipe_lets_a_break_glass_member_in_with_the_password_while_the_config_is_broken";
    if !e2e::enabled(test) {
        return;
    }
    let case = authselect_case(BROKEN_CONFIG);
    let group = TestGroup::with_members(&[&case.user]);
    point_break_glass_at(&case.pam_d, "password-auth", &group);
    case.askpass.answer("password", &[case.user.password()]);
    let run = case.login(test);
    assert!(run.ok() && run.stdout.contains(LOGIN_MARKER), "the login must succeed:\n{}", case.explain(&run));
    assert_eq!(case.askpass.prompts().len(), 1, "{:#?}", case.askpass.prompts());
    assert!(api_calls(&case.sandbox).is_empty());
}
