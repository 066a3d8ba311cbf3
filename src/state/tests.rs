//! Tests of the state rules and of `FileStateStore` on real directories: replay steps,
//! failure windows, grace records, locking between processes, and every way a state file or
//! directory can be unusable (each one an error, never a fresh state).

use super::*;
use std::os::unix::fs::{MetadataExt, symlink};
use std::sync::{Arc, Barrier};

use crate::test_support::{private_dir, set_mode};

fn state_path(dir: &Path, user: &str) -> PathBuf {
    dir.join(format!("{}.json", file_stem(user).expect("stem")))
}

/// Tries to accept a code whose window ends at `end` for `user`; Ok(true) when this call
/// accepted it.
fn try_accept(store: &dyn StateStore, user: &str, end: u64) -> Result<bool, StateError> {
    let mut accepted = false;
    store.update(user, &mut |state| {
        accepted = state.accept_window(end);
        accepted
    })?;
    Ok(accepted)
}

fn read_state(path: &Path) -> UserState {
    serde_json::from_slice(&std::fs::read(path).expect("read")).expect("valid state")
}

// ---- the rules ----------------------------------------------------------------------

#[test]
fn the_first_window_is_accepted_and_the_same_window_is_then_a_replay() {
    let mut state = UserState::default();
    assert!(state.accept_window(1000));
    assert!(!state.accept_window(1000));
    assert_eq!(state.offline_used_until, Some(1000));
}

#[test]
fn an_earlier_window_end_is_refused_and_a_later_one_accepted() {
    let mut state = UserState::default();
    assert!(state.accept_window(1000));
    assert!(!state.accept_window(999));
    assert_eq!(state.offline_used_until, Some(1000));
    assert!(state.accept_window(1001));
    assert_eq!(state.offline_used_until, Some(1001));
}

#[test]
fn a_window_ending_at_zero_is_accepted_once() {
    let mut state = UserState::default();
    assert!(state.accept_window(0));
    assert!(!state.accept_window(0));
}

#[test]
fn max_failures_within_the_window_lock_out_until_the_window_has_passed() {
    let (max, window) = (5, 300);
    let mut state = UserState::default();
    let start = 1_700_000_000;
    for i in 0..4 {
        state.record_failure(start + i * 10);
        assert!(!state.locked_out(start + i * 10, max, window), "after {i}");
    }
    state.record_failure(start + 40);
    assert!(state.locked_out(start + 40, max, window));
    assert!(state.locked_out(start + 299, max, window));
    // The first failure leaves the window at start + 300: four remain.
    assert!(!state.locked_out(start + 300, max, window));
    state.prune(start + 300, window);
    assert_eq!(state.failures.len(), 4);
    state.prune(start + 340, window);
    assert!(state.failures.is_empty());
}

#[test]
fn failures_spread_wider_than_the_window_never_lock_out() {
    let mut state = UserState::default();
    let start = 1_700_000_000;
    for i in 0..20 {
        let now = start + i * 100;
        state.prune(now, 300);
        assert!(!state.locked_out(now, 5, 300), "failure {i}");
        state.record_failure(now);
    }
    assert!(state.failures.len() <= 3);
}

#[test]
fn the_failure_list_stays_bounded_and_keeps_the_newest() {
    let mut state = UserState::default();
    for t in 0..1000 {
        state.record_failure(t);
    }
    assert_eq!(state.failures.len(), MAX_FAILURES_KEPT);
    assert_eq!(state.failures.last(), Some(&999));
    assert!(state.locked_out(999, 100, 1000));
}

#[test]
fn a_claimed_code_is_refused_until_its_claim_expires_or_is_released() {
    let mut state = UserState::default();
    assert!(state.claim_code("aa", 100, 400));
    assert!(!state.claim_code("aa", 399, 699));
    assert!(state.claim_code("bb", 399, 699));
    assert!(state.claim_code("aa", 400, 700));
    assert!(state.release_code("aa"));
    assert!(state.claim_code("aa", 401, 701));
    for i in 0..MAX_USED_CODES {
        state.claim_code(&format!("t{i}"), 402, 702);
    }
    assert_eq!(state.used_codes.len(), MAX_USED_CODES);
    assert!(!state.claim_code("new", 403, 703), "a full list refuses, it never forgets a claim");
    assert!(state.claim_code("new", 702, 1002), "expired claims make room");
}

#[test]
fn a_full_list_of_claims_refuses_every_new_code_until_the_oldest_claim_expires() {
    // One claim every 4 s, each for 310 s: faster than any one factor can produce codes
    // (at most one per 20 s step), as only logins in flight or killed mid-request would be.
    let mut state = UserState::default();
    let (start, lasts) = (1_000, 310);
    for i in 0..MAX_USED_CODES as u64 {
        assert!(state.claim_code(&format!("t{i}"), start + 4 * i, start + 4 * i + lasts));
    }
    let full_at = start + 4 * (MAX_USED_CODES as u64 - 1);
    for now in [full_at, full_at + 1, start + lasts - 1] {
        assert!(!state.claim_code("legitimate", now, now + lasts), "a full list must refuse, at {now}");
        assert!(!state.claim_code("t0", now, now + lasts), "a claimed code must stay refused, at {now}");
    }
    assert_eq!(state.used_codes.len(), MAX_USED_CODES, "a refusal never drops a claim in force");
    assert!(state.claim_code("legitimate", start + lasts, start + 2 * lasts), "the oldest claim's end makes room");
    assert!(!state.claim_code("another", start + lasts, start + 2 * lasts), "one slot, not a reset");
}

#[test]
fn a_state_file_of_an_earlier_version_reads_and_is_written_back_in_windows() {
    let mut old: UserState = serde_json::from_str(r#"{"last_offline_step":5,"failures":[],"grace":[]}"#).expect("old");
    assert!(old.used_codes.is_empty());
    assert!(!old.accept_window(u64::MAX), "an unmigrated step refuses every code");
    old.migrate_offline_step(30, 1_000);
    assert_eq!((old.offline_used_until, old.last_offline_step), (Some(180), None));
    assert_eq!(serde_json::to_string(&old).expect("json"), r#"{"offline_used_until":180,"failures":[],"grace":[]}"#);
    let fresh: UserState =
        serde_json::from_str(r#"{"last_offline_step":null,"failures":[],"grace":[]}"#).expect("null");
    assert_eq!(fresh, UserState::default());
}

#[test]
fn an_earlier_step_is_read_in_the_period_in_force_and_never_beyond_the_newest_window() {
    let now = 1_700_000_005;
    let mut state = UserState { last_offline_step: Some(now / 30), ..UserState::default() };
    state.migrate_offline_step(30, (now / 30 + 2) * 30);
    assert_eq!(state.offline_used_until, Some((now / 30 + 1) * 30));
    assert!(!state.accept_window((now / 30 + 1) * 30), "the migrated step is still a replay");
    // Counted in 30 s steps, read in 60 s ones: years ahead. It refuses the codes of now only.
    let latest = (now / 60 + 2) * 60;
    let mut state = UserState { last_offline_step: Some(now / 30), ..UserState::default() };
    state.migrate_offline_step(60, latest);
    assert_eq!(state.offline_used_until, Some(latest));
    assert!(state.accept_window(latest + 60));
    // A window end already stored is never moved back by a migration.
    let mut state = UserState { last_offline_step: Some(1), offline_used_until: Some(5_000), ..UserState::default() };
    state.migrate_offline_step(30, 10_000);
    assert_eq!(state.offline_used_until, Some(5_000));
}

#[test]
fn grace_lets_the_same_service_and_rhost_pass_until_it_expires() {
    let mut state = UserState::default();
    state.grant_grace("sshd", "198.51.100.7", 1000);
    assert!(state.grace_valid("sshd", "198.51.100.7", 999));
    assert!(!state.grace_valid("sshd", "198.51.100.7", 1000));
    assert!(!state.grace_valid("sudo", "198.51.100.7", 999));
    assert!(!state.grace_valid("sshd", "198.51.100.8", 999));
    state.prune(1000, 300);
    assert!(state.grace.is_empty());
}

#[test]
fn grace_is_never_granted_or_matched_for_an_empty_rhost() {
    let mut state = UserState::default();
    state.grant_grace("sudo", "", 1000);
    assert!(state.grace.is_empty());
    state.grace.push(GraceRecord { service: "sudo".into(), rhost: String::new(), expires_at: 1000 });
    assert!(!state.grace_valid("sudo", "", 10));
}

#[test]
fn a_new_grant_for_the_same_pair_replaces_the_old_expiry() {
    let mut state = UserState::default();
    state.grant_grace("sshd", "h", 1000);
    state.grant_grace("sshd", "h", 2000);
    assert_eq!(state.grace.len(), 1);
    assert!(state.grace_valid("sshd", "h", 1500));
}

#[test]
fn grace_records_stay_bounded_dropping_the_one_expiring_first() {
    let mut state = UserState::default();
    for i in 0..100u64 {
        state.grant_grace("sshd", &format!("host{i}"), 10_000 + (i * 7919) % 100);
    }
    assert_eq!(state.grace.len(), MAX_GRACE_RECORDS);
    let kept_min = state.grace.iter().map(|r| r.expires_at).min().expect("min");
    assert!(kept_min >= 10_000 + 100 - MAX_GRACE_RECORDS as u64 - 1);
    let long = "x".repeat(MAX_GRACE_FIELD_BYTES + 1);
    state.grace.clear();
    state.grant_grace("sshd", &long, 10);
    state.grant_grace(&long, "h", 10);
    assert!(state.grace.is_empty());
}

#[test]
fn a_full_state_stays_well_under_the_size_limit() {
    let mut state = UserState { offline_used_until: Some(u64::MAX), ..UserState::default() };
    for _ in 0..MAX_FAILURES_KEPT {
        state.record_failure(u64::MAX);
    }
    let worst = "\u{1}".repeat(MAX_GRACE_FIELD_BYTES);
    for i in 0..MAX_GRACE_RECORDS {
        let mut rhost = worst.clone();
        rhost.replace_range(0..4, &format!("{i:04}"));
        state.grant_grace(&worst, &rhost, u64::MAX);
    }
    assert_eq!(state.grace.len(), MAX_GRACE_RECORDS);
    let size = serde_json::to_vec(&state).expect("json").len() as u64;
    assert!(size < MAX_STATE_BYTES, "{size}");
}

// ---- the directory ----------------------------------------------------------------

#[test]
fn a_missing_state_dir_is_created_private_to_its_owner() {
    let base = private_dir();
    let dir = base.path().join("state");
    let store = FileStateStore::open(&dir).expect("open");
    let meta = std::fs::symlink_metadata(&dir).expect("stat");
    assert!(meta.is_dir());
    assert_eq!(meta.mode() & 0o7777, 0o700);
    assert_eq!(meta.uid(), nix::unistd::geteuid().as_raw());
    assert!(try_accept(&store, "alice", 5).expect("update"));
}

#[test]
fn an_existing_private_state_dir_is_used_as_it_is() {
    let base = private_dir();
    let dir = base.path().join("state");
    std::fs::create_dir(&dir).expect("mkdir");
    set_mode(&dir, 0o755);
    FileStateStore::open(&dir).expect("open");
    assert_eq!(std::fs::metadata(&dir).expect("stat").mode() & 0o7777, 0o755);
}

#[test]
fn a_symlinked_state_dir_is_refused() {
    let base = private_dir();
    let real = base.path().join("real");
    std::fs::create_dir(&real).expect("mkdir");
    set_mode(&real, 0o700);
    let link = base.path().join("state");
    symlink(&real, &link).expect("symlink");
    assert_eq!(FileStateStore::open(&link).err(), Some(StateError::Dir(FileError::Symlink(link))));
}

#[test]
fn a_world_or_group_writable_state_dir_is_refused() {
    for mode in [0o777, 0o1777, 0o770, 0o702] {
        let base = private_dir();
        let dir = base.path().join("state");
        std::fs::create_dir(&dir).expect("mkdir");
        set_mode(&dir, mode);
        assert!(matches!(FileStateStore::open(&dir), Err(StateError::Dir(FileError::Writable { .. }))), "{mode:o}");
    }
}

#[test]
fn a_state_dir_loosened_after_opening_is_refused_at_the_next_update() {
    let base = private_dir();
    let dir = base.path().join("state");
    let store = FileStateStore::open(&dir).expect("open");
    set_mode(&dir, 0o777);
    assert!(matches!(try_accept(&store, "alice", 5), Err(StateError::Dir(FileError::Writable { .. }))));
}

#[test]
fn a_state_dir_is_not_created_under_a_writable_parent() {
    let base = private_dir();
    let open = base.path().join("open");
    std::fs::create_dir(&open).expect("mkdir");
    set_mode(&open, 0o777);
    let dir = open.join("state");
    assert!(matches!(FileStateStore::open(&dir), Err(StateError::Dir(FileError::Writable { .. }))));
    assert!(!dir.exists());
}

#[test]
fn a_state_dir_that_is_a_file_is_refused() {
    let base = private_dir();
    let file = base.path().join("state");
    std::fs::write(&file, "x").expect("write");
    assert!(matches!(FileStateStore::open(&file), Err(StateError::Dir(FileError::NotDirectory(_)))));
}

#[test]
fn a_relative_state_dir_is_refused() {
    assert!(matches!(
        FileStateStore::open(Path::new("var/lib/pam_authy")),
        Err(StateError::Dir(FileError::NotAbsolute(_)))
    ));
}

#[test]
fn a_state_dir_owned_by_another_user_is_refused() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let base = private_dir();
    let dir = base.path().join("state");
    std::fs::create_dir(&dir).expect("mkdir");
    set_mode(&dir, 0o700);
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).expect("chown");
    assert!(matches!(FileStateStore::open(&dir), Err(StateError::Dir(FileError::UntrustedOwner { uid: 65534, .. }))));
}

// ---- the files ----------------------------------------------------------------------

#[test]
fn state_is_stored_as_private_json_and_read_back() {
    let base = private_dir();
    let store = FileStateStore::open(base.path()).expect("open");
    store
        .update("alice", &mut |state| {
            state.accept_window(42);
            state.record_failure(1000);
            state.grant_grace("sshd", "198.51.100.7", 2000);
            true
        })
        .expect("update");
    let path = state_path(base.path(), "alice");
    let meta = std::fs::symlink_metadata(&path).expect("stat");
    assert!(meta.is_file());
    assert_eq!(meta.mode() & 0o7777, 0o600);
    let stored = read_state(&path);
    assert_eq!(stored.offline_used_until, Some(42));
    assert_eq!(stored.failures, vec![1000]);
    assert!(stored.grace_valid("sshd", "198.51.100.7", 1999));
    let mut seen = None;
    store
        .update("alice", &mut |state| {
            seen = Some(state.clone());
            false
        })
        .expect("update");
    assert_eq!(seen, Some(stored));
    assert!(!base.path().join(format!("{}.tmp", file_stem("alice").expect("stem"))).exists());
}

#[test]
fn an_unchanged_state_is_not_written() {
    let base = private_dir();
    let store = FileStateStore::open(base.path()).expect("open");
    store.update("alice", &mut |_| false).expect("update");
    assert!(!store.has_state("alice").expect("has_state"));
    assert!(!state_path(base.path(), "alice").exists());
}

#[test]
fn users_have_separate_files_and_separate_steps() {
    let base = private_dir();
    let store = FileStateStore::open(base.path()).expect("open");
    assert!(try_accept(&store, "alice", 7).expect("alice"));
    assert!(try_accept(&store, "bob", 7).expect("bob"));
    assert!(!try_accept(&store, "alice", 7).expect("alice again"));
}

#[test]
fn user_names_are_hex_encoded_so_none_can_leave_the_directory() {
    assert_eq!(file_stem("alice").expect("stem"), "616c696365");
    assert_eq!(file_stem("../x").expect("stem"), "2e2e2f78");
    let base = private_dir();
    let dir = base.path().join("state");
    let store = FileStateStore::open(&dir).expect("open");
    for user in ["../escape", "/etc/passwd", ".", "a\nb", "é"] {
        assert!(try_accept(&store, user, 1).expect(user), "{user:?}");
    }
    let outside: Vec<_> =
        std::fs::read_dir(base.path()).expect("list").map(|e| e.expect("entry").file_name()).collect();
    assert_eq!(outside, vec![std::ffi::OsString::from("state")]);
}

#[test]
fn empty_and_overlong_user_names_are_refused() {
    let base = private_dir();
    let store = FileStateStore::open(base.path()).expect("open");
    assert!(matches!(try_accept(&store, "", 1), Err(StateError::UserName { .. })));
    let long = "u".repeat(MAX_USER_BYTES + 1);
    assert!(matches!(try_accept(&store, &long, 1), Err(StateError::UserName { .. })));
    assert!(try_accept(&store, &"u".repeat(MAX_USER_BYTES), 1).expect("longest"));
}

#[test]
fn a_corrupt_state_file_is_refused_and_left_as_it_is() {
    let base = private_dir();
    let store = FileStateStore::open(base.path()).expect("open");
    let path = state_path(base.path(), "alice");
    for text in [
        "",
        "{",
        "not json",
        "[]",
        r#"{"last_offline_step":"5","failures":[],"grace":[]}"#,
        r#"{"last_offline_step":5,"failures":[]}"#,
        r#"{"last_offline_step":-1,"failures":[],"grace":[]}"#,
        r#"{"offline_used_until":"5","failures":[],"grace":[]}"#,
        r#"{"offline_used_until":-1,"failures":[],"grace":[]}"#,
        r#"{"offline_used_until":1.5,"failures":[],"grace":[]}"#,
        r#"{"offline_used_until":18446744073709551616,"failures":[],"grace":[]}"#,
    ] {
        std::fs::write(&path, text).expect("write");
        set_mode(&path, 0o600);
        let mut ran = false;
        let result = store.update("alice", &mut |_| {
            ran = true;
            true
        });
        assert!(matches!(result, Err(StateError::Corrupt { .. })), "{text:?}: {result:?}");
        assert!(!ran, "{text:?}");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), text);
    }
}

#[test]
fn a_state_file_with_an_unknown_field_is_refused() {
    let base = private_dir();
    let store = FileStateStore::open(base.path()).expect("open");
    let path = state_path(base.path(), "alice");
    for text in [
        r#"{"last_offline_step":5,"failures":[],"grace":[],"reset":true}"#,
        r#"{"last_offline_step":null,"failures":[],"grace":[{"service":"s","rhost":"h","expires_at":9,"x":1}]}"#,
    ] {
        std::fs::write(&path, text).expect("write");
        set_mode(&path, 0o600);
        assert!(matches!(try_accept(&store, "alice", 6), Err(StateError::Corrupt { .. })), "{text}");
    }
}

#[test]
fn an_oversized_state_file_is_refused() {
    let base = private_dir();
    let store = FileStateStore::open(base.path()).expect("open");
    let path = state_path(base.path(), "alice");
    let padding = " ".repeat(MAX_STATE_BYTES as usize);
    std::fs::write(&path, format!(r#"{{"last_offline_step":1,"failures":[],"grace":[]}}{padding}"#)).expect("write");
    set_mode(&path, 0o600);
    assert!(matches!(try_accept(&store, "alice", 6), Err(StateError::File { error: FileError::TooLarge { .. }, .. })));
}

#[test]
fn a_state_file_replaced_by_a_symlink_is_refused() {
    let base = private_dir();
    let store = FileStateStore::open(base.path()).expect("open");
    assert!(try_accept(&store, "alice", 5).expect("first"));
    let path = state_path(base.path(), "alice");
    let elsewhere = base.path().join("elsewhere.json");
    std::fs::write(&elsewhere, "{\"last_offline_step\":null,\"failures\":[],\"grace\":[]}").expect("write");
    set_mode(&elsewhere, 0o600);
    std::fs::remove_file(&path).expect("rm");
    symlink(&elsewhere, &path).expect("symlink");
    assert_eq!(
        try_accept(&store, "alice", 5),
        Err(StateError::File { user: "alice".into(), error: FileError::Symlink(path.clone()) })
    );
    // A dangling symlink is refused the same way, not read as "no state yet".
    std::fs::remove_file(&elsewhere).expect("rm");
    assert!(matches!(try_accept(&store, "alice", 5), Err(StateError::File { error: FileError::Symlink(_), .. })));
}

#[test]
fn a_state_file_replaced_by_a_fifo_is_refused_without_blocking() {
    let base = private_dir();
    let store = FileStateStore::open(base.path()).expect("open");
    let path = state_path(base.path(), "alice");
    nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o600)).expect("mkfifo");
    assert_eq!(
        try_accept(&store, "alice", 5),
        Err(StateError::File { user: "alice".into(), error: FileError::NotRegular(path) })
    );
}

#[test]
fn a_group_writable_state_file_is_refused() {
    let base = private_dir();
    let store = FileStateStore::open(base.path()).expect("open");
    assert!(try_accept(&store, "alice", 5).expect("first"));
    set_mode(&state_path(base.path(), "alice"), 0o620);
    assert!(matches!(try_accept(&store, "alice", 6), Err(StateError::File { error: FileError::Writable { .. }, .. })));
}

#[test]
fn a_state_file_owned_by_another_user_is_refused() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let base = private_dir();
    let store = FileStateStore::open(base.path()).expect("open");
    assert!(try_accept(&store, "alice", 5).expect("first"));
    let path = state_path(base.path(), "alice");
    std::os::unix::fs::chown(&path, Some(65534), Some(65534)).expect("chown");
    assert!(matches!(
        try_accept(&store, "alice", 6),
        Err(StateError::File { error: FileError::UntrustedOwner { uid: 65534, .. }, .. })
    ));
}

#[test]
fn a_symlinked_or_fifo_lock_file_is_refused() {
    let base = private_dir();
    let store = FileStateStore::open(base.path()).expect("open");
    let stem = file_stem("alice").expect("stem");
    let lock = base.path().join(format!("{stem}.lock"));
    symlink(base.path().join("target"), &lock).expect("symlink");
    assert!(matches!(try_accept(&store, "alice", 5), Err(StateError::File { error: FileError::Symlink(_), .. })));
    assert!(!base.path().join("target").exists());
    std::fs::remove_file(&lock).expect("rm");
    nix::unistd::mkfifo(&lock, Mode::from_bits_truncate(0o600)).expect("mkfifo");
    assert!(matches!(try_accept(&store, "alice", 5), Err(StateError::File { error: FileError::NotRegular(_), .. })));
}

#[test]
fn a_leftover_temporary_file_does_not_block_writing() {
    let base = private_dir();
    let store = FileStateStore::open(base.path()).expect("open");
    let stem = file_stem("alice").expect("stem");
    let temp = base.path().join(format!("{stem}.tmp"));
    std::fs::write(&temp, "half a write").expect("write");
    assert!(try_accept(&store, "alice", 5).expect("update"));
    assert!(!temp.exists());
    assert_eq!(read_state(&state_path(base.path(), "alice")).offline_used_until, Some(5));
    // A symlink left at the temporary name is removed, not followed.
    let target = base.path().join("target");
    symlink(&target, &temp).expect("symlink");
    assert!(try_accept(&store, "alice", 6).expect("update"));
    assert!(!target.exists());
}

#[test]
fn a_held_lock_makes_update_wait_for_its_release() {
    let base = private_dir();
    let store = Arc::new(FileStateStore::open(base.path()).expect("open"));
    let held = store.lock("alice", &file_stem("alice").expect("stem")).expect("lock");
    let (sender, receiver) = std::sync::mpsc::channel();
    let waiter = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || {
            let result = try_accept(store.as_ref(), "alice", 9);
            sender.send(()).expect("send");
            result
        })
    };
    assert!(receiver.recv_timeout(Duration::from_millis(100)).is_err(), "update ran while the lock was held");
    drop(held);
    assert!(waiter.join().expect("join").expect("update"));
}

#[test]
fn the_error_messages_name_the_user_and_path() {
    let base = private_dir();
    let store = FileStateStore::open(base.path()).expect("open");
    let path = state_path(base.path(), "alice");
    std::fs::write(&path, "{").expect("write");
    set_mode(&path, 0o600);
    let message = try_accept(&store, "alice", 1).expect_err("corrupt").to_string();
    assert!(message.contains("alice"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    let message = try_accept(&store, "", 1).expect_err("empty").to_string();
    assert!(message.contains("state file"), "{message}");
    let control = StateError::UserName { user: shown("a\u{1b}[2Jb") }.to_string();
    assert!(!control.contains('\u{1b}'), "{control:?}");
}

// ---- concurrency ----------------------------------------------------------------------

#[test]
fn thirty_two_threads_replaying_one_code_yield_exactly_one_acceptance() {
    let base = private_dir();
    let dir = base.path().join("state");
    let threads = 32;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            let dir = dir.clone();
            std::thread::spawn(move || {
                barrier.wait();
                // Each thread opens its own store, as each PAM process would.
                let store = FileStateStore::open(&dir).expect("open");
                try_accept(&store, "alice", 56_666_667)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|handle| handle.join().expect("join")).collect();
    let accepted = results.iter().filter(|r| matches!(r, Ok(true))).count();
    let errors: Vec<_> = results.iter().filter(|r| r.is_err()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(accepted, 1);
    let stored = read_state(&state_path(&dir, "alice"));
    assert_eq!(stored.offline_used_until, Some(56_666_667));
}

#[test]
fn concurrent_failures_are_all_counted() {
    let base = private_dir();
    let store = Arc::new(FileStateStore::open(base.path()).expect("open"));
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                store.update("alice", &mut |state| {
                    state.record_failure(1000 + i);
                    true
                })
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("join").expect("update");
    }
    let stored = read_state(&state_path(base.path(), "alice"));
    assert_eq!(stored.failures.len(), 16);
    assert!(stored.locked_out(1016, 5, 300));
}

const CHILD_DIR: &str = "PAM_AUTHY_STATE_TEST_DIR";
const CHILD_STEP: &str = "PAM_AUTHY_STATE_TEST_STEP";
const CHILD_GO: &str = "PAM_AUTHY_STATE_TEST_GO";
const CHILD_MARK: &str = "state-child-result:";

/// Not a test on its own: the multi-process tests run the test binary again with only this
/// test selected and the environment saying what to do. Without it, it does nothing.
#[test]
fn child_process_accepts_a_step_when_asked_by_a_parent_test() {
    let (Some(dir), Some(step)) = (std::env::var_os(CHILD_DIR), std::env::var_os(CHILD_STEP)) else {
        return;
    };
    if let Some(go) = std::env::var_os(CHILD_GO) {
        let go = PathBuf::from(go);
        for _ in 0..10_000 {
            if go.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let step: u64 = step.to_str().expect("utf-8").parse().expect("step");
    let outcome = FileStateStore::open(Path::new(&dir)).and_then(|store| try_accept(&store, "alice", step));
    match outcome {
        Ok(true) => println!("{CHILD_MARK}accepted"),
        Ok(false) => println!("{CHILD_MARK}refused"),
        Err(error) => println!("{CHILD_MARK}error {error}"),
    }
}

fn spawn_child(dir: &Path, step: u64, go: Option<&Path>) -> std::process::Child {
    let mut command = std::process::Command::new(std::env::current_exe().expect("current_exe"));
    command
        .args([
            "--exact",
            "state::tests::child_process_accepts_a_step_when_asked_by_a_parent_test",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir)
        .env(CHILD_STEP, step.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    if let Some(go) = go {
        command.env(CHILD_GO, go);
    }
    command.spawn().expect("spawn")
}

fn child_result(child: std::process::Child) -> String {
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // libtest prints the test name on the same line before the child's output.
    stdout
        .lines()
        .find_map(|line| line.split_once(CHILD_MARK).map(|(_, result)| result))
        .unwrap_or_else(|| panic!("no result in {stdout:?}"))
        .to_owned()
}

#[test]
fn a_step_accepted_in_one_process_is_a_replay_in_another() {
    let base = private_dir();
    let dir = base.path().join("state");
    let store = FileStateStore::open(&dir).expect("open");
    assert!(try_accept(&store, "alice", 1000).expect("parent"));
    assert_eq!(child_result(spawn_child(&dir, 1000, None)), "refused");
    assert_eq!(child_result(spawn_child(&dir, 999, None)), "refused");
    assert_eq!(child_result(spawn_child(&dir, 1001, None)), "accepted");
    assert!(!try_accept(&store, "alice", 1001).expect("parent again"));
}

#[test]
fn eight_processes_replaying_one_code_yield_exactly_one_acceptance() {
    let base = private_dir();
    let dir = base.path().join("state");
    let go = base.path().join("go");
    let children: Vec<_> = (0..8).map(|_| spawn_child(&dir, 56_666_667, Some(&go))).collect();
    std::fs::write(&go, "").expect("go");
    let results: Vec<_> = children.into_iter().map(child_result).collect();
    assert_eq!(results.iter().filter(|r| *r == "accepted").count(), 1, "{results:?}");
    assert_eq!(results.iter().filter(|r| *r == "refused").count(), 7, "{results:?}");
    let stored = read_state(&state_path(&dir, "alice"));
    assert_eq!(stored.offline_used_until, Some(56_666_667));
}

#[test]
fn the_memory_store_keeps_the_same_contract() {
    let store = MemoryStateStore::new();
    assert!(try_accept(&store, "alice", 3).expect("first"));
    assert!(!try_accept(&store, "alice", 3).expect("again"));
    assert_eq!(store.get("alice").offline_used_until, Some(3));
    assert!(try_accept(&MemoryStateStore::failing(), "alice", 3).is_err());
}

/// Figures for the lead: `cargo test --lib state::tests::update_timing -- --ignored
/// --nocapture`.
#[test]
#[ignore]
#[allow(clippy::disallowed_methods)]
fn update_timing() {
    let base = private_dir();
    let store = FileStateStore::open(base.path()).expect("open");
    for (label, write) in [("read and write", true), ("read only, file present", false)] {
        let mut samples: Vec<Duration> = (0..1000u64)
            .map(|i| {
                let started = std::time::Instant::now();
                store
                    .update("alice", &mut |state| {
                        state.prune(i, 300);
                        write && state.accept_window(i + 1)
                    })
                    .expect("update");
                started.elapsed()
            })
            .collect();
        samples.sort();
        println!("update ({label}): median {:?}, p90 {:?}, max {:?}", samples[500], samples[900], samples[999]);
    }
}
