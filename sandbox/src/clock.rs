//! Wall-clock access and date formatting, in one place.
//!
//! TOTP verification, approval-request timestamps and certificate validity all need Unix time;
//! reading `SystemTime` only here keeps the rest of the crate testable with explicit times
//! (`token_at`). Formatting is done by hand (days-from-civil) to avoid a date crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch; 0 if the clock is before 1970 (never panics).
pub(crate) fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `(year, month 1-12, day 1-31, seconds of day)` for a Unix time (proleptic Gregorian, UTC).
pub(crate) fn civil_from_unix(t: u64) -> (i32, u32, u32, u32) {
    let days = (t / 86_400) as i64;
    let secs_of_day = (t % 86_400) as u32;
    // Howard Hinnant's civil_from_days, shifted so eras start on 1 March.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
    (year, month, day, secs_of_day)
}

/// `2017-02-10T01:09:52Z`, the format of Authy's approval-request timestamps.
pub(crate) fn rfc3339(t: u64) -> String {
    let (y, mo, d, s) = civil_from_unix(t);
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, (s / 60) % 60, s % 60)
}

/// English month name, for `app/stats`.
pub(crate) fn month_name(month: u32) -> &'static str {
    const NAMES: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    NAMES.get(month.saturating_sub(1) as usize).copied().unwrap_or("January")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_486_688_992), "2017-02-10T01:09:52Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(civil_from_unix(4_102_444_800).0, 2100);
        assert_eq!(month_name(11), "November");
    }
}
