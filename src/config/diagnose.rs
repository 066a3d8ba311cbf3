//! Every problem of a configuration at once, for `pam-authy check`; the module itself stops
//! at the first (`Config::load`), which is all a login needs to fail closed.
//!
//! No second validator: the very parser the module runs is run again and again on a working
//! copy of the text. Each problem is located on a line (TOML and schema errors carry one; a
//! value's error names its table and key, which are looked up), reported with that line,
//! and the line is blanked so that the next run gets past it; a blanked key takes its
//! default, as if it had never been written. A problem that no line holds (a key that is
//! missing) ends the search, as does a syntax error, since what follows one cannot be read
//! reliably. Blanking keeps every other byte where it was, so later line numbers stay true.

use super::users_d::{self, parse_drop_in};
use super::{Config, ConfigError, MAX_FILE_BYTES};
use crate::secure_fs;
use std::ops::ControlFlow;
use std::path::Path;
use zeroize::Zeroizing;

/// More problems than anyone fixes in one go; the search stops there.
const MAX_PROBLEMS: usize = 50;

impl Config {
    /// Every problem `load` would refuse the configuration for, the main file's and each
    /// drop-in's, in file order; empty when `load` succeeds.
    pub fn diagnose(path: &Path) -> Vec<ConfigError> {
        let mut problems = text_problems(path, |text| Config::parse(path, text).map(drop));
        if !problems.is_empty() {
            return problems;
        }
        let mut config = match Config::load_main(path) {
            Ok(config) => config,
            Err(error) => return vec![error],
        };
        let backend = config.api.backend;
        users_d::walk(path, backend, &mut config.users, &mut |error| {
            let file = error.path.clone();
            let parsed = text_problems(&file, |text| parse_drop_in(&file, text, backend).map(drop));
            if parsed.is_empty() {
                problems.push(error)
            } else {
                problems.extend(parsed)
            }
            ControlFlow::Continue(())
        });
        problems
    }
}

/// Every problem `check` finds in the text of the file at `path`; a file that cannot be
/// read is one problem.
fn text_problems(path: &Path, check: impl Fn(&str) -> Result<(), ConfigError>) -> Vec<ConfigError> {
    let file = match secure_fs::read_file(path, MAX_FILE_BYTES) {
        Ok(file) => file,
        Err(error) => return vec![ConfigError::file(error)],
    };
    match std::str::from_utf8(&file.bytes) {
        Ok(text) => every_problem(text, check),
        Err(_) => vec![ConfigError::new(path, "is not valid UTF-8")],
    }
}

/// Runs `check` on `text` until it passes, blanking each problem's line in between.
pub(super) fn every_problem(text: &str, check: impl Fn(&str) -> Result<(), ConfigError>) -> Vec<ConfigError> {
    let mut text = Zeroizing::new(text.to_owned());
    let mut problems: Vec<ConfigError> = Vec::new();
    while problems.len() < MAX_PROBLEMS {
        let Err(mut error) = check(&text) else { break };
        let syntax = error.problem.ends_with("not valid TOML");
        if syntax && !problems.is_empty() {
            // The blanking broke the syntax (a value over several lines): stop rather than
            // report a problem the admin did not write.
            break;
        }
        let line = line_named(&error.problem).or_else(|| key_line(&text, &error.problem));
        if let Some(line) = line
            && line_named(&error.problem).is_none()
        {
            error.problem = format!("line {line}: {}", error.problem);
        }
        let repeated = problems.last().is_some_and(|last| *last == error);
        if !repeated {
            problems.push(error);
        }
        match line {
            Some(line) if !syntax && !repeated => blank_entry(&mut text, line),
            _ => break,
        }
    }
    problems
}

/// N of a problem that starts with `line N: `.
fn line_named(problem: &str) -> Option<usize> {
    let rest = problem.strip_prefix("line ")?;
    let (number, _) = rest.split_once(": ")?;
    number.parse().ok()
}

/// The line of the key a problem names as `[table] key...`, looked up under that table.
fn key_line(text: &str, problem: &str) -> Option<usize> {
    let (table, rest) = problem.strip_prefix('[')?.split_once("] ")?;
    let key: String = rest.chars().take_while(|c| !c.is_whitespace() && *c != ':').collect();
    if key.is_empty() {
        return None;
    }
    let mut current = String::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(header) = trimmed.strip_prefix('[').and_then(|t| t.split_once(']')).map(|(t, _)| t) {
            current = header.trim().to_owned();
            continue;
        }
        if current != table {
            continue;
        }
        let after = trimmed
            .strip_prefix(key.as_str())
            .or_else(|| trimmed.strip_prefix(&format!("\"{key}\"")))
            .or_else(|| trimmed.strip_prefix(&format!("'{key}'")));
        if after.is_some_and(|after| after.trim_start().starts_with('=')) {
            return Some(index + 1);
        }
    }
    None
}

/// Blanks line `line` (1-based) and, while its brackets stay open, the lines after it: every
/// character but the line breaks becomes a space.
fn blank_entry(text: &mut String, line: usize) {
    let mut depth = 0i32;
    let mut blanked = String::with_capacity(text.len());
    let mut in_entry = false;
    for (index, piece) in text.split_inclusive('\n').enumerate() {
        if index + 1 == line {
            in_entry = true;
        }
        if in_entry {
            depth += bracket_balance(piece);
            blanked.extend(piece.chars().map(|c| if c == '\n' || c == '\r' { c } else { ' ' }));
            if depth <= 0 {
                in_entry = false;
                depth = i32::MIN / 2;
            }
        } else {
            blanked.push_str(piece);
        }
    }
    let old = std::mem::replace(text, blanked);
    drop(Zeroizing::new(old));
}

/// Opening minus closing brackets and braces outside strings.
fn bracket_balance(line: &str) -> i32 {
    let mut balance = 0;
    let mut quote = None;
    let mut escaped = false;
    for c in line.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' => quote = Some(c),
                '#' => break,
                '[' | '{' => balance += 1,
                ']' | '}' => balance -= 1,
                _ => {}
            },
        }
    }
    balance
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{private_dir, write_file};

    fn problems(text: &str) -> Vec<String> {
        every_problem(text, |text| Config::parse(Path::new("/c.toml"), text).map(drop))
            .into_iter()
            .map(|error| error.problem)
            .collect()
    }

    #[test]
    fn every_problem_of_a_file_is_reported_with_its_line() {
        let text = "[api]\napi_key = \"k\"\ntimeout_secs = 0\nbogus = 1\n\n[auth]\nmax_tries = 99\nfailmode = \"open\"\ngroups = [\n  \"ok\",\n  \"bad group\",\n]\n\n[offline]\ndigits = 9\n\n[users]\nalice = 0\nbob = { authy_id = 1, offline_secret = \"short\" }\ncarol = 3\n";
        assert_eq!(
            problems(text),
            [
                "line 4: unknown key (expected one of `backend`, `url`, `api_key`, `api_key_file`, `timeout_secs`, `ca_file`, `proxy`)",
                "line 8: [auth] failmode: unknown value (expected `secure` or `safe`)",
                "line 3: [api] timeout_secs is out of range (1..=120)",
                "line 9: [auth] groups: entry 2 is not a valid group name (empty, white space, control, ':' or '/')",
                "line 7: [auth] max_tries is out of range (1..=10)",
                "line 15: [offline] digits is out of range (6..=8)",
                "line 18: [users] alice: Authy ID must be a positive integer",
                "line 19: [users] bob: offline_secret must be base32 of at least 80 bits",
            ]
        );
    }

    #[test]
    fn a_syntax_error_or_a_missing_key_ends_the_search() {
        assert_eq!(problems("[api]\napi_key = \"k\"\nbogus = 1\n[auth\n"), ["line 4: not valid TOML"]);
        let missing = problems("[api]\ntimeout_secs = 0\n[auth]\nmax_tries = 0\n");
        assert_eq!(missing, ["[api] needs api_key or api_key_file"], "a missing key has no line to blank");
        assert!(problems("[api]\napi_key = \"k\"\n").is_empty());
    }

    #[test]
    fn a_secret_is_never_quoted_and_the_working_copy_keeps_line_numbers() {
        let text = "[api]\napi_key = \"k\"\nurl = \"SECRETVALUE\"\n[users]\nbob = { authy_id = 1, offline_secret = \"SECRETSEED\" }\n\"zz SECRET\" = 1\n";
        let found = problems(text);
        assert_eq!(found.len(), 3, "{found:?}");
        for problem in &found {
            assert!(!problem.contains("SECRET"), "{problem}");
        }
        assert!(found[1].starts_with("line 5: [users] bob"), "{found:?}");
        assert!(found[2].starts_with("[users] holds a name that is not"), "{found:?}");
    }

    #[test]
    fn diagnose_lists_the_problems_of_every_drop_in_and_every_duplicate() {
        let dir = private_dir();
        let key = write_file(dir.path(), "k", "key", 0o600);
        let main = write_file(
            dir.path(),
            "pam_authy.toml",
            &format!("[api]\napi_key_file = \"{}\"\n[users]\nalice = 1\n", key.display()),
            0o644,
        );
        let users_d = dir.path().join(users_d::USERS_DIR);
        std::fs::create_dir(&users_d).expect("mkdir");
        write_file(&users_d, "10-a.toml", "[users]\nbob = 0\ncarol = 2\ndave = -1\n", 0o644);
        write_file(&users_d, "20-b.toml", "[users]\nalice = 5\nerin = 6\ncarol = 7\n", 0o644);
        write_file(&users_d, "30-c.toml", "[users]\nfrank = 8\n", 0o664);
        let shown: Vec<String> = Config::diagnose(&main).iter().map(ToString::to_string).collect();
        let a = users_d.join("10-a.toml").display().to_string();
        let b = users_d.join("20-b.toml").display().to_string();
        let c = users_d.join("30-c.toml").display().to_string();
        assert_eq!(shown.len(), 4, "{shown:#?}");
        assert_eq!(shown[0], format!("{a}: line 2: [users] bob: Authy ID must be a positive integer"));
        assert_eq!(shown[1], format!("{a}: line 4: [users] dave: Authy ID must be a positive integer"));
        assert!(shown[2].starts_with(&format!("{b}: [users] alice is already defined in {}", main.display())));
        assert!(shown[3].starts_with(&c) && shown[3].contains("writable by group or other"), "{shown:#?}");
        assert_eq!(Config::load(&main).expect_err("refused").to_string(), shown[0].replace("line 2: ", ""));
    }
}
