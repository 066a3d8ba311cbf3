//! `pam-authy test` and `pam-authy demo`: a real `pam_authenticate` through libpam with the
//! built module against the sandbox, answers piped on stdin, the PAM result on stdout.

#![allow(clippy::disallowed_methods)]

mod common;

use common::{TestDir, api_section, current_user, run, run_with_stdin, sandbox};
use pam_authy::offline::{OfflineParams, code_at};
use pam_authy::secret::Secret;
use pam_harness::closed_port;
use std::time::{SystemTime, UNIX_EPOCH};

/// A config mapping the current user to a new sandbox user, with a PAM service `svc`.
fn setup(extra: &str) -> (TestDir, authy_sandbox::Sandbox, u64) {
    let sandbox = sandbox();
    let id = sandbox.add_user("me@example.org", common::PHONE, 1);
    let dir = TestDir::new();
    let text = format!(
        "{}\n{extra}\n[offline]\nstate_dir = \"{}\"\n\n[users]\n\"{}\" = {id}\n",
        api_section(&dir, &sandbox),
        dir.path().join("state").display(),
        current_user()
    );
    dir.write_config(&text);
    dir.service("svc");
    (dir, sandbox, id)
}

fn test_args(dir: &TestDir) -> Vec<String> {
    let user = current_user();
    let confdir = dir.confdir().display().to_string();
    ["test", user.as_str(), "--confdir", confdir.as_str(), "--service", "svc"].iter().map(|s| s.to_string()).collect()
}

fn run_test(dir: &TestDir, extra: &[&str], stdin: &str) -> common::Run {
    let mut args = test_args(dir);
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_with_stdin(&args, stdin)
}

#[test]
fn the_right_token_on_stdin_gives_pam_success_and_exit_0() {
    let (dir, sandbox, id) = setup("");
    let token = sandbox.current_token(id).expect("token");
    let run = run_test(&dir, &[], &format!("{token}\n"));
    assert!(run.ok(), "{}", run.all());
    assert_eq!(run.stdout, "PAM result: PAM_SUCCESS (0)\n");
    assert!(run.stderr.contains("Authy token"), "the module's prompt is shown: {}", run.stderr);
    assert!(run.stderr.contains(&format!("Testing the PAM stack {}", dir.confdir().join("svc").display())));
    assert!(!run.stderr.contains(&token), "the answer is not echoed");
    let preflight = format!(
        "pam_authy with {}: {} needs a second factor (Authy ID {id}, no offline secret)",
        dir.config_path().display(),
        current_user()
    );
    assert!(run.stderr.lines().any(|l| l == preflight), "{}", run.stderr);
    assert!(
        sandbox.requests().iter().any(|r| r.raw_path == format!("/protected/json/verify/{token}/{id}")),
        "the module verified the token with the API"
    );
}

#[test]
fn a_wrong_token_prints_the_failure_code_and_exits_1() {
    let (dir, _sandbox, _) = setup("[auth]\nmax_tries = 1\n");
    let run = run_test(&dir, &["--json"], "0000000\n");
    assert_eq!(run.code, Some(1), "{}", run.all());
    let report = run.json();
    assert_eq!(report["ok"], false);
    assert_eq!(report["result"], "PAM_MAXTRIES");
    assert_eq!(report["code"], 11);
    assert_eq!(report["service"], "svc");
    assert_eq!(run.error_lines().len(), 1, "{}", run.stderr);
    assert!(run.error_lines()[0].ends_with("ended with PAM_MAXTRIES"), "{}", run.stderr);
}

#[test]
fn closing_stdin_at_the_prompt_is_a_conversation_error() {
    let (dir, _sandbox, _) = setup("");
    let run = run_test(&dir, &[], "");
    assert_eq!(run.code, Some(1));
    assert_eq!(run.stdout, "PAM result: PAM_CONV_ERR (19)\n");
}

#[test]
fn an_offline_secret_from_offline_enroll_logs_in_while_the_api_is_down() {
    let (dir, sandbox, _) = setup("");
    let enrolled = dir.cli("offline-enroll", &[&current_user(), "--json"]);
    assert!(enrolled.ok(), "{}", enrolled.all());
    let uri = enrolled.json()["uri"].as_str().expect("uri").to_owned();
    let secret = uri.split("secret=").nth(1).and_then(|s| s.split('&').next()).expect("secret in uri").to_owned();

    // The API goes away: the same file, another URL, same mode.
    let down = format!("https://127.0.0.1:{}", closed_port());
    std::fs::write(dir.config_path(), dir.config_text().replace(&sandbox.url(), &down)).expect("rewrite");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("time").as_secs();
    let params = OfflineParams { digits: 6, period_secs: 30, skew_steps: 1 };
    let code = code_at(&Secret::from(secret.as_str()), now, &params).expect("code");
    let run = run_test(&dir, &[], &format!("1234567\n{}\n", code.expose()));
    assert!(run.ok(), "{}", run.all());
    assert_eq!(run.stdout, "PAM result: PAM_SUCCESS (0)\n");
    assert!(run.stderr.contains("Offline code"), "{}", run.stderr);
}

#[test]
fn the_preflight_says_what_the_module_will_answer_for_an_unmapped_user_or_a_broken_config() {
    let (dir, _sandbox, _) = setup("");
    let run = common::run_with_stdin(
        &["test", "daemon", "--confdir", &dir.confdir().display().to_string(), "--service", "svc"],
        "",
    );
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("daemon is not in [users]: PAM_USER_UNKNOWN"), "{}", run.stderr);
    assert_eq!(run.stdout, "PAM result: PAM_USER_UNKNOWN (10)\n");

    common::set_mode(&dir.config_path(), 0o644);
    let run = run_test(&dir, &[], "");
    assert!(
        run.warnings().iter().any(|w| w.contains("pam_authy will answer PAM_SERVICE_ERR") && w.contains("mode 0644")),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "PAM result: PAM_SERVICE_ERR (3)\n");
}

#[test]
fn a_stack_without_the_module_is_tested_with_a_warning() {
    let dir = TestDir::new();
    std::fs::write(dir.confdir().join("plain"), "auth required pam_permit.so\n").expect("write");
    let confdir = dir.confdir().display().to_string();
    let run = run(&["test", &current_user(), "--confdir", &confdir, "--service", "plain"]);
    assert!(run.ok(), "{}", run.all());
    assert_eq!(run.stdout, "PAM result: PAM_SUCCESS (0)\n");
    assert!(run.warnings().iter().any(|w| w.contains("never loads pam_authy")), "{}", run.stderr);
}

#[test]
fn a_missing_service_or_a_bad_service_name_is_refused() {
    let dir = TestDir::new();
    let confdir = dir.confdir().display().to_string();
    let run = run(&["test", "root", "--confdir", &confdir, "--service", "absent"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("absent: no such PAM service file"), "{}", run.stderr);
    let run = common::run(&["test", "root", "--confdir", &confdir, "--service", "../etc/passwd"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("is not a PAM service name"), "{}", run.stderr);
}

#[test]
fn rhost_and_tty_reach_the_module() {
    let (dir, sandbox, id) = setup("[auth]\nmethod = \"push\"\npush_timeout_secs = 5\npush_poll_ms = 100\n");
    sandbox.set_push_scenario(
        authy_sandbox::FaultScope::User(id),
        authy_sandbox::PushScenario::AfterPolls { status: authy_sandbox::PushStatus::Approved, polls: 2 },
    );
    let run = run_test(&dir, &["--rhost", "198.51.100.7", "--tty", "pts/9"], "\n");
    assert!(run.ok(), "{}", run.all());
    let approvals = sandbox.approval_requests();
    assert_eq!(approvals.len(), 1);
    let details = format!("{:?}", approvals[0].details);
    assert!(details.contains("198.51.100.7"), "{details}");
}

#[test]
fn demo_auto_still_prints_pam_success() {
    let run = run(&["demo", "--auto", "--module", &common::module_path().display().to_string()]);
    assert!(run.ok(), "{}", run.all());
    assert!(run.stdout.contains("PAM result: PAM_SUCCESS (0)"), "{}", run.stdout);
}

/// `pam-authy demo` with TMPDIR in a directory of its own, answers on stdin, stderr read
/// as it comes.
struct Demo {
    child: std::process::Child,
    tmp: tempfile::TempDir,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Demo {
    fn start(stdin: &str) -> Demo {
        Demo::start_with(&[], stdin)
    }

    fn start_with(args: &[&str], stdin: &str) -> Demo {
        use std::io::{Read, Write};
        use std::process::{Command, Stdio};
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(common::binary())
            .args(["demo", "--module", &common::module_path().display().to_string()])
            .args(args)
            .env("TMPDIR", tmp.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pam-authy demo");
        child.stdin.as_mut().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 512];
            while let Ok(n @ 1..) = pipe.read(&mut buffer) {
                sink.lock().expect("lock").push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
        Demo { child, tmp, stderr }
    }

    fn wait_for_stderr(&self, needle: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !self.stderr.lock().expect("lock").contains(needle) {
            assert!(
                std::time::Instant::now() < deadline,
                "{needle:?} never came: {}",
                self.stderr.lock().expect("lock")
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    fn type_line(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().expect("stdin");
        stdin.write_all(format!("{line}\n").as_bytes()).expect("write stdin");
    }

    /// Closes stdin, waits for the end, and checks nothing stayed in TMPDIR.
    fn finish(mut self) -> (String, String) {
        let output = std::mem::replace(&mut self.child, std::process::Command::new("true").spawn().expect("true"))
            .wait_with_output()
            .expect("wait for the demo");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        // The reader thread drains stderr until the pipe closes.
        std::thread::sleep(std::time::Duration::from_millis(100));
        let stderr = self.stderr.lock().expect("lock").clone();
        assert!(output.status.success(), "{stdout}\n{stderr}");
        assert!(self.leftovers().is_empty(), "{:?}", self.leftovers());
        (stdout, stderr)
    }

    fn leftovers(&self) -> Vec<std::path::PathBuf> {
        std::fs::read_dir(self.tmp.path()).expect("read TMPDIR").map(|e| e.expect("entry").path()).collect()
    }
}

#[test]
fn the_demo_sandbox_approves_a_push_after_a_few_seconds() {
    let mut demo = Demo::start("push\n");
    let started = std::time::Instant::now();
    let output = std::mem::replace(&mut demo.child, std::process::Command::new("true").spawn().expect("true"))
        .wait_with_output()
        .expect("wait for the demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = demo.stderr.lock().expect("lock").clone();
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("PAM result: PAM_SUCCESS (0)"), "{stdout}\n{stderr}");
    assert!(stderr.contains("Authy push sent"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
    assert!(demo.leftovers().is_empty(), "{:?}", demo.leftovers());
}

#[test]
fn an_interrupted_demo_leaves_nothing_in_tmp() {
    let mut demo = Demo::start("");
    demo.wait_for_stderr("Authy token");
    assert!(!demo.leftovers().is_empty(), "the demo keeps its files in TMPDIR while it runs");
    let kill = std::process::Command::new("kill").args(["-INT", &demo.child.id().to_string()]).status().expect("kill");
    assert!(kill.success());
    let status = demo.child.wait().expect("wait for the demo");
    assert!(!status.success());
    assert!(demo.leftovers().is_empty(), "{:?}", demo.leftovers());
}

const VERIFY_IDENTITY: &str = "2f0c9a3e5b7d4e61a8c0f1e2d3c4b5a6";
const VERIFY_PHONE: &str = "+15551234567";

/// A Verify config mapping the current user to an entity with a TOTP factor, a phone and a
/// push factor in the sandbox, with a PAM service `svc`; returns the TOTP factor's SID.
fn setup_verify(extra: &str) -> (TestDir, authy_sandbox::Sandbox, String) {
    let sandbox = sandbox();
    let account = sandbox.verify_account();
    let spec = authy_sandbox::TotpFactorSpec::default();
    let totp = sandbox.verify_add_totp_factor(&account.service_sid, VERIFY_IDENTITY, &spec).expect("totp").sid;
    let push = sandbox.verify_add_push_factor(&account.service_sid, VERIFY_IDENTITY).expect("push").sid;
    let dir = TestDir::new();
    let ca = dir.write("ca.pem", &sandbox.ca_pem(), 0o644);
    let text = format!(
        "[api]\nbackend = \"verify\"\nurl = \"{url}\"\nca_file = \"{ca}\"\ntimeout_secs = 5\n\n\
         [verify]\nservice_sid = \"{service}\"\napi_key_sid = \"{key_sid}\"\napi_key_secret = \"{secret}\"\n\n\
         {extra}\n[offline]\nstate_dir = \"{state}\"\n\n[users]\n\"{user}\" = {{ verify_identity = \"{VERIFY_IDENTITY}\", \
         totp_factor = \"{totp}\", phone = \"{VERIFY_PHONE}\", push_factor = \"{push}\" }}\n",
        url = sandbox.url(),
        ca = ca.display(),
        service = account.service_sid,
        key_sid = account.api_key_sid,
        secret = account.api_key_secret,
        state = dir.path().join("state").display(),
        user = current_user(),
    );
    dir.write_config(&text);
    dir.service("svc");
    (dir, sandbox, totp)
}

#[test]
fn test_with_the_verify_backend_logs_in_with_the_authenticator_code() {
    let (dir, sandbox, totp) = setup_verify("");
    let code = sandbox.verify_current_code(&totp).expect("code");
    let run = run_test(&dir, &[], &format!("{code}\n"));
    assert!(run.ok(), "{}", run.all());
    assert_eq!(run.stdout, "PAM result: PAM_SUCCESS (0)\n");
    assert!(run.stderr.contains("Verification code (or type sms, call or push): "), "{}", run.stderr);
    let preflight = format!(
        "pam_authy with {}: {} needs a second factor (Verify identity {VERIFY_IDENTITY}, no offline secret)",
        dir.config_path().display(),
        current_user()
    );
    assert!(run.stderr.lines().any(|l| l == preflight), "{}", run.stderr);
    assert!(!run.stderr.contains(&code), "the answer is not echoed");
    let challenges = sandbox.verify_challenges();
    assert_eq!(challenges.len(), 1);
    assert_eq!((challenges[0].factor_sid.as_str(), challenges[0].status.as_str()), (totp.as_str(), "approved"));
}

#[test]
fn test_with_the_verify_backend_sends_an_sms_and_fails_closed_on_a_wrong_code() {
    let (dir, sandbox, _) = setup_verify("[auth]\nmax_tries = 1\n");
    let run = run_test(&dir, &["--json"], "sms\n000000\n");
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert_eq!(run.json()["result"], "PAM_MAXTRIES");
    let sent = sandbox.verify_sent_codes();
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].to.as_str(), sent[0].channel.as_str()), (VERIFY_PHONE, "sms"));
    assert!(run.stderr.contains("SMS sent to +1********67"), "{}", run.stderr);
    assert!(!run.stderr.contains(VERIFY_PHONE), "the full number was shown: {}", run.stderr);
}

#[test]
fn demo_auto_with_the_verify_backend_prints_pam_success_and_never_says_authy() {
    let run = run(&["demo", "--auto", "--backend", "verify", "--module", &common::module_path().display().to_string()]);
    assert!(run.ok(), "{}", run.all());
    assert!(run.stdout.contains("sandbox Verify API"), "{}", run.stdout);
    assert!(run.stdout.contains("Verification code (or type sms, call or push): "), "{}", run.stdout);
    assert!(run.stdout.contains("PAM result: PAM_SUCCESS (0)"), "{}", run.stdout);
    let module_output: Vec<&str> = run.stdout.lines().filter(|l| !l.starts_with("  ") && !l.contains("demo")).collect();
    assert!(!module_output.iter().any(|l| l.contains("Authy")), "{module_output:?}");
}

#[test]
fn the_verify_demo_shows_the_sms_code_and_logs_in_with_it() {
    let mut demo = Demo::start_with(&["--backend", "verify"], "sms\n");
    demo.wait_for_stderr("(sandbox) the SMS of ");
    let stderr = demo.stderr.lock().expect("lock").clone();
    assert!(stderr.contains("(sandbox) the authenticator app of "), "{stderr}");
    let line = stderr.lines().find(|l| l.contains("(sandbox) the SMS of ")).expect("the SMS line");
    let code = line.rsplit(' ').next().expect("code").to_owned();
    demo.type_line(&code);
    let (stdout, stderr) = demo.finish();
    assert!(stdout.contains("PAM result: PAM_SUCCESS (0)"), "{stdout}\n{stderr}");
    assert!(stderr.contains("SMS sent to +1********00"), "{stderr}");
    assert!(!stderr.contains("Authy"), "{stderr}");
}

#[test]
fn the_verify_demo_sandbox_approves_a_push_after_a_few_seconds() {
    let started = std::time::Instant::now();
    let demo = Demo::start_with(&["--backend", "verify"], "push\n");
    let (stdout, stderr) = demo.finish();
    assert!(stdout.contains("PAM result: PAM_SUCCESS (0)"), "{stdout}\n{stderr}");
    assert!(stderr.contains("ush sent to your phone"), "{stderr}");
    assert!(!stderr.contains("Authy"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
}

#[test]
fn a_verify_code_accepted_in_one_process_is_refused_in_the_next_without_reaching_the_api() {
    let (dir, sandbox, totp) = setup_verify("");
    let code = sandbox.verify_current_code(&totp).expect("code");
    let first = run_test(&dir, &[], &format!("{code}\n"));
    assert!(first.ok(), "{}", first.all());
    let second = run_test(&dir, &["--json"], &format!("{code}\n"));
    assert_eq!(second.json()["result"], "PAM_CONV_ERR", "stdin ends at the next prompt: {}", second.all());
    assert!(second.stderr.contains("That code was already used"), "{}", second.stderr);
    assert_eq!(sandbox.verify_challenges().len(), 1, "the replayed code reached the API");
}
