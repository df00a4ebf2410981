//! The per-run CA that Complement's image contract asks for.

use crate::homeserver::TargetError;

/// The per-run CA, as Complement makes it: a self-signed RSA CA certificate and its key
/// (PKCS#1 PEM, "RSA PRIVATE KEY"), which images use to sign their own TLS certificates.
pub(super) struct Ca {
    pub(super) cert_pem: String,
    pub(super) key_pem: String,
}

pub(super) fn generate_ca() -> Result<Ca, TargetError> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::EncodePrivateKey;
    let fail = |e: &dyn std::fmt::Display| TargetError(format!("cannot generate a CA: {e}"));
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).map_err(|e| fail(&e))?;
    let pkcs8 = key
        .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
        .map_err(|e| fail(&e))?;
    let key_pem = key
        .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
        .map_err(|e| fail(&e))?
        .to_string();
    let key_pair = rcgen::KeyPair::from_pem_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256)
        .map_err(|e| fail(&e))?;
    let mut params = rcgen::CertificateParams::default();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    params.distinguished_name.push(
        rcgen::DnType::OrganizationName,
        "delayed-events-conformance",
    );
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "delayed-events-conformance per-run CA",
    );
    let cert = params.self_signed(&key_pair).map_err(|e| fail(&e))?;
    Ok(Ca {
        cert_pem: cert.pem(),
        key_pem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_is_a_pem_certificate_with_a_pkcs1_key() {
        let ca = generate_ca().unwrap();
        assert!(ca.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(ca.key_pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    }
}
