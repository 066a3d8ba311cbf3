//! `ConfigError`, the one error every configuration problem becomes (always PAM_SERVICE_ERR),
//! and the range check whose message names the key and the bounds, never the value.

use crate::secure_fs::FileError;
use std::fmt;
use std::path::{Path, PathBuf};

/// A problem with the configuration: always fatal, always PAM_SERVICE_ERR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: PathBuf,
    pub problem: String,
}

impl ConfigError {
    pub(super) fn new(path: &Path, problem: impl Into<String>) -> Self {
        ConfigError { path: path.to_path_buf(), problem: problem.into() }
    }

    pub(super) fn file(error: FileError) -> Self {
        ConfigError { path: error.path().to_path_buf(), problem: error.to_string() }
    }

    /// A file named by a config value (`api_key_file`, `ca_file`): the message names the key,
    /// never the path, since a secret pasted into the wrong key must not reach a log.
    pub(super) fn named_file(path: &Path, key: &str, named: &Path, error: &FileError) -> Self {
        let where_ = if error.path() == named { "" } else { " (a directory on its path)" };
        ConfigError::new(path, format!("{key}{where_}: {}", error.problem()))
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.problem.clone();
        let path = self.path.display().to_string();
        // FileError messages already start with the path.
        if text.starts_with(&path) { f.write_str(&text) } else { write!(f, "{path}: {text}") }
    }
}

impl std::error::Error for ConfigError {}

pub(super) fn in_range<T: PartialOrd + fmt::Display + Copy>(
    path: &Path,
    key: &str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::new(path, format!("{key} is out of range ({}..={})", range.start(), range.end())))
    }
}
