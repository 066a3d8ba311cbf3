//! A PAM application that does one login and exits, for the benchmark's per-process rows: each
//! login pays what it pays under sshd, a fresh process that loads the stack's modules. It is
//! kept small (it links this crate and libc only) so that its own start-up does not hide the
//! modules' cost.
//!
//! `pam-login CONFDIR SERVICE USER [ANSWER...]`: runs `pam_authenticate` for USER with the
//! stack SERVICE from CONFDIR, answers the prompts with the ANSWERs in order (then empty
//! ones), and exits with the PAM code (255 when the transaction could not start, 2 on usage).

use pam_harness::{Items, Reply};
use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [confdir, service, user, answers @ ..] = args.as_slice() else {
        eprintln!("usage: pam-login CONFDIR SERVICE USER [ANSWER...]");
        std::process::exit(2);
    };
    let mut answers = answers.iter();
    let mut responder = |message: &pam_harness::Message| {
        if message.style.is_prompt() {
            Reply::Text(answers.next().cloned().unwrap_or_default())
        } else {
            Reply::text("")
        }
    };
    let items = Items { rhost: Some("192.0.2.1".into()), tty: Some("ssh".into()), ruser: None };
    let code = pam_harness::authenticate(Some(Path::new(confdir)), service, user, &items, &mut responder)
        .map_or(255, |result| result.code);
    std::process::exit(code);
}
