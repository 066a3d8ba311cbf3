//! The flags of every subcommand, as `--help` shows them, are exactly the documented set,
//! and the man page (packaging/man/pam-authy.1) names every one of them.

mod common;

use common::run;

const GLOBAL: &[&str] = &["--config", "--help"];

const SUBCOMMANDS: &[(&str, &[&str])] = &[
    ("check", &["--strict-ca", "--no-api", "--json"]),
    ("enroll", &["--email", "--phone", "--country-code", "--png", "--print", "--drop-in", "--json"]),
    ("status", &["--json"]),
    ("remove", &["--keep-remote", "--json"]),
    ("migrate", &["--all", "--apply", "--secrets-from", "--json"]),
    ("offline-enroll", &["--png", "--replace", "--show", "--reveal", "--json"]),
    ("test", &["--service", "--confdir", "--rhost", "--tty", "--json"]),
    ("demo", &["--auto", "--module", "--backend"]),
];

/// The long flags listed in the options part of a `--help` text.
fn flags_in_help(help: &str) -> Vec<String> {
    let mut flags: Vec<String> = help
        .lines()
        .filter_map(|line| {
            let line = line.trim_start();
            let line = line.strip_prefix("-h, ").or_else(|| line.strip_prefix("-V, ")).unwrap_or(line);
            line.starts_with("--").then(|| line.split([' ', '=']).next().unwrap_or("").to_owned())
        })
        .collect();
    flags.sort();
    flags
}

fn help_of(subcommand: &str) -> String {
    let run = run(&[subcommand, "--help"]);
    assert!(run.ok(), "{}", run.all());
    run.stdout
}

#[test]
fn every_subcommand_offers_exactly_the_documented_flags() {
    for (subcommand, flags) in SUBCOMMANDS {
        let mut expected: Vec<String> = flags.iter().chain(GLOBAL).map(|f| f.to_string()).collect();
        expected.sort();
        assert_eq!(flags_in_help(&help_of(subcommand)), expected, "pam-authy {subcommand} --help");
    }
}

#[test]
fn the_top_level_help_lists_every_subcommand() {
    let run = run(&["--help"]);
    for (subcommand, _) in SUBCOMMANDS {
        assert!(run.stdout.contains(&format!("  {subcommand} ")), "{subcommand} missing: {}", run.stdout);
    }
    assert!(run.stdout.contains("  sandbox "));
}

#[test]
fn the_man_page_names_every_subcommand_and_flag() {
    let page = concat!(env!("CARGO_MANIFEST_DIR"), "/../packaging/man/pam-authy.1");
    let Ok(roff) = std::fs::read_to_string(page) else {
        eprintln!("{page} is not written yet: nothing to compare");
        return;
    };
    let text = roff.replace("\\-", "-").replace("\\fB", "").replace("\\fI", "").replace("\\fR", "").replace("\\fP", "");
    for (subcommand, flags) in SUBCOMMANDS {
        assert!(text.contains(subcommand), "the man page lacks {subcommand}");
        for flag in flags.iter().chain(&["--config"]) {
            assert!(text.contains(flag), "the man page lacks {flag} of {subcommand}");
        }
    }
}

#[test]
fn json_works_before_the_subcommand_as_the_man_page_shows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.toml");
    let missing = missing.to_str().expect("utf-8");
    for args in
        [["--json", "--config", missing, "check", "--no-api"], ["--config", missing, "check", "--no-api", "--json"]]
    {
        let run = run(&args);
        assert_eq!(run.code, Some(1), "{args:?}: {}", run.all());
        let report: serde_json::Value = serde_json::from_str(run.stdout.trim()).expect("one JSON object");
        assert_eq!(report["ok"], false, "{args:?}");
    }
}

#[test]
fn config_is_refused_by_the_commands_that_never_read_it() {
    for args in [
        &["--config", "/etc/pam_authy/other.toml", "test", "root"][..],
        &["test", "root", "--config", "/etc/pam_authy/other.toml"],
        &["--config", "/etc/pam_authy/other.toml", "demo"],
        &["--config", "/etc/pam_authy/other.toml", "sandbox"],
        &["--json", "demo"],
        &["--json", "sandbox"],
    ] {
        let run = run(args);
        assert_eq!(run.code, Some(2), "{args:?}: a usage error: {}", run.all());
        assert!(run.stderr.contains("does not apply to"), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn sandbox_help_shows_the_sandboxs_own_flags() {
    let run = run(&["sandbox", "--help"]);
    assert!(run.ok(), "{}", run.all());
    for flag in ["--listen", "--control", "--tls-dir", "--api-key"] {
        assert!(run.all().contains(flag), "{flag} missing: {}", run.all());
    }
}
