//! Helpers for the unit tests of this crate: private directories and files with a mode.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A temporary directory only its owner can enter (0700), as the module's checks require.
pub fn private_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    set_mode(dir.path(), 0o700);
    dir
}

pub fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Writes `text` to `dir/name` with `mode` and returns the path.
pub fn write_file(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    set_mode(&path, mode);
    path
}
