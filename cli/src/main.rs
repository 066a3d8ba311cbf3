//! `pam-authy`: the admin CLI of pam_authy. It reuses the module's own config parser, client
//! and types, so what it reports is what the module will do. Each subcommand exits 0 on
//! success and otherwise prints one line `pam-authy: REASON` on stderr and exits 1 (2 for a
//! usage error); `--json` puts one JSON object with an `ok` field on stdout.

mod account;
mod check;
mod confedit;
mod demo;
mod interrupt;
mod migrate;
mod offline;
mod pamtest;
mod progress;
mod support;
mod verify_account;

use clap::{Args, CommandFactory, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use support::Exit;

#[derive(Parser)]
#[command(
    name = "pam-authy",
    version,
    about = "Administer and try the pam_authy PAM module",
    long_about = "Administer and try the pam_authy PAM module: check its configuration, \
                  enroll users with Authy or Twilio Verify, give them an offline TOTP secret, and run a real \
                  PAM authentication. It uses the module's own config parser and API client, \
                  so what it reports is what the module will do.\n\n\
                  Exit status: 0 on success, 1 on failure (with a one-line reason on stderr), \
                  2 on a usage error."
)]
struct Cli {
    /// The module's config file, read by check, enroll, status, remove, migrate and offline-enroll
    /// [default: /etc/pam_authy/pam_authy.toml]. Refused by test, demo and sandbox.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Before the command: the same as the command's own --json.
    #[arg(long = "json")]
    json_first: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct JsonFlag {
    /// Print one JSON object on stdout (with "ok": true or false) instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the config exactly as the module does, then prove URL, TLS and API key.
    ///
    /// Loads the config with the module's own checks (owner, mode, symlinks, unknown keys,
    /// values), runs what a login finds out only at run time with the module's own functions
    /// (groups exist, state_dir is trustworthy, ca_file parses; also with --no-api), calls the
    /// API's app/details with the module's own client, and warns about
    /// With backend = "verify" it fetches the Verify service instead, then each mapped factor,
    /// and warns about factors that are not verified or do not exist. It warns about
    /// risky settings: failmode = "safe", unmapped_users = "ignore", users without an
    /// offline secret under failmode = "secure", a plain-HTTP proxy. Problems are printed one
    /// per line on stderr; warnings start with "warning:". Exits 1 if there is any problem.
    Check {
        /// Trust only the config's ca_file for the API call, not the system's CA bundle.
        #[arg(long)]
        strict_ca: bool,
        /// Check the config file only; make no network request.
        #[arg(long)]
        no_api: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Enroll USER with the configured backend and map USER to it in [users].
    ///
    /// Authy: registers USER (users/new, needs --email, --phone and --country-code) and maps
    /// the new Authy ID. Verify: creates an entity with a random identity (never the user
    /// name) and a TOTP factor, shows its otpauth URI as a QR code, asks for the first code
    /// from the user's app (up to 3 tries, from the terminal or stdin), and maps the user only
    /// once the factor is verified; an abandoned enrolment (end of input, ^C, 3 wrong codes)
    /// deletes the factor again and maps nothing. The config (or the --drop-in file) keeps
    /// its comments and layout; it is replaced atomically with the same owner and mode, and
    /// only if the result passes the module's checks.
    Enroll {
        /// The Unix account to protect.
        user: String,
        /// Authy only: the user's email address, sent to Authy.
        #[arg(long, value_name = "EMAIL")]
        email: Option<String>,
        /// Authy: the cellphone number without the country code (4 to 15 digits, with
        /// spaces, dots or dashes). Verify: the number in E.164 (+15551234567), which adds
        /// SMS and voice codes (the user's phone key).
        #[arg(long, value_name = "PHONE")]
        phone: Option<String>,
        /// Authy only: the phone's country calling code, e.g. 1 or +44.
        #[arg(long, value_name = "CODE", value_parser = parse_country_code)]
        country_code: Option<u16>,
        /// Verify only: also write the QR code as a PNG image to this new file (mode 0600).
        #[arg(long, value_name = "FILE")]
        png: Option<PathBuf>,
        /// Print the [users] line instead of editing the config (the enrolment itself still
        /// happens at the API).
        #[arg(long, conflicts_with = "drop_in")]
        print: bool,
        /// Write the mapping into the drop-in users.d/NAME.toml beside the config (created
        /// root-owned, mode 0600, when missing) instead of the main file.
        #[arg(long = "drop-in", value_name = "NAME")]
        drop_in: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Show what the API knows about USER.
    ///
    /// Authy: users/{id}/status (registered, confirmed, devices). Verify: each factor's
    /// status (verified or not) and friendly name; the phone is shown masked. Both name the
    /// file that maps USER (the config or a users.d drop-in).
    Status {
        /// A Unix account mapped in [users].
        user: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Remove USER at the API and from [users] in the config.
    ///
    /// Authy: users/{id}/remove. Verify: deletes the user's factors and entity. The line goes
    /// from the file that holds it, the config or a users.d drop-in. If the API
    /// no longer knows them (404), the stale mapping is removed with a warning. With
    /// unmapped_users = "ignore", a removed user logs in without a second factor.
    Remove {
        /// A Unix account mapped in [users].
        user: String,
        /// Only remove the mapping; leave the user (Authy) or the factors (Verify) at the API.
        #[arg(long)]
        keep_remote: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Move users of an Authy-backed config to Verify, then switch the backend.
    ///
    /// Needs a [verify] table in the config (service_sid, api_key_sid, api_key_secret_file),
    /// which logins ignore while backend = "authy". A dry run by default: it says what it
    /// would do for each chosen user. With --apply it enrols each chosen user at Verify (a QR
    /// code to scan and the first code, as `enroll` does, or the user's exported Authy TOTP
    /// seed from --secrets-from as the factor's secret, verified without asking), writes
    /// verify_identity and totp_factor next to the user's authy_id (in the config or the
    /// users.d drop-in that maps the user), and switches [api]
    /// backend to "verify" only once every user of the config has a verified Verify factor.
    /// Logins keep using Authy until then; the Authy IDs and key stay for a rollback. Prints
    /// per user: migrated, skipped (why), failed (why); exits 1 if any failed.
    Migrate {
        /// The one user to migrate (a Unix account mapped in [users]).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        user: Option<String>,
        /// Migrate every user of the config.
        #[arg(long)]
        all: bool,
        /// Do it: without it, nothing is sent or written.
        #[arg(long)]
        apply: bool,
        /// A TOML file of `user = "BASE32"` lines: TOTP seeds exported from Authy, each
        /// becoming that user's Verify factor secret (owned by root, mode 0600).
        #[arg(long, value_name = "FILE")]
        secrets_from: Option<PathBuf>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Give USER a new offline TOTP secret and show it as an otpauth:// URI and a QR code.
    ///
    /// The secret is 160 random bits, stored as base32 in USER's [users] entry; the module
    /// accepts its codes when the API cannot be reached. Scan the QR code into the Authy app
    /// or any authenticator. Digits and period come from the config's [offline] section.
    /// USER must already be mapped. On a terminal the QR code is drawn black on white.
    #[command(name = "offline-enroll")]
    OfflineEnroll {
        /// A Unix account mapped in [users].
        user: String,
        /// Also write the QR code as a PNG image to this new file (created with mode 0600).
        #[arg(long, value_name = "FILE")]
        png: Option<PathBuf>,
        /// Replace an existing offline secret (the old one stops working).
        #[arg(long, conflicts_with = "show")]
        replace: bool,
        /// Say whether USER has an offline secret, without printing it or changing anything.
        #[arg(long)]
        show: bool,
        /// With --show: print the existing secret's URI and QR code.
        #[arg(long, requires = "show")]
        reveal: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Run a real PAM authentication for USER and print the PAM result.
    ///
    /// Runs the system's /etc/pam.d/SERVICE stack, or SERVICE in --confdir, through libpam,
    /// exactly as an application such as sshd would, and asks you for what the modules
    /// prompt (from the terminal with echo off for secrets, or from stdin when it is not a
    /// terminal). The safe way to try a stack before logging out. Exits 0 only on
    /// PAM_SUCCESS.
    Test {
        /// The account to authenticate.
        user: String,
        /// The PAM service (stack file name) to run.
        #[arg(long, value_name = "NAME", default_value = pamtest::DEFAULT_SERVICE)]
        service: String,
        /// Read the stack from this directory instead of /etc/pam.d (needs Linux-PAM 1.4 or
        /// later, which has pam_start_confdir).
        #[arg(long, value_name = "DIR")]
        confdir: Option<PathBuf>,
        /// Set PAM_RHOST, the remote host the login seems to come from.
        #[arg(long, value_name = "HOST")]
        rhost: Option<String>,
        /// Set PAM_TTY, the terminal the login seems to come from.
        #[arg(long, value_name = "NAME")]
        tty: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Start a local sandbox API and log in through real libpam with the built module.
    ///
    /// Needs Linux-PAM 1.4 or later (pam_start_confdir): older libpams (RHEL 8, Ubuntu
    /// 20.04, Amazon Linux 2) only run stacks from /etc/pam.d; use `test` there.
    Demo {
        /// Answer the prompt with the sandbox's token and print the PAM result.
        #[arg(long)]
        auto: bool,
        /// The pam_authy.so to load (default: next to this program, then the system's).
        #[arg(long, value_name = "PATH")]
        module: Option<PathBuf>,
        /// The API the sandbox speaks and the module uses: the Authy API or Twilio Verify.
        #[arg(long, value_enum, default_value = "authy")]
        backend: demo::DemoBackend,
    },
    /// Run the local Authy-compatible sandbox API (same options as `authy-sandbox`).
    #[command(disable_help_flag = true)]
    Sandbox {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "ARGS")]
        args: Vec<String>,
    },
}

fn parse_country_code(text: &str) -> Result<u16, String> {
    text.strip_prefix('+')
        .unwrap_or(text)
        .parse::<u16>()
        .ok()
        .filter(|code| (1..=999).contains(code))
        .ok_or_else(|| "a country calling code is a number from 1 to 999".to_owned())
}

/// Ends the program with a usage error when an option was given to a command it does not
/// apply to, instead of silently ignoring it.
fn refuse_meaningless_options(cli: &Cli) {
    let name = match &cli.command {
        Command::Test { .. } => "test",
        Command::Demo { .. } => "demo",
        Command::Sandbox { .. } => "sandbox",
        _ => return,
    };
    let why = if cli.config.is_some() {
        match name {
            "test" => "--config does not apply to test: the PAM stack names the module's config (its config= argument)",
            _ => "--config does not apply to demo or sandbox: they make their own temporary config",
        }
    } else if cli.json_first && name != "test" {
        "--json does not apply to demo or sandbox"
    } else {
        return;
    };
    Cli::command().error(clap::error::ErrorKind::ArgumentConflict, why).exit();
}

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    refuse_meaningless_options(&cli);
    if let Command::Sandbox { args } = cli.command {
        let code = authy_sandbox::run_cli(args);
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let json = match &mut cli.command {
        Command::Check { json, .. }
        | Command::Enroll { json, .. }
        | Command::Status { json, .. }
        | Command::Remove { json, .. }
        | Command::OfflineEnroll { json, .. }
        | Command::Migrate { json, .. }
        | Command::Test { json, .. } => {
            json.json |= cli.json_first;
            json.json
        }
        Command::Demo { .. } | Command::Sandbox { .. } => false,
    };
    match run(cli.config.as_deref(), cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Exit::Reported) => ExitCode::FAILURE,
        Err(Exit::ReportedWithReason(message)) => {
            support::print_failure(&message);
            ExitCode::FAILURE
        }
        Err(Exit::Failed(message)) => {
            if json {
                support::print_json(&serde_json::json!({"ok": false, "error": message}));
            }
            support::print_failure(&message);
            ExitCode::FAILURE
        }
    }
}

fn run(config: Option<&Path>, command: Command) -> support::Outcome {
    let path = || support::config_path(config);
    match command {
        Command::Check { strict_ca, no_api, json } => {
            check::run(&path()?, &check::CheckArgs { json: json.json, strict_ca, no_api })
        }
        Command::Enroll { user, email, phone, country_code, png, print, drop_in, json } => account::enroll(
            &path()?,
            &account::EnrollArgs { user, email, phone, country_code, png, print, drop_in, json: json.json },
        ),
        Command::Status { user, json } => account::status(&path()?, &user, json.json),
        Command::Remove { user, keep_remote, json } => account::remove(&path()?, &user, keep_remote, json.json),
        Command::OfflineEnroll { user, png, replace, show, reveal, json } => {
            offline::run(&path()?, &offline::OfflineArgs { user, png, replace, show, reveal, json: json.json })
        }
        Command::Migrate { user, all, apply, secrets_from, json } => {
            migrate::run(&path()?, &migrate::MigrateArgs { user, all, apply, secrets_from, json: json.json })
        }
        Command::Test { user, service, confdir, rhost, tty, json } => {
            pam_harness::terminal::restore_on_signals();
            pamtest::run(&pamtest::TestArgs { user, service, confdir, rhost, tty, json: json.json })
        }
        Command::Demo { auto, module, backend } => {
            pam_harness::terminal::restore_on_signals();
            demo::run(auto, module, backend).map_err(Exit::Failed)
        }
        // Run by `main` before this point, so that its exit status passes through unchanged.
        Command::Sandbox { .. } => Ok(()),
    }
}
