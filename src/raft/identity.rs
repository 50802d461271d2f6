//! The identity record: `<data-dir>/identity.json` names the store, `<data-dir>/durable-facts` holds
//! what it may never go back on. Both are kept outside the log store: sled recovers silently to its last
//! intact segment, so only a record outside it can tell that the store came back with less than it
//! acknowledged; `verify` compares the two at every start.
//!
//! `identity.json` holds the cluster id and node id (generated at bootstrap), the store format and a
//! fingerprint of the data key. It changes only at bootstrap, adoption and format changes, and is then
//! replaced atomically (write a temporary file, fsync, rename, fsync the directory); it carries a CRC-32
//! of its body. Store formats 1 and 2 kept the facts in it too; format 3 moved them to
//! [`super::facts`], whose slots are overwritten in place at every log flush.
//!
//! Invariants: every fact is a lower bound of what the store holds durably. A fact is raised only after
//! the data it describes is flushed (the log store raises and writes it in the same blocking step as
//! its own flush, after it and before openraft hears the append is durable, see [`super::durable`]);
//! the last log id is lowered *before* Raft truncates an uncommitted tail.

use std::io::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::types::{LogId, Vote};

pub const RECORD_FILE: &str = "identity.json";
pub const RECORD_TEMP_FILE: &str = "identity.json.tmp";

/// Store format of data dirs written before identity records and checksummed values. Adopted once.
pub const LEGACY_STORE_FORMAT: u32 = 1;
/// The last store format whose record keeps the facts inline, in `identity.json`.
pub const INLINE_FACTS_FORMAT: u32 = 2;
/// Bump on any change to how the store is laid out, and teach [`super::data_dir`] to migrate.
/// 3: the facts live in [`super::facts::FACTS_FILE`].
/// 4: the snapshot's data lives in a file of [`super::snapshot_file::SNAPSHOT_DIR`], sled keeps its
/// metadata and the file's name, length and CRC-32.
pub const STORE_FORMAT: u32 = 4;
/// The last store format that keeps the snapshot's data inline, in sled.
pub const INLINE_SNAPSHOT_FORMAT: u32 = 3;

/// Node ids stay below 2^53 so that JSON readers that use doubles (browsers) keep them exact.
const NODE_ID_BITS: u32 = 53;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    pub cluster_id: String,
    pub node_id: u64,
}

impl Identity {
    pub fn generate() -> Result<Identity, RecordError> {
        let randomness = |error: String| RecordError::Randomness(error);
        let cluster_id = crate::secrets::random_id("clu").map_err(|error| randomness(error.to_string()))?;
        let mut node_id = 0;
        while node_id == 0 {
            let mut bytes = [0u8; 8];
            rand::TryRngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut bytes)
                .map_err(|error| randomness(error.to_string()))?;
            node_id = u64::from_le_bytes(bytes) >> (64 - NODE_ID_BITS);
        }
        Ok(Identity { cluster_id, node_id })
    }
}

/// What the store held durably when the record was written; each one a lower bound.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DurableFacts {
    pub vote: Option<Vote>,
    pub last_log_id: Option<LogId>,
    pub committed: Option<LogId>,
    pub applied: Option<LogId>,
    pub snapshot: Option<LogId>,
}

impl DurableFacts {
    /// Nothing was ever made durable, so nothing can have been acknowledged (an interrupted first start).
    pub fn is_empty(&self) -> bool {
        self == &DurableFacts::default()
    }

    /// The furthest log id the facts say the store must reach.
    pub fn required_end(&self) -> Option<LogId> {
        [self.last_log_id, self.committed, self.applied, self.snapshot].into_iter().flatten().max()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityRecord {
    pub store_format: u32,
    pub identity: Identity,
    /// [`crate::secrets::DataKey::fingerprint`] of the key the store's credentials are sealed with.
    pub data_key_fingerprint: String,
    /// The facts, in store formats up to [`INLINE_FACTS_FORMAT`]; from format 3 on they are in
    /// [`super::facts::FACTS_FILE`] and this is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<DurableFacts>,
    /// The node joined an existing cluster (`--join`): its store is never initialized as a new
    /// cluster, not even after a first start that stopped before the leader reached it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub joined: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{RECORD_FILE} {0}")]
    Damaged(String),
    #[error("the operating system's random number generator failed: {0}")]
    Randomness(String),
}

impl IdentityRecord {
    /// The record of `data_dir`, or `None` when there is none.
    pub fn read(data_dir: &Path) -> Result<Option<IdentityRecord>, RecordError> {
        let path = data_dir.join(RECORD_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(RecordError::Io { path: path.display().to_string(), source }),
        };
        IdentityRecord::decode(&bytes).map(Some)
    }

    /// `<json body>\ncrc32 <8 hex digits>\n`: readable by people, checked by the machine.
    fn encode(&self) -> Vec<u8> {
        let body = serde_json::to_string(self).unwrap_or_default();
        format!("{body}\ncrc32 {:08x}\n", crc32fast::hash(body.as_bytes())).into_bytes()
    }

    fn decode(bytes: &[u8]) -> Result<IdentityRecord, RecordError> {
        let damaged = |what: &str| RecordError::Damaged(what.to_owned());
        let text = std::str::from_utf8(bytes).map_err(|_| damaged("is not text"))?;
        let mut lines = text.lines();
        let body = lines.next().ok_or_else(|| damaged("is empty"))?;
        let stored = lines
            .next()
            .and_then(|line| line.strip_prefix("crc32 "))
            .and_then(|hex| u32::from_str_radix(hex, 16).ok())
            .ok_or_else(|| damaged("has no checksum line"))?;
        if stored != crc32fast::hash(body.as_bytes()) || lines.next().is_some() {
            return Err(damaged("fails its checksum"));
        }
        serde_json::from_str(body).map_err(|error| RecordError::Damaged(format!("cannot be parsed: {error}")))
    }

    /// Replaces the record atomically: temporary file, fsync, rename, fsync of the directory.
    pub fn write(&self, data_dir: &Path) -> std::io::Result<()> {
        let temp = data_dir.join(RECORD_TEMP_FILE);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&temp)?;
        file.write_all(&self.encode())?;
        file.sync_data()?;
        drop(file);
        std::fs::rename(&temp, data_dir.join(RECORD_FILE))?;
        std::fs::File::open(data_dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_id(term: u64, index: u64) -> LogId {
        openraft::LogId::new(openraft::CommittedLeaderId::new(term, 1), index)
    }

    fn record() -> IdentityRecord {
        IdentityRecord {
            store_format: STORE_FORMAT,
            identity: Identity { cluster_id: "clu_x".into(), node_id: 7 },
            data_key_fingerprint: "ab".into(),
            facts: None,
            joined: false,
        }
    }

    #[test]
    fn the_record_round_trips_and_any_damage_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let written = record();
        written.write(dir.path()).expect("write");
        assert_eq!(IdentityRecord::read(dir.path()).expect("read"), Some(written.clone()));
        assert!(!dir.path().join(RECORD_TEMP_FILE).exists());
        assert!(!std::fs::read_to_string(dir.path().join(RECORD_FILE)).expect("text").contains("facts"));

        let bytes = std::fs::read(dir.path().join(RECORD_FILE)).expect("bytes");
        for position in 0..bytes.len() - 1 {
            let mut damaged = bytes.clone();
            damaged[position] ^= 0x04;
            assert!(IdentityRecord::decode(&damaged).is_err(), "flip at {position} accepted");
        }
        assert!(IdentityRecord::decode(&bytes[..bytes.len() / 2]).is_err());
        assert!(IdentityRecord::read(&dir.path().join("absent")).expect("absent").is_none());
    }

    #[test]
    fn a_record_of_store_format_2_keeps_its_inline_facts() {
        let dir = tempfile::tempdir().expect("dir");
        let facts = DurableFacts { last_log_id: Some(log_id(2, 40)), ..DurableFacts::default() };
        let old = IdentityRecord { store_format: INLINE_FACTS_FORMAT, facts: Some(facts), ..record() };
        old.write(dir.path()).expect("write");
        assert_eq!(IdentityRecord::read(dir.path()).expect("read"), Some(old));
    }

    #[test]
    fn generated_node_ids_are_exact_in_json_numbers() {
        for _ in 0..64 {
            let identity = Identity::generate().expect("generate");
            assert!(identity.node_id > 0 && identity.node_id < (1 << NODE_ID_BITS));
            assert!(identity.cluster_id.starts_with("clu_"));
        }
    }
}
