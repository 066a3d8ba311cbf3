//! Changes to the config file and its `users.d` drop-ins that keep comments and layout, and
//! that can never leave a file the module would reject.
//!
//! An edit is refused unless the file passes the module's own checks (`Config::load`). The
//! text is edited with toml_edit, re-validated with `Config::parse`, written to a temporary
//! file in the same checked directory (created 0600 with O_EXCL|O_NOFOLLOW, then given the
//! original owner and mode), fsynced, validated once more with `Config::load` (so the mode
//! check sees the exact bytes and mode), and renamed over the original; then the directory
//! is fsynced. The module therefore reads either the old file or the new one, never a mix.
//! A drop-in goes the same way, checked with the module's drop-in rules; a new one is created
//! 0600 and renamed into place only if no file of that name appeared meanwhile.
//! Concurrent `pam-authy` commands are serialised with a lock on the directory, which a
//! command takes (waiting at most `LOCK_WAIT`) before anything else, so that an API call and
//! the edit that records it happen under one lock; an edit by anyone else between our read
//! and our rename aborts ours.

use nix::errno::Errno;
use nix::fcntl::{AtFlags, Flock, FlockArg, OFlag, openat, renameat};
use nix::sys::stat::{FileStat, Mode, fchmod, fstat, fstatat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fsync, linkat, unlinkat};
use pam_authy::config::{Config, ConfigError, USERS_DIR, read_drop_in, users_dir};
use pam_authy::secure_fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use toml_edit::{DocumentMut, InlineTable, Item, Table, TableLike, Value};
use zeroize::Zeroizing;

const MAX_FILE_BYTES: u64 = 1 << 20;
/// How long a command waits for another `pam-authy` to finish with the config.
const LOCK_WAIT: Duration = Duration::from_secs(10);
const LOCK_RETRY: Duration = Duration::from_millis(50);

/// The exclusive right to change the config at `path`, held until dropped.
pub struct ConfigLock {
    path: PathBuf,
    dir_path: PathBuf,
    name: PathBuf,
    dir: OwnedFd,
    _lock: Flock<std::fs::File>,
}

impl ConfigLock {
    /// Locks the config's directory, waiting at most `LOCK_WAIT` for another `pam-authy`.
    pub fn acquire(path: &Path) -> Result<ConfigLock, String> {
        let (dir_path, name) = secure_fs::split_file_path(path).map_err(|e| e.to_string())?;
        let dir = secure_fs::open_dir(dir_path).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + LOCK_WAIT;
        let lock = loop {
            let dir_handle = std::fs::File::from(
                openat(dir.as_fd(), ".", OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
                    .map_err(|e| format!("{}: {}", dir_path.display(), e.desc()))?,
            );
            match Flock::lock(dir_handle, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => break lock,
                Err((_, Errno::EWOULDBLOCK)) if Instant::now() < deadline => std::thread::sleep(LOCK_RETRY),
                Err((_, Errno::EWOULDBLOCK)) => {
                    return Err(format!(
                        "{}: another pam-authy is editing it (waited {} s); nothing was changed, try again",
                        path.display(),
                        LOCK_WAIT.as_secs()
                    ));
                }
                Err((_, errno)) => return Err(format!("{}: cannot lock: {}", dir_path.display(), errno.desc())),
            }
        };
        Ok(ConfigLock {
            path: path.to_path_buf(),
            dir_path: dir_path.to_path_buf(),
            name: name.to_path_buf(),
            dir,
            _lock: lock,
        })
    }

    /// Applies `change` to the config and replaces the file atomically. Nothing is written
    /// when `change` fails or when the result would not be a valid config.
    pub fn edit<T>(&self, change: impl FnOnce(&mut DocumentMut) -> Result<T, String>) -> Result<T, String> {
        self.edit_users_file(&self.path, change)
    }

    /// Applies `change` to `file`, which is the main config or one of its `users.d` drop-ins
    /// (created root-owned 0600 when missing, with the directory), and replaces it atomically.
    /// A drop-in is checked with the module's own drop-in rules before it takes the real
    /// file's place; the whole config must load before anything is touched.
    pub fn edit_users_file<T>(
        &self,
        file: &Path,
        change: impl FnOnce(&mut DocumentMut) -> Result<T, String>,
    ) -> Result<T, String> {
        let path = self.path.as_path();
        let config = Config::load(path).map_err(|e| format!("{e} (not editing a file the module rejects)"))?;
        if file == path {
            let target = Target { path, dir_path: &self.dir_path, name: &self.name, dir: &self.dir, create: false };
            let check_text = |text: &str| Config::parse(path, text).map(drop).map_err(|e| e.to_string());
            let check_file = |temp: &Path| Config::load(temp).map(drop).map_err(|e| rename_error(e, temp, path));
            return edit_locked(&target, &check_text, &check_file, change);
        }
        let users_dir = users_dir(path);
        let (dir_path, name) = secure_fs::split_file_path(file).map_err(|e| e.to_string())?;
        if dir_path != users_dir {
            return Err(format!("{}: not a drop-in of {}", file.display(), path.display()));
        }
        let dir = open_users_dir(&self.dir, &users_dir)?;
        let target = Target { path: file, dir_path, name, dir: &dir, create: true };
        let backend = config.api.backend;
        let check_file = |temp: &Path| read_drop_in(temp, backend).map(drop).map_err(|e| rename_error(e, temp, file));
        edit_locked(&target, &|_| Ok(()), &check_file, change)
    }
}

/// `users.d` beside the main config, made (0755, as the packages make it) when missing.
fn open_users_dir(config_dir: &OwnedFd, users_dir: &Path) -> Result<OwnedFd, String> {
    match nix::sys::stat::mkdirat(config_dir.as_fd(), USERS_DIR, Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(format!("{}: mkdir: {}", users_dir.display(), e.desc())),
    }
    secure_fs::open_dir(users_dir).map_err(|e| e.to_string())
}

/// The `users.d` drop-in called NAME (or NAME.toml) beside the config at `config`: a plain
/// file name the module reads, so letters, digits, `.`, `_`, `-`, not starting with a dot.
pub fn drop_in_path(config: &Path, name: &str) -> Result<PathBuf, String> {
    let stem = name.strip_suffix(".toml").unwrap_or(name);
    let fine = !stem.is_empty()
        && stem.len() <= MAX_DROP_IN_NAME
        && !stem.starts_with('.')
        && stem.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !fine {
        return Err(format!(
            "--drop-in {:?}: a file name in users.d: letters, digits, '.', '_' and '-', not starting with '.', at most {MAX_DROP_IN_NAME} characters",
            pam_authy::sanitize::display_text(name, 80)
        ));
    }
    Ok(users_dir(config).join(format!("{stem}.toml")))
}

const MAX_DROP_IN_NAME: usize = 64;

/// The file an edit replaces: `name` in the checked directory `dir`. Only a drop-in may be
/// created.
struct Target<'a> {
    path: &'a Path,
    dir_path: &'a Path,
    name: &'a Path,
    dir: &'a OwnedFd,
    create: bool,
}

fn edit_locked<T>(
    target: &Target<'_>,
    check_text: &dyn Fn(&str) -> Result<(), String>,
    check_file: &dyn Fn(&Path) -> Result<(), String>,
    change: impl FnOnce(&mut DocumentMut) -> Result<T, String>,
) -> Result<T, String> {
    let Target { path, dir_path, name, dir, create } = *target;
    let (original, text) = match secure_fs::open_file_in(dir, name, path, OFlag::O_RDONLY) {
        Ok(file) => {
            let stat = fstat(file.as_fd()).map_err(|e| format!("{}: {}", path.display(), e.desc()))?;
            (Some(stat), read_text(file, path)?)
        }
        Err(e) if create && e.is_not_found() => (None, Zeroizing::new(String::new())),
        Err(e) => return Err(e.to_string()),
    };
    check_text(&text)?;
    let mut document: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        // The parser's message may quote the line, and the line may hold a secret.
        let line = e.span().map(|s| line_of(&text, s.start)).unwrap_or(0);
        format!("{}: line {line}: toml_edit cannot parse it", path.display())
    })?;

    let result = change(&mut document)?;

    let new_text = Zeroizing::new(document.to_string());
    check_text(&new_text).map_err(|e| format!("{e} (the edited config would be invalid; nothing written)"))?;
    let temp = TempFile::create(dir, dir_path, name)?;
    temp.write(&new_text, original.as_ref())?;
    check_file(&temp.path).map_err(|e| format!("{e} (the edited config would be rejected; nothing written)"))?;
    match &original {
        Some(original) => {
            let now = fstatat(dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(|e| format!("{}: {}", path.display(), e.desc()))?;
            if !same_version(original, &now) {
                return Err(format!(
                    "{}: changed by someone else while editing; nothing written, try again",
                    path.display()
                ));
            }
            temp.commit(dir, name, path, Commit::Replace)?;
        }
        None => temp.commit(dir, name, path, Commit::CreateOnly)?,
    }
    let listing = openat(dir.as_fd(), ".", OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| format!("{}: {}", dir_path.display(), e.desc()))?;
    fsync(listing.as_fd()).map_err(|e| format!("{}: fsync: {}", dir_path.display(), e.desc()))?;
    Ok(result)
}

fn read_text(file: OwnedFd, path: &Path) -> Result<Zeroizing<String>, String> {
    let mut bytes = Zeroizing::new(Vec::new());
    std::fs::File::from(file)
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("{}: larger than {MAX_FILE_BYTES} bytes", path.display()));
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| format!("{}: is not valid UTF-8", path.display()))?;
    Ok(Zeroizing::new(text.to_owned()))
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes().iter().take(offset).filter(|b| **b == b'\n').count() + 1
}

/// The same file, unchanged since we read it: same inode, size, and change times.
fn same_version(a: &FileStat, b: &FileStat) -> bool {
    a.st_dev == b.st_dev
        && a.st_ino == b.st_ino
        && a.st_size == b.st_size
        && a.st_mtime == b.st_mtime
        && a.st_mtime_nsec == b.st_mtime_nsec
        && a.st_ctime == b.st_ctime
        && a.st_ctime_nsec == b.st_ctime_nsec
}

/// Messages about the temporary file name the real file instead.
fn rename_error(mut error: ConfigError, temp: &Path, real: &Path) -> String {
    let temp_text = temp.display().to_string();
    if error.path == temp {
        error.path = real.to_path_buf();
    }
    error.problem = error.problem.replace(&temp_text, &real.display().to_string());
    error.to_string()
}

/// The replacement file, removed on drop unless it was renamed into place.
struct TempFile<'d> {
    dir: &'d OwnedFd,
    name: String,
    path: PathBuf,
    fd: Option<OwnedFd>,
    committed: bool,
}

impl<'d> TempFile<'d> {
    fn create(dir: &'d OwnedFd, dir_path: &Path, name: &Path) -> Result<TempFile<'d>, String> {
        let mut random = [0u8; 6];
        getrandom::fill(&mut random).map_err(|e| format!("getrandom: {e}"))?;
        let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let temp_name = format!(".{}.pam-authy-{suffix}", name.display());
        let fd = openat(
            dir.as_fd(),
            temp_name.as_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| format!("{}: cannot create a file next to it: {}", dir_path.display(), e.desc()))?;
        Ok(TempFile { dir, path: dir_path.join(&temp_name), name: temp_name, fd: Some(fd), committed: false })
    }

    /// Gives the file the original's owner and mode (a new file stays ours, 0600), writes the
    /// text and syncs it.
    fn write(&self, text: &str, original: Option<&FileStat>) -> Result<(), String> {
        let fd = self.fd.as_ref().ok_or_else(|| "temporary file already closed".to_owned())?;
        let fail = |what: &str, e: Errno| format!("{}: {what}: {}", self.path.display(), e.desc());
        if let Some(original) = original {
            fchown(fd.as_fd(), Some(Uid::from_raw(original.st_uid)), Some(Gid::from_raw(original.st_gid)))
                .map_err(|e| fail("fchown", e))?;
        }
        let mode = original.map_or(0o600, |o| o.st_mode & 0o7777);
        fchmod(fd.as_fd(), Mode::from_bits_truncate(mode)).map_err(|e| fail("fchmod", e))?;
        let mut file = std::fs::File::from(fd.try_clone().map_err(|e| e.to_string())?);
        file.write_all(text.as_bytes()).map_err(|e| format!("{}: write: {e}", self.path.display()))?;
        file.sync_all().map_err(|e| format!("{}: fsync: {e}", self.path.display()))
    }

    fn commit(mut self, dir: &OwnedFd, name: &Path, path: &Path, how: Commit) -> Result<(), String> {
        self.fd = None;
        let done = match how {
            Commit::Replace => renameat(dir.as_fd(), self.name.as_str(), dir.as_fd(), name),
            // A hard link fails when the name appeared meanwhile, as renameat2's
            // RENAME_NOREPLACE would; that call is not in glibc 2.17, the portable build's
            // floor. Drop then removes the temporary name.
            Commit::CreateOnly => linkat(dir.as_fd(), self.name.as_str(), dir.as_fd(), name, AtFlags::empty()),
        };
        done.map_err(|e| match e {
            Errno::EEXIST => {
                format!("{}: created by someone else while editing; nothing written, try again", path.display())
            }
            e => format!("{}: rename: {}", path.display(), e.desc()),
        })?;
        self.committed = how == Commit::Replace;
        Ok(())
    }
}

/// How a finished temporary file takes its name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Commit {
    /// Over the file read at the start (its version was checked just before).
    Replace,
    /// A new file, refused when one appeared meanwhile.
    CreateOnly,
}

impl Drop for TempFile<'_> {
    fn drop(&mut self) {
        self.fd = None;
        if !self.committed {
            let _ = unlinkat(self.dir.as_fd(), self.name.as_str(), UnlinkatFlags::NoRemoveDir);
        }
    }
}

// ------------------------------------------------------------------ edits of [users] --

/// The `[users]` table, created at the end of the file when missing.
fn users_table(document: &mut DocumentMut) -> Result<&mut dyn TableLike, String> {
    if !document.contains_key("users") {
        document.insert("users", Item::Table(Table::new()));
    }
    document.get_mut("users").and_then(Item::as_table_like_mut).ok_or_else(|| "[users] is not a table".to_owned())
}

/// Adds `user = authy_id`; refuses when the user is already mapped.
pub fn add_user(document: &mut DocumentMut, user: &str, authy_id: u64) -> Result<(), String> {
    let id = i64::try_from(authy_id).map_err(|_| format!("Authy ID {authy_id} is too large"))?;
    let users = users_table(document)?;
    if users.contains_key(user) {
        return Err(format!("{user} is already in [users]"));
    }
    users.insert(user, toml_edit::value(id));
    Ok(())
}

/// The Verify mapping of one user, as `enroll` writes it.
pub struct VerifyEntry<'a> {
    pub identity: &'a str,
    pub totp_factor: &'a str,
    pub phone: Option<&'a str>,
}

fn verify_value(entry: &VerifyEntry<'_>) -> Value {
    let mut table = InlineTable::new();
    table.insert("verify_identity", Value::from(entry.identity));
    table.insert("totp_factor", Value::from(entry.totp_factor));
    if let Some(phone) = entry.phone {
        table.insert("phone", Value::from(phone));
    }
    table.fmt();
    Value::InlineTable(table)
}

/// Adds `user = { verify_identity = ..., totp_factor = ..., phone = ... }`; refuses when the
/// user is already mapped.
pub fn add_verify_user(document: &mut DocumentMut, user: &str, entry: &VerifyEntry<'_>) -> Result<(), String> {
    let users = users_table(document)?;
    if users.contains_key(user) {
        return Err(format!("{user} is already in [users]"));
    }
    users.insert(user, Item::Value(verify_value(entry)));
    Ok(())
}

/// The `[users]` line `enroll --print` shows: `user = 123` or `user = { verify_identity = ... }`.
pub fn user_line(user: &str, authy_id: Option<u64>, verify: Option<&VerifyEntry<'_>>) -> Result<String, String> {
    let mut document = DocumentMut::new();
    match (authy_id, verify) {
        (Some(id), None) => add_user(&mut document, user, id)?,
        (None, Some(entry)) => add_verify_user(&mut document, user, entry)?,
        _ => return Err("a mapping is an Authy ID or a Verify entry".to_owned()),
    }
    let text = document.to_string();
    Ok(text.strip_prefix("[users]\n").unwrap_or(&text).trim_end().to_owned())
}

/// Removes the user's entry with its comments; false when there was none.
pub fn remove_user(document: &mut DocumentMut, user: &str) -> Result<bool, String> {
    Ok(users_table(document)?.remove(user).is_some())
}

/// Sets the user's `offline_secret`, turning `user = N` into `user = { authy_id = N,
/// offline_secret = "..." }` and keeping any other keys and the trailing comment.
pub fn set_offline_secret(document: &mut DocumentMut, user: &str, secret: &str) -> Result<(), String> {
    let users = users_table(document)?;
    let entry = users.get_mut(user).ok_or_else(|| format!("{user} is not in [users]"))?;
    if let Some(id) = entry.as_integer() {
        let decor = entry.as_value().map(|v| v.decor().clone());
        let mut table = InlineTable::new();
        table.insert("authy_id", Value::from(id));
        table.insert("offline_secret", Value::from(secret));
        let mut value = Value::InlineTable(table);
        if let Some(decor) = decor {
            *value.decor_mut() = decor;
        }
        *entry = Item::Value(value);
        return Ok(());
    }
    if let Some(inline) = entry.as_inline_table_mut() {
        inline.insert("offline_secret", Value::from(secret));
        inline.fmt();
        return Ok(());
    }
    let table = entry.as_table_like_mut().ok_or_else(|| format!("[users] {user}: neither an Authy ID nor a table"))?;
    match table.get_mut("offline_secret") {
        Some(existing) => {
            // Keep the comment after the old value, not the value itself.
            let decor = existing.as_value().map(|v| v.decor().clone());
            let mut value = Value::from(secret);
            if let Some(decor) = decor {
                *value.decor_mut() = decor;
            }
            *existing = Item::Value(value);
        }
        None => {
            table.insert("offline_secret", toml_edit::value(secret));
        }
    }
    Ok(())
}

/// Adds `verify_identity` and `totp_factor` to an Authy user's entry (`migrate`), turning
/// `user = N` into `user = { authy_id = N, verify_identity = ..., totp_factor = ... }` and
/// keeping the trailing comment and any other keys.
pub fn add_verify_keys(document: &mut DocumentMut, user: &str, identity: &str, factor: &str) -> Result<(), String> {
    let users = users_table(document)?;
    let entry = users.get_mut(user).ok_or_else(|| format!("{user} is not in [users]"))?;
    if let Some(id) = entry.as_integer() {
        let decor = entry.as_value().map(|v| v.decor().clone());
        let mut table = InlineTable::new();
        table.insert("authy_id", Value::from(id));
        let mut value = Value::InlineTable(table);
        if let Some(decor) = decor {
            *value.decor_mut() = decor;
        }
        *entry = Item::Value(value);
    }
    let table = entry.as_table_like_mut().ok_or_else(|| format!("[users] {user}: neither an Authy ID nor a table"))?;
    if table.contains_key("verify_identity") {
        return Err(format!("[users] {user} already has a verify_identity"));
    }
    table.insert("verify_identity", toml_edit::value(identity));
    table.insert("totp_factor", toml_edit::value(factor));
    if let Some(inline) = entry.as_inline_table_mut() {
        inline.fmt();
    }
    Ok(())
}

/// `[api] backend = "verify"`; an `[api] url` naming the Authy API goes, so that the Verify
/// default applies. The Authy key stays, for a rollback.
pub fn switch_to_verify(document: &mut DocumentMut) -> Result<(), String> {
    if !document.contains_key("api") {
        document.insert("api", Item::Table(Table::new()));
    }
    let api = document.get_mut("api").and_then(Item::as_table_like_mut).ok_or("[api] is not a table")?;
    if api.get("url").and_then(Item::as_str) == Some(pam_authy::config::DEFAULT_AUTHY_URL) {
        api.remove("url");
    }
    match api.get_mut("backend") {
        Some(existing) => {
            let decor = existing.as_value().map(|v| v.decor().clone());
            let mut value = Value::from("verify");
            if let Some(decor) = decor {
                *value.decor_mut() = decor;
            }
            *existing = Item::Value(value);
        }
        None => {
            api.insert("backend", toml_edit::value("verify"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> DocumentMut {
        text.parse().expect("toml")
    }

    #[test]
    fn a_new_user_goes_at_the_end_of_users_and_keeps_the_comments() {
        let mut d = doc("# top\n[api]\napi_key = \"k\" # key\n\n[users]\n# admins\nalice = 1\n");
        add_user(&mut d, "bob", 22).expect("add");
        assert_eq!(d.to_string(), "# top\n[api]\napi_key = \"k\" # key\n\n[users]\n# admins\nalice = 1\nbob = 22\n");
    }

    #[test]
    fn a_missing_users_table_is_created() {
        let mut d = doc("[api]\napi_key = \"k\"\n");
        add_user(&mut d, "carol", 3).expect("add");
        assert_eq!(d.to_string(), "[api]\napi_key = \"k\"\n\n[users]\ncarol = 3\n");
    }

    #[test]
    fn names_that_need_quotes_are_quoted() {
        let mut d = doc("[users]\n");
        add_user(&mut d, "j.doe@example", 4).expect("add");
        assert_eq!(d.to_string(), "[users]\n\"j.doe@example\" = 4\n");
    }

    #[test]
    fn an_existing_user_is_not_overwritten() {
        let mut d = doc("[users]\nalice = 1\n");
        assert!(add_user(&mut d, "alice", 2).is_err());
    }

    #[test]
    fn a_verify_user_is_one_inline_table_and_print_shows_the_same_line() {
        let entry = VerifyEntry {
            identity: "2f0c9a3e5b7d4e61",
            totp_factor: "YF0123456789abcdef0123456789abcdef",
            phone: Some("+15551234567"),
        };
        let mut d = doc("[users]\n# admins\nalice = 1\n");
        add_verify_user(&mut d, "bob", &entry).expect("add");
        let line = "bob = { verify_identity = \"2f0c9a3e5b7d4e61\", totp_factor = \"YF0123456789abcdef0123456789abcdef\", phone = \"+15551234567\" }";
        assert_eq!(d.to_string(), format!("[users]\n# admins\nalice = 1\n{line}\n"));
        assert_eq!(user_line("bob", None, Some(&entry)).expect("line"), line);
        assert_eq!(user_line("j.doe", Some(7), None).expect("line"), "\"j.doe\" = 7");
        assert!(add_verify_user(&mut d, "alice", &entry).is_err());
    }

    #[test]
    fn migration_adds_the_verify_keys_beside_the_authy_id_and_switches_the_backend() {
        let mut d = doc(
            "[api]\nurl = \"https://api.authy.com\"\napi_key = \"k\"\n[users]\nalice = 1 # boss\nbob = { authy_id = 2 }\n",
        );
        add_verify_keys(&mut d, "alice", "aaaaaaaa", "YF1").expect("alice");
        add_verify_keys(&mut d, "bob", "bbbbbbbb", "YF2").expect("bob");
        assert!(add_verify_keys(&mut d, "bob", "cccccccc", "YF3").is_err());
        switch_to_verify(&mut d).expect("switch");
        assert_eq!(
            d.to_string(),
            "[api]\napi_key = \"k\"\nbackend = \"verify\"\n[users]\n\
             alice = { authy_id = 1, verify_identity = \"aaaaaaaa\", totp_factor = \"YF1\" } # boss\n\
             bob = { authy_id = 2, verify_identity = \"bbbbbbbb\", totp_factor = \"YF2\" }\n"
        );
    }

    #[test]
    fn removing_a_user_keeps_the_others() {
        let mut d = doc("[users]\nalice = 1 # first\nbob = 2\n");
        assert!(remove_user(&mut d, "alice").expect("remove"));
        assert_eq!(d.to_string(), "[users]\nbob = 2\n");
        assert!(!remove_user(&mut d, "alice").expect("remove"));
    }

    #[test]
    fn an_integer_entry_becomes_a_table_with_its_comment() {
        let mut d = doc("[users]\nalice = 1 # the boss\nbob = 2\n");
        set_offline_secret(&mut d, "alice", "JBSWY3DPEHPK3PXP").expect("set");
        assert_eq!(
            d.to_string(),
            "[users]\nalice = { authy_id = 1, offline_secret = \"JBSWY3DPEHPK3PXP\" } # the boss\nbob = 2\n"
        );
    }

    #[test]
    fn a_table_entry_gets_or_replaces_its_secret() {
        let mut d =
            doc("[users]\nalice = { authy_id = 1 }\n[users.bob]\nauthy_id = 2\noffline_secret = \"OLD\" # old\n");
        set_offline_secret(&mut d, "alice", "AAAA").expect("alice");
        set_offline_secret(&mut d, "bob", "BBBB").expect("bob");
        assert_eq!(
            d.to_string(),
            "[users]\nalice = { authy_id = 1, offline_secret = \"AAAA\" }\n[users.bob]\nauthy_id = 2\noffline_secret = \"BBBB\" # old\n"
        );
    }

    #[test]
    fn a_new_file_never_replaces_one_that_appeared_while_it_was_written() {
        let dir_path = tempfile::tempdir().expect("tempdir");
        let dir = std::fs::File::open(dir_path.path()).map(OwnedFd::from).expect("open dir");
        let name = Path::new("team.toml");
        let target = dir_path.path().join(name);
        let temp = TempFile::create(&dir, dir_path.path(), name).expect("temp");
        temp.write("[users]\nbob = 2\n", None).expect("write");
        std::fs::write(&target, "[users]\nalice = 1\n").expect("the other writer");
        let error = temp.commit(&dir, name, &target, Commit::CreateOnly).expect_err("must refuse");
        assert!(error.contains("created by someone else"), "{error}");
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "[users]\nalice = 1\n");
        let left: Vec<_> = std::fs::read_dir(dir_path.path()).expect("list").flatten().map(|e| e.file_name()).collect();
        assert_eq!(left, [std::ffi::OsString::from("team.toml")], "the temporary file is gone");

        std::fs::remove_file(&target).expect("rm");
        let temp = TempFile::create(&dir, dir_path.path(), name).expect("temp");
        temp.write("[users]\nbob = 2\n", None).expect("write");
        temp.commit(&dir, name, &target, Commit::CreateOnly).expect("a free name is taken");
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "[users]\nbob = 2\n");
        let left: Vec<_> = std::fs::read_dir(dir_path.path()).expect("list").flatten().map(|e| e.file_name()).collect();
        assert_eq!(left, [std::ffi::OsString::from("team.toml")], "only the new file, no temporary name");
    }
}
