//! The configuration parser on arbitrary text: never panics, and whatever it accepts keeps
//! the invariants the module relies on (https URL, valid user names, positive Authy IDs,
//! canonical base32 seeds, bounded numbers).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_authy::config::{Config, valid_account_name};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(config) = Config::parse(Path::new("/etc/pam_authy/pam_authy.toml"), text) else { return };
    assert!(config.api.url.starts_with("https://"), "{}", config.api.url);
    assert!(!config.api.api_key.is_empty());
    assert!((1..=120).contains(&config.api.timeout.as_secs()));
    assert!((1..=10).contains(&config.auth.max_tries));
    assert!((6..=8).contains(&config.offline.digits));
    assert!(config.offline.state_dir.is_absolute());
    for (name, entry) in &config.users {
        assert!(valid_account_name(name), "{name:?}");
        assert!(entry.authy_id.get() > 0);
        if let Some(seed) = &entry.offline_secret {
            assert!(seed.expose().bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
        }
    }
    for group in &config.auth.groups {
        assert!(valid_account_name(group), "{group:?}");
    }
});
