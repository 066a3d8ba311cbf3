//! The application side of libpam, for the project's tests, benchmarks, the demo and
//! `pam-authy test`: start a transaction (`pam_start_confdir`, so no file under /etc/pam.d is
//! needed, or `pam_start` for the system's stacks), set PAM items, answer the conversation from a Rust closure, run
//! `pam_authenticate` and report the PAM code with a transcript of the conversation.
//!
//! This crate is test and tooling support; the module itself never links it. With
//! `src/pam.rs` it is the only place `unsafe` is allowed (the workspace denies it elsewhere):
//! the libpam calls, the scanning allocator of the zeroing tests, and `run_as`.
//!
//! `pam_start_confdir` came with Linux-PAM 1.4 (symbol version LIBPAM_1.4); RHEL 8, Ubuntu
//! 20.04 and Amazon Linux 2 have older libpams. It is looked up at run time, so the portable
//! CLI links only LIBPAM_1.0 symbols and starts everywhere; without it, only the system's
//! /etc/pam.d stacks can be run.
#![allow(unsafe_code)]

pub mod scanning;
pub mod terminal;

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::io::{BufRead, Write};
use std::path::Path;

pub const PAM_SUCCESS: i32 = 0;
pub const PAM_SERVICE_ERR: i32 = 3;
pub const PAM_SYSTEM_ERR: i32 = 4;
pub const PAM_PERM_DENIED: i32 = 6;
pub const PAM_AUTH_ERR: i32 = 7;
pub const PAM_AUTHINFO_UNAVAIL: i32 = 9;
pub const PAM_USER_UNKNOWN: i32 = 10;
pub const PAM_MAXTRIES: i32 = 11;
pub const PAM_CONV_ERR: i32 = 19;
pub const PAM_IGNORE: i32 = 25;
pub const PAM_ABORT: i32 = 26;

const PAM_USER: c_int = 2;
const PAM_TTY: c_int = 3;
const PAM_RHOST: c_int = 4;
const PAM_RUSER: c_int = 8;

/// The names libpam's headers give the codes, for messages ("PAM_SUCCESS").
/// Makes `command` drop to `uid`/`gid` (no supplementary groups) in the child, before exec.
pub fn run_as(command: &mut std::process::Command, uid: u32, gid: u32) {
    // SAFETY: setgroups/setgid/setuid are async-signal-safe and touch no Rust state.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(command, move || {
            if libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(gid) != 0 || libc::setuid(uid) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Makes this process look like sudo or su started by `uid`: real uid `uid`, effective and
/// saved uid root (as a setuid-root program has them). Needs root.
pub fn become_setuid_root_started_by(uid: u32) {
    // SAFETY: a plain system call on this process's credentials.
    let rc = unsafe { libc::setresuid(uid, 0, 0) };
    assert_eq!(rc, 0, "setresuid: {}", std::io::Error::last_os_error());
}

/// Puts SIGPIPE back to its default action (death), as `su` and `login` leave it; Rust
/// programs start with it ignored, which would hide a module that lets one through.
pub fn default_sigpipe() {
    // SAFETY: installs the default disposition; no handler code runs.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

pub fn code_name(code: i32) -> &'static str {
    match code {
        0 => "PAM_SUCCESS",
        1 => "PAM_OPEN_ERR",
        2 => "PAM_SYMBOL_ERR",
        3 => "PAM_SERVICE_ERR",
        4 => "PAM_SYSTEM_ERR",
        5 => "PAM_BUF_ERR",
        6 => "PAM_PERM_DENIED",
        7 => "PAM_AUTH_ERR",
        8 => "PAM_CRED_INSUFFICIENT",
        9 => "PAM_AUTHINFO_UNAVAIL",
        10 => "PAM_USER_UNKNOWN",
        11 => "PAM_MAXTRIES",
        19 => "PAM_CONV_ERR",
        25 => "PAM_IGNORE",
        26 => "PAM_ABORT",
        28 => "PAM_MODULE_UNKNOWN",
        _ => "PAM_(other)",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    PromptEchoOff,
    PromptEchoOn,
    ErrorMsg,
    TextInfo,
    Other(i32),
}

impl Style {
    fn from_raw(style: c_int) -> Style {
        match style {
            1 => Style::PromptEchoOff,
            2 => Style::PromptEchoOn,
            3 => Style::ErrorMsg,
            4 => Style::TextInfo,
            other => Style::Other(other),
        }
    }

    pub fn is_prompt(self) -> bool {
        matches!(self, Style::PromptEchoOff | Style::PromptEchoOn)
    }
}

/// One message the module sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub style: Style,
    pub text: String,
}

/// How the application answers one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Answer with this text (for info/error messages the text is ignored).
    Text(String),
    /// Return PAM_SUCCESS but no reply string (a NULL `resp`).
    Null,
    /// Return PAM_SUCCESS with no response array at all.
    NoResponseArray,
    /// Return PAM_CONV_ERR, as an application does on Ctrl-C or a closed terminal.
    ConvError,
}

impl Reply {
    pub fn text(text: impl Into<String>) -> Reply {
        Reply::Text(text.into())
    }
}

/// PAM items to set before authenticating.
#[derive(Debug, Clone, Default)]
pub struct Items {
    pub rhost: Option<String>,
    pub tty: Option<String>,
    pub ruser: Option<String>,
}

/// The result of one `pam_authenticate`.
#[derive(Debug, Clone)]
pub struct AuthResult {
    pub code: i32,
    pub transcript: Vec<Message>,
    /// PAM_USER after authentication (a module must never change it).
    pub user_after: Option<String>,
}

impl AuthResult {
    pub fn name(&self) -> &'static str {
        code_name(self.code)
    }

    pub fn prompts(&self) -> Vec<&str> {
        self.transcript.iter().filter(|m| m.style.is_prompt()).map(|m| m.text.as_str()).collect()
    }

    pub fn text(&self) -> String {
        self.transcript.iter().map(|m| format!("{:?}: {}\n", m.style, m.text)).collect()
    }
}

// The module's own definition of libpam's structures, so both sides of the ABI agree.
#[path = "../../src/pam_abi.rs"]
mod pam_abi;
use pam_abi::{PamConv, PamMessage, PamResponse};

type StartConfdir = unsafe extern "C" fn(
    service: *const c_char,
    user: *const c_char,
    conv: *const PamConv,
    confdir: *const c_char,
    pamh: *mut *mut c_void,
) -> c_int;

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_start(service: *const c_char, user: *const c_char, conv: *const PamConv, pamh: *mut *mut c_void) -> c_int;
    fn pam_set_item(pamh: *mut c_void, item_type: c_int, item: *const c_void) -> c_int;
    fn pam_get_item(pamh: *const c_void, item_type: c_int, item: *mut *const c_void) -> c_int;
    fn pam_authenticate(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_end(pamh: *mut c_void, status: c_int) -> c_int;
}

struct ConvState<'a> {
    responder: &'a mut (dyn FnMut(&Message) -> Reply + 'a),
    transcript: Vec<Message>,
    /// A panic of the responder (a failed test assertion) is carried across the C frames of
    /// libpam and the module, and resumed once the transaction has ended.
    panic: Option<Box<dyn std::any::Any + Send>>,
}

unsafe extern "C" fn conversation(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int {
    if num_msg <= 0 || msg.is_null() || resp.is_null() || appdata.is_null() {
        return PAM_CONV_ERR;
    }
    // SAFETY: appdata is the ConvState that `authenticate` keeps alive for the transaction.
    let state = unsafe { &mut *(appdata as *mut ConvState) };
    let count = num_msg as usize;
    // SAFETY: calloc'ed, so PAM can free() it; zeroed means every resp starts NULL.
    let replies = unsafe { libc::calloc(count, std::mem::size_of::<PamResponse>()) as *mut PamResponse };
    if replies.is_null() {
        return PAM_CONV_ERR;
    }
    for index in 0..count {
        // SAFETY: Linux-PAM passes an array of `num_msg` message pointers.
        let message = unsafe { &**msg.add(index) };
        let text = if message.msg.is_null() {
            String::new()
        } else {
            // SAFETY: a NUL-terminated string owned by the module for the call.
            unsafe { CStr::from_ptr(message.msg) }.to_string_lossy().into_owned()
        };
        let message = Message { style: Style::from_raw(message.msg_style), text };
        let reply = if state.panic.is_some() {
            Reply::ConvError
        } else {
            let responder = &mut state.responder;
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| responder(&message))) {
                Ok(reply) => reply,
                Err(panic) => {
                    state.panic = Some(panic);
                    Reply::ConvError
                }
            }
        };
        state.transcript.push(message);
        match reply {
            Reply::Text(text) => {
                let text = CString::new(text).unwrap_or_default();
                // SAFETY: strdup'ed so the module can free() it.
                unsafe { (*replies.add(index)).resp = libc::strdup(text.as_ptr()) };
            }
            Reply::Null => {}
            Reply::NoResponseArray => {
                free_replies(replies, count);
                // SAFETY: resp is a valid out-pointer from the module.
                unsafe { *resp = std::ptr::null_mut() };
                return PAM_SUCCESS;
            }
            Reply::ConvError => {
                free_replies(replies, count);
                return PAM_CONV_ERR;
            }
        }
    }
    // SAFETY: resp is a valid out-pointer from the module.
    unsafe { *resp = replies };
    PAM_SUCCESS
}

fn free_replies(replies: *mut PamResponse, count: usize) {
    for index in 0..count {
        // SAFETY: entries are NULL or strdup'ed by us.
        unsafe { libc::free((*replies.add(index)).resp as *mut c_void) };
    }
    // SAFETY: calloc'ed by us.
    unsafe { libc::free(replies as *mut c_void) };
}

/// What cannot be done where libpam lacks `pam_start_confdir`, for the CLI's messages.
pub const NO_CONFDIR: &str = "this system's libpam has no pam_start_confdir (Linux-PAM 1.4 or later): \
a PAM stack outside /etc/pam.d cannot be run here, so `pam-authy demo` and `pam-authy test --confdir` \
are unavailable; `pam-authy test --service NAME` runs /etc/pam.d/NAME";

/// Whether this process's libpam can run a stack from a directory of our choosing.
pub fn confdir_supported() -> bool {
    start_confdir().is_some()
}

fn start_confdir() -> Option<StartConfdir> {
    lookup_start_confdir(c"pam_start_confdir")
}

fn lookup_start_confdir(name: &CStr) -> Option<StartConfdir> {
    // In libpam itself, not the global scope: a binary that calls no other libpam function
    // (linked with --as-needed) has not loaded it. The handle is kept: libpam stays loaded.
    // SAFETY: dlopen of the soname libpam0g installs; RTLD_NOW resolves it fully up front.
    let libpam = unsafe { libc::dlopen(c"libpam.so.0".as_ptr(), libc::RTLD_NOW) };
    if libpam.is_null() {
        return None;
    }
    // SAFETY: dlsym with a live handle and a NUL-terminated name.
    let symbol = unsafe { libc::dlsym(libpam, name.as_ptr()) };
    if symbol.is_null() {
        return None;
    }
    // SAFETY: Linux-PAM's pam_start_confdir has exactly the signature of StartConfdir.
    Some(unsafe { std::mem::transmute::<*mut c_void, StartConfdir>(symbol) })
}

/// How a transaction for `confdir` starts: `pam_start_confdir` for a directory (refused with
/// [`NO_CONFDIR`] where libpam lacks it), `pam_start` (None) for /etc/pam.d.
fn starter(confdir: Option<&Path>, start_confdir: Option<StartConfdir>) -> Result<Option<StartConfdir>, String> {
    match (confdir, start_confdir) {
        (Some(_), None) => Err(NO_CONFDIR.to_owned()),
        (Some(_), start) => Ok(start),
        (None, _) => Ok(None),
    }
}

fn cstring(text: &str) -> Result<CString, String> {
    CString::new(text).map_err(|_| format!("{text:?} holds a NUL byte"))
}

/// Runs one `pam_authenticate` for `user` with the stack `service` from `confdir` (or the
/// system's /etc/pam.d when `confdir` is None), answering with `responder`.
/// Err carries the code of a failed `pam_start*`, [`NO_CONFDIR`] or a message.
pub fn authenticate(
    confdir: Option<&Path>,
    service: &str,
    user: &str,
    items: &Items,
    responder: &mut dyn FnMut(&Message) -> Reply,
) -> Result<AuthResult, String> {
    let start_confdir = starter(confdir, start_confdir())?;
    let service_c = cstring(service)?;
    let user_c = cstring(user)?;
    let confdir_c = match confdir {
        Some(dir) => Some(cstring(&dir.to_string_lossy())?),
        None => None,
    };
    let mut state = ConvState { responder, transcript: Vec::new(), panic: None };
    let conv = PamConv { conv: Some(conversation), appdata_ptr: &mut state as *mut ConvState as *mut c_void };
    let mut handle: *mut c_void = std::ptr::null_mut();
    let (rc, started_by) = match (&confdir_c, start_confdir) {
        // SAFETY: valid C strings and out-pointer; conv and state outlive the handle.
        (Some(dir), Some(start)) => (
            unsafe { start(service_c.as_ptr(), user_c.as_ptr(), &conv, dir.as_ptr(), &mut handle) },
            "pam_start_confdir",
        ),
        // SAFETY: as above.
        _ => (unsafe { pam_start(service_c.as_ptr(), user_c.as_ptr(), &conv, &mut handle) }, "pam_start"),
    };
    if rc != PAM_SUCCESS || handle.is_null() {
        return Err(format!("{started_by} failed: {} ({rc})", code_name(rc)));
    }
    let set = |item: c_int, value: &Option<String>| -> Result<(), String> {
        if let Some(value) = value {
            let value = cstring(value)?;
            // SAFETY: libpam copies the string.
            let rc = unsafe { pam_set_item(handle, item, value.as_ptr() as *const c_void) };
            if rc != PAM_SUCCESS {
                return Err(format!("pam_set_item({item}) failed: {rc}"));
            }
        }
        Ok(())
    };
    let prepared = set(PAM_RHOST, &items.rhost)
        .and_then(|()| set(PAM_TTY, &items.tty))
        .and_then(|()| set(PAM_RUSER, &items.ruser));
    if let Err(error) = prepared {
        // SAFETY: the handle from pam_start*, ended once.
        unsafe { pam_end(handle, PAM_SYSTEM_ERR) };
        return Err(error);
    }
    // SAFETY: a started handle.
    let code = unsafe { pam_authenticate(handle, 0) };
    let user_after = string_item(handle, PAM_USER);
    // SAFETY: the handle from pam_start*, ended once.
    unsafe { pam_end(handle, code) };
    if let Some(panic) = state.panic.take() {
        std::panic::resume_unwind(panic);
    }
    Ok(AuthResult { code, transcript: state.transcript, user_after })
}

fn string_item(handle: *mut c_void, item_type: c_int) -> Option<String> {
    let mut item: *const c_void = std::ptr::null();
    // SAFETY: a started handle and an out-pointer.
    let rc = unsafe { pam_get_item(handle, item_type, &mut item) };
    if rc != PAM_SUCCESS || item.is_null() {
        return None;
    }
    // SAFETY: string items are NUL-terminated and owned by libpam.
    Some(unsafe { CStr::from_ptr(item as *const c_char) }.to_string_lossy().into_owned())
}

/// Answers prompts on the controlling terminal: echo off for secret prompts, info and error
/// messages printed. Used by `pam-authy demo` and `pam-authy test`.
pub fn terminal_responder(message: &Message) -> Reply {
    let mut stderr = std::io::stderr();
    match message.style {
        Style::TextInfo | Style::ErrorMsg | Style::Other(_) => {
            let _ = writeln!(stderr, "{}", message.text);
            Reply::Text(String::new())
        }
        Style::PromptEchoOn | Style::PromptEchoOff => {
            let _ = write!(stderr, "{}", message.text);
            let _ = stderr.flush();
            let hidden = message.style == Style::PromptEchoOff;
            match read_line(hidden) {
                Some(line) => Reply::Text(line),
                None => Reply::ConvError,
            }
        }
    }
}

fn read_line(hidden: bool) -> Option<String> {
    let fd = libc::STDIN_FILENO;
    let mut saved = std::mem::MaybeUninit::<libc::termios>::uninit();
    // SAFETY: tcgetattr fills the struct when it returns 0.
    let is_tty = unsafe { libc::tcgetattr(fd, saved.as_mut_ptr()) } == 0;
    let restore = if hidden && is_tty {
        // SAFETY: initialised by the successful tcgetattr above.
        let saved = unsafe { saved.assume_init() };
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        // SAFETY: a valid termios for this terminal.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
        Some(saved)
    } else {
        None
    };
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if let Some(saved) = restore {
        // SAFETY: restores what tcgetattr returned.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
        eprintln!();
    }
    match read {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_owned()),
    }
}

/// A loopback port that refuses connections for as long as the process runs: its socket is
/// bound, so no other test can take the port, but never listens. (Binding a listener and
/// closing it would free the port for any parallel test to take before it is used.)
pub fn closed_port() -> u16 {
    static HELD: std::sync::OnceLock<(socket2::Socket, u16)> = std::sync::OnceLock::new();
    HELD.get_or_init(|| {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
        socket.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into()).expect("bind");
        let port = socket.local_addr().ok().and_then(|a| a.as_socket()).expect("an IPv4 address").port();
        (socket, port)
    })
    .1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_libpam_has_pam_start_confdir() {
        assert!(confdir_supported(), "Debian 12's Linux-PAM 1.5 exports pam_start_confdir");
    }

    #[test]
    fn a_missing_symbol_is_none() {
        assert!(lookup_start_confdir(c"pam_start_confdir_which_no_libpam_has").is_none());
    }

    #[test]
    fn without_pam_start_confdir_a_confdir_stack_is_refused_with_the_reason() {
        let error = starter(Some(Path::new("/nonexistent")), None).expect_err("no pam_start_confdir");
        assert_eq!(error, NO_CONFDIR);
        assert!(error.contains("pam-authy demo") && error.contains("--confdir"), "{error}");
        assert!(starter(None, None).is_ok_and(|start| start.is_none()), "/etc/pam.d stacks need only pam_start");
    }
}
