//! What a push approval request says about the login: who, where, from where, for what.
//!
//! Every string comes from the login (PAM items, the host name, sudo's command line) and is
//! therefore untrusted: it is stripped of control characters and bounded before it goes to
//! the API and from there to the user's phone. sudo's command line is read with sudo's own
//! option grammar and shown word by word in shell quoting, so an approval never shows a
//! command other than the one sudo will run; when the grammar leaves any doubt it says so.
//! Which fields go out at all is the admin's choice (`[auth] push_details`, `push_command`).

use crate::backend::ApprovalRequest;
use crate::config::{DetailField, PushDetails};
use crate::flow::Login;
use crate::sanitize::display_text;
use std::fmt::Write as _;

/// Authy's clients cap the message at 144 to 200 characters; stay under the lowest.
const MESSAGE_CHARS: usize = 140;
const DETAIL_CHARS: usize = 100;
const COMMAND_CHARS: usize = 200;
/// How much of /proc/self/cmdline is read; a longer command line is shown as truncated.
const CMDLINE_BYTES: u64 = 64 * 1024;
const TRUNCATED: &str = " …[truncated]";
const NOT_SHOWN: &str = "(the command could not be shown)";

/// The approval request for `login`, expiring after `seconds_to_expire`, with the detail
/// fields `shown` allows.
pub fn approval_request(login: &Login, seconds_to_expire: u64, shown: &PushDetails) -> ApprovalRequest {
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
    let candidates = [
        (DetailField::User, "User", Some(login.user.as_str())),
        (DetailField::Host, "Host", Some(host)),
        (DetailField::Service, "Service", Some(login.service.as_str())),
        (DetailField::From, "From", Some(login.rhost.as_deref().unwrap_or("local"))),
        (DetailField::Tty, "TTY", login.tty.as_deref()),
        (DetailField::RequestedBy, "Requested by", login.ruser.as_deref()),
    ];
    let mut details: Vec<(String, String)> = candidates
        .into_iter()
        .filter(|(field, _, _)| shown.fields.contains(field))
        .filter_map(|(_, name, value)| Some((name.to_owned(), display_text(value?, DETAIL_CHARS))))
        .collect();
    if shown.command
        && let Some(command) = &login.command
    {
        details.push(("Command".to_owned(), display_text(command, COMMAND_CHARS)));
    }
    ApprovalRequest { message, details, seconds_to_expire }
}

/// How an option of sudo takes its argument (sudo 1.9, `parse_args.c`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Takes {
    Nothing,
    Value,
    /// Only when attached (`-hhost`, `--preserve-env=LIST`).
    AttachedValue,
}

/// sudo's short options and what each takes.
fn short_option(c: u8) -> Option<Takes> {
    match c {
        b'a' | b'C' | b'c' | b'D' | b'g' | b'p' | b'R' | b'r' | b'T' | b't' | b'U' | b'u' => Some(Takes::Value),
        b'h' => Some(Takes::AttachedValue),
        b'A' | b'B' | b'b' | b'E' | b'e' | b'H' | b'i' | b'K' | b'k' | b'l' | b'N' | b'n' | b'P' | b'S' | b's'
        | b'V' | b'v' => Some(Takes::Nothing),
        _ => None,
    }
}

/// sudo's long options: name, the short option it stands for (0: none), what it takes.
const LONG_OPTIONS: &[(&str, u8, Takes)] = &[
    ("askpass", b'A', Takes::Nothing),
    ("auth-type", b'a', Takes::Value),
    ("background", b'b', Takes::Nothing),
    ("bell", b'B', Takes::Nothing),
    ("chdir", b'D', Takes::Value),
    ("chroot", b'R', Takes::Value),
    ("close-from", b'C', Takes::Value),
    ("command-timeout", b'T', Takes::Value),
    ("edit", b'e', Takes::Nothing),
    ("group", b'g', Takes::Value),
    ("help", b'h', Takes::Nothing),
    ("host", 0, Takes::Value),
    ("list", b'l', Takes::Nothing),
    ("login", b'i', Takes::Nothing),
    ("login-class", b'c', Takes::Value),
    ("no-update", b'N', Takes::Nothing),
    ("non-interactive", b'n', Takes::Nothing),
    ("other-user", b'U', Takes::Value),
    ("preserve-env", b'E', Takes::AttachedValue),
    ("preserve-groups", b'P', Takes::Nothing),
    ("prompt", b'p', Takes::Value),
    ("remove-timestamp", b'K', Takes::Nothing),
    ("reset-timestamp", b'k', Takes::Nothing),
    ("role", b'r', Takes::Value),
    ("set-home", b'H', Takes::Nothing),
    ("shell", b's', Takes::Nothing),
    ("stdin", b'S', Takes::Nothing),
    ("type", b't', Takes::Value),
    ("user", b'u', Takes::Value),
    ("validate", b'v', Takes::Nothing),
    ("version", b'V', Takes::Nothing),
];

/// A long option as getopt_long finds it: the exact name, else a prefix of exactly one name.
fn long_option(name: &[u8]) -> Option<(u8, Takes)> {
    if let Some((_, short, takes)) = LONG_OPTIONS.iter().find(|(n, _, _)| n.as_bytes() == name) {
        return Some((*short, *takes));
    }
    let mut matches = LONG_OPTIONS.iter().filter(|(n, _, _)| !name.is_empty() && n.as_bytes().starts_with(name));
    match (matches.next(), matches.next()) {
        (Some((_, short, takes)), None) => Some((*short, *takes)),
        _ => None,
    }
}

/// What sudo will do, from its argv.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SudoAction<'a> {
    /// Run `command` (program first), with `env` assignments, through the shell when `shell`.
    Run { env: Vec<&'a [u8]>, program: &'a [u8], args: Vec<&'a [u8]>, shell: bool },
    /// `-s` or `-i` without a command.
    InteractiveShell,
    /// `-e` or `sudoedit`: edit these files.
    Edit(Vec<&'a [u8]>),
    /// `-l`, `-v`, `-k`/`-K` without a command: nothing runs.
    NothingRuns(&'static str),
    /// The grammar leaves a doubt (an unknown or ambiguous option, `-h` without its value).
    Unknown,
}

fn parse_sudo(argv: &[Vec<u8>]) -> SudoAction<'_> {
    let Some(program) = argv.first() else { return SudoAction::Unknown };
    let mut edit = program.rsplit(|b| *b == b'/').next() == Some(b"sudoedit".as_slice());
    let (mut shell, mut list, mut validate, mut reset) = (false, false, false, false);
    let mut env = Vec::new();
    let mut index = 1;
    let mut flag = |short: u8| match short {
        b'e' => edit = true,
        b's' | b'i' => shell = true,
        b'l' => list = true,
        b'v' => validate = true,
        b'k' | b'K' => reset = true,
        _ => {}
    };
    while let Some(arg) = argv.get(index) {
        index += 1;
        if arg.as_slice() == b"--" {
            break;
        }
        if let Some(long) = arg.strip_prefix(b"--") {
            let (name, attached) = match long.iter().position(|b| *b == b'=') {
                Some(at) => (&long[..at], true),
                None => (long, false),
            };
            let Some((short, takes)) = long_option(name) else { return SudoAction::Unknown };
            match (takes, attached) {
                (Takes::Nothing, true) => return SudoAction::Unknown,
                (Takes::Value, false) => {
                    if argv.get(index).is_none() {
                        return SudoAction::Unknown;
                    }
                    index += 1;
                }
                _ => {}
            }
            flag(short);
        } else if arg.len() > 1 && arg[0] == b'-' {
            let bundle = &arg[1..];
            for (at, c) in bundle.iter().enumerate() {
                match short_option(*c) {
                    None => return SudoAction::Unknown,
                    Some(Takes::Nothing) => flag(*c),
                    Some(Takes::Value) => {
                        if at + 1 == bundle.len() {
                            if argv.get(index).is_none() {
                                return SudoAction::Unknown;
                            }
                            index += 1;
                        }
                        break;
                    }
                    // `-h` alone is help, or, before a non-option, a remote host: in doubt.
                    Some(Takes::AttachedValue) if at + 1 == bundle.len() => return SudoAction::Unknown,
                    Some(Takes::AttachedValue) => break,
                }
            }
        } else if arg.first() != Some(&b'/') && arg.contains(&b'=') {
            env.push(arg.as_slice());
        } else {
            index -= 1;
            break;
        }
    }
    let rest: Vec<&[u8]> = argv[index..].iter().map(Vec::as_slice).collect();
    if edit {
        return if rest.is_empty() { SudoAction::Unknown } else { SudoAction::Edit(rest) };
    }
    if list {
        return SudoAction::NothingRuns("(sudo -l: lists privileges, runs nothing)");
    }
    if validate {
        return SudoAction::NothingRuns("(sudo -v: refreshes the credentials, runs nothing)");
    }
    match (rest.split_first(), shell, reset) {
        (Some((program, args)), _, _) => SudoAction::Run { env, program, args: args.to_vec(), shell },
        (None, true, _) => SudoAction::InteractiveShell,
        (None, false, true) => SudoAction::NothingRuns("(sudo -k: resets the credentials, runs nothing)"),
        (None, false, false) => SudoAction::Unknown,
    }
}

/// Bytes that a POSIX shell word may hold unquoted and that read the same to a person.
fn plain_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(&b)
}

/// One word in shell quoting: plain as is, printable ASCII in single quotes, anything else
/// (controls, non-ASCII, bytes that are not UTF-8) in `$'...'` with escapes, so that two
/// different words never look alike.
fn quote_word(word: &[u8], out: &mut String) {
    if !word.is_empty() && word.iter().all(|b| plain_byte(*b)) {
        out.extend(word.iter().map(|b| char::from(*b)));
    } else if word.iter().all(|b| (b' '..=b'~').contains(b)) {
        out.push('\'');
        for b in word {
            if *b == b'\'' {
                out.push_str("'\\''");
            } else {
                out.push(char::from(*b));
            }
        }
        out.push('\'');
    } else {
        out.push_str("$'");
        for chunk in word.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '\\' | '\'' => {
                        out.push('\\');
                        out.push(c);
                    }
                    ' '..='~' => out.push(c),
                    c if (c as u32) < 0x100 => {
                        let _ = write!(out, "\\x{:02x}", c as u32);
                    }
                    c if (c as u32) <= 0xffff => {
                        let _ = write!(out, "\\u{:04x}", c as u32);
                    }
                    c => {
                        let _ = write!(out, "\\U{:08x}", c as u32);
                    }
                }
            }
            for b in chunk.invalid() {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
        out.push('\'');
    }
}

/// `words` in shell quoting, joined by spaces.
fn quoted_words(words: &[&[u8]]) -> String {
    let mut text = String::new();
    for (at, word) in words.iter().enumerate() {
        if at > 0 {
            text.push(' ');
        }
        quote_word(word, &mut text);
    }
    text
}

/// Bounds `text` to `COMMAND_CHARS`, marking a cut (or an input that was already cut)
/// visibly; when even the first `keep` characters (up to the program) would not fit, the
/// command is not shown at all.
fn bounded(text: String, keep: usize, already_cut: bool) -> String {
    let chars = text.chars().count();
    if chars <= COMMAND_CHARS && !already_cut {
        return text;
    }
    let marker = TRUNCATED.chars().count();
    if keep + marker > COMMAND_CHARS {
        return NOT_SHOWN.to_owned();
    }
    let mut cut: String = text.chars().take((COMMAND_CHARS - marker).min(chars)).collect();
    cut.push_str(TRUNCATED);
    cut
}

/// What a push shows of sudo's command, from sudo's argv (`/proc/self/cmdline` inside sudo);
/// `complete` is false when the command line was longer than what was read.
pub fn sudo_command<A: AsRef<[u8]>>(argv: &[A], complete: bool) -> String {
    let argv: Vec<Vec<u8>> = argv.iter().map(|a| a.as_ref().to_vec()).collect();
    match parse_sudo(&argv) {
        SudoAction::Run { env, program, args, shell } => {
            let mut text = if shell { "(through the shell) ".to_owned() } else { String::new() };
            quote_word(program, &mut text);
            let keep = text.chars().count();
            if !args.is_empty() {
                text.push(' ');
                text.push_str(&quoted_words(&args));
            }
            if !env.is_empty() {
                text.push_str(" (environment: ");
                text.push_str(&quoted_words(&env));
                text.push(')');
            }
            bounded(text, keep, !complete)
        }
        SudoAction::Edit(files) => {
            let text = format!("(edit files) {}", quoted_words(&files));
            bounded(text, "(edit files) ".len(), !complete)
        }
        SudoAction::InteractiveShell if complete => "(an interactive shell)".to_owned(),
        SudoAction::NothingRuns(what) if complete => what.to_owned(),
        SudoAction::InteractiveShell | SudoAction::NothingRuns(_) | SudoAction::Unknown => NOT_SHOWN.to_owned(),
    }
}

/// Reads this process's argv (inside sudo, sudo's command line) and whether it was read whole.
pub fn own_command_line() -> Option<(Vec<Vec<u8>>, bool)> {
    use std::io::Read;
    let file = std::fs::File::open("/proc/self/cmdline").ok()?;
    let mut raw = Vec::new();
    file.take(CMDLINE_BYTES + 1).read_to_end(&mut raw).ok()?;
    let complete = raw.len() as u64 <= CMDLINE_BYTES;
    raw.truncate(CMDLINE_BYTES as usize);
    if raw.last() == Some(&0) {
        raw.pop();
    }
    let args: Vec<Vec<u8>> = raw.split(|b| *b == 0).map(<[u8]>::to_vec).collect();
    (!raw.is_empty()).then_some((args, complete))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(text: &str) -> Vec<String> {
        text.split(' ').map(str::to_owned).collect()
    }

    fn shown(words: &[&str]) -> String {
        sudo_command(words, true)
    }

    fn everything() -> PushDetails {
        PushDetails { command: true, ..PushDetails::default() }
    }

    #[test]
    fn the_sudo_command_follows_the_options() {
        assert_eq!(sudo_command(&argv("sudo -S -k sh -c id"), true), "sh -c id");
        assert_eq!(sudo_command(&argv("sudo -u postgres psql"), true), "psql");
        assert_eq!(sudo_command(&argv("sudo -- rm -rf /tmp/x"), true), "rm -rf /tmp/x");
        assert_eq!(sudo_command(&argv("sudo -i"), true), "(an interactive shell)");
        assert!(sudo_command(&argv("sudo -v"), true).contains("runs nothing"));
    }

    #[test]
    fn long_options_and_bundles_are_read_as_sudo_reads_them() {
        let cases: &[(&[&str], &str)] = &[
            (&["sudo", "--prompt", "systemctl status nginx      ", "bash", "-c", "rm -rf /"], "bash -c 'rm -rf /'"),
            (&["sudo", "--prompt=x", "id"], "id"),
            (&["sudo", "--pro", "systemctl status nginx", "id"], "id"),
            (&["sudo", "-Eu", "root", "id"], "id"),
            (&["sudo", "-Ep", "TEXT", "id"], "id"),
            (&["sudo", "-uroot", "id"], "id"),
            (&["sudo", "--user=root", "id"], "id"),
            (&["sudo", "--user", "root", "--chdir", "/tmp", "id"], "id"),
            (&["sudo", "--preserve-env", "id"], "id"),
            (&["sudo", "--preserve-env=PATH,HOME", "id"], "id"),
            (&["sudo", "-hhost", "id"], "id"),
            (&["sudo", "--host", "h", "id"], "id"),
            (
                &[
                    "sudo", "-T", "60", "-C", "3", "-D", "/", "-R", "/", "-g", "wheel", "-U", "x", "-a", "t", "-c",
                    "c", "id",
                ],
                "id",
            ),
            (&["sudo", "-b", "-n", "-H", "-P", "-S", "-A", "-B", "-N", "id"], "id"),
            (&["sudo", "-s", "id", ";", "reboot"], "(through the shell) id ';' reboot"),
            (&["sudo", "--login", "id"], "(through the shell) id"),
            (&["sudo", "LD_PRELOAD=/tmp/x.so", "-u", "root", "id"], "id (environment: LD_PRELOAD=/tmp/x.so)"),
            (&["sudo", "--", "A=b", "id"], "A=b id"),
            (&["sudo", "/bin/A=b"], "/bin/A=b"),
            (&["sudo", "-e", "/etc/passwd"], "(edit files) /etc/passwd"),
            (&["/usr/bin/sudoedit", "/etc/shadow"], "(edit files) /etc/shadow"),
            (&["sudo", "-l", "id"], "(sudo -l: lists privileges, runs nothing)"),
            (&["sudo", "-k"], "(sudo -k: resets the credentials, runs nothing)"),
        ];
        for (words, expected) in cases {
            assert_eq!(shown(words), *expected, "{words:?}");
        }
    }

    #[test]
    fn when_the_grammar_leaves_a_doubt_the_command_is_not_shown() {
        for words in [
            &["sudo", "-h", "host", "id"][..],
            &["sudo", "--bogus", "id"],
            &["sudo", "-X", "id"],
            &["sudo", "--pre", "id"],
            &["sudo", "--shell=x", "id"],
            &["sudo", "-u"],
            &["sudo", "--user"],
            &["sudo"],
            &[],
        ] {
            assert_eq!(shown(words), NOT_SHOWN, "{words:?}");
        }
        assert_eq!(sudo_command(&["sudo", "-i"], false), NOT_SHOWN);
    }

    #[test]
    fn words_are_quoted_so_that_different_commands_never_look_alike() {
        assert_eq!(shown(&["sudo", "echo", "a b"]), "echo 'a b'");
        assert_eq!(shown(&["sudo", "echo", "a", "b"]), "echo a b");
        assert_eq!(shown(&["sudo", "echo", "it's"]), "echo 'it'\\''s'");
        assert_eq!(shown(&["sudo", "echo", ""]), "echo ''");
        assert_eq!(shown(&["sudo", "rm\u{1b}[2K", "x"]), "$'rm\\x1b[2K' x");
        assert_eq!(shown(&["sudo", "ls\u{2003}-la"]), "$'ls\\u2003-la'");
        assert_eq!(shown(&["sudo", "ls\u{200b}"]), "$'ls\\u200b'");
        assert_eq!(sudo_command(&[b"sudo".as_slice(), b"cat\xff".as_slice()], true), "$'cat\\xff'");
    }

    #[test]
    fn a_cut_is_marked_and_the_program_always_shows() {
        let long = "x".repeat(500);
        let text = shown(&["sudo", "/usr/bin/true", &long, "rm"]);
        assert!(text.starts_with("/usr/bin/true x") && text.ends_with(TRUNCATED), "{text}");
        assert!(text.chars().count() <= COMMAND_CHARS);
        assert_eq!(shown(&["sudo", &long]), NOT_SHOWN);
        assert_eq!(sudo_command(&["sudo", "id"], false), format!("id{TRUNCATED}"));
        let request = approval_request(&Login { command: Some(text.clone()), ..Login::default() }, 60, &everything());
        assert!(request.details.contains(&("Command".into(), text)));
    }

    #[test]
    fn the_command_goes_out_only_when_the_admin_opted_in_and_hidden_fields_stay_home() {
        let login = Login {
            user: "alice".into(),
            service: "sudo".into(),
            tty: Some("/dev/pts/1".into()),
            ruser: Some("bob".into()),
            command: Some("mysql -p hunter2".into()),
            ..Login::default()
        };
        let names = |shown: &PushDetails| -> Vec<String> {
            approval_request(&login, 60, shown).details.into_iter().map(|(k, _)| k).collect()
        };
        assert_eq!(names(&PushDetails::default()), ["User", "Host", "Service", "From", "TTY", "Requested by"]);
        assert!(names(&everything()).contains(&"Command".to_owned()));
        let few = PushDetails { fields: vec![DetailField::Host], command: false };
        assert_eq!(names(&few), ["Host"]);
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
        let request = approval_request(&login, 60, &PushDetails::default());
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
        let request = approval_request(&login, 60, &everything());
        for (_, value) in &request.details {
            assert!(!value.chars().any(char::is_control), "{value:?}");
            assert!(value.chars().count() <= COMMAND_CHARS);
        }
    }
}
