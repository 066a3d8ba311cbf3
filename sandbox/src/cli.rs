//! The `authy-sandbox` command line (also offered as `pam-authy sandbox` through
//! [`run_cli`]).
//!
//! A tiny hand-written parser (no clap, to keep the dependency tree small), then one
//! `key=value` line per fact on stdout so shell scripts can `grep`/`sed` what they need, then
//! serve until SIGTERM, SIGINT or SIGHUP, after which the private temporary directory that
//! holds the CA (when no `--tls-dir` is given) is removed. Usage errors go to stderr with exit
//! status 2.

use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use nix::sys::signal::{SigSet, Signal};

use crate::{Sandbox, SandboxConfig};

const USAGE: &str = "\
usage: authy-sandbox [--listen ADDR] [--control ADDR] [--state FILE] [--tls-dir DIR]
                     [--api-key KEY | --api-key-file FILE] [--normalize-dot-segments]
                     [--totp-digits N] [--totp-period SECS] [--user NAME:EMAIL:PHONE:CC ...]

Serves an imitation of the Authy API over HTTPS until SIGTERM or SIGINT. Prints, one per line:
  listen=ADDR              the address the API is bound to (a wildcard is also warned about)
  url=https://...          the API base URL to use from this host
  control_url=http://...   the control interface (with --control)
  control_token=TOKEN      send it as `Authorization: Bearer TOKEN` (with --control)
  ca_file=PATH             the CA certificate a client must trust
  api_key=KEY              the accepted API key (random unless given)
  verify_url=https://...   the Verify API origin (paths start with /v2)
  verify_service_sid=VA... the Verify service that exists from the start
  verify_api_key_sid=SK... with verify_api_key_secret: Basic-auth user and password
  verify_api_key_secret=S  (random)
  verify_account_sid=AC... with verify_auth_token: the other accepted pair
  verify_auth_token=T      (random)
  user=NAME authy_id=N     one line per --user
  ready
Defaults: --listen 127.0.0.1:0 (ephemeral port), no control interface, no state file,
certificates generated in memory (the CA is written to a private temporary directory for
ca_file, removed when the sandbox stops).";

/// Parsed command line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Options {
    pub listen: Option<SocketAddr>,
    pub control: Option<SocketAddr>,
    pub state: Option<PathBuf>,
    pub tls_dir: Option<PathBuf>,
    pub api_key: Option<String>,
    pub api_key_file: Option<PathBuf>,
    pub normalize: bool,
    pub totp_digits: Option<u32>,
    pub totp_period: Option<u64>,
    pub users: Vec<CliUser>,
    pub help: bool,
}

/// One `--user NAME:EMAIL:PHONE:CC`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CliUser {
    pub name: String,
    pub email: String,
    pub phone: String,
    pub country_code: u32,
}

fn parse_user(spec: &str) -> Result<CliUser, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let [name, email, phone, cc] = parts.as_slice() else {
        return Err(format!("--user wants NAME:EMAIL:PHONE:CC, got {spec:?}"));
    };
    let country_code = cc
        .trim_start_matches('+')
        .parse::<u32>()
        .ok()
        .filter(|c| *c > 0)
        .ok_or_else(|| format!("--user {spec:?}: country code must be a positive number"))?;
    if name.is_empty() || !phone.chars().any(|c| c.is_ascii_digit()) {
        return Err(format!("--user {spec:?}: name and phone are required"));
    }
    Ok(CliUser { name: (*name).to_owned(), email: (*email).to_owned(), phone: (*phone).to_owned(), country_code })
}

/// Parses arguments (without the program name). Accepts `--opt VALUE` and `--opt=VALUE`.
pub(crate) fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it.next().cloned().ok_or(format!("{name} needs a value")),
            }
        };
        let addr = |name: &str, v: String| -> Result<SocketAddr, String> {
            v.parse().map_err(|_| format!("{name}: {v:?} is not an IP:PORT address"))
        };
        match flag {
            "-h" | "--help" => o.help = true,
            "--listen" => o.listen = Some(addr(flag, value(flag)?)?),
            "--control" => o.control = Some(addr(flag, value(flag)?)?),
            "--state" => o.state = Some(PathBuf::from(value(flag)?)),
            "--tls-dir" => o.tls_dir = Some(PathBuf::from(value(flag)?)),
            "--api-key" => o.api_key = Some(value(flag)?),
            "--api-key-file" => o.api_key_file = Some(PathBuf::from(value(flag)?)),
            "--normalize-dot-segments" if inline.is_none() => o.normalize = true,
            "--totp-digits" => {
                let v = value(flag)?;
                o.totp_digits = Some(v.parse().map_err(|_| format!("{flag}: bad number {v:?}"))?);
            }
            "--totp-period" => {
                let v = value(flag)?;
                o.totp_period = Some(v.parse().map_err(|_| format!("{flag}: bad number {v:?}"))?);
            }
            "--user" => o.users.push(parse_user(&value(flag)?)?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if o.api_key.is_some() && o.api_key_file.is_some() {
        return Err("give --api-key or --api-key-file, not both".to_owned());
    }
    Ok(o)
}

/// Writes the CA into a fresh private directory (mode 0700, random name, created exclusively)
/// under the temporary directory; the file itself is created exclusively, so nothing planted
/// can redirect the write. Dropping the returned directory removes both.
fn write_private_ca(ca_pem: &str) -> io::Result<(tempfile::TempDir, PathBuf)> {
    let dir = tempfile::Builder::new().prefix("authy-sandbox.").tempdir()?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
    let path = dir.path().join("ca.pem");
    write_new_file(&path, ca_pem)?;
    Ok((dir, path))
}

fn write_new_file(path: &Path, text: &str) -> io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// The signals that stop the sandbox in order; they are blocked in every thread and taken
/// with `sigwait` by the serving thread, so cleanup runs in ordinary code.
fn stop_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        set.add(s);
    }
    set
}

/// Runs the sandbox command line: `args` are the arguments *after* the program name.
/// Returns an exit status on `--help` (0), a usage error (2) or a start failure (1);
/// otherwise serves until SIGTERM, SIGINT or SIGHUP, cleans up and returns 0.
pub fn run_cli(args: Vec<String>) -> i32 {
    let opts = match parse_args(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("authy-sandbox: {e}\n\n{USAGE}");
            return 2;
        }
    };
    if opts.help {
        println!("{USAGE}");
        return 0;
    }
    let api_key = match (&opts.api_key, &opts.api_key_file) {
        (Some(k), _) => k.clone(),
        (None, Some(f)) => match std::fs::read_to_string(f) {
            Ok(k) => k.trim().to_owned(),
            Err(e) => {
                eprintln!("authy-sandbox: cannot read {}: {e}", f.display());
                return 1;
            }
        },
        (None, None) => match crate::store::secret_bytes::<16>() {
            Ok(b) => crate::store::hex(&b),
            Err(e) => {
                eprintln!("authy-sandbox: cannot make an API key: {e}");
                return 1;
            }
        },
    };
    let mut verify = crate::default_verify_account();
    match (crate::verify::new_secret(), crate::verify::new_secret()) {
        (Ok(token), Ok(secret)) => (verify.auth_token, verify.api_key_secret) = (token, secret),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("authy-sandbox: cannot make the Verify secrets: {e}");
            return 1;
        }
    }
    let mut config = SandboxConfig {
        api_key,
        verify,
        control_listen: opts.control,
        state_file: opts.state.clone(),
        tls_dir: opts.tls_dir.clone(),
        normalize_dot_segments: opts.normalize,
        ..SandboxConfig::default()
    };
    if let Some(l) = opts.listen {
        config.listen = l;
    }
    if let Some(d) = opts.totp_digits {
        config.totp_digits = d;
    }
    if let Some(p) = opts.totp_period {
        config.totp_period_secs = p;
    }
    // Before any thread starts, so that every sandbox thread inherits the blocked mask.
    let signals = stop_signals();
    if let Err(e) = signals.thread_block() {
        eprintln!("authy-sandbox: cannot block the stop signals: {e}");
        return 1;
    }
    let sandbox = match Sandbox::start(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("authy-sandbox: cannot start: {e}");
            return 1;
        }
    };
    let (_ca_dir, ca_file) = match &opts.tls_dir {
        Some(dir) => (None, dir.join("ca.pem")),
        None => match write_private_ca(&sandbox.ca_pem()) {
            Ok((dir, path)) => (Some(dir), path),
            Err(e) => {
                eprintln!("authy-sandbox: cannot write the CA to a private temporary directory: {e}");
                return 1;
            }
        },
    };
    let bound = sandbox.bound_addr();
    if bound.ip().is_unspecified() {
        eprintln!(
            "authy-sandbox: warning: the API listens on every interface ({bound}), not only on loopback: \
             other hosts can reach it"
        );
    }
    let mut lines = vec![format!("listen={bound}"), format!("url={}", sandbox.url())];
    if let Some(c) = sandbox.control_url() {
        lines.push(format!("control_url={c}"));
        lines.push(format!("control_token={}", sandbox.control_token()));
    }
    lines.push(format!("ca_file={}", ca_file.display()));
    lines.push(format!("api_key={}", sandbox.api_key()));
    let va = sandbox.verify_account();
    lines.push(format!("verify_url={}", sandbox.url()));
    lines.push(format!("verify_service_sid={}", va.service_sid));
    lines.push(format!("verify_api_key_sid={}", va.api_key_sid));
    lines.push(format!("verify_api_key_secret={}", va.api_key_secret));
    lines.push(format!("verify_account_sid={}", va.account_sid));
    lines.push(format!("verify_auth_token={}", va.auth_token));
    for u in &opts.users {
        let id = sandbox.add_user(&u.email, &u.phone, u.country_code);
        lines.push(format!("user={} authy_id={id}", u.name));
    }
    lines.push("ready".to_owned());
    {
        let mut out = io::stdout().lock();
        for l in &lines {
            if writeln!(out, "{l}").is_err() {
                return 1;
            }
        }
        let _ = out.flush();
    }
    // Serve until a stop signal; the state file is always written atomically, so even
    // SIGKILL loses nothing but the temporary CA directory.
    let _ = signals.wait();
    drop(sandbox);
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn parses_every_option() {
        let o = parse_args(&args(&[
            "--listen",
            "127.0.0.1:8443",
            "--control=127.0.0.1:8444",
            "--state",
            "/tmp/s.json",
            "--tls-dir",
            "/tmp/tls",
            "--api-key",
            "k",
            "--normalize-dot-segments",
            "--totp-digits",
            "6",
            "--user",
            "alice:alice@example.com:555-123-4567:1",
        ]))
        .expect("parse");
        assert_eq!(o.listen, Some("127.0.0.1:8443".parse().expect("addr")));
        assert_eq!(o.control, Some("127.0.0.1:8444".parse().expect("addr")));
        assert!(o.normalize);
        assert_eq!(o.totp_digits, Some(6));
        assert_eq!(o.users[0].name, "alice");
        assert_eq!(o.users[0].country_code, 1);
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            &["--listen"][..],
            &["--listen", "nowhere"],
            &["--bogus"],
            &["--user", "a:b:c"],
            &["--user", "a:b:555:x"],
            &["--api-key", "a", "--api-key-file", "f"],
            &["--normalize-dot-segments=yes"],
        ] {
            assert!(parse_args(&args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn usage_errors_exit_2_and_help_exits_0() {
        assert_eq!(run_cli(args(&["--bogus"])), 2);
        assert_eq!(run_cli(args(&["--help"])), 0);
    }
}
