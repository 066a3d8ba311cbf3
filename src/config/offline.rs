//! The `[offline]` table: the TOTP parameters of offline codes, the state directory and the
//! failure limit that guards them.

use super::DEFAULT_STATE_DIR;
use super::error::{ConfigError, in_range};
use super::schema::RawOffline;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct OfflineConfig {
    pub digits: u32,
    pub period_secs: u64,
    pub skew_steps: u8,
    pub state_dir: PathBuf,
    pub max_failures: u32,
    pub failure_window_secs: u64,
}

pub(super) fn parse_offline(path: &Path, raw: RawOffline) -> Result<OfflineConfig, ConfigError> {
    let state_dir = raw.state_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
    if !state_dir.is_absolute() {
        return Err(ConfigError::new(path, "[offline] state_dir must be an absolute path"));
    }
    Ok(OfflineConfig {
        digits: in_range(path, "[offline] digits", raw.digits.unwrap_or(6), 6..=8)?,
        period_secs: in_range(path, "[offline] period_secs", raw.period_secs.unwrap_or(30), 10..=300)?,
        skew_steps: in_range(path, "[offline] skew_steps", raw.skew_steps.unwrap_or(1), 0..=10)?,
        state_dir,
        max_failures: in_range(path, "[offline] max_failures", raw.max_failures.unwrap_or(5), 1..=100)?,
        failure_window_secs: in_range(
            path,
            "[offline] failure_window_secs",
            raw.failure_window_secs.unwrap_or(300),
            10..=86_400,
        )?,
    })
}
