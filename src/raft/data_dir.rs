//! The data dir: what it holds, who may read it, and opening its store only when it is whole.
//!
//! Rules (contract, "Start-up"): a data dir with any linkmesh file in it never bootstraps a new
//! cluster; one whose store holds less than its identity record says, or belongs to another identity,
//! or has a value that fails its checksum, is refused with exit code 3 and one message naming the data
//! dir, what is wrong and the remedy. Data dirs written before identity records (store format 1) are
//! adopted once: their values are rewritten with checksums and a record is created.
//!
//! Data dirs of store format 2 (facts inside `identity.json`) are migrated at their first start: the
//! facts file is created from the record's facts, then `identity.json` is rewritten without them.
//!
//! Data dirs of store format 3 and earlier keep the snapshot inside sled: at their first start it is
//! moved to a file of `snapshots/` (the file fsynced, then sled's record of it flushed, then
//! `identity.json` rewritten at format 4; each step safe to repeat after a crash).
//!
//! Layout: `raft/` (sled: the log, vote, snapshot metadata), `snapshots/` (the current snapshot's
//! file, [`super::snapshot_file`]), `identity.json` and `durable-facts` (the record,
//! [`super::identity`], [`super::facts`]), `data-key` (unless `LINKMESH_DATA_KEY` is set),
//! `initial-admin-password` (first start only). The dir is created 0700 and refused when group or
//! others may write to it.

use std::path::Path;
use std::sync::Arc;

use super::durable::{DurableDb, KEY_IDENTITY, LOG_TREE, META_TREE, SNAPSHOT_TREE};
use super::facts::{self, FactsError, FactsRead, FACTS_FILE, FACTS_TEMP_FILE};
use super::framing;
use super::identity::{
    DurableFacts, Identity, IdentityRecord, RecordError, INLINE_FACTS_FORMAT, INLINE_SNAPSHOT_FORMAT,
    LEGACY_STORE_FORMAT, RECORD_FILE, RECORD_TEMP_FILE, STORE_FORMAT,
};
use super::record_keeper::RecordKeeper;
use super::snapshot_file::SNAPSHOT_DIR;
use super::storage_health::StorageHealth;
use super::verify::{self, StoreSummary};

pub const RAFT_DIR: &str = "raft";
pub const DATA_KEY_FILE: &str = "data-key";
pub const ADMIN_PASSWORD_FILE: &str = crate::secrets::INITIAL_ADMIN_PASSWORD_FILE;
/// Present while `linkmesh restore` fills the data dir (`backup/restore.rs`): a restore cut short
/// (killed, power lost) must not start as a cluster that holds only part of it, or none.
pub const RESTORE_MARKER_FILE: &str = "restore-in-progress";

/// Every name linkmesh creates in a data dir; any one of them means "not a fresh data dir".
const LINKMESH_FILES: [&str; 9] = [
    RAFT_DIR,
    SNAPSHOT_DIR,
    RECORD_FILE,
    RECORD_TEMP_FILE,
    FACTS_FILE,
    FACTS_TEMP_FILE,
    DATA_KEY_FILE,
    ADMIN_PASSWORD_FILE,
    RESTORE_MARKER_FILE,
];

const REMEDY: &str = "restore the data dir from a backup, or wipe it to start this node as a new \
                      cluster (see docs/operations.md, \"Recovering a damaged data dir\"); \
                      `linkmesh check --data-dir` shows what it holds";

#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error(
        "data dir {path} is writable by group or others (mode {mode:o}); make it private with \
         `chmod 700 {path}` and start again"
    )]
    Permissions { path: String, mode: u32 },
    #[error("cannot use data dir {path}: {source}")]
    Access { path: String, source: std::io::Error },
    #[error("data dir {path} is in use by another linkmesh process")]
    InUse { path: String },
    #[error("data dir {path} was written by a newer linkmesh (store format {found}; this one reads {STORE_FORMAT})")]
    NewerFormat { path: String, found: u32 },
    #[error("data dir {path} is damaged: {what}; nothing was served. Remedy: {REMEDY}")]
    Damaged { path: String, what: String },
    #[error(
        "data dir {path} holds a restore that did not finish ({RESTORE_MARKER_FILE} is there); nothing was \
         served. Remedy: empty the directory and run `linkmesh restore` again"
    )]
    RestoreUnfinished { path: String },
    #[error("storage of data dir {path} failed: {what}: {source}; free space or repair the device and start again")]
    Failed { path: String, what: String, source: std::io::Error },
}

impl DataDirError {
    /// The contract's exit codes: 1 configuration, 3 damaged, 4 storage failing.
    pub fn exit_code(&self) -> u8 {
        match self {
            DataDirError::Damaged { .. } | DataDirError::RestoreUnfinished { .. } => 3,
            DataDirError::Failed { .. } => 4,
            _ => 1,
        }
    }

    pub fn damaged(data_dir: &Path, what: impl Into<String>) -> DataDirError {
        DataDirError::Damaged { path: data_dir.display().to_string(), what: what.into() }
    }

    /// An I/O error: a failing or full device is exit 4, anything else (a file sled cannot parse,
    /// a short read) is damage.
    fn io(data_dir: &Path, what: &str, source: std::io::Error) -> DataDirError {
        use std::io::ErrorKind;
        let failing = matches!(
            source.kind(),
            ErrorKind::StorageFull | ErrorKind::ReadOnlyFilesystem | ErrorKind::QuotaExceeded
        ) || source.raw_os_error() == Some(5);
        if failing {
            DataDirError::Failed { path: data_dir.display().to_string(), what: what.to_owned(), source }
        } else if source.kind() == ErrorKind::PermissionDenied {
            DataDirError::Access { path: data_dir.display().to_string(), source }
        } else {
            DataDirError::damaged(data_dir, format!("{what}: {source}"))
        }
    }
}

/// What a data dir holds, before anything is opened.
pub enum Contents {
    /// No linkmesh file at all: the only kind of data dir that bootstraps.
    Empty,
    Recorded(Box<Recorded>),
    /// Linkmesh files but no identity record: written before records existed, or the record was lost.
    Unrecorded,
    /// An empty data dir for a node that was just let into a cluster (`cluster/joiner.rs`): created
    /// with that cluster's id and the node's own id, and never initialized as a cluster. `inspect`
    /// never returns it.
    Joined(Identity),
}

/// An identity record as read: `identity.json` and the durable facts in force.
pub struct Recorded {
    pub record: IdentityRecord,
    pub facts: DurableFacts,
    /// The facts file's slot in force; `None` when the facts are inline in `identity.json` (store
    /// formats 1 and 2).
    pub slots: Option<FactsRead>,
}

/// Creates the data dir (0700) or checks an existing one: refused when group or others may write.
pub fn prepare(data_dir: &Path) -> Result<(), DataDirError> {
    let access = |source| DataDirError::Access { path: data_dir.display().to_string(), source };
    if !data_dir.exists() {
        create_private_dir(data_dir).map_err(access)?;
    }
    let metadata = std::fs::metadata(data_dir).map_err(access)?;
    if !metadata.is_dir() {
        return Err(access(std::io::Error::other("not a directory")));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(DataDirError::Permissions { path: data_dir.display().to_string(), mode });
        }
        if mode & 0o077 != 0 {
            match std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700)) {
                Ok(()) => tracing::info!(
                    data_dir = %data_dir.display(),
                    previous_mode = format!("{mode:o}"),
                    "made the data dir private to its owner (0700)"
                ),
                Err(error) => tracing::warn!(
                    data_dir = %data_dir.display(),
                    error = %error,
                    "the data dir is readable by other users and could not be made private"
                ),
            }
        }
    }
    Ok(())
}

fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path)
}

/// Makes sled's directory and files private (sled creates them with the process umask).
fn restrict_store_permissions(raft_dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(raft_dir, std::fs::Permissions::from_mode(0o700));
        let Ok(entries) = std::fs::read_dir(raft_dir) else { return };
        for entry in entries.flatten() {
            let mode = if entry.path().is_dir() { 0o700 } else { 0o600 };
            let _ = std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(mode));
        }
    }
}

/// The linkmesh files present in `data_dir`, in [`LINKMESH_FILES`] order.
pub fn linkmesh_files(data_dir: &Path) -> Vec<&'static str> {
    LINKMESH_FILES.into_iter().filter(|name| data_dir.join(name).symlink_metadata().is_ok()).collect()
}

pub fn inspect(data_dir: &Path) -> Result<Contents, DataDirError> {
    if linkmesh_files(data_dir).is_empty() {
        return Ok(Contents::Empty);
    }
    if data_dir.join(RESTORE_MARKER_FILE).symlink_metadata().is_ok() {
        return Err(DataDirError::RestoreUnfinished { path: data_dir.display().to_string() });
    }
    let record = match IdentityRecord::read(data_dir) {
        Ok(Some(record)) => record,
        Ok(None) => return Ok(Contents::Unrecorded),
        Err(RecordError::Io { source, .. }) => return Err(DataDirError::io(data_dir, RECORD_FILE, source)),
        Err(error) => return Err(DataDirError::damaged(data_dir, error.to_string())),
    };
    read_facts(data_dir, record).map(|recorded| Contents::Recorded(Box::new(recorded)))
}

/// The durable facts that go with `record`: inline (store formats 1 and 2) or the facts file's slot in
/// force, which must name the same store.
fn read_facts(data_dir: &Path, record: IdentityRecord) -> Result<Recorded, DataDirError> {
    let damaged = |what: String| DataDirError::damaged(data_dir, what);
    if record.store_format > STORE_FORMAT {
        // `open_store` refuses it for its format; how it keeps its facts is not known here.
        return Ok(Recorded { record, facts: DurableFacts::default(), slots: None });
    }
    if record.store_format <= INLINE_FACTS_FORMAT {
        let facts = record.facts.clone().ok_or_else(|| {
            damaged(format!("{RECORD_FILE} of store format {} holds no durable facts", record.store_format))
        })?;
        return Ok(Recorded { record, facts, slots: None });
    }
    if record.facts.is_some() {
        return Err(damaged(format!(
            "{RECORD_FILE} of store format {} holds durable facts, which that format keeps in {FACTS_FILE}",
            record.store_format
        )));
    }
    match facts::read(data_dir) {
        Ok(Some(slots)) if slots.identity() != &record.identity => Err(damaged(format!(
            "{FACTS_FILE} belongs to cluster {} node {} but {RECORD_FILE} names cluster {} node {} (files from \
             two data dirs?)",
            slots.identity().cluster_id,
            slots.identity().node_id,
            record.identity.cluster_id,
            record.identity.node_id
        ))),
        Ok(Some(slots)) => Ok(Recorded { facts: slots.facts().clone(), slots: Some(slots), record }),
        // It is created before identity.json, so nothing but its loss explains its absence; without it a
        // data dir whose store was lost too would look like an interrupted first start.
        Ok(None) => Err(damaged(format!(
            "{FACTS_FILE} is missing (it records what the raft store acknowledged; {RECORD_FILE} is there)"
        ))),
        Err(FactsError::Io { source, .. }) => Err(DataDirError::io(data_dir, FACTS_FILE, source)),
        Err(error) => Err(damaged(error.to_string())),
    }
}

/// Without `LINKMESH_DATA_KEY`, a data dir that is not empty must still have its key file: the
/// credentials in its store are sealed with it.
pub fn require_data_key_file(
    data_dir: &Path,
    contents: &Contents,
    key_from_env: bool,
) -> Result<(), DataDirError> {
    if key_from_env
        || matches!(contents, Contents::Empty | Contents::Joined(_))
        || data_dir.join(DATA_KEY_FILE).exists()
    {
        return Ok(());
    }
    Err(DataDirError::damaged(
        data_dir,
        format!("{DATA_KEY_FILE} is missing (the credentials in the store are sealed with it)"),
    ))
}

/// A store that passed every check, ready for the log store and the state machine.
pub struct OpenedStore {
    pub durable: DurableDb,
    pub identity: Identity,
    /// A one-voter cluster still has to be initialized (a fresh data dir, or an interrupted first start).
    pub initialize: bool,
    /// The node joined a cluster: it may start with no membership and wait for its leader.
    pub joined: bool,
}

pub fn sled_config(raft_dir: &Path) -> sled::Config {
    sled::Config::new()
        .path(raft_dir)
        .flush_every_ms(Some(1000))
        // sled's default page cache is 1 GiB; the state machine already lives in memory.
        .cache_capacity(64 * 1024 * 1024)
}

/// Opens sled; a panic inside sled (it has some on damaged files) is damage, not a crash.
pub fn open_sled(data_dir: &Path, config: sled::Config) -> Result<sled::Db, DataDirError> {
    let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open()));
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(sled::Error::Io(source))) if source.to_string().contains("could not acquire lock") => {
            Err(DataDirError::InUse { path: data_dir.display().to_string() })
        }
        Ok(Err(sled::Error::Io(source))) => {
            Err(DataDirError::io(data_dir, "raft/db cannot be opened", source))
        }
        Ok(Err(error)) => Err(DataDirError::damaged(data_dir, format!("raft/db cannot be opened: {error}"))),
        Err(_) => Err(DataDirError::damaged(data_dir, "raft/db cannot be opened: sled failed reading it")),
    }
}

/// Reads every record of the store; a panic inside sled is damage.
pub fn read_checked(
    data_dir: &Path,
    db: &sled::Db,
    open: framing::Opener,
) -> Result<StoreSummary, DataDirError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| verify::read_store(db, open))) {
        Ok(Ok(summary)) => Ok(summary),
        Ok(Err(what)) => Err(DataDirError::damaged(data_dir, what)),
        Err(_) => Err(DataDirError::damaged(data_dir, "raft/db cannot be read: sled failed reading it")),
    }
}

/// Opens the store of `data_dir` for serving: creates it when the dir is empty, adopts a format-1
/// store once, migrates a format-2 record, and otherwise accepts it only whole and matching its
/// identity record. `configured_node_id` is used only to adopt a format-1 store that has no vote to
/// name its node.
pub fn open_store(
    data_dir: &Path,
    contents: Contents,
    data_key_fingerprint: &str,
    health: Arc<StorageHealth>,
    configured_node_id: Option<u64>,
) -> Result<OpenedStore, DataDirError> {
    let raft_dir = data_dir.join(RAFT_DIR);
    let snapshot_dir = data_dir.join(SNAPSHOT_DIR);
    let _ = std::fs::remove_file(data_dir.join(RECORD_TEMP_FILE));
    let _ = std::fs::remove_file(data_dir.join(FACTS_TEMP_FILE));
    let (db, slots, initialize, joined) = match contents {
        Contents::Empty | Contents::Joined(_) => {
            let (identity, joined) = match contents {
                Contents::Joined(identity) => (identity, true),
                _ => {
                    (Identity::generate().map_err(|e| DataDirError::damaged(data_dir, e.to_string()))?, false)
                }
            };
            let record = IdentityRecord {
                store_format: STORE_FORMAT,
                identity,
                data_key_fingerprint: data_key_fingerprint.to_owned(),
                facts: None,
                joined,
            };
            // The facts file, then the record: from here on the data dir is never taken for empty
            // again, and a record is never without its facts file.
            let slots = create_facts(data_dir, &record.identity, &DurableFacts::default())?;
            write_record(data_dir, &record)?;
            let db = create_store(data_dir, &raft_dir, &record.identity)?;
            tracing::info!(
                cluster_id = %record.identity.cluster_id,
                node_id = record.identity.node_id,
                joined,
                "created a new data dir"
            );
            (db, slots, !joined, joined)
        }
        Contents::Recorded(recorded) => {
            let Recorded { record, facts, slots } = *recorded;
            let joined = record.joined;
            if record.store_format > STORE_FORMAT {
                return Err(DataDirError::NewerFormat {
                    path: data_dir.display().to_string(),
                    found: record.store_format,
                });
            }
            check_key(data_dir, &record, data_key_fingerprint)?;
            if !raft_dir.join("db").exists() {
                if !facts.is_empty() {
                    return Err(DataDirError::damaged(data_dir, "raft/db is missing"));
                }
                // The first start stopped between writing the record and creating the store.
                let slots = current_facts(data_dir, &record, &facts, slots)?;
                let db = create_store(data_dir, &raft_dir, &record.identity)?;
                (db, slots, !joined, joined)
            } else {
                let db = open_sled(data_dir, sled_config(&raft_dir))?;
                // Read again now that sled's lock is held: a node that stopped a moment ago may have
                // written newer facts since `inspect`.
                let Recorded { record, facts, slots } = read_facts(data_dir, record)?;
                let open: framing::Opener = if record.store_format == LEGACY_STORE_FORMAT {
                    framing::open_legacy
                } else {
                    framing::open
                };
                let summary = read_checked(data_dir, &db, open)?;
                verify::check_against_record(&db, open, &summary, &record.identity, &facts, &snapshot_dir)
                    .map_err(|what| DataDirError::damaged(data_dir, what))?;
                let slots = if record.store_format == LEGACY_STORE_FORMAT {
                    finish_adoption(data_dir, &db, record, &facts)?
                } else {
                    if summary.identity.is_none() {
                        write_identity(data_dir, &db, &raft_dir, &record.identity)?;
                    }
                    if record.store_format <= INLINE_SNAPSHOT_FORMAT {
                        move_snapshot_out(data_dir, &db, open)?;
                    }
                    let slots = current_facts(data_dir, &record, &facts, slots)?;
                    if record.store_format > INLINE_FACTS_FORMAT && record.store_format < STORE_FORMAT {
                        write_record(
                            data_dir,
                            &IdentityRecord { store_format: STORE_FORMAT, ..record.clone() },
                        )?;
                    }
                    slots
                };
                let initialize = !joined && summary.vote.is_none() && facts.vote.is_none();
                (db, slots, initialize, joined)
            }
        }
        Contents::Unrecorded => {
            let present = linkmesh_files(data_dir);
            if !raft_dir.join("db").exists() {
                return Err(DataDirError::damaged(
                    data_dir,
                    format!(
                        "it holds {} but neither a raft store nor {RECORD_FILE}; a data dir with linkmesh files \
                         is never bootstrapped over",
                        present.join(", ")
                    ),
                ));
            }
            let db = open_sled(data_dir, sled_config(&raft_dir))?;
            let summary = read_checked(data_dir, &db, framing::open_legacy)?;
            check_unrecorded(data_dir, &summary)?;
            let (record, facts) =
                begin_adoption(data_dir, &summary, data_key_fingerprint, configured_node_id)?;
            let slots = finish_adoption(data_dir, &db, record, &facts)?;
            (db, slots, false, false)
        }
    };
    if let Err(why) = &slots.other {
        tracing::warn!(
            data_dir = %data_dir.display(),
            facts = %slots.describe(),
            "one slot of {FACTS_FILE} {why} (a write interrupted by a crash, or damage); the store was checked \
             against the other one, which is the last complete write"
        );
    }
    restrict_store_permissions(&raft_dir);
    let identity = slots.identity().clone();
    let keeper = RecordKeeper::open(data_dir, &slots)
        .map_err(|source| DataDirError::io(data_dir, "durable-facts cannot be opened", source))?;
    let durable = DurableDb::new(&db, &raft_dir, &snapshot_dir, Arc::new(keeper), health)
        .map_err(|source| DataDirError::io(data_dir, "raft/db cannot be opened", source))?;
    Ok(OpenedStore { durable, identity, initialize, joined })
}

/// Store format 3 and earlier: the snapshot held in sled goes to a file of `snapshots/`, and sled's
/// record of it is flushed, before anything says the store is of format 4.
fn move_snapshot_out(data_dir: &Path, db: &sled::Db, open: framing::Opener) -> Result<(), DataDirError> {
    let raft_dir = data_dir.join(RAFT_DIR);
    let moved = super::state_machine::move_inline_snapshot_out(db, &data_dir.join(SNAPSHOT_DIR), open)
        .and_then(|moved| flush_db(db, &raft_dir).map(|()| moved))
        .map_err(|source| DataDirError::io(data_dir, "cannot move the snapshot to snapshots/", source))?;
    if moved {
        tracing::info!(
            data_dir = %data_dir.display(),
            "moved the snapshot out of the raft store into {SNAPSHOT_DIR}/ (store format {STORE_FORMAT})"
        );
    }
    Ok(())
}

fn write_record(data_dir: &Path, record: &IdentityRecord) -> Result<(), DataDirError> {
    record.write(data_dir).map_err(|source| DataDirError::io(data_dir, "cannot write identity.json", source))
}

fn create_facts(
    data_dir: &Path,
    identity: &Identity,
    facts: &DurableFacts,
) -> Result<FactsRead, DataDirError> {
    facts::create(data_dir, identity, facts)
        .map_err(|source| DataDirError::io(data_dir, "cannot write durable-facts", source))
}

/// The facts file in force for a verified `record`; a record of store format 2 or earlier has its
/// facts moved out of it first.
fn current_facts(
    data_dir: &Path,
    record: &IdentityRecord,
    facts: &DurableFacts,
    slots: Option<FactsRead>,
) -> Result<FactsRead, DataDirError> {
    match slots {
        Some(slots) => Ok(slots),
        None if record.store_format > INLINE_FACTS_FORMAT => {
            Err(DataDirError::damaged(data_dir, format!("{FACTS_FILE} is missing")))
        }
        None => {
            let slots = move_facts_out(data_dir, record.clone(), facts)?;
            tracing::info!(
                data_dir = %data_dir.display(),
                "moved the durable facts out of identity.json into {FACTS_FILE} (store format {STORE_FORMAT})"
            );
            Ok(slots)
        }
    }
}

/// The facts file from a record that holds its facts inline, then the record at the current format
/// without them. In that order: a crash in between leaves the old record, whose inline facts are still
/// a lower bound of the store (nothing ran since), and the next start does this again.
fn move_facts_out(
    data_dir: &Path,
    record: IdentityRecord,
    facts: &DurableFacts,
) -> Result<FactsRead, DataDirError> {
    let slots = create_facts(data_dir, &record.identity, facts)?;
    write_record(data_dir, &IdentityRecord { store_format: STORE_FORMAT, facts: None, ..record })?;
    Ok(slots)
}

/// A store without a record is adopted only if it was written before records existed, and holds data.
pub fn check_unrecorded(data_dir: &Path, summary: &StoreSummary) -> Result<(), DataDirError> {
    if summary.identity.is_some() {
        return Err(DataDirError::damaged(
            data_dir,
            format!("{RECORD_FILE} is missing but the raft store was written with one"),
        ));
    }
    if summary.is_empty() {
        return Err(DataDirError::damaged(
            data_dir,
            "the raft store is empty or unreadable; a data dir with linkmesh files is never bootstrapped over",
        ));
    }
    Ok(())
}

fn check_key(data_dir: &Path, record: &IdentityRecord, fingerprint: &str) -> Result<(), DataDirError> {
    if record.data_key_fingerprint == fingerprint {
        return Ok(());
    }
    Err(DataDirError::damaged(
        data_dir,
        format!(
            "the data key ({DATA_KEY_FILE} or LINKMESH_DATA_KEY) is not the one this store's credentials are \
             sealed with (fingerprint {fingerprint}, expected {}): a key from another data dir?",
            record.data_key_fingerprint
        ),
    ))
}

fn create_store(data_dir: &Path, raft_dir: &Path, identity: &Identity) -> Result<sled::Db, DataDirError> {
    create_private_dir(raft_dir)
        .map_err(|source| DataDirError::io(data_dir, "cannot create raft/", source))?;
    let db = open_sled(data_dir, sled_config(raft_dir))?;
    write_identity(data_dir, &db, raft_dir, identity)?;
    Ok(db)
}

fn write_identity(
    data_dir: &Path,
    db: &sled::Db,
    raft_dir: &Path,
    identity: &Identity,
) -> Result<(), DataDirError> {
    let fail = |source: std::io::Error| DataDirError::io(data_dir, "cannot write the raft store", source);
    let meta = db.open_tree(META_TREE).map_err(|e| fail(std::io::Error::other(e)))?;
    let bytes = serde_json::to_vec(identity).map_err(|e| fail(std::io::Error::other(e)))?;
    meta.insert(KEY_IDENTITY, framing::seal(META_TREE, KEY_IDENTITY, &bytes))
        .map_err(|e| fail(std::io::Error::other(e)))?;
    flush_db(db, raft_dir).map_err(fail)
}

fn flush_db(db: &sled::Db, raft_dir: &Path) -> std::io::Result<()> {
    db.flush().map_err(std::io::Error::other)?;
    std::fs::File::open(raft_dir.join("db"))?.sync_data()
}

/// Step 1 of adopting a format-1 store: a record (still format 1, facts inline) of what it holds now.
fn begin_adoption(
    data_dir: &Path,
    summary: &StoreSummary,
    data_key_fingerprint: &str,
    configured_node_id: Option<u64>,
) -> Result<(IdentityRecord, DurableFacts), DataDirError> {
    let generated = Identity::generate().map_err(|e| DataDirError::damaged(data_dir, e.to_string()))?;
    // Format-1 nodes used `--node-id` (default 1); their vote names it, and the slot table uses it.
    let node_id = summary.vote.map(|vote| vote.leader_id.node_id).or(configured_node_id).unwrap_or(1);
    let facts = DurableFacts {
        vote: summary.vote,
        last_log_id: summary.last_log_id,
        committed: summary.committed.min(summary.end()),
        applied: None,
        snapshot: summary.snapshot_last(),
    };
    let record = IdentityRecord {
        store_format: LEGACY_STORE_FORMAT,
        identity: Identity { cluster_id: generated.cluster_id, node_id },
        data_key_fingerprint: data_key_fingerprint.to_owned(),
        facts: Some(facts.clone()),
        joined: false,
    };
    write_record(data_dir, &record)?;
    tracing::warn!(
        data_dir = %data_dir.display(),
        cluster_id = %record.identity.cluster_id,
        node_id = node_id,
        log_end = %verify::show(summary.end()),
        "adopting a data dir written by an earlier linkmesh (no identity record): its store is taken as it \
         is now and checksummed from here on"
    );
    Ok((record, facts))
}

/// Step 2: every value rewritten with its checksum, the identity stored, then the facts file and the
/// record at the current format. Safe to repeat after a crash: framed values are read as such, bare
/// ones are framed.
fn finish_adoption(
    data_dir: &Path,
    db: &sled::Db,
    record: IdentityRecord,
    facts: &DurableFacts,
) -> Result<FactsRead, DataDirError> {
    let raft_dir = data_dir.join(RAFT_DIR);
    let fail = |source: std::io::Error| DataDirError::io(data_dir, "cannot rewrite the raft store", source);
    for name in [LOG_TREE, META_TREE, SNAPSHOT_TREE] {
        let tree = db.open_tree(name).map_err(|e| fail(std::io::Error::other(e)))?;
        let mut batch = sled::Batch::default();
        for item in tree.iter() {
            let (key, value) = item.map_err(|e| fail(std::io::Error::other(e)))?;
            let payload = framing::open_legacy(name, &key, &value).map_err(|e| {
                DataDirError::damaged(data_dir, format!("{name}/{} {e}", String::from_utf8_lossy(&key)))
            })?;
            if framing::open(name, &key, &value).is_err() {
                batch.insert(&key, framing::seal(name, &key, payload));
            }
        }
        tree.apply_batch(batch).map_err(|e| fail(std::io::Error::other(e)))?;
    }
    move_snapshot_out(data_dir, db, framing::open)?;
    write_identity(data_dir, db, &raft_dir, &record.identity)?;
    let slots = move_facts_out(data_dir, record, facts)?;
    tracing::info!(data_dir = %data_dir.display(), "adopted the data dir (store format {STORE_FORMAT})");
    Ok(slots)
}
