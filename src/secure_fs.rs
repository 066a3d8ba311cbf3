//! Opening root-owned files the way sshd's StrictModes would, without races.
//!
//! Every path is walked from `/` one component at a time with `openat(O_NOFOLLOW)`, and each
//! directory and the file itself are checked with `fstat` on the open descriptor, so a
//! component swapped for a symlink between check and use is refused rather than followed.
//! A trusted owner is root or the effective user running the module (root inside sshd and
//! sudo; the test user in unprivileged tests). Directories on the way may be group/world
//! writable only when they are root-owned and sticky (`/tmp`); the directory that holds the
//! file must not be writable by anyone but its trusted owner. This file decides nothing about
//! PAM: it returns typed errors and the caller fails closed.

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat};
use std::fmt;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

/// Why a file or directory was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileError {
    NotAbsolute(PathBuf),
    Io { path: PathBuf, errno: Errno },
    Symlink(PathBuf),
    NotDirectory(PathBuf),
    NotRegular(PathBuf),
    UntrustedOwner { path: PathBuf, uid: u32 },
    Writable { path: PathBuf, mode: u32 },
    TooLarge { path: PathBuf, limit: u64 },
}

impl FileError {
    pub fn path(&self) -> &Path {
        match self {
            FileError::NotAbsolute(path)
            | FileError::Symlink(path)
            | FileError::NotDirectory(path)
            | FileError::NotRegular(path)
            | FileError::Io { path, .. }
            | FileError::UntrustedOwner { path, .. }
            | FileError::Writable { path, .. }
            | FileError::TooLarge { path, .. } => path,
        }
    }

    /// True only when the file positively does not exist (ENOENT), as opposed to unreadable.
    pub fn is_not_found(&self) -> bool {
        matches!(self, FileError::Io { errno: Errno::ENOENT, .. })
    }
}

impl FileError {
    /// What is wrong, without the path (for paths that come from a config value).
    pub fn problem(&self) -> String {
        match self {
            FileError::NotAbsolute(_) => "path must be absolute and normalised".to_owned(),
            FileError::Io { errno, .. } => errno.desc().to_owned(),
            FileError::Symlink(_) => "is a symbolic link".to_owned(),
            FileError::NotDirectory(_) => "is not a directory".to_owned(),
            FileError::NotRegular(_) => "is not a regular file".to_owned(),
            FileError::UntrustedOwner { uid, .. } => {
                format!("owned by uid {uid}, must be owned by root (or the user running the module)")
            }
            FileError::Writable { mode, .. } => format!(
                "mode {:04o} is writable by group or other; a trusted file and the directory holding it must be \
                 writable only by its owner, and a directory above them only by its owner unless it is root's and \
                 sticky (like /tmp)",
                mode & 0o7777
            ),
            FileError::TooLarge { limit, .. } => format!("larger than {limit} bytes"),
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path().display(), self.problem())
    }
}

impl std::error::Error for FileError {}

/// A file read after all checks passed.
pub struct CheckedFile {
    pub bytes: Vec<u8>,
    /// Permission bits of the file as opened.
    pub mode: u32,
}

impl CheckedFile {
    pub fn readable_by_group_or_other(&self) -> bool {
        self.mode & 0o044 != 0
    }
}

impl Drop for CheckedFile {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.bytes);
    }
}

fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == nix::unistd::geteuid().as_raw()
}

fn io_error(path: &Path, errno: Errno) -> FileError {
    FileError::Io { path: path.to_path_buf(), errno }
}

fn is_dir(stat: &FileStat) -> bool {
    SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
}

fn is_regular(stat: &FileStat) -> bool {
    SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG
}

fn check_owner(path: &Path, stat: &FileStat) -> Result<(), FileError> {
    if trusted_owner(stat.st_uid) {
        Ok(())
    } else {
        Err(FileError::UntrustedOwner { path: path.to_path_buf(), uid: stat.st_uid })
    }
}

/// An ancestor may be world-writable only when root owns it and the sticky bit stops
/// others from renaming what lies inside (`/tmp`).
fn check_ancestor(path: &Path, stat: &FileStat) -> Result<(), FileError> {
    check_owner(path, stat)?;
    let sticky_root = stat.st_mode & libc::S_ISVTX != 0 && stat.st_uid == 0;
    if stat.st_mode & 0o022 != 0 && !sticky_root {
        return Err(FileError::Writable { path: path.to_path_buf(), mode: stat.st_mode });
    }
    Ok(())
}

/// A directory as a descriptor saw it: a directory, trusted owner, writable by nobody else.
pub fn check_private_dir(path: &Path, stat: &FileStat) -> Result<(), FileError> {
    if !is_dir(stat) {
        return Err(FileError::NotDirectory(path.to_path_buf()));
    }
    check_strict(path, stat)
}

/// The errno of an I/O error, EIO when it carries none.
pub fn errno_of(error: &std::io::Error) -> Errno {
    Errno::from_raw(error.raw_os_error().unwrap_or(libc::EIO))
}

fn check_strict(path: &Path, stat: &FileStat) -> Result<(), FileError> {
    check_owner(path, stat)?;
    if stat.st_mode & 0o022 != 0 {
        return Err(FileError::Writable { path: path.to_path_buf(), mode: stat.st_mode });
    }
    Ok(())
}

/// Distinguishes "a symlink is in the way" from other open failures, for a clear message.
fn explain_open_failure(parent: &OwnedFd, name: &Path, path: &Path, errno: Errno) -> FileError {
    if matches!(errno, Errno::ELOOP | Errno::ENOTDIR | Errno::EMLINK)
        && let Ok(stat) = nix::sys::stat::fstatat(parent.as_fd(), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
    {
        let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
        if kind == SFlag::S_IFLNK {
            return FileError::Symlink(path.to_path_buf());
        }
        if errno == Errno::ENOTDIR {
            return FileError::NotDirectory(path.to_path_buf());
        }
    }
    io_error(path, errno)
}

fn normal_components(path: &Path) -> Result<Vec<&Path>, FileError> {
    if !path.is_absolute() {
        return Err(FileError::NotAbsolute(path.to_path_buf()));
    }
    let mut names = Vec::new();
    for component in path.components() {
        match component {
            Component::RootDir => {}
            Component::Normal(name) => names.push(Path::new(name)),
            _ => return Err(FileError::NotAbsolute(path.to_path_buf())),
        }
    }
    Ok(names)
}

const DIR_FLAGS: OFlag = OFlag::O_PATH.union(OFlag::O_DIRECTORY).union(OFlag::O_NOFOLLOW).union(OFlag::O_CLOEXEC);

/// Opens the directory `path` (walking from `/` without following symlinks) and checks every
/// directory on the way. The last directory gets the strict check.
pub fn open_dir(path: &Path) -> Result<OwnedFd, FileError> {
    let names = normal_components(path)?;
    let root = nix::fcntl::open("/", DIR_FLAGS, Mode::empty()).map_err(|e| io_error(Path::new("/"), e))?;
    let root_stat = fstat(root.as_fd()).map_err(|e| io_error(Path::new("/"), e))?;
    if names.is_empty() {
        check_strict(Path::new("/"), &root_stat)?;
        return Ok(root);
    }
    check_ancestor(Path::new("/"), &root_stat)?;
    let mut current = root;
    let mut walked = PathBuf::from("/");
    for (index, name) in names.iter().enumerate() {
        walked.push(name);
        let next = openat(current.as_fd(), *name, DIR_FLAGS, Mode::empty())
            .map_err(|errno| explain_open_failure(&current, name, &walked, errno))?;
        let stat = fstat(next.as_fd()).map_err(|e| io_error(&walked, e))?;
        if !is_dir(&stat) {
            return Err(FileError::NotDirectory(walked));
        }
        if index + 1 == names.len() {
            check_strict(&walked, &stat)?;
        } else {
            check_ancestor(&walked, &stat)?;
        }
        current = next;
    }
    Ok(current)
}

/// Splits an absolute file path into its directory and its final name.
pub fn split_file_path(path: &Path) -> Result<(&Path, &Path), FileError> {
    let names = normal_components(path)?;
    match (path.parent(), names.last()) {
        (Some(dir), Some(name)) => Ok((dir, name)),
        _ => Err(FileError::NotRegular(path.to_path_buf())),
    }
}

/// Opens a file inside an already-checked directory: no symlink, no FIFO or device, trusted
/// owner, not writable by group or other.
pub fn open_file_in(dir: &OwnedFd, name: &Path, path: &Path, flags: OFlag) -> Result<OwnedFd, FileError> {
    let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK;
    let fd = openat(dir.as_fd(), name, flags, Mode::from_bits_truncate(0o600))
        .map_err(|errno| explain_open_failure(dir, name, path, errno))?;
    let stat = fstat(fd.as_fd()).map_err(|e| io_error(path, e))?;
    if !is_regular(&stat) {
        return Err(FileError::NotRegular(path.to_path_buf()));
    }
    check_strict(path, &stat)?;
    Ok(fd)
}

/// Reads at most `limit + 1` bytes into a buffer sized from `hint`. These files hold API keys
/// and seeds: a buffer that is outgrown is wiped before it is freed (`read_to_end` would free
/// it as it is). The reads go straight into the buffer's zero-filled spare room: a separate
/// read chunk would be one more copy to wipe, and wiping a 4 KiB chunk per file was a fifth
/// of the module's own instructions in an exempt login (docs/performance.md).
fn read_wiping(file: &mut std::fs::File, hint: u64, limit: u64) -> std::io::Result<Vec<u8>> {
    let most = usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX);
    let first = usize::try_from(hint.saturating_add(1)).unwrap_or(usize::MAX).min(most);
    let mut bytes = Vec::with_capacity(first);
    while bytes.len() < most {
        if bytes.len() == bytes.capacity() {
            let size = bytes.capacity().saturating_mul(2).max(bytes.len() + 1).min(most);
            let mut grown = Vec::with_capacity(size);
            grown.extend_from_slice(&bytes);
            zeroize::Zeroize::zeroize(&mut bytes);
            bytes = grown;
        }
        let start = bytes.len();
        let end = bytes.capacity().min(most);
        bytes.resize(end, 0);
        match file.read(&mut bytes[start..]) {
            Ok(0) => {
                bytes.truncate(start);
                break;
            }
            Ok(read) => bytes.truncate(start + read),
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => bytes.truncate(start),
            Err(error) => {
                zeroize::Zeroize::zeroize(&mut bytes);
                return Err(error);
            }
        }
    }
    Ok(bytes)
}

/// Reads a whole file after checking the path, the directory and the file itself.
pub fn read_file(path: &Path, limit: u64) -> Result<CheckedFile, FileError> {
    let (dir_path, name) = split_file_path(path)?;
    let dir = open_dir(dir_path)?;
    let fd = open_file_in(&dir, name, path, OFlag::O_RDONLY)?;
    let stat = fstat(fd.as_fd()).map_err(|e| io_error(path, e))?;
    let mode = stat.st_mode & 0o7777;
    let mut file = std::fs::File::from(fd);
    let hint = u64::try_from(stat.st_size).unwrap_or(0);
    let mut bytes = read_wiping(&mut file, hint, limit).map_err(|e| io_error(path, errno_of(&e)))?;
    if bytes.len() as u64 > limit {
        zeroize::Zeroize::zeroize(&mut bytes);
        return Err(FileError::TooLarge { path: path.to_path_buf(), limit });
    }
    Ok(CheckedFile { bytes, mode })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    use crate::test_support::{private_dir, set_mode};

    fn write(path: &Path, text: &str, mode: u32) {
        std::fs::write(path, text).expect("write");
        set_mode(path, mode);
    }

    #[test]
    fn a_private_file_in_a_private_directory_is_read() {
        let dir = private_dir();
        let file = dir.path().join("conf");
        write(&file, "hello", 0o600);
        let read = read_file(&file, 100).expect("read");
        assert_eq!(read.bytes, b"hello");
        assert!(!read.readable_by_group_or_other());
    }

    /// procfs and growing files report a size smaller than what they hold.
    #[test]
    fn a_file_larger_than_its_size_hint_is_read_whole_and_bounded() {
        let dir = private_dir();
        let file = dir.path().join("big");
        let text = "0123456789".repeat(1000);
        write(&file, &text, 0o600);
        let open = || std::fs::File::open(&file).expect("open");
        assert_eq!(read_wiping(&mut open(), 0, 100_000).expect("read"), text.as_bytes());
        assert_eq!(read_wiping(&mut open(), 0, 4999).expect("read"), &text.as_bytes()[..5000]);
    }

    #[test]
    fn a_world_readable_file_is_read_and_reported_as_such() {
        let dir = private_dir();
        let file = dir.path().join("conf");
        write(&file, "x", 0o644);
        assert!(read_file(&file, 100).expect("read").readable_by_group_or_other());
    }

    #[test]
    fn a_group_writable_file_is_refused() {
        let dir = private_dir();
        let file = dir.path().join("conf");
        write(&file, "x", 0o620);
        assert!(matches!(read_file(&file, 100), Err(FileError::Writable { .. })));
    }

    #[test]
    fn a_symlinked_file_is_refused() {
        let dir = private_dir();
        let target = dir.path().join("real");
        write(&target, "x", 0o600);
        let link = dir.path().join("conf");
        symlink(&target, &link).expect("symlink");
        assert_eq!(read_file(&link, 100).err(), Some(FileError::Symlink(link)));
    }

    #[test]
    fn a_symlinked_parent_directory_is_refused() {
        let dir = private_dir();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).expect("mkdir");
        write(&real.join("conf"), "x", 0o600);
        let link = dir.path().join("linked");
        symlink(&real, &link).expect("symlink");
        assert_eq!(read_file(&link.join("conf"), 100).err(), Some(FileError::Symlink(link)));
    }

    #[test]
    fn a_world_writable_parent_directory_is_refused() {
        let dir = private_dir();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).expect("mkdir");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        write(&open.join("conf"), "x", 0o600);
        assert!(matches!(read_file(&open.join("conf"), 100), Err(FileError::Writable { .. })));
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = private_dir();
        let fifo = dir.path().join("conf");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).expect("mkfifo");
        assert_eq!(read_file(&fifo, 100).err(), Some(FileError::NotRegular(fifo)));
    }

    #[test]
    fn relative_and_dotted_paths_are_refused() {
        assert!(matches!(read_file(Path::new("etc/x"), 10), Err(FileError::NotAbsolute(_))));
        assert!(matches!(read_file(Path::new("/etc/../etc/x"), 10), Err(FileError::NotAbsolute(_))));
    }

    #[test]
    fn a_missing_file_is_reported_as_not_found() {
        let dir = private_dir();
        let error = read_file(&dir.path().join("absent"), 10).err().expect("error");
        assert!(error.is_not_found());
    }

    #[test]
    fn an_oversized_file_is_refused() {
        let dir = private_dir();
        let file = dir.path().join("conf");
        write(&file, "0123456789", 0o600);
        assert!(matches!(read_file(&file, 5), Err(FileError::TooLarge { .. })));
    }
}
