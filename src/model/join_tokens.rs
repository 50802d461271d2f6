//! Join tokens (`lmjt_…`): who may add a node to the cluster (`docs/adr/0004`).
//!
//! Only hashes are kept. `H = SHA-256(token)` is the key material the join exchange derives its key
//! from; `lookup = SHA-256(H)` is what a joining node sends in the clear, and the index. The token
//! itself is shown once, by the call that created it.
//!
//! Invariants: a token is used at most `uses` times and never at or after `expires_at` (both judged
//! at the `at` of the command, chosen by the proposer); a refused command changes nothing; expired
//! tokens are dropped by the next creation or use, so the table stays bounded by what is live.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{TokenHash, UnixMillis};

/// `ttl_seconds` when the caller gives none, and its bounds.
pub const DEFAULT_TTL_SECONDS: u64 = 3600;
pub const MAX_TTL_SECONDS: u64 = 7 * 24 * 3600;
/// `uses` when the caller gives none, and its bound.
pub const DEFAULT_USES: u32 = 1;
pub const MAX_USES: u32 = 100;
/// Live tokens at most: every one is a way in, and the table is replicated state.
pub const MAX_LIVE_TOKENS: usize = 1000;

/// One join token, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JoinToken {
    pub id: String,
    /// `H`: SHA-256 of the token.
    #[serde(with = "super::auth::hex_hash")]
    pub token_hash: TokenHash,
    /// How many joins it allowed when created.
    pub uses: u32,
    pub uses_left: u32,
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
}

/// Why a join token does not let a node in. The messages are what the joining node's operator reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinTokenRefusal {
    #[error(
        "the join token is not known to this cluster (mistyped, minted by another cluster, or expired and \
         removed); create a new one with `linkmesh cluster join-token`"
    )]
    Unknown,
    #[error("the join token expired at {expired_at}; create a new one with `linkmesh cluster join-token`")]
    Expired { expired_at: String },
    #[error(
        "the join token is used up (it allowed {uses} join(s)); create a new one with `linkmesh cluster \
         join-token`"
    )]
    UsedUp { uses: u32 },
}

/// Why a join-token command is rejected (`FleetState::apply` turns it into an `ApplyError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinTokenError {
    #[error(transparent)]
    Refused(#[from] JoinTokenRefusal),
    #[error("{field}: {problem}")]
    Invalid { field: &'static str, problem: String },
    #[error("join token {0:?} already exists")]
    AlreadyExists(String),
    #[error("{MAX_LIVE_TOKENS} join tokens are live; wait for some to expire")]
    Full,
}

/// `lookup = SHA-256(H)`: the index a joining node names its token by without revealing `H`.
pub fn lookup_of(token_hash: &TokenHash) -> TokenHash {
    Sha256::digest(token_hash).into()
}

/// The live join tokens, keyed by the hex of their lookup.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JoinTokens {
    by_lookup: BTreeMap<String, JoinToken>,
}

impl JoinTokens {
    pub fn len(&self) -> usize {
        self.by_lookup.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_lookup.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &JoinToken> {
        self.by_lookup.values()
    }

    /// Adds a token; refused (nothing changes) for a bad lifetime or use count, a reused id or hash,
    /// or a full table.
    pub fn create(
        &mut self,
        id: &str,
        token_hash: &TokenHash,
        uses: u32,
        expires_at: UnixMillis,
        at: UnixMillis,
    ) -> Result<(), JoinTokenError> {
        if uses == 0 || uses > MAX_USES {
            return Err(JoinTokenError::Invalid {
                field: "uses",
                problem: format!("must be between 1 and {MAX_USES}"),
            });
        }
        if expires_at <= at {
            return Err(JoinTokenError::Invalid {
                field: "ttl_seconds",
                problem: "must be at least 1".into(),
            });
        }
        let lookup = hex::encode(lookup_of(token_hash));
        if self.by_lookup.contains_key(&lookup) || self.by_lookup.values().any(|token| token.id == id) {
            return Err(JoinTokenError::AlreadyExists(id.to_owned()));
        }
        let live = self.by_lookup.values().filter(|token| token.expires_at > at).count();
        if live >= MAX_LIVE_TOKENS {
            return Err(JoinTokenError::Full);
        }
        self.prune(at);
        self.by_lookup.insert(
            lookup,
            JoinToken {
                id: id.to_owned(),
                token_hash: *token_hash,
                uses,
                uses_left: uses,
                created_at: at,
                expires_at,
            },
        );
        Ok(())
    }

    /// The token named by `lookup`, live or not.
    pub fn get(&self, lookup: &TokenHash) -> Option<&JoinToken> {
        self.by_lookup.get(&hex::encode(lookup))
    }

    /// The token named by `lookup`, if it still lets a node in at `at`.
    pub fn check(&self, lookup: &TokenHash, at: UnixMillis) -> Result<&JoinToken, JoinTokenRefusal> {
        let token = self.by_lookup.get(&hex::encode(lookup)).ok_or(JoinTokenRefusal::Unknown)?;
        if token.expires_at <= at {
            return Err(JoinTokenRefusal::Expired { expired_at: token.expires_at.to_rfc3339() });
        }
        if token.uses_left == 0 {
            return Err(JoinTokenRefusal::UsedUp { uses: token.uses });
        }
        Ok(token)
    }

    /// Takes one use of the token named by `lookup`; refused (nothing changes) when it is unknown,
    /// expired or used up. A used-up token is kept until it expires, so a replay is told so.
    pub fn consume(&mut self, lookup: &TokenHash, at: UnixMillis) -> Result<(), JoinTokenError> {
        self.check(lookup, at)?;
        self.prune(at);
        if let Some(token) = self.by_lookup.get_mut(&hex::encode(lookup)) {
            token.uses_left -= 1;
        }
        Ok(())
    }

    fn prune(&mut self, at: UnixMillis) {
        self.by_lookup.retain(|_, token| token.expires_at > at);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const T0: UnixMillis = UnixMillis(1_000_000);

    fn at(seconds: u64) -> UnixMillis {
        T0.plus(Duration::from_secs(seconds))
    }

    fn with_token(hash: u8, uses: u32, ttl: u64) -> JoinTokens {
        let mut tokens = JoinTokens::default();
        tokens.create(&format!("jt_{hash}"), &[hash; 32], uses, at(ttl), T0).expect("create");
        tokens
    }

    #[test]
    fn a_single_use_token_lets_one_node_in_and_then_says_it_is_used_up() {
        let mut tokens = with_token(1, 1, 60);
        let lookup = lookup_of(&[1; 32]);
        tokens.consume(&lookup, at(1)).expect("first use");
        let before = tokens.clone();
        let refused = tokens.consume(&lookup, at(2)).expect_err("second use");
        assert!(refused.to_string().contains("used up"), "{refused}");
        assert_eq!(tokens, before, "a refusal changes nothing");
    }

    #[test]
    fn an_expired_token_is_refused_unchanged_and_pruned_by_the_next_write() {
        let mut tokens = with_token(1, 3, 60);
        let lookup = lookup_of(&[1; 32]);
        let before = tokens.clone();
        let refused = tokens.consume(&lookup, at(60)).expect_err("expired at its expiry");
        assert!(refused.to_string().contains("expired"), "{refused}");
        assert_eq!(tokens, before);
        tokens.create("jt_2", &[2; 32], 1, at(200), at(61)).expect("create another");
        assert_eq!(tokens.len(), 1, "the expired one is gone");
        assert_eq!(tokens.check(&lookup, at(61)).expect_err("gone"), JoinTokenRefusal::Unknown);
    }

    #[test]
    fn unknown_tokens_and_bad_bounds_are_refused_without_change() {
        let mut tokens = with_token(1, 2, 60);
        let before = tokens.clone();
        assert!(tokens
            .consume(&lookup_of(&[9; 32]), at(1))
            .expect_err("unknown")
            .to_string()
            .contains("not known"));
        // The lookup is not the hash: a node that sends H itself is not let in.
        assert!(tokens.consume(&[1; 32], at(1)).is_err());
        assert!(tokens.create("jt_x", &[3; 32], 0, at(60), T0).is_err());
        assert!(tokens.create("jt_x", &[3; 32], MAX_USES + 1, at(60), T0).is_err());
        assert!(tokens.create("jt_x", &[3; 32], 1, T0, T0).is_err());
        assert!(tokens.create("jt_1", &[3; 32], 1, at(60), T0).is_err(), "reused id");
        assert!(tokens.create("jt_y", &[1; 32], 1, at(60), T0).is_err(), "reused hash");
        assert_eq!(tokens, before);
    }

    #[test]
    fn a_token_with_several_uses_counts_them_down() {
        let mut tokens = with_token(4, 3, 60);
        let lookup = lookup_of(&[4; 32]);
        for second in 1..=3 {
            tokens.consume(&lookup, at(second)).expect("use");
        }
        assert_eq!(tokens.check(&lookup, at(4)).expect_err("used up"), JoinTokenRefusal::UsedUp { uses: 3 });
    }
}
