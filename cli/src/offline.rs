//! `pam-authy offline-enroll`: a local TOTP secret for the module's offline fallback.
//!
//! The secret is 160 random bits from the kernel (getrandom), stored as unpadded RFC 4648
//! base32 in the user's `[users]` entry through `confedit`, and shown once as an otpauth://
//! URI and a QR code (terminal half blocks, optionally a 0600 PNG) built from the config's
//! `[offline]` digits and period, so any authenticator shows the codes the module expects.
//! An existing secret is printed only with `--show --reveal`; it never appears in an error.

use crate::confedit;
use crate::support::{self, Outcome};
use pam_authy::config::Config;
use pam_authy::secret::Secret;
use qrcodegen::{QrCode, QrCodeEcc};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

const SECRET_BYTES: usize = 20;
const ISSUER: &str = "pam_authy";
const PNG_SCALE: usize = 8;
const PNG_BORDER: i32 = 4;
const TERMINAL_BORDER: i32 = 2;

pub struct OfflineArgs {
    pub user: String,
    pub png: Option<PathBuf>,
    pub replace: bool,
    pub show: bool,
    pub reveal: bool,
    pub json: bool,
}

pub fn run(path: &Path, args: &OfflineArgs) -> Outcome {
    support::check_user_name(&args.user)?;
    let config = support::load(path)?;
    let entry = support::mapped(&config, &args.user)?;
    if args.show {
        return show(&config, args, entry.offline_secret.as_ref());
    }
    if entry.offline_secret.is_some() && !args.replace {
        return Err(format!(
            "{} already has an offline secret; --replace makes a new one (the old one stops \
             working), --show --reveal prints the current one",
            args.user
        )
        .into());
    }
    let secret = new_secret()?;
    let uri = Zeroizing::new(otpauth_uri(&config, &args.user, &host_name(), &secret));
    let qr = QrCode::encode_text(&uri, QrCodeEcc::Medium)
        .map_err(|_| "the otpauth URI is too long for a QR code".to_owned())?;
    if let Some(png) = &args.png {
        write_png(png, &qr)?;
    }
    let file = support::mapping_file(&config, &args.user)?;
    let saved = confedit::ConfigLock::acquire(path).and_then(|lock| {
        lock.edit_users_file(&file, |doc| confedit::set_offline_secret(doc, &args.user, secret.expose()))
    });
    if let Err(problem) = saved {
        if let Some(png) = &args.png {
            let _ = std::fs::remove_file(png);
        }
        return Err(format!("offline secret not saved: {problem}").into());
    }
    warn_about_app_support(&config);
    present(&config, args, &uri, &qr);
    Ok(())
}

fn show(config: &Config, args: &OfflineArgs, secret: Option<&Secret>) -> Outcome {
    let Some(secret) = secret else {
        return Err(format!(
            "{} has no offline secret; make one with `pam-authy offline-enroll {}`",
            args.user, args.user
        )
        .into());
    };
    if !args.reveal {
        if args.png.is_some() {
            return Err("--png would write the secret: add --reveal".into());
        }
        if args.json {
            support::print_json(&json!({
                "ok": true,
                "user": args.user,
                "offline_secret": true,
            }));
        } else {
            println!("{} has an offline secret (not shown; add --reveal to print it and its QR code)", args.user);
        }
        return Ok(());
    }
    let uri = Zeroizing::new(otpauth_uri(config, &args.user, &host_name(), secret));
    let qr = QrCode::encode_text(&uri, QrCodeEcc::Medium)
        .map_err(|_| "the otpauth URI is too long for a QR code".to_owned())?;
    if let Some(png) = &args.png {
        write_png(png, &qr)?;
    }
    present(config, args, &uri, &qr);
    Ok(())
}

fn present(config: &Config, args: &OfflineArgs, uri: &str, qr: &QrCode) {
    if args.json {
        support::print_json(&json!({
            "ok": true,
            "user": args.user,
            "config": config.path.display().to_string(),
            "uri": uri,
            "png": args.png.as_ref().map(|p| p.display().to_string()),
            "digits": config.offline.digits,
            "period_secs": config.offline.period_secs,
        }));
        return;
    }
    let ansi = std::io::stdout().is_terminal();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "Offline secret for {} ({} digits, {} s). Scan it into the Authy app or any authenticator:",
        args.user, config.offline.digits, config.offline.period_secs
    );
    let _ = writeln!(out);
    let _ = write!(out, "{}", render_terminal(qr, TERMINAL_BORDER, ansi));
    let _ = writeln!(out);
    let _ = writeln!(out, "{uri}");
    if let Some(png) = &args.png {
        let _ = writeln!(out, "QR code written to {} (mode 0600)", png.display());
    }
}

fn warn_about_app_support(config: &Config) {
    if config.offline.digits != 6 || config.offline.period_secs != 30 {
        support::warn(&format!(
            "[offline] digits = {} and period_secs = {}: some authenticator apps ignore these \
             and show 6-digit, 30-second codes, which the module will refuse",
            config.offline.digits, config.offline.period_secs
        ));
    }
}

fn new_secret() -> Result<Secret, String> {
    let mut bytes = Zeroizing::new([0u8; SECRET_BYTES]);
    getrandom::fill(bytes.as_mut()).map_err(|e| format!("getrandom: {e}"))?;
    Ok(Secret::new(base32(bytes.as_ref())))
}

/// RFC 4648 base32, upper case, no padding.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .map(|h| h.to_string_lossy().into_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// `otpauth://totp/pam_authy:USER@HOST?secret=...&issuer=pam_authy&digits=D&period=P`.
pub fn otpauth_uri(config: &Config, user: &str, host: &str, secret: &Secret) -> String {
    format!(
        "otpauth://totp/{ISSUER}:{}@{}?secret={}&issuer={ISSUER}&digits={}&period={}",
        percent_encode(user),
        percent_encode(host),
        secret.expose(),
        config.offline.digits,
        config.offline.period_secs
    )
}

/// Two modules per character with half blocks: dark modules are ink. On a terminal the
/// colours are forced (black on white) so the code scans whatever the terminal's theme.
pub fn render_terminal(qr: &QrCode, border: i32, ansi: bool) -> String {
    let mut out = String::new();
    let size = qr.size();
    let mut y = -border;
    while y < size + border {
        if ansi {
            out.push_str("\x1b[30;47m");
        }
        for x in -border..size + border {
            out.push(match (qr.get_module(x, y), qr.get_module(x, y + 1)) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        if ansi {
            out.push_str("\x1b[0m");
        }
        out.push('\n');
        y += 2;
    }
    out
}

/// Writes the code as a grayscale PNG into a new file created 0600 (never over an existing
/// file or through a symlink).
pub fn write_png(path: &Path, qr: &QrCode) -> Result<(), String> {
    let modules = qr.size() + 2 * PNG_BORDER;
    let side = usize::try_from(modules).map_err(|_| "bad QR size".to_owned())? * PNG_SCALE;
    let mut pixels = Zeroizing::new(vec![255u8; side * side]);
    for (row, line) in pixels.chunks_mut(side).enumerate() {
        let y = (row / PNG_SCALE) as i32 - PNG_BORDER;
        for (col, pixel) in line.iter_mut().enumerate() {
            let x = (col / PNG_SCALE) as i32 - PNG_BORDER;
            if qr.get_module(x, y) {
                *pixel = 0;
            }
        }
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc_flags())
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let side = u32::try_from(side).map_err(|_| "bad QR size".to_owned())?;
    let written = (|| -> Result<(), png::EncodingError> {
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(&file), side, side);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&pixels)?;
        writer.finish()
    })();
    let synced = written.map_err(|e| e.to_string()).and_then(|()| file.sync_all().map_err(|e| e.to_string()));
    if let Err(e) = synced {
        let _ = std::fs::remove_file(path);
        return Err(format!("{}: {e}", path.display()));
    }
    Ok(())
}

fn libc_flags() -> i32 {
    nix::fcntl::OFlag::O_NOFOLLOW.bits() | nix::fcntl::OFlag::O_CLOEXEC.bits()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_the_rfc_4648_vectors_without_padding() {
        for (input, expected) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(input.as_bytes()), expected, "{input:?}");
        }
        assert_eq!(base32(&[0xff; 20]).len(), 32);
    }

    #[test]
    fn a_new_secret_is_160_bits_of_base32_the_module_accepts() {
        let secret = new_secret().expect("secret");
        assert_eq!(secret.expose().len(), 32);
        let normalized = pam_authy::config::normalize_base32_secret(&secret).expect("valid");
        assert_eq!(normalized.expose(), secret.expose());
        assert_ne!(new_secret().expect("secret"), secret);
    }

    #[test]
    fn labels_are_percent_encoded() {
        assert_eq!(percent_encode("alice"), "alice");
        assert_eq!(percent_encode("j doe@x:y"), "j%20doe%40x%3Ay");
    }

    #[test]
    fn the_terminal_rendering_holds_every_module() {
        let qr = QrCode::encode_text("otpauth://totp/x", QrCodeEcc::Medium).expect("qr");
        let text = render_terminal(&qr, 0, false);
        let size = qr.size();
        let lines: Vec<Vec<char>> = text.lines().map(|l| l.chars().collect()).collect();
        assert_eq!(lines.len() as i32, (size + 1) / 2);
        for y in 0..size {
            for x in 0..size {
                let c = lines[(y / 2) as usize][x as usize];
                let dark = if y % 2 == 0 { matches!(c, '█' | '▀') } else { matches!(c, '█' | '▄') };
                assert_eq!(dark, qr.get_module(x, y), "module {x},{y}");
            }
        }
    }
}
