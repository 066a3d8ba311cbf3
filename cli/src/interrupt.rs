//! Undoing a half-done remote change when the admin gives up with ^C (or the session ends):
//! an enrolment that was interrupted while waiting for the first code must not leave an
//! unverified factor behind at Verify.
//!
//! SIGINT, SIGTERM and SIGHUP are blocked in every thread (before any is started) and taken
//! by one thread with `sigwait`, so no code runs in signal context. While an undo is armed, a
//! signal runs it and ends the program (status 130); once the caller commits, signals are
//! held until the program ends on its own, so the config edit that follows is never cut off.

use nix::sys::signal::{SigSet, Signal};
use std::sync::{Arc, Mutex, PoisonError};

/// Undoes the change and says what it did.
pub type Undo = Box<dyn FnOnce() -> String + Send>;

enum State {
    /// Nothing to undo: a signal ends the program at once.
    Idle,
    Armed(Undo),
    /// The change is being recorded or undone; signals wait until the program ends.
    Committed,
}

pub struct Guard {
    state: Arc<Mutex<State>>,
}

const EXIT_INTERRUPTED: i32 = 130;

impl Guard {
    /// Blocks the signals and starts the thread that takes them. Call before any other
    /// thread exists (the HTTP client starts some), so that they all inherit the mask.
    pub fn install() -> Result<Guard, String> {
        let mut signals = SigSet::empty();
        for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            signals.add(signal);
        }
        signals.thread_block().map_err(|e| format!("cannot block signals: {}", e.desc()))?;
        let state = Arc::new(Mutex::new(State::Idle));
        let shared = Arc::clone(&state);
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                loop {
                    if signals.wait().is_err() {
                        continue;
                    }
                    let mut state = shared.lock().unwrap_or_else(PoisonError::into_inner);
                    match std::mem::replace(&mut *state, State::Committed) {
                        State::Committed => continue,
                        State::Idle => {}
                        State::Armed(undo) => {
                            eprintln!();
                            let done = undo();
                            eprintln!("pam-authy: {}", crate::support::clean(&format!("interrupted: {done}")));
                        }
                    }
                    std::process::exit(EXIT_INTERRUPTED);
                }
            })
            .map_err(|e| format!("cannot start the signal thread: {e}"))?;
        Ok(Guard { state })
    }

    fn swap(&self, next: State) -> State {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *state, next)
    }

    /// What a signal undoes from now on (replacing any earlier undo).
    pub fn arm(&self, undo: Undo) {
        self.swap(State::Armed(undo));
    }

    /// Takes the undo back, for the caller to run on an ordinary failure; signals wait
    /// from now on, so that they cannot cut that undo short.
    pub fn disarm(&self) -> Option<Undo> {
        match self.swap(State::Committed) {
            State::Armed(undo) => Some(undo),
            _ => None,
        }
    }

    /// The change is done remotely and is being recorded: signals no longer interrupt. The
    /// undo comes back for the caller, should recording fail.
    pub fn commit(&self) -> Option<Undo> {
        match self.swap(State::Committed) {
            State::Armed(undo) => Some(undo),
            _ => None,
        }
    }
}
