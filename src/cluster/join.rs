//! The join exchange (`docs/adr/0004`): a new node proves it holds a join token and receives the
//! cluster id and the data key, over http or https, without either (or the token) travelling in clear.
//!
//! - The server keeps `H = SHA-256(token)` and indexes it by `lookup = SHA-256(H)`.
//! - The joining node sends `lookup`, a fresh 32-byte nonce, its node id, name and addresses, and
//!   `proof = HMAC-SHA256(K, request fields)` with `K = HKDF-SHA256(ikm = H, salt = nonce,
//!   info = "linkmesh join v1")`. The fields are length-prefixed in a fixed order ([`proof_message`]),
//!   so no two requests share a proof input.
//! - The member answers with the [`JoinBundle`] sealed with ChaCha20-Poly1305 under `K` (a fresh
//!   12-byte nonce, the node id as associated data).
//!
//! A passive observer sees `lookup`, the nonces and ciphertext: neither the token, nor `H`, nor `K`, nor
//! the data key. Everything here is pure; the I/O is in [`super::admission`] and [`super::joiner`].

use std::fmt;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::model::join_tokens::lookup_of;
use crate::model::TokenHash;
use crate::secrets::{self, JOIN_TOKEN_PREFIX};

/// Where every member answers the exchange.
pub const JOIN_PATH: &str = "/api/v1/cluster/join";
/// Largest join request body accepted (a request is a few hundred bytes).
pub const MAX_REQUEST_BYTES: usize = 4096;
/// Bounds of what a joining node says about itself.
pub const MAX_NAME_CHARS: usize = 128;
pub const MAX_ADDR_CHARS: usize = 255;

const KEY_INFO: &[u8] = b"linkmesh join v1";
const PROOF_DOMAIN: &[u8] = b"linkmesh join request v1";
const REQUEST_NONCE_BYTES: usize = 32;
const SEAL_NONCE_BYTES: usize = 12;
/// Node ids are below 2^53 (`raft/identity.rs`).
const MAX_NODE_ID: u64 = (1 << 53) - 1;
/// base64url characters of 256 random bits.
const TOKEN_RANDOM_CHARS: usize = 43;

#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("the join token is malformed: expected {JOIN_TOKEN_PREFIX} followed by {TOKEN_RANDOM_CHARS} base64url characters")]
    MalformedToken,
    #[error("the join request is malformed: {0}")]
    Malformed(String),
    #[error("the join request's proof does not verify (a wrong or mistyped join token?)")]
    BadProof,
    #[error(
        "the cluster's reply cannot be opened with this join token (not the cluster the token is from?)"
    )]
    CannotOpen,
    #[error("the operating system's random number generator failed: {0}")]
    Randomness(String),
}

/// What a joining node sends, as JSON. Hex for the fixed-size binary fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// `SHA-256(H)`.
    pub lookup: String,
    /// 32 fresh random bytes: the HKDF salt.
    pub nonce: String,
    pub node_id: u64,
    pub name: String,
    pub http_addr: String,
    pub rpc_addr: String,
    /// `HMAC-SHA256(K, proof_message(...))`.
    pub proof: String,
}

/// The member's answer: the sealed [`JoinBundle`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinResponse {
    /// 12 fresh random bytes, hex.
    pub nonce: String,
    /// ChaCha20-Poly1305 ciphertext and tag of the bundle's JSON, base64.
    pub sealed: String,
}

/// What the joining node receives inside the seal.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinBundle {
    pub cluster_id: String,
    /// The data key, standard base64 (as `LINKMESH_DATA_KEY` holds it).
    pub data_key: String,
}

impl fmt::Debug for JoinBundle {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("JoinBundle").field("cluster_id", &self.cluster_id).finish_non_exhaustive()
    }
}

/// What the joining node says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoiningNode {
    pub node_id: u64,
    pub name: String,
    pub http_addr: String,
    pub rpc_addr: String,
}

/// `K`: the key both sides derive from `H` and the request nonce. Never logged or sent.
pub struct JoinKey([u8; 32]);

impl fmt::Debug for JoinKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("JoinKey(..)")
    }
}

impl JoinKey {
    pub fn derive(token_hash: &TokenHash, nonce: &[u8; REQUEST_NONCE_BYTES]) -> JoinKey {
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(Some(nonce), token_hash)
            .expand(KEY_INFO, &mut key)
            .expect("32 bytes is within HKDF-SHA256's output bound");
        JoinKey(key)
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes keys of any length")
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(&self.0))
    }
}

/// `H` of a join token, after checking its shape.
pub fn token_hash(token: &str) -> Result<TokenHash, JoinError> {
    let random = token.strip_prefix(JOIN_TOKEN_PREFIX).ok_or(JoinError::MalformedToken)?;
    let well_formed = random.len() == TOKEN_RANDOM_CHARS
        && URL_SAFE_NO_PAD.decode(random).is_ok_and(|bytes| bytes.len() == 32);
    if !well_formed {
        return Err(JoinError::MalformedToken);
    }
    Ok(secrets::hash_token(token))
}

/// The bytes the proof covers: a domain tag, then every field but the proof, each with its length.
fn proof_message(lookup: &[u8; 32], nonce: &[u8; REQUEST_NONCE_BYTES], node: &JoiningNode) -> Vec<u8> {
    let mut message = Vec::with_capacity(256);
    let fields: [&[u8]; 7] = [
        PROOF_DOMAIN,
        lookup,
        nonce,
        &node.node_id.to_be_bytes(),
        node.name.as_bytes(),
        node.http_addr.as_bytes(),
        node.rpc_addr.as_bytes(),
    ];
    for field in fields {
        message.extend_from_slice(&(field.len() as u32).to_be_bytes());
        message.extend_from_slice(field);
    }
    message
}

fn decode_hex<const N: usize>(field: &str, text: &str) -> Result<[u8; N], JoinError> {
    let mut bytes = [0u8; N];
    hex::decode_to_slice(text, &mut bytes)
        .map_err(|_| JoinError::Malformed(format!("{field} must be {} hex digits", N * 2)))?;
    Ok(bytes)
}

/// 32 fresh random bytes for a request.
pub fn fresh_request_nonce() -> Result<[u8; REQUEST_NONCE_BYTES], JoinError> {
    random_bytes()
}

/// 12 fresh random bytes for a reply's seal.
pub fn fresh_seal_nonce() -> Result<[u8; SEAL_NONCE_BYTES], JoinError> {
    random_bytes()
}

fn random_bytes<const N: usize>() -> Result<[u8; N], JoinError> {
    let mut bytes = [0u8; N];
    rand::TryRngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut bytes)
        .map_err(|error| JoinError::Randomness(error.to_string()))?;
    Ok(bytes)
}

impl JoinRequest {
    /// The request for `node` with `token`, and the key that opens the reply.
    pub fn new(
        token: &str,
        node: &JoiningNode,
        nonce: [u8; REQUEST_NONCE_BYTES],
    ) -> Result<(JoinRequest, JoinKey), JoinError> {
        let hash = token_hash(token)?;
        let lookup = lookup_of(&hash);
        let key = JoinKey::derive(&hash, &nonce);
        let mut mac = key.mac();
        mac.update(&proof_message(&lookup, &nonce, node));
        let request = JoinRequest {
            lookup: hex::encode(lookup),
            nonce: hex::encode(nonce),
            node_id: node.node_id,
            name: node.name.clone(),
            http_addr: node.http_addr.clone(),
            rpc_addr: node.rpc_addr.clone(),
            proof: hex::encode(mac.finalize().into_bytes()),
        };
        request.validate()?;
        Ok((request, key))
    }

    /// The token's index, after checking every field's shape and bounds.
    pub fn lookup(&self) -> Result<TokenHash, JoinError> {
        self.validate()?;
        decode_hex("lookup", &self.lookup)
    }

    fn validate(&self) -> Result<(), JoinError> {
        let malformed = |problem: &str| Err(JoinError::Malformed(problem.to_owned()));
        if self.node_id == 0 || self.node_id > MAX_NODE_ID {
            return malformed("node_id must be between 1 and 2^53 - 1");
        }
        if self.name.chars().count() > MAX_NAME_CHARS || self.name.chars().any(char::is_control) {
            return malformed("name must be at most 128 characters, without control characters");
        }
        for (field, addr) in [("http_addr", &self.http_addr), ("rpc_addr", &self.rpc_addr)] {
            if addr.is_empty()
                || addr.len() > MAX_ADDR_CHARS
                || addr.chars().any(|c| c.is_control() || c.is_whitespace())
            {
                return Err(JoinError::Malformed(format!(
                    "{field} must be a host:port of at most {MAX_ADDR_CHARS} characters"
                )));
            }
        }
        decode_hex::<32>("lookup", &self.lookup)?;
        decode_hex::<REQUEST_NONCE_BYTES>("nonce", &self.nonce)?;
        decode_hex::<32>("proof", &self.proof)?;
        Ok(())
    }

    pub fn node(&self) -> JoiningNode {
        JoiningNode {
            node_id: self.node_id,
            name: self.name.clone(),
            http_addr: self.http_addr.clone(),
            rpc_addr: self.rpc_addr.clone(),
        }
    }

    /// Checks the proof against `H` (constant time) and returns the key to seal the reply with.
    pub fn verify(&self, token_hash: &TokenHash) -> Result<JoinKey, JoinError> {
        let lookup = self.lookup()?;
        let nonce = decode_hex::<REQUEST_NONCE_BYTES>("nonce", &self.nonce)?;
        let proof = decode_hex::<32>("proof", &self.proof)?;
        let key = JoinKey::derive(token_hash, &nonce);
        let mut mac = key.mac();
        mac.update(&proof_message(&lookup, &nonce, &self.node()));
        mac.verify_slice(&proof).map_err(|_| JoinError::BadProof)?;
        Ok(key)
    }
}

/// The reply to node `node_id`: `bundle` sealed under `key` with `nonce`.
pub fn seal_bundle(
    key: &JoinKey,
    node_id: u64,
    bundle: &JoinBundle,
    nonce: [u8; SEAL_NONCE_BYTES],
) -> Result<JoinResponse, JoinError> {
    let plaintext = serde_json::to_vec(bundle).map_err(|error| JoinError::Malformed(error.to_string()))?;
    let associated = node_id.to_be_bytes();
    let sealed = key
        .cipher()
        .encrypt(chacha20poly1305::Nonce::from_slice(&nonce), Payload { msg: &plaintext, aad: &associated })
        .map_err(|_| JoinError::Malformed("the bundle cannot be sealed".to_owned()))?;
    Ok(JoinResponse { nonce: hex::encode(nonce), sealed: STANDARD.encode(sealed) })
}

/// Opens the reply to node `node_id` with the key its request was made with.
pub fn open_bundle(key: &JoinKey, node_id: u64, response: &JoinResponse) -> Result<JoinBundle, JoinError> {
    let nonce = decode_hex::<SEAL_NONCE_BYTES>("nonce", &response.nonce)?;
    let sealed = STANDARD.decode(&response.sealed).map_err(|_| JoinError::CannotOpen)?;
    let associated = node_id.to_be_bytes();
    let plaintext = key
        .cipher()
        .decrypt(chacha20poly1305::Nonce::from_slice(&nonce), Payload { msg: &sealed, aad: &associated })
        .map_err(|_| JoinError::CannotOpen)?;
    serde_json::from_slice(&plaintext).map_err(|_| JoinError::CannotOpen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::join_tokens::JoinTokens;
    use crate::model::UnixMillis;

    fn node(id: u64) -> JoiningNode {
        JoiningNode {
            node_id: id,
            name: "node-b".into(),
            http_addr: "10.0.0.2:8080".into(),
            rpc_addr: "10.0.0.2:8081".into(),
        }
    }

    fn minted() -> String {
        secrets::mint_token(JOIN_TOKEN_PREFIX).expect("mint").token
    }

    /// Every way the secret could show in text or bytes: raw, hex (both cases), base64 (standard
    /// and URL-safe, padded or not).
    fn encodings(secret: &[u8]) -> Vec<Vec<u8>> {
        use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE};
        vec![
            secret.to_vec(),
            hex::encode(secret).into_bytes(),
            hex::encode_upper(secret).into_bytes(),
            STANDARD.encode(secret).into_bytes(),
            STANDARD_NO_PAD.encode(secret).into_bytes(),
            URL_SAFE.encode(secret).into_bytes(),
            URL_SAFE_NO_PAD.encode(secret).into_bytes(),
        ]
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|window| window == needle)
    }

    /// The exchange as it goes on the wire (both JSON bodies) shows neither the data key nor the
    /// token, nor `H` or `K` (from which the reply could be opened), in any encoding; the joining
    /// node still gets the bundle out of it.
    #[test]
    fn a_captured_exchange_reveals_neither_the_data_key_nor_the_token() {
        let token = minted();
        let data_key = crate::secrets::DataKey::from_bytes(&[0x5a; 32]).expect("key");
        let key_bytes = STANDARD.decode(data_key.to_base64()).expect("base64");
        let (request, joiner_key) =
            JoinRequest::new(&token, &node(42), fresh_request_nonce().expect("nonce")).expect("request");
        let request_bytes = serde_json::to_vec(&request).expect("json");

        // The member's side, from the request bytes alone and the stored H.
        let received: JoinRequest = serde_json::from_slice(&request_bytes).expect("parse");
        let stored_hash = secrets::hash_token(&token);
        assert_eq!(received.lookup().expect("lookup"), lookup_of(&stored_hash));
        let member_key = received.verify(&stored_hash).expect("proof verifies");
        let bundle =
            JoinBundle { cluster_id: "clu_0123456789abcdef0123".into(), data_key: data_key.to_base64() };
        let response =
            seal_bundle(&member_key, received.node_id, &bundle, fresh_seal_nonce().expect("nonce"))
                .expect("seal");
        let response_bytes = serde_json::to_vec(&response).expect("json");

        let wire = [request_bytes.as_slice(), response_bytes.as_slice()].concat();
        let token_random = URL_SAFE_NO_PAD.decode(&token[JOIN_TOKEN_PREFIX.len()..]).expect("token bytes");
        let secrets: [(&str, &[u8]); 5] = [
            ("data key", &key_bytes),
            ("token", token.as_bytes()),
            ("token's random bytes", &token_random),
            ("H", &stored_hash),
            ("K", &member_key.0),
        ];
        for (name, secret) in secrets {
            for encoded in encodings(secret) {
                assert!(
                    !contains(&wire, &encoded),
                    "{name} appears on the wire as {:?}",
                    String::from_utf8_lossy(&encoded)
                );
            }
        }
        assert!(!contains(&wire, data_key.to_base64().as_bytes()));

        let response: JoinResponse = serde_json::from_slice(&response_bytes).expect("parse");
        assert_eq!(open_bundle(&joiner_key, 42, &response).expect("open"), bundle);
    }

    #[test]
    fn a_wrong_token_or_a_changed_field_fails_the_proof() {
        let token = minted();
        let (request, _) = JoinRequest::new(&token, &node(42), [1; 32]).expect("request");
        let other_hash = secrets::hash_token(&minted());
        assert!(matches!(request.verify(&other_hash), Err(JoinError::BadProof)));

        let hash = secrets::hash_token(&token);
        request.verify(&hash).expect("the right token verifies");
        for tampered in [
            JoinRequest { node_id: 43, ..request.clone() },
            JoinRequest { name: "node-c".into(), ..request.clone() },
            JoinRequest { http_addr: "10.0.0.9:8080".into(), ..request.clone() },
            JoinRequest { rpc_addr: "10.0.0.9:8081".into(), ..request.clone() },
            JoinRequest { nonce: hex::encode([2; 32]), ..request.clone() },
            JoinRequest { proof: hex::encode([0; 32]), ..request.clone() },
        ] {
            assert!(matches!(tampered.verify(&hash), Err(JoinError::BadProof)), "{tampered:?}");
        }
    }

    #[test]
    fn a_reply_opens_only_for_its_node_and_key() {
        let token = minted();
        let (request, key) = JoinRequest::new(&token, &node(42), [3; 32]).expect("request");
        let bundle = JoinBundle { cluster_id: "clu_x".into(), data_key: STANDARD.encode([9; 32]) };
        let response = seal_bundle(&key, 42, &bundle, [4; 12]).expect("seal");
        assert!(matches!(open_bundle(&key, 43, &response), Err(JoinError::CannotOpen)));
        let (_, other_key) = JoinRequest::new(&token, &node(42), [5; 32]).expect("request");
        assert!(matches!(open_bundle(&other_key, 42, &response), Err(JoinError::CannotOpen)));
        let mut flipped = STANDARD.decode(&response.sealed).expect("base64");
        flipped[0] ^= 1;
        let damaged = JoinResponse { sealed: STANDARD.encode(flipped), ..response.clone() };
        assert!(matches!(open_bundle(&key, 42, &damaged), Err(JoinError::CannotOpen)));
        assert_eq!(open_bundle(&key, request.node_id, &response).expect("open"), bundle);
    }

    /// A request replayed word for word after its single-use token was taken verifies (the proof is
    /// right) but the token table refuses it, and an expired token is refused the same way.
    #[test]
    fn a_replayed_request_after_the_token_is_used_up_and_an_expired_token_are_refused() {
        let token = minted();
        let hash = secrets::hash_token(&token);
        let mut tokens = JoinTokens::default();
        let created = UnixMillis(1_000);
        tokens.create("jt_1", &hash, 1, UnixMillis(61_000), created).expect("create");
        let (request, _) = JoinRequest::new(&token, &node(42), [6; 32]).expect("request");
        let lookup = request.lookup().expect("lookup");

        tokens.consume(&lookup, UnixMillis(2_000)).expect("first join");
        let replay: JoinRequest =
            serde_json::from_slice(&serde_json::to_vec(&request).expect("json")).expect("parse");
        replay.verify(&hash).expect("the captured proof is still well-formed");
        let refused =
            tokens.consume(&replay.lookup().expect("lookup"), UnixMillis(3_000)).expect_err("replay");
        assert!(refused.to_string().contains("used up"), "{refused}");

        let fresh = minted();
        let fresh_hash = secrets::hash_token(&fresh);
        tokens.create("jt_2", &fresh_hash, 1, UnixMillis(61_000), created).expect("create");
        let (late, _) = JoinRequest::new(&fresh, &node(43), [7; 32]).expect("request");
        let expired =
            tokens.consume(&late.lookup().expect("lookup"), UnixMillis(61_000)).expect_err("expired");
        assert!(expired.to_string().contains("expired"), "{expired}");
    }

    #[test]
    fn malformed_tokens_and_requests_are_refused() {
        for bad in [
            "",
            "lmjt_",
            "lmct_AAAA",
            &format!("lmjt_{}", "A".repeat(42)),
            &format!("lmjt_{}!", "A".repeat(42)),
        ] {
            assert!(matches!(token_hash(bad), Err(JoinError::MalformedToken)), "{bad:?}");
        }
        let (request, _) = JoinRequest::new(&minted(), &node(42), [8; 32]).expect("request");
        for bad in [
            JoinRequest { node_id: 0, ..request.clone() },
            JoinRequest { node_id: 1 << 53, ..request.clone() },
            JoinRequest { lookup: "zz".into(), ..request.clone() },
            JoinRequest { http_addr: String::new(), ..request.clone() },
            JoinRequest { rpc_addr: "a b:1".into(), ..request.clone() },
            JoinRequest { name: "x".repeat(129), ..request.clone() },
            JoinRequest { name: "a\u{7}".into(), ..request.clone() },
        ] {
            assert!(matches!(bad.lookup(), Err(JoinError::Malformed(_))), "{bad:?}");
        }
        let unknown = serde_json::json!({ "lookup": request.lookup, "extra": 1 });
        assert!(serde_json::from_value::<JoinRequest>(unknown).is_err());
    }
}
