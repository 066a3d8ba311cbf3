//! `pam-authy check`: the config as the module sees it, then one real API call.
//!
//! The file goes through `Config::load`, the very function the module calls, so owner, mode,
//! symlink and schema problems read exactly as the module would log them. Then
//! `app/details` with the module's own client proves the URL, the TLS trust and the API key.
//! What a login finds out only at run time goes through the module's own functions too:
//! the groups of `[auth] groups` resolve (`users::required_group_ids`), the state directory
//! opens (`FileStateStore::open`, when offline secrets or a grace period will use it), the
//! client builds from `[api]` (which parses `ca_file`). Settings that are valid but risky are
//! warnings, not errors. When the module would refuse the files, every problem of every file
//! is listed (`Config::diagnose`), one line each with its file, line and key.

use crate::progress;
use crate::support::{self, Exit, Outcome};
use pam_authy::authy::AuthyClient;
use pam_authy::backend::ApiError;
use pam_authy::config::{Backend, Config, FailMode, Method, UnmappedPolicy, VerifyConfig};
use pam_authy::sanitize::display_text;
use pam_authy::verify::admin;
use pam_authy::verify::client::VerifyClient;
use pam_authy::verify::{FactorSid, Identity};
use serde_json::{Value, json};
use std::path::Path;

pub struct CheckArgs {
    pub json: bool,
    pub strict_ca: bool,
    pub no_api: bool,
}

#[derive(Default)]
struct Report {
    errors: Vec<String>,
    warnings: Vec<String>,
    notes: Vec<String>,
    drop_ins: Vec<String>,
    api: Value,
}

pub fn run(path: &Path, args: &CheckArgs) -> Outcome {
    let mut report = Report::default();
    match support::load(path) {
        // The module stops at the first problem; the admin gets them all, found by the
        // module's own parser (`Config::diagnose`).
        Err(problem) => {
            let all: Vec<String> = Config::diagnose(path).iter().map(ToString::to_string).collect();
            if all.is_empty() { report.errors.push(problem) } else { report.errors.extend(all) }
        }
        Ok(config) => {
            report.notes.push(describe_config(&config));
            report.drop_ins = config.drop_ins.iter().map(|p| p.display().to_string()).collect();
            report.warnings.extend(risky_settings(&config));
            report.errors.extend(login_time_problems(&config));
            if !args.no_api && report.errors.is_empty() {
                check_api(&config, args.strict_ca, &mut report);
            }
        }
    }
    let ok = report.errors.is_empty();
    if args.json {
        support::print_json(&json!({
            "ok": ok,
            "config": path.display().to_string(),
            "users_d": report.drop_ins,
            "errors": report.errors,
            "warnings": report.warnings,
            "api": report.api,
        }));
    } else {
        for note in &report.notes {
            println!("{}", support::clean(note));
        }
        for warning in &report.warnings {
            support::warn(warning);
        }
        for error in &report.errors {
            support::print_failure(error);
        }
        if ok {
            println!("ok");
        }
    }
    if ok { Ok(()) } else { Err(Exit::Reported) }
}

fn describe_config(config: &Config) -> String {
    let with_secret = config.users.values().filter(|u| u.offline_secret.is_some()).count();
    let drop_ins = match config.drop_ins.len() {
        0 => String::new(),
        n => format!(
            " and {n} users.d files ({})",
            config.drop_ins.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        ),
    };
    format!(
        "{}{drop_ins}: valid; {} users mapped ({with_secret} with an offline secret); failmode {}; unmapped users {}",
        config.path.display(),
        config.users.len(),
        match config.auth.failmode {
            FailMode::Secure => "secure",
            FailMode::Safe => "safe",
        },
        match config.auth.unmapped_users {
            UnmappedPolicy::Deny => "deny",
            UnmappedPolicy::Ignore => "ignore",
        },
    )
}

/// The `[users]` keys that are not the canonical name of an existing account.
fn stray_users<'c>(config: &'c Config, accounts: &dyn pam_authy::users::AccountDb) -> Vec<&'c str> {
    config
        .users
        .keys()
        .filter(|name| !matches!(accounts.account(name), Ok(Some(account)) if account.name == **name))
        .map(String::as_str)
        .collect()
}

/// Valid settings that let someone in without a second factor, or lock everyone out.
fn risky_settings(config: &Config) -> Vec<String> {
    let mut warnings = Vec::new();
    if config.auth.failmode == FailMode::Safe {
        warnings.push(
            "[auth] failmode = \"safe\" lets users in without a second factor whenever the API \
             cannot be reached, and anyone who can block the network can arrange that"
                .to_owned(),
        );
    }
    if config.auth.unmapped_users == UnmappedPolicy::Ignore {
        warnings.push(
            "[auth] unmapped_users = \"ignore\" lets every account missing from [users] log in \
             without a second factor"
                .to_owned(),
        );
    }
    if config.users.is_empty() && config.auth.unmapped_users == UnmappedPolicy::Deny {
        warnings
            .push("[users] is empty and unmapped_users = \"deny\": every login through the module fails".to_owned());
    }
    if config.auth.failmode == FailMode::Secure {
        let without: Vec<&str> = config
            .users
            .iter()
            .filter(|(_, entry)| entry.offline_secret.is_none())
            .map(|(name, _)| name.as_str())
            .collect();
        if !without.is_empty() {
            warnings.push(format!(
                "{} of {} users have no offline_secret ({}): with failmode = \"secure\" they \
                 cannot log in while the API is unreachable (see `pam-authy offline-enroll`)",
                without.len(),
                config.users.len(),
                list(&without, 10),
            ));
        }
    }
    let stray = stray_users(config, &pam_authy::users::SystemAccounts);
    if !stray.is_empty() {
        // The module maps by canonical account name: such an entry protects nobody, and under
        // `ignore` the account it was meant for logs in without a second factor.
        warnings.push(format!(
            "[users] names no existing account, or not by its canonical name: {} (the module \
             maps `getpwnam` names exactly, case included)",
            list(&stray, 10),
        ));
    }
    if let Some(proxy) = &config.api.proxy
        && proxy.starts_with("http://")
    {
        // Never print the proxy URL itself: it may carry credentials.
        warnings.push(
            "[api] proxy is plain http://: the proxy request and any proxy credentials cross \
             the network unencrypted (the API's own TLS stays end to end)"
                .to_owned(),
        );
    }
    warnings
}

/// What every login (or every offline or grace login) would refuse, found with the calls the
/// module makes at login.
fn login_time_problems(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    if let Err(error) = pam_authy::users::required_group_ids(config, &pam_authy::users::SystemAccounts) {
        problems.push(format!("{}: {error}; every login through the module fails", config.path.display()));
    }
    let state_used = config.auth.grace > std::time::Duration::ZERO
        || config.users.values().any(|user| user.offline_secret.is_some());
    let state_dir = &config.offline.state_dir;
    // A missing directory is created (0700) at the first use; opening it here would create it.
    if state_used
        && state_dir.exists()
        && let Err(error) = pam_authy::state::FileStateStore::open(state_dir)
    {
        problems.push(format!(
            "{}: [offline] state_dir: {error}; offline codes and the grace period fail",
            config.path.display()
        ));
    }
    if let Err(error) = AuthyClient::new(&config.api) {
        problems.push(format!("{}: [api]: {error}", config.path.display()));
    }
    problems
}

fn list(names: &[&str], max: usize) -> String {
    let mut shown = names.iter().take(max).copied().collect::<Vec<_>>().join(", ");
    if names.len() > max {
        shown.push_str(&format!(", and {} more", names.len() - max));
    }
    shown
}

fn check_api(config: &Config, strict_ca: bool, report: &mut Report) {
    let url = config.api.url.clone();
    if strict_ca && config.api.ca_pem.is_none() {
        report.errors.push("--strict-ca needs [api] ca_file in the config".to_owned());
        return;
    }
    if let Some(verify) = &config.verify
        && config.api.backend == Backend::Verify
    {
        return check_verify_service(config, verify, strict_ca, report);
    }
    let client =
        if strict_ca { AuthyClient::with_configured_anchors_only(&config.api) } else { AuthyClient::new(&config.api) };
    let details =
        client.and_then(|client| progress::waiting(&format!("asking {url} for app/details"), || client.app_details()));
    match details {
        Ok(reply) => {
            let app = app_summary(&reply);
            report.notes.push(describe_app(&url, &app));
            report.warnings.extend(method_warnings(config, &app));
            report.api = json!({"url": url, "ok": true, "app": app});
        }
        Err(error) => {
            report.errors.push(format!("{url}: {}", api_problem(&error)));
            report.api = json!({
                "url": url,
                "ok": false,
                "error": error.kind(),
                "message": error.to_string(),
            });
        }
    }
}

/// Backend `verify`: fetching the service proves URL, TLS, credentials and service SID.
fn check_verify_service(config: &Config, verify: &VerifyConfig, strict_ca: bool, report: &mut Report) {
    let url = config.api.url.clone();
    let client = if strict_ca {
        VerifyClient::with_configured_anchors_only(&config.api, verify)
    } else {
        VerifyClient::new(&config.api, verify)
    };
    let sid = verify.service_sid.as_str();
    let service = client
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|client| progress::waiting(&format!("asking {url} for service {sid}"), || client.service(verify)));
    match service {
        Ok(service) => {
            report.notes.push(format!(
                "{url}: Verify credentials accepted for service {sid} \"{}\" (TOTP step {} s)",
                service.friendly_name,
                service.totp_time_step.map_or_else(|| "unknown".to_owned(), |s| s.to_string())
            ));
            report.api = json!({"url": url, "ok": true, "service": {"sid": sid, "name": service.friendly_name}});
            if let Some(length) = service.totp_code_length.filter(|l| !(6..=8).contains(l)) {
                report.warnings.push(format!(
                    "service {sid} makes TOTP codes of {length} digits; the module takes 6 to 8, so \
                     new factors would never log in (set the service's Totp.CodeLength)"
                ));
            }
            if let Ok(client) = &client {
                report.warnings.extend(unverified_factors(config, verify, client));
            }
        }
        Err(error) => {
            let problem = match &error {
                ApiError::BadApiKey => {
                    "the API rejected the credentials: check [verify] api_key_sid and api_key_secret".to_owned()
                }
                other => api_problem(other),
            };
            report.errors.push(format!("{url}: {problem}"));
            report.api = json!({"url": url, "ok": false, "error": error.kind(), "message": error.to_string()});
        }
    }
}

/// At most this many users' factors are fetched (one request each).
const MAX_FACTOR_CHECKS: usize = 200;

/// A warning per mapped factor that would refuse every login: not verified (an enrolment
/// that never received its first code), or unknown to the service.
fn unverified_factors(config: &Config, verify: &VerifyConfig, client: &VerifyClient) -> Vec<String> {
    let factors: Vec<(&str, &Identity, &FactorSid)> = config
        .users
        .iter()
        .filter_map(|(name, entry)| entry.verify.as_ref().map(|v| (name.as_str(), v)))
        .flat_map(|(name, v)| v.totp_factor.iter().chain(v.push_factor.iter()).map(move |f| (name, &v.identity, f)))
        .collect();
    let mut warnings = Vec::new();
    let checked = progress::waiting("fetching the users' factors", || {
        factors
            .iter()
            .take(MAX_FACTOR_CHECKS)
            .map(|(name, identity, sid)| (name, sid, admin::fetch_factor(client, &verify.service_sid, identity, sid)))
            .collect::<Vec<_>>()
    });
    for (name, sid, result) in checked {
        let problem = match result {
            Ok(factor) if factor.verified => continue,
            Ok(_) => "is not verified (its enrolment never received the first code): every login with it fails; \
                      enroll the user again"
                .to_owned(),
            Err(ApiError::Rejected { status: 404, .. }) => "does not exist at the service".to_owned(),
            Err(error) => format!("could not be fetched ({})", api_problem(&error)),
        };
        warnings.push(format!("[users] {name}: factor {sid} {problem}"));
    }
    if factors.len() > MAX_FACTOR_CHECKS {
        warnings.push(format!("only the first {MAX_FACTOR_CHECKS} of {} factors were checked", factors.len()));
    }
    warnings
}

fn api_problem(error: &ApiError) -> String {
    match error {
        ApiError::BadApiKey => "the API rejected the API key (60001): check [api] api_key or api_key_file".to_owned(),
        ApiError::Tls(_) => format!("{error} (the server's certificate is not trusted: check [api] url and ca_file)"),
        other => other.to_string(),
    }
}

/// The fields of `app/details` worth showing, sanitised (the reply is untrusted).
fn app_summary(reply: &serde_json::Map<String, Value>) -> Value {
    let app = reply.get("app").and_then(Value::as_object);
    let field = |key: &str| app.and_then(|a| a.get(key));
    json!({
        "name": field("name").and_then(Value::as_str).map(|n| display_text(n, 80)),
        "app_id": field("app_id").and_then(Value::as_u64),
        "sms_enabled": field("sms_enabled").and_then(Value::as_bool),
        "phone_calls_enabled": field("phone_calls_enabled").and_then(Value::as_bool),
        "onetouch_enabled": field("onetouch_enabled").and_then(Value::as_bool),
    })
}

fn on_off(value: &Value) -> &'static str {
    match value.as_bool() {
        Some(true) => "on",
        Some(false) => "off",
        None => "unknown",
    }
}

fn describe_app(url: &str, app: &Value) -> String {
    let name = app["name"].as_str().unwrap_or("(unnamed)");
    let id = app["app_id"].as_u64().map_or_else(|| "unknown".to_owned(), |id| id.to_string());
    format!(
        "{url}: API key accepted by app \"{name}\" (id {id}; sms {}, calls {}, push {})",
        on_off(&app["sms_enabled"]),
        on_off(&app["phone_calls_enabled"]),
        on_off(&app["onetouch_enabled"]),
    )
}

/// The configured first method needs an add-on the app does not have.
fn method_warnings(config: &Config, app: &Value) -> Vec<String> {
    let (name, flag) = match config.auth.method {
        Method::Prompt => return Vec::new(),
        Method::Push => ("push", "onetouch_enabled"),
        Method::Sms => ("sms", "sms_enabled"),
        Method::Call => ("call", "phone_calls_enabled"),
    };
    if app[flag].as_bool() == Some(false) {
        vec![format!(
            "[auth] method = \"{name}\" but the Authy app reports {flag} = false, so that \
             method cannot work"
        )]
    } else {
        Vec::new()
    }
}
