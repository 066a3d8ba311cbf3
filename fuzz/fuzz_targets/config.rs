//! The configuration parser on arbitrary text: never panics, and whatever it accepts keeps
//! the invariants the module relies on (https URL, valid user names, positive Authy IDs,
//! canonical base32 seeds, bounded numbers; each user mapped for the configured backend, and
//! under Authy possibly for Verify too, as `pam-authy migrate` leaves a user).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_authy::config::{Backend, Config, valid_account_name};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(config) = Config::parse(Path::new("/etc/pam_authy/pam_authy.toml"), text) else { return };
    assert!(config.api.url.starts_with("https://"), "{}", config.api.url);
    match config.api.backend {
        Backend::Authy => assert!(!config.api.api_key.is_empty()),
        Backend::Verify => assert!(config.verify.is_some()),
    }
    assert!((1..=120).contains(&config.api.timeout.as_secs()));
    assert!((1..=10).contains(&config.auth.max_tries));
    assert!((6..=8).contains(&config.offline.digits));
    assert!(config.offline.state_dir.is_absolute());
    for (name, entry) in &config.users {
        assert!(valid_account_name(name), "{name:?}");
        match (config.api.backend, entry.authy_id, &entry.verify) {
            (Backend::Authy, Some(id), None) => assert!(id.get() > 0),
            (Backend::Authy, Some(_), Some(user)) | (Backend::Verify, None, Some(user)) => {
                assert!(user.totp_factor.is_some() || user.phone.is_some() || user.push_factor.is_some())
            }
            (backend, id, verify) => panic!("{backend:?} user with authy_id {id:?} and verify {}", verify.is_some()),
        }
        if let Some(seed) = &entry.offline_secret {
            assert!(seed.expose().bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
        }
    }
    for group in &config.auth.groups {
        assert!(valid_account_name(group), "{group:?}");
    }
});
