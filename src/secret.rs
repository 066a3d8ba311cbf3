//! Secrets held in memory: tokens typed by users, API keys, offline TOTP seeds.
//!
//! A `Secret` zeroes its bytes when dropped and never prints them: `Debug` and `Display`
//! are redacted, so a secret that ends up in a log line or an error shows as `[redacted]`.
//! Nothing in this file may expose the bytes except `expose`, which callers use only to
//! put the value on the wire or into a comparison.

use std::fmt;
use zeroize::Zeroize;

/// A secret string, zeroed on drop, redacted in `Debug`/`Display`.
/// `==` is constant-time in the contents (`subtle`); only the length may show in the timing.
#[derive(Clone, Default)]
pub struct Secret(String);

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for Secret {}

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// The secret value; use it only to send or compare it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = Secret::from("1234567");
        assert_eq!(format!("{secret:?}"), "Secret([redacted])");
        assert_eq!(format!("{secret}"), "[redacted]");
        assert_eq!(secret.expose(), "1234567");
    }

    #[test]
    fn equality_is_by_content() {
        assert_eq!(Secret::from("123456"), Secret::from("123456"));
        assert_ne!(Secret::from("123456"), Secret::from("123457"));
        assert_ne!(Secret::from("123456"), Secret::from("1234567"));
    }
}
