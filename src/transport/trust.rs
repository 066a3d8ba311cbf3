//! Which servers the client trusts: the anchors of `ca_file`, then the fixed system bundle.
//!
//! The union of both sets is trusted, as if they were one root store, but the system bundle
//! (some 140 certificates, about a millisecond to parse) is read only when a certificate does
//! not chain to a configured anchor. A deployment that pins its own CA in `ca_file` never
//! pays for it; one that relies on the system bundle pays once per authentication, as before.
//! The paths are fixed: `SSL_CERT_FILE`, `SSL_CERT_DIR` and the rest of the environment (which
//! under sudo belongs to the invoking user) are never read.

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use std::sync::{Arc, OnceLock};

/// System trust bundles, in the order distributions place them.
pub const SYSTEM_CA_BUNDLES: &[&str] =
    &["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/ca-bundle.pem"];

/// Parses a PEM bundle into a root store; a malformed certificate is an error.
pub fn roots_from_pem(pem: &[u8]) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|_| "malformed PEM certificate".to_owned())?;
        roots.add(cert).map_err(|e| format!("certificate refused: {e}"))?;
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, String> {
    let bundle = SYSTEM_CA_BUNDLES
        .iter()
        .find_map(|path| std::fs::read(path).ok())
        .ok_or_else(|| "no system CA bundle".to_owned())?;
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(CertificateDer::pem_slice_iter(&bundle).filter_map(Result::ok));
    Ok(roots)
}

pub fn system_bundle_present() -> bool {
    SYSTEM_CA_BUNDLES.iter().any(|path| std::path::Path::new(path).is_file())
}

fn verifier(roots: RootCertStore, provider: &Arc<CryptoProvider>) -> Result<Arc<WebPkiServerVerifier>, rustls::Error> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))
}

/// Verifies against the configured anchors first, and against the system bundle (loaded on
/// first need) when the chain does not lead to a configured anchor.
#[derive(Debug)]
pub struct AnchorsThenSystem {
    configured: Option<Arc<WebPkiServerVerifier>>,
    system: Option<OnceLock<Result<Arc<WebPkiServerVerifier>, rustls::Error>>>,
    load_system: fn() -> Result<RootCertStore, String>,
    provider: Arc<CryptoProvider>,
}

impl AnchorsThenSystem {
    /// `configured`: the anchors of `ca_file`, if any; `use_system`: whether the system bundle
    /// is trusted too.
    pub fn new(
        configured: Option<RootCertStore>,
        use_system: bool,
        provider: Arc<CryptoProvider>,
    ) -> Result<AnchorsThenSystem, String> {
        let configured = configured.filter(|roots| !roots.is_empty());
        if configured.is_none() && !(use_system && system_bundle_present()) {
            return Err("no trust anchors: no system CA bundle and no ca_file".into());
        }
        let configured = configured.map(|roots| verifier(roots, &provider)).transpose().map_err(|e| e.to_string())?;
        Ok(AnchorsThenSystem {
            configured,
            system: use_system.then(OnceLock::new),
            load_system: system_roots,
            provider,
        })
    }

    fn system(&self) -> Option<Result<Arc<WebPkiServerVerifier>, rustls::Error>> {
        let cell = self.system.as_ref()?;
        Some(
            cell.get_or_init(|| {
                (self.load_system)().map_err(rustls::Error::General).and_then(|roots| verifier(roots, &self.provider))
            })
            .clone(),
        )
    }
}

impl ServerCertVerifier for AnchorsThenSystem {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let first = match &self.configured {
            Some(configured) => {
                match configured.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
                    Ok(verified) => return Ok(verified),
                    // The chain led to a configured anchor and is bad for another reason
                    // (expired, wrong name...): the system bundle cannot make it good.
                    Err(error) if error != rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
                        return Err(error);
                    }
                    Err(error) => Some(error),
                }
            }
            None => None,
        };
        match self.system() {
            Some(system) => system?.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now),
            None => Err(first.unwrap_or(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

    struct Ca {
        cert: rcgen::Certificate,
        issuer: Issuer<'static, KeyPair>,
    }

    fn ca(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("ca");
        Ca { cert, issuer: Issuer::new(params, key) }
    }

    fn leaf(ca: &Ca, host: &str) -> CertificateDer<'static> {
        let params = CertificateParams::new(vec![host.to_owned()]).expect("params");
        let key = KeyPair::generate().expect("key");
        params.signed_by(&key, &ca.issuer).expect("leaf").der().clone()
    }

    fn roots(ca: &Ca) -> RootCertStore {
        roots_from_pem(ca.cert.pem().as_bytes()).expect("roots")
    }

    fn check(verifier: &AnchorsThenSystem, cert: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        let name = ServerName::try_from("api.example").expect("name");
        verifier.verify_server_cert(cert, &[], &name, &[], UnixTime::now()).map(|_| ())
    }

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    thread_local! {
        static SYSTEM_PEM: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }

    fn fake_system() -> Result<RootCertStore, String> {
        SYSTEM_PEM.with(|pem| roots_from_pem(pem.borrow().as_bytes()))
    }

    fn with_fake_system(configured: Option<&Ca>, system: &Ca) -> AnchorsThenSystem {
        SYSTEM_PEM.with(|pem| *pem.borrow_mut() = system.cert.pem());
        let mut verifier = AnchorsThenSystem::new(configured.map(roots), true, provider()).expect("verifier");
        verifier.load_system = fake_system;
        verifier
    }

    #[test]
    fn a_server_of_either_anchor_set_is_trusted_and_no_other() {
        let (pinned, public, stranger) = (ca("pinned"), ca("public"), ca("stranger"));
        let verifier = with_fake_system(Some(&pinned), &public);
        assert_eq!(check(&verifier, &leaf(&pinned, "api.example")), Ok(()));
        assert_eq!(check(&verifier, &leaf(&public, "api.example")), Ok(()));
        assert_eq!(
            check(&verifier, &leaf(&stranger, "api.example")),
            Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer))
        );
    }

    #[test]
    fn the_system_bundle_is_not_read_when_the_pinned_anchor_verifies() {
        let pinned = ca("pinned");
        let mut verifier = AnchorsThenSystem::new(Some(roots(&pinned)), true, provider()).expect("verifier");
        verifier.load_system = || panic!("the system bundle must not be loaded");
        assert_eq!(check(&verifier, &leaf(&pinned, "api.example")), Ok(()));
    }

    #[test]
    fn a_bad_certificate_from_a_pinned_anchor_is_not_rescued_by_the_system_bundle() {
        let pinned = ca("pinned");
        let verifier = with_fake_system(Some(&pinned), &pinned);
        let error = check(&verifier, &leaf(&pinned, "other.example")).expect_err("wrong name");
        assert!(matches!(error, rustls::Error::InvalidCertificate(_)), "{error:?}");
    }

    #[test]
    fn only_configured_anchors_are_trusted_without_the_system_bundle() {
        let (pinned, public) = (ca("pinned"), ca("public"));
        let verifier = AnchorsThenSystem::new(Some(roots(&pinned)), false, provider()).expect("verifier");
        assert!(check(&verifier, &leaf(&public, "api.example")).is_err());
        assert!(AnchorsThenSystem::new(None, false, provider()).is_err());
    }
}
