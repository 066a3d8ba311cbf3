//! The form-encoded bodies of the Verify requests the module sends.
//!
//! Verify takes `application/x-www-form-urlencoded` with case-exact PascalCase names, dotted
//! names for nested parameters (`Details.Message`), the same name repeated for a list
//! (`Details.Fields`) and JSON text as the value of an object parameter (each field). Values
//! are percent-encoded here, so user-controlled text (a remote host, a command line) can never
//! add a parameter. Bodies that carry a code are `Secret`s.
//!
//! A push sends no `HiddenDetails`: the app that approves needs nothing the user does not
//! see (the message and fields are the whole login context), and a copy of the login
//! context stored unseen at Twilio is only more personal data kept elsewhere.

use super::{FactorSid, Phone, VerificationSid};
use crate::backend::{Channel, Token};
use crate::sanitize;
use crate::secret::Secret;
use zeroize::Zeroizing;

/// Verify's documented bounds for push details.
pub const MAX_MESSAGE_CHARS: usize = 256;
pub const MAX_FIELDS: usize = 20;
pub const MAX_LABEL_CHARS: usize = 36;
pub const MAX_VALUE_CHARS: usize = 128;

/// Appends `text` percent-encoded as a form value (space as `+`, unreserved bytes as-is).
fn encode_into(out: &mut String, text: &str) {
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(byte as char),
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[usize::from(byte >> 4)] as char);
                out.push(HEX[usize::from(byte & 0xf)] as char);
            }
        }
    }
}

/// An ordered list of parameters; a name may repeat.
#[derive(Default)]
pub struct Form {
    body: Zeroizing<String>,
}

impl Form {
    pub fn new() -> Form {
        Form::default()
    }

    pub fn add(mut self, name: &'static str, value: &str) -> Form {
        if !self.body.is_empty() {
            self.body.push('&');
        }
        encode_into(&mut self.body, name);
        self.body.push('=');
        encode_into(&mut self.body, value);
        self
    }

    /// The encoded body.
    pub fn finish(self) -> Secret {
        Secret::new(self.body.as_str().to_owned())
    }
}

/// `POST …/Challenges` for a TOTP factor: the code verifies at creation.
pub fn totp_challenge(factor: &FactorSid, code: &Token) -> Secret {
    Form::new().add("FactorSid", factor.as_str()).add("AuthPayload", code.expose()).finish()
}

/// What a push challenge shows: the message and the fields of the login context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushDetails {
    pub message: String,
    pub fields: Vec<(String, String)>,
    /// `ExpirationDate`, seconds since the epoch.
    pub expires_at: u64,
}

/// `POST …/Challenges` for a push factor. Every string is sanitised and cut to Verify's
/// bounds here, whatever the caller did, so the API never refuses a login for its length.
pub fn push_challenge(factor: &FactorSid, details: &PushDetails) -> Secret {
    let mut form = Form::new()
        .add("FactorSid", factor.as_str())
        .add("ExpirationDate", &super::iso8601(details.expires_at))
        .add("Details.Message", &sanitize::display_text(&details.message, MAX_MESSAGE_CHARS));
    for (label, value) in details.fields.iter().take(MAX_FIELDS) {
        let field = serde_json::json!({
            "label": sanitize::display_text(label, MAX_LABEL_CHARS),
            "value": sanitize::display_text(value, MAX_VALUE_CHARS),
        });
        form = form.add("Details.Fields", &field.to_string());
    }
    form.finish()
}

/// `POST …/Verifications`: send a code to `to` by `channel`.
pub fn verification(to: &Phone, channel: Channel) -> Secret {
    Form::new().add("To", to.as_str()).add("Channel", channel.as_str()).finish()
}

/// `POST …/VerificationCheck` against the very verification this login started.
pub fn verification_check(sid: &VerificationSid, code: &Token) -> Secret {
    Form::new().add("VerificationSid", sid.as_str()).add("Code", code.expose()).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef";

    fn factor() -> FactorSid {
        FactorSid::parse(&format!("YF{HEX}")).expect("sid")
    }

    /// Decodes a form body into pairs, independently of the encoder.
    fn decode(body: &str) -> Vec<(String, String)> {
        fn unescape(text: &str) -> String {
            let bytes = text.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < bytes.len() {
                match bytes[i] {
                    b'+' => out.push(b' '),
                    b'%' => {
                        out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).expect("hex"));
                        i += 2;
                    }
                    b => out.push(b),
                }
                i += 1;
            }
            String::from_utf8(out).expect("utf-8")
        }
        body.split('&')
            .map(|pair| {
                let (k, v) = pair.split_once('=').expect("pair");
                (unescape(k), unescape(v))
            })
            .collect()
    }

    #[test]
    fn a_totp_challenge_names_the_factor_and_the_code() {
        let code = Token::parse("123456").expect("code");
        let body = totp_challenge(&factor(), &code);
        assert_eq!(body.expose(), format!("FactorSid=YF{HEX}&AuthPayload=123456"));
        assert_eq!(format!("{body:?}"), "Secret([redacted])");
    }

    #[test]
    fn user_text_cannot_add_a_parameter() {
        let details = PushDetails {
            message: "Login to host&FactorSid=YFevil".into(),
            fields: vec![("Remote host".into(), "x&AuthPayload=1=2\n\u{1b}[2J+%".into())],
            expires_at: 1_438_286_400,
        };
        let pairs = decode(push_challenge(&factor(), &details).expose());
        let names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["FactorSid", "ExpirationDate", "Details.Message", "Details.Fields"], "no HiddenDetails");
        assert_eq!(pairs[0].1, format!("YF{HEX}"));
        assert_eq!(pairs[1].1, "2015-07-30T20:00:00Z");
        assert_eq!(pairs[2].1, "Login to host&FactorSid=YFevil");
        let field: serde_json::Value = serde_json::from_str(&pairs[3].1).expect("json");
        assert_eq!(field, serde_json::json!({"label": "Remote host", "value": "x&AuthPayload=1=2[2J+%"}));
    }

    #[test]
    fn push_details_are_cut_to_the_documented_bounds() {
        let details = PushDetails {
            message: "m".repeat(1000),
            fields: (0..30).map(|i| (format!("{i}{}", "l".repeat(100)), "v".repeat(500))).collect(),
            expires_at: 0,
        };
        let pairs = decode(push_challenge(&factor(), &details).expose());
        let fields: Vec<&String> = pairs.iter().filter(|(k, _)| k == "Details.Fields").map(|(_, v)| v).collect();
        assert_eq!(fields.len(), MAX_FIELDS);
        for field in fields {
            let value: serde_json::Value = serde_json::from_str(field).expect("json");
            assert!(value["label"].as_str().expect("label").chars().count() <= MAX_LABEL_CHARS);
            assert!(value["value"].as_str().expect("value").chars().count() <= MAX_VALUE_CHARS);
        }
        let message = &pairs.iter().find(|(k, _)| k == "Details.Message").expect("message").1;
        assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS);
    }

    #[test]
    fn verifications_and_checks_carry_exactly_their_parameters() {
        let phone = Phone::parse("+15551234567").expect("phone");
        assert_eq!(verification(&phone, Channel::Call).expose(), "To=%2B15551234567&Channel=call");
        let sid = VerificationSid::parse(&format!("VE{HEX}")).expect("sid");
        let code = Token::parse("654321").expect("code");
        assert_eq!(verification_check(&sid, &code).expose(), format!("VerificationSid=VE{HEX}&Code=654321"));
    }
}
