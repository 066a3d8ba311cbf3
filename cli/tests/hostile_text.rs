//! Text from outside (here the names in a server certificate, quoted by the TLS error) never
//! reaches the admin's terminal or the JSON output with escape sequences, line breaks or
//! invisible characters, whichever subcommand reports it.

mod common;

use authy_sandbox::tls::{TestCa, Validity};
use authy_sandbox::{Sandbox, SandboxConfig};
use common::{API_KEY, PHONE, TestDir};

/// SAN names that would clear the screen, retitle the terminal, ring the bell and start a
/// new line if printed raw.
const HOSTILE_NAMES: [&str; 2] = ["\u{1b}]0;pwned\u{7}evil.example\u{1b}[2J", "line\nbreak.example"];

/// A sandbox presenting a certificate from a trusted CA whose names are `HOSTILE_NAMES`.
fn sandbox_with_hostile_names(dir: &TestDir) -> Sandbox {
    let ca = TestCa::generate("hostile-text test CA").expect("ca");
    let leaf = ca.issue(&HOSTILE_NAMES, Validity::Current).expect("leaf");
    let tls_dir = dir.path().join("tls");
    std::fs::create_dir(&tls_dir).expect("tls dir");
    std::fs::write(tls_dir.join("ca.pem"), ca.cert_pem()).expect("ca.pem");
    std::fs::write(tls_dir.join("server.pem"), &leaf.cert_pem).expect("server.pem");
    std::fs::write(tls_dir.join("server.key"), &leaf.key_pem).expect("server.key");
    Sandbox::start(SandboxConfig { api_key: API_KEY.into(), tls_dir: Some(tls_dir), ..SandboxConfig::default() })
        .expect("sandbox")
}

fn assert_clean(what: &str, output: &str) {
    let bad: Vec<char> = output.chars().filter(|c| c.is_control() && *c != '\n').collect();
    assert!(bad.is_empty(), "{what}: control characters {bad:?} in {output:?}");
}

#[test]
fn certificate_names_in_tls_errors_reach_no_output_raw() {
    let dir = TestDir::new();
    let sandbox = sandbox_with_hostile_names(&dir);
    let ca = dir.path().join("tls/ca.pem");
    dir.write_config(&format!(
        "[api]\nurl = \"{}\"\napi_key = \"{API_KEY}\"\nca_file = \"{}\"\ntimeout_secs = 5\n\n[users]\nalice = 1234567\n",
        sandbox.url(),
        ca.display()
    ));
    let enroll: &[&str] = &["bob", "--email", "b@example.org", "--phone", PHONE, "--country-code", "1"];
    for (subcommand, args) in
        [("check", &[][..]), ("status", &["alice"][..]), ("remove", &["alice"][..]), ("enroll", enroll)]
    {
        for json in [false, true] {
            let mut all = args.to_vec();
            if json {
                all.push("--json");
            }
            let run = dir.cli(subcommand, &all);
            let what = format!("{subcommand} {all:?}");
            assert_eq!(run.code, Some(1), "{what}: {}", run.all());
            assert!(run.all().contains("evil.example"), "{what}: the names are still shown: {}", run.all());
            assert_clean(&what, &run.stdout);
            assert_clean(&what, &run.stderr);
            let reasons = run.error_lines().len();
            assert!(reasons == 1 || (json && reasons == 0), "{what}: one reason line: {:?}", run.stderr);
            if json {
                let text = run.json().to_string();
                assert!(!text.contains("\\u001b") && !text.contains("\\n"), "{what}: {text}");
            }
        }
    }
}
