//! Time as a parameter. TOTP windows, replay steps, push deadlines and rate limits read the
//! time through `Clock`; this file holds the only calls to the system clock (clippy's
//! `disallowed-methods` keeps it that way), and `FakeClock` (tests and the `test-support` feature only) lets tests move time by hand.

#[cfg(any(test, feature = "test-support"))]
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub trait Clock {
    /// Seconds since the Unix epoch (wall clock: TOTP steps, state records).
    fn unix_time(&self) -> u64;
    /// A monotonic reading for deadlines.
    fn monotonic(&self) -> Duration;
    fn sleep(&self, duration: Duration);
}

/// The real clock.
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    #[allow(clippy::disallowed_methods)]
    pub fn new() -> SystemClock {
        SystemClock { origin: Instant::now() }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)]
    fn unix_time(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }

    #[allow(clippy::disallowed_methods)]
    fn monotonic(&self) -> Duration {
        Instant::now().duration_since(self.origin)
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// A clock that only moves when told to, or when the code under test sleeps.
#[cfg(any(test, feature = "test-support"))]
#[derive(Debug)]
pub struct FakeClock {
    millis: AtomicU64,
}

#[cfg(any(test, feature = "test-support"))]
impl FakeClock {
    pub fn at_unix(seconds: u64) -> FakeClock {
        FakeClock { millis: AtomicU64::new(seconds * 1000) }
    }

    pub fn advance(&self, duration: Duration) {
        self.millis.fetch_add(duration.as_millis() as u64, Ordering::SeqCst);
    }
}

#[cfg(any(test, feature = "test-support"))]
impl Clock for FakeClock {
    fn unix_time(&self) -> u64 {
        self.millis.load(Ordering::SeqCst) / 1000
    }

    fn monotonic(&self) -> Duration {
        Duration::from_millis(self.millis.load(Ordering::SeqCst))
    }

    fn sleep(&self, duration: Duration) {
        self.advance(duration);
    }
}
