//! `pam-authy offline-enroll`: the secret it stores, the URI and QR codes it shows, and the
//! cases where it must not print or overwrite a secret.

mod common;

use common::{TestDir, config_for, mode_of, owner_of, run, sandbox};
use pam_authy::config::Config;
use qrcodegen::{QrCode, QrCodeEcc};
use std::path::Path;

const COMMENTED: &str = "\
[offline]
digits = 8        # our tokens are long
period_secs = 30

[users]
# keeps the laptop
alice = 1234567 # phone in the safe
bob = { authy_id = 7654321 }
";

fn setup() -> (TestDir, authy_sandbox::Sandbox, String) {
    let sandbox = sandbox();
    let dir = TestDir::new();
    let original = config_for(&dir, &sandbox, COMMENTED);
    dir.write_config(&original);
    (dir, sandbox, original)
}

fn stored_secret(dir: &TestDir, user: &str) -> String {
    let config = Config::load(&dir.config_path()).expect("the module accepts the config");
    config.user(user).and_then(|u| u.offline_secret.as_ref()).expect("secret").expose().to_owned()
}

fn host() -> String {
    nix::unistd::gethostname().expect("hostname").to_string_lossy().into_owned()
}

/// Reads the half-block QR code back into modules (dark = ink) and checks it is exactly the
/// QR code of `uri`.
fn assert_terminal_qr_encodes(stdout: &str, uri: &str) {
    let expected = QrCode::encode_text(uri, QrCodeEcc::Medium).expect("qr");
    let rows: Vec<Vec<char>> = stdout
        .lines()
        .filter(|l| !l.is_empty() && l.chars().all(|c| matches!(c, ' ' | '█' | '▀' | '▄')))
        .map(|l| l.chars().collect())
        .collect();
    let border = 2;
    let size = expected.size();
    assert_eq!(rows.len() as i32, (size + 2 * border + 1) / 2, "rows of the terminal QR code");
    for y in -border..size + border {
        for x in -border..size + border {
            let c = rows[((y + border) / 2) as usize][(x + border) as usize];
            let top = (y + border) % 2 == 0;
            let dark = if top { matches!(c, '█' | '▀') } else { matches!(c, '█' | '▄') };
            assert_eq!(dark, expected.get_module(x, y), "module ({x}, {y})");
        }
    }
}

/// Decodes the PNG and checks its pixels are the QR code of `uri` (8 px per module, 4
/// modules of quiet zone).
fn assert_png_encodes(path: &Path, uri: &str) {
    let expected = QrCode::encode_text(uri, QrCodeEcc::Medium).expect("qr");
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).expect("open png")));
    let mut reader = decoder.read_info().expect("png header");
    let mut pixels = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut pixels).expect("png frame");
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    let side = ((expected.size() + 8) * 8) as u32;
    assert_eq!((info.width, info.height), (side, side));
    for y in -4..expected.size() + 4 {
        for x in -4..expected.size() + 4 {
            let (px, py) = (((x + 4) * 8 + 4) as usize, ((y + 4) * 8 + 4) as usize);
            let dark = pixels[py * side as usize + px] < 128;
            assert_eq!(dark, expected.get_module(x, y), "module ({x}, {y})");
        }
    }
}

#[test]
fn offline_enroll_stores_a_160_bit_secret_and_shows_its_uri_and_qr_code() {
    let (dir, _sandbox, original) = setup();
    let owner = owner_of(&dir.config_path());
    let run = dir.cli("offline-enroll", &["alice"]);
    assert!(run.ok(), "{}", run.all());
    let secret = stored_secret(&dir, "alice");
    assert_eq!(secret.len(), 32, "160 bits of base32 without padding");
    assert!(secret.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
    let uri = format!("otpauth://totp/pam_authy:alice@{}?secret={secret}&issuer=pam_authy&digits=8&period=30", host());
    assert!(run.stdout.lines().any(|l| l == uri), "{}", run.stdout);
    assert_terminal_qr_encodes(&run.stdout, &uri);
    assert!(run.warnings().iter().any(|w| w.contains("digits = 8")), "{}", run.stderr);

    let expected = original.replace(
        "alice = 1234567 # phone in the safe",
        &format!("alice = {{ authy_id = 1234567, offline_secret = \"{secret}\" }} # phone in the safe"),
    );
    assert_eq!(dir.config_text(), expected, "comments and layout kept");
    assert_eq!(mode_of(&dir.config_path()), 0o600);
    assert_eq!(owner_of(&dir.config_path()), owner);
    assert!(dir.leftovers().is_empty());
}

#[test]
fn each_secret_is_new_and_the_codes_it_makes_are_the_modules() {
    let (dir, _sandbox, _) = setup();
    assert!(dir.cli("offline-enroll", &["alice"]).ok());
    assert!(dir.cli("offline-enroll", &["bob"]).ok());
    let (alice, bob) = (stored_secret(&dir, "alice"), stored_secret(&dir, "bob"));
    assert_ne!(alice, bob);
    // Another implementation of RFC 6238 agrees with the module on the stored secret.
    let bytes = totp_rs::Secret::try_from_base32(&alice).expect("base32").as_bytes().to_vec();
    assert_eq!(bytes.len(), 20);
    let reference =
        totp_rs::Builder::new().with_digits(8).with_step_duration(30).with_secret(bytes).build().expect("totp");
    let params = pam_authy::offline::OfflineParams { digits: 8, period_secs: 30, skew_steps: 1 };
    let module = pam_authy::offline::code_at(&pam_authy::secret::Secret::from(alice.as_str()), 1_000_000_000, &params)
        .expect("code");
    assert_eq!(module.expose(), reference.generate(1_000_000_000).to_string());
    assert!(dir.config_text().contains("bob = { authy_id = 7654321, offline_secret = \""));
}

#[test]
fn the_png_is_created_0600_and_holds_the_same_code() {
    let (dir, _sandbox, _) = setup();
    let png = dir.path().join("alice.png");
    let png_arg = png.display().to_string();
    let run = dir.cli("offline-enroll", &["alice", "--png", &png_arg, "--json"]);
    assert!(run.ok(), "{}", run.all());
    let report = run.json();
    assert_eq!(report["ok"], true);
    assert_eq!(report["png"], png_arg);
    let uri = report["uri"].as_str().expect("uri");
    assert!(uri.contains(&stored_secret(&dir, "alice")));
    assert_eq!(mode_of(&png), 0o600);
    assert_png_encodes(&png, uri);
}

#[test]
fn an_existing_png_file_is_never_overwritten_and_nothing_is_stored() {
    let (dir, _sandbox, original) = setup();
    let png = dir.write("taken.png", "precious", 0o644);
    let run = dir.cli("offline-enroll", &["alice", "--png", &png.display().to_string()]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("taken.png"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&png).expect("read"), "precious");
    assert_eq!(dir.config_text(), original);
}

#[test]
fn an_existing_secret_is_kept_unless_replace_is_given() {
    let (dir, _sandbox, _) = setup();
    assert!(dir.cli("offline-enroll", &["alice"]).ok());
    let first = stored_secret(&dir, "alice");
    let run = dir.cli("offline-enroll", &["alice"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("already has an offline secret; --replace"), "{}", run.stderr);
    assert!(!run.all().contains(&first), "the refusal never shows the secret");
    assert_eq!(stored_secret(&dir, "alice"), first);
    let run = dir.cli("offline-enroll", &["alice", "--replace"]);
    assert!(run.ok(), "{}", run.all());
    assert_ne!(stored_secret(&dir, "alice"), first);
    assert_eq!(dir.config_text().matches("offline_secret").count(), 1);
}

#[test]
fn show_says_a_secret_exists_and_prints_it_only_with_reveal() {
    let (dir, _sandbox, _) = setup();
    assert!(dir.cli("offline-enroll", &["alice"]).ok());
    let secret = stored_secret(&dir, "alice");
    let before = dir.config_text();

    let run = dir.cli("offline-enroll", &["alice", "--show"]);
    assert!(run.ok(), "{}", run.all());
    assert_eq!(run.stdout, "alice has an offline secret (not shown; add --reveal to print it and its QR code)\n");
    assert!(!run.all().contains(&secret));
    let run = dir.cli("offline-enroll", &["alice", "--show", "--json"]);
    assert_eq!(run.json(), serde_json::json!({"ok": true, "user": "alice", "offline_secret": true}));
    let png = dir.path().join("shown.png").display().to_string();
    let run = dir.cli("offline-enroll", &["alice", "--show", "--png", &png]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("add --reveal"), "{}", run.stderr);
    assert!(!run.all().contains(&secret));
    assert!(!Path::new(&png).exists());

    let run = dir.cli("offline-enroll", &["alice", "--show", "--reveal"]);
    assert!(run.ok(), "{}", run.all());
    assert!(run.stdout.contains(&format!("secret={secret}&")), "{}", run.stdout);
    assert_eq!(dir.config_text(), before, "showing changes nothing");
}

#[test]
fn show_of_a_user_without_a_secret_fails_and_reveal_needs_show() {
    let (dir, _sandbox, _) = setup();
    let run = dir.cli("offline-enroll", &["alice", "--show"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("alice has no offline secret"), "{}", run.stderr);
    let run = dir.cli("offline-enroll", &["alice", "--reveal"]);
    assert_eq!(run.code, Some(2), "usage error: {}", run.stderr);
}

#[test]
fn an_unmapped_user_is_refused() {
    let (dir, _sandbox, original) = setup();
    let run = dir.cli("offline-enroll", &["zoe"]);
    assert_eq!(run.code, Some(1));
    assert_eq!(run.error_lines().len(), 1);
    assert!(run.stderr.contains("zoe is not in [users]"), "{}", run.stderr);
    assert_eq!(dir.config_text(), original);
}

#[test]
fn a_secret_is_never_written_into_a_file_others_can_read() {
    let sandbox = sandbox();
    let dir = TestDir::new();
    let key = dir.write("api_key", common::API_KEY, 0o600);
    let text = config_for(&dir, &sandbox, "[users]\nalice = 1\n")
        .replace(&format!("api_key = \"{}\"", common::API_KEY), &format!("api_key_file = \"{}\"", key.display()));
    let path = dir.write("pam_authy.toml", &text, 0o644);
    let run = dir.cli("offline-enroll", &["alice"]);
    assert_eq!(run.code, Some(1));
    assert_eq!(run.error_lines().len(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("mode 0644 lets group or other read the secrets it holds"), "{}", run.stderr);
    assert!(run.stderr.contains(&path.display().to_string()), "names the real file: {}", run.stderr);
    assert!(!run.stdout.contains("otpauth://"), "nothing shown for a secret not stored");
    assert_eq!(dir.config_text(), text);
    assert_eq!(mode_of(&path), 0o644);
    assert!(dir.leftovers().is_empty(), "{:?}", dir.leftovers());
}

#[test]
fn a_symlinked_config_is_never_edited() {
    let (dir, _sandbox, original) = setup();
    let link = dir.path().join("link.toml");
    std::os::unix::fs::symlink(dir.config_path(), &link).expect("symlink");
    let run = run(&["offline-enroll", "alice", "--config", &link.display().to_string()]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("is a symbolic link"), "{}", run.stderr);
    assert_eq!(dir.config_text(), original);
}

#[test]
fn a_user_mapped_in_a_drop_in_gets_the_secret_in_that_drop_in_and_only_if_it_is_private() {
    let (dir, _sandbox, original) = setup();
    let users_d = dir.path().join("users.d");
    std::fs::create_dir(&users_d).expect("mkdir users.d");
    common::set_mode(&users_d, 0o755);
    let open = dir.write("users.d/10-dev.toml", "[users]\ncarol = 42 # dev lead\n", 0o644);
    let run = dir.cli("offline-enroll", &["carol"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stderr.contains("mode 0644 lets group or other read the offline secrets"), "{}", run.stderr);
    assert!(run.stderr.contains(&open.display().to_string()), "names the drop-in: {}", run.stderr);
    assert!(!run.stdout.contains("otpauth://"), "nothing shown for a secret not stored");
    assert_eq!(std::fs::read_to_string(&open).expect("drop-in"), "[users]\ncarol = 42 # dev lead\n");

    common::set_mode(&open, 0o600);
    let run = dir.cli("offline-enroll", &["carol"]);
    assert!(run.ok(), "{}", run.all());
    let text = std::fs::read_to_string(&open).expect("drop-in");
    assert!(text.starts_with("[users]\ncarol = { authy_id = 42, offline_secret = \""), "{text}");
    assert!(text.ends_with("\" } # dev lead\n"), "{text}");
    assert_eq!(mode_of(&open), 0o600);
    assert_eq!(stored_secret(&dir, "carol").len(), 32);
    assert_eq!(dir.config_text(), original);
}
