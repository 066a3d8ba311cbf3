//! The flags of every subcommand, as `--help` shows them, are exactly the documented set,
//! and the man page (packaging/man/pam-authy.1) names every one of them.

mod common;

use common::run;

const GLOBAL: &[&str] = &["--config", "--help"];

const SUBCOMMANDS: &[(&str, &[&str])] = &[
    ("check", &["--strict-ca", "--no-api", "--json"]),
    ("enroll", &["--email", "--phone", "--country-code", "--json"]),
    ("status", &["--json"]),
    ("remove", &["--json"]),
    ("offline-enroll", &["--png", "--replace", "--show", "--reveal", "--json"]),
    ("test", &["--service", "--confdir", "--rhost", "--tty", "--json"]),
    ("demo", &["--auto", "--module"]),
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
