//! Certificates: the good one verifies for every advertised name, each bad variant really
//! makes a verifying client fail for the intended reason, and a `tls_dir` is written once
//! (keys 0600) and reused.

mod common;

use std::os::unix::fs::PermissionsExt as _;

use authy_sandbox::{Sandbox, SandboxConfig, ServerCert};
use common::*;

fn start(server_cert: ServerCert) -> Sandbox {
    Sandbox::start(SandboxConfig { server_cert, ..SandboxConfig::default() }).expect("start")
}

/// The certificate error a verifying client reports, as Debug text.
fn handshake_error(sb: &Sandbox) -> String {
    let err = connect(sb).expect_err("handshake must fail");
    let inner = err
        .get_ref()
        .and_then(|i| i.downcast_ref::<rustls::Error>())
        .unwrap_or_else(|| panic!("not a rustls error: {err:?}"));
    match inner {
        rustls::Error::InvalidCertificate(ce) => format!("{ce:?}"),
        other => panic!("unexpected TLS error {other:?}"),
    }
}

#[test]
fn the_good_certificate_verifies_for_every_advertised_name() {
    let (sb, id) = sandbox_with_user();
    for name in ["localhost", "127.0.0.1", "::1"] {
        connect_as(&sb, name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    assert_eq!(get(&sb, &format!("/protected/json/users/{id}/status")).status, 200);
    assert!(sb.url().starts_with("https://127.0.0.1:"));
    assert!(sb.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    assert_ne!(sb.ca_pem(), sb.server_cert_pem());
}

#[test]
fn self_signed_is_an_unknown_issuer() {
    let sb = start(ServerCert::SelfSigned);
    assert!(handshake_error(&sb).contains("UnknownIssuer"));
}

#[test]
fn unknown_ca_is_an_unknown_issuer() {
    let sb = start(ServerCert::UnknownCa);
    assert!(handshake_error(&sb).contains("UnknownIssuer"));
}

#[test]
fn wrong_host_is_not_valid_for_the_name() {
    let sb = start(ServerCert::WrongHost);
    let e = handshake_error(&sb);
    assert!(e.contains("NotValidForName"), "{e}");
    // ...but it is signed by the trusted CA: it verifies for its own name.
    connect_as(&sb, "wrong.example").expect("valid for wrong.example");
}

#[test]
fn expired_is_expired() {
    let sb = start(ServerCert::Expired);
    let e = handshake_error(&sb);
    assert!(e.contains("Expired"), "{e}");
}

#[test]
fn an_empty_tls_dir_is_filled_once_and_reused() {
    let dir = tempfile::tempdir().expect("tmp");
    let tls_dir = dir.path().join("tls");
    let config = SandboxConfig { tls_dir: Some(tls_dir.clone()), ..SandboxConfig::default() };
    let (ca, served) = {
        let sb = Sandbox::start(config.clone()).expect("first start");
        (sb.ca_pem(), sb.server_cert_pem())
    };
    for (name, mode) in [("ca.pem", 0o644), ("ca.key", 0o600), ("server.pem", 0o644), ("server.key", 0o600)] {
        let meta = std::fs::metadata(tls_dir.join(name)).expect(name);
        assert_eq!(meta.permissions().mode() & 0o777, mode, "{name}");
    }
    assert_eq!(std::fs::read_to_string(tls_dir.join("ca.pem")).expect("ca"), ca);
    let sb = Sandbox::start(config.clone()).expect("second start");
    assert_eq!(sb.ca_pem(), ca);
    assert_eq!(sb.server_cert_pem(), served);
    // A client that saved the CA from the first run trusts the second.
    connect(&sb).expect("handshake");
    drop(sb);

    // Bad certificates signed by the reloaded CA key still fail as intended.
    let sb =
        Sandbox::start(SandboxConfig { server_cert: ServerCert::WrongHost, ..config }).expect("wrong host from dir");
    assert_eq!(sb.ca_pem(), ca);
    assert!(handshake_error(&sb).contains("NotValidForName"));
}

#[test]
fn a_partial_tls_dir_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("ca.pem"), "x").expect("write");
    let err = Sandbox::start(SandboxConfig { tls_dir: Some(dir.path().to_path_buf()), ..SandboxConfig::default() })
        .expect_err("partial dir");
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn a_tls_dir_without_the_ca_key_serves_good_but_cannot_mint() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = SandboxConfig { tls_dir: Some(dir.path().to_path_buf()), ..SandboxConfig::default() };
    drop(Sandbox::start(config.clone()).expect("fill dir"));
    std::fs::remove_file(dir.path().join("ca.key")).expect("rm");
    let sb = Sandbox::start(config.clone()).expect("good without ca.key");
    connect(&sb).expect("handshake");
    drop(sb);
    assert!(Sandbox::start(SandboxConfig { server_cert: ServerCert::Expired, ..config }).is_err());
}

#[test]
fn bad_configurations_are_refused() {
    for config in [
        SandboxConfig { api_key: String::new(), ..SandboxConfig::default() },
        SandboxConfig { totp_digits: 10, ..SandboxConfig::default() },
        SandboxConfig { totp_period_secs: 0, ..SandboxConfig::default() },
        SandboxConfig { control_listen: Some("0.0.0.0:0".parse().expect("addr")), ..SandboxConfig::default() },
    ] {
        let err = Sandbox::start(config).expect_err("refused");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }
}
