//! The `authy-sandbox` binary as a shell script would use it: start, read the `key=value`
//! lines, drive it through the control interface and the API, stop it.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

/// Kills the child (by its own handle) even if an assertion fails first.
struct Running(Child);
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(args: &[&str]) -> (Running, HashMap<String, String>, Vec<String>) {
    start_in(args, &std::env::temp_dir())
}

/// Starts the binary with `TMPDIR` set to `tmpdir`; returns its facts and `user=` lines.
fn start_in(args: &[&str], tmpdir: &std::path::Path) -> (Running, HashMap<String, String>, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_authy-sandbox"))
        .args(args)
        .env("TMPDIR", tmpdir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn authy-sandbox");
    let stdout = child.stdout.take().expect("stdout");
    let running = Running(child);
    let mut facts = HashMap::new();
    let mut users = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        if line == "ready" {
            return (running, facts, users);
        }
        if line.starts_with("user=") {
            users.push(line);
        } else if let Some((k, v)) = line.split_once('=') {
            facts.insert(k.to_owned(), v.to_owned());
        }
    }
    panic!("authy-sandbox exited before printing ready");
}

fn control_get(control_url: &str, token: &str, path: &str) -> Resp {
    let addr = control_url.trim_start_matches("http://");
    let mut tcp = TcpStream::connect(addr).expect("control");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(tcp, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut out = Vec::new();
    tcp.read_to_end(&mut out).expect("read");
    parse_response(&out)
}

#[test]
fn the_binary_prints_its_facts_and_serves_until_killed() {
    let dir = tempfile::tempdir().expect("tmp");
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, "cli-test-key\n").expect("key file");
    let tls_dir = dir.path().join("tls");
    let state = dir.path().join("state.json");
    let (_child, facts, users) = start(&[
        "--listen",
        "127.0.0.1:0",
        "--control=127.0.0.1:0",
        "--tls-dir",
        tls_dir.to_str().expect("utf8"),
        "--state",
        state.to_str().expect("utf8"),
        "--api-key-file",
        key_file.to_str().expect("utf8"),
        "--normalize-dot-segments",
        "--user",
        "alice:alice@example.com:555-123-4567:1",
        "--user",
        "bob:bob@example.com:555-000-0002:1",
    ]);
    assert_eq!(facts["api_key"], "cli-test-key");
    assert_eq!(facts["ca_file"], tls_dir.join("ca.pem").display().to_string());
    assert_eq!(users.len(), 2);
    let alice: u64 = users[0].strip_prefix("user=alice authy_id=").expect("alice line").parse().expect("id");

    let control_url = &facts["control_url"];
    let control_token = &facts["control_token"];
    assert_eq!(control_token.len(), 64);
    assert_eq!(control_get(control_url, "wrong", &format!("/users/{alice}/token")).status, 401);
    let token = control_get(control_url, control_token, &format!("/users/{alice}/token")).json()["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let ca = std::fs::read_to_string(&facts["ca_file"]).expect("ca");
    let addr = facts["url"].trim_start_matches("https://").to_owned();
    let req = format!(
        "GET /protected/json/verify/{token}/{alice}?force=true HTTP/1.1\r\nHost: {addr}\r\nX-Authy-API-Key: cli-test-key\r\nConnection: close\r\n\r\n"
    );
    let r = parse_response(&raw_exchange_to(&addr, &ca, req.as_bytes()).expect("verify"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["token"], "is valid");
    // The dot-segment flag reached the server.
    let req = format!(
        "GET /protected/json/verify/..%2fsms/{alice}?force=true HTTP/1.1\r\nHost: {addr}\r\nX-Authy-API-Key: cli-test-key\r\nConnection: close\r\n\r\n"
    );
    let r = parse_response(&raw_exchange_to(&addr, &ca, req.as_bytes()).expect("sms"));
    assert_eq!(r.json()["message"], "SMS token was sent");
    // The users were persisted.
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).expect("state")).expect("json");
    assert_eq!(saved["users"].as_array().map(Vec::len), Some(2));
}

#[test]
fn usage_errors_exit_with_status_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_authy-sandbox")).arg("--frobnicate").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: authy-sandbox"));
    let out = Command::new(env!("CARGO_BIN_EXE_authy-sandbox")).args(["--control", "0.0.0.0:0"]).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn without_a_tls_dir_the_ca_lives_in_a_private_directory_removed_on_sigterm() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let tmp = tempfile::tempdir().expect("tmp");
    let (running, facts, _) = start_in(&[], tmp.path());
    let ca_file = std::path::PathBuf::from(&facts["ca_file"]);
    let ca = std::fs::read_to_string(&ca_file).expect("ca file");
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
    // Not a predictable name in the shared directory, where a planted link would be followed.
    let private = ca_file.parent().expect("parent").to_owned();
    assert_eq!(private.parent(), Some(tmp.path()), "{}", ca_file.display());
    let meta = std::fs::symlink_metadata(&private).expect("private dir");
    assert!(meta.is_dir());
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    assert_eq!(meta.uid(), nix_uid());
    assert!(std::fs::symlink_metadata(&ca_file).expect("ca").file_type().is_file());
    assert_eq!(facts["api_key"].len(), 32);
    assert!(!facts.contains_key("control_url"));
    let addr = facts["url"].trim_start_matches("https://").to_owned();
    let req =
        format!("GET /protected/json/app/details?api_key={} HTTP/1.1\r\nConnection: close\r\n\r\n", facts["api_key"]);
    let r = parse_response(&raw_exchange_to(&addr, &ca, req.as_bytes()).expect("details"));
    assert_eq!(r.status, 200);

    let mut running = running;
    let status = Command::new("kill").args(["-TERM", &running.0.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let exit = running.0.wait().expect("wait");
    assert_eq!(exit.code(), Some(0), "{exit:?}");
    assert!(!private.exists(), "{} was left behind", private.display());
}

fn nix_uid() -> u32 {
    std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).expect("uid")
}

#[test]
fn a_wildcard_listen_address_is_reported_as_such() {
    let (mut running, facts, _) = start(&["--listen", "0.0.0.0:0"]);
    let _ = running.0.kill();
    let _ = running.0.wait();
    let mut warning = String::new();
    running.0.stderr.take().expect("stderr").read_to_string(&mut warning).expect("stderr");
    assert!(facts["listen"].starts_with("0.0.0.0:"), "{facts:?}");
    assert!(warning.contains("every interface"), "{warning}");
}
