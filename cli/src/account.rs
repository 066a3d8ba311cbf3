//! `enroll`, `status` and `remove`: an Authy user and its line in `[users]`.
//!
//! Every subcommand that changes something takes the config lock first (waiting, bounded),
//! then validates the config with the module's checks, then calls the API, then edits the
//! mapping through `confedit` under the same lock: a failed call leaves the file as it was,
//! and when the edit fails after `users/new` succeeded, the new Authy user is removed again,
//! so the remote and the local change happen together or not at all.

use crate::confedit;
use crate::progress;
use crate::support::{self, Outcome};
use crate::verify_account;
use pam_authy::backend::ApiError;
use pam_authy::config::{AuthyId, Backend, Config, UnmappedPolicy};
use pam_authy::sanitize::display_text;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

pub struct EnrollArgs {
    pub user: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub country_code: Option<u16>,
    pub png: Option<PathBuf>,
    pub print: bool,
    /// Write the mapping into `users.d/NAME.toml` instead of the main file.
    pub drop_in: Option<String>,
    pub json: bool,
}

pub fn enroll(path: &Path, args: &EnrollArgs) -> Outcome {
    support::check_user_name(&args.user)?;
    verify_account::check_png_target(args.png.as_ref())?;
    let file = match &args.drop_in {
        Some(name) => confedit::drop_in_path(path, name)?,
        None => path.to_path_buf(),
    };
    let lock = if args.print { None } else { Some(confedit::ConfigLock::acquire(path)?) };
    let config = support::load(path)?;
    if let Some(entry) = config.user(&args.user) {
        let mapped_to = entry.authy_id.map_or_else(|| "a Verify identity".to_owned(), |id| format!("Authy ID {id}"));
        let mapped_in = support::mapping_file(&config, &args.user).unwrap_or_else(|_| path.to_path_buf());
        return Err(format!(
            "{} is already mapped to {mapped_to} in {}; run `pam-authy remove {}` first",
            args.user,
            mapped_in.display(),
            args.user
        )
        .into());
    }
    support::warn_if_no_account(&args.user);
    if config.api.backend == Backend::Verify {
        if args.email.is_some() || args.country_code.is_some() {
            return Err("--email and --country-code are for backend = \"authy\"; Verify takes --phone in E.164".into());
        }
        let verify_args = verify_account::EnrollArgs {
            user: &args.user,
            file: &file,
            phone: args.phone.as_deref(),
            png: args.png.as_deref(),
            json: args.json,
        };
        return verify_account::enroll(&config, lock, &verify_args);
    }
    if args.png.is_some() {
        return Err("--png is for backend = \"verify\" (an Authy user scans nothing)".into());
    }
    let (Some(email), Some(phone), Some(country_code)) = (&args.email, &args.phone, args.country_code) else {
        return Err("with backend = \"authy\", enroll needs --email, --phone and --country-code".into());
    };
    check_phone(phone)?;
    let client = support::client(&config)?;
    let authy_id = progress::waiting("creating the Authy user", || client.create_user(email, phone, country_code))
        .map_err(|e| format!("{}: users/new: {}", config.api.url, api_problem(&e)))?;
    let recorded = match &lock {
        None => confedit::user_line(&args.user, Some(authy_id.get()), None).map(Some),
        Some(lock) => {
            lock.edit_users_file(&file, |doc| confedit::add_user(doc, &args.user, authy_id.get())).map(|()| None)
        }
    };
    let line = match recorded {
        Ok(line) => line,
        Err(problem) => return Err(undo_creation(&client, &config, authy_id, &problem).into()),
    };
    if args.json {
        let mut report = json!({"ok": true, "user": args.user, "authy_id": authy_id.get()});
        match &line {
            Some(line) => report["line"] = Value::from(line.as_str()),
            None => report["config"] = Value::from(file.display().to_string()),
        }
        support::print_json(&report);
    } else if let Some(line) = line {
        println!("enrolled {}: Authy ID {authy_id}; add this line to [users]:", args.user);
        println!("{line}");
    } else {
        println!("enrolled {}: Authy ID {authy_id}, added to [users] of {}", args.user, file.display());
    }
    Ok(())
}

/// The national number as `--phone` documents it (digits, spaces, dots, dashes; 4 to 15
/// digits, the most E.164 allows), refused here so that no request carries a number Authy
/// would only reject.
fn check_phone(phone: &str) -> Result<(), String> {
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    let allowed = phone.chars().all(|c| c.is_ascii_digit() || matches!(c, ' ' | '.' | '-'));
    if allowed && (4..=15).contains(&digits) {
        return Ok(());
    }
    let why = if phone.contains('+') {
        "the country code goes in --country-code, not in --phone"
    } else if allowed {
        "it must hold 4 to 15 digits"
    } else {
        "only digits, spaces, dots and dashes are allowed"
    };
    Err(format!("--phone {:?}: {why}", display_text(phone, 40)))
}

/// Removes the Authy user that `users/new` just gave us, because its mapping could not be
/// saved; the reason says what happened at the API. An ID that another account of this
/// config already maps to is an existing Authy user (same phone), so it is left alone.
fn undo_creation(client: &pam_authy::authy::AuthyClient, config: &Config, authy_id: AuthyId, problem: &str) -> String {
    if let Some(other) = config.users.iter().find(|(_, entry)| entry.authy_id == Some(authy_id)).map(|(name, _)| name) {
        return format!(
            "the mapping was not saved: {problem}; Authy answered ID {authy_id}, which {other} already uses, so it was left in place"
        );
    }
    match progress::waiting("removing the Authy user again", || client.remove_user(authy_id)) {
        Ok(()) => format!("the mapping was not saved: {problem}; the new Authy user (ID {authy_id}) was removed again"),
        Err(e) => format!(
            "the mapping was not saved: {problem}; removing the new Authy user (ID {authy_id}) failed too ({}): remove it with the Authy console",
            api_problem(&e)
        ),
    }
}

pub fn status(path: &Path, user: &str, json: bool) -> Outcome {
    support::check_user_name(user)?;
    let config = support::load(path)?;
    let entry = support::mapped(&config, user)?;
    let file = support::mapping_file(&config, user)?;
    if config.api.backend == Backend::Verify {
        return verify_account::status(&config, &file, user, entry, json);
    }
    let authy_id = support::authy_id(&config, user, entry)?;
    let client = support::client(&config)?;
    let reply = progress::waiting("asking for the user's status", || client.user_status(authy_id))
        .map_err(|e| format!("{}: users/{}/status: {}", config.api.url, authy_id, api_problem(&e)))?;
    let status = status_summary(&reply);
    let offline = entry.offline_secret.is_some();
    if json {
        let mut out = json!({
            "ok": true,
            "user": user,
            "authy_id": authy_id.get(),
            "offline_secret": offline,
            "config": file.display().to_string(),
        });
        if let (Some(out), Some(fields)) = (out.as_object_mut(), status.as_object()) {
            out.extend(fields.clone());
        }
        support::print_json(&out);
    } else {
        print_status(user, authy_id, &status, offline);
        println!("  mapped in      : {}", file.display());
    }
    Ok(())
}

/// The documented fields of `users/{id}/status`, sanitised (the reply is untrusted).
fn status_summary(reply: &serde_json::Map<String, Value>) -> Value {
    let status = reply.get("status").and_then(Value::as_object);
    let field = |key: &str| status.and_then(|s| s.get(key));
    let devices: Vec<String> = field("devices")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).take(20).map(|d| display_text(d, 40)).collect())
        .unwrap_or_default();
    json!({
        "registered": field("registered").and_then(Value::as_bool),
        "confirmed": field("confirmed").and_then(Value::as_bool),
        "devices": devices,
        "account_disabled": field("account_disabled").and_then(Value::as_bool),
        "phone_number": field("phone_number").and_then(Value::as_str).map(|p| display_text(p, 40)),
        "country_code": field("country_code").and_then(Value::as_u64),
    })
}

fn yes_no(value: &Value) -> &'static str {
    match value.as_bool() {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    }
}

fn print_status(user: &str, authy_id: AuthyId, status: &Value, offline: bool) {
    let devices = status["devices"]
        .as_array()
        .map(|d| d.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "none".to_owned());
    let phone = match (status["phone_number"].as_str(), status["country_code"].as_u64()) {
        (Some(phone), Some(cc)) => format!("+{cc} {phone}"),
        (Some(phone), None) => phone.to_owned(),
        _ => "unknown".to_owned(),
    };
    let account = match status["account_disabled"].as_bool() {
        Some(true) => "marked for deletion",
        Some(false) => "active",
        None => "unknown",
    };
    println!("{user}: Authy ID {authy_id}");
    println!("  registered     : {}", yes_no(&status["registered"]));
    println!("  confirmed      : {}", yes_no(&status["confirmed"]));
    println!("  devices        : {devices}");
    println!("  phone          : {phone}");
    println!("  account        : {account}");
    println!("  offline secret : {}", if offline { "set" } else { "none" });
}

pub fn remove(path: &Path, user: &str, keep_remote: bool, json: bool) -> Outcome {
    support::check_user_name(user)?;
    let lock = confedit::ConfigLock::acquire(path)?;
    let config = support::load(path)?;
    let entry = support::mapped(&config, user)?;
    let file = support::mapping_file(&config, user)?;
    if config.api.backend == Backend::Verify {
        return verify_account::remove(&config, &lock, &file, user, entry, keep_remote, json);
    }
    let authy_id = support::authy_id(&config, user, entry)?;
    let removed = if keep_remote {
        Ok(())
    } else {
        let client = support::client(&config)?;
        progress::waiting("removing the Authy user", || client.remove_user(authy_id))
    };
    let (api_note, api_field) = match removed {
        Ok(()) if keep_remote => ("kept at Authy", "kept"),
        Ok(()) => ("removed from Authy", "removed"),
        Err(ApiError::Rejected { status: 404, .. }) => {
            support::warn(&format!("Authy does not know ID {authy_id} (404); removing the stale mapping only"));
            ("unknown to Authy", "not_found")
        }
        Err(e) => {
            return Err(format!(
                "{}: users/{authy_id}/remove: {}; {user} stays in [users]",
                config.api.url,
                api_problem(&e)
            )
            .into());
        }
    };
    lock.edit_users_file(&file, |doc| confedit::remove_user(doc, user))
        .map_err(|e| format!("Authy ID {authy_id} is {api_note} but {user} is still in [users]: {e}"))?;
    if config.auth.unmapped_users == UnmappedPolicy::Ignore {
        support::warn(&format!("unmapped_users = \"ignore\": {user} now logs in without a second factor"));
    }
    if json {
        support::print_json(&json!({
            "ok": true,
            "user": user,
            "authy_id": authy_id.get(),
            "api": api_field,
            "config": file.display().to_string(),
        }));
    } else {
        println!("removed {user}: Authy ID {authy_id} {api_note}, {user} removed from [users] of {}", file.display());
    }
    Ok(())
}

fn api_problem(error: &ApiError) -> String {
    match error {
        ApiError::BadApiKey => "the API rejected the API key (60001): check [api] api_key or api_key_file".to_owned(),
        other => other.to_string(),
    }
}
