//! HTTPS on the public listener: rustls (ring provider), certificate and key from PEM files, replaced
//! without a restart.
//!
//! The listener's `ServerConfig` never changes: its certificate resolver hands every new handshake the
//! current `CertifiedKey`, so a reload affects new connections only and open ones keep what they
//! negotiated. Reloads happen on SIGHUP and when the files' contents change (checked every
//! `tls.watch_interval`; contents, not mtimes, so the symlink swaps of Kubernetes secrets and certbot
//! are seen too). A reload that fails — unreadable file, no PEM item, key not matching the
//! certificate — keeps the previous certificate and logs one line.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::config::TlsSettings;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read tls file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("no pem certificate in {path}: {source}")]
    Certificate { path: String, source: rustls::pki_types::pem::Error },
    #[error("no pem private key in {path}: {source}")]
    PrivateKey { path: String, source: rustls::pki_types::pem::Error },
    #[error("certificate in {path} cannot be used ({reason})")]
    InvalidCertificate { path: String, reason: String },
    #[error("private key {key} does not match the certificate in {cert}")]
    KeyMismatch { cert: String, key: String },
    #[error("unusable tls certificate or key ({cert}, {key}): {source}")]
    Unusable { cert: String, key: String, source: rustls::Error },
    #[error("cannot listen for SIGHUP: {0}")]
    Signal(std::io::Error),
}

/// Hands each new handshake the certificate loaded last.
#[derive(Debug)]
pub struct ReloadingCertResolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for ReloadingCertResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().clone())
    }
}

/// The certificate files, the resolver serving them and what triggers a reload.
pub struct ServerTls {
    cert_path: PathBuf,
    key_path: PathBuf,
    watch_interval: Duration,
    provider: Arc<CryptoProvider>,
    resolver: Arc<ReloadingCertResolver>,
    /// Digest of the file contents the last reload attempt saw (or the read error it hit), so the
    /// watcher tries — and logs — each new state of the files once.
    last_seen: Observed,
    hangup: Signal,
}

#[derive(Clone, PartialEq, Eq)]
enum Observed {
    Contents([u8; 32]),
    Unreadable(String),
}

impl ServerTls {
    /// Loads the configured certificate; `None` when TLS is off. Must run inside the tokio runtime that
    /// will run [`ServerTls::watch`]: SIGHUP is caught from here on, so a SIGHUP sent as soon as the
    /// server says it listens already reloads instead of killing the process.
    pub fn load(settings: &TlsSettings) -> Result<Option<ServerTls>, TlsError> {
        let (Some(cert_path), Some(key_path)) = (&settings.cert, &settings.key) else {
            return Ok(None);
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (cert_pem, key_pem) = read_files(cert_path, key_path)?;
        let certified = certified_key(&cert_pem, &key_pem, cert_path, key_path, &provider)?;
        tracing::info!(
            cert = %cert_path.display(),
            fingerprint = %leaf_fingerprint(&certified),
            "serving https"
        );
        Ok(Some(ServerTls {
            cert_path: cert_path.clone(),
            key_path: key_path.clone(),
            watch_interval: settings.watch_interval,
            provider,
            resolver: Arc::new(ReloadingCertResolver { current: RwLock::new(Arc::new(certified)) }),
            last_seen: Observed::Contents(digest(&cert_pem, &key_pem)),
            hangup: signal(SignalKind::hangup()).map_err(TlsError::Signal)?,
        }))
    }

    /// The rustls configuration for the listener; it reads the certificate through the resolver.
    pub fn server_config(&self) -> Result<rustls::ServerConfig, TlsError> {
        let unusable = |source| TlsError::Unusable {
            cert: self.cert_path.display().to_string(),
            key: self.key_path.display().to_string(),
            source,
        };
        Ok(rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(unusable)?
            .with_no_client_auth()
            .with_cert_resolver(self.resolver.clone()))
    }

    /// Reloads on SIGHUP (always) and when the files change (each new content once); runs until the
    /// runtime stops.
    pub async fn watch(mut self) {
        let mut ticks = tokio::time::interval(self.watch_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            let forced = tokio::select! {
                received = self.hangup.recv() => match received {
                    Some(()) => true,
                    None => return,
                },
                _ = ticks.tick() => false,
            };
            match self.reload(forced).await {
                Reload::Unchanged => {}
                Reload::Done { fingerprint } => {
                    tracing::info!(fingerprint = %fingerprint, sighup = forced, "tls certificate reloaded");
                }
                Reload::Failed(error) => {
                    tracing::warn!(error = %error, "tls reload failed; still serving the previous certificate");
                }
            }
        }
    }

    /// One reload attempt. Unless `forced`, files whose contents (or read error) were already seen by
    /// the previous attempt are left alone, so a bad file is reported once, not on every tick.
    async fn reload(&mut self, forced: bool) -> Reload {
        let (cert_pem, key_pem) = match tokio::try_join!(read(&self.cert_path), read(&self.key_path)) {
            Ok(files) => files,
            Err(error) => {
                let observed = Observed::Unreadable(error.to_string());
                let seen = observed == self.last_seen;
                self.last_seen = observed;
                return if seen && !forced { Reload::Unchanged } else { Reload::Failed(error) };
            }
        };
        let observed = Observed::Contents(digest(&cert_pem, &key_pem));
        if !forced && observed == self.last_seen {
            return Reload::Unchanged;
        }
        self.last_seen = observed;
        match certified_key(&cert_pem, &key_pem, &self.cert_path, &self.key_path, &self.provider) {
            Ok(certified) => {
                let fingerprint = leaf_fingerprint(&certified);
                *self.resolver.current.write() = Arc::new(certified);
                Reload::Done { fingerprint }
            }
            Err(error) => Reload::Failed(error),
        }
    }
}

enum Reload {
    Unchanged,
    Done { fingerprint: String },
    Failed(TlsError),
}

async fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    tokio::fs::read(path).await.map_err(|source| TlsError::Read { path: path.display().to_string(), source })
}

fn read_files(cert_path: &Path, key_path: &Path) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read { path: path.display().to_string(), source })
    };
    Ok((read(cert_path)?, read(key_path)?))
}

/// Parses a PEM chain (leaf first) and its private key, and checks that they belong together.
fn certified_key(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let cert = || cert_path.display().to_string();
    let key = || key_path.display().to_string();
    let chain =
        CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .and_then(|chain| {
                if chain.is_empty() {
                    Err(rustls::pki_types::pem::Error::NoItemsFound)
                } else {
                    Ok(chain)
                }
            })
            .map_err(|source| TlsError::Certificate { path: cert(), source })?;
    let private_key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|source| TlsError::PrivateKey { path: key(), source })?;
    CertifiedKey::from_der(chain, private_key, provider).map_err(|source| match source {
        rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch { cert: cert(), key: key() },
        rustls::Error::InvalidCertificate(reason) => {
            TlsError::InvalidCertificate { path: cert(), reason: format!("{reason:?}") }
        }
        source => TlsError::Unusable { cert: cert(), key: key(), source },
    })
}

fn digest(cert_pem: &[u8], key_pem: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update((cert_pem.len() as u64).to_be_bytes());
    hasher.update(cert_pem);
    hasher.update(key_pem);
    hasher.finalize().into()
}

/// SHA-256 of the leaf certificate, as `openssl x509 -fingerprint -sha256` prints it (without colons).
fn leaf_fingerprint(certified: &CertifiedKey) -> String {
    certified.cert.first().map(|leaf| hex::encode(Sha256::digest(leaf.as_ref()))).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generated(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("self-signed");
        (cert.pem(), key.serialize_pem())
    }

    fn load(cert_pem: &str, key_pem: &str) -> Result<CertifiedKey, TlsError> {
        let provider = rustls::crypto::ring::default_provider();
        certified_key(
            cert_pem.as_bytes(),
            key_pem.as_bytes(),
            Path::new("cert.pem"),
            Path::new("key.pem"),
            &provider,
        )
    }

    #[test]
    fn a_matching_pair_loads_and_is_fingerprinted_by_its_leaf() {
        let (cert_pem, key_pem) = generated("localhost");
        let certified = load(&cert_pem, &key_pem).expect("loads");
        let leaf = CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("pem");
        assert_eq!(leaf_fingerprint(&certified), hex::encode(Sha256::digest(leaf.as_ref())));
    }

    #[test]
    fn a_key_from_another_certificate_is_refused() {
        let (cert_pem, _) = generated("localhost");
        let (_, other_key_pem) = generated("localhost");
        let error = load(&cert_pem, &other_key_pem).expect_err("mismatch");
        assert!(matches!(error, TlsError::KeyMismatch { .. }), "{error}");
        assert_eq!(error.to_string(), "private key key.pem does not match the certificate in cert.pem");
    }

    #[test]
    fn files_without_pem_items_are_refused_by_name() {
        let (cert_pem, key_pem) = generated("localhost");
        let error = load("not a certificate", &key_pem).expect_err("no certificate");
        assert!(matches!(error, TlsError::Certificate { .. }), "{error}");
        assert!(error.to_string().contains("cert.pem"), "{error}");
        let not_der = "-----BEGIN CERTIFICATE-----\nbm90IGRlcg==\n-----END CERTIFICATE-----\n";
        let error = load(not_der, &key_pem).expect_err("not a certificate inside the pem");
        assert_eq!(error.to_string(), "certificate in cert.pem cannot be used (BadEncoding)");
        let error = load(&cert_pem, &cert_pem).expect_err("no key");
        assert!(matches!(error, TlsError::PrivateKey { .. }), "{error}");
        assert!(error.to_string().contains("key.pem"), "{error}");
    }

    fn served_fingerprint(tls: &ServerTls) -> String {
        leaf_fingerprint(&tls.resolver.current.read())
    }

    #[tokio::test]
    async fn each_new_state_of_the_files_is_tried_once_unless_forced() {
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = TlsSettings {
            cert: Some(dir.path().join("cert.pem")),
            key: Some(dir.path().join("key.pem")),
            ..TlsSettings::default()
        };
        let write = |(cert_pem, key_pem): &(String, String)| {
            std::fs::write(dir.path().join("cert.pem"), cert_pem).expect("write cert");
            std::fs::write(dir.path().join("key.pem"), key_pem).expect("write key");
        };
        let first = generated("localhost");
        write(&first);
        let mut tls = ServerTls::load(&settings).expect("loads").expect("tls on");
        let first_fingerprint = served_fingerprint(&tls);
        assert!(matches!(tls.reload(false).await, Reload::Unchanged));

        let second = generated("localhost");
        write(&second);
        assert!(matches!(tls.reload(false).await, Reload::Done { .. }));
        let second_fingerprint = served_fingerprint(&tls);
        assert_ne!(second_fingerprint, first_fingerprint);
        assert!(matches!(tls.reload(false).await, Reload::Unchanged));
        assert!(matches!(tls.reload(true).await, Reload::Done { .. }), "SIGHUP always reloads");

        std::fs::write(dir.path().join("cert.pem"), "garbage").expect("write garbage");
        assert!(matches!(tls.reload(false).await, Reload::Failed(TlsError::Certificate { .. })));
        assert!(matches!(tls.reload(false).await, Reload::Unchanged), "a bad file is reported once");
        assert!(matches!(tls.reload(true).await, Reload::Failed(_)), "SIGHUP reports it again");
        assert_eq!(served_fingerprint(&tls), second_fingerprint);

        std::fs::remove_file(dir.path().join("key.pem")).expect("remove key");
        assert!(matches!(tls.reload(false).await, Reload::Failed(TlsError::Read { .. })));
        assert!(matches!(tls.reload(false).await, Reload::Unchanged));
        assert_eq!(served_fingerprint(&tls), second_fingerprint);

        write(&first);
        assert!(matches!(tls.reload(false).await, Reload::Done { .. }));
        assert_eq!(served_fingerprint(&tls), first_fingerprint);
    }

    #[test]
    fn the_digest_tells_which_file_changed() {
        assert_ne!(digest(b"ab", b"c"), digest(b"a", b"bc"));
        assert_eq!(digest(b"a", b"b"), digest(b"a", b"b"));
    }
}
