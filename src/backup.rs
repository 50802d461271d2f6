//! Backups of a cluster's fleet: the document `GET /api/v1/backup` writes and `linkmesh backup` /
//! `linkmesh restore` read (contract, "Start-up and first login"; `docs/operations.md`, "Backup and
//! restore").
//!
//! One JSON document, versioned by `format` and `version`: the replicated [`FleetState`] as one
//! replica had applied it at `source.applied_index`, where it came from, when, and the data key the
//! fleet's destination credentials are sealed with, with the key's fingerprint as its checksum. The
//! key makes the file a secret: anyone holding it can open every sealed credential and compute the
//! source cluster's credential (ADR 0004).
//!
//! A document is accepted only whole: the right format and version, a key of 32 bytes whose
//! fingerprint is the one stated, a bootstrapped fleet, and every sealed credential opening with that
//! key. [`restore`] turns an accepted document into a new one-node cluster's data dir.

pub mod restore;

use base64::Engine as _;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::event::Event;
use crate::model::{FleetState, UnixMillis};
use crate::secrets::DataKey;

/// `format` of every backup document.
pub const FORMAT: &str = "linkmesh-backup";
/// The document version this linkmesh writes and reads. Bump when the layout changes in a way older
/// readers would misread (the fleet's own fields follow the snapshot's compatibility rules).
pub const VERSION: u32 = 2;
/// The version of documents without `collector_events` (written before events moved to disk, and
/// still written while they are in memory, so older releases read them); read as well.
pub const VERSION_EVENTS_INLINE: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("not a linkmesh backup: {0}")]
    NotABackup(String),
    #[error("backup version {found} is not supported (this linkmesh reads versions {VERSION_EVENTS_INLINE} and {VERSION}); use the linkmesh that wrote it")]
    UnsupportedVersion { found: u32 },
    #[error("the backup is damaged: {0}")]
    Malformed(String),
    #[error(
        "the backup's data key does not match its fingerprint (stated {stated}, computed {computed}): the \
         file was altered or damaged"
    )]
    FingerprintMismatch { stated: String, computed: String },
    #[error(
        "the sealed credential {key:?} of destination {destination:?} (collector {collector:?}) does not \
         open with the backup's data key"
    )]
    CredentialDoesNotOpen { collector: String, destination: String, key: String },
    #[error("cannot write the backup: {0}")]
    Encode(String),
}

/// Where a backup was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupSource {
    pub cluster_id: String,
    /// The node whose replica was read.
    pub node_id: u64,
    /// The log index that replica had applied: the backup holds every write acknowledged before the
    /// request began (a read-index barrier came first), and nothing past this index.
    pub applied_index: u64,
    pub linkmesh_version: String,
}

/// The data key, in the `LINKMESH_DATA_KEY` form, and its fingerprint as a checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyBlock {
    pub key: String,
    pub fingerprint: String,
}

impl KeyBlock {
    fn of(key: &DataKey) -> KeyBlock {
        KeyBlock { key: key.to_base64(), fingerprint: key.fingerprint() }
    }
}

/// The document as written: the fleet is borrowed so it is serialized once, straight from the replica.
#[derive(Serialize)]
struct BackupRef<'a> {
    format: &'static str,
    version: u32,
    created_at: String,
    source: &'a BackupSource,
    data_key: KeyBlock,
    fleet: &'a FleetState,
    /// The events of collectors whose events are on disk (`model/history.rs`), by collector id.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    collector_events: &'a BTreeMap<String, Vec<Event>>,
}

/// The document as read.
#[derive(Deserialize)]
pub struct Backup {
    pub format: String,
    pub version: u32,
    pub created_at: String,
    pub source: BackupSource,
    data_key: KeyBlock,
    /// With every collector's events inline (`collector_events` merged back by [`Backup::parse`]).
    pub fleet: FleetState,
    #[serde(default)]
    collector_events: BTreeMap<String, Vec<Event>>,
}

/// Only the fields that say what a file is, so a wrong file gets a clear message before the rest is
/// parsed.
#[derive(Deserialize)]
struct Header {
    format: Option<String>,
    version: Option<u32>,
}

/// The backup document of `fleet` (what `GET /api/v1/backup` answers).
/// `collector_events` holds the events of the collectors whose events are on disk.
pub fn write(
    fleet: &FleetState,
    collector_events: &BTreeMap<String, Vec<Event>>,
    source: &BackupSource,
    data_key: &DataKey,
    created_at: UnixMillis,
) -> Result<Vec<u8>, BackupError> {
    let document = BackupRef {
        format: FORMAT,
        version: if collector_events.is_empty() { VERSION_EVENTS_INLINE } else { VERSION },
        collector_events,
        created_at: created_at.to_rfc3339(),
        source,
        data_key: KeyBlock::of(data_key),
        fleet,
    };
    serde_json::to_vec(&document).map_err(|error| BackupError::Encode(error.to_string()))
}

/// What a backup holds, for the one-line summaries of `linkmesh backup` and `linkmesh restore`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub collectors: usize,
    pub pipelines: usize,
    pub users: usize,
    pub service_accounts: usize,
    pub sealed_credentials: usize,
    pub applied_index: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "{} collectors, {} pipelines, {} users, {} service accounts, {} sealed credentials, applied index {}",
            self.collectors,
            self.pipelines,
            self.users,
            self.service_accounts,
            self.sealed_credentials,
            self.applied_index
        )
    }
}

impl Backup {
    /// Parses and checks a document: format, version, the key against its fingerprint, a
    /// bootstrapped fleet, and every sealed credential against the key.
    pub fn parse(bytes: &[u8]) -> Result<(Backup, DataKey), BackupError> {
        let header: Header = serde_json::from_slice(bytes)
            .map_err(|error| BackupError::NotABackup(format!("not a JSON object: {error}")))?;
        match (header.format.as_deref(), header.version) {
            (Some(FORMAT), Some(VERSION | VERSION_EVENTS_INLINE)) => {}
            (Some(FORMAT), Some(found)) => return Err(BackupError::UnsupportedVersion { found }),
            (Some(FORMAT), None) => return Err(BackupError::Malformed("it has no version".into())),
            (other, _) => {
                return Err(BackupError::NotABackup(format!(
                    "its format is {other:?}, a backup's is {FORMAT:?}"
                )))
            }
        }
        let mut backup: Backup =
            serde_json::from_slice(bytes).map_err(|error| BackupError::Malformed(error.to_string()))?;
        let mut collector_events = std::mem::take(&mut backup.collector_events);
        // Every collector restored as releases before the history tree held events: in memory, moved
        // to disk (with keys of the restored cluster) when it reaches that feature level.
        for record in backup.fleet.collectors.values_mut() {
            if let Some(events) = collector_events.remove(&record.id) {
                record.events = events.into();
            }
            record.first_event_id = 0;
            record.history_key = 0;
        }
        if let Some(collector_id) = collector_events.keys().next() {
            return Err(BackupError::Malformed(format!(
                "events of collector {collector_id:?}, not in the fleet"
            )));
        }
        backup.fleet.rebuild_indexes();
        let data_key = backup.check()?;
        Ok((backup, data_key))
    }

    fn check(&self) -> Result<DataKey, BackupError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(self.data_key.key.trim())
            .map_err(|error| BackupError::Malformed(format!("data_key.key is not base64: {error}")))?;
        let data_key = DataKey::from_bytes(&bytes).ok_or_else(|| {
            BackupError::Malformed(format!("data_key.key is {} bytes, not 32", bytes.len()))
        })?;
        let computed = data_key.fingerprint();
        if computed != self.data_key.fingerprint {
            return Err(BackupError::FingerprintMismatch {
                stated: self.data_key.fingerprint.clone(),
                computed,
            });
        }
        if !self.fleet.bootstrapped || !self.fleet.slots.is_assigned() {
            return Err(BackupError::Malformed("its fleet was never bootstrapped".into()));
        }
        let per_collector = self.fleet.collectors.values().flat_map(|record| {
            record.destinations.values().map(move |destination| (record.id.as_str(), destination))
        });
        let fleet_wide =
            self.fleet.fleet_items.destinations.values().map(|attached| ("(fleet-wide)", &attached.item));
        for (owner, destination) in per_collector.chain(fleet_wide) {
            {
                for (key, sealed) in &destination.credentials {
                    if data_key.open(&sealed.0).is_err() {
                        return Err(BackupError::CredentialDoesNotOpen {
                            collector: owner.to_owned(),
                            destination: destination.id.clone(),
                            key: key.clone(),
                        });
                    }
                }
            }
        }
        Ok(data_key)
    }

    pub fn summary(&self) -> Summary {
        let fleet = &self.fleet;
        Summary {
            collectors: fleet.collectors.len(),
            pipelines: fleet.pipelines.len(),
            users: fleet.users.len(),
            service_accounts: fleet.service_accounts.len(),
            sealed_credentials: fleet
                .collectors
                .values()
                .flat_map(|record| record.destinations.values())
                .chain(fleet.fleet_items.destinations.values().map(|attached| &attached.item))
                .map(|destination| destination.credentials.len())
                .sum(),
            applied_index: self.source.applied_index,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::pipeline::SealedSecret;
    use crate::model::{CollectorMode, Command};

    fn fleet_with_a_credential(key: &DataKey) -> FleetState {
        let mut fleet = FleetState::default();
        let bootstrap = Command::Bootstrap {
            node_id: 1,
            admin_user_id: "adm".into(),
            admin_password_hash: "$argon2id$x".into(),
            at: UnixMillis(1),
        };
        fleet.apply(&bootstrap).expect("bootstrap");
        let create = Command::CreateCollector {
            id: "col_1".into(),
            name: "edge".into(),
            mode: CollectorMode::AlloyRemotecfg,
            remote_attributes: Default::default(),
            at: UnixMillis(2),
            stability_level: Default::default(),
        };
        fleet.apply(&create).expect("create");
        let mut destination: crate::model::pipeline::Destination =
            serde_json::from_value(serde_json::json!({
                "id": "dst_1", "name": "mimir", "type": "prometheus_remote_write",
                "settings": {"url": "https://mimir.example/api/v1/push"}
            }))
            .expect("destination");
        destination.credentials.insert("password".into(), SealedSecret(key.seal("s3cret").expect("seal")));
        let put = Command::PutDestination {
            collector_id: "col_1".into(),
            destination,
            remove_credentials: Vec::new(),
            create: true,
            at: UnixMillis(3),
        };
        fleet.apply(&put).expect("destination");
        fleet
    }

    fn source() -> BackupSource {
        BackupSource {
            cluster_id: "clu_a".into(),
            node_id: 7,
            applied_index: 12,
            linkmesh_version: "0.1.0".into(),
        }
    }

    #[test]
    fn a_written_backup_reads_back_with_its_key_and_fleet() {
        let key = DataKey::from_bytes(&[5; 32]).expect("key");
        let fleet = fleet_with_a_credential(&key);
        let bytes =
            write(&fleet, &BTreeMap::new(), &source(), &key, UnixMillis(1_764_000_000_000)).expect("write");
        let (backup, read_key) = Backup::parse(&bytes).expect("parse");
        assert_eq!(read_key.fingerprint(), key.fingerprint());
        assert_eq!(backup.fleet, fleet);
        assert_eq!(backup.version, VERSION_EVENTS_INLINE, "events in memory: readable by older releases");
        assert_eq!(backup.source, source());
        assert_eq!(backup.created_at, "2025-11-24T16:00:00.000Z");
        let summary = backup.summary();
        assert_eq!((summary.collectors, summary.users, summary.sealed_credentials), (1, 1, 1));
        assert!(summary.to_string().contains("applied index 12"), "{summary}");
    }

    #[test]
    fn events_kept_on_disk_travel_beside_the_fleet_and_come_back_inline() {
        use crate::model::feature_level::FeatureLevel;
        use crate::model::Command;
        let key = DataKey::from_bytes(&[5; 32]).expect("key");
        let mut fleet = fleet_with_a_credential(&key);
        let inline = fleet.clone();
        fleet
            .apply(&Command::RaiseFeatureLevel { level: FeatureLevel::HISTORY_ON_DISK, at: UnixMillis(9) })
            .expect("raise");
        let mut collector_events = BTreeMap::new();
        let writes = fleet.take_history_writes();
        for record in fleet.collectors.values() {
            let events = writes.iter().filter_map(|write| match write {
                crate::model::history::HistoryWrite::PutEvent { history_key, event }
                    if *history_key == record.history_key =>
                {
                    Some(event.clone())
                }
                _ => None,
            });
            collector_events.insert(record.id.clone(), events.collect::<Vec<_>>());
        }
        let record = fleet.collectors.values().next().expect("a collector");
        assert!(record.events.is_empty() && record.events_on_disk());
        let bytes = write(&fleet, &collector_events, &source(), &key, UnixMillis(1)).expect("write");
        let (backup, _) = Backup::parse(&bytes).expect("parse");
        assert_eq!(backup.version, VERSION);
        let restored = backup.fleet.collectors.values().next().expect("a collector");
        let original = inline.collectors.values().next().expect("a collector");
        assert_eq!(restored.events, original.events, "the events are inline again");
        assert!(!restored.events.is_empty() && !restored.events_on_disk());
        assert_eq!(restored.history_key, 0, "given again where the restored cluster moves them");
    }

    fn edited(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
        let mut value: serde_json::Value = serde_json::from_slice(bytes).expect("json");
        edit(&mut value);
        serde_json::to_vec(&value).expect("json")
    }

    #[test]
    fn altered_or_foreign_documents_are_refused_with_what_is_wrong() {
        let key = DataKey::from_bytes(&[5; 32]).expect("key");
        let bytes = write(&fleet_with_a_credential(&key), &BTreeMap::new(), &source(), &key, UnixMillis(1))
            .expect("write");
        let refused = |bytes: &[u8]| Backup::parse(bytes).err().expect("refused");

        let tampered = edited(&bytes, |value| value["data_key"]["fingerprint"] = "0000000000000000".into());
        assert!(matches!(refused(&tampered), BackupError::FingerprintMismatch { .. }));
        let other_key = DataKey::from_bytes(&[6; 32]).expect("key");
        let swapped = edited(&bytes, |value| {
            value["data_key"] = serde_json::to_value(KeyBlock::of(&other_key)).expect("key block")
        });
        assert!(
            matches!(refused(&swapped), BackupError::CredentialDoesNotOpen { .. }),
            "a key from elsewhere"
        );
        let newer = edited(&bytes, |value| value["version"] = 3.into());
        assert!(matches!(refused(&newer), BackupError::UnsupportedVersion { found: 3 }));
        let stray = edited(&bytes, |value| value["collector_events"] = serde_json::json!({ "col_x": [] }));
        assert!(matches!(refused(&stray), BackupError::Malformed(_)), "events of no collector");
        let wrong_type = edited(&bytes, |value| value["collector_events"] = 5.into());
        assert!(matches!(refused(&wrong_type), BackupError::Malformed(_)), "events that are no map");
        assert!(matches!(refused(b"{\"collectors\":[]}"), BackupError::NotABackup(_)));
        assert!(matches!(refused(b"not json"), BackupError::NotABackup(_)));
        assert!(matches!(refused(&bytes[..bytes.len() / 2]), BackupError::NotABackup(_)), "cut short");
        let short_key = edited(&bytes, |value| value["data_key"]["key"] = "AAAA".into());
        assert!(matches!(refused(&short_key), BackupError::Malformed(_)));
    }
}
