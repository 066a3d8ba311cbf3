//! What a user types and what the module shows or logs: the token grammar, the text
//! sanitisers, base32 seeds as pasted, and the offline code check. Never panics; a token is
//! only ever 6 to 8 ASCII digits; sanitised text has no control or bidi characters and
//! respects its bound; a log value cannot start another field.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_authy::authy::response::approval_uuid;
use pam_authy::backend::{ApprovalId, Token};
use pam_authy::config::normalize_base32_secret;
use pam_authy::offline::{OfflineParams, matching_step};
use pam_authy::sanitize::{display_text, log_value};
use pam_authy::secret::Secret;

fn unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(token) = Token::parse(&text) {
        assert!((6..=8).contains(&token.len()));
        assert!(token.expose().bytes().all(|b| b.is_ascii_digit()));
    }
    if let Some(uuid) = approval_uuid(&text) {
        assert!(uuid.as_str().bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'));
    }
    if let Some(id) = ApprovalId::parse(&text) {
        assert!((1..=64).contains(&id.as_str().len()));
        assert!(id.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    }
    let bound = usize::from(data.first().copied().unwrap_or(0)) + 1;
    let shown = display_text(&text, bound);
    assert!(!shown.chars().any(unsafe_char), "{shown:?}");
    assert!(shown.chars().count() <= bound);
    let value = log_value(&text);
    if value.starts_with('"') {
        assert!(value.ends_with('"') && value.len() >= 2);
    } else {
        assert!(!value.chars().any(|c| c.is_whitespace() || c == '=' || c == '"'), "{value:?}");
    }
    if let Some(seed) = normalize_base32_secret(&Secret::new(text.to_string())) {
        assert!(seed.expose().bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
        assert!(seed.expose().len() >= 16);
    }
    let params = OfflineParams { digits: 6, period_secs: 30, skew_steps: 1 };
    let seed = Secret::from("JBSWY3DPEHPK3PXP");
    if matching_step(&seed, &text, 1_800_000_000, &params).is_some() {
        assert!(text.len() == 6 && text.bytes().all(|b| b.is_ascii_digit()));
    }
});
