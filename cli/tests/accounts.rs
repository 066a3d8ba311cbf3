//! `enroll`, `status` and `remove` against the sandbox: the API calls, the mapping edits
//! (comments, layout, owner and mode kept, atomic), and every refusal leaving the file alone.

mod common;

use common::{PHONE, TestDir, config_for, mode_of, owner_of, paths, sandbox, set_mode};
use pam_authy::config::Config;

const COMMENTED: &str = "\
# pam_authy for the bastion hosts
[auth]
failmode = \"secure\"   # never let people in when Authy is down

# Who needs a second factor.
[users]
# the on-call admin
alice = 1234567 # phone in the safe
";

#[test]
fn enroll_creates_the_user_and_appends_the_mapping_keeping_comments_owner_and_mode() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    let original = config_for(&dir, &sandbox, COMMENTED);
    let path = dir.write_config(&original);
    let owner = owner_of(&path);
    let run = dir.cli("enroll", &["bob", "--email", "bob@example.org", "--phone", PHONE, "--country-code", "+1"]);
    assert!(run.ok(), "{}", run.all());
    let id = sandbox.add_user("bob@example.org", PHONE, 1);
    assert_eq!(run.stdout, format!("enrolled bob: Authy ID {id}, added to [users] of {}\n", path.display()));
    assert_eq!(dir.config_text(), format!("{original}bob = {id}\n"));
    assert_eq!(mode_of(&path), 0o600);
    assert_eq!(owner_of(&path), owner);
    assert!(dir.leftovers().is_empty(), "{:?}", dir.leftovers());
    let config = Config::load(&path).expect("the module accepts the result");
    assert_eq!(config.user("bob").and_then(|u| u.authy_id).map(|id| id.get()), Some(id));

    let requests = sandbox.requests();
    assert_eq!(paths(&sandbox), ["POST /protected/json/users/new"]);
    let body: serde_json::Value = serde_json::from_str(&requests[0].body).expect("json body");
    assert_eq!(body["user"]["email"], "bob@example.org");
    assert_eq!(body["user"]["cellphone"], PHONE);
    assert_eq!(body["user"]["country_code"], 1);
}

#[test]
fn enroll_creates_the_users_table_when_there_is_none_and_reports_in_json() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    let original = common::api_section(&dir, &sandbox);
    dir.write_config(&original);
    let run = dir.cli(
        "enroll",
        &["carol", "--email", "c@example.org", "--phone", "555 000 1111", "--country-code", "44", "--json"],
    );
    assert!(run.ok(), "{}", run.all());
    let report = run.json();
    let id = report["authy_id"].as_u64().expect("id");
    assert_eq!(report["ok"], true);
    assert_eq!(report["user"], "carol");
    assert_eq!(dir.config_text(), format!("{original}\n[users]\ncarol = {id}\n"));
}

#[test]
fn enroll_keeps_a_group_readable_mode_when_the_file_holds_no_secret() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    let key = dir.write("api_key", common::API_KEY, 0o600);
    let text = config_for(&dir, &sandbox, "")
        .replace(&format!("api_key = \"{}\"", common::API_KEY), &format!("api_key_file = \"{}\"", key.display()));
    let path = dir.write("pam_authy.toml", &text, 0o640);
    let run = dir.cli("enroll", &["dave", "--email", "d@example.org", "--phone", PHONE, "--country-code", "1"]);
    assert!(run.ok(), "{}", run.all());
    assert_eq!(mode_of(&path), 0o640);
}

#[test]
fn enroll_refuses_a_user_already_mapped_without_calling_the_api() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    let original = config_for(&dir, &sandbox, COMMENTED);
    dir.write_config(&original);
    let run = dir.cli("enroll", &["alice", "--email", "a@example.org", "--phone", PHONE, "--country-code", "1"]);
    assert_eq!(run.code, Some(1));
    assert_eq!(
        run.error_lines(),
        [format!(
            "pam-authy: alice is already mapped to Authy ID 1234567 in {}; run `pam-authy remove alice` first",
            dir.config_arg()
        )]
    );
    assert!(sandbox.requests().is_empty());
    assert_eq!(dir.config_text(), original);
}

#[test]
fn enroll_refuses_a_config_the_module_rejects_before_any_api_call() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    let original = config_for(&dir, &sandbox, COMMENTED);
    let path = dir.write_config(&original);
    set_mode(&path, 0o644);
    let run = dir.cli("enroll", &["bob", "--email", "b@example.org", "--phone", PHONE, "--country-code", "1"]);
    assert_eq!(run.code, Some(1));
    assert_eq!(run.error_lines().len(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("mode 0644 lets group or other read"), "{}", run.stderr);
    assert!(sandbox.requests().is_empty());
    assert_eq!(dir.config_text(), original);
    assert_eq!(mode_of(&path), 0o644);
}

#[test]
fn enroll_reports_the_apis_refusal_and_leaves_the_file_alone() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    let original = config_for(&dir, &sandbox, COMMENTED);
    dir.write_config(&original);
    let run = dir.cli("enroll", &["bob", "--email", "not-an-address", "--phone", PHONE, "--country-code", "1"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("users/new: API refused: HTTP 400 error 60027"), "{}", run.stderr);
    assert!(run.stderr.contains("email is invalid"), "the API's field error: {}", run.stderr);
    assert_eq!(dir.config_text(), original);
}

#[test]
fn enroll_checks_the_phone_number_before_any_request() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    let original = config_for(&dir, &sandbox, COMMENTED);
    dir.write_config(&original);
    for phone in ["no digits", "555-0100 ext. 9", "12", "+1 555 0100", "1234567890123456"] {
        let run = dir.cli("enroll", &["bob", "--email", "b@example.org", "--phone", phone, "--country-code", "1"]);
        assert_eq!(run.code, Some(1), "{phone:?}: {}", run.all());
        assert!(run.stderr.contains("--phone"), "{phone:?}: {}", run.stderr);
    }
    assert!(sandbox.requests().is_empty(), "{:?}", paths(&sandbox));
    assert_eq!(dir.config_text(), original);
}

#[test]
fn enroll_refuses_bad_names_and_country_codes() {
    let dir = TestDir::new();
    let run = dir.cli("enroll", &["bad user", "--email", "e", "--phone", PHONE, "--country-code", "1"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("not a valid user name"), "{}", run.stderr);
    let run = dir.cli("enroll", &["bob", "--email", "e", "--phone", PHONE, "--country-code", "0"]);
    assert_eq!(run.code, Some(2), "a usage error: {}", run.stderr);
}

#[test]
fn status_shows_registration_confirmation_and_devices() {
    let sandbox = sandbox();
    let id = sandbox.add_user("alice@example.org", PHONE, 1);
    let dir = TestDir::new();
    dir.write_config(&config_for(&dir, &sandbox, &format!("[users]\nalice = {id}\n")));
    let run = dir.cli("status", &["alice"]);
    assert!(run.ok(), "{}", run.all());
    assert!(run.stdout.starts_with(&format!("alice: Authy ID {id}\n")), "{}", run.stdout);
    assert!(run.stdout.contains("registered     : yes"), "{}", run.stdout);
    assert!(run.stdout.contains("confirmed      : no"), "{}", run.stdout);
    assert!(run.stdout.contains("devices        : android"), "{}", run.stdout);
    assert!(run.stdout.contains("offline secret : none"), "{}", run.stdout);
    assert_eq!(paths(&sandbox), [format!("GET /protected/json/users/{id}/status")]);

    sandbox.set_user_registered(id, false);
    sandbox.set_user_has_app(id, false);
    let report = dir.cli("status", &["alice", "--json"]).json();
    assert_eq!(report["ok"], true);
    assert_eq!(report["authy_id"], id);
    assert_eq!(report["registered"], false);
    assert_eq!(report["devices"], serde_json::json!([]));
    assert_eq!(report["account_disabled"], false);
    assert_eq!(report["offline_secret"], false);
}

#[test]
fn status_of_an_unmapped_user_says_so() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    dir.write_config(&config_for(&dir, &sandbox, COMMENTED));
    let run = dir.cli("status", &["zoe", "--json"]);
    assert_eq!(run.code, Some(1));
    assert_eq!(run.json()["ok"], false);
    assert!(run.json()["error"].as_str().expect("error").contains("zoe is not in [users]"));
    assert_eq!(run.error_lines().len(), 1);
    assert!(sandbox.requests().is_empty());
}

#[test]
fn status_of_a_user_authy_does_not_know_reports_the_404() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    dir.write_config(&config_for(&dir, &sandbox, COMMENTED));
    let run = dir.cli("status", &["alice"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("HTTP 404 error 60026"), "{}", run.stderr);
}

#[test]
fn remove_calls_the_api_and_drops_only_that_mapping() {
    let sandbox = sandbox();
    let id = sandbox.add_user("bob@example.org", PHONE, 1);
    let dir = TestDir::new();
    let original = config_for(&dir, &sandbox, COMMENTED);
    let path = dir.write_config(&format!("{original}bob = {id} # to be removed\ncarol = 7\n"));
    let run = dir.cli("remove", &["bob"]);
    assert!(run.ok(), "{}", run.all());
    assert_eq!(paths(&sandbox), [format!("POST /protected/json/users/{id}/remove")]);
    assert_eq!(dir.config_text(), format!("{original}carol = 7\n"));
    assert_eq!(mode_of(&path), 0o600);
    assert!(run.warnings().is_empty(), "{}", run.stderr);
}

#[test]
fn remove_drops_a_stale_mapping_when_authy_no_longer_knows_the_id() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    dir.write_config(&config_for(&dir, &sandbox, COMMENTED));
    let run = dir.cli("remove", &["alice", "--json"]);
    assert!(run.ok(), "{}", run.all());
    assert_eq!(run.json()["api"], "not_found");
    assert!(run.warnings()[0].contains("does not know ID 1234567"), "{}", run.stderr);
    assert!(!dir.config_text().contains("alice"));
}

#[test]
fn remove_keeps_the_mapping_when_the_api_fails() {
    let sandbox = sandbox();
    let id = sandbox.add_user("bob@example.org", PHONE, 1);
    sandbox.set_fault(authy_sandbox::FaultScope::Global, Some(authy_sandbox::Fault::Status(503)));
    let dir = TestDir::new();
    let original = config_for(&dir, &sandbox, &format!("[users]\nbob = {id}\n"));
    dir.write_config(&original);
    let run = dir.cli("remove", &["bob"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("bob stays in [users]"), "{}", run.stderr);
    assert_eq!(dir.config_text(), original);
}

#[test]
fn removing_a_user_under_unmapped_ignore_warns_that_they_lose_the_second_factor() {
    let sandbox = sandbox();
    let id = sandbox.add_user("bob@example.org", PHONE, 1);
    let dir = TestDir::new();
    dir.write_config(&config_for(
        &dir,
        &sandbox,
        &format!("[auth]\nunmapped_users = \"ignore\"\n[users]\nbob = {id}\n"),
    ));
    let run = dir.cli("remove", &["bob"]);
    assert!(run.ok(), "{}", run.all());
    assert!(run.warnings().iter().any(|w| w.contains("bob now logs in without a second factor")), "{}", run.stderr);
}

#[test]
fn enroll_waits_for_another_edit_before_it_calls_the_api() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    let original = config_for(&dir, &sandbox, COMMENTED);
    dir.write_config(&original);
    let handle = std::fs::File::open(dir.path()).expect("open dir");
    let lock = nix::fcntl::Flock::lock(handle, nix::fcntl::FlockArg::LockExclusive).expect("lock");
    let requests_while_locked = std::thread::scope(|scope| {
        let enroll = scope
            .spawn(|| dir.cli("enroll", &["bob", "--email", "b@example.org", "--phone", PHONE, "--country-code", "1"]));
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let seen = sandbox.requests().len();
        drop(lock);
        let run = enroll.join().expect("join");
        assert!(run.ok(), "{}", run.all());
        seen
    });
    assert_eq!(requests_while_locked, 0, "the API was called before the config lock was held");
    let id = sandbox.add_user("b@example.org", PHONE, 1);
    assert_eq!(dir.config_text(), format!("{original}bob = {id}\n"));
}

#[test]
fn an_edit_gives_up_when_the_lock_stays_held_and_nothing_changed_anywhere() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    let original = config_for(&dir, &sandbox, COMMENTED);
    dir.write_config(&original);
    let handle = std::fs::File::open(dir.path()).expect("open dir");
    let _lock = nix::fcntl::Flock::lock(handle, nix::fcntl::FlockArg::LockExclusive).expect("lock");
    let run = dir.cli("enroll", &["bob", "--email", "b@example.org", "--phone", PHONE, "--country-code", "1"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("another pam-authy is editing it"), "{}", run.stderr);
    assert!(!run.stderr.contains("Authy created"), "{}", run.stderr);
    assert!(sandbox.requests().is_empty(), "{:?}", paths(&sandbox));
    assert_eq!(dir.config_text(), original);
}

#[test]
fn twelve_parallel_enrolls_change_authy_and_the_config_together() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    let original = config_for(&dir, &sandbox, COMMENTED);
    dir.write_config(&original);
    let runs: Vec<(String, common::Run)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..12)
            .map(|i| {
                let dir = &dir;
                scope.spawn(move || {
                    let user = format!("user{i}");
                    let phone = format!("555-010-{:04}", 1000 + i);
                    let email = format!("{user}@example.org");
                    (
                        user.clone(),
                        dir.cli("enroll", &[&user, "--email", &email, "--phone", &phone, "--country-code", "1"]),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("join")).collect()
    });
    let config = Config::load(&dir.config_path()).expect("the module accepts the result");
    let created = sandbox.requests().iter().filter(|r| r.raw_path == "/protected/json/users/new").count();
    let mapped: Vec<&String> = runs.iter().filter(|(_, run)| run.ok()).map(|(user, _)| user).collect();
    for (user, run) in &runs {
        assert!(run.ok(), "{user}: {}", run.all());
        assert!(config.user(user).is_some(), "{user} is missing from the config");
    }
    assert_eq!(created, mapped.len(), "every Authy user created has its line, and no more");
    assert!(dir.leftovers().is_empty(), "{:?}", dir.leftovers());
}

#[test]
fn an_authy_id_beyond_the_configs_range_is_refused_and_no_line_is_advised() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    let original = config_for(&dir, &sandbox, COMMENTED);
    dir.write_config(&original);
    let huge = "9223372036854775808";
    sandbox.set_fault(
        authy_sandbox::FaultScope::Global,
        Some(authy_sandbox::Fault::Body(
            200,
            format!(r#"{{"message":"User created successfully.","user":{{"id":{huge}}},"success":true}}"#),
        )),
    );
    let run = dir.cli("enroll", &["bob", "--email", "b@example.org", "--phone", PHONE, "--country-code", "1"]);
    assert_eq!(run.code, Some(1));
    assert!(!run.stderr.contains("by hand"), "a line with that ID would break the config: {}", run.stderr);
    assert!(!run.all().contains(&format!("bob = {huge}")), "{}", run.all());
    assert_eq!(run.error_lines().len(), 1, "{}", run.stderr);
    assert_eq!(dir.config_text(), original);
    Config::load(&dir.config_path()).expect("the config still loads");
}

#[test]
fn enroll_undoes_the_authy_user_when_the_config_cannot_be_edited() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    let original = config_for(&dir, &sandbox, COMMENTED);
    let path = dir.write_config(&original);
    sandbox.set_fault_times(
        authy_sandbox::FaultScope::Global,
        authy_sandbox::Fault::Slow(std::time::Duration::from_millis(1500)),
        1,
    );
    let run = std::thread::scope(|scope| {
        let enroll = scope
            .spawn(|| dir.cli("enroll", &["bob", "--email", "b@example.org", "--phone", PHONE, "--country-code", "1"]));
        // While users/new is in flight, someone makes the file one the module rejects.
        while sandbox.requests().is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        set_mode(&path, 0o644);
        enroll.join().expect("join")
    });
    assert_eq!(run.code, Some(1));
    let id = sandbox.add_user("b@example.org", PHONE, 1);
    assert_eq!(
        paths(&sandbox),
        ["POST /protected/json/users/new".to_owned(), format!("POST /protected/json/users/{id}/remove")]
    );
    assert!(run.stderr.contains("removed again"), "{}", run.stderr);
    assert!(!run.stderr.contains("by hand"), "{}", run.stderr);
    assert_eq!(dir.config_text(), original);
}

#[test]
fn print_and_keep_remote_work_for_authy_too() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    let original = config_for(&dir, &sandbox, COMMENTED);
    dir.write_config(&original);
    let run =
        dir.cli("enroll", &["bob", "--email", "bob@example.org", "--phone", PHONE, "--country-code", "1", "--print"]);
    assert!(run.ok(), "{}", run.all());
    let id = sandbox.add_user("bob@example.org", PHONE, 1);
    assert!(run.stdout.ends_with(&format!("\nbob = {id}\n")), "{}", run.stdout);
    assert_eq!(dir.config_text(), original);
    let missing = dir.cli("enroll", &["carol", "--email", "c@example.org"]);
    assert_eq!(missing.code, Some(1));
    assert!(missing.all().contains("needs --email, --phone and --country-code"), "{}", missing.all());

    sandbox.clear_requests();
    let removed = dir.cli("remove", &["alice", "--keep-remote", "--json"]);
    assert!(removed.ok(), "{}", removed.all());
    assert_eq!(removed.json()["api"], "kept");
    assert!(paths(&sandbox).is_empty(), "{:?}", paths(&sandbox));
    assert!(!dir.config_text().contains("alice"));
}

#[test]
fn enroll_drop_in_writes_the_authy_mapping_there_and_status_and_remove_find_it() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    let original = config_for(&dir, &sandbox, COMMENTED);
    dir.write_config(&original);
    let run = dir.cli(
        "enroll",
        &["bob", "--email", "bob@example.org", "--phone", PHONE, "--country-code", "1", "--drop-in", "50-dev"],
    );
    assert!(run.ok(), "{}", run.all());
    let id = sandbox.add_user("bob@example.org", PHONE, 1);
    let drop_in = dir.path().join("users.d/50-dev.toml");
    assert_eq!(run.stdout, format!("enrolled bob: Authy ID {id}, added to [users] of {}\n", drop_in.display()));
    assert_eq!(std::fs::read_to_string(&drop_in).expect("drop-in"), format!("[users]\nbob = {id}\n"));
    assert_eq!(mode_of(&drop_in), 0o600);
    assert_eq!(dir.config_text(), original);
    let config = Config::load(&dir.config_path()).expect("the module accepts the result");
    assert_eq!(config.user("bob").and_then(|u| u.authy_id).map(|id| id.get()), Some(id));

    let status = dir.cli("status", &["bob", "--json"]);
    assert!(status.ok(), "{}", status.all());
    assert_eq!(status.json()["config"], drop_in.display().to_string());

    let removed = dir.cli("remove", &["bob"]);
    assert!(removed.ok(), "{}", removed.all());
    assert!(removed.stdout.contains(&drop_in.display().to_string()), "{}", removed.stdout);
    assert_eq!(std::fs::read_to_string(&drop_in).expect("drop-in"), "[users]\n");
    assert_eq!(dir.config_text(), original);
}
