//! TLS on the cluster port (`[cluster.tls]`), for the server and for this node's own peer calls.
//!
//! With `cert` and `key` the port speaks TLS (rustls, ring) and peers are dialled with `https`. With
//! `ca`, peers' certificates must chain to it (both ways: the server checks a client certificate
//! when one is presented, and demands one with `require_client_cert`); without it, they are checked
//! against the public web roots. The same certificate is this node's client certificate. The files
//! are read once at start; unlike the public listener's, this certificate is not reloaded.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::config::ClusterTlsSettings;

/// A TLS handshake on the cluster port that takes longer than this is dropped.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ClusterTlsError {
    #[error("cannot read cluster.tls file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("cluster.tls: no pem {what} in {path}")]
    Pem { what: &'static str, path: String },
}

#[derive(Clone)]
pub struct ClusterTls {
    server: ServerTlsConfig,
    client: ClientTlsConfig,
}

impl ClusterTls {
    /// `None` when `[cluster.tls]` has no certificate. Every file is read and parsed here, so a bad
    /// one stops the start instead of failing the first handshake.
    pub fn load(settings: &ClusterTlsSettings) -> Result<Option<ClusterTls>, ClusterTlsError> {
        let (Some(cert_path), Some(key_path)) = (&settings.cert, &settings.key) else {
            return Ok(None);
        };
        let cert = read_pem(cert_path, "certificate", has_certificate)?;
        let key = read_pem(key_path, "private key", |pem| PrivateKeyDer::from_pem_slice(pem).is_ok())?;
        let identity = Identity::from_pem(&cert, &key);
        let mut server = ServerTlsConfig::new().identity(identity.clone()).timeout(HANDSHAKE_TIMEOUT);
        let mut client = ClientTlsConfig::new().identity(identity).timeout(HANDSHAKE_TIMEOUT);
        match &settings.ca {
            Some(ca_path) => {
                let ca = read_pem(ca_path, "ca certificate", has_certificate)?;
                server = server
                    .client_ca_root(Certificate::from_pem(&ca))
                    .client_auth_optional(!settings.require_client_cert);
                client = client.ca_certificate(Certificate::from_pem(&ca));
            }
            None => client = client.with_webpki_roots(),
        }
        Ok(Some(ClusterTls { server, client }))
    }

    pub fn server_config(&self) -> ServerTlsConfig {
        self.server.clone()
    }

    pub fn client_config(&self) -> ClientTlsConfig {
        self.client.clone()
    }
}

fn has_certificate(pem: &[u8]) -> bool {
    CertificateDer::pem_slice_iter(pem).next().is_some_and(|certificate| certificate.is_ok())
}

fn read_pem(
    path: &Path,
    what: &'static str,
    parses: impl Fn(&[u8]) -> bool,
) -> Result<Vec<u8>, ClusterTlsError> {
    let pem = std::fs::read(path)
        .map_err(|source| ClusterTlsError::Read { path: path.display().to_string(), source })?;
    if parses(&pem) {
        Ok(pem)
    } else {
        Err(ClusterTlsError::Pem { what, path: path.display().to_string() })
    }
}
