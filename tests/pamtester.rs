//! A PAM application other than ours: Debian's `pamtester`, in a private mount namespace
//! whose /etc/pam.d is the test's confdir (the host's stacks are never touched), against the
//! in-process sandbox. Root only; skipped with a message otherwise.

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
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{answer}\n").as_bytes())
        .expect("answer");
    let output = child.wait_with_output().expect("pamtester");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn pamtester_authenticates_with_the_right_token_and_fails_with_a_wrong_one() {
    if !is_root() {
        eprintln!("skipped: pamtester in a private mount namespace needs root");
        return;
    }
    if Command::new("pamtester").arg("--version").output().is_err() {
        panic!("pamtester is not installed: run scripts/install-deps");
    }
    let (sandbox, id) = sandbox();
    let dir = TestDir::new();
    let user = current_user();
    dir.write_config(&config_for(
        &dir,
        &sandbox,
        &format!("\"{user}\" = {id}"),
        "[auth]\nmax_tries = 1",
    ));
    dir.service("pamtester-2fa", "");

    let token = sandbox.current_token(id).expect("token");
    let (ok, text) = pamtester(&dir, "pamtester-2fa", &user, &token);
    assert!(ok, "right token must authenticate: {text}");
    assert!(text.contains("successfully authenticated"), "{text}");

    let (ok, text) = pamtester(&dir, "pamtester-2fa", &user, "0000000");
    assert!(!ok, "wrong token must fail: {text}");
    let verified = sandbox
        .requests()
        .iter()
        .filter(|r| r.route_path.contains("/verify/"))
        .count();
    assert_eq!(verified, 2);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        !mounts.contains(" /etc/pam.d "),
        "the host's /etc/pam.d must be untouched"
    );
}
