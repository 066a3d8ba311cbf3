//! Making untrusted text safe to show on a terminal, to log, or to send to the API.
//!
//! Text from the server (messages, masked phone numbers, the names a certificate presents)
//! and from the login (remote host, tty, command lines) may carry escape sequences,
//! newlines, bidi overrides or invisible characters. Every such string passes through here
//! before it reaches the conversation, syslog, a request or the admin's terminal.

/// Characters that can steer a terminal, fake a log line or hide what a text says: C0 and
/// C1 controls and DEL; the line and paragraph separators (U+2028, U+2029); the
/// bidirectional marks, embeddings, overrides and isolates; and the invisible format
/// characters (Unicode category Cf: soft hyphen, zero-width spaces and joiners, word joiner
/// and invisible operators, BOM, interlinear annotations, tags...) and the Hangul fillers,
/// which show as nothing.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{0600}'..='\u{0605}'
                | '\u{061C}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08E2}'
                | '\u{115F}'..='\u{1160}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E007F}'
        )
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
    fn bidi_invisible_and_separator_characters_are_removed() {
        let hidden = [
            '\u{00AD}',
            '\u{061C}',
            '\u{180E}',
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{200E}',
            '\u{200F}',
            '\u{2028}',
            '\u{2029}',
            '\u{202A}',
            '\u{202E}',
            '\u{2060}',
            '\u{2064}',
            '\u{2066}',
            '\u{2069}',
            '\u{206F}',
            '\u{FEFF}',
            '\u{FFF9}',
            '\u{FFFB}',
            '\u{115F}',
            '\u{3164}',
            '\u{FFA0}',
            '\u{E0001}',
            '\u{E0041}',
            '\u{E007F}',
            '\u{1D173}',
        ];
        for c in hidden {
            assert_eq!(display_text(&format!("a{c}b"), 100), "ab", "U+{:04X}", u32::from(c));
        }
        assert_eq!(display_text("caf\u{e9} \u{5d0}\u{5d1} \u{4e2d}", 100), "caf\u{e9} \u{5d0}\u{5d1} \u{4e2d}");
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
