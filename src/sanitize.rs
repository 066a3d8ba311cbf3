//! Making untrusted text safe to show on a terminal, to log, or to send to the API.
//!
//! Text from the server (messages, masked phone numbers) and from the login (remote host,
//! tty, command lines) may carry escape sequences, newlines or bidi overrides. Every such
//! string passes through here before it reaches the conversation, syslog or a request.

/// Characters that can steer a terminal or fake a log line: C0 and C1 controls, DEL, and
/// Unicode bidirectional overrides and isolates.
fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

/// Drops unsafe characters and cuts the result to at most `max_chars` characters.
pub fn display_text(text: &str, max_chars: usize) -> String {
    let mut clean: String = text.chars().filter(|c| !is_unsafe(*c)).take(max_chars + 1).collect();
    if clean.chars().count() > max_chars {
        clean = clean.chars().take(max_chars.saturating_sub(1)).collect();
        clean.push('…');
    }
    clean
}

/// A value for a `key=value` syslog line: sanitised, bounded, quoted when it holds spaces,
/// quotes or `=`, so that no value can forge another field.
pub fn log_value(text: &str) -> String {
    let clean = display_text(text, 128);
    if clean.is_empty() {
        return "\"\"".to_owned();
    }
    if clean.chars().any(|c| c.is_whitespace() || c == '"' || c == '=' || c == '\\') {
        let escaped = clean.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{escaped}\"")
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_newlines_are_removed() {
        assert_eq!(display_text("\u{1b}[31mred\u{1b}[0m\r\nnext\u{7}", 100), "[31mred[0mnext");
        assert_eq!(display_text("a\u{202E}b\u{9b}c", 100), "abc");
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis() {
        assert_eq!(display_text("abcdef", 4), "abc…");
        assert_eq!(display_text("abcd", 4), "abcd");
    }

    #[test]
    fn log_values_cannot_forge_fields() {
        assert_eq!(log_value("alice"), "alice");
        assert_eq!(log_value("x outcome=success"), "\"x outcome=success\"");
        assert_eq!(log_value("a\"b"), "\"a\\\"b\"");
        assert_eq!(log_value("evil\nuser=root"), "\"eviluser=root\"");
        assert_eq!(log_value(""), "\"\"");
    }
}
