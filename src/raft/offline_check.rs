//! `linkmesh check --data-dir D`: verifies a stopped node's data dir offline.
//!
//! Runs the same checks as a start (every value's checksum, the log whole and joined to the snapshot,
//! the identity record with its durable facts, and the data key), then rebuilds the state (snapshot plus log) and prints what
//! it holds. sled repairs a torn tail in place when it opens a store, so the store is read from a copy
//! in the system's temporary directory: the data dir itself is never modified. Exit status: 0 sound,
//! 3 damaged, 1 not a data dir, unreadable or in use by a running node.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use openraft::EntryPayload;

use super::data_dir::{self, Contents, DataDirError, Recorded, DATA_KEY_FILE, RAFT_DIR};
use super::facts::FACTS_FILE;
use super::framing;
use super::identity::{IdentityRecord, LEGACY_STORE_FORMAT, STORE_FORMAT};
use super::log_store::decode_entry;
use super::snapshot_file::SNAPSHOT_DIR;
use super::state_machine::{load_state, SnapshotBody};
use super::verify::{self, show, StoreSummary};
use crate::model::FleetState;

pub const SOUND: u8 = 0;
pub const UNUSABLE: u8 = 1;
pub const DAMAGED: u8 = 3;

/// Prints the report on stdout and returns the exit status.
pub fn run(data_dir: &Path) -> u8 {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "data dir: {}", data_dir.display());
    let status = match check(data_dir, &mut out) {
        Ok(()) => {
            let _ = writeln!(out, "result: sound");
            SOUND
        }
        Err(error) => {
            let status = if error.exit_code() == DAMAGED { DAMAGED } else { UNUSABLE };
            let _ = writeln!(out, "problem: {error}");
            status
        }
    };
    let _ = out.flush();
    status
}

fn check(data_dir: &Path, out: &mut impl std::io::Write) -> Result<(), DataDirError> {
    let access = |source| DataDirError::Access { path: data_dir.display().to_string(), source };
    if !std::fs::metadata(data_dir).map_err(access)?.is_dir() {
        return Err(access(std::io::Error::other("not a directory")));
    }
    let contents = data_dir::inspect(data_dir)?;
    let record = match &contents {
        Contents::Empty | Contents::Joined(_) => {
            return Err(access(std::io::Error::other("it holds no linkmesh files")))
        }
        Contents::Recorded(recorded) => {
            let record = &recorded.record;
            let _ = writeln!(
                out,
                "identity: cluster {}, node {}, store format {}",
                record.identity.cluster_id, record.identity.node_id, record.store_format
            );
            Some(recorded.as_ref())
        }
        Contents::Unrecorded => {
            let _ = writeln!(
                out,
                "identity: none (written by an earlier linkmesh; adopted at its next start, without a record \
                 to compare with)"
            );
            None
        }
    };
    check_data_key(data_dir, &contents, record.map(|recorded| &recorded.record))?;

    let raft_dir = data_dir.join(RAFT_DIR);
    if !raft_dir.join("db").exists() {
        return match &record {
            Some(recorded) if recorded.facts.is_empty() => {
                let _ = writeln!(out, "store: none yet (the first start stopped before creating it)");
                Ok(())
            }
            _ => Err(DataDirError::damaged(data_dir, "raft/db is missing")),
        };
    }
    if node_is_running(&raft_dir) {
        return Err(DataDirError::InUse { path: data_dir.display().to_string() });
    }
    let copy = StoreCopy::of(&raft_dir).map_err(access)?;
    let db = data_dir::open_sled(data_dir, data_dir::sled_config(&copy.path))?;
    let open: framing::Opener = match &record {
        Some(recorded) if recorded.record.store_format != LEGACY_STORE_FORMAT => framing::open,
        _ => framing::open_legacy,
    };
    // Snapshot files are only read, so they are checked where they are, not copied.
    let snapshot_dir = data_dir.join(SNAPSHOT_DIR);
    let summary = data_dir::read_checked(data_dir, &db, open)?;
    match &record {
        Some(recorded) => verify::check_against_record(
            &db,
            open,
            &summary,
            &recorded.record.identity,
            &recorded.facts,
            &snapshot_dir,
        )
        .map_err(|what| DataDirError::damaged(data_dir, what))?,
        None => data_dir::check_unrecorded(data_dir, &summary)?,
    }
    report_store(&summary, record, out);
    let fleet = rebuild(data_dir, &db, open, &summary, &snapshot_dir)?;
    report_fleet(&fleet, out);
    Ok(())
}

fn check_data_key(
    data_dir: &Path,
    contents: &Contents,
    record: Option<&IdentityRecord>,
) -> Result<(), DataDirError> {
    let env_key = std::env::var("LINKMESH_DATA_KEY").ok();
    data_dir::require_data_key_file(data_dir, contents, env_key.is_some())?;
    let key = crate::secrets::DataKey::load_or_create(env_key.as_deref(), data_dir)
        .map_err(|error| DataDirError::damaged(data_dir, format!("{DATA_KEY_FILE}: {error}")))?;
    if let Some(record) = record.filter(|record| record.data_key_fingerprint != key.fingerprint()) {
        return Err(DataDirError::damaged(
            data_dir,
            format!(
                "the data key (fingerprint {}) is not the one this store's credentials are sealed with ({})",
                key.fingerprint(),
                record.data_key_fingerprint
            ),
        ));
    }
    Ok(())
}

/// sled holds an exclusive `flock` on its data file while a node runs.
fn node_is_running(raft_dir: &Path) -> bool {
    match std::fs::File::open(raft_dir.join("db")) {
        Ok(file) => matches!(file.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock)),
        Err(_) => false,
    }
}

/// A private copy of `raft/` (sled writes when it opens a store), removed on drop.
struct StoreCopy {
    path: PathBuf,
}

impl StoreCopy {
    fn of(raft_dir: &Path) -> std::io::Result<StoreCopy> {
        let random = crate::secrets::random_id("check").map_err(std::io::Error::other)?;
        let path = std::env::temp_dir().join(format!("linkmesh-{random}"));
        let copy = StoreCopy { path };
        copy_dir(raft_dir, &copy.path)?;
        Ok(copy)
    }
}

impl Drop for StoreCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn report_store(summary: &StoreSummary, record: Option<&Recorded>, out: &mut impl std::io::Write) {
    let log = match (summary.first_log_index, summary.last_log_id) {
        (Some(first), Some(last)) => {
            format!("{} entries, index {first} to {}", summary.log_entries, show(Some(last)))
        }
        _ => "empty".to_owned(),
    };
    let _ = writeln!(
        out,
        "log: {log}; committed {}; purged up to {}",
        show(summary.committed),
        show(summary.last_purged)
    );
    let snapshot = match &summary.snapshot {
        Some(snapshot) => match &snapshot.body {
            SnapshotBody::File(file) => format!(
                "up to {}, {} bytes in {SNAPSHOT_DIR}/{}",
                show(snapshot.meta.last_log_id),
                file.bytes,
                file.name
            ),
            SnapshotBody::Inline(data) => format!(
                "up to {}, {} bytes inline in the raft store (moved to {SNAPSHOT_DIR}/, store format {STORE_FORMAT}, \
                 at the next start)",
                show(snapshot.meta.last_log_id),
                data.len()
            ),
        },
        None => "none".to_owned(),
    };
    let _ = writeln!(out, "snapshot: {snapshot}");
    if let Some(recorded) = record {
        let facts = &recorded.facts;
        let source = match &recorded.slots {
            Some(slots) => slots.describe(),
            None => format!(
                "inline in identity.json (store format {}; moved to {FACTS_FILE}, format {STORE_FORMAT}, at the \
                 next start)",
                recorded.record.store_format
            ),
        };
        let _ = writeln!(
            out,
            "identity record: log written to {}, committed {}, applied {}, snapshot {} ({source})",
            show(facts.last_log_id),
            show(facts.committed),
            show(facts.applied),
            show(facts.snapshot)
        );
    }
}

/// The state a start would rebuild: the snapshot, then every log entry after it.
fn rebuild(
    data_dir: &Path,
    db: &sled::Db,
    open: framing::Opener,
    summary: &StoreSummary,
    snapshot_dir: &Path,
) -> Result<FleetState, DataDirError> {
    let damaged = |what: String| DataDirError::damaged(data_dir, what);
    let state = match &summary.snapshot {
        Some(snapshot) => load_state(snapshot_dir, &snapshot.body).map_err(damaged)?,
        None => super::state_machine::AppliedState::default(),
    };
    // The history tree (collector events, feature level 3) must be at least as new as the snapshot.
    let snapshots = db.open_tree(super::durable::SNAPSHOT_TREE).map_err(|e| damaged(e.to_string()))?;
    let history_name = super::state_machine::current_history_tree(&snapshots).map_err(damaged)?;
    let history = db.open_tree(history_name).map_err(|e| damaged(e.to_string()))?;
    super::state_machine::check_history_covers(&state, &history, summary.snapshot_last()).map_err(damaged)?;
    let mut fleet = state.fleet;
    let after = summary.snapshot_last().map_or(0, |log_id| log_id.index + 1);
    let log = db.open_tree(super::durable::LOG_TREE).map_err(|e| damaged(e.to_string()))?;
    for item in log.range(super::log_store::index_key(after)..) {
        let (key, value) = item.map_err(|e| damaged(e.to_string()))?;
        let entry = decode_entry(open, &key, &value).map_err(damaged)?;
        if let EntryPayload::Normal(command) = &entry.payload {
            // A rejected command changes nothing, as when it was first applied.
            let _ = fleet.apply(command);
            // What they write to the history tree is the running node's business, not the check's.
            fleet.take_history_writes();
        }
    }
    Ok(fleet)
}

fn report_fleet(fleet: &FleetState, out: &mut impl std::io::Write) {
    let collector_tokens = fleet.collectors.values().filter(|record| record.token.is_some()).count();
    let _ = writeln!(out, "collectors: {} ({collector_tokens} with a token)", fleet.collectors.len());
    let _ = writeln!(
        out,
        "users: {}; service accounts: {} ({} tokens); sessions: {}",
        fleet.users.len(),
        fleet.service_accounts.len(),
        fleet.service_account_tokens.len(),
        fleet.sessions.len()
    );
    let _ = writeln!(out, "pipelines: {}", fleet.pipelines.len());
}
