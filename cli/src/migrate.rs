//! `pam-authy migrate`: moving an Authy-backed host to Verify one user at a time, without a
//! lock-out at any step.
//!
//! While `[api] backend` stays `authy`, the module logs every user in through Authy and
//! ignores a user's Verify keys; `migrate --apply` enrols each chosen user at Verify (the
//! user scans a QR code and types the first code, or the user's exported Authy TOTP seed from
//! `--secrets-from` becomes the factor's binding secret, so the authenticator entry they
//! already have keeps working) and writes `verify_identity` and `totp_factor` next to the
//! user's `authy_id`. Only when every user of the config has a verified Verify mapping does
//! it switch `backend` to `verify`; the `authy_id`s and the Authy key stay for a rollback
//! (set `backend = "authy"` again). Without `--apply` nothing is sent or written.

use crate::confedit::{self, ConfigLock};
use crate::interrupt::Guard;
use crate::support::{self, Exit, Outcome};
use crate::verify_account::{self, Enrolment};
use pam_authy::config::{Backend, Config, DEFAULT_AUTHY_URL, DEFAULT_VERIFY_URL, normalize_base32_secret};
use pam_authy::offline::{OfflineParams, code_at};
use pam_authy::secret::Secret;
use pam_authy::secure_fs;
use pam_authy::verify::client::VerifyClient;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAX_SEEDS_BYTES: u64 = 1 << 20;

pub struct MigrateArgs {
    pub user: Option<String>,
    pub all: bool,
    pub apply: bool,
    pub secrets_from: Option<PathBuf>,
    pub json: bool,
}

/// What happened to one user.
enum Fate {
    Migrated(String),
    WouldMigrate(&'static str),
    Skipped(String),
    Failed(String),
}

impl Fate {
    fn word(&self) -> &'static str {
        match self {
            Fate::Migrated(_) => "migrated",
            Fate::WouldMigrate(_) => "would_migrate",
            Fate::Skipped(_) => "skipped",
            Fate::Failed(_) => "failed",
        }
    }

    fn why(&self) -> &str {
        match self {
            Fate::Migrated(why) | Fate::Skipped(why) | Fate::Failed(why) => why,
            Fate::WouldMigrate(why) => why,
        }
    }
}

/// The exported Authy TOTP seeds: a TOML file of `user = "BASE32"` lines, owned by root (or
/// this user) and readable by nobody else, checked like every other secret file.
fn read_seeds(file: &Path) -> Result<BTreeMap<String, Secret>, String> {
    let read = secure_fs::read_file(file, MAX_SEEDS_BYTES).map_err(|e| format!("--secrets-from: {e}"))?;
    if read.readable_by_group_or_other() {
        return Err(format!(
            "--secrets-from {}: mode {:04o} lets group or other read the seeds; use 0600",
            file.display(),
            read.mode
        ));
    }
    let text = std::str::from_utf8(&read.bytes).map_err(|_| format!("--secrets-from {}: not UTF-8", file.display()))?;
    // The parser's message could quote a seed: only the line is reported.
    let document: toml_edit::DocumentMut = text
        .parse()
        .map_err(|_| format!("--secrets-from {}: not a TOML file of user = \"BASE32\" lines", file.display()))?;
    let mut seeds = BTreeMap::new();
    for (user, value) in document.iter() {
        let user = user.to_owned();
        let seed = value
            .as_str()
            .map(Secret::from)
            .and_then(|s| normalize_base32_secret(&s))
            .ok_or_else(|| format!("--secrets-from {}: {user}: not base32 of at least 80 bits", file.display()))?;
        seeds.insert(user, seed);
    }
    Ok(seeds)
}

/// The client for Verify while `[api]` still points at Authy: Authy's default URL becomes
/// Verify's; any other URL (a gateway, the sandbox) serves both.
fn verify_client(config: &Config) -> Result<Arc<VerifyClient>, String> {
    let verify = config.verify.as_ref().ok_or_else(|| {
        format!(
            "{}: add a [verify] table (service_sid, api_key_sid, api_key_secret_file) before migrating",
            config.path.display()
        )
    })?;
    let mut api = config.api.clone();
    if api.url == DEFAULT_AUTHY_URL {
        api.url = DEFAULT_VERIFY_URL.to_owned();
    }
    VerifyClient::new(&api, verify).map(Arc::new).map_err(|e| format!("{}: {e}", api.url))
}

pub fn run(path: &Path, args: &MigrateArgs) -> Outcome {
    if args.user.is_some() == args.all {
        return Err("name one USER or give --all".into());
    }
    if let Some(user) = &args.user {
        support::check_user_name(user)?;
    }
    let seeds = args.secrets_from.as_deref().map(read_seeds).transpose()?;
    let lock = if args.apply { Some(ConfigLock::acquire(path)?) } else { None };
    let config = support::load(path)?;
    if config.api.backend == Backend::Verify {
        return Err(format!("{}: [api] backend is already \"verify\"", path.display()).into());
    }
    let files = support::mapping_files(&config)?;
    let chosen: Vec<String> = match &args.user {
        Some(user) => vec![support::mapped(&config, user).map(|_| user.clone())?],
        None => config.users.keys().cloned().collect(),
    };
    if let Some(seeds) = &seeds {
        for user in seeds.keys().filter(|u| !config.users.contains_key(*u)) {
            support::warn(&format!("--secrets-from has a seed for {user}, who is not in [users]"));
        }
    }
    let guard = if args.apply { Some(Guard::install()?) } else { None };
    let client = verify_client(&config)?;
    let verify = config.verify.as_ref().ok_or("no [verify] table")?;
    let mut fates = Vec::new();
    let mut input = std::io::stdin().lock();
    for user in &chosen {
        let entry = support::mapped(&config, user)?;
        let seed = seeds.as_ref().and_then(|s| s.get(user));
        let file = files.get(user).ok_or_else(|| format!("{user}: the file that maps it was not found"))?;
        let fate = if entry.verify.is_some() {
            Fate::Skipped("already has a Verify mapping".to_owned())
        } else if seeds.is_some() && seed.is_none() {
            Fate::Failed("no seed for this user in --secrets-from".to_owned())
        } else if let (Some(guard), Some(lock)) = (&guard, &lock) {
            let how = Enrolment { user, png: None, to_stderr: args.json, seed };
            migrate_one(guard, (lock, file), &client, verify, &how, &mut input)
        } else if seed.is_some() {
            Fate::WouldMigrate("the exported seed becomes the factor's secret")
        } else {
            Fate::WouldMigrate("the user scans a QR code and types the first code")
        };
        fates.push((user.clone(), fate));
    }
    let switched = match &lock {
        Some(lock) => switch_if_complete(path, lock)?,
        None => Switch::DryRun,
    };
    report(args, &fates, &switched);
    if fates.iter().any(|(_, fate)| matches!(fate, Fate::Failed(_))) {
        return Err(Exit::ReportedWithReason("some users were not migrated".to_owned()));
    }
    Ok(())
}

/// Enrols one user and writes the Verify keys into `file`, the one that maps the user (the
/// main config or a drop-in), under `lock`.
fn migrate_one(
    guard: &Guard,
    (lock, file): (&ConfigLock, &Path),
    client: &Arc<VerifyClient>,
    verify: &pam_authy::config::VerifyConfig,
    how: &Enrolment<'_>,
    input: &mut dyn std::io::BufRead,
) -> Fate {
    let enrolled = match how.seed {
        Some(seed) => {
            let params = OfflineParams { digits: 6, period_secs: 30, skew_steps: 1 };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default();
            let Some(code) = code_at(seed, now, &params) else {
                return Fate::Failed("the seed makes no TOTP code".to_owned());
            };
            let mut typed = std::io::Cursor::new(zeroize::Zeroizing::new(format!("{}\n", code.expose()).into_bytes()));
            verify_account::enrol_factor(guard, client, verify, how, &mut typed)
        }
        None => verify_account::enrol_factor(guard, client, verify, how, input),
    };
    let enrolled = match enrolled {
        Ok(enrolled) => enrolled,
        Err(why) => return Fate::Failed(why),
    };
    let (identity, factor) = (enrolled.identity.as_str(), enrolled.factor.as_str());
    match lock.edit_users_file(file, |doc| confedit::add_verify_keys(doc, how.user, identity, factor)) {
        Ok(()) => Fate::Migrated(format!("factor {factor} verified, written to {}", file.display())),
        Err(why) => {
            let undone = enrolled.undo.map(|undo| undo()).unwrap_or_default();
            Fate::Failed(format!("the mapping was not saved: {why}; {undone}"))
        }
    }
}

enum Switch {
    DryRun,
    Switched,
    Waiting(Vec<String>),
}

/// Sets `backend = "verify"` once every user of the config (drop-ins included) has a Verify
/// mapping; an explicit Authy URL goes, so that Verify's default applies.
fn switch_if_complete(path: &Path, lock: &ConfigLock) -> Result<Switch, String> {
    let config = support::load(path)?;
    let waiting: Vec<String> =
        config.users.iter().filter(|(_, entry)| entry.verify.is_none()).map(|(name, _)| name.clone()).collect();
    if !waiting.is_empty() || config.users.is_empty() {
        return Ok(Switch::Waiting(waiting));
    }
    lock.edit(confedit::switch_to_verify).map_err(|e| format!("every user is migrated but the switch failed: {e}"))?;
    Ok(Switch::Switched)
}

fn report(args: &MigrateArgs, fates: &[(String, Fate)], switched: &Switch) {
    let (backend, waiting) = match switched {
        Switch::Switched => ("verify", Vec::new()),
        Switch::Waiting(users) => ("authy", users.clone()),
        Switch::DryRun => ("authy", Vec::new()),
    };
    if args.json {
        let users: Vec<Value> = fates
            .iter()
            .map(|(user, fate)| json!({"user": user, "result": fate.word(), "reason": fate.why()}))
            .collect();
        support::print_json(&json!({
            "ok": !fates.iter().any(|(_, f)| matches!(f, Fate::Failed(_))),
            "apply": args.apply,
            "users": users,
            "backend": backend,
            "switched": matches!(switched, Switch::Switched),
            "not_migrated": waiting,
        }));
        return;
    }
    if !args.apply {
        println!("dry run: nothing is sent or written without --apply");
    }
    for (user, fate) in fates {
        println!("{}", support::clean(&format!("{user}: {} ({})", fate.word().replace('_', " "), fate.why())));
    }
    match switched {
        Switch::Switched => println!("every user has a verified Verify factor: [api] backend switched to \"verify\""),
        Switch::Waiting(users) if !users.is_empty() => println!(
            "[api] backend stays \"authy\" until every user is migrated; not yet: {}",
            support::clean(&users.join(", "))
        ),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fate_has_its_word() {
        assert_eq!(Fate::Migrated(String::new()).word(), "migrated");
        assert_eq!(Fate::WouldMigrate("x").why(), "x");
    }
}
