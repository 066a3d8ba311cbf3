//! Support for the end-to-end tests: the shipped `pam.d-examples` under the real OpenSSH
//! sshd, sudo, su and login. It makes throwaway users, a private copy of the host's
//! /etc/pam.d with one example installed, private mount namespaces in which that copy is
//! bind-mounted over /etc/pam.d, one sshd per test on a loopback port, an askpass that
//! answers by prompt, an `expect`-driven pty, and timing lines. Root only.
//!
//! It must leave nothing behind on the host: users are removed and processes killed (by
//! pid) in Drop guards, so a failing test cleans up too; mounts exist only inside
//! namespaces that die with the process they were made for. The one lasting change is
//! /run/sshd, the directory OpenSSH's own tmpfiles rule creates at boot.

// Tests measure wall time; the module's clock rule is for src/.
#![allow(clippy::disallowed_methods, dead_code)]

use crate::common::{self, TestDir};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

/// The directory of the shipped examples.
pub const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/pam.d-examples");

/// What a login prints when the session really ran: `echo E2E_LOGIN_$((6*7))` expands to
/// it only in a shell, so a pty echo of the typed command never matches.
pub const LOGIN_MARKER: &str = "E2E_LOGIN_42";
pub const LOGIN_COMMAND: &str = "echo E2E_LOGIN_$((6*7))";

pub fn example(name: &str) -> PathBuf {
    Path::new(EXAMPLES).join(name)
}

/// True, or the test fails: the end-to-end tests are ignored (with the reason) unless root
/// built them, and missing programs are a failure, not a skip: CI must not pass by skipping.
pub fn enabled(test: &str) -> bool {
    common::require_root();
    let _ = test;
    static TOOLS: OnceLock<Vec<String>> = OnceLock::new();
    let missing = TOOLS.get_or_init(|| {
        [
            "/usr/sbin/sshd",
            "ssh",
            "ssh-keygen",
            "sudo",
            "su",
            "login",
            "expect",
            "setpriv",
            "setsid",
            "unshare",
            "useradd",
            "userdel",
            "groupadd",
            "groupdel",
            "usermod",
            "chpasswd",
            "pam-auth-update",
        ]
        .iter()
        .filter(|tool| {
            !Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success())
        })
        .map(|tool| (*tool).to_owned())
        .collect()
    });
    assert!(missing.is_empty(), "not installed: {}; run scripts/install-deps", missing.join(", "));
    true
}

/// A name no other test, run or host account uses: `prefix` and 8 random hex digits.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    format!("{prefix}{:08x}", hasher.finish() as u32)
}

/// One login's wall time, printed as `e2e-timing <test> <what> <ms>` and appended to the
/// file named by PAM_AUTHY_E2E_TIMINGS, if set, so runs can be compared.
pub fn report_timing(test: &str, what: &str, elapsed: Duration) {
    let line = format!("e2e-timing {test} {what} {}", elapsed.as_millis());
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("PAM_AUTHY_E2E_TIMINGS") {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path);
        if let Ok(mut file) = file {
            let _ = writeln!(file, "{line}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Throwaway users

/// useradd and userdel lock /etc/passwd; parallel tests take turns.
static USER_DB: Mutex<()> = Mutex::new(());

fn user_db_command(program: &str, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let _turn = USER_DB.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut last = None;
    for _ in 0..20 {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).expect("write stdin");
        }
        drop(input);
        let output = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&output.stderr);
        // Another program (outside this process) may hold the lock, or a session of the
        // user may still be ending: try again shortly.
        let transient = stderr.contains("lock") || stderr.contains("currently used by process");
        if output.status.success() || !transient {
            return output;
        }
        last = Some(output);
        std::thread::sleep(Duration::from_millis(100));
    }
    last.expect("at least one attempt")
}

/// A Unix account made for one test (`useradd -m`) and removed with its home by Drop.
pub struct TestUser {
    pub name: String,
    pub home: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub password: Option<String>,
}

impl TestUser {
    /// A user whose password is locked (as after `useradd`): key logins only.
    pub fn create() -> TestUser {
        let name = unique("pa2fa_");
        let output = user_db_command("useradd", &["-m", "-s", "/bin/sh", "-c", "pam_authy e2e test", &name], None);
        assert!(output.status.success(), "useradd {name}: {}", String::from_utf8_lossy(&output.stderr));
        let entry = nix::unistd::User::from_name(&name).expect("getpwnam").expect("the new user exists");
        TestUser { name, home: entry.dir, uid: entry.uid.as_raw(), gid: entry.gid.as_raw(), password: None }
    }

    /// A user with a random password, for the stacks that ask for it.
    pub fn with_password() -> TestUser {
        let mut user = TestUser::create();
        // Never ending in digits: one-prompt mode reads trailing digits as the code, so a
        // password like `Pw-e2ea1234567` alone would rightly go to the API as one.
        let password = format!("Pw-{}.", unique("e2e"));
        let output = user_db_command("chpasswd", &[], Some(&format!("{}:{password}\n", user.name)));
        assert!(output.status.success(), "chpasswd: {}", String::from_utf8_lossy(&output.stderr));
        user.password = Some(password);
        user
    }

    pub fn password(&self) -> &str {
        self.password.as_deref().expect("this user was made with a password")
    }

    /// Installs `public_key` as the user's only authorized key (700/600, owned by the user,
    /// as sshd's StrictModes wants).
    pub fn authorize_key(&self, public_key: &Path) {
        let ssh = self.home.join(".ssh");
        std::fs::create_dir_all(&ssh).expect("mkdir .ssh");
        let keys = ssh.join("authorized_keys");
        std::fs::copy(public_key, &keys).expect("copy key");
        for (path, mode) in [(&ssh, 0o700), (&keys, 0o600)] {
            common::set_mode(path, mode);
            std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid)).expect("chown");
        }
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let output = user_db_command("userdel", &["-r", &self.name], None);
        let stderr = String::from_utf8_lossy(&output.stderr);
        // userdel -r warns about a missing mail spool; anything else is worth seeing.
        if !output.status.success() && !stderr.contains("mail spool") {
            eprintln!("warning: userdel -r {} failed: {stderr}", self.name);
        }
    }
}

/// A group made for one test (`groupadd`), whose members are given at creation, removed by
/// Drop. The break-glass tests use it in place of the examples' `pam_authy-exempt`, so that
/// parallel tests never share a host group.
pub struct TestGroup {
    pub name: String,
}

impl TestGroup {
    pub fn with_members(members: &[&TestUser]) -> TestGroup {
        let name = unique("pa2fa_g");
        let output = user_db_command("groupadd", &[&name], None);
        assert!(output.status.success(), "groupadd {name}: {}", String::from_utf8_lossy(&output.stderr));
        let group = TestGroup { name };
        for member in members {
            let output = user_db_command("usermod", &["-a", "-G", &group.name, &member.name], None);
            assert!(output.status.success(), "usermod: {}", String::from_utf8_lossy(&output.stderr));
        }
        group
    }
}

impl Drop for TestGroup {
    fn drop(&mut self) {
        let output = user_db_command("groupdel", &[&self.name], None);
        if !output.status.success() {
            eprintln!("warning: groupdel {} failed: {}", self.name, String::from_utf8_lossy(&output.stderr));
        }
    }
}

/// A new ed25519 key pair `dir/name` and `dir/name.pub`, without a passphrase.
pub fn key_pair(dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(name);
    let output = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen");
    assert!(output.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&output.stderr));
    key
}

// ---------------------------------------------------------------------------------------
// The PAM stacks

/// Rewrites the module reference of every non-comment line that loads `pam_authy.so`: the
/// examples name the installed module and its default config, the tests load the module
/// they just built with their own config. Nothing else of the example changes.
pub fn point_at_test_module(text: &str, config: &Path) -> String {
    let module = common::module_path();
    let mut rewritten = 0;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let code = line.split('#').next().unwrap_or("");
            if line.trim_start().starts_with('#') || !code.split_whitespace().any(|word| word == "pam_authy.so") {
                return line.to_owned();
            }
            rewritten += 1;
            line.replacen("pam_authy.so", &format!("{} config={}", module.display(), config.display()), 1)
        })
        .collect();
    assert!(rewritten > 0, "no line loads pam_authy.so:\n{text}");
    lines.join("\n") + "\n"
}

/// `dir`'s confdir becomes a copy of the host's /etc/pam.d in which the example file
/// `example` is installed as `service`, pointed at the built module and `dir`'s config.
pub fn install_example(dir: &TestDir, service: &str, example_name: &str) -> PathBuf {
    let confdir = dir.confdir();
    let output = Command::new("cp").arg("-a").arg("/etc/pam.d/.").arg(&confdir).output().expect("cp");
    assert!(output.status.success(), "copy /etc/pam.d: {}", String::from_utf8_lossy(&output.stderr));
    let text = std::fs::read_to_string(example(example_name)).expect("read example");
    std::fs::write(confdir.join(service), point_at_test_module(&text, &dir.config_path())).expect("write service");
    confdir
}

/// The break-glass group the examples name.
pub const BREAK_GLASS_GROUP: &str = "pam_authy-exempt";

/// Rewrites the installed `service` of `confdir` so that its break-glass line checks `group`
/// instead of the examples' group; nothing else changes.
pub fn point_break_glass_at(confdir: &Path, service: &str, group: &TestGroup) {
    let path = confdir.join(service);
    let text = std::fs::read_to_string(&path).expect("read service");
    let from = format!("user ingroup {BREAK_GLASS_GROUP}");
    assert_eq!(text.matches(&from).count(), 1, "one break-glass line in {service}:\n{text}");
    std::fs::write(&path, text.replace(&from, &format!("user ingroup {}", group.name))).expect("write service");
}

/// Bind mounts that keep the login records (utmp, wtmp, btmp, lastlog) the programs write
/// away from the host's: empty files in `dir`, mounted over the real ones.
pub fn private_login_records(dir: &Path) -> Vec<(PathBuf, PathBuf)> {
    let records = dir.join("login-records");
    std::fs::create_dir_all(&records).expect("mkdir");
    ["/run/utmp", "/var/log/wtmp", "/var/log/btmp", "/var/log/lastlog"]
        .iter()
        .map(Path::new)
        .filter(|path| path.is_file())
        .map(|path| {
            let copy = records.join(path.file_name().expect("file name"));
            std::fs::write(&copy, b"").expect("write record");
            (copy, path.to_path_buf())
        })
        .collect()
}

/// The argv that runs `argv` in a new private mount namespace, after each (source, target)
/// of `binds` is bind-mounted. `unshare` and `sh` exec into `argv`, so its pid is theirs.
pub fn namespace_argv(binds: &[(PathBuf, PathBuf)], argv: &[&str]) -> Vec<String> {
    let script = r#"while [ "$1" != -- ]; do mount --bind "$1" "$2" || exit 97; shift 2; done; shift; exec "$@""#;
    let mut all: Vec<String> =
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh"].map(str::to_owned).to_vec();
    for (source, target) in binds {
        all.push(source.to_str().expect("utf-8 path").to_owned());
        all.push(target.to_str().expect("utf-8 path").to_owned());
    }
    all.push("--".to_owned());
    all.extend(argv.iter().map(|a| (*a).to_owned()));
    all
}

/// `namespace_argv` as a Command.
pub fn in_namespace(binds: &[(PathBuf, PathBuf)], argv: &[&str]) -> Command {
    let all = namespace_argv(binds, argv);
    let mut command = Command::new(&all[0]);
    command.args(&all[1..]);
    command
}

// ---------------------------------------------------------------------------------------
// Running programs

/// A finished program: exit code (None when killed), output, wall time.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    pub fn output(&self) -> String {
        format!("exit {:?}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        let _ = sender.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    receiver
}

/// Runs `command` with `stdin` as its input; kills it (by pid) after `timeout`.
pub fn run(mut command: Command, stdin: &str, timeout: Duration) -> Run {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let mut input = child.stdin.take().expect("stdin");
    // A program that exits before reading all of it is not an error here.
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
    let code = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status.code();
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    // A grandchild may keep a pipe open; do not wait for it forever.
    let collect = |receiver: mpsc::Receiver<String>| receiver.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
    Run { code, stdout: collect(stdout), stderr: collect(stderr), elapsed }
}

/// How a pty dialog answers: when the output shows `pattern`, type the next of `answers`.
pub struct Rule<'a> {
    pub pattern: &'a str,
    pub answers: Vec<String>,
}

pub fn rule<'a>(pattern: &'a str, answers: &[&str]) -> Rule<'a> {
    Rule { pattern, answers: answers.iter().map(|a| (*a).to_owned()).collect() }
}

/// Runs `argv` on a pty under `expect`, answering by `rules`; the transcript is stdout.
/// A rule with no answer left, or 30 s of silence, ends the dialog with an error.
pub fn pty_dialog(dir: &Path, argv: &[String], rules: &[Rule<'_>]) -> Run {
    let braced = |text: &str| {
        assert!(!text.contains(['{', '}', '\\']), "keep expect patterns and answers plain: {text:?}");
        format!("{{{text}}}")
    };
    let mut script = String::from(
        "set timeout 30\nlog_user 1\n\
         proc reply {i} {\n\
         \x20   global answers\n\
         \x20   if {[llength $answers($i)] == 0} { send_user \"\\nE2E: no answer left for rule $i\\n\"; exit 98 }\n\
         \x20   send -- \"[lindex $answers($i) 0]\\r\"\n\
         \x20   set answers($i) [lrange $answers($i) 1 end]\n\
         }\n",
    );
    for (i, rule) in rules.iter().enumerate() {
        let answers: Vec<String> = rule.answers.iter().map(|a| braced(a)).collect();
        script.push_str(&format!("set answers({i}) [list {}]\n", answers.join(" ")));
    }
    script.push_str("spawn -noecho {*}$argv\nexpect {\n");
    for (i, rule) in rules.iter().enumerate() {
        script.push_str(&format!("    -ex {} {{ reply {i}; exp_continue }}\n", braced(rule.pattern)));
    }
    script.push_str(
        "    timeout { send_user \"\\nE2E: timeout\\n\"; exit 124 }\n    eof\n}\n\
         lassign [wait] pid spawn_id os_error value\nexit $value\n",
    );
    let path = dir.join(format!("{}.exp", unique("dialog-")));
    std::fs::write(&path, script).expect("write expect script");
    let mut command = Command::new("expect");
    command.arg("-f").arg(&path).arg("--").args(argv);
    run(command, "", Duration::from_secs(45))
}

// ---------------------------------------------------------------------------------------
// sshd and the ssh client

/// The privilege-separation directory sshd insists on.
fn privsep_dir() {
    static MADE: OnceLock<()> = OnceLock::new();
    MADE.get_or_init(|| {
        std::fs::create_dir_all("/run/sshd").expect("mkdir /run/sshd");
        common::set_mode(Path::new("/run/sshd"), 0o755);
    });
}

/// A real OpenSSH sshd on a free loopback port, in its own mount namespace where
/// `pam_d` is /etc/pam.d. Killed by pid on Drop.
pub struct Sshd {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Sshd {
    /// Starts sshd with `sshd_config_example` (a pam.d-examples snippet) included first,
    /// exactly as Debian's sshd_config includes sshd_config.d/*.conf, and lets only `user` in.
    pub fn start(dir: &TestDir, pam_d: &Path, sshd_config_example: &str, user: &str) -> Sshd {
        privsep_dir();
        let host_key = dir.path().join("ssh_host_ed25519_key");
        if !host_key.exists() {
            key_pair(dir.path(), "ssh_host_ed25519_key");
        }
        let log = dir.path().join("sshd.log");
        for _ in 0..5 {
            // Free when asked, but another test may take it before sshd binds: hence the retries.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .expect("a loopback port")
                .port();
            let config = dir.write(
                "sshd_config",
                &format!(
                    "# The example snippet comes first, so its values win (sshd keeps the first).\n\
                     Include {snippet}\n\
                     Port {port}\nListenAddress 127.0.0.1\nHostKey {key}\nPidFile none\n\
                     AllowUsers {user}\nPermitRootLogin no\nLogLevel VERBOSE\nUseDNS no\n\
                     PrintMotd no\nPrintLastLog no\n",
                    snippet = example(sshd_config_example).display(),
                    key = host_key.display(),
                ),
                0o600,
            );
            let check = Command::new("/usr/sbin/sshd").arg("-t").arg("-f").arg(&config).output().expect("sshd -t");
            assert!(check.status.success(), "sshd -t: {}", String::from_utf8_lossy(&check.stderr));
            let mut binds = vec![(pam_d.to_path_buf(), PathBuf::from("/etc/pam.d"))];
            binds.extend(private_login_records(dir.path()));
            let config = config.to_str().expect("utf-8 path").to_owned();
            let log_file = std::fs::File::create(&log).expect("create sshd.log");
            let child = in_namespace(&binds, &["/usr/sbin/sshd", "-D", "-e", "-f", &config])
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("dup log"))
                .stderr(log_file)
                .spawn()
                .expect("spawn sshd");
            let mut sshd = Sshd { child, port, log: log.clone() };
            match sshd.wait_until_listening() {
                Ok(()) => return sshd,
                Err(text) if text.contains("Address already in use") => continue,
                Err(text) => panic!("sshd did not start:\n{text}"),
            }
        }
        panic!("no free loopback port for sshd after 5 tries");
    }

    fn wait_until_listening(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.log_text();
            if text.contains(&format!("Server listening on 127.0.0.1 port {}", self.port)) {
                return Ok(());
            }
            if self.child.try_wait().expect("try_wait").is_some() || Instant::now() > deadline {
                return Err(self.log_text());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An SSH_ASKPASS program for one test. It logs every prompt it is shown and answers by
/// the prompt's kind, each kind from its own list, in order: `push` (the push notice
/// under sshd), `offline`, `token` (Authy's token or Verify's code prompt), `password`.
/// A kind marked `late` waits (up to 10 s) for an answer the test adds during the login,
/// such as the code of an SMS the module has just asked for.
pub struct Askpass {
    dir: PathBuf,
}

impl Askpass {
    pub fn new(dir: &TestDir) -> Askpass {
        let home = dir.path().join("askpass");
        std::fs::create_dir(&home).expect("mkdir askpass");
        let script = format!(
            r#"#!/bin/sh
d='{home}'
printf '%s\036' "$1" >> "$d/prompts"
case "$1" in
    *"Authy push sent"* | *[Pp]"ush sent"* | *"approve it"*) kind=push ;;
    *"Offline code"*) kind=offline ;;
    *"Authy token"* | *"Verification code"*) kind=token ;;
    *[Pp]assword*) kind=password ;;
    *) kind=other ;;
esac
n=$(cat "$d/count.$kind" 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" > "$d/count.$kind"
if [ -f "$d/late.$kind" ]; then
    waited=0
    while [ "$(cat "$d/answers.$kind" 2>/dev/null | wc -l)" -lt "$n" ] && [ "$waited" -lt 200 ]; do
        sleep 0.05
        waited=$((waited + 1))
    done
fi
[ -f "$d/answers.$kind" ] && sed -n "${{n}}p" "$d/answers.$kind"
exit 0
"#,
            home = home.display()
        );
        let path = home.join("askpass");
        std::fs::write(&path, script).expect("write askpass");
        common::set_mode(&path, 0o700);
        Askpass { dir: home }
    }

    /// The answers, in order, for prompts of `kind`.
    pub fn answer(&self, kind: &str, answers: &[&str]) {
        let text: String = answers.iter().map(|a| format!("{a}\n")).collect();
        std::fs::write(self.dir.join(format!("answers.{kind}")), text).expect("write answers");
    }

    /// Prompts of `kind` wait for answers added with `add_answer` while the login runs.
    pub fn late(&self, kind: &str) {
        std::fs::write(self.dir.join(format!("late.{kind}")), b"").expect("write late marker");
    }

    /// Appends one answer for prompts of `kind`.
    pub fn add_answer(&self, kind: &str, answer: &str) {
        let path = self.dir.join(format!("answers.{kind}"));
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("open answers");
        writeln!(file, "{answer}").expect("append answer");
    }

    /// Forgets every answer, count, marker and prompt: the next login starts afresh.
    pub fn reset(&self) {
        for entry in std::fs::read_dir(&self.dir).expect("read askpass dir").flatten() {
            if entry.file_name() != "askpass" {
                std::fs::remove_file(entry.path()).expect("remove askpass state");
            }
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("askpass")
    }

    /// Every prompt shown so far, as the user would have seen it.
    pub fn prompts(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir.join("prompts")).unwrap_or_default();
        text.split('\u{1e}').filter(|p| !p.is_empty()).map(str::to_owned).collect()
    }
}

/// `ssh user@127.0.0.1 'echo E2E_LOGIN_$((6*7))'` with the key `key`, answering
/// keyboard-interactive prompts through `askpass`; no agent, no known_hosts, no tty.
/// `ssh` for `test`, its time reported as `what`.
pub fn timed_ssh(test: &str, what: &str, sshd: &Sshd, user: &str, key: &Path, askpass: &Askpass) -> Run {
    let run = ssh(sshd, user, key, askpass);
    report_timing(test, what, run.elapsed);
    run
}

/// What a failed sshd login should show: the client's output, the prompts it answered and
/// sshd's log.
pub fn explain_ssh(run: &Run, askpass: &Askpass, sshd: &Sshd) -> String {
    format!("{}\n--- prompts\n{:#?}\n--- sshd log\n{}", run.output(), askpass.prompts(), sshd.log_text())
}

/// The API paths the sandbox served, in order.
pub fn api_calls(sandbox: &authy_sandbox::Sandbox) -> Vec<String> {
    sandbox.requests().into_iter().map(|r| r.route_path).collect()
}

pub fn ssh(sshd: &Sshd, user: &str, key: &Path, askpass: &Askpass) -> Run {
    let mut command = Command::new("setsid");
    command
        .args(["-w", "ssh", "-F", "/dev/null", "-p", &sshd.port.to_string(), "-i"])
        .arg(key)
        .args([
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=10",
            // One keyboard-interactive round: one run of the PAM auth stack.
            "-o",
            "NumberOfPasswordPrompts=1",
            "-o",
            "PreferredAuthentications=publickey,keyboard-interactive",
            &format!("{user}@127.0.0.1"),
            LOGIN_COMMAND,
        ])
        .env("SSH_ASKPASS", askpass.path())
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env_remove("SSH_AUTH_SOCK");
    run(command, "", Duration::from_secs(40))
}

// ---------------------------------------------------------------------------------------
// sudo

/// A sudoers file (root:root 0440, checked with `visudo -c`) that lets `user` run anything
/// and never reuses a timestamp, so every run asks.
pub fn sudoers(dir: &TestDir, user: &str) -> PathBuf {
    let path = dir.write(
        "sudoers",
        &format!(
            "Defaults env_reset, !lecture, timestamp_timeout=0\nroot ALL=(ALL:ALL) ALL\n{user} ALL=(ALL:ALL) ALL\n"
        ),
        0o440,
    );
    let check = Command::new("visudo").arg("-cf").arg(&path).output().expect("visudo");
    assert!(check.status.success(), "visudo: {}", String::from_utf8_lossy(&check.stdout));
    path
}

/// The mounts a sudo run needs: the test's pam.d and sudoers.
pub fn sudo_binds(pam_d: &Path, sudoers: &Path) -> Vec<(PathBuf, PathBuf)> {
    vec![(pam_d.to_path_buf(), PathBuf::from("/etc/pam.d")), (sudoers.to_path_buf(), PathBuf::from("/etc/sudoers"))]
}

/// The argv that runs `program...` as `user` (setpriv: no PAM stack of its own).
pub fn as_user<'a>(user: &'a str, program: &[&'a str]) -> Vec<&'a str> {
    let mut argv = vec!["setpriv", "--reuid", user, "--regid", user, "--init-groups", "--reset-env"];
    argv.extend_from_slice(program);
    argv
}

/// `sudo -S -k sh -c 'echo E2E_LOGIN_$((6*7))'` as `user`, reading answers from `stdin`.
/// `sudo -S` with `stdin` as the answers, for `test`, its time reported.
pub fn timed_sudo(test: &str, pam_d: &Path, sudoers: &Path, user: &str, stdin: &str) -> Run {
    let run = sudo_piped(pam_d, sudoers, user, stdin);
    report_timing(test, "sudo -S", run.elapsed);
    run
}

pub fn sudo_piped(pam_d: &Path, sudoers: &Path, user: &str, stdin: &str) -> Run {
    let argv = as_user(user, &["sudo", "-S", "-k", "sh", "-c", LOGIN_COMMAND]);
    run(in_namespace(&sudo_binds(pam_d, sudoers), &argv), stdin, Duration::from_secs(40))
}
