//! Shared support for the integration tests: locate the built module, give each test its
//! own private directory with a confdir, a config file and a state dir, start the sandbox,
//! and run `pam_authenticate` through real libpam.
#![allow(dead_code)]

use authy_sandbox::{Sandbox, SandboxConfig};
use pam_harness::{AuthResult, Items, Message, Reply};
use std::path::{Path, PathBuf};

mod test_dir;
// Not every test binary calls set_mode itself.
#[allow(unused_imports)]
pub use test_dir::{TestDir, set_mode};

/// The cdylib built by this very `cargo test` run (deps/) or by `cargo build` (uplifted),
/// or the one PAM_AUTHY_TEST_MODULE names (CI runs the portable build through the tests).
pub fn module_path() -> PathBuf {
    if let Some(path) = std::env::var_os("PAM_AUTHY_TEST_MODULE") {
        let path = PathBuf::from(path);
        return path.canonicalize().unwrap_or_else(|e| panic!("PAM_AUTHY_TEST_MODULE={}: {e}", path.display()));
    }
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("deps dir");
    for candidate in [deps.join("libpam_authy.so"), deps.join("../libpam_authy.so")] {
        if candidate.exists() {
            return candidate.canonicalize().expect("canonical module path");
        }
    }
    panic!("libpam_authy.so not found next to {}: run `cargo build` first", exe.display());
}

/// The user running the tests; it exists in NSS, which the module requires.
pub fn current_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .expect("getpwuid")
        .expect("current user has a passwd entry")
        .name
}

/// An account that exists on every Debian system and is never mapped by the tests.
pub const UNMAPPED_USER: &str = "daemon";

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// For root-only tests, which are marked `#[cfg_attr(not(pam_authy_tests_as_root), ignore =
/// "needs root: ...")]` (build.rs sets the cfg when root builds the tests): a binary built by
/// root but run by someone else fails here rather than passing without testing anything.
pub fn require_root() {
    assert!(is_root(), "this root-only test was built by root but runs as another user: rebuild as this user");
}

impl TestDir {
    /// Writes `pam.d/<service>`: our module (with `args`) as the only auth module.
    pub fn service(&self, service: &str, args: &str) {
        let text = format!(
            "auth required {} config={} {args}\naccount required pam_permit.so\n",
            module_path().display(),
            self.config_path().display()
        );
        std::fs::write(self.confdir().join(service), text).expect("write service");
    }

    /// Writes `pam.d/<service>` whose result is PAM_SUCCESS exactly when our module returns
    /// PAM_IGNORE (a stack of IGNOREs alone would end in PAM_PERM_DENIED), and our module's
    /// own code otherwise.
    pub fn ignore_probe_service(&self, service: &str) {
        let text = format!(
            "auth [ignore=ignore default=die] {} config={}\nauth required pam_permit.so\n",
            module_path().display(),
            self.config_path().display()
        );
        std::fs::write(self.confdir().join(service), text).expect("write service");
    }

    pub fn authenticate(&self, service: &str, user: &str, responder: &mut dyn FnMut(&Message) -> Reply) -> AuthResult {
        let items = Items { rhost: Some("192.0.2.10".into()), tty: Some("ssh".into()), ruser: None };
        self.authenticate_with(service, user, &items, responder)
    }

    pub fn authenticate_with(
        &self,
        service: &str,
        user: &str,
        items: &Items,
        responder: &mut dyn FnMut(&Message) -> Reply,
    ) -> AuthResult {
        pam_harness::authenticate(Some(&self.confdir()), service, user, items, responder).expect("pam_start")
    }
}

pub const API_KEY: &str = "sandbox-test-key-0123456789";

/// A sandbox on an ephemeral loopback port, with one user.
pub fn sandbox() -> (Sandbox, u64) {
    sandbox_with(SandboxConfig { api_key: API_KEY.into(), ..SandboxConfig::default() })
}

pub fn sandbox_with(config: SandboxConfig) -> (Sandbox, u64) {
    let sandbox = Sandbox::start(config).expect("start sandbox");
    let id = sandbox.add_user("user@example.org", "555-123-4567", 1);
    (sandbox, id)
}

/// A config that trusts the sandbox CA, maps `user` to `authy_id`, plus extra TOML.
pub fn config_for(dir: &TestDir, sandbox: &Sandbox, mapping: &str, extra: &str) -> String {
    let ca = dir.write("ca.pem", &sandbox.ca_pem(), 0o644);
    format!(
        "[api]\nurl = \"{url}\"\napi_key = \"{key}\"\nca_file = \"{ca}\"\ntimeout_secs = 5\n\n{extra}\n\n[users]\n{mapping}\n",
        url = sandbox.url(),
        key = sandbox.api_key(),
        ca = ca.display(),
    )
}

/// Answers every prompt with the sandbox's current token for `id`.
pub fn answer_with_token<'a>(sandbox: &'a Sandbox, id: u64) -> impl FnMut(&Message) -> Reply + 'a {
    move |message: &Message| {
        if message.style.is_prompt() { Reply::Text(sandbox.current_token(id).expect("token")) } else { Reply::text("") }
    }
}

/// Answers the prompts in order with the given texts; info/error messages get "".
pub fn answers(texts: &[&str]) -> impl FnMut(&Message) -> Reply {
    let mut queue: std::collections::VecDeque<String> = texts.iter().map(|s| s.to_string()).collect();
    move |message: &Message| {
        if message.style.is_prompt() {
            Reply::Text(queue.pop_front().unwrap_or_else(|| panic!("unexpected prompt {:?}", message.text)))
        } else {
            Reply::text("")
        }
    }
}

/// A loopback port with nothing listening on it, held for the whole test process.
pub use pam_harness::closed_port;

/// Answers the token prompt with `token`, then each offline-code prompt with the next of
/// `codes` (the API being unreachable); info and error messages get "".
pub fn token_then_offline(token: &str, codes: Vec<String>) -> impl FnMut(&Message) -> Reply + use<> {
    let token = token.to_owned();
    let mut codes = codes.into_iter();
    move |m: &Message| {
        if !m.style.is_prompt() {
            Reply::text("")
        } else if m.text.contains("Offline code") {
            Reply::Text(codes.next().unwrap_or_else(|| panic!("unexpected offline prompt {:?}", m.text)))
        } else {
            Reply::Text(token.clone())
        }
    }
}

/// Types `word` (push, sms, call) at the first prompt, then the sandbox's current token for
/// `id` at every later one; info and error messages get "".
pub fn word_then_token<'a>(word: &'a str, sandbox: &'a Sandbox, id: u64) -> impl FnMut(&Message) -> Reply + 'a {
    let mut asked = 0;
    move |m: &Message| {
        if !m.style.is_prompt() {
            return Reply::text("");
        }
        asked += 1;
        if asked == 1 { Reply::text(word) } else { Reply::Text(sandbox.current_token(id).expect("token")) }
    }
}

/// A config for the current user with an offline secret while the API is down (a closed
/// port): `auth` goes into `[auth]` (empty for none), `offline` into `[offline]` after its
/// `state_dir`.
pub fn offline_config(
    dir: &TestDir,
    sandbox: &Sandbox,
    id: u64,
    seed: &str,
    state_dir: &Path,
    auth: &str,
    offline: &str,
) -> String {
    let mapping = format!("\"{}\" = {{ authy_id = {id}, offline_secret = \"{seed}\" }}", current_user());
    let auth = if auth.is_empty() { String::new() } else { format!("[auth]\n{auth}\n") };
    let extra = format!("{auth}[offline]\nstate_dir = \"{}\"\n{offline}", state_dir.display());
    config_for(dir, sandbox, &mapping, &extra).replace(&sandbox.url(), &format!("https://127.0.0.1:{}", closed_port()))
}

/// The Verify identity the tests map the current user to (an opaque id, never a name).
pub const VERIFY_IDENTITY: &str = "2f0c9a3e5b7d4e61a8c0f1e2d3c4b5a6";
pub const VERIFY_PHONE: &str = "+15551234567";

/// The SIDs of the sandbox factors of `VERIFY_IDENTITY`: a verified TOTP factor and a push
/// factor.
pub struct VerifyFactors {
    pub totp: String,
    pub push: String,
}

impl VerifyFactors {
    pub fn new(sandbox: &Sandbox) -> VerifyFactors {
        let service = sandbox.verify_account().service_sid;
        let spec = authy_sandbox::TotpFactorSpec::default();
        let totp = sandbox.verify_add_totp_factor(&service, VERIFY_IDENTITY, &spec).expect("totp factor").sid;
        let push = sandbox.verify_add_push_factor(&service, VERIFY_IDENTITY).expect("push factor").sid;
        VerifyFactors { totp, push }
    }

    /// The user entry's fields after `verify_identity`: every factor and the phone.
    pub fn all(&self) -> String {
        format!("totp_factor = \"{}\", phone = \"{VERIFY_PHONE}\", push_factor = \"{}\"", self.totp, self.push)
    }
}

/// A `backend = "verify"` config that trusts the sandbox CA and maps the current user to
/// `VERIFY_IDENTITY` with `fields`; `extra` TOML tables (with their headers) follow `[verify]`.
pub fn verify_config_for(dir: &TestDir, sandbox: &Sandbox, fields: &str, extra: &str) -> String {
    let users = format!("\"{}\" = {{ verify_identity = \"{VERIFY_IDENTITY}\", {fields} }}", current_user());
    verify_config_with_users(dir, sandbox, &users, extra)
}

/// A `backend = "verify"` config that trusts the sandbox CA, with `users` as the `[users]`
/// lines; `extra` TOML tables (with their headers) follow `[verify]`.
pub fn verify_config_with_users(dir: &TestDir, sandbox: &Sandbox, users: &str, extra: &str) -> String {
    let account = sandbox.verify_account();
    let ca = dir.write("ca.pem", &sandbox.ca_pem(), 0o644);
    format!(
        "[api]\nbackend = \"verify\"\nurl = \"{url}\"\nca_file = \"{ca}\"\ntimeout_secs = 5\n\n\
         [verify]\nservice_sid = \"{service}\"\napi_key_sid = \"{key_sid}\"\napi_key_secret = \"{secret}\"\n\n\
         {extra}\n\n[users]\n{users}\n",
        url = sandbox.url(),
        ca = ca.display(),
        service = account.service_sid,
        key_sid = account.api_key_sid,
        secret = account.api_key_secret,
    )
}

/// The set-up of a private mount namespace (`unshare -m --propagation private sh -c`) with a
/// /dev of its own, where a test may bind /dev/log: $1 is an empty directory that keeps the
/// host's /dev, the rest is the command to run.
pub const NAMESPACE_SCRIPT: &str = r#"set -eu
hostdev="$1"; shift
mount --rbind /dev "$hostdev"
mount -t tmpfs -o mode=755,size=1m pam-authy-test-dev /dev
for node in null zero full random urandom tty ptmx; do
    if [ -e "$hostdev/$node" ]; then touch "/dev/$node"; mount --bind "$hostdev/$node" "/dev/$node"; fi
done
for dir in pts shm mqueue; do
    if [ -d "$hostdev/$dir" ]; then mkdir "/dev/$dir"; mount --rbind "$hostdev/$dir" "/dev/$dir"; fi
done
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr
exec "$@"
"#;
