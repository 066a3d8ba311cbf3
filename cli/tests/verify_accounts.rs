//! `enroll`, `status` and `remove` with backend = "verify" against the sandbox: the factor is
//! verified before the mapping is written, every abandoned enrolment deletes it again, and
//! `--print`, `--png`, `--phone`, `--keep-remote` and `--drop-in` do what the man page says.

mod common;

use authy_sandbox::TotpFactorSpec;
use common::{Interactive, TestDir, code_for_uri, mode_of, owner_of, paths, sandbox, verify_config_for};
use pam_authy::config::Config;

const USERS: &str = "# who needs a second factor\n[users]\n";

fn setup() -> (authy_sandbox::Sandbox, TestDir, String) {
    let sandbox = sandbox();
    let dir = TestDir::new();
    let original = verify_config_for(&dir, &sandbox, USERS);
    dir.write_config(&original);
    (sandbox, dir, original)
}

fn start(dir: &TestDir, command: &str, args: &[&str]) -> Interactive {
    let config = dir.config_arg();
    let mut all = vec![command, "--config", config.as_str()];
    all.extend_from_slice(args);
    Interactive::start(&all)
}

fn deleted_factors(sandbox: &authy_sandbox::Sandbox) -> usize {
    paths(sandbox).iter().filter(|p| p.starts_with("DELETE ") && p.contains("/Factors/")).count()
}

#[test]
fn enroll_maps_the_user_only_after_the_first_code_verifies_the_factor() {
    let (sandbox, dir, original) = setup();
    let mut run = start(&dir, "enroll", &["bob", "--phone", "+15551234567"]);
    let uri = run.uri().expect("an otpauth URI");
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert_eq!(dir.config_text(), original, "nothing is written before the factor is verified");
    run.type_line("000000");
    run.type_line(&code_for_uri(&sandbox, &uri));
    let run = run.finish();
    assert!(run.ok(), "{}", run.all());
    assert!(run.stderr.contains("wrong code"), "{}", run.stderr);
    assert!(run.stdout.contains('▀') || run.stdout.contains('█'), "a QR code on the terminal");

    let config = Config::load(&dir.config_path()).expect("the module accepts the result");
    let bob = config.user("bob").and_then(|u| u.verify.clone()).expect("a Verify mapping");
    assert_eq!(bob.identity.as_str().len(), 32, "a random identity, never the user name");
    assert!(!bob.identity.as_str().contains("bob"));
    assert_eq!(bob.phone.map(|p| p.as_str().to_owned()).as_deref(), Some("+15551234567"));
    let factor = bob.totp_factor.expect("a TOTP factor");
    assert!(dir.config_text().starts_with(&original), "comments and layout kept");
    assert_eq!(mode_of(&dir.config_path()), 0o600);
    assert_eq!(deleted_factors(&sandbox), 0);

    let status = dir.cli("status", &["bob", "--json"]);
    assert!(status.ok(), "{}", status.all());
    let report = status.json();
    assert_eq!(report["totp_factor"]["sid"], factor.as_str());
    assert_eq!(report["totp_factor"]["status"], "verified");
    assert_eq!(report["phone"], "+1••••••••67");
    assert_eq!(report["config"], dir.config_path().display().to_string(), "the file that maps bob");
    assert!(!status.stdout.contains("5551234567"));
    let text = dir.cli("status", &["bob"]);
    assert!(text.ok() && text.stdout.contains("verified"), "{}", text.all());

    let removed = dir.cli("remove", &["bob"]);
    assert!(removed.ok(), "{}", removed.all());
    assert_eq!(deleted_factors(&sandbox), 1);
    assert_eq!(dir.config_text(), original);
    let again = dir.cli("status", &["bob"]);
    assert!(!again.ok());
}

#[test]
fn an_abandoned_enrolment_leaves_no_mapping_and_no_factor() {
    let (sandbox, dir, original) = setup();
    // End of input before any code.
    let mut run = start(&dir, "enroll", &["bob"]);
    run.uri().expect("an otpauth URI");
    let run = run.finish();
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.all().contains("enrolment abandoned"), "{}", run.all());
    assert!(run.all().contains("nothing was left at Verify"), "{}", run.all());
    assert_eq!(deleted_factors(&sandbox), 1);
    // Three wrong codes.
    let mut run = start(&dir, "enroll", &["bob", "--json"]);
    run.uri().expect("an otpauth URI on stderr with --json");
    for _ in 0..3 {
        run.type_line("123456");
    }
    let run = run.finish();
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert_eq!(run.json()["ok"], false);
    assert!(run.all().contains("no right code in 3 tries"), "{}", run.all());
    assert_eq!(deleted_factors(&sandbox), 2);
    assert_eq!(dir.config_text(), original);
    assert!(dir.leftovers().is_empty());
}

#[test]
fn an_interrupted_enrolment_deletes_the_factor() {
    let (sandbox, dir, original) = setup();
    let mut run = start(&dir, "enroll", &["bob"]);
    run.uri().expect("an otpauth URI");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(run.pid()), nix::sys::signal::Signal::SIGINT).expect("kill");
    let run = run.wait_for_exit();
    assert_eq!(run.code, Some(130), "{}", run.all());
    assert!(run.stderr.contains("interrupted: nothing was left at Verify"), "{}", run.stderr);
    assert_eq!(deleted_factors(&sandbox), 1);
    assert_eq!(dir.config_text(), original);
}

#[test]
fn print_shows_the_line_and_leaves_the_file_alone_and_png_is_a_new_0600_file() {
    let (sandbox, dir, original) = setup();
    let png = dir.path().join("bob.png");
    let png_arg = png.display().to_string();
    let mut run = start(&dir, "enroll", &["bob", "--print", "--png", &png_arg, "--json"]);
    let uri = run.uri().expect("an otpauth URI");
    run.type_line(&code_for_uri(&sandbox, &uri));
    let run = run.finish();
    assert!(run.ok(), "{}", run.all());
    assert_eq!(dir.config_text(), original);
    let line = run.json()["line"].as_str().expect("line").to_owned();
    assert!(line.starts_with("bob = { verify_identity = \""), "{line}");
    std::fs::write(dir.config_path(), format!("{original}{line}\n")).expect("append");
    assert!(Config::load(&dir.config_path()).expect("valid").user("bob").is_some());
    assert_eq!(mode_of(&png), 0o600);
    assert!(std::fs::read(&png).expect("png").starts_with(b"\x89PNG"));

    sandbox.clear_requests();
    let again = dir.cli("enroll", &["carol", "--png", &png_arg]);
    assert!(!again.ok());
    assert!(again.all().contains("already exists"), "{}", again.all());
    assert!(paths(&sandbox).is_empty(), "refused before any request: {:?}", paths(&sandbox));
}

#[test]
fn keep_remote_only_unmaps() {
    let (sandbox, dir, original) = setup();
    let mut run = start(&dir, "enroll", &["bob"]);
    let uri = run.uri().expect("uri");
    run.type_line(&code_for_uri(&sandbox, &uri));
    assert!(run.finish().ok());
    sandbox.clear_requests();
    let removed = dir.cli("remove", &["bob", "--keep-remote", "--json"]);
    assert!(removed.ok(), "{}", removed.all());
    assert_eq!(removed.json()["api"], "kept");
    assert!(paths(&sandbox).is_empty(), "{:?}", paths(&sandbox));
    assert_eq!(dir.config_text(), original);
}

#[test]
fn authy_options_and_bad_phones_are_refused_before_any_request() {
    let (sandbox, dir, original) = setup();
    for args in [
        vec!["bob", "--email", "b@example.org"],
        vec!["bob", "--country-code", "1"],
        vec!["bob", "--phone", "555-123-4567"],
        vec!["bad:name", "--phone", "+15551234567"],
    ] {
        let run = dir.cli("enroll", &args);
        assert_eq!(run.code, Some(1), "{args:?}: {}", run.all());
        assert_eq!(run.error_lines().len(), 1, "{args:?}: {}", run.all());
    }
    assert!(paths(&sandbox).is_empty(), "{:?}", paths(&sandbox));
    assert_eq!(dir.config_text(), original);
}

#[test]
fn check_proves_the_service_and_warns_about_each_factor_that_cannot_log_in() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    let service = sandbox.verify_account().service_sid;
    let good = sandbox.verify_add_totp_factor(&service, "aaaaaaaa-0001", &TotpFactorSpec::default()).expect("f").sid;
    let spec = TotpFactorSpec { verified: false, ..TotpFactorSpec::default() };
    let half = sandbox.verify_add_totp_factor(&service, "aaaaaaaa-0002", &spec).expect("factor").sid;
    let gone = format!("YF{}", "0".repeat(32));
    let users = format!(
        "[users]\nalice = {{ verify_identity = \"aaaaaaaa-0001\", totp_factor = \"{good}\" }}\n\
         bob = {{ verify_identity = \"aaaaaaaa-0002\", totp_factor = \"{half}\" }}\n\
         carol = {{ verify_identity = \"aaaaaaaa-0003\", totp_factor = \"{gone}\" }}\n"
    );
    dir.write_config(&verify_config_for(&dir, &sandbox, &users));
    let run = dir.cli("check", &["--json"]);
    assert!(run.ok(), "warnings only: {}", run.all());
    let report = run.json();
    assert_eq!(report["api"]["ok"], true);
    let warnings: Vec<String> =
        report["warnings"].as_array().expect("warnings").iter().map(|w| w.as_str().unwrap_or("").to_owned()).collect();
    let about = |user: &str| warnings.iter().filter(|w| w.starts_with(&format!("[users] {user}: factor"))).count();
    assert_eq!((about("alice"), about("bob"), about("carol")), (0, 1, 1), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains(&half) && w.contains("not verified")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains(&gone) && w.contains("does not exist")), "{warnings:?}");
}

#[test]
fn a_user_mapped_in_a_drop_in_is_removed_from_that_drop_in() {
    let (sandbox, dir, original) = setup();
    let service = sandbox.verify_account().service_sid;
    let factor = sandbox.verify_add_totp_factor(&service, "dddddddd-0001", &TotpFactorSpec::default()).expect("f").sid;
    let users_d = dir.path().join("users.d");
    std::fs::create_dir(&users_d).expect("mkdir users.d");
    common::set_mode(&users_d, 0o700);
    let carol = "carol = { verify_identity = \"dddddddd-0002\", totp_factor = \"YF00000000000000000000000000000000\" } # pager\n";
    let line = format!(
        "# the ops team\n[users]\nbob = {{ verify_identity = \"dddddddd-0001\", totp_factor = \"{factor}\" }}\n{carol}"
    );
    let drop_in = dir.write("users.d/team.toml", &line, 0o600);
    let run = dir.cli("remove", &["bob", "--json"]);
    assert!(run.ok(), "{}", run.all());
    assert_eq!(run.json()["config"], drop_in.display().to_string());
    assert_eq!(deleted_factors(&sandbox), 1);
    assert_eq!(std::fs::read_to_string(&drop_in).expect("drop-in"), format!("# the ops team\n[users]\n{carol}"));
    assert_eq!(mode_of(&drop_in), 0o600);
    assert_eq!(dir.config_text(), original);
    let run = dir.cli("remove", &["carol", "--keep-remote"]);
    assert!(run.ok(), "{}", run.all());
    assert_eq!(std::fs::read_to_string(&drop_in).expect("drop-in"), "# the ops team\n[users]\n");
    assert!(Config::load(&dir.config_path()).expect("valid").users.is_empty());
}

#[test]
fn enroll_drop_in_creates_a_private_drop_in_and_status_names_the_file() {
    let (sandbox, dir, original) = setup();
    let enrol = |user: &str, name: &str| {
        let mut run = start(&dir, "enroll", &[user, "--drop-in", name, "--json"]);
        let uri = run.uri().expect("an otpauth URI");
        run.type_line(&code_for_uri(&sandbox, &uri));
        run.finish()
    };
    let run = enrol("bob", "50-ops");
    assert!(run.ok(), "{}", run.all());
    let drop_in = dir.path().join("users.d/50-ops.toml");
    assert_eq!(run.json()["config"], drop_in.display().to_string());
    assert_eq!(dir.config_text(), original, "the main file is left alone");
    assert_eq!(mode_of(&drop_in), 0o600);
    assert_eq!(owner_of(&drop_in), (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw()));
    assert_eq!(mode_of(&dir.path().join("users.d")) & 0o022, 0, "users.d is writable by its owner only");
    assert!(std::fs::read_to_string(&drop_in).expect("drop-in").starts_with("[users]\nbob = { verify_identity = "));
    let config = Config::load(&dir.config_path()).expect("the module accepts the result");
    assert_eq!(config.drop_ins, std::slice::from_ref(&drop_in));
    assert!(config.user("bob").and_then(|u| u.verify.as_ref()).is_some());

    let status = dir.cli("status", &["bob", "--json"]);
    assert!(status.ok(), "{}", status.all());
    assert_eq!(status.json()["config"], drop_in.display().to_string());
    let text = dir.cli("status", &["bob"]);
    assert!(text.stdout.contains(&format!("mapped in      : {}", drop_in.display())), "{}", text.all());

    // The admin's comment stays; a name given with .toml is the same file.
    let with_comment = format!("# ops: ask #oncall\n{}", std::fs::read_to_string(&drop_in).expect("drop-in"));
    std::fs::write(&drop_in, &with_comment).expect("write");
    let run = enrol("carol", "50-ops.toml");
    assert!(run.ok(), "{}", run.all());
    let text = std::fs::read_to_string(&drop_in).expect("drop-in");
    assert!(text.starts_with(&with_comment) && text[with_comment.len()..].starts_with("carol = {"), "{text}");
    assert_eq!(dir.config_text(), original);
    assert!(dir.leftovers().is_empty(), "{:?}", dir.leftovers());
    assert!(std::fs::read_dir(dir.path().join("users.d")).expect("ls").count() == 1, "no temporary file left");

    sandbox.clear_requests();
    let again = dir.cli("enroll", &["bob", "--drop-in", "60-dev"]);
    assert_eq!(again.code, Some(1), "{}", again.all());
    assert!(again.all().contains("users.d/50-ops.toml"), "names the file that maps bob: {}", again.all());
    assert!(paths(&sandbox).is_empty(), "{:?}", paths(&sandbox));
}

#[test]
fn a_bad_drop_in_name_or_a_drop_in_the_module_rejects_is_refused_before_any_request() {
    let (sandbox, dir, original) = setup();
    for name in ["../evil", ".hidden", "a/b", "", "ops team", "ops\n"] {
        let run = dir.cli("enroll", &["bob", "--drop-in", name]);
        assert_eq!(run.code, Some(1), "{name:?}: {}", run.all());
        assert!(run.all().contains("--drop-in"), "{}", run.all());
    }
    let run = dir.cli("enroll", &["bob", "--drop-in", "ops", "--print"]);
    assert_eq!(run.code, Some(2), "--print writes nothing: {}", run.all());
    assert!(!dir.path().join("users.d").exists(), "nothing created");

    let users_d = dir.path().join("users.d");
    std::fs::create_dir(&users_d).expect("mkdir users.d");
    common::set_mode(&users_d, 0o700);
    dir.write("users.d/10-dev.toml", "[users]\n", 0o666);
    let run = dir.cli("enroll", &["bob", "--drop-in", "20-ops"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.all().contains("10-dev.toml"), "{}", run.all());
    assert!(!users_d.join("20-ops.toml").exists());
    assert!(paths(&sandbox).is_empty(), "{:?}", paths(&sandbox));
    assert_eq!(dir.config_text(), original);
}
