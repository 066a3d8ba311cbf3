//! Certificates and the rustls server configuration of the sandbox.
//!
//! It owns the test CA ("authy-sandbox test CA"), the good server certificate for
//! `localhost`/`127.0.0.1`/`::1`, the deliberately bad ones that TLS-failure tests serve
//! (self-signed, wrong host, expired, unknown CA), loading and writing `ca.pem`, `ca.key`,
//! `server.pem`, `server.key` in a `tls_dir`, and building a `ServerConfig` on an explicit ring
//! provider. It must never install a process-wide default crypto provider: the sandbox runs in
//! the same process as the code under test, whose TLS choices must stay its own.

use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SerialNumber,
};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::clock::{civil_from_unix, now_unix};

/// Which certificate the API listener presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServerCert {
    /// Signed by the sandbox CA for `localhost`, `127.0.0.1`, `::1`: what clients should trust.
    #[default]
    Good,
    /// Self-signed leaf for the right names: the issuer is unknown to a client trusting the CA.
    SelfSigned,
    /// Signed by the sandbox CA but only valid for `wrong.example`.
    WrongHost,
    /// Signed by the sandbox CA for the right names, but `not_after` lies in the past.
    Expired,
    /// Right names and dates, signed by a different ("rogue") CA.
    UnknownCa,
}

/// Names the good certificate is valid for.
pub const GOOD_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
/// The only name in the `WrongHost` certificate.
pub const WRONG_HOST_NAME: &str = "wrong.example";
/// Common name of the sandbox CA.
pub const CA_COMMON_NAME: &str = "authy-sandbox test CA";

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct IssuedCert {
    /// The certificate (leaf first if it is a chain).
    pub cert_pem: String,
    /// The PKCS#8 private key.
    pub key_pem: String,
}

impl std::fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material, even in a test log.
        f.debug_struct("IssuedCert").field("cert_pem", &self.cert_pem).field("key_pem", &"<redacted>").finish()
    }
}

/// Validity windows a minted certificate can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From last year to ten years from now.
    Current,
    /// Ended over a year ago.
    Expired,
}

/// A certificate authority that can issue server certificates.
pub struct TestCa {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").field("cert_pem", &self.cert_pem).finish_non_exhaustive()
    }
}

fn rc_err(what: &str, e: rcgen::Error) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

fn current_year() -> i32 {
    civil_from_unix(now_unix()).0
}

/// 16 random bytes with the top bit clear, so the DER INTEGER stays positive.
fn random_serial() -> io::Result<SerialNumber> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| io::Error::other(format!("getrandom: {e}")))?;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

impl TestCa {
    /// Generates a fresh CA (ECDSA P-256) valid from last year for twenty years.
    pub fn generate(common_name: &str) -> io::Result<TestCa> {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.distinguished_name.push(DnType::OrganizationName, "authy-sandbox");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let year = current_year();
        params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
        params.not_after = rcgen::date_time_ymd(year + 20, 1, 1);
        params.serial_number = Some(random_serial()?);
        let key = KeyPair::generate().map_err(|e| rc_err("CA key", e))?;
        let cert = params.self_signed(&key).map_err(|e| rc_err("CA certificate", e))?;
        Ok(TestCa { cert_pem: cert.pem(), issuer: Issuer::new(params, key) })
    }

    /// Loads an existing CA from its certificate and private key (PEM).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> io::Result<TestCa> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| rc_err("CA key", e))?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key).map_err(|e| rc_err("CA certificate", e))?;
        Ok(TestCa { cert_pem: cert_pem.to_owned(), issuer })
    }

    /// The CA certificate, PEM: what a client must trust.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key, PEM (PKCS#8).
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// Issues a server certificate for `names` (DNS names or IP literals).
    pub fn issue(&self, names: &[&str], validity: Validity) -> io::Result<IssuedCert> {
        let params = leaf_params(names, validity)?;
        let key = KeyPair::generate().map_err(|e| rc_err("server key", e))?;
        let cert = params.signed_by(&key, &self.issuer).map_err(|e| rc_err("server certificate", e))?;
        Ok(IssuedCert { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }
}

fn leaf_params(names: &[&str], validity: Validity) -> io::Result<CertificateParams> {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(names.clone()).map_err(|e| rc_err("server names", e))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, names.first().cloned().unwrap_or_default());
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial()?);
    let year = current_year();
    match validity {
        Validity::Current => {
            params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
            params.not_after = rcgen::date_time_ymd(year + 10, 1, 1);
        }
        Validity::Expired => {
            params.not_before = rcgen::date_time_ymd(year - 3, 1, 1);
            params.not_after = rcgen::date_time_ymd(year - 1, 1, 1);
        }
    }
    Ok(params)
}

/// A self-signed (non-CA) server certificate for `names`.
pub fn self_signed(names: &[&str]) -> io::Result<IssuedCert> {
    let mut params = leaf_params(names, Validity::Current)?;
    // No authority key identifier: there is no authority.
    params.use_authority_key_identifier_extension = false;
    let key = KeyPair::generate().map_err(|e| rc_err("server key", e))?;
    let cert = params.self_signed(&key).map_err(|e| rc_err("server certificate", e))?;
    Ok(IssuedCert { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}

/// Mints the certificate `kind` describes. `ca` signs `Good`, `WrongHost` and `Expired`.
pub fn mint(kind: ServerCert, ca: &TestCa) -> io::Result<IssuedCert> {
    match kind {
        ServerCert::Good => ca.issue(&GOOD_NAMES, Validity::Current),
        ServerCert::SelfSigned => self_signed(&GOOD_NAMES),
        ServerCert::WrongHost => ca.issue(&[WRONG_HOST_NAME], Validity::Current),
        ServerCert::Expired => ca.issue(&GOOD_NAMES, Validity::Expired),
        ServerCert::UnknownCa => TestCa::generate("authy-sandbox rogue CA")?.issue(&GOOD_NAMES, Validity::Current),
    }
}

/// What the listener serves, and the CA a client should trust.
pub(crate) struct Material {
    pub ca_pem: String,
    pub served: IssuedCert,
}

const CA_PEM: &str = "ca.pem";
const CA_KEY: &str = "ca.key";
const SERVER_PEM: &str = "server.pem";
const SERVER_KEY: &str = "server.key";

/// Loads or creates the certificates for one sandbox start.
///
/// * no `tls_dir`: a fresh CA and server certificate in memory;
/// * a `tls_dir` with none of the four files: generate them, write them (keys 0600), use them;
/// * a `tls_dir` with `ca.pem`, `server.pem`, `server.key` (and optionally `ca.key`): load them.
///
/// A non-`Good` `kind` replaces the served certificate with a freshly minted bad one; the CA
/// reported stays the good one, because that is what the client under test trusts.
pub(crate) fn prepare(tls_dir: Option<&Path>, kind: ServerCert) -> io::Result<Material> {
    let (ca, ca_pem, good) = match tls_dir {
        None => {
            let ca = TestCa::generate(CA_COMMON_NAME)?;
            let good = ca.issue(&GOOD_NAMES, Validity::Current)?;
            let pem = ca.cert_pem().to_owned();
            (Some(ca), pem, good)
        }
        Some(dir) => load_or_create(dir)?,
    };
    let served = match kind {
        ServerCert::Good => good,
        ServerCert::SelfSigned | ServerCert::UnknownCa => {
            // These do not need the CA's key; a placeholder CA keeps `mint` uniform.
            match &ca {
                Some(ca) => mint(kind, ca)?,
                None => mint(kind, &TestCa::generate("unused")?)?,
            }
        }
        ServerCert::WrongHost | ServerCert::Expired => {
            let ca = ca.as_ref().ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, "this server_cert needs the CA key (ca.key) in tls_dir")
            })?;
            mint(kind, ca)?
        }
    };
    Ok(Material { ca_pem, served })
}

fn load_or_create(dir: &Path) -> io::Result<(Option<TestCa>, String, IssuedCert)> {
    if !dir.exists() {
        // It will hold private keys: keep it private from the start.
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let path = |name: &str| -> PathBuf { dir.join(name) };
    let present: Vec<bool> = [CA_PEM, CA_KEY, SERVER_PEM, SERVER_KEY].iter().map(|n| path(n).exists()).collect();
    if present.iter().all(|p| !p) {
        let ca = TestCa::generate(CA_COMMON_NAME)?;
        let good = ca.issue(&GOOD_NAMES, Validity::Current)?;
        write_file(&path(CA_PEM), ca.cert_pem(), 0o644)?;
        write_file(&path(CA_KEY), &ca.key_pem(), 0o600)?;
        write_file(&path(SERVER_PEM), &good.cert_pem, 0o644)?;
        write_file(&path(SERVER_KEY), &good.key_pem, 0o600)?;
        let pem = ca.cert_pem().to_owned();
        return Ok((Some(ca), pem, good));
    }
    for name in [CA_PEM, SERVER_PEM, SERVER_KEY] {
        if !path(name).exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{} is missing; tls_dir must be empty or hold ca.pem, server.pem, server.key",
                    path(name).display()
                ),
            ));
        }
    }
    let ca_pem = fs::read_to_string(path(CA_PEM))?;
    let good =
        IssuedCert { cert_pem: fs::read_to_string(path(SERVER_PEM))?, key_pem: fs::read_to_string(path(SERVER_KEY))? };
    let ca =
        if path(CA_KEY).exists() { Some(TestCa::from_pem(&ca_pem, &fs::read_to_string(path(CA_KEY))?)?) } else { None };
    Ok((ca, ca_pem, good))
}

/// Creates `path` with `mode` (refusing to overwrite) and writes `text`.
fn write_file(path: &Path, text: &str, mode: u32) -> io::Result<()> {
    let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path)?;
    // The umask may have narrowed the mode; set it exactly.
    f.set_permissions(fs::Permissions::from_mode(mode))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// Builds the rustls server configuration on an explicit ring provider.
pub(crate) fn server_config(served: &IssuedCert) -> io::Result<Arc<rustls::ServerConfig>> {
    let bad =
        |what: &str, e: &dyn std::fmt::Display| io::Error::new(io::ErrorKind::InvalidData, format!("{what}: {e}"));
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(served.cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| bad("server certificate PEM", &e))?;
    if chain.is_empty() {
        return Err(bad("server certificate PEM", &"no CERTIFICATE block"));
    }
    let key = PrivateKeyDer::from_pem_slice(served.key_pem.as_bytes()).map_err(|e| bad("server key PEM", &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("TLS versions", &e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| bad("server certificate", &e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_builds_a_server_config() {
        let ca = TestCa::generate(CA_COMMON_NAME).expect("ca");
        for kind in [
            ServerCert::Good,
            ServerCert::SelfSigned,
            ServerCert::WrongHost,
            ServerCert::Expired,
            ServerCert::UnknownCa,
        ] {
            let cert = mint(kind, &ca).expect("mint");
            server_config(&cert).expect("config");
        }
    }

    #[test]
    fn a_ca_reloaded_from_pem_still_issues() {
        let ca = TestCa::generate(CA_COMMON_NAME).expect("ca");
        let again = TestCa::from_pem(ca.cert_pem(), &ca.key_pem()).expect("reload");
        again.issue(&GOOD_NAMES, Validity::Current).expect("issue with reloaded CA");
    }

    #[test]
    fn key_material_is_not_debug_printed() {
        let c = self_signed(&["localhost"]).expect("cert");
        assert!(!format!("{c:?}").contains("PRIVATE KEY"));
    }
}
