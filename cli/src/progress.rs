//! A spinner on stderr for anything that waits (network calls, a PAM stack waiting for a
//! push approval). It draws only when stderr is a terminal, so scripts and tests see no
//! noise, and it erases itself when dropped.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const TICK: Duration = Duration::from_millis(100);

/// A running spinner; dropping it stops and erases it.
pub struct Spinner {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Spinner {
    /// Starts `label` with the elapsed seconds, or does nothing when stderr is not a terminal.
    pub fn start(label: &str) -> Spinner {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::io::stderr().is_terminal().then(|| {
            let stop = Arc::clone(&stop);
            let label = label.to_owned();
            std::thread::spawn(move || draw(&label, &stop))
        });
        Spinner { stop, thread }
    }
}

fn draw(label: &str, stop: &AtomicBool) {
    let started = Instant::now();
    let mut frame = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let seconds = started.elapsed().as_secs();
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\r\x1b[2K{} {label} ({seconds}s)", FRAMES[frame % FRAMES.len()]);
        let _ = stderr.flush();
        drop(stderr);
        frame += 1;
        std::thread::sleep(TICK);
    }
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "\r\x1b[2K");
    let _ = stderr.flush();
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs `work` with a spinner showing `label`.
pub fn waiting<T>(label: &str, work: impl FnOnce() -> T) -> T {
    let _spinner = Spinner::start(label);
    work()
}
