//! `authy-sandbox`: a faithful local imitation of the Twilio Authy REST API over HTTPS, for
//! pam_authy's tests and demo.
//!
//! Architecture: [`Sandbox::start`] prepares certificates (`tls`), opens the store (`store`,
//! users persisted to an optional JSON state file), binds the HTTPS API listener and an
//! optional plain-HTTP control listener on loopback, and runs one thread per connection
//! (`server`). Each API request is read with strict size and time limits (`http`), recorded,
//! routed and either answered by the Authy imitation (`api`, bodies in the documented shape
//! and key order, built with the ordered writer in `json`) or by a fault a test installed.
//! TOTP codes come from `otp`. Tests steer the sandbox in-process through the methods of
//! [`Sandbox`]; scripts use the control interface (`control`), both going through the same
//! operations (`ops`). Dropping the [`Sandbox`] stops everything and joins every thread.
//!
//! The reference for every body and status is `docs/authy-api.md` (in the repository); deliberate
//! choices where it is silent are listed in `sandbox/README.md`.

mod api;
mod cli;
mod clock;
mod control;
mod http;
mod json;
mod model;
mod ops;
mod otp;
mod params;
mod server;
mod store;
pub mod tls;
mod verify;
mod verify_control;
mod verify_ops;
mod verify_state;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;

pub use cli::run_cli;
pub use model::{
    ApprovalRecord, Fault, FaultScope, NewFactor, PushScenario, PushStatus, RecordedRequest, TotpAlg, TotpFactorSpec,
    VerifyAccount, VerifyChallengeRecord, VerifySentCode,
};
pub use tls::ServerCert;
pub use verify_state::VerifyStats;

use server::{Kind, ListenerHandle, Settings, Shared};

/// The API key a default configuration accepts.
pub const DEFAULT_API_KEY: &str = "sandbox0123456789abcdef0123456789";

/// The Verify account a default configuration accepts (fixed, so demos and docs can show it).
pub fn default_verify_account() -> VerifyAccount {
    VerifyAccount {
        account_sid: "AC5a4db0c0ffee0123456789abcdef0001".to_owned(),
        auth_token: "sandbox-auth-token-0123456789abcd".to_owned(),
        api_key_sid: "SK5a4db0c0ffee0123456789abcdef0002".to_owned(),
        api_key_secret: "sandbox-key-secret-0123456789abcd".to_owned(),
        service_sid: "VA5a4db0c0ffee0123456789abcdef0003".to_owned(),
    }
}

/// How to start a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The only key accepted (header `X-Authy-API-Key`, or legacy `?api_key=`). Not empty.
    pub api_key: String,
    /// Where the HTTPS API listens; default `127.0.0.1:0` (an ephemeral port).
    pub listen: SocketAddr,
    /// Where the plain-HTTP control interface listens; must be a loopback address. `None`
    /// (the default) disables it.
    pub control_listen: Option<SocketAddr>,
    /// Users are loaded from and saved to this JSON file (atomically, mode 0600).
    pub state_file: Option<PathBuf>,
    /// Directory of `ca.pem`, `ca.key`, `server.pem`, `server.key`: loaded if present, written
    /// if the directory is empty or missing. `None` keeps freshly generated ones in memory.
    pub tls_dir: Option<PathBuf>,
    /// Which certificate the API presents; anything but `Good` makes a trusting client fail.
    pub server_cert: ServerCert,
    /// Emulate the 2015 rack-protection path cleanup (unescape `%2e`/`%2f`, collapse `.` and
    /// `..` segments) before routing, so `/verify/../sms/ID` reaches the SMS endpoint.
    pub normalize_dot_segments: bool,
    /// Digits of every TOTP code, 6..=8; default 7 like Authy's app tokens.
    pub totp_digits: u32,
    /// TOTP period in seconds; default 30.
    pub totp_period_secs: u64,
    /// The Verify API's credentials and first service ([`default_verify_account`]).
    pub verify: VerifyAccount,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            api_key: DEFAULT_API_KEY.to_owned(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            control_listen: None,
            state_file: None,
            tls_dir: None,
            server_cert: ServerCert::Good,
            normalize_dot_segments: false,
            totp_digits: 7,
            totp_period_secs: 30,
            verify: default_verify_account(),
        }
    }
}

/// A running sandbox. Dropping it stops accepting, closes every connection (hung ones
/// included) and joins all its threads.
pub struct Sandbox {
    shared: Arc<Shared>,
    listeners: Vec<ListenerHandle>,
    addr: SocketAddr,
    bound: SocketAddr,
    control_addr: Option<SocketAddr>,
    served_cert_pem: String,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("addr", &self.addr)
            .field("control_addr", &self.control_addr)
            .finish_non_exhaustive()
    }
}

fn invalid_input(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}

/// The address a client should use: a wildcard bind is reached through loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    let mut a = addr;
    if a.ip().is_unspecified() {
        a.set_ip(match a {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    a
}

impl Sandbox {
    /// Prepares certificates and state, binds the listeners and starts serving.
    pub fn start(config: SandboxConfig) -> io::Result<Sandbox> {
        let otp = otp::OtpParams::validate(config.totp_digits, config.totp_period_secs).map_err(invalid_input)?;
        if config.api_key.is_empty() {
            return Err(invalid_input("api_key must not be empty"));
        }
        if let Some(c) = config.control_listen
            && !c.ip().is_loopback()
        {
            // The control interface can mint users and read TOTP codes: never off-host.
            return Err(invalid_input(format!("control_listen must be a loopback address, got {c}")));
        }
        let material = tls::prepare(config.tls_dir.as_deref(), config.server_cert)?;
        let tls_config = tls::server_config(&material.served)?;
        let va = &config.verify;
        if !verify_state::is_sid(&va.account_sid, "AC")
            || !verify_state::is_sid(&va.api_key_sid, "SK")
            || !verify_state::is_sid(&va.service_sid, "VA")
            || va.auth_token.is_empty()
            || va.api_key_secret.is_empty()
        {
            return Err(invalid_input("verify: SIDs must be AC/SK/VA + 32 hex digits and secrets not empty"));
        }
        let mut store = store::Store::open(config.state_file.clone())?;
        store.verify = verify_state::VerifyState::new(va.account_sid.clone(), va.auth_token.clone());
        store.verify.keys.insert(va.api_key_sid.clone(), va.api_key_secret.clone());
        store.verify.primary_key = va.api_key_sid.clone();
        store.verify.default_service =
            store.verify.add_service(Some(va.service_sid.clone()), "pam_authy sandbox", clock::now_unix());

        let api_listener = TcpListener::bind(config.listen)?;
        let bound = api_listener.local_addr()?;
        let addr = reachable(bound);
        let control_listener = config.control_listen.map(TcpListener::bind).transpose()?;
        let control_addr = match &control_listener {
            Some(l) => Some(reachable(l.local_addr()?)),
            None => None,
        };
        let shared = Arc::new(Shared::new(
            Settings {
                api_key: config.api_key,
                otp,
                normalize: config.normalize_dot_segments,
                api_url: format!("https://{addr}"),
                control_url: control_addr.map(|a| format!("http://{a}")),
                control_token: store::hex(&store::secret_bytes::<32>()?),
                ca_pem: material.ca_pem,
            },
            store,
            tls_config,
        ));
        // Build the handle first so that a failure to start the second listener still stops
        // the first one (through Drop).
        let mut sandbox = Sandbox {
            shared: Arc::clone(&shared),
            listeners: Vec::new(),
            addr,
            bound,
            control_addr,
            served_cert_pem: material.served.cert_pem,
        };
        sandbox.listeners.push(ListenerHandle::spawn(&shared, api_listener, Kind::Api)?);
        if let Some(l) = control_listener {
            sandbox.listeners.push(ListenerHandle::spawn(&shared, l, Kind::Control)?);
        }
        Ok(sandbox)
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.shared.api_url.clone()
    }

    /// The API listener's address as a client on this host reaches it (loopback for a
    /// wildcard bind).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address the API listener is bound to, which may be a wildcard such as `0.0.0.0`.
    pub fn bound_addr(&self) -> SocketAddr {
        self.bound
    }

    /// `http://127.0.0.1:PORT` of the control interface, if enabled.
    pub fn control_url(&self) -> Option<String> {
        self.shared.control_url.clone()
    }

    /// The token every control request must carry as `Authorization: Bearer TOKEN`: random
    /// for each start, so only whoever started the sandbox (and read its output) can steer it.
    pub fn control_token(&self) -> &str {
        &self.shared.control_token
    }

    /// The control listener's address, if enabled.
    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.control_addr
    }

    /// PEM of the CA that signed the `Good` certificate: what a client must trust.
    pub fn ca_pem(&self) -> String {
        self.shared.ca_pem.clone()
    }

    /// PEM of the certificate actually presented (differs from a CA-signed one for the bad
    /// `ServerCert` variants).
    pub fn server_cert_pem(&self) -> String {
        self.served_cert_pem.clone()
    }

    /// The accepted API key.
    pub fn api_key(&self) -> &str {
        &self.shared.api_key
    }

    /// Adds a user like `users/new` does: the same cellphone (digits only are compared) and
    /// country code give the same id; a new email is added to it. New users have the app
    /// and are registered.
    pub fn add_user(&self, email: &str, cellphone: &str, country_code: u32) -> u64 {
        self.shared.add_user(email, cellphone, country_code)
    }

    /// Whether the user has the Authy app (default true): sms/call without `force=true` are
    /// then "ignored".
    pub fn set_user_has_app(&self, authy_id: u64, has_app: bool) {
        self.shared.set_user_flags(authy_id, Some(has_app), None);
    }

    /// Whether the user finished registration (default true). Verify *without* `force=true`
    /// for an unregistered user answers 200 valid for any all-digit token, the documented
    /// legacy behaviour a module must defeat by always sending `force=true`.
    pub fn set_user_registered(&self, authy_id: u64, registered: bool) {
        self.shared.set_user_flags(authy_id, None, Some(registered));
    }

    /// The user's raw TOTP secret.
    pub fn totp_secret(&self, authy_id: u64) -> Option<Vec<u8>> {
        self.shared.user(authy_id).map(|u| u.secret)
    }

    /// The user's code at `unix_time` (use this rather than sleeping across a step).
    pub fn token_at(&self, authy_id: u64, unix_time: u64) -> Option<String> {
        self.shared.token_at(authy_id, unix_time)
    }

    /// The user's code now (by the sandbox clock); also what sms/call "send".
    pub fn current_token(&self, authy_id: u64) -> Option<String> {
        self.shared.current_token(authy_id)
    }

    /// Freezes the clock that verify, sms/call and `current_token` use at `unix_time`
    /// (`None` returns to real time), so tests of the ±1-step window and of replay are exact
    /// instead of racing a step boundary. Approval expiry keeps using real elapsed time.
    pub fn set_clock(&self, unix_time: Option<u64>) {
        self.shared.set_clock(unix_time);
    }

    /// The Unix time the sandbox's TOTP checks use now.
    pub fn now_unix(&self) -> u64 {
        self.shared.now()
    }

    /// Installs a fault until cleared; `None` clears the scope's fault.
    pub fn set_fault(&self, scope: FaultScope, fault: Option<Fault>) {
        self.shared.set_fault(scope, fault, None);
    }

    /// Installs a fault for the next `times` matching requests only (then it clears itself),
    /// for retry tests.
    pub fn set_fault_times(&self, scope: FaultScope, fault: Fault, times: u32) {
        self.shared.set_fault(scope, Some(fault), Some(times));
    }

    /// Turns the SMS add-on on or off (off: sms answers 503 60007).
    pub fn set_sms_enabled(&self, on: bool) {
        self.shared.set_sms_enabled(on);
    }

    /// Turns the calls add-on on or off (off: call answers 503 60006).
    pub fn set_calls_enabled(&self, on: bool) {
        self.shared.set_calls_enabled(on);
    }

    /// How approval requests in `scope` progress (evaluated at each poll, so it may be set
    /// before or after the request is created).
    pub fn set_push_scenario(&self, scope: FaultScope, scenario: PushScenario) {
        self.shared.set_push_scenario(scope, scenario);
    }

    /// Sets an approval request's status now. False if the uuid is unknown, or if the
    /// owner's scenario is `Never` (which ignores decisions).
    pub fn decide_push(&self, uuid: &str, status: PushStatus) -> bool {
        self.shared.decide_push(uuid, status)
    }

    /// Every approval request created so far, oldest first (expiry applied).
    pub fn approval_requests(&self) -> Vec<ApprovalRecord> {
        self.shared.approval_requests()
    }

    /// Every API request received so far, oldest first (the last 10 000 are kept).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.clear_requests();
    }
}

/// The Verify side (`/v2`): credentials, set-up shortcuts and test hooks.
impl Sandbox {
    /// What a Verify client needs: account SID + auth token, API key SID + secret, service SID.
    pub fn verify_account(&self) -> VerifyAccount {
        self.shared.verify_account()
    }

    /// Adds a service with the API's defaults (codes of 6; TOTP sha1, 6 digits, 30 s, skew 1).
    pub fn verify_create_service(&self, friendly_name: &str) -> String {
        self.shared.verify_create_service(friendly_name)
    }

    /// Adds another API key; returns `(SID, secret)` (`None` only without a random source).
    pub fn verify_create_api_key(&self) -> Option<(String, String)> {
        self.shared.verify_create_api_key()
    }

    /// Creates an entity (or finds it); `None` for an unknown service or an invalid identity.
    pub fn verify_add_entity(&self, service_sid: &str, identity: &str) -> Option<String> {
        self.shared.verify_add_entity(service_sid, identity)
    }

    /// Creates a TOTP factor in one step (entity created if needed), verified unless the spec
    /// says otherwise. The secret comes back so a test can compute codes.
    pub fn verify_add_totp_factor(
        &self,
        service_sid: &str,
        identity: &str,
        spec: &TotpFactorSpec,
    ) -> Option<NewFactor> {
        self.shared.verify_add_totp_factor(service_sid, identity, spec)
    }

    /// Creates a verified push factor, as a phone with the Verify Push SDK would.
    pub fn verify_add_push_factor(&self, service_sid: &str, identity: &str) -> Option<NewFactor> {
        self.shared.verify_add_push_factor(service_sid, identity)
    }

    /// The code a TOTP factor shows at `unix_time`.
    pub fn verify_factor_code(&self, factor_sid: &str, unix_time: u64) -> Option<String> {
        self.shared.verify_factor_code(factor_sid, unix_time)
    }

    /// The code a TOTP factor shows now (sandbox clock).
    pub fn verify_current_code(&self, factor_sid: &str) -> Option<String> {
        self.shared.verify_factor_code(factor_sid, self.shared.now())
    }

    /// Every SMS/call verification so far with its code, oldest first.
    pub fn verify_sent_codes(&self) -> Vec<VerifySentCode> {
        self.shared.verify_sent_codes()
    }

    /// The code the SMS or call of this verification carried.
    pub fn verify_code(&self, verification_sid: &str) -> Option<String> {
        self.verify_sent_codes().into_iter().find(|s| s.verification_sid == verification_sid).map(|s| s.code)
    }

    /// Every challenge so far (message, fields and hidden details as sent), oldest first.
    pub fn verify_challenges(&self) -> Vec<VerifyChallengeRecord> {
        self.shared.verify_challenges()
    }

    /// Answers a challenge as the phone would (`Approved` or `Denied`; `Expired`/`Pending`
    /// also work). False if unknown or the Verify push scenario is `Never`. Set a scenario
    /// for all Verify challenges with `set_push_scenario(FaultScope::Verify, ...)`.
    pub fn verify_decide_challenge(&self, challenge_sid: &str, status: PushStatus) -> bool {
        self.shared.verify_decide_challenge(challenge_sid, status)
    }

    /// Makes VerificationCheck answer 200 instead of 201 (or back); false for other statuses.
    pub fn set_verification_check_status(&self, status: u16) -> bool {
        self.shared.set_verification_check_status(status)
    }

    /// Freezes the sandbox clock `secs` after its current reading (verification and challenge
    /// expiry, TOTP and the Authy side all follow it).
    pub fn advance_clock(&self, secs: u64) {
        self.shared.advance_clock(secs);
    }

    /// Counters of the Verify side.
    pub fn verify_stats(&self) -> VerifyStats {
        self.shared.verify_stats()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.shared.begin_stop();
        for l in &mut self.listeners {
            l.stop();
        }
        self.shared.close_connections();
    }
}
