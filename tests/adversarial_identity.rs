//! Class 6 of the adversarial suite: identity confusion.
//!
//! A login name that differs from a mapped account by case, white space or a numeric id
//! must not slip past the mapping as "unmapped" (and so PAM_IGNORE under
//! `unmapped_users = "ignore"`); TOML keys with `=`, `.` or quotes map exactly the name
//! they spell or are refused; Authy IDs are positive 64-bit integers or a config error.

#![allow(clippy::disallowed_methods)]

mod common;

use common::*;
use pam_authy::config::Config;
use pam_authy::users::{Account, AccountDb, LookupError, Subject, resolve};
use pam_harness::{PAM_SUCCESS, PAM_USER_UNKNOWN};
use std::cell::RefCell;
use std::path::Path;

fn parse(text: &str) -> Result<Config, String> {
    Config::parse(Path::new("/etc/pam_authy/pam_authy.toml"), text).map_err(|e| e.to_string())
}

fn with_users(users: &str) -> String {
    format!("[api]\napi_key = \"k\"\n[auth]\nunmapped_users = \"ignore\"\n[users]\n{users}\n")
}

/// Through the module: names that are not exactly an account are unknown, never exempt,
/// although the config exempts unmapped users and maps the real account.
#[test]
fn login_names_that_only_resemble_a_mapped_account_are_unknown_never_ignored() {
    let (sandbox, id) = sandbox();
    let dir = TestDir::new();
    let user = current_user();
    dir.write_config(&config_for(&dir, &sandbox, &format!("\"{user}\" = {id}"), "[auth]\nunmapped_users = \"ignore\""));
    dir.service("svc", "");
    dir.ignore_probe_service("probe");
    let uid = nix::unistd::geteuid().as_raw().to_string();
    let upper = user.to_uppercase();
    let capital = format!("{}{}", user[..1].to_uppercase(), &user[1..]);
    let names = [
        upper.as_str(),
        capital.as_str(),
        &format!("{user} "),
        &format!(" {user}"),
        &format!("{user}\t"),
        &format!("{user}\n"),
        &format!("{user}\r"),
        &format!("{user}\u{200b}"),
        &format!("{user}:x"),
        &format!("{user}/"),
        &format!("../{user}"),
        &format!("{user}="),
        uid.as_str(),
        "+0",
        "-1",
    ];
    for name in names {
        let result = dir.authenticate("svc", name, &mut answers(&[]));
        assert_eq!(result.code, PAM_USER_UNKNOWN, "{name:?}: {} {}", result.name(), result.text());
        let probe = dir.authenticate("probe", name, &mut answers(&[]));
        assert_ne!(probe.code, PAM_SUCCESS, "{name:?} was exempted (PAM_IGNORE)");
    }
    assert!(sandbox.requests().is_empty(), "{:?}", sandbox.requests());
}

/// An account database that, like a case-insensitive directory, answers for any spelling
/// with the canonical name, and records what it was asked.
struct CaseInsensitiveDb {
    asked: RefCell<Vec<String>>,
}

impl AccountDb for CaseInsensitiveDb {
    fn account(&self, name: &str) -> Result<Option<Account>, LookupError> {
        self.asked.borrow_mut().push(name.to_owned());
        Ok(["alice", "bob"]
            .into_iter()
            .find(|known| known.eq_ignore_ascii_case(name))
            .map(|known| Account { name: known.to_owned(), gid: 100 }))
    }
    fn group_id(&self, _: &str) -> Result<Option<u32>, LookupError> {
        Ok(None)
    }
    fn group_ids(&self, _: &Account) -> Result<Vec<u32>, LookupError> {
        Ok(vec![100])
    }
}

#[test]
fn a_name_spelled_differently_maps_through_its_canonical_account() {
    let config = parse(&with_users("alice = 42")).expect("config");
    let db = CaseInsensitiveDb { asked: RefCell::new(Vec::new()) };
    for spelling in ["alice", "ALICE", "Alice", "aLiCe"] {
        match resolve(&config, &db, spelling) {
            Ok(Subject::Mapped { account, entry }) => {
                assert_eq!(account, "alice", "{spelling}");
                assert_eq!(entry.authy_id.map(|id| id.get()), Some(42), "{spelling}");
            }
            other => panic!("{spelling:?} must map to alice, got {other:?}"),
        }
    }
    assert!(matches!(resolve(&config, &db, "BOB"), Ok(Subject::UnmappedIgnored { account }) if account == "bob"));
    // Names no passwd entry can hold are refused before the directory is even asked.
    db.asked.borrow_mut().clear();
    for odd in [" alice", "alice ", "alice\t", "al ice", "alice\n", "alice:x", "a/b", ""] {
        assert_eq!(resolve(&config, &db, odd), Ok(Subject::NoSuchAccount), "{odd:?}");
    }
    assert!(db.asked.borrow().is_empty(), "{:?}", db.asked.borrow());
}

#[test]
fn toml_keys_map_exactly_the_name_they_spell() {
    let config = parse(&with_users(
        "\"alice.smith\" = 1\n\"a=b\" = 2\n\"o'brien\" = 3\n\"q\\\"uote\" = 4\n\"1000\" = 5\n\"ALICE\" = 6\n'literal\\n' = 7\n",
    ))
    .expect("config");
    let names: Vec<&str> = config.users.keys().map(String::as_str).collect();
    assert_eq!(names, ["1000", "ALICE", "a=b", "alice.smith", "literal\\n", "o'brien", "q\"uote"]);
    assert!(config.user("alice").is_none());
    assert!(config.user("alice.smith").is_some_and(|u| u.authy_id.map(|id| id.get()) == Some(1)));
    assert!(config.user("literal\n").is_none(), "a literal string keeps its backslash");
}

#[test]
fn keys_that_nest_collide_or_hide_characters_are_refused() {
    let cases = [
        ("alice.smith = 1", "a bare dotted key is a table for alice, not a user alice.smith"),
        ("alice = 1\n\"alice\" = 2", "the same key quoted"),
        ("alice = 1\n'alice' = 2", "the same key as a literal string"),
        ("root = 1\n\"r\\u006Fot\" = 2", "the same key through an escape"),
        ("alice = 1\n[users.alice]\nauthy_id = 2", "a key and a table of the same name"),
        ("\"\" = 1", "an empty name"),
        ("\"alice \" = 1", "a trailing space"),
        ("\" alice\" = 1", "a leading space"),
        ("\"ali\\tce\" = 1", "a tab"),
        ("\"alice\\u0000\" = 1", "a NUL"),
        ("\"alice\\u001b[2J\" = 1", "an escape sequence"),
        ("\"alice\\u2028\" = 1", "a line separator"),
        ("\"alice:x\" = 1", "a colon"),
        ("\"../alice\" = 1", "a slash"),
    ];
    for (users, why) in cases {
        assert!(parse(&with_users(users)).is_err(), "{why}: {users:?} was accepted");
    }
}

#[test]
fn authy_ids_are_positive_integers_or_a_config_error() {
    for id in [
        "0",
        "-1",
        "-9223372036854775808",
        "9223372036854775808",
        "18446744073709551616",
        "99999999999999999999999",
        "1.0",
        "1e3",
        "\"123\"",
        "true",
        "[1]",
        "{}",
        "nan",
        "inf",
        "1979-05-27",
    ] {
        assert!(parse(&with_users(&format!("alice = {id}"))).is_err(), "alice = {id} was accepted");
        let table = format!("alice = {{ authy_id = {id} }}");
        assert!(parse(&with_users(&table)).is_err(), "{table} was accepted");
    }
    for (id, value) in [("1", 1), ("+7", 7), ("1_000", 1000), ("0x10", 16), ("9223372036854775807", i64::MAX as u64)] {
        let config = parse(&with_users(&format!("alice = {id}"))).expect(id);
        assert_eq!(config.user("alice").and_then(|u| u.authy_id).map(|id| id.get()), Some(value), "{id}");
    }
}
