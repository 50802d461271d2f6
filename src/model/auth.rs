//! Operators: users (password login), service accounts (`lmsat_` tokens), sessions, roles.

use serde::{Deserialize, Serialize};

use super::{TokenHash, UnixMillis};

/// What an operator may do. Ordered from most to least privileged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Operator,
    PipelineEngineer,
    Viewer,
}

impl Role {
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "admin" => Some(Role::Admin),
            "operator" => Some(Role::Operator),
            "pipeline_engineer" => Some(Role::PipelineEngineer),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::PipelineEngineer => "pipeline_engineer",
            Role::Viewer => "viewer",
        }
    }

    /// Collectors, their tokens, sources, routes and destinations.
    pub fn can_manage_collectors(self) -> bool {
        matches!(self, Role::Admin | Role::Operator)
    }

    /// Tenant-wide pipelines.
    pub fn can_manage_pipelines(self) -> bool {
        matches!(self, Role::Admin | Role::Operator | Role::PipelineEngineer)
    }

    /// Users and service accounts.
    pub fn can_manage_access(self) -> bool {
        matches!(self, Role::Admin)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub username: String,
    pub role: Role,
    /// argon2id PHC string.
    pub password_hash: String,
    pub created_at: UnixMillis,
    /// A disabled user cannot sign in and has no sessions; the account and its name stay.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
}

impl User {
    /// Admins that can still act: the last of them may not be disabled, demoted or deleted.
    pub fn is_enabled_admin(&self) -> bool {
        self.role == Role::Admin && !self.disabled
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub user_id: String,
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
    /// The client address that signed in, shown in the session list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_addr: Option<String>,
}

/// Characters of a session's key (the hex SHA-256 of its cookie) that name it in the API. A prefix of
/// the hash of a 256-bit secret reveals nothing about the cookie, and 64 bits never collide in practice.
pub const SESSION_ID_CHARS: usize = 16;

/// The public id of the session stored under `session_key`.
pub fn session_id(session_key: &str) -> &str {
    &session_key[..SESSION_ID_CHARS.min(session_key.len())]
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceAccount {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_at: UnixMillis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceAccountToken {
    pub id: String,
    pub service_account_id: String,
    pub label: String,
    #[serde(with = "hex_hash")]
    pub token_hash: TokenHash,
    /// The first characters of the token (`lmsat_` and six more), shown in lists to recognise it.
    #[serde(default)]
    pub prefix: String,
    pub created_at: UnixMillis,
    pub expires_at: Option<UnixMillis>,
    /// When the token last authenticated a request, at a granularity of
    /// `auth.token_last_used_interval` (written in batches, never per request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<UnixMillis>,
}

/// Serde for token hashes as lowercase hex (snapshots stay readable and compact).
pub mod hex_hash {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(hash: &[u8; 32], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(hash))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(deserializer)?;
        let mut hash = [0u8; 32];
        hex::decode_to_slice(&text, &mut hash).map_err(serde::de::Error::custom)?;
        Ok(hash)
    }
}
