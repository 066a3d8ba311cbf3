//! End to end on the Verify backend: the shipped `pam.d-examples` under the real sshd, sudo
//! and su, with `backend = "verify"`, against the sandbox's Verify API in this process. The
//! users are enrolled through the sandbox directly (an entity, a TOTP factor whose secret the
//! test chose, a push factor), so the tests compute the codes an authenticator app would show
//! and do not depend on the CLI. Root only; skipped with a message otherwise.
//!
//! The migration rehearsal runs the built `pam-authy migrate` on an Authy-backed host.
//!
//! To keep CI short, one test holds one sshd (or one sudo set-up) and runs its cases in turn,
//! each with fresh askpass answers; a failed assertion names the case.

#![allow(clippy::disallowed_methods)]

mod common;
mod e2e;

use authy_sandbox::{FaultScope, PushScenario, PushStatus, Sandbox, SandboxConfig, TotpFactorSpec};
use common::{API_KEY, TestDir, VERIFY_PHONE as PHONE, closed_port, verify_config_with_users};
use e2e::{
    Askpass, LOGIN_COMMAND, LOGIN_MARKER, Run, Sshd, TestUser, as_user, explain_ssh, install_example, key_pair,
    namespace_argv, point_at_test_module, private_login_records, pty_dialog, report_timing, rule, ssh, sudo_piped,
    sudoers, timed_ssh,
};
use pam_authy::offline::{OfflineParams, code_at};
use pam_authy::secret::Secret;
use std::collections::HashSet;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const FAST_PUSH: &str = "push_timeout_secs = 10\npush_poll_ms = 100";
/// The offline entry of the user's authenticator: not the Verify factor's secret.
const OFFLINE_SEED: &str = "JBSWY3DPEHPK3PXPJBSWY3DP";
const TOTP: OfflineParams = OfflineParams { digits: 6, period_secs: 30, skew_steps: 1 };

fn random_hex(bytes: usize) -> String {
    let mut text = String::new();
    while text.len() < bytes * 2 {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_usize(text.len());
        text.push_str(&format!("{:016x}", hasher.finish()));
    }
    text.truncate(bytes * 2);
    text
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs()
}

/// A user's Verify enrolment: a random identity (never the user name), a verified TOTP factor
/// whose secret the test chose, and a verified push factor.
struct Enrolment {
    identity: String,
    totp: String,
    push: String,
    seed_base32: String,
}

impl Enrolment {
    /// The `[users]` value with every factor (and `more`, e.g. an offline secret).
    fn entry(&self, more: &str) -> String {
        format!(
            "{{ verify_identity = \"{}\", totp_factor = \"{}\", phone = \"{PHONE}\", push_factor = \"{}\"{more} }}",
            self.identity, self.totp, self.push
        )
    }

    fn code_at(&self, unix_time: u64) -> String {
        code_at(&Secret::from(self.seed_base32.as_str()), unix_time, &TOTP).expect("code").expose().to_owned()
    }
}

/// The codes an authenticator shows now, each used at most once: the module refuses a code
/// it already submitted, so a second login in the same 30 s takes the next step's code,
/// which Verify accepts (skew 1).
struct Codes<'a> {
    enrolment: &'a Enrolment,
    used: HashSet<String>,
}

impl<'a> Codes<'a> {
    fn of(enrolment: &'a Enrolment) -> Codes<'a> {
        Codes { enrolment, used: HashSet::new() }
    }

    fn fresh(&mut self) -> String {
        let now = now();
        let code = [now, now + 30, now.saturating_sub(30)]
            .iter()
            .map(|&t| self.enrolment.code_at(t))
            .find(|code| !self.used.contains(code))
            .expect("at most two logins with a code per 30 s");
        self.used.insert(code.clone());
        code
    }

    /// Six digits that no step within two of now shows.
    fn wrong(&self, n: u32) -> String {
        let now = now();
        let valid: Vec<String> = (0..5).map(|i| self.enrolment.code_at(now + i * 30 - 60)).collect();
        let mut value = (valid[2].parse::<u32>().expect("digits") + 111_111 * n) % 1_000_000;
        while valid.contains(&format!("{value:06}")) {
            value = (value + 1) % 1_000_000;
        }
        format!("{value:06}")
    }
}

/// The sandbox, its CA and a directory with the config for the users it enrolled.
struct Site {
    sandbox: Sandbox,
    dir: TestDir,
}

impl Site {
    fn start() -> Site {
        let sandbox =
            Sandbox::start(SandboxConfig { api_key: API_KEY.into(), ..SandboxConfig::default() }).expect("sandbox");
        Site { sandbox, dir: TestDir::new() }
    }

    fn enrol(&self) -> Enrolment {
        let service = self.sandbox.verify_account().service_sid;
        let identity = random_hex(16);
        let secret = random_hex(20).into_bytes()[..20].to_vec();
        let spec = TotpFactorSpec { secret: Some(secret), friendly_name: "e2e".into(), ..TotpFactorSpec::default() };
        let totp = self.sandbox.verify_add_totp_factor(&service, &identity, &spec).expect("totp factor");
        let push = self.sandbox.verify_add_push_factor(&service, &identity).expect("push factor");
        Enrolment { identity, totp: totp.sid, push: push.sid, seed_base32: totp.secret_base32 }
    }

    /// The config with `users` lines and `extra` tables; `reachable` false points it at a
    /// closed loopback port.
    fn config(&self, reachable: bool, users: &str, extra: &str) {
        let state = format!("[offline]\nstate_dir = \"{}\"\n\n{extra}", self.dir.state_dir().display());
        let mut text = verify_config_with_users(&self.dir, &self.sandbox, users, &state);
        if !reachable {
            text = text.replace(&self.sandbox.url(), &format!("https://127.0.0.1:{}", closed_port()));
        }
        self.dir.write_config(&text);
    }

    fn push_outcome(&self, status: PushStatus, polls: u32) {
        self.sandbox.set_push_scenario(FaultScope::Verify, PushScenario::AfterPolls { status, polls });
    }

    /// Challenges (TOTP checks and pushes) of `factor` so far, oldest first.
    fn challenges(&self, factor: &str) -> Vec<authy_sandbox::VerifyChallengeRecord> {
        self.sandbox.verify_challenges().into_iter().filter(|c| c.factor_sid == factor).collect()
    }

    fn approved(&self, factor: &str) -> usize {
        self.challenges(factor).iter().filter(|c| c.status == "approved").count()
    }
}

fn hostname() -> String {
    nix::unistd::gethostname().expect("hostname").to_string_lossy().into_owned()
}

/// Asserts that a push challenge carries the login context in the details the app shows.
fn assert_context(challenge: &authy_sandbox::VerifyChallengeRecord, expected: &[(&str, &str)], message: &str) {
    for (label, value) in expected {
        let found = challenge.fields.iter().find(|(l, _)| l == label).map(|(_, v)| v.as_str());
        assert_eq!(found, Some(*value), "{label} in the challenge's details: {:?}", challenge.fields);
    }
    assert_eq!(challenge.message.as_deref(), Some(message));
}

/// One sshd for one user on a Verify site.
struct SshHost {
    sshd: Sshd,
    askpass: Askpass,
    key: PathBuf,
}

impl SshHost {
    /// sshd with the public-key-then-module example, letting in `users` (space-separated).
    fn start(site: &Site, users: &[&TestUser]) -> SshHost {
        let pam_d = install_example(&site.dir, "sshd", "sshd");
        let key = key_pair(site.dir.path(), "client_key");
        for user in users {
            user.authorize_key(&key.with_extension("pub"));
        }
        let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
        let sshd = Sshd::start(&site.dir, &pam_d, "sshd_config-publickey.conf", &names.join(" "));
        SshHost { sshd, askpass: Askpass::new(&site.dir), key }
    }

    /// Logs `user` in once, answering with `answers` by prompt kind (set afresh).
    fn login(&self, test: &str, case: &str, user: &TestUser, answers: &[(&str, &[&str])]) -> Run {
        self.askpass.reset();
        for (kind, list) in answers {
            self.askpass.answer(kind, list);
        }
        timed_ssh(test, &format!("ssh {case}"), &self.sshd, &user.name, &self.key, &self.askpass)
    }

    fn assert_no_authy(&self, case: &str, run: &Run) {
        let named = self.askpass.prompts().iter().any(|p| p.contains("Authy")) || run.stderr.contains("Authy");
        assert!(!named, "a Verify user read \"Authy\":\n{}", self.explain(case, run));
    }

    fn explain(&self, case: &str, run: &Run) -> String {
        format!("case {case}\n{}", explain_ssh(run, &self.askpass, &self.sshd))
    }

    /// Also checks that no prompt under Verify names Authy.
    fn assert_logged_in(&self, case: &str, run: &Run) {
        self.assert_no_authy(case, run);
        assert!(run.ok() && run.stdout.contains(LOGIN_MARKER), "the login must succeed:\n{}", self.explain(case, run));
    }

    fn assert_refused(&self, case: &str, run: &Run) {
        self.assert_no_authy(case, run);
        let refused = !run.ok() && !run.stdout.contains(LOGIN_MARKER) && run.stderr.contains("Permission denied");
        assert!(refused, "the login must fail:\n{}", self.explain(case, run));
    }
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sshd")]
fn sshd_on_verify_takes_codes_sms_and_pushes_and_follows_the_offline_fallback_and_failmode() {
    let test = "sshd_on_verify";
    if !e2e::enabled(test) {
        return;
    }
    let started = Instant::now();
    let site = Site::start();
    let user = TestUser::create();
    let enrolment = site.enrol();
    let mut codes = Codes::of(&enrolment);
    let users = format!("{} = {}", user.name, enrolment.entry(""));
    site.config(true, &users, &format!("[auth]\n{FAST_PUSH}"));
    let host = SshHost::start(&site, &[&user]);

    let case = "a TOTP code logs in";
    let run = host.login(test, case, &user, &[("token", &[&codes.fresh()])]);
    host.assert_logged_in(case, &run);
    let prompts = host.askpass.prompts();
    assert_eq!(prompts.len(), 1, "{case}: {prompts:#?}");
    assert!(prompts[0].ends_with("Verification code (or type sms, call or push): "), "{case}: {prompts:#?}");
    assert_eq!(site.approved(&enrolment.totp), 1, "{case}: {:?}", site.challenges(&enrolment.totp));
    let log = host.sshd.log_text();
    assert!(log.contains("Partial publickey") && log.contains("Accepted keyboard-interactive/pam"), "{case}: {log}");

    let case = "wrong codes are refused after max_tries";
    let checks_before = site.challenges(&enrolment.totp).len();
    let wrong: Vec<String> = (1..=3).map(|n| codes.wrong(n)).collect();
    let wrong: Vec<&str> = wrong.iter().map(String::as_str).collect();
    let run = host.login(test, case, &user, &[("token", &wrong)]);
    host.assert_refused(case, &run);
    assert_eq!(host.askpass.prompts().len(), 3, "{case}: {:#?}", host.askpass.prompts());
    assert_eq!(site.challenges(&enrolment.totp).len(), checks_before + 3, "{case}: each code checked at Verify");
    assert_eq!(site.approved(&enrolment.totp), 1, "{case}");

    let case = "sms then the code logs in";
    let sent_before = site.sandbox.verify_sent_codes().len();
    host.askpass.reset();
    host.askpass.answer("token", &["sms"]);
    host.askpass.late("token");
    let login_over = AtomicBool::new(false);
    let run = std::thread::scope(|scope| {
        scope.spawn(|| {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !login_over.load(Ordering::Relaxed) && Instant::now() < deadline {
                if let Some(sent) = site.sandbox.verify_sent_codes().get(sent_before) {
                    host.askpass.add_answer("token", &sent.code);
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let run = ssh(&host.sshd, &user.name, &host.key, &host.askpass);
        login_over.store(true, Ordering::Relaxed);
        run
    });
    report_timing(test, "ssh sms", run.elapsed);
    host.assert_logged_in(case, &run);
    let sent = site.sandbox.verify_sent_codes();
    assert_eq!(sent.len(), sent_before + 1, "{case}");
    assert_eq!((sent[sent_before].to.as_str(), sent[sent_before].channel.as_str()), (PHONE, "sms"), "{case}");
    assert_eq!(sent[sent_before].status, "approved", "{case}");
    let prompts = host.askpass.prompts();
    assert_eq!(prompts.len(), 2, "{case}: {prompts:#?}");
    assert!(prompts[1].contains("Verification code") && !prompts[1].contains(PHONE), "{case}: {prompts:#?}");

    let case = "an approved push logs in and carries the login context";
    site.push_outcome(PushStatus::Approved, 2);
    let run = host.login(test, case, &user, &[("token", &["push"]), ("push", &[""])]);
    host.assert_logged_in(case, &run);
    assert_eq!(host.askpass.prompts().len(), 2, "{case}: {:#?}", host.askpass.prompts());
    let pushes = site.challenges(&enrolment.push);
    assert_eq!(pushes.len(), 1, "{case}");
    assert_eq!((pushes[0].factor_type.as_str(), pushes[0].status.as_str()), ("push", "approved"), "{case}");
    assert_eq!(pushes[0].identity, enrolment.identity, "{case}");
    let hostname = hostname();
    let context = [
        ("User", user.name.as_str()),
        ("Host", hostname.as_str()),
        ("Service", "sshd"),
        ("From", "127.0.0.1"),
        ("TTY", "ssh"),
    ];
    assert_context(&pushes[0], &context, &format!("SSH login to {hostname} as {}", user.name));

    let case = "a denied push is refused";
    site.config(true, &users, &format!("[auth]\n{FAST_PUSH}\nmax_tries = 1"));
    site.push_outcome(PushStatus::Denied, 1);
    let run = host.login(test, case, &user, &[("token", &["push"]), ("push", &[""])]);
    host.assert_refused(case, &run);
    let pushes = site.challenges(&enrolment.push);
    assert_eq!(pushes.len(), 2, "{case}");
    assert_eq!(pushes[1].status, "denied", "{case}");

    let case = "the API down: the offline code logs in";
    let offline_users =
        format!("{} = {}", user.name, enrolment.entry(&format!(", offline_secret = \"{OFFLINE_SEED}\"")));
    site.config(false, &offline_users, "");
    let offline = code_at(&Secret::from(OFFLINE_SEED), now(), &TOTP).expect("offline code");
    let checks_before = site.sandbox.verify_challenges().len();
    let run = host.login(test, case, &user, &[("token", &[&codes.wrong(1)]), ("offline", &[offline.expose()])]);
    host.assert_logged_in(case, &run);
    let prompts = host.askpass.prompts();
    assert_eq!(prompts.len(), 2, "{case}: {prompts:#?}");
    assert!(prompts[1].contains("Offline code"), "{case}: {prompts:#?}");
    assert_eq!(site.sandbox.verify_challenges().len(), checks_before, "{case}: the sandbox was not asked");

    let case = "the API down with failmode secure and no offline secret: refused";
    site.config(false, &users, "[auth]\nfailmode = \"secure\"");
    let run = host.login(test, case, &user, &[("token", &[&codes.fresh()])]);
    host.assert_refused(case, &run);
    let prompts = host.askpass.prompts();
    assert_eq!(prompts.len(), 2, "{case}: {prompts:#?}");
    assert!(prompts[1].contains("cannot be reached"), "{case}: {prompts:#?}");

    report_timing(test, "whole test", started.elapsed());
}

/// `sudo -S` as `user` with `stdin` as the answers, in `pam_d`.
fn sudo(test: &str, case: &str, pam_d: &Path, sudoers: &Path, user: &TestUser, stdin: &str) -> Run {
    let run = sudo_piped(pam_d, sudoers, &user.name, stdin);
    report_timing(test, &format!("sudo -S {case}"), run.elapsed);
    run
}

fn assert_ran(case: &str, run: &Run) {
    assert!(
        !run.stdout.contains("Authy") && !run.stderr.contains("Authy"),
        "{case}: read \"Authy\":\n{}",
        run.output()
    );
    assert!(run.ok() && run.stdout.contains(LOGIN_MARKER), "{case}: the command must run:\n{}", run.output());
}

/// Installs the example `example` as `service` in `site`'s confdir (already a copy of the
/// host's /etc/pam.d).
fn reinstall(site: &Site, service: &str, example: &str) {
    let text = std::fs::read_to_string(e2e::example(example)).expect("read example");
    std::fs::write(site.dir.confdir().join(service), point_at_test_module(&text, &site.dir.config_path()))
        .expect("write service");
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sudo and su")]
fn sudo_and_su_on_verify_take_a_code_and_a_push() {
    let test = "sudo_su_on_verify";
    if !e2e::enabled(test) {
        return;
    }
    let started = Instant::now();
    let site = Site::start();
    let user = TestUser::with_password();
    let enrolment = site.enrol();
    let mut codes = Codes::of(&enrolment);
    let users = format!("{} = {}", user.name, enrolment.entry(""));
    site.config(true, &users, &format!("[auth]\n{FAST_PUSH}\npush_command = true"));
    let pam_d = install_example(&site.dir, "sudo", "sudo");
    let sudoers = sudoers(&site.dir, &user.name);

    let case = "sudo step-up with a code";
    let run = sudo(test, case, &pam_d, &sudoers, &user, &format!("{}\n{}\n", user.password(), codes.fresh()));
    assert_ran(case, &run);
    assert!(run.stderr.contains("Verification code"), "{case}: {}", run.output());
    assert_eq!(site.approved(&enrolment.totp), 1, "{case}: {:?}", site.challenges(&enrolment.totp));

    let case = "sudo step-up with a push";
    reinstall(&site, "sudo", "sudo-push");
    site.push_outcome(PushStatus::Approved, 2);
    let run = sudo(test, case, &pam_d, &sudoers, &user, &format!("{}\n", user.password()));
    assert_ran(case, &run);
    let pushes = site.challenges(&enrolment.push);
    assert_eq!(pushes.len(), 1, "{case}");
    assert_eq!(pushes[0].status, "approved", "{case}");
    let hostname = hostname();
    let context = [
        ("User", user.name.as_str()),
        ("Host", hostname.as_str()),
        ("Service", "sudo"),
        ("From", "local"),
        ("Command", "sh -c 'echo E2E_LOGIN_$((6*7))'"),
    ];
    assert_context(&pushes[0], &context, &format!("sudo to {hostname} as {}", user.name));

    let case = "su with a code";
    reinstall(&site, "su", "su");
    let caller = TestUser::create();
    let mut binds = vec![(pam_d.clone(), PathBuf::from("/etc/pam.d"))];
    binds.extend(private_login_records(site.dir.path()));
    let argv = namespace_argv(&binds, &as_user(&caller.name, &["su", &user.name, "-c", LOGIN_COMMAND]));
    let code = codes.fresh();
    let rules = [rule("Password:", &[user.password()]), rule("Verification code", &[&code])];
    let run = pty_dialog(site.dir.path(), &argv, &rules);
    report_timing(test, "su (pty)", run.elapsed);
    assert_ran(case, &run);
    assert_eq!(site.approved(&enrolment.totp), 2, "{case}: {:?}", site.challenges(&enrolment.totp));

    report_timing(test, "whole test", started.elapsed());
}

/// The admin CLI built next to the test binaries (`cargo build --workspace`).
fn cli_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let target = exe.parent().and_then(Path::parent).expect("target dir");
    let cli = target.join("pam-authy");
    assert!(cli.exists(), "{} not found: run `cargo build --workspace` first", cli.display());
    cli
}

/// `pam-authy --config <site's config> migrate ARGS --json`, its JSON report.
fn migrate(site: &Site, args: &[&str]) -> serde_json::Value {
    let mut command = std::process::Command::new(cli_binary());
    command.arg("--config").arg(site.dir.config_path()).arg("migrate").args(args).arg("--json");
    let run = e2e::run(command, "", Duration::from_secs(60));
    assert!(run.ok(), "migrate {args:?}:\n{}", run.output());
    serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| panic!("migrate {args:?}: {e}\n{}", run.output()))
}

/// 32 Base32 digits (160 bits), as an exported Authy seed looks.
fn random_seed() -> String {
    const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    random_hex(32).bytes().zip(random_hex(32).bytes()).map(|(a, b)| BASE32[usize::from(a ^ b) % 32] as char).collect()
}

#[test]
#[cfg_attr(not(pam_authy_tests_as_root), ignore = "needs root: creates users and runs the real sshd")]
fn a_migration_rehearsal_moves_users_to_verify_one_at_a_time_without_a_lock_out() {
    let test = "migration_rehearsal";
    if !e2e::enabled(test) {
        return;
    }
    let started = Instant::now();
    let site = Site::start();
    let people = [TestUser::create(), TestUser::create(), TestUser::create()];
    let [alice, bob, carol] = &people;
    // The sandbox finds an existing Authy user by e-mail and phone: each person needs their own.
    let authy_ids: Vec<u64> = (0..people.len())
        .map(|n| site.sandbox.add_user(&format!("user{n}@example.org"), &format!("555-123-456{n}"), 1))
        .collect();
    let seeds: Vec<String> = people.iter().map(|_| random_seed()).collect();

    // An Authy-backed host whose admin has added the [verify] table, as the runbook says.
    let account = site.sandbox.verify_account();
    let verify_table = format!(
        "[offline]\nstate_dir = \"{}\"\n\n[verify]\nservice_sid = \"{}\"\napi_key_sid = \"{}\"\napi_key_secret = \"{}\"\n",
        site.dir.state_dir().display(),
        account.service_sid,
        account.api_key_sid,
        account.api_key_secret
    );
    let users: Vec<String> = people.iter().zip(&authy_ids).map(|(u, id)| format!("{} = {id}", u.name)).collect();
    site.dir.write_config(&common::config_for(&site.dir, &site.sandbox, &users.join("\n"), &verify_table));
    let seed_lines: Vec<String> = people.iter().zip(&seeds).map(|(u, s)| format!("{} = \"{s}\"", u.name)).collect();
    let seeds_file = site.dir.write("authy-seeds.toml", &(seed_lines.join("\n") + "\n"), 0o600);
    let seeds_arg = seeds_file.to_str().expect("utf-8 path");
    let host = SshHost::start(&site, &[alice, bob, carol]);
    let authy_checks =
        || site.sandbox.requests().iter().filter(|r| r.route_path.starts_with("/protected/json/verify/")).count();

    let config_before = std::fs::read(site.dir.config_path()).expect("config");
    let dry = migrate(&site, &["--all", "--secrets-from", seeds_arg]);
    assert_eq!(dry["apply"], false, "{dry}");
    assert!(dry["users"].as_array().is_some_and(|u| u.iter().all(|u| u["result"] == "would_migrate")), "{dry}");
    assert_eq!(std::fs::read(site.dir.config_path()).expect("config"), config_before, "a dry run wrote the config");

    for user in [alice, bob] {
        let report = migrate(&site, &[&user.name, "--apply", "--secrets-from", seeds_arg]);
        assert_eq!(report["users"][0]["result"], "migrated", "{report}");
        assert_eq!(report["backend"], "authy", "{report}");
        assert_eq!(report["switched"], false, "{report}");
    }
    let config = std::fs::read_to_string(site.dir.config_path()).expect("config");
    assert_eq!(config.matches("verify_identity").count(), 2, "{config}");

    // Before the switch every user, migrated or not, still logs in through Authy.
    for (user, id) in people.iter().zip(&authy_ids) {
        let case = format!("{} with Authy before the switch", user.name);
        let token = site.sandbox.current_token(*id).expect("token");
        let checks = authy_checks();
        let run = host.login(test, "authy before the switch", user, &[("token", &[&token])]);
        assert!(run.ok() && run.stdout.contains(LOGIN_MARKER), "{}", host.explain(&case, &run));
        assert!(host.askpass.prompts()[0].contains("Authy token"), "{}", host.explain(&case, &run));
        assert_eq!(authy_checks(), checks + 1, "{case}");
    }

    // The last user's migration completes the set: only then does the backend switch.
    let report = migrate(&site, &[&carol.name, "--apply", "--secrets-from", seeds_arg]);
    assert_eq!(report["users"][0]["result"], "migrated", "{report}");
    assert_eq!(report["backend"], "verify", "{report}");
    assert_eq!(report["switched"], true, "{report}");

    let checks = authy_checks();
    let approved = |s: &Site| s.sandbox.verify_challenges().iter().filter(|c| c.status == "approved").count();
    let approved_before = approved(&site);
    for (user, seed) in [alice, bob].into_iter().zip(&seeds) {
        let case = format!("{} with Verify after the switch", user.name);
        let code = code_at(&Secret::from(seed.as_str()), now(), &TOTP).expect("code");
        let run = host.login(test, "verify after the switch", user, &[("token", &[code.expose()])]);
        host.assert_logged_in(&case, &run);
        assert!(host.askpass.prompts()[0].contains("Verification code"), "{}", host.explain(&case, &run));
    }
    assert_eq!(approved(&site), approved_before + 2, "each login a TOTP challenge approved at Verify");
    assert_eq!(authy_checks(), checks, "no login went to Authy after the switch");
    report_timing(test, "whole test", started.elapsed());
}
