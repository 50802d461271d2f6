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
    OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|error| RandomnessError(error.to_string()))?;
    Ok(bytes)
}

pub fn mint_token(kind_prefix: &str) -> Result<MintedToken, RandomnessError> {
    let token = format!("{kind_prefix}{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()?));
    let display_prefix = token[..kind_prefix.len() + DISPLAY_PREFIX_RANDOM_CHARS].to_owned();
    Ok(MintedToken {
        hash: hash_token(&token),
        token,
        display_prefix,
    })
}

pub fn hash_token(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// Constant-time equality of two token hashes (after the index lookup, so timing says nothing).
pub fn token_hashes_equal(left: &TokenHash, right: &TokenHash) -> bool {
    left.ct_eq(right).into()
}

/// An opaque id such as `col_5k2x…`: 80 random bits, lowercase, URL-safe.
pub fn random_id(kind: &str) -> Result<String, RandomnessError> {
    Ok(format!("{kind}_{}", hex::encode(random_bytes::<10>()?)))
}

/// A password for the bootstrap admin when none is configured.
pub fn random_password() -> Result<String, RandomnessError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<18>()?))
}

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
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
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
    }
}
