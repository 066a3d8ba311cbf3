//! What a push approval request says about the login: who, where, from where, for what.
//!
//! Every string comes from the login (PAM items, the host name, sudo's command line) and is
//! therefore untrusted: it is stripped of control characters and bounded before it goes to
//! the API and from there to the user's phone.

use crate::backend::ApprovalRequest;
use crate::flow::Login;
use crate::sanitize::display_text;

/// Authy's clients cap the message at 144 to 200 characters; stay under the lowest.
const MESSAGE_CHARS: usize = 140;
const DETAIL_CHARS: usize = 100;
const COMMAND_CHARS: usize = 200;

/// The approval request for `login`, expiring after `seconds_to_expire`.
pub fn approval_request(login: &Login, seconds_to_expire: u64) -> ApprovalRequest {
    let host = if login.hostname.is_empty() { "this host" } else { &login.hostname };
    let action = match login.service.as_str() {
        "sudo" | "sudo-i" => "sudo",
        "su" | "su-l" => "su",
        "sshd" => "SSH login",
        "login" => "console login",
        "" => "login",
        other => other,
    };
    let message = display_text(&format!("{action} to {host} as {}", login.user), MESSAGE_CHARS);
    let mut details = vec![
        ("User".to_owned(), display_text(&login.user, DETAIL_CHARS)),
        ("Host".to_owned(), display_text(host, DETAIL_CHARS)),
        ("Service".to_owned(), display_text(&login.service, DETAIL_CHARS)),
        ("From".to_owned(), display_text(login.rhost.as_deref().unwrap_or("local"), DETAIL_CHARS)),
    ];
    if let Some(tty) = &login.tty {
        details.push(("TTY".to_owned(), display_text(tty, DETAIL_CHARS)));
    }
    if let Some(ruser) = &login.ruser {
        details.push(("Requested by".to_owned(), display_text(ruser, DETAIL_CHARS)));
    }
    if let Some(command) = &login.command {
        details.push(("Command".to_owned(), display_text(command, COMMAND_CHARS)));
    }
    ApprovalRequest { message, details, seconds_to_expire }
}

/// sudo options that take a separate argument (`-u root`), from sudo(8).
const SUDO_OPTIONS_WITH_VALUE: &[&str] = &["-C", "-D", "-g", "-h", "-p", "-R", "-r", "-t", "-T", "-U", "-u"];

/// `-s`, `-i` (also inside bundles like `-ks`), `--shell`, `--login`.
fn is_shell_option(arg: &str) -> bool {
    match arg.strip_prefix("--") {
        Some(long) => long == "shell" || long == "login",
        None => arg.contains('s') || arg.contains('i'),
    }
}

/// The command sudo is about to run, from its own argv (`/proc/self/cmdline` inside sudo):
/// what follows the options. `sudo -s`/`-i` without a command is a shell.
pub fn sudo_command(argv: &[String]) -> Option<String> {
    let mut args = argv.iter().skip(1);
    let mut shell = false;
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            let rest: Vec<&str> = std::iter::once(arg.as_str()).chain(args.map(String::as_str)).collect();
            return Some(display_text(&rest.join(" "), COMMAND_CHARS));
        }
        if SUDO_OPTIONS_WITH_VALUE.contains(&arg.as_str()) {
            args.next();
        } else if is_shell_option(arg) {
            shell = true;
        }
    }
    let rest: Vec<&str> = args.map(String::as_str).collect();
    if !rest.is_empty() {
        Some(display_text(&rest.join(" "), COMMAND_CHARS))
    } else if shell {
        Some("(a root shell)".to_owned())
    } else {
        None
    }
}

/// Reads this process's argv; inside sudo that is sudo's command line.
pub fn own_command_line() -> Option<Vec<String>> {
    let raw = std::fs::read("/proc/self/cmdline").ok()?;
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .take(64)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    (!args.is_empty()).then_some(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(text: &str) -> Vec<String> {
        text.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn the_sudo_command_follows_the_options() {
        assert_eq!(sudo_command(&argv("sudo -S -k sh -c id")), Some("sh -c id".into()));
        assert_eq!(sudo_command(&argv("sudo -u postgres psql")), Some("psql".into()));
        assert_eq!(sudo_command(&argv("sudo -- rm -rf /tmp/x")), Some("rm -rf /tmp/x".into()));
        assert_eq!(sudo_command(&argv("sudo -i")), Some("(a root shell)".into()));
        assert_eq!(sudo_command(&argv("sudo -v")), None);
    }

    #[test]
    fn the_request_names_user_host_service_and_origin() {
        let login = Login {
            user: "alice".into(),
            service: "sshd".into(),
            rhost: Some("198.51.100.4".into()),
            tty: Some("ssh".into()),
            hostname: "web1".into(),
            ..Login::default()
        };
        let request = approval_request(&login, 60);
        assert_eq!(request.message, "SSH login to web1 as alice");
        assert!(request.details.contains(&("From".into(), "198.51.100.4".into())));
        assert!(request.details.contains(&("Service".into(), "sshd".into())));
        assert_eq!(request.seconds_to_expire, 60);
    }

    #[test]
    fn hostile_strings_are_stripped_and_bounded() {
        let login = Login {
            user: "alice".into(),
            service: "sudo".into(),
            rhost: Some("\u{1b}]0;evil\u{7}host".into()),
            command: Some(format!("echo {}", "x".repeat(500))),
            hostname: "h".into(),
            ..Login::default()
        };
        let request = approval_request(&login, 60);
        for (_, value) in &request.details {
            assert!(!value.chars().any(char::is_control), "{value:?}");
            assert!(value.chars().count() <= COMMAND_CHARS);
        }
    }
}
