//! Build-time facts for the integration tests: whether the tests are built by root. Root-only
//! tests carry `#[cfg_attr(not(pam_authy_tests_as_root), ignore = "...")]`, so a run that
//! cannot perform them reports them as ignored with the reason, never as passed. The module
//! itself does not read this cfg.

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn main() {
    println!("cargo::rustc-check-cfg=cfg(pam_authy_tests_as_root)");
    println!("cargo::rerun-if-changed=build.rs");
    // A switch of user (sudo, su, another login) changes at least one of these.
    for variable in ["USER", "LOGNAME", "HOME", "SUDO_UID"] {
        println!("cargo::rerun-if-env-changed={variable}");
    }
    if effective_uid() == Some(0) {
        println!("cargo::rustc-cfg=pam_authy_tests_as_root");
    }
}
