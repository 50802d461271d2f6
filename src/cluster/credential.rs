//! The cluster credential: what every call on the cluster port carries to prove it comes from a
//! member (`docs/adr/0004-cluster-credential-and-join-exchange.md`).
//!
//! `HMAC-SHA256(data key, "linkmesh cluster credential v1" ‖ cluster id)` in lowercase hex, sent as
//! `authorization: Bearer <credential>`. Nothing is stored: a node that holds its cluster's data key
//! derives it. It never appears in a log or a `Debug` output, and a presented value is compared in
//! constant time.

use std::fmt;
use std::sync::Arc;

use subtle::ConstantTimeEq;

use crate::secrets::DataKey;

/// Domain separation: this HMAC under the data key means "cluster credential", version 1.
const CREDENTIAL_CONTEXT: &[u8] = b"linkmesh cluster credential v1";
const BEARER_PREFIX: &[u8] = b"Bearer ";

#[derive(Clone)]
pub struct ClusterCredential {
    hex: Arc<str>,
}

impl ClusterCredential {
    pub fn derive(data_key: &DataKey, cluster_id: &str) -> ClusterCredential {
        let mac = data_key.hmac_sha256(&[CREDENTIAL_CONTEXT, cluster_id.as_bytes()]);
        ClusterCredential { hex: hex::encode(mac).into() }
    }

    /// The `authorization` header value peer calls carry.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.hex)
    }

    /// Whether an `authorization` header value is `Bearer <this credential>`. The time taken does not
    /// depend on how much of the credential matched.
    pub fn accepts(&self, authorization: &[u8]) -> bool {
        let Some(presented) = authorization.strip_prefix(BEARER_PREFIX) else {
            return false;
        };
        // `ct_eq` on slices of different lengths is false without looking at the contents; the
        // length (64) is no secret.
        presented.ct_eq(self.hex.as_bytes()).into()
    }
}

impl fmt::Debug for ClusterCredential {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("ClusterCredential(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use hmac::Mac as _;

    use super::*;

    fn key(byte: u8) -> DataKey {
        DataKey::from_bytes(&[byte; 32]).expect("32 bytes")
    }

    #[test]
    fn credential_is_the_hmac_of_the_context_and_cluster_id_under_the_data_key() {
        let credential = ClusterCredential::derive(&key(7), "clu_one");
        // Recomputed here from the definition in ADR 0004, independently of `DataKey::hmac_sha256`.
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&[7; 32]).expect("key");
        mac.update(b"linkmesh cluster credential v1clu_one");
        let expected = hex::encode(mac.finalize().into_bytes());
        assert_eq!(credential.bearer(), format!("Bearer {expected}"));
        assert_eq!(expected.len(), 64);
    }

    #[test]
    fn credential_depends_on_both_the_data_key_and_the_cluster_id() {
        let base = ClusterCredential::derive(&key(7), "clu_one");
        assert_ne!(base.bearer(), ClusterCredential::derive(&key(8), "clu_one").bearer());
        assert_ne!(base.bearer(), ClusterCredential::derive(&key(7), "clu_two").bearer());
        assert_eq!(base.bearer(), ClusterCredential::derive(&key(7), "clu_one").bearer());
    }

    #[test]
    fn only_the_exact_bearer_value_is_accepted() {
        let credential = ClusterCredential::derive(&key(7), "clu_one");
        let bearer = credential.bearer();
        assert!(credential.accepts(bearer.as_bytes()));
        let other = ClusterCredential::derive(&key(8), "clu_one").bearer();
        assert!(!credential.accepts(other.as_bytes()));
        let hex = bearer.trim_start_matches("Bearer ");
        for refused in [
            String::new(),
            hex.to_owned(),
            format!("bearer {hex}"),
            format!("Bearer  {hex}"),
            format!("Bearer {}", &hex[..63]),
            format!("Bearer {hex}0"),
            format!("Bearer {}", hex.to_uppercase()),
        ] {
            assert!(!credential.accepts(refused.as_bytes()), "{refused:?}");
        }
    }

    #[test]
    fn debug_output_never_shows_the_credential() {
        let credential = ClusterCredential::derive(&key(7), "clu_one");
        let hex = credential.bearer().trim_start_matches("Bearer ").to_owned();
        let debug = format!("{credential:?}");
        assert!(!debug.contains(&hex) && !debug.contains(&hex[..16]), "{debug}");
    }
}
