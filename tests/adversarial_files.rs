//! Classes 5 and 7 of the adversarial suite: files as root.
//!
//! Class 5 (pam-u2f CVE-2020-24612): a config, key or state file that cannot be read is an
//! error, never "not enrolled". Each case maps only *another* user, sets
//! `unmapped_users = "ignore"` and `failmode = "safe"`, and expects exactly PAM_SERVICE_ERR
//! from a stack where the module is alone: PAM_IGNORE there would show as PAM_PERM_DENIED,
//! PAM_SUCCESS as 0. EIO comes from reading `/proc/<pid>/mem` at offset 0 (a regular file
//! owned by the caller, in root-owned directories, whose first read fails with EIO); EACCES
//! from running the authentication as `nobody` (root only).
//!
//! Class 7 (pam_oath CVE-2024-47191, pam-u2f CVE-2019-12209): symlinks in the config, key,
//! CA and state paths and their parents, writable parents, and a state file swapped for a
//! symlink or a FIFO, also while authentications run.

#![allow(clippy::disallowed_methods)]

mod adversarial_support;
mod common;

use adversarial_support::{ReachableCopies, child_result, child_role, output_text, print_child_result};
use common::*;
use pam_authy::offline::{OfflineParams, code_at};
use pam_authy::secret::Secret;
use pam_harness::{PAM_MAXTRIES, PAM_SERVICE_ERR, PAM_SUCCESS, Reply};
use std::os::unix::fs::{OpenOptionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SEED: &str = "JBSWY3DPEHPK3PXP";
const PARAMS: OfflineParams = OfflineParams { digits: 6, period_secs: 30, skew_steps: 1 };
const LENIENT: &str = "[auth]\nunmapped_users = \"ignore\"\nfailmode = \"safe\"";

fn proc_mem() -> String {
    format!("/proc/{}/mem", std::process::id())
}

fn write_service(dir: &TestDir, config: &Path) {
    let text = format!("auth required {} config={}\n", module_path().display(), config.display());
    std::fs::write(dir.confdir().join("svc"), text).expect("write service");
}

/// A config for `sandbox` in which `mapping` is the whole `[users]` table.
fn lenient_config(dir: &TestDir, mapping: &str) -> String {
    let (sandbox, _) = sandbox();
    config_for(dir, &sandbox, mapping, LENIENT)
}

fn assert_service_error(dir: &TestDir, case: &str) {
    let result = dir.authenticate("svc", &current_user(), &mut answers(&["1234567"]));
    assert_eq!(result.code, PAM_SERVICE_ERR, "{case}: {} {}", result.name(), result.text());
    assert!(result.transcript.is_empty(), "{case}: {}", result.text());
}

#[test]
fn an_io_error_on_the_config_key_or_ca_file_is_a_service_error_never_ignore() {
    // The config file itself.
    let dir = TestDir::new();
    write_service(&dir, Path::new(&proc_mem()));
    assert_service_error(&dir, "config EIO");

    // The API key file and the CA file.
    for key in ["api_key_file", "ca_file"] {
        let dir = TestDir::new();
        let text = lenient_config(&dir, "someone_else = 1");
        let text = if key == "api_key_file" {
            text.replace(&format!("api_key = \"{API_KEY}\""), &format!("api_key_file = \"{}\"", proc_mem()))
        } else {
            let ca = dir.path().join("ca.pem");
            text.replace(&ca.display().to_string(), &proc_mem())
        };
        assert!(text.contains(&proc_mem()), "{key}: {text}");
        dir.write_config(&text);
        dir.service("svc", "");
        assert_service_error(&dir, &format!("{key} EIO"));
    }

    // Control: the same lenient config, readable, positively without the user: PAM_IGNORE.
    let dir = TestDir::new();
    dir.write_config(&lenient_config(&dir, "someone_else = 1"));
    dir.ignore_probe_service("probe");
    let result = dir.authenticate("probe", &current_user(), &mut answers(&[]));
    assert_eq!(result.code, PAM_SUCCESS, "control: PAM_IGNORE expected: {}", result.text());
}

#[test]
fn a_group_named_in_the_config_that_does_not_exist_is_a_service_error_never_ignore() {
    let dir = TestDir::new();
    let text = lenient_config(&dir, "someone_else = 1")
        .replace("[auth]\n", "[auth]\ngroups = [\"no-such-group-adversarial\"]\n");
    dir.write_config(&text);
    dir.service("svc", "");
    assert_service_error(&dir, "missing group");
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("time").as_secs()
}

fn offline_code() -> String {
    code_at(&Secret::from(SEED), now(), &PARAMS).expect("code").expose().to_owned()
}

/// The current user mapped with an offline secret, the API unreachable, `state_dir` as given.
/// `auth`: lines for `[auth]`.
fn offline_dir(state_dir: &Path, auth: &str) -> TestDir {
    let dir = TestDir::new();
    let (sandbox, id) = sandbox();
    let text = offline_config(&dir, &sandbox, id, SEED, state_dir, auth, "max_failures = 100");
    dir.write_config(&text);
    dir.service("svc", "");
    dir
}

fn offline_login(dir: &TestDir) -> pam_harness::AuthResult {
    dir.authenticate("svc", &current_user(), &mut token_then_offline("1234567", vec![offline_code(); 10]))
}

#[test]
fn an_unusable_state_directory_refuses_the_offline_code() {
    // /proc/<pid> is a directory we own where no file can be created.
    let dir = offline_dir(Path::new(&format!("/proc/{}", std::process::id())), "failmode = \"safe\"");
    let result = offline_login(&dir);
    assert_eq!(result.code, PAM_SERVICE_ERR, "{}", result.text());
}

fn state_file(state_dir: &Path) -> PathBuf {
    let hex: String = current_user().bytes().map(|b| format!("{b:02x}")).collect();
    state_dir.join(format!("{hex}.json"))
}

/// A state in which every offline code is a replay; the victim file says the opposite.
const EXHAUSTED: &str = "{\"last_offline_step\":99999999999,\"failures\":[],\"grace\":[]}\n";
const FRESH: &str = "{\"last_offline_step\":null,\"failures\":[],\"grace\":[]}\n";

/// A private state dir holding an exhausted state for the current user, and a victim file
/// elsewhere that would accept the code if the module followed a symlink to it.
fn exhausted_state(dir: &TestDir) -> (PathBuf, PathBuf) {
    let state_dir = dir.path().join("state");
    std::fs::create_dir(&state_dir).expect("mkdir");
    set_mode(&state_dir, 0o700);
    let state = state_file(&state_dir);
    std::fs::write(&state, EXHAUSTED).expect("state");
    set_mode(&state, 0o600);
    let victim = dir.path().join("victim.json");
    std::fs::write(&victim, FRESH).expect("victim");
    set_mode(&victim, 0o600);
    (state_dir, state)
}

#[test]
fn a_state_file_replaced_by_a_symlink_or_a_fifo_is_refused_and_its_target_untouched() {
    let holder = TestDir::new();
    let (state_dir, state) = exhausted_state(&holder);
    let victim = holder.path().join("victim.json");
    let dir = offline_dir(&state_dir, "");

    // Control: the exhausted state refuses the code as a replay.
    let result = offline_login(&dir);
    assert_eq!(result.code, PAM_MAXTRIES, "control: {}", result.text());

    std::fs::remove_file(&state).expect("rm");
    symlink(&victim, &state).expect("symlink");
    let result = offline_login(&dir);
    assert_eq!(result.code, PAM_SERVICE_ERR, "symlinked state file: {}", result.text());
    assert_eq!(std::fs::read_to_string(&victim).expect("victim"), FRESH);
    assert!(std::fs::symlink_metadata(&state).expect("link").file_type().is_symlink());

    std::fs::remove_file(&state).expect("rm");
    nix::unistd::mkfifo(&state, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let started = std::time::Instant::now();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Should the module block on the FIFO, a writer opens it after 5 s so the test ends.
    let watchdog = {
        let (done, fifo) = (done.clone(), state.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::SeqCst) && started.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(20));
            }
            if !done.load(std::sync::atomic::Ordering::SeqCst) {
                let _ = std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(&fifo);
            }
        })
    };
    let result = offline_login(&dir);
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    watchdog.join().expect("watchdog");
    assert!(started.elapsed() < Duration::from_secs(5), "the FIFO blocked the module");
    assert_eq!(result.code, PAM_SERVICE_ERR, "FIFO state file: {}", result.text());

    // The lock file too.
    std::fs::remove_file(&state).expect("rm");
    std::fs::write(&state, EXHAUSTED).expect("state");
    set_mode(&state, 0o600);
    let lock = state.with_extension("lock");
    let _ = std::fs::remove_file(&lock);
    symlink(&victim, &lock).expect("symlink");
    let result = offline_login(&dir);
    assert_eq!(result.code, PAM_SERVICE_ERR, "symlinked lock file: {}", result.text());
    assert_eq!(std::fs::read_to_string(&victim).expect("victim"), FRESH);
}

/// The state file flips between the real (exhausted) state and a symlink to the victim
/// while offline logins run: the victim is never read (no login passes) nor written.
#[test]
fn a_state_file_swapped_for_a_symlink_during_logins_is_never_followed() {
    let holder = TestDir::new();
    let (state_dir, state) = exhausted_state(&holder);
    let victim = holder.path().join("victim.json");
    let dir = offline_dir(&state_dir, "max_tries = 1");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flipper = {
        let (stop, state, victim, state_dir) = (stop.clone(), state.clone(), victim.clone(), state_dir.clone());
        std::thread::spawn(move || {
            let (link, real) = (state_dir.join("flip.link"), state_dir.join("flip.real"));
            let mut flips = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let _ = std::fs::remove_file(&link);
                symlink(&victim, &link).expect("symlink");
                std::fs::rename(&link, &state).expect("swap in the symlink");
                std::thread::sleep(Duration::from_micros(300));
                std::fs::write(&real, EXHAUSTED).expect("real");
                set_mode(&real, 0o600);
                std::fs::rename(&real, &state).expect("swap in the file");
                std::thread::sleep(Duration::from_micros(300));
                flips += 1;
            }
            flips
        })
    };
    let mut codes = Vec::new();
    for _ in 0..40 {
        codes.push(offline_login(&dir).code);
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let flips = flipper.join().expect("flipper");
    assert!(flips > 10, "the race did not run: {flips} flips");
    assert!(codes.iter().all(|c| *c == PAM_MAXTRIES || *c == PAM_SERVICE_ERR), "{codes:?}");
    assert_eq!(std::fs::read_to_string(&victim).expect("victim"), FRESH);
}

#[test]
fn symlinks_anywhere_on_the_config_key_ca_or_state_paths_are_refused() {
    let user = current_user();
    // Each case builds a working layout, then replaces one component by a symlink to it.
    type Case = fn(&TestDir) -> PathBuf;
    let cases: Vec<(&str, Case)> = vec![
        ("config parent directory", |dir| {
            let real = dir.path().join("etc-real");
            std::fs::create_dir(&real).expect("mkdir");
            std::fs::rename(dir.config_path(), real.join("pam_authy.toml")).expect("mv");
            let link = dir.path().join("etc");
            symlink(&real, &link).expect("symlink");
            link.join("pam_authy.toml")
        }),
        ("api key file", |dir| {
            let key = dir.write("real-key", API_KEY, 0o600);
            symlink(&key, dir.path().join("api_key")).expect("symlink");
            let text = std::fs::read_to_string(dir.config_path()).expect("config").replace(
                &format!("api_key = \"{API_KEY}\""),
                &format!("api_key_file = \"{}\"", dir.path().join("api_key").display()),
            );
            dir.write_config(&text);
            dir.config_path()
        }),
        ("api key parent directory", |dir| {
            let real = dir.path().join("keys-real");
            std::fs::create_dir(&real).expect("mkdir");
            std::fs::write(real.join("api_key"), API_KEY).expect("key");
            set_mode(&real.join("api_key"), 0o600);
            symlink(&real, dir.path().join("keys")).expect("symlink");
            let text = std::fs::read_to_string(dir.config_path()).expect("config").replace(
                &format!("api_key = \"{API_KEY}\""),
                &format!("api_key_file = \"{}\"", dir.path().join("keys/api_key").display()),
            );
            dir.write_config(&text);
            dir.config_path()
        }),
        ("ca file", |dir| {
            let ca = dir.path().join("ca.pem");
            std::fs::rename(&ca, dir.path().join("ca-real.pem")).expect("mv");
            symlink(dir.path().join("ca-real.pem"), &ca).expect("symlink");
            dir.config_path()
        }),
    ];
    for (case, breaker) in cases {
        let dir = TestDir::new();
        let (sandbox, id) = sandbox();
        dir.write_config(&config_for(&dir, &sandbox, &format!("\"{user}\" = {id}"), LENIENT));
        let config = breaker(&dir);
        write_service(&dir, &config);
        assert_service_error(&dir, case);
        assert!(sandbox.requests().is_empty(), "{case}");
    }

    // The state directory, and a parent of it.
    for parent_link in [false, true] {
        let holder = TestDir::new();
        let real = holder.path().join("real");
        std::fs::create_dir(&real).expect("mkdir");
        set_mode(&real, 0o700);
        let state_dir = if parent_link {
            std::fs::create_dir(real.join("state")).expect("mkdir");
            set_mode(&real.join("state"), 0o700);
            symlink(&real, holder.path().join("link")).expect("symlink");
            holder.path().join("link/state")
        } else {
            symlink(&real, holder.path().join("state")).expect("symlink");
            holder.path().join("state")
        };
        let dir = offline_dir(&state_dir, "failmode = \"safe\"");
        let result = offline_login(&dir);
        assert_eq!(result.code, PAM_SERVICE_ERR, "state dir (parent link: {parent_link}): {}", result.text());
        assert_eq!(std::fs::read_dir(&real).expect("real").count(), usize::from(parent_link));
    }
}

#[test]
fn group_or_world_writable_parents_are_refused() {
    for (case, mode) in [("group-writable", 0o770), ("world-writable", 0o777), ("world-writable sticky", 0o1777)] {
        // Config directory. A sticky directory is refused too: it is the file's own directory.
        let dir = TestDir::new();
        let (sandbox, id) = sandbox();
        let etc = dir.path().join("etc");
        std::fs::create_dir(&etc).expect("mkdir");
        let text = config_for(&dir, &sandbox, &format!("\"{}\" = {id}", current_user()), LENIENT);
        std::fs::write(etc.join("pam_authy.toml"), text).expect("config");
        set_mode(&etc.join("pam_authy.toml"), 0o600);
        set_mode(&etc, mode);
        write_service(&dir, &etc.join("pam_authy.toml"));
        assert_service_error(&dir, &format!("{case} config directory"));

        // A directory above the config directory (sticky and root-owned is allowed there, as
        // for /tmp, because others cannot rename what lies inside).
        let dir = TestDir::new();
        let upper = dir.path().join("upper");
        std::fs::create_dir_all(upper.join("etc")).expect("mkdir");
        let text = config_for(&dir, &sandbox, &format!("\"{}\" = {id}", current_user()), LENIENT);
        std::fs::write(upper.join("etc/pam_authy.toml"), text).expect("config");
        set_mode(&upper.join("etc/pam_authy.toml"), 0o600);
        set_mode(&upper, mode);
        write_service(&dir, &upper.join("etc/pam_authy.toml"));
        if mode & 0o1000 != 0 && is_root() {
            let result = dir.authenticate("svc", &current_user(), &mut answer_with_token(&sandbox, id));
            assert_eq!(result.code, PAM_SUCCESS, "sticky root-owned ancestor: {}", result.text());
        } else if mode & 0o1000 == 0 {
            assert_service_error(&dir, &format!("{case} ancestor"));
        }

        // State directory parent (the state dir must then not be created there).
        let holder = TestDir::new();
        let parent = holder.path().join("var");
        std::fs::create_dir(&parent).expect("mkdir");
        set_mode(&parent, mode & 0o777);
        let dir = offline_dir(&parent.join("state"), "failmode = \"safe\"");
        let result = offline_login(&dir);
        assert_eq!(result.code, PAM_SERVICE_ERR, "{case} state parent: {}", result.text());
        assert!(!parent.join("state").exists(), "{case}: the state dir was created under a writable parent");
    }
}

/// Files owned by another user than root are refused (root only: it needs chown).
#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: chown needs root")]
fn files_and_directories_owned_by_another_user_are_refused() {
    common::require_root();
    let nobody = nix::unistd::User::from_name("nobody").expect("getpwnam").expect("nobody");
    let chown = |path: &Path| std::os::unix::fs::chown(path, Some(nobody.uid.as_raw()), None).expect("chown");

    let dir = TestDir::new();
    let (sandbox, id) = sandbox();
    dir.write_config(&config_for(&dir, &sandbox, &format!("\"{}\" = {id}", current_user()), LENIENT));
    dir.service("svc", "");
    chown(&dir.config_path());
    assert_service_error(&dir, "config owned by nobody");

    let holder = TestDir::new();
    let (state_dir, state) = exhausted_state(&holder);
    let dir = offline_dir(&state_dir, "failmode = \"safe\"");
    chown(&state);
    let result = offline_login(&dir);
    assert_eq!(result.code, PAM_SERVICE_ERR, "state file owned by nobody: {}", result.text());
    std::os::unix::fs::chown(&state, Some(0), None).expect("chown back");
    chown(&state_dir);
    let result = offline_login(&dir);
    assert_eq!(result.code, PAM_SERVICE_ERR, "state dir owned by nobody: {}", result.text());
}

// ---- EACCES: the authentication runs as `nobody` -------------------------------------------

const NOBODY_CHILD: &str = "child_authenticates_nobody";

/// The child side: authenticates `nobody` with the confdir its parent names, prints the code.
#[test]
fn child_authenticates_nobody() {
    if child_role().as_deref() != Some("nobody") {
        return;
    }
    let confdir = PathBuf::from(std::env::var("ADV_CONFDIR").expect("ADV_CONFDIR"));
    let service = std::env::var("ADV_SERVICE").expect("ADV_SERVICE");
    let result =
        pam_harness::authenticate(Some(&confdir), &service, "nobody", &pam_harness::Items::default(), &mut |m| {
            if m.style.is_prompt() { Reply::text("1234567") } else { Reply::text("") }
        })
        .expect("pam_start");
    print_child_result(result.code);
}

/// A layout readable by `nobody` except where a case makes it unreadable. Returns the
/// directory (0755, root) and writes `svc` (plain) and `probe` (IGNORE -> SUCCESS) stacks
/// that load `module`.
fn nobody_layout(config: &Path, module: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    set_mode(dir.path(), 0o755);
    std::fs::create_dir(dir.path().join("pam.d")).expect("mkdir");
    set_mode(&dir.path().join("pam.d"), 0o755);
    let plain = format!("auth required {} config={}\n", module.display(), config.display());
    let probe = format!(
        "auth [ignore=ignore default=die] {} config={}\nauth required pam_permit.so\n",
        module.display(),
        config.display()
    );
    std::fs::write(dir.path().join("pam.d/svc"), plain).expect("svc");
    std::fs::write(dir.path().join("pam.d/probe"), probe).expect("probe");
    dir
}

fn as_nobody(copies: &ReachableCopies, layout: &Path, service: &str) -> i32 {
    let nobody = nix::unistd::User::from_name("nobody").expect("getpwnam").expect("nobody");
    let env = [("ADV_CONFDIR", layout.join("pam.d").display().to_string()), ("ADV_SERVICE", service.to_owned())];
    let mut command = copies.child_command(NOBODY_CHILD, "nobody", &env);
    let (uid, gid) = (nobody.uid.as_raw(), nobody.gid.as_raw());
    pam_harness::run_as(&mut command, uid, gid);
    let output = command.output().expect("run the child as nobody");
    let text = output_text(&output);
    child_result(&text)
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: running the authentication as nobody needs root")]
fn eacces_on_the_config_key_or_state_is_a_service_error_never_ignore() {
    common::require_root();
    let nobody = nix::unistd::User::from_name("nobody").expect("getpwnam").expect("nobody");
    let give_to_nobody = |path: &Path| std::os::unix::fs::chown(path, Some(nobody.uid.as_raw()), None).expect("chown");
    // nobody runs a copy of this binary and loads a copy of the module: the build may sit
    // where only root can go.
    let copies = ReachableCopies::new();
    let module = copies.copy(&module_path());
    let files = tempfile::tempdir().expect("tempdir");
    set_mode(files.path(), 0o755);
    let (sandbox, id) = sandbox();
    let ca = files.path().join("ca.pem");
    std::fs::write(&ca, sandbox.ca_pem()).expect("ca");
    set_mode(&ca, 0o644);
    let base = format!(
        "[api]\nurl = \"{}\"\nca_file = \"{}\"\ntimeout_secs = 5\n{LENIENT}\n[users]\nsomeone_else = {id}\n",
        sandbox.url(),
        ca.display()
    );
    let write = |name: &str, text: &str, mode: u32| -> PathBuf {
        let path = files.path().join(name);
        std::fs::write(&path, text).expect("write");
        set_mode(&path, mode);
        path
    };

    // Control: nobody's own readable config, positively without nobody: PAM_IGNORE.
    let own = write("own.toml", &base.replace("[api]\n", &format!("[api]\napi_key = \"{API_KEY}\"\n")), 0o600);
    give_to_nobody(&own);
    let layout = nobody_layout(&own, &module);
    assert_eq!(as_nobody(&copies, layout.path(), "probe"), PAM_SUCCESS, "control: PAM_IGNORE expected");

    // Root's 0600 config: EACCES on the file.
    let root_config = write("root.toml", &base.replace("[api]\n", &format!("[api]\napi_key = \"{API_KEY}\"\n")), 0o600);
    let layout = nobody_layout(&root_config, &module);
    assert_eq!(as_nobody(&copies, layout.path(), "svc"), PAM_SERVICE_ERR, "unreadable config");

    // A config in a directory nobody cannot enter: EACCES on the walk.
    let private = files.path().join("private");
    std::fs::create_dir(&private).expect("mkdir");
    set_mode(&private, 0o700);
    std::fs::copy(&own, private.join("c.toml")).expect("copy");
    give_to_nobody(&private.join("c.toml"));
    let layout = nobody_layout(&private.join("c.toml"), &module);
    assert_eq!(as_nobody(&copies, layout.path(), "svc"), PAM_SERVICE_ERR, "unreachable config");

    // A readable config whose api_key_file is root's 0600 file.
    let key = write("api_key", API_KEY, 0o600);
    let config = write(
        "keyfile.toml",
        &base.replace("[api]\n", &format!("[api]\napi_key_file = \"{}\"\n", key.display())),
        0o644,
    );
    give_to_nobody(&config);
    let layout = nobody_layout(&config, &module);
    assert_eq!(as_nobody(&copies, layout.path(), "svc"), PAM_SERVICE_ERR, "unreadable api_key_file");

    // nobody mapped with an offline secret, the API down, the state dir root's 0700.
    let state = files.path().join("state");
    std::fs::create_dir(&state).expect("mkdir");
    set_mode(&state, 0o700);
    let offline = base
        .replace(&sandbox.url(), &format!("https://127.0.0.1:{}", closed_port()))
        .replace("[api]\n", &format!("[api]\napi_key = \"{API_KEY}\"\n"))
        .replace("someone_else", &format!("nobody = {{ authy_id = {id}, offline_secret = \"{SEED}\" }}\nsomeone_else"))
        + &format!("[offline]\nstate_dir = \"{}\"\n", state.display());
    let config = write("offline.toml", &offline, 0o600);
    give_to_nobody(&config);
    let layout = nobody_layout(&config, &module);
    assert_eq!(as_nobody(&copies, layout.path(), "svc"), PAM_SERVICE_ERR, "unreadable state dir");
}
