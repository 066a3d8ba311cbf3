//! The benchmark of docs/performance.md: pam_authy.so through real libpam, side by side with
//! its baselines in one run, interleaved (`cargo bench --bench pam`; `-- --smoke` for CI).
//!
//! 1. Offline path (API unreachable, local TOTP, replay state written) against Debian's
//!    pam_google_authenticator.so configured with TOTP_AUTH and DISALLOW_REUSE, success and
//!    failure. 2. Online path (valid token over TLS against the sandbox) against one fresh
//!    HTTPS GET of the same endpoint with the same TLS stack; the Verify backend's TOTP code
//!    and SMS-then-check logins against the same requests made bare. 3. Push: approval -> return,
//!    per poll interval. 4. Per process: each login in a fresh process (the harness crate's
//!    small `pam-login` application), as sshd pays it, module load included: the offline path
//!    against pam_google_authenticator.so, an unmapped user under `unmapped_users = "ignore"`
//!    (the fixed cost) and the bare load of the module against pam_permit.so. 5. Footprint: .so
//!    size, RSS, threads and fds around one authentication, measured in a child process.
//!    Nothing here asserts on time.

#![allow(clippy::disallowed_methods)]

#[path = "../tests/common/mod.rs"]
mod common;

use common::{TestDir, current_user as user, module_path};

use authy_sandbox::{Fault, FaultScope, PushScenario, PushStatus, Sandbox, SandboxConfig};
use pam_authy::offline::{OfflineParams, code_at};
use pam_authy::secret::Secret;
use pam_harness::{Items, Message, PAM_SUCCESS, Reply};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SEED: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const API_KEY: &str = "bench-api-key-0123456789";
const GOOGLE_AUTHENTICATOR: &str = "/lib/x86_64-linux-gnu/security/pam_google_authenticator.so";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Ok(mode) = std::env::var("PAM_AUTHY_BENCH_CHILD") {
        std::process::exit(child(&mode));
    }
    let smoke = args.iter().any(|a| a == "--smoke");
    let runs = if smoke { 5 } else { 300 };
    let bench = Bench::new();
    let mut table = Vec::new();
    println!(
        "pam_authy benchmark ({} mode, {runs} runs per row, interleaved with its baseline)",
        if smoke { "smoke" } else { "full" }
    );
    // `--only offline|online|verify|push|portable|process` runs one part (while optimising); the report needs all.
    let only = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1)).map(String::as_str);
    let wanted = |part: &str| only.is_none_or(|o| o == part);
    // The offline rows load pam_google_authenticator.so into this process, after which every
    // later TLS login here runs about 1 ms slower (measured, cause outside this project):
    // they go last so that they cannot distort the online and push rows.
    if wanted("online") {
        table.extend(bench.online(runs));
    }
    if wanted("verify") {
        table.extend(bench.verify(runs));
    }
    if wanted("push") {
        table.extend(bench.push(if smoke { 2 } else { 20 }));
    }
    // `--portable PATH`: the portable build's libpam_authy.so (scripts/build-portable) beside
    // this run's module.
    let portable = args.iter().position(|a| a == "--portable").and_then(|i| args.get(i + 1)).map(PathBuf::from);
    let mut portable_size = None;
    if let Some(portable) = portable.filter(|_| wanted("portable")) {
        table.push(bench.portable(runs, &portable));
        portable_size = Some(bench.portable_size(&portable));
    }
    if wanted("offline") {
        table.extend(bench.offline(runs));
    }
    if wanted("process") {
        table.extend(bench.process_rows(runs));
    }
    let footprint = bench.footprint();
    let mut report = render(&table, &footprint);
    report.extend(portable_size);
    println!("\n{report}");
    let out = bench
        .module
        .parent()
        .map(|p| p.join("pam-bench-report.md"))
        .unwrap_or_else(|| PathBuf::from("pam-bench-report.md"));
    let _ = std::fs::write(&out, &report);
    println!("(report written to {})", out.display());
}

/// Median and spread of samples in microseconds.
#[derive(Clone, Copy)]
struct Stats {
    median: f64,
    p10: f64,
    p90: f64,
}

fn stats(samples: &mut [Duration]) -> Stats {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e6;
    Stats { median: at(0.5), p10: at(0.1), p90: at(0.9) }
}

struct Row {
    what: String,
    ours: Stats,
    baseline_name: String,
    baseline: Option<Stats>,
    /// Per-process and Verify rows: the median of the ratios and of the differences of each (ours,
    /// baseline) pair, which holds when the machine's speed drifts during the run.
    pairwise: Option<Pairwise>,
    goal: String,
}

#[derive(Clone, Copy)]
struct Pairwise {
    ratio: f64,
    difference_us: f64,
}

fn pairwise(ours: &[Duration], baseline: &[Duration]) -> Pairwise {
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let pairs = || ours.iter().zip(baseline).map(|(a, b)| (a.as_secs_f64() * 1e6, b.as_secs_f64() * 1e6));
    Pairwise {
        ratio: median(pairs().map(|(a, b)| a / b).collect()),
        difference_us: median(pairs().map(|(a, b)| a - b).collect()),
    }
}

/// The raw samples of one row compared pair by pair; a per-process row's child, in its own
/// mount namespace, hands them back as one line of text.
struct Samples {
    what: String,
    baseline_name: String,
    goal: String,
    ours: Vec<Duration>,
    baseline: Vec<Duration>,
}

impl Samples {
    fn row(&self) -> Row {
        Row {
            what: self.what.clone(),
            ours: stats(&mut self.ours.clone()),
            baseline_name: self.baseline_name.clone(),
            baseline: Some(stats(&mut self.baseline.clone())),
            pairwise: Some(pairwise(&self.ours, &self.baseline)),
            goal: self.goal.clone(),
        }
    }

    fn line(&self) -> String {
        let micros =
            |samples: &[Duration]| samples.iter().map(|d| d.as_micros().to_string()).collect::<Vec<_>>().join(",");
        format!(
            "samples\t{}\t{}\t{}\t{}\t{}",
            self.what,
            self.baseline_name,
            self.goal,
            micros(&self.ours),
            micros(&self.baseline)
        )
    }

    fn parse(line: &str) -> Option<Samples> {
        let fields: Vec<&str> = line.strip_prefix("samples\t")?.split('\t').collect();
        let [what, baseline_name, goal, ours, baseline] = fields.as_slice() else { return None };
        let micros = |text: &str| -> Option<Vec<Duration>> {
            text.split(',').map(|n| n.parse().ok().map(Duration::from_micros)).collect()
        };
        Some(Samples {
            what: what.to_string(),
            baseline_name: baseline_name.to_string(),
            goal: goal.to_string(),
            ours: micros(ours)?,
            baseline: micros(baseline)?,
        })
    }
}

struct Footprint {
    so_bytes: u64,
    rss_kib: Option<(u64, u64)>,
    threads: Option<(u64, u64)>,
    fds: Option<(u64, u64)>,
}

fn render(rows: &[Row], footprint: &Footprint) -> String {
    let fmt = |s: &Stats| format!("{:.0} µs (p10 {:.0}, p90 {:.0})", s.median, s.p10, s.p90);
    let mut text = String::from(
        "| measurement | pam_authy | baseline | baseline figure | ratio | goal |\n|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let (baseline, ratio) = match (&row.baseline, row.pairwise) {
            (Some(b), Some(p)) => (fmt(b), format!("{:.2} ({:+.0} µs), pair by pair", p.ratio, p.difference_us)),
            (Some(b), None) => (fmt(b), format!("{:.2}", row.ours.median / b.median)),
            (None, _) => ("—".into(), "—".into()),
        };
        text += &format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            row.what,
            fmt(&row.ours),
            row.baseline_name,
            baseline,
            ratio,
            row.goal
        );
    }
    text += &format!(
        "| stripped .so size | {} bytes ({:.2} MB) | | | | ≤ 3 MB |\n",
        footprint.so_bytes,
        footprint.so_bytes as f64 / 1e6
    );
    let pair = |p: Option<(u64, u64)>, unit: &str| p.map_or("—".into(), |(a, b)| format!("{a} → {b} {unit}"));
    text += &format!(
        "| peak RSS (VmHWM) before → after one authentication | {} | | | | small |\n",
        pair(footprint.rss_kib, "KiB")
    );
    text += &format!("| threads before → after | {} | | | | equal |\n", pair(footprint.threads, ""));
    text += &format!("| open fds before → after | {} | | | | equal |\n", pair(footprint.fds, ""));
    text
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn answer(texts: Vec<String>) -> impl FnMut(&Message) -> Reply {
    let mut texts = texts.into_iter();
    move |m: &Message| if m.style.is_prompt() { Reply::Text(texts.next().unwrap_or_default()) } else { Reply::text("") }
}

struct Bench {
    module: PathBuf,
    dir: TestDir,
    sandbox: Sandbox,
    authy_id: u64,
    next_step: std::cell::Cell<u64>,
}

impl Bench {
    fn new() -> Bench {
        let sandbox =
            Sandbox::start(SandboxConfig { api_key: API_KEY.into(), ..SandboxConfig::default() }).expect("sandbox");
        let authy_id = sandbox.add_user("bench@example.org", "555-000-1234", 1);
        let dir = TestDir::new();
        dir.write("ca.pem", &sandbox.ca_pem(), 0o644);
        Bench { module: module_path(), dir, sandbox, authy_id, next_step: std::cell::Cell::new(0) }
    }

    fn confdir(&self) -> PathBuf {
        self.dir.confdir()
    }

    fn config(&self, name: &str, url: &str) -> PathBuf {
        let text = format!(
            "[api]\nurl = \"{url}\"\napi_key = \"{API_KEY}\"\nca_file = \"{}\"\ntimeout_secs = 5\n[auth]\nmax_tries = 1\n[offline]\nstate_dir = \"{}\"\nmax_failures = 100\n[users]\n\"{}\" = {{ authy_id = {}, offline_secret = \"{SEED}\" }}\n",
            self.dir.path().join("ca.pem").display(),
            self.dir.path().join("state").display(),
            user(),
            self.authy_id
        );
        self.dir.write(name, &text, 0o600)
    }

    fn service(&self, name: &str, line: &str) {
        self.dir.write(
            &format!("pam.d/{name}"),
            &format!("auth required {line}\naccount required pam_permit.so\n"),
            0o644,
        );
    }

    fn run(&self, service: &str, answers: Vec<String>) -> (Duration, i32) {
        self.run_with(service, &mut answer(answers))
    }

    fn run_with(&self, service: &str, responder: &mut dyn FnMut(&Message) -> Reply) -> (Duration, i32) {
        let items = Items { rhost: Some("192.0.2.1".into()), tty: Some("ssh".into()), ruser: None };
        let started = Instant::now();
        let result =
            pam_harness::authenticate(Some(&self.confdir()), service, &user(), &items, responder).expect("pam");
        (started.elapsed(), result.code)
    }

    /// Forgets the accepted step and the failures, keeping the directory (as in production,
    /// where it exists from the first login on).
    fn reset_offline_state(&self) {
        reset_state(&self.dir.path().join("state"));
    }

    fn google_file(&self) -> PathBuf {
        self.dir.path().join("google_authenticator")
    }

    fn reset_google(&self) {
        self.dir.write(
            "google_authenticator",
            &format!("{SEED}\n\" TOTP_AUTH\n\" DISALLOW_REUSE\n\" WINDOW_SIZE 3\n"),
            0o600,
        );
    }

    fn offline(&self, runs: usize) -> Vec<Row> {
        let closed = pam_harness::closed_port();
        let config = self.config("offline.toml", &format!("https://127.0.0.1:{closed}"));
        self.service("ours-offline", &format!("{} config={}", self.module.display(), config.display()));
        let have_google = Path::new(GOOGLE_AUTHENTICATOR).exists();
        if have_google {
            self.service(
                "google",
                &format!(
                    "{GOOGLE_AUTHENTICATOR} secret={} user={} allowed_perm=0600",
                    self.google_file().display(),
                    user()
                ),
            );
        } else {
            println!("pam_google_authenticator.so not installed: offline rows have no baseline");
        }
        let params = OfflineParams { digits: 6, period_secs: 30, skew_steps: 1 };
        let code = || code_at(&Secret::from(SEED), now(), &params).expect("code").expose().to_owned();
        let mut rows = Vec::new();
        for success in [true, false] {
            let (mut ours, mut google) = (Vec::new(), Vec::new());
            for i in 0..runs + 3 {
                self.reset_offline_state();
                self.reset_google();
                let offline = if success { code() } else { "000000".into() };
                let (ours_time, ours_code) = self.run("ours-offline", vec!["1234567".into(), offline.clone()]);
                assert_eq!(ours_code == PAM_SUCCESS, success, "pam_authy offline path returned {ours_code}");
                let google_time = if have_google {
                    let (time, code) = self.run("google", vec![offline]);
                    assert_eq!(code == PAM_SUCCESS, success, "pam_google_authenticator returned {code}");
                    Some(time)
                } else {
                    None
                };
                if i >= 3 {
                    ours.push(ours_time);
                    google.extend(google_time);
                }
            }
            rows.push(Row {
                what: format!(
                    "offline path, {} (API unreachable, local TOTP, state written)",
                    if success { "right code" } else { "wrong code" }
                ),
                ours: stats(&mut ours),
                baseline_name: "pam_google_authenticator.so (TOTP_AUTH, DISALLOW_REUSE)".into(),
                baseline: (!google.is_empty()).then(|| stats(&mut google)),
                pairwise: None,
                goal: "ratio ≤ 1.2".into(),
            });
        }
        rows
    }

    /// The same online login through the portable build and through this run's module,
    /// alternately, each with a token of a time step no other login used.
    fn portable(&self, runs: usize, portable: &Path) -> Row {
        let config = self.config("portable.toml", &self.sandbox.url());
        self.service("native-online", &format!("{} config={}", self.module.display(), config.display()));
        self.service("portable-online", &format!("{} config={}", portable.display(), config.display()));
        let (mut native, mut zig) = (Vec::new(), Vec::new());
        for i in 0..runs + 3 {
            for (service, samples) in [("portable-online", &mut zig), ("native-online", &mut native)] {
                let t = self.fresh_time();
                self.sandbox.set_clock(Some(t));
                let token = self.sandbox.token_at(self.authy_id, t).expect("token");
                let (elapsed, code) = self.run(service, vec![token]);
                assert_eq!(code, PAM_SUCCESS, "{service}");
                if i >= 3 {
                    samples.push(elapsed);
                }
            }
        }
        self.sandbox.set_clock(None);
        Row {
            what: "online path through the portable build (glibc 2.17, cargo-zigbuild), local sandbox".into(),
            ours: stats(&mut zig),
            baseline_name: format!("the same login through {}", self.module.display()),
            baseline: Some(stats(&mut native)),
            pairwise: None,
            goal: "ratio ≤ 1.1".into(),
        }
    }

    fn portable_size(&self, portable: &Path) -> String {
        let size = |path: &Path| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let (zig, native) = (size(portable), size(&self.module));
        format!(
            "| .so size, portable build | {zig} bytes | {} | {native} bytes | {:.3} | ≤ 1.05 |\n",
            self.module.display(),
            zig as f64 / native.max(1) as f64
        )
    }

    /// Loopback first, where the fixed cost of being a PAM module shows most; then with the
    /// sandbox answering 20 ms late, a near API's round trip.
    fn online(&self, runs: usize) -> Vec<Row> {
        [None, Some(Duration::from_millis(20))]
            .into_iter()
            .map(|delay| {
                self.sandbox.set_fault(FaultScope::Global, delay.map(Fault::Slow));
                let (ours, baseline) = self.online_pairs(if delay.is_some() { runs.min(100) } else { runs });
                self.sandbox.set_fault(FaultScope::Global, None);
                let place = match delay {
                    None => "the local sandbox".to_owned(),
                    Some(d) => format!("the sandbox answering {} ms late", d.as_millis()),
                };
                Row {
                    what: format!("online path, valid token over TLS against {place}"),
                    ours,
                    baseline_name:
                        "one fresh HTTPS GET of /verify, same client and TLS stack (rustls/ring, sandbox CA only)"
                            .into(),
                    baseline: Some(baseline),
                    pairwise: None,
                    goal: "ratio ≤ 1.3".into(),
                }
            })
            .collect()
    }

    /// A sandbox time in a time step no login of this run has used, so that the sandbox never
    /// sees a reused token.
    fn fresh_time(&self) -> u64 {
        self.fresh_time_apart(2)
    }

    /// `fresh_time`, the next one at least `steps` minutes later.
    fn fresh_time_apart(&self, steps: u64) -> u64 {
        let step = self.next_step.get();
        self.next_step.set(step + steps);
        now() + 60 * step
    }

    fn online_pairs(&self, runs: usize) -> (Stats, Stats) {
        let config = self.config("online.toml", &self.sandbox.url());
        self.service("ours-online", &format!("{} config={}", self.module.display(), config.display()));
        let api = pam_authy::config::Config::load(&config).expect("config").api;
        let id = pam_authy::config::AuthyId::new(self.authy_id).expect("id");
        let (mut ours, mut baseline) = (Vec::new(), Vec::new());
        for i in 0..runs + 3 {
            let t = self.fresh_time();
            self.sandbox.set_clock(Some(t));
            let token = self.sandbox.token_at(self.authy_id, t).expect("token");
            let (ours_time, code) = self.run("ours-online", vec![token]);
            assert_eq!(code, PAM_SUCCESS, "online path");
            let t = self.fresh_time();
            self.sandbox.set_clock(Some(t));
            let token = pam_authy::backend::Token::parse(&self.sandbox.token_at(self.authy_id, t).expect("token"))
                .expect("token");
            let started = Instant::now();
            let client = pam_authy::authy::AuthyClient::with_configured_anchors_only(&api).expect("client");
            let verdict = client.verify_token(id, &token);
            drop(client);
            let baseline_time = started.elapsed();
            assert_eq!(verdict, Ok(pam_authy::backend::TokenVerdict::Valid));
            if i >= 3 {
                ours.push(ours_time);
                baseline.push(baseline_time);
            }
        }
        self.sandbox.set_clock(None);
        (stats(&mut ours), stats(&mut baseline))
    }

    /// The Verify backend's two online logins beside the bare requests they make, on
    /// loopback and with the sandbox answering 20 ms late.
    fn verify(&self, runs: usize) -> Vec<Row> {
        let factors = common::VerifyFactors::new(&self.sandbox);
        let extra =
            format!("[auth]\nmax_tries = 1\n[offline]\nstate_dir = \"{}\"", self.dir.path().join("state").display());
        let text = common::verify_config_for(&self.dir, &self.sandbox, &factors.all(), &extra);
        let config = self.dir.write("verify.toml", &text, 0o600);
        self.service("ours-verify", &format!("{} config={}", self.module.display(), config.display()));
        // The TOTP login again with its replay claim on tmpfs, where fsync returns at once:
        // what the claim's durability costs.
        let volatile = tempfile::Builder::new().prefix("pam-authy-bench.").tempdir_in("/dev/shm").expect("tmpfs dir");
        let tmpfs_config = self.dir.write(
            "verify-tmpfs.toml",
            &text.replace(&self.dir.path().join("state").display().to_string(), &volatile.path().display().to_string()),
            0o600,
        );
        self.service("ours-verify-tmpfs", &format!("{} config={}", self.module.display(), tmpfs_config.display()));
        let loaded = pam_authy::config::Config::load(&config).expect("config");
        let verify = loaded.verify.clone().expect("[verify]");
        let bare = BareVerify {
            api: loaded.api,
            service: verify.service_sid.clone(),
            identity: pam_authy::verify::Identity::parse(common::VERIFY_IDENTITY).expect("identity"),
            factor: pam_authy::verify::FactorSid::parse(&factors.totp).expect("factor"),
            phone: pam_authy::verify::Phone::parse(common::VERIFY_PHONE).expect("phone"),
            verify,
        };
        let mut rows = Vec::new();
        for delay in [None, Some(Duration::from_millis(20))] {
            self.sandbox.set_fault(FaultScope::Verify, delay.map(Fault::Slow));
            let runs = if delay.is_some() { runs.min(100) } else { runs };
            let place = match delay {
                None => "the local sandbox".to_owned(),
                Some(d) => format!("the sandbox answering {} ms late", d.as_millis()),
            };
            let state = self.dir.path().join("state");
            let (ours, baseline) = self.verify_pairs(runs, ("ours-verify", &state), &factors.totp, &bare, false);
            rows.push(
                Samples {
                    what: format!("Verify: a TOTP code over TLS against {place}"),
                    baseline_name: "one fresh HTTPS POST of the same Challenge, same client and TLS stack".into(),
                    goal: "ratio ≤ 1.3".into(),
                    ours,
                    baseline,
                }
                .row(),
            );
            let (ours, baseline) =
                self.verify_pairs(runs, ("ours-verify-tmpfs", volatile.path()), &factors.totp, &bare, false);
            rows.push(
                Samples {
                    what: format!("Verify: a TOTP code, its replay claim on tmpfs (fsync free), against {place}"),
                    baseline_name: "one fresh HTTPS POST of the same Challenge, same client and TLS stack".into(),
                    goal: "—".into(),
                    ours,
                    baseline,
                }
                .row(),
            );
            let (ours, baseline) = self.verify_pairs(runs, ("ours-verify", &state), &factors.totp, &bare, true);
            rows.push(
                Samples {
                    what: format!("Verify: sms, then its code checked, against {place}"),
                    baseline_name:
                        "one fresh client making the same two HTTPS POSTs (Verifications, VerificationCheck)".into(),
                    goal: "ratio ≤ 1.3".into(),
                    ours,
                    baseline,
                }
                .row(),
            );
        }
        self.sandbox.set_fault(FaultScope::Verify, None);
        self.sandbox.set_clock(None);
        rows
    }

    /// Logins through the module and the bare requests, alternately, each at a sandbox time
    /// of its own so that no code repeats, and far enough apart that the factor stays under
    /// Verify's 100 challenges a day; `sms` logs in by an SMS code instead of TOTP.
    fn verify_pairs(
        &self,
        runs: usize,
        (service, state): (&str, &Path),
        totp: &str,
        bare: &BareVerify,
        sms: bool,
    ) -> (Vec<Duration>, Vec<Duration>) {
        let (mut ours, mut baseline) = (Vec::new(), Vec::new());
        for i in 0..runs + 3 {
            // The replay guard keeps each accepted code's tag for minutes; a login a minute
            // later in production would find the state as small.
            reset_state(state);
            let t = self.fresh_time_apart(VERIFY_STEPS_APART);
            self.sandbox.set_clock(Some(t));
            let (ours_time, code) = if sms {
                let sandbox = &self.sandbox;
                let mut asked = 0;
                self.run_with(service, &mut |m: &Message| {
                    if !m.style.is_prompt() {
                        return Reply::text("");
                    }
                    asked += 1;
                    if asked == 1 {
                        Reply::text("sms")
                    } else {
                        Reply::Text(sandbox.verify_sent_codes().last().map(|s| s.code.clone()).unwrap_or_default())
                    }
                })
            } else {
                self.run(service, vec![self.sandbox.verify_factor_code(totp, t).expect("code")])
            };
            assert_eq!(code, PAM_SUCCESS, "Verify {}", if sms { "sms" } else { "TOTP" });
            let t = self.fresh_time_apart(VERIFY_STEPS_APART);
            self.sandbox.set_clock(Some(t));
            let bare_time = if sms { bare.sms_and_check(&self.sandbox) } else { bare.totp(&self.sandbox, t) };
            if i >= 3 {
                ours.push(ours_time);
                baseline.push(bare_time);
            }
        }
        (ours, baseline)
    }

    fn push(&self, runs: usize) -> Vec<Row> {
        let mut rows = Vec::new();
        for poll_ms in [200u64, 500, 1000] {
            let config = self.dir.path().join(format!("push{poll_ms}.toml"));
            let text = std::fs::read_to_string(self.config("push-base.toml", &self.sandbox.url()))
                .expect("config")
                .replace("max_tries = 1", &format!("max_tries = 1\npush_poll_ms = {poll_ms}\npush_timeout_secs = 30"));
            self.dir.write(&format!("push{poll_ms}.toml"), &text, 0o600);
            let service = format!("push{poll_ms}");
            self.service(&service, &format!("{} config={} method=push", self.module.display(), config.display()));
            self.sandbox.set_push_scenario(FaultScope::User(self.authy_id), PushScenario::Manual);
            let mut latencies = Vec::new();
            for i in 0..runs {
                let seen = self.sandbox.approval_requests().len();
                let sandbox = &self.sandbox;
                let delay = Duration::from_millis(150 + (i as u64 * 137) % poll_ms);
                let approved_at = std::thread::scope(|scope| {
                    let approver = scope.spawn(move || {
                        loop {
                            let requests = sandbox.approval_requests();
                            if requests.len() > seen {
                                std::thread::sleep(delay);
                                sandbox.decide_push(&requests[seen].uuid, PushStatus::Approved);
                                return Instant::now();
                            }
                            std::thread::sleep(Duration::from_millis(2));
                        }
                    });
                    let items = Items { rhost: None, tty: Some("/dev/pts/1".into()), ruser: None };
                    let result = pam_harness::authenticate(
                        Some(&self.confdir()),
                        &service,
                        &user(),
                        &items,
                        &mut answer(vec![]),
                    )
                    .expect("pam");
                    let returned = Instant::now();
                    assert_eq!(result.code, PAM_SUCCESS, "push {}", result.text());
                    let approved = approver.join().expect("approver");
                    returned - approved
                });
                latencies.push(approved_at);
            }
            rows.push(Row {
                what: format!("push: approval → pam_authenticate returns, poll {poll_ms} ms"),
                ours: stats(&mut latencies),
                baseline_name: "poll interval".into(),
                baseline: Some(Stats {
                    median: poll_ms as f64 * 1000.0,
                    p10: poll_ms as f64 * 1000.0,
                    p90: poll_ms as f64 * 1000.0,
                }),
                pairwise: None,
                goal: format!("≤ {} ms", poll_ms + 100),
            });
        }
        rows
    }

    /// One login in a fresh process, as sshd pays it: `pam-login` (the harness crate's small
    /// PAM application), timed from spawn to exit. Its exit status is the PAM code.
    fn login_process(&self, app: &Path, service: &str, answers: &[String]) -> (Duration, i32) {
        let mut command = std::process::Command::new(app);
        command
            .arg(self.confdir())
            .arg(service)
            .arg(user())
            .args(answers)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let started = Instant::now();
        let status = command.status().expect("login process");
        (started.elapsed(), status.code().unwrap_or(-1))
    }

    /// Per-process samples: in each round, one login of each of the five stacks, each in its
    /// own process, in turn; ratios and differences are taken pair by pair within the round.
    fn per_process(&self, runs: usize) -> Vec<Samples> {
        let app = login_app();
        let closed = pam_harness::closed_port();
        let offline = self.config("process-offline.toml", &format!("https://127.0.0.1:{closed}"));
        self.service("process-ours-offline", &format!("{} config={}", self.module.display(), offline.display()));
        let unmapped = std::fs::read_to_string(&offline)
            .expect("config")
            .replace("max_tries = 1", "max_tries = 1\nunmapped_users = \"ignore\"")
            .replace(&format!("\"{}\" = ", user()), "\"bench-someone-else\" = ");
        let unmapped = self.dir.write("process-unmapped.toml", &unmapped, 0o600);
        let stack = |name: &str, lines: &[String]| {
            self.dir.write(&format!("pam.d/{name}"), &(lines.join("\n") + "\naccount required pam_permit.so\n"), 0o644);
        };
        stack(
            "process-ours-unmapped",
            &[
                format!("auth required {} config={}", self.module.display(), unmapped.display()),
                "auth required pam_permit.so".into(),
            ],
        );
        stack("process-permit", &["auth required pam_permit.so".into()]);
        // Loaded (and unloaded at pam_end) but never called: what the module costs before its
        // first instruction runs.
        stack(
            "process-ours-loaded",
            &[
                "auth sufficient pam_permit.so".into(),
                format!("auth required {} config={}", self.module.display(), unmapped.display()),
            ],
        );
        let have_google = Path::new(GOOGLE_AUTHENTICATOR).exists();
        stack(
            "process-google",
            &[format!(
                "auth required {GOOGLE_AUTHENTICATOR} secret={} user={} allowed_perm=0600",
                self.google_file().display(),
                user()
            )],
        );
        // The same two logins with what they write on tmpfs, where fsync returns at once: the
        // difference to the rows above is what durability costs each module on this disk.
        let volatile = tempfile::Builder::new().prefix("pam-authy-bench.").tempdir_in("/dev/shm").expect("tmpfs dir");
        let volatile_state = volatile.path().join("state");
        let volatile_google = volatile.path().join("google_authenticator");
        let volatile_config = self.dir.write(
            "process-offline-tmpfs.toml",
            &std::fs::read_to_string(&offline)
                .expect("config")
                .replace(&self.dir.path().join("state").display().to_string(), &volatile_state.display().to_string()),
            0o600,
        );
        self.service(
            "process-ours-offline-tmpfs",
            &format!("{} config={}", self.module.display(), volatile_config.display()),
        );
        stack(
            "process-google-tmpfs",
            &[format!(
                "auth required {GOOGLE_AUTHENTICATOR} secret={} user={} allowed_perm=0600",
                volatile_google.display(),
                user()
            )],
        );
        let params = OfflineParams { digits: 6, period_secs: 30, skew_steps: 1 };
        let code = || code_at(&Secret::from(SEED), now(), &params).expect("code").expose().to_owned();
        let (mut ours_offline, mut google, mut ours_unmapped, mut permit, mut loaded) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut ours_volatile, mut google_volatile) = (Vec::new(), Vec::new());
        for i in 0..runs + 3 {
            self.reset_offline_state();
            self.reset_google();
            let _ = std::fs::remove_dir_all(&volatile_state);
            std::fs::copy(self.google_file(), &volatile_google).expect("google secret on tmpfs");
            let offline_code = code();
            let (offline_time, rc) =
                self.login_process(&app, "process-ours-offline", &["1234567".into(), offline_code.clone()]);
            assert_eq!(rc, PAM_SUCCESS, "pam_authy offline path in its own process");
            let google_time = have_google.then(|| {
                let (time, rc) = self.login_process(&app, "process-google", std::slice::from_ref(&offline_code));
                assert_eq!(rc, PAM_SUCCESS, "pam_google_authenticator in its own process");
                time
            });
            let (offline_volatile_time, rc) =
                self.login_process(&app, "process-ours-offline-tmpfs", &["1234567".into(), offline_code.clone()]);
            assert_eq!(rc, PAM_SUCCESS, "pam_authy offline path, state on tmpfs, in its own process");
            let google_volatile_time = have_google.then(|| {
                let (time, rc) = self.login_process(&app, "process-google-tmpfs", &[offline_code]);
                assert_eq!(rc, PAM_SUCCESS, "pam_google_authenticator, secret on tmpfs, in its own process");
                time
            });
            let (unmapped_time, rc) = self.login_process(&app, "process-ours-unmapped", &[]);
            assert_eq!(rc, PAM_SUCCESS, "pam_authy unmapped user, then pam_permit, in its own process");
            let (permit_time, rc) = self.login_process(&app, "process-permit", &[]);
            assert_eq!(rc, PAM_SUCCESS, "pam_permit in its own process");
            let (loaded_time, rc) = self.login_process(&app, "process-ours-loaded", &[]);
            assert_eq!(rc, PAM_SUCCESS, "pam_permit with pam_authy loaded behind it");
            if i >= 3 {
                ours_offline.push(offline_time);
                google.extend(google_time);
                ours_volatile.push(offline_volatile_time);
                google_volatile.extend(google_volatile_time);
                ours_unmapped.push(unmapped_time);
                permit.push(permit_time);
                loaded.push(loaded_time);
            }
        }
        let permit_name = "pam_permit.so alone, same application";
        let mut rows = Vec::new();
        if have_google {
            rows.push(Samples {
                what: "per process: offline path, right code, in a fresh process (module load included)".into(),
                baseline_name: "pam_google_authenticator.so (TOTP_AUTH, DISALLOW_REUSE), same application".into(),
                goal: "ratio ≤ 1.2".into(),
                ours: ours_offline,
                baseline: google.clone(),
            });
            rows.push(Samples {
                what: "per process: offline path, state on tmpfs (fsync free): what is left without durability".into(),
                baseline_name: "pam_google_authenticator.so, secret file on tmpfs, same application".into(),
                goal: "—".into(),
                ours: ours_volatile,
                baseline: google_volatile,
            });
        } else {
            println!("pam_google_authenticator.so not installed: no per-process offline row");
        }
        rows.push(Samples {
            what: "per process: unmapped user, `unmapped_users = \"ignore\"`, then pam_permit.so (the fixed cost)"
                .into(),
            baseline_name: permit_name.into(),
            goal: "≤ +300 µs".into(),
            ours: ours_unmapped,
            baseline: permit.clone(),
        });
        rows.push(Samples {
            what: "per process: pam_authy.so loaded and unloaded but not called (`sufficient pam_permit.so` before it)"
                .into(),
            baseline_name: permit_name.into(),
            goal: "—".into(),
            ours: loaded,
            baseline: permit.clone(),
        });
        if have_google {
            rows.push(Samples {
                what: "per process: pam_google_authenticator.so, right code (for scale)".into(),
                baseline_name: permit_name.into(),
                goal: "—".into(),
                ours: google,
                baseline: permit,
            });
        }
        rows
    }

    /// The per-process rows, run in a private mount namespace whose /dev/log is a socket this
    /// benchmark drains: without a syslog socket (containers, CI) glibc's syslog(3) falls back
    /// to writing pam_google_authenticator's lines to /dev/console, several milliseconds per
    /// login that its real cost does not include. Run directly when that is not possible.
    fn process_rows(&self, runs: usize) -> Vec<Row> {
        let can_capture = common::is_root() && Path::new("/usr/bin/unshare").exists();
        if !can_capture {
            println!("per-process rows: not root or no unshare, run with the host's /dev/log (or none)");
            return self.per_process(runs).iter().map(Samples::row).collect();
        }
        let hostdev = TestDir::new();
        let output = std::process::Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", common::NAMESPACE_SCRIPT, "sh"])
            .arg(hostdev.path())
            .arg(std::env::current_exe().expect("exe"))
            .env("PAM_AUTHY_BENCH_CHILD", "process")
            .env("BENCH_RUNS", runs.to_string())
            .output()
            .expect("unshare");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "per-process rows: {text}{}", String::from_utf8_lossy(&output.stderr));
        text.lines().filter_map(Samples::parse).map(|samples| samples.row()).collect()
    }

    fn footprint(&self) -> Footprint {
        let release_so = self.module.parent().and_then(|d| d.parent()).map(|d| d.join("libpam_authy.so"));
        let so = release_so.filter(|p| p.exists()).unwrap_or_else(|| self.module.clone());
        let so_bytes = std::fs::metadata(&so).map(|m| m.len()).unwrap_or(0);
        // By host name, so the resolver's threads are part of what must be gone afterwards.
        let by_name = self.sandbox.url().replace("127.0.0.1", "localhost");
        let config = self.config("footprint.toml", &by_name);
        self.service("footprint", &format!("{} config={}", self.module.display(), config.display()));
        let token = self.sandbox.current_token(self.authy_id).expect("token");
        let output = std::process::Command::new(std::env::current_exe().expect("exe"))
            .env("PAM_AUTHY_BENCH_CHILD", "footprint")
            .env("BENCH_CONFDIR", self.confdir())
            .env("BENCH_TOKEN", token)
            .output()
            .expect("child");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let field = |name: &str| -> Option<(u64, u64)> {
            let line = text.lines().find(|l| l.starts_with(name))?;
            let mut parts = line.split_whitespace().skip(1).filter_map(|p| p.parse().ok());
            Some((parts.next()?, parts.next()?))
        };
        let code = text.lines().find_map(|l| l.strip_prefix("code ")).unwrap_or("?");
        assert_eq!(code, "0", "the footprint login must succeed: {text}");
        Footprint { so_bytes, rss_kib: field("rss"), threads: field("threads"), fds: field("fds") }
    }
}

/// Minutes of sandbox time between two Verify logins: 96 challenges a day for the factor.
const VERIFY_STEPS_APART: u64 = 15;

/// The Verify requests of a login made directly with the module's client, timed from the
/// client's creation to its drop.
struct BareVerify {
    api: pam_authy::config::ApiConfig,
    verify: pam_authy::config::VerifyConfig,
    service: pam_authy::verify::ServiceSid,
    identity: pam_authy::verify::Identity,
    factor: pam_authy::verify::FactorSid,
    phone: pam_authy::verify::Phone,
}

impl BareVerify {
    fn client(&self) -> pam_authy::verify::client::VerifyClient {
        pam_authy::verify::client::VerifyClient::with_configured_anchors_only(&self.api, &self.verify).expect("client")
    }

    fn totp(&self, sandbox: &Sandbox, at: u64) -> Duration {
        use pam_authy::verify::{client::VerifyHttp, form, paths};
        let code =
            pam_authy::backend::Token::parse(&sandbox.verify_factor_code(self.factor.as_str(), at).expect("code"))
                .expect("code");
        let started = Instant::now();
        let client = self.client();
        let (status, body) = client
            .post(&paths::challenges(&self.service, &self.identity), &form::totp_challenge(&self.factor, &code))
            .expect("challenge");
        drop(client);
        let elapsed = started.elapsed();
        assert!(status == 201 && String::from_utf8_lossy(&body).contains("\"approved\""), "{status}");
        elapsed
    }

    fn sms_and_check(&self, sandbox: &Sandbox) -> Duration {
        use pam_authy::verify::{client::VerifyHttp, form, paths};
        let started = Instant::now();
        let client = self.client();
        let (status, body) = client
            .post(
                &paths::verifications(&self.service),
                &form::verification(&self.phone, pam_authy::backend::Channel::Sms),
            )
            .expect("send");
        assert_eq!(status, 201);
        let sent: serde_json::Value = serde_json::from_slice(&body).expect("json");
        let sid = pam_authy::verify::VerificationSid::parse(sent["sid"].as_str().unwrap_or("")).expect("sid");
        let code = pam_authy::backend::Token::parse(&sandbox.verify_code(sid.as_str()).expect("code")).expect("code");
        let (status, body) = client
            .post(&paths::verification_check(&self.service), &form::verification_check(&sid, &code))
            .expect("check");
        drop(client);
        let elapsed = started.elapsed();
        assert!((200..300).contains(&status) && String::from_utf8_lossy(&body).contains("\"approved\""), "{status}");
        elapsed
    }
}

/// Forgets what a state directory holds about its users, keeping the directory.
fn reset_state(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|e| e == "json") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

fn proc_status(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

fn count(dir: &str) -> u64 {
    std::fs::read_dir(dir).map(|d| d.count() as u64).unwrap_or(0)
}

/// Runs one authentication in a fresh process and prints what it cost that process.
fn child(mode: &str) -> i32 {
    if mode == "process" {
        return process_child();
    }
    if mode != "footprint" {
        return 2;
    }
    let confdir = PathBuf::from(std::env::var("BENCH_CONFDIR").unwrap_or_default());
    let token = std::env::var("BENCH_TOKEN").unwrap_or_default();
    let (rss, threads, fds) = (proc_status("VmHWM:"), count("/proc/self/task"), count("/proc/self/fd"));
    let items = Items { rhost: Some("192.0.2.1".into()), tty: Some("ssh".into()), ruser: None };
    let result = pam_harness::authenticate(Some(&confdir), "footprint", &user(), &items, &mut answer(vec![token]));
    let code = result.map(|r| r.code).unwrap_or(-1);
    println!("code {code}");
    println!("rss {rss} {}", proc_status("VmHWM:"));
    println!("threads {threads} {}", count("/proc/self/task"));
    println!("fds {fds} {}", count("/proc/self/fd"));
    0
}

/// The harness crate's `pam-login`, built with this benchmark's profile (beside the
/// benchmark's own deps/ directory) when it is not there yet.
fn login_app() -> PathBuf {
    let exe = std::env::current_exe().expect("exe");
    let profile_dir = exe.parent().and_then(Path::parent).expect("profile directory");
    let app = profile_dir.join("pam-login");
    let profile = profile_dir.file_name().and_then(|n| n.to_str()).unwrap_or("release");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let built = std::process::Command::new(cargo)
        .args(["build", "--quiet", "--profile", profile, "-p", "pam-harness", "--bin", "pam-login"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(built && app.exists(), "cannot build pam-login ({})", app.display());
    app
}

/// Inside the private mount namespace of `process_rows`: /dev/log is a socket drained by a
/// thread, as a syslog daemon would; prints one line per row.
fn process_child() -> i32 {
    let runs = std::env::var("BENCH_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(5);
    let _ = std::fs::remove_file("/dev/log");
    let socket = std::os::unix::net::UnixDatagram::bind("/dev/log").expect("bind /dev/log");
    std::thread::spawn(move || {
        let mut buffer = [0u8; 8192];
        while socket.recv(&mut buffer).is_ok() {}
    });
    for samples in Bench::new().per_process(runs) {
        println!("{}", samples.line());
    }
    0
}
