//! The module arguments of a pam.d line: never panics; accepted arguments give an absolute
//! config path, `debug` only when it was asked for, and a one-prompt code length of 6 to 8
//! never combined with `method=`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_authy::config::ModuleArgs;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let args: Vec<&str> = text.split(['\0', ' ', '\t', '\n']).filter(|a| !a.is_empty()).collect();
    if let Ok(parsed) = ModuleArgs::parse(&args) {
        assert!(parsed.config_path.is_absolute());
        assert_eq!(parsed.debug, args.contains(&"debug"));
        assert!(args.iter().all(|a| *a == "debug"
            || a.starts_with("config=")
            || a.starts_with("method=")
            || a.starts_with("password_and_code=")));
        if let Some(digits) = parsed.password_and_code {
            assert!((6..=8).contains(&digits) && parsed.method.is_none());
        }
    }
});
