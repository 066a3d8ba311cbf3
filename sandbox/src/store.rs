//! Everything the sandbox remembers: users, approval requests, faults, push scenarios, switches,
//! counters and the request log, plus the JSON state file.
//!
//! The store is plain data behind the server's one mutex; it performs no network I/O. Only
//! users (with their TOTP secrets and replay steps) are persisted: the state file is rewritten
//! atomically (temp file + rename, mode 0600 because it holds secrets) after every change to
//! them. Approvals, faults and the request log are per-run test state and are not persisted.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::clock::now_unix;
use crate::model::{ApprovalRecord, Fault, FaultScope, PushScenario, PushStatus, RecordedRequest};
use crate::verify_state::VerifyState;

/// The first authy_id handed out; real ids are large integers too.
pub(crate) const FIRST_AUTHY_ID: u64 = 1_000_001;
/// The request log keeps at most this many entries (oldest dropped) so a long demo cannot
/// grow without bound.
pub(crate) const MAX_RECORDED: usize = 10_000;
/// Likewise for approval requests.
pub(crate) const MAX_APPROVALS: usize = 10_000;

/// One sandbox user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct User {
    pub id: u64,
    pub emails: Vec<String>,
    /// Digits only.
    pub cellphone: String,
    pub country_code: u32,
    pub has_app: bool,
    pub registered: bool,
    pub confirmed: bool,
    pub account_disabled: bool,
    pub secret: Vec<u8>,
    pub created_at: u64,
    /// TOTP steps already accepted, for 60019 "Token was used recently".
    pub used_steps: Vec<u64>,
}

/// A fault plus how many more requests it applies to (`None` = until cleared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FaultRule {
    pub fault: Fault,
    pub remaining: Option<u32>,
}

/// One approval request.
#[derive(Debug, Clone)]
pub(crate) struct Approval {
    pub record: ApprovalRecord,
    /// 24-hex Mongo-style `_id`.
    pub object_id: String,
    pub created_unix: u64,
    pub decided_unix: Option<u64>,
}

/// A code the sandbox "sent" by SMS or voice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SentCode {
    pub authy_id: u64,
    /// `sms` or `call`.
    pub channel: &'static str,
    /// `+<cc><digits>`, unmasked.
    pub to: String,
    pub code: String,
}

/// Usage counters for `app/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    pub sms: u64,
    pub calls: u64,
    pub auths: u64,
    pub api_calls: u64,
}

/// The mutable state of a running sandbox.
#[derive(Debug)]
pub(crate) struct Store {
    pub users: BTreeMap<u64, User>,
    pub next_id: u64,
    pub approvals: VecDeque<Approval>,
    pub global_fault: Option<FaultRule>,
    pub user_faults: HashMap<u64, FaultRule>,
    pub global_scenario: PushScenario,
    pub user_scenarios: HashMap<u64, PushScenario>,
    pub requests: VecDeque<RecordedRequest>,
    pub outbox: VecDeque<SentCode>,
    pub sms_enabled: bool,
    pub calls_enabled: bool,
    pub stats: Stats,
    /// The Verify API's services, factors, challenges and verifications.
    pub verify: VerifyState,
    pub verify_fault: Option<FaultRule>,
    state_file: Option<PathBuf>,
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    next_id: u64,
    users: Vec<UserOnDisk>,
}

#[derive(Serialize, Deserialize)]
struct UserOnDisk {
    authy_id: u64,
    emails: Vec<String>,
    cellphone: String,
    country_code: u32,
    has_app: bool,
    registered: bool,
    #[serde(default)]
    confirmed: bool,
    #[serde(default)]
    account_disabled: bool,
    /// Base32, so an operator can load it into an authenticator app.
    totp_secret: String,
    #[serde(default)]
    created_at: u64,
    #[serde(default)]
    used_steps: Vec<u64>,
}

impl Store {
    /// An empty store, or the users of `state_file` if it exists. A missing file is created
    /// right away so that an unwritable path fails the start, not the first change.
    pub(crate) fn open(state_file: Option<PathBuf>) -> io::Result<Store> {
        let mut store = Store {
            users: BTreeMap::new(),
            next_id: FIRST_AUTHY_ID,
            approvals: VecDeque::new(),
            global_fault: None,
            user_faults: HashMap::new(),
            global_scenario: PushScenario::Manual,
            user_scenarios: HashMap::new(),
            requests: VecDeque::new(),
            outbox: VecDeque::new(),
            sms_enabled: true,
            calls_enabled: true,
            stats: Stats::default(),
            verify: VerifyState::new(String::new(), String::new()),
            verify_fault: None,
            state_file,
        };
        let Some(path) = store.state_file.clone() else {
            return Ok(store);
        };
        match fs::read(&path) {
            Ok(bytes) => store.load_users(&path, &bytes)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => store.save()?,
            Err(e) => return Err(e),
        }
        Ok(store)
    }

    fn load_users(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let bad =
            |why: String| io::Error::new(io::ErrorKind::InvalidData, format!("state file {}: {why}", path.display()));
        let file: StateFile = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if file.version != 1 {
            return Err(bad(format!("unsupported version {}", file.version)));
        }
        for u in file.users {
            let secret = totp_rs::Secret::try_from_base32(u.totp_secret.trim())
                .map_err(|_| bad(format!("user {}: totp_secret is not base32", u.authy_id)))?;
            self.users.insert(
                u.authy_id,
                User {
                    id: u.authy_id,
                    emails: u.emails,
                    cellphone: u.cellphone,
                    country_code: u.country_code,
                    has_app: u.has_app,
                    registered: u.registered,
                    confirmed: u.confirmed,
                    account_disabled: u.account_disabled,
                    secret: secret.as_bytes().to_vec(),
                    created_at: u.created_at,
                    used_steps: u.used_steps,
                },
            );
        }
        let max_id = self.users.keys().next_back().copied().unwrap_or(0);
        self.next_id = file.next_id.max(max_id.saturating_add(1)).max(FIRST_AUTHY_ID);
        Ok(())
    }

    /// Writes the users to the state file atomically (no-op without one).
    pub(crate) fn save(&self) -> io::Result<()> {
        let Some(path) = &self.state_file else {
            return Ok(());
        };
        let file = StateFile {
            version: 1,
            next_id: self.next_id,
            users: self
                .users
                .values()
                .map(|u| UserOnDisk {
                    authy_id: u.id,
                    emails: u.emails.clone(),
                    cellphone: u.cellphone.clone(),
                    country_code: u.country_code,
                    has_app: u.has_app,
                    registered: u.registered,
                    confirmed: u.confirmed,
                    account_disabled: u.account_disabled,
                    totp_secret: totp_rs::Secret::from(u.secret.clone()).to_base32(),
                    created_at: u.created_at,
                    used_steps: u.used_steps.clone(),
                })
                .collect(),
        };
        let text = serde_json::to_string_pretty(&file).map_err(io::Error::other)?;
        write_atomically(path, text.as_bytes())
    }

    /// Saves, reporting (not propagating) a failure: a request must still get its answer.
    pub(crate) fn persist(&self) {
        if let Err(e) = self.save() {
            eprintln!("authy-sandbox: cannot write state file: {e}");
        }
    }

    /// The id for this phone, creating the user if needed; an unseen email is added (Authy
    /// stores several emails per phone). Re-registering a removed user re-activates it.
    pub(crate) fn upsert_user(&mut self, email: &str, cellphone: &str, country_code: u32) -> u64 {
        let existing =
            self.users.values().find(|u| u.cellphone == cellphone && u.country_code == country_code).map(|u| u.id);
        let id = match existing {
            Some(id) => {
                if let Some(u) = self.users.get_mut(&id) {
                    if !email.is_empty() && !u.emails.iter().any(|e| e == email) {
                        u.emails.push(email.to_owned());
                    }
                    u.account_disabled = false;
                }
                id
            }
            None => {
                let id = self.next_id;
                self.next_id += 1;
                self.users.insert(
                    id,
                    User {
                        id,
                        emails: if email.is_empty() { Vec::new() } else { vec![email.to_owned()] },
                        cellphone: cellphone.to_owned(),
                        country_code,
                        has_app: true,
                        registered: true,
                        confirmed: false,
                        account_disabled: false,
                        secret: random_bytes::<20>().to_vec(),
                        created_at: now_unix(),
                        used_steps: Vec::new(),
                    },
                );
                id
            }
        };
        self.persist();
        id
    }

    /// Appends to the request log, dropping the oldest entry past the cap.
    pub(crate) fn record(&mut self, req: RecordedRequest) {
        if self.requests.len() >= MAX_RECORDED {
            self.requests.pop_front();
        }
        self.requests.push_back(req);
        self.stats.api_calls += 1;
    }

    /// Appends to the outbox, dropping the oldest entry past the cap.
    pub(crate) fn send(&mut self, code: SentCode) {
        if self.outbox.len() >= MAX_RECORDED {
            self.outbox.pop_front();
        }
        self.outbox.push_back(code);
    }

    /// Installs or clears a fault.
    pub(crate) fn set_fault(&mut self, scope: FaultScope, rule: Option<FaultRule>) {
        match (scope, rule) {
            (FaultScope::Global, rule) => self.global_fault = rule,
            (FaultScope::User(id), Some(rule)) => {
                self.user_faults.insert(id, rule);
            }
            (FaultScope::User(id), None) => {
                self.user_faults.remove(&id);
            }
            (FaultScope::Verify, rule) => self.verify_fault = rule,
        }
    }

    /// The fault for a request about `subject` (a user rule beats the global one), consuming
    /// one use of a counted rule.
    pub(crate) fn take_fault(&mut self, subject: Option<u64>) -> Option<Fault> {
        let slot = match subject {
            Some(id) if self.user_faults.contains_key(&id) => self.user_faults.get_mut(&id),
            _ => self.global_fault.as_mut(),
        }?;
        let fault = slot.fault.clone();
        let exhausted = match &mut slot.remaining {
            None => false,
            Some(n) => {
                *n = n.saturating_sub(1);
                *n == 0
            }
        };
        if exhausted {
            match subject {
                Some(id) if self.user_faults.contains_key(&id) => {
                    self.user_faults.remove(&id);
                }
                _ => self.global_fault = None,
            }
        }
        Some(fault)
    }

    /// The fault for a Verify API request (a `Verify` rule beats the global one), consuming
    /// one use of a counted rule.
    pub(crate) fn take_verify_fault(&mut self) -> Option<Fault> {
        let slot = if self.verify_fault.is_some() { &mut self.verify_fault } else { &mut self.global_fault };
        let rule = slot.as_mut()?;
        let fault = rule.fault.clone();
        if let Some(n) = &mut rule.remaining {
            *n = n.saturating_sub(1);
            if *n == 0 {
                *slot = None;
            }
        }
        Some(fault)
    }

    pub(crate) fn set_scenario(&mut self, scope: FaultScope, scenario: PushScenario) {
        match scope {
            FaultScope::Global => self.global_scenario = scenario,
            FaultScope::User(id) => {
                self.user_scenarios.insert(id, scenario);
            }
            FaultScope::Verify => self.verify.push_scenario = scenario,
        }
    }

    fn scenario_for(&self, authy_id: u64) -> PushScenario {
        self.user_scenarios.get(&authy_id).copied().unwrap_or(self.global_scenario)
    }

    /// Stores a new approval request and returns its uuid.
    pub(crate) fn create_approval(
        &mut self,
        authy_id: u64,
        message: String,
        details: BTreeMap<String, String>,
        hidden_details: BTreeMap<String, String>,
        seconds_to_expire: u64,
    ) -> String {
        let uuid = uuid_v4();
        if self.approvals.len() >= MAX_APPROVALS {
            self.approvals.pop_front();
        }
        self.approvals.push_back(Approval {
            record: ApprovalRecord {
                uuid: uuid.clone(),
                authy_id,
                message,
                details,
                hidden_details,
                seconds_to_expire,
                status: PushStatus::Pending,
                polls: 0,
                created_at: Instant::now(),
                decided_at: None,
            },
            object_id: hex(&random_bytes::<12>()),
            created_unix: now_unix(),
            decided_unix: None,
        });
        uuid
    }

    fn approval_index(&self, uuid: &str) -> Option<usize> {
        self.approvals.iter().position(|a| a.record.uuid == uuid)
    }

    /// The owner of an approval request, for user-scoped faults.
    pub(crate) fn approval_owner(&self, uuid: &str) -> Option<u64> {
        self.approval_index(uuid).map(|i| self.approvals[i].record.authy_id)
    }

    /// Applies expiry to every pending request.
    pub(crate) fn expire_due(&mut self) {
        for i in 0..self.approvals.len() {
            self.refresh(i, false);
        }
    }

    /// Counts one status poll and applies expiry and the push scenario; returns a snapshot.
    pub(crate) fn poll_approval(&mut self, uuid: &str) -> Option<Approval> {
        let i = self.approval_index(uuid)?;
        self.refresh(i, true);
        Some(self.approvals[i].clone())
    }

    fn refresh(&mut self, i: usize, count_poll: bool) {
        let scenario = self.scenario_for(self.approvals[i].record.authy_id);
        let a = &mut self.approvals[i];
        if count_poll {
            a.record.polls = a.record.polls.saturating_add(1);
        }
        if a.record.status != PushStatus::Pending || scenario == PushScenario::Never {
            return;
        }
        let ttl = a.record.seconds_to_expire;
        if ttl > 0 && a.record.created_at.elapsed() >= Duration::from_secs(ttl) {
            a.record.status = PushStatus::Expired;
            a.record.decided_at = a.record.created_at.checked_add(Duration::from_secs(ttl));
            a.decided_unix = Some(a.created_unix.saturating_add(ttl));
            return;
        }
        if let PushScenario::AfterPolls { status, polls } = scenario
            && count_poll
            && a.record.polls >= polls.max(1)
            && status != PushStatus::Pending
        {
            a.record.status = status;
            a.record.decided_at = Some(Instant::now());
            a.decided_unix = Some(now_unix());
        }
    }

    /// Decides a request now; false if the uuid is unknown or its user's scenario is `Never`.
    pub(crate) fn decide(&mut self, uuid: &str, status: PushStatus) -> bool {
        let Some(i) = self.approval_index(uuid) else {
            return false;
        };
        if self.scenario_for(self.approvals[i].record.authy_id) == PushScenario::Never {
            return false;
        }
        let a = &mut self.approvals[i];
        a.record.status = status;
        if status == PushStatus::Pending {
            a.record.decided_at = None;
            a.decided_unix = None;
        } else {
            a.record.decided_at = Some(Instant::now());
            a.decided_unix = Some(now_unix());
        }
        true
    }
}

/// Writes `bytes` to a temp file beside `path` (mode 0600), syncs it, and renames it over
/// `path`, so a reader never sees a half-written file.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "state".to_owned());
    let tmp = dir.join(format!(".{name}.tmp.{}.{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    let result = (|| {
        let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `N` random bytes. getrandom only fails if the OS has no entropy source at all; falling
/// back to time-derived bytes keeps the sandbox (a test tool, not a security boundary) alive.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    if getrandom::fill(&mut out).is_err() {
        let seed = Instant::now().elapsed().as_nanos() ^ u128::from(now_unix());
        for (i, b) in out.iter_mut().enumerate() {
            *b = (seed >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(151);
        }
    }
    out
}

/// `N` random bytes for a secret (a key or an access token), or an error when the OS has no
/// entropy source: a guessable secret must never be handed out.
pub(crate) fn secret_bytes<const N: usize>() -> io::Result<[u8; N]> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| io::Error::other(format!("no random source for a secret: {e}")))?;
    Ok(out)
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random (version 4, RFC 4122 variant) UUID.
pub(crate) fn uuid_v4() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(u, uuid_v4());
    }

    #[test]
    fn counted_faults_run_out_and_user_rules_win() {
        let mut s = Store::open(None).expect("store");
        s.set_fault(FaultScope::Global, Some(FaultRule { fault: Fault::Status(500), remaining: Some(2) }));
        s.set_fault(FaultScope::User(7), Some(FaultRule { fault: Fault::Hang, remaining: None }));
        assert_eq!(s.take_fault(Some(7)), Some(Fault::Hang));
        assert_eq!(s.take_fault(None), Some(Fault::Status(500)));
        assert_eq!(s.take_fault(Some(8)), Some(Fault::Status(500)));
        assert_eq!(s.take_fault(None), None);
        assert_eq!(s.take_fault(Some(7)), Some(Fault::Hang));
    }

    #[test]
    fn same_phone_means_same_user_and_emails_accumulate() {
        let mut s = Store::open(None).expect("store");
        let a = s.upsert_user("a@x.io", "5551234567", 1);
        let b = s.upsert_user("b@x.io", "5551234567", 1);
        let c = s.upsert_user("a@x.io", "5551234567", 44);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(s.users[&a].emails, vec!["a@x.io", "b@x.io"]);
    }

    #[test]
    fn state_file_round_trips_users() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("state.json");
        let id = {
            let mut s = Store::open(Some(path.clone())).expect("store");
            let id = s.upsert_user("a@x.io", "5551234567", 1);
            s.users.get_mut(&id).expect("user").used_steps.push(42);
            s.save().expect("save");
            id
        };
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let s = Store::open(Some(path)).expect("reopen");
        assert_eq!(s.users[&id].used_steps, vec![42]);
        assert_eq!(s.next_id, id + 1);
    }
}
