//! The `authy-sandbox` binary: a thin wrapper over [`authy_sandbox::run_cli`] so that the
//! admin CLI (`pam-authy sandbox`) and this binary behave identically.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(authy_sandbox::run_cli(args));
}
