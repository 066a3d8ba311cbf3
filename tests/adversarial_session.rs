//! Class 8 of the adversarial suite: nothing leaks into the session.
//!
//! pam_yubico CVE-2018-9275 left a debug file open, inherited by the user's session. Here a
//! child process (this test binary re-run, so that no other test's sockets or threads are in
//! the picture) snapshots its open descriptors, threads and environment around each
//! `pam_authenticate` (success, wrong tokens, push, SMS, offline, config error, `debug`), and
//! a `pam_exec` placed after the module in every stack prints what the rest of the stack sees:
//! PAM_USER unchanged and no variable added to the PAM environment.

#![allow(clippy::disallowed_methods)]

mod adversarial_support;
mod common;

use adversarial_support::{child_role, output_text, run_child};
use authy_sandbox::{FaultScope, PushScenario, PushStatus};
use common::*;
use pam_authy::offline::{OfflineParams, code_at};
use pam_authy::secret::Secret;
use pam_harness::{Items, Reply};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const CHILD_TEST: &str = "child_authenticates_and_reports_leaks";
const SEED: &str = "JBSWY3DPEHPK3PXP";

fn fds() -> BTreeMap<String, String> {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let target = std::fs::read_link(entry.path()).ok()?;
            Some((entry.file_name().to_string_lossy().into_owned(), target.display().to_string()))
        })
        .collect()
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").expect("/proc/self/task").count()
}

/// The child side: runs each scenario its parent lists and prints `LEAK ...` lines, then
/// `CHILD-DONE n`. Scenarios: `confdir|answer,answer,...` separated by `;`.
#[test]
fn child_authenticates_and_reports_leaks() {
    if child_role().as_deref() != Some("leaks") {
        return;
    }
    let user = std::env::var("ADV_USER").expect("ADV_USER");
    let scenarios = std::env::var("ADV_SCENARIOS").expect("ADV_SCENARIOS");
    let items = Items { rhost: Some("192.0.2.10".into()), tty: Some("ssh".into()), ruser: None };
    let mut done = 0;
    for scenario in scenarios.split(';') {
        let (confdir, answers) = scenario.split_once('|').expect("scenario");
        let mut answers: std::collections::VecDeque<String> = answers.split(',').map(str::to_owned).collect();
        let (fds_before, threads_before) = (fds(), threads());
        let env_before: Vec<(String, String)> = std::env::vars().collect();
        let result = pam_harness::authenticate(Some(Path::new(confdir)), "svc", &user, &items, &mut |m| {
            if m.style.is_prompt() { Reply::Text(answers.pop_front().unwrap_or_default()) } else { Reply::text("") }
        })
        .expect("pam_start");
        // A joined thread may linger in /proc for a moment; a leaked one stays.
        let deadline = Instant::now() + Duration::from_secs(2);
        while threads() > threads_before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let (fds_after, threads_after) = (fds(), threads());
        for (fd, target) in &fds_after {
            if fds_before.get(fd) != Some(target) {
                println!("LEAK {confdir}: fd {fd} -> {target} (code {})", result.code);
            }
        }
        if threads_after != threads_before {
            println!("LEAK {confdir}: {threads_before} threads before, {threads_after} after");
        }
        let env_after: Vec<(String, String)> = std::env::vars().collect();
        if env_after != env_before {
            println!("LEAK {confdir}: the process environment changed");
        }
        println!("RESULT {confdir} {}", result.code);
        done += 1;
    }
    println!("CHILD-DONE {done}");
}

/// A stack with the module (and `args`) and, after it, `pam_exec` printing its environment
/// (the PAM environment plus PAM_USER and the other items) to `pam_exec.log`.
fn stack(dir: &TestDir, args: &str) -> PathBuf {
    let text = format!(
        "auth required {} config={} {args}\nauth optional pam_exec.so quiet log={} /usr/bin/env\n",
        module_path().display(),
        dir.config_path().display(),
        dir.path().join("pam_exec.log").display()
    );
    std::fs::write(dir.confdir().join("svc"), text).expect("service");
    dir.confdir()
}

#[test]
fn no_descriptor_thread_or_variable_outlives_pam_authenticate_and_pam_user_stays() {
    let user = current_user();
    let (sandbox, id) = sandbox();
    sandbox
        .set_push_scenario(FaultScope::User(id), PushScenario::AfterPolls { status: PushStatus::Approved, polls: 1 });
    let fast = "[auth]\npush_timeout_secs = 5\npush_poll_ms = 100\nmax_tries = 2";
    let online = |args: &str| {
        let dir = TestDir::new();
        dir.write_config(&config_for(&dir, &sandbox, &format!("\"{user}\" = {id}"), fast));
        stack(&dir, args);
        dir
    };
    let token = sandbox.current_token(id).expect("token");
    let mut scenarios: Vec<(TestDir, String)> = vec![
        (online(""), token.clone()),
        (online("debug"), "0000000,1111111".into()),
        (online("debug"), "push,".into()),
        (online(""), "sms,0000000,0000000".into()),
        (online("method=push"), ",".into()),
    ];
    // Offline: the API is down and the offline code is right.
    let offline = TestDir::new();
    let text = offline_config(&offline, &sandbox, id, SEED, &offline.state_dir(), "", "");
    offline.write_config(&text);
    stack(&offline, "debug");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs();
    let params = OfflineParams { digits: 6, period_secs: 30, skew_steps: 1 };
    let code = code_at(&Secret::from(SEED), now, &params).expect("code").expose().to_owned();
    scenarios.push((offline, format!("1234567,{code}")));
    // A broken config.
    let broken = TestDir::new();
    broken.write_config("[api\n");
    stack(&broken, "debug");
    scenarios.push((broken, String::new()));

    let list: Vec<String> =
        scenarios.iter().map(|(dir, answers)| format!("{}|{answers}", dir.confdir().display())).collect();
    let output = run_child(CHILD_TEST, "leaks", &[("ADV_USER", user.clone()), ("ADV_SCENARIOS", list.join(";"))]);
    let text = output_text(&output);
    assert!(text.contains(&format!("CHILD-DONE {}", scenarios.len())), "{text}");
    assert!(!text.contains("LEAK"), "{text}");
    let codes: Vec<&str> = text.lines().filter_map(|l| l.split_once("RESULT ").map(|(_, r)| r)).collect();
    let expected = ["0", "11", "0", "11", "0", "0", "3"];
    assert_eq!(codes.len(), expected.len(), "{text}");
    for (line, code) in codes.iter().zip(expected) {
        assert!(line.ends_with(&format!(" {code}")), "expected PAM code {code}: {line}\n{text}");
    }

    for (dir, _) in &scenarios {
        let log = std::fs::read_to_string(dir.path().join("pam_exec.log")).expect("pam_exec ran after the module");
        let vars: BTreeMap<&str, &str> = log.lines().filter_map(|l| l.split_once('=')).collect();
        assert_eq!(vars.get("PAM_USER"), Some(&user.as_str()), "{log}");
        let added: Vec<&&str> = vars
            .keys()
            .filter(|k| !matches!(**k, "PAM_USER" | "PAM_SERVICE" | "PAM_TYPE" | "PAM_RHOST" | "PAM_TTY" | "PAM_RUSER"))
            .collect();
        assert!(added.is_empty(), "the module added PAM environment variables {added:?}:\n{log}");
    }
}
