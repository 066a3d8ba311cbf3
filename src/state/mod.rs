//! Per-user state that must survive the process: the end of the last accepted offline code's
//! time window (replay protection), recent offline failures (rate limit), grace records, and the keyed tags of
//! codes submitted to a service that does not refuse a reused code itself (Verify TOTP).
//!
//! `UserState` holds the rules as plain functions of explicit times. `FileStateStore` keeps one
//! JSON file per user in `[offline] state_dir` and changes it only under an exclusive `flock`
//! on a per-user lock file, writing a temporary file that is fsynced and renamed over the old
//! one. The directory is checked once by path (as `secure_fs` walks it) and from then on every
//! file is opened relative to its descriptor with `O_NOFOLLOW | O_CLOEXEC` and checked with
//! `fstat`. Any failure to lock, read, parse or write is an error, never a fresh state: a
//! corrupt file must not reset the replay step or the failure count, so callers fail closed.
//! The files hold no secret; errors name the user (sanitised) and the path.

use crate::sanitize::display_text;
use crate::secure_fs::{FileError, check_private_dir, errno_of, open_dir, open_file_in, split_file_path};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, Flock, FlockArg, OFlag, openat, renameat};
use nix::sys::stat::{Mode, fchmod, fstat, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, fsync, unlinkat};
use serde::{Deserialize, Serialize};
#[cfg(any(test, feature = "test-support"))]
use std::collections::HashMap;
use std::fmt;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
#[cfg(any(test, feature = "test-support"))]
use std::sync::Mutex;
use std::time::Duration;

/// A state file larger than this is refused; writes never produce one.
pub const MAX_STATE_BYTES: u64 = 64 * 1024;
/// Failures kept per user: above the largest `[offline] max_failures` (100).
pub const MAX_FAILURES_KEPT: usize = 128;
/// Grace records kept per user; the one expiring first gives way.
pub const MAX_GRACE_RECORDS: usize = 32;
/// A service or rhost longer than this gets no grace record (it is prompted every time).
pub const MAX_GRACE_FIELD_BYTES: usize = 128;
/// User names longer than this cannot name a state file (hex doubles the length, and a file
/// name holds at most 255 bytes).
pub const MAX_USER_BYTES: usize = 120;
/// Code tags kept per user; a claim beyond this is refused (fails closed).
pub const MAX_USED_CODES: usize = 64;
/// How long `update` waits for another process to release a user's lock.
pub const LOCK_WAIT_LIMIT: Duration = Duration::from_secs(5);

/// One user's state, as stored in their file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserState {
    /// The unix time at which the window of the newest accepted offline code ends; a code
    /// whose window ends no later is a replay. A time, not a step number, so that a change
    /// of `[offline] period_secs` compares windows of different lengths correctly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_used_until: Option<u64>,
    /// What versions before `offline_used_until` stored: a step number without its period.
    /// Read, never written: `migrate_offline_step` turns it into `offline_used_until`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_offline_step: Option<u64>,
    /// Unix times of recent failed offline codes, oldest first.
    pub failures: Vec<u64>,
    pub grace: Vec<GraceRecord>,
    /// Codes claimed for a second factor (keyed tags, never the code), each refused again
    /// until its `until`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub used_codes: Vec<UsedCode>,
}

/// A claimed code: its keyed tag and the unix time until which it stays claimed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsedCode {
    pub tag: String,
    pub until: u64,
}

/// A successful second factor from `rhost` to `service` lets the same pair pass until
/// `expires_at` (unix time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraceRecord {
    pub service: String,
    pub rhost: String,
    pub expires_at: u64,
}

impl UserState {
    /// Drops failures older than the window and expired grace records.
    pub fn prune(&mut self, now: u64, failure_window_secs: u64) {
        self.failures.retain(|&at| at.saturating_add(failure_window_secs) > now);
        self.grace.retain(|record| record.expires_at > now);
    }

    /// True when `max_failures` or more failures lie within the window ending at `now`.
    pub fn locked_out(&self, now: u64, max_failures: u32, failure_window_secs: u64) -> bool {
        let recent = self.failures.iter().filter(|&&at| at.saturating_add(failure_window_secs) > now).count();
        recent >= usize::try_from(max_failures).unwrap_or(usize::MAX)
    }

    /// Records a failed offline code; only the newest `MAX_FAILURES_KEPT` are kept.
    pub fn record_failure(&mut self, now: u64) {
        self.failures.push(now);
        if self.failures.len() > MAX_FAILURES_KEPT {
            let excess = self.failures.len() - MAX_FAILURES_KEPT;
            self.failures.drain(..excess);
        }
    }

    /// Accepts an offline code whose time window ends at `end` (unix time) and returns true
    /// only when that is later than the end of every window accepted before; otherwise (and
    /// while an unmigrated step remains) returns false and changes nothing.
    pub fn accept_window(&mut self, end: u64) -> bool {
        if self.last_offline_step.is_some() || self.offline_used_until.is_some_and(|used| end <= used) {
            return false;
        }
        self.offline_used_until = Some(end);
        true
    }

    /// Turns a step stored by an earlier version into a window end, reading it in the period
    /// in force (`period_secs`). A step whose window would end after `latest_end` (the end of
    /// the newest window a code may match now) cannot have been accepted in that period: it
    /// was counted in a shorter one, and is read as `latest_end`, which refuses every code
    /// of the moment instead of every code for years.
    pub fn migrate_offline_step(&mut self, period_secs: u64, latest_end: u64) {
        let Some(step) = self.last_offline_step.take() else {
            return;
        };
        let end = step.saturating_add(1).saturating_mul(period_secs).min(latest_end);
        self.offline_used_until = Some(self.offline_used_until.map_or(end, |used| used.max(end)));
    }

    /// Claims the code `tag` until `until` and returns true, or returns false (changing
    /// nothing but expired claims) when an unexpired claim of the same tag exists or the
    /// list is full.
    pub fn claim_code(&mut self, tag: &str, now: u64, until: u64) -> bool {
        self.used_codes.retain(|used| used.until > now);
        if self.used_codes.len() >= MAX_USED_CODES || self.used_codes.iter().any(|used| used.tag == tag) {
            return false;
        }
        self.used_codes.push(UsedCode { tag: tag.to_owned(), until });
        true
    }

    /// Drops the claim of `tag` (a code the service did not accept may be typed again).
    pub fn release_code(&mut self, tag: &str) -> bool {
        let before = self.used_codes.len();
        self.used_codes.retain(|used| used.tag != tag);
        self.used_codes.len() != before
    }

    /// Lets (service, rhost) pass until `expires_at`. No-op for an empty rhost (a local login
    /// has no origin to tie the grace to) or an overlong field.
    pub fn grant_grace(&mut self, service: &str, rhost: &str, expires_at: u64) {
        if rhost.is_empty() || rhost.len() > MAX_GRACE_FIELD_BYTES || service.len() > MAX_GRACE_FIELD_BYTES {
            return;
        }
        if let Some(record) = self.grace.iter_mut().find(|record| record.service == service && record.rhost == rhost) {
            record.expires_at = expires_at;
            return;
        }
        self.grace.push(GraceRecord { service: service.to_owned(), rhost: rhost.to_owned(), expires_at });
        while self.grace.len() > MAX_GRACE_RECORDS {
            let soonest =
                self.grace.iter().enumerate().min_by_key(|(_, record)| record.expires_at).map(|(index, _)| index);
            match soonest {
                Some(index) => {
                    self.grace.remove(index);
                }
                None => break,
            }
        }
    }

    /// True when a grace record for (service, rhost) has not expired at `now`; always false
    /// for an empty rhost.
    pub fn grace_valid(&self, service: &str, rhost: &str, now: u64) -> bool {
        !rhost.is_empty()
            && self
                .grace
                .iter()
                .any(|record| record.service == service && record.rhost == rhost && record.expires_at > now)
    }
}

/// Why the state could not be used. Callers refuse the offline code (or skip the grace) on
/// every variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateError {
    /// The user name cannot name a state file (empty or longer than `MAX_USER_BYTES`).
    UserName { user: String },
    /// The state directory was refused or could not be created or opened.
    Dir(FileError),
    /// A lock, state or temporary file was refused, or reading or writing it failed.
    File { user: String, error: FileError },
    /// Another process held the user's lock for longer than `LOCK_WAIT_LIMIT`.
    LockTimeout { user: String, path: PathBuf },
    /// The state file is not a valid state record (it is left as it is).
    Corrupt { user: String, path: PathBuf, line: usize, column: usize },
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::UserName { user } => {
                write!(f, "user {user:?}: name cannot be used for a state file")
            }
            StateError::Dir(error) => write!(f, "state directory {error}"),
            StateError::File { user, error } => write!(f, "state of user {user:?}: {error}"),
            StateError::LockTimeout { user, path } => write!(
                f,
                "state of user {user:?}: {}: still locked after {} s",
                path.display(),
                LOCK_WAIT_LIMIT.as_secs()
            ),
            StateError::Corrupt { user, path, line, column } => write!(
                f,
                "state of user {user:?}: {}: not a valid state record (line {line}, column {column})",
                path.display()
            ),
        }
    }
}

impl std::error::Error for StateError {}

/// Where per-user state lives.
pub trait StateStore {
    /// Runs `change` on the user's state under an exclusive cross-process lock and persists it
    /// atomically if `change` returned true. Any failure to lock, read, parse or write is an
    /// Err: callers fail closed, whatever `change` concluded (an accepted step whose write
    /// failed is not an accepted step).
    fn update(&self, user: &str, change: &mut dyn FnMut(&mut UserState) -> bool) -> Result<(), StateError>;
}

fn shown(user: &str) -> String {
    display_text(user, 64)
}

/// The file name stem for `user`: the hex of its bytes, so no name can leave the directory
/// or collide with another.
pub fn file_stem(user: &str) -> Result<String, StateError> {
    if user.is_empty() || user.len() > MAX_USER_BYTES {
        return Err(StateError::UserName { user: shown(user) });
    }
    let mut stem = String::with_capacity(user.len() * 2);
    for byte in user.bytes() {
        stem.push(char::from(HEX[usize::from(byte >> 4)]));
        stem.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    Ok(stem)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Per-user state files in one checked directory.
///
/// Locking: each user has a lock file `<hex>.lock` next to `<hex>.json`, locked with `flock`.
/// The state file itself cannot carry the lock because it is replaced by rename (a waiter
/// would wake up holding the old inode), and locking the directory would serialise all
/// users. `flock` belongs to the open file description, so threads of one process exclude
/// each other as processes do, and the lock dies with its holder. Lock files are never
/// removed.
#[derive(Debug)]
pub struct FileStateStore {
    dir: OwnedFd,
    path: PathBuf,
}

impl FileStateStore {
    /// Opens `state_dir`, creating it with mode 0700 when missing (its parent must then pass
    /// the strict `secure_fs` checks). Refuses a symlink anywhere on the path, a directory
    /// writable by group or other, and an owner other than root or the running user.
    pub fn open(state_dir: &Path) -> Result<FileStateStore, StateError> {
        let (located, created) = match open_dir(state_dir) {
            Ok(fd) => (fd, false),
            Err(error) if error.is_not_found() => (create_dir(state_dir)?, true),
            Err(error) => return Err(StateError::Dir(error)),
        };
        let dir_error = |errno| StateError::Dir(FileError::Io { path: state_dir.to_path_buf(), errno });
        // `open_dir` gives an O_PATH descriptor, which can neither be locked nor fsynced.
        let dir = openat(located.as_fd(), ".", OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(dir_error)?;
        if created {
            fchmod(dir.as_fd(), Mode::from_bits_truncate(0o700)).map_err(dir_error)?;
        }
        let store = FileStateStore { dir, path: state_dir.to_path_buf() };
        store.recheck_dir()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory may have been loosened since `open`; check the descriptor again.
    fn recheck_dir(&self) -> Result<(), StateError> {
        let stat = fstat(self.dir.as_fd())
            .map_err(|errno| StateError::Dir(FileError::Io { path: self.path.clone(), errno }))?;
        check_private_dir(&self.path, &stat).map_err(StateError::Dir)
    }

    fn file_error(user: &str, error: FileError) -> StateError {
        StateError::File { user: shown(user), error }
    }

    fn io_error(&self, user: &str, name: &str, errno: Errno) -> StateError {
        Self::file_error(user, FileError::Io { path: self.path.join(name), errno })
    }

    fn lock(&self, user: &str, stem: &str) -> Result<Flock<OwnedFd>, StateError> {
        let name = format!("{stem}.lock");
        let path = self.path.join(&name);
        let mut fd = open_file_in(&self.dir, Path::new(&name), &path, OFlag::O_RDWR | OFlag::O_CREAT)
            .map_err(|error| Self::file_error(user, error))?;
        let mut waited = Duration::ZERO;
        let mut pause = Duration::from_micros(100);
        loop {
            match Flock::lock(fd, FlockArg::LockExclusiveNonblock) {
                Ok(locked) => return Ok(locked),
                Err((back, Errno::EWOULDBLOCK | Errno::EINTR)) if waited < LOCK_WAIT_LIMIT => {
                    fd = back;
                    std::thread::sleep(pause);
                    waited += pause;
                    pause = (pause * 2).min(Duration::from_millis(2));
                }
                Err((_, Errno::EWOULDBLOCK | Errno::EINTR)) => {
                    return Err(StateError::LockTimeout { user: shown(user), path });
                }
                Err((_, errno)) => return Err(self.io_error(user, &name, errno)),
            }
        }
    }

    fn read(&self, user: &str, stem: &str) -> Result<UserState, StateError> {
        let name = format!("{stem}.json");
        let path = self.path.join(&name);
        let fd = match open_file_in(&self.dir, Path::new(&name), &path, OFlag::O_RDONLY) {
            Ok(fd) => fd,
            Err(error) if error.is_not_found() => return Ok(UserState::default()),
            Err(error) => return Err(Self::file_error(user, error)),
        };
        let mut bytes = Vec::new();
        std::fs::File::from(fd)
            .take(MAX_STATE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|error| self.io_error(user, &name, errno_of(&error)))?;
        if bytes.len() as u64 > MAX_STATE_BYTES {
            return Err(Self::file_error(user, FileError::TooLarge { path, limit: MAX_STATE_BYTES }));
        }
        serde_json::from_slice(&bytes).map_err(|error| StateError::Corrupt {
            user: shown(user),
            path,
            line: error.line(),
            column: error.column(),
        })
    }

    fn write(&self, user: &str, stem: &str, state: &UserState) -> Result<(), StateError> {
        let name = format!("{stem}.json");
        let temp = format!("{stem}.tmp");
        let mut bytes = serde_json::to_vec(state).map_err(|error| StateError::Corrupt {
            user: shown(user),
            path: self.path.join(&name),
            line: error.line(),
            column: error.column(),
        })?;
        bytes.push(b'\n');
        if bytes.len() as u64 > MAX_STATE_BYTES {
            return Err(Self::file_error(
                user,
                FileError::TooLarge { path: self.path.join(&name), limit: MAX_STATE_BYTES },
            ));
        }
        // Only the lock holder uses the temporary name, so a leftover one is from a crash.
        match unlinkat(&self.dir, temp.as_str(), UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(errno) => return Err(self.io_error(user, &temp, errno)),
        }
        let fd = open_file_in(
            &self.dir,
            Path::new(&temp),
            &self.path.join(&temp),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL,
        )
        .map_err(|error| Self::file_error(user, error))?;
        let written = (|| {
            fchmod(fd.as_fd(), Mode::from_bits_truncate(0o600))?;
            let mut file = std::fs::File::from(fd);
            file.write_all(&bytes).map_err(|e| errno_of(&e))?;
            file.sync_all().map_err(|e| errno_of(&e))?;
            renameat(&self.dir, temp.as_str(), &self.dir, name.as_str())
        })();
        if let Err(errno) = written {
            let _ = unlinkat(&self.dir, temp.as_str(), UnlinkatFlags::NoRemoveDir);
            return Err(self.io_error(user, &name, errno));
        }
        fsync(&self.dir).map_err(|errno| self.io_error(user, ".", errno))
    }

    /// True when a state file exists for `user` (for tests and `pam-authy status`).
    pub fn has_state(&self, user: &str) -> Result<bool, StateError> {
        let name = format!("{}.json", file_stem(user)?);
        match fstatat(&self.dir, name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(_) => Ok(true),
            Err(Errno::ENOENT) => Ok(false),
            Err(errno) => Err(self.io_error(user, &name, errno)),
        }
    }
}

fn create_dir(state_dir: &Path) -> Result<OwnedFd, StateError> {
    let (parent, name) = split_file_path(state_dir).map_err(StateError::Dir)?;
    let parent_fd = open_dir(parent).map_err(StateError::Dir)?;
    match mkdirat(&parent_fd, name, Mode::from_bits_truncate(0o700)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(errno) => {
            return Err(StateError::Dir(FileError::Io { path: state_dir.to_path_buf(), errno }));
        }
    }
    open_dir(state_dir).map_err(StateError::Dir)
}

impl StateStore for FileStateStore {
    fn update(&self, user: &str, change: &mut dyn FnMut(&mut UserState) -> bool) -> Result<(), StateError> {
        let stem = file_stem(user)?;
        self.recheck_dir()?;
        let lock = self.lock(user, &stem)?;
        let mut state = self.read(user, &stem)?;
        if change(&mut state) {
            self.write(user, &stem, &state)?;
        }
        drop(lock);
        Ok(())
    }
}

/// An in-memory store for tests of the flow: same contract, no files. `failing` makes every
/// update an error, as an unusable state directory would.
#[cfg(any(test, feature = "test-support"))]
#[derive(Debug, Default)]
pub struct MemoryStateStore {
    states: Mutex<HashMap<String, UserState>>,
    failing: bool,
}

#[cfg(any(test, feature = "test-support"))]
impl MemoryStateStore {
    pub fn new() -> MemoryStateStore {
        MemoryStateStore::default()
    }

    pub fn failing() -> MemoryStateStore {
        MemoryStateStore { states: Mutex::default(), failing: true }
    }

    /// The user's state as last persisted (default when none).
    pub fn get(&self, user: &str) -> UserState {
        self.states.lock().ok().and_then(|states| states.get(user).cloned()).unwrap_or_default()
    }

    pub fn set(&self, user: &str, state: UserState) {
        if let Ok(mut states) = self.states.lock() {
            states.insert(user.to_owned(), state);
        }
    }
}

#[cfg(any(test, feature = "test-support"))]
impl StateStore for MemoryStateStore {
    fn update(&self, user: &str, change: &mut dyn FnMut(&mut UserState) -> bool) -> Result<(), StateError> {
        let unavailable = || StateError::File {
            user: shown(user),
            error: FileError::Io { path: PathBuf::from("<memory>"), errno: Errno::EIO },
        };
        if self.failing {
            return Err(unavailable());
        }
        let mut states = self.states.lock().map_err(|_| unavailable())?;
        let mut state = states.get(user).cloned().unwrap_or_default();
        if change(&mut state) {
            states.insert(user.to_owned(), state);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
