//! The replicated slot table: which node hosts the actors of each of the [`SLOT_COUNT`] slots, and
//! the slot's ownership epoch.
//!
//! Invariants:
//! - The table is empty until `Command::Bootstrap`, then holds exactly [`SLOT_COUNT`] entries.
//! - A slot's epoch only grows: every move bumps it by one, so `(slot, epoch)` names one tenure of one
//!   owner. Activity is fenced by it (promise 8): an update stamped with an epoch that is no longer the
//!   slot's is dropped by `apply`.
//! - [`SlotTable::apply_moves`] is all-or-nothing: a stale epoch or a wrong `from` anywhere rejects the
//!   whole batch unchanged (the proposer saw an older table and must look again).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Collectors are sharded over this many slots.
pub const SLOT_COUNT: usize = 1024;

/// The slot of a collector: FNV-1a (64-bit) of its id modulo [`SLOT_COUNT`]. Fixed, so every node and
/// every release agrees (never a per-process random hasher).
pub fn slot_of(collector_id: &str) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in collector_id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % SLOT_COUNT as u64) as usize
}

/// One tenure of one owner over a slot. Epoch 1 ([`SlotEpoch::INITIAL`]) is every slot's epoch until
/// its first move: what `Bootstrap` assigns and what tables written before epochs existed load as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SlotEpoch(pub u64);

impl SlotEpoch {
    pub const INITIAL: SlotEpoch = SlotEpoch(1);

    fn next(self) -> SlotEpoch {
        SlotEpoch(self.0 + 1)
    }
}

/// The default is [`SlotEpoch::INITIAL`], so an `ActivityUpdate` logged before updates carried an
/// epoch counts as written in the initial tenure: it was (a single node never moved a slot), and it
/// stays fenced off once the slot has moved.
impl Default for SlotEpoch {
    fn default() -> Self {
        SlotEpoch::INITIAL
    }
}

impl std::fmt::Display for SlotEpoch {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(formatter)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotEntry {
    pub owner: u64,
    pub epoch: SlotEpoch,
}

/// A proposed move: `epoch` is the slot's epoch the proposer saw, `from` the owner it saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotMove {
    pub slot: usize,
    pub from: u64,
    pub to: u64,
    pub epoch: SlotEpoch,
}

/// A move as applied: `epoch` is the new owner's (the proposer's plus one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovedSlot {
    pub slot: usize,
    pub from: u64,
    pub to: u64,
    pub epoch: SlotEpoch,
}

/// Why the balancer moved slots; kept in the log for whoever reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotMoveReason {
    /// Spread over the serving members (a node joined or came back).
    Balance,
    /// A member leaving gracefully hands its slots over.
    Drain,
    /// A member unreachable for `cluster.node_down_after`.
    NodeDown,
    /// An operator asked (`linkmesh cluster rebalance`).
    Rebalance,
}

/// Why a batch of moves was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotMoveError {
    #[error("the slot table is not assigned yet")]
    Unassigned,
    #[error("slot {slot} does not exist (slots are 0..{SLOT_COUNT})")]
    NoSuchSlot { slot: usize },
    #[error("slot {slot} is moved twice in one batch")]
    Duplicate { slot: usize },
    #[error("slot {slot} is at epoch {current} owned by node {owner}, the move saw epoch {seen} owned by node {from}")]
    Stale { slot: usize, owner: u64, current: SlotEpoch, from: u64, seen: SlotEpoch },
    #[error("slot {slot} would move from node {from} to itself")]
    ToItself { slot: usize, from: u64 },
}

/// The slot table. Serialized as a list of entries; a snapshot written before epochs (the field
/// `slot_owners`, a list of node ids) loads with every slot at [`SlotEpoch::INITIAL`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredSlotTable", into = "Vec<SlotEntry>")]
pub struct SlotTable {
    entries: Vec<SlotEntry>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StoredSlotTable {
    Entries(Vec<SlotEntry>),
    OwnersOnly(Vec<u64>),
}

impl From<StoredSlotTable> for SlotTable {
    fn from(stored: StoredSlotTable) -> Self {
        let entries = match stored {
            StoredSlotTable::Entries(entries) => entries,
            StoredSlotTable::OwnersOnly(owners) => {
                owners.into_iter().map(|owner| SlotEntry { owner, epoch: SlotEpoch::INITIAL }).collect()
            }
        };
        SlotTable { entries }
    }
}

impl From<SlotTable> for Vec<SlotEntry> {
    fn from(table: SlotTable) -> Self {
        table.entries
    }
}

impl SlotTable {
    /// Every slot to `owner` at the initial epoch (bootstrap).
    pub fn assigned_to(owner: u64) -> SlotTable {
        SlotTable { entries: vec![SlotEntry { owner, epoch: SlotEpoch::INITIAL }; SLOT_COUNT] }
    }

    /// Every slot to `owner`, each one epoch past this table's (a restored fleet on its new node,
    /// `Command::RestoreFleet`): no `(slot, epoch)` of the backed-up cluster names a tenure here. An
    /// unassigned table (or one of another size) becomes a full one at the initial epoch.
    pub fn reassigned_to(&self, owner: u64) -> SlotTable {
        if self.entries.len() != SLOT_COUNT {
            return SlotTable::assigned_to(owner);
        }
        let entries =
            self.entries.iter().map(|entry| SlotEntry { owner, epoch: entry.epoch.next() }).collect();
        SlotTable { entries }
    }

    /// A table of exactly [`SLOT_COUNT`] entries, as written (tests).
    #[cfg(test)]
    pub(crate) fn from_entries(entries: Vec<SlotEntry>) -> SlotTable {
        assert_eq!(entries.len(), SLOT_COUNT);
        SlotTable { entries }
    }

    pub fn is_assigned(&self) -> bool {
        !self.entries.is_empty()
    }

    pub fn entry(&self, slot: usize) -> Option<SlotEntry> {
        self.entries.get(slot).copied()
    }

    pub fn owner(&self, slot: usize) -> Option<u64> {
        self.entry(slot).map(|entry| entry.owner)
    }

    /// The slot's current epoch; [`SlotEpoch::INITIAL`] while the table is unassigned, the epoch a
    /// slot has before anything moved it.
    pub fn epoch(&self, slot: usize) -> SlotEpoch {
        self.entry(slot).map_or(SlotEpoch::INITIAL, |entry| entry.epoch)
    }

    /// `(slot, entry)` in slot order.
    pub fn entries(&self) -> impl Iterator<Item = (usize, SlotEntry)> + '_ {
        self.entries.iter().copied().enumerate()
    }

    /// How many slots each owner holds (owners without slots are absent).
    pub fn counts(&self) -> BTreeMap<u64, usize> {
        let mut counts = BTreeMap::new();
        for entry in &self.entries {
            *counts.entry(entry.owner).or_insert(0) += 1;
        }
        counts
    }

    /// The slots `owner` holds, in order.
    pub fn slots_of(&self, owner: u64) -> BTreeSet<usize> {
        self.entries().filter(|(_, entry)| entry.owner == owner).map(|(slot, _)| slot).collect()
    }

    /// Applies every move or none: each must name an existing slot once, its current owner and
    /// current epoch. Each moved slot's epoch goes up by one.
    pub fn apply_moves(&mut self, moves: &[SlotMove]) -> Result<Vec<MovedSlot>, SlotMoveError> {
        if !self.is_assigned() {
            return Err(SlotMoveError::Unassigned);
        }
        let mut seen = BTreeSet::new();
        for planned in moves {
            let slot = planned.slot;
            let current = self.entry(slot).ok_or(SlotMoveError::NoSuchSlot { slot })?;
            if !seen.insert(slot) {
                return Err(SlotMoveError::Duplicate { slot });
            }
            if current.owner != planned.from || current.epoch != planned.epoch {
                return Err(SlotMoveError::Stale {
                    slot,
                    owner: current.owner,
                    current: current.epoch,
                    from: planned.from,
                    seen: planned.epoch,
                });
            }
            if planned.to == planned.from {
                return Err(SlotMoveError::ToItself { slot, from: planned.from });
            }
        }
        Ok(moves
            .iter()
            .map(|planned| {
                let entry = &mut self.entries[planned.slot];
                entry.owner = planned.to;
                entry.epoch = entry.epoch.next();
                MovedSlot { slot: planned.slot, from: planned.from, to: planned.to, epoch: entry.epoch }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moving(slot: usize, from: u64, to: u64, epoch: u64) -> SlotMove {
        SlotMove { slot, from, to, epoch: SlotEpoch(epoch) }
    }

    #[test]
    fn slots_are_stable_and_in_range() {
        assert_eq!(slot_of("col_0123456789abcdef0123"), slot_of("col_0123456789abcdef0123"));
        assert_eq!(slot_of(""), (0xcbf2_9ce4_8422_2325u64 % SLOT_COUNT as u64) as usize);
        assert!((0..1000).map(|i| slot_of(&format!("col_{i}"))).all(|slot| slot < SLOT_COUNT));
    }

    #[test]
    fn a_move_bumps_the_epoch_and_a_second_move_needs_the_new_one() {
        let mut table = SlotTable::assigned_to(1);
        let moved = table.apply_moves(&[moving(7, 1, 2, 1)]).expect("move");
        assert_eq!(moved, [MovedSlot { slot: 7, from: 1, to: 2, epoch: SlotEpoch(2) }]);
        assert_eq!(table.entry(7), Some(SlotEntry { owner: 2, epoch: SlotEpoch(2) }));
        assert_eq!(table.counts(), BTreeMap::from([(1, SLOT_COUNT - 1), (2, 1)]));
        assert_eq!(table.slots_of(2), BTreeSet::from([7]));
        let before = table.clone();
        assert!(matches!(table.apply_moves(&[moving(7, 2, 3, 1)]), Err(SlotMoveError::Stale { .. })));
        assert_eq!(table, before);
        table.apply_moves(&[moving(7, 2, 3, 2)]).expect("move with the current epoch");
        assert_eq!(table.epoch(7), SlotEpoch(3));
    }

    #[test]
    fn one_bad_move_rejects_the_whole_batch_unchanged() {
        let mut table = SlotTable::assigned_to(1);
        let before = table.clone();
        let bad_batches = [
            vec![moving(1, 1, 2, 1), moving(2, 3, 2, 1)],
            vec![moving(1, 1, 2, 1), moving(2, 1, 2, 5)],
            vec![moving(1, 1, 2, 1), moving(1, 1, 3, 1)],
            vec![moving(1, 1, 2, 1), moving(SLOT_COUNT, 1, 2, 1)],
            vec![moving(1, 1, 2, 1), moving(3, 1, 1, 1)],
        ];
        for batch in bad_batches {
            assert!(table.apply_moves(&batch).is_err(), "{batch:?}");
            assert_eq!(table, before);
        }
        assert_eq!(SlotTable::default().apply_moves(&[moving(1, 1, 2, 1)]), Err(SlotMoveError::Unassigned));
    }

    #[test]
    fn a_table_written_as_owners_only_loads_at_the_initial_epoch() {
        let table: SlotTable = serde_json::from_str("[1, 1, 2]").expect("owners only");
        assert_eq!(table.entry(2), Some(SlotEntry { owner: 2, epoch: SlotEpoch::INITIAL }));
        let written = serde_json::to_string(&table).expect("serialize");
        assert_eq!(serde_json::from_str::<SlotTable>(&written).expect("entries"), table);
        assert_eq!(serde_json::from_str::<SlotTable>("[]").expect("empty"), SlotTable::default());
    }
}
