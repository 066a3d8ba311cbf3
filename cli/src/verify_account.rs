//! `enroll`, `status` and `remove` with `[api] backend = "verify"`: a Verify entity with a
//! TOTP factor, and the user's `{ verify_identity, totp_factor, phone }` line in `[users]`.
//!
//! Enrolment is remote first, local last: the entity gets a random identity (never the user
//! name), the factor's otpauth URI is shown as a QR code, the user's first code verifies the
//! factor, and only a verified factor is written to the config. Every other ending (a wrong
//! code too often, end of input, ^C, an API failure, a config that cannot be edited) deletes
//! the factor and the entity again, so that nothing half-made stays behind.

use crate::confedit::{self, ConfigLock, VerifyEntry};
use crate::interrupt::{Guard, Undo};
use crate::offline;
use crate::progress;
use crate::support::{self, Outcome};
use pam_authy::backend::{ApiError, Token};
use pam_authy::config::{Config, UnmappedPolicy, UserEntry, VerifyConfig, VerifyUser};
use pam_authy::verify::admin::{self, Deleted, FactorDetails};
use pam_authy::verify::client::VerifyClient;
use pam_authy::verify::{FactorSid, Identity, Phone, ServiceSid};
use qrcodegen::{QrCode, QrCodeEcc};
use serde_json::{Value, json};
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Wrong first codes accepted before the enrolment is abandoned (Verify allows 5).
pub const MAX_CODE_TRIES: u32 = 3;
const MAX_LINE_BYTES: u64 = 256;
const IDENTITY_BYTES: usize = 16;
const TERMINAL_BORDER: i32 = 2;

pub struct EnrollArgs<'a> {
    pub user: &'a str,
    /// The file the mapping goes into: the config or one of its drop-ins.
    pub file: &'a Path,
    pub phone: Option<&'a str>,
    pub png: Option<&'a Path>,
    pub json: bool,
}

/// The configured client and `[verify]` table.
fn client(config: &Config) -> Result<(Arc<VerifyClient>, &VerifyConfig), String> {
    let verify = config.verify.as_ref().ok_or_else(|| format!("{}: no [verify] table", config.path.display()))?;
    let client = VerifyClient::new(&config.api, verify).map_err(|e| format!("{}: {e}", config.api.url))?;
    Ok((Arc::new(client), verify))
}

pub fn problem(error: &ApiError) -> String {
    match error {
        ApiError::BadApiKey => {
            "the API rejected the credentials (20003): check [verify] api_key_sid and api_key_secret".to_owned()
        }
        other => other.to_string(),
    }
}

/// `--phone` for Verify: E.164, where SMS and voice codes go.
pub fn parse_phone(phone: &str) -> Result<Phone, String> {
    Phone::parse(phone).ok_or_else(|| {
        format!(
            "--phone {:?}: with backend = \"verify\" the number is E.164: +, the country code and the number, digits only (+15551234567)",
            pam_authy::sanitize::display_text(phone, 40)
        )
    })
}

/// 128 random bits as 32 hex digits: an identity that says nothing about the user.
fn random_identity() -> Result<Identity, String> {
    let mut bytes = [0u8; IDENTITY_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| format!("getrandom: {e}"))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Identity::parse(&hex).ok_or_else(|| "random identity refused".to_owned())
}

/// The factor's name in the user's app (after the service's issuer): this host, so that a
/// user enrolled on several hosts can tell the codes apart, and no personal data.
fn friendly_name() -> String {
    let host = nix::unistd::gethostname().ok().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
    let host: String = host.chars().filter(|c| c.is_ascii_graphic()).take(64).collect();
    if host.is_empty() { "pam_authy".to_owned() } else { host }
}

/// Deletes the factor (if any) and the entity; says what happened, for the failure message.
fn undo_remote(client: &VerifyClient, service: &ServiceSid, identity: &Identity, factor: Option<&FactorSid>) -> String {
    let factor_gone = factor.map(|sid| admin::delete_factor(client, service, identity, sid));
    let entity_gone = admin::delete_entity(client, service, identity);
    match (factor_gone, entity_gone) {
        (Some(Err(e)), _) | (None, Err(e)) => format!(
            "deleting the unverified factor failed ({}): delete entity {identity} in the Twilio console",
            problem(&e)
        ),
        (_, Err(e)) => format!(
            "the factor was deleted, the empty entity {identity} was not ({}): delete it in the Twilio console",
            problem(&e)
        ),
        _ => "nothing was left at Verify".to_owned(),
    }
}

fn undo_for(client: &Arc<VerifyClient>, service: &ServiceSid, identity: &Identity, factor: Option<&FactorSid>) -> Undo {
    let (client, service, identity, factor) = (Arc::clone(client), service.clone(), identity.clone(), factor.cloned());
    Box::new(move || undo_remote(&client, &service, &identity, factor.as_ref()))
}

/// A factor made and verified: what the mapping records.
pub struct Enrolled {
    pub identity: Identity,
    pub factor: FactorSid,
    /// Undoes the remote part, should recording the mapping fail.
    pub undo: Option<Undo>,
}

/// Where the user's code comes from and where the QR code goes.
pub struct Enrolment<'a> {
    pub user: &'a str,
    pub png: Option<&'a Path>,
    /// Put the QR code and prompts on stderr (stdout is for the JSON report).
    pub to_stderr: bool,
    /// A base32 seed to reuse instead of a new secret (`migrate --secrets-from`).
    pub seed: Option<&'a pam_authy::secret::Secret>,
}

/// Creates the entity and factor, shows the QR code, verifies the first code. On success
/// signals stay held until the program ends; the caller records the mapping or runs `undo`.
pub fn enrol_factor(
    guard: &Guard,
    client: &Arc<VerifyClient>,
    verify: &VerifyConfig,
    how: &Enrolment<'_>,
    input: &mut dyn BufRead,
) -> Result<Enrolled, String> {
    let service = &verify.service_sid;
    let identity = random_identity()?;
    guard.arm(undo_for(client, service, &identity, None));
    let fail = |guard: &Guard, why: String| -> String {
        match guard.disarm() {
            Some(undo) => format!("{why}; {}", undo()),
            None => why,
        }
    };
    let created = progress::waiting("creating the Verify entity and TOTP factor", || {
        admin::create_entity(client.as_ref(), service, &identity)?;
        admin::create_totp_factor(client.as_ref(), service, &identity, &friendly_name(), how.seed)
    });
    let factor = match created {
        Ok(factor) => factor,
        Err(e) => return Err(fail(guard, format!("creating the factor: {}", problem(&e)))),
    };
    guard.arm(undo_for(client, service, &identity, Some(&factor.sid)));
    if how.seed.is_none() {
        let shown = present(how, factor.uri.expose());
        if let Err(why) = shown {
            return Err(fail(guard, why));
        }
    }
    match first_code(client, verify, &identity, &factor.sid, how, input) {
        Ok(()) => {}
        Err(why) => {
            if let Some(png) = how.png {
                let _ = std::fs::remove_file(png);
            }
            return Err(fail(guard, why));
        }
    }
    Ok(Enrolled { identity, factor: factor.sid, undo: guard.commit() })
}

fn present(how: &Enrolment<'_>, uri: &str) -> Result<(), String> {
    let qr = QrCode::encode_text(uri, QrCodeEcc::Medium).map_err(|_| "the otpauth URI is too long for a QR code")?;
    if let Some(png) = how.png {
        offline::write_png(png, &qr)?;
    }
    let ansi = if how.to_stderr { std::io::stderr().is_terminal() } else { std::io::stdout().is_terminal() };
    let mut text = format!(
        "Scan this QR code for {} with an authenticator app (Authy, Google Authenticator, ...):\n\n{}\n{uri}\n",
        how.user,
        offline::render_terminal(&qr, TERMINAL_BORDER, ansi)
    );
    if let Some(png) = how.png {
        text.push_str(&format!("QR code written to {} (mode 0600)\n", png.display()));
    }
    if how.to_stderr {
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    } else {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
    Ok(())
}

/// Asks for codes until one verifies the factor, at most `MAX_CODE_TRIES` times.
fn first_code(
    client: &VerifyClient,
    verify: &VerifyConfig,
    identity: &Identity,
    factor: &FactorSid,
    how: &Enrolment<'_>,
    input: &mut dyn BufRead,
) -> Result<(), String> {
    for attempt in 1..=MAX_CODE_TRIES {
        eprint!("Code shown by the app for {} (try {attempt} of {MAX_CODE_TRIES}): ", how.user);
        let _ = std::io::stderr().flush();
        let mut line = zeroize::Zeroizing::new(String::new());
        let read = input.take(MAX_LINE_BYTES).read_line(&mut line).map_err(|e| format!("reading the code: {e}"))?;
        if read == 0 {
            eprintln!();
            return Err("no code given (end of input): enrolment abandoned".to_owned());
        }
        let Some(code) = Token::parse(line.trim_end_matches(['\n', '\r'])) else {
            eprintln!("not a code: 6 to 8 digits");
            continue;
        };
        let verified = progress::waiting("checking the code", || {
            admin::verify_factor(client, &verify.service_sid, identity, factor, &code)
        });
        match verified {
            Ok(true) => return Ok(()),
            Ok(false) => eprintln!("wrong code"),
            Err(e) => return Err(format!("checking the code: {}", problem(&e))),
        }
    }
    Err(format!("no right code in {MAX_CODE_TRIES} tries: enrolment abandoned"))
}

pub fn enroll(config: &Config, lock: Option<ConfigLock>, args: &EnrollArgs<'_>) -> Outcome {
    let phone = args.phone.map(parse_phone).transpose()?;
    let guard = Guard::install()?;
    let (client, verify) = client(config)?;
    let how = Enrolment { user: args.user, png: args.png, to_stderr: args.json, seed: None };
    let mut input = std::io::stdin().lock();
    let enrolled = enrol_factor(&guard, &client, verify, &how, &mut input)?;
    let entry = VerifyEntry {
        identity: enrolled.identity.as_str(),
        totp_factor: enrolled.factor.as_str(),
        phone: phone.as_ref().map(Phone::as_str),
    };
    let recorded = match &lock {
        None => confedit::user_line(args.user, None, Some(&entry)).map(Some),
        Some(lock) => {
            lock.edit_users_file(args.file, |doc| confedit::add_verify_user(doc, args.user, &entry)).map(|()| None)
        }
    };
    let line = match recorded {
        Ok(line) => line,
        Err(why) => {
            let undone = enrolled.undo.map(|undo| undo()).unwrap_or_default();
            return Err(format!("the mapping was not saved: {why}; {undone}").into());
        }
    };
    let mut report = json!({
        "ok": true,
        "user": args.user,
        "backend": "verify",
        "verify_identity": entry.identity,
        "totp_factor": entry.totp_factor,
        "phone": entry.phone.map(mask_phone),
    });
    match &line {
        Some(line) => report["line"] = Value::from(line.as_str()),
        None => report["config"] = Value::from(args.file.display().to_string()),
    }
    if args.json {
        support::print_json(&report);
    } else if let Some(line) = line {
        println!("enrolled {} at Verify (factor verified); add this line to [users]:", args.user);
        println!("{line}");
    } else {
        println!(
            "enrolled {}: factor {} verified, added to [users] of {}",
            args.user,
            enrolled.factor,
            args.file.display()
        );
    }
    Ok(())
}

/// `+`, the first digit and the last two: enough to recognise a number, not to dial it.
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 4 {
        return "+…".to_owned();
    }
    let hidden = "•".repeat(digits.len() - 3);
    format!("+{}{hidden}{}{}", digits[0], digits[digits.len() - 2], digits[digits.len() - 1])
}

fn factor_json(result: &Result<FactorDetails, ApiError>) -> Value {
    match result {
        Ok(f) => json!({
            "sid": f.sid.as_str(),
            "status": if f.verified { "verified" } else { "unverified" },
            "friendly_name": f.friendly_name,
        }),
        Err(ApiError::Rejected { status: 404, .. }) => json!({"status": "not_found"}),
        Err(e) => json!({"status": "error", "error": e.kind(), "message": problem(e)}),
    }
}

pub fn status(config: &Config, file: &Path, user: &str, entry: &UserEntry, json: bool) -> Outcome {
    let mapping = verify_user(config, user, entry)?;
    let (client, verify) = client(config)?;
    let fetch = |sid: &FactorSid| {
        progress::waiting("asking Verify for the factor", || {
            admin::fetch_factor(client.as_ref(), &verify.service_sid, &mapping.identity, sid)
        })
    };
    let totp = mapping.totp_factor.as_ref().map(|sid| (sid, fetch(sid)));
    let push = mapping.push_factor.as_ref().map(|sid| (sid, fetch(sid)));
    for (_, result) in totp.iter().chain(push.iter()) {
        if let Err(e @ (ApiError::BadApiKey | ApiError::Unreachable(_) | ApiError::Tls(_))) = result {
            return Err(format!("{}: {}", config.api.url, problem(e)).into());
        }
    }
    let phone = mapping.phone.as_ref().map(|p| mask_phone(p.as_str()));
    let offline = entry.offline_secret.is_some();
    if json {
        support::print_json(&json!({
            "ok": true,
            "user": user,
            "backend": "verify",
            "verify_identity": mapping.identity.as_str(),
            "totp_factor": totp.as_ref().map(|(_, r)| factor_json(r)),
            "push_factor": push.as_ref().map(|(_, r)| factor_json(r)),
            "phone": phone,
            "offline_secret": offline,
            "config": file.display().to_string(),
        }));
        return Ok(());
    }
    println!("{user}: Verify identity {}", mapping.identity);
    for (label, factor) in [("TOTP factor   ", &totp), ("push factor   ", &push)] {
        let shown = match factor {
            None => "none".to_owned(),
            Some((sid, result)) => {
                let value = factor_json(result);
                let status = value["status"].as_str().unwrap_or("unknown").replace('_', " ");
                match value["friendly_name"].as_str().filter(|n| !n.is_empty()) {
                    Some(name) => format!("{sid} {status} (\"{name}\")"),
                    None => format!("{sid} {status}"),
                }
            }
        };
        println!("  {label} : {}", support::clean(&shown));
    }
    println!("  phone          : {}", phone.as_deref().unwrap_or("none"));
    println!("  offline secret : {}", if offline { "set" } else { "none" });
    println!("  mapped in      : {}", file.display());
    Ok(())
}

fn verify_user<'e>(config: &Config, user: &str, entry: &'e UserEntry) -> Result<&'e VerifyUser, String> {
    entry.verify.as_ref().ok_or_else(|| format!("{user} has no Verify mapping in {}", config.path.display()))
}

pub fn remove(
    config: &Config,
    lock: &ConfigLock,
    file: &Path,
    user: &str,
    entry: &UserEntry,
    keep_remote: bool,
    json: bool,
) -> Outcome {
    let mapping = verify_user(config, user, entry)?;
    let mut removed = Vec::new();
    if !keep_remote {
        let (client, verify) = client(config)?;
        let service = &verify.service_sid;
        for sid in mapping.totp_factor.iter().chain(mapping.push_factor.iter()) {
            let gone = progress::waiting("deleting the factor at Verify", || {
                admin::delete_factor(client.as_ref(), service, &mapping.identity, sid)
            });
            match gone {
                Ok(Deleted::Deleted) => removed.push(json!({"factor": sid.as_str(), "api": "removed"})),
                Ok(Deleted::NotFound) => {
                    support::warn(&format!("Verify does not know factor {sid} (404); removing the mapping anyway"));
                    removed.push(json!({"factor": sid.as_str(), "api": "not_found"}));
                }
                Err(e) => {
                    return Err(format!(
                        "{}: deleting factor {sid}: {}; {user} stays in [users]",
                        config.api.url,
                        problem(&e)
                    )
                    .into());
                }
            }
        }
        if let Err(e) = admin::delete_entity(client.as_ref(), service, &mapping.identity) {
            support::warn(&format!(
                "the factors are gone but entity {} was not deleted: {}",
                mapping.identity,
                problem(&e)
            ));
        }
    }
    lock.edit_users_file(file, |doc| confedit::remove_user(doc, user)).map_err(|e| {
        let remote = if keep_remote { "" } else { "its factors were deleted at Verify but " };
        format!("{remote}{user} is still in [users]: {e}")
    })?;
    if config.auth.unmapped_users == UnmappedPolicy::Ignore {
        support::warn(&format!("unmapped_users = \"ignore\": {user} now logs in without a second factor"));
    }
    if json {
        support::print_json(&json!({
            "ok": true,
            "user": user,
            "backend": "verify",
            "verify_identity": mapping.identity.as_str(),
            "api": if keep_remote { Value::from("kept") } else { Value::from(removed) },
            "config": file.display().to_string(),
        }));
    } else if keep_remote {
        println!("removed {user} from [users] of {}; its factors at Verify were kept", file.display());
    } else {
        println!(
            "removed {user}: {} factor(s) deleted at Verify, {user} removed from [users] of {}",
            removed.len(),
            file.display()
        );
    }
    Ok(())
}

/// Where `--png` may write: refused before anything is created remotely.
pub fn check_png_target(png: Option<&PathBuf>) -> Result<(), String> {
    match png {
        Some(path) if std::fs::symlink_metadata(path).is_ok() => {
            Err(format!("--png {}: already exists; choose a new file", path.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_phone_keeps_the_first_digit_and_the_last_two() {
        assert_eq!(mask_phone("+15551234567"), "+1••••••••67");
        assert_eq!(mask_phone("+447700900123"), "+4•••••••••23");
        assert!(!mask_phone("+15551234567").contains("555"));
    }

    #[test]
    fn identities_are_random_hex_never_a_name() {
        let a = random_identity().expect("identity");
        let b = random_identity().expect("identity");
        assert_eq!(a.as_str().len(), 32);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
