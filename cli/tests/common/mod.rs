//! Shared support for the CLI's integration tests: run the built `pam-authy` binary against
//! an in-process sandbox, with each test's config in its own private (0700) directory.
//! Nothing here touches /etc/pam_authy or /etc/pam.d.
#![allow(dead_code)]

use authy_sandbox::{Sandbox, SandboxConfig};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

#[path = "../../../tests/common/test_dir.rs"]
mod test_dir;
// Not every test binary calls set_mode itself.
#[allow(unused_imports)]
pub use test_dir::{TestDir, set_mode};

pub const API_KEY: &str = "cli-test-key-0123456789";
pub const PHONE: &str = "555-123-4567";

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_pam-authy")
}

/// The module built next to the binary (`cargo build` uplifts the cdylib there).
pub fn module_path() -> PathBuf {
    let dir = Path::new(binary()).parent().expect("target dir");
    for candidate in [dir.join("libpam_authy.so"), dir.join("deps/libpam_authy.so")] {
        if candidate.exists() {
            return candidate;
        }
    }
    panic!("libpam_authy.so not found in {}: run `cargo build` first", dir.display());
}

/// What a run of the binary printed and how it ended.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {:?}", self.stdout))
    }

    /// The stderr lines that are not warnings or prompts: the failure reasons.
    pub fn error_lines(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| l.starts_with("pam-authy: ")).collect()
    }

    pub fn warnings(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| l.starts_with("warning: ")).collect()
    }

    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

pub fn run(args: &[&str]) -> Run {
    run_with_stdin(args, "")
}

pub fn run_with_stdin(args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(binary())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pam-authy");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    Run::from(child.wait_with_output().expect("wait"))
}

pub fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).expect("stat").mode() & 0o7777
}

pub fn owner_of(path: &Path) -> (u32, u32) {
    let meta = std::fs::symlink_metadata(path).expect("stat");
    (meta.uid(), meta.gid())
}

/// The CLI tests' own uses of their directory.
impl TestDir {
    pub fn config_arg(&self) -> String {
        self.config_path().display().to_string()
    }

    pub fn config_text(&self) -> String {
        std::fs::read_to_string(self.config_path()).expect("read config")
    }

    /// Files other than the ones the test wrote: leftovers of an edit.
    pub fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(self.path())
            .expect("readdir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect()
    }

    /// Writes `pam.d/<service>` with the built module reading this directory's config.
    pub fn service(&self, service: &str) {
        let text = format!(
            "auth required {} config={}\naccount required pam_permit.so\n",
            module_path().display(),
            self.config_path().display()
        );
        std::fs::write(self.confdir().join(service), text).expect("write service");
    }

    /// Runs `pam-authy SUBCOMMAND --config <this config> ARGS...`.
    pub fn cli(&self, subcommand: &str, args: &[&str]) -> Run {
        let config = self.config_arg();
        let mut all = vec![subcommand, "--config", config.as_str()];
        all.extend_from_slice(args);
        run(&all)
    }
}

pub fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig { api_key: API_KEY.into(), ..SandboxConfig::default() }).expect("start sandbox")
}

/// The `[api]` section for `sandbox`, with its CA written into `dir`.
pub fn api_section(dir: &TestDir, sandbox: &Sandbox) -> String {
    let ca = dir.write("ca.pem", &sandbox.ca_pem(), 0o644);
    format!(
        "[api]\nurl = \"{}\"\napi_key = \"{}\"\nca_file = \"{}\"\ntimeout_secs = 5\n",
        sandbox.url(),
        sandbox.api_key(),
        ca.display()
    )
}

/// A config for `sandbox` with extra sections after `[api]`.
pub fn config_for(dir: &TestDir, sandbox: &Sandbox, rest: &str) -> String {
    format!("{}\n{rest}", api_section(dir, sandbox))
}

/// The user running the tests; it exists in NSS, which the module requires.
pub fn current_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::geteuid()).expect("getpwuid").expect("passwd entry").name
}

/// The API paths the sandbox received, in order.
pub fn paths(sandbox: &Sandbox) -> Vec<String> {
    sandbox.requests().into_iter().map(|r| format!("{} {}", r.method, r.raw_path)).collect()
}

/// A `backend = "verify"` config for `sandbox` (its default service and API key) with
/// `rest` after the `[verify]` table.
pub fn verify_config_for(dir: &TestDir, sandbox: &Sandbox, rest: &str) -> String {
    let account = sandbox.verify_account();
    let ca = dir.write("ca.pem", &sandbox.ca_pem(), 0o644);
    format!(
        "[api]\nbackend = \"verify\"\nurl = \"{}\"\nca_file = \"{}\"\ntimeout_secs = 5\n\n\
         [verify]\nservice_sid = \"{}\"\napi_key_sid = \"{}\"\napi_key_secret = \"{}\"\n\n{rest}",
        sandbox.url(),
        ca.display(),
        account.service_sid,
        account.api_key_sid,
        account.api_key_secret,
    )
}

/// The code an authenticator shows now (sandbox clock) for an otpauth URI of SHA-1, 6 digits,
/// 30 s: what a user would type after scanning it.
pub fn code_for_uri(sandbox: &Sandbox, uri: &str) -> String {
    let secret = uri
        .split(['?', '&'])
        .find_map(|part| part.strip_prefix("secret="))
        .unwrap_or_else(|| panic!("no secret in {uri}"));
    let bytes = totp_rs::Secret::try_from_base32(secret).expect("base32 secret").as_bytes().to_vec();
    let totp = totp_rs::Builder::new().with_digits(6).with_step_duration(30).with_secret(bytes).build().expect("totp");
    totp.generate(sandbox.now_unix()).to_string()
}

/// A run that answers what the program asks once it has shown an otpauth URI.
pub struct Interactive {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Interactive {
    pub fn start(args: &[&str]) -> Interactive {
        use std::io::BufRead;
        let mut child = Command::new(binary())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pam-authy");
        let (send, lines) = std::sync::mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        for (tag, stream) in [("out", Box::new(out) as Box<dyn std::io::Read + Send>), ("err", Box::new(err))] {
            let send = send.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if send.send(format!("{tag}:{line}")).is_err() {
                        break;
                    }
                }
            });
        }
        Interactive { child, lines, seen: Vec::new() }
    }

    /// Waits (at most 30 s) for the next otpauth URI, on stdout or stderr.
    pub fn uri(&mut self) -> Option<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            let Ok(line) = self.lines.recv_timeout(left) else { return None };
            self.seen.push(line.clone());
            if let Some(at) = line.find("otpauth://") {
                return Some(line[at..].to_owned());
            }
        }
        None
    }

    pub fn type_line(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        stdin.write_all(format!("{text}\n").as_bytes()).expect("write stdin");
        stdin.flush().expect("flush");
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Closes stdin and collects the rest of the output.
    pub fn finish(mut self) -> Run {
        drop(self.child.stdin.take());
        self.wait_for_exit()
    }

    /// Collects the rest of the output, stdin left open until the program has ended.
    pub fn wait_for_exit(mut self) -> Run {
        // `Child::wait` closes the stdin it still holds; this one stays open until the end.
        let _stdin = self.child.stdin.take();
        let status = self.child.wait().expect("wait");
        let mut stdout = String::new();
        let mut stderr = String::new();
        for line in self.seen.iter().cloned().chain(self.lines.iter()) {
            let (target, text) = match line.split_once(':') {
                Some(("out", text)) => (&mut stdout, text.to_owned()),
                Some((_, text)) => (&mut stderr, text.to_owned()),
                None => continue,
            };
            target.push_str(&text);
            target.push('\n');
        }
        Run { code: status.code(), stdout, stderr }
    }
}
