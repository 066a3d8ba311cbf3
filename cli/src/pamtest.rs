//! `pam-authy test`: one real `pam_authenticate` through libpam with a PAM stack, answered
//! on the terminal, so an admin can try a stack before logging out.
//!
//! The stack is the system's /etc/pam.d/SERVICE, or SERVICE in `--confdir` (through
//! `pam_start_confdir`, so nothing under /etc is touched). Prompts are read from the terminal
//! with echo off for secrets, or from stdin when it is not a terminal. A spinner runs while
//! the stack works between prompts (a push waiting for approval, a slow API). Only
//! PAM_SUCCESS is success.

use crate::progress::Spinner;
use crate::support::{self, Exit, Outcome};
use pam_authy::config::{Config, ModuleArgs};
use pam_authy::users::{self, Subject, SystemAccounts};
use pam_harness::{Items, Message, Reply};
use serde_json::json;
use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

pub const DEFAULT_SERVICE: &str = "sshd";
const SYSTEM_PAM_DIR: &str = "/etc/pam.d";
const MAX_INCLUDE_DEPTH: usize = 8;
/// The module as installed, and as `cargo build` names it.
const MODULE_FILE_NAMES: &[&str] = &["pam_authy.so", "libpam_authy.so"];

pub struct TestArgs {
    pub user: String,
    pub service: String,
    pub confdir: Option<PathBuf>,
    pub rhost: Option<String>,
    pub tty: Option<String>,
    pub json: bool,
}

pub fn run(args: &TestArgs) -> Outcome {
    support::check_user_name(&args.user)?;
    if args.service.is_empty() || args.service.contains('/') || args.service.starts_with('.') {
        return Err(format!("--service {:?} is not a PAM service name", args.service).into());
    }
    if args.confdir.is_some() && !pam_harness::confdir_supported() {
        return Err(pam_harness::NO_CONFDIR.into());
    }
    let dir = args.confdir.clone().unwrap_or_else(|| PathBuf::from(SYSTEM_PAM_DIR));
    let stack = dir.join(&args.service);
    if !stack.is_file() {
        return Err(format!("{}: no such PAM service file", stack.display()).into());
    }
    let mentions = modules_named(&dir, &args.service, MODULE_FILE_NAMES);
    if mentions.is_empty() {
        support::warn(&format!(
            "{} (with its includes) never loads pam_authy; this tests the stack without it",
            stack.display()
        ));
    }
    if !nix::unistd::geteuid().is_root() {
        support::warn(
            "not running as root: modules that read root-only files (pam_unix, pam_authy) may \
             fail here where sshd or sudo would succeed",
        );
    }
    preflight(&mentions, &args.user);
    eprintln!(
        "Testing the PAM stack {} for {}; answer the prompts as {} would.",
        stack.display(),
        args.user,
        args.user
    );

    let items = Items { rhost: args.rhost.clone(), tty: args.tty.clone(), ruser: None };
    let stdin_is_terminal = std::io::stdin().is_terminal();
    let mut spinner = Some(Spinner::start("waiting for the PAM stack"));
    let mut responder = |message: &Message| -> Reply {
        spinner = None;
        // What the modules of the stack say is text from outside this program; its lines stay.
        let text = message.text.split('\n').map(support::clean).collect::<Vec<_>>().join("\n");
        let shown = Message { style: message.style, text };
        let reply = pam_harness::terminal_responder(&shown);
        if message.style.is_prompt() && !stdin_is_terminal {
            // The answer was not echoed: end the prompt's line.
            eprintln!();
        }
        spinner = Some(Spinner::start("waiting for the PAM stack"));
        reply
    };
    let confdir = args.confdir.as_deref();
    let result = pam_harness::authenticate(confdir, &args.service, &args.user, &items, &mut responder);
    drop(spinner);
    let result = result?;
    let success = result.code == pam_harness::PAM_SUCCESS;
    if args.json {
        support::print_json(&json!({
            "ok": success,
            "service": args.service,
            "stack": stack.display().to_string(),
            "user": args.user,
            "result": result.name(),
            "code": result.code,
        }));
    } else {
        println!("PAM result: {} ({})", result.name(), result.code);
    }
    if success {
        Ok(())
    } else {
        Err(Exit::ReportedWithReason(format!(
            "authentication through {} ended with {}",
            stack.display(),
            result.name()
        )))
    }
}

/// A line of the stack that loads the module, with the arguments after the module path.
#[derive(Debug)]
struct Mention {
    location: String,
    args: Vec<String>,
}

/// Lines of the stack (following `@include`, `include` and `substack`) whose module path has
/// one of the file names in `module`.
fn modules_named(dir: &Path, service: &str, module: &[&str]) -> Vec<Mention> {
    let mut found = Vec::new();
    let mut seen = BTreeSet::new();
    scan(dir, service, module, 0, &mut seen, &mut found);
    found
}

fn scan(dir: &Path, name: &str, module: &[&str], depth: usize, seen: &mut BTreeSet<String>, found: &mut Vec<Mention>) {
    if depth > MAX_INCLUDE_DEPTH || name.contains('/') || !seen.insert(name.to_owned()) {
        return;
    }
    let path = dir.join(name);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    for (index, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["@include", included, ..] => scan(dir, included, module, depth + 1, seen, found),
            [_, "include" | "substack", included, ..] => scan(dir, included, module, depth + 1, seen, found),
            words => {
                if let Some(at) = module_path_index(words)
                    && Path::new(words[at]).file_name().is_some_and(|name| module.iter().any(|m| name == *m))
                {
                    found.push(Mention {
                        location: format!("{}:{}", path.display(), index + 1),
                        args: words[at + 1..].iter().map(|w| (*w).to_owned()).collect(),
                    });
                }
            }
        }
    }
}

/// Where the module path is in `TYPE CONTROL MODULE ARGS...`: CONTROL is one word, or a
/// `[...]` group that may hold spaces.
fn module_path_index(words: &[&str]) -> Option<usize> {
    let control = words.get(1)?;
    let control_end = if control.starts_with('[') { 1 + words[1..].iter().position(|w| w.ends_with(']'))? } else { 1 };
    (control_end + 1 < words.len()).then_some(control_end + 1)
}

/// Says, before anything runs, what each pam_authy line of the stack will do for `user`:
/// the module's own argument parser, config loader and user resolution.
fn preflight(mentions: &[Mention], user: &str) {
    let mut configs = BTreeSet::new();
    for mention in mentions {
        match ModuleArgs::parse(&mention.args) {
            Ok(args) => {
                configs.insert(args.config_path);
            }
            Err(error) => {
                support::warn(&format!("{}: pam_authy will answer PAM_SERVICE_ERR: {error}", mention.location))
            }
        }
    }
    for path in configs {
        let config = match Config::load(&path) {
            Ok(config) => config,
            Err(error) => {
                support::warn(&format!("pam_authy will answer PAM_SERVICE_ERR: {error}"));
                continue;
            }
        };
        let what = match users::resolve(&config, &SystemAccounts, user) {
            Ok(Subject::Mapped { account, entry }) => format!(
                "{account} needs a second factor ({}, {} offline secret)",
                match (entry.authy_id, &entry.verify) {
                    (Some(id), _) => format!("Authy ID {id}"),
                    (None, Some(verify)) => format!("Verify identity {}", verify.identity),
                    (None, None) => "no factor".to_owned(),
                },
                if entry.offline_secret.is_some() { "with an" } else { "no" }
            ),
            Ok(Subject::OutsideGroups { account }) => {
                format!("{account} is outside [auth] groups: PAM_IGNORE (no second factor)")
            }
            Ok(Subject::UnmappedIgnored { account }) => {
                format!("{account} is not in [users] and unmapped_users = \"ignore\": PAM_IGNORE")
            }
            Ok(Subject::UnmappedDenied { account }) => {
                format!("{account} is not in [users]: PAM_USER_UNKNOWN")
            }
            Ok(Subject::NoSuchAccount) => format!("no account {user}: PAM_USER_UNKNOWN"),
            Err(error) => format!("{error}: PAM_SERVICE_ERR"),
        };
        eprintln!("pam_authy with {}: {what}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn includes_are_followed_when_looking_for_the_module() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("svc"), "# comment\n@include common\naccount required pam_permit.so\n")
            .expect("write");
        std::fs::write(
            dir.path().join("common"),
            "auth [success=1 default=ignore] pam_unix.so\nauth substack deeper\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("deeper"),
            "auth required /lib/security/pam_authy.so config=/x\nauth include svc\n",
        )
        .expect("write");
        let found = modules_named(dir.path(), "svc", &["pam_authy.so"]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].location.ends_with("deeper:1"));
        assert_eq!(found[0].args, ["config=/x"]);
        assert!(modules_named(dir.path(), "common", &["pam_nothing.so"]).is_empty());
    }

    #[test]
    fn only_the_module_path_word_naming_exactly_that_module_counts() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("svc"),
            "auth required pam_authy_legacy.so config=/a\n\
             auth optional pam_exec.so /usr/local/bin/pam_authy.so-notify\n\
             auth required /opt/not_pam_authy.so config=/b\n\
             auth optional pam_echo.so pam_authy.so\n\
             -auth [success=1 default=ignore] /lib/security/pam_authy.so config=/c\n\
             auth [default=die] pam_authy.so config=/d\n\
             auth required /src/target/debug/libpam_authy.so config=/e\n",
        )
        .expect("write");
        let found = modules_named(dir.path(), "svc", MODULE_FILE_NAMES);
        let args: Vec<&[String]> = found.iter().map(|m| m.args.as_slice()).collect();
        let expected = ["config=/c", "config=/d", "config=/e"].map(|a| vec![a.to_owned()]);
        assert_eq!(args, expected.iter().map(Vec::as_slice).collect::<Vec<_>>(), "{found:?}");
    }
}
