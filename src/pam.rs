//! The only file that touches C: the `pam_sm_*` entry points (through pamsm), the PAM items,
//! the conversation, and the one match that turns an `Outcome` into a PAM code.
//!
//! Every hook body runs inside `catch_unwind`, so a panic becomes PAM_SERVICE_ERR instead of
//! unwinding into sshd or sudo. Replies from the conversation are copied into a `Secret`,
//! then zeroed and freed here: pamsm's own `conv` leaks them, so it is not used.

use crate::backend::{self, ApiError, Backend};
use crate::clock::Clock;
use crate::clock::SystemClock;
use crate::config::{Config, ModuleArgs, UserEntry};
use crate::context;
use crate::flow::one_prompt::{self, OnePrompt};
use crate::flow::{self, ConvError, Conversation, Decision, Deps, Login, Outcome};
use crate::log::{Log, Syslog};
use crate::pam_abi::{PamConv, PamMessage, PamResponse};
use crate::sanitize;
use crate::secret::Secret;
use crate::state::{FileStateStore, StateError, StateStore};
use crate::users::SystemAccounts;
use pamsm::{Pam, PamError, PamFlags, PamLibExt, PamServiceModule, pam_module};
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

const PAM_SUCCESS: c_int = 0;
const PAM_CONV: c_int = 5;
const PAM_TTY: c_int = 3;
const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;
const PAM_ERROR_MSG: c_int = 3;
const PAM_TEXT_INFO: c_int = 4;
/// Longer replies are not tokens; they are refused (and still wiped).
const MAX_REPLY_BYTES: usize = 512;

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_get_item(pamh: *const c_void, item_type: c_int, item: *mut *const c_void) -> c_int;
}

struct PamAuthy;

pam_module!(PamAuthy);

impl PamServiceModule for PamAuthy {
    fn authenticate(pamh: Pam, _flags: PamFlags, args: Vec<String>) -> PamError {
        guarded(|| authenticate(&pamh, &args))
    }

    /// sshd and sudo call pam_setcred after a successful authentication; there are no
    /// credentials to set.
    fn setcred(_: Pam, _: PamFlags, _: Vec<String>) -> PamError {
        PamError::SUCCESS
    }

    fn acct_mgmt(_: Pam, _: PamFlags, _: Vec<String>) -> PamError {
        PamError::IGNORE
    }

    fn open_session(_: Pam, _: PamFlags, _: Vec<String>) -> PamError {
        PamError::IGNORE
    }

    fn close_session(_: Pam, _: PamFlags, _: Vec<String>) -> PamError {
        PamError::IGNORE
    }

    fn chauthtok(_: Pam, _: PamFlags, _: Vec<String>) -> PamError {
        PamError::IGNORE
    }
}

fn guarded(hook: impl FnOnce() -> PamError) -> PamError {
    catch_unwind(AssertUnwindSafe(hook)).unwrap_or(PamError::SERVICE_ERR)
}

/// SIGPIPE blocked while the module runs (on the calling thread; the HTTP client's runtime
/// thread, created meanwhile, inherits the mask). A write to a connection the peer reset raises
/// SIGPIPE, and it kills `su` and `login` (they leave it at its default); Linux has no
/// per-socket opt-out that reqwest would let us set. Blocked, a SIGPIPE of the runtime thread
/// dies with that thread, and one left pending on this thread by our I/O is consumed before the
/// old mask comes back (one pending before is left alone).
struct HostSignals {
    old_mask: libc::sigset_t,
    sigpipe_was_pending: bool,
}

fn signal_set(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill a local set.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        for signal in signals {
            libc::sigaddset(&mut set, *signal);
        }
        set
    }
}

fn pending(signal: libc::c_int) -> bool {
    // SAFETY: sigpending fills a local set; sigismember only reads it.
    unsafe {
        let mut pending = std::mem::zeroed::<libc::sigset_t>();
        libc::sigpending(&mut pending) == 0 && libc::sigismember(&pending, signal) == 1
    }
}

impl HostSignals {
    fn block() -> Option<HostSignals> {
        let block = signal_set(&[libc::SIGPIPE]);
        // SAFETY: zeroed is a valid sigset_t for pthread_sigmask to overwrite.
        let mut old_mask = unsafe { std::mem::zeroed::<libc::sigset_t>() };
        // SAFETY: valid sets; only this thread's mask changes.
        if unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &block, &mut old_mask) } != 0 {
            return None;
        }
        Some(HostSignals { old_mask, sigpipe_was_pending: pending(libc::SIGPIPE) })
    }
}

impl Drop for HostSignals {
    fn drop(&mut self) {
        if !self.sigpipe_was_pending {
            let set = signal_set(&[libc::SIGPIPE]);
            let now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // A zero timeout: takes a pending SIGPIPE if there is one, never waits.
            while pending(libc::SIGPIPE) {
                // SAFETY: valid set and timeout; no siginfo wanted.
                if unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &now) } != libc::SIGPIPE {
                    break;
                }
            }
        }
        // SAFETY: restores the mask saved in `block`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.old_mask, std::ptr::null_mut()) };
    }
}

/// The one place where outcomes become PAM codes.
fn pam_code(outcome: Outcome) -> PamError {
    match outcome {
        Outcome::Verified(_) | Outcome::FailSafe => PamError::SUCCESS,
        Outcome::Exempt => PamError::IGNORE,
        Outcome::UnknownUser => PamError::USER_UNKNOWN,
        Outcome::Denied => PamError::AUTH_ERR,
        Outcome::MaxTries => PamError::MAXTRIES,
        Outcome::Unavailable => PamError::AUTHINFO_UNAVAIL,
        Outcome::ServiceError => PamError::SERVICE_ERR,
        Outcome::ConversationError => PamError::CONV_ERR,
    }
}

fn raw_handle(pamh: &Pam) -> *const c_void {
    // SAFETY: `Pam` is `#[repr(transparent)]` over the `pam_handle_t *` libpam passed in; pamsm
    // is pinned to that version and `tests::pamsm_pam_is_the_libpam_handle_itself` checks it.
    unsafe { *(pamh as *const Pam as *const *const c_void) }
}

fn text_item(item: Result<Option<&CStr>, PamError>) -> Option<String> {
    item.ok().flatten().map(|s| s.to_string_lossy().into_owned()).filter(|s| !s.is_empty())
}

fn tty_item(handle: *const c_void) -> Option<String> {
    let mut item: *const c_void = std::ptr::null();
    // SAFETY: a valid handle from libpam and an out-pointer; libpam owns the returned string.
    let rc = unsafe { pam_get_item(handle, PAM_TTY, &mut item) };
    if rc != PAM_SUCCESS || item.is_null() {
        return None;
    }
    // SAFETY: PAM_TTY is a NUL-terminated string owned by libpam for the handle's lifetime.
    let tty = unsafe { CStr::from_ptr(item as *const c_char) };
    Some(tty.to_string_lossy().into_owned()).filter(|s| !s.is_empty())
}

fn authenticate(pamh: &Pam, args: &[String]) -> PamError {
    // Without the mask a reset connection could kill the host: fail closed.
    let Some(_sigpipe_blocked) = HostSignals::block() else { return PamError::SERVICE_ERR };
    let args = ModuleArgs::parse(args);
    let log = Syslog { debug: args.as_ref().is_ok_and(|args| args.debug) };
    let user = match pamh.get_user(None) {
        Ok(Some(user)) => match user.to_str() {
            Ok(user) => user.to_owned(),
            Err(_) => return PamError::USER_UNKNOWN,
        },
        Ok(None) => return PamError::USER_UNKNOWN,
        // Never let an error code that means "go on" escape from an error path.
        Err(PamError::SUCCESS | PamError::IGNORE) => return PamError::SERVICE_ERR,
        Err(error) => return error,
    };
    let handle = raw_handle(pamh);
    let service = text_item(pamh.get_service()).unwrap_or_default();
    let command = if service.starts_with("sudo") {
        context::own_command_line().map(|(argv, complete)| context::sudo_command(&argv, complete))
    } else {
        None
    };
    let login = Login {
        user,
        service,
        rhost: text_item(pamh.get_rhost()),
        tty: tty_item(handle),
        ruser: text_item(pamh.get_ruser()),
        hostname: nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default(),
        command,
    };
    let mut pam_conversation = PamConversation { handle };
    let one_prompt_digits = args.as_ref().ok().and_then(|args| args.password_and_code);
    let mut conversation = OnePrompt::new(&mut pam_conversation, one_prompt_digits);
    let clock = SystemClock::new();
    let connect = |config: &Config, user: &UserEntry| -> Result<Box<dyn Backend>, ApiError> {
        backend::for_user(config, user, clock.unix_time())
    };
    let open_state = |config: &Config| -> Result<Box<dyn StateStore>, StateError> {
        FileStateStore::open(&config.offline.state_dir).map(|store| Box::new(store) as Box<dyn StateStore>)
    };
    let mut deps = Deps {
        conversation: &mut conversation,
        connect: &connect,
        open_state: &open_state,
        clock: &clock,
        accounts: &SystemAccounts,
        log: &log,
    };
    // The edge loads the file; the flow only ever sees a parsed, validated config.
    let mut decision = match args.and_then(|args| Config::load(&args.config_path).map(|config| (args, config))) {
        Ok((args, config)) => match one_prompt::one_try_at_the_prompt(&config, &args) {
            Some((config, args)) => flow::authenticate(&config, &args, &login, &mut deps),
            None => flow::authenticate(&config, &args, &login, &mut deps),
        },
        Err(error) => Decision::config_error(&error),
    };
    // One-prompt mode: the next module gets the password (PAM_AUTHTOK, `use_first_pass`).
    let goes_on = matches!(decision.outcome, Outcome::Verified(_) | Outcome::FailSafe | Outcome::Exempt);
    match conversation.password_for_next_module(goes_on) {
        Ok(None) => {}
        Ok(Some(password)) => {
            if !set_authtok(pamh, &password) && goes_on {
                decision.outcome = Outcome::ServiceError;
                decision.reason = format!("authtok_not_set: {}", decision.reason);
            }
        }
        Err(ConvError) if goes_on => {
            decision.outcome = Outcome::ConversationError;
            decision.reason = format!("password_not_asked: {}", decision.reason);
        }
        Err(ConvError) => {}
    }
    // A real uid other than root (sudo, su started by a user) may signal this process and set
    // its limits: stop it past the timeout, or until the server drops the connection. Nothing
    // such a caller can cause may count as "unreachable", so fail-safe is not theirs to have.
    if decision.outcome == Outcome::FailSafe && !nix::unistd::getuid().is_root() {
        decision.outcome = Outcome::Unavailable;
        decision.reason = format!("failmode_safe_refused_for_caller: {}", decision.reason);
    }
    log.log(decision.log_level(), &decision.log_line(&login));
    pam_code(decision.outcome)
}

/// Hands `password` to the next module as PAM_AUTHTOK; libpam keeps its own copy.
fn set_authtok(pamh: &Pam, password: &Secret) -> bool {
    let Ok(item) = CString::new(password.expose()) else { return false };
    let set = pamh.set_authtok(&item).is_ok();
    zeroize::Zeroize::zeroize(&mut item.into_bytes());
    set
}

/// The application's conversation function, called one message at a time.
struct PamConversation {
    handle: *const c_void,
}

impl PamConversation {
    fn send(&mut self, style: c_int, text: &str) -> Result<Option<Secret>, ConvError> {
        let text = CString::new(sanitize::display_text(text, 512)).map_err(|_| ConvError)?;
        let mut item: *const c_void = std::ptr::null();
        // SAFETY: a valid handle and an out-pointer; PAM_CONV points to a `struct pam_conv`.
        let rc = unsafe { pam_get_item(self.handle, PAM_CONV, &mut item) };
        if rc != PAM_SUCCESS || item.is_null() {
            return Err(ConvError);
        }
        // SAFETY: libpam stores a `struct pam_conv` for PAM_CONV; we only read it.
        let conv = unsafe { &*(item as *const PamConv) };
        let callback = conv.conv.ok_or(ConvError)?;
        let message = PamMessage { msg_style: style, msg: text.as_ptr() };
        let mut message_ptr: *const PamMessage = &message;
        let mut response: *mut PamResponse = std::ptr::null_mut();
        // SAFETY: one message, valid for the call; the callback allocates `response` with
        // malloc (the PAM contract) and `take_response` frees it.
        let rc = unsafe { callback(1, &mut message_ptr, &mut response, conv.appdata_ptr) };
        // SAFETY: `response` is null or the array the callback allocated for one message.
        let reply = unsafe { take_response(response) };
        if rc != PAM_SUCCESS {
            return Err(ConvError);
        }
        Ok(reply)
    }
}

/// Copies the reply out, then zeroes and frees everything the application allocated.
///
/// # Safety
/// `response` must be null or point to one `pam_response` allocated with malloc whose `resp`
/// is null or a malloc'ed NUL-terminated string.
unsafe fn take_response(response: *mut PamResponse) -> Option<Secret> {
    if response.is_null() {
        return None;
    }
    // SAFETY: non-null, allocated by the application for one message (caller's contract).
    let text = unsafe { (*response).resp };
    let reply = if text.is_null() {
        None
    } else {
        // SAFETY: a NUL-terminated string (caller's contract); we wipe it before freeing.
        let bytes = unsafe {
            let len = libc::strlen(text);
            std::slice::from_raw_parts_mut(text as *mut u8, len)
        };
        // Checked in place: a rejected copy (String::from_utf8's error) would be freed unwiped.
        let copy = match std::str::from_utf8(bytes) {
            Ok(text) if bytes.len() <= MAX_REPLY_BYTES => Secret::from(text),
            _ => Secret::default(),
        };
        zeroize::Zeroize::zeroize(bytes);
        // SAFETY: allocated with malloc by the application, not used after this.
        unsafe { libc::free(text as *mut c_void) };
        Some(copy)
    };
    // SAFETY: the array itself, allocated with malloc by the application.
    unsafe { libc::free(response as *mut c_void) };
    reply
}

impl Conversation for PamConversation {
    fn prompt(&mut self, text: &str, echo: bool) -> Result<Secret, ConvError> {
        let style = if echo { PAM_PROMPT_ECHO_ON } else { PAM_PROMPT_ECHO_OFF };
        self.send(style, text)?.ok_or(ConvError)
    }

    fn info(&mut self, text: &str) -> Result<(), ConvError> {
        self.send(PAM_TEXT_INFO, text).map(|_| ())
    }

    fn error(&mut self, text: &str) -> Result<(), ConvError> {
        self.send(PAM_ERROR_MSG, text).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply as an application hands it over: `text` in a malloc'ed string in a malloc'ed
    /// `pam_response`.
    fn malloced_response(text: &[u8]) -> *mut PamResponse {
        // SAFETY: fresh allocations of the sizes written; the string is NUL-terminated.
        unsafe {
            let resp = libc::calloc(text.len() + 1, 1) as *mut u8;
            std::ptr::copy_nonoverlapping(text.as_ptr(), resp, text.len());
            let response = libc::calloc(1, std::mem::size_of::<PamResponse>()) as *mut PamResponse;
            (*response).resp = resp as *mut c_char;
            response
        }
    }

    #[test]
    fn a_reply_that_is_not_utf8_is_refused_and_no_copy_of_it_is_freed_unwiped() {
        let marker = "NOTUTF8-5e1d7a9c04";
        let mut text = b"\xff\xfe".to_vec();
        text.extend_from_slice(marker.as_bytes());
        let hits = pam_harness::scanning::watch(&[marker], || {
            let response = malloced_response(&text);
            // SAFETY: allocated by `malloced_response` as the contract asks.
            let reply = unsafe { take_response(response) };
            assert!(reply.is_some_and(|r| r.is_empty()));
        });
        zeroize::Zeroize::zeroize(&mut text);
        assert_eq!(hits, [0], "a copy of the non-UTF-8 reply was freed unwiped");
    }

    const PAM_CONV_ERR: c_int = 19;

    #[link(name = "pam")]
    unsafe extern "C" {
        fn pam_start(
            service: *const c_char,
            user: *const c_char,
            conv: *const PamConv,
            pamh: *mut *mut c_void,
        ) -> c_int;
        fn pam_set_item(pamh: *mut c_void, item_type: c_int, item: *const c_void) -> c_int;
        fn pam_end(pamh: *mut c_void, status: c_int) -> c_int;
    }

    unsafe extern "C" fn no_conversation(
        _: c_int,
        _: *mut *const PamMessage,
        _: *mut *mut PamResponse,
        _: *mut c_void,
    ) -> c_int {
        PAM_CONV_ERR
    }

    /// `raw_handle` reads pamsm's private field by layout; pamsm is pinned exactly, and this
    /// checks on a real libpam handle that `Pam` is that handle and nothing else: pamsm's own
    /// accessor and ours read the items of the same handle.
    #[test]
    fn pamsm_pam_is_the_libpam_handle_itself() {
        assert_eq!(std::mem::size_of::<Pam>(), std::mem::size_of::<*const c_void>());
        assert_eq!(std::mem::align_of::<Pam>(), std::mem::align_of::<*const c_void>());
        let conv = PamConv { conv: Some(no_conversation), appdata_ptr: std::ptr::null_mut() };
        let mut handle: *mut c_void = std::ptr::null_mut();
        // SAFETY: NUL-terminated strings and a conversation that outlives the handle.
        let rc = unsafe { pam_start(c"pam_authy-layout-test".as_ptr(), c"nobody".as_ptr(), &conv, &mut handle) };
        assert_eq!(rc, PAM_SUCCESS);
        // SAFETY: a started handle; libpam copies the item.
        let rc = unsafe { pam_set_item(handle, PAM_TTY, c"ssh".as_ptr().cast()) };
        assert_eq!(rc, PAM_SUCCESS);
        // SAFETY: what pamsm's `pam_module!` does with the handle libpam passes in: `Pam` is
        // `repr(transparent)` over it, which is the assumption under test.
        let pam: &Pam = unsafe { &*(&handle as *const *mut c_void as *const Pam) };
        assert_eq!(raw_handle(pam), handle as *const c_void);
        assert_eq!(text_item(pam.get_service()).as_deref(), Some("pam_authy-layout-test"));
        assert_eq!(tty_item(raw_handle(pam)).as_deref(), Some("ssh"));
        // SAFETY: the handle from pam_start, ended once.
        unsafe { pam_end(handle, PAM_SUCCESS) };
    }
}
