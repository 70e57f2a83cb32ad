//! TLS for the relay (rustls with the ring provider) and for its clients
//! (the console); outside `relay` so a console-only build has it too.
//! One place builds every rustls config so the provider and protocol
//! versions are chosen once.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| anyhow::anyhow!("cannot read certificates from {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{}: not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{}: no certificate found", path.display());
    }
    Ok(certs)
}

/// The relay's server config from a PEM certificate chain and key.
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let certs = read_certs(cert)?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("{}: cannot read a PEM private key: {e}", key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| anyhow::anyhow!("--tls-cert/--tls-key do not form a usable pair: {e}"))?;
    Ok(Arc::new(config))
}

/// A client config trusting `ca` (a PEM file) when given, else the
/// system's roots are not consulted: crisisdesk relays are private, so a
/// client must be told which CA signed its relay.
pub fn client_config(ca: Option<&Path>) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    let Some(ca) = ca else {
        anyhow::bail!(
            "a wss:// or https:// relay needs --ca FILE: the certificate authority that signed the relay's certificate"
        );
    };
    for cert in read_certs(ca)? {
        roots
            .add(cert)
            .map_err(|e| anyhow::anyhow!("{}: unusable CA certificate: {e}", ca.display()))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Whether `host` (from a URL or a listen address) is this machine, where
/// plain ws:// may be used without `--insecure`.
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn loopback_hosts() {
        for h in ["127.0.0.1", "localhost", "[::1]", "::1", "127.8.9.1"] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "10.0.0.5",
            "relay.school.example",
            "0.0.0.0",
            "[2001:db8::1]",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
