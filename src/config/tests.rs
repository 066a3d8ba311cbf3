//! Whole-file tests: defaults, the documented examples, each refusal and its message, file modes.

use super::*;
use crate::secret::Secret;
use crate::verify::Phone;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

const MINIMAL: &str = "[api]\napi_key = \"key\"\n";

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("/etc/pam_authy/pam_authy.toml"), text)
}

fn problem(text: &str) -> String {
    parse(text).expect_err("must be refused").problem
}

#[test]
fn defaults_are_the_documented_ones() {
    let config = parse(MINIMAL).expect("config");
    assert_eq!(config.api.url, "https://api.authy.com");
    assert_eq!(config.api.timeout, Duration::from_secs(10));
    assert_eq!(config.auth.failmode, FailMode::Secure);
    assert_eq!(config.auth.unmapped_users, UnmappedPolicy::Deny);
    assert_eq!(config.auth.max_tries, 3);
    assert_eq!(config.auth.method, Method::Prompt);
    assert_eq!(config.offline.digits, 6);
    assert_eq!(config.offline.period_secs, 30);
    assert_eq!(config.offline.skew_steps, 1);
    assert_eq!(config.offline.state_dir, PathBuf::from("/var/lib/pam_authy"));
    assert!(config.users.is_empty());
}

#[test]
fn the_documented_example_parses() {
    let text = r#"
[api]
url = "https://api.authy.com"
api_key = "abc"
timeout_secs = 10

[auth]
failmode = "secure"
unmapped_users = "deny"
groups = []
max_tries = 3

[offline]
digits = 6
period_secs = 30
skew_steps = 1
state_dir = "/var/lib/pam_authy"

[users]
alice = 1234567
bob = { authy_id = 7654321, offline_secret = "jbsw y3dp ehpk 3pxp" }
"#;
    let config = parse(text).expect("config");
    assert_eq!(config.user("alice").and_then(|u| u.authy_id).map(AuthyId::get), Some(1234567));
    let bob = config.user("bob").expect("bob");
    assert_eq!(bob.authy_id.map(AuthyId::get), Some(7654321));
    assert_eq!(bob.offline_secret.as_ref().map(Secret::expose), Some("JBSWY3DPEHPK3PXP"));
}

#[test]
fn each_schema_violation_is_refused_with_a_clear_message() {
    let cases = [
        ("[api]\napi_key = \"k\"\nbogus = 1\n", "line 3: unknown key"),
        ("[api]\napi_key = \"k\"\n[auth]\nfailmode = \"open\"\n", "line 4: [auth] failmode: unknown value"),
        ("[api]\napi_key = \"k\"\n[auth]\nmax_tries = \"3\"\n", "[auth] max_tries: wrong type"),
        ("[api]\napi_key = \"k\"\n[auth]\nmax_tries = 0\n", "max_tries is out of range"),
        ("[api]\napi_key = \"k\"\nurl = \"http://api.authy.com\"\n", "https://"),
        ("[api]\napi_key = \"k\"\nurl = \"https://u:p@api.authy.com\"\n", "credentials"),
        ("[api]\n", "needs api_key or api_key_file"),
        ("[api]\napi_key = \"k\"\napi_key_file = \"/k\"\n", "both"),
        ("[api]\napi_key = \"a b\"\n", "printable ASCII"),
        ("[api]\napi_key = \"k\"\n[users]\nalice = 0\n", "positive integer"),
        ("[api]\napi_key = \"k\"\n[users]\nalice = -5\n", "positive integer"),
        ("[api]\napi_key = \"k\"\n[users]\nalice = \"123\"\n", "must be an Authy ID"),
        ("[api]\napi_key = \"k\"\n[users]\nalice = 1\nalice = 2\n", "duplicate key"),
        ("[api]\napi_key = \"k\"\n[users]\nalice = 1\n\"alice\" = 2\n", "duplicate key"),
        ("[api]\napi_key = \"k\"\n[users]\nalice = 99999999999999999999\n", "line 4"),
        ("[api]\napi_key = \"k\"\n[users]\n\"alice \" = 1\n", "not a valid user name"),
        ("[api]\napi_key = \"k\"\n[users]\nbob = { authy_id = 1, extra = 2 }\n", "unknown key"),
        ("[api]\napi_key = \"k\"\n[users]\nbob = { offline_secret = \"JBSWY3DPEHPK3PXP\" }\n", "missing authy_id"),
        (
            "[api]\napi_key = \"k\"\n[users]\nbob = { authy_id = 1, offline_secret = \"JBSWY3DP\" }\n",
            "at least 80 bits",
        ),
        ("[api]\napi_key = \"k\"\n[users]\nbob = { authy_id = 1, offline_secret = \"not base32!\" }\n", "base32"),
        ("[api]\napi_key = \"k\"\n[offline]\nstate_dir = \"relative\"\n", "absolute"),
        ("[api]\napi_key = \"k\"\n[offline]\ndigits = 9\n", "out of range"),
        ("[api\napi_key = \"k\"\n", "line 1"),
    ];
    for (text, expected) in cases {
        let problem = problem(text);
        assert!(problem.contains(expected), "{text:?}: {problem:?} lacks {expected:?}");
    }
}

#[test]
fn error_messages_never_echo_a_secret_value() {
    for text in [
        "[api]\napi_key = 123456789\n",
        "[api]\napi_key = \"SECRETKEY\n",
        "[api]\napi_key = \"k\"\n[users]\nbob = { authy_id = 1, offline_secret = 12345678 }\n",
        "[api]\napi_key = \"k\"\n[users]\nbob = { authy_id = 1, offline_secret = \"SECRETSEED\" }\n",
    ] {
        let problem = problem(text);
        for secret in ["123456789", "SECRETKEY", "12345678", "SECRETSEED"] {
            assert!(!problem.contains(secret), "{problem:?} leaks {secret}");
        }
    }
}

#[test]
fn push_details_are_chosen_by_the_admin_and_the_command_is_opt_in() {
    let config = parse(MINIMAL).expect("config");
    assert_eq!(config.auth.push_details, PushDetails::default());
    assert!(!config.auth.push_details.command);
    let text = "[api]\napi_key = \"k\"\n[auth]\npush_details = [\"host\", \"requested_by\"]\npush_command = true\n";
    let details = parse(text).expect("config").auth.push_details;
    assert_eq!(details.fields, [DetailField::Host, DetailField::RequestedBy]);
    assert!(details.command);
    assert!(parse("[api]\napi_key = \"k\"\n[auth]\npush_details = [\"command\"]\n").is_err());
}

#[test]
fn a_config_error_names_the_key_and_the_problem_never_the_value() {
    let k = "[api]\napi_key = \"k\"\n";
    let cases = [
        format!("{k}timeout_secs = \"PASTEDVALUE\"\n"),
        format!("{k}timeout_secs = 987654321\n"),
        format!("{k}url = \"PASTEDVALUE\"\n"),
        format!("{k}proxy = \"PASTEDVALUE\"\n"),
        format!("{k}PASTEDVALUE = 1\n"),
        format!("{k}[auth]\nfailmode = \"PASTEDVALUE\"\n"),
        format!("{k}[auth]\nmethod = \"PASTEDVALUE\"\n"),
        format!("{k}[auth]\nmax_tries = 987654321\n"),
        format!("{k}[auth]\ngroups = [\"PASTED VALUE\"]\n"),
        format!("{k}[auth]\npush_details = [\"PASTEDVALUE\"]\n"),
        format!("{k}[offline]\nstate_dir = 987654321\n"),
        format!("{k}[users]\n\"PASTED VALUE\" = 1\n"),
        format!("{k}[users]\nbob = {{ authy_id = 1, PASTEDVALUE = 2 }}\n"),
        format!("{k}[users]\nbob = \"PASTEDVALUE\"\n"),
        format!("{k}[users]\nbob = 1\nbob = \"PASTEDVALUE\"\n"),
        format!("{k}[users]\nPASTEDVALUE = 1\nPASTEDVALUE = 2\n"),
        "[api]\napi_key = PASTEDVALUE\n".to_owned(),
        "[api]\napi_key = \"PASTEDVALUE\"junk\n".to_owned(),
        "[api]\napi_key = \"PASTED VALUE\"\n".to_owned(),
    ];
    for text in cases {
        let error = parse(&text).expect_err("must be refused");
        let shown = error.to_string();
        assert!(!shown.contains("PASTED") && !shown.contains("987654321"), "{text:?} -> {shown}");
        assert!(shown.starts_with("/etc/pam_authy/pam_authy.toml: "), "{shown}");
    }
    let shown = parse(&format!("{k}[auth]\nfailmode = \"PASTEDVALUE\"\n")).expect_err("refused").to_string();
    assert!(shown.contains("line 4") && shown.contains("failmode") && shown.contains("secure"), "{shown}");
    for args in [&["PASTEDVALUE"][..], &["method=PASTEDVALUE"], &["config=PASTEDVALUE"]] {
        let shown = ModuleArgs::parse(args).expect_err("refused").to_string();
        assert!(!shown.contains("PASTED"), "{args:?} -> {shown}");
    }
}

use crate::test_support::{private_dir, write_file as write_private};

#[test]
fn a_file_holding_a_secret_must_not_be_readable_by_others() {
    let dir = private_dir();
    let path = write_private(dir.path(), "c.toml", MINIMAL, 0o644);
    assert!(Config::load(&path).expect_err("refused").problem.contains("0644"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    assert!(Config::load(&path).is_ok());
}

#[test]
fn a_file_without_secrets_may_be_world_readable_and_its_key_file_may_not() {
    let dir = private_dir();
    let key = write_private(dir.path(), "api_key", "filekey\n", 0o600);
    let text = format!("[api]\napi_key_file = \"{}\"\n", key.display());
    let path = write_private(dir.path(), "c.toml", &text, 0o644);
    let config = Config::load(&path).expect("config");
    assert_eq!(config.api.api_key.expose(), "filekey");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    assert!(Config::load(&path).expect_err("refused").problem.contains("API key"));
}

const VERIFY: &str = "[api]\nbackend = \"verify\"\n[verify]\nservice_sid = \"VA0123456789abcdef0123456789abcdef\"\napi_key_sid = \"SK0123456789abcdef0123456789abcdef\"\napi_key_secret = \"s3cret\"\n";

#[test]
fn the_documented_verify_example_parses() {
    let text = format!(
        "{VERIFY}[users]\nalice = {{ verify_identity = \"2f0c9a3e5b7d4e61a8c0f1e2d3c4b5a6\", totp_factor = \"YF0123456789abcdef0123456789abcdef\" }}\n\
         bob = {{ verify_identity = \"6b1d0c9a-3e5b\", phone = \"+15551234567\", push_factor = \"YFfedcba9876543210fedcba9876543210\", offline_secret = \"JBSWY3DPEHPK3PXP\" }}\n"
    );
    let config = parse(&text).expect("config");
    assert_eq!(config.api.backend, Backend::Verify);
    assert_eq!(config.api.url, DEFAULT_VERIFY_URL);
    let verify = config.verify.as_ref().expect("[verify]");
    assert_eq!(verify.service_sid.as_str(), "VA0123456789abcdef0123456789abcdef");
    assert_eq!(verify.api_key_secret.expose(), "s3cret");
    let alice = config.user("alice").expect("alice");
    assert_eq!(alice.authy_id, None);
    let alice = alice.verify.as_ref().expect("verify user");
    assert!(alice.totp_factor.is_some() && alice.phone.is_none() && alice.push_factor.is_none());
    let bob = config.user("bob").expect("bob");
    assert!(bob.offline_secret.is_some());
    assert_eq!(bob.verify.as_ref().and_then(|v| v.phone.as_ref()).map(Phone::as_str), Some("+15551234567"));
    assert!(parse(MINIMAL).expect("authy").verify.is_none());
    assert_eq!(parse(MINIMAL).expect("authy").api.backend, Backend::Authy);
}

#[test]
fn a_config_moving_from_authy_to_verify_holds_both_mappings_and_each_backend_reads_its_own() {
    let users = "[users]\nalice = { authy_id = 1, verify_identity = \"2f0c9a3e5b7d4e61\", totp_factor = \"YF0123456789abcdef0123456789abcdef\" }\nbob = 2\n";
    let authy = parse(&format!("{}{users}", VERIFY.replace("backend = \"verify\"", "api_key = \"k\""))).expect("authy");
    assert_eq!(authy.api.backend, Backend::Authy);
    assert!(authy.verify.is_some(), "[verify] kept for migrate and check");
    let alice = authy.user("alice").expect("alice");
    assert_eq!(alice.authy_id.map(AuthyId::get), Some(1));
    assert!(alice.verify.is_some());
    assert!(authy.user("bob").expect("bob").verify.is_none());

    let switched = VERIFY.replace("[verify]", "api_key = \"k\"\n[verify]");
    let verify = parse(&format!("{switched}{}", users.replace("bob = 2\n", ""))).expect("verify");
    assert_eq!(verify.api.backend, Backend::Verify);
    let alice = verify.user("alice").expect("alice");
    assert!(alice.authy_id.is_none(), "no login under verify reads the Authy ID");
    assert!(alice.verify.is_some());
    assert!(problem(&format!("{switched}{users}")).contains("an Authy ID needs backend = \"authy\""));
}

#[test]
fn each_verify_misuse_is_refused_with_a_precise_message() {
    let user = |fields: &str| format!("{VERIFY}[users]\nalice = {{ {fields} }}\n");
    let identity = "verify_identity = \"2f0c9a3e5b7d4e61\"";
    let cases = [
        (
            "[api]\napi_key = \"k\"\n[verify]\nservice_sid = \"VA0123456789abcdef0123456789abcdef\"\n".to_owned(),
            "[verify] needs api_key_sid",
        ),
        (format!("{VERIFY}api_key = \"k\"\n"), "line 7: unknown key"),
        (VERIFY.replace("[verify]", "api_key = \"k k\"\n[verify]"), "[api] api key must be"),
        (VERIFY.replace("VA0123", "VX0123"), "service_sid must be VA"),
        (VERIFY.replace("SK0123", "YF0123"), "api_key_sid must be SK"),
        (VERIFY.replace("abcdef\"\napi_key_secret", "ABCDEF\"\napi_key_secret"), "api_key_sid must be SK"),
        (VERIFY.replace("api_key_secret = \"s3cret\"\n", ""), "needs api_key_secret or api_key_secret_file"),
        (format!("{VERIFY}api_key_secret_file = \"/k\"\n"), "both api_key_secret and api_key_secret_file"),
        (VERIFY.replace("\"s3cret\"", "\"s3 cret\""), "[verify] api key secret must be"),
        (VERIFY.replace("\"s3cret\"", "42"), "api_key_secret must be a string"),
        ("[api]\nbackend = \"verify\"\n".to_owned(), "[verify] needs service_sid"),
        ("[api]\nbackend = \"twilio\"\n".to_owned(), "[api] backend: unknown value (expected `authy` or `verify`)"),
        (format!("{VERIFY}[users]\nalice = 42\n"), "an Authy ID needs backend = \"authy\""),
        (user(&format!("{identity}, authy_id = 0, phone = \"+15551234567\"")), "Authy ID must be a positive"),
        (user("totp_factor = \"YF0123456789abcdef0123456789abcdef\""), "missing verify_identity"),
        (user(identity), "needs at least one of totp_factor, phone, push_factor"),
        (user("verify_identity = \"alice@example.com\", phone = \"+15551234567\""), "verify_identity must be 8 to 64"),
        (user("verify_identity = \"../../x/Factors\", phone = \"+15551234567\""), "verify_identity must be 8 to 64"),
        (
            format!("{VERIFY}[users]\nalicealice = {{ verify_identity = \"AliceAlice\", phone = \"+15551234567\" }}\n"),
            "not the user name",
        ),
        (user(&format!("{identity}, phone = \"5551234567\"")), "phone must be an E.164 number"),
        (user(&format!("{identity}, phone = 15551234567")), "phone has the wrong type"),
        (user(&format!("{identity}, totp_factor = \"YC0123456789abcdef0123456789abcdef\"")), "totp_factor must be YF"),
        (user(&format!("{identity}, push_factor = \"YF0123\"")), "push_factor must be YF"),
        (
            user(&format!("{identity}, totp = \"YF0123456789abcdef0123456789abcdef\"")),
            "unknown key (expected authy_id, verify_identity, totp_factor",
        ),
        (
            "[api]\napi_key = \"k\"\n[users]\nalice = { authy_id = 1, phone = \"+15551234567\" }\n".to_owned(),
            "missing verify_identity",
        ),
        (
            "[api]\napi_key = \"k\"\n[users]\nalice = { verify_identity = \"2f0c9a3e5b7d4e61\" }\n".to_owned(),
            "needs at least one of totp_factor, phone, push_factor",
        ),
    ];
    for (text, expected) in cases {
        let problem = problem(&text);
        assert!(problem.contains(expected), "{text:?}: {problem:?} lacks {expected:?}");
        assert!(!problem.contains("s3cret"), "{problem}");
    }
}

#[test]
fn a_verify_secret_in_the_file_or_in_a_readable_file_is_held_to_the_key_rules() {
    let dir = private_dir();
    let path = write_private(dir.path(), "inline.toml", VERIFY, 0o644);
    assert!(Config::load(&path).expect_err("refused").problem.contains("0644"));
    let secret = write_private(dir.path(), "verify_secret", "filesecret\n", 0o600);
    let text =
        VERIFY.replace("api_key_secret = \"s3cret\"", &format!("api_key_secret_file = \"{}\"", secret.display()));
    let path = write_private(dir.path(), "file.toml", &text, 0o644);
    let config = Config::load(&path).expect("config");
    assert_eq!(config.verify.expect("verify").api_key_secret.expose(), "filesecret");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o604)).expect("chmod");
    let problem = Config::load(&path).expect_err("refused").problem;
    assert!(problem.contains("0604") && problem.contains("API key secret"), "{problem}");
}
