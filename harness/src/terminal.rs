//! Puts the terminal back, and removes the demo's temporary files, when a prompting
//! subcommand of `pam-authy` (`test`, `demo`) is interrupted. It lives in the harness
//! because it needs `unsafe` (see the crate doc).
//!
//! Secret prompts turn echo off; Ctrl-C at such a prompt would otherwise end the program
//! with echo still off, and the admin's next command would be typed blind. The terminal
//! state is saved once at the start and a handler for SIGINT, SIGTERM, SIGHUP and SIGQUIT
//! restores it, removes the registered paths and exits. Destructors do not run on a
//! signal, so without the handler the demo's directory would stay in /tmp. The handler only
//! calls async-signal-safe functions (tcsetattr, unlink, rmdir, write, _exit).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::OnceLock;

static SAVED: OnceLock<libc::termios> = OnceLock::new();
static REMOVE: OnceLock<Vec<CString>> = OnceLock::new();

extern "C" fn restore_and_exit(signal: libc::c_int) {
    if let Some(saved) = SAVED.get() {
        // SAFETY: tcsetattr is async-signal-safe and `saved` came from tcgetattr.
        unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, saved) };
    }
    for path in REMOVE.get().map(Vec::as_slice).unwrap_or_default() {
        // SAFETY: unlink and rmdir are async-signal-safe; `path` is a NUL-terminated string
        // that lives as long as the program. Each fails harmlessly on the other kind of entry.
        unsafe {
            libc::unlink(path.as_ptr());
            libc::rmdir(path.as_ptr());
        }
    }
    let newline = b"\n";
    // SAFETY: write(2) is async-signal-safe; the buffer is valid for its length.
    unsafe { libc::write(libc::STDERR_FILENO, newline.as_ptr().cast(), newline.len()) };
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(128 + signal) };
}

fn install_handler() {
    let handler = restore_and_exit as extern "C" fn(libc::c_int) as libc::sighandler_t;
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        // SAFETY: installs a handler that only calls async-signal-safe functions.
        unsafe { libc::signal(signal, handler) };
    }
}

/// Saves the terminal state of stdin (if it is a terminal) and restores it on the signals
/// that end a program. Does nothing when stdin is not a terminal.
pub fn restore_on_signals() {
    let mut state = std::mem::MaybeUninit::<libc::termios>::uninit();
    // SAFETY: tcgetattr fills the struct when it returns 0.
    if unsafe { libc::tcgetattr(libc::STDIN_FILENO, state.as_mut_ptr()) } != 0 {
        return;
    }
    // SAFETY: initialised by the successful tcgetattr above.
    let _ = SAVED.set(unsafe { state.assume_init() });
    install_handler();
}

/// Removes `paths` (files, and directories after their contents) if one of those signals
/// ends the program. Only the first call registers paths.
pub fn remove_on_signals(paths: &[PathBuf]) {
    let paths = paths.iter().filter_map(|path| CString::new(path.as_os_str().as_bytes()).ok()).collect();
    let _ = REMOVE.set(paths);
    install_handler();
}
