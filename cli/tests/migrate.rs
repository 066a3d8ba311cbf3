//! `migrate` against the sandbox: a dry run changes nothing, `--apply` writes each user's
//! Verify mapping next to the Authy one, and the backend switches only once every user has a
//! verified factor, so that a half-done migration never locks anyone out.

mod common;

use common::{Interactive, TestDir, code_for_uri, config_for, mode_of, paths, sandbox, set_mode};
use pam_authy::config::{Backend, Config};

const SEED: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

fn authy_config_with_verify(dir: &TestDir, sandbox: &authy_sandbox::Sandbox) -> String {
    let account = sandbox.verify_account();
    let rest = format!(
        "[verify]\nservice_sid = \"{}\"\napi_key_sid = \"{}\"\napi_key_secret = \"{}\"\n\n\
         # the team\n[users]\nalice = 1001 # on call\nbob = {{ authy_id = 1002 }}\n",
        account.service_sid, account.api_key_sid, account.api_key_secret
    );
    let text = config_for(dir, sandbox, &rest);
    dir.write_config(&text);
    text
}

fn seeds(dir: &TestDir, text: &str, mode: u32) -> String {
    let path = dir.write("seeds.toml", text, 0o600);
    set_mode(&path, mode);
    path.display().to_string()
}

#[test]
fn a_dry_run_sends_and_writes_nothing() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    let original = authy_config_with_verify(&dir, &sandbox);
    let run = dir.cli("migrate", &["--all", "--json"]);
    assert!(run.ok(), "{}", run.all());
    let report = run.json();
    assert_eq!(report["apply"], false);
    assert_eq!(report["users"][0]["user"], "alice");
    assert_eq!(report["users"][0]["result"], "would_migrate");
    assert_eq!(report["users"][1]["result"], "would_migrate");
    assert_eq!(report["backend"], "authy");
    assert!(paths(&sandbox).is_empty(), "{:?}", paths(&sandbox));
    assert_eq!(dir.config_text(), original);
}

#[test]
fn users_move_one_at_a_time_and_the_backend_switches_only_when_all_are_verified() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    authy_config_with_verify(&dir, &sandbox);
    let seeds = seeds(&dir, &format!("alice = \"{SEED}\"\n"), 0o600);

    let run = dir.cli("migrate", &["alice", "--apply", "--secrets-from", &seeds, "--json"]);
    assert!(run.ok(), "{}", run.all());
    let report = run.json();
    assert_eq!(report["users"][0]["result"], "migrated", "{report}");
    assert_eq!(report["backend"], "authy");
    assert_eq!(report["not_migrated"], serde_json::json!(["bob"]));
    assert!(!run.all().contains(SEED), "the seed is never printed");
    let half = Config::load(&dir.config_path()).expect("the module accepts the half-migrated config");
    assert_eq!(half.api.backend, Backend::Authy, "bob still logs in with Authy");
    let alice = half.user("alice").expect("alice");
    assert_eq!(alice.authy_id.map(|id| id.get()), Some(1001));
    let factor = alice.verify.as_ref().and_then(|v| v.totp_factor.clone()).expect("alice's factor");
    let text = dir.config_text();
    assert!(text.contains("# on call") && text.contains("# the team"), "{text}");
    // The exported seed is the factor's secret: the app the user has keeps working.
    let now = sandbox.now_unix();
    let from_seed = pam_authy::offline::code_at(
        &pam_authy::secret::Secret::from(SEED),
        now,
        &pam_authy::offline::OfflineParams { digits: 6, period_secs: 30, skew_steps: 1 },
    )
    .expect("code");
    assert_eq!(sandbox.verify_factor_code(factor.as_str(), now).as_deref(), Some(from_seed.expose()));

    let again = dir.cli("migrate", &["alice", "--apply", "--json"]);
    assert_eq!(again.json()["users"][0]["result"], "skipped");

    let config = dir.config_arg();
    let mut run = Interactive::start(&["migrate", "--config", &config, "--all", "--apply"]);
    let uri = run.uri().expect("bob's QR code");
    run.type_line(&code_for_uri(&sandbox, &uri));
    let run = run.finish();
    assert!(run.ok(), "{}", run.all());
    assert!(run.stdout.contains("alice: skipped"), "{}", run.stdout);
    assert!(run.stdout.contains("bob: migrated"), "{}", run.stdout);
    assert!(run.stdout.contains("backend switched to \"verify\""), "{}", run.stdout);
    let done = Config::load(&dir.config_path()).expect("valid");
    assert_eq!(done.api.backend, Backend::Verify);
    assert!(done.users.values().all(|u| u.verify.is_some()));
    assert!(dir.config_text().contains("authy_id = 1002"), "the Authy IDs stay for a rollback");
}

#[test]
fn a_failed_user_keeps_the_backend_and_says_why() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    let original = authy_config_with_verify(&dir, &sandbox);
    let readable = seeds(&dir, &format!("alice = \"{SEED}\"\n"), 0o644);
    let run = dir.cli("migrate", &["--all", "--apply", "--secrets-from", &readable]);
    assert_eq!(run.code, Some(1));
    assert!(run.all().contains("0644"), "{}", run.all());
    assert!(paths(&sandbox).is_empty());

    let seeds = seeds(&dir, &format!("alice = \"{SEED}\"\n"), 0o600);
    let run = dir.cli("migrate", &["--all", "--apply", "--secrets-from", &seeds, "--json"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let report = run.json();
    assert_eq!(report["ok"], false);
    assert_eq!(report["users"][0]["result"], "migrated");
    assert_eq!(report["users"][1]["result"], "failed");
    assert!(report["users"][1]["reason"].as_str().unwrap_or("").contains("no seed"), "{report}");
    assert_eq!(report["backend"], "authy");
    let config = Config::load(&dir.config_path()).expect("valid");
    assert_eq!(config.api.backend, Backend::Authy);
    assert_ne!(dir.config_text(), original);
}

#[test]
fn a_user_in_a_drop_in_is_migrated_in_that_drop_in() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    let original = authy_config_with_verify(&dir, &sandbox);
    let users_d = dir.path().join("users.d");
    std::fs::create_dir(&users_d).expect("mkdir users.d");
    set_mode(&users_d, 0o755);
    let drop_in = dir.write("users.d/50-ops.toml", "# the ops team\n[users]\ncarol = 1003 # pager\n", 0o600);
    let seeds = seeds(&dir, &format!("alice = \"{SEED}\"\nbob = \"{SEED}\"\ncarol = \"{SEED}\"\n"), 0o600);

    let dry = dir.cli("migrate", &["carol", "--json"]);
    assert_eq!(dry.json()["users"][0]["result"], "would_migrate", "{}", dry.all());

    let run = dir.cli("migrate", &["carol", "--apply", "--secrets-from", &seeds, "--json"]);
    assert!(run.ok(), "{}", run.all());
    let report = run.json();
    assert_eq!(report["users"][0]["result"], "migrated", "{report}");
    assert!(report["users"][0]["reason"].as_str().unwrap_or("").contains("50-ops.toml"), "{report}");
    assert_eq!(report["backend"], "authy");
    assert_eq!(dir.config_text(), original, "carol's keys go where carol is mapped");
    let text = std::fs::read_to_string(&drop_in).expect("drop-in");
    assert!(text.starts_with("# the ops team\n[users]\ncarol = { authy_id = 1003, verify_identity = "), "{text}");
    assert!(text.ends_with(" } # pager\n"), "{text}");
    assert_eq!(mode_of(&drop_in), 0o600);

    let run = dir.cli("migrate", &["--all", "--apply", "--secrets-from", &seeds, "--json"]);
    assert!(run.ok(), "{}", run.all());
    assert_eq!(run.json()["switched"], true, "{}", run.all());
    let done = Config::load(&dir.config_path()).expect("valid");
    assert_eq!(done.api.backend, Backend::Verify);
    assert!(done.users.values().all(|u| u.verify.is_some()));
}
