//! The operations tests and scripts use to steer a running sandbox.
//!
//! Both front ends — the in-process `Sandbox` methods and the plain-HTTP control interface —
//! call these, so a shell script and a Rust test see exactly the same behaviour. Each takes
//! the state lock once and never does network I/O.

use crate::model::{ApprovalRecord, Fault, FaultScope, PushScenario, PushStatus, RecordedRequest};
use crate::server::Shared;
use crate::store::{FaultRule, SentCode, User};

/// A cellphone reduced to its digits, the form the store keys users by.
pub(crate) fn phone_digits(raw: &str) -> String {
    raw.chars().filter(char::is_ascii_digit).collect()
}

impl Shared {
    /// Like `users/new`: the same phone and country code always give the same id.
    pub(crate) fn add_user(&self, email: &str, cellphone: &str, country_code: u32) -> u64 {
        self.store().upsert_user(email.trim(), &phone_digits(cellphone), country_code)
    }

    /// A copy of one user.
    pub(crate) fn user(&self, authy_id: u64) -> Option<User> {
        self.store().users.get(&authy_id).cloned()
    }

    /// Copies of all users, by id.
    pub(crate) fn users(&self) -> Vec<User> {
        self.store().users.values().cloned().collect()
    }

    /// Changes a user's flags; false if the user is unknown.
    pub(crate) fn set_user_flags(&self, authy_id: u64, has_app: Option<bool>, registered: Option<bool>) -> bool {
        let mut store = self.store();
        let Some(u) = store.users.get_mut(&authy_id) else {
            return false;
        };
        if let Some(v) = has_app {
            u.has_app = v;
        }
        if let Some(v) = registered {
            u.registered = v;
        }
        store.persist();
        true
    }

    /// The code a user's app shows at `unix_time`.
    pub(crate) fn token_at(&self, authy_id: u64, unix_time: u64) -> Option<String> {
        let secret = self.store().users.get(&authy_id)?.secret.clone();
        Some(self.otp.token_at(&secret, unix_time))
    }

    /// The code a user's app shows now.
    pub(crate) fn current_token(&self, authy_id: u64) -> Option<String> {
        self.token_at(authy_id, self.now())
    }

    /// Freezes the clock TOTP checks use at `unix_time`, or returns it to real time.
    pub(crate) fn set_clock(&self, unix_time: Option<u64>) {
        *self.clock_override() = unix_time;
    }

    /// Installs (`times: None` = until cleared) or clears a fault.
    pub(crate) fn set_fault(&self, scope: FaultScope, fault: Option<Fault>, times: Option<u32>) {
        let rule = fault.map(|fault| FaultRule { fault, remaining: times.map(|t| t.max(1)) });
        self.store().set_fault(scope, rule);
    }

    pub(crate) fn set_sms_enabled(&self, on: bool) {
        self.store().sms_enabled = on;
    }

    pub(crate) fn set_calls_enabled(&self, on: bool) {
        self.store().calls_enabled = on;
    }

    pub(crate) fn set_push_scenario(&self, scope: FaultScope, scenario: PushScenario) {
        self.store().set_scenario(scope, scenario);
    }

    pub(crate) fn decide_push(&self, uuid: &str, status: PushStatus) -> bool {
        self.store().decide(uuid, status)
    }

    /// Every approval request so far, oldest first, with expiry applied.
    pub(crate) fn approval_requests(&self) -> Vec<ApprovalRecord> {
        let mut store = self.store();
        store.expire_due();
        store.approvals.iter().map(|a| a.record.clone()).collect()
    }

    /// Every recorded API request, oldest first.
    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.store().requests.iter().cloned().collect()
    }

    pub(crate) fn clear_requests(&self) {
        self.store().requests.clear();
    }

    /// Every code "sent" by SMS or voice, oldest first.
    pub(crate) fn outbox(&self) -> Vec<SentCode> {
        self.store().outbox.iter().cloned().collect()
    }
}
