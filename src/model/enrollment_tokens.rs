//! OpAMP enrollment tokens (`lmet_…`): how an OpenTelemetry Collector's agent gets a collector in
//! linkmesh without an operator creating one for it first (`docs/adr/0010`).
//!
//! Only SHA-256 of the token is kept; the token is shown once, by the call that created it. A token
//! has two jobs, with different ends:
//!
//! - **Enrolling** an agent linkmesh does not know yet (a new collector, or an existing enrolled one
//!   bound to another token) takes one use and is refused at or after `expires_at`, or once `uses`
//!   enrollments happened.
//! - **Authenticating** the agents it enrolled: agents that never accept new credentials (the
//!   supervisor by default, the Python and Node clients) keep sending it. That ends only with its
//!   revocation, never with its expiry: a fleet of supervisors must not all lose their server at the
//!   end of a TTL chosen for enrolling.
//!
//! Invariants: a refused command changes nothing; a revoked token is kept (so a late agent is told it
//! was revoked) until [`REVOKED_KEPT_FOR`] after its revocation, dropped by the next creation; the
//! table holds at most [`MAX_TOKENS`].

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::labels::Labels;
use super::{TokenHash, UnixMillis};

/// `ttl_seconds` when the caller gives none, and its bounds.
pub const DEFAULT_TTL_SECONDS: u64 = 24 * 3600;
pub const MAX_TTL_SECONDS: u64 = 365 * 24 * 3600;
/// `uses` bound (absent: any number of enrollments until it expires).
pub const MAX_USES: u32 = 1_000_000;
/// Tokens kept at most, revoked ones included: every live one is a way in, and the table is
/// replicated state.
pub const MAX_TOKENS: usize = 1000;
/// How long a revoked token is still listed (and its agents told it was revoked).
pub const REVOKED_KEPT_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

/// One enrollment token, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollmentToken {
    pub id: String,
    #[serde(with = "super::auth::hex_hash")]
    pub token_hash: TokenHash,
    /// The first characters of the token, safe to display.
    pub prefix: String,
    /// Enrollments allowed; `None`: any number until `expires_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<u32>,
    /// Enrollments so far.
    #[serde(default)]
    pub used: u32,
    /// Given to the collectors it creates.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
    pub created_at: UnixMillis,
    /// No enrollment at or after it (the agents it enrolled keep authenticating with it).
    pub expires_at: UnixMillis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<UnixMillis>,
}

impl EnrollmentToken {
    /// Whether it may enroll one more agent at `at`.
    pub fn check_enroll(&self, at: UnixMillis) -> Result<(), EnrollmentRefusal> {
        self.check_authenticates()?;
        if self.expires_at <= at {
            return Err(EnrollmentRefusal::Expired { expired_at: self.expires_at.to_rfc3339() });
        }
        if self.uses.is_some_and(|uses| self.used >= uses) {
            return Err(EnrollmentRefusal::UsedUp { uses: self.uses.unwrap_or_default() });
        }
        Ok(())
    }

    /// Whether it still authenticates the agents it enrolled.
    pub fn check_authenticates(&self) -> Result<(), EnrollmentRefusal> {
        match self.revoked_at {
            Some(at) => Err(EnrollmentRefusal::Revoked { revoked_at: at.to_rfc3339() }),
            None => Ok(()),
        }
    }
}

/// Why an enrollment token does not let an agent in. The messages are what the agent's operator reads
/// (in the agent's log, as the 401's message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnrollmentRefusal {
    #[error("the enrollment token was revoked at {revoked_at}; create a new one in linkmesh (Collectors → Enroll)")]
    Revoked { revoked_at: String },
    #[error(
        "the enrollment token expired at {expired_at}: it no longer enrolls new agents; create a new one in \
         linkmesh (Collectors → Enroll)"
    )]
    Expired { expired_at: String },
    #[error(
        "the enrollment token is used up (it allowed {uses} enrollment(s)); create a new one in linkmesh"
    )]
    UsedUp { uses: u32 },
}

/// Why an enrollment-token command is rejected (`FleetState::apply` turns it into an `ApplyError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnrollmentTokenError {
    #[error("{field}: {problem}")]
    Invalid { field: &'static str, problem: String },
    #[error("enrollment token {0:?} already exists")]
    AlreadyExists(String),
    #[error("enrollment token {0:?} does not exist")]
    NotFound(String),
    #[error("{MAX_TOKENS} enrollment tokens exist; revoke some first")]
    Full,
}

/// The enrollment tokens by id, and their hashes → id (derived, rebuilt after a snapshot loads).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EnrollmentTokens {
    by_id: BTreeMap<String, EnrollmentToken>,
    #[serde(skip)]
    by_hash: HashMap<TokenHash, String>,
}

impl EnrollmentTokens {
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &EnrollmentToken> {
        self.by_id.values()
    }

    pub fn get(&self, id: &str) -> Option<&EnrollmentToken> {
        self.by_id.get(id)
    }

    /// The token whose hash is `hash` (the caller compares the hashes in constant time).
    pub fn by_hash(&self, hash: &TokenHash) -> Option<&EnrollmentToken> {
        self.by_hash.get(hash).and_then(|id| self.by_id.get(id))
    }

    pub fn rebuild_index(&mut self) {
        self.by_hash = self.by_id.values().map(|token| (token.token_hash, token.id.clone())).collect();
    }

    /// Adds a token; refused (nothing changes) for bad bounds, a reused id or hash, or a full table.
    pub fn create(&mut self, token: EnrollmentToken, at: UnixMillis) -> Result<(), EnrollmentTokenError> {
        if token.uses.is_some_and(|uses| uses == 0 || uses > MAX_USES) {
            return Err(EnrollmentTokenError::Invalid {
                field: "uses",
                problem: format!("must be between 1 and {MAX_USES}"),
            });
        }
        if token.expires_at <= at {
            return Err(EnrollmentTokenError::Invalid {
                field: "ttl_seconds",
                problem: "must be at least 1".into(),
            });
        }
        if self.by_id.contains_key(&token.id) || self.by_hash.contains_key(&token.token_hash) {
            return Err(EnrollmentTokenError::AlreadyExists(token.id));
        }
        let kept_until = |revoked: UnixMillis| revoked.plus(REVOKED_KEPT_FOR);
        let live =
            self.by_id.values().filter(|old| old.revoked_at.is_none_or(|r| kept_until(r) > at)).count();
        if live >= MAX_TOKENS {
            return Err(EnrollmentTokenError::Full);
        }
        self.by_id.retain(|_, old| old.revoked_at.is_none_or(|revoked| kept_until(revoked) > at));
        self.rebuild_index();
        self.by_hash.insert(token.token_hash, token.id.clone());
        self.by_id.insert(token.id.clone(), token);
        Ok(())
    }

    /// Revokes a token: it stops authenticating when this applies. Revoking a revoked token changes
    /// nothing (a retried call succeeds).
    pub fn revoke(&mut self, id: &str, at: UnixMillis) -> Result<(), EnrollmentTokenError> {
        let token = self.by_id.get_mut(id).ok_or_else(|| EnrollmentTokenError::NotFound(id.to_owned()))?;
        token.revoked_at.get_or_insert(at);
        Ok(())
    }

    /// Takes one enrollment of token `id`; refused (nothing changes) when it is unknown, revoked,
    /// expired or used up.
    pub fn enroll(&mut self, id: &str, at: UnixMillis) -> Result<(), EnrollRefused> {
        let token = self.by_id.get_mut(id).ok_or_else(|| EnrollRefused::Unknown(id.to_owned()))?;
        token.check_enroll(at).map_err(EnrollRefused::Refused)?;
        token.used = token.used.saturating_add(1);
        Ok(())
    }
}

/// Why [`EnrollmentTokens::enroll`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnrollRefused {
    #[error("enrollment token {0:?} does not exist")]
    Unknown(String),
    #[error(transparent)]
    Refused(EnrollmentRefusal),
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: UnixMillis = UnixMillis(1_000_000);

    fn at(seconds: u64) -> UnixMillis {
        T0.plus(Duration::from_secs(seconds))
    }

    fn token(id: &str, byte: u8, uses: Option<u32>, ttl: u64) -> EnrollmentToken {
        EnrollmentToken {
            id: id.to_owned(),
            token_hash: [byte; 32],
            prefix: "lmet_abcdef".into(),
            uses,
            used: 0,
            labels: Labels::new(),
            created_at: T0,
            expires_at: at(ttl),
            revoked_at: None,
        }
    }

    #[test]
    fn a_single_use_token_enrolls_one_agent_and_keeps_authenticating_it() {
        let mut tokens = EnrollmentTokens::default();
        tokens.create(token("et_1", 1, Some(1), 60), T0).expect("create");
        tokens.enroll("et_1", at(1)).expect("first enrollment");
        let before = tokens.clone();
        let refused = tokens.enroll("et_1", at(2)).expect_err("second enrollment");
        assert!(refused.to_string().contains("used up"), "{refused}");
        assert_eq!(tokens, before, "a refusal changes nothing");
        let stored = tokens.by_hash(&[1; 32]).expect("found by hash");
        assert!(stored.check_authenticates().is_ok(), "the enrolled agent still gets in");
    }

    #[test]
    fn expiry_ends_enrollment_and_revocation_ends_everything() {
        let mut tokens = EnrollmentTokens::default();
        tokens.create(token("et_1", 1, None, 60), T0).expect("create");
        let refused = tokens.enroll("et_1", at(60)).expect_err("expired at its expiry");
        assert!(refused.to_string().contains("expired"), "{refused}");
        assert!(tokens.get("et_1").expect("kept").check_authenticates().is_ok());
        tokens.revoke("et_1", at(61)).expect("revoke");
        tokens.revoke("et_1", at(70)).expect("revoking again is no error");
        let revoked = tokens.get("et_1").expect("still listed");
        assert_eq!(revoked.revoked_at, Some(at(61)), "the first revocation's time stays");
        assert!(revoked.check_authenticates().expect_err("revoked").to_string().contains("revoked"));
    }

    #[test]
    fn revoked_tokens_are_dropped_a_week_later_by_the_next_creation() {
        let mut tokens = EnrollmentTokens::default();
        tokens.create(token("et_1", 1, None, 60), T0).expect("create");
        tokens.revoke("et_1", at(1)).expect("revoke");
        let week = REVOKED_KEPT_FOR.as_secs();
        tokens.create(token("et_2", 2, None, week + 100), at(week)).expect("create within the week");
        assert!(tokens.get("et_1").is_some());
        tokens.create(token("et_3", 3, None, week + 100), at(week + 2)).expect("create after it");
        assert!(tokens.get("et_1").is_none() && tokens.by_hash(&[1; 32]).is_none(), "dropped with its index");
    }

    #[test]
    fn bad_bounds_reused_ids_and_hashes_are_refused_without_change() {
        let mut tokens = EnrollmentTokens::default();
        tokens.create(token("et_1", 1, None, 60), T0).expect("create");
        let before = tokens.clone();
        assert!(tokens.create(token("et_x", 3, Some(0), 60), T0).is_err());
        assert!(tokens.create(token("et_x", 3, Some(MAX_USES + 1), 60), T0).is_err());
        assert!(tokens.create(token("et_x", 3, None, 0), T0).is_err());
        assert!(tokens.create(token("et_1", 3, None, 60), T0).is_err(), "reused id");
        assert!(tokens.create(token("et_y", 1, None, 60), T0).is_err(), "reused hash");
        assert!(tokens.revoke("et_404", T0).is_err());
        assert!(matches!(tokens.enroll("et_404", T0), Err(EnrollRefused::Unknown(_))));
        assert_eq!(tokens, before);
    }

    #[test]
    fn the_hash_index_is_rebuilt_after_a_round_trip() {
        let mut tokens = EnrollmentTokens::default();
        tokens.create(token("et_1", 1, Some(5), 60), T0).expect("create");
        let mut decoded: EnrollmentTokens =
            serde_json::from_str(&serde_json::to_string(&tokens).expect("encode")).expect("decode");
        assert!(decoded.by_hash(&[1; 32]).is_none(), "the index is not serialized");
        decoded.rebuild_index();
        assert_eq!(decoded, tokens);
        assert_eq!(decoded.by_hash(&[1; 32]).map(|token| token.id.as_str()), Some("et_1"));
    }
}
