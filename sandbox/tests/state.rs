//! The state file: users, secrets, flags and replay steps survive a restart; the file is
//! private; a corrupt file stops the start instead of silently losing users.

mod common;

use std::os::unix::fs::PermissionsExt as _;

use authy_sandbox::{Sandbox, SandboxConfig};
use common::*;

const T: u64 = 1_800_000_015;

#[test]
fn users_secrets_and_replay_state_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let state = dir.path().join("state.json");
    let config = SandboxConfig { state_file: Some(state.clone()), ..SandboxConfig::default() };
    let (id, secret, tok) = {
        let sb = Sandbox::start(config.clone()).expect("start");
        sb.set_clock(Some(T));
        let id = sb.add_user("carol@example.com", "+44 7700 900123", 44);
        sb.set_user_has_app(id, false);
        let tok = sb.current_token(id).expect("token");
        let r = get(&sb, &format!("/protected/json/verify/{tok}/{id}?force=true"));
        assert_eq!(r.status, 200);
        (id, sb.totp_secret(id).expect("secret"), tok)
    };
    let mode = std::fs::metadata(&state).expect("state").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let sb = Sandbox::start(config).expect("restart");
    sb.set_clock(Some(T));
    assert_eq!(sb.totp_secret(id), Some(secret));
    assert_eq!(sb.current_token(id), Some(tok.clone()));
    // Same phone, same id; a new phone gets a new id.
    assert_eq!(sb.add_user("carol@example.com", "447700900123", 44), id);
    assert_ne!(sb.add_user("dave@example.com", "5550001111", 1), id);
    // Flags and the used step were persisted too.
    let v = get(&sb, &format!("/protected/json/users/{id}/status")).json();
    assert_eq!(v["status"]["confirmed"], true);
    assert_eq!(v["status"]["devices"], serde_json::json!([]));
    let r = get(&sb, &format!("/protected/json/verify/{tok}/{id}?force=true"));
    assert_eq!(r.json()["error_code"], "60019");
}

#[test]
fn the_state_file_is_readable_json_with_base32_secrets() {
    let dir = tempfile::tempdir().expect("tmp");
    let state = dir.path().join("s.json");
    let sb =
        Sandbox::start(SandboxConfig { state_file: Some(state.clone()), ..SandboxConfig::default() }).expect("start");
    // Created at start, before any change.
    assert!(state.exists());
    let id = sb.add_user("e@example.com", "5551112222", 1);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).expect("read")).expect("json");
    assert_eq!(v["version"], 1);
    assert_eq!(v["users"][0]["authy_id"].as_u64(), Some(id));
    let b32 = v["users"][0]["totp_secret"].as_str().expect("secret");
    assert!(b32.chars().all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c)));
    // No temp files are left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["s.json".to_owned()]);
}

#[test]
fn a_corrupt_state_file_stops_the_start() {
    let dir = tempfile::tempdir().expect("tmp");
    let state = dir.path().join("s.json");
    std::fs::write(&state, "{\"version\":1,\"users\":[").expect("write");
    let err =
        Sandbox::start(SandboxConfig { state_file: Some(state), ..SandboxConfig::default() }).expect_err("corrupt");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
}
