//! `pam-authy check` against the sandbox: a good config passes with one API call, every
//! kind of failure gives exit 1 and exactly one line naming it, risky settings warn.

mod common;

use authy_sandbox::Sandbox;
use common::{TestDir, api_section, config_for, paths, run, sandbox, set_mode};
use pam_harness::closed_port;

/// Runs `check` and asserts it failed with one problem line containing `expected`, in text
/// and in JSON.
fn assert_check_fails(dir: &TestDir, config_arg: &str, expected: &str) {
    let text = run(&["check", "--config", config_arg]);
    assert_eq!(text.code, Some(1), "{}", text.all());
    let errors = text.error_lines();
    assert_eq!(errors.len(), 1, "one line per problem: {}", text.stderr);
    assert!(errors[0].contains(expected), "{:?} lacks {expected:?}", errors[0]);
    assert!(!text.stdout.contains("ok\n"), "{}", text.stdout);

    let json = run(&["check", "--config", config_arg, "--json"]);
    assert_eq!(json.code, Some(1));
    let report = json.json();
    assert_eq!(report["ok"], false);
    assert_eq!(report["config"], config_arg);
    let listed = report["errors"].as_array().expect("errors");
    assert_eq!(listed.len(), 1, "{report}");
    assert!(listed[0].as_str().expect("string").contains(expected), "{report}");
    let _ = dir;
}

#[test]
fn a_good_config_and_a_reachable_api_pass_with_one_app_details_call() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    dir.write_config(&config_for(&dir, &sandbox, "[users]\nalice = 1\n"));
    let run = dir.cli("check", &[]);
    assert!(run.ok(), "{}", run.all());
    assert!(run.stdout.contains("valid; 1 users mapped"), "{}", run.stdout);
    assert!(run.stdout.contains("API key accepted by app \"Authy Sandbox\""), "{}", run.stdout);
    assert!(run.stdout.ends_with("ok\n"), "{}", run.stdout);
    assert_eq!(paths(&sandbox), ["GET /protected/json/app/details"]);
    let requests = sandbox.requests();
    assert_eq!(requests[0].api_key.as_deref(), Some(common::API_KEY));
}

#[test]
fn the_json_report_has_the_documented_fields() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    dir.write_config(&config_for(&dir, &sandbox, "[users]\nalice = 1\n"));
    let report = dir.cli("check", &["--json"]).json();
    assert_eq!(report["ok"], true);
    assert_eq!(report["config"], dir.config_arg());
    assert_eq!(report["errors"], serde_json::json!([]));
    assert!(report["warnings"].is_array());
    assert_eq!(report["api"]["ok"], true);
    assert_eq!(report["api"]["url"], sandbox.url());
    assert_eq!(report["api"]["app"]["name"], "Authy Sandbox");
    assert_eq!(report["api"]["app"]["onetouch_enabled"], true);
}

#[test]
fn no_api_checks_the_file_without_any_request() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    dir.write_config(&config_for(&dir, &sandbox, "[users]\nalice = 1\n"));
    let run = dir.cli("check", &["--no-api"]);
    assert!(run.ok(), "{}", run.all());
    assert!(sandbox.requests().is_empty());
    assert_eq!(dir.cli("check", &["--no-api", "--json"]).json()["api"], serde_json::Value::Null);
}

#[test]
fn a_missing_file_fails_the_check() {
    let dir = TestDir::new();
    let missing = dir.path().join("absent.toml").display().to_string();
    assert_check_fails(&dir, &missing, "absent.toml: No such file or directory");
}

#[test]
fn a_readable_file_holding_the_api_key_fails_with_the_modules_message() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    let path = dir.write_config(&config_for(&dir, &sandbox, ""));
    set_mode(&path, 0o644);
    assert_check_fails(
        &dir,
        &dir.config_arg(),
        &format!("{}: mode 0644 lets group or other read the secrets it holds; use 0600", path.display()),
    );
    assert!(sandbox.requests().is_empty(), "a refused config makes no API call");
}

#[test]
fn a_group_writable_file_fails_the_check() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    let path = dir.write_config(&config_for(&dir, &sandbox, ""));
    set_mode(&path, 0o620);
    assert_check_fails(&dir, &dir.config_arg(), "mode 0620 is writable by group or other");
}

#[test]
fn a_symlinked_config_fails_the_check() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    dir.write_config(&config_for(&dir, &sandbox, ""));
    let link = dir.path().join("link.toml");
    std::os::unix::fs::symlink(dir.config_path(), &link).expect("symlink");
    assert_check_fails(&dir, &link.display().to_string(), "link.toml: is a symbolic link");
}

#[test]
fn a_parse_error_names_the_line() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    dir.write_config(&format!("{}[users\nalice = 1\n", api_section(&dir, &sandbox)));
    assert_check_fails(&dir, &dir.config_arg(), "line 6");
}

#[test]
fn an_unknown_key_fails_the_check() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    dir.write_config(&config_for(&dir, &sandbox, "[auth]\nfailmod = \"safe\"\n"));
    assert_check_fails(&dir, &dir.config_arg(), "unknown key (expected one of `failmode`");
}

#[test]
fn a_bad_api_key_fails_with_the_60001_message() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    let text = config_for(&dir, &sandbox, "").replace(common::API_KEY, "not-the-key");
    dir.write_config(&text);
    assert_check_fails(&dir, &dir.config_arg(), "the API rejected the API key (60001)");
    let report = dir.cli("check", &["--json"]).json();
    assert_eq!(report["api"]["error"], "bad_api_key");
    assert!(!report.to_string().contains("not-the-key"), "the key is never printed");
}

#[test]
fn an_unreachable_url_fails_the_check() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    let url = format!("https://127.0.0.1:{}", closed_port());
    dir.write_config(&config_for(&dir, &sandbox, "").replace(&sandbox.url(), &url));
    assert_check_fails(&dir, &dir.config_arg(), &format!("{url}: API unreachable"));
}

#[test]
fn a_ca_that_does_not_match_fails_with_a_tls_message() {
    let sandbox = sandbox();
    let other = Sandbox::start(authy_sandbox::SandboxConfig::default()).expect("other sandbox");
    let dir = TestDir::new();
    let text = config_for(&dir, &sandbox, "");
    dir.write("ca.pem", &other.ca_pem(), 0o644);
    dir.write_config(&text);
    assert_check_fails(&dir, &dir.config_arg(), "TLS failure");
    assert!(dir.cli("check", &[]).stderr.contains("not trusted"));
}

#[test]
fn strict_ca_needs_a_ca_file_and_works_with_one() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    dir.write_config(&config_for(&dir, &sandbox, ""));
    let run = dir.cli("check", &["--strict-ca"]);
    assert!(run.ok(), "{}", run.all());
    let without_ca: String = config_for(&dir, &sandbox, "")
        .lines()
        .filter(|l| !l.starts_with("ca_file"))
        .map(|l| format!("{l}\n"))
        .collect();
    dir.write_config(&without_ca);
    let run = dir.cli("check", &["--strict-ca"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("--strict-ca needs [api] ca_file"), "{}", run.stderr);
}

#[test]
fn risky_settings_are_warnings_on_stderr_and_do_not_fail_the_check() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    dir.write_config(&config_for(
        &dir,
        &sandbox,
        "[auth]\nfailmode = \"safe\"\nunmapped_users = \"ignore\"\n\n[users]\nroot = 1\n",
    ));
    let run = dir.cli("check", &[]);
    assert!(run.ok(), "{}", run.all());
    let warnings = run.warnings();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("failmode = \"safe\""));
    assert!(warnings[1].contains("unmapped_users = \"ignore\""));
    let report = dir.cli("check", &["--json"]).json();
    assert_eq!(report["warnings"].as_array().map(Vec::len), Some(2));
}

#[test]
fn users_without_an_offline_secret_are_named_when_failmode_is_secure() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    dir.write_config(&config_for(
        &dir,
        &sandbox,
        "[users]\nroot = 1\ndaemon = { authy_id = 2, offline_secret = \"JBSWY3DPEHPK3PXP\" }\nbin = 3\n",
    ));
    let run = dir.cli("check", &[]);
    assert!(run.ok(), "{}", run.all());
    let warnings = run.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("2 of 3 users have no offline_secret (bin, root)"), "{}", warnings[0]);
    assert!(!run.all().contains("JBSWY3DPEHPK3PXP"));
}

#[test]
fn a_plain_http_proxy_is_a_warning_that_never_shows_its_credentials() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    let text = api_section(&dir, &sandbox) + "proxy = \"http://user:hunter2@127.0.0.1:3128\"\n\n[users]\nalice = 1\n";
    dir.write_config(&text);
    let run = dir.cli("check", &["--no-api"]);
    assert!(run.ok(), "{}", run.all());
    assert!(run.warnings().iter().any(|w| w.contains("proxy is plain http://")), "{}", run.stderr);
    assert!(!run.all().contains("hunter2"));
}

#[test]
fn an_empty_mapping_with_deny_warns_that_every_login_fails() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    dir.write_config(&config_for(&dir, &sandbox, ""));
    let run = dir.cli("check", &["--no-api"]);
    assert!(run.ok());
    assert!(run.warnings().iter().any(|w| w.contains("every login through the module fails")), "{}", run.stderr);
}

#[test]
fn a_method_the_app_cannot_serve_is_a_warning() {
    let sandbox = sandbox();
    sandbox.set_sms_enabled(false);
    let dir = TestDir::new();
    dir.write_config(&config_for(
        &dir,
        &sandbox,
        "[auth]\nmethod = \"sms\"\n\n[users]\nalice = { authy_id = 1, offline_secret = \"JBSWY3DPEHPK3PXP\" }\n",
    ));
    let run = dir.cli("check", &[]);
    assert!(run.ok(), "{}", run.all());
    assert!(run.warnings().iter().any(|w| w.contains("method = \"sms\"")), "{}", run.stderr);
    assert!(run.stdout.contains("sms off"), "{}", run.stdout);
}

#[test]
fn a_relative_config_path_is_resolved_against_the_working_directory() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    dir.write_config(&config_for(&dir, &sandbox, "[users]\nalice = 1\n"));
    let output = std::process::Command::new(common::binary())
        .args(["check", "--no-api", "--config", "pam_authy.toml"])
        .current_dir(dir.path())
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn users_that_are_not_canonical_account_names_are_named() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    dir.write_config(&config_for(&dir, &sandbox, "[users]\nroot = 1\nRoot = 2\nno-such-account-x = 3\n"));
    let run = dir.cli("check", &["--no-api"]);
    assert!(run.ok(), "{}", run.all());
    let stray: Vec<&str> = run.warnings().into_iter().filter(|w| w.contains("canonical name")).collect();
    assert_eq!(stray.len(), 1, "{}", run.stderr);
    assert!(stray[0].contains("Root, no-such-account-x"), "{}", stray[0]);
    assert!(!stray[0].contains("root,"), "{}", stray[0]);
}

/// `check --no-api` must fail wherever a login would: what is only known at run time is
/// checked with the module's own functions, not only the file.
fn assert_no_api_check_fails(dir: &TestDir, expected: &[&str]) {
    let run = dir.cli("check", &["--no-api"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let errors = run.error_lines();
    assert_eq!(errors.len(), 1, "one line per problem: {}", run.stderr);
    for part in expected {
        assert!(errors[0].contains(part), "{:?} lacks {part:?}", errors[0]);
    }
    assert!(!run.stdout.ends_with("ok\n"), "{}", run.stdout);
}

#[test]
fn a_group_that_does_not_exist_fails_the_check_as_it_fails_every_login() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    dir.write_config(&config_for(&dir, &sandbox, "[auth]\ngroups = [\"no-such-group-pa2fa\"]\n[users]\nalice = 1\n"));
    assert_no_api_check_fails(&dir, &["[auth] groups", "no-such-group-pa2fa", "does not exist"]);
}

#[test]
fn a_state_dir_others_can_write_fails_the_check_as_it_fails_every_offline_login() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).expect("mkdir");
    set_mode(&state, 0o777);
    dir.write_config(&config_for(
        &dir,
        &sandbox,
        &format!(
            "[offline]\nstate_dir = \"{}\"\n[users]\nalice = {{ authy_id = 1, offline_secret = \"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\" }}\n",
            state.display()
        ),
    ));
    assert_no_api_check_fails(&dir, &["[offline] state_dir", "0777", "writable by group or other"]);
}

#[test]
fn a_ca_file_that_does_not_parse_fails_the_check_without_the_api() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    let text = config_for(&dir, &sandbox, "[users]\nalice = 1\n");
    dir.write("ca.pem", "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n", 0o644);
    dir.write_config(&text);
    assert_no_api_check_fails(&dir, &["ca_file"]);
}

#[test]
fn a_ca_file_in_a_directory_others_can_write_names_the_key_and_the_rule() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    let open = dir.path().join("open");
    std::fs::create_dir(&open).expect("mkdir");
    set_mode(&open, 0o777);
    let ca = open.join("ca.pem");
    std::fs::write(&ca, sandbox.ca_pem()).expect("write ca");
    let text = config_for(&dir, &sandbox, "[users]\nalice = 1\n")
        .replace(&dir.path().join("ca.pem").display().to_string(), &ca.display().to_string());
    dir.write_config(&text);
    assert_no_api_check_fails(&dir, &["[api] ca_file", "0777", "writable by group or other", "only by its owner"]);
}

#[test]
fn users_d_drop_ins_are_read_listed_and_a_user_in_two_files_names_both() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    dir.write_config(&config_for(&dir, &sandbox, "[users]\nalice = 1\n"));
    std::fs::create_dir(dir.path().join("users.d")).expect("mkdir");
    let team = dir.write("users.d/10-team.toml", "[users]\nbob = 2\n", 0o644);
    let run = dir.cli("check", &["--no-api"]);
    assert!(run.ok(), "{}", run.all());
    assert!(run.stdout.contains(&format!("and 1 users.d files ({})", team.display())), "{}", run.stdout);
    assert!(run.stdout.contains("valid; 2 users mapped"), "{}", run.stdout);
    let report = dir.cli("check", &["--no-api", "--json"]).json();
    assert_eq!(report["users_d"], serde_json::json!([team.display().to_string()]));

    let ops = dir.write("users.d/20-ops.toml", "[users]\nalice = 3\n", 0o644);
    let expected = format!("{}: [users] alice is already defined in {}", ops.display(), dir.config_path().display());
    assert_check_fails(&dir, &dir.config_arg(), &expected);
}

#[test]
fn every_problem_of_the_file_is_listed_with_its_line_and_the_exit_status_is_1() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    let text = config_for(&dir, &sandbox, "[auth]\nmax_tries = 0\nfailmode = \"open\"\n[users]\nalice = 0\nbob = 2\n");
    let path = dir.write_config(&text);
    let line = |needle: &str| text.lines().position(|l| l.starts_with(needle)).expect("line") + 1;
    let expected = [
        format!("{}: line {}: [auth] failmode: unknown value", path.display(), line("failmode")),
        format!("{}: line {}: [auth] max_tries is out of range (1..=10)", path.display(), line("max_tries")),
        format!("{}: line {}: [users] alice: Authy ID must be a positive integer", path.display(), line("alice")),
    ];
    let run = dir.cli("check", &[]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let errors = run.error_lines();
    assert_eq!(errors.len(), 3, "{}", run.stderr);
    for (error, expected) in errors.iter().zip(&expected) {
        assert!(error.contains(expected.as_str()), "{error:?} lacks {expected:?}");
    }
    let report = dir.cli("check", &["--json"]).json();
    assert_eq!(report["ok"], false);
    assert_eq!(report["errors"].as_array().map(Vec::len), Some(3), "{report}");
    assert!(sandbox.requests().is_empty(), "no API call with a broken config");
}
