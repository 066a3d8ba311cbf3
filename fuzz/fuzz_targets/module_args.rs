//! The module arguments of a pam.d line: never panics; accepted arguments give an absolute
//! config path and `debug` only when it was asked for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_authy::config::ModuleArgs;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let args: Vec<&str> = text.split(['\0', ' ', '\t', '\n']).filter(|a| !a.is_empty()).collect();
    if let Ok(parsed) = ModuleArgs::parse(&args) {
        assert!(parsed.config_path.is_absolute());
        assert_eq!(parsed.debug, args.contains(&"debug"));
        assert!(args.iter().all(|a| *a == "debug" || a.starts_with("config=") || a.starts_with("method=")));
    }
});
