//! Class 12 of the adversarial suite: 64 parallel offline authentications through libpam,
//! mixing the right code, replays of a code accepted before and wrong codes. Exactly one
//! login may pass, every other attempt must be counted as a failure in the state file (no
//! lost update), and the file must be a valid state record afterwards.

#![allow(clippy::disallowed_methods)]

mod common;

use common::*;
use pam_authy::offline::{OfflineParams, code_at};
use pam_authy::secret::Secret;
use pam_authy::state::UserState;
use pam_harness::{PAM_MAXTRIES, PAM_SUCCESS};
use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SEED: &str = "JBSWY3DPEHPK3PXPJBSWY3DP";
const PARAMS: OfflineParams = OfflineParams { digits: 6, period_secs: 30, skew_steps: 1 };

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("time").as_secs()
}

fn code(at: u64) -> String {
    code_at(&Secret::from(SEED), at, &PARAMS).expect("code").expose().to_owned()
}

fn offline_login(dir: &TestDir, code: &str) -> i32 {
    dir.authenticate("svc", &current_user(), &mut token_then_offline("1234567", vec![code.to_owned(); 10])).code
}

#[test]
fn sixty_four_parallel_logins_accept_one_code_once_and_count_every_failure() {
    // Keep the whole run inside one time step and the next, so the codes keep their meaning.
    if now() % 30 > 15 {
        std::thread::sleep(Duration::from_secs(30 - now() % 30));
    }
    let (sandbox, id) = sandbox();
    let dir = TestDir::new();
    let text = offline_config(
        &dir,
        &sandbox,
        id,
        SEED,
        &dir.state_dir(),
        "max_tries = 1",
        "max_failures = 100\nfailure_window_secs = 600",
    );
    dir.write_config(&text);
    dir.service("svc", "");

    let at = now();
    let (previous, current) = (code(at - 30), code(at));
    assert_ne!(previous, current);
    assert_eq!(offline_login(&dir, &previous), PAM_SUCCESS, "the code of the previous step, once");

    let dir = Arc::new(dir);
    let barrier = Arc::new(Barrier::new(64));
    let handles: Vec<_> = (0..64)
        .map(|i| {
            let (dir, barrier) = (dir.clone(), barrier.clone());
            let attempt = match i % 8 {
                0..=2 => current.clone(),
                3..=4 => previous.clone(),
                _ => format!("{:06}", (current.parse::<u32>().expect("digits") + 1 + i) % 1_000_000),
            };
            std::thread::spawn(move || {
                barrier.wait();
                (attempt.clone(), offline_login(&dir, &attempt))
            })
        })
        .collect();
    let results: Vec<(String, i32)> = handles.into_iter().map(|h| h.join().expect("thread")).collect();
    let passed: Vec<&(String, i32)> = results.iter().filter(|(_, c)| *c == PAM_SUCCESS).collect();
    assert_eq!(passed.len(), 1, "exactly one login may pass: {results:?}");
    assert_eq!(passed[0].0, current, "only the current code can pass: {results:?}");
    assert!(results.iter().all(|(_, c)| *c == PAM_SUCCESS || *c == PAM_MAXTRIES), "{results:?}");

    let hex: String = current_user().bytes().map(|b| format!("{b:02x}")).collect();
    let bytes = std::fs::read(dir.state_dir().join(format!("{hex}.json"))).expect("state file");
    let state: UserState = serde_json::from_slice(&bytes).expect("a valid state record");
    assert_eq!(state.failures.len(), 63, "every refused attempt is counted, none lost: {state:?}");
    assert_eq!(state.offline_used_until, Some((at / 30 + 1) * 30), "{state:?}");
    let leftovers: Vec<String> = std::fs::read_dir(dir.state_dir())
        .expect("state dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| !name.ends_with(".json") && !name.ends_with(".lock"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}
