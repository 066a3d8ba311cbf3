//! The private directory every integration test works in, for the module's tests and the
//! CLI's (`cli/tests/common` compiles this same file): 0700, with `pam.d/` for
//! `pam_start_confdir`, the config file and the state directory at fixed names.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A private directory (0700) with `pam.d/`, the config and the files a test writes; each
/// test suite adds its own helpers in an `impl TestDir` of its own.
pub struct TestDir {
    pub dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new() -> TestDir {
        let dir = tempfile::tempdir().expect("tempdir");
        set_mode(dir.path(), 0o700);
        std::fs::create_dir(dir.path().join("pam.d")).expect("mkdir pam.d");
        TestDir { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn confdir(&self) -> PathBuf {
        self.path().join("pam.d")
    }

    pub fn config_path(&self) -> PathBuf {
        self.path().join("pam_authy.toml")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.path().join("state")
    }

    /// Writes a file with the given mode.
    pub fn write(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, text).expect("write");
        set_mode(&path, mode);
        path
    }

    pub fn write_config(&self, text: &str) -> PathBuf {
        self.write("pam_authy.toml", text, 0o600)
    }
}
