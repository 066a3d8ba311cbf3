//! The host-safety rules (docs/threat-model.md classes 18 and 20) through the real `su` and
//! `sudo`, each started by an ordinary user, as the attacks would be: a server that resets
//! the connection must not kill the program (SIGPIPE), and nothing the caller controls (a
//! lowered descriptor limit with `prlimit`, SIGSTOP past the timeout then SIGCONT) may turn
//! a wrong token into a `failmode = "safe"` success.
//!
//! Each program runs in a private mount namespace over a test /etc/pam.d whose `su` and
//! `sudo` stacks hold only the built module (no password, so no pam_unix failure delay), as a
//! throwaway user whose shell first prints its ignored signals (SIGPIPE must be at its
//! default, or the reset test proves nothing) and afterwards the program's exit status (a
//! death by SIGPIPE shows as 141). `su` runs on a pty (`expect`), `sudo -S` through a pipe.
//! Root only; ignored with the reason otherwise.

#![allow(clippy::disallowed_methods)]

mod adversarial_support;
mod common;
mod e2e;

use adversarial_support::{Behaviour, RawServer};
use common::{TestDir, config_for, sandbox};
use e2e::{
    LOGIN_COMMAND, LOGIN_MARKER, Run, TestUser, as_user, namespace_argv, private_login_records, pty_dialog, rule,
};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A token the sandbox never issued for the test user (it is refused, or never checked).
const WRONG_TOKEN: &str = "0000001";
const RUNS_PER_RESET: usize = 10;
const SIGPIPE_BIT: u64 = 1 << (libc::SIGPIPE - 1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Program {
    Su,
    Sudo,
}

/// One program set up against one server: the mapped target, the caller who starts the
/// program (for sudo, the target itself), the config and the test pam.d.
struct Case {
    target: TestUser,
    caller: Option<TestUser>,
    program: Program,
    dir: TestDir,
    pam_d: PathBuf,
    sudoers: Option<PathBuf>,
}

impl Case {
    /// `config` is the whole config file; `{user}` in it is replaced by the target's name.
    fn new(program: Program, config: impl FnOnce(&TestDir, &str) -> String) -> Case {
        let target = TestUser::create();
        let dir = TestDir::new();
        dir.write_config(&config(&dir, &target.name));
        let pam_d = dir.confdir();
        let module = common::module_path();
        let stack = format!(
            "auth required {} config={}\naccount required pam_permit.so\nsession required pam_permit.so\n",
            module.display(),
            dir.config_path().display()
        );
        let service = match program {
            Program::Su => "su",
            Program::Sudo => "sudo",
        };
        std::fs::write(pam_d.join(service), stack).expect("write the test stack");
        let (caller, sudoers) = match program {
            Program::Su => (Some(TestUser::create()), None),
            Program::Sudo => (None, Some(e2e::sudoers(&dir, &target.name))),
        };
        Case { target, caller, program, dir, pam_d, sudoers }
    }

    fn caller(&self) -> &TestUser {
        self.caller.as_ref().unwrap_or(&self.target)
    }

    /// Runs the program as the caller, behind `prefix` (e.g. `prlimit --nofile=8:8`),
    /// typing `WRONG_TOKEN` at every token prompt.
    fn login(&self, prefix: &[&str]) -> Outcome {
        // The caller's shell: its ignored signals, then the program, then its exit status.
        let wrapper = r#"grep '^SigIgn:' /proc/self/status; "$@"; echo "E2E_EXIT=$?""#;
        let mut program: Vec<&str> = vec!["sh", "-c", wrapper, "sh"];
        program.extend_from_slice(prefix);
        let run = match self.program {
            Program::Su => {
                program.extend_from_slice(&["su", &self.target.name, "-c", LOGIN_COMMAND]);
                let mut binds = vec![(self.pam_d.clone(), PathBuf::from("/etc/pam.d"))];
                binds.extend(private_login_records(self.dir.path()));
                let argv = namespace_argv(&binds, &as_user(&self.caller().name, &program));
                let tokens = [WRONG_TOKEN; 4];
                pty_dialog(self.dir.path(), &argv, &[rule("Authy token", &tokens)])
            }
            Program::Sudo => {
                program.extend_from_slice(&["sudo", "-S", "-k", "sh", "-c", LOGIN_COMMAND]);
                let sudoers = self.sudoers.as_ref().expect("sudoers");
                let argv = as_user(&self.target.name, &program);
                let command = e2e::in_namespace(&e2e::sudo_binds(&self.pam_d, sudoers), &argv);
                e2e::run(command, &format!("{WRONG_TOKEN}\n").repeat(4), Duration::from_secs(40))
            }
        };
        Outcome::of(run)
    }
}

/// What one run showed.
#[derive(Debug)]
struct Outcome {
    /// The program's exit status as the caller's shell saw it (141: killed by SIGPIPE).
    exit: Option<i32>,
    /// The command behind su or sudo ran: authentication passed.
    passed: bool,
    /// The module asked for the token.
    prompted: bool,
    run: Run,
}

impl Outcome {
    fn of(run: Run) -> Outcome {
        let text = format!("{}{}", run.stdout, run.stderr);
        let ignored = text
            .lines()
            .find_map(|line| line.trim().strip_prefix("SigIgn:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .unwrap_or_else(|| panic!("the caller's shell printed no SigIgn line:\n{}", run.output()));
        assert_eq!(ignored & SIGPIPE_BIT, 0, "the caller must leave SIGPIPE at its default:\n{}", run.output());
        let exit = text.lines().find_map(|line| line.trim().strip_prefix("E2E_EXIT=")).and_then(|n| n.parse().ok());
        Outcome { exit, passed: text.contains(LOGIN_MARKER), prompted: text.contains("Authy token"), run }
    }
}

fn reset_config(server: &RawServer) -> impl FnOnce(&TestDir, &str) -> String + '_ {
    move |dir, user| {
        let ca = dir.write("raw-ca.pem", server.ca_pem(), 0o644);
        format!(
            "[api]\nurl = \"{}\"\napi_key = \"key\"\nca_file = \"{}\"\ntimeout_secs = 1\n[auth]\nmax_tries = 1\n[users]\n\"{user}\" = 1\n",
            server.url(),
            ca.display()
        )
    }
}

/// A server that resets the connection after the TLS handshake, and one that resets it after
/// reading the request: su and sudo live on (no SIGPIPE from the module's socket) and refuse.
#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real su and sudo")]
fn a_connection_reset_never_kills_su_or_sudo_and_the_login_fails_closed() {
    if !e2e::enabled("a_connection_reset_never_kills_su_or_sudo_and_the_login_fails_closed") {
        return;
    }
    for behaviour in [Behaviour::ResetAfterHandshake, Behaviour::ResetAfterRequest] {
        let server = RawServer::start_with(Vec::new(), behaviour);
        for program in [Program::Su, Program::Sudo] {
            let case = Case::new(program, reset_config(&server));
            let before = server.requests().len();
            for run in 0..RUNS_PER_RESET {
                let outcome = case.login(&[]);
                assert!(
                    outcome.prompted,
                    "{program:?} {behaviour:?} run {run}: no token prompt:\n{}",
                    outcome.run.output()
                );
                assert_ne!(
                    outcome.exit,
                    Some(141),
                    "{program:?} {behaviour:?} run {run}: killed by SIGPIPE:\n{}",
                    outcome.run.output()
                );
                assert_eq!(outcome.exit, Some(1), "{program:?} {behaviour:?} run {run}:\n{}", outcome.run.output());
                assert!(!outcome.passed, "{program:?} {behaviour:?} run {run}: passed:\n{}", outcome.run.output());
            }
            if behaviour == Behaviour::ResetAfterRequest {
                assert!(server.requests().len() >= before + RUNS_PER_RESET, "each run reached the server");
            }
            eprintln!(
                "host-safety e2e {program:?} {behaviour:?}: survived and refused {RUNS_PER_RESET} of {RUNS_PER_RESET}"
            );
        }
    }
}

fn safe_config(
    sandbox: &authy_sandbox::Sandbox,
    id: u64,
    timeout_secs: u64,
) -> impl FnOnce(&TestDir, &str) -> String + '_ {
    move |dir, user| {
        config_for(dir, sandbox, &format!("\"{user}\" = {id}"), "[auth]\nfailmode = \"safe\"\nmax_tries = 1\n")
            .replace("timeout_secs = 5", &format!("timeout_secs = {timeout_secs}"))
    }
}

/// The caller lowers RLIMIT_NOFILE with `prlimit` before su or sudo, to every count from 4
/// to 40 (the window in which only the module's socket fails is one descriptor wide):
/// whatever the module then fails to open, a wrong token under `failmode = "safe"` never
/// passes.
#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real su and sudo")]
fn a_descriptor_limit_set_by_the_caller_never_lets_a_wrong_token_through_su_or_sudo() {
    if !e2e::enabled("a_descriptor_limit_set_by_the_caller_never_lets_a_wrong_token_through_su_or_sudo") {
        return;
    }
    let (sandbox, id) = sandbox();
    for program in [Program::Su, Program::Sudo] {
        let case = Case::new(program, safe_config(&sandbox, id, 5));
        let mut seen = Vec::new();
        for limit in 4..=40 {
            let nofile = format!("--nofile={limit}:{limit}");
            let outcome = case.login(&["prlimit", &nofile]);
            assert!(
                !outcome.passed,
                "{program:?} with {limit} descriptors passed a wrong token:\n{}",
                outcome.run.output()
            );
            assert_ne!(outcome.exit, Some(0), "{program:?} with {limit} descriptors:\n{}", outcome.run.output());
            seen.push(format!(
                "{limit}:{}{}",
                outcome.exit.map_or("?".into(), |e| e.to_string()),
                if outcome.prompted { "p" } else { "" }
            ));
        }
        eprintln!("host-safety e2e {program:?} prlimit (limit:exit, p = token prompted): {}", seen.join(" "));
        assert!(seen.iter().any(|s| s.ends_with('p')), "{program:?}: the module never ran: {seen:?}");
    }
}

/// The (real) pid of the running `comm` whose real uid is `uid`.
fn process_of(comm: &str, uid: u32) -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
        let name = std::fs::read_to_string(entry.path().join("comm")).ok()?;
        let status = std::fs::read_to_string(entry.path().join("status")).ok()?;
        let real_uid: u32 =
            status.lines().find_map(|l| l.strip_prefix("Uid:"))?.split_whitespace().next()?.parse().ok()?;
        (name.trim() == comm && real_uid == uid).then_some(pid)
    })
}

/// `kill -SIGNAL pid` as `user` (the shell's builtin): what the caller of su or sudo may do.
fn kill_as(user: &TestUser, signal: &str, pid: i32) {
    let output = std::process::Command::new("setpriv")
        .args(["--reuid", &user.uid.to_string(), "--regid", &user.gid.to_string(), "--clear-groups"])
        .args(["sh", "-c", r#"kill "$1" "$2""#, "sh", signal, &pid.to_string()])
        .output()
        .expect("setpriv kill");
    assert!(
        output.status.success(),
        "kill {signal} {pid} as {}: {}",
        user.name,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The API answers after 600 ms with `timeout_secs = 1`; once the token's request reached
/// it, the caller stops su or sudo for 2.5 s and lets it go on, so the timeout fires first.
/// Under `failmode = "safe"` the wrong token must still not pass.
#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real su and sudo")]
fn stopping_su_or_sudo_across_the_timeout_never_lets_a_wrong_token_through() {
    if !e2e::enabled("stopping_su_or_sudo_across_the_timeout_never_lets_a_wrong_token_through") {
        return;
    }
    let (sandbox, id) = sandbox();
    sandbox.set_fault(authy_sandbox::FaultScope::Global, Some(authy_sandbox::Fault::Slow(Duration::from_millis(600))));
    for program in [Program::Su, Program::Sudo] {
        let case = Case::new(program, safe_config(&sandbox, id, 1));
        let before = sandbox.requests().len();
        let comm = if program == Program::Su { "su" } else { "sudo" };
        let outcome = std::thread::scope(|scope| {
            let stopper = scope.spawn(|| {
                let waited = Instant::now();
                while sandbox.requests().len() == before {
                    assert!(waited.elapsed() < Duration::from_secs(20), "{program:?}: no request reached the API");
                    std::thread::sleep(Duration::from_millis(5));
                }
                let pid = process_of(comm, case.caller().uid).expect("the program's process");
                kill_as(case.caller(), "-STOP", pid);
                std::thread::sleep(Duration::from_millis(2500));
                kill_as(case.caller(), "-CONT", pid);
            });
            let outcome = case.login(&[]);
            stopper.join().expect("the stopping thread");
            outcome
        });
        eprintln!("host-safety e2e {program:?} stopped across the timeout: exit {:?}", outcome.exit);
        assert!(outcome.prompted, "{program:?}:\n{}", outcome.run.output());
        assert!(
            !outcome.passed,
            "{program:?}: a stop across the timeout let a wrong token in:\n{}",
            outcome.run.output()
        );
        assert_eq!(outcome.exit, Some(1), "{program:?}:\n{}", outcome.run.output());
    }
}
