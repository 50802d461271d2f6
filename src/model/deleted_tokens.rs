//! The current tokens of the most recently deleted collectors. A deletion returns once the collector's
//! owner applied it or the owner's lease ran out, so until then the owner may still accept the token;
//! an edge that applied the deletion first must not refuse that token on its own (a collector would see
//! it refused, then accepted: not linearizable). The edge looks the token up here and forwards the
//! call to the owner, whose replica decides (`http/collector_auth.rs`). Bounded: the window this covers
//! is one lease, and [`CAPACITY`] deletions take far longer than that.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::{parse_token_hash, TokenHash};

/// Deleted collectors remembered, oldest forgotten first.
pub const CAPACITY: usize = 4096;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DeletedTokens {
    /// (hex SHA-256 of the token, collector id), oldest first.
    entries: VecDeque<(String, String)>,
    #[serde(skip)]
    index: HashMap<TokenHash, String>,
}

impl DeletedTokens {
    pub fn remember(&mut self, token_hash: TokenHash, collector_id: &str) {
        if self.entries.len() == CAPACITY {
            if let Some((oldest, _)) = self.entries.pop_front() {
                if let Some(hash) = parse_token_hash(&oldest) {
                    self.index.remove(&hash);
                }
            }
        }
        self.entries.push_back((hex::encode(token_hash), collector_id.to_owned()));
        self.index.insert(token_hash, collector_id.to_owned());
    }

    /// The deleted collector whose current token this was.
    pub fn collector_of(&self, token_hash: &TokenHash) -> Option<&str> {
        self.index.get(token_hash).map(String::as_str)
    }

    /// Rebuilds the index after a snapshot loaded.
    pub fn rebuild_index(&mut self) {
        self.index = self
            .entries
            .iter()
            .filter_map(|(hash, id)| Some((parse_token_hash(hash)?, id.clone())))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_newest_and_forgets_the_oldest_beyond_capacity() {
        let mut deleted = DeletedTokens::default();
        for n in 0..=CAPACITY {
            let mut hash = [0u8; 32];
            hash[..8].copy_from_slice(&(n as u64).to_le_bytes());
            deleted.remember(hash, &format!("c{n}"));
        }
        assert_eq!(deleted.collector_of(&[0u8; 32]), None, "the oldest is forgotten");
        let mut newest = [0u8; 32];
        newest[..8].copy_from_slice(&(CAPACITY as u64).to_le_bytes());
        assert_eq!(deleted.collector_of(&newest), Some(format!("c{CAPACITY}").as_str()));
        let mut reloaded: DeletedTokens =
            serde_json::from_str(&serde_json::to_string(&deleted).expect("serializes")).expect("parses");
        reloaded.rebuild_index();
        assert_eq!(reloaded, deleted);
        assert_eq!(reloaded.collector_of(&newest), deleted.collector_of(&newest));
    }
}
