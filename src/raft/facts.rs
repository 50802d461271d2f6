//! The durable facts: `<data-dir>/durable-facts`, what the store may never go back on, overwritten in
//! place at every log flush.
//!
//! The identity itself (cluster, node, store format, data key) changes only at bootstrap, adoption and
//! format changes, and stays in `identity.json` ([`super::identity`]), replaced atomically. The facts
//! change with every append, and replacing a file atomically costs a new inode, a rename and a directory
//! `fsync`: on ext4 each of those waits for a journal commit. So the facts live in a file of fixed size,
//! created once (temporary file, `fsync`, rename, directory `fsync`) and then only overwritten in place,
//! the way LMDB and bbolt keep their meta pages:
//!
//! - Two slots of [`SLOT_SIZE`] bytes, each in its own 4 KiB block, so a write to one never touches the
//!   other's block (a 512e drive that tears a 4 KiB physical sector can only tear the slot being
//!   written). A slot is `magic, sequence (u64 LE), length (u32 LE), JSON body, zeros, crc32 (LE)`, the
//!   CRC over everything before it; the body names the store's identity (a slot from another data dir
//!   is refused) and holds the facts.
//! - A write takes the slot that does **not** hold the newest valid facts, with the next sequence
//!   number: one `pwrite` and one `fdatasync`, no change of size, allocation or name, so no journal
//!   commit either. The newest valid slot is never overwritten, so at any instant one slot holds the
//!   last facts that were completely written.
//! - At start both slots are read and the valid one with the higher sequence wins. A crash during a
//!   write leaves that slot torn (it fails its checksum) or whole; either way the result is the old
//!   facts or the new ones, never garbage. The write that was torn had not returned, so openraft had not
//!   been told about what it described ([`super::durable`] explains the order): the older slot still
//!   covers every acknowledged write.
//! - Damage to one slot (a flipped bit) reads the same way: the other slot is one step older, a lower
//!   bound of what the store holds, so a whole store still starts and a store with less than that slot
//!   says is still refused. Both slots damaged, a file of the wrong size, or slots naming two stores is
//!   damage: the start is refused.

use std::io::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::identity::{DurableFacts, Identity};

pub const FACTS_FILE: &str = "durable-facts";
pub const FACTS_TEMP_FILE: &str = "durable-facts.tmp";

/// One slot: a 4 KiB block, the common page and physical sector size.
pub const SLOT_SIZE: usize = 4096;
const FILE_SIZE: usize = 2 * SLOT_SIZE;
const MAGIC: &[u8; 8] = b"lmfacts1";
const HEADER_LEN: usize = 8 + 8 + 4;
const CRC_AT: usize = SLOT_SIZE - 4;

#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{FACTS_FILE} {0}")]
    Damaged(String),
}

/// What one slot holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotBody {
    pub identity: Identity,
    pub facts: DurableFacts,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub sequence: u64,
    pub body: SlotBody,
}

/// The facts file as read: the slot in force, and what the other one holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactsRead {
    /// 0 or 1: where [`FactsRead::slot`] is; the next write goes to the other one.
    pub position: usize,
    pub slot: Slot,
    /// The other slot: its sequence, or why it is not valid (torn by a crash, or damaged).
    pub other: Result<u64, String>,
}

impl FactsRead {
    pub fn identity(&self) -> &Identity {
        &self.slot.body.identity
    }

    pub fn facts(&self) -> &DurableFacts {
        &self.slot.body.facts
    }

    /// One line for `linkmesh check` and the start log.
    pub fn describe(&self) -> String {
        let other = match &self.other {
            Ok(sequence) => format!("the other slot holds sequence {sequence}"),
            Err(why) => format!("the other slot {why}"),
        };
        format!("{FACTS_FILE} slot {} of 2, sequence {}; {other}", self.position + 1, self.slot.sequence)
    }
}

fn encode_slot(sequence: u64, body: &SlotBody) -> std::io::Result<Vec<u8>> {
    let json = serde_json::to_vec(body).map_err(std::io::Error::other)?;
    if HEADER_LEN + json.len() > CRC_AT {
        // Bounded by construction (an id and five log ids); reaching this is a bug, never silent.
        return Err(std::io::Error::other(format!("{FACTS_FILE}: a slot body of {} bytes", json.len())));
    }
    let mut slot = vec![0u8; SLOT_SIZE];
    slot[..8].copy_from_slice(MAGIC);
    slot[8..16].copy_from_slice(&sequence.to_le_bytes());
    slot[16..20].copy_from_slice(&(json.len() as u32).to_le_bytes());
    slot[HEADER_LEN..HEADER_LEN + json.len()].copy_from_slice(&json);
    let crc = crc32fast::hash(&slot[..CRC_AT]);
    slot[CRC_AT..].copy_from_slice(&crc.to_le_bytes());
    Ok(slot)
}

/// A slot's facts, or why it holds none (in words that follow "the slot").
fn decode_slot(bytes: &[u8]) -> Result<Slot, String> {
    if bytes.len() != SLOT_SIZE {
        return Err("is cut short".to_owned());
    }
    let stored = u32::from_le_bytes(bytes[CRC_AT..].try_into().unwrap_or_default());
    if stored != crc32fast::hash(&bytes[..CRC_AT]) {
        return Err("fails its checksum".to_owned());
    }
    if &bytes[..8] != MAGIC {
        return Err("is not a facts slot".to_owned());
    }
    let sequence = u64::from_le_bytes(bytes[8..16].try_into().unwrap_or_default());
    let length = u32::from_le_bytes(bytes[16..20].try_into().unwrap_or_default()) as usize;
    let body = bytes.get(HEADER_LEN..HEADER_LEN + length).filter(|_| HEADER_LEN + length <= CRC_AT);
    let body = body.ok_or_else(|| "has a body longer than the slot".to_owned())?;
    let body = serde_json::from_slice(body).map_err(|error| format!("cannot be decoded: {error}"))?;
    Ok(Slot { sequence, body })
}

/// Picks the slot in force: the valid one with the higher sequence.
fn select(slots: [Result<Slot, String>; 2]) -> Result<FactsRead, String> {
    let [first, second] = slots;
    match (first, second) {
        (Ok(first), Ok(second)) => {
            if first.body.identity != second.body.identity {
                return Err("holds slots of two different stores (files from two data dirs?)".to_owned());
            }
            if first.sequence == second.sequence {
                return Err(format!("holds two slots with the same sequence {}", first.sequence));
            }
            let (position, slot, other) =
                if first.sequence > second.sequence { (0, first, second) } else { (1, second, first) };
            Ok(FactsRead { position, slot, other: Ok(other.sequence) })
        }
        (Ok(slot), Err(why)) => Ok(FactsRead { position: 0, slot, other: Err(why) }),
        (Err(why), Ok(slot)) => Ok(FactsRead { position: 1, slot, other: Err(why) }),
        (Err(first), Err(second)) => Err(format!("has no valid slot: slot 1 {first}, slot 2 {second}")),
    }
}

/// Reads both slots of the facts file bytes.
pub fn decode(bytes: &[u8]) -> Result<FactsRead, FactsError> {
    if bytes.len() != FILE_SIZE {
        return Err(FactsError::Damaged(format!(
            "has {} bytes instead of {FILE_SIZE} (it is never resized)",
            bytes.len()
        )));
    }
    let slot = |position: usize| decode_slot(&bytes[position * SLOT_SIZE..(position + 1) * SLOT_SIZE]);
    select([slot(0), slot(1)]).map_err(FactsError::Damaged)
}

/// The facts file of `data_dir`, or `None` when there is none.
pub fn read(data_dir: &Path) -> Result<Option<FactsRead>, FactsError> {
    let path = data_dir.join(FACTS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => decode(&bytes).map(Some),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(FactsError::Io { path: path.display().to_string(), source }),
    }
}

fn private_file_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Creates (or replaces) the facts file atomically, both slots holding `facts`: temporary file,
/// `fsync`, rename, `fsync` of the directory. Used only when the identity changes or a data dir is
/// migrated; the running node overwrites slots with [`FactsWriter`].
pub fn create(data_dir: &Path, identity: &Identity, facts: &DurableFacts) -> std::io::Result<FactsRead> {
    let body = SlotBody { identity: identity.clone(), facts: facts.clone() };
    let mut bytes = encode_slot(1, &body)?;
    bytes.extend_from_slice(&encode_slot(0, &body)?);
    let temp = data_dir.join(FACTS_TEMP_FILE);
    let mut file = private_file_options().write(true).create(true).truncate(true).open(&temp)?;
    file.write_all(&bytes)?;
    // The blocks are allocated and written here, once: later slot writes change no metadata.
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temp, data_dir.join(FACTS_FILE))?;
    std::fs::File::open(data_dir)?.sync_all()?;
    Ok(FactsRead { position: 0, slot: Slot { sequence: 1, body }, other: Ok(0) })
}

/// Overwrites the slot not in force with the next sequence: one `pwrite` and one `fdatasync`.
pub struct FactsWriter {
    file: std::fs::File,
    identity: Identity,
    /// The slot the next write goes to: never the one holding the newest valid facts.
    next_position: usize,
    next_sequence: u64,
}

impl FactsWriter {
    /// `current` is what the file holds now, read by the process that holds the data dir's lock.
    pub fn open(data_dir: &Path, current: &FactsRead) -> std::io::Result<FactsWriter> {
        let file = std::fs::OpenOptions::new().read(true).write(true).open(data_dir.join(FACTS_FILE))?;
        Ok(FactsWriter {
            file,
            identity: current.identity().clone(),
            next_position: 1 - current.position,
            next_sequence: current.slot.sequence + 1,
        })
    }

    /// Makes `facts` the facts in force once it returns `Ok`. On an error the slot written to is in
    /// an unknown state and the other one still holds the previous facts; the next write goes to the
    /// same slot again.
    pub fn write(&mut self, facts: &DurableFacts) -> std::io::Result<()> {
        let body = SlotBody { identity: self.identity.clone(), facts: facts.clone() };
        let slot = encode_slot(self.next_sequence, &body)?;
        write_all_at(&self.file, &slot, (self.next_position * SLOT_SIZE) as u64)?;
        self.file.sync_data()?;
        self.next_position = 1 - self.next_position;
        self.next_sequence += 1;
        Ok(())
    }
}

#[cfg(unix)]
fn write_all_at(file: &std::fs::File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

#[cfg(not(unix))]
fn write_all_at(mut file: &std::fs::File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    use std::io::Seek as _;
    file.seek(std::io::SeekFrom::Start(offset))?;
    file.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::types::LogId;

    fn log_id(term: u64, index: u64) -> LogId {
        openraft::LogId::new(openraft::CommittedLeaderId::new(term, 1), index)
    }

    fn identity() -> Identity {
        Identity { cluster_id: "clu_facts".into(), node_id: 7 }
    }

    fn facts_at(index: u64) -> DurableFacts {
        DurableFacts {
            last_log_id: Some(log_id(1, index)),
            committed: Some(log_id(1, index.saturating_sub(1))),
            ..DurableFacts::default()
        }
    }

    fn file_bytes(dir: &Path) -> Vec<u8> {
        std::fs::read(dir.join(FACTS_FILE)).expect("read facts file")
    }

    /// A data dir whose facts file went through `writes` slot writes after its creation.
    fn written(writes: u64) -> (tempfile::TempDir, FactsWriter) {
        let dir = tempfile::tempdir().expect("dir");
        let created = create(dir.path(), &identity(), &DurableFacts::default()).expect("create");
        let mut writer = FactsWriter::open(dir.path(), &created).expect("open");
        for index in 1..=writes {
            writer.write(&facts_at(index)).expect("write");
        }
        (dir, writer)
    }

    #[test]
    fn the_last_write_is_in_force_and_the_file_never_changes_size() {
        let (dir, mut writer) = written(0);
        assert_eq!(read(dir.path()).expect("read").expect("some").facts(), &DurableFacts::default());
        for index in 1..=5 {
            writer.write(&facts_at(index)).expect("write");
            let read = read(dir.path()).expect("read").expect("some");
            assert_eq!(read.facts(), &facts_at(index));
            assert_eq!(read.slot.sequence, index + 1);
            assert_eq!(read.other, Ok(index));
            assert_eq!(std::fs::metadata(dir.path().join(FACTS_FILE)).expect("meta").len(), FILE_SIZE as u64);
        }
        assert!(!dir.path().join(FACTS_TEMP_FILE).exists());
    }

    #[test]
    fn both_slots_valid_the_higher_sequence_wins_wherever_it_is() {
        for writes in [2, 3] {
            let (dir, _) = written(writes);
            let read = decode(&file_bytes(dir.path())).expect("decode");
            assert_eq!(read.facts(), &facts_at(writes));
            assert_eq!(read.other, Ok(writes));
            assert_eq!(read.position, (writes as usize) % 2);
        }
    }

    #[test]
    fn a_torn_newest_slot_falls_back_to_the_previous_facts() {
        let (dir, _) = written(4);
        let bytes = file_bytes(dir.path());
        let newest = decode(&bytes).expect("decode").position;
        let mut torn = bytes.clone();
        torn[newest * SLOT_SIZE + 100..(newest + 1) * SLOT_SIZE].fill(0);
        let read = decode(&torn).expect("falls back");
        assert_eq!(read.facts(), &facts_at(3));
        assert_eq!(read.position, 1 - newest);
        assert_eq!(read.other, Err("fails its checksum".to_owned()));
        assert!(read.describe().contains("the other slot fails its checksum"), "{}", read.describe());
    }

    #[test]
    fn both_slots_torn_is_damage() {
        let (dir, _) = written(2);
        let mut bytes = file_bytes(dir.path());
        bytes[10] ^= 0x01;
        bytes[SLOT_SIZE + 4000] ^= 0x80;
        let error = decode(&bytes).expect_err("refused").to_string();
        assert!(
            error.contains("durable-facts has no valid slot: slot 1 fails its checksum, slot 2 fails"),
            "{error}"
        );
        for size in [0, SLOT_SIZE, FILE_SIZE - 1, FILE_SIZE + 1] {
            let mut resized = file_bytes(dir.path());
            resized.resize(size, 0);
            assert!(decode(&resized).expect_err("refused").to_string().contains("instead of 8192"));
        }
    }

    #[test]
    fn any_single_flip_leaves_one_of_the_last_two_facts() {
        let (dir, _) = written(3);
        let bytes = file_bytes(dir.path());
        for position in 0..bytes.len() {
            for bit in [0x01, 0x80] {
                let mut flipped = bytes.clone();
                flipped[position] ^= bit;
                let read = decode(&flipped).expect("one slot stays valid");
                assert!(
                    read.facts() == &facts_at(3) || read.facts() == &facts_at(2),
                    "flip at {position}: {read:?}"
                );
            }
        }
    }

    #[test]
    fn slots_of_two_stores_or_equal_sequences_are_damage() {
        let (dir, _) = written(1);
        let mut bytes = file_bytes(dir.path());
        let other = SlotBody {
            identity: Identity { cluster_id: "clu_other".into(), node_id: 7 },
            facts: facts_at(9),
        };
        let sequence = decode(&bytes).expect("decode").slot.sequence;
        bytes[..SLOT_SIZE].copy_from_slice(&encode_slot(sequence + 5, &other).expect("encode"));
        assert!(decode(&bytes).expect_err("refused").to_string().contains("two different stores"));
        let copy = bytes[SLOT_SIZE..].to_vec();
        bytes[..SLOT_SIZE].copy_from_slice(&copy);
        assert!(decode(&bytes).expect_err("refused").to_string().contains("the same sequence"));
    }

    /// Crash consistency: a write interrupted at any point, its slot holding any mix of old and new
    /// 512-byte sectors, reads as the facts before the write or the facts after it, never anything else,
    /// and the writer never touches the slot in force.
    #[test]
    fn an_interrupted_write_leaves_the_old_facts_or_the_new_ones() {
        const SECTOR: usize = 512;
        for writes in 1..=4u64 {
            let (dir, mut writer) = written(writes);
            let before = file_bytes(dir.path());
            let in_force = decode(&before).expect("decode").position;
            writer.write(&facts_at(writes + 1)).expect("write");
            let after = file_bytes(dir.path());
            assert_eq!(
                before[in_force * SLOT_SIZE..(in_force + 1) * SLOT_SIZE],
                after[in_force * SLOT_SIZE..(in_force + 1) * SLOT_SIZE],
                "the slot in force is never written"
            );
            let target = (1 - in_force) * SLOT_SIZE;
            // Every prefix of the write (a process or power loss mid-copy) ...
            for cut in (0..=SLOT_SIZE).step_by(7).chain([SLOT_SIZE]) {
                let mut torn = before.clone();
                torn[target..target + cut].copy_from_slice(&after[target..target + cut]);
                let facts = decode(&torn).expect("readable").slot.body.facts;
                let expected = if cut == SLOT_SIZE { facts_at(writes + 1) } else { facts_at(writes) };
                assert!(facts == expected || facts == facts_at(writes + 1), "cut {cut}: {facts:?}");
            }
            // ... and every subset of its sectors reaching the disk (a drive reordering them).
            let sectors = SLOT_SIZE / SECTOR;
            for mask in [0u32, 1, 0b1010_1010, 0x7f, 0xfe, 0x80, 0xff] {
                let mut torn = before.clone();
                for sector in (0..sectors).filter(|sector| mask & (1 << sector) != 0) {
                    let range = target + sector * SECTOR..target + (sector + 1) * SECTOR;
                    torn[range.clone()].copy_from_slice(&after[range]);
                }
                let facts = decode(&torn).expect("readable").slot.body.facts;
                assert!(
                    facts == facts_at(writes) || facts == facts_at(writes + 1),
                    "mask {mask:b}: {facts:?}"
                );
            }
        }
    }
}
