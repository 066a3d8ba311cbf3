//! The module never harms its host: no signal from its I/O reaches the application, and no
//! server can stretch a login past `timeout_secs`.
//!
//! SIGPIPE: a child process (this binary re-run) puts SIGPIPE back to its default action, as
//! `su` and `login` leave it, and authenticates 100 times against servers that reset the
//! connection after the TLS handshake and after reading the request; the child must live to
//! print its result. Deadlines: a server that sends a valid verdict one byte at a time is cut
//! at the timeout (`timeout_secs = 1`) instead of being waited for.

#![allow(clippy::disallowed_methods)]

mod adversarial_support;
mod common;

use adversarial_support::{
    Behaviour, RawServer, child_result, child_role, http_response, output_text, print_child_result, run_child,
};
use common::*;
use pam_harness::{PAM_AUTHINFO_UNAVAIL, PAM_MAXTRIES, PAM_SUCCESS};
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

const CHILD_TEST: &str = "child_logs_in_again_and_again_with_sigpipe_at_its_default";
const RUNS: usize = 100;

fn raw_config(dir: &TestDir, server: &RawServer, extra: &str) {
    let ca = dir.write("raw-ca.pem", server.ca_pem(), 0o644);
    dir.write_config(&format!(
        "[api]\nurl = \"{}\"\napi_key = \"key\"\nca_file = \"{}\"\ntimeout_secs = 1\n{extra}\n[users]\n\"{}\" = 1\n",
        server.url(),
        ca.display(),
        current_user()
    ));
    dir.service("svc", "");
}

/// The child side: SIGPIPE at its default, `RUNS` logins with the stack its parent names.
#[test]
fn child_logs_in_again_and_again_with_sigpipe_at_its_default() {
    if child_role().as_deref() != Some("sigpipe") {
        return;
    }
    pam_harness::default_sigpipe();
    let confdir = std::path::PathBuf::from(std::env::var("HOST_CONFDIR").expect("HOST_CONFDIR"));
    let items = pam_harness::Items::default();
    let mut codes = Vec::new();
    for _ in 0..RUNS {
        let result =
            pam_harness::authenticate(Some(&confdir), "svc", &current_user(), &items, &mut answers(&["1234567"]))
                .expect("pam_start");
        codes.push(result.code);
    }
    println!("CHILD-SURVIVED {}", codes.len());
    println!("CHILD-CODES {codes:?}");
}

#[test]
fn a_connection_reset_never_kills_a_caller_that_leaves_sigpipe_at_its_default() {
    for behaviour in [Behaviour::ResetAfterHandshake, Behaviour::ResetAfterRequest] {
        let server = RawServer::start_with(Vec::new(), behaviour);
        let dir = TestDir::new();
        raw_config(&dir, &server, "");
        let output = run_child(CHILD_TEST, "sigpipe", &[("HOST_CONFDIR", dir.confdir().display().to_string())]);
        let text = output_text(&output);
        assert_eq!(output.status.signal(), None, "{behaviour:?}: the caller was killed by a signal: {text}");
        assert!(text.contains(&format!("CHILD-SURVIVED {RUNS}")), "{behaviour:?}: {text}");
        assert!(!text.contains(&format!("{PAM_SUCCESS},")), "{behaviour:?}: a reset let a login pass: {text}");
        eprintln!("host-safety {behaviour:?}: the caller survived {RUNS} of {RUNS} logins");
    }
}

#[test]
fn a_body_that_trickles_in_is_cut_at_the_timeout() {
    let body = br#"{"message":"Token is valid.","token":"is valid","success":"true","device":{}}"#;
    let response = http_response("200 OK", &["Content-Type: application/json"], body);
    let head_len = response.len() - body.len();
    let interval = Duration::from_millis(100);
    let server = RawServer::start_with(response, Behaviour::Trickle { head_len, interval });
    let dir = TestDir::new();
    raw_config(&dir, &server, "");
    let started = Instant::now();
    // The token, then Enter at the notice that Authy cannot be reached.
    let result = dir.authenticate("svc", &current_user(), &mut answers(&["1234567", ""]));
    let elapsed = started.elapsed();
    eprintln!(
        "host-safety trickle: login took {} ms with timeout_secs = 1 (the body alone takes {} ms)",
        elapsed.as_millis(),
        (interval * body.len() as u32).as_millis()
    );
    assert!(elapsed < Duration::from_millis(2500), "the login waited {elapsed:?} for a trickling body");
    assert_eq!(result.code, PAM_AUTHINFO_UNAVAIL, "{}", result.text());
}

/// The push wait ends at `push_timeout_secs` even when a status poll is in flight then: a
/// server that never answers the polls (`timeout_secs = 30`, push timeout 6 s) cannot stretch
/// the wait to the push timeout plus one request timeout.
#[test]
fn a_poll_in_flight_at_the_push_deadline_is_cut_at_the_deadline() {
    let (sandbox, id) = sandbox();
    let dir = TestDir::new();
    let extra = "[auth]\npush_timeout_secs = 6\npush_poll_ms = 100\nmax_tries = 1\n";
    dir.write_config(
        &config_for(&dir, &sandbox, &format!("\"{}\" = {id}", current_user()), extra)
            .replace("timeout_secs = 5", "timeout_secs = 30"),
    );
    dir.service("svc", "");
    let items = pam_harness::Items { rhost: Some("203.0.113.9".into()), tty: Some("ssh".into()), ruser: None };
    let mut typed = vec!["push", ""].into_iter();
    let mut pushed_at = None;
    let result = dir.authenticate_with("svc", &current_user(), &items, &mut |m: &pam_harness::Message| {
        if m.text.contains("press Enter") {
            // The push exists; from now on every poll hangs.
            sandbox.set_fault(authy_sandbox::FaultScope::User(id), Some(authy_sandbox::Fault::Hang));
            pushed_at = Some(Instant::now());
        }
        if m.style.is_prompt() {
            pam_harness::Reply::text(typed.next().expect("a prompt"))
        } else {
            pam_harness::Reply::text("")
        }
    });
    let waited = pushed_at.expect("the push prompt").elapsed();
    eprintln!("host-safety push deadline: polls hanging, push timeout 6 s, timeout_secs 30: waited {waited:?}");
    assert_eq!(result.code, PAM_MAXTRIES, "{}", result.text());
    assert!(waited < Duration::from_millis(7500), "the push wait outlived its deadline: {waited:?}");
}

const LIMITS_CHILD: &str = "child_logs_in_with_almost_no_descriptors_left";

/// The child side: for each k in 0..40, fills its descriptor table (RLIMIT_NOFILE, which the
/// caller of sudo or su sets) so that only k are left, and logs in under `failmode = "safe"`.
#[test]
fn child_logs_in_with_almost_no_descriptors_left() {
    if child_role().as_deref() != Some("limits") {
        return;
    }
    let confdir = std::path::PathBuf::from(std::env::var("HOST_CONFDIR").expect("HOST_CONFDIR"));
    let items = pam_harness::Items::default();
    let user = current_user();
    let mut codes = Vec::new();
    for free in 0..40 {
        let mut filler = Vec::new();
        while let Ok(file) = std::fs::File::open("/dev/null") {
            filler.push(file);
        }
        filler.truncate(filler.len().saturating_sub(free));
        let result = pam_harness::authenticate(Some(&confdir), "svc", &user, &items, &mut answers(&["1234567"]));
        drop(filler);
        codes.push(result.map(|r| r.code).unwrap_or(-1));
    }
    println!("CHILD-CODES {codes:?}");
}

/// A wrong token under `failmode = "safe"` with the API up: whatever descriptor limit the
/// caller leaves, the result is never PAM_SUCCESS (EMFILE and friends are local failures).
#[test]
fn a_descriptor_limit_never_turns_a_wrong_token_into_a_fail_safe_success() {
    let (sandbox, id) = sandbox();
    let dir = TestDir::new();
    dir.write_config(&config_for(
        &dir,
        &sandbox,
        &format!("\"{}\" = {id}", current_user()),
        "[auth]\nfailmode = \"safe\"\nmax_tries = 1\n",
    ));
    dir.service("svc", "");
    let output = run_child(LIMITS_CHILD, "limits", &[("HOST_CONFDIR", dir.confdir().display().to_string())]);
    let text = output_text(&output);
    let codes = text
        .lines()
        .find_map(|l| l.split_once("CHILD-CODES ").map(|(_, codes)| codes))
        .unwrap_or_else(|| panic!("no result: {text}"));
    eprintln!("host-safety descriptor limits: codes for 0..40 free descriptors: {codes}");
    assert!(
        !codes.contains(&format!("[{PAM_SUCCESS},"))
            && !codes.contains(&format!(" {PAM_SUCCESS},"))
            && !codes.contains(&format!(" {PAM_SUCCESS}]")),
        "a descriptor limit let a wrong token in: {codes}"
    );
}

const STOP_CHILD: &str = "child_logs_in_once_for_a_parent_that_stops_it";

/// The child side: prints its pid, waits for the parent's go, logs in once.
#[test]
fn child_logs_in_once_for_a_parent_that_stops_it() {
    if child_role().as_deref() != Some("stop") {
        return;
    }
    let confdir = std::path::PathBuf::from(std::env::var("HOST_CONFDIR").expect("HOST_CONFDIR"));
    let user = current_user();
    // Like sudo started by an ordinary user: that user may stop the process.
    pam_harness::become_setuid_root_started_by(65534);
    let result = pam_harness::authenticate(
        Some(&confdir),
        "svc",
        &user,
        &pam_harness::Items::default(),
        &mut answers(&["1234567"]),
    )
    .expect("pam_start");
    print_child_result(result.code);
}

/// Runs the stop child; with `stop`, SIGSTOPs it once its request reached the (slow) sandbox
/// and SIGCONTs it after the timeout has passed. Returns the child's PAM code.
fn login_stopped_across_the_timeout(dir: &TestDir, sandbox: &authy_sandbox::Sandbox, stop: bool) -> i32 {
    let before = sandbox.requests().len();
    let child = adversarial_support::child_command(
        STOP_CHILD,
        "stop",
        &[("HOST_CONFDIR", dir.confdir().display().to_string())],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("spawn the child");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    if stop {
        let waited = Instant::now();
        while sandbox.requests().len() == before && waited.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(5));
        }
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).expect("SIGSTOP");
        std::thread::sleep(Duration::from_millis(2500));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).expect("SIGCONT");
    }
    let output = child.wait_with_output().expect("wait");
    let text = output_text(&output);
    child_result(&text)
}

/// The API answers a wrong token after 600 ms, the timeout is 1 s; the caller (the real uid
/// of a setuid-root process, as under sudo) stops the process for 2.5 s while the request is
/// in flight, so that on SIGCONT the timeout fires first. Under `failmode = "safe"` that must
/// never become PAM_SUCCESS.
#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: sets the real uid of a root process")]
fn stopping_the_process_across_the_timeout_never_gives_a_fail_safe_success() {
    let (sandbox, id) = sandbox();
    sandbox.set_fault(authy_sandbox::FaultScope::Global, Some(authy_sandbox::Fault::Slow(Duration::from_millis(600))));
    let dir = TestDir::new();
    let extra = "[auth]\nfailmode = \"safe\"\nmax_tries = 1\n";
    dir.write_config(
        &config_for(&dir, &sandbox, &format!("\"{}\" = {id}", current_user()), extra)
            .replace("timeout_secs = 5", "timeout_secs = 1"),
    );
    dir.service("svc", "");
    let unstopped = login_stopped_across_the_timeout(&dir, &sandbox, false);
    assert_ne!(unstopped, PAM_SUCCESS, "a wrong token passed without any stop");
    let stopped = login_stopped_across_the_timeout(&dir, &sandbox, true);
    eprintln!("host-safety stop/continue: without a stop {unstopped}, stopped across the timeout {stopped}");
    assert_ne!(stopped, PAM_SUCCESS, "SIGSTOP/SIGCONT across the timeout turned a wrong token into PAM_SUCCESS");
}

/// A proxy on loopback that answers every CONNECT with `reply` and counts the CONNECTs.
fn refusing_proxy(reply: &'static str) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                match stream.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            if head.starts_with(b"CONNECT ") {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    (port, count)
}

/// A wrong proxy password (407) or a proxy that forbids the tunnel (403) is a configuration
/// error: never "unreachable", so never a fail-safe success, and no offline prompt.
#[test]
fn a_proxy_that_refuses_the_tunnel_is_a_configuration_error_never_unreachable() {
    let (sandbox, id) = sandbox();
    for reply in [
        "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"p\"\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
    ] {
        let (port, connects) = refusing_proxy(reply);
        let dir = TestDir::new();
        let extra = "[auth]\nfailmode = \"safe\"\nmax_tries = 1\n";
        let config = config_for(&dir, &sandbox, &format!("\"{}\" = {id}", current_user()), extra)
            .replace("timeout_secs = 5\n", &format!("timeout_secs = 5\nproxy = \"http://127.0.0.1:{port}\"\n"));
        dir.write_config(&config);
        dir.service("svc", "");
        let result = dir.authenticate("svc", &current_user(), &mut answers(&["1234567"]));
        assert!(connects.load(std::sync::atomic::Ordering::SeqCst) >= 1, "the proxy was not used");
        assert_eq!(
            result.code,
            pam_harness::PAM_SERVICE_ERR,
            "{}: {}",
            reply.lines().next().unwrap_or(""),
            result.text()
        );
    }
}
