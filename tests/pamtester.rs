//! A PAM application other than ours: Debian's `pamtester`, in a private mount namespace
//! whose /etc/pam.d is the test's confdir (the host's stacks are never touched), against the
//! in-process sandbox. Root only; skipped with a message otherwise.

#![allow(clippy::disallowed_methods)]

mod common;

use common::*;
use std::io::Write;
use std::process::{Command, Stdio};

fn pamtester(dir: &TestDir, service: &str, user: &str, answer: &str) -> (bool, String) {
    let script = format!(
        "mount --bind {} /etc/pam.d && exec pamtester -v -I rhost=198.51.100.20 -I tty=ssh {service} {user} authenticate",
        dir.confdir().display()
    );
    let mut child = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn unshare");
    child.stdin.take().expect("stdin").write_all(format!("{answer}\n").as_bytes()).expect("answer");
    let output = child.wait_with_output().expect("pamtester");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: pamtester in a private mount namespace needs root")]
fn pamtester_authenticates_with_the_right_token_and_fails_with_a_wrong_one() {
    common::require_root();
    if Command::new("pamtester").arg("--version").output().is_err() {
        panic!("pamtester is not installed: run scripts/install-deps");
    }
    let (sandbox, id) = sandbox();
    let dir = TestDir::new();
    let user = current_user();
    dir.write_config(&config_for(&dir, &sandbox, &format!("\"{user}\" = {id}"), "[auth]\nmax_tries = 1"));
    dir.service("pamtester-2fa", "");

    let token = sandbox.current_token(id).expect("token");
    let (ok, text) = pamtester(&dir, "pamtester-2fa", &user, &token);
    assert!(ok, "right token must authenticate: {text}");
    assert!(text.contains("successfully authenticated"), "{text}");

    let (ok, text) = pamtester(&dir, "pamtester-2fa", &user, "0000000");
    assert!(!ok, "wrong token must fail: {text}");
    let verified = sandbox.requests().iter().filter(|r| r.route_path.contains("/verify/")).count();
    assert_eq!(verified, 2);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mounts.contains(" /etc/pam.d "), "the host's /etc/pam.d must be untouched");
}

/// Replay protection holds across processes: a code accepted here is refused to pamtester.
#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: pamtester in a private mount namespace needs root")]
fn an_offline_code_accepted_in_one_process_is_refused_in_another() {
    common::require_root();
    let (sandbox, id) = sandbox();
    let dir = TestDir::new();
    let user = current_user();
    let seed = "JBSWY3DPEHPK3PXPJBSWY3DP";
    let mapping = format!("\"{user}\" = {{ authy_id = {id}, offline_secret = \"{seed}\" }}");
    let extra = format!("[auth]\nmax_tries = 1\n[offline]\nstate_dir = \"{}\"", dir.state_dir().display());
    let text = config_for(&dir, &sandbox, &mapping, &extra)
        .replace(&sandbox.url(), &format!("https://127.0.0.1:{}", closed_port()));
    dir.write_config(&text);
    dir.service("offline-2fa", "");
    let params = pam_authy::offline::OfflineParams { digits: 6, period_secs: 30, skew_steps: 1 };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs();
    let code = pam_authy::offline::code_at(&pam_authy::secret::Secret::from(seed), now, &params).expect("code");
    let code = code.expose().to_owned();
    let here = dir.authenticate("offline-2fa", &user, &mut |m: &pam_harness::Message| {
        if m.text.contains("Offline code") {
            pam_harness::Reply::Text(code.clone())
        } else {
            pam_harness::Reply::text("1234567")
        }
    });
    assert_eq!(here.code, pam_harness::PAM_SUCCESS, "{}", here.text());
    let (ok, text) = pamtester(&dir, "offline-2fa", &user, &format!("1234567\n{code}"));
    assert!(!ok, "the same offline code in another process must be refused: {text}");
}
