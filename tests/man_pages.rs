//! The man pages and the shipped default configuration document everything the code accepts.
//!
//! The config keys, the words they take and the module arguments come from the parser itself
//! (`config::keys::accepted_keys`, `ModuleArgs::ARGUMENTS`), so a key added later without
//! documentation fails here. The CLI options are read from the
//! built `pam-authy` (`<command> --help`); that check is skipped, saying so, when the binary
//! has not been built. Nothing here touches the system.

use pam_authy::config::keys::{accepted_keys, words_of};
use pam_authy::config::{Config, Method, ModuleArgs};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_file(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Roff source reduced to what a reader sees: escaped hyphens, quotes and font changes.
fn plain(roff: &str) -> String {
    let mut text = roff.to_owned();
    for (from, to) in [
        ("\\-", "-"),
        ("\\(dq", "\""),
        ("\\(lq", "\""),
        ("\\(rq", "\""),
        ("\\fB", ""),
        ("\\fI", ""),
        ("\\fR", ""),
        ("\\fP", ""),
        ("\\%", ""),
        ("\\e", "\\"),
    ] {
        text = text.replace(from, to);
    }
    text
}

/// Every table of the config file with the keys the parser accepts in it.
struct Schema {
    /// table -> [(key, enum values when the key takes one of the config's enums)]
    tables: BTreeMap<String, Vec<(String, Vec<String>)>>,
}

fn schema() -> Schema {
    let mut tables: BTreeMap<String, Vec<(String, Vec<String>)>> = BTreeMap::new();
    for key in accepted_keys() {
        let values = key.values.iter().map(|v| v.to_string()).collect();
        tables.entry(key.table.to_owned()).or_default().push((key.name.to_owned(), values));
    }
    Schema { tables }
}

#[test]
fn the_schema_has_the_keys_it_must() {
    let schema = schema();
    let names: Vec<&str> = schema.tables.keys().map(String::as_str).collect();
    assert_eq!(names, ["api", "auth", "offline", "users", "verify"]);
    let has = |table: &str, key: &str| schema.tables[table].iter().any(|(k, _)| k == key);
    for (table, key) in [
        ("api", "api_key"),
        ("auth", "failmode"),
        ("offline", "state_dir"),
        ("users", "authy_id"),
        ("users", "verify_identity"),
        ("verify", "service_sid"),
    ] {
        assert!(has(table, key), "[{table}] {key} not listed");
    }
}

/// The text of `.SS "[table]"` up to the next section or subsection.
fn man_subsection(page: &str, table: &str) -> String {
    let heading = format!(".SS \"[{table}]\"");
    let start = page.find(&heading).unwrap_or_else(|| panic!("pam_authy.toml(5) has no {heading}"));
    let rest = &page[start + heading.len()..];
    let end = [rest.find("\n.SS"), rest.find("\n.SH")].into_iter().flatten().min().unwrap_or(rest.len());
    rest[..end].to_owned()
}

/// The `.TP` entry whose term line starts with `key =`: the term and its paragraph.
fn man_entry(subsection: &str, key: &str) -> Option<String> {
    let plain = plain(subsection);
    let lines: Vec<&str> = plain.lines().collect();
    let term = format!("{key} =");
    let at = lines.windows(2).position(|w| w[0] == ".TP" && w[1].starts_with(&term))?;
    let entry: Vec<&str> = lines[at + 1..].iter().take_while(|l| **l != ".TP").copied().collect();
    Some(entry.join("\n"))
}

#[test]
fn every_config_key_has_an_entry_with_its_default_and_values_in_pam_authy_toml_5() {
    let page = repo_file("packaging/man/pam_authy.toml.5");
    for (table, keys) in schema().tables {
        let subsection = man_subsection(&page, &table);
        for (key, values) in keys {
            let entry = man_entry(&subsection, &key)
                .unwrap_or_else(|| panic!("pam_authy.toml(5) [{table}] has no `.TP` entry `{key} = ...`"));
            if table != "users" {
                assert!(
                    entry.to_lowercase().contains("default"),
                    "pam_authy.toml(5) [{table}] {key}: the entry does not give its default"
                );
            }
            for value in values {
                assert!(
                    entry.contains(&format!("\"{value}\"")),
                    "pam_authy.toml(5) [{table}] {key}: value \"{value}\" is not documented"
                );
            }
        }
    }
}

/// The lines of `[table]` in the default config, up to the next table header.
fn config_section(config: &str, table: &str) -> Vec<String> {
    let header = format!("[{table}]");
    let mut lines = config.lines().skip_while(|l| l.trim() != header);
    assert!(lines.next().is_some(), "the default config has no {header} header");
    lines.take_while(|l| !l.starts_with('[')).map(str::to_owned).collect()
}

fn default_config() -> String {
    repo_file("packaging/pam_authy.toml")
}

#[test]
fn every_config_key_is_in_the_default_config_commented_out_with_its_meaning() {
    let config = default_config();
    for (table, keys) in schema().tables {
        let section = config_section(&config, &table);
        for (key, values) in keys {
            if table == "users" {
                assert!(
                    section.iter().any(|l| l.starts_with('#') && l.contains(key.as_str())),
                    "the default config's [users] comments do not show {key}"
                );
                continue;
            }
            let at = section
                .iter()
                .position(|l| l.starts_with(&format!("#{key} = ")))
                .unwrap_or_else(|| panic!("the default config has no `#{key} = ...` in [{table}]"));
            assert!(
                at > 0 && section[at - 1].starts_with("# "),
                "the default config's [{table}] {key} has no comment saying what it means"
            );
            let comment: String =
                section[..at].iter().rev().take_while(|l| l.starts_with("# ")).map(String::as_str).collect();
            for value in values {
                assert!(
                    comment.contains(&format!("\"{value}\"")),
                    "the default config's [{table}] {key}: value \"{value}\" is not explained"
                );
            }
        }
    }
}

fn parse(text: &str) -> Result<Config, String> {
    Config::parse(Path::new("/etc/pam_authy/pam_authy.toml"), text).map_err(|e| e.to_string())
}

#[test]
fn the_default_config_fails_closed_and_says_what_to_fill_in() {
    let message = parse(&default_config()).expect_err("the shipped config must be refused");
    assert!(
        message.contains("api_key") && message.contains("api_key_file"),
        "the refusal does not say what to fill in: {message}"
    );
}

/// Keys shown with an example value rather than their default (they have none).
const EXAMPLE_ONLY: [&str; 8] = [
    "api_key",
    "api_key_file",
    "ca_file",
    "proxy",
    "service_sid",
    "api_key_sid",
    "api_key_secret",
    "api_key_secret_file",
];
/// The `[verify]` keys: shown as examples, read only with `backend = "verify"`.
const VERIFY_KEYS: [&str; 4] = ["service_sid", "api_key_sid", "api_key_secret", "api_key_secret_file"];
/// The example users under `[users]`.
const USERS_EXAMPLES: [&str; 2] = ["alice", "bob"];

fn uncommented(config: &str, keep: impl Fn(&str) -> bool) -> String {
    config
        .lines()
        .map(|line| match line.strip_prefix('#') {
            Some(rest) if rest.contains(" = ") && !rest.starts_with(' ') && keep(rest) => rest,
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn with_api_key(config: &str) -> String {
    config.replacen("[api]\n", "[api]\napi_key = \"k\"\n", 1)
}

#[test]
fn the_defaults_shown_in_the_default_config_are_the_parsers_defaults() {
    let config = default_config();
    let is_default_line = |line: &str| {
        let key = line.split(" = ").next().unwrap_or("");
        !EXAMPLE_ONLY.contains(&key) && !USERS_EXAMPLES.contains(&key)
    };
    let all_defaults = with_api_key(&uncommented(&config, is_default_line));
    let implicit = with_api_key(&config);
    let written = parse(&all_defaults).expect("the default values parse");
    let omitted = parse(&implicit).expect("an api_key is all the shipped config lacks");
    assert_eq!(
        format!("{written:?}"),
        format!("{omitted:?}"),
        "a value shown as the default in packaging/pam_authy.toml is not the parser's default"
    );
}

#[test]
fn each_example_value_in_the_default_config_is_accepted_or_names_its_missing_file() {
    let config = default_config();
    for key in EXAMPLE_ONLY {
        let text = if VERIFY_KEYS.contains(&key) {
            // The other required [verify] keys, and a secret unless the key is one.
            let needed = |line: &str| {
                line.starts_with(&format!("{key} = "))
                    || line.starts_with("service_sid = ")
                    || line.starts_with("api_key_sid = ")
                    || (!key.starts_with("api_key_secret") && line.starts_with("api_key_secret = "))
            };
            uncommented(&config, needed).replacen("#backend = \"authy\"", "backend = \"verify\"", 1)
        } else {
            let one = uncommented(&config, |line| line.starts_with(&format!("{key} = ")));
            if key == "api_key" || key == "api_key_file" { one } else { with_api_key(&one) }
        };
        match parse(&text) {
            Ok(_) => {}
            Err(message) => {
                let line = text.lines().find(|l| l.starts_with(&format!("{key} = "))).expect("uncommented");
                let path = line.split('"').nth(1).expect("a quoted path");
                // secure_fs names the first missing component, which may be a parent.
                let names_it = Path::new(path)
                    .ancestors()
                    .filter(|p| p.parent().is_some())
                    .any(|p| message.contains(&p.display().to_string()));
                assert!(names_it, "{key}: the example is refused for another reason than a missing file: {message}");
            }
        }
    }
}

#[test]
fn the_users_examples_in_the_default_config_parse() {
    let config = uncommented(&default_config(), |line| {
        USERS_EXAMPLES.iter().any(|user| line.starts_with(&format!("{user} = ")))
    });
    let parsed = parse(&with_api_key(&config)).expect("the [users] examples parse");
    assert_eq!(parsed.users.len(), 2);
}

#[test]
fn every_module_argument_and_method_is_in_pam_authy_8() {
    let arguments = ModuleArgs::ARGUMENTS;
    let page = plain(&repo_file("packaging/man/pam_authy.8"));
    let synopsis = page.split(".SH DESCRIPTION").next().unwrap_or("");
    let options = page.split(".SH OPTIONS").nth(1).expect("an OPTIONS section");
    let options: Vec<&str> = options.split("\n.SH").next().unwrap_or(options).lines().collect();
    for argument in arguments {
        // A term line is a font macro and the argument: `.BI config= PATH`, `.B debug`.
        let term = options
            .windows(2)
            .find(|w| {
                let token = w[1].split_whitespace().nth(1).unwrap_or("");
                let names_it = if argument.ends_with('=') { token.starts_with(argument) } else { token == argument };
                w[0] == ".TP" && names_it
            })
            .map(|w| w[1]);
        assert!(
            term.is_some() && synopsis.contains(argument),
            "pam_authy(8) does not document the module argument {argument} in SYNOPSIS and OPTIONS"
        );
        if argument == "method=" {
            for method in words_of::<Method>() {
                assert!(
                    term.is_some_and(|t| t.contains(method)) && synopsis.contains(method),
                    "pam_authy(8) method= lacks {method}"
                );
            }
        }
    }
}

/// The built `pam-authy` next to this test's directory (target/<profile>/pam-authy).
fn built_cli() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    let cli = profile_dir.join("pam-authy");
    cli.is_file().then_some(cli)
}

fn help_text(cli: &Path, args: &[&str]) -> String {
    let output = Command::new(cli).args(args).output().unwrap_or_else(|e| panic!("{} {args:?}: {e}", cli.display()));
    assert!(output.status.success(), "{} {args:?} exited with {}", cli.display(), output.status);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every `--long-option` in `text`.
fn long_options(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for piece in text.split("--").skip(1) {
        let name: String =
            piece.chars().take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-').collect();
        let name = name.trim_end_matches('-');
        if name.starts_with(|c: char| c.is_ascii_lowercase()) {
            let option = format!("--{name}");
            if !found.contains(&option) {
                found.push(option);
            }
        }
    }
    found
}

/// The command names listed under `Commands:` in the top-level help.
fn commands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_cli_command_and_long_option_is_in_pam_authy_1() {
    // A test that cannot run fails rather than passing: `scripts/test-all` builds it first.
    let cli = built_cli().expect("pam-authy is not built next to this test: run `cargo build -p pam-authy-cli`");
    let page = plain(&repo_file("packaging/man/pam-authy.1"));
    let documented = |option: &str| {
        page.match_indices(option)
            .any(|(at, _)| !page[at + option.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-'))
    };
    let top = help_text(&cli, &["--help"]);
    let commands = commands(&top);
    assert!(commands.len() >= 2, "no commands found in `pam-authy --help`:\n{top}");
    let mut missing = Vec::new();
    for option in long_options(&top) {
        if !documented(&option) {
            missing.push(format!("pam-authy {option}"));
        }
    }
    for command in &commands {
        if !page.contains(&format!(".SS \"{command}")) {
            missing.push(format!("pam-authy {command} (no .SS heading)"));
        }
        let mut texts = vec![help_text(&cli, &[command, "--help"])];
        if command == "sandbox" {
            // The sandbox's own options pass through clap; it prints them itself.
            texts.push(help_text(&cli, &[command, "--", "--help"]));
        }
        for option in texts.iter().flat_map(|t| long_options(t)) {
            if !documented(&option) {
                missing.push(format!("pam-authy {command} {option}"));
            }
        }
    }
    assert!(missing.is_empty(), "not documented in packaging/man/pam-authy.1: {missing:?}");
}
