//! Tokens, passwords and ids: minted from the OS CSPRNG, stored only as hashes, compared in constant time.
//!
//! Token shape: `<kind>_` + base64url(256 random bits), e.g. `lmct_…` (collector), `lmsat_…` (service
//! account), `lmss_…` (browser session). Only SHA-256 of the whole token is stored.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::rngs::OsRng;
use rand::TryRngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::model::TokenHash;

pub const COLLECTOR_TOKEN_PREFIX: &str = "lmct_";
pub const SERVICE_ACCOUNT_TOKEN_PREFIX: &str = "lmsat_";
pub const SESSION_TOKEN_PREFIX: &str = "lmss_";
/// Lets a new node join the cluster (`model/join_tokens.rs`, `cluster/join.rs`).
pub const JOIN_TOKEN_PREFIX: &str = "lmjt_";
/// Lets OpAMP agents enroll (`model/enrollment_tokens.rs`).
pub const ENROLLMENT_TOKEN_PREFIX: &str = "lmet_";
/// A collector's derived OpAMP credential ([`DataKey::opamp_credential`]).
pub const OPAMP_CREDENTIAL_PREFIX: &str = "lmoc_";
/// What the derived credential's HMAC is over, before the collector id and generation.
const OPAMP_CREDENTIAL_DOMAIN: &[u8] = b"linkmesh opamp credential v1\n";

/// Characters of a token shown back to operators (kind prefix plus a few random characters).
const DISPLAY_PREFIX_RANDOM_CHARS: usize = 6;

/// A freshly minted token. `token` is shown once and then dropped.
pub struct MintedToken {
    pub token: String,
    pub hash: TokenHash,
    pub display_prefix: String,
}

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomnessError(String);

fn random_bytes<const N: usize>() -> Result<[u8; N], RandomnessError> {
    let mut bytes = [0u8; N];
    OsRng.try_fill_bytes(&mut bytes).map_err(|error| RandomnessError(error.to_string()))?;
    Ok(bytes)
}

pub fn mint_token(kind_prefix: &str) -> Result<MintedToken, RandomnessError> {
    let token = format!("{kind_prefix}{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()?));
    let display_prefix = token[..kind_prefix.len() + DISPLAY_PREFIX_RANDOM_CHARS].to_owned();
    Ok(MintedToken { hash: hash_token(&token), token, display_prefix })
}

pub fn hash_token(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// Constant-time equality of two token hashes (after the index lookup, so timing says nothing).
pub fn token_hashes_equal(left: &TokenHash, right: &TokenHash) -> bool {
    left.ct_eq(right).into()
}

/// Whether `presented` is `stored_hex` (a hex SHA-256 as records keep a rotated-out token), in
/// constant time.
pub fn token_hash_matches_hex(stored_hex: Option<&str>, presented: &TokenHash) -> bool {
    stored_hex
        .and_then(crate::model::parse_token_hash)
        .is_some_and(|stored| token_hashes_equal(&stored, presented))
}

/// An opaque id such as `col_5k2x…`: 80 random bits, lowercase, URL-safe.
pub fn random_id(kind: &str) -> Result<String, RandomnessError> {
    Ok(format!("{kind}_{}", hex::encode(random_bytes::<10>()?)))
}

/// Where, in the data dir, a generated bootstrap admin password is kept (0600) until it is changed.
pub const INITIAL_ADMIN_PASSWORD_FILE: &str = "initial-admin-password";

/// A password for the bootstrap admin when none is configured.
pub fn random_password() -> Result<String, RandomnessError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<18>()?))
}

/// Longest password accepted anywhere (login, new users, `LINKMESH_ADMIN_PASSWORD`): argon2 reads
/// every byte it is given, so the work a request can ask for is bounded here.
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct PasswordHashError(String);

/// argon2id with the crate's default (OWASP-recommended) parameters, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, PasswordHashError> {
    let salt_bytes = random_bytes::<16>().map_err(|error| PasswordHashError(error.to_string()))?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|error| PasswordHashError(error.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| PasswordHashError(error.to_string()))
}

/// Verifies a password against a stored PHC string; any malformed hash counts as a mismatch.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

/// The key that seals destination credentials at rest. It lives outside the Raft log (in
/// `LINKMESH_DATA_KEY` or `<data-dir>/data-key`); every node of a cluster must have the same key.
#[derive(Clone)]
pub struct DataKey(chacha20poly1305::Key);

#[derive(Debug, thiserror::Error)]
pub enum DataKeyError {
    #[error("LINKMESH_DATA_KEY must be 32 bytes in base64: {0}")]
    InvalidEnv(String),
    #[error("cannot read or create the data key file {path}: {source}")]
    File { path: String, source: std::io::Error },
    #[error("data key file {0} is corrupt (expected 32 bytes in base64)")]
    CorruptFile(String),
    #[error("data key file {0} fails its checksum")]
    ChecksumMismatch(String),
    #[error(transparent)]
    Randomness(#[from] RandomnessError),
    #[error("a credential could not be decrypted (wrong data key?)")]
    Open,
}

const NONCE_BYTES: usize = 12;

impl DataKey {
    /// `LINKMESH_DATA_KEY` when set, else `<data_dir>/data-key`, created (0600) on first use.
    ///
    /// The file holds the key in base64 and, on a second line, `fingerprint <hex>` as its checksum
    /// (files written before the checksum have only the first line and are still read).
    pub fn load_or_create(
        env_value: Option<&str>,
        data_dir: &std::path::Path,
    ) -> Result<DataKey, DataKeyError> {
        use base64::engine::general_purpose::STANDARD;
        if let Some(text) = env_value {
            let first_token = text.split_whitespace().next().unwrap_or_default();
            let bytes =
                STANDARD.decode(first_token).map_err(|error| DataKeyError::InvalidEnv(error.to_string()))?;
            return DataKey::from_bytes(&bytes)
                .ok_or_else(|| DataKeyError::InvalidEnv(format!("{} bytes", bytes.len())));
        }
        let path = data_dir.join("data-key");
        let file_error = |source| DataKeyError::File { path: path.display().to_string(), source };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let corrupt = || DataKeyError::CorruptFile(path.display().to_string());
                let mut lines = text.lines();
                let bytes =
                    STANDARD.decode(lines.next().unwrap_or_default().trim()).map_err(|_| corrupt())?;
                let key = DataKey::from_bytes(&bytes).ok_or_else(corrupt)?;
                match (lines.next(), lines.next()) {
                    (None, _) => Ok(key),
                    (Some(check), None) if check.strip_prefix("fingerprint ") == Some(&key.fingerprint()) => {
                        Ok(key)
                    }
                    _ => Err(DataKeyError::ChecksumMismatch(path.display().to_string())),
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let bytes = random_bytes::<32>()?;
                let key = DataKey::from_bytes(&bytes)
                    .ok_or_else(|| DataKeyError::CorruptFile(path.display().to_string()))?;
                key.store(data_dir)?;
                Ok(key)
            }
            Err(error) if error.kind() == std::io::ErrorKind::InvalidData => {
                Err(DataKeyError::CorruptFile(path.display().to_string()))
            }
            Err(error) => Err(file_error(error)),
        }
    }

    /// Writes `<data_dir>/data-key` (0600): the key in base64 and its fingerprint line. Used for a
    /// new key and for the key a joining node receives from its cluster.
    pub fn store(&self, data_dir: &std::path::Path) -> Result<(), DataKeyError> {
        let path = data_dir.join("data-key");
        let file_error = |source| DataKeyError::File { path: path.display().to_string(), source };
        std::fs::create_dir_all(data_dir).map_err(file_error)?;
        let contents = format!("{}\nfingerprint {}", self.to_base64(), self.fingerprint());
        write_private_file(&path, &contents).map_err(file_error)
    }

    /// The key in standard base64, as `LINKMESH_DATA_KEY` and the `data-key` file hold it. Only for
    /// those and for the sealed join exchange; never logged.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// A short, one-way name of the key (SHA-256 with a domain prefix, 64 bits in hex): the data-key
    /// file's checksum and, in the identity record, which key the store's credentials are sealed with.
    pub fn fingerprint(&self) -> String {
        let digest =
            Sha256::new().chain_update(b"linkmesh data key fingerprint\n").chain_update(self.0).finalize();
        hex::encode(&digest[..8])
    }

    /// HMAC-SHA256 under the data key over `parts` concatenated: what a node derives from the key
    /// without handing the key itself out (the cluster credential, `cluster/credential.rs`).
    pub fn hmac_sha256(&self, parts: &[&[u8]]) -> [u8; 32] {
        use hmac::Mac as _;
        let mut mac = <hmac::Hmac<Sha256> as hmac::Mac>::new_from_slice(self.0.as_slice())
            .expect("hmac takes a key of any length");
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// Collector `collector_id`'s OpAMP credential at `generation` (docs/adr/0010):
    /// `lmoc_<collector id>_<hex HMAC-SHA256(data key, domain ‖ id ‖ generation)>`. Any node computes
    /// it again whenever it offers or checks one, so nothing secret is stored per collector; bumping
    /// the generation (a token rotation) ends the older ones everywhere.
    pub fn opamp_credential(&self, collector_id: &str, generation: u32) -> String {
        let tag = self.hmac_sha256(&[
            OPAMP_CREDENTIAL_DOMAIN,
            collector_id.as_bytes(),
            b"\n",
            &generation.to_be_bytes(),
        ]);
        format!("{OPAMP_CREDENTIAL_PREFIX}{collector_id}_{}", hex::encode(tag))
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<DataKey> {
        (bytes.len() == 32).then(|| DataKey(*chacha20poly1305::Key::from_slice(bytes)))
    }

    /// `nonce || ciphertext` of `plaintext`, with a fresh random nonce.
    pub fn seal(&self, plaintext: &str) -> Result<Vec<u8>, RandomnessError> {
        use chacha20poly1305::aead::Aead;
        use chacha20poly1305::KeyInit;
        let nonce = random_bytes::<NONCE_BYTES>()?;
        let cipher = chacha20poly1305::ChaCha20Poly1305::new(&self.0);
        let ciphertext = cipher
            .encrypt(chacha20poly1305::Nonce::from_slice(&nonce), plaintext.as_bytes())
            .map_err(|error| RandomnessError(error.to_string()))?;
        Ok([nonce.as_slice(), ciphertext.as_slice()].concat())
    }

    pub fn open(&self, sealed: &[u8]) -> Result<String, DataKeyError> {
        use chacha20poly1305::aead::Aead;
        use chacha20poly1305::KeyInit;
        if sealed.len() < NONCE_BYTES {
            return Err(DataKeyError::Open);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        let cipher = chacha20poly1305::ChaCha20Poly1305::new(&self.0);
        let plaintext = cipher
            .decrypt(chacha20poly1305::Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| DataKeyError::Open)?;
        String::from_utf8(plaintext).map_err(|_| DataKeyError::Open)
    }
}

/// The collector a derived OpAMP credential names (`lmoc_<id>_<tag>`), if it has that shape; whether
/// it is that collector's current one is for [`DataKey::opamp_credential`] to say.
pub fn opamp_credential_collector(credential: &str) -> Option<&str> {
    let (collector_id, tag) = credential.strip_prefix(OPAMP_CREDENTIAL_PREFIX)?.rsplit_once('_')?;
    (!collector_id.is_empty() && tag.len() == 64).then_some(collector_id)
}

/// Writes a file readable only by its owner.
pub fn write_private_file(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_derived_credential_names_its_collector_and_changes_with_the_generation_and_the_key() {
        let key = super::DataKey::from_bytes(&[7; 32]).expect("key");
        let credential = key.opamp_credential("col_0a1b", 0);
        assert_eq!(credential, key.opamp_credential("col_0a1b", 0), "derived again, the same");
        assert_eq!(super::opamp_credential_collector(&credential), Some("col_0a1b"));
        assert_ne!(credential, key.opamp_credential("col_0a1b", 1));
        assert_ne!(credential, key.opamp_credential("col_0a1c", 0));
        let other = super::DataKey::from_bytes(&[8; 32]).expect("key");
        assert_ne!(credential, other.opamp_credential("col_0a1b", 0));
        assert_eq!(super::opamp_credential_collector("lmoc_col_1_short"), None);
        assert_eq!(super::opamp_credential_collector("lmct_whatever"), None);
    }

    #[test]
    fn sealed_credentials_open_only_with_the_same_key() {
        let key = DataKey::from_bytes(&[7; 32]).expect("key");
        let sealed = key.seal("hunter2").expect("seal");
        assert!(!sealed.windows(7).any(|window| window == b"hunter2"));
        assert_eq!(key.open(&sealed).expect("open"), "hunter2");
        assert_ne!(key.seal("hunter2").expect("seal"), sealed, "nonces differ");
        let other = DataKey::from_bytes(&[8; 32]).expect("key");
        assert!(other.open(&sealed).is_err());
        assert!(key.open(&sealed[..5]).is_err());
    }

    #[test]
    fn data_key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().expect("dir");
        let first = DataKey::load_or_create(None, dir.path()).expect("create");
        let sealed = first.seal("x").expect("seal");
        let second = DataKey::load_or_create(None, dir.path()).expect("load");
        assert_eq!(second.open(&sealed).expect("open"), "x");
        assert!(DataKey::load_or_create(Some("not base64!"), dir.path()).is_err());
        assert_eq!(first.fingerprint(), second.fingerprint());
        assert_ne!(first.fingerprint(), DataKey::from_bytes(&[1; 32]).expect("key").fingerprint());
    }

    #[test]
    fn a_damaged_data_key_file_is_refused_and_an_old_one_without_checksum_is_read() {
        use base64::engine::general_purpose::STANDARD;
        let dir = tempfile::tempdir().expect("dir");
        let key = DataKey::load_or_create(None, dir.path()).expect("create");
        let path = dir.path().join("data-key");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.lines().nth(1).is_some_and(|line| line.starts_with("fingerprint ")), "{text:?}");
        let mut bytes = text.clone().into_bytes();
        bytes[3] = if bytes[3] == b'A' { b'B' } else { b'A' };
        std::fs::write(&path, &bytes).expect("damage");
        assert!(matches!(
            DataKey::load_or_create(None, dir.path()),
            Err(DataKeyError::ChecksumMismatch(_) | DataKeyError::CorruptFile(_))
        ));
        std::fs::write(&path, format!("{}\n", STANDARD.encode([9u8; 32]))).expect("old format");
        let old = DataKey::load_or_create(None, dir.path()).expect("old format is read");
        assert_ne!(old.fingerprint(), key.fingerprint());
        // The whole file pasted into LINKMESH_DATA_KEY still works.
        let env = DataKey::load_or_create(Some(&text), dir.path()).expect("env");
        assert_eq!(env.fingerprint(), key.fingerprint());
    }

    use super::*;

    #[test]
    fn minted_tokens_carry_256_random_bits_and_their_hash() {
        let first = mint_token(COLLECTOR_TOKEN_PREFIX).expect("mint");
        let second = mint_token(COLLECTOR_TOKEN_PREFIX).expect("mint");
        assert!(first.token.starts_with("lmct_"));
        assert_eq!(first.token.len(), "lmct_".len() + 43);
        assert_ne!(first.token, second.token);
        assert_eq!(first.hash, hash_token(&first.token));
        assert!(first.token.starts_with(&first.display_prefix));
        assert_eq!(first.display_prefix.len(), "lmct_".len() + 6);
    }

    #[test]
    fn password_verification_accepts_only_the_right_password() {
        let phc = hash_password("correct horse").expect("hash");
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("wrong", &phc));
        assert!(!verify_password("correct horse", "not a phc string"));
    }

    #[test]
    fn hash_comparison_is_exact() {
        assert!(token_hashes_equal(&[1; 32], &[1; 32]));
        assert!(!token_hashes_equal(&[1; 32], &[2; 32]));
        let stored = hex::encode([1u8; 32]);
        assert!(token_hash_matches_hex(Some(&stored), &[1; 32]));
        assert!(!token_hash_matches_hex(Some(&stored), &[2; 32]));
        assert!(!token_hash_matches_hex(None, &[0; 32]), "no stored hash matches nothing, not zeroes");
        assert!(!token_hash_matches_hex(Some("not hex"), &[0; 32]));
    }
}
